//! Counters and meters: what was counted between two readings is spread
//! pro rata over the interval between them, across windows; a gap longer
//! than the signal's maximum interval is reported as unmeasured.

use super::carry::{Pass, ReachBack};
use super::meter::{wrapping_delta, Meter, Reading};
use super::window::Run;
use ctower_model::time::window_start;
use ctower_model::Observation;
use std::sync::Arc;

/// One interval between two readings of a counter or meter.
#[derive(Debug, Clone, Copy)]
struct Interval {
    a: Reading,
    /// What was counted between the readings (reset- and rollover-safe).
    delta: f64,
    /// Its length, ms.
    dt: i64,
}

impl Interval {
    /// The part of Δ counted by `x`: Δ × (x − t₀) / dt, multiplied before
    /// dividing so that an exact half (11 × 15 / 22 = 7.5) stays exact for
    /// the rounding of units. Two readings at the same instant: all of it
    /// here.
    #[inline]
    fn upto(&self, x: i64) -> f64 {
        let (a, delta, dt) = (self.a, self.delta, self.dt);
        if dt <= 0 {
            if x > a.ts {
                delta
            } else {
                0.0
            }
        } else {
            delta * (x - a.ts) as f64 / dt as f64
        }
    }
}

impl Run<'_> {
    /// The part in `[lo, hi)` of what a counter or meter counted between
    /// readings `a` and `b` (`a.ts ≤ lo ≤ hi ≤ b.ts`), attributed to the
    /// product and start-up status in effect at `hi`.
    pub(super) fn share(&mut self, m: Meter, a: Reading, b: Reading, lo: i64, hi: i64) {
        let delta = wrapping_delta(Some(a.value), b.value, self.cfg.counter_rollover);
        let dt = b.ts - a.ts;
        let interval = Interval { a, delta, dt };
        if dt > 0 && hi <= lo {
            return;
        }
        let (lo, hi) = if dt <= 0 { (a.ts, b.ts + 1) } else { (lo, hi) };
        self.measured = true;
        if m.counts_units() {
            self.share_units(m, &interval, lo, hi);
        } else {
            self.share_quantity(m, &interval, lo, hi);
        }
    }

    /// Whole units, rounded at each boundary from the interval's start, so
    /// the parts of an interval add up to its increase; with their ideal
    /// time when the product is known.
    #[inline]
    fn share_units(&mut self, m: Meter, interval: &Interval, lo: i64, hi: i64) {
        let cfg = self.cfg;
        let sums = &mut self.sums;
        let units_to = |x: i64| interval.upto(x).round().max(0.0) as u64;
        let units = units_to(hi).saturating_sub(units_to(lo));
        let ideal = self
            .c
            .product
            .as_deref()
            .and_then(|p| cfg.ideal_cycle_ms.get(p))
            .copied();
        let in_startup = self.c.startup_until.is_some_and(|u| hi < u);
        let slot = match m {
            Meter::Total => &mut sums.produced,
            Meter::Good => &mut sums.good,
            _ => &mut sums.reject,
        };
        *slot = Some(slot.unwrap_or(0).saturating_add(units));
        let u = units as f64;
        match (m, ideal) {
            (Meter::Total, Some(ideal)) => {
                sums.ideal_time_ms += u * ideal;
                if in_startup {
                    sums.startup_ideal_ms += u * ideal;
                }
            }
            (Meter::Good, Some(ideal)) => {
                sums.good_ideal_ms += u * ideal;
                if in_startup {
                    sums.startup_good_ideal_ms += u * ideal;
                }
            }
            _ => {}
        }
    }

    /// Energy and water: the pro-rata part; energy also counts toward
    /// demand and measured time.
    #[inline]
    fn share_quantity(&mut self, m: Meter, interval: &Interval, lo: i64, hi: i64) {
        let sums = &mut self.sums;
        let part = interval.upto(hi) - interval.upto(lo);
        let slot = match m {
            Meter::Energy => &mut sums.energy_kwh,
            Meter::Feed => &mut sums.water_feed_m3,
            Meter::Permeate => &mut sums.water_permeate_m3,
            _ => &mut sums.water_concentrate_m3,
        };
        *slot = Some(slot.unwrap_or(0.0) + part);
        if m == Meter::Energy {
            // Demand only from fine-grained readings: an hourly meter's
            // hour says nothing about this window's peak.
            if interval.dt <= self.cfg.stale_after_ms {
                sums.demand_kwh += part;
            }
            if interval.dt > 0 {
                sums.energy_measured_ms += hi - lo;
            }
        }
    }

    /// A counter or meter reading: its increase since the previous reading
    /// is spread over the interval between them (this window's part here;
    /// earlier windows' parts when they closed, or again now), or reported
    /// as unmeasured after a gap.
    pub(super) fn reading(
        &mut self,
        m: Meter,
        obs: &Observation,
        value: f64,
        kept: &dyn Fn(i64) -> bool,
    ) {
        let cfg = self.cfg;
        let b = Reading {
            ts: obs.ts_ms,
            value,
        };
        let prev = self.c.meters[m.index()].replace(b);
        let Some(a) = prev else {
            // The first reading: where the counting starts.
            return;
        };
        if b.ts - a.ts > cfg.max_interval(&obs.signal) {
            let delta = wrapping_delta(Some(a.value), b.value, cfg.counter_rollover);
            let amount = if m.counts_units() {
                delta.round()
            } else {
                delta
            };
            *self
                .sums
                .unmeasured
                .entry(Arc::from(m.field()))
                .or_default() += amount;
            self.sums.meter_gaps += 1;
            return;
        }
        self.share(m, a, b, a.ts.max(self.w), b.ts);
        if a.ts >= self.w {
            return;
        }
        // The interval began in an earlier window. Those that closed
        // within the lookahead of this one saw this reading; the others
        // get their part by being computed again (if still kept), or it is
        // reported here as unmeasured (it cannot be placed any more).
        let lookahead = cfg.lookahead_ms();
        let first = window_start(a.ts, cfg.window_ms);
        let mut x = first;
        while x < self.w {
            let saw_it = x + lookahead >= self.w;
            if !saw_it {
                if kept(x) {
                    // Closing on time: computed again after this window.
                    // Computed again for late data: the replayed windows
                    // see this reading, the earlier ones got their part
                    // when it first closed.
                    if self.pass == Pass::Regular {
                        let from = self.reach.map_or(x, |r| r.from.min(x));
                        self.reach = Some(ReachBack { from });
                    }
                } else {
                    let lo = a.ts.max(x);
                    let hi = (x + cfg.window_ms).min(b.ts);
                    let delta = wrapping_delta(Some(a.value), b.value, cfg.counter_rollover);
                    let dt = (b.ts - a.ts) as f64;
                    let part = if m.counts_units() {
                        let at = |t: i64| (delta * (t - a.ts) as f64 / dt).round();
                        at(hi) - at(lo)
                    } else {
                        delta * (hi - lo) as f64 / dt
                    };
                    if part != 0.0 {
                        *self
                            .sums
                            .unmeasured
                            .entry(Arc::from(m.field()))
                            .or_default() += part;
                    }
                }
            }
            x += cfg.window_ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{cfg, obs, W};
    use super::super::{AccumConfig, AssetAccumulator};
    use super::*;
    use ctower_model::{AssetKey, Role, Value};
    use std::collections::BTreeMap;

    #[test]
    fn energy_across_a_meter_gap_is_unmeasured_not_lumped_into_one_window() {
        // 100 kW, a reading every 10 s; then two hours of silence.
        let c = cfg();
        let mut a = AssetAccumulator::new(AssetKey::new("s", "a", "l", "meter"), 0);
        let kwh_per_10s = 100.0 / 360.0;
        let meter = |t: i64| {
            obs(
                t,
                Role::EnergyKwh,
                Value::Number(kwh_per_10s * (t / 10_000) as f64),
            )
        };
        for t in (0..W).step_by(10_000) {
            a.push(meter(t), W);
        }
        let w0 = a.close(0, &c).unwrap();
        // 50 s measured in window 0: the interval 50–60 s ends in the
        // silence (its end reading never comes within the meter's
        // maximum interval).
        assert!((w0.sums.energy_kwh.unwrap() - 5.0 * kwh_per_10s).abs() < 1e-9);
        assert!((w0.sums.demand_kwh - 5.0 * kwh_per_10s).abs() < 1e-9);
        assert_eq!(w0.sums.energy_measured_ms, 50_000);
        let resume = 120 * W;
        for t in (resume..resume + W).step_by(10_000) {
            a.push(meter(t), W);
        }
        for w in (W..resume).step_by(W as usize) {
            let silent = a.close(w, &c).unwrap();
            assert_eq!(silent.sums.energy_kwh, None, "silence is not 0 kWh");
            assert_eq!(silent.sums.energy_meter_ms, W);
            assert_eq!(silent.sums.energy_measured_ms, 0);
        }
        let w = a.close(resume, &c).unwrap();
        // The gap's energy is counted, but as unmeasured: known in total,
        // not in time, so in no window's energy, cost or demand.
        let gap = w.sums.unmeasured.get("energy_kwh").copied().unwrap();
        assert!(
            (gap - (120.0 * 6.0 - 5.0) * kwh_per_10s).abs() < 1e-9,
            "{gap}"
        );
        assert_eq!(w.sums.meter_gaps, 1);
        assert!((w.sums.energy_kwh.unwrap() - 5.0 * kwh_per_10s).abs() < 1e-9);
        let record = ctower_model::KpiRecord::new(
            resume,
            resume + W,
            w.asset.scope(ctower_model::Level::Asset),
            w.sums,
        );
        let kw = record.peak_demand_kw.unwrap();
        assert!((kw - 100.0 * 5.0 / 6.0).abs() < 1e-6, "{kw}");
    }

    /// Issue #8 item 3: a meter's increase belongs to the time between its
    /// two readings, not to the window of the later one.
    #[test]
    fn meter_increases_are_spread_over_their_interval_across_windows() {
        let c = cfg();
        let mut a = AssetAccumulator::new(AssetKey::new("s", "u", "ro-1", "skid"), 0);
        let feed = |t: i64, v: f64| obs(t, Role::WaterFeedM3, Value::Number(v));
        // 1 m³ every 30 s, read at 45 s and 75 s: 0.5 m³ of that interval
        // is window 0's (45–60 s), 0.5 m³ window 1's (60–75 s).
        a.push(feed(15_000, 10.0), W);
        a.push(feed(45_000, 11.0), W);
        a.push(feed(75_000, 12.0), W);
        a.push(feed(105_000, 13.0), W);
        let w0 = a.close(0, &c).unwrap();
        assert!((w0.sums.water_feed_m3.unwrap() - 1.5).abs() < 1e-12);
        let w1 = a.close(W, &c).unwrap();
        assert!((w1.sums.water_feed_m3.unwrap() - 1.5).abs() < 1e-12);
        // The interval open at the end of window 1 ends beyond what it
        // sees (105 s is in window 1: seen): 105–120 s has no end reading.
        let w2 = a.close(2 * W, &c).unwrap();
        assert_eq!(w2.sums.water_feed_m3, None);
        assert!(a.take_corrections().is_empty());
    }

    #[test]
    fn units_are_spread_as_whole_units_that_add_up() {
        let c = AccumConfig {
            max_interval_ms: [(Arc::from("CounterTotal"), 10 * W)].into_iter().collect(),
            correction_horizon_ms: 30 * W,
            ..cfg()
        };
        let mut a = AssetAccumulator::new(AssetKey::new("s", "a", "l", "m"), 0);
        let total = |t: i64, v: f64| obs(t, Role::CounterTotal, Value::Number(v));
        // 7 units over 200 s, crossing four windows.
        a.push(total(10_000, 100.0), W);
        a.push(total(210_000, 107.0), W);
        let mut got = Vec::new();
        for w in (0..5 * W).step_by(W as usize) {
            got.extend(a.close(w, &c));
            got.extend(a.take_corrections());
        }
        // The latest result of each window.
        let mut latest: BTreeMap<i64, u64> = BTreeMap::new();
        for aw in got {
            latest.insert(aw.window_start_ms, aw.sums.produced.unwrap_or(0));
        }
        // 0–60 s: 50 s of 200 → 1.75 → 2; then 60 s each → 3.85 → 4 (2);
        // 6.0 (2); 7 (1).
        assert_eq!(
            latest.values().copied().collect::<Vec<_>>(),
            vec![2, 2, 2, 1, 0]
        );
        assert_eq!(latest.values().sum::<u64>(), 7);
    }

    /// Issue #8 item 3: an hourly meter's volume of 23:00–24:00 belongs to
    /// that hour, across windows closed long before the 24:00 reading came.
    #[test]
    fn an_hourly_meter_corrects_the_windows_that_closed_before_its_next_reading() {
        let hour = 60 * W;
        let c = AccumConfig {
            max_interval_ms: [(Arc::from("WaterFeedM3"), hour)].into_iter().collect(),
            correction_horizon_ms: hour + 10 * W,
            ..cfg()
        };
        let mut a = AssetAccumulator::new(AssetKey::new("s", "u", "ro-1", "meter"), 0);
        let feed = |t: i64, v: f64| obs(t, Role::WaterFeedM3, Value::Number(v));
        a.push(feed(0, 1_000.0), W);
        a.push(feed(hour, 1_060.0), W);
        let mut first = BTreeMap::new();
        for w in (0..hour - W).step_by(W as usize) {
            let aw = a.close(w, &c).unwrap();
            first.insert(w, aw.sums.water_feed_m3);
            assert!(a.take_corrections().is_empty());
        }
        // Window 59 sees the 60-min reading ahead: its minute, 1 m³.
        let w59 = a.close(hour - W, &c).unwrap();
        assert!((w59.sums.water_feed_m3.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(first[&0], None, "the first windows could not know yet");
        // Closing the window of the reading corrects the ones that closed
        // without seeing it: 1 m³ a minute each.
        a.close(hour, &c).unwrap();
        let fixed = a.take_corrections();
        let lookahead_windows = c.lookahead_ms() / W;
        assert_eq!(fixed.len() as i64, 60 - lookahead_windows);
        for aw in &fixed {
            assert!(
                (aw.sums.water_feed_m3.unwrap() - 1.0).abs() < 1e-9,
                "{aw:?}"
            );
        }
        // Without kept windows (no corrections), the part that can no
        // longer be placed is reported, not lost.
        let no_history = AccumConfig {
            correction_horizon_ms: 0,
            ..c.clone()
        };
        let mut b = AssetAccumulator::new(AssetKey::new("s", "u", "ro-1", "meter"), 0);
        b.push(feed(0, 1_000.0), W);
        b.push(feed(hour, 1_060.0), W);
        let mut placed = 0.0;
        let mut unmeasured = 0.0;
        for w in (0..=hour).step_by(W as usize) {
            let aw = b.close(w, &no_history).unwrap();
            placed += aw.sums.water_feed_m3.unwrap_or(0.0);
            unmeasured += aw
                .sums
                .unmeasured
                .get("water_feed_m3")
                .copied()
                .unwrap_or(0.0);
        }
        assert!(b.take_corrections().is_empty());
        assert!((placed - lookahead_windows as f64).abs() < 1e-9, "{placed}");
        assert!((placed + unmeasured - 60.0).abs() < 1e-9, "{unmeasured}");
    }
}
