//! A/B: the batch mode of two `ctower` binaries (a baseline, e.g. built
//! from an older commit, and the candidate) on the same recording, as
//! fresh processes, alternately (A B, B A, …) so that drifts of a shared
//! machine hit both alike; wall and CPU seconds, best of N, as ratios
//! candidate / baseline, and whether their output files are byte-identical.

use crate::env::{commit, machine, today};
use anyhow::Context;
use ctower_model::hash::Fnv1a;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What to compare.
pub struct AbPlan<'a> {
    /// The baseline binary.
    pub baseline: PathBuf,
    /// The candidate binary.
    pub candidate: PathBuf,
    /// The configuration both run with.
    pub config: &'a Path,
    /// The recording.
    pub recording: &'a Path,
    /// Worker counts.
    pub workers: &'a [usize],
    /// Runs of each binary per worker count.
    pub repeat: usize,
    /// Where the runs write.
    pub scratch: &'a Path,
}

/// One fresh-process run.
#[derive(Debug, Clone, Copy)]
struct Run {
    wall_s: f64,
    cpu_s: f64,
}

/// The output files the comparison covers.
const FILES: [&str; 3] = ["kpis.jsonl", "alarms.jsonl", "dead-letters.jsonl"];

/// Runs the comparison and returns its Markdown report.
pub fn compare(p: &AbPlan<'_>) -> anyhow::Result<String> {
    let mut rows = Vec::new();
    for &w in p.workers {
        let (mut base, mut cand) = (Vec::new(), Vec::new());
        for round in 0..p.repeat.max(1) {
            // Alternate which goes first.
            let order = if round % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for is_candidate in order {
                let (bin, tag) = match is_candidate {
                    true => (&p.candidate, "candidate"),
                    false => (&p.baseline, "baseline"),
                };
                let out = p.scratch.join(format!("ab-{tag}-w{w}"));
                let r = run_once(bin, p, w, &out)?;
                eprintln!(
                    "  -w {w} {tag} run {}: {:.3} s wall, {:.2} s CPU",
                    round + 1,
                    r.wall_s,
                    r.cpu_s
                );
                match is_candidate {
                    true => cand.push(r),
                    false => base.push(r),
                }
            }
        }
        let same = identical(
            &p.scratch.join(format!("ab-baseline-w{w}")),
            &p.scratch.join(format!("ab-candidate-w{w}")),
        )?;
        rows.push((w, base, cand, same));
    }
    Ok(report(p, &rows))
}

fn run_once(bin: &Path, p: &AbPlan<'_>, workers: usize, out: &Path) -> anyhow::Result<Run> {
    let _ = std::fs::remove_dir_all(out);
    let cpu0 = crate::procfs::children_cpu_secs();
    let t0 = Instant::now();
    let status = std::process::Command::new(bin)
        .args(["--log", "warn", "run", "-c"])
        .arg(p.config)
        .arg("--replay")
        .arg(p.recording)
        .args(["--speed", "max", "--until-end", "--out"])
        .arg(out)
        .args(["-w", &workers.to_string()])
        .status()
        .with_context(|| format!("starting {}", bin.display()))?;
    let wall_s = t0.elapsed().as_secs_f64();
    anyhow::ensure!(status.success(), "{} failed: {status}", bin.display());
    Ok(Run {
        wall_s,
        cpu_s: crate::procfs::children_cpu_secs() - cpu0,
    })
}

/// Whether the two runs wrote the same bytes, file by file.
fn identical(a: &Path, b: &Path) -> anyhow::Result<bool> {
    let digest = |dir: &Path, f: &str| -> anyhow::Result<(u64, u64)> {
        let bytes = std::fs::read(dir.join(f))
            .with_context(|| format!("reading {}", dir.join(f).display()))?;
        let mut h = Fnv1a::default();
        h.write(&bytes);
        Ok((bytes.len() as u64, h.finish()))
    };
    for f in FILES {
        if digest(a, f)? != digest(b, f)? {
            eprintln!("  {f} differs between the baseline and the candidate");
            return Ok(false);
        }
    }
    Ok(true)
}

fn best(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    runs.iter().map(f).fold(f64::INFINITY, f64::min)
}

fn report(p: &AbPlan<'_>, rows: &[(usize, Vec<Run>, Vec<Run>, bool)]) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "### ctower-bench --baseline, {}\n", today());
    let _ = writeln!(r, "- machine: {}", machine());
    let _ = writeln!(
        r,
        "- candidate: `{}` (tree at {})",
        p.candidate.display(),
        commit()
    );
    let _ = writeln!(r, "- baseline: `{}`", p.baseline.display());
    let _ = writeln!(
        r,
        "- recording: `{}`; fresh processes, alternately, best of {}\n",
        p.recording.display(),
        p.repeat.max(1)
    );
    let _ = writeln!(r, "| batch | baseline wall s | candidate wall s | wall ratio | baseline CPU s | candidate CPU s | CPU ratio | all CPU s, baseline / candidate | outputs |");
    let _ = writeln!(r, "|---|--:|--:|--:|--:|--:|--:|---|---|");
    for (w, base, cand, same) in rows {
        let (bw, cw) = (best(base, |x| x.wall_s), best(cand, |x| x.wall_s));
        let (bc, cc) = (best(base, |x| x.cpu_s), best(cand, |x| x.cpu_s));
        let all = |v: &[Run]| {
            v.iter()
                .map(|x| format!("{:.2}", x.cpu_s))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            r,
            "| -w {w} | {bw:.3} | {cw:.3} | {:.2} | {bc:.2} | {cc:.2} | {:.2} | {} / {} | {} |",
            cw / bw.max(1e-9),
            cc / bc.max(1e-9),
            all(base),
            all(cand),
            if *same { "byte-identical" } else { "DIFFERENT" }
        );
    }
    r
}
