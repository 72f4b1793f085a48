//! The pure decisions of a source loop (as rumqtt keeps its protocol
//! state apart from its event loop): what each event counts, the back-off
//! after a failure with its jitter, the status to report and how a payload
//! is cut. No I/O; the loop ([`super`]) gives it times and events.

use super::{SessionLost, SourceStats, SourceStatus, HEALTHY_AFTER};
use crate::deadletter::PAYLOAD_PREFIX_BYTES;
use crate::ingest::RawMessage;
use ctower_model::backoff::{jitter_seed, Backoff as SharedBackoff};
use std::time::Duration;

/// Reconnect back-off: 500 ms doubling to 30 s; with jitter, each delay
/// is drawn uniformly between half and all of that.
pub(crate) struct Backoff;

impl Backoff {
    pub(crate) const FIRST: Duration = Duration::from_millis(500);
    pub(crate) const MAX: Duration = Duration::from_secs(30);

    /// Without jitter (the replay publisher and the recorder: one client each).
    #[allow(clippy::new_ret_no_self)]
    pub(crate) fn new() -> SharedBackoff {
        SharedBackoff::new(Self::FIRST, Self::MAX)
    }

    /// With jitter drawn from `seed`: the same seed gives the same delays.
    pub(crate) fn jittered(seed: u64) -> SharedBackoff {
        SharedBackoff::jittered(Self::FIRST, Self::MAX, seed)
    }
}

/// The decisions of a source loop, without I/O (the loop is the thin shell
/// around it): what each event counts, the back-off after a failure, the
/// status to report and how a payload is cut.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) index: usize,
    pub(crate) max_payload_bytes: usize,
    /// Whether CONNACK is followed by a SUBSCRIBE (the source has filters).
    pub(crate) subscribes: bool,
    pub(crate) stats: SourceStats,
    pub(crate) backoff: SharedBackoff,
    /// Failed attempts since the last healthy connection.
    pub(crate) attempt: u32,
    /// When the current connection was acknowledged.
    pub(crate) connected_at: Option<tokio::time::Instant>,
    /// When the last connection failed (wall clock ms), until the next.
    pub(crate) lost_at_ms: Option<i64>,
}

impl Session {
    pub(crate) fn new(index: usize, max_payload_bytes: usize, subscribes: bool) -> Self {
        Session {
            index,
            max_payload_bytes,
            subscribes,
            stats: SourceStats::default(),
            backoff: Backoff::jittered(jitter_seed(index)),
            attempt: 0,
            connected_at: None,
            lost_at_ms: None,
        }
    }

    /// A CONNACK at `now` (`now_ms` on the wall clock): the status to
    /// report (`Connected` when a SUBSCRIBE must follow, else `Subscribed`),
    /// and, for a reconnection without the session (`session_present = 0`:
    /// the broker lost it), the time in which messages may be missing.
    pub(crate) fn connected(
        &mut self,
        now: tokio::time::Instant,
        now_ms: i64,
        session_present: bool,
    ) -> (SourceStatus, Option<SessionLost>) {
        self.stats.connections += 1;
        if self.stats.connections > 1 {
            self.stats.reconnects += 1;
        }
        let lost = match (self.lost_at_ms.take(), session_present) {
            (Some(from_ms), false) => {
                self.stats.sessions_lost += 1;
                Some(SessionLost {
                    from_ms,
                    to_ms: now_ms,
                })
            }
            _ => None,
        };
        // Not a reset of the back-off yet: only a connection that stays up
        // proves the failure is gone.
        self.connected_at = Some(now);
        let connection = self.stats.connections;
        let status = if self.subscribes {
            SourceStatus::Connected { connection }
        } else {
            SourceStatus::Subscribed {
                connection,
                refused: Vec::new(),
            }
        };
        (status, lost)
    }

    /// A connection failure at `now`: the delay before the next attempt
    /// and the status to report.
    pub(crate) fn failed(
        &mut self,
        now: tokio::time::Instant,
        now_ms: i64,
        error: String,
    ) -> (Duration, SourceStatus) {
        // The gap starts at the first failure after a connection.
        if self.connected_at.is_some() {
            self.lost_at_ms = Some(now_ms);
        }
        if self
            .connected_at
            .take()
            .is_some_and(|t| now.saturating_duration_since(t) >= HEALTHY_AFTER)
        {
            self.attempt = 0;
            self.backoff.reset();
        }
        self.attempt = self.attempt.saturating_add(1);
        self.stats.connection_errors += 1;
        let delay = self.backoff.next_delay();
        let status = SourceStatus::Disconnected {
            attempt: self.attempt,
            error,
            retry_in_ms: delay.as_millis() as u64,
        };
        (delay, status)
    }

    /// A PUBLISH received at `recv_ms`, as the message for the pipeline:
    /// a payload over `max_payload_bytes` is cut to its first
    /// [`PAYLOAD_PREFIX_BYTES`] with its real size (module docs).
    pub(crate) fn message(&mut self, topic: String, payload: &[u8], recv_ms: i64) -> RawMessage {
        self.stats.received += 1;
        let size = payload.len();
        let (payload, truncated_from) = if size > self.max_payload_bytes {
            self.stats.oversized += 1;
            (
                payload[..PAYLOAD_PREFIX_BYTES.min(size)].to_vec(),
                Some(size),
            )
        } else {
            (payload.to_vec(), None)
        };
        RawMessage {
            source: self.index,
            topic,
            payload,
            recv_ms,
            truncated_from,
        }
    }
}
