//! Alarm events, following the ANSI/ISA-18.2 alarm states.

use crate::{AssetKey, Level, ScopeKey};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// ISA-18.2 alarm states.
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
    /// A latching alarm whose condition has returned to normal: it stays
    /// annunciated until an operator resets it.
    Latched,
    /// Shelved by an operator for a limited time: not annunciated; when the
    /// shelf expires it is unacknowledged again if its condition still holds.
    Shelved,
    /// Suppressed by design (e.g. its line is in a planned stop): not
    /// annunciated while the design condition holds.
    Suppressed,
    /// Removed from service (maintenance, a broken instrument): not
    /// evaluated for annunciation until returned to service.
    OutOfService,
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
            AlarmState::Latched => "latched",
            AlarmState::Shelved => "shelved",
            AlarmState::Suppressed => "suppressed",
            AlarmState::OutOfService => "out_of_service",
        }
    }
}

impl std::str::FromStr for AlarmState {
    type Err = String;

    /// The names of [`AlarmState::as_str`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use AlarmState as S;
        [
            S::Normal,
            S::UnackActive,
            S::AckActive,
            S::UnackRtn,
            S::Latched,
            S::Shelved,
            S::Suppressed,
            S::OutOfService,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
        .ok_or_else(|| format!("unknown alarm state `{s}`"))
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
            AlarmEventKind::Reset => "reset",
            AlarmEventKind::Shelved => "shelved",
            AlarmEventKind::Unshelved => "unshelved",
            AlarmEventKind::Suppressed => "suppressed",
            AlarmEventKind::Unsuppressed => "unsuppressed",
            AlarmEventKind::RemovedFromService => "removed_from_service",
            AlarmEventKind::ReturnedToService => "returned_to_service",
        }
    }
}

/// An alarm's priority (ISA-18.2): how fast an operator must respond.
/// Ordered, so a hook's `min_priority` is a comparison.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Look at it when convenient.
    #[default]
    Low,
    /// Look at it within the shift.
    Medium,
    /// Act soon: production, quality or energy is being lost.
    High,
    /// Act now (also the tower's own faults: a stage that cannot write).
    /// ISA-18.2's "critical"; configurations may write `critical`.
    #[serde(alias = "critical")]
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
    /// An operator reset a latched alarm.
    Reset,
    /// An operator shelved the alarm (for a limited time).
    Shelved,
    /// The shelf ended: by an operator, or when its time ran out.
    Unshelved,
    /// Its design suppression began.
    Suppressed,
    /// Its design suppression ended.
    Unsuppressed,
    /// An operator removed it from service.
    RemovedFromService,
    /// An operator returned it to service.
    ReturnedToService,
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

impl AlarmId {
    /// Parses the text form [`Display`](std::fmt::Display) writes:
    /// `RULE@SCOPE[#SIGNAL]`, where SCOPE is `group`, `SITE`,
    /// `SITE/AREA/LINE` or `SITE/AREA/LINE/ASSET`.
    pub fn parse(text: &str) -> Result<AlarmId, String> {
        let (rule, rest) = text
            .split_once('@')
            .ok_or_else(|| format!("`{text}`: expected RULE@SCOPE[#SIGNAL]"))?;
        let (scope, signal) = match rest.split_once('#') {
            Some((s, sig)) => (s, Some(sig)),
            None => (rest, None),
        };
        let parts: Vec<&str> = scope.split('/').collect();
        if rule.is_empty() || parts.iter().any(|p| p.is_empty()) || signal == Some("") {
            return Err(format!("`{text}`: empty rule, scope part or signal"));
        }
        let scope = match parts.as_slice() {
            ["group"] => ScopeKey::group(),
            [site] => ScopeKey {
                level: Level::Site,
                site: Some((*site).into()),
                area: None,
                line: None,
                asset: None,
            },
            [site, area, line] => AssetKey::new(site, area, line, "-").scope(Level::Line),
            [site, area, line, asset] => AssetKey::new(site, area, line, asset).scope(Level::Asset),
            _ => {
                return Err(format!(
                    "`{scope}`: a scope is group, SITE, SITE/AREA/LINE or SITE/AREA/LINE/ASSET"
                ))
            }
        };
        Ok(AlarmId {
            rule: rule.into(),
            scope,
            signal: signal.map(Arc::from),
        })
    }
}

impl std::fmt::Display for AlarmId {
    /// `RULE@SCOPE[#SIGNAL]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.rule, self.scope)?;
        if let Some(s) = &self.signal {
            write!(f, "#{s}")?;
        }
        Ok(())
    }
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

#[cfg(test)]
mod id_text {
    use super::*;

    #[test]
    fn alarm_ids_round_trip_through_their_text() {
        for text in [
            "r@group",
            "site-data-stale@lyon-fill",
            "line-availability-low@lyon-fill/aseptic/fill-1",
            "pw-conductivity-usp@basel-api/utilities/ro-1/skid#conductivity_us_cm",
        ] {
            let id = AlarmId::parse(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(id.to_string(), text);
        }
        for bad in ["norule", "@site", "r@a/b", "r@a//c", "r@s#"] {
            assert!(AlarmId::parse(bad).is_err(), "{bad}");
        }
    }
}
