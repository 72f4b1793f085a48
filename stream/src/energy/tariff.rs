//! A time-of-use electricity tariff, looked up by *local* weekday and
//! minute of the day (the caller converts event time to the site's wall
//! clock, so this needs no time-zone data). Built by
//! [`TariffConfig::check`](super::TariffConfig::check).

use super::Day;
use crate::time_of_day::{format_hhmm, MINUTES_PER_DAY};

const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY as u32;

/// A validated time-of-use tariff.
#[derive(Debug, Clone, PartialEq)]
pub struct Tariff {
    currency: String,
    default_price_per_kwh: f64,
    /// (label, price per kWh) of each period, in configuration order.
    periods: Vec<(String, f64)>,
    /// Disjoint spans of the week, sorted by start.
    spans: Vec<Span>,
}

/// `[start, end)` in minutes of the week (Monday 00:00 = 0), within one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: u32,
    pub(super) end: u32,
    pub(super) period: usize,
}

/// The spans of a period that starts at `start` on each of `days`.
pub(super) fn spans_of(days: &[Day], start: u16, end: u16, period: usize) -> Vec<Span> {
    let mut out = Vec::new();
    for d in days {
        let day0 = d.index() as u32 * u32::from(MINUTES_PER_DAY);
        let (s, e) = (u32::from(start), u32::from(end));
        if e > s {
            out.push(Span {
                start: day0 + s,
                end: day0 + e,
                period,
            });
        } else {
            // Crosses midnight: the rest of this day, then the next morning
            // (Sunday night continues into Monday).
            out.push(Span {
                start: day0 + s,
                end: day0 + u32::from(MINUTES_PER_DAY),
                period,
            });
            if e > 0 {
                let next = (day0 + u32::from(MINUTES_PER_DAY)) % MINUTES_PER_WEEK;
                out.push(Span {
                    start: next,
                    end: next + e,
                    period,
                });
            }
        }
    }
    out
}

impl Tariff {
    /// The checked tariff: `periods` are (label, price per kWh) in
    /// configuration order, `spans` disjoint (checked by the caller).
    pub(super) fn new(
        currency: String,
        default_price_per_kwh: f64,
        periods: Vec<(String, f64)>,
        mut spans: Vec<Span>,
    ) -> Self {
        spans.sort_by_key(|s| s.start);
        Tariff {
            currency,
            default_price_per_kwh,
            periods,
            spans,
        }
    }

    /// Period boundaries (index of the period, minute of the local day)
    /// that are not on a window boundary of `window_secs`: a window is
    /// priced at the rate of its local start, so the window across such a
    /// boundary would take one period's rate for all of it.
    pub fn misaligned(&self, window_secs: u64) -> Vec<(usize, String)> {
        let aligned = |m: u32| window_secs > 0 && (u64::from(m) * 60) % window_secs == 0;
        let mut out = std::collections::BTreeSet::new();
        for s in &self.spans {
            for m in [s.start, s.end].map(|m| m % u32::from(MINUTES_PER_DAY)) {
                if !aligned(m) {
                    out.insert((s.period, m));
                }
            }
        }
        out.into_iter().map(|(p, m)| (p, format_hhmm(m))).collect()
    }

    /// ISO 4217 code of every price.
    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// The price outside every period, per kWh.
    pub fn default_price_per_kwh(&self) -> f64 {
        self.default_price_per_kwh
    }

    /// The period in force at a local time, by index into the configured
    /// periods; `None` for the default price.
    ///
    /// `minute_of_day` is the local wall-clock minute (0..1440), already
    /// converted from event time by the caller. Minutes past the end of the
    /// day count on into the next days, so the lookup is total.
    pub fn period_at(&self, day: Day, minute_of_day: u16) -> Option<usize> {
        let m = (day.index() as u32 * u32::from(MINUTES_PER_DAY) + u32::from(minute_of_day))
            % MINUTES_PER_WEEK;
        let i = self.spans.partition_point(|s| s.end <= m);
        self.spans.get(i).filter(|s| s.start <= m).map(|s| s.period)
    }

