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
//! request channel ([`REQUEST_CHANNEL_CAPACITY`]), which empties as the
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

use crate::config::Credentials;
use crate::mqtt::{
    base_options, describe, disconnect, qos_from_u8, stop_requested, Backoff, BrokerEndpoint,
    REQUEST_CHANNEL_CAPACITY,
};
use crate::CollectorError;
use ctower_model::replay::{ReplayReader, ReplayRecord, ReplayWriter};
use ctower_model::{wall_ms, Clock};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Incoming, Outgoing, QoS, Request,
    SubscribeFilter, SubscribeReasonCode,
};
use serde_json::Value;
use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

/// Records decoded ahead of the publisher; when the queue is full the
/// reader thread waits (`blocking_send`) until the publisher catches up.
pub const READ_AHEAD: usize = 1024;
/// Records waiting for the recording's writer thread; when the queue is
/// full the receive loop waits, which stops reading from the broker
/// (back-pressure; the broker queues for us).
pub const WRITE_QUEUE: usize = 4096;
/// [`Progress`] is reported every this many publishes, and at the end.
pub const PROGRESS_EVERY: u64 = 1000;
const MINUTE_MS: i64 = 60_000;

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
    pub speed: Speed,
    /// Start again after the last record, shifting event times (module docs).
    pub loop_forever: bool,
    /// With `loop_forever`, stop after this many passes (`None`: never).
    pub max_passes: Option<u32>,
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
    pub published: u64,
    /// QoS 1/2 publishes acknowledged by the broker (all of them, without looping).
    pub acknowledged: u64,
    /// Records skipped because their topic cannot be published (empty, wildcards).
    pub skipped: u64,
    /// Passes started.
    pub passes: u32,
    pub reconnects: u64,
    /// Shifted `t_ms` of the first and last published records.
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
}

/// The loop period: (last − first) rounded up to a whole minute, plus one minute.
pub fn loop_span_ms(first_t_ms: i64, last_t_ms: i64) -> i64 {
    let d = last_t_ms.saturating_sub(first_t_ms).max(0);
    let minutes = d / MINUTE_MS + i64::from(d % MINUTE_MS != 0);
    minutes.saturating_add(1).saturating_mul(MINUTE_MS)
}

/// The shift that maps `first_t_ms` to `now_ms`, rounded down to a whole minute.
pub fn shift_to_now_ms(first_t_ms: i64, now_ms: i64) -> i64 {
    now_ms
        .saturating_sub(first_t_ms)
        .div_euclid(MINUTE_MS)
        .saturating_mul(MINUTE_MS)
}

/// Shifts the `ts` field of a JSON object payload by `shift_ms`.
///
/// `ts` as integer (or decimal) milliseconds gets `shift_ms` added; as an
/// RFC 3339 string it is moved by `shift_ms` keeping its offset and
/// fractional precision. Returns `None` (publish the payload unchanged) when
/// the shift is 0, the payload is not a JSON object, has no `ts`, or its
/// `ts` is neither. A rewritten object is re-serialised compactly with its
/// keys in sorted order; values are unchanged.
pub fn shift_payload_ts(payload: &[u8], shift_ms: i64) -> Option<Vec<u8>> {
    if shift_ms == 0 {
        return None;
    }
    let mut obj: serde_json::Map<String, Value> = serde_json::from_slice(payload).ok()?;
    let ts = obj.get_mut("ts")?;
    let shifted = match ts {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i.checked_add(shift_ms)?)
            } else {
                let f = n.as_f64()? + shift_ms as f64;
                Value::Number(serde_json::Number::from_f64(f)?)
            }
        }
        Value::String(s) => Value::String(shift_rfc3339(s, shift_ms)?),
        _ => return None,
    };
    *ts = shifted;
    serde_json::to_vec(&obj).ok()
}

fn shift_rfc3339(s: &str, shift_ms: i64) -> Option<String> {
    use chrono::SecondsFormat;
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    let t = t.checked_add_signed(chrono::TimeDelta::try_milliseconds(shift_ms)?)?;
    // The date part has no '.', so the first one starts the fraction.
    let digits = s
        .find('.')
        .map(|i| s[i + 1..].bytes().take_while(u8::is_ascii_digit).count())
        .unwrap_or(0);
    let format = match digits {
        0 => SecondsFormat::Secs,
        1..=3 => SecondsFormat::Millis,
        4..=6 => SecondsFormat::Micros,
        _ => SecondsFormat::Nanos,
    };
    Some(t.to_rfc3339_opts(format, s.ends_with(['Z', 'z'])))
}

