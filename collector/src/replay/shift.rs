//! Time shifts of a replay (pure): the loop period, the shift to "now"
//! and the rewrite of a payload's `ts` (see the [module docs](super)).

use serde_json::Value;

const MINUTE_MS: i64 = 60_000;

/// The loop period: (last − first) rounded up to a whole minute, plus one minute.
pub fn loop_span_ms(first_t_ms: i64, last_t_ms: i64) -> i64 {
    let d = last_t_ms.saturating_sub(first_t_ms).max(0);
    let minutes = d / MINUTE_MS + i64::from(d % MINUTE_MS != 0);
    minutes.saturating_add(1).saturating_mul(MINUTE_MS)
}

/// The shift that maps `first_t_ms` to `now_ms`, rounded down to a whole minute.
pub fn shift_to_now_ms(first_t_ms: i64, now_ms: i64) -> i64 {
    now_ms
        .saturating_sub(first_t_ms)
        .div_euclid(MINUTE_MS)
        .saturating_mul(MINUTE_MS)
}

/// Shifts the `ts` field of a JSON object payload by `shift_ms`.
///
/// `ts` as integer (or decimal) milliseconds gets `shift_ms` added; as an
/// RFC 3339 string it is moved by `shift_ms` keeping its offset and
/// fractional precision. Returns `None` (publish the payload unchanged) when
/// the shift is 0, the payload is not a JSON object, has no `ts`, or its
/// `ts` is neither. A rewritten object is re-serialised compactly with its
/// keys in sorted order; values are unchanged.
pub fn shift_payload_ts(payload: &[u8], shift_ms: i64) -> Option<Vec<u8>> {
    if shift_ms == 0 {
        return None;
    }
    let mut obj: serde_json::Map<String, Value> = serde_json::from_slice(payload).ok()?;
    let ts = obj.get_mut("ts")?;
    let shifted = match ts {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i.checked_add(shift_ms)?)
            } else {
                let f = n.as_f64()? + shift_ms as f64;
                Value::Number(serde_json::Number::from_f64(f)?)
            }
        }
        Value::String(s) => Value::String(shift_rfc3339(s, shift_ms)?),
        _ => return None,
    };
    *ts = shifted;
    serde_json::to_vec(&obj).ok()
}

fn shift_rfc3339(s: &str, shift_ms: i64) -> Option<String> {
    use chrono::SecondsFormat;
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    let t = t.checked_add_signed(chrono::TimeDelta::try_milliseconds(shift_ms)?)?;
    // The date part has no '.', so the first one starts the fraction.
    let digits = s
        .find('.')
        .map(|i| s[i + 1..].bytes().take_while(u8::is_ascii_digit).count())
        .unwrap_or(0);
    let format = match digits {
        0 => SecondsFormat::Secs,
        1..=3 => SecondsFormat::Millis,
        4..=6 => SecondsFormat::Micros,
        _ => SecondsFormat::Nanos,
    };
    Some(t.to_rfc3339_opts(format, s.ends_with(['Z', 'z'])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shifted(payload: &str, shift: i64) -> Option<String> {
        shift_payload_ts(payload.as_bytes(), shift).map(|p| String::from_utf8(p).unwrap())
    }

    #[test]
    fn integer_ts_is_shifted() {
        assert_eq!(
            shifted(r#"{"ts":1772427600000,"value":42.5}"#, 180_000).as_deref(),
            Some(r#"{"ts":1772427780000,"value":42.5}"#)
        );
        // Other fields keep their values (keys come back sorted).
        assert_eq!(
            shifted(r#"{"value":"stopped","ts":1000,"reason":"jam"}"#, 60_000).as_deref(),
            Some(r#"{"reason":"jam","ts":61000,"value":"stopped"}"#)
        );
    }

    #[test]
    fn rfc3339_ts_is_shifted_keeping_offset_and_precision() {
        assert_eq!(
            shifted(r#"{"ts":"2026-03-02T05:00:00.000Z","value":1}"#, 3_600_000).as_deref(),
            Some(r#"{"ts":"2026-03-02T06:00:00.000Z","value":1}"#)
        );
        assert_eq!(
            shifted(r#"{"ts":"2026-03-02T23:59:30+01:00","value":1}"#, 60_000).as_deref(),
            Some(r#"{"ts":"2026-03-03T00:00:30+01:00","value":1}"#)
        );
        assert_eq!(
            shifted(r#"{"ts":"2026-03-02T05:00:00.123456Z","value":1}"#, 1).as_deref(),
            Some(r#"{"ts":"2026-03-02T05:00:00.124456Z","value":1}"#)
        );
    }

    #[test]
    fn other_payloads_are_left_alone() {
        for p in [
            r#"{"value":1}"#,
            r#"{"ts":"yesterday","value":1}"#,
            r#"{"ts":null}"#,
            r#"[1,2]"#,
            r#"{"ts":1,"value":"#,
            "\u{0}\u{1}binary",
            "",
        ] {
            assert_eq!(shifted(p, 60_000), None, "{p}");
        }
        assert_eq!(shifted(r#"{"ts":1}"#, 0), None);
        assert_eq!(shift_payload_ts(&[0xff, 0x00, 0x80], 60_000), None);
    }

    #[test]
    fn span_rounds_up_to_the_minute_plus_one() {
        assert_eq!(loop_span_ms(0, 0), 60_000);
        assert_eq!(loop_span_ms(0, 1), 120_000);
        assert_eq!(loop_span_ms(0, 60_000), 120_000);
        assert_eq!(loop_span_ms(1_000, 3_601_000), 3_660_000);
    }

    #[test]
    fn shift_to_now_is_whole_minutes_not_in_the_future() {
        let t0 = 1_772_427_600_000 + 12_345;
        let now = t0 + 5 * 86_400_000 + 59_999;
        let s = shift_to_now_ms(t0, now);
        assert_eq!(s % 60_000, 0);
        assert!(t0 + s <= now && now - (t0 + s) < 60_000);
        // A recording from the future shifts backwards, still whole minutes.
        assert_eq!(shift_to_now_ms(now, t0) % 60_000, 0);
        assert!(t0 - (now + shift_to_now_ms(now, t0)) < 60_000);
    }
}
