//! The semantic checks: a [`RawSettings`] whose types are right, checked
//! value by value and across sections into [`Settings`], every problem
//! pushed with its key and checking going on, so one run reports them all.
//! One step per section, in the order of the report.

use super::raw::{
    DemoConfig, PipelineConfig, ProductConfig, RawSettings, SignalConfig, TimeModelConfig,
};
use super::{CheckedDemo, Settings};
use crate::journal::Retention;
use ctower_alerts::{AlertsConfig, Secrets};
use ctower_collector::admission::AdmissionRules;
use ctower_collector::config::{SecretRef, Source};
use ctower_collector::limits::LimitRules;
use ctower_collector::rawjournal::RawJournalRules;
use ctower_collector::SourceConfig;
use ctower_model::{ConfigIssue, NameMap};
use ctower_stream::calendar::SiteCalendar;
use ctower_stream::energy::SiteEnergy;
use ctower_stream::AccumConfig;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Looks up an environment variable (injected: tests and `ctower check`
/// do not read the process's secrets).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Checks everything; `env` gives the secrets the file names, all of
/// which must be set (to run).
pub fn check(raw: RawSettings, env: Env<'_>) -> Result<Settings, Vec<ConfigIssue>> {
    check_with(raw, Secrets::Required(env))
}

/// [`check`], with secrets read as `secrets` says: [`Secrets::IfSet`]
/// checks a file without the secrets of the parts it does not use
/// (`ctower check`): an unset variable is then no problem.
pub fn check_with(raw: RawSettings, secrets: Secrets<'_>) -> Result<Settings, Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    let p = &raw.pipeline;
    pipeline(p, &mut issues);
    time_model(&raw.time_model, &mut issues);
    let calendars = calendars(&raw, &mut issues);
    let energy = energy(&raw, &mut issues);
    let lookahead_secs = lookahead_secs(p, &raw.time_model);
    retirement(p, lookahead_secs, &mut issues);
    let max_rate_per_s = signal_rates(&raw.signals, &mut issues);
    let max_interval_ms = signal_intervals(&raw.signals, p, lookahead_secs, &mut issues);
    let ideal_cycle_ms = products(&raw.products, &mut issues);
    let sources = sources(&raw.sources, secrets, &mut issues);
    sparkplug_hold(&sources, p.stale_after_secs, &mut issues);
    let mut checked_alerts = alerts(&raw.alerts, secrets, &mut issues);
    water(&raw, &mut issues);
    journal(&raw, &mut issues);
    let influx = raw
        .influx
        .as_ref()
        .and_then(|c| super::influx::check(c, secrets, &mut issues));
    let commands = raw
        .commands
        .as_ref()
        .and_then(|c| super::commands::check(c, secrets, &mut issues));
    let control = raw
        .control
        .as_ref()
        .and_then(|c| super::control::check(c, &sources, p.stale_after_secs, &mut issues));
    if let Some(c) = &control {
        let rules = crate::output::unconfirmed_rules(&c.catalogue, &mut issues);
        checked_alerts.rules.extend(rules);
    }
    if raw
        .control
        .as_ref()
        .is_some_and(|c| !c.parameters.is_empty())
        && raw.commands.is_none()
    {
        issues.push(ConfigIssue::new(
            "control",
            "parameter control needs [commands]: its users, roles and signatures, and the command topic",
        ));
    }
    let broker_bind = demo(&raw.demo, &mut issues);
    if !issues.is_empty() {
        return Err(issues);
    }
    let checked = Checked {
        calendars,
        energy,
        max_rate_per_s,
        max_interval_ms,
        ideal_cycle_ms,
        sources,
        alerts: checked_alerts,
        commands,
        control,
        broker_bind,
        influx,
    };
    Ok(assemble(raw, checked))
}

/// What the steps made, for [`assemble`].
struct Checked {
    calendars: HashMap<Arc<str>, SiteCalendar>,
    energy: HashMap<Arc<str>, SiteEnergy>,
    max_rate_per_s: NameMap<f64>,
    max_interval_ms: NameMap<i64>,
    ideal_cycle_ms: HashMap<String, f64>,
    sources: Vec<Source>,
    alerts: ctower_alerts::Alerts,
    commands: Option<super::CommandsRules>,
    control: Option<super::ControlRules>,
    broker_bind: Option<std::net::SocketAddr>,
    influx: Option<crate::influx::InfluxRules>,
}

fn positive(issues: &mut Vec<ConfigIssue>, key: &str, v: u64, max: u64) {
    if v == 0 || v > max {
        issues.push(ConfigIssue::new(key, format!("{v} is outside 1..={max}")));
    }
}

fn at_most_a_day(issues: &mut Vec<ConfigIssue>, key: &str, v: u64) {
    if v > 86_400 {
        issues.push(ConfigIssue::new(key, format!("{v} is more than a day")));
    }
}

fn pipeline(p: &PipelineConfig, issues: &mut Vec<ConfigIssue>) {
    if p.workers == 0 || p.workers > 256 {
        issues.push(ConfigIssue::new(
            "pipeline.workers",
            format!("{} is outside 1..=256", p.workers),
        ));
    }
    positive(issues, "pipeline.window_secs", p.window_secs, 86_400);
    positive(
        issues,
        "pipeline.idle_timeout_secs",
        p.idle_timeout_secs,
        86_400,
    );
    positive(
        issues,
        "pipeline.stale_after_secs",
        p.stale_after_secs,
        86_400,
    );
    positive(
        issues,
        "pipeline.max_future_secs",
        p.max_future_secs,
        86_400 * 7,
    );
    positive(issues, "pipeline.batch_size", p.batch_size as u64, 1 << 20);
    positive(
        issues,
        "pipeline.queue_batches",
        p.queue_batches as u64,
        1 << 16,
    );
    at_most_a_day(
        issues,
        "pipeline.correction_horizon_secs",
        p.correction_horizon_secs,
    );
    at_most_a_day(
        issues,
        "pipeline.allowed_lateness_secs",
        p.allowed_lateness_secs,
    );
    if p.window_secs > 0 && 86_400 % p.window_secs != 0 {
        issues.push(ConfigIssue::new(
            "pipeline.window_secs",
            format!(
                "{} does not divide a day, so windows would not align to days",
                p.window_secs
            ),
        ));
    }
}

fn time_model(t: &TimeModelConfig, issues: &mut Vec<ConfigIssue>) {
    if t.micro_stop_secs > 3_600 {
        issues.push(ConfigIssue::new(
            "time_model.micro_stop_secs",
            format!("{} is more than an hour", t.micro_stop_secs),
        ));
    }
    if let Some(m) = t.counter_rollover {
        if !(m.is_finite() && m >= 2.0) {
            issues.push(ConfigIssue::new(
                "time_model.counter_rollover",
                format!("{m} must be a number of at least 2 (e.g. 65536)"),
            ));
        }
    }
    at_most_a_day(issues, "time_model.startup_secs", t.startup_secs);
}

fn calendars(raw: &RawSettings, issues: &mut Vec<ConfigIssue>) -> HashMap<Arc<str>, SiteCalendar> {
    let mut calendars = HashMap::new();
    for (site, cal) in &raw.sites {
        let key = format!("sites.{site}");
        if let Some(c) = cal.check(&key, raw.pipeline.window_secs, issues) {
            calendars.insert(Arc::<str>::from(site.as_str()), c);
        }
    }
    calendars
}

fn energy(raw: &RawSettings, issues: &mut Vec<ConfigIssue>) -> HashMap<Arc<str>, SiteEnergy> {
    let window_secs = raw.pipeline.window_secs;
    let mut energy = HashMap::new();
    let Some(sites) = raw.energy.check("energy", issues) else {
        return energy;
    };
    let mut currencies = BTreeSet::new();
    for (site, e) in sites {
        // Tariff periods are local times: the site needs its zone.
        if !raw.sites.contains_key(&site) {
            issues.push(ConfigIssue::new(
                format!("energy.sites.{site}"),
                format!(
                    "needs [sites.{site}] with its time_zone: tariff periods are in local time"
                ),
            ));
        }
        currencies.insert(e.tariff.currency().to_string());
        for (i, at) in e.tariff.misaligned(window_secs) {
            issues.push(ConfigIssue::new(
                format!("energy.sites.{site}.tariff.periods[{i}]"),
                format!(
                    "its boundary at {at} is not on a window boundary (pipeline.window_secs = {window_secs}): a window takes the rate of its local start, so the window across {at} would be priced at one rate"
                ),
            ));
        }
        energy.insert(Arc::<str>::from(site.as_str()), e);
    }
    if currencies.len() > 1 {
        issues.push(ConfigIssue::new(
            "energy.sites",
            format!(
                "tariffs in several currencies ({}): costs are summed up to the group, so use one",
                currencies.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    energy
}

/// A reading interval longer than the lookahead is spread by correcting
/// the windows that closed before its end reading came: they must still
/// be kept.
fn lookahead_secs(p: &PipelineConfig, t: &TimeModelConfig) -> u64 {
    let reach = t.micro_stop_secs.max(p.stale_after_secs);
    match p.window_secs {
        0 => 0,
        w => reach.div_ceil(w) * w,
    }
}

fn retirement(p: &PipelineConfig, lookahead_secs: u64, issues: &mut Vec<ConfigIssue>) {
    if p.asset_retire_after_secs > 7 * 86_400
        || p.asset_retire_after_secs <= p.correction_horizon_secs + lookahead_secs
    {
        issues.push(ConfigIssue::new(
            "pipeline.asset_retire_after_secs",
            format!(
                "{} must be more than pipeline.correction_horizon_secs plus the lookahead ({} s: an asset is only retired once nothing can correct it) and at most 604800",
                p.asset_retire_after_secs,
                p.correction_horizon_secs + lookahead_secs
            ),
        ));
    }
    if p.asset_forget_after_secs < p.asset_retire_after_secs
        || p.asset_forget_after_secs > 30 * 86_400
    {
        issues.push(ConfigIssue::new(
            "pipeline.asset_forget_after_secs",
            format!(
                "{} must be at least pipeline.asset_retire_after_secs ({}) and at most 2592000",
                p.asset_forget_after_secs, p.asset_retire_after_secs
            ),
        ));
    }
}

fn signal_rates(
    signals: &BTreeMap<String, SignalConfig>,
    issues: &mut Vec<ConfigIssue>,
) -> NameMap<f64> {
    let mut max_rate_per_s = NameMap::default();
    for (name, sig) in signals {
        let Some(r) = sig.max_rate_per_s else {
            continue;
        };
        if r.is_finite() && r > 0.0 {
            max_rate_per_s.insert(Arc::<str>::from(name.as_str()), r);
        } else {
            issues.push(ConfigIssue::new(
                format!("signals.{name}.max_rate_per_s"),
                format!("{r} must be a positive number (units per second)"),
            ));
        }
    }
    max_rate_per_s
}

fn signal_intervals(
    signals: &BTreeMap<String, SignalConfig>,
    p: &PipelineConfig,
    lookahead_secs: u64,
    issues: &mut Vec<ConfigIssue>,
) -> NameMap<i64> {
    let mut max_interval_ms = NameMap::default();
    for (name, sig) in signals {
        let key = format!("signals.{name}.max_interval_secs");
        let Some(v) = sig.max_interval_secs else {
            continue;
        };
        if v == 0 || v > 86_400 {
            issues.push(ConfigIssue::new(key, format!("{v} is outside 1..=86400")));
        } else if v > lookahead_secs && v > p.correction_horizon_secs {
            issues.push(ConfigIssue::new(
                key,
                format!(
                    "{v} s: windows closed before the reading that ends such an interval are corrected, so pipeline.correction_horizon_secs ({}) must be at least {v}",
                    p.correction_horizon_secs
                ),
            ));
        } else {
            max_interval_ms.insert(Arc::<str>::from(name.as_str()), v as i64 * 1000);
        }
    }
    max_interval_ms
}

fn products(
    products: &BTreeMap<String, ProductConfig>,
    issues: &mut Vec<ConfigIssue>,
) -> HashMap<String, f64> {
    let mut ideal_cycle_ms = HashMap::new();
    for (name, prod) in products {
        let v = prod.ideal_cycle_secs;
        if !(v.is_finite() && v > 0.0) {
            issues.push(ConfigIssue::new(
                format!("products.{name}.ideal_cycle_secs"),
                format!("{v} must be a positive number of seconds"),
            ));
        }
        ideal_cycle_ms.insert(name.clone(), v * 1000.0);
    }
    ideal_cycle_ms
}

fn sources(
    sources: &[SourceConfig],
    secrets: Secrets<'_>,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<Source> {
    // Checking only, an unset password variable (an unreadable password
    // file) stands for an empty password.
    let if_set = |secret: SecretRef<'_>| {
        let found = match (secret, secrets) {
            (SecretRef::Env(name), Secrets::Required(env) | Secrets::IfSet(env)) => env(name),
            (SecretRef::File(path), _) => SecretRef::read_file(path),
        };
        match secrets {
            Secrets::Required(_) => found,
            Secrets::IfSet(_) => Some(found.unwrap_or_default()),
        }
    };
    let mut specs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, s) in sources.iter().enumerate() {
        let key = format!("sources[{i}]");
        if !names.insert(s.name.clone()) {
            issues.push(ConfigIssue::new(
                format!("{key}.name"),
                format!("`{}` is used twice", s.name),
            ));
        }
        if let Some(spec) = s.check(&key, &if_set, issues) {
            specs.push(spec);
        }
    }
    specs
}

/// A Sparkplug source restates held values more often than a machine
/// goes stale, or a quiet machine would flicker to UNKNOWN.
fn sparkplug_hold(sources: &[Source], stale_after_secs: u64, issues: &mut Vec<ConfigIssue>) {
    for (i, s) in sources.iter().enumerate() {
        if let Some(sp) = &s.sparkplug {
            if sp.hold_ms >= (stale_after_secs as i64).saturating_mul(1000) {
                issues.push(ConfigIssue::new(
                    format!("sources[{i}].sparkplug.hold_secs"),
                    format!(
                        "{} s must be below pipeline.stale_after_secs ({stale_after_secs} s)",
                        sp.hold_ms / 1000
                    ),
                ));
            }
        }
    }
}

fn alerts(
    alerts: &AlertsConfig,
    secrets: Secrets<'_>,
    issues: &mut Vec<ConfigIssue>,
) -> ctower_alerts::Alerts {
    let checked = alerts.check("alerts", secrets, issues);
    checked.unwrap_or_default()
}

fn water(raw: &RawSettings, issues: &mut Vec<ConfigIssue>) {
    let w = &raw.water;
    for (key, v) in [
        ("water.conductivity_limit_us_cm", w.conductivity_limit_us_cm),
        ("water.toc_limit_ppb", w.toc_limit_ppb),
    ] {
        if !(v.is_finite() && v > 0.0) {
            issues.push(ConfigIssue::new(
                key,
                format!("{v} must be a positive number"),
            ));
        }
    }
}

fn journal(raw: &RawSettings, issues: &mut Vec<ConfigIssue>) {
    let r = &raw.raw_journal;
    positive(issues, "raw_journal.segment_mib", r.segment_mib, 1 << 16);
    positive(issues, "raw_journal.keep_hours", r.keep_hours, 24 * 36_500);
    positive(issues, "raw_journal.keep_mib", r.keep_mib, 1 << 30);
    let j = &raw.journal;
    positive(issues, "journal.max_backlog_mib", j.max_backlog_mib, 16_384);
    positive(issues, "journal.rotate_mib", j.rotate_mib, 1 << 20);
    positive(issues, "journal.keep_days", j.keep_days, 36_500);
    positive(issues, "journal.keep_mib", j.keep_mib, 1 << 30);
}

fn demo(d: &DemoConfig, issues: &mut Vec<ConfigIssue>) -> Option<std::net::SocketAddr> {
    if !(d.speed.is_finite() && d.speed > 0.0) {
        issues.push(ConfigIssue::new(
            "demo.speed",
            format!("{} must be a positive factor", d.speed),
        ));
    }
    if let Some(g) = &d.live_plant_group {
        if g.is_empty() || g.contains(['/', '+', '#']) || g.len() > 64 {
            issues.push(ConfigIssue::new(
                "demo.live_plant_group",
                "a Sparkplug group id: 1 to 64 characters, no / + #",
            ));
        }
    }
    let bind = d.broker_bind.parse().ok();
    if bind.is_none() {
        issues.push(ConfigIssue::new(
            "demo.broker_bind",
            format!("`{}` is not HOST:PORT (e.g. 127.0.0.1:0)", d.broker_bind),
        ));
    }
    bind
}

/// The settings from the checked parts (nothing left to fail).
fn assemble(raw: RawSettings, c: Checked) -> Settings {
    let (p, t) = (&raw.pipeline, &raw.time_model);
    let ms = |s: u64| s as i64 * 1000;
    Settings {
        workers: p.workers,
        accum: AccumConfig {
            window_ms: ms(p.window_secs),
            stale_after_ms: ms(p.stale_after_secs),
            ideal_cycle_ms: c.ideal_cycle_ms,
            conductivity_limit_us_cm: raw.water.conductivity_limit_us_cm,
            toc_limit_ppb: raw.water.toc_limit_ppb,
            micro_stop_ms: ms(t.micro_stop_secs),
            startup_ms: ms(t.startup_secs),
            counter_rollover: t.counter_rollover,
            calendars: Arc::new(c.calendars),
            energy: Arc::new(c.energy),
            correction_horizon_ms: ms(p.correction_horizon_secs),
            max_interval_ms: c.max_interval_ms,
            retire_after_ms: ms(p.asset_retire_after_secs),
            forget_after_ms: ms(p.asset_forget_after_secs),
        },
        limits: LimitRules {
            sources: c.sources.iter().map(|s| s.limits).collect(),
            max_rate_per_s: c.max_rate_per_s,
            retire_after_ms: ms(p.asset_retire_after_secs),
        },
        admission: AdmissionRules {
            window_ms: ms(p.window_secs),
            allowed_lateness_ms: ms(p.allowed_lateness_secs),
            idle_timeout_ms: ms(p.idle_timeout_secs),
            max_future_ms: ms(p.max_future_secs),
            correction_horizon_ms: ms(p.correction_horizon_secs),
        },
        batch_size: p.batch_size,
        queue_batches: p.queue_batches,
        sources: c.sources,
        dead_letters: raw.dead_letters.path,
        audit_path: raw
            .audit
            .path
            .clone()
            .unwrap_or_else(|| raw.journal.dir.join("audit.jsonl")),
        hook_outbox_dir: c
            .alerts
            .outbox_dir
            .clone()
            .unwrap_or_else(|| raw.journal.dir.join("hooks")),
        journal_dir: raw.journal.dir,
        journal_max_backlog_bytes: (raw.journal.max_backlog_mib as usize) << 20,
        journal_retention: Retention {
            max_file_bytes: raw.journal.rotate_mib << 20,
            max_age_ms: raw.journal.keep_days as i64 * 86_400_000,
            max_total_bytes: raw.journal.keep_mib << 20,
        },
        raw_journal: raw.raw_journal.enabled.then(|| RawJournalRules {
            dir: raw.raw_journal.dir.clone(),
            segment_bytes: raw.raw_journal.segment_mib << 20,
            keep_ms: raw.raw_journal.keep_hours as i64 * 3_600_000,
            keep_bytes: raw.raw_journal.keep_mib << 20,
        }),
        influx: c.influx,
        commands: c.commands,
        control: c.control,
        hook_outbox_budget_bytes: c.alerts.outbox_budget_bytes,
        flood: c.alerts.flood,
        rules: c.alerts.rules,
        hooks: c.alerts.hooks,
        demo: CheckedDemo {
            recording: raw.demo.recording,
            speed: raw.demo.speed,
            broker_bind: c
                .broker_bind
                .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            live_plant_group: raw.demo.live_plant_group.clone(),
        },
    }
}
