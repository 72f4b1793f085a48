//! Live mode: MQTT sources → ingest thread → timely pipeline → output
//! stage (journal, alarms and hooks, dashboard). The demo adds the embedded
//! broker and a looping replay of the recorded plants.
//!
//! Composed of stages, each started by its module and returning a handle;
//! [`run`] starts them upstream first and stops them in one order:
//! sources end → ingest drains → pipeline closes → outputs are journaled.
//!
//! Threads and queues (every one bounded):
//! - tokio runtime ([`sources`]): one task per source (rumqttc poll loop)
//!   and the demo replayer. Sources → ingest: `RawMessage` channel
//!   ([`sources::RAW_QUEUE`]); full: the poll loop waits, so the broker
//!   holds the QoS 1 backlog;
//! - ingest thread ([`ingest`]): decoder, admission, dead letters →
//!   pipeline input (`pipeline.queue_batches`); full: the ingest thread waits;
//! - timely workers (their own threads) → closed windows
//!   ([`crate::pipeline::OUTPUT_QUEUE_WINDOWS`]); full: the dataflow waits;
//! - output thread ([`output`]): the output stage → dashboard updates
//!   ([`DASHBOARD_QUEUE`]); full: KPI and metric updates for the dashboard
//!   are dropped (the next window replaces them), alarm events wait;
//! - dashboard → output thread: operators' commands ([`COMMAND_QUEUE`]),
//!   taken between windows; full: the dashboard says it was not sent;
//! - metrics thread ([`ticker`]): self-metrics once a second.

mod commands;
mod ingest;
mod output;
mod rawjournal;
mod sources;
mod ticker;

use crate::pipeline::{runtime, stream_config};
use crate::settings::Settings;
use anyhow::Context;
use ctower_collector::broker::EmbeddedBroker;
use ctower_collector::rawjournal::RawJournal;
use ctower_model::{Clock, OperatorCommand, PipelineMetrics, Update};
use ctower_tui::WindowTiming;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// Updates queued for the dashboard.
pub const DASHBOARD_QUEUE: usize = 10_000;

/// Operators' commands queued for the output stage; full (a stage stuck on
/// a window for long), the dashboard says the command was not sent.
pub const COMMAND_QUEUE: usize = 64;

/// How long the stages get to stop before the process exits anyway.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// What live mode runs.
pub struct LiveOptions {
    /// Timely worker threads.
    pub workers: usize,
    /// Show the dashboard (otherwise headless until Ctrl-C).
    pub tui: bool,
    /// Demo: replay this recording into the embedded broker, looping, at
    /// this speed factor.
    pub demo_replay: Option<(PathBuf, f64)>,
    /// Also write `kpis.jsonl`, `alarms.jsonl`, `summary.json` here.
    pub out_dir: Option<PathBuf>,
    /// Take this many messages as the whole input: then close every open
    /// window and stop (tests). Without it, stopping writes no open window.
    pub stop_after: Option<u64>,
}

