//! The in-process phases: parse-only, the batch mode per worker count, and
//! the breakdown on messages held in memory.

use crate::measure::{measure, Measured};
use crate::BenchOptions;
use anyhow::Context;
use ctower::batch;
use ctower::output::Summary;
use ctower::settings::Settings;
use ctower_collector::{decode_chunk, RawMessage};
use ctower_model::replay::CHUNK_BYTES;
use ctower_model::{ReplayChunks, ReplayReader};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The recording measured, and what it holds.
pub struct Recording {
    /// Its path.
    pub path: PathBuf,
    /// Where it came from, for the report.
    pub desc: String,
    /// Messages.
    pub count: u64,
    /// Size of the file (gzip).
    pub gz_bytes: u64,
    /// Payload bytes.
    pub payload_bytes: u64,
}

/// The recording: `--recording`, or simulated into `scratch` (not timed
/// into any rate); then read once, untimed, to warm the page cache so no
/// phase pays for the first disk read, and to count it.
pub fn recording(o: &BenchOptions, scratch: &Path) -> anyhow::Result<Recording> {
    let (path, desc) = match &o.recording {
        Some(p) => (p.clone(), format!("`{}`", p.display())),
        None => simulate(o, scratch)?,
    };
    let gz_bytes = std::fs::metadata(&path)
        .with_context(|| format!("{}", path.display()))?
        .len();
    let (mut count, mut payload_bytes) = (0u64, 0u64);
    for rec in ReplayReader::open(&path)? {
        count += 1;
        payload_bytes += rec?.payload.len() as u64;
    }
    eprintln!("recording: {count} messages, {gz_bytes} bytes gzip, {payload_bytes} payload bytes");
    Ok(Recording {
        path,
        desc,
        count,
        gz_bytes,
        payload_bytes,
    })
}

fn simulate(o: &BenchOptions, scratch: &Path) -> anyhow::Result<(PathBuf, String)> {
    let path = scratch.join("bench.jsonl.gz");
    let cfg = ctower_sim::SimConfig {
        seed: o.seed,
        hours: o.hours,
        plants: o.plants,
        ..Default::default()
    };
    eprintln!(
        "generating {} plants × {} h (seed {}) …",
        o.plants, o.hours, o.seed
    );
    let t0 = Instant::now();
    let mut w = ctower_model::ReplayWriter::create(&path)?;
    let s = ctower_sim::simulate(&cfg, &mut w)?;
    w.finish()?;
    eprintln!(
        "  generated {} messages ({} malformed) in {:.1} s (not counted in any rate)",
        s.messages,
        s.malformed,
        t0.elapsed().as_secs_f64()
    );
    let desc = format!(
        "simulated: `--plants {} --hours {} --seed {}`",
        o.plants, o.hours, o.seed
    );
    Ok((path, desc))
}

/// The index of the source that decodes `topic`, as the batch mode picks it.
fn source_of(settings: &Settings, topic: &str) -> usize {
    settings
        .sources
        .iter()
        .position(|s| s.subscribes_to(topic))
        .unwrap_or(0)
}

/// Phase 1, parse-only: the batch mode's reading, decoding and admission
/// on one thread, batches discarded (chunks → `decode_chunk` →
/// `admit_chunk`). Also the number of messages accepted.
pub fn parse_only(
    settings: &Settings,
    rec: &Recording,
    repeat: usize,
) -> anyhow::Result<(Measured, u64)> {
    eprintln!("parse-only (chunks → decode_chunk → admit_chunk, one thread, batches discarded) …");
    measure(
        "parse-only",
        "read + decode + admission, 1 thread",
        None,
        repeat,
        || {
            let mut ing = ctower::pipeline::ingestor(settings, None);
            let mut decoders = ing.decoders();
            let mut full = Vec::new();
            for chunk in ReplayChunks::open(&rec.path, CHUNK_BYTES)? {
                let d = decode_chunk(&mut decoders, chunk?, |t| source_of(settings, t));
                ing.admit_chunk(d, &mut full)?;
                black_box(&full);
                full.clear();
            }
            black_box(ing.flush()?);
            let m = ing.metrics();
            Ok((m.received, m.accepted))
        },
    )
}

