//! Alert hooks and their dispatcher: the thin I/O edge of the crate.
//!
//! - `envelope`: what a webhook receives (JSON envelope, message id,
//!   Standard Webhooks signature); pure.
//! - `log`: the log hook.
//! - `queue`: the bounded queue and the abort flag between the dispatcher
//!   and its webhook threads.
//! - `delivery`: one webhook's thread, HTTP POST with retries.
//! - `dispatcher`: [`HookDispatcher`], which fans events out and owns the
//!   threads.
//!
//! Behaviour:
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
//! from the dispatcher's [`Clock`](ctower_model::Clock)) and `webhook-signature:
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

mod delivery;
mod dispatcher;
mod envelope;
mod log;
mod queue;

pub use dispatcher::{DispatcherOptions, HookDispatcher};
pub use envelope::{event_type, sign, webhook_body, webhook_id};
pub use log::log_event;

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// The live counters behind [`HookStats`], shared with the webhook threads.
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
