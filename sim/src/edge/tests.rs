use super::*;
use crate::rng::Rng;
use std::collections::{BTreeMap, BTreeSet};

const T0: i64 = 1_772_427_600_000;
const MIN: i64 = 60_000;

fn plant(seed: u64) -> EdgePlant {
    let cfg = EdgeConfig {
        seed,
        ..EdgeConfig::default()
    };
    EdgePlant::new(cfg, T0).unwrap()
}

/// A host's view: aliases learnt from the births, values from every
/// message, exactly as the engine would decode them.
#[derive(Default)]
struct Host {
    aliases: BTreeMap<u64, (Option<String>, String)>,
    values: BTreeMap<(Option<String>, String), EdgeValue>,
}

impl Host {
    fn take(&mut self, msgs: &[EdgeMessage]) {
        for m in msgs {
            for x in &m.metrics {
                let name = match (m.kind, &x.name) {
                    (EdgeKind::NBirth | EdgeKind::DBirth, Some(n)) => {
                        self.aliases.insert(x.alias, (m.device.clone(), n.clone()));
                        n.clone()
                    }
                    (EdgeKind::DData, None) => {
                        let (dev, n) = self.aliases[&x.alias].clone();
                        assert_eq!(dev, m.device, "alias {} of another device", x.alias);
                        n
                    }
                    other => panic!("unexpected metric {other:?}"),
                };
                assert_eq!(x.value.datatype(), x.datatype, "{name}");
                self.values
                    .insert((m.device.clone(), name), x.value.clone());
            }
        }
    }

    fn get(&self, dev: &str, name: &str) -> EdgeValue {
        self.values[&(Some(dev.to_string()), name.to_string())].clone()
    }

    fn num(&self, dev: &str, name: &str) -> f64 {
        match self.get(dev, name) {
            EdgeValue::Double(x) => x,
            EdgeValue::UInt(u) => u as f64,
            EdgeValue::Int(i) => i as f64,
            v => panic!("{dev}/{name} is {v:?}"),
        }
    }
}

/// Advances `p` in 100 ms calls from its clock to `until`, feeding `host`.
fn run(p: &mut EdgePlant, host: &mut Host, until: i64) -> Vec<EdgeMessage> {
    let mut all = Vec::new();
    let mut t = p.now_ms();
    while t < until {
        t = (t + 100).min(until);
        let msgs = p.advance(t).unwrap();
        host.take(&msgs);
        all.extend(msgs);
    }
    all
}

fn write(dev: &str, name: &str, value: EdgeValue) -> EdgeCommand {
    EdgeCommand {
        device: Some(dev.to_string()),
        metrics: vec![CommandMetric {
            name: Some(name.to_string()),
            alias: None,
            value,
        }],
    }
}

fn online(seed: u64) -> (EdgePlant, Host) {
    let mut p = plant(seed);
    let mut host = Host::default();
    host.take(&p.births(T0).unwrap());
    (p, host)
}

