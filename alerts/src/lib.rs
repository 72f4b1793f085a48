//! ctower alerts: turns the stream's KPI records and signal windows into
//! alarms, and tells people about them.
//!
//! Three parts, from pure to I/O:
//! - [`config`]: the `[alerts]` configuration as written ([`AlertsConfig`]:
//!   `[[alerts.rules]]`, `[[alerts.hooks]]`) and its check into [`Alerts`]
//!   (rules and hooks), which reports every problem with its full key path.
//! - [`engine`]: [`AlarmEngine`], threshold rules with on-delay and
//!   hysteresis and the ANSI/ISA-18.2 alarm lifecycle (Normal, UnackActive,
//!   AckActive, UnackRtn), one alarm per (rule, scope, signal). Pure and
//!   deterministic: event time only, no I/O, ordered state; replaying the
//!   same stream gives the same alarms.
//! - [`notify`]: [`Notifier`], who is told what and when: routing by
//!   priority, site and rule, one flood summary per flooded site console,
//!   repeats and escalation of unacknowledged alarms. Pure, clock-injected.
//! - [`hooks`]: [`HookDispatcher`], delivering the notifications to log
//!   hooks (`tracing`), signed webhooks (Standard Webhooks), Slack, Teams,
//!   PagerDuty (Events API v2) and commands, each through a durable outbox
//!   (`ctower_outbox`) drained by its own thread with retries and dead letters.
//! - [`lifecycle`]: the ISA-18.2 state machine of one alarm, pure and
//!   clock-injected: normal, unacknowledged, acknowledged,
//!   returned-to-normal-unacknowledged, latched, shelved (with a time
//!   limit), suppressed by design, out of service. The engine drives it.
//! - [`system`]: [`SystemAlarms`], alarms about ctower itself (a stage that
//!   cannot write), in the same ISA-18.2 states.
//!
//! ```no_run
//! # fn main() -> Result<(), ctower_alerts::AlertsError> {
//! # let cfg = ctower_alerts::AlertsConfig::default();
//! # let outputs: Vec<ctower_model::StreamOutput> = Vec::new();
//! use ctower_alerts::{AlarmEngine, DispatcherOptions, HookDispatcher, Secrets};
//! let env = |name: &str| std::env::var(name).ok();
//! let mut issues = Vec::new();
//! let Some(alerts) = cfg.check("alerts", Secrets::Required(&env), &mut issues) else {
//!     for issue in &issues {
//!         eprintln!("{issue}");
//!     }
//!     return Ok(());
//! };
//! let mut engine = AlarmEngine::new(alerts.rules);
//! let hooks = HookDispatcher::start(alerts.hooks, DispatcherOptions::new("out/hooks".into()))?;
//! for out in &outputs {
//!     for ev in engine.process(out) {
//!         hooks.send(&ev);
//!     }
//! }
//! hooks.shutdown();
//! # Ok(()) }
//! ```
//!
//! - [`audit`]: the hash-chained audit trail of alarm changes and operator actions.
//!
//! Not here yet (see the mission's "Alerts"): rate-of-change, deadman,
//! anomaly and drift rules; per-sample process alarms; operator commands
//! for shelving and out-of-service, and rules' design suppression (the
//! state machine has them); chatter detection.

pub mod audit;
pub mod config;
pub mod detect;
pub mod engine;
pub mod hooks;
pub mod lifecycle;
pub mod notify;
pub mod system;

pub use config::{
    Alerts, AlertsConfig, Condition, ConfigIssue, Hook, HookConfig, HookKind, LogHook, Route, Rule,
    RuleConfig, RuleSource, ScopeFilter, Secrets, SourceKind, Stat, Target, WebhookHook,
    WebhookSecret,
};
pub use engine::{AlarmEngine, AlarmStatus};
pub use hooks::{DispatcherOptions, HookDispatcher, HookStats, HooksHealth};
pub use notify::{FloodLimits, Notifier};
pub use system::SystemAlarms;

/// Errors of the alerts crate.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    /// A webhook signing secret is unusable (the secret itself is never shown).
    #[error("invalid webhook secret: {0}")]
    Secret(String),
    /// A webhook's signing secret was never read: its configuration was
    /// checked with [`Secrets::IfSet`] and the variable was not set.
    #[error(
        "hook `{hook}`: its secret ({var}) was not read; it would be sent unsigned or not at all"
    )]
    UnreadSecret {
        /// The hook's name.
        hook: String,
        /// The variable named by `secret_env`.
        var: String,
    },
    /// A hook's outbox could not be opened.
    #[error("hook `{hook}`: cannot open its outbox {}: {source}", dir.display())]
    Outbox {
        /// The hook's name.
        hook: String,
        /// The outbox's directory.
        dir: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A hook thread could not be started.
    #[error("cannot start the thread of hook `{hook}`: {source}")]
    Spawn {
        /// The hook's name.
        hook: String,
        /// Why the thread could not be started.
        #[source]
        source: std::io::Error,
    },
    /// An alarm event could not be encoded as JSON.
    #[error("cannot encode the alarm event: {0}")]
    Encode(#[from] serde_json::Error),
    /// The webhook endpoint answered with a non-2xx status.
    #[error("webhook `{hook}` answered HTTP {status}")]
    HttpStatus {
        /// The hook's name.
        hook: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The webhook request failed in transport (connection, timeout, protocol).
    #[error("webhook `{hook}`: {source}")]
    Transport {
        /// The hook's name.
        hook: String,
        /// What went wrong.
        #[source]
        source: ureq::Error,
    },
    /// Every attempt failed with a retryable error.
    #[error("webhook `{hook}`: gave up after {attempts} attempt(s): {last}")]
    GaveUp {
        /// The hook's name.
        hook: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<AlertsError>,
    },
    /// The dispatcher's shutdown deadline passed while the event was being retried.
    #[error("webhook `{hook}`: delivery abandoned at shutdown")]
    Aborted {
        /// The hook's name.
        hook: String,
    },
}
