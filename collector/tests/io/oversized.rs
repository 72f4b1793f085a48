//! Issue #8, item 9: one message beyond the size limit must not block a
//! source. Before, rumqttc refused the packet with a connection error, the
//! persistent session redelivered it at every reconnect (every 0.5 s), and
//! the source received nothing else, ever.

use crate::common::*;
use ctower_collector::admission::AdmissionRules;
use ctower_collector::deadletter::{DeadLetterFile, PAYLOAD_PREFIX_BYTES};
use ctower_collector::decode::DecodeRules;
use ctower_collector::mqtt::SourceStatus;
use ctower_collector::Ingestor;

/// 50 MB, far above the default `max_payload_bytes` (64 KiB) and the 16 MiB
/// the configuration allows at most.
const BIG: usize = 50_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_a_dead_letter_and_the_source_goes_on() {
    let Some(m) = Mosquitto::start_or_skip(None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The persistent session exists: what follows is queued for it.
    let first = Source::start(spec("oversized", &m.url()), None).await;
    first.stop().await;

    let topic = "acme/lyon-fill/aseptic/fill-1/filler/count_total";
    let mut big = br#"{"ts":1772427600000,"value":1,"pad":""#.to_vec();
    big.resize(BIG - 2, b'x');
    big.extend_from_slice(b"\"}");
    publish_one(m.port, "ctower-test-big", topic, big).await;
    let after = records(100, 1, "after-big");
    publish_all(dir.path(), "after-big", &after, m.port).await;

    // The source comes back to its session: the broker sends the 50 MB
    // message first, then the others.
    let mut source = Source::spawn(spec("oversized", &m.url()), None);
    let got = source.collect(101).await;
    source
        .wait_status(|s| matches!(s, SourceStatus::Subscribed { connection: 1, .. }))
        .await;

    let cut = &got[0];
    assert_eq!(cut.topic, topic);
    assert_eq!(cut.truncated_from, Some(BIG));
    assert_eq!(cut.payload.len(), PAYLOAD_PREFIX_BYTES);
    assert!(cut.payload.starts_with(br#"{"ts":1772427600000"#));
    assert!(got[1..].iter().all(|m| m.truncated_from.is_none()));
    assert_same(&got[1..], &after, 7);

    // Through the ingest core: one `oversized` dead letter with its topic
    // and real size; the others as usual (`records` sends numbers to the
    // `state` signal too: those 25 are `wrong_type`).
    let path = dir.path().join("dead-letters.jsonl");
    let mut ing = Ingestor::new(
        vec![("oversized".into(), DecodeRules::default_uns())],
        AdmissionRules {
            window_ms: 60_000,
            allowed_lateness_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_future_ms: 300_000,
            correction_horizon_ms: 0,
        },
        Some(DeadLetterFile::new(&path)),
        1024,
    );
    for msg in &got {
        let mut msg = msg.clone();
        msg.source = 0;
        ing.push(&msg).unwrap();
    }
    ing.flush().unwrap();
    let metrics = ing.metrics();
    assert_eq!((metrics.received, metrics.accepted), (101, 75));
    assert_eq!(metrics.dead_letters.get("oversized"), Some(&1));
    assert_eq!(metrics.dead_letter_total(), 26);
    let text = std::fs::read_to_string(&path).unwrap();
    let dead: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|d| d["reason"] != "wrong_type")
        .collect();
    assert_eq!(dead.len(), 1, "{text:.300}");
    assert_eq!(dead[0]["reason"], "oversized");
    assert_eq!(dead[0]["topic"], topic);
    assert_eq!(dead[0]["payload_bytes"], BIG);
    assert_eq!(dead[0]["payload_truncated"], true);
    assert!(
        dead[0]["detail"]
            .as_str()
            .unwrap()
            .contains("50000000 bytes"),
        "{}",
        dead[0]
    );
    assert!(text.len() < 3 * PAYLOAD_PREFIX_BYTES, "{}", text.len());

    // No reconnect loop: one connection, no error.
    let stats = source.stop().await;
    assert_eq!(stats.received, 101);
    assert_eq!(stats.oversized, 1);
    assert_eq!(stats.connection_errors, 0, "{stats:?}");
    assert_eq!(stats.reconnects, 0, "{stats:?}");
    drop(m);
}
