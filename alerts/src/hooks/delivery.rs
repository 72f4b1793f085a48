//! Delivery of one hook: the thread that drains the hook's outbox in
//! order, one notification at a time, and sends it (HTTP POST, or a
//! command with the body on its standard input).
//!
//! Outcome of one attempt:
//! - **2xx** (a command: exit status 0): delivered, the outbox moves on.
//! - **408, 429, 5xx**, a timeout, a connection or TLS error (a command:
//!   any other exit, a kill at its timeout, a failure to start): retried
//!   with a jittered back-off (`retry_base_ms`, doubling, capped at
//!   `retry_max_secs`), for as long as it takes; the notification stays
//!   at the head of the outbox, so nothing behind it overtakes it.
//! - **Any other status** (4xx, a redirect): refused for good: written to
//!   the hook's dead-letter file with the status and the reply's start,
//!   and the outbox moves on.
//!
//! The `webhook-id` is the notification's id, fixed when it was written to
//! the outbox: the same on every retry and after a restart. The signature
//! (`webhook-timestamp`, `webhook-signature`) is made afresh per attempt.

use super::envelope::sign;
use super::format::{body, notification_type};
use super::queue::Abort;
use crate::config::{Target, WebhookHook};
use crate::notify::Notification;
use ctower_model::backoff::Backoff;
use ctower_model::Clock;
use ctower_outbox::Outbox;
use std::collections::VecDeque;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the dispatcher reads of a hook's delivery.
#[derive(Debug, Default, Clone)]
pub(super) struct Health {
    /// Since when attempts have failed (wall ms), while they do.
    pub(super) failing_since_ms: Option<i64>,
    /// The last failure, while attempts fail.
    pub(super) last_error: Option<String>,
    /// Delivered since start.
    pub(super) delivered: u64,
    /// Refused for good (dead-lettered) since start.
    pub(super) dead_lettered: u64,
    /// The dead-letter file cannot be written.
    pub(super) dead_letter_error: Option<String>,
}

/// One attempt's failure.
enum Failure {
    /// Worth another attempt.
    Retry(String),
    /// Refused for good.
    Refused(String),
}

/// The body of one hook's thread.
pub(super) struct Worker {
    pub(super) hook: WebhookHook,
    pub(super) outbox: Arc<Outbox>,
    pub(super) dead_letters: PathBuf,
    pub(super) health: Arc<Mutex<Health>>,
    pub(super) abort: Arc<Abort>,
    pub(super) clock: Clock,
    pub(super) seed: u64,
}

/// The URL without its path and query: Slack and Teams URLs carry their
/// secret in the path, so logs show only the scheme and host.
pub fn redact_url(url: &str) -> String {
    match url.parse::<ureq::http::Uri>() {
        Ok(u) => format!(
            "{}://{}/…",
            u.scheme_str().unwrap_or("http"),
            u.authority().map_or("", |a| a.as_str())
        ),
        Err(_) => "<invalid URL>".into(),
    }
}

/// Where a hook sends, safe to log.
pub fn describe(hook: &WebhookHook) -> String {
    match &hook.target {
        Target::Command { argv } => argv.first().cloned().unwrap_or_default(),
        Target::Webhook { url, .. } => url.clone(),
        Target::Slack { url } | Target::Teams { url } | Target::PagerDuty { url, .. } => {
            redact_url(url)
        }
    }
}

impl Worker {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drains the outbox until it is closed and empty, or aborted (what is
    /// left stays on disk for the next start).
    pub(super) fn run(self) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.hook.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("ctower-alerts/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut backoff = Backoff::jittered(self.hook.retry_base, self.hook.retry_max, self.seed);
        let mut sent: VecDeque<Instant> = VecDeque::new();
        loop {
            let abort = self.abort.clone();
            let batch = match self
                .outbox
                .read_batch(1, Duration::ZERO, &move || abort.is_set())
            {
                Ok(Some(b)) => b,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(hook = %self.hook.name, outbox = %self.outbox.dir().display(), error = %e, "cannot read the hook's outbox; retrying");
                    if self.abort.sleep(backoff.next_delay()) {
                        return;
                    }
                    continue;
                }
            };
            for line in &batch.lines {
                if !self.deliver_line(&agent, line, &mut backoff, &mut sent) {
                    return; // aborted: the line stays in the outbox
                }
            }
            if let Err(e) = self.outbox.ack(batch.end) {
                tracing::error!(hook = %self.hook.name, outbox = %self.outbox.dir().display(), error = %e, "cannot move the hook outbox's cursor: this notification may be sent again (same webhook-id)");
                // Not a tight loop of re-sends while the disk is full.
                if self.abort.sleep(backoff.next_delay()) {
                    return;
                }
            }
        }
    }

