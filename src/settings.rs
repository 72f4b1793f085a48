//! Configuration: `configs/*.toml` layered with `CTOWER__…` environment
//! variables (`CTOWER__PIPELINE__WORKERS=4`), strict (unknown keys are
//! errors), units in the names, checked into typed settings at load with
//! every problem reported at once, each with its key.

use anyhow::{bail, Context};
use ctower_alerts::{AlertsConfig, Hook, Rule, Secrets};
use ctower_collector::admission::AdmissionRules;
use ctower_collector::config::Source;
use ctower_collector::endpoint::BrokerAddr;
use ctower_collector::limits::LimitRules;
use ctower_collector::SourceConfig;
use ctower_model::ConfigIssue;
use ctower_stream::calendar::SiteCalendarConfig;
use ctower_stream::energy::EnergyConfig;
use ctower_stream::AccumConfig;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    #[serde(default)]
    pub pipeline: PipelineConfig,
    #[serde(default)]
    pub products: BTreeMap<String, ProductConfig>,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub dead_letters: DeadLetterConfig,
    #[serde(default)]
    pub journal: JournalConfig,
    #[serde(default)]
    pub alerts: AlertsConfig,
    #[serde(default)]
    pub demo: DemoConfig,
    #[serde(default)]
    pub water: WaterConfig,
    #[serde(default)]
    pub time_model: TimeModelConfig,
    /// Shift calendars by site name (`[sites.NAME]`).
    #[serde(default)]
    pub sites: BTreeMap<String, SiteCalendarConfig>,
    /// Tariffs, emission factors and energy baselines by site.
    #[serde(default)]
    pub energy: EnergyConfig,
    /// Per-signal settings of counters and meters, by signal name
    /// (`[signals.feed_m3]`).
    #[serde(default)]
    pub signals: BTreeMap<String, SignalConfig>,
}

/// `[signals.NAME]`: how a counter or meter signal reports.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalConfig {
    /// The longest interval between two readings that is spread pro rata
    /// over its windows (default `pipeline.stale_after_secs`); a longer
    /// interval is a gap, reported as unmeasured.
    pub max_interval_secs: Option<u64>,
    /// The largest plausible increase per second of the counter or meter;
    /// a faster one since the previous reading is refused as
    /// `implausible_value` (default: no limit beyond 2^53).
    pub max_rate_per_s: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeModelConfig {
    /// An unplanned stop ending within this time is a micro-stop (a
    /// performance loss); 0 disables. KPI windows close this much later.
    pub micro_stop_secs: u64,
    /// Rejects within this time of a start-up (running after a changeover,
    /// planned stop or no shift) are start-up (yield) losses.
    pub startup_secs: u64,
    /// Counters and meters roll over at this value (e.g. 65536, 4294967296):
    /// a drop from the upper half to the lower half is a rollover, any
    /// other drop a reset. Unset: every drop is a reset.
    pub counter_rollover: Option<f64>,
}

