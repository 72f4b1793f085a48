//! Appending to the raw journal: group commits, segments, retention.

use super::{message_hash, segment_name, segments, RawJournalRules, DEDUP_WINDOW};
use crate::ingest::RawMessage;
use crate::CollectorError;
use base64::Engine;
use ctower_model::replay::CRC_KEY;
use serde::Serialize;
use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// One record line as written (the replay format's fields).
#[derive(Serialize)]
struct Line<'a> {
    t_ms: i64,
    topic: &'a str,
    qos: u8,
    retain: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_b64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_size: Option<u64>,
}

/// Appends one message's line (with its checksum) to `buf`.
pub fn encode_line(msg: &RawMessage, qos: u8, buf: &mut Vec<u8>) {
    let (payload, payload_b64) = match std::str::from_utf8(&msg.payload) {
        Ok(s) => (Some(s), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(&msg.payload)),
        ),
    };
    let line = Line {
        t_ms: msg.recv_ms,
        topic: &msg.topic,
        qos,
        retain: false,
        payload,
        payload_b64,
        payload_size: msg.truncated_from.map(|s| s as u64),
    };
    let start = buf.len();
    // A struct of strings and numbers always serializes.
    if serde_json::to_writer(&mut *buf, &line).is_err() {
        buf.truncate(start);
        return;
    }
    buf.pop(); // the closing brace
    let crc = crc32fast::hash(&buf[start..]);
    buf.extend_from_slice(CRC_KEY.as_bytes());
    buf.extend_from_slice(crc.to_string().as_bytes());
    buf.extend_from_slice(b"}\n");
}

/// The raw journal being written (module docs of [`super`]).
pub struct RawJournal {
    rules: RawJournalRules,
    file: File,
    path: PathBuf,
    len: u64,
    /// Number of the next record.
    next: u64,
    buf: Vec<u8>,
    recent: VecDeque<u64>,
    recent_set: HashSet<u64>,
    /// The wall clock, for the age of segments.
    now_ms: Box<dyn Fn() -> i64 + Send>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CollectorError + '_ {
    move |source| CollectorError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl RawJournal {
    /// Starts a new segment after the records of `recovered` (their number
    /// and the hashes of the last ones, [`super::Recovered`]).
    pub fn open(
        rules: RawJournalRules,
        next: u64,
        recent: impl IntoIterator<Item = u64>,
        now_ms: Box<dyn Fn() -> i64 + Send>,
    ) -> Result<RawJournal, CollectorError> {
        std::fs::create_dir_all(&rules.dir).map_err(io(&rules.dir))?;
        let (file, path) = new_segment(&rules.dir, next)?;
        let mut j = RawJournal {
            rules,
            file,
            path,
            len: 0,
            next,
            buf: Vec::with_capacity(1 << 20),
            recent: VecDeque::new(),
            recent_set: HashSet::new(),
            now_ms,
        };
        for h in recent {
            j.remember(h);
        }
        j.len = j.write_header()?;
        Ok(j)
    }

    fn write_header(&mut self) -> Result<u64, CollectorError> {
        let header = b"{\"ctower_replay\":1}\n";
        self.file.write_all(header).map_err(io(&self.path))?;
        Ok(header.len() as u64)
    }

    fn remember(&mut self, h: u64) {
        if self.recent_set.insert(h) {
            self.recent.push_back(h);
        }
        while self.recent.len() > DEDUP_WINDOW {
            if let Some(old) = self.recent.pop_front() {
                self.recent_set.remove(&old);
            }
        }
    }

    /// Whether a redelivered message (MQTT DUP) is already written.
    pub fn is_duplicate(&self, msg: &RawMessage) -> bool {
        self.recent_set
            .contains(&message_hash(&msg.topic, &msg.payload))
    }

    /// Adds one message to the group being built (nothing is written yet).
    pub fn append(&mut self, msg: &RawMessage, qos: u8) {
        encode_line(msg, qos, &mut self.buf);
        self.remember(message_hash(&msg.topic, &msg.payload));
        self.next += 1;
    }

    /// Writes the group and makes it durable (one `write`, one
    /// `fdatasync`); then starts a new segment if this one is full. On an
    /// error the group is not durable (nothing of it may be acknowledged)
    /// and is kept for the next call.
    pub fn commit(&mut self) -> Result<(), CollectorError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let written = self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Cut whatever part of the group reached the file, so that the
            // next try writes the group whole after the last good line. The
            // group stays here: nothing of it is acknowledged until then.
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(io(&self.path)(e));
        }
        self.len += self.buf.len() as u64;
        self.buf.clear();
        if self.len >= self.rules.segment_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    /// The segment being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records written so far (the number of the next one).
    pub fn next_record(&self) -> u64 {
        self.next
    }

    /// A new segment, and the retention applied to the old ones.
    fn rotate(&mut self) -> Result<(), CollectorError> {
        let (file, path) = new_segment(&self.rules.dir, self.next)?;
        self.file = file;
        self.path = path;
        self.len = self.write_header()?;
        self.retain();
        Ok(())
    }

    /// Deletes the oldest segments while over the budget or too old.
    fn retain(&mut self) {
        let Ok(all) = segments(&self.rules.dir) else {
            return;
        };
        let now = (self.now_ms)();
        let mut sized: Vec<(PathBuf, u64, i64)> = all
            .into_iter()
            .filter(|(_, p)| *p != self.path)
            .filter_map(|(_, p)| {
                let m = std::fs::metadata(&p).ok()?;
                let modified = m
                    .modified()
                    .ok()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?
                    .as_millis() as i64;
                Some((p, m.len(), modified))
            })
            .collect();
        let mut total: u64 = sized.iter().map(|s| s.1).sum::<u64>() + self.len;
        sized.reverse(); // pop the oldest
        while let Some((p, len, modified)) = sized.pop() {
            if total <= self.rules.keep_bytes && now - modified <= self.rules.keep_ms {
                break;
            }
            match std::fs::remove_file(&p) {
                Ok(()) => {
                    total -= len;
                    tracing::info!(path = %p.display(), bytes = len, "raw journal segment deleted (retention)");
                }
                Err(e) => {
                    tracing::warn!(path = %p.display(), error = %e, "cannot delete a raw journal segment");
                    break;
                }
            }
        }
    }
}

fn new_segment(dir: &Path, first: u64) -> Result<(File, PathBuf), CollectorError> {
    let path = dir.join(segment_name(first));
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(io(&path))?;
    // The new name must survive a crash too.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok((file, path))
}