#[test]
fn births_declare_every_metric_with_a_unique_alias() {
    let mut p = plant(1);
    let births = p.births(T0).unwrap();
    let kinds: Vec<_> = births
        .iter()
        .map(|m| (m.kind, m.device.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            (EdgeKind::NBirth, None),
            (EdgeKind::DBirth, Some("ro-1")),
            (EdgeKind::DBirth, Some("hvac-1")),
            (EdgeKind::DBirth, Some("line-1")),
        ]
    );
    let seqs: Vec<_> = births.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [Some(0), Some(1), Some(2), Some(3)]);
    let node = &births[0].metrics;
    assert_eq!(node[0].name.as_deref(), Some("bdSeq"));
    assert_eq!(node[0].value, EdgeValue::UInt(0));
    assert_eq!(node[1].name.as_deref(), Some("Node Control/Rebirth"));
    assert_eq!(node[1].value, EdgeValue::Bool(false));

    let mut aliases = BTreeSet::new();
    for m in &births {
        assert_eq!(m.timestamp_ms, T0);
        for x in &m.metrics {
            assert!(x.name.is_some(), "a birth declares names");
            assert!(aliases.insert(x.alias), "alias {} twice", x.alias);
            assert_eq!(x.value.datatype(), x.datatype, "{:?}", x.name);
        }
    }
    let names = |dev: &str| -> Vec<String> {
        births
            .iter()
            .find(|m| m.device.as_deref() == Some(dev))
            .unwrap()
            .metrics
            .iter()
            .map(|x| x.name.clone().unwrap())
            .collect()
    };
    assert_eq!(
        names("ro-1"),
        [
            "feed_m3",
            "permeate_m3",
            "concentrate_m3",
            "conductivity_us_cm",
            "recovery_setpoint_pct"
        ]
    );
    assert_eq!(
        names("hvac-1"),
        ["power_kw", "energy_kwh", "temp_c", "temp_setpoint_c"]
    );
    assert_eq!(
        names("line-1"),
        [
            "state",
            "product",
            "count_total",
            "count_good",
            "count_reject",
            "power_kw",
            "energy_kwh",
            "speed_limit_upm",
            "standby"
        ]
    );
    let v = |d, n| p.value(d, n).unwrap();
    assert_eq!(v("ro-1", "recovery_setpoint_pct"), EdgeValue::Double(75.0));
    assert_eq!(v("hvac-1", "temp_setpoint_c"), EdgeValue::Double(21.0));
    assert_eq!(v("line-1", "speed_limit_upm"), EdgeValue::Int(120));
    assert_eq!(v("line-1", "standby"), EdgeValue::Bool(false));
    assert_eq!(v("line-1", "state"), EdgeValue::String("running".into()));
    assert_eq!(
        v("line-1", "product"),
        EdgeValue::String("blister-10".into())
    );
    assert_eq!(p.value("line-1", "nope"), None);
    assert_eq!(p.value("nope", "state"), None);
    // The accessor agrees with the births.
    assert_eq!(
        p.alias(Some("ro-1"), "feed_m3"),
        Some(births[1].metrics[0].alias)
    );
    assert_eq!(p.alias(None, "bdSeq"), Some(node[0].alias));
}

#[test]
fn datatype_codes_are_sparkplugs() {
    let all = [
        (EdgeType::Int64, 4),
        (EdgeType::UInt64, 8),
        (EdgeType::Double, 10),
        (EdgeType::Boolean, 11),
        (EdgeType::String, 12),
    ];
    for (t, code) in all {
        assert_eq!(t.code(), code, "{}", t.as_str());
        assert_eq!(EdgeType::from_code(code), Some(t));
    }
    for code in [0, 1, 3, 9, 13, 17, u32::MAX] {
        assert_eq!(EdgeType::from_code(code), None, "{code}");
    }
}

#[test]
fn bd_seq_numbers_sessions_and_a_rebirth_keeps_it() {
    let mut p = plant(1);
    // The will registered before the first connect.
    let will = p.death_payload(T0);
    assert_eq!(will.kind, EdgeKind::NDeath);
    assert_eq!(will.seq, None);
    assert_eq!(will.metrics.len(), 1);
    assert_eq!(will.metrics[0].name.as_deref(), Some("bdSeq"));
    assert_eq!(will.metrics[0].value, EdgeValue::UInt(0));
    assert_eq!(p.death(T0), None, "not born yet");

    let births = p.births(T0).unwrap();
    assert_eq!(births[0].metrics[0].value, EdgeValue::UInt(0));
    p.advance(T0 + 5_000).unwrap();

    // A rebirth request within the session: NBIRTH seq 0, the same bdSeq
    // (the host matches the will registered at connect to the birth).
    let rebirth = EdgeCommand {
        device: None,
        metrics: vec![CommandMetric {
            name: Some("Node Control/Rebirth".into()),
            alias: None,
            value: EdgeValue::Bool(true),
        }],
    };
    let out = p.command(&rebirth, T0 + 6_000);
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    assert!(out.rebirth);
    assert_eq!(out.messages.len(), 4);
    assert_eq!(out.messages[0].kind, EdgeKind::NBirth);
    assert_eq!(out.messages[0].seq, Some(0));
    assert_eq!(out.messages[3].seq, Some(3));
    assert_eq!(out.messages[0].metrics[0].value, EdgeValue::UInt(0));

    // The session ends: its NDEATH, then the next session is bdSeq 1.
    let death = p.death(T0 + 7_000).unwrap();
    assert_eq!(death.metrics[0].value, EdgeValue::UInt(0));
    assert!(!p.is_online());
    assert_eq!(p.bd_seq(), 1);
    assert_eq!(
        p.death_payload(T0 + 8_000).metrics[0].value,
        EdgeValue::UInt(1)
    );
    assert!(p.advance(T0 + 8_000).unwrap().is_empty(), "offline: silent");
    let births = p.births(T0 + 9_000).unwrap();
    assert_eq!(births[0].seq, Some(0));
    assert_eq!(births[0].metrics[0].value, EdgeValue::UInt(1));
    assert_eq!(
        p.death(T0 + 10_000).unwrap().metrics[0].value,
        EdgeValue::UInt(1)
    );
    assert_eq!(p.bd_seq(), 2);
}

