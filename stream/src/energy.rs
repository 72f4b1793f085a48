//! Energy cost, CO2e and ISO 50006 energy baselines: the pure parts of the
//! per-production-day and per-shift energy KPIs.
//!
//! - [`Tariff`]: a time-of-use electricity price, looked up by *local*
//!   weekday and minute of the day (the caller converts event time to the
//!   site's wall clock, so this module needs no time-zone data).
//! - [`kg_co2e`]: emissions from energy with a per-site emission factor.
//! - [`fit`] and [`Baseline`]: an ISO 50006 energy baseline, ordinary least
//!   squares of period energy on production volume and, optionally,
//!   heating or cooling degree-days.
//! - [`Cusum`] and [`BaselineTracker`]: the cumulative sum of
//!   (actual − expected) energy over the reporting periods after the
//!   baseline period.
//! - [`EnergyConfig`]: the configuration of all of it, per site, validated
//!   by [`EnergyConfig::check`] with every problem and its key path.
//!
//! No I/O, no clock: same input, same output. Formulas and units are in
//! `docs/energy.md`.

use crate::StreamError;
use ctower_model::ConfigIssue;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Minutes in a day.
pub const MINUTES_PER_DAY: u16 = 1440;
const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY as u32;

/// Default length of the baseline period, in periods (a week of days).
pub const DEFAULT_BASELINE_PERIODS: usize = 7;
/// Longest accepted baseline period, in periods (about three years of days).
pub const MAX_BASELINE_PERIODS: usize = 1100;
/// Largest accepted emission factor. Grid factors are 0–1.2 kg/kWh; a value
/// above this is almost surely given in g/kWh.
pub const MAX_EMISSION_FACTOR_KG_PER_KWH: f64 = 5.0;

// ---------------------------------------------------------------------------
// Days and times of day
// ---------------------------------------------------------------------------

