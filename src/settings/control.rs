//! `[control]`, checked: the catalogue of writable parameters (README,
//! "Parameter control").

use super::commands::name_ok;
use super::raw::ControlConfig;
use ctower_collector::config::Source;
use ctower_control::{AssetPattern, Catalogue, ParamSpec};
use ctower_model::{ConfigIssue, ParamType};

/// The checked `[control]`.
#[derive(Debug, Clone)]
pub struct ControlRules {
    /// The writable parameters.
    pub catalogue: Catalogue,
    /// Every write refused.
    pub read_only: bool,
    /// The UNS command topics' first level.
    pub uns_command_prefix: String,
}

fn push(issues: &mut Vec<ConfigIssue>, key: String, m: String) {
    issues.push(ConfigIssue::new(key, m));
}

/// Checks `[control]` against the sources; every problem is pushed with
/// its key.
pub(super) fn check(
    c: &ControlConfig,
    sources: &[Source],
    stale_after_secs: u64,
    issues: &mut Vec<ConfigIssue>,
) -> Option<ControlRules> {
    let before = issues.len();
    let prefix = c
        .uns_command_prefix
        .clone()
        .unwrap_or_else(|| "ctower-cmd".into());
    if prefix.is_empty() || prefix.contains(['+', '#', '\0', '/']) {
        push(
            issues,
            "control.uns_command_prefix".into(),
            "one topic level without wildcards".into(),
        );
    }
    let mut params = Vec::new();
    for (i, p) in c.parameters.iter().enumerate() {
        let key = format!("control.parameters[{i}]");
        if !name_ok(&p.name) {
            push(
                issues,
                format!("{key}.name"),
                "1 to 64 of A-Z a-z 0-9 - _ . (it is a topic level)".into(),
            );
        }
        let mut assets = Vec::new();
        if p.assets.is_empty() {
            push(
                issues,
                format!("{key}.assets"),
                "name at least one asset".into(),
            );
        }
        for (j, a) in p.assets.iter().enumerate() {
            match AssetPattern::parse(a) {
                Some(pat) => assets.push(pat),
                None => push(
                    issues,
                    format!("{key}.assets[{j}]"),
                    format!("`{a}` is not `site/area/line/asset` (each level a name or `*`)"),
                ),
            }
        }
        match sources.iter().find(|s| *s.name == *p.source) {
            None => push(
                issues,
                format!("{key}.source"),
                format!("no [[sources]] is named `{}`", p.source),
            ),
            Some(s) if s.sparkplug.is_none() => {
                // JSON: the command topic must not come back as telemetry.
                let probe = format!("{prefix}/s/a/l/x/{}", p.name);
                if s.subscribes_to(&probe) {
                    push(
                        issues,
                        format!("{key}.source"),
                        format!(
                            "source `{}` subscribes to the command topics `{prefix}/…`: its own commands would come back as telemetry (change control.uns_command_prefix or the subscriptions)",
                            p.source
                        ),
                    );
                }
            }
            Some(_) => {}
        }
        let numeric = p.ty != ParamType::Bool;
        for (k, v) in [("min", p.min), ("max", p.max), ("max_step", p.max_step)] {
            if v.is_some_and(|x| !x.is_finite()) {
                push(issues, format!("{key}.{k}"), "a finite number".into());
            }
            if !numeric && v.is_some() {
                push(
                    issues,
                    format!("{key}.{k}"),
                    "a switch (`bool`) has no bounds".into(),
                );
            }
        }
        if numeric {
            match (p.min, p.max) {
                (Some(lo), Some(hi)) if lo > hi => {
                    push(
                        issues,
                        format!("{key}.max"),
                        format!("{hi} is below min {lo}"),
                    );
                }
                (Some(_), Some(_)) => {}
                _ => push(
                    issues,
                    format!("{key}.min"),
                    "a number parameter needs both `min` and `max`".into(),
                ),
            }
        }
        if p.max_step.is_some_and(|s| s <= 0.0) {
            push(issues, format!("{key}.max_step"), "more than 0".into());
        }
        if p.tolerance.is_some_and(|t| !t.is_finite() || t < 0.0) {
            push(issues, format!("{key}.tolerance"), "0 or more".into());
        }
        let readback = p.readback_signal.clone().unwrap_or_else(|| p.name.clone());
        if !name_ok(&readback) {
            push(
                issues,
                format!("{key}.readback_signal"),
                "a signal name (1 to 64 of A-Z a-z 0-9 - _ .)".into(),
            );
        }
        let secs = |k: &str, v: Option<u64>, default: u64, issues: &mut Vec<ConfigIssue>| {
            let v = v.unwrap_or(default);
            if v == 0 || v > 86_400 {
                issues.push(ConfigIssue::new(
                    format!("{key}.{k}"),
                    format!("{v} is outside 1..=86400"),
                ));
            }
            v as i64 * 1000
        };
        let confirm_ms = secs("confirm_secs", p.confirm_secs, 30, issues);
        let approval_ms = secs("approval_secs", p.approval_secs, 900, issues);
        let stale_ms = secs("stale_secs", p.stale_secs, stale_after_secs, issues);
        let min_interval_ms = p.min_interval_secs.unwrap_or(60) as i64 * 1000;
        if p.min_interval_secs.is_some_and(|s| s > 86_400) {
            push(
                issues,
                format!("{key}.min_interval_secs"),
                "at most a day (86400)".into(),
            );
        }
        let approve_roles = p
            .approve_roles
            .clone()
            .unwrap_or_else(|| p.request_roles.clone());
        for (k, roles) in [
            ("request_roles", &p.request_roles),
            ("approve_roles", &approve_roles),
        ] {
            if roles.is_empty() {
                push(
                    issues,
                    format!("{key}.{k}"),
                    "name at least one role".into(),
                );
            }
            if roles.iter().any(|r| !name_ok(r)) {
                push(
                    issues,
                    format!("{key}.{k}"),
                    "role names are 1 to 64 of A-Z a-z 0-9 - _ .".into(),
                );
            }
        }
        // One asset's parameter is one entry, and one read-back signal
        // (one Sparkplug metric) is one parameter: otherwise one entry
        // would shadow another, or two names would write the same thing
        // past each other's bounds, in-flight check and rate limit.
        let overlap = |q: &ParamSpec| {
            q.assets
                .iter()
                .any(|a| assets.iter().any(|b| a.overlaps(b)))
        };
        if let Some(q) = params
            .iter()
            .find(|q: &&ParamSpec| *q.name == *p.name && overlap(q))
        {
            let theirs: Vec<String> = q.assets.iter().map(|a| a.0.join("/")).collect();
            push(
                issues,
                format!("{key}.assets"),
                format!(
                    "`{}` is already listed for assets that overlap these ({})",
                    p.name,
                    theirs.join(", ")
                ),
            );
        }
        if let Some(q) = params
            .iter()
            .find(|q: &&ParamSpec| *q.readback == *readback && *q.name != *p.name && overlap(q))
        {
            push(
                issues,
                format!("{key}.readback_signal"),
                format!(
                    "`{readback}` is already the read-back of `{}` on overlapping assets: one signal, one parameter",
                    q.name
                ),
            );
        }
        params.push(ParamSpec {
            name: p.name.as_str().into(),
            assets,
            source: p.source.clone(),
            unit: p.unit.clone(),
            ty: p.ty,
            min: p.min,
            max: p.max,
            max_step: p.max_step,
            readback: readback.as_str().into(),
            tolerance: p.tolerance.unwrap_or(match p.ty {
                ParamType::Float => 0.001,
                _ => 0.0,
            }),
            confirm_ms,
            approval_ms,
            min_interval_ms,
            stale_ms,
            request_roles: p.request_roles.clone(),
            approve_roles,
            two_person: p.two_person.unwrap_or(true),
        });
    }
    if issues.len() != before {
        return None;
    }
    Some(ControlRules {
        catalogue: Catalogue { params },
        read_only: c.read_only,
        uns_command_prefix: prefix,
    })
}
