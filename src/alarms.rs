//! `ctower alarms …`: one request to a running engine's command topic
//! (`<prefix>/cmd/<user>`), its reply read from `<prefix>/reply/<user>`,
//! printed; the exit status says whether the engine carried it out.

use crate::cli::{AlarmArgs, AlarmsCommand, AlarmsConn};
use crate::logs;
use anyhow::{bail, Context};
use ctower_collector::endpoint::BrokerEndpoint;
use ctower_model::time::rfc3339_ms;
use ctower_model::{AlarmId, CommandAction, CommandReply, CommandRequest};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use std::time::Duration;

/// Runs one `ctower alarms` command.
pub fn run(log: &str, cmd: AlarmsCommand) -> anyhow::Result<()> {
    logs::init(log)?;
    let (conn, action, alarm, reason, minutes) = match cmd {
        AlarmsCommand::List(c) => (c, CommandAction::List, None, String::new(), None),
        AlarmsCommand::Ack(a) => split(a, CommandAction::Acknowledge, None)?,
        AlarmsCommand::Shelve(s) => split(s.alarm, CommandAction::Shelve, Some(s.minutes))?,
        AlarmsCommand::Unshelve(a) => split(a, CommandAction::Unshelve, None)?,
        AlarmsCommand::Comment(a) => split(a, CommandAction::Comment, None)?,
        AlarmsCommand::OutOfService(a) => split(a, CommandAction::RemoveFromService, None)?,
        AlarmsCommand::InService(a) => split(a, CommandAction::ReturnToService, None)?,
    };
    let mut req = CommandRequest::new(request_id(), conn.user.clone(), action);
    req.minutes = minutes;
    req.alarm = alarm;
    req.reason = reason;
    send(&conn, &req, print)
}

/// Sends `req`, prints the reply (JSON with `--json`, else with `print`),
/// and fails when the engine refused it (the exit status says so).
pub(crate) fn send(
    conn: &AlarmsConn,
    req: &CommandRequest,
    print: fn(&CommandReply),
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let reply = rt.block_on(ask(conn, req))?;
    if conn.json {
        println!("{}", serde_json::to_string_pretty(&reply)?);
    } else {
        print(&reply);
    }
    if !reply.ok {
        bail!("refused: {}", reply.message);
    }
    Ok(())
}

type Parts = (
    AlarmsConn,
    CommandAction,
    Option<AlarmId>,
    String,
    Option<u32>,
);

fn split(a: AlarmArgs, action: CommandAction, minutes: Option<u32>) -> anyhow::Result<Parts> {
    let id = AlarmId::parse(&a.alarm).map_err(|e| anyhow::anyhow!("the alarm id {e}"))?;
    Ok((a.conn, action, Some(id), a.reason, minutes))
}

/// Unique enough for one user's requests in flight: the time and the
/// process id.
pub(crate) fn request_id() -> String {
    format!("{}-{}", ctower_model::wall_ms(), std::process::id())
}

async fn ask(conn: &AlarmsConn, req: &CommandRequest) -> anyhow::Result<CommandReply> {
    let endpoint = BrokerEndpoint::from_url(&conn.broker, None)?;
    let password = match &conn.password_env {
        Some(var) => Some(std::env::var(var).with_context(|| {
            format!("environment variable `{var}` (--password-env) is not set")
        })?),
        None => None,
    };
    let options = ctower_collector::mqtt::client_options(
        &format!("ctower-alarms-{}", req.id),
        &endpoint,
        password.map(|p| (conn.user.clone(), p)),
    )?;
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let reply_topic = format!("{}/reply/{}", conn.prefix, conn.user);
    let cmd_topic = format!("{}/cmd/{}", conn.prefix, conn.user);
    let body = serde_json::to_vec(req)?;
    let wait = Duration::from_secs(conn.timeout_secs.max(1));
    let work = async {
        let mut sent = false;
        loop {
            match eventloop
                .poll()
                .await
                .with_context(|| format!("connecting to {endpoint}"))?
            {
                Event::Incoming(Packet::ConnAck(_)) => {
                    client.subscribe(&reply_topic, QoS::AtLeastOnce).await?;
                }
                // Subscribed before asking, so the reply cannot be missed.
                Event::Incoming(Packet::SubAck(_)) if !sent => {
                    client
                        .publish(&cmd_topic, QoS::AtLeastOnce, false, body.clone())
                        .await?;
                    sent = true;
                }
                Event::Incoming(Packet::Publish(p)) if p.topic == reply_topic => {
                    if let Ok(r) = serde_json::from_slice::<CommandReply>(&p.payload) {
                        if r.id == req.id || (r.id.is_empty() && !r.ok) {
                            let _ = client.disconnect().await;
                            return Ok::<_, anyhow::Error>(r);
                        }
                    }
                }
                _ => {}
            }
        }
    };
    match tokio::time::timeout(wait, work).await {
        Ok(r) => r,
        Err(_) => bail!(
            "no reply from the engine within {} s on {reply_topic} (is it running with [commands] on {endpoint}, topic prefix `{}`?)",
            wait.as_secs(),
            conn.prefix
        ),
    }
}

fn print(reply: &CommandReply) {
    if reply.alarms.is_empty() {
        println!("{}", reply.message);
        return;
    }
    println!(
        "{:<60} {:<14} {:<7} {:>10}  {:<24} MESSAGE",
        "ALARM", "STATE", "PRIO", "VALUE", "RAISED"
    );
    for a in &reply.alarms {
        let value = a
            .value
            .map_or_else(|| "—".to_string(), |v| format!("{v:.4}"));
        let raised = a.raised_ms.map_or_else(|| "—".to_string(), rfc3339_ms);
        let mut state = a.state.as_str().to_string();
        if let Some(t) = a.shelved_until_ms {
            state = format!("{state} (until {})", rfc3339_ms(t));
        }
        println!(
            "{:<60} {:<14} {:<7} {:>10}  {:<24} {}",
            a.alarm.to_string(),
            state,
            a.priority.as_str(),
            value,
            raised,
            a.message
        );
    }
}
