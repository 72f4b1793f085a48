//! Remote parameter control in the output stage: the desk
//! ([`ctower_control::Desk`]) driven by operators' requests (`set`,
//! `approve`, `reject`, `params`), by the read-back samples the stream
//! tees, and by time (deadlines). Every change is recorded in the audit
//! trail before it takes effect (a user's change is refused when it cannot
//! be); signed actions are checked against the user's argon2 hash first;
//! an approved write goes to the plant through the [`PlantLink`]; a write
//! the plant does not confirm raises the `ctower.param_unconfirmed.<param>`
//! alarm on its asset (it returns to normal when a later write of the
//! parameter is confirmed).
//!
//! A user's step is recorded before it takes effect and refused when it
//! cannot be; a step of the engine's own (sent, confirmed, expired,
//! unconfirmed) that cannot be recorded still happens, and the trail's
//! fault raises `ctower.audit` (as for alarm changes).

use super::audit::ParamRecord;
use super::{OutputStage, PlantLink};
use ctower_control::desk::{request_number, Req};
use ctower_control::{Desk, Signatures};
use ctower_model::{
    AssetKey, CommandAction, CommandReply, CommandRequest, Observation, ParamBoard, ParamState,
    Role, Value,
};
use std::collections::BTreeSet;

/// Longest reason accepted.
const MAX_REASON: usize = 500;
/// Requests a `params` reply carries at most (newest first).
const MAX_LISTED: usize = 50;
/// Parameters the dashboard feed carries at most (the payload stays far
/// under the viewers' 1 MiB limit).
const MAX_BOARD_ENTRIES: usize = 2_000;
/// Least time between two catalogue payloads on the feed, ms (read-backs
/// arrive every second or so per asset; a viewer judges their age on the
/// engine's freshness limit, minutes, so 5 s is plenty). A request's
/// change is published at once.
const BOARD_EVERY_MS: i64 = 5_000;
/// Parameters a `params` reply lists at most (a reply is one MQTT message).
const MAX_REPLY_ENTRIES: usize = 500;
/// One refusal per user and target is recorded in this long at most (the
/// others are logged): a client repeating a refused request cannot flood
/// the permanent trail.
const REFUSAL_RECORD_EVERY_MS: i64 = 10_000;
/// Retained request topics of earlier runs deleted at a start (the feed
/// kept at most the last 200 final requests of a run).
const STALE_TOPICS_DELETED: usize = 1_000;

/// The rule name of a parameter's unconfirmed-write alarm.
pub fn unconfirmed_rule(param: &str) -> String {
    format!("ctower.param_unconfirmed.{param}")
}

/// The signal of that alarm, fed to the alarm engine by the stage only:
/// `!` is outside the names a source can decode, so no plant can raise or
/// clear it.
pub fn unconfirmed_signal(param: &str) -> String {
    format!("!unconfirmed:{param}")
}

/// One alarm rule per catalogue parameter: a write its read-back did not
/// confirm (`ctower.param_unconfirmed.<param>`, high priority, per asset;
/// only the stage feeds it). An operator acknowledges, shelves or comments
/// on it like any alarm.
pub fn unconfirmed_rules(
    catalogue: &ctower_control::Catalogue,
    issues: &mut Vec<ctower_model::ConfigIssue>,
) -> Vec<ctower_alerts::Rule> {
    use ctower_alerts::config::{Condition, RuleConfig, SourceKind};
    let mut names: Vec<&str> = catalogue.params.iter().map(|p| &*p.name).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            RuleConfig {
                name: Some(unconfirmed_rule(name)),
                source: Some(SourceKind::Sample),
                signal: Some(unconfirmed_signal(name)),
                condition: Some(Condition::Above),
                threshold: Some(0.5),
                priority: Some(ctower_model::Priority::High),
                message: Some(format!(
                    "a write of `{name}` was not confirmed by its read-back: the plant may not run with the value asked (see `ctower params`)"
                )),
                ..RuleConfig::default()
            }
            .check(&format!("control.parameters[{name}]"), issues)
        })
        .collect()
}

