//! The additive part of a KPI record: what a roll-up sums.

use super::table::kpi_table;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

kpi_table! {
    additive;
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
        /// Planned stops (breaks, planned maintenance), ms.
        pub planned_stop_ms: i64,
        /// Unplanned stops longer than the micro-stop threshold (breakdowns).
        pub unplanned_stop_ms: i64,
        /// `unplanned_stop_ms` by the stop's reason code (`unspecified` when
        /// the state message gave none); the parts add up to it.
        pub unplanned_stop_by_reason_ms: BTreeMap<Arc<str>, i64> => journal "unplanned_stop_ms",
        /// Unplanned stops that ended within the micro-stop threshold: a
        /// performance loss (minor stops), counted in actual production time.
        pub micro_stop_ms: i64,
        /// Product changeovers, ms.
        pub changeover_ms: i64,
        /// Outside every shift, ms: neither planned time nor downtime.
        pub no_shift_ms: i64,
        /// No data (silent or stale sources), ms: never downtime.
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
        /// Good units, spread like `produced`.
        pub good: Option<u64>,
        /// Rejected units, spread like `produced`.
        pub reject: Option<u64>,
        /// Σ ideal cycle time × units produced, milliseconds.
        pub ideal_time_ms: f64,
        /// Σ ideal cycle time × good units, milliseconds (fully productive time).
        pub good_ideal_ms: f64,
        /// The same two sums over start-up periods only (yield losses).
        pub startup_ideal_ms: f64,
        /// Σ ideal cycle time × good units over start-up periods, ms.
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
        /// RO permeate (recovered water), m³, spread like the feed.
        pub water_permeate_m3: Option<f64>,
        /// RO concentrate (reject water), m³, spread like the feed.
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
        /// The part of `conductivity_measured_ms` within the USP <645> limit, ms.
        pub conductivity_within_ms: i64,
        /// Time covered by a fresh TOC reading, ms.
        pub toc_measured_ms: i64,
        /// The part of `toc_measured_ms` within the USP <643> limit, ms.
        pub toc_within_ms: i64,
        /// Readings that crossed a USP limit (the previous reading was within).
        pub usp_excursions: u64,
    }
}

impl KpiSums {
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
