//! What an operator asks of the tower: from the in-process dashboard, or
//! from a named user through the command topic (`ctower alarms …`).
//! Commands flow against the data (dashboard or CLI → output stage), so
//! they are plain values here, at the ground: the sender does not know the
//! alarm engine, and the engine does not know the sender.
//!
//! The wire form of a [`CommandRequest`] and a [`CommandReply`] is JSON
//! (the command topic's payloads; README, "Operator commands").

use crate::alarm::{AlarmId, AlarmState, Priority};
use crate::param::{ParamEntryView, ParamRequestView, ParamValue};
use serde::{Deserialize, Serialize};

/// An operator's action on the alarm system.
#[derive(Debug, Clone, PartialEq)]
pub enum OperatorCommand {
    /// Acknowledge this alarm (ANSI/ISA-18.2: unacknowledged and active →
    /// acknowledged, returned to normal while unacknowledged → normal),
    /// from the in-process dashboard (its user is the process's user). An
    /// alarm already acknowledged, or not known, is left as it is.
    Acknowledge(AlarmId),
    /// A named user's request (the command topic).
    Request(CommandRequest),
    /// A request from the in-process dashboard, at the engine's own
    /// terminal: its user (the process's) may take every action, as the
    /// person who started the engine there; the reply goes back to that
    /// dashboard.
    Console(CommandRequest),
}

/// What a request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandAction {
    /// The current alarms (any state but normal).
    List,
    /// Acknowledge the alarm.
    Acknowledge,
    /// Shelve it for `minutes` (1..=1440); it comes back by itself.
    Shelve,
    /// End its shelf now.
    Unshelve,
    /// A comment on it (no change of state; the audit trail keeps it).
    Comment,
    /// Take it out of service (maintenance, a broken instrument).
    RemoveFromService,
    /// Put it back in service.
    ReturnToService,
    /// Request a parameter write (`asset`, `param`, `value`, `reason`,
    /// `signature`).
    Set,
    /// Approve another user's write request (`request`, `signature`).
    Approve,
    /// Reject another user's write request (`request`, `reason`,
    /// `signature`).
    Reject,
    /// The writable parameters and the recent write requests.
    Params,
}

impl CommandAction {
    /// The serde name (also the audit trail's action).
    pub fn as_str(self) -> &'static str {
        match self {
            CommandAction::List => "list",
            CommandAction::Acknowledge => "acknowledge",
            CommandAction::Shelve => "shelve",
            CommandAction::Unshelve => "unshelve",
            CommandAction::Comment => "comment",
            CommandAction::RemoveFromService => "remove_from_service",
            CommandAction::ReturnToService => "return_to_service",
            CommandAction::Set => "set",
            CommandAction::Approve => "approve",
            CommandAction::Reject => "reject",
            CommandAction::Params => "params",
        }
    }
}

/// A named user's request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// Chosen by the sender (at most 64 characters); the reply carries it back.
    pub id: String,
    /// Who asks: set from the command topic's last level (the broker
    /// vouches for it); a different `user` in the payload is refused.
    #[serde(default)]
    pub user: String,
    /// What is asked.
    pub action: CommandAction,
    /// For `shelve`: how long, 1..=1440 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    /// The alarm (every action but `list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<AlarmId>,
    /// Why (required for every action but `list`, `params`, `approve`
    /// and `acknowledge`).
    #[serde(default)]
    pub reason: String,
    /// For `set`: the asset, `site/area/line/asset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// For `set`: the catalogue's parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// For `set`: the value asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<ParamValue>,
    /// For `approve` and `reject`: the write request's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// For `set`, `approve` and `reject`: the user's signature secret (an
    /// electronic signature, checked against its salted hash; never
    /// logged nor stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

impl CommandRequest {
    /// A request of `action` by `user`, every optional field empty.
    pub fn new(id: impl Into<String>, user: impl Into<String>, action: CommandAction) -> Self {
        CommandRequest {
            id: id.into(),
            user: user.into(),
            action,
            minutes: None,
            alarm: None,
            reason: String::new(),
            asset: None,
            param: None,
            value: None,
            request: None,
            signature: None,
        }
    }
}

/// A user's signature secret: on the wire as a plain string (inside TLS),
/// never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Signature(pub String);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signature(***)")
    }
}

/// One current alarm in a reply to `list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmLine {
    /// Which alarm.
    pub alarm: AlarmId,
    /// Its state.
    pub state: AlarmState,
    /// Its rule's priority.
    pub priority: Priority,
    /// The rule's message.
    pub message: String,
    /// Its latest value.
    pub value: Option<f64>,
    /// When it last raised (event time, ms).
    pub raised_ms: Option<i64>,
    /// Until when it is shelved (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shelved_until_ms: Option<i64>,
}

/// The engine's answer to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandReply {
    /// The request's id.
    pub id: String,
    /// Who asked (the reply goes to their reply topic).
    #[serde(default)]
    pub user: String,
    /// Carried out.
    pub ok: bool,
    /// What happened, or why not.
    pub message: String,
    /// The alarm's state after it, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AlarmState>,
    /// For `list`: the current alarms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<AlarmLine>,
    /// For `set`, `approve`, `reject`: the request after it; for
    /// `params`: the recent requests, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<ParamRequestView>,
    /// For `params`: the writable parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<ParamEntryView>,
}

impl CommandReply {
    /// A reply to request `id`, every list empty.
    pub fn new(id: impl Into<String>, ok: bool, message: impl Into<String>) -> Self {
        CommandReply {
            id: id.into(),
            user: String::new(),
            ok,
            message: message.into(),
            state: None,
            alarms: Vec::new(),
            requests: Vec::new(),
            params: Vec::new(),
        }
    }
}