impl Default for TimeModelConfig {
    fn default() -> Self {
        TimeModelConfig {
            micro_stop_secs: 120,
            startup_secs: 300,
            counter_rollover: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WaterConfig {
    /// Purified-water conductivity limit, µS/cm (USP <645> stage 1 at 25 °C).
    pub conductivity_limit_us_cm: f64,
    /// Purified-water TOC limit, ppb (USP <643>).
    pub toc_limit_ppb: f64,
}

impl Default for WaterConfig {
    fn default() -> Self {
        WaterConfig {
            conductivity_limit_us_cm: 1.3,
            toc_limit_ppb: 500.0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Timely worker threads (`-w` overrides).
    pub workers: usize,
    /// Tumbling KPI window.
    pub window_secs: u64,
    /// How late an event may arrive and still be counted in its window.
    pub allowed_lateness_secs: u64,
    /// A site silent while the group's event time moves on this much no
    /// longer holds the watermark back (collector::admission).
    pub idle_timeout_secs: u64,
    /// An asset silent this long is UNKNOWN in the time model.
    pub stale_after_secs: u64,
    /// Refuse event times this far ahead of their own receive time.
    pub max_future_secs: u64,
    /// Late data up to this far behind the watermark corrects the closed
    /// windows, shifts and days (a higher revision); older data is
    /// dead-lettered `too_late`. 0 disables corrections.
    pub correction_horizon_secs: u64,
    /// Observations per batch handed to the stream.
    pub batch_size: usize,
    /// Batches queued between collector and stream (full: the collector waits).
    pub queue_batches: usize,
    /// An asset silent this long (event time, behind the watermark) is
    /// retired: its state is dropped, it frees its place under
    /// `sources[].max_assets`, it gets no record per window any more and
    /// its line reports it as unknown. Must exceed the correction horizon.
    pub asset_retire_after_secs: u64,
    /// A retired asset is reported at its line for this long after its
    /// last message, then forgotten.
    pub asset_forget_after_secs: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            workers: 2,
            window_secs: 60,
            allowed_lateness_secs: 30,
            idle_timeout_secs: 60,
            stale_after_secs: 60,
            max_future_secs: 300,
            correction_horizon_secs: 1_800,
            batch_size: 1024,
            queue_batches: 64,
            asset_retire_after_secs: 3_600,
            asset_forget_after_secs: 86_400,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductConfig {
    /// Ideal cycle time of one unit, seconds (ISO 22400 "planned run time per item").
    pub ideal_cycle_secs: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLetterConfig {
    pub path: PathBuf,
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        DeadLetterConfig {
            path: PathBuf::from("out/dead-letters.jsonl"),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// Directory of the local journal (InfluxDB line protocol).
    pub dir: PathBuf,
    /// Lines kept in memory while the journal cannot write (a full disk),
    /// MiB; past it the oldest are dropped and counted.
    pub max_backlog_mib: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            dir: PathBuf::from("out/journal"),
            max_backlog_mib: 64,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Recording replayed by the demo.
    pub recording: PathBuf,
    /// Replay speed factor of the demo.
    pub speed: f64,
    /// Address of the embedded broker (`127.0.0.1:0` = any free port).
    pub broker_bind: String,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            recording: PathBuf::from("replay-data/plants-2h.jsonl.gz"),
            speed: 10.0,
            broker_bind: "127.0.0.1:0".into(),
        }
    }
}

/// Checked settings.
pub struct Settings {
    pub workers: usize,
    pub accum: AccumConfig,
    pub admission: AdmissionRules,
    pub limits: LimitRules,
    pub batch_size: usize,
    pub queue_batches: usize,
    pub sources: Vec<Source>,
    pub dead_letters: PathBuf,
    pub journal_dir: PathBuf,
    pub journal_max_backlog_bytes: usize,
    pub rules: Vec<Rule>,
    pub hooks: Vec<Hook>,
    pub demo: CheckedDemo,
}

pub struct CheckedDemo {
    pub recording: PathBuf,
    pub speed: f64,
    pub broker_bind: std::net::SocketAddr,
}

impl Settings {
    pub fn uses_embedded_broker(&self) -> bool {
        self.sources
            .iter()
            .any(|s| s.broker == BrokerAddr::Embedded)
    }
}

/// Loads a file and the `CTOWER__…` environment, then checks everything.
pub fn load(path: &Path) -> anyhow::Result<Settings> {
    let raw: RawSettings = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix("CTOWER")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        )
        .build()
        .and_then(|c| c.try_deserialize())
        .with_context(|| format!("reading configuration {}", path.display()))?;
    match check(raw, &|k| std::env::var(k).ok()) {
        Ok(s) => Ok(s),
        Err(issues) => {
            let list: Vec<String> = issues.iter().map(|i| format!("  - {i}")).collect();
            bail!(
                "{} problem(s) in configuration {}:\n{}",
                issues.len(),
                path.display(),
                list.join("\n")
            )
        }
    }
}

fn positive(issues: &mut Vec<ConfigIssue>, key: &str, v: u64, max: u64) {
    if v == 0 || v > max {
        issues.push(ConfigIssue::new(key, format!("{v} is outside 1..={max}")));
    }
}

pub fn check(
    raw: RawSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    let p = &raw.pipeline;
    if p.workers == 0 || p.workers > 256 {
        issues.push(ConfigIssue::new(
            "pipeline.workers",
            format!("{} is outside 1..=256", p.workers),
        ));
    }
    positive(&mut issues, "pipeline.window_secs", p.window_secs, 86_400);
    positive(
        &mut issues,
        "pipeline.idle_timeout_secs",
        p.idle_timeout_secs,
        86_400,
    );
    positive(
        &mut issues,
        "pipeline.stale_after_secs",
        p.stale_after_secs,
        86_400,
    );
    positive(
        &mut issues,
        "pipeline.max_future_secs",
        p.max_future_secs,
        86_400 * 7,
    );
    positive(
        &mut issues,
        "pipeline.batch_size",
        p.batch_size as u64,
        1 << 20,
    );
    positive(
        &mut issues,
        "pipeline.queue_batches",
        p.queue_batches as u64,
        1 << 16,
    );
    if p.correction_horizon_secs > 86_400 {
        issues.push(ConfigIssue::new(
            "pipeline.correction_horizon_secs",
            format!("{} is more than a day", p.correction_horizon_secs),
        ));
    }
    if p.allowed_lateness_secs > 86_400 {
        issues.push(ConfigIssue::new(
            "pipeline.allowed_lateness_secs",
            format!("{} is more than a day", p.allowed_lateness_secs),
        ));
    }
    if p.window_secs > 0 && 86_400 % p.window_secs != 0 {
        issues.push(ConfigIssue::new(
            "pipeline.window_secs",
            format!(
                "{} does not divide a day, so windows would not align to days",
                p.window_secs
            ),
        ));
    }
    let t = &raw.time_model;
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
    if t.startup_secs > 86_400 {
        issues.push(ConfigIssue::new(
            "time_model.startup_secs",
            format!("{} is more than a day", t.startup_secs),
        ));
    }
    let mut calendars = HashMap::new();
    for (site, cal) in &raw.sites {
        if let Some(c) = cal.check(&format!("sites.{site}"), p.window_secs, &mut issues) {
            calendars.insert(std::sync::Arc::<str>::from(site.as_str()), c);
        }
    }
    let mut energy = HashMap::new();
    match raw.energy.check("energy", &mut issues).ok_or_else(Vec::new) {
        Ok(sites) => {
            let mut currencies = std::collections::BTreeSet::new();
            for (site, e) in sites {
                // Tariff periods are local times: the site needs its zone.
                if !raw.sites.contains_key(&site) {
                    issues.push(ConfigIssue::new(
                        format!("energy.sites.{site}"),
                        format!("needs [sites.{site}] with its time_zone: tariff periods are in local time"),
                    ));
                }
                currencies.insert(e.tariff.currency().to_string());
                for (i, at) in e.tariff.misaligned(p.window_secs) {
                    issues.push(ConfigIssue::new(
                        format!("energy.sites.{site}.tariff.periods[{i}]"),
                        format!(
                            "its boundary at {at} is not on a window boundary (pipeline.window_secs = {}): a window takes the rate of its local start, so the window across {at} would be priced at one rate",
                            p.window_secs
                        ),
                    ));
                }
                energy.insert(std::sync::Arc::<str>::from(site.as_str()), e);
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
        }
        Err(mut more) => issues.append(&mut more),
    }
    // A reading interval longer than the lookahead is spread by correcting
    // the windows that closed before its end reading came: they must still
    // be kept.
    let lookahead_secs = {
        let reach = t.micro_stop_secs.max(p.stale_after_secs);
        match p.window_secs {
            0 => 0,
            w => reach.div_ceil(w) * w,
        }
    };
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
    let mut max_rate_per_s = ctower_model::NameMap::default();
    for (name, sig) in &raw.signals {
        if let Some(r) = sig.max_rate_per_s {
            if r.is_finite() && r > 0.0 {
                max_rate_per_s.insert(std::sync::Arc::<str>::from(name.as_str()), r);
            } else {
                issues.push(ConfigIssue::new(
                    format!("signals.{name}.max_rate_per_s"),
                    format!("{r} must be a positive number (units per second)"),
                ));
            }
        }
    }
    let mut max_interval_ms = ctower_model::NameMap::default();
    for (name, sig) in &raw.signals {
        let key = format!("signals.{name}.max_interval_secs");
        if let Some(v) = sig.max_interval_secs {
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
                max_interval_ms.insert(std::sync::Arc::<str>::from(name.as_str()), v as i64 * 1000);
            }
        }
    }
    let mut ideal_cycle_ms = HashMap::new();
    for (name, prod) in &raw.products {
        let v = prod.ideal_cycle_secs;
        if !(v.is_finite() && v > 0.0) {
            issues.push(ConfigIssue::new(
                format!("products.{name}.ideal_cycle_secs"),
                format!("{v} must be a positive number of seconds"),
            ));
        }
        ideal_cycle_ms.insert(name.clone(), v * 1000.0);
    }
    let mut sources = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, s) in raw.sources.iter().enumerate() {
        let key = format!("sources[{i}]");
        if !names.insert(s.name.clone()) {
            issues.push(ConfigIssue::new(
                format!("{key}.name"),
                format!("`{}` is used twice", s.name),
            ));
        }
        if let Some(spec) = s.check(&key, env, &mut issues) {
            sources.push(spec);
        }
    }
    let alerts = raw
        .alerts
        .check("alerts", Secrets::Required(env), &mut issues);
    let ctower_alerts::Alerts { rules, hooks } = alerts.unwrap_or_default();
    for (key, v) in [
        (
            "water.conductivity_limit_us_cm",
            raw.water.conductivity_limit_us_cm,
        ),
        ("water.toc_limit_ppb", raw.water.toc_limit_ppb),
    ] {
        if !(v.is_finite() && v > 0.0) {
            issues.push(ConfigIssue::new(
                key,
                format!("{v} must be a positive number"),
            ));
        }
    }
    if !(1..=16_384).contains(&raw.journal.max_backlog_mib) {
        issues.push(ConfigIssue::new(
            "journal.max_backlog_mib",
            format!("{} is outside 1..=16384", raw.journal.max_backlog_mib),
        ));
    }
    let d = &raw.demo;
    if !(d.speed.is_finite() && d.speed > 0.0) {
        issues.push(ConfigIssue::new(
            "demo.speed",
            format!("{} must be a positive factor", d.speed),
        ));
    }
    let broker_bind = d
        .broker_bind
        .parse()
        .map_err(|_| {
            issues.push(ConfigIssue::new(
                "demo.broker_bind",
                format!("`{}` is not HOST:PORT (e.g. 127.0.0.1:0)", d.broker_bind),
            ))
        })
        .ok();
    if !issues.is_empty() {
        return Err(issues);
    }
    let ms = |s: u64| s as i64 * 1000;
    Ok(Settings {
        workers: p.workers,
        accum: AccumConfig {
            window_ms: ms(p.window_secs),
            stale_after_ms: ms(p.stale_after_secs),
            ideal_cycle_ms,
            conductivity_limit_us_cm: raw.water.conductivity_limit_us_cm,
            toc_limit_ppb: raw.water.toc_limit_ppb,
            micro_stop_ms: ms(t.micro_stop_secs),
            startup_ms: ms(t.startup_secs),
            counter_rollover: t.counter_rollover,
            calendars: std::sync::Arc::new(calendars),
            energy: std::sync::Arc::new(energy),
            correction_horizon_ms: ms(p.correction_horizon_secs),
            max_interval_ms,
            retire_after_ms: ms(p.asset_retire_after_secs),
            forget_after_ms: ms(p.asset_forget_after_secs),
        },
        limits: LimitRules {
            sources: sources.iter().map(|s| s.limits).collect(),
            max_rate_per_s,
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
        sources,
        dead_letters: raw.dead_letters.path,
        journal_dir: raw.journal.dir,
        journal_max_backlog_bytes: (raw.journal.max_backlog_mib as usize) << 20,
        rules,
        hooks,
        demo: CheckedDemo {
            recording: raw.demo.recording,
            speed: raw.demo.speed,
            broker_bind: broker_bind
                .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<RawSettings, config::ConfigError> {
        config::Config::builder()
            .add_source(config::File::from_str(toml_text, config::FileFormat::Toml))
            .build()?
            .try_deserialize()
    }

    #[test]
    fn shipped_configs_load() {
        for f in ["configs/default.toml", "configs/example-plant.toml"] {
            let text = std::fs::read_to_string(f).unwrap();
            let raw = parse(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
            if let Err(issues) = check(raw, &|_| Some("secret".into())) {
                panic!("{f}: {issues:?}");
            }
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let e = parse("[pipeline]\nwindow_sec = 60\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("window_sec"), "{e}");
    }

    #[test]
    fn tariff_boundaries_must_fall_on_window_boundaries() {
        let raw = parse(
            r#"
            [pipeline]
            window_secs = 900
            [sites.lyon]
            time_zone = "Europe/Paris"
            shifts = [{ name = "day", start = "06:00", end = "22:00" }]
            [energy.sites.lyon]
            emission_factor_kg_per_kwh = 0.05
            [energy.sites.lyon.tariff]
            currency = "EUR"
            default_price_per_kwh = 0.2
            periods = [
              { name = "peak", days = ["mon-fri"], start = "07:05", end = "20:00", price_per_kwh = 0.3 },
              { name = "night", days = ["mon-sun"], start = "22:00", end = "23:45", price_per_kwh = 0.1 },
            ]
            "#,
        )
        .unwrap();
        let issues = check(raw, &|_| None).err().unwrap();
        let tariff: Vec<&ConfigIssue> = issues
            .iter()
            .filter(|i| i.key.starts_with("energy.sites.lyon.tariff"))
            .collect();
        assert_eq!(tariff.len(), 1, "{issues:?}");
        assert_eq!(tariff[0].key, "energy.sites.lyon.tariff.periods[0]");
        assert!(tariff[0].message.contains("07:05"), "{}", tariff[0].message);
    }

    #[test]
    fn signal_intervals_rates_and_retirement_are_checked_with_their_keys() {
        let raw = parse(
            r#"
            [pipeline]
            correction_horizon_secs = 1800
            asset_retire_after_secs = 600
            [signals.feed_m3]
            max_interval_secs = 3600
            [signals.count_total]
            max_rate_per_s = -1
            [signals.energy_kwh]
            max_interval_secs = 900
            max_rate_per_s = 50
            "#,
        )
        .unwrap();
        let issues = check(raw, &|_| None).err().unwrap();
        let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "pipeline.asset_retire_after_secs",
                "signals.count_total.max_rate_per_s",
                "signals.feed_m3.max_interval_secs",
            ],
            "{issues:?}"
        );
        assert!(
            issues[2].message.contains("correction_horizon_secs"),
            "{}",
            issues[2].message
        );
        let ok =
            parse("[signals.feed_m3]\nmax_interval_secs = 1800\nmax_rate_per_s = 2.5\n").unwrap();
        let s = check(ok, &|_| None).unwrap_or_else(|i| panic!("{i:?}"));
        assert_eq!(s.accum.max_interval("feed_m3"), 1_800_000);
        assert_eq!(s.limits.max_rate_per_s.get("feed_m3"), Some(&2.5));
    }

    #[test]
    fn all_problems_at_once() {
        let raw = parse(
            r#"
            [pipeline]
            workers = 0
            window_secs = 7
            [products.x]
            ideal_cycle_secs = -1
            [[sources]]
            name = "a"
            broker_url = "http://x"
            [[alerts.rules]]
            name = "r"
            source = "kpi"
            level = "line"
            metric = "nope"
            condition = "below"
            threshold = 1
            priority = "high"
            "#,
        )
        .unwrap();
        let keys: Vec<String> = check(raw, &|_| None)
            .err()
            .unwrap()
            .into_iter()
            .map(|i| i.key)
            .collect();
        for k in [
            "pipeline.workers",
            "pipeline.window_secs",
            "products.x.ideal_cycle_secs",
            "sources[0].broker_url",
            "alerts.rules[0].metric",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
        }
    }
}
