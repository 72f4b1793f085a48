//! Live MQTT sources: one rumqttc client per `[[sources]]` entry.
//!
//! [`run_source`] connects, subscribes to the source's filters on every
//! CONNACK (so subscriptions come back after a reconnect even on a broker
//! that lost the session), and forwards each PUBLISH as a [`RawMessage`] to
//! the ingest thread.
//!
//! ## Queues and back-pressure
//!
//! - The pipeline channel (`tx`) is bounded by its creator. When it is full,
//!   the poll loop awaits `tx.send`: this is the designed back-pressure.
//!   While it waits, rumqttc reads nothing more from the socket, TCP fills
//!   up and the broker queues for us (a persistent session,
//!   `clean_session = false`, so QoS 1 messages queued by the broker also
//!   survive a reconnect). Nothing in the loop blocks a thread. Keep-alive
//!   pings are not sent while we wait: a pipeline stalled for more than
//!   1.5 × keep-alive gets the connection closed by the broker, and we
//!   reconnect.
//! - rumqttc's request channel ([`REQUEST_CHANNEL_CAPACITY`]) carries
//!   SUBSCRIBE, DISCONNECT, acknowledgements and the source's own publishes
//!   (Sparkplug STATE, [`Outgoing`] rebirth requests and parameter writes),
//!   all sent with `try_*`: never awaited from the poll loop. When it is
//!   full, a QoS 0 outgoing publish (a rebirth request) is dropped and
//!   logged (the host asks again); a QoS 1 one (a parameter write) waits
//!   in a small queue ([`MAX_PENDING_OUTGOING`]) retried at every turn of
//!   the loop, in order, and when that queue is full too it is dropped
//!   and logged as an error (the write's read-back then never confirms
//!   it, and the engine says so). Once queued, rumqttc keeps a QoS 1
//!   publish across reconnects (the session is persistent) until the
//!   broker acknowledges it; it is lost only if the process stops first.
//! - QoS 1 messages are acknowledged by rumqttc as they are read, before
//!   they reach the pipeline: delivery is at least once up to this process;
//!   messages buffered inside it are lost if it crashes.
//!
//! ## Oversized messages
//!
//! rumqttc treats an incoming packet above its size limit as a fatal
//! connection error, and a persistent session redelivers that message at
//! every reconnect: one oversized message would block the source for ever.
//! So the limit given to rumqttc is the protocol's own maximum
//! ([`MAX_INCOMING_PACKET`]), no packet can exceed it, and the size limit
//! that matters, the source's `max_payload_bytes`, is applied here: a
//! larger payload is forwarded as its first [`PAYLOAD_PREFIX_BYTES`](crate::deadletter::PAYLOAD_PREFIX_BYTES) with
//! its real size ([`RawMessage::truncated_from`]), and the ingest thread
//! dead-letters it as `oversized`. Memory: a payload in the pipeline channel
//! is at most `max_payload_bytes`; an oversized packet is held whole only
//! while rumqttc reads it and this loop cuts it (up to 10 packets that have
//! already arrived are decoded at once), never queued.
//!
//! ## Reconnects
//!
//! On an error the loop logs a warning with the attempt count and polls
//! again after an exponential back-off with jitter ([`Backoff`](state::Backoff)): 500 ms
//! doubling to 30 s, each delay drawn between half and all of it so that
//! sources cut off together do not reconnect in step. The back-off is reset
//! only by a connection that proved healthy, one that stayed up for
//! [`HEALTHY_AFTER`]: a CONNACK followed at once by the same failure (a
//! broker that drops us after accepting, another client taking over our
//! client id, a packet we cannot read) keeps backing off instead of
//! reconnecting every 500 ms. It never gives up; it stops when `stop`
//! turns true (or its sender is dropped) or the pipeline closes `tx`.

mod state;

pub(crate) use state::Backoff;
use state::Session;

use crate::config::Source;
use crate::delivery::{Ack, Delivery, JournalLink, SourceExtras, REDELIVERY_WINDOW};
use crate::endpoint::BrokerEndpoint;
use crate::ingest::{Outgoing, RawMessage};
use crate::tls::Tls;
use crate::CollectorError;
use ctower_model::Clock;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Incoming, LastWill, MqttOptions, QoS,
    SubscribeFilter, SubscribeReasonCode, TlsConfiguration, Transport,
};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

/// Capacity of rumqttc's request channel (client → event loop). When it is
/// full, `AsyncClient::publish` waits (the replay's back-pressure); the
/// source and record loops only use `try_*` on it, so they never wait.
pub const REQUEST_CHANNEL_CAPACITY: usize = 256;
/// Largest incoming MQTT packet accepted (its remaining length): the
/// protocol's maximum, 268,435,455 bytes, so rumqttc never fails on size.
/// A smaller limit would turn an oversized message into a connection error
/// that a persistent session redelivers at every reconnect; the source's
/// `max_payload_bytes` is applied by the source loop instead (module docs).
pub const MAX_INCOMING_PACKET: usize = 268_435_455;
/// Mosquitto's count of messages it dropped (queue limits), watched by
/// every source.
pub const SYS_DROPPED: &str = "$SYS/broker/publish/messages/dropped";
/// A connection that stays up this long is healthy: the next failure
/// starts the back-off from its first delay again.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(10);
/// Largest outgoing packet (replay publishes).
pub const MAX_OUTGOING_PACKET: usize = 16 * 1024 * 1024 + 64 * 1024;
/// Outgoing QoS 1 publishes in flight (replay publishes).
pub const MAX_INFLIGHT: u16 = 1_000;
/// QoS 1 [`Outgoing`] publishes a source keeps while rumqttc's request
/// channel is full, retried at each turn of its loop; more are dropped
/// and logged.
pub const MAX_PENDING_OUTGOING: usize = 64;

