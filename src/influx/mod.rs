//! KPIs, signal statistics and alarm events to InfluxDB (2.x, or 3.x and
//! VictoriaMetrics through the v2 write API), never losing or doubling a
//! point: the output stage's sink appends each closed window's lines to an
//! on-disk outbox (`ctower_outbox`); a [`drain`]er thread sends them in order through the
//! `influxdb2` crate ([`client`]).
//!
//! The lines are the journal's ([`crate::journal`]): the same schema, so
//! `ctower export --to-influx` of a journal period writes exactly the points
//! live mode wrote. A point is keyed by its series (measurement and tags)
//! and the window end, so a retry, a replay or a correction (a higher
//! `revision`, kept as a field) overwrites instead of adding.

pub mod client;
pub mod drain;
pub mod export;

#[cfg(test)]
mod tests;

use ctower_model::{Fault, OutboxStatus};
use ctower_outbox::{Outbox, OutboxRules};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The most lines in one write (InfluxDB's advice: 5,000).
pub const MAX_BATCH_LINES: usize = 5000;

/// The InfluxDB outbox's name in log lines.
pub const OUTBOX_NAME: &str = "InfluxDB outbox";
/// What to do about lines its budget dropped.
pub const OUTBOX_LOST_HINT: &str =
    "the journal still has these lines: ctower export --to-influx loads them";

/// The outbox alarm fires at this share of its budget.
pub const BUDGET_ALARM_SHARE: f64 = 0.8;

/// Writes failing this long raise the `ctower.influx` system alarm (a
/// configuration error raises it at once).
pub const FAILING_ALARM_AFTER_MS: i64 = 60_000;

/// The checked `[influx]` settings.
#[derive(Clone, PartialEq, Eq)]
pub struct InfluxRules {
    /// The server's base URL (no path: see the README).
    pub url: String,
    /// Organisation.
    pub org: String,
    /// Bucket.
    pub bucket: String,
    /// The API token (`None`: no `Authorization` header, e.g. VictoriaMetrics).
    pub token: Option<String>,
    /// The key the token came from, for the configuration error.
    pub token_key: &'static str,
    /// Lines per write at most.
    pub batch_lines: usize,
    /// The longest a line waits for a fuller batch.
    pub flush: Duration,
    /// Each request's deadline.
    pub timeout: Duration,
    /// The back-off's cap.
    pub retry_max: Duration,
    /// The outbox.
    pub outbox: OutboxRules,
    /// Where refused lines go.
    pub dead_letters: PathBuf,
}

impl std::fmt::Debug for InfluxRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("InfluxRules")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("batch_lines", &self.batch_lines)
            .field("flush", &self.flush)
            .field("timeout", &self.timeout)
            .field("outbox", &self.outbox)
            .finish()
    }
}

/// Wall-clock ms (the outbox's ages are about the tower, not event time).
pub(crate) fn now_ms() -> i64 {
    ctower_model::wall_ms()
}

/// A URL the `influxdb2` client takes without panicking and without
/// dropping a part of it: http or https, a host, no path prefix (the
/// client replaces the path with `/api/v2/write`), no query, no user info.
pub fn check_url(url: &str) -> Result<(), String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("`{url}`: the scheme must be http or https"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    if !matches!(u.path(), "" | "/") {
        return Err(format!(
            "`{url}` has a path ({}): the influxdb2 client would drop it and write to \
             {}/api/v2/write; serve InfluxDB at the root of a host name or port",
            u.path(),
            redact(&u)
        ));
    }
    if u.query().is_some() || !u.username().is_empty() || u.password().is_some() {
        return Err(format!(
            "`{}` must not hold a query or credentials (the token goes in `token_env` or `token_file`)",
            redact(&u)
        ));
    }
    Ok(())
}

fn redact(u: &reqwest::Url) -> String {
    format!(
        "{}://{}{}",
        u.scheme(),
        u.host_str().unwrap_or_default(),
        u.port().map(|p| format!(":{p}")).unwrap_or_default()
    )
}

/// The running InfluxDB output: the outbox (for the sink), the drainer
/// thread and their status.
pub struct Influx {
    outbox: Arc<Outbox>,
    counters: Arc<Mutex<drain::Counters>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    url: String,
}

