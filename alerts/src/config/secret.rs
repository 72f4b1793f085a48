//! Webhook signing secrets: the key itself ([`WebhookSecret`], never
//! printed) and how checking a configuration reads it ([`Secrets`]).
//!
//! A secret is never written in the configuration: `secret_env` names the
//! environment variable that holds it. Running needs every named secret;
//! checking a file (`ctower check`) must not, so the lookup has two modes.

use crate::AlertsError;
use base64::Engine as _;
use ctower_model::ConfigIssue;
use std::fmt;

/// A webhook signing secret. Never printed: `Debug` shows `<redacted>`.
///
/// A secret of the Standard Webhooks form `whsec_<base64>` is used as the
/// base64-decoded bytes; any other string is used as its UTF-8 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// Parses a secret as the environment holds it; an empty secret (or
    /// an empty or non-base64 `whsec_` one) is refused.
    pub fn parse(s: &str) -> Result<Self, AlertsError> {
        if s.is_empty() {
            return Err(AlertsError::Secret("empty".into()));
        }
        if let Some(b64) = s.strip_prefix("whsec_") {
            let key = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| AlertsError::Secret(format!("`whsec_` secret is not base64: {e}")))?;
            if key.is_empty() {
                return Err(AlertsError::Secret("empty".into()));
            }
            Ok(WebhookSecret(key))
        } else {
            Ok(WebhookSecret(s.as_bytes().to_vec()))
        }
    }

    /// The HMAC key bytes.
    pub fn key(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// How [`AlertsConfig::check`](super::AlertsConfig::check) reads the
/// webhook secrets named by `secret_env`, through an environment lookup
/// (injected so tests do not touch the process environment).
#[derive(Clone, Copy)]
pub enum Secrets<'a> {
    /// To run: every named variable must be set and hold a usable secret;
    /// otherwise that is a problem at `….secret_env`.
    Required(&'a dyn Fn(&str) -> Option<String>),
    /// To check a file only: a variable that is set must hold a usable
    /// secret, one that is not set is no problem. Such a webhook is checked
    /// without its key ([`WebhookHook::secret`](super::WebhookHook::secret)
    /// is `None`) and [`HookDispatcher`](crate::HookDispatcher) refuses to
    /// start it, so it is never sent unsigned.
    IfSet(&'a dyn Fn(&str) -> Option<String>),
}

impl fmt::Debug for Secrets<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Secrets::Required(_) => "Secrets::Required",
            Secrets::IfSet(_) => "Secrets::IfSet",
        })
    }
}

impl Secrets<'_> {
    /// Reads the secret held by variable `var`, named at `key`; pushes a
    /// problem when it is unusable (or, when required, not set). The
    /// secret's value is never put into an issue or a log.
    pub(super) fn read(
        &self,
        var: &str,
        key: &str,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<WebhookSecret> {
        let (env, required) = match self {
            Secrets::Required(env) => (env, true),
            Secrets::IfSet(env) => (env, false),
        };
        let Some(value) = env(var) else {
            if required {
                issues.push(ConfigIssue::new(
                    key,
                    format!("environment variable `{var}` is not set"),
                ));
            }
            return None;
        };
        Self::parse_named(
            &value,
            &format!("environment variable `{var}`"),
            key,
            issues,
        )
    }

    /// Reads a secret from the file at `path` (whole file, surrounding
    /// whitespace trimmed), named at `key`. When only checking a file
    /// ([`Secrets::IfSet`]) a missing file is no problem.
    pub(super) fn read_file(
        &self,
        path: &str,
        key: &str,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<WebhookSecret> {
        let required = matches!(self, Secrets::Required(_));
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse_named(text.trim(), &format!("file `{path}`"), key, issues),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                issues.push(ConfigIssue::new(
                    key,
                    format!("cannot read the secret file `{path}`: {e}"),
                ));
                None
            }
        }
    }

    /// Reads a plain string secret (a PagerDuty routing key) from
    /// environment variable `var` (`from_file`: false) or file `var`.
    pub(super) fn read_plain(
        &self,
        var: &str,
        from_file: bool,
        key: &str,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<String> {
        let s = match from_file {
            false => self.read(var, key, issues)?,
            true => self.read_file(var, key, issues)?,
        };
        match String::from_utf8(s.key().to_vec()) {
            Ok(text) if !var.is_empty() => Some(text),
            _ => {
                issues.push(ConfigIssue::new(key, "is not UTF-8 text"));
                None
            }
        }
    }

    fn parse_named(
        value: &str,
        what: &str,
        key: &str,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<WebhookSecret> {
        match WebhookSecret::parse(value) {
            Ok(s) => Some(s),
            Err(e) => {
                issues.push(ConfigIssue::new(key, format!("{what}: {e}")));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whsec_secrets_are_base64_decoded() {
        let s = WebhookSecret::parse("whsec_aGVsbG8=").ok();
        assert_eq!(s.as_ref().map(|s| s.key()), Some(&b"hello"[..]));
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        assert!(WebhookSecret::parse("").is_err());
        assert_eq!(format!("{:?}", s), "Some(WebhookSecret(<redacted>))");
    }

    #[test]
    fn if_set_reads_a_set_secret_and_skips_an_unset_one() {
        let env = |k: &str| match k {
            "GOOD" => Some("s3cret".to_string()),
            "BAD" => Some("whsec_!!!".to_string()),
            _ => None,
        };
        let mut issues = Vec::new();
        let good = Secrets::IfSet(&env).read("GOOD", "k", &mut issues);
        assert_eq!(good.as_ref().map(|s| s.key()), Some(&b"s3cret"[..]));
        assert!(Secrets::IfSet(&env)
            .read("UNSET", "k", &mut issues)
            .is_none());
        assert!(issues.is_empty(), "{issues:?}");
        assert!(Secrets::IfSet(&env).read("BAD", "k", &mut issues).is_none());
        assert!(Secrets::Required(&env)
            .read("UNSET", "k", &mut issues)
            .is_none());
        let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].starts_with("k: environment variable `BAD`: "));
        assert!(!text[0].contains("!!!"), "the value leaked: {}", text[0]);
        assert_eq!(text[1], "k: environment variable `UNSET` is not set");
    }
}
