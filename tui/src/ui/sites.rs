//! The sites area: one tile per site, scrolled so that the selected one is
//! visible, or, before the first site is known, why there is nothing yet.

use super::format::fmt_span;
use super::tile::{SiteTile, TILE_H};
use crate::app::App;
use crate::timing::WindowTiming;
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::Stylize;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

/// Smallest tile width, borders included.
const TILE_MIN_W: u16 = 26;
/// Largest tile width, so a few sites on a wide screen stay compact.
const TILE_MAX_W: u16 = 40;

/// Draws the sites area when no site is known yet: why, and, when the
/// dashboard knows the pipeline's timing, how long the first KPIs take.
pub(super) fn render_waiting(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(" Sites ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut text = vec![
        Line::from("Waiting for data…").bold(),
        Line::from(""),
        Line::from("No KPI window has closed yet. Sites appear here"),
        Line::from("as soon as the pipeline publishes their first window."),
    ];
    if let Some(t) = app.timing() {
        text.push(Line::from(""));
        text.extend(first_kpi_wait(t).into_iter().map(Line::from));
    }
    if app.feed_lost() {
        text.push(Line::from(""));
        text.push(Line::from("The update feed is disconnected.").red());
    }
    // Centred on the lines as wrapped at this width (roughly: words may
    // wrap onto one more line; the text then runs on downward).
    let width = usize::from(inner.width.max(1));
    let h: usize = text.iter().map(|l| l.width().div_ceil(width).max(1)).sum();
    let top = inner.centered_vertically(Constraint::Length(h.min(usize::from(u16::MAX)) as u16));
    let below = Rect {
        height: inner.bottom().saturating_sub(top.y),
        ..top
    };
    frame.render_widget(
        Paragraph::new(text)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        below,
    );
}

/// Why the first KPIs take a while, with the configured numbers.
fn first_kpi_wait(t: &WindowTiming) -> Vec<String> {
    let mut holds = Vec::new();
    if t.allowed_lateness_ms > 0 {
        holds.push(format!(
            "the {} allowed for late messages",
            fmt_span(t.allowed_lateness_ms)
        ));
    }
    if t.lookahead_ms > 0 {
        holds.push(format!(
            "the {} lookahead that sees how stops end",
            fmt_span(t.lookahead_ms)
        ));
    }
    let closes = if holds.is_empty() {
        "A window closes once the data is past its end.".to_string()
    } else {
        format!(
            "A window closes once the data is past its end by {}.",
            holds.join(" and ")
        )
    };
    let within = fmt_span(t.first_kpi_within_ms());
    let wait = match t.first_kpi_within_wall_ms() {
        Some(wall) => format!(
            "The first KPIs take up to {within} of event time: about {} at {}× replay.",
            fmt_span(wall),
            fmt_speed(t.replay_speed.unwrap_or(1.0))
        ),
        None => format!("The first KPIs take up to {within}."),
    };
    vec![
        format!(
            "KPIs are computed per closed window of {}.",
            fmt_span(t.window_ms)
        ),
        closes,
        wait,
    ]
}

/// A speed factor: `10`, `2.5`.
fn fmt_speed(s: f64) -> String {
    let v = format!("{s:.1}");
    v.strip_suffix(".0").unwrap_or(&v).to_string()
}

fn tiles_per_row(n_sites: usize, width: u16) -> usize {
    (width / TILE_MIN_W).max(1).min(n_sites.max(1) as u16) as usize
}

/// How many rows of tiles to show: all of them when they fit in about half
/// of the body, else as many as do (at least one).
pub(super) fn tile_rows_shown(n_sites: usize, body: Rect) -> u16 {
    let per_row = tiles_per_row(n_sites, body.width);
    let needed = n_sites.div_ceil(per_row) as u16;
    let fit = (body.height / 2 / TILE_H).max(1);
    needed.min(fit)
}

/// Draws the tiles that fit in `area`, a whole number of rows.
pub(super) fn render_tiles(frame: &mut Frame, app: &App, area: Rect, now_ms: i64) {
    let n = app.site_count();
    let per_row = tiles_per_row(n, area.width);
    let rows_shown = (area.height / TILE_H).max(1) as usize;
    let total_rows = n.div_ceil(per_row);
    // Scroll so that the selected site's row is visible.
    let sel_row = app.selected_index() / per_row;
    let first_row = sel_row
        .saturating_sub(rows_shown - 1)
        .min(total_rows.saturating_sub(rows_shown));
    let tile_w = (area.width / per_row as u16).clamp(1, TILE_MAX_W);

    for (i, (site, state)) in app.sites().enumerate() {
        let row = i / per_row;
        if row < first_row || row >= first_row + rows_shown {
            continue;
        }
        let col = (i % per_row) as u16;
        let rect = Rect {
            x: area.x + col * tile_w,
            y: area.y + (row - first_row) as u16 * TILE_H,
            width: tile_w,
            height: TILE_H,
        }
        .intersection(area);
        if rect.is_empty() {
            continue;
        }
        let tile = SiteTile {
            index: i,
            name: site,
            kpi: state.kpi.as_ref(),
            last_shift: state.last_shift.as_ref(),
            last_update_ms: state.last_update_ms,
            alarms: app.site_alarm_count(site),
            stale: app.site_is_stale(site),
            selected: i == app.selected_index(),
        };
        tile.render(frame, rect, now_ms);
    }
}
