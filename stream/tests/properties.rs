//! Property tests for the KPI cores: the per-asset accumulator
//! (`AssetAccumulator`), the roll-up (`roll_up`) and the reset-safe delta of
//! cumulative counters and meters (`cumulative_delta`).
//!
//! Observation sequences are generated per asset over a few 60 s windows:
//! machine states, cumulative counters (total/good/reject, with resets),
//! products (in and out of the ideal-cycle table), cumulative energy and
//! water meters, power readings, silences longer than `stale_after_ms`,
//! unique `seq` values and a random arrival order in which an observation may
//! arrive early (before earlier windows close) but never after its own window
//! has closed — the collector's watermark guarantee.

use ctower_model::kpi::{KpiRatios, KpiSums};
use ctower_model::time::window_start;
use ctower_model::{
    AssetKey, Bucket, Level, Observation, Role, ScopeKey, SignalWindow, StreamOutput, Value,
};
use ctower_stream::accum::{cumulative_delta, wrapping_delta};
use ctower_stream::rollup::roll_up;
use ctower_stream::{AccumConfig, AssetAccumulator, AssetWindow};
use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const W: i64 = 60_000;
const STALE: i64 = 30_000;
/// Micro-stop threshold: the generated stops are both shorter and longer.
const MICRO: i64 = 20_000;
/// 2026-03-02T05:00:00Z, aligned to the window.
const T0: i64 = 1_772_427_600_000;
/// Windows closed after the generated span (silence until the end).
const EXTRA: i64 = 2;

const BUCKETS: [Bucket; 5] = [
    Bucket::Running,
    Bucket::PlannedStop,
    Bucket::UnplannedStop,
    Bucket::Changeover,
    Bucket::NoShift,
];
/// `A` and `B` are in the ideal-cycle table, `X` is not.
const PRODUCTS: [&str; 3] = ["A", "B", "X"];
const METERS: [(Role, &str); 4] = [
    (Role::EnergyKwh, "energy"),
    (Role::WaterFeedM3, "feed"),
    (Role::WaterPermeateM3, "permeate"),
    (Role::WaterConcentrateM3, "concentrate"),
];
const COUNTERS: [(Role, &str); 3] = [
    (Role::CounterTotal, "total"),
    (Role::CounterGood, "good"),
    (Role::CounterReject, "reject"),
];

fn cfg() -> AccumConfig {
    AccumConfig {
        window_ms: W,
        stale_after_ms: STALE,
        ideal_cycle_ms: HashMap::from([("A".to_string(), 1000.0), ("B".to_string(), 2500.0)]),
        conductivity_limit_us_cm: 1.3,
        toc_limit_ppb: 500.0,
        micro_stop_ms: MICRO,
        startup_ms: 10_000,
        counter_rollover: None,
        correction_horizon_ms: 30 * W,
        calendars: Default::default(),
        energy: Default::default(),
    }
}

fn key(i: usize) -> AssetKey {
    const KEYS: [(&str, &str, &str, &str); 3] = [
        ("s1", "area", "l1", "m1"),
        ("s1", "area", "l1", "m2"),
        ("s2", "area", "l1", "m1"),
    ];
    let (s, a, l, m) = KEYS[i % KEYS.len()];
    AssetKey::new(s, a, l, m)
}

// ---------------------------------------------------------------------------
// A tiny deterministic RNG for seeds carried in the generated cases.

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------
// Generated plan of one asset, turned into observations by `build`.

/// One step of the asset's counter block: `good`/`reject` units produced, or
/// a reset (every counter drops to a lower value), at `at`; the three counters
/// are then read at `at + skew` (`None`: that reading is not published).
#[derive(Debug, Clone)]
struct CounterStep {
    at: i64,
    reset: bool,
    good: u64,
    reject: u64,
    skew: [Option<i64>; 3],
}

/// One reading of a cumulative meter (index into `METERS`): an increase of
/// `inc` hundredths, or a reset to a third of the value.
#[derive(Debug, Clone)]
struct MeterStep {
    at: i64,
    meter: usize,
    reset: bool,
    inc: u64,
}

#[derive(Debug, Clone)]
struct Spec {
    /// Number of windows the events span, from `T0`.
    windows: i64,
    /// (offset, bucket index, code)
    states: Vec<(i64, usize, u8)>,
    counters: Vec<CounterStep>,
    /// (offset, product index)
    products: Vec<(i64, usize)>,
    meters: Vec<MeterStep>,
    /// (offset, tenths of kW)
    power: Vec<(i64, i32)>,
    /// Silences: (offset, length), every length > `STALE`.
    gaps: Vec<(i64, i64)>,
    /// Initial good and reject counts.
    base: (u64, u64),
    seq_seed: u64,
}

/// An offset in `0..span`, often on a 10 s grid (ties, window boundaries).
fn offset(span: i64) -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => 0..span,
        1 => (0..span / 10_000).prop_map(|k| k * 10_000),
    ]
}

