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
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("replay file {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("replay file line {line}: {reason}")]
    Format { line: u64, reason: String },
}

/// One recorded MQTT message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRecord {
    /// Receive time, ms since the epoch.
    pub t_ms: i64,
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    pub payload: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    t_ms: i64,
    #[serde(borrow)]
    topic: std::borrow::Cow<'a, str>,
    qos: u8,
    retain: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    payload: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload_b64: Option<String>,
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
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &line)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.count += 1;
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn finish(self) -> io::Result<W> {
        let mut inner = self.out.finish()?;
        inner.flush()?;
        Ok(inner)
    }
}

/// Reads a replay file record by record.
pub struct ReplayReader<R: Read> {
    input: BufReader<MultiGzDecoder<R>>,
    line_no: u64,
    buf: String,
}

impl ReplayReader<File> {
    pub fn open(path: &Path) -> Result<Self, ReplayError> {
        let f = File::open(path).map_err(|source| ReplayError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(f)
    }
}

impl<R: Read> ReplayReader<R> {
    pub fn new(inner: R) -> Result<Self, ReplayError> {
        let mut r = ReplayReader {
            input: BufReader::with_capacity(1 << 16, MultiGzDecoder::new(inner)),
            line_no: 0,
            buf: String::new(),
        };
        match r.next_line()? {
            None => Err(ReplayError::Format {
                line: 1,
                reason: "empty file: no header".into(),
            }),
            Some(()) => {
                let h: Header =
                    serde_json::from_str(r.buf.trim_end()).map_err(|e| ReplayError::Format {
                        line: 1,
                        reason: format!("not a ctower replay header ({e})"),
                    })?;
                if h.ctower_replay != FORMAT_VERSION {
                    return Err(ReplayError::Format {
                        line: 1,
                        reason: format!(
                            "replay format version {} is not supported (this build reads {FORMAT_VERSION})",
                            h.ctower_replay
                        ),
                    });
                }
                Ok(r)
            }
        }
    }

    fn next_line(&mut self) -> Result<Option<()>, ReplayError> {
        self.buf.clear();
        self.line_no += 1;
        match self.input.read_line(&mut self.buf) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(())),
            Err(e) => Err(ReplayError::Format {
                line: self.line_no,
                reason: format!("read error: {e}"),
            }),
        }
    }

    fn parse(&self) -> Result<ReplayRecord, ReplayError> {
        let err = |reason: String| ReplayError::Format {
            line: self.line_no,
            reason,
        };
        let l: Line = serde_json::from_str(self.buf.trim_end()).map_err(|e| err(e.to_string()))?;
        let payload = match (l.payload, l.payload_b64) {
            (Some(p), None) => p.into_owned().into_bytes(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| err(format!("payload_b64: {e}")))?,
            _ => return Err(err("exactly one of payload, payload_b64 is required".into())),
        };
        if l.qos > 2 {
            return Err(err(format!("qos {} is not 0, 1 or 2", l.qos)));
        }
        Ok(ReplayRecord {
            t_ms: l.t_ms,
            topic: l.topic.into_owned(),
            qos: l.qos,
            retain: l.retain,
            payload,
        })
    }
}

impl<R: Read> Iterator for ReplayReader<R> {
    type Item = Result<ReplayRecord, ReplayError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_line() {
                Err(e) => return Some(Err(e)),
                Ok(None) => return None,
                Ok(Some(())) if self.buf.trim().is_empty() => continue,
                Ok(Some(())) => return Some(self.parse()),
            }
        }
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

    #[test]
    fn missing_header_is_an_error() {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(b"{\"t_ms\":1}\n").unwrap();
        let bytes = enc.finish().unwrap();
        assert!(ReplayReader::new(&bytes[..]).is_err());
    }
}
