//! Timing a phase: best of N runs, wall and CPU time, RSS after it.

use crate::procfs;
use std::time::{Duration, Instant};

/// One measured phase.
pub struct Measured {
    pub name: String,
    pub what: &'static str,
    pub workers: Option<usize>,
    pub wall: Duration,
    pub cpu_secs: f64,
    pub messages: u64,
    pub peak_kib: u64,
    pub rss_kib: u64,
    /// Slowest and fastest rate over the runs, messages/s.
    pub range: (f64, f64),
}

impl Measured {
    /// Messages per second of the best run.
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Runs `f` `repeat` times and keeps the fastest run.
pub fn measure<T>(
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
    // `repeat.max(1)` runs, each either Ok (and kept if best) or returned.
    let Some((wall, cpu_secs, messages, out)) = best else {
        anyhow::bail!("{name}: no run was made");
    };
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

/// A rate, readable: `1.23 M`, `45.6 k`.
pub fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

/// KiB as whole MiB (`n/a` for 0).
pub fn mib(kib: u64) -> String {
    if kib == 0 {
        "n/a".into()
    } else {
        format!("{:.0}", kib as f64 / 1024.0)
    }
}