    /// The price per kWh at a local time (see [`period_at`](Self::period_at)).
    pub fn price_at(&self, day: Day, minute_of_day: u16) -> f64 {
        self.period_at(day, minute_of_day)
            .map_or(self.default_price_per_kwh, |p| self.periods[p].1)
    }

    /// The label of a period for reports: its index, with its name if it has one.
    pub fn period_label(&self, period: usize) -> Option<&str> {
        self.periods.get(period).map(|p| p.0.as_str())
    }

    /// Cost of `kwh` consumed at a local time, in [`currency`](Self::currency).
    /// Tariff boundaries are whole minutes, so a window that does not cross a
    /// minute boundary has one price.
    pub fn cost(&self, kwh: f64, day: Day, minute_of_day: u16) -> f64 {
        kwh * self.price_at(day, minute_of_day)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{build, hm, period, tariff};
    use super::*;

    #[test]
    fn tariff_lookup_across_midnight_and_weekend() {
        let t = build(&tariff(vec![
            period(&["mon-fri"], "07:00", "22:00", 0.30, "peak"),
            // From each weekday evening into the next morning: Friday's
            // night runs into Saturday.
            period(&["mon-fri"], "22:00", "06:00", 0.12, "night"),
            period(&["sat-sun"], "06:00", "24:00", 0.10, "weekend"),
        ]));
        assert_eq!(t.currency(), "EUR");
        assert_eq!(t.price_at(Day::Mon, hm(0, 0)), 0.20); // Sunday has no night rate
        assert_eq!(t.price_at(Day::Mon, hm(6, 59)), 0.20);
        assert_eq!(t.price_at(Day::Mon, hm(7, 0)), 0.30);
        assert_eq!(t.price_at(Day::Mon, hm(21, 59)), 0.30);
        assert_eq!(t.price_at(Day::Mon, hm(22, 0)), 0.12);
        assert_eq!(t.price_at(Day::Mon, hm(23, 59)), 0.12);
        assert_eq!(t.price_at(Day::Tue, hm(0, 0)), 0.12);
        assert_eq!(t.price_at(Day::Tue, hm(5, 59)), 0.12);
        assert_eq!(t.price_at(Day::Tue, hm(6, 0)), 0.20);
        assert_eq!(t.price_at(Day::Sat, hm(3, 0)), 0.12);
        assert_eq!(t.price_at(Day::Sat, hm(6, 0)), 0.10);
        assert_eq!(t.price_at(Day::Sun, hm(3, 0)), 0.20);
        assert_eq!(t.price_at(Day::Sun, hm(23, 59)), 0.10);
        // Minutes past the end of the day count into the next day.
        assert_eq!(t.price_at(Day::Mon, MINUTES_PER_DAY + hm(1, 0)), 0.12);
        assert_eq!(t.price_at(Day::Sun, MINUTES_PER_DAY + hm(8, 0)), 0.30);
        assert_eq!(
            t.period_at(Day::Mon, hm(8, 0))
                .and_then(|p| t.period_label(p)),
            Some("periods[0] (`peak`)")
        );
        assert_eq!(t.period_at(Day::Mon, hm(6, 30)), None);
        assert!((t.cost(10.0, Day::Mon, hm(8, 0)) - 3.0).abs() < 1e-12);
    }

    #[test]
    fn sunday_night_continues_into_monday() {
        let t = build(&tariff(vec![period(
            &["sun"],
            "20:00",
            "04:30",
            0.05,
            "sunday-night",
        )]));
        assert_eq!(t.price_at(Day::Sun, hm(19, 59)), 0.20);
        assert_eq!(t.price_at(Day::Sun, hm(20, 0)), 0.05);
        assert_eq!(t.price_at(Day::Mon, hm(4, 29)), 0.05);
        assert_eq!(t.price_at(Day::Mon, hm(4, 30)), 0.20);
        assert_eq!(t.price_at(Day::Sat, hm(2, 0)), 0.20);
    }
}
