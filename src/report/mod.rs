//! `ctower report energy|water|oee`: the figures energy and operations
//! teams send on, from the journal (the record of what was computed), for
//! one site over a period, by window, shift, production day or line.
//!
//! Rows by window, shift or day are the site's own records of that period
//! kind (the latest revision of each). Rows by line, and the total row,
//! are rolled up here from window records: their sums added and their
//! ratios computed from the sums with the stream's own formulas
//! ([`KpiRatios::from_sums`](ctower_model::kpi::KpiRatios)), never an
//! average of ratios. Unknown stays unknown: an empty cell, `null`.

pub mod alarms;
pub mod html;
pub mod read;
pub mod render;

use ctower_model::kpi::KpiSums;
use ctower_model::{KpiRecord, Level, Period, ScopeKey};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Energy: kWh, peak kW, kWh per good unit, cost, CO2e, the ISO 50006
    /// baseline (expected, deviation, R², CUSUM).
    Energy,
    /// Water: feed and recovered (permeate) m³, recovery, m³ per good unit,
    /// USP <645>/<643> compliance.
    Water,
    /// OEE with availability, performance, quality, TEEP and the six big losses.
    Oee,
    /// The alarm system's KPIs (ISA-18.2, EEMUA 191) per console, against
    /// their benchmarks (`--site` optional, `--by` unused).
    Alarms,
}

/// The rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    /// One row per window.
    Window,
    /// One row per shift.
    Shift,
    /// One row per production day.
    Day,
    /// One row per line, over the whole period.
    Line,
}

/// How the report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for an 80-column terminal.
    Table,
    /// CSV for a spreadsheet (every column).
    Csv,
    /// JSON (every column).
    Json,
    /// One self-contained HTML file with SVG charts.
    Html,
}

/// One column: a KPI field, how the table shows it.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The KPI field (metric) name, also the CSV and JSON key.
    pub key: &'static str,
    /// The table's heading (short).
    pub heading: &'static str,
    /// How its values read.
    pub unit: Unit,
    /// Shown in the 80-column table (all are in CSV, JSON and HTML).
    pub in_table: bool,
}

/// How a column's values are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A ratio, shown as a percentage.
    Ratio,
    /// A quantity with this many decimals.
    Decimals(usize),
    /// Milliseconds, shown as minutes.
    Minutes,
}

const fn col(key: &'static str, heading: &'static str, unit: Unit, in_table: bool) -> Column {
    Column {
        key,
        heading,
        unit,
        in_table,
    }
}

const ENERGY: &[Column] = &[
    col("energy_kwh", "kWh", Unit::Decimals(1), true),
    col("peak_demand_kw", "peak kW", Unit::Decimals(1), true),
    col("good", "good", Unit::Decimals(0), false),
    col("kwh_per_good_unit", "kWh/unit", Unit::Decimals(4), true),
    col("energy_cost", "cost", Unit::Decimals(2), true),
    col("co2e_kg", "CO2e kg", Unit::Decimals(1), true),
    col("baseline_expected_kwh", "expected", Unit::Decimals(1), true),
    col(
        "baseline_deviation_kwh",
        "deviation",
        Unit::Decimals(1),
        false,
    ),
    col(
        "baseline_kwh_per_unit",
        "base/unit",
        Unit::Decimals(4),
        false,
    ),
    col("baseline_r2", "R²", Unit::Decimals(3), false),
    col("baseline_cusum_kwh", "CUSUM", Unit::Decimals(1), true),
    col("data_coverage", "data", Unit::Ratio, false),
];

const WATER: &[Column] = &[
    col("water_feed_m3", "feed m³", Unit::Decimals(2), true),
    col("water_permeate_m3", "recov. m³", Unit::Decimals(2), true),
    col("water_recovery", "recovery", Unit::Ratio, true),
    col("good", "good", Unit::Decimals(0), false),
    col("water_m3_per_good_unit", "m³/unit", Unit::Decimals(5), true),
    col("conductivity_within_usp", "cond USP", Unit::Ratio, true),
    col("toc_within_usp", "TOC USP", Unit::Ratio, true),
    col("usp_excursions", "excurs.", Unit::Decimals(0), false),
    col("data_coverage", "data", Unit::Ratio, false),
];

const OEE: &[Column] = &[
    col("availability", "A", Unit::Ratio, true),
    col("performance", "P", Unit::Ratio, true),
    col("quality", "Q", Unit::Ratio, true),
    col("oee", "OEE", Unit::Ratio, true),
    col("teep", "TEEP", Unit::Ratio, true),
    col("loss_breakdown_ms", "brk min", Unit::Minutes, true),
    col("loss_setup_ms", "set min", Unit::Minutes, false),
    col("loss_minor_stop_ms", "mst min", Unit::Minutes, false),
    col("loss_speed_ms", "spd min", Unit::Minutes, true),
    col("loss_defect_ms", "dft min", Unit::Minutes, false),
    col("loss_startup_ms", "sup min", Unit::Minutes, false),
    col("data_coverage", "data", Unit::Ratio, true),
];