/// One record ready to publish, shifted.
struct Prepared {
    pass: u32,
    t_ms: i64,
    topic: String,
    qos: u8,
    retain: bool,
    payload: Vec<u8>,
}

type ReadItem = Result<Prepared, CollectorError>;

/// Reads `passes` passes (`None`: forever) of the file into `tx`, shifting.
fn read_passes(
    path: &Path,
    passes: Option<u32>,
    shift_to_now: Option<&Clock>,
    tx: &mpsc::Sender<ReadItem>,
) -> Result<(), CollectorError> {
    let mut base_shift: Option<i64> = None;
    let mut span = 0i64;
    let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
    let mut pass = 0u32;
    while passes.is_none_or(|p| pass < p) {
        let mut n = 0u64;
        for rec in ReplayReader::open(path)? {
            let rec = rec?;
            // The base shift is fixed by the first record of the first pass.
            let base = *base_shift.get_or_insert_with(|| {
                shift_to_now.map_or(0, |now| shift_to_now_ms(rec.t_ms, now.now_ms()))
            });
            let shift = base.saturating_add(span.saturating_mul(i64::from(pass)));
            if pass == 0 {
                min_t = min_t.min(rec.t_ms);
                max_t = max_t.max(rec.t_ms);
            }
            let payload = match shift_payload_ts(&rec.payload, shift) {
                Some(p) => p,
                None => rec.payload,
            };
            let out = Prepared {
                pass,
                t_ms: rec.t_ms.saturating_add(shift),
                topic: rec.topic,
                qos: rec.qos,
                retain: rec.retain,
                payload,
            };
            if tx.blocking_send(Ok(out)).is_err() {
                return Ok(()); // the publisher has stopped
            }
            n += 1;
        }
        if n == 0 {
            tracing::warn!(path = %path.display(), pass, "the recording has no records");
            return Ok(());
        }
        if pass == 0 {
            span = loop_span_ms(min_t, max_t);
            tracing::debug!(span_ms = span, records = n, "first pass read");
        }
        pass += 1;
    }
    Ok(())
}

/// Aborts a spawned task when dropped (the caller's future was cancelled).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn thread_error(name: &str, source: std::io::Error) -> CollectorError {
    CollectorError::Thread {
        name: name.into(),
        source,
    }
}

