//! Operator actions against a running engine (issue #12 items 3, 6, 7):
//! `ctower alarms list|ack|shelve|comment|out-of-service` through the
//! command topic on a real Mosquitto, each with the operator's identity and
//! reason; an unauthorised user is refused (and the refusal audited); the
//! audit trail holds every action and verifies; after a restart the
//! alarms' states (acknowledged, shelved with its end, out of service) are
//! still there.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{
    assert_audit_verifies, ctower, default_config_with_sources, read_jsonl, recording, scratch,
};
use ctower_testkit::process::{self, Spawned};
use ctower_testkit::services::{self, MOSQUITTO};
use ctower_testkit::Mosquitto;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const RUN: Duration = Duration::from_secs(300);

/// `ctower alarms ARGS --broker B --user U`: (success, stdout + stderr).
fn alarms(broker: &str, user: &str, args: &[&str]) -> (bool, String) {
    let out: Output = ctower()
        .args(["--log", "warn", "alarms"])
        .args(args)
        .args(["--broker", broker, "--user", user])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn list(broker: &str) -> Vec<Value> {
    let (ok, text) = alarms(broker, "alice", &["list", "--json"]);
    assert!(ok, "{text}");
    let reply: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    reply["alarms"].as_array().cloned().unwrap_or_default()
}

/// The text id of the listed alarm of `rule`.
fn id_of(alarms: &[Value], rule: &str) -> String {
    let a = alarms
        .iter()
        .find(|a| a["alarm"]["rule"] == rule)
        .unwrap_or_else(|| panic!("{rule} not listed: {alarms:#?}"));
    let id: ctower_model::AlarmId = serde_json::from_value(a["alarm"].clone()).unwrap();
    id.to_string()
}

fn state_of(alarms: &[Value], rule: &str) -> Option<String> {
    alarms
        .iter()
        .find(|a| a["alarm"]["rule"] == rule)
        .map(|a| a["state"].as_str().unwrap_or_default().to_string())
}

fn start(config: &Path, dir: &Path, what: &str) -> Spawned {
    let live = Spawned::start(
        ctower()
            .args(["--log", "info", "run", "-w", "2", "-c"])
            .arg(config)
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
        what,
    );
    live.wait_line("source subscribed source=plant", Duration::from_secs(60));
    // The command topic's subscription is the engine's own (a request
    // before it would be lost: no session).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !live
        .output()
        .iter()
        .any(|l| l.contains("command topic subscribed"))
    {
        assert!(
            Instant::now() < deadline,
            "the command topic was not subscribed: {}",
            live.tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    live
}

fn stop(live: &mut Spawned) {
    process::run_ok(
        Command::new("kill").args(["-TERM", &live.id().to_string()]),
        "stop ctower",
        Duration::from_secs(10),
    );
    live.wait_exit(RUN);
}

#[test]
fn operators_act_on_a_running_engines_alarms_and_the_states_survive_a_restart() {
    let Some(bin) = services::require(&MOSQUITTO) else {
        return;
    };
    let broker = Mosquitto::start(&bin);
    let url = broker.url();
    let dir = scratch("alarm-commands");
    let sources = format!(
        "[[sources]]\nname = \"plant\"\nbroker_url = \"{url}\"\nsubscriptions = [\"acme/#\"]\n"
    );
    let config = default_config_with_sources(&dir.join("commands.toml"), &sources);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        r#"
[commands]
broker_url = "{url}"

[[commands.users]]
name = "alice"

[[commands.users]]
name = "bob"
actions = ["comment"]
"#
    ));
    std::fs::write(&config, text).unwrap();

    let mut live = start(&config, &dir, "ctower run");
    process::run_ok(
        ctower()
            .args(["--log", "warn", "replay"])
            .arg(recording())
            .args(["--broker", &url, "--speed", "max"]),
        "ctower replay",
        RUN,
    );
    // The recording's alarms have all been raised and cleared: each waits
    // for its acknowledgement (unack_rtn).
    let trail = dir.join("journal/audit.jsonl");
    let deadline = Instant::now() + RUN;
    let listed = loop {
        let l = list(&url);
        if l.len() >= 4 && l.iter().all(|a| a["state"] == "unack_rtn") {
            break l;
        }
        assert!(Instant::now() < deadline, "alarms listed: {l:#?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let availability = id_of(&listed, "line-availability-low");
    let water = id_of(&listed, "water-recovery-low");
    let standby = id_of(&listed, "standby-energy-high");
    let stale = id_of(&listed, "site-data-stale");

    // Not authorised: refused, on screen and in the trail.
    let (ok, text) = alarms(&url, "mallory", &["ack", &availability]);
    assert!(
        !ok && text.contains("user `mallory` may not acknowledge"),
        "{text}"
    );
    let (ok, text) = alarms(&url, "bob", &["ack", &availability]);
    assert!(!ok && text.contains("may not acknowledge"), "{text}");
    // A reason is required to shelve.
    let (ok, text) = alarms(&url, "alice", &["shelve", &water, "--minutes", "30"]);
    assert!(!ok && text.contains("needs a reason"), "{text}");

    let (ok, text) = alarms(&url, "alice", &["ack", &availability]);
    assert!(ok && text.contains("unack_rtn → normal"), "{text}");
    let (ok, text) = alarms(
        &url,
        "alice",
        &[
            "shelve",
            &water,
            "--minutes",
            "30",
            "--reason",
            "membrane clean-in-place",
        ],
    );
    assert!(ok && text.contains("→ shelved until"), "{text}");
    let (ok, text) = alarms(
        &url,
        "bob",
        &[
            "comment",
            &standby,
            "--reason",
            "night shift saw the HVAC left on",
        ],
    );
    assert!(ok && text.contains("comment recorded"), "{text}");
    let (ok, text) = alarms(
        &url,
        "alice",
        &[
            "out-of-service",
            &stale,
            "--reason",
            "PLC migration this week",
        ],
    );
    assert!(ok && text.contains("→ out_of_service"), "{text}");
    let (ok, text) = alarms(&url, "alice", &["ack", "no-such-rule@lyon-fill"]);
    assert!(!ok && text.contains("no rule is named"), "{text}");

    let now = list(&url);
    assert_eq!(
        state_of(&now, "line-availability-low"),
        None,
        "acknowledged: normal"
    );
    assert_eq!(
        state_of(&now, "water-recovery-low").as_deref(),
        Some("shelved")
    );
    assert_eq!(
        state_of(&now, "site-data-stale").as_deref(),
        Some("out_of_service")
    );
    assert_eq!(
        state_of(&now, "standby-energy-high").as_deref(),
        Some("unack_rtn")
    );

    // The trail: each action with its user, states and reason.
    let records = read_jsonl(&trail);
    let by = |user: &str, action: &str| -> Vec<Value> {
        records
            .iter()
            .filter(|r| r["user"] == user && r["action"] == action)
            .cloned()
            .collect()
    };
    assert_eq!(by("mallory", "refused").len(), 1);
    assert_eq!(by("bob", "refused").len(), 1);
    let ack = &by("alice", "acknowledge")[0];
    assert_eq!(
        (ack["before"].as_str(), ack["after"].as_str()),
        (Some("unack_rtn"), Some("normal"))
    );
    let shelf = &by("alice", "shelve")[0];
    assert_eq!(shelf["reason"], "membrane clean-in-place");
    assert!(
        shelf["until"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{shelf}"
    );
    assert_eq!(
        by("bob", "comment")[0]["reason"],
        "night shift saw the HVAC left on"
    );
    assert_eq!(
        by("alice", "remove_from_service")[0]["after"],
        "out_of_service"
    );
    stop(&mut live);
    assert_audit_verifies(&trail);

    // A restart finds the states in the trail.
    let mut again = start(&config, &dir, "ctower run (restart)");
    // The output stage logs it while it starts, beside the sources.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !again
        .output()
        .iter()
        .any(|l| l.contains("alarm states restored from the audit trail alarms=3"))
    {
        assert!(
            Instant::now() < deadline,
            "no restore line: {}",
            again.tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = list(&url);
    assert_eq!(state_of(&after, "line-availability-low"), None);
    assert_eq!(
        state_of(&after, "water-recovery-low").as_deref(),
        Some("shelved")
    );
    assert_eq!(
        state_of(&after, "site-data-stale").as_deref(),
        Some("out_of_service")
    );
    assert_eq!(
        state_of(&after, "standby-energy-high").as_deref(),
        Some("unack_rtn")
    );
    let shelved = after
        .iter()
        .find(|a| a["alarm"]["rule"] == "water-recovery-low")
        .unwrap();
    assert!(shelved["shelved_until_ms"].as_i64().is_some(), "{shelved}");
    // And acting on them goes on from there.
    let (ok, text) = alarms(
        &url,
        "alice",
        &["in-service", &stale, "--reason", "migration done"],
    );
    assert!(ok && text.contains("out_of_service → normal"), "{text}");
    stop(&mut again);
}
