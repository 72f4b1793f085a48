//! Remote parameter control end to end, with real parts: Mosquitto,
//! `ctower run` (a Sparkplug source, the command topic, the catalogue),
//! two simulated edge nodes (`ctower plant`: one obeys, one ignores
//! writes), the CLI (`ctower set|approve|params|alarms`) as three users,
//! and an independent Sparkplug implementation (PyPI `pysparkplug`)
//! decoding the DCMD on the wire.
//!
//! request (alice) → refusals → approval (bob, not alice) → DCMD decoded
//! by pysparkplug with the birth's name and alias → the plant applies it →
//! the read-back confirms; a deaf plant → unconfirmed and its alarm; an
//! unapproved request → expired; the audit trail holds every step, signed
//! where a person acted, verifies, and a tampered copy does not.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::tmux::Tmux;
use common::{assert_audit_verifies, ctower, default_config_with_sources, root, scratch};
use ctower_testkit::process::{self, Spawned};
use ctower_testkit::services::{self, MOSQUITTO, TMUX};
use ctower_testkit::wait;
use ctower_testkit::Mosquitto;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const RUN: Duration = Duration::from_secs(60);
/// How long a screen may take to show something (a loaded 2-core machine).
const SCREEN: Duration = Duration::from_secs(30);
const RO: &str = "it-plant/-/utilities/ro-1";
const DEAF_RO: &str = "it-deaf/-/utilities/ro-1";
const HVAC: &str = "it-plant/-/utilities/hvac-1";

fn config(dir: &Path, url: &str) -> std::path::PathBuf {
    let sources = format!(
        "[[sources]]\nname = \"plant\"\nbroker_url = \"{url}\"\nformat = \"sparkplug\"\nsubscriptions = [\"spBv1.0/#\"]\n"
    );
    let path = default_config_with_sources(&dir.join("params.toml"), &sources);
    let mut text = std::fs::read_to_string(&path).unwrap();
    let hash = |s: &str| ctower_control::hash_secret(s).unwrap();
    text.push_str(&format!(
        r#"
[commands]
broker_url = "{url}"

[[commands.users]]
name = "alice"
roles = ["operator"]
signature_hash = "{a}"

[[commands.users]]
name = "bob"
roles = ["supervisor"]
signature_hash = "{b}"

[[commands.users]]
name = "mallory"
signature_hash = "{m}"

[control]

[[control.parameters]]
name = "recovery_setpoint_pct"
assets = ["*/-/utilities/ro-1"]
source = "plant"
unit = "%"
type = "float"
min = 60.0
max = 85.0
max_step = 5.0
tolerance = 0.05
confirm_secs = 10
min_interval_secs = 1
request_roles = ["operator"]
approve_roles = ["supervisor"]

[[control.parameters]]
name = "temp_setpoint_c"
assets = ["{HVAC}"]
source = "plant"
unit = "degC"
type = "float"
min = 18.0
max = 26.0
approval_secs = 2
request_roles = ["operator"]
approve_roles = ["supervisor"]
"#,
        a = hash("alice-secret"),
        b = hash("bob-secret"),
        m = hash("mallory-secret"),
    ));
    std::fs::write(&path, text).unwrap();
    path
}

