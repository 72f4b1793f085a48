//! The dead-letter file: every refused message with its topic, reason and
//! payload, one JSON object per line, so nothing refused is lost.
//!
//! ```text
//! {"recv_ms":…,"source":"plant-a","topic":"…","reason":"wrong_type","detail":"…","payload":"…","payload_bytes":27}
//! ```
//! Non-UTF-8 payloads are written as `payload_b64`. A payload longer than
//! [`PAYLOAD_PREFIX_BYTES`] is cut to that prefix (`payload_truncated: true`);
//! `payload_bytes` is always the size of the whole payload.

use crate::decode::Reason;
use crate::CollectorError;
use base64::Engine;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Payload bytes kept in a dead letter. An oversized payload (up to
/// 16 MiB by configuration, or cut by its source) would otherwise be
/// written whole for each refusal; the first 4 KiB show what it was.
pub const PAYLOAD_PREFIX_BYTES: usize = 4096;

#[derive(Serialize)]
struct Line<'a> {
    recv_ms: i64,
    source: &'a str,
    topic: &'a str,
    reason: &'static str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_b64: Option<String>,
    /// Size of the whole payload, bytes.
    payload_bytes: usize,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    payload_truncated: bool,
}

/// The state of a [`DeadLetterFile`], for logs and the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterHealth {
    /// The dead-letter file.
    pub path: PathBuf,
    /// Dead letters written.
    pub written: u64,
    /// Dead letters that could not be written (counted by their caller
    /// all the same), in total and by reason.
    pub failed: u64,
    /// The same, by dead-letter reason.
    pub failed_by_reason: BTreeMap<&'static str, u64>,
    /// The error of the last failed write (kept after a recovery).
    pub last_error: Option<String>,
    /// Whether the last write failed.
    pub failing: bool,
}

/// Appends to the dead-letter file (created on the first refusal).
///
/// ## Failures never stop ingestion
///
/// A write that fails (disk full, file too large, permissions, a path
/// that is a directory …) returns its error, and is counted and exposed by
/// [`DeadLetterFile::health`]; the caller counts the refusal and goes on
/// (the message was refused either way). Every later write tries again. The
/// first failure of an episode is logged at error level with the path, the
/// following ones only counted, and the first success after them is logged
/// with the number of dead letters lost: a full disk gives two log lines,
/// not one per message.
///
/// ## Whole lines only
///
/// Each dead letter is one `write` of one whole line, with no buffering in
/// the process: a line is on disk (in the page cache) when `write`
/// returns, and nothing is held back until a flush. When a write fails
/// after part of its line (a full disk), the file is cut back to its last
/// newline at once. Opening the file does the same to a torn last line
/// left by a crash, with a warning naming the bytes dropped, so a line
/// appended after a restart is never glued onto a torn one.
pub struct DeadLetterFile {
    path: PathBuf,
    out: Option<File>,
    /// The line being written (reused).
    line: Vec<u8>,
    health: DeadLetterHealth,
    /// Failed writes since the last success.
    lost_in_episode: u64,
}

impl DeadLetterFile {
    /// A dead-letter file at `path`, opened (for appending) at the first
    /// dead letter.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        DeadLetterFile {
            health: DeadLetterHealth {
                path: path.clone(),
                ..DeadLetterHealth::default()
            },
            path,
            out: None,
            line: Vec::with_capacity(1024),
            lost_in_episode: 0,
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What it has written and what it could not.
    pub fn health(&self) -> DeadLetterHealth {
        self.health.clone()
    }

