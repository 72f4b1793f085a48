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

fn options(dir: &std::path::Path) -> DispatcherOptions {
    DispatcherOptions {
        clock: ctower_model::Clock::from_fn(|| NOW_SECS * 1000),
        shutdown_wait: Duration::from_secs(5),
        ..DispatcherOptions::new(dir.to_path_buf())
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

fn body(req: &Request) -> serde_json::Value {
    serde_json::from_str(&req.body).expect("JSON body")
}

#[test]
fn signed_webhook_is_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(vec![200], None);
    let d = HookDispatcher::start(webhook(&server.url, ""), options(dir.path())).expect("start");
    let ev = event(1_772_427_600_000);
    d.send(&ev);
    let req = server.next_request();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hooks/ctower");
    assert_eq!(req.header("content-type"), Some("application/json"));
    let id = req.header("webhook-id").expect("id");
    assert!(id.starts_with("msg_"), "{id}");
    verify_signature(&req);

    let body = body(&req);
    assert_eq!(body["type"], "alarm.raised");
    assert_eq!(body["timestamp"], "2026-03-02T05:00:00.000Z");
    assert_eq!(body["data"]["action"], "trigger");
    let data: AlarmEvent = serde_json::from_value(body["data"].clone()).expect("AlarmEvent");
    assert_eq!(data, ev);

    let stats = d.shutdown();
    assert_eq!(
        stats,
        HookStats {
            delivered: 1,
            dead_lettered: 0,
            pending: 0
        }
    );
    assert_eq!(server.finish(), 0);
}

#[test]
fn server_errors_and_429_are_retried_with_the_same_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(vec![503, 429, 200], None);
    let d = HookDispatcher::start(webhook(&server.url, ""), options(dir.path())).expect("start");
    d.send(&event(1_772_427_600_000));
    let ids: Vec<String> = (0..3)
        .map(|_| {
            let r = server.next_request();
            verify_signature(&r);
            r.header("webhook-id").expect("id").to_string()
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    assert_eq!(d.shutdown().delivered, 1);
    assert_eq!(server.finish(), 0);
}

#[test]
fn a_client_error_is_dead_lettered_and_the_next_notification_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(vec![400, 200], None);
    let d = HookDispatcher::start(webhook(&server.url, ""), options(dir.path())).expect("start");
    d.send(&event(1_772_427_600_000));
    let mut second = event(1_772_427_660_000);
    second.rule = "other".into();
    d.send(&second);
    let first = server.next_request();
    let next = server.next_request();
    assert_ne!(first.header("webhook-id"), next.header("webhook-id"));
    assert_eq!(body(&next)["data"]["rule"], "other");
    let stats = d.shutdown();
    assert_eq!(
        (stats.delivered, stats.dead_lettered, stats.pending),
        (1, 1, 0)
    );
    let dead = std::fs::read_to_string(dir.path().join("oncall/dead-letters.jsonl"))
        .expect("dead letters");
    let rec: serde_json::Value = serde_json::from_str(dead.trim()).expect("one JSON line");
    assert!(
        rec["reason"]
            .as_str()
            .expect("reason")
            .starts_with("HTTP 400"),
        "{rec}"
    );
    assert_eq!(
        rec["notification"]["id"].as_str(),
        first.header("webhook-id")
    );
    assert_eq!(server.finish(), 0);
}

/// A notification not delivered when the dispatcher stops stays in the
/// outbox and is delivered, with the same id, by the next dispatcher.
#[test]
fn a_restart_delivers_what_was_left_with_the_same_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let down = Server::start(vec![503, 503, 503, 503, 503, 503, 503, 503], None);
    let mut opts = options(dir.path());
    opts.shutdown_wait = Duration::from_millis(200);
    let d = HookDispatcher::start(webhook(&down.url, "retry_max_secs = 1"), opts).expect("start");
    d.send(&event(1_772_427_600_000));
    let id = down
        .next_request()
        .header("webhook-id")
        .expect("id")
        .to_string();
    let stats = d.shutdown();
    assert_eq!(stats.pending, 1);
    drop(down);
    let up = Server::start(vec![200], None);
    let d = HookDispatcher::start(webhook(&up.url, ""), options(dir.path())).expect("restart");
    let req = up.next_request();
    verify_signature(&req);
    assert_eq!(req.header("webhook-id"), Some(id.as_str()));
    assert_eq!(d.shutdown().pending, 0);
    assert_eq!(up.finish(), 0);
}

/// A command hook gets the envelope on its standard input; a failing run
/// is retried.
#[test]
fn a_command_hook_gets_the_envelope_on_stdin_and_is_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("got.json");
    let marker = dir.path().join("failed-once");
    let script = format!(
        "if [ -e '{m}' ]; then cat > '{o}'; else touch '{m}'; echo nope >&2; exit 3; fi",
        m = marker.display(),
        o = out.display()
    );
    let text = format!(
        r#"
        [[hooks]]
        kind = "command"
        name = "pager"
        command = ["/bin/sh", "-c", "{}"]
        retry_base_ms = 1
        "#,
        script.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let cfg: AlertsConfig = toml::from_str(&text).expect("test config parses");
    let env = |_: &str| None;
    let mut issues = Vec::new();
    let hooks = cfg
        .check("alerts", Secrets::Required(&env), &mut issues)
        .expect("valid")
        .hooks;
    let d = HookDispatcher::start(hooks, options(dir.path())).expect("start");
    d.send(&event(1_772_427_600_000));
    let stats = d.shutdown();
    assert_eq!((stats.delivered, stats.pending), (1, 0));
    let got: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("output")).expect("JSON");
    assert_eq!(got["type"], "alarm.raised");
    assert_eq!(got["data"]["rule"], "pw-conductivity-high");
}

