//! The pipeline's health: ingest rate, lag and watermark, dead letters
//! by reason, outboxes, faults, late corrections, the feed itself.

use super::format::{fmt_age, num, utc_full, DASH};
use super::Ctx;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

pub(super) fn draw(frame: &mut Frame, cx: &Ctx, body: Rect) {
    let app = cx.app;
    let t = cx.theme;
    let mut lines: Vec<Line> = Vec::new();
    let link = match app.disconnected(cx.now_ms) {
        Some(why) => Span::styled(format!("DISCONNECTED: {why}"), t.bad()),
        None => Span::styled("connected", t.good()),
    };
    lines.push(Line::from(vec![Span::raw("engine link      "), link]));
    match &app.health {
        None => lines.push(Line::from("no health report from the engine yet")),
        Some(h) => {
            let m = &h.metrics;
            let age = app.age_ms(h.published_ms, cx.now_ms);
            lines.push(Line::from(format!(
                "report age       {}",
                age.map_or(DASH.into(), fmt_age)
            )));
            lines.push(Line::from(format!(
                "ingest           {} msg/s · received {} · accepted {}",
                num(Some(m.ingest_rate_per_s)),
                m.received,
                m.accepted
            )));
            lines.push(Line::from(format!(
                "watermark        {} UTC · lag {}",
                m.watermark_ms.map_or(DASH.into(), utc_full),
                fmt_age(m.watermark_lag_ms)
            )));
            lines.push(Line::from(format!(
                "windows closed   {} · late dropped {} · late corrections {}",
                m.windows_closed, m.late_dropped, h.corrections
            )));
            lines.push(Line::from(format!("sources          {}", m.sources.len())));
            let newest = m.sources.iter().filter_map(|x| x.newest_event_ms).max();
            for src in &m.sources {
                let ok = src.state == "subscribed" || src.state.is_empty();
                let behind = newest
                    .zip(src.newest_event_ms)
                    .map(|(n, t)| fmt_age(n.saturating_sub(t)));
                let last = src
                    .last_recv_ms
                    .and_then(|t| app.age_ms(t, cx.now_ms))
                    .map_or(DASH.into(), fmt_age);
                lines.push(Line::from(vec![
                    Span::raw(format!("  {:<16} ", src.name)),
                    Span::styled(
                        if src.state.is_empty() { DASH.to_string() } else { src.state.clone() },
                        if ok { t.good() } else { t.bad() },
                    ),
                    Span::raw(format!(
                        " · {} msg/s · received {} · watermark {} UTC (behind {}) · last message {} ago",
                        num(Some(src.rate_per_s)),
                        src.received,
                        src.newest_event_ms.map_or(DASH.into(), utc_full),
                        behind.unwrap_or_else(|| DASH.into()),
                        last
                    )),
                ]));
            }
            let dl = m
                .dead_letters
                .values()
                .fold(0u64, |a, b| a.saturating_add(*b));
            lines.push(Line::from(Span::styled(
                format!("dead letters     {dl}"),
                if dl > 0 { t.mark() } else { t.good() },
            )));
            for (reason, n) in &m.dead_letters {
                lines.push(Line::from(format!("  {reason:<24} {n}")));
            }
            if !m.stale_sites.is_empty() {
                lines.push(Line::from(Span::styled(
                    format!("silent sites     {}", m.stale_sites.join(", ")),
                    t.bad(),
                )));
            }
            lines.push(Line::from(format!("outboxes         {}", m.outboxes.len())));
            for o in &m.outboxes {
                let style = if o.last_error.is_some() || o.lost > 0 {
                    t.bad()
                } else {
                    ratatui::style::Style::new()
                };
                lines.push(Line::from(Span::styled(
                    format!(
                        "  {:<16} {:>7} pending · {:.1}/{:.0} MiB · oldest {} · written {} · lost {}{}",
                        o.name,
                        o.pending_lines,
                        o.used_bytes as f64 / 1048576.0,
                        o.budget_bytes as f64 / 1048576.0,
                        o.oldest_age_ms.map_or(DASH.into(), fmt_age),
                        o.written,
                        o.lost,
                        o.last_error.as_ref().map_or(String::new(), |e| format!(" · {e}"))
                    ),
                    style,
                )));
            }
            lines.push(Line::from(Span::styled(
                format!("faults           {}", m.faults.len()),
                if m.faults.is_empty() {
                    t.good()
                } else {
                    t.bad()
                },
            )));
            for f in &m.faults {
                lines.push(Line::from(Span::styled(
                    format!("  {} {}: {} (lost {})", f.stage, f.path, f.error, f.lost),
                    t.bad(),
                )));
            }
            lines.push(Line::from(format!(
                "feed             {} payloads dropped by the engine",
                h.board_dropped
            )));
        }
    }
    lines.push(Line::from(format!(
        "this viewer      {} bad feed messages{}",
        app.bad_messages,
        app.last_bad
            .as_ref()
            .map_or(String::new(), |b| format!(" (last: {b})"))
    )));
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Health (↑/↓ scroll) ");
    let inner_h = usize::from(block.inner(body).height);
    let scroll = app.health_scroll.min(lines.len().saturating_sub(inner_h));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0)),
        body,
    );
}
