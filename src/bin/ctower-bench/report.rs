//! The Markdown report of the in-process phases.

use crate::env::{commit, machine, today};
use crate::measure::{fmt_rate, mib, Measured};
use crate::phases::Recording;
use crate::BenchOptions;
use ctower::output::Summary;
use std::fmt::Write;

/// The reference rate of issue #3: plain JSON payload parsing, per core.
const REFERENCE_PARSE_PER_CORE: f64 = 2.0e6;

/// The report: where, what, the table of phases, the reading against
/// issue #3 and what each batch run wrote.
pub fn report(
    o: &BenchOptions,
    rec: &Recording,
    accepted: u64,
    rows: &[Measured],
    summaries: &[(usize, Summary)],
) -> String {
    let profile = crate::profile();
    let mut r = String::new();
    let _ = writeln!(r, "### ctower-bench, {}\n", today());
    let _ = writeln!(r, "- machine: {}", machine());
    let _ = writeln!(r, "- commit: {} ({profile})", commit());
    let _ = writeln!(
        r,
        "- recording: {}: {} messages, {:.1} MB gzip, {:.1} MB of payloads (avg {:.0} B)",
        rec.desc,
        rec.count,
        rec.gz_bytes as f64 / 1e6,
        rec.payload_bytes as f64 / 1e6,
        rec.payload_bytes as f64 / rec.count.max(1) as f64
    );
    let _ = writeln!(
        r,
        "- accepted {accepted}, refused {}; best of {} run(s) per phase\n",
        rec.count - accepted,
        o.repeat.max(1)
    );
    table(&mut r, rows, o.repeat);
    let rate_of = |name: &str| {
        rows.iter()
            .find(|m| m.name == name)
            .map_or(0.0, Measured::rate)
    };
    let _ = writeln!(
        r,
        "Against issue #3: parse-only is {:.2} × the 2 M payloads/s per core reference \
         (serde_json floor {:.2} ×); batch target is ≥ 0.50 × parse-only per worker.",
        rate_of("parse-only") / REFERENCE_PARSE_PER_CORE,
        rate_of("serde_json floor") / REFERENCE_PARSE_PER_CORE
    );
    for (w, s) in summaries {
        let _ = writeln!(
            r,
            "- batch -w {w}: {} windows, {} KPI records, {} alarm events",
            s.windows, s.kpi_records, s.alarm_events
        );
    }
    r
}

fn table(r: &mut String, rows: &[Measured], repeat: usize) {
    let parse_rate = rows
        .iter()
        .find(|m| m.name == "parse-only")
        .map_or(0.0, Measured::rate)
        .max(1e-9);
    let _ = writeln!(
        r,
        "| phase | what | wall s | CPU s | messages/s (best) | all runs | × parse-only | × parse-only per worker | peak RSS MiB | RSS after MiB |"
    );
    let _ = writeln!(r, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for m in rows {
        let rate = m.rate();
        let (ratio, per_worker) = match m.workers {
            Some(w) => (
                format!("{:.2}", rate / parse_rate),
                format!("{:.2}", rate / parse_rate / w as f64),
            ),
            None if m.name == "parse-only" => ("1.00".into(), "—".into()),
            None => (format!("{:.2}", rate / parse_rate), "—".into()),
        };
        let runs = if repeat > 1 {
            format!("{}–{}", fmt_rate(m.range.0), fmt_rate(m.range.1))
        } else {
            "1 run".into()
        };
        let _ = writeln!(
            r,
            "| {} | {} | {:.3} | {:.2} | {} | {runs} | {ratio} | {per_worker} | {} | {} |",
            m.name,
            m.what,
            m.wall.as_secs_f64(),
            m.cpu_secs,
            fmt_rate(rate),
            mib(m.peak_kib),
            mib(m.rss_kib),
        );
    }
    let _ = writeln!(r);
}