#[test]
fn data_goes_by_alias_and_by_exception_once_a_second() {
    let (mut p, mut host) = online(1);
    let alias = |dev: &str, n: &str| p.alias(Some(dev), n).unwrap();
    let (sp, feed, state, total) = (
        alias("ro-1", "recovery_setpoint_pct"),
        alias("ro-1", "feed_m3"),
        alias("line-1", "state"),
        alias("line-1", "count_total"),
    );
    assert!(p.advance(T0 + 500).unwrap().is_empty(), "within the tick");
    let msgs = p.advance(T0 + 1_000).unwrap();
    host.take(&msgs);
    let devs: Vec<_> = msgs.iter().map(|m| m.device.as_deref().unwrap()).collect();
    assert_eq!(devs, ["ro-1", "hvac-1", "line-1"]);
    for m in &msgs {
        assert_eq!(m.kind, EdgeKind::DData);
        assert_eq!(m.timestamp_ms, T0 + 1_000);
        assert!(m.metrics.iter().all(|x| x.name.is_none()), "alias only");
    }
    let aliases = |m: &EdgeMessage| -> Vec<u64> { m.metrics.iter().map(|x| x.alias).collect() };
    // Meters changed; setpoints, state and product did not.
    assert!(aliases(&msgs[0]).contains(&feed));
    assert!(!aliases(&msgs[0]).contains(&sp));
    assert!(aliases(&msgs[2]).contains(&total));
    assert!(!aliases(&msgs[2]).contains(&state));
    assert_eq!(host.num("line-1", "count_total"), 2.0, "120 per minute");
    // Nothing more until the next tick, whatever the call cadence.
    for t in (1_100..2_000).step_by(100) {
        assert!(p.advance(T0 + t).unwrap().is_empty(), "{t}");
    }
    assert_eq!(p.advance(T0 + 2_000).unwrap().len(), 3);
}

#[test]
fn seq_counts_every_message_and_wraps() {
    let (mut p, mut host) = online(1);
    let mut msgs = run(&mut p, &mut host, T0 + 2 * MIN);
    msgs.extend(
        p.command(
            &write("hvac-1", "temp_setpoint_c", EdgeValue::Double(19.0)),
            p.now_ms(),
        )
        .messages,
    );
    msgs.extend(run(&mut p, &mut host, T0 + 3 * MIN));
    assert!(msgs.len() > 300, "{}", msgs.len());
    let mut prev = 3; // the last DBIRTH
    let mut wrapped = false;
    for m in &msgs {
        let seq = m.seq.unwrap();
        assert_eq!(seq, (prev + 1) % 256);
        wrapped |= prev == 255 && seq == 0;
        prev = seq;
    }
    assert!(wrapped);
}

/// Per-minute increments of the RO meters over [from, from + 1 min).
fn ro_minute(p: &mut EdgePlant, host: &mut Host, from: i64) -> (f64, f64, f64) {
    run(p, host, from);
    let a = ["feed_m3", "permeate_m3", "concentrate_m3"].map(|n| host.num("ro-1", n));
    run(p, host, from + MIN);
    let b = ["feed_m3", "permeate_m3", "concentrate_m3"].map(|n| host.num("ro-1", n));
    (b[0] - a[0], b[1] - a[1], b[2] - a[2])
}

