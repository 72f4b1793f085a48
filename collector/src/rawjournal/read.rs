//! Reading the raw journal back after a restart: every segment in order,
//! checksums checked, a torn or corrupt tail cut and reported.

use super::{message_hash, segments, DEDUP_WINDOW};
use crate::ingest::RawMessage;
use crate::CollectorError;
use base64::Engine;
use ctower_model::replay::check_crc;
use serde::Deserialize;
use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// A record line as read.
#[derive(Deserialize)]
struct Line {
    t_ms: i64,
    topic: String,
    #[allow(dead_code)] // part of the format; the source's QoS applies
    qos: u8,
    #[allow(dead_code)]
    retain: bool,
    payload: Option<String>,
    payload_b64: Option<String>,
    payload_size: Option<u64>,
    crc32: Option<u32>,
}

/// What the journal holds, read at start.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Every intact record, in arrival order (`source` left at 0: the
    /// caller picks it by topic, as the batch mode does).
    pub messages: Vec<RawMessage>,
    /// The number of the next record (segment numbering).
    pub next_record: u64,
    /// Topic-and-payload hashes of the last records, for redeliveries.
    pub recent: Vec<u64>,
    /// What was cut or skipped: (file, what).
    pub repaired: Vec<(PathBuf, String)>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CollectorError + '_ {
    move |source| CollectorError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads every segment of `dir` (none: an empty journal), cutting the last
/// segment's torn or corrupt tail.
pub fn open_dir(dir: &Path) -> Result<Recovered, CollectorError> {
    let segs = segments(dir).map_err(io(dir))?;
    let mut r = Recovered::default();
    let mut recent = VecDeque::new();
    let last = segs.len().saturating_sub(1);
    for (i, (first, path)) in segs.iter().enumerate() {
        let before = r.messages.len();
        read_segment(path, i == last, &mut r)?;
        for m in &r.messages[before..] {
            recent.push_back(message_hash(&m.topic, &m.payload));
            if recent.len() > DEDUP_WINDOW {
                recent.pop_front();
            }
        }
        r.next_record = first + (r.messages.len() - before) as u64;
    }
    r.recent = recent.into();
    for (p, what) in &r.repaired {
        tracing::warn!(path = %p.display(), what, "raw journal repaired");
    }
    Ok(r)
}

/// One segment's records into `r`; in the last segment, a bad last line
/// (torn, or failing its checksum) is cut off the file.
fn read_segment(path: &Path, is_last: bool, r: &mut Recovered) -> Result<(), CollectorError> {
    let file = OpenOptions::new()
        .read(true)
        .write(is_last)
        .open(path)
        .map_err(io(path))?;
    let mut input = BufReader::with_capacity(1 << 16, &file);
    let mut buf = Vec::new();
    let mut offset = 0u64;
    let mut line_no = 0u64;
    // (offset of the first bad line, why), when the bad lines run to the end.
    let mut bad_tail: Option<(u64, String)> = None;
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let start = offset;
        offset += n as u64;
        let parsed = if buf.last() != Some(&b'\n') {
            Err("a torn last line (no line end)".to_string())
        } else if line_no == 1 {
            match buf.as_slice() {
                b"{\"ctower_replay\":1}\n" => continue,
                _ => Err("not a raw journal segment header".to_string()),
            }
        } else {
            parse(line_no, &buf)
        };
        match parsed {
            Ok(msg) => {
                if let Some((at, why)) = bad_tail.take() {
                    // Bad lines followed by good ones: corruption inside
                    // the file, not a torn tail. Skipped, reported.
                    r.repaired.push((
                        path.to_path_buf(),
                        format!("a bad record at byte {at} skipped ({why})"),
                    ));
                }
                r.messages.push(msg);
            }
            Err(why) => {
                if bad_tail.is_none() {
                    bad_tail = Some((start, why));
                }
            }
        }
    }
    if let Some((at, why)) = bad_tail {
        if is_last {
            file.set_len(at).map_err(io(path))?;
            file.sync_data().map_err(io(path))?;
            r.repaired.push((
                path.to_path_buf(),
                format!("cut to {at} bytes: {} byte(s) of {why}", offset - at),
            ));
        } else {
            r.repaired.push((
                path.to_path_buf(),
                format!("bad records from byte {at} skipped ({why})"),
            ));
        }
    }
    Ok(())
}

