//! The timely wiring: thin, all KPI logic lives in `accum` and `rollup`.

use crate::accum::{AccumConfig, AssetAccumulator, AssetWindow};
use crate::{rollup, Cluster, StreamConfig, StreamError};
use ctower_model::time::window_start;
use ctower_model::{Batch, Observation, StreamOutput};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::{source, Operator};
use timely::dataflow::operators::{Capability, Probe};
use timely::dataflow::{ProbeHandle, Scope, Stream};
use timely::scheduling::SyncActivator;
use timely::worker::Worker;

/// Timely time: window start, ms since the epoch.
type Time = u64;

/// All results of one closed window, in deterministic order.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowOutput {
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub outputs: Vec<StreamOutput>,
    /// A window closed. Otherwise `outputs` holds only corrections, or
    /// (at the end of the input) the shifts and days still open, marked
    /// incomplete.
    pub closes_window: bool,
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

    /// Sends from async code; waits while the queue is full.
    pub async fn send(&self, batch: Batch) -> Result<(), StreamError> {
        let tx = self.tx.as_ref().ok_or(StreamError::Stopped)?;
        tx.send(batch).await.map_err(|_| StreamError::Stopped)?;
        self.wake()
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
    pub outputs: Receiver<WindowOutput>,
    pub windows_closed: Arc<AtomicU64>,
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
    accum: AccumConfig,
    /// Global index of this process's first worker (timely numbers workers
    /// across the cluster: process `p` owns `p·w .. p·w + w − 1`).
    first_worker: usize,
    /// In a cluster: this process's share of the sites.
    share: Option<Arc<Cluster>>,
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
    let finished = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared {
        input: Mutex::new(Some(in_rx)),
        finished: finished.clone(),
        aborted: Arc::new(AtomicBool::new(false)),
        output: Mutex::new(Some(out_tx)),
        activator: Mutex::new(Some(act_tx)),
        windows_closed: windows_closed.clone(),
        accum: cfg.accum,
        first_worker: cluster
            .as_ref()
            .map_or(0, |c| c.process * cfg.workers.max(1)),
        share: cluster.clone().map(Arc::new),
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
    let probe = ProbeHandle::<Time>::new();

    worker.dataflow::<Time, _, _>(|scope| {
        let observations = ingest(
            scope,
            Feed {
                input,
                act_tx,
                finished: shared.finished.clone(),
                aborted: shared.aborted.clone(),
            },
            share,
            probe.clone(),
            window_ms,
            lookahead_ms,
        );
        let assets = assets(observations, accum);
        roll_up(
            assets,
            output,
            stage,
            window_ms,
            windows_closed,
            shared.aborted.clone(),
        )
        .probe_with(&probe);
    });
}

/// The first window start at or after `ms`.
fn align_up(ms: i64, window_ms: i64) -> i64 {
    window_start(ms + window_ms - 1, window_ms)
}

fn to_time(ms: i64) -> Time {
    // The collector only admits timestamps after 2000-01-01.
    ms.max(0) as Time
}

/// The first worker of each process drains the input channel and emits each
/// observation (in a cluster: of its share of sites) at its window; its
/// capability follows the watermark. At the end of the input it closes every
/// window up to the last event (advancing the frontier past it by the
/// accumulators' lookahead), waits until the roll-up has emitted them (the
/// probe), and only then lets the frontier go empty, so the final windows are
/// closed deterministically rather than dropped.
/// What the ingest operator of one worker is fed from: the input channel
/// and where to send its activator (the first worker of each process only),
/// and the end-of-input flags.
struct Feed {
    input: Option<tokio::sync::mpsc::Receiver<Batch>>,
    act_tx: Option<std::sync::mpsc::Sender<SyncActivator>>,
    finished: Arc<AtomicBool>,
    aborted: Arc<AtomicBool>,
}

fn ingest<'s>(
    scope: Scope<'s, Time>,
    feed: Feed,
    share: Option<Arc<Cluster>>,
    probe: ProbeHandle<Time>,
    window_ms: i64,
    lookahead_ms: i64,
) -> Stream<'s, Time, Vec<Observation>> {
    source::<_, CapacityContainerBuilder<Vec<Observation>>, _, _>(
        scope,
        "Ingest",
        move |cap, info| {
            let mut cap: Option<Capability<Time>> = Some(cap);
            let Feed {
                mut input,
                act_tx,
                finished,
                aborted,
            } = feed;
            if let Some(tx) = act_tx {
                let _ = tx.send(scope.worker().sync_activator_for(info.address.to_vec()));
            }
            let self_activator = scope.activator_for(info.address.clone());
            let mut max_ts: Option<i64> = None;
            let mut horizon: Option<Time> = None;
            move |output| {
                let Some(rx) = input.as_mut() else {
                    // Not an ingesting worker, or finished: hold nothing.
                    if let Some(h) = horizon {
                        if probe.less_than(&h) {
                            self_activator.activate_after(Duration::from_millis(1));
                            return;
                        }
                    }
                    cap = None;
                    return;
                };
                let Some(c) = cap.as_mut() else { return };
                // Bounded work per activation keeps the worker responsive.
                for _ in 0..64 {
                    match rx.try_recv() {
                        Ok(batch) => {
                            // Each observation goes out at its window, or at
                            // the watermark's window when it was admitted
                            // after that window had closed (late): a time
                            // fixed by the input alone, never by scheduling.
                            let window_of = |o: &Observation| {
                                let w = window_start(o.ts_ms, window_ms);
                                o.watermark_ms
                                    .map_or(w, |wm| w.max(window_start(wm, window_ms)))
                            };
                            let mut obs = batch.observations;
                            // Over the whole batch, so that every process of a
                            // cluster ends at the same horizon.
                            if let Some(m) = obs.iter().map(|o| o.ts_ms).max() {
                                max_ts = Some(max_ts.map_or(m, |x| x.max(m)));
                            }
                            if let Some(c) = share.as_ref() {
                                obs.retain(|o| c.owns_site(&o.asset.site));
                            }
                            // Whole containers, one per window: no copy of
                            // each observation into an output buffer. A batch
                            // mostly falls in one window. (Order within a
                            // window does not matter: the accumulators sort
                            // by event time and sequence.)
                            let first_w = obs.first().map(window_of);
                            let mut by_window: BTreeMap<i64, Vec<Observation>> = BTreeMap::new();
                            match first_w {
                                Some(w) if obs.iter().all(|o| window_of(o) == w) => {
                                    by_window.insert(w, obs);
                                }
                                _ => {
                                    for o in obs {
                                        by_window.entry(window_of(&o)).or_default().push(o);
                                    }
                                }
                            }
                            for (w, mut part) in by_window {
                                // The batch's watermark never exceeds a later
                                // observation's; guard it without panicking.
                                let at = c.delayed(&to_time(w).max(*c.time()));
                                output.session(&at).give_container(&mut part);
                            }
                            if let Some(wm) = batch.watermark_ms {
                                let t = to_time(window_start(wm, window_ms));
                                if t > *c.time() {
                                    c.downgrade(&t);
                                }
                            }
                        }
                        Err(tokio::sync::mpsc::error::TryRecvError::Empty) => return,
                        Err(tokio::sync::mpsc::error::TryRecvError::Disconnected)
                            if !finished.load(Ordering::SeqCst) =>
                        {
                            // Stopped, not finished: close nothing more.
                            // The roll-up learns it before the frontier
                            // empties, and drops what it holds.
                            aborted.store(true, Ordering::SeqCst);
                            tracing::info!(
                                "pipeline input stopped before its end: open windows are not written"
                            );
                            input = None;
                            cap = None;
                            return;
                        }
                        Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                            // The first window not to close; the accumulators
                            // close a window once the frontier is past it by
                            // their lookahead.
                            let h = max_ts
                                .map(|m| to_time(window_start(m, window_ms) + window_ms))
                                .unwrap_or(*c.time())
                                .max(*c.time());
                            c.downgrade(&(h + lookahead_ms as Time).max(*c.time()));
                            horizon = Some(h);
                            input = None;
                            self_activator.activate();
                            return;
                        }
                    }
                }
                self_activator.activate();
            }
        },
    )
}

