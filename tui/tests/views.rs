//! Snapshot tests of every view at 80×24 and 160×48 from one fixed state
//! (TestBackend + insta), with stale data, a disconnected engine and an
//! alarm flood; and style checks, so a priority or a stale mark is seen
//! in its style, not only in its characters.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use ctower_model::board::{
    alarm_key, BoardHealth, BoardMessage, BoardTopic, DayEnergy, EngineStatus, LineBoard, Now,
    SiteBoard, SiteTrend, SoFar, TrendPoint, BOARD_VERSION,
};
use ctower_model::kpi::{KpiRatios, KpiSums};
use ctower_model::{
    AlarmEvent, AlarmEventKind, AlarmState, AssetKey, Level, OutboxStatus, PipelineMetrics,
    Priority,
};
use ctower_tui::{render, App, LinkState, Theme};
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

/// The fixed state: five sites (cork stale), lines, trends, four alarms,
/// health, the engine online at T0.
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
    let keys = ['1', '2', '3', '4', '5', '6', '7', '?'];
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
