//! The alarm command topic: operators' requests over MQTT (what
//! `ctower alarms …` sends) into the output stage, and its replies back.
//!
//! Topics (README, "Operator commands"): requests on
//! `<prefix>/cmd/<user>` (QoS 1), replies on `<prefix>/reply/<user>`
//! (QoS 1, not retained). The user is the topic's last level: the broker
//! must let each user publish only on their own `cmd` topic and read only
//! their own `reply` topic (Mosquitto: `pattern write ctower/cmd/%u`,
//! `pattern read ctower/reply/%u`), so the broker's authentication is the
//! operator's identity. A payload naming another user is refused.
//!
//! A second connection to the same broker (client id `<client_id>-board`)
//! publishes the dashboard feed ([`ctower_model::board`]): retained, its
//! status topic the connection's will (`online: false`), a heartbeat every
//! 500 ms, so a viewer knows within 2 s that the engine is gone. A
//! connection of its own, so a burst of the feed on a slow link never
//! delays an operator's reply, and the feed's publisher (which waits while
//! the broker is away) never stands between the command loop and its
//! client.
//!
//! Every request is hostile until checked: at most 16 KiB of JSON of the
//! documented shape; a request the stage's queue cannot take at once is
//! answered "busy" (never waits in the MQTT loop).

use crate::output::BoardFeed;
use crate::settings::CommandsRules;
use anyhow::Context;
use ctower_collector::endpoint::BrokerEndpoint;
use ctower_model::board::{BoardInbox, BoardMessage, BoardTopic, MAX_BOARD_PAYLOAD};
use ctower_model::{CommandReply, CommandRequest, OperatorCommand};
use rumqttc::{AsyncClient, Event, LastWill, Packet, QoS};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the engine's status is published (the viewers' heartbeat).
const HEARTBEAT: Duration = Duration::from_millis(500);

/// Largest request payload taken.
const MAX_REQUEST_BYTES: usize = 16 << 10;

/// Starts the listener on `rt`: requests to `commands`, replies from
/// `replies` published back. Runs until the process ends.
pub fn start(
    rt: &tokio::runtime::Handle,
    rules: &CommandsRules,
    embedded: Option<&BrokerEndpoint>,
    commands: SyncSender<OperatorCommand>,
    replies: Receiver<CommandReply>,
    board: Option<(Arc<BoardInbox>, BoardFeed)>,
) -> anyhow::Result<Option<std::thread::JoinHandle<()>>> {
    let endpoint = BrokerEndpoint::resolve(&rules.broker, embedded)
        .context("the command topic's broker (commands.broker_url)")?;
    let mut options = ctower_collector::mqtt::client_options(
        &rules.client_id,
        &endpoint,
        rules.credentials.clone(),
    )?;
    // A request is at most 16 KiB: a larger packet is refused by the
    // client before it is buffered. Replies (a `list`) may be larger.
    options.set_max_packet_size(MAX_REQUEST_BYTES + 1024, 8 << 20);
    let prefix = rules.topic_prefix.clone();
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let filter = format!("{prefix}/cmd/+");
    // Replies: a blocking thread, so the stage's channel is never read
    // inside the async loop.
    let reply_client = client.clone();
    let reply_prefix = prefix.clone();
    std::thread::Builder::new()
        .name("command-replies".into())
        .spawn(move || {
            for reply in replies {
                publish_reply(&reply_client, &reply_prefix, &reply);
            }
        })
        .context("starting the command reply thread")?;
    let publisher = match board {
        Some((inbox, feed)) => Some(start_board(rt, rules, &endpoint, inbox, feed)?),
        None => None,
    };
    tracing::info!(broker = %endpoint, topics = %filter, "alarm command topic");
    rt.spawn(async move {
        let mut failing = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    failing = false;
                    // Never awaited here: this task is the one that drains
                    // the client's queue (replies may have filled it while
                    // the broker was away).
                    if let Err(e) = client.try_subscribe(&filter, QoS::AtLeastOnce) {
                        tracing::error!(error = %e, "cannot subscribe to the command topic");
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    let granted = ack
                        .return_codes
                        .iter()
                        .all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_)));
                    if granted {
                        tracing::info!(topics = %filter, "command topic subscribed");
                    } else {
                        tracing::error!(topics = %filter, "the broker refused the command topic's subscription: operators' requests cannot reach this engine");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    handle(&client, &prefix, &p.topic, &p.payload, &commands);
                }
                Ok(_) => {}
                Err(e) => {
                    if !failing {
                        tracing::error!(broker = %endpoint, error = %e, "command topic: broker connection lost; operators' requests wait until it is back");
                        failing = true;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    });
    Ok(publisher)
}

