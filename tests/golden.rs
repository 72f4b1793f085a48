//! Golden test of the batch mode: the KPIs the product writes for the
//! committed recording, a simulated recording across a DST change with
//! messages minutes late, and a hand-written recording of edge cases must
//! equal a plain, non-streaming recomputation made here from the recording
//! itself, under the telemetry contract and docs/kpis.md, and must not
//! depend on the number of workers. Revision numbers are checked against
//! what the input alone implies under the README's watermark rules.
//!
//! The reference shares no code with the product beyond the replay reader
//! and writer (the file format):
//! its own JSON decoding (`serde_json::Value`), its own RFC 3339 parsing, its
//! own product table parsing, and a different time-model algorithm (the
//! whole timeline of an asset as segments, then intersected with windows,
//! instead of a per-window sweep; each counter's and meter's readings as a
//! list of intervals, each cut at the window boundaries it spans, instead
//! of an accumulator that carries the open interval from window to window).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

mod common;

use common::{
    assert_same_files, dead_letter_total, read_jsonl, read_summary, recording, root, run_batch,
    scratch,
};
use ctower_model::ReplayReader;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Tumbling window, aligned to the epoch (`pipeline.window_secs`).
const W: i64 = 60_000;
/// `pipeline.stale_after_secs`.
const STALE_MS: i64 = 60_000;
/// `time_model.micro_stop_secs` and `time_model.startup_secs` (defaults).
const MICRO_MS: i64 = 120_000;
const STARTUP_MS: i64 = 300_000;
/// `pipeline.max_future_secs`.
const MAX_FUTURE_MS: i64 = 300_000;
/// The contract's default `max_payload_bytes` (64 KiB).
const MAX_PAYLOAD_BYTES: usize = 65_536;

// ---------------------------------------------------------------------------
// Batch runs, once per test binary.

struct Runs {
    w1: PathBuf,
    w2: PathBuf,
}

fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let base = scratch("golden");
        let (w1, w2) = (base.join("w1"), base.join("w2"));
        run_batch(&recording(), &w1, 1);
        run_batch(&recording(), &w2, 2);
        Runs { w1, w2 }
    })
}

// ---------------------------------------------------------------------------
// Plain decoding of the recording.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Running,
    Planned,
    Unplanned,
    /// An unplanned stop that ended within `MICRO_MS`.
    Micro,
    Changeover,
    NoShift,
    Unknown,
}

fn state_bucket(code: &str) -> Option<Bucket> {
    Some(match code {
        "running" => Bucket::Running,
        "stopped" | "fault" | "blocked" | "starved" => Bucket::Unplanned,
        "break" | "planned_maintenance" | "cip" | "sip" => Bucket::Planned,
        "changeover" => Bucket::Changeover,
        "no_shift" | "off" => Bucket::NoShift,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    State,
    Product,
    CountTotal,
    CountGood,
    CountReject,
    EnergyKwh,
    PowerKw,
    Feed,
    Permeate,
    Concentrate,
    /// Conductivity, TOC and free process values: no KPI uses them.
    Other,
}

fn role(signal: &str) -> Role {
    match signal {
        "state" => Role::State,
        "product" => Role::Product,
        "count_total" => Role::CountTotal,
        "count_good" => Role::CountGood,
        "count_reject" => Role::CountReject,
        "energy_kwh" => Role::EnergyKwh,
        "power_kw" => Role::PowerKw,
        "feed_m3" => Role::Feed,
        "permeate_m3" => Role::Permeate,
        "concentrate_m3" => Role::Concentrate,
        // conductivity_us_cm, toc_ppb and any other name.
        _ => Role::Other,
    }
}

fn is_cumulative(r: Role) -> bool {
    matches!(
        r,
        Role::CountTotal
            | Role::CountGood
            | Role::CountReject
            | Role::EnergyKwh
            | Role::Feed
            | Role::Permeate
            | Role::Concentrate
    )
}

#[derive(Debug, Clone)]
enum Val {
    State(Bucket),
    Product(String),
    Num(f64),
}

/// (site, area, line, asset)
type AssetId = (String, String, String, String);

#[derive(Debug, Clone)]
struct Msg {
    /// Position in the file: the arrival order.
    idx: usize,
    /// A state's reason code.
    reason: Option<String>,
    ts: i64,
    role: Role,
    signal: String,
    val: Val,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn ts_min() -> i64 {
    days_from_civil(2000, 1, 1) * 86_400_000
}

fn ts_max() -> i64 {
    days_from_civil(2100, 1, 1) * 86_400_000
}

/// `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)` → ms since the epoch.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > mdays[(mo - 1) as usize] {
        return None;
    }
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &s[start..i.min(start + 3)];
        ms = digits.parse::<i64>().ok()? * 10_i64.pow(3 - digits.len() as u32);
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if *sign == b'-' {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1000 + ms)
}

/// Decodes one message under the telemetry contract, except for the
/// admission checks that depend on the other messages.
fn decode(topic: &str, payload: &[u8]) -> Result<(AssetId, Msg), String> {
    let levels: Vec<&str> = topic.split('/').collect();
    if levels.len() != 6 || levels.iter().any(|l| l.is_empty()) {
        return Err(format!("topic `{topic}`"));
    }
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(format!("{} bytes", payload.len()));
    }
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("json: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let ts = match obj.get("ts") {
        Some(Value::Number(n)) => n.as_i64().ok_or(format!("ts {n} is not integer ms"))?,
        Some(Value::String(s)) => parse_rfc3339(s).ok_or(format!("ts `{s}` is not RFC 3339"))?,
        Some(other) => return Err(format!("ts {other}")),
        None => return Err("no ts".into()),
    };
    if !(ts_min()..ts_max()).contains(&ts) {
        return Err(format!("ts {ts} outside 2000..2100"));
    }
    let value = obj.get("value").ok_or("no value")?;
    let signal = levels[5];
    let r = role(signal);
    let val = match r {
        Role::State => {
            let code = value.as_str().ok_or("state is not a string")?;
            Val::State(state_bucket(code).ok_or(format!("state `{code}`"))?)
        }
        Role::Product => Val::Product(value.as_str().ok_or("product is not a string")?.into()),
        _ => {
            let x = match value {
                Value::Number(n) => n.as_f64().ok_or("number")?,
                other => return Err(format!("value {other} is not a number")),
            };
            if !x.is_finite() || (is_cumulative(r) && x < 0.0) {
                return Err(format!("value {x}"));
            }
            Val::Num(x)
        }
    };
    let asset = (
        levels[1].to_string(),
        levels[2].to_string(),
        levels[3].to_string(),
        levels[4].to_string(),
    );
    Ok((
        asset,
        Msg {
            idx: 0,
            reason: obj
                .get("reason")
                .and_then(Value::as_str)
                .map(str::to_string),
            ts,
            role: r,
            signal: signal.to_string(),
            val,
        },
    ))
}

struct Input {
    /// Records in the file.
    records: usize,
    /// Accepted messages per asset, in (ts, file index) order.
    assets: BTreeMap<AssetId, Vec<Msg>>,
    accepted: usize,
    /// Refused messages: (receive time, topic), in file order.
    refused: Vec<(i64, String)>,
}

fn input() -> &'static Input {
    static INPUT: OnceLock<Input> = OnceLock::new();
    INPUT.get_or_init(|| read_input(&recording()))
}

fn read_input(path: &std::path::Path) -> Input {
    {
        let reader = ReplayReader::open(path).expect("opening the recording");
        let mut assets: BTreeMap<AssetId, Vec<Msg>> = BTreeMap::new();
        let mut refused = Vec::new();
        let (mut records, mut accepted) = (0, 0);
        for (idx, rec) in reader.enumerate() {
            let rec = rec.expect("reading the recording");
            records += 1;
            // The contract: an event time more than max_future_secs ahead
            // of its own receive time is a wrong clock.
            let ok = decode(&rec.topic, &rec.payload).and_then(|(asset, msg)| {
                if msg.ts > rec.t_ms + MAX_FUTURE_MS {
                    Err(format!("ts {} > receive time {} + 300 s", msg.ts, rec.t_ms))
                } else {
                    Ok((asset, msg))
                }
            });
            match ok {
                Ok((asset, mut msg)) => {
                    msg.idx = idx;
                    assets.entry(asset).or_default().push(msg);
                    accepted += 1;
                }
                Err(_) => refused.push((rec.t_ms, rec.topic)),
            }
        }
        for msgs in assets.values_mut() {
            msgs.sort_by_key(|m| (m.ts, m.idx));
        }
        Input {
            records,
            assets,
            accepted,
            refused,
        }
    }
}

// ---------------------------------------------------------------------------
// The reference KPIs.

/// Ideal cycle times from `[products]` of configs/default.toml, in ms.
/// A minimal reader: `"name" = { ideal_cycle_secs = X }` lines in the table.
fn products() -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(root().join("configs/default.toml"))
        .expect("reading configs/default.toml");
    let mut out = BTreeMap::new();
    let mut in_table = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_table = line == "[products]";
            continue;
        }
        if !in_table || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = line.split_once('=').expect("product line `name = {…}`");
        let name = name.trim().trim_matches('"').to_string();
        let secs = rest
            .split_once("ideal_cycle_secs")
            .and_then(|(_, r)| r.trim_start().strip_prefix('='))
            .map(|r| r.trim_start())
            .and_then(|r| r.split([',', '}', ' ']).next())
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no ideal_cycle_secs in `{line}`"));
        out.insert(name, secs * 1000.0);
    }
    assert_eq!(out.len(), 12, "products of configs/default.toml: {out:?}");
    out
}

/// A sum that is unknown (`None`) until one of its parts is known: a
/// silent meter is not 0 kWh, but a roll-up with one measured part is known.
fn add_known<T: std::ops::Add<Output = T> + Copy>(a: &mut Option<T>, b: Option<T>) {
    if let Some(b) = b {
        *a = Some(a.map_or(b, |a| a + b));
    }
}

#[derive(Debug, Clone, Default)]
struct Sums {
    messages: u64,
    /// Asset-windows of the scope, and those with fresh data.
    assets: u64,
    assets_reporting: u64,
    /// Site-windows of the scope (site and group levels only), and those
    /// with a reporting asset.
    sites: u64,
    sites_reporting: u64,
    by_reason: BTreeMap<String, i64>,
    running: i64,
    planned: i64,
    unplanned: i64,
    changeover: i64,
    no_shift: i64,
    unknown: i64,
    micro: i64,
    stops: u64,
    micro_stops: u64,
    /// Units from counter intervals; `None` where no interval of that
    /// counter overlapped the period.
    produced: Option<i64>,
    good: Option<i64>,
    reject: Option<i64>,
    ideal_ms: f64,
    good_ideal_ms: f64,
    startup_ideal_ms: f64,
    startup_good_ideal_ms: f64,
    energy: Option<f64>,
    /// Energy over meter intervals no longer than the stale time.
    demand: f64,
    /// Energy meter time (from the first reading on) and the part of it
    /// covered by intervals within the meter's maximum interval, ms.
    meter_ms: i64,
    measured_ms: i64,
    /// Cost and emissions: `None` where none of the energy has a tariff or
    /// an emission factor; `priced` and `co2e_kwh` are the kWh that have.
    cost: Option<f64>,
    priced: f64,
    co2e: Option<f64>,
    co2e_kwh: f64,
    power: Option<f64>,
    feed: Option<f64>,
    permeate: Option<f64>,
    concentrate: Option<f64>,
    /// What counters and meters counted across gaps, by output field.
    unmeasured: BTreeMap<&'static str, f64>,
    gaps: u64,
    /// Water quality ms: conductivity measured/within, TOC measured/within.
    quality: [i64; 4],
    excursions: u64,
}

