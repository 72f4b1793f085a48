//! Alert configuration: what the operator writes (`[alerts]` with
//! `[[alerts.rules]]` and `[[alerts.hooks]]`) and its checking.
//!
//! The crate follows the workspace's configuration vocabulary (see
//! [`ctower_model::config`]): [`AlertsConfig`], [`RuleConfig`] and
//! [`HookConfig`] are what the TOML says (serde, unknown keys refused,
//! nothing checked yet); [`Alerts`], [`Rule`] and [`Hook`] are the checked
//! types the engine and the dispatcher use, made only by the `check`
//! methods. Checking reports every problem at once, each with its full key
//! path (`alerts.rules[1].threshold`), so an operator fixes a configuration
//! in one round.
//!
//! - `rule`: threshold rules.
//! - `hook`: log hooks and webhooks.
//! - `secret`: webhook signing secrets, and [`Secrets`], which says whether
//!   checking needs them (to run) or not (to check a file only).

mod hook;
mod rule;
mod secret;

pub use hook::{
    Hook, HookConfig, HookKind, LogHook, Route, Target, WebhookHook, DEFAULT_RETRY_BASE_MS,
    DEFAULT_RETRY_MAX_SECS, DEFAULT_TIMEOUT_SECS, PAGERDUTY_EVENTS_URL,
};
pub use rule::{
    Condition, KindName, Preset, Rule, RuleConfig, RuleSource, ScopeFilter, SourceKind, Stat,
    MAX_ON_DELAY_SECS,
};
pub use secret::{Secrets, WebhookSecret};

/// One configuration problem, with the full key path (shared with every crate).
pub use ctower_model::ConfigIssue;

use ctower_model::{key_field, key_index};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The `[alerts]` section as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// `[[alerts.rules]]`, in the order they are evaluated.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// `[[alerts.hooks]]`.
    #[serde(default)]
    pub hooks: Vec<HookConfig>,
    /// Where each delivering hook's outbox is (`<dir>/<hook name>/`);
    /// default `hooks` in the journal's directory.
    pub outbox_dir: Option<std::path::PathBuf>,
    /// Disk budget of each hook's outbox, 1..=65536 MiB; default 256.
    pub outbox_budget_mib: Option<u64>,
    /// More than this many alarms raised on one site within
    /// `flood_window_secs` is a flood, 1..=1000; default 10 (EEMUA 191).
    pub flood_alarms: Option<usize>,
    /// The flood window, 60..=86400 s; default 600.
    pub flood_window_secs: Option<u64>,
}

/// The checked `[alerts]` section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Alerts {
    /// The rules, in configuration order (the order of their events); names unique.
    pub rules: Vec<Rule>,
    /// The hooks, in configuration order; names unique.
    pub hooks: Vec<Hook>,
    /// `outbox_dir` as given.
    pub outbox_dir: Option<std::path::PathBuf>,
    /// Each hook outbox's budget.
    pub outbox_budget_bytes: u64,
    /// Flood limits.
    pub flood: crate::notify::FloodLimits,
}

impl AlertsConfig {
    /// Checks the section; `key` is its path (`"alerts"`), `secrets` says how
    /// webhook secrets are read (see [`Secrets`]). Every problem is pushed,
    /// in key order, each with its full key path; `None` exactly when one
    /// was.
    pub fn check(
        &self,
        key: &str,
        secrets: Secrets<'_>,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<Alerts> {
        let before = issues.len();
        let rules = self.check_rules(key, issues);
        let hooks = self.check_hooks(key, secrets, issues);
        for (i, h) in hooks.iter().enumerate() {
            for name in &h.route().rules {
                if !rules.iter().any(|r| r.name == *name) {
                    issues.push(ConfigIssue::new(
                        key_field(&key_index(key, "hooks", i), "rules"),
                        format!("no rule is named `{name}`"),
                    ));
                }
            }
        }
        let mut bounded = |v: Option<u64>, default: u64, lo: u64, hi: u64, field: &str| {
            let x = v.unwrap_or(default);
            if !(lo..=hi).contains(&x) {
                issues.push(ConfigIssue::new(
                    key_field(key, field),
                    format!("must be between {lo} and {hi}, got {x}"),
                ));
            }
            x
        };
        let budget_mib = bounded(self.outbox_budget_mib, 256, 1, 65_536, "outbox_budget_mib");
        let flood_alarms = bounded(
            self.flood_alarms.map(|n| n as u64),
            10,
            1,
            1000,
            "flood_alarms",
        );
        let flood_secs = bounded(self.flood_window_secs, 600, 60, 86_400, "flood_window_secs");
        (issues.len() == before).then(|| Alerts {
            rules,
            hooks,
            outbox_dir: self.outbox_dir.clone(),
            outbox_budget_bytes: budget_mib << 20,
            flood: crate::notify::FloodLimits {
                alarms: flood_alarms as usize,
                window_ms: flood_secs as i64 * 1000,
            },
        })
    }

