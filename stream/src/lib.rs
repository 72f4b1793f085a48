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
//! Where things are: the operators, one per file (`operators/`: ingest,
//! assets, roll_up), are thin drivers of plain structs — the assets'
//! lateness and close scheduling (`operators/assets/schedule.rs`), the
//! per-asset accumulator ([`accum`]) and the roll-ups ([`rollup`]);
//! [`calendar`] and [`energy`] are what the KPIs are computed with;
//! [`time_of_day`] parses the `HH:MM` of both.
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
    /// What the accumulators need.
    pub accum: AccumConfig,
    /// Batches queued between the collector and the dataflow. When full, the
    /// sender waits (back-pressure on the collector).
    pub input_capacity: usize,
    /// Closed windows queued for the consumers. When full, the dataflow waits.
    pub output_capacity: usize,
    /// Samples of these signals also go to the consumers as they are
    /// ingested ([`WindowOutput::samples`]), for alarm rules evaluated per
    /// sample; empty: none.
    pub tee_signals: Vec<std::sync::Arc<str>>,
    /// Also every machine-state sample (alarm rules suppressed by machine
    /// states follow them).
    pub tee_states: bool,
}

/// What can go wrong in the stream processor.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Timely could not start its workers.
    #[error("could not start the timely workers: {0}")]
    Start(String),
    /// Connecting or running the processes of a cluster.
    #[error("cluster: {0}")]
    Cluster(String),
    /// The dataflow is gone: its input can take nothing more.
    #[error("the stream processor has stopped")]
    Stopped,
    /// A worker thread panicked.
    #[error("a timely worker panicked: {0}")]
    WorkerPanicked(String),
    /// Fewer periods than the baseline model can be fitted on.
    #[error("energy baseline: {n} period(s) are too few for a model with {parameters} parameters (at least {needed} needed)")]
    TooFewPeriods {
        /// Periods given.
        n: usize,
        /// Parameters of the model.
        parameters: usize,
        /// Periods needed.
        needed: usize,
    },
    /// A regressor is the same in every period.
    #[error("energy baseline: the {regressor} is the same in every period, so its effect cannot be estimated")]
    ZeroVariance {
        /// Which one.
        regressor: &'static str,
    },
    /// Production volume and degree-days are collinear.
    #[error("energy baseline: production volume and degree-days move together (correlation {correlation}), so their effects cannot be separated")]
    Singular {
        /// Their correlation.
        correlation: f64,
    },
    /// A period's value is not a finite number.
    #[error("energy baseline: period {index}: {field} is {value}, not a finite number")]
    NonFinite {
        /// The period.
        index: usize,
        /// `units`, `degree_days` or `kwh`.
        field: &'static str,
        /// The value.
        value: f64,
    },
    /// Degree-days given to a model without them, or missing for one with them.
    #[error("energy baseline{}: the model {} degree-days but the period {}", .index.map(|i| format!(", period {i}")).unwrap_or_default(), if *.model_uses_them { "uses" } else { "does not use" }, if *.model_uses_them { "has none" } else { "has them" })]
    DegreeDaysMismatch {
        /// The period, when one of a series.
        index: Option<usize>,
        /// Whether the model uses degree-days.
        model_uses_them: bool,
    },
}
