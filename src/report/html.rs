//! A report as one self-contained HTML file (well-formed XHTML: no
//! scripts, no external files) with SVG charts drawn here: kWh per good
//! unit against the baseline's and the CUSUM (energy), recovery (water),
//! OEE with its factors (oee), then the whole table. Each point and bar
//! carries its value (`data-value`) and a tooltip, so the chart can be
//! checked against the table.

use super::render::{period, show};
use super::{Kind, Report, Unit};
use std::fmt::Write as _;

/// Escapes text for XML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// How a series is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Line,
    Bar,
}

struct Series<'a> {
    key: &'a str,
    name: &'a str,
    colour: &'a str,
    mark: Mark,
    values: Vec<Option<f64>>,
}

const W: f64 = 720.0;
const H: f64 = 260.0;
const LEFT: f64 = 64.0;
const BOTTOM: f64 = 40.0;
const TOP: f64 = 30.0;

/// One chart: the series over the rows' labels; unknown values are gaps.
fn chart(out: &mut String, title: &str, labels: &[String], series: &[Series], unit: Unit) {
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .filter(|v| v.is_finite())
        .collect();
    let _ = write!(
        out,
        r#"<figure><figcaption>{}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img">"#,
        esc(title)
    );
    if all.is_empty() || labels.is_empty() {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle" class="none">no data</text></svg></figure>"#,
            W / 2.0,
            H / 2.0
        );
        return;
    }
    let lo = all.iter().copied().fold(0.0_f64, f64::min);
    let hi = all.iter().copied().fold(f64::MIN, f64::max);
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, hi + 1.0)
    };
    let plot_w = W - LEFT - 10.0;
    let plot_h = H - TOP - BOTTOM;
    let n = labels.len();
    let step = plot_w / n as f64;
    let x = |i: usize| LEFT + step * (i as f64 + 0.5);
    let y = |v: f64| TOP + plot_h * (1.0 - (v - lo) / (hi - lo));
    // Axes, the zero line and five ticks.
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="#444"/><line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#444"/>"##,
        TOP + plot_h,
        y(0.0_f64.clamp(lo, hi)),
        W - 10.0,
        y(0.0_f64.clamp(lo, hi))
    );
    for t in 0..=4 {
        let v = lo + (hi - lo) * f64::from(t) / 4.0;
        let _ = write!(
            out,
            r##"<text x="{}" y="{:.1}" text-anchor="end" font-size="11">{}</text><line x1="{LEFT}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#ddd"/>"##,
            LEFT - 4.0,
            y(v) + 4.0,
            esc(&show(Some(v), unit)),
            y(v),
            W - 10.0,
            y(v)
        );
    }
    let every = n.div_ceil(8).max(1);
    for (i, l) in labels.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" font-size="10">{}</text>"#,
            x(i),
            H - BOTTOM + 14.0,
            esc(l)
        );
    }
    let bars: Vec<&Series> = series.iter().filter(|s| s.mark == Mark::Bar).collect();
    let bar_w = step * 0.8 / bars.len().max(1) as f64;
    for (b, s) in bars.iter().enumerate() {
        for (i, v) in s.values.iter().enumerate() {
            let Some(v) = v.filter(|v| v.is_finite()) else {
                continue;
            };
            let (y0, y1) = (y(0.0_f64.clamp(lo, hi)), y(v));
            let _ = write!(
                out,
                r#"<rect class="bar" data-series="{}" data-label="{}" data-value="{v}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: {}</title></rect>"#,
                s.key,
                esc(&labels[i]),
                x(i) - step * 0.4 + bar_w * b as f64,
                y0.min(y1),
                bar_w,
                (y0 - y1).abs(),
                s.colour,
                esc(&labels[i]),
                esc(s.name),
                esc(&show(Some(v), unit))
            );
        }
    }
    for s in series.iter().filter(|s| s.mark == Mark::Line) {
        // Segments between known neighbours: a gap stays a gap.
        let mut d = String::new();
        let mut pen_down = false;
        for (i, v) in s.values.iter().enumerate() {
            match v.filter(|v| v.is_finite()) {
                Some(v) => {
                    let _ = write!(
                        d,
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        x(i),
                        y(v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ = write!(
            out,
            r#"<path d="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            d.trim_end(),
            s.colour
        );
        for (i, v) in s.values.iter().enumerate() {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                let _ = write!(
                    out,
                    r#"<circle class="point" data-series="{}" data-label="{}" data-value="{v}" cx="{:.1}" cy="{:.1}" r="3" fill="{}"><title>{} {}: {}</title></circle>"#,
                    s.key,
                    esc(&labels[i]),
                    x(i),
                    y(v),
                    s.colour,
                    esc(&labels[i]),
                    esc(s.name),
                    esc(&show(Some(v), unit))
                );
            }
        }
    }
    // The legend.
    for (k, s) in series.iter().enumerate() {
        let lx = LEFT + 10.0 + 180.0 * k as f64;
        let _ = write!(
            out,
            r#"<rect x="{lx}" y="8" width="12" height="12" fill="{}"/><text x="{}" y="18" font-size="12">{}</text>"#,
            s.colour,
            lx + 16.0,
            esc(s.name)
        );
    }
    out.push_str("</svg></figure>");
}

/// The values of column `key` over the rows.
fn values(r: &Report, key: &str) -> Vec<Option<f64>> {
    let i = r.columns().iter().position(|c| c.key == key);
    r.rows
        .iter()
        .map(|row| i.and_then(|i| row.values[i]))
        .collect()
}

// Okabe–Ito colours: told apart with any colour vision.
const BLUE: &str = "#0072B2";
const ORANGE: &str = "#E69F00";
const GREEN: &str = "#009E73";
const VERMILION: &str = "#D55E00";
const PURPLE: &str = "#CC79A7";

/// The whole HTML document.
pub fn html(r: &Report) -> String {
    let labels: Vec<String> = r.rows.iter().map(|row| row.label.clone()).collect();
    let title = format!(
        "ctower {} report: {}, by {}",
        r.spec.kind.as_str(),
        r.spec.site,
        r.spec.by.as_str()
    );
    let mut out = String::with_capacity(64 << 10);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/><title>{}</title><style>\
         body{{font-family:sans-serif;margin:24px;color:#222}}figure{{margin:16px 0}}figcaption{{font-weight:bold;margin-bottom:4px}}\
         table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}tr.total{{font-weight:bold;background:#f2f2f2}}.none{{fill:#888}}\
         </style></head><body><h1>{}</h1><p>{}. Unknown figures are shown as — and left out of the charts, never as 0.</p>",
        esc(&title),
        esc(&title),
        esc(&period(r))
    );
    let s = |key, name, colour, mark| Series {
        key,
        name,
        colour,
        mark,
        values: values(r, key),
    };
    match r.spec.kind {
        Kind::Energy => {
            chart(
                &mut out,
                "kWh per good unit, and the baseline's kWh per unit",
                &labels,
                &[
                    s("kwh_per_good_unit", "kWh per good unit", BLUE, Mark::Line),
                    s(
                        "baseline_kwh_per_unit",
                        "baseline kWh per unit",
                        ORANGE,
                        Mark::Line,
                    ),
                ],
                Unit::Decimals(4),
            );
            chart(
                &mut out,
                "CUSUM of actual − expected energy (kWh; falling: savings)",
                &labels,
                &[s("baseline_cusum_kwh", "CUSUM kWh", VERMILION, Mark::Line)],
                Unit::Decimals(1),
            );
            chart(
                &mut out,
                "Energy (kWh)",
                &labels,
                &[
                    s("energy_kwh", "actual kWh", BLUE, Mark::Bar),
                    s("baseline_expected_kwh", "expected kWh", ORANGE, Mark::Bar),
                ],
                Unit::Decimals(1),
            );
        }
        Kind::Water => {
            chart(
                &mut out,
                "Water recovery (permeate / feed)",
                &labels,
                &[s("water_recovery", "recovery", GREEN, Mark::Bar)],
                Unit::Ratio,
            );
            chart(
                &mut out,
                "Water per good unit (m³)",
                &labels,
                &[s(
                    "water_m3_per_good_unit",
                    "m³ per good unit",
                    BLUE,
                    Mark::Line,
                )],
                Unit::Decimals(5),
            );
        }
        Kind::Oee => {
            chart(
                &mut out,
                &format!("OEE per {}", r.spec.by.as_str()),
                &labels,
                &[s("oee", "OEE", BLUE, Mark::Bar)],
                Unit::Ratio,
            );
            chart(
                &mut out,
                "Availability, performance, quality",
                &labels,
                &[
                    s("availability", "availability", GREEN, Mark::Line),
                    s("performance", "performance", ORANGE, Mark::Line),
                    s("quality", "quality", PURPLE, Mark::Line),
                ],
                Unit::Ratio,
            );
        }
        // Not a KPI-table report (its own renderer).
        Kind::Alarms => {}
    }
    // The table, every column.
    out.push_str("<table><thead><tr>");
    let _ = write!(out, "<th>{}</th>", esc(r.spec.by.as_str()));
    for c in r.columns() {
        let _ = write!(out, "<th title=\"{}\">{}</th>", esc(c.key), esc(c.heading));
    }
    out.push_str("</tr></thead><tbody>");
    for (row, class) in r
        .rows
        .iter()
        .map(|row| (row, ""))
        .chain(r.total.iter().map(|row| (row, " class=\"total\"")))
    {
        let _ = write!(
            out,
            "<tr{class}><td>{}{}</td>",
            esc(&row.label),
            if row.complete { "" } else { "*" }
        );
        for (c, v) in r.columns().iter().zip(&row.values) {
            let _ = write!(
                out,
                "<td data-key=\"{}\" data-value=\"{}\">{}</td>",
                c.key,
                v.map(|v| v.to_string()).unwrap_or_default(),
                esc(&show(*v, c.unit))
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    if r.rows.iter().any(|row| !row.complete) {
        out.push_str("<p>* cut short: the input ended before the period did.</p>");
    }
    out.push_str("</body></html>\n");
    out
}
