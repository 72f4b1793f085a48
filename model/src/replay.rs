//! The replay format: one record per MQTT message, gzip-compressed JSON Lines.
//!
//! ```text
//! {"ctower_replay":1}                                   ← header, first line
//! {"t_ms":1772427600012,"topic":"acme/…/state","qos":1,"retain":false,"payload":"{\"ts\":…}"}
//! {"t_ms":…,"topic":"…","qos":0,"retain":false,"payload_b64":"AAEC…"}
//! ```
//!
//! `t_ms` is the receive time (ms since the Unix epoch, UTC); records are in
//! receive order. A payload that is valid UTF-8 is stored as `payload`, any
//! other as `payload_b64` (standard base64). The gzip header carries no name
//! and no modification time, so the same records give the same bytes.

use base64::Engine;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// The format's version, in the header line (`{"ctower_replay":1}`).
pub const FORMAT_VERSION: u32 = 1;

/// Why a recording could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be opened, read or written.
    #[error("replay file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// A line is not what the format says (bad header, JSON, field).
    #[error("replay file line {line}: {reason}")]
    Format {
        /// 1-based line number (the header is line 1).
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// One recorded MQTT message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRecord {
    /// Receive time, ms since the epoch.
    pub t_ms: i64,
    /// The MQTT topic.
    pub topic: String,
    /// The QoS it was received (and is published) with, 0..=2.
    pub qos: u8,
    /// The MQTT retain flag.
    pub retain: bool,
    /// The payload's bytes, as received.
    pub payload: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    t_ms: i64,
    #[serde(borrow)]
    topic: Cow<'a, str>,
    qos: u8,
    retain: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    payload: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload_b64: Option<String>,
    /// The raw journal's: the size of a payload kept only as its prefix
    /// (an oversized message); a replay publishes the prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload_size: Option<u64>,
    /// The raw journal's: CRC-32 of the line's bytes before `,"crc32":`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crc32: Option<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    ctower_replay: u32,
}

/// Writes a replay file. Call [`ReplayWriter::finish`] to flush the gzip trailer.
pub struct ReplayWriter<W: Write> {
    out: GzEncoder<W>,
    count: u64,
    // One line is serialised here and handed to the encoder in one write:
    // many tiny writes into flate2 cost far more than the copy.
    line: Vec<u8>,
}