#[test]
fn a_recovery_write_by_alias_is_read_back_at_once_and_the_plant_follows() {
    let (mut p, mut host) = online(7);
    let (feed0, perm0, conc0) = ro_minute(&mut p, &mut host, T0 + MIN);
    assert!((perm0 / feed0 - 0.75).abs() < 0.005, "{}", perm0 / feed0);
    assert!((feed0 - 0.2).abs() < 0.01, "12 m³/h: {feed0}");
    let cond0 = host.num("ro-1", "conductivity_us_cm");

    let alias = p.alias(Some("ro-1"), "recovery_setpoint_pct").unwrap();
    let cmd = EdgeCommand {
        device: Some("ro-1".into()),
        metrics: vec![CommandMetric {
            name: None,
            alias: Some(alias),
            value: EdgeValue::Double(80.0),
        }],
    };
    let at = T0 + 2 * MIN + 250;
    let out = p.command(&cmd, at);
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    assert_eq!(out.accepted.len(), 1);
    assert!(out.accepted[0].obeyed);
    assert_eq!(out.accepted[0].metric, "recovery_setpoint_pct");
    assert_eq!(out.messages.len(), 1);
    let rb = &out.messages[0];
    assert_eq!(
        (rb.kind, rb.device.as_deref()),
        (EdgeKind::DData, Some("ro-1"))
    );
    assert_eq!(rb.timestamp_ms, at);
    assert_eq!(rb.metrics.len(), 1);
    assert_eq!(rb.metrics[0].alias, alias);
    assert_eq!(rb.metrics[0].name, None);
    assert_eq!(rb.metrics[0].value, EdgeValue::Double(80.0));
    host.take(&out.messages);
    assert_eq!(
        host.get("ro-1", "recovery_setpoint_pct"),
        EdgeValue::Double(80.0)
    );

    // The setpoint is not republished (unchanged since the read-back).
    let later = run(&mut p, &mut host, at + 2 * MIN);
    assert!(later
        .iter()
        .flat_map(|m| &m.metrics)
        .all(|x| x.alias != alias));

    // Three minutes on: the last minute's meters say 0.80.
    let (feed1, perm1, conc1) = ro_minute(&mut p, &mut host, at + 2 * MIN);
    let recovery = perm1 / feed1;
    assert!((recovery - 0.80).abs() < 0.005, "{recovery}");
    assert!(
        conc1 < conc0 * 0.9,
        "concentrate {conc1} vs {conc0} per minute"
    );
    let cond1 = host.num("ro-1", "conductivity_us_cm");
    assert!(cond1 > cond0 + 0.03, "conductivity {cond1} vs {cond0}");
    assert_eq!(
        p.value("ro-1", "recovery_setpoint_pct"),
        Some(EdgeValue::Double(80.0))
    );
}

#[test]
fn a_colder_hvac_setpoint_draws_more_power() {
    let (mut p, mut host) = online(3);
    run(&mut p, &mut host, T0 + MIN);
    let kw0 = host.num("hvac-1", "power_kw");
    assert!((kw0 - 42.0).abs() < 1.5, "{kw0}");
    let out = p.command(
        &write("hvac-1", "temp_setpoint_c", EdgeValue::Int(18)),
        T0 + MIN,
    );
    assert_eq!(out.messages[0].metrics[0].value, EdgeValue::Double(18.0));
    run(&mut p, &mut host, T0 + 7 * MIN);
    let kw1 = host.num("hvac-1", "power_kw");
    assert!((kw1 - 54.0).abs() < 1.5, "{kw1}");
    assert!((host.num("hvac-1", "temp_c") - 18.0).abs() < 0.05);
}

