//! Days of the week, local to a site, as tariff periods name them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A day of the week, local to the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Day {
    /// Monday to Sunday, in order.
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    /// The day from its ISO 8601 number, Monday = 1 … Sunday = 7 (as
    /// `chrono::Weekday::number_from_monday`); `None` outside 1..=7.
    pub fn from_number_from_monday(n: u8) -> Option<Day> {
        Day::ALL.get(usize::from(n).checked_sub(1)?).copied()
    }

    /// Monday = 0 … Sunday = 6.
    pub fn index(self) -> usize {
        self as usize
    }

    /// `Mon` … `Sun`, for messages (the serde name is lowercase).
    pub fn abbreviation(self) -> &'static str {
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][self.index()]
    }

    /// `mon` or `monday`, any case.
    fn parse(s: &str) -> Option<Day> {
        let s = s.trim().to_ascii_lowercase();
        const FULL: [&str; 7] = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        FULL.iter()
            .position(|f| *f == s || (s.len() == 3 && f.starts_with(&s)))
            .map(|i| Day::ALL[i])
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.abbreviation())
    }
}

/// Parses one `days` entry: a day (`mon`, `Monday`) or an inclusive range
/// (`mon-fri`; `fri-mon` wraps over the weekend).
pub(super) fn parse_days(entry: &str) -> Option<Vec<Day>> {
    match entry.split_once('-') {
        None => Day::parse(entry).map(|d| vec![d]),
        Some((a, b)) => {
            let (a, b) = (Day::parse(a)?, Day::parse(b)?);
            let len = (b.index() + 7 - a.index()) % 7 + 1;
            Some((0..len).map(|k| Day::ALL[(a.index() + k) % 7]).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_parsing_and_ranges() {
        assert_eq!(parse_days("Mon"), Some(vec![Day::Mon]));
        assert_eq!(parse_days("sunday"), Some(vec![Day::Sun]));
        assert_eq!(
            parse_days("mon-fri"),
            Some(vec![Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri])
        );
        assert_eq!(
            parse_days("fri-mon"),
            Some(vec![Day::Fri, Day::Sat, Day::Sun, Day::Mon])
        );
        assert_eq!(parse_days("mo"), None);
        assert_eq!(parse_days("mon-"), None);
        assert_eq!(Day::from_number_from_monday(1), Some(Day::Mon));
        assert_eq!(Day::from_number_from_monday(7), Some(Day::Sun));
        assert_eq!(Day::from_number_from_monday(0), None);
        assert_eq!(Day::from_number_from_monday(8), None);
    }
}
