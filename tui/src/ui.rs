//! Rendering: a pure function of the [`App`] state and the wall time.

use crate::app::App;
use chrono::{DateTime, Utc};
use ctower_model::{AlarmEvent, AlarmState, KpiRecord, Level, Priority, ScopeKey};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Cell, Clear, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

/// Smallest tile width, borders included.
const TILE_MIN_W: u16 = 26;
/// Largest tile width, so a few sites on a wide screen stay compact.
const TILE_MAX_W: u16 = 40;
/// Tile height: five lines of content and the borders.
const TILE_H: u16 = 8;
/// From this width on the alarm table shows rules and full timestamps.
const WIDE_ALARMS_W: u16 = 120;

const DASH: &str = "—";

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

    render_header(frame, app, header);
    render_footer(frame, footer);

    if app.site_count() == 0 {
        render_waiting(frame, app, body);
    } else {
        let tile_rows = tile_rows_shown(app.site_count(), body);
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
        render_tiles(frame, app, tiles, now_ms);
        render_lines(frame, app, lines);
        render_alarms(frame, app, alarms);
    }

    if app.show_help() {
        render_help(frame, area);
    }
}

// ---------------------------------------------------------------- header

fn render_header(frame: &mut Frame, app: &App, area: Rect) {
    let [top, bottom] = Layout::vertical([Constraint::Length(1); 2]).areas(area);

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
    // The time of the newest data, shorter when the title needs the room.
    let title_w = Line::from(title.clone()).width();
    let as_of = match app.newest_window_end_ms() {
        Some(t) => ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m-%d %H:%M"]
            .into_iter()
            .map(|f| format!("  data to {} UTC ", fmt_utc(t, f)))
            .find(|s| title_w + s.chars().count() <= usize::from(top.width))
            .unwrap_or_default(),
        None => "  no data yet ".to_string(),
    };
    let as_of_w = as_of.chars().count() as u16;
    let [left, right] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(as_of_w)]).areas(top);
    frame.render_widget(Line::from(title), left);
    frame.render_widget(Line::from(as_of).right_aligned().bold(), right);

    let sep = || Span::raw(" │ ").dark_gray();
    let mut spans = vec![Span::raw(" ")];
    match app.metrics() {
        Some(m) => {
            spans.push(Span::raw(format!(
                "ingest {} msg/s",
                fmt_rate(m.ingest_rate_per_s)
            )));
            spans.push(sep());
            spans.push(Span::raw(format!(
                "watermark lag {}",
                fmt_duration_ms(m.watermark_lag_ms)
            )));
            spans.push(sep());
            let dl = m.dead_letter_total();
            let dl_span = Span::raw(format!("dead letters {dl}"));
            spans.push(if dl > 0 { dl_span.yellow() } else { dl_span });
            for f in &m.faults {
                spans.push(sep());
                spans.push(
                    Span::raw(format!(
                        "{}: {} ({}, {} lost)",
                        f.stage, f.error, f.path, f.lost
                    ))
                    .red()
                    .bold(),
                );
            }
            if app.corrections() > 0 {
                spans.push(sep());
                spans.push(Span::raw(format!("corrections {}", app.corrections())).cyan());
            }
        }
        None => spans.push(Span::raw("pipeline metrics: none yet").dark_gray()),
    }
    spans.push(sep());
    let alarms = app.alarm_count();
    let unack = app.unacked_count();
    let alarm_span = Span::raw(format!("alarms {alarms} ({unack} unack)"));
    spans.push(if unack > 0 {
        alarm_span.red().bold()
    } else if alarms > 0 {
        alarm_span.yellow()
    } else {
        alarm_span
    });
    frame.render_widget(Line::from(spans), bottom);
}

