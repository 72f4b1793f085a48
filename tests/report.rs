//! `ctower report` (issue #11): figures from the journal of a live run,
//! checked against a recomputation from the journal's lines here (parsed
//! by InfluxDB IOx's parser); the CSV read by Python's `csv` module, the
//! HTML parsed as XML by Python's `xml.etree` and its charts' values
//! compared with the table's; the table within 80 columns.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{default_config_with_sources, recording, root, scratch};
use ctower_testkit::process::{self, Spawned};
use ctower_testkit::services::{self, MOSQUITTO};
use ctower_testkit::Mosquitto;
use influxdb_line_protocol::{parse_lines, FieldValue};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const RUN: Duration = Duration::from_secs(300);
const FROM: &str = "2026-03-02T05:00:00Z";
const TO: &str = "2026-03-03T05:00:00Z";

fn ctower() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctower"));
    c.current_dir(root());
    c
}

/// A journal of the recording, written by a live run through Mosquitto.
fn journal(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = services::require(&MOSQUITTO).expect("mosquitto");
    let broker = Mosquitto::start(&bin);
    let sources = format!(
        "[[sources]]\nname = \"plant\"\nbroker_url = \"{}\"\nsubscriptions = [\"acme/#\"]\n",
        broker.url()
    );
    let config = default_config_with_sources(&dir.join("report.toml"), &sources);
    let total = ctower_model::ReplayReader::open(&recording())
        .unwrap()
        .count() as u64;
    let journal = dir.join("journal");
    let mut live = Spawned::start(
        ctower()
            .args(["--log", "info", "run", "-w", "2", "-c"])
            .arg(&config)
            .args(["--stop-after", &total.to_string()])
            .env("CTOWER__JOURNAL__DIR", &journal)
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
        "ctower run",
    );
    live.wait_line("source subscribed source=plant", Duration::from_secs(60));
    process::run_ok(
        ctower()
            .args(["--log", "warn", "replay"])
            .arg(recording())
            .args(["--broker", &broker.url(), "--speed", "max"]),
        "ctower replay",
        RUN,
    );
    live.wait_success(RUN);
    (config, journal)
}

