//! Late data and window closing of the `Assets` operator, as a plain struct:
//! no timely types, no I/O, no clock. The operator
//! ([`super::AssetsExt::assets`]) only feeds it and emits what it says.
//!
//! Timely time is a window start (ms). The ingest sends each observation at
//! its [`stamp`]: its window, or the window of the watermark at its
//! admission if that is later (it came after its window could have closed).
//! Here, an observation is
//!
//! - **on time** when it came no later than the close of the earliest
//!   window it can change (its own, or for a state the window where a stop
//!   it may end as a micro-stop began): it goes to its asset's
//!   accumulator, and its window closes once the input frontier is past
//!   the window by the lookahead;
//! - **late** otherwise (decided by its time alone, never by what this
//!   worker happens to have seen): it is held, with a hold token (the
//!   operator's capability) for the time it came at, and once the frontier
//!   passes that time it is applied as a correction
//!   ([`AssetAccumulator::correct`]): the windows from the earliest one it
//!   touches are replayed up to `upto`, the first window not closed when it
//!   came, and those that changed are emitted at `upto` — so the roll-up
//!   applies them before that window closes;
//! - **too late** when the replay cannot reach back to its window (older
//!   than the windows kept for the correction horizon): it is dropped and
//!   counted ([`AssetSchedule::take_late_dropped`]). The collector's
//!   admission already dead-letters what is older than the horizon, so
//!   this is rare.
//!
//! Steps run in time order: a correction at `t` after every window closing
//! before `t` and before any closing after it, so what each revision holds
//! is fixed by the input alone.

use super::retire::{retire, retired_windows, Retired};
use crate::accum::{AccumConfig, AssetAccumulator, AssetWindow};
use crate::operators::{to_time, Time};
use ctower_model::time::window_start;
use ctower_model::{AssetKey, AssetMap, Observation, Role};
use std::collections::BTreeMap;

/// The timely time (a window start, ms) an observation is sent at: its
/// window, or the window of the watermark when the collector admitted it if
/// that is later (it came after its window could have closed). Fixed by the
/// input alone, never by scheduling.
#[inline]
pub(crate) fn stamp(o: &Observation, window_ms: i64) -> i64 {
    let w = window_start(o.ts_ms, window_ms);
    o.watermark_ms
        .map_or(w, |wm| w.max(window_start(wm, window_ms)))
}

/// The first window start at or after `ms`.
fn align_up(ms: i64, window_ms: i64) -> i64 {
    window_start(ms + window_ms - 1, window_ms)
}

/// What is due next, and the time its asset windows are emitted at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Apply the late observations that came at `came` as corrections.
    Correct { came: Time, at: Time },
    /// Close the next window (it starts at `at`).
    Close { at: Time },
}

impl Step {
    /// The time the step's asset windows are emitted at.
    pub(crate) fn at(self) -> Time {
        match self {
            Step::Correct { at, .. } | Step::Close { at } => at,
        }
    }
}

/// One worker's assets, and when their windows close and late data is
/// applied. `H` is what holds back the output for held late data (timely's
/// capability in the operator, `()` in tests).
#[derive(Debug)]
pub(crate) struct AssetSchedule<H> {
    cfg: AccumConfig,
    /// Whole windows the accumulators must see past a window to close it.
    lookahead: Time,
    /// Any order: the roll-up sorts each window's assets.
    accs: AssetMap<AssetAccumulator>,
    /// Assets retired after a silence: no state, reported at their line
    /// until forgotten.
    retired: AssetMap<Retired>,
    /// The next window this worker closes.
    next: Option<i64>,
    /// Late observations by the time they came at, with their hold.
    late: BTreeMap<Time, (H, Vec<Observation>)>,
    /// The time the operator's output is held at: nothing is emitted
    /// before it.
    output_at: Time,
    /// Late observations too old to replay, since last taken.
    late_dropped: u64,
}

impl<H> AssetSchedule<H> {
    pub(crate) fn new(cfg: AccumConfig) -> Self {
        AssetSchedule {
            lookahead: cfg.lookahead_ms() as Time,
            cfg,
            accs: AssetMap::default(),
            retired: AssetMap::default(),
            next: None,
            late: BTreeMap::new(),
            output_at: 0,
            late_dropped: 0,
        }
    }

