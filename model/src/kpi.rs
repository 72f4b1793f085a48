//! KPI records: what the stream emits for every closed window and scope.
//!
//! Formulas (ISO 22400-2, see README "KPIs"): times are summed over the
//! state-modelled assets of the scope (asset-time), quantities are summed,
//! and every ratio is computed from those sums — a roll-up never averages
//! ratios.

use crate::{AssetKey, Role, ScopeKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Additive part of a KPI record: everything a roll-up sums.
///
/// Unknown is not zero: a quantity the scope had no measurement of in the
/// period (no counter, no meter, a meter gap) is `None`, never 0; a sum of
/// several scopes is `Some` as soon as one of them measured it, and the
/// coverage fields (`assets_reporting` of `assets`, `sites_reporting` of
/// `sites`, `priced_kwh` and `co2e_factor_kwh` of `energy_kwh`, the meters'
/// `energy_measured_ms` of `energy_meter_ms`) say how much of the scope did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KpiSums {
    /// Observations (accepted messages) of the window.
    pub messages: u64,
    /// Asset-windows in the scope: each asset counts once per window (so a
    /// shift or day record counts asset-windows), including retired assets
    /// of its lines (silent for `pipeline.asset_retire_after_secs`).
    #[serde(default)]
    pub assets: u64,
    /// The asset-windows with fresh data (a message, known machine time, or
    /// a measured meter interval).
    #[serde(default)]
    pub assets_reporting: u64,
    /// Site-windows in the scope (0 below the site level), including the
    /// configured sites that sent nothing.
    #[serde(default)]
    pub sites: u64,
    /// The site-windows with at least one reporting asset.
    #[serde(default)]
    pub sites_reporting: u64,
    /// Time model, milliseconds of asset-time in the window.
    pub running_ms: i64,
    pub planned_stop_ms: i64,
    /// Unplanned stops longer than the micro-stop threshold (breakdowns).
    pub unplanned_stop_ms: i64,
    /// `unplanned_stop_ms` by the stop's reason code (`unspecified` when
    /// the state message gave none); the parts add up to it.
    pub unplanned_stop_by_reason_ms: BTreeMap<Arc<str>, i64>,
    /// Unplanned stops that ended within the micro-stop threshold: a
    /// performance loss (minor stops), counted in actual production time.
    pub micro_stop_ms: i64,
    pub changeover_ms: i64,
    pub no_shift_ms: i64,
    pub unknown_ms: i64,
    /// Unplanned stops that began in the window (a change of state into an
    /// unplanned stop): the "failures" of MTBF and MTTR.
    pub unplanned_stops: u64,
    /// Micro-stops that began in the window.
    pub micro_stops: u64,
    /// State messages of a second state signal of an asset: they would
    /// overlap the owner's states, so they are rejected and counted here.
    pub rejected_state_messages: u64,
    /// Units, from cumulative counters: each increase spread pro rata over
    /// the interval between the two readings (docs/kpis.md). `None`: no
    /// counter interval of the scope overlapped the period.
    pub produced: Option<u64>,
    pub good: Option<u64>,
    pub reject: Option<u64>,
    /// Σ ideal cycle time × units produced, milliseconds.
    pub ideal_time_ms: f64,
    /// Σ ideal cycle time × good units, milliseconds (fully productive time).
    pub good_ideal_ms: f64,
    /// The same two sums over start-up periods only (yield losses).
    pub startup_ideal_ms: f64,
    pub startup_good_ideal_ms: f64,
    /// Energy from cumulative meters, kWh, spread pro rata over each
    /// reading interval; `None` without a measured meter interval.
    pub energy_kwh: Option<f64>,
    /// The part of `energy_kwh` from meter intervals no longer than the
    /// stale time (fine-grained readings): what demand is computed from.
    #[serde(default)]
    pub demand_kwh: f64,
    /// Energy meter time: the part of the window after an asset's first
    /// energy reading, ms (an asset with a meter keeps it while silent).
    #[serde(default)]
    pub energy_meter_ms: i64,
    /// The part of `energy_meter_ms` covered by meter intervals no longer
    /// than the meter's maximum interval, ms: the meters' data coverage.
    #[serde(default)]
    pub energy_measured_ms: i64,
    /// Energy cost at the site's time-of-use tariff (window priced at its
    /// local start), in the tariffs' currency, of the priced energy;
    /// `None` when none of the scope's energy has a tariff.
    pub energy_cost: Option<f64>,
    /// The part of `energy_kwh` that has a tariff (cost coverage).
    #[serde(default)]
    pub priced_kwh: f64,
    /// Emissions of the energy with an emission factor, kg CO2e; `None`
    /// when none of it has one.
    pub co2e_kg: Option<f64>,
    /// The part of `energy_kwh` that has an emission factor.
    #[serde(default)]
    pub co2e_factor_kwh: f64,
    /// Σ of each meter's last power reading in the window, kW (`None`: no reading).
    pub power_kw: Option<f64>,
    /// Water from cumulative meters, m³, spread like energy; `None` without
    /// a measured interval.
    pub water_feed_m3: Option<f64>,
    pub water_permeate_m3: Option<f64>,
    pub water_concentrate_m3: Option<f64>,
    /// What counters and meters counted across gaps (two readings further
    /// apart than the signal's maximum interval), by the field it would
    /// have gone to (`produced`, `energy_kwh`, `water_feed_m3` …): known in
    /// total, unknown in time, so in no window's figures; reported in the
    /// window of the reading after the gap.
    #[serde(default)]
    pub unmeasured: BTreeMap<Arc<str>, f64>,
    /// Gaps of counters and meters that ended in the period.
    #[serde(default)]
    pub meter_gaps: u64,
    /// Purified-water quality: time covered by a fresh conductivity (TOC)
    /// reading, and the part of it within the USP limit, ms.
    pub conductivity_measured_ms: i64,
    pub conductivity_within_ms: i64,
    pub toc_measured_ms: i64,
    pub toc_within_ms: i64,
    /// Readings that crossed a USP limit (the previous reading was within).
    pub usp_excursions: u64,
}