/// Per-asset accumulators, spread over the workers by asset.
///
/// An observation that arrives at a timely time past its window's close
/// (window + lookahead) is late: it is held, with a capability for its
/// time, and applied as a correction once the frontier passes that time —
/// after every window closing before it and before any closing after it, so
/// that what each revision contains does not depend on scheduling.
fn assets(
    observations: Stream<'_, Time, Vec<Observation>>,
    accum: AccumConfig,
) -> Stream<'_, Time, Vec<AssetWindow>> {
    let window_ms = accum.window_ms;
    let lookahead = accum.lookahead_ms() as Time;
    let micro_stop_ms = accum.micro_stop_ms;
    observations.unary_frontier::<CapacityContainerBuilder<Vec<AssetWindow>>, _, _, _>(
        Exchange::new(|o: &Observation| o.asset.stable_hash()),
        "Assets",
        move |cap, _info| {
            let mut cap = Some(cap);
            // Any order: the roll-up sorts each window's assets.
            let mut accs: ctower_model::AssetMap<AssetAccumulator> = Default::default();
            // Assets retired after a silence: no state, reported at their
            // line until forgotten.
            let mut retired: ctower_model::AssetMap<Retired> = Default::default();
            // The next window this worker closes.
            let mut next: Option<i64> = None;
            // Late observations by the time they came at.
            let mut late: BTreeMap<Time, (Capability<Time>, Vec<Observation>)> = BTreeMap::new();
            move |(input, frontier), output| {
                input.for_each(|icap, data| {
                    let t = icap.least().copied();
                    for obs in data.drain(..) {
                        let w = window_start(obs.ts_ms, window_ms);
                        // The earliest window the observation can change: a
                        // state may end a stop that began up to the micro-stop
                        // threshold before it, in an earlier window.
                        let affects = if obs.role == ctower_model::Role::State && micro_stop_ms > 0
                        {
                            window_start(obs.ts_ms - micro_stop_ms, window_ms)
                        } else {
                            w
                        };
                        // Late (that window may have closed already) is
                        // decided by the time alone, never by what this
                        // worker happens to have seen.
                        if let Some(t) = t {
                            if t > to_time(affects) + lookahead {
                                if let Some(held) = late.get_mut(&t) {
                                    held.1.push(obs);
                                    continue;
                                }
                                if let Some(c) = icap.retain_least(0) {
                                    late.insert(t, (c, vec![obs]));
                                    continue;
                                }
                            }
                        }
                        next = Some(next.map_or(w, |n| n.min(w)));
                        // A retired asset that speaks again starts afresh
                        // (its stub goes when its new first window closes).
                        match accs.get_mut(&obs.asset) {
                            Some(acc) => acc.push(obs, window_ms),
                            None => {
                                let mut acc = AssetAccumulator::new(obs.asset.clone(), w);
                                acc.push(obs, window_ms);
                                accs.insert(acc.key().clone(), acc);
                            }
                        }
                    }
                });
                let Some(c) = cap.as_mut() else { return };
                let limit = frontier.frontier().first().copied();
                loop {
                    let close_at = next.map(|w| to_time(w) + lookahead);
                    let late_at = late.first_key_value().map(|(t, _)| *t);
                    let due = |t: Time| limit.is_none_or(|l| t < l);
                    match (late_at, close_at) {
                        // Corrections first, unless a window closes before them.
                        (Some(t), close) if due(t) && close.is_none_or(|k| t <= k || !due(k)) => {
                            let Some((_lcap, obs)) = late.remove(&t) else {
                                break;
                            };
                            // Every window closing before `t` is closed, none
                            // after: the replay runs up to the first of those.
                            let upto = align_up(t as i64 - lookahead as i64, window_ms);
                            let mut by_asset: BTreeMap<ctower_model::AssetKey, Vec<Observation>> =
                                BTreeMap::new();
                            for o in obs {
                                by_asset.entry(o.asset.clone()).or_default().push(o);
                            }
                            // Emitted at the first window not closed yet (the
                            // output is held there while late data waits),
                            // so the roll-up applies the corrections before
                            // that window closes: a shift or day still open
                            // when the late data came is emitted with it, at
                            // revision 0, not corrected after.
                            let at = c.delayed(&to_time(upto).max(*c.time()));
                            let mut session = output.session(&at);
                            for (key, obs) in by_asset {
                                // An asset first seen in late data appears as of now.
                                let acc = accs
                                    .entry(key.clone())
                                    .or_insert_with(|| AssetAccumulator::new(key, upto));
                                for aw in acc.correct(obs, upto, &accum) {
                                    session.give(aw);
                                }
                            }
                            // A new asset's windows from `upto` on close as usual
                            // (no asset of this worker had them before).
                            next = Some(next.map_or(upto, |n| n.min(upto)));
                        }
                        // A window closes once the frontier is past it by the
                        // lookahead: micro-stops need to see a stop's end.
                        (_, Some(k)) if limit.is_some_and(|l| k < l) => {
                            let Some(w) = next else { break };
                            let at = c.delayed(&to_time(w));
                            let mut session = output.session(&at);
                            for (key, acc) in accs.iter_mut() {
                                // A retired asset that spoke again resumes
                                // its counters and product as its first
                                // window closes (not when its data happened
                                // to arrive: that depends on timing).
                                if acc.first_window_ms() == w {
                                    if let Some(r) = retired.get(key) {
                                        acc.seed_readings(&r.readings);
                                    }
                                }
                                if let Some(aw) = acc.close(w, &accum) {
                                    session.give(aw);
                                }
                                // Earlier windows of a meter interval that
                                // ended in this one: corrections at `w`.
                                for aw in acc.take_corrections() {
                                    session.give(aw);
                                }
                            }
                            for aw in retired_windows(&mut retired, &accs, w, &accum) {
                                session.give(aw);
                            }
                            drop(session);
                            retire(&mut accs, &mut retired, w + window_ms, &accum);
                            next = Some(w + window_ms);
                        }
                        _ => break,
                    }
                }
                let Some(l) = limit else {
                    // Input finished: the ingest closed every window first.
                    cap = None;
                    return;
                };
                // Hold the output at the earliest time anything may still be
                // emitted at: the next window to close; the first window that
                // on-time data can still reach (frontier − lookahead); and,
                // for each held late batch, the window its replay ends at.
                let reachable = align_up(l as i64 - lookahead as i64, window_ms);
                let replay = late
                    .keys()
                    .next()
                    .map(|t| align_up(*t as i64 - lookahead as i64, window_ms));
                let hold = [next, Some(reachable), replay]
                    .into_iter()
                    .flatten()
                    .min()
                    .map_or(l, to_time);
                if hold > *c.time() {
                    c.downgrade(&hold);
                }
            }
        },
    )
}

