//! The `RollUp` operator: worker 0 rolls up each closed window (and the
//! corrections that came at its time) with [`RollUp`] and sends it to the
//! consumers, in time order.

use super::Time;
use crate::accum::AssetWindow;
use crate::rollup::RollUp;
use crate::WindowOutput;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;
use timely::progress::frontier::MutableAntichain;

/// The `RollUp` operator on a stream of asset windows.
pub(crate) trait RollUpExt<'s> {
    /// Rolls up every window once complete on every worker (the frontier
    /// past its time) and sends it on `output` (worker 0 only; the other
    /// workers pass `None`). `aborted`: the input stopped before its end,
    /// so nothing more is written.
    fn roll_up(
        self,
        output: Option<SyncSender<WindowOutput>>,
        stage: RollUp,
        window_ms: i64,
        windows_closed: Arc<AtomicU64>,
        aborted: Arc<AtomicBool>,
    ) -> Stream<'s, Time, Vec<()>>;
}

impl<'s> RollUpExt<'s> for Stream<'s, Time, Vec<AssetWindow>> {
    fn roll_up(
        self,
        output: Option<SyncSender<WindowOutput>>,
        stage: RollUp,
        window_ms: i64,
        windows_closed: Arc<AtomicU64>,
        aborted: Arc<AtomicBool>,
    ) -> Stream<'s, Time, Vec<()>> {
        self.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
            Exchange::new(|_: &AssetWindow| 0),
            "RollUp",
            move |_cap, _info| {
                let mut emit = Emit {
                    pending: HashMap::new(),
                    output,
                    stage,
                    window_ms,
                    windows_closed,
                    aborted,
                    last_end: None,
                    flushed: false,
                };
                move |(input, frontier), _out| {
                    input.for_each(|cap, data| {
                        if let Some(t) = cap.least() {
                            emit.pending.entry(*t).or_default().append(data);
                        }
                    });
                    emit.activate(frontier);
                }
            },
        )
    }
}

/// The state of the roll-up operator.
struct Emit {
    /// Asset windows by the time they came at.
    pending: HashMap<Time, Vec<AssetWindow>>,
    output: Option<SyncSender<WindowOutput>>,
    stage: RollUp,
    window_ms: i64,
    windows_closed: Arc<AtomicU64>,
    aborted: Arc<AtomicBool>,
    /// End of the last window closed.
    last_end: Option<i64>,
    /// The end of the input was handled.
    flushed: bool,
}

impl Emit {
    fn activate(&mut self, frontier: &MutableAntichain<Time>) {
        if frontier.is_empty() && self.aborted.load(Ordering::SeqCst) {
            self.drop_pending();
            return;
        }
        let mut ready: Vec<Time> = self
            .pending
            .keys()
            .copied()
            .filter(|t| !frontier.less_equal(t))
            .collect();
        ready.sort_unstable();
        for t in ready {
            if let Some(windows) = self.pending.remove(&t) {
                self.window(t as i64, windows);
            }
        }
        // The end of the input (the frontier is empty only after every
        // window closed): shifts and days still open.
        if frontier.is_empty() && !self.flushed {
            self.finish();
        }
    }

    /// Stopped before the end of the input: what is still pending may be
    /// part of a window (some workers closed it, others never will). Write
    /// none of it, and no open shift or day either.
    fn drop_pending(&mut self) {
        if self.flushed {
            return;
        }
        self.flushed = true;
        if !self.pending.is_empty() {
            tracing::info!(
                times = self.pending.len(),
                "stopped: windows not yet closed on every worker are not written"
            );
        }
        self.pending.clear();
    }

    /// Everything final at time `start`: the window starting there (if any
    /// asset closed it) and the corrections that came with it.
    fn window(&mut self, start: i64, windows: Vec<AssetWindow>) {
        let (outputs, closes_window) = self.stage.at(start, windows);
        if closes_window {
            self.last_end = Some(start + self.window_ms);
            self.windows_closed.fetch_add(1, Ordering::Relaxed);
        }
        if closes_window || !outputs.is_empty() {
            self.send(WindowOutput {
                window_start_ms: start,
                window_end_ms: start + self.window_ms,
                outputs,
                closes_window,
                samples: Vec::new(),
            });
        }
    }

    /// At the end of the input: the shifts and days still open.
    fn finish(&mut self) {
        self.flushed = true;
        let outputs = self.stage.finish();
        if let (Some(end), false) = (self.last_end, outputs.is_empty()) {
            self.send(WindowOutput {
                window_start_ms: end,
                window_end_ms: end,
                outputs,
                closes_window: false,
                samples: Vec::new(),
            });
        }
        if self.stage.dropped_corrections() > 0 {
            tracing::warn!(
                corrections = self.stage.dropped_corrections(),
                "corrections for windows older than the correction horizon were dropped"
            );
        }
    }

    fn send(&mut self, msg: WindowOutput) {
        if let Some(tx) = self.output.as_ref() {
            if tx.send(msg).is_err() {
                // Nobody listens any more; keep closing windows so the
                // dataflow can finish.
                self.output = None;
            }
        }
    }
}
