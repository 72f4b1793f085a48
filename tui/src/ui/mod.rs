//! Rendering: a pure function of the [`App`] state and the wall time.
//!
//! One module per part of the screen, each drawing one area:
//!
//! ```text
//! header   title, failing stages, group OEE, time of the newest data
//! health   ingest rate, watermark lag, dead letters, corrections, alarm counts
//! sites    one tile per site (tile), or why there is no site yet
//! lines    the lines of the selected site
//! alarms   the listed alarms
//! footer   the main keys
//! help     the help overlay (on top of everything)
//! ```
//!
//! `format` holds the number and time formats they share.

mod alarms;
mod footer;
mod format;
mod header;
mod health;
mod help;
mod lines;
mod sites;
mod tile;

use crate::app::App;
use ratatui::layout::{Constraint, Layout};
use ratatui::Frame;
use tile::TILE_H;

/// Draws the whole dashboard. `now_ms` is the wall time (ms since the
/// epoch), used only for the data freshness of each site.
pub fn render(frame: &mut Frame, app: &App, now_ms: i64) {
    let area = frame.area();
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let [title, health] = Layout::vertical([Constraint::Length(1); 2]).areas(header);

    header::render(frame, app, title);
    health::render(frame, app, health);
    footer::render(frame, app, footer);

    if app.site_count() == 0 {
        sites::render_waiting(frame, app, body);
    } else {
        let tile_rows = sites::tile_rows_shown(app.site_count(), body);
        let n_lines = app
            .selected_site()
            .map_or(0, |s| app.lines_of(s).count())
            .max(1) as u16;
        let [tiles, lines, alarms] = Layout::vertical([
            Constraint::Length(tile_rows * TILE_H),
            Constraint::Max(n_lines + 3),
            Constraint::Min(3),
        ])
        .areas(body);
        sites::render_tiles(frame, app, tiles, now_ms);
        lines::render(frame, app, lines);
        alarms::render(frame, app, alarms);
    }

    if app.show_help() {
        help::render(frame, area);
    }
}
