//! Numbers, percentages, durations and times as the screen writes them:
//! an unknown value is a dash, never 0.

use chrono::{DateTime, Utc};

/// Shown for a value that is unknown.
pub(crate) const DASH: &str = "—";

pub(crate) fn pct(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or(DASH.to_string(), |v| format!("{:.1}%", v * 100.0))
}

pub(crate) fn pct0(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or(DASH.to_string(), |v| format!("{:.0}%", v * 100.0))
}

/// About three significant digits, never scientific notation.
pub(crate) fn num(v: Option<f64>) -> String {
    let Some(v) = v.filter(|v| v.is_finite()) else {
        return DASH.to_string();
    };
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub(crate) fn count(v: Option<u64>) -> String {
    v.map_or(DASH.to_string(), |v| v.to_string())
}

/// A duration: `42s`, `5m12s`, `3h05m`, `2d04h`.
pub fn fmt_age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
    }
}

/// Minutes of a duration, for losses and reasons.
pub(crate) fn minutes(ms: Option<f64>) -> String {
    ms.filter(|v| v.is_finite())
        .map_or(DASH.to_string(), |v| format!("{:.0} min", v / 60_000.0))
}

/// `HH:MM` UTC of an epoch-ms time.
pub(crate) fn utc_hm(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(|| DASH.to_string(), |t| t.format("%H:%M").to_string())
}

/// `MM-DD HH:MM:SS` UTC.
pub(crate) fn utc_full(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || DASH.to_string(),
        |t| t.format("%m-%d %H:%M:%S").to_string(),
    )
}

/// Sparkline values of a series: unknown points are gaps (0 after
/// scaling would read as a real zero, so they are left out of the
/// scale and drawn empty).
pub(crate) fn spark(values: &[Option<f64>], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &values[values.len().saturating_sub(width)..];
    let known: Vec<f64> = tail
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let (lo, hi) = known
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    tail.iter()
        .map(|v| match v {
            Some(v) if v.is_finite() => {
                let f = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                BARS[((f * 7.0).round() as usize).min(7)]
            }
            _ => ' ',
        })
        .collect()
}

/// Cuts `s` to `w` characters, with an ellipsis when cut.
pub(crate) fn fit(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_is_a_dash_and_gaps_stay_gaps() {
        assert_eq!(pct(None), DASH);
        assert_eq!(pct(Some(f64::NAN)), DASH);
        assert_eq!(pct(Some(0.0)), "0.0%");
        assert_eq!(num(None), DASH);
        assert_eq!(spark(&[Some(1.0), None, Some(3.0)], 10), "▁ █");
        assert_eq!(fmt_age(65_000), "1m05s");
        assert_eq!(fmt_age(3_700_000), "1h01m");
        assert_eq!(fit("abcdef", 4), "abc…");
    }
}
