//! The command line: what each `ctower` command takes. Parsing only; the
//! commands themselves are in [`crate::commands`].

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// `ctower`: the industrial plant control tower.
#[derive(Parser, Debug)]
#[command(
    name = "ctower",
    version,
    about = "Industrial plant control tower: MQTT telemetry → OEE, energy and water KPIs, alarms, live dashboard"
)]
pub struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info`, `ctower=debug`.
    #[arg(long, global = true, default_value = "info", env = "CTOWER_LOG")]
    pub log: String,
    /// The command (default: `demo`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the pipeline from a configuration: headless live mode, or with
    /// `--replay … --speed max --until-end --out DIR` the deterministic batch mode.
    Run(RunArgs),
    /// The demo: embedded broker, looping replay of the recorded plants,
    /// pipeline, journal and dashboard (also what `ctower` alone runs).
    Demo(DemoArgs),
    /// Publish a recording to a broker, paced (1, 10 …) or at full speed (max).
    Replay(ReplayArgs),
    /// Record live MQTT traffic into a replay file.
    Record(RecordArgs),
    /// Write a deterministic recording of simulated plants.
    Simulate(SimulateArgs),
    /// Validate a configuration as `run` would read it (file and
    /// `CTOWER__…` environment), reporting every problem with its file,
    /// line and key; secrets that are not set are notes, not problems.
    Check(CheckArgs),
    /// Load a period of the journal into InfluxDB (`[influx]` of the
    /// configuration), with the live writer's batches, retries and
    /// idempotence: a point exported twice overwrites itself.
    Export(ExportArgs),
    /// Energy, water or OEE figures of a site over a period, from the
    /// journal: by window, shift, production day or line, as a table, CSV,
    /// JSON or a self-contained HTML file with charts.
    Report(ReportArgs),
    /// The audit trail of alarm changes and operator actions.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// List, acknowledge, shelve, comment on, take out of or put back in
    /// service the alarms of a running engine, through its command topic
    /// (`[commands]` of its configuration), as a named user.
    #[command(subcommand)]
    Alarms(AlarmsCommand),
    /// The control-room dashboard attached to a running engine over MQTT
    /// (its `[commands]` broker): any number of viewers, each acting as
    /// its broker user.
    Tui(TuiArgs),
    /// Request a write of a catalogue parameter (`[[control.parameters]]`)
    /// of a running engine, as a named user, signed: it waits for a second
    /// person's approval where the catalogue says so, then goes to the
    /// plant and is confirmed by its read-back.
    Set(SetArgs),
    /// Approve another user's parameter write request (signed).
    Approve(DecideArgs),
    /// Reject another user's parameter write request (signed, with a reason).
    Reject(DecideArgs),
    /// The writable parameters of a running engine, their read-backs and
    /// the recent write requests with their states.
    Params(AlarmsConn),
    /// Electronic signatures of the parameter control.
    #[command(subcommand)]
    Signature(SignatureCommand),
    /// A live simulated Sparkplug B edge node (an RO unit, an HVAC and a
    /// packaging line) on a broker, in real time, that obeys the engine's
    /// parameter writes (NCMD/DCMD) and reports them back.
    Plant(PlantArgs),
}

/// `ctower plant`.
#[derive(Args, Debug)]
pub struct PlantArgs {
    /// The broker: mqtt://HOST:PORT or mqtts://HOST:PORT.
    #[arg(long, env = "CTOWER_BROKER")]
    pub broker: String,
    /// The Sparkplug group id (the engine's site, by default mapping).
    #[arg(long, default_value = "zurich-live")]
    pub group: String,
    /// The edge node id (the engine's line).
    #[arg(long, default_value = "utilities")]
    pub node: String,
    /// Seed of the plant's noise.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Accept writes on the wire but never apply them (the read-back keeps
    /// the old value: the engine's unconfirmed alarm).
    #[arg(long)]
    pub ignore_commands: bool,
    /// Broker user.
    #[arg(long)]
    pub user: Option<String>,
    /// Environment variable holding the broker password.
    #[arg(long, requires = "user")]
    pub password_env: Option<String>,
}

/// `ctower set`.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// The asset: SITE/AREA/LINE/ASSET.
    pub asset: String,
    /// The catalogue's parameter name.
    pub param: String,
    /// The value: a number, or true/false (on/off) for a switch.
    pub value: String,
    /// Why (required; the audit trail keeps it).
    #[arg(long)]
    pub reason: String,
    /// How to sign.
    #[command(flatten)]
    pub sign: SignArgs,
    /// How to reach the engine.
    #[command(flatten)]
    pub conn: AlarmsConn,
}

/// `ctower approve` / `ctower reject`.
#[derive(Args, Debug)]
pub struct DecideArgs {
    /// The request's id (`P000012`), as `ctower params` prints it.
    pub request: String,
    /// Why (required to reject).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// How to sign.
    #[command(flatten)]
    pub sign: SignArgs,
    /// How to reach the engine.
    #[command(flatten)]
    pub conn: AlarmsConn,
}

/// Where the user's signature secret comes from.
#[derive(Args, Debug)]
pub struct SignArgs {
    /// Environment variable holding the user's signature secret [default:
    /// asked on the terminal, not echoed; or the first line of stdin].
    #[arg(long)]
    pub signature_env: Option<String>,
}

/// `ctower signature …`.
#[derive(Subcommand, Debug)]
pub enum SignatureCommand {
    /// Hash a signature secret (asked on the terminal, not echoed; or the
    /// first line of stdin) into the salted argon2id PHC string for
    /// `commands.users[].signature_hash`. The secret itself is stored
    /// nowhere.
    Hash,
}

/// `ctower tui`.
#[derive(Args, Debug)]
pub struct TuiArgs {
    /// The engine's broker: mqtt://HOST:PORT or mqtts://HOST:PORT.
    #[arg(long, env = "CTOWER_BROKER")]
    pub broker: String,
    /// Who watches and acts: the broker user, and the user the engine's
    /// `[commands]` authorises.
    #[arg(long, env = "CTOWER_USER")]
    pub user: String,
    /// Environment variable holding the user's broker password.
    #[arg(long)]
    pub password_env: Option<String>,
    /// PEM file of the CA the broker's certificate must be signed by
    /// [default: the system's trusted roots].
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for a broker that requires one.
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// The engine's topic prefix (`commands.topic_prefix`).
    #[arg(long, default_value = "ctower")]
    pub prefix: String,
    /// Where the viewer logs [default: ctower-tui-USER.log in the
    /// temporary directory].
    #[arg(long)]
    pub log_file: Option<PathBuf>,
}

/// `ctower alarms …`.
#[derive(Subcommand, Debug)]
pub enum AlarmsCommand {
    /// The current alarms (any state but normal), with their ids.
    List(AlarmsConn),
    /// Acknowledge an alarm.
    Ack(AlarmArgs),
    /// Shelve an alarm for some minutes (it comes back by itself).
    Shelve(ShelveArgs),
    /// End an alarm's shelf now.
    Unshelve(AlarmArgs),
    /// Add a comment to an alarm's record.
    Comment(AlarmArgs),
    /// Take an alarm out of service.
    OutOfService(AlarmArgs),
    /// Put an alarm back in service.
    InService(AlarmArgs),
}

/// How `ctower alarms` reaches the engine.
#[derive(Args, Debug)]
pub struct AlarmsConn {
    /// The engine's command broker: mqtt://HOST:PORT or mqtts://HOST:PORT.
    #[arg(long, env = "CTOWER_BROKER")]
    pub broker: String,
    /// Who acts: the broker user, and the user the engine's `[commands]` authorises.
    #[arg(long, env = "CTOWER_USER")]
    pub user: String,
    /// Environment variable holding the user's broker password.
    #[arg(long)]
    pub password_env: Option<String>,
    /// The command topics' prefix.
    #[arg(long, default_value = "ctower")]
    pub prefix: String,
    /// How long to wait for the engine's reply.
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
    /// Print the reply as JSON.
    #[arg(long)]
    pub json: bool,
}

/// An action on one alarm.
#[derive(Args, Debug)]
pub struct AlarmArgs {
    /// The alarm: RULE@SCOPE[#SIGNAL], as `ctower alarms list` prints it.
    pub alarm: String,
    /// Why (required for every action but `ack`).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// How to reach the engine.
    #[command(flatten)]
    pub conn: AlarmsConn,
}

/// `ctower alarms shelve`.
#[derive(Args, Debug)]
pub struct ShelveArgs {
    /// For how long, 1..=1440 minutes.
    #[arg(long)]
    pub minutes: u32,
    /// The alarm and the reason.
    #[command(flatten)]
    pub alarm: AlarmArgs,
}

/// `ctower audit …`.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the trail's hash chain: exit 0 with the number of records, or
    /// non-zero naming the first edited, inserted, moved or deleted record.
    Verify(AuditVerifyArgs),
}

/// `ctower audit verify`.
#[derive(Args, Debug)]
pub struct AuditVerifyArgs {
    /// The configuration (its `audit.path`) [default: as for `run`].
    #[arg(short, long, env = "CTOWER_CONFIG")]
    pub config: Option<PathBuf>,
    /// The trail to check (instead of the configuration's).
    #[arg(long)]
    pub path: Option<PathBuf>,
}

/// `ctower report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Which figures.
    #[arg(value_enum)]
    pub kind: crate::report::Kind,
    /// The configuration file (its `journal.dir`) [default: as for `run`].
    #[arg(short, long, env = "CTOWER_CONFIG")]
    pub config: Option<PathBuf>,
    /// The site (required but for `alarms`, where it picks one console).
    #[arg(long)]
    pub site: Option<String>,
    /// The period's start, RFC 3339 (records starting at or after it).
    #[arg(long)]
    pub from: String,
    /// The period's end, RFC 3339 (records ending at or before it).
    #[arg(long)]
    pub to: String,
    /// One row per window, shift, production day or line.
    #[arg(long, value_enum, default_value = "shift")]
    pub by: crate::report::By,
    /// The format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: crate::report::Format,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// `ctower export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The configuration file (its `[influx]` and `journal.dir`)
    /// [default: as for `run`].
    #[arg(short, long, env = "CTOWER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Write to the InfluxDB of `[influx]` (the one destination so far).
    #[arg(long, required = true)]
    pub to_influx: bool,
    /// The period's start, RFC 3339 (inclusive; points are stamped with
    /// their window end or event time).
    #[arg(long)]
    pub from: String,
    /// The period's end, RFC 3339 (exclusive).
    #[arg(long)]
    pub to: String,
}