/// `coherent`: the three counters are read together, at the step's time (one
/// PLC scan). Otherwise each reading has its own time and may be missing.
fn counter_step(span: i64, coherent: bool) -> BoxedStrategy<CounterStep> {
    let skew = if coherent {
        Just([Some(0); 3]).boxed()
    } else {
        prop::array::uniform3(prop::option::weighted(
            0.85,
            prop_oneof![Just(0i64), -W / 2..W / 2],
        ))
        .boxed()
    };
    (
        offset(span),
        prop::bool::weighted(0.15),
        0u64..20,
        0u64..5,
        skew,
    )
        .prop_map(|(at, reset, good, reject, skew)| CounterStep {
            at,
            reset,
            good,
            reject,
            skew,
        })
        .boxed()
}

fn meter_step(span: i64) -> impl Strategy<Value = MeterStep> {
    (
        offset(span),
        0..METERS.len(),
        prop::bool::weighted(0.15),
        0u64..5_000,
    )
        .prop_map(|(at, meter, reset, inc)| MeterStep {
            at,
            meter,
            reset,
            inc,
        })
}

fn spec(coherent: bool) -> impl Strategy<Value = Spec> {
    (1i64..=4).prop_flat_map(move |windows| {
        let span = windows * W;
        (
            Just(windows),
            vec((offset(span), 0..BUCKETS.len(), 0u8..3), 0..8),
            vec(counter_step(span, coherent), 0..12),
            vec((offset(span), 0..PRODUCTS.len()), 0..4),
            vec(meter_step(span), 0..10),
            vec((offset(span), -50i32..500), 0..5),
            vec((offset(span), STALE + 1..3 * W), 0..3),
            (0u64..1_000, 0u64..100),
            any::<u64>(),
        )
            .prop_map(
                |(windows, states, counters, products, meters, power, gaps, base, seq_seed)| Spec {
                    windows,
                    states,
                    counters,
                    products,
                    meters,
                    power,
                    gaps,
                    base,
                    seq_seed,
                },
            )
    })
}

/// The observations of one asset (in no particular order), each with a
/// unique `seq`.
fn build(spec: &Spec, asset: &AssetKey) -> Vec<Observation> {
    let span = spec.windows * W;
    let silent = |t: i64| spec.gaps.iter().any(|&(g, len)| t >= g && t < g + len);
    let mut raw: Vec<(i64, Role, &str, Value)> = Vec::new();

    for &(at, b, code) in &spec.states {
        let value = Value::State {
            bucket: BUCKETS[b],
            code: format!("c{code}").into(),
            reason: None,
        };
        raw.push((at, Role::State, "state", value));
    }
    for &(at, p) in &spec.products {
        raw.push((
            at,
            Role::Product,
            "product",
            Value::Text(PRODUCTS[p].into()),
        ));
    }
    for &(at, v) in &spec.power {
        raw.push((
            at,
            Role::PowerKw,
            "power",
            Value::Number(f64::from(v) / 10.0),
        ));
    }

    // Counters: the operations of the counter block in time order (one per
    // instant, silenced ones dropped), then each reading sees the block as of
    // its own time (operations at the same instant first).
    let mut steps: Vec<&CounterStep> = spec.counters.iter().filter(|s| !silent(s.at)).collect();
    steps.sort_by_key(|s| s.at);
    steps.dedup_by_key(|s| s.at);
    let (mut good, mut reject) = spec.base;
    let mut after: Vec<(i64, u64, u64)> = Vec::new();
    for s in &steps {
        if s.reset {
            good = s.good.min(good / 2);
            reject = s.reject.min(reject / 2);
        } else {
            good += s.good;
            reject += s.reject;
        }
        after.push((s.at, good, reject));
    }
    for s in &steps {
        for (c, skew) in s.skew.iter().enumerate() {
            let Some(skew) = skew else { continue };
            let t = (s.at + skew).clamp(0, span - 1);
            let (g, r) = match after.iter().rev().find(|a| a.0 <= t) {
                Some(&(_, g, r)) => (g, r),
                None => spec.base,
            };
            let v = [g + r, g, r][c];
            let (role, name) = COUNTERS[c];
            raw.push((t, role, name, Value::Number(v as f64)));
        }
    }

    // Meters: hundredths, so that the values are exact decimals.
    let mut steps: Vec<&MeterStep> = spec.meters.iter().filter(|s| !silent(s.at)).collect();
    steps.sort_by_key(|s| s.at);
    let mut level = [100_000u64, 50_000, 40_000, 10_000];
    for s in steps {
        let l = &mut level[s.meter];
        *l = if s.reset { *l / 3 } else { *l + s.inc };
        let (role, name) = METERS[s.meter];
        raw.push((s.at, role, name, Value::Number(*l as f64 / 100.0)));
    }

    raw.retain(|r| !silent(r.0));
    let mut seqs: Vec<u64> = (0..raw.len() as u64).map(|s| s * 3 + 1).collect();
    SplitMix(spec.seq_seed).shuffle(&mut seqs);
    raw.into_iter()
        .zip(seqs)
        .map(|((at, role, name, value), seq)| Observation {
            asset: asset.clone(),
            signal: name.into(),
            role,
            ts_ms: T0 + at,
            value,
            seq,
            watermark_ms: None,
        })
        .collect()
}

