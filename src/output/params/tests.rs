//! The stage's parameter control, driven as the command topic drives it:
//! each refusal with its reason, the two-person path to a confirmed write,
//! expiry, the unconfirmed alarm, and the audit trail that verifies.

use super::*;
use crate::output::{FaultPolicy, Operators, OutputStage};
use ctower_alerts::audit::AuditTrail;
use ctower_control::{AssetPattern, Catalogue, ParamSpec};
use ctower_model::{
    AlarmState, Clock, ManualClock, OperatorCommand, ParamType, ParamValue, ParamWrite, Signature,
};
use ctower_stream::WindowOutput;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

const RO: &str = "lyon/utilities/water/ro-1";
const T0: i64 = 1_780_000_000_000;

/// The link's far end: what the stage handed over (the real link and the
/// plant are exercised end to end in `tests/param_control.rs`).
#[derive(Clone, Default)]
struct Wire(Arc<Mutex<Vec<ParamWrite>>>, Arc<Mutex<Option<String>>>);

impl PlantLink for Wire {
    fn write(&mut self, w: &ParamWrite) -> Result<String, String> {
        if let Some(why) = self.1.lock().unwrap().clone() {
            return Err(why);
        }
        self.0.lock().unwrap().push(w.clone());
        Ok(format!("spBv1.0/lyon/DCMD/water/{}", w.param))
    }
}

struct Rig {
    stage: OutputStage,
    clock: ManualClock,
    replies: Receiver<CommandReply>,
    wire: Wire,
    trail: std::path::PathBuf,
    _dir: tempfile::TempDir,
    n: u64,
}

fn catalogue(read_only_ms: i64) -> Catalogue {
    let _ = read_only_ms;
    Catalogue {
        params: vec![ParamSpec {
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
            two_person: true,
        }],
    }
}

fn rig(read_only: bool) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let trail = dir.path().join("audit.jsonl");
    let (clock, manual) = Clock::manual(T0);
    let cat = catalogue(0);
    let mut issues = Vec::new();
    let rules = unconfirmed_rules(&cat, &mut issues);
    assert!(issues.is_empty(), "{issues:?}");
    let mut ops = Operators::default();
    let mut sigs = std::collections::BTreeMap::new();
    for (user, roles) in [
        ("alice", vec!["operator"]),
        ("bob", vec!["supervisor"]),
        ("carol", vec!["operator"]),
        ("mallory", vec![]),
    ] {
        ops.users.insert(user.into(), vec![]);
        ops.roles
            .insert(user.into(), roles.into_iter().map(String::from).collect());
        sigs.insert(
            user.to_string(),
            ctower_control::hash_secret(&format!("{user}-secret")).unwrap(),
        );
    }
    let (tx, replies) = sync_channel(64);
    let wire = Wire::default();
    let stage = OutputStage::new(rules, FaultPolicy::Alarm, clock)
        .with_audit(AuditTrail::open(&trail).unwrap())
        .with_operators(ops, tx)
        .with_params(StageParams::new(
            Desk::new(cat, read_only),
            Signatures::new(sigs),
            Some(Box::new(wire.clone())),
        ));
    Rig {
        stage,
        clock: manual,
        replies,
        wire,
        trail,
        _dir: dir,
        n: 0,
    }
}

impl Rig {
    fn readback(&mut self, x: f64) {
        let obs = Observation {
            asset: asset_key(RO).unwrap(),
            signal: "recovery_setpoint_pct".into(),
            role: Role::Process,
            ts_ms: self.clock_now(),
            value: Value::Number(x),
            seq: 0,
            watermark_ms: None,
        };
        self.stage
            .window(&WindowOutput {
                window_start_ms: 0,
                window_end_ms: 0,
                outputs: vec![],
                closes_window: false,
                samples: vec![obs],
            })
            .unwrap();
    }

    fn clock_now(&self) -> i64 {
        self.stage.clock.now_ms()
    }