/// What a source loop did, returned when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// PUBLISH packets received.
    pub received: u64,
    /// Messages handed to the pipeline channel.
    pub forwarded: u64,
    /// Successful connections (CONNACKs).
    pub connections: u64,
    /// Connections after the first one.
    pub reconnects: u64,
    /// Connection errors (each followed by a back-off and a new attempt).
    pub connection_errors: u64,
    /// Messages above `max_payload_bytes`, forwarded as a prefix.
    pub oversized: u64,
    /// Reconnections the broker answered with `session_present = 0`: it had
    /// lost this source's session, and the QoS 1 messages published while
    /// the source was away with it (a possible gap, logged with its times).
    pub sessions_lost: u64,
}

/// A reconnection into a lost session: when the source was away (wall
/// clock, ms since the epoch), the time in which messages may be missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLost {
    /// The last connection's failure.
    pub from_ms: i64,
    /// This connection.
    pub to_ms: i64,
}

/// Connection state of a source, published on the optional status channel
/// (for the dashboard, and for tests to wait on instead of sleeping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceStatus {
    /// Connecting (first attempt, or after a back-off).
    Connecting,
    /// CONNACK received, SUBACK pending; `connection` counts from 1.
    Connected {
        /// Which connection, from 1.
        connection: u64,
    },
    /// The broker answered the subscriptions of this connection.
    Subscribed {
        /// Which connection, from 1.
        connection: u64,
        /// The filters the broker refused (SUBACK failure, e.g. its ACL
        /// does not let this user read them): nothing from them arrives.
        refused: Vec<String>,
    },
    /// The connection failed; the next attempt is in `retry_in_ms`.
    Disconnected {
        /// Failed attempts since the last healthy connection.
        attempt: u32,
        /// Why it failed.
        error: String,
        /// The back-off before the next attempt, ms.
        retry_in_ms: u64,
    },
    /// The loop has ended.
    Stopped,
}

/// Resolves when `stop` is true. A dropped sender counts as a stop: nobody
/// could stop the loop any more.
pub(crate) async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

pub(crate) fn qos_from_u8(qos: u8) -> Result<QoS, CollectorError> {
    match qos {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Ok(QoS::ExactlyOnce),
        q => Err(CollectorError::Mqtt(format!("QoS {q} is not 0, 1 or 2"))),
    }
}

/// Options common to every client of this crate. A TLS endpoint connects
/// with `tls` (a source's `[sources.tls]`), or without one (a command's
/// `--broker mqtts://…`) with the system's trusted roots.
pub(crate) fn base_options(
    client_id: &str,
    endpoint: &BrokerEndpoint,
    keep_alive: Duration,
    tls: Option<&Tls>,
) -> Result<MqttOptions, CollectorError> {
    if client_id.is_empty() {
        return Err(CollectorError::Mqtt("the MQTT client id is empty".into()));
    }
    // Over WebSocket, rumqttc takes the whole URL as the address.
    let addr = match &endpoint.websocket {
        Some(_) => endpoint.to_string(),
        None => endpoint.host.clone(),
    };
    let mut o = MqttOptions::new(client_id, addr, endpoint.port);
    // rumqttc panics below 1 s; the configuration allows 5..=3600 s.
    o.set_keep_alive(keep_alive.max(Duration::from_secs(1)));
    o.set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET);
    o.set_inflight(MAX_INFLIGHT);
    o.set_request_channel_capacity(REQUEST_CHANNEL_CAPACITY);
    match (endpoint.tls, endpoint.websocket.is_some()) {
        (false, false) => {}
        (false, true) => {
            o.set_transport(Transport::Ws);
        }
        (true, ws) => {
            let tls = match tls {
                Some(t) => t.clone(),
                None => Tls::system().map_err(|e| CollectorError::Mqtt(format!("TLS: {e}")))?,
            };
            let config = TlsConfiguration::Rustls(tls.config);
            o.set_transport(if ws {
                Transport::wss_with_config(config)
            } else {
                Transport::tls_with_config(config)
            });
        }
    }
    Ok(o)
}

/// Options for a plain client of a broker (the alarm command topic, a
/// command line's `--broker`): keep-alive 30 s, TLS with the system's
/// trusted roots for `mqtts://`, and the credentials if given.
pub fn client_options(
    client_id: &str,
    endpoint: &BrokerEndpoint,
    credentials: Option<(String, String)>,
) -> Result<MqttOptions, CollectorError> {
    client_options_tls(client_id, endpoint, credentials, None)
}

