//! The per-asset accumulator: a plain struct, no I/O, no clock.
//!
//! It buffers an asset's observations by window until the watermark closes
//! the window, then replays them in event-time order (ties by arrival
//! sequence) to integrate the machine-state time model and to take deltas of
//! cumulative counters and meters.

use crate::calendar::SiteCalendar;
use ctower_model::kpi::KpiSums;
use ctower_model::time::window_start;
use ctower_model::{AssetKey, Bucket, Observation, Role, SignalWindow, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Settings the accumulator needs; checked at load by the caller.
#[derive(Debug, Clone)]
pub struct AccumConfig {
    pub window_ms: i64,
    /// An asset with no message for longer than this is UNKNOWN (stale).
    pub stale_after_ms: i64,
    /// Ideal cycle time per product, milliseconds per unit.
    pub ideal_cycle_ms: HashMap<String, f64>,
    /// USP <645> conductivity limit, µS/cm (1.3).
    pub conductivity_limit_us_cm: f64,
    /// USP <643> TOC limit, ppb (500).
    pub toc_limit_ppb: f64,
    /// An unplanned stop that ends within this time of its start is a
    /// micro-stop (a performance loss, not a breakdown); 0 disables.
    /// Windows close this much later, so that a stop's end is known.
    pub micro_stop_ms: i64,
    /// Rejects in this time after a start-up (running after a changeover,
    /// a planned stop or no shift) are start-up (yield) losses.
    pub startup_ms: i64,
    /// Counters and meters roll over at this value (None: a drop is a reset).
    pub counter_rollover: Option<f64>,
    /// How far back (behind the watermark) late data still corrects closed
    /// windows; 0 keeps no history and makes no corrections.
    pub correction_horizon_ms: i64,
    /// Tariff, emission factor and baseline by site.
    pub energy: Arc<HashMap<Arc<str>, crate::energy::SiteEnergy>>,
    /// Shift calendars by site: outside every shift known time is no-shift,
    /// in breaks and planned maintenance it is planned downtime.
    pub calendars: Arc<HashMap<Arc<str>, SiteCalendar>>,
}

impl AccumConfig {
    /// How far past a window's end the accumulator must see before it can
    /// close the window: the micro-stop threshold, in whole windows.
    pub fn lookahead_ms(&self) -> i64 {
        if self.micro_stop_ms <= 0 || self.window_ms <= 0 {
            return 0;
        }
        (self.micro_stop_ms + self.window_ms - 1) / self.window_ms * self.window_ms
    }
}

/// One asset's contribution to one closed window.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AssetWindow {
    pub window_start_ms: i64,
    pub asset: AssetKey,
    pub sums: KpiSums,
    pub signals: Vec<SignalWindow>,
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    count: u64,
    min: f64,
    max: f64,
    sum: f64,
    last: f64,
}

/// Reset-safe delta of a cumulative counter or meter: a value lower than the
/// previous one is a reset, and the increase since the reset is the value.
pub fn cumulative_delta(prev: Option<f64>, now: f64) -> f64 {
    wrapping_delta(prev, now, None)
}

/// [`cumulative_delta`] for a counter that rolls over at `rollover` (e.g.
/// 65536 for a 16-bit PLC counter): a drop from the upper half of the range
/// to the lower half is a rollover, Δ = rollover − previous + new; any other
/// drop is a reset.
pub fn wrapping_delta(prev: Option<f64>, now: f64, rollover: Option<f64>) -> f64 {
    match (prev, rollover) {
        (None, _) => 0.0,
        (Some(p), _) if now >= p => now - p,
        (Some(p), Some(m)) if p >= m / 2.0 && p < m && now < m / 2.0 => m - p + now,
        (Some(_), _) => now,
    }
}

