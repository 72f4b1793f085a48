//! A tmux server of a test's own, to run the real binaries in real
//! terminals and read their screens (`capture-pane`). Every wait is on
//! what a screen shows, with a deadline; no sleep stands in for readiness.

use ctower_testkit::{process, wait};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// One tmux client command (they return at once; the margin is for a
/// loaded machine).
const TMUX_COMMAND: Duration = Duration::from_secs(10);

/// A tmux server killed on drop. Its socket is in the test's temporary
/// directory (`-S`), so nothing is left in tmux's own socket directory.
pub struct Tmux {
    pub bin: PathBuf,
    pub socket: PathBuf,
}

impl Tmux {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        // Outside any tmux the test may run in: `TMUX` would make the new
        // session a nested one.
        c.env_remove("TMUX").arg("-S").arg(&self.socket).args(args);
        c
    }

    /// Runs a tmux command within [`TMUX_COMMAND`], whatever its status.
    pub fn run(&self, args: &[&str]) -> Output {
        process::run(
            &mut self.command(args),
            &format!("tmux {}", args.join(" ")),
            TMUX_COMMAND,
        )
    }

    /// Runs a tmux command that must succeed.
    pub fn run_ok(&self, args: &[&str]) -> Output {
        process::run_ok(
            &mut self.command(args),
            &format!("tmux {}", args.join(" ")),
            TMUX_COMMAND,
        )
    }

    /// A detached session `name` of `w`×`h` running `script` (sh -c).
    pub fn session(&self, name: &str, w: u16, h: u16, script: &str) {
        self.run_ok(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
            script,
        ]);
    }

    pub fn send_keys(&self, session: &str, key: &str) {
        self.run_ok(&["send-keys", "-t", session, key]);
    }

    /// The pane's text; once the program has exited the pane is gone, and
    /// this says so instead.
    pub fn screen(&self, session: &str) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", session]);
        if out.status.success() {
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            format!(
                "(no screen: {})",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        }
    }

    /// Polls the screen until `pred` holds and returns it; past the
    /// deadline, fails with the last screen.
    pub fn wait_for(
        &self,
        session: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let mut last = String::new();
        match wait::try_poll(timeout, || {
            last = self.screen(session);
            pred(&last).then(|| last.clone())
        }) {
            Some(screen) => screen,
            None => panic!(
                "timed out after {timeout:?} waiting for {what}; screen of {session}:\n{last}"
            ),
        }
    }

    /// [`Tmux::wait_for`], also saying how long it took from `since`.
    pub fn time_until(
        &self,
        session: &str,
        what: &str,
        since: Instant,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> (String, Duration) {
        let s = self.wait_for(session, what, timeout, pred);
        (s, since.elapsed())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Never panics (this may run while a failure unwinds).
        let _ = process::try_run(&mut self.command(&["kill-server"]), TMUX_COMMAND);
    }
}
