//! Snapshot tests of every view at 80×24 and 160×48 from one fixed state
//! (TestBackend + insta), with stale data, a disconnected engine and an
//! alarm flood; and style checks, so a priority or a stale mark is seen
//! in its style, not only in its characters. The parameter view's keys
//! (set, approve, reject, the session's signature) are tested here too,
//! on the same state.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use ctower_model::board::{
    alarm_key, BoardHealth, BoardMessage, BoardTopic, DayEnergy, EngineStatus, LineBoard, Now,
    SiteBoard, SiteTrend, SoFar, TrendPoint, BOARD_VERSION,
};
use ctower_model::kpi::{KpiRatios, KpiSums};
use ctower_model::{
    AlarmEvent, AlarmEventKind, AlarmState, AssetKey, CommandAction, CommandReply, Level,
    OutboxStatus, ParamBoard, ParamEntryView, ParamRequestView, ParamState, ParamType, ParamValue,
    PipelineMetrics, Priority, Signature,
};
use ctower_tui::{render, Action, App, LinkState, Theme};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Modifier;
use ratatui::Terminal;
use std::collections::BTreeMap;

const MIN: i64 = 60_000;
/// The engine's clock at the fixture's status; the viewer's is the same.
const T0: i64 = 1_772_430_000_000;

fn msg<T: serde::Serialize>(topic: BoardTopic, v: &T) -> BoardMessage {
    BoardMessage {
        topic,
        payload: Some(serde_json::to_vec(v).unwrap()),
    }
}

fn status(online: bool, ts_ms: i64) -> BoardMessage {
    msg(
        BoardTopic::Status,
        &EngineStatus {
            version: BOARD_VERSION,
            online,
            ts_ms,
            engine: "ctower-eu".into(),
            window_ms: MIN,
            freshness_ms: 3 * MIN,
            conductivity_limit_us_cm: 1.3,
            toc_limit_ppb: 500.0,
            commands: true,
        },
    )
}

fn sums(run_min: i64, stop_min: i64, produced: u64, good: u64) -> KpiSums {
    let mut by_reason = BTreeMap::new();
    if stop_min > 0 {
        by_reason.insert("jam".into(), stop_min * MIN * 2 / 3);
        by_reason.insert("no material".into(), stop_min * MIN / 3);
    }
    KpiSums {
        running_ms: run_min * MIN,
        unplanned_stop_ms: stop_min * MIN,
        unplanned_stop_by_reason_ms: by_reason,
        unplanned_stops: (stop_min / 5) as u64,
        micro_stop_ms: 2 * MIN,
        micro_stops: 7,
        changeover_ms: 10 * MIN,
        produced: Some(produced),
        good: Some(good),
        reject: Some(produced - good),
        ideal_time_ms: produced as f64 * 900.0,
        good_ideal_ms: good as f64 * 900.0,
        energy_kwh: Some(run_min as f64 * 4.0),
        energy_measured_ms: (run_min + stop_min) * MIN,
        energy_cost: Some(run_min as f64 * 0.6),
        priced_kwh: run_min as f64 * 4.0,
        co2e_kg: Some(run_min as f64 * 1.1),
        co2e_factor_kwh: run_min as f64 * 4.0,
        water_feed_m3: Some(12.0),
        water_permeate_m3: Some(9.0),
        water_concentrate_m3: Some(3.0),
        conductivity_measured_ms: 200 * MIN,
        conductivity_within_ms: 196 * MIN,
        toc_measured_ms: 200 * MIN,
        toc_within_ms: 200 * MIN,
        usp_excursions: 1,
        ..Default::default()
    }
}

fn so_far(s: KpiSums, windows: u32) -> SoFar {
    let start = T0 - i64::from(windows) * MIN;
    SoFar {
        production_day: Some("2026-03-02".into()),
        shift: Some("early".into()),
        start_ms: start,
        end_ms: T0,
        windows,
        corrected: 0,
        from_start: true,
        ratios: KpiRatios::from_sums(&s, i64::from(windows) * MIN),
        sums: s,
        expected_kwh: Some(700.0),
    }
}

fn points(n: usize, seed: f64) -> Vec<TrendPoint> {
    (0..n)
        .map(|i| {
            let x = (i as f64 * 0.7 + seed).sin();
            TrendPoint {
                end_ms: T0 - (n - i) as i64 * MIN + MIN,
                oee: Some(0.6 + 0.2 * x),
                kw: if i % 17 == 5 {
                    None
                } else {
                    Some(220.0 + 40.0 * x)
                },
                kwh: Some(3.7),
                recovery: Some(0.74),
                conductivity_max: Some(if i == 30 { 1.45 } else { 0.8 + 0.2 * x }),
                toc_max: Some(180.0 + 60.0 * x),
                coverage: Some(1.0),
            }
        })
        .collect()
}

const SITES: [(&str, i64, i64, u64, u64, i64); 5] = [
    // name, run, stop, produced, good, published minutes ago
    ("basel", 180, 40, 11_000, 10_700, 0),
    ("lyon", 215, 5, 14_000, 13_900, 0),
    ("monza", 150, 70, 8_000, 7_100, 0),
    ("cork", 200, 20, 12_500, 12_300, 9),
    ("aarhus", 205, 15, 13_000, 12_950, 0),
];

