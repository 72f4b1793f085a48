//! The computation of one window from what the asset carried into it: the
//! machine-state time model, water quality, the calendar, energy cost and
//! CO2e, signal statistics.

use super::ahead::Ahead;
use super::carry::{Carry, Pass, ReachBack};
use super::meter::Meter;
use super::AccumConfig;
use crate::calendar::SiteCalendar;
use ctower_model::kpi::KpiSums;
use ctower_model::{AssetKey, Bucket, Observation, Role, SignalWindow, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy)]
pub(super) struct Stats {
    pub(super) count: u64,
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) sum: f64,
    pub(super) last: f64,
}

/// The computation of one window from what the asset carried into it.
pub(super) struct Run<'a> {
    pub(super) key: &'a AssetKey,
    pub(super) cfg: &'a AccumConfig,
    pub(super) w: i64,
    pub(super) c: Carry,
    pub(super) sums: KpiSums,
    pub(super) stats: BTreeMap<(Arc<str>, Role), Stats>,
    /// A counter or meter interval overlapped the window.
    pub(super) measured: bool,
    /// Earlier windows that closed without the end of a meter interval
    /// that ended in this one.
    pub(super) reach: Option<ReachBack>,
    pub(super) pass: Pass,
}

impl Run<'_> {
    /// Integrates the window; `events` in event order. `kept` tells which
    /// earlier windows can still be corrected. Returns the window's signal
    /// statistics; the sums are in `self.sums`, the carry out in `self.c`.
    pub(super) fn window(
        &mut self,
        events: &[Observation],
        ahead: &Ahead,
        kept: &dyn Fn(i64) -> bool,
    ) -> Vec<SignalWindow> {
        let (w, cfg) = (self.w, self.cfg);
        let end = w + cfg.window_ms;
        // A stop carried in from a break or from outside the shifts.
        let carried_stop = (self.c.state == Some(Bucket::UnplannedStop) && self.c.stop_uncounted)
            .then_some(self.c.stop_micro);
        self.sums.messages = events.len() as u64;
        self.sums.assets = 1;
        self.meter_time(events, end);
        let mut cursor = w;
        for obs in events {
            self.integrate(cursor, obs.ts_ms);
            self.integrate_quality(cursor, obs.ts_ms);
            cursor = obs.ts_ms;
            self.apply(obs, &ahead.changes, kept);
        }
        self.integrate(cursor, end);
        self.integrate_quality(cursor, end);
        self.open_intervals(ahead, end);
        let calendar = cfg.calendars.get(&self.key.site);
        self.calendar(calendar, carried_stop);
        self.energy(calendar);
        self.sums.assets_reporting = u64::from(self.reporting());
        self.signal_windows(end)
    }

    /// Meter time: the whole window for a known meter, else from the
    /// meter's first reading in it.
    fn meter_time(&mut self, events: &[Observation], end: i64) {
        let meter_from = match self.c.meters[Meter::Energy.index()] {
            Some(_) => Some(self.w),
            None => events
                .iter()
                .find(|o| o.role == Role::EnergyKwh && matches!(o.value, Value::Number(_)))
                .map(|o| o.ts_ms),
        };
        if let Some(from) = meter_from {
            self.sums.energy_meter_ms = end - from;
        }
    }

    /// The intervals still open at the window's end whose end reading is
    /// already seen ahead: the window's part of them.
    fn open_intervals(&mut self, ahead: &Ahead, end: i64) {
        for m in Meter::ALL {
            let (Some(a), Some((b, signal))) = (self.c.meters[m.index()], &ahead.next[m.index()])
            else {
                continue;
            };
            if b.ts - a.ts <= self.cfg.max_interval(signal) {
                self.share(m, a, *b, a.ts.max(self.w), end);
            }
        }
    }

    /// What the site's calendar says of the window (see [`apply_calendar`]),
    /// and when a stop carried into it counts as a failure.
    fn calendar(&mut self, calendar: Option<&SiteCalendar>, carried_stop: Option<bool>) {
        let overridden =
            calendar.is_some_and(|cal| apply_calendar(&mut self.sums, &cal.classify(self.w)));
        if overridden {
            // No failure in a break or outside the shifts; one is counted
            // where the stop enters planned production time.
            self.c.stop_uncounted = self.c.state == Some(Bucket::UnplannedStop);
        } else {
            if let Some(micro) = carried_stop {
                if micro {
                    self.sums.micro_stops += 1;
                } else {
                    self.sums.unplanned_stops += 1;
                }
            }
            self.c.stop_uncounted = false;
        }
    }

    /// CO2e and cost of the window's energy, at the site's factor and the
    /// tariff's rate at the window's local start.
    fn energy(&mut self, calendar: Option<&SiteCalendar>) {
        let cfg = self.cfg;
        if let (Some(e), Some(kwh)) = (cfg.energy.get(&self.key.site), self.sums.energy_kwh) {
            self.sums.co2e_kg = Some(e.kg_co2e(kwh));
            self.sums.co2e_factor_kwh = kwh;
            // The settings guarantee a calendar (time zone) for a tariff.
            if let Some(cal) = calendar {
                let (day, minute) = cal.weekday_minute(self.w);
                if let Some(day) = crate::energy::Day::from_number_from_monday(day) {
                    self.sums.energy_cost = Some(e.tariff.cost(kwh, day, minute));
                    self.sums.priced_kwh = kwh;
                }
            }
        }
    }

    /// Whether the asset reported anything in the window.
    fn reporting(&self) -> bool {
        let s = &self.sums;
        s.messages > 0
            || s.modelled_ms() > s.unknown_ms
            || self.measured
            || s.conductivity_measured_ms > 0
            || s.toc_measured_ms > 0
    }

    /// The window's statistics of each free numeric signal.
    fn signal_windows(&mut self, end: i64) -> Vec<SignalWindow> {
        std::mem::take(&mut self.stats)
            .into_iter()
            .map(|((signal, role), s)| SignalWindow {
                window_start_ms: self.w,
                window_end_ms: end,
                asset: self.key.clone(),
                signal,
                role,
                count: s.count,
                min: s.min,
                max: s.max,
                mean: s.sum / s.count as f64,
                last: s.last,
            })
            .collect()
    }

    /// Adds the time in `[a, b)` to the current bucket, or to UNKNOWN where
    /// the asset has been silent for longer than `stale_after_ms`.
    pub(super) fn integrate(&mut self, a: i64, b: i64) {
        if !self.c.modelled || b <= a {
            return;
        }
        let sums = &mut self.sums;
        let (state, stale_from) = match (self.c.state, self.c.last_msg_ms) {
            (Some(s), Some(last)) => (s, (last + self.cfg.stale_after_ms).clamp(a, b)),
            _ => (Bucket::Unknown, a),
        };
        if state == Bucket::UnplannedStop && self.c.stop_micro {
            sums.micro_stop_ms += stale_from - a;
        } else {
            add_time(sums, state, stale_from - a);
            if state == Bucket::UnplannedStop && stale_from > a {
                let reason = self
                    .c
                    .reason
                    .clone()
                    .unwrap_or_else(|| Arc::from(UNSPECIFIED));
                *sums.unplanned_stop_by_reason_ms.entry(reason).or_default() += stale_from - a;
            }
        }
        add_time(sums, Bucket::Unknown, b - stale_from);
    }

    /// Water quality time in `[a, b)`: a reading holds until the next
    /// reading of the same signal or until it is `stale_after_ms` old.
    pub(super) fn integrate_quality(&mut self, a: i64, b: i64) {
        let stale_after_ms = self.cfg.stale_after_ms;
        // Readings are applied before the interval that follows them, so
        // a reading's time is never after `a`.
        let held = |reading: Option<(i64, bool)>| {
            reading.map_or(0, |(t, _)| ((t + stale_after_ms).min(b) - a).max(0))
        };
        let (c, t) = (held(self.c.conductivity), held(self.c.toc));
        let sums = &mut self.sums;
        sums.conductivity_measured_ms += c;
        sums.toc_measured_ms += t;
        if self.c.conductivity.is_some_and(|(_, ok)| ok) {
            sums.conductivity_within_ms += c;
        }
        if self.c.toc.is_some_and(|(_, ok)| ok) {
            sums.toc_within_ms += t;
        }
    }
    /// Applies one observation (in event order) to the carry, the sums and
    /// the signal statistics.
    pub(super) fn apply(
        &mut self,
        obs: &Observation,
        changes: &[(i64, u64, bool)],
        kept: &dyn Fn(i64) -> bool,
    ) {
        self.c.last_msg_ms = Some(obs.ts_ms);
        match (obs.role, &obs.value) {
            (Role::State, Value::State { .. })
                if self.c.state_signal.as_ref() != Some(&obs.signal) =>
            {
                self.sums.rejected_state_messages += 1;
            }
            (Role::State, Value::State { bucket, reason, .. }) => {
                self.state(obs, *bucket, reason, changes);
            }
            (Role::Product, Value::Text(p)) => self.c.product = Some(p.clone()),
            (role, Value::Number(v)) if Meter::of(role).is_some() => {
                if let Some(m) = Meter::of(role) {
                    self.reading(m, obs, *v, kept);
                }
            }
            (
                role @ (Role::PowerKw | Role::ConductivityUsCm | Role::TocPpb | Role::Process),
                Value::Number(v),
            ) => self.value(obs, role, *v),
            // The collector only emits role/value pairs that match; anything
            // else carries no KPI meaning.
            _ => {}
        }
    }

    /// A state message of the signal that owns the time model.
    #[inline]
    fn state(
        &mut self,
        obs: &Observation,
        bucket: Bucket,
        reason: &Option<Arc<str>>,
        changes: &[(i64, u64, bool)],
    ) {
        let cfg = self.cfg;
        self.c.reason.clone_from(reason);
        // A stop begins on a change into an unplanned stop (a
        // repeated "stopped" heartbeat is the same stop). It is a
        // micro-stop when the owner's next other state comes within
        // the threshold.
        if bucket == Bucket::UnplannedStop && self.c.state != Some(Bucket::UnplannedStop) {
            let ends = changes
                .iter()
                .find(|&&(t, seq, stop)| (t, seq) > (obs.ts_ms, obs.seq) && !stop)
                .map(|&(t, _, _)| t);
            self.c.stop_micro =
                cfg.micro_stop_ms > 0 && ends.is_some_and(|t| t - obs.ts_ms <= cfg.micro_stop_ms);
            if self.c.stop_micro {
                self.sums.micro_stops += 1;
            } else {
                self.sums.unplanned_stops += 1;
            }
        }
        if bucket == Bucket::Running
            && matches!(
                self.c.state,
                Some(Bucket::Changeover | Bucket::PlannedStop | Bucket::NoShift)
            )
        {
            self.c.startup_until = Some(obs.ts_ms + cfg.startup_ms);
        }
        self.c.state = Some(bucket);
    }

    /// A free numeric value (power, water quality, a process value): its
    /// statistics, and for water quality the limits.
    #[inline]
    fn value(&mut self, obs: &Observation, role: Role, v: f64) {
        let cfg = self.cfg;
        let quality = match role {
            Role::ConductivityUsCm => {
                Some((&mut self.c.conductivity, cfg.conductivity_limit_us_cm))
            }
            Role::TocPpb => Some((&mut self.c.toc, cfg.toc_limit_ppb)),
            _ => None,
        };
        if let Some((reading, limit)) = quality {
            let ok = v <= limit;
            if !ok && reading.is_none_or(|(_, was_ok)| was_ok) {
                self.sums.usp_excursions += 1;
            }
            *reading = Some((obs.ts_ms, ok));
        }
        if role == Role::PowerKw {
            self.sums.power_kw = Some(v);
        }
        self.stats
            .entry((obs.signal.clone(), role))
            .and_modify(|s| {
                s.count += 1;
                s.min = s.min.min(v);
                s.max = s.max.max(v);
                s.sum += v;
                s.last = v;
            })
            .or_insert(Stats {
                count: 1,
                min: v,
                max: v,
                sum: v,
                last: v,
            });
    }
}

