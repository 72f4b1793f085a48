use super::*;
use ctower_model::{AssetKey, Level};
use std::time::Duration;

const MIN: i64 = 60_000;

fn route(name: &str) -> Route {
    Route {
        name: name.into(),
        ..Route::default()
    }
}

fn ev(
    rule: &str,
    site: &str,
    kind: AlarmEventKind,
    state: AlarmState,
    ts_ms: i64,
    p: Priority,
) -> AlarmEvent {
    AlarmEvent {
        ts_ms,
        rule: rule.into(),
        scope: AssetKey::new(site, "a", "l", "m").scope(Level::Asset),
        signal: Some("x".into()),
        kind,
        state,
        priority: p,
        metric: "x.last".into(),
        value: Some(1.0),
        threshold: 0.5,
        message: "m".into(),
    }
}

fn raised(rule: &str, ts: i64, p: Priority) -> AlarmEvent {
    ev(
        rule,
        "s1",
        AlarmEventKind::Raised,
        AlarmState::UnackActive,
        ts,
        p,
    )
}

fn summary(ns: &[Notification]) -> Vec<(String, Action)> {
    ns.iter().map(|n| (n.hook.to_string(), n.action)).collect()
}

/// The acceptance case: an unacknowledged urgent alarm repeats on the
/// primary's schedule, escalates to the lead after 15 minutes, and an
/// acknowledgement stops both and is sent to both; the clear resolves.
#[test]
fn unacknowledged_alarm_repeats_and_escalates_until_acknowledged() {
    let primary = Route {
        repeat: Some(Duration::from_secs(300)),
        escalate: Some((Duration::from_secs(900), "lead".into())),
        ..route("primary")
    };
    let lead = Route {
        escalation_only: true,
        ..route("lead")
    };
    let mut n = Notifier::new(vec![primary, lead], FloodLimits::default());
    let t0 = 1_000_000;
    let out = n.on_event(&raised("r", 5, Priority::Urgent), t0);
    assert_eq!(summary(&out), vec![("primary".into(), Action::Trigger)]);
    let key = out[0].dedup_key.clone();
    assert!(n.tick(t0 + 5 * MIN - 1).is_empty());
    let r1 = n.tick(t0 + 5 * MIN);
    assert_eq!(summary(&r1), vec![("primary".into(), Action::Repeat)]);
    assert_eq!(r1[0].repeat, 1);
    assert_eq!(
        summary(&n.tick(t0 + 10 * MIN)),
        vec![("primary".into(), Action::Repeat)]
    );
    let esc = n.tick(t0 + 15 * MIN);
    assert_eq!(
        summary(&esc),
        vec![
            ("primary".into(), Action::Repeat),
            ("lead".into(), Action::Escalate)
        ]
    );
    assert_eq!(esc[1].escalated_from.as_deref(), Some("primary"));
    assert_eq!(esc[1].dedup_key, key, "one incident per alarm occurrence");
    assert!(n.tick(t0 + 15 * MIN + 1).is_empty(), "no second escalation");
    // Acknowledged: both are told, the timers stop.
    let ack = ev(
        "r",
        "s1",
        AlarmEventKind::Acknowledged,
        AlarmState::AckActive,
        6,
        Priority::Urgent,
    );
    let out = n.on_event(&ack, t0 + 16 * MIN);
    assert_eq!(
        summary(&out),
        vec![
            ("primary".into(), Action::Acknowledge),
            ("lead".into(), Action::Acknowledge)
        ]
    );
    assert!(out.iter().all(|x| x.dedup_key == key));
    assert!(n.tick(t0 + 60 * MIN).is_empty());
    assert_eq!(n.escalating(), 0);
    // Cleared after the ack: resolve to both, then the alarm is forgotten.
    let clear = ev(
        "r",
        "s1",
        AlarmEventKind::Cleared,
        AlarmState::Normal,
        7,
        Priority::Urgent,
    );
    let out = n.on_event(&clear, t0 + 61 * MIN);
    assert_eq!(
        summary(&out),
        vec![
            ("primary".into(), Action::Resolve),
            ("lead".into(), Action::Resolve)
        ]
    );
    assert!(n.on_event(&clear, t0 + 62 * MIN).is_empty());
}

