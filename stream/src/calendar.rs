//! Site shift calendars: shifts, breaks, planned maintenance and the
//! production day of a site, in the site's own IANA time zone (chrono-tz).
//! Pure: a UTC window start in, its local classification out.
//!
//! Shifts may cross midnight; a shift instance is named by the local date on
//! which it starts. Days with a DST change last 23 or 25 hours, and so do the
//! shifts across the change: bounds are computed from local wall-clock times.
//! Calendar boundaries must fall on window boundaries (checked at load), so a
//! whole window is in one shift, one break state and one production day.

use crate::time_of_day::{format_hhmm, parse_hhmm, MINUTES_PER_DAY};
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;
use ctower_model::{key_field, key_index, ConfigIssue};
use serde::Deserialize;
use std::sync::Arc;

const DAY_MIN: u32 = MINUTES_PER_DAY as u32;

/// `[sites.NAME]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteCalendarConfig {
    /// IANA time zone, e.g. `Europe/Paris`.
    pub time_zone: String,
    /// Local time at which a production day starts, `HH:MM`.
    #[serde(default = "default_day_start")]
    pub production_day_start: String,
    /// Shifts, local `HH:MM` times; `end` ≤ `start` crosses midnight.
    #[serde(default)]
    pub shifts: Vec<ShiftConfig>,
    /// Daily breaks (planned downtime), local `HH:MM`.
    #[serde(default)]
    pub breaks: Vec<BreakConfig>,
    /// Planned maintenance (planned downtime), local `YYYY-MM-DDTHH:MM`.
    #[serde(default)]
    pub maintenance: Vec<MaintenanceConfig>,
}

