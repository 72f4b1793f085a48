//! Roll-ups: asset windows → line, site and group KPIs.
//!
//! Times and quantities are summed first and the ratios derived from the
//! sums (ISO 22400-2); ratios are never averaged.

use crate::accum::AssetWindow;
use crate::calendar::{SiteCalendar, Slot};
use ctower_model::kpi::KpiSums;
use ctower_model::{KpiRecord, Level, Period, ScopeKey, StreamOutput};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Builds every KPI record of one window, in a deterministic order: KPIs by
/// scope (group, sites, lines, assets), then signal statistics by asset and
/// signal. The order of `assets` does not matter: they are sorted first.
pub fn roll_up(
    window_start_ms: i64,
    window_ms: i64,
    mut assets: Vec<AssetWindow>,
) -> Vec<StreamOutput> {
    let end = window_start_ms + window_ms;
    // Floating-point sums depend on the order of the terms: fix it, so the
    // result does not depend on which worker delivered first.
    assets.sort_by(|x, y| x.asset.cmp(&y.asset));
    let mut scopes: BTreeMap<ScopeKey, KpiSums> = BTreeMap::new();
    let mut signals = Vec::new();
    for a in assets {
        for level in Level::ALL {
            scopes.entry(a.asset.scope(level)).or_default().add(&a.sums);
        }
        signals.extend(a.signals);
    }
    signals.sort_by(|x, y| (&x.asset, &x.signal).cmp(&(&y.asset, &y.signal)));
    scopes
        .into_iter()
        .map(|(scope, sums)| {
            StreamOutput::Kpi(Box::new(KpiRecord::new(window_start_ms, end, scope, sums)))
        })
        .chain(signals.into_iter().map(StreamOutput::Signal))
        .collect()
}

/// Shift and production-day roll-ups of every site with a calendar: the
/// window records of the site's scopes (site, lines, assets) are labelled
/// with their production day and shift and summed into the open periods;
/// a period is emitted once a window ends at or after its end. Sums first,
/// ratios from the sums, as for windows.
#[derive(Debug, Default)]
pub struct Periods {
    calendars: Arc<HashMap<Arc<str>, SiteCalendar>>,
    open: BTreeMap<PeriodKey, PeriodSums>,
}

/// Ordered so that periods come out by end, then start, then kind and site.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PeriodKey {
    end_ms: i64,
    start_ms: i64,
    period: Period,
    site: Arc<str>,
    shift: Option<Arc<str>>,
}

#[derive(Debug)]
struct PeriodSums {
    production_day: Arc<str>,
    scopes: BTreeMap<ScopeKey, KpiSums>,
}

impl Periods {
    pub fn new(calendars: Arc<HashMap<Arc<str>, SiteCalendar>>) -> Self {
        Periods {
            calendars,
            open: BTreeMap::new(),
        }
    }

    /// Labels the window records in `outputs` with their production day and
    /// shift, adds them to their periods, and appends the records of every
    /// period that has ended by the window's end.
    pub fn window(
        &mut self,
        window_start_ms: i64,
        window_end_ms: i64,
        outputs: &mut Vec<StreamOutput>,
    ) {
        if self.calendars.is_empty() {
            return;
        }
        // One classification per site and window.
        let mut slots: HashMap<Arc<str>, Option<(Slot, Arc<str>)>> = HashMap::new();
        for out in outputs.iter_mut() {
            let StreamOutput::Kpi(k) = out else { continue };
            let Some(site) = k.scope.site.clone() else {
                continue;
            };
            let labelled = slots.entry(site.clone()).or_insert_with(|| {
                let cal = self.calendars.get(&site)?;
                let slot = cal.classify(window_start_ms);
                let day: Arc<str> = slot.production_day.to_string().into();
                Some((slot, day))
            });
            let Some((slot, day)) = labelled else {
                continue;
            };
            let Some(cal) = self.calendars.get(&site) else {
                continue;
            };
            k.production_day = Some(day.clone());
            k.shift = slot.shift.as_ref().map(|(name, _)| name.clone());
            let (ds, de) = cal.day_bounds(slot.production_day);
            let mut keys = vec![(
                PeriodKey {
                    end_ms: de,
                    start_ms: ds,
                    period: Period::Day,
                    site: site.clone(),
                    shift: None,
                },
                day.clone(),
            )];
            if let Some((name, started)) = &slot.shift {
                if let Some((ss, se)) = cal.shift_bounds(name, *started) {
                    let shift_day: Arc<str> = cal.classify(ss).production_day.to_string().into();
                    keys.push((
                        PeriodKey {
                            end_ms: se,
                            start_ms: ss,
                            period: Period::Shift,
                            site: site.clone(),
                            shift: Some(name.clone()),
                        },
                        shift_day,
                    ));
                }
            }
            for (key, production_day) in keys {
                self.open
                    .entry(key)
                    .or_insert_with(|| PeriodSums {
                        production_day,
                        scopes: BTreeMap::new(),
                    })
                    .scopes
                    .entry(k.scope.clone())
                    .or_default()
                    .add(&k.sums);
            }
        }
        self.emit(|end| end <= window_end_ms, true, outputs);
    }

    /// At the end of the input: the records of every period still open,
    /// marked incomplete.
    pub fn finish(&mut self) -> Vec<StreamOutput> {
        let mut out = Vec::new();
        self.emit(|_| true, false, &mut out);
        out
    }

    fn emit(&mut self, due: impl Fn(i64) -> bool, complete: bool, out: &mut Vec<StreamOutput>) {
        while let Some(entry) = self.open.first_entry() {
            if !due(entry.key().end_ms) {
                break;
            }
            let (key, sums) = entry.remove_entry();
            for (scope, s) in sums.scopes {
                let mut k = KpiRecord::new(key.start_ms, key.end_ms, scope, s);
                k.period = key.period;
                k.production_day = Some(sums.production_day.clone());
                k.shift = key.shift.clone();
                k.complete = complete;
                out.push(StreamOutput::Kpi(Box::new(k)));
            }
        }
    }
}
