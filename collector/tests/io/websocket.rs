//! MQTT over WebSocket with TLS (`wss://`), where a plant opens only 443:
//! a source connects to an independent broker (the npm package aedes,
//! `aedes_wss.js`) over `wss://localhost:PORT/mqtt` with the test's CA,
//! and takes what a publisher sends over plain TCP to the same broker.

use crate::common::*;
use ctower_collector::mqtt::SourceStatus;
use ctower_collector::tls::TlsConfig;
use ctower_collector::SourceConfig;
use ctower_testkit::pki::{write_readable as write, TestPki};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn a_source_ingests_over_wss() {
    let Some((node, modules)) = ctower_testkit::services::require_node_package("aedes") else {
        return;
    };
    let pki = TestPki::new("ws CA");
    let dir = tempfile::tempdir().unwrap();
    let cert = write(dir.path(), "server.pem", &pki.server.0);
    let key = write(dir.path(), "server.key", &pki.server.1);
    let ca = write(dir.path(), "ca.pem", &pki.ca_pem);
    let (tcp, wss) = (free_port(), free_port());
    let mut broker = Command::new(node)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/io/aedes_wss.js"
        ))
        .args([tcp.to_string(), wss.to_string()])
        .arg(&cert)
        .arg(&key)
        .env("NODE_PATH", &modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(broker.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");

    let cfg = SourceConfig {
        name: "ws".into(),
        broker_url: format!("wss://localhost:{wss}/mqtt"),
        subscriptions: vec!["acme/#".into()],
        tls: Some(TlsConfig {
            ca_file: Some(ca),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut issues = vec![];
    let spec = cfg.check("sources[0]", &|_| None, &mut issues).unwrap();
    assert!(issues.is_empty(), "{issues:?}");
    let mut source = Source::start(spec, None).await;
    assert!(matches!(
        *source.status.borrow(),
        SourceStatus::Subscribed { connection: 1, .. }
    ));
    for i in 0..20 {
        let payload = format!(r#"{{"ts":{},"value":{i}}}"#, 1_772_427_600_000i64 + i);
        publish_one(
            tcp,
            "ws-pub",
            "acme/lyon/a/l/m/count_total",
            payload.into_bytes(),
        )
        .await;
    }
    let got = source.collect(20).await;
    assert_eq!(got.len(), 20);
    assert!(got[19].payload.ends_with(br#""value":19}"#));
    source.stop().await;
    let _ = broker.kill();
    let _ = broker.wait();
}
