//! ctower's stream processor: a timely dataflow that turns observations into
//! per-window KPIs (ISO 22400 OEE, energy, water recovery) for every asset,
//! line, site and the group.
//!
//! The dataflow runs on its own OS threads (`-w` workers). The collector feeds
//! it [`Batch`]es through a bounded channel and wakes it with an activator;
//! results leave through a second bounded channel, one message per closed
//! window, in a deterministic order. Shape of the dataflow:
//!
//! ```text
//! ingest (first worker of each process: batches → observations at their window,
//!         frontier = watermark; in a cluster only the process's share of sites)
//!   ─exchange by asset─> assets (per-asset accumulators; close windows at the frontier)
//!   ─exchange to worker 0─> roll-up (asset → line → site → group; sort; send)
//! ```
//!
//! The timely timestamp is the window start in ms: the frontier *is* the
//! event-time watermark, so a window closes exactly when every worker has
//! seen everything before it.
//!
//! [`start_cluster`] runs the same dataflow over several processes (timely's
//! cluster mode, see [`cluster`]): each process is fed the same batches and
//! keeps only the observations of its share of sites, and process 0's worker
//! 0 rolls up and emits every window.

pub mod accum;
pub mod calendar;
pub mod cluster;
mod dataflow;
pub mod energy;
mod operators;
pub mod rollup;
pub mod time_of_day;

pub use accum::{AccumConfig, AssetAccumulator, AssetWindow, LastReadings};
pub use cluster::Cluster;
pub use ctower_model::Batch;
pub use dataflow::{start, start_cluster, Pipeline, PipelineInput, WindowOutput};

/// Settings of the stream processor.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Timely worker threads in this process (in a cluster, every process
    /// runs this many).
    pub workers: usize,
    pub accum: AccumConfig,
    /// Batches queued between the collector and the dataflow. When full, the
    /// sender waits (back-pressure on the collector).
    pub input_capacity: usize,
    /// Closed windows queued for the consumers. When full, the dataflow waits.
    pub output_capacity: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("could not start the timely workers: {0}")]
    Start(String),
    #[error("cluster: {0}")]
    Cluster(String),
    #[error("the stream processor has stopped")]
    Stopped,
    #[error("a timely worker panicked: {0}")]
    WorkerPanicked(String),
    #[error("energy baseline: {n} period(s) are too few for a model with {parameters} parameters (at least {needed} needed)")]
    TooFewPeriods {
        n: usize,
        parameters: usize,
        needed: usize,
    },
    #[error("energy baseline: the {regressor} is the same in every period, so its effect cannot be estimated")]
    ZeroVariance { regressor: &'static str },
    #[error("energy baseline: production volume and degree-days move together (correlation {correlation}), so their effects cannot be separated")]
    Singular { correlation: f64 },
    #[error("energy baseline: period {index}: {field} is {value}, not a finite number")]
    NonFinite {
        index: usize,
        field: &'static str,
        value: f64,
    },
    /// Degree-days given to a model without them, or missing for one with them.
    #[error("energy baseline{}: the model {} degree-days but the period {}", .index.map(|i| format!(", period {i}")).unwrap_or_default(), if *.model_uses_them { "uses" } else { "does not use" }, if *.model_uses_them { "has none" } else { "has them" })]
    DegreeDaysMismatch {
        index: Option<usize>,
        model_uses_them: bool,
    },
}
