//! One connection to a source's broker, to see that it answers and accepts
//! the source's subscriptions: `ctower check --connect`.
//!
//! Not the source loop ([`crate::mqtt`]): one attempt, no retry, bounded by
//! a timeout. It connects with a clean session under a client id of its
//! own (the source's, with [`PROBE_SUFFIX`]), so a running ctower's
//! persistent session is neither taken over nor changed, subscribes to the
//! source's filters, and disconnects once the broker answered.

use crate::config::Source;
use crate::endpoint::BrokerEndpoint;
use crate::mqtt::{base_options, disconnect, qos_from_u8};
use crate::CollectorError;
use rumqttc::{AsyncClient, Event, Incoming, SubscribeFilter, SubscribeReasonCode};
use std::time::Duration;

/// Appended to the source's client id for the probe's connection.
pub const PROBE_SUFFIX: &str = "-check";

/// What one probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// The broker tried.
    pub endpoint: BrokerEndpoint,
    /// Filters the broker refused (its access control, typically).
    pub refused_filters: Vec<String>,
}

/// Connects once to `endpoint` as `source` would (its credentials and
/// keep-alive), subscribes to its filters and disconnects. An error says
/// why the connection failed (refused, not authorised, no answer within
/// `timeout` …); a connection that worked but refused some filters is a
/// report naming them.
pub async fn probe_source(
    source: &Source,
    endpoint: &BrokerEndpoint,
    timeout: Duration,
) -> Result<ProbeReport, CollectorError> {
    let client_id = format!("{}{PROBE_SUFFIX}", source.client_id);
    let mut options = base_options(&client_id, endpoint, source.keep_alive, source.tls.as_ref())?;
    options.set_clean_session(true);
    if let Some(c) = &source.credentials {
        options.set_credentials(c.username.clone(), c.password.clone());
    }
    let qos = qos_from_u8(source.qos)?;
    let filters: Vec<SubscribeFilter> = source
        .subscriptions
        .iter()
        .map(|f| SubscribeFilter::new(f.clone(), qos))
        .collect();
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let answer = tokio::time::timeout(timeout, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    if filters.is_empty() {
                        return Ok(Vec::new());
                    }
                    client
                        .try_subscribe_many(filters.clone())
                        .map_err(|e| CollectorError::Mqtt(format!("subscribe: {e}")))?;
                }
                Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                    let refused = ack
                        .return_codes
                        .iter()
                        .zip(&source.subscriptions)
                        .filter(|(code, _)| matches!(code, SubscribeReasonCode::Failure))
                        .map(|(_, f)| f.clone())
                        .collect();
                    return Ok(refused);
                }
                Ok(_) => {}
                Err(e) => return Err(CollectorError::Mqtt(e.to_string())),
            }
        }
    })
    .await;
    let refused_filters = match answer {
        Ok(Ok(refused)) => refused,
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(CollectorError::Mqtt(format!(
                "no answer from {endpoint} within {} s",
                timeout.as_secs_f64()
            )))
        }
    };
    disconnect(&client, &mut eventloop).await;
    Ok(ProbeReport {
        endpoint: endpoint.clone(),
        refused_filters,
    })
}
