//! Alert hooks: one `[[alerts.hooks]]` entry as written ([`HookConfig`])
//! and as checked ([`Hook`]: a [`LogHook`], or a [`WebhookHook`] that
//! delivers through a durable outbox: a signed webhook, Slack, Microsoft
//! Teams, PagerDuty or a command), each with its [`Route`].

use super::secret::{Secrets, WebhookSecret};
use super::{missing, non_empty};
use ctower_model::{key_field, ConfigIssue, Priority};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Default request (or command) timeout.
pub const DEFAULT_TIMEOUT_SECS: u64 = 5;
/// Default first retry delay; each further retry doubles it.
pub const DEFAULT_RETRY_BASE_MS: u64 = 500;
/// Default cap of the retry delay.
pub const DEFAULT_RETRY_MAX_SECS: u64 = 300;
/// PagerDuty's Events API v2 endpoint, the default `url` of a `pagerduty` hook.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Kind of an alert hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    /// Structured `tracing` event; level by priority.
    Log,
    /// HTTP POST of a JSON envelope, signed the Standard Webhooks way.
    Webhook,
    /// A Slack incoming webhook (`text` and Block Kit `blocks`).
    Slack,
    /// A Microsoft Teams incoming webhook (an Adaptive Card message).
    Teams,
    /// PagerDuty Events API v2: trigger, acknowledge, resolve by dedup key.
    Pagerduty,
    /// A program run with the webhook envelope on its standard input.
    Command,
}

impl HookKind {
    /// The serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Log => "log",
            HookKind::Webhook => "webhook",
            HookKind::Slack => "slack",
            HookKind::Teams => "teams",
            HookKind::Pagerduty => "pagerduty",
            HookKind::Command => "command",
        }
    }
}

/// One `[[alerts.hooks]]` entry as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// `log`, `webhook`, `slack`, `teams`, `pagerduty` or `command` (required).
    pub kind: Option<HookKind>,
    /// Name for logs and `escalate_to`; defaults to `<kind>-<index>`. Unique.
    pub name: Option<String>,
    /// Only alarms of this priority or higher go to this hook; default `low` (all).
    pub min_priority: Option<Priority>,
    /// Only alarms of these sites (default: every site, and ctower's own alarms).
    pub sites: Option<Vec<String>>,
    /// Only alarms of these rules, by name (default: every rule).
    pub rules: Option<Vec<String>>,
    /// `http://…` or `https://…` (webhook, slack, teams; pagerduty defaults
    /// to PagerDuty's Events API v2).
    pub url: Option<String>,
    /// Command: the program and its arguments (no shell).
    pub command: Option<Vec<String>>,
    /// Whole-request (or command) timeout, 1..=300 s; default 5.
    pub timeout_secs: Option<u64>,
    /// First retry delay, 1..=60000 ms, doubling per retry; default 500.
    pub retry_base_ms: Option<u64>,
    /// Cap of the retry delay, 1..=3600 s; default 300. A notification is
    /// retried until it is delivered (or refused for good).
    pub retry_max_secs: Option<u64>,
    /// At most this many deliveries per minute (the rest wait in the outbox).
    pub max_per_minute: Option<u32>,
    /// Webhook: environment variable holding the Standard Webhooks secret.
    pub secret_env: Option<String>,
    /// Webhook: file holding the Standard Webhooks secret.
    pub secret_file: Option<String>,
    /// PagerDuty: environment variable holding the integration's routing key.
    pub routing_key_env: Option<String>,
    /// PagerDuty: file holding the routing key.
    pub routing_key_file: Option<String>,
    /// While an alarm this hook was told of stays active and
    /// unacknowledged, tell it again every this many seconds (10..=86400).
    pub repeat_secs: Option<u64>,
    /// While it stays active and unacknowledged this long (10..=86400 s),
    /// tell the hook `escalate_to` too.
    pub escalate_after_secs: Option<u64>,
    /// The hook escalated to (by name).
    pub escalate_to: Option<String>,
    /// Receives escalations only, never alarms directly; default false.
    pub escalation_only: Option<bool>,
}

