//! KPIs to a real server speaking InfluxDB's v2 write API (issue #11):
//! VictoriaMetrics, started by the test, written by `ctower run` through
//! its outbox, read back through VictoriaMetrics' export API and compared
//! with the journal (the record of what was computed), parsed by InfluxDB
//! IOx's line-protocol parser: every point present with its value and
//! timestamp, no extra series, each line stored once — across a 60 s
//! outage of the server, and across a `kill -9` with a full outbox.
//!
//! VictoriaMetrics keeps a point written twice as two samples (InfluxDB
//! overwrites it), so "stored once" is checked exactly: one sample per
//! journal line with that series and timestamp.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{default_config_with_sources, recording, root, scratch};
use ctower_testkit::process::{self, Spawned};
use ctower_testkit::services::{self, MOSQUITTO};
use ctower_testkit::{wait, Mosquitto, VictoriaMetrics, VICTORIA_METRICS};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const START: Duration = Duration::from_secs(60);
const RUN: Duration = Duration::from_secs(400);

fn ctower() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctower"));
    c.current_dir(root());
    c
}

/// `configs/default.toml` with one source on `broker_url` and `[influx]`
/// writing to `influx_url`, its outbox and dead letters in `dir`.
fn config(dir: &Path, broker_url: &str, influx_url: &str, raw_journal: bool) -> PathBuf {
    let path = journal_only_config(dir, broker_url, raw_journal);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n[influx]\nurl = \"{influx_url}\"\norg = \"acme\"\nbucket = \"ctower\"\n\
         outbox_dir = \"{}\"\ndead_letter_path = \"{}\"\nflush_interval_ms = 200\n\
         timeout_secs = 5\nretry_max_secs = 2\n",
        dir.join("outbox").display(),
        dir.join("influx-dead.jsonl").display()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

/// [`config`] without `[influx]`: the journal is the only store.
fn journal_only_config(dir: &Path, broker_url: &str, raw_journal: bool) -> PathBuf {
    let sources = format!(
        "[[sources]]\nname = \"plant\"\nbroker_url = \"{broker_url}\"\nclient_id = \"ctower-influx\"\n\
         subscriptions = [\"acme/#\"]\n"
    );
    let path = default_config_with_sources(&dir.join("influx.toml"), &sources);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[raw_journal]\nenabled = false",
        &format!("[raw_journal]\nenabled = {raw_journal}"),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A series as VictoriaMetrics names it: `measurement_field` and the tags.
type Key = (String, BTreeMap<String, String>);

/// Per series and timestamp (ms): the values written (`None`: a string
/// field, which VictoriaMetrics does not keep as a value).
type Points = BTreeMap<Key, BTreeMap<i64, Vec<Option<f64>>>>;

/// The points of the journal's lines, parsed by InfluxDB IOx's parser.
fn journal_points(journal: &Path) -> Points {
    use influxdb_line_protocol::{parse_lines, FieldValue};
    let text = std::fs::read_to_string(journal).unwrap();
    let mut points = Points::new();
    for line in parse_lines(&text) {
        let line = line.expect("the journal parses");
        let tags: BTreeMap<String, String> = line
            .series
            .tag_set
            .iter()
            .flatten()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ts_ms = line.timestamp.expect("a timestamp") / 1_000_000;
        for (field, value) in &line.field_set {
            let v = match value {
                FieldValue::F64(v) => Some(*v),
                FieldValue::I64(v) => Some(*v as f64),
                FieldValue::U64(v) => Some(*v as f64),
                FieldValue::Boolean(b) => Some(f64::from(u8::from(*b))),
                FieldValue::String(_) => None,
            };
            let name = format!("{}_{field}", line.series.measurement);
            points
                .entry((name, tags.clone()))
                .or_default()
                .entry(ts_ms)
                .or_default()
                .push(v);
        }
    }
    points
}

/// Everything VictoriaMetrics holds, in the same shape.
fn stored_points(vm: &VictoriaMetrics) -> BTreeMap<Key, BTreeMap<i64, Vec<f64>>> {
    let mut points: BTreeMap<Key, BTreeMap<i64, Vec<f64>>> = BTreeMap::new();
    for s in vm.export(".+") {
        let mut labels = s.labels.clone();
        let name = labels.remove("__name__").unwrap();
        let series = points.entry((name, labels)).or_default();
        for (v, t) in s.values.iter().zip(&s.timestamps) {
            series.entry(*t).or_default().push(*v);
        }
    }
    points
}

/// Every journal point is stored once with its value, and nothing else is.
fn assert_stored_once(vm: &VictoriaMetrics, journal: &Path) {
    let expected = journal_points(journal);
    let stored = stored_points(vm);
    let missing: Vec<&Key> = expected
        .keys()
        .filter(|k| !stored.contains_key(*k))
        .collect();
    let extra: Vec<&Key> = stored
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "{} series missing, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert!(
        extra.is_empty(),
        "{} extra series, e.g. {:?}",
        extra.len(),
        extra.first()
    );
    let mut points = 0;
    for (key, by_ts) in &expected {
        let got = &stored[key];
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            by_ts.keys().collect::<Vec<_>>(),
            "timestamps of {key:?}"
        );
        for (ts, want) in by_ts {
            let have = &got[ts];
            assert_eq!(
                have.len(),
                want.len(),
                "samples of {key:?} at {ts}: {have:?} for {want:?}"
            );
            let mut want: Vec<f64> = want.iter().flatten().copied().collect();
            if want.is_empty() {
                continue; // a string field
            }
            let mut have = have.clone();
            want.sort_by(f64::total_cmp);
            have.sort_by(f64::total_cmp);
            for (h, w) in have.iter().zip(&want) {
                assert!(
                    (h - w).abs() <= 1e-9 * w.abs().max(1.0),
                    "{key:?} at {ts}: {h} for {w}"
                );
            }
            points += want.len();
        }
    }
    eprintln!(
        "{} series, {points} numeric points stored once with their values",
        expected.len()
    );
    assert!(points > 10_000, "{points} points");
}