/// [`client_options`] with a TLS setup of its own (a CA file, a client
/// certificate) for `mqtts://`.
pub fn client_options_tls(
    client_id: &str,
    endpoint: &BrokerEndpoint,
    credentials: Option<(String, String)>,
    tls: Option<&Tls>,
) -> Result<MqttOptions, CollectorError> {
    let mut o = base_options(client_id, endpoint, Duration::from_secs(30), tls)?;
    if let Some((user, password)) = credentials {
        o.set_credentials(user, password);
    }
    Ok(o)
}

/// A Sparkplug host application's STATE topic and its two retained
/// messages (Sparkplug 3.0: JSON, the will's timestamp repeated in the
/// online message).
#[derive(Debug, Clone)]
struct HostState {
    topic: String,
    online: Vec<u8>,
    offline: Vec<u8>,
}

impl HostState {
    fn new(host_id: &str, now_ms: i64) -> Self {
        let msg =
            |online: bool| format!(r#"{{"online":{online},"timestamp":{now_ms}}}"#).into_bytes();
        HostState {
            topic: format!("spBv1.0/STATE/{host_id}"),
            online: msg(true),
            offline: msg(false),
        }
    }
}

/// The next acknowledgement from the journal; never, without one.
async fn next_ack(journal: &mut Option<JournalLink>) -> Option<Ack> {
    match journal {
        Some(j) => j.acks.recv().await,
        None => std::future::pending().await,
    }
}

/// Whether an outgoing publish is past its deadline at `now_ms`.
fn expired(o: &Outgoing, now_ms: i64) -> bool {
    o.expires_ms.is_some_and(|e| now_ms >= e)
}

/// The next outgoing publish; never, without a channel (or once closed).
async fn next_outgoing(rx: &mut Option<mpsc::Receiver<Outgoing>>) -> Option<Outgoing> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Sends DISCONNECT and polls until it is written (at most 1 s).
pub(crate) async fn disconnect(client: &AsyncClient, eventloop: &mut EventLoop) {
    if client.try_disconnect().is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

/// Runs one live source until `stop` turns true or the pipeline closes `tx`.
///
/// - `index`: the source's position in the configuration ([`RawMessage::source`]);
/// - `embedded`: the endpoint of this process's embedded broker, for
///   `broker_url = "embedded"` ([`BrokerEndpoint::resolve`]);
/// - `tx`: the bounded pipeline channel; a full channel pauses the loop (back-pressure);
/// - `clock`: wall-clock milliseconds since the epoch, stamped as `recv_ms`;
/// - `status`: optional connection-state reports ([`SourceStatus`]);
/// - `extras.outgoing`: publishes to make on the source's broker, each at
///   its QoS: a Sparkplug source's NCMD rebirth requests (QoS 0, dropped
///   when rumqttc cannot take them: the host asks again) and parameter
///   writes (QoS 1, kept in a queue of [`MAX_PENDING_OUTGOING`] while
///   rumqttc's request channel is full, then dropped with an error; module
///   docs);
/// - `extras.journal`: the raw journal stage. With it, QoS 1 messages are
///   acknowledged by hand: each goes to the journal (not to `tx`), and its
///   PUBACK is sent when the journal gives it back, once on disk, in
///   arrival order. Without it, rumqttc acknowledges on receipt.
///
/// A Sparkplug source connects with the host's retained
/// `spBv1.0/STATE/{host_id}` offline message as its will, and publishes
/// the online one (retained, QoS 1) on every CONNACK and the offline one
/// when it stops.
///
/// Errors only on a configuration problem (no embedded broker, QoS > 2,
/// empty client id); connection errors are retried forever with back-off.
#[allow(clippy::too_many_arguments)]
pub async fn run_source(
    index: usize,
    source: Source,
    embedded: Option<BrokerEndpoint>,
    tx: mpsc::Sender<RawMessage>,
    clock: Clock,
    stop: watch::Receiver<bool>,
    status: Option<watch::Sender<SourceStatus>>,
    extras: SourceExtras,
) -> Result<SourceStats, CollectorError> {
    let endpoint = BrokerEndpoint::resolve(&source.broker, embedded.as_ref())?;
    let qos = qos_from_u8(source.qos)?;
    let mut options = base_options(
        &source.client_id,
        &endpoint,
        source.keep_alive,
        source.tls.as_ref(),
    )?;
    options.set_clean_session(false);
    options.set_manual_acks(extras.journal.is_some());
    if let Some(c) = &source.credentials {
        options.set_credentials(c.username.clone(), c.password.clone());
    }
    let host_state = source
        .sparkplug
        .as_ref()
        .map(|r| HostState::new(&r.host_id, clock.now_ms()));
    if let Some(h) = &host_state {
        options.set_last_will(LastWill::new(
            &h.topic,
            h.offline.clone(),
            QoS::AtLeastOnce,
            true,
        ));
    }
    let span = tracing::info_span!("mqtt_source", source = %source.name, index, broker = %endpoint);
    let filters: Vec<SubscribeFilter> = source
        .subscriptions
        .iter()
        .map(|f| SubscribeFilter::new(f.clone(), qos))
        .collect();
    let sys = if source.watch_broker_drops && !filters.is_empty() {
        SysWatch::Wanted
    } else {
        SysWatch::Off
    };
    SourceLoop {
        session: Session::new(
            index,
            source.decode_rules.max_payload_bytes(),
            !filters.is_empty(),
        ),
        filters,
        tx,
        clock,
        stop,
        status,
        host_state,
        outgoing: extras.outgoing,
        journal: extras.journal,
        pending_acks: std::collections::VecDeque::new(),
        pending_out: std::collections::VecDeque::new(),
        subscribe_due: false,
        state_due: false,
        since_connect: 0,
        broker_dropped: None,
        sys,
    }
    .run(options)
    .instrument(span)
    .await
}

/// The I/O shell of a source: polls rumqttc, forwards to the pipeline,
/// sleeps the back-off, reports status; [`Session`] decides.
struct SourceLoop {
    session: Session,
    filters: Vec<SubscribeFilter>,
    tx: mpsc::Sender<RawMessage>,
    clock: Clock,
    stop: watch::Receiver<bool>,
    status: Option<watch::Sender<SourceStatus>>,
    /// A Sparkplug host's STATE messages.
    host_state: Option<HostState>,
    outgoing: Option<mpsc::Receiver<Outgoing>>,
    journal: Option<JournalLink>,
    /// Acknowledgements due that rumqttc's request channel had no room
    /// for yet, oldest first.
    pending_acks: std::collections::VecDeque<Ack>,
    /// QoS 1 outgoing publishes rumqttc's request channel had no room for
    /// yet, oldest first (at most [`MAX_PENDING_OUTGOING`]).
    pending_out: std::collections::VecDeque<Outgoing>,
    /// A new connection's SUBSCRIBE, not queued yet.
    subscribe_due: bool,
    /// A new connection's Sparkplug STATE online message, not queued yet.
    state_due: bool,
    /// Messages received on the current connection.
    since_connect: u64,
    /// The broker's last `$SYS` count of dropped messages.
    broker_dropped: Option<u64>,
    /// Where the `$SYS` subscription stands.
    sys: SysWatch,
}

/// The `$SYS` dropped-count subscription: a SUBSCRIBE of its own after the
/// source's (a broker may refuse it, or close the connection over it, as
/// rumqttd does: then it is never asked again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SysWatch {
    /// Not configured, or given up.
    Off,
    /// To subscribe once the source's subscriptions are acknowledged.
    Wanted,
    /// Subscribed on this connection; its SUBACK not seen yet.
    Asked,
    /// Acknowledged.
    On,
}

impl SourceLoop {
    fn report(&self, s: SourceStatus) {
        if let Some(tx) = &self.status {
            tx.send_replace(s);
        }
    }

