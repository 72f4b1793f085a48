//! The raw journal: every message a live source accepts, on disk before
//! the broker is told it arrived (QoS 1 manual acknowledgements), so that a
//! crash loses nothing: after a restart the engine reads the journal again
//! and the broker redelivers only what was never written.
//!
//! ## Files
//!
//! `DIR/raw-NNNNNNNNNNNN.jsonl`, segments numbered by their first record
//! (one counter across segments). Each is a plain-text recording in the
//! replay format (`{"ctower_replay":1}` then one JSON object per message,
//! receive order), so `ctower replay` and `ctower run --replay` read a
//! segment as they read a recording. Each record line ends with
//! `,"crc32":N}`: the CRC-32 of the line's bytes before it. An oversized
//! message keeps its first 4 KiB and its size (`payload_size`), as the
//! source handed it on.
//!
//! ## Durability
//!
//! - **fsync policy**: group commit. The writer takes what is queued (up to
//!   [`GROUP_MAX_RECORDS`]), writes it with one `write`, `fdatasync`s, and
//!   only then hands the messages on and acknowledges them to their
//!   brokers, in arrival order. A message is acknowledged only once it is
//!   on disk; what was not acknowledged is redelivered.
//! - **Torn or corrupt tail**: at open, a last line cut short (a crash in a
//!   write) or failing its checksum is cut off and reported (a warning
//!   with the path and the bytes cut), never a crash loop. A bad line
//!   inside a segment is skipped and reported.
//! - **Duplicates**: a message written but not yet acknowledged when the
//!   process died (or when the broker went down) is delivered again: with
//!   MQTT's DUP flag after our crash, without it by a broker restored from
//!   its persistence. The journal remembers the topic and payload of its
//!   last [`DEDUP_WINDOW`] records; a message flagged DUP, or among the
//!   first [`crate::delivery::REDELIVERY_WINDOW`] of a connection, found
//!   among them is acknowledged without being taken twice. (A plant
//!   message repeats a reading's timestamp only when it is the same
//!   reading.)
//! - **Retention**: at each new segment, the oldest segments go while the
//!   journal is over its disk budget (`keep_mib`) or older than
//!   `keep_hours` (never the segment being written).
//!
//! The reader ([`read`]) and the writer ([`writer`]) are plain structs;
//! the live stage that runs the writer between the sources and the ingest
//! thread is the binary's.

pub mod read;
pub mod writer;

use std::path::{Path, PathBuf};

pub use read::{open_dir, Recovered};
pub use writer::RawJournal;

/// Records written (and fsynced) together at most.
pub const GROUP_MAX_RECORDS: usize = 4096;

/// Records whose topic and payload are remembered against redelivery
/// (about 6 MiB).
pub const DEDUP_WINDOW: usize = 1 << 18;

/// Checked `[raw_journal]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawJournalRules {
    /// Where the segments are.
    pub dir: PathBuf,
    /// A new segment starts past this size.
    pub segment_bytes: u64,
    /// Segments older than this go (ms).
    pub keep_ms: i64,
    /// The oldest segments go while together they exceed this.
    pub keep_bytes: u64,
}

impl RawJournalRules {
    /// 64 MiB segments kept 72 hours within 4 GiB, in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        RawJournalRules {
            dir: dir.to_path_buf(),
            segment_bytes: 64 << 20,
            keep_ms: 72 * 3_600_000,
            keep_bytes: 4096 << 20,
        }
    }
}

/// The file name of the segment whose first record is number `first`.
pub fn segment_name(first: u64) -> String {
    format!("raw-{first:012}.jsonl")
}

/// The first record number of segment file `name`, if it is one.
pub fn segment_number(name: &str) -> Option<u64> {
    name.strip_prefix("raw-")?
        .strip_suffix(".jsonl")?
        .parse()
        .ok()
}

/// The segments of `dir`, oldest first: (first record number, path).
pub fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries {
                let e = e?;
                if let Some(n) = e.file_name().to_str().and_then(segment_number) {
                    out.push((n, e.path()));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    out.sort();
    Ok(out)
}

/// The identity of a message against redelivery: topic and payload.
pub fn message_hash(topic: &str, payload: &[u8]) -> u64 {
    // FNV-1a, 64 bits: a collision would drop one DUP message that is
    // identical in neither topic nor payload to the one remembered, at odds
    // of 2^-64 per pair.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.bytes().chain([0xff]).chain(payload.iter().copied()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
