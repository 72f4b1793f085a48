//! Issue #10, item 1 (half-open detection): a connection whose other end
//! has gone silent without closing (a firewall dropping the flow, a broker
//! host that froze) must not hold a source for ever. The keep-alive pings
//! go unanswered, the source notices within two keep-alive periods,
//! reconnects and takes messages again.
//!
//! A TCP proxy in front of the embedded broker plays the network: it
//! forwards both ways until told to freeze the connections it holds; then
//! it swallows everything on them, sockets left open. New connections are
//! forwarded again.

use crate::common::*;
use ctower_collector::mqtt::SourceStatus;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The proxy: a generation counter; connections of an older generation
/// than `frozen_before` swallow all they read.
#[derive(Clone, Default)]
struct Proxy {
    generation: Arc<AtomicU64>,
    frozen_before: Arc<AtomicU64>,
}

impl Proxy {
    /// Listens on a free port, forwarding to `upstream`.
    async fn start(upstream: u16) -> (Proxy, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy::default();
        let p = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let generation = p.generation.fetch_add(1, Ordering::SeqCst);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let frozen = Arc::new(AtomicBool::new(false));
                tokio::spawn(pipe(cr, sw, p.clone(), generation, frozen.clone()));
                tokio::spawn(pipe(sr, cw, p.clone(), generation, frozen));
            }
        });
        (proxy, port)
    }

    /// From now on, every connection made so far swallows what it reads.
    fn freeze_current(&self) {
        self.frozen_before
            .store(self.generation.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either ends; once the connection is frozen,
/// reads and drops (the socket stays open: half-open, not closed).
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    proxy: Proxy,
    generation: u64,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if generation < proxy.frozen_before.load(Ordering::SeqCst) {
            frozen.store(true, Ordering::SeqCst);
        }
        if frozen.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_connection_is_noticed_by_the_keep_alive_and_replaced() {
    let broker = start_embedded().await;
    let (proxy, port) = Proxy::start(broker.port()).await;
    let dir = tempfile::tempdir().unwrap();
    // keep_alive_secs = 5, the smallest allowed: detection within ~10 s.
    let mut spec = spec("half-open", &format!("mqtt://127.0.0.1:{port}"));
    spec.keep_alive = std::time::Duration::from_secs(5);
    let mut source = Source::start(spec, None).await;

    let before = records(20, 1, "before");
    publish_all(dir.path(), "before", &before, broker.port()).await;
    assert_same(&source.collect(20).await, &before, 7);

    // The network goes silent; nothing is closed.
    let frozen_at = std::time::Instant::now();
    proxy.freeze_current();
    source
        .wait_status(|s| matches!(s, SourceStatus::Disconnected { .. }))
        .await;
    let noticed = frozen_at.elapsed();
    assert!(
        // Two keep-alive periods, with room for a loaded machine.
        noticed <= std::time::Duration::from_secs(25),
        "noticed after {noticed:?}"
    );
    source
        .wait_status(|s| matches!(s, SourceStatus::Subscribed { connection: 2, .. }))
        .await;

    let after = records(20, 1, "after");
    publish_all(dir.path(), "after", &after, broker.port()).await;
    // The persistent session may also redeliver "before" messages whose
    // acknowledgements the frozen connection swallowed (QoS 1 is at least
    // once; how many depends on timing, up to all of them); the new
    // messages all arrive, in order, among them.
    let mut got = Vec::new();
    let mut redelivered = 0;
    while got.len() < after.len() {
        for m in source.collect(1).await {
            if before.iter().any(|b| b.payload == m.payload) {
                redelivered += 1;
                assert!(
                    redelivered <= before.len(),
                    "more redeliveries than messages"
                );
            } else {
                got.push(m);
            }
        }
    }
    assert_same(&got, &after, 7);
    let stats = source.stop().await;
    assert_eq!(stats.reconnects, 1, "{stats:?}");
}