/// An asset retired after a silence of `AccumConfig::retire_after_ms`.
#[derive(Debug, Clone)]
struct Retired {
    /// It had a machine-state time model: its time is unknown now.
    modelled: bool,
    /// Its last event time.
    last_ms: i64,
    /// Its counters' and meters' last readings: when it speaks again, what
    /// they counted meanwhile is reported (unmeasured), not lost.
    readings: crate::accum::LastReadings,
}

/// Retires the assets whose closed windows show a silence of the retire
/// time by `end` (their state is dropped: memory no longer grows with every
/// asset ever seen). Decided on the closed windows only, so that it does
/// not depend on what has happened to arrive for later ones: observations
/// already pending start a fresh accumulator, exactly as they would if they
/// came after the retirement.
fn retire(
    accs: &mut ctower_model::AssetMap<AssetAccumulator>,
    retired: &mut ctower_model::AssetMap<Retired>,
    end: i64,
    cfg: &AccumConfig,
) {
    if cfg.retire_after_ms <= 0 {
        return;
    }
    let silent: Vec<ctower_model::AssetKey> = accs
        .iter()
        .filter(|(_, acc)| {
            acc.newest_closed_ms()
                .is_some_and(|n| n + cfg.retire_after_ms <= end)
        })
        .map(|(k, _)| k.clone())
        .collect();
    for key in silent {
        let Some(mut acc) = accs.remove(&key) else {
            continue;
        };
        let readings = acc.last_readings();
        retired.insert(
            key.clone(),
            Retired {
                modelled: acc.is_modelled(),
                last_ms: acc.newest_closed_ms().unwrap_or(end),
                readings,
            },
        );
        let pending = acc.take_pending();
        if let Some(first) = pending.iter().map(|o| o.ts_ms).min() {
            // Seeded from the stub when its first window closes.
            let mut fresh = AssetAccumulator::new(key.clone(), window_start(first, cfg.window_ms));
            for o in pending {
                fresh.push(o, cfg.window_ms);
            }
            accs.insert(key, fresh);
        }
    }
}

