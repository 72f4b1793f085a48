//! `[[sources]]` configuration: [`SourceConfig`] is what the file says,
//! checked at load into a [`Source`] by [`SourceConfig::check`].

use crate::decode::{valid_name, DecodeRules, TopicPattern};
use crate::endpoint::{redact_url, BrokerAddr};
use crate::limits::SourceLimits;
use crate::sparkplug::{SparkplugConfig, SparkplugRules};
use crate::tls::{Tls, TlsConfig};
use ctower_model::{key_field, key_index, Bucket, ConfigIssue, Role};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// One MQTT source as written in the configuration file.
///
/// `Debug` shows `broker_url` redacted ([`redact_url`]). `Default` is an
/// empty source (no name, no URL: the check refuses it), for filling in.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique name, used in logs and the client id.
    pub name: String,
    /// `mqtt://host:port`, or `embedded` for the broker this process starts.
    /// Credentials in it (`mqtt://user:pass@host`) are refused: they would be
    /// printed wherever the URL is (`username` and `password_env` instead).
    pub broker_url: String,
    /// Default `ctower-{name}`.
    pub client_id: Option<String>,
    /// Topic filters; default `["#"]`.
    #[serde(default)]
    pub subscriptions: Vec<String>,
    /// 0 or 1; default 1.
    pub qos: Option<u8>,
    /// Default 30.
    pub keep_alive_secs: Option<u64>,
    /// MQTT user name, if the broker needs one.
    pub username: Option<String>,
    /// Name of the environment variable holding the password (never the password).
    pub password_env: Option<String>,
    /// Or: a file holding the password (one line; a final newline is not
    /// part of it), e.g. a mounted secret.
    pub password_file: Option<PathBuf>,
    /// TLS settings of an `mqtts://` broker (default: the system's trusted
    /// roots, no client certificate).
    pub tls: Option<TlsConfig>,
    /// What the source's payloads are: `json` (the Unified-Namespace
    /// tree, default) or `sparkplug` (Sparkplug B 3.0).
    pub format: Option<SourceFormat>,
    /// Sparkplug B settings (`format = "sparkplug"` only).
    pub sparkplug: Option<SparkplugConfig>,
    /// Default `{enterprise}/{site}/{area}/{line}/{asset}/{signal}` (JSON
    /// sources only).
    pub topic_pattern: Option<String>,
    /// Signal name → role overrides (`state`, `counter_total`, …, `process`).
    #[serde(default)]
    pub signals: BTreeMap<String, Role>,
    /// State code → bucket overrides (`running`, `planned_stop`, …).
    #[serde(default)]
    pub states: BTreeMap<String, Bucket>,
    /// Default 65536.
    pub max_payload_bytes: Option<usize>,
    /// Assets this source may name at once (default 10,000); more are
    /// refused as `too_many_assets`.
    pub max_assets: Option<usize>,
    /// Signals one asset of this source may have (default 256); more are
    /// refused as `too_many_signals`.
    pub max_signals_per_asset: Option<usize>,
    /// Watch the broker's `$SYS/broker/publish/messages/dropped` and warn
    /// when it grows (Mosquitto); default true, false for `embedded`.
    pub watch_broker_drops: Option<bool>,
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A refused URL may still hold a password: never print it whole.
        f.debug_struct("SourceConfig")
            .field("name", &self.name)
            .field("broker_url", &redact_url(&self.broker_url))
            .field("client_id", &self.client_id)
            .field("subscriptions", &self.subscriptions)
            .field("qos", &self.qos)
            .field("keep_alive_secs", &self.keep_alive_secs)
            .field("username", &self.username)
            .field("password_env", &self.password_env)
            .field("password_file", &self.password_file)
            .field("tls", &self.tls)
            .field("format", &self.format)
            .field("sparkplug", &self.sparkplug)
            .field("topic_pattern", &self.topic_pattern)
            .field("signals", &self.signals)
            .field("states", &self.states)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("max_assets", &self.max_assets)
            .field("max_signals_per_asset", &self.max_signals_per_asset)
            .field("watch_broker_drops", &self.watch_broker_drops)
            .finish()
    }
}

/// The payload format of a source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// Unified-Namespace JSON: one value per topic.
    #[default]
    Json,
    /// Sparkplug B 3.0: protobuf payloads, births, aliases, deaths.
    Sparkplug,
}