fn parse(line_no: u64, buf: &[u8]) -> Result<RawMessage, String> {
    let text = std::str::from_utf8(buf).map_err(|_| "a line that is not UTF-8".to_string())?;
    let text = text.trim_end();
    let l: Line = serde_json::from_str(text).map_err(|e| format!("line {line_no}: {e}"))?;
    let Some(crc) = l.crc32 else {
        return Err(format!("line {line_no}: no checksum"));
    };
    check_crc(line_no, text, crc).map_err(|e| e.to_string())?;
    let payload = match (l.payload, l.payload_b64) {
        (Some(p), None) => p.into_bytes(),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| format!("line {line_no}: payload_b64: {e}"))?,
        _ => return Err(format!("line {line_no}: no payload")),
    };
    Ok(RawMessage {
        source: 0,
        topic: l.topic,
        payload,
        recv_ms: l.t_ms,
        truncated_from: l.payload_size.map(|s| s as usize),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{segment_name, writer::RawJournal, RawJournalRules};
    use super::*;
    use std::io::Write;

    fn msg(i: i64, payload: &[u8]) -> RawMessage {
        RawMessage {
            source: 0,
            topic: format!("acme/site/a/l/m{i}/count_total"),
            payload: payload.to_vec(),
            recv_ms: 1_772_427_600_000 + i,
            truncated_from: None,
        }
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ctower-raw-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn written_records_read_back_across_segments_with_a_torn_tail_cut() {
        let d = dir("roundtrip");
        let mut rules = RawJournalRules::in_dir(&d);
        rules.segment_bytes = 400; // a few records each
        let mut j = RawJournal::open(rules.clone(), 0, [], Box::new(|| 0)).unwrap();
        let mut want = Vec::new();
        for i in 0..20 {
            let m = if i == 7 {
                RawMessage {
                    truncated_from: Some(1 << 20),
                    ..msg(i, &[0xff, 0x00, 0x80])
                }
            } else {
                msg(i, format!(r#"{{"ts":{i},"value":1}}"#).as_bytes())
            };
            j.append(&m, 1);
            j.commit().unwrap();
            want.push(m);
        }
        assert!(j.is_duplicate(&want[3]));
        drop(j);
        let segs = segments(&d).unwrap();
        assert!(segs.len() > 3, "{segs:?}");
        // A crash in the middle of a write: half a line at the end.
        let last = &segs.last().unwrap().1;
        let mut f = OpenOptions::new().append(true).open(last).unwrap();
        f.write_all(b"{\"t_ms\":1,\"topic\":\"acme/x\",\"qos\":1,\"ret")
            .unwrap();
        drop(f);
        let r = open_dir(&d).unwrap();
        assert_eq!(r.messages, want);
        assert_eq!(r.next_record, 20);
        assert_eq!(r.repaired.len(), 1, "{:?}", r.repaired);
        assert!(r.repaired[0].1.contains("torn"), "{:?}", r.repaired);
        // Cut: a second reading finds nothing to repair.
        assert!(open_dir(&d).unwrap().repaired.is_empty());
        // The journal goes on after them, numbering on.
        let mut j = RawJournal::open(rules, r.next_record, r.recent, Box::new(|| 0)).unwrap();
        assert!(j.is_duplicate(&want[19]));
        j.append(&msg(20, b"x"), 1);
        j.commit().unwrap();
        assert!(d.join(segment_name(20)).exists());
        assert_eq!(open_dir(&d).unwrap().messages.len(), 21);
    }

    #[test]
    fn a_corrupt_record_is_never_taken() {
        let d = dir("corrupt");
        let rules = RawJournalRules::in_dir(&d);
        let mut j = RawJournal::open(rules, 0, [], Box::new(|| 0)).unwrap();
        for i in 0..3 {
            j.append(&msg(i, b"{\"ts\":1,\"value\":5}"), 1);
        }
        j.commit().unwrap();
        drop(j);
        let path = d.join(segment_name(0));
        // One flipped digit in the middle record's payload.
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines[2] = lines[2].replacen("\\\"value\\\":5", "\\\"value\\\":6", 1);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let r = open_dir(&d).unwrap();
        assert_eq!(r.messages.len(), 2);
        assert!(r.repaired[0].1.contains("checksum"), "{:?}", r.repaired);
        // The segment is a recording too: `ctower replay` reads it (and
        // refuses the corrupt line by its checksum).
        let read: Vec<_> = ctower_model::ReplayReader::open(&path).unwrap().collect();
        assert_eq!(read.len(), 3);
        assert!(read[0].is_ok() && read[2].is_ok());
        assert!(read[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("checksum"));
    }
}