/// Which alarms reach a hook, and what happens while they stay unacknowledged.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Route {
    /// Name for logs and escalation.
    pub name: Arc<str>,
    /// Only alarms of this priority or higher.
    pub min_priority: Priority,
    /// Only these sites (empty: all, and alarms without a site).
    pub sites: Vec<Arc<str>>,
    /// Only these rules (empty: all).
    pub rules: Vec<Arc<str>>,
    /// Receives escalations only.
    pub escalation_only: bool,
    /// Repeat interval while active and unacknowledged.
    pub repeat: Option<Duration>,
    /// Escalation delay and target.
    pub escalate: Option<(Duration, Arc<str>)>,
}

impl Route {
    /// Whether an alarm of this site, rule and priority goes to the hook directly.
    pub fn wants(&self, site: Option<&str>, rule: &str, priority: Priority) -> bool {
        priority >= self.min_priority
            && (self.sites.is_empty() || site.is_some_and(|s| self.sites.iter().any(|x| &**x == s)))
            && (self.rules.is_empty() || self.rules.iter().any(|r| &**r == rule))
    }
}

/// A checked log hook.
#[derive(Debug, Clone, PartialEq)]
pub struct LogHook {
    /// Name for logs.
    pub name: Arc<str>,
    /// Only events of this priority or higher are logged.
    pub min_priority: Priority,
    /// Its route.
    pub route: Route,
}

/// Where a delivering hook sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A Standard Webhooks endpoint.
    Webhook {
        /// Its URL.
        url: String,
        /// The signing key; `None` without `secret_env`/`secret_file`, or
        /// when checked with [`Secrets::IfSet`] and not set.
        secret: Option<WebhookSecret>,
        /// Where the secret comes from (`env FOO`, `file /x`), for messages.
        secret_from: Option<Arc<str>>,
    },
    /// A Slack incoming webhook.
    Slack {
        /// Its URL.
        url: String,
    },
    /// A Teams incoming webhook.
    Teams {
        /// Its URL.
        url: String,
    },
    /// PagerDuty Events API v2.
    PagerDuty {
        /// The events endpoint.
        url: String,
        /// The integration's routing key (never logged); `None` as for `secret`.
        routing_key: Option<String>,
    },
    /// A program; the envelope on its standard input.
    Command {
        /// Program and arguments.
        argv: Vec<String>,
    },
}

/// A checked hook that delivers through the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookHook {
    /// Name for logs.
    pub name: Arc<str>,
    /// Only events of this priority or higher are sent.
    pub min_priority: Priority,
    /// Its route.
    pub route: Route,
    /// Where it sends.
    pub target: Target,
    /// Whole-request (or command) timeout.
    pub timeout: Duration,
    /// First retry delay; doubles per retry.
    pub retry_base: Duration,
    /// Retry delay cap.
    pub retry_max: Duration,
    /// Deliveries per minute at most.
    pub max_per_minute: Option<u32>,
}

impl WebhookHook {
    /// Its URL (`None` for a command).
    pub fn url(&self) -> Option<&str> {
        match &self.target {
            Target::Webhook { url, .. }
            | Target::Slack { url }
            | Target::Teams { url }
            | Target::PagerDuty { url, .. } => Some(url),
            Target::Command { .. } => None,
        }
    }

    /// The host and port its URL points at (80 or 443 when the URL names no
    /// port): where `ctower check --connect` tries a connection. `None` for
    /// a command, or a URL the check would have refused.
    pub fn address(&self) -> Option<(String, u16)> {
        let uri: ureq::http::Uri = self.url()?.parse().ok()?;
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
        let port = match (uri.port_u16(), uri.scheme_str()) {
            (Some(p), _) => p,
            (None, Some("https")) => 443,
            (None, _) => 80,
        };
        Some((host.to_string(), port))
    }
}

/// A checked hook.
#[derive(Debug, Clone, PartialEq)]
pub enum Hook {
    /// A log hook.
    Log(LogHook),
    /// A delivering hook (webhook, Slack, Teams, PagerDuty, command).
    Webhook(WebhookHook),
}

impl Hook {
    /// The hook's name (given, or `<kind>-<index>`).
    pub fn name(&self) -> &Arc<str> {
        match self {
            Hook::Log(h) => &h.name,
            Hook::Webhook(h) => &h.name,
        }
    }

    /// The lowest priority of the events the hook receives.
    pub fn min_priority(&self) -> Priority {
        match self {
            Hook::Log(h) => h.min_priority,
            Hook::Webhook(h) => h.min_priority,
        }
    }

