//! The per-asset accumulator: a plain struct, no I/O, no clock.
//!
//! It buffers an asset's observations by window until the watermark closes
//! the window, then replays them in event-time order (ties: counter and
//! meter readings first, then by arrival sequence) to integrate the
//! machine-state time model, and spreads what cumulative counters and
//! meters counted over the time they counted it.
//!
//! ## Counters and meters
//!
//! A cumulative reading at `t` reports what was counted up to `t`: the
//! increase since the previous reading (reset- and rollover-safe) belongs to
//! the interval between the two readings, and is spread pro rata over it,
//! across windows (and so shifts and days). A reading at a window, shift or
//! day boundary, or at the same instant as a state change, therefore counts
//! before it. Units are spread as whole units (rounded at each boundary
//! from the start of the interval, so the parts add up to the increase).
//! Two readings further apart than the signal's maximum interval
//! (`stale_after_secs` unless configured) are a gap: what was counted is
//! reported as `unmeasured` in the window of the later reading, in no
//! window's figures.
//!
//! A window takes its part of an interval when it closes if the interval's
//! end reading is already there (the accumulator sees as far ahead as the
//! stream's lookahead); otherwise, when that reading's window closes, the
//! earlier windows are recomputed and returned as corrections
//! ([`AssetAccumulator::take_corrections`]). Every window is computed from
//! what the asset carried into it, its observations and the readings seen
//! ahead, so recomputing it never counts anything twice.

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
    /// An asset with no message for longer than this is UNKNOWN (stale);
    /// also the default maximum interval of counters and meters, and the
    /// longest meter interval that counts toward demand.
    pub stale_after_ms: i64,
    /// Maximum interval between two readings of a counter or meter, by
    /// signal name (default `stale_after_ms`): a longer one is a gap.
    pub max_interval_ms: ctower_model::NameMap<i64>,
    /// An asset silent this long (event time) is retired: its state is
    /// dropped and its line reports it as unknown (0: never).
    pub retire_after_ms: i64,
    /// A retired asset is forgotten this long after its last message.
    pub forget_after_ms: i64,
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
    /// close the window, in whole windows: the micro-stop threshold (a
    /// stop's end decides whether it was one), and the default maximum
    /// interval of counters and meters (the reading that ends the interval
    /// open at the window's end decides the window's part of it).
    pub fn lookahead_ms(&self) -> i64 {
        let reach = self.micro_stop_ms.max(self.stale_after_ms);
        if reach <= 0 || self.window_ms <= 0 {
            return 0;
        }
        (reach + self.window_ms - 1) / self.window_ms * self.window_ms
    }

    /// The longest interval between two readings of `signal` that is
    /// spread rather than reported as a gap.
    pub fn max_interval(&self, signal: &str) -> i64 {
        self.max_interval_ms
            .get(signal)
            .copied()
            .unwrap_or(self.stale_after_ms)
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

/// The cumulative quantities: counters and meters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meter {
    Total,
    Good,
    Reject,
    Energy,
    Feed,
    Permeate,
    Concentrate,
}

impl Meter {
    const ALL: [Meter; 7] = [
        Meter::Total,
        Meter::Good,
        Meter::Reject,
        Meter::Energy,
        Meter::Feed,
        Meter::Permeate,
        Meter::Concentrate,
    ];

    fn of(role: Role) -> Option<Meter> {
        Some(match role {
            Role::CounterTotal => Meter::Total,
            Role::CounterGood => Meter::Good,
            Role::CounterReject => Meter::Reject,
            Role::EnergyKwh => Meter::Energy,
            Role::WaterFeedM3 => Meter::Feed,
            Role::WaterPermeateM3 => Meter::Permeate,
            Role::WaterConcentrateM3 => Meter::Concentrate,
            _ => return None,
        })
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The KPI field it feeds (the key of `KpiSums::unmeasured`).
    fn field(self) -> &'static str {
        match self {
            Meter::Total => "produced",
            Meter::Good => "good",
            Meter::Reject => "reject",
            Meter::Energy => "energy_kwh",
            Meter::Feed => "water_feed_m3",
            Meter::Permeate => "water_permeate_m3",
            Meter::Concentrate => "water_concentrate_m3",
        }
    }

    fn counts_units(self) -> bool {
        matches!(self, Meter::Total | Meter::Good | Meter::Reject)
    }
}

