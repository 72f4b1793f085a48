//! `ctower-bench`: measures the decode path and the batch mode and prints a
//! Markdown report (see BENCHMARKS.md). A target of its own, beside the
//! product binary: build with `cargo build --release --bin ctower-bench`.

mod bench;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
    bench: BenchArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Plants to simulate (ignored with --recording).
    #[arg(long, default_value_t = 100)]
    plants: usize,
    /// Hours to simulate (ignored with --recording).
    #[arg(long, default_value_t = 1.0)]
    hours: f64,
    /// Simulator seed (ignored with --recording).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Worker counts for the batch mode, comma-separated.
    #[arg(short, long, value_delimiter = ',', default_value = "1,2")]
    workers: Vec<usize>,
    /// Measure this recording instead of simulating one.
    #[arg(long)]
    recording: Option<PathBuf>,
    /// Run each phase this many times and keep the fastest.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Decode threads of the batch runs (default: the worker count).
    #[arg(long)]
    decode_threads: Option<usize>,
    /// Then the RSS of one batch run (the largest worker count, fresh
    /// process) over this many hours of simulated data (`--plants`,
    /// `--seed`), sampled each event-time hour; 0 skips it.
    #[arg(long, default_value_t = 24.0)]
    rss_hours: f64,
}

#[derive(Subcommand)]
enum Command {
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
        }) => bench::rss_child(&settings, &recording, &out, workers, decode_threads),
        None => {
            let b = cli.bench;
            let opts = bench::BenchOptions {
                config: cli.config,
                plants: b.plants,
                hours: b.hours,
                seed: b.seed,
                workers: b.workers,
                recording: b.recording,
                repeat: b.repeat,
                decode_threads: b.decode_threads,
                rss_hours: b.rss_hours,
            };
            bench::run(&settings, &opts)
        }
    }
}
