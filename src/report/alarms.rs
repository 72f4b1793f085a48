//! `ctower report alarms`: the alarm system's own KPIs (ANSI/ISA-18.2
//! clause 16 and EEMUA 191) over a period, per console (a site; ctower's
//! own alarms are the `group` console), each against its benchmark, from
//! the journal's `alarm` lines.
//!
//! | KPI | benchmark |
//! |---|---|
//! | alarms per hour (average) | ≤ 6 acceptable, ≤ 12 manageable (ISA-18.2: ~150 / ~300 a day) |
//! | alarms per 10 minutes (peak) | ≤ 10 (more is a flood) |
//! | 10-minute periods in flood (> 10 alarms) | < 1 % |
//! | top-10 bad actors' share of all alarms | < 5 % … 20 % (ISA-18.2: "~1 % to 5 % maximum, with action plans") |
//! | chattering alarms (≥ 3 raises within 60 s) | 0 |
//! | stale alarms (active for more than 24 h) | < 5 on any day |
//! | priority split (of 3–4 priorities) | ~80 % low, ~15 % medium, ~5 % high, < 1 % urgent |
//!
//! An alarm here is an annunciation: a `raised` event.

use crate::influx::export::journal_files;
use influxdb_line_protocol::{parse_lines, FieldValue};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;

const TEN_MIN: i64 = 600_000;
const DAY: i64 = 86_400_000;

/// One alarm event as the journal has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Journaled {
    /// Event time, ms.
    pub ts_ms: i64,
    /// `rule@scope#signal`.
    pub id: String,
    /// The rule.
    pub rule: String,
    /// The console: the scope's site, or `group`.
    pub console: String,
    /// `raised`, `cleared`, `acknowledged` …
    pub kind: String,
    /// The rule's priority.
    pub priority: String,
}

/// The journal's alarm events up to `to_ms`, in time order (the whole
/// history before the period too: an alarm raised before it may be stale
/// in it).
pub fn read_alarms(dir: &Path, to_ms: i64) -> anyhow::Result<Vec<Journaled>> {
    let files = journal_files(dir)
        .map_err(|e| anyhow::anyhow!("cannot list the journal in {}: {e}", dir.display()))?;
    if files.is_empty() {
        anyhow::bail!("no journal files in {}", dir.display());
    }
    let mut out = Vec::new();
    for path in files {
        let file = std::fs::File::open(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            if !line.starts_with("alarm,") {
                continue;
            }
            let Some(Ok(p)) = parse_lines(&line).next() else {
                continue;
            };
            let tag = |k: &str| {
                p.series
                    .tag_set
                    .iter()
                    .flatten()
                    .find(|(key, _)| key.as_str() == k)
                    .map(|(_, v)| v.to_string())
            };
            let priority = p
                .field_set
                .iter()
                .find(|(k, _)| k.as_str() == "priority")
                .and_then(|(_, v)| match v {
                    FieldValue::String(s) => Some(s.to_string()),
                    _ => None,
                })
                .unwrap_or_default();
            let (Some(rule), Some(scope), Some(kind), Some(ts)) =
                (tag("rule"), tag("scope"), tag("kind"), p.timestamp)
            else {
                continue;
            };
            let ts_ms = ts / 1_000_000;
            if ts_ms > to_ms {
                continue;
            }
            let console = scope.split('/').next().unwrap_or("group").to_string();
            let id = match tag("signal") {
                Some(s) => format!("{rule}@{scope}#{s}"),
                None => format!("{rule}@{scope}"),
            };
            out.push(Journaled {
                ts_ms,
                id,
                rule,
                console,
                kind,
                priority,
            });
        }
    }
    out.sort_by_key(|e| e.ts_ms);
    Ok(out)
}

/// One KPI of one console against its benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The console (site).
    pub console: String,
    /// What is measured.
    pub kpi: String,
    /// Its value.
    pub value: f64,
    /// How it is shown (`{:.2}`, a percentage …).
    pub shown: String,
    /// The benchmark, in words.
    pub benchmark: &'static str,
    /// Within it.
    pub ok: bool,
}

