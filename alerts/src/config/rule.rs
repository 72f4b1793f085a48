//! Threshold rules: one `[[alerts.rules]]` entry as written
//! ([`RuleConfig`]) and as checked ([`Rule`]).

use super::{finite, missing, non_empty};
use crate::detect::Kind;
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
    /// Every sample of a telemetry signal, as it arrives (process alarms).
    Sample,
}

/// A rule's kind as written (see [`crate::detect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KindName {
    /// Beyond a threshold (the default).
    Threshold,
    /// Slope per minute beyond a threshold.
    RateOfChange,
    /// No data for a while.
    Deadman,
    /// EWMA control chart.
    Ewma,
    /// Western Electric run rules.
    Spc,
    /// Tabular CUSUM against a target.
    Cusum,
}

/// Ready-made rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// USP <645>: purified-water conductivity above 1.3 µS/cm, per sample
    /// of `conductivity_us_cm`, urgent.
    UspConductivity,
    /// USP <643>: purified-water TOC above 500 ppb, per sample of
    /// `toc_ppb`, urgent.
    UspToc,
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
    /// How long the condition must be gone before the alarm clears; default 0.
    pub off_delay_secs: Option<u64>,
    /// `threshold` (default), `rate_of_change`, `deadman`, `ewma`, `spc` or `cusum`.
    pub kind: Option<KindName>,
    /// Rate of change: the slope is taken over this span, 1..=86400 s.
    pub rate_window_secs: Option<u64>,
    /// Deadman: a silence this long (event time) raises, 1..=604800 s.
    pub silence_secs: Option<u64>,
    /// EWMA: weight of the newest input, in (0, 1]; default 0.2. (`threshold`
    /// is the limit L in sigmas, default 4.)
    pub ewma_lambda: Option<f64>,
    /// EWMA, SPC: inputs that make the baseline, 5..=100000; default 30.
    pub baseline_samples: Option<usize>,
    /// CUSUM: the expected value.
    pub cusum_target: Option<f64>,
    /// CUSUM: the allowance per input (k), ≥ 0; default 0.
    pub cusum_slack: Option<f64>,
    /// Sample rules: suppressed by design while the asset's line is in one
    /// of these machine states (`planned_stop`, `changeover`, `no_shift`,
    /// `unknown`): a machine of the line reports it.
    pub suppress_when: Option<Vec<ctower_model::Bucket>>,
    /// A ready-made rule: `usp_conductivity` or `usp_toc` (fills source,
    /// signal, condition, threshold, priority and message).
    pub preset: Option<Preset>,
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
    /// Every sample of signal `signal`, as it arrives.
    Sample {
        /// The signal name.
        signal: Arc<str>,
    },
}

