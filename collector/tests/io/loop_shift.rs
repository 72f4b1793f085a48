//! Looping a recording shifts event time forward pass after pass.

use crate::common::*;
use ctower_collector::endpoint::BrokerEndpoint;
use ctower_collector::replay::{publish_recording, PublishOptions, Speed};
use ctower_model::replay::ReplayRecord;

fn ts_of(payload: &[u8]) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    v.get("ts").cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_passes_give_strictly_later_event_times() {
    let broker = start_embedded().await;
    let dir = tempfile::tempdir().unwrap();
    let mut recs = records(200, 1, "loop");
    // One RFC 3339 timestamp and one malformed payload among them.
    recs[50].payload = br#"{"ts":"2026-03-02T05:00:00.500Z","value":1}"#.to_vec();
    recs[51].payload = br#"{"ts":17724276,"value":"#.to_vec();
    let path = dir.path().join("loop.jsonl.gz");
    write_recording(&path, &recs);
    let span = 60_000 + 60_000; // 1990 ms of data → 1 min, plus 1 min

    let mut source = Source::start(spec("loop", "embedded"), Some(broker.port())).await;
    let mut opts = PublishOptions::new("ctower-test-pub-loop");
    opts.speed = Speed::Max;
    opts.loop_forever = true;
    opts.max_passes = Some(2);
    let endpoint = BrokerEndpoint::new("127.0.0.1", broker.port());
    let (stats, got) = tokio::join!(
        publish_recording(&path, &endpoint, opts, |_| {}),
        source.collect(400)
    );
    let stats = stats.unwrap();
    assert_eq!((stats.published, stats.passes), (400, 2));
    assert_eq!(stats.last_event_ms, Some(recs[199].t_ms + span));

    let (pass0, pass1) = got.split_at(200);
    assert_same(pass0, &recs, 7);
    let max0 = pass0
        .iter()
        .filter_map(|m| ts_of(&m.payload)?.as_i64())
        .max()
        .unwrap();
    for (i, (m, r)) in pass1.iter().zip(&recs).enumerate() {
        assert_eq!(m.topic, r.topic);
        match i {
            50 => assert_eq!(
                ts_of(&m.payload).unwrap(),
                serde_json::json!("2026-03-02T05:02:00.500Z")
            ),
            51 => assert_eq!(m.payload, r.payload, "malformed payloads stay as they are"),
            _ => {
                let ts = ts_of(&m.payload).unwrap().as_i64().unwrap();
                assert!(ts > max0, "pass 2 record {i}: {ts} <= {max0}");
                assert_eq!(ts, ts_of(&r.payload).unwrap().as_i64().unwrap() + span);
            }
        }
    }
    source.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shift_to_now_makes_the_first_event_time_current() {
    let broker = start_embedded().await;
    let dir = tempfile::tempdir().unwrap();
    let recs: Vec<ReplayRecord> = records(10, 0, "now");
    let path = dir.path().join("now.jsonl.gz");
    write_recording(&path, &recs);

    let mut source = Source::start(spec("now", "embedded"), Some(broker.port())).await;
    let mut opts = PublishOptions::new("ctower-test-pub-now");
    opts.speed = Speed::Max;
    opts.shift_to_now = Some(ctower_model::Clock::system());
    let endpoint = BrokerEndpoint::new("127.0.0.1", broker.port());
    let before = wall_ms();
    let (stats, got) = tokio::join!(
        publish_recording(&path, &endpoint, opts, |_| {}),
        source.collect(10)
    );
    let after = wall_ms();
    assert_eq!(stats.unwrap().published, 10);
    let first = ts_of(&got[0].payload).unwrap().as_i64().unwrap();
    assert!(
        first <= after && first > before - 60_000,
        "first event time {first} is not within a minute before now ({before}..{after})"
    );
    assert_eq!((first - recs[0].t_ms) % 60_000, 0, "whole-minute shift");
    // Every record moves by the same shift, not only the first.
    let shift = first - ts_of(&recs[0].payload).unwrap().as_i64().unwrap();
    for (sent, rec) in got.iter().zip(&recs) {
        let now_ts = ts_of(&sent.payload).unwrap().as_i64().unwrap();
        let was = ts_of(&rec.payload).unwrap().as_i64().unwrap();
        assert_eq!(
            now_ts - was,
            shift,
            "record {} not shifted like the first",
            rec.topic
        );
    }
    source.stop().await;
}