fn hooks(text: &str) -> Vec<Hook> {
    let cfg: AlertsConfig = toml::from_str(text).expect("test config parses");
    let env = |k: &str| (k == "TEST_PD_KEY").then(|| "R0UT1NGKEY".to_string());
    let mut issues = Vec::new();
    match cfg.check("alerts", Secrets::Required(&env), &mut issues) {
        Some(alerts) => alerts.hooks,
        None => panic!("test config invalid: {issues:?}"),
    }
}

/// Issue #12's escalation point through the real dispatcher, on a manual
/// clock: an unacknowledged urgent alarm goes to the primary's PagerDuty
/// service; 15 minutes later (and not before) to the lead's; the
/// acknowledgement reaches both as PagerDuty `acknowledge` (and nothing
/// more follows), the return to normal as `resolve`.
#[test]
fn an_unacknowledged_alarm_escalates_on_schedule_and_an_ack_stops_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let primary = Server::start(vec![202, 202, 202], None);
    let lead = Server::start(vec![202, 202, 202], None);
    let text = format!(
        r#"
        [[hooks]]
        kind = "pagerduty"
        name = "primary"
        url = "{}"
        routing_key_env = "TEST_PD_KEY"
        escalate_after_secs = 900
        escalate_to = "lead"

        [[hooks]]
        kind = "pagerduty"
        name = "lead"
        url = "{}"
        routing_key_env = "TEST_PD_KEY"
        escalation_only = true
        "#,
        primary.url, lead.url
    );
    let (clock, time) = ctower_model::Clock::manual(NOW_SECS * 1000);
    let opts = DispatcherOptions {
        clock,
        tick: Duration::from_millis(5),
        shutdown_wait: Duration::from_secs(5),
        ..DispatcherOptions::new(dir.path().to_path_buf())
    };
    let d = HookDispatcher::start(hooks(&text), opts).expect("start");
    let raised = event(1_772_427_600_000);
    d.send(&raised);
    let trigger = body(&primary.next_request());
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["payload"]["severity"], "critical");
    let key = trigger["dedup_key"].clone();
    // 14 minutes: nothing for the lead.
    time.advance(14 * 60_000);
    assert!(lead
        .requests
        .recv_timeout(Duration::from_millis(300))
        .is_err());
    time.advance(60_000);
    let escalated = body(&lead.next_request());
    assert_eq!(escalated["event_action"], "trigger");
    assert_eq!(escalated["dedup_key"], key);
    // The acknowledgement: both told, as PagerDuty acknowledge.
    let mut ack = raised.clone();
    ack.kind = AlarmEventKind::Acknowledged;
    ack.state = AlarmState::AckActive;
    ack.ts_ms += 60_000;
    d.send(&ack);
    for s in [&primary, &lead] {
        let b = body(&s.next_request());
        assert_eq!(b["event_action"], "acknowledge");
        assert_eq!(b["dedup_key"], key);
    }
    // Much later: no repeat, no further escalation.
    time.advance(3 * 3_600_000);
    assert!(primary
        .requests
        .recv_timeout(Duration::from_millis(300))
        .is_err());
    // Back to normal: resolve.
    let mut clear = raised.clone();
    clear.kind = AlarmEventKind::Cleared;
    clear.state = AlarmState::Normal;
    clear.ts_ms += 120_000;
    d.send(&clear);
    for s in [&primary, &lead] {
        let b = body(&s.next_request());
        assert_eq!(b["event_action"], "resolve");
        assert_eq!(b["dedup_key"], key);
    }
    assert_eq!(d.shutdown().delivered, 6);
    assert_eq!(primary.finish(), 0);
    assert_eq!(lead.finish(), 0);
}

/// A synthetic flood through the real dispatcher: 25 alarms of one site in
/// 5 minutes reach the receiver as 10 triggers and one flood summary.
#[test]
fn a_synthetic_flood_sends_one_flood_notification() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(vec![200; 11], None);
    let d = HookDispatcher::start(webhook(&server.url, ""), options(dir.path())).expect("start");
    for i in 0..25 {
        let mut ev = event(1_772_427_600_000 + i * 12_000);
        ev.rule = format!("rule-{i}").into();
        ev.priority = Priority::High;
        d.send(&ev);
    }
    let bodies: Vec<serde_json::Value> = (0..11).map(|_| body(&server.next_request())).collect();
    let types: Vec<&str> = bodies
        .iter()
        .map(|b| b["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types.iter().filter(|t| **t == "alarm.raised").count(), 10);
    assert_eq!(types.iter().filter(|t| **t == "alarm.flood").count(), 1);
    let flood = &bodies[10]["data"];
    assert_eq!(flood["site"], "lyon-fill");
    assert_eq!(flood["alarms_in_window"], 11);
    let stats = d.shutdown();
    assert_eq!(stats.delivered, 11);
    assert_eq!(server.finish(), 0, "the held-back alarms were not sent");
}
