//! A live simulated Sparkplug B 3.0 edge node with a small utility plant
//! behind it, that obeys parameter writes (NCMD/DCMD).
//!
//! [`EdgePlant`] is pure: no I/O, no wall clock, no threads. The caller
//! passes `now_ms` to every call; a driver elsewhere encodes the
//! [`EdgeMessage`]s returned into Sparkplug protobuf payloads, publishes
//! them on [`EdgePlant::topic`], subscribes to
//! [`EdgePlant::command_topics`] and decodes incoming NCMD/DCMD into
//! [`EdgeCommand`]s. The product uses it to exercise remote parameter
//! control end to end: a write is applied, its read-back is reported at
//! once, and the physics follows (or, with [`EdgePlant::set_obey`]`(false)`,
//! the write is acknowledged and ignored, for the "unconfirmed" alarm).
//!
//! Node `{node}` of group `{group}` has three devices (the engine maps them
//! to site `{group}`, line `{node}`, asset `{device}`, signal `{metric}`):
//!
//! - `ro-1`, reverse osmosis: cumulative `feed_m3`, `permeate_m3`,
//!   `concentrate_m3`, `conductivity_us_cm`, and the writable
//!   `recovery_setpoint_pct` (default 75). Feed ~12 m³/h; the recovery
//!   follows the setpoint with a 20 s lag; permeate = feed × recovery.
//! - `hvac-1`: `power_kw`, `energy_kwh`, `temp_c`, and the writable
//!   `temp_setpoint_c` (default 21): 30 kW + 4 kW per °C below 24 °C.
//! - `line-1`, packaging: `state`, `product`, `count_total`, `count_good`,
//!   `count_reject`, `power_kw`, `energy_kwh`, and the writable
//!   `speed_limit_upm` (default 120) and `standby` (default false; true:
//!   state `break`, no production, ~4 kW instead of ~45 kW).
//!
//! Protocol: births declare every metric with its name, a node-wide unique
//! alias, its data type and value; data messages carry aliases only and
//! only what changed (report by exception), at most once a second per
//! device. `seq` is 0 on the NBIRTH and counts every later message of the
//! node, wrapping after 255. `bdSeq` numbers MQTT sessions: the driver
//! registers [`EdgePlant::death_payload`] as its will before connecting,
//! calls [`EdgePlant::births`] once connected and [`EdgePlant::death`] when
//! the connection ends; the next session's `bdSeq` is one more. A rebirth
//! request (`Node Control/Rebirth`) repeats the births within the same
//! session and keeps `bdSeq`, since the will registered at connect (which
//! the host matches to the birth by `bdSeq`) is still the same.
//!
//! The physics advances in fixed steps of 100 ms aligned on the start time,
//! so for one seed the plant's state at a given time is the same whatever
//! the calling cadence. Commands are hostile input: bounded, checked, and
//! refused as a whole with reasons when any part is wrong.

mod physics;
#[cfg(test)]
mod tests;

use ctower_model::ParamValue;
use physics::Plant;
use std::fmt;

/// Most metrics accepted in one command.
pub const MAX_COMMAND_METRICS: usize = 64;
/// Most often a device reports data, ms (a read-back of a write excepted).
pub const TICK_MS: i64 = 1_000;
/// Longest stretch of time simulated in one call, ms. A longer gap (a
/// driver that was suspended) is skipped: the plant holds its state, as
/// after an outage, and goes on from the new time.
pub const MAX_GAP_MS: i64 = 3_600_000;
/// Latest time accepted (2100-01-01T00:00:00Z), ms since the epoch.
pub const MAX_TIME_MS: i64 = 4_102_444_800_000;
/// The devices of the node, in birth order.
pub const DEVICES: [&str; 3] = ["ro-1", "hvac-1", "line-1"];

/// Longest piece of a command's text quoted back in a refusal, chars.
const QUOTE_CHARS: usize = 64;

/// What [`EdgePlant`] simulates and how it is named on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeConfig {
    /// Sparkplug group id (the engine's site), e.g. `zurich-live`.
    pub group: String,
    /// Edge node id (the engine's line), e.g. `utilities`.
    pub node: String,
    /// Seed of the plant's noise.
    pub seed: u64,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            group: "zurich-live".to_string(),
            node: "utilities".to_string(),
            seed: 42,
        }
    }
}

/// A Sparkplug message type the node publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeKind {
    /// Node birth: the node's metrics, `seq` 0.
    NBirth,
    /// Device birth: every metric of one device, with names and aliases.
    DBirth,
    /// Node data (the node's own metrics never change, so never sent).
    NData,
    /// Device data: changed metrics of one device, by alias.
    DData,
    /// Node death: only `bdSeq`, no `seq`; the MQTT will.
    NDeath,
}

