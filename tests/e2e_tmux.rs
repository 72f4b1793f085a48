//! End to end, as a person runs it: the demo in a real terminal (tmux),
//! the dashboard in-process through the same feed as an attached viewer:
//! the three plants on the fleet, Enter drills into a site and a line, the
//! alarm console acknowledges an alarm as the process's user, `?` opens
//! the help and any key closes it, `q` quits cleanly, and the journal
//! holds the KPIs and the acknowledgement. Configuration overrides come
//! from `CTOWER__…` environment variables, so their layering is exercised
//! too.
//!
//! Every wait is on what the screen shows (or on the exit-code file), with
//! a deadline; no sleep stands in for readiness.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::tmux::Tmux;
use ctower_testkit::services::{self, TMUX};
use ctower_testkit::wait;
use std::path::Path;
use std::time::Duration;

/// The dashboard header's "data to …" timestamp, which moves as windows close.
fn data_time(screen: &str) -> Option<String> {
    let at = screen.find("data to ")?;
    Some(screen[at + 8..].chars().take(19).collect())
}

#[test]
fn demo_shows_three_plants_live_and_quits_cleanly() {
    let Some(bin) = services::require(&TMUX) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = dir.path().join("journal");
    let exit_file = dir.path().join("exit-code");
    let ctower = env!("CARGO_BIN_EXE_ctower");
    let root = env!("CARGO_MANIFEST_DIR");
    // 60x: a 60-s window closes about every second of wall time. The exit
    // code is written to a temporary file and renamed, so the file appears
    // complete, never half written.
    let script = format!(
        "cd '{root}' && CTOWER__JOURNAL__DIR='{}' CTOWER__DEAD_LETTERS__PATH='{}' '{ctower}' demo --speed 60 -w 2; \
         echo $? > '{exit}.tmp' && mv '{exit}.tmp' '{exit}'",
        journal.display(),
        dir.path().join("dead.jsonl").display(),
        exit = exit_file.display()
    );
    let tmux = Tmux {
        bin,
        socket: dir.path().join("tmux.sock"),
    };
    tmux.session("demo", 140, 45, &script);

    let first = tmux.wait_for(
        "demo",
        "three site tiles with OEE",
        Duration::from_secs(90),
        |s| {
            ["lyon-fill", "basel-api", "shanghai-pack"]
                .iter()
                .all(|site| s.contains(site))
                && s.contains("OEE")
                && data_time(s).is_some()
        },
    );
    let t0 = data_time(&first).expect("data time shown");
    let later = tmux.wait_for(
        "demo",
        "the dashboard to update",
        Duration::from_secs(60),
        |s| data_time(s).is_some_and(|t| t != t0),
    );
    println!("fleet:\n{later}");
    assert!(later.contains("in-process"), "the link shown:\n{later}");

    // Enter: the site under the cursor; ↓ Enter: its second line.
    tmux.send_keys("demo", "Enter");
    let site = tmux.wait_for("demo", "the site view", Duration::from_secs(10), |s| {
        s.contains("Lines of") && s.contains("Six big losses")
    });
    println!("site:\n{site}");
    tmux.send_keys("demo", "Down");
    tmux.send_keys("demo", "Enter");
    let line = tmux.wait_for("demo", "the line view", Duration::from_secs(10), |s| {
        s.contains("State timeline")
    });
    println!("line:\n{line}");

    // The alarm console (6), unacknowledged only (f), the first row (↓),
    // acknowledged (a) as the process's user; the engine answers.
    tmux.send_keys("demo", "6");
    tmux.send_keys("demo", "f");
    tmux.wait_for(
        "demo",
        "an unacknowledged alarm",
        Duration::from_secs(90),
        |s| s.contains("UNACK ACTIVE") || s.contains("unack rtn"),
    );
    tmux.send_keys("demo", "Down");
    tmux.send_keys("demo", "a");
    let acked = tmux.wait_for(
        "demo",
        "the acknowledgement",
        Duration::from_secs(30),
        |s| s.contains("acknowledge ") && s.contains(": done"),
    );
    println!("console:\n{acked}");

    // `?` opens the help, any key closes it, `q` quits. Each key waits for
    // the screen to show the previous one's effect: `q` sent right after
    // Esc could reach the demo as one Alt-q sequence.
    const HELP: &str = "Any key closes this help";
    assert!(!acked.contains(HELP), "help shown before `?`:\n{acked}");
    tmux.send_keys("demo", "?");
    tmux.wait_for("demo", "the help overlay", Duration::from_secs(10), |s| {
        s.contains(HELP)
    });
    tmux.send_keys("demo", "Escape");
    tmux.wait_for(
        "demo",
        "the help overlay to close",
        Duration::from_secs(10),
        |s| !s.contains(HELP) && s.contains("Alarm console"),
    );
    tmux.send_keys("demo", "q");
    wait::try_poll(Duration::from_secs(30), || exit_file.exists().then_some(())).unwrap_or_else(
        || {
            panic!(
                "the demo did not exit within 30 s after `q`; screen:\n{}",
                tmux.screen("demo")
            )
        },
    );
    let code = std::fs::read_to_string(&exit_file).expect("exit code");
    assert_eq!(code.trim(), "0", "the demo's exit code");

    let lp =
        std::fs::read_to_string(Path::new(&journal).join("ctower.lp")).expect("journal written");
    let kpi_lines = lp
        .lines()
        .filter(|l| l.starts_with("kpi,level=site,site="))
        .count();
    assert!(kpi_lines >= 6, "site KPIs in the journal: {kpi_lines}");
    assert!(
        lp.lines().all(|l| !l.contains("NaN")),
        "no NaN in line protocol"
    );
    assert!(
        lp.lines()
            .any(|l| l.starts_with("alarm,") && l.contains(",kind=acknowledged")),
        "the acknowledgement in the journal"
    );
}
