//! A line: the shift's state timeline (one mark per window: running,
//! stops, micro-stops, changeovers, planned stops, unknown), its counters
//! and the ideal rate of what it made.

use super::fleet::marks;
use super::format::{count, fmt_age, minutes, num, pct, utc_hm, DASH};
use super::Ctx;
use ctower_model::board::TimelineMark;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

pub(super) fn draw(frame: &mut Frame, cx: &Ctx, body: Rect) {
    let app = cx.app;
    let t = cx.theme;
    let Some(l) = app.current_line(cx.now_ms) else {
        frame.render_widget(
            Paragraph::new("No line of this site yet (Esc: back)."),
            body,
        );
        return;
    };
    let stale = app.is_stale(l.published_ms, cx.now_ms);
    let s = l.shift.as_ref();
    let r = s.map(|s| &s.ratios);
    let name = format!(
        "{}/{}",
        l.scope.area.as_deref().unwrap_or("?"),
        l.scope.line.as_deref().unwrap_or("?")
    );
    let mut head = vec![
        Span::styled(format!("{name} "), t.title()),
        Span::raw("OEE "),
        Span::styled(pct(r.and_then(|r| r.oee)), t.oee(r.and_then(|r| r.oee))),
        Span::raw(format!(
            " A {} P {} Q {} · {} assets ",
            pct(r.and_then(|r| r.availability)),
            pct(r.and_then(|r| r.performance)),
            pct(r.and_then(|r| r.quality)),
            l.assets
        )),
    ];
    if stale {
        head.push(Span::styled(
            super::stale_label(cx, Some(l.published_ms)),
            t.bad(),
        ));
    }
    let m = marks(s, l.now.revision);
    if !m.is_empty() {
        head.push(Span::styled(format!(" {m}"), t.mark()));
    }
    frame.render_widget(Paragraph::new(Line::from(head)), Rect { height: 1, ..body });
    let rest = Rect {
        y: body.y + 1,
        height: body.height.saturating_sub(1),
        ..body
    };
    let [tl, lower] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Min(6)]).areas(rest);
    let block = Block::default().borders(Borders::ALL).title(format!(
        " State timeline of the shift from {} · one mark per {} ",
        s.map_or(DASH.into(), |s| utc_hm(s.start_ms)),
        fmt_age(l.step_ms)
    ));
    let inner = block.inner(tl);
    frame.render_widget(block, tl);
    let w = usize::from(inner.width.max(1));
    let marks_v: Vec<char> = l.timeline.chars().collect();
    // The newest rows when the shift does not fit.
    let rows = usize::from(inner.height.saturating_sub(1)).max(1);
    let total_rows = marks_v.len().div_ceil(w);
    let skip_rows = total_rows.saturating_sub(rows);
    let mut lines: Vec<Line> = marks_v
        .chunks(w)
        .skip(skip_rows)
        .map(|chunk| {
            Line::from(
                chunk
                    .iter()
                    .map(|c| {
                        let m = TimelineMark::from_code(*c);
                        let style = if stale { t.stale() } else { t.timeline(m) };
                        Span::styled(c.to_string(), style)
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let legend: Vec<Span> = TimelineMark::ALL
        .iter()
        .flat_map(|m| {
            [
                Span::styled(m.code().to_string(), t.timeline(*m)),
                Span::raw(format!(" {}  ", m.label())),
            ]
        })
        .collect();
    lines.push(Line::from(legend));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);

    let [counters, times] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(lower);
    let sums = s.map(|s| &s.sums);
    let c = vec![
        Line::from(format!(
            "produced   {}",
            count(sums.and_then(|s| s.produced))
        )),
        Line::from(format!("good       {}", count(sums.and_then(|s| s.good)))),
        Line::from(format!("rejected   {}", count(sums.and_then(|s| s.reject)))),
        Line::from(format!(
            "ideal rate {}/h (of what it made)",
            num(l.ideal_rate_per_h)
        )),
        Line::from(format!("kW now     {}", num(l.now.kw))),
    ];
    frame.render_widget(
        Paragraph::new(c).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Counters, shift so far "),
        ),
        counters,
    );
    let ms = |f: fn(&ctower_model::kpi::KpiSums) -> i64| minutes(sums.map(|s| f(s) as f64));
    let tm = vec![
        Line::from(format!("running     {}", ms(|s| s.running_ms))),
        Line::from(format!(
            "stops       {} ({} stops)",
            ms(|s| s.unplanned_stop_ms),
            count(sums.map(|s| s.unplanned_stops))
        )),
        Line::from(format!(
            "micro-stops {} ({})",
            ms(|s| s.micro_stop_ms),
            count(sums.map(|s| s.micro_stops))
        )),
        Line::from(format!("changeover  {}", ms(|s| s.changeover_ms))),
        Line::from(format!("unknown     {}", ms(|s| s.unknown_ms))),
    ];
    frame.render_widget(
        Paragraph::new(tm).block(Block::default().borders(Borders::ALL).title(" Time ")),
        times,
    );
}