#[test]
fn an_acknowledgement_before_the_escalation_stops_it() {
    let primary = Route {
        escalate: Some((Duration::from_secs(600), "lead".into())),
        ..route("primary")
    };
    let lead = Route {
        escalation_only: true,
        ..route("lead")
    };
    let mut n = Notifier::new(vec![primary, lead], FloodLimits::default());
    n.on_event(&raised("r", 5, Priority::High), 0);
    let ack = ev(
        "r",
        "s1",
        AlarmEventKind::Acknowledged,
        AlarmState::AckActive,
        6,
        Priority::High,
    );
    assert_eq!(
        summary(&n.on_event(&ack, 9 * MIN)),
        vec![("primary".into(), Action::Acknowledge)]
    );
    assert!(n.tick(11 * MIN).is_empty());
}

#[test]
fn a_return_to_normal_resolves_and_stops_the_timers() {
    let primary = Route {
        repeat: Some(Duration::from_secs(60)),
        ..route("primary")
    };
    let mut n = Notifier::new(vec![primary], FloodLimits::default());
    n.on_event(&raised("r", 5, Priority::High), 0);
    let rtn = ev(
        "r",
        "s1",
        AlarmEventKind::Cleared,
        AlarmState::UnackRtn,
        6,
        Priority::High,
    );
    assert_eq!(
        summary(&n.on_event(&rtn, 30_000)),
        vec![("primary".into(), Action::Resolve)]
    );
    assert!(n.tick(10 * MIN).is_empty());
    // The late acknowledgement is still passed on, then it is forgotten.
    let ack = ev(
        "r",
        "s1",
        AlarmEventKind::Acknowledged,
        AlarmState::Normal,
        7,
        Priority::High,
    );
    assert_eq!(
        summary(&n.on_event(&ack, 11 * MIN)),
        vec![("primary".into(), Action::Acknowledge)]
    );
    assert_eq!(n.tracked.len(), 0);
}

#[test]
fn routes_filter_by_priority_site_and_rule() {
    let high = Route {
        min_priority: Priority::High,
        ..route("high")
    };
    let s2 = Route {
        sites: vec!["s2".into()],
        ..route("s2")
    };
    let rule = Route {
        rules: vec!["wfi".into()],
        ..route("wfi")
    };
    let mut n = Notifier::new(vec![high, s2, rule], FloodLimits::default());
    assert_eq!(
        summary(&n.on_event(&raised("a", 1, Priority::Low), 0)),
        vec![]
    );
    assert_eq!(
        summary(&n.on_event(&raised("b", 2, Priority::High), 0)),
        vec![("high".into(), Action::Trigger)]
    );
    let other = ev(
        "c",
        "s2",
        AlarmEventKind::Raised,
        AlarmState::UnackActive,
        3,
        Priority::Low,
    );
    assert_eq!(
        summary(&n.on_event(&other, 0)),
        vec![("s2".into(), Action::Trigger)]
    );
    assert_eq!(
        summary(&n.on_event(&raised("wfi", 4, Priority::Low), 0)),
        vec![("wfi".into(), Action::Trigger)]
    );
    // A clear goes only where the raise went.
    let clear = ev(
        "b",
        "s1",
        AlarmEventKind::Cleared,
        AlarmState::UnackRtn,
        5,
        Priority::High,
    );
    assert_eq!(
        summary(&n.on_event(&clear, 0)),
        vec![("high".into(), Action::Resolve)]
    );
}

