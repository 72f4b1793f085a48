//! Operators' requests to the output stage (from the command topic:
//! `ctower alarms …`): who may do what, the request's checks, the audit
//! record before the effect, the engine's input, the reply; and what a
//! restart finds in the audit trail.

use super::OutputStage;
use ctower_alerts::lifecycle::Input as LifeInput;
use ctower_model::time::{parse_rfc3339_ms, rfc3339_ms};
use ctower_model::{AlarmId, AlarmLine, AlarmState, CommandAction, CommandReply, CommandRequest};
use std::collections::BTreeMap;

/// Longest request id and reason accepted.
const MAX_ID: usize = 64;
const MAX_REASON: usize = 500;

/// The users authorised to act on alarms, and their actions; their roles
/// and signature hashes for parameter control.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Operators {
    /// User name → the actions they may take (`list` is allowed to all of them).
    pub users: BTreeMap<String, Vec<CommandAction>>,
    /// User name → their parameter control roles.
    pub roles: BTreeMap<String, Vec<String>>,
    /// User name → their signature's argon2 hash (PHC string).
    pub signatures: BTreeMap<String, String>,
    /// Who the in-process dashboard's user is for parameter control
    /// (`None`: the operating system's user).
    pub console_user: Option<String>,
}

impl Operators {
    /// Whether `user` may take `action`.
    pub fn may(&self, user: &str, action: CommandAction) -> bool {
        self.users
            .get(user)
            .is_some_and(|a| action == CommandAction::List || a.contains(&action))
    }
}

fn refuse(id: &str, message: String) -> CommandReply {
    CommandReply {
        id: id.to_string(),
        user: String::new(),
        ok: false,
        message,
        state: None,
        alarms: Vec::new(),
        requests: Vec::new(),
        params: Vec::new(),
    }
}

impl OutputStage {
    /// A named user's request, at the stage's clock: checked, recorded in
    /// the audit trail before it takes effect (refused if it cannot be),
    /// carried out; the reply says what happened. A refusal on an alarm is
    /// recorded too (action `refused`).
    pub fn request(&mut self, req: &CommandRequest) -> CommandReply {
        self.request_as(req, false)
    }

