//! `ctower export --to-influx --from T --to T`: a period of the journal
//! loaded into InfluxDB later (the server was not configured yet, or an
//! outbox overflowed), through the same outbox and writer as live mode, so
//! with the same batches, retries, dead letters and idempotence: a point
//! exported twice overwrites itself.
//!
//! The export has its own outbox (`influx.outbox_dir` + `-export`), fed in
//! chunks while the writer keeps up, so a period of any length needs at
//! most a chunk's room; an export cut short is sent on by the next one.

use super::{Influx, InfluxRules};
use crate::journal::rotate;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Lines appended to the outbox at a time.
const CHUNK_LINES: usize = 20_000;

/// More is appended only while fewer lines than this wait.
const MAX_WAITING: u64 = 4 * CHUNK_LINES as u64;

/// What an export did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Exported {
    /// Journal files read.
    pub files: usize,
    /// Lines in the period, handed to the writer.
    pub lines: u64,
    /// Lines still in the export outbox at the end (the server stopped
    /// taking them; sent by the next export).
    pub left: u64,
    /// Lines the server refused (dead-lettered).
    pub rejected: u64,
}

/// The journal's files, oldest first: the rotated ones by name (their
/// names sort in time order), then the live `ctower.lp`.
pub fn journal_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut rotated = rotate::list(dir)?;
    rotated.sort_by(|a, b| a.name.cmp(&b.name));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|r| dir.join(r.name)).collect();
    let live = dir.join(rotate::LIVE);
    if live.exists() {
        files.push(live);
    }
    Ok(files)
}

/// The timestamp (ns) of a line-protocol line: its last field.
fn timestamp_ns(line: &str) -> Option<i64> {
    line.rsplit(' ').next()?.parse().ok()
}

/// Exports the journal lines in `dir` with timestamps in `[from_ms, to_ms)`
/// to the server of `rules`; `progress` is told (lines sent, lines read).
pub fn export(
    rules: &InfluxRules,
    dir: &Path,
    from_ms: i64,
    to_ms: i64,
    progress: &dyn Fn(u64, u64),
) -> anyhow::Result<Exported> {
    let files = journal_files(dir)
        .map_err(|e| anyhow::anyhow!("cannot list the journal in {}: {e}", dir.display()))?;
    if files.is_empty() {
        anyhow::bail!("no journal files in {}", dir.display());
    }
    let mut rules = rules.clone();
    let mut export_dir = rules.outbox.dir.clone().into_os_string();
    export_dir.push("-export");
    rules.outbox.dir = PathBuf::from(export_dir);
    let influx = Influx::start(&rules)?;
    let outbox = influx.outbox();
    let status = influx.status_handle();
    let (from_ns, to_ns) = (from_ms * 1_000_000, to_ms * 1_000_000);
    let mut out = Exported {
        files: files.len(),
        ..Exported::default()
    };
    let mut chunk = Vec::with_capacity(CHUNK_LINES);
    let sent = |out: &Exported, waiting: u64| out.lines.saturating_sub(waiting);
    let flush = |chunk: &mut Vec<String>, out: &mut Exported| -> anyhow::Result<()> {
        while outbox.pending() > MAX_WAITING {
            progress(sent(out, outbox.pending()), out.lines);
            std::thread::sleep(Duration::from_millis(50));
        }
        outbox.append(chunk, ctower_model::wall_ms())?;
        chunk.clear();
        Ok(())
    };
    for path in &files {
        let file = std::fs::File::open(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            if timestamp_ns(&line).is_some_and(|t| t >= from_ns && t < to_ns) {
                chunk.push(line);
                out.lines += 1;
                if chunk.len() >= CHUNK_LINES {
                    flush(&mut chunk, &mut out)?;
                }
            }
        }
    }
    flush(&mut chunk, &mut out)?;
    // The writer sends the rest while it makes progress; the bar follows.
    let total = out.lines;
    out.left = influx.finish_with(rules.timeout.max(Duration::from_secs(5)), &|pending| {
        progress(total.saturating_sub(pending), total)
    });
    out.rejected = status.status(ctower_model::wall_ms()).rejected;
    progress(out.lines - out.left, out.lines);
    Ok(out)
}