    fn ask(
        &mut self,
        user: &str,
        action: CommandAction,
        f: impl FnOnce(&mut CommandRequest),
    ) -> CommandReply {
        self.n += 1;
        let mut req = CommandRequest::new(format!("r{}", self.n), user, action);
        req.signature = Some(Signature(format!("{user}-secret")));
        f(&mut req);
        self.stage.command(&OperatorCommand::Request(req));
        self.replies.try_recv().unwrap()
    }

    fn set(&mut self, user: &str, v: f64) -> CommandReply {
        self.ask(user, CommandAction::Set, |r| {
            r.asset = Some(RO.into());
            r.param = Some("recovery_setpoint_pct".into());
            r.value = Some(ParamValue::Float(v));
            r.reason = "raise recovery".into();
        })
    }

    fn decide(&mut self, user: &str, id: &str, approve: bool) -> CommandReply {
        let action = if approve {
            CommandAction::Approve
        } else {
            CommandAction::Reject
        };
        self.ask(user, action, |r| {
            r.request = Some(id.into());
            r.reason = "checked".into();
        })
    }

    fn trail(&self) -> String {
        std::fs::read_to_string(&self.trail).unwrap()
    }

    fn tick(&mut self, ms: i64) {
        self.clock.advance(ms);
        self.stage.param_tick();
    }
}

fn refused(r: &CommandReply, why: &str) {
    assert!(!r.ok, "should be refused: {r:?}");
    assert!(
        r.message.contains(why),
        "`{}` should say `{why}`",
        r.message
    );
}

