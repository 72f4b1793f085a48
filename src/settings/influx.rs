//! `[influx]`, checked: a URL the client takes whole, a token from the
//! environment or a file (never the file itself), bounds on every number.

use super::raw::InfluxConfig;
use crate::influx::{check_url, InfluxRules, MAX_BATCH_LINES};
use ctower_alerts::Secrets;
use ctower_collector::config::SecretRef;
use ctower_model::ConfigIssue;
use ctower_outbox::OutboxRules;
use std::time::Duration;

/// The outbox's segments: an eighth of the budget, within 64 KiB..16 MiB.
fn segment_bytes(budget_bytes: u64) -> u64 {
    (budget_bytes / 8).clamp(64 << 10, 16 << 20)
}

/// Checks `[influx]`; every problem is pushed with its key.
pub(super) fn check(
    c: &InfluxConfig,
    secrets: Secrets<'_>,
    issues: &mut Vec<ConfigIssue>,
) -> Option<InfluxRules> {
    let before = issues.len();
    let mut push = |key: &str, m: String| issues.push(ConfigIssue::new(format!("influx.{key}"), m));
    if let Err(m) = check_url(&c.url) {
        push("url", m);
    }
    for (key, v) in [("org", &c.org), ("bucket", &c.bucket)] {
        if v.trim().is_empty() {
            push(key, "must not be empty".into());
        }
    }
    let (token_key, token) = match (&c.token_env, &c.token_file) {
        (Some(_), Some(_)) => {
            push(
                "token_file",
                "give `token_env` or `token_file`, not both".into(),
            );
            ("influx.token_env", None)
        }
        (Some(var), None) => {
            let found = match secrets {
                Secrets::Required(env) => env(var).filter(|t| !t.is_empty()),
                Secrets::IfSet(env) => Some(env(var).unwrap_or_default()),
            };
            if found.is_none() {
                push(
                    "token_env",
                    format!("environment variable `{var}` is not set"),
                );
            }
            ("influx.token_env", found)
        }
        (None, Some(path)) => {
            let found = SecretRef::read_file(path).filter(|t| !t.is_empty());
            if found.is_none() {
                push(
                    "token_file",
                    format!("cannot read a token from `{}`", path.display()),
                );
            }
            ("influx.token_file", found)
        }
        // No token: a server without authentication (VictoriaMetrics).
        (None, None) => ("influx.token_env", None),
    };
    let mut bounded = |key: &str, v: u64, max: u64| {
        if v == 0 || v > max {
            push(key, format!("{v} is outside 1..={max}"));
        }
    };
    bounded("batch_lines", c.batch_lines, MAX_BATCH_LINES as u64);
    bounded("flush_interval_ms", c.flush_interval_ms, 3_600_000);
    bounded("timeout_secs", c.timeout_secs, 600);
    bounded("retry_max_secs", c.retry_max_secs, 3600);
    bounded("outbox_budget_mib", c.outbox_budget_mib, 1 << 30);
    if issues.len() > before {
        return None;
    }
    let budget_bytes = c.outbox_budget_mib << 20;
    Some(InfluxRules {
        url: c.url.trim_end_matches('/').to_string(),
        org: c.org.clone(),
        bucket: c.bucket.clone(),
        token: token.filter(|t| !t.is_empty()),
        token_key,
        batch_lines: c.batch_lines as usize,
        flush: Duration::from_millis(c.flush_interval_ms),
        timeout: Duration::from_secs(c.timeout_secs),
        retry_max: Duration::from_secs(c.retry_max_secs),
        outbox: OutboxRules {
            name: crate::influx::OUTBOX_NAME.into(),
            lost_hint: crate::influx::OUTBOX_LOST_HINT.into(),
            dir: c.outbox_dir.clone(),
            segment_bytes: segment_bytes(budget_bytes),
            budget_bytes,
        },
        dead_letters: c.dead_letter_path.clone(),
    })
}