/// A live run through Mosquitto while VictoriaMetrics stops for 60 s in
/// the middle of the replay: afterwards it holds every point of the
/// journal once.
#[test]
fn an_outage_of_the_server_loses_and_duplicates_nothing() {
    let Some(mosquitto) = services::require(&MOSQUITTO) else {
        return;
    };
    let Some(vm_bin) = services::require(&VICTORIA_METRICS) else {
        return;
    };
    let broker = Mosquitto::start(&mosquitto);
    let mut vm = VictoriaMetrics::start(&vm_bin, &[]);
    let dir = scratch("influx-outage");
    let config = config(&dir, &broker.url(), &vm.url(), false);
    let total = ctower_model::ReplayReader::open(&recording())
        .unwrap()
        .count() as u64;
    let mut live = Spawned::start(
        ctower()
            .args(["--log", "info", "run", "-w", "2", "-c"])
            .arg(&config)
            .args(["--stop-after", &total.to_string()])
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
        "ctower run (InfluxDB outage)",
    );
    live.wait_line("source subscribed source=plant", START);
    // About 100 s for the 2 hours: the outage falls in the middle.
    let mut publisher = Spawned::start(
        ctower()
            .args(["--log", "warn", "replay"])
            .arg(recording())
            .args(["--broker", &broker.url(), "--speed", "72"]),
        "ctower replay (the plant)",
    );
    // Some points are in, then the server goes away for 60 s.
    wait::until("points in VictoriaMetrics", RUN, || {
        !vm.export("kpi_.+").is_empty()
    });
    vm.stop();
    live.wait_line("InfluxDB write failed; retrying", RUN);
    std::thread::sleep(Duration::from_secs(60));
    vm.start_again();
    publisher.wait_success(RUN);
    live.wait_line("InfluxDB takes writes again", RUN);
    live.wait_success(RUN);
    assert_stored_once(&vm, &dir.join("journal/ctower.lp"));
}

