//! Shift and production-day roll-ups, their corrections, and the energy
//! baseline fed with each complete production day.

use super::Revised;
use crate::calendar::{SiteCalendar, Slot};
use crate::energy::{BaselineTracker, SiteEnergy, TrackerStep};
use ctower_model::kpi::KpiSums;
use ctower_model::{KpiRecord, Level, Period, ScopeKey, StreamOutput};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Shift and production-day roll-ups of every site with a calendar: the
/// window records of the site's scopes (site, lines, assets) are labelled
/// with their production day and shift and summed into the open periods;
/// a period is emitted once a window ends at or after its end. Sums first,
/// ratios from the sums, as for windows. Emitted periods are kept for the
/// correction horizon: a corrected window record replaces its contribution
/// and the period's changed scopes are re-emitted with the next revision.
#[derive(Debug, Default)]
pub struct Periods {
    calendars: Arc<HashMap<Arc<str>, SiteCalendar>>,
    energy: Arc<HashMap<Arc<str>, SiteEnergy>>,
    /// ISO 50006 baseline per site, fed with each complete production day.
    trackers: HashMap<Arc<str>, BaselineTracker>,
    keep_ms: i64,
    open: BTreeMap<PeriodKey, PeriodSums>,
    /// Emitted periods within the horizon, with each scope's revision.
    done: BTreeMap<PeriodKey, (PeriodSums, BTreeMap<ScopeKey, u32>)>,
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

/// Least data coverage of a site's day for the energy baseline.
const MIN_BASELINE_COVERAGE: f64 = 0.9;

/// A period a window belongs to, with the period's production day.
type PeriodOf = (PeriodKey, Arc<str>);

#[derive(Debug, Default)]
struct PeriodSums {
    production_day: Arc<str>,
    scopes: BTreeMap<ScopeKey, KpiSums>,
    /// Highest window demand per scope.
    peaks: BTreeMap<ScopeKey, Peak>,
    /// Σ and count of the window means of the site's outdoor temperature.
    temperature: (f64, u64),
    /// Start of the first window added: a period whose data starts late
    /// (the site's first day) is not fed to the energy baseline.
    first_window_ms: Option<i64>,
    /// The baseline report of a site's day, kept for its corrections.
    baseline: Option<ctower_model::kpi::BaselineFields>,
}

/// The highest window demand of a period, kW: windows that can still be
/// corrected are kept one by one (a correction may lower them), older ones
/// folded into one maximum.
#[derive(Debug, Default)]
struct Peak {
    settled: Option<f64>,
    recent: BTreeMap<i64, f64>,
}

impl Peak {
    fn max(&self) -> Option<f64> {
        self.recent
            .values()
            .copied()
            .chain(self.settled)
            .reduce(f64::max)
    }
}

impl PeriodSums {
    fn new(production_day: Arc<str>) -> Self {
        PeriodSums {
            production_day,
            ..PeriodSums::default()
        }
    }

    /// Sets the demand of window `w` (again, for a correction); windows
    /// older than `settle_before` can no longer change.
    fn peak(&mut self, scope: &ScopeKey, w: i64, kw: Option<f64>, settle_before: i64) {
        let Some(kw) = kw else { return };
        let p = self.peaks.entry(scope.clone()).or_default();
        p.recent.insert(w, kw);
        while let Some(entry) = p.recent.first_entry() {
            if *entry.key() >= settle_before {
                break;
            }
            let old = entry.remove();
            p.settled = Some(p.settled.map_or(old, |s| s.max(old)));
        }
    }

