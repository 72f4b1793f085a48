//! `?`: the keys, and what each mark on screen means.

use super::Ctx;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

const HELP: &[&str] = &[
    "Keys",
    "  1–8 Tab Shift-Tab  views: fleet site line energy water alarms health params",
    "  ↑↓←→ hjkl PgUp PgDn  move · Enter  drill in (fleet→site→line) · Esc  back",
    "  /  filter (Esc clears) · o  order, sort · q  quit · mouse: tabs, tiles, rows",
    "  Alarm console: a acknowledge · s shelve (MINUTES REASON) · c comment",
    "                 p minimum priority · f state filter",
    "  Params: ←→ parameters/requests · s set (VALUE REASON) · y approve · x reject",
    "          each write is signed: your signature is asked once per session",
    "Marks",
    "  STALE 3m05s  older than the engine's freshness limit: dimmed, never current",
    "  ~  partial: under 90 % of the asset-time had data, or the shift began",
    "     before the engine saw it (a start or restart within the shift)",
    "  *  corrected by late data after it was first shown",
    "  !  ideal rate suspect: faster than its ideal rate (performance capped)",
    "  —  unknown (no data), never zero",
    "  URG HI MED LOW  alarm priorities · UNACK ACTIVE in bold",
    "  DISCONNECTED  no heartbeat from the engine: figures are the last known",
    "Requests: requested (bold) waits for a second person until its deadline ·",
    "  approved · sent: published, waits for the read-back · confirmed: it matched",
    "  UNCONFIRMED: no read-back in time, alarm raised · rejected, expired: dimmed",
    "Figures are of the shift so far unless a title says otherwise.",
    "Any key closes this help.",
];

pub(super) fn draw(frame: &mut Frame, cx: &Ctx, screen: Rect) {
    let w = screen.width.min(86);
    let h = (HELP.len() as u16 + 2).min(screen.height);
    let area = Rect::new(
        screen.x + (screen.width - w) / 2,
        screen.y + (screen.height - h) / 2,
        w,
        h,
    );
    frame.render_widget(Clear, area);
    let lines: Vec<Line> = HELP.iter().map(|l| Line::from(*l)).collect();
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Help ")
                .title_style(cx.theme.title()),
        ),
        area,
    );
}
