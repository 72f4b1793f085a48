//! Roll-ups: asset windows → line, site and group KPIs, their corrections,
//! and the shift and production-day periods.
//!
//! Times and quantities are summed first and the ratios derived from the
//! sums (ISO 22400-2); ratios are never averaged.
//!
//! - [`window`]: one window's roll-up ([`roll_up`]);
//! - [`revisions`]: closed windows kept for corrections ([`Revisions`]);
//! - [`periods`]: shifts and days, and the energy baseline ([`Periods`]);
//! - [`RollUp`] (here): the stage that ties them together at each timely
//!   time.

pub mod periods;
pub mod revisions;
pub mod window;

pub use periods::Periods;
pub use revisions::{Revised, Revisions};
pub use window::roll_up;

use crate::accum::AssetWindow;
use crate::calendar::SiteCalendar;
use crate::energy::SiteEnergy;
use ctower_model::kpi::KpiSums;
use ctower_model::{AssetKey, KpiRecord, StreamOutput};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The roll-up stage: windows, their corrections, shifts and days.
#[derive(Debug)]
pub struct RollUp {
    window_ms: i64,
    /// The configured sites (with a calendar or energy settings), sorted:
    /// reported in every window even when they send nothing.
    expected_sites: Vec<Arc<str>>,
    revisions: Revisions,
    periods: Periods,
}

impl RollUp {
    /// `keep_ms`: how long closed windows, shifts and days stay correctable.
    pub fn new(
        window_ms: i64,
        calendars: Arc<HashMap<Arc<str>, SiteCalendar>>,
        energy: Arc<HashMap<Arc<str>, SiteEnergy>>,
        keep_ms: i64,
    ) -> Self {
        let mut expected_sites: Vec<Arc<str>> =
            calendars.keys().chain(energy.keys()).cloned().collect();
        expected_sites.sort();
        expected_sites.dedup();
        RollUp {
            window_ms,
            expected_sites,
            revisions: Revisions::new(keep_ms),
            periods: Periods::new(calendars, energy, keep_ms),
        }
    }

    /// Everything final at timely time `t`: the corrections of earlier
    /// windows that came at `t`, then the window starting at `t` (when any
    /// asset closed it) with the shifts and days it ends. Returns the
    /// outputs — the window's records and signals, its periods, then the
    /// corrections (window records, then periods) — and whether a window
    /// closed.
    pub fn at(&mut self, t: i64, assets: Vec<AssetWindow>) -> (Vec<StreamOutput>, bool) {
        let (regular, late): (Vec<AssetWindow>, Vec<AssetWindow>) =
            assets.into_iter().partition(|a| a.window_start_ms >= t);
        let mut by_window: BTreeMap<i64, Vec<AssetWindow>> = BTreeMap::new();
        for a in late {
            by_window.entry(a.window_start_ms).or_default().push(a);
        }
        let mut revised = Vec::new();
        for (w, changed) in by_window {
            revised.extend(self.revisions.correct(
                w,
                self.window_ms,
                changed,
                &self.expected_sites,
            ));
        }
        // All windows first, then each touched shift and day once.
        let mut periods = Vec::new();
        self.periods.correct(&mut revised, &mut periods);
        let records: Vec<KpiRecord> = revised.into_iter().map(|r| r.new).collect();
        self.revisions.emitted(&records);
        let mut corrections: Vec<StreamOutput> = records
            .into_iter()
            .map(|k| StreamOutput::Kpi(Box::new(k)))
            .collect();
        corrections.extend(periods);
        let closes = !regular.is_empty();
        let mut outputs = Vec::new();
        if closes {
            let sums: Vec<(AssetKey, KpiSums)> = regular
                .iter()
                .map(|a| (a.asset.clone(), a.sums.clone()))
                .collect();
            outputs = roll_up(t, self.window_ms, regular, &self.expected_sites);
            self.periods.window(t + self.window_ms, &mut outputs);
            self.revisions.keep(t, sums, &outputs);
        }
        outputs.extend(corrections);
        (outputs, closes)
    }

    /// At the end of the input: shifts and days still open, incomplete.
    pub fn finish(&mut self) -> Vec<StreamOutput> {
        self.periods.finish()
    }

    /// Corrections that came for windows older than the horizon.
    pub fn dropped_corrections(&self) -> u64 {
        self.revisions.dropped
    }
}

/// What the tests of the roll-ups share.
#[cfg(test)]
mod test_support {
    use crate::calendar::{ShiftConfig, SiteCalendar, SiteCalendarConfig};

    pub const W: i64 = 900_000;
    pub const DAY: i64 = 86_400_000;
    // 2026-03-02T00:00:00Z, a Monday.
    pub const T0: i64 = 1_772_409_600_000;

