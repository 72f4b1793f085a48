//! The InfluxDB output against an in-process HTTP server that checks each
//! request exactly (path, query, token, body) and answers as each test
//! scripts it: 204, 400, 401, 413, 429, 503, or no answer at all.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

use super::{Influx, InfluxRules};
use ctower_outbox::OutboxRules;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the server answers one request.
#[derive(Debug, Clone)]
enum Reply {
    Status(u16, &'static str),
    /// Reads the request and never answers (the client's deadline ends it).
    Hang,
}

/// One request as received.
#[derive(Debug, Clone)]
struct Request {
    target: String,
    authorization: Option<String>,
    body: String,
    status: Option<u16>,
}

type Script = Box<dyn Fn(usize, &str) -> Reply + Send + Sync>;

/// A tiny HTTP/1.1 server on a free port, one thread per connection.
struct Server {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(script: Script) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (reqs, script) = (requests.clone(), Arc::new(script));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (reqs, script) = (reqs.clone(), script.clone());
                std::thread::spawn(move || serve(conn, &reqs, &script));
            }
        });
        Server { url, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The bodies answered 204, in order.
    fn stored(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.status == Some(204))
            .flat_map(|r| r.body.lines().map(str::to_string).collect::<Vec<_>>())
            .collect()
    }
}

fn serve(conn: TcpStream, reqs: &Mutex<Vec<Request>>, script: &Script) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let (mut length, mut authorization) = (0usize, None);
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "authorization" => authorization = Some(value.trim().to_string()),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let body = String::from_utf8(body).unwrap();
        let n = reqs.lock().unwrap().len();
        let reply = script(n, &body);
        let status = match &reply {
            Reply::Status(s, _) => Some(*s),
            Reply::Hang => None,
        };
        reqs.lock().unwrap().push(Request {
            target,
            authorization,
            body,
            status,
        });
        match reply {
            Reply::Hang => {
                std::thread::sleep(Duration::from_secs(5));
                return;
            }
            Reply::Status(status, text) => {
                let reason = if status == 204 { "No Content" } else { "Error" };
                let head = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\ncontent-type: application/json\r\n\r\n",
                    text.len()
                );
                if conn
                    .write_all(head.as_bytes())
                    .and_then(|()| conn.write_all(text.as_bytes()))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

fn rules(url: &str, dir: &Path) -> InfluxRules {
    InfluxRules {
        url: url.to_string(),
        org: "acme".into(),
        bucket: "kpis".into(),
        token: Some("s3cret-t0ken".into()),
        token_key: "influx.token_env",
        batch_lines: 5000,
        flush: Duration::from_millis(10),
        timeout: Duration::from_millis(500),
        retry_max: Duration::from_millis(100),
        outbox: OutboxRules {
            name: crate::influx::OUTBOX_NAME.into(),
            lost_hint: crate::influx::OUTBOX_LOST_HINT.into(),
            dir: dir.join("outbox"),
            segment_bytes: 64 << 10,
            budget_bytes: 1 << 30,
        },
        dead_letters: dir.join("influx-dead.jsonl"),
    }
}

fn lines(n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "kpi,level=site,site={tag} availability=0.{i},produced={i}i {}",
                1_772_427_660_000_000_000i64 + i as i64 * 60_000_000_000
            )
        })
        .collect()
}

fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "not within 20 s: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn lines_go_in_order_in_batches_with_the_token_org_bucket_and_precision() {
    let server = Server::start(Box::new(|_, _| Reply::Status(204, "")));
    let dir = tempfile::tempdir().unwrap();
    let mut r = rules(&server.url, dir.path());
    r.batch_lines = 300;
    let influx = Influx::start(&r).unwrap();
    let (a, b) = (lines(500, "a"), lines(400, "b"));
    influx.outbox().append(&a, 0).unwrap();
    influx.outbox().append(&b, 0).unwrap();
    until("900 lines stored", || server.stored().len() == 900);
    assert_eq!(influx.finish(Duration::from_secs(1)), 0);
    let all: Vec<String> = a.iter().chain(&b).cloned().collect();
    assert_eq!(server.stored(), all, "every line once, in order");
    for req in server.requests() {
        assert_eq!(
            req.target, "/api/v2/write?bucket=kpis&org=acme&precision=ns",
            "{req:?}"
        );
        assert_eq!(req.authorization.as_deref(), Some("Token s3cret-t0ken"));
        assert!(req.body.lines().count() <= 300, "batches of at most 300");
        assert!(!req.body.ends_with('\n'));
    }
}

#[test]
fn busy_and_failing_servers_are_retried_until_they_take_the_lines() {
    // 503, 429, a request left unanswered past the deadline, then 204.
    let server = Server::start(Box::new(|n, _| match n {
        0 => Reply::Status(503, r#"{"code":"unavailable","message":"busy"}"#),
        1 => Reply::Status(429, r#"{"code":"too many requests"}"#),
        2 => Reply::Hang,
        _ => Reply::Status(204, ""),
    }));
    let dir = tempfile::tempdir().unwrap();
    let influx = Influx::start(&rules(&server.url, dir.path())).unwrap();
    let status = influx.status_handle();
    let l = lines(50, "a");
    influx.outbox().append(&l, 0).unwrap();
    until("stored after the failures", || server.stored().len() == 50);
    assert_eq!(server.stored(), l);
    let statuses: Vec<Option<u16>> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(503), Some(429), None, Some(204)]);
    until("the error cleared", || {
        status.status(0).last_error.is_none()
    });
    assert_eq!(influx.finish(Duration::from_secs(1)), 0);
}

