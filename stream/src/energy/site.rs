//! A site's checked energy settings (what [`SiteEnergyConfig::check`]
//! builds), CO2e and degree-days.
//!
//! [`SiteEnergyConfig::check`]: super::SiteEnergyConfig::check

use super::{BaselineTracker, DegreeDayKind, Tariff};

/// A validated site's energy settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteEnergy {
    /// The time-of-use tariff.
    pub tariff: Tariff,
    /// kg CO2e per kWh consumed.
    pub emission_factor_kg_per_kwh: f64,
    /// How the energy baseline is fitted.
    pub baseline: BaselineSettings,
    /// Signal name of the outdoor temperature, with degree-days.
    pub temperature_signal: Option<std::sync::Arc<str>>,
}

impl SiteEnergy {
    /// Emissions of `kwh` at this site.
    pub fn kg_co2e(&self, kwh: f64) -> f64 {
        kg_co2e(kwh, self.emission_factor_kg_per_kwh)
    }
}

/// Validated baseline settings (what [`BaselineConfig::check`] builds).
///
/// [`BaselineConfig::check`]: super::BaselineConfig::check
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineSettings {
    /// Periods in the baseline period.
    pub baseline_periods: usize,
    /// Degree-days as a second regressor, if any.
    pub degree_days: Option<DegreeDays>,
}

impl BaselineSettings {
    /// A fresh tracker with these settings.
    pub fn tracker(&self) -> BaselineTracker {
        BaselineTracker::new(self.baseline_periods, self.degree_days.is_some())
    }
}

/// Degree-day settings: kind and base temperature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DegreeDays {
    /// Heating or cooling.
    pub kind: DegreeDayKind,
    /// Base temperature, °C.
    pub base_temperature_c: f64,
}

impl DegreeDays {
    /// Degree-days of a period of `days` days with mean outdoor temperature
    /// `mean_temperature_c`.
    pub fn of(&self, mean_temperature_c: f64, days: f64) -> f64 {
        match self.kind {
            DegreeDayKind::Heating => {
                heating_degree_days(mean_temperature_c, self.base_temperature_c, days)
            }
            DegreeDayKind::Cooling => {
                cooling_degree_days(mean_temperature_c, self.base_temperature_c, days)
            }
        }
    }
}

/// kg CO2e of `kwh` with an emission factor in kg CO2e per kWh.
pub fn kg_co2e(kwh: f64, emission_factor_kg_per_kwh: f64) -> f64 {
    kwh * emission_factor_kg_per_kwh
}

/// Heating degree-days by the mean-temperature method:
/// max(0, base − T_mean) × days.
pub fn heating_degree_days(mean_temperature_c: f64, base_temperature_c: f64, days: f64) -> f64 {
    (base_temperature_c - mean_temperature_c).max(0.0) * days
}

/// Cooling degree-days by the mean-temperature method:
/// max(0, T_mean − base) × days.
pub fn cooling_degree_days(mean_temperature_c: f64, base_temperature_c: f64, days: f64) -> f64 {
    (mean_temperature_c - base_temperature_c).max(0.0) * days
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn co2e_and_degree_days() {
        assert_eq!(kg_co2e(2000.0, 0.4), 800.0);
        assert_eq!(heating_degree_days(3.0, 15.5, 2.0), 25.0);
        assert_eq!(heating_degree_days(18.0, 15.5, 1.0), 0.0);
        assert_eq!(cooling_degree_days(28.0, 22.0, 1.0), 6.0);
        assert_eq!(cooling_degree_days(20.0, 22.0, 1.0), 0.0);
    }
}
