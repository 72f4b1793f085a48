//! `[[sources]]` configuration: serde shapes, checked into [`SourceSpec`] at load.

use crate::decode::{valid_name, DecoderSpec, TopicPattern};
use ctower_model::{Bucket, ConfigIssue, Role};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One MQTT source as written in the configuration file.
///
/// `Debug` shows `broker_url` redacted ([`redact_url`]).
#[derive(Clone, Deserialize)]
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
    pub username: Option<String>,
    /// Name of the environment variable holding the password (never the password).
    pub password_env: Option<String>,
    /// Default `{enterprise}/{site}/{area}/{line}/{asset}/{signal}`.
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
            .field("topic_pattern", &self.topic_pattern)
            .field("signals", &self.signals)
            .field("states", &self.states)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("max_assets", &self.max_assets)
            .field("max_signals_per_asset", &self.max_signals_per_asset)
            .finish()
    }
}

/// `url` with any user information (`user:password@`) replaced by `***@`,
/// for logs and error messages. A URL without any is returned as is.
///
/// The authority is what follows `scheme://` (or the whole string without
/// a scheme) up to the first `/`, `?` or `#`; its user information is
/// everything before its last `@`.
pub fn redact_url(url: &str) -> std::borrow::Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_len = url[start..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - start);
    match url[start..start + authority_len].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]).into(),
        None => url.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerAddr {
    /// The broker started by this process (the demo).
    Embedded,
    Tcp {
        host: String,
        port: u16,
    },
}

impl BrokerAddr {
    pub fn parse(url: &str) -> Result<BrokerAddr, String> {
        if url == "embedded" {
            return Ok(BrokerAddr::Embedded);
        }
        let rest = url
            .strip_prefix("mqtt://")
            .or_else(|| url.strip_prefix("tcp://"))
            .ok_or_else(|| {
                "expected mqtt://HOST:PORT or `embedded` (TLS is not supported yet)".to_string()
            })?;
        // `user:password@host` would otherwise read as a host name (and be
        // printed in every log line of the source).
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        if authority.contains('@') {
            return Err(
                "credentials in the URL are refused (they would be logged): \
                 set `username` and `password_env` (the name of an environment variable \
                 holding the password) in the source instead"
                    .into(),
            );
        }
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| "missing :PORT".to_string())?;
        if host.is_empty() {
            return Err("missing host".into());
        }
        let port = port
            .trim_end_matches('/')
            .parse::<u16>()
            .map_err(|_| format!("port `{port}` is not a number from 1 to 65535"))?;
        if port == 0 {
            return Err("port 0 is not a broker port".into());
        }
        Ok(BrokerAddr::Tcp {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
        })
    }
}

/// Credentials; the password is read from the environment at load and never logged.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
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

/// A checked source.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub name: Arc<str>,
    pub broker: BrokerAddr,
    pub client_id: String,
    pub subscriptions: Vec<String>,
    pub qos: u8,
    pub keep_alive: Duration,
    pub credentials: Option<Credentials>,
    pub decoder: DecoderSpec,
    pub limits: crate::limits::SourceLimits,
}

