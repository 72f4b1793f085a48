//! Snapshot tests of the dashboard, drawn on ratatui's `TestBackend`.
//!
//! The snapshots hold the text only (no colours): every value must be
//! readable from the text alone.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step fails the test

use ctower_model::kpi::KpiSums;
use ctower_model::{
    AlarmEvent, AlarmEventKind, AlarmState, AssetKey, KpiRecord, Level, Period, PipelineMetrics,
    Priority, ScopeKey, Update,
};
use ctower_tui::{render, App, WindowTiming};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

const MIN: i64 = 60_000;
/// 2025-03-04T10:15:00Z, the end of the newest 15-minute window.
const WINDOW_END: i64 = 1_741_083_300_000;
const WINDOW_START: i64 = WINDOW_END - 15 * MIN;
/// Wall time of the drawing: 12 s after the window closed.
const NOW: i64 = WINDOW_END + 12_000;

/// One line's window: minutes per time bucket, units, ideal cycle time,
/// energy.
struct LineSpec {
    area: &'static str,
    line: &'static str,
    run_min: i64,
    unplanned_min: i64,
    changeover_min: i64,
    unknown_min: i64,
    produced: u64,
    good: u64,
    cycle_s: f64,
    kwh: f64,
    kw: Option<f64>,
}

fn line_kpi(site: &str, l: &LineSpec) -> KpiRecord {
    let sums = KpiSums {
        running_ms: l.run_min * MIN,
        unplanned_stop_ms: l.unplanned_min * MIN,
        changeover_ms: l.changeover_min * MIN,
        unknown_ms: l.unknown_min * MIN,
        produced: Some(l.produced),
        good: Some(l.good),
        reject: Some(l.produced - l.good),
        ideal_time_ms: l.produced as f64 * l.cycle_s * 1_000.0,
        energy_kwh: Some(l.kwh),
        // The line's meter measured the whole window.
        energy_meter_ms: WINDOW_END - WINDOW_START,
        energy_measured_ms: WINDOW_END - WINDOW_START,
        power_kw: l.kw,
        ..Default::default()
    };
    let scope = AssetKey::new(site, l.area, l.line, "-").scope(Level::Line);
    KpiRecord::new(WINDOW_START, WINDOW_END, scope, sums)
}

/// The site-level roll-up of its lines (sums first, then ratios), plus the
/// site's purified-water system (feed, permeate m³).
fn site_kpi(site: &str, lines: &[KpiRecord], water: (f64, f64)) -> KpiRecord {
    let mut sums = KpiSums::default();
    for l in lines {
        sums.add(&l.sums);
    }
    sums.water_feed_m3 = Some(water.0);
    sums.water_permeate_m3 = Some(water.1);
    sums.water_concentrate_m3 = Some(water.0 - water.1);
    let scope = AssetKey::new(site, "-", "-", "-").scope(Level::Site);
    KpiRecord::new(WINDOW_START, WINDOW_END, scope, sums)
}

fn group_kpi(sites: &[KpiRecord]) -> KpiRecord {
    let mut sums = KpiSums::default();
    for s in sites {
        sums.add(&s.sums);
    }
    KpiRecord::new(WINDOW_START, WINDOW_END, ScopeKey::group(), sums)
}

#[allow(clippy::too_many_arguments)]
fn spec(
    area: &'static str,
    line: &'static str,
    (run_min, unplanned_min, changeover_min, unknown_min): (i64, i64, i64, i64),
    produced: u64,
    good: u64,
    cycle_s: f64,
    kwh: f64,
    kw: Option<f64>,
) -> LineSpec {
    LineSpec {
        area,
        line,
        run_min,
        unplanned_min,
        changeover_min,
        unknown_min,
        produced,
        good,
        cycle_s,
        kwh,
        kw,
    }
}