/// Feeds one asset's observations to an accumulator the way the dataflow does
/// and closes windows `0 .. windows + EXTRA` in order. Arrival: a random
/// order, each observation arriving before a random window no later than its
/// own is closed.
fn drive(obs: &[Observation], arrival_seed: u64, windows: i64) -> Vec<AssetWindow> {
    let cfg = cfg();
    let n = (windows + EXTRA) as usize;
    let mut rng = SplitMix(arrival_seed);
    let mut order = obs.to_vec();
    rng.shuffle(&mut order);
    let mut phases: Vec<Vec<Observation>> = vec![Vec::new(); n];
    for o in order {
        let j = ((o.ts_ms - T0) / W) as u64;
        phases[rng.below(j + 1) as usize].push(o);
    }
    // As in the dataflow, a window closes once the frontier is past it by
    // the lookahead (the micro-stop threshold in whole windows).
    let look = (cfg.lookahead_ms() / W) as usize;
    let mut acc: Option<AssetAccumulator> = None;
    let mut out = Vec::new();
    for (k, phase) in phases.into_iter().enumerate() {
        for o in phase {
            let w = window_start(o.ts_ms, W);
            acc.get_or_insert_with(|| AssetAccumulator::new(o.asset.clone(), w))
                .push(o, W);
        }
        if let (Some(a), Some(c)) = (acc.as_mut(), k.checked_sub(look)) {
            out.extend(a.close(T0 + c as i64 * W, &cfg));
        }
    }
    // End of input: the remaining windows close with nothing more to come.
    if let Some(a) = acc.as_mut() {
        for c in n.saturating_sub(look)..n {
            out.extend(a.close(T0 + c as i64 * W, &cfg));
        }
    }
    out
}

fn in_order(obs: &[Observation]) -> Vec<&Observation> {
    let mut v: Vec<&Observation> = obs.iter().collect();
    v.sort_by_key(|o| (o.ts_ms, o.seq));
    v
}

/// Σ of the increases of one cumulative signal, computed independently:
/// the first reading adds nothing, a rise adds the difference, a drop is a
/// reset and adds the value after it.
fn independent_total(obs: &[Observation], role: Role) -> f64 {
    let mut prev: Option<f64> = None;
    let mut total = 0.0;
    for o in in_order(obs) {
        if o.role != role {
            continue;
        }
        let Value::Number(v) = o.value else { continue };
        if let Some(p) = prev {
            total += if v >= p { v - p } else { v };
        }
        prev = Some(v);
    }
    total
}

/// Σ Δ total × ideal cycle time of the product current at each reading,
/// computed independently (products outside the table add nothing).
fn independent_ideal_time(obs: &[Observation]) -> f64 {
    let ideal = cfg().ideal_cycle_ms;
    let mut product: Option<&str> = None;
    let mut prev: Option<f64> = None;
    let mut total = 0.0;
    for o in in_order(obs) {
        match (&o.role, &o.value) {
            (Role::Product, Value::Text(p)) => product = Some(p),
            (Role::CounterTotal, Value::Number(v)) => {
                let v = *v;
                if let Some(p) = prev {
                    let d = if v >= p { v - p } else { v };
                    total += d * product.and_then(|p| ideal.get(p)).copied().unwrap_or(0.0);
                }
                prev = Some(v);
            }
            _ => {}
        }
    }
    total
}

fn unit(x: Option<f64>) -> bool {
    x.is_none_or(|v| (0.0..=1.0).contains(&v))
}

/// Property 2 on one record's ratios.
fn check_ratio_bounds(r: &KpiRatios, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(unit(r.availability), "availability {:?} at {}", r, what);
    prop_assert!(
        r.performance.is_none_or(|p| p >= 0.0 && p.is_finite()),
        "performance {:?} at {}",
        r,
        what
    );
    prop_assert!(
        unit(r.performance.map(|p| p.min(1.0))),
        "capped performance {:?} at {}",
        r,
        what
    );
    prop_assert!(unit(r.quality), "quality {:?} at {}", r, what);
    prop_assert!(unit(r.oee), "oee {:?} at {}", r, what);
    prop_assert!(unit(r.data_coverage), "data_coverage {:?} at {}", r, what);
    Ok(())
}

/// Runs up to three assets, rolls every window up and checks property 2 on
/// every asset, line, site and group record.
fn ratios_in_bounds(specs: &[Spec], arrival: u64) -> Result<(), TestCaseError> {
    let mut by_window: BTreeMap<i64, Vec<AssetWindow>> = BTreeMap::new();
    for (i, spec) in specs.iter().enumerate() {
        let obs = build(spec, &key(i));
        for aw in drive(&obs, arrival ^ i as u64, spec.windows) {
            by_window.entry(aw.window_start_ms).or_default().push(aw);
        }
    }
    for (w, assets) in by_window {
        for out in roll_up(w, W, assets) {
            if let StreamOutput::Kpi(k) = out {
                check_ratio_bounds(&k.ratios, &format!("{} @ {}", k.scope, w - T0))?;
            }
        }
    }
    Ok(())
}