/// `a + b` where either may be unknown: known as soon as one is.
fn add_opt<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x + y),
        (x, y) => x.or(y),
    }
}

/// Counts never wrap: a saturated total is visibly implausible, a wrapped
/// one looks like a small real number.
fn add_count(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.saturating_add(y)),
        (x, y) => x.or(y),
    }
}

fn sub_count(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.saturating_sub(y)),
        (x, _) => x,
    }
}

fn sub_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x - y),
        (x, _) => x,
    }
}

impl KpiSums {
    pub fn add(&mut self, o: &KpiSums) {
        self.messages = self.messages.saturating_add(o.messages);
        self.assets = self.assets.saturating_add(o.assets);
        self.assets_reporting = self.assets_reporting.saturating_add(o.assets_reporting);
        self.sites = self.sites.saturating_add(o.sites);
        self.sites_reporting = self.sites_reporting.saturating_add(o.sites_reporting);
        self.running_ms = self.running_ms.saturating_add(o.running_ms);
        self.planned_stop_ms = self.planned_stop_ms.saturating_add(o.planned_stop_ms);
        self.unplanned_stop_ms = self.unplanned_stop_ms.saturating_add(o.unplanned_stop_ms);
        for (reason, ms) in &o.unplanned_stop_by_reason_ms {
            let v = self
                .unplanned_stop_by_reason_ms
                .entry(reason.clone())
                .or_default();
            *v = v.saturating_add(*ms);
        }
        self.micro_stop_ms = self.micro_stop_ms.saturating_add(o.micro_stop_ms);
        self.changeover_ms = self.changeover_ms.saturating_add(o.changeover_ms);
        self.no_shift_ms = self.no_shift_ms.saturating_add(o.no_shift_ms);
        self.unknown_ms = self.unknown_ms.saturating_add(o.unknown_ms);
        self.unplanned_stops = self.unplanned_stops.saturating_add(o.unplanned_stops);
        self.micro_stops = self.micro_stops.saturating_add(o.micro_stops);
        self.rejected_state_messages = self
            .rejected_state_messages
            .saturating_add(o.rejected_state_messages);
        self.produced = add_count(self.produced, o.produced);
        self.good = add_count(self.good, o.good);
        self.reject = add_count(self.reject, o.reject);
        self.ideal_time_ms += o.ideal_time_ms;
        self.good_ideal_ms += o.good_ideal_ms;
        self.startup_ideal_ms += o.startup_ideal_ms;
        self.startup_good_ideal_ms += o.startup_good_ideal_ms;
        self.energy_kwh = add_opt(self.energy_kwh, o.energy_kwh);
        self.demand_kwh += o.demand_kwh;
        self.energy_meter_ms = self.energy_meter_ms.saturating_add(o.energy_meter_ms);
        self.energy_measured_ms = self.energy_measured_ms.saturating_add(o.energy_measured_ms);
        self.energy_cost = add_opt(self.energy_cost, o.energy_cost);
        self.priced_kwh += o.priced_kwh;
        self.co2e_kg = add_opt(self.co2e_kg, o.co2e_kg);
        self.co2e_factor_kwh += o.co2e_factor_kwh;
        self.power_kw = add_opt(self.power_kw, o.power_kw);
        self.water_feed_m3 = add_opt(self.water_feed_m3, o.water_feed_m3);
        self.water_permeate_m3 = add_opt(self.water_permeate_m3, o.water_permeate_m3);
        self.water_concentrate_m3 = add_opt(self.water_concentrate_m3, o.water_concentrate_m3);
        for (field, v) in &o.unmeasured {
            *self.unmeasured.entry(field.clone()).or_default() += v;
        }
        self.meter_gaps = self.meter_gaps.saturating_add(o.meter_gaps);
        self.conductivity_measured_ms = self
            .conductivity_measured_ms
            .saturating_add(o.conductivity_measured_ms);
        self.conductivity_within_ms = self
            .conductivity_within_ms
            .saturating_add(o.conductivity_within_ms);
        self.toc_measured_ms = self.toc_measured_ms.saturating_add(o.toc_measured_ms);
        self.toc_within_ms = self.toc_within_ms.saturating_add(o.toc_within_ms);
        self.usp_excursions = self.usp_excursions.saturating_add(o.usp_excursions);
    }

