//! Alarm events, following the ANSI/ISA-18.2 alarm states.

use crate::ScopeKey;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// ISA-18.2 alarm states (the subset without shelving and suppression).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// Normal: condition clear, nothing to acknowledge.
    Normal,
    /// Active and not yet acknowledged.
    UnackActive,
    /// Active and acknowledged.
    AckActive,
    /// Returned to normal before anyone acknowledged it.
    UnackRtn,
}

impl AlarmState {
    /// Whether the condition is present (acknowledged or not).
    pub fn is_active(self) -> bool {
        matches!(self, AlarmState::UnackActive | AlarmState::AckActive)
    }

    /// The name used everywhere (serde, journal, hooks, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Normal => "normal",
            AlarmState::UnackActive => "unack_active",
            AlarmState::AckActive => "ack_active",
            AlarmState::UnackRtn => "unack_rtn",
        }
    }
}

impl Priority {
    /// The name used everywhere (serde, journal, hooks, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl AlarmEventKind {
    /// The name used everywhere (serde, journal, hooks, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmEventKind::Raised => "raised",
            AlarmEventKind::Cleared => "cleared",
            AlarmEventKind::Acknowledged => "acknowledged",
        }
    }
}

/// An alarm's priority (ISA-18.2): how fast an operator must respond.
/// Ordered, so a hook's `min_priority` is a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Look at it when convenient.
    Low,
    /// Look at it within the shift.
    Medium,
    /// Act soon: production, quality or energy is being lost.
    High,
    /// Act now (also the tower's own faults: a stage that cannot write).
    Urgent,
}

/// What happened to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmEventKind {
    /// The condition became (and stayed, for the on-delay) true.
    Raised,
    /// The condition cleared past its hysteresis band.
    Cleared,
    /// An operator acknowledged the alarm.
    Acknowledged,
}

/// The identity of one alarm: one alarm per (rule, scope, signal), whose
/// events update it and never multiply it. The alarm engine, the dashboard
/// and (later) an operator's acknowledgement all name an alarm by this.
/// Ordered by rule name, then scope, then signal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlarmId {
    /// The rule's name.
    pub rule: Arc<str>,
    /// Where it applies.
    pub scope: ScopeKey,
    /// The telemetry signal for telemetry rules, `None` for KPI rules.
    pub signal: Option<Arc<str>>,
}

impl AlarmEvent {
    /// The alarm this event changes.
    pub fn id(&self) -> AlarmId {
        AlarmId {
            rule: self.rule.clone(),
            scope: self.scope.clone(),
            signal: self.signal.clone(),
        }
    }
}

/// One change of one alarm (see [`AlarmId`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmEvent {
    /// Event time of the change (the end of the window that caused it).
    pub ts_ms: i64,
    /// The rule's name.
    pub rule: Arc<str>,
    /// Where it applies.
    pub scope: ScopeKey,
    /// The telemetry signal for telemetry rules, `None` for KPI rules.
    pub signal: Option<Arc<str>>,
    /// What happened.
    pub kind: AlarmEventKind,
    /// State after the change.
    pub state: AlarmState,
    /// The rule's priority.
    pub priority: Priority,
    /// The metric or signal statistic the rule watches.
    pub metric: Arc<str>,
    /// The value that caused the change, if any.
    pub value: Option<f64>,
    /// The rule's threshold (raise side).
    pub threshold: f64,
    /// The rule's message for the operator.
    pub message: Arc<str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `as_str` is the serde name: one name per value, whichever path writes it.
    #[test]
    fn names_are_the_serde_names() {
        for s in [
            AlarmState::Normal,
            AlarmState::UnackActive,
            AlarmState::AckActive,
            AlarmState::UnackRtn,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for p in [
            Priority::Low,
            Priority::Medium,
            Priority::High,
            Priority::Urgent,
        ] {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        for k in [
            AlarmEventKind::Raised,
            AlarmEventKind::Cleared,
            AlarmEventKind::Acknowledged,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }
}