/// Bucket times per window, integrated over the whole timeline at once
/// (not window by window): between consecutive messages the asset is in the
/// bucket of its latest state message, or UNKNOWN from `stale_after_ms`
/// after its latest message on, or before any state message. An unplanned
/// stop whose next other state comes within `MICRO` of its start is a
/// micro-stop (slot 6).
fn reference_time_model(obs: &[Observation], from: i64, to: i64) -> BTreeMap<i64, [i64; 7]> {
    const UNKNOWN: usize = 5;
    const UNPLANNED: usize = 2;
    const MICRO_SLOT: usize = 6;
    let mut out: BTreeMap<i64, [i64; 7]> = BTreeMap::new();
    let mut add = |a: i64, b: i64, slot: usize| {
        let mut t = a.max(from);
        while t < b.min(to) {
            let w = window_start(t, W);
            let e = b.min(w + W);
            out.entry(w).or_insert([0; 7])[slot] += e - t;
            t = e;
        }
    };
    let mut state: Option<usize> = None;
    let mut last: Option<i64> = None;
    let mut cursor = from;
    let mut segment = |a: i64, b: i64, state: Option<usize>, last: Option<i64>| {
        if let (Some(s), Some(l)) = (state, last) {
            let stale = (l + STALE).clamp(a, b);
            add(a, stale, s);
            add(stale, b, UNKNOWN);
        } else {
            add(a, b, UNKNOWN);
        }
    };
    let ordered = in_order(obs);
    for (i, o) in ordered.iter().enumerate() {
        if o.ts_ms > cursor {
            segment(cursor, o.ts_ms, state, last);
        }
        cursor = o.ts_ms;
        last = Some(o.ts_ms);
        if let Value::State { bucket, .. } = o.value {
            let slot = Bucket::ALL.iter().position(|b| *b == bucket).unwrap();
            let continues = matches!(state, Some(UNPLANNED | MICRO_SLOT));
            state = Some(match slot {
                UNPLANNED if continues => state.unwrap(),
                UNPLANNED => {
                    let end = ordered[i + 1..].iter().find_map(|n| match n.value {
                        Value::State { bucket, .. } if bucket != Bucket::UnplannedStop => {
                            Some(n.ts_ms)
                        }
                        _ => None,
                    });
                    if end.is_some_and(|e| e - o.ts_ms <= MICRO) {
                        MICRO_SLOT
                    } else {
                        UNPLANNED
                    }
                }
                other => other,
            });
        }
    }
    segment(cursor, to, state, last);
    out
}

fn bucket_times(s: &KpiSums) -> [i64; 7] {
    [
        s.running_ms,
        s.planned_stop_ms,
        s.unplanned_stop_ms,
        s.changeover_ms,
        s.no_shift_ms,
        s.unknown_ms,
        s.micro_stop_ms,
    ]
}

// ---------------------------------------------------------------------------
// Roll-up: an independent field-wise sum.

#[derive(Debug, Clone, Default)]
struct RefSums {
    times: [i64; 7],
    counts: [u64; 7],
    /// conductivity measured/within, TOC measured/within (ms), excursions,
    /// energy meter/measured time (ms).
    water: [i64; 7],
    /// ideal time, energy, feed, permeate, concentrate, good ideal time,
    /// start-up ideal and good ideal time, cost, CO2e: (Σ, Σ|x|)
    floats: [(f64, f64); 11],
    power: Option<(f64, f64)>,
    by_reason: BTreeMap<std::sync::Arc<str>, i64>,
}

fn water_fields(s: &KpiSums) -> [i64; 7] {
    [
        s.conductivity_measured_ms,
        s.conductivity_within_ms,
        s.toc_measured_ms,
        s.toc_within_ms,
        s.usp_excursions as i64,
        s.energy_meter_ms,
        s.energy_measured_ms,
    ]
}

fn float_fields(s: &KpiSums) -> [f64; 11] {
    [
        s.ideal_time_ms,
        s.energy_kwh,
        s.water_feed_m3,
        s.water_permeate_m3,
        s.water_concentrate_m3,
        s.good_ideal_ms,
        s.startup_ideal_ms,
        s.startup_good_ideal_ms,
        s.energy_cost,
        s.co2e_kg,
        s.demand_kwh,
    ]
}

impl RefSums {
    fn add(&mut self, s: &KpiSums) {
        for (acc, t) in self.times.iter_mut().zip(bucket_times(s)) {
            *acc += t;
        }
        for (acc, w) in self.water.iter_mut().zip(water_fields(s)) {
            *acc += w;
        }
        for (acc, c) in self.counts.iter_mut().zip([
            s.produced,
            s.good,
            s.reject,
            s.unplanned_stops,
            s.micro_stops,
            s.rejected_state_messages,
            s.messages,
        ]) {
            *acc += c;
        }
        for (acc, f) in self.floats.iter_mut().zip(float_fields(s)) {
            acc.0 += f;
            acc.1 += f.abs();
        }
        for (r, ms) in &s.unplanned_stop_by_reason_ms {
            *self.by_reason.entry(r.clone()).or_default() += ms;
        }
        if let Some(p) = s.power_kw {
            let acc = self.power.get_or_insert((0.0, 0.0));
            acc.0 += p;
            acc.1 += p.abs();
        }
    }