impl ReplayWriter<BufWriter<File>> {
    /// Creates (or truncates) the file `path` and writes the header.
    pub fn create(path: &Path) -> Result<Self, ReplayError> {
        let f = File::create(path).map_err(|source| ReplayError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(BufWriter::new(f)).map_err(|source| ReplayError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

impl<W: Write> ReplayWriter<W> {
    /// A writer into `inner`; writes the header.
    pub fn new(inner: W) -> io::Result<Self> {
        // mtime 0 and no file name: identical input gives identical bytes.
        let out = GzBuilder::new().mtime(0).write(inner, Compression::new(6));
        let mut w = ReplayWriter {
            out,
            count: 0,
            line: Vec::with_capacity(256),
        };
        serde_json::to_writer(
            &mut w.out,
            &Header {
                ctower_replay: FORMAT_VERSION,
            },
        )?;
        w.out.write_all(b"\n")?;
        Ok(w)
    }

    /// Appends one record (its payload as text when UTF-8, else base64).
    pub fn write(&mut self, rec: &ReplayRecord) -> io::Result<()> {
        let (payload, payload_b64) = match std::str::from_utf8(&rec.payload) {
            Ok(s) => (Some(s.into()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&rec.payload)),
            ),
        };
        let line = Line {
            t_ms: rec.t_ms,
            topic: rec.topic.as_str().into(),
            qos: rec.qos,
            retain: rec.retain,
            payload,
            payload_b64,
            payload_size: None,
            crc32: None,
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &line)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.count += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Writes the gzip trailer and flushes; without it the file is cut short.
    pub fn finish(self) -> io::Result<W> {
        let mut inner = self.out.finish()?;
        inner.flush()?;
        Ok(inner)
    }
}

/// One record borrowed from a line of a recording (see [`RecordChunk`]);
/// [`RecordRef::into_owned`] gives the [`ReplayRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Receive time, ms since the epoch.
    pub t_ms: i64,
    /// The MQTT topic (borrowed unless it had escapes).
    pub topic: Cow<'a, str>,
    /// The QoS, 0..=2.
    pub qos: u8,
    /// The MQTT retain flag.
    pub retain: bool,
    /// The payload's bytes (owned when it was escaped or base64).
    pub payload: Cow<'a, [u8]>,
}

impl RecordRef<'_> {
    /// The record with its own copies of topic and payload.
    pub fn into_owned(self) -> ReplayRecord {
        ReplayRecord {
            t_ms: self.t_ms,
            topic: self.topic.into_owned(),
            qos: self.qos,
            retain: self.retain,
            payload: self.payload.into_owned(),
        }
    }
}

fn format_err(line: u64, reason: impl Into<String>) -> ReplayError {
    ReplayError::Format {
        line,
        reason: reason.into(),
    }
}

/// The reason given for a line that is not UTF-8 (as `BufRead::read_line` says it).
const NOT_UTF8: &str = "read error: stream did not contain valid UTF-8";

/// Parses record line `line_no` (its text, with or without the line end);
/// `None` for a blank line, which readers skip.
fn parse_line(line_no: u64, line: &str) -> Result<Option<RecordRef<'_>>, ReplayError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let text = line.trim_end();
    let l: Line = serde_json::from_str(text).map_err(|e| format_err(line_no, e.to_string()))?;
    if let Some(crc) = l.crc32 {
        check_crc(line_no, text, crc)?;
    }
    record_of(line_no, l).map(Some)
}

/// The key that ends a checksummed line: `,"crc32":N}`.
pub const CRC_KEY: &str = ",\"crc32\":";

/// A checksummed line's CRC-32 (over its bytes before [`CRC_KEY`]) is `crc`.
pub fn check_crc(line_no: u64, text: &str, crc: u32) -> Result<(), ReplayError> {
    let covered = text.rfind(CRC_KEY).map_or(text, |i| &text[..i]);
    let got = crc32fast::hash(covered.as_bytes());
    if got == crc {
        Ok(())
    } else {
        Err(format_err(
            line_no,
            format!("checksum mismatch: crc32 {got} is not the line's {crc}"),
        ))
    }
}

/// A replay file's bytes: gzip (a recording), or plain text (a raw
/// journal segment), told apart by the gzip magic number.
pub enum MaybeGz<R: Read> {
    /// A gzip stream, decompressed.
    Gz(MultiGzDecoder<BufReader<R>>),
    /// Plain text.
    Plain(BufReader<R>),
}

impl<R: Read> MaybeGz<R> {
    /// Looks at the first bytes of `inner`.
    pub fn new(inner: R) -> std::io::Result<Self> {
        let mut b = BufReader::with_capacity(1 << 16, inner);
        Ok(if b.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
            MaybeGz::Gz(MultiGzDecoder::new(b))
        } else {
            MaybeGz::Plain(b)
        })
    }
}

impl<R: Read> Read for MaybeGz<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            MaybeGz::Gz(g) => g.read(buf),
            MaybeGz::Plain(p) => p.read(buf),
        }
    }
}

