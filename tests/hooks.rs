//! Alarm hooks end to end (issue #12 item 5): a live run through a real
//! Mosquitto notifies a webhook (Standard Webhooks signatures), a Slack
//! hook and a PagerDuty hook served by a Python receiver
//! (`tests/hooks/receiver.py`), which checks every signature with the PyPI
//! package `standardwebhooks`. The receiver is down for the whole run (at
//! least 30 s), ctower is killed with `kill -9` while every notification
//! waits in its outbox, the receiver comes back on the same port, and a
//! restarted ctower delivers them all: each alarm change exactly once per
//! hook by `webhook-id`, every signature valid, PagerDuty triggers and
//! resolves paired by dedup key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{default_config_with_sources, read_jsonl, recording, root, run_batch, scratch};
use ctower_testkit::process::{self, Spawned};
use ctower_testkit::services::{self, MOSQUITTO};
use ctower_testkit::{wait, Mosquitto};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RUN: Duration = Duration::from_secs(300);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ROUTING_KEY: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12";

fn ctower() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctower"));
    c.current_dir(root());
    c
}

fn receiver(python: &Path, port: u16, out: &Path) -> (Spawned, u16) {
    let r = Spawned::start(
        Command::new(python)
            .arg(root().join("tests/hooks/receiver.py"))
            .args(["--port", &port.to_string(), "--secret", SECRET, "--out"])
            .arg(out),
        "receiver",
    );
    let line = r.wait_line("listening ", Duration::from_secs(30));
    let port = line
        .rsplit(' ')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .expect("the receiver's port");
    (r, port)
}

/// An alarm change as (rule, scope, signal, event time, kind).
type Change = (String, String, String, i64, String);

fn change_of(ev: &Value) -> Change {
    let scope = ev["scope"].to_string();
    (
        ev["rule"].as_str().unwrap_or_default().to_string(),
        scope,
        ev["signal"].as_str().unwrap_or_default().to_string(),
        ev["ts_ms"].as_i64().unwrap_or_default(),
        ev["kind"].as_str().unwrap_or_default().to_string(),
    )
}

fn is_rule_change(ev: &Value) -> bool {
    let kind = ev["kind"].as_str().unwrap_or_default();
    !ev["rule"]
        .as_str()
        .unwrap_or_default()
        .starts_with("ctower.")
        && (kind == "raised" || kind == "cleared")
}

/// The windows at the end of the recording a live run cannot close (they
/// wait for event time past the recording's end: the allowed lateness and
/// the look-ahead); the batch run closes them at the end of its input.
const LIVE_OPEN_WINDOWS: usize = 6;

/// Group-level window records (first revisions) in a `kpis.jsonl`.
fn group_windows(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["level"] == "group" && r["period"] == "window" && r["revision"] == 0)
        .count()
}

/// Notifications of rule alarm changes in the outbox segments of a hook
/// (each line: 8 hex digits of CRC, a space, the notification).
fn outbox_rule_changes(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with("outbox-") {
            for line in std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
            {
                let note: Value =
                    serde_json::from_str(line.get(9..).unwrap_or("")).unwrap_or(Value::Null);
                if is_rule_change(&note["event"]) {
                    n += 1;
                }
            }
        }
    }
    n
}