/// Publishes a recording to `broker` (see the module docs for pacing,
/// looping, acknowledgement and reconnects). `progress` is called every
/// [`PROGRESS_EVERY`] publishes and once at the end.
///
/// Without looping it returns after the last record has been acknowledged;
/// while the broker is unreachable it keeps retrying (cancel the future to
/// give up: the event-loop task and the reader thread stop with it).
pub async fn publish_recording(
    path: &Path,
    broker: &BrokerEndpoint,
    opts: PublishOptions,
    mut progress: impl FnMut(Progress),
) -> Result<PublishStats, CollectorError> {
    let qos_override = opts.qos_override.map(qos_from_u8).transpose()?;
    if let Speed::Factor(f) = opts.speed {
        if !(f.is_finite() && f > 0.0) {
            return Err(CollectorError::Mqtt(format!(
                "replay speed {f} is not a positive number"
            )));
        }
    }
    let passes = if opts.loop_forever {
        opts.max_passes
    } else {
        Some(1)
    };
    let span = tracing::info_span!("replay_publish", path = %path.display(), broker = %broker);

    // Total for the progress bar, counted on the side.
    let total = Arc::new(AtomicU64::new(u64::MAX));
    if let Some(p) = passes {
        let (total, path) = (total.clone(), path.to_path_buf());
        let counter = std::thread::Builder::new()
            .name("replay-count".into())
            .spawn(move || {
                if let Ok(r) = ReplayReader::open(&path) {
                    total.store(r.count() as u64 * u64::from(p), Ordering::Relaxed);
                }
            });
        if let Err(e) = counter {
            tracing::debug!(error = %e, "no record count for the progress bar");
        }
    }
    let total_hint = || match total.load(Ordering::Relaxed) {
        u64::MAX => None,
        n => Some(n),
    };

    let (rec_tx, mut rec_rx) = mpsc::channel::<ReadItem>(READ_AHEAD);
    let reader;
    {
        let path = path.to_path_buf();
        let shift_to_now = opts.shift_to_now.clone();
        let reader_span = span.clone();
        reader = std::thread::Builder::new()
            .name("replay-read".into())
            .spawn(move || {
                let _g = reader_span.enter();
                if let Err(e) = read_passes(&path, passes, shift_to_now.as_ref(), &rec_tx) {
                    let _ = rec_tx.blocking_send(Err(e));
                }
            })
            .map_err(|e| thread_error("replay-read", e))?;
    }

    let mut options = base_options(&opts.client_id, broker, Duration::from_secs(30))?;
    options.set_clean_session(true);
    if let Some(c) = &opts.credentials {
        options.set_credentials(c.username.clone(), c.password.clone());
    }
    let (client, eventloop) = AsyncClient::new(options, REQUEST_CHANNEL_CAPACITY);
    let (acks_tx, mut acks_rx) = watch::channel(0u64);
    let mut link = AbortOnDrop(tokio::spawn(
        drive_publisher(eventloop, acks_tx).instrument(span.clone()),
    ));

    async move {
        let mut stats = PublishStats::default();
        let mut expected_acks = 0u64;
        let mut pace: Option<(Instant, i64)> = None;
        tracing::info!(speed = %opts.speed, ?passes, "replay started");
        while let Some(item) = rec_rx.recv().await {
            let rec = item?;
            if let Speed::Factor(f) = opts.speed {
                match pace {
                    None => pace = Some((Instant::now(), rec.t_ms)),
                    Some((start, t0)) => {
                        let offset_ms = (rec.t_ms - t0) as f64 / f;
                        if offset_ms > 0.0 {
                            let at = start + Duration::from_secs_f64(offset_ms / 1000.0);
                            tokio::time::sleep_until(at).await;
                        }
                    }
                }
            }
            if rec.topic.is_empty() || !rumqttc::valid_topic(&rec.topic) {
                tracing::warn!(topic = %rec.topic, "record skipped: not a publishable topic");
                stats.skipped += 1;
                continue;
            }
            let qos = match qos_override {
                Some(q) => q,
                None => qos_from_u8(rec.qos)?,
            };
            // Waits for room in rumqttc's bounded request channel.
            if client
                .publish(rec.topic, qos, rec.retain, rec.payload)
                .await
                .is_err()
            {
                return Err(link_failure(&mut link).await);
            }
            stats.published += 1;
            if qos != QoS::AtMostOnce {
                expected_acks += 1;
            }
            stats.passes = rec.pass + 1;
            stats.first_event_ms.get_or_insert(rec.t_ms);
            stats.last_event_ms = Some(rec.t_ms);
            if stats.published % PROGRESS_EVERY == 0 {
                progress(Progress {
                    published: stats.published,
                    total_hint: total_hint(),
                    event_time_ms: rec.t_ms,
                });
            }
        }
        // The channel also closes if the reader panicked: do not mistake
        // that for the end of the file.
        if tokio::task::spawn_blocking(move || reader.join())
            .await
            .map_or(true, |joined| joined.is_err())
        {
            return Err(thread_error(
                "replay-read",
                std::io::Error::other("panicked while reading the recording"),
            ));
        }
        tracing::debug!(
            expected_acks,
            "all records sent; waiting for acknowledgements"
        );
        if acks_rx.wait_for(|a| *a >= expected_acks).await.is_err() {
            return Err(link_failure(&mut link).await);
        }
        stats.acknowledged = *acks_rx.borrow();
        progress(Progress {
            published: stats.published,
            total_hint: total_hint(),
            event_time_ms: stats.last_event_ms.unwrap_or(0),
        });
        if client.disconnect().await.is_ok() {
            match tokio::time::timeout(Duration::from_secs(5), &mut link.0).await {
                Ok(Ok(Ok(reconnects))) => stats.reconnects = reconnects,
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "MQTT disconnect failed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "MQTT event loop task failed"),
                Err(_) => tracing::warn!("MQTT disconnect timed out"),
            }
        }
        tracing::info!(
            published = stats.published,
            acknowledged = stats.acknowledged,
            skipped = stats.skipped,
            passes = stats.passes,
            "replay finished"
        );
        Ok(stats)
    }
    .instrument(span)
    .await
}

/// The event-loop task ended before the publisher: get its error.
async fn link_failure(link: &mut AbortOnDrop<Result<u64, CollectorError>>) -> CollectorError {
    match (&mut link.0).await {
        Ok(Err(e)) => e,
        Ok(Ok(_)) => CollectorError::Mqtt("the MQTT event loop stopped unexpectedly".into()),
        Err(e) => CollectorError::Mqtt(format!("the MQTT event loop task failed: {e}")),
    }
}

