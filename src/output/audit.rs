//! The output stage's audit trail ([`ctower_alerts::audit`]): every alarm
//! state change (user `system`) and every operator action (its user),
//! hash-chained. An operator action is recorded before it takes effect and
//! refused when it cannot be recorded; a state change that cannot be
//! recorded (the process does not wait for a disk) raises the
//! `ctower.audit` system alarm.

use ctower_alerts::audit::{AuditTrail, Entry};
use ctower_model::time::rfc3339_ms;
use ctower_model::{AlarmEvent, AlarmId, AlarmState, Fault};
use std::collections::BTreeMap;

/// The trail and the alarms' last states (each record's `before`).
pub struct StageAudit {
    trail: AuditTrail,
    states: BTreeMap<AlarmId, AlarmState>,
    error: Option<String>,
    lost: u64,
}

impl StageAudit {
    /// Records into `trail`.
    pub fn new(trail: AuditTrail) -> Self {
        StageAudit {
            trail,
            states: BTreeMap::new(),
            error: None,
            lost: 0,
        }
    }

    fn entry(
        user: &str,
        ev_ts: i64,
        id: &AlarmId,
        before: AlarmState,
        after: AlarmState,
        action: &str,
        reason: &str,
    ) -> Entry {
        Entry {
            ts: rfc3339_ms(ev_ts),
            user: user.to_string(),
            action: action.to_string(),
            rule: id.rule.to_string(),
            scope: id.scope.to_string(),
            signal: id.signal.as_deref().map(str::to_string),
            before: before.as_str().to_string(),
            after: after.as_str().to_string(),
            reason: reason.to_string(),
            until: None,
        }
    }

    /// The state this trail last saw of `id`.
    pub fn state(&self, id: &AlarmId) -> AlarmState {
        self.states.get(id).copied().unwrap_or(AlarmState::Normal)
    }

    /// A state found in the trail at a start (for the next record's `before`).
    pub fn seed(&mut self, id: &AlarmId, state: AlarmState) {
        self.states.insert(id.clone(), state);
    }

    /// A change recorded before a restart (computed again, not recorded
    /// again): its state only, for the next record's `before`.
    pub fn note(&mut self, ev: &AlarmEvent) {
        self.states.insert(ev.id(), ev.state);
    }

    /// An engine's state change, by `system`.
    pub fn event(&mut self, ev: &AlarmEvent) {
        let id = ev.id();
        let before = self.state(&id);
        let e = Self::entry(
            "system",
            ev.ts_ms,
            &id,
            before,
            ev.state,
            ev.kind.as_str(),
            &ev.message,
        );
        self.states.insert(id, ev.state);
        if let Err(e) = self.trail.append(&e) {
            self.lost += 1;
            if self.error.is_none() {
                tracing::error!(path = %self.trail.path().display(), error = %e, "cannot write the audit trail: alarm changes go unrecorded, operator actions are refused");
            }
            self.error = Some(e.to_string());
        } else {
            self.error = None;
        }
    }

    /// An operator's action on `id` (`before` → `after`) at `ts_ms`: `Err`
    /// when it cannot be recorded (then it must not be carried out).
    pub fn action(
        &mut self,
        user: &str,
        ts_ms: i64,
        id: &AlarmId,
        (before, after): (AlarmState, AlarmState),
        action: &str,
        reason: &str,
    ) -> std::io::Result<()> {
        self.action_until(user, ts_ms, id, (before, after), action, reason, None)
    }

    /// [`Self::action`] with a shelf's end.
    #[allow(clippy::too_many_arguments)]
    pub fn action_until(
        &mut self,
        user: &str,
        ts_ms: i64,
        id: &AlarmId,
        (before, after): (AlarmState, AlarmState),
        action: &str,
        reason: &str,
        until_ms: Option<i64>,
    ) -> std::io::Result<()> {
        let mut e = Self::entry(user, ts_ms, id, before, after, action, reason);
        e.until = until_ms.map(rfc3339_ms);
        self.trail.append(&e)?;
        self.states.insert(id.clone(), after);
        Ok(())
    }

    /// The trail's fault, while it cannot write.
    pub fn fault(&self) -> Option<Fault> {
        self.error.as_ref().map(|error| Fault {
            stage: "audit".into(),
            path: self.trail.path().display().to_string(),
            error: error.clone(),
            lost: self.lost,
        })
    }
}
