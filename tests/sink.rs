//! Issue #9: an output is one `impl Sink`. A counting sink added to a
//! batch run, without touching the batch code, sees every window, every
//! KPI record and every alarm event the run wrote to its files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

use ctower::batch::{run, BatchOptions};
use ctower::output::Sink;
use ctower_model::{AlarmEvent, StreamOutput};
use ctower_stream::WindowOutput;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Seen {
    windows: u64,
    kpis: Vec<Vec<u8>>,
    signals: u64,
    alarms: Vec<String>,
    held: Vec<AlarmEvent>,
}

struct Counting(Arc<Mutex<Seen>>);

impl Sink for Counting {
    fn record(&mut self, out: &StreamOutput) {
        let mut seen = self.0.lock().unwrap();
        match out {
            StreamOutput::Kpi(k) => {
                let mut line = Vec::new();
                k.write_json(&mut line);
                seen.kpis.push(line);
            }
            StreamOutput::Signal(_) => seen.signals += 1,
        }
    }
    fn alarm(&mut self, ev: &AlarmEvent) {
        let line = serde_json::to_string(ev).unwrap();
        self.0.lock().unwrap().alarms.push(line);
    }
    fn held_alarm(&mut self, ev: &AlarmEvent) {
        self.0.lock().unwrap().held.push(ev.clone());
    }
    fn end_window(&mut self, window: &WindowOutput, _now_ms: i64) {
        if window.closes_window {
            self.0.lock().unwrap().windows += 1;
        }
    }
}