/// What an asset carries from one window to the next: state, the last
/// readings of its counters and meters. Cloned at every window start so a
/// late observation can replay the windows it touches.
#[derive(Debug, Clone, Default)]
struct Carry {
    first_window_ms: i64,
    /// Set at the window of the first `state` observation: only such assets
    /// have a time model.
    modelled: bool,
    /// The state signal that owns the time model: the first one seen. State
    /// messages of any other signal of the asset would overlap it and are
    /// rejected (counted), never double-counted.
    state_signal: Option<Arc<str>>,
    state: Option<Bucket>,
    /// Reason code of the latest state message.
    reason: Option<Arc<str>>,
    /// The current unplanned stop is a micro-stop.
    stop_micro: bool,
    /// The current unplanned stop began in a window the calendar made
    /// planned or no-shift, so no failure was counted for it yet.
    stop_uncounted: bool,
    /// End of the current start-up period (running after a changeover,
    /// planned stop or no shift).
    startup_until: Option<i64>,
    last_msg_ms: Option<i64>,
    product: Option<Arc<str>>,
    total: Option<f64>,
    good: Option<f64>,
    reject: Option<f64>,
    energy: Option<f64>,
    /// Event time of the latest energy reading.
    energy_at: Option<i64>,
    feed: Option<f64>,
    permeate: Option<f64>,
    concentrate: Option<f64>,
    /// Latest conductivity and TOC readings: (event time, within the limit).
    conductivity: Option<(i64, bool)>,
    toc: Option<(i64, bool)>,
    unknown_products: u64,
}

/// A closed window kept for corrections: what the asset carried into it,
/// its observations, and the sums it emitted (corrections re-emit sums only).
#[derive(Debug)]
struct Closed {
    carry: Carry,
    events: Vec<Observation>,
    out: KpiSums,
}

#[derive(Debug)]
pub struct AssetAccumulator {
    key: AssetKey,
    c: Carry,
    pending: BTreeMap<i64, Vec<Observation>>,
    /// Closed windows within the correction horizon, by start. Boxed: a
    /// window is large, and the map's nodes shift entries on every insert.
    closed: BTreeMap<i64, Box<Closed>>,
    /// Late observations too old to replay (before the kept windows).
    late_dropped: u64,
    /// Observations of the last window closed.
    last_len: usize,
}

impl AssetAccumulator {
    pub fn new(key: AssetKey, first_window_ms: i64) -> Self {
        AssetAccumulator {
            key,
            c: Carry {
                first_window_ms,
                ..Carry::default()
            },
            pending: BTreeMap::new(),
            closed: BTreeMap::new(),
            late_dropped: 0,
            last_len: 0,
        }
    }

    pub fn key(&self) -> &AssetKey {
        &self.key
    }

    /// Units produced under a product missing from the product table
    /// (they count as produced and good, but add no ideal time).
    pub fn unknown_product_units(&self) -> u64 {
        self.c.unknown_products
    }

    pub fn push(&mut self, obs: Observation, window_ms: i64) {
        let w = window_start(obs.ts_ms, window_ms);
        self.c.first_window_ms = self.c.first_window_ms.min(w);
        // Sized like the last window: no doubling and copying as it fills.
        let hint = self.last_len;
        self.pending
            .entry(w)
            .or_insert_with(|| Vec::with_capacity(hint))
            .push(obs);
    }

