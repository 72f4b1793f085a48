//! `ctower bench`: measures the decode path and the batch mode on one
//! recording and prints a Markdown report (see BENCHMARKS.md).
//!
//! Phases, each timed with [`Instant`] (best of `--repeat`), recording
//! generation excluded from every rate:
//!
//! 1. parse-only: the recording streamed through [`ReplayReader`] into the
//!    collector's [`Ingestor`] (decode + admission, batches discarded, dead
//!    letters only counted): the batch mode's feeder without the pipeline;
//! 2. batch: [`batch::run`] per worker count (pipeline, roll-ups, alarm
//!    rules, JSONL output into a temporary directory);
//! 3. breakdown, on messages held in memory: reading the recording (gunzip +
//!    record lines), a plain `serde_json` parse of every payload (the floor),
//!    and the decode + admission alone.
//!
//! After each phase: peak RSS (`VmHWM`, reset before the phase through
//! `/proc/self/clear_refs` when the kernel allows it) and current RSS
//! (`VmRSS`), and the process CPU time spent in it (`/proc/self/stat`).

use crate::batch;
use crate::settings::Settings;
use anyhow::Context;
use ctower_collector::RawMessage;
use ctower_model::ReplayReader;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The reference rate of issue #3: plain JSON payload parsing, per core.
const REFERENCE_PARSE_PER_CORE: f64 = 2.0e6;

pub struct BenchOptions {
    pub plants: usize,
    pub hours: f64,
    pub seed: u64,
    pub workers: Vec<usize>,
    pub recording: Option<PathBuf>,
    pub repeat: usize,
}

/// A scratch directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("ctower-bench-{}-{nanos:08x}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Memory and CPU figures of this process from /proc (Linux; zero elsewhere).
mod procfs {
    fn status_kib(field: &str) -> u64 {
        let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
            return 0;
        };
        s.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Peak resident set size, KiB.
    pub fn peak_rss_kib() -> u64 {
        status_kib("VmHWM")
    }

    /// Current resident set size, KiB.
    pub fn rss_kib() -> u64 {
        status_kib("VmRSS")
    }

    /// Resets the peak RSS to the current RSS (Linux ≥ 4.0); false if refused.
    pub fn reset_peak_rss() -> bool {
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }

    /// User + system CPU time of the whole process (exited threads
    /// included), seconds. Assumes USER_HZ = 100, as on every Linux target.
    pub fn cpu_secs() -> f64 {
        let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
            return 0.0;
        };
        // The command name may contain spaces: fields start after the last ')'.
        let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else {
            return 0.0;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After ')': state is field 3, utime field 14, stime field 15.
        let ticks = |i: usize| {
            f.get(i - 3)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (ticks(14) + ticks(15)) as f64 / 100.0
    }
}

struct Measured {
    name: String,
    what: &'static str,
    workers: Option<usize>,
    wall: Duration,
    cpu_secs: f64,
    messages: u64,
    peak_kib: u64,
    rss_kib: u64,
    /// Slowest and fastest rate over the runs, messages/s.
    range: (f64, f64),
}

impl Measured {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Runs `f` `repeat` times and keeps the fastest run.
fn measure<T>(
    name: impl Into<String>,
    what: &'static str,
    workers: Option<usize>,
    repeat: usize,
    mut f: impl FnMut() -> anyhow::Result<(u64, T)>,
) -> anyhow::Result<(Measured, T)> {
    let name = name.into();
    procfs::reset_peak_rss();
    let mut best: Option<(Duration, f64, u64, T)> = None;
    let mut range = (f64::INFINITY, 0.0f64);
    for i in 0..repeat.max(1) {
        let cpu0 = procfs::cpu_secs();
        let t0 = Instant::now();
        let (messages, out) = f()?;
        let wall = t0.elapsed();
        let cpu = procfs::cpu_secs() - cpu0;
        let rate = messages as f64 / wall.as_secs_f64().max(1e-9);
        range = (range.0.min(rate), range.1.max(rate));
        eprintln!(
            "  {name} run {}: {:.3} s, {} messages/s",
            i + 1,
            wall.as_secs_f64(),
            fmt_rate(rate)
        );
        if best.as_ref().is_none_or(|b| wall < b.0) {
            best = Some((wall, cpu, messages, out));
        }
    }
    let (wall, cpu_secs, messages, out) = best.expect("at least one run");
    let m = Measured {
        name,
        what,
        workers,
        wall,
        cpu_secs,
        messages,
        peak_kib: procfs::peak_rss_kib(),
        rss_kib: procfs::rss_kib(),
        range,
    };
    Ok((m, out))
}

/// The index of the source that decodes `topic`, as the batch feeder picks it.
fn source_of(settings: &Settings, topic: &str) -> usize {
    settings
        .sources
        .iter()
        .position(|s| s.subscribes_to(topic))
        .unwrap_or(0)
}

/// Streams the recording through the ingestor, discarding the batches.
fn parse_only(settings: &Settings, recording: &Path) -> anyhow::Result<(u64, u64)> {
    let mut ing = batch::ingestor(settings, None);
    for rec in ReplayReader::open(recording)? {
        let rec = rec?;
        let msg = RawMessage {
            source: source_of(settings, &rec.topic),
            topic: rec.topic,
            payload: rec.payload,
            recv_ms: rec.t_ms,
        };
        if let Some(b) = ing.push(&msg)? {
            black_box(b);
        }
    }
    black_box(ing.flush()?);
    let m = ing.metrics();
    Ok((m.received, m.accepted))
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
            })
        })
        .collect()
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

