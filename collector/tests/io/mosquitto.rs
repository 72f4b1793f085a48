//! A real Mosquitto: full-speed delivery and reconnects.

use crate::common::*;
use crate::embedded::full_speed_roundtrip;
use ctower_collector::mqtt::SourceStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_full_speed_qos1_loses_nothing() {
    let Some(m) = Mosquitto::start_or_skip(None) else {
        return;
    };
    full_speed_roundtrip(&m.url(), m.port, false, 20_000, "mosq").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_reconnects_after_a_broker_restart() {
    let Some(m) = Mosquitto::start_or_skip(None) else {
        return;
    };
    let port = m.port;
    let dir = tempfile::tempdir().unwrap();
    let mut source = Source::start(spec("restart", &m.url()), None).await;

    let before = records(100, 1, "before");
    publish_all(dir.path(), "before", &before, port).await;
    assert_same(&source.collect(100).await, &before, 7);

    // Kill the broker: the source notices and backs off.
    drop(m);
    source
        .wait_status(|s| matches!(s, SourceStatus::Disconnected { .. }))
        .await;
    let m = Mosquitto::start_or_skip(Some(port)).expect("mosquitto was there a moment ago");
    source
        .wait_status(|s| matches!(s, SourceStatus::Subscribed { connection: 2, .. }))
        .await;

    let after = records(100, 1, "after");
    publish_all(dir.path(), "after", &after, port).await;
    assert_same(&source.collect(100).await, &after, 7);

    let stats = source.stop().await;
    assert_eq!(stats.reconnects, 1);
    assert!(stats.connection_errors >= 1);
    assert_eq!(stats.received, 200);
    // The broker ran without persistence: the restart lost the session,
    // and the source says so (a possible gap while it was away).
    assert_eq!(stats.sessions_lost, 1);
    drop(m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_resends_unacknowledged_publishes_after_a_broker_restart() {
    let Some(m) = Mosquitto::start_or_skip(None) else {
        return;
    };
    let port = m.port;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restart.jsonl.gz");
    let recs = records(5_000, 1, "pubrestart");
    write_recording(&path, &recs);
    let mut opts = ctower_collector::replay::PublishOptions::new("ctower-test-pub-restart");
    opts.speed = ctower_collector::replay::Speed::Max;

    // Restart the broker from the progress callback, mid-replay. The new
    // broker has no session: rumqttc alone would drop the unacknowledged
    // publishes and the wait for acknowledgements would never end.
    let mut broker = Some(m);
    let mut restarted = false;
    let stats = tokio::time::timeout(
        WAIT,
        ctower_collector::replay::publish_recording(
            &path,
            &ctower_collector::endpoint::BrokerEndpoint::new("127.0.0.1", port),
            opts,
            |p| {
                if p.published >= 1_000 && !restarted {
                    restarted = true;
                    drop(broker.take());
                    broker = Mosquitto::start_or_skip(Some(port));
                }
            },
        ),
    )
    .await
    .expect("publishing finishes after the restart")
    .expect("publishing succeeds");
    assert!(restarted);
    assert_eq!(stats.published, 5_000);
    assert_eq!(stats.acknowledged, 5_000);
    assert_eq!(stats.reconnects, 1);
}