    async fn run(mut self, options: MqttOptions) -> Result<SourceStats, CollectorError> {
        let (client, mut eventloop) = AsyncClient::new(options, REQUEST_CHANNEL_CAPACITY);
        self.report(SourceStatus::Connecting);
        loop {
            let event = tokio::select! {
                biased;
                () = stop_requested(&mut self.stop) => break,
                Some(o) = next_outgoing(&mut self.outgoing) => {
                    self.publish(&client, o);
                    continue;
                }
                // The network before the acknowledgements (which are
                // taken after every event too): neither starves the other.
                e = eventloop.poll() => e,
                Some(a) = next_ack(&mut self.journal) => {
                    self.pending_acks.push_back(a);
                    self.send_requests(&client);
                    continue;
                }
            };
            self.send_requests(&client);
            let go_on = match event {
                Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                    self.connected(&client, ack.session_present);
                    true
                }
                Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                    self.subscribed(&client, &ack.return_codes);
                    true
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => self.forward(p).await,
                Ok(_) => true,
                Err(e) => self.back_off(&e).await,
            };
            if !go_on {
                break;
            }
        }
        if !self.pending_out.is_empty() {
            tracing::error!(
                dropped = self.pending_out.len(),
                "the source stopped with QoS 1 publishes (parameter writes) not yet queued: they were not sent"
            );
        }
        if eventloop.network.is_some() {
            if let Some(h) = &self.host_state {
                // Queued before the DISCONNECT, so written before it.
                let _ = client.try_publish(&h.topic, QoS::AtLeastOnce, true, h.offline.clone());
            }
            disconnect(&client, &mut eventloop).await;
        }
        let stats = self.session.stats.clone();
        tracing::info!(
            received = stats.received,
            forwarded = stats.forwarded,
            reconnects = stats.reconnects,
            "MQTT source stopped"
        );
        self.report(SourceStatus::Stopped);
        Ok(stats)
    }

