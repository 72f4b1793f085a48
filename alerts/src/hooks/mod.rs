//! Alert hooks and their dispatcher: the thin I/O edge of the crate.
//!
//! - `envelope`: the Standard Webhooks signature and the event types; pure.
//! - `format`: what each kind of hook receives (webhook envelope, Slack,
//!   Teams, PagerDuty Events API v2); pure.
//! - `log`: the log hook.
//! - `delivery`: one hook's thread, draining its outbox with retries.
//! - `dispatcher`: [`HookDispatcher`], which runs the [`Notifier`](crate::notify::Notifier),
//!   writes its notifications to each hook's durable outbox and owns the
//!   threads.
//!
//! Behaviour:
//!
//! - Log hooks write one structured `tracing` event per alarm event, inline
//!   in [`HookDispatcher::send`]. Raised events log at `error` (urgent),
//!   `warn` (high, medium) or `info` (low); other events at `info`.
//! - Every other hook has a durable outbox (`ctower_outbox`:
//!   `outbox_dir/<hook>/`): [`HookDispatcher::send`] returns once the
//!   event's notifications are synced there, so a crash or a restart loses
//!   none; the hook's thread delivers them in order (see `delivery` for
//!   retries and dead letters) and a restart delivers what was left.
//! - Repeats and escalations of unacknowledged alarms run on a timer
//!   thread (once a second by default) on the dispatcher's clock.
//! - [`HookDispatcher::shutdown`] lets the outboxes drain for at most
//!   [`DispatcherOptions::shutdown_wait`] (default 10 s); what is left is
//!   sent at the next start.

mod delivery;
mod dispatcher;
mod envelope;
pub mod format;
mod log;
mod queue;

pub use delivery::{describe, redact_url};
pub use dispatcher::{DispatcherOptions, HookDispatcher, HooksHealth, FAILING_FAULT_AFTER_MS};
pub use envelope::{event_type, sign, webhook_body, webhook_id};
pub use log::log_event;

use serde::Serialize;

/// Delivery counters, summed over all delivering hooks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HookStats {
    /// Notifications delivered since start.
    pub delivered: u64,
    /// Notifications refused for good (dead-lettered) since start.
    pub dead_lettered: u64,
    /// Notifications waiting in the outboxes.
    pub pending: u64,
}
