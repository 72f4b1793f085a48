//! What the configuration file says (`FooConfig`: serde shapes, strict,
//! nothing checked yet); the crates' own sections (`[[sources]]`,
//! `[alerts]`, `[sites.NAME]`, `[energy]`) are their types.

use ctower_alerts::AlertsConfig;
use ctower_collector::SourceConfig;
use ctower_stream::calendar::SiteCalendarConfig;
use ctower_stream::energy::EnergyConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The whole file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// `[pipeline]`.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// `[products.NAME]`.
    #[serde(default)]
    pub products: BTreeMap<String, ProductConfig>,
    /// `[[sources]]`: the MQTT brokers.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// `[dead_letters]`.
    #[serde(default)]
    pub dead_letters: DeadLetterConfig,
    /// `[journal]`.
    #[serde(default)]
    pub journal: JournalConfig,
    /// `[raw_journal]`.
    #[serde(default)]
    pub raw_journal: RawJournalConfig,
    /// `[audit]`: the alarm audit trail.
    #[serde(default)]
    pub audit: AuditConfig,
    /// `[influx]`: KPIs to InfluxDB (none: the journal only).
    #[serde(default)]
    pub influx: Option<InfluxConfig>,
    /// `[alerts]`: rules and hooks.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// `[commands]`: the alarm command topic (none: only the in-process
    /// dashboard acts on alarms).
    #[serde(default)]
    pub commands: Option<CommandsConfig>,
    /// `[control]`: remote parameter control (none: nothing is ever
    /// written to a plant).
    #[serde(default)]
    pub control: Option<ControlConfig>,
    /// `[demo]`.
    #[serde(default)]
    pub demo: DemoConfig,
    /// `[water]`.
    #[serde(default)]
    pub water: WaterConfig,
    /// `[time_model]`.
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

/// `[time_model]`: how machine states become time buckets.
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

/// `[water]`: purified-water limits.
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

/// `[pipeline]`: windows, lateness, queues and workers.
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

/// `[products.NAME]`: one product.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductConfig {
    /// Ideal cycle time of one unit, seconds (ISO 22400 "planned run time per item").
    pub ideal_cycle_secs: f64,
}

/// `[dead_letters]`: where refused messages go.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLetterConfig {
    /// The dead-letter file (JSON Lines).
    pub path: PathBuf,
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        DeadLetterConfig {
            path: PathBuf::from("out/dead-letters.jsonl"),
        }
    }
}

/// `[journal]`: the local line-protocol journal.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// Directory of the local journal (InfluxDB line protocol).
    pub dir: PathBuf,
    /// Lines kept in memory while the journal cannot write (a full disk),
    /// MiB; past it the oldest are dropped and counted.
    pub max_backlog_mib: u64,
    /// The live file is rotated (at a window's commit) once it reaches
    /// this size, MiB.
    pub rotate_mib: u64,
    /// Rotated files older than this are deleted, days.
    pub keep_days: u64,
    /// The oldest rotated files are deleted while they total more, MiB.
    pub keep_mib: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            dir: PathBuf::from("out/journal"),
            max_backlog_mib: 64,
            rotate_mib: 256,
            keep_days: 30,
            keep_mib: 4096,
        }
    }
}

/// `[raw_journal]`: every message of the live sources on disk before it
/// is acknowledged (`collector::rawjournal`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawJournalConfig {
    /// Whether live sources write it (and acknowledge by hand).
    pub enabled: bool,
    /// Directory of the segments.
    pub dir: PathBuf,
    /// A new segment past this size, MiB.
    pub segment_mib: u64,
    /// Segments older than this are deleted, hours.
    pub keep_hours: u64,
    /// The oldest segments are deleted while they total more, MiB.
    pub keep_mib: u64,
}

impl Default for RawJournalConfig {
    fn default() -> Self {
        RawJournalConfig {
            enabled: true,
            dir: PathBuf::from("out/raw"),
            segment_mib: 64,
            keep_hours: 72,
            keep_mib: 4096,
        }
    }
}

/// `[audit]`: the hash-chained audit trail of alarm changes and operator
/// actions (`ctower_alerts::audit`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The trail's file (default: `audit.jsonl` in the journal's directory).
    pub path: Option<PathBuf>,
}

/// `[commands]`: operators' requests over MQTT (`ctower alarms …`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandsConfig {
    /// The broker of the command topic: `embedded`, `mqtt://HOST:PORT`,
    /// `mqtts://HOST:PORT`.
    pub broker_url: String,
    /// Topic prefix (default `ctower`).
    pub topic_prefix: Option<String>,
    /// The engine's MQTT client id (default `ctower-commands`).
    pub client_id: Option<String>,
    /// The engine's broker user.
    pub username: Option<String>,
    /// The environment variable holding its password.
    pub password_env: Option<String>,
    /// Who may act on alarms.
    #[serde(default)]
    pub users: Vec<CommandUser>,
    /// Who acts at the engine's own terminal (the in-process dashboard)
    /// for parameter control: a listed user (default: the operating
    /// system's user, if listed).
    pub console_user: Option<String>,
}

/// One `[[commands.users]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandUser {
    /// The user's name: their broker user, the last level of their topics.
    pub name: String,
    /// What they may do (default all: acknowledge, shelve, unshelve,
    /// comment, remove_from_service, return_to_service; `list` always).
    pub actions: Option<Vec<ctower_model::CommandAction>>,
    /// Their roles for parameter control (`[[control.parameters]]`
    /// `request_roles`, `approve_roles`); default none.
    pub roles: Option<Vec<String>>,
    /// Their electronic signature: the salted argon2id hash (PHC string)
    /// of a secret of their own (`ctower signature hash`); required to
    /// request, approve or reject a parameter write.
    pub signature_hash: Option<String>,
}

