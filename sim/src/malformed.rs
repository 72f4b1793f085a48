//! Bad input, added on top of the real messages (never replacing one): a
//! handful of each kind the collector must dead-letter.

use crate::calendar::{days_from_civil, DAY};
use crate::plant::{Plant, STREAM_MALFORMED};
use crate::rng::Rng;
use crate::sink::LATENCY_MS;
use crate::SimConfig;

/// Size of the oversized payload (the contract's default limit is 64 KiB).
pub(crate) const OVERSIZED_BYTES: usize = 70 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InvalidJson,
    NanString,
    CommaDecimal,
    MissingTs,
    WrongDepth,
    Oversized,
    FarFuture,
    UnknownState,
}

const KINDS: [Kind; 8] = [
    Kind::InvalidJson,
    Kind::NanString,
    Kind::CommaDecimal,
    Kind::MissingTs,
    Kind::WrongDepth,
    Kind::Oversized,
    Kind::FarFuture,
    Kind::UnknownState,
];

pub(crate) struct Bad {
    /// Event time the message belongs to (when it is injected).
    pub(crate) ts: i64,
    pub(crate) t_ms: i64,
    pub(crate) topic: String,
    pub(crate) payload: Vec<u8>,
}

/// How many messages of each kind: a handful, growing with the recording.
fn per_kind(cfg: &SimConfig) -> usize {
    ((cfg.hours * cfg.plants as f64 * 0.8).round() as usize).clamp(1, 24)
}

pub(crate) fn plan(cfg: &SimConfig, plants: &[Plant], end: i64) -> Vec<Bad> {
    let t0 = cfg.start_ms;
    let mut rng = Rng::derive(cfg.seed, &[STREAM_MALFORMED]);
    let year_2099 = days_from_civil(2099, 1, 1) * DAY;
    let mut out = Vec::new();
    for kind in KINDS {
        for j in 0..per_kind(cfg) {
            let p = &plants[rng.index(plants.len())];
            let mut ts = rng.range_i64(t0 + 1_000, end);
            if let Some(&(_, b)) = p.silent.iter().find(|&&(a, b)| (a..b).contains(&ts)) {
                ts = b;
            }
            let numeric = p.numeric_topics();
            let num_topic = numeric[rng.index(numeric.len())].to_string();
            let states = p.state_topics();
            let state_topic = states[rng.index(states.len())].to_string();
            let value = (rng.range(1.0, 500.0) * 10.0).round() / 10.0;
            let t_ms = ts + rng.range_i64(LATENCY_MS.0, LATENCY_MS.1);
            if ts >= end {
                continue;
            }
            let (topic, payload) = match kind {
                Kind::InvalidJson => {
                    let body = match j % 4 {
                        0 => format!("{{\"ts\":{ts},\"value\":"),
                        1 => format!("{{ts:{ts}, value:{value}}}"),
                        2 => format!("{{\"ts\":{ts},\"value\":{value}"),
                        _ => "<html>502 Bad Gateway</html>".to_string(),
                    };
                    (num_topic, body)
                }
                Kind::NanString => (num_topic, format!("{{\"ts\":{ts},\"value\":\"NaN\"}}")),
                Kind::CommaDecimal => (num_topic, format!("{{\"ts\":{ts},\"value\":\"12,5\"}}")),
                Kind::MissingTs => (num_topic, format!("{{\"value\":{value}}}")),
                Kind::WrongDepth => (
                    format!("{}/{}/garbage", cfg.enterprise, p.site),
                    format!("{{\"ts\":{ts},\"value\":{value}}}"),
                ),
                Kind::Oversized => {
                    let head = format!("{{\"ts\":{ts},\"value\":{value},\"pad\":\"");
                    let pad = OVERSIZED_BYTES.saturating_sub(head.len() + 2);
                    (num_topic, format!("{head}{}\"}}", "x".repeat(pad)))
                }
                Kind::FarFuture => {
                    let future = year_2099 + rng.range_i64(0, 364 * DAY);
                    (num_topic, format!("{{\"ts\":{future},\"value\":{value}}}"))
                }
                Kind::UnknownState => (
                    state_topic,
                    format!("{{\"ts\":{ts},\"value\":\"exploded\"}}"),
                ),
            };
            out.push(Bad {
                ts,
                t_ms,
                topic,
                payload: payload.into_bytes(),
            });
        }
    }
    out.sort_by_key(|b| b.ts);
    out
}