/// The latest readings of an asset's counters and meters, and its product
/// (opaque): what a retired asset resumes from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LastReadings {
    meters: [Option<Reading>; 7],
    product: Option<Arc<str>>,
}

/// One reading of a counter or meter.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    ts: i64,
    value: f64,
}

/// The order in which a window's observations are applied: event time;
/// at the same instant, counter and meter readings before anything else
/// (a reading at `t` reports up to `t`, so it belongs before a state or
/// product change at `t`); then arrival.
fn event_order(o: &Observation) -> (i64, bool, u64) {
    (o.ts_ms, Meter::of(o.role).is_none(), o.seq)
}

/// Sets what the window's own observations decide before it is
/// integrated: an asset has a time model from the window of its first
/// state message on (before that message its time is UNKNOWN, so the
/// buckets of every modelled window add up to the window length), and the
/// first state signal seen owns it.
fn prepare(c: &mut Carry, events: &[Observation]) {
    if !c.modelled && events.iter().any(|o| o.role == Role::State) {
        c.modelled = true;
    }
    if c.state_signal.is_none() {
        c.state_signal = events
            .iter()
            .find(|o| o.role == Role::State)
            .map(|o| o.signal.clone());
    }
}

/// What an asset carries from one window to the next: state, the last
/// readings of its counters and meters. Cloned at every window start so a
/// window can be computed again.
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
    /// The latest reading of each counter and meter (by `Meter::index`).
    meters: [Option<Reading>; 7],
    /// Latest conductivity and TOC readings: (event time, within the limit).
    conductivity: Option<(i64, bool)>,
    toc: Option<(i64, bool)>,
    unknown_products: u64,
}

/// A closed window kept for corrections: what the asset carried into it,
/// its observations (in event order), and the sums it emitted.
#[derive(Debug)]
struct Closed {
    carry: Carry,
    events: Vec<Observation>,
    out: KpiSums,
}

/// What a window sees beyond its own observations: the owner's state
/// changes (micro-stops) and the next reading of each counter and meter,
/// from the windows after it up to a visibility bound. The bound is where
/// every window is complete when the window is computed, so what it sees
/// does not depend on timing.
#[derive(Debug, Default)]
struct Ahead {
    /// (time, seq, is an unplanned stop) of the owner's state messages.
    changes: Vec<(i64, u64, bool)>,
    /// The first later reading of each counter and meter, with its signal.
    next: [Option<(Reading, Arc<str>)>; 7],
}

/// How a window is being computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Closing on time: later windows up to `w + lookahead` are complete.
    Regular,
    /// Replaying for late data or for a meter interval that ended later:
    /// the windows it reads ahead in are complete up to the bound given.
    Again,
}

#[derive(Debug)]
pub struct AssetAccumulator {
    key: AssetKey,
    c: Carry,
    pending: BTreeMap<i64, Vec<Observation>>,
    /// Closed windows within the correction horizon, by start. Boxed: a
    /// window is large, and the map's nodes shift entries on every insert.
    closed: BTreeMap<i64, Box<Closed>>,
    /// Corrections of earlier windows found while closing (a meter interval
    /// that ended after they closed), for [`AssetAccumulator::take_corrections`].
    corrections: Vec<AssetWindow>,
    /// Late observations too old to replay (before the kept windows).
    late_dropped: u64,
    /// Observations of the last window closed.
    last_len: usize,
    /// Newest event time among the observations of the windows closed so
    /// far: what a retirement decides on (the pending windows beyond the
    /// closing point hold whatever has happened to arrive, which depends on
    /// timing).
    newest_closed_ms: i64,
}

/// A meter interval that ended in a window closed on time, whose earlier
/// windows closed without seeing its end: they are computed again.
#[derive(Debug, Clone, Copy)]
struct ReachBack {
    from: i64,
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
            corrections: Vec::new(),
            late_dropped: 0,
            last_len: 0,
            newest_closed_ms: i64::MIN,
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

    /// Newest event time among the observations of the closed windows
    /// (`None` before any).
    pub fn newest_closed_ms(&self) -> Option<i64> {
        (self.newest_closed_ms > i64::MIN).then_some(self.newest_closed_ms)
    }

    /// The first window the asset has (it emits nothing before it).
    pub fn first_window_ms(&self) -> i64 {
        self.c.first_window_ms
    }

