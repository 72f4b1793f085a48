//! Where things are on the screen: one computation shared by drawing and
//! by mouse clicks, so a click lands on what was drawn there.

use crate::app::{App, View};
use ratatui::layout::{Position, Rect};

/// The screen's parts.
pub(crate) struct Areas {
    pub header: Rect,
    pub tabs: Rect,
    pub banner: Option<Rect>,
    pub body: Rect,
    pub footer: Rect,
}

/// Splits the screen: header, tabs, a banner when the engine is gone or
/// alarms flood, the view, the footer.
pub(crate) fn areas(app: &App, screen: Rect, now_ms: i64) -> Areas {
    let row = |y: u16| Rect::new(screen.x, y, screen.width, 1.min(screen.height));
    let has_banner = app.disconnected(now_ms).is_some() || app.flood().is_some();
    let top = screen.y + 2 + u16::from(has_banner);
    let bottom = screen.y + screen.height.saturating_sub(1);
    Areas {
        header: row(screen.y),
        tabs: row(screen.y + 1),
        banner: has_banner.then(|| row(screen.y + 2)),
        body: Rect::new(screen.x, top, screen.width, bottom.saturating_sub(top)),
        footer: row(bottom),
    }
}

/// A tab's label: its digit and name, the console with its unacked count.
pub(crate) fn tab_label(app: &App, v: View, i: usize) -> String {
    match v {
        View::Alarms if app.unacked() > 0 => {
            format!(" {} {} ({}) ", i + 1, v.label(), app.unacked())
        }
        _ => format!(" {} {} ", i + 1, v.label()),
    }
}

/// The view whose tab is at `pos` (the tabs are drawn side by side, each
/// padded by a space, so the eight fit in 80 columns).
pub(crate) fn tab_at(app: &App, screen: Rect, pos: Position) -> Option<View> {
    if pos.y != screen.y + 1 {
        return None;
    }
    let mut x = screen.x;
    for (i, v) in View::ALL.iter().enumerate() {
        let w = tab_label(app, *v, i).chars().count() as u16;
        if pos.x >= x && pos.x < x + w {
            return Some(*v);
        }
        x += w;
    }
    None
}

/// Width and height of a fleet tile.
pub(crate) const TILE_W: u16 = 39;
/// Height of a fleet tile.
pub(crate) const TILE_H: u16 = 7;

/// The fleet's grid in `body`: columns, rows shown, and the first site
/// shown (so the selected tile is always on screen).
pub(crate) struct Grid {
    pub cols: usize,
    pub rows: usize,
    pub first: usize,
}

pub(crate) fn grid(app: &App, body: Rect, n: usize) -> Grid {
    let cols = usize::from((body.width / TILE_W).max(1));
    // One row for the "+N more" line.
    let rows = usize::from((body.height.saturating_sub(1) / TILE_H).max(1));
    let sel_row = app.fleet_sel.min(n.saturating_sub(1)) / cols;
    let first_row = sel_row.saturating_sub(rows - 1);
    Grid {
        cols,
        rows,
        first: first_row * cols,
    }
}

/// The fleet tile (its index in the fleet's order) at `pos`.
pub(crate) fn tile_at(app: &App, screen: Rect, pos: Position, now_ms: i64) -> Option<usize> {
    let body = areas(app, screen, now_ms).body;
    if !body.contains(pos) {
        return None;
    }
    let n = app.fleet(now_ms).len();
    let g = grid(app, body, n);
    let col = usize::from((pos.x - body.x) / TILE_W);
    let row = usize::from((pos.y - body.y) / TILE_H);
    if col >= g.cols || row >= g.rows {
        return None;
    }
    let i = g.first + row * g.cols + col;
    (i < n).then_some(i)
}

/// Rows of the site view above its lines table's first row (summary line,
/// the table's border and header).
pub(crate) const SITE_TABLE_TOP: u16 = 3;
/// Rows of the console above its first alarm row (filter line, border, header).
pub(crate) const ALARM_TABLE_TOP: u16 = 3;

/// Height of the site view's lines table (with its border and header),
/// in `rest` (the body less the summary line).
pub(crate) fn site_table_height(rest: Rect, lines: usize) -> u16 {
    let want = u16::try_from(lines).unwrap_or(u16::MAX).saturating_add(3);
    want.min(rest.height.saturating_sub(1) / 2)
        .max(4)
        .min(rest.height)
}

/// Data rows visible in a table of `height` (border and header taken off).
pub(crate) fn table_rows(height: u16) -> usize {
    usize::from(height.saturating_sub(3)).max(1)
}

/// The first row shown so that `sel` is visible among `rows`.
pub(crate) fn offset(sel: usize, rows: usize) -> usize {
    sel.saturating_sub(rows.saturating_sub(1))
}