/// `ctower run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The configuration file [default: configs/default.toml in the
    /// working directory, else beside the executable or in the checkout it
    /// was built in, else /etc/ctower/default.toml].
    #[arg(short, long, env = "CTOWER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Timely worker threads (overrides `pipeline.workers`); in a
    /// cluster, per process.
    #[arg(short, long)]
    pub workers: Option<usize>,
    /// Batch mode: run as one of N processes of a timely cluster (each
    /// takes its share of sites; process 0 writes the outputs).
    #[arg(long, requires_all = ["process_id", "hostfile"])]
    pub processes: Option<usize>,
    /// This process's index in the cluster, 0 .. N-1.
    #[arg(long, requires = "processes")]
    pub process_id: Option<usize>,
    /// The cluster's addresses: one HOST:PORT line per process, in
    /// process order, the same file for every process.
    #[arg(long, requires = "processes")]
    pub hostfile: Option<PathBuf>,
    /// Seconds to wait for every process of the cluster to connect.
    #[arg(long, default_value_t = 30, requires = "processes")]
    pub connect_timeout: u64,
    /// Feed this recording straight into the pipeline (batch mode).
    #[arg(long, requires_all = ["speed", "until_end", "out"])]
    pub replay: Option<PathBuf>,
    /// Batch mode speed: only `max`, as fast as the machine goes (for a
    /// paced replay, publish to a broker with `ctower replay --speed N`).
    #[arg(long)]
    pub speed: Option<String>,
    /// Stop at the end of the recording (batch mode).
    #[arg(long)]
    pub until_end: bool,
    /// Write kpis.jsonl, alarms.jsonl and summary.json here (batch
    /// mode; optional in live mode).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Live mode: take this many messages as the whole input, then close
    /// every open window and stop. (Stopped otherwise, by Ctrl-C or a
    /// signal, live mode writes no window that had not closed.)
    #[arg(long, conflicts_with = "replay")]
    pub stop_after: Option<u64>,
    /// Batch mode: threads that parse and decode the recording
    /// (default: the worker count). Admission stays in file order.
    #[arg(long, requires = "replay")]
    pub decode_threads: Option<usize>,
}