impl Sums {
    fn add_time(&mut self, b: Bucket, ms: i64) {
        *match b {
            Bucket::Running => &mut self.running,
            Bucket::Planned => &mut self.planned,
            Bucket::Unplanned => &mut self.unplanned,
            Bucket::Micro => &mut self.micro,
            Bucket::Changeover => &mut self.changeover,
            Bucket::NoShift => &mut self.no_shift,
            Bucket::Unknown => &mut self.unknown,
        } += ms;
    }

    fn add(&mut self, o: &Sums) {
        self.messages += o.messages;
        self.assets += o.assets;
        self.assets_reporting += o.assets_reporting;
        self.sites += o.sites;
        self.sites_reporting += o.sites_reporting;
        self.running += o.running;
        self.planned += o.planned;
        self.unplanned += o.unplanned;
        self.changeover += o.changeover;
        self.no_shift += o.no_shift;
        self.unknown += o.unknown;
        for (r, ms) in &o.by_reason {
            *self.by_reason.entry(r.clone()).or_default() += ms;
        }
        self.micro += o.micro;
        self.stops += o.stops;
        self.micro_stops += o.micro_stops;
        add_known(&mut self.produced, o.produced);
        add_known(&mut self.good, o.good);
        add_known(&mut self.reject, o.reject);
        self.ideal_ms += o.ideal_ms;
        self.good_ideal_ms += o.good_ideal_ms;
        self.startup_ideal_ms += o.startup_ideal_ms;
        self.startup_good_ideal_ms += o.startup_good_ideal_ms;
        add_known(&mut self.energy, o.energy);
        self.demand += o.demand;
        self.meter_ms += o.meter_ms;
        self.measured_ms += o.measured_ms;
        add_known(&mut self.cost, o.cost);
        self.priced += o.priced;
        add_known(&mut self.co2e, o.co2e);
        self.co2e_kwh += o.co2e_kwh;
        add_known(&mut self.power, o.power);
        add_known(&mut self.feed, o.feed);
        add_known(&mut self.permeate, o.permeate);
        add_known(&mut self.concentrate, o.concentrate);
        for (f, x) in &o.unmeasured {
            *self.unmeasured.entry(f).or_default() += x;
        }
        self.gaps += o.gaps;
        for (a, b) in self.quality.iter_mut().zip(o.quality) {
            *a += b;
        }
        self.excursions += o.excursions;
    }

    /// Whether the asset of this asset-window had fresh data: a message,
    /// known machine time, a measured meter interval or a fresh
    /// water-quality reading (docs/kpis.md, "asset coverage").
    fn reporting(&self, measured_interval: bool) -> bool {
        self.messages > 0
            || self.modelled() > self.unknown
            || measured_interval
            || self.quality[0] > 0
            || self.quality[2] > 0
    }

    fn modelled(&self) -> i64 {
        self.running
            + self.planned
            + self.unplanned
            + self.micro
            + self.changeover
            + self.no_shift
            + self.unknown
    }
}

fn window_of(ts: i64) -> i64 {
    ts.div_euclid(W) * W
}

/// Knobs of the reference, so that a test can check the comparison fails
/// when the reference is wrong.
#[derive(Debug, Clone, Copy)]
struct Params {
    stale_ms: i64,
    micro_ms: i64,
    /// The longest reading interval of a counter or meter that is spread
    /// over its windows; longer is a gap. configs/default.toml has no
    /// `[signals]` table, so it is `pipeline.stale_after_secs` for every
    /// signal (checked by `reference_sites_and_signals_match_the_configuration`).
    max_interval_ms: i64,
}

const PARAMS: Params = Params {
    stale_ms: STALE_MS,
    micro_ms: MICRO_MS,
    max_interval_ms: STALE_MS,
};

/// Whether the stop that begins with `msgs[i]` is a micro-stop: the next
/// state message that is not an unplanned stop comes within `micro_ms`.
fn stop_is_micro(msgs: &[Msg], i: usize, p: Params) -> bool {
    msgs[i + 1..]
        .iter()
        .find(|m| matches!(m.val, Val::State(b) if b != Bucket::Unplanned))
        .is_some_and(|m| m.ts - msgs[i].ts <= p.micro_ms)
}

/// The asset's time model as segments [from, to) with a bucket, from the
/// start of the window of its first state message to `end`.
fn timeline(msgs: &[Msg], end: i64, p: Params) -> Vec<(i64, i64, Bucket, Option<String>)> {
    let Some(first_state) = msgs.iter().find(|m| m.role == Role::State) else {
        return Vec::new();
    };
    let s0 = first_state.ts;
    let mut segs = vec![(window_of(s0), s0, Bucket::Unknown, None)];
    let mut state: Option<Bucket> = None;
    let mut reason: Option<String> = None;
    let mut i = 0;
    while i < msgs.len() {
        // All messages at this instant, then the state holding after them.
        let e = msgs[i].ts;
        while i < msgs.len() && msgs[i].ts == e {
            if let Val::State(b) = msgs[i].val {
                reason.clone_from(&msgs[i].reason);
                let in_stop = matches!(state, Some(Bucket::Unplanned | Bucket::Micro));
                state = Some(match b {
                    Bucket::Unplanned if in_stop => state.expect("in a stop"),
                    Bucket::Unplanned if stop_is_micro(msgs, i, p) => Bucket::Micro,
                    other => other,
                });
            }
            i += 1;
        }
        let Some(b) = state else { continue };
        let next = msgs.get(i).map_or(end, |m| m.ts.min(end));
        let fresh_until = (e + p.stale_ms).min(next);
        segs.push((e, fresh_until, b, reason.clone()));
        segs.push((fresh_until, next, Bucket::Unknown, None));
    }
    segs.retain(|(a, b, _, _)| b > a);
    segs
}