    /// Every rule, and that no two share a name.
    fn check_rules(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Vec<Rule> {
        let mut rules = Vec::new();
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, spec) in self.rules.iter().enumerate() {
            let base = key_index(key, "rules", i);
            if let Some(name) = spec.name.as_deref() {
                if let Some(first) = names.get(name) {
                    issues.push(ConfigIssue::new(
                        key_field(&base, "name"),
                        format!("duplicate rule name `{name}` (first used by rules[{first}])"),
                    ));
                } else {
                    names.insert(name, i);
                }
            }
            if let Some(rule) = spec.check(&base, issues) {
                rules.push(rule);
            }
        }
        rules
    }

    /// Every hook, and that no two share a name (given or default).
    fn check_hooks(
        &self,
        key: &str,
        secrets: Secrets<'_>,
        issues: &mut Vec<ConfigIssue>,
    ) -> Vec<Hook> {
        let mut hooks = Vec::new();
        let mut names: BTreeMap<Arc<str>, usize> = BTreeMap::new();
        for (i, spec) in self.hooks.iter().enumerate() {
            let base = key_index(key, "hooks", i);
            let Some(hook) = spec.check(&base, i, secrets, issues) else {
                continue;
            };
            if let Some(first) = names.get(hook.name()) {
                issues.push(ConfigIssue::new(
                    key_field(&base, "name"),
                    format!(
                        "duplicate hook name `{}` (first used by hooks[{first}])",
                        hook.name()
                    ),
                ));
            } else {
                names.insert(hook.name().clone(), i);
                hooks.push(hook);
            }
        }
        for (i, h) in hooks.iter().enumerate() {
            if let Some((_, to)) = &h.route().escalate {
                let base = key_index(key, "hooks", i);
                match hooks.iter().find(|x| x.name() == to) {
                    None => issues.push(ConfigIssue::new(
                        key_field(&base, "escalate_to"),
                        format!("no hook is named `{to}`"),
                    )),
                    Some(x) if x.name() == h.name() => issues.push(ConfigIssue::new(
                        key_field(&base, "escalate_to"),
                        "a hook cannot escalate to itself",
                    )),
                    Some(Hook::Log(_)) => issues.push(ConfigIssue::new(
                        key_field(&base, "escalate_to"),
                        format!("`{to}` is a log hook; escalate to a hook that reaches people"),
                    )),
                    Some(_) => {}
                }
            }
        }
        hooks
    }
}

/// A number that must be finite when given.
fn finite(v: Option<f64>, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<f64> {
    match v {
        Some(x) if x.is_finite() => Some(x),
        Some(x) => {
            issues.push(ConfigIssue::new(
                key,
                format!("must be a finite number, got {x}"),
            ));
            None
        }
        None => None,
    }
}

/// A string that must not be blank when given.
fn non_empty(v: &Option<String>, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<Arc<str>> {
    match v {
        Some(s) if s.trim().is_empty() => {
            issues.push(ConfigIssue::new(key, "must not be empty"));
            None
        }
        Some(s) => Some(s.as_str().into()),
        None => None,
    }
}

/// A required field that is missing; `what` says what it takes.
fn missing(key: String, what: &str) -> ConfigIssue {
    ConfigIssue::new(key, format!("missing: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctower_model::{Level, Priority};
    use std::time::Duration;

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
        let mut issues = Vec::new();
        let Alerts { rules, hooks, .. } =
            match cfg.check("alerts", Secrets::Required(&env), &mut issues) {
                Some(x) => x,
                None => panic!("unexpected issues: {issues:?}"),
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
                assert_eq!(w.retry_base, Duration::from_millis(500));
                assert_eq!(w.retry_max, Duration::from_secs(300));
                assert_eq!(w.min_priority, Priority::High);
                match &w.target {
                    Target::Webhook { secret, .. } => {
                        assert_eq!(secret.as_ref().map(|s| s.key()), Some(&b"s3cret"[..]))
                    }
                    other => panic!("expected a webhook target, got {other:?}"),
                }
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
        let mut issues = Vec::new();
        if cfg
            .check("alerts", Secrets::Required(&no_env), &mut issues)
            .is_some()
        {
            panic!("expected issues");
        }
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
    fn checking_only_needs_no_secrets() {
        let cfg = parse(GOOD);
        let mut issues = Vec::new();
        let alerts = cfg.check("alerts", Secrets::IfSet(&no_env), &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        let hooks = alerts.map(|a| a.hooks).unwrap_or_default();
        match hooks.get(1) {
            Some(Hook::Webhook(w)) => match &w.target {
                Target::Webhook {
                    secret,
                    secret_from,
                    ..
                } => {
                    assert_eq!(
                        secret_from.as_deref(),
                        Some("environment variable `CTOWER_WEBHOOK_SECRET`")
                    );
                    assert!(secret.is_none());
                }
                other => panic!("expected a webhook target, got {other:?}"),
            },
            other => panic!("expected a webhook, got {other:?}"),
        }
        // A webhook whose secret was never read does not start unsigned.
        let dir = std::env::temp_dir().join("ctower-unread-secret-test");
        match crate::HookDispatcher::start(hooks, crate::DispatcherOptions::new(dir)) {
            Err(crate::AlertsError::UnreadSecret { hook, var }) => {
                assert_eq!(
                    (hook.as_str(), var.as_str()),
                    ("oncall", "environment variable `CTOWER_WEBHOOK_SECRET`")
                );
            }
            other => panic!("expected UnreadSecret, got {other:?}"),
        }
    }
}
