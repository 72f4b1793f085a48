//! The parameter view: the writable parameters with their read-back
//! (value, age on the engine's clock, range, step, two-person rule, the
//! request in flight) and the write requests, newest first (the change,
//! the state, who asked and who decided, the deadline counting down);
//! the selected row's detail below. Set, approve and reject from here,
//! each signed (the engine checks the signature, the roles and the
//! two-person rule, and audits).

use super::format::{fit, fmt_age, utc_full, DASH};
use super::layout::{param_areas, param_offset, request_offset, table_rows};
use super::Ctx;
use crate::app::ParamFocus;
use ctower_model::{ParamEntryView, ParamRequestView, ParamState, ParamType, ParamValue};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

/// A state as written: `UNCONFIRMED` in capitals (an alarm is raised),
/// the others by their name.
fn state_label(s: ParamState) -> &'static str {
    match s {
        ParamState::Unconfirmed => "UNCONFIRMED",
        s => s.as_str(),
    }
}

/// A value with its unit (a switch has none); unknown is a dash.
fn value_text(v: Option<ParamValue>, unit: &str) -> String {
    match v {
        None => DASH.to_string(),
        Some(v @ ParamValue::Bool(_)) => v.to_string(),
        Some(v) if unit.is_empty() => v.to_string(),
        Some(v) => format!("{v} {unit}"),
    }
}

/// `min–max` of a number (`≥ min`, `≤ max` when one side is open, a dash
/// when neither is known); `on/off` for a switch.
pub(crate) fn range_label(e: &ParamEntryView) -> String {
    if e.ty == ParamType::Bool {
        return "on/off".into();
    }
    match (e.min, e.max) {
        (Some(a), Some(b)) => format!("{a}–{b}"),
        (Some(a), None) => format!("≥ {a}"),
        (None, Some(b)) => format!("≤ {b}"),
        (None, None) => DASH.into(),
    }
}

fn step_label(e: &ParamEntryView) -> String {
    match (e.ty, e.max_step) {
        (ParamType::Bool, _) => String::new(),
        (_, Some(s)) => format!("≤ {s}"),
        (_, None) => DASH.into(),
    }
}

/// Cuts `s` to `w` characters in its middle, keeping a third at the head
/// (the site) and the rest at the tail (the asset and the parameter).
fn fit_mid(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        return s.to_string();
    }
    if w < 3 {
        return fit(s, w);
    }
    let head = (w - 1) / 3;
    let tail = w - 1 - head;
    let mut t: String = s.chars().take(head).collect();
    t.push('…');
    t.extend(s.chars().skip(n - tail));
    t
}

/// The deadline of a request that waits (for approval, for the
/// read-back) as a countdown on the engine's clock.
fn due(cx: &Ctx, r: &ParamRequestView) -> String {
    if !matches!(r.state, ParamState::Requested | ParamState::Sent) {
        return String::new();
    }
    match (r.deadline_ms, cx.app.engine_now_ms(cx.now_ms)) {
        (Some(d), Some(now)) if d > now => fmt_age(d - now),
        (Some(_), Some(_)) => "overdue".into(),
        _ => DASH.into(),
    }
}

fn change(r: &ParamRequestView) -> String {
    let unit = if r.unit.is_empty() || matches!(r.new, ParamValue::Bool(_)) {
        String::new()
    } else {
        format!(" {}", r.unit)
    };
    let old = r.old.map_or(DASH.to_string(), |v| v.to_string());
    format!("{old} → {}{unit}", r.new)
}

/// The width left to the one `Min` column of a bordered table of
/// `widths` in `area` (one column of spacing between columns).
fn fill_width(area: Rect, widths: &[Constraint]) -> usize {
    let fixed: u16 = widths
        .iter()
        .map(|c| match c {
            Constraint::Length(n) => *n,
            _ => 0,
        })
        .sum();
    let gaps = u16::try_from(widths.len().saturating_sub(1)).unwrap_or(u16::MAX);
    usize::from(
        area.width
            .saturating_sub(2)
            .saturating_sub(fixed)
            .saturating_sub(gaps),
    )
}

