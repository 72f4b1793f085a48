//! The ingest core: decoder + admission + dead letters + metrics → batches.
//!
//! One `Ingestor` serves all sources of a process so there is one watermark.
//! It is driven by a thin loop: live, the MQTT poll loops forward
//! [`RawMessage`]s to one ingest thread ([`Ingestor::push`]: decode, then
//! admit). The batch mode splits the two: [`decode_chunk`] runs on several
//! threads over [`RecordChunk`]s of the recording, and one thread admits
//! the decoded chunks in file order ([`Ingestor::admit_chunk`]), so the
//! arrival numbers, the watermark and every admission decision are those of
//! pushing the messages one by one.

use crate::admission::{Admission, AdmissionRules};
use crate::deadletter::{DeadLetterFile, DeadLetterHealth};
use crate::decode::{DecodeRules, Decoder, Reason, Rejection};
use crate::limits::{LimitRules, Limits};
use crate::sparkplug::{SpOutput, SparkplugHost, SparkplugRules, WriteDirectory};
use crate::CollectorError;
use ctower_model::replay::ReplayError;
use ctower_model::{Batch, Observation, PipelineMetrics, RecordChunk, RecordPos};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One MQTT message as received, before decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// Index of the source in the configuration (`sources[i]`).
    pub source: usize,
    /// The MQTT topic.
    pub topic: String,
    /// The payload (its first bytes only when `truncated_from` is set).
    pub payload: Vec<u8>,
    /// Receive time, ms since the epoch (the recording's `t_ms` in replay).
    pub recv_ms: i64,
    /// `Some(size)`: the payload was larger than its source's
    /// `max_payload_bytes` and `payload` is only its first bytes (the live
    /// source cuts it so nothing large waits in the channel); it is refused
    /// as `oversized` with its real size.
    pub truncated_from: Option<usize>,
}

/// The decoding half of the ingest core: one [`Decoder`] per source.
///
/// Decoding depends on nothing but the message (the caches only share
/// names), so any number of copies ([`Ingestor::decoders`]) may decode on
/// other threads, as the batch mode does; the results must then be
/// admitted in arrival order ([`Ingestor::admit_chunk`]).
///
/// A Sparkplug source's messages are not decoded here: their meaning
/// depends on the births before them, so the ingestor's one host per
/// source takes them in arrival order ([`Decoders::is_sparkplug`]).
#[derive(Debug)]
pub struct Decoders {
    decoders: Vec<Decoder>,
    sparkplug: Vec<bool>,
}

impl Decoders {
    /// One decoder per source, in configuration order.
    pub fn new(rules: impl IntoIterator<Item = DecodeRules>) -> Self {
        let decoders: Vec<Decoder> = rules.into_iter().map(Decoder::new).collect();
        Decoders {
            sparkplug: vec![false; decoders.len()],
            decoders,
        }
    }

    /// Whether source `source` speaks Sparkplug B.
    pub fn is_sparkplug(&self, source: usize) -> bool {
        self.sparkplug.get(source).copied().unwrap_or(false)
    }

    /// Decodes one message of source `source`; the observation's `seq` is
    /// left at 0 (admission numbers it).
    pub fn decode(
        &mut self,
        source: usize,
        topic: &str,
        payload: &[u8],
    ) -> Result<Observation, Rejection> {
        match self.decoders.get_mut(source) {
            Some(d) => d.decode(topic, payload, 0),
            // Broken invariant in the caller; keep the message anyway.
            None => Err(Rejection {
                reason: Reason::UnknownTopic,
                detail: format!("no source #{source}"),
            }),
        }
    }
}

/// One record of a [`RecordChunk`], decoded, waiting for admission.
#[derive(Debug)]
struct DecodedRecord {
    pos: RecordPos,
    source: usize,
    recv_ms: i64,
    /// `None`: a Sparkplug message, for the source's host at admission.
    decoded: Option<Result<Observation, Rejection>>,
}

/// A [`RecordChunk`] decoded by [`decode_chunk`], for [`Ingestor::admit_chunk`].
#[derive(Debug)]
pub struct DecodedChunk {
    /// Kept for the dead letters: their topic and payload are read again.
    chunk: RecordChunk,
    records: Vec<DecodedRecord>,
    /// The chunk's unreadable line, after the records before it.
    error: Option<ReplayError>,
}

