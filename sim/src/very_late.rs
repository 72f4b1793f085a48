//! Very late delivery: a few real messages arrive minutes after their event
//! time, far beyond the pipeline's allowed lateness, so that tests can see
//! what happens to windows that were already closed.
//!
//! Planned up front from its own random streams (one per plant), so turning
//! it on never shifts any other random choice: the rest of the recording
//! keeps its messages, values and latencies.

use crate::plant::{Plant, STREAM_VERY_LATE};
use crate::rng::Rng;
use crate::SimConfig;
use std::collections::{BTreeMap, VecDeque};

/// Very late delivery delay, ms after the event time: [min, max).
pub(crate) const VERY_LATE_MS: (i64, i64) = (120_000, 600_001);

/// Every topic publishes at least this often (the state heartbeat is every
/// 5 min), so a target picked this long before the end finds its message.
const LONGEST_SILENCE_MS: i64 = 5 * 60_000 + 1_000;

/// One planned very-late delivery: the first message of its topic with an
/// event time at or after `from_ts` is delivered `delay_ms` after that
/// event time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) site_index: usize,
    pub(crate) from_ts: i64,
    pub(crate) delay_ms: i64,
}

/// The plan: per topic, its targets by `from_ts`.
pub(crate) type Plan = BTreeMap<String, VecDeque<Target>>;

/// `per_hour` targets per plant and hour of recording, on the plant's
/// numeric and state topics, at uniform random event times.
pub(crate) fn plan(cfg: &SimConfig, plants: &[Plant], end: i64) -> Plan {
    let mut out = Plan::new();
    if cfg.very_late_per_hour == 0 {
        return out;
    }
    let t0 = cfg.start_ms;
    let count = (f64::from(cfg.very_late_per_hour) * cfg.hours).round() as usize;
    let last = (end - LONGEST_SILENCE_MS).max(t0 + 1);
    for (k, p) in plants.iter().enumerate() {
        let mut rng = Rng::derive(cfg.seed, &[STREAM_VERY_LATE, k as u64]);
        let mut topics = p.numeric_topics();
        topics.extend(p.state_topics());
        for _ in 0..count {
            let topic = topics[rng.index(topics.len())];
            let from_ts = rng.range_i64(t0, last);
            let delay_ms = rng.range_i64(VERY_LATE_MS.0, VERY_LATE_MS.1);
            out.entry(topic.to_string()).or_default().push_back(Target {
                site_index: k,
                from_ts,
                delay_ms,
            });
        }
    }
    for targets in out.values_mut() {
        targets.make_contiguous().sort_by_key(|t| t.from_ts);
    }
    out
}
