//! The dashboard as a sink: the KPI records it shows (its own rule,
//! `ctower_tui::wants`) and every alarm event, over a bounded channel.
//! Full channel: a KPI update is dropped (the next window replaces it), an
//! alarm event waits — the dashboard must never miss an alarm.

use super::Sink;
use ctower_model::{AlarmEvent, StreamOutput, Update};
use std::sync::mpsc::{SyncSender, TrySendError};

/// Updates for the dashboard thread.
pub struct DashboardSink {
    tx: SyncSender<Update>,
}

impl DashboardSink {
    /// A sink sending to the dashboard's channel.
    pub fn new(tx: SyncSender<Update>) -> Self {
        DashboardSink { tx }
    }
}

/// Sends `u`: alarm events wait for room, the rest is dropped on a full
/// channel. `false` once the dashboard has gone.
pub fn send(tx: &SyncSender<Update>, u: Update) -> bool {
    match u {
        Update::Alarm(_) => tx.send(u).is_ok(),
        other => !matches!(tx.try_send(other), Err(TrySendError::Disconnected(_))),
    }
}

impl Sink for DashboardSink {
    fn record(&mut self, out: &StreamOutput) {
        if let StreamOutput::Kpi(k) = out {
            if ctower_tui::wants(k) {
                send(&self.tx, Update::Kpi(k.clone()));
            }
        }
    }

    fn alarm(&mut self, ev: &AlarmEvent) {
        send(&self.tx, Update::Alarm(ev.clone()));
    }

    fn immediate(&self) -> bool {
        true
    }

    /// Alarms from before a restart: the dashboard shows them as they stand.
    fn held_alarm(&mut self, ev: &AlarmEvent) {
        send(&self.tx, Update::Alarm(ev.clone()));
    }
}