impl DecodedChunk {
    /// Records decoded (accepted or not by the decoder).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Parses and decodes the records of a chunk (no admission: that needs the
/// arrival order). `source_of` picks the source that decodes a topic.
pub fn decode_chunk(
    decoders: &mut Decoders,
    chunk: RecordChunk,
    source_of: impl Fn(&str) -> usize,
) -> DecodedChunk {
    let mut records = Vec::with_capacity(chunk.len_bytes() / 64 + 1);
    let mut error = None;
    for r in chunk.records() {
        match r {
            Ok((pos, rec)) => {
                let source = source_of(&rec.topic);
                records.push(DecodedRecord {
                    pos,
                    source,
                    recv_ms: rec.t_ms,
                    decoded: (!decoders.is_sparkplug(source))
                        .then(|| decoders.decode(source, &rec.topic, &rec.payload)),
                });
            }
            Err(e) => error = Some(e),
        }
    }
    DecodedChunk {
        chunk,
        records,
        error,
    }
}

/// A publish for a live source to make on its broker: a Sparkplug NCMD
/// rebirth request (QoS 0, from the ingestor) or a parameter write (QoS 1,
/// [`crate::write::resolve`]). The source loop publishes it without
/// waiting ([`crate::mqtt::run_source`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The source (index) whose broker it goes to.
    pub source: usize,
    /// The topic (`spBv1.0/{group}/NCMD/{node}` for a rebirth request).
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// The MQTT QoS: 0 (a rebirth request: dropped when it cannot be
    /// queued, the host asks again) or 1 (a write: kept and retried).
    pub qos: u8,
    /// Not published after this (receive-time clock, ms): a parameter
    /// write past its read-back deadline is dropped, never sent late.
    pub expires_ms: Option<i64>,
}

/// Rebirth requests kept for the live loop; more (between two of its
/// turns) are dropped and counted: each host asks a node at most once per
/// `rebirth_interval_secs` anyway.
const MAX_PENDING_REBIRTHS: usize = 1024;

/// The ingest core, without I/O: decoding, admission (watermark,
/// lateness), limits, dead letters and metrics, turning raw messages into
/// the stream's [`Batch`](ctower_model::Batch)es.
pub struct Ingestor {
    names: Vec<Arc<str>>,
    decoders: Decoders,
    /// The host of each Sparkplug source (`None` for a JSON source).
    hosts: Vec<Option<SparkplugHost>>,
    /// Rebirth requests for the live sources to publish.
    rebirths: Vec<Outgoing>,
    /// The write directory and the writable signals, given to every
    /// Sparkplug host (live mode).
    writes: Option<(WriteDirectory, Arc<BTreeSet<Arc<str>>>)>,
    rebirths_dropped: u64,
    /// Refusals counted but not written (messages computed again after a
    /// restart: their dead letters were written the first time).
    mute_dead_letters: bool,
    admission: Admission,
    limits: Limits,
    dead: Option<DeadLetterFile>,
    batch: Vec<Observation>,
    batch_size: usize,
    seq: u64,
    received: u64,
    accepted: u64,
    dead_letters: BTreeMap<Reason, u64>,
    /// Per source (by index): messages, admitted observations, newest
    /// admitted event time, last receive time.
    per_source: Vec<ctower_model::SourceHealth>,
}

impl Ingestor {
    /// `sources` are (name, decoding rules), indexed like [`RawMessage::source`].
    /// Without a dead-letter file, refusals are only counted.
    pub fn new(
        sources: Vec<(Arc<str>, DecodeRules)>,
        admission: AdmissionRules,
        dead: Option<DeadLetterFile>,
        batch_size: usize,
    ) -> Self {
        let (names, rules): (Vec<_>, Vec<_>) = sources.into_iter().unzip();
        Ingestor {
            hosts: (0..names.len()).map(|_| None).collect(),
            names,
            decoders: Decoders::new(rules),
            rebirths: Vec::new(),
            rebirths_dropped: 0,
            writes: None,
            mute_dead_letters: false,
            admission: Admission::new(admission),
            limits: Limits::new(LimitRules::default()),
            dead,
            batch: Vec::with_capacity(batch_size),
            batch_size: batch_size.max(1),
            seq: 0,
            received: 0,
            accepted: 0,
            dead_letters: BTreeMap::new(),
            per_source: Vec::new(),
        }
    }

