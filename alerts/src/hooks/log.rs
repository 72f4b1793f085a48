//! The log hook, and the error line for an event a webhook had to drop:
//! alarm events as structured `tracing` events.

use super::envelope::event_type;
use ctower_model::time::rfc3339_ms;
use ctower_model::{AlarmEvent, AlarmEventKind, Priority};

/// Writes one alarm event as a structured `tracing` event: raised events at
/// `error` (urgent), `warn` (high, medium) or `info` (low); cleared and
/// acknowledged events at `info`.
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
