//! `ctower`: the industrial plant control tower.
//!
//! With no arguments it runs the demo (embedded broker, looping replay of the
//! recorded plants at 10x, the pipeline, the journal and the dashboard).
//! See `ctower --help` and the README.

mod batch;
mod bench;
mod journal;
mod live;
mod outfiles;
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
        /// Timely worker threads (overrides `pipeline.workers`); in a
        /// cluster, per process.
        #[arg(short, long)]
        workers: Option<usize>,
        /// Batch mode: run as one of N processes of a timely cluster (each
        /// takes its share of sites; process 0 writes the outputs).
        #[arg(long, requires_all = ["process_id", "hostfile"])]
        processes: Option<usize>,
        /// This process's index in the cluster, 0 .. N-1.
        #[arg(long, requires = "processes")]
        process_id: Option<usize>,
        /// The cluster's addresses: one HOST:PORT line per process, in
        /// process order, the same file for every process.
        #[arg(long, requires = "processes")]
        hostfile: Option<PathBuf>,
        /// Seconds to wait for every process of the cluster to connect.
        #[arg(long, default_value_t = 30, requires = "processes")]
        connect_timeout: u64,
        /// Feed this recording straight into the pipeline (batch mode).
        #[arg(long, requires_all = ["speed", "until_end", "out"])]
        replay: Option<PathBuf>,
        /// Batch mode speed: only `max` (for paced replays use `ctower replay` to a broker).
        #[arg(long)]
        speed: Option<String>,
        /// Stop at the end of the recording (batch mode).
        #[arg(long)]
        until_end: bool,
        /// Write kpis.jsonl, alarms.jsonl and summary.json here (batch
        /// mode; optional in live mode).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Live mode: take this many messages as the whole input, then close
        /// every open window and stop. (Stopped otherwise, by Ctrl-C or a
        /// signal, live mode writes no window that had not closed.)
        #[arg(long, conflicts_with = "replay")]
        stop_after: Option<u64>,
        /// Batch mode: threads that parse and decode the recording
        /// (default: the worker count). Admission stays in file order.
        #[arg(long, requires = "replay")]
        decode_threads: Option<usize>,
    },
    /// The demo: embedded broker, looping replay of the recorded plants,
    /// pipeline, journal and dashboard (also what `ctower` alone runs).
    Demo {
        #[arg(short, long, default_value = "configs/default.toml")]
        config: PathBuf,
        #[arg(short, long)]
        workers: Option<usize>,
        /// Replay speed factor (default: `demo.speed`).
        #[arg(long)]
        speed: Option<f64>,
        /// No dashboard: run headless until Ctrl-C.
        #[arg(long)]
        headless: bool,
    },
    /// Publish a recording to a broker, paced (1, 10 …) or at full speed (max).
    Replay {
        file: PathBuf,
        #[arg(long)]
        broker: String,
        #[arg(long, default_value = "1")]
        speed: String,
        /// Start again at the end, shifting event times forward each pass.
        #[arg(long = "loop")]
        loop_forever: bool,
        /// Shift event times so the recording starts now.
        #[arg(long)]
        now: bool,
        #[arg(long, default_value = "ctower-replay")]
        client_id: String,
    },
    /// Record live MQTT traffic into a replay file.
    Record {
        #[arg(long)]
        broker: String,
        /// Topic filter(s) to record.
        #[arg(long = "topic", required = true)]
        topics: Vec<String>,
        #[arg(short, long)]
        output: PathBuf,
        /// Stop after this many messages (default: on Ctrl-C).
        #[arg(long)]
        count: Option<u64>,
        #[arg(long, default_value = "ctower-record")]
        client_id: String,
    },
    /// Measure the decode path and the batch mode; prints a Markdown report
    /// (see BENCHMARKS.md). Build with `--release`.
    Bench {
        #[arg(short, long, default_value = "configs/default.toml")]
        config: PathBuf,
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
    },
    /// (Used by `ctower bench`.) One batch run in this process, its RSS
    /// sampled as event time passes each hour; prints JSON on stdout.
    #[command(hide = true)]
    BenchRss {
        #[arg(short, long, default_value = "configs/default.toml")]
        config: PathBuf,
        /// The recording (`/dev/stdin` for a pipe).
        #[arg(long)]
        recording: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(short, long, default_value_t = 2)]
        workers: usize,
        #[arg(long)]
        decode_threads: Option<usize>,
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
        /// Real messages per site and hour delivered 2–10 min after their
        /// event time, beyond the allowed lateness (0: none; the recording
        /// is then unchanged).
        #[arg(long, default_value_t = 0)]
        very_late_per_hour: u32,
        #[arg(short, long)]
        output: PathBuf,
    },
}

