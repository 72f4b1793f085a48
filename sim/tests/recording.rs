//! End-to-end checks of simulated recordings, read back through the replay
//! reader and checked against the telemetry contract and the scripted story.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

use ctower_model::{ReplayReader, ReplayRecord, ReplayWriter};
use ctower_sim::{simulate, IncidentKind, SimConfig, SimError, SimSummary, PRODUCTS};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

const MIN: i64 = 60_000;
const WINDOW: i64 = 60_000;

struct Run {
    cfg: SimConfig,
    summary: SimSummary,
    bytes: Vec<u8>,
    records: Vec<ReplayRecord>,
    /// Contract-valid messages, in record order.
    msgs: Vec<Msg>,
    /// Records that break the contract.
    invalid: Vec<(ReplayRecord, String)>,
}

#[derive(Debug, Clone)]
struct Msg {
    t_ms: i64,
    ts: i64,
    site: String,
    area: String,
    line: String,
    asset: String,
    signal: String,
    num: Option<f64>,
    text: Option<String>,
    reason: Option<String>,
}

const STATES: &[&str] = &[
    "running",
    "stopped",
    "break",
    "planned_maintenance",
    "cip",
    "changeover",
    "no_shift",
];
const REASONS: &[&str] = &["jam", "breakdown", "material_shortage", "door_open"];
const NUMERIC: &[&str] = &[
    "energy_kwh",
    "power_kw",
    "feed_m3",
    "permeate_m3",
    "concentrate_m3",
    "conductivity_us_cm",
    "toc_ppb",
    "temperature_c",
];
const COUNTERS: &[&str] = &["count_total", "count_good", "count_reject"];

/// Parses a record under the telemetry contract, with the simulator's own
/// promises on top (integer ms timestamps inside the recording, known signals).
fn parse(rec: &ReplayRecord, cfg: &SimConfig) -> Result<Msg, String> {
    if rec.qos != 1 || rec.retain {
        return Err("qos/retain".into());
    }
    if rec.payload.len() > 64 * 1024 {
        return Err("oversized".into());
    }
    let levels: Vec<&str> = rec.topic.split('/').collect();
    if levels.len() != 6 || levels.iter().any(|l| l.is_empty()) || levels[0] != cfg.enterprise {
        return Err(format!("topic {}", rec.topic));
    }
    let v: Value = serde_json::from_slice(&rec.payload).map_err(|e| format!("json: {e}"))?;
    let obj = v.as_object().ok_or("not an object")?;
    if obj
        .keys()
        .any(|k| !matches!(k.as_str(), "ts" | "value" | "reason"))
    {
        return Err("unknown key".into());
    }
    let ts = obj.get("ts").and_then(Value::as_i64).ok_or("ts")?;
    if ts < cfg.start_ms || ts >= cfg.end_ms() {
        return Err(format!("ts {ts} outside the recording"));
    }
    let value = obj.get("value").ok_or("value")?;
    let signal = levels[5];
    let reason = obj.get("reason").map(|r| r.as_str().map(str::to_string));
    let (mut num, mut text) = (None, None);
    match signal {
        "state" => {
            let s = value.as_str().ok_or("state not a string")?;
            if !STATES.contains(&s) {
                return Err(format!("state {s}"));
            }
            match (&reason, s) {
                (Some(Some(r)), "stopped") if REASONS.contains(&r.as_str()) => {}
                (None, s) if s != "stopped" => {}
                _ => return Err(format!("reason {reason:?} on {s}")),
            }
            text = Some(s.to_string());
        }
        "product" => {
            let s = value.as_str().ok_or("product not a string")?;
            if !PRODUCTS.iter().any(|p| p.0 == s) {
                return Err(format!("product {s}"));
            }
            text = Some(s.to_string());
        }
        c if COUNTERS.contains(&c) => {
            num = Some(value.as_u64().ok_or("counter not an integer >= 0")? as f64);
        }
        n if NUMERIC.contains(&n) => {
            let x = value.as_f64().ok_or("not a number")?;
            if !x.is_finite() || x < 0.0 {
                return Err("not finite / negative".into());
            }
            num = Some(x);
        }
        other => return Err(format!("unknown signal {other}")),
    }
    if signal != "state" && reason.is_some() {
        return Err("reason on a non-state signal".into());
    }
    Ok(Msg {
        t_ms: rec.t_ms,
        ts,
        site: levels[1].into(),
        area: levels[2].into(),
        line: levels[3].into(),
        asset: levels[4].into(),
        signal: signal.into(),
        num,
        text,
        reason: reason.flatten(),
    })
}

fn run(cfg: SimConfig) -> Run {
    let mut w = ReplayWriter::new(Vec::new()).expect("writer");
    let summary = simulate(&cfg, &mut w).expect("simulate");
    let bytes = w.finish().expect("finish");
    let records: Vec<ReplayRecord> = ReplayReader::new(&bytes[..])
        .expect("header")
        .collect::<Result<_, _>>()
        .expect("records");
    let (mut msgs, mut invalid) = (Vec::new(), Vec::new());
    for r in &records {
        match parse(r, &cfg) {
            Ok(m) => msgs.push(m),
            Err(e) => invalid.push((r.clone(), e)),
        }
    }
    Run {
        cfg,
        summary,
        bytes,
        records,
        msgs,
        invalid,
    }
}

fn default_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| run(SimConfig::default()))
}

