//! Alert hooks and their dispatcher: the thin I/O edge of the crate.
//!
//! - Log hooks write one structured `tracing` event per alarm event, inline
//!   in [`HookDispatcher::send`]. Raised events log at `error` (urgent),
//!   `warn` (high, medium) or `info` (low); cleared and acknowledged events
//!   at `info`.
//! - Webhooks POST a JSON envelope
//!   `{"type":"alarm.raised"|"alarm.cleared"|"alarm.acknowledged","timestamp":"<RFC 3339 event time>","data":<AlarmEvent>}`
//!   from one OS thread per webhook, fed by a bounded queue
//!   ([`DispatcherOptions::queue_capacity`], default 1024).
//!
//! Webhook delivery: up to `1 + max_retries` attempts; a retry only follows
//! a connection error, a timeout, HTTP 5xx or HTTP 429, after
//! `retry_base × 2^(n−1)` (capped at 60 s). Other statuses (including 3xx:
//! redirects are not followed) fail at once. The `webhook-id` header is
//! derived from the event (rule, scope, signal, time, kind), the same on
//! every retry, so a receiver can de-duplicate. With a secret, every attempt
//! is signed the Standard Webhooks way: `webhook-timestamp` (Unix seconds
//! from the dispatcher's [`Clock`]) and `webhook-signature:
//! v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`.
//!
//! When a webhook's queue is full (its endpoint is slow or down),
//! [`HookDispatcher::send`] blocks for at most
//! [`DispatcherOptions::enqueue_wait`] (default 250 ms); if no room frees
//! up, the event is dropped for that webhook, counted in
//! [`HookStats::dropped`] and logged in full at `error` level. While a
//! queue stays full, further sends to it do not wait again (so a dead
//! endpoint costs the pipeline one wait, not one per event) until an event
//! is queued again.
//!
//! [`HookDispatcher::shutdown`] closes the queues, lets the workers drain
//! them, and waits at most [`DispatcherOptions::shutdown_wait`] (default
//! 10 s). After that, events still queued are dropped (counted, logged),
//! retry waits are cut short, and a worker still inside an HTTP request is
//! left to finish on its own (at most its `timeout_secs`).

use crate::config::{Hook, LogHook, WebhookHook};
use crate::AlertsError;
use base64::Engine as _;
use ctower_model::time::rfc3339_ms;
use ctower_model::{AlarmEvent, AlarmEventKind, Clock, Priority};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Tuning of a [`HookDispatcher`].
#[derive(Clone)]
pub struct DispatcherOptions {
    /// The wall clock, read for `webhook-timestamp` (whole seconds);
    /// injected so tests can fix it.
    pub clock: Clock,
    /// Capacity of each webhook's queue (at least 1).
    pub queue_capacity: usize,
    /// How long [`HookDispatcher::send`] may block on a full queue.
    pub enqueue_wait: Duration,
    /// How long [`HookDispatcher::shutdown`] waits for the queues to drain.
    pub shutdown_wait: Duration,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        DispatcherOptions {
            clock: Clock::system(),
            queue_capacity: 1024,
            enqueue_wait: Duration::from_millis(250),
            shutdown_wait: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for DispatcherOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatcherOptions")
            .field("queue_capacity", &self.queue_capacity)
            .field("enqueue_wait", &self.enqueue_wait)
            .field("shutdown_wait", &self.shutdown_wait)
            .finish_non_exhaustive()
    }
}

/// Delivery counters, summed over all hooks. One event sent to two hooks
/// counts twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HookStats {
    /// Deliveries that succeeded (log hook writes count here too).
    pub sent: u64,
    /// Webhook deliveries that failed for good (after their retries, or at
    /// once for a non-retryable answer).
    pub failed: u64,
    /// Events never attempted: queue full, or left over at shutdown.
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// The `type` of the webhook envelope for an event kind: `alarm.<kind>`.
pub fn event_type(kind: AlarmEventKind) -> &'static str {
    match kind {
        AlarmEventKind::Raised => "alarm.raised",
        AlarmEventKind::Cleared => "alarm.cleared",
        AlarmEventKind::Acknowledged => "alarm.acknowledged",
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: &'a AlarmEvent,
}

/// The webhook body of an event.
pub fn webhook_body(ev: &AlarmEvent) -> Result<String, AlertsError> {
    Ok(serde_json::to_string(&Envelope {
        kind: event_type(ev.kind),
        timestamp: rfc3339_ms(ev.ts_ms),
        data: ev,
    })?)
}

