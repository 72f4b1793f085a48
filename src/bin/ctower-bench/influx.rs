//! `ctower-bench influx`: a journal's lines written to VictoriaMetrics by
//! ctower's InfluxDB output (the outbox on disk, synced per append, then
//! the writer's batches of 5,000 lines through the `influxdb2` crate)
//! against VictoriaMetrics' own bulk import of the same file (`curl
//! --data-binary @FILE` to the same `/api/v2/write`), side by side in one
//! run, each into a fresh server. Figures: wall seconds until the server
//! has answered for every line, points (numeric fields) per second, the
//! CPU seconds of the writer (this process for ctower, curl for the bulk
//! import) and of the server.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What `ctower-bench influx` is given.
#[derive(clap::Args)]
pub struct InfluxOptions {
    /// A journal file (`ctower.lp`) whose lines are written.
    #[arg(long)]
    pub journal: PathBuf,
    /// Rounds (each: the bulk import, then ctower); the best of each is kept.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// The VictoriaMetrics binary.
    #[arg(long, default_value = "/usr/bin/victoria-metrics")]
    pub victoria_metrics: PathBuf,
}

struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh directory under the system's temporary one.
fn scratch(what: &str) -> anyhow::Result<PathBuf> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ctower-bench-{what}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `GET /health` answered `OK`.
fn healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut answer = String::new();
    c.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_ok()
        && c.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.")
        && answer.split_whitespace().nth(1) == Some("200")
}

impl Server {
    fn start(bin: &Path) -> anyhow::Result<Server> {
        let dir = scratch("vm")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(bin)
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", dir.display()))
            .args(["-retentionPeriod=100y", "-loggerLevel=ERROR"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let s = Server { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if healthy(port) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                bail!("victoria-metrics did not answer on {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's CPU seconds so far (user + system).
    fn cpu_secs(&self) -> f64 {
        let Ok(s) = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())) else {
            return 0.0;
        };
        let fields: Vec<&str> = s
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let tick = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok());
        (tick(14).unwrap_or(0.0) + tick(15).unwrap_or(0.0)) / 100.0
    }
}

#[derive(Clone, Copy)]
struct Run {
    wall_s: f64,
    writer_cpu_s: f64,
    server_cpu_s: f64,
}

/// Numeric fields of the lines: the points a server stores.
fn points(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| {
            let fields = l.split(' ').rev().nth(1)?;
            Some(fields.split(',').filter(|f| !f.contains("=\"")).count() as u64)
        })
        .sum()
}

fn bulk(bin: &Path, journal: &Path) -> anyhow::Result<Run> {
    let server = Server::start(bin)?;
    let (cpu0, s0) = (crate::procfs::children_cpu_secs(), server.cpu_secs());
    let t = Instant::now();
    let status = Command::new("curl")
        .args(["-sS", "-f", "--data-binary"])
        .arg(format!("@{}", journal.display()))
        .arg(format!(
            "{}/api/v2/write?org=bench&bucket=bench&precision=ns",
            server.url()
        ))
        .status()
        .context("running curl")?;
    if !status.success() {
        bail!("curl: {status}");
    }
    Ok(Run {
        wall_s: t.elapsed().as_secs_f64(),
        writer_cpu_s: crate::procfs::children_cpu_secs() - cpu0,
        server_cpu_s: server.cpu_secs() - s0,
    })
}

fn ctower_run(bin: &Path, lines: &[String]) -> anyhow::Result<Run> {
    let server = Server::start(bin)?;
    let dir = scratch("outbox")?;
    let rules = ctower::influx::InfluxRules {
        url: server.url(),
        org: "bench".into(),
        bucket: "bench".into(),
        token: None,
        token_key: "influx.token_env",
        batch_lines: ctower::influx::MAX_BATCH_LINES,
        flush: Duration::from_millis(100),
        timeout: Duration::from_secs(30),
        retry_max: Duration::from_secs(5),
        outbox: ctower_outbox::OutboxRules {
            name: ctower::influx::OUTBOX_NAME.into(),
            lost_hint: ctower::influx::OUTBOX_LOST_HINT.into(),
            dir: dir.join("outbox"),
            segment_bytes: 16 << 20,
            budget_bytes: 4 << 30,
        },
        dead_letters: dir.join("dead.jsonl"),
    };
    let (cpu0, s0) = (crate::procfs::cpu_secs(), server.cpu_secs());
    let t = Instant::now();
    let influx = ctower::influx::Influx::start(&rules)?;
    // Appended as the output stage would: a window's lines at a time.
    for chunk in lines.chunks(1000) {
        influx
            .outbox()
            .append(chunk, 0)
            .context("appending to the outbox")?;
    }
    let left = influx.finish(Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&dir);
    if left > 0 {
        bail!("{left} lines not written");
    }
    Ok(Run {
        wall_s: t.elapsed().as_secs_f64(),
        writer_cpu_s: crate::procfs::cpu_secs() - cpu0,
        server_cpu_s: server.cpu_secs() - s0,
    })
}

/// Runs the comparison and prints a Markdown table.
pub fn influx(o: &InfluxOptions) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&o.journal)
        .with_context(|| format!("reading {}", o.journal.display()))?;
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n_points = points(&text);
    let (mut b, mut c) = (Vec::new(), Vec::new());
    for round in 1..=o.repeat.max(1) {
        b.push(bulk(&o.victoria_metrics, &o.journal)?);
        c.push(ctower_run(&o.victoria_metrics, &lines)?);
        eprintln!("round {round}: done");
    }
    let best = |runs: &[Run], f: fn(&Run) -> f64| runs.iter().map(f).fold(f64::MAX, f64::min);
    println!(
        "{} lines, {} numeric points, {:.1} MiB; best of {} rounds, each into a fresh server\n",
        lines.len(),
        n_points,
        text.len() as f64 / (1 << 20) as f64,
        o.repeat.max(1)
    );
    println!("| writer | wall s | points/s | writer CPU s | server CPU s |");
    println!("|---|---:|---:|---:|---:|");
    for (name, runs) in [
        (
            "VictoriaMetrics bulk import (`curl --data-binary`, one request)",
            &b,
        ),
        (
            "ctower InfluxDB output (outbox synced per 1,000 lines, batches of 5,000)",
            &c,
        ),
    ] {
        let wall = best(runs, |r| r.wall_s);
        println!(
            "| {name} | {wall:.2} | {:.0} | {:.2} | {:.2} |",
            n_points as f64 / wall,
            best(runs, |r| r.writer_cpu_s),
            best(runs, |r| r.server_cpu_s)
        );
    }
    let (bw, cw) = (best(&b, |r| r.wall_s), best(&c, |r| r.wall_s));
    println!(
        "\nctower / bulk import: {:.2}× the wall time ({:.0} % of the bulk import's points/s)",
        cw / bw,
        100.0 * bw / cw
    );
    Ok(())
}