impl Kind {
    /// Its columns.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Kind::Energy => ENERGY,
            Kind::Water => WATER,
            Kind::Oee => OEE,
            Kind::Alarms => &[],
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Energy => "energy",
            Kind::Water => "water",
            Kind::Oee => "oee",
            Kind::Alarms => "alarms",
        }
    }
}

impl By {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            By::Window => "window",
            By::Shift => "shift",
            By::Day => "day",
            By::Line => "line",
        }
    }
}

/// What to report.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Which figures.
    pub kind: Kind,
    /// The site.
    pub site: String,
    /// From (inclusive), ms.
    pub from_ms: i64,
    /// To (exclusive), ms.
    pub to_ms: i64,
    /// The rows.
    pub by: By,
}

/// One row: its label, its period and a value per column.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `2026-03-02 early`, `aseptic/fill-1` …
    pub label: String,
    /// The period's start, ms.
    pub start_ms: i64,
    /// The period's end, ms.
    pub end_ms: i64,
    /// `false` for a shift or day record cut short (the input ended first).
    pub complete: bool,
    /// One value per column (`None`: unknown).
    pub values: Vec<Option<f64>>,
}

/// A report: its rows and their total.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was asked.
    pub spec: Spec,
    /// The rows, in time (or line) order.
    pub rows: Vec<Row>,
    /// All of the period, rolled up from the site's windows.
    pub total: Option<Row>,
}

impl Report {
    /// The columns.
    pub fn columns(&self) -> &'static [Column] {
        self.spec.kind.columns()
    }
}

/// The report of `spec` from `records` (the journal's, latest revisions).
pub fn build(spec: Spec, records: &[KpiRecord]) -> Report {
    let site = spec.site.as_str();
    let of_site = |r: &&KpiRecord| r.scope.site.as_deref() == Some(site);
    let windows = |level: Level| {
        records
            .iter()
            .filter(of_site)
            .filter(move |r| r.scope.level == level && r.period == Period::Window)
    };
    let columns = spec.kind.columns();
    let rows = match spec.by {
        By::Line => {
            let mut lines: BTreeMap<(String, String), Vec<&KpiRecord>> = BTreeMap::new();
            for r in windows(Level::Line) {
                let area = r.scope.area.as_deref().unwrap_or_default().to_string();
                let line = r.scope.line.as_deref().unwrap_or_default().to_string();
                lines.entry((area, line)).or_default().push(r);
            }
            lines
                .into_iter()
                .filter_map(|((area, line), rs)| {
                    let r = roll_up(&rs)?;
                    Some(row(format!("{area}/{line}"), &r, columns))
                })
                .collect()
        }
        By::Window | By::Shift | By::Day => {
            let period = match spec.by {
                By::Window => Period::Window,
                By::Shift => Period::Shift,
                _ => Period::Day,
            };
            let mut rs: Vec<&KpiRecord> = records
                .iter()
                .filter(of_site)
                .filter(|r| r.scope.level == Level::Site && r.period == period)
                .collect();
            rs.sort_by_key(|r| r.window_start_ms);
            rs.into_iter()
                .map(|r| row(label(r, spec.by), r, columns))
                .collect()
        }
    };
    let site_windows: Vec<&KpiRecord> = windows(Level::Site).collect();
    let total = roll_up(&site_windows).map(|mut t| {
        // The baseline is a day's: the total holds the days' sums, and the
        // last day's CUSUM and fit.
        let days: Vec<&KpiRecord> = records
            .iter()
            .filter(of_site)
            .filter(|r| r.scope.level == Level::Site && r.period == Period::Day)
            .collect();
        if let Some(last) = days.iter().max_by_key(|r| r.window_start_ms) {
            let sum =
                |f: fn(&KpiRecord) -> Option<f64>| days.iter().map(|r| f(r)).sum::<Option<f64>>();
            t.baseline.baseline_expected_kwh = sum(|r| r.baseline.baseline_expected_kwh);
            t.baseline.baseline_deviation_kwh = sum(|r| r.baseline.baseline_deviation_kwh);
            t.baseline.baseline_cusum_kwh = last.baseline.baseline_cusum_kwh;
            t.baseline.baseline_r2 = last.baseline.baseline_r2;
            t.baseline.baseline_kwh_per_unit = last.baseline.baseline_kwh_per_unit;
        }
        row("total".into(), &t, columns)
    });
    Report { spec, rows, total }
}

