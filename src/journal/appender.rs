//! The journal file: whole window batches appended durably, or not at all.
//!
//! Policy (README, "The journal"):
//! - **Batches.** Lines are appended to an in-memory batch; `commit` writes
//!   the batch at the file's durable length and then `fdatasync`s it. The
//!   caller commits once per closed window, so a window's lines reach the
//!   disk together.
//! - **All or nothing.** If the write or the sync fails (a full disk, a file
//!   size limit, an I/O error), the file is truncated back to its durable
//!   length: no torn line stays behind, and no later line is glued onto one.
//! - **Torn tail.** A crash can still cut the last line short (the process
//!   dies between `write` and the truncate). `open` truncates the file back
//!   to its last newline and logs what it dropped.
//! - **Backlog.** The lines of failed commits stay in memory and are retried
//!   at the next commit (a full disk may free up), in their order. The
//!   backlog is bounded in bytes ([`DEFAULT_MAX_BACKLOG_BYTES`]); past the
//!   bound the oldest lines are dropped and counted, never silently.
//! - **Rotation.** Past [`Retention::max_file_bytes`] the file is rotated
//!   at a commit (a window never spans two files) and old rotated files
//!   are pruned by age and total size ([`super::rotate`]).
//! - **Loud, not noisy.** One error log when commits start failing (path and
//!   OS error), one info log when they succeed again (with counts);
//!   [`Journal::health`] tells the rest at any time.

use super::rotate::{self, Retention};
use super::{alarm_line, output_line};
use ctower_model::{AlarmEvent, StreamOutput};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Default bound of the in-memory backlog: 64 MiB, about 50 000 KPI lines
/// (≈ 1.3 KB each), so minutes to hours of windows depending on the number
/// of assets, and a bounded share of the machine's memory.
pub const DEFAULT_MAX_BACKLOG_BYTES: usize = 64 << 20;

/// A journal failure. Every variant names the file (or directory) and
/// carries the OS error; its message holds both, so one log line says
/// everything.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open the journal {}: {os}", path.display())]
    Open { path: PathBuf, os: std::io::Error },
    #[error("cannot repair the torn last line of the journal {}: {os}", path.display())]
    Repair { path: PathBuf, os: std::io::Error },
    #[error("cannot append to the journal {}: {os}", path.display())]
    Write { path: PathBuf, os: std::io::Error },
    #[error("cannot sync the journal {} to disk: {os}", path.display())]
    Sync { path: PathBuf, os: std::io::Error },
}

#[cfg_attr(not(test), allow(dead_code))] // the tests read them
impl JournalError {
    pub fn path(&self) -> &Path {
        match self {
            JournalError::Open { path, .. }
            | JournalError::Repair { path, .. }
            | JournalError::Write { path, .. }
            | JournalError::Sync { path, .. } => path,
        }
    }

    /// The OS error (not a `source()`: the message already includes it,
    /// and a chain would print it twice).
    pub fn os_error(&self) -> &std::io::Error {
        match self {
            JournalError::Open { os, .. }
            | JournalError::Repair { os, .. }
            | JournalError::Write { os, .. }
            | JournalError::Sync { os, .. } => os,
        }
    }
}

/// The journal's state, for the dashboard, the alarm and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalHealth {
    pub path: PathBuf,
    /// `None` while the last commit succeeded; otherwise the caller's time
    /// (`now_ms` of [`Journal::commit`]) of the first failed commit of the
    /// current failure.
    pub failing_since_ms: Option<i64>,
    /// The message of the most recent failure, kept after a recovery.
    pub last_error: Option<String>,
    /// Lines appended but not yet durable: the open batch plus what failed
    /// commits left.
    pub backlog_lines: usize,
    pub backlog_bytes: usize,
    /// Lines durably appended since `open`.
    pub lines_written: u64,
    /// Lines dropped from the backlog (oldest first) to keep it in bound.
    pub lines_dropped: u64,
}

impl JournalHealth {
    pub fn ok(&self) -> bool {
        self.failing_since_ms.is_none()
    }
}

struct Failure {
    since_ms: i64,
    commits: u64,
    dropped_at_start: u64,
}

