//! `ctower-bench`: measures the decode path and the batch mode and prints a
//! Markdown report (see BENCHMARKS.md). A target of its own, beside the
//! product binary: `cargo build --release --bin ctower-bench --bin ctower`.
//!
//! Phases, each timed with [`std::time::Instant`] (best of `--repeat`),
//! recording generation excluded from every rate:
//!
//! 1. parse-only: the recording streamed through the collector's decoders
//!    and admission (batches discarded): the batch feeder without the pipeline;
//! 2. batch: `ctower::batch::run` per worker count (pipeline, roll-ups,
//!    alarm rules, JSONL output into a temporary directory);
//! 3. breakdown, on messages held in memory: reading the recording, a plain
//!    `serde_json` parse of every payload (the floor), decode + admission alone;
//! 4. RSS over `--rss-hours` of simulated data in a fresh child process.
//!
//! After each phase: peak RSS (`VmHWM`, reset before the phase through
//! `/proc/self/clear_refs` when the kernel allows it), current RSS and the
//! process CPU time spent in it. With `--baseline BIN`: instead, an A/B of
//! the batch mode of two binaries as fresh processes ([`ab`]).

mod ab;
mod dashboard;
mod env;
mod influx;
mod latency;
mod live;
mod measure;
mod phases;
mod procfs;
mod report;
mod rss;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ctower::settings::Settings;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Measures the decode path and the batch mode; prints a Markdown report.
#[derive(Parser)]
#[command(name = "ctower-bench", version)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, global = true, default_value = "warn", env = "CTOWER_LOG")]
    log: String,
    /// The configuration file.
    #[arg(short, long, global = true, default_value = "configs/default.toml")]
    config: PathBuf,
    #[command(flatten)]
    bench: BenchOptions,
    #[command(subcommand)]
    command: Option<Command>,
}

/// What to measure.
#[derive(clap::Args)]
pub struct BenchOptions {
    /// Plants to simulate (ignored with --recording).
    #[arg(long, default_value_t = 100)]
    pub plants: usize,
    /// Hours to simulate (ignored with --recording).
    #[arg(long, default_value_t = 1.0)]
    pub hours: f64,
    /// Simulator seed (ignored with --recording).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Worker counts for the batch mode, comma-separated.
    #[arg(short, long, value_delimiter = ',', default_value = "1,2")]
    pub workers: Vec<usize>,
    /// Measure this recording instead of simulating one.
    #[arg(long)]
    pub recording: Option<PathBuf>,
    /// Run each phase this many times and keep the fastest.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Decode threads of the batch runs (default: the worker count).
    #[arg(long)]
    pub decode_threads: Option<usize>,
    /// Then the RSS of one batch run (the largest worker count, fresh
    /// process) over this many hours of simulated data (`--plants`,
    /// `--seed`), sampled each event-time hour; 0 skips it.
    #[arg(long, default_value_t = 24.0)]
    pub rss_hours: f64,
    /// A/B instead: the batch mode of this `ctower` binary (e.g. built from
    /// an older commit) against `--candidate`, fresh processes, alternately.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// The `ctower` binary compared with `--baseline` (default: the one
    /// beside this program).
    #[arg(long, requires = "baseline")]
    pub candidate: Option<PathBuf>,
    /// The configuration file (set from the global `--config`).
    #[arg(skip)]
    pub config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Live ingest through Mosquitto at QoS 1: ctower (manual acks, raw
    /// journal) against `mosquitto_sub -q 1` on the same backlog.
    Live(live::LiveOptions),
    /// A journal's lines to VictoriaMetrics: ctower's InfluxDB output
    /// against the server's own bulk import of the same file.
    Influx(influx::InfluxOptions),
    /// Publish → webhook latency of a process alarm through Mosquitto and a
    /// running engine, beside the MQTT floor.
    AlarmLatency(latency::LatencyOptions),
    /// Time per frame of the dashboard's views (fleet of 100 sites, site
    /// of 50 lines) beside ratatui's floors.
    DashboardFrames(dashboard::FrameOptions),
    /// The dashboard feed's bytes per second to one viewer during a
    /// replay, and an attached viewer's CPU, busy and idle.
    DashboardFeed(dashboard::FeedOptions),
    /// (Used by the RSS phase.) One batch run in this process, its RSS
    /// sampled as event time passes each hour; prints JSON on stdout.
    #[command(hide = true)]
    Rss {
        /// The recording (`/dev/stdin` for a pipe).
        #[arg(long)]
        recording: PathBuf,
        /// Where the batch run writes its files.
        #[arg(long)]
        out: PathBuf,
        /// Timely workers.
        #[arg(short, long, default_value_t = 2)]
        workers: usize,
        /// Decode threads (default: the worker count).
        #[arg(long)]
        decode_threads: Option<usize>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    ctower::logs::init(&cli.log)?;
    let settings = ctower::settings::load(&cli.config)
        .with_context(|| format!("loading {}", cli.config.display()))?;
    match cli.command {
        Some(Command::Rss {
            recording,
            out,
            workers,
            decode_threads,
        }) => rss::rss_child(&settings, &recording, &out, workers, decode_threads),
        Some(Command::Influx(o)) => influx::influx(&o),
        Some(Command::AlarmLatency(o)) => {
            let ctower = std::env::current_exe()
                .context("this program's path")?
                .with_file_name("ctower");
            latency::alarm_latency(&o, &ctower)
        }
        Some(Command::DashboardFrames(o)) => dashboard::frames(&o),
        Some(Command::DashboardFeed(o)) => {
            let ctower = std::env::current_exe()
                .context("this program's path")?
                .with_file_name("ctower");
            dashboard::feed(&o, &ctower)
        }
        Some(Command::Live(o)) => {
            let ctower = std::env::current_exe()
                .context("this program's path")?
                .with_file_name("ctower");
            live::live(&o, &ctower)
        }
        None => {
            let mut o = cli.bench;
            o.config = cli.config;
            bench(&settings, &o)
        }
    }
}

/// What the figures are worth.
fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug build: figures are meaningless, use --release"
    } else {
        "release build"
    }
}