/// A day of the week, local to the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    /// The day from its ISO 8601 number, Monday = 1 … Sunday = 7 (as
    /// `chrono::Weekday::number_from_monday`); `None` outside 1..=7.
    pub fn from_number_from_monday(n: u8) -> Option<Day> {
        Day::ALL.get(usize::from(n).checked_sub(1)?).copied()
    }

    /// Monday = 0 … Sunday = 6.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][self.index()]
    }

    /// `mon` or `monday`, any case.
    fn parse(s: &str) -> Option<Day> {
        let s = s.trim().to_ascii_lowercase();
        const FULL: [&str; 7] = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        FULL.iter()
            .position(|f| *f == s || (s.len() == 3 && f.starts_with(&s)))
            .map(|i| Day::ALL[i])
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses one `days` entry: a day (`mon`, `Monday`) or an inclusive range
/// (`mon-fri`; `fri-mon` wraps over the weekend).
fn parse_days(entry: &str) -> Option<Vec<Day>> {
    match entry.split_once('-') {
        None => Day::parse(entry).map(|d| vec![d]),
        Some((a, b)) => {
            let (a, b) = (Day::parse(a)?, Day::parse(b)?);
            let len = (b.index() + 7 - a.index()) % 7 + 1;
            Some((0..len).map(|k| Day::ALL[(a.index() + k) % 7]).collect())
        }
    }
}

/// Parses `HH:MM` (two digits each) into minutes of the day. `24:00` is
/// accepted only when `end` is set: it is the end of the day.
fn parse_hhmm(s: &str, end: bool) -> Option<u16> {
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' || ![0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit()) {
        return None;
    }
    let d = |i: usize| u16::from(b[i] - b'0');
    let (h, m) = (d(0) * 10 + d(1), d(3) * 10 + d(4));
    match (h, m) {
        (24, 0) if end => Some(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn hhmm(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// The `[energy]` section: per-site settings, by site name.
///
/// Deserialisation only checks types; [`EnergyConfig::check`] checks the
/// rest and reports every problem at once.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyConfig {
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

/// A validated site's energy settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteEnergy {
    pub tariff: Tariff,
    pub emission_factor_kg_per_kwh: f64,
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

/// Validated baseline settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineSettings {
    pub baseline_periods: usize,
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
    pub kind: DegreeDayKind,
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

fn join_key(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else {
        format!("{prefix}.{rest}")
    }
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
    /// Checks every site and builds its settings. Every problem is reported
    /// (all of them), each with its key path below `key_prefix` (e.g.
    /// `"energy"` gives `energy.sites.lyon-fill.tariff.periods[1].start`).
    pub fn check(
        &self,
        key_prefix: &str,
    ) -> Result<BTreeMap<String, SiteEnergy>, Vec<ConfigIssue>> {
        checked(|issues| {
            let mut sites = BTreeMap::new();
            for (name, site) in &self.sites {
                let base = join_key(key_prefix, &format!("sites.{name}"));
                if let Some(s) = site.check_into(&base, issues) {
                    sites.insert(name.clone(), s);
                }
            }
            Some(sites)
        })
    }

    /// [`check`](Self::check) with the issues folded into one [`StreamError`].
    pub fn build(&self, key_prefix: &str) -> Result<BTreeMap<String, SiteEnergy>, StreamError> {
        self.check(key_prefix).map_err(StreamError::EnergyConfig)
    }
}

/// What `check` built, if it reported no problem; else every problem.
fn checked<T>(
    check: impl FnOnce(&mut Vec<ConfigIssue>) -> Option<T>,
) -> Result<T, Vec<ConfigIssue>> {
    let mut issues = Vec::new();
    match check(&mut issues) {
        Some(t) if issues.is_empty() => Ok(t),
        _ => Err(issues),
    }
}

impl SiteEnergyConfig {
    /// Checks one site; problems are keyed below `base`.
    fn check_into(&self, base: &str, issues: &mut Vec<ConfigIssue>) -> Option<SiteEnergy> {
        let before = issues.len();
        let k = |f: &str| join_key(base, f);
        let tariff = match &self.tariff {
            Some(t) => t.check_into(&k("tariff"), issues),
            None => {
                issues.push(missing(k("tariff"), "the electricity tariff"));
                None
            }
        };
        let key = k("emission_factor_kg_per_kwh");
        if self.emission_factor_kg_per_kwh.is_none() {
            issues.push(missing(key.clone(), "kg CO2e per kWh"));
        }
        let factor = finite(self.emission_factor_kg_per_kwh, &key, issues);
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
        let baseline = self.baseline.check_into(&k("baseline"), issues);
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
}

impl BaselineConfig {
    fn check_into(&self, base: &str, issues: &mut Vec<ConfigIssue>) -> Option<BaselineSettings> {
        let before = issues.len();
        let k = |f: &str| join_key(base, f);
        let temp = finite(self.base_temperature_c, &k("base_temperature_c"), issues);
        let degree_days = match (self.degree_days, temp) {
            (Some(kind), Some(t)) if (-60.0..=60.0).contains(&t) => Some(DegreeDays {
                kind,
                base_temperature_c: t,
            }),
            (Some(_), Some(t)) => {
                issues.push(ConfigIssue::new(
                    k("base_temperature_c"),
                    format!("{t} °C is outside -60..=60 °C"),
                ));
                None
            }
            (Some(_), None) => {
                if self.base_temperature_c.is_none() {
                    issues.push(missing(
                        k("base_temperature_c"),
                        "the base temperature of the degree-days, °C",
                    ));
                }
                None
            }
            (None, _) => {
                if self.base_temperature_c.is_some() {
                    issues.push(ConfigIssue::new(
                        k("base_temperature_c"),
                        "only used with `degree_days` (\"heating\" or \"cooling\")",
                    ));
                }
                None
            }
        };
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
}

// ---------------------------------------------------------------------------
// Tariff
// ---------------------------------------------------------------------------

/// A validated time-of-use tariff.
#[derive(Debug, Clone, PartialEq)]
pub struct Tariff {
    currency: String,
    default_price_per_kwh: f64,
    /// (label, price per kWh) of each period, in configuration order.
    periods: Vec<(String, f64)>,
    /// Disjoint spans of the week, sorted by start.
    spans: Vec<Span>,
}

/// `[start, end)` in minutes of the week (Monday 00:00 = 0), within one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
    period: usize,
}

/// The spans of a period that starts at `start` on each of `days`.
fn spans_of(days: &[Day], start: u16, end: u16, period: usize) -> Vec<Span> {
    let mut out = Vec::new();
    for d in days {
        let day0 = d.index() as u32 * u32::from(MINUTES_PER_DAY);
        let (s, e) = (u32::from(start), u32::from(end));
        if e > s {
            out.push(Span {
                start: day0 + s,
                end: day0 + e,
                period,
            });
        } else {
            // Crosses midnight: the rest of this day, then the next morning
            // (Sunday night continues into Monday).
            out.push(Span {
                start: day0 + s,
                end: day0 + u32::from(MINUTES_PER_DAY),
                period,
            });
            if e > 0 {
                let next = (day0 + u32::from(MINUTES_PER_DAY)) % MINUTES_PER_WEEK;
                out.push(Span {
                    start: next,
                    end: next + e,
                    period,
                });
            }
        }
    }
    out
}

impl TariffConfig {
    /// Checks the tariff and builds it; every problem keyed below `base`.
    pub fn check(&self, base: &str) -> Result<Tariff, Vec<ConfigIssue>> {
        checked(|issues| self.check_into(base, issues))
    }

    fn check_into(&self, base: &str, issues: &mut Vec<ConfigIssue>) -> Option<Tariff> {
        let before = issues.len();
        let k = |f: &str| join_key(base, f);
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
            let pk = |f: &str| k(&format!("periods[{i}].{f}"));
            let label = match p.name.as_deref() {
                Some(n) if n.trim().is_empty() => {
                    issues.push(ConfigIssue::new(pk("name"), "must not be empty"));
                    format!("periods[{i}]")
                }
                Some(n) => {
                    if let Some(first) = names.insert(n, i) {
                        issues.push(ConfigIssue::new(
                            pk("name"),
                            format!("duplicate period name `{n}` (first used by periods[{first}])"),
                        ));
                    }
                    format!("periods[{i}] (`{n}`)")
                }
                None => format!("periods[{i}]"),
            };
            let mut days = Vec::new();
            if p.days.is_empty() {
                issues.push(missing(
                    pk("days"),
                    "e.g. [\"mon-fri\"] or [\"sat\", \"sun\"]",
                ));
            }
            for (j, entry) in p.days.iter().enumerate() {
                match parse_days(entry) {
                    Some(ds) => days.extend(ds),
                    None => issues.push(ConfigIssue::new(
                        pk(&format!("days[{j}]")),
                        format!("`{entry}` is not a day (`mon`, `monday`) or a range (`mon-fri`)"),
                    )),
                }
            }
            days.sort();
            days.dedup();
            let time = |v: &Option<String>,
                        field: &str,
                        end: bool,
                        issues: &mut Vec<ConfigIssue>| match v.as_deref() {
                None => {
                    issues.push(missing(pk(field), "a local time, HH:MM"));
                    None
                }
                Some(s) => {
                    let t = parse_hhmm(s, end);
                    if t.is_none() {
                        let range = if end {
                            "00:00–24:00"
                        } else {
                            "00:00–23:59"
                        };
                        issues.push(ConfigIssue::new(
                            pk(field),
                            format!("`{s}` is not a local time HH:MM in {range}"),
                        ));
                    }
                    t
                }
            };
            let start = time(&p.start, "start", false, issues);
            let end = time(&p.end, "end", true, issues);
            if let (Some(s), Some(e)) = (start, end) {
                if s == e {
                    issues.push(ConfigIssue::new(
                        pk("end"),
                        format!(
                            "equals start ({}): the period is empty (00:00–24:00 is a whole day)",
                            hhmm(u32::from(s))
                        ),
                    ));
                }
            }
            if p.price_per_kwh.is_none() {
                issues.push(missing(pk("price_per_kwh"), "currency units per kWh"));
            }
            let price = finite(p.price_per_kwh, &pk("price_per_kwh"), issues);
            if let (Some(s), Some(e)) = (start, end) {
                if s != e {
                    let mine = spans_of(&days, s, e, i);
                    // Report each pair of overlapping periods once, at the
                    // earliest minute of the week where they meet.
                    let mut hits: BTreeMap<usize, Span> = BTreeMap::new();
                    for a in &mine {
                        for b in &spans {
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
                            k(&format!("periods[{i}]")),
                            format!(
                                "{label} overlaps {} on {day} {}–{}",
                                periods[other].0,
                                hhmm(h.start - day0),
                                hhmm(h.end - day0)
                            ),
                        ));
                    }
                    spans.extend(mine);
                }
            }
            periods.push((label, price.unwrap_or(0.0)));
        }
        if issues.len() != before {
            return None;
        }
        spans.sort_by_key(|s| s.start);
        Some(Tariff {
            currency: self.currency.clone()?,
            default_price_per_kwh: default_price?,
            periods,
            spans,
        })
    }
}

impl Tariff {
    /// Period boundaries (index of the period, minute of the local day)
    /// that are not on a window boundary of `window_secs`: a window is
    /// priced at the rate of its local start, so the window across such a
    /// boundary would take one period's rate for all of it.
    pub fn misaligned(&self, window_secs: u64) -> Vec<(usize, String)> {
        let aligned = |m: u32| window_secs > 0 && (u64::from(m) * 60) % window_secs == 0;
        let mut out = std::collections::BTreeSet::new();
        for s in &self.spans {
            for m in [s.start, s.end].map(|m| m % u32::from(MINUTES_PER_DAY)) {
                if !aligned(m) {
                    out.insert((s.period, m));
                }
            }
        }
        out.into_iter().map(|(p, m)| (p, hhmm(m))).collect()
    }

    /// [`TariffConfig::check`] under the key `tariff`, as one [`StreamError`].
    pub fn build(cfg: &TariffConfig) -> Result<Tariff, StreamError> {
        cfg.check("tariff").map_err(StreamError::EnergyConfig)
    }

    pub fn currency(&self) -> &str {
        &self.currency
    }

    pub fn default_price_per_kwh(&self) -> f64 {
        self.default_price_per_kwh
    }

    /// The period in force at a local time, by index into the configured
    /// periods; `None` for the default price.
    ///
    /// `minute_of_day` is the local wall-clock minute (0..1440), already
    /// converted from event time by the caller. Minutes past the end of the
    /// day count on into the next days, so the lookup is total.
    pub fn period_at(&self, day: Day, minute_of_day: u16) -> Option<usize> {
        let m = (day.index() as u32 * u32::from(MINUTES_PER_DAY) + u32::from(minute_of_day))
            % MINUTES_PER_WEEK;
        let i = self.spans.partition_point(|s| s.end <= m);
        self.spans.get(i).filter(|s| s.start <= m).map(|s| s.period)
    }

    /// The price per kWh at a local time (see [`period_at`](Self::period_at)).
    pub fn price_at(&self, day: Day, minute_of_day: u16) -> f64 {
        self.period_at(day, minute_of_day)
            .map_or(self.default_price_per_kwh, |p| self.periods[p].1)
    }

    /// The label of a period for reports: its index, with its name if it has one.
    pub fn period_label(&self, period: usize) -> Option<&str> {
        self.periods.get(period).map(|p| p.0.as_str())
    }

    /// Cost of `kwh` consumed at a local time, in [`currency`](Self::currency).
    /// Tariff boundaries are whole minutes, so a window that does not cross a
    /// minute boundary has one price.
    pub fn cost(&self, kwh: f64, day: Day, minute_of_day: u16) -> f64 {
        kwh * self.price_at(day, minute_of_day)
    }
}

// ---------------------------------------------------------------------------
// CO2e and degree-days
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Baseline (ordinary least squares)
// ---------------------------------------------------------------------------

/// One period of data: (production volume in units, degree-days if the
/// model uses them, energy in kWh).
pub type PeriodData = (f64, Option<f64>, f64);

/// The fitted model: kWh = intercept + kwh_per_unit × units
/// [+ kwh_per_degree_day × degree-days].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Coefficients {
    /// Energy of a period with no production (and no degree-days), kWh.
    pub intercept_kwh: f64,
    /// Marginal energy per unit produced, kWh/unit.
    pub kwh_per_unit: f64,
    /// Marginal energy per degree-day, kWh/(K·d); `None` without degree-days.
    pub kwh_per_degree_day: Option<f64>,
}

/// An energy baseline (ISO 50006 EnB) fitted by ordinary least squares.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Baseline {
    pub coefficients: Coefficients,
    /// Coefficient of determination, 0..=1 (1 when the energy is the same in
    /// every period, which the intercept alone explains).
    pub r2: f64,
    /// Periods the model was fitted on.
    pub n: usize,
}

impl Baseline {
    /// Model parameters: the intercept and one per regressor.
    pub fn parameters(&self) -> usize {
        2 + usize::from(self.coefficients.kwh_per_degree_day.is_some())
    }

    /// Expected energy of a period, kWh. `degree_days` must be given exactly
    /// when the model uses them.
    pub fn expected(&self, units: f64, degree_days: Option<f64>) -> Result<f64, StreamError> {
        let c = &self.coefficients;
        let dd_term = match (c.kwh_per_degree_day, degree_days) {
            (Some(b), Some(dd)) => b * dd,
            (None, None) => 0.0,
            (model, _) => {
                return Err(StreamError::DegreeDaysMismatch {
                    index: None,
                    model_uses_them: model.is_some(),
                })
            }
        };
        Ok(c.intercept_kwh + c.kwh_per_unit * units + dd_term)
    }
}

/// Mean by two passes: the second corrects the rounding of the first.
fn mean(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let n = xs.clone().count() as f64;
    let m = xs.clone().sum::<f64>() / n;
    m + xs.map(|x| x - m).sum::<f64>() / n
}

/// Whether a regressor is (numerically) constant.
fn constant(xs: impl Iterator<Item = f64>) -> bool {
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    // A spread below 1e-12 of the magnitude is rounding noise: the slope
    // would be noise divided by noise.
    hi - lo <= 1e-12 * lo.abs().max(hi.abs())
}

/// 1 − r² below this means the two regressors are collinear.
const COLLINEAR: f64 = 1e-10;

/// Fits an energy baseline to periods of (units, degree-days, kWh).
///
/// Either every period has degree-days or none has. Needs at least
/// parameters + 2 periods (4 without degree-days, 5 with), a varying
/// production volume, varying degree-days, and regressors that are not
/// collinear. The regressors and the energy are centred on their means
/// first, which removes the intercept from the normal equations and keeps
/// them well conditioned; the 2×2 system is solved in correlation form.
pub fn fit(points: &[PeriodData]) -> Result<Baseline, StreamError> {
    let with_dd = points.first().is_some_and(|p| p.1.is_some());
    let parameters = 2 + usize::from(with_dd);
    let needed = parameters + 2;
    for (index, &(units, dd, kwh)) in points.iter().enumerate() {
        if dd.is_some() != with_dd {
            return Err(StreamError::DegreeDaysMismatch {
                index: Some(index),
                model_uses_them: with_dd,
            });
        }
        for (field, value) in [
            ("units", units),
            ("degree_days", dd.unwrap_or(0.0)),
            ("kwh", kwh),
        ] {
            if !value.is_finite() {
                return Err(StreamError::NonFinite {
                    index,
                    field,
                    value,
                });
            }
        }
    }
    let n = points.len();
    if n < needed {
        return Err(StreamError::TooFewPeriods {
            n,
            parameters,
            needed,
        });
    }
    let xs = || points.iter().map(|p| p.0);
    let ds = || points.iter().map(|p| p.1.unwrap_or(0.0));
    let ys = || points.iter().map(|p| p.2);
    if constant(xs()) {
        return Err(StreamError::ZeroVariance {
            regressor: "production volume (units)",
        });
    }
    if with_dd && constant(ds()) {
        return Err(StreamError::ZeroVariance {
            regressor: "degree-days",
        });
    }
    let (mx, md, my) = (mean(xs()), mean(ds()), mean(ys()));
    let (mut sxx, mut sdd, mut sxd, mut sxy, mut sdy, mut syy) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for &(x, d, y) in points {
        let (u, v, w) = (x - mx, d.unwrap_or(0.0) - md, y - my);
        sxx += u * u;
        sdd += v * v;
        sxd += u * v;
        sxy += u * w;
        sdy += v * w;
        syy += w * w;
    }
    let (b_unit, b_dd) = if with_dd {
        let (rx, rd) = (sxx.sqrt(), sdd.sqrt());
        let r = sxd / (rx * rd);
        let det = 1.0 - r * r;
        if det.is_nan() || det < COLLINEAR {
            return Err(StreamError::Singular { correlation: r });
        }
        // Normal equations of the standardised regressors:
        // [1 r; r 1] β' = z, with b = β' / sqrt(S_kk).
        let (zx, zd) = (sxy / rx, sdy / rd);
        ((zx - r * zd) / det / rx, Some((zd - r * zx) / det / rd))
    } else {
        (sxy / sxx, None)
    };
    let intercept = my - b_unit * mx - b_dd.map_or(0.0, |b| b * md);
    let ss_res: f64 = points
        .iter()
        .map(|&(x, d, y)| {
            let e =
                (y - my) - b_unit * (x - mx) - b_dd.map_or(0.0, |b| b * (d.unwrap_or(0.0) - md));
            e * e
        })
        .sum();
    // In exact arithmetic 0 <= SS_res <= SS_tot; clamp the rounding.
    let r2 = if syy > 0.0 {
        (1.0 - ss_res / syy).clamp(0.0, 1.0)
    } else {
        1.0
    };
    Ok(Baseline {
        coefficients: Coefficients {
            intercept_kwh: intercept,
            kwh_per_unit: b_unit,
            kwh_per_degree_day: b_dd,
        },
        r2,
        n,
    })
}

// ---------------------------------------------------------------------------
// CUSUM and the tracker
// ---------------------------------------------------------------------------

/// Cumulative sum of (actual − expected) energy, kWh. Falling means savings
/// against the baseline, rising means overconsumption; a change of slope
/// dates a change in energy performance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Cusum {
    pub sum: f64,
}

