//! Alert configuration: what the operator writes (`[[alerts.rules]]`,
//! `[[alerts.hooks]]`) and its validation into [`Rule`]s and [`Hook`]s.
//!
//! Deserialisation only checks types; [`AlertsConfig::validate`] checks
//! everything else and reports every problem at once, each with its full key
//! path, so an operator fixes a configuration in one round.

use crate::AlertsError;
use base64::Engine as _;
use ctower_model::{KpiRecord, Level, Priority};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Longest accepted on-delay (7 days): a larger one is almost surely a unit mix-up.
pub const MAX_ON_DELAY_SECS: u64 = 7 * 24 * 3600;
/// Default webhook request timeout.
pub const DEFAULT_TIMEOUT_SECS: u64 = 5;
/// Default number of retries after the first webhook attempt.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Default first retry delay; each further retry doubles it.
pub const DEFAULT_RETRY_BASE_MS: u64 = 500;

/// The `[alerts]` section.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    #[serde(default)]
    pub hooks: Vec<HookSpec>,
}

/// Where a rule takes its value from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A KPI of a [`KpiRecord`] at one roll-up level.
    Kpi,
    /// A statistic of a telemetry signal window of one asset.
    Signal,
}

/// Which side of the threshold is abnormal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Alarm when `value > threshold`; clears when `value <= clear_at`.
    Above,
    /// Alarm when `value < threshold`; clears when `value >= clear_at`.
    Below,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Above => "above",
            Condition::Below => "below",
        }
    }
}

/// The statistic of a signal window a signal rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    Min,
    Max,
    Mean,
    Last,
}

impl Stat {
    pub fn as_str(self) -> &'static str {
        match self {
            Stat::Min => "min",
            Stat::Max => "max",
            Stat::Mean => "mean",
            Stat::Last => "last",
        }
    }
}

/// One `[[alerts.rules]]` entry as written. Every field is optional here so
/// that validation can name each missing one; see [`AlertsConfig::validate`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique rule name (required).
    pub name: Option<String>,
    /// `kpi` or `signal` (required).
    pub source: Option<SourceKind>,
    /// KPI rules: `group`, `site`, `line` or `asset` (required for `kpi`).
    pub level: Option<Level>,
    /// KPI rules: a name of [`KpiRecord::METRICS`] (required for `kpi`).
    pub metric: Option<String>,
    /// Signal rules: the signal name (required for `signal`).
    pub signal: Option<String>,
    /// Signal rules: `min`, `max`, `mean` or `last` (required for `signal`).
    pub stat: Option<Stat>,
    /// `above` or `below` (required).
    pub condition: Option<Condition>,
    /// Raise threshold (required, finite).
    pub threshold: Option<f64>,
    /// Clear threshold (hysteresis); defaults to `threshold`.
    pub clear_at: Option<f64>,
    /// How long the condition must hold before the alarm raises; default 0.
    pub on_delay_secs: Option<u64>,
    /// `low`, `medium`, `high` or `urgent` (required).
    pub priority: Option<Priority>,
    /// Text for the operator; defaults to "`<metric>` `<condition>` `<threshold>`".
    pub message: Option<String>,
    /// Exact-match filters on the scope (KPI rules) or the asset (signal rules).
    pub site: Option<String>,
    pub area: Option<String>,
    pub line: Option<String>,
    pub asset: Option<String>,
}

/// Kind of an alert hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    /// Structured `tracing` event; level by priority.
    Log,
    /// HTTP POST of a JSON envelope, optionally signed (Standard Webhooks).
    Webhook,
}

/// One `[[alerts.hooks]]` entry as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HookSpec {
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

/// One configuration problem, with the full key path (shared with every crate).
pub use ctower_model::ConfigIssue;

/// What a rule watches.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleSource {
    /// `record.metric(metric)` of KPI records at `level`.
    Kpi { level: Level, metric: Arc<str> },
    /// `stat` of the windows of signal `signal`.
    Signal { signal: Arc<str>, stat: Stat },
}

/// Exact-match filters; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeFilter {
    pub site: Option<Arc<str>>,
    pub area: Option<Arc<str>>,
    pub line: Option<Arc<str>>,
    pub asset: Option<Arc<str>>,
}