/// The calendar decides what is planned: outside every shift, the known
/// time of the window is no-shift; in a break or planned maintenance it is
/// planned downtime. Stops there are no failures. UNKNOWN stays UNKNOWN.
///
/// Units made there still count (produced, good, reject) but their ideal
/// time does not: it would be performance without actual production time.
/// Returns whether the calendar overrode the window.
pub(super) fn apply_calendar(sums: &mut KpiSums, slot: &crate::calendar::Slot) -> bool {
    if slot.shift.is_some() && !slot.planned {
        return false;
    }
    let known = [
        &mut sums.running_ms,
        &mut sums.micro_stop_ms,
        &mut sums.unplanned_stop_ms,
        &mut sums.changeover_ms,
        &mut sums.planned_stop_ms,
        &mut sums.no_shift_ms,
    ]
    .into_iter()
    .map(std::mem::take)
    .sum::<i64>();
    if slot.shift.is_none() {
        sums.no_shift_ms = known;
    } else {
        sums.planned_stop_ms = known;
    }
    sums.unplanned_stop_by_reason_ms.clear();
    sums.unplanned_stops = 0;
    sums.micro_stops = 0;
    sums.ideal_time_ms = 0.0;
    sums.good_ideal_ms = 0.0;
    sums.startup_ideal_ms = 0.0;
    sums.startup_good_ideal_ms = 0.0;
    true
}