/// The record of a parsed line (line `line_no`), checked.
fn record_of(line_no: u64, l: Line<'_>) -> Result<RecordRef<'_>, ReplayError> {
    let err = |reason: String| format_err(line_no, reason);
    let payload = match (l.payload, l.payload_b64) {
        (Some(Cow::Borrowed(p)), None) => Cow::Borrowed(p.as_bytes()),
        (Some(Cow::Owned(p)), None) => Cow::Owned(p.into_bytes()),
        (None, Some(b)) => Cow::Owned(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| err(format!("payload_b64: {e}")))?,
        ),
        _ => return Err(err("exactly one of payload, payload_b64 is required".into())),
    };
    if l.qos > 2 {
        return Err(err(format!("qos {} is not 0, 1 or 2", l.qos)));
    }
    Ok(RecordRef {
        t_ms: l.t_ms,
        topic: l.topic,
        qos: l.qos,
        retain: l.retain,
        payload,
    })
}

/// JSON's whitespace (what a JSON parser skips between values).
fn json_space(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// Checks the header line (line 1).
fn check_header(line: &[u8]) -> Result<(), ReplayError> {
    let text = std::str::from_utf8(line).map_err(|_| format_err(1, NOT_UTF8))?;
    let h: Header = serde_json::from_str(text.trim_end())
        .map_err(|e| format_err(1, format!("not a ctower replay header ({e})")))?;
    if h.ctower_replay != FORMAT_VERSION {
        return Err(format_err(
            1,
            format!(
                "replay format version {} is not supported (this build reads {FORMAT_VERSION})",
                h.ctower_replay
            ),
        ));
    }
    Ok(())
}

/// Reads a replay file record by record.
pub struct ReplayReader<R: Read> {
    input: BufReader<MaybeGz<R>>,
    line_no: u64,
    buf: Vec<u8>,
}

impl ReplayReader<File> {
    /// Opens the recording `path` and checks its header.
    pub fn open(path: &Path) -> Result<Self, ReplayError> {
        let f = File::open(path).map_err(|source| ReplayError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(f)
    }
}

impl<R: Read> ReplayReader<R> {
    /// A reader of the gzip stream (or plain text) `inner`; checks its header.
    pub fn new(inner: R) -> Result<Self, ReplayError> {
        let inner = MaybeGz::new(inner).map_err(|e| format_err(1, format!("read error: {e}")))?;
        let mut r = ReplayReader {
            input: BufReader::with_capacity(1 << 16, inner),
            line_no: 0,
            buf: Vec::new(),
        };
        match r.next_line()? {
            None => Err(format_err(1, "empty file: no header")),
            Some(()) => {
                check_header(&r.buf)?;
                Ok(r)
            }
        }
    }

    fn next_line(&mut self) -> Result<Option<()>, ReplayError> {
        self.buf.clear();
        self.line_no += 1;
        match self.input.read_until(b'\n', &mut self.buf) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(())),
            Err(e) => Err(format_err(self.line_no, format!("read error: {e}"))),
        }
    }
}

impl<R: Read> Iterator for ReplayReader<R> {
    type Item = Result<ReplayRecord, ReplayError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_line() {
                Err(e) => return Some(Err(e)),
                Ok(None) => return None,
                Ok(Some(())) => {}
            }
            let Ok(text) = std::str::from_utf8(&self.buf) else {
                return Some(Err(format_err(self.line_no, NOT_UTF8)));
            };
            match parse_line(self.line_no, text) {
                Err(e) => return Some(Err(e)),
                Ok(None) => continue,
                Ok(Some(r)) => return Some(Ok(r.into_owned())),
            }
        }
    }
}

/// Default size of a [`RecordChunk`]: a few hundred records.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Whole lines of a recording, cut by [`ReplayChunks`] so that another
/// thread can parse them ([`RecordChunk::records`]): reading (gunzip) stays
/// sequential, parsing does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordChunk {
    /// Line number of the first line (the header is line 1).
    first_line: u64,
    /// Whole lines, each ending in `\n` except perhaps the file's last.
    text: Vec<u8>,
}

/// Where a record's line is in its [`RecordChunk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPos {
    line: u64,
    start: usize,
}

impl RecordPos {
    /// The line number in the file.
    pub fn line(&self) -> u64 {
        self.line
    }
}

