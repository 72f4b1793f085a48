//! `record` → file → `ReplayReader` through the embedded broker.

use crate::common::*;
use ctower_collector::endpoint::BrokerEndpoint;
use ctower_collector::replay::record;
use ctower_model::replay::ReplayReader;
use tokio::sync::{oneshot, watch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_traffic_reads_back_identically() {
    let broker = start_embedded().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("recorded.jsonl.gz");
    let recs = records(2_000, 1, "rec");
    let endpoint = BrokerEndpoint::new("127.0.0.1", broker.port());

    let (_stop, stop_rx) = watch::channel(false);
    let (ready_tx, ready_rx) = oneshot::channel();
    let t_start = wall_ms();
    let recorder = tokio::spawn({
        let (endpoint, out) = (endpoint.clone(), out.clone());
        async move {
            record(
                &endpoint,
                "ctower-test-recorder",
                vec!["acme/#".into()],
                &out,
                stop_rx,
                Some(2_000),
                Some(ready_tx),
            )
            .await
        }
    });
    tokio::time::timeout(WAIT, ready_rx)
        .await
        .expect("recorder subscribes")
        .unwrap();
    publish_all(dir.path(), "torecord", &recs, broker.port()).await;
    let n = tokio::time::timeout(WAIT, recorder)
        .await
        .expect("recorder stops at its limit")
        .unwrap()
        .unwrap();
    let t_end = wall_ms();
    assert_eq!(n, 2_000);

    let back: Vec<_> = ReplayReader::open(&out)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(back.len(), recs.len());
    let mut prev = i64::MIN;
    for (b, r) in back.iter().zip(&recs) {
        assert_eq!(
            (&b.topic, &b.payload, b.qos, b.retain),
            (&r.topic, &r.payload, 1, false)
        );
        assert!(b.t_ms >= prev && (t_start..=t_end).contains(&b.t_ms));
        prev = b.t_ms;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_stops_on_request_with_a_valid_file() {
    let broker = start_embedded().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("empty.jsonl.gz");
    let endpoint = BrokerEndpoint::new("127.0.0.1", broker.port());
    let (stop, stop_rx) = watch::channel(false);
    let (ready_tx, ready_rx) = oneshot::channel();
    let recorder = tokio::spawn({
        let out = out.clone();
        async move {
            record(
                &endpoint,
                "ctower-test-rec-stop",
                vec!["#".into()],
                &out,
                stop_rx,
                None,
                Some(ready_tx),
            )
            .await
        }
    });
    tokio::time::timeout(WAIT, ready_rx).await.unwrap().unwrap();
    stop.send_replace(true);
    let n = tokio::time::timeout(WAIT, recorder)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(ReplayReader::open(&out).unwrap().count(), 0);
}
