//! Payload formatting and the reorder buffer that writes records in receive order.

use crate::rng::Rng;
use crate::timeline::St;
use crate::very_late;
use ctower_model::{ReplayRecord, ReplayWriter};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io::{self, Write};

/// Share of real messages delivered late (5–25 s after their event time).
pub(crate) const LATE_SHARE: f64 = 0.01;
/// Normal network latency, ms: [min, max).
pub(crate) const LATENCY_MS: (i64, i64) = (5, 81);
/// Late delivery delay, ms: [min, max).
pub(crate) const LATE_MS: (i64, i64) = (5_000, 25_001);

pub(crate) fn num(ts: i64, v: f64, decimals: usize) -> String {
    format!("{{\"ts\":{ts},\"value\":{v:.decimals$}}}")
}

pub(crate) fn int(ts: i64, v: u64) -> String {
    format!("{{\"ts\":{ts},\"value\":{v}}}")
}

/// A non-negative fixed-point value with four decimals (`x` in 1/10 000).
pub(crate) fn fixed4(ts: i64, x: i64) -> String {
    format!("{{\"ts\":{ts},\"value\":{}.{:04}}}", x / 10_000, x % 10_000)
}

/// A string value; callers pass plain identifiers (no JSON escaping needed).
pub(crate) fn text(ts: i64, s: &str) -> String {
    format!("{{\"ts\":{ts},\"value\":\"{s}\"}}")
}

pub(crate) fn state(ts: i64, st: St) -> String {
    match st.reason() {
        Some(r) => format!(
            "{{\"ts\":{ts},\"value\":\"{}\",\"reason\":\"{r}\"}}",
            st.code()
        ),
        None => text(ts, st.code()),
    }
}

struct Pending(ReplayRecord, u64);

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    // Reversed: the heap pops the earliest receive time, then the first generated.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.0.t_ms, o.1).cmp(&(self.0.t_ms, self.1))
    }
}

/// Collects generated messages and writes them sorted by receive time
/// (ties in generation order).
pub(crate) struct Sink {
    heap: BinaryHeap<Pending>,
    seq: u64,
    latency: Rng,
    very_late_plan: very_late::Plan,
    pub(crate) late: u64,
    /// (plant index, topic, event time, receive time) of each very-late message.
    pub(crate) very_late: Vec<(usize, String, i64, i64)>,
    pub(crate) written: u64,
}

impl Sink {
    pub(crate) fn new(latency: Rng, very_late_plan: very_late::Plan) -> Self {
        Sink {
            heap: BinaryHeap::new(),
            seq: 0,
            latency,
            very_late_plan,
            late: 0,
            very_late: Vec::new(),
            written: 0,
        }
    }

    /// A real message with event time `ts`, unless its site is silent then.
    pub(crate) fn emit(&mut self, silent: &[(i64, i64)], ts: i64, topic: &str, payload: String) {
        if silent.iter().any(|&(a, b)| (a..b).contains(&ts)) {
            return;
        }
        // The latency stream is drawn exactly as without very-late delivery,
        // so that turning it on changes only the chosen messages.
        let late = self.latency.chance(LATE_SHARE);
        let mut delay = if late {
            self.latency.range_i64(LATE_MS.0, LATE_MS.1)
        } else {
            self.latency.range_i64(LATENCY_MS.0, LATENCY_MS.1)
        };
        let target = self
            .very_late_plan
            .get_mut(topic)
            .filter(|q| q.front().is_some_and(|t| t.from_ts <= ts))
            .and_then(|q| q.pop_front());
        if let Some(t) = target {
            delay = t.delay_ms;
            self.very_late
                .push((t.site_index, topic.to_string(), ts, ts + delay));
        } else if late {
            self.late += 1;
        }
        self.push(ts + delay, topic.to_string(), payload.into_bytes());
    }

    /// A message with a given receive time (used for malformed input).
    pub(crate) fn push(&mut self, t_ms: i64, topic: String, payload: Vec<u8>) {
        let rec = ReplayRecord {
            t_ms,
            topic,
            qos: 1,
            retain: false,
            payload,
        };
        self.heap.push(Pending(rec, self.seq));
        self.seq += 1;
    }

    /// Writes every pending record received before `t`.
    pub(crate) fn flush_before<W: Write>(
        &mut self,
        t: i64,
        out: &mut ReplayWriter<W>,
    ) -> io::Result<()> {
        while self.heap.peek().is_some_and(|p| p.0.t_ms < t) {
            if let Some(p) = self.heap.pop() {
                out.write(&p.0)?;
                self.written += 1;
            }
        }
        Ok(())
    }

    pub(crate) fn flush_all<W: Write>(&mut self, out: &mut ReplayWriter<W>) -> io::Result<()> {
        self.flush_before(i64::MAX, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Reason;

    #[test]
    fn payloads_are_valid_json_shapes() {
        assert_eq!(num(5, 1.23456, 3), r#"{"ts":5,"value":1.235}"#);
        assert_eq!(int(5, 7), r#"{"ts":5,"value":7}"#);
        assert_eq!(fixed4(5, 123_456), r#"{"ts":5,"value":12.3456}"#);
        assert_eq!(fixed4(5, 42), r#"{"ts":5,"value":0.0042}"#);
        assert_eq!(
            state(5, St::Stopped(Reason::Jam)),
            r#"{"ts":5,"value":"stopped","reason":"jam"}"#
        );
        assert_eq!(state(5, St::NoShift), r#"{"ts":5,"value":"no_shift"}"#);
    }

    #[test]
    fn flush_is_sorted_with_stable_ties() {
        let mut s = Sink::new(Rng::derive(1, &[]), very_late::Plan::new());
        for (t, name) in [(30, "c"), (10, "a"), (30, "d"), (10, "b"), (20, "x")] {
            s.push(t, name.into(), Vec::new());
        }
        let mut w = ReplayWriter::new(Vec::new()).unwrap();
        s.flush_before(30, &mut w).unwrap();
        assert_eq!(s.written, 3);
        s.flush_all(&mut w).unwrap();
        let bytes = w.finish().unwrap();
        let topics: Vec<String> = ctower_model::ReplayReader::new(&bytes[..])
            .unwrap()
            .map(|r| r.unwrap().topic)
            .collect();
        assert_eq!(topics, ["a", "b", "x", "c", "d"]);
    }
}