/// Messages by event time (stable: receive order breaks ties).
fn by_ts<'a>(msgs: impl Iterator<Item = &'a Msg>) -> Vec<&'a Msg> {
    let mut v: Vec<&Msg> = msgs.collect();
    v.sort_by_key(|m| m.ts);
    v
}

type LineKey = (String, String, String);

fn line_key(m: &Msg) -> LineKey {
    (m.site.clone(), m.area.clone(), m.line.clone())
}

/// State changes of each machine, by event time: (ts, state, reason).
fn state_changes(r: &Run) -> BTreeMap<LineKey, Vec<(i64, String, Option<String>)>> {
    let mut out: BTreeMap<LineKey, Vec<(i64, String, Option<String>)>> = BTreeMap::new();
    for m in by_ts(r.msgs.iter().filter(|m| m.signal == "state")) {
        let v = out.entry(line_key(m)).or_default();
        let s = (m.ts, m.text.clone().unwrap_or_default(), m.reason.clone());
        if v.last().is_none_or(|l| (&l.1, &l.2) != (&s.1, &s.2)) {
            v.push(s);
        }
    }
    out
}

/// Milliseconds per state code in each 60-s window of one machine.
fn window_states(
    changes: &[(i64, String, Option<String>)],
    end: i64,
) -> BTreeMap<i64, BTreeMap<String, i64>> {
    let mut out: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
    for (i, (ts, st, _)) in changes.iter().enumerate() {
        let next = changes.get(i + 1).map_or(end, |c| c.0);
        let mut t = *ts;
        while t < next {
            let w = t.div_euclid(WINDOW) * WINDOW;
            let e = next.min(w + WINDOW);
            *out.entry(w).or_default().entry(st.clone()).or_default() += e - t;
            t = e;
        }
    }
    out
}

/// Last value of a cumulative signal in each window, for one topic.
fn window_last(msgs: &[&Msg]) -> BTreeMap<i64, f64> {
    let mut out = BTreeMap::new();
    for m in msgs {
        out.insert(m.ts.div_euclid(WINDOW) * WINDOW, m.num.unwrap_or(f64::NAN));
    }
    out
}

fn select<'a>(r: &'a Run, site: &str, line: &str, signal: &str) -> Vec<&'a Msg> {
    by_ts(
        r.msgs
            .iter()
            .filter(|m| m.site == site && m.line == line && m.signal == signal),
    )
}

fn silent_spans(r: &Run) -> Vec<(String, i64, i64)> {
    r.summary
        .incidents
        .iter()
        .filter(|i| i.kind == IncidentKind::SilentSource)
        .map(|i| (i.site.clone(), i.start_ms, i.end_ms))
        .collect()
}

/// Whether window `w` of `site` touches a silent period (its data is incomplete).
fn touches_silence(silent: &[(String, i64, i64)], site: &str, w: i64) -> bool {
    silent
        .iter()
        .any(|(s, a, b)| s == site && w < b + WINDOW && w + 2 * WINDOW > *a)
}

#[test]
fn same_config_gives_identical_bytes_and_another_seed_does_not() {
    let a = default_run();
    let again = run(SimConfig::default());
    assert_eq!(a.bytes, again.bytes);
    assert_eq!(a.summary, again.summary);
    let other = run(SimConfig {
        seed: 43,
        ..SimConfig::default()
    });
    assert_ne!(a.bytes, other.bytes);
    // The scripted incidents do not depend on the seed.
    assert_eq!(a.summary.incidents, other.summary.incidents);
}

#[test]
fn records_are_sorted_by_receive_time_with_realistic_latency() {
    let r = default_run();
    assert!(r.records.windows(2).all(|w| w[0].t_ms <= w[1].t_ms));
    assert_eq!(r.summary.messages, r.records.len() as u64);
    let mut late = 0;
    for m in &r.msgs {
        let d = m.t_ms - m.ts;
        if d >= 5_000 {
            assert!(d <= 25_000, "late by {d} ms");
            late += 1;
        } else {
            assert!((5..=80).contains(&d), "latency {d} ms");
        }
    }
    assert_eq!(late, r.summary.late);
    let share = late as f64 / r.msgs.len() as f64;
    assert!((0.005..0.015).contains(&share), "late share {share}");
    // Late messages really arrive after newer ones of their topic.
    let mut overtaken = 0;
    let mut newest: BTreeMap<(LineKey, &str, &str), i64> = BTreeMap::new();
    for m in &r.msgs {
        let k = (line_key(m), m.asset.as_str(), m.signal.as_str());
        let n = newest.entry(k).or_insert(i64::MIN);
        if m.ts < *n {
            overtaken += 1;
        }
        *n = (*n).max(m.ts);
    }
    assert!(
        overtaken > late / 2,
        "{overtaken} out-of-order of {late} late"
    );
}