#[test]
fn standby_stops_the_line_and_cuts_its_power() {
    let (mut p, mut host) = online(5);
    run(&mut p, &mut host, T0 + MIN);
    let running_kw = host.num("line-1", "power_kw");
    assert!((running_kw - 45.0).abs() < 1.5, "{running_kw}");
    assert_eq!(host.num("line-1", "count_total"), 120.0);

    let out = p.command(&write("line-1", "standby", EdgeValue::Bool(true)), T0 + MIN);
    assert_eq!(out.messages[0].metrics[0].value, EdgeValue::Bool(true));
    host.take(&out.messages);
    run(&mut p, &mut host, T0 + MIN + 2_000);
    assert_eq!(
        host.get("line-1", "state"),
        EdgeValue::String("break".into())
    );
    let counts = ["count_total", "count_good", "count_reject"].map(|n| host.num("line-1", n));
    run(&mut p, &mut host, T0 + 3 * MIN);
    assert_eq!(
        ["count_total", "count_good", "count_reject"].map(|n| host.num("line-1", n)),
        counts,
        "no production in standby"
    );
    let kw = host.num("line-1", "power_kw");
    assert!(kw < 5.0, "{kw}");

    let out = p.command(
        &write("line-1", "standby", EdgeValue::Bool(false)),
        T0 + 3 * MIN,
    );
    host.take(&out.messages);
    run(&mut p, &mut host, T0 + 5 * MIN);
    assert_eq!(
        host.get("line-1", "state"),
        EdgeValue::String("running".into())
    );
    let total = host.num("line-1", "count_total");
    assert_eq!(total, counts[0] + 240.0, "two minutes at 120 per minute");
    let (good, reject) = (
        host.num("line-1", "count_good"),
        host.num("line-1", "count_reject"),
    );
    assert_eq!(good + reject, total);
    assert!(reject > 0.0 && reject < 0.04 * total, "{reject} of {total}");
    assert!(host.num("line-1", "power_kw") > 40.0);

    // The speed limit sets the rate.
    let out = p.command(
        &write("line-1", "speed_limit_upm", EdgeValue::Double(300.0)),
        T0 + 5 * MIN,
    );
    assert_eq!(out.messages[0].metrics[0].value, EdgeValue::Int(300));
    run(&mut p, &mut host, T0 + 6 * MIN);
    assert_eq!(host.num("line-1", "count_total"), total + 300.0);
}

