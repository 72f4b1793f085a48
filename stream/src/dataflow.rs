//! The timely wiring: the pipeline's handles (input, outputs, workers) and
//! the dataflow `ingest → assets → roll_up` built from the operators in
//! [`crate::operators`]. No KPI logic here: it lives in `accum`, `rollup`
//! and the operators' schedules.

use crate::accum::AccumConfig;
use crate::operators::{AssetsExt, Feed, IngestExt, RollUpExt, Time};
use crate::{rollup, Cluster, StreamConfig, StreamError};
use ctower_model::{Batch, StreamOutput};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;
use timely::scheduling::SyncActivator;
use timely::worker::Worker;

/// All results of one closed window, in deterministic order.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowOutput {
    /// Start of the window (at the end of the input, for the open shifts
    /// and days: the end of the last window).
    pub window_start_ms: i64,
    /// End of the window.
    pub window_end_ms: i64,
    /// Records and signal statistics, then corrections.
    pub outputs: Vec<StreamOutput>,
    /// A window closed. Otherwise `outputs` holds only corrections, or
    /// (at the end of the input) the shifts and days still open, marked
    /// incomplete, or this carries only `samples`.
    pub closes_window: bool,
    /// Samples of [`StreamConfig::tee_signals`](crate::StreamConfig::tee_signals)
    /// as they were ingested, in input order, ahead of the windows their
    /// batches close; such an output has no `outputs` and its window fields
    /// are 0. (Every sample whose admission watermark is before a window's
    /// end comes before that window.)
    pub samples: Vec<ctower_model::Observation>,
}

impl WindowOutput {
    /// Whether this carries only teed samples.
    pub fn is_samples(&self) -> bool {
        !self.samples.is_empty() && self.outputs.is_empty() && !self.closes_window
    }
}

/// The sending side of the pipeline. Cheap to clone; the dataflow stops
/// once every clone is dropped.
///
/// How it stops depends on whether the input was declared complete:
/// - [`PipelineInput::finish`] (the end of a recording, `--stop-after`):
///   there is nothing more to come, so every window up to the last event
///   closes with what it holds, and the shifts and days still open are
///   emitted marked incomplete;
/// - dropped without `finish` (the engine is stopped: Ctrl-C, a quit, a
///   failure): data would still have come for the open windows, so none of
///   them is closed or written. A partial window written as complete would
///   overwrite the full one in any store keyed like it.
#[derive(Clone)]
pub struct PipelineInput {
    // `Option` so that `Drop` can close the channel before waking the
    // ingest operator, which then sees the disconnect.
    tx: Option<tokio::sync::mpsc::Sender<Batch>>,
    activator: SyncActivator,
    finished: Arc<AtomicBool>,
}

impl Drop for PipelineInput {
    fn drop(&mut self) {
        drop(self.tx.take());
        // The worker may already be gone; nothing to wake then.
        let _ = self.activator.activate();
    }
}

impl PipelineInput {
    /// Declares the input complete and drops this handle: once every clone
    /// is gone, the open windows close (see the type's docs).
    pub fn finish(self) {
        self.finished.store(true, Ordering::SeqCst);
    }

    /// Sends from a plain thread (never from inside a tokio runtime); blocks
    /// while the queue is full.
    pub fn blocking_send(&self, batch: Batch) -> Result<(), StreamError> {
        let tx = self.tx.as_ref().ok_or(StreamError::Stopped)?;
        tx.blocking_send(batch).map_err(|_| StreamError::Stopped)?;
        self.wake()
    }

    fn wake(&self) -> Result<(), StreamError> {
        self.activator.activate().map_err(|_| StreamError::Stopped)
    }
}

/// A running pipeline: its result channel and its worker threads.
pub struct Pipeline {
    /// One message per closed window (and the corrections with it), in
    /// time order.
    pub outputs: Receiver<WindowOutput>,
    /// Windows closed so far (`PipelineMetrics::windows_closed`).
    pub windows_closed: Arc<AtomicU64>,
    /// Late observations too old to replay into the kept windows, dropped
    /// so far (`PipelineMetrics::late_dropped`).
    pub late_dropped: Arc<AtomicU64>,
    /// The worker threads.
    pub workers: PipelineJoin,
}

