//! End to end, as a person runs it: the demo in a real terminal (tmux), the
//! dashboard shows the three plants and keeps updating, `q` quits cleanly,
//! and the journal holds the KPIs. Configuration overrides come from
//! `CTOWER__…` environment variables, so their layering is exercised too.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "demo"]).stdout)
            .into_owned()
    }

    /// Polls the screen until `pred` holds (a readiness wait with a deadline).
    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// The dashboard header's "data to …" timestamp, which moves as windows close.
fn data_time(screen: &str) -> Option<String> {
    let at = screen.find("data to ")?;
    Some(screen[at + 8..].chars().take(19).collect())
}

#[test]
fn demo_shows_three_plants_live_and_quits_cleanly() {
    if !tmux_available() {
        if std::env::var("CTOWER_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("tmux is required for this test: apt-get install tmux (or run bash .ci/run)");
        }
        eprintln!("SKIPPED demo_shows_three_plants_live_and_quits_cleanly: tmux not installed (apt-get install tmux)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = dir.path().join("journal");
    let exit_file = dir.path().join("exit-code");
    let bin = env!("CARGO_BIN_EXE_ctower");
    let root = env!("CARGO_MANIFEST_DIR");
    // 60x: a 60-s window closes about every second of wall time.
    let script = format!(
        "cd '{root}' && CTOWER__JOURNAL__DIR='{}' CTOWER__DEAD_LETTERS__PATH='{}' '{bin}' demo --speed 60 -w 2; echo $? > '{}'",
        journal.display(),
        dir.path().join("dead.jsonl").display(),
        exit_file.display()
    );
    let tmux = Tmux {
        socket: format!("ctower-e2e-{}", std::process::id()),
    };
    let out = tmux.cmd(&[
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
    assert!(
        out.status.success(),
        "tmux new-session: {}",
        String::from_utf8_lossy(&out.stderr)
    );

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

    // `?` opens the key list, Esc closes it, `q` quits.
    tmux.cmd(&["send-keys", "-t", "demo", "?"]);
    tmux.wait_for("the help overlay", Duration::from_secs(10), |s| {
        s.contains("Esc")
    });
    tmux.cmd(&["send-keys", "-t", "demo", "Escape"]);
    tmux.cmd(&["send-keys", "-t", "demo", "q"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !exit_file.exists() {
        assert!(
            Instant::now() < deadline,
            "the demo did not exit after `q`; screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = std::fs::read_to_string(&exit_file).expect("exit code");
    assert_eq!(code.trim(), "0", "exit code; screen:\n{}", tmux.screen());

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
}
