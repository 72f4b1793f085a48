//! Threshold rules: one `[[alerts.rules]]` entry as written
//! ([`RuleConfig`]) and as checked ([`Rule`]).

use super::{finite, missing, non_empty};
use ctower_model::{key_field, ConfigIssue, KpiRecord, Level, Priority};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Longest accepted on-delay (7 days): a larger one is almost surely a unit mix-up.
pub const MAX_ON_DELAY_SECS: u64 = 7 * 24 * 3600;

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
    /// The serde name: `above` or `below`.
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
    /// The smallest sample of the window.
    Min,
    /// The largest sample of the window.
    Max,
    /// The mean of the window's samples.
    Mean,
    /// The window's last sample.
    Last,
}

impl Stat {
    /// The serde name: `min`, `max`, `mean` or `last`.
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
/// that checking can name each missing one; see [`RuleConfig::check`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
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
    /// Exact-match filter on the site of the scope (KPI rules) or asset (signal rules).
    pub site: Option<String>,
    /// Exact-match filter on the area.
    pub area: Option<String>,
    /// Exact-match filter on the line.
    pub line: Option<String>,
    /// Exact-match filter on the asset.
    pub asset: Option<String>,
}

/// What a rule watches.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleSource {
    /// `record.metric(metric)` of KPI records at `level`.
    Kpi {
        /// The roll-up level of the records watched.
        level: Level,
        /// A name of [`KpiRecord::METRICS`].
        metric: Arc<str>,
    },
    /// `stat` of the windows of signal `signal`.
    Signal {
        /// The signal name.
        signal: Arc<str>,
        /// The statistic of its windows.
        stat: Stat,
    },
}

impl RuleSource {
    /// The metric name for KPI rules, `"{signal}.{stat}"` for signal rules.
    fn label(&self) -> Arc<str> {
        match self {
            RuleSource::Kpi { metric, .. } => metric.clone(),
            RuleSource::Signal { signal, stat } => format!("{signal}.{}", stat.as_str()).into(),
        }
    }
}

/// Exact-match filters; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeFilter {
    /// Only this site.
    pub site: Option<Arc<str>>,
    /// Only this area.
    pub area: Option<Arc<str>>,
    /// Only this line.
    pub line: Option<Arc<str>>,
    /// Only this asset.
    pub asset: Option<Arc<str>>,
}

/// A checked threshold rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique among the rules.
    pub name: Arc<str>,
    /// What the rule watches.
    pub source: RuleSource,
    /// Which side of the threshold is abnormal.
    pub condition: Condition,
    /// Raise threshold (finite).
    pub threshold: f64,
    /// Clear threshold; already checked against `threshold` for the
    /// condition's direction.
    pub clear_at: f64,
    /// How long the condition must hold before the alarm raises.
    pub on_delay_ms: i64,
    /// Priority of the alarm's events.
    pub priority: Priority,
    /// Text for the operator.
    pub message: Arc<str>,
    /// Which scopes (KPI rules) or assets (signal rules) the rule applies to.
    pub filter: ScopeFilter,
}

impl Rule {
    /// The metric name for KPI rules, `"{signal}.{stat}"` for signal rules.
    pub fn metric_label(&self) -> Arc<str> {
        self.source.label()
    }

