//! Publish a recording to a broker ([`publish_recording`]) and record live
//! traffic into one ([`record`]). The file format is
//! [`ctower_model::replay`] (gzip JSON Lines, one record per message).
//!
//! ## Publishing
//!
//! A reader thread decodes the file (blocking I/O stays off the async
//! executor) into a bounded channel of [`READ_AHEAD`] records; when it is
//! full the reader waits. The publisher paces records by their recorded
//! receive time `t_ms`: with [`Speed::Factor`]`(f)` record k goes out at
//! `start + (t_k − t_0) / f`; with [`Speed::Max`] as fast as the broker
//! takes them: `AsyncClient::publish` waits for room in rumqttc's bounded
//! request channel ([`REQUEST_CHANNEL_CAPACITY`](crate::mqtt::REQUEST_CHANNEL_CAPACITY)), which empties as the
//! event loop (its own task) writes packets within the in-flight window
//! ([`MAX_INFLIGHT`](crate::mqtt::MAX_INFLIGHT) unacknowledged QoS 1
//! publishes). Without looping, [`publish_recording`] returns only when the
//! broker has acknowledged every QoS 1/2 publish (PUBACK/PUBCOMP counted
//! against publishes), so "0 messages lost" is checkable end to end.
//!
//! If the connection drops, the event loop reconnects with the sources'
//! back-off (500 ms doubling to 30 s) and sends again every publish that was
//! not acknowledged, also when the broker lost the session (rumqttc alone
//! would drop them then): delivery is at least once.
//!
//! ## Looping and time shifts
//!
//! With `loop_forever`, the recording starts again after its last record.
//! Pass k ≥ 1 shifts every event timestamp forward by k × span, where span =
//! (last `t_ms` − first `t_ms`) rounded up to a whole minute, plus one
//! minute: event time keeps increasing from pass to pass, and minute-aligned
//! windows stay aligned, so every pass yields the same KPIs. The shift is
//! applied to `t_ms` (pacing) and to the payload's `ts` field by
//! [`shift_payload_ts`]; payloads that are not JSON objects with a numeric
//! or RFC 3339 `ts` (Sparkplug protobuf, malformed JSON) go out unchanged.
//! With `shift_to_now`, pass 0 is shifted too, by (now − first `t_ms`)
//! rounded down to a whole minute, so event times look live; passes then
//! follow on from there. Pacing uses the shifted times, so at speed 1 the
//! event time stays close to the wall clock across passes.
//!
//! ## Recording
//!
//! [`record`] subscribes and writes each message with its receive time. A
//! writer thread owns the file; the receive loop hands it records over a
//! bounded channel of [`WRITE_QUEUE`] records and waits when it is full
//! (back-pressure on the MQTT connection, as for live sources).

mod publish;
mod read;
mod record;
mod shift;

pub use publish::publish_recording;
pub use record::record;
pub use shift::{loop_span_ms, shift_payload_ts, shift_to_now_ms};

use crate::config::Credentials;
use crate::CollectorError;
use ctower_model::Clock;
use std::fmt;
use std::str::FromStr;

/// Records decoded ahead of the publisher; when the queue is full the
/// reader thread waits (`blocking_send`) until the publisher catches up.
pub const READ_AHEAD: usize = 1024;
/// Records waiting for the recording's writer thread; when the queue is
/// full the receive loop waits, which stops reading from the broker
/// (back-pressure; the broker queues for us).
pub const WRITE_QUEUE: usize = 4096;
/// [`Progress`] is reported every this many publishes, and at the end.
pub const PROGRESS_EVERY: u64 = 1000;

/// Replay speed: a factor of the recorded pace, or as fast as possible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// 1 = recorded pace, 10 = ten times faster, 0.5 = half speed.
    Factor(f64),
    /// As fast as the broker accepts.
    Max,
}

/// A speed that is not a positive finite number or `max`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid replay speed `{0}`: expected a positive factor such as 1, 10 or 0.5 (an `x` suffix is allowed), or `max`")]
pub struct InvalidSpeed(pub String);

impl FromStr for Speed {
    type Err = InvalidSpeed;

    fn from_str(s: &str) -> Result<Speed, InvalidSpeed> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        let n = t.strip_suffix(['x', 'X']).unwrap_or(t);
        match n.parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 => Ok(Speed::Factor(f)),
            _ => Err(InvalidSpeed(s.to_string())),
        }
    }
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Speed::Factor(x) => write!(f, "{x}x"),
            Speed::Max => f.write_str("max"),
        }
    }
}

/// How [`publish_recording`] publishes.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Pace: a factor of the recorded pace, or as fast as the broker takes it.
    pub speed: Speed,
    /// Start again after the last record, shifting event times (module docs).
    pub loop_forever: bool,
    /// With `loop_forever`, stop after this many passes (`None`: never).
    pub max_passes: Option<u32>,
    /// MQTT client id of the publisher.
    pub client_id: String,
    /// Publish every record at this QoS instead of its recorded one.
    pub qos_override: Option<u8>,
    /// Wall clock (ms since the epoch): when set, pass 0 is shifted so the
    /// first record's event time maps to "now" (rounded down to a minute).
    pub shift_to_now: Option<Clock>,
    /// Username and password for the broker, if it requires them.
    pub credentials: Option<Credentials>,
}

impl PublishOptions {
    /// Recorded pace, one pass, recorded QoS, no shift.
    pub fn new(client_id: impl Into<String>) -> Self {
        PublishOptions {
            speed: Speed::Factor(1.0),
            loop_forever: false,
            max_passes: None,
            client_id: client_id.into(),
            qos_override: None,
            shift_to_now: None,
            credentials: None,
        }
    }
}

/// Progress of a replay, reported every [`PROGRESS_EVERY`] publishes and at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Records published so far (all passes).
    pub published: u64,
    /// Records to publish in total, once the file has been counted (a
    /// separate thread does it); `None` while counting or when looping forever.
    pub total_hint: Option<u64>,
    /// Recorded time (`t_ms`, shifted) of the last published record.
    pub event_time_ms: i64,
}

/// The outcome of [`publish_recording`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishStats {
    /// Records published (all passes).
    pub published: u64,
    /// QoS 1/2 publishes acknowledged by the broker (all of them, without looping).
    pub acknowledged: u64,
    /// Records skipped because their topic cannot be published (empty, wildcards).
    pub skipped: u64,
    /// Passes started.
    pub passes: u32,
    /// Connections to the broker after the first one.
    pub reconnects: u64,
    /// Shifted `t_ms` of the first published record (`None`: nothing published).
    pub first_event_ms: Option<i64>,
    /// Shifted `t_ms` of the last published record (`None`: nothing published).
    pub last_event_ms: Option<i64>,
}

fn thread_error(name: &str, source: std::io::Error) -> CollectorError {
    CollectorError::Thread {
        name: name.into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_parse() {
        assert_eq!("1".parse(), Ok(Speed::Factor(1.0)));
        assert_eq!("10".parse(), Ok(Speed::Factor(10.0)));
        assert_eq!("0.5".parse(), Ok(Speed::Factor(0.5)));
        assert_eq!("10x".parse(), Ok(Speed::Factor(10.0)));
        assert_eq!("max".parse(), Ok(Speed::Max));
        assert_eq!("MAX".parse(), Ok(Speed::Max));
        for bad in ["0", "-1", "fast", "", "inf", "NaN", "1e400"] {
            let e = bad.parse::<Speed>().unwrap_err();
            assert!(
                e.to_string().contains("expected a positive factor"),
                "{bad}: {e}"
            );
        }
    }
}