    fn to_sums(&self) -> KpiSums {
        let [running_ms, planned_stop_ms, unplanned_stop_ms, changeover_ms, no_shift_ms, unknown_ms, micro_stop_ms] =
            self.times;
        let [produced, good, reject, unplanned_stops, micro_stops, rejected_state_messages, messages] =
            self.counts;
        let f = self.floats.map(|x| x.0);
        let [cm, cw, tm, tw, exc, meter, measured] = self.water;
        KpiSums {
            conductivity_measured_ms: cm,
            conductivity_within_ms: cw,
            toc_measured_ms: tm,
            toc_within_ms: tw,
            usp_excursions: exc as u64,
            energy_meter_ms: meter,
            energy_measured_ms: measured,
            running_ms,
            planned_stop_ms,
            unplanned_stop_ms,
            changeover_ms,
            no_shift_ms,
            unknown_ms,
            micro_stop_ms,
            unplanned_stops,
            micro_stops,
            rejected_state_messages,
            messages,
            unplanned_stop_by_reason_ms: self.by_reason.clone(),
            produced,
            good,
            reject,
            ideal_time_ms: f[0],
            energy_kwh: f[1],
            power_kw: self.power.map(|p| p.0),
            water_feed_m3: f[2],
            water_permeate_m3: f[3],
            water_concentrate_m3: f[4],
            good_ideal_ms: f[5],
            startup_ideal_ms: f[6],
            startup_good_ideal_ms: f[7],
            energy_cost: f[8],
            co2e_kg: f[9],
            demand_kwh: f[10],
        }
    }
}

const REL: f64 = 1e-9;

fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= REL * scale.max(a.abs()).max(b.abs()).max(1e-300)
}

fn close_opt(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => close(a, b, 0.0),
        _ => false,
    }
}

fn check_sums(got: &KpiSums, want: &RefSums, what: &str) -> Result<(), TestCaseError> {
    let w = want.to_sums();
    prop_assert_eq!(
        (
            got.running_ms,
            got.planned_stop_ms,
            got.unplanned_stop_ms,
            got.changeover_ms,
            got.no_shift_ms,
            got.unknown_ms
        ),
        (
            w.running_ms,
            w.planned_stop_ms,
            w.unplanned_stop_ms,
            w.changeover_ms,
            w.no_shift_ms,
            w.unknown_ms
        ),
        "times at {}",
        what
    );
    prop_assert_eq!(
        (
            got.produced,
            got.good,
            got.reject,
            got.unplanned_stops,
            water_fields(got)
        ),
        (
            w.produced,
            w.good,
            w.reject,
            w.unplanned_stops,
            water_fields(&w)
        ),
        "counts at {}",
        what
    );
    for (i, (g, (sum, abs))) in float_fields(got).into_iter().zip(want.floats).enumerate() {
        prop_assert!(
            close(g, sum, abs),
            "float field {} at {}: {} vs {}",
            i,
            what,
            g,
            sum
        );
    }
    match (got.power_kw, want.power) {
        (None, None) => {}
        (Some(g), Some((sum, abs))) => {
            prop_assert!(close(g, sum, abs), "power at {}: {} vs {}", what, g, sum)
        }
        (g, w) => prop_assert!(false, "power at {}: {:?} vs {:?}", what, g, w),
    }
    Ok(())
}

fn check_ratios_close(got: &KpiRatios, want: &KpiRatios, what: &str) -> Result<(), TestCaseError> {
    let g = [
        got.availability,
        got.performance,
        got.quality,
        got.oee,
        got.kwh_per_good_unit,
        got.standby_kw,
        got.water_recovery,
        got.data_coverage,
    ];
    let w = [
        want.availability,
        want.performance,
        want.quality,
        want.oee,
        want.kwh_per_good_unit,
        want.standby_kw,
        want.water_recovery,
        want.data_coverage,
    ];
    for (i, (g, w)) in g.into_iter().zip(w).enumerate() {
        prop_assert!(
            close_opt(g, w),
            "ratio {} at {}: {:?} vs {:?}",
            i,
            what,
            g,
            w
        );
    }
    Ok(())
}

fn kpi_sums() -> impl Strategy<Value = KpiSums> {
    let t = || prop_oneof![Just(0i64), 0i64..=W];
    let f = |hi: f64| prop_oneof![Just(0.0), 0.0..hi];
    (
        (t(), t(), t(), t(), t(), t()),
        (
            0u64..1_000,
            0u64..1_000,
            0u64..100,
            0u64..20,
            (t(), t(), t(), t(), 0u64..5),
        ),
        (f(1e6), f(1e4), f(1e3), f(1e3), f(1e3)),
        prop::option::of(-100.0..1e4f64),
        (t(), 0u64..20, 0u64..5, f(1e6), f(1e6), f(1e6)),
    )
        .prop_map(|(t, c, f, power_kw, m)| KpiSums {
            unplanned_stop_by_reason_ms: [("jam".into(), t.2)]
                .into_iter()
                .filter(|r| r.1 > 0)
                .collect(),
            messages: c.0 + c.2,
            energy_cost: f.1 * 0.2,
            co2e_kg: f.1 * 0.05,
            micro_stop_ms: m.0,
            micro_stops: m.1,
            rejected_state_messages: m.2,
            good_ideal_ms: m.3,
            startup_ideal_ms: m.4,
            startup_good_ideal_ms: m.5,
            running_ms: t.0,
            planned_stop_ms: t.1,
            unplanned_stop_ms: t.2,
            changeover_ms: t.3,
            no_shift_ms: t.4,
            unknown_ms: t.5,
            unplanned_stops: c.3,
            conductivity_measured_ms: c.4 .0,
            conductivity_within_ms: c.4 .1,
            toc_measured_ms: c.4 .2,
            toc_within_ms: c.4 .3,
            usp_excursions: c.4 .4,
            produced: c.0,
            good: c.1,
            reject: c.2,
            ideal_time_ms: f.0,
            energy_kwh: f.1,
            demand_kwh: f.1 * 0.9,
            energy_meter_ms: c.4 .0,
            energy_measured_ms: c.4 .1,
            power_kw,
            water_feed_m3: f.2,
            water_permeate_m3: f.3,
            water_concentrate_m3: f.4,
        })
}

