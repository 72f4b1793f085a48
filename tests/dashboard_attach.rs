//! The control-room dashboard attached to a running engine (issue #13):
//! an engine replays the committed recording through Mosquitto and
//! publishes its feed; three viewers (`ctower tui --broker mqtts://…`)
//! attach over TLS with passwords, each in its own tmux terminal, their
//! broker ACL letting each publish only on its own command topic.
//!
//! - alice drills fleet → site → line, opens the energy, water and health
//!   views, and acknowledges an alarm in the console;
//! - bob's viewer (80×24) shows the acknowledgement within 2 s;
//! - mallory, whom the engine's `[commands]` does not authorise, sees her
//!   acknowledgement refused on screen;
//! - the audit trail holds alice's acknowledgement and mallory's refusal,
//!   and verifies;
//! - the engine killed, every viewer says DISCONNECTED within 2 s.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::tmux::Tmux;
use common::{
    assert_audit_verifies, ctower, default_config_with_sources, read_jsonl, recording, scratch,
};
use ctower_testkit::pki::{mosquitto_password_file_users, write_readable, TestPki};
use ctower_testkit::process::{self, Spawned};
use ctower_testkit::services::{self, MOSQUITTO, TMUX};
use ctower_testkit::Mosquitto;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RUN: Duration = Duration::from_secs(300);
const SCREEN: Duration = Duration::from_secs(30);

/// Mosquitto: TLS with passwords and per-user ACLs on its port (the
/// viewers'), and an anonymous plain listener on `plain` (the engine's and
/// the replay's, inside the plant).
fn broker(bin: &Path, pki: &TestPki, plain: u16, users: &[&str]) -> Mosquitto {
    Mosquitto::start_configured(bin, &|dir| {
        let ca = write_readable(dir, "ca.pem", &pki.ca_pem);
        let cert = write_readable(dir, "server.pem", &pki.server.0);
        let key = write_readable(dir, "server.key", &pki.server.1);
        let pw: Vec<(String, String)> = users
            .iter()
            .map(|u| (u.to_string(), format!("pw-{u}")))
            .collect();
        let pw: Vec<(&str, &str)> = pw.iter().map(|(u, p)| (u.as_str(), p.as_str())).collect();
        let passwd = mosquitto_password_file_users(dir, &pw);
        // Each user reads the feed, writes only its own command topic and
        // reads only its own replies: the broker vouches for the identity.
        let acl = write_readable(
            dir,
            "acl",
            "pattern read ctower/board/#\npattern write ctower/cmd/%u\npattern read ctower/reply/%u\n",
        );
        format!(
            "per_listener_settings true\ncafile {}\ncertfile {}\nkeyfile {}\n\
             allow_anonymous false\npassword_file {}\nacl_file {}\n\
             listener {plain} 127.0.0.1\nallow_anonymous true\n",
            ca.display(),
            cert.display(),
            key.display(),
            passwd.display(),
            acl.display(),
        )
    })
}

/// The first row of the lines table, when it has one.
fn first_row(screen: &str) -> Option<String> {
    let mut lines = screen.lines().skip_while(|l| !l.starts_with("│line "));
    lines.next()?;
    let row = lines
        .next()?
        .trim_matches(|c: char| c == '│' || c.is_whitespace());
    (!row.is_empty() && !row.starts_with('└')).then(|| row.to_string())
}

fn unacked(screen: &str) -> Option<u32> {
    let at = screen.find(" unacked")?;
    screen[..at].rsplit(' ').next()?.parse().ok()
}