/// `[control]`: remote parameter control.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Refuse every write (default false).
    #[serde(default)]
    pub read_only: bool,
    /// The first level of the UNS command topics of JSON sources
    /// (`<prefix>/<site>/<area>/<line>/<asset>/<param>`); default
    /// `ctower-cmd`.
    pub uns_command_prefix: Option<String>,
    /// The writable parameters.
    #[serde(default)]
    pub parameters: Vec<ParamConfig>,
}

/// One `[[control.parameters]]`: a writable parameter of some assets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamConfig {
    /// Its name (1 to 64 of A-Z a-z 0-9 - _ .).
    pub name: String,
    /// The assets that have it: `site/area/line/asset`, `*` for any level.
    pub assets: Vec<String>,
    /// The `[[sources]]` name its commands go through.
    pub source: String,
    /// Its unit (`%`, `degC`, `upm` …).
    #[serde(default)]
    pub unit: String,
    /// `float`, `int` or `bool`.
    #[serde(rename = "type")]
    pub ty: ctower_model::ParamType,
    /// Least value (numbers; required for them).
    pub min: Option<f64>,
    /// Greatest value (numbers; required for them).
    pub max: Option<f64>,
    /// Largest change in one request (numbers; default: no limit but min/max).
    pub max_step: Option<f64>,
    /// The signal reporting the value the plant runs with (default: `name`).
    pub readback_signal: Option<String>,
    /// How far the read-back may be from the value asked (default 0; floats
    /// 0.001).
    pub tolerance: Option<f64>,
    /// How long the read-back may take after sending, s (default 30).
    pub confirm_secs: Option<u64>,
    /// How long a request waits for approval, s (default 900).
    pub approval_secs: Option<u64>,
    /// Least time between two requests on one asset's parameter, s
    /// (default 60).
    pub min_interval_secs: Option<u64>,
    /// A read-back older than this means the source is stale, s (default
    /// `pipeline.stale_after_secs`).
    pub stale_secs: Option<u64>,
    /// Roles that may request a write (at least one).
    pub request_roles: Vec<String>,
    /// Roles that may approve or reject (default: `request_roles`).
    pub approve_roles: Option<Vec<String>>,
    /// Whether a second person must approve (default true).
    pub two_person: Option<bool>,
}

/// `[influx]`: the InfluxDB output (`crate::influx`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    /// The server's base URL, e.g. `http://localhost:8086`.
    pub url: String,
    /// Organisation.
    pub org: String,
    /// Bucket.
    pub bucket: String,
    /// Environment variable holding the API token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the API token (its final newline dropped).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Lines per write, at most 5000.
    #[serde(default = "defaults::batch_lines")]
    pub batch_lines: u64,
    /// The longest a line waits for a fuller batch, ms.
    #[serde(default = "defaults::flush_interval_ms")]
    pub flush_interval_ms: u64,
    /// Each request's deadline, seconds.
    #[serde(default = "defaults::timeout_secs")]
    pub timeout_secs: u64,
    /// The retry back-off's cap, seconds.
    #[serde(default = "defaults::retry_max_secs")]
    pub retry_max_secs: u64,
    /// Directory of the outbox.
    #[serde(default = "defaults::outbox_dir")]
    pub outbox_dir: PathBuf,
    /// The outbox's disk budget, MiB.
    #[serde(default = "defaults::outbox_budget_mib")]
    pub outbox_budget_mib: u64,
    /// Where lines the server refuses go (JSON Lines).
    #[serde(default = "defaults::influx_dead_letters")]
    pub dead_letter_path: PathBuf,
}

mod defaults {
    use std::path::PathBuf;
    pub fn batch_lines() -> u64 {
        5000
    }
    pub fn flush_interval_ms() -> u64 {
        1000
    }
    pub fn timeout_secs() -> u64 {
        10
    }
    pub fn retry_max_secs() -> u64 {
        60
    }
    pub fn outbox_dir() -> PathBuf {
        PathBuf::from("out/influx-outbox")
    }
    pub fn outbox_budget_mib() -> u64 {
        1024
    }
    pub fn influx_dead_letters() -> PathBuf {
        PathBuf::from("out/influx-dead-letters.jsonl")
    }
}

/// `[demo]`: what `ctower demo` replays.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Recording replayed by the demo.
    pub recording: PathBuf,
    /// Replay speed factor of the demo.
    pub speed: f64,
    /// Address of the embedded broker (`127.0.0.1:0` = any free port).
    pub broker_bind: String,
    /// The Sparkplug group of a live simulated edge node the demo runs on
    /// its embedded broker (`ctower plant`), on the replay's clock, that
    /// obeys parameter writes (none: no live plant).
    pub live_plant_group: Option<String>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            recording: PathBuf::from("replay-data/plants-2h.jsonl.gz"),
            speed: 10.0,
            broker_bind: "127.0.0.1:0".into(),
            live_plant_group: None,
        }
    }
}

impl RawSettings {
    /// The settings as written, from a value the walk has checked.
    pub(super) fn deserialize_from(value: toml::Value) -> Result<RawSettings, String> {
        value.try_into().map_err(|e: toml::de::Error| e.to_string())
    }
}