/// The console's table: the body less its filter line and the detail
/// pane (the same split for drawing and for clicks).
pub(crate) fn alarm_table(body: Rect) -> Rect {
    Rect {
        y: body.y + 1.min(body.height),
        height: body
            .height
            .saturating_sub(1)
            .saturating_sub(detail_height(body)),
        ..body
    }
}

/// The console's first alarm shown.
pub(crate) fn alarm_offset(app: &App, screen: Rect, now_ms: i64) -> usize {
    let body = areas(app, screen, now_ms).body;
    let rows = table_rows(alarm_table(body).height);
    let list = app.console_alarms();
    let sel = app
        .alarm_sel
        .as_ref()
        .and_then(|s| list.iter().position(|a| a.id() == *s))
        .unwrap_or(0);
    offset(sel, rows)
}

/// The console's detail pane under the table.
pub(crate) fn detail_height(body: Rect) -> u16 {
    if body.height >= 30 {
        6
    } else {
        3
    }
}

/// The site view's first line shown and the rows its table shows.
pub(crate) fn line_rows(app: &App, screen: Rect, now_ms: i64, lines: usize) -> (usize, usize) {
    let body = areas(app, screen, now_ms).body;
    let rows = table_rows(site_table_height(body.inner_height(), lines));
    (offset(app.line_sel, rows), rows)
}

/// The data row (0-based, before the scroll offset) at `pos`, in a table
/// whose first data row is `top` rows below the body's top and which
/// shows `rows` rows: a click on its border or below it is on no row.
pub(crate) fn row_at(
    app: &App,
    screen: Rect,
    pos: Position,
    top: u16,
    rows: usize,
    now_ms: i64,
) -> Option<usize> {
    let body = areas(app, screen, now_ms).body;
    if !body.contains(pos) || pos.y < body.y + top {
        return None;
    }
    let row = usize::from(pos.y - body.y - top);
    (row < rows).then_some(row)
}

trait InnerHeight {
    fn inner_height(self) -> Rect;
}

impl InnerHeight for Rect {
    /// The body less the site view's summary line.
    fn inner_height(self) -> Rect {
        Rect {
            height: self.height.saturating_sub(1),
            ..self
        }
    }
}

/// The parameter view's parts: its header line, the parameters' table,
/// the requests' table, the detail of the selected row.
pub(crate) struct ParamAreas {
    pub header: Rect,
    pub params: Rect,
    pub requests: Rect,
    pub detail: Rect,
}

/// Splits the parameter view's `body`: the parameters' table as tall as
/// its rows (at most half of the tables' room), the requests the rest.
pub(crate) fn param_areas(app: &App, body: Rect) -> ParamAreas {
    let header = Rect {
        height: 1.min(body.height),
        ..body
    };
    let detail_h = if body.height >= 30 { 4 } else { 2 };
    let rest_h = body.height.saturating_sub(1).saturating_sub(detail_h);
    let want = u16::try_from(app.param_entries().len())
        .unwrap_or(u16::MAX)
        .saturating_add(3);
    let params_h = want.min(rest_h / 2).max(4).min(rest_h);
    let params = Rect {
        y: body.y + header.height,
        height: params_h,
        ..body
    };
    let requests = Rect {
        y: params.y + params_h,
        height: rest_h - params_h,
        ..body
    };
    let detail = Rect {
        y: requests.y + requests.height,
        height: body
            .height
            .saturating_sub(header.height + params_h + requests.height),
        ..body
    };
    ParamAreas {
        header,
        params,
        requests,
        detail,
    }
}

/// The data row (0-based, before the scroll offset) at `pos` in a
/// bordered table with a header row drawn in `table`.
pub(crate) fn table_row_at(table: Rect, pos: Position) -> Option<usize> {
    if !table.contains(pos) || pos.y < table.y + 2 || pos.y + 1 >= table.y + table.height {
        return None;
    }
    Some(usize::from(pos.y - table.y - 2))
}

/// The parameters' first row shown in `table` (the selected one visible).
pub(crate) fn param_offset(app: &App, table: Rect) -> usize {
    let sel = app.param_sel.as_ref().and_then(|(asset, param)| {
        app.param_entries()
            .iter()
            .position(|e| e.asset == *asset && e.param == *param)
    });
    offset(sel.unwrap_or(0), table_rows(table.height))
}

/// The requests' first row shown in `table` (the selected one visible).
pub(crate) fn request_offset(app: &App, table: Rect) -> usize {
    let sel = app
        .request_sel
        .as_ref()
        .and_then(|id| app.param_request_list().iter().position(|r| r.id == *id));
    offset(sel.unwrap_or(0), table_rows(table.height))
}
