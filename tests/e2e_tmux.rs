//! End to end, as a person runs it: the demo in a real terminal (tmux), the
//! dashboard shows the three plants and keeps updating, `?` opens the key
//! list and Esc closes it, `q` quits cleanly, and the journal holds the
//! KPIs. Configuration overrides come from `CTOWER__…` environment
//! variables, so their layering is exercised too.
//!
//! Every wait is on what the screen shows (or on the exit-code file), with
//! a deadline; no sleep stands in for readiness.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

use ctower_testkit::services::{self, TMUX};
use ctower_testkit::{process, wait};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// One tmux client command (they return at once; the margin is for a
/// loaded machine).
const TMUX_COMMAND: Duration = Duration::from_secs(10);

/// A tmux server of our own, killed on drop. Its socket is in the test's
/// temporary directory (`-S`), so nothing is left behind in tmux's own
/// socket directory.
struct Tmux {
    bin: PathBuf,
    socket: PathBuf,
}

impl Tmux {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        // Outside any tmux the test may run in: `TMUX` would make the new
        // session a nested one.
        c.env_remove("TMUX").arg("-S").arg(&self.socket).args(args);
        c
    }

    /// Runs a tmux command within [`TMUX_COMMAND`] and returns its output,
    /// whatever its status.
    fn run(&self, args: &[&str]) -> Output {
        process::run(
            &mut self.command(args),
            &format!("tmux {}", args.join(" ")),
            TMUX_COMMAND,
        )
    }

    /// Runs a tmux command that must succeed.
    fn run_ok(&self, args: &[&str]) -> Output {
        process::run_ok(
            &mut self.command(args),
            &format!("tmux {}", args.join(" ")),
            TMUX_COMMAND,
        )
    }

    fn send_keys(&self, key: &str) {
        self.run_ok(&["send-keys", "-t", "demo", key]);
    }

    /// The pane's text; once the demo has exited the pane is gone, and this
    /// says so instead.
    fn screen(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", "demo"]);
        if out.status.success() {
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            format!(
                "(no screen: {})",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        }
    }

    /// Polls the screen until `pred` holds (a readiness wait with a
    /// deadline) and returns it; past the deadline, fails with the last
    /// screen.
    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        match wait::try_poll(timeout, || {
            last = self.screen();
            pred(&last).then(|| last.clone())
        }) {
            Some(screen) => screen,
            None => panic!("timed out after {timeout:?} waiting for {what}; screen:\n{last}"),
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Never panics (this may run while a failure unwinds): ends the
        // demo if it still runs.
        let _ = process::try_run(&mut self.command(&["kill-server"]), TMUX_COMMAND);
    }
}

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
    tmux.run_ok(&[
        "new-session",
        "-d",
        "-s",
        "demo",
        "-x",
        "140",
        "-y",
        "45",
        &script,
    ]);

    let first = tmux.wait_for("three site tiles with OEE", Duration::from_secs(90), |s| {
        ["lyon-fill", "basel-api", "shanghai-pack"]
            .iter()
            .all(|site| s.contains(site))
            && s.contains("OEE")
            && data_time(s).is_some()
    });
    let t0 = data_time(&first).expect("data time shown");
    let later = tmux.wait_for("the dashboard to update", Duration::from_secs(60), |s| {
        data_time(s).is_some_and(|t| t != t0)
    });
    println!("dashboard:\n{later}");
    assert!(
        later.contains("Lines of"),
        "the line table of the selected site:\n{later}"
    );
    assert!(
        later.contains("msg/s"),
        "self-metrics in the header:\n{later}"
    );

    // Issue #9: an operator acknowledges an alarm from the dashboard (↓ puts
    // the cursor on the first row, `a` acknowledges it); the tower answers
    // with the acknowledgement, shown and journaled.
    tmux.wait_for("an unacknowledged alarm", Duration::from_secs(90), |s| {
        s.contains("UNACK")
    });
    tmux.send_keys("Down");
    tmux.send_keys("a");
    tmux.wait_for("the acknowledgement", Duration::from_secs(30), |s| {
        s.contains("acknowledged ") && s.contains("ACKED")
    });

    // `?` opens the key list, Esc closes it, `q` quits. Each key waits for
    // the screen to show the previous one's effect: `q` sent right after
    // Esc could reach the demo as one Alt-q sequence.
    const HELP: &str = "close help, else quit";
    assert!(!later.contains(HELP), "help shown before `?`:\n{later}");
    tmux.send_keys("?");
    tmux.wait_for("the help overlay", Duration::from_secs(10), |s| {
        s.contains(HELP)
    });
    tmux.send_keys("Escape");
    tmux.wait_for("the help overlay to close", Duration::from_secs(10), |s| {
        !s.contains(HELP) && s.contains("OEE")
    });
    tmux.send_keys("q");
    wait::try_poll(Duration::from_secs(30), || exit_file.exists().then_some(())).unwrap_or_else(
        || {
            panic!(
                "the demo did not exit within 30 s after `q`; screen:\n{}",
                tmux.screen()
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