/// (period start, period kind (`PERIODS`), level, site, area, line, asset)
type Key = (
    i64,
    u8,
    u8,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

const LEVELS: [&str; 4] = ["group", "site", "line", "asset"];
const PERIODS: [&str; 3] = ["window", "shift", "day"];

// ---------------------------------------------------------------------------
// The site calendars of configs/default.toml, evaluated independently.

/// (site, zone, production day start, shifts as (name, start, end) in
/// minutes of the local day; end ≤ start crosses midnight).
type Calendar = (
    &'static str,
    chrono_tz::Tz,
    u32,
    [(&'static str, u32, u32); 3],
);

const CALENDARS: [Calendar; 3] = [
    (
        "lyon-fill",
        chrono_tz::Europe::Paris,
        360,
        [
            ("early", 360, 840),
            ("late", 840, 1320),
            ("night", 1320, 360),
        ],
    ),
    (
        "basel-api",
        chrono_tz::Europe::Zurich,
        360,
        [
            ("early", 360, 840),
            ("late", 840, 1320),
            ("night", 1320, 360),
        ],
    ),
    (
        "shanghai-pack",
        chrono_tz::Asia::Shanghai,
        420,
        [
            ("day", 420, 900),
            ("evening", 900, 1380),
            ("night", 1380, 420),
        ],
    ),
];

/// The UTC ms of local midnight of `date` plus `min` minutes (the earliest
/// instant when the local time is ambiguous).
fn local_ms(tz: chrono_tz::Tz, date: chrono::NaiveDate, min: u32) -> i64 {
    use chrono::TimeZone;
    let t = date.and_hms_opt(0, 0, 0).expect("midnight") + chrono::Duration::minutes(min.into());
    tz.from_local_datetime(&t)
        .earliest()
        .expect("calendar times exist in the reference's range")
        .timestamp_millis()
}

/// Periods a window of `site` belongs to: (kind, start, end, production
/// day, shift), the day first.
fn periods_of(site: &str, w: i64) -> Vec<(u8, i64, i64, String, Option<String>)> {
    use chrono::{Datelike, Timelike};
    let Some(&(_, tz, day_start, shifts)) = CALENDARS.iter().find(|c| c.0 == site) else {
        return vec![];
    };
    let utc = chrono::DateTime::from_timestamp_millis(w).expect("window time");
    let local = utc.with_timezone(&tz);
    let minute = local.hour() * 60 + local.minute();
    let date = local.date_naive();
    let before = |start: u32| {
        if minute >= start {
            date
        } else {
            date.pred_opt().expect("date")
        }
    };
    let day = before(day_start);
    let next = |d: chrono::NaiveDate| d.succ_opt().expect("date");
    let mut out = vec![(
        2,
        local_ms(tz, day, day_start),
        local_ms(tz, next(day), day_start),
        day.to_string(),
        None,
    )];
    for (name, a, b) in shifts {
        let inside = if a < b {
            (a..b).contains(&minute)
        } else {
            minute >= a || minute < b
        };
        if inside {
            let started = before(a);
            let end = if b <= a {
                local_ms(tz, next(started), b)
            } else {
                local_ms(tz, started, b)
            };
            let start = local_ms(tz, started, a);
            // The production day of a shift is that of its start.
            let sd = if a >= day_start {
                started
            } else {
                started.pred_opt().expect("date")
            };
            let _ = sd.day();
            out.push((1, start, end, sd.to_string(), Some(name.to_string())));
        }
    }
    out
}

/// The expected record of a key: its sums and what the calendar says.
#[derive(Debug, Clone, Default)]
struct Ref {
    sums: Sums,
    end: i64,
    production_day: Option<String>,
    shift: Option<String>,
    complete: bool,
    /// Windows of a shift or day (for its peak demand).
    windows: BTreeSet<i64>,
    peak_kw: Option<f64>,
    /// The range the revision of the product's latest record of the key
    /// must lie in (`set_revision_ranges`); (0, 0) without late data.
    revision: (i64, i64),
}

fn show_key(k: &Key) -> String {
    let path: Vec<&str> = [&k.3, &k.4, &k.5, &k.6]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    format!(
        "{} {} {} {}",
        PERIODS[k.1 as usize],
        k.0,
        LEVELS[k.2 as usize],
        if path.is_empty() {
            "(all)".to_string()
        } else {
            path.join("/")
        }
    )
}

/// The output field a cumulative signal's increases go to (also its key in
/// `unmeasured`).
fn field_of(r: Role) -> &'static str {
    match r {
        Role::CountTotal => "produced",
        Role::CountGood => "good",
        Role::CountReject => "reject",
        Role::EnergyKwh => "energy_kwh",
        Role::Feed => "water_feed_m3",
        Role::Permeate => "water_permeate_m3",
        Role::Concentrate => "water_concentrate_m3",
        other => unreachable!("{other:?} is not cumulative"),
    }
}

/// A signal's readings, (event time, value), in event-time then arrival order.
type Readings = Vec<(i64, f64)>;

/// What a cumulative signal counted between two consecutive readings:
/// `delta` over `(t0, t1]`.
#[derive(Debug, Clone, Copy)]
struct Interval {
    t0: i64,
    t1: i64,
    delta: f64,
}

/// The intervals between consecutive readings (already in event time,
/// then arrival order). The contract's reset rule: a value below the
/// previous one is a reset, and the new value is the increase since it
/// (configs/default.toml sets no `counter_rollover`). The first reading is
/// only a baseline.
fn intervals(readings: &[(i64, f64)]) -> Vec<Interval> {
    readings
        .windows(2)
        .map(|pair| {
            let ((t0, before), (t1, now)) = (pair[0], pair[1]);
            let delta = if now >= before { now - before } else { now };
            Interval { t0, t1, delta }
        })
        .collect()
}

/// The windows an interval overlaps, with the overlap `[from, to)` in each
/// (a set of positive length: a reading at a boundary belongs to the window
/// before it). An interval of zero length (two readings at one instant)
/// lies wholly in the window of its end.
fn pieces(iv: &Interval) -> Vec<(i64, i64, i64)> {
    if iv.t1 == iv.t0 {
        return vec![(window_of(iv.t1), iv.t1, iv.t1)];
    }
    let mut out = Vec::new();
    let mut w = window_of(iv.t0);
    while w < iv.t1 {
        let (from, to) = (iv.t0.max(w), iv.t1.min(w + W));
        if to > from {
            out.push((w, from, to));
        }
        w += W;
    }
    out
}

/// The part of `iv` in `[from, to)`: pro rata for meters; for whole units
/// the difference of the rounded cumulative shares at both ends (rounding
/// half away from zero), so that the parts add up to round(Δ).
fn part(iv: &Interval, from: i64, to: i64) -> (f64, i64) {
    let len = iv.t1 - iv.t0;
    if len == 0 {
        return (iv.delta, iv.delta.round() as i64);
    }
    let share = |x: i64| iv.delta * (x - iv.t0) as f64 / len as f64;
    let amount = iv.delta * (to - from) as f64 / len as f64;
    (amount, (share(to).round() - share(from).round()) as i64)
}

/// What is in effect for the units of a part that ends at `x`: the
/// product's ideal cycle time and whether it is a start-up. Readings are
/// applied before state and product messages of the same instant, so only
/// messages strictly before `x` count.
struct InEffect<'a> {
    /// Product messages, in event-time then arrival order.
    products: Vec<(i64, &'a str)>,
    /// Instants of start-ups (a `running` state after a changeover, a
    /// planned stop or no shift).
    startups: Vec<i64>,
}

impl InEffect<'_> {
    fn cycle_ms(&self, x: i64, ideal: &BTreeMap<String, f64>) -> f64 {
        let n = self.products.partition_point(|(t, _)| *t < x);
        n.checked_sub(1)
            .and_then(|i| ideal.get(self.products[i].1))
            .copied()
            .unwrap_or(0.0)
    }

    fn startup(&self, x: i64) -> bool {
        let n = self.startups.partition_point(|t| *t < x);
        n.checked_sub(1)
            .is_some_and(|i| x - self.startups[i] < STARTUP_MS)
    }
}

/// (level, site, area, line, asset); the site is that of the asset-window
/// even for the group, which has no shifts or days.
type Scope = (
    u8,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Adds an asset-window's sums to the record of `scope` (level, site,
/// area, line, asset) in window `w`, and, below the group, to the site's
/// shift and production-day records holding the window.
fn add_window(out: &mut BTreeMap<Key, Ref>, run_end: i64, w: i64, scope: &Scope, s: &Sums) {
    let (level, site, area, line, asset) = scope;
    let level = *level;
    let periods = periods_of(site.as_deref().expect("a site"), w);
    let (a, b, c, d) = if level == 0 {
        (None, None, None, None)
    } else {
        (site.clone(), area.clone(), line.clone(), asset.clone())
    };
    let r = out
        .entry((w, 0, level, a.clone(), b.clone(), c.clone(), d.clone()))
        .or_default();
    r.sums.add(s);
    r.end = w + W;
    r.complete = true;
    if level == 0 {
        return;
    }
    r.production_day = periods.first().map(|p| p.3.clone());
    r.shift = periods.iter().find(|p| p.0 == 1).and_then(|p| p.4.clone());
    for (kind, start, stop, pday, shift) in periods {
        let r = out
            .entry((
                start,
                kind,
                level,
                a.clone(),
                b.clone(),
                c.clone(),
                d.clone(),
            ))
            .or_default();
        r.sums.add(s);
        r.windows.insert(w);
        r.end = stop;
        r.complete = stop <= run_end;
        r.production_day = Some(pday);
        r.shift = shift;
    }
}

/// Reference sums for every (window, scope) the output must hold.
fn reference(input: &Input, p: Params) -> BTreeMap<Key, Ref> {
    let ideal = products();
    let all = || input.assets.values().flatten();
    let first_window = all().map(|m| m.ts).min().map(window_of).expect("messages");
    let last_window = all().map(|m| m.ts).max().map(window_of).expect("messages");
    let end = last_window + W;
    let mut out: BTreeMap<Key, Ref> = BTreeMap::new();
    for ((site, area, line, asset), msgs) in &input.assets {
        let mut win: BTreeMap<i64, Sums> = (window_of(msgs[0].ts)..=last_window)
            .step_by(W as usize)
            .map(|w| (w, Sums::default()))
            .collect();
        // Energy meter time: every window from the meter's first reading on.
        let first_meter = msgs
            .iter()
            .find(|m| m.role == Role::EnergyKwh && matches!(m.val, Val::Num(_)))
            .map(|m| m.ts);
        if let Some(f) = first_meter {
            for (w, s) in win.iter_mut().filter(|(w, _)| **w + W > f) {
                s.meter_ms = w + W - f.max(*w);
            }
        }
        // Time model: whole timeline, then intersected with the windows.
        for (a, b, bucket, reason) in timeline(msgs, end, p) {
            let mut w = window_of(a);
            while w < b {
                let ms = b.min(w + W) - a.max(w);
                let s = win.get_mut(&w).expect("window in range");
                s.add_time(bucket, ms);
                if bucket == Bucket::Unplanned {
                    let r = reason.clone().unwrap_or_else(|| "unspecified".into());
                    *s.by_reason.entry(r).or_default() += ms;
                }
                w += W;
            }
        }
        // Messages, stops, start-ups, products, power; the readings of
        // each counter and meter.
        let mut effect = InEffect {
            products: Vec::new(),
            startups: Vec::new(),
        };
        let mut readings: BTreeMap<&str, (Role, Readings)> = BTreeMap::new();
        let mut last_state: Option<Bucket> = None;
        for (i, m) in msgs.iter().enumerate() {
            let s = win.get_mut(&window_of(m.ts)).expect("window in range");
            s.messages += 1;
            match (&m.val, m.role) {
                (Val::State(b), _) => {
                    // A stop begins where the state changes into an unplanned stop.
                    if *b == Bucket::Unplanned && last_state != Some(Bucket::Unplanned) {
                        if stop_is_micro(msgs, i, p) {
                            s.micro_stops += 1;
                        } else {
                            s.stops += 1;
                        }
                    }
                    if *b == Bucket::Running
                        && matches!(
                            last_state,
                            Some(Bucket::Changeover | Bucket::Planned | Bucket::NoShift)
                        )
                    {
                        effect.startups.push(m.ts);
                    }
                    last_state = Some(*b);
                }
                (Val::Product(name), _) => effect.products.push((m.ts, name)),
                (Val::Num(x), Role::PowerKw) => s.power = Some(*x),
                (Val::Num(x), r) if is_cumulative(r) => {
                    readings
                        .entry(&m.signal)
                        .or_insert((r, Vec::new()))
                        .1
                        .push((m.ts, *x));
                }
                _ => {}
            }
        }
        // Counters and meters: each signal's readings become intervals,
        // each interval is cut at the window boundaries it spans; a gap
        // goes whole to `unmeasured` in the window of its end.
        let mut measured: BTreeSet<i64> = BTreeSet::new();
        for (role, series) in readings.values() {
            let field = field_of(*role);
            for iv in intervals(series) {
                let len = iv.t1 - iv.t0;
                if len > p.max_interval_ms {
                    let s = win.get_mut(&window_of(iv.t1)).expect("window in range");
                    *s.unmeasured.entry(field).or_default() += iv.delta;
                    s.gaps += 1;
                    continue;
                }
                for (w, from, to) in pieces(&iv) {
                    measured.insert(w);
                    let s = win.get_mut(&w).expect("window in range");
                    let (amount, units) = part(&iv, from, to);
                    // The product and start-up status at the end of the part.
                    let ideal_ms = units as f64 * effect.cycle_ms(to, &ideal);
                    let startup = effect.startup(to);
                    match role {
                        Role::CountTotal => {
                            add_known(&mut s.produced, Some(units));
                            s.ideal_ms += ideal_ms;
                            if startup {
                                s.startup_ideal_ms += ideal_ms;
                            }
                        }
                        Role::CountGood => {
                            add_known(&mut s.good, Some(units));
                            s.good_ideal_ms += ideal_ms;
                            if startup {
                                s.startup_good_ideal_ms += ideal_ms;
                            }
                        }
                        Role::CountReject => add_known(&mut s.reject, Some(units)),
                        Role::EnergyKwh => {
                            add_known(&mut s.energy, Some(amount));
                            s.measured_ms += to - from;
                            if len <= p.stale_ms {
                                s.demand += amount;
                            }
                        }
                        Role::Feed => add_known(&mut s.feed, Some(amount)),
                        Role::Permeate => add_known(&mut s.permeate, Some(amount)),
                        Role::Concentrate => add_known(&mut s.concentrate, Some(amount)),
                        _ => unreachable!("not cumulative"),
                    }
                }
            }
        }
        // Water quality: each reading holds until the next reading of the
        // same signal or for the stale time, whichever is first.
        for (k, (name, limit)) in [("conductivity_us_cm", 1.3), ("toc_ppb", 500.0)]
            .into_iter()
            .enumerate()
        {
            let readings: Vec<(i64, f64)> = msgs
                .iter()
                .filter(|m| m.signal == name)
                .filter_map(|m| match m.val {
                    Val::Num(x) => Some((m.ts, x)),
                    _ => None,
                })
                .collect();
            for (i, &(t, v)) in readings.iter().enumerate() {
                let next = readings.get(i + 1).map_or(end, |r| r.0);
                let until = next.min(t + STALE_MS).min(end);
                let within = v <= limit;
                let was_within = i == 0 || readings[i - 1].1 <= limit;
                if !within && was_within {
                    win.get_mut(&window_of(t))
                        .expect("window in range")
                        .excursions += 1;
                }
                let mut w = window_of(t);
                while w < until {
                    let ms = until.min(w + W) - t.max(w);
                    let q = &mut win.get_mut(&w).expect("window in range").quality;
                    q[2 * k] += ms;
                    if within {
                        q[2 * k + 1] += ms;
                    }
                    w += W;
                }
            }
        }
        // Roll-ups: asset, line, site, group; windows, then the site's
        // shifts and production days (site, line and asset scopes).
        for (w, mut s) in win {
            s.assets = 1;
            s.assets_reporting = u64::from(s.reporting(measured.contains(&w)));
            if let Some(e) = s.energy {
                // Priced at the window's local start; emissions by factor.
                if let Some(price) = price(site, w) {
                    s.cost = Some(e * price);
                    s.priced = e;
                }
                if let Some(f) = emission_factor(site) {
                    s.co2e = Some(e * f);
                    s.co2e_kwh = e;
                }
            }
            let o = |x: &String| Some(x.clone());
            for scope in [
                (0, o(site), None, None, None),
                (1, o(site), None, None, None),
                (2, o(site), o(area), o(line), None),
                (3, o(site), o(area), o(line), o(asset)),
            ] {
                add_window(&mut out, end, w, &scope, &s);
            }
        }
    }
    // The configured sites are in every window, even silent.
    for site in CONFIGURED_SITES {
        for w in (first_window..=last_window).step_by(W as usize) {
            for level in [0, 1] {
                let scope = (level, Some(site.to_string()), None, None, None);
                add_window(&mut out, end, w, &scope, &Sums::default());
            }
        }
    }
    // Site-windows: one per site record of a window; it reports if one of
    // the site's assets did. They add up in the group and in the site's
    // shifts and days.
    let site_windows: Vec<(i64, String, bool)> = out
        .iter()
        .filter(|(k, _)| k.1 == 0 && k.2 == 1)
        .map(|(k, r)| {
            let site = k.3.clone().expect("a site record has a site");
            (k.0, site, r.sums.assets_reporting > 0)
        })
        .collect();
    for (w, site, reporting) in site_windows {
        let mut keys = vec![
            (w, 0, 0, None, None, None, None),
            (w, 0, 1, Some(site.clone()), None, None, None),
        ];
        for (kind, start, ..) in periods_of(&site, w) {
            keys.push((start, kind, 1, Some(site.clone()), None, None, None));
        }
        for k in keys {
            let r = out.get_mut(&k).expect("record of a site-window");
            r.sums.sites += 1;
            r.sums.sites_reporting += u64::from(reporting);
        }
    }
    // Demand: a window's mean power where a meter measured some of it; a
    // shift's or day's highest window demand.
    let demand = |s: &Sums| (s.measured_ms > 0).then(|| s.demand * 3_600_000.0 / W as f64);
    let peaks: Vec<(Key, Option<f64>)> = out
        .iter()
        .map(|(k, r)| {
            let peak = if k.1 == 0 {
                demand(&r.sums)
            } else {
                r.windows
                    .iter()
                    .filter_map(|w| {
                        let wk = (
                            *w,
                            0,
                            k.2,
                            k.3.clone(),
                            k.4.clone(),
                            k.5.clone(),
                            k.6.clone(),
                        );
                        demand(&out[&wk].sums)
                    })
                    .reduce(f64::max)
            };
            (k.clone(), peak)
        })
        .collect();
    for (k, p) in peaks {
        if let Some(r) = out.get_mut(&k) {
            r.peak_kw = p;
        }
    }
    out
}

/// The tariffs of `[energy]` in configs/default.toml: Lyon 0.27 EUR/kWh on
/// weekdays 08:00–20:00 local, else 0.18; Basel 0.21; Shanghai none. A
/// window is priced at its local start.
fn price(site: &str, w: i64) -> Option<f64> {
    use chrono::{Datelike, Timelike};
    match site {
        "lyon-fill" => {
            let local = chrono::DateTime::from_timestamp_millis(w)
                .expect("window time")
                .with_timezone(&chrono_tz::Europe::Paris);
            let minute = local.hour() * 60 + local.minute();
            let weekday = local.weekday().number_from_monday() <= 5;
            Some(if weekday && (480..1200).contains(&minute) {
                0.27
            } else {
                0.18
            })
        }
        "basel-api" => Some(0.21),
        _ => None,
    }
}

/// Emission factors of `[energy.sites]`, kg CO2e per kWh; Shanghai none.
fn emission_factor(site: &str) -> Option<f64> {
    match site {
        "lyon-fill" => Some(0.052),
        "basel-api" => Some(0.031),
        _ => None,
    }
}

/// The sites of configs/default.toml (`[sites.NAME]`, `[energy.sites.NAME]`).
const CONFIGURED_SITES: [&str; 3] = ["lyon-fill", "basel-api", "shanghai-pack"];

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Int(i64),
    /// An integer or null.
    Count(Option<i64>),
    Float(Option<f64>),
    Text(Option<String>),
    Bool(bool),
    Map(BTreeMap<String, i64>),
    FloatMap(BTreeMap<&'static str, f64>),
    /// An integer in `min..=max`.
    Range(i64, i64),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Int(i) => write!(f, "{i}"),
            Expect::Count(Some(i)) => write!(f, "{i}"),
            Expect::Float(Some(x)) => write!(f, "{x}"),
            Expect::Text(Some(s)) => write!(f, "\"{s}\""),
            Expect::Count(None) | Expect::Float(None) | Expect::Text(None) => write!(f, "null"),
            Expect::Bool(b) => write!(f, "{b}"),
            Expect::Map(m) => write!(f, "{m:?}"),
            Expect::FloatMap(m) => write!(f, "{m:?}"),
            Expect::Range(a, b) if a == b => write!(f, "{a}"),
            Expect::Range(a, i64::MAX) => write!(f, "at least {a}"),
            Expect::Range(a, b) => write!(f, "{a}..={b}"),
        }
    }
}

