//! The embedded MQTT broker of the demo: rumqttd, configured in code.
//!
//! [`EmbeddedBroker::start`] runs rumqttd on its own OS threads (its
//! `Broker::start` blocks and builds its own single-threaded tokio runtimes)
//! and returns once the broker answers an MQTT CONNECT on its port, so the
//! caller can connect clients right away.
//!
//! Limits are generous so that a replay at full speed with QoS 1 loses
//! nothing: 1 MiB payloads, and a per-subscription in-memory log of
//! [`LOG_SEGMENT_BYTES`] × [`LOG_SEGMENTS`] bytes. rumqttd keeps every
//! message of a subscribed filter in that log (bounded: when it is full the
//! oldest segment is dropped, and a subscriber that has fallen that far
//! behind skips the dropped messages; rumqttd logs "Read cursor start
//! jumped"). Messages on topics nobody subscribes to are not kept.
//!
//! rumqttd 0.20 has no shutdown API: the broker runs until the process exits;
//! dropping an [`EmbeddedBroker`] does not stop it.

use crate::endpoint::BrokerEndpoint;
use crate::CollectorError;
use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest accepted payload, bytes.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024 + 1024;
/// Size of one segment of a subscription's in-memory log, bytes.
pub const LOG_SEGMENT_BYTES: usize = 32 * 1024 * 1024;
/// Segments kept per subscription before the oldest is dropped.
pub const LOG_SEGMENTS: usize = 16;
/// Log directives (tracing `EnvFilter` syntax) that keep the MQTT crates'
/// internals out of ctower's logs below WARN. rumqttd logs every accepted
/// socket, CONNECT, SUBSCRIBE and disconnection at INFO (a demo's INFO log
/// was mostly rumqttd's); its warnings and errors stay (among them "Read
/// cursor start jumped": a subscriber too slow for its log skipped
/// messages). Use [`log_filter`] to add them to a user's filter.
pub const QUIET_DEPENDENCIES: &str = "rumqttd=warn,rumqttc=warn";

/// `filter` (a user's `--log`, `EnvFilter` syntax) with each directive of
/// [`QUIET_DEPENDENCIES`] appended unless `filter` names that crate (or a
/// module of it) itself: `info` → `info,rumqttd=warn,rumqttc=warn`, while
/// `info,rumqttd=debug` keeps rumqttd at debug.
pub fn log_filter(filter: &str) -> String {
    let named = |krate: &str| {
        filter.split(',').any(|d| {
            let target = d.trim().split(['=', '[']).next().unwrap_or("");
            target == krate || target.starts_with(&format!("{krate}::"))
        })
    };
    let mut out = filter.trim().to_string();
    for quiet in QUIET_DEPENDENCIES.split(',') {
        let krate = quiet.split('=').next().unwrap_or(quiet);
        if !named(krate) {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(quiet);
        }
    }
    out
}

/// How long [`EmbeddedBroker::start`] waits for the broker to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running rumqttd broker (MQTT 3.1.1, plain TCP, anonymous).
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    // Kept so the thread is not detached silently; never joined (see module docs).
    _thread: JoinHandle<()>,
    // The readiness probe's connection, kept open (keep-alive ~18 h) for
    // the broker's life: rumqttd 0.20 logs the closing of any connection, even
    // after a clean DISCONNECT, at ERROR ("router-drop", "no-connection id
    // 0 is already gone"): on every start, a user would read an error.
    _probe: TcpStream,
}

impl EmbeddedBroker {
    /// Starts the broker on `bind`; port 0 picks a free port (see [`Self::port`]).
    ///
    /// Blocks the calling thread until the broker accepts MQTT connections
    /// (at most ~10 s): call it before entering async code, or from
    /// `spawn_blocking`.
    pub fn start(bind: SocketAddr) -> Result<EmbeddedBroker, CollectorError> {
        let port = match bind.port() {
            0 => free_port(bind.ip())?,
            p => p,
        };
        let listen = SocketAddr::new(bind.ip(), port);
        let config = broker_config(listen);
        let thread = std::thread::Builder::new()
            .name("rumqttd".into())
            .spawn(move || {
                // `Broker::new` spawns the router thread, `start` one thread per
                // server and blocks joining them: it returns only if they die.
                let mut broker = rumqttd::Broker::new(config);
                match broker.start() {
                    Ok(()) => tracing::error!(%listen, "embedded broker stopped"),
                    Err(e) => tracing::error!(%listen, error = %e, "embedded broker failed"),
                }
            })
            .map_err(|source| CollectorError::Thread {
                name: "rumqttd".into(),
                source,
            })?;
        let addr = SocketAddr::new(connect_ip(bind.ip()), port);
        let probe = wait_ready(addr, &thread)?;
        // `url=` is what `ctower replay --broker` takes (tests read it here).
        tracing::info!(url = %format_args!("mqtt://{addr}"), "embedded broker ready");
        Ok(EmbeddedBroker {
            addr,
            _thread: thread,
            _probe: probe,
        })
    }