    /// Its route.
    pub fn route(&self) -> &Route {
        match self {
            Hook::Log(h) => &h.route,
            Hook::Webhook(h) => &h.route,
        }
    }
}

fn list(v: &Option<Vec<String>>, key: &str, issues: &mut Vec<ConfigIssue>) -> Vec<Arc<str>> {
    let mut out = Vec::new();
    for (i, s) in v.iter().flatten().enumerate() {
        if s.trim().is_empty() {
            issues.push(ConfigIssue::new(format!("{key}[{i}]"), "must not be empty"));
        } else {
            out.push(Arc::from(s.as_str()));
        }
    }
    out
}

fn range(
    v: Option<u64>,
    default: u64,
    lo: u64,
    hi: u64,
    key: String,
    issues: &mut Vec<ConfigIssue>,
) -> u64 {
    let x = v.unwrap_or(default);
    if !(lo..=hi).contains(&x) {
        issues.push(ConfigIssue::new(
            key,
            format!("must be between {lo} and {hi}, got {x}"),
        ));
    }
    x
}

impl HookConfig {
    /// Checks one hook; `key` is its path (e.g. `alerts.hooks[1]`), `index`
    /// its position (for the default name), `secrets` how to read its
    /// secrets. Every problem is pushed with its full key; `None` exactly
    /// when one was. (Unique names and `escalate_to` are checked by
    /// [`AlertsConfig::check`](super::AlertsConfig::check).)
    pub fn check(
        &self,
        key: &str,
        index: usize,
        secrets: Secrets<'_>,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<Hook> {
        let before = issues.len();
        let k = |field: &str| key_field(key, field);
        let name = non_empty(&self.name, &k("name"), issues);
        let Some(kind) = self.kind else {
            issues.push(missing(
                k("kind"),
                "\"log\", \"webhook\", \"slack\", \"teams\", \"pagerduty\" or \"command\"",
            ));
            return None;
        };
        let name = name.unwrap_or_else(|| format!("{}-{index}", kind.as_str()).into());
        let min_priority = self.min_priority.unwrap_or(Priority::Low);
        let secs = |v: Option<u64>, field: &str, issues: &mut Vec<ConfigIssue>| {
            v.map(|s| Duration::from_secs(range(Some(s), s, 10, 86_400, k(field), issues)))
        };
        let repeat = secs(self.repeat_secs, "repeat_secs", issues);
        let escalate_after = secs(self.escalate_after_secs, "escalate_after_secs", issues);
        let escalate_to = non_empty(&self.escalate_to, &k("escalate_to"), issues);
        let escalate = match (escalate_after, escalate_to) {
            (Some(d), Some(to)) => Some((d, to)),
            (None, None) => None,
            (Some(_), None) => {
                issues.push(missing(
                    k("escalate_to"),
                    "the hook to escalate to (escalate_after_secs is set)",
                ));
                None
            }
            (None, Some(_)) => {
                issues.push(missing(
                    k("escalate_after_secs"),
                    "how long before escalating (escalate_to is set)",
                ));
                None
            }
        };
        let route = Route {
            name: name.clone(),
            min_priority,
            sites: list(&self.sites, &k("sites"), issues),
            rules: list(&self.rules, &k("rules"), issues),
            escalation_only: self.escalation_only.unwrap_or(false),
            repeat,
            escalate,
        };
        let hook = match kind {
            HookKind::Log => {
                self.check_log(key, issues);
                Some(Hook::Log(LogHook {
                    name,
                    min_priority,
                    route,
                }))
            }
            _ => self
                .check_delivery(key, kind, route, secrets, issues)
                .map(Hook::Webhook),
        };
        if issues.len() != before {
            return None;
        }
        hook
    }

    /// A log hook has none of the delivery fields.
    fn check_log(&self, key: &str, issues: &mut Vec<ConfigIssue>) {
        let extra: [(&str, bool); 13] = [
            ("url", self.url.is_some()),
            ("command", self.command.is_some()),
            ("timeout_secs", self.timeout_secs.is_some()),
            ("retry_base_ms", self.retry_base_ms.is_some()),
            ("retry_max_secs", self.retry_max_secs.is_some()),
            ("max_per_minute", self.max_per_minute.is_some()),
            ("secret_env", self.secret_env.is_some()),
            ("secret_file", self.secret_file.is_some()),
            ("routing_key_env", self.routing_key_env.is_some()),
            ("routing_key_file", self.routing_key_file.is_some()),
            ("repeat_secs", self.repeat_secs.is_some()),
            ("escalate_after_secs", self.escalate_after_secs.is_some()),
            ("escalate_to", self.escalate_to.is_some()),
        ];
        for (field, present) in extra {
            if present {
                issues.push(ConfigIssue::new(
                    key_field(key, field),
                    "not allowed for a \"log\" hook (it logs each event once)",
                ));
            }
        }
    }

