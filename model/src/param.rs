//! Remote parameter control: the values, states and views shared by the
//! engine (which decides), the command topic (which carries requests), the
//! dashboard feed (which shows them) and the plants (which obey).
//!
//! A write to a plant is a change: a named user requests it with a reason,
//! a second user approves it where the catalogue says so, the engine sends
//! it (Sparkplug NCMD/DCMD or a JSON command on the UNS command topic,
//! QoS 1), and it is *confirmed* only when the parameter's read-back
//! signal reports the new value. README, "Parameter control".

use serde::{Deserialize, Serialize};
use std::fmt;

/// A parameter's data type (catalogue key `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// A 64-bit float.
    Float,
    /// A 64-bit signed integer.
    Int,
    /// A switch.
    Bool,
}

impl ParamType {
    /// The catalogue's name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::Float => "float",
            ParamType::Int => "int",
            ParamType::Bool => "bool",
        }
    }
}

/// A parameter's value: JSON `true`/`false`, an integer or a number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A switch.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number.
    Float(f64),
}

impl ParamValue {
    /// The value as a number (`true` is 1).
    pub fn as_f64(self) -> f64 {
        match self {
            ParamValue::Bool(b) => f64::from(u8::from(b)),
            ParamValue::Int(i) => i as f64,
            ParamValue::Float(f) => f,
        }
    }

    /// The value as `ty`, when it is one: an integer is a float too, a
    /// whole float an integer, 1 and 0 a switch's on and off; any other
    /// number is never a switch (nor a switch a number): `None`.
    pub fn to_type(self, ty: ParamType) -> Option<ParamValue> {
        match (ty, self) {
            (ParamType::Bool, ParamValue::Bool(b)) => Some(ParamValue::Bool(b)),
            // 1 and 0, as typed on a command line, are a switch's on/off.
            (ParamType::Bool, ParamValue::Int(i @ (0 | 1))) => Some(ParamValue::Bool(i == 1)),
            (ParamType::Int, ParamValue::Int(i)) => Some(ParamValue::Int(i)),
            (ParamType::Int, ParamValue::Float(f))
                if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 =>
            {
                Some(ParamValue::Int(f as i64))
            }
            (ParamType::Float, ParamValue::Int(i)) => Some(ParamValue::Float(i as f64)),
            (ParamType::Float, ParamValue::Float(f)) if f.is_finite() => Some(ParamValue::Float(f)),
            _ => None,
        }
    }

    /// Reads `text` as a value of `ty` (`true`/`false`/`on`/`off`/`1`/`0`
    /// for a switch).
    pub fn parse(text: &str, ty: ParamType) -> Option<ParamValue> {
        let t = text.trim();
        match ty {
            ParamType::Bool => match t.to_ascii_lowercase().as_str() {
                "true" | "on" | "1" => Some(ParamValue::Bool(true)),
                "false" | "off" | "0" => Some(ParamValue::Bool(false)),
                _ => None,
            },
            ParamType::Int => t.parse::<i64>().ok().map(ParamValue::Int),
            ParamType::Float => t
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(ParamValue::Float),
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
        }
    }
}

/// Where a write request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamState {
    /// Requested; waits for a second person's approval (or rejection)
    /// until its approval deadline.
    Requested,
    /// Approved (or needing no approval); about to be sent.
    Approved,
    /// Published to the plant at QoS 1; waits for the read-back until its
    /// confirmation deadline.
    Sent,
    /// The read-back signal reported the new value (within the tolerance)
    /// in time. Final.
    Confirmed,
    /// Sent, but the read-back did not report the new value in time (or
    /// the command could not be sent): an alarm is raised. Final.
    Unconfirmed,
    /// A second person rejected it. Final; nothing was sent.
    Rejected,
    /// Nobody approved it in time (or the engine restarted before).
    /// Final; nothing was sent.
    Expired,
}

impl ParamState {
    /// The serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamState::Requested => "requested",
            ParamState::Approved => "approved",
            ParamState::Sent => "sent",
            ParamState::Confirmed => "confirmed",
            ParamState::Unconfirmed => "unconfirmed",
            ParamState::Rejected => "rejected",
            ParamState::Expired => "expired",
        }
    }

    /// Whether nothing more happens to the request.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ParamState::Confirmed
                | ParamState::Unconfirmed
                | ParamState::Rejected
                | ParamState::Expired
        )
    }
}

impl std::str::FromStr for ParamState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "requested" => ParamState::Requested,
            "approved" => ParamState::Approved,
            "sent" => ParamState::Sent,
            "confirmed" => ParamState::Confirmed,
            "unconfirmed" => ParamState::Unconfirmed,
            "rejected" => ParamState::Rejected,
            "expired" => ParamState::Expired,
            _ => return Err(format!("`{s}` is not a parameter request state")),
        })
    }
}

