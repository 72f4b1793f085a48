//! Unified-Namespace JSON decoding: topic → asset model, payload → value.
//! Pure: no I/O, no clock. Every rejection names its reason.

use ctower_model::time::parse_rfc3339_ms;
use ctower_model::{AssetKey, Bucket, Observation, Role, Value};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

/// Why a message was refused. The names are the dead-letter reasons of the
/// telemetry contract (README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The payload is not one JSON object.
    MalformedJson,
    /// A required field (`ts`, `value`) is missing.
    MissingField,
    /// A field has the wrong type (a string for a number, a fraction of
    /// a millisecond …).
    WrongType,
    /// A number is NaN or infinite.
    NonFinite,
    /// A cumulative value beyond [`MAX_CUMULATIVE`], or an increase faster
    /// than its signal's `max_rate_per_s` ([`crate::limits`]).
    ImplausibleValue,
    /// A payload above the source's `max_payload_bytes`.
    Oversized,
    /// A topic that does not match the source's topic pattern.
    UnknownTopic,
    /// A topic level that becomes a name (site, area, line, asset, signal)
    /// with a character outside [`valid_name`]'s set.
    InvalidName,
    /// A state code the source's state map does not know.
    UnknownState,
    /// An event time outside 2000..2100, or more than `max_future_secs`
    /// ahead of its own receive time.
    TimestampOutOfRange,
    /// Older than the watermark by more than the correction horizon.
    TooLate,
    /// A source naming more assets than `sources[].max_assets`.
    TooManyAssets,
    /// An asset with more signals than `sources[].max_signals_per_asset`
    /// (or a Sparkplug node declaring more metrics than its cap).
    TooManySignals,
    /// A Sparkplug payload that is not the protobuf `Payload`.
    MalformedProtobuf,
    /// A Sparkplug metric of a type ctower does not read (data sets,
    /// templates, arrays, property sets, an unknown type code) or declared
    /// without a name or a type.
    UnsupportedType,
    /// Sparkplug data naming a metric (by alias or name) its birth did not
    /// declare, or from a node or device not born (or dead).
    NotInBirth,
    /// A Sparkplug message without a valid `seq`, a death whose `bdSeq` is
    /// not the current session's, or data dropped with a sequence gap.
    SequenceError,
}

impl Reason {
    /// Every reason, in the order reports list them.
    pub const ALL: [Reason; 17] = [
        Reason::MalformedJson,
        Reason::MissingField,
        Reason::WrongType,
        Reason::NonFinite,
        Reason::ImplausibleValue,
        Reason::Oversized,
        Reason::UnknownTopic,
        Reason::InvalidName,
        Reason::UnknownState,
        Reason::TimestampOutOfRange,
        Reason::TooLate,
        Reason::TooManyAssets,
        Reason::TooManySignals,
        Reason::MalformedProtobuf,
        Reason::UnsupportedType,
        Reason::NotInBirth,
        Reason::SequenceError,
    ];

    /// Its name in dead letters, metrics and the README (`malformed_json` …).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MalformedJson => "malformed_json",
            Reason::MissingField => "missing_field",
            Reason::WrongType => "wrong_type",
            Reason::NonFinite => "non_finite",
            Reason::ImplausibleValue => "implausible_value",
            Reason::Oversized => "oversized",
            Reason::UnknownTopic => "unknown_topic",
            Reason::InvalidName => "invalid_name",
            Reason::UnknownState => "unknown_state",
            Reason::TimestampOutOfRange => "timestamp_out_of_range",
            Reason::TooLate => "too_late",
            Reason::TooManyAssets => "too_many_assets",
            Reason::TooManySignals => "too_many_signals",
            Reason::MalformedProtobuf => "malformed_protobuf",
            Reason::UnsupportedType => "unsupported_type",
            Reason::NotInBirth => "not_in_birth",
            Reason::SequenceError => "sequence_error",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The dead-letter reason.
    pub reason: Reason,
    /// What exactly was wrong, for the dead letter.
    pub detail: String,
}