    /// The signal whose every sample this rule watches (none yet: rules
    /// watch windows).
    pub fn sample_signal(&self) -> Option<&Arc<str>> {
        None
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

fn not_allowed(key: String, source: &str, belongs: &str) -> ConfigIssue {
    ConfigIssue::new(
        key,
        format!("not allowed for a \"{source}\" rule (only for \"{belongs}\" rules)"),
    )
}

impl RuleConfig {
    /// Checks one rule; `key` is its path, e.g. `alerts.rules[1]`. Every
    /// problem is pushed with its full key; `None` exactly when one was.
    /// (Unique names are checked by [`AlertsConfig::check`](super::AlertsConfig::check).)
    pub fn check(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<Rule> {
        let k = |field: &str| key_field(key, field);
        let before = issues.len();
        let name = non_empty(&self.name, &k("name"), issues);
        if self.name.is_none() {
            issues.push(missing(k("name"), "every rule needs a unique name"));
        }
        if self.source.is_none() {
            issues.push(missing(k("source"), "\"kpi\" or \"signal\""));
        }
        let source = self.check_source(key, issues);
        let thresholds = self.check_thresholds(key, issues);
        let on_delay_secs = self.on_delay_secs.unwrap_or(0);
        if on_delay_secs > MAX_ON_DELAY_SECS {
            issues.push(ConfigIssue::new(
                k("on_delay_secs"),
                format!(
                    "{on_delay_secs} s is more than the maximum of {MAX_ON_DELAY_SECS} s (7 days)"
                ),
            ));
        }
        if self.priority.is_none() {
            issues.push(missing(k("priority"), "low, medium, high or urgent"));
        }
        let message = non_empty(&self.message, &k("message"), issues);
        let filter = self.check_filter(key, issues);
        if issues.len() != before {
            return None;
        }
        let (source, (condition, threshold, clear_at)) = (source?, thresholds?);
        let message = message.unwrap_or_else(|| {
            format!("{} {} {}", source.label(), condition.as_str(), threshold).into()
        });
        Some(Rule {
            name: name?,
            source,
            condition,
            threshold,
            clear_at,
            // Bounded by MAX_ON_DELAY_SECS above, so this cannot overflow.
            on_delay_ms: (on_delay_secs * 1000) as i64,
            priority: self.priority?,
            message,
            filter,
        })
    }

    /// `metric`/`signal` and the fields of the rule's source kind.
    fn check_source(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<RuleSource> {
        let metric = non_empty(&self.metric, &key_field(key, "metric"), issues);
        let signal = non_empty(&self.signal, &key_field(key, "signal"), issues);
        match self.source? {
            SourceKind::Kpi => self.check_kpi(key, metric, issues),
            SourceKind::Signal => self.check_signal(key, signal, issues),
        }
    }

    /// A `kpi` rule: a level, a known metric, no signal fields, and no
    /// filter on a part of the scope the level does not have.
    fn check_kpi(
        &self,
        key: &str,
        metric: Option<Arc<str>>,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<RuleSource> {
        let k = |field: &str| key_field(key, field);
        if self.signal.is_some() {
            issues.push(not_allowed(k("signal"), "kpi", "signal"));
        }
        if self.stat.is_some() {
            issues.push(not_allowed(k("stat"), "kpi", "signal"));
        }
        if self.level.is_none() {
            issues.push(missing(k("level"), "group, site, line or asset"));
        }
        if self.metric.is_none() {
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
        if let Some(level) = self.level {
            self.check_filter_levels(key, level, issues);
        }
        Some(RuleSource::Kpi {
            level: self.level?,
            metric: metric?,
        })
    }

    /// A filter below the level of a KPI rule would never match.
    fn check_filter_levels(&self, key: &str, level: Level, issues: &mut Vec<ConfigIssue>) {
        let below: [(&str, &Option<String>, Level); 4] = [
            ("site", &self.site, Level::Site),
            ("area", &self.area, Level::Line),
            ("line", &self.line, Level::Line),
            ("asset", &self.asset, Level::Asset),
        ];
        for (field, value, needs) in below {
            if value.is_some() && level < needs {
                issues.push(ConfigIssue::new(
                    key_field(key, field),
                    format!(
                        "a \"{}\"-level KPI has no {field}: this filter would never match",
                        level.as_str()
                    ),
                ));
            }
        }
    }

    /// A `signal` rule: a signal and a statistic, no KPI fields.
    fn check_signal(
        &self,
        key: &str,
        signal: Option<Arc<str>>,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<RuleSource> {
        let k = |field: &str| key_field(key, field);
        if self.level.is_some() {
            issues.push(not_allowed(k("level"), "signal", "kpi"));
        }
        if self.metric.is_some() {
            issues.push(not_allowed(k("metric"), "signal", "kpi"));
        }
        if self.signal.is_none() {
            issues.push(missing(k("signal"), "the signal name"));
        }
        if self.stat.is_none() {
            issues.push(missing(k("stat"), "min, max, mean or last"));
        }
        Some(RuleSource::Signal {
            signal: signal?,
            stat: self.stat?,
        })
    }

    /// `condition`, `threshold` and `clear_at` (hysteresis on the right
    /// side); `clear_at` defaults to the threshold.
    fn check_thresholds(
        &self,
        key: &str,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<(Condition, f64, f64)> {
        let k = |field: &str| key_field(key, field);
        if self.condition.is_none() {
            issues.push(missing(k("condition"), "\"above\" or \"below\""));
        }
        if self.threshold.is_none() {
            issues.push(missing(k("threshold"), "a number"));
        }
        let threshold = finite(self.threshold, &k("threshold"), issues);
        let clear_at = finite(self.clear_at, &k("clear_at"), issues);
        if let (Some(cond), Some(t), Some(c)) = (self.condition, threshold, clear_at) {
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
        let threshold = threshold?;
        Some((self.condition?, threshold, clear_at.unwrap_or(threshold)))
    }

    /// The scope filters; each given one must not be empty.
    fn check_filter(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> ScopeFilter {
        let k = |field: &str| key_field(key, field);
        ScopeFilter {
            site: non_empty(&self.site, &k("site"), issues),
            area: non_empty(&self.area, &k("area"), issues),
            line: non_empty(&self.line, &k("line"), issues),
            asset: non_empty(&self.asset, &k("asset"), issues),
        }
    }
}
