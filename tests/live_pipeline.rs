//! The real path, end to end: the committed recording is published to a
//! broker (`ctower replay --speed max`, QoS 1), a headless `ctower run`
//! collects it through rumqttc and computes the KPIs, and its output must
//! be byte-identical to the batch mode's over the same file: nothing lost,
//! nothing reordered, same KPIs and alarms. Once through the embedded
//! broker, once through a real Mosquitto.

mod common;

use common::{
    assert_same_files, dead_letter_total, read_jsonl, read_summary, recording, root, run_batch,
    scratch,
};
use ctower_testkit::process::{self, Spawned};
use ctower_testkit::services::{self, MOSQUITTO};
use ctower_testkit::Mosquitto;
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
}

impl Live {
    fn start(name: &str, config: &Path, stop_after: u64) -> Live {
        let dir = scratch(name);
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
        Live { process, dir }
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

fn assert_same_as_batch(live: &Live, expected_messages: u64) {
    let reference = batch_reference();
    let out = live.out();
    assert_same_files(
        &["kpis.jsonl", "alarms.jsonl"],
        (reference, "batch mode"),
        (&out, "live mode"),
    );
    let summary = read_summary(&out);
    assert_eq!(
        summary["messages"].as_u64(),
        Some(expected_messages),
        "messages lost: {summary}"
    );
    assert_eq!(
        read_jsonl(&live.dead_letters()).len() as u64,
        dead_letter_total(&summary),
        "every refusal counted live is in the dead-letter file {}",
        live.dead_letters().display()
    );
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
    replay_to(&url);
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
