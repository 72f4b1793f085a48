//! `ctower plant`: a live simulated Sparkplug B edge node
//! ([`ctower_sim::edge::EdgePlant`]) on a broker, in real time: it publishes
//! its births and data, and obeys the NCMD/DCMD writes the engine's
//! parameter control sends (a recovery setpoint, a temperature setpoint, a
//! line's speed limit and night standby), so the whole loop — request,
//! approval, command, read-back — runs against something that behaves like
//! a plant. The demo runs one on its embedded broker.
//!
//! The I/O is thin: the plant is pure, this loop encodes its messages into
//! Sparkplug protobuf (the collector's wire types), publishes them (births
//! and data at QoS 0, as edge nodes do), registers the NDEATH of each
//! session as the will, and decodes incoming commands. A lost connection
//! ends the session (death); the next one is born with the next `bdSeq`.

use anyhow::Context;
use ctower_collector::endpoint::BrokerEndpoint;
use ctower_collector::sparkplug::wire::{Metric, MetricValue, Payload};
use ctower_collector::sparkplug::{decode_payload, DataType};
use ctower_model::backoff::Backoff;
use ctower_sim::edge::{CommandMetric, EdgeCommand, EdgeConfig, EdgeMessage, EdgePlant, EdgeValue};
use prost::Message;
use rumqttc::{AsyncClient, Event, LastWill, Packet, QoS};
use std::time::Duration;
use tokio::sync::watch;

/// How often the plant's physics is advanced and its data published.
const STEP: Duration = Duration::from_millis(200);
/// Largest command payload taken.
const MAX_COMMAND_BYTES: usize = 64 << 10;

/// One edge node's run options.
#[derive(Debug, Clone)]
pub struct PlantOptions {
    /// The broker.
    pub endpoint: BrokerEndpoint,
    /// Broker user and password.
    pub credentials: Option<(String, String)>,
    /// Group, node, seed.
    pub edge: EdgeConfig,
    /// Whether writes are applied (false: acknowledged and ignored).
    pub obey: bool,
    /// The plant's clock (the wall clock; the demo's replay clock).
    pub clock: ctower_model::Clock,
}

/// An [`EdgeMessage`] as a Sparkplug B payload.
pub fn encode(m: &EdgeMessage) -> Vec<u8> {
    let metrics = m
        .metrics
        .iter()
        .map(|x| Metric {
            name: x.name.clone(),
            alias: Some(x.alias),
            timestamp: u64::try_from(x.timestamp_ms).ok(),
            datatype: Some(x.datatype.code()),
            value: Some(match &x.value {
                EdgeValue::Bool(b) => MetricValue::BooleanValue(*b),
                // Two's complement, as the specification says.
                EdgeValue::Int(i) => MetricValue::LongValue(*i as u64),
                EdgeValue::UInt(u) => MetricValue::LongValue(*u),
                EdgeValue::Double(f) => MetricValue::DoubleValue(*f),
                EdgeValue::String(s) => MetricValue::StringValue(s.clone()),
            }),
            ..Metric::default()
        })
        .collect();
    Payload {
        timestamp: u64::try_from(m.timestamp_ms).ok(),
        metrics,
        seq: m.seq,
        ..Payload::default()
    }
    .encode_to_vec()
}