/// The stage's parameter control.
pub struct StageParams {
    desk: Desk,
    signatures: Signatures,
    link: Option<Box<dyn PlantLink>>,
    readbacks: BTreeSet<std::sync::Arc<str>>,
    board_dirty: bool,
    board_at_ms: i64,
    /// Requests shown on the feed (to delete those the desk forgot).
    shown: BTreeSet<String>,
    /// Requests changed since the feed last showed them.
    changed: BTreeSet<String>,
    /// (user, target) → when its last refusal was recorded.
    refusals: std::collections::BTreeMap<(String, String), i64>,
}

impl StageParams {
    /// Parameter control with `desk`, signing against `signatures`,
    /// writing through `link` (`None`: no live plant connection; every
    /// approved write is then unconfirmed, "not sent").
    pub fn new(desk: Desk, signatures: Signatures, link: Option<Box<dyn PlantLink>>) -> Self {
        let readbacks = desk.catalogue().readback_signals().into_iter().collect();
        StageParams {
            desk,
            signatures,
            link,
            readbacks,
            board_dirty: true,
            board_at_ms: i64::MIN,
            shown: BTreeSet::new(),
            changed: BTreeSet::new(),
            refusals: std::collections::BTreeMap::new(),
        }
    }
}

fn refuse(id: &str, message: String) -> CommandReply {
    CommandReply::new(id, false, message)
}

fn asset_key(asset: &str) -> Option<AssetKey> {
    let p: Vec<&str> = asset.split('/').collect();
    match p.as_slice() {
        [s, a, l, x] => Some(AssetKey::new(s, a, l, x)),
        _ => None,
    }
}

impl OutputStage {
    /// Takes parameter write requests ([`StageParams`]).
    pub fn with_params(mut self, params: StageParams) -> Self {
        self.params = Some(params);
        self
    }

    /// After a start: request numbers continue after the trail's highest,
    /// and requests left open by the previous run end (requested or
    /// approved: expired; sent: unconfirmed, with its alarm), recorded.
    /// Returns how many were ended.
    pub fn restore_params_from_trail(&mut self, text: &str) -> usize {
        let Some(p) = &mut self.params else {
            return 0;
        };
        let mut last: std::collections::BTreeMap<u64, ctower_alerts::audit::Entry> =
            std::collections::BTreeMap::new();
        for line in text.lines() {
            if let Ok(e) = serde_json::from_str::<ctower_alerts::audit::Entry>(line) {
                if let Some(n) = e
                    .is_param()
                    .then(|| e.request.as_deref().and_then(request_number))
                    .flatten()
                {
                    last.insert(n, e);
                }
            }
        }
        if let Some(max) = last.keys().next_back() {
            p.desk.numbers_after(*max);
        }
        // The feed's retained requests of earlier runs: this run does not
        // hold them, so viewers must not show them waiting.
        let stale: Vec<String> = last
            .keys()
            .rev()
            .take(STALE_TOPICS_DELETED)
            .map(|n| ctower_control::desk::request_id(*n))
            .collect();
        for sink in &mut self.sinks {
            for id in &stale {
                sink.param_request(id, None);
            }
        }
        let now = self.clock.now_ms();
        let mut ended = 0;
        let mut alarms = Vec::new();
        for (n, e) in last {
            let Ok(state) = e.after.parse::<ParamState>() else {
                continue;
            };
            if state.is_final() {
                continue;
            }
            let (what, after, why) = if state == ParamState::Sent {
                (
                    "unconfirmed",
                    ParamState::Unconfirmed,
                    "the engine restarted before its read-back confirmed it",
                )
            } else {
                (
                    "expired",
                    ParamState::Expired,
                    "the engine restarted before it was sent",
                )
            };
            let param = e.signal.clone().unwrap_or_default();
            if let Some(a) = &mut self.audit {
                let _ = a.param(&ParamRecord {
                    user: "system",
                    ts_ms: now,
                    what,
                    request: Some(&ctower_control::desk::request_id(n)),
                    asset: &e.scope,
                    param: &param,
                    old: e.old.as_deref(),
                    new: e.new.as_deref(),
                    before: Some(state),
                    after: Some(after),
                    reason: why,
                    signed: false,
                });
            }
            if after == ParamState::Unconfirmed {
                alarms.push((e.scope.clone(), param));
            }
            ended += 1;
        }
        for (asset, param) in alarms {
            self.unconfirmed_alarm(&asset, &param, 1.0, now);
        }
        ended
    }