#[test]
fn two_people_a_write_and_its_read_back() {
    let mut rig = rig(false);
    rig.readback(75.0);
    let r = rig.set("alice", 80.0);
    assert!(r.ok, "{r:?}");
    assert_eq!(r.requests[0].state, ParamState::Requested);
    assert!(
        rig.wire.0.lock().unwrap().is_empty(),
        "nothing sent before approval"
    );
    let r = rig.decide("bob", "P000001", true);
    assert!(r.ok, "{r:?}");
    assert_eq!(r.requests[0].state, ParamState::Sent);
    let sent = rig.wire.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].value, ParamValue::Float(80.0));
    assert_eq!(sent[0].user, "alice+bob");
    rig.clock.advance(2_000);
    rig.readback(80.0);
    let p = rig.stage.params.as_ref().unwrap();
    assert_eq!(
        p.desk.get("P000001").unwrap().view.state,
        ParamState::Confirmed
    );
    let trail = rig.trail();
    let actions: Vec<String> = trail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            format!(
                "{} {}",
                v["user"].as_str().unwrap(),
                v["action"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "alice param_requested",
            "bob param_approved",
            "system param_sent",
            "system param_confirmed"
        ]
    );
    assert!(
        trail.contains(r#""old":"75","new":"80","signed":true"#),
        "{trail}"
    );
    // The approver's comment is theirs in the record.
    assert!(
        trail
            .lines()
            .any(|l| l.contains(r#""action":"param_approved""#)
                && l.contains(r#""reason":"checked""#)),
        "{trail}"
    );
    assert!(!trail.contains("alice-secret") && !trail.contains("bob-secret"));
    ctower_alerts::audit::verify(&trail, None).unwrap();
}

#[test]
fn each_refusal_says_why_and_changes_nothing() {
    let mut rig = rig(false);
    // Stale: no read-back yet.
    refused(&rig.set("alice", 80.0), "stale or dead");
    rig.readback(75.0);
    refused(&rig.set("alice", 90.0), "above the maximum 85 %");
    refused(&rig.set("alice", 81.0), "larger than the largest step 5 %");
    refused(&rig.set("mallory", 80.0), "may not request writes");
    refused(&rig.set("eve", 80.0), "not a listed user");
    let r = rig.ask("alice", CommandAction::Set, |r| {
        r.asset = Some(RO.into());
        r.param = Some("recovery_setpoint_pct".into());
        r.value = Some(ParamValue::Float(80.0));
        r.reason = "x".into();
        r.signature = Some(Signature("wrong".into()));
    });
    refused(&r, "signature does not match");
    let r = rig.ask("alice", CommandAction::Set, |r| {
        r.asset = Some(RO.into());
        r.param = Some("recovery_setpoint_pct".into());
        r.value = Some(ParamValue::Float(80.0));
        r.reason = "x".into();
        r.signature = None;
    });
    refused(&r, "needs your signature");
    assert!(rig.set("alice", 80.0).ok);
    // In flight, self-approval, a role missing.
    rig.clock.advance(61_000);
    rig.readback(75.0);
    refused(&rig.set("carol", 78.0), "still in flight (requested)");
    refused(
        &rig.decide("alice", "P000001", true),
        "cannot approve your own request",
    );
    refused(&rig.decide("carol", "P000001", true), "may not approve");
    assert!(rig.decide("bob", "P000001", false).ok, "rejected");
    // Rate limit: the rejected request was made 61 s ago, so one more now
    // is allowed; a third right after is not.
    assert!(rig.set("carol", 78.0).ok);
    assert!(rig.decide("bob", "P000002", false).ok);
    refused(&rig.set("alice", 77.0), "rate limit");
    assert_eq!(rig.wire.0.lock().unwrap().len(), 0, "nothing was sent");
    let trail = rig.trail();
    assert!(trail.contains(r#""action":"param_refused""#));
    assert!(trail.contains("cannot approve your own request"));
    ctower_alerts::audit::verify(&trail, None).unwrap();
}

#[test]
fn read_only_mode_refuses_every_write() {
    let mut rig = rig(true);
    rig.readback(75.0);
    refused(&rig.set("alice", 80.0), "read-only");
    let r = rig.ask("alice", CommandAction::Params, |_| {});
    assert!(r.ok && r.message.contains("READ-ONLY"), "{r:?}");
    assert_eq!(r.params.len(), 1);
}

#[test]
fn an_unapproved_request_expires() {
    let mut rig = rig(false);
    rig.readback(75.0);
    assert!(rig.set("alice", 80.0).ok);
    rig.tick(599_000);
    assert_eq!(
        rig.stage
            .params
            .as_ref()
            .unwrap()
            .desk
            .get("P000001")
            .unwrap()
            .view
            .state,
        ParamState::Requested
    );
    rig.tick(1_000);
    assert_eq!(
        rig.stage
            .params
            .as_ref()
            .unwrap()
            .desk
            .get("P000001")
            .unwrap()
            .view
            .state,
        ParamState::Expired
    );
    refused(&rig.decide("bob", "P000001", true), "is expired");
    assert!(rig
        .trail()
        .contains(r#""user":"system","action":"param_expired""#));
}

#[test]
fn a_write_never_read_back_is_unconfirmed_and_raises_its_alarm() {
    let mut rig = rig(false);
    rig.readback(75.0);
    assert!(rig.set("alice", 80.0).ok);
    assert!(rig.decide("bob", "P000001", true).ok);
    rig.clock.advance(10_000);
    rig.readback(75.0);
    rig.tick(20_000);
    let p = rig.stage.params.as_ref().unwrap();
    let v = &p.desk.get("P000001").unwrap().view;
    assert_eq!(v.state, ParamState::Unconfirmed);
    assert!(
        v.note.contains("the read-back 75 % did not reach 80 %"),
        "{}",
        v.note
    );
    let id = ctower_model::AlarmId::parse(&format!(
        "ctower.param_unconfirmed.recovery_setpoint_pct@{RO}#!unconfirmed:recovery_setpoint_pct"
    ))
    .unwrap();
    assert_eq!(rig.stage.engine.state_of(&id), AlarmState::UnackActive);
    // The plant applies it late: the alarm returns to normal (unacknowledged).
    rig.clock.advance(61_000);
    rig.readback(75.0);
    assert!(rig.set("alice", 80.0).ok);
    assert!(rig.decide("bob", "P000002", true).ok);
    rig.readback(80.0);
    assert_eq!(rig.stage.engine.state_of(&id), AlarmState::UnackRtn);
    let trail = rig.trail();
    assert!(trail.contains(r#""action":"param_unconfirmed""#));
    assert!(trail.contains(r#""rule":"ctower.param_unconfirmed.recovery_setpoint_pct""#));
}

#[test]
fn a_write_the_link_cannot_take_is_unconfirmed_at_once() {
    let mut rig = rig(false);
    *rig.wire.1.lock().unwrap() = Some("no birth from the plant names the metric".into());
    rig.readback(75.0);
    assert!(rig.set("alice", 80.0).ok);
    let r = rig.decide("bob", "P000001", true);
    assert!(r.ok);
    assert_eq!(r.requests[0].state, ParamState::Unconfirmed);
    assert!(
        r.requests[0].note.contains("no birth"),
        "{:?}",
        r.requests[0]
    );
}

#[test]
fn a_restart_ends_open_requests_and_ids_go_on() {
    let mut rig = rig(false);
    rig.readback(75.0);
    assert!(rig.set("alice", 80.0).ok);
    let text = rig.trail();
    // A new engine on the same trail: the first stage is gone.
    let fresh = self::rig(false);
    let params = fresh.stage.params;
    let (tx, replies) = sync_channel(64);
    let ops = rig.stage.operators.clone();
    let clock = rig.stage.clock.clone();
    drop(std::mem::replace(
        &mut rig.stage,
        OutputStage::new(vec![], FaultPolicy::Alarm, clock),
    ));
    rig.stage = std::mem::replace(
        &mut rig.stage,
        OutputStage::new(vec![], FaultPolicy::Alarm, Clock::manual(T0).0),
    )
    .with_audit(AuditTrail::open(&rig.trail).unwrap())
    .with_operators(ops, tx);
    rig.stage.params = params;
    rig.replies = replies;
    assert_eq!(rig.stage.restore_params_from_trail(&text), 1);
    let after = rig.trail();
    assert!(after.contains(r#""action":"param_expired""#), "{after}");
    rig.readback(75.0);
    let r = rig.set("alice", 80.0);
    assert_eq!(r.requests[0].id, "P000002", "{r:?}");
    ctower_alerts::audit::verify(&rig.trail(), None).unwrap();
}

#[test]
fn an_unconfirmed_alarm_survives_a_restart_that_replays_the_raw_journal() {
    let mut rig = rig(false);
    rig.readback(75.0);
    assert!(rig.set("alice", 80.0).ok);
    assert!(rig.decide("bob", "P000001", true).ok);
    rig.tick(31_000);
    let text = rig.trail();
    let id = ctower_model::AlarmId::parse(&format!(
        "ctower.param_unconfirmed.recovery_setpoint_pct@{RO}#!unconfirmed:recovery_setpoint_pct"
    ))
    .unwrap();
    // A new stage, as after a restart whose raw journal replay computes
    // the process alarms again (not this one): only the stage's own alarms
    // come back from the trail.
    let mut issues = Vec::new();
    let rules = unconfirmed_rules(&catalogue(0), &mut issues);
    let mut again = OutputStage::new(rules, FaultPolicy::Alarm, Clock::manual(T0 + 40_000).0);
    assert_eq!(again.engine.state_of(&id), AlarmState::Normal);
    let n =
        again.restore_from_trail_where(&text, |rule| rule.starts_with("ctower.param_unconfirmed."));
    assert_eq!(n, 1);
    assert_eq!(again.engine.state_of(&id), AlarmState::UnackActive);
}
