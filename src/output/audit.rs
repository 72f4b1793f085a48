//! The output stage's audit trail ([`ctower_alerts::audit`]): every alarm
//! state change (user `system`) and every operator action (its user),
//! hash-chained. An operator action is recorded before it takes effect and
//! refused when it cannot be recorded; a state change that cannot be
//! recorded (the process does not wait for a disk) raises the
//! `ctower.audit` system alarm.

use ctower_alerts::audit::{AuditTrail, Entry};
use ctower_model::time::rfc3339_ms;
use ctower_model::{AlarmEvent, AlarmId, AlarmState, Fault, ParamState};
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
            request: None,
            old: None,
            new: None,
            signed: None,
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

    /// A parameter write request's change (`param_<what>`): `Err` when it
    /// cannot be recorded (then it must not take effect). A change by the
    /// engine itself (`system`: sent, expiry, confirmation) that cannot be
    /// recorded raises the trail's fault like an alarm change.
    pub fn param(&mut self, rec: &ParamRecord<'_>) -> std::io::Result<()> {
        let state = |s: Option<ParamState>| s.map_or("none", ParamState::as_str).to_string();
        let e = Entry {
            ts: rfc3339_ms(rec.ts_ms),
            user: rec.user.to_string(),
            action: format!("param_{}", rec.what),
            rule: "param".into(),
            scope: rec.asset.to_string(),
            signal: Some(rec.param.to_string()),
            before: state(rec.before),
            after: state(rec.after),
            reason: rec.reason.to_string(),
            until: None,
            request: rec.request.map(str::to_string),
            old: rec.old.map(str::to_string),
            new: rec.new.map(str::to_string),
            signed: rec.signed.then_some(true),
        };
        let system = rec.user == "system";
        match self.trail.append(&e) {
            Ok(_) => {
                if system {
                    self.error = None;
                }
                Ok(())
            }
            Err(err) => {
                if system {
                    self.lost += 1;
                    if self.error.is_none() {
                        tracing::error!(path = %self.trail.path().display(), error = %err, "cannot write the audit trail: a parameter request's change goes unrecorded");
                    }
                    self.error = Some(err.to_string());
                }
                Err(err)
            }
        }
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

/// One parameter record ([`StageAudit::param`]).
pub struct ParamRecord<'a> {
    /// Who: the user, or `system` for the engine's own changes.
    pub user: &'a str,
    /// When (UTC ms).
    pub ts_ms: i64,
    /// What: `requested`, `approved`, `rejected`, `sent`, `confirmed`,
    /// `unconfirmed`, `expired`, `refused`.
    pub what: &'a str,
    /// The request's id (`None`: a refused new request).
    pub request: Option<&'a str>,
    /// The asset.
    pub asset: &'a str,
    /// The parameter.
    pub param: &'a str,
    /// The value before (the read-back when requested).
    pub old: Option<&'a str>,
    /// The value asked for.
    pub new: Option<&'a str>,
    /// The request's state before (`None`: none yet).
    pub before: Option<ParamState>,
    /// Its state after.
    pub after: Option<ParamState>,
    /// Why: the user's reason, or what happened.
    pub reason: &'a str,
    /// Whether the user's signature was checked for it.
    pub signed: bool,
}
