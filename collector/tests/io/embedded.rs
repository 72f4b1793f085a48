//! The embedded rumqttd broker end to end.

use crate::common::*;

/// Publishes `n` QoS 1 records at full speed through the broker on `port`
/// to a `#` source: every record arrives once, in order, unchanged.
pub async fn full_speed_roundtrip(url: &str, port: u16, embedded: bool, n: usize, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let spec_url = if embedded { "embedded" } else { url };
    let mut source = Source::start(spec(name, spec_url), embedded.then_some(port)).await;

    let recs = records(n, 1, name);
    let (publish, got) = tokio::join!(
        publish_all(dir.path(), name, &recs, port),
        source.collect(n)
    );
    let (stats, reports) = publish;
    assert_eq!(stats.published, n as u64);
    assert_eq!(
        stats.acknowledged, n as u64,
        "every QoS 1 publish acknowledged"
    );
    assert_same(&got, &recs, 7);

    // No duplicates: a sentinel published afterwards is the very next message.
    let sentinel = records(1, 1, "sentinel");
    let (_, _) = publish_all(dir.path(), &format!("{name}-sentinel"), &sentinel, port).await;
    assert_same(&source.collect(1).await, &sentinel, 7);

    let last = reports.last().expect("a final progress report");
    assert_eq!(last.published, n as u64);
    assert_eq!(last.event_time_ms, recs[n - 1].t_ms);
    assert!(reports.len() > n / 1000, "a report every 1000 publishes");

    let s = source.stop().await;
    assert_eq!(s.received, n as u64 + 1);
    assert_eq!(s.forwarded, n as u64 + 1);
    assert_eq!(s.connections, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_on_port_0_delivers_every_record_once_in_order() {
    let broker = start_embedded().await;
    assert_ne!(broker.port(), 0);
    assert_eq!(broker.url(), format!("mqtt://127.0.0.1:{}", broker.port()));
    full_speed_roundtrip(&broker.url(), broker.port(), true, 5_000, "embedded").await;
}

#[tokio::test]
async fn embedded_source_without_a_broker_is_a_config_error() {
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let r = ctower_collector::mqtt::run_source(
        0,
        spec("nobroker", "embedded"),
        None,
        tx,
        ctower_model::Clock::system(),
        stop_rx,
        None,
        ctower_collector::delivery::SourceExtras::default(),
    )
    .await;
    assert!(
        matches!(r, Err(ctower_collector::CollectorError::BrokerUrl { .. })),
        "{r:?}"
    );
}