fn default_day_start() -> String {
    "06:00".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
/// One `shifts` entry: a named shift, local `HH:MM` times.
pub struct ShiftConfig {
    /// Unique, not empty.
    pub name: String,
    /// Local start, `HH:MM`.
    pub start: String,
    /// Local end, `HH:MM` (`24:00`: midnight); at or before `start` it
    /// crosses midnight.
    pub end: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
/// One `breaks` entry: a daily break (planned downtime).
pub struct BreakConfig {
    /// Local start, `HH:MM`.
    pub start: String,
    /// Local end, `HH:MM` (`24:00`: midnight).
    pub end: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
/// One `maintenance` entry: planned downtime once.
pub struct MaintenanceConfig {
    /// Local start, `YYYY-MM-DDTHH:MM`.
    pub from: String,
    /// Local end, `YYYY-MM-DDTHH:MM`, after `from`.
    pub to: String,
}

/// A checked site calendar.
#[derive(Debug, Clone)]
pub struct SiteCalendar {
    tz: Tz,
    day_start_min: u32,
    /// (name, start minute, end minute); end ≤ start crosses midnight.
    shifts: Vec<(Arc<str>, u32, u32)>,
    /// Shift index for every minute of the local day.
    shift_at: Vec<Option<u16>>,
    /// Breaks: (start minute, end minute); end ≤ start crosses midnight.
    breaks: Vec<(u32, u32)>,
    /// Break index for every minute of the local day.
    break_at: Vec<Option<u16>>,
    /// Planned maintenance, UTC ms, [from, to).
    maintenance: Vec<(i64, i64)>,
}

/// What the calendar says about one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Production day (local date of its start), `YYYY-MM-DD`.
    pub production_day: NaiveDate,
    /// The shift and the local date on which that shift instance started.
    pub shift: Option<(Arc<str>, NaiveDate)>,
    /// A break or planned maintenance: planned downtime.
    pub planned: bool,
}

/// Minutes of the day covered by `[start, end)`; `end ≤ start` wraps.
fn minutes(start: u32, end: u32) -> Vec<u32> {
    if end > start {
        (start..end).collect()
    } else {
        (start..DAY_MIN).chain(0..end).collect()
    }
}

impl SiteCalendarConfig {
    /// Checks the calendar of site `key` (e.g. `sites.lyon-fill`); every
    /// problem is pushed with its key. `window_secs` must let every boundary
    /// fall on a window boundary in any time zone.
    pub fn check(
        &self,
        key: &str,
        window_secs: u64,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<SiteCalendar> {
        let before = issues.len();
        let tz: Option<Tz> = self.time_zone.parse().ok();
        if tz.is_none() {
            issues.push(ConfigIssue::new(
                key_field(key, "time_zone"),
                format!(
                    "`{}` is not an IANA time zone (e.g. Europe/Paris)",
                    self.time_zone
                ),
            ));
        }
        // Time-zone offsets are whole quarter hours: a window dividing 15 min
        // and boundaries on window multiples keep every boundary aligned.
        if window_secs == 0 || 900 % window_secs != 0 {
            issues.push(ConfigIssue::new(
                key.to_string(),
                format!("shift calendars need pipeline.window_secs to divide 900 (15 min); it is {window_secs}"),
            ));
        }
        let mut times = Times {
            window_secs,
            issues,
        };
        let day_start = times.time(
            key_field(key, "production_day_start"),
            &self.production_day_start,
            false,
        );
        let shifts = self.shift_times(key, &mut times);
        let breaks = self.break_times(key, &mut times);
        let shift_at = shift_map(key, &shifts, issues);
        let break_at = break_map(key, &breaks, issues);
        let maintenance = self.check_maintenance(key, tz, window_secs, issues);
        if issues.len() > before {
            return None;
        }
        Some(SiteCalendar {
            tz: tz?,
            day_start_min: day_start?,
            shifts: shifts
                .into_iter()
                .map(|(_, n, a, b)| (Arc::from(n), a, b))
                .collect(),
            shift_at,
            breaks: breaks.into_iter().map(|(_, s, e)| (s, e)).collect(),
            break_at,
            maintenance,
        })
    }

    /// The shifts whose times are valid: (index, name, start, end minute).
    fn shift_times<'a>(
        &'a self,
        key: &str,
        times: &mut Times<'_>,
    ) -> Vec<(usize, &'a str, u32, u32)> {
        let mut shifts = Vec::new();
        for (i, s) in self.shifts.iter().enumerate() {
            let k = key_index(key, "shifts", i);
            let a = times.time(key_field(&k, "start"), &s.start, false);
            let b = times.time(key_field(&k, "end"), &s.end, true);
            if let (Some(a), Some(b)) = (a, b) {
                shifts.push((i, s.name.as_str(), a, b % DAY_MIN));
            }
        }
        shifts
    }

    /// The breaks whose times are valid: (index, start, end minute).
    fn break_times(&self, key: &str, times: &mut Times<'_>) -> Vec<(usize, u32, u32)> {
        let mut breaks = Vec::new();
        for (i, b) in self.breaks.iter().enumerate() {
            let k = key_index(key, "breaks", i);
            let s = times.time(key_field(&k, "start"), &b.start, false);
            let e = times.time(key_field(&k, "end"), &b.end, true);
            if let (Some(s), Some(e)) = (s, e) {
                breaks.push((i, s, e % DAY_MIN));
            }
        }
        breaks
    }

    /// Planned maintenance, UTC ms [from, to).
    fn check_maintenance(
        &self,
        key: &str,
        tz: Option<Tz>,
        window_secs: u64,
        issues: &mut Vec<ConfigIssue>,
    ) -> Vec<(i64, i64)> {
        let mut maintenance = Vec::new();
        for (i, m) in self.maintenance.iter().enumerate() {
            let k = key_index(key, "maintenance", i);
            let parse = |v: &str| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M").ok();
            let (from, to) = (parse(&m.from), parse(&m.to));
            for (field, v, p) in [("from", &m.from, from), ("to", &m.to, to)] {
                match p {
                    None => issues.push(ConfigIssue::new(
                        key_field(&k, field),
                        format!("`{v}` is not a local date-time YYYY-MM-DDTHH:MM"),
                    )),
                    Some(t) if !aligned(t.hour() * 60 + t.minute(), window_secs) => {
                        issues.push(ConfigIssue::new(
                            key_field(&k, field),
                            format!("`{v}` is not on a window boundary ({window_secs} s)"),
                        ))
                    }
                    Some(_) => {}
                }
            }
            if let (Some(f), Some(t), Some(tz)) = (from, to, tz) {
                if t <= f {
                    issues.push(ConfigIssue::new(
                        k,
                        format!("`to` {} is not after `from` {}", m.to, m.from),
                    ));
                } else {
                    maintenance.push((local_to_utc(tz, f), local_to_utc(tz, t)));
                }
            }
        }
        maintenance
    }
}

/// Whether minute `m` of the day is on the window grid.
fn aligned(m: u32, window_secs: u64) -> bool {
    window_secs > 0 && (u64::from(m) * 60) % window_secs == 0
}

/// The local times of a calendar, checked on the window grid; problems
/// pushed to `issues`.
struct Times<'a> {
    window_secs: u64,
    issues: &'a mut Vec<ConfigIssue>,
}

impl Times<'_> {
    /// `v` as minutes of the day (`24:00` only with `allow_24`), on a
    /// window boundary.
    fn time(&mut self, k: String, v: &str, allow_24: bool) -> Option<u32> {
        let window_secs = self.window_secs;
        match parse_hhmm(v, allow_24).map(u32::from) {
            Some(m) if aligned(m, window_secs) => Some(m),
            Some(_) => {
                self.issues.push(ConfigIssue::new(
                    k,
                    format!("`{v}` is not on a window boundary ({window_secs} s)"),
                ));
                None
            }
            None => {
                self.issues.push(ConfigIssue::new(
                    k,
                    format!("`{v}` is not a local time HH:MM"),
                ));
                None
            }
        }
    }
}

