//! The output thread of live mode: the [`OutputStage`] with the journal,
//! the `--out` files, the hooks and the dashboard as sinks. Faults raise
//! system alarms and the run goes on; the thread ends with an error if
//! anything was lost, so the process exits non-zero.

use crate::journal::Journal;
use crate::output::checkpoint;
use crate::output::{
    BoardFeed, BoardSink, FaultPolicy, FilesSink, HooksSink, InfluxSink, JournalSink, OutputStage,
    PlantLink, RunInfo, StageParams,
};
use crate::settings::Settings;
use anyhow::Context;
use ctower_model::{Clock, Fault, OperatorCommand, PipelineMetrics};
use ctower_stream::WindowOutput;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Where the live output stage writes, and what it shares.
pub struct OutputPlan {
    /// The settings (journal, rules, hooks).
    pub settings: Arc<Settings>,
    /// Also write `kpis.jsonl`, `alarms.jsonl`, `summary.json` here.
    pub out_dir: Option<PathBuf>,
    /// The dashboard feed (the in-process dashboard, the MQTT
    /// publisher), when anything consumes it.
    pub board: Option<BoardFeed>,
    /// The ingest's metrics (its dead-letter fault, the final counts).
    pub metrics: Arc<Mutex<PipelineMetrics>>,
    /// The raw journal's fault, while it cannot write.
    pub raw_journal: Arc<Mutex<Option<Fault>>>,
    /// The sources' faults (a refused subscription).
    pub sources: super::sources::SourceFaults,
    /// The InfluxDB output, when configured (its sink joins the stage).
    pub influx: Option<crate::influx::Influx>,
    /// The alarm hooks (their outboxes open, their threads started);
    /// taken by the stage's hook sink.
    pub hooks: Option<ctower_alerts::HookDispatcher>,
    /// Late observations the stream dropped (for the summary).
    pub late_dropped: Arc<AtomicU64>,
    /// Where the stage publishes its sinks' faults.
    pub faults: Arc<Mutex<Vec<Fault>>>,
    /// Timely workers, for the summary.
    pub workers: usize,
    /// The wall clock.
    pub clock: Clock,
    /// Operators' commands (the dashboard's acknowledgements, the
    /// command topic's requests).
    pub commands: Receiver<OperatorCommand>,
    /// Where replies to the in-process dashboard's requests go.
    pub console: Option<SyncSender<ctower_model::CommandReply>>,
    /// Where replies to the command topic's requests go (`None`: off).
    pub replies: Option<SyncSender<ctower_model::CommandReply>>,
    /// The way to the plants for parameter writes (`None`: no live source).
    pub plant_link: Option<Box<dyn PlantLink>>,
}

/// How long live mode, stopping, waits for InfluxDB to take what the
/// outbox holds (the rest is sent at the next start).
const LIVE_DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The running output thread.
pub struct Output {
    /// Ends with an error when a sink lost data or could not start.
    pub thread: JoinHandle<anyhow::Result<()>>,
    /// Fires if the stage ends before its input did (the journal could not
    /// even be opened …): the engine must stop, not run with nothing written.
    pub failed: oneshot::Receiver<()>,
}

/// Starts the output thread on the pipeline's closed windows.
pub fn start(plan: OutputPlan, windows: Receiver<WindowOutput>) -> anyhow::Result<Output> {
    let (failed_tx, failed) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("ctower-output".into())
        .spawn(move || {
            let result = run(plan, &windows);
            if let Err(e) = &result {
                tracing::error!(error = %format!("{e:#}"), "output stage failed: stopping");
                let _ = failed_tx.send(());
            }
            result
        })
        .context("starting the output thread")?;
    Ok(Output { thread, failed })
}

fn run(mut plan: OutputPlan, windows: &Receiver<WindowOutput>) -> anyhow::Result<()> {
    let mut stage = build(&mut plan)?;
    stage.run_with_commands(windows, &plan.commands)?;
    let mut metrics = plan.metrics.lock().map(|m| m.clone()).unwrap_or_default();
    metrics.late_dropped = plan.late_dropped.load(Ordering::Relaxed);
    let run = RunInfo {
        recording: None,
        workers: plan.workers,
        processes: 1,
    };
    let (s, result) = stage.finish(&metrics, run);
    if plan.out_dir.is_some() && result.is_ok() {
        tracing::info!(
            messages = s.messages,
            windows = s.windows,
            kpi_records = s.kpi_records,
            alarm_events = s.alarm_events,
            "outputs written"
        );
    }
    result
}