/// The reason of an unplanned stop whose state message gave none.
pub const UNSPECIFIED: &str = "unspecified";

/// Adds `ms` to the time of `bucket`.
#[inline]
pub(super) fn add_time(sums: &mut KpiSums, bucket: Bucket, ms: i64) {
    let slot = match bucket {
        Bucket::Running => &mut sums.running_ms,
        Bucket::PlannedStop => &mut sums.planned_stop_ms,
        Bucket::UnplannedStop => &mut sums.unplanned_stop_ms,
        Bucket::Changeover => &mut sums.changeover_ms,
        Bucket::NoShift => &mut sums.no_shift_ms,
        Bucket::Unknown => &mut sums.unknown_ms,
    };
    *slot += ms;
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{cfg, named_state, obs, state, with_calendar, W};
    use super::super::AssetAccumulator;
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn water_quality_time_within_limits_and_excursions() {
        let c = cfg();
        let mut a = AssetAccumulator::new(AssetKey::new("s", "u", "ro-1", "skid"), 0);
        let cond = |ts, v| obs(ts, Role::ConductivityUsCm, Value::Number(v));
        a.push(cond(0, 0.8), W);
        a.push(cond(20_000, 1.5), W); // excursion
        a.push(cond(30_000, 1.6), W); // still out: same excursion
        a.push(cond(40_000, 0.9), W);
        let w0 = a.close(0, &c).unwrap();
        assert_eq!(w0.sums.conductivity_measured_ms, W);
        assert_eq!(w0.sums.conductivity_within_ms, 20_000 + 20_000);
        assert_eq!(w0.sums.usp_excursions, 1);
        assert_eq!(w0.sums.toc_measured_ms, 0);
        // The last reading (t = 40 s) holds 30 s: 20 s into window 1.
        let w1 = a.close(W, &c).unwrap();
        assert_eq!(w1.sums.conductivity_measured_ms, 10_000);
        assert_eq!(w1.sums.conductivity_within_ms, 10_000);
    }

    #[test]
    fn integrates_states_staleness_and_counters_across_windows() {
        let c = cfg();
        let mut a = AssetAccumulator::new(AssetKey::new("s", "a", "l", "m"), 0);
        // Pushed out of order on purpose: the accumulator sorts by event time.
        a.push(obs(20_000, Role::CounterTotal, Value::Number(10.0)), W);
        a.push(state(5, Bucket::Running), W);
        a.push(obs(1, Role::Product, Value::Text("p".into())), W);
        a.push(obs(2, Role::CounterTotal, Value::Number(0.0)), W);
        a.push(state(30_000, Bucket::UnplannedStop), W);
        let w0 = a.close(0, &c).unwrap();
        assert_eq!(w0.sums.unknown_ms, 5, "before the first state message");
        assert_eq!(w0.sums.running_ms, 30_000 - 5);
        assert_eq!(w0.sums.unplanned_stop_ms, 30_000);
        assert_eq!(w0.sums.unplanned_stops, 1);
        assert_eq!(w0.sums.produced, Some(10));
        assert_eq!(w0.sums.ideal_time_ms, 1000.0);
        // Window 1: no message; stale 30 s after the last one (t = 30 s), so
        // the whole of window 1 (60–120 s) is UNKNOWN.
        let w1 = a.close(W, &c).unwrap();
        assert_eq!(w1.sums.unknown_ms, W);
        assert_eq!(w1.sums.modelled_ms(), W);
        // A counter reset after a gap longer than the counter's maximum
        // interval (the stale time here): 3 after 10 means 3 new units,
        // never a negative count, but when is unknown: unmeasured, in no
        // window's production.
        a.push(
            obs(2 * W + 10_000, Role::CounterTotal, Value::Number(3.0)),
            W,
        );
        let w2 = a.close(2 * W, &c).unwrap();
        assert_eq!(w2.sums.produced, None);
        assert_eq!(w2.sums.unmeasured.get("produced"), Some(&3.0));
        assert_eq!(w2.sums.meter_gaps, 1);
        // 120–130 s stale; 130–160 s stopped; 160–180 s stale again.
        assert_eq!(w2.sums.unknown_ms, 10_000 + 20_000);
        assert_eq!(w2.sums.unplanned_stop_ms, 30_000);
    }

    #[test]
    fn short_stops_are_micro_stops_long_ones_breakdowns() {
        let c = AccumConfig {
            micro_stop_ms: 120_000,
            startup_ms: 0,
            counter_rollover: None,
            ..cfg()
        };
        let mut a = AssetAccumulator::new(AssetKey::new("s", "a", "l", "m"), 0);
        a.push(state(0, Bucket::Running), W);
        // 50 s stop across the window boundary: a micro-stop.
        a.push(state(40_000, Bucket::UnplannedStop), W);
        a.push(state(45_000, Bucket::UnplannedStop), W); // heartbeat, same stop
        a.push(state(90_000, Bucket::Running), W);
        // 150 s stop: a breakdown, its end seen two windows later.
        a.push(state(100_000, Bucket::UnplannedStop), W);
        a.push(state(250_000, Bucket::Running), W);
        for t in (10_000..300_000).step_by(20_000) {
            a.push(obs(t, Role::Process, Value::Number(1.0)), W);
        }
        let w0 = a.close(0, &c).unwrap();
        assert_eq!((w0.sums.micro_stop_ms, w0.sums.micro_stops), (20_000, 1));
        assert_eq!((w0.sums.unplanned_stop_ms, w0.sums.unplanned_stops), (0, 0));
        let w1 = a.close(W, &c).unwrap();
        assert_eq!(w1.sums.micro_stop_ms, 30_000);
        assert_eq!(
            (w1.sums.unplanned_stop_ms, w1.sums.unplanned_stops),
            (20_000, 1)
        );
        assert_eq!(w1.sums.running_ms, 10_000);
        assert_eq!(w1.sums.modelled_ms(), W);
        let w2 = a.close(2 * W, &c).unwrap();
        assert_eq!(w2.sums.unplanned_stop_ms, W);
        // Micro-stop time is actual production time: A counts it as up.
        let r = ctower_model::kpi::KpiRatios::from_sums(&w1.sums, W);
        assert_eq!(r.availability, Some(40_000.0 / 60_000.0));
        // No counter: the minor-stop loss is unknown (it needs the ideal
        // time of what was made), the breakdown loss is known.
        assert_eq!(r.loss_minor_stop_ms, None);
        assert_eq!(r.loss_breakdown_ms, Some(20_000.0));
    }

    #[test]
    fn a_second_state_signal_is_rejected_not_double_counted() {
        let c = cfg();
        let mut a = AssetAccumulator::new(AssetKey::new("s", "a", "l", "m"), 0);
        a.push(named_state(0, "state", Bucket::Running), W);
        a.push(named_state(10_000, "fault_state", Bucket::UnplannedStop), W);
        a.push(named_state(20_000, "state", Bucket::UnplannedStop), W);
        for t in [30_000, 50_000] {
            a.push(obs(t, Role::Process, Value::Number(1.0)), W);
        }
        let w = a.close(0, &c).unwrap();
        assert_eq!(w.sums.rejected_state_messages, 1);
        assert_eq!(w.sums.running_ms, 20_000);
        assert_eq!(w.sums.unplanned_stop_ms, 40_000);
        assert_eq!(w.sums.unplanned_stops, 1);
        assert_eq!(w.sums.modelled_ms(), W);
    }

    #[test]
    fn rejects_after_a_changeover_are_startup_losses() {
        let c = AccumConfig {
            startup_ms: 30_000,
            counter_rollover: None,
            ..cfg()
        };
        let mut a = AssetAccumulator::new(AssetKey::new("s", "a", "l", "m"), 0);
        let n = |ts, role, v| obs(ts, role, Value::Number(v));
        a.push(obs(0, Role::Product, Value::Text("p".into())), W);
        a.push(state(0, Bucket::Changeover), W);
        a.push(n(0, Role::CounterTotal, 0.0), W);
        a.push(n(0, Role::CounterGood, 0.0), W);
        a.push(state(10_000, Bucket::Running), W);
        // Within 30 s of the start-up: 100 made, 90 good.
        a.push(n(30_000, Role::CounterTotal, 100.0), W);
        a.push(n(30_000, Role::CounterGood, 90.0), W);
        // After it: 200 made, 195 good.
        a.push(n(50_000, Role::CounterTotal, 300.0), W);
        a.push(n(50_000, Role::CounterGood, 285.0), W);
        let w = a.close(0, &c).unwrap();
        let s = &w.sums;
        assert_eq!((s.produced, s.good), (Some(300), Some(285)));
        assert_eq!(s.startup_ideal_ms, 100.0 * 100.0);
        assert_eq!(s.startup_good_ideal_ms, 90.0 * 100.0);
        let r = ctower_model::kpi::KpiRatios::from_sums(s, W);
        assert_eq!(r.loss_startup_ms, Some(1_000.0));
        assert_eq!(r.loss_defect_ms, Some(500.0));
        assert_eq!(r.loss_setup_ms, Some(10_000.0));
        // Running 50 s, ideal time of what was made 30 s.
        assert_eq!(r.loss_speed_ms, Some(20_000.0));
    }

    #[test]
    fn the_calendar_makes_breaks_planned_and_gaps_no_shift() {
        let c = with_calendar("00:02");
        let mut a = AssetAccumulator::new(AssetKey::new("s", "a", "l", "m"), 0);
        for t in (0..3 * W).step_by(20_000) {
            a.push(state(t, Bucket::UnplannedStop), W);
        }
        // 00:00 in the shift: an unplanned stop (a failure).
        let w0 = a.close(0, &c).unwrap();
        assert_eq!((w0.sums.unplanned_stop_ms, w0.sums.unplanned_stops), (W, 1));
        // 00:01 a break: planned downtime, whatever the machine says.
        let w1 = a.close(W, &c).unwrap();
        assert_eq!((w1.sums.planned_stop_ms, w1.sums.unplanned_stop_ms), (W, 0));
        // 00:02 outside every shift: no shift.
        let w2 = a.close(2 * W, &c).unwrap();
        assert_eq!((w2.sums.no_shift_ms, w2.sums.modelled_ms()), (W, W));
    }

    /// Found in review: units made outside the shifts inflated performance
    /// (ideal time without production time), and a stop that began in a
    /// break entered the shift without a failure.
    #[test]
    fn production_off_shift_and_stops_from_a_break() {
        let c = with_calendar("00:03");
        let product = |t| obs(t, Role::Product, Value::Text("p".into()));
        let total = |t, v| obs(t, Role::CounterTotal, Value::Number(v));
        let mut a = AssetAccumulator::new(AssetKey::new("s", "a", "l", "m"), 0);
        for t in (0..W + 10_000).step_by(10_000) {
            a.push(state(t, Bucket::Running), W);
        }
        a.push(product(1), W);
        a.push(total(W + 1_000, 0.0), W);
        // 100 units in the break (ideal 100 ms each), then a stop from
        // 00:01:10 that lasts into the shift, with heartbeats.
        a.push(total(W + 5_000, 100.0), W);
        for t in (W + 10_000..3 * W).step_by(10_000) {
            a.push(state(t, Bucket::UnplannedStop), W);
        }
        a.close(0, &c).unwrap();
        let w1 = a.close(W, &c).unwrap();
        assert_eq!(w1.sums.produced, Some(100), "the units count");
        assert_eq!(w1.sums.ideal_time_ms, 0.0, "not their ideal time");
        assert_eq!((w1.sums.planned_stop_ms, w1.sums.unplanned_stops), (W, 0));
        let w2 = a.close(2 * W, &c).unwrap();
        assert_eq!(
            (w2.sums.unplanned_stop_ms, w2.sums.unplanned_stops),
            (W, 1),
            "the stop is a failure once in the shift"
        );
    }

    #[test]
    fn assets_without_state_have_no_time_model() {
        let c = cfg();
        let mut a = AssetAccumulator::new(AssetKey::new("s", "a", "l", "meter"), 0);
        a.push(obs(0, Role::EnergyKwh, Value::Number(100.0)), W);
        a.push(obs(30_000, Role::EnergyKwh, Value::Number(100.5)), W);
        a.push(obs(40_000, Role::PowerKw, Value::Number(30.0)), W);
        a.push(obs(50_000, Role::PowerKw, Value::Number(31.0)), W);
        let w = a.close(0, &c).unwrap();
        assert_eq!(w.sums.modelled_ms(), 0);
        assert!((w.sums.energy_kwh.unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(w.sums.power_kw, Some(31.0));
        assert_eq!(w.signals.len(), 1);
        assert_eq!(w.signals[0].count, 2);
        assert_eq!(w.signals[0].mean, 30.5);
        assert!(a.close(-W, &c).is_none());
    }

    /// Issue #8 item 4: a count stamped at a window (shift) boundary, or at
    /// the same instant as a state change, reports production up to then.
    #[test]
    fn a_reading_at_a_boundary_or_a_state_change_counts_before_it() {
        let c = AccumConfig {
            ideal_cycle_ms: HashMap::from([("p".to_string(), 1_000.0)]),
            ..with_calendar("00:01")
        };
        let mut a = AssetAccumulator::new(AssetKey::new("s", "a", "l", "m"), 0);
        a.push(obs(0, Role::Product, Value::Text("p".into())), W);
        a.push(state(0, Bucket::Running), W);
        a.push(obs(0, Role::CounterTotal, Value::Number(0.0)), W);
        a.push(obs(30_000, Role::CounterTotal, Value::Number(30.0)), W);
        // The shift ends at 00:01: the machine goes to `no_shift` and sends
        // its final count with the same timestamp, arriving after the state.
        a.push(state(W, Bucket::NoShift), W);
        a.push(obs(W, Role::CounterTotal, Value::Number(60.0)), W);
        let w0 = a.close(0, &c).unwrap();
        assert_eq!(w0.sums.produced, Some(60), "all 60 units in the shift");
        assert_eq!(w0.sums.ideal_time_ms, 60_000.0, "with their ideal time");
        let w1 = a.close(W, &c).unwrap();
        assert_eq!(w1.sums.produced, None, "nothing counted after the shift");
        assert_eq!(w1.sums.ideal_time_ms, 0.0);
    }
}
