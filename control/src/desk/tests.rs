use super::*;
use crate::catalogue::AssetPattern;
use ctower_model::ParamType;

const RO: &str = "lyon/utilities/water/ro-1";

fn spec(two_person: bool) -> ParamSpec {
    ParamSpec {
        name: "recovery_setpoint_pct".into(),
        assets: vec![AssetPattern::parse("*/utilities/*/ro-1").unwrap()],
        source: "plant".into(),
        unit: "%".into(),
        ty: ParamType::Float,
        min: Some(60.0),
        max: Some(85.0),
        max_step: Some(5.0),
        readback: "recovery_setpoint_pct".into(),
        tolerance: 0.05,
        confirm_ms: 30_000,
        approval_ms: 600_000,
        min_interval_ms: 60_000,
        stale_ms: 120_000,
        request_roles: vec!["operator".into()],
        approve_roles: vec!["supervisor".into()],
        two_person,
    }
}

fn desk(two_person: bool) -> Desk {
    let mut d = Desk::new(
        Catalogue {
            params: vec![spec(two_person)],
        },
        false,
    );
    assert!(d
        .readback(RO, "recovery_setpoint_pct", 75.0, 1_000)
        .is_empty());
    d
}

fn op() -> Vec<String> {
    vec!["operator".into()]
}
fn sup() -> Vec<String> {
    vec!["supervisor".into()]
}

fn set(d: &Desk, v: f64, now: i64) -> Result<Req, String> {
    d.plan_set(
        "alice",
        &op(),
        RO,
        "recovery_setpoint_pct",
        ParamValue::Float(v),
        "raise recovery",
        now,
    )
}

#[test]
fn request_approve_send_confirm() {
    let mut d = desk(true);
    let r = set(&d, 80.0, 2_000).unwrap();
    assert_eq!(r.view.state, ParamState::Requested);
    assert_eq!(r.view.old, Some(ParamValue::Float(75.0)));
    assert_eq!(r.view.deadline_ms, Some(602_000));
    assert_eq!(r.view.id, "P000001");
    d.commit(r);
    assert_eq!(d.entries()[0].in_flight.as_deref(), Some("P000001"));
    let a = d.plan_approve("bob", &sup(), "P000001", 3_000).unwrap();
    assert_eq!(a.view.state, ParamState::Approved);
    assert_eq!(a.view.decided_by.as_deref(), Some("bob"));
    d.commit(a.clone());
    let w = d.write_of(&a).unwrap();
    assert_eq!(
        (
            w.source.as_str(),
            w.signal.as_str(),
            w.value,
            w.user.as_str()
        ),
        (
            "plant",
            "recovery_setpoint_pct",
            ParamValue::Float(80.0),
            "alice+bob"
        )
    );
    let s = d.plan_sent(&a, "spBv1.0/lyon/DCMD/water/ro-1", 3_000);
    assert_eq!(s.view.deadline_ms, Some(33_000));
    d.commit(s);
    // A read-back still at the old value is shown, and confirms nothing.
    assert!(d
        .readback(RO, "recovery_setpoint_pct", 75.0, 4_000)
        .is_empty());
    assert_eq!(
        d.get("P000001").unwrap().view.readback,
        Some(ParamValue::Float(75.0))
    );
    let c = d.readback(RO, "recovery_setpoint_pct", 80.02, 5_000);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].view.state, ParamState::Confirmed);
    d.commit(c[0].clone());
    assert_eq!(d.entries()[0].in_flight, None);
    assert!(d.due(1_000_000).is_empty(), "nothing open");
}

#[test]
fn without_the_two_person_rule_a_request_is_approved_at_once() {
    let d = desk(false);
    let r = set(&d, 80.0, 2_000).unwrap();
    assert_eq!(r.view.state, ParamState::Approved);
    assert_eq!(r.view.deadline_ms, None);
}