impl EdgeKind {
    /// The message type as in the topic (`NBIRTH`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::NBirth => "NBIRTH",
            EdgeKind::DBirth => "DBIRTH",
            EdgeKind::NData => "NDATA",
            EdgeKind::DData => "DDATA",
            EdgeKind::NDeath => "NDEATH",
        }
    }

    /// Whether the message belongs to a device (its topic ends in one).
    pub fn is_device(self) -> bool {
        matches!(self, EdgeKind::DBirth | EdgeKind::DData)
    }
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Sparkplug B data types the node uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeType {
    /// Signed 64-bit integer (code 4), in the protobuf `long_value` as its
    /// two's complement.
    Int64,
    /// Unsigned 64-bit integer (code 8), in `long_value`.
    UInt64,
    /// 64-bit float (code 10), in `double_value`.
    Double,
    /// Boolean (code 11), in `boolean_value`.
    Boolean,
    /// UTF-8 string (code 12), in `string_value`.
    String,
}

impl EdgeType {
    /// The Sparkplug B `datatype` code.
    pub fn code(self) -> u32 {
        match self {
            EdgeType::Int64 => 4,
            EdgeType::UInt64 => 8,
            EdgeType::Double => 10,
            EdgeType::Boolean => 11,
            EdgeType::String => 12,
        }
    }

    /// The type of a `datatype` code; `None` for codes the node does not
    /// use.
    pub fn from_code(code: u32) -> Option<EdgeType> {
        match code {
            4 => Some(EdgeType::Int64),
            8 => Some(EdgeType::UInt64),
            10 => Some(EdgeType::Double),
            11 => Some(EdgeType::Boolean),
            12 => Some(EdgeType::String),
            _ => None,
        }
    }

    /// The specification's name of the type (`Int64`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeType::Int64 => "Int64",
            EdgeType::UInt64 => "UInt64",
            EdgeType::Double => "Double",
            EdgeType::Boolean => "Boolean",
            EdgeType::String => "String",
        }
    }
}

/// A metric's value. Decoding a command, the driver gives what the wire
/// says; anything that is not a valid value for the metric is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum EdgeValue {
    /// A switch.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer (counters, `bdSeq`).
    UInt(u64),
    /// A number.
    Double(f64),
    /// A text.
    String(String),
}

impl EdgeValue {
    /// The data type this value is naturally sent as.
    pub fn datatype(&self) -> EdgeType {
        match self {
            EdgeValue::Bool(_) => EdgeType::Boolean,
            EdgeValue::Int(_) => EdgeType::Int64,
            EdgeValue::UInt(_) => EdgeType::UInt64,
            EdgeValue::Double(_) => EdgeType::Double,
            EdgeValue::String(_) => EdgeType::String,
        }
    }

    /// The value as a parameter value; `None` for a text, or an unsigned
    /// integer beyond `i64`.
    pub fn to_param(&self) -> Option<ParamValue> {
        match self {
            EdgeValue::Bool(b) => Some(ParamValue::Bool(*b)),
            EdgeValue::Int(i) => Some(ParamValue::Int(*i)),
            EdgeValue::UInt(u) => i64::try_from(*u).ok().map(ParamValue::Int),
            EdgeValue::Double(f) => Some(ParamValue::Float(*f)),
            EdgeValue::String(_) => None,
        }
    }
}

impl From<ParamValue> for EdgeValue {
    fn from(v: ParamValue) -> Self {
        match v {
            ParamValue::Bool(b) => EdgeValue::Bool(b),
            ParamValue::Int(i) => EdgeValue::Int(i),
            ParamValue::Float(f) => EdgeValue::Double(f),
        }
    }
}

impl fmt::Display for EdgeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EdgeValue::Bool(b) => write!(f, "{b}"),
            EdgeValue::Int(i) => write!(f, "{i}"),
            EdgeValue::UInt(u) => write!(f, "{u}"),
            EdgeValue::Double(x) => write!(f, "{x}"),
            EdgeValue::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// One metric of a published message.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeMetric {
    /// The name: in births and in the NDEATH's `bdSeq`; `None` in data
    /// messages, which go by alias only.
    pub name: Option<String>,
    /// The node-wide unique alias declared in the births.
    pub alias: u64,
    /// The data type (also in data messages, as real edge nodes send it).
    pub datatype: EdgeType,
    /// The value, of the variant that `datatype` says.
    pub value: EdgeValue,
    /// When the value was sampled, ms since the epoch.
    pub timestamp_ms: i64,
}

