//! A durable outbox: a FIFO of text lines on disk in front of a downstream
//! that may be down (InfluxDB, an alarm hook). Every line is on disk
//! before anything is sent, and leaves only once the downstream has taken
//! it, so an outage of any length up to the disk budget, or a crash, loses
//! nothing. One writer appends, one drainer reads batches from the cursor
//! and acknowledges them.
//!
//! ## Why segment files, not an embedded database
//!
//! The outbox is a FIFO of text lines written once, read once in order and
//! then deleted whole: append-only segment files do exactly that with one
//! `write` and one `fdatasync` per window, need no compaction, and can be
//! read with `cut -c10-` when something goes wrong. An embedded store
//! (redb, sled) would add a B-tree, its own file format and its own
//! recovery for a queue that never updates in place.
//!
//! ## Files
//!
//! `DIR/outbox-NNNNNNNNNNNN.lp`, numbered by the sequence number of their
//! first line (one counter across segments). Each line is
//! `CCCCCCCC LINE`: the CRC-32 of the line-protocol `LINE` in 8 hex digits,
//! a space, the line. `DIR/cursor` holds the sequence number of the first
//! line the server has not accepted yet, replaced atomically (a temporary
//! file, `fdatasync`, `rename`) after each accepted batch.
//!
//! ## Durability
//!
//! - **fsync policy**: one `write` and one `fdatasync` per append (a closed
//!   window); the drainer sees lines only once they are synced. A new
//!   segment's directory entry is synced too.
//! - **Torn tail**: at open, a last line cut short or failing its checksum
//!   is cut off and reported (a warning with the path and the bytes cut).
//!   A bad line inside a segment is skipped and counted as lost.
//! - **Retention**: a segment is deleted once every line of it was
//!   accepted (never the one being written). Past the budget
//!   (`outbox_budget_mib`) the oldest segment is dropped, its pending lines
//!   counted as lost and logged as an error with [`OutboxRules::lost_hint`]
//!   (for InfluxDB: the journal still holds them).
//! - **Restart**: the lines after the cursor are sent again, in order. A
//!   batch taken just before a crash may be sent twice: the downstream must
//!   be idempotent (InfluxDB: same series and timestamp overwrite; hooks:
//!   the same `webhook-id` or dedup key).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// The checked outbox settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRules {
    /// What it is, for log lines (`InfluxDB outbox`, `hook outbox pager`).
    pub name: String,
    /// What a user can do about lines dropped past the budget, for the log
    /// line (may be empty).
    pub lost_hint: String,
    /// Where the segments and the cursor are.
    pub dir: PathBuf,
    /// A new segment starts past this size.
    pub segment_bytes: u64,
    /// The files together never exceed this; the oldest segment goes first.
    pub budget_bytes: u64,
}

/// The file name of the segment whose first line is `first`.
pub fn segment_name(first: u64) -> String {
    format!("outbox-{first:012}.lp")
}

fn segment_number(name: &str) -> Option<u64> {
    name.strip_prefix("outbox-")?
        .strip_suffix(".lp")?
        .parse()
        .ok()
}

/// One line in the outbox's framing (with its newline).
fn frame(line: &str, out: &mut Vec<u8>) {
    let crc = crc32fast::hash(line.as_bytes());
    let _ = write!(out, "{crc:08x} ");
    out.extend_from_slice(line.as_bytes());
    out.push(b'\n');
}

/// The line of a framed record (without newline), if its checksum holds.
fn unframe(record: &[u8]) -> Option<&str> {
    let (crc, line) = (record.get(..8)?, record.get(9..)?);
    if record.get(8) != Some(&b' ') {
        return None;
    }
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    (crc32fast::hash(line) == crc).then_some(())?;
    std::str::from_utf8(line).ok()
}

#[derive(Debug)]
struct Segment {
    first: u64,
    lines: u64,
    bytes: u64,
    path: PathBuf,
}

/// What the writer and the drainer share.
#[derive(Debug)]
struct State {
    segments: VecDeque<Segment>,
    /// The sequence number of the next line appended.
    next: u64,
    /// The first line not accepted by the server yet.
    acked: u64,
    /// When each append was synced: (first line after it, wall ms), oldest
    /// first, for the age of the oldest pending line.
    appended_at: VecDeque<(u64, i64)>,
    /// Lines lost (past the budget, or that the outbox could not write).
    lost: u64,
    /// The last write error of the outbox itself.
    write_error: Option<String>,
    /// The writer is gone: drain what is left and stop.
    closed: bool,
}

impl State {
    fn used_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }
}

