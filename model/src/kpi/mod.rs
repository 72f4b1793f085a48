//! KPI records: what the stream emits for every closed window and scope.
//!
//! Formulas (ISO 22400-2, see README "KPIs"): times are summed over the
//! state-modelled assets of the scope (asset-time), quantities are summed,
//! and every ratio is computed from those sums — a roll-up never averages
//! ratios.

use crate::{AssetKey, Role, ScopeKey};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

mod ratios;
mod sums;
pub(crate) mod table;

pub use ratios::{BaselineFields, KpiRatios};
pub use sums::KpiSums;
pub use table::{FieldInfo, FieldKind, FieldValue, FieldVisitor, KpiValue, Summable};

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
    /// Its name in files and the journal (`window`, `shift`, `day`).
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
    /// Start of the window, or of the shift or production day (UTC ms).
    pub window_start_ms: i64,
    /// End (exclusive) of the window, shift or production day (UTC ms).
    pub window_end_ms: i64,
    /// Where the figures apply (group, site, line or asset).
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
    /// Time, counts, energy and water summed over the period (`None`:
    /// nothing measured it, never zero).
    #[serde(flatten)]
    pub sums: KpiSums,
    /// Ratios derived from the sums (OEE and its factors, recovery …).
    #[serde(flatten)]
    pub ratios: KpiRatios,
}

impl KpiRecord {
    /// A window's record (revision 0, complete, no calendar fields) with
    /// its ratios computed from `sums`.
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
        use table::json_value as val;
        macro_rules! fields {
            ($owner:expr => [$($f:ident),+ $(,)?]) => {
                $(
                    out.extend_from_slice(concat!(",\"", stringify!($f), "\":").as_bytes());
                    val(out, &$owner.$f);
                )+
            };
        }
        out.extend_from_slice(b"{\"window_start_ms\":");
        val(out, &self.window_start_ms);
        // The order of the fields and of the flattened structs' fields.
        fields!(self => [window_end_ms]);
        fields!(self.scope => [level, site, area, line, asset]);
        fields!(self => [revision, period, production_day, shift, complete, peak_demand_kw]);
        self.baseline.write_json_fields(out);
        self.sums.write_json_fields(out);
        self.ratios.write_json_fields(out);
        out.push(b'}');
    }

    /// Every KPI field of a record, in JSON order: the peak demand, the
    /// baseline, the sums and the ratios (the record's other keys — bounds,
    /// scope, revision, period, day, shift, `complete` — say what the
    /// figures are of).
    pub const FIELDS: &'static [FieldInfo] = &table::concat::<N_FIELDS>(FIELD_PARTS);

    /// The metric names alarm rules accept ([`KpiRecord::metric`]): every
    /// field that is one number (all but the by-key ones).
    pub const METRICS: &'static [&'static str] = &table::metric_names::<N_METRICS>(Self::FIELDS);

    /// Visits every KPI field ([`KpiRecord::FIELDS`]) with its value.
    pub fn visit(&self, v: &mut impl FieldVisitor) {
        v.field(&FIELD_PARTS[0][0], self.peak_demand_kw.value());
        self.baseline.visit(v);
        self.sums.visit(v);
        self.ratios.visit(v);
    }

    /// A KPI by its field name, for alert rules and reports: `None` when
    /// the name is not one of [`KpiRecord::METRICS`] or the value is unknown.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let found = match name {
            "peak_demand_kw" => Some(self.peak_demand_kw),
            _ => self
                .ratios
                .number(name)
                .or_else(|| self.sums.number(name))
                .or_else(|| self.baseline.number(name)),
        };
        found.flatten()
    }
}

/// The parts of [`KpiRecord::FIELDS`], in JSON order.
const FIELD_PARTS: &[&[FieldInfo]] = &[
    &[FieldInfo::of::<Option<f64>>("peak_demand_kw")],
    BaselineFields::FIELDS,
    KpiSums::FIELDS,
    KpiRatios::FIELDS,
];
const N_FIELDS: usize = table::total(FIELD_PARTS);
const N_METRICS: usize = table::count_metrics(KpiRecord::FIELDS);

/// Statistics of one numeric signal of one asset over one closed window,
/// the input of telemetry alert rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalWindow {
    /// Start of the window (UTC ms).
    pub window_start_ms: i64,
    /// End (exclusive) of the window (UTC ms).
    pub window_end_ms: i64,
    /// The asset.
    pub asset: AssetKey,
    /// The signal's name.
    pub signal: Arc<str>,
    /// Its role.
    pub role: Role,
    /// Readings in the window (at least one: no window without readings).
    pub count: u64,
    /// Smallest reading.
    pub min: f64,
    /// Largest reading.
    pub max: f64,
    /// Mean of the readings (not time-weighted).
    pub mean: f64,
    /// The value with the latest event time in the window.
    pub last: f64,
}

/// Everything the stream emits, in a deterministic order: by window end,
/// then KPIs before signals, then by scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StreamOutput {
    /// KPIs of one scope and period.
    Kpi(Box<KpiRecord>),
    /// Statistics of one signal over one window.
    Signal(SignalWindow),
}

impl StreamOutput {
    /// The end of the window (or period) it belongs to.
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

    /// The table: unique names; every field that is one number is a
    /// metric and reads back as its value; the names rules used before the
    /// table existed are all still accepted.
    #[test]
    fn the_field_table_names_every_field_once() {
        let names: Vec<&str> = KpiRecord::FIELDS.iter().map(|f| f.name).collect();
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        let full = full_record();
        let json = serde_json::to_value(&full).unwrap();
        for f in KpiRecord::FIELDS {
            let in_metrics = KpiRecord::METRICS.contains(&f.name);
            assert_eq!(in_metrics, f.kind.is_metric(), "{}", f.name);
            if in_metrics {
                let want = match &json[f.name] {
                    serde_json::Value::Bool(b) => f64::from(u8::from(*b)),
                    v => v.as_f64().unwrap(),
                };
                assert_eq!(full.metric(f.name), Some(want), "{}", f.name);
            }
        }
        for old in [
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
        ] {
            assert!(KpiRecord::METRICS.contains(&old), "{old}");
        }
        assert_eq!(full.metric("unmeasured"), None);
        assert_eq!(full.metric("no_such_kpi"), None);
        let empty = KpiRecord::new(0, 60_000, ScopeKey::group(), KpiSums::default());
        assert_eq!(empty.metric("produced"), None, "unknown is not zero");
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