/// Every field of the KPI record of `k`, in the order of the README's table.
fn expected_fields(k: &Key, r: &Ref) -> Vec<(&'static str, Expect)> {
    use Expect::{Bool, Float, Int, Text};
    let s = &r.sums;
    let uint = |n: u64| Int(i64::try_from(n).expect("count fits i64"));
    // Micro-stops are a performance loss: inside actual production time.
    let apt = s.running + s.micro;
    let pbt = apt + s.unplanned + s.changeover;
    let modelled = s.modelled();
    // Unknown is not zero: without counter data there is no performance;
    // the losses are null where one of their inputs is (README): the
    // availability losses need the time model, the performance losses the
    // time model (APT, micro-stops) and the counters (ideal time), the
    // quality losses the counters of both total and good units (ideal and
    // fully productive time), not the time model.
    let counted = s.produced.is_some();
    let time_model = modelled > 0;
    let timed_and_counted = counted && time_model;
    let graded = counted && s.good.is_some();
    // APT not covered by the ideal time: minor stops first, then speed.
    let performance_loss = (apt as f64 - s.ideal_ms).max(0.0);
    let minor = (s.micro as f64).min(performance_loss);
    let availability = ratio(apt as f64, pbt as f64);
    let performance = if counted {
        ratio(s.ideal_ms, apt as f64)
    } else {
        None
    };
    let quality = match (s.good, s.produced) {
        (Some(g), Some(n)) => ratio(g as f64, n as f64).map(|q| q.min(1.0)),
        _ => None,
    };
    // The OEE row of docs/kpis.md: "0 when any factor is 0", even when
    // another is unknown (an availability of 0 leaves nothing for the
    // others to scale); otherwise null when a factor is ("performance
    // without counter data (so OEE is null, not 0)").
    let factors = [availability, performance.map(|p| p.min(1.0)), quality];
    let oee = if factors.contains(&Some(0.0)) {
        Some(0.0)
    } else if let [Some(a), Some(p), Some(q)] = factors {
        Some(a * p * q)
    } else {
        None
    };
    // Standby: known states only, no production time, and meters that
    // measured the whole period.
    let standby = s.energy.filter(|_| {
        time_model && s.unknown == 0 && apt == 0 && s.meter_ms > 0 && s.measured_ms >= s.meter_ms
    });
    let standby = standby.map(|e| e * 3_600_000.0 / (r.end - k.0) as f64);
    let coverage = ratio((modelled - s.unknown) as f64, modelled as f64);
    let quality_loss = (s.ideal_ms - s.good_ideal_ms).max(0.0);
    let startup = (s.startup_ideal_ms - s.startup_good_ideal_ms).clamp(0.0, quality_loss);
    let defect = (quality_loss - startup).max(0.0);
    let per_good = |x: Option<f64>| match (x, s.good) {
        (Some(x), Some(g)) => ratio(x, g as f64),
        _ => None,
    };
    let of_energy = |x: f64| s.energy.and_then(|e| ratio(x, e));
    vec![
        ("window_start_ms", Int(k.0)),
        ("window_end_ms", Int(r.end)),
        ("level", Text(Some(LEVELS[k.2 as usize].to_string()))),
        ("site", Text(k.3.clone())),
        ("area", Text(k.4.clone())),
        ("line", Text(k.5.clone())),
        ("asset", Text(k.6.clone())),
        ("revision", Expect::Range(r.revision.0, r.revision.1)),
        ("period", Text(Some(PERIODS[k.1 as usize].to_string()))),
        ("production_day", Text(r.production_day.clone())),
        ("shift", Text(r.shift.clone())),
        ("complete", Bool(r.complete)),
        ("messages", uint(s.messages)),
        ("assets", uint(s.assets)),
        ("assets_reporting", uint(s.assets_reporting)),
        ("sites", uint(s.sites)),
        ("sites_reporting", uint(s.sites_reporting)),
        ("running_ms", Int(s.running)),
        ("planned_stop_ms", Int(s.planned)),
        ("unplanned_stop_ms", Int(s.unplanned)),
        ("micro_stop_ms", Int(s.micro)),
        ("changeover_ms", Int(s.changeover)),
        ("no_shift_ms", Int(s.no_shift)),
        ("unknown_ms", Int(s.unknown)),
        (
            "unplanned_stop_by_reason_ms",
            Expect::Map(s.by_reason.clone()),
        ),
        ("unplanned_stops", uint(s.stops)),
        ("micro_stops", uint(s.micro_stops)),
        ("rejected_state_messages", Int(0)),
        ("produced", Expect::Count(s.produced)),
        ("good", Expect::Count(s.good)),
        ("reject", Expect::Count(s.reject)),
        ("ideal_time_ms", Float(Some(s.ideal_ms))),
        ("good_ideal_ms", Float(Some(s.good_ideal_ms))),
        ("startup_ideal_ms", Float(Some(s.startup_ideal_ms))),
        (
            "startup_good_ideal_ms",
            Float(Some(s.startup_good_ideal_ms)),
        ),
        ("energy_kwh", Float(s.energy)),
        ("demand_kwh", Float(Some(s.demand))),
        ("energy_meter_ms", Int(s.meter_ms)),
        ("energy_measured_ms", Int(s.measured_ms)),
        ("power_kw", Float(s.power)),
        ("water_feed_m3", Float(s.feed)),
        ("water_permeate_m3", Float(s.permeate)),
        ("water_concentrate_m3", Float(s.concentrate)),
        ("unmeasured", Expect::FloatMap(s.unmeasured.clone())),
        ("meter_gaps", uint(s.gaps)),
        ("conductivity_measured_ms", Int(s.quality[0])),
        ("conductivity_within_ms", Int(s.quality[1])),
        ("toc_measured_ms", Int(s.quality[2])),
        ("toc_within_ms", Int(s.quality[3])),
        ("usp_excursions", uint(s.excursions)),
        ("availability", Float(availability)),
        ("performance", Float(performance)),
        ("quality", Float(quality)),
        ("oee", Float(oee)),
        ("kwh_per_good_unit", Float(per_good(s.energy))),
        ("standby_kw", Float(standby)),
        ("water_recovery", Float(ratio_of(s.permeate, s.feed))),
        ("data_coverage", Float(coverage)),
        (
            "asset_coverage",
            Float(ratio(s.assets_reporting as f64, s.assets as f64)),
        ),
        (
            "site_coverage",
            Float(ratio(s.sites_reporting as f64, s.sites as f64)),
        ),
        ("energy_cost_coverage", Float(of_energy(s.priced))),
        ("co2e_coverage", Float(of_energy(s.co2e_kwh))),
        // TEEP = OEE × PBT / calendar time (all modelled machine-time).
        (
            "teep",
            Float(oee.and_then(|o| ratio(o * pbt as f64, modelled as f64))),
        ),
        ("mtbf_ms", Float(ratio(apt as f64, s.stops as f64))),
        ("mttr_ms", Float(ratio(s.unplanned as f64, s.stops as f64))),
        (
            "conductivity_within_usp",
            Float(ratio(s.quality[1] as f64, s.quality[0] as f64)),
        ),
        (
            "toc_within_usp",
            Float(ratio(s.quality[3] as f64, s.quality[2] as f64)),
        ),
        (
            "ideal_rate_suspect",
            Bool(performance.is_some_and(|p| p > 1.0)),
        ),
        ("energy_cost", Float(s.cost)),
        ("co2e_kg", Float(s.co2e)),
        ("priced_kwh", Float(Some(s.priced))),
        ("co2e_factor_kwh", Float(Some(s.co2e_kwh))),
        ("peak_demand_kw", Float(r.peak_kw)),
        ("water_m3_per_good_unit", Float(per_good(s.feed))),
        ("baseline_expected_kwh", Float(None)),
        ("baseline_deviation_kwh", Float(None)),
        ("baseline_cusum_kwh", Float(None)),
        ("baseline_r2", Float(None)),
        ("baseline_intercept_kwh", Float(None)),
        ("baseline_kwh_per_unit", Float(None)),
        ("baseline_kwh_per_degree_day", Float(None)),
        ("degree_days", Float(None)),
        // The six big losses.
        (
            "loss_breakdown_ms",
            Float(time_model.then_some(s.unplanned as f64)),
        ),
        (
            "loss_setup_ms",
            Float(time_model.then_some(s.changeover as f64)),
        ),
        (
            "loss_minor_stop_ms",
            Float(timed_and_counted.then_some(minor)),
        ),
        (
            "loss_speed_ms",
            Float(timed_and_counted.then_some(performance_loss - minor)),
        ),
        ("loss_defect_ms", Float(graded.then_some(defect))),
        ("loss_startup_ms", Float(graded.then_some(startup))),
    ]
}