    /// Takes `o` back out of a sum it was added to (a correction replaces
    /// a window's contribution to a shift or day).
    pub fn sub(&mut self, o: &KpiSums) {
        self.messages = self.messages.saturating_sub(o.messages);
        self.assets = self.assets.saturating_sub(o.assets);
        self.assets_reporting = self.assets_reporting.saturating_sub(o.assets_reporting);
        self.sites = self.sites.saturating_sub(o.sites);
        self.sites_reporting = self.sites_reporting.saturating_sub(o.sites_reporting);
        self.running_ms -= o.running_ms;
        self.planned_stop_ms -= o.planned_stop_ms;
        self.unplanned_stop_ms -= o.unplanned_stop_ms;
        for (reason, ms) in &o.unplanned_stop_by_reason_ms {
            if let Some(v) = self.unplanned_stop_by_reason_ms.get_mut(reason) {
                *v -= ms;
                if *v == 0 {
                    self.unplanned_stop_by_reason_ms.remove(reason);
                }
            }
        }
        self.micro_stop_ms -= o.micro_stop_ms;
        self.changeover_ms -= o.changeover_ms;
        self.no_shift_ms -= o.no_shift_ms;
        self.unknown_ms -= o.unknown_ms;
        self.unplanned_stops = self.unplanned_stops.saturating_sub(o.unplanned_stops);
        self.micro_stops = self.micro_stops.saturating_sub(o.micro_stops);
        self.rejected_state_messages = self
            .rejected_state_messages
            .saturating_sub(o.rejected_state_messages);
        self.produced = sub_count(self.produced, o.produced);
        self.good = sub_count(self.good, o.good);
        self.reject = sub_count(self.reject, o.reject);
        self.ideal_time_ms -= o.ideal_time_ms;
        self.good_ideal_ms -= o.good_ideal_ms;
        self.startup_ideal_ms -= o.startup_ideal_ms;
        self.startup_good_ideal_ms -= o.startup_good_ideal_ms;
        self.energy_kwh = sub_opt(self.energy_kwh, o.energy_kwh);
        self.demand_kwh -= o.demand_kwh;
        self.energy_meter_ms -= o.energy_meter_ms;
        self.energy_measured_ms -= o.energy_measured_ms;
        self.energy_cost = sub_opt(self.energy_cost, o.energy_cost);
        self.priced_kwh -= o.priced_kwh;
        self.co2e_kg = sub_opt(self.co2e_kg, o.co2e_kg);
        self.co2e_factor_kwh -= o.co2e_factor_kwh;
        self.power_kw = sub_opt(self.power_kw, o.power_kw);
        self.water_feed_m3 = sub_opt(self.water_feed_m3, o.water_feed_m3);
        self.water_permeate_m3 = sub_opt(self.water_permeate_m3, o.water_permeate_m3);
        self.water_concentrate_m3 = sub_opt(self.water_concentrate_m3, o.water_concentrate_m3);
        for (field, v) in &o.unmeasured {
            if let Some(x) = self.unmeasured.get_mut(field) {
                *x -= v;
                if *x == 0.0 {
                    self.unmeasured.remove(field);
                }
            }
        }
        self.meter_gaps = self.meter_gaps.saturating_sub(o.meter_gaps);
        self.conductivity_measured_ms -= o.conductivity_measured_ms;
        self.conductivity_within_ms -= o.conductivity_within_ms;
        self.toc_measured_ms -= o.toc_measured_ms;
        self.toc_within_ms -= o.toc_within_ms;
        self.usp_excursions = self.usp_excursions.saturating_sub(o.usp_excursions);
    }

    /// Asset-time covered by the time model (all buckets).
    pub fn modelled_ms(&self) -> i64 {
        self.running_ms
            + self.planned_stop_ms
            + self.unplanned_stop_ms
            + self.micro_stop_ms
            + self.changeover_ms
            + self.no_shift_ms
            + self.unknown_ms
    }

    /// Planned busy time (ISO 22400-2): planned operation time less planned
    /// downtime. No-shift and unknown time are outside it: unknown is never
    /// counted as downtime.
    pub fn planned_busy_ms(&self) -> i64 {
        self.actual_production_ms() + self.unplanned_stop_ms + self.changeover_ms
    }

    /// Actual production time (ISO 22400-2 APT): running, including the
    /// micro-stops, which are a performance loss rather than downtime.
    pub fn actual_production_ms(&self) -> i64 {
        self.running_ms + self.micro_stop_ms
    }
}

/// Ratios derived from [`KpiSums`]; `None` where the denominator is zero
/// or an input is unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KpiRatios {
    /// Actual production time / planned busy time.
    pub availability: Option<f64>,
    /// Ideal cycle time × produced / actual production time (raw, may
    /// exceed 1); `None` without counter data.
    pub performance: Option<f64>,
    /// Good / produced, at most 1.
    pub quality: Option<f64>,
    /// A × min(P, 1) × Q; 0 when any factor is 0.
    pub oee: Option<f64>,
    pub kwh_per_good_unit: Option<f64>,
    /// Mean power over the window while the scope did not produce at all,
    /// kW; only where its machine states were known and its meters
    /// measured the whole window.
    pub standby_kw: Option<f64>,
    /// Permeate (recovered) / feed.
    pub water_recovery: Option<f64>,
    /// Water intensity: feed water / good units, m³ per unit.
    pub water_m3_per_good_unit: Option<f64>,
    /// Share of modelled asset-time that is not UNKNOWN.
    pub data_coverage: Option<f64>,
    /// Share of the scope's asset-windows that reported (`assets_reporting`
    /// / `assets`).
    pub asset_coverage: Option<f64>,
    /// Share of the scope's site-windows that reported (group and site
    /// records).
    pub site_coverage: Option<f64>,
    /// Share of `energy_kwh` priced by a tariff (`energy_cost` covers that part).
    pub energy_cost_coverage: Option<f64>,
    /// Share of `energy_kwh` with an emission factor (`co2e_kg` covers that part).
    pub co2e_coverage: Option<f64>,
    /// OEE × planned busy time / calendar (modelled) time.
    pub teep: Option<f64>,
    /// Mean operating time between failures: running / unplanned stops, ms.
    pub mtbf_ms: Option<f64>,
    /// Mean time to repair: unplanned stop time / unplanned stops, ms.
    pub mttr_ms: Option<f64>,
    /// The six big losses, ms of asset-time (TPM; see docs/kpis.md). With
    /// P ≤ 1 they and the fully productive time (`good_ideal_ms`) add up to
    /// the planned busy time. `None` where their inputs are unknown: the
    /// time losses without a time model, the speed and minor-stop losses
    /// without a time model or counter data, the quality losses without
    /// produced and good counts.
    pub loss_breakdown_ms: Option<f64>,
    pub loss_setup_ms: Option<f64>,
    pub loss_minor_stop_ms: Option<f64>,
    pub loss_speed_ms: Option<f64>,
    pub loss_defect_ms: Option<f64>,
    pub loss_startup_ms: Option<f64>,
    /// Raw performance above 1: the ideal cycle time is probably too long
    /// (OEE uses min(P, 1)).
    pub ideal_rate_suspect: bool,
    /// Share of measured time with conductivity within USP <645> (1.3 µS/cm).
    pub conductivity_within_usp: Option<f64>,
    /// Share of measured time with TOC within USP <643> (500 ppb).
    pub toc_within_usp: Option<f64>,
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// A ratio of two quantities either of which may be unknown.
fn ratio_of(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    ratio(num?, den?)
}