#[test]
fn every_wellformed_payload_follows_the_contract_and_malformed_are_counted() {
    let r = default_run();
    assert_eq!(
        r.invalid.len() as u64,
        r.summary.malformed,
        "{:?}",
        &r.invalid[..3.min(r.invalid.len())]
    );
    assert!(r.summary.malformed >= 8 * 3, "a handful of each kind");
    let text = |rec: &ReplayRecord| String::from_utf8_lossy(&rec.payload).into_owned();
    type Is = fn(&ReplayRecord, &str) -> bool;
    let kinds: [(&str, Is); 8] = [
        ("invalid json", |_, p| {
            serde_json::from_str::<Value>(p).is_err()
        }),
        ("NaN", |_, p| p.contains(r#""value":"NaN""#)),
        ("comma decimal", |_, p| p.contains(r#""value":"12,5""#)),
        ("missing ts", |_, p| {
            serde_json::from_str::<Value>(p).is_ok_and(|v| v.get("ts").is_none())
        }),
        ("wrong depth", |rec, _| rec.topic.split('/').count() != 6),
        ("oversized", |rec, _| rec.payload.len() > 64 * 1024),
        ("year 2099", |_, p| {
            serde_json::from_str::<Value>(p)
                .ok()
                .and_then(|v| v.get("ts").and_then(Value::as_i64))
                .is_some_and(|ts| (4_070_908_800_000..4_102_444_800_000).contains(&ts))
        }),
        ("unknown state", |_, p| p.contains(r#""value":"exploded""#)),
    ];
    for (name, f) in kinds {
        let n = r
            .invalid
            .iter()
            .filter(|(rec, _)| f(rec, &text(rec)))
            .count();
        assert!(n >= 3, "{name}: {n}");
    }
    assert!(r
        .invalid
        .iter()
        .any(|(rec, _)| rec.payload.len() == 70 * 1024));
}

#[test]
fn every_topic_publishes_at_t0_and_keeps_its_cadence() {
    let r = default_run();
    let t0 = r.cfg.start_ms;
    let silent = silent_spans(r);
    let mut topics: BTreeMap<(LineKey, String, String), Vec<i64>> = BTreeMap::new();
    for m in by_ts(r.msgs.iter()) {
        topics
            .entry((line_key(m), m.asset.clone(), m.signal.clone()))
            .or_default()
            .push(m.ts);
    }
    // 3 plants: 8 lines × 7 signals, 3 RO skids × 6, 1 HVAC × 2.
    assert_eq!(topics.len(), 8 * 7 + 3 * 6 + 2);
    for ((line, asset, signal), ts) in &topics {
        assert_eq!(ts[0], t0, "{line:?}/{asset}/{signal} at t0");
        let max_gap = match signal.as_str() {
            "state" | "product" => 5 * MIN,
            "conductivity_us_cm" | "toc_ppb" | "temperature_c" => 30_000,
            _ => 10_000,
        };
        for w in ts.windows(2) {
            let in_silence = silent
                .iter()
                .any(|(s, a, b)| s == &line.0 && w[0] < *b && w[1] > *a);
            assert!(
                w[1] - w[0] <= max_gap || in_silence,
                "{line:?}/{asset}/{signal}: gap {} ms at {}",
                w[1] - w[0],
                w[0]
            );
        }
    }
}

#[test]
fn counters_are_monotone_except_the_one_scripted_reset() {
    let r = default_run();
    let reset = r.summary.counter_reset.clone().expect("a counter reset");
    let mut drops = Vec::new();
    let mut by_asset: BTreeMap<(LineKey, i64), [Option<f64>; 3]> = BTreeMap::new();
    let mut prev: BTreeMap<(LineKey, String), f64> = BTreeMap::new();
    for m in by_ts(
        r.msgs
            .iter()
            .filter(|m| COUNTERS.contains(&m.signal.as_str())),
    ) {
        let v = m.num.unwrap_or(f64::NAN);
        let p = prev.insert((line_key(m), m.signal.clone()), v);
        if p.is_some_and(|p| v < p) {
            drops.push((line_key(m), m.ts, v));
        }
        let i = COUNTERS.iter().position(|c| *c == m.signal).unwrap_or(0);
        by_asset.entry((line_key(m), m.ts)).or_default()[i] = Some(v);
    }
    assert_eq!(drops.len(), 3, "{drops:?}");
    for (line, ts, v) in &drops {
        assert_eq!(
            line,
            &(reset.site.clone(), reset.area.clone(), reset.line.clone())
        );
        assert_eq!(*ts, reset.at_ms);
        assert_eq!(*v, 0.0);
    }
    for ((line, ts), [t, g, rj]) in &by_asset {
        if let (Some(t), Some(g), Some(rj)) = (t, g, rj) {
            assert_eq!(g + rj, *t, "{line:?} at {ts}");
        }
    }
}

#[test]
fn meters_are_monotone_and_concentrate_is_feed_minus_permeate() {
    let r = default_run();
    let mut prev: BTreeMap<(LineKey, String), f64> = BTreeMap::new();
    let mut water: BTreeMap<(String, i64), [Option<f64>; 3]> = BTreeMap::new();
    let cumulative = ["energy_kwh", "feed_m3", "permeate_m3", "concentrate_m3"];
    for m in by_ts(
        r.msgs
            .iter()
            .filter(|m| cumulative.contains(&m.signal.as_str())),
    ) {
        let v = m.num.unwrap_or(f64::NAN);
        let p = prev.insert((line_key(m), m.signal.clone()), v);
        assert!(
            p.is_none_or(|p| v >= p),
            "{:?} {} fell to {v}",
            line_key(m),
            m.signal
        );
        if let Some(i) = cumulative[1..].iter().position(|s| *s == m.signal) {
            water.entry((m.site.clone(), m.ts)).or_default()[i] = Some(v);
        }
    }
    for ((site, ts), [f, p, c]) in water {
        if let (Some(f), Some(p), Some(c)) = (f, p, c) {
            assert!(
                (f - p - c).abs() < 1.5e-4,
                "{site} at {ts}: {f} - {p} != {c}"
            );
        }
    }
    // Power and energy agree: mean power ≈ energy / time over the recording.
    for m in ["fill-1", "hvac"] {
        let e = select(r, "lyon-fill", m, "energy_kwh");
        let p = select(r, "lyon-fill", m, "power_kw");
        let hours = (e[e.len() - 1].ts - e[0].ts) as f64 / 3_600_000.0;
        let mean_kw = p.iter().filter_map(|m| m.num).sum::<f64>() / p.len() as f64;
        let kwh = e[e.len() - 1].num.unwrap_or(0.0);
        assert!(
            (kwh / hours - mean_kw).abs() / mean_kw < 0.05,
            "{m}: {kwh} kWh vs {mean_kw} kW"
        );
    }
}

#[test]
fn ro_recovery_is_normal_outside_the_fouling_and_low_during_it() {
    let r = default_run();
    let silent = silent_spans(r);
    let fouling: Vec<_> = r
        .summary
        .incidents
        .iter()
        .filter(|i| i.kind == IncidentKind::MembraneFouling)
        .collect();
    assert_eq!(fouling.len(), 1);
    for site in ["lyon-fill", "basel-api", "shanghai-pack"] {
        let feed = window_last(&select(r, site, "ro-1", "feed_m3"));
        let perm = window_last(&select(r, site, "ro-1", "permeate_m3"));
        let mut low_run = 0;
        let mut longest_low = 0;
        let mut checked = 0;
        for (w, f) in &feed {
            let (Some(pf), Some(p), Some(pp)) = (
                feed.get(&(w - WINDOW)),
                perm.get(w),
                perm.get(&(w - WINDOW)),
            ) else {
                continue;
            };
            if touches_silence(&silent, site, *w) || f - pf <= 0.0 {
                low_run = 0;
                continue;
            }
            let rec = (p - pp) / (f - pf);
            let in_fouling = fouling
                .iter()
                .any(|i| i.site == site && *w + WINDOW > i.start_ms && *w < i.end_ms + WINDOW);
            if in_fouling {
                assert!(rec > 0.55, "{site} {w}: {rec}");
                if rec < 0.70 {
                    low_run += 1;
                    longest_low = longest_low.max(low_run);
                } else {
                    low_run = 0;
                }
            } else {
                checked += 1;
                assert!(
                    (0.80..=0.88).contains(&rec),
                    "{site} window {w}: recovery {rec}"
                );
                let feed_m3h = (f - pf) * 60.0;
                assert!(
                    (8.0..=12.0).contains(&feed_m3h),
                    "{site} feed {feed_m3h} m3/h"
                );
            }
        }
        assert!(checked >= 60, "{site}: {checked} normal windows");
        if site == "basel-api" {
            assert!(
                longest_low >= 15,
                "recovery < 0.70 for only {longest_low} min"
            );
        } else {
            assert_eq!(longest_low, 0);
        }
    }
    // Water quality stays within its normal bands.
    for m in &r.msgs {
        let v = m.num.unwrap_or(0.0);
        match m.signal.as_str() {
            "conductivity_us_cm" => assert!((0.4..=0.9).contains(&v)),
            "toc_ppb" => assert!((80.0..=250.0).contains(&v)),
            "temperature_c" => assert!((15.0..=30.0).contains(&v)),
            _ => {}
        }
    }
}

#[test]
fn default_incidents_are_scripted_inside_the_recording() {
    let r = default_run();
    let (t0, end) = (r.cfg.start_ms, r.cfg.end_ms());
    let got: Vec<_> = r
        .summary
        .incidents
        .iter()
        .map(|i| (i.kind, i.site.as_str(), i.line.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (IncidentKind::NightEnergyLeak, "lyon-fill", "fill-2"),
            (IncidentKind::MembraneFouling, "basel-api", "ro-1"),
            (IncidentKind::Breakdown, "lyon-fill", "fill-1"),
            (IncidentKind::SilentSource, "shanghai-pack", ""),
        ]
    );
    for i in &r.summary.incidents {
        assert!(i.start_ms > t0 && i.start_ms < i.end_ms, "{i:?}");
        assert!(i.end_ms + 15 * MIN <= end, "{i:?} leaves < 15 min after it");
        let len = (i.end_ms - i.start_ms) / MIN;
        let ok = match i.kind {
            IncidentKind::Breakdown => (25..=30).contains(&len),
            IncidentKind::MembraneFouling => (45..=60).contains(&len),
            IncidentKind::NightEnergyLeak => (25..=35).contains(&len),
            IncidentKind::SilentSource => len == 15,
        };
        assert!(ok, "{i:?}: {len} min");
    }
    let reset = r.summary.counter_reset.as_ref().expect("counter reset");
    assert!(reset.at_ms > t0 && reset.at_ms < end);
}

#[test]
fn breakdown_is_the_only_long_availability_loss() {
    let r = default_run();
    let silent = silent_spans(r);
    let bd: Vec<_> = r
        .summary
        .incidents
        .iter()
        .filter(|i| i.kind == IncidentKind::Breakdown)
        .collect();
    for (line, changes) in state_changes(r) {
        // The breakdown itself is one `stopped`/`breakdown` state.
        for i in bd
            .iter()
            .filter(|i| (&i.site, &i.line) == (&line.0, &line.2))
        {
            let s = changes
                .iter()
                .position(|c| c.0 == i.start_ms)
                .expect("breakdown starts on a state change");
            assert_eq!(changes[s].1, "stopped");
            assert_eq!(changes[s].2.as_deref(), Some("breakdown"));
            assert_eq!(changes[s + 1].0, i.end_ms);
            assert_eq!(changes[s + 1].1, "running");
        }
        let mut streak = Vec::new();
        let mut longest: (usize, i64) = (0, 0);
        for (w, b) in window_states(&changes, r.cfg.end_ms()) {
            if touches_silence(&silent, &line.0, w) {
                streak.clear();
                continue;
            }
            let get = |s: &str| b.get(s).copied().unwrap_or(0);
            let busy = get("running") + get("stopped") + get("changeover");
            if busy > 0 && (get("running") as f64) < 0.5 * busy as f64 {
                streak.push(w);
                if streak.len() > longest.0 {
                    longest = (streak.len(), streak[0]);
                }
            } else if busy > 0 {
                streak.clear();
            }
        }
        let has_bd = bd.iter().any(|i| (&i.site, &i.line) == (&line.0, &line.2));
        if has_bd {
            assert!(longest.0 >= 25, "{line:?}: breakdown shows {longest:?}");
        } else {
            assert!(
                longest.0 < 10,
                "{line:?}: availability < 0.5 for {longest:?}"
            );
        }
    }
}

#[test]
fn standby_power_is_low_except_during_the_night_leak() {
    let r = default_run();
    let silent = silent_spans(r);
    let leak = r
        .summary
        .incidents
        .iter()
        .find(|i| i.kind == IncidentKind::NightEnergyLeak)
        .expect("leak");
    let mut leak_windows = 0;
    for (line, changes) in state_changes(r) {
        let states = window_states(&changes, r.cfg.end_ms());
        let energy = window_last(&select(r, &line.0, &line.2, "energy_kwh"));
        for (w, b) in &states {
            let (Some(e), Some(pe)) = (energy.get(w), energy.get(&(w - WINDOW))) else {
                continue;
            };
            if b.get("running").copied().unwrap_or(0) > 0 || touches_silence(&silent, &line.0, *w) {
                continue;
            }
            let kw = (e - pe) * 60.0;
            let in_leak = (&leak.site, &leak.line) == (&line.0, &line.2)
                && *w + WINDOW > leak.start_ms
                && *w < leak.end_ms + WINDOW;
            if in_leak {
                if *w >= leak.start_ms && *w + WINDOW <= leak.end_ms {
                    assert!(kw > 30.0, "leak window {w}: {kw} kW");
                    leak_windows += 1;
                }
            } else {
                assert!(kw < 10.0, "{line:?} window {w}: standby {kw} kW");
            }
        }
    }
    assert!(leak_windows >= 25, "{leak_windows} leak windows");
    // The leak happens off shift and ends >= 15 min before the shift starts.
    let fill2 = &state_changes(r)[&(leak.site.clone(), leak.area.clone(), leak.line.clone())];
    let first_run = fill2
        .iter()
        .find(|c| c.1 == "running")
        .expect("fill-2 starts")
        .0;
    assert_eq!(fill2[0].1, "no_shift");
    assert!(first_run >= leak.end_ms + 15 * MIN);
}

#[test]
fn silent_site_publishes_nothing_then_resumes_with_a_snapshot() {
    let r = default_run();
    let (site, a, b) = silent_spans(r).into_iter().next().expect("silent source");
    let prefix = format!("acme/{site}/");
    for rec in r
        .records
        .iter()
        .filter(|rec| rec.topic.starts_with(&prefix))
    {
        // Late messages from before the silence may still trickle in.
        assert!(
            !(rec.t_ms >= a + 25_100 && rec.t_ms < b),
            "{} received at {} during the silence",
            rec.topic,
            rec.t_ms
        );
    }
    assert!(!r
        .msgs
        .iter()
        .any(|m| m.site == site && m.ts >= a && m.ts < b));
    let resumed: Vec<_> = r
        .msgs
        .iter()
        .filter(|m| m.site == site && m.ts == b)
        .collect();
    // 3 lines × 7 signals + RO 6 signals.
    assert_eq!(resumed.len(), 3 * 7 + 6);
    // Counters jumped: the process went on while the site was silent.
    let before = select(r, &site, "blister-1", "count_total");
    let last_before = before.iter().rev().find(|m| m.ts < a).and_then(|m| m.num);
    let first_after = before.iter().find(|m| m.ts >= b).and_then(|m| m.num);
    assert!(first_after.unwrap_or(0.0) - last_before.unwrap_or(0.0) > 1000.0);
}

#[test]
fn shifts_follow_each_sites_local_time() {
    let r = default_run();
    let changes = state_changes(r);
    let first = |site: &str, line: &str| {
        let k = changes
            .keys()
            .find(|k| k.0 == site && k.2 == line)
            .expect("line");
        changes[k].clone()
    };
    let t0 = r.cfg.start_ms;
    // 06:00 Lyon/Basel = t0: fill-1 and spps-1 start their shift.
    assert_eq!(first("lyon-fill", "fill-1")[0].1, "running");
    assert_eq!(first("basel-api", "spps-1")[0].1, "running");
    // fill-2 starts at 07:00 local, purif-1 at 06:30 local (+ under a minute).
    let start_of =
        |c: &[(i64, String, Option<String>)]| c.iter().find(|c| c.1 == "running").map(|c| c.0);
    let s = start_of(&first("lyon-fill", "fill-2")).unwrap_or(0) - t0;
    assert!((60 * MIN..61 * MIN).contains(&s), "{s}");
    let s = start_of(&first("basel-api", "purif-1")).unwrap_or(0) - t0;
    assert!((30 * MIN..31 * MIN).contains(&s), "{s}");
    // Shanghai 13:00–15:00: every line takes a 15-min break.
    for line in ["blister-1", "blister-2", "carton-1"] {
        let c = first("shanghai-pack", line);
        let i = c.iter().position(|c| c.1 == "break").expect("break");
        let until = c.get(i + 1).map_or(r.cfg.end_ms(), |c| c.0);
        let len = until - c[i].0;
        assert!(
            (14 * MIN..16 * MIN).contains(&len) || until == r.cfg.end_ms(),
            "{line}: {len}"
        );
    }
    // The freeze-dryer runs round the clock.
    assert!(!first("lyon-fill", "lyo-1")
        .iter()
        .any(|c| c.1 == "no_shift" || c.1 == "break"));
}

#[test]
fn changeovers_and_micro_stops_are_short() {
    let r = default_run();
    let products = by_ts(r.msgs.iter().filter(|m| m.signal == "product"));
    let (mut changeovers, mut jams) = (0, 0);
    for (line, c) in state_changes(r) {
        for (i, (ts, st, reason)) in c.iter().enumerate() {
            let Some(next) = c.get(i + 1) else { continue };
            let len = next.0 - ts;
            if st == "changeover" {
                changeovers += 1;
                assert!(len <= 8 * MIN, "{line:?} changeover {len} ms");
                // The product switches as the changeover starts.
                let of_line: Vec<_> = products.iter().filter(|m| line_key(m) == line).collect();
                let before = of_line
                    .iter()
                    .rev()
                    .find(|m| m.ts < *ts)
                    .and_then(|m| m.text.clone());
                let at = of_line
                    .iter()
                    .find(|m| m.ts == *ts)
                    .and_then(|m| m.text.clone());
                assert!(
                    at.is_some() && at != before,
                    "{line:?}: {before:?} -> {at:?}"
                );
            }
            if reason.as_deref() == Some("jam") {
                jams += 1;
                assert!((20_000..=110_000).contains(&len), "{line:?} jam {len} ms");
            }
        }
    }
    assert!(changeovers >= 2, "{changeovers} changeovers");
    assert!(jams >= 10, "{jams} jams");
}

#[test]
fn performance_and_quality_are_plausible() {
    let r = default_run();
    let silent = silent_spans(r);
    let ideal = |p: &str| {
        PRODUCTS
            .iter()
            .find(|x| x.0 == p)
            .map(|x| x.1)
            .unwrap_or(f64::NAN)
    };
    for (line, changes) in state_changes(r) {
        let totals = select(r, &line.0, &line.2, "count_total");
        let goods = select(r, &line.0, &line.2, "count_good");
        let product = select(r, &line.0, &line.2, "product");
        let product_at = |t: i64| {
            product
                .iter()
                .rev()
                .find(|m| m.ts <= t)
                .and_then(|m| m.text.clone())
                .unwrap_or_default()
        };
        let inc = |v: &[&Msg]| {
            v.windows(2)
                .map(|w| {
                    let (a, b) = (w[0].num.unwrap_or(0.0), w[1].num.unwrap_or(0.0));
                    if b >= a {
                        b - a
                    } else {
                        b
                    }
                })
                .sum::<f64>()
        };
        let (total, good) = (inc(&totals), inc(&goods));
        let fast = ideal(&product_at(r.cfg.start_ms)) < 1.0;
        if fast {
            let q = good / total;
            assert!((0.97..=0.995).contains(&q), "{line:?} quality {q}");
        }
        // Performance per window, where the line ran through the window and
        // the 10 s before it (counters come every 10 s).
        let states = window_states(&changes, r.cfg.end_ms());
        let last = window_last(&totals);
        let mut perf = Vec::new();
        for (w, b) in &states {
            let ran = |w: &i64| states.get(w).and_then(|b| b.get("running")).copied();
            if b.get("running") != Some(&WINDOW) || ran(&(w - WINDOW)) != Some(WINDOW) {
                continue;
            }
            if touches_silence(&silent, &line.0, *w)
                || *w
                    == r.summary
                        .counter_reset
                        .as_ref()
                        .map_or(0, |c| c.at_ms.div_euclid(WINDOW) * WINDOW)
            {
                continue;
            }
            if let (Some(n), Some(p)) = (last.get(w), last.get(&(w - WINDOW))) {
                perf.push((n - p) * ideal(&product_at(*w)) / 60.0);
            }
        }
        if fast {
            assert!(perf.len() > 30, "{line:?}");
            for p in &perf {
                assert!((0.75..=0.98).contains(p), "{line:?} performance {p}");
            }
        } else {
            // Slow lines: a unit every few minutes; check the mean.
            let mean = perf.iter().sum::<f64>() / perf.len() as f64;
            assert!(
                (0.6..=1.2).contains(&mean),
                "{line:?} mean performance {mean}"
            );
        }
    }
}

#[test]
fn clean_recording_differs_only_by_the_malformed_messages() {
    let normal = default_run();
    let clean = run(SimConfig {
        clean: true,
        ..SimConfig::default()
    });
    assert!(clean.invalid.is_empty());
    assert_eq!(clean.summary.malformed, 0);
    assert_eq!(clean.summary.late, normal.summary.late);
    assert_eq!(clean.summary.incidents, normal.summary.incidents);
    let valid: Vec<&ReplayRecord> = normal
        .records
        .iter()
        .filter(|rec| parse(rec, &normal.cfg).is_ok())
        .collect();
    assert_eq!(valid.len(), clean.records.len());
    assert!(valid.iter().zip(&clean.records).all(|(a, b)| *a == b));
    assert_eq!(
        normal.summary.messages - normal.summary.malformed,
        clean.summary.messages
    );
}

#[test]
fn a_hundred_plants_for_six_minutes() {
    let r = run(SimConfig {
        plants: 100,
        hours: 0.1,
        ..SimConfig::default()
    });
    assert_eq!(r.invalid.len() as u64, r.summary.malformed);
    assert!(r.records.windows(2).all(|w| w[0].t_ms <= w[1].t_ms));
    let sites: std::collections::BTreeSet<&str> = r.msgs.iter().map(|m| m.site.as_str()).collect();
    assert_eq!(sites.len(), 100);
    for s in [
        "lyon-fill",
        "basel-api",
        "shanghai-pack",
        "lyon-fill-2",
        "lyon-fill-34",
        "shanghai-pack-33",
    ] {
        assert!(sites.contains(s), "{s}");
    }
    assert_eq!(ctower_sim::sites(100).len(), 100);
    // Too short for the scripted incidents; they are left out, never clipped.
    for i in &r.summary.incidents {
        assert!(i.start_ms > r.cfg.start_ms && i.end_ms + 15 * MIN <= r.cfg.end_ms());
    }
}

#[test]
fn summer_time_moves_the_european_shifts_an_hour_earlier_in_utc() {
    // 2026-07-02T02:00Z = 04:00 in Lyon (CEST) and 10:00 in Shanghai.
    let start_ms = 1_782_957_600_000;
    let r = run(SimConfig {
        start_ms,
        hours: 5.0,
        clean: true,
        ..SimConfig::default()
    });
    assert!(r.invalid.is_empty());
    let c = state_changes(&r);
    let fill1 = &c[&("lyon-fill".into(), "aseptic".into(), "fill-1".into())];
    assert_eq!(fill1[0].1, "no_shift");
    let start = fill1.iter().find(|c| c.1 == "running").map_or(0, |c| c.0);
    // 06:00 CEST = 04:00Z (not 05:00Z, as it would be in winter).
    assert!((start_ms + 2 * 60 * MIN..start_ms + 2 * 60 * MIN + MIN).contains(&start));
    let kinds: Vec<_> = r.summary.incidents.iter().map(|i| i.kind).collect();
    for k in [
        IncidentKind::Breakdown,
        IncidentKind::MembraneFouling,
        IncidentKind::NightEnergyLeak,
        IncidentKind::SilentSource,
    ] {
        assert!(kinds.contains(&k), "{k:?} missing: {kinds:?}");
    }
    let bd = r
        .summary
        .incidents
        .iter()
        .find(|i| i.kind == IncidentKind::Breakdown)
        .expect("bd");
    assert!(bd.start_ms >= start + 5 * MIN, "breakdown before the shift");
}

#[test]
fn shift_plans_follow_local_time_across_the_dst_change_and_shanghai_midnight() {
    // 2026-03-28T15:00Z to 2026-03-29T06:00Z: Europe/Paris and Zurich go
    // from CET (UTC+1) to CEST (UTC+2) at 01:00Z; Shanghai (UTC+8, no
    // summer time) passes midnight at 16:00Z.
    let start_ms = 1_774_710_000_000;
    let r = run(SimConfig {
        start_ms,
        hours: 15.0,
        clean: true,
        ..SimConfig::default()
    });
    assert!(r.invalid.is_empty());
    let h = |hours: i64| start_ms + hours * 60 * MIN;
    let c = state_changes(&r);
    // First change into `to` at or after `from`; plan boundaries come
    // 5–45 s after the planned minute.
    let at = |line: (&str, &str, &str), to: &str, from: i64| {
        c[&(line.0.into(), line.1.into(), line.2.into())]
            .iter()
            .find(|x| x.0 >= from && x.1 == to)
            .map(|x| x.0)
    };
    let expect = |line, to, boundary: i64| {
        let t = at(line, to, boundary - MIN);
        assert!(
            t.is_some_and(|t| (boundary + 5_000..=boundary + 45_000).contains(&t)),
            "{line:?} → {to}: {t:?}, planned {boundary}"
        );
    };
    let fill1 = ("lyon-fill", "aseptic", "fill-1");
    let fill2 = ("lyon-fill", "aseptic", "fill-2");
    expect(fill1, "no_shift", h(6)); // 22:00 CET = 21:00Z
    expect(fill2, "no_shift", h(7)); // 23:00 CET = 22:00Z
    expect(fill1, "running", h(13)); // 06:00 CEST = 04:00Z, not 05:00Z
    expect(fill2, "running", h(14)); // 07:00 CEST = 05:00Z
    expect(("basel-api", "synthesis", "spps-1"), "running", h(13));
    expect(
        ("basel-api", "synthesis", "purif-1"),
        "running",
        h(13) + 30 * MIN,
    );
    let blister1 = ("shanghai-pack", "packaging", "blister-1");
    expect(blister1, "no_shift", h(1)); // 24:00 CST = 16:00Z
    expect(blister1, "running", h(9)); // 08:00 CST = 00:00Z
    expect(blister1, "break", h(12) + 30 * MIN); // 11:30 CST = 03:30Z
                                                 // Nothing in between: the European lines sleep through the change.
    assert_eq!(
        at(fill1, "running", h(6) + MIN),
        at(fill1, "running", h(13) - MIN)
    );
    // The freeze-dryer runs round the clock, through both.
    assert!(
        at(("lyon-fill", "aseptic", "lyo-1"), "no_shift", start_ms).is_none(),
        "lyo-1 must never be off shift"
    );
}

#[test]
fn very_late_delivery_moves_only_the_chosen_messages() {
    let normal = default_run();
    let cfg = SimConfig {
        very_late_per_hour: 5,
        ..SimConfig::default()
    };
    let r = run(cfg.clone());
    // 5 per plant and hour, 3 plants, 2 hours.
    assert_eq!(r.summary.very_late, 30);
    assert_eq!(r.summary.very_late_messages.len(), 30);
    let per_site = r.summary.very_late_per_site();
    assert_eq!(
        per_site.values().copied().collect::<Vec<_>>(),
        [10, 10, 10],
        "{per_site:?}"
    );
    assert!(r
        .summary
        .very_late_messages
        .windows(2)
        .all(|w| (w[0].ts, &w[0].topic) <= (w[1].ts, &w[1].topic)));
    // The same records, bar the receive time of the very-late ones.
    assert_eq!(r.records.len(), normal.records.len());
    let key = |rec: &ReplayRecord| (rec.topic.clone(), rec.payload.clone());
    let mut a: Vec<&ReplayRecord> = normal.records.iter().collect();
    let mut b: Vec<&ReplayRecord> = r.records.iter().collect();
    a.sort_by_key(|rec| key(rec));
    b.sort_by_key(|rec| key(rec));
    let mut moved = 0;
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(key(x), key(y));
        if x.t_ms != y.t_ms {
            moved += 1;
        }
    }
    assert_eq!(moved, 30);
    let (mut was_late, mut overtaken) = (0, 0);
    for v in &r.summary.very_late_messages {
        assert!(v.topic.starts_with(&format!("acme/{}/", v.site)), "{v:?}");
        let d = v.t_ms - v.ts;
        assert!((120_000..=600_000).contains(&d), "{v:?}");
        let rec = r
            .records
            .iter()
            .find(|rec| rec.topic == v.topic && rec.t_ms == v.t_ms)
            .expect("the very-late record");
        let m = parse(rec, &cfg).expect("a real, well-formed message");
        assert_eq!(m.ts, v.ts);
        // It arrives after newer messages of its own topic.
        let topic_of = |n: &Msg| {
            format!(
                "acme/{}/{}/{}/{}/{}",
                n.site, n.area, n.line, n.asset, n.signal
            )
        };
        // It arrives after newer messages: always of its site, and of its
        // own topic unless that publishes less often than the delay (the
        // state heartbeat is every 5 min).
        assert!(r
            .msgs
            .iter()
            .any(|n| n.t_ms < v.t_ms && n.ts > v.ts && n.site == v.site));
        if r.msgs
            .iter()
            .any(|n| n.t_ms < v.t_ms && n.ts > v.ts && topic_of(n) == v.topic)
        {
            overtaken += 1;
        }
        let before = normal
            .records
            .iter()
            .find(|nr| nr.topic == v.topic && nr.payload == rec.payload)
            .map(|nr| nr.t_ms - v.ts)
            .expect("the same message in the default recording");
        if before >= 5_000 {
            was_late += 1;
        }
    }
    assert!(
        overtaken >= 20,
        "{overtaken} of 30 overtaken on their topic"
    );
    // A late message chosen to be very late counts only as very late.
    assert_eq!(r.summary.late + was_late, normal.summary.late);
    assert_eq!(r.summary.incidents, normal.summary.incidents);
}

#[test]
fn invalid_configs_are_rejected() {
    let bad = [
        SimConfig {
            plants: 0,
            ..SimConfig::default()
        },
        SimConfig {
            hours: 0.0,
            ..SimConfig::default()
        },
        SimConfig {
            hours: -1.0,
            ..SimConfig::default()
        },
        SimConfig {
            hours: f64::NAN,
            ..SimConfig::default()
        },
        SimConfig {
            enterprise: "a/b".into(),
            ..SimConfig::default()
        },
        SimConfig {
            enterprise: String::new(),
            ..SimConfig::default()
        },
        SimConfig {
            very_late_per_hour: ctower_sim::MAX_VERY_LATE_PER_HOUR + 1,
            ..SimConfig::default()
        },
    ];
    for cfg in bad {
        let mut w = ReplayWriter::new(Vec::new()).expect("writer");
        match simulate(&cfg, &mut w) {
            Err(SimError::InvalidConfig(_)) => {}
            other => panic!("{cfg:?}: {other:?}"),
        }
    }
}

#[test]
fn io_errors_are_returned_not_panicked() {
    struct Full(usize);
    impl std::io::Write for Full {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.0 < b.len() {
                return Err(std::io::Error::other("disk full"));
            }
            self.0 -= b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = ReplayWriter::new(Full(4096)).expect("writer");
    // The encoder keeps up to ~100 KiB before it writes: simulate enough.
    let cfg = SimConfig {
        hours: 1.0,
        clean: true,
        ..SimConfig::default()
    };
    assert!(matches!(simulate(&cfg, &mut w), Err(SimError::Io(_))));
}