/// The outbox: the writer side ([`Outbox::append`]) and the drainer side
/// ([`Outbox::read_batch`], [`Outbox::ack`]) over the same directory, from
/// two threads.
#[derive(Debug)]
pub struct Outbox {
    rules: OutboxRules,
    state: Mutex<State>,
    changed: Condvar,
    /// The segment being written (the last one).
    file: Mutex<Option<File>>,
    /// Where the drainer's last read stopped.
    read_pos: Mutex<Option<ReadPos>>,
}

/// Lines read for sending: `lines[i]` has sequence number `first + i`
/// (skipped corrupt lines still count, so `end` is exact).
#[derive(Debug, Default)]
pub struct Batch {
    /// The first line's sequence number.
    pub first: u64,
    /// One past the last line read.
    pub end: u64,
    /// The lines, without framing.
    pub lines: Vec<String>,
}

impl Outbox {
    /// Opens (or creates) the outbox in `rules.dir`: every segment read
    /// back and checked, a torn tail cut and reported.
    pub fn open(rules: OutboxRules) -> io::Result<Arc<Outbox>> {
        std::fs::create_dir_all(&rules.dir)?;
        let mut names: Vec<(u64, PathBuf)> = std::fs::read_dir(&rules.dir)?
            .flatten()
            .filter_map(|e| {
                let n = segment_number(&e.file_name().to_string_lossy())?;
                Some((n, e.path()))
            })
            .collect();
        names.sort();
        let mut segments = VecDeque::new();
        let count = names.len();
        let mut lost = 0;
        for (i, (first, path)) in names.into_iter().enumerate() {
            let (lines, bytes, bad) = scan(&path, i + 1 == count)?;
            lost += bad;
            segments.push_back(Segment {
                first,
                lines,
                bytes,
                path,
            });
        }
        let next = segments.back().map_or(0, |s| s.first + s.lines);
        let oldest = segments.front().map_or(next, |s| s.first);
        let acked = read_cursor(&rules.dir)?
            .unwrap_or(oldest)
            .clamp(oldest, next);
        if next > acked {
            tracing::info!(
                outbox = %rules.dir.display(),
                pending = next - acked,
                "{}: lines from before the restart are sent again", rules.name
            );
        }
        let file = match segments.back() {
            Some(s) => Some(OpenOptions::new().append(true).open(&s.path)?),
            None => None,
        };
        let outbox = Outbox {
            rules,
            state: Mutex::new(State {
                segments,
                next,
                acked,
                appended_at: VecDeque::from([(next, now_ms())]),
                lost,
                write_error: None,
                closed: false,
            }),
            changed: Condvar::new(),
            file: Mutex::new(file),
            read_pos: Mutex::new(None),
        };
        Ok(Arc::new(outbox))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a thread panicked mid-update: a broken
        // invariant, not an input problem.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `lines` (line protocol, no newlines) and syncs them, as one
    /// write; `now_ms` stamps them for the age. On an error nothing is
    /// appended: the lines are counted as lost, the error kept for
    /// [`Outbox::status`] (the journal still has them).
    pub fn append(&self, lines: &[String], now_ms: i64) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 10).sum());
        for l in lines {
            frame(l, &mut buf);
        }
        let result = self.write(&buf, lines.len() as u64, now_ms);
        let mut st = self.lock();
        match &result {
            Ok(()) => st.write_error = None,
            Err(e) => {
                st.lost += lines.len() as u64;
                if st.write_error.is_none() {
                    tracing::error!(outbox = %self.rules.dir.display(), error = %e, lines = lines.len(), "cannot write the {}: these lines are lost to it ({})", self.rules.name, self.rules.lost_hint);
                }
                st.write_error = Some(e.to_string());
            }
        }
        drop(st);
        self.changed.notify_all();
        result
    }

    fn write(&self, buf: &[u8], n: u64, now_ms: i64) -> io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let need_new = {
            let st = self.lock();
            st.segments
                .back()
                .is_none_or(|s| s.bytes >= self.rules.segment_bytes)
        };
        if need_new || file.is_none() {
            self.make_room(buf.len() as u64, true);
            let first = self.lock().next;
            let path = self.rules.dir.join(segment_name(first));
            let f = OpenOptions::new().create(true).append(true).open(&path)?;
            File::open(&self.rules.dir)?.sync_all()?;
            *file = Some(f);
            self.lock().segments.push_back(Segment {
                first,
                lines: 0,
                bytes: 0,
                path,
            });
        } else {
            self.make_room(buf.len() as u64, false);
        }
        let f = file
            .as_mut()
            .ok_or_else(|| io::Error::other("no outbox segment open"))?;
        let before = self.lock().segments.back().map_or(0, |s| s.bytes);
        let written = f.write_all(buf).and_then(|()| f.sync_data());
        if let Err(e) = written {
            // Never a torn or glued line: back to the last whole append.
            let _ = f.set_len(before);
            return Err(e);
        }
        let mut st = self.lock();
        if let Some(s) = st.segments.back_mut() {
            s.lines += n;
            s.bytes += buf.len() as u64;
        }
        st.next += n;
        let next = st.next;
        st.appended_at.push_back((next, now_ms));
        Ok(())
    }

    /// Drops the oldest segments (never the one being written, unless a new
    /// one starts) while `extra` more bytes would exceed the budget.
    fn make_room(&self, extra: u64, new_segment: bool) {
        let mut st = self.lock();
        let keep = usize::from(!new_segment);
        while st.used_bytes() + extra > self.rules.budget_bytes && st.segments.len() > keep {
            let Some(s) = st.segments.pop_front() else {
                break;
            };
            let end = s.first + s.lines;
            let pending = end.saturating_sub(st.acked.max(s.first));
            st.lost += pending;
            st.acked = st.acked.max(end);
            tracing::error!(
                outbox = %self.rules.dir.display(),
                segment = %s.path.display(),
                lines_lost = pending,
                budget_mib = self.rules.budget_bytes >> 20,
                "{} over its disk budget: its oldest segment is dropped ({})",
                self.rules.name,
                self.rules.lost_hint
            );
            let _ = std::fs::remove_file(&s.path);
        }
    }

    /// Waits until lines are pending and either `max_lines` are, the oldest
    /// has waited `flush`, or the outbox is closed; then reads up to
    /// `max_lines` from the cursor. `None` when closed with nothing left,
    /// or when `stop` says so.
    pub fn read_batch(
        &self,
        max_lines: usize,
        flush: Duration,
        stop: &dyn Fn() -> bool,
    ) -> io::Result<Option<Batch>> {
        let mut st = self.lock();
        loop {
            if stop() {
                return Ok(None);
            }
            let pending = st.next - st.acked;
            if pending > 0 {
                let waited = now_ms() - oldest_pending_ms(&st).unwrap_or(0);
                if pending >= max_lines as u64 || st.closed || waited >= flush.as_millis() as i64 {
                    break;
                }
                let left = Duration::from_millis((flush.as_millis() as i64 - waited) as u64);
                st = self
                    .changed
                    .wait_timeout(st, left.min(Duration::from_millis(200)))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            } else if st.closed {
                return Ok(None);
            } else {
                st = self
                    .changed
                    .wait_timeout(st, Duration::from_millis(200))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        // Where to read: the segments holding `acked` onwards, each up to
        // its synced length.
        let from = st.acked;
        let plan: Vec<(u64, u64, PathBuf)> = st
            .segments
            .iter()
            .filter(|s| s.first + s.lines > from)
            .map(|s| (s.first, s.bytes, s.path.clone()))
            .collect();
        drop(st);
        let mut batch = Batch {
            first: from,
            end: from,
            lines: Vec::new(),
        };
        let mut pos = self.read_pos.lock().unwrap_or_else(|p| p.into_inner());
        for (first, bytes, path) in plan {
            // Where the last batch ended, when it ended in this segment at
            // this line: read on from there, not from the segment's start.
            let start = match *pos {
                Some(p) if p.segment == first && p.seq == batch.end => (p.offset, p.seq),
                _ => (0, first),
            };
            let (offset, seq) = read_segment(&path, start, bytes, &mut batch, max_lines)?;
            *pos = Some(ReadPos {
                segment: first,
                offset,
                seq,
            });
            if batch.lines.len() >= max_lines {
                break;
            }
        }
        Ok(Some(batch))
    }

    /// The server accepted every line before `end`: the cursor moves there
    /// (synced), fully accepted segments are deleted.
    pub fn ack(&self, end: u64) -> io::Result<()> {
        write_cursor(&self.rules.dir, end)?;
        let mut st = self.lock();
        st.acked = st.acked.max(end);
        while st.segments.len() > 1 {
            let done = st
                .segments
                .front()
                .is_some_and(|s| s.first + s.lines <= st.acked);
            if !done {
                break;
            }
            if let Some(s) = st.segments.pop_front() {
                let _ = std::fs::remove_file(&s.path);
            }
        }
        while st.appended_at.len() > 1 && st.appended_at[0].0 <= st.acked {
            st.appended_at.pop_front();
        }
        Ok(())
    }

    /// No more appends: the drainer sends what is left, then stops.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Lines appended and not yet accepted.
    pub fn pending(&self) -> u64 {
        let st = self.lock();
        st.next - st.acked
    }

    /// The outbox's numbers now (for the status the drainer publishes).
    pub fn numbers(&self, now_ms: i64) -> OutboxNumbers {
        let st = self.lock();
        OutboxNumbers {
            pending_lines: st.next - st.acked,
            used_bytes: st.used_bytes(),
            budget_bytes: self.rules.budget_bytes,
            oldest_age_ms: (st.next > st.acked)
                .then(|| oldest_pending_ms(&st).map(|t| (now_ms - t).max(0)))
                .flatten(),
            lost: st.lost,
            write_error: st.write_error.clone(),
        }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.rules.dir
    }
}

/// The outbox's own numbers, for its status.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxNumbers {
    /// Lines not yet accepted.
    pub pending_lines: u64,
    /// Bytes on disk.
    pub used_bytes: u64,
    /// The budget.
    pub budget_bytes: u64,
    /// Age of the oldest pending line.
    pub oldest_age_ms: Option<i64>,
    /// Lines lost.
    pub lost: u64,
    /// The outbox's own write error.
    pub write_error: Option<String>,
}