    /// Fields that belong to other kinds.
    fn refuse(&self, key: &str, kind: HookKind, issues: &mut Vec<ConfigIssue>) {
        let fields: [(&str, bool, &[HookKind]); 6] = [
            (
                "url",
                self.url.is_some(),
                &[
                    HookKind::Webhook,
                    HookKind::Slack,
                    HookKind::Teams,
                    HookKind::Pagerduty,
                ],
            ),
            ("command", self.command.is_some(), &[HookKind::Command]),
            (
                "secret_env",
                self.secret_env.is_some(),
                &[HookKind::Webhook],
            ),
            (
                "secret_file",
                self.secret_file.is_some(),
                &[HookKind::Webhook],
            ),
            (
                "routing_key_env",
                self.routing_key_env.is_some(),
                &[HookKind::Pagerduty],
            ),
            (
                "routing_key_file",
                self.routing_key_file.is_some(),
                &[HookKind::Pagerduty],
            ),
        ];
        for (field, present, kinds) in fields {
            if present && !kinds.contains(&kind) {
                let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                issues.push(ConfigIssue::new(
                    key_field(key, field),
                    format!(
                        "not allowed for a \"{}\" hook (only for {})",
                        kind.as_str(),
                        names.join(", ")
                    ),
                ));
            }
        }
    }

    /// A delivering hook: its target, its limits (defaults filled in) and its secrets.
    fn check_delivery(
        &self,
        key: &str,
        kind: HookKind,
        route: Route,
        secrets: Secrets<'_>,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<WebhookHook> {
        let k = |field: &str| key_field(key, field);
        self.refuse(key, kind, issues);
        let url = |default: Option<&str>, issues: &mut Vec<ConfigIssue>| match self
            .url
            .as_deref()
            .or(default)
        {
            None => {
                issues.push(missing(k("url"), "an http:// or https:// URL"));
                None
            }
            Some(u) => check_url(u)
                .map_err(|msg| issues.push(ConfigIssue::new(k("url"), msg)))
                .ok()
                .map(|()| u.to_string()),
        };
        let target = match kind {
            HookKind::Webhook => {
                let url = url(None, issues);
                let (secret_from, secret) = self.check_secret(key, secrets, issues);
                url.map(|url| Target::Webhook {
                    url,
                    secret,
                    secret_from,
                })
            }
            HookKind::Slack => url(None, issues).map(|url| Target::Slack { url }),
            HookKind::Teams => url(None, issues).map(|url| Target::Teams { url }),
            HookKind::Pagerduty => {
                let url = url(Some(PAGERDUTY_EVENTS_URL), issues);
                let routing_key = match (&self.routing_key_env, &self.routing_key_file) {
                    (Some(var), None) => {
                        secrets.read_plain(var, false, &k("routing_key_env"), issues)
                    }
                    (None, Some(path)) => {
                        secrets.read_plain(path, true, &k("routing_key_file"), issues)
                    }
                    (None, None) => {
                        issues.push(missing(k("routing_key_env"), "the environment variable (or routing_key_file) holding the routing key"));
                        None
                    }
                    (Some(_), Some(_)) => {
                        issues.push(ConfigIssue::new(
                            k("routing_key_file"),
                            "give routing_key_env or routing_key_file, not both",
                        ));
                        None
                    }
                };
                url.map(|url| Target::PagerDuty { url, routing_key })
            }
            HookKind::Command => match self.command.as_deref() {
                Some([program, ..]) if !program.trim().is_empty() => Some(Target::Command {
                    argv: self.command.clone().unwrap_or_default(),
                }),
                Some(_) => {
                    issues.push(ConfigIssue::new(
                        k("command"),
                        "must name a program: [\"/path/to/program\", \"arg\", …]",
                    ));
                    None
                }
                None => {
                    issues.push(missing(k("command"), "the program and its arguments, e.g. [\"/usr/local/bin/page\", \"--team\", \"qa\"]"));
                    None
                }
            },
            HookKind::Log => None,
        };
        let timeout_secs = range(
            self.timeout_secs,
            DEFAULT_TIMEOUT_SECS,
            1,
            300,
            k("timeout_secs"),
            issues,
        );
        let retry_base_ms = range(
            self.retry_base_ms,
            DEFAULT_RETRY_BASE_MS,
            1,
            60_000,
            k("retry_base_ms"),
            issues,
        );
        let retry_max_secs = range(
            self.retry_max_secs,
            DEFAULT_RETRY_MAX_SECS,
            1,
            3_600,
            k("retry_max_secs"),
            issues,
        );
        if let Some(0) = self.max_per_minute {
            issues.push(ConfigIssue::new(
                k("max_per_minute"),
                "must be at least 1 (leave it out for no limit)",
            ));
        }
        Some(WebhookHook {
            name: route.name.clone(),
            min_priority: route.min_priority,
            route,
            target: target?,
            timeout: Duration::from_secs(timeout_secs),
            retry_base: Duration::from_millis(retry_base_ms),
            retry_max: Duration::from_secs(retry_max_secs),
            max_per_minute: self.max_per_minute,
        })
    }

