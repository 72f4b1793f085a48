//! The `[energy]` section as the TOML says it (`…Config`, serde only) and
//! how it is checked into the running types ([`SiteEnergy`], [`Tariff`],
//! [`BaselineSettings`]), every problem reported with its key.

use super::day::parse_days;
use super::tariff::{spans_of, Span};
use super::{BaselineSettings, Day, DegreeDays, SiteEnergy, Tariff};
use crate::time_of_day::{format_hhmm, parse_hhmm, MINUTES_PER_DAY};
use ctower_model::{key_field, key_index, ConfigIssue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default length of the baseline period, in periods (a week of days).
pub const DEFAULT_BASELINE_PERIODS: usize = 7;
/// Longest accepted baseline period, in periods (about three years of days).
pub const MAX_BASELINE_PERIODS: usize = 1100;
/// Largest accepted emission factor. Grid factors are 0–1.2 kg/kWh; a value
/// above this is almost surely given in g/kWh.
pub const MAX_EMISSION_FACTOR_KG_PER_KWH: f64 = 5.0;

/// The `[energy]` section: per-site settings, by site name.
///
/// Deserialisation only checks types; [`EnergyConfig::check`] checks the
/// rest and reports every problem at once.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyConfig {
    /// Each site's settings, by site name.
    #[serde(default)]
    pub sites: BTreeMap<String, SiteEnergyConfig>,
}

/// One site's `[energy.sites.<site>]`. Required fields are `Option` so that
/// [`EnergyConfig::check`] can name each missing one.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SiteEnergyConfig {
    /// The electricity tariff (required).
    pub tariff: Option<TariffConfig>,
    /// kg CO2e emitted per kWh consumed, e.g. the grid's location-based
    /// factor (required, 0..=5).
    pub emission_factor_kg_per_kwh: Option<f64>,
    /// The energy baseline; defaults apply when left out.
    #[serde(default)]
    pub baseline: BaselineConfig,
}

/// A time-of-use tariff as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TariffConfig {
    /// ISO 4217 code, e.g. `EUR` (required).
    pub currency: Option<String>,
    /// Price outside every period, currency units per kWh (required).
    pub default_price_per_kwh: Option<f64>,
    /// Time-of-use periods; none: one price all week.
    #[serde(default)]
    pub periods: Vec<TariffPeriodConfig>,
}

/// One `[[…tariff.periods]]` entry.
///
/// A period covers `[start, end)` local time on each of its `days`. When
/// `end` is before `start` it crosses midnight: the part after midnight
/// belongs to the *next* day (a `mon-fri` 22:00–06:00 night rate runs from
/// Monday 22:00 to Saturday 06:00).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TariffPeriodConfig {
    /// Name for reports and error messages, e.g. `peak`; unique when given.
    pub name: Option<String>,
    /// Days the period starts on: `mon`, `monday`, or ranges like `mon-fri`
    /// (required, not empty).
    #[serde(default)]
    pub days: Vec<String>,
    /// Local start, `HH:MM` (required).
    pub start: Option<String>,
    /// Local end, `HH:MM`, `24:00` for the end of the day (required).
    pub end: Option<String>,
    /// Currency units per kWh (required). Negative prices are accepted:
    /// dynamic tariffs have them.
    pub price_per_kwh: Option<f64>,
}

/// Which degree-days the baseline uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DegreeDayKind {
    /// HDD = max(0, base − T_mean) × days.
    Heating,
    /// CDD = max(0, T_mean − base) × days.
    Cooling,
}

/// The `[energy.sites.<site>.baseline]` table.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineConfig {
    /// Periods in the baseline period; default 7. At least the number of
    /// model parameters + 2 (4, or 5 with degree-days).
    pub baseline_periods: Option<usize>,
    /// Add degree-days as a regressor; default none.
    pub degree_days: Option<DegreeDayKind>,
    /// Base temperature of the degree-days, °C (required with `degree_days`).
    pub base_temperature_c: Option<f64>,
    /// The outdoor-temperature signal (°C) of the site whose daily mean
    /// gives the degree-days (required with `degree_days`).
    pub temperature_signal: Option<String>,
}

fn missing(key: String, what: &str) -> ConfigIssue {
    ConfigIssue::new(key, format!("missing: {what}"))
}

