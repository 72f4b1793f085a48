//! `ctower tui --broker URL --user U`: the dashboard attached to a running
//! engine through its MQTT feed (`<prefix>/board/#`, retained, so the
//! current picture arrives at once) and its command topic (requests on
//! `<prefix>/cmd/<user>`, replies on `<prefix>/reply/<user>`). Any number
//! of viewers can attach; the engine authorises and audits each request.
//!
//! The MQTT loop never waits on the dashboard: feed messages go to the
//! [`BoardInbox`] (newest per topic), replies and link changes to the
//! dashboard's event queue without blocking (a full queue drops a link
//! change, never a reply: replies are few and the queue large).

use crate::cli::TuiArgs;
use crate::logs;
use anyhow::Context;
use ctower_collector::endpoint::BrokerEndpoint;
use ctower_collector::tls::TlsConfig;
use ctower_model::board::{BoardInbox, BoardMessage, BoardTopic, MAX_BOARD_PAYLOAD};
use ctower_model::CommandReply;
use ctower_tui::{AppEvent, LinkState};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A viewer takes the engine for gone after this long without its
/// heartbeat (published every 500 ms): well within 2 s.
pub const HEARTBEAT_TIMEOUT_MS: i64 = 1_600;

/// Runs `ctower tui`.
pub fn run(log: &str, a: TuiArgs) -> anyhow::Result<()> {
    ctower_tui::ensure_terminal()?;
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@');
    if a.user.is_empty() || a.user.len() > 64 || !a.user.chars().all(valid) {
        anyhow::bail!("--user must be 1 to 64 of A-Za-z0-9-_.@ (one MQTT topic level, as `[commands.users]` names them)");
    }
    let log_file = a
        .log_file
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("ctower-tui-{}.log", a.user)));
    logs::init_file(log, &log_file)?;
    let endpoint = BrokerEndpoint::from_url(&a.broker, None).context("--broker")?;
    let tls = if a.ca_file.is_some() || a.client_cert.is_some() {
        let mut issues = Vec::new();
        let t = TlsConfig {
            ca_file: a.ca_file.clone(),
            client_cert_file: a.client_cert.clone(),
            client_key_file: a.client_key.clone(),
        }
        .check("tls", &mut issues);
        match t {
            Some(t) => Some(t),
            None => {
                let all: Vec<String> = issues.iter().map(ToString::to_string).collect();
                anyhow::bail!("TLS: {}", all.join("; "));
            }
        }
    } else {
        None
    };
    let password = match &a.password_env {
        Some(var) => Some(std::env::var(var).with_context(|| {
            format!("environment variable `{var}` (--password-env) is not set")
        })?),
        None => None,
    };
    let client_id = format!("ctower-tui-{}-{}", a.user, std::process::id());
    let mut options = ctower_collector::mqtt::client_options_tls(
        &client_id,
        &endpoint,
        password.map(|p| (a.user.clone(), p)),
        tls.as_ref(),
    )?;
    // Above the feed's cap, so an oversize message (not from an engine:
    // it never publishes one) is dropped here rather than failing the
    // connection, which would fetch the same retained message again.
    options.set_max_packet_size(4 * MAX_BOARD_PAYLOAD, 64 << 10);
    let (client, eventloop) = AsyncClient::new(options, 64);
    let inbox = BoardInbox::new();
    let (events_tx, events) = ctower_tui::event_queue();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let prefix = a.prefix.clone();
    let user = a.user.clone();
    // The line filter of the site shown: set by the dashboard, subscribed
    // again at each connection.
    let focused: Arc<Mutex<Option<String>>> = Arc::default();
    {
        let (client, inbox, tx) = (client.clone(), inbox.clone(), events_tx.clone());
        let focused = focused.clone();
        let (prefix, user) = (prefix.clone(), user.clone());
        std::thread::Builder::new()
            .name("tui-mqtt".into())
            .spawn(move || {
                rt.block_on(async {
                    tokio::select! {
                        () = follow(client, eventloop, &prefix, &user, &inbox, &tx, &focused) => {}
                        () = crate::live::restore_terminal_on_signal() => {}
                    }
                });
            })
            .context("starting the MQTT thread")?;
    }
    tracing::info!(broker = %endpoint, user = %a.user, prefix = %prefix, "tui attaching");
    let focus_client = client.clone();
    let focus_prefix = prefix.clone();
    let focus_state = focused.clone();
    let focus = Box::new(move |site: Option<&str>| {
        // The lines of the site shown, and no other site's: the fleet
        // needs none of them (a group's lines are most of the feed).
        let Ok(mut current) = focus_state.lock() else {
            return;
        };
        if let Some(old) = current.take() {
            let _ = focus_client.try_unsubscribe(old);
        }
        if let Some(site) = site.filter(|s| !s.contains(['/', '+', '#'])) {
            let filter = format!("{focus_prefix}/board/line/{site}/#");
            if let Err(e) = focus_client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                tracing::warn!(error = %e, "cannot subscribe to the site's lines");
            }
            // Kept even when the client was busy: the next connection
            // subscribes it.
            *current = Some(filter);
        }
    });
    let cmd_topic = format!("{prefix}/cmd/{user}");
    let send = Box::new(move |req: ctower_model::CommandRequest| {
        let body = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
        client
            .try_publish(cmd_topic.clone(), QoS::AtLeastOnce, false, body)
            .map_err(|e| format!("the MQTT client cannot take it ({e})"))
    });
    let app = ctower_tui::App::new("ctower", a.user.clone())
        .attached(endpoint.to_string(), HEARTBEAT_TIMEOUT_MS);
    let link = ctower_tui::Link {
        inbox,
        events,
        events_tx,
        send,
        focus,
    };
    ctower_tui::run_viewer(app, link)?;
    Ok(())
}