impl Influx {
    /// Opens the outbox (sending what a previous run left) and starts the
    /// drainer.
    pub fn start(rules: &InfluxRules) -> anyhow::Result<Influx> {
        let outbox = Outbox::open(rules.outbox.clone()).map_err(|e| {
            anyhow::anyhow!(
                "cannot open the InfluxDB outbox {}: {e}",
                rules.outbox.dir.display()
            )
        })?;
        let writer = client::Writer::new(rules).map_err(anyhow::Error::msg)?;
        let counters = Arc::new(Mutex::new(drain::Counters::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let drainer = drain::Drainer {
            outbox: outbox.clone(),
            writer,
            rules: rules.clone(),
            counters: counters.clone(),
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("ctower-influx".into())
            .spawn(move || drainer.run())?;
        tracing::info!(url = %rules.url, org = %rules.org, bucket = %rules.bucket, outbox = %rules.outbox.dir.display(), "InfluxDB output on");
        Ok(Influx {
            outbox,
            counters,
            stop,
            thread: Some(thread),
            url: rules.url.clone(),
        })
    }

    /// The outbox, for the sink.
    pub fn outbox(&self) -> Arc<Outbox> {
        self.outbox.clone()
    }

    /// A handle reading the status from any thread.
    pub fn status_handle(&self) -> InfluxStatus {
        InfluxStatus {
            outbox: self.outbox.clone(),
            counters: self.counters.clone(),
            url: self.url.clone(),
        }
    }

    /// No more lines: lets the drainer send what is left while it makes
    /// progress, giving up once `wait` passes without any (a server that
    /// is down); then stops it. Returns the lines still in the outbox
    /// (they are sent at the next start).
    pub fn finish(self, wait: Duration) -> u64 {
        self.finish_with(wait, &|_| {})
    }

    /// [`Influx::finish`], telling `progress` the lines still waiting.
    pub fn finish_with(mut self, wait: Duration, progress: &dyn Fn(u64)) -> u64 {
        self.outbox.close();
        let (mut last, mut progress_at) = (self.outbox.pending(), Instant::now());
        while last > 0 && progress_at.elapsed() < wait {
            if self.thread.as_ref().is_some_and(JoinHandle::is_finished) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            let now = self.outbox.pending();
            progress(now);
            if now < last {
                (last, progress_at) = (now, Instant::now());
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.outbox.pending()
    }
}

impl Drop for Influx {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.outbox.close();
    }
}

/// Reads the InfluxDB output's status (the dashboard, the log, the alarms).
#[derive(Clone)]
pub struct InfluxStatus {
    outbox: Arc<Outbox>,
    counters: Arc<Mutex<drain::Counters>>,
    url: String,
}

impl InfluxStatus {
    /// The outbox's depth, age and last error.
    pub fn status(&self, now_ms: i64) -> OutboxStatus {
        let n = self.outbox.numbers(now_ms);
        let c = self.counters.lock().map(|c| c.clone()).unwrap_or_default();
        OutboxStatus {
            name: "influx".into(),
            target: self.url.clone(),
            pending_lines: n.pending_lines,
            used_bytes: n.used_bytes,
            budget_bytes: n.budget_bytes,
            oldest_age_ms: n.oldest_age_ms,
            written: c.written,
            rejected: c.rejected,
            lost: n.lost,
            last_error: n.write_error.or(c.last_error),
        }
    }

    /// The faults to alarm on: writes failing for a minute (or refused
    /// for a configuration error) — `influx`; the outbox at 80 % of its
    /// budget, or unable to write — `influx_outbox`.
    pub fn faults(&self, now_ms: i64) -> Vec<Fault> {
        let s = self.status(now_ms);
        let c = self.counters.lock().map(|c| c.clone()).unwrap_or_default();
        let mut faults = Vec::new();
        let failing_long = c
            .failing_since_ms
            .is_some_and(|t| now_ms - t >= FAILING_ALARM_AFTER_MS);
        if let (Some(error), true) = (&c.last_error, failing_long || c.config_key.is_some()) {
            let error = match c.config_key {
                Some(key) => format!("{error} (check `{key}`)"),
                None => error.clone(),
            };
            faults.push(Fault {
                stage: "influx".into(),
                path: self.url.clone(),
                error,
                lost: s.lost,
            });
        }
        let n = self.outbox.numbers(now_ms);
        let share = s.used_bytes as f64 / s.budget_bytes.max(1) as f64;
        if n.write_error.is_some() || share >= BUDGET_ALARM_SHARE {
            let error = match &n.write_error {
                Some(e) => e.clone(),
                None => format!(
                    "{:.0} % of its {} MiB budget used, {} lines waiting",
                    share * 100.0,
                    s.budget_bytes >> 20,
                    s.pending_lines
                ),
            };
            faults.push(Fault {
                stage: "influx_outbox".into(),
                path: self.outbox.dir().display().to_string(),
                error,
                lost: s.lost,
            });
        }
        faults
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn urls_the_client_would_panic_on_or_mangle_are_refused() {
        assert!(check_url("http://localhost:8086").is_ok());
        assert!(check_url("https://influx.example.com/").is_ok());
        for bad in [
            "localhost:8086",
            "/3242/23",
            "ftp://x",
            "http://x/influx",
            "http://u:p@x",
            "http://x/?a=b",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        let e = check_url("http://u:secret@x").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }
}