    /// Caps of assets and signals per source, counter rates and the
    /// retirement of silent assets ([`crate::limits`]).
    pub fn with_limits(mut self, limits: LimitRules) -> Self {
        self.limits = Limits::new(limits);
        self
    }

    /// Source `source` speaks Sparkplug B, with these rules.
    pub fn with_sparkplug(mut self, source: usize, rules: SparkplugRules) -> Self {
        if let (Some(h), Some(d)) = (
            self.hosts.get_mut(source),
            self.decoders.decoders.get(source),
        ) {
            let mut host = SparkplugHost::new(rules, d.rules().clone());
            if let Some((dir, signals)) = &self.writes {
                host.set_write_directory(dir.clone(), source, signals.clone());
            }
            *h = Some(host);
            self.decoders.sparkplug[source] = true;
        }
        self
    }

    /// The Sparkplug hosts (those of [`Ingestor::with_sparkplug`], before
    /// or after this call) record in `dir` the metric behind each of
    /// `signals` (mapped names: the read-back signals of the writable
    /// parameters) from the births, and mark them dead with their node or
    /// device ([`crate::sparkplug::directory`]). Live mode only: a replay
    /// addresses no plant.
    pub fn with_write_directory(
        mut self,
        dir: WriteDirectory,
        signals: BTreeSet<Arc<str>>,
    ) -> Self {
        let signals = Arc::new(signals);
        for (source, host) in self.hosts.iter_mut().enumerate() {
            if let Some(h) = host {
                h.set_write_directory(dir.clone(), source, signals.clone());
            }
        }
        self.writes = Some((dir, signals));
        self
    }

    /// Whether refusals are only counted, not written to the dead-letter
    /// file (while the raw journal is computed again after a restart).
    pub fn mute_dead_letters(&mut self, mute: bool) {
        self.mute_dead_letters = mute;
    }

