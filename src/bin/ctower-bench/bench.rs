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

use anyhow::Context;
use ctower::batch;
use ctower::settings::Settings;
use ctower_collector::{decode_chunk, RawMessage};
use ctower_model::replay::CHUNK_BYTES;
use ctower_model::{ReplayChunks, ReplayReader};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The reference rate of issue #3: plain JSON payload parsing, per core.
const REFERENCE_PARSE_PER_CORE: f64 = 2.0e6;

pub struct BenchOptions {
    /// The configuration file (handed to the RSS child process).
    pub config: PathBuf,
    pub plants: usize,
    pub hours: f64,
    pub seed: u64,
    pub workers: Vec<usize>,
    pub recording: Option<PathBuf>,
    pub repeat: usize,
    pub decode_threads: Option<usize>,
    /// Hours of simulated data for the RSS run (0: none).
    pub rss_hours: f64,
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

/// The index of the source that decodes `topic`, as the batch mode picks it.
fn source_of(settings: &Settings, topic: &str) -> usize {
    settings
        .sources
        .iter()
        .position(|s| s.subscribes_to(topic))
        .unwrap_or(0)
}

/// The batch mode's reading, decoding and admission on one thread, batches
/// discarded: chunks of the recording → `decode_chunk` → `admit_chunk`.
fn parse_only(settings: &Settings, recording: &Path) -> anyhow::Result<(u64, u64)> {
    let mut ing = ctower::pipeline::ingestor(settings, None);
    let mut decoders = ing.decoders();
    let mut full = Vec::new();
    for chunk in ReplayChunks::open(recording, CHUNK_BYTES)? {
        let d = decode_chunk(&mut decoders, chunk?, |t| source_of(settings, t));
        ing.admit_chunk(d, &mut full)?;
        black_box(&full);
        full.clear();
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
                truncated_from: None,
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
    eprintln!("parse-only (chunks → decode_chunk → admit_chunk, one thread, batches discarded) …");
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
        let opts = batch::BatchOptions::new(w, o.decode_threads);
        let (m, s) = measure(
            format!("batch -w {w}"),
            if opts.decode_threads == 1 {
                "batch::run, 1 decode thread: decode, pipeline, alarms, JSONL"
            } else if opts.decode_threads == w {
                "batch::run, as many decode threads: decode, pipeline, alarms, JSONL"
            } else {
                "batch::run (see --decode-threads): decode, pipeline, alarms, JSONL"
            },
            Some(w),
            o.repeat,
            || {
                let s = batch::run(settings, &recording, &out_dir, &opts, Vec::new())?;
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
    eprintln!("breakdown: chunks alone, read into memory, serde_json floor, decode alone …");
    let (m, ()) = measure(
        "chunks alone",
        "ReplayChunks: gunzip + cut into whole lines (the batch reader thread)",
        None,
        o.repeat,
        || {
            let mut n = 0u64;
            for c in ReplayChunks::open(&recording, CHUNK_BYTES)? {
                black_box(c?);
                n += 1;
            }
            black_box(n);
            Ok((count, ()))
        },
    )?;
    rows.push(m);
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
            let mut ing = ctower::pipeline::ingestor(settings, None);
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

    if o.rss_hours > 0.0 && o.plants > 0 {
        let w = o.workers.iter().copied().max().unwrap_or(1);
        let rss = rss_run(o, &scratch.0, w)?;
        print!("{}", rss_report(o, w, &rss));
    }
    Ok(())
}

/// One sample of the RSS child: `hour` hours of event time done (`None`: the
/// run is over and its threads have exited).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct RssSample {
    hour: Option<u32>,
    rss_kib: u64,
    hwm_kib: u64,
    wall_s: f64,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct RssRun {
    messages: u64,
    accepted: u64,
    windows: u64,
    samples: Vec<RssSample>,
}

/// `ctower-bench rss`: one batch run in this (fresh) process, the RSS
/// sampled on the output thread each time event time passes a whole hour
/// (a window closes at or after it), and once more at the end. Prints an
/// [`RssRun`] as JSON on stdout.
pub fn rss_child(
    settings: &Settings,
    recording: &Path,
    out: &Path,
    workers: usize,
    decode_threads: Option<usize>,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = RssSampler {
        t0,
        first: None,
        next_hour: 1,
        samples: samples.clone(),
    };
    let opts = batch::BatchOptions::new(workers.max(1), decode_threads);
    let s = batch::run(settings, recording, out, &opts, vec![Box::new(sampler)])?;
    let mut samples =
        std::mem::take(&mut *samples.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    samples.push(RssSample {
        hour: None,
        rss_kib: procfs::rss_kib(),
        hwm_kib: procfs::peak_rss_kib(),
        wall_s: t0.elapsed().as_secs_f64(),
    });
    let run = RssRun {
        messages: s.messages,
        accepted: s.accepted,
        windows: s.windows,
        samples,
    };
    println!("{}", serde_json::to_string(&run)?);
    Ok(())
}

/// Samples the RSS each time event time passes a whole hour.
struct RssSampler {
    t0: Instant,
    first: Option<i64>,
    next_hour: u32,
    samples: std::sync::Arc<std::sync::Mutex<Vec<RssSample>>>,
}

impl ctower::output::Sink for RssSampler {
    fn record(&mut self, _out: &ctower_model::StreamOutput) {}
    fn alarm(&mut self, _ev: &ctower_model::AlarmEvent) {}
    fn end_window(&mut self, w: &ctower_stream::WindowOutput, _now_ms: i64) {
        let start = *self.first.get_or_insert(w.window_start_ms);
        while w.window_end_ms - start >= i64::from(self.next_hour) * 3_600_000 {
            if let Ok(mut s) = self.samples.lock() {
                s.push(RssSample {
                    hour: Some(self.next_hour),
                    rss_kib: procfs::rss_kib(),
                    hwm_kib: procfs::peak_rss_kib(),
                    wall_s: self.t0.elapsed().as_secs_f64(),
                });
            }
            self.next_hour += 1;
        }
    }
}

/// Simulates `rss_hours` of `plants` plants in this process and streams the
/// recording (gzip, never on disk) into a child `ctower-bench rss` through
/// its stdin, so the child's memory is the batch mode's alone.
fn rss_run(o: &BenchOptions, scratch: &Path, workers: usize) -> anyhow::Result<RssRun> {
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().context("locating the ctower executable")?;
    let out = scratch.join("rss-out");
    let mut cmd = Command::new(exe);
    cmd.args(["--log", "warn", "rss", "--recording", "/dev/stdin"])
        .arg("--config")
        .arg(&o.config)
        .arg("--out")
        .arg(&out)
        .args(["--workers", &workers.to_string()]);
    if let Some(d) = o.decode_threads {
        cmd.args(["--decode-threads", &d.to_string()]);
    }
    eprintln!(
        "RSS: {} plants × {} h simulated, streamed into `ctower-bench rss -w {workers}` …",
        o.plants, o.rss_hours
    );
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting ctower-bench rss")?;
    let stdin = child
        .stdin
        .take()
        .context("the child's stdin is not a pipe")?;
    let cfg = ctower_sim::SimConfig {
        seed: o.seed,
        hours: o.rss_hours,
        plants: o.plants,
        ..Default::default()
    };
    let sent = (|| -> anyhow::Result<u64> {
        let mut w = ctower_model::ReplayWriter::new(std::io::BufWriter::new(stdin))?;
        let s = ctower_sim::simulate(&cfg, &mut w)?;
        // Flushes the gzip trailer; dropping the writer closes the pipe.
        w.finish()?;
        Ok(s.messages)
    })();
    let output = child
        .wait_with_output()
        .context("waiting for ctower-bench rss")?;
    let _ = std::fs::remove_dir_all(&out);
    anyhow::ensure!(
        output.status.success(),
        "ctower-bench rss failed ({})",
        output.status
    );
    let sent = sent.context("streaming the simulated recording")?;
    let run: RssRun =
        serde_json::from_slice(&output.stdout).context("reading the report of ctower-bench rss")?;
    anyhow::ensure!(
        run.messages == sent,
        "ctower-bench rss read {} messages, {sent} were sent",
        run.messages
    );
    Ok(run)
}

fn growth(from: u64, to: u64) -> String {
    if from == 0 {
        return "n/a".into();
    }
    format!("{:+.1} %", (to as f64 / from as f64 - 1.0) * 100.0)
}

fn rss_report(o: &BenchOptions, workers: usize, run: &RssRun) -> String {
    use std::fmt::Write;
    let mut r = String::new();
    let _ = writeln!(r);
    let _ = writeln!(
        r,
        "#### RSS over {} h of data ({} plants, seed {}, batch -w {workers}, fresh process, recording streamed through a pipe)",
        o.rss_hours, o.plants, o.seed
    );
    let _ = writeln!(r);
    let _ = writeln!(
        r,
        "{} messages, {} accepted, {} windows.",
        run.messages, run.accepted, run.windows
    );
    let _ = writeln!(r);
    let _ = writeln!(r, "| event time | VmRSS MiB | VmHWM MiB | wall s |");
    let _ = writeln!(r, "|---|--:|--:|--:|");
    let last_hour = run.samples.iter().filter_map(|s| s.hour).max().unwrap_or(0);
    for s in &run.samples {
        let show = match s.hour {
            None => true,
            Some(h) => h <= 2 || h % 6 == 0 || h + 1 >= last_hour,
        };
        if !show {
            continue;
        }
        let when = s
            .hour
            .map_or("end (threads joined)".into(), |h| format!("{h} h"));
        let _ = writeln!(
            r,
            "| {when} | {} | {} | {:.1} |",
            mib_1(s.rss_kib),
            mib_1(s.hwm_kib),
            s.wall_s
        );
    }
    let at = |h: u32| run.samples.iter().find(|s| s.hour == Some(h));
    if let (Some(a), Some(b)) = (at(1), at(last_hour)) {
        let _ = writeln!(r);
        let _ = writeln!(
            r,
            "Growth from 1 h to {last_hour} h: VmRSS {} ({} → {} KiB), VmHWM {} ({} → {} KiB); target ≤ +10 %.",
            growth(a.rss_kib, b.rss_kib),
            a.rss_kib,
            b.rss_kib,
            growth(a.hwm_kib, b.hwm_kib),
            a.hwm_kib,
            b.hwm_kib
        );
        // RSS moves with the allocator: also the largest sample after 1 h.
        if let Some(m) = run
            .samples
            .iter()
            .filter(|s| s.hour.is_some_and(|h| h > 1))
            .max_by_key(|s| s.rss_kib)
        {
            let _ = writeln!(
                r,
                "Largest VmRSS sampled after 1 h: {} KiB at {} h, {} against 1 h.",
                m.rss_kib,
                m.hour.unwrap_or(0),
                growth(a.rss_kib, m.rss_kib)
            );
        }
    }
    r
}

fn mib_1(kib: u64) -> String {
    if kib == 0 {
        "n/a".into()
    } else {
        format!("{:.1}", kib as f64 / 1024.0)
    }
}
