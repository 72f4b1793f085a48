//! The drainer: the outbox's lines to InfluxDB, in order, in batches, on
//! its own OS thread (with a single-threaded tokio runtime for the
//! `influxdb2` client, so the engine's runtime never waits on InfluxDB).
//!
//! Per batch: written → the cursor moves on; a retryable failure (429, 5xx,
//! a timeout, no connection) → the same lines again after a capped,
//! jittered exponential back-off, for as long as it takes (the outbox
//! holds them); refused (400/413/422) → the batch is halved until the
//! refused line is alone, it goes to the dead-letter file with the
//! server's reason and the rest is written; a configuration error
//! (401/403/404) → a loud error naming the key, retried at the cap (the
//! server may be fixed without restarting ctower).

use super::client::{Outcome, Writer};
use super::InfluxRules;
use ctower_model::backoff::{jitter_seed, Backoff};
use ctower_outbox::Outbox;
use std::collections::VecDeque;
use std::io::Write;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The first retry waits this long (then doubles to `retry_max_secs`; never
/// more than that cap).
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Which ranges of a batch to send, in order: the whole batch, and after a
/// refusal its halves, down to the single refused line (pure).
#[derive(Debug)]
pub struct Split {
    ranges: VecDeque<Range<usize>>,
}

impl Split {
    /// The whole batch of `n` lines.
    pub fn new(n: usize) -> Self {
        Split {
            ranges: (n > 0).then_some(0..n).into_iter().collect(),
        }
    }

    /// The range to send now.
    pub fn next(&self) -> Option<Range<usize>> {
        self.ranges.front().cloned()
    }

    /// The range was written.
    pub fn written(&mut self) {
        self.ranges.pop_front();
    }

    /// The range was refused: its halves go next; a single line is the
    /// culprit (returned, to dead-letter).
    pub fn refused(&mut self) -> Option<usize> {
        let r = self.ranges.pop_front()?;
        if r.len() == 1 {
            return Some(r.start);
        }
        let mid = r.start + r.len() / 2;
        self.ranges.push_front(mid..r.end);
        self.ranges.push_front(r.start..mid);
        None
    }
}

/// What the drainer counts, for the status.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// Lines accepted by the server.
    pub written: u64,
    /// Lines refused and dead-lettered.
    pub rejected: u64,
    /// The last error, while failing.
    pub last_error: Option<String>,
    /// Since when writes fail (wall ms).
    pub failing_since_ms: Option<i64>,
    /// A configuration error (401/403/404): the key to fix.
    pub config_key: Option<&'static str>,
}

/// The drainer's parts.
pub struct Drainer {
    /// The outbox it empties.
    pub outbox: Arc<Outbox>,
    /// The client.
    pub writer: Writer,
    /// Batch size, flush interval, back-off cap.
    pub rules: InfluxRules,
    /// Shared with the status.
    pub counters: Arc<Mutex<Counters>>,
    /// Set: stop now (what is left stays in the outbox).
    pub stop: Arc<AtomicBool>,
}