#[test]
fn bad_writes_are_refused_and_nothing_is_applied() {
    let (mut p, _) = online(1);
    p.advance(T0 + 10_000).unwrap();
    let sp_alias = p.alias(Some("ro-1"), "recovery_setpoint_pct").unwrap();
    let hvac_alias = p.alias(Some("hvac-1"), "temp_setpoint_c").unwrap();
    let m = |name: Option<&str>, alias: Option<u64>, value: EdgeValue| CommandMetric {
        name: name.map(str::to_string),
        alias,
        value,
    };
    let ro = |metrics: Vec<CommandMetric>| EdgeCommand {
        device: Some("ro-1".into()),
        metrics,
    };
    let good = m(None, Some(sp_alias), EdgeValue::Double(80.0));
    let cases = [
        (
            ro(vec![m(None, Some(9_999), EdgeValue::Double(80.0))]),
            RefuseReason::UnknownMetric,
        ),
        (
            ro(vec![m(None, Some(hvac_alias), EdgeValue::Double(20.0))]),
            RefuseReason::UnknownMetric,
        ),
        (
            ro(vec![m(None, None, EdgeValue::Double(80.0))]),
            RefuseReason::UnknownMetric,
        ),
        (
            ro(vec![m(
                Some("recovery"),
                Some(sp_alias),
                EdgeValue::Double(80.0),
            )]),
            RefuseReason::UnknownMetric,
        ),
        (
            ro(vec![m(None, Some(sp_alias), EdgeValue::Bool(true))]),
            RefuseReason::WrongType,
        ),
        (
            ro(vec![m(
                None,
                Some(sp_alias),
                EdgeValue::String("80".into()),
            )]),
            RefuseReason::WrongType,
        ),
        (
            ro(vec![m(None, Some(sp_alias), EdgeValue::Double(f64::NAN))]),
            RefuseReason::NotFinite,
        ),
        (
            ro(vec![m(
                None,
                Some(sp_alias),
                EdgeValue::Double(f64::INFINITY),
            )]),
            RefuseReason::NotFinite,
        ),
        (
            ro(vec![m(None, Some(sp_alias), EdgeValue::Double(120.0))]),
            RefuseReason::OutOfRange,
        ),
        (
            ro(vec![m(Some("feed_m3"), None, EdgeValue::Double(0.0))]),
            RefuseReason::NotWritable,
        ),
        // One good write and one bad: the good one is not applied either.
        (
            ro(vec![
                good.clone(),
                m(Some("permeate_m3"), None, EdgeValue::Double(0.0)),
            ]),
            RefuseReason::NotWritable,
        ),
        (
            ro(vec![good.clone(); MAX_COMMAND_METRICS + 1]),
            RefuseReason::TooManyMetrics,
        ),
        (
            write("line-1", "count_good", EdgeValue::UInt(0)),
            RefuseReason::NotWritable,
        ),
        (
            write("line-1", "speed_limit_upm", EdgeValue::Double(130.5)),
            RefuseReason::WrongType,
        ),
        (
            write("line-1", "speed_limit_upm", EdgeValue::Int(0)),
            RefuseReason::OutOfRange,
        ),
        (
            write("line-1", "speed_limit_upm", EdgeValue::UInt(u64::MAX)),
            RefuseReason::OutOfRange,
        ),
        (
            write("line-1", "standby", EdgeValue::Int(1)),
            RefuseReason::WrongType,
        ),
        (
            write("line-9", "standby", EdgeValue::Bool(true)),
            RefuseReason::UnknownDevice,
        ),
        (
            EdgeCommand {
                device: None,
                metrics: vec![m(Some("bdSeq"), None, EdgeValue::UInt(9))],
            },
            RefuseReason::NotWritable,
        ),
        (
            EdgeCommand {
                device: None,
                metrics: vec![m(
                    Some("recovery_setpoint_pct"),
                    None,
                    EdgeValue::Double(80.0),
                )],
            },
            RefuseReason::UnknownMetric,
        ),
    ];
    let before: Vec<_> = DEVICES
        .iter()
        .flat_map(|d| {
            TABLES[DEVICES.iter().position(|x| x == d).unwrap() + 1]
                .iter()
                .map(move |x| (*d, x.name))
        })
        .map(|(d, n)| p.value(d, n))
        .collect();
    for (i, (cmd, reason)) in cases.iter().enumerate() {
        let out = p.command(cmd, T0 + 10_000);
        assert!(
            out.refused.iter().any(|r| r.reason == *reason),
            "case {i}: {:?}",
            out.refused
        );
        assert!(
            out.messages.is_empty() && out.accepted.is_empty() && !out.rebirth,
            "case {i}"
        );
        assert!(out.refused.iter().all(|r| !r.detail.is_empty()));
    }
    let after: Vec<_> = DEVICES
        .iter()
        .flat_map(|d| {
            TABLES[DEVICES.iter().position(|x| x == d).unwrap() + 1]
                .iter()
                .map(move |x| (*d, x.name))
        })
        .map(|(d, n)| p.value(d, n))
        .collect();
    assert_eq!(before, after);

    // A hostile name is quoted back cut short.
    let long = "x".repeat(10_000);
    let out = p.command(&write("ro-1", &long, EdgeValue::Double(1.0)), T0 + 10_000);
    let r = &out.refused[0];
    assert!(r.metric.as_ref().unwrap().chars().count() <= QUOTE_CHARS + 1);
    assert!(r.detail.len() < 300, "{}", r.detail.len());
    let out = p.command(
        &write("ro-1", "a\nb\u{1b}[2J", EdgeValue::Double(1.0)),
        T0 + 10_000,
    );
    let r = &out.refused[0];
    assert_eq!(r.metric.as_deref(), Some("a\\nb\\u{1b}[2J"));
    assert!(!r.detail.chars().any(char::is_control), "{}", r.detail);

    // Accepted conversions: an integer for a number, a whole number for an
    // integer; the name wins over a wrong alias.
    let out = p.command(
        &ro(vec![m(
            Some("recovery_setpoint_pct"),
            Some(9_999),
            EdgeValue::Int(80),
        )]),
        T0 + 10_000,
    );
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    assert_eq!(out.accepted[0].value, EdgeValue::Double(80.0));

    // Time going back, and an offline node.
    let out = p.command(
        &write("ro-1", "recovery_setpoint_pct", EdgeValue::Double(70.0)),
        T0,
    );
    assert_eq!(out.refused[0].reason, RefuseReason::BadTime);
    p.death(T0 + 11_000);
    let out = p.command(
        &write("ro-1", "recovery_setpoint_pct", EdgeValue::Double(70.0)),
        T0 + 11_000,
    );
    assert_eq!(out.refused[0].reason, RefuseReason::Offline);
    assert_eq!(
        p.value("ro-1", "recovery_setpoint_pct"),
        Some(EdgeValue::Double(80.0))
    );
}

