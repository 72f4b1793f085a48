//! The footer: the main keys.

use ratatui::layout::Rect;
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use ratatui::Frame;

/// Draws the key hints.
pub(super) fn render(frame: &mut Frame, area: Rect) {
    let key = |k: &'static str| Span::from(k).bold().reversed();
    let hints = Line::from(vec![
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
    frame.render_widget(hints, area);
}
