//! What live mode and batch mode build alike from the settings: the
//! ingestor (decoders, admission, limits, dead letters), the stream
//! pipeline's configuration, and the tokio runtime for MQTT I/O.

use crate::settings::Settings;
use anyhow::Context;
use ctower_collector::deadletter::DeadLetterFile;
use ctower_collector::decode::DecodeRules;
use ctower_collector::sparkplug::WriteDirectory;
use ctower_collector::Ingestor;
use ctower_stream::StreamConfig;
use std::sync::Arc;

/// Closed windows queued from the timely workers to the output stage;
/// full: the dataflow waits.
pub const OUTPUT_QUEUE_WINDOWS: usize = 64;

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
    let mut ing = Ingestor::new(sources, settings.admission, dead, settings.batch_size)
        .with_limits(settings.limits.clone());
    for (i, s) in settings.sources.iter().enumerate() {
        if let Some(rules) = &s.sparkplug {
            ing = ing.with_sparkplug(i, rules.clone());
        }
    }
    ing
}

/// [`ingestor`] for live mode: its Sparkplug hosts also record, in
/// `directory`, the metric behind each read-back signal of the parameter
/// catalogue ([`Settings::write_signals`]) from the births, for parameter
/// writes (`crate::live::plant_link`). A replay addresses no plant: batch
/// mode uses [`ingestor`].
pub fn live_ingestor(
    settings: &Settings,
    dead: Option<DeadLetterFile>,
    directory: WriteDirectory,
) -> Ingestor {
    ingestor(settings, dead).with_write_directory(directory, settings.write_signals())
}

/// The stream pipeline's configuration with `workers` timely workers.
pub fn stream_config(settings: &Settings, workers: usize) -> StreamConfig {
    StreamConfig {
        workers,
        accum: settings.accum.clone(),
        input_capacity: settings.queue_batches,
        output_capacity: OUTPUT_QUEUE_WINDOWS,
        // The sample rules' signals (not the stage's own, `!…`) and the
        // parameters' read-backs.
        tee_signals: settings
            .rules
            .iter()
            .filter_map(|r| r.sample_signal().cloned())
            .filter(|s| !s.starts_with('!'))
            .chain(settings.write_signals())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        tee_states: settings.rules.iter().any(|r| !r.suppress_when.is_empty()),
    }
}

/// The tokio runtime for MQTT I/O: two threads are plenty, the heavy work
/// runs on timely's own threads.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ctower-io")
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}