fn table_title(name: &str, focused: bool, first: usize, more: usize) -> String {
    format!(
        " {}{name}{}{} ",
        if focused { "▸ " } else { "" },
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
    )
}

pub(super) fn draw(frame: &mut Frame, cx: &Ctx, body: Rect) {
    let app = cx.app;
    let t = cx.theme;
    let a = param_areas(app, body);
    let entries = app.param_entries();
    let requests = app.param_request_list();

    // The header line.
    let mut spans = Vec::new();
    if app.params.read_only {
        spans.push(Span::styled(
            " READ-ONLY: the engine refuses every write ",
            t.banner(),
        ));
        spans.push(Span::raw(" "));
    }
    let waiting = requests
        .iter()
        .filter(|r| r.state == ParamState::Requested)
        .count();
    let counted = |shown: usize, all: usize| {
        if shown == all {
            shown.to_string()
        } else {
            format!("{shown} of {all}")
        }
    };
    spans.push(Span::styled(
        format!(
            "{} parameters · {} requests, {waiting} waiting for approval",
            counted(entries.len(), app.params.entries.len()),
            counted(requests.len(), app.param_requests.len()),
        ),
        t.stale(),
    ));
    spans.push(Span::styled(" · text ", t.stale()));
    spans.push(Span::raw(if app.filter().is_empty() {
        "— (/)".to_string()
    } else {
        format!("`{}`", app.filter())
    }));
    spans.push(Span::styled(
        if app.has_signature() {
            " · signature kept for the session"
        } else {
            " · signature asked at the first write"
        },
        t.stale(),
    ));
    frame.render_widget(Paragraph::new(Line::from(spans)), a.header);

    let wide = body.width >= 120;
    params_table(frame, cx, &entries, a.params, wide);
    requests_table(frame, cx, &requests, a.requests, wide);
    detail(frame, cx, &entries, &requests, a.detail);
}

fn params_table(frame: &mut Frame, cx: &Ctx, entries: &[&ParamEntryView], area: Rect, wide: bool) {
    let app = cx.app;
    let t = cx.theme;
    let focused = app.param_focus == ParamFocus::Params;
    let rows_visible = table_rows(area.height);
    let first = param_offset(app, area);
    let sel = app.param_sel.as_ref().and_then(|(asset, param)| {
        entries
            .iter()
            .position(|e| e.asset == *asset && e.param == *param)
    });
    let mut widths = if wide {
        vec![Constraint::Length(34), Constraint::Length(22)]
    } else {
        vec![Constraint::Min(16)]
    };
    widths.extend([
        Constraint::Length(if wide { 14 } else { 11 }),
        Constraint::Length(11),
        Constraint::Length(if wide { 12 } else { 9 }),
        Constraint::Length(if wide { 8 } else { 6 }),
        Constraint::Length(2),
        Constraint::Length(if wide { 8 } else { 7 }),
    ]);
    if wide {
        widths.push(Constraint::Min(8));
    }
    let name_w = fill_width(area, &widths);
    let rows: Vec<Row> = entries
        .iter()
        .enumerate()
        .skip(first)
        .take(rows_visible)
        .map(|(i, e)| {
            let stale = e.value_ms.is_some_and(|ms| app.is_stale(ms, cx.now_ms));
            let value_style = if stale { t.stale() } else { Style::new() };
            let age = match (e.value, e.value_ms) {
                (_, Some(ms)) if stale => super::stale_label(cx, Some(ms)),
                (Some(_), Some(ms)) => app.age_ms(ms, cx.now_ms).map_or(DASH.into(), fmt_age),
                _ => DASH.into(),
            };
            let mut cells = if wide {
                vec![Cell::from(fit(&e.asset, 34)), Cell::from(fit(&e.param, 22))]
            } else {
                vec![Cell::from(fit_mid(
                    &format!("{} {}", e.asset, e.param),
                    name_w,
                ))]
            };
            cells.extend([
                Cell::from(Span::styled(value_text(e.value, &e.unit), value_style)),
                Cell::from(Span::styled(age, value_style)),
                Cell::from(range_label(e)),
                Cell::from(step_label(e)),
                Cell::from(if e.two_person { "2P" } else { "" }),
                Cell::from(e.in_flight.clone().unwrap_or_default()),
            ]);
            if wide {
                cells.push(Cell::from(e.approve_roles.join(",")));
            }
            let style = if focused && Some(i) == sel {
                t.selected()
            } else {
                Style::new()
            };
            Row::new(cells).style(style)
        })
        .collect();
    let more = entries.len().saturating_sub(first + rows_visible);
    let mut header = if wide {
        vec!["asset", "param"]
    } else {
        vec!["parameter"]
    };
    header.extend(["value", "age", "range", "step", "2P", "req"]);
    if wide {
        header.push("approvers");
    }
    let title = table_title("Writable parameters", focused, first, more);
    draw_table(frame, cx, (rows, widths, header), title, focused, area);
}

