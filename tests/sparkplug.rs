//! A Sparkplug B plant through the real binary (issue #10 item 2): payloads
//! made by an independent implementation (pysparkplug,
//! `tests/sparkplug/scenario.py`) recorded and run in batch mode. Births
//! map onto the asset model with the JSON tree's roles; an NDEATH makes the
//! machine UNKNOWN at once, never downtime, until the rebirth restores it;
//! a machine that reports by exception and stays stopped for three minutes
//! is three minutes of stop, not of silence.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{read_jsonl, read_summary, root, scratch};
use ctower_collector::sparkplug::decode_payload;
use ctower_model::ReplayReader;
use ctower_model::{ReplayRecord, ReplayWriter};
use ctower_testkit::process::{self, Spawned};
use ctower_testkit::services::{self, MOSQUITTO};
use ctower_testkit::Mosquitto;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const T0: i64 = 1_772_427_600_000;
const MIN: i64 = 60_000;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Records the scenario (`args`: `[]`, or `["gap"]`), or `None` when
/// pysparkplug is missing (a loud skip on a laptop, a failure under
/// `CTOWER_REQUIRE_SERVICES=1`).
fn write_recording(path: &Path, args: &[&str]) -> Option<usize> {
    let python = ctower_testkit::services::require_pysparkplug()?;
    let script = root().join("tests/sparkplug/scenario.py");
    let out = process::run_ok(
        Command::new(python).arg(script).args(args),
        "pysparkplug scenario",
        Duration::from_secs(60),
    );
    let mut w = ReplayWriter::create(path).unwrap();
    let mut n = 0;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        w.write(&ReplayRecord {
            t_ms: v["t_ms"].as_i64().unwrap(),
            topic: v["topic"].as_str().unwrap().to_string(),
            qos: 1,
            retain: false,
            payload: hex(v["hex"].as_str().unwrap()),
        })
        .unwrap();
        n += 1;
    }
    w.finish().unwrap();
    Some(n)
}

const CONFIG: &str = r#"
[pipeline]
workers = 1
window_secs = 60
stale_after_secs = 60

[time_model]
micro_stop_secs = 0

[[sources]]
name = "lyon-gateway"
broker_url = "mqtt://127.0.0.1:1883"
format = "sparkplug"

[sources.sparkplug]
site = "lyon-fill"
area = "aseptic"
line = "{node}"
asset = "{device}"
"#;