    /// The latest reading of each counter and meter, and the product: what
    /// a retired asset keeps, so that when it speaks again what its
    /// counters counted meanwhile is reported (as unmeasured), not lost,
    /// and its units keep their ideal cycle time (a product is often sent
    /// only when it changes).
    pub fn last_readings(&self) -> LastReadings {
        LastReadings {
            meters: self.c.meters,
            product: self.c.product.clone(),
        }
    }

    /// Starts a fresh accumulator from what the asset had before it was
    /// retired.
    pub fn seed_readings(&mut self, readings: &LastReadings) {
        self.c.meters = readings.meters;
        self.c.product.clone_from(&readings.product);
    }

    /// Takes the observations of the windows not yet closed, in window
    /// order (for a retired asset that speaks again: they start afresh).
    pub fn take_pending(&mut self) -> Vec<Observation> {
        std::mem::take(&mut self.pending)
            .into_values()
            .flatten()
            .collect()
    }

    /// Whether the asset has a machine-state time model.
    pub fn is_modelled(&self) -> bool {
        self.c.modelled
    }

    /// Observations waiting in windows not yet closed.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
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

    /// Closes the window starting at `w`; `None` before the asset's first
    /// window. Corrections of earlier windows that closing it produced are
    /// collected for [`AssetAccumulator::take_corrections`].
    pub fn close(&mut self, w: i64, cfg: &AccumConfig) -> Option<AssetWindow> {
        self.close_with(w, cfg, Pass::Regular, w + cfg.lookahead_ms())
    }

    /// Earlier windows recomputed while closing (a meter interval whose end
    /// reading came after they closed), oldest first.
    pub fn take_corrections(&mut self) -> Vec<AssetWindow> {
        std::mem::take(&mut self.corrections)
    }

