//! Corrections: windows computed again, for late observations
//! ([`AssetAccumulator::correct`]) or for a meter interval whose end reading
//! came after they closed (reach-back, while closing).

use super::carry::{prepare, Carry, Pass};
use super::meter::Meter;
use super::window::Run;
use super::{AccumConfig, AssetAccumulator, AssetWindow};
use ctower_model::kpi::KpiSums;
use ctower_model::time::window_start;
use ctower_model::Observation;
use std::collections::BTreeMap;

impl AssetAccumulator {
    /// Computes the kept windows in `[from, upto)` again, seeing ahead up
    /// to `visible_to`, and collects those whose result changed.
    pub(super) fn reach_back(&mut self, from: i64, upto: i64, visible_to: i64, cfg: &AccumConfig) {
        let starts: Vec<i64> = self.closed.range(from..upto).map(|(k, _)| *k).collect();
        for k in starts {
            let Some(kept) = self.closed.get(&k) else {
                continue;
            };
            let mut carry = kept.carry.clone();
            prepare(&mut carry, &kept.events);
            let ahead = self.ahead(k, &kept.events, carry.state_signal.clone(), visible_to, cfg);
            let is_kept = |x: i64| self.closed.contains_key(&x);
            let mut run = Run {
                key: &self.key,
                cfg,
                w: k,
                c: carry,
                sums: KpiSums::default(),
                stats: BTreeMap::new(),
                measured: false,
                reach: None,
                pass: Pass::Again,
            };
            run.window(&kept.events, &ahead, &is_kept);
            let sums = run.sums;
            if let Some(kept) = self.closed.get_mut(&k) {
                if kept.out != sums {
                    kept.out = sums.clone();
                    self.corrections.push(AssetWindow {
                        window_start_ms: k,
                        asset: self.key.clone(),
                        sums,
                        // Statistics of signals do not change: meters
                        // have none, and alarms take first results only.
                        signals: Vec::new(),
                    });
                }
            }
        }
    }

    /// Late observations (their windows are closed, before `next`): replays
    /// the windows from the earliest one they touch up to `next` from what
    /// the asset carried into it, and returns the windows whose result
    /// changed. Observations before the kept windows cannot be replayed:
    /// they are counted (`late_dropped`) and left out.
    pub fn correct(
        &mut self,
        late: Vec<Observation>,
        next: i64,
        cfg: &AccumConfig,
    ) -> Vec<AssetWindow> {
        let window_of = |o: &Observation| window_start(o.ts_ms, cfg.window_ms);
        let Some(earliest) = late.iter().map(window_of).min() else {
            return Vec::new();
        };
        // A late state can reclassify a stop that began up to the micro-stop
        // threshold before it; a late reading changes the interval from the
        // previous reading, up to the signal's maximum interval before it:
        // replay from there.
        let reach = late
            .iter()
            .filter(|o| Meter::of(o.role).is_some())
            .map(|o| window_start(o.ts_ms - cfg.max_interval(&o.signal), cfg.window_ms))
            .min()
            .unwrap_or(earliest);
        let from = earliest.min(reach) - cfg.lookahead_ms();
        // Where the replay starts, and what the asset carried into it. A
        // window before the asset's first one was never emitted for it.
        let kept_from = self.closed.first_key_value().map(|(k, _)| *k);
        let unseen = earliest < self.c.first_window_ms
            && kept_from.is_none_or(|k| k == self.c.first_window_ms);
        let (start, carry) = if unseen {
            let base = self
                .closed
                .first_key_value()
                .map_or_else(|| self.c.clone(), |(_, c)| c.carry.clone());
            (
                earliest,
                Carry {
                    first_window_ms: earliest,
                    ..base
                },
            )
        } else {
            match self.closed.range(from..).next() {
                Some((k, c)) => (*k, c.carry.clone()),
                None => (next, self.c.clone()),
            }
        };
        let mut before: BTreeMap<i64, KpiSums> = BTreeMap::new();
        for (k, c) in self.closed.split_off(&start) {
            before.insert(k, c.out);
            self.pending.entry(k).or_default().extend(c.events);
        }
        for o in late {
            let w = window_of(&o);
            if w < start {
                self.late_dropped += 1;
            } else {
                self.pending.entry(w).or_default().push(o);
            }
        }
        self.c = carry;
        // Every window before `next` has closed, so the replayed windows
        // may see as far as the last of them would have on time.
        let visible_to = next - cfg.window_ms + cfg.lookahead_ms();
        let mut changed = Vec::new();
        let mut w = start;
        while w < next {
            if let Some(aw) = self.close_with(w, cfg, Pass::Again, visible_to) {
                if before.get(&w) != Some(&aw.sums) {
                    changed.push(aw);
                }
            }
            w += cfg.window_ms;
        }
        changed
    }

    /// Late observations that were too old to replay.
    pub fn late_dropped(&self) -> u64 {
        self.late_dropped
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{cfg, obs, state, W};
    use super::*;
    use ctower_model::{AssetKey, Bucket, Role, Value};

    #[test]
    fn a_late_state_reclassifies_the_stop_before_it() {
        let c = AccumConfig {
            micro_stop_ms: 30_000,
            correction_horizon_ms: 10 * W,
            ..cfg()
        };
        let mut a = AssetAccumulator::new(AssetKey::new("s", "a", "l", "m"), 0);
        a.push(state(0, Bucket::Running), W);
        a.push(state(50_000, Bucket::UnplannedStop), W);
        for t in [10_000, 30_000, 65_000, 90_000, 110_000, 130_000] {
            a.push(obs(t, Role::Process, Value::Number(1.0)), W);
        }
        let w0 = a.close(0, &c).unwrap();
        assert_eq!(
            (w0.sums.unplanned_stop_ms, w0.sums.unplanned_stops),
            (10_000, 1)
        );
        let w1 = a.close(W, &c).unwrap();
        assert_eq!(w1.sums.unplanned_stop_ms, W);
        // The stop ended at 70 s: that state message comes after both
        // windows closed. Window 0's stop was a micro-stop after all.
        let fixed = a.correct(vec![state(70_000, Bucket::Running)], 2 * W, &c);
        let starts: Vec<i64> = fixed.iter().map(|w| w.window_start_ms).collect();
        assert_eq!(starts, [0, W]);
        assert_eq!(
            (fixed[0].sums.micro_stop_ms, fixed[0].sums.micro_stops),
            (10_000, 1)
        );
        assert_eq!(fixed[0].sums.unplanned_stops, 0);
        assert_eq!(
            (fixed[1].sums.micro_stop_ms, fixed[1].sums.running_ms),
            (10_000, 50_000)
        );
        assert_eq!(fixed[1].sums.messages, w1.sums.messages + 1);
        // Nothing late: nothing corrected.
        assert!(a.correct(vec![], 2 * W, &c).is_empty());
    }
}