fn sites() -> Vec<BoardMessage> {
    let mut out = Vec::new();
    for (i, (name, run, stop, produced, good, ago)) in SITES.iter().enumerate() {
        let s = sums(*run, *stop, *produced, *good);
        let pts = points(60, i as f64);
        let published = T0 - ago * MIN;
        out.push(msg(
            BoardTopic::Site((*name).into()),
            &SiteBoard {
                published_ms: published,
                site: (*name).into(),
                now: Now {
                    end_ms: published,
                    kw: Some(231.5 + i as f64 * 10.0),
                    oee: Some(0.7),
                    coverage: Some(1.0),
                    revision: 0,
                },
                shift: Some(so_far(s.clone(), 220)),
                day: Some(so_far(s, 220)),
                recent: pts[pts.len() - 16..].to_vec(),
                lines: vec!["packaging/line-1".into(), "packaging/line-2".into()],
                baseline_kwh_per_unit: Some(0.064),
            },
        ));
        out.push(msg(
            BoardTopic::Trend((*name).into()),
            &SiteTrend {
                published_ms: published,
                site: (*name).into(),
                shift: pts,
                day_oee: (0..7)
                    .map(|h| (T0 - (7 - h) * 3_600_000, Some(0.6 + h as f64 * 0.03)))
                    .collect(),
                days: (1..=5)
                    .map(|d| DayEnergy {
                        day: format!("2026-02-2{d}").into(),
                        kwh: Some(1_000.0 + d as f64 * 10.0),
                        expected_kwh: Some(1_005.0),
                        cusum_kwh: Some(-20.0 + d as f64 * 9.0),
                        cost: Some(180.0),
                        co2e_kg: Some(270.0),
                    })
                    .collect(),
            },
        ));
        for (l, (run, stop)) in [("line-1", (200, 20)), ("line-2", (150, 70))]
            .iter()
            .enumerate()
            .map(|(j, x)| (["line-1", "line-2"][j], x.1))
        {
            let s = sums(run, stop, 5_000, 4_900);
            let scope = AssetKey::new(name, "packaging", l, "-").scope(Level::Line);
            let timeline: String = (0..220)
                .map(|k| match k % 37 {
                    0..=2 => 'S',
                    3 => 'm',
                    10..=13 if k > 100 => 'C',
                    20 if l == "line-2" => '?',
                    _ => 'R',
                })
                .collect();
            out.push(msg(
                BoardTopic::Line((*name).into(), "packaging".into(), l.into()),
                &LineBoard {
                    published_ms: published,
                    scope,
                    now: Now {
                        end_ms: published,
                        kw: Some(80.0),
                        oee: Some(0.7),
                        coverage: Some(1.0),
                        revision: 0,
                    },
                    shift: Some(so_far(s, 220)),
                    timeline_start_ms: T0 - 220 * MIN,
                    step_ms: MIN,
                    timeline,
                    ideal_rate_per_h: Some(4_000.0),
                    assets: 3,
                },
            ));
        }
    }
    out
}

fn alarm(i: usize, site: &str, p: Priority, state: AlarmState, ts: i64) -> BoardMessage {
    let ev = AlarmEvent {
        ts_ms: ts,
        rule: format!("rule-{i}").into(),
        scope: AssetKey::new(site, "packaging", "line-1", "-").scope(Level::Line),
        signal: None,
        kind: AlarmEventKind::Raised,
        state,
        priority: p,
        metric: "oee".into(),
        value: Some(0.41),
        threshold: 0.6,
        message: "OEE below 60 % on the line".into(),
    };
    msg(BoardTopic::Alarm(alarm_key(&ev.id())), &ev)
}