impl KpiRatios {
    pub fn from_sums(s: &KpiSums, window_ms: i64) -> Self {
        let apt = s.actual_production_ms() as f64;
        let modelled = s.modelled_ms();
        let known = modelled - s.unknown_ms;
        let availability = ratio(apt, s.planned_busy_ms() as f64);
        // Without counter data the performance is unknown, not 0 (which
        // would make the OEE 0).
        let performance = s.produced.and_then(|_| ratio(s.ideal_time_ms, apt));
        let produced = s.produced.map(|p| p as f64);
        let good = s.good.map(|g| g as f64);
        // Bounded at 1: a good counter read later than the total counter can
        // briefly count more good units than produced in one window (the raw
        // `good` and `produced` stay in the record).
        let quality = ratio_of(good, produced).map(|q| q.min(1.0));
        let factors = [availability, performance.map(|p| p.min(1.0)), quality];
        let oee = if factors.contains(&Some(0.0)) {
            Some(0.0)
        } else if let [Some(a), Some(p), Some(q)] = factors {
            Some(a * p * q)
        } else {
            None
        };
        // Ideal time of units made but not good; the part made during
        // start-ups is the yield loss, the rest process defects.
        let quality_loss = (s.ideal_time_ms - s.good_ideal_ms).max(0.0);
        let startup_loss = (s.startup_ideal_ms - s.startup_good_ideal_ms).clamp(0.0, quality_loss);
        // Performance loss: APT not covered by the ideal time of what was
        // made; minor stops first (they are part of APT), the rest is
        // reduced speed. Both 0 when the ideal rate is beaten (see
        // `ideal_rate_suspect`), so that with P ≤ 1 the losses add up.
        let performance_loss = (apt - s.ideal_time_ms).max(0.0);
        let minor_stop_loss = (s.micro_stop_ms as f64).min(performance_loss);
        let time_model = (modelled > 0).then_some(());
        // The performance losses need the actual production time and the
        // units; the quality losses only the units (their ideal times).
        let counted = s.produced.and(time_model);
        let graded = s.good.and(s.produced);
        // Standby power only where it is known: the machine states known
        // for the whole window (a stale machine may have been running), none
        // of it producing, and every meter of the scope measured the whole
        // window (a silent meter is not 0 kW).
        let meters_measured = s.energy_meter_ms > 0 && s.energy_measured_ms >= s.energy_meter_ms;
        let states_known = modelled > 0 && s.unknown_ms == 0;
        let standby_kw = s
            .energy_kwh
            .filter(|_| states_known && apt == 0.0 && meters_measured && window_ms > 0)
            .map(|e| e * 3_600_000.0 / window_ms as f64);
        KpiRatios {
            availability,
            performance,
            quality,
            oee,
            kwh_per_good_unit: ratio_of(s.energy_kwh, good),
            standby_kw,
            water_recovery: ratio_of(s.water_permeate_m3, s.water_feed_m3),
            water_m3_per_good_unit: ratio_of(s.water_feed_m3, good),
            data_coverage: ratio(known as f64, modelled as f64),
            asset_coverage: ratio(s.assets_reporting as f64, s.assets as f64),
            site_coverage: ratio(s.sites_reporting as f64, s.sites as f64),
            energy_cost_coverage: ratio_of(Some(s.priced_kwh), s.energy_kwh),
            co2e_coverage: ratio_of(Some(s.co2e_factor_kwh), s.energy_kwh),
            teep: oee.and_then(|o| ratio(o * s.planned_busy_ms() as f64, modelled as f64)),
            mtbf_ms: ratio(apt, s.unplanned_stops as f64),
            mttr_ms: ratio(s.unplanned_stop_ms as f64, s.unplanned_stops as f64),
            loss_breakdown_ms: time_model.map(|_| s.unplanned_stop_ms as f64),
            loss_setup_ms: time_model.map(|_| s.changeover_ms as f64),
            loss_minor_stop_ms: counted.map(|_| minor_stop_loss),
            loss_speed_ms: counted.map(|_| performance_loss - minor_stop_loss),
            loss_defect_ms: graded.map(|_| (quality_loss - startup_loss).max(0.0)),
            loss_startup_ms: graded.map(|_| startup_loss),
            ideal_rate_suspect: performance.is_some_and(|p| p > 1.0),
            conductivity_within_usp: ratio(
                s.conductivity_within_ms as f64,
                s.conductivity_measured_ms as f64,
            ),
            toc_within_usp: ratio(s.toc_within_ms as f64, s.toc_measured_ms as f64),
        }
    }
}