/// The MQTT loop: subscribe at each connection, route what arrives.
async fn follow(
    client: AsyncClient,
    mut eventloop: rumqttc::EventLoop,
    prefix: &str,
    user: &str,
    inbox: &Arc<BoardInbox>,
    events: &SyncSender<AppEvent>,
    focused: &Mutex<Option<String>>,
) {
    // Everything but the lines, which follow the site shown (`focus`).
    let board: Vec<String> = [
        "status", "health", "site/+", "trend/+", "alarm/+", "params", "param/+",
    ]
    .iter()
    .map(|t| format!("{prefix}/board/{t}"))
    .collect();
    let reply = format!("{prefix}/reply/{user}");
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let _ = events.try_send(AppEvent::Link(LinkState::Up));
                let line = focused.lock().ok().and_then(|f| f.clone());
                // Never awaited: this loop is what drains the client's
                // queue (requests may have filled it while disconnected).
                for t in board.iter().chain([&reply]).chain(line.as_ref()) {
                    if let Err(e) = client.try_subscribe(t.clone(), QoS::AtLeastOnce) {
                        tracing::error!(topic = %t, error = %e, "cannot subscribe");
                    }
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let refused = ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure));
                if refused {
                    let _ = events.try_send(AppEvent::Link(LinkState::Lost(
                        "the broker refused a subscription (ACL?)".into(),
                    )));
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if p.topic == reply {
                    match serde_json::from_slice::<CommandReply>(&p.payload) {
                        Ok(r) => {
                            // The poll loop never waits on the dashboard; a
                            // queue of 1,024 events full means it is stuck.
                            if events.try_send(AppEvent::Reply(r)).is_err() {
                                tracing::warn!("the dashboard's queue is full: a reply dropped");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "a reply that does not parse"),
                    }
                } else if p.payload.len() > MAX_BOARD_PAYLOAD {
                    tracing::warn!(topic = %p.topic, bytes = p.payload.len(), "a feed message over the limit: dropped");
                } else if let Some(topic) = BoardTopic::parse(prefix, &p.topic) {
                    let payload = (!p.payload.is_empty()).then(|| p.payload.to_vec());
                    inbox.put(BoardMessage { topic, payload });
                } else {
                    tracing::debug!(topic = %p.topic, "not a feed topic: ignored");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "broker connection lost");
                let _ = events.try_send(AppEvent::Link(LinkState::Lost(e.to_string())));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
