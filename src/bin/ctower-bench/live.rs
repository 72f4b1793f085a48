//! `ctower-bench live`: live ingest through a real Mosquitto at QoS 1,
//! ctower (manual acknowledgements, the raw journal on) against
//! `mosquitto_sub -q 1` on the same load, side by side in one run.
//!
//! The load is a backlog: the consumer's persistent session is made first
//! (a `mosquitto_sub -c -E` under its client id), the recording is
//! published into the broker at full speed, then the consumer is started
//! and timed until it has taken every message (`mosquitto_sub -C N`,
//! `ctower run --stop-after N`). Both drain the same queue of the same
//! broker, so the broker's own sending rate bounds both. CPU s are the
//! consumer process's (user + system, from the children's times). After
//! each run the broker's `$SYS/broker/publish/messages/dropped` is read: it
//! must stay 0.

use crate::procfs;
use anyhow::{bail, Context};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What `ctower-bench live` is given.
#[derive(clap::Args)]
pub struct LiveOptions {
    /// The recording published (e.g. `ctower simulate --plants 100 --hours 1`).
    #[arg(long)]
    pub recording: PathBuf,
    /// Rounds (each: mosquitto_sub, then ctower); the best of each is kept.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// The Mosquitto broker.
    #[arg(long, default_value = "/usr/sbin/mosquitto")]
    pub mosquitto: PathBuf,
    /// Timely workers of ctower.
    #[arg(short, long, default_value_t = 2)]
    pub workers: usize,
}