/// A production day's energy against the site's ISO 50006 baseline
/// (regression of daily kWh on production and, optionally, degree-days);
/// all `None` until the baseline is fitted, and on other records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BaselineFields {
    /// Expected energy of the day from the baseline model, kWh.
    pub baseline_expected_kwh: Option<f64>,
    /// Actual − expected, kWh (negative: savings).
    pub baseline_deviation_kwh: Option<f64>,
    /// Cumulative sum of the deviations since the baseline was fitted, kWh.
    pub baseline_cusum_kwh: Option<f64>,
    /// Coefficient of determination of the baseline fit.
    pub baseline_r2: Option<f64>,
    /// Model: kWh = intercept + kwh_per_unit × produced (+ kwh_per_degree_day × degree-days).
    pub baseline_intercept_kwh: Option<f64>,
    pub baseline_kwh_per_unit: Option<f64>,
    pub baseline_kwh_per_degree_day: Option<f64>,
    /// The day's degree-days, when the baseline uses them.
    pub degree_days: Option<f64>,
}

/// The period a KPI record covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// One event-time window (`pipeline.window_secs`).
    Window,
    /// One shift instance of the site's calendar, in its local time.
    Shift,
    /// One production day of the site, in its local time (23 to 25 hours).
    Day,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Window => "window",
            Period::Shift => "shift",
            Period::Day => "day",
        }
    }
}

/// KPIs of one scope over one closed window, shift or production day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiRecord {
    /// Bounds of the window, or of the shift or production day (UTC ms).
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    #[serde(flatten)]
    pub scope: ScopeKey,
    /// 0 for the first result of a window; a correction carries a higher one.
    pub revision: u32,
    /// What the record covers: a window, a shift or a production day.
    pub period: Period,
    /// The site's production day (local date) of the window, or of the
    /// shift's start; `None` at group level or without a site calendar.
    pub production_day: Option<Arc<str>>,
    /// The shift of the window, or of a shift record.
    pub shift: Option<Arc<str>>,
    /// `false` for a shift or day record emitted before the period ended
    /// (the input ended first).
    pub complete: bool,
    /// Electric demand, kW: the mean power of a window (energy / window
    /// length); for a shift or day, the highest window demand in it;
    /// `None` where no meter measured any of the window.
    pub peak_demand_kw: Option<f64>,
    /// ISO 50006 energy baseline of a site's production day (once fitted).
    #[serde(flatten)]
    pub baseline: BaselineFields,
    #[serde(flatten)]
    pub sums: KpiSums,
    #[serde(flatten)]
    pub ratios: KpiRatios,
}

impl KpiRecord {
    pub fn new(window_start_ms: i64, window_end_ms: i64, scope: ScopeKey, sums: KpiSums) -> Self {
        let ratios = KpiRatios::from_sums(&sums, window_end_ms - window_start_ms);
        KpiRecord {
            window_start_ms,
            window_end_ms,
            scope,
            revision: 0,
            period: Period::Window,
            production_day: None,
            shift: None,
            complete: true,
            // Unknown, not 0, where no meter measured any of the window.
            peak_demand_kw: (window_end_ms > window_start_ms && sums.energy_measured_ms > 0)
                .then(|| sums.demand_kwh * 3_600_000.0 / (window_end_ms - window_start_ms) as f64),
            baseline: BaselineFields::default(),
            sums,
            ratios,
        }
    }