    fn peak_of(&self, scope: &ScopeKey) -> Option<f64> {
        self.peaks.get(scope).and_then(Peak::max)
    }
}

impl Periods {
    /// Periods of the sites with a calendar; emitted ones are kept for
    /// `keep_ms` (0: none, no corrections).
    pub fn new(
        calendars: Arc<HashMap<Arc<str>, SiteCalendar>>,
        energy: Arc<HashMap<Arc<str>, SiteEnergy>>,
        keep_ms: i64,
    ) -> Self {
        Periods {
            trackers: energy
                .iter()
                .map(|(site, e)| (site.clone(), e.baseline.tracker()))
                .collect(),
            calendars,
            energy,
            keep_ms,
            open: BTreeMap::new(),
            done: BTreeMap::new(),
        }
    }

    /// The site's calendar slot of window `w`: labels for its records and
    /// the periods (with their production day) it belongs to.
    fn periods_of(&self, site: &Arc<str>, w: i64) -> Option<(Slot, Arc<str>, Vec<PeriodOf>)> {
        let cal = self.calendars.get(site)?;
        let slot = cal.classify(w);
        let day: Arc<str> = slot.production_day.to_string().into();
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
        Some((slot, day, keys))
    }

    /// Labels a window record with its production day and shift; returns
    /// its periods.
    fn label(&self, k: &mut KpiRecord) -> Vec<PeriodOf> {
        let Some(site) = k.scope.site.clone() else {
            return Vec::new();
        };
        let Some((slot, day, keys)) = self.periods_of(&site, k.window_start_ms) else {
            return Vec::new();
        };
        k.production_day = Some(day);
        k.shift = slot.shift.map(|(name, _)| name);
        keys
    }

    /// Labels the window records in `outputs` with their production day and
    /// shift, adds them to their periods, and appends the records of every
    /// period that has ended by the window's end.
    pub fn window(&mut self, window_end_ms: i64, outputs: &mut Vec<StreamOutput>) {
        if self.calendars.is_empty() {
            return;
        }
        let keep = self.keep_ms;
        for out in outputs.iter_mut() {
            match out {
                StreamOutput::Kpi(k) => {
                    for (key, production_day) in self.label(k) {
                        let p = self
                            .open
                            .entry(key)
                            .or_insert_with(|| PeriodSums::new(production_day));
                        p.scopes.entry(k.scope.clone()).or_default().add(&k.sums);
                        p.first_window_ms = Some(
                            p.first_window_ms
                                .map_or(k.window_start_ms, |f| f.min(k.window_start_ms)),
                        );
                        p.peak(
                            &k.scope,
                            k.window_start_ms,
                            k.peak_demand_kw,
                            k.window_start_ms - keep,
                        );
                    }
                }
                StreamOutput::Signal(sw) => {
                    let site = &sw.asset.site;
                    let wanted = self
                        .energy
                        .get(site)
                        .and_then(|e| e.temperature_signal.as_ref())
                        .is_some_and(|t| *t == sw.signal);
                    if !wanted {
                        continue;
                    }
                    let days = self.periods_of(site, sw.window_start_ms).map(|p| p.2);
                    for (key, production_day) in days.into_iter().flatten() {
                        if key.period == Period::Day {
                            let p = self
                                .open
                                .entry(key)
                                .or_insert_with(|| PeriodSums::new(production_day));
                            p.temperature.0 += sw.mean;
                            p.temperature.1 += 1;
                        }
                    }
                }
            }
        }
        self.emit(|end| end <= window_end_ms, true, outputs);
        let from = window_end_ms - self.keep_ms;
        while self
            .done
            .first_key_value()
            .is_some_and(|(k, _)| k.end_ms < from)
        {
            self.done.pop_first();
        }
    }