    /// A parameter request (`set`, `approve`, `reject`, `params`).
    pub(super) fn param_request(
        &mut self,
        id: &str,
        req: &CommandRequest,
        console: bool,
    ) -> CommandReply {
        let now = self.clock.now_ms();
        let user = if console {
            self.operators
                .console_user
                .clone()
                // The OS user at the engine's own terminal: for a
                // parameter action, a listed user with a signature like
                // any other.
                .or_else(super::os_user)
                .unwrap_or_default()
        } else {
            req.user.clone()
        };
        if self.params.is_none() {
            return refuse(
                id,
                "parameter control is not configured on this engine ([control])".into(),
            );
        }
        if !self.operators.users.contains_key(&user) {
            tracing::warn!(user = %user, action = req.action.as_str(), "parameter request refused: not a listed user");
            return refuse(
                id,
                format!(
                    "user `{user}` is not a listed user (commands.users) and may not {} parameters",
                    req.action.as_str()
                ),
            );
        }
        let roles = self.operators.roles.get(&user).cloned().unwrap_or_default();
        let reason = req.reason.trim();
        if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
            return refuse(
                id,
                format!("the reason must be one line of at most {MAX_REASON} characters"),
            );
        }
        let signature = req.signature.as_ref().map(|s| s.0.as_str());
        let Some(p) = &self.params else {
            return refuse(id, "parameter control is not configured".into());
        };
        let planned = match req.action {
            CommandAction::Params => return self.param_list(id),
            CommandAction::Set => {
                let (Some(asset), Some(param), Some(value)) = (&req.asset, &req.param, req.value)
                else {
                    return refuse(id, "`set` needs an asset, a parameter and a value".into());
                };
                if reason.is_empty() {
                    return refuse(id, "`set` needs a reason".into());
                }
                p.desk
                    .plan_set(&user, &roles, asset, param, value, reason, now)
                    .map(|r| (r, None, "requested"))
            }
            CommandAction::Approve | CommandAction::Reject => {
                let Some(rid) = &req.request else {
                    return refuse(id, format!("`{}` needs a request id", req.action.as_str()));
                };
                let before = p.desk.get(rid).map(|r| r.view.state);
                if req.action == CommandAction::Approve {
                    p.desk
                        .plan_approve(&user, &roles, rid, now)
                        .map(|r| (r, before, "approved"))
                } else if reason.is_empty() {
                    return refuse(id, "`reject` needs a reason".into());
                } else {
                    p.desk
                        .plan_reject(&user, &roles, rid, reason, now)
                        .map(|r| (r, before, "rejected"))
                }
            }
            _ => return refuse(id, "not a parameter request".into()),
        };
        let (r, before, what) = match planned {
            Ok(x) => x,
            Err(why) => {
                tracing::warn!(user = %user, action = req.action.as_str(), why = %why, "parameter request refused");
                self.audit_refusal(&user, req, &why, now);
                return refuse(id, why);
            }
        };
        // The signature last: it costs an argon2 hash.
        let Some(p) = &mut self.params else {
            return refuse(id, "parameter control is not configured".into());
        };
        if let Err(e) = p.signatures.verify(&user, signature, now) {
            let why = e.to_string();
            tracing::warn!(user = %user, action = req.action.as_str(), why = %why, "parameter request refused: signature");
            self.audit_refusal(&user, req, &why, now);
            return refuse(id, why);
        }
        // The user's own words when they gave some (an approver's comment
        // too), else what happened.
        let note = if what == "requested" || !reason.is_empty() {
            reason
        } else {
            &r.view.note
        };
        if let Err(e) = self.record(&user, what, before, &r, note, true, now) {
            tracing::error!(error = %e, "the audit trail cannot record a parameter request: refused");
            return refuse(
                id,
                format!("refused: the audit trail cannot record it ({e})"),
            );
        }
        tracing::info!(user = %user, request = %r.view.id, asset = %r.view.asset, param = %r.view.param, value = %r.view.new, state = r.view.state.as_str(), "parameter request");
        let rid = r.view.id.clone();
        self.commit(r.clone());
        if r.view.state == ParamState::Approved {
            self.send(r, now);
        }
        self.publish_params(now, true);
        let view = self
            .params
            .as_ref()
            .and_then(|p| p.desk.get(&rid))
            .map(|r| r.view.clone());
        let mut reply = CommandReply::new(
            id,
            true,
            match &view {
                Some(v) => format!(
                    "{} {}/{} = {}: {}{}",
                    v.id,
                    v.asset,
                    v.param,
                    v.new,
                    v.state.as_str(),
                    if v.note.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", v.note)
                    }
                ),
                None => format!("{rid}: {what}"),
            },
        );
        reply.requests.extend(view);
        reply
    }

    fn param_list(&self, id: &str) -> CommandReply {
        let Some(p) = &self.params else {
            return refuse(id, "parameter control is not configured".into());
        };
        let mut reply = CommandReply::new(
            id,
            true,
            format!(
                "{} parameter(s){}",
                p.desk.entries().len(),
                if p.desk.read_only() {
                    " · READ-ONLY"
                } else {
                    ""
                }
            ),
        );
        reply.params = p.desk.entries();
        if reply.params.len() > MAX_REPLY_ENTRIES {
            reply.message = format!(
                "{} parameter(s), the first {MAX_REPLY_ENTRIES} listed",
                reply.params.len()
            );
            reply.params.truncate(MAX_REPLY_ENTRIES);
        }
        reply.requests = p
            .desk
            .recent()
            .take(MAX_LISTED)
            .map(|r| r.view.clone())
            .collect();
        reply
    }

    /// A refusal on a catalogue parameter, or any refused approval or
    /// rejection of a known request, is recorded (an attempt matters in
    /// a GMP record; refusals of made-up names are not, so the trail cannot
    /// be flooded with them).
    fn audit_refusal(&mut self, user: &str, req: &CommandRequest, why: &str, now: i64) {
        let Some(p) = &mut self.params else {
            return;
        };
        let target = match (&req.request, &req.asset, &req.param) {
            (Some(r), _, _) => r.clone(),
            (None, Some(a), Some(x)) => format!("{a}#{x}"),
            _ => return,
        };
        let key = (user.to_string(), target);
        if p.refusals
            .get(&key)
            .is_some_and(|t| now - t < REFUSAL_RECORD_EVERY_MS)
        {
            return;
        }
        if p.refusals.len() >= 10_000 {
            p.refusals.clear();
        }
        p.refusals.insert(key, now);
        let Some(p) = &self.params else {
            return;
        };
        let (asset, param, request, new, before) = match req.action {
            CommandAction::Set => {
                let (Some(a), Some(x)) = (&req.asset, &req.param) else {
                    return;
                };
                if p.desk.catalogue().find(a, x).is_none() {
                    return;
                }
                (
                    a.clone(),
                    x.clone(),
                    None,
                    req.value.map(|v| v.to_string()),
                    None,
                )
            }
            _ => {
                let Some(r) = req.request.as_deref().and_then(|i| p.desk.get(i)) else {
                    return;
                };
                (
                    r.view.asset.clone(),
                    r.view.param.clone(),
                    Some(r.view.id.clone()),
                    Some(r.view.new.to_string()),
                    Some(r.view.state),
                )
            }
        };
        if let Some(a) = &mut self.audit {
            let recorded = a.param(&ParamRecord {
                user,
                ts_ms: now,
                what: "refused",
                request: request.as_deref(),
                asset: &asset,
                param: &param,
                old: None,
                new: new.as_deref(),
                before,
                after: before,
                reason: &format!("{}: {why}", req.action.as_str()),
                signed: false,
            });
            if let Err(e) = recorded {
                tracing::error!(user, asset = %asset, param = %param, error = %e, "the audit trail cannot record a refused parameter request");
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        user: &str,
        what: &str,
        before: Option<ParamState>,
        r: &Req,
        reason: &str,
        signed: bool,
        now: i64,
    ) -> std::io::Result<()> {
        let Some(a) = &mut self.audit else {
            return Ok(());
        };
        let old = r.view.old.map(|v| v.to_string());
        let new = r.view.new.to_string();
        a.param(&ParamRecord {
            user,
            ts_ms: now,
            what,
            request: Some(&r.view.id),
            asset: &r.view.asset,
            param: &r.view.param,
            old: old.as_deref(),
            new: Some(&new),
            before,
            after: Some(r.view.state),
            reason,
            signed,
        })
    }

    /// Stores a recorded change and shows it on the feed; an unconfirmed
    /// request raises its alarm, a confirmed one clears it.
    fn commit(&mut self, r: Req) {
        let now = self.clock.now_ms();
        let state = r.view.state;
        let (asset, param) = (r.view.asset.clone(), r.view.param.clone());
        let Some(p) = &mut self.params else {
            return;
        };
        p.changed.insert(r.view.id.clone());
        p.desk.commit(r);
        p.board_dirty = true;
        match state {
            ParamState::Unconfirmed => self.unconfirmed_alarm(&asset, &param, 1.0, now),
            ParamState::Confirmed => self.unconfirmed_alarm(&asset, &param, 0.0, now),
            _ => {}
        }
    }

    /// Feeds the unconfirmed-write alarm of `param` on `asset` (1: raise,
    /// 0: clear) through the alarm engine, like any process alarm.
    fn unconfirmed_alarm(&mut self, asset: &str, param: &str, x: f64, now: i64) {
        let Some(key) = asset_key(asset) else {
            return;
        };
        if !self.engine.has_rule(&unconfirmed_rule(param)) {
            return;
        }
        let obs = Observation {
            asset: key,
            signal: unconfirmed_signal(param).into(),
            role: Role::Process,
            ts_ms: now,
            value: Value::Number(x),
            seq: 0,
            watermark_ms: None,
        };
        let events = self.engine.sample(&obs);
        if events.is_empty() {
            return;
        }
        let held = self.held();
        self.flush_process(None, held);
        for ev in events {
            tracing::warn!(
                asset,
                param,
                state = ev.state.as_str(),
                "parameter write alarm"
            );
            self.deliver(&ev);
        }
    }

    /// Sends an approved request: recorded first (`sent`), then handed to
    /// the plant link; a link that cannot take it makes it unconfirmed.
    fn send(&mut self, r: Req, now: i64) {
        let Some(p) = &self.params else {
            return;
        };
        let Some(write) = p.desk.write_of(&r) else {
            return;
        };
        let sent = p
            .desk
            .plan_sent(&r, &format!("source {}", write.source), now);
        if let Err(e) = self.record(
            "system",
            "sent",
            Some(ParamState::Approved),
            &sent,
            &format!("queued on source {} (QoS 1)", write.source),
            false,
            now,
        ) {
            // Not recorded, not sent.
            let failed = p_failed(
                self,
                &r,
                &format!("the audit trail cannot record it ({e})"),
                now,
            );
            self.commit(failed);
            return;
        }
        let result = match self.params.as_mut().and_then(|p| p.link.as_mut()) {
            Some(link) => link.write(&write),
            None => Err("this engine has no live connection to the plants".into()),
        };
        match result {
            Ok(topic) => {
                tracing::info!(request = %r.view.id, topic = %topic, value = %write.value, "parameter write sent");
                let Some(p) = &self.params else {
                    return;
                };
                let sent = p.desk.plan_sent(&r, &topic, now);
                self.commit(sent);
            }
            Err(why) => {
                tracing::error!(request = %r.view.id, why = %why, "parameter write could not be sent");
                let failed = p_failed(self, &r, &why, now);
                let _ = self.record(
                    "system",
                    "unconfirmed",
                    Some(ParamState::Sent),
                    &failed,
                    &failed.view.note,
                    false,
                    now,
                );
                self.commit(failed);
            }
        }
    }

    /// Read-back samples (from the stream's teed samples): noted, and the
    /// writes they confirm are recorded and committed.
    pub(super) fn param_samples(&mut self, samples: &[Observation]) {
        // Samples computed again from the raw journal after a restart are
        // not fresh read-backs: the plant must report again.
        if self.held() {
            return;
        }
        let Some(p) = &mut self.params else {
            return;
        };
        let now = self.clock.now_ms();
        let untracked = p.desk.untracked();
        let mut confirmed = Vec::new();
        let mut read = false;
        for obs in samples {
            if !p.readbacks.contains(&obs.signal) {
                continue;
            }
            read = true;
            let Some(x) = obs.value.as_f64() else {
                continue;
            };
            // Fresh by its arrival on the engine's clock, not by the
            // plant's (a plant clock off by minutes must not make every
            // value look stale, nor fresh).
            confirmed.extend(p.desk.readback(&obs.asset.to_string(), &obs.signal, x, now));
            p.board_dirty = true;
        }
        if !read {
            return;
        }
        if p.desk.untracked() > untracked {
            tracing::warn!(
                untracked = p.desk.untracked(),
                bound = ctower_control::desk::MAX_VALUES,
                "parameter read-backs beyond the tracked bound: those parameters cannot be written (no read-back)"
            );
        }
        // The latest read-back shows on the writes waiting for it.
        let waiting: Vec<String> = p
            .desk
            .recent()
            .filter(|r| r.view.state == ParamState::Sent)
            .map(|r| r.view.id.clone())
            .collect();
        p.changed.extend(waiting);
        for r in confirmed {
            let note = r.view.note.clone();
            let _ = self.record(
                "system",
                "confirmed",
                Some(ParamState::Sent),
                &r,
                &note,
                false,
                now,
            );
            tracing::info!(request = %r.view.id, asset = %r.view.asset, param = %r.view.param, "parameter write confirmed by its read-back");
            self.commit(r);
        }
    }

    /// Deadlines (between windows, on the wall clock): unapproved requests
    /// expire, unread writes are unconfirmed; the feed's catalogue.
    pub(super) fn param_tick(&mut self) {
        let now = self.clock.now_ms();
        let Some(p) = &self.params else {
            return;
        };
        for r in p.desk.due(now) {
            let Some(before) = self
                .params
                .as_ref()
                .and_then(|p| p.desk.get(&r.view.id))
                .map(|x| x.view.state)
            else {
                continue;
            };
            let what = r.view.state.as_str();
            let note = r.view.note.clone();
            let _ = self.record("system", what, Some(before), &r, &note, false, now);
            tracing::warn!(request = %r.view.id, state = what, why = %note, "parameter request");
            self.commit(r);
        }
        self.publish_params(now, false);
    }

    /// The catalogue and the changed requests to the sinks (the dashboard
    /// feed): at most every [`BOARD_EVERY_MS`] unless `now`.
    fn publish_params(&mut self, now_ms: i64, force: bool) {
        let Some(p) = &mut self.params else {
            return;
        };
        if !p.board_dirty || (!force && now_ms.saturating_sub(p.board_at_ms) < BOARD_EVERY_MS) {
            return;
        }
        p.board_dirty = false;
        p.board_at_ms = now_ms;
        let mut entries = p.desk.entries();
        entries.truncate(MAX_BOARD_ENTRIES);
        let board = ParamBoard {
            read_only: p.desk.read_only(),
            entries,
        };
        let held: BTreeSet<String> = p.desk.recent().map(|r| r.view.id.clone()).collect();
        let gone: Vec<String> = p.shown.difference(&held).cloned().collect();
        let views: Vec<_> = std::mem::take(&mut p.changed)
            .into_iter()
            .filter_map(|id| p.desk.get(&id).map(|r| r.view.clone()))
            .collect();
        p.shown = held;
        for sink in &mut self.sinks {
            sink.params(&board);
            for v in &views {
                sink.param_request(&v.id, Some(v));
            }
            for id in &gone {
                sink.param_request(id, None);
            }
        }
    }
}

fn p_failed(stage: &OutputStage, r: &Req, why: &str, now: i64) -> Req {
    match &stage.params {
        Some(p) => p.desk.plan_send_failed(r, why, now),
        None => r.clone(),
    }
}

#[cfg(test)]
mod tests;
