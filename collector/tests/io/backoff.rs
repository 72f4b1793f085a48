//! Issue #8, item 9 (back-off): a broker that accepts the connection and
//! drops it at once. Before, every CONNACK reset the back-off, so the source
//! reconnected every 500 ms for ever; now only a connection that stays up
//! resets it.
//!
//! The broker here is a plain TCP listener that answers CONNECT with a
//! CONNACK and closes: the shortest real broker with that behaviour
//! (Mosquitto cannot be told to do it).

use crate::common::*;
use ctower_collector::mqtt::SourceStatus;
use std::io::{Read, Write};
use std::net::TcpListener;

/// Accepts connections for ever: reads the CONNECT, accepts it, closes.
fn accept_then_drop() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 512];
            // The CONNECT packet of a client id this short fits in one read.
            if s.read(&mut buf).is_ok() {
                // CONNACK, session present = 0, return code 0 (accepted).
                let _ = s.write_all(&[0x20, 0x02, 0x00, 0x00]);
            }
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connack_followed_by_a_failure_keeps_backing_off() {
    let port = accept_then_drop();
    let mut source = Source::spawn(spec("flaky", &format!("mqtt://127.0.0.1:{port}")), None);
    let mut delays = Vec::new();
    for attempt in 1..=4u32 {
        source
            .wait_status(
                |s| matches!(s, SourceStatus::Disconnected { attempt: a, .. } if *a == attempt),
            )
            .await;
        if let SourceStatus::Disconnected { retry_in_ms, .. } = &*source.status.borrow() {
            delays.push(*retry_in_ms);
        }
    }
    let stats = source.stop().await;
    // Every attempt was accepted before it failed.
    assert!(stats.connections >= 4, "{stats:?}");
    // 500 ms doubling, each drawn between half and all of it.
    for (i, d) in delays.iter().enumerate() {
        let base = 500u64 << i;
        assert!(
            (base / 2..=base).contains(d),
            "attempt {}: {d} ms not within {}..={base} ms ({delays:?})",
            i + 1,
            base / 2
        );
    }
}