/// `ctower demo`.
#[derive(Args, Debug, Default)]
pub struct DemoArgs {
    /// The configuration file [default: configs/default.toml in the
    /// working directory, else beside the executable or in the checkout it
    /// was built in, else /etc/ctower/default.toml].
    #[arg(short, long, env = "CTOWER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Timely worker threads (overrides `pipeline.workers`).
    #[arg(short, long)]
    pub workers: Option<usize>,
    /// Replay speed: a factor of the recorded pace, any positive number
    /// (`1` as recorded, `10` ten times faster) [default: `demo.speed`].
    #[arg(long)]
    pub speed: Option<f64>,
    /// No dashboard: run headless until Ctrl-C.
    #[arg(long)]
    pub headless: bool,
}

/// `ctower replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The recording (the replay format: gzip-compressed JSON Lines).
    pub file: PathBuf,
    /// The broker, mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS (checked
    /// against the system's trusted roots).
    #[arg(long)]
    pub broker: String,
    /// Pace: a factor of the recorded pace (`1` as recorded, `10` ten times
    /// faster, `0.5` half as fast; any positive number) or `max` (as fast
    /// as the broker takes them).
    #[arg(long, default_value = "1")]
    pub speed: String,
    /// Start again at the end, shifting event times forward each pass.
    #[arg(long = "loop")]
    pub loop_forever: bool,
    /// Shift event times so the recording starts now.
    #[arg(long)]
    pub now: bool,
    /// MQTT client id.
    #[arg(long, default_value = "ctower-replay")]
    pub client_id: String,
}

