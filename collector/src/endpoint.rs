//! Broker addresses: what a configuration or a command line names
//! ([`BrokerAddr`]) and where a client connects ([`BrokerEndpoint`]).
//!
//! This is the one place that interprets `embedded`. Everywhere (a source's
//! `broker_url`, the `--broker` of any command) it names **the MQTT broker
//! this process starts inside itself** ([`crate::broker::EmbeddedBroker`]):
//! [`BrokerEndpoint::resolve`] maps it to that broker's address, and fails
//! with [`EMBEDDED_NOT_RUNNING`] in a process that started none. It never
//! means "some broker on this machine": another process's embedded broker
//! is reached by its address, `mqtt://HOST:PORT`, like any other broker.

use crate::CollectorError;
use std::borrow::Cow;
use std::fmt;

/// What `embedded` resolves to in a process that runs no embedded broker.
pub const EMBEDDED_NOT_RUNNING: &str =
    "`embedded` names the MQTT broker a ctower process starts inside itself \
     (`ctower demo`, or `ctower run` with a source whose broker_url is `embedded`), \
     and this process runs none: give a broker's address, mqtt://HOST:PORT or mqtts://HOST:PORT \
     (a running demo logs its broker's: `embedded broker ready url=…`)";

/// `url` with any user information (`user:password@`) replaced by `***@`,
/// for logs and error messages. A URL without any is returned as is.
///
/// The authority is what follows `scheme://` (or the whole string without
/// a scheme) up to the first `/`, `?` or `#`; its user information is
/// everything before its last `@`.
pub fn redact_url(url: &str) -> Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_len = url[start..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - start);
    match url[start..start + authority_len].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]).into(),
        None => url.into(),
    }
}

/// A broker as a configuration or a command line names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerAddr {
    /// The broker started by this process (module docs).
    Embedded,
    /// A broker reached over TCP, in the clear or (`mqtts://`) over TLS.
    Tcp {
        /// Host name or IP address (an IPv6 address without brackets).
        host: String,
        /// TCP port, 1 to 65535.
        port: u16,
        /// TLS (`mqtts://`, `ssl://`, `wss://`): the broker's certificate
        /// and name are checked ([`crate::tls`]).
        tls: bool,
        /// MQTT over WebSocket (`ws://`, `wss://`): the HTTP path (`/mqtt`
        /// when the URL has none).
        websocket: Option<String>,
    },
}

impl BrokerAddr {
    /// Parses `embedded`, `mqtt://HOST:PORT` or `tcp://HOST:PORT`, with TLS
    /// `mqtts://HOST:PORT` or `ssl://HOST:PORT`, and MQTT over WebSocket
    /// `ws://HOST:PORT/PATH` or, with TLS, `wss://HOST:PORT/PATH` (an IPv6
    /// host in brackets). User information in the URL is refused: it would
    /// be logged wherever the URL is. The error is a sentence without the URL.
    pub fn parse(url: &str) -> Result<BrokerAddr, String> {
        if url == "embedded" {
            return Ok(BrokerAddr::Embedded);
        }
        let (rest, tls, ws) = match url.split_once("://") {
            Some(("mqtt" | "tcp", rest)) => (rest, false, false),
            Some(("mqtts" | "ssl", rest)) => (rest, true, false),
            Some(("ws", rest)) => (rest, false, true),
            Some(("wss", rest)) => (rest, true, true),
            _ => {
                return Err("expected mqtt://HOST:PORT, mqtts://HOST:PORT (TLS), \
                     wss://HOST:PORT/PATH (WebSocket and TLS) or `embedded`"
                    .to_string())
            }
        };
        // `user:password@host` would otherwise read as a host name (and be
        // printed in every log line of the source).
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        if authority.contains('@') {
            return Err(
                "credentials in the URL are refused (they would be logged): \
                 set `username` and `password_env` (the name of an environment variable \
                 holding the password) in the source instead"
                    .into(),
            );
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let websocket = match (ws, path.trim_end_matches('/')) {
            (false, "") => None,
            (false, _) => return Err("an mqtt:// URL has no path (ws:// and wss:// do)".into()),
            (true, "") => Some("/mqtt".to_string()),
            (true, p) => Some(p.to_string()),
        };
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| "missing :PORT".to_string())?;
        if host.is_empty() {
            return Err("missing host".into());
        }
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("port `{port}` is not a number from 1 to 65535"))?;
        if port == 0 {
            return Err("port 0 is not a broker port".into());
        }
        Ok(BrokerAddr::Tcp {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            tls,
            websocket,
        })
    }
}

/// A resolved broker address: where a client connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    /// Host name or IP address (an IPv6 address without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// MQTT over WebSocket, at this HTTP path.
    pub websocket: Option<String>,
}