/// Window `w`'s part of the retired assets: one window per line, counted
/// in the line's assets and, for assets with a time model, its unknown
/// time. A retired asset that spoke again stops being one at its new first
/// window; one silent for the forget time is forgotten.
fn retired_windows(
    retired: &mut ctower_model::AssetMap<Retired>,
    accs: &ctower_model::AssetMap<AssetAccumulator>,
    w: i64,
    cfg: &AccumConfig,
) -> Vec<AssetWindow> {
    retired.retain(|key, r| {
        r.last_ms + cfg.forget_after_ms > w
            && accs.get(key).is_none_or(|acc| acc.first_window_ms() > w)
    });
    let mut lines: BTreeMap<ctower_model::AssetKey, ctower_model::kpi::KpiSums> = BTreeMap::new();
    for (key, r) in retired.iter() {
        let sums = lines
            .entry(ctower_model::AssetKey::retired_of(key))
            .or_default();
        sums.assets += 1;
        if r.modelled {
            sums.unknown_ms += cfg.window_ms;
        }
    }
    lines
        .into_iter()
        .map(|(asset, sums)| AssetWindow {
            window_start_ms: w,
            asset,
            sums,
            signals: Vec::new(),
        })
        .collect()
}

/// Worker 0 rolls up each closed window (and the corrections that came at
/// its time) and sends it to the consumers.
fn roll_up<'s>(
    assets: Stream<'s, Time, Vec<AssetWindow>>,
    output: Option<SyncSender<WindowOutput>>,
    mut stage: rollup::RollUp,
    window_ms: i64,
    windows_closed: Arc<AtomicU64>,
    aborted: Arc<AtomicBool>,
) -> Stream<'s, Time, Vec<()>> {
    assets.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Exchange::new(|_: &AssetWindow| 0),
        "RollUp",
        move |_cap, _info| {
            let mut pending: HashMap<Time, Vec<AssetWindow>> = HashMap::new();
            let mut output = output;
            let mut last_end: Option<i64> = None;
            let mut flushed = false;
            move |(input, frontier), _out| {
                input.for_each(|cap, data| {
                    if let Some(t) = cap.least() {
                        pending.entry(*t).or_default().append(data);
                    }
                });
                if frontier.is_empty() && aborted.load(Ordering::SeqCst) {
                    // Stopped before the end of the input: what is still
                    // pending may be part of a window (some workers closed
                    // it, others never will). Write none of it, and no
                    // open shift or day either.
                    if !flushed {
                        flushed = true;
                        if !pending.is_empty() {
                            tracing::info!(
                                times = pending.len(),
                                "stopped: windows not yet closed on every worker are not written"
                            );
                        }
                        pending.clear();
                    }
                    return;
                }
                let mut ready: Vec<Time> = pending
                    .keys()
                    .copied()
                    .filter(|t| !frontier.less_equal(t))
                    .collect();
                ready.sort_unstable();
                let mut send = |msg: WindowOutput| {
                    if let Some(tx) = output.as_ref() {
                        if tx.send(msg).is_err() {
                            // Nobody listens any more; keep closing windows
                            // so the dataflow can finish.
                            output = None;
                        }
                    }
                };
                for t in ready {
                    let Some(windows) = pending.remove(&t) else {
                        continue;
                    };
                    let start = t as i64;
                    let (outputs, closes_window) = stage.at(start, windows);
                    if closes_window {
                        last_end = Some(start + window_ms);
                        windows_closed.fetch_add(1, Ordering::Relaxed);
                    }
                    if closes_window || !outputs.is_empty() {
                        send(WindowOutput {
                            window_start_ms: start,
                            window_end_ms: start + window_ms,
                            outputs,
                            closes_window,
                        });
                    }
                }
                // The end of the input (the frontier is empty only after
                // every window closed): shifts and days still open.
                if frontier.is_empty() && !flushed {
                    flushed = true;
                    let outputs = stage.finish();
                    if let (Some(end), false) = (last_end, outputs.is_empty()) {
                        send(WindowOutput {
                            window_start_ms: end,
                            window_end_ms: end,
                            outputs,
                            closes_window: false,
                        });
                    }
                    if stage.dropped_corrections() > 0 {
                        tracing::warn!(
                            corrections = stage.dropped_corrections(),
                            "corrections for windows older than the correction horizon were dropped"
                        );
                    }
                }
            }
        },
    )
}
