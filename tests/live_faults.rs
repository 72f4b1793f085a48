//! Live mode under the ordinary faults of a plant's server (issue #8):
//!
//! - a full disk under the journal is loud at once (a log line with the
//!   path, the `ctower.journal` alarm to the hooks, the dashboard's fault),
//!   the other outputs go on, the process exits non-zero when stopped with
//!   lines it could not keep, and the journal has no torn or glued line
//!   after a restart (item 8);
//! - stopping the engine (Ctrl-C) writes no window that had not closed: a
//!   partial window written as complete would overwrite the full one in any
//!   store keyed like it (item 5).
//!
//! Both run the real binary against its embedded broker, fed by
//! `ctower replay` as a plant's gateway would publish.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{read_jsonl, recording, root, run_batch, scratch};
use ctower_testkit::process::{self, Spawned};
use ctower_testkit::wait;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const START: Duration = Duration::from_secs(30);
const RUN: Duration = Duration::from_secs(120);

fn ctower_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ctower")
}

/// `ctower run` (live, headless) on the demo configuration: its embedded
/// broker, journal and dead letters under `dir`.
fn live_args(cmd: &mut Command, dir: &Path, out: Option<&Path>) {
    cmd.current_dir(root())
        .args(["--log", "info,rumqttd=warn", "run", "-w", "2", "-c"])
        .arg("configs/default.toml")
        .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
        .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl"));
    if let Some(out) = out {
        cmd.arg("--out").arg(out);
    }
}

/// The embedded broker's URL, once the source subscribed to it.
fn broker_url(live: &Spawned) -> String {
    let ready = live.wait_line("embedded broker ready", START);
    let url = ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix("url="))
        .expect("broker url in the log")
        .to_string();
    live.wait_line("source subscribed", START);
    url
}

fn replay(url: &str, speed: &str) -> Spawned {
    Spawned::start(
        Command::new(ctower_bin())
            .current_dir(root())
            .args(["--log", "warn", "replay"])
            .arg(recording())
            .args(["--broker", url, "--speed", speed]),
        &format!("ctower replay --speed {speed}"),
    )
}

fn interrupt(live: &Spawned) {
    process::run_ok(
        Command::new("kill").args(["-INT", &live.id().to_string()]),
        "kill -INT ctower",
        Duration::from_secs(10),
    );
}

/// Every line of the journal is whole line protocol (an independent
/// parser, InfluxDB's own), and the file ends with a newline.
fn assert_whole_lines(journal: &Path) -> usize {
    let text = std::fs::read_to_string(journal)
        .unwrap_or_else(|e| panic!("reading {}: {e}", journal.display()));
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends with a torn line",
        journal.display()
    );
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        if let Some(Err(e)) = influxdb_line_protocol::parse_lines(line).next() {
            panic!(
                "{} line {}: not line protocol ({e}): a torn or glued line: {line}",
                journal.display(),
                i + 1
            );
        }
        n += 1;
    }
    n
}

#[test]
fn a_full_journal_disk_is_loud_at_once_exits_non_zero_and_leaves_no_glued_line() {
    let dir = scratch("live-full-disk");
    let journal = dir.join("journal").join("ctower.lp");
    // A disk that fills after 64 KiB: every file the process writes stops
    // growing there (EFBIG after a partial write, as on a full disk). The
    // shell ignores SIGXFSZ so that the write fails instead of killing the
    // process, and `exec`s ctower with both settings.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 128; exec \"$0\" \"$@\"")
        .arg(ctower_bin());
    live_args(&mut cmd, &dir, None);
    let mut live = Spawned::start(&mut cmd, "ctower run (journal on a full disk)");
    let url = broker_url(&live);
    let mut feed = replay(&url, "max");
    // Loud at once: the error names the journal's path…
    let error = live.wait_line("journal write failed", RUN);
    assert!(
        error.contains(&journal.display().to_string()),
        "the error names the path: {error}"
    );
    // …and the alarm reaches the hooks (the demo's log hook) with it.
    let alarm = live.wait_line("ctower.journal", RUN);
    assert!(
        alarm.contains("raised") && alarm.contains("urgent"),
        "{alarm}"
    );
    assert!(
        alarm.contains(&journal.display().to_string()),
        "the alarm says where: {alarm}"
    );
    feed.wait_success(RUN);
    interrupt(&live);
    let status = live.wait_exit(RUN);
    assert!(
        !status.success(),
        "stopped with journal lines it could not write, ctower must exit non-zero ({status})\n{}",
        live.tail()
    );
    let tail = live.tail();
    assert!(
        tail.contains("stopped with failed stages") && tail.contains("journal"),
        "the exit says why:\n{tail}"
    );

    let before = assert_whole_lines(&journal);
    assert!(before > 0, "the journal took lines until the disk was full");

    // Restart on a disk with room: the journal opens (repairing a torn tail
    // if there was one), appends, and no line is glued to another.
    let mut again = Command::new(ctower_bin());
    live_args(&mut again, &dir, None);
    let mut live = Spawned::start(&mut again, "ctower run (restarted)");
    let url = broker_url(&live);
    let mut feed = replay(&url, "max");
    feed.wait_success(RUN);
    // A window committed after the restart.
    wait::until("the restarted journal to grow", RUN, || {
        lines_in(&journal) > before
    });
    interrupt(&live);
    live.wait_exit(RUN);
    let after = assert_whole_lines(&journal);
    assert!(
        after > before,
        "the restarted journal appended ({before} → {after})"
    );
}