    /// An observation that came at timely time `came` (`None`: a message
    /// without a time, which claims no progress). On time it goes to its
    /// accumulator; late it is held, with `hold()` taken for the first one
    /// of its time (`None` from `hold`: it is taken as on time).
    #[inline]
    pub(crate) fn admit(
        &mut self,
        came: Option<Time>,
        obs: Observation,
        hold: impl FnOnce() -> Option<H>,
    ) {
        let window_ms = self.cfg.window_ms;
        let micro_stop_ms = self.cfg.micro_stop_ms;
        let w = window_start(obs.ts_ms, window_ms);
        // The earliest window the observation can change: a state may end
        // a stop that began up to the micro-stop threshold before it, in an
        // earlier window.
        let affects = if obs.role == Role::State && micro_stop_ms > 0 {
            window_start(obs.ts_ms - micro_stop_ms, window_ms)
        } else {
            w
        };
        // Late (that window may have closed already) is decided by the
        // time alone, never by what this worker happens to have seen.
        if let Some(t) = came {
            if t > to_time(affects) + self.lookahead {
                if let Some(held) = self.late.get_mut(&t) {
                    held.1.push(obs);
                    return;
                }
                if let Some(h) = hold() {
                    self.late.insert(t, (h, vec![obs]));
                    return;
                }
            }
        }
        self.next = Some(self.next.map_or(w, |n| n.min(w)));
        // A retired asset that speaks again starts afresh (its stub goes
        // when its new first window closes).
        match self.accs.get_mut(&obs.asset) {
            Some(acc) => acc.push(obs, window_ms),
            None => {
                let mut acc = AssetAccumulator::new(obs.asset.clone(), w);
                acc.push(obs, window_ms);
                self.accs.insert(acc.key().clone(), acc);
            }
        }
    }

    /// What is due with the input frontier at `limit` (`None`: the input
    /// ended): corrections first, unless a window closes before them; a
    /// window closes once the frontier is past it by the lookahead
    /// (micro-stops need to see a stop's end, meters their next reading).
    pub(crate) fn due(&self, limit: Option<Time>) -> Option<Step> {
        let close_at = self.next.map(|w| to_time(w) + self.lookahead);
        let late_at = self.late.first_key_value().map(|(t, _)| *t);
        let due = |t: Time| limit.is_none_or(|l| t < l);
        match (late_at, close_at) {
            (Some(t), close) if due(t) && close.is_none_or(|k| t <= k || !due(k)) => {
                // Every window closing before `t` is closed, none after:
                // the replay runs up to the first of those.
                let upto = self.upto(t);
                Some(Step::Correct {
                    came: t,
                    at: to_time(upto).max(self.output_at),
                })
            }
            (_, Some(k)) if limit.is_some_and(|l| k < l) => {
                self.next.map(|w| Step::Close { at: to_time(w) })
            }
            _ => None,
        }
    }

    /// The first window not closed when late data came at `t`.
    fn upto(&self, t: Time) -> i64 {
        align_up(t as i64 - self.lookahead as i64, self.cfg.window_ms)
    }

    /// Runs a step from [`due`](Self::due); `emit` takes its asset windows
    /// (emitted at [`Step::at`]).
    pub(crate) fn run(&mut self, step: Step, emit: impl FnMut(AssetWindow)) {
        match step {
            Step::Correct { came, .. } => self.correct(came, emit),
            Step::Close { at } => self.close(at as i64, emit),
        }
    }

    /// Applies the late observations that came at `t`. They are emitted at
    /// the first window not closed yet (the output is held there while late
    /// data waits), so the roll-up applies the corrections before that
    /// window closes: a shift or day still open when the late data came is
    /// emitted with it, at revision 0, not corrected after.
    fn correct(&mut self, t: Time, mut emit: impl FnMut(AssetWindow)) {
        let Some((_hold, obs)) = self.late.remove(&t) else {
            return;
        };
        let upto = self.upto(t);
        let mut by_asset: BTreeMap<AssetKey, Vec<Observation>> = BTreeMap::new();
        for o in obs {
            by_asset.entry(o.asset.clone()).or_default().push(o);
        }
        for (key, obs) in by_asset {
            // An asset first seen in late data appears as of now.
            let acc = self
                .accs
                .entry(key.clone())
                .or_insert_with(|| AssetAccumulator::new(key, upto));
            let dropped = acc.late_dropped();
            for aw in acc.correct(obs, upto, &self.cfg) {
                emit(aw);
            }
            self.late_dropped += acc.late_dropped() - dropped;
        }
        // A new asset's windows from `upto` on close as usual (no asset of
        // this worker had them before).
        self.next = Some(self.next.map_or(upto, |n| n.min(upto)));
    }