/// `kill -9` while the outbox holds lines the server has not taken (it is
/// down), then a restart with the server up: the outbox drains, nothing is
/// lost, nothing is stored twice.
#[test]
fn a_killed_tower_drains_its_outbox_after_a_restart() {
    let Some(mosquitto) = services::require(&MOSQUITTO) else {
        return;
    };
    let Some(vm_bin) = services::require(&VICTORIA_METRICS) else {
        return;
    };
    let broker = Mosquitto::start(&mosquitto);
    let mut vm = VictoriaMetrics::start(&vm_bin, &[]);
    let url = vm.url();
    vm.stop();
    let dir = scratch("influx-kill");
    let config = config(&dir, &broker.url(), &url, false);
    // The whole recording computed, the server down: every line waits in
    // the outbox when ctower, stopping, waits for the server to take them.
    let total = ctower_model::ReplayReader::open(&recording())
        .unwrap()
        .count() as u64;
    let live = Spawned::start(
        ctower()
            .args(["--log", "info", "run", "-w", "2", "-c"])
            .arg(&config)
            .args(["--stop-after", &total.to_string()])
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
        "ctower run (server down)",
    );
    live.wait_line("source subscribed source=plant", START);
    process::run_ok(
        ctower()
            .args(["--log", "warn", "replay"])
            .arg(recording())
            .args(["--broker", &broker.url(), "--speed", "max"]),
        "ctower replay (the plant)",
        RUN,
    );
    live.wait_line("InfluxDB write failed; retrying", RUN);
    live.wait_line("waiting for InfluxDB to take the outbox", RUN);
    let pid = live.id().to_string();
    process::run_ok(
        Command::new("kill").args(["-9", &pid]),
        "kill -9 ctower",
        Duration::from_secs(10),
    );
    let mut live = live;
    assert!(!live.wait_exit(Duration::from_secs(10)).success());
    let journal = dir.join("journal/ctower.lp");
    let outbox_bytes: u64 = std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("outbox-"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        outbox_bytes > 100_000,
        "the outbox holds {outbox_bytes} bytes"
    );
    eprintln!("killed with {outbox_bytes} bytes in the outbox");

    vm.start_again();
    let mut again = Spawned::start(
        ctower()
            .args(["--log", "info", "run", "-w", "2", "-c"])
            .arg(&config)
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
        "ctower run (restarted)",
    );
    let pending = again.wait_line("lines from before the restart are sent again", START);
    eprintln!("{pending}");
    again.wait_line("InfluxDB outbox: backlog sent", RUN);
    let pid = again.id().to_string();
    process::run_ok(
        Command::new("kill").args(["-TERM", &pid]),
        "stop ctower",
        Duration::from_secs(10),
    );
    again.wait_exit(RUN);
    assert_stored_once(&vm, &journal);
}

/// Late data makes corrections (a higher `revision` of a window already
/// written): written to the same series and timestamp, so the store keeps
/// one value per series and timestamp. VictoriaMetrics with deduplication
/// on (`-dedup.minScrapeInterval`) keeps one sample per timestamp, but not
/// necessarily the last written (1.79 was seen keeping revision 0 over 1;
/// InfluxDB keeps the last): so here each series and timestamp holds one
/// of the values written for it, and the corrections are counted.
#[test]
fn corrections_overwrite_one_value_per_series_and_timestamp() {
    let Some(mosquitto) = services::require(&MOSQUITTO) else {
        return;
    };
    let Some(vm_bin) = services::require(&VICTORIA_METRICS) else {
        return;
    };
    let dir = scratch("influx-corrections");
    let late = dir.join("late.jsonl.gz");
    process::run_ok(
        ctower()
            .args(["--log", "warn", "simulate", "--hours", "1", "--plants", "2"])
            .args(["--very-late-per-hour", "20", "--output"])
            .arg(&late),
        "ctower simulate (late data)",
        RUN,
    );
    let broker = Mosquitto::start(&mosquitto);
    let vm = VictoriaMetrics::start(&vm_bin, &["-dedup.minScrapeInterval=1ms"]);
    let config = config(&dir, &broker.url(), &vm.url(), false);
    let total = ctower_model::ReplayReader::open(&late).unwrap().count() as u64;
    let mut live = Spawned::start(
        ctower()
            .args(["--log", "info", "run", "-w", "2", "-c"])
            .arg(&config)
            .args(["--stop-after", &total.to_string()])
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
        "ctower run (late data)",
    );
    live.wait_line("source subscribed source=plant", START);
    process::run_ok(
        ctower().args(["--log", "warn", "replay"]).arg(&late).args([
            "--broker",
            &broker.url(),
            "--speed",
            "max",
        ]),
        "ctower replay (late data)",
        RUN,
    );
    live.wait_line("InfluxDB output drained", RUN);
    live.wait_success(RUN);

    let expected = journal_points(&dir.join("journal/ctower.lp"));
    let stored = stored_points(&vm);
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the same series"
    );
    let mut corrected = 0;
    for (key, by_ts) in &expected {
        for (ts, written) in by_ts {
            let have = &stored[key][ts];
            assert_eq!(have.len(), 1, "one value for {key:?} at {ts}: {have:?}");
            if written.len() > 1 && key.0 == "kpi_revision" {
                corrected += 1;
            }
            let values: Vec<f64> = written.iter().flatten().copied().collect();
            if !values.is_empty() {
                assert!(
                    values
                        .iter()
                        .any(|v| (v - have[0]).abs() <= 1e-9 * v.abs().max(1.0)),
                    "{key:?} at {ts}: {have:?} is none of {values:?}"
                );
            }
        }
    }
    eprintln!("{corrected} corrected KPI records, one value each");
    assert!(corrected > 0, "the late data corrected no window");
}