/// One message to publish, on [`EdgePlant::topic`]`(kind, device)`.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeMessage {
    /// The message type.
    pub kind: EdgeKind,
    /// The device, for DBIRTH and DDATA.
    pub device: Option<String>,
    /// The payload's timestamp, ms since the epoch.
    pub timestamp_ms: i64,
    /// The payload's `seq` (0..=255); `None` only on the NDEATH, which
    /// carries none.
    pub seq: Option<u64>,
    /// The metrics.
    pub metrics: Vec<EdgeMetric>,
}

/// One metric of an incoming command, by name and/or alias.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandMetric {
    /// The metric's name; takes precedence over the alias.
    pub name: Option<String>,
    /// The metric's alias, as declared in the births.
    pub alias: Option<u64>,
    /// The value to write.
    pub value: EdgeValue,
}

/// An incoming NCMD (`device` `None`) or DCMD.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EdgeCommand {
    /// The device addressed, from the DCMD's topic.
    pub device: Option<String>,
    /// What to write.
    pub metrics: Vec<CommandMetric>,
}

/// Why (part of) a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefuseReason {
    /// The node is not born (between a death and the next births).
    Offline,
    /// `now_ms` out of range or earlier than the plant's clock.
    BadTime,
    /// More than [`MAX_COMMAND_METRICS`] metrics.
    TooManyMetrics,
    /// No such device on this node.
    UnknownDevice,
    /// No such metric on the node or device addressed (or neither a name
    /// nor an alias).
    UnknownMetric,
    /// The metric is read-only (a meter, a counter, `bdSeq`).
    NotWritable,
    /// A value of the wrong type (a switch for a number, a text, a
    /// fraction for an integer).
    WrongType,
    /// NaN or an infinity.
    NotFinite,
    /// Outside the metric's accepted range.
    OutOfRange,
}

/// A refused part of a command. When anything is refused, nothing of the
/// command is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The metric as the command named it (or `alias N`), cut to 64
    /// characters, control characters escaped; `None` when the whole
    /// command is refused.
    pub metric: Option<String>,
    /// Why.
    pub reason: RefuseReason,
    /// What is wrong, for a log line.
    pub detail: String,
}

/// A write the plant accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedWrite {
    /// The device written.
    pub device: String,
    /// The metric's name.
    pub metric: String,
    /// The value written, in the metric's type.
    pub value: EdgeValue,
    /// Whether it was applied; `false` under [`EdgePlant::set_obey`]`(false)`.
    pub obeyed: bool,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CommandOutcome {
    /// Messages to publish: the read-back DDATA of a write, the births of a
    /// rebirth. Empty when anything was refused.
    pub messages: Vec<EdgeMessage>,
    /// The writes accepted (applied unless told not to obey).
    pub accepted: Vec<AcceptedWrite>,
    /// Whether a rebirth was requested and done.
    pub rebirth: bool,
    /// What was refused; non-empty means nothing was applied.
    pub refused: Vec<Refusal>,
}

/// Errors of [`EdgePlant`]'s calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeError {
    /// An [`EdgeConfig`] or start time that cannot be used.
    #[error("invalid edge node configuration: {0}")]
    InvalidConfig(String),
    /// A time earlier than one already given.
    #[error("time went back: {now_ms} is before the plant's clock {clock_ms}")]
    TimeWentBack {
        /// The time given.
        now_ms: i64,
        /// The plant's clock.
        clock_ms: i64,
    },
    /// A time outside 1970..2100.
    #[error("time {0} ms is outside 1970..2100")]
    TimeOutOfRange(i64),
}

/// Which metric a definition reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    BdSeq,
    Rebirth,
    RoFeed,
    RoPermeate,
    RoConcentrate,
    RoConductivity,
    RoRecoverySetpoint,
    HvacPower,
    HvacEnergy,
    HvacTemp,
    HvacTempSetpoint,
    LineState,
    LineProduct,
    LineTotal,
    LineGood,
    LineReject,
    LinePower,
    LineEnergy,
    LineSpeedLimit,
    LineStandby,
}

/// What a writable metric accepts.
#[derive(Debug, Clone, Copy)]
enum Write {
    /// A finite number in `[min, max]` (an integer is taken as a number).
    Float(f64, f64),
    /// An integer in `[min, max]` (a whole number is taken as one).
    Int(i64, i64),
    /// A switch.
    Bool,
}

/// One metric of the node or a device.
#[derive(Debug, Clone, Copy)]
struct Def {
    name: &'static str,
    datatype: EdgeType,
    key: Key,
    /// `Some` for a writable metric.
    write: Option<Write>,
    /// Decimals a number is published with (its resolution, so a value
    /// creeping towards its setpoint is not reported every step forever);
    /// `None`: as is.
    decimals: Option<i32>,
}

const fn def(name: &'static str, datatype: EdgeType, key: Key) -> Def {
    Def {
        name,
        datatype,
        key,
        write: None,
        decimals: None,
    }
}