/// The alarm-system KPIs of `[from_ms, to_ms)`, per console (only `site`'s
/// when given), in console order.
pub fn kpis(
    events: &[Journaled],
    from_ms: i64,
    to_ms: i64,
    site: Option<&str>,
) -> (Vec<Line>, Vec<(String, String, u64)>) {
    let consoles: BTreeSet<&str> = events
        .iter()
        .map(|e| e.console.as_str())
        .filter(|c| site.is_none_or(|s| s == *c))
        .collect();
    let hours = (to_ms - from_ms) as f64 / 3_600_000.0;
    let buckets = ((to_ms - from_ms + TEN_MIN - 1) / TEN_MIN).max(1) as usize;
    let mut lines = Vec::new();
    let mut actors = Vec::new();
    for console in consoles {
        let mine: Vec<&Journaled> = events.iter().filter(|e| e.console == console).collect();
        let raises: Vec<&&Journaled> = mine
            .iter()
            .filter(|e| e.kind == "raised" && e.ts_ms >= from_ms && e.ts_ms < to_ms)
            .collect();
        let n = raises.len() as f64;
        let mut push = |kpi: &str, value: f64, shown: String, benchmark: &'static str, ok: bool| {
            lines.push(Line {
                console: console.to_string(),
                kpi: kpi.to_string(),
                value,
                shown,
                benchmark,
                ok,
            })
        };
        let rate = n / hours;
        push(
            "alarms per hour (average)",
            rate,
            format!("{rate:.2}"),
            "<= 6 acceptable, <= 12 manageable",
            rate <= 12.0,
        );
        let mut per_bucket = vec![0u64; buckets];
        for e in &raises {
            per_bucket[((e.ts_ms - from_ms) / TEN_MIN) as usize] += 1;
        }
        let peak = per_bucket.iter().copied().max().unwrap_or(0);
        push(
            "alarms per 10 minutes (peak)",
            peak as f64,
            peak.to_string(),
            "<= 10",
            peak <= 10,
        );
        let flooded = per_bucket.iter().filter(|c| **c > 10).count();
        let share = flooded as f64 / buckets as f64 * 100.0;
        push(
            "10-minute periods in flood (> 10 alarms)",
            share,
            format!("{share:.1} % ({flooded} of {buckets})"),
            "< 1 %",
            share < 1.0,
        );
        let mut by_id: BTreeMap<&str, u64> = BTreeMap::new();
        for e in &raises {
            *by_id.entry(e.id.as_str()).or_default() += 1;
        }
        let distinct = by_id.len();
        let mut top: Vec<(&str, u64)> = by_id.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        top.truncate(10);
        let top_n: u64 = top.iter().map(|(_, c)| c).sum();
        let top_share = if n > 0.0 {
            top_n as f64 / n * 100.0
        } else {
            0.0
        };
        // With ten distinct alarms or fewer the share is 100 % by
        // construction: shown, not judged.
        push(
            "top-10 alarms' share of all",
            top_share,
            match distinct {
                0..=10 => format!("{top_share:.1} % ({distinct} distinct)"),
                _ => format!("{top_share:.1} %"),
            },
            "< 5 % (with action plans up to 20 %)",
            distinct <= 10 || top_share < 20.0,
        );
        for (id, c) in &top {
            actors.push((console.to_string(), id.to_string(), *c));
        }
        let chattering = chattering(&raises);
        push(
            "chattering alarms (>= 3 raises in 60 s)",
            chattering as f64,
            chattering.to_string(),
            "0",
            chattering == 0,
        );
        let stale = stale(&mine, from_ms, to_ms);
        push(
            "stale alarms (active > 24 h)",
            stale as f64,
            stale.to_string(),
            "< 5",
            stale < 5,
        );
        for p in ["urgent", "high", "medium", "low"] {
            let c = raises.iter().filter(|e| e.priority == p).count() as f64;
            let pct = if n > 0.0 { c / n * 100.0 } else { 0.0 };
            let (bench, ok) = match p {
                "urgent" => ("< 1 %", pct < 1.0 || n == 0.0),
                "high" => ("~5 %", pct <= 10.0 || n == 0.0),
                "medium" => ("~15 %", pct <= 30.0 || n == 0.0),
                _ => ("~80 %", pct >= 50.0 || n == 0.0),
            };
            push(
                &format!("priority {p}"),
                pct,
                format!("{pct:.1} % ({c})"),
                bench,
                ok,
            );
        }
    }
    (lines, actors)
}

