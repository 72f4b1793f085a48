//! The `Assets` operator: the per-asset accumulators, spread over the
//! workers by asset (exchange by a stable hash of the asset key). A thin
//! timely driver of [`AssetSchedule`], which decides what is late and when
//! windows close; this file only holds the capabilities and emits.

pub(crate) mod retire;
pub(crate) mod schedule;

use crate::accum::{AccumConfig, AssetWindow};
use crate::operators::Time;
use ctower_model::Observation;
use schedule::AssetSchedule;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

/// The `Assets` operator on a stream of observations.
pub(crate) trait AssetsExt<'s> {
    /// Per-asset accumulators: each closed window's asset windows (and
    /// corrections of earlier ones), at the window's time. Late data is
    /// held with a capability for the time it came at and applied once the
    /// frontier passes it (see [`schedule`]); observations too old to
    /// replay are counted in `late_dropped`.
    fn assets(
        self,
        accum: AccumConfig,
        late_dropped: Arc<AtomicU64>,
    ) -> Stream<'s, Time, Vec<AssetWindow>>;
}

impl<'s> AssetsExt<'s> for Stream<'s, Time, Vec<Observation>> {
    fn assets(
        self,
        accum: AccumConfig,
        late_dropped: Arc<AtomicU64>,
    ) -> Stream<'s, Time, Vec<AssetWindow>> {
        self.unary_frontier::<CapacityContainerBuilder<Vec<AssetWindow>>, _, _, _>(
            Exchange::new(|o: &Observation| o.asset.stable_hash()),
            "Assets",
            move |cap, _info| {
                let mut cap = Some(cap);
                let mut schedule: AssetSchedule<Capability<Time>> = AssetSchedule::new(accum);
                move |(input, frontier), output| {
                    input.for_each(|icap, data| {
                        let came = icap.least().copied();
                        for obs in data.drain(..) {
                            schedule.admit(came, obs, || icap.retain_least(0));
                        }
                    });
                    let Some(c) = cap.as_mut() else { return };
                    let limit = frontier.frontier().first().copied();
                    while let Some(step) = schedule.due(limit) {
                        let at = c.delayed(&step.at());
                        let mut session = output.session(&at);
                        schedule.run(step, |aw| session.give(aw));
                    }
                    let dropped = schedule.take_late_dropped();
                    if dropped > 0 {
                        late_dropped.fetch_add(dropped, Ordering::Relaxed);
                    }
                    let Some(l) = limit else {
                        // Input finished: the ingest closed every window first.
                        cap = None;
                        return;
                    };
                    let hold = schedule.hold(l);
                    if hold > *c.time() {
                        c.downgrade(&hold);
                    }
                }
            },
        )
    }
}
