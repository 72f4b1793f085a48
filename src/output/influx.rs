//! InfluxDB as a sink: each closed window's lines (the journal's, see
//! [`crate::journal`]) go to the outbox in one synced append; the drainer
//! ([`crate::influx::drain`]) sends them on.

use super::{RunEnd, Sink};
use crate::influx::Influx;
use crate::journal::{alarm_line, output_line};
use ctower_model::{AlarmEvent, Clock, Fault, StreamOutput};
use ctower_outbox::Outbox;
use ctower_stream::WindowOutput;
use std::sync::Arc;
use std::time::Duration;

/// The InfluxDB output, appended once per window.
pub struct InfluxSink {
    influx: Option<Influx>,
    outbox: Arc<Outbox>,
    lines: Vec<String>,
    clock: Clock,
    /// How long `finish` waits for the outbox to drain.
    drain_wait: Duration,
}

impl InfluxSink {
    /// A sink feeding `influx`'s outbox; at the end it waits up to
    /// `drain_wait` for the server to take what is left.
    pub fn new(influx: Influx, clock: Clock, drain_wait: Duration) -> Self {
        InfluxSink {
            outbox: influx.outbox(),
            influx: Some(influx),
            lines: Vec::new(),
            clock,
            drain_wait,
        }
    }
}

impl Sink for InfluxSink {
    fn record(&mut self, out: &StreamOutput) {
        let mut line = String::with_capacity(1024);
        output_line(out, &mut line);
        self.lines.push(line);
    }

    fn alarm(&mut self, ev: &AlarmEvent) {
        let mut line = String::with_capacity(256);
        alarm_line(ev, &mut line);
        self.lines.push(line);
    }

    fn end_window(&mut self, _window: &WindowOutput, now_ms: i64) {
        // Logged and counted by the outbox on failure (the journal keeps
        // the lines; `fault` reports it).
        let _ = self.outbox.append(&self.lines, now_ms);
        self.lines.clear();
    }

    fn fault(&self) -> Option<Fault> {
        // Only the outbox's own disk: a server that is down is no fault of
        // this sink (the outbox holds the lines); its alarms come from the
        // status ([`crate::influx::InfluxStatus::faults`]).
        let n = self.outbox.numbers(self.clock.now_ms());
        n.write_error.map(|error| Fault {
            stage: "influx_outbox".into(),
            path: self.outbox.dir().display().to_string(),
            error,
            lost: n.lost,
        })
    }

    fn finish(&mut self, _end: &RunEnd) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let _ = self.outbox.append(&std::mem::take(&mut self.lines), now);
        let Some(influx) = self.influx.take() else {
            return Ok(());
        };
        let status = influx.status_handle();
        tracing::info!(
            pending = self.outbox.pending(),
            "waiting for InfluxDB to take the outbox's lines"
        );
        let left = influx.finish(self.drain_wait);
        let s = status.status(self.clock.now_ms());
        if left > 0 {
            tracing::warn!(
                outbox = %self.outbox.dir().display(),
                pending = left,
                last_error = s.last_error.as_deref().unwrap_or(""),
                "InfluxDB has not taken every line yet: they stay in the outbox and are sent at the next start"
            );
        } else {
            tracing::info!(
                written = s.written,
                rejected = s.rejected,
                "InfluxDB output drained"
            );
        }
        if s.lost > 0 {
            anyhow::bail!(
                "InfluxDB outbox {}: {} line(s) lost ({})",
                self.outbox.dir().display(),
                s.lost,
                s.last_error.unwrap_or_default()
            );
        }
        Ok(())
    }
}