impl RuleSource {
    /// The metric name for KPI rules, `"{signal}.{stat}"` for signal rules.
    fn label(&self) -> Arc<str> {
        match self {
            RuleSource::Kpi { metric, .. } => metric.clone(),
            RuleSource::Signal { signal, stat } => format!("{signal}.{}", stat.as_str()).into(),
            RuleSource::Sample { signal } => signal.clone(),
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
    /// How long the condition must be gone before the alarm clears.
    pub off_delay_ms: i64,
    /// What the condition is.
    pub kind: Kind,
    /// Machine states of the line that suppress its alarms by design.
    pub suppress_when: Vec<ctower_model::Bucket>,
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

    /// The signal whose every sample this rule watches (a `sample` rule).
    pub fn sample_signal(&self) -> Option<&Arc<str>> {
        match &self.source {
            RuleSource::Sample { signal } => Some(signal),
            _ => None,
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
        let cfg = self.with_preset();
        cfg.check_filled(key, issues)
    }

    /// This rule with its preset's fields filled in where not given.
    fn with_preset(&self) -> RuleConfig {
        let mut c = self.clone();
        let Some(preset) = self.preset else {
            return c;
        };
        let (signal, limit, text) = match preset {
            Preset::UspConductivity => (
                "conductivity_us_cm",
                1.3,
                "Purified water conductivity above the USP <645> limit of 1.3 µS/cm",
            ),
            Preset::UspToc => (
                "toc_ppb",
                500.0,
                "Purified water TOC above the USP <643> limit of 500 ppb",
            ),
        };
        c.source.get_or_insert(SourceKind::Sample);
        c.signal.get_or_insert_with(|| signal.to_string());
        if c.source == Some(SourceKind::Signal) {
            c.stat.get_or_insert(Stat::Max);
        }
        c.condition.get_or_insert(Condition::Above);
        c.threshold.get_or_insert(limit);
        c.priority.get_or_insert(Priority::Urgent);
        c.message.get_or_insert_with(|| text.to_string());
        c
    }

    fn check_filled(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<Rule> {
        let k = |field: &str| key_field(key, field);
        let before = issues.len();
        let name = non_empty(&self.name, &k("name"), issues);
        if self.name.is_none() {
            issues.push(missing(k("name"), "every rule needs a unique name"));
        }
        if self.source.is_none() {
            issues.push(missing(k("source"), "\"kpi\", \"signal\" or \"sample\""));
        }
        let source = self.check_source(key, issues);
        let kind = self.check_kind(key, issues);
        let thresholds =
            self.check_thresholds(key, self.kind.unwrap_or(KindName::Threshold), issues);
        let delay = |v: Option<u64>, field: &str, issues: &mut Vec<ConfigIssue>| {
            let secs = v.unwrap_or(0);
            if secs > MAX_ON_DELAY_SECS {
                issues.push(ConfigIssue::new(
                    k(field),
                    format!("{secs} s is more than the maximum of {MAX_ON_DELAY_SECS} s (7 days)"),
                ));
            }
            // Bounded by MAX_ON_DELAY_SECS, so this cannot overflow.
            (secs.min(MAX_ON_DELAY_SECS) * 1000) as i64
        };
        let on_delay_ms = delay(self.on_delay_secs, "on_delay_secs", issues);
        let off_delay_ms = delay(self.off_delay_secs, "off_delay_secs", issues);
        if self.priority.is_none() {
            issues.push(missing(k("priority"), "low, medium, high or urgent"));
        }
        let message = non_empty(&self.message, &k("message"), issues);
        let filter = self.check_filter(key, issues);
        let suppress_when = self.check_suppression(key, issues);
        if issues.len() != before {
            return None;
        }
        let (source, kind, (condition, threshold, clear_at)) = (source?, kind?, thresholds?);
        let message = message.unwrap_or_else(|| match kind {
            Kind::Threshold => {
                format!("{} {} {}", source.label(), condition.as_str(), threshold).into()
            }
            Kind::Ewma { .. } => format!(
                "{} drifts: its EWMA is beyond {threshold} sigma (p = {:.2e} per sample in control)",
                source.label(),
                crate::detect::false_alarm_probability(threshold)
            )
            .into(),
            _ => format!("{} {}", source.label(), kind.as_str()).into(),
        });
        Some(Rule {
            name: name?,
            source,
            condition,
            threshold,
            clear_at,
            on_delay_ms,
            off_delay_ms,
            kind,
            suppress_when,
            priority: self.priority?,
            message,
            filter,
        })
    }

    /// `kind` and its own fields; the fields of other kinds are refused.
    fn check_kind(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<Kind> {
        let k = |field: &str| key_field(key, field);
        let name = self.kind.unwrap_or(KindName::Threshold);
        let own: &[&str] = match name {
            KindName::Threshold => &[],
            KindName::RateOfChange => &["rate_window_secs"],
            KindName::Deadman => &["silence_secs"],
            KindName::Ewma => &["ewma_lambda", "baseline_samples"],
            KindName::Spc => &["baseline_samples"],
            KindName::Cusum => &["cusum_target", "cusum_slack"],
        };
        let given = [
            ("rate_window_secs", self.rate_window_secs.is_some()),
            ("silence_secs", self.silence_secs.is_some()),
            ("ewma_lambda", self.ewma_lambda.is_some()),
            ("baseline_samples", self.baseline_samples.is_some()),
            ("cusum_target", self.cusum_target.is_some()),
            ("cusum_slack", self.cusum_slack.is_some()),
        ];
        for (field, present) in given {
            if present && !own.contains(&field) {
                issues.push(ConfigIssue::new(
                    k(field),
                    format!("not allowed for a rule of kind `{}`", kind_label(name)),
                ));
            }
        }
        let secs = |v: Option<u64>, field: &str, max: u64, issues: &mut Vec<ConfigIssue>| match v {
            None => {
                issues.push(missing(k(field), "a number of seconds"));
                None
            }
            Some(x) if x == 0 || x > max => {
                issues.push(ConfigIssue::new(
                    k(field),
                    format!("must be between 1 and {max}, got {x}"),
                ));
                None
            }
            Some(x) => Some(x as i64 * 1000),
        };
        let baseline = || {
            let n = self.baseline_samples.unwrap_or(30);
            if !(5..=100_000).contains(&n) {
                issues_push(
                    k("baseline_samples"),
                    format!("must be between 5 and 100000, got {n}"),
                )
            } else {
                Ok(n)
            }
        };
        match name {
            KindName::Threshold => Some(Kind::Threshold),
            KindName::RateOfChange => {
                secs(self.rate_window_secs, "rate_window_secs", 86_400, issues)
                    .map(|window_ms| Kind::RateOfChange { window_ms })
            }
            KindName::Deadman => {
                if self.source.is_some_and(|s| s != SourceKind::Sample) {
                    issues.push(ConfigIssue::new(
                        k("kind"),
                        "a deadman rule watches samples: set source = \"sample\"",
                    ));
                }
                secs(self.silence_secs, "silence_secs", 604_800, issues)
                    .map(|silence_ms| Kind::Deadman { silence_ms })
            }
            KindName::Ewma => {
                let lambda = finite(self.ewma_lambda, &k("ewma_lambda"), issues).unwrap_or(0.2);
                if !(lambda > 0.0 && lambda <= 1.0) {
                    issues.push(ConfigIssue::new(
                        k("ewma_lambda"),
                        format!("must be in (0, 1], got {lambda}"),
                    ));
                }
                match baseline() {
                    Ok(baseline) => Some(Kind::Ewma { lambda, baseline }),
                    Err(issue) => {
                        issues.push(issue);
                        None
                    }
                }
            }
            KindName::Spc => match baseline() {
                Ok(baseline) => Some(Kind::Spc { baseline }),
                Err(issue) => {
                    issues.push(issue);
                    None
                }
            },
            KindName::Cusum => {
                if self.cusum_target.is_none() {
                    issues.push(missing(k("cusum_target"), "the expected value"));
                }
                let target = finite(self.cusum_target, &k("cusum_target"), issues);
                let slack = finite(self.cusum_slack, &k("cusum_slack"), issues).unwrap_or(0.0);
                if slack < 0.0 {
                    issues.push(ConfigIssue::new(
                        k("cusum_slack"),
                        format!("must be >= 0, got {slack}"),
                    ));
                }
                Some(Kind::Cusum {
                    target: target?,
                    slack,
                })
            }
        }
    }

    /// `metric`/`signal` and the fields of the rule's source kind.
    fn check_source(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<RuleSource> {
        let metric = non_empty(&self.metric, &key_field(key, "metric"), issues);
        let signal = non_empty(&self.signal, &key_field(key, "signal"), issues);
        match self.source? {
            SourceKind::Kpi => self.check_kpi(key, metric, issues),
            SourceKind::Signal => self.check_signal(key, signal, issues),
            SourceKind::Sample => self.check_sample(key, signal, issues),
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

    /// `suppress_when`: sample rules only (a window rule's KPIs already
    /// leave planned stops, changeovers and time outside shifts out), and
    /// only the states that are no loss of their own.
    fn check_suppression(
        &self,
        key: &str,
        issues: &mut Vec<ConfigIssue>,
    ) -> Vec<ctower_model::Bucket> {
        use ctower_model::Bucket;
        let Some(states) = &self.suppress_when else {
            return Vec::new();
        };
        let k = key_field(key, "suppress_when");
        if self.source != Some(SourceKind::Sample) {
            issues.push(ConfigIssue::new(
                k.clone(),
                "only for sample rules (a window rule's KPIs already leave planned stops, changeovers and time outside shifts out)",
            ));
        }
        for b in states {
            if matches!(b, Bucket::Running | Bucket::UnplannedStop) {
                issues.push(ConfigIssue::new(
                    k.clone(),
                    format!("`{}` cannot suppress alarms by design (planned_stop, changeover, no_shift or unknown)", serde_json::to_value(b).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()),
                ));
            }
        }
        states.clone()
    }

    /// A `sample` rule: a signal, no statistic, no KPI fields.
    fn check_sample(
        &self,
        key: &str,
        signal: Option<Arc<str>>,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<RuleSource> {
        let k = |field: &str| key_field(key, field);
        for (field, present, belongs) in [
            ("level", self.level.is_some(), "kpi"),
            ("metric", self.metric.is_some(), "kpi"),
            ("stat", self.stat.is_some(), "signal"),
        ] {
            if present {
                issues.push(not_allowed(k(field), "sample", belongs));
            }
        }
        if self.signal.is_none() {
            issues.push(missing(k("signal"), "the signal name"));
        }
        Some(RuleSource::Sample { signal: signal? })
    }

    /// `condition`, `threshold` and `clear_at` (hysteresis on the right
    /// side); `clear_at` defaults to the threshold. What a kind needs:
    /// threshold and rate of change all three; CUSUM a condition and a
    /// positive decision interval (`clear_at` default 0); EWMA a threshold
    /// in sigmas (default 4) and no condition; deadman and SPC none.
    fn check_thresholds(
        &self,
        key: &str,
        kind: KindName,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<(Condition, f64, f64)> {
        let k = |field: &str| key_field(key, field);
        let refuse = |fields: &[(&str, bool)], issues: &mut Vec<ConfigIssue>| {
            for (field, present) in fields {
                if *present {
                    issues.push(ConfigIssue::new(
                        k(field),
                        format!("not allowed for a rule of kind `{}`", kind_label(kind)),
                    ));
                }
            }
        };
        match kind {
            KindName::Deadman | KindName::Spc => {
                refuse(
                    &[
                        ("condition", self.condition.is_some()),
                        ("threshold", self.threshold.is_some()),
                        ("clear_at", self.clear_at.is_some()),
                    ],
                    issues,
                );
                return Some((Condition::Above, 3.0, 3.0));
            }
            KindName::Ewma => {
                refuse(
                    &[
                        ("condition", self.condition.is_some()),
                        ("clear_at", self.clear_at.is_some()),
                    ],
                    issues,
                );
                let l = finite(self.threshold, &k("threshold"), issues).unwrap_or(4.0);
                if l <= 0.0 {
                    issues.push(ConfigIssue::new(
                        k("threshold"),
                        format!("the limit in sigmas must be > 0, got {l}"),
                    ));
                }
                return Some((Condition::Above, l, l));
            }
            KindName::Cusum => {
                if self.condition.is_none() {
                    issues.push(missing(
                        k("condition"),
                        "\"above\" (an upward drift) or \"below\"",
                    ));
                }
                if self.threshold.is_none() {
                    issues.push(missing(k("threshold"), "the decision interval h"));
                }
                let h = finite(self.threshold, &k("threshold"), issues);
                let c = finite(self.clear_at, &k("clear_at"), issues).unwrap_or(0.0);
                if let Some(h) = h {
                    if h <= 0.0 {
                        issues.push(ConfigIssue::new(
                            k("threshold"),
                            format!("the decision interval must be > 0, got {h}"),
                        ));
                    } else if !(0.0..h).contains(&c) {
                        issues.push(ConfigIssue::new(
                            k("clear_at"),
                            format!("must be in [0, threshold ({h})), got {c}"),
                        ));
                    }
                }
                return Some((self.condition?, h?, c));
            }
            _ => {}
        }
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

fn kind_label(k: KindName) -> &'static str {
    match k {
        KindName::Threshold => "threshold",
        KindName::RateOfChange => "rate_of_change",
        KindName::Deadman => "deadman",
        KindName::Ewma => "ewma",
        KindName::Spc => "spc",
        KindName::Cusum => "cusum",
    }
}

fn issues_push(key: String, msg: String) -> Result<usize, ConfigIssue> {
    Err(ConfigIssue::new(key, msg))
}
