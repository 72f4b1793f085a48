//! Live mode: MQTT sources → ingest thread → timely pipeline → outputs
//! (journal, alarms and hooks, dashboard). The demo adds the embedded broker
//! and a looping replay of the recorded plants.
//!
//! Threads and queues (every one bounded):
//! - tokio runtime: one task per source (rumqttc poll loop) and the demo
//!   replayer. Sources → ingest: `RawMessage` channel (8192); full: the poll
//!   loop waits, so the broker holds the QoS 1 backlog;
//! - ingest thread: decoder, admission, dead letters → pipeline input
//!   (`pipeline.queue_batches`); full: the ingest thread waits;
//! - timely workers (their own threads) → closed windows (64); full: the
//!   dataflow waits;
//! - output thread: journal, alarm engine, hooks, dashboard updates
//!   (10 000); full: KPI and metric updates for the dashboard are dropped
//!   (the next window replaces them), alarm events wait.

use crate::batch;
use crate::journal::Journal;
use crate::outfiles::JsonlOutputs;
use crate::settings::Settings;
use anyhow::Context;
use ctower_alerts::{AlarmEngine, HookDispatcher, SystemAlarms};
use ctower_collector::broker::EmbeddedBroker;
use ctower_collector::deadletter::DeadLetterFile;
use ctower_collector::mqtt::{run_source, SourceStatus};
use ctower_collector::replay::{publish_recording, PublishOptions, Speed};
use ctower_collector::RawMessage;
use ctower_model::{
    wall_ms, AlarmEvent, Clock, Fault, Level, PipelineMetrics, StreamOutput, Update,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct LiveOptions {
    pub workers: usize,
    /// Show the dashboard (otherwise headless until Ctrl-C).
    pub tui: bool,
    /// Demo: replay this recording into the embedded broker, looping.
    pub demo_replay: Option<(std::path::PathBuf, f64)>,
    /// Also write `kpis.jsonl`, `alarms.jsonl`, `summary.json` here.
    pub out_dir: Option<std::path::PathBuf>,
    /// Take this many messages as the whole input: then close every open
    /// window and stop (tests). Without it, stopping writes no open window.
    pub stop_after: Option<u64>,
}

/// Sends a dashboard update; KPIs and metrics may be dropped when the
/// dashboard lags (a newer one follows), alarm events never are.
fn to_tui(tx: &Option<SyncSender<Update>>, u: Update) -> bool {
    let Some(tx) = tx else { return true };
    match u {
        Update::Alarm(_) => tx.send(u).is_ok(),
        other => !matches!(tx.try_send(other), Err(TrySendError::Disconnected(_))),
    }
}

pub fn run(settings: Settings, opts: LiveOptions) -> anyhow::Result<()> {
    let rt = crate::runtime()?;
    let settings = Arc::new(settings);

    let broker = if settings.uses_embedded_broker() || opts.demo_replay.is_some() {
        let b = EmbeddedBroker::start(settings.demo.broker_bind)?;
        tracing::info!(url = %b.url(), "embedded broker ready");
        Some(b)
    } else {
        None
    };
    let embedded = broker.as_ref().map(EmbeddedBroker::endpoint);

    let (input, pipeline) = ctower_stream::start(batch::stream_config(&settings, opts.workers))?;
    let windows_closed = pipeline.windows_closed.clone();
    let (outputs, workers) = (pipeline.outputs, pipeline.workers);

    // Sources → ingest.
    let (raw_tx, mut raw_rx) = tokio::sync::mpsc::channel::<RawMessage>(8192);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    for (i, spec) in settings.sources.iter().enumerate() {
        let (spec, tx, stop, embedded) = (
            spec.clone(),
            raw_tx.clone(),
            stop_rx.clone(),
            embedded.clone(),
        );
        let (status_tx, mut status_rx) = tokio::sync::watch::channel(SourceStatus::Connecting);
        let name = spec.name.clone();
        rt.spawn(async move {
            while status_rx.changed().await.is_ok() {
                let status = status_rx.borrow_and_update().clone();
                match status {
                    SourceStatus::Subscribed { connection } => {
                        tracing::info!(source = %name, connection, "source subscribed")
                    }
                    SourceStatus::Disconnected { attempt, error, retry_in_ms } => {
                        tracing::warn!(source = %name, attempt, error, retry_in_ms, "source disconnected")
                    }
                    _ => {}
                }
            }
        });
        rt.spawn(async move {
            let name = spec.name.clone();
            match run_source(i, spec, embedded, tx, Clock::system(), stop, Some(status_tx)).await {
                Ok(stats) => tracing::info!(source = %name, received = stats.received, reconnects = stats.reconnects, "source stopped"),
                Err(e) => tracing::error!(source = %name, error = %e, "source failed"),
            }
        });
    }
    drop(raw_tx);

    // Ingest thread.
    let metrics = Arc::new(Mutex::new(PipelineMetrics::default()));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let stop_after = opts.stop_after;
    let ingest = {
        let settings = settings.clone();
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name("ctower-ingest".into())
            .spawn(move || -> anyhow::Result<()> {
                let mut ing =
                    batch::ingestor(&settings, Some(DeadLetterFile::new(&settings.dead_letters)));
                let mut received = 0u64;
                let reached = |n: u64| stop_after.is_some_and(|s| n >= s);
                while let Some(msg) = raw_rx.blocking_recv() {
                    received += 1;
                    let mut full = ing.push(&msg)?;
                    // Take what is already queued, then hand over a batch:
                    // batches grow under load and stay small when idle.
                    while full.is_none() && !reached(received) {
                        match raw_rx.try_recv() {
                            Ok(m) => {
                                received += 1;
                                full = ing.push(&m)?;
                            }
                            Err(_) => break,
                        }
                    }
                    let batch = match full {
                        Some(b) => b,
                        None => ing.flush()?,
                    };
                    input.blocking_send(batch)?;
                    if let Ok(mut m) = metrics.lock() {
                        *m = ing.metrics();
                    }
                    if reached(received) {
                        tracing::info!(received, "--stop-after reached: stopping");
                        break;
                    }
                }
                if ing.pending() > 0 {
                    input.blocking_send(ing.flush()?)?;
                }
                if let Ok(mut m) = metrics.lock() {
                    *m = ing.metrics();
                }
                if reached(received) {
                    // `--stop-after`: these messages are the whole input,
                    // so every window up to the last one closes.
                    input.finish();
                } else {
                    // Stopped (Ctrl-C, quit, the sources ended): more data
                    // would have come for the open windows, so they are
                    // not written (a partial window must never overwrite
                    // the full one under the same key).
                    drop(input);
                }
                let _ = done_tx.send(());
                // Refused messages that could not be kept: the run lost
                // evidence, so it does not end as a success.
                match ing.dead_letter_health().filter(|h| h.failed > 0) {
                    Some(h) => anyhow::bail!(
                        "{} dead letter(s) could not be written to {} ({})",
                        h.failed,
                        h.path.display(),
                        h.last_error.unwrap_or_default()
                    ),
                    None => Ok(()),
                }
            })
            .context("starting the ingest thread")?
    };

    // Output thread: journal, alarms, hooks, dashboard.
    let (tui_tx, tui_rx) = if opts.tui {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Update>(10_000);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    // Faults of the output stage (journal, --out files), merged into the
    // metrics the dashboard and the log get.
    let output_faults: Arc<Mutex<Vec<Fault>>> = Arc::default();
    let (output_failed_tx, output_failed_rx) = tokio::sync::oneshot::channel::<()>();
    let output = {
        let stage = OutputStage {
            settings: settings.clone(),
            tui_tx: tui_tx.clone(),
            out_dir: opts.out_dir.clone(),
            metrics: metrics.clone(),
            faults: output_faults.clone(),
            workers: opts.workers,
        };
        std::thread::Builder::new()
            .name("ctower-output".into())
            .spawn(move || {
                let result = stage.run(outputs);
                // Ending before the input did (the journal could not even
                // be opened …) must stop the engine, not leave it running
                // with nothing written.
                if let Err(e) = &result {
                    tracing::error!(error = %format!("{e:#}"), "output stage failed: stopping");
                    let _ = output_failed_tx.send(());
                }
                result
            })
            .context("starting the output thread")?
    };

    // Self-metrics, once a second.
    let done = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (metrics, done, tui_tx) = (metrics.clone(), done.clone(), tui_tx.clone());
        let output_faults = output_faults.clone();
        std::thread::Builder::new()
            .name("ctower-metrics".into())
            .spawn(move || {
                let (mut last, mut at) = (0u64, Instant::now());
                let mut logged = Instant::now();
                while !done.load(Ordering::Relaxed) {
                    std::thread::park_timeout(Duration::from_secs(1));
                    let mut m = metrics.lock().map(|m| m.clone()).unwrap_or_default();
                    if let Ok(f) = output_faults.lock() {
                        m.faults.extend(f.iter().cloned());
                    }
                    let dt = at.elapsed().as_secs_f64().max(1e-3);
                    m.ingest_rate_per_s = (m.received.saturating_sub(last)) as f64 / dt;
                    m.windows_closed = windows_closed.load(Ordering::Relaxed);
                    (last, at) = (m.received, Instant::now());
                    if logged.elapsed() >= Duration::from_secs(30) {
                        logged = Instant::now();
                        let failing: Vec<String> = m
                            .faults
                            .iter()
                            .map(|f| format!("{} ({}): {}", f.stage, f.path, f.error))
                            .collect();
                        if failing.is_empty() {
                            tracing::info!(
                                received = m.received,
                                rate_per_s = m.ingest_rate_per_s.round(),
                                dead_letters = m.dead_letter_total(),
                                watermark_lag_ms = m.watermark_lag_ms,
                                windows = m.windows_closed,
                                stale_sites = ?m.stale_sites,
                                "pipeline"
                            );
                        } else {
                            // Never "all is well" while a stage cannot write.
                            tracing::error!(
                                received = m.received,
                                rate_per_s = m.ingest_rate_per_s.round(),
                                dead_letters = m.dead_letter_total(),
                                windows = m.windows_closed,
                                failing = ?failing,
                                "pipeline: stages failing"
                            );
                        }
                    }
                    if !to_tui(&tui_tx, Update::Metrics(m)) {
                        break;
                    }
                }
            })
            .context("starting the metrics thread")?
    };
    drop(tui_tx);

    // Demo: loop the recording through the embedded broker.
    if let (Some((recording, speed)), Some(endpoint)) = (opts.demo_replay.clone(), embedded) {
        rt.spawn(async move {
            let mut o = PublishOptions::new("ctower-demo-replay");
            o.speed = Speed::Factor(speed);
            o.loop_forever = true;
            // Recorded event times (each pass shifted forward), not "now":
            // at 10x the event time runs ahead of the wall clock, and a live
            // tower refuses event times far ahead of their receive time.
            if let Err(e) = publish_recording(&recording, &endpoint, o, |_| {}).await {
                tracing::error!(error = %e, recording = %recording.display(), "demo replay failed");
            }
        });
    }

    // Foreground: the dashboard, or wait for Ctrl-C.
    let result = match tui_rx {
        Some(rx) => {
            // In raw mode Ctrl-C is a key the dashboard handles; a signal
            // from outside (kill -INT/-TERM) must still give the terminal back.
            rt.spawn(async {
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
            });
            ctower_tui::run(
                rx,
                ctower_tui::TuiOptions {
                    title: "ctower · group control tower".into(),
                    exit_on_disconnect: false,
                },
            )
            .map_err(anyhow::Error::from)
        }
        None => rt.block_on(async {
            tokio::select! {
                r = tokio::signal::ctrl_c() => {
                    r.context("waiting for Ctrl-C")?;
                    tracing::info!("Ctrl-C: stopping");
                }
                _ = done_rx => {}
                Ok(()) = output_failed_rx => {}
            }
            Ok(())
        }),
    };

    // Orderly stop: sources end → ingest drains → pipeline closes the open
    // windows → outputs are journaled. Bounded: a stuck stage cannot hang the exit.
    let _ = stop_tx.send(true);
    done.store(true, Ordering::Relaxed);
    ticker.thread().unpark();
    let deadline = Instant::now() + Duration::from_secs(10);
    // A stage that failed, or stops with data it could not keep, makes the
    // exit code non-zero: an operator's supervisor must see it.
    let mut failures = Vec::new();
    for (name, h) in [("ingest", ingest), ("output", output)] {
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if h.is_finished() {
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
        } else {
            tracing::warn!(stage = name, "did not stop within 10 s; exiting anyway");
            failures.push(format!("{name}: did not stop within 10 s"));
        }
    }
    if Instant::now() < deadline {
        let _ = workers.join();
    }
    rt.shutdown_timeout(Duration::from_secs(2));
    drop(broker);
    result?;
    if !failures.is_empty() {
        anyhow::bail!("stopped with failed stages: {}", failures.join("; "));
    }
    Ok(())
}

/// The output stage: each closed window's records and the alarms they
/// raise go to the journal, the `--out` files, the hooks and the dashboard.
/// A destination that cannot write never stops the others: it is reported
/// at once (its own log line with the path, a fault in the metrics, an
/// urgent `ctower.<stage>` alarm to the hooks), retried, and the stage
/// returns an error at the end, so the process exits non-zero.
struct OutputStage {
    settings: Arc<Settings>,
    tui_tx: Option<SyncSender<Update>>,
    out_dir: Option<std::path::PathBuf>,
    metrics: Arc<Mutex<PipelineMetrics>>,
    faults: Arc<Mutex<Vec<Fault>>>,
    workers: usize,
}

impl OutputStage {
    fn run(
        self,
        outputs: std::sync::mpsc::Receiver<ctower_stream::WindowOutput>,
    ) -> anyhow::Result<()> {
        let settings = &self.settings;
        let mut journal = Journal::open(&settings.journal_dir)
            .with_context(|| format!("opening the journal in {}", settings.journal_dir.display()))?
            .with_max_backlog_bytes(settings.journal_max_backlog_bytes);
        tracing::info!(journal = %journal.path().display(), "journal open");
        let mut engine = AlarmEngine::new(settings.rules.clone());
        let mut system = SystemAlarms::new();
        let hooks = HookDispatcher::start(settings.hooks.clone())?;
        let mut files = match &self.out_dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                Some(JsonlOutputs::create(d)?)
            }
            None => None,
        };
        // The first error of the --out files; they are not written after it.
        let mut files_error: Option<(String, u64)> = None;
        let deliver = |ev: AlarmEvent,
                       journal: &mut Journal,
                       files: &mut Option<JsonlOutputs>,
                       files_error: &mut Option<(String, u64)>| {
            if let Some(f) = files.as_mut() {
                if let Err(e) = f.alarm(&ev) {
                    fail_files(files, files_error, e);
                }
            } else if let Some((_, lost)) = files_error.as_mut() {
                *lost += 1;
            }
            journal.append_alarm(&ev);
            hooks.send(&ev);
            to_tui(&self.tui_tx, Update::Alarm(ev));
        };
        for window in outputs.iter() {
            if let (Some(f), true) = (files.as_mut(), window.closes_window) {
                f.window_closed();
            }
            for out in &window.outputs {
                journal.append_output(out);
                if let StreamOutput::Kpi(k) = out {
                    if let Some(f) = files.as_mut() {
                        if let Err(e) = f.kpi(k) {
                            fail_files(&mut files, &mut files_error, e);
                        }
                    } else if let Some((_, lost)) = files_error.as_mut() {
                        *lost += 1;
                    }
                }
                for ev in engine.process(out) {
                    deliver(ev, &mut journal, &mut files, &mut files_error);
                }
                if let StreamOutput::Kpi(k) = out {
                    let shown = match k.period {
                        ctower_model::Period::Window => {
                            matches!(k.scope.level, Level::Group | Level::Site | Level::Line)
                        }
                        ctower_model::Period::Shift => k.scope.level == Level::Site,
                        ctower_model::Period::Day => false,
                    };
                    if shown {
                        to_tui(&self.tui_tx, Update::Kpi(k.clone()));
                    }
                }
            }
            // One commit per window: durable as a whole, or kept and
            // retried (the journal logs the failure with its path).
            let now = wall_ms();
            let _ = journal.commit(now);
            let faults = self.faults_now(&journal, files_error.as_ref());
            for stage in ["journal", "dead_letters", "out_files"] {
                let fault = faults.iter().find(|f| f.stage == stage);
                let message = match fault {
                    Some(f) => format!(
                        "ctower cannot write its {stage} ({}): {}; {} lost so far",
                        f.path, f.error, f.lost
                    ),
                    None => format!("ctower writes its {stage} again"),
                };
                if let Some(ev) = system.set(stage, fault.is_some(), now, &message) {
                    deliver(ev, &mut journal, &mut files, &mut files_error);
                }
            }
            if let Ok(mut f) = self.faults.lock() {
                *f = faults
                    .into_iter()
                    .filter(|f| f.stage != "dead_letters")
                    .collect();
            }
        }
        let stats = hooks.shutdown();
        tracing::info!(
            sent = stats.sent,
            failed = stats.failed,
            dropped = stats.dropped,
            "hooks stopped"
        );
        let _ = journal.commit(wall_ms());
        let mut problems = Vec::new();
        let h = journal.health();
        if !h.ok() || h.backlog_lines > 0 || h.lines_dropped > 0 {
            problems.push(format!(
                "journal {}: {} line(s) dropped, {} not written ({})",
                h.path.display(),
                h.lines_dropped,
                h.backlog_lines,
                h.last_error.unwrap_or_default()
            ));
        }
        if let Some(f) = files {
            let m = self.metrics.lock().map(|m| m.clone()).unwrap_or_default();
            match f.finish(&m, self.workers, 1, None) {
                Ok(s) => tracing::info!(
                    messages = s.messages,
                    windows = s.windows,
                    kpi_records = s.kpi_records,
                    alarm_events = s.alarm_events,
                    "outputs written"
                ),
                Err(e) => problems.push(format!("--out files: {e:#}")),
            }
        }
        if let Some((e, lost)) = files_error {
            problems.push(format!("--out files: {e}; {lost} record(s) not written"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("{}", problems.join("; "))
        }
    }

    /// The faults now: the journal's, the --out files', and the ingest's
    /// (the dead-letter file).
    fn faults_now(&self, journal: &Journal, files_error: Option<&(String, u64)>) -> Vec<Fault> {
        let mut faults = Vec::new();
        let h = journal.health();
        if !h.ok() {
            faults.push(Fault {
                stage: "journal".into(),
                path: h.path.display().to_string(),
                error: h.last_error.clone().unwrap_or_default(),
                lost: h.lines_dropped,
            });
        }
        if let Some((e, lost)) = files_error {
            faults.push(Fault {
                stage: "out_files".into(),
                path: self
                    .out_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                error: e.clone(),
                lost: *lost,
            });
        }
        if let Ok(m) = self.metrics.lock() {
            faults.extend(m.faults.iter().cloned());
        }
        faults
    }
}

/// The --out files failed: said once, loudly, with the path; not written
/// any more (a half-written JSON Lines file is worse than a stopped one).
fn fail_files(
    files: &mut Option<JsonlOutputs>,
    files_error: &mut Option<(String, u64)>,
    e: anyhow::Error,
) {
    tracing::error!(error = %format!("{e:#}"), "cannot write the --out files: they are no longer written");
    *files = None;
    *files_error = Some((format!("{e:#}"), 1));
}
