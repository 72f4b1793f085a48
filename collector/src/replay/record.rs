//! Recording live traffic into a replay file (see the [module docs](super)):
//! a writer thread owns the file; [`Recorder`] receives and hands records
//! over, waiting when the writer's queue is full.

use super::{thread_error, WRITE_QUEUE};
use crate::endpoint::BrokerEndpoint;
use crate::mqtt::{
    base_options, describe, disconnect, stop_requested, Backoff, REQUEST_CHANNEL_CAPACITY,
};
use crate::CollectorError;
use ctower_model::replay::{ReplayRecord, ReplayWriter};
use ctower_model::wall_ms;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Incoming, QoS, SubscribeFilter,
    SubscribeReasonCode,
};
use std::path::Path;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

/// Records live traffic into a replay file.
///
/// Subscribes to `filters` at QoS 1 (again after every reconnect) and
/// writes each message as a [`ReplayRecord`] with its wall-clock receive
/// time, delivered QoS (the lower of the publisher's and 1), retain flag
/// (set only for retained messages sent on subscription) and payload.
/// Stops when `stop` turns true (or its sender is dropped) or after `limit`
/// messages, finishes the gzip stream and returns the number of records
/// written. `subscribed`, if given, is completed when the broker first
/// acknowledges the subscriptions.
pub async fn record(
    broker: &BrokerEndpoint,
    client_id: &str,
    filters: Vec<String>,
    path: &Path,
    stop: watch::Receiver<bool>,
    limit: Option<u64>,
    subscribed: Option<oneshot::Sender<()>>,
) -> Result<u64, CollectorError> {
    if filters.is_empty() {
        return Err(CollectorError::Mqtt("record: no topic filter given".into()));
    }
    let mut options = base_options(client_id, broker, Duration::from_secs(30), None)?;
    options.set_clean_session(true);
    let span = tracing::info_span!("replay_record", path = %path.display(), broker = %broker);
    let (records, written) = spawn_writer(path).await?;
    let (client, eventloop) = AsyncClient::new(options, REQUEST_CHANNEL_CAPACITY);
    let recorder = Recorder {
        client,
        filters: filters
            .into_iter()
            .map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce))
            .collect(),
        stop,
        subscribed,
        records,
        backoff: Backoff::new(),
        attempt: 0,
    };
    async move {
        recorder.run(eventloop, limit).await;
        let written = written.await.map_err(|_| {
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

/// The records written, or the error that stopped the writer.
type Written = oneshot::Receiver<Result<u64, CollectorError>>;

/// Creates `path` and starts the writer thread: it writes what comes in
/// on the returned queue of [`WRITE_QUEUE`] records until the queue is
/// closed, then finishes the file and reports how many it wrote.
async fn spawn_writer(
    path: &Path,
) -> Result<(mpsc::Sender<ReplayRecord>, Written), CollectorError> {
    let path_buf = path.to_path_buf();
    let mut w = tokio::task::spawn_blocking(move || ReplayWriter::create(&path_buf))
        .await
        .map_err(|e| thread_error("replay-create", std::io::Error::other(e.to_string())))??;
    let (tx, mut rx) = mpsc::channel::<ReplayRecord>(WRITE_QUEUE);
    let (done_tx, done_rx) = oneshot::channel();
    let display = path.display().to_string();
    std::thread::Builder::new()
        .name("replay-write".into())
        .spawn(move || {
            let io = |source| CollectorError::Io {
                path: display.clone(),
                source,
            };
            let mut result = Ok(());
            while let Some(rec) = rx.blocking_recv() {
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
    Ok((tx, done_rx))
}

/// The receive loop of [`record`].
struct Recorder {
    client: AsyncClient,
    filters: Vec<SubscribeFilter>,
    stop: watch::Receiver<bool>,
    subscribed: Option<oneshot::Sender<()>>,
    /// The writer thread's queue.
    records: mpsc::Sender<ReplayRecord>,
    backoff: ctower_model::backoff::Backoff,
    /// Failed attempts since the last CONNACK.
    attempt: u32,
}

impl Recorder {
    /// Receives until stopped, `limit` records or a failed writer; closes
    /// the writer's queue on the way out.
    async fn run(mut self, mut eventloop: EventLoop, limit: Option<u64>) {
        let mut received = 0u64;
        while limit.is_none_or(|l| received < l) {
            let event = tokio::select! {
                biased;
                () = stop_requested(&mut self.stop) => break,
                e = eventloop.poll() => e,
            };
            let go_on = match event {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    self.connected();
                    true
                }
                Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                    self.subscribed(&ack.return_codes);
                    true
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    let rec = ReplayRecord {
                        t_ms: wall_ms(),
                        topic: p.topic,
                        qos: p.qos as u8,
                        retain: p.retain,
                        payload: p.payload.to_vec(),
                    };
                    // Back-pressure: waits for room in the writer's queue;
                    // a failed writer's error is returned by `record`.
                    let written = self.records.send(rec).await.is_ok();
                    received += u64::from(written);
                    written
                }
                Ok(_) => true,
                Err(e) => self.back_off(&e).await,
            };
            if !go_on {
                break;
            }
        }
        if eventloop.network.is_some() {
            disconnect(&self.client, &mut eventloop).await;
        }
    }

    fn connected(&mut self) {
        self.attempt = 0;
        self.backoff.reset();
        if let Err(e) = self.client.try_subscribe_many(self.filters.clone()) {
            tracing::error!(error = %e, "cannot queue SUBSCRIBE");
        }
    }

    fn subscribed(&mut self, codes: &[SubscribeReasonCode]) {
        for (f, code) in self.filters.iter().zip(codes) {
            if *code == SubscribeReasonCode::Failure {
                tracing::warn!(filter = %f.path, "the broker refused the subscription");
            }
        }
        tracing::info!(filters = self.filters.len(), "recording");
        if let Some(s) = self.subscribed.take() {
            let _ = s.send(());
        }
    }

    /// Logs a failed connection and waits the back-off; false when
    /// stopped meanwhile.
    async fn back_off(&mut self, e: &ConnectionError) -> bool {
        self.attempt = self.attempt.saturating_add(1);
        let delay = self.backoff.next_delay();
        tracing::warn!(
            attempt = self.attempt,
            error = %describe(e),
            retry_in_ms = delay.as_millis() as u64,
            "MQTT connection failed; reconnecting"
        );
        tokio::select! {
            biased;
            () = stop_requested(&mut self.stop) => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}
