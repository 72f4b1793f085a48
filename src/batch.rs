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

use crate::outfiles::{JsonlOutputs, Summary};
use crate::settings::Settings;
use anyhow::Context;
use ctower_alerts::AlarmEngine;
use ctower_collector::deadletter::DeadLetterFile;
use ctower_collector::decode::DecodeRules;
use ctower_collector::{decode_chunk, DecodedChunk, Ingestor, Source};
use ctower_model::replay::{ReplayError, CHUNK_BYTES};
use ctower_model::{RecordChunk, ReplayChunks, StreamOutput};
use ctower_stream::{Cluster, StreamConfig, WindowOutput};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The ingestor for a configuration: one decoder per source; with no
/// sources, the telemetry contract's default decoding.
pub fn ingestor(settings: &Settings, dead: Option<DeadLetterFile>) -> Ingestor {
    let sources: Vec<(Arc<str>, DecodeRules)> = if settings.sources.is_empty() {
        vec![("default".into(), DecodeRules::default_uns())]
    } else {
        settings
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.decode_rules.clone()))
            .collect()
    };
    Ingestor::new(sources, settings.admission, dead, settings.batch_size)
        .with_limits(settings.limits.clone())
}

pub fn stream_config(settings: &Settings, workers: usize) -> StreamConfig {
    StreamConfig {
        workers,
        accum: settings.accum.clone(),
        input_capacity: settings.queue_batches,
        output_capacity: 64,
    }
}

/// How the batch mode spreads its work.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Timely worker threads.
    pub workers: usize,
    /// Threads that parse and decode record chunks (at least 1).
    pub decode_threads: usize,
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

/// Chunks queued to each decode thread and decoded chunks queued from each
/// one to the sequencer; full: the reader, or the decode thread, waits.
const CHUNK_QUEUE: usize = 2;

type Decoded = Result<DecodedChunk, ReplayError>;

/// The first source that subscribes to the topic decodes it.
fn source_of(sources: &[Source], topic: &str) -> usize {
    sources
        .iter()
        .position(|s| s.subscribes_to(topic))
        .unwrap_or(0)
}

/// Starts the reader and the decode threads: the reader cuts the recording
/// into chunks of whole lines and deals them out in turn (chunk `i` to
/// decode thread `i mod n`), so decoded chunk `i` is the next one on
/// channel `i mod n`, and reading the channels in turn restores file order.
fn start_decoding(
    settings: &Settings,
    recording: &Path,
    ing: &Ingestor,
    threads: usize,
) -> anyhow::Result<Decoding> {
    let chunks = ReplayChunks::open(recording, CHUNK_BYTES)?;
    let mut to_decode = Vec::new();
    let mut decoded = Vec::new();
    let mut handles = Vec::new();
    for i in 0..threads.max(1) {
        let (tx, rx) = sync_channel::<Result<RecordChunk, ReplayError>>(CHUNK_QUEUE);
        let (out_tx, out_rx) = sync_channel::<Decoded>(CHUNK_QUEUE);
        let mut decoders = ing.decoders();
        let sources = settings.sources.clone();
        let h = std::thread::Builder::new()
            .name(format!("ctower-decode-{i}"))
            .spawn(move || {
                for chunk in rx {
                    let d =
                        chunk.map(|c| decode_chunk(&mut decoders, c, |t| source_of(&sources, t)));
                    if out_tx.send(d).is_err() {
                        // The sequencer has stopped.
                        return;
                    }
                }
            })
            .context("starting a decode thread")?;
        to_decode.push(tx);
        decoded.push(out_rx);
        handles.push(h);
    }
    let reader = std::thread::Builder::new()
        .name("ctower-batch-read".into())
        .spawn(move || {
            for (i, chunk) in chunks.enumerate() {
                let failed = chunk.is_err();
                let Some(tx) = to_decode.get(i % to_decode.len()) else {
                    return;
                };
                // A send fails only once the decode threads have stopped.
                if tx.send(chunk).is_err() || failed {
                    return;
                }
            }
        })
        .context("starting the reader thread")?;
    handles.push(reader);
    Ok(Decoding {
        decoded,
        threads: handles,
    })
}

