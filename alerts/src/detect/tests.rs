//! Detectors through the engine's per-sample path: process alarms at the
//! sample's event time, delays and deadband, chatter, deadman, EWMA, SPC,
//! CUSUM and rate of change; and the rules' configuration.

use crate::config::{AlertsConfig, Secrets};
use crate::engine::AlarmEngine;
use ctower_model::{AlarmEvent, AlarmEventKind, AlarmState, AssetKey, Observation, Role, Value};

const S: i64 = 1000;
const T0: i64 = 1_772_427_600_000;

fn engine(rules: &str) -> AlarmEngine {
    let cfg: AlertsConfig = toml::from_str(rules).unwrap_or_else(|e| panic!("{e}"));
    let env = |_: &str| None;
    let mut issues = Vec::new();
    match cfg.check("alerts", Secrets::Required(&env), &mut issues) {
        Some(a) => AlarmEngine::new(a.rules),
        None => panic!("{issues:?}"),
    }
}

fn obs(asset: &str, signal: &str, ts_ms: i64, v: f64, seq: u64) -> Observation {
    Observation {
        asset: AssetKey::new("lyon", "utilities", "wfi", asset),
        signal: signal.into(),
        role: Role::Process,
        ts_ms,
        value: Value::Number(v),
        seq,
        watermark_ms: None,
    }
}

/// Feeds `(ms after T0, value)` samples of asset `loop1`, signal `x`.
fn feed(e: &mut AlarmEngine, xs: &[(i64, f64)]) -> Vec<AlarmEvent> {
    xs.iter()
        .enumerate()
        .flat_map(|(i, (t, v))| e.sample(&obs("loop1", "x", T0 + t, *v, i as u64)))
        .collect()
}

fn kinds(evs: &[AlarmEvent]) -> Vec<(AlarmEventKind, i64)> {
    evs.iter().map(|e| (e.kind, e.ts_ms - T0)).collect()
}

/// Deterministic N(0, 1) noise (a linear congruential generator through
/// Box–Muller), so the statistical tests never flake.
fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (next(), next());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        })
        .collect()
}

const THRESHOLD: &str = r#"
[[rules]]
name = "wfi-cond"
source = "sample"
signal = "x"
condition = "above"
threshold = 1.3
clear_at = 1.2
priority = "urgent"
"#;

/// A process alarm's event time is the sample's, to the millisecond, not a
/// window's end; the deadband holds it until the value is back below
/// `clear_at`.
#[test]
fn a_process_alarm_has_the_samples_event_time_and_a_deadband() {
    let mut e = engine(THRESHOLD);
    let evs = feed(
        &mut e,
        &[(1_234, 1.0), (2_345, 1.31), (3_000, 1.25), (4_567, 1.19)],
    );
    assert_eq!(
        kinds(&evs),
        vec![
            (AlarmEventKind::Raised, 2_345),
            (AlarmEventKind::Cleared, 4_567)
        ]
    );
    assert_eq!(evs[0].value, Some(1.31));
    assert_eq!(evs[0].state, AlarmState::UnackActive);
    assert_eq!(evs[0].signal.as_deref(), Some("x"));
    assert_eq!(evs[0].scope.asset.as_deref(), Some("loop1"));
    // An older sample is not evaluated.
    assert!(feed(&mut e, &[(4_000, 9.0)]).is_empty());
    assert_eq!(e.late_ignored(), 1);
}

#[test]
fn on_and_off_delays_run_in_event_time() {
    let mut e = engine(&format!(
        "{THRESHOLD}on_delay_secs = 10\noff_delay_secs = 5\n"
    ));
    let evs = feed(
        &mut e,
        &[
            (0, 1.5),
            (5 * S, 1.5),
            (6 * S, 1.0), // breaks the run
            (7 * S, 1.5),
            (16 * S, 1.5),
            (17 * S, 1.5), // 10 s since 7 s
            (18 * S, 1.0),
            (20 * S, 1.5), // back: the off-delay starts again
            (21 * S, 1.0),
            (25 * S, 1.0),
            (26 * S, 1.0), // 5 s since 21 s
        ],
    );
    assert_eq!(
        kinds(&evs),
        vec![
            (AlarmEventKind::Raised, 17 * S),
            (AlarmEventKind::Cleared, 26 * S)
        ]
    );
}