fn finite(v: Option<f64>, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<f64> {
    match v {
        Some(x) if x.is_finite() => Some(x),
        Some(x) => {
            issues.push(ConfigIssue::new(
                key,
                format!("must be a finite number, got {x}"),
            ));
            None
        }
        None => None,
    }
}

impl EnergyConfig {
    /// Checks every site and builds its settings, by site name. Every
    /// problem is pushed with its key path below `key` (e.g. `"energy"`
    /// gives `energy.sites.lyon-fill.tariff.periods[1].start`); `None`
    /// exactly when something was pushed.
    pub fn check(
        &self,
        key: &str,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<BTreeMap<String, SiteEnergy>> {
        let before = issues.len();
        let mut sites = BTreeMap::new();
        for (name, site) in &self.sites {
            let base = key_field(&key_field(key, "sites"), name);
            if let Some(s) = site.check(&base, issues) {
                sites.insert(name.clone(), s);
            }
        }
        (issues.len() == before).then_some(sites)
    }
}

impl SiteEnergyConfig {
    /// Checks one site; problems are keyed below `key`.
    pub fn check(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<SiteEnergy> {
        let before = issues.len();
        let k = |f: &str| key_field(key, f);
        let tariff = match &self.tariff {
            Some(t) => t.check(&k("tariff"), issues),
            None => {
                issues.push(missing(k("tariff"), "the electricity tariff"));
                None
            }
        };
        let factor = self.check_factor(&k("emission_factor_kg_per_kwh"), issues);
        let baseline = self.baseline.check(&k("baseline"), issues);
        let signal = self.baseline.temperature_signal.as_deref();
        match (self.baseline.degree_days.is_some(), signal) {
            (true, None | Some("")) => issues.push(missing(
                k("baseline.temperature_signal"),
                "the outdoor temperature signal (°C) for the degree-days",
            )),
            (false, Some(_)) => issues.push(ConfigIssue::new(
                k("baseline.temperature_signal"),
                "only used with `degree_days` (\"heating\" or \"cooling\")",
            )),
            _ => {}
        }
        if issues.len() != before {
            return None;
        }
        Some(SiteEnergy {
            tariff: tariff?,
            emission_factor_kg_per_kwh: factor?,
            baseline: baseline?,
            temperature_signal: signal.map(std::sync::Arc::from),
        })
    }

    /// The emission factor: given, finite, within range.
    fn check_factor(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<f64> {
        if self.emission_factor_kg_per_kwh.is_none() {
            issues.push(missing(key.to_string(), "kg CO2e per kWh"));
        }
        let factor = finite(self.emission_factor_kg_per_kwh, key, issues);
        if let Some(f) = factor {
            if !(0.0..=MAX_EMISSION_FACTOR_KG_PER_KWH).contains(&f) {
                issues.push(ConfigIssue::new(
                    key,
                    format!(
                        "{f} is outside 0..={MAX_EMISSION_FACTOR_KG_PER_KWH} kg/kWh (is it in g/kWh?)"
                    ),
                ));
            }
        }
        factor
    }
}

impl BaselineConfig {
    /// Checks the baseline settings; problems are keyed below `key`.
    pub fn check(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<BaselineSettings> {
        let before = issues.len();
        let k = |f: &str| key_field(key, f);
        let degree_days = self.check_degree_days(&k("base_temperature_c"), issues);
        let parameters = if self.degree_days.is_some() { 3 } else { 2 };
        let periods = self.baseline_periods.unwrap_or(DEFAULT_BASELINE_PERIODS);
        let least = parameters + 2;
        if !(least..=MAX_BASELINE_PERIODS).contains(&periods) {
            issues.push(ConfigIssue::new(
                k("baseline_periods"),
                format!(
                    "{periods} is outside {least}..={MAX_BASELINE_PERIODS} (a model with {parameters} parameters needs at least {least} periods)"
                ),
            ));
        }
        (issues.len() == before).then_some(BaselineSettings {
            baseline_periods: periods,
            degree_days,
        })
    }

    /// The degree-days and their base temperature (keyed `temp_key`):
    /// both or neither.
    fn check_degree_days(
        &self,
        temp_key: &str,
        issues: &mut Vec<ConfigIssue>,
    ) -> Option<DegreeDays> {
        let temp = finite(self.base_temperature_c, temp_key, issues);
        match (self.degree_days, temp) {
            (Some(kind), Some(t)) if (-60.0..=60.0).contains(&t) => Some(DegreeDays {
                kind,
                base_temperature_c: t,
            }),
            (Some(_), Some(t)) => {
                issues.push(ConfigIssue::new(
                    temp_key,
                    format!("{t} °C is outside -60..=60 °C"),
                ));
                None
            }
            (Some(_), None) => {
                if self.base_temperature_c.is_none() {
                    issues.push(missing(
                        temp_key.to_string(),
                        "the base temperature of the degree-days, °C",
                    ));
                }
                None
            }
            (None, _) => {
                if self.base_temperature_c.is_some() {
                    issues.push(ConfigIssue::new(
                        temp_key,
                        "only used with `degree_days` (\"heating\" or \"cooling\")",
                    ));
                }
                None
            }
        }
    }
}

impl TariffConfig {
    /// Checks the tariff and builds it; every problem keyed below `key`.
    pub fn check(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Option<Tariff> {
        let before = issues.len();
        let k = |f: &str| key_field(key, f);
        match self.currency.as_deref() {
            None => issues.push(missing(k("currency"), "an ISO 4217 code such as EUR")),
            Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => {}
            Some(c) => issues.push(ConfigIssue::new(
                k("currency"),
                format!("`{c}` is not an ISO 4217 code (three capital letters, e.g. EUR)"),
            )),
        }
        if self.default_price_per_kwh.is_none() {
            issues.push(missing(
                k("default_price_per_kwh"),
                "the price outside every period",
            ));
        }
        let default_price = finite(
            self.default_price_per_kwh,
            &k("default_price_per_kwh"),
            issues,
        );
        let mut periods: Vec<(String, f64)> = Vec::new();
        let mut spans: Vec<Span> = Vec::new();
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, p) in self.periods.iter().enumerate() {
            let base = key_index(key, "periods", i);
            let label = p.label(i, &base, &mut names, issues);
            let days = p.check_days(&base, issues);
            let (start, end) = p.check_times(&base, issues);
            if p.price_per_kwh.is_none() {
                issues.push(missing(
                    key_field(&base, "price_per_kwh"),
                    "currency units per kWh",
                ));
            }
            let price = finite(p.price_per_kwh, &key_field(&base, "price_per_kwh"), issues);
            if let (Some(s), Some(e)) = (start, end) {
                if s != e {
                    let mine = spans_of(&days, s, e, i);
                    report_overlaps(&mine, &spans, &label, &periods, &base, issues);
                    spans.extend(mine);
                }
            }
            periods.push((label, price.unwrap_or(0.0)));
        }
        if issues.len() != before {
            return None;
        }
        Some(Tariff::new(
            self.currency.clone()?,
            default_price?,
            periods,
            spans,
        ))
    }
}

impl TariffPeriodConfig {
    /// The period's label for messages (`periods[1] (`peak`)`); its name
    /// must not be empty nor used by an earlier period (`names`).
    fn label<'a>(
        &'a self,
        i: usize,
        key: &str,
        names: &mut BTreeMap<&'a str, usize>,
        issues: &mut Vec<ConfigIssue>,
    ) -> String {
        match self.name.as_deref() {
            Some(n) if n.trim().is_empty() => {
                issues.push(ConfigIssue::new(
                    key_field(key, "name"),
                    "must not be empty",
                ));
                format!("periods[{i}]")
            }
            Some(n) => {
                if let Some(first) = names.insert(n, i) {
                    issues.push(ConfigIssue::new(
                        key_field(key, "name"),
                        format!("duplicate period name `{n}` (first used by periods[{first}])"),
                    ));
                }
                format!("periods[{i}] (`{n}`)")
            }
            None => format!("periods[{i}]"),
        }
    }

    /// The days the period starts on, sorted, each once.
    fn check_days(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> Vec<Day> {
        let mut days = Vec::new();
        if self.days.is_empty() {
            issues.push(missing(
                key_field(key, "days"),
                "e.g. [\"mon-fri\"] or [\"sat\", \"sun\"]",
            ));
        }
        for (j, entry) in self.days.iter().enumerate() {
            match parse_days(entry) {
                Some(ds) => days.extend(ds),
                None => issues.push(ConfigIssue::new(
                    key_index(key, "days", j),
                    format!("`{entry}` is not a day (`mon`, `monday`) or a range (`mon-fri`)"),
                )),
            }
        }
        days.sort();
        days.dedup();
        days
    }

    /// Start and end, minutes of the local day; an empty period (start =
    /// end) is refused.
    fn check_times(&self, key: &str, issues: &mut Vec<ConfigIssue>) -> (Option<u16>, Option<u16>) {
        let start = check_time(
            self.start.as_deref(),
            &key_field(key, "start"),
            false,
            issues,
        );
        let end = check_time(self.end.as_deref(), &key_field(key, "end"), true, issues);
        if let (Some(s), Some(e)) = (start, end) {
            if s == e {
                issues.push(ConfigIssue::new(
                    key_field(key, "end"),
                    format!(
                        "equals start ({}): the period is empty (00:00–24:00 is a whole day)",
                        format_hhmm(u32::from(s))
                    ),
                ));
            }
        }
        (start, end)
    }
}

/// A required local time `HH:MM`; `24:00` only as an `end`.
fn check_time(
    value: Option<&str>,
    key: &str,
    end: bool,
    issues: &mut Vec<ConfigIssue>,
) -> Option<u16> {
    let Some(s) = value else {
        issues.push(missing(key.to_string(), "a local time, HH:MM"));
        return None;
    };
    let t = parse_hhmm(s, end);
    if t.is_none() {
        let range = if end {
            "00:00–24:00"
        } else {
            "00:00–23:59"
        };
        issues.push(ConfigIssue::new(
            key,
            format!("`{s}` is not a local time HH:MM in {range}"),
        ));
    }
    t
}

/// Reports each earlier period that the spans `mine` of period `label`
/// (keyed `key`) overlap, once, at the earliest minute of the week where
/// they meet.
fn report_overlaps(
    mine: &[Span],
    earlier: &[Span],
    label: &str,
    periods: &[(String, f64)],
    key: &str,
    issues: &mut Vec<ConfigIssue>,
) {
    let mut hits: BTreeMap<usize, Span> = BTreeMap::new();
    for a in mine {
        for b in earlier {
            let (lo, hi) = (a.start.max(b.start), a.end.min(b.end));
            if lo < hi {
                let hit = Span {
                    start: lo,
                    end: hi,
                    period: b.period,
                };
                hits.entry(b.period)
                    .and_modify(|h| {
                        if lo < h.start {
                            *h = hit;
                        }
                    })
                    .or_insert(hit);
            }
        }
    }
    for (other, h) in hits {
        let day = Day::ALL[(h.start / u32::from(MINUTES_PER_DAY)) as usize];
        let day0 = day.index() as u32 * u32::from(MINUTES_PER_DAY);
        issues.push(ConfigIssue::new(
            key,
            format!(
                "{label} overlaps {} on {day} {}–{}",
                periods[other].0,
                format_hhmm(h.start - day0),
                format_hhmm(h.end - day0)
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check_energy, check_tariff, hm, period, tariff};
    use super::*;

    #[test]
    fn overlap_is_reported_with_both_periods() {
        // Friday's night (into Saturday 00:00–06:00) meets an all-day weekend.
        let err = check_tariff(
            &tariff(vec![
                period(&["mon-fri"], "22:00", "06:00", 0.12, "night"),
                period(&["sat-sun"], "00:00", "24:00", 0.10, "weekend"),
                period(&["wed"], "05:00", "08:00", 0.40, "wednesday"),
            ]),
            "energy.sites.lyon.tariff",
        )
        .unwrap_err();
        let text: Vec<String> = err.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "energy.sites.lyon.tariff.periods[1]: periods[1] (`weekend`) overlaps periods[0] (`night`) on Sat 00:00–06:00",
                "energy.sites.lyon.tariff.periods[2]: periods[2] (`wednesday`) overlaps periods[0] (`night`) on Wed 05:00–06:00",
            ]
        );
        // Touching periods do not overlap.
        assert!(check_tariff(
            &tariff(vec![
                period(&["mon"], "00:00", "12:00", 0.1, "a"),
                period(&["mon"], "12:00", "24:00", 0.2, "b"),
                period(&["tue"], "00:00", "24:00", 0.3, "c"),
            ]),
            "t"
        )
        .is_ok());
    }

    #[test]
    fn every_tariff_problem_is_reported_with_its_key() {
        let mut bad = period(&["mon", "funday"], "25:00", "24:00", f64::NAN, "x");
        bad.name = Some("dup".into());
        let mut dup = period(&[], "08:00", "08:00", 0.1, "dup");
        dup.start = Some("8:00".into());
        let cfg = TariffConfig {
            currency: Some("euro".into()),
            default_price_per_kwh: None,
            periods: vec![bad, dup, TariffPeriodConfig::default()],
        };
        let err = check_tariff(&cfg, "tariff").unwrap_err();
        let keys: Vec<&str> = err.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "tariff.currency",
                "tariff.default_price_per_kwh",
                "tariff.periods[0].days[1]",
                "tariff.periods[0].start",
                "tariff.periods[0].price_per_kwh",
                "tariff.periods[1].name",
                "tariff.periods[1].days",
                "tariff.periods[1].start",
                "tariff.periods[2].days",
                "tariff.periods[2].start",
                "tariff.periods[2].end",
                "tariff.periods[2].price_per_kwh",
            ],
            "{err:#?}"
        );
        assert!(err[2].message.contains("`funday`"), "{}", err[2]);
        assert!(err[3].message.contains("`25:00`"), "{}", err[3]);
        assert!(err[7].message.contains("`8:00`"), "{}", err[7]);
        // An empty period (start = end) is refused.
        let err = check_tariff(
            &tariff(vec![period(&["mon"], "08:00", "08:00", 0.1, "e")]),
            "t",
        )
        .unwrap_err();
        assert_eq!(err[0].key, "t.periods[0].end");
        // Every problem is pushed, and nothing is built.
        let mut issues = Vec::new();
        assert!(cfg.check("tariff", &mut issues).is_none());
        assert_eq!(issues.len(), 12);
    }

    #[test]
    fn site_config_deserialises_and_checks() {
        let json = r#"{"sites": {"lyon-fill": {
            "emission_factor_kg_per_kwh": 0.052,
            "tariff": {"currency": "EUR", "default_price_per_kwh": 0.18,
                "periods": [{"name": "peak", "days": ["mon-fri"], "start": "08:00",
                             "end": "20:00", "price_per_kwh": 0.27}]},
            "baseline": {"baseline_periods": 14, "degree_days": "heating",
                         "base_temperature_c": 15.5, "temperature_signal": "outdoor_temp_c"}
        }}}"#;
        let cfg: EnergyConfig = serde_json::from_str(json).unwrap();
        let sites = check_energy(&cfg, "energy").unwrap();
        let lyon = &sites["lyon-fill"];
        assert!((lyon.kg_co2e(1000.0) - 52.0).abs() < 1e-9);
        assert_eq!(lyon.tariff.price_at(Day::Fri, hm(12, 0)), 0.27);
        assert_eq!(lyon.baseline.baseline_periods, 14);
        let dd = lyon.baseline.degree_days.unwrap();
        assert_eq!(dd.of(5.5, 1.0), 10.0);
        assert_eq!(dd.of(20.0, 1.0), 0.0);
        assert!(lyon.baseline.tracker().baseline().is_none());

        let unknown = r#"{"sites": {"x": {"emission_factor_kg_per_kwh": 0.1, "price": 1}}}"#;
        let e = serde_json::from_str::<EnergyConfig>(unknown).unwrap_err();
        assert!(e.to_string().contains("unknown field `price`"), "{e}");
    }

    #[test]
    fn every_site_problem_is_reported_with_its_key() {
        let json = r#"{"sites": {
            "a": {"emission_factor_kg_per_kwh": 450,
                  "baseline": {"baseline_periods": 4, "degree_days": "cooling"}},
            "b": {"tariff": {"currency": "CHF", "default_price_per_kwh": 0.2},
                  "baseline": {"base_temperature_c": 18}}
        }}"#;
        let cfg: EnergyConfig = serde_json::from_str(json).unwrap();
        let err = check_energy(&cfg, "energy").unwrap_err();
        let text: Vec<String> = err.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "energy.sites.a.tariff: missing: the electricity tariff",
                "energy.sites.a.emission_factor_kg_per_kwh: 450 is outside 0..=5 kg/kWh (is it in g/kWh?)",
                "energy.sites.a.baseline.base_temperature_c: missing: the base temperature of the degree-days, °C",
                "energy.sites.a.baseline.baseline_periods: 4 is outside 5..=1100 (a model with 3 parameters needs at least 5 periods)",
                "energy.sites.a.baseline.temperature_signal: missing: the outdoor temperature signal (°C) for the degree-days",
                "energy.sites.b.emission_factor_kg_per_kwh: missing: kg CO2e per kWh",
                "energy.sites.b.baseline.base_temperature_c: only used with `degree_days` (\"heating\" or \"cooling\")",
            ]
        );
    }
}