    /// Delivers one outbox line (retrying until done or aborted); `false`
    /// when aborted.
    fn deliver_line(
        &self,
        agent: &ureq::Agent,
        line: &str,
        backoff: &mut Backoff,
        sent: &mut VecDeque<Instant>,
    ) -> bool {
        let n: Notification = match serde_json::from_str(line) {
            Ok(n) => n,
            Err(e) => {
                self.dead_letter(line, &format!("unreadable outbox record: {e}"));
                return true;
            }
        };
        let Some(body) = body(&n, &self.hook.target) else {
            return true; // not for this kind of hook (a PagerDuty repeat)
        };
        if !self.pace(sent) {
            return false;
        }
        loop {
            match self.attempt(agent, &n, &body) {
                Ok(()) => {
                    backoff.reset();
                    let mut h = self.health();
                    if h.failing_since_ms.take().is_some() {
                        tracing::info!(hook = %self.hook.name, "hook delivers again");
                    }
                    h.last_error = None;
                    h.delivered += 1;
                    tracing::debug!(hook = %self.hook.name, id = %n.id, kind = notification_type(&n), "hook notification delivered");
                    return true;
                }
                Err(Failure::Refused(reason)) => {
                    self.dead_letter(line, &reason);
                    return true;
                }
                Err(Failure::Retry(reason)) => {
                    let delay = backoff.next_delay();
                    let first = {
                        let mut h = self.health();
                        let first = h.failing_since_ms.is_none();
                        h.failing_since_ms.get_or_insert(self.clock.now_ms());
                        h.last_error = Some(reason.clone());
                        first
                    };
                    if first {
                        tracing::error!(hook = %self.hook.name, to = %describe(&self.hook), id = %n.id, error = %reason, retry_in_ms = delay.as_millis() as u64, "hook notification not delivered; it stays in the outbox and is retried");
                    } else {
                        tracing::warn!(hook = %self.hook.name, id = %n.id, error = %reason, retry_in_ms = delay.as_millis() as u64, "hook notification not delivered; retrying");
                    }
                    if self.abort.sleep(delay) {
                        return false;
                    }
                }
            }
        }
    }

    /// Waits until one more delivery fits `max_per_minute`; `false` when aborted.
    fn pace(&self, sent: &mut VecDeque<Instant>) -> bool {
        let Some(max) = self.hook.max_per_minute else {
            return true;
        };
        let minute = Duration::from_secs(60);
        while sent.front().is_some_and(|t| t.elapsed() >= minute) {
            sent.pop_front();
        }
        if sent.len() >= max as usize {
            if let Some(oldest) = sent.front() {
                let wait = minute.saturating_sub(oldest.elapsed());
                if self.abort.sleep(wait) {
                    return false;
                }
            }
            sent.pop_front();
        }
        sent.push_back(Instant::now());
        true
    }

    fn attempt(&self, agent: &ureq::Agent, n: &Notification, body: &str) -> Result<(), Failure> {
        let url = match &self.hook.target {
            Target::Command { argv } => return self.run_command(argv, n, body),
            Target::Webhook { url, .. }
            | Target::Slack { url }
            | Target::Teams { url }
            | Target::PagerDuty { url, .. } => url,
        };
        let mut req = agent
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &n.id);
        if let Target::Webhook {
            secret: Some(secret),
            ..
        } = &self.hook.target
        {
            let ts = self.clock.now_ms().div_euclid(1000);
            req = req
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sign(secret.key(), &n.id, ts, body));
        }
        match req.send(body) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                if (200..300).contains(&status) {
                    return Ok(());
                }
                let reply: String = resp
                    .body_mut()
                    .read_to_string()
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                let reason = format!("HTTP {status}: {}", reply.trim());
                if status == 408 || status == 429 || (500..600).contains(&status) {
                    Err(Failure::Retry(reason))
                } else {
                    Err(Failure::Refused(reason))
                }
            }
            Err(e) => Err(Failure::Retry(e.to_string())),
        }
    }

    /// Runs the command with the body on its standard input.
    fn run_command(&self, argv: &[String], n: &Notification, body: &str) -> Result<(), Failure> {
        use std::process::{Command, Stdio};
        let Some((program, args)) = argv.split_first() else {
            return Err(Failure::Refused("no program".into()));
        };
        let mut child = Command::new(program)
            .args(args)
            .env("CTOWER_WEBHOOK_ID", &n.id)
            .env("CTOWER_NOTIFICATION_TYPE", notification_type(n))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Failure::Retry(format!("cannot start `{program}`: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A program that does not read its input is its own business.
            let _ = stdin.write_all(body.as_bytes());
        }
        let deadline = Instant::now() + self.hook.timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        use std::io::Read as _;
                        let _ = (&mut e).take(400).read_to_string(&mut err);
                    }
                    return Err(Failure::Retry(format!(
                        "`{program}` exited with {status}: {}",
                        err.trim()
                    )));
                }
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Failure::Retry(format!(
                        "`{program}` did not finish within {:?}; killed",
                        self.hook.timeout
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(Failure::Retry(format!("waiting for `{program}`: {e}"))),
            }
        }
    }

    /// Appends a refused notification to the dead-letter file (synced).
    fn dead_letter(&self, line: &str, reason: &str) {
        tracing::error!(hook = %self.hook.name, to = %describe(&self.hook), file = %self.dead_letters.display(), reason, "hook notification refused for good: dead-lettered");
        let record = serde_json::json!({
            "at": ctower_model::time::rfc3339_ms(self.clock.now_ms()),
            "hook": &*self.hook.name,
            "reason": reason,
            "notification": serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|_| serde_json::Value::String(line.into())),
        });
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.dead_letters)
            .and_then(|mut f| {
                writeln!(f, "{record}")?;
                f.sync_data()
            });
        let mut h = self.health();
        h.dead_lettered += 1;
        match written {
            Ok(()) => h.dead_letter_error = None,
            Err(e) => {
                tracing::error!(hook = %self.hook.name, file = %self.dead_letters.display(), error = %e, "cannot write the hook's dead-letter file");
                h.dead_letter_error = Some(format!("{}: {e}", self.dead_letters.display()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_secrets_in_the_path_are_redacted() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(redact_url("http://127.0.0.1:9/x?y"), "http://127.0.0.1:9/…");
    }
}