    /// Labels re-emitted window records and moves their change into their
    /// periods; appends the next revision of every emitted period scope
    /// that changed.
    pub fn correct(&mut self, revised: &mut [Revised], outputs: &mut Vec<StreamOutput>) {
        if self.calendars.is_empty() {
            return;
        }
        // Per emitted period, the scopes that changed and whether they
        // had been emitted (a scope new to the period starts at revision 0).
        let mut touched: BTreeMap<PeriodKey, BTreeMap<ScopeKey, bool>> = BTreeMap::new();
        for r in revised.iter_mut() {
            for (key, production_day) in self.label(&mut r.new) {
                let sums = if let Some((p, _)) = self.done.get_mut(&key) {
                    let existed = p.scopes.contains_key(&r.new.scope);
                    touched
                        .entry(key)
                        .or_default()
                        .entry(r.new.scope.clone())
                        .or_insert(existed);
                    p
                } else {
                    self.open
                        .entry(key)
                        .or_insert_with(|| PeriodSums::new(production_day))
                };
                sums.peak(
                    &r.new.scope,
                    r.new.window_start_ms,
                    r.new.peak_demand_kw,
                    i64::MIN,
                );
                let s = sums.scopes.entry(r.new.scope.clone()).or_default();
                if let Some((_, old)) = &r.old {
                    s.sub(old);
                }
                s.add(&r.new.sums);
            }
        }
        for (key, scopes) in touched {
            let Some((p, revs)) = self.done.get_mut(&key) else {
                continue;
            };
            for (scope, existed) in scopes {
                let Some(s) = p.scopes.get(&scope) else {
                    continue;
                };
                let next = match revs.get(&scope) {
                    Some(r) => r + 1,
                    None if existed => 1,
                    None => 0,
                };
                let rev = revs.entry(scope.clone()).or_insert(next);
                *rev = next;
                let mut k = KpiRecord::new(key.start_ms, key.end_ms, scope.clone(), s.clone());
                k.period = key.period;
                k.production_day = Some(p.production_day.clone());
                k.shift = key.shift.clone();
                k.revision = *rev;
                k.peak_demand_kw = p.peak_of(&scope);
                if key.period == Period::Day && scope.level == Level::Site {
                    // The day was reported against the baseline once; a
                    // correction keeps that report (no refit).
                    if let Some(b) = &p.baseline {
                        k.baseline = b.clone();
                    }
                }
                outputs.push(StreamOutput::Kpi(Box::new(k)));
            }
        }
    }

    /// At the end of the input: the records of every period still open,
    /// marked incomplete.
    pub fn finish(&mut self) -> Vec<StreamOutput> {
        let mut out = Vec::new();
        self.emit(|_| true, false, &mut out);
        out
    }

    /// Feeds a complete production day of a site to its energy baseline and
    /// reports the day against it (ISO 50006: energy regressed on production
    /// and, when configured, degree-days from the day's mean temperature).
    /// A day without a temperature reading cannot be used with degree-days.
    fn baseline(&mut self, key: &PeriodKey, sums: &PeriodSums, k: &mut KpiRecord) {
        let (Some(e), Some(tracker)) =
            (self.energy.get(&key.site), self.trackers.get_mut(&key.site))
        else {
            return;
        };
        let days = (key.end_ms - key.start_ms) as f64 / 86_400_000.0;
        let dd = match &e.baseline.degree_days {
            Some(d) if sums.temperature.1 > 0 => {
                Some(d.of(sums.temperature.0 / sums.temperature.1 as f64, days))
            }
            Some(_) => return,
            None => None,
        };
        let b = &mut k.baseline;
        b.degree_days = dd;
        // A day whose production or energy is unknown says nothing about
        // their relation.
        let (Some(produced), Some(energy_kwh)) = (k.sums.produced, k.sums.energy_kwh) else {
            return;
        };
        let fitted = match tracker.push(produced as f64, dd, energy_kwh) {
            Ok(TrackerStep::Tracked(d)) => {
                b.baseline_expected_kwh = Some(d.expected_kwh);
                b.baseline_deviation_kwh = Some(d.deviation_kwh);
                b.baseline_cusum_kwh = Some(d.cusum_kwh);
                Some((d.r2, d.coefficients))
            }
            Ok(TrackerStep::Fitted(f)) => Some((f.r2, f.coefficients)),
            Ok(TrackerStep::Collecting { .. } | TrackerStep::FitFailed { .. }) | Err(_) => None,
        };
        if let Some((r2, c)) = fitted {
            b.baseline_r2 = Some(r2);
            b.baseline_intercept_kwh = Some(c.intercept_kwh);
            b.baseline_kwh_per_unit = Some(c.kwh_per_unit);
            b.baseline_kwh_per_degree_day = c.kwh_per_degree_day;
        }
    }

