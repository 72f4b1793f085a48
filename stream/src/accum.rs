//! The per-asset accumulator: a plain struct, no I/O, no clock.
//!
//! It buffers an asset's observations by window until the watermark closes
//! the window, then replays them in event-time order (ties by arrival
//! sequence) to integrate the machine-state time model and to take deltas of
//! cumulative counters and meters.

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
    match prev {
        None => 0.0,
        Some(p) if now >= p => now - p,
        Some(_) => now,
    }
}

#[derive(Debug)]
pub struct AssetAccumulator {
    key: AssetKey,
    first_window_ms: i64,
    /// Set at the window of the first `state` observation: only such assets
    /// have a time model.
    modelled: bool,
    state: Option<Bucket>,
    last_msg_ms: Option<i64>,
    product: Option<Arc<str>>,
    total: Option<f64>,
    good: Option<f64>,
    reject: Option<f64>,
    energy: Option<f64>,
    feed: Option<f64>,
    permeate: Option<f64>,
    concentrate: Option<f64>,
    /// Latest conductivity and TOC readings: (event time, within the limit).
    conductivity: Option<(i64, bool)>,
    toc: Option<(i64, bool)>,
    pending: BTreeMap<i64, Vec<Observation>>,
    unknown_products: u64,
}

impl AssetAccumulator {
    pub fn new(key: AssetKey, first_window_ms: i64) -> Self {
        AssetAccumulator {
            key,
            first_window_ms,
            modelled: false,
            state: None,
            last_msg_ms: None,
            product: None,
            total: None,
            good: None,
            reject: None,
            energy: None,
            feed: None,
            permeate: None,
            concentrate: None,
            conductivity: None,
            toc: None,
            pending: BTreeMap::new(),
            unknown_products: 0,
        }
    }

    pub fn key(&self) -> &AssetKey {
        &self.key
    }

    /// Units produced under a product missing from the product table
    /// (they count as produced and good, but add no ideal time).
    pub fn unknown_product_units(&self) -> u64 {
        self.unknown_products
    }

    pub fn push(&mut self, obs: Observation, window_ms: i64) {
        let w = window_start(obs.ts_ms, window_ms);
        self.first_window_ms = self.first_window_ms.min(w);
        self.pending.entry(w).or_default().push(obs);
    }

    /// Closes the window starting at `w`; `None` before the asset's first window.
    pub fn close(&mut self, w: i64, cfg: &AccumConfig) -> Option<AssetWindow> {
        if w < self.first_window_ms {
            return None;
        }
        let end = w + cfg.window_ms;
        let mut events = self.pending.remove(&w).unwrap_or_default();
        events.sort_by_key(|o| (o.ts_ms, o.seq));
        // An asset has a time model from the window of its first state
        // message on; before that message, its time is UNKNOWN, so the
        // buckets of every modelled window add up to the window length.
        if !self.modelled && events.iter().any(|o| o.role == Role::State) {
            self.modelled = true;
        }

        let mut sums = KpiSums::default();
        let mut stats: BTreeMap<(Arc<str>, Role), Stats> = BTreeMap::new();
        let mut cursor = w;
        for obs in events {
            self.integrate(cursor, obs.ts_ms, cfg.stale_after_ms, &mut sums);
            self.integrate_quality(cursor, obs.ts_ms, cfg.stale_after_ms, &mut sums);
            cursor = obs.ts_ms;
            self.apply(obs, cfg, &mut sums, &mut stats);
        }
        self.integrate(cursor, end, cfg.stale_after_ms, &mut sums);
        self.integrate_quality(cursor, end, cfg.stale_after_ms, &mut sums);

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
        Some(AssetWindow {
            window_start_ms: w,
            asset: self.key.clone(),
            sums,
            signals,
        })
    }

    /// Adds the time in `[a, b)` to the current bucket, or to UNKNOWN where
    /// the asset has been silent for longer than `stale_after_ms`.
    fn integrate(&self, a: i64, b: i64, stale_after_ms: i64, sums: &mut KpiSums) {
        if !self.modelled || b <= a {
            return;
        }
        let (state, stale_from) = match (self.state, self.last_msg_ms) {
            (Some(s), Some(last)) => (s, (last + stale_after_ms).clamp(a, b)),
            _ => (Bucket::Unknown, a),
        };
        add_time(sums, state, stale_from - a);
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
        let (c, t) = (held(self.conductivity), held(self.toc));
        sums.conductivity_measured_ms += c;
        sums.toc_measured_ms += t;
        if self.conductivity.is_some_and(|(_, ok)| ok) {
            sums.conductivity_within_ms += c;
        }
        if self.toc.is_some_and(|(_, ok)| ok) {
            sums.toc_within_ms += t;
        }
    }

    fn apply(
        &mut self,
        obs: Observation,
        cfg: &AccumConfig,
        sums: &mut KpiSums,
        stats: &mut BTreeMap<(Arc<str>, Role), Stats>,
    ) {
        self.last_msg_ms = Some(obs.ts_ms);
        match (obs.role, &obs.value) {
            (Role::State, Value::State { bucket, .. }) => {
                // A stop begins on a change into an unplanned stop (a
                // repeated "stopped" heartbeat is the same stop).
                if *bucket == Bucket::UnplannedStop && self.state != Some(Bucket::UnplannedStop) {
                    sums.unplanned_stops += 1;
                }
                self.state = Some(*bucket);
            }
            (Role::Product, Value::Text(p)) => self.product = Some(p.clone()),
            (Role::CounterTotal, Value::Number(v)) => {
                let d = cumulative_delta(self.total.replace(*v), *v);
                let units = d.round() as u64;
                sums.produced += units;
                match self
                    .product
                    .as_deref()
                    .and_then(|p| cfg.ideal_cycle_ms.get(p))
                {
                    Some(ideal) => sums.ideal_time_ms += d * ideal,
                    None => self.unknown_products += units,
                }
            }
            (Role::CounterGood, Value::Number(v)) => {
                sums.good += cumulative_delta(self.good.replace(*v), *v).round() as u64;
            }
            (Role::CounterReject, Value::Number(v)) => {
                sums.reject += cumulative_delta(self.reject.replace(*v), *v).round() as u64;
            }
            (Role::EnergyKwh, Value::Number(v)) => {
                sums.energy_kwh += cumulative_delta(self.energy.replace(*v), *v);
            }
            (Role::WaterFeedM3, Value::Number(v)) => {
                sums.water_feed_m3 += cumulative_delta(self.feed.replace(*v), *v);
            }
            (Role::WaterPermeateM3, Value::Number(v)) => {
                sums.water_permeate_m3 += cumulative_delta(self.permeate.replace(*v), *v);
            }
            (Role::WaterConcentrateM3, Value::Number(v)) => {
                sums.water_concentrate_m3 += cumulative_delta(self.concentrate.replace(*v), *v);
            }
            (
                role @ (Role::PowerKw | Role::ConductivityUsCm | Role::TocPpb | Role::Process),
                Value::Number(v),
            ) => {
                let quality = match role {
                    Role::ConductivityUsCm => {
                        Some((&mut self.conductivity, cfg.conductivity_limit_us_cm))
                    }
                    Role::TocPpb => Some((&mut self.toc, cfg.toc_limit_ppb)),
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
                    .entry((obs.signal, role))
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
}
