//! The alarms table: every listed alarm (any state but normal), highest
//! priority first, then newest.

use super::format::{fmt_metric, fmt_utc, right, DASH};
use crate::app::App;
use ctower_model::{AlarmEvent, AlarmState, Level, Priority, ScopeKey};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

/// From this width on the alarm table shows rules and full timestamps.
const WIDE_ALARMS_W: u16 = 120;

/// Draws the alarms area.
pub(super) fn render(frame: &mut Frame, app: &App, area: Rect) {
    let alarms = app.alarms();
    let wide = area.width >= WIDE_ALARMS_W;
    let title = format!(
        " Alarms: {} listed, {} unacknowledged ",
        alarms.len(),
        app.unacked_count()
    );
    let block = Block::bordered().title(title);
    if alarms.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::from(" no active alarms").green()).block(block),
            area,
        );
        return;
    }
    // Alarm times are shown against the newest data, not the wall clock:
    // a replay shows its own day.
    let today = app.newest_window_end_ms().map(|t| fmt_utc(t, "%Y-%m-%d"));
    let mut rows: Vec<AlarmRow> = alarms
        .iter()
        .map(|a| AlarmRow::new(a, wide, today.as_deref()))
        .collect();
    let widths = column_widths(&mut rows, wide, area.width.saturating_sub(2));
    let header = Row::new(headers(wide)).bold().underlined();
    let table = Table::new(rows.into_iter().map(AlarmRow::into_row), widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(Style::new().reversed())
        .block(block);
    // The cursor's row, kept in view (the table scrolls to it).
    let selected = app
        .selected_alarm()
        .and_then(|sel| alarms.iter().position(|a| &a.id() == sel));
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}

/// The widest of `f` over the rows and the column's header.
fn natural(rows: &[AlarmRow], f: impl Fn(&AlarmRow) -> usize, header: &str) -> u16 {
    rows.iter()
        .map(f)
        .chain([header.chars().count()])
        .max()
        .unwrap_or(0) as u16
}

/// The column widths for a table `inner_w` wide. Scope, rule and message
/// get their natural widths when they fit; else scope and rule get theirs
/// up to a half and a quarter of the room, and the message the rest: where
/// and what first, the wording after. Narrow and short of room, the scopes
/// of `rows` are made compact.
fn column_widths(rows: &mut [AlarmRow], wide: bool, inner_w: u16) -> Vec<Constraint> {
    let value_w = natural(rows, |r| r.value.chars().count(), "Value vs limit");
    let mut scope_w = natural(rows, |r| r.scope.chars().count(), "Scope");
    let rule_w = natural(
        rows,
        |r| r.rule.as_ref().map_or(0, |s| s.chars().count()),
        "Rule",
    );
    let message_w = natural(rows, |r| r.message.chars().count(), "Message");
    let fixed = if wide {
        8 + 9 + value_w + 16 + 6
    } else {
        4 + 5 + value_w + 5 + 5
    };
    let room = inner_w.saturating_sub(fixed);
    if !wide && scope_w + message_w > room {
        // Narrow and short of room: leave the area and the signal out.
        for r in rows.iter_mut() {
            r.scope = std::mem::take(&mut r.compact_scope);
        }
        scope_w = natural(rows, |r| r.scope.chars().count(), "Scope");
    }
    let flexible = if wide {
        scope_w + rule_w + message_w
    } else {
        scope_w + message_w
    };
    let (scope_c, rule_c) = if flexible <= room {
        (Constraint::Length(scope_w), Constraint::Length(rule_w))
    } else {
        (
            Constraint::Length(scope_w.min(room / 2)),
            Constraint::Length(rule_w.min(room / 4)),
        )
    };
    let message_c = Constraint::Fill(1);
    if wide {
        vec![
            Constraint::Length(8),
            Constraint::Length(9),
            scope_c,
            rule_c,
            message_c,
            Constraint::Length(value_w),
            Constraint::Length(16),
        ]
    } else {
        vec![
            Constraint::Length(4),
            Constraint::Length(5),
            scope_c,
            message_c,
            Constraint::Length(value_w),
            Constraint::Length(5),
        ]
    }
}