#[test]
fn a_disobedient_plant_acknowledges_and_keeps_the_old_value() {
    let (mut p, mut host) = online(1);
    p.set_obey(false);
    assert!(!p.obeys());
    run(&mut p, &mut host, T0 + MIN);
    let out = p.command(
        &write("ro-1", "recovery_setpoint_pct", EdgeValue::Double(80.0)),
        T0 + MIN,
    );
    assert!(out.refused.is_empty());
    assert_eq!(out.accepted.len(), 1);
    assert!(!out.accepted[0].obeyed);
    assert_eq!(out.accepted[0].value, EdgeValue::Double(80.0));
    // The read-back says what the plant really has: the old value.
    assert_eq!(out.messages.len(), 1);
    assert_eq!(out.messages[0].metrics[0].value, EdgeValue::Double(75.0));
    host.take(&out.messages);
    let (feed, perm, _) = ro_minute(&mut p, &mut host, T0 + 3 * MIN);
    assert!((perm / feed - 0.75).abs() < 0.005);
    assert_eq!(
        host.get("ro-1", "recovery_setpoint_pct"),
        EdgeValue::Double(75.0)
    );
    assert_eq!(
        p.value("ro-1", "recovery_setpoint_pct"),
        Some(EdgeValue::Double(75.0))
    );
    // Obeying again, the next write is applied.
    p.set_obey(true);
    let out = p.command(
        &write("ro-1", "recovery_setpoint_pct", EdgeValue::Double(80.0)),
        T0 + 4 * MIN,
    );
    assert_eq!(out.messages[0].metrics[0].value, EdgeValue::Double(80.0));
}

/// Every device value, in table order.
fn snapshot(p: &EdgePlant) -> Vec<Option<EdgeValue>> {
    (0..DEVICES.len())
        .flat_map(|d| TABLES[d + 1].iter().map(move |x| (DEVICES[d], x.name)))
        .map(|(d, n)| p.value(d, n))
        .collect()
}

/// Runs a fixed scenario with `advance` every `cadence_ms`, snapshotting
/// every 5 s, and returns the snapshots and every message.
fn scenario(seed: u64, cadence_ms: i64) -> (Vec<Vec<Option<EdgeValue>>>, Vec<EdgeMessage>) {
    let mut p = plant(seed);
    let mut msgs = p.births(T0).unwrap();
    let mut snaps = Vec::new();
    let mut t = T0;
    while t < T0 + 10 * MIN {
        t += cadence_ms;
        msgs.extend(p.advance(t).unwrap());
        if t == T0 + 2 * MIN {
            let out = p.command(
                &write("ro-1", "recovery_setpoint_pct", EdgeValue::Double(82.5)),
                t,
            );
            msgs.extend(out.messages);
        }
        if t == T0 + 4 * MIN {
            let out = p.command(&write("line-1", "standby", EdgeValue::Bool(true)), t);
            msgs.extend(out.messages);
        }
        if (t - T0) % 5_000 == 0 {
            snaps.push(snapshot(&p));
        }
    }
    (snaps, msgs)
}

#[test]
fn the_same_seed_gives_the_same_plant_whatever_the_cadence() {
    let (fine, fine_msgs) = scenario(11, 100);
    let (coarse, coarse_msgs) = scenario(11, 5_000);
    assert_eq!(fine.len(), 120);
    assert_eq!(fine, coarse, "same state at the same times");
    assert_ne!(fine_msgs.len(), coarse_msgs.len());
    // Same calls, same messages.
    assert_eq!(scenario(11, 100).1, fine_msgs);
    // Another seed, another plant.
    assert_ne!(scenario(12, 5_000).0, coarse);
}

#[test]
fn time_is_checked() {
    let (mut p, _) = online(1);
    p.advance(T0 + 5_000).unwrap();
    assert_eq!(
        p.advance(T0 + 4_999),
        Err(EdgeError::TimeWentBack {
            now_ms: T0 + 4_999,
            clock_ms: T0 + 5_000
        })
    );
    assert!(p.births(T0).is_err());
    assert_eq!(p.advance(-1), Err(EdgeError::TimeOutOfRange(-1)));
    assert_eq!(
        p.advance(i64::MAX),
        Err(EdgeError::TimeOutOfRange(i64::MAX))
    );
    let feed = p.value("ro-1", "feed_m3");
    // A day-long gap is skipped (held), then the plant goes on.
    p.advance(T0 + 86_400_000).unwrap();
    assert_eq!(p.value("ro-1", "feed_m3"), feed);
    p.advance(T0 + 86_400_000 + MIN).unwrap();
    assert_ne!(p.value("ro-1", "feed_m3"), feed);
    assert!(p.advance(MAX_TIME_MS).is_ok());
    assert!(EdgePlant::new(EdgeConfig::default(), -5).is_err());
}