impl RecordChunk {
    /// A chunk of whole lines, the first of which is line `first_line`.
    pub fn new(first_line: u64, text: Vec<u8>) -> Self {
        RecordChunk { first_line, text }
    }

    /// Line number of its first line in the file (the header is line 1).
    pub fn first_line(&self) -> u64 {
        self.first_line
    }

    /// Bytes of text it holds.
    pub fn len_bytes(&self) -> usize {
        self.text.len()
    }

    /// The records in file order, blank lines skipped. A line that is not
    /// UTF-8 or not a record ends the iteration with its error, numbered as
    /// [`ReplayReader`] numbers it.
    pub fn records(&self) -> ChunkRecords<'_> {
        let (text, bad) = match std::str::from_utf8(&self.text) {
            Ok(t) => (t, None),
            Err(e) => {
                let valid = self.text.get(..e.valid_up_to()).unwrap_or_default();
                // Only the whole lines before the bad one are parsed.
                let whole = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let text =
                    std::str::from_utf8(valid.get(..whole).unwrap_or_default()).unwrap_or_default();
                let line = self.first_line + count_lines(text.as_bytes());
                (text, Some(line))
            }
        };
        ChunkRecords {
            text,
            start: 0,
            line: self.first_line,
            bad,
            stream: None,
        }
    }

    /// The record at `pos` (a position [`RecordChunk::records`] gave), parsed again.
    pub fn record_at(&self, pos: RecordPos) -> Result<RecordRef<'_>, ReplayError> {
        let rest = self.text.get(pos.start..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let text = std::str::from_utf8(rest.get(..end).unwrap_or_default())
            .map_err(|_| format_err(pos.line, NOT_UTF8))?;
        parse_line(pos.line, text)?.ok_or_else(|| format_err(pos.line, "blank line"))
    }
}

fn count_lines(text: &[u8]) -> u64 {
    // Byte sums over blocks of 255 cannot overflow and vectorise well.
    text.chunks(255)
        .map(|c| u64::from(c.iter().map(|&b| u8::from(b == b'\n')).sum::<u8>()))
        .sum()
}

/// The records of a [`RecordChunk`]; see [`RecordChunk::records`].
pub struct ChunkRecords<'a> {
    text: &'a str,
    start: usize,
    line: u64,
    /// The line that is not UTF-8, reported once the lines before it are.
    bad: Option<u64>,
    /// One deserializer over the lines from the offset it starts at, so
    /// that its buffer for unescaping strings is reused line after line
    /// (a deserializer per line allocates it anew each time). Dropped, and
    /// the line parsed alone, at anything a line-by-line reading might take
    /// differently.
    stream: Option<(usize, LineStream<'a>)>,
}

type LineStream<'a> = serde_json::StreamDeserializer<'a, serde_json::de::StrRead<'a>, Line<'a>>;

impl<'a> ChunkRecords<'a> {
    /// The line `start..end` (not blank, no line end) through the shared
    /// deserializer, if it gives exactly what parsing the line alone gives:
    /// one value, ending on this line, followed by JSON whitespace only.
    fn streamed(&mut self, start: usize, end: usize) -> Option<Line<'a>> {
        let text = self.text;
        let (base, stream) = self.stream.get_or_insert_with(|| {
            let rest = text.get(start..).unwrap_or_default();
            (
                start,
                serde_json::Deserializer::from_str(rest).into_iter::<Line>(),
            )
        });
        let base = *base;
        let parsed = match stream.next() {
            Some(Ok(l)) => Some((l, base + stream.byte_offset())),
            _ => None,
        };
        match parsed {
            Some((l, value_end))
                if value_end <= end && text.get(value_end..end).is_some_and(json_space) =>
            {
                Some(l)
            }
            _ => {
                self.stream = None;
                None
            }
        }
    }
}