fn mib(kib: u64) -> String {
    if kib == 0 {
        "n/a".into()
    } else {
        format!("{:.0}", kib as f64 / 1024.0)
    }
}

fn cmd_out(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn commit() -> String {
    match cmd_out("git", &["rev-parse", "--short", "HEAD"]) {
        None => "unknown".into(),
        Some(c) => match cmd_out("git", &["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) if !s.is_empty() => format!("{c} (uncommitted changes)"),
            _ => c,
        },
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    format!(
        "{cores} CPUs available (nproc), {model}, {:.1} GiB RAM",
        mem_kib as f64 / 1024.0 / 1024.0
    )
}

fn today() -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let s = ctower_model::time::rfc3339_ms(now_ms);
    // Minutes are enough.
    format!("{} UTC", s.get(..16).unwrap_or(&s).replace('T', " "))
}

pub fn run(settings: &Settings, o: &BenchOptions) -> anyhow::Result<()> {
    anyhow::ensure!(!o.workers.is_empty(), "--workers: give at least one count");
    anyhow::ensure!(
        o.workers.iter().all(|&w| w >= 1),
        "--workers: every count must be at least 1"
    );
    let scratch = Scratch::new()?;
    let profile = if cfg!(debug_assertions) {
        "debug build: figures are meaningless, use --release"
    } else {
        "release build"
    };
    if cfg!(debug_assertions) {
        eprintln!("warning: {profile}");
    }

    // Recording (not timed into any rate).
    let (recording, source_desc) = match &o.recording {
        Some(p) => (p.clone(), format!("`{}`", p.display())),
        None => {
            let path = scratch.0.join("bench.jsonl.gz");
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
            (
                path,
                format!(
                    "simulated: `--plants {} --hours {} --seed {}`",
                    o.plants, o.hours, o.seed
                ),
            )
        }
    };
    let gz_bytes = std::fs::metadata(&recording)
        .with_context(|| format!("{}", recording.display()))?
        .len();
    // Untimed: warms the page cache so no phase pays for the first disk read,
    // and counts the messages and payload bytes.
    let (mut count, mut payload_bytes) = (0u64, 0u64);
    for rec in ReplayReader::open(&recording)? {
        let rec = rec?;
        count += 1;
        payload_bytes += rec.payload.len() as u64;
    }
    eprintln!("recording: {count} messages, {gz_bytes} bytes gzip, {payload_bytes} payload bytes");

    let mut rows: Vec<Measured> = Vec::new();

    // 1. Parse-only, streaming from the file like the batch feeder.
    eprintln!("parse-only (ReplayReader → Ingestor::push, batches discarded) …");
    let (m, accepted_parse) = measure(
        "parse-only",
        "read + decode + admission, 1 thread",
        None,
        o.repeat,
        || {
            let (received, accepted) = parse_only(settings, &recording)?;
            Ok((received, accepted))
        },
    )?;
    let parse_rate = m.rate();
    rows.push(m);

    // 2. The batch mode per worker count.
    let mut summaries = Vec::new();
    for &w in &o.workers {
        eprintln!("batch mode, {w} worker(s) …");
        let out_dir = scratch.0.join(format!("out-w{w}"));
        let (m, s) = measure(
            format!("batch -w {w}"),
            "batch::run: decode, pipeline, alarms, JSONL",
            Some(w),
            o.repeat,
            || {
                let s = batch::run(settings, &recording, &out_dir, w, None, false)?;
                Ok((s.messages, s))
            },
        )?;
        let _ = std::fs::remove_dir_all(&out_dir);
        anyhow::ensure!(
            s.accepted == accepted_parse,
            "batch -w {w} accepted {} messages, parse-only {accepted_parse}",
            s.accepted
        );
        summaries.push((w, s));
        rows.push(m);
    }

    // 3. Breakdown on messages held in memory (after the batch runs, so the
    // in-memory copy does not inflate their RSS).
    eprintln!("breakdown: read into memory, serde_json floor, decode alone …");
    let (m, msgs) = measure(
        "read",
        "ReplayReader: gunzip + record lines, into memory",
        None,
        o.repeat,
        || {
            let v = read_all(settings, &recording)?;
            Ok((v.len() as u64, v))
        },
    )?;
    rows.push(m);
    let (m, ()) = measure(
        "serde_json floor",
        "payload → serde_json::Value, in memory",
        None,
        o.repeat,
        || {
            for msg in &msgs {
                let _ = black_box(serde_json::from_slice::<serde_json::Value>(black_box(
                    &msg.payload,
                )));
            }
            Ok((msgs.len() as u64, ()))
        },
    )?;
    rows.push(m);
    let (m, ()) = measure(
        "decode alone",
        "Ingestor::push (decode + admission), in memory",
        None,
        o.repeat,
        || {
            let mut ing = batch::ingestor(settings, None);
            for msg in &msgs {
                if let Some(b) = ing.push(black_box(msg))? {
                    black_box(b);
                }
            }
            black_box(ing.flush()?);
            Ok((msgs.len() as u64, ()))
        },
    )?;
    rows.push(m);
    drop(msgs);

    // The report.
    let mut r = String::new();
    use std::fmt::Write;
    let _ = writeln!(r, "### ctower bench, {}", today());
    let _ = writeln!(r);
    let _ = writeln!(r, "- machine: {}", machine());
    let _ = writeln!(r, "- commit: {} ({profile})", commit());
    let _ = writeln!(
        r,
        "- recording: {source_desc}: {count} messages, {:.1} MB gzip, {:.1} MB of payloads (avg {:.0} B)",
        gz_bytes as f64 / 1e6,
        payload_bytes as f64 / 1e6,
        payload_bytes as f64 / count.max(1) as f64
    );
    let _ = writeln!(
        r,
        "- accepted {accepted_parse}, refused {}; best of {} run(s) per phase",
        count - accepted_parse,
        o.repeat.max(1)
    );
    let _ = writeln!(r);
    let _ = writeln!(
        r,
        "| phase | what | wall s | CPU s | messages/s (best) | all runs | × parse-only | × parse-only per worker | peak RSS MiB | RSS after MiB |"
    );
    let _ = writeln!(r, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for m in &rows {
        let rate = m.rate();
        let (ratio, per_worker) = match m.workers {
            Some(w) => (
                format!("{:.2}", rate / parse_rate),
                format!("{:.2}", rate / parse_rate / w as f64),
            ),
            None if m.name == "parse-only" => ("1.00".into(), "—".into()),
            None => (format!("{:.2}", rate / parse_rate), "—".into()),
        };
        let _ = writeln!(
            r,
            "| {} | {} | {:.3} | {:.2} | {} | {} | {ratio} | {per_worker} | {} | {} |",
            m.name,
            m.what,
            m.wall.as_secs_f64(),
            m.cpu_secs,
            fmt_rate(rate),
            if o.repeat > 1 {
                format!("{}–{}", fmt_rate(m.range.0), fmt_rate(m.range.1))
            } else {
                "1 run".into()
            },
            mib(m.peak_kib),
            mib(m.rss_kib),
        );
    }
    let _ = writeln!(r);
    let floor = rows
        .iter()
        .find(|m| m.name == "serde_json floor")
        .map_or(0.0, Measured::rate);
    let _ = writeln!(
        r,
        "Against issue #3: parse-only is {:.2} × the 2 M payloads/s per core reference \
         (serde_json floor {:.2} ×); batch target is ≥ 0.50 × parse-only per worker.",
        parse_rate / REFERENCE_PARSE_PER_CORE,
        floor / REFERENCE_PARSE_PER_CORE
    );
    for (w, s) in &summaries {
        let _ = writeln!(
            r,
            "- batch -w {w}: {} windows, {} KPI records, {} alarm events",
            s.windows, s.kpi_records, s.alarm_events
        );
    }
    print!("{r}");
    Ok(())
}
