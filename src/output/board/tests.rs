use super::*;
use ctower_model::kpi::KpiSums;
use ctower_model::{AlarmEventKind, AssetKey, Priority, SignalWindow};

const MIN: i64 = 60_000;

fn window(level: Level, end_min: i64, shift: &str, sums: KpiSums) -> StreamOutput {
    let scope = AssetKey::new("basel", "pack", "l1", "x").scope(level);
    let mut k = KpiRecord::new((end_min - 1) * MIN, end_min * MIN, scope, sums);
    k.shift = Some(shift.into());
    k.production_day = Some("2026-03-02".into());
    StreamOutput::Kpi(Box::new(k))
}

/// A window of a slow batch line: it runs the whole minute but counts a
/// batch of 40 units only every fourth minute.
fn batchy(end_min: i64) -> KpiSums {
    let produced = if end_min % 4 == 0 { 40 } else { 0 };
    KpiSums {
        running_ms: MIN,
        produced: Some(produced),
        good: Some(produced),
        ideal_time_ms: produced as f64 * 1_500.0,
        energy_kwh: Some(2.0),
        energy_measured_ms: MIN,
        demand_kwh: 2.0,
        ..Default::default()
    }
}

fn site_board(msgs: &[BoardMessage]) -> SiteBoard {
    let m = msgs
        .iter()
        .find(|m| matches!(m.topic, BoardTopic::Site(_)))
        .expect("a site message");
    serde_json::from_slice(m.payload.as_deref().expect("payload")).expect("site board")
}

#[test]
fn the_shift_so_far_is_steady_where_single_windows_swing() {
    let mut b = BoardBuilder::new();
    let mut window_oee = Vec::new();
    let mut last = None;
    for end in 1..=8 {
        let w = window(Level::Site, end, "early", batchy(end));
        if let StreamOutput::Kpi(k) = &w {
            window_oee.push(k.ratios.oee);
        }
        b.record(&w);
        last = Some(site_board(&b.flush(end * 1000)));
    }
    // One window alone: 0 % or 400 % (performance is capped at 100 %,
    // so OEE 100 %), never the line's real figure.
    assert!(window_oee.contains(&Some(0.0)));
    let board = last.expect("boards");
    let shift = board.shift.expect("shift so far");
    assert_eq!(shift.windows, 8);
    // 80 units × 1.5 s of ideal time in 8 minutes of running: 25 %.
    assert!((shift.ratios.oee.expect("oee") - 0.25).abs() < 1e-9);
    assert_eq!(shift.sums.produced, Some(80));
    assert_eq!(board.now.end_ms, 8 * MIN);
    assert_eq!(board.now.kw, Some(120.0));
    assert_eq!(board.recent.len(), 8);
    assert_eq!(board.published_ms, 8000);
}

#[test]
fn a_new_shift_starts_over_and_the_day_goes_on() {
    let mut b = BoardBuilder::new();
    for end in 1..=3 {
        b.record(&window(Level::Site, end, "early", batchy(4)));
    }
    b.record(&window(Level::Site, 4, "late", batchy(4)));
    let board = site_board(&b.flush(0));
    let shift = board.shift.expect("shift");
    assert_eq!((shift.shift.as_deref(), shift.windows), (Some("late"), 1));
    // The late shift was seen from its start; the day was not (the engine
    // came in during it).
    assert!(shift.from_start);
    assert!(!board.day.as_ref().expect("day").from_start);
    assert_eq!(shift.start_ms, 3 * MIN);
    assert_eq!(board.day.expect("day").windows, 4);
}

#[test]
fn a_correction_replaces_its_window_in_the_sums_once() {
    let mut b = BoardBuilder::new();
    b.record(&window(Level::Site, 1, "early", batchy(4)));
    b.record(&window(Level::Site, 2, "early", batchy(4)));
    let mut corr = window(Level::Site, 1, "early", batchy(1));
    if let StreamOutput::Kpi(k) = &mut corr {
        k.revision = 1;
    }
    b.record(&corr);
    let board = site_board(&b.flush(0));
    let shift = board.shift.expect("shift");
    assert_eq!(shift.sums.produced, Some(40));
    assert_eq!((shift.windows, shift.corrected), (2, 1));
    assert_eq!(b.corrections(), 1);
}

#[test]
fn water_maxima_join_their_window_and_lines_get_a_timeline() {
    let mut b = BoardBuilder::new();
    b.record(&window(Level::Site, 1, "early", batchy(4)));
    for (asset, max) in [("ro-1", 0.9), ("ro-2", 1.45)] {
        b.record(&StreamOutput::Signal(SignalWindow {
            window_start_ms: 0,
            window_end_ms: MIN,
            asset: AssetKey::new("basel", "utilities", "water", asset),
            signal: "cond".into(),
            role: Role::ConductivityUsCm,
            count: 10,
            min: 0.5,
            max,
            mean: 0.8,
            last: 0.8,
        }));
    }
    let stop = KpiSums {
        unplanned_stop_ms: 50_000,
        running_ms: 10_000,
        ..Default::default()
    };
    b.record(&window(Level::Line, 1, "early", batchy(4)));
    b.record(&window(Level::Line, 2, "early", stop));
    let msgs = b.flush(0);
    let site = site_board(&msgs);
    assert_eq!(site.recent[0].conductivity_max, Some(1.45));
    assert_eq!(site.lines, ["pack/l1"]);
    let line: LineBoard = msgs
        .iter()
        .find(|m| matches!(m.topic, BoardTopic::Line(..)))
        .and_then(|m| serde_json::from_slice(m.payload.as_deref()?).ok())
        .expect("line board");
    assert_eq!(line.timeline, "RS");
    assert_eq!(line.step_ms, MIN);
    // 40 units of 1.5 s ideal each: 2,400 an hour.
    assert_eq!(line.ideal_rate_per_h, Some(2400.0));
    // Nothing changed: nothing to publish.
    assert!(b.flush(0).is_empty());
}

