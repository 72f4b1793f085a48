//! The derived part of a KPI record: ratios computed from the sums (never
//! averaged across scopes), and a site's energy baseline of the day.

use super::table::kpi_table;
use super::KpiSums;
use serde::{Deserialize, Serialize};

kpi_table! {
    derived;
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
        /// Specific energy: energy / good units, kWh per unit (ISO 50006 EnPI).
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
        /// Setup and adjustments: changeover time, ms.
        pub loss_setup_ms: Option<f64>,
        /// Minor stops: micro-stops, at most the performance loss, ms.
        pub loss_minor_stop_ms: Option<f64>,
        /// Reduced speed: the rest of the performance loss, ms.
        pub loss_speed_ms: Option<f64>,
        /// Process defects: the quality loss outside start-up, ms.
        pub loss_defect_ms: Option<f64>,
        /// Reduced yield: the quality loss during start-up, ms.
        pub loss_startup_ms: Option<f64>,
        /// Raw performance above 1: the ideal cycle time is probably too long
        /// (OEE uses min(P, 1)).
        pub ideal_rate_suspect: bool,
        /// Share of measured time with conductivity within USP <645> (1.3 µS/cm).
        pub conductivity_within_usp: Option<f64>,
        /// Share of measured time with TOC within USP <643> (500 ppb).
        pub toc_within_usp: Option<f64>,
    }
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// A ratio of two quantities either of which may be unknown.
fn ratio_of(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    ratio(num?, den?)
}

impl KpiRatios {
    /// The ratios of `s` over a period of `window_ms` (the standby power
    /// is energy over that length).
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

kpi_table! {
    derived;
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
        /// The model's kWh per unit produced.
        pub baseline_kwh_per_unit: Option<f64>,
        /// The model's kWh per degree-day (`None` without degree-days).
        pub baseline_kwh_per_degree_day: Option<f64>,
        /// The day's degree-days, when the baseline uses them.
        pub degree_days: Option<f64>,
    }
}
