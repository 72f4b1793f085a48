//! Process alarms on the committed recording (issue #12 items 1, 2, 4):
//! `configs/default.toml`'s per-sample rules (the USP presets, an EWMA
//! chart of the freeze dryer's power) against the clean recording and
//! against a copy with injected events: a conductivity excursion, a
//! chattering conductivity, a slow drift of the freeze dryer's power. The
//! alarms carry the samples' own event times, the EWMA fires on the drift
//! and not on the clean data, chatter is held, and the files are the same
//! with one worker, two workers and in live mode through Mosquitto.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{assert_same_files, read_jsonl, recording, root, run_batch, scratch};
use ctower_model::{ReplayReader, ReplayRecord, ReplayWriter};
use ctower_testkit::process::{self, Spawned};
use ctower_testkit::services::{self, MOSQUITTO};
use ctower_testkit::Mosquitto;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const S: i64 = 1000;
const LYO: &str = "acme/lyon-fill/aseptic/lyo-1/meter/power_kw";
const BASEL_COND: &str = "acme/basel-api/utilities/ro-1/skid/conductivity_us_cm";
const LYON_COND: &str = "acme/lyon-fill/utilities/ro-1/skid/conductivity_us_cm";

fn payload(ts: i64, v: f64) -> Vec<u8> {
    format!("{{\"ts\":{ts},\"value\":{v}}}").into_bytes()
}

fn value_of(r: &ReplayRecord) -> Option<(i64, f64)> {
    let p: Value = serde_json::from_slice(&r.payload).ok()?;
    Some((p["ts"].as_i64()?, p["value"].as_f64()?))
}

/// What was injected where.
struct Injected {
    /// The one Basel sample above 1.3 µS/cm: (event time, value).
    excursion: (i64, f64),
    /// Event time of the drift's first sample.
    drift_from: i64,
    /// Event time of the chatter's first sample.
    chatter_from: i64,
}

/// The committed recording, with: one Basel conductivity sample at 1.45
/// µS/cm (the 100th), Lyon's conductivity swinging across the limit every
/// 10 s for a minute and a half (extra samples after the 150th), and the
/// freeze dryer's power rising by 0.12 kW per sample from its 300th.
fn inject(to: &Path) -> Injected {
    let records: Vec<ReplayRecord> = ReplayReader::open(&recording())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let (mut basel, mut lyon, mut lyo) = (0, 0, 0);
    let mut out = Vec::with_capacity(records.len() + 16);
    let mut injected = Injected {
        excursion: (0, 0.0),
        drift_from: 0,
        chatter_from: 0,
    };
    for mut r in records {
        if r.topic == BASEL_COND {
            if let Some((ts, _)) = value_of(&r) {
                basel += 1;
                if basel == 100 {
                    r.payload = payload(ts, 1.45);
                    injected.excursion = (ts, 1.45);
                }
            }
        } else if r.topic == LYO {
            if let Some((ts, v)) = value_of(&r) {
                lyo += 1;
                if lyo >= 300 {
                    if lyo == 300 {
                        injected.drift_from = ts;
                    }
                    let v = v + 0.12 * f64::from(lyo - 300);
                    r.payload = payload(ts, (v * 1000.0).round() / 1000.0);
                }
            }
        } else if r.topic == LYON_COND {
            if let Some((ts, _)) = value_of(&r) {
                lyon += 1;
                if lyon == 150 {
                    injected.chatter_from = ts + S;
                    out.push(r.clone());
                    // Nine extra samples, 10 s apart, across the limit.
                    for i in 0..9 {
                        let t = ts + S + i * 10 * S;
                        let v = if i % 2 == 0 { 1.42 } else { 1.1 };
                        out.push(ReplayRecord {
                            t_ms: r.t_ms + 1 + i * 10 * S,
                            payload: payload(t, v),
                            ..r.clone()
                        });
                    }
                    continue;
                }
            }
        }
        out.push(r);
    }
    out.sort_by_key(|r| r.t_ms); // stable: equal times keep their order
    let mut w = ReplayWriter::create(to).unwrap();
    for r in &out {
        w.write(r).unwrap();
    }
    w.finish().unwrap();
    assert!(injected.excursion.0 > 0 && injected.drift_from > 0 && injected.chatter_from > 0);
    injected
}

fn alarms(out: &Path, rule: &str) -> Vec<Value> {
    read_jsonl(&out.join("alarms.jsonl"))
        .into_iter()
        .filter(|a| a["rule"] == rule)
        .collect()
}