/// The timely worker threads of a running pipeline.
pub struct PipelineJoin {
    guards: Option<timely::communication::WorkerGuards<()>>,
    cluster: bool,
}

impl PipelineJoin {
    /// Waits for the workers to finish: they do once every [`PipelineInput`]
    /// is dropped and the last windows are closed.
    pub fn join(mut self) -> Result<(), StreamError> {
        match self.guards.take() {
            Some(g) => join_guards(g, self.cluster),
            None => Ok(()),
        }
    }
}

/// Dropped without `join` (an early error return): still wait for the
/// workers, as timely would, but never panic.
impl Drop for PipelineJoin {
    fn drop(&mut self) {
        if let Some(g) = self.guards.take() {
            let _ = join_guards(g, self.cluster);
        }
    }
}

/// Joins the workers, then timely's network threads (cluster mode). Those
/// panic when a peer process vanishes, and timely's guards re-panic on
/// joining them: report that as an error instead of aborting the process.
fn join_guards(
    guards: timely::communication::WorkerGuards<()>,
    cluster: bool,
) -> Result<(), StreamError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guards.join())) {
        Ok(results) => results
            .into_iter()
            .try_for_each(|r| r.map_err(StreamError::WorkerPanicked)),
        Err(_) if cluster => Err(StreamError::Cluster(
            "the connection to a peer process broke (did it stop? see its log)".into(),
        )),
        Err(_) => Err(StreamError::WorkerPanicked(
            "timely's worker threads failed".into(),
        )),
    }
}

struct Shared {
    input: Mutex<Option<tokio::sync::mpsc::Receiver<Batch>>>,
    /// Set by [`PipelineInput::finish`]: the input is complete.
    finished: Arc<AtomicBool>,
    /// Set by the ingest operator when the input ended without `finish`:
    /// the roll-up then writes nothing more.
    aborted: Arc<AtomicBool>,
    output: Mutex<Option<SyncSender<WindowOutput>>>,
    activator: Mutex<Option<std::sync::mpsc::Sender<SyncActivator>>>,
    windows_closed: Arc<AtomicU64>,
    late_dropped: Arc<AtomicU64>,
    accum: AccumConfig,
    /// Global index of this process's first worker (timely numbers workers
    /// across the cluster: process `p` owns `p·w .. p·w + w − 1`).
    first_worker: usize,
    /// In a cluster: this process's share of the sites.
    share: Option<Arc<Cluster>>,
    /// Signals whose samples worker 0 sends to the output as ingested.
    tee_signals: Arc<std::collections::BTreeSet<Arc<str>>>,
    /// Machine-state samples too.
    tee_states: bool,
}

/// Starts the timely workers and returns the input and the results.
pub fn start(cfg: StreamConfig) -> Result<(PipelineInput, Pipeline), StreamError> {
    start_on(cfg, None)
}

/// Starts this process's workers of a cluster (timely's cluster mode) once
/// every process is connected. Every process must be fed the same batches:
/// each keeps the observations of its share of sites
/// ([`Cluster::owns_site`]), so that watermarks and timely times agree
/// everywhere. Windows are emitted only by process 0; the other processes'
/// output channels stay empty and close when the dataflow ends.
pub fn start_cluster(
    cfg: StreamConfig,
    cluster: Cluster,
) -> Result<(PipelineInput, Pipeline), StreamError> {
    start_on(cfg, Some(cluster))
}

