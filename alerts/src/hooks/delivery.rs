//! HTTP delivery of one webhook: the worker thread that takes events off
//! the webhook's queue and POSTs each, with retries and back-off.

use super::envelope::{event_type, sign, webhook_body, webhook_id};
use super::log::log_dropped;
use super::queue::{Abort, Queue};
use super::Counters;
use crate::config::WebhookHook;
use crate::AlertsError;
use ctower_model::time::rfc3339_ms;
use ctower_model::{AlarmEvent, Clock};
use std::sync::Arc;
use std::time::Duration;

/// The body of one webhook's thread.
pub(super) struct Worker {
    pub(super) hook: WebhookHook,
    pub(super) queue: Arc<Queue<AlarmEvent>>,
    pub(super) counters: Arc<Counters>,
    pub(super) abort: Arc<Abort>,
    pub(super) clock: Clock,
}

/// Whether an HTTP status is worth another attempt (overload or a server fault).
fn retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// Whether a transport error may go away by itself (network, timeout).
fn retryable_transport(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
    )
}

/// Delay before retry `n` (1-based): `base × 2^(n−1)`, capped at 60 s.
fn backoff(base: Duration, n: u32) -> Duration {
    let factor = 1u32 << n.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(Duration::from_secs(60))
}

impl Worker {
    /// Delivers queued events until the queue is closed and empty.
    pub(super) fn run(self) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.hook.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("ctower-alerts/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        while let Some(ev) = self.queue.pop() {
            if self.abort.is_set() {
                Counters::inc(&self.counters.dropped);
                log_dropped(&self.hook.name, &ev, "shutdown deadline passed");
                continue;
            }
            match self.deliver(&agent, &ev) {
                Ok(attempts) => {
                    Counters::inc(&self.counters.sent);
                    tracing::debug!(hook = %self.hook.name, attempts, kind = event_type(ev.kind), rule = %ev.rule, "webhook delivered");
                }
                Err(e) => {
                    Counters::inc(&self.counters.failed);
                    tracing::error!(
                        hook = %self.hook.name,
                        error = %e,
                        kind = event_type(ev.kind),
                        rule = %ev.rule,
                        scope = %ev.scope,
                        signal = ev.signal.as_deref().unwrap_or(""),
                        ts = %rfc3339_ms(ev.ts_ms),
                        "webhook delivery failed"
                    );
                }
            }
        }
    }

    /// One POST; signed afresh (a new timestamp) when the hook has a secret.
    fn post_once(&self, agent: &ureq::Agent, id: &str, body: &str) -> Result<u16, ureq::Error> {
        let mut req = agent
            .post(&self.hook.url)
            .header("content-type", "application/json")
            .header("webhook-id", id);
        if let Some(secret) = &self.hook.secret {
            let ts = self.clock.now_ms().div_euclid(1000);
            req = req
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sign(secret.key(), id, ts, body));
        }
        let resp = req.send(body)?;
        Ok(resp.status().as_u16())
    }

    /// One attempt: `Ok(())` on 2xx, else the error and whether to retry it.
    fn attempt(
        &self,
        agent: &ureq::Agent,
        id: &str,
        body: &str,
    ) -> Result<(), (AlertsError, bool)> {
        let hook = self.hook.name.to_string();
        match self.post_once(agent, id, body) {
            Ok(status) if (200..300).contains(&status) => Ok(()),
            Ok(status) => Err((
                AlertsError::HttpStatus { hook, status },
                retryable_status(status),
            )),
            Err(source) => {
                let retry = retryable_transport(&source);
                Err((AlertsError::Transport { hook, source }, retry))
            }
        }
    }

    /// Delivers one event with retries; the number of attempts on success.
    fn deliver(&self, agent: &ureq::Agent, ev: &AlarmEvent) -> Result<u32, AlertsError> {
        let hook = || self.hook.name.to_string();
        let body = webhook_body(ev)?;
        let id = webhook_id(ev);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let err = match self.attempt(agent, &id, &body) {
                Ok(()) => return Ok(attempt),
                Err((e, false)) => return Err(e),
                Err((e, true)) => e,
            };
            if attempt > self.hook.max_retries {
                return Err(AlertsError::GaveUp {
                    hook: hook(),
                    attempts: attempt,
                    last: Box::new(err),
                });
            }
            let delay = backoff(self.hook.retry_base, attempt);
            tracing::warn!(
                hook = %self.hook.name,
                attempt,
                retry_in_ms = delay.as_millis() as u64,
                error = %err,
                "webhook attempt failed; retrying"
            );
            if self.abort.sleep(delay) {
                return Err(AlertsError::Aborted { hook: hook() });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_millis(500);
        assert_eq!(backoff(b, 1), Duration::from_millis(500));
        assert_eq!(backoff(b, 2), Duration::from_millis(1000));
        assert_eq!(backoff(b, 3), Duration::from_millis(2000));
        assert_eq!(backoff(b, 30), Duration::from_secs(60));
    }

    #[test]
    fn retry_classification() {
        assert!(retryable_status(500));
        assert!(retryable_status(503));
        assert!(retryable_status(429));
        assert!(!retryable_status(400));
        assert!(!retryable_status(404));
        assert!(!retryable_status(301));
        assert!(retryable_transport(&ureq::Error::ConnectionFailed));
        assert!(!retryable_transport(&ureq::Error::BadUri("x".into())));
    }
}