/// A deterministic message id: `msg_` + 32 hex digits of SHA-256 over the
/// rule, scope, signal, event time and kind. Equal for retries and for a
/// replay of the same data.
pub fn webhook_id(ev: &AlarmEvent) -> String {
    let mut h = Sha256::new();
    for part in [
        ev.rule.as_bytes(),
        ev.scope.to_string().as_bytes(),
        ev.scope.level.as_str().as_bytes(),
        ev.signal.as_deref().unwrap_or("").as_bytes(),
        ev.ts_ms.to_string().as_bytes(),
        event_type(ev.kind).as_bytes(),
    ] {
        h.update(part);
        h.update([0u8]);
    }
    let digest = h.finalize();
    let mut id = String::with_capacity(36);
    id.push_str("msg_");
    for b in &digest[..16] {
        let _ = write!(id, "{b:02x}");
    }
    id
}

/// The Standard Webhooks signature header value:
/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn sign(key: &[u8], id: &str, timestamp_secs: i64, body: &str) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let sig = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(sig)
    )
}

/// Writes one alarm event as a structured `tracing` event.
pub fn log_event(hook: &str, ev: &AlarmEvent) {
    let scope = ev.scope.to_string();
    let ts = rfc3339_ms(ev.ts_ms);
    let signal = ev.signal.as_deref().unwrap_or("");
    let kind = event_type(ev.kind);
    let state = ev.state.as_str();
    let priority = ev.priority.as_str();
    macro_rules! emit {
        ($lvl:ident) => {
            tracing::$lvl!(
                hook,
                kind,
                rule = %ev.rule,
                scope = %scope,
                signal,
                state,
                priority,
                metric = %ev.metric,
                value = ev.value,
                threshold = ev.threshold,
                ts = %ts,
                "{}",
                ev.message
            )
        };
    }
    match (ev.kind, ev.priority) {
        (AlarmEventKind::Raised, Priority::Urgent) => emit!(error),
        (AlarmEventKind::Raised, Priority::High | Priority::Medium) => emit!(warn),
        _ => emit!(info),
    }
}

