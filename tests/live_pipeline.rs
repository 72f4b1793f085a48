//! The real path, end to end: the committed recording is published to a
//! broker (`ctower replay --speed max`, QoS 1), a headless `ctower run`
//! collects it through rumqttc and computes the KPIs, and its output must
//! be the batch mode's over the same file: nothing lost, nothing
//! reordered, same KPIs and alarms (byte-identical), the same messages
//! refused for the same reasons in the same order, the same counts. Once
//! through the embedded broker, once through a real Mosquitto.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{
    assert_same_files, dead_letter_total, read_jsonl, read_summary, recording, root, run_batch,
    scratch,
};
use ctower_testkit::process::{self, Spawned};
use ctower_testkit::services::{self, MOSQUITTO};
use ctower_testkit::Mosquitto;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Until the live run's broker and subscription are up (about a second).
const START: Duration = Duration::from_secs(30);
/// For publishing the whole recording, and for the live run to take it in
/// and stop (each about a second; the margin is for a loaded CI machine).
const RUN: Duration = Duration::from_secs(120);

fn ctower() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctower"));
    c.current_dir(root());
    c
}

fn messages_in_recording() -> u64 {
    ctower_model::ReplayReader::open(&recording())
        .expect("recording")
        .count() as u64
}

use ctower_model::wall_ms;

/// The batch mode's output over the recording, computed once for both tests.
fn batch_reference() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("live-batch-reference");
        run_batch(&recording(), &dir, 2);
        dir
    })
}

/// A headless live `ctower run` writing its outputs under a scratch
/// directory (kept after a failure, for a look).
struct Live {
    process: Spawned,
    dir: PathBuf,
    started_ms: i64,
}

impl Live {
    fn start(name: &str, config: &Path, stop_after: u64) -> Live {
        let dir = scratch(name);
        let started_ms = wall_ms();
        let process = Spawned::start(
            ctower()
                .args(["--log", "info,rumqttd=warn", "run", "-w", "2", "-c"])
                .arg(config)
                .arg("--out")
                .arg(dir.join("out"))
                .args(["--stop-after", &stop_after.to_string()])
                .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
                .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
            "ctower run (live)",
        );
        Live {
            process,
            dir,
            started_ms,
        }
    }

    fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    fn dead_letters(&self) -> PathBuf {
        self.dir.join("dead.jsonl")
    }
}

fn replay_to(url: &str) {
    process::run_ok(
        ctower()
            .args(["replay"])
            .arg(recording())
            .args(["--broker", url, "--speed", "max"]),
        &format!("ctower replay to {url}"),
        RUN,
    );
}

/// A dead letter as both modes must agree on it: every field but
/// `recv_ms`, which is the receive time by design (the wall clock live, the
/// recording's `t_ms` in batch mode), and with the receive time taken out
/// of `detail` where a refusal names it (a `ts` too far ahead of it).
fn comparable(line: &Value) -> Value {
    let mut line = line.clone();
    let fields = line
        .as_object_mut()
        .expect("a dead letter is a JSON object");
    let recv = fields
        .remove("recv_ms")
        .and_then(|v| v.as_i64())
        .expect("dead letter recv_ms");
    let detail = fields
        .get("detail")
        .and_then(Value::as_str)
        .expect("dead letter detail")
        .to_string();
    let marker = format!(" s ahead of its receive time {recv}");
    let normalised = if let Some((head, tail)) = detail.split_once(&marker) {
        // "`ts` TS is SECS s ahead of its receive time RECV": SECS must be
        // computed from this line's own receive time.
        let (ts, secs) = head
            .strip_prefix("`ts` ")
            .and_then(|h| h.split_once(" is "))
            .and_then(|(ts, secs)| Some((ts.parse::<i64>().ok()?, secs.parse::<i64>().ok()?)))
            .unwrap_or_else(|| panic!("unexpected dead letter detail: {detail}"));
        assert_eq!(
            secs,
            (ts - recv) / 1000,
            "seconds ahead in `{detail}` (recv_ms {recv})"
        );
        // What follows (the limit, e.g. "(max_future_secs 300)") is the
        // same in both modes.
        format!("`ts` {ts} is ahead of its receive time{tail}")
    } else {
        // Any other mention of the receive time would make the modes differ
        // where this comparison does not expect it: say so plainly.
        assert!(
            !detail.contains("receive time") && !detail.contains(&recv.to_string()),
            "dead letter detail names the receive time in a new way, update comparable(): {detail}"
        );
        detail
    };
    fields.insert("detail".into(), Value::String(normalised));
    line
}