/// Credentials; the password is read from the environment at load and never logged.
#[derive(Clone)]
pub struct Credentials {
    /// MQTT user name.
    pub username: String,
    /// The password (empty when only `username` is set).
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A checked source: made only by [`SourceConfig::check`].
#[derive(Debug, Clone)]
pub struct Source {
    /// Unique name, used in logs and the client id.
    pub name: Arc<str>,
    /// The broker, resolved at connection time ([`crate::endpoint`]).
    pub broker: BrokerAddr,
    /// MQTT client id.
    pub client_id: String,
    /// Topic filters, at least one.
    pub subscriptions: Vec<String>,
    /// Subscription QoS, 0 or 1.
    pub qos: u8,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// User name and password, if the broker needs them.
    pub credentials: Option<Credentials>,
    /// TLS, exactly when the broker's URL is `mqtts://`.
    pub tls: Option<Tls>,
    /// How the source's topics and payloads are decoded (for Sparkplug:
    /// roles, state buckets and the payload limit).
    pub decode_rules: DecodeRules,
    /// Sparkplug B settings, exactly for a Sparkplug source.
    pub sparkplug: Option<SparkplugRules>,
    /// Caps of assets and signals.
    pub limits: SourceLimits,
    /// Whether the broker's dropped-message count is watched.
    pub watch_broker_drops: bool,
}

// Bounds of the numeric settings of a source.
const KEEP_ALIVE_SECS: std::ops::RangeInclusive<u64> = 5..=3600;
const MAX_PAYLOAD_BYTES: std::ops::RangeInclusive<usize> = 1..=16 * 1024 * 1024;
const MAX_ASSETS: std::ops::RangeInclusive<usize> = 1..=1_000_000;
const MAX_SIGNALS_PER_ASSET: std::ops::RangeInclusive<usize> = 1..=10_000;

/// Pushes one problem of field `field` of the source at `key`.
fn push(issues: &mut Vec<ConfigIssue>, key: &str, field: &str, message: String) {
    issues.push(ConfigIssue::new(key_field(key, field), message));
}

/// Where a source's password is, as [`SourceConfig::check`] asks its
/// lookup for it (injected, so tests touch neither the process environment
/// nor files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretRef<'a> {
    /// The environment variable of that name (`password_env`).
    Env(&'a str),
    /// The file at that path (`password_file`), its final newline removed.
    File(&'a Path),
}

impl SecretRef<'_> {
    /// The secret as [`SecretRef::File`] would give it: the file's text
    /// without its final newline; `None` when it cannot be read.
    pub fn read_file(path: &Path) -> Option<String> {
        let text = std::fs::read_to_string(path).ok()?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        Some(text.strip_suffix('\r').unwrap_or(text).to_string())
    }
}

impl SourceConfig {
    /// Checks one source; `key` is its path, e.g. `sources[0]`. `secrets`
    /// looks up the password (`None`: not set, or not readable). Every
    /// problem is pushed with its key; `None` exactly when one was.
    pub fn check(
        &self,
        key: &str,
        secrets: &dyn Fn(SecretRef<'_>) -> Option<String>,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<Source> {
        let before = issues.len();
        if self.name.trim().is_empty() {
            push(issues, key, "name", "must not be empty".into());
        }
        let broker = self.check_broker(key, issues);
        let tls = self.check_tls(key, broker.as_ref(), issues);
        let (qos, keep_alive) = self.check_session(key, issues);
        let subscriptions = self.check_subscriptions(key, issues);
        let credentials = self.check_credentials(key, secrets, issues);
        let decode_rules = self.check_decoding(key, issues);
        let sparkplug = self.check_sparkplug(key, issues);
        let limits = self.check_limits(key, issues);
        if issues.len() > before {
            return None;
        }
        let broker = broker?;
        let watch_broker_drops = self
            .watch_broker_drops
            .unwrap_or(!matches!(broker, BrokerAddr::Embedded));
        Some(Source {
            name: self.name.as_str().into(),
            broker,
            client_id: self
                .client_id
                .clone()
                .unwrap_or_else(|| format!("ctower-{}", self.name)),
            subscriptions,
            qos,
            keep_alive,
            credentials,
            tls,
            decode_rules: decode_rules?,
            sparkplug,
            limits,
            watch_broker_drops,
        })
    }

    /// `format` and `sparkplug`: the Sparkplug rules of a Sparkplug source;
    /// a `sparkplug` table on a JSON source, or a `topic_pattern` on a
    /// Sparkplug one, would be silently unused: refused.
    fn check_sparkplug(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<SparkplugRules> {
        let sp_key = key_field(key, "sparkplug");
        match (self.format.unwrap_or_default(), &self.sparkplug) {
            (SourceFormat::Json, None) => None,
            (SourceFormat::Json, Some(_)) => {
                let m = "Sparkplug settings need format = \"sparkplug\"";
                issues.push(ConfigIssue::new(sp_key, m));
                None
            }
            (SourceFormat::Sparkplug, c) => {
                if self.topic_pattern.is_some() {
                    let m = "a Sparkplug source's topics are spBv1.0/…: map names with [sources.sparkplug] site/area/line/asset/signal";
                    push(issues, key, "topic_pattern", m.into());
                }
                match c.clone().unwrap_or_default().check() {
                    Ok(r) => Some(r),
                    Err(problems) => {
                        for (field, m) in problems {
                            issues.push(ConfigIssue::new(key_field(&sp_key, &field), m));
                        }
                        None
                    }
                }
            }
        }
    }

    /// `broker_url`, shown redacted in its issue.
    fn check_broker(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<BrokerAddr> {
        BrokerAddr::parse(&self.broker_url)
            .map_err(|e| {
                let url = redact_url(&self.broker_url);
                push(issues, key, "broker_url", format!("`{url}`: {e}"));
            })
            .ok()
    }

    /// `tls`: read for an `mqtts://` broker (with its defaults when the
    /// table is absent), refused for one in the clear (it would be silently
    /// unused).
    fn check_tls(
        &self,
        key: &str,
        broker: Option<&BrokerAddr>,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<Tls> {
        let tls_key = key_field(key, "tls");
        match (broker, &self.tls) {
            (Some(BrokerAddr::Tcp { tls: true, .. }), Some(t)) => t.check(&tls_key, issues),
            (Some(BrokerAddr::Tcp { tls: true, .. }), None) => {
                TlsConfig::default().check(&tls_key, issues)
            }
            (_, Some(_)) => {
                issues.push(ConfigIssue::new(
                    tls_key,
                    "TLS settings need an mqtts:// or wss:// broker_url",
                ));
                None
            }
            (_, None) => None,
        }
    }

    /// `qos` (default 1) and `keep_alive_secs` (default 30).
    fn check_session(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> (u8, Duration) {
        let qos = self.qos.unwrap_or(1);
        if qos > 1 {
            let m = format!("{qos} is not supported (use 0 or 1)");
            push(issues, key, "qos", m);
        }
        let secs = self.keep_alive_secs.unwrap_or(30);
        if !KEEP_ALIVE_SECS.contains(&secs) {
            push(
                issues,
                key,
                "keep_alive_secs",
                format!("{secs} is outside 5..=3600"),
            );
        }
        (qos, Duration::from_secs(secs))
    }

    /// `subscriptions` (default `["#"]`), each a valid MQTT topic filter.
    fn check_subscriptions(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Vec<String> {
        let subscriptions = if self.subscriptions.is_empty() {
            match self.format.unwrap_or_default() {
                SourceFormat::Json => vec!["#".to_string()],
                SourceFormat::Sparkplug => vec!["spBv1.0/#".to_string()],
            }
        } else {
            self.subscriptions.clone()
        };
        for (i, s) in subscriptions.iter().enumerate() {
            if s.is_empty() || !valid_filter(s) {
                issues.push(ConfigIssue::new(
                    key_index(key, "subscriptions", i),
                    format!("`{s}` is not a valid MQTT topic filter"),
                ));
            }
        }
        subscriptions
    }

    /// `username` with `password_env` or `password_file` (not both): the
    /// password is read through `secrets`, and never appears in a problem.
    fn check_credentials(
        &self,
        key: &str,
        secrets: &dyn Fn(SecretRef<'_>) -> Option<String>,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<Credentials> {
        let credentials = |password| Credentials {
            username: self.username.clone().unwrap_or_default(),
            password,
        };
        let (field, secret) = match (&self.password_env, &self.password_file) {
            (Some(_), Some(_)) => {
                let m = "give `password_env` or `password_file`, not both".into();
                push(issues, key, "password_file", m);
                return None;
            }
            (Some(var), None) => ("password_env", Some(SecretRef::Env(var))),
            (None, Some(path)) => ("password_file", Some(SecretRef::File(path))),
            (None, None) => ("password_env", None),
        };
        match (&self.username, secret) {
            (None, None) => None,
            (Some(_), None) => Some(credentials(String::new())),
            (None, Some(_)) => {
                push(issues, key, field, "set `username` too".into());
                None
            }
            (Some(_), Some(secret)) => match secrets(secret) {
                Some(p) => Some(credentials(p)),
                None => {
                    let m = match secret {
                        SecretRef::Env(var) => format!("environment variable `{var}` is not set"),
                        SecretRef::File(path) => {
                            format!("cannot read the password file `{}`", path.display())
                        }
                    };
                    push(issues, key, field, m);
                    None
                }
            },
        }
    }

    /// `signals` (names that can match), `topic_pattern` and
    /// `max_payload_bytes`, into the source's decoding rules.
    fn check_decoding(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<DecodeRules> {
        let signals = key_field(key, "signals");
        for name in self.signals.keys().filter(|n| !valid_name(n)) {
            issues.push(ConfigIssue::new(
                key_field(&signals, name),
                format!(
                    "`{name}` can never match: topic levels that are names hold only \
                     ASCII letters, digits, `-`, `_`, `.` and `:`"
                ),
            ));
        }
        let pattern = self
            .topic_pattern
            .as_deref()
            .unwrap_or(TopicPattern::DEFAULT);
        let pattern = TopicPattern::parse(pattern)
            .map_err(|e| push(issues, key, "topic_pattern", e))
            .ok();
        let max_payload_bytes = self.max_payload_bytes.unwrap_or(64 * 1024);
        if !MAX_PAYLOAD_BYTES.contains(&max_payload_bytes) {
            let m = format!("{max_payload_bytes} is outside 1..=16777216");
            push(issues, key, "max_payload_bytes", m);
        }
        Some(DecodeRules::new(
            pattern?,
            &self.signals,
            &self.states,
            max_payload_bytes,
        ))
    }

    /// `max_assets` and `max_signals_per_asset`.
    fn check_limits(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> SourceLimits {
        let defaults = SourceLimits::default();
        let max_assets = self.max_assets.unwrap_or(defaults.max_assets);
        if !MAX_ASSETS.contains(&max_assets) {
            let m = format!("{max_assets} is outside 1..=1000000");
            push(issues, key, "max_assets", m);
        }
        let max_signals = self
            .max_signals_per_asset
            .unwrap_or(defaults.max_signals_per_asset);
        if !MAX_SIGNALS_PER_ASSET.contains(&max_signals) {
            let m = format!("{max_signals} is outside 1..=10000");
            push(issues, key, "max_signals_per_asset", m);
        }
        SourceLimits {
            max_assets,
            max_signals_per_asset: max_signals,
        }
    }
}

/// Whether an MQTT topic filter (`+`, `#`) matches a topic.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut t = topic.split('/');
    for f in filter.split('/') {
        match (f, t.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(l)) if f == l => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

impl Source {
    /// Whether this source subscribes to `topic`.
    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.subscriptions.iter().any(|f| filter_matches(f, topic))
    }
}

/// MQTT filter rules: `#` only last and alone in its level, `+` alone in its level.
fn valid_filter(f: &str) -> bool {
    let levels: Vec<&str> = f.split('/').collect();
    levels.iter().enumerate().all(|(i, l)| {
        (*l == "#" && i == levels.len() - 1) || *l == "+" || (!l.contains('#') && !l.contains('+'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> SourceConfig {
        SourceConfig {
            name: "a".into(),
            broker_url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn tls_settings_belong_to_an_mqtts_broker() {
        let mut c = cfg("mqtt://h:1883");
        c.tls = Some(TlsConfig::default());
        let mut issues = vec![];
        assert!(c.check("sources[2]", &|_| None, &mut issues).is_none());
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].key, "sources[2].tls");

        // An mqtts:// source reads its files when checked: a missing CA
        // file is a problem of its key, not of a later connection.
        let mut c = cfg("mqtts://h:8883");
        c.tls = Some(TlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsConfig::default()
        });
        let mut issues = vec![];
        assert!(c.check("sources[0]", &|_| None, &mut issues).is_none());
        let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["sources[0].tls.ca_file"]);
    }

    #[test]
    fn filters() {
        assert!(filter_matches("#", "a/b"));
        assert!(filter_matches("a/#", "a/b/c"));
        assert!(filter_matches("a/+/c", "a/b/c"));
        assert!(!filter_matches("a/+/c", "a/b/d"));
        assert!(!filter_matches("a/b", "a/b/c"));
        assert!(!filter_matches("a/b/c", "a/b"));
    }

    #[test]
    fn credentials_in_the_url_are_refused_and_never_printed() {
        for url in [
            "mqtt://ctower:s3cret@broker.example:1883",
            "tcp://ctower:s3cret@10.0.0.1:1883/",
            "mqtt://ctower:s3cret@[::1]:1883",
            "mqtt://:s3cret@h:1883",
        ] {
            let e = BrokerAddr::parse(url).unwrap_err();
            assert!(
                e.contains("`username`") && e.contains("`password_env`"),
                "{url}: {e}"
            );
            let c = cfg(url);
            let mut issues = vec![];
            assert!(c.check("sources[0]", &|_| None, &mut issues).is_none());
            assert_eq!(issues.len(), 1, "{issues:?}");
            assert_eq!(issues[0].key, "sources[0].broker_url");
            let shown = format!("{issues:?} {} {c:?}", issues[0].message);
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("***@"), "{shown}");
        }
    }

    #[test]
    fn reports_every_problem_with_its_key() {
        let mut c = cfg("http://x");
        c.qos = Some(2);
        c.subscriptions = vec!["a/#/b".into()];
        c.username = Some("u".into());
        c.password_env = Some("NOPE".into());
        let mut issues = vec![];
        assert!(c.check("sources[3]", &|_| None, &mut issues).is_none());
        let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "sources[3].broker_url",
                "sources[3].qos",
                "sources[3].subscriptions[0]",
                "sources[3].password_env"
            ]
        );
    }

    #[test]
    fn signal_names_outside_the_name_set_are_refused() {
        let mut c = cfg("mqtt://h:1883");
        c.signals.insert("Good_Count".into(), Role::CounterGood);
        c.signals.insert("good count".into(), Role::CounterGood);
        let mut issues = vec![];
        assert!(c.check("sources[0]", &|_| None, &mut issues).is_none());
        let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["sources[0].signals.good count"]);
    }

    #[test]
    fn password_comes_from_env_and_is_not_printed() {
        let mut c = cfg("mqtt://h:1883");
        c.username = Some("u".into());
        c.password_env = Some("PW".into());
        let mut issues = vec![];
        let s = c
            .check(
                "sources[0]",
                &|k| (k == SecretRef::Env("PW")).then(|| "s3cret".to_string()),
                &mut issues,
            )
            .unwrap();
        assert_eq!(s.credentials.as_ref().unwrap().password, "s3cret");
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn password_comes_from_a_file_without_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mqtt-password");
        std::fs::write(&path, "s3cret\r\n").unwrap();
        assert_eq!(SecretRef::read_file(&path).as_deref(), Some("s3cret"));
        let mut c = cfg("mqtt://h:1883");
        c.username = Some("u".into());
        c.password_file = Some(path.clone());
        let mut issues = vec![];
        let read = |k: SecretRef<'_>| match k {
            SecretRef::File(p) => SecretRef::read_file(p),
            SecretRef::Env(_) => None,
        };
        let s = c.check("sources[0]", &read, &mut issues).unwrap();
        assert_eq!(s.credentials.as_ref().unwrap().password, "s3cret");
        assert!(!format!("{s:?} {c:?}").contains("s3cret"));

        // Unreadable, or given twice: problems of their keys.
        c.password_file = Some(dir.path().join("missing"));
        assert!(c.check("sources[0]", &read, &mut issues).is_none());
        c.password_env = Some("PW".into());
        assert!(c.check("sources[0]", &read, &mut issues).is_none());
        let shown: Vec<String> = issues.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(
            shown[0].starts_with("sources[0].password_file: cannot read"),
            "{shown:?}"
        );
        assert!(shown[1].contains("not both"), "{shown:?}");
    }
}
