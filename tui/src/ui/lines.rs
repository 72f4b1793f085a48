//! The lines table: the newest window of every line of the selected site.

use super::format::{fmt_count, fmt_minutes, fmt_opt, fmt_pct_bare, oee_style, right};
use crate::app::App;
use ctower_model::KpiRecord;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use ratatui::Frame;

/// One numeric column: its header and width, narrow and wide.
struct Col {
    narrow: &'static str,
    wide: &'static str,
    narrow_w: u16,
    wide_w: u16,
}

/// The numeric columns of the line table; the line name comes first.
const LINE_COLS: [Col; 11] = [
    col("OEE%", "OEE %", 5, 5),
    col("A%", "Avail %", 5, 7),
    col("P%", "Perf %", 5, 6),
    col("Q%", "Qual %", 5, 6),
    col("Prod", "Produced", 6, 8),
    col("Good", "Good", 6, 8),
    col("Run", "Running min", 4, 11),
    col("Stop", "Unpl stop min", 4, 13),
    col("kWh", "kWh", 5, 7),
    col("kWh/u", "kWh/unit", 6, 8),
    col("Stby", "Standby kW", 4, 10),
];

/// Width the line name gets at least in the wide layout.
const WIDE_LINE_NAME_W: u16 = 16;

const fn col(narrow: &'static str, wide: &'static str, narrow_w: u16, wide_w: u16) -> Col {
    Col {
        narrow,
        wide,
        narrow_w,
        wide_w,
    }
}

/// Draws the lines of the selected site (nothing without a site).
pub(super) fn render(frame: &mut Frame, app: &App, area: Rect) {
    let Some(site) = app.selected_site() else {
        return;
    };
    let wide_needed: u16 =
        WIDE_LINE_NAME_W + LINE_COLS.iter().map(|c| c.wide_w + 1).sum::<u16>() + 2;
    let wide = area.width >= wide_needed;
    let position = format!("({}/{})", app.selected_index() + 1, app.site_count());
    let title = if wide {
        format!(" Lines of {site} {position} ")
    } else {
        format!(" Lines of {site} {position} · Run/Stop: min · Stby: standby kW ")
    };
    let block = Block::bordered().title(title);

    let mut header = vec![Cell::from("Line")];
    let mut widths = vec![Constraint::Fill(1)];
    for c in &LINE_COLS {
        header.push(right(if wide { c.wide } else { c.narrow }));
        widths.push(Constraint::Length(if wide { c.wide_w } else { c.narrow_w }));
    }
    let header = Row::new(header).bold().underlined();

    let rows: Vec<Row> = app.lines_of(site).map(|k| line_row(k, wide)).collect();
    let empty = rows.is_empty();
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .block(block);
    frame.render_widget(table, area);
    if empty {
        let inner = Block::bordered().inner(area);
        let msg_area = Rect {
            y: inner.y.saturating_add(1),
            height: inner.height.saturating_sub(1),
            ..inner
        };
        frame.render_widget(
            Paragraph::new("no line KPI for this site yet").dark_gray(),
            msg_area,
        );
    }
}

/// One line's row, in the order of [`LINE_COLS`].
fn line_row(k: &KpiRecord, wide: bool) -> Row<'static> {
    let r = &k.ratios;
    let s = &k.sums;
    let name = match (&k.scope.area, &k.scope.line) {
        (Some(a), Some(l)) if wide => format!("{a}/{l}"),
        (_, Some(l)) => l.to_string(),
        _ => k.scope.to_string(),
    };
    let oee = right(fmt_pct_bare(r.oee)).style(r.oee.map_or(Style::new(), oee_style));
    Row::new(vec![
        Cell::from(name),
        oee,
        right(fmt_pct_bare(r.availability)),
        right(fmt_pct_bare(r.performance)),
        right(fmt_pct_bare(r.quality)),
        right(fmt_count(s.produced)),
        right(fmt_count(s.good)),
        right(fmt_minutes(s.running_ms)),
        right(fmt_minutes(s.unplanned_stop_ms)),
        right(fmt_opt(s.energy_kwh)),
        right(fmt_opt(r.kwh_per_good_unit)),
        right(fmt_opt(r.standby_kw)),
    ])
}
