//! The output stage: every closed window of the pipeline goes through the
//! alarm engine and then to each [`Sink`] — the journal, the JSON Lines
//! files, the webhooks, the dashboard — in the same order in live mode,
//! batch mode and cluster mode (one [`OutputStage`] for all three).
//!
//! For each window, in order: its records (KPIs, signal statistics) reach
//! every sink, each followed by the alarm events it raised; then each sink
//! ends the window (the journal commits it: one fdatasync); then the sinks'
//! health is checked. A sink that cannot write never stops the others: it
//! reports a [`Fault`] with its path, the stage logs it, raises the urgent
//! system alarm `ctower.<stage>` (live) and, per [`FaultPolicy`], stops the
//! run (batch: a half-written output is no output) or goes on and ends with
//! an error (live: the process exits non-zero).
//!
//! Adding an output is one `impl Sink` and one line where the sinks are
//! listed (`live::run`, `batch::run`, or [`OutputStage::with_sink`]).

mod audit;
pub mod board;
pub mod checkpoint;
mod commands;
mod files;
mod hooks;
mod influx;
mod journal;
mod params;

pub use board::{BoardFeed, BoardSink};
pub use commands::Operators;
pub use files::{FilesSink, JsonlOutputs, Summary};
pub use hooks::HooksSink;
pub use influx::InfluxSink;
pub use journal::JournalSink;
pub use params::{unconfirmed_rule, unconfirmed_rules, unconfirmed_signal, StageParams};

use ctower_alerts::{AlarmEngine, Rule, SystemAlarms};
use ctower_model::{AlarmEvent, Clock, Fault, OperatorCommand, PipelineMetrics, StreamOutput};
use ctower_stream::WindowOutput;
use std::sync::{Arc, Mutex};

/// One destination of the output stage.
///
/// The stage calls, per window: [`Sink::record`] for each record, each
/// followed by [`Sink::alarm`] for the alarm events it raised, then
/// [`Sink::end_window`]; after the last window, [`Sink::finish`]. A sink
/// never returns an error from the per-record calls: it keeps its own
/// state and reports it through [`Sink::fault`].
pub trait Sink: Send {
    /// One record of a closed window: a KPI record or a signal statistic.
    fn record(&mut self, out: &StreamOutput);
    /// One alarm event (from the rules, or a system alarm).
    fn alarm(&mut self, ev: &AlarmEvent);
    /// The writable parameters and their read-backs changed (the dashboard
    /// shows them).
    fn params(&mut self, _board: &ctower_model::ParamBoard) {}
    /// A parameter write request changed (recorded in the audit trail
    /// already); `None` with its id: the stage no longer holds it.
    fn param_request(&mut self, _id: &str, _view: Option<&ctower_model::ParamRequestView>) {}
    /// An alarm event from before a restart, which this sink already had
    /// (a raw-journal restart computes it again): state only, no output.
    fn held_alarm(&mut self, _ev: &AlarmEvent) {}
    /// Whether this sink takes process alarms (from samples) the moment
    /// they happen (hooks, the dashboard), rather than in the output order
    /// that makes files reproducible (journal, files, InfluxDB).
    fn immediate(&self) -> bool {
        false
    }
    /// Every record and alarm of `window` has been given: make it durable
    /// (the journal commits here). `window.closes_window` is `false` for
    /// late corrections delivered on their own; `now_ms` is the wall clock.
    fn end_window(&mut self, _window: &WindowOutput, _now_ms: i64) {}
    /// What this sink cannot do now, with its path; `None` when it is well.
    fn fault(&self) -> Option<Fault> {
        None
    }
    /// Flush and sync what this sink has written, and give its files'
    /// lengths for a checkpoint ([`checkpoint`]); `None` when it cannot
    /// vouch for them now (a backlog, a failing disk). A sink without files
    /// (hooks, the dashboard) has nothing to keep.
    fn checkpoint(&mut self) -> Option<Vec<checkpoint::FileLen>> {
        Some(Vec::new())
    }
    /// The run has ended: flush, write what is written at the end (the
    /// batch summary), and say what could not be written.
    fn finish(&mut self, _end: &RunEnd) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The way from the engine to the plants: a parameter write
/// ([`ctower_model::ParamWrite`]) handed to the live source it goes
/// through, which publishes it at QoS 1 (Sparkplug NCMD/DCMD with the
/// metric's name and alias from its birth, or JSON on the UNS command
/// topic). Never waits: a full queue is an `Err`.
pub trait PlantLink: Send {
    /// Queues `w` on its source's connection: `Ok(topic)` it goes to, or
    /// `Err(why)` it cannot go (an unknown source, no birth names the
    /// metric, the node is dead, the queue is full).
    fn write(&mut self, w: &ctower_model::ParamWrite) -> Result<String, String>;
}

/// Who acts at this terminal: the operating system's user (the dashboard
/// runs in the engine's process; remote operators come with the command
/// topic).
pub fn operator() -> String {
    match os_user() {
        Some(u) => format!("{u}@dashboard"),
        None => "dashboard".into(),
    }
}

/// The operating system's user of this process (`USER`, else `LOGNAME`).
pub(crate) fn os_user() -> Option<String> {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
}

/// What the sinks learn when the run ends.
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// The run's counts, for `summary.json`.
    pub summary: Summary,
}