/// `ctower record`.
#[derive(Args, Debug)]
pub struct RecordArgs {
    /// The broker, mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS (checked
    /// against the system's trusted roots).
    #[arg(long)]
    pub broker: String,
    /// Topic filter(s) to record.
    #[arg(long = "topic", required = true)]
    pub topics: Vec<String>,
    /// The recording to write (the replay format, gzip-compressed).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Stop after this many messages (default: on Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
    /// MQTT client id.
    #[arg(long, default_value = "ctower-record")]
    pub client_id: String,
}

/// `ctower check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The configuration file [default: configs/default.toml in the
    /// working directory, else beside the executable or in the checkout it
    /// was built in, else /etc/ctower/default.toml].
    #[arg(short, long, env = "CTOWER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Also try each source once (an MQTT connection under its own client
    /// id, and the source's subscriptions) and each webhook (a TCP
    /// connection to its host; nothing is sent).
    #[arg(long)]
    pub connect: bool,
    /// Seconds each `--connect` attempt may take.
    #[arg(long, default_value_t = 5, requires = "connect")]
    pub connect_timeout: u64,
}

/// `ctower simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Random seed: the same seed gives the same recording.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Hours of plant time to simulate.
    #[arg(long, default_value_t = 2.0)]
    pub hours: f64,
    /// Plants (sites) to simulate.
    #[arg(long, default_value_t = 3)]
    pub plants: usize,
    /// Start time, RFC 3339 (default 2026-03-02T05:00:00Z).
    #[arg(long)]
    pub start: Option<String>,
    /// Leave out the malformed messages.
    #[arg(long)]
    pub clean: bool,
    /// Real messages per site and hour delivered 2–10 min after their
    /// event time, beyond the allowed lateness (0: none; the recording
    /// is then unchanged).
    #[arg(long, default_value_t = 0)]
    pub very_late_per_hour: u32,
    /// The recording to write (the replay format, gzip-compressed).
    #[arg(short, long)]
    pub output: PathBuf,
}