impl SourceConfig {
    /// Checks one source; `key` is its path, e.g. `sources[0]`. `env` looks up
    /// environment variables (injected so tests do not touch the process env).
    pub fn check(
        &self,
        key: &str,
        env: &dyn Fn(&str) -> Option<String>,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<SourceSpec> {
        let before = issues.len();
        let mut issue = |k: &str, m: String| issues.push(ConfigIssue::new(format!("{key}.{k}"), m));
        if self.name.trim().is_empty() {
            issue("name", "must not be empty".into());
        }
        let broker = BrokerAddr::parse(&self.broker_url)
            .map_err(|e| {
                let url = redact_url(&self.broker_url);
                issue("broker_url", format!("`{url}`: {e}"))
            })
            .ok();
        let qos = self.qos.unwrap_or(1);
        if qos > 1 {
            issue("qos", format!("{qos} is not supported (use 0 or 1)"));
        }
        let keep_alive_secs = self.keep_alive_secs.unwrap_or(30);
        if !(5..=3600).contains(&keep_alive_secs) {
            issue(
                "keep_alive_secs",
                format!("{keep_alive_secs} is outside 5..=3600"),
            );
        }
        let subscriptions = if self.subscriptions.is_empty() {
            vec!["#".to_string()]
        } else {
            self.subscriptions.clone()
        };
        for (i, s) in subscriptions.iter().enumerate() {
            if s.is_empty() || !valid_filter(s) {
                issue(
                    &format!("subscriptions[{i}]"),
                    format!("`{s}` is not a valid MQTT topic filter"),
                );
            }
        }
        let credentials = match (&self.username, &self.password_env) {
            (None, None) => None,
            (Some(u), None) => Some(Credentials {
                username: u.clone(),
                password: String::new(),
            }),
            (None, Some(_)) => {
                issue("password_env", "set `username` too".into());
                None
            }
            (Some(u), Some(var)) => match env(var) {
                Some(p) => Some(Credentials {
                    username: u.clone(),
                    password: p,
                }),
                None => {
                    issue(
                        "password_env",
                        format!("environment variable `{var}` is not set"),
                    );
                    None
                }
            },
        };
        for name in self.signals.keys() {
            if !valid_name(name) {
                issue(
                    &format!("signals.{name}"),
                    format!(
                        "`{name}` can never match: topic levels that are names hold only \
                         ASCII letters, digits, `-`, `_`, `.` and `:`"
                    ),
                );
            }
        }
        let pattern = self
            .topic_pattern
            .as_deref()
            .unwrap_or(TopicPattern::DEFAULT);
        let pattern = TopicPattern::parse(pattern)
            .map_err(|e| issue("topic_pattern", e))
            .ok();
        let max_payload_bytes = self.max_payload_bytes.unwrap_or(64 * 1024);
        if max_payload_bytes == 0 || max_payload_bytes > 16 * 1024 * 1024 {
            issue(
                "max_payload_bytes",
                format!("{max_payload_bytes} is outside 1..=16777216"),
            );
        }
        let defaults = crate::limits::SourceLimits::default();
        let max_assets = self.max_assets.unwrap_or(defaults.max_assets);
        if !(1..=1_000_000).contains(&max_assets) {
            issue("max_assets", format!("{max_assets} is outside 1..=1000000"));
        }
        let max_signals = self
            .max_signals_per_asset
            .unwrap_or(defaults.max_signals_per_asset);
        if !(1..=10_000).contains(&max_signals) {
            issue(
                "max_signals_per_asset",
                format!("{max_signals} is outside 1..=10000"),
            );
        }
        if issues.len() > before {
            return None;
        }
        let (broker, pattern) = (broker?, pattern?);
        Some(SourceSpec {
            name: self.name.as_str().into(),
            broker,
            client_id: self
                .client_id
                .clone()
                .unwrap_or_else(|| format!("ctower-{}", self.name)),
            subscriptions,
            qos,
            keep_alive: Duration::from_secs(keep_alive_secs),
            credentials,
            decoder: DecoderSpec::new(pattern, &self.signals, &self.states, max_payload_bytes),
            limits: crate::limits::SourceLimits {
                max_assets,
                max_signals_per_asset: max_signals,
            },
        })
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

impl SourceSpec {
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
            client_id: None,
            subscriptions: vec![],
            qos: None,
            keep_alive_secs: None,
            username: None,
            password_env: None,
            topic_pattern: None,
            signals: BTreeMap::new(),
            states: BTreeMap::new(),
            max_payload_bytes: None,
            max_assets: None,
            max_signals_per_asset: None,
        }
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
    fn broker_urls() {
        assert_eq!(BrokerAddr::parse("embedded"), Ok(BrokerAddr::Embedded));
        assert_eq!(
            BrokerAddr::parse("mqtt://10.0.0.1:1883"),
            Ok(BrokerAddr::Tcp {
                host: "10.0.0.1".into(),
                port: 1883
            })
        );
        assert!(BrokerAddr::parse("mqtts://h:8883").is_err());
        assert!(BrokerAddr::parse("mqtt://h").is_err());
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
    fn urls_are_redacted() {
        assert_eq!(redact_url("mqtt://u:p@h:1883"), "mqtt://***@h:1883");
        assert_eq!(redact_url("mqtt://u@h:1883/x@y"), "mqtt://***@h:1883/x@y");
        assert_eq!(redact_url("u:p@h:1883"), "***@h:1883");
        assert_eq!(redact_url("mqtt://a:b@c@h:1"), "mqtt://***@h:1");
        assert_eq!(redact_url("mqtt://h:1883/a@b"), "mqtt://h:1883/a@b");
        assert_eq!(redact_url("embedded"), "embedded");
        assert_eq!(redact_url(""), "");
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
                &|k| (k == "PW").then(|| "s3cret".to_string()),
                &mut issues,
            )
            .unwrap();
        assert_eq!(s.credentials.as_ref().unwrap().password, "s3cret");
        assert!(!format!("{s:?}").contains("s3cret"));
    }
}