fn render_footer(frame: &mut Frame, area: Rect) {
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

fn render_waiting(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(" Sites ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut text = vec![
        Line::from("Waiting for data…").bold(),
        Line::from(""),
        Line::from("No KPI window has closed yet. Sites appear here"),
        Line::from("as soon as the pipeline publishes their first window."),
    ];
    if app.feed_lost() {
        text.push(Line::from(""));
        text.push(Line::from("The update feed is disconnected.").red());
    }
    let h = text.len() as u16;
    let centered = inner.centered_vertically(Constraint::Length(h));
    frame.render_widget(
        Paragraph::new(text)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        centered,
    );
}

// ---------------------------------------------------------------- tiles

fn tiles_per_row(n_sites: usize, width: u16) -> usize {
    (width / TILE_MIN_W).max(1).min(n_sites.max(1) as u16) as usize
}

/// How many rows of tiles to show: all of them when they fit in about half
/// of the body, else as many as do (at least one).
fn tile_rows_shown(n_sites: usize, body: Rect) -> u16 {
    let per_row = tiles_per_row(n_sites, body.width);
    let needed = n_sites.div_ceil(per_row) as u16;
    let fit = (body.height / 2 / TILE_H).max(1);
    needed.min(fit)
}

fn render_tiles(frame: &mut Frame, app: &App, area: Rect, now_ms: i64) {
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
        let selected = i == app.selected_index();
        let tile = SiteTile {
            index: i,
            name: site,
            kpi: state.kpi.as_ref(),
            last_shift: state.last_shift.as_ref(),
            last_update_ms: state.last_update_ms,
            alarms: app.site_alarm_count(site),
            stale: app.site_is_stale(site),
            selected,
        };
        tile.render(frame, rect, now_ms);
    }
}

struct SiteTile<'a> {
    index: usize,
    name: &'a str,
    kpi: Option<&'a KpiRecord>,
    last_shift: Option<&'a KpiRecord>,
    last_update_ms: Option<i64>,
    alarms: usize,
    stale: bool,
    selected: bool,
}

impl SiteTile<'_> {
    fn render(&self, frame: &mut Frame, area: Rect, now_ms: i64) {
        let marker = if self.selected { "▶" } else { " " };
        let title = format!("{marker}{} {} ", self.index + 1, self.name);
        let mut block = Block::bordered().title(Line::from(title));
        if self.alarms > 0 {
            let alarms = Span::from(format!(" ALARMS {} ", self.alarms)).bold().red();
            block = block.title_top(Line::from(alarms).right_aligned());
        }
        block = if self.selected {
            block
                .border_type(BorderType::Thick)
                .border_style(Style::new().cyan().bold())
                .title_style(Style::new().cyan().bold())
        } else {
            block.border_style(Style::new().dark_gray())
        };
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let w = inner.width as usize;

        let mut lines = Vec::with_capacity(6);
        match self.kpi {
            Some(k) => {
                let r = &k.ratios;
                let oee_style = r.oee.map_or(Style::new(), oee_style);
                lines.push(Line::from(vec![
                    Span::raw("OEE "),
                    Span::raw(fmt_pct(r.oee)).style(oee_style.bold()),
                ]));
                // P as the OEE uses it (at most 100 %), so that the three
                // factors shown multiply to the OEE shown; `↑` marks a
                // measured performance above 100 % (the ideal cycle time is
                // probably too long).
                let p = r.performance.map(|p| p.min(1.0));
                let above = if r.ideal_rate_suspect { "↑" } else { "" };
                let apq = format!(
                    "A {} P {}{above} Q {}",
                    fmt_pct(r.availability),
                    fmt_pct(p),
                    fmt_pct(r.quality)
                );
                let apq = if apq.chars().count() <= w {
                    apq
                } else {
                    format!(
                        "A {} P {}{above} Q {}",
                        fmt_pct0(r.availability),
                        fmt_pct0(p),
                        fmt_pct0(r.quality)
                    )
                };
                lines.push(Line::from(apq));
                let kw = match (k.sums.power_kw, avg_kw(k)) {
                    (Some(kw), _) => format!("{} kW", fmt_num(kw)),
                    (None, Some(avg)) => format!("~{} kW", fmt_num(avg)),
                    (None, None) => format!("{DASH} kW"),
                };
                lines.push(Line::from(format!(
                    "{kw} · {} kWh/u",
                    fmt_opt(r.kwh_per_good_unit)
                )));
                lines.push(Line::from(format!(
                    "water recovery {}",
                    fmt_pct(r.water_recovery)
                )));
            }
            None => {
                lines.push(Line::from("no site KPI yet").dark_gray());
                lines.extend(std::iter::repeat_n(Line::from(""), 3));
            }
        }
        // The shift now (from the calendar) and the last one that ended.
        let mut shift = Vec::new();
        if let Some(now) = self.kpi.and_then(|k| k.shift.as_deref()) {
            shift.push(Span::raw(format!("shift {now}")));
        }
        if let Some(s) = self.last_shift {
            if !shift.is_empty() {
                shift.push(Span::raw(" · ").dark_gray());
            }
            let name = s.shift.as_deref().unwrap_or("?");
            let rev = if s.revision > 0 { "*" } else { "" };
            shift.push(Span::raw(format!(
                "{name} OEE {}{rev}",
                fmt_pct(s.ratios.oee)
            )));
        }
        let shift = Line::from(shift);
        lines.push(if shift.width() <= w {
            shift
        } else {
            Line::from("")
        });
        let age = match self.last_update_ms {
            Some(t) if self.stale => fmt_age(now_ms - t),
            Some(t) => format!("updated {}", fmt_age(now_ms - t)),
            None => "no data".to_string(),
        };
        let mut status = Vec::new();
        if self.stale {
            status.push(Span::from(" STALE ").bold().black().on_yellow());
            status.push(Span::raw(" "));
        }
        status.push(Span::raw(age));
        if self.stale {
            if let Some(c) = self.kpi.and_then(|k| k.ratios.data_coverage) {
                if c < crate::app::STALE_COVERAGE {
                    let cov = Span::raw(format!(" · data {}", fmt_pct0(Some(c)))).yellow();
                    // Only when it fits whole: a cut percentage would mislead.
                    if Line::from(status.clone()).width() + cov.width() <= w {
                        status.push(cov);
                    }
                }
            }
        }
        lines.push(Line::from(status));
        let lines: Vec<Line> = lines.into_iter().map(|l| truncate_line(l, w)).collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

// ---------------------------------------------------------------- lines

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

fn right(s: impl Into<String>) -> Cell<'static> {
    Cell::from(Line::from(s.into()).right_aligned())
}

