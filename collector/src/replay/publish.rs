//! Publishing a recording (see the [module docs](super)): the pacing and
//! the tally are plain structs ([`Pacer`], [`Tally`]); [`Publisher`] is the
//! I/O around them, and a task of its own drives rumqttc's event loop
//! ([`drive_publisher`]).

use super::read::{spawn_reader, ReadItem, TotalHint};
use super::{thread_error, Progress, PublishOptions, PublishStats, Speed, PROGRESS_EVERY};
use crate::endpoint::BrokerEndpoint;
use crate::mqtt::{base_options, describe, qos_from_u8, Backoff, REQUEST_CHANNEL_CAPACITY};
use crate::CollectorError;
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, Incoming, Outgoing, QoS, Request};
use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

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
    let total = TotalHint::count(path, passes);
    let (records, reader) = spawn_reader(path, passes, opts.shift_to_now.clone(), span.clone())?;

    let mut options = base_options(&opts.client_id, broker, Duration::from_secs(30), None)?;
    options.set_clean_session(true);
    if let Some(c) = &opts.credentials {
        options.set_credentials(c.username.clone(), c.password.clone());
    }
    let (client, eventloop) = AsyncClient::new(options, REQUEST_CHANNEL_CAPACITY);
    let (acks_tx, acks) = watch::channel(0u64);
    let link = AbortOnDrop(tokio::spawn(
        drive_publisher(eventloop, acks_tx).instrument(span.clone()),
    ));
    let publisher = Publisher {
        client,
        link,
        acks,
        qos_override,
        total,
        tally: Tally::default(),
    };
    async move {
        tracing::info!(speed = %opts.speed, ?passes, "replay started");
        publisher
            .run(records, reader, Pacer::new(opts.speed), &mut progress)
            .await
    }
    .instrument(span)
    .await
}

/// When each record goes out: with [`Speed::Factor`]`(f)` record k at
/// `start + (t_k − t_0) / f`, with [`Speed::Max`] at once.
#[derive(Debug)]
struct Pacer {
    speed: Speed,
    /// When the first record went out, and its time.
    start: Option<(Instant, i64)>,
}

impl Pacer {
    fn new(speed: Speed) -> Self {
        Pacer { speed, start: None }
    }

    /// When the record of time `t_ms` is due, seen at `now`; `None`: at
    /// once. The first record fixes the start.
    fn due(&mut self, now: Instant, t_ms: i64) -> Option<Instant> {
        let Speed::Factor(f) = self.speed else {
            return None;
        };
        let Some((start, t0)) = self.start else {
            self.start = Some((now, t_ms));
            return None;
        };
        let offset_ms = (t_ms - t0) as f64 / f;
        (offset_ms > 0.0).then(|| start + Duration::from_secs_f64(offset_ms / 1000.0))
    }
}

/// What has been published, and the acknowledgements to wait for.
#[derive(Debug, Default)]
struct Tally {
    stats: PublishStats,
    /// QoS 1/2 publishes sent.
    expected_acks: u64,
}

impl Tally {
    /// Counts one publish of `pass` at `t_ms`: the progress to report, every
    /// [`PROGRESS_EVERY`] publishes.
    fn published(&mut self, pass: u32, t_ms: i64, qos: QoS, total: &TotalHint) -> Option<Progress> {
        let stats = &mut self.stats;
        stats.published += 1;
        if qos != QoS::AtMostOnce {
            self.expected_acks += 1;
        }
        stats.passes = pass + 1;
        stats.first_event_ms.get_or_insert(t_ms);
        stats.last_event_ms = Some(t_ms);
        stats
            .published
            .is_multiple_of(PROGRESS_EVERY)
            .then(|| Progress {
                published: stats.published,
                total_hint: total.get(),
                event_time_ms: t_ms,
            })
    }
}

/// The publishing side: the client, its event-loop task and the tally.
struct Publisher {
    client: AsyncClient,
    link: AbortOnDrop<Result<u64, CollectorError>>,
    /// Acknowledgements counted by the event-loop task.
    acks: watch::Receiver<u64>,
    qos_override: Option<QoS>,
    total: TotalHint,
    tally: Tally,
}

impl Publisher {
    /// Publishes every record of `records`, paced, then waits for the
    /// reader thread and every acknowledgement, and disconnects.
    async fn run(
        mut self,
        mut records: mpsc::Receiver<ReadItem>,
        reader: std::thread::JoinHandle<()>,
        mut pacer: Pacer,
        progress: &mut impl FnMut(Progress),
    ) -> Result<PublishStats, CollectorError> {
        while let Some(item) = records.recv().await {
            let rec = item?;
            if let Some(at) = pacer.due(Instant::now(), rec.t_ms) {
                tokio::time::sleep_until(at).await;
            }
            if rec.topic.is_empty() || !rumqttc::valid_topic(&rec.topic) {
                tracing::warn!(topic = %rec.topic, "record skipped: not a publishable topic");
                self.tally.stats.skipped += 1;
                continue;
            }
            let qos = match self.qos_override {
                Some(q) => q,
                None => qos_from_u8(rec.qos)?,
            };
            // Waits for room in rumqttc's bounded request channel.
            let sent = self.client.publish(rec.topic, qos, rec.retain, rec.payload);
            if sent.await.is_err() {
                return Err(link_failure(&mut self.link).await);
            }
            if let Some(p) = self.tally.published(rec.pass, rec.t_ms, qos, &self.total) {
                progress(p);
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
        self.finish(progress).await
    }

    /// Waits for every acknowledgement, reports the end and disconnects.
    async fn finish(
        mut self,
        progress: &mut impl FnMut(Progress),
    ) -> Result<PublishStats, CollectorError> {
        let expected_acks = self.tally.expected_acks;
        tracing::debug!(
            expected_acks,
            "all records sent; waiting for acknowledgements"
        );
        if self.acks.wait_for(|a| *a >= expected_acks).await.is_err() {
            return Err(link_failure(&mut self.link).await);
        }
        let mut stats = self.tally.stats;
        stats.acknowledged = *self.acks.borrow();
        progress(Progress {
            published: stats.published,
            total_hint: self.total.get(),
            event_time_ms: stats.last_event_ms.unwrap_or(0),
        });
        if self.client.disconnect().await.is_ok() {
            match tokio::time::timeout(Duration::from_secs(5), &mut self.link.0).await {
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
}

/// Aborts a spawned task when dropped (the caller's future was cancelled).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
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