#[test]
fn a_counting_sink_sees_every_window_and_alarm_of_a_batch_run() {
    let root = env!("CARGO_MANIFEST_DIR");
    let settings = ctower::settings::load(format!("{root}/configs/default.toml").as_ref()).unwrap();
    let recording = format!("{root}/replay-data/plants-2h.jsonl.gz");
    let out = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sink = Counting(seen.clone());
    let summary = run(
        &settings,
        recording.as_ref(),
        out.path(),
        &BatchOptions::new(2, None),
        vec![Box::new(sink)],
    )
    .unwrap();

    let seen = seen.lock().unwrap();
    let lines = |name: &str| -> Vec<String> {
        std::fs::read_to_string(out.path().join(name))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let kpis: Vec<String> = seen
        .kpis
        .iter()
        .map(|l| String::from_utf8(l.clone()).unwrap())
        .collect();
    assert!(
        summary.windows >= 120,
        "two hours of windows: {}",
        summary.windows
    );
    assert_eq!(seen.windows, summary.windows);
    assert_eq!(kpis, lines("kpis.jsonl"), "every KPI record, in file order");
    assert_eq!(
        seen.alarms,
        lines("alarms.jsonl"),
        "every alarm event, in file order"
    );
    assert!(!seen.alarms.is_empty(), "the recording raises alarms");
    assert!(seen.signals > 0, "signal statistics reach the sinks too");
    assert_eq!(seen.kpis.len() as u64, summary.kpi_records);
    assert_eq!(seen.alarms.len() as u64, summary.alarm_events);
}

/// Issue #9: the alarm engine's acknowledgement is reached through the
/// output stage, and its event goes to every sink like any alarm event.
#[test]
fn an_operator_acknowledgement_reaches_every_sink() {
    use ctower::output::{FaultPolicy, OutputStage};
    use ctower_alerts::{Condition, Rule, RuleSource, ScopeFilter, Stat};
    use ctower_model::{
        AlarmEventKind, AlarmState, AssetKey, Clock, OperatorCommand, Priority, Role, SignalWindow,
    };

    let rule = Rule {
        name: "conductivity_high".into(),
        source: RuleSource::Signal {
            signal: "conductivity".into(),
            stat: Stat::Last,
        },
        condition: Condition::Above,
        threshold: 1.3,
        clear_at: 1.1,
        on_delay_ms: 0,
        off_delay_ms: 0,
        kind: ctower_alerts::detect::Kind::Threshold,
        suppress_when: Vec::new(),
        priority: Priority::High,
        message: "WFI conductivity above the USP limit".into(),
        filter: ScopeFilter::default(),
    };
    let asset = AssetKey::new("lyon", "utilities", "wfi", "loop1");
    let window = |v: f64| WindowOutput {
        window_start_ms: 0,
        window_end_ms: 60_000,
        outputs: vec![StreamOutput::Signal(SignalWindow {
            window_start_ms: 0,
            window_end_ms: 60_000,
            asset: asset.clone(),
            signal: "conductivity".into(),
            role: Role::Process,
            count: 1,
            min: v,
            max: v,
            mean: v,
            last: v,
        })],
        closes_window: true,
        samples: Vec::new(),
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (clock, _time) = Clock::manual(90_000);
    let mut stage =
        OutputStage::new(vec![rule], FaultPolicy::Stop, clock).with_sink(Counting(seen.clone()));
    stage.window(&window(2.0)).unwrap();
    let raised: AlarmEvent = serde_json::from_str(&seen.lock().unwrap().alarms[0]).unwrap();
    assert_eq!(raised.state, AlarmState::UnackActive);

    let ack = OperatorCommand::Acknowledge(raised.id());
    assert!(
        stage.command(&ack),
        "an unacknowledged alarm is acknowledged"
    );
    assert!(!stage.command(&ack), "twice is nothing to do");
    let alarms = seen.lock().unwrap().alarms.clone();
    assert_eq!(alarms.len(), 2, "{alarms:?}");
    let acked: AlarmEvent = serde_json::from_str(&alarms[1]).unwrap();
    assert_eq!(acked.kind, AlarmEventKind::Acknowledged);
    assert_eq!(acked.state, AlarmState::AckActive);
    assert_eq!(acked.id(), raised.id());
    assert_eq!(acked.ts_ms, 90_000, "stamped by the stage's clock");
}

/// A restart puts the alarms back as the audit trail left them, and tells
/// the sinks (the hooks) what they had been told: the raise at its own
/// time (so PagerDuty's dedup key is the same incident's), then the state.
#[test]
fn a_restart_restores_alarms_from_the_trail_and_tells_the_hooks() {
    use ctower::output::{FaultPolicy, OutputStage};
    use ctower_model::{AlarmEventKind, AlarmState, Clock};
    let settings = ctower::settings::load(
        format!("{}/configs/default.toml", env!("CARGO_MANIFEST_DIR")).as_ref(),
    )
    .unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (clock, _t) = Clock::manual(1_772_440_000_000);
    let mut stage = OutputStage::new(settings.rules.clone(), FaultPolicy::Stop, clock)
        .with_sink(Counting(seen.clone()));
    let rec = |ts: &str, user: &str, action: &str, before: &str, after: &str| {
        format!(
            r#"{{"seq":1,"ts":"{ts}","user":"{user}","action":"{action}","rule":"line-availability-low","scope":"lyon-fill/aseptic/fill-1","signal":null,"before":"{before}","after":"{after}","reason":"","prev":"0","hash":"0"}}"#
        )
    };
    let trail = [
        rec("2026-03-02T05:50:00.000Z", "system", "raised", "normal", "unack_active"),
        rec("2026-03-02T06:10:00.000Z", "alice", "acknowledge", "unack_active", "ack_active"),
        r#"{"seq":3,"ts":"2026-03-02T06:11:00.000Z","user":"system","action":"raised","rule":"ctower.journal","scope":"group","signal":null,"before":"normal","after":"unack_active","reason":"","prev":"0","hash":"0"}"#.to_string(),
    ]
    .join("\n");
    assert_eq!(
        stage.restore_from_trail(&trail),
        1,
        "the system alarm is not a rule's"
    );
    let held = seen.lock().unwrap().held.clone();
    let kinds: Vec<(AlarmEventKind, AlarmState)> = held.iter().map(|e| (e.kind, e.state)).collect();
    assert_eq!(
        kinds,
        vec![
            (AlarmEventKind::Raised, AlarmState::UnackActive),
            (AlarmEventKind::Acknowledged, AlarmState::AckActive)
        ]
    );
    assert_eq!(
        held[0].ts_ms, 1_772_430_600_000,
        "the raise at its own time"
    );
}