impl Cusum {
    /// Adds one period and returns the running sum.
    pub fn push(&mut self, actual: f64, expected: f64) -> f64 {
        self.sum += actual - expected;
        self.sum
    }
}

/// One reporting period compared with the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Deviation {
    pub expected_kwh: f64,
    pub actual_kwh: f64,
    /// actual − expected.
    pub deviation_kwh: f64,
    /// Running sum of the deviations since the baseline was fitted.
    pub cusum_kwh: f64,
    /// R² of the baseline.
    pub r2: f64,
    pub coefficients: Coefficients,
}

/// What [`BaselineTracker::push`] did with a period.
#[derive(Debug)]
pub enum TrackerStep {
    /// Kept for the baseline: `have` of the `need` periods collected.
    Collecting { have: usize, need: usize },
    /// Kept, and the baseline period is complete: this is the fitted
    /// baseline. Reporting starts with the next period.
    Fitted(Baseline),
    /// Kept, but the `have` periods collected so far cannot be fitted; the
    /// fit is tried again with the next period.
    FitFailed { have: usize, error: StreamError },
    /// A reporting period.
    Tracked(Deviation),
}

/// Collects the baseline period, fits it once, then tracks every later
/// period against it with a CUSUM.
#[derive(Debug, Clone)]
pub struct BaselineTracker {
    baseline_periods: usize,
    degree_days: bool,
    training: Vec<PeriodData>,
    baseline: Option<Baseline>,
    cusum: Cusum,
}

