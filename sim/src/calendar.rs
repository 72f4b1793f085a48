//! Site time zones and shift plans (local wall-clock minutes of the day).
//!
//! The simulator needs only two zones: central Europe (CET/CEST with the EU
//! rule: summer time from the last Sunday of March to the last Sunday of
//! October, switching at 01:00 UTC) and China (UTC+8, no summer time).

pub(crate) const MINUTE: i64 = 60_000;
pub(crate) const HOUR: i64 = 60 * MINUTE;
pub(crate) const DAY: i64 = 24 * HOUR;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tz {
    /// CET/CEST (Lyon, Basel).
    CentralEurope,
    /// CST, UTC+8 (Shanghai).
    China,
}

impl Tz {
    /// Offset of local time from UTC at the UTC instant `t_ms`.
    pub(crate) fn offset_ms(self, t_ms: i64) -> i64 {
        match self {
            Tz::China => 8 * HOUR,
            Tz::CentralEurope => {
                let (y, _, _) = civil_from_days(t_ms.div_euclid(DAY));
                let start = last_sunday(y, 3) * DAY + HOUR;
                let end = last_sunday(y, 10) * DAY + HOUR;
                if (start..end).contains(&t_ms) {
                    2 * HOUR
                } else {
                    HOUR
                }
            }
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Day number of the last Sunday of month `m` of year `y`.
fn last_sunday(y: i64, m: i64) -> i64 {
    let last = if m == 12 {
        days_from_civil(y + 1, 1, 1) - 1
    } else {
        days_from_civil(y, m + 1, 1) - 1
    };
    // 1970-01-01 was a Thursday; with Sunday = 0, weekday = (days + 4) mod 7.
    last - (last + 4).rem_euclid(7)
}

/// What a line's shift plan says about a minute of the local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DayKind {
    /// In a shift, producing.
    Run,
    /// In a shift, planned break.
    Break,
    /// Outside every shift.
    Off,
}

/// A shift plan: `(from, to, kind)` in local minutes of the day, `from` inclusive.
/// Minutes not covered are [`DayKind::Off`].
pub(crate) type DayPlan = &'static [(u16, u16, DayKind)];

pub(crate) fn kind_at(plan: DayPlan, tz: Tz, t_ms: i64) -> DayKind {
    let local = t_ms + tz.offset_ms(t_ms);
    let minute = (local.rem_euclid(DAY) / MINUTE) as u16;
    plan.iter()
        .find(|(a, b, _)| (*a..*b).contains(&minute))
        .map_or(DayKind::Off, |p| p.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for z in [-1000, 0, 20_514, 47_117, 100_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(2099, 1, 1) * DAY, 4_070_908_800_000);
        assert_eq!(
            days_from_civil(2026, 3, 2) * DAY + 5 * HOUR,
            1_772_427_600_000
        );
    }

    #[test]
    fn eu_summer_time_2026() {
        // Summer time 2026: 29 March 01:00 UTC to 25 October 01:00 UTC.
        let mar29 = days_from_civil(2026, 3, 29) * DAY;
        let oct25 = days_from_civil(2026, 10, 25) * DAY;
        let tz = Tz::CentralEurope;
        assert_eq!(tz.offset_ms(mar29 + HOUR - 1), HOUR);
        assert_eq!(tz.offset_ms(mar29 + HOUR), 2 * HOUR);
        assert_eq!(tz.offset_ms(oct25 + HOUR - 1), 2 * HOUR);
        assert_eq!(tz.offset_ms(oct25 + HOUR), HOUR);
        assert_eq!(Tz::China.offset_ms(mar29), 8 * HOUR);
    }

    #[test]
    fn plan_lookup_uses_local_time() {
        const PLAN: DayPlan = &[
            (360, 570, DayKind::Run),
            (570, 600, DayKind::Break),
            (600, 1320, DayKind::Run),
        ];
        let t = 1_772_427_600_000; // 05:00 UTC = 06:00 Lyon = 13:00 Shanghai
        assert_eq!(kind_at(PLAN, Tz::CentralEurope, t), DayKind::Run);
        assert_eq!(kind_at(PLAN, Tz::CentralEurope, t - 1), DayKind::Off);
        assert_eq!(
            kind_at(PLAN, Tz::CentralEurope, t + 210 * MINUTE),
            DayKind::Break
        );
        assert_eq!(kind_at(PLAN, Tz::China, t), DayKind::Run);
        assert_eq!(kind_at(PLAN, Tz::China, t + 9 * HOUR), DayKind::Off);
    }
}
