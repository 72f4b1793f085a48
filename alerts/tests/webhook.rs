//! Webhook delivery against a real HTTP server on 127.0.0.1 (std
//! `TcpListener` and a small hand parser). Synchronisation by channels and
//! joins only; the timeouts below are safety nets for a broken build.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

use base64::Engine as _;
use ctower_alerts::{AlertsConfig, DispatcherOptions, Hook, HookDispatcher, HookStats, Secrets};
use ctower_model::{AlarmEvent, AlarmEventKind, AlarmState, AssetKey, Level, Priority};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

const SAFETY: Duration = Duration::from_secs(20);
const SECRET_B64: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW_SECS: i64 = 1_700_000_000;

#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn read_request(stream: &mut TcpStream) -> io::Result<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(bad("connection closed in the head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let mut first = lines
        .next()
        .ok_or_else(|| bad("no request line"))?
        .split(' ');
    let method = first.next().ok_or_else(|| bad("no method"))?.to_string();
    let path = first.next().ok_or_else(|| bad("no path"))?.to_string();
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line.split_once(':').ok_or_else(|| bad("bad header"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .ok_or_else(|| bad("no content-length"))?
        .1
        .parse()
        .map_err(|_| bad("bad content-length"))?;
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(bad("connection closed in the body"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8(body).map_err(|_| bad("body not UTF-8"))?;
    Ok(Request {
        method,
        path,
        headers,
        body,
    })
}

struct Server {
    url: String,
    requests: mpsc::Receiver<Request>,
    /// Tells the server the client is done; it then counts pending extra connections.
    finished: mpsc::Sender<()>,
    thread: JoinHandle<io::Result<usize>>,
}

impl Server {
    /// Answers one request per status in `statuses`, in order. With a
    /// `gate`, the first answer waits for a message on it.
    fn start(statuses: Vec<u16>, gate: Option<mpsc::Receiver<()>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!(
            "http://{}/hooks/ctower",
            listener.local_addr().expect("local addr")
        );
        let (req_tx, requests) = mpsc::channel();
        let (finished, finished_rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || -> io::Result<usize> {
            for (i, status) in statuses.into_iter().enumerate() {
                let (mut stream, _) = listener.accept()?;
                stream.set_read_timeout(Some(SAFETY))?;
                let req = read_request(&mut stream)?;
                let _ = req_tx.send(req);
                if i == 0 {
                    if let Some(g) = &gate {
                        let _ = g.recv_timeout(SAFETY);
                    }
                }
                write!(
                    stream,
                    "HTTP/1.1 {status} Test\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )?;
                stream.flush()?;
            }
            // Once the client has shut down, any further connection is an extra attempt.
            let _ = finished_rx.recv_timeout(SAFETY);
            listener.set_nonblocking(true)?;
            let mut extra = 0;
            while listener.accept().is_ok() {
                extra += 1;
            }
            Ok(extra)
        });
        Server {
            url,
            requests,
            finished,
            thread,
        }
    }

    fn next_request(&self) -> Request {
        self.requests
            .recv_timeout(SAFETY)
            .expect("the server received no request in time")
    }

    /// Number of connections after the scripted ones.
    fn finish(self) -> usize {
        let _ = self.finished.send(());
        self.thread
            .join()
            .expect("server thread panicked")
            .expect("server I/O error")
    }
}

fn webhook(url: &str, extra: &str) -> Vec<Hook> {
    let text = format!(
        r#"
        [[hooks]]
        kind = "webhook"
        name = "oncall"
        url = "{url}"
        secret_env = "TEST_WEBHOOK_SECRET"
        retry_base_ms = 1
        {extra}
        "#
    );
    let cfg: AlertsConfig = toml::from_str(&text).expect("test config parses");
    let env = |k: &str| (k == "TEST_WEBHOOK_SECRET").then(|| format!("whsec_{SECRET_B64}"));
    let mut issues = Vec::new();
    match cfg.check("alerts", Secrets::Required(&env), &mut issues) {
        Some(alerts) => alerts.hooks,
        None => panic!("test config invalid: {issues:?}"),
    }
}

fn options() -> DispatcherOptions {
    DispatcherOptions {
        clock: ctower_model::Clock::from_fn(|| NOW_SECS * 1000),
        ..DispatcherOptions::default()
    }
}

fn event(ts_ms: i64) -> AlarmEvent {
    AlarmEvent {
        ts_ms,
        rule: "pw-conductivity-high".into(),
        scope: AssetKey::new("lyon-fill", "utilities", "pw-loop", "ro-skid-1").scope(Level::Asset),
        signal: Some("conductivity_us_cm".into()),
        kind: AlarmEventKind::Raised,
        state: AlarmState::UnackActive,
        priority: Priority::Urgent,
        metric: "conductivity_us_cm.max".into(),
        value: Some(1.42),
        threshold: 1.3,
        message: "Purified water conductivity above USP limit".into(),
    }
}

/// Verifies the Standard Webhooks signature independently of the crate.
fn verify_signature(req: &Request) {
    let id = req.header("webhook-id").expect("webhook-id header");
    let ts = req
        .header("webhook-timestamp")
        .expect("webhook-timestamp header");
    assert_eq!(ts, NOW_SECS.to_string());
    let sig = req
        .header("webhook-signature")
        .expect("webhook-signature header");
    let b64 = sig.strip_prefix("v1,").expect("v1, prefix");
    let given = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("signature is base64");
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET_B64)
        .expect("key is base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("hmac key");
    mac.update(format!("{id}.{ts}.{}", req.body).as_bytes());
    mac.verify_slice(&given).expect("signature verifies");
}

#[test]
fn signed_webhook_is_delivered() {
    let server = Server::start(vec![200], None);
    let d = HookDispatcher::start_with(webhook(&server.url, ""), options()).expect("start");
    let ev = event(1_772_427_600_000);
    d.send(&ev);
    let req = server.next_request();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hooks/ctower");
    assert_eq!(req.header("content-type"), Some("application/json"));
    let id = req.header("webhook-id").expect("id");
    assert!(id.starts_with("msg_"), "{id}");
    verify_signature(&req);

    let body: serde_json::Value = serde_json::from_str(&req.body).expect("JSON body");
    assert_eq!(body["type"], "alarm.raised");
    assert_eq!(body["timestamp"], "2026-03-02T05:00:00.000Z");
    let data: AlarmEvent = serde_json::from_value(body["data"].clone()).expect("AlarmEvent");
    assert_eq!(data, ev);

    let stats = d.shutdown();
    assert_eq!(
        stats,
        HookStats {
            sent: 1,
            failed: 0,
            dropped: 0
        }
    );
    assert_eq!(server.finish(), 0);
}

#[test]
fn server_error_is_retried_with_the_same_id() {
    let server = Server::start(vec![500, 200], None);
    let d = HookDispatcher::start_with(webhook(&server.url, ""), options()).expect("start");
    d.send(&event(1_000));
    let first = server.next_request();
    let second = server.next_request();
    assert_eq!(first.header("webhook-id"), second.header("webhook-id"));
    assert_eq!(first.body, second.body);
    verify_signature(&second);
    assert_eq!(
        d.shutdown(),
        HookStats {
            sent: 1,
            failed: 0,
            dropped: 0
        }
    );
    assert_eq!(server.finish(), 0);
}

#[test]
fn client_error_is_not_retried() {
    let server = Server::start(vec![400], None);
    let d = HookDispatcher::start_with(webhook(&server.url, ""), options()).expect("start");
    d.send(&event(1_000));
    let _ = server.next_request();
    assert_eq!(
        d.shutdown(),
        HookStats {
            sent: 0,
            failed: 1,
            dropped: 0
        }
    );
    assert_eq!(server.finish(), 0, "a 400 must not be retried");
}

#[test]
fn too_many_requests_then_gives_up_after_max_retries() {
    let server = Server::start(vec![429, 503, 500], None);
    let hooks = webhook(&server.url, "max_retries = 2");
    let d = HookDispatcher::start_with(hooks, options()).expect("start");
    d.send(&event(1_000));
    for _ in 0..3 {
        let _ = server.next_request();
    }
    assert_eq!(
        d.shutdown(),
        HookStats {
            sent: 0,
            failed: 1,
            dropped: 0
        }
    );
    assert_eq!(server.finish(), 0, "exactly 1 + max_retries attempts");
}

#[test]
fn connection_refused_is_retried_then_fails() {
    // A port that was just free: nothing listens there any more.
    let url = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/x", l.local_addr().expect("addr"))
    };
    let d = HookDispatcher::start_with(webhook(&url, "max_retries = 2"), options()).expect("start");
    d.send(&event(1_000));
    assert_eq!(
        d.shutdown(),
        HookStats {
            sent: 0,
            failed: 1,
            dropped: 0
        }
    );
}

#[test]
fn full_queue_drops_and_counts() {
    let (open_gate, gate) = mpsc::channel();
    let server = Server::start(vec![200, 200], Some(gate));
    let opts = DispatcherOptions {
        queue_capacity: 1,
        enqueue_wait: Duration::ZERO,
        ..options()
    };
    let d = HookDispatcher::start_with(webhook(&server.url, ""), opts).expect("start");
    d.send(&event(1_000));
    // The worker holds event 1 in flight (the server has not answered yet).
    let first = server.next_request();
    d.send(&event(2_000)); // queued
    d.send(&event(3_000)); // queue full: dropped
    assert_eq!(d.stats().dropped, 1);
    open_gate.send(()).expect("gate");
    let second = server.next_request();
    assert_ne!(first.header("webhook-id"), second.header("webhook-id"));
    let body: serde_json::Value = serde_json::from_str(&second.body).expect("JSON");
    assert_eq!(body["data"]["ts_ms"], 2_000);
    assert_eq!(
        d.shutdown(),
        HookStats {
            sent: 2,
            failed: 0,
            dropped: 1
        }
    );
    assert_eq!(server.finish(), 0);
}
