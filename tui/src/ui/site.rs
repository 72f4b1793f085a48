//! A site: its lines (sortable, scrolling), the OEE trend of the shift
//! and of the day, the six big losses and the top downtime reasons.

use super::fleet::marks;
use super::format::{fit, fmt_age, minutes, num, pct, pct0, spark, utc_hm, DASH};
use super::layout::{offset, site_table_height, table_rows};
use super::Ctx;
use ctower_model::board::SoFar;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

const SORTS: [&str; 4] = ["name", "OEE", "availability", "stop minutes"];

pub(super) fn draw(frame: &mut Frame, cx: &Ctx, body: Rect) {
    let app = cx.app;
    let t = cx.theme;
    let Some(super::SiteCtx {
        site,
        view,
        board,
        stale,
    }) = super::site_ctx(frame, cx, body)
    else {
        return;
    };
    let shift = board.and_then(|b| b.shift.as_ref());
    let summary = summary_line(cx, &site, shift, board.map(|b| b.published_ms), stale);
    frame.render_widget(Paragraph::new(summary), Rect { height: 1, ..body });
    let rest = Rect {
        y: body.y + 1,
        height: body.height.saturating_sub(1),
        ..body
    };
    let lines = app.site_lines(&site);
    let th = site_table_height(rest, lines.len());
    let [table_area, lower] =
        Layout::vertical([Constraint::Length(th), Constraint::Min(0)]).areas(rest);
    let rows_visible = table_rows(th);
    let first = offset(app.line_sel, rows_visible);
    let rows: Vec<Row> = lines
        .iter()
        .enumerate()
        .skip(first)
        .take(rows_visible)
        .map(|(i, l)| {
            let s = l.shift.as_ref();
            let r = s.map(|s| &s.ratios);
            let oee = r.and_then(|r| r.oee);
            let line_stale = app.is_stale(l.published_ms, cx.now_ms);
            let mut style = if line_stale { t.stale() } else { Style::new() };
            if i == app.line_sel {
                style = style.patch(t.selected());
            }
            let stop_ms = s.map(|s| s.sums.unplanned_stop_ms as f64);
            Row::new(vec![
                Cell::from(fit(l.scope.line.as_deref().unwrap_or("?"), 18)),
                Cell::from(Span::styled(
                    pct(oee),
                    if line_stale { t.stale() } else { t.oee(oee) },
                )),
                Cell::from(pct0(r.and_then(|r| r.availability))),
                Cell::from(pct0(r.and_then(|r| r.performance))),
                Cell::from(pct0(r.and_then(|r| r.quality))),
                Cell::from(minutes(stop_ms)),
                Cell::from(num(l.now.kw)),
                Cell::from(if line_stale {
                    format!(
                        "stale {}",
                        fmt_age(app.age_ms(l.published_ms, cx.now_ms).unwrap_or(0))
                    )
                } else {
                    marks(s, l.now.revision)
                }),
            ])
            .style(style)
        })
        .collect();
    let hidden = lines.len().saturating_sub(first + rows_visible);
    let title = format!(
        " Lines of {site} · shift so far · sort: {} (o){} ",
        SORTS[app.line_order % 4],
        if hidden > 0 {
            format!(" · +{hidden} more ↓")
        } else {
            String::new()
        }
    );
    let table = Table::new(
        rows,
        [
            Constraint::Length(18),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Min(6),
        ],
    )
    .header(Row::new(["line", "OEE", "A", "P", "Q", "stops", "kW", "marks"]).style(t.title()))
    .block(Block::default().borders(Borders::ALL).title(title));
    frame.render_widget(table, table_area);

    let [trend_area, losses_area, reasons_area] = Layout::horizontal([
        Constraint::Percentage(34),
        Constraint::Percentage(33),
        Constraint::Percentage(33),
    ])
    .areas(lower);
    trend(frame, cx, view, trend_area);
    losses(frame, cx, shift, losses_area);
    reasons(frame, cx, shift, reasons_area);
}