    /// Site `s`: one shift all day, days from midnight UTC.
    pub fn all_day_calendar() -> SiteCalendar {
        let cal = SiteCalendarConfig {
            time_zone: "UTC".into(),
            production_day_start: "00:00".into(),
            shifts: vec![ShiftConfig {
                name: "all".into(),
                start: "00:00".into(),
                end: "24:00".into(),
            }],
            breaks: vec![],
            maintenance: vec![],
        };
        cal.check("sites.s", 900, &mut vec![]).expect("calendar")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{all_day_calendar, DAY, T0, W};
    use super::*;
    use ctower_model::{Level, Period};

    #[test]
    fn late_data_before_the_first_window_is_rolled_up_not_dropped() {
        let mut stage = RollUp::new(W, Arc::default(), Arc::default(), 4 * W);
        let window = |site: &str, w: i64, produced: u64| AssetWindow {
            window_start_ms: w,
            asset: AssetKey::new(site, "a", "l", "m"),
            sums: KpiSums {
                messages: 1,
                produced: Some(produced),
                ..KpiSums::default()
            },
            signals: Vec::new(),
        };
        let records = |outputs: &[StreamOutput]| -> Vec<(i64, Level, u32, u64)> {
            outputs
                .iter()
                .filter_map(|o| match o {
                    StreamOutput::Kpi(k) => Some((
                        k.window_start_ms,
                        k.scope.level,
                        k.revision,
                        k.sums.produced.unwrap_or(0),
                    )),
                    StreamOutput::Signal(_) => None,
                })
                .collect()
        };
        let t = T0 + 10 * W;
        // Site a sets the watermark: its first window closes at t.
        let (_, closes) = stage.at(t, vec![window("a", t, 1)]);
        assert!(closes);
        // Site b's backlog (two windows before t) comes late, at t + W.
        let (out, closes) = stage.at(
            t + W,
            vec![window("b", t - 2 * W, 0), window("b", t - W, 10)],
        );
        assert!(!closes);
        let group_and_asset =
            |r: &&(i64, Level, u32, u64)| matches!(r.1, Level::Group | Level::Asset);
        let got: Vec<_> = records(&out)
            .iter()
            .filter(group_and_asset)
            .copied()
            .collect();
        assert_eq!(
            got,
            vec![
                (t - 2 * W, Level::Group, 0, 0),
                (t - 2 * W, Level::Asset, 0, 0),
                (t - W, Level::Group, 0, 10),
                (t - W, Level::Asset, 0, 10),
            ]
        );
        // Once emitted, such a window is corrected like any other.
        let (out, _) = stage.at(t + 2 * W, vec![window("b", t - W, 12)]);
        assert!(records(&out).contains(&(t - W, Level::Asset, 1, 12)));
        // Older than the horizon (4 windows behind the newest kept): dropped.
        let (out, _) = stage.at(t + 3 * W, vec![window("b", t - 6 * W, 5)]);
        assert!(records(&out).is_empty());
        assert_eq!(stage.dropped_corrections(), 1);
    }

    #[test]
    fn correcting_the_window_that_ends_a_day_revises_the_day_by_that_window() {
        let cal = all_day_calendar();
        let mut stage = RollUp::new(
            W,
            Arc::new(HashMap::from([(Arc::from("s"), cal)])),
            Arc::new(HashMap::new()),
            2 * 3_600_000,
        );
        let key = AssetKey::new("s", "a", "l", "m");
        let window = |w: i64, produced: u64| AssetWindow {
            window_start_ms: w,
            asset: key.clone(),
            sums: KpiSums {
                messages: 1,
                produced: Some(produced),
                ..KpiSums::default()
            },
            signals: Vec::new(),
        };
        let produced = |outputs: &[StreamOutput], period: Period| -> Vec<(u32, u64)> {
            outputs
                .iter()
                .filter_map(|o| match o {
                    StreamOutput::Kpi(k) if k.period == period && k.scope.level == Level::Asset => {
                        Some((k.revision, k.sums.produced.unwrap_or(0)))
                    }
                    _ => None,
                })
                .collect()
        };
        // The last four windows of the day, 10 units each; the last one
        // ends the shift and the day.
        let last = T0 + DAY - W;
        for w in [last - 3 * W, last - 2 * W, last - W, last] {
            let (out, closes) = stage.at(w, vec![window(w, 10)]);
            assert!(closes);
            if w == last {
                assert_eq!(produced(&out, Period::Day), vec![(0, 40)]);
                assert_eq!(produced(&out, Period::Shift), vec![(0, 40)]);
            }
        }
        // A late message makes the last window 25 units.
        let (out, closes) = stage.at(T0 + DAY, vec![window(last, 25)]);
        assert!(!closes);
        assert_eq!(produced(&out, Period::Window), vec![(1, 25)]);
        assert_eq!(produced(&out, Period::Day), vec![(1, 55)]);
        assert_eq!(produced(&out, Period::Shift), vec![(1, 55)]);
    }
}