fn init_logs(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).context("--log")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging: {e}"))
}

/// While the dashboard owns the terminal, logs go to a file beside the journal.
fn init_file_logs(filter: &str, path: &std::path::Path) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).context("--log")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the log file {}", path.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging: {e}"))
}

fn endpoint(url: &str) -> anyhow::Result<ctower_collector::endpoint::BrokerEndpoint> {
    // This command starts no embedded broker: `embedded` is refused, saying why.
    ctower_collector::endpoint::BrokerEndpoint::from_url(url, None).context("--broker")
}

/// The tokio runtime for MQTT I/O: two threads are plenty, the heavy work
/// runs on timely's own threads.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ctower-io")
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error and its causes, plainly: no backtrace for a user.
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// The cluster flags, checked before anything starts: the process index is
/// in range and the hostfile has exactly one address per process. One
/// process is no cluster (`None`).
fn cluster(
    processes: Option<usize>,
    process_id: Option<usize>,
    hostfile: Option<&std::path::Path>,
    connect_timeout_secs: u64,
) -> anyhow::Result<Option<ctower_stream::Cluster>> {
    let (Some(processes), Some(process), Some(hostfile)) = (processes, process_id, hostfile) else {
        return Ok(None);
    };
    if processes == 0 {
        bail!("--processes must be at least 1");
    }
    if process >= processes {
        bail!(
            "--process-id {process} is out of range for --processes {processes} (0 to {})",
            processes - 1
        );
    }
    if connect_timeout_secs == 0 {
        bail!("--connect-timeout must be at least 1 s");
    }
    let text = std::fs::read_to_string(hostfile)
        .with_context(|| format!("reading the hostfile {}", hostfile.display()))?;
    let addresses = ctower_stream::cluster::parse_hostfile(&text, processes)
        .map_err(|e| anyhow::anyhow!("--hostfile {}: {e}", hostfile.display()))?;
    if processes == 1 {
        return Ok(None);
    }
    Ok(Some(ctower_stream::Cluster {
        process,
        addresses,
        connect_timeout: std::time::Duration::from_secs(connect_timeout_secs),
        // Set once the configuration and the recording are known.
        fingerprint: 0,
    }))
}