/// A ratio of two sums that may be unknown.
fn ratio_of(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    num.zip(den).and_then(|(n, d)| ratio(n, d))
}

fn close(a: f64, b: f64) -> bool {
    let d = (a - b).abs();
    d <= 1e-9 || d <= 1e-9 * a.abs().max(b.abs())
}

fn matches(want: &Expect, got: &Value) -> bool {
    match (want, got) {
        (Expect::Int(i), v) => v.as_i64() == Some(*i),
        (Expect::Count(None) | Expect::Float(None) | Expect::Text(None), v) => v.is_null(),
        (Expect::Count(Some(i)), v) => v.as_i64() == Some(*i),
        (Expect::Range(a, b), v) => v.as_i64().is_some_and(|i| (*a..=*b).contains(&i)),
        (Expect::Float(Some(x)), v) => v.as_f64().is_some_and(|y| close(*x, y)),
        (Expect::Text(Some(s)), v) => v.as_str() == Some(s.as_str()),
        (Expect::Bool(b), v) => v.as_bool() == Some(*b),
        (Expect::Map(m), v) => v.as_object().is_some_and(|o| {
            o.len() == m.len()
                && m.iter()
                    .all(|(k, x)| o.get(k).and_then(Value::as_i64) == Some(*x))
        }),
        (Expect::FloatMap(m), v) => v.as_object().is_some_and(|o| {
            o.len() == m.len()
                && m.iter().all(|(k, x)| {
                    o.get(*k)
                        .and_then(Value::as_f64)
                        .is_some_and(|y| close(*x, y))
                })
        }),
    }
}

fn text_field(v: &Value, f: &str) -> Option<String> {
    match &v[f] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => panic!("kpis.jsonl: field {f} is {other}, not a string or null"),
    }
}

fn key_of(v: &Value) -> Key {
    let level = v["level"].as_str().expect("kpis.jsonl: level");
    let rank = LEVELS
        .iter()
        .position(|l| *l == level)
        .unwrap_or_else(|| panic!("kpis.jsonl: unknown level {level}")) as u8;
    let period = v["period"].as_str().expect("kpis.jsonl: period");
    let kind = PERIODS
        .iter()
        .position(|p| *p == period)
        .unwrap_or_else(|| panic!("kpis.jsonl: unknown period {period}")) as u8;
    (
        v["window_start_ms"]
            .as_i64()
            .expect("kpis.jsonl: window_start_ms"),
        kind,
        rank,
        text_field(v, "site"),
        text_field(v, "area"),
        text_field(v, "line"),
        text_field(v, "asset"),
    )
}

/// Every difference between the reference and the product's records,
/// readable, in key order.
fn differences(reference: &BTreeMap<Key, Ref>, product: &[Value]) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut got: BTreeMap<Key, &Value> = BTreeMap::new();
    for v in product {
        let k = key_of(v);
        if got.insert(k.clone(), v).is_some() {
            diffs.push(format!("{}: more than one record", show_key(&k)));
        }
    }
    for k in reference.keys().filter(|k| !got.contains_key(*k)) {
        diffs.push(format!("{}: missing from kpis.jsonl", show_key(k)));
    }
    for k in got.keys().filter(|k| !reference.contains_key(*k)) {
        diffs.push(format!(
            "{}: in kpis.jsonl, not in the reference",
            show_key(k)
        ));
    }
    for (k, s) in reference {
        let Some(v) = got.get(k) else { continue };
        let fields = expected_fields(k, s);
        let obj = v.as_object().expect("kpis.jsonl: a JSON object per line");
        let names: BTreeSet<&str> = fields.iter().map(|(n, _)| *n).collect();
        let extra: Vec<&String> = obj.keys().filter(|n| !names.contains(n.as_str())).collect();
        if !extra.is_empty() {
            diffs.push(format!("{}: unexpected fields {extra:?}", show_key(k)));
        }
        for (name, want) in &fields {
            match obj.get(*name) {
                None => diffs.push(format!("{}: field {name} missing", show_key(k))),
                Some(g) if !matches(want, g) => diffs.push(format!(
                    "{}: {name}: reference {want}, product {g}",
                    show_key(k)
                )),
                Some(_) => {}
            }
        }
    }
    diffs
}

fn report(diffs: &[String]) -> String {
    // How many per field (the part after the key), so that a rare field
    // does not hide behind 20 lines of a frequent one.
    let mut by_field: BTreeMap<&str, usize> = BTreeMap::new();
    for d in diffs {
        let field = d.split(": ").nth(1).unwrap_or(d);
        *by_field.entry(field).or_default() += 1;
    }
    let mut s = format!(
        "{} difference(s), by field {by_field:?}; the first 20:\n",
        diffs.len()
    );
    for d in diffs.iter().take(20) {
        s.push_str("  ");
        s.push_str(d);
        s.push('\n');
    }
    s
}

// ---------------------------------------------------------------------------
// Corrections, from the input alone: which records must have been revised
// and which cannot have been, from the arrival order and event times of
// the messages and the watermark rules of the README ("Event time, windows
// and lateness"), never from the product's output.

/// `pipeline.allowed_lateness_secs`.
const LATENESS_MS: i64 = 30_000;
/// A window closes once the watermark has passed its end by the lookahead:
/// max(micro_stop_secs, stale_after_secs) rounded up to whole windows.
const LOOKAHEAD_MS: i64 = 120_000;
/// How far before its own event time a message can change a window: a
/// state may end, as a micro-stop, a stop that began up to
/// `micro_stop_secs` earlier; a counter or meter reading ends an interval
/// of up to its maximum interval (`stale_after_secs`). Anything else
/// (freshness, the product, start-ups, water quality) acts from its own
/// event time on.
const REACH_MS: i64 = 120_000;
/// `max_future_secs + idle_timeout_secs`: a site lagging the group's newest
/// event time by more than this no longer holds the watermark.
const IN_STEP_MS: i64 = 360_000;

/// What the input says about corrections.
#[derive(Debug, Default)]
struct Lateness {
    /// Records that must have been corrected (revision ≥ 1): their window
    /// (or, for a shift or day, its last window) had surely closed when a
    /// message counted in it arrived. With why.
    must: BTreeMap<Key, String>,
    /// Every message that may have come after a window it changes had
    /// closed: (its asset, the first window it can change, the last window
    /// that may have closed when it arrived).
    reach: Vec<(AssetId, i64, i64)>,
}

/// Bounds on the watermark at each message's admission, and what follows.
///
/// The watermark is the newest event time of the slowest site that is
/// talking and in step, less the allowed lateness, and never goes back. So
/// it is at most the group's newest event time (this message included)
/// less the lateness, and, once every site has spoken, at least the
/// newest event time of the slowest site of all less the lateness — as
/// long as a site that speaks is in step (checked here on the input): the
/// site that raises that minimum is then talking and in step itself.
///
/// A window `[w, w + W)` closes when the watermark reaches `w + W +
/// LOOKAHEAD_MS` (the lookahead is whole windows, so the frontier's window
/// and the watermark give the same instant; strictness is covered by
/// requiring more than that for "surely closed").
fn lateness(input: &Input) -> Lateness {
    let mut arrivals: Vec<(&AssetId, &Msg)> = input
        .assets
        .iter()
        .flat_map(|(a, msgs)| msgs.iter().map(move |m| (a, m)))
        .collect();
    arrivals.sort_by_key(|(_, m)| m.idx);
    let sites: BTreeSet<&str> = input.assets.keys().map(|a| a.0.as_str()).collect();
    let mut newest: BTreeMap<&str, i64> = BTreeMap::new();
    let mut group = i64::MIN;
    // The watermark is at least `lo` before the message being admitted.
    let mut lo = i64::MIN;
    let mut out = Lateness::default();
    for (a, m) in arrivals {
        let own = window_of(m.ts);
        if own + W + LOOKAHEAD_MS < lo {
            // Its window was emitted without it, and it counts in the
            // window's `messages` at every level: corrected, and so is every
            // shift and day of the window that had surely been emitted.
            let why = format!(
                "message {} (event {}) came when the watermark was at least {lo}",
                m.idx, m.ts
            );
            for level in 0..4u8 {
                let k = scope_key(own, 0, level, a);
                out.must.insert(k, why.clone());
                if level == 0 {
                    continue;
                }
                for (kind, start, end, ..) in periods_of(&a.0, own) {
                    if end + LOOKAHEAD_MS < lo {
                        out.must
                            .insert(scope_key(start, kind, level, a), why.clone());
                    }
                }
            }
        }
        group = group.max(m.ts);
        let hi = group - LATENESS_MS;
        let first = window_of(m.ts - REACH_MS);
        let last_closed = window_of(hi - W - LOOKAHEAD_MS);
        if first <= last_closed {
            out.reach.push((a.clone(), first, last_closed));
        }
        let n = newest.entry(a.0.as_str()).or_insert(m.ts);
        *n = (*n).max(m.ts);
        assert!(
            *n >= group - IN_STEP_MS,
            "{} out of step at message {}: the watermark bounds do not hold",
            a.0,
            m.idx
        );
        if newest.len() == sites.len() {
            let slowest = newest.values().min().expect("sites");
            lo = lo.max(slowest - LATENESS_MS);
        }
    }
    out
}

/// The key of `asset`'s scope at `level` for a period.
fn scope_key(start: i64, kind: u8, level: u8, a: &AssetId) -> Key {
    let upto = |n: u8, x: &String| (level >= n).then(|| x.clone());
    (
        start,
        kind,
        level,
        upto(1, &a.0),
        upto(2, &a.1),
        upto(2, &a.2),
        upto(3, &a.3),
    )
}

/// Whether `asset` is inside the scope of `k`.
fn in_scope(k: &Key, a: &AssetId) -> bool {
    [(&k.3, &a.0), (&k.4, &a.1), (&k.5, &a.2), (&k.6, &a.3)]
        .iter()
        .all(|(want, have)| want.as_ref().is_none_or(|w| w == *have))
}