fn health() -> BoardMessage {
    let mut dl = BTreeMap::new();
    dl.insert("bad_json".to_string(), 12);
    dl.insert("unknown_asset".to_string(), 3);
    msg(
        BoardTopic::Health,
        &BoardHealth {
            published_ms: T0,
            metrics: PipelineMetrics {
                received: 1_204_331,
                accepted: 1_204_316,
                dead_letters: dl,
                ingest_rate_per_s: 2_410.0,
                watermark_ms: Some(T0 - 90_000),
                watermark_lag_ms: 90_000,
                windows_closed: 220,
                late_dropped: 4,
                stale_sites: vec!["cork".into()],
                sources: vec![
                    ctower_model::SourceHealth {
                        name: "plants-eu".into(),
                        state: "subscribed".into(),
                        received: 1_100_000,
                        accepted: 1_099_990,
                        rate_per_s: 2_200.0,
                        newest_event_ms: Some(T0 - 30_000),
                        last_recv_ms: Some(T0 - 1_000),
                    },
                    ctower_model::SourceHealth {
                        name: "plants-cn".into(),
                        state: "disconnected (attempt 3): connection refused".into(),
                        received: 104_331,
                        accepted: 104_326,
                        rate_per_s: 0.0,
                        newest_event_ms: Some(T0 - 540_000),
                        last_recv_ms: Some(T0 - 540_000),
                    },
                ],
                outboxes: vec![OutboxStatus {
                    name: "influx".into(),
                    target: "http://influx:8086".into(),
                    pending_lines: 6_471,
                    used_bytes: 5_100_000,
                    budget_bytes: 512 << 20,
                    oldest_age_ms: Some(61_000),
                    written: 223_320,
                    rejected: 0,
                    lost: 0,
                    last_error: Some("connection refused".into()),
                }],
                ..Default::default()
            },
            corrections: 120,
            board_dropped: 0,
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn entry(
    asset: &str,
    param: &str,
    unit: &str,
    ty: ParamType,
    range: Option<(f64, f64, f64)>,
    two_person: bool,
    value: Option<ParamValue>,
    value_ms: Option<i64>,
    in_flight: &str,
) -> ParamEntryView {
    ParamEntryView {
        asset: asset.into(),
        param: param.into(),
        unit: unit.into(),
        ty,
        min: range.map(|r| r.0),
        max: range.map(|r| r.1),
        max_step: range.map(|r| r.2),
        two_person,
        request_roles: vec!["operator".into()],
        approve_roles: vec!["supervisor".into()],
        value,
        value_ms,
        in_flight: (!in_flight.is_empty()).then(|| in_flight.to_string()),
    }
}

const FILLER: &str = "basel/packaging/line-1/filler";
const CONVEYOR: &str = "basel/packaging/line-2/conveyor";
const RO: &str = "basel/utilities/ro/ro-1";
const OVEN: &str = "lyon/ovens/line-1/oven-2";

/// The writable parameters: a fresh float, a switch, a stale float (9
/// minutes old, limit 3), an integer with no read-back yet.
fn param_board(read_only: bool) -> ParamBoard {
    ParamBoard {
        read_only,
        entries: vec![
            entry(
                FILLER,
                "speed",
                "%",
                ParamType::Float,
                Some((0.0, 100.0, 10.0)),
                true,
                Some(ParamValue::Float(75.0)),
                Some(T0 - 20_000),
                "P000007",
            ),
            entry(
                CONVEYOR,
                "enabled",
                "",
                ParamType::Bool,
                None,
                false,
                Some(ParamValue::Bool(true)),
                Some(T0 - 5_000),
                "P000006",
            ),
            entry(
                RO,
                "recovery_setpoint",
                "%",
                ParamType::Float,
                Some((50.0, 85.0, 10.0)),
                true,
                Some(ParamValue::Float(74.0)),
                Some(T0 - 9 * MIN),
                "P000005",
            ),
            entry(
                OVEN,
                "temperature_setpoint",
                "°C",
                ParamType::Int,
                Some((150.0, 250.0, 25.0)),
                true,
                None,
                None,
                "P000008",
            ),
        ],
    }
}

/// A write request: `n` minutes after the first, by `by`.
#[allow(clippy::too_many_arguments)]
fn request(
    n: i64,
    asset: &str,
    param: &str,
    unit: &str,
    old: Option<ParamValue>,
    new: ParamValue,
    state: ParamState,
    by: &str,
    decided_by: Option<&str>,
    deadline_ms: Option<i64>,
    note: &str,
) -> ParamRequestView {
    let requested_ms = T0 - 120 * MIN + n * 10 * MIN;
    ParamRequestView {
        id: format!("P{n:06}"),
        asset: asset.into(),
        param: param.into(),
        unit: unit.into(),
        old,
        new,
        state,
        requested_by: by.into(),
        reason: format!("reason of request {n}"),
        decided_by: decided_by.map(str::to_string),
        two_person: !matches!(new, ParamValue::Bool(_)),
        requested_ms,
        updated_ms: requested_ms + MIN,
        deadline_ms,
        readback: None,
        note: note.into(),
    }
}

/// One request in each state (and a second requested one, alice's own).
fn param_requests() -> Vec<ParamRequestView> {
    use ParamState as S;
    use ParamValue::{Bool, Float, Int};
    vec![
        request(
            1,
            RO,
            "recovery_setpoint",
            "%",
            Some(Float(72.0)),
            Float(78.0),
            S::Expired,
            "carol",
            None,
            None,
            "nobody approved it within 30m",
        ),
        request(
            2,
            OVEN,
            "temperature_setpoint",
            "°C",
            Some(Int(180)),
            Int(230),
            S::Rejected,
            "bob",
            Some("alice"),
            None,
            "rejected: step too large",
        ),
        request(
            3,
            FILLER,
            "speed",
            "%",
            Some(Float(70.0)),
            Float(75.0),
            S::Unconfirmed,
            "alice",
            Some("bob"),
            None,
            "no read-back of 75 within 60s; alarm raised",
        ),
        request(
            4,
            CONVEYOR,
            "enabled",
            "",
            Some(Bool(false)),
            Bool(true),
            S::Confirmed,
            "bob",
            None,
            None,
            "read-back true",
        ),
        request(
            5,
            RO,
            "recovery_setpoint",
            "%",
            Some(Float(74.0)),
            Float(76.0),
            S::Sent,
            "alice",
            Some("bob"),
            Some(T0 + 45_000),
            "sent as DCMD",
        ),
        request(
            6,
            CONVEYOR,
            "enabled",
            "",
            Some(Bool(true)),
            Bool(false),
            S::Approved,
            "bob",
            None,
            None,
            "",
        ),
        request(
            7,
            FILLER,
            "speed",
            "%",
            Some(Float(75.0)),
            Float(82.0),
            S::Requested,
            "bob",
            None,
            Some(T0 + 14 * MIN + 30_000),
            "",
        ),
        request(
            8,
            OVEN,
            "temperature_setpoint",
            "°C",
            None,
            Int(200),
            S::Requested,
            "alice",
            None,
            Some(T0 + 29 * MIN),
            "",
        ),
    ]
}

fn with_params(app: &mut App, read_only: bool) {
    app.apply(&msg(BoardTopic::Params, &param_board(read_only)), T0);
    for r in param_requests() {
        app.apply(&msg(BoardTopic::Param(r.id.clone()), &r), T0);
    }
}

/// The fixed state: five sites (cork stale), lines, trends, four alarms,
/// health, writable parameters and their requests, the engine online at
/// T0.
fn fixture() -> App {
    let mut app = App::new("ctower", "alice").attached("mqtts://tower.example:8883", 1_600);
    app.set_link(LinkState::Up);
    app.apply(&status(true, T0), T0);
    for m in sites() {
        app.apply(&m, T0);
    }
    app.apply(&health(), T0);
    for (i, (site, p, s)) in [
        ("basel", Priority::Urgent, AlarmState::UnackActive),
        ("monza", Priority::High, AlarmState::UnackActive),
        ("basel", Priority::Medium, AlarmState::AckActive),
        ("lyon", Priority::Low, AlarmState::UnackRtn),
    ]
    .into_iter()
    .enumerate()
    {
        app.apply(&alarm(i, site, p, s, T0 - (i as i64 + 1) * 5 * MIN), T0);
    }
    with_params(&mut app, false);
    app
}

fn key(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE), T0);
}

fn draw(app: &mut App, w: u16, h: u16, now: i64) -> Terminal<TestBackend> {
    app.set_screen(ratatui::layout::Rect::new(0, 0, w, h));
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render(f, app, now, Theme { mono: false }))
        .unwrap();
    t
}