fn requests_table(
    frame: &mut Frame,
    cx: &Ctx,
    requests: &[&ParamRequestView],
    area: Rect,
    wide: bool,
) {
    let app = cx.app;
    let t = cx.theme;
    let focused = app.param_focus == ParamFocus::Requests;
    let rows_visible = table_rows(area.height);
    let first = request_offset(app, area);
    let sel = app
        .request_sel
        .as_ref()
        .and_then(|id| requests.iter().position(|r| r.id == *id));
    let mut widths = vec![Constraint::Length(if wide { 8 } else { 7 })];
    let mut header = vec!["id"];
    if wide {
        widths.extend([Constraint::Length(32), Constraint::Length(22)]);
        header.extend(["asset", "param"]);
    } else {
        widths.push(Constraint::Min(12));
        header.push("parameter");
    }
    widths.extend([
        Constraint::Length(if wide { 20 } else { 14 }),
        Constraint::Length(11),
        Constraint::Length(if wide { 10 } else { 7 }),
        Constraint::Length(if wide { 10 } else { 7 }),
        Constraint::Length(if wide { 8 } else { 7 }),
    ]);
    header.extend(["old → new", "state", "by", "decided", "due"]);
    if wide {
        widths.push(Constraint::Min(10));
        header.push("note");
    }
    let name_w = fill_width(area, &widths);
    let rows: Vec<Row> = requests
        .iter()
        .enumerate()
        .skip(first)
        .take(rows_visible)
        .map(|(i, r)| {
            let mut cells = vec![Cell::from(r.id.clone())];
            if wide {
                cells.push(Cell::from(fit(&r.asset, 32)));
                cells.push(Cell::from(fit(&r.param, 22)));
            } else {
                cells.push(Cell::from(fit_mid(
                    &format!("{} {}", r.asset, r.param),
                    name_w,
                )));
            }
            cells.extend([
                Cell::from(change(r)),
                Cell::from(Span::styled(state_label(r.state), t.param_state(r.state))),
                Cell::from(fit(&r.requested_by, if wide { 10 } else { 7 })),
                Cell::from(fit(
                    r.decided_by.as_deref().unwrap_or(DASH),
                    if wide { 10 } else { 7 },
                )),
                Cell::from(due(cx, r)),
            ]);
            if wide {
                cells.push(Cell::from(r.note.clone()));
            }
            // Nothing was sent: the whole row recedes.
            let mut style = if matches!(r.state, ParamState::Rejected | ParamState::Expired) {
                t.stale()
            } else {
                Style::new()
            };
            if focused && Some(i) == sel {
                style = style.patch(t.selected());
            }
            Row::new(cells).style(style)
        })
        .collect();
    let more = requests.len().saturating_sub(first + rows_visible);
    let title = table_title("Write requests, newest first", focused, first, more);
    draw_table(frame, cx, (rows, widths, header), title, focused, area);
}

