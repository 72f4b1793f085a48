//! The ingest core: decoder + admission + dead letters + metrics → batches.
//!
//! One `Ingestor` serves all sources of a process so there is one watermark.
//! It is driven by a thin loop: the batch mode reads a recording into it;
//! live, the MQTT poll loops forward [`RawMessage`]s to one ingest thread.

use crate::admission::{Admission, AdmissionConfig};
use crate::deadletter::DeadLetterFile;
use crate::decode::{Decoder, DecoderSpec, Reason};
use crate::CollectorError;
use ctower_model::{Batch, Observation, PipelineMetrics};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One MQTT message as received, before decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// Index of the source in the configuration (`sources[i]`).
    pub source: usize,
    pub topic: String,
    pub payload: Vec<u8>,
    /// Receive time, ms since the epoch (the recording's `t_ms` in replay).
    pub recv_ms: i64,
}

pub struct Ingestor {
    names: Vec<Arc<str>>,
    decoders: Vec<Decoder>,
    admission: Admission,
    dead: Option<DeadLetterFile>,
    batch: Vec<Observation>,
    batch_size: usize,
    seq: u64,
    received: u64,
    accepted: u64,
    dead_letters: BTreeMap<Reason, u64>,
}

impl Ingestor {
    /// `sources` are (name, decoding rules), indexed like [`RawMessage::source`].
    /// Without a dead-letter file, refusals are only counted.
    pub fn new(
        sources: Vec<(Arc<str>, DecoderSpec)>,
        admission: AdmissionConfig,
        dead: Option<DeadLetterFile>,
        batch_size: usize,
    ) -> Self {
        let (names, decoders) = sources
            .into_iter()
            .map(|(n, d)| (n, Decoder::new(d)))
            .unzip();
        Ingestor {
            names,
            decoders,
            admission: Admission::new(admission),
            dead,
            batch: Vec::with_capacity(batch_size),
            batch_size: batch_size.max(1),
            seq: 0,
            received: 0,
            accepted: 0,
            dead_letters: BTreeMap::new(),
        }
    }

    /// Takes one message; returns a full batch when one is ready.
    pub fn push(&mut self, msg: &RawMessage) -> Result<Option<Batch>, CollectorError> {
        self.received += 1;
        self.seq += 1;
        let Some(decoder) = self.decoders.get_mut(msg.source) else {
            // Broken invariant in the caller; keep the message anyway.
            return self
                .refuse(
                    msg,
                    Reason::UnknownTopic,
                    &format!("no source #{}", msg.source),
                )
                .map(|_| None);
        };
        let watermark = self.admission.watermark();
        let result = decoder
            .decode(&msg.topic, &msg.payload, self.seq)
            .and_then(|mut obs| {
                obs.watermark_ms = watermark;
                self.admission
                    .admit(&obs.asset.site, obs.ts_ms, msg.recv_ms)
                    .map(|_| obs)
            });
        match result {
            Ok(obs) => {
                self.accepted += 1;
                self.batch.push(obs);
                if self.batch.len() >= self.batch_size {
                    return self.flush().map(Some);
                }
                Ok(None)
            }
            Err(r) => self.refuse(msg, r.reason, &r.detail).map(|_| None),
        }
    }

    fn refuse(
        &mut self,
        msg: &RawMessage,
        reason: Reason,
        detail: &str,
    ) -> Result<(), CollectorError> {
        *self.dead_letters.entry(reason).or_default() += 1;
        tracing::debug!(topic = %msg.topic, reason = %reason, detail, "dead letter");
        if let Some(d) = self.dead.as_mut() {
            let source = self.names.get(msg.source).map_or("?", |n| n);
            d.write(
                msg.recv_ms,
                source,
                &msg.topic,
                reason,
                detail,
                &msg.payload,
            )?;
        }
        Ok(())
    }

    /// The observations so far with the current watermark (possibly empty).
    pub fn flush(&mut self) -> Result<Batch, CollectorError> {
        if let Some(d) = self.dead.as_mut() {
            d.flush()?;
        }
        Ok(Batch {
            observations: std::mem::replace(&mut self.batch, Vec::with_capacity(self.batch_size)),
            watermark_ms: self.admission.watermark(),
        })
    }

    pub fn pending(&self) -> usize {
        self.batch.len()
    }

    /// Counters for the TUI and logs (the rate is the caller's: it owns the clock).
    pub fn metrics(&self) -> PipelineMetrics {
        let watermark = self.admission.watermark();
        PipelineMetrics {
            received: self.received,
            accepted: self.accepted,
            dead_letters: self
                .dead_letters
                .iter()
                .map(|(r, n)| (r.as_str().to_string(), *n))
                .collect(),
            ingest_rate_per_s: 0.0,
            watermark_ms: watermark,
            watermark_lag_ms: match (self.admission.newest(), watermark) {
                (Some(n), Some(w)) => n - w,
                _ => 0,
            },
            windows_closed: 0,
            stale_sites: self.admission.stale_sites(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingestor(dead: Option<DeadLetterFile>) -> Ingestor {
        Ingestor::new(
            vec![("plant".into(), DecoderSpec::default_uns())],
            AdmissionConfig {
                window_ms: 60_000,
                allowed_lateness_ms: 30_000,
                idle_timeout_ms: 60_000,
                max_future_ms: 300_000,
                correction_horizon_ms: 0,
            },
            dead,
            2,
        )
    }

    fn msg(topic: &str, payload: &str) -> RawMessage {
        RawMessage {
            source: 0,
            topic: topic.into(),
            payload: payload.as_bytes().to_vec(),
            recv_ms: 1_772_427_700_000,
        }
    }

    #[test]
    fn batches_counts_and_dead_letter_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dl/dead.jsonl");
        let mut ing = ingestor(Some(DeadLetterFile::new(&path)));
        let t = "acme/s/a/l/m";
        assert!(ing
            .push(&msg(
                &format!("{t}/power_kw"),
                r#"{"ts":1772427600000,"value":1}"#
            ))
            .unwrap()
            .is_none());
        assert!(ing
            .push(&msg(&format!("{t}/power_kw"), "{oops"))
            .unwrap()
            .is_none());
        assert!(ing.push(&msg("bad", "\u{0}")).unwrap().is_none());
        let b = ing
            .push(&msg(
                &format!("{t}/power_kw"),
                r#"{"ts":1772427700000,"value":2}"#,
            ))
            .unwrap()
            .expect("a full batch of 2");
        assert_eq!(b.observations.len(), 2);
        assert_eq!(b.watermark_ms, Some(1_772_427_670_000));
        let m = ing.metrics();
        assert_eq!((m.received, m.accepted, m.dead_letter_total()), (4, 2, 2));
        assert_eq!(m.dead_letters.get("malformed_json"), Some(&1));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["reason"], "malformed_json");
        assert_eq!(lines[0]["payload"], "{oops");
        assert_eq!(lines[1]["reason"], "unknown_topic");
        assert_eq!(lines[1]["source"], "plant");
    }
}
