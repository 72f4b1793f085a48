//! What each kind of hook receives for a [`Notification`]: pure functions
//! from the notification to the request body.
//!
//! - **webhook** and **command**: the envelope
//!   `{"type","timestamp","data"}` (`type` is `alarm.<event kind>`, or
//!   `alarm.repeat`, `alarm.escalated`, `alarm.flood`, `alarm.flood_ended`;
//!   `data` is the alarm event with `action`, `dedup_key` and, when they
//!   apply, `repeat`, `escalated_from`, or the flood summary).
//! - **slack**: an incoming-webhook message, `text` (the fallback shown in
//!   notifications) and Block Kit `blocks` (a section and a context line).
//! - **teams**: a `message` with one Adaptive Card attachment (a title and
//!   a fact set), the format of Teams' incoming webhooks (Workflows).
//! - **pagerduty**: Events API v2, `trigger` (with `payload.summary`,
//!   `source`, `severity`, `timestamp`, `component`, `group`, `class`,
//!   `custom_details`), `acknowledge` or `resolve`, each with the routing
//!   key and the alarm occurrence's `dedup_key`. Repeats are not sent
//!   (PagerDuty repeats and escalates on its own); a flood is one incident,
//!   resolved when the flood ends.

use super::envelope::event_type;
use crate::config::Target;
use crate::notify::{Action, FloodSummary, Notification};
use ctower_model::time::rfc3339_ms;
use ctower_model::{AlarmEvent, Priority};
use serde_json::{json, Value};

/// The envelope `type` of a notification.
pub fn notification_type(n: &Notification) -> &'static str {
    match (n.action, &n.event) {
        (Action::Repeat, _) => "alarm.repeat",
        (Action::Escalate, _) => "alarm.escalated",
        (Action::Flood, _) => "alarm.flood",
        (Action::FloodEnded, _) => "alarm.flood_ended",
        (_, Some(ev)) => event_type(ev.kind),
        (_, None) => "alarm.update",
    }
}

fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::Low => "low",
        Priority::Medium => "medium",
        Priority::High => "high",
        Priority::Urgent => "urgent",
    }
}

/// The envelope of the webhook and command hooks.
pub fn envelope(n: &Notification) -> Value {
    let ts = n.event.as_ref().map_or(n.created_ms, |e| e.ts_ms);
    let mut data = match (&n.event, &n.flood) {
        (Some(ev), _) => serde_json::to_value(ev).unwrap_or(Value::Null),
        (None, Some(f)) => serde_json::to_value(f).unwrap_or(Value::Null),
        (None, None) => json!({}),
    };
    if let Value::Object(m) = &mut data {
        m.insert("action".into(), json!(n.action.as_str()));
        m.insert("dedup_key".into(), json!(n.dedup_key));
        if n.repeat > 0 {
            m.insert("repeat".into(), json!(n.repeat));
        }
        if let Some(from) = &n.escalated_from {
            m.insert("escalated_from".into(), json!(from));
        }
    }
    json!({
        "type": notification_type(n),
        "timestamp": rfc3339_ms(ts),
        "data": data,
    })
}

fn where_(ev: &AlarmEvent) -> String {
    match &ev.signal {
        Some(s) => format!("{} {s}", ev.scope),
        None => ev.scope.to_string(),
    }
}

fn value_text(ev: &AlarmEvent) -> String {
    match ev.value {
        Some(v) => format!("{} = {v} (limit {})", ev.metric, ev.threshold),
        None => format!("{} (limit {})", ev.metric, ev.threshold),
    }
}

/// One line for people: what happened, where, and the value.
pub fn headline(n: &Notification) -> String {
    if let Some(f) = &n.flood {
        return flood_line(n.action, f);
    }
    let Some(ev) = &n.event else {
        return format!("ctower: {}", n.action.as_str());
    };
    let what = match n.action {
        Action::Trigger => "ALARM",
        Action::Repeat => "STILL UNACKNOWLEDGED",
        Action::Escalate => "ESCALATED",
        Action::Acknowledge => "acknowledged",
        Action::Resolve => "returned to normal",
        _ => event_type(ev.kind).trim_start_matches("alarm."),
    };
    format!(
        "[{}] {what}: {} at {} ({})",
        priority_name(ev.priority).to_uppercase(),
        ev.message,
        where_(ev),
        ev.rule
    )
}

fn flood_line(action: Action, f: &FloodSummary) -> String {
    match action {
        Action::FloodEnded => format!(
            "Alarm flood on {} is over: {} alarm(s) were held back (see the console)",
            f.site, f.held_back
        ),
        _ => format!(
            "ALARM FLOOD on {}: {} alarms in {} min; further alarms of the site are held back (urgent ones still go out)",
            f.site,
            f.alarms_in_window,
            f.window_secs / 60
        ),
    }
}

