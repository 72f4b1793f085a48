//! Configuration: `configs/*.toml` layered with `CTOWER__…` environment
//! variables (`CTOWER__PIPELINE__WORKERS=4`), strict, units in the names,
//! checked into typed [`Settings`] at load with every problem reported at
//! once, each with where it was written (file and line, or the variable)
//! and its key.
//!
//! Loading, in steps:
//! 1. [`input`]: the file as a tree of values with their lines (TOML
//!    syntax errors are problems like the others); the `config` crate
//!    collects the `CTOWER__` environment (prefix, `__` separator), which
//!    is laid over the tree, each value blamed on its variable; a variable
//!    that names no key is a problem of that variable, with a "did you
//!    mean";
//! 2. [`walk`]: every value against the shape traced from the Rust types
//!    ([`schema`]): wrong types (`"60"` for a number, `2.5` for a whole
//!    number), unknown keys (with a "did you mean"), missing keys;
//! 3. [`checks`]: the values, one section at a time and across sections
//!    (time zones, URLs, tariffs against windows …), by the crates' own
//!    `check` functions.
//!
//! Problems of all three steps are reported together; a key already
//! wrong in step 2 is not reported again by step 3.

mod checks;
mod commands;
mod control;
mod influx;
pub use commands::CommandsRules;
pub use control::ControlRules;
mod input;
mod raw;
mod schema;
mod suggest;
mod walk;

pub use checks::{check, check_with, Env};
pub use input::Origin;
pub use raw::{
    DeadLetterConfig, DemoConfig, JournalConfig, PipelineConfig, ProductConfig, RawSettings,
    SignalConfig, TimeModelConfig, WaterConfig,
};
pub use walk::SecretRef;

use crate::journal::Retention;
use ctower_alerts::{Hook, Rule, Secrets};
use ctower_collector::admission::AdmissionRules;
use ctower_collector::config::Source;
use ctower_collector::endpoint::BrokerAddr;
use ctower_collector::limits::LimitRules;
use ctower_collector::rawjournal::RawJournalRules;
use ctower_model::ConfigIssue;
use ctower_stream::AccumConfig;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Checked settings: everything the commands need, in the types of the
/// crates that use them.
pub struct Settings {
    /// Timely worker threads (`pipeline.workers`).
    pub workers: usize,
    /// The stream's per-asset configuration (windows, time model, products,
    /// calendars, energy).
    pub accum: AccumConfig,
    /// The collector's admission (watermark, lateness, horizon).
    pub admission: AdmissionRules,
    /// The collector's limits per source and signal.
    pub limits: LimitRules,
    /// Observations per batch handed to the stream.
    pub batch_size: usize,
    /// Batches queued between collector and stream.
    pub queue_batches: usize,
    /// The MQTT sources.
    pub sources: Vec<Source>,
    /// The dead-letter file.
    pub dead_letters: PathBuf,
    /// The journal's directory.
    pub journal_dir: PathBuf,
    /// Lines the journal keeps in memory while it cannot write, bytes.
    pub journal_max_backlog_bytes: usize,
    /// The journal's rotation and retention.
    pub journal_retention: Retention,
    /// The raw journal of the live sources (`None`: off).
    pub raw_journal: Option<RawJournalRules>,
    /// The audit trail of alarm changes and operator actions (live mode).
    pub audit_path: PathBuf,
    /// The InfluxDB output (`None`: the journal only).
    pub influx: Option<crate::influx::InfluxRules>,
    /// The alarm command topic (`None`: off).
    pub commands: Option<CommandsRules>,
    /// Remote parameter control (`None`: nothing is ever written).
    pub control: Option<ControlRules>,
    /// The alarm rules.
    pub rules: Vec<Rule>,
    /// The alarm hooks.
    pub hooks: Vec<Hook>,
    /// Where the hooks' outboxes are (`<dir>/<hook>/`).
    pub hook_outbox_dir: PathBuf,
    /// Each hook outbox's disk budget.
    pub hook_outbox_budget_bytes: u64,
    /// Flood limits per site console.
    pub flood: ctower_alerts::FloodLimits,
    /// What the demo replays.
    pub demo: CheckedDemo,
}