/// Asset windows of one window over several sites, areas and lines (one per
/// asset, as the dataflow delivers them), each with a few signal statistics.
fn asset_windows(w: i64) -> impl Strategy<Value = Vec<AssetWindow>> {
    vec(
        (
            0..3usize,
            0..2usize,
            0..3usize,
            0..4usize,
            kpi_sums(),
            0..3usize,
        ),
        0..24,
    )
    .prop_map(move |rows| {
        let mut by_key: BTreeMap<AssetKey, AssetWindow> = BTreeMap::new();
        for (s, a, l, m, sums, n_signals) in rows {
            let asset = AssetKey::new(
                &format!("site{s}"),
                &format!("area{a}"),
                &format!("line{l}"),
                &format!("m{m}"),
            );
            let signals = (0..n_signals)
                .map(|i| SignalWindow {
                    window_start_ms: w,
                    window_end_ms: w + W,
                    asset: asset.clone(),
                    signal: format!("sig{i}").into(),
                    role: Role::Process,
                    count: 1,
                    min: i as f64,
                    max: i as f64,
                    mean: i as f64,
                    last: i as f64,
                })
                .collect();
            by_key.entry(asset.clone()).or_insert(AssetWindow {
                window_start_ms: w,
                asset,
                sums,
                signals,
            });
        }
        by_key.into_values().collect()
    })
}

// ---------------------------------------------------------------------------