/// A validated threshold rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: Arc<str>,
    pub source: RuleSource,
    pub condition: Condition,
    pub threshold: f64,
    /// Already checked against `threshold` for the condition's direction.
    pub clear_at: f64,
    pub on_delay_ms: i64,
    pub priority: Priority,
    pub message: Arc<str>,
    pub filter: ScopeFilter,
}

impl Rule {
    /// The metric name for KPI rules, `"{signal}.{stat}"` for signal rules.
    pub fn metric_label(&self) -> Arc<str> {
        match &self.source {
            RuleSource::Kpi { metric, .. } => metric.clone(),
            RuleSource::Signal { signal, stat } => format!("{signal}.{}", stat.as_str()).into(),
        }
    }

    /// Whether `value` is in alarm (strictly beyond the threshold).
    pub fn trips(&self, value: f64) -> bool {
        match self.condition {
            Condition::Above => value > self.threshold,
            Condition::Below => value < self.threshold,
        }
    }

    /// Whether `value` has passed `clear_at` back to normal.
    pub fn clears(&self, value: f64) -> bool {
        match self.condition {
            Condition::Above => value <= self.clear_at,
            Condition::Below => value >= self.clear_at,
        }
    }
}

/// A webhook signing secret. Never printed: `Debug` shows `<redacted>`.
///
/// A secret of the Standard Webhooks form `whsec_<base64>` is used as the
/// base64-decoded bytes; any other string is used as its UTF-8 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
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

    pub fn key(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// A validated log hook.
#[derive(Debug, Clone, PartialEq)]
pub struct LogHook {
    pub name: Arc<str>,
    pub min_priority: Priority,
}

/// A validated webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookHook {
    pub name: Arc<str>,
    pub min_priority: Priority,
    pub url: String,
    pub timeout: Duration,
    pub max_retries: u32,
    pub retry_base: Duration,
    pub secret: Option<WebhookSecret>,
}

/// A validated hook.
#[derive(Debug, Clone, PartialEq)]
pub enum Hook {
    Log(LogHook),
    Webhook(WebhookHook),
}

impl Hook {
    pub fn name(&self) -> &Arc<str> {
        match self {
            Hook::Log(h) => &h.name,
            Hook::Webhook(h) => &h.name,
        }
    }

    pub fn min_priority(&self) -> Priority {
        match self {
            Hook::Log(h) => h.min_priority,
            Hook::Webhook(h) => h.min_priority,
        }
    }
}

fn join_key(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else {
        format!("{prefix}.{rest}")
    }
}

fn finite(v: Option<f64>, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<f64> {
    match v {
        Some(x) if x.is_finite() => Some(x),
        Some(x) => {
            issues.push(ConfigIssue::new(
                key.to_string(),
                format!("must be a finite number, got {x}"),
            ));
            None
        }
        None => None,
    }
}

fn non_empty(v: &Option<String>, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<Arc<str>> {
    match v {
        Some(s) if s.trim().is_empty() => {
            issues.push(ConfigIssue::new(key.to_string(), "must not be empty"));
            None
        }
        Some(s) => Some(s.as_str().into()),
        None => None,
    }
}

fn missing(key: String, what: &str) -> ConfigIssue {
    ConfigIssue::new(key, format!("missing: {what}"))
}

fn not_allowed(key: String, source: &str, belongs: &str) -> ConfigIssue {
    ConfigIssue::new(
        key,
        format!("not allowed for a \"{source}\" rule (only for \"{belongs}\" rules)"),
    )
}

impl AlertsConfig {
    /// Checks the configuration and builds the rules and hooks. Every
    /// problem is reported (all of them, in key order), each with its key
    /// path below `key_prefix` (e.g. `"alerts"`). Webhook secrets are read
    /// from the process environment.
    pub fn validate(&self, key_prefix: &str) -> Result<(Vec<Rule>, Vec<Hook>), Vec<ConfigIssue>> {
        self.validate_with_env(key_prefix, &|name| std::env::var(name).ok())
    }

    /// [`validate`](Self::validate) with an explicit environment lookup.
    pub fn validate_with_env(
        &self,
        key_prefix: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Vec<Rule>, Vec<Hook>), Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let mut rules = Vec::new();
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, spec) in self.rules.iter().enumerate() {
            let base = join_key(key_prefix, &format!("rules[{i}]"));
            if let Some(name) = spec.name.as_deref() {
                if let Some(first) = names.get(name) {
                    issues.push(ConfigIssue::new(
                        format!("{base}.name"),
                        format!("duplicate rule name `{name}` (first used by rules[{first}])"),
                    ));
                } else {
                    names.insert(name, i);
                }
            }
            if let Some(rule) = validate_rule(spec, &base, &mut issues) {
                rules.push(rule);
            }
        }
        let mut hooks = Vec::new();
        let mut hook_names: BTreeMap<String, usize> = BTreeMap::new();
        for (i, spec) in self.hooks.iter().enumerate() {
            let base = join_key(key_prefix, &format!("hooks[{i}]"));
            if let Some(hook) = validate_hook(spec, i, &base, env, &mut issues) {
                let name = hook.name().to_string();
                if let Some(first) = hook_names.get(&name) {
                    issues.push(ConfigIssue::new(
                        format!("{base}.name"),
                        format!("duplicate hook name `{name}` (first used by hooks[{first}])"),
                    ));
                } else {
                    hook_names.insert(name, i);
                    hooks.push(hook);
                }
            }
        }
        if issues.is_empty() {
            Ok((rules, hooks))
        } else {
            Err(issues)
        }
    }

    /// [`validate`](Self::validate) with the issues folded into one [`AlertsError`].
    pub fn build(&self, key_prefix: &str) -> Result<(Vec<Rule>, Vec<Hook>), AlertsError> {
        self.validate(key_prefix).map_err(AlertsError::Config)
    }
}