/// When the oldest pending line was appended.
fn oldest_pending_ms(st: &State) -> Option<i64> {
    // `appended_at[i]` = (first line after append i, its time): the append
    // holding `acked` is the first whose end is past it.
    st.appended_at
        .iter()
        .find(|(end, _)| *end > st.acked)
        .map(|(_, t)| *t)
}

/// Reads the lines of one segment (`bytes` synced) from `start` (a byte
/// offset and the sequence number of the line there) on, taking those from
/// `batch.end`, up to `max` in the batch; returns where it stopped.
fn read_segment(
    path: &Path,
    start: (u64, u64),
    bytes: u64,
    batch: &mut Batch,
    max: usize,
) -> io::Result<(u64, u64)> {
    let (offset, mut seq) = start;
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut data = Vec::new();
    f.take(bytes.saturating_sub(offset))
        .read_to_end(&mut data)?;
    let mut at = offset;
    for record in data.split_inclusive(|b| *b == b'\n') {
        let Some(record) = record.strip_suffix(b"\n") else {
            break; // not a whole line (cannot happen below `bytes`)
        };
        if seq >= batch.end {
            if batch.lines.len() >= max {
                return Ok((at, seq));
            }
            match unframe(record) {
                Some(line) => batch.lines.push(line.to_string()),
                None => {
                    tracing::error!(segment = %path.display(), line = seq, "outbox: a line fails its checksum and is skipped")
                }
            }
            batch.end = seq + 1;
        }
        seq += 1;
        at += record.len() as u64 + 1;
    }
    Ok((at, seq))
}

