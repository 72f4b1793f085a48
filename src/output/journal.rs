//! The journal as a sink: every record and alarm event of a window is
//! appended, and the window is committed as a whole (see
//! [`crate::journal`] for the file, its fsync policy and its backlog).

use super::{RunEnd, Sink};
use crate::journal::Journal;
use ctower_model::{AlarmEvent, Fault, StreamOutput};
use ctower_stream::WindowOutput;

/// The journal, committed once per window.
pub struct JournalSink {
    journal: Journal,
    clock: ctower_model::Clock,
}

impl JournalSink {
    /// A sink writing to `journal`; `clock` times the final commit.
    pub fn new(journal: Journal, clock: ctower_model::Clock) -> Self {
        JournalSink { journal, clock }
    }
}

impl Sink for JournalSink {
    fn record(&mut self, out: &StreamOutput) {
        self.journal.append_output(out);
    }

    fn alarm(&mut self, ev: &AlarmEvent) {
        self.journal.append_alarm(ev);
    }

    fn end_window(&mut self, _window: &WindowOutput, now_ms: i64) {
        // Durable as a whole, or kept and retried (the journal logs the
        // failure with its path, and `fault` reports it).
        let _ = self.journal.commit(now_ms);
    }

    fn fault(&self) -> Option<Fault> {
        let h = self.journal.health();
        (!h.ok()).then(|| Fault {
            stage: "journal".into(),
            path: h.path.display().to_string(),
            error: h.last_error.clone().unwrap_or_default(),
            lost: h.lines_dropped,
        })
    }

    fn checkpoint(&mut self) -> Option<Vec<super::checkpoint::FileLen>> {
        // Committed at `end_window`: durable when nothing waits.
        let h = self.journal.health();
        if !h.ok() || h.backlog_lines > 0 {
            return None;
        }
        let len = std::fs::metadata(&h.path).ok()?.len();
        Some(vec![super::checkpoint::FileLen { path: h.path, len }])
    }

    fn finish(&mut self, _end: &RunEnd) -> anyhow::Result<()> {
        let _ = self.journal.commit(self.clock.now_ms());
        let h = self.journal.health();
        if !h.ok() || h.backlog_lines > 0 || h.lines_dropped > 0 {
            anyhow::bail!(
                "journal {}: {} line(s) dropped, {} not written ({})",
                h.path.display(),
                h.lines_dropped,
                h.backlog_lines,
                h.last_error.unwrap_or_default()
            );
        }
        Ok(())
    }
}
