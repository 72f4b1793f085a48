//! `ctower`: the industrial plant control tower.
//!
//! With no arguments it runs the demo (embedded broker, looping replay of the
//! recorded plants at 10x, the pipeline, the journal and the dashboard).
//! See `ctower --help` and the README.

mod batch;
mod journal;
mod progress;
mod settings;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "ctower",
    version,
    about = "Industrial plant control tower: MQTT telemetry → OEE, energy and water KPIs, alarms, live dashboard"
)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info`, `ctower=debug`.
    #[arg(long, global = true, default_value = "info", env = "CTOWER_LOG")]
    log: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline from a configuration: headless live mode, or with
    /// `--replay … --speed max --until-end --out DIR` the deterministic batch mode.
    Run {
        #[arg(short, long, default_value = "configs/default.toml")]
        config: PathBuf,
        /// Timely worker threads (overrides `pipeline.workers`).
        #[arg(short, long)]
        workers: Option<usize>,
        /// Feed this recording straight into the pipeline (batch mode).
        #[arg(long, requires_all = ["speed", "until_end", "out"])]
        replay: Option<PathBuf>,
        /// Batch mode speed: only `max` (for paced replays use `ctower replay` to a broker).
        #[arg(long)]
        speed: Option<String>,
        /// Stop at the end of the recording (batch mode).
        #[arg(long)]
        until_end: bool,
        /// Output directory of the batch mode.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a deterministic recording of simulated plants.
    Simulate {
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 2.0)]
        hours: f64,
        #[arg(long, default_value_t = 3)]
        plants: usize,
        /// Start time, RFC 3339 (default 2026-03-02T05:00:00Z).
        #[arg(long)]
        start: Option<String>,
        /// Leave out the malformed messages.
        #[arg(long)]
        clean: bool,
        #[arg(short, long)]
        output: PathBuf,
    },
}

fn init_logs(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).context("--log")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging: {e}"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run {
        config: PathBuf::from("configs/default.toml"),
        workers: None,
        replay: None,
        speed: None,
        until_end: false,
        out: None,
    });
    match command {
        Command::Run {
            config,
            workers,
            replay,
            speed,
            until_end,
            out,
        } => {
            init_logs(&cli.log)?;
            let settings = settings::load(&config)?;
            let workers = workers.unwrap_or(settings.workers);
            if workers == 0 {
                bail!("--workers must be at least 1");
            }
            let (Some(recording), Some(out)) = (replay, out) else {
                bail!("live mode is not available in this build yet: use --replay FILE --speed max --until-end --out DIR");
            };
            if speed.as_deref() != Some("max") || !until_end {
                bail!("batch mode needs --speed max --until-end (for a paced replay publish to a broker with `ctower replay`)");
            }
            let show = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let s = batch::run(&settings, &recording, &out, workers, show)?;
            tracing::info!(
                messages = s.messages,
                accepted = s.accepted,
                dead_letters = s.dead_letters.values().sum::<u64>(),
                windows = s.windows,
                kpi_records = s.kpi_records,
                alarm_events = s.alarm_events,
                out = %out.display(),
                "batch done"
            );
            Ok(())
        }
        Command::Simulate {
            seed,
            hours,
            plants,
            start,
            clean,
            output,
        } => {
            init_logs(&cli.log)?;
            let mut cfg = ctower_sim::SimConfig {
                seed,
                hours,
                plants,
                clean,
                ..Default::default()
            };
            if let Some(s) = start {
                cfg.start_ms = ctower_model::time::parse_rfc3339_ms(&s)
                    .with_context(|| format!("--start `{s}` is not RFC 3339"))?;
            }
            if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut w = ctower_model::ReplayWriter::create(&output)?;
            let summary = ctower_sim::simulate(&cfg, &mut w)?;
            w.finish()?;
            tracing::info!(
                messages = summary.messages,
                malformed = summary.malformed,
                late = summary.late,
                incidents = summary.incidents.len(),
                output = %output.display(),
                "recording written"
            );
            Ok(())
        }
    }
}
