//! Time helpers. All times in ctower are milliseconds since the Unix epoch, UTC.

use chrono::{DateTime, SecondsFormat, Utc};

/// RFC 3339 with milliseconds and a `Z`, e.g. `2026-03-02T05:00:00.000Z`.
pub fn rfc3339_ms(ts_ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ts_ms) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("invalid-time({ts_ms})"),
    }
}

/// Parses RFC 3339 into milliseconds since the epoch.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Start of the tumbling window of length `window_ms` that holds `ts_ms`.
pub fn window_start(ts_ms: i64, window_ms: i64) -> i64 {
    ts_ms.div_euclid(window_ms) * window_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = 1_772_427_600_123;
        assert_eq!(parse_rfc3339_ms(&rfc3339_ms(t)), Some(t));
        assert_eq!(window_start(-1, 60_000), -60_000);
        assert_eq!(window_start(119_999, 60_000), 60_000);
    }
}
