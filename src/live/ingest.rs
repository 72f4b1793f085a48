//! The ingest thread of live mode: decoder, admission and dead letters,
//! between the sources and the pipeline. Batches grow under load and stay
//! small when idle; a full pipeline input makes this thread wait (and so,
//! through the raw queue, the sources).

use crate::pipeline::ingestor;
use crate::settings::Settings;
use anyhow::Context;
use ctower_collector::deadletter::DeadLetterFile;
use ctower_collector::{Ingestor, RawMessage};
use ctower_model::PipelineMetrics;
use ctower_stream::PipelineInput;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// The running ingest thread.
pub struct Ingest {
    /// Ends with an error when refused messages could not be kept.
    pub thread: JoinHandle<anyhow::Result<()>>,
    /// Fires when the input has ended (the sources stopped, or
    /// `stop_after` was reached).
    pub done: oneshot::Receiver<()>,
}

/// Starts the ingest thread; it publishes its metrics to `metrics`.
pub fn start(
    settings: Arc<Settings>,
    raw: mpsc::Receiver<RawMessage>,
    input: PipelineInput,
    stop_after: Option<u64>,
    metrics: Arc<Mutex<PipelineMetrics>>,
) -> anyhow::Result<Ingest> {
    let (done_tx, done) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("ctower-ingest".into())
        .spawn(move || -> anyhow::Result<()> {
            let dead = DeadLetterFile::new(&settings.dead_letters);
            let mut ing = ingestor(&settings, Some(dead));
            Loop {
                ing: &mut ing,
                raw,
                input,
                stop_after,
                metrics: &metrics,
            }
            .run()?;
            let _ = done_tx.send(());
            dead_letters_kept(&ing)
        })
        .context("starting the ingest thread")?;
    Ok(Ingest { thread, done })
}

struct Loop<'a> {
    ing: &'a mut Ingestor,
    raw: mpsc::Receiver<RawMessage>,
    input: PipelineInput,
    stop_after: Option<u64>,
    metrics: &'a Mutex<PipelineMetrics>,
}

impl Loop<'_> {
    /// Until the sources stop or `stop_after` is reached.
    fn run(mut self) -> anyhow::Result<()> {
        let mut received = 0u64;
        let stop_after = self.stop_after;
        let reached = move |n: u64| stop_after.is_some_and(|s| n >= s);
        while let Some(msg) = self.raw.blocking_recv() {
            received += 1;
            let mut full = self.ing.push(&msg)?;
            // Take what is already queued, then hand over a batch.
            while full.is_none() && !reached(received) {
                match self.raw.try_recv() {
                    Ok(m) => {
                        received += 1;
                        full = self.ing.push(&m)?;
                    }
                    Err(_) => break,
                }
            }
            let batch = match full {
                Some(b) => b,
                None => self.ing.flush()?,
            };
            self.input.blocking_send(batch)?;
            self.publish();
            if reached(received) {
                tracing::info!(received, "--stop-after reached: stopping");
                break;
            }
        }
        if self.ing.pending() > 0 {
            self.input.blocking_send(self.ing.flush()?)?;
        }
        self.publish();
        if reached(received) {
            // `--stop-after`: these messages are the whole input, so every
            // window up to the last one closes.
            self.input.finish();
        } else {
            // Stopped (Ctrl-C, quit, the sources ended): more data would
            // have come for the open windows, so they are not written (a
            // partial window must never overwrite the full one under the
            // same key).
            drop(self.input);
        }
        Ok(())
    }

    fn publish(&self) {
        if let Ok(mut m) = self.metrics.lock() {
            *m = self.ing.metrics();
        }
    }
}

/// Refused messages that could not be kept: the run lost evidence, so it
/// does not end as a success.
fn dead_letters_kept(ing: &Ingestor) -> anyhow::Result<()> {
    match ing.dead_letter_health().filter(|h| h.failed > 0) {
        Some(h) => anyhow::bail!(
            "{} dead letter(s) could not be written to {} ({})",
            h.failed,
            h.path.display(),
            h.last_error.unwrap_or_default()
        ),
        None => Ok(()),
    }
}