/// Alarms with at least 3 raises within some 60 s.
fn chattering(raises: &[&&Journaled]) -> usize {
    let mut times: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for e in raises {
        times.entry(e.id.as_str()).or_default().push(e.ts_ms);
    }
    times
        .values()
        .filter(|ts| ts.windows(3).any(|w| w[2] - w[0] < 60_000))
        .count()
}

/// Alarms active for more than 24 h at some time within the period.
fn stale(events: &[&Journaled], from_ms: i64, to_ms: i64) -> usize {
    let mut raised: BTreeMap<&str, i64> = BTreeMap::new();
    let mut stale: BTreeSet<&str> = BTreeSet::new();
    for e in events {
        match e.kind.as_str() {
            "raised" => {
                raised.insert(e.id.as_str(), e.ts_ms);
            }
            "cleared" => {
                if let Some(r) = raised.remove(e.id.as_str()) {
                    if e.ts_ms - r > DAY && e.ts_ms >= from_ms && r + DAY < to_ms {
                        stale.insert(e.id.as_str());
                    }
                }
            }
            _ => {}
        }
    }
    for (id, r) in raised {
        if to_ms - r > DAY {
            stale.insert(id);
        }
    }
    stale.len()
}

/// The report as a table, CSV or JSON.
pub fn render(
    lines: &[Line],
    actors: &[(String, String, u64)],
    format: crate::report::Format,
) -> anyhow::Result<String> {
    use crate::report::Format;
    Ok(match format {
        Format::Json => {
            let l: Vec<Value> = lines
                .iter()
                .map(|l| json!({"console": l.console, "kpi": l.kpi, "value": l.value, "benchmark": l.benchmark, "ok": l.ok}))
                .collect();
            let a: Vec<Value> = actors
                .iter()
                .map(|(c, id, n)| json!({"console": c, "alarm": id, "raised": n}))
                .collect();
            format!("{:#}\n", json!({"kpis": l, "bad_actors": a}))
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["console", "kpi", "value", "benchmark", "ok"])?;
            for l in lines {
                w.write_record([
                    l.console.as_str(),
                    &l.kpi,
                    &l.value.to_string(),
                    l.benchmark,
                    if l.ok { "yes" } else { "no" },
                ])?;
            }
            String::from_utf8(w.into_inner()?)?
        }
        _ => {
            let mut s = String::new();
            let mut console = "";
            for l in lines {
                if l.console != console {
                    console = &l.console;
                    s.push_str(&format!("\nconsole {console}\n"));
                    s.push_str(&format!(
                        "  {:<42} {:>20}  {:<36} {}\n",
                        "KPI", "VALUE", "BENCHMARK", "OK"
                    ));
                }
                s.push_str(&format!(
                    "  {:<42} {:>20}  {:<36} {}\n",
                    l.kpi,
                    l.shown,
                    l.benchmark,
                    if l.ok { "yes" } else { "NO" }
                ));
            }
            if !actors.is_empty() {
                s.push_str("\nbad actors (top 10 per console)\n");
                for (c, id, n) in actors {
                    s.push_str(&format!("  {c:<16} {n:>6}  {id}\n"));
                }
            }
            s
        }
    })
}