struct Run {
    wall_s: f64,
    cpu_s: f64,
    dropped: u64,
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A Mosquitto of its own: no persistence, unlimited queues, 1000 in
/// flight, `$SYS` every second.
pub(crate) struct Broker {
    child: std::process::Child,
    pub(crate) port: u16,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_broker(bin: &Path, dir: &Path) -> anyhow::Result<Broker> {
    let port = free_port()?;
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_queued_messages 0\nmax_inflight_messages 1000\nsys_interval 1\n"
        ),
    )?;
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let broker = Broker { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("mosquitto did not listen on {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(broker)
}

fn sub(port: u16) -> Command {
    let mut c = Command::new("mosquitto_sub");
    c.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    c
}

fn ok(c: &mut Command, what: &str) -> anyhow::Result<()> {
    let s = c.status().with_context(|| format!("running {what}"))?;
    if !s.success() {
        bail!("{what}: {s}");
    }
    Ok(())
}

/// The broker's dropped-message count.
fn dropped(port: u16) -> anyhow::Result<u64> {
    let out = sub(port)
        .args([
            "-C",
            "1",
            "-W",
            "5",
            "-t",
            "$SYS/broker/publish/messages/dropped",
        ])
        .output()
        .context("reading $SYS")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().with_context(|| {
        format!(
            "$SYS/broker/publish/messages/dropped: `{}` ({})",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

/// Makes `client_id`'s session, fills it with the recording, then times
/// `consumer` until it exits.
fn round(
    port: u16,
    ctower: &Path,
    recording: &Path,
    client_id: &str,
    consumer: &mut Command,
) -> anyhow::Result<Run> {
    ok(
        sub(port).args(["-q", "1", "-c", "-i", client_id, "-t", "acme/#", "-E"]),
        "mosquitto_sub -E (the session)",
    )?;
    ok(
        Command::new(ctower)
            .args(["--log", "warn", "replay"])
            .arg(recording)
            .args([
                "--broker",
                &format!("mqtt://127.0.0.1:{port}"),
                "--speed",
                "max",
            ]),
        "ctower replay",
    )?;
    let cpu0 = procfs::children_cpu_secs();
    let t0 = Instant::now();
    ok(consumer.stdout(Stdio::null()), "the consumer")?;
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_s = procfs::children_cpu_secs() - cpu0;
    // The session ends (a clean connection under its id), or the broker
    // would go on queueing the next rounds' messages for it.
    ok(
        sub(port).args(["-i", client_id, "-t", "acme/#", "-E"]),
        "mosquitto_sub -E (ending the session)",
    )?;
    // $SYS is published every second: the next one counts this run.
    std::thread::sleep(Duration::from_millis(1100));
    Ok(Run {
        wall_s,
        cpu_s,
        dropped: dropped(port)?,
    })
}

/// `configs/default.toml` with its `[[sources]]` replaced by one source,
/// `plant`, reading `acme/#` from the broker on `port` (under
/// `client_id` when given): what every bench's engine runs, each adding
/// its own sections.
pub(crate) fn default_with_source(port: u16, client_id: Option<&str>) -> anyhow::Result<String> {
    let text = std::fs::read_to_string("configs/default.toml").context("configs/default.toml")?;
    let at = text
        .find("[[sources]]")
        .context("a [[sources]] in default.toml")?;
    let end = text[at..].find("\n\n").map_or(text.len(), |e| e + at);
    let client_id = client_id.map_or(String::new(), |c| format!("client_id = \"{c}\"\n"));
    let sources = format!(
        "[[sources]]\nname = \"plant\"\nbroker_url = \"mqtt://127.0.0.1:{port}\"\n\
         {client_id}subscriptions = [\"acme/#\"]\n"
    );
    Ok(format!("{}{sources}{}", &text[..at], &text[end..]))
}

/// The ctower configuration: the default one, its source on the broker,
/// the raw journal on in `dir`.
fn config(port: u16, dir: &Path, client_id: &str) -> anyhow::Result<PathBuf> {
    let text = default_with_source(port, Some(client_id))?.replace(
        "[raw_journal]\nenabled = false",
        "[raw_journal]\nenabled = true",
    );
    let path = dir.join(format!("{client_id}.toml"));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Runs the comparison and prints its Markdown table.
pub fn live(o: &LiveOptions, ctower: &Path) -> anyhow::Result<()> {
    let n = ctower_model::ReplayReader::open(&o.recording)?.count() as u64;
    let tmp = std::env::temp_dir().join(format!("ctower-bench-live-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let broker = start_broker(&o.mosquitto, &tmp)?;
    let port = broker.port;
    let (mut subs, mut towers) = (Vec::new(), Vec::new());
    for r in 0..o.repeat.max(1) {
        let id = format!("bench-sub-{r}");
        let mut c = sub(port);
        c.args([
            "-q",
            "1",
            "-c",
            "-i",
            &id,
            "-t",
            "acme/#",
            "-C",
            &n.to_string(),
        ]);
        subs.push(round(port, ctower, &o.recording, &id, &mut c)?);
        eprintln!("round {r}: mosquitto_sub {:.2} s", subs[r].wall_s);

        let id = format!("ctower-bench-{r}");
        let dir = tmp.as_path().join(&id);
        std::fs::create_dir_all(&dir)?;
        let cfg = config(port, tmp.as_path(), &id)?;
        let mut c = Command::new(ctower);
        c.args(["--log", "warn", "run", "-w", &o.workers.to_string(), "-c"])
            .arg(&cfg)
            .args(["--stop-after", &n.to_string()])
            .env("CTOWER__JOURNAL__DIR", dir.join("journal"))
            .env("CTOWER__RAW_JOURNAL__DIR", dir.join("raw"))
            .env("CTOWER__DEAD_LETTERS__PATH", dir.join("dead.jsonl"));
        towers.push(round(port, ctower, &o.recording, &id, &mut c)?);
        eprintln!("round {r}: ctower {:.2} s", towers[r].wall_s);
        // Each round's raw journal is gone before the next.
        std::fs::remove_dir_all(&dir)?;
    }
    let best = |v: &[Run]| {
        v.iter()
            .min_by(|a, b| a.wall_s.total_cmp(&b.wall_s))
            .map(|r| (r.wall_s, r.cpu_s))
            .unwrap_or_default()
    };
    let (sw, sc) = best(&subs);
    let (tw, tc) = best(&towers);
    let dropped = subs
        .iter()
        .chain(&towers)
        .map(|r| r.dropped)
        .max()
        .unwrap_or(0);
    println!(
        "Live ingest, QoS 1, a backlog of {n} messages in Mosquitto, best of {}:\n",
        o.repeat.max(1)
    );
    println!("| consumer | wall s | msg/s | CPU s | × mosquitto_sub wall | × mosquitto_sub CPU |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| `mosquitto_sub -q 1` (to /dev/null) | {sw:.2} | {:.0} | {sc:.2} | 1.00 | 1.00 |",
        n as f64 / sw
    );
    println!(
        "| ctower, manual acks + raw journal (fsync per group), -w {} | {tw:.2} | {:.0} | {tc:.2} | {:.2} | {:.2} |",
        o.workers,
        n as f64 / tw,
        tw / sw,
        tc / sc.max(0.01)
    );
    println!(
        "\nBroker-side drops (`$SYS/broker/publish/messages/dropped`) after every run: {dropped}"
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
