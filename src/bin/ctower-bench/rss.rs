//! Memory over a long run: one batch run in a fresh child process, fed a
//! simulated recording through a pipe, its RSS sampled each event-time hour.

use crate::procfs;
use crate::BenchOptions;
use anyhow::Context;
use ctower::batch;
use ctower::settings::Settings;
use std::path::Path;
use std::time::Instant;

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
pub struct RssRun {
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
pub fn rss_run(o: &BenchOptions, scratch: &Path, workers: usize) -> anyhow::Result<RssRun> {
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

pub fn rss_report(o: &BenchOptions, workers: usize, run: &RssRun) -> String {
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