#[test]
fn an_alarm_back_to_normal_deletes_its_retained_message() {
    let ev = AlarmEvent {
        ts_ms: 1,
        rule: "r".into(),
        scope: AssetKey::new("basel", "a", "l", "x").scope(Level::Line),
        signal: None,
        kind: AlarmEventKind::Raised,
        state: AlarmState::UnackActive,
        priority: Priority::High,
        metric: "oee".into(),
        value: Some(0.1),
        threshold: 0.5,
        message: "low".into(),
    };
    let raised = BoardBuilder::alarm(&ev);
    assert!(raised.payload.is_some());
    let normal = BoardBuilder::alarm(&AlarmEvent {
        state: AlarmState::Normal,
        kind: AlarmEventKind::Acknowledged,
        ..ev
    });
    assert_eq!(normal.topic, raised.topic);
    assert_eq!(normal.payload, None);
}

#[test]
fn payloads_leave_out_unknown_fields_and_still_read_back() {
    let mut b = BoardBuilder::new();
    b.record(&window(Level::Line, 1, "early", batchy(4)));
    b.record(&window(Level::Site, 1, "early", batchy(4)));
    for m in b.flush(7) {
        let raw = m.payload.expect("payload");
        let text = String::from_utf8(raw.clone()).expect("utf-8");
        assert!(!text.contains("null"), "{text}");
        match m.topic {
            BoardTopic::Line(..) => {
                let l: LineBoard = serde_json::from_slice(&raw).expect("a line board");
                let r = &l.shift.expect("shift").ratios;
                assert_eq!((r.water_recovery, r.conductivity_within_usp), (None, None));
                assert!(r.oee.is_some());
            }
            BoardTopic::Site(_) => {
                let s: SiteBoard = serde_json::from_slice(&raw).expect("a site board");
                assert_eq!(s.recent[0].conductivity_max, None);
            }
            _ => {}
        }
    }
}

fn dated(end_min: i64, shift: Option<&str>, day: Option<&str>) -> StreamOutput {
    let scope = AssetKey::new("basel", "pack", "l1", "x").scope(Level::Site);
    let mut k = KpiRecord::new((end_min - 1) * MIN, end_min * MIN, scope, batchy(4));
    k.shift = shift.map(Into::into);
    k.production_day = day.map(Into::into);
    StreamOutput::Kpi(Box::new(k))
}

#[test]
fn without_a_calendar_the_utc_day_is_the_period() {
    let mut b = BoardBuilder::new();
    let day = 24 * 60;
    // 23:59 and 00:00–00:01 UTC of the next day, no calendar.
    b.record(&dated(day, None, None));
    b.record(&dated(day + 1, None, None));
    let board = site_board(&b.flush(0));
    let shift = board.shift.expect("shift");
    assert_eq!(shift.windows, 1, "the new UTC day starts over");
    assert_eq!(shift.production_day.as_deref(), Some("1970-01-02 UTC"));
    assert_eq!(board.day.expect("day").windows, 1);
}

#[test]
fn a_night_shift_across_the_production_days_start_stays_one() {
    let mut b = BoardBuilder::new();
    b.record(&dated(10, Some("night"), Some("2026-03-01")));
    b.record(&dated(11, Some("night"), Some("2026-03-02")));
    let board = site_board(&b.flush(0));
    assert_eq!(board.shift.expect("shift").windows, 2);
    assert_eq!(board.day.expect("day").windows, 1);
}

#[test]
fn a_late_first_result_of_an_older_window_is_folded_in_its_place() {
    let mut b = BoardBuilder::new();
    b.record(&window(Level::Site, 1, "early", batchy(4)));
    b.record(&window(Level::Site, 3, "early", batchy(4)));
    b.record(&window(Level::Site, 2, "early", batchy(4)));
    // The same window again is not counted twice.
    b.record(&window(Level::Site, 2, "early", batchy(4)));
    let board = site_board(&b.flush(0));
    let shift = board.shift.expect("shift");
    assert_eq!((shift.windows, shift.sums.produced), (3, Some(120)));
    let ends: Vec<i64> = board.recent.iter().map(|p| p.end_ms).collect();
    assert_eq!(ends, [MIN, 2 * MIN, 3 * MIN]);
    assert_eq!(board.now.end_ms, 3 * MIN);
}