/// `ctower ARGS --broker URL --user USER`, signed with USER's secret.
fn cli(url: &str, user: &str, args: &[&str]) -> Output {
    process::run(
        ctower()
            .args(["--log", "warn"])
            .args(args)
            .args(["--broker", url, "--user", user, "--signature-env", "SIG"])
            .env("SIG", format!("{user}-secret")),
        &format!("ctower {}", args[0]),
        RUN,
    )
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
fn refused(o: &Output, why: &str) {
    assert!(!o.status.success(), "should be refused: {}", text(o));
    assert!(text(o).contains(why), "`{}` should say `{why}`", text(o));
}

/// `ctower params --json` as bob.
fn params(url: &str) -> Value {
    let o = process::run(
        ctower()
            .args(["--log", "warn", "params", "--json", "--broker", url])
            .args(["--user", "bob"]),
        "ctower params",
        RUN,
    );
    serde_json::from_slice(&o.stdout).unwrap_or(Value::Null)
}

fn state_of(url: &str, id: &str) -> Option<String> {
    params(url)["requests"]
        .as_array()?
        .iter()
        .find(|r| r["id"] == id)
        .and_then(|r| r["state"].as_str().map(str::to_string))
}

/// Mosquitto, the engine, an obedient and a deaf plant, both plants'
/// read-backs seen by the engine.
struct Rig {
    dir: std::path::PathBuf,
    url: String,
    port: String,
    _live: Spawned,
    plant: Spawned,
    _deaf: Spawned,
    _mq: Mosquitto,
}

fn rig(name: &str) -> Option<Rig> {
    let mosquitto = services::require(&MOSQUITTO)?;
    let dir = scratch(name);
    let mq = Mosquitto::start(&mosquitto);
    let url = mq.url();
    let port = mq.port().to_string();
    let config = config(&dir, &url);
    let live = Spawned::start(
        ctower()
            .args(["--log", "info", "run", "-w", "1", "-c"])
            .arg(&config)
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
        "ctower run",
    );
    for line in [
        "source subscribed source=plant",
        "command topic subscribed",
        "parameter control on",
    ] {
        wait::until(line, RUN, || live.output().iter().any(|l| l.contains(line)));
    }
    let plant = Spawned::start(
        ctower().args([
            "--log", "info", "plant", "--broker", &url, "--group", "it-plant",
        ]),
        "ctower plant (obeys)",
    );
    let deaf = Spawned::start(
        ctower().args([
            "--log",
            "info",
            "plant",
            "--broker",
            &url,
            "--group",
            "it-deaf",
            "--ignore-commands",
        ]),
        "ctower plant (ignores writes)",
    );
    // Both plants' read-backs reached the engine.
    wait::until("the read-backs of both RO units", RUN, || {
        let p = params(&url);
        let assets: Vec<&str> = p["params"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["asset"].as_str()).collect())
            .unwrap_or_default();
        assets.contains(&RO) && assets.contains(&DEAF_RO) && assets.contains(&HVAC)
    });
    Some(Rig {
        dir,
        url,
        port,
        _live: live,
        plant,
        _deaf: deaf,
        _mq: mq,
    })
}