#[test]
fn each_refusal_says_why() {
    let mut d = desk(true);
    let e = set(&d, 90.0, 2_000).unwrap_err();
    assert!(e.contains("above the maximum 85 %"), "{e}");
    let e = set(&d, 55.0, 2_000).unwrap_err();
    assert!(e.contains("below the minimum 60 %"), "{e}");
    let e = set(&d, 81.0, 2_000).unwrap_err();
    assert!(e.contains("larger than the largest step 5 %"), "{e}");
    let e = d
        .plan_set(
            "mallory",
            &["viewer".to_string()],
            RO,
            "recovery_setpoint_pct",
            ParamValue::Float(80.0),
            "x",
            2_000,
        )
        .unwrap_err();
    assert!(e.contains("may not request writes"), "{e}");
    let e = d
        .plan_set(
            "alice",
            &op(),
            "lyon/utilities/water/ro-2",
            "recovery_setpoint_pct",
            ParamValue::Float(80.0),
            "x",
            2_000,
        )
        .unwrap_err();
    assert!(e.contains("not in the catalogue"), "{e}");
    let e = d
        .plan_set(
            "alice",
            &op(),
            RO,
            "recovery_setpoint_pct",
            ParamValue::Bool(true),
            "x",
            2_000,
        )
        .unwrap_err();
    assert!(e.contains("takes a float value"), "{e}");
    // Stale: the read-back is over 2 minutes old.
    let e = set(&d, 80.0, 200_000).unwrap_err();
    assert!(e.contains("stale or dead"), "{e}");
    // In flight.
    d.commit(set(&d, 80.0, 2_000).unwrap());
    let e = set(&d, 78.0, 70_000).unwrap_err();
    assert!(e.contains("still in flight (requested)"), "{e}");
    // Self-approval, and an approver without the role.
    let e = d
        .plan_approve("alice", &sup(), "P000001", 3_000)
        .unwrap_err();
    assert!(e.contains("cannot approve your own request"), "{e}");
    let e = d
        .plan_approve("carol", &op(), "P000001", 3_000)
        .unwrap_err();
    assert!(e.contains("may not approve"), "{e}");
    let e = d.plan_approve("bob", &sup(), "P000042", 3_000).unwrap_err();
    assert!(e.contains("no write request"), "{e}");
    // Rejected: final, nothing to approve after.
    let r = d
        .plan_reject("bob", &sup(), "P000001", "not during the batch", 3_000)
        .unwrap();
    assert_eq!(r.view.state, ParamState::Rejected);
    d.commit(r);
    let e = d.plan_approve("bob", &sup(), "P000001", 4_000).unwrap_err();
    assert!(e.contains("is rejected"), "{e}");
    // Rate limit: one request per minute on the parameter.
    d.readback(RO, "recovery_setpoint_pct", 75.0, 30_000);
    let e = set(&d, 78.0, 30_000).unwrap_err();
    assert!(e.contains("rate limit"), "{e}");
    assert!(set(&d, 78.0, 62_000).is_ok());
}

#[test]
fn read_only_refuses_everything() {
    let mut d = Desk::new(
        Catalogue {
            params: vec![spec(true)],
        },
        true,
    );
    d.readback(RO, "recovery_setpoint_pct", 75.0, 1_000);
    assert!(set(&d, 80.0, 2_000).unwrap_err().contains("read-only"));
    assert!(d
        .plan_approve("bob", &sup(), "P000001", 2_000)
        .unwrap_err()
        .contains("read-only"));
    assert!(d.read_only());
}