fn both_sizes(name: &str, app: &mut App, now: i64) {
    for (w, h) in [(80, 24), (160, 48)] {
        let t = draw(app, w, h, now);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), t.backend());
    }
}

#[test]
fn fleet() {
    both_sizes("fleet", &mut fixture(), T0);
}

#[test]
fn site() {
    let mut app = fixture();
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view(), ctower_tui::View::Site);
    both_sizes("site", &mut app, T0);
}

#[test]
fn line() {
    let mut app = fixture();
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view(), ctower_tui::View::Line);
    both_sizes("line", &mut app, T0);
}

#[test]
fn energy() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('4'));
    both_sizes("energy", &mut app, T0);
}

#[test]
fn water() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('5'));
    both_sizes("water", &mut app, T0);
}

#[test]
fn alarm_console() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('6'));
    key(&mut app, KeyCode::Down);
    both_sizes("alarms", &mut app, T0);
}

#[test]
fn health_view() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('7'));
    both_sizes("health", &mut app, T0);
}

#[test]
fn help_overlay() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('?'));
    both_sizes("help", &mut app, T0);
}

#[test]
fn disconnected_engine() {
    // 2 s after the last heartbeat: the engine is gone, every figure stale.
    both_sizes("disconnected", &mut fixture(), T0 + 2_000);
}

#[test]
fn flood() {
    let mut app = fixture();
    for i in 10..24 {
        app.apply(
            &alarm(
                i,
                "monza",
                Priority::Medium,
                AlarmState::UnackActive,
                T0 - i as i64 * 10_000,
            ),
            T0,
        );
    }
    key(&mut app, KeyCode::Char('6'));
    both_sizes("flood", &mut app, T0);
}

/// The first cell at which `text` starts on the screen.
fn find(t: &Terminal<TestBackend>, text: &str) -> (u16, u16) {
    let buf = t.backend().buffer();
    for y in 0..buf.area.height {
        let row: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        if let Some(i) = row.find(text) {
            let x = row[..i].chars().count() as u16;
            return (x, y);
        }
    }
    panic!("`{text}` not on screen:\n{}", t.backend());
}

#[test]
fn priorities_and_stale_marks_have_their_styles() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('6'));
    for mono in [false, true] {
        app.set_screen(ratatui::layout::Rect::new(0, 0, 160, 48));
        let mut t = Terminal::new(TestBackend::new(160, 48)).unwrap();
        t.draw(|f| render(f, &app, T0, Theme { mono })).unwrap();
        let buf = t.backend().buffer();
        let urg = find(&t, "URG");
        let s = buf[urg].style();
        assert!(
            s.add_modifier.contains(Modifier::BOLD | Modifier::REVERSED),
            "{s:?}"
        );
        let hi = find(&t, "HI ");
        assert!(buf[hi].style().add_modifier.contains(Modifier::BOLD));
        let med = find(&t, "MED");
        assert!(buf[med].style().add_modifier.contains(Modifier::UNDERLINED));
        if mono {
            assert!(
                matches!(s.fg, None | Some(ratatui::style::Color::Reset)),
                "monochrome: no colour, got {s:?}"
            );
        } else {
            assert!(s.fg.is_some());
        }
    }
    // The fleet: cork's tile is stale (9 minutes old, limit 3), dimmed.
    let mut app = fixture();
    let t = draw(&mut app, 160, 48, T0);
    let stale = find(&t, "STALE 9m00s");
    assert!(t.backend().buffer()[stale]
        .style()
        .add_modifier
        .contains(Modifier::BOLD));
    let (x, y) = find(&t, "cork");
    let oee = find_from(&t, "OEE", y + 1, x.saturating_sub(3));
    assert!(t.backend().buffer()[oee]
        .style()
        .add_modifier
        .contains(Modifier::DIM));
    // A fresh tile is not dimmed.
    let (x, y) = find(&t, "lyon");
    let oee = find_from(&t, "OEE", y + 1, x.saturating_sub(3));
    assert!(!t.backend().buffer()[oee]
        .style()
        .add_modifier
        .contains(Modifier::DIM));
}