    /// Appends the record as one JSON object, byte for byte what
    /// `serde_json` writes for it (a test checks that, with every field
    /// set), about twice as fast: the keys are written as constants instead
    /// of being escaped and written piece by piece, field after field. The
    /// batch mode writes tens of thousands of records per minute of data.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        fn val<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
            // Into a Vec, and these values always serialize: cannot fail.
            let _ = serde_json::to_writer(&mut *out, v);
        }
        macro_rules! fields {
            ($($owner:expr => [$($f:ident),+ $(,)?]),+ $(,)?) => {
                $($(
                    out.extend_from_slice(concat!(",\"", stringify!($f), "\":").as_bytes());
                    val(out, &$owner.$f);
                )+)+
            };
        }
        out.extend_from_slice(b"{\"window_start_ms\":");
        val(out, &self.window_start_ms);
        // The order of the fields and of the flattened structs' fields.
        fields!(
            self => [window_end_ms],
            self.scope => [level, site, area, line, asset],
            self => [revision, period, production_day, shift, complete, peak_demand_kw],
            self.baseline => [
                baseline_expected_kwh, baseline_deviation_kwh, baseline_cusum_kwh,
                baseline_r2, baseline_intercept_kwh, baseline_kwh_per_unit,
                baseline_kwh_per_degree_day, degree_days,
            ],
            self.sums => [
                messages, assets, assets_reporting, sites, sites_reporting,
                running_ms, planned_stop_ms, unplanned_stop_ms,
                unplanned_stop_by_reason_ms, micro_stop_ms, changeover_ms, no_shift_ms,
                unknown_ms, unplanned_stops, micro_stops, rejected_state_messages,
                produced, good, reject, ideal_time_ms, good_ideal_ms, startup_ideal_ms,
                startup_good_ideal_ms, energy_kwh, demand_kwh, energy_meter_ms,
                energy_measured_ms, energy_cost, priced_kwh, co2e_kg, co2e_factor_kwh,
                power_kw, water_feed_m3, water_permeate_m3, water_concentrate_m3,
                unmeasured, meter_gaps,
                conductivity_measured_ms, conductivity_within_ms, toc_measured_ms,
                toc_within_ms, usp_excursions,
            ],
            self.ratios => [
                availability, performance, quality, oee, kwh_per_good_unit, standby_kw,
                water_recovery, water_m3_per_good_unit, data_coverage, asset_coverage,
                site_coverage, energy_cost_coverage, co2e_coverage, teep, mtbf_ms,
                mttr_ms, loss_breakdown_ms, loss_setup_ms, loss_minor_stop_ms,
                loss_speed_ms, loss_defect_ms, loss_startup_ms, ideal_rate_suspect,
                conductivity_within_usp, toc_within_usp,
            ],
        );
        out.push(b'}');
    }

    /// A KPI by its field name, for alert rules and reports.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let s = &self.sums;
        let r = &self.ratios;
        Some(match name {
            "availability" => r.availability?,
            "performance" => r.performance?,
            "quality" => r.quality?,
            "oee" => r.oee?,
            "kwh_per_good_unit" => r.kwh_per_good_unit?,
            "standby_kw" => r.standby_kw?,
            "water_recovery" => r.water_recovery?,
            "data_coverage" => r.data_coverage?,
            "teep" => r.teep?,
            "mtbf_ms" => r.mtbf_ms?,
            "mttr_ms" => r.mttr_ms?,
            "unplanned_stops" => s.unplanned_stops as f64,
            "asset_coverage" => r.asset_coverage?,
            "site_coverage" => r.site_coverage?,
            "conductivity_within_usp" => r.conductivity_within_usp?,
            "toc_within_usp" => r.toc_within_usp?,
            "usp_excursions" => s.usp_excursions as f64,
            "energy_kwh" => s.energy_kwh?,
            "power_kw" => s.power_kw?,
            "peak_demand_kw" => self.peak_demand_kw?,
            "produced" => s.produced? as f64,
            "good" => s.good? as f64,
            "reject" => s.reject? as f64,
            "running_ms" => s.running_ms as f64,
            "unplanned_stop_ms" => s.unplanned_stop_ms as f64,
            "micro_stop_ms" => s.micro_stop_ms as f64,
            "micro_stops" => s.micro_stops as f64,
            "unknown_ms" => s.unknown_ms as f64,
            "water_feed_m3" => s.water_feed_m3?,
            "water_permeate_m3" => s.water_permeate_m3?,
            "water_concentrate_m3" => s.water_concentrate_m3?,
            "energy_cost" => s.energy_cost?,
            "co2e_kg" => s.co2e_kg?,
            _ => return None,
        })
    }

    /// Names accepted by [`KpiRecord::metric`].
    pub const METRICS: &'static [&'static str] = &[
        "availability",
        "performance",
        "quality",
        "oee",
        "kwh_per_good_unit",
        "standby_kw",
        "water_recovery",
        "data_coverage",
        "teep",
        "mtbf_ms",
        "mttr_ms",
        "unplanned_stops",
        "asset_coverage",
        "site_coverage",
        "conductivity_within_usp",
        "toc_within_usp",
        "usp_excursions",
        "energy_kwh",
        "power_kw",
        "peak_demand_kw",
        "produced",
        "good",
        "reject",
        "running_ms",
        "unplanned_stop_ms",
        "micro_stop_ms",
        "micro_stops",
        "unknown_ms",
        "water_feed_m3",
        "water_permeate_m3",
        "water_concentrate_m3",
        "energy_cost",
        "co2e_kg",
    ];
}

/// Statistics of one numeric signal of one asset over one closed window,
/// the input of telemetry alert rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalWindow {
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub asset: AssetKey,
    pub signal: Arc<str>,
    pub role: Role,
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// The value with the latest event time in the window.
    pub last: f64,
}

/// Everything the stream emits, in a deterministic order: by window end,
/// then KPIs before signals, then by scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StreamOutput {
    Kpi(Box<KpiRecord>),
    Signal(SignalWindow),
}