/// The records' sums added, their ratios from the sums, the highest
/// window demand as the peak; `None` for no records.
fn roll_up(rs: &[&KpiRecord]) -> Option<KpiRecord> {
    let first = rs.iter().map(|r| r.window_start_ms).min()?;
    let last = rs.iter().map(|r| r.window_end_ms).max()?;
    let mut sums = KpiSums::default();
    for r in rs {
        sums.add(&r.sums);
    }
    let scope = rs.first().map_or_else(ScopeKey::group, |r| r.scope.clone());
    // The standby power and TEEP are over the time the windows cover.
    let covered: i64 = rs.iter().map(|r| r.window_end_ms - r.window_start_ms).sum();
    let mut k = KpiRecord::new(first, first + covered, scope, sums);
    k.window_end_ms = last;
    k.peak_demand_kw = rs
        .iter()
        .filter_map(|r| r.peak_demand_kw)
        .max_by(f64::total_cmp);
    Some(k)
}

fn row(label: String, r: &KpiRecord, columns: &[Column]) -> Row {
    Row {
        label,
        start_ms: r.window_start_ms,
        end_ms: r.window_end_ms,
        complete: r.complete,
        values: columns.iter().map(|c| r.metric(c.key)).collect(),
    }
}

fn label(r: &KpiRecord, by: By) -> String {
    let day = r.production_day.as_deref().map(Arc::<str>::from);
    match by {
        By::Window => ctower_model::time::rfc3339_ms(r.window_end_ms)
            .get(5..16)
            .unwrap_or_default()
            .replace('T', " "),
        By::Shift => format!(
            "{} {}",
            day.as_deref().unwrap_or("?"),
            r.shift.as_deref().unwrap_or("?")
        ),
        By::Day | By::Line => day.as_deref().unwrap_or("?").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site_scope(site: &str) -> ScopeKey {
        ScopeKey {
            level: Level::Site,
            site: Some(site.into()),
            ..ScopeKey::group()
        }
    }

    fn day(site: &str, start: i64, kwh: f64, expected: f64, cusum: f64) -> KpiRecord {
        let sums = KpiSums {
            energy_kwh: Some(kwh),
            produced: Some(1000),
            good: Some(900),
            ..Default::default()
        };
        let mut k = KpiRecord::new(start, start + 86_400_000, site_scope(site), sums);
        k.period = Period::Day;
        k.production_day = Some("2026-03-02".into());
        k.baseline.baseline_expected_kwh = Some(expected);
        k.baseline.baseline_deviation_kwh = Some(kwh - expected);
        k.baseline.baseline_cusum_kwh = Some(cusum);
        k.baseline.baseline_r2 = Some(0.93);
        k
    }

    fn window(site: &str, start: i64, kwh: f64, good: u64) -> KpiRecord {
        let sums = KpiSums {
            energy_kwh: Some(kwh),
            produced: Some(good),
            good: Some(good),
            ..Default::default()
        };
        KpiRecord::new(start, start + 86_400_000, site_scope(site), sums)
    }

    #[test]
    fn days_carry_the_baseline_and_the_total_sums_the_windows() {
        let d = 86_400_000;
        let records = vec![
            day("s", 0, 100.0, 90.0, 10.0),
            day("s", d, 80.0, 90.0, 0.0),
            window("s", 0, 100.0, 900),
            window("s", d, 80.0, 900),
            window("other", 0, 5.0, 1),
        ];
        let spec = Spec {
            kind: Kind::Energy,
            site: "s".into(),
            from_ms: 0,
            to_ms: 2 * d,
            by: By::Day,
        };
        let r = build(spec, &records);
        let col = |key| ENERGY.iter().position(|c| c.key == key).unwrap();
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[1].values[col("baseline_cusum_kwh")], Some(0.0));
        let t = r.total.clone().unwrap();
        assert_eq!(t.values[col("energy_kwh")], Some(180.0));
        assert_eq!(t.values[col("kwh_per_good_unit")], Some(180.0 / 1800.0));
        assert_eq!(t.values[col("baseline_expected_kwh")], Some(180.0));
        assert_eq!(t.values[col("baseline_deviation_kwh")], Some(0.0));
        assert_eq!(
            t.values[col("baseline_cusum_kwh")],
            Some(0.0),
            "the last day's"
        );
        // Unknown stays unknown: no cost without a tariff.
        assert_eq!(t.values[col("energy_cost")], None);
        let html = html::html(&r);
        assert!(
            html.contains(
                r#"data-series="baseline_cusum_kwh" data-label="2026-03-02" data-value="10""#
            ),
            "{html}"
        );
    }
}