/// Runs live mode until Ctrl-C, the dashboard quits, the input ends
/// (`stop_after`) or the output stage fails; non-zero if a stage failed
/// or lost data.
pub fn run(settings: Settings, opts: LiveOptions) -> anyhow::Result<()> {
    if opts.tui {
        // Before anything starts: without a terminal, say to use --headless.
        ctower_tui::ensure_terminal()?;
    }
    let timing = window_timing(
        &settings,
        opts.demo_replay.as_ref().map(|(_, speed)| *speed),
    );
    let rt = runtime()?;
    let clock = Clock::system();
    let settings = Arc::new(settings);
    let broker = start_broker(&settings, opts.demo_replay.is_some())?;
    let embedded = broker.as_ref().map(EmbeddedBroker::endpoint);

    // The raw journal, read back (a torn tail cut) before anything runs.
    let (recovered, raw_journal) = open_raw_journal(&settings, &clock)?;
    let (input, pipeline) = ctower_stream::start(stream_config(&settings, opts.workers))?;
    let mut sources = sources::start(&rt, &settings, embedded.clone(), &clock);
    let raw_journal_health = Arc::new(Mutex::new(None));
    let journal_stage = match (raw_journal, sources.journal.take()) {
        (Some(j), Some(feed)) => Some(rawjournal::start(j, feed, raw_journal_health.clone())?),
        _ => None,
    };
    let metrics = Arc::new(Mutex::new(PipelineMetrics::default()));
    let feed = ingest::Feed {
        raw: sources.raw,
        rebirths: sources.rebirths,
        runtime: rt.handle().clone(),
        clock: clock.clone(),
        recovered,
    };
    let ingest = ingest::start(
        settings.clone(),
        feed,
        input,
        opts.stop_after,
        metrics.clone(),
    )?;
    let (dashboard_tx, dashboard_rx) = dashboard_channel(opts.tui);
    let (commands_tx, commands) = std::sync::mpsc::sync_channel(COMMAND_QUEUE);
    // The command topic: operators' requests in, replies out.
    let replies_tx = match &settings.commands {
        Some(rules) => {
            let (tx, rx) = std::sync::mpsc::sync_channel(COMMAND_QUEUE);
            commands::start(
                rt.handle(),
                rules,
                embedded.as_ref(),
                commands_tx.clone(),
                rx,
            )?;
            Some(tx)
        }
        None => None,
    };
    let faults = Arc::default();
    let influx = settings
        .influx
        .as_ref()
        .map(crate::influx::Influx::start)
        .transpose()?;
    let influx_status = influx.as_ref().map(crate::influx::Influx::status_handle);
    let hooks = start_hooks(&settings, &clock)?;
    let hooks_health = hooks.health();
    let plan = output::OutputPlan {
        settings: settings.clone(),
        out_dir: opts.out_dir.clone(),
        dashboard: dashboard_tx.clone(),
        metrics: metrics.clone(),
        faults: Arc::clone(&faults),
        raw_journal: raw_journal_health.clone(),
        sources: sources.faults.clone(),
        influx,
        hooks: Some(hooks),
        late_dropped: pipeline.late_dropped.clone(),
        workers: opts.workers,
        clock,
        commands,
        replies: replies_tx,
    };
    let output = output::start(plan, pipeline.outputs)?;
    let ticker = ticker::Ticker::start(ticker::TickerInputs {
        metrics,
        faults,
        raw_journal: raw_journal_health,
        sources: sources.faults.clone(),
        influx: influx_status,
        hooks: hooks_health,
        windows_closed: pipeline.windows_closed,
        late_dropped: pipeline.late_dropped,
        dashboard: dashboard_tx,
    })?;
    if let (Some((recording, speed)), Some(endpoint)) = (opts.demo_replay, embedded) {
        sources::start_demo_replay(&rt, recording, speed, endpoint);
    }

    let dashboard = dashboard_rx.map(|updates| Dashboard {
        updates,
        commands: commands_tx,
        timing,
    });
    let result = foreground(&rt, dashboard, ingest.done, output.failed);

    let _ = sources.stop.send(true);
    ticker.stop();
    let mut stages = vec![("ingest", ingest.thread), ("output", output.thread)];
    if let Some(t) = journal_stage {
        stages.insert(0, ("raw journal", t));
    }
    let workers = pipeline.workers;
    let failures = stop_stages(
        stages,
        move || drop(workers.join()),
        Instant::now() + STOP_WAIT,
    );
    rt.shutdown_timeout(Duration::from_secs(2));
    drop(broker);
    result?;
    if !failures.is_empty() {
        anyhow::bail!("stopped with failed stages: {}", failures.join("; "));
    }
    Ok(())
}

/// The raw journal's records from before (to compute again) and the
/// journal to go on writing, when it is on.
fn open_raw_journal(
    settings: &Settings,
    clock: &Clock,
) -> anyhow::Result<(Vec<ctower_collector::RawMessage>, Option<RawJournal>)> {
    let Some(rules) = &settings.raw_journal else {
        return Ok((Vec::new(), None));
    };
    let r = ctower_collector::rawjournal::open_dir(&rules.dir)
        .with_context(|| format!("reading the raw journal in {}", rules.dir.display()))?;
    if !r.messages.is_empty() {
        tracing::info!(dir = %rules.dir.display(), records = r.messages.len(), "raw journal read back: its messages are computed again");
    }
    let clock = clock.clone();
    let journal = RawJournal::open(
        rules.clone(),
        r.next_record,
        r.recent,
        Box::new(move || clock.now_ms()),
    )
    .with_context(|| format!("opening the raw journal in {}", rules.dir.display()))?;
    tracing::info!(dir = %rules.dir.display(), "raw journal open: QoS 1 messages are acknowledged once on disk");
    Ok((r.messages, Some(journal)))
}

