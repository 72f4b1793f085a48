//! The `Ingest` source: the first worker of each process drains the input
//! channel and emits each observation (in a cluster: of its process's share
//! of sites) at its [`stamp`]; its capability follows the watermark, so the
//! frontier *is* the watermark. At the end of the input it closes every
//! window up to the last event (advancing the frontier past it by the
//! accumulators' lookahead), waits until the roll-up has emitted them (the
//! probe), and only then lets the frontier go empty, so the final windows
//! are closed deterministically rather than dropped.

use super::assets::schedule::stamp;
use super::{to_time, Time};
use crate::Cluster;
use ctower_model::time::window_start;
use ctower_model::{Batch, Observation};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::{source, OutputBuilderSession};
use timely::dataflow::operators::Capability;
use timely::dataflow::{ProbeHandle, Scope, Stream};
use timely::scheduling::{Activator, SyncActivator};

/// What the ingest operator of one worker is fed from: the input channel
/// and where to send its activator (the first worker of each process only),
/// and the end-of-input flags.
pub(crate) struct Feed {
    pub(crate) input: Option<tokio::sync::mpsc::Receiver<Batch>>,
    pub(crate) act_tx: Option<std::sync::mpsc::Sender<SyncActivator>>,
    /// Set by `PipelineInput::finish`: the input is complete.
    pub(crate) finished: Arc<AtomicBool>,
    /// Set here when the input ended without `finish`.
    pub(crate) aborted: Arc<AtomicBool>,
    /// Worker 0 only, when rules watch samples: the output, and the
    /// signals whose samples go to it as they are ingested.
    pub(crate) tee: Option<Tee>,
}

/// The output, the signals teed to it, and whether machine states are too.
pub(crate) type Tee = (
    std::sync::mpsc::SyncSender<crate::WindowOutput>,
    Arc<std::collections::BTreeSet<Arc<str>>>,
    bool,
);

/// The `Ingest` source on a scope.
pub(crate) trait IngestExt<'s> {
    /// Observations at their stamp, frontier at the watermark's window; in
    /// a cluster (`share`) only this process's sites. `probe` tells when
    /// the roll-up has emitted the final windows.
    fn ingest(
        self,
        feed: Feed,
        share: Option<Arc<Cluster>>,
        probe: ProbeHandle<Time>,
        window_ms: i64,
        lookahead_ms: i64,
    ) -> Stream<'s, Time, Vec<Observation>>;
}

impl<'s> IngestExt<'s> for Scope<'s, Time> {
    fn ingest(
        self,
        feed: Feed,
        share: Option<Arc<Cluster>>,
        probe: ProbeHandle<Time>,
        window_ms: i64,
        lookahead_ms: i64,
    ) -> Stream<'s, Time, Vec<Observation>> {
        let scope = self;
        source::<_, CapacityContainerBuilder<Vec<Observation>>, _, _>(
            scope,
            "Ingest",
            move |cap, info| {
                let Feed {
                    input,
                    act_tx,
                    finished,
                    aborted,
                    tee,
                } = feed;
                if let Some(tx) = act_tx {
                    let _ = tx.send(scope.worker().sync_activator_for(info.address.to_vec()));
                }
                let mut ingest = Ingest {
                    input,
                    cap: Some(cap),
                    finished,
                    aborted,
                    share,
                    probe,
                    activator: scope.activator_for(info.address.clone()),
                    window_ms,
                    lookahead_ms,
                    max_ts: None,
                    horizon: None,
                    tee,
                };
                move |output| ingest.activate(output)
            },
        )
    }
}

type Output<'a> = OutputBuilderSession<'a, Time, CapacityContainerBuilder<Vec<Observation>>>;

/// The state of one worker's ingest operator.
struct Ingest {
    input: Option<tokio::sync::mpsc::Receiver<Batch>>,
    cap: Option<Capability<Time>>,
    finished: Arc<AtomicBool>,
    aborted: Arc<AtomicBool>,
    share: Option<Arc<Cluster>>,
    probe: ProbeHandle<Time>,
    activator: Activator,
    window_ms: i64,
    lookahead_ms: i64,
    /// Newest event time of the input so far.
    max_ts: Option<i64>,
    /// After a finished input: the first window not to close.
    horizon: Option<Time>,
    tee: Option<Tee>,
}