/// The column headers, in the order of [`column_widths`].
fn headers(wide: bool) -> Vec<&'static str> {
    if wide {
        vec![
            "Priority",
            "State",
            "Scope",
            "Rule",
            "Message",
            "Value vs limit",
            "Event time UTC",
        ]
    } else {
        vec!["Pri", "State", "Scope", "Message", "Value vs limit", "UTC"]
    }
}

/// The texts of one alarm row.
struct AlarmRow {
    priority: (&'static str, Style),
    state: (&'static str, Style),
    scope: String,
    /// `site/line/asset`, for narrow screens.
    compact_scope: String,
    rule: Option<String>,
    message: String,
    value: String,
    time: String,
    returned: bool,
}

impl AlarmRow {
    fn new(a: &AlarmEvent, wide: bool, today: Option<&str>) -> Self {
        let priority = match (a.priority, wide) {
            (Priority::Urgent, true) => ("URGENT", Style::new().bold().white().on_red()),
            (Priority::Urgent, false) => ("URG", Style::new().bold().white().on_red()),
            (Priority::High, _) => ("HIGH", Style::new().bold().red()),
            (Priority::Medium, true) => ("MEDIUM", Style::new().yellow()),
            (Priority::Medium, false) => ("MED", Style::new().yellow()),
            (Priority::Low, _) => ("LOW", Style::new()),
        };
        let state = match (a.state, wide) {
            (AlarmState::UnackActive, _) => ("UNACK", Style::new().bold()),
            (AlarmState::AckActive, _) => ("ACKED", Style::new()),
            (AlarmState::UnackRtn, true) => ("RTN unack", Style::new().italic()),
            (AlarmState::UnackRtn, false) => ("RTN", Style::new().italic()),
            (AlarmState::Latched, _) => ("LATCHED", Style::new().bold()),
            (AlarmState::Shelved, _) => ("SHELVED", Style::new().dim()),
            (AlarmState::Suppressed, true) => ("SUPPRESSED", Style::new().dim()),
            (AlarmState::Suppressed, false) => ("SUPPR", Style::new().dim()),
            (AlarmState::OutOfService, _) => ("OOS", Style::new().dim()),
            (AlarmState::Normal, _) => ("-", Style::new()),
        };
        let mut scope = a.scope.to_string();
        if let Some(sig) = &a.signal {
            scope.push(':');
            scope.push_str(sig);
        }
        let message = if a.message.is_empty() {
            a.rule.to_string()
        } else {
            a.message.to_string()
        };
        let value = format!(
            "{} vs {}",
            a.value
                .map_or(DASH.to_string(), |v| fmt_metric(&a.metric, v)),
            fmt_metric(&a.metric, a.threshold)
        );
        let time = if wide {
            fmt_utc(a.ts_ms, "%Y-%m-%d %H:%M")
        } else if today.is_some_and(|d| fmt_utc(a.ts_ms, "%Y-%m-%d") == d) {
            fmt_utc(a.ts_ms, "%H:%M")
        } else {
            fmt_utc(a.ts_ms, "%m-%d")
        };
        AlarmRow {
            priority,
            state,
            scope,
            compact_scope: compact_scope(&a.scope),
            rule: wide.then(|| a.rule.to_string()),
            message,
            value,
            time,
            returned: a.state == AlarmState::UnackRtn,
        }
    }

    fn into_row(self) -> Row<'static> {
        let mut cells = vec![
            Cell::from(self.priority.0).style(self.priority.1),
            Cell::from(self.state.0).style(self.state.1),
            Cell::from(self.scope),
        ];
        if let Some(rule) = self.rule {
            cells.push(Cell::from(rule));
        }
        cells.push(Cell::from(self.message));
        cells.push(right(self.value));
        cells.push(Cell::from(self.time));
        let row = Row::new(cells);
        if self.returned {
            row.dark_gray()
        } else {
            row
        }
    }
}

/// `site/line/asset`, without the area, for narrow screens.
fn compact_scope(s: &ScopeKey) -> String {
    if s.level == Level::Group {
        return "group".to_string();
    }
    [&s.site, &s.line, &s.asset]
        .into_iter()
        .flatten()
        .map(|p| p.as_ref())
        .collect::<Vec<&str>>()
        .join("/")
}