    /// The rebirth requests (QoS 0 publishes) made since the last call,
    /// oldest first, for the live sources to publish (a replay drops them).
    pub fn take_rebirths(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.rebirths)
    }

    /// Time passes without a message (`now_ms`, receive-time clock): the
    /// Sparkplug hosts' reorder waits expire and held values are restated.
    /// Returns a full batch when one is ready.
    pub fn tick(&mut self, now_ms: i64) -> Result<Option<Batch>, CollectorError> {
        self.tick_hosts(now_ms)?;
        self.full_batch()
    }

    /// Ticks every Sparkplug host (each scans at most once a second of
    /// receive time): with every message of any source, so that a batch
    /// run restates held values as the live loop's ticks do.
    fn tick_hosts(&mut self, now_ms: i64) -> Result<(), CollectorError> {
        if !self.decoders.sparkplug.contains(&true) {
            return Ok(());
        }
        for source in 0..self.hosts.len() {
            let outs = match self.hosts[source].as_mut() {
                Some(h) => h.tick(now_ms),
                None => continue,
            };
            self.sparkplug_outputs(source, ("", &[], 0), now_ms, outs)?;
        }
        Ok(())
    }

    /// The dead-letter file's state (`None` without one).
    pub fn dead_letter_health(&self) -> Option<DeadLetterHealth> {
        self.dead.as_ref().map(DeadLetterFile::health)
    }

    /// Fresh decoders of this ingestor's sources, for another thread.
    pub fn decoders(&self) -> Decoders {
        let mut d = Decoders::new(self.decoders.decoders.iter().map(|d| d.rules().clone()));
        d.sparkplug.clone_from(&self.decoders.sparkplug);
        d
    }

    /// Takes one message; returns a full batch when one is ready.
    pub fn push(&mut self, msg: &RawMessage) -> Result<Option<Batch>, CollectorError> {
        self.tick_hosts(msg.recv_ms)?;
        if self.decoders.is_sparkplug(msg.source) {
            return self.push_sparkplug(
                msg.source,
                &msg.topic,
                &msg.payload,
                msg.recv_ms,
                msg.truncated_from,
            );
        }
        self.received += 1;
        self.count_message(msg.source, msg.recv_ms);
        let decoded = match (msg.truncated_from, self.decoders.decoders.get(msg.source)) {
            // Its source kept only a prefix of a payload over the limit.
            (Some(size), Some(d)) => Err(d.oversized(size)),
            _ => self.decoders.decode(msg.source, &msg.topic, &msg.payload),
        };
        self.admit(msg.source, msg.recv_ms, msg.truncated_from, decoded, || {
            Ok((Cow::Borrowed(&msg.topic), Cow::Borrowed(&msg.payload)))
        })?;
        self.full_batch()
    }

    /// Admits the records of a decoded chunk in their order, exactly as
    /// [`Ingestor::push`] would have taken them one by one; every full batch
    /// goes to `full`. A chunk that ended on an unreadable line gives its
    /// error once the records before it are admitted.
    pub fn admit_chunk(
        &mut self,
        chunk: DecodedChunk,
        full: &mut Vec<Batch>,
    ) -> Result<(), CollectorError> {
        let DecodedChunk {
            chunk,
            records,
            error,
        } = chunk;
        for r in records {
            self.tick_hosts(r.recv_ms)?;
            let b = match r.decoded {
                Some(decoded) => {
                    self.received += 1;
                    self.count_message(r.source, r.recv_ms);
                    let raw = || {
                        let rec = chunk.record_at(r.pos)?;
                        Ok((rec.topic, rec.payload))
                    };
                    self.admit(r.source, r.recv_ms, None, decoded, raw)?;
                    self.full_batch()?
                }
                None => {
                    let rec = chunk.record_at(r.pos)?;
                    self.push_sparkplug(r.source, &rec.topic, &rec.payload, r.recv_ms, None)?
                }
            };
            if let Some(b) = b {
                full.push(b);
            }
        }
        match error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// The batch, when it is full.
    fn full_batch(&mut self) -> Result<Option<Batch>, CollectorError> {
        if self.batch.len() >= self.batch_size {
            return self.flush().map(Some);
        }
        Ok(None)
    }

    /// Numbers one decoded message, admits it and batches it, or counts and
    /// dead-letters it; `raw` gives its topic and payload for the dead letter
    /// (a prefix if `truncated_from` gives the payload's size). A full batch
    /// is the caller's to take ([`Ingestor::full_batch`]): a Sparkplug
    /// message may fill one several times over, and is handed out whole.
    fn admit<'r>(
        &mut self,
        source: usize,
        recv_ms: i64,
        truncated_from: Option<usize>,
        decoded: Result<Observation, Rejection>,
        raw: impl FnOnce() -> Result<(Cow<'r, str>, Cow<'r, [u8]>), CollectorError>,
    ) -> Result<(), CollectorError> {
        self.seq += 1;
        let watermark = self.admission.watermark();
        let result = decoded.and_then(|mut obs| {
            obs.seq = self.seq;
            obs.watermark_ms = watermark;
            // The limits first (a refused message moves no watermark), and
            // what they remember only once the message is admitted.
            let admit = self.limits.check(source, &obs)?;
            self.admission.admit(&obs.asset.site, obs.ts_ms, recv_ms)?;
            self.limits
                .commit(source, &obs, admit, self.admission.watermark());
            Ok(obs)
        });
        match result {
            Ok(obs) => {
                self.accepted += 1;
                if let Some(h) = self.per_source.get_mut(source) {
                    h.accepted += 1;
                    h.newest_event_ms =
                        Some(h.newest_event_ms.map_or(obs.ts_ms, |t| t.max(obs.ts_ms)));
                }
                self.batch.push(obs);
                Ok(())
            }
            Err(r) => {
                let (topic, payload) = raw()?;
                let size = truncated_from.unwrap_or(payload.len());
                self.refuse(source, recv_ms, &topic, &payload, size, r.reason, &r.detail)
            }
        }
    }

    /// One message of a Sparkplug source: its host decides, each of its
    /// observations is admitted, each refusal dead-lettered with the
    /// message.
    fn push_sparkplug(
        &mut self,
        source: usize,
        topic: &str,
        payload: &[u8],
        recv_ms: i64,
        truncated_from: Option<usize>,
    ) -> Result<Option<Batch>, CollectorError> {
        self.received += 1;
        self.count_message(source, recv_ms);
        let Some(host) = self.hosts.get_mut(source).and_then(Option::as_mut) else {
            return Ok(None); // is_sparkplug said so: unreachable
        };
        let outs = match truncated_from {
            Some(size) => {
                // The source kept a prefix: refused, but time still passes.
                let mut outs = host.tick(recv_ms);
                outs.push(SpOutput::Refused(Rejection {
                    reason: Reason::Oversized,
                    detail: format!(
                        "{size} bytes > max_payload_bytes {}",
                        host.decode_rules().max_payload_bytes()
                    ),
                }));
                outs
            }
            None => host.handle(topic, payload, recv_ms),
        };
        let size = truncated_from.unwrap_or(payload.len());
        self.sparkplug_outputs(source, (topic, payload, size), recv_ms, outs)?;
        self.full_batch()
    }

    /// Admits, dead-letters or queues what a Sparkplug host gave for one
    /// message (its topic, payload and size, for the dead letters) or a
    /// tick.
    fn sparkplug_outputs(
        &mut self,
        source: usize,
        (topic, payload, size): (&str, &[u8], usize),
        recv_ms: i64,
        outs: Vec<SpOutput>,
    ) -> Result<(), CollectorError> {
        for out in outs {
            match out {
                SpOutput::Observation(obs) => {
                    let raw = || Ok((Cow::Borrowed(topic), Cow::Borrowed(payload)));
                    self.admit(source, recv_ms, None, Ok(obs), raw)?;
                }
                SpOutput::Refused(r) => {
                    self.refuse(source, recv_ms, topic, payload, size, r.reason, &r.detail)?;
                }
                SpOutput::Rebirth {
                    topic,
                    payload,
                    why,
                } => self.rebirth(source, topic, payload, why),
            }
        }
        Ok(())
    }

    fn rebirth(&mut self, source: usize, topic: String, payload: Vec<u8>, why: String) {
        tracing::info!(
            source = self.names.get(source).map_or("?", |n| n),
            topic,
            why,
            "Sparkplug rebirth requested"
        );
        if self.rebirths.len() >= MAX_PENDING_REBIRTHS {
            self.rebirths_dropped += 1;
            tracing::warn!(
                dropped = self.rebirths_dropped,
                "too many rebirth requests waiting: one dropped"
            );
            return;
        }
        self.rebirths.push(Outgoing {
            source,
            topic,
            payload,
            qos: 0,
            expires_ms: None,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn refuse(
        &mut self,
        source: usize,
        recv_ms: i64,
        topic: &str,
        payload: &[u8],
        payload_bytes: usize,
        reason: Reason,
        detail: &str,
    ) -> Result<(), CollectorError> {
        *self.dead_letters.entry(reason).or_default() += 1;
        tracing::debug!(topic = %topic, reason = %reason, detail, "dead letter");
        if let Some(d) = self.dead.as_mut().filter(|_| !self.mute_dead_letters) {
            let source = self.names.get(source).map_or("?", |n| n);
            // A dead letter that cannot be written is counted, logged and
            // exposed by the file's health (`metrics().faults`); the
            // message was refused either way, and the valid ones behind it
            // must go on (a full disk used to stop ingestion here).
            let _ = d.write(
                recv_ms,
                source,
                topic,
                reason,
                detail,
                payload,
                payload_bytes,
            );
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

    /// Observations admitted but not yet handed out in a batch.
    pub fn pending(&self) -> usize {
        self.batch.len()
    }

    /// A message of `source` received at `recv_ms`. The table grows to
    /// the highest index seen (the sources of the configuration).
    fn count_message(&mut self, source: usize, recv_ms: i64) {
        if source >= self.per_source.len() && source < 4096 {
            self.per_source.resize_with(source + 1, Default::default);
        }
        if let Some(h) = self.per_source.get_mut(source) {
            h.received += 1;
            h.last_recv_ms = Some(h.last_recv_ms.map_or(recv_ms, |t| t.max(recv_ms)));
        }
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
            late_dropped: 0,
            stale_sites: self.admission.stale_sites(),
            sources: self
                .per_source
                .iter()
                .enumerate()
                .map(|(i, h)| ctower_model::SourceHealth {
                    name: self
                        .names
                        .get(i)
                        .map_or_else(String::new, |n| n.to_string()),
                    ..h.clone()
                })
                .collect(),
            faults: self
                .dead_letter_health()
                .filter(|h| h.failing)
                .map(|h| ctower_model::Fault {
                    stage: "dead_letters".into(),
                    path: h.path.display().to_string(),
                    error: h.last_error.unwrap_or_default(),
                    lost: h.failed,
                })
                .into_iter()
                .collect(),
            outboxes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingestor(dead: Option<DeadLetterFile>) -> Ingestor {
        Ingestor::new(
            vec![("plant".into(), DecodeRules::default_uns())],
            AdmissionRules {
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
            truncated_from: None,
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
        // Per source: its messages, its admitted observations, its own
        // newest event time.
        assert_eq!(m.sources.len(), 1);
        let s = &m.sources[0];
        assert_eq!(s.name, "plant");
        assert_eq!((s.received, s.accepted), (4, 2));
        assert_eq!(s.newest_event_ms, Some(1_772_427_700_000));
        assert!(s.last_recv_ms.is_some());
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

    /// Pushing messages one by one and decoding chunks (on any number of
    /// decoders, here two taking turns) then admitting them in order give
    /// the same batches, counters and dead-letter file.
    #[test]
    fn chunks_admit_exactly_like_push() {
        use ctower_model::replay::{ReplayChunks, ReplayReader, ReplayRecord, ReplayWriter};
        let t = "acme/s/a/l/m";
        let base = 1_772_427_600_000i64;
        let mut w = ReplayWriter::new(Vec::new()).unwrap();
        for i in 0..200i64 {
            let (topic, payload) = match i % 9 {
                0 => (format!("{t}/power_kw"), "{oops".to_string()),
                // Too late once the watermark has moved on.
                1 => (
                    format!("{t}/power_kw"),
                    format!(r#"{{"ts":{},"value":1}}"#, base + i * 1000 - 200_000),
                ),
                2 => ("bad".to_string(), "x".to_string()),
                // Far ahead of its receive time.
                3 => (
                    format!("{t}/power_kw"),
                    format!(r#"{{"ts":{},"value":1}}"#, base + i * 1000 + 900_000),
                ),
                4 => (
                    format!("acme/s{}/a/l/m/state", i % 4),
                    format!(r#"{{"ts":{},"value":"running"}}"#, base + i * 1000),
                ),
                _ => (
                    format!("acme/s/a/l/m{}/count_total", i % 3),
                    format!(r#"{{"ts":{},"value":{i}}}"#, base + i * 1000),
                ),
            };
            w.write(&ReplayRecord {
                t_ms: base + i * 1000,
                topic,
                qos: 0,
                retain: false,
                payload: payload.into_bytes(),
            })
            .unwrap();
        }
        let bytes = w.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();

        let one = dir.path().join("one.jsonl");
        let mut ing = ingestor(Some(DeadLetterFile::new(&one)));
        let mut want = Vec::new();
        for rec in ReplayReader::new(&bytes[..]).unwrap() {
            let rec = rec.unwrap();
            let m = RawMessage {
                source: 0,
                topic: rec.topic,
                payload: rec.payload,
                recv_ms: rec.t_ms,
                truncated_from: None,
            };
            want.extend(ing.push(&m).unwrap());
        }
        want.push(ing.flush().unwrap());
        let want_metrics = ing.metrics();

        for chunk_bytes in [1, 300, 4096] {
            let path = dir.path().join(format!("chunks-{chunk_bytes}.jsonl"));
            let mut ing = ingestor(Some(DeadLetterFile::new(&path)));
            let mut decoders = [ing.decoders(), ing.decoders()];
            let mut got = Vec::new();
            for (i, c) in ReplayChunks::new(&bytes[..], chunk_bytes)
                .unwrap()
                .enumerate()
            {
                let d = decode_chunk(&mut decoders[i % 2], c.unwrap(), |_| 0);
                ing.admit_chunk(d, &mut got).unwrap();
            }
            got.push(ing.flush().unwrap());
            assert_eq!(got, want, "chunks of {chunk_bytes} bytes");
            assert_eq!(ing.metrics(), want_metrics);
            assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&one).unwrap());
        }
        assert!(want_metrics.dead_letters.len() >= 4, "{want_metrics:?}");
    }

    #[test]
    fn a_chunk_admits_what_precedes_its_bad_line_then_fails() {
        let text = "{\"t_ms\":1772427700000,\"topic\":\"acme/s/a/l/m/power_kw\",\"qos\":0,\"retain\":false,\"payload\":\"{\\\"ts\\\":1772427600000,\\\"value\\\":1}\"}\n\
            {\"t_ms\":\"x\"}\n\
            {\"t_ms\":1772427700000,\"topic\":\"acme/s/a/l/m/power_kw\",\"qos\":0,\"retain\":false,\"payload\":\"{\\\"ts\\\":1772427600000,\\\"value\\\":1}\"}\n";
        let mut ing = ingestor(None);
        // Line 1 is the header: this chunk starts at line 2.
        let c = RecordChunk::new(2, text.as_bytes().to_vec());
        let d = decode_chunk(&mut ing.decoders(), c, |_| 0);
        assert_eq!(d.len(), 1);
        let mut full = Vec::new();
        let e = ing.admit_chunk(d, &mut full).unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        assert_eq!(ing.metrics().accepted, 1);
    }
}

#[cfg(test)]
mod write_directory_tests {
    use super::*;
    use crate::sparkplug::wire;
    use prost::Message;

    fn birth(seq: u64, metrics: Vec<wire::Metric>) -> Vec<u8> {
        wire::Payload {
            timestamp: Some(1_772_427_600_000),
            metrics,
            seq: Some(seq),
            uuid: None,
            body: None,
        }
        .encode_to_vec()
    }

    fn metric(name: &str, alias: u64, datatype: u32, v: wire::MetricValue) -> wire::Metric {
        wire::Metric {
            name: Some(name.into()),
            alias: Some(alias),
            datatype: Some(datatype),
            value: Some(v),
            ..Default::default()
        }
    }

    /// The Sparkplug sources' births fill the directory under their own
    /// source index, whether the directory came before or after
    /// `with_sparkplug`; a JSON source records nothing.
    #[test]
    fn births_of_sparkplug_sources_fill_the_write_directory() {
        let rules = || DecodeRules::default_uns();
        let sources = vec![
            ("uns".into(), rules()),
            ("sp1".into(), rules()),
            ("sp2".into(), rules()),
        ];
        let dir = WriteDirectory::default();
        let signals: BTreeSet<Arc<str>> = [Arc::from("temp_sp")].into();
        let admission = AdmissionRules {
            window_ms: 60_000,
            allowed_lateness_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_future_ms: 300_000,
            correction_horizon_ms: 0,
        };
        let mut ing = Ingestor::new(sources, admission, None, 100)
            .with_sparkplug(1, SparkplugRules::default())
            .with_write_directory(dir.clone(), signals)
            .with_sparkplug(2, SparkplugRules::default());
        let t = 1_772_427_600_000;
        for source in [1, 2] {
            let push = |ing: &mut Ingestor, topic: &str, payload: Vec<u8>| {
                let m = RawMessage {
                    source,
                    topic: topic.into(),
                    payload,
                    recv_ms: t,
                    truncated_from: None,
                };
                ing.push(&m).unwrap();
            };
            let nb = birth(
                0,
                vec![metric("bdSeq", 0, 8, wire::MetricValue::LongValue(1))],
            );
            push(&mut ing, "spBv1.0/lyon/NBIRTH/line-1", nb);
            let db = birth(
                1,
                vec![metric(
                    "temp_sp",
                    4,
                    10,
                    wire::MetricValue::DoubleValue(70.0),
                )],
            );
            push(&mut ing, "spBv1.0/lyon/DBIRTH/line-1/filler", db);
        }
        let a = "lyon/-/line-1/filler";
        for source in [1, 2] {
            let target = dir.get(source, a, "temp_sp").unwrap();
            assert_eq!(
                (target.alias, target.alive),
                (Some(4), true),
                "source {source}"
            );
        }
        assert_eq!(dir.len(), 2);
    }
}