impl StreamOutput {
    pub fn window_end_ms(&self) -> i64 {
        match self {
            StreamOutput::Kpi(k) => k.window_end_ms,
            StreamOutput::Signal(s) => s.window_end_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_iso22400() {
        // 480-min shift, 30-min break, 47 min unplanned stops, ideal cycle 1 s,
        // 19,271 produced, 18,848 good.
        let min = 60_000;
        let s = KpiSums {
            running_ms: (480 - 30 - 47) * min,
            planned_stop_ms: 30 * min,
            unplanned_stop_ms: 47 * min,
            produced: Some(19_271),
            good: Some(18_848),
            ideal_time_ms: 19_271_000.0,
            ..Default::default()
        };
        let r = KpiRatios::from_sums(&s, 480 * min);
        assert!((r.availability.unwrap() - 0.895_556).abs() < 1e-6);
        assert!((r.performance.unwrap() - 0.796_981).abs() < 1e-6);
        assert!((r.quality.unwrap() - 0.978_050).abs() < 1e-6);
        assert!((r.oee.unwrap() - 0.698_074).abs() < 1e-6);
        // No no-shift or UNKNOWN time: calendar = 480 min, PBT = 450 min.
        assert!((r.teep.unwrap() - 0.698_074 * 450.0 / 480.0).abs() < 1e-6);
        assert!(!r.ideal_rate_suspect);
    }

    /// Every field set (struct literals without `..Default`: a new field
    /// does not compile here until it is given a value, and then the fast
    /// writer must write it too).
    fn full_record() -> KpiRecord {
        let mut n = 0.0;
        let mut f = || {
            n += 1.0;
            n + 0.125
        };
        let sums = KpiSums {
            messages: 1,
            assets: 22,
            assets_reporting: 23,
            sites: 24,
            sites_reporting: 25,
            running_ms: 2,
            planned_stop_ms: 3,
            unplanned_stop_ms: 4,
            unplanned_stop_by_reason_ms: [("jam".into(), 3), ("a \"quoted\" \\ reason".into(), 1)]
                .into_iter()
                .collect(),
            micro_stop_ms: 5,
            changeover_ms: 6,
            no_shift_ms: 7,
            unknown_ms: -8,
            unplanned_stops: 9,
            micro_stops: 10,
            rejected_state_messages: 11,
            produced: Some(12),
            good: Some(13),
            reject: Some(14),
            ideal_time_ms: f(),
            good_ideal_ms: f(),
            startup_ideal_ms: f(),
            startup_good_ideal_ms: f(),
            energy_kwh: Some(1e-7),
            demand_kwh: f(),
            energy_meter_ms: 20,
            energy_measured_ms: 21,
            energy_cost: Some(1e21),
            priced_kwh: f(),
            co2e_kg: Some(f()),
            co2e_factor_kwh: f(),
            power_kw: Some(f()),
            water_feed_m3: Some(f()),
            water_permeate_m3: Some(f()),
            water_concentrate_m3: Some(f()),
            unmeasured: [("produced".into(), 7.0), ("energy_kwh".into(), f())]
                .into_iter()
                .collect(),
            meter_gaps: 26,
            conductivity_measured_ms: 15,
            conductivity_within_ms: 16,
            toc_measured_ms: 17,
            toc_within_ms: 18,
            usp_excursions: 19,
        };
        KpiRecord {
            window_start_ms: 1_772_427_600_000,
            window_end_ms: 1_772_427_660_000,
            scope: AssetKey::new("s\u{e9}te", "a/r", "l\n1", "x").scope(crate::Level::Asset),
            revision: 3,
            period: Period::Shift,
            production_day: Some("2026-03-02".into()),
            shift: Some("night".into()),
            complete: false,
            peak_demand_kw: Some(f()),
            baseline: BaselineFields {
                baseline_expected_kwh: Some(f()),
                baseline_deviation_kwh: Some(-f()),
                baseline_cusum_kwh: Some(f()),
                baseline_r2: Some(0.1 + 0.2),
                baseline_intercept_kwh: Some(f()),
                baseline_kwh_per_unit: Some(f()),
                baseline_kwh_per_degree_day: Some(f()),
                degree_days: Some(f()),
            },
            sums,
            ratios: KpiRatios {
                availability: Some(f()),
                performance: Some(f()),
                quality: Some(f()),
                oee: Some(f()),
                kwh_per_good_unit: Some(f()),
                standby_kw: Some(f()),
                water_recovery: Some(f()),
                water_m3_per_good_unit: Some(f()),
                data_coverage: Some(f()),
                asset_coverage: Some(f()),
                site_coverage: Some(f()),
                energy_cost_coverage: Some(f()),
                co2e_coverage: Some(f()),
                teep: Some(f()),
                mtbf_ms: Some(f()),
                mttr_ms: Some(f()),
                loss_breakdown_ms: Some(f()),
                loss_setup_ms: Some(f()),
                loss_minor_stop_ms: Some(f()),
                loss_speed_ms: Some(f()),
                loss_defect_ms: Some(f()),
                loss_startup_ms: Some(f()),
                ideal_rate_suspect: true,
                conductivity_within_usp: Some(f()),
                toc_within_usp: Some(f()),
            },
        }
    }

    #[test]
    fn fast_json_is_serde_json_byte_for_byte() {
        let full = full_record();
        let text = serde_json::to_string(&full).unwrap();
        assert!(!text.contains("null"), "every field is set: {text}");
        let mut sparse = KpiRecord::new(0, 60_000, ScopeKey::group(), KpiSums::default());
        sparse.ratios.oee = Some(f64::NAN);
        sparse.peak_demand_kw = Some(f64::INFINITY);
        for record in [full, sparse] {
            let mut fast = Vec::new();
            record.write_json(&mut fast);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                serde_json::to_string(&record).unwrap()
            );
        }
    }

    #[test]
    fn the_six_losses_add_up_to_planned_busy_time_with_micro_stops() {
        // 40 s running, 20 s of micro-stops, 50 s of ideal time, all good:
        // P = 50 / 60; minor stops take 10 s of the 20, speed nothing.
        let s = KpiSums {
            running_ms: 40_000,
            micro_stop_ms: 20_000,
            ideal_time_ms: 50_000.0,
            good_ideal_ms: 50_000.0,
            produced: Some(50),
            good: Some(50),
            ..Default::default()
        };
        let r = KpiRatios::from_sums(&s, 60_000);
        assert!(r.performance.unwrap() <= 1.0);
        assert_eq!(
            (r.loss_minor_stop_ms, r.loss_speed_ms),
            (Some(10_000.0), Some(0.0))
        );
        let losses: f64 = [
            r.loss_breakdown_ms,
            r.loss_setup_ms,
            r.loss_minor_stop_ms,
            r.loss_speed_ms,
            r.loss_defect_ms,
            r.loss_startup_ms,
        ]
        .into_iter()
        .map(|l| l.expect("every loss is known"))
        .sum();
        assert_eq!(losses + s.good_ideal_ms, s.planned_busy_ms() as f64);
        // Slower than ideal: all the micro-stop time is minor stops.
        let slow = KpiSums {
            ideal_time_ms: 30_000.0,
            good_ideal_ms: 30_000.0,
            ..s
        };
        let r = KpiRatios::from_sums(&slow, 60_000);
        assert_eq!(
            (r.loss_minor_stop_ms, r.loss_speed_ms),
            (Some(20_000.0), Some(10_000.0))
        );
    }

    /// Issue #8 item 6: a figure without data is null, never 0, and a
    /// roll-up says how much of its scope had data.
    #[test]
    fn unknown_is_not_zero() {
        // Running the whole window, but no counter data: performance and
        // OEE are unknown (they were 0), availability is known.
        let s = KpiSums {
            running_ms: 60_000,
            assets: 1,
            assets_reporting: 1,
            ..Default::default()
        };
        let r = KpiRatios::from_sums(&s, 60_000);
        assert_eq!(r.availability, Some(1.0));
        assert_eq!((r.performance, r.quality, r.oee), (None, None, None));
        assert_eq!((r.loss_speed_ms, r.loss_defect_ms), (None, None));
        assert_eq!(r.loss_breakdown_ms, Some(0.0));
        // A stale line: every machine UNKNOWN, its meter silent: no standby
        // power and no demand (they were 0 kW).
        let stale = KpiRecord::new(
            0,
            60_000,
            ScopeKey::group(),
            KpiSums {
                unknown_ms: 60_000,
                energy_meter_ms: 60_000,
                assets: 2,
                ..Default::default()
            },
        );
        assert_eq!(
            (stale.ratios.standby_kw, stale.peak_demand_kw),
            (None, None)
        );
        assert_eq!(stale.ratios.kwh_per_good_unit, None);
        assert_eq!(stale.ratios.asset_coverage, Some(0.0));
        // Stopped, states known, the meter measured the whole window: 30 kW.
        let idle = KpiRecord::new(
            0,
            60_000,
            ScopeKey::group(),
            KpiSums {
                planned_stop_ms: 60_000,
                energy_kwh: Some(0.5),
                demand_kwh: 0.5,
                energy_meter_ms: 60_000,
                energy_measured_ms: 60_000,
                ..Default::default()
            },
        );
        assert_eq!(idle.ratios.standby_kw, Some(30.0));
        assert_eq!(idle.peak_demand_kw, Some(30.0));
        // A group of a priced site and one without a tariff: the cost is
        // that of the priced energy, and the record says it covers a quarter.
        let mut group = KpiSums {
            energy_kwh: Some(10.0),
            energy_cost: Some(2.0),
            priced_kwh: 10.0,
            sites: 1,
            sites_reporting: 1,
            ..Default::default()
        };
        group.add(&KpiSums {
            energy_kwh: Some(30.0),
            sites: 1,
            ..Default::default()
        });
        let r = KpiRatios::from_sums(&group, 60_000);
        assert_eq!(group.energy_cost, Some(2.0));
        assert_eq!(r.energy_cost_coverage, Some(0.25));
        assert_eq!(r.co2e_coverage, Some(0.0));
        assert_eq!(r.site_coverage, Some(0.5));
        // Sums never wrap (issue #8 item 7): they saturate.
        let mut big = KpiSums {
            produced: Some(u64::MAX - 1),
            ..Default::default()
        };
        big.add(&KpiSums {
            produced: Some(5),
            ..Default::default()
        });
        assert_eq!(big.produced, Some(u64::MAX));
    }

    #[test]
    fn mtbf_and_mttr_from_stop_count() {
        let s = KpiSums {
            running_ms: 50_000,
            unplanned_stop_ms: 10_000,
            unplanned_stops: 4,
            ..Default::default()
        };
        let r = KpiRatios::from_sums(&s, 60_000);
        assert_eq!(r.mtbf_ms, Some(12_500.0));
        assert_eq!(r.mttr_ms, Some(2_500.0));
        assert_eq!(
            KpiRatios::from_sums(&KpiSums::default(), 60_000).mtbf_ms,
            None
        );
    }

    #[test]
    fn zero_availability_gives_zero_oee_and_no_production_no_quality() {
        let s = KpiSums {
            unplanned_stop_ms: 60_000,
            ..Default::default()
        };
        let r = KpiRatios::from_sums(&s, 60_000);
        assert_eq!(r.availability, Some(0.0));
        assert_eq!(r.quality, None);
        assert_eq!(r.oee, Some(0.0));
    }

    #[test]
    fn quality_is_bounded_when_good_leads_produced() {
        let s = KpiSums {
            running_ms: 1000,
            produced: Some(1),
            good: Some(2),
            ideal_time_ms: 1000.0,
            ..Default::default()
        };
        let r = KpiRatios::from_sums(&s, 1000);
        assert_eq!(r.quality, Some(1.0));
        assert_eq!(r.oee, Some(1.0));
    }

    #[test]
    fn performance_above_one_is_capped_in_oee_only() {
        let s = KpiSums {
            running_ms: 1000,
            produced: Some(2),
            good: Some(2),
            ideal_time_ms: 2000.0,
            ..Default::default()
        };
        let r = KpiRatios::from_sums(&s, 1000);
        assert_eq!(r.performance, Some(2.0));
        assert_eq!(r.oee, Some(1.0));
        assert!(r.ideal_rate_suspect);
    }
}