fn log_dropped(hook: &str, ev: &AlarmEvent, reason: &str) {
    tracing::error!(
        hook,
        reason,
        kind = event_type(ev.kind),
        rule = %ev.rule,
        scope = %ev.scope,
        signal = ev.signal.as_deref().unwrap_or(""),
        state = ev.state.as_str(),
        priority = ev.priority.as_str(),
        metric = %ev.metric,
        value = ev.value,
        threshold = ev.threshold,
        ts = %rfc3339_ms(ev.ts_ms),
        message = %ev.message,
        "alarm event dropped by hook"
    );
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A bounded multi-producer queue with a timed push and a close.
struct Queue<T> {
    state: Mutex<QueueState<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
}

struct QueueState<T> {
    items: VecDeque<T>,
    closed: bool,
}

enum PushError {
    Full,
    Closed,
}

impl<T> Queue<T> {
    fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                closed: false,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn push(&self, item: T, wait: Duration) -> Result<(), (PushError, T)> {
        let deadline = Instant::now() + wait;
        let mut st = lock(&self.state);
        loop {
            if st.closed {
                return Err((PushError::Closed, item));
            }
            if st.items.len() < self.capacity {
                st.items.push_back(item);
                self.not_empty.notify_one();
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err((PushError::Full, item));
            }
            st = self
                .not_full
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The next item; `None` once the queue is closed and empty.
    fn pop(&self) -> Option<T> {
        let mut st = lock(&self.state);
        loop {
            if let Some(item) = st.items.pop_front() {
                self.not_full.notify_one();
                return Some(item);
            }
            if st.closed {
                return None;
            }
            st = self
                .not_empty
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    fn take_all(&self) -> Vec<T> {
        lock(&self.state).items.drain(..).collect()
    }
}

/// A one-way flag with an interruptible sleep.
#[derive(Default)]
struct Abort {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Abort {
    fn trigger(&self) {
        *lock(&self.set) = true;
        self.cv.notify_all();
    }

    fn is_set(&self) -> bool {
        *lock(&self.set)
    }

    /// Sleeps for `d` unless aborted; returns whether it was aborted.
    fn sleep(&self, d: Duration) -> bool {
        let guard = lock(&self.set);
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, d, |set| !*set)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

/// Sends the worker's index when the worker ends, even by a panic.
struct DoneGuard {
    index: usize,
    tx: mpsc::Sender<usize>,
}

impl Drop for DoneGuard {
    fn drop(&mut self) {
        let _ = self.tx.send(self.index);
    }
}

struct WebhookHandle {
    name: Arc<str>,
    min_priority: Priority,
    queue: Arc<Queue<AlarmEvent>>,
    congested: AtomicBool,
    thread: Option<JoinHandle<()>>,
}

/// Fans alarm events out to the hooks. See the module docs for queueing,
/// retries and shutdown.
pub struct HookDispatcher {
    logs: Vec<LogHook>,
    webhooks: Vec<WebhookHandle>,
    counters: Arc<Counters>,
    abort: Arc<Abort>,
    done_rx: mpsc::Receiver<usize>,
    enqueue_wait: Duration,
    shutdown_wait: Duration,
    closed: bool,
}

impl std::fmt::Debug for HookDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookDispatcher")
            .field("logs", &self.logs)
            .field(
                "webhooks",
                &self.webhooks.iter().map(|w| &w.name).collect::<Vec<_>>(),
            )
            .field("stats", &self.stats())
            .finish()
    }
}

impl HookDispatcher {
    /// Starts the hooks with [`DispatcherOptions::default`].
    pub fn start(hooks: Vec<Hook>) -> Result<HookDispatcher, AlertsError> {
        Self::start_with(hooks, DispatcherOptions::default())
    }

    /// Starts the hooks: one thread per webhook.
    pub fn start_with(
        hooks: Vec<Hook>,
        options: DispatcherOptions,
    ) -> Result<HookDispatcher, AlertsError> {
        let (done_tx, done_rx) = mpsc::channel();
        let mut d = HookDispatcher {
            logs: Vec::new(),
            webhooks: Vec::new(),
            counters: Arc::new(Counters::default()),
            abort: Arc::new(Abort::default()),
            done_rx,
            enqueue_wait: options.enqueue_wait,
            shutdown_wait: options.shutdown_wait,
            closed: false,
        };
        for hook in hooks {
            match hook {
                Hook::Log(h) => d.logs.push(h),
                Hook::Webhook(h) => {
                    let queue = Arc::new(Queue::new(options.queue_capacity));
                    let name = h.name.clone();
                    let min_priority = h.min_priority;
                    let worker = Worker {
                        hook: h,
                        queue: queue.clone(),
                        counters: d.counters.clone(),
                        abort: d.abort.clone(),
                        clock: options.clock.clone(),
                    };
                    let guard = DoneGuard {
                        index: d.webhooks.len(),
                        tx: done_tx.clone(),
                    };
                    // On error `d` is dropped, which stops the workers already started.
                    let thread = std::thread::Builder::new()
                        .name(format!("hook-{name}"))
                        .spawn(move || {
                            let _guard = guard;
                            worker.run();
                        })
                        .map_err(|source| AlertsError::Spawn {
                            hook: name.to_string(),
                            source,
                        })?;
                    d.webhooks.push(WebhookHandle {
                        name,
                        min_priority,
                        queue,
                        congested: AtomicBool::new(false),
                        thread: Some(thread),
                    });
                }
            }
        }
        Ok(d)
    }

    /// Hands one event to every hook whose `min_priority` it meets. Log
    /// hooks write at once; webhooks get it queued (see the module docs for
    /// a full queue). Never fails: problems are counted and logged.
    pub fn send(&self, ev: &AlarmEvent) {
        for h in &self.logs {
            if ev.priority >= h.min_priority {
                log_event(&h.name, ev);
                Counters::inc(&self.counters.sent);
            }
        }
        for w in &self.webhooks {
            if ev.priority < w.min_priority {
                continue;
            }
            let wait = if w.congested.load(Ordering::Relaxed) {
                Duration::ZERO
            } else {
                self.enqueue_wait
            };
            match w.queue.push(ev.clone(), wait) {
                Ok(()) => w.congested.store(false, Ordering::Relaxed),
                Err((why, ev)) => {
                    let reason = match why {
                        PushError::Full => {
                            w.congested.store(true, Ordering::Relaxed);
                            "queue full"
                        }
                        PushError::Closed => "hook stopped",
                    };
                    Counters::inc(&self.counters.dropped);
                    log_dropped(&w.name, &ev, reason);
                }
            }
        }
    }

    pub fn stats(&self) -> HookStats {
        HookStats {
            sent: self.counters.sent.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
        }
    }

    /// Drains the queues, then joins the workers, waiting at most
    /// [`DispatcherOptions::shutdown_wait`]; returns the final counters.
    pub fn shutdown(mut self) -> HookStats {
        self.close();
        self.stats()
    }

    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        for w in &self.webhooks {
            w.queue.close();
        }
        let n = self.webhooks.len();
        let mut done = vec![false; n];
        let mut remaining = n;
        let wait_for = |deadline: Instant, done: &mut Vec<bool>, remaining: &mut usize| {
            while *remaining > 0 {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                match self.done_rx.recv_timeout(deadline - now) {
                    Ok(i) => {
                        if let Some(d) = done.get_mut(i) {
                            if !*d {
                                *d = true;
                                *remaining -= 1;
                            }
                        }
                    }
                    Err(_) => break,
                }
            }
        };
        wait_for(
            Instant::now() + self.shutdown_wait,
            &mut done,
            &mut remaining,
        );
        if remaining > 0 {
            tracing::error!(
                busy = remaining,
                wait_ms = self.shutdown_wait.as_millis() as u64,
                "hook dispatcher: webhooks still busy at the shutdown deadline; dropping their queued events"
            );
            self.abort.trigger();
            for w in &self.webhooks {
                for ev in w.queue.take_all() {
                    Counters::inc(&self.counters.dropped);
                    log_dropped(&w.name, &ev, "shutdown deadline passed");
                }
            }
            // Workers between attempts stop at once; give them a moment.
            wait_for(
                Instant::now() + Duration::from_millis(200),
                &mut done,
                &mut remaining,
            );
        }
        for (w, finished) in self.webhooks.iter_mut().zip(done) {
            let Some(t) = w.thread.take() else { continue };
            if finished {
                if t.join().is_err() {
                    tracing::error!(hook = %w.name, "webhook worker panicked");
                }
            } else {
                tracing::error!(hook = %w.name, "webhook worker still in a request at shutdown; detached");
            }
        }
    }
}

impl Drop for HookDispatcher {
    fn drop(&mut self) {
        self.close();
    }
}

struct Worker {
    hook: WebhookHook,
    queue: Arc<Queue<AlarmEvent>>,
    counters: Arc<Counters>,
    abort: Arc<Abort>,
    clock: Clock,
}

fn retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

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
    fn run(self) {
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

    /// Delivers one event with retries; the number of attempts on success.
    fn deliver(&self, agent: &ureq::Agent, ev: &AlarmEvent) -> Result<u32, AlertsError> {
        let hook = || self.hook.name.to_string();
        let body = webhook_body(ev)?;
        let id = webhook_id(ev);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let err = match self.post_once(agent, &id, &body) {
                Ok(status) if (200..300).contains(&status) => return Ok(attempt),
                Ok(status) => {
                    let e = AlertsError::HttpStatus {
                        hook: hook(),
                        status,
                    };
                    if !retryable_status(status) {
                        return Err(e);
                    }
                    e
                }
                Err(source) => {
                    let retry = retryable_transport(&source);
                    let e = AlertsError::Transport {
                        hook: hook(),
                        source,
                    };
                    if !retry {
                        return Err(e);
                    }
                    e
                }
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
    use crate::config::WebhookSecret;
    use ctower_model::{AlarmState, AssetKey, Level};

    #[test]
    fn standard_webhooks_test_vector() {
        // The example of the Standard Webhooks specification.
        let secret = match WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let sig = sign(
            secret.key(),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    fn ev(kind: AlarmEventKind) -> AlarmEvent {
        AlarmEvent {
            ts_ms: 1_772_427_600_000,
            rule: "r".into(),
            scope: AssetKey::new("s", "a", "l", "m").scope(Level::Asset),
            signal: Some("x".into()),
            kind,
            state: AlarmState::UnackActive,
            priority: Priority::High,
            metric: "x.max".into(),
            value: Some(2.0),
            threshold: 1.3,
            message: "m".into(),
        }
    }

    #[test]
    fn body_and_id() {
        let e = ev(AlarmEventKind::Raised);
        let body = match webhook_body(&e) {
            Ok(b) => b,
            Err(err) => panic!("{err}"),
        };
        let v: serde_json::Value = match serde_json::from_str(&body) {
            Ok(v) => v,
            Err(err) => panic!("{err}"),
        };
        assert_eq!(v["type"], "alarm.raised");
        assert_eq!(v["timestamp"], "2026-03-02T05:00:00.000Z");
        assert_eq!(v["data"]["rule"], "r");
        assert_eq!(v["data"]["state"], "unack_active");
        let id = webhook_id(&e);
        assert_eq!(id.len(), 36);
        assert!(id.starts_with("msg_"));
        assert_eq!(id, webhook_id(&e.clone()));
        assert_ne!(id, webhook_id(&ev(AlarmEventKind::Cleared)));
    }

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

    #[test]
    fn queue_times_out_when_full_and_drains_after_close() {
        let q = Queue::new(1);
        assert!(q.push(1, Duration::ZERO).is_ok());
        assert!(matches!(
            q.push(2, Duration::from_millis(1)),
            Err((PushError::Full, 2))
        ));
        q.close();
        assert!(matches!(
            q.push(3, Duration::ZERO),
            Err((PushError::Closed, 3))
        ));
        assert_eq!(q.pop(), Some(1));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn log_only_dispatcher_counts_sent() {
        let hooks = vec![Hook::Log(LogHook {
            name: "log".into(),
            min_priority: Priority::Urgent,
        })];
        let d = match HookDispatcher::start(hooks) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        d.send(&ev(AlarmEventKind::Raised)); // high < urgent: filtered
        let mut urgent = ev(AlarmEventKind::Raised);
        urgent.priority = Priority::Urgent;
        d.send(&urgent);
        assert_eq!(
            d.shutdown(),
            HookStats {
                sent: 1,
                failed: 0,
                dropped: 0
            }
        );
    }
}
