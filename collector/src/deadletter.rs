//! The dead-letter file: every refused message with its topic, reason and
//! payload, one JSON object per line, so nothing refused is lost.
//!
//! ```text
//! {"recv_ms":…,"source":"plant-a","topic":"…","reason":"wrong_type","detail":"…","payload":"…"}
//! ```
//! Non-UTF-8 payloads are written as `payload_b64`.

use crate::decode::Reason;
use crate::CollectorError;
use base64::Engine;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

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
}

/// Appends to the dead-letter file (created on the first refusal).
pub struct DeadLetterFile {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl DeadLetterFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DeadLetterFile {
            path: path.into(),
            out: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &mut self,
        recv_ms: i64,
        source: &str,
        topic: &str,
        reason: Reason,
        detail: &str,
        payload: &[u8],
    ) -> Result<(), CollectorError> {
        let io = |source| CollectorError::Io {
            path: self.path.display().to_string(),
            source,
        };
        if self.out.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(io)?;
            self.out = Some(BufWriter::new(f));
        }
        let (text, b64) = match std::str::from_utf8(payload) {
            Ok(s) => (Some(s), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(payload)),
            ),
        };
        let line = Line {
            recv_ms,
            source,
            topic,
            reason: reason.as_str(),
            detail,
            payload: text,
            payload_b64: b64,
        };
        if let Some(out) = self.out.as_mut() {
            serde_json::to_writer(&mut *out, &line).map_err(|e| io(e.into()))?;
            out.write_all(b"\n").map_err(io)?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), CollectorError> {
        if let Some(out) = self.out.as_mut() {
            out.flush().map_err(|source| CollectorError::Io {
                path: self.path.display().to_string(),
                source,
            })?;
        }
        Ok(())
    }
}