    /// Appends one dead letter. `payload` is the payload as received, or
    /// the prefix its source kept; `payload_bytes` is the size of the whole
    /// payload (at least `payload.len()`). At most [`PAYLOAD_PREFIX_BYTES`]
    /// of it are written.
    ///
    /// An error means this dead letter is not in the file; it is already
    /// counted and logged (see the type's docs): go on.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &mut self,
        recv_ms: i64,
        source: &str,
        topic: &str,
        reason: Reason,
        detail: &str,
        payload: &[u8],
        payload_bytes: usize,
    ) -> Result<(), CollectorError> {
        let line = line(
            recv_ms,
            source,
            topic,
            reason,
            detail,
            payload,
            payload_bytes,
        );
        self.line.clear();
        let result = match serde_json::to_writer(&mut self.line, &line) {
            Ok(()) => {
                self.line.push(b'\n');
                self.append()
            }
            Err(e) => Err(std::io::Error::other(e)),
        };
        match result {
            Ok(()) => {
                self.written();
                Ok(())
            }
            Err(e) => Err(self.failed(reason, e)),
        }
    }

    /// Counts a written dead letter; the first after failures ends the
    /// episode, with how many were lost.
    fn written(&mut self) {
        self.health.written += 1;
        if self.health.failing {
            tracing::warn!(
                path = %self.path.display(),
                lost = self.lost_in_episode,
                "the dead-letter file is writable again"
            );
            self.health.failing = false;
            self.lost_in_episode = 0;
        }
    }

    /// Counts a dead letter that could not be written; the first of an
    /// episode is logged at error level.
    fn failed(&mut self, reason: Reason, e: std::io::Error) -> CollectorError {
        self.health.failed += 1;
        *self
            .health
            .failed_by_reason
            .entry(reason.as_str())
            .or_default() += 1;
        self.lost_in_episode += 1;
        if !self.health.failing {
            tracing::error!(
                path = %self.path.display(),
                error = %e,
                reason = reason.as_str(),
                "cannot write the dead-letter file; refused messages are still \
                 counted and ingestion goes on; retrying at every dead letter"
            );
            self.health.failing = true;
        }
        self.health.last_error = Some(e.to_string());
        CollectorError::Io {
            path: self.path.display().to_string(),
            source: e,
        }
    }

    /// Writes `self.line` whole, opening the file first if needed; on a
    /// failure the file is cut back to its last newline and closed (the
    /// next write opens it again).
    fn append(&mut self) -> std::io::Result<()> {
        if self.out.is_none() {
            self.out = Some(self.open()?);
        }
        let Some(f) = self.out.as_mut() else {
            return Err(std::io::Error::other("the dead-letter file is not open"));
        };
        let written = f.write_all(&self.line);
        if written.is_err() {
            // Part of the line may be in the file: take it out now rather
            // than at the next open, which may be much later.
            if let Err(e) = repair_tail(f, &self.path) {
                tracing::debug!(path = %self.path.display(), error = %e, "cannot cut back the torn line yet");
            }
            self.out = None;
        }
        written
    }

    fn open(&self) -> std::io::Result<File> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)?;
        repair_tail(&mut f, &self.path)?;
        Ok(f)
    }

    /// Nothing to do (every line is written whole by [`DeadLetterFile::write`]);
    /// kept for callers that flush with each batch.
    pub fn flush(&mut self) -> Result<(), CollectorError> {
        Ok(())
    }
}

/// The line of one dead letter: at most [`PAYLOAD_PREFIX_BYTES`] of
/// `payload`, as text when it is UTF-8 (a cut in the middle of a character
/// keeps the whole characters before it), else in base64.
fn line<'a>(
    recv_ms: i64,
    source: &'a str,
    topic: &'a str,
    reason: Reason,
    detail: &'a str,
    payload: &'a [u8],
    payload_bytes: usize,
) -> Line<'a> {
    let kept = &payload[..payload.len().min(PAYLOAD_PREFIX_BYTES)];
    let (text, b64) = match std::str::from_utf8(kept) {
        Ok(s) => (Some(s), None),
        Err(e) if e.error_len().is_none() && kept.len() < payload.len() => {
            (std::str::from_utf8(&kept[..e.valid_up_to()]).ok(), None)
        }
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(kept)),
        ),
    };
    let payload_bytes = payload_bytes.max(payload.len());
    Line {
        recv_ms,
        source,
        topic,
        reason: reason.as_str(),
        detail,
        payload: text,
        payload_b64: b64,
        payload_bytes,
        payload_truncated: kept.len() < payload_bytes,
    }
}