/// A signal crossing its limit every 10 s: the third raise within a minute
/// marks the alarm chattering, and it is held active until the value has
/// stayed normal for a minute (so three cycles, not six).
#[test]
fn a_chattering_alarm_is_detected_and_held() {
    let mut e = engine(THRESHOLD);
    let xs: Vec<(i64, f64)> = (0..12)
        .map(|i| (i * 10 * S, if i % 2 == 0 { 1.5 } else { 1.0 }))
        .collect();
    let evs = feed(&mut e, &xs);
    let raises = evs
        .iter()
        .filter(|e| e.kind == AlarmEventKind::Raised)
        .count();
    assert_eq!(raises, 3, "{:?}", kinds(&evs));
    assert_eq!(e.chatter_detected(), 1);
    let status: Vec<_> = e.active().collect();
    assert_eq!(status.len(), 1);
    assert!(status[0].chattering);
    assert!(status[0].state.is_active());
    // A minute of normal values ends the hold.
    // Normal since 110 s: still held at 169 s, cleared at 170 s.
    assert!(feed(&mut e, &[(130 * S, 1.0), (169 * S, 1.0)]).is_empty());
    let evs = feed(&mut e, &[(170 * S, 1.0)]);
    assert_eq!(kinds(&evs), vec![(AlarmEventKind::Cleared, 170 * S)]);
    assert!(!e.active().any(|a| a.chattering));
}

#[test]
fn a_deadman_raises_when_a_signal_falls_silent_while_its_site_goes_on() {
    let mut e = engine(
        r#"
[[rules]]
name = "wfi-dead"
source = "sample"
signal = "x"
kind = "deadman"
silence_secs = 30
priority = "high"
"#,
    );
    let mut evs = Vec::new();
    for i in 0..10 {
        let t = T0 + i * 10 * S;
        if i < 3 {
            evs.extend(e.sample(&obs("loop1", "x", t, 1.0, i as u64)));
        }
        evs.extend(e.sample(&obs("loop2", "x", t, 1.0, 100 + i as u64)));
    }
    // loop1's last sample at 20 s; silent for more than 30 s at 60 s.
    assert_eq!(kinds(&evs), vec![(AlarmEventKind::Raised, 60 * S)]);
    assert_eq!(evs[0].scope.asset.as_deref(), Some("loop1"));
    assert_eq!(evs[0].value, Some(40.0));
    // It reports again: cleared at that sample.
    let back = e.sample(&obs("loop1", "x", T0 + 95 * S, 1.0, 200));
    assert_eq!(kinds(&back), vec![(AlarmEventKind::Cleared, 95 * S)]);
    // Only the site's own samples move its event time: another site's
    // do not make loop1 silent.
    let elsewhere = Observation {
        asset: AssetKey::new("basel", "utilities", "wfi", "loop9"),
        ..obs("loop9", "x", T0 + 500 * S, 1.0, 300)
    };
    assert!(e.sample(&elsewhere).is_empty());
}

const EWMA: &str = r#"
[[rules]]
name = "wfi-drift"
source = "sample"
signal = "x"
kind = "ewma"
ewma_lambda = 0.1
threshold = 4.0
baseline_samples = 200
priority = "medium"
"#;

/// The EWMA chart stays quiet on in-control noise and fires on a drift of
/// a fraction of a sigma per ten samples, long before any single sample
/// would cross a 3-sigma limit.
#[test]
fn ewma_fires_on_a_slow_drift_and_not_on_noise() {
    let n = noise(2_000, 7);
    let clean: Vec<(i64, f64)> = n
        .iter()
        .enumerate()
        .map(|(i, z)| (i as i64 * S, 1.0 + 0.02 * z))
        .collect();
    let mut e = engine(EWMA);
    assert!(feed(&mut e, &clean).is_empty(), "false alarm on noise");
    let drift: Vec<(i64, f64)> = n
        .iter()
        .enumerate()
        .map(|(i, z)| {
            let ramp = if i >= 500 {
                0.0004 * (i - 500) as f64
            } else {
                0.0
            };
            (i as i64 * S, 1.0 + 0.02 * z + ramp)
        })
        .collect();
    let mut e = engine(EWMA);
    let evs = feed(&mut e, &drift);
    let first = evs
        .first()
        .unwrap_or_else(|| panic!("no alarm on the drift"));
    assert_eq!(first.kind, AlarmEventKind::Raised);
    let at = (first.ts_ms - T0) / S;
    // Within 100 samples of the drift's start (it is 1 sigma after 50).
    assert!((500..600).contains(&at), "raised at sample {at}");
    assert!(first.value.is_some_and(|z| z > 4.0));
    // No single sample was beyond 3 sigma yet.
    assert!(drift[..at as usize]
        .iter()
        .all(|(_, v)| (v - 1.0).abs() < 0.02 * 3.0 + 0.04));
}