#[test]
fn unapproved_requests_expire_and_unread_writes_are_unconfirmed() {
    let mut d = desk(true);
    d.commit(set(&d, 80.0, 2_000).unwrap());
    assert!(d.due(601_999).is_empty());
    let e = d.due(602_000);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].view.state, ParamState::Expired);
    assert!(
        e[0].view.note.contains("nobody approved it"),
        "{}",
        e[0].view.note
    );
    d.commit(e[0].clone());
    let e = d
        .plan_approve("bob", &sup(), "P000001", 602_001)
        .unwrap_err();
    assert!(e.contains("expired"), "{e}");
    // A second request, approved, sent, never read back.
    d.readback(RO, "recovery_setpoint_pct", 75.0, 700_000);
    let r = set(&d, 80.0, 700_000).unwrap();
    d.commit(r);
    let a = d.plan_approve("bob", &sup(), "P000002", 700_100).unwrap();
    d.commit(a.clone());
    d.commit(d.plan_sent(&a, "t", 700_100));
    d.readback(RO, "recovery_setpoint_pct", 75.0, 710_000);
    let u = d.due(730_100);
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].view.state, ParamState::Unconfirmed);
    assert!(
        u[0].view
            .note
            .contains("the read-back 75 % did not reach 80 %"),
        "{}",
        u[0].view.note
    );
    d.commit(u[0].clone());
    assert_eq!(
        d.entries()[0].in_flight,
        None,
        "the parameter is free again"
    );
}

#[test]
fn a_send_failure_is_unconfirmed_and_frees_the_parameter() {
    let mut d = desk(false);
    let r = set(&d, 80.0, 2_000).unwrap();
    d.commit(r.clone());
    let f = d.plan_send_failed(&r, "no birth names the metric", 2_000);
    assert_eq!(f.view.state, ParamState::Unconfirmed);
    d.commit(f);
    assert_eq!(d.entries()[0].in_flight, None);
}

#[test]
fn ids_are_never_used_twice_and_old_requests_are_forgotten() {
    let mut d = desk(false);
    d.numbers_after(41);
    let r = set(&d, 80.0, 2_000).unwrap();
    assert_eq!(r.view.id, "P000042");
    assert_eq!(request_number("P000042"), Some(42));
    for bad in ["", "P", "Q1", "P-1", "P12a"] {
        assert_eq!(request_number(bad), None, "{bad}");
    }
    let mut now = 2_000;
    for _ in 0..(MAX_KEPT_REQUESTS + 10) {
        d.readback(RO, "recovery_setpoint_pct", 75.0, now);
        let r = set(&d, 76.0, now).unwrap();
        d.commit(r.clone());
        d.commit(d.plan_send_failed(&r, "x", now));
        now += 60_000;
    }
    assert_eq!(d.recent().count(), MAX_KEPT_REQUESTS);
}

#[test]
fn a_write_to_the_current_value_is_refused() {
    let d = desk(true);
    let e = set(&d, 75.02, 2_000).unwrap_err();
    assert!(e.contains("already at 75 %"), "{e}");
}

#[test]
fn the_step_is_checked_again_from_where_the_plant_is_at_approval() {
    let mut d = desk(true);
    d.commit(set(&d, 80.0, 2_000).unwrap());
    // The plant moved to 70 meanwhile (locally, or another system).
    d.readback(RO, "recovery_setpoint_pct", 70.0, 3_000);
    let e = d.plan_approve("bob", &sup(), "P000001", 4_000).unwrap_err();
    assert!(e.contains("larger than the largest step 5 %"), "{e}");
    assert!(e.contains("moved since the request"), "{e}");
    // Back near: approved, and the record's `old` is where it is now.
    d.readback(RO, "recovery_setpoint_pct", 76.0, 5_000);
    let a = d.plan_approve("bob", &sup(), "P000001", 6_000).unwrap();
    assert_eq!(a.view.old, Some(ParamValue::Float(76.0)));
}

#[test]
fn a_requester_may_withdraw_their_own_request() {
    let mut d = desk(true);
    d.commit(set(&d, 80.0, 2_000).unwrap());
    let r = d
        .plan_reject("alice", &op(), "P000001", "wrong unit", 3_000)
        .unwrap();
    assert_eq!(r.view.state, ParamState::Rejected);
    assert!(
        r.view.note.starts_with("withdrawn by alice"),
        "{}",
        r.view.note
    );
    // Another operator without the approve role may not reject it.
    let e = d
        .plan_reject("carol", &op(), "P000001", "x", 3_000)
        .unwrap_err();
    assert!(e.contains("may not reject"), "{e}");
}