#[test]
fn a_refused_line_is_isolated_and_dead_lettered_and_the_rest_is_written() {
    // InfluxDB refuses a batch holding a line it cannot take (400 with the
    // reason); a body too large is 413.
    let server = Server::start(Box::new(|_, body| {
        if body.contains("site=bad") {
            Reply::Status(400, r#"{"code":"invalid","message":"field type conflict"}"#)
        } else if body.len() > 4000 {
            Reply::Status(413, r#"{"code":"request too large"}"#)
        } else {
            Reply::Status(204, "")
        }
    }));
    let dir = tempfile::tempdir().unwrap();
    let influx = Influx::start(&rules(&server.url, dir.path())).unwrap();
    let mut l = lines(100, "a");
    let bad = "kpi,level=site,site=bad availability=0.5 1772427660000000000".to_string();
    l.insert(37, bad.clone());
    influx.outbox().append(&l, 0).unwrap();
    until("the rest stored", || server.stored().len() == 100);
    assert_eq!(influx.finish(Duration::from_secs(1)), 0);
    let good: Vec<String> = l.iter().filter(|x| **x != bad).cloned().collect();
    assert_eq!(server.stored(), good, "all but the bad line, in order");
    let dead = std::fs::read_to_string(dir.path().join("influx-dead.jsonl")).unwrap();
    let dead: Vec<serde_json::Value> = dead
        .lines()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["line"], bad.as_str());
    assert_eq!(dead[0]["status"], 400);
    assert_eq!(dead[0]["reason"], "influx_rejected");
    assert!(dead[0]["detail"]
        .as_str()
        .unwrap()
        .contains("field type conflict"));
    // Halving, not an endless retry: a few requests per level.
    let n = server.requests().len();
    assert!(n < 40, "{n} requests");
}

#[test]
fn a_wrong_token_is_a_configuration_error_naming_the_key() {
    let server = Server::start(Box::new(|_, _| {
        Reply::Status(
            401,
            r#"{"code":"unauthorized","message":"unauthorized access"}"#,
        )
    }));
    let dir = tempfile::tempdir().unwrap();
    let influx = Influx::start(&rules(&server.url, dir.path())).unwrap();
    let status = influx.status_handle();
    influx.outbox().append(&lines(5, "a"), 0).unwrap();
    until("the fault", || !status.faults(0).is_empty());
    let f = &status.faults(0)[0];
    assert_eq!(f.stage, "influx");
    assert!(f.error.contains("influx.token_env"), "{f:?}");
    assert!(f.error.contains("401"), "{f:?}");
    assert!(!f.error.contains("s3cret"), "{f:?}");
    // Nothing lost: the lines wait in the outbox for a fixed token.
    assert_eq!(influx.finish(Duration::from_millis(100)), 5);
}

#[test]
fn the_outbox_survives_a_restart_and_sends_only_what_was_not_taken() {
    let server = Server::start(Box::new(|_, _| Reply::Status(204, "")));
    let dir = tempfile::tempdir().unwrap();
    let dead_server = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    // First run: nothing reachable, 300 lines wait (and a torn tail).
    let first = Influx::start(&rules(&dead_server, dir.path())).unwrap();
    first.outbox().append(&lines(300, "a"), 0).unwrap();
    assert_eq!(first.finish(Duration::from_millis(50)), 300);
    let seg = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("outbox-"))
        .unwrap()
        .path();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(b"0badc0de kpi,level=site,site=torn availab")
        .unwrap();
    // Second run: the server is up.
    let second = Influx::start(&rules(&server.url, dir.path())).unwrap();
    until("the backlog stored", || server.stored().len() == 300);
    second.outbox().append(&lines(10, "b"), 0).unwrap();
    until("the new lines stored", || server.stored().len() == 310);
    assert_eq!(second.finish(Duration::from_secs(1)), 0);
    // Third run: nothing is sent again.
    let third = Influx::start(&rules(&server.url, dir.path())).unwrap();
    assert_eq!(third.finish(Duration::from_millis(100)), 0);
    assert_eq!(server.stored().len(), 310);
    assert!(!server.stored().iter().any(|l| l.contains("torn")));
}

#[test]
fn past_its_budget_the_outbox_drops_its_oldest_segment_and_counts_it() {
    let dead_server = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let mut r = rules(&dead_server, dir.path());
    r.outbox.segment_bytes = 64 << 10;
    r.outbox.budget_bytes = 256 << 10;
    let influx = Influx::start(&r).unwrap();
    let status = influx.status_handle();
    for i in 0..100 {
        influx
            .outbox()
            .append(&lines(100, &format!("s{i}")), 0)
            .unwrap();
    }
    let s = status.status(0);
    assert!(s.used_bytes <= 256 << 10, "{s:?}");
    assert!(s.lost > 0, "{s:?}");
    assert_eq!(s.pending_lines + s.lost, 100 * 100, "{s:?}");
    let faults = status.faults(0);
    assert!(
        faults.iter().any(|f| f.stage == "influx_outbox"),
        "{faults:?}"
    );
    influx.finish(Duration::from_millis(10));
}