/// Feeds a site's lines and roll-up to the app, received at `at_ms`.
fn feed_site(
    app: &mut App,
    site: &str,
    lines: &[LineSpec],
    water: (f64, f64),
    at_ms: i64,
) -> KpiRecord {
    let recs: Vec<KpiRecord> = lines.iter().map(|l| line_kpi(site, l)).collect();
    for r in &recs {
        app.apply(&Update::Kpi(Box::new(r.clone())), at_ms);
    }
    let s = site_kpi(site, &recs, water);
    app.apply(&Update::Kpi(Box::new(s.clone())), at_ms);
    s
}

fn metrics(stale_sites: &[&str]) -> Update {
    Update::Metrics(PipelineMetrics {
        received: 1_284_330,
        accepted: 1_284_315,
        dead_letters: [
            ("malformed_json".to_string(), 3),
            ("unknown_topic".to_string(), 12),
        ]
        .into_iter()
        .collect(),
        ingest_rate_per_s: 1_240.5,
        watermark_ms: Some(WINDOW_END + 25_000),
        watermark_lag_ms: 4_200,
        windows_closed: 18_432,
        late_dropped: 0,
        stale_sites: stale_sites.iter().map(|s| s.to_string()).collect(),
        faults: vec![],
        outboxes: vec![],
    })
}

#[allow(clippy::too_many_arguments)]
fn alarm(
    scope: ScopeKey,
    signal: Option<&str>,
    rule: &str,
    state: AlarmState,
    priority: Priority,
    metric: &str,
    value: f64,
    threshold: f64,
    message: &str,
    ts_ms: i64,
) -> Update {
    Update::Alarm(AlarmEvent {
        ts_ms,
        rule: rule.into(),
        scope,
        signal: signal.map(Into::into),
        kind: match state {
            AlarmState::UnackRtn => AlarmEventKind::Cleared,
            _ => AlarmEventKind::Raised,
        },
        state,
        priority,
        metric: metric.into(),
        value: Some(value),
        threshold,
        message: message.into(),
    })
}

/// Three plants: Cork (tableting, no power readings, so average kW),
/// Lyon (packaging and sterile filling, one poor line), Pune (liquids).
/// With `stale`, a third of Pune's asset-time has no data, and Cork's last
/// KPI arrived seven minutes ago.
fn three_sites(stale: bool) -> App {
    let mut app = App::new("ctower · Group control tower");
    let cork = feed_site(
        &mut app,
        "cork",
        &[
            spec(
                "tableting",
                "press-1",
                (12, 2, 1, 0),
                18_000,
                17_820,
                0.04,
                30.5,
                None,
            ),
            spec(
                "tableting",
                "coater-1",
                (15, 0, 0, 0),
                600,
                597,
                1.4,
                12.0,
                None,
            ),
        ],
        (0.0, 0.0),
        if stale { NOW - 420_000 } else { NOW - 4_000 },
    );
    let lyon = feed_site(
        &mut app,
        "lyon",
        &[
            spec(
                "packaging",
                "blister-1",
                (14, 1, 0, 0),
                1_620,
                1_604,
                0.5,
                11.2,
                Some(46.1),
            ),
            spec(
                "packaging",
                "blister-2",
                (9, 6, 0, 0),
                950,
                931,
                0.5,
                8.4,
                Some(31.0),
            ),
            spec(
                "sterile",
                "vial-fill-1",
                (15, 0, 0, 0),
                3_900,
                3_880,
                0.2,
                21.7,
                Some(88.4),
            ),
        ],
        (12.4, 10.9),
        NOW - 2_000,
    );
    let unknown = if stale { 5 } else { 0 };
    let pune = feed_site(
        &mut app,
        "pune",
        &[spec(
            "liquids",
            "syrup-1",
            (8, 2, 0, unknown),
            2_100,
            2_050,
            0.2,
            9.8,
            Some(38.2),
        )],
        (5.0, 4.1),
        NOW - 95_000,
    );
    app.apply(&Update::Kpi(Box::new(group_kpi(&[cork, lyon, pune]))), NOW);
    app.apply(
        &alarm(
            AssetKey::new("lyon", "utilities", "wfi-loop", "pw-1").scope(Level::Asset),
            Some("conductivity"),
            "wfi_conductivity_usp",
            AlarmState::UnackActive,
            Priority::Urgent,
            "max",
            1.62,
            1.3,
            "WFI conductivity above USP limit 1.3 µS/cm",
            WINDOW_END - 60_000,
        ),
        NOW,
    );
    app.apply(
        &alarm(
            AssetKey::new("cork", "tableting", "press-1", "-").scope(Level::Line),
            None,
            "availability_low",
            AlarmState::UnackRtn,
            Priority::Medium,
            "availability",
            0.78,
            0.8,
            "Availability below 80 %",
            WINDOW_END,
        ),
        NOW,
    );
    app
}