    fn connected(&mut self, client: &AsyncClient, session_present: bool) {
        let now_ms = self.clock.now_ms();
        let (status, lost) =
            self.session
                .connected(tokio::time::Instant::now(), now_ms, session_present);
        let connection = self.session.stats.connections;
        tracing::info!(connection, session_present, "MQTT connected");
        if let Some(gap) = lost {
            tracing::warn!(
                connection,
                gap_from = %ctower_model::time::rfc3339_ms(gap.from_ms),
                gap_to = %ctower_model::time::rfc3339_ms(gap.to_ms),
                "the broker lost this source's session (session_present = 0): \
                 QoS 1 messages published while it was away may be missing"
            );
        }
        let subscribe = matches!(status, SourceStatus::Connected { .. });
        self.report(status);
        // Queued as soon as rumqttc's request channel has room (it may be
        // full of acknowledgements): before any acknowledgement.
        self.state_due = self.host_state.is_some();
        self.subscribe_due = subscribe;
        self.since_connect = 0;
        self.send_requests(client);
    }

    fn subscribed(&mut self, client: &AsyncClient, codes: &[SubscribeReasonCode]) {
        if self.sys == SysWatch::Asked {
            // The second SUBACK of the connection: the `$SYS` one.
            self.sys = if codes.contains(&SubscribeReasonCode::Failure) {
                tracing::info!(
                    "the broker does not let this source watch its dropped messages ($SYS)"
                );
                SysWatch::Off
            } else {
                SysWatch::On
            };
            return;
        }
        // Reported once, by whoever watches the status (one error line, a
        // fault on the dashboard), not here as well.
        let refused = self
            .filters
            .iter()
            .zip(codes)
            .filter(|(_, code)| **code == SubscribeReasonCode::Failure)
            .map(|(f, _)| f.path.clone())
            .collect();
        if matches!(self.sys, SysWatch::Wanted | SysWatch::On)
            && client.try_subscribe(SYS_DROPPED, QoS::AtMostOnce).is_ok()
        {
            self.sys = SysWatch::Asked;
        }
        tracing::debug!(filters = self.filters.len(), "subscribed");
        self.report(SourceStatus::Subscribed {
            connection: self.session.stats.connections,
            refused,
        });
    }

    /// Hands one PUBLISH to the pipeline, waiting for room (back-pressure);
    /// false when the loop must stop.
    async fn forward(&mut self, p: rumqttc::Publish) -> bool {
        if p.topic == SYS_DROPPED {
            self.sys_dropped(&p.payload);
            return true;
        }
        let dup = p.dup || self.since_connect < REDELIVERY_WINDOW;
        self.since_connect += 1;
        let (qos, pkid) = (p.qos, p.pkid);
        let msg = self
            .session
            .message(p.topic, &p.payload, self.clock.now_ms());
        if let Some(bytes) = msg.truncated_from {
            tracing::warn!(
                topic = %msg.topic,
                bytes,
                max_payload_bytes = self.session.max_payload_bytes,
                "oversized message: it will be a dead letter"
            );
        }
        let sent = match &self.journal {
            // To the journal first: acknowledged once on disk.
            Some(j) => {
                let d = Delivery {
                    msg,
                    qos: qos as u8,
                    ack: (qos != QoS::AtMostOnce).then_some(Ack { pkid }),
                    dup,
                };
                tokio::select! {
                    biased;
                    () = stop_requested(&mut self.stop) => return false,
                    r = j.tx.send(d) => r.is_ok(),
                }
            }
            None => tokio::select! {
                biased;
                () = stop_requested(&mut self.stop) => return false,
                r = self.tx.send(msg) => r.is_ok(),
            },
        };
        if !sent {
            tracing::info!("the pipeline channel is closed; stopping the source");
            return false;
        }
        self.session.stats.forwarded += 1;
        true
    }

    /// The broker's dropped-message count: said once at start, and
    /// loudly whenever it grows (its queue limits are losing messages,
    /// perhaps ours: README, "Broker settings").
    fn sys_dropped(&mut self, payload: &[u8]) {
        let Some(n) = std::str::from_utf8(payload)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
        else {
            return;
        };
        match self.broker_dropped.replace(n) {
            None if n > 0 => tracing::warn!(
                dropped = n,
                "messages were dropped by the broker since it started ($SYS/broker/publish/messages/dropped): \
                 check its max_queued_messages and max_queued_bytes (README, Broker settings)"
            ),
            None => tracing::info!("the broker reports no dropped messages"),
            Some(before) if n > before => tracing::warn!(
                dropped = n - before,
                total = n,
                "messages were dropped by the broker: a queue limit is losing messages, perhaps this source's"
            ),
            Some(_) => {}
        }
    }