fn find_from(t: &Terminal<TestBackend>, text: &str, y: u16, x0: u16) -> (u16, u16) {
    let buf = t.backend().buffer();
    let row: String = (x0..buf.area.width)
        .map(|x| buf[(x, y)].symbol().to_string())
        .collect();
    let i = row
        .find(text)
        .unwrap_or_else(|| panic!("`{text}` not in row {y}"));
    (x0 + row[..i].chars().count() as u16, y)
}

#[test]
fn the_alarm_list_scrolls_at_80x24_and_sites_that_do_not_fit_are_counted() {
    let mut app = fixture();
    for i in 10..30 {
        app.apply(
            &alarm(
                i,
                "aarhus",
                Priority::Low,
                AlarmState::AckActive,
                T0 - 3_600_000 - i as i64,
            ),
            T0,
        );
    }
    let t = draw(&mut app, 80, 24, T0);
    let screen = t.backend().to_string();
    assert!(screen.contains("+1 more"), "{screen}");
    key(&mut app, KeyCode::Char('6'));
    for _ in 0..23 {
        key(&mut app, KeyCode::Down);
    }
    let t = draw(&mut app, 80, 24, T0);
    let screen = t.backend().to_string();
    // The cursor went past the visible rows: the list scrolled with it.
    assert!(screen.contains("+9 above"), "{screen}");
    assert!(screen.contains("+1 more"), "{screen}");
}

#[test]
fn a_refusal_is_shown_on_screen() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('6'));
    key(&mut app, KeyCode::Down);
    let a = app.on_key(KeyEvent::new(KeyCode::Char('a'), KeyModifiers::NONE), T0);
    let ctower_tui::Action::Send(req) = a else {
        panic!("an ack request, got {a:?}");
    };
    assert_eq!(req.user, "alice");
    app.on_reply(&ctower_model::CommandReply {
        id: req.id,
        user: "alice".into(),
        ok: false,
        message: "user `alice` may not acknowledge alarms here".into(),
        state: None,
        alarms: Vec::new(),
        requests: Vec::new(),
        params: Vec::new(),
    });
    let t = draw(&mut app, 80, 24, T0);
    let screen = t.backend().to_string();
    assert!(screen.contains("REFUSED: user `alice` may not"), "{screen}");
}

#[test]
fn every_view_draws_at_every_size_down_to_one_cell() {
    let mut app = fixture();
    for i in 10..40 {
        app.apply(
            &alarm(
                i,
                "aarhus",
                Priority::Low,
                AlarmState::AckActive,
                T0 - i as i64,
            ),
            T0,
        );
    }
    let keys = ['1', '2', '3', '4', '5', '6', '7', '8', '?'];
    for (w, h) in [
        (1, 1),
        (2, 3),
        (10, 4),
        (20, 6),
        (39, 8),
        (40, 12),
        (79, 23),
        (80, 24),
        (81, 25),
        (120, 30),
        (250, 80),
    ] {
        for k in keys {
            let mut a = app.clone();
            a.set_screen(ratatui::layout::Rect::new(0, 0, w, h));
            key(&mut a, KeyCode::Char(k));
            for code in [KeyCode::Down, KeyCode::Right, KeyCode::End, KeyCode::Enter] {
                key(&mut a, code);
                let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
                t.draw(|f| render(f, &a, T0, Theme { mono: false }))
                    .unwrap();
                // A click anywhere lands on something or nothing, never a panic.
                for (x, y) in [
                    (0, 0),
                    (w / 2, h / 2),
                    (w - 1, h - 1),
                    (w / 3, 3.min(h - 1)),
                ] {
                    a.on_mouse(
                        ratatui::crossterm::event::MouseEvent {
                            kind: ratatui::crossterm::event::MouseEventKind::Down(
                                ratatui::crossterm::event::MouseButton::Left,
                            ),
                            column: x,
                            row: y,
                            modifiers: KeyModifiers::NONE,
                        },
                        ratatui::layout::Rect::new(0, 0, w, h),
                        T0,
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------
// The parameter view.

fn act(app: &mut App, code: KeyCode) -> Action {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE), T0)
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        assert_eq!(act(app, KeyCode::Char(c)), Action::None);
    }
}

fn screen(app: &mut App, w: u16, h: u16) -> String {
    draw(app, w, h, T0).backend().to_string()
}

fn notice(app: &App) -> String {
    app.notice().map(|(n, _)| n.to_string()).unwrap_or_default()
}

#[test]
fn params_view() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('8'));
    assert_eq!(app.view(), ctower_tui::View::Params);
    // The second request (bob's, waiting for approval) under the cursor.
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    both_sizes("params", &mut app, T0);
}

#[test]
fn params_view_read_only() {
    let mut app = fixture();
    with_params(&mut app, true);
    key(&mut app, KeyCode::Char('8'));
    let t = draw(&mut app, 80, 24, T0);
    insta::assert_snapshot!("params_read_only_80x24", t.backend());
    // `s` is refused here: the engine would refuse it anyway.
    key(&mut app, KeyCode::Down);
    assert_eq!(act(&mut app, KeyCode::Char('s')), Action::None);
    assert!(notice(&app).contains("READ-ONLY"), "{}", notice(&app));
    assert!(!screen(&mut app, 80, 24).contains("VALUE REASON:"));
}

#[test]
fn request_states_and_stale_values_have_their_styles() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('8'));
    for mono in [false, true] {
        app.set_screen(ratatui::layout::Rect::new(0, 0, 160, 48));
        let mut t = Terminal::new(TestBackend::new(160, 48)).unwrap();
        t.draw(|f| render(f, &app, T0, Theme { mono })).unwrap();
        let buf = t.backend().buffer().clone();
        let unconfirmed = buf[find(&t, "UNCONFIRMED")].style();
        assert!(
            unconfirmed
                .add_modifier
                .contains(Modifier::BOLD | Modifier::REVERSED),
            "{unconfirmed:?}"
        );
        let expired = buf[find(&t, "expired")].style();
        assert!(expired.add_modifier.contains(Modifier::DIM), "{expired:?}");
        let (x, y) = find(&t, "requested ");
        let requested = buf[(x, y)].style();
        assert!(
            requested.add_modifier.contains(Modifier::BOLD),
            "{requested:?}"
        );
        let confirmed = buf[find(&t, "confirmed")].style();
        assert!(
            !confirmed
                .add_modifier
                .intersects(Modifier::BOLD | Modifier::REVERSED | Modifier::DIM),
            "{confirmed:?}"
        );
        // The stale read-back: labelled with its age and dimmed, value too.
        let stale = buf[find(&t, "STALE 9m00s")].style();
        assert!(stale.add_modifier.contains(Modifier::DIM), "{stale:?}");
        let stale_value = buf[find(&t, "74 %")].style();
        assert!(stale_value.add_modifier.contains(Modifier::DIM));
        let fresh_value = buf[find(&t, "75 %")].style();
        assert!(!fresh_value.add_modifier.contains(Modifier::DIM));
        if mono {
            for cell in buf.content() {
                let s = cell.style();
                assert!(
                    matches!(s.fg, None | Some(ratatui::style::Color::Reset))
                        && matches!(s.bg, None | Some(ratatui::style::Color::Reset)),
                    "monochrome: no colour, got {s:?} at `{}`",
                    cell.symbol()
                );
            }
        } else {
            assert!(unconfirmed.fg.is_some());
        }
    }
}