/// One write request as the dashboard, the CLI and the replies show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamRequestView {
    /// The engine's id of the request (`P` and a number).
    pub id: String,
    /// The asset, `site/area/line/asset`.
    pub asset: String,
    /// The catalogue's parameter name.
    pub param: String,
    /// Its unit.
    #[serde(default)]
    pub unit: String,
    /// The read-back value when it was requested (`None`: none known).
    #[serde(default)]
    pub old: Option<ParamValue>,
    /// The value asked for.
    pub new: ParamValue,
    /// Where it stands.
    pub state: ParamState,
    /// Who asked.
    pub requested_by: String,
    /// Why.
    pub reason: String,
    /// Who approved or rejected it.
    #[serde(default)]
    pub decided_by: Option<String>,
    /// Whether a second person must approve it.
    pub two_person: bool,
    /// When it was asked (UTC ms).
    pub requested_ms: i64,
    /// Its last change (UTC ms).
    pub updated_ms: i64,
    /// The deadline of the current state: approval (requested), read-back
    /// (sent).
    #[serde(default)]
    pub deadline_ms: Option<i64>,
    /// The latest read-back value seen since it was sent.
    #[serde(default)]
    pub readback: Option<ParamValue>,
    /// What happened last, in words (the topic it was sent on, why it was
    /// rejected or is unconfirmed).
    #[serde(default)]
    pub note: String,
}

/// One writable parameter of one asset, with its current read-back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamEntryView {
    /// The asset, `site/area/line/asset`.
    pub asset: String,
    /// The parameter.
    pub param: String,
    /// Its unit.
    #[serde(default)]
    pub unit: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// Least value (numbers).
    #[serde(default)]
    pub min: Option<f64>,
    /// Greatest value (numbers).
    #[serde(default)]
    pub max: Option<f64>,
    /// Largest change in one request (numbers).
    #[serde(default)]
    pub max_step: Option<f64>,
    /// Whether a second person must approve a write.
    pub two_person: bool,
    /// The roles that may request, and approve.
    #[serde(default)]
    pub request_roles: Vec<String>,
    /// The roles that may approve.
    #[serde(default)]
    pub approve_roles: Vec<String>,
    /// The read-back signal's latest value.
    #[serde(default)]
    pub value: Option<ParamValue>,
    /// When the engine last saw it (UTC ms, engine clock).
    #[serde(default)]
    pub value_ms: Option<i64>,
    /// The request in flight on it, if any.
    #[serde(default)]
    pub in_flight: Option<String>,
}

/// The catalogue as the engine sees it now (`<prefix>/board/params`): every
/// writable parameter of every asset that has reported its read-back, and
/// whether writes are possible at all.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ParamBoard {
    /// The engine refuses every write (`control.read_only`).
    pub read_only: bool,
    /// The parameters, by asset then name.
    pub entries: Vec<ParamEntryView>,
}

/// A write for a plant, as the engine hands it to the source it goes
/// through (the collector encodes it: Sparkplug DCMD/NCMD from the
/// metric's birth, or JSON on the UNS command topic).
#[derive(Debug, Clone, PartialEq)]
pub struct ParamWrite {
    /// The request's id (in the JSON command; the audit trail's key).
    pub request: String,
    /// The source (by name) the command goes through.
    pub source: String,
    /// The asset, `site/area/line/asset`.
    pub asset: String,
    /// The parameter.
    pub param: String,
    /// The signal whose birth names the Sparkplug metric (the read-back).
    pub signal: String,
    /// The value.
    pub value: ParamValue,
    /// Who asked, and who approved (in the JSON command).
    pub user: String,
    /// When (UTC ms).
    pub ts_ms: i64,
    /// After this (UTC ms, the engine's clock) the write is not to be
    /// published any more: its read-back deadline has passed, the request
    /// is unconfirmed, and a late command would surprise everyone.
    pub expires_ms: i64,
}

/// The JSON command on the UNS command topic
/// (`<command prefix>/<site>/<area>/<line>/<asset>/<param>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnsCommand {
    /// The request's id (a plant may answer or log it).
    pub id: String,
    /// The parameter.
    pub param: String,
    /// The new value.
    pub value: ParamValue,
    /// When it was sent (UTC ms).
    pub ts: i64,
    /// Who asked (and who approved, `alice+bob`).
    pub user: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_take_their_type_or_are_refused() {
        assert_eq!(
            ParamValue::Int(75).to_type(ParamType::Float),
            Some(ParamValue::Float(75.0))
        );
        assert_eq!(
            ParamValue::Float(3.0).to_type(ParamType::Int),
            Some(ParamValue::Int(3))
        );
        assert_eq!(ParamValue::Float(3.5).to_type(ParamType::Int), None);
        assert_eq!(
            ParamValue::Int(1).to_type(ParamType::Bool),
            Some(ParamValue::Bool(true))
        );
        assert_eq!(ParamValue::Int(2).to_type(ParamType::Bool), None);
        assert_eq!(ParamValue::Float(1.0).to_type(ParamType::Bool), None);
        assert_eq!(ParamValue::Bool(true).to_type(ParamType::Float), None);
        assert_eq!(
            ParamValue::parse("on", ParamType::Bool),
            Some(ParamValue::Bool(true))
        );
        assert_eq!(ParamValue::parse("NaN", ParamType::Float), None);
        let v: ParamValue = serde_json::from_str("75").unwrap();
        assert_eq!(v, ParamValue::Int(75));
        let v: ParamValue = serde_json::from_str("75.5").unwrap();
        assert_eq!(v, ParamValue::Float(75.5));
        let v: ParamValue = serde_json::from_str("true").unwrap();
        assert_eq!(v, ParamValue::Bool(true));
        assert!(serde_json::from_str::<ParamValue>("\"75\"").is_err());
    }

    #[test]
    fn states_round_trip() {
        for s in [
            ParamState::Requested,
            ParamState::Approved,
            ParamState::Sent,
            ParamState::Confirmed,
            ParamState::Unconfirmed,
            ParamState::Rejected,
            ParamState::Expired,
        ] {
            assert_eq!(s.as_str().parse::<ParamState>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }
}