/// How long an operator's command waits at most for the stage to take it
/// ([`OutputStage::run_with_commands`]).
pub const COMMAND_LATENCY: std::time::Duration = std::time::Duration::from_millis(100);

/// What the stage does when a sink reports a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPolicy {
    /// Stop at once with the fault as the error (batch mode: the files are
    /// the product, a half-written set is no result).
    Stop,
    /// Raise the system alarm, keep the other sinks going, end with an
    /// error (live mode: the tower must not go dark because one disk is full).
    Alarm,
}

/// Faults from outside the stage (the ingest's dead-letter file), read
/// after each window.
pub type ExternalFaults = Box<dyn Fn() -> Vec<Fault> + Send>;

/// The alarm engine and the sinks, driven window by window.
pub struct OutputStage {
    engine: AlarmEngine,
    system: SystemAlarms,
    sinks: Vec<Box<dyn Sink>>,
    policy: FaultPolicy,
    clock: Clock,
    external: Option<ExternalFaults>,
    /// The stage's faults (not the external ones), for the metrics.
    published: Option<Arc<Mutex<Vec<Fault>>>>,
    counts: Counts,
    /// Where the stage is in its sequence of outputs.
    position: checkpoint::Position,
    /// With a raw journal: where checkpoints go, and up to where the sinks
    /// already hold the outputs (a restart).
    checkpoints: Option<(std::path::PathBuf, Option<checkpoint::Position>)>,
    audit: Option<audit::StageAudit>,
    /// Process alarms already given to the immediate sinks, waiting for
    /// their place in the output order: (the sample's admission watermark,
    /// the event), in input order.
    process: std::collections::VecDeque<(Option<i64>, AlarmEvent)>,
    /// Who may act on alarms through requests.
    operators: Operators,
    /// Where the replies to requests go.
    replies: Option<std::sync::mpsc::SyncSender<ctower_model::CommandReply>>,
    /// Where the replies to the in-process dashboard's requests go.
    console_replies: Option<std::sync::mpsc::SyncSender<ctower_model::CommandReply>>,
    /// Remote parameter control.
    params: Option<StageParams>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    windows: u64,
    kpi_records: u64,
    alarm_events: u64,
}

impl OutputStage {
    /// A stage evaluating `rules`, with no sink yet.
    pub fn new(rules: Vec<Rule>, policy: FaultPolicy, clock: Clock) -> Self {
        OutputStage {
            engine: AlarmEngine::new(rules),
            system: SystemAlarms::new(),
            sinks: Vec::new(),
            policy,
            clock,
            external: None,
            published: None,
            counts: Counts::default(),
            position: checkpoint::Position::default(),
            checkpoints: None,
            audit: None,
            process: std::collections::VecDeque::new(),
            operators: Operators::default(),
            replies: None,
            console_replies: None,
            params: None,
        }
    }

    /// The users who may act on alarms through requests, and where the
    /// replies go (the command topic's listener).
    pub fn with_operators(
        mut self,
        operators: Operators,
        replies: std::sync::mpsc::SyncSender<ctower_model::CommandReply>,
    ) -> Self {
        self.operators = operators;
        self.replies = Some(replies);
        self
    }

    /// Takes requests from the in-process dashboard
    /// ([`OperatorCommand::Console`]) and sends their replies to `replies`.
    pub fn with_console(
        mut self,
        replies: std::sync::mpsc::SyncSender<ctower_model::CommandReply>,
    ) -> Self {
        self.console_replies = Some(replies);
        self
    }

    /// Records every alarm change and operator action in `trail`
    /// ([`ctower_alerts::audit`]).
    pub fn with_audit(mut self, trail: ctower_alerts::audit::AuditTrail) -> Self {
        self.audit = Some(audit::StageAudit::new(trail));
        self
    }