fn reject<T>(reason: Reason, detail: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection {
        reason,
        detail: detail.into(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Any,
    Site,
    Area,
    Line,
    Asset,
    Signal,
}

/// A topic pattern such as `{enterprise}/{site}/{area}/{line}/{asset}/{signal}`.
/// `{site}`, `{line}`, `{asset}` and `{signal}` are required; `{area}` is
/// optional (`-` when absent); any other `{name}` matches any level and is
/// ignored; plain text must match exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    parts: Vec<Part>,
}

impl TopicPattern {
    /// The Unified Namespace pattern used when a source gives none.
    pub const DEFAULT: &'static str = "{enterprise}/{site}/{area}/{line}/{asset}/{signal}";

    /// Parses a pattern; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<TopicPattern, String> {
        let mut parts = Vec::new();
        for level in s.split('/') {
            let part = match level {
                "{site}" => Part::Site,
                "{area}" => Part::Area,
                "{line}" => Part::Line,
                "{asset}" => Part::Asset,
                "{signal}" => Part::Signal,
                l if l.starts_with('{') && l.ends_with('}') && l.len() > 2 => Part::Any,
                l if l.is_empty() || l.contains(['{', '}', '+', '#']) => {
                    return Err(format!(
                        "level `{l}` of `{s}` is neither a {{placeholder}} nor plain text"
                    ))
                }
                l => Part::Literal(l.to_string()),
            };
            if part != Part::Any && !matches!(part, Part::Literal(_)) && parts.contains(&part) {
                return Err(format!("`{s}` names {level} twice"));
            }
            parts.push(part);
        }
        for need in [Part::Site, Part::Line, Part::Asset, Part::Signal] {
            if !parts.contains(&need) {
                return Err(format!(
                    "`{s}` lacks a {:?} level ({{{}}})",
                    need,
                    format!("{need:?}").to_lowercase()
                ));
            }
        }
        Ok(TopicPattern { parts })
    }

    /// [`TopicPattern::DEFAULT`], parsed.
    pub fn default_uns() -> TopicPattern {
        use Part::{Any, Area, Asset, Line, Signal, Site};
        TopicPattern {
            parts: vec![Any, Site, Area, Line, Asset, Signal],
        }
    }
}

/// Checked decoding rules of one source.
#[derive(Debug, Clone)]
pub struct DecodeRules {
    pattern: TopicPattern,
    signals: HashMap<String, Role>,
    states: HashMap<String, Bucket>,
    max_payload_bytes: usize,
}

/// Default signal names of the telemetry contract.
pub const DEFAULT_SIGNALS: &[(&str, Role)] = &[
    ("state", Role::State),
    ("count_total", Role::CounterTotal),
    ("count_good", Role::CounterGood),
    ("count_reject", Role::CounterReject),
    ("product", Role::Product),
    ("energy_kwh", Role::EnergyKwh),
    ("power_kw", Role::PowerKw),
    ("feed_m3", Role::WaterFeedM3),
    ("permeate_m3", Role::WaterPermeateM3),
    ("concentrate_m3", Role::WaterConcentrateM3),
    ("conductivity_us_cm", Role::ConductivityUsCm),
    ("toc_ppb", Role::TocPpb),
];

/// Default state codes of the telemetry contract.
pub const DEFAULT_STATES: &[(&str, Bucket)] = &[
    ("running", Bucket::Running),
    ("stopped", Bucket::UnplannedStop),
    ("fault", Bucket::UnplannedStop),
    ("blocked", Bucket::UnplannedStop),
    ("starved", Bucket::UnplannedStop),
    ("break", Bucket::PlannedStop),
    ("planned_maintenance", Bucket::PlannedStop),
    ("cip", Bucket::PlannedStop),
    ("sip", Bucket::PlannedStop),
    ("changeover", Bucket::Changeover),
    ("no_shift", Bucket::NoShift),
    ("off", Bucket::NoShift),
];

impl DecodeRules {
    /// Rules from a topic pattern and the source's overrides of the
    /// contract's signal roles and state buckets.
    pub fn new(
        pattern: TopicPattern,
        signals: &BTreeMap<String, Role>,
        states: &BTreeMap<String, Bucket>,
        max_payload_bytes: usize,
    ) -> Self {
        let mut s: HashMap<String, Role> = DEFAULT_SIGNALS
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        s.extend(signals.iter().map(|(k, v)| (k.clone(), *v)));
        let mut st: HashMap<String, Bucket> = DEFAULT_STATES
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        st.extend(states.iter().map(|(k, v)| (k.clone(), *v)));
        DecodeRules {
            pattern,
            signals: s,
            states: st,
            max_payload_bytes,
        }
    }

    /// Payloads larger than this are `oversized`.
    pub fn max_payload_bytes(&self) -> usize {
        self.max_payload_bytes
    }