    /// [`OutputStage::request`]; `console`: from the engine's own
    /// terminal, whose user may take every action.
    pub fn request_as(&mut self, req: &CommandRequest, console: bool) -> CommandReply {
        let now = self.clock.now_ms();
        let id = req.id.chars().take(MAX_ID).collect::<String>();
        let action = req.action;
        if req.id.is_empty() || req.id.chars().count() > MAX_ID {
            return refuse(
                &id,
                format!("the request id must have 1 to {MAX_ID} characters"),
            );
        }
        if matches!(
            action,
            CommandAction::Set
                | CommandAction::Approve
                | CommandAction::Reject
                | CommandAction::Params
        ) {
            // Roles and signatures, not the alarm actions, rule these.
            return self.param_request(&id, req, console);
        }
        if !console && !self.operators.may(&req.user, action) {
            let msg = format!(
                "user `{}` may not {} alarms here",
                req.user,
                action.as_str()
            );
            tracing::warn!(user = %req.user, action = action.as_str(), "operator request refused: not authorised");
            // Audited only for an alarm of a known rule (no trail flooding
            // with made-up alarms).
            if let (Some(alarm), Some(a)) = (&req.alarm, &mut self.audit) {
                if self.engine.has_rule(&alarm.rule) {
                    let state = self.engine.state_of(alarm);
                    let _ = a.action(&req.user, now, alarm, (state, state), "refused", &msg);
                }
            }
            return refuse(&id, msg);
        }
        if action == CommandAction::List {
            return self.list(&id);
        }
        if matches!(
            action,
            CommandAction::Set
                | CommandAction::Approve
                | CommandAction::Reject
                | CommandAction::Params
        ) {
            return refuse(
                &id,
                "parameter control is not configured on this engine ([control])".into(),
            );
        }
        let Some(alarm) = req.alarm.clone() else {
            return refuse(&id, format!("`{}` needs an alarm", action.as_str()));
        };
        if !self.engine.has_rule(&alarm.rule) {
            return refuse(&id, format!("no rule is named `{}`", alarm.rule));
        }
        let reason = req.reason.trim();
        if action != CommandAction::Acknowledge && reason.is_empty() {
            return refuse(&id, format!("`{}` needs a reason", action.as_str()));
        }
        if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
            return refuse(
                &id,
                format!("the reason must be one line of at most {MAX_REASON} characters"),
            );
        }
        let input = match action {
            CommandAction::Acknowledge => LifeInput::Acknowledge,
            CommandAction::Shelve => match req.minutes {
                Some(m @ 1..=1440) => LifeInput::Shelve {
                    until_ms: now + i64::from(m) * 60_000,
                },
                _ => return refuse(&id, "`shelve` needs minutes between 1 and 1440".into()),
            },
            CommandAction::Unshelve => LifeInput::Unshelve,
            CommandAction::RemoveFromService => LifeInput::OutOfService(true),
            CommandAction::ReturnToService => LifeInput::OutOfService(false),
            CommandAction::Comment => return self.comment(&id, &req.user, &alarm, reason, now),
            CommandAction::List => return self.list(&id),
            CommandAction::Set
            | CommandAction::Approve
            | CommandAction::Reject
            | CommandAction::Params => unreachable!("parameter requests are answered above"),
        };
        let Some((before, after)) = self.engine.preview(&alarm, input, now) else {
            let state = self.engine.state_of(&alarm);
            return refuse(
                &id,
                format!("nothing to do: `{alarm}` is {}", state.as_str()),
            );
        };
        let until = match input {
            LifeInput::Shelve { until_ms } => Some(until_ms),
            _ => None,
        };
        if let Some(a) = &mut self.audit {
            if let Err(e) = a.action_until(
                &req.user,
                now,
                &alarm,
                (before, after),
                action.as_str(),
                reason,
                until,
            ) {
                tracing::error!(alarm = %alarm, error = %e, "the audit trail cannot record the operator's action: refused");
                return refuse(
                    &id,
                    format!("refused: the audit trail cannot record it ({e})"),
                );
            }
        }
        let events = match self.engine.operate(&alarm, input, now) {
            Ok(evs) => evs,
            Err(e) => return refuse(&id, e),
        };
        tracing::info!(user = %req.user, action = action.as_str(), alarm = %alarm, before = before.as_str(), after = after.as_str(), "operator action");
        for ev in &events {
            self.deliver_audited(ev);
        }
        CommandReply {
            id,
            user: String::new(),
            ok: true,
            message: match until {
                Some(t) => format!(
                    "{alarm}: {} → {} until {}",
                    before.as_str(),
                    after.as_str(),
                    rfc3339_ms(t)
                ),
                None => format!("{alarm}: {} → {}", before.as_str(), after.as_str()),
            },
            state: Some(after),
            alarms: Vec::new(),
            requests: Vec::new(),
            params: Vec::new(),
        }
    }

    fn comment(
        &mut self,
        id: &str,
        user: &str,
        alarm: &AlarmId,
        reason: &str,
        now: i64,
    ) -> CommandReply {
        let state = self.engine.state_of(alarm);
        if let Some(a) = &mut self.audit {
            if let Err(e) = a.action(user, now, alarm, (state, state), "comment", reason) {
                return refuse(
                    id,
                    format!("refused: the audit trail cannot record it ({e})"),
                );
            }
        }
        tracing::info!(user, alarm = %alarm, "operator comment");
        CommandReply {
            id: id.to_string(),
            user: String::new(),
            ok: true,
            message: format!("{alarm}: comment recorded"),
            state: Some(state),
            alarms: Vec::new(),
            requests: Vec::new(),
            params: Vec::new(),
        }
    }

    fn list(&self, id: &str) -> CommandReply {
        let alarms: Vec<AlarmLine> = self
            .engine
            .active()
            .map(|a| {
                let alarm = a.id();
                AlarmLine {
                    shelved_until_ms: self.engine.shelved_until(&alarm),
                    alarm,
                    state: a.state,
                    priority: a.priority,
                    message: a.message.to_string(),
                    value: a.value,
                    raised_ms: a.raised_ms,
                }
            })
            .collect();
        CommandReply {
            id: id.to_string(),
            user: String::new(),
            ok: true,
            message: format!("{} alarm(s)", alarms.len()),
            state: None,
            alarms,
            requests: Vec::new(),
            params: Vec::new(),
        }
    }

    /// A restored alarm as the hooks knew it before the restart (its raise,
    /// then where it stands), noted, not sent: its acknowledgement or
    /// clear then reaches the hooks it reached (PagerDuty resolves the same
    /// incident, by the raise's dedup key), and an active unacknowledged
    /// one escalates again from the restart.
    fn tell_hooks_restored(
        &mut self,
        id: &AlarmId,
        state: AlarmState,
        raised_ms: Option<i64>,
        now: i64,
    ) {
        use ctower_model::AlarmEventKind as K;
        let Some(raised_ms) = raised_ms else {
            return;
        };
        let mut events = Vec::new();
        events.extend(
            self.engine
                .event_for(id, K::Raised, AlarmState::UnackActive, raised_ms),
        );
        let after = match state {
            AlarmState::AckActive => Some(K::Acknowledged),
            AlarmState::UnackRtn => Some(K::Cleared),
            AlarmState::Shelved => Some(K::Shelved),
            AlarmState::Suppressed => Some(K::Suppressed),
            AlarmState::OutOfService => Some(K::RemovedFromService),
            _ => None,
        };
        if let Some(kind) = after {
            events.extend(self.engine.event_for(id, kind, state, now));
        }
        for ev in &events {
            for sink in &mut self.sinks {
                sink.held_alarm(ev);
            }
        }
    }

    /// Shelves that ran out come back (between windows, on the wall clock).
    pub(super) fn expire_shelves(&mut self) {
        let now = self.clock.now_ms();
        let events = self.engine.expire_shelves(now);
        if events.is_empty() {
            return;
        }
        // The process alarms before it first, in every record.
        let held = self.held();
        self.flush_process(None, held);
        for ev in events {
            self.deliver(&ev);
        }
    }

    /// At a start without a raw-journal replay: every alarm's last state in
    /// the audit trail is put back (so an active alarm is not raised again,
    /// and an acknowledgement, a shelf or an out-of-service survives).
    /// Returns how many alarms were restored.
    pub fn restore_from_trail(&mut self, text: &str) -> usize {
        self.restore_from_trail_where(text, |_| true)
    }

    /// [`Self::restore_from_trail`] of the alarms whose rule `pick`s (after
    /// a raw-journal replay, which cannot compute the alarms only the
    /// stage raises: `ctower.param_unconfirmed.*`).
    pub fn restore_from_trail_where(&mut self, text: &str, pick: impl Fn(&str) -> bool) -> usize {
        let now = self.clock.now_ms();
        let mut n = 0;
        let raises = ctower_alerts::audit::last_raises(text);
        for ((rule, scope, signal), e) in ctower_alerts::audit::last_records(text) {
            if !pick(&rule) {
                continue;
            }
            let Ok(state) = e.after.parse::<AlarmState>() else {
                continue;
            };
            let text_id = match &signal {
                Some(s) => format!("{rule}@{scope}#{s}"),
                None => format!("{rule}@{scope}"),
            };
            let Ok(id) = AlarmId::parse(&text_id) else {
                continue;
            };
            let until = e.until.as_deref().and_then(parse_rfc3339_ms);
            if state != AlarmState::Normal && self.engine.restore(&id, state, until, now) {
                if let Some(a) = &mut self.audit {
                    a.seed(&id, state);
                }
                let raised = raises
                    .get(&(rule.clone(), scope.clone(), signal.clone()))
                    .and_then(|t| parse_rfc3339_ms(t));
                self.tell_hooks_restored(&id, state, raised, now);
                n += 1;
            }
        }
        n
    }
}