/// The decode threads' output queues, in dealing order, and the threads
/// (decode threads and reader).
struct Decoding {
    decoded: Vec<Receiver<Decoded>>,
    threads: Vec<JoinHandle<()>>,
}

pub fn run(
    settings: &Settings,
    recording: &Path,
    out_dir: &Path,
    opts: &BatchOptions,
    mut on_window: impl FnMut(&WindowOutput),
) -> anyhow::Result<Summary> {
    let workers = opts.workers;
    let cluster = opts.cluster.clone();
    let processes = cluster.as_ref().map_or(1, Cluster::processes);
    // Process 0 (or the only process) writes the files.
    let writes = cluster.as_ref().is_none_or(|c| c.process == 0);
    let dead = if writes {
        std::fs::create_dir_all(out_dir)
            .with_context(|| format!("creating {}", out_dir.display()))?;
        let dead_path = out_dir.join("dead-letters.jsonl");
        // A fresh run: never append to the previous run's dead letters.
        let _ = std::fs::remove_file(&dead_path);
        Some(DeadLetterFile::new(dead_path))
    } else {
        None
    };
    let mut ing = ingestor(settings, dead);
    let Decoding {
        decoded,
        threads: decode_threads,
    } = start_decoding(settings, recording, &ing, opts.decode_threads)?;
    let (input, pipeline) = match cluster {
        Some(c) => ctower_stream::start_cluster(stream_config(settings, workers), c)?,
        None => ctower_stream::start(stream_config(settings, workers))?,
    };

    let bar = crate::progress::records_bar(opts.show_progress, "batch");
    let feeder_bar = bar.clone();
    // The sequencer: admission in file order, batches into the pipeline.
    let feeder = std::thread::Builder::new()
        .name("ctower-batch-feed".into())
        .spawn(move || -> anyhow::Result<Ingestor> {
            let mut full = Vec::new();
            'chunks: for i in 0.. {
                let Some(rx) = decoded.get(i % decoded.len()) else {
                    break;
                };
                // Disconnected: the reader is done and so is this decode
                // thread (or it died: its join says so).
                let Ok(chunk) = rx.recv() else {
                    break 'chunks;
                };
                ing.admit_chunk(chunk?, &mut full)?;
                for batch in full.drain(..) {
                    input.blocking_send(batch)?;
                    feeder_bar.set_position(ing.metrics().received);
                }
            }
            let last = ing.flush()?;
            input.blocking_send(last)?;
            // The recording is the whole input: its last windows close.
            input.finish();
            Ok(ing)
        })
        .context("starting the feeder thread")?;

    // Only process 0 emits windows; elsewhere the channel just closes at
    // the end.
    let mut files = match writes {
        true => Some((
            JsonlOutputs::create(out_dir)?,
            AlarmEngine::new(settings.rules.clone()),
        )),
        false => None,
    };
    for window in pipeline.outputs.iter() {
        if let Some((files, engine)) = files.as_mut() {
            if window.closes_window {
                files.window_closed();
            }
            for out in &window.outputs {
                if let StreamOutput::Kpi(k) = out {
                    files.kpi(k)?;
                }
                for ev in engine.process(out) {
                    files.alarm(&ev)?;
                }
            }
        }
        on_window(&window);
    }
    let fed = feeder.join();
    for h in decode_threads {
        h.join()
            .map_err(|_| anyhow::anyhow!("a decode or reader thread panicked"))?;
    }
    // The workers' error (a lost peer) says more than the feeder's.
    pipeline.workers.join()?;
    let ing = fed.map_err(|_| anyhow::anyhow!("the feeder thread panicked"))??;
    bar.finish_and_clear();
    let recording = Some(recording.display().to_string());
    match files {
        Some((files, _)) => files.finish(&ing.metrics(), workers * processes, processes, recording),
        None => {
            let m = ing.metrics();
            Ok(Summary {
                recording,
                workers: workers * processes,
                processes,
                messages: m.received,
                accepted: m.accepted,
                dead_letters: m.dead_letters,
                windows: 0,
                kpi_records: 0,
                alarm_events: 0,
            })
        }
    }
}