    /// The port the broker listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Where clients of this process connect to it: what `embedded`
    /// resolves to ([`BrokerEndpoint::resolve`]). `127.0.0.1` (`::1`) for
    /// a wildcard bind, else the bound address.
    pub fn endpoint(&self) -> BrokerEndpoint {
        BrokerEndpoint::new(self.addr.ip().to_string(), self.addr.port())
    }

    /// [`Self::endpoint`] as a URL: `mqtt://127.0.0.1:PORT`, `mqtt://[::1]:PORT`.
    pub fn url(&self) -> String {
        self.endpoint().to_string()
    }
}

/// rumqttd 0.20 cannot report the port it bound, so port 0 is resolved here:
/// bind a listener on port 0, read its port, release it. Another process may
/// take the port between this release and rumqttd's bind (a small window;
/// the kernel does not hand out the same ephemeral port again right away).
/// rumqttd's bind then fails, its thread ends, and `start` reports it.
fn free_port(ip: IpAddr) -> Result<u16, CollectorError> {
    let listener =
        TcpListener::bind(SocketAddr::new(ip, 0)).map_err(|source| CollectorError::Io {
            path: format!("bind {ip}:0"),
            source,
        })?;
    let port = listener
        .local_addr()
        .map_err(|source| CollectorError::Io {
            path: format!("bind {ip}:0"),
            source,
        })?
        .port();
    drop(listener);
    Ok(port)
}

fn connect_ip(bind: IpAddr) -> IpAddr {
    match bind {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}

fn broker_config(listen: SocketAddr) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: MAX_PAYLOAD_BYTES,
        // rumqttd uses this as the number of packets read from one socket per
        // batch; its outgoing QoS 1 window per subscriber is fixed at 100.
        max_inflight_count: 1_000,
        auth: None,
        external_auth: None,
        // rumqttd 0.20 drops publishes whose topic matches no subscription
        // (they are acknowledged, not logged); dynamic filters would keep a
        // log per such topic, growing memory for nothing.
        dynamic_filters: false,
    };
    let server = ServerSettings {
        name: "ctower-v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_000,
            max_outgoing_packet_count: 1_000,
            max_segment_size: LOG_SEGMENT_BYTES,
            max_segment_count: LOG_SEGMENTS,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    }
}

/// Readiness wait: an MQTT 3.1.1 CONNECT answered by a CONNACK proves the
/// listener and the router are both up. Bounded retries, short waits.
fn wait_ready(addr: SocketAddr, thread: &JoinHandle<()>) -> Result<TcpStream, CollectorError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut attempts = 0u32;
    let mut last_error = String::from("no attempt");
    while Instant::now() < deadline {
        if thread.is_finished() {
            return Err(CollectorError::Broker(format!(
                "rumqttd stopped while starting on {addr} (port in use?)"
            )));
        }
        attempts += 1;
        match probe(addr) {
            Ok(s) => return Ok(s),
            Err(e) => last_error = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(CollectorError::Broker(format!(
        "rumqttd on {addr} not ready after {attempts} attempts in {READY_TIMEOUT:?}: {last_error}"
    )))
}

/// An MQTT CONNECT answered by CONNACK; the connection stays open, with
/// the longest keep-alive MQTT allows (rumqttd refuses 0), ~18 h.
fn probe(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let timeout = Duration::from_millis(500);
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let client_id = b"ctower-ready-probe";
    // CONNECT: protocol "MQTT" level 4, clean session, keep-alive 65535 s.
    let mut packet = vec![0x10, (10 + 2 + client_id.len()) as u8];
    packet.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0xff, 0xff]);
    packet.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    packet.extend_from_slice(client_id);
    s.write_all(&packet)?;
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack)?;
    if connack != [0x20, 0x02, 0x00, 0x00] {
        return Err(std::io::Error::other(format!(
            "unexpected answer to CONNECT: {connack:02x?}"
        )));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_dependencies_are_added_unless_named() {
        assert_eq!(log_filter("info"), "info,rumqttd=warn,rumqttc=warn");
        assert_eq!(log_filter(""), "rumqttd=warn,rumqttc=warn");
        assert_eq!(
            log_filter("info,rumqttd=debug"),
            "info,rumqttd=debug,rumqttc=warn"
        );
        assert_eq!(
            log_filter("warn,rumqttd::router=trace,rumqttc"),
            "warn,rumqttd::router=trace,rumqttc"
        );
        // A crate whose name merely starts like one of them is not it.
        assert_eq!(
            log_filter("rumqttdx=debug"),
            "rumqttdx=debug,rumqttd=warn,rumqttc=warn"
        );
    }
}
