//! One write to InfluxDB's v2 write API through the `influxdb2` crate, with
//! its weak points guarded: the URL is checked before the client is built
//! (it panics on a bad one), every call has a deadline (it has none of its
//! own), and the answer is classified for the drainer.

use super::InfluxRules;
use influxdb2::api::write::TimestampPrecision;
use influxdb2::RequestError;
use std::time::Duration;

/// What became of one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 204: every line is stored.
    Written,
    /// Worth retrying the same lines later: 429, 5xx, 408, a timeout, no
    /// connection.
    Retry(String),
    /// The server refused the body (400, 413, 422): split it to find the
    /// line it refuses.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// What the server said.
        text: String,
    },
    /// The configuration is wrong (401, 403, 404 …): `key` names the
    /// setting to fix.
    Config {
        /// The HTTP status.
        status: u16,
        /// The key to look at.
        key: &'static str,
        /// What the server said.
        text: String,
    },
}

/// The InfluxDB client and where it writes.
pub struct Writer {
    client: influxdb2::Client,
    org: String,
    bucket: String,
    timeout: Duration,
    token_key: &'static str,
}

impl Writer {
    /// A client for `rules` (already checked: the URL parses).
    pub fn new(rules: &InfluxRules) -> Result<Writer, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(rules.timeout)
            .timeout(rules.timeout)
            .pool_idle_timeout(Duration::from_secs(30));
        let client = influxdb2::ClientBuilder::with_builder(
            http,
            rules.url.as_str(),
            rules.org.as_str(),
            rules.token.clone().unwrap_or_default(),
        )
        .build()
        .map_err(|e| format!("cannot build the InfluxDB client: {e}"))?;
        Ok(Writer {
            client,
            org: rules.org.clone(),
            bucket: rules.bucket.clone(),
            timeout: rules.timeout,
            token_key: rules.token_key,
        })
    }

    /// Writes `body` (lines, nanosecond timestamps) once.
    pub async fn write(&self, body: String) -> Outcome {
        let call = self.client.write_line_protocol_with_precision(
            &self.org,
            &self.bucket,
            body,
            TimestampPrecision::Nanoseconds,
        );
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), call).await {
            Err(_) => Outcome::Retry(format!("no answer within {:?}", self.timeout)),
            Ok(Ok(())) => Outcome::Written,
            Ok(Err(e)) => classify(e, self.token_key),
        }
    }
}

/// The outcome of a failed call.
pub fn classify(e: RequestError, token_key: &'static str) -> Outcome {
    match e {
        RequestError::Http { status, text } => status_outcome(status.as_u16(), text, token_key),
        // Connection refused, reset, timed out: the server may come back.
        RequestError::ReqwestProcessing { source } => Outcome::Retry(error_chain(&source)),
        other => Outcome::Retry(other.to_string()),
    }
}

/// The outcome of an HTTP status other than 204; `token_key` is where the
/// token comes from (`influx.token_env` or `influx.token_file`).
pub fn status_outcome(status: u16, text: String, token_key: &'static str) -> Outcome {
    let text = text.trim().chars().take(500).collect::<String>();
    match status {
        408 | 429 | 500..=599 => Outcome::Retry(format!("HTTP {status}: {text}")),
        400 | 413 | 422 => Outcome::Rejected { status, text },
        401 | 403 => Outcome::Config {
            status,
            key: token_key,
            text,
        },
        404 => Outcome::Config {
            status,
            key: if text.contains("organization") {
                "influx.org"
            } else if text.contains("bucket") {
                "influx.bucket"
            } else {
                "influx.url"
            },
            text,
        },
        _ => Outcome::Config {
            status,
            key: "influx.url",
            text,
        },
    }
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    // reqwest's own text repeats some causes: each is added once.
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !s.contains(&c_text) {
            s.push_str(": ");
            s.push_str(&c_text);
        }
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "influx.token_env";

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            status_outcome(503, "busy".into(), K),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            status_outcome(429, "".into(), K),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            status_outcome(422, "".into(), K),
            Outcome::Rejected { status: 422, .. }
        ));
        assert!(matches!(
            status_outcome(401, "".into(), K),
            Outcome::Config {
                key: "influx.token_env",
                ..
            }
        ));
        assert!(matches!(
            status_outcome(
                404,
                r#"{"code":"not found","message":"bucket \"x\" not found"}"#.into(),
                K
            ),
            Outcome::Config {
                key: "influx.bucket",
                ..
            }
        ));
    }
}