#[test]
fn hooks_deliver_every_notification_after_an_outage_and_a_kill() {
    let Some(python) = services::require_standardwebhooks() else {
        return;
    };
    let Some(bin) = services::require(&MOSQUITTO) else {
        return;
    };
    let dir = scratch("hooks");
    // What the recording raises and clears, from batch mode.
    run_batch(&recording(), &dir.join("batch"), 1);
    let expected: Vec<Value> = read_jsonl(&dir.join("batch/alarms.jsonl"))
        .into_iter()
        .filter(is_rule_change)
        .collect();
    assert!(
        expected.len() >= 4,
        "the recording raises and clears alarms"
    );
    let urgent_or_high: Vec<&Value> = expected
        .iter()
        .filter(|e| matches!(e["priority"].as_str(), Some("urgent" | "high")))
        .collect();
    assert!(!urgent_or_high.is_empty());

    // The receiver's port; then it goes down.
    let received = dir.join("received.jsonl");
    let (r, port) = receiver(&python, 0, &received);
    drop(r);
    let down_at = Instant::now();

    let broker = Mosquitto::start(&bin);
    let base = format!("http://127.0.0.1:{port}");
    let sources = format!(
        "[[sources]]\nname = \"plant\"\nbroker_url = \"{}\"\nsubscriptions = [\"acme/#\"]\n",
        broker.url()
    );
    let config = default_config_with_sources(&dir.join("hooks.toml"), &sources);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        r#"
[[alerts.hooks]]
kind = "webhook"
name = "oncall"
url = "{base}/webhook"
secret_env = "CTOWER_TEST_HOOK_SECRET"
retry_base_ms = 200
retry_max_secs = 2

[[alerts.hooks]]
kind = "slack"
name = "chat"
url = "{base}/slack"
retry_base_ms = 200
retry_max_secs = 2

[[alerts.hooks]]
kind = "pagerduty"
name = "pager"
url = "{base}/pagerduty"
routing_key_env = "CTOWER_TEST_PD_KEY"
min_priority = "high"
retry_base_ms = 200
retry_max_secs = 2

[alerts]
outbox_dir = "{outbox}"
# This test counts every alarm change; the flood summary has its own tests.
flood_alarms = 1000
"#,
        outbox = dir.join("hooks").display()
    ));
    std::fs::write(&config, text).unwrap();
    let run = |extra: &[&str]| {
        let mut c = ctower();
        c.args(["--log", "info", "run", "-w", "2", "-c"])
            .arg(&config)
            .args(extra)
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl"))
            .env("CTOWER_TEST_HOOK_SECRET", SECRET)
            .env("CTOWER_TEST_PD_KEY", ROUTING_KEY);
        c
    };

    // The run, with the receiver down: every notification waits on disk.
    let out = dir.join("out");
    let out_arg = out.display().to_string();
    let mut live = Spawned::start(&mut run(&["--out", &out_arg]), "ctower run");
    live.wait_line("source subscribed source=plant", Duration::from_secs(60));
    process::run_ok(
        ctower()
            .args(["--log", "warn", "replay"])
            .arg(recording())
            .args(["--broker", &broker.url(), "--speed", "max"]),
        "ctower replay",
        RUN,
    );
    // Every alarm change waits in the webhook's outbox: then kill -9.
    let deadline = Instant::now() + RUN;
    loop {
        let have = outbox_rule_changes(&dir.join("hooks/oncall"));
        if have >= expected.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the webhook's outbox holds {have} of {} alarm changes",
            expected.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Before the kill the engine has taken the whole replay: a backlog the
    // broker still held would come again after the restart (the session
    // is persistent, nothing is lost) and meet the process-alarm detectors
    // cold, which may raise what the batch run never does. It has once it
    // has closed every window a live run can close: all of the batch's but
    // the last LIVE_OPEN_WINDOWS, which wait for data after the recording.
    let batch_windows = group_windows(&dir.join("batch/kpis.jsonl"));
    wait::until("the live run to close the recording's windows", RUN, || {
        group_windows(&out.join("kpis.jsonl")) + LIVE_OPEN_WINDOWS >= batch_windows
    });
    process::run_ok(
        Command::new("kill").args(["-9", &live.id().to_string()]),
        "kill -9 ctower",
        Duration::from_secs(10),
    );
    live.wait_exit(Duration::from_secs(30));
    assert!(
        !received.exists(),
        "nothing was received while the receiver was down"
    );
    assert!(
        live.output()
            .iter()
            .any(|l| l.contains("hook notification not delivered")),
        "the failed deliveries were logged"
    );

    // Down for at least 30 s, then back on the same port.
    let down_for = Duration::from_secs(30);
    if let Some(left) = down_for.checked_sub(down_at.elapsed()) {
        std::thread::sleep(left);
    }
    let (_r, again) = receiver(&python, port, &received);
    assert_eq!(again, port);

    // The restart delivers what the outboxes hold.
    let mut restarted = Spawned::start(&mut run(&[]), "ctower run (restart)");
    let deadline = Instant::now() + RUN;
    let records = loop {
        let records = read_jsonl(&received);
        let ids: BTreeSet<(String, String)> = records
            .iter()
            .map(|r| {
                (
                    r["path"].as_str().unwrap_or_default().to_string(),
                    r["headers"]["webhook-id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        let per_path = |p: &str| ids.iter().filter(|(x, _)| x == p).count();
        if per_path("/webhook") >= expected.len()
            && per_path("/slack") >= expected.len()
            && per_path("/pagerduty") >= urgent_or_high.len()
        {
            break records;
        }
        assert!(
            Instant::now() < deadline,
            "delivered after the restart: {} records",
            records.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    process::run_ok(
        Command::new("kill").args(["-TERM", &restarted.id().to_string()]),
        "stop ctower",
        Duration::from_secs(10),
    );
    restarted.wait_exit(RUN);

    // Every webhook request verified by the reference verifier.
    let bodies = |path: &str| -> BTreeMap<String, Value> {
        let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
        for r in records.iter().filter(|r| r["path"] == path) {
            let id = r["headers"]["webhook-id"]
                .as_str()
                .expect("webhook-id")
                .to_string();
            let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
            if let Some(first) = by_id.get(&id) {
                assert_eq!(
                    first, &body,
                    "a retry with the same webhook-id carries the same body"
                );
            }
            by_id.insert(id, body);
        }
        by_id
    };
    for r in records.iter().filter(|r| r["path"] == "/webhook") {
        assert_eq!(
            r["verified"],
            Value::Bool(true),
            "standardwebhooks refused {r}"
        );
    }
    // Webhook: each alarm change exactly once by id.
    let webhook = bodies("/webhook");
    let mut got: BTreeMap<Change, usize> = BTreeMap::new();
    for body in webhook.values() {
        if is_rule_change(&body["data"]) {
            *got.entry(change_of(&body["data"])).or_default() += 1;
            assert_eq!(
                body["type"],
                format!("alarm.{}", body["data"]["kind"].as_str().unwrap())
            );
        }
    }
    let want: BTreeMap<Change, usize> = expected.iter().map(|e| (change_of(e), 1)).collect();
    assert_eq!(
        got, want,
        "the webhook got each alarm change once, under one id"
    );
    // Slack: one message per change (ctower's own alarms aside), each
    // with its fallback text and blocks.
    let slack = bodies("/slack");
    let about_rules = slack
        .values()
        .filter(|b| !b["text"].as_str().unwrap_or_default().contains("(ctower."))
        .count();
    assert_eq!(about_rules, expected.len());
    assert!(slack.values().all(|b| b["blocks"][0]["type"] == "section"));
    // PagerDuty: a trigger per raise and a resolve per clear of the high
    // and urgent alarms, each resolve with its trigger's dedup key.
    let pd = bodies("/pagerduty");
    let mut class_of: BTreeMap<String, String> = BTreeMap::new();
    for b in pd.values().filter(|b| b["event_action"] == "trigger") {
        assert_eq!(b["routing_key"], ROUTING_KEY);
        let p = &b["payload"];
        assert!(
            matches!(p["severity"].as_str(), Some("critical" | "error")),
            "{b}"
        );
        assert!(p["summary"]
            .as_str()
            .is_some_and(|s| !s.is_empty() && s.len() <= 1024));
        assert!(p["source"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(p["timestamp"].as_str().is_some_and(|s| s.ends_with('Z')));
        let key = b["dedup_key"].as_str().expect("dedup_key").to_string();
        class_of.insert(key, p["class"].as_str().unwrap_or_default().to_string());
    }
    let mut resolves = 0;
    for b in pd.values().filter(|b| b["event_action"] != "trigger") {
        assert_eq!(
            b["event_action"], "resolve",
            "no acknowledgement in this run: {b}"
        );
        assert_eq!(b["routing_key"], ROUTING_KEY);
        let key = b["dedup_key"].as_str().expect("dedup_key");
        let class = class_of
            .get(key)
            .unwrap_or_else(|| panic!("resolve of an unknown incident {b}"));
        if !class.starts_with("ctower.") {
            resolves += 1;
        }
    }
    let triggers = class_of
        .values()
        .filter(|c| !c.starts_with("ctower."))
        .count();
    let raises = urgent_or_high
        .iter()
        .filter(|e| e["kind"] == "raised")
        .count();
    let clears = urgent_or_high
        .iter()
        .filter(|e| e["kind"] == "cleared")
        .count();
    assert_eq!((triggers, resolves), (raises, clears));
}
