//! A site's water: RO recovery, and conductivity and TOC through the
//! shift against the USP <645> and <643> limits, excursions marked.

use super::format::{num, pct, DASH};
use super::Ctx;
use ctower_model::board::TrendPoint;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

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
    let points = view.map(|v| v.points()).unwrap_or_default();
    let (cond_lim, toc_lim) = app.status.as_ref().map_or((1.3, 500.0), |s| {
        (s.conductivity_limit_us_cm, s.toc_limit_ppb)
    });
    let [top, cond, toc] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Percentage(50),
        Constraint::Percentage(50),
    ])
    .areas(body);
    let s = shift.map(|s| &s.sums);
    let lines = vec![
        Line::from(vec![
            Span::styled(format!("{site} "), t.title()),
            Span::raw(format!(
                "recovery this shift {} · last window {}",
                pct(shift.and_then(|s| s.ratios.water_recovery)),
                pct(points.last().and_then(|p| p.recovery))
            )),
            Span::styled(
                if stale {
                    format!(
                        "  {}",
                        super::stale_label(cx, board.map(|b| b.published_ms))
                    )
                } else {
                    String::new()
                },
                t.bad(),
            ),
        ]),
        Line::from(format!(
            "feed {} m³ · permeate {} m³ · concentrate {} m³",
            num(s.and_then(|s| s.water_feed_m3)),
            num(s.and_then(|s| s.water_permeate_m3)),
            num(s.and_then(|s| s.water_concentrate_m3)),
        )),
        Line::from(format!(
            "within USP: conductivity {} of measured time, TOC {} · excursions {}",
            pct(shift.and_then(|s| s.ratios.conductivity_within_usp)),
            pct(shift.and_then(|s| s.ratios.toc_within_usp)),
            s.map_or(DASH.to_string(), |s| s.usp_excursions.to_string())
        )),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Water ")),
        top,
    );
    limit_chart(
        frame,
        cx,
        &points,
        |p| p.conductivity_max,
        cond_lim,
        "conductivity, µS/cm (USP <645>)",
        cond,
    );
    limit_chart(
        frame,
        cx,
        &points,
        |p| p.toc_max,
        toc_lim,
        "TOC, ppb (USP <643>)",
        toc,
    );
}

/// Highest value per window as a column, `!` above the limit, blank
/// where nothing was measured.
fn limit_chart(
    frame: &mut Frame,
    cx: &Ctx,
    points: &[TrendPoint],
    f: fn(&TrendPoint) -> Option<f64>,
    limit: f64,
    what: &str,
    area: Rect,
) {
    let t = cx.theme;
    let vals: Vec<Option<f64>> = points.iter().map(f).collect();
    let over = vals.iter().flatten().filter(|v| **v > limit).count();
    let peak = vals.iter().flatten().copied().fold(f64::MIN, f64::max);
    let block = Block::default().borders(Borders::ALL).title(format!(
        " {what} · limit {} · peak {} · {over} windows over ",
        num(Some(limit)),
        num((peak > f64::MIN).then_some(peak)),
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = usize::from(inner.width);
    let h = usize::from(inner.height.max(1));
    let tail = &vals[vals.len().saturating_sub(w)..];
    // The scale: up to 1.5 × the limit, or the peak.
    let top = (limit * 1.5).max(if peak > f64::MIN { peak } else { 0.0 });
    let limit_row = h - ((limit / top) * h as f64).round().clamp(1.0, h as f64) as usize;
    let mut lines = Vec::new();
    for row in 0..h {
        let level = top * (h - row) as f64 / h as f64;
        let spans: Vec<Span> = tail
            .iter()
            .map(|v| match v {
                Some(v) if *v >= level - top / h as f64 / 2.0 => {
                    if *v > limit {
                        Span::styled("!", t.bad())
                    } else {
                        Span::styled("█", t.series())
                    }
                }
                _ if row == limit_row => Span::styled("·", t.second()),
                _ => Span::raw(" "),
            })
            .collect();
        lines.push(Line::from(spans));
    }
    if tail.is_empty() {
        lines = vec![Line::from("no reading this shift")];
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