    /// Writes a checkpoint into `dir` after each output; outputs up to
    /// `resume` (a restart's checkpoint) go to the alarm engine only, the
    /// sinks hold them already ([`checkpoint`]).
    pub fn with_checkpoints(
        mut self,
        dir: std::path::PathBuf,
        resume: Option<checkpoint::Position>,
    ) -> Self {
        self.checkpoints = Some((dir, resume));
        self
    }

    /// Adds a sink; sinks receive everything in the order they were added.
    pub fn with_sink(mut self, sink: impl Sink + 'static) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Adds boxed sinks (e.g. extra ones a caller passes through).
    pub fn with_sinks(mut self, sinks: impl IntoIterator<Item = Box<dyn Sink>>) -> Self {
        self.sinks.extend(sinks);
        self
    }

    /// Reads faults from outside the stage after each window (they raise
    /// system alarms like the sinks' own).
    pub fn with_external_faults(mut self, f: ExternalFaults) -> Self {
        self.external = Some(f);
        self
    }

    /// Publishes the sinks' faults here after each window (the metrics
    /// ticker merges them into what the dashboard and the log show).
    pub fn publish_faults(mut self, to: Arc<Mutex<Vec<Fault>>>) -> Self {
        self.published = Some(to);
        self
    }

    /// Samples for the per-sample rules (process alarms): evaluated at
    /// once; their events go to the immediate sinks (hooks, dashboard) now,
    /// and to the others at their place in the output order
    /// ([`Self::flush_process`]).
    fn samples(&mut self, window: &WindowOutput) {
        self.param_samples(&window.samples);
        let held = self.held();
        for obs in &window.samples {
            for ev in self.engine.sample(obs) {
                if !held {
                    for sink in self.sinks.iter_mut().filter(|s| s.immediate()) {
                        sink.alarm(&ev);
                    }
                }
                self.process.push_back((obs.watermark_ms, ev));
            }
        }
    }

    /// Whether the stage is still within what the sinks held before a restart.
    fn held(&self) -> bool {
        matches!(&self.checkpoints, Some((_, Some(r))) if self.position <= *r)
    }

    /// Before a window closing at `end_ms`: the process alarms of samples
    /// admitted before `end_ms` (the stream sent every one of them before
    /// this window, whatever the timing) to the other sinks and the audit
    /// trail, in input order; with `None` (the end), all of them. This is
    /// what makes the files the same in every run.
    fn flush_process(&mut self, end_ms: Option<i64>, held: bool) {
        while let Some((wm, _)) = self.process.front() {
            if end_ms.is_some_and(|e| wm.is_some_and(|w| w >= e)) {
                break;
            }
            let Some((_, ev)) = self.process.pop_front() else {
                break;
            };
            self.counts.alarm_events += 1;
            if held {
                if let Some(a) = &mut self.audit {
                    a.note(&ev);
                }
                for sink in &mut self.sinks {
                    sink.held_alarm(&ev);
                }
                continue;
            }
            if let Some(a) = &mut self.audit {
                a.event(&ev);
            }
            for sink in self.sinks.iter_mut().filter(|s| !s.immediate()) {
                sink.alarm(&ev);
            }
        }
    }

    /// One closed window through the alarm engine and every sink.
    pub fn window(&mut self, window: &WindowOutput) -> anyhow::Result<()> {
        if window.is_samples() {
            self.samples(window);
            return Ok(());
        }
        if window.closes_window {
            self.counts.windows += 1;
        }
        self.position = self
            .position
            .after(window.closes_window, window.window_end_ms);
        let held = self.held();
        if window.closes_window {
            self.flush_process(Some(window.window_end_ms), held);
        }
        for out in &window.outputs {
            if matches!(out, StreamOutput::Kpi(_)) {
                self.counts.kpi_records += 1;
            }
            if !held {
                for sink in &mut self.sinks {
                    sink.record(out);
                }
            }
            for ev in self.engine.process(out) {
                self.window_event(ev, held);
            }
        }
        if held {
            return Ok(()); // the sinks hold it from before the restart
        }
        let now = self.clock.now_ms();
        for sink in &mut self.sinks {
            sink.end_window(window, now);
        }
        self.check_faults(now)?;
        self.checkpoint();
        Ok(())
    }

    /// An alarm event of a window: to every sink, or noted only when held.
    fn window_event(&mut self, ev: AlarmEvent, held: bool) {
        if held {
            // Recorded before the restart: only its state is noted.
            if let Some(a) = &mut self.audit {
                a.note(&ev);
            }
            for sink in &mut self.sinks {
                sink.held_alarm(&ev);
            }
            self.counts.alarm_events += 1;
        } else {
            self.deliver(&ev);
        }
    }

    /// After an output every sink made durable: the checkpoint.
    fn checkpoint(&mut self) {
        let Some((dir, _)) = &self.checkpoints else {
            return;
        };
        let mut files = Vec::new();
        for sink in &mut self.sinks {
            match sink.checkpoint() {
                Some(f) => files.extend(f),
                // Not durable now: the last checkpoint stays (a restart
                // computes more again, never less).
                None => return,
            }
        }
        let c = checkpoint::Checkpoint {
            position: self.position,
            files,
        };
        if let Err(e) = checkpoint::store(dir, &c) {
            tracing::error!(dir = %dir.display(), error = %e, "cannot write the output checkpoint: a restart would compute more again");
        }
    }

    /// An operator's command, between windows: an acknowledgement goes to
    /// the alarm engine, and the event it makes to every sink (journal,
    /// hooks, dashboard) like any alarm event, stamped with the stage's
    /// clock. `false` when there was nothing to do (the alarm is unknown,
    /// normal or already acknowledged).
    pub fn command(&mut self, command: &OperatorCommand) -> bool {
        // The process alarms already raised come first in the journal and
        // the audit trail (an acknowledgement never precedes its raise).
        // Operator actions are on the wall clock anyway.
        let reads_only = matches!(command, OperatorCommand::Request(r) | OperatorCommand::Console(r) if r.action == ctower_model::CommandAction::List);
        if !reads_only {
            let held = self.held();
            self.flush_process(None, held);
        }
        let now = self.clock.now_ms();
        match command {
            OperatorCommand::Console(req) => {
                let mut req = req.clone();
                req.user = operator();
                let mut reply = self.request_as(&req, true);
                reply.user.clone_from(&req.user);
                let ok = reply.ok;
                if let Some(tx) = &self.console_replies {
                    let _ = tx.try_send(reply);
                }
                ok
            }
            OperatorCommand::Request(req) => {
                let mut reply = self.request(req);
                reply.user.clone_from(&req.user);
                let ok = reply.ok;
                if let Some(tx) = &self.replies {
                    // The listener gone (stopping): nobody waits for it.
                    let _ = tx.try_send(reply);
                }
                ok
            }
            OperatorCommand::Acknowledge(id) => {
                let signal = id.signal.as_deref();
                let before = self
                    .engine
                    .active()
                    .find(|a| a.id() == *id)
                    .map(|a| a.state);
                let after = match before {
                    Some(ctower_model::AlarmState::UnackActive) => {
                        ctower_model::AlarmState::AckActive
                    }
                    Some(ctower_model::AlarmState::UnackRtn) => ctower_model::AlarmState::Normal,
                    _ => return false,
                };
                // Recorded before it takes effect; refused if it cannot be.
                if let (Some(a), Some(before)) = (&mut self.audit, before) {
                    let user = operator();
                    if let Err(e) = a.action(&user, now, id, (before, after), "acknowledged", "") {
                        tracing::error!(rule = %id.rule, scope = %id.scope, error = %e, "the audit trail cannot record the acknowledgement: refused");
                        return false;
                    }
                }
                match self.engine.acknowledge(&id.rule, &id.scope, signal, now) {
                    Some(ev) => {
                        tracing::info!(rule = %id.rule, scope = %id.scope, "alarm acknowledged");
                        self.deliver_audited(&ev);
                        true
                    }
                    None => false,
                }
            }
        }
    }

    /// [`Self::run`] that also takes operators' commands while it waits
    /// for windows: a command is carried out within [`COMMAND_LATENCY`]
    /// of its arrival, between two windows (never inside one).
    pub fn run_with_commands(
        &mut self,
        outputs: &std::sync::mpsc::Receiver<WindowOutput>,
        commands: &std::sync::mpsc::Receiver<OperatorCommand>,
    ) -> anyhow::Result<()> {
        use std::sync::mpsc::RecvTimeoutError;
        loop {
            match outputs.recv_timeout(COMMAND_LATENCY) {
                Ok(window) => self.window(&window)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            // Expired shelves first: a command then finds the alarm as it is.
            self.expire_shelves();
            self.param_tick();
            while let Ok(command) = commands.try_recv() {
                self.command(&command);
            }
        }
    }

    /// Drives every window of `outputs` through the stage, calling
    /// `after` with each (progress, benchmarks), until the pipeline ends.
    pub fn run(
        &mut self,
        outputs: &std::sync::mpsc::Receiver<WindowOutput>,
        mut after: impl FnMut(&WindowOutput),
    ) -> anyhow::Result<()> {
        for window in outputs.iter() {
            self.window(&window)?;
            after(&window);
        }
        Ok(())
    }

    fn deliver(&mut self, ev: &AlarmEvent) {
        if let Some(a) = &mut self.audit {
            a.event(ev);
        }
        self.deliver_audited(ev);
    }

    /// [`Self::deliver`] of an event already in the audit trail.
    fn deliver_audited(&mut self, ev: &AlarmEvent) {
        self.counts.alarm_events += 1;
        for sink in &mut self.sinks {
            sink.alarm(ev);
        }
    }

    /// The sinks' faults and the external ones: each stage's system alarm
    /// follows them; under [`FaultPolicy::Stop`] the first fault ends the run.
    fn check_faults(&mut self, now_ms: i64) -> anyhow::Result<()> {
        let mut own: Vec<Fault> = self.sinks.iter().filter_map(|s| s.fault()).collect();
        own.extend(self.audit.as_ref().and_then(audit::StageAudit::fault));
        if let (FaultPolicy::Stop, Some(f)) = (self.policy, own.first()) {
            anyhow::bail!("cannot write the {} ({}): {}", f.stage, f.path, f.error);
        }
        let mut all = own.clone();
        if let Some(external) = &self.external {
            all.extend(external());
        }
        if self.policy == FaultPolicy::Alarm {
            self.raise_system_alarms(&all, now_ms);
        }
        if let Some(p) = &self.published {
            if let Ok(mut f) = p.lock() {
                *f = own;
            }
        }
        Ok(())
    }

    /// One system alarm per stage that is, or was, failing (stages in name
    /// order, so a replay raises them in the same order).
    fn raise_system_alarms(&mut self, faults: &[Fault], now_ms: i64) {
        let mut stages: Vec<String> = faults.iter().map(|f| f.stage.clone()).collect();
        stages.extend(self.system.failing().map(str::to_string));
        stages.sort();
        stages.dedup();
        for stage in stages {
            let fault = faults.iter().find(|f| f.stage == stage);
            // A source's fault is about reading (`source.<name>`); the
            // others are files ctower cannot write.
            let source = stage.strip_prefix("source.");
            let message = match (fault, source) {
                (Some(f), Some(name)) => {
                    format!(
                        "ctower cannot read its source {name} ({}): {}",
                        f.path, f.error
                    )
                }
                (None, Some(name)) => format!("ctower reads its source {name} again"),
                (Some(f), None) => format!(
                    "ctower cannot write its {stage} ({}): {}; {} lost so far",
                    f.path, f.error, f.lost
                ),
                (None, None) => format!("ctower writes its {stage} again"),
            };
            if let Some(ev) = self.system.set(&stage, fault.is_some(), now_ms, &message) {
                self.deliver(&ev);
            }
        }
    }

    /// The run has ended: every sink finishes (even if one fails), with the
    /// run's summary; the problems of all of them are the error.
    pub fn finish(
        mut self,
        metrics: &PipelineMetrics,
        run: RunInfo,
    ) -> (Summary, anyhow::Result<()>) {
        let held = self.held();
        self.flush_process(None, held);
        let summary = Summary {
            recording: run.recording,
            workers: run.workers,
            processes: run.processes,
            messages: metrics.received,
            accepted: metrics.accepted,
            dead_letters: metrics.dead_letters.clone(),
            late_dropped: (run.processes <= 1).then_some(metrics.late_dropped),
            windows: self.counts.windows,
            kpi_records: self.counts.kpi_records,
            alarm_events: self.counts.alarm_events,
        };
        let end = RunEnd {
            summary: summary.clone(),
        };
        let problems: Vec<String> = self
            .sinks
            .iter_mut()
            .filter_map(|s| s.finish(&end).err().map(|e| format!("{e:#}")))
            .collect();
        let result = match problems.is_empty() {
            true => Ok(()),
            false => Err(anyhow::anyhow!("{}", problems.join("; "))),
        };
        (summary, result)
    }
}

/// What the summary says about the run itself.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// The recording of a batch run.
    pub recording: Option<String>,
    /// Timely workers of the whole run (processes × threads).
    pub workers: usize,
    /// Processes of the run (1, or N in cluster mode).
    pub processes: usize,
}
