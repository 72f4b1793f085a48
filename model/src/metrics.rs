//! Self-metrics of the pipeline, shown in the TUI and logged.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How the pipeline is doing: counts since start, rates, lag, dead
/// letters, queue depths and the outputs' health.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineMetrics {
    /// Messages received from all sources since start.
    pub received: u64,
    /// Observations accepted into the pipeline.
    pub accepted: u64,
    /// Messages rejected, by reason (see the README's dead-letter reasons).
    pub dead_letters: BTreeMap<String, u64>,
    /// Messages received per second over the last interval.
    pub ingest_rate_per_s: f64,
    /// Event-time watermark, ms since the epoch (`None` before any data).
    pub watermark_ms: Option<i64>,
    /// Newest event time seen minus the watermark, ms.
    pub watermark_lag_ms: i64,
    /// Windows closed so far.
    pub windows_closed: u64,
    /// Late observations the stream could not replay (older than the
    /// windows it keeps for corrections), dropped so far. The collector
    /// dead-letters what is older than the correction horizon (`too_late`);
    /// this counts the few that pass it but no longer reach a kept window.
    #[serde(default)]
    pub late_dropped: u64,
    /// Sites currently marked stale (silent past the idle timeout).
    pub stale_sites: Vec<String>,
    /// Stages that cannot do their job right now (a full disk under the
    /// journal or the dead-letter file …): shown in the dashboard, logged
    /// and alarmed. Empty when all is well.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// The outboxes in front of remote stores (InfluxDB): their depth, age
    /// and last error. Empty when none is configured.
    #[serde(default)]
    pub outboxes: Vec<OutboxStatus>,
    /// Each source: its connection and what it brought.
    #[serde(default)]
    pub sources: Vec<SourceHealth>,
}

/// One source of telemetry: its broker connection and its traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceHealth {
    /// The source's name (`sources[].name`).
    pub name: String,
    /// Its connection: `connecting`, `connected`, `subscribed`,
    /// `refused: …`, `disconnected: …` (empty: not known, e.g. a replay).
    #[serde(default)]
    pub state: String,
    /// Messages received from it since start.
    pub received: u64,
    /// Of its observations, those admitted.
    pub accepted: u64,
    /// Messages per second over the last interval.
    #[serde(default)]
    pub rate_per_s: f64,
    /// Newest event time admitted from it (its own watermark), ms since
    /// the epoch.
    pub newest_event_ms: Option<i64>,
    /// Wall time of its last message, ms since the epoch.
    pub last_recv_ms: Option<i64>,
}

/// An on-disk outbox in front of a remote store: what waits, since when,
/// and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboxStatus {
    /// Which store (`influx`).
    pub name: String,
    /// Where it writes (the server's URL, never a token).
    pub target: String,
    /// Lines on disk not yet accepted by the store.
    pub pending_lines: u64,
    /// Bytes the outbox's files take on disk.
    pub used_bytes: u64,
    /// Its disk budget, bytes.
    pub budget_bytes: u64,
    /// How long the oldest pending line has waited, ms (`None`: nothing waits).
    pub oldest_age_ms: Option<i64>,
    /// Lines the store accepted since start.
    pub written: u64,
    /// Lines the store refused (dead-lettered) since start.
    pub rejected: u64,
    /// Lines lost: dropped past the budget, or not written to the outbox.
    pub lost: u64,
    /// The last error, while writes fail.
    pub last_error: Option<String>,
}

/// A stage that cannot write (or otherwise do its job).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// `journal`, `dead_letters` …
    pub stage: String,
    /// The file (or endpoint) it cannot write.
    pub path: String,
    /// The last error, as the operating system gave it.
    pub error: String,
    /// What it could not keep so far (lines, dead letters).
    pub lost: u64,
}

impl PipelineMetrics {
    /// Dead letters of every reason.
    pub fn dead_letter_total(&self) -> u64 {
        self.dead_letters.values().sum()
    }
}
