//! The dashboard's costs:
//!
//! - `dashboard-frames`: time to draw one frame of the fleet view with
//!   100 sites and of the site view with 50 lines (full-shift trends), at
//!   160×48 and 80×24, beside two floors drawn the same way: an empty frame
//!   (ratatui's diff and flush alone) and a full screen of plain text;
//! - `dashboard-feed`: a running engine (`ctower run`, Mosquitto) replays a
//!   recording; the bytes per second of its feed to one subscriber of
//!   `<prefix>/board/#`, beside the telemetry's own bytes per second on the
//!   same broker; and the CPU of an attached viewer (`ctower tui` in tmux)
//!   during the replay and idle after it, from /proc.

use crate::live::start_broker;
use anyhow::{bail, Context};
use ctower_model::board::{
    alarm_key, BoardHealth, BoardMessage, BoardTopic, EngineStatus, LineBoard, Now, SiteBoard,
    SiteTrend, SoFar, TrendPoint, BOARD_VERSION,
};
use ctower_model::kpi::{KpiRatios, KpiSums};
use ctower_model::{AlarmEvent, AlarmEventKind, AlarmState, AssetKey, Level, Priority};
use ctower_tui::{render, App, LinkState, Theme};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::widgets::Paragraph;
use ratatui::Terminal;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What `ctower-bench dashboard-frames` is given.
#[derive(clap::Args)]
pub struct FrameOptions {
    /// Sites of the fleet.
    #[arg(long, default_value_t = 100)]
    pub sites: usize,
    /// Lines of the site shown.
    #[arg(long, default_value_t = 50)]
    pub lines: usize,
    /// Frames drawn per case (after 20 unmeasured).
    #[arg(long, default_value_t = 500)]
    pub frames: usize,
}

/// What `ctower-bench dashboard-feed` is given.
#[derive(clap::Args)]
pub struct FeedOptions {
    /// The recording replayed (e.g. 100 simulated plants).
    #[arg(long)]
    pub load: PathBuf,
    /// Its replay speed.
    #[arg(long, default_value = "10")]
    pub load_speed: String,
    /// Seconds measured during the replay.
    #[arg(long, default_value_t = 60)]
    pub secs: u64,
    /// Seconds measured idle, after the replay stopped.
    #[arg(long, default_value_t = 60)]
    pub idle_secs: u64,
    /// Seconds between the replay's end and the idle measurement (the
    /// engine works off what it still holds).
    #[arg(long, default_value_t = 60)]
    pub settle_secs: u64,
    /// The Mosquitto broker.
    #[arg(long, default_value = "/usr/sbin/mosquitto")]
    pub mosquitto: PathBuf,
    /// tmux, for the attached viewer's terminal.
    #[arg(long, default_value = "/usr/bin/tmux")]
    pub tmux: PathBuf,
}

const MIN: i64 = 60_000;
const T0: i64 = 1_772_430_000_000;

fn msg<T: serde::Serialize>(topic: BoardTopic, v: &T) -> anyhow::Result<BoardMessage> {
    Ok(BoardMessage {
        topic,
        payload: Some(serde_json::to_vec(v)?),
    })
}

fn sums(i: usize) -> KpiSums {
    let stop = (i % 7) as i64 * 5;
    KpiSums {
        running_ms: (400 - stop) * MIN,
        unplanned_stop_ms: stop * MIN,
        unplanned_stop_by_reason_ms: [
            ("jam".into(), stop * MIN / 2),
            ("no material".into(), stop * MIN / 2),
        ]
        .into_iter()
        .collect(),
        produced: Some(20_000 + i as u64),
        good: Some(19_800),
        ideal_time_ms: 18_000_000.0,
        energy_kwh: Some(1_600.0),
        energy_measured_ms: 400 * MIN,
        ..Default::default()
    }
}

fn so_far(s: KpiSums) -> SoFar {
    SoFar {
        production_day: Some("2026-03-02".into()),
        shift: Some("early".into()),
        start_ms: T0 - 400 * MIN,
        end_ms: T0,
        windows: 400,
        corrected: 0,
        from_start: true,
        ratios: KpiRatios::from_sums(&s, 400 * MIN),
        sums: s,
        expected_kwh: Some(1_500.0),
    }
}

fn points(n: usize, seed: f64) -> Vec<TrendPoint> {
    (0..n)
        .map(|i| {
            let x = (i as f64 * 0.3 + seed).sin();
            TrendPoint {
                end_ms: T0 - (n - i) as i64 * MIN + MIN,
                oee: Some(0.7 + 0.1 * x),
                kw: Some(200.0 + 30.0 * x),
                kwh: Some(3.3),
                recovery: Some(0.8),
                conductivity_max: Some(0.9 + 0.2 * x),
                toc_max: Some(200.0),
                coverage: Some(1.0),
            }
        })
        .collect()
}