#[test]
fn spc_run_rules_catch_a_shift_a_threshold_would_miss() {
    let rules = r#"
[[rules]]
name = "wfi-spc"
source = "sample"
signal = "x"
kind = "spc"
baseline_samples = 100
priority = "low"
"#;
    let n = noise(400, 11);
    let mut e = engine(rules);
    let clean: Vec<(i64, f64)> = n[..100]
        .iter()
        .enumerate()
        .map(|(i, z)| (i as i64 * S, 5.0 + z))
        .collect();
    assert!(feed(&mut e, &clean).is_empty());
    // Eight in a row just above the mean (each well within 1 sigma).
    let shifted: Vec<(i64, f64)> = (0..8)
        .map(|i| ((100 + i) * S, 5.0 + 0.3 + 0.01 * i as f64))
        .collect();
    let evs = feed(&mut e, &shifted);
    assert_eq!(kinds(&evs), vec![(AlarmEventKind::Raised, 107 * S)]);
}

#[test]
fn cusum_accumulates_a_small_persistent_excess() {
    let rules = r#"
[[rules]]
name = "energy-drift"
source = "sample"
signal = "x"
kind = "cusum"
condition = "above"
cusum_target = 100.0
cusum_slack = 0.5
threshold = 5.0
priority = "medium"
"#;
    let mut e = engine(rules);
    // In control: +-0.4 around the target never accumulates past the slack.
    let quiet: Vec<(i64, f64)> = (0..100)
        .map(|i| (i * S, 100.0 + if i % 2 == 0 { 0.4 } else { -0.4 }))
        .collect();
    assert!(feed(&mut e, &quiet).is_empty());
    // One unit above: S grows by 0.5 per sample, past 5 at the 11th.
    let high: Vec<(i64, f64)> = (0..20).map(|i| ((100 + i) * S, 101.0)).collect();
    let evs = feed(&mut e, &high);
    assert_eq!(kinds(&evs), vec![(AlarmEventKind::Raised, 110 * S)]);
    assert_eq!(evs[0].value, Some(5.5));
    // Back on target: S drains by the slack, and clears at 0.
    let back: Vec<(i64, f64)> = (0..30).map(|i| ((120 + i) * S, 100.0)).collect();
    let evs = feed(&mut e, &back);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].kind, AlarmEventKind::Cleared);
}

#[test]
fn rate_of_change_is_per_minute_over_its_window() {
    let rules = r#"
[[rules]]
name = "tank-fill-fast"
source = "sample"
signal = "x"
kind = "rate_of_change"
rate_window_secs = 60
condition = "above"
threshold = 2.0
clear_at = 1.0
priority = "high"
"#;
    let mut e = engine(rules);
    // 1 unit per minute for 3 minutes, then 3 units per minute.
    let mut xs: Vec<(i64, f64)> = (0..=18).map(|i| (i * 10 * S, i as f64 / 6.0)).collect();
    xs.extend((1..=12).map(|i| ((180 + i * 10) * S, 3.0 + i as f64 * 0.5)));
    let evs = feed(&mut e, &xs);
    let first = evs.first().unwrap_or_else(|| panic!("no alarm"));
    assert_eq!(first.kind, AlarmEventKind::Raised);
    assert!(first.value.is_some_and(|r| r > 2.0), "{first:?}");
    assert!(first.ts_ms - T0 > 180 * S);
}

#[test]
fn usp_presets_are_ready_made_sample_rules() {
    let mut e = engine(
        r#"
[[rules]]
name = "wfi-usp-conductivity"
preset = "usp_conductivity"
site = "lyon"

[[rules]]
name = "wfi-usp-toc"
preset = "usp_toc"
"#,
    );
    let r = &e.rules()[0];
    assert_eq!(r.sample_signal().map(|s| &**s), Some("conductivity_us_cm"));
    assert_eq!(
        (r.threshold, r.priority),
        (1.3, ctower_model::Priority::Urgent)
    );
    assert!(r.message.contains("USP <645>"));
    assert_eq!(e.rules()[1].threshold, 500.0);
    let evs = e.sample(&obs("loop1", "conductivity_us_cm", T0, 1.31, 0));
    assert_eq!(evs.len(), 1);
    assert!(e.sample(&obs("loop1", "toc_ppb", T0, 499.0, 1)).is_empty());
    assert_eq!(
        e.sample(&obs("loop1", "toc_ppb", T0 + 1, 501.0, 2)).len(),
        1
    );
}

