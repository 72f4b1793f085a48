//! Deterministic batch mode: a recording goes straight into the pipeline (no
//! broker), KPIs and alarm events are written as JSON Lines.
//!
//! Output files in the output directory:
//! - `kpis.jsonl`: one KPI record per window and scope (see README "Batch output");
//! - `alarms.jsonl`: one alarm event per line;
//! - `dead-letters.jsonl`: every refused message with its reason;
//! - `summary.json`: counts (messages, accepted, dead letters by reason, windows).
//!
//! The same recording and configuration give byte-identical files whatever
//! the worker count: messages are admitted in file order, windows close on
//! the event-time frontier, and each window's results are sorted.
//!
//! Cluster mode (`--processes N --process-id I --hostfile F`): every process
//! reads the whole recording and runs the same decode and admission, so
//! sequence numbers, watermarks and timely times are the same everywhere
//! (decoding is replicated, not split); each process's dataflow keeps only
//! the observations of its share of sites. Process 0 rolls up every window
//! and writes all the files; the other processes write nothing. The files
//! are byte-identical to a single-process run's, except `summary.json`'s
//! `workers` and `processes`.
//!
//! Threads and queues (every one bounded; full: the sender waits):
//!
//! ```text
//! reader ─chunk i─> decode thread i mod n ─decoded chunk─> sequencer ─Batch─> timely workers ─> this thread
//!  gunzip, cut into     parse record lines,        admission in file    (pipeline.queue_     JSONL files,
//!  64 KiB of whole      topic mapping, payload     order: seq numbers,   batches)     (64)   alarm rules
//!  lines                decoding (no state)        watermark, too_late,
//!        (2 per decode thread)       (2 per decode thread)  dead letters
//! ```
//!
//! The sequencer reads the decode threads' queues in the order the reader
//! dealt the chunks, so it admits exactly what one thread reading the file
//! would, message by message.

mod cluster;
mod decode;

pub use cluster::{cluster_from_args, input_fingerprint};

use crate::output::{FaultPolicy, FilesSink, InfluxSink, OutputStage, RunInfo, Sink, Summary};
use crate::pipeline::{ingestor, stream_config};
use crate::settings::Settings;
use anyhow::Context;
use ctower_collector::deadletter::DeadLetterFile;
use ctower_collector::Ingestor;
use ctower_model::Clock;
use ctower_stream::{Cluster, PipelineInput};
use decode::{start_decoding, Decoded, Decoding};
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;

/// How the batch mode spreads its work.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Timely worker threads.
    pub workers: usize,
    /// Threads that parse and decode record chunks (at least 1).
    pub decode_threads: usize,
    /// Draw a progress bar on stderr (the command sets it when stderr is
    /// a terminal).
    pub show_progress: bool,
    /// Timely cluster mode: this process's place in it.
    pub cluster: Option<Cluster>,
}

impl BatchOptions {
    /// `decode_threads` defaults to the worker count.
    pub fn new(workers: usize, decode_threads: Option<usize>) -> Self {
        BatchOptions {
            workers,
            decode_threads: decode_threads.unwrap_or(workers).max(1),
            show_progress: false,
            cluster: None,
        }
    }
}

