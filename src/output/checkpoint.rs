//! Where the outputs stand, for a restart that reads the raw journal again
//! (`collector::rawjournal`): the engine computes every window again from
//! the journal, and the output stage must hand the sinks only what they do
//! not hold yet, exactly once.
//!
//! The stage's window outputs come in one deterministic order for one
//! sequence of messages (the same order in live and batch mode, which is
//! what makes their files byte-identical). A position in that order is the
//! end of the last window closed and the number of outputs since (late
//! corrections, delivered on their own). After each output delivered and
//! made durable by every sink, the stage writes its position and the
//! length of each file the sinks write (`DIR/outputs.json`, written to a
//! temporary file, fsynced, renamed). At a restart, each file is cut back
//! to its recorded length (what a crash left after it was never counted),
//! and the outputs up to the position are given to the alarm engine (its
//! state) but not to the sinks.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A position in the stage's sequence of window outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    /// End of the last window closed (`None`: none yet).
    pub closed_through_ms: Option<i64>,
    /// Outputs since it (corrections delivered on their own).
    pub since_close: u64,
}

impl Position {
    /// The position after `window`.
    pub fn after(self, closes_window: bool, window_end_ms: i64) -> Position {
        if closes_window {
            Position {
                closed_through_ms: Some(window_end_ms),
                since_close: 0,
            }
        } else {
            Position {
                since_close: self.since_close + 1,
                ..self
            }
        }
    }
}

/// One file a sink writes, and its durable length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLen {
    /// The file.
    pub path: PathBuf,
    /// Bytes written and synced.
    pub len: u64,
}

/// `outputs.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last output every sink holds.
    pub position: Position,
    /// The sinks' files at that point.
    pub files: Vec<FileLen>,
}

/// The checkpoint file of `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("outputs.json")
}

/// Reads the checkpoint (`None`: there is none yet).
pub fn load(dir: &Path) -> anyhow::Result<Option<Checkpoint>> {
    let p = path(dir);
    match std::fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("reading the output checkpoint {}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

/// Writes the checkpoint so that a crash leaves the old one or the new one.
pub fn store(dir: &Path, c: &Checkpoint) -> std::io::Result<()> {
    let p = path(dir);
    let tmp = dir.join("outputs.json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(c).map_err(std::io::Error::other)?)?;
    f.sync_data()?;
    std::fs::rename(&tmp, &p)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Cuts each file back to its checkpointed length (what lies beyond was
/// written after the last checkpoint and will be written again).
pub fn truncate_files(c: &Checkpoint) -> anyhow::Result<()> {
    for f in &c.files {
        let Ok(meta) = std::fs::metadata(&f.path) else {
            continue;
        };
        if meta.len() > f.len {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&f.path)
                .with_context(|| format!("opening {} to cut it back", f.path.display()))?;
            file.set_len(f.len)
                .and_then(|()| file.sync_data())
                .with_context(|| format!("cutting {} back", f.path.display()))?;
            tracing::warn!(
                path = %f.path.display(),
                cut_bytes = meta.len() - f.len,
                "output written after the last checkpoint cut back: it is computed again from the raw journal"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_like_the_outputs() {
        let p = Position::default();
        let a = p.after(false, 0); // a correction before any close
        let b = a.after(true, 60_000);
        let c = b.after(false, 0);
        let d = c.after(true, 120_000);
        assert!(p < a && a < b && b < c && c < d);
        assert_eq!(c.since_close, 1);
    }
}