/// The line-protocol journal of one directory (`ctower.lp` and its rotated
/// files): window batches appended by [`Journal::commit`], durably or not
/// at all, under the policy above.
pub struct Journal {
    dir: PathBuf,
    path: PathBuf,
    retention: Retention,
    /// Whether the current run of rotation failures was logged.
    rotate_failure_logged: bool,
    file: File,
    /// Length of the file after the last successful commit (or the repair
    /// at open): whole lines, synced. Every write starts here.
    durable_len: u64,
    /// Bytes past `durable_len` may be on disk: a commit failed and the
    /// truncate back failed too. The next commit truncates first.
    dirty_tail: bool,
    /// Lines not yet durable, oldest first, each ending in `\n`.
    pending: VecDeque<String>,
    pending_bytes: usize,
    max_backlog_bytes: usize,
    failure: Option<Failure>,
    last_error: Option<String>,
    lines_written: u64,
    lines_dropped: u64,
    /// Whether the current run of drops was logged (one warning per run).
    drop_logged: bool,
}

impl Journal {
    /// Opens (or creates) `DIR/ctower.lp`, cutting a torn last line.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(dir).map_err(|os| JournalError::Open {
            path: dir.to_path_buf(),
            os,
        })?;
        let path = dir.join(rotate::LIVE);
        let open_err = |os| JournalError::Open {
            path: path.clone(),
            os,
        };
        let existed = path.try_exists().map_err(open_err)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(open_err)?;
        if !existed {
            // A new file's directory entry is durable only once the directory is synced.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|os| JournalError::Sync {
                    path: dir.to_path_buf(),
                    os,
                })?;
        }
        let durable_len = repair_torn_tail(&mut file, &path)?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            path,
            retention: Retention::default(),
            rotate_failure_logged: false,
            file,
            durable_len,
            dirty_tail: false,
            pending: VecDeque::new(),
            pending_bytes: 0,
            max_backlog_bytes: DEFAULT_MAX_BACKLOG_BYTES,
            failure: None,
            last_error: None,
            lines_written: 0,
            lines_dropped: 0,
            drop_logged: false,
        })
    }

    /// Sets the backlog bound in bytes (default [`DEFAULT_MAX_BACKLOG_BYTES`]).
    pub fn with_max_backlog_bytes(mut self, bytes: usize) -> Journal {
        self.max_backlog_bytes = bytes;
        self
    }

    /// Sets the rotation and retention (default [`Retention::default`]).
    pub fn with_retention(mut self, retention: Retention) -> Journal {
        self.retention = retention;
        self
    }

    /// The live file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds a KPI record or signal statistic to the open batch.
    pub fn append_output(&mut self, o: &StreamOutput) {
        let mut line = String::with_capacity(1024);
        output_line(o, &mut line);
        self.push_line(line);
    }

    /// Adds an alarm event to the open batch.
    pub fn append_alarm(&mut self, a: &AlarmEvent) {
        let mut line = String::with_capacity(256);
        alarm_line(a, &mut line);
        self.push_line(line);
    }

    fn push_line(&mut self, mut line: String) {
        line.push('\n');
        self.pending_bytes += line.len();
        self.pending.push_back(line);
        self.enforce_bound();
    }

    /// Drops the oldest lines until the backlog is within its bound.
    fn enforce_bound(&mut self) {
        let mut dropped = 0u64;
        while self.pending_bytes > self.max_backlog_bytes {
            let Some(old) = self.pending.pop_front() else {
                break;
            };
            self.pending_bytes -= old.len();
            dropped += 1;
        }
        if dropped == 0 {
            return;
        }
        self.lines_dropped += dropped;
        if !self.drop_logged {
            self.drop_logged = true;
            tracing::warn!(
                path = %self.path.display(),
                max_backlog_bytes = self.max_backlog_bytes,
                dropped,
                "journal backlog full: dropping its oldest lines (counted in the journal health)"
            );
        }
    }

    /// Writes the open batch and the backlog, then syncs (`fdatasync`).
    /// On success every appended line is durable; on failure the file is
    /// back at its last durable length, the lines stay in the backlog for
    /// the next commit, and the error names the file. `now_ms` is the
    /// caller's clock, used only for [`JournalHealth::failing_since_ms`].
    pub fn commit(&mut self, now_ms: i64) -> Result<(), JournalError> {
        if self.pending.is_empty() && self.failure.is_none() && !self.dirty_tail {
            return Ok(());
        }
        match self.write_pending() {
            Ok(bytes) => {
                let lines = self.pending.len() as u64;
                self.durable_len += bytes;
                self.lines_written += lines;
                self.pending.clear();
                self.pending_bytes = 0;
                self.drop_logged = false;
                if let Some(f) = self.failure.take() {
                    tracing::info!(
                        path = %self.path.display(),
                        failing_since_ms = f.since_ms,
                        failed_commits = f.commits,
                        lines_recovered = lines,
                        lines_dropped = self.lines_dropped - f.dropped_at_start,
                        "journal writable again: backlog written"
                    );
                }
                if self.durable_len >= self.retention.max_file_bytes {
                    self.rotate(now_ms);
                }
                Ok(())
            }
            Err(e) => {
                // Cut what the failed write left (a torn line, or whole
                // lines whose sync failed: after a failed fsync the kernel
                // may have dropped those pages, so only a rewrite is sure)
                // so the next write starts at a line boundary. If even that
                // fails, the next commit truncates before writing, and a
                // restart repairs the tail; the failure itself is logged
                // below, so this is only a debug line.
                match self.file.set_len(self.durable_len) {
                    Ok(()) => self.dirty_tail = false,
                    Err(os) => {
                        self.dirty_tail = true;
                        tracing::debug!(path = %self.path.display(), error = %os, "journal truncate after a failed write failed");
                    }
                }
                match &mut self.failure {
                    Some(f) => f.commits += 1,
                    None => {
                        tracing::error!(
                            path = %self.path.display(),
                            error = %e,
                            backlog_lines = self.pending.len(),
                            max_backlog_bytes = self.max_backlog_bytes,
                            "journal write failed: keeping lines in memory and retrying at every commit"
                        );
                        self.failure = Some(Failure {
                            since_ms: now_ms,
                            commits: 1,
                            dropped_at_start: self.lines_dropped,
                        });
                    }
                }
                self.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// The write and sync of one commit; returns the bytes made durable.
    fn write_pending(&mut self) -> Result<u64, JournalError> {
        let write_err = |os| JournalError::Write {
            path: self.path.clone(),
            os,
        };
        if self.dirty_tail {
            self.file.set_len(self.durable_len).map_err(write_err)?;
            self.dirty_tail = false;
        }
        let mut f = &self.file;
        f.seek(SeekFrom::Start(self.durable_len))
            .map_err(write_err)?;
        let mut w = BufWriter::with_capacity(64 << 10, f);
        let written = self
            .pending
            .iter()
            .try_for_each(|line| w.write_all(line.as_bytes()))
            .and_then(|()| w.flush());
        // Never let the BufWriter's drop retry a failed write behind our back.
        let _ = w.into_parts();
        written.map_err(write_err)?;
        // fdatasync, not fsync: the file's length is part of the data it
        // syncs; the mtime is not worth a second disk write.
        self.file.sync_data().map_err(|os| JournalError::Sync {
            path: self.path.clone(),
            os,
        })?;
        Ok(self.pending_bytes as u64)
    }

    /// Rotates the live file and prunes old ones. A failure is logged (once
    /// per run of failures) and retried at the next commit; the live file
    /// stays usable either way.
    fn rotate(&mut self, now_ms: i64) {
        let reopened = rotate::rotate(&self.dir, now_ms).and_then(|rotated| {
            let Some(rotated) = rotated else {
                return Ok(None);
            };
            // A new live file; its directory entry is synced by `open`.
            let fresh =
                Journal::open(&self.dir).map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok(Some((rotated, fresh.file)))
        });
        let pruned =
            reopened.and_then(|r| Ok((r, rotate::prune(&self.dir, now_ms, &self.retention)?)));
        match pruned {
            Ok((Some((rotated, file)), pruned)) => {
                self.file = file;
                self.durable_len = 0;
                self.rotate_failure_logged = false;
                tracing::info!(rotated = %rotated.display(), pruned, "journal rotated");
            }
            Ok((None, _)) => {}
            Err(e) if !self.rotate_failure_logged => {
                self.rotate_failure_logged = true;
                tracing::warn!(dir = %self.dir.display(), error = %e, "journal rotation failed: writing on in the same file, retrying at the next commit");
            }
            Err(_) => {}
        }
    }

    /// The journal's state now.
    pub fn health(&self) -> JournalHealth {
        JournalHealth {
            path: self.path.clone(),
            failing_since_ms: self.failure.as_ref().map(|f| f.since_ms),
            last_error: self.last_error.clone(),
            backlog_lines: self.pending.len(),
            backlog_bytes: self.pending_bytes,
            lines_written: self.lines_written,
            lines_dropped: self.lines_dropped,
        }
    }
}

/// Cuts the file back to its last newline if it does not end with one (a
/// crash in the middle of a write); returns the length kept.
fn repair_torn_tail(file: &mut File, path: &Path) -> Result<u64, JournalError> {
    let err = |os| JournalError::Repair {
        path: path.to_path_buf(),
        os,
    };
    let len = file.metadata().map_err(err)?.len();
    let mut end = len;
    let mut buf = vec![0u8; 64 << 10];
    let keep = loop {
        if end == 0 {
            break 0;
        }
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start)).map_err(err)?;
        file.read_exact(chunk).map_err(err)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            break start + i as u64 + 1;
        }
        end = start;
    };
    if keep < len {
        file.set_len(keep).map_err(err)?;
        file.sync_data().map_err(err)?;
        tracing::warn!(
            path = %path.display(),
            bytes_dropped = len - keep,
            kept_bytes = keep,
            "journal ended in a torn line (a crash or a full disk cut it short): truncated to the last whole line"
        );
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::signal_line;
    use ctower_model::{AssetKey, Role, SignalWindow};
    use influxdb_line_protocol::{parse_lines, FieldValue};

    /// A signal line whose `count` field is `n`: the lines' identity in
    /// these tests. From 100 001 on, every line has the same length.
    fn sig(n: u64) -> StreamOutput {
        StreamOutput::Signal(SignalWindow {
            window_start_ms: 0,
            window_end_ms: 60_000,
            asset: AssetKey::new("lyon-fill", "aseptic", "fill-1", "filler"),
            signal: "temp".into(),
            role: Role::PowerKw,
            count: n,
            min: 1.0,
            max: 2.0,
            mean: 1.5,
            last: 2.0,
        })
    }

    fn line_len() -> usize {
        let StreamOutput::Signal(s) = sig(100_001) else {
            unreachable!()
        };
        let mut line = String::new();
        signal_line(&s, &mut line);
        line.len() + 1
    }

    /// The `count` of every line of the file, checking that the file ends
    /// with a newline and that each line parses on its own as line protocol
    /// (a torn or glued line does not).
    fn counts(path: &Path) -> Vec<u64> {
        let text = std::fs::read_to_string(path).expect("journal readable");
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "torn last line: {text:?}"
        );
        text.lines()
            .map(|line| {
                let parsed: Vec<_> = parse_lines(line).collect();
                match parsed.as_slice() {
                    [Ok(p)] => match p.field_value("count") {
                        Some(FieldValue::I64(n)) => *n as u64,
                        other => panic!("count {other:?} in {line:?}"),
                    },
                    other => panic!("not one line-protocol point: {line:?}: {other:?}"),
                }
            })
            .collect()
    }

    /// Past the file size the journal rotates at a commit: each window
    /// whole in one file, none lost, the oldest rotated files pruned.
    #[test]
    fn rotates_at_a_commit_and_prunes_by_total_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let retention = Retention {
            max_file_bytes: 3 * line_len() as u64,
            max_age_ms: i64::MAX,
            max_total_bytes: 7 * line_len() as u64,
        };
        let mut j = Journal::open(dir.path())
            .expect("open")
            .with_retention(retention);
        // Windows of two lines, one a second: the file rotates after
        // windows 1 and 3; window 4 stays in the live file.
        for w in 0..5u64 {
            j.append_output(&sig(100_001 + 2 * w));
            j.append_output(&sig(100_002 + 2 * w));
            j.commit(1_772_430_600_000 + 1_000 * w as i64)
                .expect("commit");
        }
        let rotated = rotate::list(dir.path()).expect("list");
        // 8 rotated lines are more than 7: the older file was pruned.
        assert_eq!(rotated.len(), 1, "{rotated:?}");
        assert_eq!(rotated[0].name, "ctower-20260302T055003Z.lp");
        let path = dir.path().join(&rotated[0].name);
        assert_eq!(counts(&path), [100_005, 100_006, 100_007, 100_008]);
        assert_eq!(counts(j.path()), [100_009, 100_010]);
        assert!(j.health().ok());
    }

    #[test]
    fn open_cuts_a_torn_last_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ctower.lp");
        let mut whole = String::new();
        for n in [100_001, 100_002] {
            let StreamOutput::Signal(s) = sig(n) else {
                unreachable!()
            };
            signal_line(&s, &mut whole);
            whole.push('\n');
        }
        // A write cut short: the start of a third line, no newline.
        let torn = format!("{whole}signal,site=lyon-fill count=10");
        std::fs::write(&path, &torn).expect("write");

        let mut j = Journal::open(dir.path()).expect("open");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), whole);
        // The next line starts on its own line instead of being glued on.
        j.append_output(&sig(100_003));
        j.commit(0).expect("commit");
        assert_eq!(counts(&path), [100_001, 100_002, 100_003]);

        // A file that is one torn line, longer than the 64 KiB the repair
        // reads at a time, is emptied.
        std::fs::write(&path, "x".repeat(200_000)).expect("write");
        drop(Journal::open(dir.path()).expect("open"));
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), 0);

        // A whole line far before a long torn tail is kept.
        std::fs::write(&path, format!("{whole}{}", "y".repeat(150_000))).expect("write");
        drop(Journal::open(dir.path()).expect("open"));
        assert_eq!(counts(&path), [100_001, 100_002]);

        // A file that ends with a newline is left as it is.
        drop(Journal::open(dir.path()).expect("open"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), whole);
    }

    #[test]
    fn commits_append_whole_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::open(dir.path()).expect("open");
        assert_eq!(j.path(), dir.path().join("ctower.lp"));
        j.append_output(&sig(100_001));
        j.append_output(&sig(100_002));
        assert_eq!(counts(j.path()), [0u64; 0], "nothing before the commit");
        assert_eq!(j.health().backlog_lines, 2);
        j.commit(1_000).expect("commit");
        j.commit(2_000).expect("an empty commit is a no-op");
        j.append_output(&sig(100_003));
        j.commit(3_000).expect("commit");
        assert_eq!(counts(j.path()), [100_001, 100_002, 100_003]);
        let h = j.health();
        assert!(h.ok());
        assert_eq!(
            h,
            JournalHealth {
                path: dir.path().join("ctower.lp"),
                failing_since_ms: None,
                last_error: None,
                backlog_lines: 0,
                backlog_bytes: 0,
                lines_written: 3,
                lines_dropped: 0,
            }
        );
        // Reopening appends after what is there.
        drop(j);
        let mut j = Journal::open(dir.path()).expect("reopen");
        j.append_output(&sig(100_004));
        j.commit(4_000).expect("commit");
        assert_eq!(counts(j.path()), [100_001, 100_002, 100_003, 100_004]);
    }

    #[test]
    fn backlog_bound_drops_the_oldest_lines_and_counts_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut j = Journal::open(dir.path())
            .expect("open")
            .with_max_backlog_bytes(2 * line_len());
        for n in 100_001..=100_005 {
            j.append_output(&sig(n));
        }
        let h = j.health();
        assert_eq!((h.backlog_lines, h.lines_dropped), (2, 3));
        j.commit(0).expect("commit");
        assert_eq!(counts(j.path()), [100_004, 100_005]);
        assert_eq!(j.health().lines_written, 2);
    }

    const FULL_DISK_DIR: &str = "CTOWER_TEST_FULL_DISK_DIR";

    /// A full disk, for real: a child process (this test binary running
    /// `full_disk_child` alone) gets a file size limit (`RLIMIT_FSIZE`, with
    /// SIGXFSZ ignored), so writes past it fail with EFBIG after a partial
    /// write, exactly the torn line a full disk leaves. The limit is per
    /// process, hence the child: the other tests here keep writing files.
    /// Here, the parent checks what the child left on the real file
    /// system and what it logged.
    #[cfg(unix)]
    #[test]
    fn full_disk_fails_loudly_keeps_the_lines_and_recovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let test = concat!(module_path!(), "::full_disk_child");
        let test = test.split_once("::").map_or(test, |(_, rest)| rest);
        let exe = std::env::current_exe().expect("test binary");
        // The child ignores SIGXFSZ (past the limit, write() then fails with
        // EFBIG instead of the process being killed): set by the shell and
        // kept across exec, so the test needs no unsafe code.
        let out = std::process::Command::new("sh")
            .args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\""])
            .arg(exe)
            .args([
                test,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(FULL_DISK_DIR, dir.path())
            .output()
            .expect("run the child test");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child failed:\n{stdout}\n{stderr}"
        );
        let path = dir.path().join("ctower.lp");
        let path_s = path.display().to_string();
        // Every line whole and parseable; the dropped ones (3, 4, 5) absent.
        let expected: Vec<u64> = [1, 2, 6, 7, 8, 9, 10, 11, 12, 13]
            .iter()
            .map(|n| 100_000 + n)
            .collect();
        assert_eq!(counts(&path), expected);
        // Logged once when failing (error, path, OS error), once when the
        // backlog fills, once on recovery: not once per commit or line.
        let logged =
            |what: &str| -> Vec<&str> { stderr.lines().filter(|l| l.contains(what)).collect() };
        let failed = logged("journal write failed");
        assert_eq!(failed.len(), 1, "{stderr}");
        assert!(failed[0].contains("ERROR"), "{}", failed[0]);
        assert!(failed[0].contains(&path_s), "{}", failed[0]);
        assert!(failed[0].contains("File too large"), "{}", failed[0]);
        assert_eq!(logged("journal backlog full").len(), 1, "{stderr}");
        let recovered = logged("journal writable again");
        assert_eq!(recovered.len(), 1, "{stderr}");
        assert!(
            recovered[0].contains("failed_commits=3"),
            "{}",
            recovered[0]
        );
        assert!(recovered[0].contains("lines_dropped=3"), "{}", recovered[0]);
    }

    /// Sets the soft file size limit of this process (`None`: back to the
    /// hard limit, the way a full disk frees up).
    #[cfg(unix)]
    fn set_file_size_limit(bytes: Option<u64>) {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let hard = getrlimit(Resource::Fsize).maximum;
        let current = match (bytes, hard) {
            (Some(b), Some(h)) => Some(b.min(h)),
            (Some(b), None) => Some(b),
            (None, h) => h,
        };
        setrlimit(
            Resource::Fsize,
            Rlimit {
                current,
                maximum: hard,
            },
        )
        .expect("setrlimit(RLIMIT_FSIZE)");
    }

    /// The child half of the full-disk test; does nothing unless run by it.
    #[cfg(unix)]
    #[test]
    #[ignore = "run by full_disk_fails_loudly_keeps_the_lines_and_recovers in a child process"]
    fn full_disk_child() {
        let Some(dir) = std::env::var_os(FULL_DISK_DIR) else {
            eprintln!("full_disk_child: run by its parent test only, nothing to do");
            return;
        };
        let dir = PathBuf::from(dir);
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .try_init();
        let l = line_len() as u64;
        let mut j = Journal::open(&dir)
            .expect("open")
            .with_max_backlog_bytes(8 * line_len());
        let path = j.path().to_path_buf();
        j.append_output(&sig(100_001));
        j.append_output(&sig(100_002));
        j.commit(1_000).expect("commit before the disk fills");
        let durable = 2 * l;

        // The disk fills in the middle of the next batch: two and a half of
        // its four lines would fit.
        set_file_size_limit(Some(durable + 2 * l + l / 2));
        for n in 100_003..=100_006 {
            j.append_output(&sig(n));
        }
        let e = j.commit(2_000).expect_err("the disk is full");
        assert!(matches!(e, JournalError::Write { .. }), "{e}");
        assert_eq!(e.path(), path);
        assert_eq!(
            e.os_error().raw_os_error(),
            Some(rustix::io::Errno::FBIG.raw_os_error())
        );
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        // Back at the last durable length: no torn line, nothing unsynced.
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), durable);
        let h = j.health();
        assert!(!h.ok());
        assert_eq!(h.failing_since_ms, Some(2_000));
        assert_eq!(h.last_error, Some(e.to_string()));
        assert_eq!(
            (h.backlog_lines, h.lines_written, h.lines_dropped),
            (4, 2, 0)
        );

        // Still full: the next windows pile up in the backlog, then its
        // oldest lines go (bound: 8 lines).
        for n in 100_007..=100_009 {
            j.append_output(&sig(n));
        }
        j.commit(3_000).expect_err("still full");
        for n in 100_010..=100_012 {
            j.append_output(&sig(n));
        }
        j.commit(4_000).expect_err("still full");
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), durable);
        let h = j.health();
        assert_eq!(h.failing_since_ms, Some(2_000), "since the first failure");
        assert_eq!((h.backlog_lines, h.lines_dropped), (8, 2));

        // Space frees up: the next commit writes the backlog, in order.
        set_file_size_limit(None);
        j.append_output(&sig(100_013));
        j.commit(5_000).expect("the disk has room again");
        let h = j.health();
        assert!(h.ok(), "{h:?}");
        assert_eq!(h.last_error, Some(e.to_string()), "kept after recovery");
        assert_eq!(
            (h.backlog_lines, h.lines_written, h.lines_dropped),
            (0, 10, 3)
        );
        assert_eq!(counts(&path).len(), 10);
    }
}