/// Sets the revision range of every reference record: at least 1 where a
/// correction is certain; 0 where no message can have changed it after it
/// was emitted; for a window, at most one correction per message that may
/// have (messages applied together make one correction, a message is
/// applied once). A shift or day is re-emitted when one of its windows is
/// corrected after it was emitted (its last window closed), without a
/// bound per message.
fn set_revision_ranges(late: &Lateness, reference: &mut BTreeMap<Key, Ref>) {
    for (k, r) in reference.iter_mut() {
        let last = if k.1 == 0 { k.0 } else { r.end - W };
        let covering = late
            .reach
            .iter()
            .filter(|(a, first, closed)| in_scope(k, a) && (*first..=*closed).contains(&last))
            .count() as i64;
        let min = i64::from(late.must.contains_key(k));
        let max = match covering {
            0 => 0,
            n if k.1 == 0 => n,
            _ => i64::MAX,
        };
        assert!(
            min <= max,
            "{}: must be corrected, yet cannot be",
            show_key(k)
        );
        r.revision = (min, max);
    }
}

// ---------------------------------------------------------------------------
// Tests.

#[test]
fn batch_output_does_not_depend_on_the_worker_count() {
    let r = runs();
    assert_same_files(
        &["kpis.jsonl", "alarms.jsonl", "dead-letters.jsonl"],
        (&r.w1, "-w 1"),
        (&r.w2, "-w 2"),
    );
}

#[test]
fn refused_messages_match_the_dead_letters() {
    let input = input();
    let out = &runs().w2;
    let summary = read_summary(out);
    let dead = read_jsonl(&out.join("dead-letters.jsonl"));
    assert_eq!(summary["messages"].as_u64(), Some(input.records as u64));
    assert_eq!(summary["accepted"].as_u64(), Some(input.accepted as u64));
    assert_eq!(dead_letter_total(&summary), input.refused.len() as u64);
    assert_eq!(dead.len(), input.refused.len());
    // The same messages, not only the same count.
    let mut theirs: Vec<(i64, String)> = dead
        .iter()
        .map(|d| {
            (
                d["recv_ms"].as_i64().expect("dead letter recv_ms"),
                d["topic"].as_str().expect("dead letter topic").to_string(),
            )
        })
        .collect();
    let mut ours = input.refused.clone();
    theirs.sort();
    ours.sort();
    assert_eq!(ours, theirs, "refused messages (receive time, topic)");
}

#[test]
fn kpis_equal_the_plain_recomputation() {
    let input = input();
    let out = &runs().w2;
    let product = read_jsonl(&out.join("kpis.jsonl"));
    let mut reference = reference(input, PARAMS);
    // Its late messages are within the allowed lateness: no window can be
    // corrected, every record is revision 0.
    let late = lateness(input);
    assert!(late.reach.is_empty(), "{:?}", late.reach.first());
    set_revision_ranges(&late, &mut reference);

    // Sanity of the reference itself: 2 h of 60-s windows, 3 sites, and a
    // group record in each window.
    let windows: BTreeSet<i64> = reference.keys().filter(|k| k.1 == 0).map(|k| k.0).collect();
    assert_eq!(windows.len(), 120, "windows in the reference");
    let sites: BTreeSet<&String> = reference.keys().filter_map(|k| k.3.as_ref()).collect();
    assert_eq!(sites.len(), 3, "sites: {sites:?}");
    for w in &windows {
        assert!(
            reference.contains_key(&(*w, 0, 0, None, None, None, None)),
            "no group record in window {w}"
        );
    }
    // Every site has its (incomplete) first shift and production day.
    for kind in [1, 2] {
        let n = reference.keys().filter(|k| k.1 == kind && k.2 == 1).count();
        assert_eq!(n, 3, "{} records at site level", PERIODS[kind as usize]);
    }
    let summary = read_summary(out);
    assert_eq!(summary["windows"].as_u64(), Some(120));
    assert_eq!(summary["kpi_records"].as_u64(), Some(product.len() as u64));

    let diffs = differences(&reference, &product);
    assert!(
        diffs.is_empty(),
        "kpis.jsonl differs from the reference ({} records vs {}): {}",
        product.len(),
        reference.len(),
        report(&diffs)
    );
    eprintln!(
        "{} KPI records equal the reference ({} windows)",
        product.len(),
        windows.len()
    );
}

/// The comparison is able to fail: a reference with a stale threshold one
/// second short of the configured one, a shorter micro-stop threshold, or
/// a maximum reading interval long enough to bridge a silent source
/// disagrees with the product.
#[test]
fn a_perturbed_reference_is_caught() {
    let product = read_jsonl(&runs().w2.join("kpis.jsonl"));
    let perturbed = reference(
        input(),
        Params {
            stale_ms: 59_000,
            ..PARAMS
        },
    );
    let diffs = differences(&perturbed, &product);
    assert!(
        diffs.iter().any(|d| d.contains("unknown_ms")),
        "a 59-s stale threshold went unnoticed: {}",
        report(&diffs)
    );
    let perturbed = reference(
        input(),
        Params {
            micro_ms: 100_000,
            ..PARAMS
        },
    );
    let diffs = differences(&perturbed, &product);
    assert!(
        diffs.iter().any(|d| d.contains("micro_stop_ms")),
        "a 100-s micro-stop threshold went unnoticed: {}",
        report(&diffs)
    );
    // Shanghai's 15-min silence spread as if its meters could span it.
    let perturbed = reference(
        input(),
        Params {
            max_interval_ms: 30 * 60_000,
            ..PARAMS
        },
    );
    let diffs = differences(&perturbed, &product);
    for field in ["unmeasured", "meter_gaps", "produced", "energy_kwh"] {
        assert!(
            diffs.iter().any(|d| d.contains(&format!(": {field}: "))),
            "a 30-min maximum interval went unnoticed in {field}: {}",
            report(&diffs)
        );
    }
}

/// The reference's tariffs and emission factors are those of
/// configs/default.toml.
#[test]
fn reference_energy_settings_match_the_configuration() {
    let text = std::fs::read_to_string(root().join("configs/default.toml")).expect("default.toml");
    for line in [
        "[energy.sites.lyon-fill]\nemission_factor_kg_per_kwh = 0.052",
        "default_price_per_kwh = 0.18",
        "{ name = \"peak\", days = [\"mon-fri\"], start = \"08:00\", end = \"20:00\", price_per_kwh = 0.27 }",
        "[energy.sites.basel-api]\nemission_factor_kg_per_kwh = 0.031",
        "default_price_per_kwh = 0.21",
    ] {
        assert!(text.contains(line), "configs/default.toml lacks `{line}`");
    }
    assert!(!text.contains("[energy.sites.shanghai-pack]"));
}

/// The reference's sites, signal intervals and time-model settings are
/// those of configs/default.toml: the configured sites are exactly
/// `CONFIGURED_SITES`; no `[signals]` table (every counter and meter has
/// the default maximum interval, `stale_after_secs`); no `[time_model]`
/// table (defaults: micro-stops 120 s, start-up 300 s, no rollover).
#[test]
fn reference_sites_and_signals_match_the_configuration() {
    let text = std::fs::read_to_string(root().join("configs/default.toml")).expect("default.toml");
    let mut sites = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        let Some(table) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
            continue;
        };
        assert!(
            !table.starts_with("signals") && !table.starts_with("time_model"),
            "configs/default.toml has [{table}]: the reference assumes defaults"
        );
        let name = table
            .strip_prefix("energy.sites.")
            .or_else(|| table.strip_prefix("sites."));
        if let Some(name) = name {
            sites.insert(name.split('.').next().expect("site name").to_string());
        }
    }
    let want: BTreeSet<String> = CONFIGURED_SITES.iter().map(|s| s.to_string()).collect();
    assert_eq!(sites, want, "configured sites");
    assert!(text.contains("stale_after_secs = 60\n"));
    assert!(text.contains("window_secs = 60\n"));
    assert!(text.contains("max_future_secs = 300\n"));
}

/// The reference's calendars are those of configs/default.toml.
#[test]
fn reference_calendars_match_the_configuration() {
    let text = std::fs::read_to_string(root().join("configs/default.toml")).expect("default.toml");
    let hhmm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
    for (site, tz, day_start, shifts) in CALENDARS {
        let section = text
            .split(&format!("[sites.{site}]"))
            .nth(1)
            .and_then(|t| t.split("\n[").next())
            .unwrap_or_else(|| panic!("no [sites.{site}] in configs/default.toml"));
        assert!(
            section.contains(&format!("time_zone = \"{}\"", tz.name())),
            "{site}"
        );
        assert!(
            section.contains(&format!("production_day_start = \"{}\"", hhmm(day_start))),
            "{site}"
        );
        for (name, a, b) in shifts {
            let line = format!(
                "{{ name = \"{name}\", start = \"{}\", end = \"{}\" }}",
                hhmm(a),
                hhmm(b)
            );
            assert!(section.contains(&line), "{site}: `{line}` in {section}");
        }
    }
}

#[test]
fn reference_rfc3339_parser() {
    assert_eq!(
        parse_rfc3339("2026-03-02T05:00:00Z"),
        Some(1_772_427_600_000)
    );
    assert_eq!(
        parse_rfc3339("2026-03-02T05:00:00.123Z"),
        Some(1_772_427_600_123)
    );
    assert_eq!(
        parse_rfc3339("2026-03-02T06:00:00.5+01:00"),
        Some(1_772_427_600_500)
    );
    assert_eq!(parse_rfc3339("2000-01-01T00:00:00Z"), Some(946_684_800_000));
    assert_eq!(parse_rfc3339("2026-02-29T00:00:00Z"), None);
    assert_eq!(parse_rfc3339("2026-03-02 05:00"), None);
    assert_eq!(ts_max(), 4_102_444_800_000);
}

// ---------------------------------------------------------------------------
// A hand-written recording of the edge cases of docs/kpis.md ("Counters
// and meters: what was counted when", "Unknown is not zero"), which the
// simulated recordings hit rarely or never: readings at window boundaries
// and at the instant of a state or product change (sent before the
// readings, to check that readings still apply first), two readings at one
// instant, a half unit at a boundary, a product change inside an interval
// after the boundary it spans, a start-up ending inside an interval, a
// counter reset, gaps of 100 s and of 60.001 s (and an interval of exactly
// 60 s, which is not one), a gap that counted nothing, a meter that
// measured 0 kWh, a stop without counter data, a line half UNKNOWN while
// its meter measures, an asset that falls silent for good, a site without
// a calendar, and two configured sites that send nothing.

/// 2026-03-02T05:00:00Z, a Monday: 06:00 in Lyon (off-peak tariff).
const EDGE_T0: i64 = 1_772_427_600_000;