/// One of the view's two tables in its box, the focused one's box in the
/// title style.
fn draw_table(
    frame: &mut Frame,
    cx: &Ctx,
    (rows, widths, header): (Vec<Row<'_>>, Vec<Constraint>, Vec<&str>),
    title: String,
    focused: bool,
    area: Rect,
) {
    let t = cx.theme;
    let block = Block::default().borders(Borders::ALL).title(title);
    let block = if focused {
        block.border_style(t.title())
    } else {
        block
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.title()))
        .block(block);
    frame.render_widget(table, area);
}

fn detail(
    frame: &mut Frame,
    cx: &Ctx,
    entries: &[&ParamEntryView],
    requests: &[&ParamRequestView],
    area: Rect,
) {
    let app = cx.app;
    let t = cx.theme;
    let text: Vec<Line> = match app.param_focus {
        ParamFocus::Requests => {
            let sel = app
                .request_sel
                .as_ref()
                .and_then(|id| requests.iter().find(|r| r.id == *id));
            match sel {
                Some(r) => vec![
                    Line::from(vec![
                        Span::raw(format!("{} {} ", r.id, r.requested_by)),
                        Span::styled(state_label(r.state), t.param_state(r.state)),
                        Span::raw(format!(": {}", r.reason)),
                    ]),
                    Line::from(format!(
                        "{} {} · {} · {} · requested {} UTC · decided by {}",
                        r.asset,
                        r.param,
                        change(r),
                        if r.two_person {
                            "two-person"
                        } else {
                            "one person"
                        },
                        utc_full(r.requested_ms),
                        r.decided_by.as_deref().unwrap_or(DASH),
                    )),
                    Line::from(format!(
                        "read-back {}{}",
                        value_text(r.readback, &r.unit),
                        // The note says it already after a confirmation.
                        if r.note.is_empty() || r.note.starts_with("the read-back") {
                            String::new()
                        } else {
                            format!(" · {}", r.note)
                        }
                    )),
                ],
                None if requests.is_empty() => vec![Line::from("No write request matches.")],
                None => vec![Line::from(
                    "↑/↓ selects a request; y approves, x rejects (another user's requested change).",
                )],
            }
        }
        ParamFocus::Params => {
            let sel = app.param_sel.as_ref().and_then(|(asset, param)| {
                entries
                    .iter()
                    .find(|e| e.asset == *asset && e.param == *param)
            });
            match sel {
                Some(e) => vec![
                    Line::from(format!(
                        "{} {} · {} · {} · {}",
                        e.asset,
                        e.param,
                        e.ty.as_str(),
                        value_text(e.value, &e.unit),
                        if e.two_person {
                            "a second person approves"
                        } else {
                            "no approval needed"
                        },
                    )),
                    Line::from(format!(
                        "may request: {} · may approve: {} · in flight: {}",
                        roles(&e.request_roles),
                        roles(&e.approve_roles),
                        e.in_flight.as_deref().unwrap_or("none"),
                    )),
                    Line::from("s requests a new value: VALUE REASON, then your signature."),
                ],
                None if entries.is_empty() => vec![Line::from(
                    "No writable parameter (none in the catalogue, or none has reported its read-back).",
                )],
                None => vec![Line::from(
                    "↑/↓ selects a parameter; s sets it · → the requests.",
                )],
            }
        }
    };
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .block(Block::default().borders(Borders::TOP)),
        area,
    );
}

fn roles(r: &[String]) -> String {
    if r.is_empty() {
        DASH.into()
    } else {
        r.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_middle_is_cut_and_unknown_is_a_dash() {
        assert_eq!(
            fit_mid("basel/packaging/line-1/filler speed", 19),
            "basel/…filler speed"
        );
        assert_eq!(fit_mid("short", 15), "short");
        assert_eq!(fit_mid("abcdef", 1), "…");
        assert_eq!(value_text(None, "%"), DASH);
        assert_eq!(value_text(Some(ParamValue::Float(80.0)), "%"), "80 %");
        assert_eq!(value_text(Some(ParamValue::Bool(true)), "x"), "true");
    }
}