    /// Closes window `w` for every asset, then retires the silent ones.
    fn close(&mut self, w: i64, mut emit: impl FnMut(AssetWindow)) {
        let cfg = &self.cfg;
        for (key, acc) in self.accs.iter_mut() {
            // A retired asset that spoke again resumes its counters and
            // product as its first window closes (not when its data
            // happened to arrive: that depends on timing).
            if acc.first_window_ms() == w {
                if let Some(r) = self.retired.get(key) {
                    acc.seed_readings(&r.readings);
                }
            }
            if let Some(aw) = acc.close(w, cfg) {
                emit(aw);
            }
            // Earlier windows of a meter interval that ended in this one:
            // corrections at `w`.
            for aw in acc.take_corrections() {
                emit(aw);
            }
        }
        for aw in retired_windows(&mut self.retired, &self.accs, w, cfg) {
            emit(aw);
        }
        retire(&mut self.accs, &mut self.retired, w + cfg.window_ms, cfg);
        self.next = Some(w + cfg.window_ms);
    }

    /// After the due steps, with the input frontier at `limit`: the time to
    /// hold the output at, the earliest anything may still be emitted at —
    /// the next window to close; the first window on-time data can still
    /// reach (frontier − lookahead); and, for each held late batch, the
    /// window its replay ends at. Never earlier than before.
    pub(crate) fn hold(&mut self, limit: Time) -> Time {
        let window_ms = self.cfg.window_ms;
        let reachable = align_up(limit as i64 - self.lookahead as i64, window_ms);
        let replay = self.late.keys().next().map(|t| self.upto(*t));
        let hold = [self.next, Some(reachable), replay]
            .into_iter()
            .flatten()
            .min()
            .map_or(limit, to_time);
        self.output_at = self.output_at.max(hold);
        self.output_at
    }

    /// Late observations dropped as too old to replay since the last call.
    pub(crate) fn take_late_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.late_dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctower_model::{Bucket, Value};
    use std::collections::HashMap;

    const W: i64 = 60_000;

    /// One-minute windows; a lookahead of one window (the stale time);
    /// corrections kept for `horizon_windows`.
    fn schedule(horizon_windows: i64) -> AssetSchedule<()> {
        AssetSchedule::new(AccumConfig {
            window_ms: W,
            stale_after_ms: 30_000,
            max_interval_ms: Default::default(),
            retire_after_ms: 0,
            forget_after_ms: 0,
            ideal_cycle_ms: HashMap::new(),
            conductivity_limit_us_cm: 1.3,
            toc_limit_ppb: 500.0,
            micro_stop_ms: 0,
            startup_ms: 0,
            counter_rollover: None,
            correction_horizon_ms: horizon_windows * W,
            energy: Default::default(),
            calendars: Default::default(),
        })
    }

    /// A running machine's state at `ts`, admitted with the watermark at
    /// `watermark`.
    fn running(ts: i64, watermark: Option<i64>) -> Observation {
        Observation {
            asset: AssetKey::new("s", "a", "l", "m"),
            signal: "state".into(),
            role: Role::State,
            ts_ms: ts,
            value: Value::State {
                bucket: Bucket::Running,
                code: "run".into(),
                reason: None,
            },
            seq: ts as u64,
            watermark_ms: watermark,
        }
    }

    /// Admits `obs` at its stamp, as the ingest sends it.
    fn admit(s: &mut AssetSchedule<()>, obs: Observation) {
        let t = to_time(stamp(&obs, W));
        s.admit(Some(t), obs, || Some(()));
    }

    /// Runs every due step with the frontier at `limit`, as the operator
    /// does, then holds the output; returns each step with the (window
    /// start, messages) of the asset windows it emitted.
    fn advance(s: &mut AssetSchedule<()>, limit: Time) -> Vec<(Step, Vec<(i64, u64)>)> {
        let mut out = Vec::new();
        while let Some(step) = s.due(Some(limit)) {
            let mut windows = Vec::new();
            s.run(step, |aw| {
                windows.push((aw.window_start_ms, aw.sums.messages))
            });
            out.push((step, windows));
        }
        s.hold(limit);
        out
    }