impl Drainer {
    /// Runs until the outbox is closed and empty, or `stop`.
    pub fn run(self) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "InfluxDB writer cannot start its runtime");
                return;
            }
        };
        let first = FIRST_RETRY.min(self.rules.retry_max);
        let mut backoff = Backoff::jittered(first, self.rules.retry_max, jitter_seed(0));
        let stop = || self.stop.load(Ordering::Relaxed);
        // A backlog (from before a restart, or an outage): say when it is sent.
        let mut backlog = self.outbox.pending() > 0;
        loop {
            let batch = match self.outbox.read_batch(
                self.rules.batch_lines,
                self.rules.flush,
                &stop,
            ) {
                Ok(Some(b)) => b,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(outbox = %self.outbox.dir().display(), error = %e, "cannot read the InfluxDB outbox");
                    self.pause(Duration::from_secs(1));
                    continue;
                }
            };
            let mut split = Split::new(batch.lines.len());
            while let Some(r) = split.next() {
                if stop() {
                    return;
                }
                let body = batch.lines[r.clone()].join("\n");
                // A stop ends a request in flight at once: its lines stay in
                // the outbox (sent again at the next start, idempotent).
                let outcome = rt.block_on(async {
                    tokio::select! {
                        o = self.writer.write(body) => Some(o),
                        () = stopped(&self.stop) => None,
                    }
                });
                let Some(outcome) = outcome else {
                    return;
                };
                match outcome {
                    Outcome::Written => {
                        split.written();
                        backoff.reset();
                        self.succeeded(r.len() as u64);
                    }
                    Outcome::Rejected { status, text } => {
                        if let Some(i) = split.refused() {
                            self.dead_letter(&batch.lines[i], status, &text);
                        }
                    }
                    Outcome::Retry(error) => {
                        backlog = true;
                        let delay = backoff.next_delay();
                        self.failed(&error, None, delay);
                        self.pause(delay);
                    }
                    Outcome::Config { status, key, text } => {
                        backlog = true;
                        let error = format!("HTTP {status}: {text}");
                        self.failed(&error, Some(key), self.rules.retry_max);
                        self.pause(self.rules.retry_max);
                    }
                }
            }
            if let Err(e) = self.outbox.ack(batch.end) {
                // Not moved: these lines are sent again (idempotent).
                tracing::error!(outbox = %self.outbox.dir().display(), error = %e, "cannot move the InfluxDB outbox's cursor");
            }
            if backlog && self.outbox.pending() == 0 {
                backlog = false;
                let c = self.counters();
                tracing::info!(
                    written = c.written,
                    rejected = c.rejected,
                    "InfluxDB outbox: backlog sent"
                );
            }
        }
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn succeeded(&self, lines: u64) {
        let mut c = self.counters();
        c.written += lines;
        if let Some(since) = c.failing_since_ms.take() {
            tracing::info!(
                url = %self.rules.url,
                failing_for_s = (super::now_ms() - since) / 1000,
                "InfluxDB takes writes again"
            );
        }
        c.last_error = None;
        c.config_key = None;
    }

    fn failed(&self, error: &str, key: Option<&'static str>, retry_in: Duration) {
        let mut c = self.counters();
        let first = c.failing_since_ms.is_none();
        c.failing_since_ms.get_or_insert_with(super::now_ms);
        let changed = c.last_error.as_deref() != Some(error);
        c.last_error = Some(error.to_string());
        c.config_key = key;
        drop(c);
        let pending = self.outbox.pending();
        match key {
            Some(key) if first || changed => tracing::error!(
                url = %self.rules.url,
                key,
                error,
                pending,
                "InfluxDB refuses ctower's writes: check `{key}`; the lines wait in the outbox"
            ),
            None if first || changed => tracing::warn!(
                url = %self.rules.url,
                error,
                pending,
                retry_in_ms = retry_in.as_millis() as u64,
                "InfluxDB write failed; retrying (the lines wait in the outbox)"
            ),
            _ => tracing::debug!(
                error,
                retry_in_ms = retry_in.as_millis() as u64,
                "InfluxDB write failed again"
            ),
        }
    }

    /// A refused line to the dead-letter file, with the server's reason.
    fn dead_letter(&self, line: &str, status: u16, reason: &str) {
        self.counters().rejected += 1;
        let record = serde_json::json!({
            "ts_ms": super::now_ms(),
            "reason": "influx_rejected",
            "status": status,
            "detail": reason,
            "line": line,
        });
        tracing::warn!(path = %self.rules.dead_letters.display(), status, reason, "InfluxDB refused a line: dead-lettered");
        if let Err(e) = append_line(&self.rules.dead_letters, &record.to_string()) {
            tracing::error!(path = %self.rules.dead_letters.display(), error = %e, line, "cannot write the InfluxDB dead-letter file: the refused line is only in this log");
        }
    }

    /// Sleeps `d`, waking early to stop.
    fn pause(&self, d: Duration) {
        let until = std::time::Instant::now() + d;
        while std::time::Instant::now() < until && !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50).min(until - std::time::Instant::now()));
        }
    }
}

/// Resolves once `stop` is set.
async fn stopped(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Appends one line to `path` (created with its directory) and syncs it.
fn append_line(path: &PathBuf, line: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(format!("{line}\n").as_bytes())?;
    f.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_batch_is_halved_down_to_the_bad_line() {
        // 8 lines, line 5 bad: the server refuses every range holding it.
        let bad = 5;
        let mut s = Split::new(8);
        let (mut sent, mut dead) = (Vec::new(), Vec::new());
        while let Some(r) = s.next() {
            if r.contains(&bad) {
                dead.extend(s.refused());
            } else {
                sent.push(r);
                s.written();
            }
        }
        assert_eq!(dead, [bad]);
        assert_eq!(sent, [0..4, 4..5, 6..8]);
        assert!(Split::new(0).next().is_none());
    }
}