/// How long a batch run waits at its end for InfluxDB to take what the
/// outbox holds (the rest stays on disk and is sent at the next start).
const BATCH_DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Runs the recording through the pipeline and writes the output files
/// (process 0 of a cluster, or the only process); `extra` sinks see every
/// window and alarm too (benchmarks, tests).
pub fn run(
    settings: &Settings,
    recording: &Path,
    out_dir: &Path,
    opts: &BatchOptions,
    extra: Vec<Box<dyn Sink>>,
) -> anyhow::Result<Summary> {
    let cluster = opts.cluster.clone();
    let processes = cluster.as_ref().map_or(1, Cluster::processes);
    // Process 0 (or the only process) writes the files.
    let writes = cluster.as_ref().is_none_or(|c| c.process == 0);
    let dead = if writes {
        Some(fresh_dead_letters(out_dir)?)
    } else {
        None
    };
    let ing = ingestor(settings, dead);
    let decoding = start_decoding(settings, recording, &ing, opts.decode_threads)?;
    let config = stream_config(settings, opts.workers);
    let (input, pipeline) = match cluster {
        Some(c) => ctower_stream::start_cluster(config, c)?,
        None => ctower_stream::start(config)?,
    };
    let bar = crate::progress::Bar::new(opts.show_progress, "batch", "records", None);
    let Decoding { decoded, threads } = decoding;
    let feeder = start_feeder(ing, decoded, input, bar.handle())?;

    // Only process 0 receives windows; elsewhere the channel just closes
    // at the end and the stage has nothing to write.
    let mut stage = OutputStage::new(settings.rules.clone(), FaultPolicy::Stop, Clock::system());
    if writes {
        stage = stage.with_sink(FilesSink::create(out_dir)?);
        if let Some(rules) = &settings.influx {
            let influx = crate::influx::Influx::start(rules)?;
            stage = stage.with_sink(InfluxSink::new(influx, Clock::system(), BATCH_DRAIN_WAIT));
        }
    }
    let mut stage = stage.with_sinks(extra);
    // A sink that cannot write ends the run at once (the threads stop
    // with the process).
    stage.run(&pipeline.outputs, |_| {})?;
    let late_dropped = pipeline.late_dropped;

    let fed = feeder.join();
    for h in threads {
        h.join()
            .map_err(|_| anyhow::anyhow!("a decode or reader thread panicked"))?;
    }
    // The workers' error (a lost peer) says more than the feeder's or the
    // output stage's (which stop when the pipeline does).
    pipeline.workers.join()?;
    let ing = fed.map_err(|_| anyhow::anyhow!("the feeder thread panicked"))??;
    bar.finish();
    let run = RunInfo {
        recording: Some(recording.display().to_string()),
        workers: opts.workers * processes,
        processes,
    };
    let mut metrics = ing.metrics();
    metrics.late_dropped = late_dropped.load(std::sync::atomic::Ordering::Relaxed);
    let (summary, finished) = stage.finish(&metrics, run);
    finished.map(|()| summary)
}

/// A fresh dead-letter file in `out_dir`: never appended to the previous
/// run's.
fn fresh_dead_letters(out_dir: &Path) -> anyhow::Result<DeadLetterFile> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let path = out_dir.join("dead-letters.jsonl");
    let _ = std::fs::remove_file(&path);
    Ok(DeadLetterFile::new(path))
}

/// The sequencer: admission in file order, batches into the pipeline.
fn start_feeder(
    mut ing: Ingestor,
    decoded: Vec<Receiver<Decoded>>,
    input: PipelineInput,
    bar: indicatif::ProgressBar,
) -> anyhow::Result<JoinHandle<anyhow::Result<Ingestor>>> {
    std::thread::Builder::new()
        .name("ctower-batch-feed".into())
        .spawn(move || -> anyhow::Result<Ingestor> {
            let mut full = Vec::new();
            for i in 0.. {
                let Some(rx) = decoded.get(i % decoded.len()) else {
                    break;
                };
                // Disconnected: the reader is done and so is this decode
                // thread (or it died: its join says so).
                let Ok(chunk) = rx.recv() else {
                    break;
                };
                ing.admit_chunk(chunk?, &mut full)?;
                for batch in full.drain(..) {
                    input.blocking_send(batch)?;
                    bar.set_position(ing.metrics().received);
                }
            }
            let last = ing.flush()?;
            input.blocking_send(last)?;
            // The recording is the whole input: its last windows close.
            input.finish();
            Ok(ing)
        })
        .context("starting the feeder thread")
}

/// `ctower run --replay …`: [`run`], then the log line that says what was
/// written (or, on a cluster's other processes, that process 0 wrote it).
pub fn run_command(
    settings: &Settings,
    config: &Path,
    recording: &Path,
    out: &Path,
    mut opts: BatchOptions,
) -> anyhow::Result<()> {
    if let Some(c) = opts.cluster.as_mut() {
        c.fingerprint = input_fingerprint(config, recording)?;
    }
    let process = opts.cluster.as_ref().map(|c| (c.process, c.processes()));
    let s = run(settings, recording, out, &opts, Vec::new())?;
    let dead_letters = s.dead_letters.values().sum::<u64>();
    if let Some((process, processes)) = process.filter(|(p, _)| *p != 0) {
        tracing::info!(
            process,
            processes,
            messages = s.messages,
            accepted = s.accepted,
            dead_letters,
            "batch done: this process took its share of sites, process 0 wrote the outputs"
        );
        return Ok(());
    }
    tracing::info!(
        messages = s.messages,
        accepted = s.accepted,
        dead_letters,
        windows = s.windows,
        kpi_records = s.kpi_records,
        alarm_events = s.alarm_events,
        out = %out.display(),
        "batch done"
    );
    Ok(())
}