/// A JSON value for a failure message, cut short: an `oversized` dead
/// letter's payload is 70 kB.
fn abbreviated(v: &Value) -> String {
    const MAX: usize = 300;
    let text = v.to_string();
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
        None => text,
    }
}

fn assert_same_as_batch(live: &Live, expected_messages: u64) {
    let reference = batch_reference();
    let out = live.out();
    assert_same_files(
        &["kpis.jsonl", "alarms.jsonl"],
        (reference, "batch mode"),
        (&out, "live mode"),
    );

    let (batch, summary) = (read_summary(reference), read_summary(&out));
    assert_eq!(
        summary["messages"].as_u64(),
        Some(expected_messages),
        "messages lost: {summary}"
    );
    for key in ["messages", "accepted", "dead_letters"] {
        assert_eq!(
            summary[key], batch[key],
            "summary.json `{key}`: live (left) and batch mode (right) differ"
        );
    }

    let batch_dead = read_jsonl(&reference.join("dead-letters.jsonl"));
    let live_dead = read_jsonl(&live.dead_letters());
    assert!(
        !batch_dead.is_empty(),
        "the recording's scripted bad messages make dead letters"
    );
    assert_eq!(batch_dead.len() as u64, dead_letter_total(&batch));
    assert_eq!(
        live_dead.len() as u64,
        dead_letter_total(&summary),
        "every refusal counted live is in the dead-letter file {}",
        live.dead_letters().display()
    );
    let now = wall_ms();
    for (i, (l, b)) in live_dead.iter().zip(&batch_dead).enumerate() {
        let (lc, bc) = (comparable(l), comparable(b));
        if lc != bc {
            let field = [
                "topic",
                "reason",
                "payload",
                "payload_b64",
                "source",
                "detail",
            ]
            .into_iter()
            .find(|f| lc.get(f) != bc.get(f))
            .unwrap_or("(another field)");
            panic!(
                "dead letter {} differs in `{field}` between live mode ({}) and batch mode:\n  live:  {}\n  batch: {}",
                i + 1,
                live.dead_letters().display(),
                abbreviated(&lc),
                abbreviated(&bc)
            );
        }
        // Live, the receive time is the wall clock of this run.
        let recv = l["recv_ms"].as_i64().expect("recv_ms");
        assert!(
            (live.started_ms..=now).contains(&recv),
            "live dead letter {}: recv_ms {recv} is not a time of this run ({}..={now})",
            i + 1,
            live.started_ms
        );
    }
    assert_eq!(live_dead.len(), batch_dead.len(), "dead letters");
}

#[test]
fn recording_through_the_embedded_broker_gives_the_batch_kpis() {
    let n = messages_in_recording();
    let mut live = Live::start("live-embedded", Path::new("configs/default.toml"), n);
    let ready = live.process.wait_line("embedded broker ready", START);
    let url = ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix("url="))
        .expect("broker url in the log")
        .to_string();
    live.process.wait_line("source subscribed", START);
    // In the background: the tower (and its embedded broker) stops as soon
    // as it has every message, which can be before the publisher has its
    // last acknowledgements.
    let _publisher = Spawned::start(
        ctower()
            .args(["replay"])
            .arg(recording())
            .args(["--broker", &url, "--speed", "max"]),
        &format!("ctower replay to {url}"),
    );
    live.process.wait_success(RUN);
    assert_same_as_batch(&live, n);
}

#[test]
fn recording_through_mosquitto_loses_nothing_and_gives_the_batch_kpis() {
    let Some(bin) = services::require(&MOSQUITTO) else {
        return;
    };
    let broker = Mosquitto::start(&bin);
    let url = broker.url();
    let dir = scratch("live-mosquitto-config");
    let config = dir.join("mosquitto.toml");
    let text = std::fs::read_to_string(root().join("configs/default.toml")).expect("default.toml");
    assert!(text.contains("broker_url = \"embedded\""));
    std::fs::write(
        &config,
        text.replace(
            "broker_url = \"embedded\"",
            &format!("broker_url = \"{url}\""),
        ),
    )
    .expect("config");

    let n = messages_in_recording();
    let mut live = Live::start("live-mosquitto", &config, n);
    live.process.wait_line("source subscribed", START);
    replay_to(&url);
    live.process.wait_success(RUN);
    assert_same_as_batch(&live, n);
}