/// `[demo]`, checked.
pub struct CheckedDemo {
    /// The recording the demo replays.
    pub recording: PathBuf,
    /// Its replay speed factor.
    pub speed: f64,
    /// Where the embedded broker listens (port 0: any free port).
    pub broker_bind: std::net::SocketAddr,
    /// The group of the live simulated edge node (none: no live plant).
    pub live_plant_group: Option<String>,
}

impl Settings {
    /// The read-back signals of the parameter catalogue (filled by [control]).
    pub fn write_signals(&self) -> std::collections::BTreeSet<std::sync::Arc<str>> {
        self.control
            .iter()
            .flat_map(|c| c.catalogue.readback_signals())
            .collect()
    }

    /// Whether a source names the embedded broker (`broker_url = "embedded"`).
    pub fn uses_embedded_broker(&self) -> bool {
        self.sources
            .iter()
            .any(|s| s.broker == BrokerAddr::Embedded)
            || self
                .commands
                .as_ref()
                .is_some_and(|c| c.broker == BrokerAddr::Embedded)
    }
}

/// A configuration read and checked.
pub struct Loaded {
    /// The settings.
    pub settings: Settings,
    /// Every key naming a secret's environment variable (`…_env`), with
    /// where it was written: `ctower check` says which are not set.
    pub secrets: Vec<SecretRef>,
}

/// Loads `path` and the process's `CTOWER__…` environment, then checks
/// everything (every named secret must be set); the error lists every
/// problem.
pub fn load(path: &Path) -> anyhow::Result<Settings> {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let env = |name: &str| std::env::var(name).ok();
    match read(path, &vars, Secrets::Required(&env)) {
        Ok(loaded) => Ok(loaded.settings),
        Err(issues) => anyhow::bail!("{}", report(path, &issues)),
    }
}

/// Reads the file `path` with the environment `vars` (name, value) over it
/// and checks everything, reading secrets as `secrets` says.
pub fn read(
    path: &Path,
    vars: &[(String, String)],
    secrets: Secrets<'_>,
) -> Result<Loaded, Vec<ConfigIssue>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![ConfigIssue::new("", format!("cannot read it: {e}")).at(&name, None)])?;
    read_str(&name, &text, vars, secrets)
}

/// [`read`] of a configuration's text; `name` names it in the problems.
pub fn read_str(
    name: &str,
    text: &str,
    vars: &[(String, String)],
    secrets: Secrets<'_>,
) -> Result<Loaded, Vec<ConfigIssue>> {
    let shape = schema::trace::<RawSettings>().map_err(|e| {
        vec![ConfigIssue::new(
            "",
            format!("cannot trace the configuration's types: {e}"),
        )]
    })?;
    let mut root = input::parse_toml(name, text)?;
    let vars = environment(vars).map_err(|e| vec![e])?;
    let mut issues = input::apply_env(&mut root, &shape, &vars);
    let walked = walk::walk(&root, &shape);
    issues.extend(walked.issues.iter().cloned());
    let raw = walked.value.clone().map(RawSettings::deserialize_from);
    let raw = match raw {
        Some(Ok(raw)) => raw,
        Some(Err(e)) => {
            // The walk let through something serde refuses: a bug here,
            // still reported rather than lost.
            issues.push(ConfigIssue::new("", e).at(name, None));
            return Err(issues);
        }
        None => return Err(issues),
    };
    match checks::check_with(raw, secrets) {
        Ok(settings) if issues.is_empty() => Ok(Loaded {
            settings,
            secrets: walked.secrets,
        }),
        Ok(_) => Err(issues),
        Err(more) => {
            for issue in more.into_iter().filter(|i| !walked.is_bad(&i.key)) {
                issues.push(match walked.locate(&issue.key) {
                    Some(at) => at.attach(issue),
                    None => issue.at(name, None),
                });
            }
            Err(issues)
        }
    }
}