/// Thirty alarms in five minutes on one site: the first ten go out one by
/// one, the eleventh starts the flood (one flood notification), the rest
/// are held back; the next raise after the window ends it.
#[test]
fn a_flood_sends_one_summary() {
    let mut n = Notifier::new(vec![route("chat")], FloodLimits::default());
    let mut all = Vec::new();
    for i in 0..30 {
        all.extend(n.on_event(
            &raised(&format!("r{}", i % 4), i * 10_000, Priority::Medium),
            0,
        ));
    }
    let actions: Vec<Action> = all.iter().map(|x| x.action).collect();
    assert_eq!(
        actions.iter().filter(|a| **a == Action::Trigger).count(),
        10
    );
    assert_eq!(actions.iter().filter(|a| **a == Action::Flood).count(), 1);
    assert_eq!(actions.len(), 11);
    let f = all[10]
        .flood
        .clone()
        .unwrap_or_else(|| panic!("no summary"));
    assert_eq!(f.alarms_in_window, 11);
    assert_eq!(f.site.as_ref(), "s1");
    // Another site is not affected.
    let other = ev(
        "z",
        "s2",
        AlarmEventKind::Raised,
        AlarmState::UnackActive,
        300_000,
        Priority::Low,
    );
    assert_eq!(
        summary(&n.on_event(&other, 0)),
        vec![("chat".into(), Action::Trigger)]
    );
    // Eleven minutes later the rate is back under the limit.
    let end = n.on_event(&raised("late", 30 * 10_000 + 11 * MIN, Priority::Low), 0);
    assert_eq!(
        summary(&end),
        vec![
            ("chat".into(), Action::FloodEnded),
            ("chat".into(), Action::Trigger)
        ]
    );
    let f = end[0].flood.clone().unwrap_or_else(|| panic!("no summary"));
    assert_eq!(f.held_back, 19);
    assert_eq!(f.by_priority.get(&Priority::Medium), Some(&30));
    // Ids are unique.
    let mut ids: Vec<&str> = all.iter().chain(&end).map(|x| x.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len() + end.len());
}

#[test]
fn urgent_alarms_pass_a_flood() {
    let mut n = Notifier::new(vec![route("chat")], FloodLimits::default());
    for i in 0..11 {
        n.on_event(&raised(&format!("r{i}"), i, Priority::Low), 0);
    }
    let out = n.on_event(&raised("boom", 20, Priority::Urgent), 0);
    assert_eq!(summary(&out), vec![("chat".into(), Action::Trigger)]);
}

#[test]
fn ids_are_deterministic_and_rebuild_tells_no_one() {
    let make = || {
        let primary = Route {
            repeat: Some(Duration::from_secs(60)),
            ..route("p")
        };
        Notifier::new(vec![primary], FloodLimits::default())
    };
    let (mut a, mut b) = (make(), make());
    let x = a.on_event(&raised("r", 5, Priority::High), 0);
    let y = b.on_event(&raised("r", 5, Priority::High), 99);
    assert_eq!(x[0].id, y[0].id, "the id does not depend on the wall clock");
    // After a restart, the raise is rebuilt silently; the repeat follows.
    let mut c = make();
    c.rebuild(&raised("r", 5, Priority::High), 0);
    let rep = c.tick(MIN);
    assert_eq!(summary(&rep), vec![("p".into(), Action::Repeat)]);
    assert_ne!(rep[0].id, x[0].id);
}

/// An alarm raised while shelved was told to no hook: when the shelf ends
/// with the alarm still active it is a new alarm for them; one that was
/// told and then shelved gets its repeats back when unshelved.
#[test]
fn an_alarm_seen_again_after_a_mask_is_told_and_escalates_again() {
    let primary = Route {
        repeat: Some(Duration::from_secs(60)),
        ..route("p")
    };
    let mut n = Notifier::new(vec![primary], FloodLimits::default());
    let unshelved = |ts| {
        ev(
            "r",
            "s1",
            AlarmEventKind::Unshelved,
            AlarmState::UnackActive,
            ts,
            Priority::High,
        )
    };
    // Never told: the unshelve is its trigger.
    let out = n.on_event(&unshelved(5), 0);
    assert_eq!(summary(&out), vec![("p".into(), Action::Trigger)]);
    // Told, shelved (timers stop), unshelved (timers again).
    let shelved = ev(
        "r",
        "s1",
        AlarmEventKind::Shelved,
        AlarmState::Shelved,
        6,
        Priority::High,
    );
    assert_eq!(
        summary(&n.on_event(&shelved, 10_000)),
        vec![("p".into(), Action::Update)]
    );
    assert!(n.tick(10 * MIN).is_empty());
    assert_eq!(
        summary(&n.on_event(&unshelved(7), 10 * MIN)),
        vec![("p".into(), Action::Update)]
    );
    assert_eq!(
        summary(&n.tick(11 * MIN)),
        vec![("p".into(), Action::Repeat)]
    );
    // After a long pause: one repeat, not one per missed minute.
    assert_eq!(n.tick(60 * MIN).len(), 1);
}