    /// Queues what is due, while rumqttc's request channel has room (the
    /// rest waits for the next turn of the loop): the SUBSCRIBE and the
    /// Sparkplug STATE of a new connection first, then the acknowledgements
    /// in order.
    fn send_requests(&mut self, client: &AsyncClient) {
        if let Some(j) = self.journal.as_mut() {
            while let Ok(a) = j.acks.try_recv() {
                self.pending_acks.push_back(a);
            }
        }
        if self.subscribe_due {
            match client.try_subscribe_many(self.filters.clone()) {
                Ok(()) => self.subscribe_due = false,
                Err(_) => return,
            }
        }
        if let (true, Some(h)) = (self.state_due, &self.host_state) {
            match client.try_publish(&h.topic, QoS::AtLeastOnce, true, h.online.clone()) {
                Ok(()) => self.state_due = false,
                Err(_) => return,
            }
        }
        while let Some(a) = self.pending_acks.front() {
            if client.try_ack(&a.publish()).is_err() {
                return;
            }
            self.pending_acks.pop_front();
        }
        let now = self.clock.now_ms();
        while let Some(o) = self.pending_out.front() {
            if expired(o, now) {
                tracing::error!(topic = %o.topic, "a parameter write waited past its read-back deadline: dropped, not sent late");
                self.pending_out.pop_front();
                continue;
            }
            if try_publish(client, o).is_err() {
                return;
            }
            self.pending_out.pop_front();
        }
    }

    /// Queues one outgoing publish with rumqttc, never waiting: QoS 0 is
    /// dropped if there is no room, QoS 1 waits in `pending_out` (behind
    /// any already waiting, so writes keep their order) unless that is
    /// full too (module docs).
    fn publish(&mut self, client: &AsyncClient, o: Outgoing) {
        if expired(&o, self.clock.now_ms()) {
            tracing::error!(topic = %o.topic, "a parameter write arrived past its read-back deadline: dropped, not sent late");
            return;
        }
        if o.qos == 0 {
            if let Err(e) = try_publish(client, &o) {
                tracing::warn!(topic = %o.topic, error = %e, "cannot queue a QoS 0 publish (a rebirth request): dropped");
            }
            return;
        }
        if self.pending_out.is_empty() && try_publish(client, &o).is_ok() {
            return;
        }
        if self.pending_out.len() >= MAX_PENDING_OUTGOING {
            tracing::error!(
                topic = %o.topic,
                waiting = self.pending_out.len(),
                "too many QoS 1 publishes (parameter writes) waiting for rumqttc's request channel: one dropped, not sent"
            );
            return;
        }
        self.pending_out.push_back(o);
        self.send_requests(client);
    }

    /// Logs and reports a failed connection, then waits the back-off;
    /// false when stopped meanwhile.
    async fn back_off(&mut self, e: &ConnectionError) -> bool {
        if self.sys == SysWatch::Asked {
            // The connection ended before the `$SYS` SUBACK: perhaps over
            // it (rumqttd closes a connection that subscribes to `$`).
            tracing::info!("the connection closed after the $SYS subscription: the broker's dropped messages are not watched");
            self.sys = SysWatch::Off;
        }
        let error = describe(e);
        let (delay, status) = self.session.failed(
            tokio::time::Instant::now(),
            self.clock.now_ms(),
            error.clone(),
        );
        tracing::warn!(
            attempt = self.session.attempt,
            error = %error,
            retry_in_ms = delay.as_millis() as u64,
            "MQTT connection failed; reconnecting"
        );
        self.report(status);
        tokio::select! {
            biased;
            () = stop_requested(&mut self.stop) => return false,
            () = tokio::time::sleep(delay) => {}
        }
        self.report(SourceStatus::Connecting);
        true
    }
}

/// Hands `o` to rumqttc's request channel if it has room (not retained).
/// An invalid QoS is refused the same way, and logged.
fn try_publish(client: &AsyncClient, o: &Outgoing) -> Result<(), String> {
    let qos = match qos_from_u8(o.qos) {
        Ok(q) => q,
        Err(e) => {
            tracing::error!(topic = %o.topic, error = %e, "an outgoing publish with an invalid QoS: dropped");
            return Ok(());
        }
    };
    client
        .try_publish(&o.topic, qos, false, o.payload.clone())
        .map_err(|e| e.to_string())
}

/// A connection error for the logs; a refused CONNACK says so in words.
pub(crate) fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => {
            format!("the broker refused the connection ({code:?})")
        }
        e => e.to_string(),
    }
}

