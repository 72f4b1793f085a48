//! A flood of new assets (issue #8 item 10): 20,000 new assets published in
//! one second took the tower from 11 MB to 1.3 GB, and every asset ever seen
//! emitted a record at every window forever. Now a source may name at most
//! `sources[].max_assets` assets at once (the excess are `too_many_assets`
//! dead letters, the plant's own assets go on), and an asset silent for
//! `pipeline.asset_retire_after_secs` is retired: no record of its own any
//! more, counted at its line. Through the real binary (batch mode).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{read_jsonl, read_summary, root, scratch};
use ctower_model::{ReplayRecord, ReplayWriter};
use ctower_testkit::process;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const MIN: i64 = 60_000;
const T0: i64 = 1_772_427_600_000; // 2026-03-02T05:00:00Z
const FLOOD_AT: i64 = T0 + 5 * MIN;
const FLOOD: usize = 2_000;
const MAX_ASSETS: usize = 100;
/// The plant's own assets.
const PLANT: [&str; 3] = ["filler", "capper", "labeller"];

fn write_recording(path: &Path) {
    let mut w = ReplayWriter::create(path).expect("recording");
    let mut t = T0;
    while t < T0 + 60 * MIN {
        for asset in PLANT {
            w.write(&ReplayRecord {
                t_ms: t + 50,
                topic: format!("acme/lyon-fill/aseptic/fill-1/{asset}/temperature_c"),
                qos: 1,
                retain: false,
                payload: format!(r#"{{"ts":{t},"value":21.5}}"#).into_bytes(),
            })
            .expect("write");
        }
        if t == FLOOD_AT {
            // 2,000 assets nobody has heard of, received within one second.
            for i in 0..FLOOD {
                let ts = t;
                w.write(&ReplayRecord {
                    t_ms: ts + 60 + i as i64 / 2,
                    topic: format!("acme/flood/x/y/m{i}/v"),
                    qos: 1,
                    retain: false,
                    payload: format!(r#"{{"ts":{ts},"value":1}}"#).into_bytes(),
                })
                .expect("write");
            }
        }
        t += 10_000;
    }
    w.finish().expect("finish");
}

#[test]
fn a_flood_of_new_assets_is_capped_and_the_silent_ones_are_retired() {
    let dir = scratch("asset-flood");
    let recording = dir.join("flood.jsonl.gz");
    write_recording(&recording);
    let config = dir.join("flood.toml");
    let text = std::fs::read_to_string(root().join("configs/default.toml")).expect("default.toml");
    let text = text
        .replace(
            "subscriptions = [\"acme/#\"]",
            &format!("subscriptions = [\"acme/#\"]\nmax_assets = {MAX_ASSETS}"),
        )
        .replace(
            "queue_batches = 64",
            "queue_batches = 64\nasset_retire_after_secs = 2100\nasset_forget_after_secs = 2700",
        );
    std::fs::write(&config, text).expect("config");
    let out = dir.join("out");
    process::run_ok(
        Command::new(env!("CARGO_BIN_EXE_ctower"))
            .current_dir(root())
            .args(["--log", "warn", "run", "-c"])
            .arg(&config)
            .arg("--replay")
            .arg(&recording)
            .args(["--speed", "max", "--until-end", "-w", "2", "--out"])
            .arg(&out),
        "ctower batch run with a flood of new assets",
        Duration::from_secs(300),
    );

    // The cap: the plant's three assets, then 97 of the flood; the rest
    // refused, with a reason that says so — and none of the plant's.
    let admitted_flood = MAX_ASSETS - PLANT.len();
    let summary = read_summary(&out);
    assert_eq!(
        summary["dead_letters"]["too_many_assets"].as_u64(),
        Some((FLOOD - admitted_flood) as u64),
        "{summary}"
    );
    let dead = read_jsonl(&out.join("dead-letters.jsonl"));
    assert!(dead.iter().all(|d| d["reason"] == "too_many_assets"
        && d["topic"]
            .as_str()
            .is_some_and(|t| t.starts_with("acme/flood/"))));

    // Asset records per window: the flood's admitted assets until they are
    // retired (35 min after their one message), none after; their line
    // counts them (not reporting) until they are forgotten (45 min).
    let mut flood_assets: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    let mut flood_line: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    let mut plant_assets: BTreeMap<i64, usize> = BTreeMap::new();
    for r in read_jsonl(&out.join("kpis.jsonl")) {
        if r["period"] != "window" || r["revision"] != 0 {
            continue;
        }
        let w = (r["window_start_ms"].as_i64().expect("start") - T0) / MIN;
        match (r["site"].as_str(), r["level"].as_str()) {
            (Some("flood"), Some("asset")) => {
                flood_assets
                    .entry(w)
                    .or_default()
                    .insert(r["asset"].as_str().expect("asset").to_string());
            }
            (Some("flood"), Some("line")) => {
                flood_line.insert(
                    w,
                    (
                        r["assets"].as_u64().expect("assets"),
                        r["assets_reporting"].as_u64().expect("assets_reporting"),
                    ),
                );
            }
            (Some("lyon-fill"), Some("asset")) => *plant_assets.entry(w).or_default() += 1,
            _ => {}
        }
    }
    for w in 0..60 {
        let records = flood_assets.get(&w).map_or(0, BTreeSet::len);
        let line = flood_line.get(&w).copied();
        let expected = match w {
            // Before the flood.
            0..=4 => (0, None),
            // Admitted, then silent but kept (stale) …
            5 => (
                admitted_flood,
                Some((admitted_flood as u64, admitted_flood as u64)),
            ),
            6..=39 => (admitted_flood, Some((admitted_flood as u64, 0))),
            // … retired: counted at the line only …
            40..=49 => (0, Some((admitted_flood as u64, 0))),
            // … forgotten.
            _ => (0, None),
        };
        assert_eq!((records, line), expected, "window {w}");
        assert_eq!(
            plant_assets.get(&w),
            Some(&PLANT.len()),
            "the plant goes on, window {w}"
        );
    }
}
