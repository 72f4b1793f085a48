//! The one parser of local times of day (`HH:MM`), shared by the shift
//! calendars and the tariffs, so that a time means the same in both.

/// Minutes in a day.
pub const MINUTES_PER_DAY: u16 = 1440;

/// Parses a local time of day, `HH:MM` with exactly two ASCII digits each
/// (`07:05`, never `7:5`, `+1:00` or `07:00 `), into minutes since midnight.
/// `24:00` (the end of the day, 1440) is accepted only with `allow_24`: it
/// can end a span, never start one.
pub fn parse_hhmm(s: &str, allow_24: bool) -> Option<u16> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' || ![0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit()) {
        return None;
    }
    let d = |i: usize| u16::from(b[i] - b'0');
    let (h, m) = (d(0) * 10 + d(1), d(3) * 10 + d(4));
    match (h, m) {
        (24, 0) if allow_24 => Some(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// Minutes since midnight as `HH:MM` (`1440` → `24:00`).
pub fn format_hhmm(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hhmm_parsing() {
        assert_eq!(parse_hhmm("00:00", false), Some(0));
        assert_eq!(parse_hhmm("07:05", false), Some(425));
        assert_eq!(parse_hhmm("23:59", false), Some(1439));
        assert_eq!(parse_hhmm("24:00", true), Some(1440));
        assert_eq!(parse_hhmm("24:00", false), None);
        for bad in [
            "24:01", "7:00", "7:5", "07:5", "07:60", "0700", "07:00 ", " 07:00", "1:00 ", "+1:00",
            "+1", "07:+5", "-1:00", "ab:cd", "", "07-00", "07:00:00", "０7:00",
        ] {
            assert_eq!(parse_hhmm(bad, true), None, "{bad:?}");
            assert_eq!(parse_hhmm(bad, false), None, "{bad:?}");
        }
        assert_eq!(format_hhmm(425), "07:05");
        assert_eq!(format_hhmm(1440), "24:00");
    }

    /// The values of `start`, `end` and `production_day_start` in a TOML
    /// text: `key = "value"` pairs, inline tables included.
    fn times_in(toml: &str) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for line in toml.lines() {
            let line = line.split('#').next().unwrap_or("");
            for key in ["production_day_start", "start", "end"] {
                let mut rest = line;
                while let Some(i) = rest.find(key) {
                    let before = rest[..i].chars().last();
                    let after = rest[i + key.len()..].trim_start();
                    rest = &rest[i + key.len()..];
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        continue;
                    }
                    let Some(v) = after
                        .strip_prefix('=')
                        .map(str::trim_start)
                        .and_then(|a| a.strip_prefix('"'))
                    else {
                        continue;
                    };
                    if let Some((value, _)) = v.split_once('"') {
                        out.push((key, value.to_string()));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_time_in_the_shipped_configurations_parses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("configs/") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("config");
            for (key, value) in times_in(&text) {
                assert!(
                    parse_hhmm(&value, key == "end").is_some(),
                    "{}: {key} = {value:?}",
                    path.display()
                );
                seen += 1;
            }
        }
        // The scan found the calendars and the tariffs.
        assert!(seen >= 20, "only {seen} times found in {dir}");
    }
}