fn details(n: &Notification) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(ev) = &n.event {
        out.push(("Priority".into(), priority_name(ev.priority).into()));
        out.push(("Where".into(), where_(ev)));
        out.push(("Value".into(), value_text(ev)));
        out.push(("State".into(), format!("{:?}", ev.state)));
        out.push(("Event time".into(), rfc3339_ms(ev.ts_ms)));
        out.push(("Rule".into(), ev.rule.to_string()));
        if let Some(from) = &n.escalated_from {
            out.push(("Escalated from".into(), from.to_string()));
        }
    }
    if let Some(f) = &n.flood {
        let by: Vec<String> = f
            .by_priority
            .iter()
            .rev()
            .map(|(p, c)| format!("{} {c}", priority_name(*p)))
            .collect();
        out.push(("By priority".into(), by.join(", ")));
        let top: Vec<String> = f
            .top_rules
            .iter()
            .map(|(r, c)| format!("{r} ×{c}"))
            .collect();
        out.push(("Top rules".into(), top.join(", ")));
        out.push(("Started".into(), rfc3339_ms(f.started_ms)));
    }
    out
}

/// Slack incoming-webhook message.
pub fn slack(n: &Notification) -> Value {
    let head = headline(n);
    let facts: Vec<String> = details(n)
        .into_iter()
        .map(|(k, v)| format!("*{k}:* {v}"))
        .collect();
    json!({
        "text": head,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{head}*\n{}", facts.join("\n"))}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("ctower · {} · id {}", n.action.as_str(), n.id)}]}
        ]
    })
}

/// Microsoft Teams incoming-webhook message (an Adaptive Card).
pub fn teams(n: &Notification) -> Value {
    let facts: Vec<Value> = details(n)
        .into_iter()
        .map(|(k, v)| json!({"title": k, "value": v}))
        .collect();
    let urgent =
        n.event.as_ref().map(|e| e.priority) >= Some(Priority::High) || n.action == Action::Flood;
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": headline(n), "weight": "Bolder", "wrap": true,
                     "color": if urgent { "Attention" } else { "Default" }},
                    {"type": "FactSet", "facts": facts}
                ]
            }
        }]
    })
}

/// PagerDuty's severity for a priority.
pub fn pagerduty_severity(p: Priority) -> &'static str {
    match p {
        Priority::Urgent => "critical",
        Priority::High => "error",
        Priority::Medium => "warning",
        Priority::Low => "info",
    }
}

/// PagerDuty Events API v2 body; `None` when PagerDuty is not told (a
/// repeat, an update).
pub fn pagerduty(n: &Notification, routing_key: &str) -> Option<Value> {
    let action = match n.action {
        Action::Trigger | Action::Escalate | Action::Flood => "trigger",
        Action::Acknowledge => "acknowledge",
        Action::Resolve | Action::FloodEnded => "resolve",
        Action::Repeat | Action::Update => return None,
    };
    if action != "trigger" {
        return Some(json!({
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": n.dedup_key,
        }));
    }
    let mut summary = headline(n);
    if summary.len() > 1024 {
        let mut cut = 1021;
        while !summary.is_char_boundary(cut) {
            cut -= 1;
        }
        summary.truncate(cut);
        summary.push_str("...");
    }
    let (source, severity, ts, component, group, class) = match (&n.event, &n.flood) {
        (Some(ev), _) => (
            ev.scope.site.as_deref().unwrap_or("ctower").to_string(),
            pagerduty_severity(ev.priority),
            ev.ts_ms,
            ev.scope
                .asset
                .as_deref()
                .or(ev.scope.line.as_deref())
                .unwrap_or("")
                .to_string(),
            ev.scope.line.as_deref().unwrap_or("").to_string(),
            ev.rule.to_string(),
        ),
        (None, Some(f)) => (
            f.site.to_string(),
            pagerduty_severity(f.priority),
            f.started_ms,
            String::new(),
            String::new(),
            "alarm_flood".into(),
        ),
        (None, None) => return None,
    };
    let custom: serde_json::Map<String, Value> = details(n)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    Some(json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": n.dedup_key,
        "client": "ctower",
        "payload": {
            "summary": summary,
            "source": source,
            "severity": severity,
            "timestamp": rfc3339_ms(ts),
            "component": component,
            "group": group,
            "class": class,
            "custom_details": custom,
        }
    }))
}

