//! The alarm console: every listed alarm, filtered by priority, state and
//! text, scrolling, the selected one's detail below; acknowledge, shelve
//! and comment from here (the engine checks the user and audits).

use super::format::{fit, num, utc_full};
use super::layout::{alarm_table, offset, table_rows};
use super::Ctx;
use ctower_model::{AlarmState, Priority};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

fn letter(p: Priority) -> &'static str {
    match p {
        Priority::Urgent => "URG",
        Priority::High => "HI",
        Priority::Medium => "MED",
        Priority::Low => "LOW",
    }
}

fn state(s: AlarmState) -> &'static str {
    match s {
        AlarmState::UnackActive => "UNACK ACTIVE",
        AlarmState::UnackRtn => "unack rtn",
        AlarmState::AckActive => "ack active",
        AlarmState::Latched => "latched",
        AlarmState::Shelved => "shelved",
        AlarmState::Suppressed => "suppressed",
        AlarmState::OutOfService => "out of service",
        AlarmState::Normal => "normal",
    }
}

pub(super) fn draw(frame: &mut Frame, cx: &Ctx, body: Rect) {
    let app = cx.app;
    let t = cx.theme;
    let list = app.console_alarms();
    let filter = Line::from(vec![
        Span::styled("priority ≥ ", t.stale()),
        Span::raw(format!("{} (p)", app.min_priority.as_str())),
        Span::styled(" · state ", t.stale()),
        Span::raw(format!("{} (f)", app.state_filter.label())),
        Span::styled(" · text ", t.stale()),
        Span::raw(if app.filter().is_empty() {
            "— (/)".to_string()
        } else {
            format!("`{}`", app.filter())
        }),
        Span::styled(
            format!(" · {} of {} alarms", list.len(), app.alarms.len()),
            t.stale(),
        ),
    ]);
    frame.render_widget(Paragraph::new(filter), Rect { height: 1, ..body });
    // The same split as a click's (`layout::alarm_table`).
    let table_area = alarm_table(body);
    let detail = Rect {
        y: table_area.y + table_area.height,
        height: body
            .height
            .saturating_sub(1)
            .saturating_sub(table_area.height),
        ..body
    };
    let rows_visible = table_rows(table_area.height);
    let sel = app
        .alarm_sel
        .as_ref()
        .and_then(|s| list.iter().position(|a| a.id() == *s));
    let first = offset(sel.unwrap_or(0), rows_visible);
    let wide = body.width >= 120;
    let rows: Vec<Row> = list
        .iter()
        .enumerate()
        .skip(first)
        .take(rows_visible)
        .map(|(i, a)| {
            let p = t.priority(a.priority);
            let mut cells = vec![
                Cell::from(Span::styled(letter(a.priority), p)),
                Cell::from(state(a.state)),
                Cell::from(utc_full(a.ts_ms)),
                Cell::from(fit(&a.id().to_string(), if wide { 60 } else { 34 })),
                Cell::from(format!("{} / {}", num(a.value), num(Some(a.threshold)))),
            ];
            if wide {
                cells.push(Cell::from(a.message.to_string()));
            }
            let mut style = if matches!(a.state, AlarmState::UnackActive) {
                Style::new().add_modifier(ratatui::style::Modifier::BOLD)
            } else {
                Style::new()
            };
            if Some(i) == sel {
                style = style.patch(t.selected());
            }
            Row::new(cells).style(style)
        })
        .collect();
    let more = list.len().saturating_sub(first + rows_visible);
    let title = format!(
        " Alarm console · as {}{}{} ",
        app.user,
        if first > 0 {
            format!(" · +{first} above")
        } else {
            String::new()
        },
        if more > 0 {
            format!(" · +{more} more ↓")
        } else {
            String::new()
        },
    );
    let mut widths = vec![
        Constraint::Length(3),
        Constraint::Length(14),
        Constraint::Length(14),
        Constraint::Length(if wide { 60 } else { 34 }),
        Constraint::Length(13),
    ];
    let mut header = vec!["pri", "state", "since (UTC)", "alarm", "value / limit"];
    if wide {
        widths.push(Constraint::Min(10));
        header.push("message");
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.title()))
        .block(Block::default().borders(Borders::ALL).title(title));
    frame.render_widget(table, table_area);
    let text = match sel.and_then(|i| list.get(i)) {
        Some(a) => vec![
            Line::from(vec![
                Span::styled(format!("{} ", letter(a.priority)), t.priority(a.priority)),
                Span::raw(format!(
                    "{} · {} · {}",
                    a.id(),
                    state(a.state),
                    a.kind.as_str()
                )),
            ]),
            Line::from(a.message.to_string()),
            Line::from(format!(
                "{} = {} (limit {}) at {} UTC",
                a.metric,
                num(a.value),
                num(Some(a.threshold)),
                utc_full(a.ts_ms)
            )),
        ],
        None if list.is_empty() => vec![Line::from("No alarm matches.")],
        None => vec![Line::from(
            "↑/↓ selects an alarm; a acknowledges, s shelves, c comments.",
        )],
    };
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .block(Block::default().borders(Borders::TOP)),
        detail,
    );
}
