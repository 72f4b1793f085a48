//! Alarms about ctower itself: a stage that cannot do its job (the journal
//! or the dead-letter file on a full disk …) must reach the people on call
//! like any process alarm, not only a log line nobody reads.
//!
//! Pure: the caller says, with the time, whether each stage is failing; one
//! alarm per stage follows the ISA-18.2 states (raised → unacknowledged
//! active; cleared → returned to normal unacknowledged), urgent priority,
//! scope the group, rule `ctower.<stage>`.

use ctower_model::{AlarmEvent, AlarmEventKind, AlarmState, Priority, ScopeKey};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The rule name of a stage's alarm.
pub fn rule_of(stage: &str) -> String {
    format!("ctower.{stage}")
}

/// Which of the tower's own alarms are active, by stage: a fault raises
/// one alarm per stage, a recovery clears it.
#[derive(Debug, Default)]
pub struct SystemAlarms {
    active: BTreeMap<String, bool>,
}

impl SystemAlarms {
    /// None active.
    pub fn new() -> Self {
        SystemAlarms::default()
    }

    /// Reports whether `stage` is failing at `ts_ms` (wall clock: this is
    /// about the tower, not the plants' event time); returns the alarm's
    /// change, if any. `message` says what fails and where (never a secret).
    pub fn set(
        &mut self,
        stage: &str,
        failing: bool,
        ts_ms: i64,
        message: &str,
    ) -> Option<AlarmEvent> {
        let was = self.active.get(stage).copied().unwrap_or(false);
        if was == failing {
            return None;
        }
        self.active.insert(stage.to_string(), failing);
        let (kind, state) = if failing {
            (AlarmEventKind::Raised, AlarmState::UnackActive)
        } else {
            (AlarmEventKind::Cleared, AlarmState::UnackRtn)
        };
        Some(AlarmEvent {
            ts_ms,
            rule: Arc::from(rule_of(stage)),
            scope: ScopeKey::group(),
            signal: None,
            kind,
            state,
            priority: Priority::Urgent,
            metric: Arc::from(stage),
            value: None,
            threshold: 0.0,
            message: Arc::from(message),
        })
    }

    /// Stages failing now.
    pub fn failing(&self) -> impl Iterator<Item = &str> {
        self.active
            .iter()
            .filter(|(_, a)| **a)
            .map(|(s, _)| s.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_alarm_per_stage_raised_once_and_cleared_once() {
        let mut s = SystemAlarms::new();
        assert!(s.set("journal", false, 0, "ok").is_none());
        let raised = s.set("journal", true, 10, "journal: disk full").unwrap();
        assert_eq!(
            (raised.kind, raised.state, raised.priority),
            (
                AlarmEventKind::Raised,
                AlarmState::UnackActive,
                Priority::Urgent
            )
        );
        assert_eq!(&*raised.rule, "ctower.journal");
        assert!(s.set("journal", true, 20, "still").is_none(), "no storm");
        assert_eq!(s.failing().collect::<Vec<_>>(), ["journal"]);
        let cleared = s.set("journal", false, 30, "recovered").unwrap();
        assert_eq!(cleared.kind, AlarmEventKind::Cleared);
        assert_eq!(s.failing().count(), 0);
    }
}
