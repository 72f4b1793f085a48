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

use crate::outfiles::{JsonlOutputs, Summary};
use crate::settings::Settings;
use anyhow::Context;
use ctower_alerts::AlarmEngine;
use ctower_collector::deadletter::DeadLetterFile;
use ctower_collector::decode::DecoderSpec;
use ctower_collector::{Ingestor, RawMessage};
use ctower_model::{ReplayReader, StreamOutput};
use ctower_stream::StreamConfig;
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
    show_progress: bool,
) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let dead_path = out_dir.join("dead-letters.jsonl");
    // A fresh run: never append to the previous run's dead letters.
    let _ = std::fs::remove_file(&dead_path);
    let reader = ReplayReader::open(recording)?;
    let mut ing = ingestor(settings, Some(DeadLetterFile::new(dead_path)));
    let source_of: Vec<_> = settings.sources.clone();
    let (input, pipeline) = ctower_stream::start(stream_config(settings, workers))?;

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
    let ing = feeder
        .join()
        .map_err(|_| anyhow::anyhow!("the feeder thread panicked"))??;
    pipeline.workers.join()?;
    bar.finish_and_clear();
    let summary = files.finish(
        &ing.metrics(),
        workers,
        Some(recording.display().to_string()),
    )?;
    Ok(summary)
}