impl Ingest {
    fn activate(&mut self, output: &mut Output<'_>) {
        if self.input.is_none() {
            self.idle();
            return;
        }
        if self.cap.is_none() {
            return;
        }
        // Bounded work per activation keeps the worker responsive.
        for _ in 0..64 {
            let Some(rx) = self.input.as_mut() else {
                return;
            };
            match rx.try_recv() {
                Ok(batch) => self.send(batch, output),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => return,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    self.end();
                    return;
                }
            }
        }
        self.activator.activate();
    }

    /// Not an ingesting worker, or the input ended: hold nothing (after a
    /// finished input, once the roll-up has emitted the final windows).
    fn idle(&mut self) {
        if let Some(h) = self.horizon {
            if self.probe.less_than(&h) {
                self.activator.activate_after(Duration::from_millis(1));
                return;
            }
        }
        self.cap = None;
    }

    /// Sends a batch's observations, each at its stamp, and follows its
    /// watermark.
    fn send(&mut self, batch: Batch, output: &mut Output<'_>) {
        let Some(c) = self.cap.as_mut() else {
            return;
        };
        let window_ms = self.window_ms;
        let mut obs = batch.observations;
        // Before the batch can close a window (the frontier moves below),
        // and before a cluster keeps only its share: every sample.
        if let Some((tx, signals, states)) = &self.tee {
            let samples: Vec<Observation> = obs
                .iter()
                .filter(|o| {
                    signals.contains(&o.signal)
                        || (*states && matches!(o.value, ctower_model::Value::State { .. }))
                })
                .cloned()
                .collect();
            if !samples.is_empty() {
                let out = crate::WindowOutput {
                    window_start_ms: 0,
                    window_end_ms: 0,
                    outputs: Vec::new(),
                    closes_window: false,
                    samples,
                };
                if tx.send(out).is_err() {
                    self.tee = None; // nobody listens any more
                }
            }
        }
        // Over the whole batch, so that every process of a cluster ends at
        // the same horizon.
        if let Some(m) = obs.iter().map(|o| o.ts_ms).max() {
            self.max_ts = Some(self.max_ts.map_or(m, |x| x.max(m)));
        }
        if let Some(c) = self.share.as_ref() {
            obs.retain(|o| c.owns_site(&o.asset.site));
        }
        for (w, mut part) in by_stamp(obs, window_ms) {
            // The batch's watermark never exceeds a later observation's;
            // guard it without panicking.
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

    /// The input channel closed.
    fn end(&mut self) {
        if !self.finished.load(Ordering::SeqCst) {
            // Stopped, not finished: close nothing more. The roll-up
            // learns it before the frontier empties, and drops what it
            // holds.
            self.aborted.store(true, Ordering::SeqCst);
            tracing::info!("pipeline input stopped before its end: open windows are not written");
            self.input = None;
            self.cap = None;
            return;
        }
        let Some(c) = self.cap.as_mut() else {
            return;
        };
        // The first window not to close; the accumulators close a window
        // once the frontier is past it by their lookahead.
        let window_ms = self.window_ms;
        let h = self
            .max_ts
            .map(|m| to_time(window_start(m, window_ms) + window_ms))
            .unwrap_or(*c.time())
            .max(*c.time());
        c.downgrade(&(h + self.lookahead_ms as Time).max(*c.time()));
        self.horizon = Some(h);
        self.input = None;
        self.activator.activate();
    }
}

/// Whole containers, one per stamp: no copy of each observation into an
/// output buffer. A batch mostly falls in one window. (Order within a
/// window does not matter: the accumulators sort by event time and
/// sequence.)
fn by_stamp(obs: Vec<Observation>, window_ms: i64) -> BTreeMap<i64, Vec<Observation>> {
    let mut by_window: BTreeMap<i64, Vec<Observation>> = BTreeMap::new();
    let first_w = obs.first().map(|o| stamp(o, window_ms));
    match first_w {
        Some(w) if obs.iter().all(|o| stamp(o, window_ms) == w) => {
            by_window.insert(w, obs);
        }
        _ => {
            for o in obs {
                by_window.entry(stamp(&o, window_ms)).or_default().push(o);
            }
        }
    }
    by_window
}
