//! `ctower-bench alarm-latency`: how long from a sample's publish to the
//! webhook that reports its process alarm, through a real Mosquitto and a
//! running `ctower run`, while a recording is replayed as background load;
//! beside the floor, the same publish to a plain MQTT subscriber (rumqttc)
//! on the same broker.
//!
//! Each probe publishes one conductivity sample above the USP limit for an
//! asset of its own (so no alarm chatters), stamped now, and waits for the
//! `alarm.raised` webhook of that asset; then one below it, for the
//! `alarm.cleared`. The receiver is an HTTP server in this process (a
//! thread, answering 204 at once).

use crate::live::start_broker;
use anyhow::{bail, Context};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What `ctower-bench alarm-latency` is given.
#[derive(clap::Args)]
pub struct LatencyOptions {
    /// Probes (each one raise and one clear).
    #[arg(long, default_value_t = 50)]
    pub probes: usize,
    /// Background load: this recording replayed into the broker meanwhile.
    #[arg(long)]
    pub load: Option<PathBuf>,
    /// Its replay speed.
    #[arg(long, default_value = "10")]
    pub load_speed: String,
    /// The Mosquitto broker.
    #[arg(long, default_value = "/usr/sbin/mosquitto")]
    pub mosquitto: PathBuf,
}

/// Webhook bodies as they arrive, with their arrival time.
fn receiver() -> anyhow::Result<(u16, mpsc::Receiver<(Instant, serde_json::Value)>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut s = stream;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = s.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    let at = Instant::now();
                    let body: serde_json::Value =
                        serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap_or_default();
                    let _ = s.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
                    let _ = tx.send((at, body));
                    buf.drain(..end + 4 + len);
                }
            });
        }
    });
    Ok((port, rx))
}

fn percentile(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    let i = ((xs.len() as f64 - 1.0) * p).round() as usize;
    xs.get(i).copied().unwrap_or(f64::NAN)
}