    fn emit(&mut self, due: impl Fn(i64) -> bool, complete: bool, out: &mut Vec<StreamOutput>) {
        while let Some(entry) = self.open.first_entry() {
            if !due(entry.key().end_ms) {
                break;
            }
            let (key, mut sums) = entry.remove_entry();
            let mut baseline = None;
            for (scope, s) in &sums.scopes {
                let mut k = KpiRecord::new(key.start_ms, key.end_ms, scope.clone(), s.clone());
                k.period = key.period;
                k.production_day = Some(sums.production_day.clone());
                k.shift = key.shift.clone();
                k.complete = complete;
                k.peak_demand_kw = sums.peak_of(scope);
                // Only whole days with data feed the baseline: a site's first
                // (partial) day or a day mostly without data would distort it.
                // The same for the energy meters' own data: a day with the
                // meter's gateway down would read as savings.
                let meters_covered = s.energy_meter_ms == 0
                    || s.energy_measured_ms as f64
                        >= MIN_BASELINE_COVERAGE * s.energy_meter_ms as f64;
                let whole = sums.first_window_ms.is_some_and(|f| f <= key.start_ms)
                    && meters_covered
                    && k.ratios
                        .data_coverage
                        .is_none_or(|c| c >= MIN_BASELINE_COVERAGE);
                if complete && whole && key.period == Period::Day && scope.level == Level::Site {
                    self.baseline(&key, &sums, &mut k);
                    baseline = Some(k.baseline.clone());
                }
                out.push(StreamOutput::Kpi(Box::new(k)));
            }
            if self.keep_ms > 0 {
                sums.baseline = baseline;
                self.done.insert(key, (sums, BTreeMap::new()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{all_day_calendar, DAY, T0, W};
    use super::*;
    use crate::energy::EnergyConfig;
    use ctower_model::AssetKey;

    fn periods(baseline_periods: usize) -> Periods {
        let cal = all_day_calendar();
        let energy: EnergyConfig = toml_like(baseline_periods);
        let sites = energy.check("energy", &mut vec![]).expect("energy");
        Periods::new(
            Arc::new(HashMap::from([(Arc::from("s"), cal)])),
            Arc::new(
                sites
                    .into_iter()
                    .map(|(k, v)| (Arc::from(k.as_str()), v))
                    .collect(),
            ),
            0,
        )
    }

    fn toml_like(baseline_periods: usize) -> EnergyConfig {
        serde_json::from_value(serde_json::json!({"sites": {"s": {
            "emission_factor_kg_per_kwh": 0.1,
            "tariff": {"currency": "EUR", "default_price_per_kwh": 0.2},
            "baseline": {"baseline_periods": baseline_periods}
        }}}))
        .expect("energy config")
    }

    /// One day of 96 windows of the site; the day's totals are `units` and `kwh`.
    fn day(p: &mut Periods, d: i64, units: u64, kwh: f64) -> Vec<KpiRecord> {
        day_metered(p, d, units, kwh, 1.0)
    }

    /// The same, with the meter's readings covering `covered` of its time.
    fn day_metered(p: &mut Periods, d: i64, units: u64, kwh: f64, covered: f64) -> Vec<KpiRecord> {
        let scope = AssetKey::new("s", "a", "l", "m").scope(Level::Site);
        let mut out = Vec::new();
        for i in 0..96 {
            let w = T0 + d * DAY + i * W;
            let sums = KpiSums {
                produced: Some(if i == 0 { units } else { 0 }),
                energy_kwh: Some(kwh / 96.0),
                demand_kwh: kwh / 96.0,
                energy_meter_ms: W,
                energy_measured_ms: (W as f64 * covered) as i64,
                ..KpiSums::default()
            };
            let mut outputs = vec![StreamOutput::Kpi(Box::new(KpiRecord::new(
                w,
                w + W,
                scope.clone(),
                sums,
            )))];
            p.window(w + W, &mut outputs);
            out.extend(outputs.into_iter().filter_map(|o| match o {
                StreamOutput::Kpi(k) if k.period == Period::Day => Some(*k),
                _ => None,
            }));
        }
        out
    }

    #[test]
    fn a_day_with_the_meter_mostly_silent_does_not_feed_the_baseline() {
        // kWh = 300 + 0.02 × units on every whole day.
        let mut p = periods(4);
        day(&mut p, 0, 10_000, 500.0);
        day(&mut p, 1, 11_000, 520.0);
        // The gateway was down most of day 2: 80 kWh instead of 540.
        let r = day_metered(&mut p, 2, 12_000, 80.0, 0.1);
        assert_eq!(r[0].sums.energy_measured_ms, 96 * W / 10);
        assert_eq!(r[0].baseline.baseline_r2, None, "day 2 must not be used");
        let r = day(&mut p, 3, 13_000, 560.0);
        assert_eq!(r[0].baseline.baseline_r2, None, "three whole days so far");
        let r = day(&mut p, 4, 14_000, 580.0);
        let r2 = r[0]
            .baseline
            .baseline_r2
            .expect("fitted on the fourth whole day");
        assert!(
            (r2 - 1.0).abs() < 1e-9,
            "day 2 left out, the fit is exact: {r2}"
        );
    }

    #[test]
    fn a_production_day_is_reported_against_the_fitted_baseline() {
        let mut p = periods(7);
        // kWh = 500 + 0.02 × units on the seven baseline days.
        let units = [10_000u64, 14_000, 9_000, 20_000, 16_000, 12_000, 18_000];
        for (d, u) in units.iter().enumerate() {
            let rec = day(&mut p, d as i64, *u, 500.0 + 0.02 * *u as f64);
            assert_eq!(rec.len(), 1, "one day record on day {d}");
            let b = &rec[0].baseline;
            assert_eq!(b.baseline_expected_kwh, None, "no report while collecting");
            if d == 6 {
                let r2 = b.baseline_r2.expect("fitted on day 7");
                assert!((r2 - 1.0).abs() < 1e-9);
                assert!((b.baseline_kwh_per_unit.expect("slope") - 0.02).abs() < 1e-9);
                assert!((b.baseline_intercept_kwh.expect("intercept") - 500.0).abs() < 1e-6);
            }
        }
        // Day 8 uses 40 kWh more than expected, day 9 10 kWh less.
        let r = day(&mut p, 7, 15_000, 500.0 + 300.0 + 40.0);
        let b = &r[0].baseline;
        assert!((b.baseline_expected_kwh.expect("expected") - 800.0).abs() < 1e-6);
        assert!((b.baseline_deviation_kwh.expect("deviation") - 40.0).abs() < 1e-6);
        assert!((b.baseline_cusum_kwh.expect("cusum") - 40.0).abs() < 1e-6);
        let r = day(&mut p, 8, 5_000, 500.0 + 100.0 - 10.0);
        assert!((r[0].baseline.baseline_cusum_kwh.expect("cusum") - 30.0).abs() < 1e-6);
        // Demand: each window 1/96 of the day's energy in 15 min.
        let peak = r[0].peak_demand_kw.expect("peak");
        assert!((peak - 590.0 / 96.0 * 4.0).abs() < 1e-9);
        assert_eq!(r[0].sums.co2e_kg, None, "CO2e comes from the accumulators");
    }
}