#[test]
fn writes_are_approved_sent_decoded_applied_confirmed_and_audited() {
    let Some(python) = services::require_pysparkplug() else {
        return;
    };
    let Some(rig) = rig("param-control") else {
        return;
    };
    let (dir, url) = (&rig.dir, rig.url.clone());
    let listener = Spawned::start(
        Command::new(&python)
            .arg(root().join("tests/params/dcmd_listener.py"))
            .args(["127.0.0.1", &rig.port, "spBv1.0/+/DCMD/#"]),
        "pysparkplug DCMD listener",
    );
    listener.wait_line("ready", RUN);
    let plant = &rig.plant;

    // Refusals, each with its reason, nothing sent.
    let set = |user: &str, asset: &str, param: &str, v: &str| {
        cli(
            &url,
            user,
            &["set", asset, param, v, "--reason", "raise the RO recovery"],
        )
    };
    refused(
        &set("alice", RO, "recovery_setpoint_pct", "95"),
        "above the maximum 85 %",
    );
    refused(
        &set("alice", RO, "recovery_setpoint_pct", "82"),
        "larger than the largest step 5 %",
    );
    refused(
        &set("mallory", RO, "recovery_setpoint_pct", "80"),
        "may not request writes",
    );
    refused(
        &set("alice", RO, "count_good", "80"),
        "not in the catalogue",
    );
    let wrong = process::run(
        ctower()
            .args(["--log", "warn", "set", RO, "recovery_setpoint_pct", "80"])
            .args(["--reason", "x", "--broker", &url, "--user", "alice"])
            .args(["--signature-env", "SIG"])
            .env("SIG", "not-alices-secret"),
        "ctower set",
        RUN,
    );
    refused(&wrong, "signature does not match");

    // Request by alice; she cannot approve it herself; bob does.
    let o = set("alice", RO, "recovery_setpoint_pct", "80");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("P000001"), "{}", text(&o));
    assert!(text(&o).contains("requested"), "{}", text(&o));
    refused(
        &set("alice", RO, "recovery_setpoint_pct", "79"),
        "still in flight (requested)",
    );
    refused(
        &cli(&url, "alice", &["approve", "P000001"]),
        "cannot approve your own request",
    );
    let o = cli(&url, "bob", &["approve", "P000001"]);
    assert!(o.status.success(), "{}", text(&o));

    // On the wire, decoded by pysparkplug: the birth's name and alias.
    let line = listener.wait_line("recovery_setpoint_pct", RUN);
    let dcmd: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(dcmd["topic"], "spBv1.0/it-plant/DCMD/utilities/ro-1");
    assert_eq!(dcmd["qos"], 1, "{line}");
    let m = &dcmd["metrics"][0];
    let alias = ctower_sim::edge::EdgePlant::new(
        ctower_sim::edge::EdgeConfig {
            group: "it-plant".into(),
            node: "utilities".into(),
            seed: 42,
        },
        1_780_000_000_000,
    )
    .unwrap()
    .alias(Some("ro-1"), "recovery_setpoint_pct")
    .unwrap();
    assert_eq!(m["name"], "recovery_setpoint_pct", "{line}");
    assert_eq!(m["alias"], alias, "{line}");
    assert_eq!(m["datatype"], 10, "Double, as born: {line}");
    assert_eq!(m["value"], 80.0, "{line}");

    // The plant applied it; its read-back confirms.
    plant.wait_line("write received", RUN);
    wait::until("P000001 confirmed", RUN, || {
        state_of(&url, "P000001").as_deref() == Some("confirmed")
    });

    // A plant that never applies the value: unconfirmed, with its alarm.
    let o = set("alice", DEAF_RO, "recovery_setpoint_pct", "80");
    assert!(o.status.success(), "{}", text(&o));
    assert!(cli(&url, "bob", &["approve", "P000002"]).status.success());
    wait::until("P000002 unconfirmed", RUN, || {
        state_of(&url, "P000002").as_deref() == Some("unconfirmed")
    });
    let alarms = process::run_ok(
        ctower()
            .args(["--log", "warn", "alarms", "list", "--broker", &url])
            .args(["--user", "bob"]),
        "ctower alarms list",
        RUN,
    );
    let alarms = String::from_utf8_lossy(&alarms.stdout).to_string();
    assert!(
        alarms.contains(&format!(
            "ctower.param_unconfirmed.recovery_setpoint_pct@{DEAF_RO}"
        )),
        "{alarms}"
    );

    // Nobody approves: expired after its 2 s.
    let o = set("alice", HVAC, "temp_setpoint_c", "22");
    assert!(o.status.success(), "{}", text(&o));
    wait::until("P000003 expired", RUN, || {
        state_of(&url, "P000003").as_deref() == Some("expired")
    });
    refused(&cli(&url, "bob", &["approve", "P000003"]), "is expired");

    // The trail: every step, who, signed where a person acted; it verifies.
    let trail_path = dir.join("journal/audit.jsonl");
    let trail = std::fs::read_to_string(&trail_path).unwrap();
    let steps: Vec<String> = trail
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["request"] == "P000001")
        .map(|v| {
            format!(
                "{} {} {}->{} signed={}",
                v["user"].as_str().unwrap(),
                v["action"].as_str().unwrap(),
                v["before"].as_str().unwrap(),
                v["after"].as_str().unwrap(),
                v["signed"] == true
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            "alice param_requested none->requested signed=true",
            "alice param_refused requested->requested signed=false",
            "bob param_approved requested->approved signed=true",
            "system param_sent approved->sent signed=false",
            "system param_confirmed sent->confirmed signed=false",
        ],
        "{trail}"
    );
    for want in [
        r#""action":"param_unconfirmed""#,
        r#""action":"param_expired""#,
        r#""scope":"it-plant/-/utilities/ro-1","signal":"recovery_setpoint_pct""#,
        r#""old":"75","new":"80""#,
    ] {
        assert!(trail.contains(want), "the trail lacks {want}: {trail}");
    }
    for secret in ["alice-secret", "bob-secret", "not-alices-secret"] {
        assert!(!trail.contains(secret), "a secret in the trail");
    }
    assert_audit_verifies(&trail_path);

    // A copy with one record edited (the value asked): found.
    let tampered = dir.join("tampered.jsonl");
    let edited = trail.replacen(r#""old":"75","new":"80""#, r#""old":"75","new":"70""#, 1);
    assert_ne!(edited, trail);
    std::fs::write(&tampered, edited).unwrap();
    let verify = ctower()
        .args(["--log", "warn", "audit", "verify", "--path"])
        .arg(&tampered)
        .output()
        .unwrap();
    assert!(!verify.status.success(), "a tampered trail must not verify");
    let why = String::from_utf8_lossy(&verify.stderr);
    assert!(why.contains("edited"), "{why}");
    drop(rig);
}

/// Two viewers attached in tmux: alice sets a parameter in the parameter
/// view (signing once), bob approves it in his; both see it confirmed.
#[test]
fn a_viewer_sets_a_parameter_and_a_second_viewer_approves_it() {
    let Some(tmux_bin) = services::require(&TMUX) else {
        return;
    };
    let Some(rig) = rig("param-control-tmux") else {
        return;
    };
    let tmux = Tmux {
        bin: tmux_bin,
        socket: rig.dir.join("tmux.sock"),
    };
    let exe = env!("CARGO_BIN_EXE_ctower");
    for user in ["alice", "bob"] {
        let script = format!(
            "'{exe}' tui --broker '{}' --user {user} --log-file '{}'",
            rig.url,
            rig.dir.join(format!("tui-{user}.log")).display()
        );
        tmux.session(user, 160, 48, &script);
        // Live plants: no window has closed yet, the parameters are there.
        tmux.wait_for(user, "the viewer", SCREEN, |s| {
            s.contains(&format!("user {user}"))
        });
        tmux.send_keys(user, "8");
        tmux.wait_for(user, "the parameter view", SCREEN, |s| {
            s.contains("Writable parameters") && s.contains(RO)
        });
    }
    let typed = |user: &str, text: &str| {
        tmux.run_ok(&["send-keys", "-t", user, "-l", text]);
        tmux.send_keys(user, "Enter");
    };
    // alice: the parameter table, only it-plant's RO unit, `s`.
    tmux.send_keys("alice", "Left");
    tmux.send_keys("alice", "/");
    typed("alice", RO);
    tmux.wait_for("alice", "the filter", SCREEN, |s| !s.contains(DEAF_RO));
    tmux.send_keys("alice", "Down");
    tmux.send_keys("alice", "s");
    typed("alice", "80 raise the recovery");
    tmux.wait_for("alice", "the signature prompt", SCREEN, |s| {
        s.contains("signature for alice")
    });
    typed("alice", "alice-secret");
    let s = tmux.wait_for("alice", "the request", SCREEN, |s| {
        s.contains("P000001") && s.contains("requested")
    });
    assert!(!s.contains("alice-secret"), "the secret on screen:\n{s}");
    // bob sees it waiting, approves it, signing.
    tmux.send_keys("bob", "Right");
    tmux.wait_for("bob", "the request in bob's view", SCREEN, |s| {
        s.contains("P000001") && s.contains("requested")
    });
    tmux.send_keys("bob", "Down");
    tmux.send_keys("bob", "y");
    tmux.wait_for("bob", "the signature prompt", SCREEN, |s| {
        s.contains("signature for bob")
    });
    typed("bob", "bob-secret");
    for user in ["bob", "alice"] {
        let s = tmux.wait_for(user, "the write confirmed", SCREEN, |s| {
            s.lines()
                .any(|l| l.contains("P000001") && l.contains("confirmed"))
        });
        assert!(!s.contains("bob-secret") && !s.contains("alice-secret"));
        println!("--- {user}, parameter view ---\n{s}");
    }
    let trail = std::fs::read_to_string(rig.dir.join("journal/audit.jsonl")).unwrap();
    assert!(
        trail.contains(r#""user":"alice","action":"param_requested""#),
        "{trail}"
    );
    assert!(
        trail.contains(r#""user":"bob","action":"param_approved""#),
        "{trail}"
    );
    assert!(trail.contains(r#""action":"param_confirmed""#), "{trail}");
    assert_audit_verifies(&rig.dir.join("journal/audit.jsonl"));
}