    #[test]
    fn the_stamp_is_the_window_or_the_watermarks_window() {
        assert_eq!(stamp(&running(10_000, None), W), 0);
        assert_eq!(stamp(&running(10_000, Some(5_000)), W), 0);
        assert_eq!(stamp(&running(10_000, Some(3 * W + 1)), W), 3 * W);
    }

    #[test]
    fn on_time_data_closes_its_window_past_the_lookahead() {
        let mut s = schedule(10);
        admit(&mut s, running(10_000, None));
        assert!(s.late.is_empty(), "on time: not held");
        // Window 0 closes once the frontier is past 0 + one window.
        assert_eq!(s.due(Some(W as Time)), None);
        assert_eq!(s.due(Some(2 * W as Time)), Some(Step::Close { at: 0 }));
        let got = advance(&mut s, 2 * W as Time);
        assert_eq!(got, vec![(Step::Close { at: 0 }, vec![(0, 1)])]);
        // Held at the next window to close (also the first on-time data
        // can still reach).
        assert_eq!(s.hold(2 * W as Time), W as Time);
    }

    #[test]
    fn late_data_is_held_then_corrects_the_windows_it_reaches() {
        let mut s = schedule(10);
        admit(&mut s, running(10_000, None));
        advance(&mut s, 2 * W as Time);
        // A message of window 0 admitted when the watermark was in window
        // 2: it came at 2W, past window 0's close (W + lookahead).
        admit(&mut s, running(20_000, Some(2 * W + 5_000)));
        assert_eq!(s.late.len(), 1, "held");
        // Not due until the frontier passes the time it came at; meanwhile
        // the output is held at the window its replay ends at (2W − W).
        assert_eq!(s.due(Some(2 * W as Time)), None);
        assert_eq!(s.hold(2 * W as Time), W as Time);
        // The correction first (window 1 closes at 2W too: not before the
        // late data came): window 0 again, now with both messages, emitted
        // at the first window not closed when it came; then window 1.
        let got = advance(&mut s, 3 * W as Time);
        assert_eq!(
            got,
            vec![
                (
                    Step::Correct {
                        came: 2 * W as Time,
                        at: W as Time
                    },
                    vec![(0, 2)]
                ),
                (Step::Close { at: W as Time }, vec![(W, 0)]),
            ]
        );
        assert!(s.late.is_empty());
        assert_eq!(s.take_late_dropped(), 0);
    }

    #[test]
    fn data_too_old_to_replay_is_dropped_and_counted() {
        // No history kept: a closed window cannot be replayed.
        let mut s = schedule(0);
        admit(&mut s, running(10_000, None));
        advance(&mut s, 3 * W as Time);
        admit(&mut s, running(20_000, Some(3 * W)));
        let got = advance(&mut s, 4 * W as Time);
        assert_eq!(
            got,
            vec![
                (
                    Step::Correct {
                        came: 3 * W as Time,
                        at: 2 * W as Time
                    },
                    vec![]
                ),
                (Step::Close { at: 2 * W as Time }, vec![(2 * W, 0)]),
            ]
        );
        assert_eq!(s.take_late_dropped(), 1);
        assert_eq!(s.take_late_dropped(), 0, "taken once");
    }

    #[test]
    fn steps_run_in_time_order() {
        let mut s = schedule(10);
        admit(&mut s, running(10_000, None));
        // Late data for window 0 that came at 3W (the watermark in window
        // 3), and on-time data up to window 2; nothing ran yet.
        admit(&mut s, running(30_000, Some(3 * W)));
        admit(&mut s, running(W + 10_000, None));
        admit(&mut s, running(2 * W + 10_000, None));
        let steps: Vec<Step> = advance(&mut s, 4 * W as Time)
            .into_iter()
            .map(|(step, _)| step)
            .collect();
        // Windows 0 and 1 close before the time the late data came (at W
        // and 2W: past them by the lookahead); window 2 closes at 3W, that
        // time itself, and a tie goes to the correction, emitted at 2W (the
        // first window not closed then); then window 2. Window 3 would close
        // at 4W: not before the frontier passes it.
        assert_eq!(
            steps,
            vec![
                Step::Close { at: 0 },
                Step::Close { at: W as Time },
                Step::Correct {
                    came: 3 * W as Time,
                    at: 2 * W as Time
                },
                Step::Close { at: 2 * W as Time },
            ]
        );
    }
}