#[test]
fn process_alarms_have_sample_times_fire_on_injected_events_and_are_deterministic() {
    let dir = scratch("process-alarms");
    // The clean recording: no process alarm (its conductivity and TOC stay
    // within USP limits; the freeze dryer's power is in control).
    run_batch(&recording(), &dir.join("clean"), 2);
    for rule in ["pw-conductivity-usp", "pw-toc-usp", "lyo-power-drift"] {
        assert_eq!(
            alarms(&dir.join("clean"), rule),
            Vec::<Value>::new(),
            "{rule} on the clean recording"
        );
    }
    // The committed recording's alarms, with their priorities: the plants'
    // incidents (a standby draw, an RO recovery dip, a filler breakdown, a
    // site gone silent), each raised and cleared once.
    let clean: Vec<[String; 4]> = read_jsonl(&dir.join("clean/alarms.jsonl"))
        .iter()
        .map(|a| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            [
                s(&a["rule"]),
                s(&a["kind"]),
                s(&a["priority"]),
                s(&a["scope"]["site"]),
            ]
        })
        .collect();
    let want: Vec<[String; 4]> = [
        ["standby-energy-high", "raised", "medium", "lyon-fill"],
        ["water-recovery-low", "raised", "medium", "basel-api"],
        ["standby-energy-high", "cleared", "medium", "lyon-fill"],
        ["line-availability-low", "raised", "high", "lyon-fill"],
        ["line-availability-low", "cleared", "high", "lyon-fill"],
        ["water-recovery-low", "cleared", "medium", "basel-api"],
        ["site-data-stale", "raised", "high", "shanghai-pack"],
        ["site-data-stale", "cleared", "high", "shanghai-pack"],
    ]
    .iter()
    .map(|r| r.map(str::to_string))
    .collect();
    assert_eq!(clean, want);

    let rec = dir.join("injected.jsonl.gz");
    let inj = inject(&rec);
    run_batch(&rec, &dir.join("w1"), 1);
    run_batch(&rec, &dir.join("w2"), 2);
    assert_same_files(
        &["kpis.jsonl", "alarms.jsonl"],
        (&dir.join("w1"), "one worker"),
        (&dir.join("w2"), "two workers"),
    );
    let out = dir.join("w2");

    // The excursion: raised at the sample's own event time, with its value.
    let usp = alarms(&out, "pw-conductivity-usp");
    let basel: Vec<&Value> = usp
        .iter()
        .filter(|a| a["scope"]["site"] == "basel-api")
        .collect();
    assert_eq!(basel.len(), 2, "{basel:#?}");
    assert_eq!(basel[0]["kind"], "raised");
    assert_eq!(basel[0]["ts_ms"].as_i64(), Some(inj.excursion.0));
    assert_eq!(basel[0]["value"].as_f64(), Some(inj.excursion.1));
    assert_eq!(basel[0]["priority"], "urgent");
    assert_eq!(basel[0]["signal"], "conductivity_us_cm");
    assert_ne!(
        basel[0]["ts_ms"].as_i64().unwrap() % 60_000,
        0,
        "not a window end"
    );
    assert_eq!(basel[1]["kind"], "cleared");

    // The chatter: five excursions within 90 s give three raises (the
    // third marks it chattering), then it is held until a minute after
    // the last one.
    let lyon: Vec<&Value> = usp
        .iter()
        .filter(|a| a["scope"]["site"] == "lyon-fill")
        .collect();
    let raises: Vec<i64> = lyon
        .iter()
        .filter(|a| a["kind"] == "raised")
        .map(|a| a["ts_ms"].as_i64().unwrap())
        .collect();
    assert_eq!(
        raises,
        vec![
            inj.chatter_from,
            inj.chatter_from + 20 * S,
            inj.chatter_from + 40 * S
        ]
    );
    let clears: Vec<i64> = lyon
        .iter()
        .filter(|a| a["kind"] == "cleared")
        .map(|a| a["ts_ms"].as_i64().unwrap())
        .collect();
    // Without the hold it would clear at each of the normal samples in
    // between; held, it clears once, a minute after it is back to normal.
    let last_high = inj.chatter_from + 80 * S;
    assert_eq!(clears.len(), 3, "{lyon:#?}");
    assert!(clears[1] < inj.chatter_from + 40 * S);
    assert!(clears[2] >= last_high + 60 * S, "held a minute: {clears:?}");

    // The drift: the EWMA chart fires after it starts, once.
    let drift = alarms(&out, "lyo-power-drift");
    assert!(!drift.is_empty(), "no alarm on the drift");
    assert_eq!(drift[0]["kind"], "raised");
    assert_eq!(drift[0]["scope"]["line"], "lyo-1");
    let at = drift[0]["ts_ms"].as_i64().unwrap();
    assert!(
        at > inj.drift_from,
        "raised at {at}, before the drift at {}",
        inj.drift_from
    );
    assert!(drift[0]["value"].as_f64().unwrap() > 4.0);
    assert_eq!(drift.iter().filter(|a| a["kind"] == "raised").count(), 1);

    // Live mode through Mosquitto: the same files.
    let Some(bin) = services::require(&MOSQUITTO) else {
        return;
    };
    let broker = Mosquitto::start(&bin);
    let sources = format!(
        "[[sources]]\nname = \"plant\"\nbroker_url = \"{}\"\nsubscriptions = [\"acme/#\"]\n",
        broker.url()
    );
    let config = common::default_config_with_sources(&dir.join("live.toml"), &sources);
    let total = ReplayReader::open(&rec).unwrap().count() as u64;
    let live_out = dir.join("live");
    let mut live = Spawned::start(
        Command::new(env!("CARGO_BIN_EXE_ctower"))
            .current_dir(root())
            .args(["--log", "info", "run", "-w", "2", "-c"])
            .arg(&config)
            .arg("--out")
            .arg(&live_out)
            .args(["--stop-after", &total.to_string()])
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
        "ctower run",
    );
    live.wait_line("source subscribed source=plant", Duration::from_secs(60));
    process::run_ok(
        Command::new(env!("CARGO_BIN_EXE_ctower"))
            .current_dir(root())
            .args(["--log", "warn", "replay"])
            .arg(&rec)
            .args(["--broker", &broker.url(), "--speed", "max"]),
        "ctower replay",
        Duration::from_secs(300),
    );
    live.wait_success(Duration::from_secs(300));
    assert_same_files(
        &["kpis.jsonl", "alarms.jsonl"],
        (&out, "batch mode"),
        (&live_out, "live mode"),
    );
}