    fn close_with(
        &mut self,
        w: i64,
        cfg: &AccumConfig,
        pass: Pass,
        visible_to: i64,
    ) -> Option<AssetWindow> {
        if w < self.c.first_window_ms {
            return None;
        }
        let carry_in = (cfg.correction_horizon_ms > 0).then(|| self.c.clone());
        let mut events = self.pending.remove(&w).unwrap_or_default();
        self.last_len = events.len();
        events.sort_by_key(event_order);
        if let Some(last) = events.last() {
            self.newest_closed_ms = self.newest_closed_ms.max(last.ts_ms);
        }
        prepare(&mut self.c, &events);
        let ahead = self.ahead(w, &events, self.c.state_signal.clone(), visible_to, cfg);
        let kept = |x: i64| self.closed.contains_key(&x);
        let mut run = Run {
            key: &self.key,
            cfg,
            w,
            c: std::mem::take(&mut self.c),
            sums: KpiSums::default(),
            stats: BTreeMap::new(),
            measured: false,
            reach: None,
            pass,
        };
        let mut signals = run.window(&events, &ahead, &kept);
        let reach = run.reach;
        let sums = std::mem::take(&mut run.sums);
        self.c = run.c;
        let out = AssetWindow {
            window_start_ms: w,
            asset: self.key.clone(),
            sums,
            signals: std::mem::take(&mut signals),
        };
        if let Some(carry) = carry_in {
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
        if let Some(r) = reach {
            self.reach_back(r.from, w, visible_to, cfg);
        }
        Some(out)
    }

    /// Computes the kept windows in `[from, upto)` again, seeing ahead up
    /// to `visible_to`, and collects those whose result changed.
    fn reach_back(&mut self, from: i64, upto: i64, visible_to: i64, cfg: &AccumConfig) {
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

    /// What window `w` sees ahead: later windows up to `visible_to`, kept
    /// (closed) or pending.
    fn ahead(
        &self,
        w: i64,
        events: &[Observation],
        owner: Option<Arc<str>>,
        visible_to: i64,
        cfg: &AccumConfig,
    ) -> Ahead {
        let mut later: Vec<(i64, &[Observation])> = self
            .closed
            .range(w + 1..=visible_to)
            .map(|(k, c)| (*k, c.events.as_slice()))
            .chain(
                self.pending
                    .range(w + 1..=visible_to)
                    .map(|(k, v)| (*k, v.as_slice())),
            )
            .collect();
        later.sort_by_key(|(k, _)| *k);
        let mut ahead = Ahead::default();
        // The owner's state changes, for micro-stops: up to the threshold
        // after the window's end.
        if let Some(owner) = owner.as_ref() {
            let until = w + cfg.window_ms + cfg.micro_stop_ms;
            ahead.changes = events
                .iter()
                .chain(later.iter().flat_map(|(_, v)| v.iter()))
                .filter(|o| o.signal == *owner && o.ts_ms <= until)
                .filter_map(|o| match &o.value {
                    Value::State { bucket, .. } => {
                        Some((o.ts_ms, o.seq, *bucket == Bucket::UnplannedStop))
                    }
                    _ => None,
                })
                .collect();
            ahead.changes.sort_unstable();
        }
        // The next reading of each counter and meter: the first, in event
        // order, of the first later window that has one (one pass over each
        // window, stopping once every meter is found).
        let mut found = [false; 7];
        for (_, obs) in &later {
            let mut first: [Option<&Observation>; 7] = [None; 7];
            for o in obs.iter() {
                let Some(m) = Meter::of(o.role) else { continue };
                let i = m.index();
                if found[i] || o.value.as_f64().is_none() {
                    continue;
                }
                if first[i].is_none_or(|f| event_order(o) < event_order(f)) {
                    first[i] = Some(o);
                }
            }
            for (i, o) in first.iter().enumerate() {
                let Some((o, value)) = o.and_then(|o| o.value.as_f64().map(|v| (o, v))) else {
                    continue;
                };
                found[i] = true;
                ahead.next[i] = Some((Reading { ts: o.ts_ms, value }, o.signal.clone()));
            }
            if found.iter().all(|f| *f) {
                break;
            }
        }
        ahead
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

/// The computation of one window from what the asset carried into it.
struct Run<'a> {
    key: &'a AssetKey,
    cfg: &'a AccumConfig,
    w: i64,
    c: Carry,
    sums: KpiSums,
    stats: BTreeMap<(Arc<str>, Role), Stats>,
    /// A counter or meter interval overlapped the window.
    measured: bool,
    /// Earlier windows that closed without the end of a meter interval
    /// that ended in this one.
    reach: Option<ReachBack>,
    pass: Pass,
}

impl Run<'_> {
    /// Integrates the window; `events` in event order. `kept` tells which
    /// earlier windows can still be corrected. Returns the window's signal
    /// statistics; the sums are in `self.sums`, the carry out in `self.c`.
    fn window(
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
        // Meter time: the whole window for a known meter, else from the
        // meter's first reading in it.
        let meter_from = match self.c.meters[Meter::Energy.index()] {
            Some(_) => Some(w),
            None => events
                .iter()
                .find(|o| o.role == Role::EnergyKwh && matches!(o.value, Value::Number(_)))
                .map(|o| o.ts_ms),
        };
        if let Some(from) = meter_from {
            self.sums.energy_meter_ms = end - from;
        }
        let mut cursor = w;
        for obs in events {
            self.integrate(cursor, obs.ts_ms);
            self.integrate_quality(cursor, obs.ts_ms);
            cursor = obs.ts_ms;
            self.apply(obs, &ahead.changes, kept);
        }
        self.integrate(cursor, end);
        self.integrate_quality(cursor, end);
        // The intervals still open at the window's end whose end reading is
        // already seen ahead: the window's part of them.
        for m in Meter::ALL {
            let (Some(a), Some((b, signal))) = (self.c.meters[m.index()], &ahead.next[m.index()])
            else {
                continue;
            };
            if b.ts - a.ts <= cfg.max_interval(signal) {
                self.share(m, a, *b, a.ts.max(w), end);
            }
        }
        let calendar = cfg.calendars.get(&self.key.site);
        let overridden =
            calendar.is_some_and(|cal| apply_calendar(&mut self.sums, &cal.classify(w)));
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
        if let (Some(e), Some(kwh)) = (cfg.energy.get(&self.key.site), self.sums.energy_kwh) {
            self.sums.co2e_kg = Some(e.kg_co2e(kwh));
            self.sums.co2e_factor_kwh = kwh;
            // The settings guarantee a calendar (time zone) for a tariff.
            if let Some(cal) = calendar {
                let (day, minute) = cal.weekday_minute(w);
                if let Some(day) = crate::energy::Day::from_number_from_monday(day) {
                    self.sums.energy_cost = Some(e.tariff.cost(kwh, day, minute));
                    self.sums.priced_kwh = kwh;
                }
            }
        }
        let s = &self.sums;
        let reporting = s.messages > 0
            || s.modelled_ms() > s.unknown_ms
            || self.measured
            || s.conductivity_measured_ms > 0
            || s.toc_measured_ms > 0;
        self.sums.assets_reporting = u64::from(reporting);
        std::mem::take(&mut self.stats)
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
            .collect()
    }

    /// Adds the time in `[a, b)` to the current bucket, or to UNKNOWN where
    /// the asset has been silent for longer than `stale_after_ms`.
    fn integrate(&mut self, a: i64, b: i64) {
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
    fn integrate_quality(&mut self, a: i64, b: i64) {
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

    /// The part in `[lo, hi)` of what a counter or meter counted between
    /// readings `a` and `b` (`a.ts ≤ lo ≤ hi ≤ b.ts`), attributed to the
    /// product and start-up status in effect at `hi`.
    fn share(&mut self, m: Meter, a: Reading, b: Reading, lo: i64, hi: i64) {
        let cfg = self.cfg;
        let delta = wrapping_delta(Some(a.value), b.value, cfg.counter_rollover);
        let dt = b.ts - a.ts;
        // The part of Δ counted by `x`: Δ × (x − t₀) / dt, multiplied before
        // dividing so that an exact half (11 × 15 / 22 = 7.5) stays exact
        // for the rounding of units. Two readings at the same instant: all
        // of it here.
        let upto = |x: i64| {
            if dt <= 0 {
                if x > a.ts {
                    delta
                } else {
                    0.0
                }
            } else {
                delta * (x - a.ts) as f64 / dt as f64
            }
        };
        if dt > 0 && hi <= lo {
            return;
        }
        let (lo, hi) = if dt <= 0 { (a.ts, b.ts + 1) } else { (lo, hi) };
        self.measured = true;
        let sums = &mut self.sums;
        if m.counts_units() {
            // Whole units, rounded at each boundary from the interval's
            // start, so the parts of an interval add up to its increase.
            let units_to = |x: i64| upto(x).round().max(0.0) as u64;
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
                (Meter::Total, None) => self.c.unknown_products += units,
                (Meter::Good, Some(ideal)) => {
                    sums.good_ideal_ms += u * ideal;
                    if in_startup {
                        sums.startup_good_ideal_ms += u * ideal;
                    }
                }
                _ => {}
            }
            return;
        }
        let part = upto(hi) - upto(lo);
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
            if dt <= cfg.stale_after_ms {
                sums.demand_kwh += part;
            }
            if dt > 0 {
                sums.energy_measured_ms += hi - lo;
            }
        }
    }

    /// A counter or meter reading: its increase since the previous reading
    /// is spread over the interval between them (this window's part here;
    /// earlier windows' parts when they closed, or again now), or reported
    /// as unmeasured after a gap.
    fn reading(&mut self, m: Meter, obs: &Observation, value: f64, kept: &dyn Fn(i64) -> bool) {
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

    fn apply(
        &mut self,
        obs: &Observation,
        changes: &[(i64, u64, bool)],
        kept: &dyn Fn(i64) -> bool,
    ) {
        let cfg = self.cfg;
        self.c.last_msg_ms = Some(obs.ts_ms);
        match (obs.role, &obs.value) {
            (Role::State, Value::State { .. })
                if self.c.state_signal.as_ref() != Some(&obs.signal) =>
            {
                self.sums.rejected_state_messages += 1;
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
                        self.sums.micro_stops += 1;
                    } else {
                        self.sums.unplanned_stops += 1;
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
            (role, Value::Number(v)) if Meter::of(role).is_some() => {
                if let Some(m) = Meter::of(role) {
                    self.reading(m, obs, *v, kept);
                }
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
                        self.sums.usp_excursions += 1;
                    }
                    *reading = Some((obs.ts_ms, ok));
                }
                if role == Role::PowerKw {
                    self.sums.power_kw = Some(*v);
                }
                let v = *v;
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
            max_interval_ms: Default::default(),
            retire_after_ms: 0,
            forget_after_ms: 0,
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
        // No counter: the minor-stop loss is unknown (it needs the ideal
        // time of what was made), the breakdown loss is known.
        assert_eq!(r.loss_minor_stop_ms, None);
        assert_eq!(r.loss_breakdown_ms, Some(20_000.0));
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
