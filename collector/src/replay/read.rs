//! The reading side of a replay: a thread that decodes the recording pass
//! after pass, shifted, into a bounded channel, and one that counts its
//! records for the progress total.

use super::shift::{loop_span_ms, shift_payload_ts, shift_to_now_ms};
use super::{thread_error, READ_AHEAD};
use crate::CollectorError;
use ctower_model::replay::ReplayReader;
use ctower_model::Clock;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// One record ready to publish, shifted.
pub(super) struct Prepared {
    pub(super) pass: u32,
    pub(super) t_ms: i64,
    pub(super) topic: String,
    pub(super) qos: u8,
    pub(super) retain: bool,
    pub(super) payload: Vec<u8>,
}

/// A record, or the error that ended the reading.
pub(super) type ReadItem = Result<Prepared, CollectorError>;

/// Starts the reader thread: `passes` passes (`None`: forever) of `path`
/// into the returned channel of [`READ_AHEAD`] records, in `span`. A read
/// error is the last item.
pub(super) fn spawn_reader(
    path: &Path,
    passes: Option<u32>,
    shift_to_now: Option<Clock>,
    span: tracing::Span,
) -> Result<(mpsc::Receiver<ReadItem>, JoinHandle<()>), CollectorError> {
    let (tx, rx) = mpsc::channel::<ReadItem>(READ_AHEAD);
    let path = path.to_path_buf();
    let reader = std::thread::Builder::new()
        .name("replay-read".into())
        .spawn(move || {
            let _g = span.enter();
            if let Err(e) = read_passes(&path, passes, shift_to_now.as_ref(), &tx) {
                let _ = tx.blocking_send(Err(e));
            }
        })
        .map_err(|e| thread_error("replay-read", e))?;
    Ok((rx, reader))
}

/// The number of records to publish, counted by a thread of its own (for
/// the progress bar) when the number of passes is known.
#[derive(Debug, Clone)]
pub(super) struct TotalHint(Arc<AtomicU64>);

impl TotalHint {
    /// Starts counting `passes` passes of `path` (nothing if `None`).
    pub(super) fn count(path: &Path, passes: Option<u32>) -> TotalHint {
        let total = TotalHint(Arc::new(AtomicU64::new(u64::MAX)));
        if let Some(p) = passes {
            let (hint, path): (_, PathBuf) = (total.0.clone(), path.to_path_buf());
            let counter = std::thread::Builder::new()
                .name("replay-count".into())
                .spawn(move || {
                    if let Ok(r) = ReplayReader::open(&path) {
                        hint.store(r.count() as u64 * u64::from(p), Ordering::Relaxed);
                    }
                });
            if let Err(e) = counter {
                tracing::debug!(error = %e, "no record count for the progress bar");
            }
        }
        total
    }

    /// The total, once counted.
    pub(super) fn get(&self) -> Option<u64> {
        match self.0.load(Ordering::Relaxed) {
            u64::MAX => None,
            n => Some(n),
        }
    }
}

/// Reads `passes` passes (`None`: forever) of the file into `tx`, shifting.
fn read_passes(
    path: &Path,
    passes: Option<u32>,
    shift_to_now: Option<&Clock>,
    tx: &mpsc::Sender<ReadItem>,
) -> Result<(), CollectorError> {
    let mut base_shift: Option<i64> = None;
    let mut span = 0i64;
    let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
    let mut pass = 0u32;
    while passes.is_none_or(|p| pass < p) {
        let mut n = 0u64;
        for rec in ReplayReader::open(path)? {
            let rec = rec?;
            // The base shift is fixed by the first record of the first pass.
            let base = *base_shift.get_or_insert_with(|| {
                shift_to_now.map_or(0, |now| shift_to_now_ms(rec.t_ms, now.now_ms()))
            });
            let shift = base.saturating_add(span.saturating_mul(i64::from(pass)));
            if pass == 0 {
                min_t = min_t.min(rec.t_ms);
                max_t = max_t.max(rec.t_ms);
            }
            let payload = match shift_payload_ts(&rec.payload, shift) {
                Some(p) => p,
                None => rec.payload,
            };
            let out = Prepared {
                pass,
                t_ms: rec.t_ms.saturating_add(shift),
                topic: rec.topic,
                qos: rec.qos,
                retain: rec.retain,
                payload,
            };
            if tx.blocking_send(Ok(out)).is_err() {
                return Ok(()); // the publisher has stopped
            }
            n += 1;
        }
        if n == 0 {
            tracing::warn!(path = %path.display(), pass, "the recording has no records");
            return Ok(());
        }
        if pass == 0 {
            span = loop_span_ms(min_t, max_t);
            tracing::debug!(span_ms = span, records = n, "first pass read");
        }
        pass += 1;
    }
    Ok(())
}