/// What every process of a cluster must compute from: the configuration
/// file, the `CTOWER__` variables layered on it (by name) and the recording.
/// Only hashed, never logged: the variables may hold secrets.
fn input_fingerprint(config: &std::path::Path, recording: &std::path::Path) -> anyhow::Result<u64> {
    let mut f = ctower_stream::cluster::Fingerprint::default();
    let open = |p: &std::path::Path| {
        std::fs::File::open(p).with_context(|| format!("reading {}", p.display()))
    };
    f.reader(open(config)?)
        .with_context(|| format!("reading {}", config.display()))?;
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("CTOWER__"))
        .collect();
    vars.sort();
    for (k, v) in &vars {
        f.bytes(k.as_bytes());
        f.bytes(&[0]);
        f.bytes(v.as_bytes());
        f.bytes(&[0]);
    }
    f.end_part(vars.len() as u64);
    f.reader(open(recording)?)
        .with_context(|| format!("reading {}", recording.display()))?;
    Ok(f.value())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Demo {
        config: PathBuf::from("configs/default.toml"),
        workers: None,
        speed: None,
        headless: false,
    });
    match command {
        Command::Run {
            config,
            workers,
            processes,
            process_id,
            hostfile,
            connect_timeout,
            replay,
            speed,
            until_end,
            out,
            stop_after,
            decode_threads,
        } => {
            init_logs(&cli.log)?;
            if processes.is_some() && replay.is_none() {
                bail!("--processes (timely cluster mode) is for the batch mode (--replay …); live mode runs in one process, scale it with -w N");
            }
            let mut cluster = cluster(processes, process_id, hostfile.as_deref(), connect_timeout)?;
            let settings = settings::load(&config)?;
            let workers = workers.unwrap_or(settings.workers);
            if workers == 0 {
                bail!("--workers must be at least 1");
            }
            let (Some(recording), Some(out)) = (replay, out.clone()) else {
                return live::run(
                    settings,
                    live::LiveOptions {
                        workers,
                        tui: false,
                        demo_replay: None,
                        out_dir: out,
                        stop_after,
                    },
                );
            };
            if speed.as_deref() != Some("max") || !until_end {
                bail!("batch mode needs --speed max --until-end (for a paced replay publish to a broker with `ctower replay`)");
            }
            if decode_threads == Some(0) {
                bail!("--decode-threads must be at least 1");
            }
            let mut opts = batch::BatchOptions::new(workers, decode_threads);
            opts.show_progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
            if let Some(c) = cluster.as_mut() {
                c.fingerprint = input_fingerprint(&config, &recording)?;
            }
            let process = cluster.as_ref().map(|c| (c.process, c.processes()));
            opts.cluster = cluster;
            let s = batch::run(&settings, &recording, &out, &opts, |_| {})?;
            if let Some((process, processes)) = process.filter(|(p, _)| *p != 0) {
                tracing::info!(
                    process,
                    processes,
                    messages = s.messages,
                    accepted = s.accepted,
                    dead_letters = s.dead_letters.values().sum::<u64>(),
                    "batch done: this process took its share of sites, process 0 wrote the outputs"
                );
                return Ok(());
            }
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
        Command::Demo {
            config,
            workers,
            speed,
            headless,
        } => {
            let settings = settings::load(&config)?;
            if headless {
                init_logs(&cli.log)?;
            } else {
                init_file_logs(&cli.log, &settings.journal_dir.join("ctower.log"))?;
            }
            let workers = workers.unwrap_or(settings.workers).max(1);
            let recording = settings.demo.recording.clone();
            if !recording.exists() {
                bail!(
                    "the demo recording {} is missing (regenerate it: ctower simulate -o {})",
                    recording.display(),
                    recording.display()
                );
            }
            let speed = speed.unwrap_or(settings.demo.speed);
            live::run(
                settings,
                live::LiveOptions {
                    workers,
                    tui: !headless,
                    demo_replay: Some((recording, speed)),
                    out_dir: None,
                    stop_after: None,
                },
            )
        }
        Command::Replay {
            file,
            broker,
            speed,
            loop_forever,
            now,
            client_id,
        } => {
            init_logs(&cli.log)?;
            let endpoint = endpoint(&broker)?;
            let mut o = ctower_collector::replay::PublishOptions::new(client_id);
            o.speed = speed.parse().map_err(|e| anyhow::anyhow!("--speed: {e}"))?;
            o.loop_forever = loop_forever;
            if now {
                o.shift_to_now = Some(ctower_model::Clock::system());
            }
            let bar = progress::records_bar(
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
                "replay",
            );
            let stats = runtime()?.block_on(ctower_collector::replay::publish_recording(
                &file,
                &endpoint,
                o,
                |p| {
                    bar.set_position(p.published);
                    bar.set_message(format!(
                        "replay @ {}",
                        ctower_model::time::rfc3339_ms(p.event_time_ms)
                    ));
                },
            ))?;
            bar.finish_and_clear();
            tracing::info!(published = stats.published, acknowledged = stats.acknowledged, passes = stats.passes, broker = %endpoint, "replay done");
            Ok(())
        }
        Command::Record {
            broker,
            topics,
            output,
            count,
            client_id,
        } => {
            init_logs(&cli.log)?;
            let endpoint = endpoint(&broker)?;
            let rt = runtime()?;
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let n = rt.block_on(async move {
                tokio::spawn(async move {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        let _ = stop_tx.send(true);
                    }
                });
                ctower_collector::replay::record(
                    &endpoint, &client_id, topics, &output, stop_rx, count, None,
                )
                .await
            })?;
            tracing::info!(records = n, "recording written");
            Ok(())
        }
        Command::Bench {
            config,
            plants,
            hours,
            seed,
            workers,
            recording,
            repeat,
            decode_threads,
            rss_hours,
        } => {
            init_logs(&cli.log)?;
            let settings = settings::load(&config)?;
            bench::run(
                &settings,
                &bench::BenchOptions {
                    config,
                    plants,
                    hours,
                    seed,
                    workers,
                    recording,
                    repeat,
                    decode_threads,
                    rss_hours,
                },
            )
        }
        Command::BenchRss {
            config,
            recording,
            out,
            workers,
            decode_threads,
        } => {
            init_logs(&cli.log)?;
            let settings = settings::load(&config)?;
            bench::rss_child(&settings, &recording, &out, workers, decode_threads)
        }
        Command::Simulate {
            seed,
            hours,
            plants,
            start,
            clean,
            very_late_per_hour,
            output,
        } => {
            init_logs(&cli.log)?;
            let mut cfg = ctower_sim::SimConfig {
                seed,
                hours,
                plants,
                clean,
                very_late_per_hour,
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
                very_late = summary.very_late,
                very_late_per_site = ?summary.very_late_per_site(),
                incidents = summary.incidents.len(),
                output = %output.display(),
                "recording written"
            );
            Ok(())
        }
    }
}