/// Where the drainer's last read stopped.
#[derive(Debug, Clone, Copy)]
struct ReadPos {
    segment: u64,
    offset: u64,
    seq: u64,
}

/// Counts a segment's lines; in the last segment a torn or corrupt tail is
/// cut. Returns (lines, bytes, bad lines kept inside).
fn scan(path: &Path, last: bool) -> io::Result<(u64, u64, u64)> {
    let data = std::fs::read(path)?;
    let (mut lines, mut bad, mut good_end, mut start) = (0u64, 0u64, 0usize, 0usize);
    while let Some(nl) = data[start..].iter().position(|b| *b == b'\n') {
        let ok = unframe(&data[start..start + nl]).is_some();
        lines += 1;
        start += nl + 1;
        if ok {
            good_end = start;
        } else {
            bad += 1;
        }
    }
    if last && good_end < data.len() {
        // What follows the last good line: a crash mid-write.
        let tail = &data[good_end..];
        let cut_lines = tail.iter().filter(|b| **b == b'\n').count() as u64;
        tracing::warn!(segment = %path.display(), bytes_cut = tail.len(), "outbox: a torn tail is cut");
        OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(good_end as u64)?;
        return Ok((lines - cut_lines, good_end as u64, bad - cut_lines));
    }
    Ok((lines, data.len() as u64, bad))
}

fn read_cursor(dir: &Path) -> io::Result<Option<u64>> {
    match std::fs::read_to_string(dir.join("cursor")) {
        Ok(s) => Ok(s.trim().parse().ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn write_cursor(dir: &Path, seq: u64) -> io::Result<()> {
    let tmp = dir.join("cursor.tmp");
    let mut f = File::create(&tmp)?;
    writeln!(f, "{seq}")?;
    f.sync_data()?;
    std::fs::rename(&tmp, dir.join("cursor"))?;
    // The rename itself is durable only once the directory is synced.
    File::open(dir)?.sync_all()
}

/// The wall clock in Unix milliseconds (the age of pending lines).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