const fn num(name: &'static str, key: Key, decimals: i32) -> Def {
    Def {
        decimals: Some(decimals),
        ..def(name, EdgeType::Double, key)
    }
}

const fn writable(name: &'static str, datatype: EdgeType, key: Key, write: Write) -> Def {
    Def {
        write: Some(write),
        ..def(name, datatype, key)
    }
}

const NODE_METRICS: &[Def] = &[
    def("bdSeq", EdgeType::UInt64, Key::BdSeq),
    writable(
        "Node Control/Rebirth",
        EdgeType::Boolean,
        Key::Rebirth,
        Write::Bool,
    ),
];

const RO_METRICS: &[Def] = &[
    num("feed_m3", Key::RoFeed, 4),
    num("permeate_m3", Key::RoPermeate, 4),
    num("concentrate_m3", Key::RoConcentrate, 4),
    num("conductivity_us_cm", Key::RoConductivity, 2),
    writable(
        "recovery_setpoint_pct",
        EdgeType::Double,
        Key::RoRecoverySetpoint,
        Write::Float(30.0, 90.0),
    ),
];

const HVAC_METRICS: &[Def] = &[
    num("power_kw", Key::HvacPower, 2),
    num("energy_kwh", Key::HvacEnergy, 3),
    num("temp_c", Key::HvacTemp, 2),
    writable(
        "temp_setpoint_c",
        EdgeType::Double,
        Key::HvacTempSetpoint,
        Write::Float(12.0, 30.0),
    ),
];

const LINE_METRICS: &[Def] = &[
    def("state", EdgeType::String, Key::LineState),
    def("product", EdgeType::String, Key::LineProduct),
    def("count_total", EdgeType::UInt64, Key::LineTotal),
    def("count_good", EdgeType::UInt64, Key::LineGood),
    def("count_reject", EdgeType::UInt64, Key::LineReject),
    num("power_kw", Key::LinePower, 2),
    num("energy_kwh", Key::LineEnergy, 3),
    writable(
        "speed_limit_upm",
        EdgeType::Int64,
        Key::LineSpeedLimit,
        Write::Int(1, 600),
    ),
    writable("standby", EdgeType::Boolean, Key::LineStandby, Write::Bool),
];

/// The metric tables: the node's (index 0), then each device's, in the
/// order of [`DEVICES`]. Aliases number them all from 1 in this order.
const TABLES: [&[Def]; 4] = [NODE_METRICS, RO_METRICS, HVAC_METRICS, LINE_METRICS];

/// The alias of metric `i` of table `table`.
fn alias_of(table: usize, i: usize) -> u64 {
    let before: usize = TABLES[..table].iter().map(|t| t.len()).sum();
    (before + i + 1) as u64
}

/// The table and index of an alias.
fn find_alias(alias: u64) -> Option<(usize, usize)> {
    (0..TABLES.len())
        .flat_map(|t| (0..TABLES[t].len()).map(move |i| (t, i)))
        .find(|&(t, i)| alias_of(t, i) == alias)
}

