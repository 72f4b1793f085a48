//! The fleet: a tile per site, sites in trouble first (unacknowledged
//! urgent or high alarms, then stale, then the lowest OEE); sites that do
//! not fit are counted, never dropped.

use super::format::{fit, fmt_age, num, pct, pct0, spark, DASH};
use super::layout::{grid, TILE_H, TILE_W};
use super::Ctx;
use crate::app::FleetOrder;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

pub(super) fn draw(frame: &mut Frame, cx: &Ctx, body: Rect) {
    let app = cx.app;
    let sites = app.fleet(cx.now_ms);
    if sites.is_empty() {
        let text = if app.sites.is_empty() {
            match &app.status {
                Some(s) => format!(
                    "Waiting for the first closed window: KPIs come every {} of plant time.",
                    fmt_age(s.window_ms)
                ),
                None => "Waiting for the engine's feed…".to_string(),
            }
        } else {
            format!(
                "No site matches the filter `{}` (Esc clears it).",
                app.filter()
            )
        };
        frame.render_widget(Paragraph::new(text), body);
        return;
    }
    let g = grid(app, body, sites.len());
    for (slot, i) in (g.first..sites.len()).take(g.cols * g.rows).enumerate() {
        let (row, col) = (slot / g.cols, slot % g.cols);
        let area = Rect::new(
            body.x + col as u16 * TILE_W,
            body.y + row as u16 * TILE_H,
            TILE_W.min(body.width),
            TILE_H.min(body.height),
        );
        tile(frame, cx, sites[i], i == app.fleet_sel, area);
    }
    let shown = (sites.len() - g.first).min(g.cols * g.rows);
    let before = g.first;
    let after = sites.len() - g.first - shown;
    let order = match app.fleet_order {
        FleetOrder::Trouble => "trouble first",
        FleetOrder::Name => "by name",
        FleetOrder::Oee => "lowest OEE first",
    };
    let mut info = format!("{} sites · {order}", sites.len());
    if before > 0 {
        info.push_str(&format!(" · +{before} above"));
    }
    if after > 0 {
        info.push_str(&format!(" · +{after} more (↓)"));
    }
    if !app.filter().is_empty() {
        info.push_str(&format!(" · filter `{}`", app.filter()));
    }
    let y = body.y + (g.rows as u16 * TILE_H).min(body.height.saturating_sub(1));
    frame.render_widget(
        Paragraph::new(Span::styled(info, cx.theme.title())),
        Rect::new(body.x, y, body.width, 1),
    );
}

fn tile(frame: &mut Frame, cx: &Ctx, site: &str, selected: bool, area: Rect) {
    let t = cx.theme;
    let app = cx.app;
    let view = app.sites.get(site);
    let board = view.and_then(|v| v.board.as_ref());
    let stale = app.site_is_stale(site, cx.now_ms);
    let age = board.and_then(|b| app.age_ms(b.published_ms, cx.now_ms));
    let fresh = match (stale, age) {
        (true, Some(a)) => Span::styled(format!(" STALE {} ", fmt_age(a)), t.bad()),
        (true, None) => Span::styled(" NO DATA ", t.bad()),
        (false, Some(a)) => Span::raw(format!(" {} ago ", fmt_age(a))),
        (false, None) => Span::raw(""),
    };
    let mut block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(format!(" {} ", fit(site, 20)), t.title()))
        .title_top(Line::from(fresh).right_aligned());
    if selected {
        block = block.border_style(t.selected());
    }
    let base = if stale { t.stale() } else { Style::new() };
    let w = usize::from(area.width.saturating_sub(2));
    let shift = board.and_then(|b| b.shift.as_ref());
    let r = shift.map(|s| &s.ratios);
    let oee = r.and_then(|r| r.oee);
    let mut lines = Vec::new();
    lines.push(Line::from(vec![
        Span::styled("OEE ", base),
        Span::styled(pct(oee), if stale { t.stale() } else { t.oee(oee) }),
        Span::styled(
            format!(
                " A{} P{} Q{}",
                pct0(r.and_then(|r| r.availability)),
                pct0(r.and_then(|r| r.performance)),
                pct0(r.and_then(|r| r.quality))
            ),
            base,
        ),
        Span::styled(
            format!(
                " {}",
                shift.and_then(|s| s.shift.as_deref()).unwrap_or("shift")
            ),
            t.stale(),
        ),
    ]));
    let filled = oee.map_or(0, |o| ((o.clamp(0.0, 1.0)) * w as f64).round() as usize);
    lines.push(Line::from(vec![
        Span::styled(
            "█".repeat(filled),
            if stale { t.stale() } else { t.oee(oee) },
        ),
        Span::styled("░".repeat(w.saturating_sub(filled)), t.stale()),
    ]));
    let points = view.map(|v| v.points()).unwrap_or_default();
    let kw: Vec<Option<f64>> = points.iter().map(|p| p.kw).collect();
    let kw_now = board.and_then(|b| b.now.kw);
    let label = format!("kW {:>6} ", num(kw_now));
    lines.push(Line::from(vec![
        Span::styled(label.clone(), base),
        Span::styled(
            spark(&kw, w.saturating_sub(label.chars().count())),
            if stale { t.stale() } else { t.series() },
        ),
    ]));
    let kwh_u = r.and_then(|r| r.kwh_per_good_unit);
    // What the baseline expects per good unit for today's production so
    // far (its fixed part and its part per unit), against the actual.
    let baseline = board
        .and_then(|b| b.day.as_ref())
        .and_then(expected_per_good_unit);
    lines.push(Line::from(Span::styled(
        format!(
            "kWh/u {} (base {}) water {}",
            num(kwh_u),
            baseline.map_or(DASH.to_string(), |b| num(Some(b))),
            pct0(r.and_then(|r| r.water_recovery))
        ),
        base,
    )));
    let c = app.alarm_counts(site);
    let mut last = vec![Span::styled("alarms ", base)];
    for (i, (n, p)) in c
        .iter()
        .zip([
            ctower_model::Priority::Urgent,
            ctower_model::Priority::High,
            ctower_model::Priority::Medium,
            ctower_model::Priority::Low,
        ])
        .enumerate()
    {
        let letter = ["U", "H", "M", "L"][i];
        let style = if *n > 0 { t.priority(p) } else { base };
        last.push(Span::styled(format!("{letter}{n}"), style));
        last.push(Span::raw(" "));
    }
    let marks = marks(shift, board.map(|b| b.now.revision).unwrap_or(0));
    if !marks.is_empty() {
        last.push(Span::styled(marks, t.mark()));
    }
    lines.push(Line::from(last));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The baseline's expected energy of a period per good unit made in it.
pub(super) fn expected_per_good_unit(d: &ctower_model::board::SoFar) -> Option<f64> {
    let good = d.sums.good.filter(|g| *g > 0)? as f64;
    Some(d.expected_kwh? / good)
}

/// The honesty marks of a figure (`?` explains them): `~` partial data
/// (coverage under 90 %, or the shift not seen from its start),
/// `*` corrected by late data, `!` ideal rate suspect.
pub(super) fn marks(s: Option<&ctower_model::board::SoFar>, revision: u32) -> String {
    let mut m = String::new();
    let Some(s) = s else {
        return m;
    };
    if s.ratios
        .data_coverage
        .is_some_and(|c| c < crate::app::PARTIAL_COVERAGE)
        || !s.from_start
    {
        m.push('~');
    }
    if s.corrected > 0 || revision > 0 {
        m.push('*');
    }
    if s.ratios.ideal_rate_suspect {
        m.push('!');
    }
    m
}