/// A viewer's state: `sites` sites with full 400-window shift trends, the
/// first one with `lines` lines, 40 alarms, health; as the feed brings it.
fn state(sites: usize, lines: usize) -> anyhow::Result<App> {
    let mut app = App::new("ctower", "bench").attached("mqtt://bench", 1_600);
    app.set_link(LinkState::Up);
    let status = EngineStatus {
        version: BOARD_VERSION,
        online: true,
        ts_ms: T0,
        engine: "bench".into(),
        window_ms: MIN,
        freshness_ms: 3 * MIN,
        conductivity_limit_us_cm: 1.3,
        toc_limit_ppb: 500.0,
        commands: true,
    };
    app.apply(&msg(BoardTopic::Status, &status)?, T0);
    app.apply(&msg(BoardTopic::Health, &BoardHealth::default())?, T0);
    for i in 0..sites {
        let name = format!("site-{i:03}");
        let pts = points(400, i as f64);
        let board = SiteBoard {
            published_ms: T0,
            site: name.as_str().into(),
            now: Now {
                end_ms: T0,
                kw: Some(200.0),
                oee: Some(0.7),
                coverage: Some(1.0),
                revision: 0,
            },
            shift: Some(so_far(sums(i))),
            day: Some(so_far(sums(i))),
            recent: pts[pts.len() - 16..].to_vec(),
            lines: Vec::new(),
            baseline_kwh_per_unit: Some(0.08),
        };
        app.apply(&msg(BoardTopic::Site(name.as_str().into()), &board)?, T0);
        let trend = SiteTrend {
            published_ms: T0,
            site: name.as_str().into(),
            shift: pts,
            day_oee: Vec::new(),
            days: Vec::new(),
        };
        app.apply(&msg(BoardTopic::Trend(name.as_str().into()), &trend)?, T0);
        let n_lines = if i == 0 { lines } else { 3 };
        for l in 0..n_lines {
            let line = format!("line-{l:02}");
            let board = LineBoard {
                published_ms: T0,
                scope: AssetKey::new(&name, "pack", &line, "-").scope(Level::Line),
                now: Now::default(),
                shift: Some(so_far(sums(l))),
                timeline_start_ms: T0 - 400 * MIN,
                step_ms: MIN,
                timeline: "RRRRRRRRSSmRRRRRRC".repeat(22),
                ideal_rate_per_h: Some(4_000.0),
                assets: 3,
            };
            let topic = BoardTopic::Line(name.as_str().into(), "pack".into(), line.as_str().into());
            app.apply(&msg(topic, &board)?, T0);
        }
    }
    for k in 0..40 {
        let ev = AlarmEvent {
            ts_ms: T0 - k * 1000,
            rule: format!("rule-{k}").into(),
            scope: AssetKey::new(&format!("site-{:03}", k % 7), "pack", "line-00", "-")
                .scope(Level::Line),
            signal: None,
            kind: AlarmEventKind::Raised,
            state: AlarmState::UnackActive,
            priority: [
                Priority::Urgent,
                Priority::High,
                Priority::Medium,
                Priority::Low,
            ][k as usize % 4],
            metric: "oee".into(),
            value: Some(0.4),
            threshold: 0.6,
            message: "OEE below 60 %".into(),
        };
        app.apply(&msg(BoardTopic::Alarm(alarm_key(&ev.id())), &ev)?, T0);
    }
    Ok(app)
}

fn timed(frames: usize, mut draw: impl FnMut()) -> (f64, f64) {
    for _ in 0..20 {
        draw();
    }
    let mut xs = Vec::with_capacity(frames);
    for _ in 0..frames {
        let t = Instant::now();
        draw();
        xs.push(t.elapsed().as_secs_f64() * 1e6);
    }
    xs.sort_by(f64::total_cmp);
    let mean = xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let p99 = xs[((xs.len() as f64 - 1.0) * 0.99).round() as usize];
    (mean, p99)
}