#[test]
fn set_asks_the_signature_once_then_sends_the_value_and_the_reason() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('8'));
    // The RO unit's recovery setpoint: the third parameter.
    for _ in 0..3 {
        key(&mut app, KeyCode::Down);
    }
    assert_eq!(act(&mut app, KeyCode::Char('s')), Action::None);
    assert!(screen(&mut app, 160, 48).contains(&format!(
        "set {RO} recovery_setpoint (float, %) — VALUE REASON:"
    )));
    type_text(&mut app, "80 raise recovery");
    // Not sent yet: the signature first.
    assert_eq!(act(&mut app, KeyCode::Enter), Action::None);
    assert!(screen(&mut app, 80, 24).contains("signature for alice: "));
    type_text(&mut app, "Zq9-secret");
    assert!(screen(&mut app, 80, 24).contains("signature for alice: **********█"));
    let Action::Send(req) = act(&mut app, KeyCode::Enter) else {
        panic!("a set request");
    };
    assert_eq!(req.action, CommandAction::Set);
    assert_eq!(req.user, "alice");
    assert_eq!(req.asset.as_deref(), Some(RO));
    assert_eq!(req.param.as_deref(), Some("recovery_setpoint"));
    assert_eq!(req.value, Some(ParamValue::Float(80.0)));
    assert_eq!(req.reason, "raise recovery");
    assert_eq!(req.signature, Some(Signature("Zq9-secret".into())));
    // The next one is signed at once.
    key(&mut app, KeyCode::Char('s'));
    type_text(&mut app, "81 a bit more");
    let Action::Send(again) = act(&mut app, KeyCode::Enter) else {
        panic!("signed with the kept signature");
    };
    assert_eq!(again.signature, Some(Signature("Zq9-secret".into())));
    assert_ne!(again.id, req.id);
}

#[test]
fn an_idle_signing_session_ends_and_the_signature_is_asked_again() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('8'));
    for _ in 0..3 {
        key(&mut app, KeyCode::Down);
    }
    let at = |app: &mut App, code: KeyCode, now: i64| {
        app.on_key(KeyEvent::new(code, KeyModifiers::NONE), now)
    };
    at(&mut app, KeyCode::Char('s'), T0);
    type_text(&mut app, "80 raise recovery");
    at(&mut app, KeyCode::Enter, T0);
    type_text(&mut app, "Zq9-secret");
    assert!(matches!(at(&mut app, KeyCode::Enter, T0), Action::Send(_)));
    // 16 minutes later, with no signed action since: asked again.
    let later = T0 + 16 * 60_000;
    at(&mut app, KeyCode::Char('s'), later);
    for c in "81 a bit more".chars() {
        at(&mut app, KeyCode::Char(c), later);
    }
    assert_eq!(at(&mut app, KeyCode::Enter, later), Action::None);
    assert!(screen(&mut app, 80, 24).contains("signature for alice: "));
}

