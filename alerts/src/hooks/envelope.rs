//! What a webhook receives: the JSON envelope of an alarm event, its
//! deterministic message id and its Standard Webhooks signature. Pure
//! functions; the HTTP side is in `delivery`.

use crate::AlertsError;
use base64::Engine as _;
use ctower_model::time::rfc3339_ms;
use ctower_model::{AlarmEvent, AlarmEventKind};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// The `type` of the webhook envelope for an event kind: `alarm.<kind>`.
pub fn event_type(kind: AlarmEventKind) -> &'static str {
    match kind {
        AlarmEventKind::Raised => "alarm.raised",
        AlarmEventKind::Cleared => "alarm.cleared",
        AlarmEventKind::Acknowledged => "alarm.acknowledged",
        AlarmEventKind::Reset => "alarm.reset",
        AlarmEventKind::Shelved => "alarm.shelved",
        AlarmEventKind::Unshelved => "alarm.unshelved",
        AlarmEventKind::Suppressed => "alarm.suppressed",
        AlarmEventKind::Unsuppressed => "alarm.unsuppressed",
        AlarmEventKind::RemovedFromService => "alarm.removed_from_service",
        AlarmEventKind::ReturnedToService => "alarm.returned_to_service",
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: &'a AlarmEvent,
}

/// The webhook body of an event:
/// `{"type":…,"timestamp":"<RFC 3339 event time>","data":<AlarmEvent>}`.
pub fn webhook_body(ev: &AlarmEvent) -> Result<String, AlertsError> {
    Ok(serde_json::to_string(&Envelope {
        kind: event_type(ev.kind),
        timestamp: rfc3339_ms(ev.ts_ms),
        data: ev,
    })?)
}

/// A deterministic message id: `msg_` + 32 hex digits of SHA-256 over the
/// rule, scope, signal, event time and kind. Equal for retries and for a
/// replay of the same data.
pub fn webhook_id(ev: &AlarmEvent) -> String {
    let mut h = Sha256::new();
    for part in [
        ev.rule.as_bytes(),
        ev.scope.to_string().as_bytes(),
        ev.scope.level.as_str().as_bytes(),
        ev.signal.as_deref().unwrap_or("").as_bytes(),
        ev.ts_ms.to_string().as_bytes(),
        event_type(ev.kind).as_bytes(),
    ] {
        h.update(part);
        h.update([0u8]);
    }
    let digest = h.finalize();
    let mut id = String::with_capacity(36);
    id.push_str("msg_");
    for b in &digest[..16] {
        let _ = write!(id, "{b:02x}");
    }
    id
}

/// The Standard Webhooks signature header value:
/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn sign(key: &[u8], id: &str, timestamp_secs: i64, body: &str) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let sig = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(sig)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WebhookSecret;
    use ctower_model::{AlarmState, AssetKey, Level, Priority};

    #[test]
    fn standard_webhooks_test_vector() {
        // The example of the Standard Webhooks specification.
        let secret = match WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let sig = sign(
            secret.key(),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    fn ev(kind: AlarmEventKind) -> AlarmEvent {
        AlarmEvent {
            ts_ms: 1_772_427_600_000,
            rule: "r".into(),
            scope: AssetKey::new("s", "a", "l", "m").scope(Level::Asset),
            signal: Some("x".into()),
            kind,
            state: AlarmState::UnackActive,
            priority: Priority::High,
            metric: "x.max".into(),
            value: Some(2.0),
            threshold: 1.3,
            message: "m".into(),
        }
    }

    #[test]
    fn body_and_id() {
        let e = ev(AlarmEventKind::Raised);
        let body = match webhook_body(&e) {
            Ok(b) => b,
            Err(err) => panic!("{err}"),
        };
        let v: serde_json::Value = match serde_json::from_str(&body) {
            Ok(v) => v,
            Err(err) => panic!("{err}"),
        };
        assert_eq!(v["type"], "alarm.raised");
        assert_eq!(v["timestamp"], "2026-03-02T05:00:00.000Z");
        assert_eq!(v["data"]["rule"], "r");
        assert_eq!(v["data"]["state"], "unack_active");
        let id = webhook_id(&e);
        assert_eq!(id.len(), 36);
        assert!(id.starts_with("msg_"));
        assert_eq!(id, webhook_id(&e.clone()));
        assert_ne!(id, webhook_id(&ev(AlarmEventKind::Cleared)));
    }
}
