//! The ingest thread of live mode: decoder, admission and dead letters,
//! between the sources and the pipeline. Batches grow under load and stay
//! small when idle; a full pipeline input makes this thread wait (and so,
//! through the raw queue, the sources).

use crate::pipeline::live_ingestor;
use crate::settings::Settings;
use anyhow::Context;
use ctower_collector::deadletter::DeadLetterFile;
use ctower_collector::sparkplug::WriteDirectory;
use ctower_collector::{Ingestor, Outgoing, RawMessage};
use ctower_model::Clock;
use ctower_model::PipelineMetrics;
use ctower_stream::PipelineInput;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The running ingest thread.
pub struct Ingest {
    /// Ends with an error when refused messages could not be kept.
    pub thread: JoinHandle<anyhow::Result<()>>,
    /// Fires when the input has ended (the sources stopped, or
    /// `stop_after` was reached).
    pub done: oneshot::Receiver<()>,
}

/// What the ingest thread takes from the sources and gives back to them.
pub struct Feed {
    /// The sources' messages.
    pub raw: mpsc::Receiver<RawMessage>,
    /// Each source's outgoing publishes (by source index): the Sparkplug
    /// hosts' rebirth requests go there.
    pub outgoing: Vec<mpsc::Sender<Outgoing>>,
    /// The write directory the Sparkplug hosts fill from the births.
    pub directory: WriteDirectory,
    /// The I/O runtime: with a Sparkplug source, the thread waits for
    /// messages at most [`TICK`] through it, then ticks the hosts.
    pub runtime: tokio::runtime::Handle,
    /// Receive-time clock of the ticks.
    pub clock: Clock,
    /// The raw journal's messages from before a restart: taken first, in
    /// their order, as they were taken then.
    pub recovered: Vec<RawMessage>,
}

/// With a Sparkplug source, the hosts are ticked at least this often
/// (reorder waits, held values), messages or not.
pub const TICK: Duration = Duration::from_secs(1);

/// Starts the ingest thread; it publishes its metrics to `metrics`.
pub fn start(
    settings: Arc<Settings>,
    feed: Feed,
    input: PipelineInput,
    stop_after: Option<u64>,
    metrics: Arc<Mutex<PipelineMetrics>>,
) -> anyhow::Result<Ingest> {
    let (done_tx, done) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("ctower-ingest".into())
        .spawn(move || -> anyhow::Result<()> {
            let dead = DeadLetterFile::new(&settings.dead_letters);
            let mut ing = live_ingestor(&settings, Some(dead), feed.directory.clone());
            Loop {
                settings: &settings,
                ing: &mut ing,
                feed,
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
    settings: &'a Settings,
    ing: &'a mut Ingestor,
    feed: Feed,
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
        let ticking = self.settings.sources.iter().any(|s| s.sparkplug.is_some());
        received += self.recover()?;
        // `--stop-after` counts the messages computed again too: the raw
        // journal may already hold all of them.
        while !reached(received) {
            let msg = if ticking {
                let (rt, raw) = (self.feed.runtime.clone(), &mut self.feed.raw);
                // The timer is made inside the runtime (it needs its clock).
                match rt.block_on(async { tokio::time::timeout(TICK, raw.recv()).await }) {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(_) => {
                        self.tick()?;
                        continue;
                    }
                }
            } else {
                match self.feed.raw.blocking_recv() {
                    Some(m) => m,
                    None => break,
                }
            };
            received += 1;
            let mut full = self.ing.push(&msg)?;
            // Take what is already queued, then hand over a batch.
            while full.is_none() && !reached(received) {
                match self.feed.raw.try_recv() {
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
            self.send_rebirths();
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

    /// The raw journal's messages from before: each to the source that
    /// subscribes to its topic (as the batch mode picks it), batches to the
    /// pipeline as they fill. The output stage hands its sinks only what
    /// they do not hold yet.
    fn recover(&mut self) -> anyhow::Result<u64> {
        let recovered = std::mem::take(&mut self.feed.recovered);
        let n = recovered.len() as u64;
        if n == 0 {
            return Ok(0);
        }
        let sources = &self.settings.sources;
        // Their dead letters were written the first time; a node is not
        // asked for a rebirth over old messages.
        self.ing.mute_dead_letters(true);
        for mut m in recovered {
            m.source = sources
                .iter()
                .position(|s| s.subscribes_to(&m.topic))
                .unwrap_or(0);
            if let Some(batch) = self.ing.push(&m)? {
                self.input.blocking_send(batch)?;
            }
        }
        if self.ing.pending() > 0 {
            self.input.blocking_send(self.ing.flush()?)?;
        }
        self.ing.mute_dead_letters(false);
        self.ing.take_rebirths();
        self.publish();
        tracing::info!(messages = n, "raw journal computed again");
        Ok(n)
    }

    /// No message for a [`TICK`]: the Sparkplug hosts' time passes.
    fn tick(&mut self) -> anyhow::Result<()> {
        let now = self.feed.clock.now_ms();
        let batch = match self.ing.tick(now)? {
            Some(b) => b,
            None if self.ing.pending() > 0 => self.ing.flush()?,
            None => return Ok(()),
        };
        self.input.blocking_send(batch)?;
        self.send_rebirths();
        self.publish();
        Ok(())
    }

    /// Hands the hosts' rebirth requests to their sources (never waits:
    /// a full queue drops the request, and the host asks again).
    fn send_rebirths(&mut self) {
        for r in self.ing.take_rebirths() {
            if let Some(tx) = self.feed.outgoing.get(r.source) {
                if tx.try_send(r).is_err() {
                    tracing::warn!("a Sparkplug rebirth request was dropped: its source's queue is full or closed");
                }
            }
        }
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