#[test]
fn viewers_attach_over_tls_act_as_their_users_and_see_the_engine_go() {
    let Some(mosquitto) = services::require(&MOSQUITTO) else {
        return;
    };
    let Some(tmux_bin) = services::require(&TMUX) else {
        return;
    };
    let dir = scratch("dashboard-attach");
    let pki = TestPki::new("ctower-attach-test");
    let plain = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut mq = broker(&mosquitto, &pki, plain, &["alice", "bob", "mallory"]);
    let inside = format!("mqtt://127.0.0.1:{plain}");
    let outside = format!("mqtts://127.0.0.1:{}", mq.port());
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();

    let sources = format!(
        "[[sources]]\nname = \"plant\"\nbroker_url = \"{inside}\"\nsubscriptions = [\"acme/#\"]\n"
    );
    let config = default_config_with_sources(&dir.join("attach.toml"), &sources);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[commands]\nbroker_url = \"{inside}\"\n\n[[commands.users]]\nname = \"alice\"\n\n[[commands.users]]\nname = \"bob\"\n"
    ));
    std::fs::write(&config, text).unwrap();
    let mut live = Spawned::start(
        ctower()
            .args(["--log", "info", "run", "-w", "2", "-c"])
            .arg(&config)
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl")),
        "ctower run",
    );
    // Their order is the threads' (each line once, seen in any order).
    for line in [
        "source subscribed source=plant",
        "command topic subscribed",
        "dashboard feed published",
    ] {
        ctower_testkit::wait::until(line, Duration::from_secs(60), || {
            live.output().iter().any(|l| l.contains(line))
        });
    }
    process::run_ok(
        ctower()
            .args(["--log", "warn", "replay"])
            .arg(recording())
            .args(["--broker", &inside, "--speed", "max"]),
        "ctower replay",
        RUN,
    );

    let tmux = Tmux {
        bin: tmux_bin,
        socket: dir.join("tmux.sock"),
    };
    let exe = env!("CARGO_BIN_EXE_ctower");
    for (user, w, h) in [("alice", 160, 48), ("bob", 80, 24), ("mallory", 100, 30)] {
        let script = format!(
            "PW=pw-{user} '{exe}' tui --broker '{outside}' --user {user} --password-env PW \
             --ca-file '{}' --log-file '{}'",
            ca.display(),
            dir.join(format!("tui-{user}.log")).display()
        );
        tmux.session(user, w, h, &script);
    }
    // Every viewer gets the current picture from the retained feed: the
    // three sites and the four alarms waiting for an acknowledgement.
    for user in ["alice", "bob", "mallory"] {
        let s = tmux.wait_for(user, "the fleet", SCREEN, |s| {
            s.contains("lyon-fill") && s.contains("OEE") && unacked(s) == Some(4)
        });
        if user == "alice" {
            println!("== fleet (alice, 160x48) ==\n{s}");
        }
        if user == "bob" {
            println!("== fleet (bob, 80x24) ==\n{s}");
        }
    }
    // alice: fleet → site → line in three keys.
    tmux.send_keys("alice", "Enter");
    // The site's lines are subscribed when its view opens: wait for them.
    let site = tmux.wait_for("alice", "the site view with its lines", SCREEN, |s| {
        s.contains("Six big losses") && s.contains("Top downtime") && first_row(s).is_some()
    });
    println!("== site ==\n{site}");
    tmux.send_keys("alice", "Down");
    tmux.send_keys("alice", "Enter");
    let line = tmux.wait_for("alice", "the line view", SCREEN, |s| {
        s.contains("State timeline") && s.contains("Counters, shift so far")
    });
    println!("== line ==\n{line}");
    for (key, what, needle) in [
        ("4", "energy", "Today so far"),
        ("5", "water", "USP <645>"),
        ("7", "health", "ingest"),
    ] {
        tmux.send_keys("alice", key);
        let s = tmux.wait_for("alice", what, SCREEN, |s| s.contains(needle));
        println!("== {what} ==\n{s}");
    }
    // The consoles, unacknowledged alarms only, the first one selected.
    for user in ["alice", "bob", "mallory"] {
        for k in ["6", "f", "Down"] {
            tmux.send_keys(user, k);
        }
        tmux.wait_for(user, "the console", SCREEN, |s| {
            s.contains("state unacked") && (s.contains("unack rtn") || s.contains("UNACK"))
        });
    }
    // mallory is not authorised: refused on her screen.
    tmux.send_keys("mallory", "a");
    let refused = tmux.wait_for("mallory", "the refusal", SCREEN, |s| s.contains("REFUSED"));
    assert!(
        refused.contains("user `mallory` may not acknowledge"),
        "{refused}"
    );
    println!("== mallory's refusal ==\n{refused}");
    // alice acknowledges; bob's viewer shows it within 2 s.
    let sent = Instant::now();
    tmux.send_keys("alice", "a");
    let (console, _) = tmux.time_until("alice", "alice's ack", sent, SCREEN, |s| {
        s.contains(": done") && unacked(s) == Some(3)
    });
    println!("== alarm console (alice) ==\n{console}");
    let (bob, took) = tmux.time_until("bob", "bob to see it", sent, SCREEN, |s| {
        unacked(s) == Some(3)
    });
    println!("bob saw the acknowledgement {took:?} after alice's key:\n{bob}");
    assert!(took < Duration::from_secs(2), "bob saw it after {took:?}");
    let acked_rule = console
        .split("acknowledge ")
        .nth(1)
        .and_then(|s| s.split(": done").next())
        .expect("the acknowledged alarm named")
        .to_string();

    // The trail: alice's acknowledgement with her name, mallory's refusal.
    let trail = dir.join("journal/audit.jsonl");
    let records = read_jsonl(&trail);
    let ack = records
        .iter()
        .find(|r| r["user"] == "alice" && r["action"] == "acknowledge")
        .unwrap_or_else(|| panic!("alice's ack in the trail: {records:#?}"));
    assert!(
        acked_rule.starts_with(ack["rule"].as_str().unwrap()),
        "{acked_rule} vs {ack}"
    );
    assert!(records
        .iter()
        .any(|r| r["user"] == "mallory" && r["action"] == "refused"));

    // The broker restarts and loses its retained messages (no
    // persistence): the engine publishes its whole state again, its
    // command topic works again, and the viewers come back to it.
    mq.restart();
    // The viewer noticed (it waits a second before connecting again).
    tmux.wait_for("alice", "the broker's loss shown", SCREEN, |s| {
        s.contains("DISCONNECTED")
    });
    ctower_testkit::wait::until(
        "the engine to publish its state again",
        Duration::from_secs(60),
        || {
            live.output()
                .iter()
                .any(|l| l.contains("connected again, publishing the whole state"))
        },
    );
    let back = tmux.wait_for(
        "alice",
        "the picture back after the broker's restart",
        Duration::from_secs(60),
        |s| !s.contains("DISCONNECTED") && unacked(s) == Some(3) && s.contains("Alarm console"),
    );
    println!("== alice after the broker's restart ==\n{back}");
    let listed = ctower()
        .args([
            "--log", "warn", "alarms", "list", "--broker", &inside, "--user", "alice",
        ])
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "the command topic after the broker's restart: {}",
        String::from_utf8_lossy(&listed.stderr)
    );

    // The engine dies: every viewer says so within 2 s.
    let killed = Instant::now();
    process::run_ok(
        Command::new("kill").args(["-KILL", &live.id().to_string()]),
        "kill -9 ctower",
        Duration::from_secs(10),
    );
    for user in ["alice", "bob"] {
        let (s, took) = tmux.time_until(user, "DISCONNECTED", killed, SCREEN, |s| {
            s.contains("DISCONNECTED")
        });
        println!("{user} saw the engine gone after {took:?}");
        assert!(took < Duration::from_secs(2), "{user}: {took:?}\n{s}");
    }
    live.wait_exit(RUN);
    assert_audit_verifies(&trail);
    // q quits each viewer; the terminal is given back.
    for user in ["alice", "bob", "mallory"] {
        tmux.send_keys(user, "q");
        tmux.wait_for(user, "the viewer to quit", SCREEN, |s| {
            s.starts_with("(no screen") || !s.contains("Fleet")
        });
    }
    drop(mq);
}