impl<'a> Iterator for ChunkRecords<'a> {
    type Item = Result<(RecordPos, RecordRef<'a>), ReplayError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rest = self.text.get(self.start..).unwrap_or_default();
            if rest.is_empty() {
                return self.bad.take().map(|line| Err(format_err(line, NOT_UTF8)));
            }
            let len = rest.find('\n').map_or(rest.len(), |i| i + 1);
            let pos = RecordPos {
                line: self.line,
                start: self.start,
            };
            self.start += len;
            self.line += 1;
            let line = rest.get(..len).unwrap_or_default();
            let parsed = if line.trim().is_empty() {
                // The deserializer skips a blank line only if JSON does.
                if !json_space(line) {
                    self.stream = None;
                }
                Ok(None)
            } else {
                let end = pos.start + line.trim_end_matches(['\n', '\r']).len();
                match self.streamed(pos.start, end) {
                    Some(l) => record_of(pos.line, l).map(Some),
                    None => parse_line(pos.line, line),
                }
            };
            match parsed {
                Ok(None) => continue,
                Ok(Some(r)) => return Some(Ok((pos, r))),
                Err(e) => {
                    // Nothing after an error.
                    self.start = self.text.len();
                    self.bad = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Reads a replay file in [`RecordChunk`]s of whole lines, for parsing on
/// other threads. Only the header is parsed here.
pub struct ReplayChunks<R: Read> {
    input: MaybeGz<R>,
    /// The start of a line not yet complete.
    carry: Vec<u8>,
    next_line: u64,
    chunk_bytes: usize,
    done: bool,
}

impl ReplayChunks<File> {
    /// Opens the recording `path` and checks its header; `chunk_bytes` as
    /// in [`ReplayChunks::new`].
    pub fn open(path: &Path, chunk_bytes: usize) -> Result<Self, ReplayError> {
        let f = File::open(path).map_err(|source| ReplayError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(f, chunk_bytes)
    }
}

impl<R: Read> ReplayChunks<R> {
    /// `chunk_bytes`: about how much text each chunk holds (at least one line).
    pub fn new(inner: R, chunk_bytes: usize) -> Result<Self, ReplayError> {
        let inner = MaybeGz::new(inner).map_err(|e| format_err(1, format!("read error: {e}")))?;
        let mut r = ReplayChunks {
            input: inner,
            carry: Vec::new(),
            next_line: 1,
            chunk_bytes: chunk_bytes.max(1),
            done: false,
        };
        // The header: read until its line is complete.
        let end = loop {
            if let Some(i) = r.carry.iter().position(|&b| b == b'\n') {
                break i + 1;
            }
            if r.done {
                break r.carry.len();
            }
            r.fill(r.carry.len() + r.chunk_bytes)?;
        };
        if end == 0 {
            return Err(format_err(1, "empty file: no header"));
        }
        check_header(r.carry.get(..end).unwrap_or_default())?;
        r.carry.drain(..end);
        r.next_line = 2;
        Ok(r)
    }

    /// Reads until `carry` holds `want` bytes or the input ends.
    fn fill(&mut self, want: usize) -> Result<(), ReplayError> {
        let need = want.saturating_sub(self.carry.len()) as u64;
        let mut carry = std::mem::take(&mut self.carry);
        let res = (&mut self.input).take(need).read_to_end(&mut carry);
        self.carry = carry;
        match res {
            Ok(n) => {
                if (n as u64) < need {
                    self.done = true;
                }
                Ok(())
            }
            Err(e) => Err(format_err(self.next_line, format!("read error: {e}"))),
        }
    }
}

impl<R: Read> Iterator for ReplayChunks<R> {
    type Item = Result<RecordChunk, ReplayError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut scanned = 0;
        let cut = loop {
            if !self.done && self.carry.len() < self.chunk_bytes {
                if let Err(e) = self.fill(self.chunk_bytes) {
                    self.done = true;
                    self.carry.clear();
                    return Some(Err(e));
                }
            }
            if self.done {
                break self.carry.len();
            }
            // Up to the last complete line; a line longer than a chunk
            // makes the chunk longer.
            match self
                .carry
                .get(scanned..)
                .unwrap_or_default()
                .iter()
                .rposition(|&b| b == b'\n')
            {
                Some(i) => break scanned + i + 1,
                None => {
                    scanned = self.carry.len();
                    let want = self.carry.len() + self.chunk_bytes;
                    if let Err(e) = self.fill(want) {
                        self.done = true;
                        self.carry.clear();
                        return Some(Err(e));
                    }
                }
            }
        };
        if cut == 0 {
            return None;
        }
        let rest = self.carry.split_off(cut);
        let text = std::mem::replace(&mut self.carry, rest);
        let first_line = self.next_line;
        self.next_line += count_lines(&text);
        Some(Ok(RecordChunk { first_line, text }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_text_and_binary_and_is_deterministic() {
        let recs = vec![
            ReplayRecord {
                t_ms: 1,
                topic: "a/b".into(),
                qos: 1,
                retain: false,
                payload: br#"{"ts":1,"value":2}"#.to_vec(),
            },
            ReplayRecord {
                t_ms: 2,
                topic: "spBv1.0/g/NDATA/n".into(),
                qos: 0,
                retain: true,
                payload: vec![0xff, 0x00, 0x80],
            },
        ];
        let write = || {
            let mut w = ReplayWriter::new(Vec::new()).unwrap();
            for r in &recs {
                w.write(r).unwrap();
            }
            w.finish().unwrap()
        };
        let bytes = write();
        assert_eq!(bytes, write());
        let back: Vec<_> = ReplayReader::new(&bytes[..])
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, recs);
    }

    #[test]
    fn bad_line_is_reported_with_its_number() {
        let mut w = ReplayWriter::new(Vec::new()).unwrap();
        w.out.write_all(b"{\"t_ms\":\"x\"}\n").unwrap();
        let bytes = w.finish().unwrap();
        let mut r = ReplayReader::new(&bytes[..]).unwrap();
        match r.next() {
            Some(Err(ReplayError::Format { line: 2, .. })) => {}
            other => panic!("expected a format error on line 2, got {other:?}"),
        }
    }

    /// Every record of `bytes` through [`ReplayChunks`] with chunks of
    /// `chunk` bytes, as `ReplayReader` would give them.
    fn via_chunks(bytes: &[u8], chunk: usize) -> Vec<Result<ReplayRecord, ReplayError>> {
        let mut out = Vec::new();
        let chunks = match ReplayChunks::new(bytes, chunk) {
            Ok(c) => c,
            Err(e) => return vec![Err(e)],
        };
        for c in chunks {
            match c {
                Err(e) => {
                    out.push(Err(e));
                    break;
                }
                Ok(c) => {
                    for r in c.records() {
                        let failed = r.is_err();
                        out.push(r.map(|(pos, r)| {
                            assert_eq!(c.record_at(pos).unwrap(), r);
                            r.into_owned()
                        }));
                        if failed {
                            return out;
                        }
                    }
                }
            }
        }
        out
    }

    fn same_as_reader(bytes: &[u8]) {
        let mut want: Vec<_> = Vec::new();
        for r in ReplayReader::new(bytes).unwrap() {
            let failed = r.is_err();
            want.push(r);
            if failed {
                break;
            }
        }
        let show = |v: &[Result<ReplayRecord, ReplayError>]| format!("{v:?}");
        for chunk in [1, 2, 7, 64, 100, CHUNK_BYTES] {
            assert_eq!(
                show(&via_chunks(bytes, chunk)),
                show(&want),
                "chunk {chunk}"
            );
        }
    }

    fn gz(text: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(text).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn chunks_give_the_records_and_errors_of_the_reader() {
        let rec = |t: i64, topic: &str, payload: &[u8]| ReplayRecord {
            t_ms: t,
            topic: topic.into(),
            qos: 1,
            retain: false,
            payload: payload.to_vec(),
        };
        let mut w = ReplayWriter::new(Vec::new()).unwrap();
        for i in 0..50 {
            w.write(&rec(i, &format!("a/b/{i}"), br#"{"ts":1,"value":"x\"y"}"#))
                .unwrap();
            w.write(&rec(i, "plain", b"no-escapes")).unwrap();
            w.write(&rec(i, "bin", &[0xff, 0, 1])).unwrap();
            if i % 7 == 0 {
                w.out.write_all(b"\n  \n").unwrap();
            }
        }
        let good = w.finish().unwrap();
        same_as_reader(&good);
        // Without a final line end.
        let text = b"{\"ctower_replay\":1}\n{\"t_ms\":1,\"topic\":\"t\",\"qos\":0,\"retain\":false,\"payload\":\"p\"}";
        same_as_reader(&gz(text));
        assert_eq!(via_chunks(&gz(text), 3).len(), 1);
        // Lines a single deserializer over the chunk would read differently:
        // trailing and blank non-JSON whitespace (U+00A0, taken by `trim`),
        // two records on one line, one record over two lines.
        let ok = "{\"t_ms\":1,\"topic\":\"t\",\"qos\":0,\"retain\":false,\"payload\":\"p\\\"q\"}";
        for odd in [
            format!("{ok}\u{a0}\n"),
            "\u{a0}\n".to_string(),
            " \t\r\n".to_string(),
            format!("  {ok}  \r\n"),
            format!("{ok} {ok}\n"),
            "{\"t_ms\":1,\n\"topic\":\"t\",\"qos\":0,\"retain\":false,\"payload\":\"p\"}\n"
                .to_string(),
        ] {
            let text = format!("{{\"ctower_replay\":1}}\n{ok}\n{odd}{ok}\n");
            same_as_reader(&gz(text.as_bytes()));
        }
        // A bad record on line 4, after a blank line.
        let text = b"{\"ctower_replay\":1}\n{\"t_ms\":1,\"topic\":\"t\",\"qos\":0,\"retain\":false,\"payload\":\"p\"}\n\n{\"t_ms\":\"x\"}\n{\"t_ms\":2,\"topic\":\"t\",\"qos\":0,\"retain\":false,\"payload\":\"p\"}\n";
        same_as_reader(&gz(text));
        let last = via_chunks(&gz(text), 5).pop();
        assert!(matches!(
            last,
            Some(Err(ReplayError::Format { line: 4, .. }))
        ));
        // A line that is not UTF-8 (line 3).
        let mut text = b"{\"ctower_replay\":1}\n{\"t_ms\":1,\"topic\":\"t\",\"qos\":0,\"retain\":false,\"payload\":\"p\"}\n{\"t_ms\":1,\"topic\":\"".to_vec();
        text.extend_from_slice(&[0xff, 0xfe]);
        text.extend_from_slice(b"\",\"qos\":0,\"retain\":false,\"payload\":\"p\"}\n");
        same_as_reader(&gz(&text));
        let got = via_chunks(&gz(&text), 4096);
        assert_eq!(got.len(), 2);
        assert!(matches!(got[1], Err(ReplayError::Format { line: 3, .. })));
        // Headers.
        assert!(ReplayChunks::new(&gz(b"")[..], 8).is_err());
        assert!(ReplayChunks::new(&gz(b"{\"t_ms\":1}\n")[..], 8).is_err());
        assert_eq!(
            ReplayChunks::new(&gz(b"{\"ctower_replay\":1}")[..], 8)
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn missing_header_is_an_error() {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(b"{\"t_ms\":1}\n").unwrap();
        let bytes = enc.finish().unwrap();
        assert!(ReplayReader::new(&bytes[..]).is_err());
    }
}