impl BaselineTracker {
    /// A tracker that fits on the first `baseline_periods` periods (more if
    /// those cannot be fitted). `degree_days`: whether periods carry them.
    pub fn new(baseline_periods: usize, degree_days: bool) -> Self {
        BaselineTracker {
            baseline_periods,
            degree_days,
            training: Vec::new(),
            baseline: None,
            cusum: Cusum::default(),
        }
    }

    /// The baseline, once fitted.
    pub fn baseline(&self) -> Option<&Baseline> {
        self.baseline.as_ref()
    }

    /// Adds the next period. A period with a non-finite value, or with
    /// degree-days given when the tracker does not use them (or the other
    /// way round), is refused with an error and changes nothing.
    pub fn push(
        &mut self,
        units: f64,
        degree_days: Option<f64>,
        kwh: f64,
    ) -> Result<TrackerStep, StreamError> {
        let index = self.training.len();
        if degree_days.is_some() != self.degree_days {
            return Err(StreamError::DegreeDaysMismatch {
                index: Some(index),
                model_uses_them: self.degree_days,
            });
        }
        for (field, value) in [
            ("units", units),
            ("degree_days", degree_days.unwrap_or(0.0)),
            ("kwh", kwh),
        ] {
            if !value.is_finite() {
                return Err(StreamError::NonFinite {
                    index,
                    field,
                    value,
                });
            }
        }
        if let Some(b) = &self.baseline {
            let expected_kwh = b.expected(units, degree_days)?;
            let cusum_kwh = self.cusum.push(kwh, expected_kwh);
            return Ok(TrackerStep::Tracked(Deviation {
                expected_kwh,
                actual_kwh: kwh,
                deviation_kwh: kwh - expected_kwh,
                cusum_kwh,
                r2: b.r2,
                coefficients: b.coefficients,
            }));
        }
        self.training.push((units, degree_days, kwh));
        let have = self.training.len();
        if have < self.baseline_periods {
            return Ok(TrackerStep::Collecting {
                have,
                need: self.baseline_periods,
            });
        }
        match fit(&self.training) {
            Ok(b) => {
                self.baseline = Some(b);
                // The training data is no longer needed.
                self.training = Vec::new();
                Ok(TrackerStep::Fitted(b))
            }
            Err(error) => Ok(TrackerStep::FitFailed { have, error }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn period(days: &[&str], start: &str, end: &str, price: f64, name: &str) -> TariffPeriodConfig {
        TariffPeriodConfig {
            name: Some(name.to_string()),
            days: days.iter().map(|d| d.to_string()).collect(),
            start: Some(start.to_string()),
            end: Some(end.to_string()),
            price_per_kwh: Some(price),
        }
    }

    fn tariff(periods: Vec<TariffPeriodConfig>) -> TariffConfig {
        TariffConfig {
            currency: Some("EUR".into()),
            default_price_per_kwh: Some(0.20),
            periods,
        }
    }

    fn hm(h: u16, m: u16) -> u16 {
        h * 60 + m
    }

    #[test]
    fn hhmm_parsing() {
        assert_eq!(parse_hhmm("00:00", false), Some(0));
        assert_eq!(parse_hhmm("23:59", false), Some(1439));
        assert_eq!(parse_hhmm("24:00", true), Some(1440));
        assert_eq!(parse_hhmm("24:00", false), None);
        for bad in [
            "24:01", "7:00", "07:60", "0700", "07:00 ", "ab:cd", "", "07-00",
        ] {
            assert_eq!(parse_hhmm(bad, true), None, "{bad}");
        }
    }

    #[test]
    fn day_parsing_and_ranges() {
        assert_eq!(parse_days("Mon"), Some(vec![Day::Mon]));
        assert_eq!(parse_days("sunday"), Some(vec![Day::Sun]));
        assert_eq!(
            parse_days("mon-fri"),
            Some(vec![Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri])
        );
        assert_eq!(
            parse_days("fri-mon"),
            Some(vec![Day::Fri, Day::Sat, Day::Sun, Day::Mon])
        );
        assert_eq!(parse_days("mo"), None);
        assert_eq!(parse_days("mon-"), None);
        assert_eq!(Day::from_number_from_monday(1), Some(Day::Mon));
        assert_eq!(Day::from_number_from_monday(7), Some(Day::Sun));
        assert_eq!(Day::from_number_from_monday(0), None);
        assert_eq!(Day::from_number_from_monday(8), None);
    }

    #[test]
    fn tariff_lookup_across_midnight_and_weekend() {
        let t = Tariff::build(&tariff(vec![
            period(&["mon-fri"], "07:00", "22:00", 0.30, "peak"),
            // From each weekday evening into the next morning: Friday's
            // night runs into Saturday.
            period(&["mon-fri"], "22:00", "06:00", 0.12, "night"),
            period(&["sat-sun"], "06:00", "24:00", 0.10, "weekend"),
        ]))
        .unwrap();
        assert_eq!(t.currency(), "EUR");
        assert_eq!(t.price_at(Day::Mon, hm(0, 0)), 0.20); // Sunday has no night rate
        assert_eq!(t.price_at(Day::Mon, hm(6, 59)), 0.20);
        assert_eq!(t.price_at(Day::Mon, hm(7, 0)), 0.30);
        assert_eq!(t.price_at(Day::Mon, hm(21, 59)), 0.30);
        assert_eq!(t.price_at(Day::Mon, hm(22, 0)), 0.12);
        assert_eq!(t.price_at(Day::Mon, hm(23, 59)), 0.12);
        assert_eq!(t.price_at(Day::Tue, hm(0, 0)), 0.12);
        assert_eq!(t.price_at(Day::Tue, hm(5, 59)), 0.12);
        assert_eq!(t.price_at(Day::Tue, hm(6, 0)), 0.20);
        assert_eq!(t.price_at(Day::Sat, hm(3, 0)), 0.12);
        assert_eq!(t.price_at(Day::Sat, hm(6, 0)), 0.10);
        assert_eq!(t.price_at(Day::Sun, hm(3, 0)), 0.20);
        assert_eq!(t.price_at(Day::Sun, hm(23, 59)), 0.10);
        // Minutes past the end of the day count into the next day.
        assert_eq!(t.price_at(Day::Mon, MINUTES_PER_DAY + hm(1, 0)), 0.12);
        assert_eq!(t.price_at(Day::Sun, MINUTES_PER_DAY + hm(8, 0)), 0.30);
        assert_eq!(
            t.period_at(Day::Mon, hm(8, 0))
                .and_then(|p| t.period_label(p)),
            Some("periods[0] (`peak`)")
        );
        assert_eq!(t.period_at(Day::Mon, hm(6, 30)), None);
        assert!((t.cost(10.0, Day::Mon, hm(8, 0)) - 3.0).abs() < 1e-12);
    }

    #[test]
    fn sunday_night_continues_into_monday() {
        let t = Tariff::build(&tariff(vec![period(
            &["sun"],
            "20:00",
            "04:30",
            0.05,
            "sunday-night",
        )]))
        .unwrap();
        assert_eq!(t.price_at(Day::Sun, hm(19, 59)), 0.20);
        assert_eq!(t.price_at(Day::Sun, hm(20, 0)), 0.05);
        assert_eq!(t.price_at(Day::Mon, hm(4, 29)), 0.05);
        assert_eq!(t.price_at(Day::Mon, hm(4, 30)), 0.20);
        assert_eq!(t.price_at(Day::Sat, hm(2, 0)), 0.20);
    }

    #[test]
    fn overlap_is_reported_with_both_periods() {
        // Friday's night (into Saturday 00:00–06:00) meets an all-day weekend.
        let err = tariff(vec![
            period(&["mon-fri"], "22:00", "06:00", 0.12, "night"),
            period(&["sat-sun"], "00:00", "24:00", 0.10, "weekend"),
            period(&["wed"], "05:00", "08:00", 0.40, "wednesday"),
        ])
        .check("energy.sites.lyon.tariff")
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
        assert!(tariff(vec![
            period(&["mon"], "00:00", "12:00", 0.1, "a"),
            period(&["mon"], "12:00", "24:00", 0.2, "b"),
            period(&["tue"], "00:00", "24:00", 0.3, "c"),
        ])
        .check("t")
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
        let err = cfg.check("tariff").unwrap_err();
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
        let err = tariff(vec![period(&["mon"], "08:00", "08:00", 0.1, "e")])
            .check("t")
            .unwrap_err();
        assert_eq!(err[0].key, "t.periods[0].end");
        assert!(matches!(
            Tariff::build(&cfg),
            Err(StreamError::EnergyConfig(v)) if v.len() == 12
        ));
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
        let sites = cfg.build("energy").unwrap();
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
        let err = cfg.check("energy").unwrap_err();
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

    #[test]
    fn co2e_and_degree_days() {
        assert_eq!(kg_co2e(2000.0, 0.4), 800.0);
        assert_eq!(heating_degree_days(3.0, 15.5, 2.0), 25.0);
        assert_eq!(heating_degree_days(18.0, 15.5, 1.0), 0.0);
        assert_eq!(cooling_degree_days(28.0, 22.0, 1.0), 6.0);
        assert_eq!(cooling_degree_days(20.0, 22.0, 1.0), 0.0);
    }

    /// kWh = 500 + 0.02·units + 12·HDD, exactly.
    fn exact_points() -> Vec<PeriodData> {
        let units = [
            12_000.0, 15_500.0, 9_800.0, 20_100.0, 17_250.0, 11_000.0, 14_000.0,
        ];
        let hdd = [8.0, 3.5, 12.0, 0.0, 6.25, 10.0, 1.0];
        units
            .iter()
            .zip(hdd)
            .map(|(&u, d)| (u, Some(d), 500.0 + 0.02 * u + 12.0 * d))
            .collect()
    }

    #[test]
    fn exact_model_is_recovered() {
        let b = fit(&exact_points()).unwrap();
        let c = b.coefficients;
        assert!((c.intercept_kwh - 500.0).abs() < 1e-9, "{c:?}");
        assert!((c.kwh_per_unit - 0.02).abs() < 1e-12, "{c:?}");
        assert!((c.kwh_per_degree_day.unwrap() - 12.0).abs() < 1e-9, "{c:?}");
        assert_eq!(b.r2, 1.0);
        assert_eq!((b.n, b.parameters()), (7, 3));
        let e = b.expected(10_000.0, Some(5.0)).unwrap();
        assert!((e - (500.0 + 200.0 + 60.0)).abs() < 1e-9);
        assert!(matches!(
            b.expected(10_000.0, None),
            Err(StreamError::DegreeDaysMismatch {
                index: None,
                model_uses_them: true
            })
        ));
        // Units only.
        let pts: Vec<PeriodData> = (0..5)
            .map(|i| {
                let u = 1000.0 + 250.0 * f64::from(i);
                (u, None, 80.0 + 0.5 * u)
            })
            .collect();
        let b = fit(&pts).unwrap();
        assert!((b.coefficients.intercept_kwh - 80.0).abs() < 1e-9);
        assert!((b.coefficients.kwh_per_unit - 0.5).abs() < 1e-12);
        assert_eq!(b.coefficients.kwh_per_degree_day, None);
        assert_eq!(b.r2, 1.0);
    }

    /// A deterministic noise in [-1, 1).
    fn noise(i: u32) -> f64 {
        let z = u64::from(i)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(17);
        (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// Pearson correlation squared: an independent formula for R² (for OLS
    /// with an intercept, R² = corr(y, ŷ)²; with one regressor, corr(x, y)²).
    fn corr2(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov * cov / (va * vb)
    }

    #[test]
    fn noisy_fit_r2_matches_the_correlation() {
        // One regressor: R² = corr(units, kWh)².
        let pts: Vec<PeriodData> = (0..30)
            .map(|i| {
                let u = 5_000.0 + 400.0 * f64::from(i % 11) + 37.0 * f64::from(i);
                (u, None, 300.0 + 0.03 * u + 40.0 * noise(i))
            })
            .collect();
        let b = fit(&pts).unwrap();
        let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
        let ys: Vec<f64> = pts.iter().map(|p| p.2).collect();
        let r2 = corr2(&xs, &ys);
        assert!((b.r2 - r2).abs() < 1e-12, "{} vs {r2}", b.r2);
        assert!(b.r2 > 0.5 && b.r2 < 1.0, "{}", b.r2);
        assert!((b.coefficients.kwh_per_unit - 0.03).abs() < 0.005);

        // Two regressors: R² = corr(kWh, fitted)².
        let pts: Vec<PeriodData> = (0..40)
            .map(|i| {
                let u = 8_000.0 + 900.0 * f64::from(i % 7);
                let d = 2.0 + f64::from((i * 5) % 13);
                (
                    u,
                    Some(d),
                    900.0 + 0.015 * u + 9.0 * d + 25.0 * noise(i + 100),
                )
            })
            .collect();
        let b = fit(&pts).unwrap();
        let fitted: Vec<f64> = pts.iter().map(|p| b.expected(p.0, p.1).unwrap()).collect();
        let ys: Vec<f64> = pts.iter().map(|p| p.2).collect();
        let r2 = corr2(&ys, &fitted);
        assert!((b.r2 - r2).abs() < 1e-10, "{} vs {r2}", b.r2);
        assert!(b.r2 > 0.8 && b.r2 < 1.0, "{}", b.r2);
    }

    #[test]
    fn unfittable_data_is_refused() {
        let mut pts = exact_points();
        pts.truncate(4);
        assert!(matches!(
            fit(&pts),
            Err(StreamError::TooFewPeriods {
                n: 4,
                parameters: 3,
                needed: 5
            })
        ));
        assert!(matches!(
            fit(&[]),
            Err(StreamError::TooFewPeriods {
                n: 0,
                parameters: 2,
                needed: 4
            })
        ));
        let flat: Vec<PeriodData> = (0..6).map(|i| (100.0, None, f64::from(i))).collect();
        assert!(matches!(
            fit(&flat),
            Err(StreamError::ZeroVariance { regressor }) if regressor.contains("units")
        ));
        let flat_dd: Vec<PeriodData> = (0..6)
            .map(|i| (f64::from(i), Some(3.0), f64::from(i)))
            .collect();
        assert!(matches!(
            fit(&flat_dd),
            Err(StreamError::ZeroVariance {
                regressor: "degree-days"
            })
        ));
        // Degree-days a linear function of the units: singular.
        let collinear: Vec<PeriodData> = (0..6)
            .map(|i| {
                let u = 1000.0 + 100.0 * f64::from(i);
                (u, Some(2.0 + 0.01 * u), 50.0 + f64::from(i * i))
            })
            .collect();
        let e = fit(&collinear).unwrap_err();
        assert!(matches!(e, StreamError::Singular { .. }), "{e}");
        assert!(e.to_string().contains("cannot be separated"), "{e}");
        let mut mixed = exact_points();
        mixed[3].1 = None;
        assert!(matches!(
            fit(&mixed),
            Err(StreamError::DegreeDaysMismatch {
                index: Some(3),
                model_uses_them: true
            })
        ));
        let mut nan = exact_points();
        nan[2].2 = f64::NAN;
        assert!(matches!(
            fit(&nan),
            Err(StreamError::NonFinite {
                index: 2,
                field: "kwh",
                ..
            })
        ));
    }

    #[test]
    fn constant_energy_is_explained_by_the_intercept() {
        let pts: Vec<PeriodData> = (0..5).map(|i| (f64::from(i) * 10.0, None, 42.0)).collect();
        let b = fit(&pts).unwrap();
        assert_eq!(b.r2, 1.0);
        assert!(b.coefficients.kwh_per_unit.abs() < 1e-12);
        assert!((b.coefficients.intercept_kwh - 42.0).abs() < 1e-12);
    }

    #[test]
    fn cusum_accumulates() {
        let mut c = Cusum::default();
        assert_eq!(c.push(110.0, 100.0), 10.0);
        assert_eq!(c.push(95.0, 100.0), 5.0);
        assert_eq!(c.push(90.0, 100.0), -5.0);
        assert_eq!(c.sum, -5.0);
    }

    #[test]
    fn tracker_fits_after_the_baseline_period_then_tracks() {
        let mut t = BaselineTracker::new(7, true);
        let pts = exact_points();
        for (i, &(u, d, k)) in pts.iter().enumerate().take(6) {
            match t.push(u, d, k).unwrap() {
                TrackerStep::Collecting { have, need } => assert_eq!((have, need), (i + 1, 7)),
                other => panic!("{other:?}"),
            }
        }
        let (u, d, k) = pts[6];
        let b = match t.push(u, d, k).unwrap() {
            TrackerStep::Fitted(b) => b,
            other => panic!("{other:?}"),
        };
        assert!((b.coefficients.kwh_per_unit - 0.02).abs() < 1e-12);
        assert_eq!(t.baseline(), Some(&b));
        // 100 kWh over, then 30 under: the CUSUM follows.
        let expected = 500.0 + 0.02 * 10_000.0 + 12.0 * 4.0;
        let steps = [(expected + 100.0, 100.0), (expected - 30.0, 70.0)];
        for (actual, cusum) in steps {
            match t.push(10_000.0, Some(4.0), actual).unwrap() {
                TrackerStep::Tracked(dev) => {
                    assert!((dev.expected_kwh - expected).abs() < 1e-9);
                    assert_eq!(dev.actual_kwh, actual);
                    assert!((dev.deviation_kwh - (actual - expected)).abs() < 1e-9);
                    assert!((dev.cusum_kwh - cusum).abs() < 1e-9, "{dev:?}");
                    assert_eq!(dev.r2, 1.0);
                    assert_eq!(dev.coefficients, b.coefficients);
                }
                other => panic!("{other:?}"),
            }
        }
        // A period without degree-days is refused and changes nothing.
        assert!(matches!(
            t.push(10_000.0, None, 1.0),
            Err(StreamError::DegreeDaysMismatch { .. })
        ));
        assert!(matches!(
            t.push(f64::INFINITY, Some(1.0), 1.0),
            Err(StreamError::NonFinite { field: "units", .. })
        ));
        match t.push(10_000.0, Some(4.0), expected) {
            Ok(TrackerStep::Tracked(dev)) => assert!((dev.cusum_kwh - 70.0).abs() < 1e-9),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tracker_retries_the_fit_with_more_data() {
        let mut t = BaselineTracker::new(4, false);
        // A week of the same production: no slope can be fitted yet.
        for i in 0..3 {
            assert!(matches!(
                t.push(1000.0, None, 100.0 + f64::from(i)),
                Ok(TrackerStep::Collecting { .. })
            ));
        }
        match t.push(1000.0, None, 104.0).unwrap() {
            TrackerStep::FitFailed {
                have: 4,
                error: StreamError::ZeroVariance { .. },
            } => {}
            other => panic!("{other:?}"),
        }
        assert!(t.baseline().is_none());
        match t.push(2000.0, None, 201.0).unwrap() {
            TrackerStep::Fitted(b) => {
                assert_eq!(b.n, 5);
                assert!(b.coefficients.kwh_per_unit > 0.09);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            t.push(1500.0, None, 150.0),
            Ok(TrackerStep::Tracked(_))
        ));
    }

    fn points_strategy() -> impl Strategy<Value = (Vec<PeriodData>, bool)> {
        (5usize..40, any::<bool>()).prop_flat_map(|(n, with_dd)| {
            (
                prop::collection::vec((0.0f64..50_000.0, 0.0f64..25.0, -1_000.0f64..1_000.0), n),
                (0.0f64..2_000.0, 0.0f64..0.1, 0.0f64..50.0),
            )
                .prop_map(move |(raw, (a, b, c))| {
                    let pts = raw
                        .into_iter()
                        .map(|(u, d, e)| {
                            let kwh = a + b * u + if with_dd { c * d } else { 0.0 } + e;
                            (u, with_dd.then_some(d), kwh)
                        })
                        .collect();
                    (pts, with_dd)
                })
        })
    }

    proptest! {
        #[test]
        fn residuals_sum_to_zero_and_r2_is_a_fraction((pts, with_dd) in points_strategy()) {
            // Shrinking reaches constant or collinear regressors: those are
            // refused, not mis-fitted.
            let b = match fit(&pts) {
                Ok(b) => b,
                Err(StreamError::Singular { correlation }) => {
                    prop_assert!(correlation.abs() > 0.999_99);
                    return Ok(());
                }
                Err(StreamError::ZeroVariance { regressor }) => {
                    let column: Vec<f64> = if regressor.contains("units") {
                        pts.iter().map(|p| p.0).collect()
                    } else {
                        pts.iter().map(|p| p.1.unwrap_or(0.0)).collect()
                    };
                    prop_assert!(column.iter().all(|&v| v == column[0]), "{:?}", column);
                    return Ok(());
                }
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            };
            prop_assert_eq!(b.n, pts.len());
            prop_assert_eq!(b.coefficients.kwh_per_degree_day.is_some(), with_dd);
            let fitted: Vec<f64> = pts.iter().map(|p| b.expected(p.0, p.1).unwrap()).collect();
            let ys: Vec<f64> = pts.iter().map(|p| p.2).collect();
            let resid: Vec<f64> = ys.iter().zip(&fitted).map(|(y, f)| y - f).collect();
            let scale = ys.iter().fold(1.0f64, |m, y| m.max(y.abs()));
            let sum: f64 = resid.iter().sum();
            prop_assert!(sum.abs() <= 1e-9 * scale * pts.len() as f64, "Σe = {}", sum);
            // Residuals are orthogonal to each regressor (the normal equations).
            let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
            let xe: f64 = xs.iter().zip(&resid).map(|(x, e)| x * e).sum();
            let xscale: f64 = xs.iter().zip(&resid).map(|(x, e)| (x * e).abs()).sum();
            prop_assert!(xe.abs() <= 1e-8 * xscale.max(1.0), "Σxe = {} of {}", xe, xscale);
            prop_assert!((0.0..=1.0).contains(&b.r2), "r2 = {}", b.r2);
            let r2 = corr2(&ys, &fitted);
            prop_assert!((b.r2 - r2).abs() < 1e-8, "r2 {} vs corr² {}", b.r2, r2);
        }
    }
}