fn lines_in(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
}

/// A full disk under the dead-letter file (`/dev/full`: every write fails
/// with ENOSPC) used to stop ingestion after ~150 already-acknowledged
/// messages, with exit code 0. Now the refusals are counted and logged with
/// the path, the valid messages after them go on, and the process exits
/// non-zero saying how many dead letters it could not keep.
#[test]
fn a_full_dead_letter_disk_does_not_stop_ingestion_and_exits_non_zero() {
    let dir = scratch("live-full-dead-letters");
    let recording = dir.join("bad-then-good.jsonl.gz");
    let t0 = 1_772_427_600_000i64;
    let mut w = ctower_model::ReplayWriter::create(&recording).expect("recording");
    let mut n = 0u64;
    let mut put = |w: &mut ctower_model::ReplayWriter<_>, t: i64, topic: &str, payload: String| {
        n += 1;
        w.write(&ctower_model::ReplayRecord {
            t_ms: t,
            topic: topic.to_string(),
            qos: 1,
            retain: false,
            payload: payload.into_bytes(),
        })
        .expect("write");
    };
    let topic = "acme/lyon-fill/aseptic/fill-1/filler/temperature_c";
    // 300 malformed messages, then ten minutes of valid ones.
    for i in 0..300 {
        put(&mut w, t0 + i, topic, format!("{{not json {i}"));
    }
    for k in 0..60 {
        let t = t0 + k * 10_000;
        put(
            &mut w,
            t + 500,
            topic,
            format!(r#"{{"ts":{t},"value":21.5}}"#),
        );
    }
    w.finish().expect("finish");
    let out = dir.join("out");
    let mut cmd = Command::new(ctower_bin());
    cmd.current_dir(root())
        .args(["--log", "info,rumqttd=warn", "run", "-w", "2", "-c"])
        .arg("configs/default.toml")
        .arg("--out")
        .arg(&out)
        .args(["--stop-after", &n.to_string()])
        .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
        .env("CTOWER__DEAD_LETTERS__PATH", "/dev/full");
    let mut live = Spawned::start(&mut cmd, "ctower run (dead letters on a full disk)");
    let url = broker_url(&live);
    let _feed = Spawned::start(
        Command::new(ctower_bin())
            .current_dir(root())
            .args(["--log", "warn", "replay"])
            .arg(&recording)
            .args(["--broker", &url, "--speed", "max"]),
        "ctower replay",
    );
    let failed = live.wait_line("/dev/full", RUN);
    assert!(
        failed.contains("ERROR"),
        "logged as an error, with the path: {failed}"
    );
    let status = live.wait_exit(RUN);
    assert!(
        !status.success(),
        "dead letters lost: exit non-zero ({status})"
    );
    let tail = live.tail();
    assert!(
        tail.contains("300 dead letter(s) could not be written to /dev/full"),
        "{tail}"
    );
    // Every message was taken in and counted; the valid ones made KPIs.
    let summary = common::read_summary(&out);
    assert_eq!(summary["messages"].as_u64(), Some(n), "{summary}");
    assert_eq!(
        summary["dead_letters"]["malformed_json"].as_u64(),
        Some(300)
    );
    assert_eq!(summary["accepted"].as_u64(), Some(60));
    let windows = read_jsonl(&out.join("kpis.jsonl"))
        .iter()
        .filter(|r| r["level"] == "asset" && r["messages"].as_u64() > Some(0))
        .count();
    assert!(
        windows >= 9,
        "the valid messages after the failures made KPIs ({windows})"
    );
}

/// A journal that cannot even be opened (here a directory that cannot be
/// created) stops the engine at once, naming the path, with a non-zero
/// exit: the engine must not run on writing nothing.
#[test]
fn a_journal_that_cannot_be_opened_stops_the_engine_at_once() {
    let dir = scratch("live-journal-unopenable");
    let blocker = dir.join("not-a-dir");
    std::fs::write(&blocker, "a file where the journal's directory should be").expect("file");
    let journal_dir = blocker.join("journal");
    let mut cmd = Command::new(ctower_bin());
    cmd.current_dir(root())
        .args([
            "--log",
            "info,rumqttd=warn",
            "run",
            "-c",
            "configs/default.toml",
        ])
        .env("CTOWER__JOURNAL__DIR", &journal_dir)
        .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl"));
    let mut live = Spawned::start(&mut cmd, "ctower run (journal cannot be opened)");
    let status = live.wait_exit(RUN);
    assert!(!status.success(), "{status}");
    let tail = live.tail();
    assert!(
        tail.contains("output stage failed") && tail.contains(&journal_dir.display().to_string()),
        "{tail}"
    );
}

/// (window start, scope, period) → the record.
fn records_by_key(path: &Path) -> BTreeMap<(i64, String, String), Value> {
    read_jsonl(path)
        .into_iter()
        .filter(|r| r["revision"] == 0)
        .map(|r| {
            let scope = [&r["level"], &r["site"], &r["area"], &r["line"], &r["asset"]]
                .iter()
                .map(|v| v.as_str().unwrap_or("-").to_string())
                .collect::<Vec<_>>()
                .join("/");
            let key = (
                r["window_start_ms"].as_i64().expect("window_start_ms"),
                scope,
                r["period"].as_str().unwrap_or("?").to_string(),
            );
            (key, r)
        })
        .collect()
}

#[test]
fn stopping_the_engine_writes_no_window_that_had_not_closed() {
    // What the windows hold once all their data is in.
    let reference = scratch("live-stop-batch");
    run_batch(&recording(), &reference, 2);
    let complete = records_by_key(&reference.join("kpis.jsonl"));

    // Live, the recording at 60x (two hours in two minutes): stopped while
    // data is still coming, with windows open and part-filled.
    let dir = scratch("live-stop");
    let out = dir.join("out");
    let mut cmd = Command::new(ctower_bin());
    live_args(&mut cmd, &dir, Some(&out));
    let mut live = Spawned::start(&mut cmd, "ctower run (stopped mid-stream)");
    let url = broker_url(&live);
    let _feed = replay(&url, "60");
    // Several windows have closed (the journal commits each), later ones
    // are open and part-filled.
    let journal = dir.join("journal").join("ctower.lp");
    wait::until("a few windows in the journal", RUN, || {
        lines_in(&journal) > 1_000
    });
    interrupt(&live);
    let status = live.wait_exit(RUN);
    assert!(status.success(), "a clean stop ({status})\n{}", live.tail());

    let written = records_by_key(&out.join("kpis.jsonl"));
    assert!(
        !written.is_empty(),
        "windows closed before the stop are written"
    );
    let mut windows_written = 0;
    for (key, rec) in &written {
        assert_eq!(
            rec["complete"],
            Value::Bool(true),
            "no incomplete record at a stop: {key:?}"
        );
        let Some(full) = complete.get(key) else {
            panic!("{key:?} written live but not in the batch output");
        };
        // A window written at the stop with part of its data would differ
        // from the same window with all of it.
        assert_eq!(
            rec, full,
            "{key:?}: written live differs from the complete window (a partial window written at the stop?)"
        );
        windows_written += usize::from(key.2 == "window");
    }
    let windows_total = complete.keys().filter(|k| k.2 == "window").count();
    assert!(
        windows_written < windows_total,
        "stopped mid-stream, yet every window was written ({windows_written} of {windows_total})"
    );
}
