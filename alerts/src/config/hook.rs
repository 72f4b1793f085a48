//! Alert hooks: one `[[alerts.hooks]]` entry as written ([`HookConfig`])
//! and as checked ([`Hook`]: a [`LogHook`] or a [`WebhookHook`]).

use super::secret::{Secrets, WebhookSecret};
use super::{missing, non_empty};
use ctower_model::{key_field, ConfigIssue, Priority};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Default webhook request timeout.
pub const DEFAULT_TIMEOUT_SECS: u64 = 5;
/// Default number of retries after the first webhook attempt.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Default first retry delay; each further retry doubles it.
pub const DEFAULT_RETRY_BASE_MS: u64 = 500;

/// Kind of an alert hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    /// Structured `tracing` event; level by priority.
    Log,
    /// HTTP POST of a JSON envelope, optionally signed (Standard Webhooks).
    Webhook,
}

impl HookKind {
    /// The serde name: `log` or `webhook`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Log => "log",
            HookKind::Webhook => "webhook",
        }
    }
}

/// One `[[alerts.hooks]]` entry as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// `log` or `webhook` (required).
    pub kind: Option<HookKind>,
    /// Name for logs; defaults to `<kind>-<index>`. Unique when given.
    pub name: Option<String>,
    /// Only events of this priority or higher go to this hook; default `low` (all).
    pub min_priority: Option<Priority>,
    /// Webhook: `http://…` or `https://…` (required for `webhook`).
    pub url: Option<String>,
    /// Webhook: whole-request timeout, 1..=300 s; default 5.
    pub timeout_secs: Option<u64>,
    /// Webhook: retries after the first attempt, 0..=20; default 3.
    pub max_retries: Option<u32>,
    /// Webhook: first retry delay, 1..=60000 ms, doubling per retry (capped at 60 s); default 500.
    pub retry_base_ms: Option<u64>,
    /// Webhook: name of the environment variable holding the signing secret.
    pub secret_env: Option<String>,
}

/// A checked log hook.
#[derive(Debug, Clone, PartialEq)]
pub struct LogHook {
    /// Name for logs.
    pub name: Arc<str>,
    /// Only events of this priority or higher are logged.
    pub min_priority: Priority,
}

/// A checked webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookHook {
    /// Name for logs.
    pub name: Arc<str>,
    /// Only events of this priority or higher are sent.
    pub min_priority: Priority,
    /// An absolute `http://` (or, with the `tls` feature, `https://`) URL.
    pub url: String,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First retry delay; doubles per retry.
    pub retry_base: Duration,
    /// The environment variable named by `secret_env`, if any.
    pub secret_env: Option<Arc<str>>,
    /// The signing key read from `secret_env`; `None` without `secret_env`,
    /// or when it was checked with [`Secrets::IfSet`] and not set.
    pub secret: Option<WebhookSecret>,
}

impl WebhookHook {
    /// The host and port its URL points at (80 or 443 when the URL names no
    /// port): where `ctower check --connect` tries a connection. `None` only
    /// for a URL the check would have refused.
    pub fn address(&self) -> Option<(String, u16)> {
        let uri: ureq::http::Uri = self.url.parse().ok()?;
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
    /// A webhook.
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
}

impl HookConfig {
    /// Checks one hook; `key` is its path (e.g. `alerts.hooks[1]`), `index`
    /// its position (for the default name), `secrets` how to read its
    /// signing secret. Every problem is pushed with its full key; `None`
    /// exactly when one was. (Unique names are checked by
    /// [`AlertsConfig::check`](super::AlertsConfig::check).)
    pub fn check(
        &self,
        key: &str,
        index: usize,
        secrets: Secrets<'_>,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<Hook> {
        let before = issues.len();
        let name = non_empty(&self.name, &key_field(key, "name"), issues);
        let Some(kind) = self.kind else {
            issues.push(missing(key_field(key, "kind"), "\"log\" or \"webhook\""));
            return None;
        };
        let name = name.unwrap_or_else(|| format!("{}-{index}", kind.as_str()).into());
        let min_priority = self.min_priority.unwrap_or(Priority::Low);
        let hook = match kind {
            HookKind::Log => {
                self.check_log(key, issues);
                Some(Hook::Log(LogHook { name, min_priority }))
            }
            HookKind::Webhook => self
                .check_webhook(key, name, min_priority, secrets, issues)
                .map(Hook::Webhook),
        };
        if issues.len() != before {
            return None;
        }
        hook
    }

    /// A log hook has none of the webhook fields.
    fn check_log(&self, key: &str, issues: &mut Vec<ConfigIssue>) {
        let extra: [(&str, bool); 5] = [
            ("url", self.url.is_some()),
            ("timeout_secs", self.timeout_secs.is_some()),
            ("max_retries", self.max_retries.is_some()),
            ("retry_base_ms", self.retry_base_ms.is_some()),
            ("secret_env", self.secret_env.is_some()),
        ];
        for (field, present) in extra {
            if present {
                issues.push(ConfigIssue::new(
                    key_field(key, field),
                    "not allowed for a \"log\" hook (only for \"webhook\" hooks)",
                ));
            }
        }
    }

    /// A webhook: its URL, its limits (defaults filled in) and its secret.
    fn check_webhook(
        &self,
        key: &str,
        name: Arc<str>,
        min_priority: Priority,
        secrets: Secrets<'_>,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<WebhookHook> {
        let k = |field: &str| key_field(key, field);
        let url = match self.url.as_deref() {
            None => {
                issues.push(missing(k("url"), "an http:// or https:// URL"));
                None
            }
            Some(u) => check_url(u)
                .map_err(|msg| issues.push(ConfigIssue::new(k("url"), msg)))
                .ok()
                .map(|()| u.to_string()),
        };
        let timeout_secs = self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if !(1..=300).contains(&timeout_secs) {
            issues.push(ConfigIssue::new(
                k("timeout_secs"),
                format!("must be between 1 and 300, got {timeout_secs}"),
            ));
        }
        let max_retries = self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
        if max_retries > 20 {
            issues.push(ConfigIssue::new(
                k("max_retries"),
                format!("must be at most 20, got {max_retries}"),
            ));
        }
        let retry_base_ms = self.retry_base_ms.unwrap_or(DEFAULT_RETRY_BASE_MS);
        if !(1..=60_000).contains(&retry_base_ms) {
            issues.push(ConfigIssue::new(
                k("retry_base_ms"),
                format!("must be between 1 and 60000, got {retry_base_ms}"),
            ));
        }
        let (secret_env, secret) = self.check_secret(key, secrets, issues);
        Some(WebhookHook {
            name,
            min_priority,
            url: url?,
            timeout: Duration::from_secs(timeout_secs),
            max_retries,
            retry_base: Duration::from_millis(retry_base_ms),
            secret_env,
            secret,
        })
    }

    /// `secret_env`: a variable name, read as `secrets` says.
    fn check_secret(
        &self,
        key: &str,
        secrets: Secrets<'_>,
        issues: &mut Vec<ConfigIssue>,
    ) -> (Option<Arc<str>>, Option<WebhookSecret>) {
        let key = key_field(key, "secret_env");
        match self.secret_env.as_deref() {
            None => (None, None),
            Some(var) if var.trim().is_empty() => {
                issues.push(ConfigIssue::new(key, "must not be empty"));
                (None, None)
            }
            Some(var) => (Some(var.into()), secrets.read(var, &key, issues)),
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
            url: url.into(),
            timeout: Duration::from_secs(1),
            max_retries: 0,
            retry_base: Duration::from_secs(1),
            secret_env: None,
            secret: None,
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