/// Runs `dashboard-frames` and prints a Markdown table.
pub fn frames(o: &FrameOptions) -> anyhow::Result<()> {
    let app = state(o.sites, o.lines)?;
    let cpu0 = crate::procfs::cpu_secs();
    let started = Instant::now();
    println!(
        "| frame ({} sites, {} lines, {} frames each) | size | mean µs | p99 µs | × empty frame | × text screen |",
        o.sites, o.lines, o.frames
    );
    println!("|---|---|---|---|---|---|");
    for (w, h) in [(160u16, 48u16), (80, 24)] {
        let mut term = Terminal::new(TestBackend::new(w, h))?;
        // Each frame differs from the last (the clock ticks), as live.
        let mut tick = 0i64;
        let (empty, _) = timed(o.frames, || {
            let _ = term.draw(|_| {});
        });
        let text: String = "x".repeat(usize::from(w) * usize::from(h));
        let (plain, _) = timed(o.frames, || {
            tick += 1;
            let t = if tick % 2 == 0 {
                text.clone()
            } else {
                text.replace('x', "y")
            };
            let _ = term.draw(|f| {
                f.render_widget(
                    Paragraph::new(t).wrap(ratatui::widgets::Wrap { trim: false }),
                    f.area(),
                )
            });
        });
        println!("| floor: empty frame | {w}×{h} | {empty:.0} | — | 1.0 | — |");
        println!(
            "| floor: a screen of plain text | {w}×{h} | {plain:.0} | — | {:.1} | 1.0 |",
            plain / empty
        );
        for (name, keys) in [
            ("fleet view", vec![]),
            ("site view", vec![KeyCode::Enter]),
            ("line view", vec![KeyCode::Enter, KeyCode::Enter]),
            (
                "alarm console (40 alarms)",
                vec![KeyCode::Char('6'), KeyCode::Down],
            ),
        ] {
            let mut a = app.clone();
            a.set_screen(Rect::new(0, 0, w, h));
            for k in keys {
                a.on_key(KeyEvent::new(k, KeyModifiers::NONE), T0);
            }
            let (mean, p99) = timed(o.frames, || {
                tick += 1;
                let now = T0 + tick;
                let _ = term.draw(|f| render(f, &a, now, Theme { mono: false }));
            });
            println!(
                "| {name} | {w}×{h} | {mean:.0} | {p99:.0} | {:.1} | {:.1} |",
                mean / empty,
                mean / plain
            );
        }
    }
    println!(
        "\n{:.2} CPU s over {:.2} s wall",
        crate::procfs::cpu_secs() - cpu0,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// CPU seconds (user + system) of process `pid`, from /proc.
fn pid_cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("/proc/{pid}/stat"))?;
    let rest = s.rsplit_once(')').map(|(_, r)| r).context("stat format")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((ticks(14) + ticks(15)) as f64 / 100.0)
}

/// Bytes and messages of one kind of topic.
type Counts = std::collections::BTreeMap<String, (u64, u64)>;

/// Bytes of MQTT PUBLISH packets (fixed header, topic, packet id, payload)
/// received on `filter` during `secs`: in all, and by the topic's kind
/// (the level after `board/`).
async fn count_bytes(
    port: u16,
    filter: &str,
    id: &str,
    secs: u64,
) -> anyhow::Result<(u64, u64, Counts)> {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(4 << 20, 64 << 10);
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    client.subscribe(filter, QoS::AtLeastOnce).await?;
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    let (mut bytes, mut msgs) = (0u64, 0u64);
    let mut kinds = Counts::new();
    while let Ok(r) = tokio::time::timeout_at(until, eventloop.poll()).await {
        if let Event::Incoming(Packet::Publish(p)) = r? {
            let body =
                2 + p.topic.len() + p.payload.len() + if p.qos == QoS::AtMostOnce { 0 } else { 2 };
            // Fixed header: 1 byte and the remaining length's bytes.
            let len_bytes = match body {
                0..=127 => 1,
                128..=16_383 => 2,
                16_384..=2_097_151 => 3,
                _ => 4,
            };
            let n = (1 + len_bytes + body) as u64;
            bytes += n;
            msgs += 1;
            let kind = p.topic.split('/').nth(2).unwrap_or("other").to_string();
            let k = kinds.entry(kind).or_default();
            k.0 += n;
            k.1 += 1;
        }
    }
    Ok((bytes, msgs, kinds))
}