/// The dashboard's update channel ([`DASHBOARD_QUEUE`]), if it runs.
fn dashboard_channel(tui: bool) -> (Option<SyncSender<Update>>, Option<Receiver<Update>>) {
    if !tui {
        return (None, None);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<Update>(DASHBOARD_QUEUE);
    (Some(tx), Some(rx))
}

/// The embedded broker, when a source or the demo uses it.
fn start_broker(settings: &Settings, demo: bool) -> anyhow::Result<Option<EmbeddedBroker>> {
    if !settings.uses_embedded_broker() && !demo {
        return Ok(None);
    }
    // It logs its address when ready.
    Ok(Some(EmbeddedBroker::start(settings.demo.broker_bind)?))
}

/// The foreground: the dashboard until it quits, or (headless) until
/// Ctrl-C, the end of the input or a failed output stage.
fn foreground(
    rt: &Runtime,
    dashboard: Option<Dashboard>,
    input_done: oneshot::Receiver<()>,
    output_failed: oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let Some(d) = dashboard else {
        return rt.block_on(async {
            tokio::select! {
                r = tokio::signal::ctrl_c() => {
                    r.context("waiting for Ctrl-C")?;
                    tracing::info!("Ctrl-C: stopping");
                }
                _ = input_done => {}
                Ok(()) = output_failed => {}
            }
            Ok(())
        });
    };
    // In raw mode Ctrl-C is a key the dashboard handles; a signal from
    // outside (kill -INT/-TERM) must still give the terminal back.
    rt.spawn(restore_terminal_on_signal());
    let app = ctower_tui::App::new("ctower · group control tower").with_timing(d.timing);
    ctower_tui::run_app(d.updates, app, false, Some(d.commands)).map_err(anyhow::Error::from)
}

/// What the dashboard gets: updates, the way back for operators' commands,
/// the window timing.
struct Dashboard {
    updates: Receiver<Update>,
    commands: SyncSender<OperatorCommand>,
    timing: WindowTiming,
}

/// What decides when the first KPIs appear, for the dashboard to say while
/// it waits: `replay_speed` is the demo's event time per wall time.
fn window_timing(settings: &Settings, replay_speed: Option<f64>) -> WindowTiming {
    WindowTiming {
        window_ms: settings.admission.window_ms,
        allowed_lateness_ms: settings.admission.allowed_lateness_ms,
        lookahead_ms: settings.accum.lookahead_ms(),
        replay_speed,
    }
}

async fn restore_terminal_on_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        ctower_tui::restore_terminal();
        tracing::warn!("signal received: terminal restored, exiting");
        std::process::exit(130);
    }
}

/// Waits (until `deadline`) for each stage in order, then the workers; a
/// stage that failed, panicked or did not stop is a failure: an operator's
/// supervisor must see it in the exit code.
fn stop_stages<'a>(
    stages: impl IntoIterator<Item = (&'a str, JoinHandle<anyhow::Result<()>>)>,
    join_workers: impl FnOnce(),
    deadline: Instant,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, h) in stages {
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !h.is_finished() {
            tracing::warn!(stage = name, "did not stop within 10 s; exiting anyway");
            failures.push(format!("{name}: did not stop within 10 s"));
            continue;
        }
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(stage = name, error = %e, "stage failed");
                failures.push(format!("{name}: {e:#}"));
            }
            Err(_) => {
                tracing::error!(stage = name, "stage panicked");
                failures.push(format!("{name}: panicked"));
            }
        }
    }
    if Instant::now() < deadline {
        join_workers();
    }
    failures
}

/// The alarm hooks: each delivering hook's outbox opened (what the last
/// run left is delivered first) and its thread started.
fn start_hooks(
    settings: &Settings,
    clock: &Clock,
) -> anyhow::Result<ctower_alerts::HookDispatcher> {
    let options = ctower_alerts::DispatcherOptions {
        clock: clock.clone(),
        outbox_budget_bytes: settings.hook_outbox_budget_bytes,
        flood: settings.flood,
        ..ctower_alerts::DispatcherOptions::new(settings.hook_outbox_dir.clone())
    };
    Ok(ctower_alerts::HookDispatcher::start(
        settings.hooks.clone(),
        options,
    )?)
}
