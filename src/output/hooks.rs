//! The alarm hooks as a sink: every alarm event goes to the webhook
//! dispatcher (its own bounded queues and threads, see `ctower_alerts`).

use super::{RunEnd, Sink};
use ctower_alerts::HookDispatcher;
use ctower_model::{AlarmEvent, StreamOutput};

/// Alarm events to the configured hooks.
pub struct HooksSink {
    hooks: Option<HookDispatcher>,
}

impl HooksSink {
    /// A sink sending to `hooks`.
    pub fn new(hooks: HookDispatcher) -> Self {
        HooksSink { hooks: Some(hooks) }
    }
}

impl Sink for HooksSink {
    fn record(&mut self, _out: &StreamOutput) {}

    fn alarm(&mut self, ev: &AlarmEvent) {
        if let Some(h) = &self.hooks {
            h.send(ev);
        }
    }

    fn finish(&mut self, _end: &RunEnd) -> anyhow::Result<()> {
        if let Some(h) = self.hooks.take() {
            let stats = h.shutdown();
            tracing::info!(
                sent = stats.sent,
                failed = stats.failed,
                dropped = stats.dropped,
                "hooks stopped"
            );
        }
        Ok(())
    }
}