#[test]
fn each_kind_refuses_the_fields_of_the_others_with_their_keys() {
    let cfg: AlertsConfig = toml::from_str(
        r#"
[[rules]]
name = "a"
source = "sample"
signal = "x"
kind = "deadman"
priority = "high"
threshold = 3.0

[[rules]]
name = "b"
source = "signal"
signal = "x"
stat = "max"
kind = "deadman"
silence_secs = 10
priority = "high"

[[rules]]
name = "c"
source = "sample"
signal = "x"
kind = "ewma"
ewma_lambda = 1.5
silence_secs = 10
priority = "high"

[[rules]]
name = "d"
source = "sample"
signal = "x"
kind = "cusum"
condition = "above"
threshold = 4.0
priority = "high"
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let env = |_: &str| None;
    let mut issues = Vec::new();
    assert!(cfg
        .check("alerts", Secrets::Required(&env), &mut issues)
        .is_none());
    let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
    let has = |s: &str| text.iter().any(|t| t.starts_with(s));
    assert!(has("alerts.rules[0].silence_secs: missing"), "{text:#?}");
    assert!(has("alerts.rules[0].threshold: not allowed"), "{text:#?}");
    assert!(
        has("alerts.rules[1].kind: a deadman rule watches samples"),
        "{text:#?}"
    );
    assert!(
        has("alerts.rules[2].ewma_lambda: must be in (0, 1]"),
        "{text:#?}"
    );
    assert!(
        has("alerts.rules[2].silence_secs: not allowed"),
        "{text:#?}"
    );
    assert!(has("alerts.rules[3].cusum_target: missing"), "{text:#?}");
}

fn state(asset: &str, ts_ms: i64, bucket: ctower_model::Bucket, seq: u64) -> Observation {
    Observation {
        signal: "state".into(),
        role: Role::State,
        value: Value::State {
            bucket,
            code: "x".into(),
            reason: None,
        },
        ..obs(asset, "state", ts_ms, 0.0, seq)
    }
}

/// Design suppression: while a machine of the line is in a changeover,
/// the line's alarms of the rule are suppressed (an excursion then is
/// followed, not annunciated); when it ends, an alarm whose condition
/// still holds comes back unacknowledged.
#[test]
fn a_changeover_suppresses_the_lines_alarms_by_design() {
    use ctower_model::Bucket;
    let mut e = engine(&format!("{THRESHOLD}suppress_when = [\"changeover\"]\n"));
    // Active before the changeover: suppressed when it starts.
    let evs = feed(&mut e, &[(0, 1.5)]);
    assert_eq!(kinds(&evs), vec![(AlarmEventKind::Raised, 0)]);
    let evs = e.sample(&state("filler", T0 + S, Bucket::Changeover, 10));
    assert_eq!(kinds(&evs), vec![(AlarmEventKind::Suppressed, S)]);
    assert_eq!(evs[0].state, AlarmState::Suppressed);
    // During it: clear and raise again, silently.
    assert!(feed(&mut e, &[(2 * S, 1.0), (3 * S, 1.6)]).is_empty());
    // Another alarm of the line raised during it: shown suppressed.
    let born = e.sample(&obs("loop2", "x", T0 + 4 * S, 1.7, 11));
    assert_eq!(kinds(&born), vec![(AlarmEventKind::Suppressed, 4 * S)]);
    // Running again: both come back, unacknowledged.
    let evs = e.sample(&state("filler", T0 + 5 * S, Bucket::Running, 12));
    assert_eq!(evs.len(), 2, "{:?}", kinds(&evs));
    assert!(evs
        .iter()
        .all(|e| e.kind == AlarmEventKind::Unsuppressed && e.state == AlarmState::UnackActive));
    // A machine of another line does not suppress this one.
    let mut other = state("filler", T0 + 6 * S, Bucket::Changeover, 13);
    other.asset = AssetKey::new("lyon", "utilities", "other-line", "filler");
    assert!(e.sample(&other).is_empty());
}

mod properties {
    use super::*;
    use crate::lifecycle::{legal, Input};
    use ctower_model::{AlarmId, Bucket};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// One step of a random plant: a sample of one of three assets, a
    /// machine-state change, an operator's input, or time passing.
    #[derive(Debug, Clone)]
    enum Step {
        Sample(usize, f64),
        State(Bucket),
        Ack(usize),
        Shelve(usize, i64),
        Service(usize, bool),
        Wait(i64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            10 => (0usize..3, 0.0f64..2.0).prop_map(|(a, v)| Step::Sample(a, v)),
            1 => prop_oneof![Just(Bucket::Running), Just(Bucket::Changeover)].prop_map(Step::State),
            2 => (0usize..3).prop_map(Step::Ack),
            1 => (0usize..3, 1i64..120).prop_map(|(a, s)| Step::Shelve(a, s)),
            1 => (0usize..3, any::<bool>()).prop_map(|(a, on)| Step::Service(a, on)),
            2 => (1i64..200).prop_map(Step::Wait),
        ]
    }

    fn id(asset: usize) -> AlarmId {
        AlarmId {
            rule: "wfi-cond".into(),
            scope: AssetKey::new("lyon", "utilities", "wfi", &format!("m{asset}"))
                .scope(ctower_model::Level::Asset),
            signal: Some("x".into()),
        }
    }

    proptest! {
        /// Random samples, machine states, acknowledgements, shelves,
        /// services and clock steps through the engine: every event is a
        /// legal ISA-18.2 transition from its alarm's previous state, each
        /// alarm has one state (one alarm per rule, scope and signal, never
        /// a second), and a shelf ends by itself when its time is up.
        #[test]
        fn every_change_is_legal_and_each_alarm_is_one(
            steps in proptest::collection::vec(step(), 1..150),
            delays in (0i64..3, 0i64..3),
        ) {
            let rules = format!(
                "{THRESHOLD}on_delay_secs = {}\noff_delay_secs = {}\nsuppress_when = [\"changeover\"]\n",
                delays.0, delays.1
            );
            let mut e = engine(&rules);
            let mut t = 0i64;
            let mut seq = 0u64;
            let mut states: BTreeMap<AlarmId, AlarmState> = BTreeMap::new();
            let mut shelves: BTreeMap<AlarmId, i64> = BTreeMap::new();
            for s in steps {
                t += S;
                seq += 1;
                let evs = match s {
                    Step::Sample(a, v) => e.sample(&obs(&format!("m{a}"), "x", T0 + t, v, seq)),
                    Step::State(b) => e.sample(&state("filler", T0 + t, b, seq)),
                    Step::Ack(a) => e.operate(&id(a), Input::Acknowledge, T0 + t).unwrap_or_default(),
                    Step::Shelve(a, secs) => {
                        let evs = e.operate(&id(a), Input::Shelve { until_ms: T0 + t + secs * S }, T0 + t).unwrap_or_default();
                        if evs.iter().any(|ev| ev.kind == AlarmEventKind::Shelved) {
                            shelves.insert(id(a), T0 + t + secs * S);
                        }
                        evs
                    }
                    Step::Service(a, on) => e.operate(&id(a), Input::OutOfService(!on), T0 + t).unwrap_or_default(),
                    Step::Wait(secs) => {
                        t += secs * S;
                        e.expire_shelves(T0 + t)
                    }
                };
                for ev in &evs {
                    let before = states.get(&ev.id()).copied().unwrap_or(AlarmState::Normal);
                    prop_assert!(legal(before, ev.state), "{:?} -> {:?} by {:?}", before, ev.state, ev.kind);
                    if ev.kind == AlarmEventKind::Unshelved {
                        if let Some(until) = shelves.remove(&ev.id()) {
                            prop_assert!(ev.ts_ms >= until || before == AlarmState::Shelved);
                        }
                    }
                    states.insert(ev.id(), ev.state);
                }
                // One alarm per id, in the state its events say.
                let listed: Vec<_> = e.active().collect();
                let mut ids: Vec<AlarmId> = listed.iter().map(|a| a.id()).collect();
                ids.dedup();
                prop_assert_eq!(ids.len(), listed.len());
                for a in &listed {
                    if let Some(s) = states.get(&a.id()) {
                        prop_assert_eq!(*s, a.state);
                    }
                }
            }
            // Every shelf whose time is up has ended.
            let far = T0 + t + 1_000 * S;
            e.expire_shelves(far);
            prop_assert!(e.active().all(|a| a.state != AlarmState::Shelved));
        }
    }
}