fn start_on(
    cfg: StreamConfig,
    cluster: Option<Cluster>,
) -> Result<(PipelineInput, Pipeline), StreamError> {
    let (in_tx, in_rx) = tokio::sync::mpsc::channel(cfg.input_capacity.max(1));
    let (out_tx, out_rx) = std::sync::mpsc::sync_channel(cfg.output_capacity.max(1));
    let (act_tx, act_rx) = std::sync::mpsc::channel();
    let windows_closed = Arc::new(AtomicU64::new(0));
    let late_dropped = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared {
        input: Mutex::new(Some(in_rx)),
        finished: finished.clone(),
        aborted: Arc::new(AtomicBool::new(false)),
        output: Mutex::new(Some(out_tx)),
        activator: Mutex::new(Some(act_tx)),
        windows_closed: windows_closed.clone(),
        late_dropped: late_dropped.clone(),
        accum: cfg.accum,
        first_worker: cluster
            .as_ref()
            .map_or(0, |c| c.process * cfg.workers.max(1)),
        share: cluster.clone().map(Arc::new),
        tee_signals: Arc::new(cfg.tee_signals.iter().cloned().collect()),
        tee_states: cfg.tee_states,
    });
    let (allocators, others) = match &cluster {
        Some(c) => c.allocators(cfg.workers.max(1))?,
        None if cfg.workers <= 1 => timely::CommunicationConfig::Thread
            .try_build()
            .map_err(StreamError::Start)?,
        None => timely::CommunicationConfig::Process(cfg.workers)
            .try_build()
            .map_err(StreamError::Start)?,
    };
    let guards = timely::execute::execute_from(
        allocators,
        others,
        timely::WorkerConfig::default(),
        move |worker| build(worker, &shared),
    )
    .map_err(StreamError::Start)?;
    // The process's first worker hands out the activator of its ingest
    // operator once built.
    let activator = act_rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| StreamError::Start("the first worker did not build the dataflow".into()))?;
    Ok((
        PipelineInput {
            tx: Some(in_tx),
            activator,
            finished,
        },
        Pipeline {
            outputs: out_rx,
            windows_closed,
            late_dropped,
            workers: PipelineJoin {
                guards: Some(guards),
                cluster: cluster.is_some(),
            },
        },
    ))
}

fn take<T>(m: &Mutex<Option<T>>) -> Option<T> {
    match m.lock() {
        Ok(mut g) => g.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    }
}

fn build(worker: &mut Worker, shared: &Shared) {
    let index = worker.index();
    // The first worker of each process ingests; worker 0 (process 0) emits.
    let first = index == shared.first_worker;
    let input = if first { take(&shared.input) } else { None };
    let output = if index == 0 {
        take(&shared.output)
    } else {
        None
    };
    let act_tx = if first { take(&shared.activator) } else { None };
    let share = shared.share.clone();
    let accum = shared.accum.clone();
    let window_ms = accum.window_ms;
    let lookahead_ms = accum.lookahead_ms();
    // Kept windows reach back as far as the accumulators' replay can.
    let stage = rollup::RollUp::new(
        window_ms,
        accum.calendars.clone(),
        accum.energy.clone(),
        accum.correction_horizon_ms + lookahead_ms + window_ms,
    );
    let windows_closed = shared.windows_closed.clone();
    let late_dropped = shared.late_dropped.clone();
    let probe = ProbeHandle::<Time>::new();
    let feed = Feed {
        input,
        act_tx,
        finished: shared.finished.clone(),
        aborted: shared.aborted.clone(),
        // Worker 0 ingests (it is its process's first worker) and emits.
        tee: match (&output, shared.tee_signals.is_empty() && !shared.tee_states) {
            (Some(tx), false) if first => {
                Some((tx.clone(), shared.tee_signals.clone(), shared.tee_states))
            }
            _ => None,
        },
    };

    worker.dataflow::<Time, _, _>(|scope| {
        scope
            .ingest(feed, share, probe.clone(), window_ms, lookahead_ms)
            .assets(accum, late_dropped)
            .roll_up(
                output,
                stage,
                window_ms,
                windows_closed,
                shared.aborted.clone(),
            )
            .probe_with(&probe);
    });
}