/// A minimal `tracing` subscriber that keeps every span and event field as
/// text, for tests that check what is logged (no extra dependency).
#[cfg(test)]
pub(crate) mod log_capture {
    use std::fmt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};

    /// Install with `tracing::subscriber::set_default(capture.clone())`.
    #[derive(Clone, Default)]
    pub(crate) struct Capture(Arc<Mutex<String>>, Arc<AtomicU64>);

    struct Fields<'a>(&'a mut String);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.0.push_str(&format!("{}={value:?} ", field.name()));
        }
    }

    impl Capture {
        /// Everything recorded so far, one line per span, record or event.
        pub(crate) fn text(&self) -> String {
            self.0.lock().map(|t| t.clone()).unwrap_or_default()
        }

        fn keep(&self, record: impl FnOnce(&mut Fields<'_>)) {
            if let Ok(mut t) = self.0.lock() {
                record(&mut Fields(&mut t));
                t.push('\n');
            }
        }
    }

    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            self.keep(|f| span.record(f));
            Id::from_u64(self.1.fetch_add(1, Ordering::Relaxed) + 1)
        }
        fn record(&self, _: &Id, values: &Record<'_>) {
            self.keep(|f| values.record(f));
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            self.keep(|f| event.record(f));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadletter::PAYLOAD_PREFIX_BYTES;
    use crate::endpoint::BrokerAddr;

    #[test]
    fn jittered_backoff_is_half_to_all_of_the_delay_and_seeded() {
        let bases = [500u64, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
        let draw = |seed| {
            let mut b = Backoff::jittered(seed);
            (0..bases.len())
                .map(|_| b.next_delay().as_micros() as u64)
                .collect::<Vec<_>>()
        };
        let a = draw(42);
        assert_eq!(a, draw(42), "the same seed, the same delays");
        assert_ne!(a, draw(43));
        for seed in 0..200 {
            for (d, base) in draw(seed).iter().zip(bases) {
                assert!(
                    (base * 500..=base * 1000).contains(d),
                    "seed {seed}: {d} µs for {base} ms"
                );
            }
        }
        // Spread over the range, not stuck at one end.
        let firsts: Vec<u64> = (0..200).map(|s| draw(s)[0]).collect();
        assert!(firsts.iter().any(|d| *d < 300_000) && firsts.iter().any(|d| *d > 450_000));
        let mut b = Backoff::jittered(7);
        b.next_delay();
        b.next_delay();
        b.reset();
        assert!(b.next_delay() <= Backoff::FIRST);
    }

    #[test]
    fn backoff_doubles_to_30s_and_resets() {
        let mut b = Backoff::new();
        let delays: Vec<u64> = (0..9).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(500));
    }

    /// The source's span and log lines show its broker without credentials,
    /// even for a host that holds some (`BrokerAddr::parse` refuses them;
    /// this is the last line of defence). The logs are captured from a real
    /// `run_source` by a minimal subscriber that keeps every field.
    #[tokio::test]
    async fn source_logs_never_show_url_credentials() {
        use log_capture::Capture;

        let capture = Capture::default();
        let _guard = tracing::subscriber::set_default(capture.clone());
        let mut issues = vec![];
        let mut spec = crate::config::SourceConfig {
            name: "lyon".into(),
            broker_url: "mqtt://127.0.0.1:1".into(),
            ..Default::default()
        }
        .check("sources[0]", &|_| None, &mut issues)
        .unwrap();
        spec.broker = BrokerAddr::Tcp {
            host: "ctower:s3cret@127.0.0.1".into(),
            port: 1,
            tls: false,
            websocket: None,
        };
        let (tx, _rx) = mpsc::channel(1);
        let (stop_tx, stop) = watch::channel(false);
        let (status_tx, mut status) = watch::channel(SourceStatus::Connecting);
        let source = run_source(
            0,
            spec,
            None,
            tx,
            Clock::from_fn(|| 0),
            stop,
            Some(status_tx),
            SourceExtras::default(),
        );
        let stopper = async {
            // Stop after the first failed attempt has been logged.
            let failed = status.wait_for(|s| matches!(s, SourceStatus::Disconnected { .. }));
            let _ = tokio::time::timeout(Duration::from_secs(30), failed).await;
            stop_tx.send_replace(true);
        };
        let (stats, ()) = tokio::join!(source, stopper);
        assert!(stats.unwrap().connection_errors >= 1);
        let logs = capture.text();
        assert!(logs.contains("broker=mqtt://***@127.0.0.1:1"), "{logs}");
        assert!(logs.contains("MQTT connection failed"), "{logs}");
        assert!(!logs.contains("s3cret"), "{logs}");
    }

    /// A connection that fails soon after its CONNACK keeps backing off;
    /// one that stayed up for [`HEALTHY_AFTER`] starts again from the first
    /// delay.
    #[test]
    fn only_a_healthy_connection_resets_the_back_off() {
        let t0 = tokio::time::Instant::now();
        let mut s = Session::new(0, 1024, true);
        s.backoff = Backoff::new(); // no jitter: exact delays
        assert_eq!(
            s.connected(t0, 0, true).0,
            SourceStatus::Connected { connection: 1 }
        );
        let (_, status) = s.failed(t0 + Duration::from_secs(1), 0, "x".into());
        assert!(matches!(
            status,
            SourceStatus::Disconnected { attempt: 1, .. }
        ));
        s.connected(t0 + Duration::from_secs(2), 0, true);
        let (second, status) = s.failed(t0 + Duration::from_secs(3), 0, "x".into());
        assert!(matches!(
            status,
            SourceStatus::Disconnected { attempt: 2, .. }
        ));
        assert_eq!(second, Backoff::FIRST * 2);
        s.connected(t0 + Duration::from_secs(4), 0, true);
        let later = t0 + Duration::from_secs(4) + HEALTHY_AFTER;
        let (delay, status) = s.failed(later, 0, "x".into());
        assert!(matches!(
            status,
            SourceStatus::Disconnected { attempt: 1, .. }
        ));
        assert_eq!(delay, Backoff::FIRST);
        assert_eq!((s.stats.connections, s.stats.reconnects), (3, 2));
        assert_eq!(s.stats.connection_errors, 3);
    }

    /// A reconnection the broker answers with `session_present = 0` lost
    /// the session: counted, with the time the source was away; the first
    /// connection (a new session) and a resumed one are not.
    #[test]
    fn a_reconnection_into_a_lost_session_says_when_the_source_was_away() {
        let t0 = tokio::time::Instant::now();
        let mut s = Session::new(0, 1024, true);
        assert_eq!(s.connected(t0, 1_000, false).1, None);
        s.failed(t0, 2_000, "x".into());
        s.failed(t0, 2_500, "x".into());
        assert_eq!(s.connected(t0, 3_000, true).1, None);
        s.failed(t0, 4_000, "x".into());
        assert_eq!(
            s.connected(t0, 9_000, false).1,
            Some(SessionLost {
                from_ms: 4_000,
                to_ms: 9_000
            })
        );
        assert_eq!(s.stats.sessions_lost, 1);
    }

    #[test]
    fn oversized_payloads_are_cut_to_a_prefix_with_their_size() {
        let mut s = Session::new(3, 10, false);
        assert_eq!(
            s.connected(tokio::time::Instant::now(), 0, true).0,
            SourceStatus::Subscribed {
                connection: 1,
                refused: vec![]
            }
        );
        let m = s.message("t".into(), &[7; 10], 5);
        assert_eq!((m.source, m.payload.len(), m.truncated_from), (3, 10, None));
        let big = vec![7; PAYLOAD_PREFIX_BYTES + 100];
        let m = s.message("t".into(), &big, 6);
        assert_eq!(m.payload.len(), PAYLOAD_PREFIX_BYTES);
        assert_eq!(m.truncated_from, Some(big.len()));
        assert_eq!((s.stats.received, s.stats.oversized), (2, 1));
    }

    /// With rumqttc's request channel full, a QoS 1 outgoing publish
    /// waits (in order, at most [`MAX_PENDING_OUTGOING`]) and goes as room
    /// comes back; a QoS 0 one is dropped; nothing waits in the loop.
    #[tokio::test]
    async fn qos_1_publishes_wait_in_order_for_room_and_qos_0_ones_are_dropped() {
        let (client, mut eventloop) = AsyncClient::new(MqttOptions::new("t", "127.0.0.1", 1), 2);
        let mut l = SourceLoop {
            session: Session::new(0, 1024, true),
            filters: vec![],
            tx: mpsc::channel(1).0,
            clock: Clock::from_fn(|| 0),
            stop: watch::channel(false).1,
            status: None,
            host_state: None,
            outgoing: None,
            journal: None,
            pending_acks: Default::default(),
            pending_out: Default::default(),
            subscribe_due: false,
            state_due: false,
            since_connect: 0,
            broker_dropped: None,
            sys: SysWatch::Off,
        };
        let o = |topic: String, qos| Outgoing {
            source: 0,
            topic,
            payload: vec![1],
            qos,
            expires_ms: None,
        };
        // w0 and w1 fill rumqttc's channel; w2.. wait; the rebirth is dropped.
        for i in 0..2 + MAX_PENDING_OUTGOING + 1 {
            l.publish(&client, o(format!("w{i}"), 1));
            if i == 2 {
                l.publish(&client, o("rebirth".into(), 0));
            }
        }
        assert_eq!(
            l.pending_out.len(),
            MAX_PENDING_OUTGOING,
            "the last one dropped"
        );
        let topics = |e: &mut EventLoop| -> Vec<(String, QoS)> {
            e.clean(); // takes what the channel holds
            e.pending
                .drain(..)
                .filter_map(|r| match r {
                    rumqttc::Request::Publish(p) => Some((p.topic, p.qos)),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(
            topics(&mut eventloop),
            [
                ("w0".into(), QoS::AtLeastOnce),
                ("w1".into(), QoS::AtLeastOnce)
            ]
        );
        // Room again: the next two go, in order, at the next turn.
        l.send_requests(&client);
        assert_eq!(
            topics(&mut eventloop),
            [
                ("w2".into(), QoS::AtLeastOnce),
                ("w3".into(), QoS::AtLeastOnce)
            ]
        );
        assert_eq!(l.pending_out.len(), MAX_PENDING_OUTGOING - 2);
        assert_eq!(l.pending_out.back().map(|o| o.topic.as_str()), Some("w65"));
        // A write past its deadline (the clock reads 0) is never sent late:
        // dropped on arrival, and dropped from the waiting ones.
        let late = |topic: &str| Outgoing {
            expires_ms: Some(0),
            ..o(topic.into(), 1)
        };
        l.publish(&client, late("late"));
        assert!(l.pending_out.iter().all(|o| o.topic != "late"));
        l.pending_out.clear();
        l.pending_out.push_back(late("late-waiting"));
        l.pending_out.push_back(o("fresh".into(), 1));
        l.send_requests(&client);
        assert_eq!(topics(&mut eventloop), [("fresh".into(), QoS::AtLeastOnce)]);
    }

    #[test]
    fn qos_above_2_is_an_error() {
        assert!(qos_from_u8(3).is_err());
        assert_eq!(qos_from_u8(1).unwrap(), QoS::AtLeastOnce);
    }
}