/// The shift of every minute of the local day; each shift's name must be
/// unique and not empty, and shifts must not overlap.
fn shift_map(
    key: &str,
    shifts: &[(usize, &str, u32, u32)],
    issues: &mut Vec<ConfigIssue>,
) -> Vec<Option<u16>> {
    let mut shift_at: Vec<Option<u16>> = vec![None; DAY_MIN as usize];
    let mut names = std::collections::BTreeSet::new();
    for (n, &(i, name, a, b)) in shifts.iter().enumerate() {
        let k = key_index(key, "shifts", i);
        if name.is_empty() || !names.insert(name) {
            issues.push(ConfigIssue::new(
                key_field(&k, "name"),
                format!("`{name}` is empty or used twice"),
            ));
        }
        for m in minutes(a, b) {
            if let Some(other) = shift_at[m as usize] {
                let o = shifts[other as usize];
                issues.push(ConfigIssue::new(
                    k,
                    format!(
                        "`{name}` overlaps `{}` ({}–{}) at {}",
                        o.1,
                        format_hhmm(o.2),
                        format_hhmm(o.3),
                        format_hhmm(m)
                    ),
                ));
                break;
            }
            shift_at[m as usize] = Some(n as u16);
        }
    }
    shift_at
}

/// The break of every minute of the local day; breaks must not overlap.
fn break_map(
    key: &str,
    breaks: &[(usize, u32, u32)],
    issues: &mut Vec<ConfigIssue>,
) -> Vec<Option<u16>> {
    let mut break_at: Vec<Option<u16>> = vec![None; DAY_MIN as usize];
    for (n, &(i, s, e)) in breaks.iter().enumerate() {
        for m in minutes(s, e) {
            if break_at[m as usize].is_some() {
                issues.push(ConfigIssue::new(
                    key_index(key, "breaks", i),
                    format!("overlaps another break at {}", format_hhmm(m)),
                ));
                break;
            }
            break_at[m as usize] = Some(n as u16);
        }
    }
    break_at
}

/// The UTC instant (ms) of a local wall-clock time. An ambiguous time (the
/// repeated hour when clocks go back) is its first occurrence; a time that
/// does not exist (skipped when clocks go forward) is the first existing
/// minute after it.
fn local_to_utc(tz: Tz, t: NaiveDateTime) -> i64 {
    let mut t = t;
    for _ in 0..(24 * 60) {
        if let Some(dt) = tz.from_local_datetime(&t).earliest() {
            return dt.timestamp_millis();
        }
        t += Duration::minutes(1);
    }
    // No zone skips a whole day of wall-clock time.
    unreachable!("no local time within a day after {t}")
}

