//! Shared helpers: recordings, source harness, a Mosquitto process guard.

use ctower_collector::broker::EmbeddedBroker;
use ctower_collector::config::SourceConfig;
use ctower_collector::endpoint::{BrokerAddr, BrokerEndpoint};
use ctower_collector::mqtt::{run_source, SourceStats, SourceStatus};
use ctower_collector::replay::{publish_recording, Progress, PublishOptions, PublishStats, Speed};
use ctower_collector::{CollectorError, RawMessage};
use ctower_model::replay::{ReplayRecord, ReplayWriter};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Upper bound for any single wait; tests normally take a fraction of it.
pub const WAIT: Duration = Duration::from_secs(30);

pub use ctower_model::wall_ms;

pub async fn start_embedded() -> EmbeddedBroker {
    tokio::task::spawn_blocking(|| EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap()
        .expect("embedded broker starts")
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

const TOPICS: [&str; 4] = [
    "acme/lyon-fill/aseptic/fill-1/filler/state",
    "acme/lyon-fill/aseptic/fill-1/filler/count_total",
    "acme/lyon-fill/utilities/ro-1/skid/feed_m3",
    "acme/lyon-fill/utilities/ro-1/skid/conductivity_us_cm",
];

/// `n` records over four topics, 10 ms apart, JSON payloads with integer `ts`.
pub fn records(n: usize, qos: u8, tag: &str) -> Vec<ReplayRecord> {
    let t0 = 1_772_427_600_000i64;
    (0..n)
        .map(|i| {
            let t = t0 + 10 * i as i64;
            ReplayRecord {
                t_ms: t,
                topic: TOPICS[i % TOPICS.len()].to_string(),
                qos,
                retain: false,
                payload: format!(r#"{{"ts":{t},"value":{i},"tag":"{tag}"}}"#).into_bytes(),
            }
        })
        .collect()
}

pub fn write_recording(path: &Path, recs: &[ReplayRecord]) {
    let mut w = ReplayWriter::create(path).unwrap();
    for r in recs {
        w.write(r).unwrap();
    }
    w.finish().unwrap();
}

pub fn spec(name: &str, broker_url: &str) -> ctower_collector::Source {
    let cfg = SourceConfig {
        name: name.into(),
        broker_url: broker_url.into(),
        client_id: Some(format!("ctower-test-{name}")),
        subscriptions: vec!["#".into()],
        qos: Some(1),
        keep_alive_secs: Some(10),
        // rumqttd (the embedded broker these tests mostly use) closes a
        // connection subscribing to `$SYS`.
        watch_broker_drops: Some(false),
        ..Default::default()
    };
    let mut issues = vec![];
    let s = cfg.check("sources[0]", &|_| None, &mut issues);
    assert!(issues.is_empty(), "{issues:?}");
    let s = s.unwrap();
    if broker_url == "embedded" {
        assert_eq!(s.broker, BrokerAddr::Embedded);
    }
    s
}

/// A running `run_source` with its channel, status and stop switch.
pub struct Source {
    pub rx: mpsc::Receiver<RawMessage>,
    pub status: watch::Receiver<SourceStatus>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<SourceStats, CollectorError>>,
}

impl Source {
    /// Starts the source and waits until its subscriptions are acknowledged.
    pub async fn start(spec: ctower_collector::Source, embedded_port: Option<u16>) -> Source {
        let mut s = Source::spawn(spec, embedded_port);
        s.wait_status(|st| matches!(st, SourceStatus::Subscribed { connection: 1, .. }))
            .await;
        s
    }

    /// Starts the source without waiting for anything.
    pub fn spawn(spec: ctower_collector::Source, embedded_port: Option<u16>) -> Source {
        let (tx, rx) = mpsc::channel(1024);
        let (stop, stop_rx) = watch::channel(false);
        let (status_tx, status) = watch::channel(SourceStatus::Connecting);
        let task = tokio::spawn(run_source(
            7,
            spec,
            embedded_port.map(|port| BrokerEndpoint::new("127.0.0.1", port)),
            tx,
            ctower_model::Clock::system(),
            stop_rx,
            Some(status_tx),
            ctower_collector::delivery::SourceExtras::default(),
        ));
        Source {
            rx,
            status,
            stop,
            task,
        }
    }

    pub async fn wait_status(&mut self, pred: impl FnMut(&SourceStatus) -> bool) {
        let ok = tokio::time::timeout(WAIT, self.status.wait_for(pred))
            .await
            .map(|r| r.is_ok());
        match ok {
            Ok(true) => {}
            Ok(false) => panic!("the source ended; status {:?}", *self.status.borrow()),
            Err(_) => panic!("timed out; status {:?}", *self.status.borrow()),
        }
    }

    /// Receives exactly `n` messages (or panics after [`WAIT`]).
    pub async fn collect(&mut self, n: usize) -> Vec<RawMessage> {
        let mut out = Vec::with_capacity(n);
        let deadline = tokio::time::Instant::now() + WAIT;
        while out.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) => out.push(m),
                Ok(None) => panic!("source ended after {} of {n} messages", out.len()),
                Err(_) => panic!("timed out after {} of {n} messages", out.len()),
            }
        }
        out
    }

    pub async fn stop(self) -> SourceStats {
        self.stop.send_replace(true);
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("source stops")
            .unwrap()
            .expect("source ends without error")
    }
}