#[test]
fn a_sparkplug_node_dies_and_is_reborn_unknown_time_not_downtime() {
    let dir = scratch("sparkplug-batch");
    let recording = dir.join("spb.jsonl.gz");
    let Some(records) = write_recording(&recording, &[]) else {
        return;
    };
    let config = dir.join("spb.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = dir.join("out");
    process::run_ok(
        Command::new(env!("CARGO_BIN_EXE_ctower"))
            .current_dir(root())
            .args(["--log", "warn", "run", "-c"])
            .arg(&config)
            .arg("--replay")
            .arg(&recording)
            .args(["--speed", "max", "--until-end", "--out"])
            .arg(&out),
        "ctower batch run of a Sparkplug recording",
        Duration::from_secs(300),
    );
    let summary = read_summary(&out);
    assert_eq!(
        summary["messages"].as_u64(),
        Some(records as u64),
        "{summary}"
    );
    let dead: u64 = summary["dead_letters"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    assert_eq!(dead, 0, "{summary}");

    // Per window of the filler: (running, unplanned stop, unknown) seconds
    // and the units counted.
    let mut w: BTreeMap<i64, (i64, i64, i64, Option<f64>)> = BTreeMap::new();
    for r in read_jsonl(&out.join("kpis.jsonl")) {
        if r["period"] != "window" || r["level"] != "asset" || r["asset"] != "filler" {
            continue;
        }
        assert_eq!(r["site"], "lyon-fill");
        assert_eq!(r["line"], "line-1");
        let s = |k: &str| r[k].as_i64().unwrap_or(0) / 1000;
        let start = (r["window_start_ms"].as_i64().unwrap() - T0) / MIN;
        w.insert(
            start,
            (
                s("running_ms"),
                s("unplanned_stop_ms"),
                s("unknown_ms"),
                r["produced"].as_f64(),
            ),
        );
    }
    let get = |i: i64| {
        w.get(&i)
            .copied()
            .unwrap_or_else(|| panic!("no window {i}: {w:?}"))
    };
    // Born running: 60 s of running, units counted.
    assert_eq!(get(0).0, 60, "{w:?}");
    assert_eq!(get(1).0, 60, "{w:?}");
    // Readings at 0:10 … 1:00 (a reading counts up to its time), then 1:10 … 1:50.
    assert_eq!((get(0).3, get(1).3), (Some(600.0), Some(500.0)), "{w:?}");
    // NDEATH at 2:05: UNKNOWN from then, no downtime; the whole of 3:00.
    assert_eq!((get(2).0, get(2).1, get(2).2), (5, 0, 55), "{w:?}");
    assert_eq!((get(3).0, get(3).1, get(3).2), (0, 0, 60), "{w:?}");
    // Units: not known while the node is dead (unknown is not zero).
    assert_eq!(get(3).3, None, "{w:?}");
    // Reborn at 4:05: running again.
    assert_eq!((get(4).0, get(4).1, get(4).2), (55, 0, 5), "{w:?}");
    // Fault at 5:00, then silence to 8:00: three minutes of stop (held),
    // not of silence.
    for i in 5..8 {
        assert_eq!(
            (get(i).0, get(i).1, get(i).2),
            (0, 60, 0),
            "window {i}: {w:?}"
        );
    }
    // The held counters say how many were made while stopped: none.
    assert_eq!((get(5).3, get(6).3), (Some(0.0), Some(0.0)), "{w:?}");
    assert_eq!(get(8).0, 60, "{w:?}");
}

fn ctower() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctower"));
    c.current_dir(root());
    c
}

/// `ctower record` of `topics` until `count` messages.
fn recorder(broker: &str, topics: &[&str], count: usize, out: &Path, name: &str) -> Spawned {
    let mut c = ctower();
    c.args(["--log", "info", "record", "--broker", broker]);
    for t in topics {
        c.args(["--topic", t]);
    }
    c.args(["--count", &count.to_string(), "--client-id", name, "-o"])
        .arg(out);
    let r = Spawned::start(&mut c, name);
    r.wait_line("recording", Duration::from_secs(30));
    r
}

/// Live, through Mosquitto: the host's STATE is online while ctower runs
/// and offline (retained) after it stops; a `seq` gap wider than the
/// reorder window gets exactly one rebirth request, on the wire as the
/// node's NCMD, however much more the node sends meanwhile.
#[test]
fn live_a_seq_gap_asks_for_one_rebirth_and_the_state_is_kept() {
    let Some(bin) = services::require(&MOSQUITTO) else {
        return;
    };
    let dir = scratch("sparkplug-live");
    let recording = dir.join("gap.jsonl.gz");
    let Some(records) = write_recording(&recording, &["gap"]) else {
        return;
    };
    let broker = Mosquitto::start(&bin);
    let url = broker.url();
    let config = dir.join("spb.toml");
    std::fs::write(
        &config,
        CONFIG.replace("mqtt://127.0.0.1:1883", &url).replace(
            "[sources.sparkplug]",
            "client_id = \"ctower-spb-live\"\n[sources.sparkplug]\nhost_id = \"tower-1\"",
        ),
    )
    .unwrap();
    let seen = dir.join("seen.jsonl.gz");
    let mut watch = recorder(
        &url,
        &["spBv1.0/STATE/#", "spBv1.0/+/NCMD/#"],
        2,
        &seen,
        "watch-ncmd",
    );
    let out = dir.join("out");
    let mut live = Spawned::start(
        ctower()
            .args(["--log", "info", "run", "-w", "1", "-c"])
            .arg(&config)
            .arg("--out")
            .arg(&out)
            // The node's messages, and the host's own STATE and NCMD,
            // which its `spBv1.0/#` subscription hears back (and ignores).
            .args(["--stop-after", &(records + 2).to_string()])
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
            .env("CTOWER__RAW_JOURNAL__DIR", dir.join("raw"))
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
        "ctower run (Sparkplug)",
    );
    live.wait_line(
        "source subscribed source=lyon-gateway",
        Duration::from_secs(30),
    );
    process::run_ok(
        ctower()
            .args(["--log", "warn", "replay"])
            .arg(&recording)
            .args(["--broker", &url, "--speed", "max"]),
        "ctower replay (the node)",
        Duration::from_secs(60),
    );
    live.wait_success(Duration::from_secs(60));
    watch.wait_success(Duration::from_secs(30));

    // On the wire: STATE online, then one NCMD Node Control/Rebirth.
    let seen: Vec<ReplayRecord> = ReplayReader::open(&seen)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(seen[0].topic, "spBv1.0/STATE/tower-1");
    let state: Value = serde_json::from_slice(&seen[0].payload).unwrap();
    assert_eq!(state["online"], true, "{state}");
    assert_eq!(seen[1].topic, "spBv1.0/lyon/NCMD/line-1");
    let ncmd = decode_payload(&seen[1].payload).unwrap();
    assert_eq!(ncmd.metrics.len(), 1);
    assert_eq!(
        ncmd.metrics[0].name.as_deref(),
        Some("Node Control/Rebirth")
    );

    // Exactly one request, however many messages came after the gap.
    let output = live.output();
    let asked: Vec<&String> = output
        .iter()
        .filter(|l| l.contains("Sparkplug rebirth requested"))
        .collect();
    assert_eq!(asked.len(), 1, "{asked:#?}");
    assert!(asked[0].contains("9 message(s) dropped"), "{}", asked[0]);
    let summary = read_summary(&out);
    assert_eq!(
        summary["dead_letters"]["not_in_birth"].as_u64(),
        Some(7),
        "{summary}"
    );

    // Stopped: the retained STATE says offline, with the online timestamp.
    let after = dir.join("after.jsonl.gz");
    recorder(&url, &["spBv1.0/STATE/#"], 1, &after, "watch-state")
        .wait_success(Duration::from_secs(30));
    let last = ReplayReader::open(&after).unwrap().next().unwrap().unwrap();
    let offline: Value = serde_json::from_slice(&last.payload).unwrap();
    assert_eq!(offline["online"], false, "{offline}");
    assert_eq!(offline["timestamp"], state["timestamp"]);
}