fn validate_rule(spec: &RuleSpec, base: &str, issues: &mut Vec<ConfigIssue>) -> Option<Rule> {
    let k = |field: &str| format!("{base}.{field}");
    let before = issues.len();

    let name = non_empty(&spec.name, &k("name"), issues);
    if spec.name.is_none() {
        issues.push(missing(k("name"), "every rule needs a unique name"));
    }
    if spec.source.is_none() {
        issues.push(missing(k("source"), "\"kpi\" or \"signal\""));
    }

    let metric = non_empty(&spec.metric, &k("metric"), issues);
    let signal = non_empty(&spec.signal, &k("signal"), issues);
    let source = match spec.source {
        Some(SourceKind::Kpi) => {
            if spec.signal.is_some() {
                issues.push(not_allowed(k("signal"), "kpi", "signal"));
            }
            if spec.stat.is_some() {
                issues.push(not_allowed(k("stat"), "kpi", "signal"));
            }
            if spec.level.is_none() {
                issues.push(missing(k("level"), "group, site, line or asset"));
            }
            if spec.metric.is_none() {
                issues.push(missing(k("metric"), "a KPI name"));
            }
            if let Some(m) = &metric {
                if !KpiRecord::METRICS.contains(&m.as_ref()) {
                    issues.push(ConfigIssue::new(
                        k("metric"),
                        format!(
                            "unknown metric `{m}` (expected one of: {})",
                            KpiRecord::METRICS.join(", ")
                        ),
                    ));
                }
            }
            if let Some(level) = spec.level {
                let below: [(&str, &Option<String>, Level); 4] = [
                    ("site", &spec.site, Level::Site),
                    ("area", &spec.area, Level::Line),
                    ("line", &spec.line, Level::Line),
                    ("asset", &spec.asset, Level::Asset),
                ];
                for (field, value, needs) in below {
                    if value.is_some() && level < needs {
                        issues.push(ConfigIssue::new(
                            k(field),
                            format!(
                                "a \"{}\"-level KPI has no {field}: this filter would never match",
                                level.as_str()
                            ),
                        ));
                    }
                }
            }
            match (spec.level, metric.clone()) {
                (Some(level), Some(metric)) => Some(RuleSource::Kpi { level, metric }),
                _ => None,
            }
        }
        Some(SourceKind::Signal) => {
            if spec.level.is_some() {
                issues.push(not_allowed(k("level"), "signal", "kpi"));
            }
            if spec.metric.is_some() {
                issues.push(not_allowed(k("metric"), "signal", "kpi"));
            }
            if spec.signal.is_none() {
                issues.push(missing(k("signal"), "the signal name"));
            }
            if spec.stat.is_none() {
                issues.push(missing(k("stat"), "min, max, mean or last"));
            }
            match (signal.clone(), spec.stat) {
                (Some(signal), Some(stat)) => Some(RuleSource::Signal { signal, stat }),
                _ => None,
            }
        }
        None => None,
    };

    if spec.condition.is_none() {
        issues.push(missing(k("condition"), "\"above\" or \"below\""));
    }
    if spec.threshold.is_none() {
        issues.push(missing(k("threshold"), "a number"));
    }
    let threshold = finite(spec.threshold, &k("threshold"), issues);
    let clear_at = finite(spec.clear_at, &k("clear_at"), issues);
    if let (Some(cond), Some(t), Some(c)) = (spec.condition, threshold, clear_at) {
        match cond {
            Condition::Below if c < t => issues.push(ConfigIssue::new(
                k("clear_at"),
                format!("must be >= threshold ({t}) for a \"below\" rule"),
            )),
            Condition::Above if c > t => issues.push(ConfigIssue::new(
                k("clear_at"),
                format!("must be <= threshold ({t}) for an \"above\" rule"),
            )),
            _ => {}
        }
    }
    let on_delay_secs = spec.on_delay_secs.unwrap_or(0);
    if on_delay_secs > MAX_ON_DELAY_SECS {
        issues.push(ConfigIssue::new(
            k("on_delay_secs"),
            format!("{on_delay_secs} s is more than the maximum of {MAX_ON_DELAY_SECS} s (7 days)"),
        ));
    }
    if spec.priority.is_none() {
        issues.push(missing(k("priority"), "low, medium, high or urgent"));
    }
    let message = non_empty(&spec.message, &k("message"), issues);
    let filter = ScopeFilter {
        site: non_empty(&spec.site, &k("site"), issues),
        area: non_empty(&spec.area, &k("area"), issues),
        line: non_empty(&spec.line, &k("line"), issues),
        asset: non_empty(&spec.asset, &k("asset"), issues),
    };

    if issues.len() != before {
        return None;
    }
    let (name, source, condition, threshold, priority) =
        (name?, source?, spec.condition?, threshold?, spec.priority?);
    let clear_at = clear_at.unwrap_or(threshold);
    let rule = Rule {
        name,
        source,
        condition,
        threshold,
        clear_at,
        // Bounded by MAX_ON_DELAY_SECS above, so this cannot overflow.
        on_delay_ms: (on_delay_secs * 1000) as i64,
        priority,
        message: Arc::from(""),
        filter,
    };
    let message = message.unwrap_or_else(|| {
        format!(
            "{} {} {}",
            rule.metric_label(),
            condition.as_str(),
            threshold
        )
        .into()
    });
    Some(Rule { message, ..rule })
}