/// Cuts a file that does not end with a newline back to its last newline
/// (to nothing if it has none), with a warning naming the bytes dropped.
/// Returns the bytes dropped.
fn repair_tail(f: &mut File, path: &Path) -> std::io::Result<u64> {
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    // Read backwards in blocks until a newline.
    let mut block = [0u8; 4096];
    let mut end = len;
    let keep = loop {
        let start = end.saturating_sub(block.len() as u64);
        let n = (end - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut block[..n])?;
        if end == len && block[n - 1] == b'\n' {
            return Ok(0);
        }
        if let Some(i) = block[..n].iter().rposition(|b| *b == b'\n') {
            break start + i as u64 + 1;
        }
        if start == 0 {
            break 0;
        }
        end = start;
    };
    f.set_len(keep)?;
    let dropped = len - keep;
    tracing::warn!(
        path = %path.display(),
        bytes_dropped = dropped,
        "the dead-letter file ended with a torn line (a crash or a full disk); cut back to its last whole line"
    );
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_lines(path: &Path) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "torn: {text:?}");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    fn write(d: &mut DeadLetterFile, i: usize) -> Result<(), CollectorError> {
        let payload = format!("{{oops {i}");
        d.write(
            1_772_427_700_000 + i as i64,
            "plant",
            "acme/s/a/l/m/power_kw",
            Reason::MalformedJson,
            "key must be a string",
            payload.as_bytes(),
            payload.len(),
        )
    }

    #[test]
    fn a_long_payload_keeps_a_prefix_and_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dl/dead.jsonl");
        let mut d = DeadLetterFile::new(&path);
        let big = format!(r#"{{"ts":1,"value":"{}"}}"#, "é".repeat(50_000));
        d.write(
            1,
            "p",
            "t",
            Reason::Oversized,
            "big",
            big.as_bytes(),
            big.len(),
        )
        .unwrap();
        // A prefix handed over by a source that cut the payload.
        d.write(
            2,
            "p",
            "t",
            Reason::Oversized,
            "cut",
            &[0xff; 100],
            50_000_000,
        )
        .unwrap();
        d.write(3, "p", "t", Reason::MalformedJson, "short", b"{oops", 5)
            .unwrap();
        let lines = read_lines(&path);
        let text = lines[0]["payload"].as_str().unwrap();
        assert!(big.starts_with(text) && text.len() > PAYLOAD_PREFIX_BYTES - 2);
        assert!(text.len() <= PAYLOAD_PREFIX_BYTES);
        assert_eq!(lines[0]["payload_bytes"], big.len());
        assert_eq!(lines[0]["payload_truncated"], true);
        assert_eq!(lines[1]["payload_b64"].as_str().unwrap().len(), 136);
        assert_eq!(lines[1]["payload_bytes"], 50_000_000);
        assert_eq!(lines[1]["payload_truncated"], true);
        assert_eq!(lines[2]["payload"], "{oops");
        assert_eq!(lines[2]["payload_bytes"], 5);
        assert!(lines[2].get("payload_truncated").is_none());
        assert!(std::fs::metadata(&path).unwrap().len() < 3 * PAYLOAD_PREFIX_BYTES as u64);
        assert_eq!(d.health().written, 3);
    }

    /// A torn last line (a crash in the middle of a write) is cut back on
    /// open, so the next line starts on a line of its own.
    #[test]
    fn a_torn_tail_is_cut_back_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        let mut d = DeadLetterFile::new(&path);
        write(&mut d, 0).unwrap();
        write(&mut d, 1).unwrap();
        drop(d);
        let whole = std::fs::read(&path).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(br#"{"recv_ms":17724277"#);
        std::fs::write(&path, &torn).unwrap();

        let mut d = DeadLetterFile::new(&path);
        write(&mut d, 2).unwrap();
        let lines = read_lines(&path);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2]["payload"], "{oops 2");
        assert!(std::fs::read(&path).unwrap().starts_with(&whole));

        // A file that is one torn line, longer than a read block.
        std::fs::write(&path, vec![b'x'; 10_000]).unwrap();
        let mut d = DeadLetterFile::new(&path);
        write(&mut d, 3).unwrap();
        assert_eq!(read_lines(&path).len(), 1);
    }

    /// A path that cannot be opened: every write fails, is counted, and
    /// ingestion could go on; once the path is usable the writes succeed.
    #[test]
    fn failures_are_counted_and_writing_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        std::fs::create_dir(&path).unwrap();
        let mut d = DeadLetterFile::new(&path);
        assert!(write(&mut d, 0).is_err());
        assert!(write(&mut d, 1).is_err());
        let h = d.health();
        assert_eq!((h.written, h.failed, h.failing), (0, 2, true));
        assert_eq!(h.failed_by_reason.get("malformed_json"), Some(&2));
        assert!(h.last_error.is_some());
        assert_eq!(h.path, path);

        std::fs::remove_dir(&path).unwrap();
        write(&mut d, 2).unwrap();
        let h = d.health();
        assert_eq!((h.written, h.failed, h.failing), (1, 2, false));
        assert_eq!(read_lines(&path).len(), 1);
    }

    /// Environment variable that turns [`full_file_child`] on.
    const CHILD: &str = "CTOWER_DEADLETTER_FSIZE_CHILD";

    /// A file that cannot grow (RLIMIT_FSIZE, as a full disk): lines that
    /// do not fit are counted, a line written in part is cut back, one
    /// error is logged for the episode, and writes succeed again once there
    /// is room (the file was rotated). Runs [`full_file_child`] in a child
    /// process under `ulimit -f` with SIGXFSZ ignored, so the limit and the
    /// signal touch nothing else; needs `sh`, not root.
    #[test]
    fn a_full_file_loses_no_line_and_recovers() {
        let exe = std::env::current_exe().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            // 8 blocks of 512 (dash) or 1024 (bash) bytes: 4 or 8 KiB.
            .arg(r#"trap "" XFSZ; ulimit -f 8 && exec "$0" "$@""#)
            .arg(&exe)
            .args([
                "--exact",
                "deadletter::tests::full_file_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child: {}\n{stdout}\n{stderr}",
            out.status
        );
        assert!(stdout.contains("FULL FILE CHILD DONE"), "{stdout}");
    }

    /// The body of [`a_full_file_loses_no_line_and_recovers`]; does nothing
    /// unless that test started it.
    #[test]
    fn full_file_child() {
        let Some(dir) = std::env::var_os(CHILD).map(PathBuf::from) else {
            return;
        };
        let capture = crate::mqtt::log_capture::Capture::default();
        let _guard = tracing::subscriber::set_default(capture.clone());
        let path = dir.join("dead.jsonl");
        let mut d = DeadLetterFile::new(&path);
        let mut ok = 0;
        let mut i = 0;
        // Fill the file up, then go on failing for a while.
        while d.health().failed < 20 {
            if write(&mut d, i).is_ok() {
                ok += 1;
            }
            i += 1;
            assert!(i < 10_000, "the file never filled up");
        }
        let h = d.health();
        assert_eq!((h.written, h.failed, h.failing), (ok, 20, true));
        assert!(
            h.last_error.as_deref().unwrap_or("").contains("too large"),
            "{h:?}"
        );
        // Whole lines only: the line written in part was cut back.
        assert_eq!(read_lines(&path).len() as u64, ok);
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size > 0);
        // Rotation frees the room.
        std::fs::rename(&path, dir.join("dead.jsonl.1")).unwrap();
        write(&mut d, i).unwrap();
        let h = d.health();
        assert_eq!((h.written, h.failed, h.failing), (ok + 1, 20, false));
        assert_eq!(read_lines(&path).len(), 1);
        let logs = capture.text();
        assert_eq!(
            logs.matches("cannot write the dead-letter file").count(),
            1,
            "{logs}"
        );
        assert_eq!(logs.matches("writable again").count(), 1, "{logs}");
        assert!(logs.contains("lost=20"), "{logs}");
        println!("FULL FILE CHILD DONE: {ok} lines ({size} bytes) fit, 20 failed");
    }
}