fn render_lines(frame: &mut Frame, app: &App, area: Rect) {
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

    let rows: Vec<Row> = app
        .lines_of(site)
        .map(|k| {
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
        })
        .collect();
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

// ---------------------------------------------------------------- alarms

fn render_alarms(frame: &mut Frame, app: &App, area: Rect) {
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
    let value_w = rows
        .iter()
        .map(|r| r.value.chars().count())
        .chain(["Value vs limit".len()])
        .max()
        .unwrap_or(0) as u16;

    // Scope, rule and message get their natural widths when they fit; else
    // scope and rule get theirs up to a half and a quarter of the room, and
    // the message the rest: where and what first, the wording after.
    fn natural(rows: &[AlarmRow], f: impl Fn(&AlarmRow) -> usize, header: &str) -> u16 {
        rows.iter()
            .map(f)
            .chain([header.chars().count()])
            .max()
            .unwrap_or(0) as u16
    }
    let mut scope_w = natural(&rows, |r| r.scope.chars().count(), "Scope");
    let rule_w = natural(
        &rows,
        |r| r.rule.as_ref().map_or(0, |s| s.chars().count()),
        "Rule",
    );
    let message_w = natural(&rows, |r| r.message.chars().count(), "Message");
    let inner_w = area.width.saturating_sub(2);
    let fixed = if wide {
        8 + 9 + value_w + 16 + 6
    } else {
        4 + 5 + value_w + 5 + 5
    };
    let room = inner_w.saturating_sub(fixed);
    if !wide && scope_w + message_w > room {
        // Narrow and short of room: leave the area and the signal out.
        for r in &mut rows {
            r.scope = std::mem::take(&mut r.compact_scope);
        }
        scope_w = natural(&rows, |r| r.scope.chars().count(), "Scope");
    }
    let flexible = if wide {
        scope_w + rule_w + message_w
    } else {
        scope_w + message_w
    };
    let (scope_c, rule_c, message_c) = if flexible <= room {
        (
            Constraint::Length(scope_w),
            Constraint::Length(rule_w),
            Constraint::Fill(1),
        )
    } else {
        (
            Constraint::Length(scope_w.min(room / 2)),
            Constraint::Length(rule_w.min(room / 4)),
            Constraint::Fill(1),
        )
    };

    let (header, widths): (Vec<&str>, Vec<Constraint>) = if wide {
        (
            vec![
                "Priority",
                "State",
                "Scope",
                "Rule",
                "Message",
                "Value vs limit",
                "Event time UTC",
            ],
            vec![
                Constraint::Length(8),
                Constraint::Length(9),
                scope_c,
                rule_c,
                message_c,
                Constraint::Length(value_w),
                Constraint::Length(16),
            ],
        )
    } else {
        (
            vec!["Pri", "State", "Scope", "Message", "Value vs limit", "UTC"],
            vec![
                Constraint::Length(4),
                Constraint::Length(5),
                scope_c,
                message_c,
                Constraint::Length(value_w),
                Constraint::Length(5),
            ],
        )
    };
    let header = Row::new(header).bold().underlined();
    let table = Table::new(rows.into_iter().map(AlarmRow::into_row), widths)
        .header(header)
        .column_spacing(1)
        .block(block);
    frame.render_widget(table, area);
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

// ---------------------------------------------------------------- help

fn render_help(frame: &mut Frame, area: Rect) {
    let key = |k: &'static str| Span::from(format!("{k:<17}")).bold().cyan();
    let text = vec![
        Line::from(vec![key("← / →"), Span::raw("previous / next site")]),
        Line::from(vec![
            key("Tab / Shift-Tab"),
            Span::raw("next / previous site"),
        ]),
        Line::from(vec![key("1 … 9"), Span::raw("jump to site n")]),
        Line::from(vec![key("?"), Span::raw("show / hide this help")]),
        Line::from(vec![key("Esc"), Span::raw("close help, else quit")]),
        Line::from(vec![key("q, Ctrl-C"), Span::raw("quit")]),
        Line::from(""),
        Line::from("OEE: ≥ 85 % green, ≥ 60 % yellow, else red.").dark_gray(),
        Line::from("P↑: measured above 100 % (ideal rate too slow?).").dark_gray(),
        Line::from("kW: last reading; ~kW: mean from the kWh meters.").dark_gray(),
        Line::from("STALE: data for < 90 % of the time, or silent.").dark_gray(),
        Line::from("RTN: alarm cleared, not yet acknowledged.").dark_gray(),
        Line::from("Times are event times, UTC.").dark_gray(),
    ];
    let h = text.len() as u16 + 2;
    let popup = area.centered(Constraint::Length(52), Constraint::Length(h));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(text).block(
            Block::bordered()
                .border_type(BorderType::Double)
                .title(" Help — keys ")
                .title_bottom(Line::from(" ? or Esc to close ").right_aligned()),
        ),
        popup,
    );
}

// ---------------------------------------------------------------- formatting

/// OEE colour bands: green from 85 %, yellow from 60 %, red below.
pub(crate) fn oee_style(oee: f64) -> Style {
    if oee >= 0.85 {
        Style::new().fg(Color::Green)
    } else if oee >= 0.6 {
        Style::new().fg(Color::Yellow)
    } else {
        Style::new().fg(Color::Red)
    }
}

/// Mean power over the window from the energy meters, kW.
fn avg_kw(k: &KpiRecord) -> Option<f64> {
    let window_ms = k.window_end_ms - k.window_start_ms;
    // Unknown where no meter measured the window (a silent meter is not 0 kW).
    let kwh = k
        .sums
        .energy_kwh
        .filter(|_| k.sums.energy_measured_ms > 0)?;
    (window_ms > 0).then(|| kwh * 3_600_000.0 / window_ms as f64)
}

fn fmt_pct(v: Option<f64>) -> String {
    v.map_or(DASH.to_string(), |v| format!("{:.1}%", v * 100.0))
}

fn fmt_pct0(v: Option<f64>) -> String {
    v.map_or(DASH.to_string(), |v| format!("{:.0}%", v * 100.0))
}

fn fmt_pct_bare(v: Option<f64>) -> String {
    v.map_or(DASH.to_string(), |v| format!("{:.1}", v * 100.0))
}

/// Three significant digits or so, never scientific notation.
/// A count that may be unknown (no counter data): a dash, never 0.
fn fmt_count(v: Option<u64>) -> String {
    v.map_or(DASH.to_string(), |v| v.to_string())
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        DASH.to_string()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a == 0.0 {
        "0".to_string()
    } else {
        // Three significant digits, at most four decimals: 0.523, 0.0523, 0.0052.
        let decimals = (2 - a.log10().floor() as i32).clamp(3, 4) as usize;
        format!("{v:.decimals$}")
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or(DASH.to_string(), fmt_num)
}

fn fmt_minutes(ms: i64) -> String {
    let min = ms as f64 / 60_000.0;
    if min >= 100.0 {
        format!("{min:.0}")
    } else {
        format!("{min:.1}")
    }
}

fn fmt_rate(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

fn fmt_duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{:.1} s", ms as f64 / 1_000.0)
    } else if ms < 7_200_000 {
        format!("{:.1} min", ms as f64 / 60_000.0)
    } else {
        format!("{:.1} h", ms as f64 / 3_600_000.0)
    }
}

/// Wall-time age, coarse: `3 s ago`, `4 min ago`, `2 h ago`.
fn fmt_age(ms: i64) -> String {
    let s = ms.max(0) / 1_000;
    if s < 120 {
        format!("{s} s ago")
    } else if s < 7_200 {
        format!("{} min ago", s / 60)
    } else {
        format!("{} h ago", s / 3_600)
    }
}

/// Metrics that are ratios are shown as percentages.
fn fmt_metric(metric: &str, v: f64) -> String {
    match metric {
        "availability" | "performance" | "quality" | "oee" | "water_recovery" | "data_coverage" => {
            fmt_pct(Some(v))
        }
        _ => fmt_num(v),
    }
}

fn fmt_utc(ms: i64, fmt: &str) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(|| DASH.to_string(), |t| t.format(fmt).to_string())
}

