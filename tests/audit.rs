//! `ctower audit verify` (issue #12 item 7) on a trail written by a live
//! run: it passes untouched, and names the first bad record after a byte
//! is changed, a line deleted, a line inserted, two lines swapped or the
//! last line dropped.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{default_config_with_sources, read_jsonl, recording, root, scratch};
use ctower_testkit::process::{self, Spawned};
use ctower_testkit::services::{self, MOSQUITTO};
use ctower_testkit::Mosquitto;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const RUN: Duration = Duration::from_secs(300);

fn ctower() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctower"));
    c.current_dir(root());
    c
}

/// `ctower audit verify --path P`: (success, what it printed).
fn verify(path: &Path) -> (bool, String) {
    let out = ctower()
        .args(["--log", "warn", "audit", "verify", "--path"])
        .arg(path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn a_live_run_leaves_a_trail_that_verifies_and_tampering_is_named() {
    let Some(bin) = services::require(&MOSQUITTO) else {
        return;
    };
    let broker = Mosquitto::start(&bin);
    let dir = scratch("audit");
    let sources = format!(
        "[[sources]]\nname = \"plant\"\nbroker_url = \"{}\"\nsubscriptions = [\"acme/#\"]\n",
        broker.url()
    );
    let config = default_config_with_sources(&dir.join("audit.toml"), &sources);
    let total = ctower_model::ReplayReader::open(&recording())
        .unwrap()
        .count() as u64;
    let out = dir.join("out");
    let mut live = Spawned::start(
        ctower()
            .args(["--log", "info", "run", "-w", "2", "-c"])
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .args(["--stop-after", &total.to_string()])
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
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

    // Every alarm change of the run is a record, by `system`.
    let trail = dir.join("journal/audit.jsonl");
    let records = read_jsonl(&trail);
    let alarms = read_jsonl(&out.join("alarms.jsonl"));
    assert!(!alarms.is_empty());
    assert_eq!(records.len(), alarms.len(), "one record per alarm change");
    for (r, a) in records.iter().zip(&alarms) {
        assert_eq!(r["user"], "system");
        assert_eq!(r["rule"], a["rule"]);
        assert_eq!(r["after"], a["state"]);
        assert_eq!(r["action"], a["kind"]);
    }
    let (ok, said) = verify(&trail);
    assert!(ok, "{said}");
    assert!(
        said.contains(&format!("OK, {} record(s)", records.len())),
        "{said}"
    );

    // Tampered copies (with the original head beside each).
    let text = std::fs::read_to_string(&trail).unwrap();
    let head = std::fs::read_to_string(dir.join("journal/audit.jsonl.head")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 4, "{} records", lines.len());
    let bad = |name: &str, ls: Vec<String>| {
        let p = dir.join(format!("{name}.jsonl"));
        std::fs::write(&p, ls.join("\n") + "\n").unwrap();
        std::fs::write(dir.join(format!("{name}.jsonl.head")), &head).unwrap();
        let (ok, said) = verify(&p);
        assert!(!ok, "{name}: {said}");
        said
    };
    let owned = || lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    let mut ls = owned();
    ls[2] = ls[2].replacen("system", "systen", 1);
    assert!(bad("edited", ls).contains("line 3:"));
    let mut ls = owned();
    ls.remove(1);
    assert!(bad("deleted", ls).contains("line 2:"));
    let mut ls = owned();
    ls.insert(2, lines[0].to_string());
    assert!(bad("inserted", ls).contains("line 3:"));
    let mut ls = owned();
    ls.swap(1, 2);
    assert!(bad("swapped", ls).contains("line 2:"));
    let mut ls = owned();
    ls.pop();
    assert!(bad("truncated", ls).contains("head"));
}