    /// `secret_env` or `secret_file`, read as `secrets` says.
    fn check_secret(
        &self,
        key: &str,
        secrets: Secrets<'_>,
        issues: &mut Vec<ConfigIssue>,
    ) -> (Option<Arc<str>>, Option<WebhookSecret>) {
        match (self.secret_env.as_deref(), self.secret_file.as_deref()) {
            (None, None) => (None, None),
            (Some(_), Some(_)) => {
                issues.push(ConfigIssue::new(
                    key_field(key, "secret_file"),
                    "give secret_env or secret_file, not both",
                ));
                (None, None)
            }
            (Some(var), None) if var.trim().is_empty() => {
                issues.push(ConfigIssue::new(
                    key_field(key, "secret_env"),
                    "must not be empty",
                ));
                (None, None)
            }
            (Some(var), None) => (
                Some(format!("environment variable `{var}`").into()),
                secrets.read(var, &key_field(key, "secret_env"), issues),
            ),
            (None, Some(path)) => (
                Some(format!("file `{path}`").into()),
                secrets.read_file(path, &key_field(key, "secret_file"), issues),
            ),
        }
    }
}

/// Checks a webhook URL: absolute http(s) with a host; https only when the
/// crate is built with the `tls` feature.
fn check_url(u: &str) -> Result<(), String> {
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace".into());
    }
    let uri: ureq::http::Uri = u.parse().map_err(|e| format!("not a valid URL ({e})"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            if !cfg!(feature = "tls") {
                return Err(
                    "https needs ctower-alerts built with its `tls` feature (this build has plain http only)"
                        .into(),
                );
            }
        }
        Some(other) => return Err(format!("scheme must be http or https, got `{other}`")),
        None => return Err("must be an absolute http:// or https:// URL".into()),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => {}
        _ => return Err("has no host".into()),
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("must not carry credentials (user:password@); use secret_env to sign".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_address_is_its_host_and_port() {
        let hook = |url: &str| WebhookHook {
            name: "h".into(),
            min_priority: Priority::Low,
            route: Route::default(),
            target: Target::Slack { url: url.into() },
            timeout: Duration::from_secs(1),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(1),
            max_per_minute: None,
        };
        assert_eq!(
            hook("http://127.0.0.1:8080/x").address(),
            Some(("127.0.0.1".into(), 8080))
        );
        assert_eq!(
            hook("http://hooks.example.org/a?b=c").address(),
            Some(("hooks.example.org".into(), 80))
        );
        assert_eq!(
            hook("https://example.org").address(),
            Some(("example.org".into(), 443))
        );
        assert_eq!(hook("http://[::1]:9/").address(), Some(("::1".into(), 9)));
    }

    #[test]
    fn url_checks() {
        assert!(check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(check_url("http://hooks.example.org/a?b=c").is_ok());
        assert!(check_url("/relative").is_err());
        assert!(check_url("http://user:pw@host/x").is_err());
        assert!(check_url("mailto:x@y").is_err());
        assert_eq!(
            check_url("https://example.org").is_ok(),
            cfg!(feature = "tls")
        );
    }
}