    /// The role of signal `name` (`process` unless named).
    pub fn role_of(&self, name: &str) -> Role {
        self.signals.get(name).copied().unwrap_or(Role::Process)
    }

    /// The bucket of state code `code`, if mapped.
    pub fn bucket_of(&self, code: &str) -> Option<Bucket> {
        self.states.get(code).copied()
    }

    /// The contract's defaults.
    pub fn default_uns() -> Self {
        Self::new(
            TopicPattern::default_uns(),
            &BTreeMap::new(),
            &BTreeMap::new(),
            64 * 1024,
        )
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Ts<'a> {
    Int(i64),
    Float(f64),
    #[serde(borrow)]
    Text(Cow<'a, str>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Val<'a> {
    Num(f64),
    #[serde(borrow)]
    Text(Cow<'a, str>),
    Other(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    ts: Option<Ts<'a>>,
    #[serde(borrow)]
    value: Option<Val<'a>>,
    #[serde(borrow)]
    reason: Option<Cow<'a, str>>,
}

/// Earliest and latest timestamps accepted at all: 2000-01-01 and 2100-01-01.
pub const TS_MIN_MS: i64 = 946_684_800_000;
/// See [`TS_MIN_MS`].
pub const TS_MAX_MS: i64 = 4_102_444_800_000;

/// Largest cumulative value (counters, energy and water meters) accepted:
/// 2^53, beyond which f64 no longer holds every integer, so increments would
/// be lost or invented. No real meter gets there (a counter at a million
/// units a second needs 285 years); such a value is a corrupt reading, and
/// taken in, its drop back to normal would read as a reset.
pub const MAX_CUMULATIVE: f64 = 9_007_199_254_740_992.0;

/// Whether a topic level may become a name (site, area, line, asset,
/// signal): 1 or more ASCII letters, digits, `-`, `_`, `.` or `:`.
///
/// Names become tags and keys downstream (InfluxDB line protocol, JSON,
/// file names): this set needs no escaping anywhere, so a comma, `=`, a
/// space, a quote or a backslash in a topic can never inject or corrupt a
/// line.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Bound on cached topic prefixes, so that a flood of distinct topics cannot
/// grow memory without limit (beyond it, names are simply not shared).
const CACHE_LIMIT: usize = 100_000;

/// Decodes messages of one source. Keeps caches so that the names of an
/// asset are allocated once and a known topic is mapped with one lookup.
/// The caches never change a result, only how names are shared: decoders
/// of the same spec on several threads decode alike.
#[derive(Debug)]
pub struct Decoder {
    rules: DecodeRules,
    assets: HashMap<String, AssetKey>,
    names: HashMap<String, Arc<str>>,
    /// Topic → its mapping and the signal's role, for topics that mapped.
    topics: HashMap<Box<str>, MappedTopic>,
}

#[derive(Debug, Clone)]
struct MappedTopic {
    asset: AssetKey,
    signal: Arc<str>,
    role: Role,
}

impl Decoder {
    /// A decoder with empty caches.
    pub fn new(rules: DecodeRules) -> Self {
        Decoder {
            rules,
            assets: HashMap::new(),
            names: HashMap::new(),
            topics: HashMap::new(),
        }
    }

    /// The rules it decodes by.
    pub fn rules(&self) -> &DecodeRules {
        &self.rules
    }

    fn name(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.names.get(s) {
            return a.clone();
        }
        let a: Arc<str> = s.into();
        if self.names.len() < CACHE_LIMIT {
            self.names.insert(s.to_string(), a.clone());
        }
        a
    }

    /// [`Decoder::map_topic`] and the signal's role, cached per topic.
    fn topic(&mut self, topic: &str) -> Result<MappedTopic, Rejection> {
        if let Some(m) = self.topics.get(topic) {
            return Ok(m.clone());
        }
        let (asset, signal) = self.map_topic(topic)?;
        let role = self
            .rules
            .signals
            .get(&*signal)
            .copied()
            .unwrap_or(Role::Process);
        let m = MappedTopic {
            asset,
            signal,
            role,
        };
        if self.topics.len() < CACHE_LIMIT {
            self.topics.insert(topic.into(), m.clone());
        }
        Ok(m)
    }

    /// Maps a topic to its asset and signal name.
    pub fn map_topic(&mut self, topic: &str) -> Result<(AssetKey, Arc<str>), Rejection> {
        let Some((prefix, _)) = topic.rsplit_once('/') else {
            return reject(Reason::UnknownTopic, format!("`{topic}` has one level"));
        };
        let levels: Vec<&str> = topic.split('/').collect();
        let parts = &self.rules.pattern.parts;
        if levels.len() != parts.len() {
            return reject(
                Reason::UnknownTopic,
                format!(
                    "`{topic}` has {} levels, the pattern {}",
                    levels.len(),
                    parts.len()
                ),
            );
        }
        let (mut site, mut area, mut line, mut asset, mut signal) = ("", "-", "", "", "");
        for (part, level) in parts.iter().zip(&levels) {
            if level.is_empty() {
                return reject(
                    Reason::UnknownTopic,
                    format!("`{topic}` has an empty level"),
                );
            }
            match part {
                Part::Literal(l) if l != level => {
                    return reject(
                        Reason::UnknownTopic,
                        format!("`{topic}`: expected `{l}`, found `{level}`"),
                    )
                }
                Part::Literal(_) | Part::Any => {}
                Part::Site => site = level,
                Part::Area => area = level,
                Part::Line => line = level,
                Part::Asset => asset = level,
                Part::Signal => signal = level,
            }
        }
        for (what, name) in [
            ("site", site),
            ("area", area),
            ("line", line),
            ("asset", asset),
            ("signal", signal),
        ] {
            if !valid_name(name) {
                return reject(
                    Reason::InvalidName,
                    format!(
                        "{what} `{name}` of `{topic}`: names are ASCII letters, digits, `-`, `_`, `.` and `:`"
                    ),
                );
            }
        }
        // The signal is not always the last level; cache on the whole
        // topic less its last level plus the signal.
        let cache_key = if parts.last() == Some(&Part::Signal) {
            prefix
        } else {
            topic
        };
        let key = match self.assets.get(cache_key) {
            Some(k) => k.clone(),
            None => {
                let k = AssetKey::from_names(
                    self.name(site),
                    self.name(area),
                    self.name(line),
                    self.name(asset),
                );
                if self.assets.len() < CACHE_LIMIT {
                    self.assets.insert(cache_key.to_string(), k.clone());
                }
                k
            }
        };
        Ok((key, self.name(signal)))
    }

    /// The rejection of a payload of `size` bytes, beyond this source's
    /// limit (also for a payload its source cut to a prefix).
    pub fn oversized(&self, size: usize) -> Rejection {
        Rejection {
            reason: Reason::Oversized,
            detail: format!(
                "{size} bytes > max_payload_bytes {}",
                self.rules.max_payload_bytes
            ),
        }
    }

    /// Decodes one message. `seq` is its arrival number.
    pub fn decode(
        &mut self,
        topic: &str,
        payload: &[u8],
        seq: u64,
    ) -> Result<Observation, Rejection> {
        if payload.len() > self.rules.max_payload_bytes {
            return Err(self.oversized(payload.len()));
        }
        let MappedTopic {
            asset,
            signal,
            role,
        } = self.topic(topic)?;
        let p = parse_payload(payload)?;
        let ts_ms = event_time(p.ts)?;
        let value = match (role, p.value) {
            (_, None) => return reject(Reason::MissingField, "`value` is required"),
            (Role::State, Some(Val::Text(code))) => self.state(&code, p.reason.as_deref())?,
            (Role::Product, Some(Val::Text(s))) => Value::Text(self.name(&s)),
            (Role::State | Role::Product, Some(_)) => {
                return reject(
                    Reason::WrongType,
                    format!("`value` of `{signal}` must be a string"),
                )
            }
            (_, Some(Val::Num(v))) => check_number(role, &signal, v)?,
            (_, Some(Val::Text(s))) => return Err(text_for_number(&signal, &s)),
            (_, Some(Val::Other(_))) => {
                return reject(
                    Reason::WrongType,
                    format!("`value` of `{signal}` must be a number"),
                )
            }
        };
        Ok(Observation {
            asset,
            signal,
            role,
            ts_ms,
            value,
            seq,
            watermark_ms: None,
        })
    }

    /// The value of a state signal: its code must be mapped to a bucket.
    fn state(&mut self, code: &str, reason: Option<&str>) -> Result<Value, Rejection> {
        match self.rules.states.get(code) {
            Some(bucket) => Ok(Value::State {
                bucket: *bucket,
                code: self.name(code),
                reason: reason.map(|r| self.name(r)),
            }),
            None => reject(
                Reason::UnknownState,
                format!("state code `{code}` is not mapped"),
            ),
        }
    }
}

/// The payload as one JSON object (serde would take a JSON array as a
/// struct by position: the contract is one JSON object per message).
fn parse_payload(payload: &[u8]) -> Result<Payload<'_>, Rejection> {
    if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return reject(Reason::MalformedJson, "payload is not a JSON object");
    }
    serde_json::from_slice(payload).map_err(|e| match non_finite_token(payload) {
        // JSON has no NaN or infinities, and serde_json refuses a number
        // that overflows f64: the contract calls both `non_finite`.
        Some(token) => Rejection {
            reason: Reason::NonFinite,
            detail: format!("`{token}` is not a finite number ({e})"),
        },
        None => Rejection {
            reason: Reason::MalformedJson,
            detail: e.to_string(),
        },
    })
}

/// The event time of `ts`: whole milliseconds or RFC 3339, within
/// [`TS_MIN_MS`]..[`TS_MAX_MS`].
fn event_time(ts: Option<Ts<'_>>) -> Result<i64, Rejection> {
    let ts_ms = match ts {
        None => return reject(Reason::MissingField, "`ts` is required"),
        Some(Ts::Int(ms)) => ms,
        Some(Ts::Float(f)) if f.is_finite() && f.fract() == 0.0 => f as i64,
        Some(Ts::Float(f)) => {
            return reject(
                Reason::WrongType,
                format!("`ts` {f} is not whole milliseconds"),
            )
        }
        Some(Ts::Text(s)) => match parse_rfc3339_ms(&s) {
            Some(ms) => ms,
            None => return reject(Reason::WrongType, format!("`ts` `{s}` is not RFC 3339")),
        },
    };
    check_time(ts_ms)
}

/// An event time within [`TS_MIN_MS`]..[`TS_MAX_MS`], or
/// `timestamp_out_of_range`.
pub(crate) fn check_time(ts_ms: i64) -> Result<i64, Rejection> {
    if !(TS_MIN_MS..TS_MAX_MS).contains(&ts_ms) {
        return reject(
            Reason::TimestampOutOfRange,
            format!("`ts` {ts_ms} is outside 2000-01-01..2100-01-01"),
        );
    }
    Ok(ts_ms)
}

/// A numeric value: finite, and for a cumulative signal not negative and
/// at most [`MAX_CUMULATIVE`].
pub(crate) fn check_number(role: Role, signal: &str, v: f64) -> Result<Value, Rejection> {
    if !v.is_finite() {
        return reject(Reason::NonFinite, format!("`value` {v}"));
    }
    let cumulative = role.is_cumulative();
    if cumulative && v < 0.0 {
        return reject(
            Reason::WrongType,
            format!("cumulative `{signal}` is negative ({v})"),
        );
    }
    if cumulative && v > MAX_CUMULATIVE {
        return reject(
            Reason::ImplausibleValue,
            format!("cumulative `{signal}` {v} is beyond 2^53 (9007199254740992)"),
        );
    }
    Ok(Value::Number(v))
}

/// The refusal of text where a number belongs: `non_finite` for a spelled
/// out NaN or infinity, `wrong_type` otherwise.
fn text_for_number(signal: &str, s: &str) -> Rejection {
    let t = s.trim().to_ascii_lowercase();
    let (reason, detail) = if matches!(
        t.as_str(),
        "nan" | "inf" | "-inf" | "infinity" | "-infinity" | "+infinity"
    ) {
        (Reason::NonFinite, format!("`value` \"{s}\""))
    } else {
        (
            Reason::WrongType,
            format!("`value` of `{signal}` must be a number, got \"{s}\""),
        )
    };
    Rejection { reason, detail }
}

/// The first bare token outside JSON strings that stands for a non-finite
/// number: `NaN`, `Infinity`, `inf` (any case, any sign), or a number that
/// overflows f64 (`1e400`). Called only on a payload serde_json refused, to
/// tell `non_finite` from `malformed_json`.
fn non_finite_token(payload: &[u8]) -> Option<&str> {
    let mut i = 0;
    while i < payload.len() {
        match payload[i] {
            b'"' => {
                // Skip the string, escapes included.
                i += 1;
                while i < payload.len() && payload[i] != b'"' {
                    i += if payload[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.') => {
                let start = i;
                while i < payload.len()
                    && (payload[i].is_ascii_alphanumeric()
                        || matches!(payload[i], b'+' | b'-' | b'.'))
                {
                    i += 1;
                }
                // ASCII by construction.
                let token = std::str::from_utf8(&payload[start..i]).ok()?;
                let bare = token.trim_start_matches(['+', '-']);
                let non_finite = ["nan", "inf", "infinity"]
                    .iter()
                    .any(|n| bare.eq_ignore_ascii_case(n))
                    || (bare.starts_with(|c: char| c.is_ascii_digit() || c == '.')
                        && token.parse::<f64>().is_ok_and(f64::is_infinite));
                if non_finite {
                    return Some(token);
                }
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec() -> Decoder {
        Decoder::new(DecodeRules::default_uns())
    }

    fn reason(topic: &str, payload: &str) -> Reason {
        dec()
            .decode(topic, payload.as_bytes(), 0)
            .unwrap_err()
            .reason
    }

    const T: &str = "acme/lyon/aseptic/fill-1/filler";

    #[test]
    fn decodes_contract_examples() {
        let mut d = dec();
        let o = d
            .decode(
                &format!("{T}/state"),
                br#"{"ts":1772427600000,"value":"stopped","reason":"jam"}"#,
                7,
            )
            .unwrap();
        assert_eq!(
            o.asset,
            AssetKey::new("lyon", "aseptic", "fill-1", "filler")
        );
        assert_eq!(o.role, Role::State);
        assert_eq!(o.seq, 7);
        match o.value {
            Value::State { bucket, reason, .. } => {
                assert_eq!(bucket, Bucket::UnplannedStop);
                assert_eq!(reason.as_deref(), Some("jam"));
            }
            v => panic!("{v:?}"),
        }
        let o = d
            .decode(
                &format!("{T}/count_total"),
                br#"{"ts":"2026-03-02T05:00:00.000Z","value":42,"quality":"good"}"#,
                8,
            )
            .unwrap();
        assert_eq!(o.ts_ms, 1_772_427_600_000);
        assert_eq!(o.value, Value::Number(42.0));
        let o = d
            .decode(
                &format!("{T}/temperature_c"),
                br#"{"ts":1772427600000,"value":-3.5}"#,
                9,
            )
            .unwrap();
        assert_eq!(o.role, Role::Process);
    }

    #[test]
    fn every_reason() {
        let ts = "1772427600000";
        assert_eq!(reason(&format!("{T}/state"), "{"), Reason::MalformedJson);
        assert_eq!(
            reason(&format!("{T}/count_total"), "[1772427770000, 80, null]"),
            Reason::MalformedJson
        );
        assert_eq!(
            reason(&format!("{T}/count_total"), " 42"),
            Reason::MalformedJson
        );
        assert_eq!(
            reason(&format!("{T}/state"), r#"{"value":"running"}"#),
            Reason::MissingField
        );
        assert_eq!(
            reason(
                &format!("{T}/count_total"),
                &format!(r#"{{"ts":{ts},"value":"12,5"}}"#)
            ),
            Reason::WrongType
        );
        assert_eq!(
            reason(
                &format!("{T}/count_total"),
                &format!(r#"{{"ts":{ts},"value":"NaN"}}"#)
            ),
            Reason::NonFinite
        );
        assert_eq!(
            reason(
                &format!("{T}/count_total"),
                &format!(r#"{{"ts":{ts},"value":-1}}"#)
            ),
            Reason::WrongType
        );
        assert_eq!(
            reason(
                &format!("{T}/state"),
                &format!(r#"{{"ts":{ts},"value":3}}"#)
            ),
            Reason::WrongType
        );
        assert_eq!(
            reason("acme/lyon/garbage", &format!(r#"{{"ts":{ts},"value":1}}"#)),
            Reason::UnknownTopic
        );
        assert_eq!(
            reason(
                &format!("{T}/state"),
                &format!(r#"{{"ts":{ts},"value":"exploded"}}"#)
            ),
            Reason::UnknownState
        );
        assert_eq!(
            reason(&format!("{T}/x"), r#"{"ts":4102444800001,"value":1}"#),
            Reason::TimestampOutOfRange
        );
        let big = format!(r#"{{"ts":{ts},"value":"{}"}}"#, "x".repeat(70_000));
        assert_eq!(reason(&format!("{T}/x"), &big), Reason::Oversized);
    }

    /// JSON has no NaN or infinities: serde_json refuses them (and numbers
    /// beyond f64) as syntax errors, which the contract calls `non_finite`.
    #[test]
    fn bare_non_finite_numbers_are_non_finite_not_malformed() {
        let topic = format!("{T}/temperature_c");
        for v in [
            "NaN",
            "-NaN",
            "nan",
            "Infinity",
            "-Infinity",
            "+Infinity",
            "inf",
            "1e400",
            "-1e400",
            "1.5E+309",
        ] {
            let e = dec()
                .decode(
                    &topic,
                    format!(r#"{{"ts":1772427600000,"value":{v}}}"#).as_bytes(),
                    0,
                )
                .unwrap_err();
            assert_eq!(e.reason, Reason::NonFinite, "{v}: {}", e.detail);
            assert!(e.detail.contains(v), "{v}: {}", e.detail);
        }
        // In a string, or as a key, these words are not numbers; a broken
        // payload stays malformed even when it holds a normal number.
        for p in [
            r#"{"ts":1772427600000,"value":1,"note":"NaN" oops}"#,
            r#"{"ts":1772427600000,"value":1e300,}"#,
            r#"{"ts":1772427600000,"value":"a\" NaN", oops}"#,
            r#"{"ts":1772427600000,"value":true1}"#,
        ] {
            let e = dec().decode(&topic, p.as_bytes(), 0).unwrap_err();
            assert_eq!(e.reason, Reason::MalformedJson, "{p}: {}", e.detail);
        }
        // The largest finite numbers are numbers.
        assert!(dec()
            .decode(
                &topic,
                br#"{"ts":1772427600000,"value":1.7976931348623157e308}"#,
                0
            )
            .is_ok());
    }

    /// Topic levels that become names are restricted to a set that needs no
    /// escaping downstream: anything else could inject into line protocol.
    #[test]
    fn names_outside_the_set_are_invalid_name() {
        let payload = br#"{"ts":1772427600000,"value":1}"#;
        for topic in [
            "acme/evil\\/aseptic/fill-1/filler/power_kw",
            "acme/a b/aseptic/fill-1/filler/power_kw",
            "acme/x,y=1/aseptic/fill-1/filler/power_kw",
            "acme/s/are\"a/fill-1/filler/power_kw",
            "acme/s/a/li\nne/filler/power_kw",
            "acme/s/a/l/ass=et/power_kw",
            "acme/s/a/l/m/power kw",
            "acme/s/a/l/m/pöwer",
        ] {
            let e = dec().decode(topic, payload, 0).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidName, "{topic}: {}", e.detail);
        }
        // The committed recording's names, and the whole set.
        for topic in [
            "acme/lyon-fill/aseptic/fill-1/filler/count_total",
            "acme/basel-api/utilities/ro-1/skid/conductivity_us_cm",
            "Acme/Site.2/Area:3/LINE_4/m-5/Temp.C",
        ] {
            assert!(dec().decode(topic, payload, 0).is_ok(), "{topic}");
        }
        // The enterprise level is not a name: anything goes there.
        assert!(dec().decode("ac me/s/a/l/m/power_kw", payload, 0).is_ok());
        assert_eq!(Reason::InvalidName.as_str(), "invalid_name");
    }

    /// A cumulative value beyond 2^53 cannot be a real reading.
    #[test]
    fn cumulative_values_beyond_2_pow_53_are_implausible() {
        for signal in [
            "count_total",
            "count_good",
            "count_reject",
            "energy_kwh",
            "feed_m3",
            "permeate_m3",
            "concentrate_m3",
        ] {
            let topic = format!("{T}/{signal}");
            let decode = |v: &str| {
                dec().decode(
                    &topic,
                    format!(r#"{{"ts":1772427600000,"value":{v}}}"#).as_bytes(),
                    0,
                )
            };
            assert!(decode("9007199254740992").is_ok(), "{signal}");
            for v in ["9007199254740994", "1e300", "18446744073709551615"] {
                let e = decode(v).unwrap_err();
                assert_eq!(
                    e.reason,
                    Reason::ImplausibleValue,
                    "{signal} {v}: {}",
                    e.detail
                );
            }
        }
        // Other numbers may be that large.
        assert!(dec()
            .decode(
                &format!("{T}/power_kw"),
                br#"{"ts":1772427600000,"value":1e300}"#,
                0
            )
            .is_ok());
        assert_eq!(Reason::ImplausibleValue.as_str(), "implausible_value");
    }

    /// The README's list of dead-letter reasons is the contract: it must
    /// name every reason the code can give.
    #[test]
    fn readme_names_every_reason() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split_once("### Dead-letter reasons")
            .and_then(|(_, rest)| rest.split("\n#").next())
            .unwrap_or_default();
        for r in Reason::ALL {
            assert!(section.contains(&format!("`{r}`")), "README lacks `{r}`");
        }
        let mut names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Reason::ALL.len());
    }

    #[test]
    fn the_default_pattern_is_default_parsed() {
        assert_eq!(
            TopicPattern::parse(TopicPattern::DEFAULT),
            Ok(TopicPattern::default_uns())
        );
    }

    #[test]
    fn custom_pattern_with_literal_and_no_area() {
        let p = TopicPattern::parse("plant/{site}/{line}/{asset}/{signal}").unwrap();
        let mut d = Decoder::new(DecodeRules::new(
            p,
            &BTreeMap::new(),
            &BTreeMap::new(),
            1024,
        ));
        let (k, s) = d.map_topic("plant/s1/l1/a1/power_kw").unwrap();
        assert_eq!(k, AssetKey::new("s1", "-", "l1", "a1"));
        assert_eq!(&*s, "power_kw");
        assert_eq!(
            d.map_topic("other/s1/l1/a1/x").unwrap_err().reason,
            Reason::UnknownTopic
        );
        assert!(TopicPattern::parse("{site}/{line}/{signal}").is_err());
        assert!(TopicPattern::parse("{site}/{line}/{asset}/{signal}/#").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(topic in "[a-z/{}#+]{0,40}", payload in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = dec().decode(&topic, &payload, 0);
        }

        /// Arbitrary bytes on a topic that maps: refused with a reason, or
        /// an observation a KPI may take (finite, in the time range).
        #[test]
        fn arbitrary_payloads_are_refused_or_sane(
            signal in proptest::sample::select(vec!["state", "count_total", "energy_kwh", "product", "power_kw"]),
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let topic = format!("{T}/{signal}");
            if let Ok(obs) = dec().decode(&topic, &payload, 0) {
                assert_sane(&obs);
            }
        }

        /// Payloads shaped like the contract's, with any JSON in `ts` and
        /// `value`: the same promise.
        #[test]
        fn contract_shaped_payloads_are_refused_or_sane(
            signal in proptest::sample::select(vec!["state", "count_total", "energy_kwh", "product", "power_kw"]),
            ts in json_value(),
            value in json_value(),
        ) {
            let topic = format!("{T}/{signal}");
            let payload = format!(r#"{{"ts":{ts},"value":{value}}}"#);
            if let Ok(obs) = dec().decode(&topic, payload.as_bytes(), 0) {
                assert_sane(&obs);
            }
        }
    }

    /// Any JSON value, as text: scalars at the leaves (huge, negative,
    /// fractional numbers included), arrays and objects above.
    fn json_value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just("null".to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|i| i.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            Just("1772427600000".to_string()),
            Just("1e400".to_string()),
            "[a-z_ ]{0,12}".prop_map(|s| format!("\"{s}\"")),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec(("[a-z]{1,6}", inner), 0..4).prop_map(|v| {
                    let fields: Vec<String> =
                        v.iter().map(|(k, x)| format!("\"{k}\":{x}")).collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    /// What every accepted observation must be.
    fn assert_sane(obs: &Observation) {
        assert!((TS_MIN_MS..=TS_MAX_MS).contains(&obs.ts_ms), "{obs:?}");
        if let Value::Number(v) = &obs.value {
            assert!(v.is_finite(), "{obs:?}");
            if obs.role.is_cumulative() {
                assert!(*v >= 0.0 && *v <= MAX_CUMULATIVE, "{obs:?}");
            }
        }
    }

    #[test]
    fn deeply_nested_and_non_utf8_payloads_are_refused_not_a_crash() {
        let deep = format!(
            "{{\"ts\":1772427600000,\"value\":{}1{}}}",
            "[".repeat(20_000),
            "]".repeat(20_000)
        );
        assert_eq!(
            reason(&format!("{T}/power_kw"), &deep),
            Reason::MalformedJson
        );
        let mut bytes = br#"{"ts":1772427600000,"value":"running"#.to_vec();
        bytes.extend([0xff, 0xfe, b'"', b'}']);
        let e = dec().decode(&format!("{T}/state"), &bytes, 0).unwrap_err();
        assert_eq!(e.reason, Reason::MalformedJson, "{e:?}");
    }
}
