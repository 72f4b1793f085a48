//! Formatting shared by the screen parts: numbers, percentages, durations,
//! times and the OEE colour bands. Every value is also readable as text,
//! so no colour is the only carrier of a meaning.

use chrono::{DateTime, Utc};
use ctower_model::KpiRecord;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Cell;

/// Shown for a value that is unknown.
pub(super) const DASH: &str = "—";

/// A right-aligned table cell.
pub(super) fn right(s: impl Into<String>) -> Cell<'static> {
    Cell::from(Line::from(s.into()).right_aligned())
}

/// OEE colour bands: green from 85 %, yellow from 60 %, red below.
pub(super) fn oee_style(oee: f64) -> Style {
    if oee >= 0.85 {
        Style::new().fg(Color::Green)
    } else if oee >= 0.6 {
        Style::new().fg(Color::Yellow)
    } else {
        Style::new().fg(Color::Red)
    }
}

/// Mean power over the window from the energy meters, kW.
pub(super) fn avg_kw(k: &KpiRecord) -> Option<f64> {
    let window_ms = k.window_end_ms - k.window_start_ms;
    // Unknown where no meter measured the window (a silent meter is not 0 kW).
    let kwh = k
        .sums
        .energy_kwh
        .filter(|_| k.sums.energy_measured_ms > 0)?;
    (window_ms > 0).then(|| kwh * 3_600_000.0 / window_ms as f64)
}

pub(super) fn fmt_pct(v: Option<f64>) -> String {
    v.map_or(DASH.to_string(), |v| format!("{:.1}%", v * 100.0))
}

pub(super) fn fmt_pct0(v: Option<f64>) -> String {
    v.map_or(DASH.to_string(), |v| format!("{:.0}%", v * 100.0))
}

pub(super) fn fmt_pct_bare(v: Option<f64>) -> String {
    v.map_or(DASH.to_string(), |v| format!("{:.1}", v * 100.0))
}

/// A count that may be unknown (no counter data): a dash, never 0.
pub(super) fn fmt_count(v: Option<u64>) -> String {
    v.map_or(DASH.to_string(), |v| v.to_string())
}

/// Three significant digits or so, never scientific notation.
pub(super) fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        DASH.to_string()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a == 0.0 {
        "0".to_string()
    } else {
        // Three significant digits, at most four decimals: 0.523, 0.0523, 0.0052.
        let decimals = (2 - a.log10().floor() as i32).clamp(3, 4) as usize;
        format!("{v:.decimals$}")
    }
}

pub(super) fn fmt_opt(v: Option<f64>) -> String {
    v.map_or(DASH.to_string(), fmt_num)
}

pub(super) fn fmt_minutes(ms: i64) -> String {
    let min = ms as f64 / 60_000.0;
    if min >= 100.0 {
        format!("{min:.0}")
    } else {
        format!("{min:.1}")
    }
}

pub(super) fn fmt_rate(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

pub(super) fn fmt_duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{:.1} s", ms as f64 / 1_000.0)
    } else if ms < 7_200_000 {
        format!("{:.1} min", ms as f64 / 60_000.0)
    } else {
        format!("{:.1} h", ms as f64 / 3_600_000.0)
    }
}

/// A configured span, as short as exact allows: `90 s`, `2.5 min`, `2 h`
/// (a tenth at most, no trailing `.0`).
pub(super) fn fmt_span(ms: i64) -> String {
    let ms = ms.max(0);
    let (v, unit) = if ms < 120_000 {
        (ms as f64 / 1_000.0, "s")
    } else if ms < 7_200_000 {
        (ms as f64 / 60_000.0, "min")
    } else {
        (ms as f64 / 3_600_000.0, "h")
    };
    let v = format!("{v:.1}");
    format!("{} {unit}", v.strip_suffix(".0").unwrap_or(&v))
}

/// Wall-time age, coarse: `3 s ago`, `4 min ago`, `2 h ago`.
pub(super) fn fmt_age(ms: i64) -> String {
    let s = ms.max(0) / 1_000;
    if s < 120 {
        format!("{s} s ago")
    } else if s < 7_200 {
        format!("{} min ago", s / 60)
    } else {
        format!("{} h ago", s / 3_600)
    }
}

/// Metrics that are ratios are shown as percentages.
pub(super) fn fmt_metric(metric: &str, v: f64) -> String {
    match metric {
        "availability" | "performance" | "quality" | "oee" | "water_recovery" | "data_coverage" => {
            fmt_pct(Some(v))
        }
        _ => fmt_num(v),
    }
}

pub(super) fn fmt_utc(ms: i64, fmt: &str) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(|| DASH.to_string(), |t| t.format(fmt).to_string())
}

/// Cuts a line to `width` characters so a narrow tile never wraps.
pub(super) fn truncate_line(line: Line<'static>, width: usize) -> Line<'static> {
    if line.width() <= width {
        return line;
    }
    let mut left = width;
    let mut spans = Vec::new();
    for span in line.spans {
        if left == 0 {
            break;
        }
        let n = span.content.chars().count();
        if n <= left {
            left -= n;
            spans.push(span);
        } else {
            let cut: String = span.content.chars().take(left).collect();
            spans.push(Span::styled(cut, span.style));
            left = 0;
        }
    }
    Line::from(spans).style(line.style)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(fmt_pct(Some(0.698_074)), "69.8%");
        assert_eq!(fmt_pct(None), "—");
        assert_eq!(fmt_num(412.34), "412");
        assert_eq!(fmt_num(41.234), "41.2");
        assert_eq!(fmt_num(0.523), "0.523");
        assert_eq!(fmt_num(0.0523), "0.0523");
        assert_eq!(fmt_num(0.00691), "0.0069");
        assert_eq!(fmt_num(f64::NAN), "—");
        assert_eq!(fmt_duration_ms(4_200), "4.2 s");
        assert_eq!(fmt_duration_ms(850), "850 ms");
        assert_eq!(fmt_span(60_000), "60 s");
        assert_eq!(fmt_span(1_500), "1.5 s");
        assert_eq!(fmt_span(150_000), "2.5 min");
        assert_eq!(fmt_span(7_200_000), "2 h");
        assert_eq!(fmt_age(3_400), "3 s ago");
        assert_eq!(fmt_age(300_000), "5 min ago");
        assert_eq!(fmt_metric("oee", 0.55), "55.0%");
        assert_eq!(fmt_metric("temp_c", 8.25), "8.25");
    }

    #[test]
    fn oee_bands() {
        assert_eq!(oee_style(0.85).fg, Some(Color::Green));
        assert_eq!(oee_style(0.849).fg, Some(Color::Yellow));
        assert_eq!(oee_style(0.6).fg, Some(Color::Yellow));
        assert_eq!(oee_style(0.59).fg, Some(Color::Red));
    }
}
