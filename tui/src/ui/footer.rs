//! The footer: the main keys, then what became of the operator's last
//! command.

use crate::app::App;
use ratatui::layout::Rect;
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use ratatui::Frame;

/// Draws the key hints.
pub(super) fn render(frame: &mut Frame, app: &App, area: Rect) {
    let key = |k: &'static str| Span::from(k).bold().reversed();
    let mut hints = Line::from(vec![
        Span::raw(" "),
        key(" ←/→ "),
        Span::raw(" site  "),
        key(" Tab "),
        Span::raw(" next  "),
        key(" 1-9 "),
        Span::raw(" jump  "),
        key(" ? "),
        Span::raw(" help  "),
        key(" q "),
        Span::raw(" quit"),
    ]);
    if let Some(notice) = app.notice() {
        hints.push_span(Span::raw("  │ ").dark_gray());
        hints.push_span(Span::raw(notice.to_string()).yellow());
    }
    frame.render_widget(hints, area);
}