/// The scripted messages: (event time offset ms, topic, payload `value`
/// with an optional `"reason"` after it), in arrival order; each arrives
/// 50 ms after its event time (script order among equal times).
fn edge_script() -> Vec<(i64, String, String)> {
    let s = |x: i64| x * 1000;
    let mut out: Vec<(i64, String, String)> = Vec::new();
    let mut msg = |t: i64, topic: &str, value: String| {
        out.push((t, format!("acme/{topic}"), value));
    };
    let filler = "lyon-fill/aseptic/fill-1/filler";
    let meter = "lyon-fill/aseptic/fill-1/meter";
    let dryer = "lyon-fill/aseptic/lyo-1/freeze-dryer";
    let skid = "lyon-fill/utilities/ro-1/skid";
    let mixer = "paris-lab/lab/line-1/mixer";
    let state = |v: &str| format!("\"{v}\"");
    let num = |x: f64| format!("{x}");
    let counts = |msg: &mut dyn FnMut(i64, &str, String), t: i64, total: u32, good: u32| {
        msg(t, &format!("{filler}/count_total"), total.to_string());
        msg(t, &format!("{filler}/count_good"), good.to_string());
        msg(
            t,
            &format!("{filler}/count_reject"),
            (total - good).to_string(),
        );
    };

    // The filler: vial-2ml (150 ms) then vial-10ml (160 ms), then vial-2ml.
    msg(0, &format!("{filler}/state"), state("running"));
    msg(0, &format!("{filler}/product"), state("vial-2ml"));
    counts(&mut msg, 0, 0, 0);
    counts(&mut msg, s(20), 130, 128);
    counts(&mut msg, s(40), 270, 266);
    // A changeover and a new product at a boundary, sent before the final
    // count of the first product: the count still belongs before them.
    msg(s(60), &format!("{filler}/state"), state("changeover"));
    msg(s(60), &format!("{filler}/product"), state("vial-10ml"));
    counts(&mut msg, s(60), 400, 394);
    for t in [80, 100, 120] {
        counts(&mut msg, s(t), 400, 394);
    }
    // Start-up at 130 s, until 430 s.
    msg(s(130), &format!("{filler}/state"), state("running"));
    counts(&mut msg, s(150), 470, 462);
    counts(&mut msg, s(170), 600, 590);
    // 149 units over (170 s, 190 s]: 74.5 before the 180-s boundary,
    // rounded half away from zero to 75; then a second reading at the
    // same instant (10 more units, in the window of 190 s).
    counts(&mut msg, s(190), 749, 737);
    counts(&mut msg, s(190), 759, 747);
    let (mut total, mut good) = (759, 747);
    for t in (210..=410).step_by(20) {
        (total, good) = (total + 137, good + 135);
        counts(&mut msg, s(t), total, good);
    }
    // (410 s, 440 s] spans the 420-s boundary and the start-up's end at
    // 430 s: its part before 420 s is start-up, the part after is not.
    for t in [440, 460, 480, 500, 520, 530] {
        (total, good) = (total + 137, good + 135);
        counts(&mut msg, s(t), total, good);
        if t == 480 {
            // Two readings at one instant on a boundary: 3 units in the
            // window of that instant.
            (total, good) = (total + 3, good + 3);
            counts(&mut msg, s(t), total, good);
        }
    }
    // (530 s, 550 s] spans 540 s; the product changes at 545 s: the part
    // before the boundary is still vial-10ml, the part after vial-2ml.
    msg(s(545), &format!("{filler}/product"), state("vial-2ml"));
    for t in [550, 570, 590] {
        (total, good) = (total + 137, good + 135);
        counts(&mut msg, s(t), total, good);
    }
    // A PLC restart: the counters start again from 5, 5 and 0.
    counts(&mut msg, s(600), 5, 5);
    counts(&mut msg, s(620), 40, 39);
    msg(
        s(620),
        &format!("{filler}/state"),
        "\"stopped\",\"reason\":\"jam\"".into(),
    );
    msg(
        s(660),
        &format!("{filler}/state"),
        "\"stopped\",\"reason\":\"jam\"".into(),
    );
    // 100 s without counts, which did not move: a gap of 0 units.
    counts(&mut msg, s(720), 40, 39);
    counts(&mut msg, s(750), 40, 39);
    msg(s(750), &format!("{filler}/state"), state("running"));
    // Exactly 60 s (spread), then 60.001 s (a gap).
    counts(&mut msg, s(810), 200, 197);
    msg(s(840), &format!("{filler}/state"), state("running"));
    counts(&mut msg, s(870) + 1, 360, 355);
    counts(&mut msg, s(890), 400, 394);
    msg(s(900), &format!("{filler}/state"), state("no_shift"));
    counts(&mut msg, s(900), 410, 404);
    // The filler's last message: UNKNOWN from 990 s on.
    counts(&mut msg, s(930), 410, 404);

    // The line's meter, every 20 s, silent from 280 s to 380 s; flat
    // during the changeover (a measured 0 kWh).
    let mut kwh = 0.0;
    for t in (0..=1080).step_by(20) {
        if t > 280 && t < 380 {
            continue;
        }
        // From 990 s the filler is silent (UNKNOWN), but its meter shows
        // it running again from 980 s: the 960-s window is half no-shift,
        // half UNKNOWN, and its energy is not standby.
        let running = (!(60..=130).contains(&t) && t < 900 && !(620..=750).contains(&t))
            || (1000..=1020).contains(&t);
        if t > 0 && !(80..=120).contains(&t) {
            kwh += if running { 0.25 } else { 0.02 };
        }
        msg(s(t), &format!("{meter}/energy_kwh"), num(kwh));
        msg(
            s(t),
            &format!("{meter}/power_kw"),
            num(if running { 45.0 } else { 3.6 }),
        );
    }

    // A checkweigher: counters and a product, no state (no time model).
    let checkweigher = "lyon-fill/aseptic/fill-1/checkweigher";
    msg(0, &format!("{checkweigher}/product"), state("vial-2ml"));
    for (i, t) in (0..=600).step_by(30).enumerate() {
        let n = 100 * i as u32;
        msg(s(t), &format!("{checkweigher}/count_total"), n.to_string());
        msg(
            s(t),
            &format!("{checkweigher}/count_good"),
            (n - 2 * i as u32).to_string(),
        );
    }

    // The freeze-dryer: states only (no counters), a 150-s breakdown.
    for t in (0..=1060).step_by(40) {
        let code = if (150..300).contains(&t) {
            "\"stopped\",\"reason\":\"door_open\"".to_string()
        } else {
            state("running")
        };
        msg(s(t), &format!("{dryer}/state"), code);
    }
    msg(
        s(150),
        &format!("{dryer}/state"),
        "\"stopped\",\"reason\":\"door_open\"".into(),
    );
    msg(s(300), &format!("{dryer}/state"), state("running"));

    // The RO skid: water every 30 s, silent from 485 s to 605 s (a gap);
    // conductivity above the USP limit once.
    let (mut feed, mut permeate) = (0.0, 0.0);
    for t in (5..=1075).step_by(30) {
        if t > 485 && t < 605 {
            continue;
        }
        if t > 5 {
            feed += 0.08;
            permeate += 0.068;
        }
        msg(s(t), &format!("{skid}/feed_m3"), num(feed));
        msg(s(t), &format!("{skid}/permeate_m3"), num(permeate));
        msg(
            s(t),
            &format!("{skid}/concentrate_m3"),
            num(feed - permeate),
        );
        let us = if t == 305 { 1.5 } else { 0.7 };
        msg(s(t), &format!("{skid}/conductivity_us_cm"), num(us));
    }

    // A site without a calendar: one mixer from 185 s to 575 s, then
    // silent for good (still one of its line's assets). A start-up at
    // 240 s ends at the 540-s boundary, inside the interval (515, 545].
    msg(s(185), &format!("{mixer}/product"), state("vial-2ml"));
    msg(s(185), &format!("{mixer}/state"), state("changeover"));
    msg(s(240), &format!("{mixer}/state"), state("running"));
    for (i, t) in (185..=575).step_by(30).enumerate() {
        msg(s(t), &format!("{mixer}/count_total"), (10 * i).to_string());
    }
    out.sort_by_key(|m| m.0);
    out
}

fn write_edge_recording(path: &std::path::Path) {
    let mut w = ctower_model::ReplayWriter::create(path).expect("creating the recording");
    for (t, topic, value) in edge_script() {
        // `value` may carry a `"reason"` after the value.
        let payload = format!("{{\"ts\":{},\"value\":{value}}}", EDGE_T0 + t);
        w.write(&ctower_model::ReplayRecord {
            t_ms: EDGE_T0 + t + 50,
            topic,
            qos: 1,
            retain: false,
            payload: payload.into_bytes(),
        })
        .expect("writing the recording");
    }
    w.finish().expect("closing the recording");
}

/// The hand-written recording: the reference first against figures worked
/// out by hand, then the product against the reference, every field of
/// every record. At 5281a24 this fails on two points where the product
/// departs from docs/kpis.md and the README (standby power of a line half
/// UNKNOWN; quality losses of an asset without a time model): see the
/// report of the wt-golden branch.
#[test]
fn edge_cases_equal_the_plain_recomputation() {
    let base = scratch("golden-edge");
    let rec = base.join("edge.jsonl.gz");
    write_edge_recording(&rec);
    let out = base.join("w1");
    run_batch(&rec, &out, 1);
    let input = read_input(&rec);
    assert!(input.refused.is_empty(), "refused: {:?}", input.refused);
    let product = read_jsonl(&out.join("kpis.jsonl"));
    let mut reference = reference(&input, PARAMS);
    let late = lateness(&input);
    assert!(late.reach.is_empty(), "{:?}", late.reach.first());
    set_revision_ranges(&late, &mut reference);

    // The reference against figures worked out by hand from the script,
    // so that a mistake shared by the reference and the product shows.
    let at = |w: i64, path: &str| {
        let p: Vec<Option<String>> = path.split('/').map(|x| Some(x.to_string())).collect();
        let k = (
            EDGE_T0 + w * W,
            0,
            3,
            p[0].clone(),
            p[1].clone(),
            p[2].clone(),
            p[3].clone(),
        );
        reference[&k].sums.clone()
    };
    let asset =
        |w: i64, line: &str, asset: &str| at(w, &format!("lyon-fill/aseptic/{line}/{asset}"));
    let filler = |w: i64| asset(w, "fill-1", "filler");
    // Window 0: 400 units of vial-2ml, all before the changeover at 60 s.
    assert_eq!(filler(0).produced, Some(400));
    assert_eq!(filler(0).ideal_ms, 400.0 * 150.0);
    // Window 1: changeover, counters flat: 0, known.
    assert_eq!(filler(1).produced, Some(0));
    // Window 2: 70 + 130 + 75 (half of 149, rounded up).
    assert_eq!(filler(2).produced, Some(275));
    // Window 3: 74 + 10 (same instant) + 137 × 2 (210 s, 230 s) + the
    // part of (230 s, 250 s] up to 240 s: 68.5 → 69.
    assert_eq!(filler(3).produced, Some(74 + 10 + 274 + 69));
    // Start-up until 430 s: all of window 6, none of window 7.
    let (w6, w7) = (filler(6), filler(7));
    assert!(w6.ideal_ms > 0.0 && w6.startup_ideal_ms == w6.ideal_ms);
    assert!(w7.ideal_ms > 0.0 && w7.startup_ideal_ms == 0.0);
    // Window 7: 91 (137 less the 46 of (410 s, 440 s] before 420 s) + 137
    // × 2; window 8: 137 × 3 + 69 (of (530 s, 550 s]) and the 3 units of
    // the second reading at 480 s.
    assert_eq!(w7.produced, Some(91 + 274));
    assert_eq!(filler(8).produced, Some(411 + 69 + 3));
    // Window 8 (480–540 s) is all vial-10ml, window 9 (540–600 s) all
    // vial-2ml: the product at the end of each part.
    let w8 = filler(8);
    assert_eq!(w8.ideal_ms, w8.produced.expect("units") as f64 * 160.0);
    let w9 = filler(9);
    assert_eq!(w9.ideal_ms, w9.produced.expect("units") as f64 * 150.0);
    // Window 9 also has the reset reading stamped 600 s (5 units): 68
    // (137 − 69) + 137 × 2 + 5; window 10 the next 35.
    assert_eq!(w9.produced, Some(68 + 274 + 5));
    assert_eq!(filler(10).produced, Some(35));
    // Window 11: stopped, no counter interval: no performance, no OEE.
    let w11 = filler(11);
    assert_eq!(
        (w11.produced, w11.running, w11.unplanned),
        (None, 0, 60_000)
    );
    // Window 12: the 100-s gap (0 units) ends at 720 s.
    let w12 = filler(12);
    assert_eq!(w12.gaps, 3);
    assert_eq!(w12.unmeasured.get("produced"), Some(&0.0));
    // The 60-s interval (750 s, 810 s] is spread: 80 units on each side of
    // 780 s. Window 14: the 60.001-s gap (160 units unmeasured), then 40
    // and 10 (the reading stamped 900 s, with the no-shift state).
    assert_eq!(filler(12).produced, Some(80));
    assert_eq!(filler(13).produced, Some(80));
    let w14 = filler(14);
    assert_eq!(w14.unmeasured.get("produced"), Some(&160.0));
    assert_eq!(w14.produced, Some(50));
    // The meter: silent over all of window 5; 0 kWh measured in window 1.
    let meter = |w: i64| asset(w, "fill-1", "meter");
    let m5 = meter(5);
    assert_eq!((m5.energy, m5.measured_ms, m5.meter_ms), (None, 0, W));
    assert_eq!(meter(6).unmeasured.len(), 1);
    let m1 = meter(1);
    assert_eq!(
        (m1.energy, m1.cost, m1.measured_ms),
        (Some(0.0), Some(0.0), W)
    );
    // The freeze-dryer: stopped through window 3, no counters.
    let d3 = asset(3, "lyo-1", "freeze-dryer");
    assert_eq!((d3.produced, d3.unplanned), (None, W));
    // The mixer's window 8: 2 + 10 + 8 units; the last 8 end at 540 s, 300
    // s after the start-up: no longer within it.
    let x8 = at(8, "paris-lab/lab/line-1/mixer");
    assert_eq!(x8.produced, Some(20));
    assert_eq!((x8.ideal_ms, x8.startup_ideal_ms), (3000.0, 1800.0));
    // Silent sites: in every window, with nothing.
    let windows: BTreeSet<i64> = reference.keys().filter(|k| k.1 == 0).map(|k| k.0).collect();
    assert_eq!(windows.len(), 19);
    for w in &windows {
        for site in ["basel-api", "shanghai-pack"] {
            let k = (*w, 0, 1, Some(site.to_string()), None, None, None);
            let s = &reference[&k].sums;
            assert_eq!((s.assets, s.sites, s.sites_reporting), (0, 1, 0));
        }
    }

    let diffs = differences(&reference, &product);
    assert!(
        diffs.is_empty(),
        "kpis.jsonl differs from the reference ({} records vs {}): {}",
        product.len(),
        reference.len(),
        report(&diffs)
    );
}