/// Phase 2: the batch mode (in this process) per worker count; each must
/// accept what parse-only accepted.
pub fn batch_runs(
    settings: &Settings,
    o: &BenchOptions,
    rec: &Recording,
    scratch: &Path,
    accepted: u64,
) -> anyhow::Result<Vec<(Measured, Summary)>> {
    let mut runs = Vec::new();
    for &w in &o.workers {
        eprintln!("batch mode, {w} worker(s) …");
        let out_dir = scratch.join(format!("out-w{w}"));
        let opts = batch::BatchOptions::new(w, o.decode_threads);
        let what = if opts.decode_threads == 1 {
            "batch::run, 1 decode thread: decode, pipeline, alarms, JSONL"
        } else if opts.decode_threads == w {
            "batch::run, as many decode threads: decode, pipeline, alarms, JSONL"
        } else {
            "batch::run (see --decode-threads): decode, pipeline, alarms, JSONL"
        };
        let (m, s) = measure(format!("batch -w {w}"), what, Some(w), o.repeat, || {
            let s = batch::run(settings, &rec.path, &out_dir, &opts, Vec::new())?;
            Ok((s.messages, s))
        })?;
        let _ = std::fs::remove_dir_all(&out_dir);
        anyhow::ensure!(
            s.accepted == accepted,
            "batch -w {w} accepted {} messages, parse-only {accepted}",
            s.accepted
        );
        runs.push((m, s));
    }
    Ok(runs)
}

/// Phase 3, the breakdown on messages held in memory (after the batch
/// runs, so the in-memory copy does not inflate their RSS): the chunk
/// reader alone, reading into memory, the serde_json floor, decode alone.
pub fn breakdown(
    settings: &Settings,
    rec: &Recording,
    repeat: usize,
) -> anyhow::Result<Vec<Measured>> {
    eprintln!("breakdown: chunks alone, read into memory, serde_json floor, decode alone …");
    let what = "ReplayChunks: gunzip + cut into whole lines (the batch reader thread)";
    let (chunks, ()) = measure("chunks alone", what, None, repeat, || {
        let mut n = 0u64;
        for c in ReplayChunks::open(&rec.path, CHUNK_BYTES)? {
            black_box(c?);
            n += 1;
        }
        black_box(n);
        Ok((rec.count, ()))
    })?;
    let what = "ReplayReader: gunzip + record lines, into memory";
    let (read, msgs) = measure("read", what, None, repeat, || {
        let v = read_all(settings, &rec.path)?;
        Ok((v.len() as u64, v))
    })?;
    let (floor, ()) = measure(
        "serde_json floor",
        "payload → serde_json::Value, in memory",
        None,
        repeat,
        || {
            for msg in &msgs {
                let _ = black_box(serde_json::from_slice::<serde_json::Value>(black_box(
                    &msg.payload,
                )));
            }
            Ok((msgs.len() as u64, ()))
        },
    )?;
    let what = "Ingestor::push (decode + admission), in memory";
    let (decode, ()) = measure("decode alone", what, None, repeat, || {
        let mut ing = ctower::pipeline::ingestor(settings, None);
        for msg in &msgs {
            if let Some(b) = ing.push(black_box(msg))? {
                black_box(b);
            }
        }
        black_box(ing.flush()?);
        Ok((msgs.len() as u64, ()))
    })?;
    Ok(vec![chunks, read, floor, decode])
}

fn read_all(settings: &Settings, recording: &Path) -> anyhow::Result<Vec<RawMessage>> {
    ReplayReader::open(recording)?
        .map(|rec| {
            let rec = rec?;
            Ok(RawMessage {
                source: source_of(settings, &rec.topic),
                topic: rec.topic,
                payload: rec.payload,
                recv_ms: rec.t_ms,
                truncated_from: None,
            })
        })
        .collect()
}
