//! Observations: one decoded, validated telemetry value with its event time.

use crate::AssetKey;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a signal means to the KPI engine. Set per source in configuration
/// (signal name → role); a numeric signal with no role is a free process value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Machine state with an optional reason code (string payload).
    State,
    /// Cumulative count of all units produced.
    CounterTotal,
    /// Cumulative count of good units.
    CounterGood,
    /// Cumulative count of rejected units.
    CounterReject,
    /// Product currently made (string payload); selects the ideal cycle time.
    Product,
    /// Cumulative active energy meter, kWh.
    EnergyKwh,
    /// Instantaneous active power, kW.
    PowerKw,
    /// Cumulative water meter of the RO feed, m³.
    WaterFeedM3,
    /// Cumulative water meter of the RO permeate (the recovered water), m³.
    WaterPermeateM3,
    /// Cumulative water meter of the RO concentrate (the reject), m³.
    WaterConcentrateM3,
    /// Water quality: conductivity, µS/cm (limit: USP <645>).
    ConductivityUsCm,
    /// Water quality: total organic carbon, ppb (limit: USP <643>).
    TocPpb,
    /// Any other numeric value (temperature, pressure …), for alert rules.
    Process,
}

impl Role {
    /// Cumulative counters and meters: their value only grows (until a
    /// reset or rollover), and what they counted is the difference between
    /// two readings.
    pub fn is_cumulative(self) -> bool {
        matches!(
            self,
            Role::CounterTotal
                | Role::CounterGood
                | Role::CounterReject
                | Role::EnergyKwh
                | Role::WaterFeedM3
                | Role::WaterPermeateM3
                | Role::WaterConcentrateM3
        )
    }
}

/// Time buckets of the ISO 22400 time model that a machine state maps to.
/// `Unknown` (no data, or a stale source) is never counted as downtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// Producing: run time.
    Running,
    /// A planned stop (break, planned maintenance): not in planned busy time.
    PlannedStop,
    /// An unplanned stop (breakdown, no material …): an availability loss.
    UnplannedStop,
    /// Changing over to another product: an availability loss.
    Changeover,
    /// Outside every shift: neither planned nor downtime.
    NoShift,
    /// No data (silence, a stale or dead source): never downtime, counted
    /// apart so coverage can say how much of the time was known.
    Unknown,
}

impl Bucket {
    /// Every bucket, in the order the time model lists them.
    pub const ALL: [Bucket; 6] = [
        Bucket::Running,
        Bucket::PlannedStop,
        Bucket::UnplannedStop,
        Bucket::Changeover,
        Bucket::NoShift,
        Bucket::Unknown,
    ];
}

/// A decoded telemetry value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// A finite number (counters, meters, power, quality, process values).
    Number(f64),
    /// A machine state.
    State {
        /// The time-model bucket its code maps to.
        bucket: Bucket,
        /// The state code as the machine sent it (`running`, `stopped` …).
        code: Arc<str>,
        /// The reason code sent with it, if any (`breakdown` …).
        reason: Option<Arc<str>>,
    },
    /// Text (the product being made).
    Text(Arc<str>),
}

impl Value {
    /// The number, for a [`Value::Number`]; `None` otherwise.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(v) => Some(*v),
            _ => None,
        }
    }
}

/// One telemetry value, decoded and mapped to the asset model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The asset it belongs to.
    pub asset: AssetKey,
    /// The signal's name as it appears in the source (last topic level).
    pub signal: Arc<str>,
    /// What the signal means to the KPI engine.
    pub role: Role,
    /// Event time: the source timestamp, milliseconds since the Unix epoch (UTC).
    pub ts_ms: i64,
    /// The value.
    pub value: Value,
    /// Arrival order, assigned by the collector; breaks ties between equal
    /// event times so that processing is deterministic.
    pub seq: u64,
    /// The event-time watermark when the collector admitted it (before it).
    /// An observation whose window closed before that (by the stream's
    /// lookahead) is late: it corrects closed windows instead.
    #[serde(default)]
    pub watermark_ms: Option<i64>,
}

/// What the collector hands to the stream: observations in arrival order and
/// the event-time watermark after them. Observations older than the
/// watermark's window by more than the correction horizon are dead-lettered
/// as `too_late`; younger late ones come through and correct closed windows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// The admitted observations, in arrival order.
    pub observations: Vec<Observation>,
    /// The event-time watermark after them, ms since the epoch (`None`
    /// until the collector has one).
    pub watermark_ms: Option<i64>,
}