fn summary_line(
    cx: &Ctx,
    site: &str,
    s: Option<&SoFar>,
    published: Option<i64>,
    stale: bool,
) -> Line<'static> {
    let t = cx.theme;
    let r = s.map(|s| &s.ratios);
    let oee = r.and_then(|r| r.oee);
    let mut spans = vec![
        Span::styled(format!("{site} "), t.title()),
        Span::raw(format!(
            "{} {}–{} ",
            s.and_then(|s| s.shift.as_deref()).unwrap_or("shift"),
            s.map_or(DASH.into(), |s| utc_hm(s.start_ms)),
            s.map_or(DASH.into(), |s| utc_hm(s.end_ms)),
        )),
        Span::raw("OEE "),
        Span::styled(pct(oee), if stale { t.stale() } else { t.oee(oee) }),
        Span::raw(format!(
            " (A {} · P {} · Q {}) ",
            pct(r.and_then(|r| r.availability)),
            pct(r.and_then(|r| r.performance)),
            pct(r.and_then(|r| r.quality))
        )),
    ];
    if stale {
        spans.push(Span::styled(super::stale_label(cx, published), t.bad()));
    }
    let m = marks(s, 0);
    if !m.is_empty() {
        spans.push(Span::styled(format!(" {m}"), t.mark()));
    }
    Line::from(spans)
}

fn trend(frame: &mut Frame, cx: &Ctx, view: Option<&crate::app::SiteView>, area: Rect) {
    let t = cx.theme;
    let block = Block::default().borders(Borders::ALL).title(" OEE trend ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = usize::from(inner.width);
    let points = view.map(|v| v.points()).unwrap_or_default();
    let oee: Vec<Option<f64>> = points.iter().map(|p| p.oee).collect();
    let day = view
        .and_then(|v| v.trend.as_ref())
        .map(|t| t.day_oee.clone())
        .unwrap_or_default();
    let day_vals: Vec<Option<f64>> = day.iter().map(|(_, o)| *o).collect();
    let last = |v: &[Option<f64>]| v.iter().rev().flatten().next().copied();
    let lines = vec![
        Line::from(Span::raw(format!(
            "shift, last {} ({} win.)",
            pct0(last(&oee)),
            oee.len()
        ))),
        Line::from(Span::styled(spark(&oee, w), t.series())),
        Line::from(Span::raw(format!("day by hour ({})", day.len()))),
        Line::from(Span::styled(spark(&day_vals, w), t.second())),
        Line::from(Span::raw(
            day.iter()
                .rev()
                .take(3)
                .map(|(h, o)| format!("{} {}", utc_hm(*h), pct0(*o)))
                .collect::<Vec<_>>()
                .join("  "),
        )),
    ];
    frame.render_widget(Paragraph::new(lines), inner);
}

/// A bar of `v` out of `max` in `w` cells.
pub(super) fn bar(v: f64, max: f64, w: usize) -> String {
    if max.is_nan() || max <= 0.0 || !v.is_finite() {
        return String::new();
    }
    let n = ((v / max).clamp(0.0, 1.0) * w as f64).round() as usize;
    "█".repeat(n)
}

fn losses(frame: &mut Frame, cx: &Ctx, s: Option<&SoFar>, area: Rect) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Six big losses ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(s) = s else {
        frame.render_widget(Paragraph::new(DASH), inner);
        return;
    };
    let r = &s.ratios;
    let items = [
        ("breakdown", r.loss_breakdown_ms),
        ("setup", r.loss_setup_ms),
        ("minor stop", r.loss_minor_stop_ms),
        ("speed", r.loss_speed_ms),
        ("defect", r.loss_defect_ms),
        ("startup", r.loss_startup_ms),
    ];
    let max = items.iter().filter_map(|i| i.1).fold(0.0, f64::max);
    let bw = usize::from(inner.width).saturating_sub(19);
    let lines: Vec<Line> = items
        .iter()
        .map(|(name, v)| {
            Line::from(vec![
                Span::raw(format!("{name:<10} {:>7} ", minutes(*v))),
                Span::styled(bar(v.unwrap_or(0.0), max, bw), cx.theme.series()),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn reasons(frame: &mut Frame, cx: &Ctx, s: Option<&SoFar>, area: Rect) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Top downtime reasons ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut v: Vec<(&str, i64)> = s
        .map(|s| {
            s.sums
                .unplanned_stop_by_reason_ms
                .iter()
                .map(|(k, v)| (&**k, *v))
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    if v.is_empty() {
        frame.render_widget(Paragraph::new("no unplanned stop this shift"), inner);
        return;
    }
    let max = v.first().map_or(0.0, |x| x.1 as f64);
    let bw = usize::from(inner.width).saturating_sub(22);
    let lines: Vec<Line> = v
        .iter()
        .take(usize::from(inner.height))
        .map(|(k, ms)| {
            Line::from(vec![
                Span::raw(format!(
                    "{:<13} {:>7} ",
                    fit(k, 13),
                    minutes(Some(*ms as f64))
                )),
                Span::styled(bar(*ms as f64, max, bw), cx.theme.bad()),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