fn bench(settings: &Settings, o: &BenchOptions) -> anyhow::Result<()> {
    anyhow::ensure!(!o.workers.is_empty(), "--workers: give at least one count");
    anyhow::ensure!(
        o.workers.iter().all(|&w| w >= 1),
        "--workers: every count must be at least 1"
    );
    if cfg!(debug_assertions) {
        eprintln!("warning: {}", profile());
    }
    let scratch = Scratch::new()?;
    let rec = phases::recording(o, &scratch.0)?;
    if let Some(baseline) = &o.baseline {
        return compare(o, &rec, baseline, &scratch.0);
    }
    let (parse, accepted) = phases::parse_only(settings, &rec, o.repeat)?;
    let mut rows = vec![parse];
    let mut summaries = Vec::new();
    for ((m, s), &w) in phases::batch_runs(settings, o, &rec, &scratch.0, accepted)?
        .into_iter()
        .zip(&o.workers)
    {
        rows.push(m);
        summaries.push((w, s));
    }
    rows.extend(phases::breakdown(settings, &rec, o.repeat)?);
    print!("{}", report::report(o, &rec, accepted, &rows, &summaries));
    if o.rss_hours > 0.0 && o.plants > 0 {
        let w = o.workers.iter().copied().max().unwrap_or(1);
        let run = rss::rss_run(o, &scratch.0, w)?;
        print!("{}", rss::rss_report(o, w, &run));
    }
    Ok(())
}

/// `--baseline`: the A/B of two binaries.
fn compare(
    o: &BenchOptions,
    rec: &phases::Recording,
    baseline: &Path,
    scratch: &Path,
) -> anyhow::Result<()> {
    let candidate = match &o.candidate {
        Some(c) => c.clone(),
        None => std::env::current_exe()
            .context("locating this program")?
            .with_file_name("ctower"),
    };
    anyhow::ensure!(
        candidate.exists(),
        "no candidate binary at {} (build it: cargo build --release --bin ctower)",
        candidate.display()
    );
    let plan = ab::AbPlan {
        baseline: baseline.to_path_buf(),
        candidate,
        config: &o.config,
        recording: &rec.path,
        workers: &o.workers,
        repeat: o.repeat,
        scratch,
    };
    print!("{}", ab::compare(&plan)?);
    Ok(())
}

/// A scratch directory under the system temp dir, removed on drop.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("ctower-bench-{}-{nanos:08x}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