proptest! {
    /// 1. Every closed window of a modelled asset has bucket times adding up
    /// to exactly the window length — from the window of its first state
    /// message on, including windows of (and after) silence; before that
    /// window there is no time model at all.
    #[test]
    fn time_model_covers_every_modelled_window(spec in spec(false), arrival in any::<u64>()) {
        let obs = build(&spec, &key(0));
        let wins = drive(&obs, arrival, spec.windows);
        let first_state = obs
            .iter()
            .filter(|o| o.role == Role::State)
            .map(|o| window_start(o.ts_ms, W))
            .min();
        // Every window from the asset's first one to the last closed one.
        if let Some(first) = obs.iter().map(|o| window_start(o.ts_ms, W)).min() {
            let starts: Vec<i64> = wins.iter().map(|a| a.window_start_ms).collect();
            let want: Vec<i64> = (first..T0 + (spec.windows + EXTRA) * W).step_by(W as usize).collect();
            prop_assert_eq!(starts, want);
        } else {
            prop_assert!(wins.is_empty());
        }
        for aw in &wins {
            let s = &aw.sums;
            let w = aw.window_start_ms;
            prop_assert_eq!(
                s.unplanned_stop_by_reason_ms.values().sum::<i64>(),
                s.unplanned_stop_ms,
                "stop reasons add up to the unplanned stop time"
            );
            for t in bucket_times(s) {
                prop_assert!(t >= 0, "negative bucket time in {:?}", s);
            }
            match first_state {
                Some(f) if w >= f => {
                    prop_assert_eq!(s.modelled_ms(), W, "window {} (first state window {}): {:?}", w - T0, f - T0, s);
                    // Silent since `stale_after_ms` before the window: all UNKNOWN.
                    if !obs.iter().any(|o| o.ts_ms > w - STALE && o.ts_ms < w + W) {
                        prop_assert_eq!(s.unknown_ms, W, "silent window {}: {:?}", w - T0, s);
                    }
                }
                _ => prop_assert_eq!(s.modelled_ms(), 0, "window {} before the first state: {:?}", w - T0, s),
            }
        }
    }

    /// 1b. Stronger than 1: every modelled window's bucket times equal an
    /// integration of the whole timeline at once (state carried across
    /// window boundaries and silences, staleness from the latest message).
    #[test]
    fn time_model_matches_whole_timeline_integration(spec in spec(false), arrival in any::<u64>()) {
        let obs = build(&spec, &key(0));
        let wins = drive(&obs, arrival, spec.windows);
        let end = T0 + (spec.windows + EXTRA) * W;
        let Some(first) = obs.iter().filter(|o| o.role == Role::State).map(|o| window_start(o.ts_ms, W)).min() else {
            return Ok(());
        };
        let want = reference_time_model(&obs, first, end);
        for aw in wins.iter().filter(|a| a.window_start_ms >= first) {
            let w = aw.window_start_ms;
            prop_assert_eq!(bucket_times(&aw.sums), want[&w], "window {} (running, planned, unplanned, changeover, no shift, unknown, micro-stop)", w - T0);
        }
    }

    /// 1c. Late data: observations held back past their windows' close and
    /// then applied as a correction leave every window, in its latest
    /// revision, equal to receiving everything on time; windows before the
    /// earliest late one (less the micro-stop lookahead) are never corrected.
    #[test]
    fn corrections_converge_to_the_on_time_result(spec in spec(false), late_seed in any::<u64>(), cut in 1i64..=6) {
        let obs = build(&spec, &key(0));
        let cfg = cfg();
        let n = spec.windows + EXTRA;
        let Some(first) = obs.iter().map(|o| window_start(o.ts_ms, W)).min() else {
            return Ok(());
        };
        let close_all = |a: &mut AssetAccumulator, from: i64, to: i64| -> BTreeMap<i64, AssetWindow> {
            (from..to)
                .filter_map(|k| a.close(T0 + k * W, &cfg))
                .map(|aw| (aw.window_start_ms, aw))
                .collect()
        };
        let mut on_time = AssetAccumulator::new(key(0), first);
        for o in &obs {
            on_time.push(o.clone(), W);
        }
        let want = close_all(&mut on_time, 0, n);

        // A random quarter of the observations of the first `cut` windows
        // arrive only after those windows closed.
        let cut = cut.min(n);
        let mut rng = SplitMix(late_seed);
        let (late, timely): (Vec<Observation>, Vec<Observation>) = obs
            .iter()
            .cloned()
            .partition(|o| o.ts_ms < T0 + cut * W && rng.below(4) == 0);
        let Some(first_timely) = timely.iter().map(|o| window_start(o.ts_ms, W)).min() else {
            return Ok(());
        };
        let mut a = AssetAccumulator::new(key(0), first_timely);
        for o in timely {
            a.push(o, W);
        }
        let mut got = close_all(&mut a, 0, cut);
        let earliest_late = late.iter().map(|o| window_start(o.ts_ms, W)).min();
        for aw in a.correct(late, T0 + cut * W, &cfg) {
            prop_assert!(
                earliest_late.is_some_and(|e| aw.window_start_ms >= e - cfg.lookahead_ms()),
                "window {} corrected, before the late data", aw.window_start_ms - T0
            );
            got.insert(aw.window_start_ms, aw);
        }
        got.extend(close_all(&mut a, cut, n));
        prop_assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
        for (w, aw) in &want {
            prop_assert_eq!(&got[w].sums, &aw.sums, "window {}", w - T0);
        }
    }

    /// 2. A, capped P, Q, OEE and data coverage stay in [0, 1] on every asset,
    /// line, site and group record, with the three counters of an asset read
    /// together (one PLC scan: one event time for total, good and reject).
    #[test]
    fn ratios_stay_in_unit_interval(specs in vec(spec(true), 1..=3), arrival in any::<u64>()) {
        ratios_in_bounds(&specs, arrival)?;
    }

    /// 2 (as briefed), with the counters of an asset published as separate
    /// readings, each with its own event time and possibly missing: quality
    /// then exceeds 1 whenever the good counter's latest reading in a window
    /// is more recent than the total counter's. Minimal input (one window, no
    /// state): total 0 @ t=0, 1 @ t=1 ms; good 0 @ t=0, 2 @ t=50.001 s →
    /// produced 1, good 2, quality 2.0 (asset, line, site and group).
    #[test]
    fn ratios_stay_in_unit_interval_with_independent_counter_readings(
        specs in vec(spec(false), 1..=3),
        arrival in any::<u64>(),
    ) {
        ratios_in_bounds(&specs, arrival)?;
    }

    /// 3. Counters never yield a negative or wrapped quantity: per window at
    /// most the independent total of the sequence, and the windows add up to
    /// exactly that total (ideal time and meters: to within 1e-9 relative).
    #[test]
    fn counters_add_up_to_the_independent_total(spec in spec(false), arrival in any::<u64>()) {
        let obs = build(&spec, &key(0));
        let wins = drive(&obs, arrival, spec.windows);
        type Get = fn(&KpiSums) -> u64;
        let counters: [(Role, Get); 3] = [
            (Role::CounterTotal, |s| s.produced),
            (Role::CounterGood, |s| s.good),
            (Role::CounterReject, |s| s.reject),
        ];
        for (role, get) in counters {
            let want = independent_total(&obs, role);
            prop_assert!(want >= 0.0 && want.fract() == 0.0);
            let want = want as u64;
            let mut sum = 0u64;
            for aw in &wins {
                let got = get(&aw.sums);
                prop_assert!(got <= want, "{:?} window {}: {} > total {}", role, aw.window_start_ms - T0, got, want);
                sum += got;
            }
            prop_assert_eq!(sum, want, "{:?}: Σ windows vs independent total", role);
        }
        let want = independent_ideal_time(&obs);
        let sum: f64 = wins.iter().map(|a| a.sums.ideal_time_ms).sum();
        prop_assert!(close(sum, want, want), "ideal time: Σ windows {} vs independent {}", sum, want);
        type GetF = fn(&KpiSums) -> f64;
        let meters: [(Role, GetF); 4] = [
            (Role::EnergyKwh, |s| s.energy_kwh),
            (Role::WaterFeedM3, |s| s.water_feed_m3),
            (Role::WaterPermeateM3, |s| s.water_permeate_m3),
            (Role::WaterConcentrateM3, |s| s.water_concentrate_m3),
        ];
        for (role, get) in meters {
            let want = independent_total(&obs, role);
            let mut sum = 0.0;
            for aw in &wins {
                let got = get(&aw.sums);
                prop_assert!(got >= 0.0 && got <= want * (1.0 + REL) + 1e-12, "{:?} window {}: {} vs total {}", role, aw.window_start_ms - T0, got, want);
                sum += got;
            }
            prop_assert!(close(sum, want, want), "{:?}: Σ windows {} vs independent total {}", role, sum, want);
        }
    }

    /// 4. Arrival order does not matter: the same observations (same `seq`
    /// each) in two different arrival orders give identical asset windows.
    #[test]
    fn arrival_order_does_not_matter(spec in spec(false), a in any::<u64>(), b in any::<u64>()) {
        let obs = build(&spec, &key(0));
        prop_assert_eq!(drive(&obs, a, spec.windows), drive(&obs, b, spec.windows));
    }

    /// 5. Every line, site and group record equals the recomputation from its
    /// assets: field-wise sums (exact for integers, 1e-9 relative for floats)
    /// and ratios from those sums; the output does not depend on the order of
    /// the input.
    #[test]
    fn roll_up_equals_recomputation_from_parts(assets in asset_windows(T0), seed in any::<u64>()) {
        let out = roll_up(T0, W, assets.clone());
        let mut want: BTreeMap<ScopeKey, RefSums> = BTreeMap::new();
        for a in &assets {
            for level in Level::ALL {
                want.entry(a.asset.scope(level)).or_default().add(&a.sums);
            }
        }
        let mut seen = BTreeSet::new();
        let mut last_scope: Option<ScopeKey> = None;
        let mut n_signals = 0;
        for o in &out {
            match o {
                StreamOutput::Kpi(k) => {
                    let what = k.scope.to_string();
                    prop_assert_eq!(n_signals, 0, "KPI record after a signal");
                    prop_assert_eq!((k.window_start_ms, k.window_end_ms, k.revision), (T0, T0 + W, 0));
                    prop_assert!(last_scope.as_ref().is_none_or(|l| *l < k.scope), "scope order at {}", what);
                    last_scope = Some(k.scope.clone());
                    prop_assert!(seen.insert(k.scope.clone()), "duplicate scope {}", what);
                    let Some(parts) = want.get(&k.scope) else {
                        return Err(TestCaseError::fail(format!("unexpected scope {what}")));
                    };
                    check_sums(&k.sums, parts, &what)?;
                    prop_assert_eq!(&k.ratios, &KpiRatios::from_sums(&k.sums, W), "ratios at {}", what);
                    check_ratios_close(&k.ratios, &KpiRatios::from_sums(&parts.to_sums(), W), &what)?;
                }
                StreamOutput::Signal(_) => n_signals += 1,
            }
        }
        prop_assert_eq!(seen.len(), want.len(), "missing scopes");
        prop_assert_eq!(n_signals, assets.iter().map(|a| a.signals.len()).sum::<usize>());
        let mut shuffled = assets;
        SplitMix(seed).shuffle(&mut shuffled);
        prop_assert_eq!(roll_up(T0, W, shuffled), out);
    }

    /// 6b. With a rollover value, a counter that runs over it and starts
    /// again counts exactly the units made; a reset (a drop that does not
    /// start from the upper half) counts the new value; never negative.
    #[test]
    fn wrapping_delta_counts_rollovers_exactly(
        bits in prop_oneof![Just(16u32), Just(32u32)],
        start in 0.0..1.0f64,
        steps in vec(0u64..20_000, 1..40),
    ) {
        let m = 2f64.powi(bits as i32);
        let mut raw = (start * m).floor();
        let mut prev = Some(raw);
        let mut counted = 0.0;
        for s in &steps {
            raw = (raw + *s as f64) % m;
            let d = wrapping_delta(prev, raw, Some(m));
            prop_assert!(d >= 0.0);
            counted += d;
            prev = Some(raw);
        }
        prop_assert_eq!(counted, steps.iter().sum::<u64>() as f64);
        // A reset to a small value from the lower half is a reset.
        prop_assert_eq!(wrapping_delta(Some(m / 4.0), 3.0, Some(m)), 3.0);
    }

    /// 6. `cumulative_delta` is never negative: the difference on a rise (or
    /// no change), the new value on a drop (a reset), 0 for the first reading.
    #[test]
    fn cumulative_delta_is_reset_safe(
        prev in prop::option::of(prop_oneof![Just(0.0), 0.0..1e12f64]),
        now in prop_oneof![Just(0.0), 0.0..1e12f64],
        same in any::<bool>(),
    ) {
        let now = match (same, prev) { (true, Some(p)) => p, _ => now };
        let d = cumulative_delta(prev, now);
        prop_assert!(d >= 0.0, "negative delta {} for {:?} -> {}", d, prev, now);
        let want = match prev {
            None => 0.0,
            Some(p) if now >= p => now - p,
            Some(_) => now,
        };
        prop_assert_eq!(d, want);
    }
}
