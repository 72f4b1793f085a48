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

use crate::outfiles::{JsonlOutputs, Summary};
use crate::settings::Settings;
use anyhow::Context;
use ctower_alerts::AlarmEngine;
use ctower_collector::deadletter::DeadLetterFile;
use ctower_collector::decode::DecoderSpec;
use ctower_collector::{Ingestor, RawMessage};
use ctower_model::{ReplayReader, StreamOutput};
use ctower_stream::{Cluster, StreamConfig};
use std::path::Path;
use std::sync::Arc;

/// The ingestor for a configuration: one decoder per source; with no
/// sources, the telemetry contract's default decoding.
pub fn ingestor(settings: &Settings, dead: Option<DeadLetterFile>) -> Ingestor {
    let sources: Vec<(Arc<str>, DecoderSpec)> = if settings.sources.is_empty() {
        vec![("default".into(), DecoderSpec::default_uns())]
    } else {
        settings
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.decoder.clone()))
            .collect()
    };
    Ingestor::new(sources, settings.admission, dead, settings.batch_size)
}

pub fn stream_config(settings: &Settings, workers: usize) -> StreamConfig {
    StreamConfig {
        workers,
        accum: settings.accum.clone(),
        input_capacity: settings.queue_batches,
        output_capacity: 64,
    }
}

pub fn run(
    settings: &Settings,
    recording: &Path,
    out_dir: &Path,
    workers: usize,
    cluster: Option<Cluster>,
    show_progress: bool,
) -> anyhow::Result<Summary> {
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
    let reader = ReplayReader::open(recording)?;
    let mut ing = ingestor(settings, dead);
    let source_of: Vec<_> = settings.sources.clone();
    let (input, pipeline) = match cluster {
        Some(c) => ctower_stream::start_cluster(stream_config(settings, workers), c)?,
        None => ctower_stream::start(stream_config(settings, workers))?,
    };

    let bar = crate::progress::records_bar(show_progress, "batch");
    let feeder_bar = bar.clone();
    let feeder = std::thread::Builder::new()
        .name("ctower-batch-feed".into())
        .spawn(move || -> anyhow::Result<Ingestor> {
            for rec in reader {
                let rec = rec?;
                // The first source that subscribes to the topic decodes it.
                let source = source_of
                    .iter()
                    .position(|s| s.subscribes_to(&rec.topic))
                    .unwrap_or(0);
                let msg = RawMessage {
                    source,
                    topic: rec.topic,
                    payload: rec.payload,
                    recv_ms: rec.t_ms,
                };
                if let Some(batch) = ing.push(&msg)? {
                    input.blocking_send(batch)?;
                    feeder_bar.set_position(ing.metrics().received);
                }
            }
            let last = ing.flush()?;
            input.blocking_send(last)?;
            // Dropping the input closes the last windows.
            drop(input);
            Ok(ing)
        })
        .context("starting the feeder thread")?;

    if !writes {
        // Only process 0 emits windows: this channel just closes at the end.
        for _ in pipeline.outputs.iter() {}
        let fed = feeder.join();
        // The workers' error (a lost peer) says more than the feeder's.
        pipeline.workers.join()?;
        let ing = fed.map_err(|_| anyhow::anyhow!("the feeder thread panicked"))??;
        bar.finish_and_clear();
        let m = ing.metrics();
        return Ok(Summary {
            recording: Some(recording.display().to_string()),
            workers: workers * processes,
            processes,
            messages: m.received,
            accepted: m.accepted,
            dead_letters: m.dead_letters,
            windows: 0,
            kpi_records: 0,
            alarm_events: 0,
        });
    }
    let mut files = JsonlOutputs::create(out_dir)?;
    let mut engine = AlarmEngine::new(settings.rules.clone());
    for window in pipeline.outputs.iter() {
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
    let fed = feeder.join();
    pipeline.workers.join()?;
    let ing = fed.map_err(|_| anyhow::anyhow!("the feeder thread panicked"))??;
    bar.finish_and_clear();
    let summary = files.finish(
        &ing.metrics(),
        workers * processes,
        processes,
        Some(recording.display().to_string()),
    )?;
    Ok(summary)
}