fn report(config: &Path, journal: &Path, args: &[&str]) -> String {
    let out = process::run_ok(
        ctower()
            .args(["--log", "warn", "report"])
            .args(args)
            .args(["--site", "lyon-fill", "--from", FROM, "--to", TO, "-c"])
            .arg(config)
            .env("CTOWER__JOURNAL__DIR", journal),
        "ctower report",
        RUN,
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The journal's KPI lines of lyon-fill: (level, period, area/line) →
/// start → fields, the latest revision of each.
type Records = BTreeMap<(String, String, String), BTreeMap<i64, BTreeMap<String, f64>>>;

fn records(journal: &Path) -> Records {
    let text = std::fs::read_to_string(journal.join("ctower.lp")).unwrap();
    let mut out = Records::new();
    let mut revisions: BTreeMap<(String, String, String, i64), i64> = BTreeMap::new();
    for line in parse_lines(&text) {
        let line = line.unwrap();
        if line.series.measurement.as_str() != "kpi" {
            continue;
        }
        let tags: BTreeMap<String, String> = line
            .series
            .tag_set
            .iter()
            .flatten()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if tags.get("site").map(String::as_str) != Some("lyon-fill") {
            continue;
        }
        let mut fields = BTreeMap::new();
        for (k, v) in &line.field_set {
            let v = match v {
                FieldValue::F64(f) => *f,
                FieldValue::I64(i) => *i as f64,
                FieldValue::U64(u) => *u as f64,
                FieldValue::Boolean(b) => f64::from(u8::from(*b)),
                FieldValue::String(_) => continue,
            };
            fields.insert(k.to_string(), v);
        }
        let start = fields["period_start_ms"] as i64;
        let key = (
            tags["level"].clone(),
            tags["period"].clone(),
            format!(
                "{}/{}",
                tags.get("area").cloned().unwrap_or_default(),
                tags.get("line").cloned().unwrap_or_default()
            ),
        );
        let rev = fields["revision"] as i64;
        let k4 = (key.0.clone(), key.1.clone(), key.2.clone(), start);
        if revisions.get(&k4).is_some_and(|r| *r > rev) {
            continue;
        }
        revisions.insert(k4, rev);
        out.entry(key).or_default().insert(start, fields);
    }
    out
}

/// CSV rows read by Python's csv module (as JSON: a list of dicts).
fn python_csv(csv: &str) -> Vec<BTreeMap<String, String>> {
    let file = std::env::temp_dir().join(format!("ctower-report-{}.csv", std::process::id()));
    std::fs::write(&file, csv).unwrap();
    let out = process::run_ok(
        Command::new("python3").args([
            "-c",
            "import csv, json, sys; print(json.dumps(list(csv.DictReader(open(sys.argv[1], newline='')))))",
            file.to_str().unwrap(),
        ]),
        "python3 csv",
        RUN,
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn reports_equal_a_recomputation_from_the_journal() {
    if services::require(&MOSQUITTO).is_none() {
        return;
    }
    let dir = scratch("report");
    let (config, journal) = journal(&dir);
    let recs = records(&journal);

    // By window, as CSV: each row is the site's window record.
    let csv = report(
        &config,
        &journal,
        &["energy", "--by", "window", "--format", "csv"],
    );
    let rows = python_csv(&csv);
    let windows = &recs[&("site".into(), "window".into(), "/".into())];
    assert_eq!(
        rows.len(),
        windows.len() + 1,
        "a row per window and the total"
    );
    for (row, (start, fields)) in rows.iter().zip(windows) {
        assert_eq!(
            ctower_model::time::parse_rfc3339_ms(&row["start"]),
            Some(*start),
            "{row:?}"
        );
        for key in [
            "energy_kwh",
            "peak_demand_kw",
            "kwh_per_good_unit",
            "energy_cost",
            "co2e_kg",
        ] {
            match (row[key].as_str(), fields.get(key)) {
                ("", None) => {}
                (v, Some(f)) => assert!(
                    close(v.parse().unwrap(), *f),
                    "{key} at {start}: {v} for {f}"
                ),
                (v, None) => panic!("{key} at {start}: {v} where the journal has none"),
            }
        }
    }
    // The total: the windows' sums.
    let total = rows.last().unwrap();
    assert_eq!(total["window"], "total");
    let kwh: f64 = windows.values().filter_map(|f| f.get("energy_kwh")).sum();
    assert!(
        close(total["energy_kwh"].parse().unwrap(), kwh),
        "{total:?} vs {kwh}"
    );

    // By line, water: sums of the line's windows, recovery = Σ permeate / Σ feed.
    let rows = python_csv(&report(
        &config,
        &journal,
        &["water", "--by", "line", "--format", "csv"],
    ));
    let mut checked = 0;
    for row in rows.iter().filter(|r| r["line"] != "total") {
        let ws = &recs[&("line".into(), "window".into(), row["line"].clone())];
        let feed: f64 = ws.values().filter_map(|f| f.get("water_feed_m3")).sum();
        let perm: f64 = ws.values().filter_map(|f| f.get("water_permeate_m3")).sum();
        if feed > 0.0 {
            assert!(
                close(row["water_feed_m3"].parse().unwrap(), feed),
                "{row:?}"
            );
            assert!(
                close(row["water_recovery"].parse().unwrap(), perm / feed),
                "{row:?}"
            );
            checked += 1;
        } else {
            assert_eq!(row["water_recovery"], "", "unknown, not 0: {row:?}");
        }
    }
    assert!(checked > 0, "no line with water data");

    // By shift, OEE as JSON: the site's shift records.
    let json: Value = serde_json::from_str(&report(
        &config,
        &journal,
        &["oee", "--by", "shift", "--format", "json"],
    ))
    .unwrap();
    let shifts = &recs[&("site".into(), "shift".into(), "/".into())];
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), shifts.len());
    for (row, fields) in rows.iter().zip(shifts.values()) {
        for key in [
            "availability",
            "performance",
            "quality",
            "oee",
            "teep",
            "loss_speed_ms",
        ] {
            assert!(
                close(row[key].as_f64().unwrap(), fields[key]),
                "{key}: {row}"
            );
        }
    }

    // The table fits 80 columns.
    for kind in ["energy", "water", "oee"] {
        for by in ["window", "shift", "line"] {
            let t = report(&config, &journal, &[kind, "--by", by]);
            for l in t.lines() {
                assert!(
                    l.chars().count() <= 80,
                    "{kind} by {by}: {} columns: {l}",
                    l.chars().count()
                );
            }
        }
    }

    // The HTML: well-formed XML, one file, its chart values the table's.
    let html_file = dir.join("energy.html");
    report(
        &config,
        &journal,
        &[
            "energy",
            "--by",
            "window",
            "--format",
            "html",
            "-o",
            html_file.to_str().unwrap(),
        ],
    );
    let out = process::run_ok(
        Command::new("python3").args([
            "-c",
            r#"
import json, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
svg = '{http://www.w3.org/2000/svg}'
points = [(e.get('data-series'), e.get('data-label'), float(e.get('data-value')))
          for e in root.iter() if e.get('data-series')]
hrefs = [e.get('href') or e.get('src') for e in root.iter() if e.get('href') or e.get('src')]
print(json.dumps({'points': points, 'external': hrefs, 'svgs': len(list(root.iter(svg + 'svg')))}))
"#,
            html_file.to_str().unwrap(),
        ]),
        "python3 xml.etree",
        RUN,
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        parsed["external"].as_array().unwrap().len(),
        0,
        "self-contained"
    );
    assert!(parsed["svgs"].as_u64().unwrap() >= 2, "{parsed}");
    let csv_rows = python_csv(&csv);
    let mut matched = 0;
    for p in parsed["points"].as_array().unwrap() {
        let (series, value) = (p[0].as_str().unwrap(), p[2].as_f64().unwrap());
        if series != "kwh_per_good_unit" {
            continue;
        }
        let label = p[1].as_str().unwrap();
        let row = csv_rows.iter().find(|r| r["window"] == label).expect(label);
        assert!(
            close(row[series].parse().unwrap(), value),
            "{label}: {value}"
        );
        matched += 1;
    }
    let known = csv_rows
        .iter()
        .filter(|r| r["window"] != "total" && !r["kwh_per_good_unit"].is_empty())
        .count();
    assert_eq!(matched, known, "every known value is a point of the chart");
}