fn validate_hook(
    spec: &HookSpec,
    index: usize,
    base: &str,
    env: &dyn Fn(&str) -> Option<String>,
    issues: &mut Vec<ConfigIssue>,
) -> Option<Hook> {
    let k = |field: &str| format!("{base}.{field}");
    let before = issues.len();
    let name = non_empty(&spec.name, &k("name"), issues);
    let min_priority = spec.min_priority.unwrap_or(Priority::Low);
    match spec.kind {
        None => {
            issues.push(missing(k("kind"), "\"log\" or \"webhook\""));
            None
        }
        Some(HookKind::Log) => {
            let extra: [(&str, bool); 5] = [
                ("url", spec.url.is_some()),
                ("timeout_secs", spec.timeout_secs.is_some()),
                ("max_retries", spec.max_retries.is_some()),
                ("retry_base_ms", spec.retry_base_ms.is_some()),
                ("secret_env", spec.secret_env.is_some()),
            ];
            for (field, present) in extra {
                if present {
                    issues.push(ConfigIssue::new(
                        k(field),
                        "not allowed for a \"log\" hook (only for \"webhook\" hooks)",
                    ));
                }
            }
            (issues.len() == before).then(|| {
                Hook::Log(LogHook {
                    name: name.unwrap_or_else(|| format!("log-{index}").into()),
                    min_priority,
                })
            })
        }
        Some(HookKind::Webhook) => {
            let url = match spec.url.as_deref() {
                None => {
                    issues.push(missing(k("url"), "an http:// or https:// URL"));
                    None
                }
                Some(u) => match check_url(u) {
                    Ok(()) => Some(u.to_string()),
                    Err(msg) => {
                        issues.push(ConfigIssue::new(k("url"), msg));
                        None
                    }
                },
            };
            let timeout_secs = spec.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
            if !(1..=300).contains(&timeout_secs) {
                issues.push(ConfigIssue::new(
                    k("timeout_secs"),
                    format!("must be between 1 and 300, got {timeout_secs}"),
                ));
            }
            let max_retries = spec.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
            if max_retries > 20 {
                issues.push(ConfigIssue::new(
                    k("max_retries"),
                    format!("must be at most 20, got {max_retries}"),
                ));
            }
            let retry_base_ms = spec.retry_base_ms.unwrap_or(DEFAULT_RETRY_BASE_MS);
            if !(1..=60_000).contains(&retry_base_ms) {
                issues.push(ConfigIssue::new(
                    k("retry_base_ms"),
                    format!("must be between 1 and 60000, got {retry_base_ms}"),
                ));
            }
            let secret = match spec.secret_env.as_deref() {
                None => None,
                Some(var) if var.trim().is_empty() => {
                    issues.push(ConfigIssue::new(k("secret_env"), "must not be empty"));
                    None
                }
                // The secret's value is never put into an issue or a log.
                Some(var) => match env(var) {
                    None => {
                        issues.push(ConfigIssue::new(
                            k("secret_env"),
                            format!("environment variable `{var}` is not set"),
                        ));
                        None
                    }
                    Some(value) => match WebhookSecret::parse(&value) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            issues.push(ConfigIssue::new(
                                k("secret_env"),
                                format!("environment variable `{var}`: {e}"),
                            ));
                            None
                        }
                    },
                },
            };
            if issues.len() != before {
                return None;
            }
            Some(Hook::Webhook(WebhookHook {
                name: name.unwrap_or_else(|| format!("webhook-{index}").into()),
                min_priority,
                url: url?,
                timeout: Duration::from_secs(timeout_secs),
                max_retries,
                retry_base: Duration::from_millis(retry_base_ms),
                secret,
            }))
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

    fn parse(toml_text: &str) -> AlertsConfig {
        #[derive(Deserialize)]
        struct Root {
            alerts: AlertsConfig,
        }
        match toml::from_str::<Root>(toml_text) {
            Ok(r) => r.alerts,
            Err(e) => panic!("bad test TOML: {e}"),
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const GOOD: &str = r#"
        [[alerts.rules]]
        name = "line-availability-low"
        source = "kpi"
        level = "line"
        metric = "availability"
        condition = "below"
        threshold = 0.5
        clear_at = 0.7
        on_delay_secs = 600
        priority = "high"
        message = "Line availability below 50 %"
        site = "lyon-fill"

        [[alerts.rules]]
        name = "pw-conductivity-high"
        source = "signal"
        signal = "conductivity_us_cm"
        stat = "max"
        condition = "above"
        threshold = 1.3
        priority = "urgent"

        [[alerts.hooks]]
        kind = "log"

        [[alerts.hooks]]
        kind = "webhook"
        name = "oncall"
        url = "http://127.0.0.1:9000/hooks/ctower"
        secret_env = "CTOWER_WEBHOOK_SECRET"
        min_priority = "high"
    "#;

    #[test]
    fn good_config_builds_rules_and_hooks() {
        let cfg = parse(GOOD);
        let env = |k: &str| (k == "CTOWER_WEBHOOK_SECRET").then(|| "s3cret".to_string());
        let (rules, hooks) = match cfg.validate_with_env("alerts", &env) {
            Ok(x) => x,
            Err(issues) => panic!("unexpected issues: {issues:?}"),
        };
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].on_delay_ms, 600_000);
        assert_eq!(rules[0].filter.site.as_deref(), Some("lyon-fill"));
        assert_eq!(
            rules[0].source,
            RuleSource::Kpi {
                level: Level::Line,
                metric: "availability".into()
            }
        );
        // Defaults: clear_at = threshold, on-delay 0, generated message.
        assert_eq!(rules[1].clear_at, 1.3);
        assert_eq!(rules[1].on_delay_ms, 0);
        assert_eq!(&*rules[1].message, "conductivity_us_cm.max above 1.3");
        assert_eq!(&*rules[1].metric_label(), "conductivity_us_cm.max");
        assert_eq!(hooks.len(), 2);
        assert_eq!(&**hooks[0].name(), "log-0");
        match &hooks[1] {
            Hook::Webhook(w) => {
                assert_eq!(w.timeout, Duration::from_secs(5));
                assert_eq!(w.max_retries, 3);
                assert_eq!(w.retry_base, Duration::from_millis(500));
                assert_eq!(w.min_priority, Priority::High);
                assert_eq!(w.secret.as_ref().map(|s| s.key()), Some(&b"s3cret"[..]));
                // The secret never shows in Debug output.
                assert!(!format!("{w:?}").contains("s3cret"));
            }
            other => panic!("expected a webhook, got {other:?}"),
        }
    }

    #[test]
    fn all_problems_are_reported_with_key_paths() {
        let cfg = parse(
            r#"
            [[alerts.rules]]
            name = "a"
            source = "kpi"
            level = "site"
            metric = "availabilty"
            condition = "below"
            threshold = 0.5
            clear_at = 0.4
            priority = "high"
            line = "l1"
            stat = "max"

            [[alerts.rules]]
            name = "a"
            source = "signal"
            metric = "oee"
            condition = "above"
            threshold = inf
            priority = "low"

            [[alerts.rules]]
            source = "kpi"
            level = "line"
            metric = "oee"
            condition = "above"
            threshold = 0.9
            clear_at = 0.95
            on_delay_secs = 99999999

            [[alerts.hooks]]
            kind = "webhook"
            url = "ftp://example.org/x"
            timeout_secs = 0
            secret_env = "NOPE"

            [[alerts.hooks]]
            kind = "log"
            url = "http://x"

            [[alerts.hooks]]
            kind = "webhook"
            url = "not a url"
            "#,
        );
        let issues = match cfg.validate_with_env("alerts", &no_env) {
            Ok(_) => panic!("expected issues"),
            Err(i) => i,
        };
        let text: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
        let has = |key: &str, needle: &str| {
            assert!(
                issues
                    .iter()
                    .any(|i| i.key == key && i.message.contains(needle)),
                "no issue `{key}` containing `{needle}` in {text:#?}"
            )
        };
        has("alerts.rules[0].metric", "unknown metric `availabilty`");
        has(
            "alerts.rules[0].clear_at",
            "must be >= threshold (0.5) for a \"below\" rule",
        );
        has("alerts.rules[0].line", "never match");
        has("alerts.rules[0].stat", "not allowed for a \"kpi\" rule");
        has("alerts.rules[1].name", "duplicate rule name `a`");
        has(
            "alerts.rules[1].metric",
            "not allowed for a \"signal\" rule",
        );
        has("alerts.rules[1].signal", "missing");
        has("alerts.rules[1].stat", "missing");
        has("alerts.rules[1].threshold", "finite");
        has("alerts.rules[2].name", "missing");
        has("alerts.rules[2].priority", "missing");
        has("alerts.rules[2].clear_at", "must be <= threshold (0.9)");
        has("alerts.rules[2].on_delay_secs", "maximum");
        has("alerts.hooks[0].url", "scheme must be http or https");
        has("alerts.hooks[0].timeout_secs", "between 1 and 300");
        has("alerts.hooks[0].secret_env", "`NOPE` is not set");
        has("alerts.hooks[1].url", "not allowed for a \"log\" hook");
        has("alerts.hooks[2].url", "whitespace");
        assert_eq!(
            ConfigIssue::new("a.b", "bad").to_string(),
            "a.b: bad".to_string()
        );
    }

    #[test]
    fn unknown_keys_are_rejected_at_load() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Root {
            alerts: AlertsConfig,
        }
        let r = toml::from_str::<Root>(
            r#"
            [[alerts.rules]]
            name = "x"
            treshold = 1.0
            "#,
        );
        let err = match r {
            Ok(v) => panic!("accepted unknown key: {v:?}"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("treshold"), "{err}");
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

    #[test]
    fn whsec_secrets_are_base64_decoded() {
        let s = WebhookSecret::parse("whsec_aGVsbG8=").ok();
        assert_eq!(s.as_ref().map(|s| s.key()), Some(&b"hello"[..]));
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        assert!(WebhookSecret::parse("").is_err());
        assert_eq!(format!("{:?}", s), "Some(WebhookSecret(<redacted>))");
    }
}
