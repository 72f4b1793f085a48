//! The header's top line: the title, what is failing, the group's OEE and
//! the event time of the newest data.

use super::format::{fmt_pct, fmt_utc, oee_style};
use crate::app::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use ratatui::Frame;

/// Draws the top line: the title spans on the left, the time of the
/// newest data on the right.
pub(super) fn render(frame: &mut Frame, app: &App, area: Rect) {
    let title = title_spans(app);
    let as_of = as_of(app, Line::from(title.clone()).width(), area.width);
    let as_of_w = as_of.chars().count() as u16;
    let [left, right] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(as_of_w)]).areas(area);
    frame.render_widget(Line::from(title), left);
    frame.render_widget(Line::from(as_of).right_aligned().bold(), right);
}

/// The title, a lost feed, each failing stage and the group's OEE.
fn title_spans(app: &App) -> Vec<Span<'static>> {
    let mut title = vec![Span::from(format!(" {} ", app.title())).bold().reversed()];
    if app.feed_lost() {
        title.push(Span::raw(" "));
        title.push(Span::from(" FEED LOST ").bold().black().on_red());
    }
    // A stage that cannot write (a full disk …) is the first thing to see.
    for f in app
        .metrics()
        .map(|m| m.faults.as_slice())
        .unwrap_or_default()
    {
        title.push(Span::raw(" "));
        title.push(
            Span::from(format!(
                " {} FAILING ",
                f.stage.replace('_', " ").to_uppercase()
            ))
            .bold()
            .black()
            .on_red(),
        );
    }
    if let Some(oee) = app.group_kpi().and_then(|g| g.ratios.oee) {
        title.push(Span::raw("  group OEE "));
        title.push(Span::raw(fmt_pct(Some(oee))).style(oee_style(oee).bold()));
    }
    title
}

/// The time of the newest data, shorter when the title (`title_w`
/// columns) needs the room of the line (`width` columns).
fn as_of(app: &App, title_w: usize, width: u16) -> String {
    match app.newest_window_end_ms() {
        Some(t) => ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m-%d %H:%M"]
            .into_iter()
            .map(|f| format!("  data to {} UTC ", fmt_utc(t, f)))
            .find(|s| title_w + s.chars().count() <= usize::from(width))
            .unwrap_or_default(),
        None => "  no data yet ".to_string(),
    }
}