impl BrokerEndpoint {
    /// The endpoint `host:port`, in the clear.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        BrokerEndpoint {
            host: host.into(),
            port,
            tls: false,
            websocket: None,
        }
    }

    /// This endpoint over TLS.
    pub fn with_tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Where `addr` points. [`BrokerAddr::Embedded`] is `embedded`, the
    /// endpoint of the broker this process started
    /// ([`crate::broker::EmbeddedBroker::endpoint`]); without one it is an
    /// error ([`EMBEDDED_NOT_RUNNING`]).
    pub fn resolve(
        addr: &BrokerAddr,
        embedded: Option<&BrokerEndpoint>,
    ) -> Result<BrokerEndpoint, CollectorError> {
        match addr {
            BrokerAddr::Tcp {
                host,
                port,
                tls,
                websocket,
            } => {
                let mut e = BrokerEndpoint::new(host.clone(), *port);
                e.websocket.clone_from(websocket);
                Ok(if *tls { e.with_tls() } else { e })
            }
            // A configuration error like any other unusable URL.
            BrokerAddr::Embedded => embedded.cloned().ok_or_else(|| CollectorError::BrokerUrl {
                url: "embedded".into(),
                reason: EMBEDDED_NOT_RUNNING.into(),
            }),
        }
    }

    /// [`BrokerAddr::parse`] then [`BrokerEndpoint::resolve`]: a command's
    /// `--broker URL`. An error shows the URL redacted ([`redact_url`]).
    pub fn from_url(
        url: &str,
        embedded: Option<&BrokerEndpoint>,
    ) -> Result<BrokerEndpoint, CollectorError> {
        let addr = BrokerAddr::parse(url).map_err(|reason| CollectorError::BrokerUrl {
            url: redact_url(url).into_owned(),
            reason,
        })?;
        BrokerEndpoint::resolve(&addr, embedded)
    }
}

/// `mqtt://HOST:PORT`, as logged in the source, replay and record spans. A
/// host that holds user information (`user:password@host`, which
/// [`BrokerAddr::parse`] refuses but [`BrokerEndpoint::new`] cannot) is
/// shown as `***@host`: a URL is never logged with its credentials.
impl fmt::Display for BrokerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.host.rfind('@') {
            Some(at) => format!("***{}", &self.host[at..]).into(),
            None => Cow::Borrowed(self.host.as_str()),
        };
        let scheme = match (self.tls, self.websocket.is_some()) {
            (false, false) => "mqtt",
            (true, false) => "mqtts",
            (false, true) => "ws",
            (true, true) => "wss",
        };
        let path = self.websocket.as_deref().unwrap_or("");
        if host.contains(':') {
            write!(f, "{scheme}://[{host}]:{}{path}", self.port)
        } else {
            write!(f, "{scheme}://{host}:{}{path}", self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        assert_eq!(BrokerAddr::parse("embedded"), Ok(BrokerAddr::Embedded));
        assert_eq!(
            BrokerAddr::parse("mqtt://10.0.0.1:1883"),
            Ok(BrokerAddr::Tcp {
                host: "10.0.0.1".into(),
                port: 1883,
                tls: false,
                websocket: None,
            })
        );
        assert_eq!(
            BrokerAddr::parse("mqtts://h:8883"),
            Ok(BrokerAddr::Tcp {
                host: "h".into(),
                port: 8883,
                tls: true,
                websocket: None,
            })
        );
        assert_eq!(
            BrokerAddr::parse("wss://h:443"),
            Ok(BrokerAddr::Tcp {
                host: "h".into(),
                port: 443,
                tls: true,
                websocket: Some("/mqtt".into()),
            })
        );
        let ws = BrokerAddr::parse("ws://h:8080/broker/mqtt").unwrap();
        assert_eq!(
            BrokerEndpoint::resolve(&ws, None).unwrap().to_string(),
            "ws://h:8080/broker/mqtt"
        );
        assert!(BrokerAddr::parse("mqtt://h:1883/x").is_err());
        assert!(BrokerAddr::parse("http://h:443").is_err());
        assert!(BrokerAddr::parse("mqtt://h").is_err());
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("mqtt://u:p@h:1883"), "mqtt://***@h:1883");
        assert_eq!(redact_url("mqtt://u@h:1883/x@y"), "mqtt://***@h:1883/x@y");
        assert_eq!(redact_url("u:p@h:1883"), "***@h:1883");
        assert_eq!(redact_url("mqtt://a:b@c@h:1"), "mqtt://***@h:1");
        assert_eq!(redact_url("mqtt://h:1883/a@b"), "mqtt://h:1883/a@b");
        assert_eq!(redact_url("embedded"), "embedded");
        assert_eq!(redact_url(""), "");
    }

    #[test]
    fn embedded_needs_a_port() {
        assert!(BrokerEndpoint::resolve(&BrokerAddr::Embedded, None).is_err());
        assert_eq!(
            BrokerEndpoint::resolve(
                &BrokerAddr::Embedded,
                Some(&BrokerEndpoint::new("127.0.0.1", 1884))
            )
            .unwrap()
            .to_string(),
            "mqtt://127.0.0.1:1884"
        );
        let tcp = BrokerAddr::Tcp {
            host: "::1".into(),
            port: 1883,
            tls: false,
            websocket: None,
        };
        assert_eq!(
            BrokerEndpoint::resolve(&tcp, None).unwrap().to_string(),
            "mqtt://[::1]:1883"
        );
    }

    /// `embedded` means the same for every command: this process's broker,
    /// its own address (an IPv6 or non-loopback bind included), or an
    /// error that says what it means and what to give instead.
    #[test]
    fn embedded_is_this_process_broker_for_every_caller() {
        let own = BrokerEndpoint::new("::1", 40000);
        assert_eq!(
            BrokerEndpoint::from_url("embedded", Some(&own)).unwrap(),
            own
        );
        let e = BrokerEndpoint::from_url("embedded", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("starts inside itself"), "{e}");
        assert!(e.contains("mqtt://HOST:PORT"), "{e}");
        assert_eq!(
            BrokerEndpoint::from_url("mqtt://h:1883", Some(&own)).unwrap(),
            BrokerEndpoint::new("h", 1883)
        );
        let e = BrokerEndpoint::from_url("mqtt://u:s3cret@h:1883", None)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cret") && e.contains("***@h:1883"), "{e}");
    }
}