/// Runs `dashboard-feed` and prints a Markdown table.
pub fn feed(o: &FeedOptions, ctower: &Path) -> anyhow::Result<()> {
    let scratch = crate::Scratch::new()?;
    let dir = scratch.0.as_path();
    let broker = start_broker(&o.mosquitto, dir)?;
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let text = format!(
        "{}\n[commands]\nbroker_url = \"{url}\"\n\n[[commands.users]]\nname = \"bench\"\n",
        crate::live::default_with_source(broker.port, None)?
    );
    let config = dir.join("feed.toml");
    std::fs::write(&config, text)?;
    let mut engine = Command::new(ctower)
        .args(["--log", "warn", "run", "-w", "2", "-c"])
        .arg(&config)
        .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
        .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ctower run")?;
    // The viewer, in a terminal of its own.
    let socket = dir.join("tmux.sock");
    let tmux = |args: &[&str]| {
        Command::new(&o.tmux)
            .env_remove("TMUX")
            .arg("-S")
            .arg(&socket)
            .args(args)
            .output()
    };
    let script = format!(
        "exec '{}' tui --broker '{url}' --user bench --log-file '{}'",
        ctower.display(),
        dir.join("tui.log").display()
    );
    let made = tmux(&[
        "new-session",
        "-d",
        "-s",
        "v",
        "-x",
        "160",
        "-y",
        "48",
        &script,
    ])?;
    if !made.status.success() {
        bail!("tmux: {}", String::from_utf8_lossy(&made.stderr));
    }
    let pid: u32 =
        String::from_utf8_lossy(&tmux(&["display", "-p", "-t", "v", "#{pane_pid}"])?.stdout)
            .trim()
            .parse()
            .context("the viewer's pid")?;
    // Until the engine's heartbeat reaches the viewer.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let screen =
            String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "v"])?.stdout).to_string();
        if screen.contains("Waiting for the first closed window") {
            break;
        }
        if Instant::now() > deadline {
            bail!("the viewer never saw the engine:\n{screen}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut load = Command::new(ctower)
        .args(["--log", "warn", "replay"])
        .arg(&o.load)
        .args(["--broker", &url, "--speed", &o.load_speed, "--now"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the replay")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let viewer0 = pid_cpu_secs(pid)?;
    let t0 = Instant::now();
    let (board, telemetry) = rt.block_on(async {
        tokio::join!(
            count_bytes(broker.port, "ctower/board/#", "bench-board", o.secs),
            count_bytes(broker.port, "acme/#", "bench-telemetry", o.secs),
        )
    });
    let busy_secs = t0.elapsed().as_secs_f64();
    let viewer_busy = pid_cpu_secs(pid)? - viewer0;
    let _ = load.kill();
    let _ = load.wait();
    // Idle: the engine up, no telemetry; the viewer only redraws its ages.
    std::thread::sleep(Duration::from_secs(o.settle_secs));
    let viewer1 = pid_cpu_secs(pid)?;
    let t1 = Instant::now();
    let (idle_board, _, idle_kinds) = rt.block_on(count_bytes(
        broker.port,
        "ctower/board/#",
        "bench-idle",
        o.idle_secs,
    ))?;
    let idle_secs = t1.elapsed().as_secs_f64();
    let viewer_idle = pid_cpu_secs(pid)? - viewer1;
    let screen =
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "v"])?.stdout).to_string();
    let _ = tmux(&["kill-server"]);
    let _ = engine.kill();
    let _ = engine.wait();
    let (board, board_msgs, kinds) = board?;
    let (telemetry, telemetry_msgs, _) = telemetry?;
    println!(
        "| {} s of `{}` at {}× | bytes/s | messages/s | × telemetry |",
        o.secs,
        o.load.display(),
        o.load_speed
    );
    println!("|---|---|---|---|");
    println!(
        "| telemetry into the broker (`acme/#`, the input) | {:.0} | {:.0} | 1.00 |",
        telemetry as f64 / busy_secs,
        telemetry_msgs as f64 / busy_secs
    );
    let lines = |k: &Counts| k.get("line").copied().unwrap_or_default();
    let (fleet, fleet_msgs) = (board - lines(&kinds).0, board_msgs - lines(&kinds).1);
    println!(
        "| to a viewer on the fleet (the feed but `board/line`) | {:.0} | {:.0} | {:.3} |",
        fleet as f64 / busy_secs,
        fleet_msgs as f64 / busy_secs,
        fleet as f64 / telemetry.max(1) as f64
    );
    println!(
        "| the whole feed (`ctower/board/#`; a site view adds its site's lines only) | {:.0} | {:.0} | {:.3} |",
        board as f64 / busy_secs,
        board_msgs as f64 / busy_secs,
        board as f64 / telemetry.max(1) as f64
    );
    println!(
        "| engine idle ({} s, {} s after the replay): fleet viewer / whole feed | {:.0} / {:.0} | — | — |",
        o.idle_secs,
        o.settle_secs,
        (idle_board - lines(&idle_kinds).0) as f64 / idle_secs,
        idle_board as f64 / idle_secs
    );
    for (label, k, secs) in [
        ("replay", &kinds, busy_secs),
        ("idle", &idle_kinds, idle_secs),
    ] {
        for (kind, (b, m)) in k {
            println!(
                "| · {label}: `board/{kind}` | {:.0} | {:.1} | — |",
                *b as f64 / secs,
                *m as f64 / secs
            );
        }
    }
    println!();
    println!(
        "| attached viewer (`ctower tui`, 160×48, tmux) | CPU s | wall s | share of one core |"
    );
    println!("|---|---|---|---|");
    println!(
        "| during the replay | {viewer_busy:.2} | {busy_secs:.1} | {:.2} % |",
        viewer_busy / busy_secs * 100.0
    );
    println!(
        "| idle (engine up, no telemetry) | {viewer_idle:.2} | {idle_secs:.1} | {:.2} % |",
        viewer_idle / idle_secs * 100.0
    );
    println!("\nthe viewer's last screen:\n```\n{screen}```");
    Ok(())
}