// ---------------------------------------------------------------------------
// A generated recording across the Europe/Paris DST change (2026-03-29
// 01:00 UTC) and midnight in Shanghai, with messages delivered minutes late.

/// `ctower simulate` arguments of the generated recording: 13 h from
/// 2026-03-28 15:00 UTC (Paris 16:00 CET → 06:00 CEST, Shanghai 23:00 →
/// 12:00), 5 very late messages per site and hour. Seed 11 puts a late
/// message in the last window of a shift (see the test).
const DST_SIM: [&str; 10] = [
    "--seed",
    "11",
    "--plants",
    "3",
    "--start",
    "2026-03-28T15:00:00Z",
    "--hours",
    "13",
    "--very-late-per-hour",
    "5",
];

struct DstRuns {
    input: Input,
    w1: PathBuf,
    w2: PathBuf,
}

fn dst_runs() -> &'static DstRuns {
    static RUNS: OnceLock<DstRuns> = OnceLock::new();
    RUNS.get_or_init(|| {
        let base = scratch("golden-dst");
        let rec = base.join("dst.jsonl.gz");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ctower"))
            .current_dir(root())
            .args(["--log", "warn", "simulate"])
            .args(DST_SIM)
            .arg("-o")
            .arg(&rec)
            .output()
            .expect("running ctower simulate");
        assert!(
            out.status.success(),
            "ctower simulate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (w1, w2) = (base.join("w1"), base.join("w2"));
        run_batch(&rec, &w1, 1);
        run_batch(&rec, &w2, 2);
        DstRuns {
            input: read_input(&rec),
            w1,
            w2,
        }
    })
}

/// The recomputation of the DST recording, with the revision range of
/// every record, and what the input says about corrections.
fn dst_reference() -> &'static (Lateness, BTreeMap<Key, Ref>) {
    static REFERENCE: OnceLock<(Lateness, BTreeMap<Key, Ref>)> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let input = &dst_runs().input;
        let late = lateness(input);
        let mut reference = reference(input, PARAMS);
        set_revision_ranges(&late, &mut reference);
        (late, reference)
    })
}

/// The latest revision of every key, checking that a key's revisions come
/// as 0, 1, 2, … in order.
fn latest_revisions(product: &[Value]) -> (Vec<Value>, BTreeMap<Key, i64>) {
    let mut latest: BTreeMap<Key, Value> = BTreeMap::new();
    let mut revs: BTreeMap<Key, i64> = BTreeMap::new();
    for v in product {
        let k = key_of(v);
        let rev = v["revision"].as_i64().expect("revision");
        let want = revs.get(&k).map_or(0, |r| r + 1);
        assert_eq!(
            rev,
            want,
            "{}: revision {rev} after {:?}",
            show_key(&k),
            revs.get(&k)
        );
        revs.insert(k.clone(), rev);
        latest.insert(k, v.clone());
    }
    (latest.into_values().collect(), revs)
}

/// The DST recording: files identical for 1 and 2 workers; the latest
/// revision of every record equals the recomputation from all the data,
/// and its revision number lies in the range the input alone allows
/// (`lateness`): at least 1 where a message surely came after its window
/// (or shift, or day) had been emitted, 0 where none can have.
#[test]
fn dst_recording_with_late_data_equals_the_plain_recomputation() {
    let runs = dst_runs();
    assert_same_files(
        &["kpis.jsonl", "alarms.jsonl", "dead-letters.jsonl"],
        (&runs.w1, "-w 1"),
        (&runs.w2, "-w 2"),
    );
    // Refused are only the messages the reference refuses (nothing
    // `too_late`): every accepted message is in the recomputation.
    let summary = read_summary(&runs.w2);
    assert_eq!(
        summary["accepted"].as_u64(),
        Some(runs.input.accepted as u64)
    );
    assert_eq!(dead_letter_total(&summary), runs.input.refused.len() as u64);
    let product = read_jsonl(&runs.w2.join("kpis.jsonl"));
    let (latest, revs) = latest_revisions(&product);
    let (late, reference) = dst_reference();
    // Compared last, after the checks of what the recording exercises.
    let diffs = differences(reference, &latest);

    // Periods that cross the DST change and Shanghai midnight are complete
    // and as long as the local calendar says.
    let period = |kind: u8, site: &str, start: &str| {
        let start = parse_rfc3339(start).expect("time");
        reference
            .iter()
            .find(|(k, _)| k.0 == start && k.1 == kind && k.2 == 1 && k.3.as_deref() == Some(site))
            .map(|(k, r)| (r.end - k.0, r.complete, r.shift.clone()))
    };
    let h = 3_600_000;
    assert_eq!(
        period(1, "lyon-fill", "2026-03-28T21:00:00Z"),
        Some((7 * h, true, Some("night".into()))),
        "Lyon's night shift of 28 March loses an hour to summer time"
    );
    assert_eq!(
        period(1, "shanghai-pack", "2026-03-28T15:00:00Z"),
        Some((8 * h, true, Some("night".into()))),
        "Shanghai's night shift runs across local midnight"
    );
    assert_eq!(
        period(2, "lyon-fill", "2026-03-28T05:00:00Z").map(|p| (p.0, p.1)),
        Some((23 * h, true)),
        "Lyon's production day of 28 March has 23 hours"
    );

    // The recording exercises corrections: windows, shifts and days that
    // must be corrected, among them a window that ends a shift or a day
    // (its outputs carry the period's records too, which the correction
    // must not take for the window's own).
    let must_windows = late.must.keys().filter(|k| k.1 == 0).count();
    let must_periods = late.must.len() - must_windows;
    assert!(
        must_windows >= 20 && must_periods >= 5,
        "the recording must exercise corrections: {must_windows} windows, {must_periods} periods"
    );
    let period_ends: BTreeSet<_> = reference
        .iter()
        .filter(|(k, _)| k.1 > 0)
        .map(|(k, r)| (r.end, k.3.clone()))
        .collect();
    assert!(
        late.must
            .keys()
            .any(|k| k.1 == 0 && period_ends.contains(&(k.0 + W, k.3.clone()))),
        "the recording must surely correct a window that ends a shift or a day"
    );
    // A shift or day is revised only if one of its windows was.
    for (k, r) in revs.iter().filter(|(k, r)| k.1 > 0 && **r > 0) {
        let span = reference
            .get(k)
            .map(|r| (k.0, r.end))
            .expect("period in the reference");
        assert!(
            revs.iter().any(|(w, wr)| w.1 == 0
                && *wr > 0
                && w.2 == k.2
                && w.3 == k.3
                && w.4 == k.4
                && w.5 == k.5
                && w.6 == k.6
                && (span.0..span.1).contains(&w.0)),
            "{} revised to {r} without a revised window",
            show_key(k)
        );
    }
    let revised = revs.values().filter(|r| **r > 0).count();
    let open = reference.values().filter(|r| r.revision.1 > 0).count();
    eprintln!(
        "{} KPI records ({} keys): {revised} corrected; the input requires {} and allows {open}; {} messages may have come late",
        product.len(),
        latest.len(),
        late.must.len(),
        late.reach.len()
    );
    assert!(
        diffs.is_empty(),
        "latest revisions differ from the reference: {}",
        report(&diffs)
    );
}

/// The revision checks are able to fail: in the DST run's output, a record
/// that must have been corrected shown at revision 0 (its final content
/// kept), a record no late message can have reached given a revision 1,
/// and a window given one revision more than the late messages that can
/// have reached it, are each reported.
#[test]
fn perturbed_revisions_are_caught() {
    let product = read_jsonl(&dst_runs().w2.join("kpis.jsonl"));
    let (late, reference) = dst_reference();
    let (latest, revs) = latest_revisions(&product);
    let caught = |latest: &[Value], k: &Key, what: &str| {
        let diffs = differences(reference, latest);
        let want = format!("{}: revision: ", show_key(k));
        assert!(
            diffs.iter().any(|d| d.starts_with(&want)),
            "{what} went unnoticed: {}",
            report(&diffs)
        );
    };
    let with_revision = |k: &Key, rev: i64| -> Vec<Value> {
        latest
            .iter()
            .map(|v| {
                let mut v = v.clone();
                if key_of(&v) == *k {
                    v["revision"] = rev.into();
                }
                v
            })
            .collect()
    };
    // A window that must have been corrected, at revision 0.
    let must = late
        .must
        .keys()
        .find(|k| k.1 == 0 && k.2 == 3)
        .expect("a window that must be corrected");
    caught(&with_revision(must, 0), must, "an uncorrected late window");
    // A record no late message reached, corrected.
    let untouched = reference
        .iter()
        .find(|(k, r)| r.revision == (0, 0) && k.1 == 0 && k.2 == 3 && revs[*k] == 0)
        .map(|(k, _)| k)
        .expect("a window no late message reached");
    caught(
        &with_revision(untouched, 1),
        untouched,
        "a spurious correction",
    );
    // A window with more corrections than late messages can make.
    let (bounded, max) = reference
        .iter()
        .find(|(k, r)| k.1 == 0 && r.revision.1 >= 1 && r.revision.1 < i64::MAX)
        .map(|(k, r)| (k, r.revision.1))
        .expect("a window some late messages reached");
    caught(
        &with_revision(bounded, max + 1),
        bounded,
        "one correction too many",
    );
}