/// Runs the benchmark and prints a Markdown table.
pub fn alarm_latency(o: &LatencyOptions, ctower: &std::path::Path) -> anyhow::Result<()> {
    let scratch = crate::Scratch::new()?;
    let dir = &scratch.0;
    let broker = start_broker(&o.mosquitto, dir.as_path())?;
    let (hook_port, hooks) = receiver()?;
    let config = dir.as_path().join("latency.toml");
    let text = format!(
        "{}\n[[alerts.hooks]]\nkind = \"webhook\"\nname = \"bench\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\nmin_priority = \"urgent\"\nrules = [\"pw-conductivity-usp\"]\n",
        crate::live::default_with_source(broker.port, None)?
    );
    std::fs::write(&config, text)?;
    let mut engine = Command::new(ctower)
        .args(["--log", "warn", "run", "-w", "2", "-c"])
        .arg(&config)
        .env("CTOWER__JOURNAL__DIR", dir.as_path().join("journal"))
        .env(
            "CTOWER__DEAD_LETTERS__PATH",
            dir.as_path().join("dead.jsonl"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ctower run")?;
    let mut load = match &o.load {
        Some(rec) => Some(
            Command::new(ctower)
                .args(["--log", "warn", "replay"])
                .arg(rec)
                .args(["--broker", &format!("mqtt://127.0.0.1:{}", broker.port)])
                .args(["--speed", &o.load_speed, "--now", "--loop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting the load replay")?,
        ),
        None => None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(probe(o.probes, broker.port, &hooks));
    let _ = engine.kill();
    let _ = engine.wait();
    if let Some(l) = load.as_mut() {
        let _ = l.kill();
        let _ = l.wait();
    }
    let (mut floor, mut raise, mut clear) = result?;
    println!("| path ({} probes) | p50 ms | p95 ms | max ms |", o.probes);
    println!("|---|---|---|---|");
    for (name, xs) in [
        (
            "MQTT floor: publish → plain subscriber (rumqttc)",
            &mut floor,
        ),
        ("publish → `alarm.raised` webhook received", &mut raise),
        ("publish → `alarm.cleared` webhook received", &mut clear),
    ] {
        let max = xs.iter().copied().fold(f64::NAN, f64::max);
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            percentile(xs, 0.5),
            percentile(xs, 0.95),
            max
        );
    }
    Ok(())
}

type Samples = (Vec<f64>, Vec<f64>, Vec<f64>);

/// Polls the client's event loop for `d` (its publishes go out).
async fn drive(eventloop: &mut rumqttc::EventLoop, d: Duration) -> anyhow::Result<()> {
    let until = tokio::time::Instant::now() + d;
    while let Ok(r) = tokio::time::timeout_at(until, eventloop.poll()).await {
        r?;
    }
    Ok(())
}

async fn probe(
    probes: usize,
    port: u16,
    hooks: &mpsc::Receiver<(Instant, serde_json::Value)>,
) -> anyhow::Result<Samples> {
    let mut opts = MqttOptions::new("ctower-bench-latency", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let floor_topic = "bench/floor".to_string();
    client.subscribe(&floor_topic, QoS::AtLeastOnce).await?;
    // Until subscribed.
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = eventloop.poll().await? {
            break;
        }
    }
    let wait_for = |kind: &str, line: &str, within: Duration| -> Option<Instant> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match hooks.recv_timeout(left) {
                Ok((at, body))
                    if body["type"] == kind
                        && body["data"]["scope"]["line"].as_str() == Some(line) =>
                {
                    return Some(at)
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    };
    // Event times strictly increase per signal (a sample not newer than
    // the last one of its alarm is a duplicate, and ignored): in release
    // builds a raise and its clear can fall within one millisecond.
    let last_ts = std::cell::Cell::new(0i64);
    let sample = |asset: &str, value: f64| {
        let ts = ctower_model::wall_ms().max(last_ts.get() + 1);
        last_ts.set(ts);
        let topic = format!("acme/bench-site/utilities/{asset}/skid/conductivity_us_cm");
        let payload = format!("{{\"ts\":{ts},\"value\":{value}}}");
        (topic, payload)
    };
    // Warm-up: until the engine is subscribed and its hook answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut k = 0;
    loop {
        let asset = format!("warm-{k}");
        let (topic, payload) = sample(&asset, 1.45);
        client
            .publish(&topic, QoS::AtLeastOnce, false, payload)
            .await?;
        drive(&mut eventloop, Duration::from_millis(300)).await?;
        if wait_for("alarm.raised", &asset, Duration::from_millis(200)).is_some() {
            let (topic, payload) = sample(&asset, 0.5);
            client
                .publish(&topic, QoS::AtLeastOnce, false, payload)
                .await?;
            drive(&mut eventloop, Duration::from_millis(100)).await?;
            let _ = wait_for("alarm.cleared", &asset, Duration::from_secs(5));
            break;
        }
        if Instant::now() > deadline {
            bail!("the engine never reported a warm-up alarm");
        }
        k += 1;
    }
    let (mut floor, mut raise, mut clear) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..probes {
        let asset = format!("probe-{i}");
        for (value, kind) in [(1.45, "alarm.raised"), (0.5, "alarm.cleared")] {
            let (topic, payload) = sample(&asset, value);
            let sent = Instant::now();
            client
                .publish(&topic, QoS::AtLeastOnce, false, payload.clone())
                .await?;
            client
                .publish(&floor_topic, QoS::AtLeastOnce, false, payload)
                .await?;
            // Drive the client until the floor copy is back.
            loop {
                if let Event::Incoming(Packet::Publish(p)) = eventloop.poll().await? {
                    if p.topic == floor_topic {
                        floor.push(sent.elapsed().as_secs_f64() * 1e3);
                        break;
                    }
                }
            }
            let at = wait_for(kind, &asset, Duration::from_secs(10))
                .with_context(|| format!("probe {i}: no {kind} webhook within 10 s"))?;
            let ms = at.duration_since(sent).as_secs_f64() * 1e3;
            if kind == "alarm.raised" {
                raise.push(ms);
            } else {
                clear.push(ms);
            }
        }
    }
    Ok((floor, raise, clear))
}