/// A journal written without InfluxDB, loaded later with `ctower export
/// --to-influx`: every point of the period once; outside it, none.
#[test]
fn export_loads_a_journal_period_into_the_server() {
    let Some(mosquitto) = services::require(&MOSQUITTO) else {
        return;
    };
    let Some(vm_bin) = services::require(&VICTORIA_METRICS) else {
        return;
    };
    let broker = Mosquitto::start(&mosquitto);
    let dir = scratch("influx-export");
    let plain = journal_only_config(&dir, &broker.url(), false);
    let total = ctower_model::ReplayReader::open(&recording())
        .unwrap()
        .count() as u64;
    let mut live = Spawned::start(
        ctower()
            .args(["--log", "info", "run", "-w", "2", "-c"])
            .arg(&plain)
            .args(["--stop-after", &total.to_string()])
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
        "ctower run (journal only)",
    );
    live.wait_line("source subscribed source=plant", START);
    process::run_ok(
        ctower()
            .args(["--log", "warn", "replay"])
            .arg(recording())
            .args(["--broker", &broker.url(), "--speed", "max"]),
        "ctower replay (the plant)",
        RUN,
    );
    live.wait_success(RUN);
    assert!(
        !dir.join("outbox").exists(),
        "no InfluxDB output without [influx]"
    );

    let vm = VictoriaMetrics::start(&vm_bin, &[]);
    let with_influx = config(&dir, &broker.url(), &vm.url(), false);
    let journal = dir.join("journal/ctower.lp");
    // The first hour (05:00 to 06:00 of the recording's day).
    let exported = process::run_ok(
        ctower()
            .args(["--log", "info", "export", "--to-influx", "-c"])
            .arg(&with_influx)
            .args([
                "--from",
                "2026-03-02T05:00:00Z",
                "--to",
                "2026-03-02T06:00:00Z",
            ])
            .env("CTOWER__JOURNAL__DIR", dir.join("journal")),
        "ctower export",
        RUN,
    );
    let log = String::from_utf8_lossy(&exported.stderr).to_string()
        + &String::from_utf8_lossy(&exported.stdout);
    assert!(log.contains("export done"), "{log}");
    let period = dir.join("first-hour.lp");
    let (from, to) = (1_772_427_600_000_000_000i64, 1_772_431_200_000_000_000i64);
    let lines: Vec<&str> = std::fs::read_to_string(&journal)
        .unwrap()
        .leak()
        .lines()
        .filter(|l| {
            let t: i64 = l.rsplit(' ').next().unwrap().parse().unwrap();
            t >= from && t < to
        })
        .collect();
    assert!(lines.len() > 1000, "{} lines in the hour", lines.len());
    std::fs::write(&period, lines.join("\n") + "\n").unwrap();
    assert_stored_once(&vm, &period);
}
