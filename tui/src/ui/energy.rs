//! A site's energy: demand through the shift, the day so far against
//! the ISO 50006 baseline, the baseline's CUSUM over the last days, and
//! the cost and CO2e of the day.

use super::format::{num, pct0, spark, DASH};
use super::site::bar;
use super::Ctx;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

pub(super) fn draw(frame: &mut Frame, cx: &Ctx, body: Rect) {
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
    let points = view.map(|v| v.points()).unwrap_or_default();
    let kw: Vec<Option<f64>> = points.iter().map(|p| p.kw).collect();
    let [chart, lower] = Layout::vertical([Constraint::Length(6), Constraint::Min(4)]).areas(body);
    let block = Block::default().borders(Borders::ALL).title(format!(
        " {site} · demand, kW, this shift{} ",
        if stale {
            format!(
                " · {}",
                super::stale_label(cx, board.map(|b| b.published_ms))
            )
        } else {
            String::new()
        }
    ));
    let inner = block.inner(chart);
    frame.render_widget(block, chart);
    let known: Vec<f64> = kw.iter().flatten().copied().collect();
    let (lo, hi) = known
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    let w = usize::from(inner.width);
    let style = if stale { t.stale() } else { t.series() };
    let lines = vec![
        Line::from(format!(
            "now {} kW · min {} · max {} · {} windows (gaps: no meter data)",
            num(board.and_then(|b| b.now.kw)),
            num((!known.is_empty()).then_some(lo)),
            num((!known.is_empty()).then_some(hi)),
            kw.len()
        )),
        Line::from(Span::styled(spark(&kw, w), style)),
        Line::from(Span::styled(
            match (points.first(), points.last()) {
                (Some(a), Some(b)) => format!(
                    "{} UTC{:>pad$} UTC",
                    super::format::utc_hm(a.end_ms),
                    super::format::utc_hm(b.end_ms),
                    pad = kw.len().min(w).saturating_sub(13).max(1)
                ),
                _ => "no window this shift yet".to_string(),
            },
            t.stale(),
        )),
    ];
    frame.render_widget(Paragraph::new(lines), inner);

    let [day_area, cusum_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(lower);
    let day = board.and_then(|b| b.day.as_ref());
    let actual = day.and_then(|d| d.sums.energy_kwh);
    let expected = day.and_then(|d| d.expected_kwh);
    let dev = actual.zip(expected).map(|(a, e)| a - e);
    let cost_cov = day.and_then(|d| d.ratios.energy_cost_coverage);
    let co2_cov = day.and_then(|d| d.ratios.co2e_coverage);
    let d = vec![
        Line::from(format!(
            "production day {}",
            day.and_then(|d| d.production_day.as_deref())
                .unwrap_or(DASH)
        )),
        Line::from(format!("actual    {} kWh", num(actual))),
        Line::from(vec![
            Span::raw(format!("expected  {} kWh", num(expected))),
            Span::styled(
                if expected.is_none() {
                    "  (no baseline fitted yet)"
                } else {
                    ""
                },
                t.stale(),
            ),
        ]),
        Line::from(vec![
            Span::raw("deviation "),
            Span::styled(
                format!("{} kWh", num(dev)),
                if dev.is_some_and(|d| d > 0.0) {
                    t.bad()
                } else {
                    t.good()
                },
            ),
        ]),
        Line::from(format!(
            "cost      {} (priced {} of kWh)",
            num(day.and_then(|d| d.sums.energy_cost)),
            pct0(cost_cov)
        )),
        Line::from(format!(
            "CO2e      {} kg (factor for {} of kWh)",
            num(day.and_then(|d| d.sums.co2e_kg)),
            pct0(co2_cov)
        )),
        Line::from(format!(
            "kWh/unit  {} (baseline {}; slope {}/unit)",
            num(day.and_then(|d| d.ratios.kwh_per_good_unit)),
            num(day.and_then(super::fleet::expected_per_good_unit)),
            num(board.and_then(|b| b.baseline_kwh_per_unit))
        )),
    ];
    frame.render_widget(
        Paragraph::new(d).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Today so far "),
        ),
        day_area,
    );
    let days = view
        .and_then(|v| v.trend.as_ref())
        .map(|t| t.days.clone())
        .unwrap_or_default();
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Baseline CUSUM by day, kWh (+ above baseline) ");
    let inner = block.inner(cusum_area);
    frame.render_widget(block, cusum_area);
    if days.is_empty() {
        frame.render_widget(Paragraph::new("no finished production day yet"), inner);
        return;
    }
    let max = days
        .iter()
        .filter_map(|d| d.cusum_kwh.map(f64::abs))
        .fold(0.0, f64::max);
    let bw = usize::from(inner.width).saturating_sub(22);
    let lines: Vec<Line> = days
        .iter()
        .rev()
        .take(usize::from(inner.height))
        .map(|d| {
            let c = d.cusum_kwh;
            Line::from(vec![
                Span::raw(format!("{:<10} {:>9} ", d.day, num(c))),
                Span::styled(
                    bar(c.unwrap_or(0.0).abs(), max, bw),
                    if c.is_some_and(|c| c > 0.0) {
                        t.bad()
                    } else {
                        t.good()
                    },
                ),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