#[test]
fn a_bad_value_a_missing_reason_or_a_value_out_of_range_sends_nothing() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('8'));
    for _ in 0..3 {
        key(&mut app, KeyCode::Down);
    }
    for (typed, why) in [
        ("abc raise recovery", "`abc` is not a number"),
        ("80", "a reason is required"),
        ("95 beyond the range", "outside 50–85"),
        ("", "`nothing` is not a number"),
    ] {
        key(&mut app, KeyCode::Char('s'));
        type_text(&mut app, typed);
        assert_eq!(act(&mut app, KeyCode::Enter), Action::None, "{typed}");
        let n = notice(&app);
        assert!(
            n.contains(why) && n.contains("nothing sent"),
            "{typed}: {n}"
        );
        // No signature prompt either: the prompt is closed.
        assert!(!screen(&mut app, 80, 24).contains("signature for"));
    }
    // A switch takes on/off; an integer no fraction.
    key(&mut app, KeyCode::Home);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('s'));
    type_text(&mut app, "maybe stop the conveyor");
    assert_eq!(act(&mut app, KeyCode::Enter), Action::None);
    assert!(notice(&app).contains("on/off"), "{}", notice(&app));
    // Esc cancels the prompt.
    key(&mut app, KeyCode::Char('s'));
    type_text(&mut app, "off");
    assert_eq!(act(&mut app, KeyCode::Esc), Action::None);
    assert!(!screen(&mut app, 80, 24).contains("VALUE REASON:"));
    assert_eq!(act(&mut app, KeyCode::Enter), Action::None);
}

#[test]
fn approve_and_reject_act_on_the_selected_request_but_not_on_ones_own() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('8'));
    // From the parameters' table, `y` says where to go.
    assert_eq!(act(&mut app, KeyCode::Char('y')), Action::None);
    assert!(notice(&app).contains("→ to the requests"));
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    // P000008 is alice's own: not sent.
    assert!(screen(&mut app, 80, 24).contains("P000008 alice requested"));
    assert_eq!(act(&mut app, KeyCode::Char('y')), Action::None);
    assert_eq!(notice(&app), "you cannot approve your own request");
    assert!(!screen(&mut app, 80, 24).contains("signature for"));
    // P000007 is bob's: approved, after the signature.
    key(&mut app, KeyCode::Down);
    assert_eq!(act(&mut app, KeyCode::Char('y')), Action::None);
    type_text(&mut app, "Zq9-secret");
    let Action::Send(approve) = act(&mut app, KeyCode::Enter) else {
        panic!("an approval");
    };
    assert_eq!(approve.action, CommandAction::Approve);
    assert_eq!(approve.request.as_deref(), Some("P000007"));
    assert_eq!(approve.signature, Some(Signature("Zq9-secret".into())));
    // Reject: a reason is required.
    key(&mut app, KeyCode::Char('x'));
    assert!(screen(&mut app, 80, 24).contains("reject P000007 — REASON:"));
    assert_eq!(act(&mut app, KeyCode::Enter), Action::None);
    assert!(notice(&app).contains("a reason is required"));
    key(&mut app, KeyCode::Char('x'));
    type_text(&mut app, "step too large");
    let Action::Send(reject) = act(&mut app, KeyCode::Enter) else {
        panic!("a rejection");
    };
    assert_eq!(reject.action, CommandAction::Reject);
    assert_eq!(reject.request.as_deref(), Some("P000007"));
    assert_eq!(reject.reason, "step too large");
    assert!(reject.signature.is_some());
    // Only a requested change is approved or rejected.
    key(&mut app, KeyCode::Down);
    assert_eq!(act(&mut app, KeyCode::Char('y')), Action::None);
    assert!(
        notice(&app).contains("P000006 is approved"),
        "{}",
        notice(&app)
    );
    assert_eq!(act(&mut app, KeyCode::Char('x')), Action::None);
    assert!(!screen(&mut app, 80, 24).contains("REASON:"));
}

#[test]
fn the_signature_is_never_drawn_nor_in_debug_output() {
    const SECRET: &str = "Zq9-very-secret";
    let mut app = fixture();
    key(&mut app, KeyCode::Char('8'));
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('y'));
    let check = |app: &mut App| {
        for view in ['1', '2', '3', '4', '5', '6', '7', '8', '?'] {
            let mut a = app.clone();
            // While the prompt is open a digit is typed into it: draw it as
            // it is, then every view once it is closed.
            for (w, h) in [(80, 24), (160, 48)] {
                let text = screen(&mut a, w, h);
                assert!(!text.contains("Zq9"), "{text}");
            }
            if !a.has_signature() {
                continue;
            }
            key(&mut a, KeyCode::Char(view));
            for (w, h) in [(80, 24), (160, 48), (250, 80)] {
                let text = screen(&mut a, w, h);
                assert!(!text.contains("Zq9"), "view {view}: {text}");
            }
        }
        let debug = format!("{app:?}");
        assert!(!debug.contains("Zq9"), "{debug}");
    };
    type_text(&mut app, SECRET);
    check(&mut app);
    let Action::Send(req) = act(&mut app, KeyCode::Enter) else {
        panic!("an approval");
    };
    assert!(format!("{req:?}").contains("Signature(***)"));
    check(&mut app);
    assert!(app.has_signature());
}

