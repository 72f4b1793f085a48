//! Self-metrics of live mode, once a second: the ingest's counters, the
//! rate, the closed windows and every stage's faults, to the dashboard; a
//! `pipeline` log line every 30 s (an error line while a stage fails —
//! never "all is well" while one cannot write).

use crate::output::BoardFeed;
use anyhow::Context;
use ctower_model::{Fault, PipelineMetrics};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the ticker reads.
pub struct TickerInputs {
    /// The ingest's metrics.
    pub metrics: Arc<Mutex<PipelineMetrics>>,
    /// The output stage's faults.
    pub faults: Arc<Mutex<Vec<Fault>>>,
    /// The raw journal's fault, while it cannot write.
    pub raw_journal: Arc<Mutex<Option<Fault>>>,
    /// The sources' faults (a refused subscription).
    pub sources: super::sources::SourceFaults,
    /// The InfluxDB output's status, when configured.
    pub influx: Option<crate::influx::InfluxStatus>,
    /// The alarm hooks' outboxes and delivery.
    pub hooks: ctower_alerts::HooksHealth,
    /// Windows closed by the pipeline.
    pub windows_closed: Arc<AtomicU64>,
    /// Late observations the pipeline dropped.
    pub late_dropped: Arc<AtomicU64>,
    /// Each source's connection state.
    pub source_states: super::sources::SourceStates,
    /// The sources' names, by index.
    pub source_names: Vec<String>,
    /// The dashboard feed, when anything consumes it: the metrics and
    /// the engine's heartbeat go to it.
    pub board: Option<BoardFeed>,
}

/// The running ticker; [`Ticker::stop`] ends it at once.
pub struct Ticker {
    done: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Ticker {
    /// Starts the ticker thread.
    pub fn start(inputs: TickerInputs) -> anyhow::Result<Ticker> {
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let thread = std::thread::Builder::new()
            .name("ctower-metrics".into())
            .spawn(move || tick(inputs, &stop))
            .context("starting the metrics thread")?;
        Ok(Ticker { done, thread })
    }

    /// Stops the ticker (it is parked between ticks: woken now).
    pub fn stop(&self) {
        self.done.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
    }
}

fn tick(inputs: TickerInputs, done: &AtomicBool) {
    let (mut last, mut at) = (0u64, Instant::now());
    let mut last_by_source: Vec<u64> = Vec::new();
    let mut logged = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::park_timeout(Duration::from_secs(1));
        let mut m = inputs.metrics.lock().map(|m| m.clone()).unwrap_or_default();
        if let Ok(f) = inputs.faults.lock() {
            m.faults.extend(f.iter().cloned());
        }
        if let Ok(f) = inputs.raw_journal.lock() {
            m.faults.extend(f.iter().cloned());
        }
        if let Ok(f) = inputs.sources.lock() {
            m.faults.extend(f.iter().cloned());
        }
        if let Some(i) = &inputs.influx {
            let now = ctower_model::wall_ms();
            m.outboxes.push(i.status(now));
            m.faults.extend(i.faults(now));
        }
        let now = ctower_model::wall_ms();
        m.outboxes.extend(inputs.hooks.statuses(now));
        m.faults.extend(inputs.hooks.faults(now));
        let dt = at.elapsed().as_secs_f64().max(1e-3);
        m.ingest_rate_per_s = (m.received.saturating_sub(last)) as f64 / dt;
        let states = inputs
            .source_states
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        // A source that sent nothing yet is listed too, with its state.
        if m.sources.len() < states.len() {
            m.sources.resize_with(states.len(), Default::default);
        }
        last_by_source.resize(m.sources.len(), 0);
        for (i, h) in m.sources.iter_mut().enumerate() {
            h.rate_per_s = h.received.saturating_sub(last_by_source[i]) as f64 / dt;
            last_by_source[i] = h.received;
            if let Some(state) = states.get(i) {
                h.state.clone_from(state);
            }
            if h.name.is_empty() {
                h.name = inputs.source_names.get(i).cloned().unwrap_or_default();
            }
        }
        m.windows_closed = inputs.windows_closed.load(Ordering::Relaxed);
        m.late_dropped = inputs.late_dropped.load(Ordering::Relaxed);
        (last, at) = (m.received, Instant::now());
        if logged.elapsed() >= Duration::from_secs(30) {
            logged = Instant::now();
            log(&m);
        }
        if let Some(feed) = &inputs.board {
            feed.beat(Some(&m), true, ctower_model::wall_ms());
        }
    }
}

fn log(m: &PipelineMetrics) {
    let failing: Vec<String> = m
        .faults
        .iter()
        .map(|f| format!("{} ({}): {}", f.stage, f.path, f.error))
        .collect();
    if failing.is_empty() {
        tracing::info!(
            received = m.received,
            rate_per_s = m.ingest_rate_per_s.round(),
            dead_letters = m.dead_letter_total(),
            watermark_lag_ms = m.watermark_lag_ms,
            windows = m.windows_closed,
            stale_sites = ?m.stale_sites,
            influx_pending = m.outboxes.iter().map(|o| o.pending_lines).sum::<u64>(),
            "pipeline"
        );
    } else {
        tracing::error!(
            received = m.received,
            rate_per_s = m.ingest_rate_per_s.round(),
            dead_letters = m.dead_letter_total(),
            windows = m.windows_closed,
            failing = ?failing,
            "pipeline: stages failing"
        );
    }
}
