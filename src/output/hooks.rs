//! The alarm hooks as a sink: every alarm event goes to the hook
//! dispatcher, which writes its notifications to each hook's durable
//! outbox before returning (see `ctower_alerts::hooks`).

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

    fn immediate(&self) -> bool {
        true
    }

    fn held_alarm(&mut self, ev: &AlarmEvent) {
        if let Some(h) = &self.hooks {
            h.note(ev);
        }
    }

    fn finish(&mut self, _end: &RunEnd) -> anyhow::Result<()> {
        if let Some(h) = self.hooks.take() {
            let stats = h.shutdown();
            tracing::info!(
                delivered = stats.delivered,
                dead_lettered = stats.dead_lettered,
                pending = stats.pending,
                "hooks stopped"
            );
        }
        Ok(())
    }
}