impl SiteCalendar {
    /// The site's IANA time zone.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    fn local(&self, utc_ms: i64) -> NaiveDateTime {
        let utc = chrono::DateTime::from_timestamp_millis(utc_ms)
            .unwrap_or_default()
            .naive_utc();
        self.tz.from_utc_datetime(&utc).naive_local()
    }

    /// Local weekday (1 = Monday … 7 = Sunday) and minute of the day of a
    /// UTC instant: what a time-of-use tariff is looked up by.
    pub fn weekday_minute(&self, utc_ms: i64) -> (u8, u16) {
        use chrono::Datelike;
        let local = self.local(utc_ms);
        (
            local.weekday().number_from_monday() as u8,
            (local.hour() * 60 + local.minute()) as u16,
        )
    }

    /// The calendar slot of the window starting at `window_start_ms`.
    pub fn classify(&self, window_start_ms: i64) -> Slot {
        let local = self.local(window_start_ms);
        let date = local.date();
        let m = local.hour() * 60 + local.minute();
        let yesterday = date.pred_opt().unwrap_or(date);
        let wall_day = if m >= self.day_start_min {
            date
        } else {
            yesterday
        };
        // By wall clock; but when the day starts inside the hour repeated
        // as clocks go back, the second pass of that hour belongs to the
        // new day: membership is by the day's UTC bounds (as for shifts).
        let in_day = |d: NaiveDate| {
            let (s, e) = self.day_bounds(d);
            (s..e).contains(&window_start_ms)
        };
        let production_day = if in_day(wall_day) {
            wall_day
        } else {
            [wall_day.succ_opt(), wall_day.pred_opt()]
                .into_iter()
                .flatten()
                .find(|d| in_day(*d))
                .unwrap_or(wall_day)
        };
        let shift = self.shift_at[m as usize]
            .map(|i| {
                let (name, start, _) = &self.shifts[i as usize];
                // Before its start minute: the instance began the day before.
                (name.clone(), if m >= *start { date } else { yesterday })
            })
            .and_then(|(name, started)| {
                // By wall clock; but in the hour repeated when clocks go
                // back, a shift that ended at the first pass of a time must
                // not take the second: membership is by the UTC bounds.
                let inside = |name: &str, d: NaiveDate| {
                    self.shift_bounds(name, d)
                        .is_some_and(|(s, e)| (s..e).contains(&window_start_ms))
                };
                if inside(&name, started) {
                    return Some((name, started));
                }
                self.shifts.iter().find_map(|(n, _, _)| {
                    [yesterday, date]
                        .into_iter()
                        .find(|d| inside(n, *d))
                        .map(|d| (n.clone(), d))
                })
            });
        // By wall clock too; but a break in the hour repeated when clocks
        // go back is taken once: membership is by the instance's UTC bounds.
        let in_break = self.break_at[m as usize].is_some_and(|i| {
            let (s, e) = self.breaks[i as usize];
            let started = if m >= s { date } else { yesterday };
            let ends = if e <= s {
                started.succ_opt().unwrap_or(started)
            } else {
                started
            };
            let at = |d: NaiveDate, min: u32| {
                local_to_utc(
                    self.tz,
                    d.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(min)),
                )
            };
            (at(started, s)..at(ends, e)).contains(&window_start_ms)
        });
        let planned = in_break
            || self
                .maintenance
                .iter()
                .any(|&(a, b)| (a..b).contains(&window_start_ms));
        Slot {
            production_day,
            shift,
            planned,
        }
    }

    /// UTC bounds (ms) of the production day `day`: 23 or 25 hours on DST days.
    pub fn day_bounds(&self, day: NaiveDate) -> (i64, i64) {
        let at = |d: NaiveDate| {
            local_to_utc(
                self.tz,
                d.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(self.day_start_min)),
            )
        };
        (at(day), at(day.succ_opt().unwrap_or(day)))
    }

    /// UTC bounds (ms) of the instance of shift `name` that starts on `date`.
    pub fn shift_bounds(&self, name: &str, date: NaiveDate) -> Option<(i64, i64)> {
        let (_, a, b) = self.shifts.iter().find(|(n, _, _)| &**n == name)?;
        let start = date.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(*a));
        let end_date = if b <= a { date.succ_opt()? } else { date };
        let end = end_date.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(*b));
        Some((local_to_utc(self.tz, start), local_to_utc(self.tz, end)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(tz: &str, shifts: &[(&str, &str, &str)], breaks: &[(&str, &str)]) -> SiteCalendar {
        let cfg = SiteCalendarConfig {
            time_zone: tz.into(),
            production_day_start: "06:00".into(),
            shifts: shifts
                .iter()
                .map(|(n, s, e)| ShiftConfig {
                    name: n.to_string(),
                    start: s.to_string(),
                    end: e.to_string(),
                })
                .collect(),
            breaks: breaks
                .iter()
                .map(|(s, e)| BreakConfig {
                    start: s.to_string(),
                    end: e.to_string(),
                })
                .collect(),
            maintenance: vec![],
        };
        let mut issues = vec![];
        let c = cfg.check("sites.x", 60, &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        c.expect("valid calendar")
    }

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("test time")
            .timestamp_millis()
    }

    const H: i64 = 3_600_000;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    #[test]
    fn dst_days_last_23_and_25_hours_in_paris() {
        let c = cal("Europe/Paris", &[("night", "22:00", "06:00")], &[]);
        let (a, b) = c.day_bounds(d(2026, 3, 28));
        assert_eq!(b - a, 23 * H, "spring forward in production day 28 March");
        let (a, b) = c.day_bounds(d(2026, 10, 24));
        assert_eq!(b - a, 25 * H, "fall back in production day 24 October");
        let (a, b) = c.shift_bounds("night", d(2026, 3, 28)).expect("shift");
        assert_eq!((a, b - a), (utc("2026-03-28T21:00:00Z"), 7 * H));
        let (_, len) = c
            .shift_bounds("night", d(2026, 10, 24))
            .map(|(a, b)| (a, b - a))
            .expect("shift");
        assert_eq!(len, 9 * H);
    }

    #[test]
    fn the_repeated_hour_belongs_to_the_shift_running_then() {
        // Paris, 25 October 2026: 03:00 CEST goes back to 02:00 CET.
        let c = cal(
            "Europe/Paris",
            &[("a", "22:00", "02:30"), ("b", "02:30", "10:00")],
            &[],
        );
        let (a_start, a_end) = c.shift_bounds("a", d(2026, 10, 24)).expect("a");
        assert_eq!(a_end - a_start, 4 * H + 30 * 60_000);
        // 02:10 CEST (00:10 UTC) is in a; 02:10 CET (01:10 UTC), the second
        // pass, comes after a ended at 02:30 CEST: it is b's.
        let first = c.classify(utc("2026-10-25T00:10:00Z"));
        assert_eq!(first.shift, Some(("a".into(), d(2026, 10, 24))));
        let second = c.classify(utc("2026-10-25T01:10:00Z"));
        assert_eq!(second.shift, Some(("b".into(), d(2026, 10, 25))));
        let (b_start, b_end) = c.shift_bounds("b", d(2026, 10, 25)).expect("b");
        assert_eq!((b_start, b_end - b_start), (a_end, 8 * H + 30 * 60_000));
    }

    #[test]
    fn a_day_that_starts_in_the_repeated_hour_starts_once() {
        // Paris, 25 October 2026, production days from 02:30.
        let mut c = cal("Europe/Paris", &[("all", "00:00", "24:00")], &[]);
        c.day_start_min = 150;
        for (at, day, why) in [
            (
                "2026-10-25T00:10:00Z",
                d(2026, 10, 24),
                "02:10 CEST, first pass: still the 24th",
            ),
            (
                "2026-10-25T01:10:00Z",
                d(2026, 10, 25),
                "02:10 CET, second pass: the 25th began at 02:30 CEST",
            ),
            ("2026-03-29T00:45:00Z", d(2026, 3, 28), "01:45 CET"),
            (
                "2026-03-29T01:00:00Z",
                d(2026, 3, 29),
                "03:00 CEST: 02:30 does not exist, the day starts here",
            ),
        ] {
            assert_eq!(c.classify(utc(at)).production_day, day, "{why}");
        }
        let (s, e) = c.day_bounds(d(2026, 10, 25));
        assert_eq!((s, e - s), (utc("2026-10-25T00:30:00Z"), 25 * H));
    }

    #[test]
    fn a_break_in_the_repeated_hour_is_taken_once() {
        // Paris, 25 October 2026: 02:00–03:00 local happens twice.
        let c = cal(
            "Europe/Paris",
            &[("night", "22:00", "06:00")],
            &[("02:00", "02:30"), ("23:50", "00:10")],
        );
        // First pass, 02:10 CEST = 00:10 UTC: the break.
        assert!(c.classify(utc("2026-10-25T00:10:00Z")).planned);
        // Second pass, 02:10 CET = 01:10 UTC: the break is over.
        let second = c.classify(utc("2026-10-25T01:10:00Z"));
        assert!(!second.planned);
        assert_eq!(second.shift, Some(("night".into(), d(2026, 10, 24))));
        // Any other night: once, at 02:10 local.
        assert!(c.classify(utc("2026-10-26T01:10:00Z")).planned);
        assert!(!c.classify(utc("2026-10-26T01:40:00Z")).planned);
        // A break across midnight, on both sides of it (CET, UTC+1).
        assert!(c.classify(utc("2026-10-25T22:55:00Z")).planned);
        assert!(c.classify(utc("2026-10-25T23:05:00Z")).planned);
        assert!(!c.classify(utc("2026-10-25T23:10:00Z")).planned);
        // The spring change (29 March): 01:50 CET is a break, 02:00–02:30
        // never happens, 03:00 CEST is not.
        let spring = cal(
            "Europe/Paris",
            &[("night", "22:00", "06:00")],
            &[("01:50", "02:30")],
        );
        assert!(spring.classify(utc("2026-03-29T00:50:00Z")).planned);
        assert!(!spring.classify(utc("2026-03-29T01:00:00Z")).planned);
    }

    #[test]
    fn night_shift_across_midnight_in_shanghai() {
        let c = cal(
            "Asia/Shanghai",
            &[("day", "08:00", "20:00"), ("night", "20:00", "08:00")],
            &[("12:00", "12:30")],
        );
        // 2026-03-02 17:00 UTC = 03-03 01:00 Shanghai: the night shift that
        // began on 03-02, production day 03-02 (before 06:00).
        let s = c.classify(utc("2026-03-02T17:00:00Z"));
        assert_eq!(s.shift, Some(("night".into(), d(2026, 3, 2))));
        assert_eq!(s.production_day, d(2026, 3, 2));
        assert!(!s.planned);
        // 04:30 UTC = 12:30 local: the break has just ended.
        assert!(c.classify(utc("2026-03-03T04:29:00Z")).planned);
        assert!(!c.classify(utc("2026-03-03T04:30:00Z")).planned);
        let (a, b) = c.shift_bounds("night", d(2026, 3, 2)).expect("shift");
        assert_eq!(
            (a, b),
            (utc("2026-03-02T12:00:00Z"), utc("2026-03-03T00:00:00Z"))
        );
    }

    #[test]
    fn gaps_between_shifts_are_no_shift() {
        let c = cal("Europe/Zurich", &[("early", "06:00", "14:00")], &[]);
        let s = c.classify(utc("2026-03-02T13:00:00Z")); // 14:00 local
        assert_eq!(s.shift, None);
        assert_eq!(s.production_day, d(2026, 3, 2));
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let cfg = SiteCalendarConfig {
            time_zone: "Mars/Olympus".into(),
            production_day_start: "6am".into(),
            shifts: vec![
                ShiftConfig {
                    name: "a".into(),
                    start: "06:00".into(),
                    end: "14:00".into(),
                },
                ShiftConfig {
                    name: "b".into(),
                    start: "13:00".into(),
                    end: "22:00".into(),
                },
            ],
            breaks: vec![BreakConfig {
                start: "10:00".into(),
                end: "25:00".into(),
            }],
            maintenance: vec![MaintenanceConfig {
                from: "2026-03-02T10:00".into(),
                to: "tomorrow".into(),
            }],
        };
        let mut issues = vec![];
        assert!(cfg.check("sites.x", 60, &mut issues).is_none());
        let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "sites.x.time_zone",
                "sites.x.production_day_start",
                "sites.x.breaks[0].end",
                "sites.x.shifts[1]",
                "sites.x.maintenance[0].to",
            ],
            "{issues:?}"
        );
        assert!(issues[3].message.contains("overlaps `a`"), "{issues:?}");
        let mut issues = vec![];
        let mut ok = cfg.clone();
        ok.time_zone = "UTC".into();
        ok.production_day_start = "06:00".into();
        ok.shifts.truncate(1);
        ok.breaks.clear();
        ok.maintenance.clear();
        assert!(ok.check("sites.x", 7_200, &mut issues).is_none());
        assert_eq!(issues.len(), 1, "{issues:?}");
    }
}