/// An NCMD/DCMD payload as the plant's command (`device` from the topic):
/// the value read by the metric's data type, or by the field it is in.
pub fn decode_command(device: Option<&str>, payload: &[u8]) -> Result<EdgeCommand, String> {
    if payload.len() > MAX_COMMAND_BYTES {
        return Err(format!("a command larger than {MAX_COMMAND_BYTES} bytes"));
    }
    let p = decode_payload(payload)?;
    let mut metrics = Vec::new();
    for m in p.metrics {
        let Some(raw) = &m.raw else {
            return Err("a command metric without a value".into());
        };
        let value = match m.datatype.and_then(DataType::from_code) {
            Some(dt) => match ctower_collector::sparkplug::payload::typed_value(dt, raw)? {
                ctower_collector::sparkplug::SpValue::Int(i) => EdgeValue::Int(i),
                ctower_collector::sparkplug::SpValue::UInt(u) => EdgeValue::UInt(u),
                ctower_collector::sparkplug::SpValue::Float(f) => EdgeValue::Double(f),
                ctower_collector::sparkplug::SpValue::Bool(b) => EdgeValue::Bool(b),
                ctower_collector::sparkplug::SpValue::Text(s) => EdgeValue::String(s),
                other => return Err(format!("a command value of an unsupported type: {other:?}")),
            },
            None => match raw {
                MetricValue::BooleanValue(b) => EdgeValue::Bool(*b),
                MetricValue::LongValue(v) => EdgeValue::Int(*v as i64),
                MetricValue::IntValue(v) => EdgeValue::Int(i64::from(*v as i32)),
                MetricValue::DoubleValue(f) => EdgeValue::Double(*f),
                MetricValue::FloatValue(f) => EdgeValue::Double(f64::from(*f)),
                MetricValue::StringValue(s) => EdgeValue::String(s.clone()),
                _ => return Err("a command value of an unsupported type".into()),
            },
        };
        metrics.push(CommandMetric {
            name: m.name,
            alias: m.alias,
            value,
        });
    }
    Ok(EdgeCommand {
        device: device.map(str::to_string),
        metrics,
    })
}

/// Runs the edge node until `stop` turns true (then it dies cleanly: its
/// NDEATH is published).
pub async fn run(opts: PlantOptions, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let clock = opts.clock.clone();
    let now = move || clock.now_ms();
    let mut plant = EdgePlant::new(opts.edge.clone(), now())
        .map_err(|e| anyhow::anyhow!("the simulated plant: {e}"))?;
    plant.set_obey(opts.obey);
    let [ncmd, dcmd] = plant.command_topics();
    let dcmd_prefix = dcmd.trim_end_matches('+').to_string();
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    loop {
        let client_id = format!("ctower-plant-{}-{}", opts.edge.group, opts.edge.node);
        let mut options = ctower_collector::mqtt::client_options(
            &client_id,
            &opts.endpoint,
            opts.credentials.clone(),
        )?;
        let will = plant.death_payload(now());
        options.set_last_will(LastWill::new(
            plant.topic(will.kind, None),
            encode(&will),
            QoS::AtLeastOnce,
            false,
        ));
        options.set_max_packet_size(MAX_COMMAND_BYTES + 1024, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 256);
        let mut tick = tokio::time::interval(STEP);
        let mut born = false;
        let ended = loop {
            tokio::select! {
                _ = stop.changed() => break true,
                _ = tick.tick(), if born => {
                    match plant.advance(now()) {
                        Ok(msgs) => publish(&client, &plant, &msgs),
                        Err(e) => tracing::warn!(error = %e, "the plant's clock: skipped"),
                    }
                }
                ev = eventloop.poll() => match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        backoff.reset();
                        for t in [&ncmd, &dcmd] {
                            if let Err(e) = client.try_subscribe(t, QoS::AtLeastOnce) {
                                tracing::error!(topic = %t, error = %e, "cannot subscribe to the commands: writes will not reach this plant");
                            }
                        }
                        match plant.births(now()) {
                            Ok(msgs) => {
                                publish(&client, &plant, &msgs);
                                born = true;
                                tracing::info!(group = %opts.edge.group, node = %opts.edge.node, bd_seq = plant.bd_seq(), "edge node born");
                            }
                            Err(e) => tracing::error!(error = %e, "cannot be born"),
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let device = if p.topic == ncmd {
                            None
                        } else if let Some(d) = p.topic.strip_prefix(&dcmd_prefix) {
                            Some(d.to_string())
                        } else {
                            continue;
                        };
                        match decode_command(device.as_deref(), &p.payload) {
                            Ok(cmd) => {
                                let out = plant.command(&cmd, now());
                                for w in &out.accepted {
                                    tracing::info!(device = %w.device, metric = %w.metric, value = %w.value, obeyed = w.obeyed, "write received");
                                }
                                for r in &out.refused {
                                    tracing::warn!(metric = ?r.metric, reason = ?r.reason, detail = %r.detail, "command refused");
                                }
                                publish(&client, &plant, &out.messages);
                            }
                            Err(e) => tracing::warn!(topic = %p.topic, error = %e, "not a command"),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(broker = %opts.endpoint, error = %e, "plant: broker connection lost");
                        break false;
                    }
                }
            }
        };
        if born {
            if let Some(death) = plant.death(now()) {
                if ended {
                    let _ = client.try_publish(
                        plant.topic(death.kind, None),
                        QoS::AtLeastOnce,
                        false,
                        encode(&death),
                    );
                }
            }
        }
        if ended {
            // The NDEATH and the DISCONNECT written, at most 1 s.
            let _ = client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while eventloop.poll().await.is_ok() {}
            })
            .await;
            return Ok(());
        }
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