fn press(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn draw(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal
        .draw(|f| render(f, app, NOW))
        .expect("draw on test backend");
    terminal
}

#[test]
fn empty_dashboard_waits_for_data() {
    let app = App::new("ctower · Group control tower");
    let terminal = draw(&app, 80, 24);
    insta::assert_snapshot!(terminal.backend());
}

/// Issue #9: the demo says on screen why the first KPIs take a while, with
/// the configured window, lateness and lookahead and the replay speed.
#[test]
fn empty_dashboard_explains_the_first_kpi_wait() {
    let app = App::new("ctower · Group control tower").with_timing(WindowTiming {
        window_ms: MIN,
        allowed_lateness_ms: 30_000,
        lookahead_ms: MIN,
        replay_speed: Some(10.0),
    });
    let terminal = draw(&app, 80, 24);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn three_sites_with_lines_and_alarms() {
    let mut app = three_sites(false);
    app.apply(&metrics(&[]), NOW);
    press(&mut app, KeyCode::Right); // select Lyon
    let terminal = draw(&app, 110, 34);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn help_overlay() {
    let mut app = three_sites(false);
    app.apply(&metrics(&[]), NOW);
    press(&mut app, KeyCode::Char('?'));
    let terminal = draw(&app, 80, 24);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn stale_sites() {
    // Pune: a third of its asset-time unknown; Cork: marked silent by the pipeline.
    let mut app = three_sites(true);
    app.apply(&metrics(&["cork"]), NOW);
    press(&mut app, KeyCode::Char('3')); // select Pune
    let terminal = draw(&app, 100, 30);
    insta::assert_snapshot!(terminal.backend());
}

/// Issue #8 item 8: a stage that cannot write is shown at once, with its
/// path, its error and what it lost.
#[test]
fn a_failing_journal_is_flagged_in_the_header() {
    let mut app = three_sites(false);
    let Update::Metrics(mut m) = metrics(&[]) else {
        unreachable!("metrics() gives metrics")
    };
    m.faults.push(ctower_model::Fault {
        stage: "journal".into(),
        path: "/var/lib/ctower/journal/ctower.lp".into(),
        error: "No space left on device (os error 28)".into(),
        lost: 1_234,
    });
    app.apply(&Update::Metrics(m), NOW);
    let terminal = draw(&app, 140, 24);
    let screen = format!("{:?}", terminal.backend());
    assert!(screen.contains("JOURNAL FAILING"), "{screen}");
    assert!(screen.contains("No space left on device"), "{screen}");
    insta::assert_snapshot!(terminal.backend());
}

/// Issue #9: late observations the stream dropped are shown in the health
/// line (and only when there are any).
#[test]
fn late_drops_are_shown_in_the_health_line() {
    let mut app = three_sites(false);
    let screen = format!("{:?}", draw(&app, 160, 24).backend());
    assert!(!screen.contains("late dropped"), "{screen}");
    let Update::Metrics(mut m) = metrics(&[]) else {
        unreachable!("metrics() gives metrics")
    };
    m.late_dropped = 7;
    app.apply(&Update::Metrics(m), NOW);
    let screen = format!("{:?}", draw(&app, 160, 24).backend());
    assert!(screen.contains("late dropped 7"), "{screen}");
}

/// Issue #11: the InfluxDB outbox's depth and age in the health line,
/// and "empty" once it has drained.
#[test]
fn the_influx_outbox_is_shown_in_the_health_line() {
    let mut app = three_sites(false);
    let Update::Metrics(mut m) = metrics(&[]) else {
        unreachable!("metrics() gives metrics")
    };
    m.outboxes = vec![ctower_model::OutboxStatus {
        name: "influx".into(),
        target: "http://influx:8086".into(),
        pending_lines: 1234,
        oldest_age_ms: Some(95_000),
        last_error: Some("HTTP 503".into()),
        ..Default::default()
    }];
    app.apply(&Update::Metrics(m.clone()), NOW);
    let screen = format!("{:?}", draw(&app, 160, 24).backend());
    assert!(
        screen.contains("influx outbox 1234 lines, 95.0 s old"),
        "{screen}"
    );
    m.outboxes[0].pending_lines = 0;
    m.outboxes[0].oldest_age_ms = None;
    m.outboxes[0].last_error = None;
    app.apply(&Update::Metrics(m), NOW);
    let screen = format!("{:?}", draw(&app, 160, 24).backend());
    assert!(screen.contains("influx outbox empty"), "{screen}");
}

/// Issue #8 item 14: a tile's A, P and Q must multiply to its OEE (within
/// the display's rounding): a snapshot once accepted "P 101.9 %" beside an
/// OEE computed with P at most 100 %.
#[test]
fn the_factors_shown_multiply_to_the_oee_shown() {
    let mut app = three_sites(false);
    app.apply(&metrics(&[]), NOW);
    for (i, site) in ["basel", "dublin", "leiden", "mumbai", "sao-paulo"]
        .into_iter()
        .enumerate()
    {
        add_site(&mut app, site, i);
    }
    let terminal = draw(&app, 160, 40);
    let buf = terminal.backend().buffer();
    let rows: Vec<String> = (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect()
        })
        .collect();
    let pct = |s: &str| -> f64 {
        s.trim_end_matches(['│', '┃'])
            .trim_end_matches('↑')
            .trim_end_matches('%')
            .parse::<f64>()
            .unwrap_or_else(|e| panic!("`{s}`: {e}"))
            / 100.0
    };
    let mut tiles = 0;
    for (y, row) in rows.iter().enumerate() {
        // Each tile: "OEE x%" on one row, "A a% P p% Q q%" below it, at the
        // same column.
        for (col, _) in row.match_indices("OEE ") {
            // Tiles only (the header's group OEE has no factors under it).
            if !(row[..col].ends_with('│') || row[..col].ends_with('┃')) {
                continue;
            }
            let Some(oee) = row[col + 4..].split_whitespace().next() else {
                continue;
            };
            let below: String = rows[y + 1]
                .chars()
                .skip(row[..col].chars().count())
                .collect();
            let f: Vec<&str> = below.split_whitespace().take(6).collect();
            let ["A", a, "P", p, "Q", q] = f[..] else {
                panic!("no A P Q under `OEE {oee}`: {below}");
            };
            // Each factor is rounded to the digits shown: a whole percent
            // on a narrow tile, a tenth otherwise.
            let tol = if [a, p, q].iter().all(|f| f.contains('.')) {
                0.0015
            } else {
                0.015
            };
            let (oee, a, p, q) = (pct(oee), pct(a), pct(p), pct(q));
            assert!(p <= 1.0, "P shown above 100 %: {below}");
            assert!(
                (a * p * q - oee).abs() <= tol,
                "A {a} × P {p} × Q {q} = {} but OEE {oee} is shown",
                a * p * q
            );
            tiles += 1;
        }
    }
    assert!(tiles >= 8, "{tiles} tiles read");
}

#[test]
fn narrow_terminal() {
    let mut app = three_sites(false);
    app.apply(&metrics(&[]), NOW);
    press(&mut app, KeyCode::Char('2')); // select Lyon
    let terminal = draw(&app, 80, 24);
    insta::assert_snapshot!(terminal.backend());
}

/// Five more sites, one of them (sao-paulo) faster than its ideal rate.
fn add_site(app: &mut App, site: &str, i: usize) {
    let i = i as i64;
    let spec = [spec(
        "packaging",
        "line-1",
        (13 - i, 1 + i, 1, 0),
        1_500 - 100 * i as u64,
        1_480 - 110 * i as u64,
        0.5,
        10.0 + i as f64,
        Some(40.0 + 2.0 * i as f64),
    )];
    feed_site(app, site, &spec, (8.0, 7.0 - 0.4 * i as f64), NOW - 3_000);
}

#[test]
fn wide_terminal_with_many_sites() {
    let mut app = three_sites(false);
    app.apply(&metrics(&[]), NOW);
    for (i, site) in ["basel", "dublin", "leiden", "mumbai", "sao-paulo"]
        .into_iter()
        .enumerate()
    {
        add_site(&mut app, site, i);
    }
    press(&mut app, KeyCode::Char('4')); // select Lyon (basel, cork, dublin, lyon, …)
    let terminal = draw(&app, 160, 48);
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn many_sites_on_a_small_screen_keep_the_selected_tile_visible() {
    let mut app = App::new("t");
    for i in 0..20 {
        let site = format!("site-{i:02}");
        let spec = [spec("a", "l", (15, 0, 0, 0), 100, 99, 9.0, 1.0, Some(4.0))];
        feed_site(&mut app, &site, &spec, (0.0, 0.0), NOW);
    }
    for _ in 0..17 {
        press(&mut app, KeyCode::Right);
    }
    let terminal = draw(&app, 80, 24);
    let text = terminal.backend().to_string();
    assert!(text.contains("▶18 site-17"), "{text}");
}

#[test]
fn tiny_terminals_do_not_panic() {
    let mut app = three_sites(true);
    app.apply(&metrics(&["cork"]), NOW);
    press(&mut app, KeyCode::Char('?'));
    for (w, h) in [
        (1, 1),
        (10, 3),
        (20, 5),
        (30, 8),
        (40, 12),
        (200, 4),
        (3, 80),
    ] {
        draw(&app, w, h);
    }
}

#[test]
fn oee_colour_is_not_the_only_carrier() {
    // The red OEE of blister-2 is also printed as text.
    let mut app = three_sites(false);
    press(&mut app, KeyCode::Right);
    let terminal = draw(&app, 110, 34);
    let text = terminal.backend().to_string();
    assert!(text.contains("51.7"), "{text}");
}

#[test]
fn shifts_and_corrections() {
    let mut app = three_sites(false);
    app.apply(&metrics(&[]), NOW);
    // Lyon's latest window is in its early shift; the night shift before it
    // ended and was corrected once by late data.
    let lyon = app
        .sites()
        .find(|(s, _)| &***s == "lyon")
        .and_then(|(_, st)| st.kpi.clone())
        .expect("lyon has a site KPI");
    let mut now = lyon.clone();
    now.shift = Some("early".into());
    now.revision = 1;
    app.apply(&Update::Kpi(Box::new(now)), NOW);
    let mut night = KpiRecord::new(
        WINDOW_START - 8 * 3_600_000,
        WINDOW_START,
        lyon.scope.clone(),
        lyon.sums.clone(),
    );
    night.period = Period::Shift;
    night.shift = Some("night".into());
    night.revision = 1;
    app.apply(&Update::Kpi(Box::new(night)), NOW);
    press(&mut app, KeyCode::Right); // select Lyon
    let terminal = draw(&app, 110, 34);
    insta::assert_snapshot!(terminal.backend());
}