/// Polls the publisher's event loop: counts acknowledgements into `acks`,
/// reconnects with back-off, and re-sends unacknowledged publishes after a
/// reconnect. Returns the number of reconnects once DISCONNECT is written.
async fn drive_publisher(
    mut eventloop: EventLoop,
    acks: watch::Sender<u64>,
) -> Result<u64, CollectorError> {
    let mut backoff = Backoff::new();
    let mut attempt = 0u32;
    let mut connections = 0u64;
    let mut acked = 0u64;
    // Requests not acknowledged when the connection dropped. rumqttc keeps
    // them in `pending` but clears it on a CONNACK without a session: they
    // are put back after every CONNACK instead.
    let mut unsent: VecDeque<Request> = VecDeque::new();
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                connections += 1;
                attempt = 0;
                backoff.reset();
                if !unsent.is_empty() {
                    tracing::info!(
                        resend = unsent.len(),
                        "reconnected; re-sending unacknowledged publishes"
                    );
                    unsent.extend(eventloop.pending.drain(..));
                    eventloop.pending = std::mem::take(&mut unsent);
                }
            }
            Ok(Event::Incoming(Incoming::PubAck(_) | Incoming::PubComp(_))) => {
                acked += 1;
                acks.send_replace(acked);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                return Ok(connections.saturating_sub(1));
            }
            Ok(_) => {}
            // Every client handle is gone: nothing more to send.
            Err(ConnectionError::RequestsDone) => return Ok(connections.saturating_sub(1)),
            Err(e) => {
                unsent.extend(eventloop.pending.drain(..));
                attempt = attempt.saturating_add(1);
                let delay = backoff.next_delay();
                tracing::warn!(
                    attempt,
                    error = %describe(&e),
                    retry_in_ms = delay.as_millis() as u64,
                    unacknowledged = unsent.len(),
                    "MQTT connection failed; reconnecting"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Records live traffic into a replay file.
///
/// Subscribes to `filters` at QoS 1 (again after every reconnect) and
/// writes each message as a [`ReplayRecord`] with its wall-clock receive
/// time, delivered QoS (the lower of the publisher's and 1), retain flag
/// (set only for retained messages sent on subscription) and payload. Stops when `stop` turns true (or its
/// sender is dropped) or after `limit` messages, finishes the gzip stream
/// and returns the number of records written. `subscribed`, if given, is
/// completed when the broker first acknowledges the subscriptions.
pub async fn record(
    broker: &BrokerEndpoint,
    client_id: &str,
    filters: Vec<String>,
    path: &Path,
    mut stop: watch::Receiver<bool>,
    limit: Option<u64>,
    mut subscribed: Option<oneshot::Sender<()>>,
) -> Result<u64, CollectorError> {
    if filters.is_empty() {
        return Err(CollectorError::Mqtt("record: no topic filter given".into()));
    }
    let mut options = base_options(client_id, broker, Duration::from_secs(30))?;
    options.set_clean_session(true);
    let span = tracing::info_span!("replay_record", path = %path.display(), broker = %broker);

    let path_buf: PathBuf = path.to_path_buf();
    let writer = tokio::task::spawn_blocking(move || ReplayWriter::create(&path_buf))
        .await
        .map_err(|e| thread_error("replay-create", std::io::Error::other(e.to_string())))??;
    let (wtx, mut wrx) = mpsc::channel::<ReplayRecord>(WRITE_QUEUE);
    let (done_tx, done_rx) = oneshot::channel::<Result<u64, CollectorError>>();
    let display = path.display().to_string();
    std::thread::Builder::new()
        .name("replay-write".into())
        .spawn(move || {
            let io = |source| CollectorError::Io {
                path: display.clone(),
                source,
            };
            let mut w = writer;
            let mut result = Ok(());
            while let Some(rec) = wrx.blocking_recv() {
                if let Err(e) = w.write(&rec) {
                    result = Err(io(e));
                    break;
                }
            }
            let n = w.count();
            let result = result.and_then(|()| w.finish().map(|_| n).map_err(io));
            let _ = done_tx.send(result);
        })
        .map_err(|e| thread_error("replay-write", e))?;

    let filters: Vec<SubscribeFilter> = filters
        .into_iter()
        .map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce))
        .collect();
    async move {
        let (client, mut eventloop) = AsyncClient::new(options, REQUEST_CHANNEL_CAPACITY);
        let mut backoff = Backoff::new();
        let mut attempt = 0u32;
        let mut received = 0u64;
        while limit.is_none_or(|l| received < l) {
            let event = tokio::select! {
                biased;
                () = stop_requested(&mut stop) => break,
                e = eventloop.poll() => e,
            };
            match event {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    attempt = 0;
                    backoff.reset();
                    if let Err(e) = client.try_subscribe_many(filters.clone()) {
                        tracing::error!(error = %e, "cannot queue SUBSCRIBE");
                    }
                }
                Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                    for (f, code) in filters.iter().zip(&ack.return_codes) {
                        if *code == SubscribeReasonCode::Failure {
                            tracing::warn!(filter = %f.path, "the broker refused the subscription");
                        }
                    }
                    tracing::info!(filters = filters.len(), "recording");
                    if let Some(s) = subscribed.take() {
                        let _ = s.send(());
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    let rec = ReplayRecord {
                        t_ms: wall_ms(),
                        topic: p.topic,
                        qos: p.qos as u8,
                        retain: p.retain,
                        payload: p.payload.to_vec(),
                    };
                    // Back-pressure: waits for room in the writer's queue.
                    if wtx.send(rec).await.is_err() {
                        break; // the writer failed; its error is returned below
                    }
                    received += 1;
                }
                Ok(_) => {}
                Err(e) => {
                    attempt = attempt.saturating_add(1);
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        attempt,
                        error = %describe(&e),
                        retry_in_ms = delay.as_millis() as u64,
                        "MQTT connection failed; reconnecting"
                    );
                    tokio::select! {
                        biased;
                        () = stop_requested(&mut stop) => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        if eventloop.network.is_some() {
            disconnect(&client, &mut eventloop).await;
        }
        drop(wtx);
        let written = done_rx.await.map_err(|_| {
            thread_error(
                "replay-write",
                std::io::Error::other("panicked while writing the recording"),
            )
        })??;
        tracing::info!(records = written, "recording finished");
        Ok(written)
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shifted(payload: &str, shift: i64) -> Option<String> {
        shift_payload_ts(payload.as_bytes(), shift).map(|p| String::from_utf8(p).unwrap())
    }

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

    #[test]
    fn integer_ts_is_shifted() {
        assert_eq!(
            shifted(r#"{"ts":1772427600000,"value":42.5}"#, 180_000).as_deref(),
            Some(r#"{"ts":1772427780000,"value":42.5}"#)
        );
        // Other fields keep their values (keys come back sorted).
        assert_eq!(
            shifted(r#"{"value":"stopped","ts":1000,"reason":"jam"}"#, 60_000).as_deref(),
            Some(r#"{"reason":"jam","ts":61000,"value":"stopped"}"#)
        );
    }

    #[test]
    fn rfc3339_ts_is_shifted_keeping_offset_and_precision() {
        assert_eq!(
            shifted(r#"{"ts":"2026-03-02T05:00:00.000Z","value":1}"#, 3_600_000).as_deref(),
            Some(r#"{"ts":"2026-03-02T06:00:00.000Z","value":1}"#)
        );
        assert_eq!(
            shifted(r#"{"ts":"2026-03-02T23:59:30+01:00","value":1}"#, 60_000).as_deref(),
            Some(r#"{"ts":"2026-03-03T00:00:30+01:00","value":1}"#)
        );
        assert_eq!(
            shifted(r#"{"ts":"2026-03-02T05:00:00.123456Z","value":1}"#, 1).as_deref(),
            Some(r#"{"ts":"2026-03-02T05:00:00.124456Z","value":1}"#)
        );
    }

    #[test]
    fn other_payloads_are_left_alone() {
        for p in [
            r#"{"value":1}"#,
            r#"{"ts":"yesterday","value":1}"#,
            r#"{"ts":null}"#,
            r#"[1,2]"#,
            r#"{"ts":1,"value":"#,
            "\u{0}\u{1}binary",
            "",
        ] {
            assert_eq!(shifted(p, 60_000), None, "{p}");
        }
        assert_eq!(shifted(r#"{"ts":1}"#, 0), None);
        assert_eq!(shift_payload_ts(&[0xff, 0x00, 0x80], 60_000), None);
    }

    #[test]
    fn span_rounds_up_to_the_minute_plus_one() {
        assert_eq!(loop_span_ms(0, 0), 60_000);
        assert_eq!(loop_span_ms(0, 1), 120_000);
        assert_eq!(loop_span_ms(0, 60_000), 120_000);
        assert_eq!(loop_span_ms(1_000, 3_601_000), 3_660_000);
    }

    #[test]
    fn shift_to_now_is_whole_minutes_not_in_the_future() {
        let t0 = 1_772_427_600_000 + 12_345;
        let now = t0 + 5 * 86_400_000 + 59_999;
        let s = shift_to_now_ms(t0, now);
        assert_eq!(s % 60_000, 0);
        assert!(t0 + s <= now && now - (t0 + s) < 60_000);
        // A recording from the future shifts backwards, still whole minutes.
        assert_eq!(shift_to_now_ms(now, t0) % 60_000, 0);
        assert!(t0 - (now + shift_to_now_ms(now, t0)) < 60_000);
    }
}