/// Cuts a line to `width` characters so a narrow tile never wraps.
fn truncate_line(line: Line<'static>, width: usize) -> Line<'static> {
    if line.width() <= width {
        return line;
    }
    let mut left = width;
    let mut spans = Vec::new();
    for span in line.spans {
        if left == 0 {
            break;
        }
        let n = span.content.chars().count();
        if n <= left {
            left -= n;
            spans.push(span);
        } else {
            let cut: String = span.content.chars().take(left).collect();
            spans.push(Span::styled(cut, span.style));
            left = 0;
        }
    }
    Line::from(spans).style(line.style)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(fmt_pct(Some(0.698_074)), "69.8%");
        assert_eq!(fmt_pct(None), "—");
        assert_eq!(fmt_num(412.34), "412");
        assert_eq!(fmt_num(41.234), "41.2");
        assert_eq!(fmt_num(0.523), "0.523");
        assert_eq!(fmt_num(0.0523), "0.0523");
        assert_eq!(fmt_num(0.00691), "0.0069");
        assert_eq!(fmt_num(f64::NAN), "—");
        assert_eq!(fmt_duration_ms(4_200), "4.2 s");
        assert_eq!(fmt_duration_ms(850), "850 ms");
        assert_eq!(fmt_age(3_400), "3 s ago");
        assert_eq!(fmt_age(300_000), "5 min ago");
        assert_eq!(fmt_metric("oee", 0.55), "55.0%");
        assert_eq!(fmt_metric("temp_c", 8.25), "8.25");
    }

    #[test]
    fn oee_bands() {
        assert_eq!(oee_style(0.85).fg, Some(Color::Green));
        assert_eq!(oee_style(0.849).fg, Some(Color::Yellow));
        assert_eq!(oee_style(0.6).fg, Some(Color::Yellow));
        assert_eq!(oee_style(0.59).fg, Some(Color::Red));
    }
}
