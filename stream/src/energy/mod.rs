//! Energy cost, CO2e and ISO 50006 energy baselines: the pure parts of the
//! per-production-day and per-shift energy KPIs.
//!
//! - [`config`]: the `[energy]` section as written ([`EnergyConfig`] and
//!   the other `…Config` types) and its `check`, which builds the running
//!   types below and reports every problem with its key path;
//! - [`site`]: a site's checked settings ([`SiteEnergy`],
//!   [`BaselineSettings`], [`DegreeDays`]), [`kg_co2e`] and degree-days;
//! - [`tariff`]: a time-of-use electricity price ([`Tariff`]), looked up by
//!   *local* weekday ([`Day`], in [`day`]) and minute of the day;
//! - [`baseline`]: the ISO 50006 baseline ([`fit`], [`Baseline`]) and the
//!   CUSUM of the reporting periods ([`Cusum`], [`BaselineTracker`]).
//!
//! No I/O, no clock: same input, same output. Formulas and units are in
//! `docs/energy.md`. Times of day are parsed by [`crate::time_of_day`].

pub mod baseline;
pub mod config;
pub mod day;
pub mod site;
pub mod tariff;

pub use crate::time_of_day::MINUTES_PER_DAY;
pub use baseline::{
    fit, Baseline, BaselineTracker, Coefficients, Cusum, Deviation, PeriodData, TrackerStep,
};
pub use config::{
    BaselineConfig, DegreeDayKind, EnergyConfig, SiteEnergyConfig, TariffConfig,
    TariffPeriodConfig, DEFAULT_BASELINE_PERIODS, MAX_BASELINE_PERIODS,
    MAX_EMISSION_FACTOR_KG_PER_KWH,
};
pub use day::Day;
pub use site::{
    cooling_degree_days, heating_degree_days, kg_co2e, BaselineSettings, DegreeDays, SiteEnergy,
};
pub use tariff::Tariff;

/// Builders shared by the tests of the submodules.
#[cfg(test)]
mod test_support {
    use super::{EnergyConfig, SiteEnergy, Tariff, TariffConfig, TariffPeriodConfig};
    use ctower_model::ConfigIssue;
    use std::collections::BTreeMap;

    pub fn period(
        days: &[&str],
        start: &str,
        end: &str,
        price: f64,
        name: &str,
    ) -> TariffPeriodConfig {
        TariffPeriodConfig {
            name: Some(name.to_string()),
            days: days.iter().map(|d| d.to_string()).collect(),
            start: Some(start.to_string()),
            end: Some(end.to_string()),
            price_per_kwh: Some(price),
        }
    }

    pub fn tariff(periods: Vec<TariffPeriodConfig>) -> TariffConfig {
        TariffConfig {
            currency: Some("EUR".into()),
            default_price_per_kwh: Some(0.20),
            periods,
        }
    }

    pub fn hm(h: u16, m: u16) -> u16 {
        h * 60 + m
    }

    /// The tariff, or every problem.
    pub fn check_tariff(cfg: &TariffConfig, key: &str) -> Result<Tariff, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        cfg.check(key, &mut issues).ok_or(issues)
    }

    /// A tariff that must be valid.
    pub fn build(cfg: &TariffConfig) -> Tariff {
        check_tariff(cfg, "tariff").expect("a valid tariff")
    }

    /// Every site's settings, or every problem.
    pub fn check_energy(
        cfg: &EnergyConfig,
        key: &str,
    ) -> Result<BTreeMap<String, SiteEnergy>, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        cfg.check(key, &mut issues).ok_or(issues)
    }
}