#[test]
fn a_refusal_for_the_signature_forgets_it_and_other_refusals_keep_it() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('8'));
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('y'));
    type_text(&mut app, "wrong");
    let Action::Send(req) = act(&mut app, KeyCode::Enter) else {
        panic!("an approval");
    };
    // Refused for another reason: the signature is kept.
    app.on_reply(&CommandReply::new(
        req.id.clone(),
        false,
        "user `alice` may not approve here",
    ));
    assert!(app.has_signature());
    let Action::Send(req) = act(&mut app, KeyCode::Char('y')) else {
        panic!("signed at once");
    };
    // Refused for the signature: forgotten, asked again.
    app.on_reply(&CommandReply::new(
        req.id.clone(),
        false,
        "the signature of `alice` does not match",
    ));
    assert!(!app.has_signature());
    let text = screen(&mut app, 160, 48);
    assert!(
        text.contains(
            "REFUSED: the signature of `alice` does not match; the signature will be asked again"
        ),
        "{text}"
    );
    assert_eq!(act(&mut app, KeyCode::Char('y')), Action::None);
    assert!(screen(&mut app, 80, 24).contains("signature for alice: "));
    // Esc at the signature prompt sends nothing.
    type_text(&mut app, "abc");
    assert_eq!(act(&mut app, KeyCode::Esc), Action::None);
    assert!(notice(&app).contains("cancelled, nothing sent"));
    assert!(!app.has_signature());
}

#[test]
fn a_reply_shows_the_request_after_it() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('8'));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('s'));
    type_text(&mut app, "80 trial batch");
    key(&mut app, KeyCode::Enter);
    type_text(&mut app, "pw");
    let Action::Send(req) = act(&mut app, KeyCode::Enter) else {
        panic!("a set");
    };
    let mut reply = CommandReply::new(req.id, true, "requested");
    let mut after = param_requests()[6].clone();
    after.id = "P000009".into();
    after.requested_ms = T0;
    after.requested_by = "alice".into();
    after.new = ParamValue::Float(80.0);
    reply.requests = vec![after];
    app.on_reply(&reply);
    assert!(
        notice(&app).ends_with(": done (P000009 requested)"),
        "{}",
        notice(&app)
    );
    let text = screen(&mut app, 160, 48);
    assert!(text.contains("P000009"), "{text}");
}

#[test]
fn clicks_select_rows_in_both_tables() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('8'));
    let click = |app: &mut App, (x, y): (u16, u16)| {
        app.on_mouse(
            ratatui::crossterm::event::MouseEvent {
                kind: ratatui::crossterm::event::MouseEventKind::Down(
                    ratatui::crossterm::event::MouseButton::Left,
                ),
                column: x,
                row: y,
                modifiers: KeyModifiers::NONE,
            },
            ratatui::layout::Rect::new(0, 0, 80, 24),
            T0,
        );
    };
    // The tab.
    key(&mut app, KeyCode::Char('1'));
    let t = draw(&mut app, 80, 24, T0);
    click(&mut app, find(&t, "8 Params"));
    assert_eq!(app.view(), ctower_tui::View::Params);
    // A request's row: `x` rejects that one.
    let t = draw(&mut app, 80, 24, T0);
    // (The first `P000007 ` on screen is the request's id: the
    // parameters' table has it last in its row.)
    click(&mut app, find(&t, "P000007 "));
    key(&mut app, KeyCode::Char('x'));
    assert!(screen(&mut app, 80, 24).contains("reject P000007 — REASON:"));
    key(&mut app, KeyCode::Esc);
    // A parameter's row: `s` sets that one.
    let t = draw(&mut app, 80, 24, T0);
    let (_, y) = find(&t, "74 %");
    click(&mut app, (3, y));
    key(&mut app, KeyCode::Char('s'));
    let text = screen(&mut app, 80, 24);
    assert!(
        text.contains("set basel/utilities/ro/ro-1 recovery_setpoint"),
        "{text}"
    );
}

#[test]
fn both_parameter_tables_scroll_with_the_selection_at_80x24() {
    let mut app = fixture();
    for n in 10..40 {
        let mut r = param_requests()[3].clone();
        r.id = format!("P{n:06}");
        r.requested_ms = T0 - 60 * MIN + n * MIN;
        app.apply(&msg(BoardTopic::Param(r.id.clone()), &r), T0);
    }
    key(&mut app, KeyCode::Char('8'));
    key(&mut app, KeyCode::Right);
    for _ in 0..20 {
        key(&mut app, KeyCode::Down);
    }
    let text = screen(&mut app, 80, 24);
    // 38 requests, 8 rows shown, the 20th selected: 12 above, 18 below.
    assert!(text.contains("+12 above · +18 more ↓"), "{text}");
    assert!(text.contains("P000020 bob confirmed"), "{text}");
    // The parameters' table scrolls too when it is short of rows.
    let mut board = param_board(false);
    for i in 0..12 {
        let mut e = board.entries[0].clone();
        e.param = format!("speed_{i:02}");
        board.entries.push(e);
    }
    app.apply(&msg(BoardTopic::Params, &board), T0);
    key(&mut app, KeyCode::Left);
    for _ in 0..15 {
        key(&mut app, KeyCode::Down);
    }
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("▸ Writable parameters · +"), "{text}");
    assert!(text.contains("filler speed_10"), "{text}");
}