#[test]
fn topics_and_configuration() {
    let p = plant(1);
    assert_eq!(
        p.topic(EdgeKind::NBirth, None),
        "spBv1.0/zurich-live/NBIRTH/utilities"
    );
    assert_eq!(
        p.topic(EdgeKind::DBirth, Some("ro-1")),
        "spBv1.0/zurich-live/DBIRTH/utilities/ro-1"
    );
    assert_eq!(
        p.topic(EdgeKind::DData, Some("line-1")),
        "spBv1.0/zurich-live/DDATA/utilities/line-1"
    );
    assert_eq!(
        p.topic(EdgeKind::NData, None),
        "spBv1.0/zurich-live/NDATA/utilities"
    );
    assert_eq!(
        p.topic(EdgeKind::NDeath, Some("ro-1")),
        "spBv1.0/zurich-live/NDEATH/utilities"
    );
    assert_eq!(
        p.command_topics(),
        [
            "spBv1.0/zurich-live/NCMD/utilities",
            "spBv1.0/zurich-live/DCMD/utilities/+"
        ]
    );
    for (group, node) in [
        ("a/b", "n"),
        ("g", ""),
        ("g", "n+"),
        ("#", "n"),
        ("g", "a\nb"),
    ] {
        let cfg = EdgeConfig {
            group: group.into(),
            node: node.into(),
            seed: 1,
        };
        assert!(
            matches!(EdgePlant::new(cfg, T0), Err(EdgeError::InvalidConfig(_))),
            "{group:?} {node:?}"
        );
    }
}

#[test]
fn values_convert_to_and_from_parameter_values() {
    for v in [
        ParamValue::Bool(true),
        ParamValue::Int(-3),
        ParamValue::Float(80.5),
    ] {
        assert_eq!(EdgeValue::from(v).to_param(), Some(v));
    }
    assert_eq!(EdgeValue::UInt(7).to_param(), Some(ParamValue::Int(7)));
    assert_eq!(EdgeValue::UInt(u64::MAX).to_param(), None);
    assert_eq!(EdgeValue::String("x".into()).to_param(), None);
}

#[test]
fn random_hostile_commands_never_panic_and_refusals_apply_nothing() {
    let (mut p, _) = online(1);
    let mut rng = Rng::derive(99, &[1]);
    let names = [
        "recovery_setpoint_pct",
        "temp_setpoint_c",
        "speed_limit_upm",
        "standby",
        "count_good",
        "Node Control/Rebirth",
        "bdSeq",
        "",
        "\u{0}",
    ];
    let devices = [
        None,
        Some("ro-1"),
        Some("hvac-1"),
        Some("line-1"),
        Some(""),
        Some("+"),
    ];
    let values = [
        EdgeValue::Double(f64::NAN),
        EdgeValue::Double(f64::NEG_INFINITY),
        EdgeValue::Double(-0.0),
        EdgeValue::Double(1e300),
        EdgeValue::Double(50.0),
        EdgeValue::Int(i64::MIN),
        EdgeValue::Int(100),
        EdgeValue::UInt(u64::MAX),
        EdgeValue::Bool(true),
        EdgeValue::Bool(false),
        EdgeValue::String(String::new()),
    ];
    let mut t = T0;
    for _ in 0..3_000 {
        t += rng.range_i64(0, 700);
        let n = rng.range_i64(0, 4) as usize;
        let cmd = EdgeCommand {
            device: devices[rng.index(devices.len())].map(str::to_string),
            metrics: (0..n)
                .map(|_| CommandMetric {
                    name: rng
                        .chance(0.6)
                        .then(|| names[rng.index(names.len())].to_string()),
                    alias: rng.chance(0.6).then(|| rng.range_i64(0, 30) as u64),
                    value: values[rng.index(values.len())].clone(),
                })
                .collect(),
        };
        let before = snapshot(&p);
        let out = p.command(&cmd, t);
        if !out.refused.is_empty() {
            assert!(out.messages.is_empty() && out.accepted.is_empty());
            assert_eq!(snapshot(&p), before, "{cmd:?}");
        }
        for m in p.advance(t).unwrap().iter().chain(&out.messages) {
            for x in &m.metrics {
                assert_eq!(x.value.datatype(), x.datatype);
                if let EdgeValue::Double(v) = x.value {
                    assert!(v.is_finite());
                }
            }
        }
    }
}
