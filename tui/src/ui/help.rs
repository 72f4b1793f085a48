//! The help overlay: every key and what the screen's marks mean.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};
use ratatui::Frame;

/// Draws the help box over the middle of `area`.
pub(super) fn render(frame: &mut Frame, area: Rect) {
    let key = |k: &'static str| Span::from(format!("{k:<17}")).bold().cyan();
    let text = vec![
        Line::from(vec![key("← / →"), Span::raw("previous / next site")]),
        Line::from(vec![
            key("Tab / Shift-Tab"),
            Span::raw("next / previous site"),
        ]),
        Line::from(vec![key("1 … 9"), Span::raw("jump to site n")]),
        Line::from(vec![
            key("↑ / ↓, k / j"),
            Span::raw("move in the alarm list"),
        ]),
        Line::from(vec![key("a"), Span::raw("acknowledge the alarm")]),
        Line::from(vec![key("?"), Span::raw("show / hide this help")]),
        Line::from(vec![key("Esc"), Span::raw("close help, else quit")]),
        Line::from(vec![key("q, Ctrl-C"), Span::raw("quit")]),
        Line::from(""),
        Line::from("OEE: ≥ 85 % green, ≥ 60 % yellow, else red.").dark_gray(),
        Line::from("P↑: measured above 100 % (ideal rate too slow?).").dark_gray(),
        Line::from("kW: last reading; ~kW: mean from the kWh meters.").dark_gray(),
        Line::from("STALE: data for < 90 % of the time, or silent.").dark_gray(),
        Line::from("RTN: alarm cleared, not yet acknowledged.").dark_gray(),
        Line::from("Times are event times, UTC.").dark_gray(),
    ];
    let h = text.len() as u16 + 2;
    let popup = area.centered(Constraint::Length(52), Constraint::Length(h));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(text).block(
            Block::bordered()
                .border_type(BorderType::Double)
                .title(" Help — keys ")
                .title_bottom(Line::from(" ? or Esc to close ").right_aligned()),
        ),
        popup,
    );
}