/// `text` cut to [`QUOTE_CHARS`] characters, control characters escaped,
/// for quoting hostile input in a log line.
fn quote(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(QUOTE_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(QUOTE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// `x` rounded to `decimals` decimals.
fn round(x: f64, decimals: i32) -> f64 {
    let s = 10f64.powi(decimals);
    (x * s).round() / s
}

/// The metric a command names: by name when given, else by alias.
fn describe(m: &CommandMetric) -> String {
    match (&m.name, m.alias) {
        (Some(n), _) => quote(n),
        (None, Some(a)) => format!("alias {a}"),
        (None, None) => "(no name, no alias)".to_string(),
    }
}

/// Checks `value` against what a writable metric accepts; the value in the
/// metric's own type.
fn coerce(write: Write, value: &EdgeValue) -> Result<EdgeValue, (RefuseReason, String)> {
    let wrong = |want: &str| {
        Err((
            RefuseReason::WrongType,
            format!("{} value for a {want} metric", value.datatype().as_str()),
        ))
    };
    match write {
        Write::Bool => match value {
            EdgeValue::Bool(b) => Ok(EdgeValue::Bool(*b)),
            _ => wrong("Boolean"),
        },
        Write::Float(min, max) => {
            let x = match value {
                EdgeValue::Double(x) => *x,
                EdgeValue::Int(i) => *i as f64,
                EdgeValue::UInt(u) => *u as f64,
                _ => return wrong("Double"),
            };
            if !x.is_finite() {
                return Err((
                    RefuseReason::NotFinite,
                    format!("{x} is not a finite number"),
                ));
            }
            if !(min..=max).contains(&x) {
                return Err((
                    RefuseReason::OutOfRange,
                    format!("{x} is outside {min}..={max}"),
                ));
            }
            Ok(EdgeValue::Double(x))
        }
        Write::Int(min, max) => {
            let i = match value {
                EdgeValue::Int(i) => *i,
                EdgeValue::UInt(u) => match i64::try_from(*u) {
                    Ok(i) => i,
                    Err(_) => {
                        let detail = format!("{u} is outside {min}..={max}");
                        return Err((RefuseReason::OutOfRange, detail));
                    }
                },
                EdgeValue::Double(x) if !x.is_finite() => {
                    return Err((
                        RefuseReason::NotFinite,
                        format!("{x} is not a finite number"),
                    ))
                }
                EdgeValue::Double(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => *x as i64,
                EdgeValue::Double(x) => {
                    return Err((RefuseReason::WrongType, format!("{x} is not an integer")))
                }
                _ => return wrong("Int64"),
            };
            if !(min..=max).contains(&i) {
                return Err((
                    RefuseReason::OutOfRange,
                    format!("{i} is outside {min}..={max}"),
                ));
            }
            Ok(EdgeValue::Int(i))
        }
    }
}

/// A Sparkplug B edge node with a small utility plant behind it. See the
/// module documentation for the devices, the physics and the protocol.
#[derive(Debug, Clone)]
pub struct EdgePlant {
    cfg: EdgeConfig,
    plant: Plant,
    /// Physics time: the last step boundary reached, ms.
    t_ms: i64,
    /// Latest `now_ms` given, ms.
    clock_ms: i64,
    /// Between births and death.
    online: bool,
    /// The current (or, offline, the next) session's `bdSeq`.
    bd_seq: u64,
    /// `seq` of the next message.
    seq: u8,
    obey: bool,
    /// Per device: the values last published.
    last_sent: Vec<Vec<EdgeValue>>,
    /// Per device: when data was last reported.
    last_emit_ms: Vec<i64>,
}

impl EdgePlant {
    /// A plant at `start_ms` (ms since the epoch), offline, all parameters
    /// at their defaults; its physics steps are aligned on `start_ms`.
    pub fn new(cfg: EdgeConfig, start_ms: i64) -> Result<Self, EdgeError> {
        for (what, id) in [("group", &cfg.group), ("node", &cfg.node)] {
            if id.is_empty()
                || id.len() > 256
                || id
                    .chars()
                    .any(|c| matches!(c, '/' | '+' | '#') || c.is_control())
            {
                return Err(EdgeError::InvalidConfig(format!(
                    "{what} `{}` must be one non-empty topic level of at most 256 bytes (no `/`, `+`, `#`)",
                    quote(id)
                )));
            }
        }
        if !(0..=MAX_TIME_MS).contains(&start_ms) {
            return Err(EdgeError::TimeOutOfRange(start_ms));
        }
        let plant = Plant::new(cfg.seed);
        let mut edge = EdgePlant {
            cfg,
            plant,
            t_ms: start_ms,
            clock_ms: start_ms,
            online: false,
            bd_seq: 0,
            seq: 0,
            obey: true,
            last_sent: Vec::new(),
            last_emit_ms: vec![start_ms; DEVICES.len()],
        };
        edge.last_sent = (1..TABLES.len()).map(|t| edge.values(t)).collect();
        Ok(edge)
    }

    /// The configuration.
    pub fn config(&self) -> &EdgeConfig {
        &self.cfg
    }

    /// The topic of a message: `spBv1.0/{group}/{KIND}/{node}`, then
    /// `/{device}` for DBIRTH and DDATA.
    pub fn topic(&self, kind: EdgeKind, device: Option<&str>) -> String {
        let base = format!("spBv1.0/{}/{}/{}", self.cfg.group, kind, self.cfg.node);
        match device {
            Some(d) if kind.is_device() => format!("{base}/{d}"),
            _ => base,
        }
    }

    /// The topics to subscribe to for commands: the node's NCMD and every
    /// device's DCMD.
    pub fn command_topics(&self) -> [String; 2] {
        let (g, n) = (&self.cfg.group, &self.cfg.node);
        [
            format!("spBv1.0/{g}/NCMD/{n}"),
            format!("spBv1.0/{g}/DCMD/{n}/+"),
        ]
    }

    /// The `bdSeq` of the current session (online) or of the next one
    /// (offline): the number in the will to register before connecting.
    pub fn bd_seq(&self) -> u64 {
        self.bd_seq
    }

    /// The NDEATH of the current (or next) session, to register as the MQTT
    /// will at connect: `bdSeq` only, by name, no `seq`.
    pub fn death_payload(&self, now_ms: i64) -> EdgeMessage {
        EdgeMessage {
            kind: EdgeKind::NDeath,
            device: None,
            timestamp_ms: now_ms,
            seq: None,
            metrics: vec![EdgeMetric {
                name: Some(NODE_METRICS[0].name.to_string()),
                alias: alias_of(0, 0),
                datatype: EdgeType::UInt64,
                value: EdgeValue::UInt(self.bd_seq),
                timestamp_ms: now_ms,
            }],
        }
    }

    /// Ends the session (the connection is closed or lost): the NDEATH to
    /// publish on a clean disconnect, `None` if already offline. The next
    /// session's `bdSeq` is one more (wrapping after 255).
    pub fn death(&mut self, now_ms: i64) -> Option<EdgeMessage> {
        if !self.online {
            return None;
        }
        let msg = self.death_payload(now_ms);
        self.online = false;
        self.bd_seq = (self.bd_seq + 1) % 256;
        Some(msg)
    }

    /// Whether the node is born (between [`EdgePlant::births`] and
    /// [`EdgePlant::death`]).
    pub fn is_online(&self) -> bool {
        self.online
    }

    /// Whether writes are applied.
    pub fn obeys(&self) -> bool {
        self.obey
    }

    /// `false`: writes are still accepted and acknowledged on the wire but
    /// never applied (the read-back keeps the old value), the plant the
    /// engine's "unconfirmed" alarm is tested against.
    pub fn set_obey(&mut self, obey: bool) {
        self.obey = obey;
    }

    /// The latest time given to the plant, ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.clock_ms
    }

    /// The value `device`'s `metric` would be published with now; `None`
    /// for an unknown device or metric.
    pub fn value(&self, device: &str, metric: &str) -> Option<EdgeValue> {
        let t = DEVICES.iter().position(|d| *d == device)? + 1;
        let d = TABLES[t].iter().find(|d| d.name == metric)?;
        Some(self.read(d))
    }

    /// The alias declared for `metric` of `device` (of the node itself when
    /// `device` is `None`); `None` if there is no such metric.
    pub fn alias(&self, device: Option<&str>, metric: &str) -> Option<u64> {
        let t = match device {
            None => 0,
            Some(dev) => DEVICES.iter().position(|d| *d == dev)? + 1,
        };
        let i = TABLES[t].iter().position(|d| d.name == metric)?;
        Some(alias_of(t, i))
    }

    /// Starts a session (or repeats the births within one): advances the
    /// physics to `now_ms`, then the NBIRTH (`seq` 0) and one DBIRTH per
    /// device declaring every metric with name, alias, type and value.
    pub fn births(&mut self, now_ms: i64) -> Result<Vec<EdgeMessage>, EdgeError> {
        self.check_time(now_ms)?;
        self.step_to(now_ms);
        Ok(self.births_now(now_ms))
    }

    /// Advances the physics to `now_ms` and returns the DDATA of each
    /// device whose published values changed, by alias, at most once per
    /// [`TICK_MS`] per device. Offline, the physics advances and nothing is
    /// returned.
    pub fn advance(&mut self, now_ms: i64) -> Result<Vec<EdgeMessage>, EdgeError> {
        self.check_time(now_ms)?;
        self.step_to(now_ms);
        let mut out = Vec::new();
        if !self.online {
            return Ok(out);
        }
        for d in 0..DEVICES.len() {
            if now_ms - self.last_emit_ms[d] < TICK_MS {
                continue;
            }
            let now = self.values(d + 1);
            let changed: Vec<usize> = (0..now.len())
                .filter(|&i| now[i] != self.last_sent[d][i])
                .collect();
            if changed.is_empty() {
                continue;
            }
            let metrics = changed
                .iter()
                .map(|&i| self.data_metric(d + 1, i, now[i].clone(), now_ms))
                .collect();
            out.push(self.message(EdgeKind::DData, Some(d), now_ms, metrics));
            self.last_sent[d] = now;
            self.last_emit_ms[d] = now_ms;
        }
        Ok(out)
    }

    /// Handles an incoming NCMD (`cmd.device` `None`) or DCMD at `now_ms`.
    ///
    /// Every metric is resolved (a name before an alias) and checked; if
    /// anything is wrong the whole command is refused with reasons and
    /// nothing is applied. Otherwise the physics advances to `now_ms`, the
    /// writes are applied (unless told not to obey) and their read-back is
    /// returned at once in a DDATA of the device; `Node Control/Rebirth`
    /// `true` returns fresh births (NBIRTH `seq` 0, same `bdSeq`).
    pub fn command(&mut self, cmd: &EdgeCommand, now_ms: i64) -> CommandOutcome {
        let mut out = CommandOutcome::default();
        let whole = |reason, detail| Refusal {
            metric: None,
            reason,
            detail,
        };
        if let Err(e) = self.check_time(now_ms) {
            out.refused
                .push(whole(RefuseReason::BadTime, e.to_string()));
            return out;
        }
        if !self.online {
            let detail = "the node is not born; commands wait for the births".to_string();
            out.refused.push(whole(RefuseReason::Offline, detail));
            return out;
        }
        if cmd.metrics.len() > MAX_COMMAND_METRICS {
            let detail = format!(
                "{} metrics in one command, more than {MAX_COMMAND_METRICS}",
                cmd.metrics.len()
            );
            out.refused
                .push(whole(RefuseReason::TooManyMetrics, detail));
            return out;
        }
        let table = match cmd.device.as_deref() {
            None => 0,
            Some(dev) => match DEVICES.iter().position(|d| *d == dev) {
                Some(d) => d + 1,
                None => {
                    let detail = format!("no device `{}` on this node", quote(dev));
                    out.refused.push(whole(RefuseReason::UnknownDevice, detail));
                    return out;
                }
            },
        };
        let mut plan = Vec::with_capacity(cmd.metrics.len());
        for m in &cmd.metrics {
            match self.resolve(table, m) {
                Ok(p) => plan.push(p),
                Err((reason, detail)) => out.refused.push(Refusal {
                    metric: Some(describe(m)),
                    reason,
                    detail,
                }),
            }
        }
        if !out.refused.is_empty() {
            return out;
        }
        self.step_to(now_ms);
        let mut written: Vec<usize> = Vec::new();
        for (i, value) in plan {
            let def = &TABLES[table][i];
            if def.key == Key::Rebirth {
                out.rebirth |= value == EdgeValue::Bool(true);
                continue;
            }
            if self.obey {
                self.apply(def.key, &value);
            }
            out.accepted.push(AcceptedWrite {
                device: DEVICES[table - 1].to_string(),
                metric: def.name.to_string(),
                value,
                obeyed: self.obey,
            });
            if !written.contains(&i) {
                written.push(i);
            }
        }
        if !written.is_empty() {
            // The read-back, at once: the device's writable metrics as they
            // now are (the old value when not obeying).
            let d = table - 1;
            let metrics = written
                .iter()
                .map(|&i| {
                    let v = self.read(&TABLES[table][i]);
                    self.last_sent[d][i] = v.clone();
                    self.data_metric(table, i, v, now_ms)
                })
                .collect();
            let msg = self.message(EdgeKind::DData, Some(d), now_ms, metrics);
            out.messages.push(msg);
        }
        if out.rebirth {
            out.messages.extend(self.births_now(now_ms));
        }
        out
    }

    /// Refuses a time out of range or earlier than the clock.
    fn check_time(&self, now_ms: i64) -> Result<(), EdgeError> {
        if !(0..=MAX_TIME_MS).contains(&now_ms) {
            return Err(EdgeError::TimeOutOfRange(now_ms));
        }
        if now_ms < self.clock_ms {
            return Err(EdgeError::TimeWentBack {
                now_ms,
                clock_ms: self.clock_ms,
            });
        }
        Ok(())
    }

    /// Steps the physics to the last step boundary at or before `now_ms`
    /// (checked: not before the clock); a gap over [`MAX_GAP_MS`] is
    /// skipped.
    fn step_to(&mut self, now_ms: i64) {
        let steps = (now_ms - self.t_ms) / physics::STEP_MS;
        let target = self.t_ms + steps * physics::STEP_MS;
        if target - self.t_ms > MAX_GAP_MS {
            self.t_ms = target;
        }
        while self.t_ms < target {
            self.plant.step();
            self.t_ms += physics::STEP_MS;
        }
        self.clock_ms = now_ms;
    }

    /// The births at `now_ms` (physics already there).
    fn births_now(&mut self, now_ms: i64) -> Vec<EdgeMessage> {
        self.online = true;
        self.seq = 0;
        let mut out = Vec::with_capacity(TABLES.len());
        let node = self.birth_metrics(0, now_ms);
        out.push(self.message(EdgeKind::NBirth, None, now_ms, node));
        for d in 0..DEVICES.len() {
            let metrics = self.birth_metrics(d + 1, now_ms);
            out.push(self.message(EdgeKind::DBirth, Some(d), now_ms, metrics));
            self.last_sent[d] = self.values(d + 1);
            self.last_emit_ms[d] = now_ms;
        }
        out
    }

    fn birth_metrics(&self, table: usize, now_ms: i64) -> Vec<EdgeMetric> {
        TABLES[table]
            .iter()
            .enumerate()
            .map(|(i, d)| EdgeMetric {
                name: Some(d.name.to_string()),
                ..self.data_metric(table, i, self.read(d), now_ms)
            })
            .collect()
    }

    /// Metric `i` of `table` by alias only.
    fn data_metric(&self, table: usize, i: usize, value: EdgeValue, now_ms: i64) -> EdgeMetric {
        EdgeMetric {
            name: None,
            alias: alias_of(table, i),
            datatype: TABLES[table][i].datatype,
            value,
            timestamp_ms: now_ms,
        }
    }

    /// A message with the next `seq`.
    fn message(
        &mut self,
        kind: EdgeKind,
        device: Option<usize>,
        now_ms: i64,
        metrics: Vec<EdgeMetric>,
    ) -> EdgeMessage {
        let seq = u64::from(self.seq);
        self.seq = self.seq.wrapping_add(1);
        EdgeMessage {
            kind,
            device: device.map(|d| DEVICES[d].to_string()),
            timestamp_ms: now_ms,
            seq: Some(seq),
            metrics,
        }
    }

    /// Every value of `table`, as published.
    fn values(&self, table: usize) -> Vec<EdgeValue> {
        TABLES[table].iter().map(|d| self.read(d)).collect()
    }

    /// A metric's value as published (numbers at their resolution).
    fn read(&self, def: &Def) -> EdgeValue {
        let p = &self.plant;
        let x = match def.key {
            Key::BdSeq => return EdgeValue::UInt(self.bd_seq),
            Key::Rebirth => return EdgeValue::Bool(false),
            Key::LineState => return EdgeValue::String(p.line.state().to_string()),
            Key::LineProduct => return EdgeValue::String(physics::LINE_PRODUCT.to_string()),
            Key::LineTotal => return EdgeValue::UInt(p.line.total),
            Key::LineGood => return EdgeValue::UInt(p.line.good),
            Key::LineReject => return EdgeValue::UInt(p.line.reject),
            Key::LineSpeedLimit => return EdgeValue::Int(p.line.speed_upm),
            Key::LineStandby => return EdgeValue::Bool(p.line.standby),
            Key::RoFeed => p.ro.feed_m3,
            Key::RoPermeate => p.ro.permeate_m3,
            Key::RoConcentrate => p.ro.concentrate_m3,
            Key::RoConductivity => p.ro.conductivity_us_cm(),
            Key::RoRecoverySetpoint => p.ro.setpoint_pct,
            Key::HvacPower => p.hvac.power_kw(),
            Key::HvacEnergy => p.hvac.energy_kwh,
            Key::HvacTemp => p.hvac.temp_c,
            Key::HvacTempSetpoint => p.hvac.setpoint_c,
            Key::LinePower => p.line.power_kw(),
            Key::LineEnergy => p.line.energy_kwh,
        };
        EdgeValue::Double(def.decimals.map_or(x, |n| round(x, n)))
    }

    /// Applies a checked write (the value is in the metric's type).
    fn apply(&mut self, key: Key, value: &EdgeValue) {
        let p = &mut self.plant;
        match (key, value) {
            (Key::RoRecoverySetpoint, EdgeValue::Double(x)) => p.ro.setpoint_pct = *x,
            (Key::HvacTempSetpoint, EdgeValue::Double(x)) => p.hvac.setpoint_c = *x,
            (Key::LineSpeedLimit, EdgeValue::Int(i)) => p.line.speed_upm = *i,
            (Key::LineStandby, EdgeValue::Bool(b)) => p.line.standby = *b,
            // `coerce` gives every writable metric a value of its type;
            // read-only keys never reach here.
            _ => {}
        }
    }

    /// Resolves and checks one metric of a command to `table`: its index
    /// and the value in its type.
    fn resolve(
        &self,
        table: usize,
        m: &CommandMetric,
    ) -> Result<(usize, EdgeValue), (RefuseReason, String)> {
        let target = match table {
            0 => "the node".to_string(),
            t => format!("device `{}`", DEVICES[t - 1]),
        };
        let i = match (&m.name, m.alias) {
            (Some(name), _) => TABLES[table]
                .iter()
                .position(|d| d.name == name)
                .ok_or_else(|| {
                    let detail = format!("no metric `{}` on {target}", quote(name));
                    (RefuseReason::UnknownMetric, detail)
                })?,
            (None, Some(alias)) => match find_alias(alias) {
                Some((t, i)) if t == table => i,
                _ => {
                    let detail = format!("alias {alias} is not a metric of {target}");
                    return Err((RefuseReason::UnknownMetric, detail));
                }
            },
            (None, None) => {
                let detail = "a metric with neither a name nor an alias".to_string();
                return Err((RefuseReason::UnknownMetric, detail));
            }
        };
        let def = &TABLES[table][i];
        let Some(write) = def.write else {
            let detail = format!("`{}` of {target} is read-only", def.name);
            return Err((RefuseReason::NotWritable, detail));
        };
        let value =
            coerce(write, &m.value).map_err(|(r, why)| (r, format!("`{}`: {why}", def.name)))?;
        Ok((i, value))
    }
}
