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
//! - output thread ([`output`]): the output stage → the dashboard feed's
//!   inboxes ([`ctower_model::board::BoardInbox`]: the newest payload per
//!   topic, so bounded by the topics; a slow consumer skips intermediate
//!   states, never the newest) → the in-process dashboard, and the MQTT
//!   publisher of the `[commands]` connection;
//! - dashboard → output thread: operators' commands ([`COMMAND_QUEUE`]),
//!   taken between windows; full: the dashboard says it was not sent;
//! - metrics thread ([`ticker`]): self-metrics once a second.

mod commands;
mod ingest;
mod output;
pub mod plant_link;
mod rawjournal;
mod sources;
mod ticker;

use crate::output::BoardFeed;
use crate::pipeline::{runtime, stream_config};
use crate::settings::Settings;
use anyhow::Context;
use ctower_collector::broker::EmbeddedBroker;
use ctower_collector::rawjournal::RawJournal;
use ctower_model::board::{BoardInbox, EngineStatus, BOARD_VERSION};
use ctower_model::{Clock, CommandReply, OperatorCommand, PipelineMetrics};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

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
    let status = engine_status(
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
        outgoing: sources
            .plant_routes
            .routes
            .iter()
            .map(|r| r.tx.clone())
            .collect(),
        directory: sources.plant_routes.directory.clone(),
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
    // The dashboard feed: to the in-process dashboard, and published on
    // the command topic's broker for attached viewers.
    let tui_inbox = opts.tui.then(BoardInbox::new);
    let mqtt_inbox = settings.commands.as_ref().map(|_| BoardInbox::new());
    let inboxes: Vec<_> = tui_inbox.iter().chain(mqtt_inbox.iter()).cloned().collect();
    let board = (!inboxes.is_empty()).then(|| BoardFeed::new(inboxes, status));
    let (commands_tx, commands) = std::sync::mpsc::sync_channel(COMMAND_QUEUE);
    // The command topic: operators' requests in, replies out.
    let mut board_publisher = None;
    let replies_tx = match &settings.commands {
        Some(rules) => {
            let (tx, rx) = std::sync::mpsc::sync_channel(COMMAND_QUEUE);
            board_publisher = commands::start(
                rt.handle(),
                rules,
                embedded.as_ref(),
                commands_tx.clone(),
                rx,
                mqtt_inbox.zip(board.clone()),
            )?;
            Some(tx)
        }
        None => None,
    };
    let (console_tx, console_rx) = match opts.tui {
        true => {
            let (tx, rx) = std::sync::mpsc::sync_channel(COMMAND_QUEUE);
            (Some(tx), Some(rx))
        }
        false => (None, None),
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
        board: board.clone(),
        console: console_tx,
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
        // Parameter writes go out through the live sources' connections.
        plant_link: settings.control.as_ref().map(|c| {
            Box::new(
                sources
                    .plant_routes
                    .plant_link(c.uns_command_prefix.clone()),
            ) as Box<dyn crate::output::PlantLink>
        }),
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
        board: board.clone(),
        source_states: sources.states.clone(),
        source_names: settings
            .sources
            .iter()
            .map(|s| s.name.to_string())
            .collect(),
    })?;
    // Held until the run ends: dropping it stops the demo's live plant.
    let (_plant_stop, plant_stop_rx) = tokio::sync::watch::channel(false);
    if let (Some((recording, speed)), Some(endpoint)) = (opts.demo_replay, embedded) {
        if let Some(group) = settings.demo.live_plant_group.clone() {
            crate::plant::start_demo_plant(
                &rt,
                endpoint.clone(),
                group,
                &recording,
                speed,
                plant_stop_rx,
            );
        }
        sources::start_demo_replay(&rt, recording, speed, endpoint);
    }

    let dashboard = tui_inbox.zip(console_rx).map(|(inbox, replies)| Dashboard {
        inbox,
        commands: commands_tx,
        replies,
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
    if let Some(feed) = &board {
        // The viewers learn the engine stopped (the MQTT will covers a
        // crash): the publisher hands the last figures and the offline
        // status to its client, which gets a moment to send them.
        feed.close(ctower_model::wall_ms());
        if let Some(p) = board_publisher.take() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !p.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
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
    // The terminal's user, as the output stage audits the console's
    // requests.
    let user = crate::output::operator();
    let app = ctower_tui::App::new("ctower · group control tower", user);
    let (events_tx, events) = ctower_tui::event_queue();
    // Replies to the dashboard's requests, onto its event queue.
    let tx = events_tx.clone();
    std::thread::Builder::new()
        .name("console-replies".into())
        .spawn(move || {
            for r in d.replies {
                if tx.send(ctower_tui::AppEvent::Reply(r)).is_err() {
                    break;
                }
            }
        })
        .context("starting the console reply thread")?;
    let _ = events_tx.try_send(ctower_tui::AppEvent::Link(ctower_tui::LinkState::Up));
    let commands = d.commands;
    let send = Box::new(move |req: ctower_model::CommandRequest| {
        commands
            .try_send(OperatorCommand::Console(req))
            .map_err(|e| match e {
                std::sync::mpsc::TrySendError::Full(_) => {
                    "the tower is busy, try again".to_string()
                }
                std::sync::mpsc::TrySendError::Disconnected(_) => {
                    "the tower's output stage has stopped".to_string()
                }
            })
    });
    let link = ctower_tui::Link {
        inbox: d.inbox,
        events,
        events_tx,
        send,
        // In-process, every line is in the inbox already.
        focus: Box::new(|_| {}),
    };
    ctower_tui::run_viewer(app, link).map_err(anyhow::Error::from)
}

/// What the in-process dashboard gets: the feed, the way to the output
/// stage for its requests, and their replies.
struct Dashboard {
    inbox: Arc<BoardInbox>,
    commands: SyncSender<OperatorCommand>,
    replies: Receiver<CommandReply>,
}

/// What the engine says of itself on the feed: `replay_speed` is the
/// demo's event time per wall time (its windows close that much faster).
fn engine_status(settings: &Settings, replay_speed: Option<f64>) -> EngineStatus {
    let window_ms = settings.admission.window_ms;
    // A site is stale when it missed a window beyond the time the first
    // one takes to close (window, allowed lateness, look-ahead).
    let plant_ms =
        2 * window_ms + settings.admission.allowed_lateness_ms + settings.accum.lookahead_ms();
    let speed = replay_speed
        .filter(|s| *s > 0.0 && s.is_finite())
        .unwrap_or(1.0);
    EngineStatus {
        version: BOARD_VERSION,
        online: true,
        ts_ms: 0,
        engine: settings
            .commands
            .as_ref()
            .map_or_else(|| "ctower".to_string(), |c| c.client_id.clone()),
        window_ms,
        freshness_ms: ((plant_ms as f64 / speed) as i64).max(5_000),
        conductivity_limit_us_cm: settings.accum.conductivity_limit_us_cm,
        toc_limit_ppb: settings.accum.toc_limit_ppb,
        commands: settings.commands.is_some(),
    }
}

/// Waits for SIGINT or SIGTERM, gives the terminal back and exits (130):
/// in raw mode Ctrl-C is a key, and a signal from outside must still leave
/// the terminal usable. Never returns otherwise (no signal handling to
/// install: it waits forever).
pub(crate) async fn restore_terminal_on_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::warn!(
                "cannot watch SIGINT/SIGTERM: the terminal is restored only on a normal exit"
            );
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        ctower_tui::restore_terminal();
        tracing::warn!("signal received: terminal restored, exiting");
        std::process::exit(130);
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await;
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