/// The feed's connection (its will: the engine offline) and publisher
/// thread; the thread ends once the feed is closed and its last messages
/// are handed to the client.
fn start_board(
    rt: &tokio::runtime::Handle,
    rules: &CommandsRules,
    endpoint: &BrokerEndpoint,
    inbox: Arc<BoardInbox>,
    feed: BoardFeed,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let prefix = rules.topic_prefix.clone();
    let mut options = ctower_collector::mqtt::client_options(
        &format!("{}-board", rules.client_id),
        endpoint,
        rules.credentials.clone(),
    )?;
    // Nothing but acknowledgements comes in; a payload goes out whole.
    options.set_max_packet_size(64 << 10, MAX_BOARD_PAYLOAD + 4096);
    // The broker tells the viewers when this connection dies.
    let will = feed.status_message(false, 0);
    options.set_last_will(LastWill::new(
        will.topic.topic(&prefix),
        will.payload.unwrap_or_default(),
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let where_ = endpoint.to_string();
    // Set at each connection after the first: the broker may have lost
    // the retained state (a restart without persistence), so the
    // publisher sends all of it again.
    let reconnected = Arc::new(AtomicBool::new(false));
    let flag = reconnected.clone();
    rt.spawn(async move {
        let mut failing = false;
        let mut connections = 0u64;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    failing = false;
                    connections += 1;
                    if connections > 1 {
                        tracing::info!("dashboard feed: connected again, publishing the whole state");
                        flag.store(true, Ordering::SeqCst);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if !failing {
                        tracing::error!(broker = %where_, error = %e, "dashboard feed: broker connection lost; viewers see the engine disconnected until it is back");
                        failing = true;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    });
    let rt = rt.clone();
    let thread = std::thread::Builder::new()
        .name("board-publisher".into())
        .spawn(move || publish_board(&rt, &client, &prefix, &inbox, &feed, &reconnected))
        .context("starting the dashboard feed's publisher")?;
    tracing::info!(broker = %endpoint, topics = %format!("{}/board/#", rules.topic_prefix), "dashboard feed published");
    Ok(thread)
}

/// The feed's publisher: the inbox's newest payloads, retained (an empty
/// payload deletes an alarm that is back to normal), and the heartbeat.
/// A publish waits while the client's queue is full (the broker away):
/// meanwhile the inbox keeps only the newest payload of each topic. A
/// payload over [`MAX_BOARD_PAYLOAD`] is not published (a viewer would
/// refuse it, and its connection with it): logged and counted.
fn publish_board(
    rt: &tokio::runtime::Handle,
    client: &AsyncClient,
    prefix: &str,
    inbox: &BoardInbox,
    feed: &BoardFeed,
    reconnected: &AtomicBool,
) {
    let mut beat = Instant::now();
    // What the broker should hold retained: the newest payload per topic
    // (bounded like the inbox, by the topics).
    let mut retained: BTreeMap<BoardTopic, Vec<u8>> = BTreeMap::new();
    while let Some((msgs, _dropped)) = inbox.wait_take(HEARTBEAT) {
        if reconnected.swap(false, Ordering::SeqCst) {
            for (topic, payload) in &retained {
                publish_one(
                    rt,
                    client,
                    prefix,
                    BoardMessage {
                        topic: topic.clone(),
                        payload: Some(payload.clone()),
                    },
                );
            }
        }
        for m in msgs {
            if m.payload
                .as_ref()
                .is_some_and(|p| p.len() > MAX_BOARD_PAYLOAD)
            {
                tracing::error!(topic = %m.topic.topic(prefix), "a dashboard feed payload is over the viewers' limit: not published");
                inbox.count_dropped();
                continue;
            }
            match &m.payload {
                Some(p) => retained.insert(m.topic.clone(), p.clone()),
                None => retained.remove(&m.topic),
            };
            publish_one(rt, client, prefix, m);
        }
        // Once closed, the offline status was the last word.
        if beat.elapsed() >= HEARTBEAT && !inbox.is_closed() {
            beat = Instant::now();
            publish_one(
                rt,
                client,
                prefix,
                feed.status_message(true, ctower_model::wall_ms()),
            );
        }
    }
    // Closed: the last message (offline) was in the inbox and is sent.
    tracing::info!("dashboard feed: engine stopped, viewers told");
}

fn publish_one(rt: &tokio::runtime::Handle, client: &AsyncClient, prefix: &str, m: BoardMessage) {
    // Alarms and the status at least once; figures are replaced soon anyway.
    let qos = match m.topic {
        BoardTopic::Alarm(_) | BoardTopic::Status => QoS::AtLeastOnce,
        _ => QoS::AtMostOnce,
    };
    let topic = m.topic.topic(prefix);
    let payload = m.payload.unwrap_or_default();
    if let Err(e) = rt.block_on(client.publish(topic, qos, true, payload)) {
        tracing::warn!(error = %e, "cannot publish to the dashboard feed");
    }
}

fn publish_reply(client: &AsyncClient, prefix: &str, reply: &CommandReply) {
    let topic = format!("{prefix}/reply/{}", reply.user);
    match serde_json::to_vec(reply) {
        Ok(body) => {
            if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, body) {
                tracing::warn!(error = %e, id = %reply.id, "cannot publish a command reply");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot encode a command reply"),
    }
}

/// One message on `<prefix>/cmd/<user>`.
fn handle(
    client: &AsyncClient,
    prefix: &str,
    topic: &str,
    payload: &[u8],
    commands: &SyncSender<OperatorCommand>,
) {
    let Some(user) = topic
        .strip_prefix(prefix)
        .and_then(|t| t.strip_prefix("/cmd/"))
        .filter(|u| !u.is_empty() && !u.contains('/'))
    else {
        return;
    };
    let answer = |id: &str, message: String| {
        tracing::warn!(user, message = %message, "operator request refused");
        publish_reply(
            client,
            prefix,
            &CommandReply {
                id: id.to_string(),
                user: user.to_string(),
                ok: false,
                message,
                state: None,
                alarms: Vec::new(),
                requests: Vec::new(),
                params: Vec::new(),
            },
        );
    };
    if payload.len() > MAX_REQUEST_BYTES {
        return answer("", format!("request larger than {MAX_REQUEST_BYTES} bytes"));
    }
    let mut req: CommandRequest = match serde_json::from_slice(payload) {
        Ok(r) => r,
        Err(e) => return answer("", format!("not a request: {e}")),
    };
    if !req.user.is_empty() && req.user != user {
        return answer(
            &req.id,
            format!("the request names user `{}` on `{user}`'s topic", req.user),
        );
    }
    req.user = user.to_string();
    let id = req.id.clone();
    match commands.try_send(OperatorCommand::Request(req)) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => answer(&id, "busy: try again".into()),
        Err(TrySendError::Disconnected(_)) => answer(&id, "the engine is stopping".into()),
    }
}