/// The body for `target`; `None` when this target is not told of it.
pub fn body(n: &Notification, target: &Target) -> Option<String> {
    let v = match target {
        Target::Webhook { .. } | Target::Command { .. } => envelope(n),
        Target::Slack { .. } => slack(n),
        Target::Teams { .. } => teams(n),
        Target::PagerDuty { routing_key, .. } => {
            pagerduty(n, routing_key.as_deref().unwrap_or(""))?
        }
    };
    Some(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Route;
    use crate::notify::{FloodLimits, Notifier};
    use ctower_model::{AlarmEventKind, AlarmState, AssetKey, Level};

    fn raised() -> AlarmEvent {
        AlarmEvent {
            ts_ms: 1_772_427_600_000,
            rule: "wfi-conductivity".into(),
            scope: AssetKey::new("lyon-fill", "utilities", "wfi", "loop-1").scope(Level::Asset),
            signal: Some("conductivity".into()),
            kind: AlarmEventKind::Raised,
            state: AlarmState::UnackActive,
            priority: Priority::Urgent,
            metric: "conductivity.max".into(),
            value: Some(1.42),
            threshold: 1.3,
            message: "WFI conductivity above USP <645> 1.3 µS/cm".into(),
        }
    }

    fn notes() -> Vec<Notification> {
        let route = Route {
            name: "pd".into(),
            ..Route::default()
        };
        let mut n = Notifier::new(vec![route], FloodLimits::default());
        let mut out = n.on_event(&raised(), 0);
        let mut ack = raised();
        ack.kind = AlarmEventKind::Acknowledged;
        ack.state = AlarmState::AckActive;
        out.extend(n.on_event(&ack, 1));
        let mut clear = raised();
        clear.kind = AlarmEventKind::Cleared;
        clear.state = AlarmState::Normal;
        clear.ts_ms += 60_000;
        out.extend(n.on_event(&clear, 2));
        out
    }

    /// The fields PagerDuty's Events API v2 documents, with their types
    /// and allowed values.
    #[test]
    fn pagerduty_bodies_have_the_documented_fields() {
        let ns = notes();
        let t = pagerduty(&ns[0], "R0UT1NGKEY").unwrap_or_else(|| panic!("no body"));
        assert_eq!(t["routing_key"], "R0UT1NGKEY");
        assert_eq!(t["event_action"], "trigger");
        let key = t["dedup_key"].as_str().unwrap_or_default();
        assert!(!key.is_empty() && key.len() <= 255);
        let p = &t["payload"];
        assert!(p["summary"]
            .as_str()
            .is_some_and(|s| !s.is_empty() && s.len() <= 1024));
        assert_eq!(p["source"], "lyon-fill");
        assert_eq!(p["severity"], "critical");
        assert_eq!(p["timestamp"], "2026-03-02T05:00:00.000Z");
        assert_eq!(p["class"], "wfi-conductivity");
        assert!(p["custom_details"].is_object());
        let a = pagerduty(&ns[1], "R0UT1NGKEY").unwrap_or_else(|| panic!("no body"));
        assert_eq!(
            a,
            json!({"routing_key": "R0UT1NGKEY", "event_action": "acknowledge", "dedup_key": key})
        );
        let r = pagerduty(&ns[2], "R0UT1NGKEY").unwrap_or_else(|| panic!("no body"));
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(r["dedup_key"], key);
        for (p, s) in [
            (Priority::High, "error"),
            (Priority::Medium, "warning"),
            (Priority::Low, "info"),
        ] {
            assert_eq!(pagerduty_severity(p), s);
        }
    }

    /// Slack: `text` is required as the notification fallback when blocks
    /// are sent; blocks are `section` (mrkdwn text) and `context` (elements).
    #[test]
    fn slack_bodies_have_text_and_blocks() {
        let s = slack(&notes()[0]);
        let text = s["text"].as_str().unwrap_or_default();
        assert!(
            text.starts_with("[URGENT] ALARM: WFI conductivity"),
            "{text}"
        );
        assert_eq!(s["blocks"][0]["type"], "section");
        assert_eq!(s["blocks"][0]["text"]["type"], "mrkdwn");
        assert!(s["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("conductivity.max = 1.42 (limit 1.3)"));
        assert_eq!(s["blocks"][1]["type"], "context");
        assert_eq!(s["blocks"][1]["elements"][0]["type"], "mrkdwn");
    }

    #[test]
    fn teams_bodies_are_adaptive_cards() {
        let t = teams(&notes()[0]);
        assert_eq!(t["type"], "message");
        let a = &t["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(a["content"]["type"], "AdaptiveCard");
        assert_eq!(a["content"]["body"][0]["type"], "TextBlock");
        assert_eq!(a["content"]["body"][1]["type"], "FactSet");
    }

    #[test]
    fn the_envelope_names_the_action() {
        let ns = notes();
        let e = envelope(&ns[0]);
        assert_eq!(e["type"], "alarm.raised");
        assert_eq!(e["data"]["action"], "trigger");
        assert_eq!(e["data"]["rule"], "wfi-conductivity");
        assert_eq!(envelope(&ns[1])["type"], "alarm.acknowledged");
        assert_eq!(envelope(&ns[2])["type"], "alarm.cleared");
    }
}
