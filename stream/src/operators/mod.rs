//! The timely operators of the dataflow, one per file, each an extension
//! trait on the stream (or scope) it reads, as timely's own operators are:
//!
//! ```text
//! scope.ingest(..)          Ingest: batches → observations at their stamp
//!      .assets(..)          Assets: per-asset accumulators, late data
//!      .roll_up(..)         RollUp: worker 0 sums each window, sends it out
//! ```
//!
//! The decisions live in plain structs the operators drive:
//! [`assets::schedule::AssetSchedule`] (lateness, when windows close),
//! [`crate::accum::AssetAccumulator`] and [`crate::rollup::RollUp`].

pub(crate) mod assets;
pub(crate) mod ingest;
pub(crate) mod roll_up;

pub(crate) use assets::AssetsExt;
pub(crate) use ingest::{Feed, IngestExt};
pub(crate) use roll_up::RollUpExt;

/// Timely time: a window start, ms since the epoch.
pub(crate) type Time = u64;

/// The timely time of `ms`.
#[inline]
pub(crate) fn to_time(ms: i64) -> Time {
    // The collector only admits timestamps after 2000-01-01.
    ms.max(0) as Time
}