/// The stage and its sinks: journal, `--out` files, hooks, dashboard.
fn build(plan: &mut OutputPlan) -> anyhow::Result<OutputStage> {
    let settings = &plan.settings;
    // With a raw journal: the outputs cut back to the last checkpoint
    // before anything opens them, and the stage told where it was.
    let resume = match &settings.raw_journal {
        Some(raw) => {
            let c = checkpoint::load(&raw.dir)?;
            if let Some(c) = &c {
                checkpoint::truncate_files(c)?;
            }
            Some((raw.dir.clone(), c.map(|c| c.position)))
        }
        None => None,
    };
    let journal = Journal::open(&settings.journal_dir)
        .with_context(|| format!("opening the journal in {}", settings.journal_dir.display()))?
        .with_max_backlog_bytes(settings.journal_max_backlog_bytes)
        .with_retention(settings.journal_retention);
    tracing::info!(journal = %journal.path().display(), "journal open");
    let metrics = plan.metrics.clone();
    let raw_journal = plan.raw_journal.clone();
    let sources = plan.sources.clone();
    let influx_status = plan
        .influx
        .as_ref()
        .map(crate::influx::Influx::status_handle);
    let clock = plan.clock.clone();
    let hooks_health = plan
        .hooks
        .as_ref()
        .map(ctower_alerts::HookDispatcher::health);
    let mut stage = OutputStage::new(
        settings.rules.clone(),
        FaultPolicy::Alarm,
        plan.clock.clone(),
    )
    .with_sink(JournalSink::new(journal, plan.clock.clone()))
    // The ingest's faults (its dead-letter file), the raw journal's and the
    // sources' raise alarms too.
    .with_external_faults(Box::new(move || {
        let mut f = metrics.lock().map(|m| m.faults.clone()).unwrap_or_default();
        if let Ok(raw) = raw_journal.lock() {
            f.extend(raw.iter().cloned());
        }
        if let Ok(s) = sources.lock() {
            f.extend(s.iter().cloned());
        }
        if let Some(i) = &influx_status {
            f.extend(i.faults(clock.now_ms()));
        }
        if let Some(h) = &hooks_health {
            f.extend(h.faults(clock.now_ms()));
        }
        f
    }))
    .publish_faults(plan.faults.clone());
    // A broken trail is not appended to: the engine does not start.
    let trail = ctower_alerts::audit::AuditTrail::open(&settings.audit_path)
        .with_context(|| format!("opening the audit trail {}", settings.audit_path.display()))?;
    tracing::info!(audit = %trail.path().display(), "audit trail open");
    stage = stage.with_audit(trail);
    if let Some(tx) = plan.console.take() {
        stage = stage.with_console(tx);
    }
    if let (Some(rules), Some(tx)) = (&settings.commands, plan.replies.take()) {
        stage = stage.with_operators(rules.operators.clone(), tx);
    }
    if let Some(dir) = &plan.out_dir {
        // After a restart, the files go on after their checkpoint.
        let append = matches!(resume, Some((_, Some(_))));
        stage = stage.with_sink(FilesSink::open(dir, append)?);
    }
    let replayed = matches!(resume, Some((_, Some(_))));
    if let Some((dir, position)) = resume {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        stage = stage.with_checkpoints(dir, position);
    }
    if let Some(hooks) = plan.hooks.take() {
        stage = stage.with_sink(HooksSink::new(hooks));
    }
    if let Some(influx) = plan.influx.take() {
        stage = stage.with_sink(InfluxSink::new(influx, plan.clock.clone(), LIVE_DRAIN_WAIT));
    }
    if let Some(feed) = &plan.board {
        stage = stage.with_sink(BoardSink::new(feed.clone()));
    }
    // The trail opened and was checked above; a line that is not UTF-8
    // is skipped like any unparsable one, not the whole trail. With
    // parameter control on, a trail that cannot be read stops the start:
    // request ids would begin again at P000001.
    let bytes = match std::fs::read(&settings.audit_path) {
        Ok(b) => b,
        Err(e) if settings.control.is_some() => {
            return Err(e).with_context(|| {
                format!(
                    "reading the audit trail {} (parameter request ids go on from it)",
                    settings.audit_path.display()
                )
            })
        }
        Err(_) => Vec::new(),
    };
    let text = String::from_utf8_lossy(&bytes);
    if let Some(control) = &settings.control {
        let desk = ctower_control::Desk::new(control.catalogue.clone(), control.read_only);
        let signatures = ctower_control::Signatures::new(
            settings
                .commands
                .as_ref()
                .map(|c| c.operators.signatures.clone())
                .unwrap_or_default(),
        );
        stage = stage.with_params(StageParams::new(desk, signatures, plan.plant_link.take()));
        tracing::info!(
            parameters = control.catalogue.params.len(),
            read_only = control.read_only,
            "parameter control on"
        );
    }
    if !replayed {
        // No raw-journal replay to rebuild the alarms: their last states
        // in the trail are put back (after the sinks are there: the hooks
        // learn what they were told before).
        let n = stage.restore_from_trail(&text);
        if n > 0 {
            tracing::info!(alarms = n, "alarm states restored from the audit trail");
        }
    } else {
        // The replay computes the process alarms again, not those only
        // the stage raises (an unconfirmed parameter write).
        let n = stage
            .restore_from_trail_where(&text, |rule| rule.starts_with("ctower.param_unconfirmed."));
        if n > 0 {
            tracing::info!(
                alarms = n,
                "unconfirmed-write alarms restored from the audit trail"
            );
        }
    }
    // After the alarms: requests the last run left open end, recorded
    // (a write left sent raises its alarm, unless it is active already);
    // ids go on.
    let n = stage.restore_params_from_trail(&text);
    if n > 0 {
        tracing::warn!(
            requests = n,
            "parameter requests left open by the last run ended (expired or unconfirmed)"
        );
    }
    Ok(stage)
}