fn publish(client: &AsyncClient, plant: &EdgePlant, msgs: &[EdgeMessage]) {
    for m in msgs {
        let topic = plant.topic(m.kind, m.device.as_deref());
        if let Err(e) = client.try_publish(topic, QoS::AtMostOnce, false, encode(m)) {
            tracing::warn!(error = %e, "plant: a message was dropped (the client's queue is full)");
        }
    }
}

/// `ctower plant`.
pub fn main(log: &str, a: crate::cli::PlantArgs) -> anyhow::Result<()> {
    crate::logs::init(log)?;
    let endpoint = BrokerEndpoint::from_url(&a.broker, None)?;
    let credentials = match (&a.user, &a.password_env) {
        (Some(u), Some(var)) => Some((
            u.clone(),
            std::env::var(var)
                .with_context(|| format!("environment variable `{var}` is not set"))?,
        )),
        (Some(u), None) => Some((u.clone(), String::new())),
        _ => None,
    };
    let rt = crate::pipeline::runtime()?;
    let (tx, rx) = watch::channel(false);
    rt.spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = tx.send(true);
    });
    tracing::info!(broker = %endpoint, group = %a.group, node = %a.node, obey = !a.ignore_commands, "simulated edge node");
    rt.block_on(run(
        PlantOptions {
            endpoint,
            credentials,
            edge: EdgeConfig {
                group: a.group,
                node: a.node,
                seed: a.seed,
            },
            obey: !a.ignore_commands,
            clock: ctower_model::Clock::system(),
        },
        rx,
    ))
}

/// The demo's live plant on the embedded broker, on the replay's event
/// clock (its recorded start, running at the replay's speed) so that its
/// site is in step with the replayed ones. Runs until `stop` fires or is
/// dropped.
pub fn start_demo_plant(
    rt: &tokio::runtime::Runtime,
    endpoint: BrokerEndpoint,
    group: String,
    recording: &std::path::Path,
    speed: f64,
    stop: watch::Receiver<bool>,
) {
    let first = ctower_model::ReplayReader::open(recording)
        .ok()
        .and_then(|mut r| r.next())
        .and_then(Result::ok)
        .map(|r| r.t_ms);
    let Some(first) = first else {
        tracing::warn!(recording = %recording.display(), "the demo's live plant needs the recording's start: not started");
        return;
    };
    let start = ctower_model::wall_ms();
    let clock = ctower_model::Clock::from_fn(move || {
        first + ((ctower_model::wall_ms() - start) as f64 * speed) as i64
    });
    rt.spawn(async move {
        let opts = PlantOptions {
            endpoint,
            credentials: None,
            edge: EdgeConfig {
                group,
                node: "utilities".into(),
                seed: 42,
            },
            obey: true,
            clock,
        };
        if let Err(e) = run(opts, stop).await {
            tracing::error!(error = %format!("{e:#}"), "the demo's live plant stopped");
        }
    });
}