/// Publishes `recs` (written to a file in `dir`) at full speed; returns the
/// stats and the progress reports.
pub async fn publish_all(
    dir: &Path,
    name: &str,
    recs: &[ReplayRecord],
    port: u16,
) -> (PublishStats, Vec<Progress>) {
    let path: PathBuf = dir.join(format!("{name}.jsonl.gz"));
    write_recording(&path, recs);
    let mut opts = PublishOptions::new(format!("ctower-test-pub-{name}"));
    opts.speed = Speed::Max;
    let mut reports = vec![];
    let stats = tokio::time::timeout(
        WAIT,
        publish_recording(&path, &BrokerEndpoint::new("127.0.0.1", port), opts, |p| {
            reports.push(p)
        }),
    )
    .await
    .expect("publish finishes")
    .expect("publish succeeds");
    (stats, reports)
}

/// Publishes one message with a client of its own (packets up to 64 MiB)
/// and returns once the broker has acknowledged it (QoS 1).
pub async fn publish_one(port: u16, client_id: &str, topic: &str, payload: Vec<u8>) {
    use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
    let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
    o.set_max_packet_size(64 << 20, 64 << 20);
    let (client, mut eventloop) = AsyncClient::new(o, 10);
    client
        .publish(topic, QoS::AtLeastOnce, false, payload)
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::PubAck(_))) => break,
                Ok(_) => {}
                Err(e) => panic!("publishing to {topic}: {e}"),
            }
        }
    })
    .await
    .expect("the broker acknowledges the publish");
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(WAIT, eventloop.poll()).await;
}

/// Every record arrived once, in order, with identical topic and payload.
pub fn assert_same(got: &[RawMessage], want: &[ReplayRecord], source: usize) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.source, source);
        assert!(
            g.topic == w.topic && g.payload == w.payload,
            "message {i}: got {} {:?}, want {} {:?}",
            g.topic,
            String::from_utf8_lossy(&g.payload),
            w.topic,
            String::from_utf8_lossy(&w.payload)
        );
    }
}

/// A Mosquitto broker process on its own port, killed on drop.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts Mosquitto on `port` (a free one if `None`). It is found as
    /// every test finds it (`ctower_testkit::services`: `CTOWER_MOSQUITTO`,
    /// then `PATH` and the usual sbin directories); when it is missing the
    /// test skips loudly, or fails with how to install it under
    /// `CTOWER_REQUIRE_SERVICES=1`.
    pub fn start_or_skip(port: Option<u16>) -> Option<Mosquitto> {
        let bin = ctower_testkit::services::require(&ctower_testkit::services::MOSQUITTO)?;
        Some(Self::start(&bin, port.unwrap_or_else(free_port), &|_| {
            "allow_anonymous true\n".into()
        }))
    }

    /// [`Self::start_or_skip`] on a free port with the listener's (and the
    /// broker's) security settings that `security` writes: it is given the
    /// broker's own directory, to put its files in (readable by the user
    /// Mosquitto drops to when started as root), and returns the lines.
    pub fn start_secured_or_skip(security: &dyn Fn(&Path) -> String) -> Option<Mosquitto> {
        let bin = ctower_testkit::services::require(&ctower_testkit::services::MOSQUITTO)?;
        Some(Self::start(&bin, free_port(), security))
    }

    fn start(bin: &Path, port: u16, security: &dyn Fn(&Path) -> String) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let conf = dir.path().join("mosquitto.conf");
        // max_queued_messages 0 = unlimited (the default 1000 drops QoS 1
        // messages for a slow subscriber); max_inflight_messages 0 = unlimited.
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\n{}max_queued_messages 0\n\
                 max_inflight_messages 0\npersistence false\n",
                security(dir.path())
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("mosquitto.log")).unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("mosquitto starts");
        let mut m = Mosquitto { child, port, dir };
        m.wait_ready();
        m
    }

    /// Readiness: a TCP connect to the port succeeds (bounded retries).
    fn wait_ready(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mosquitto exited ({status}): {}", self.log());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto not ready on {addr}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