/// The `CTOWER__…` variables of `vars`, as the `config` crate's
/// environment source reads them (prefix `CTOWER`, `__` between the
/// prefix and each key), each with the name it was set under.
fn environment(vars: &[(String, String)]) -> Result<Vec<(String, String)>, ConfigIssue> {
    use config::Source as _;
    let ours: HashMap<String, String> = vars
        .iter()
        .filter(|(k, _)| k.starts_with(input::ENV_PREFIX))
        .cloned()
        .collect();
    // The source lower-cases a variable's path and joins it with dots;
    // the original name says where a problem was written.
    let names: HashMap<String, &String> = ours
        .keys()
        .map(|k| {
            (
                k[input::ENV_PREFIX.len()..]
                    .to_lowercase()
                    .replace("__", "."),
                k,
            )
        })
        .collect();
    let collected = config::Environment::with_prefix("CTOWER")
        .prefix_separator("__")
        .separator("__")
        .source(Some(ours.clone()))
        .collect()
        .map_err(|e| ConfigIssue::new("", format!("reading the environment: {e}")))?;
    let mut out: Vec<(String, String)> = collected
        .into_iter()
        .map(|(path, value)| {
            let name = names.get(&path).map_or_else(
                || {
                    format!(
                        "{}{}",
                        input::ENV_PREFIX,
                        path.to_uppercase().replace('.', "__")
                    )
                },
                |n| n.to_string(),
            );
            (name, value.to_string())
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Every problem of `path`, one per line, for an error message.
pub fn report(path: &Path, issues: &[ConfigIssue]) -> String {
    let list: Vec<String> = issues.iter().map(|i| format!("  - {i}")).collect();
    format!(
        "{} problem(s) in configuration {}:\n{}",
        issues.len(),
        path.display(),
        list.join("\n")
    )
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

    /// The strict reading ([`read_str`]) of `text` named `f.toml`, with
    /// `vars` as the environment and no secrets set.
    fn strict(text: &str, vars: &[(&str, &str)]) -> Result<Settings, Vec<ConfigIssue>> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        read_str("f.toml", text, &vars, Secrets::IfSet(&|_| None)).map(|l| l.settings)
    }

    fn shown(issues: &[ConfigIssue]) -> Vec<String> {
        issues.iter().map(ToString::to_string).collect()
    }

    /// A `[control]` catalogue is checked against the sources and the
    /// users, every problem at once with its key.
    #[test]
    fn the_parameter_catalogue_is_checked_with_every_problem_and_its_key() {
        let base = r##"
[[sources]]
name = "uns"
broker_url = "mqtt://127.0.0.1:1883"
subscriptions = ["#"]

[commands]
broker_url = "mqtt://127.0.0.1:1883"
console_user = "zed"

[[commands.users]]
name = "alice"
roles = ["operator"]
signature_hash = "$2b$12$notargon"

[[control.parameters]]
name = "sp"
assets = ["a/b/c/d", "x/y"]
source = "uns"
type = "float"
min = 10.0
max = 1.0
request_roles = []

[[control.parameters]]
name = "sp"
assets = ["a/*/c/*"]
source = "nowhere"
type = "bool"
min = 0.0
request_roles = ["operator"]

[[control.parameters]]
name = "sp2"
assets = ["a/b/*/d"]
source = "uns"
type = "int"
min = 0
max = 10
readback_signal = "sp"
request_roles = ["operator"]
"##;
        let issues = shown(&strict(base, &[]).err().unwrap());
        for want in [
            "commands.console_user: `zed` is not one of commands.users",
            "commands.users[0].signature_hash: not an argon2 hash",
            "control.parameters[0].assets[1]: `x/y` is not `site/area/line/asset`",
            "control.parameters[0].source: source `uns` subscribes to the command topics",
            "control.parameters[0].max: 1 is below min 10",
            "control.parameters[0].request_roles: name at least one role",
            "control.parameters[1].source: no [[sources]] is named `nowhere`",
            "control.parameters[1].min: a switch (`bool`) has no bounds",
            "control.parameters[1].assets: `sp` is already listed for assets that overlap these",
            "control.parameters[2].readback_signal: `sp` is already the read-back of `sp`",
        ] {
            assert!(
                issues.iter().any(|i| i.contains(want)),
                "missing `{want}` in {issues:#?}"
            );
        }
    }

    #[test]
    fn the_configuration_types_are_traced() {
        let shape = schema::trace::<RawSettings>().unwrap();
        let described = format!("{shape:?}");
        for key in ["window_secs", "broker_url", "rotate_mib", "threshold"] {
            assert!(described.contains(key), "{key} in {described}");
        }
    }

    #[test]
    fn wrong_types_are_refused_with_line_and_key() {
        let issues = strict("[pipeline]\nwindow_secs = \"60\"\nworkers = 2.5\n", &[])
            .err()
            .unwrap();
        let shown = shown(&issues);
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(
            shown[0].starts_with("f.toml:2: pipeline.window_secs: "),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with("f.toml:3: pipeline.workers: "),
            "{shown:?}"
        );
    }

    #[test]
    fn key_paths_are_written_as_in_the_file() {
        let text = r#"
            [[alerts.rules]]
            name = "a"
            source = "kpi"
            level = "line"
            metric = "availability"
            condition = "below"
            threshold = 0.5
            priority = "high"
            [[alerts.rules]]
            name = "b"
            source = "kpi"
            level = "line"
            metric = "availability"
            condition = "below"
            threshold = "low"
            priority = "high"
            "#;
        let shown = shown(&strict(text, &[]).err().unwrap());
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(
            shown[0].starts_with("f.toml:16: alerts.rules[1].threshold: "),
            "{shown:?}"
        );
    }

    #[test]
    fn environment_values_are_typed_and_blamed_on_their_variable() {
        let s = strict("", &[("CTOWER__PIPELINE__WORKERS", "4")]).unwrap();
        assert_eq!(s.workers, 4);
        let shown = shown(
            &strict(
                "[pipeline]\nworkers = 2\n",
                &[
                    ("CTOWER__PIPELINE__WORKERS", "four"),
                    ("CTOWER__PIPELINE__WINDOW_SEC", "60"),
                    ("CTOWER_OTHER", "not ours"),
                ],
            )
            .err()
            .unwrap(),
        );
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(
            shown
                .iter()
                .any(|l| l.starts_with("CTOWER__PIPELINE__WORKERS: pipeline.workers: ")),
            "{shown:?}"
        );
        let unknown = shown
            .iter()
            .find(|l| l.starts_with("CTOWER__PIPELINE__WINDOW_SEC: "))
            .unwrap();
        assert!(
            unknown.contains("CTOWER__PIPELINE__WINDOW_SECS"),
            "{unknown}"
        );
        assert!(!shown.iter().any(|l| l.contains("f.toml")), "{shown:?}");
    }

    #[test]
    fn type_and_semantic_problems_come_together_once_each() {
        let shown = shown(
            &strict(
                "[pipeline]\nwindow_secs = 7\nworkers = \"2\"\n[journal]\nkeep_days = 0\n",
                &[],
            )
            .err()
            .unwrap(),
        );
        let keys: Vec<&str> = shown
            .iter()
            .map(|l| l.split(": ").nth(1).unwrap_or(""))
            .collect();
        assert_eq!(
            keys,
            [
                "pipeline.workers",
                "pipeline.window_secs",
                "journal.keep_days"
            ],
            "{shown:?}"
        );
        assert!(shown[1].starts_with("f.toml:2: "), "{shown:?}");
        assert!(shown[2].starts_with("f.toml:5: "), "{shown:?}");
    }

    #[test]
    fn journal_retention_is_configured() {
        let s = strict(
            "[journal]\nrotate_mib = 8\nkeep_days = 2\nkeep_mib = 64\n",
            &[],
        )
        .unwrap();
        assert_eq!(s.journal_retention.max_file_bytes, 8 << 20);
        assert_eq!(s.journal_retention.max_age_ms, 2 * 86_400_000);
        assert_eq!(s.journal_retention.max_total_bytes, 64 << 20);
        assert_eq!(
            strict("", &[]).unwrap().journal_retention,
            Retention::default()
        );
    }
}
