//! `[commands]`, checked: the alarm command topic (operators' requests
//! from `ctower alarms …`), its broker, and who may do what.

use super::raw::CommandsConfig;
use crate::output::Operators;
use ctower_alerts::Secrets;
use ctower_collector::endpoint::BrokerAddr;
use ctower_model::{CommandAction, ConfigIssue};

/// The checked `[commands]`.
#[derive(Debug, Clone)]
pub struct CommandsRules {
    /// Where the command topic is.
    pub broker: BrokerAddr,
    /// The topics: `<prefix>/cmd/<user>` in, `<prefix>/reply/<user>` out.
    pub topic_prefix: String,
    /// The engine's client id.
    pub client_id: String,
    /// The engine's broker user and password (the password never logged).
    pub credentials: Option<(String, String)>,
    /// Who may act.
    pub operators: Operators,
}

/// Every action but `list` (which every listed user may do).
const ALL: [CommandAction; 6] = [
    CommandAction::Acknowledge,
    CommandAction::Shelve,
    CommandAction::Unshelve,
    CommandAction::Comment,
    CommandAction::RemoveFromService,
    CommandAction::ReturnToService,
];

/// A name that is one topic level: 1 to 64 of A-Z a-z 0-9 - _ . (users,
/// roles, parameters, signals).
pub(super) fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks `[commands]`; every problem is pushed with its key.
pub(super) fn check(
    c: &CommandsConfig,
    secrets: Secrets<'_>,
    issues: &mut Vec<ConfigIssue>,
) -> Option<CommandsRules> {
    let before = issues.len();
    let mut push = |key: String, m: String| issues.push(ConfigIssue::new(key, m));
    let broker = match BrokerAddr::parse(&c.broker_url) {
        Ok(b) => Some(b),
        Err(e) => {
            push("commands.broker_url".into(), e);
            None
        }
    };
    let prefix = c.topic_prefix.clone().unwrap_or_else(|| "ctower".into());
    if prefix.is_empty() || prefix.contains(['+', '#', '\0']) || prefix.ends_with('/') {
        push(
            "commands.topic_prefix".into(),
            "a topic without wildcards or a trailing /".into(),
        );
    }
    let client_id = c
        .client_id
        .clone()
        .unwrap_or_else(|| "ctower-commands".into());
    let password = match (&c.username, &c.password_env) {
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => {
            push(
                "commands.password_env".into(),
                "give both `username` and `password_env`, or neither".into(),
            );
            None
        }
        (Some(_), Some(var)) => match secrets {
            Secrets::Required(env) => match env(var) {
                Some(p) => Some(p),
                None => {
                    push(
                        "commands.password_env".into(),
                        format!("environment variable `{var}` is not set"),
                    );
                    None
                }
            },
            Secrets::IfSet(env) => Some(env(var).unwrap_or_default()),
        },
    };
    let mut operators = Operators::default();
    if c.users.is_empty() {
        push(
            "commands.users".into(),
            "name at least one user who may act on alarms".into(),
        );
    }
    for (i, u) in c.users.iter().enumerate() {
        let key = format!("commands.users[{i}]");
        if !name_ok(&u.name) {
            push(
                format!("{key}.name"),
                "1 to 64 of A-Z a-z 0-9 - _ . (it is a topic level)".into(),
            );
        }
        if operators.users.contains_key(&u.name) {
            push(
                format!("{key}.name"),
                format!("`{}` is listed twice", u.name),
            );
        }
        let actions = u.actions.clone().unwrap_or_else(|| ALL.to_vec());
        operators.users.insert(u.name.clone(), actions);
        let roles = u.roles.clone().unwrap_or_default();
        if roles.iter().any(|r| !name_ok(r)) {
            push(
                format!("{key}.roles"),
                "role names are 1 to 64 of A-Z a-z 0-9 - _ .".into(),
            );
        }
        operators.roles.insert(u.name.clone(), roles);
        if let Some(h) = &u.signature_hash {
            match ctower_control::signature::check_hash(h) {
                Ok(()) => {
                    operators.signatures.insert(u.name.clone(), h.clone());
                }
                Err(e) => push(format!("{key}.signature_hash"), e.to_string()),
            }
        }
    }
    if let Some(u) = &c.console_user {
        if !operators.users.contains_key(u) {
            push(
                "commands.console_user".into(),
                format!("`{u}` is not one of commands.users"),
            );
        }
        operators.console_user = Some(u.clone());
    }
    if issues.len() != before {
        return None;
    }
    Some(CommandsRules {
        broker: broker?,
        topic_prefix: prefix,
        client_id,
        credentials: c.username.clone().zip(password),
        operators,
    })
}