    /// Closes the window starting at `w`; `None` before the asset's first window.
    pub fn close(&mut self, w: i64, cfg: &AccumConfig) -> Option<AssetWindow> {
        if w < self.c.first_window_ms {
            return None;
        }
        let carry = (cfg.correction_horizon_ms > 0).then(|| self.c.clone());
        let end = w + cfg.window_ms;
        let mut events = self.pending.remove(&w).unwrap_or_default();
        self.last_len = events.len();
        events.sort_by_key(|o| (o.ts_ms, o.seq));
        // An asset has a time model from the window of its first state
        // message on; before that message, its time is UNKNOWN, so the
        // buckets of every modelled window add up to the window length.
        if !self.c.modelled && events.iter().any(|o| o.role == Role::State) {
            self.c.modelled = true;
        }
        if self.c.state_signal.is_none() {
            self.c.state_signal = events
                .iter()
                .find(|o| o.role == Role::State)
                .map(|o| o.signal.clone());
        }
        let changes = self.state_changes(&events, end + cfg.micro_stop_ms, cfg.window_ms);
        // A stop carried in from a break or from outside the shifts.
        let carried_stop = (self.c.state == Some(Bucket::UnplannedStop) && self.c.stop_uncounted)
            .then_some(self.c.stop_micro);

        let mut sums = KpiSums {
            messages: events.len() as u64,
            ..KpiSums::default()
        };
        let mut stats: BTreeMap<(Arc<str>, Role), Stats> = BTreeMap::new();
        // Meter time: the whole window for a known meter, else from the
        // meter's first reading in it.
        let meter_from = match self.c.energy_at {
            Some(_) => Some(w),
            None => events
                .iter()
                .find(|o| o.role == Role::EnergyKwh && matches!(o.value, Value::Number(_)))
                .map(|o| o.ts_ms),
        };
        if let Some(from) = meter_from {
            sums.energy_meter_ms = end - from;
        }
        let mut cursor = w;
        for obs in &events {
            self.integrate(cursor, obs.ts_ms, cfg.stale_after_ms, &mut sums);
            self.integrate_quality(cursor, obs.ts_ms, cfg.stale_after_ms, &mut sums);
            cursor = obs.ts_ms;
            self.apply(obs, cfg, &changes, &mut sums, &mut stats);
        }
        self.integrate(cursor, end, cfg.stale_after_ms, &mut sums);
        self.integrate_quality(cursor, end, cfg.stale_after_ms, &mut sums);
        let calendar = cfg.calendars.get(&self.key.site);
        let overridden = calendar.is_some_and(|cal| apply_calendar(&mut sums, &cal.classify(w)));
        if overridden {
            // No failure in a break or outside the shifts; one is counted
            // where the stop enters planned production time.
            self.c.stop_uncounted = self.c.state == Some(Bucket::UnplannedStop);
        } else {
            if let Some(micro) = carried_stop {
                if micro {
                    sums.micro_stops += 1;
                } else {
                    sums.unplanned_stops += 1;
                }
            }
            self.c.stop_uncounted = false;
        }
        if let Some(e) = cfg.energy.get(&self.key.site) {
            sums.co2e_kg = e.kg_co2e(sums.energy_kwh);
            // The settings guarantee a calendar (time zone) for a tariff.
            if let Some(cal) = calendar {
                let (day, minute) = cal.weekday_minute(w);
                if let Some(day) = crate::energy::Day::from_number_from_monday(day) {
                    sums.energy_cost = e.tariff.cost(sums.energy_kwh, day, minute);
                }
            }
        }

        let signals = stats
            .into_iter()
            .map(|((signal, role), s)| SignalWindow {
                window_start_ms: w,
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
            .collect();
        let out = AssetWindow {
            window_start_ms: w,
            asset: self.key.clone(),
            sums,
            signals,
        };
        if let Some(carry) = carry {
            self.closed.insert(
                w,
                Box::new(Closed {
                    carry,
                    events,
                    out: out.sums.clone(),
                }),
            );
            // Keep the windows a late observation may still reach.
            let keep_from = w - cfg.correction_horizon_ms - cfg.lookahead_ms();
            while self
                .closed
                .first_key_value()
                .is_some_and(|(k, _)| *k < keep_from)
            {
                self.closed.pop_first();
            }
        }
        Some(out)
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
        // threshold before it: replay from there.
        let from = earliest - cfg.lookahead_ms();
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
        let mut changed = Vec::new();
        let mut w = start;
        while w < next {
            if let Some(aw) = self.close(w, cfg) {
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

    /// The owner signal's state messages from `events` (this window) and
    /// the pending windows up to `until`, as (time, seq, is an unplanned
    /// stop), in event order: what decides whether a stop is a micro-stop.
    fn state_changes(
        &self,
        events: &[Observation],
        until: i64,
        window_ms: i64,
    ) -> Vec<(i64, u64, bool)> {
        let Some(owner) = self.c.state_signal.as_ref() else {
            return Vec::new();
        };
        let last_window = window_start(until, window_ms);
        let later = self
            .pending
            .range(..=last_window)
            .flat_map(|(_, v)| v.iter());
        let mut out: Vec<(i64, u64, bool)> = events
            .iter()
            .chain(later)
            .filter(|o| o.signal == *owner)
            .filter_map(|o| match &o.value {
                Value::State { bucket, .. } if o.ts_ms <= until => {
                    Some((o.ts_ms, o.seq, *bucket == Bucket::UnplannedStop))
                }
                _ => None,
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Adds the time in `[a, b)` to the current bucket, or to UNKNOWN where
    /// the asset has been silent for longer than `stale_after_ms`.
    fn integrate(&self, a: i64, b: i64, stale_after_ms: i64, sums: &mut KpiSums) {
        if !self.c.modelled || b <= a {
            return;
        }
        let (state, stale_from) = match (self.c.state, self.c.last_msg_ms) {
            (Some(s), Some(last)) => (s, (last + stale_after_ms).clamp(a, b)),
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
    fn integrate_quality(&self, a: i64, b: i64, stale_after_ms: i64, sums: &mut KpiSums) {
        // Readings are applied before the interval that follows them, so
        // a reading's time is never after `a`.
        let held = |reading: Option<(i64, bool)>| {
            reading.map_or(0, |(t, _)| ((t + stale_after_ms).min(b) - a).max(0))
        };
        let (c, t) = (held(self.c.conductivity), held(self.c.toc));
        sums.conductivity_measured_ms += c;
        sums.toc_measured_ms += t;
        if self.c.conductivity.is_some_and(|(_, ok)| ok) {
            sums.conductivity_within_ms += c;
        }
        if self.c.toc.is_some_and(|(_, ok)| ok) {
            sums.toc_within_ms += t;
        }
    }

    fn apply(
        &mut self,
        obs: &Observation,
        cfg: &AccumConfig,
        changes: &[(i64, u64, bool)],
        sums: &mut KpiSums,
        stats: &mut BTreeMap<(Arc<str>, Role), Stats>,
    ) {
        self.c.last_msg_ms = Some(obs.ts_ms);
        let ideal = |product: &Option<Arc<str>>| {
            product
                .as_deref()
                .and_then(|p| cfg.ideal_cycle_ms.get(p))
                .copied()
        };
        let in_startup = self.c.startup_until.is_some_and(|u| obs.ts_ms < u);
        match (obs.role, &obs.value) {
            (Role::State, Value::State { .. })
                if self.c.state_signal.as_ref() != Some(&obs.signal) =>
            {
                sums.rejected_state_messages += 1;
            }
            (Role::State, Value::State { bucket, reason, .. }) => {
                self.c.reason.clone_from(reason);
                // A stop begins on a change into an unplanned stop (a
                // repeated "stopped" heartbeat is the same stop). It is a
                // micro-stop when the owner's next other state comes within
                // the threshold.
                if *bucket == Bucket::UnplannedStop && self.c.state != Some(Bucket::UnplannedStop) {
                    let ends = changes
                        .iter()
                        .find(|&&(t, seq, stop)| (t, seq) > (obs.ts_ms, obs.seq) && !stop)
                        .map(|&(t, _, _)| t);
                    self.c.stop_micro = cfg.micro_stop_ms > 0
                        && ends.is_some_and(|t| t - obs.ts_ms <= cfg.micro_stop_ms);
                    if self.c.stop_micro {
                        sums.micro_stops += 1;
                    } else {
                        sums.unplanned_stops += 1;
                    }
                }
                if *bucket == Bucket::Running
                    && matches!(
                        self.c.state,
                        Some(Bucket::Changeover | Bucket::PlannedStop | Bucket::NoShift)
                    )
                {
                    self.c.startup_until = Some(obs.ts_ms + cfg.startup_ms);
                }
                self.c.state = Some(*bucket);
            }
            (Role::Product, Value::Text(p)) => self.c.product = Some(p.clone()),
            (Role::CounterTotal, Value::Number(v)) => {
                let d = wrapping_delta(self.c.total.replace(*v), *v, cfg.counter_rollover);
                let units = d.round() as u64;
                sums.produced += units;
                match ideal(&self.c.product) {
                    Some(ideal) => {
                        sums.ideal_time_ms += d * ideal;
                        if in_startup {
                            sums.startup_ideal_ms += d * ideal;
                        }
                    }
                    None => self.c.unknown_products += units,
                }
            }
            (Role::CounterGood, Value::Number(v)) => {
                let d = wrapping_delta(self.c.good.replace(*v), *v, cfg.counter_rollover);
                sums.good += d.round() as u64;
                if let Some(ideal) = ideal(&self.c.product) {
                    sums.good_ideal_ms += d * ideal;
                    if in_startup {
                        sums.startup_good_ideal_ms += d * ideal;
                    }
                }
            }
            (Role::CounterReject, Value::Number(v)) => {
                sums.reject += wrapping_delta(self.c.reject.replace(*v), *v, cfg.counter_rollover)
                    .round() as u64;
            }
            (Role::EnergyKwh, Value::Number(v)) => {
                let d = wrapping_delta(self.c.energy.replace(*v), *v, cfg.counter_rollover);
                sums.energy_kwh += d;
                // Demand: only energy measured over a short interval; after
                // a gap the meter's count is energy, not this window's power.
                let since = self.c.energy_at.replace(obs.ts_ms);
                if let Some(t) = since.filter(|t| obs.ts_ms - t <= cfg.stale_after_ms) {
                    sums.demand_kwh += d;
                    sums.energy_measured_ms += obs.ts_ms - t;
                }
            }
            (Role::WaterFeedM3, Value::Number(v)) => {
                sums.water_feed_m3 +=
                    wrapping_delta(self.c.feed.replace(*v), *v, cfg.counter_rollover);
            }
            (Role::WaterPermeateM3, Value::Number(v)) => {
                sums.water_permeate_m3 +=
                    wrapping_delta(self.c.permeate.replace(*v), *v, cfg.counter_rollover);
            }
            (Role::WaterConcentrateM3, Value::Number(v)) => {
                sums.water_concentrate_m3 +=
                    wrapping_delta(self.c.concentrate.replace(*v), *v, cfg.counter_rollover);
            }
            (
                role @ (Role::PowerKw | Role::ConductivityUsCm | Role::TocPpb | Role::Process),
                Value::Number(v),
            ) => {
                let quality = match role {
                    Role::ConductivityUsCm => {
                        Some((&mut self.c.conductivity, cfg.conductivity_limit_us_cm))
                    }
                    Role::TocPpb => Some((&mut self.c.toc, cfg.toc_limit_ppb)),
                    _ => None,
                };
                if let Some((reading, limit)) = quality {
                    let ok = *v <= limit;
                    if !ok && reading.is_none_or(|(_, was_ok)| was_ok) {
                        sums.usp_excursions += 1;
                    }
                    *reading = Some((obs.ts_ms, ok));
                }
                if role == Role::PowerKw {
                    sums.power_kw = Some(*v);
                }
                let v = *v;
                stats
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
            // The collector only emits role/value pairs that match; anything
            // else carries no KPI meaning.
            _ => {}
        }
    }
}

/// The calendar decides what is planned: outside every shift, the known
/// time of the window is no-shift; in a break or planned maintenance it is
/// planned downtime. Stops there are no failures. UNKNOWN stays UNKNOWN.
///
/// Units made there still count (produced, good, reject) but their ideal
/// time does not: it would be performance without actual production time.
/// Returns whether the calendar overrode the window.
fn apply_calendar(sums: &mut KpiSums, slot: &crate::calendar::Slot) -> bool {
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

fn add_time(sums: &mut KpiSums, bucket: Bucket, ms: i64) {
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
    use super::*;

    const W: i64 = 60_000;

    fn cfg() -> AccumConfig {
        AccumConfig {
            window_ms: W,
            stale_after_ms: 30_000,
            ideal_cycle_ms: HashMap::from([("p".to_string(), 100.0)]),
            conductivity_limit_us_cm: 1.3,
            toc_limit_ppb: 500.0,
            micro_stop_ms: 0,
            startup_ms: 0,
            counter_rollover: None,
            calendars: Default::default(),
            energy: Default::default(),
            correction_horizon_ms: 0,
        }
    }

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

    fn obs(ts: i64, role: Role, value: Value) -> Observation {
        Observation {
            asset: AssetKey::new("s", "a", "l", "m"),
            signal: format!("{role:?}").into(),
            role,
            ts_ms: ts,
            value,
            seq: ts as u64,
            watermark_ms: None,
        }
    }

    fn state(ts: i64, b: Bucket) -> Observation {
        obs(
            ts,
            Role::State,
            Value::State {
                bucket: b,
                code: "x".into(),
                reason: None,
            },
        )
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
        assert_eq!(w0.sums.produced, 10);
        assert_eq!(w0.sums.ideal_time_ms, 1000.0);
        // Window 1: no message; stale 30 s after the last one (t = 30 s), so
        // the whole of window 1 (60–120 s) is UNKNOWN.
        let w1 = a.close(W, &c).unwrap();
        assert_eq!(w1.sums.unknown_ms, W);
        assert_eq!(w1.sums.modelled_ms(), W);
        // A counter reset: 3 after 10 means 3 new units, never a negative count.
        a.push(
            obs(2 * W + 10_000, Role::CounterTotal, Value::Number(3.0)),
            W,
        );
        let w2 = a.close(2 * W, &c).unwrap();
        assert_eq!(w2.sums.produced, 3);
        // 120–130 s stale; 130–160 s stopped; 160–180 s stale again.
        assert_eq!(w2.sums.unknown_ms, 10_000 + 20_000);
        assert_eq!(w2.sums.unplanned_stop_ms, 30_000);
    }

    fn named_state(ts: i64, signal: &str, b: Bucket) -> Observation {
        Observation {
            signal: signal.into(),
            ..state(ts, b)
        }
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
        assert_eq!(r.loss_minor_stop_ms, 30_000.0);
        assert_eq!(r.loss_breakdown_ms, 20_000.0);
    }

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
        assert_eq!((s.produced, s.good), (300, 285));
        assert_eq!(s.startup_ideal_ms, 100.0 * 100.0);
        assert_eq!(s.startup_good_ideal_ms, 90.0 * 100.0);
        let r = ctower_model::kpi::KpiRatios::from_sums(s, W);
        assert_eq!(r.loss_startup_ms, 1_000.0);
        assert_eq!(r.loss_defect_ms, 500.0);
        assert_eq!(r.loss_setup_ms, 10_000.0);
        // Running 50 s, ideal time of what was made 30 s.
        assert_eq!(r.loss_speed_ms, 20_000.0);
    }

    /// Site `s` in UTC: one shift from 00:00 to `shift_end`, a break
    /// 00:01–00:02.
    fn with_calendar(shift_end: &str) -> AccumConfig {
        use crate::calendar::{BreakConfig, ShiftConfig, SiteCalendarConfig};
        let cal = SiteCalendarConfig {
            time_zone: "UTC".into(),
            production_day_start: "00:00".into(),
            shifts: vec![ShiftConfig {
                name: "day".into(),
                start: "00:00".into(),
                end: shift_end.into(),
            }],
            breaks: vec![BreakConfig {
                start: "00:01".into(),
                end: "00:02".into(),
            }],
            maintenance: vec![],
        };
        let cal = cal.check("sites.s", 60, &mut vec![]).expect("calendar");
        AccumConfig {
            calendars: Arc::new(HashMap::from([(Arc::from("s"), cal)])),
            ..cfg()
        }
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
        a.push(total(2, 0.0), W);
        // 100 units in the break (ideal 100 ms each), then a stop from
        // 00:01:10 that lasts into the shift, with heartbeats.
        a.push(total(W + 5_000, 100.0), W);
        for t in (W + 10_000..3 * W).step_by(10_000) {
            a.push(state(t, Bucket::UnplannedStop), W);
        }
        a.close(0, &c).unwrap();
        let w1 = a.close(W, &c).unwrap();
        assert_eq!(w1.sums.produced, 100, "the units count");
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
        assert!((w.sums.energy_kwh - 0.5).abs() < 1e-12);
        assert_eq!(w.sums.power_kw, Some(31.0));
        assert_eq!(w.signals.len(), 1);
        assert_eq!(w.signals[0].count, 2);
        assert_eq!(w.signals[0].mean, 30.5);
        assert!(a.close(-W, &c).is_none());
    }

    #[test]
    fn energy_counted_across_a_meter_gap_is_energy_not_demand() {
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
        assert!((w0.sums.demand_kwh - 5.0 * kwh_per_10s).abs() < 1e-9);
        let resume = 120 * W;
        for t in (resume..resume + W).step_by(10_000) {
            a.push(meter(t), W);
        }
        for w in (W..resume).step_by(W as usize) {
            a.close(w, &c);
        }
        let w = a.close(resume, &c).unwrap();
        // All the energy counts (the gap's lands here)…
        assert!((w.sums.energy_kwh - 120.0 * 6.0 * kwh_per_10s).abs() < 1e-9);
        // …but demand only over the 10 s intervals: 5 of them, ~100 kW.
        assert!((w.sums.demand_kwh - 5.0 * kwh_per_10s).abs() < 1e-9);
        let record = ctower_model::KpiRecord::new(
            resume,
            resume + W,
            w.asset.scope(ctower_model::Level::Asset),
            w.sums,
        );
        let kw = record.peak_demand_kw.unwrap();
        assert!((kw - 100.0 * 5.0 / 6.0).abs() < 1e-6, "{kw}");
    }
}
