//! Drawing: a pure function of the [`App`], the viewer's wall time and the
//! theme, one component per view (fleet, site, line, energy, water, alarm
//! console, health, parameters) plus the header, the tabs, the banner, the footer and
//! the help. Draw functions read the state only.

mod alarms;
mod energy;
mod fleet;
mod format;
mod health;
mod help;
pub(crate) mod layout;
mod line;
mod params;
mod site;
mod theme;
mod water;

pub use format::fmt_age;
pub(crate) use params::range_label;
pub use theme::Theme;

use crate::app::{App, Prompt, View};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// What every draw function gets.
pub(crate) struct Ctx<'a> {
    pub app: &'a App,
    pub now_ms: i64,
    pub theme: Theme,
}

/// The site a site-level view shows, with what is known of it.
pub(crate) struct SiteCtx<'a> {
    pub site: std::sync::Arc<str>,
    pub view: Option<&'a crate::app::SiteView>,
    pub board: Option<&'a ctower_model::board::SiteBoard>,
    pub stale: bool,
}

/// The current site of the site, energy and water views; without one,
/// says so in `body` and gives `None`.
pub(crate) fn site_ctx<'a>(frame: &mut Frame, cx: &Ctx<'a>, body: Rect) -> Option<SiteCtx<'a>> {
    let app = cx.app;
    let Some(site) = app.current_site(cx.now_ms) else {
        frame.render_widget(Paragraph::new("No site yet."), body);
        return None;
    };
    let view = app.sites.get(&site);
    Some(SiteCtx {
        stale: app.site_is_stale(&site, cx.now_ms),
        board: view.and_then(|v| v.board.as_ref()),
        view,
        site,
    })
}

/// `STALE 3m05s` for figures published at `published_ms` (engine time),
/// `STALE (no data)` when there are none.
pub(crate) fn stale_label(cx: &Ctx, published_ms: Option<i64>) -> String {
    let age = published_ms.and_then(|p| cx.app.age_ms(p, cx.now_ms));
    format!("STALE {}", age.map_or("(no data)".into(), fmt_age))
}

/// Draws the dashboard at viewer wall time `now_ms`.
pub fn render(frame: &mut Frame, app: &App, now_ms: i64, theme: Theme) {
    let cx = Ctx { app, now_ms, theme };
    let a = layout::areas(app, frame.area(), now_ms);
    header(frame, &cx, a.header);
    tabs(frame, &cx, a.tabs);
    if let Some(b) = a.banner {
        banner(frame, &cx, b);
    }
    match app.view {
        View::Fleet => fleet::draw(frame, &cx, a.body),
        View::Site => site::draw(frame, &cx, a.body),
        View::Line => line::draw(frame, &cx, a.body),
        View::Energy => energy::draw(frame, &cx, a.body),
        View::Water => water::draw(frame, &cx, a.body),
        View::Alarms => alarms::draw(frame, &cx, a.body),
        View::Health => health::draw(frame, &cx, a.body),
        View::Params => params::draw(frame, &cx, a.body),
    }
    footer(frame, &cx, a.footer);
    if app.show_help {
        help::draw(frame, &cx, frame.area());
    }
}

fn header(frame: &mut Frame, cx: &Ctx, area: Rect) {
    let app = cx.app;
    let t = cx.theme;
    let mut spans = vec![Span::styled(app.title.clone(), t.title())];
    if let Some(s) = &app.status {
        spans.push(Span::raw(format!(" · {}", s.engine)));
    }
    let link = match app.disconnected(cx.now_ms) {
        Some(_) => Span::styled(" DISCONNECTED ", t.banner()),
        None => match (&app.prefix_hint, &app.link) {
            (_, crate::app::LinkState::Connecting) => Span::styled(" connecting… ", t.mark()),
            (Some(b), _) => Span::styled(format!(" ● {b} "), t.good()),
            (None, _) => Span::styled(" ● in-process ", t.good()),
        },
    };
    spans.push(Span::raw("  "));
    spans.push(link);
    let unacked = app.unacked();
    if unacked > 0 {
        spans.push(Span::styled(format!(" {unacked} unacked "), t.bad()));
    }
    spans.push(Span::raw(format!(" user {}", app.user)));
    if let Some(h) = &app.health {
        if let Some(w) = h.metrics.watermark_ms {
            spans.push(Span::raw(format!(" · data to {}", format::utc_hm(w))));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn tabs(frame: &mut Frame, cx: &Ctx, area: Rect) {
    let t = cx.theme;
    let mut spans = Vec::new();
    for (i, v) in View::ALL.iter().enumerate() {
        let label = layout::tab_label(cx.app, *v, i);
        let style = if *v == cx.app.view {
            t.selected().add_modifier(ratatui::style::Modifier::BOLD)
        } else {
            ratatui::style::Style::new()
        };
        spans.push(Span::styled(label, style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn banner(frame: &mut Frame, cx: &Ctx, area: Rect) {
    let t = cx.theme;
    let mut spans = Vec::new();
    if let Some(why) = cx.app.disconnected(cx.now_ms) {
        spans.push(Span::styled(
            format!(" ENGINE DISCONNECTED: {why}; the figures are the last known "),
            t.banner(),
        ));
    }
    if let Some(n) = cx.app.flood() {
        spans.push(Span::styled(
            format!(" ALARM FLOOD: {n} active alarms raised within 10 min "),
            t.banner(),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn footer(frame: &mut Frame, cx: &Ctx, area: Rect) {
    let t = cx.theme;
    let app = cx.app;
    let line = if let Some((p, text)) = &app.prompt {
        let label = match p {
            Prompt::Filter => "filter: ".to_string(),
            Prompt::Shelve(id) => format!("shelve {id} — MINUTES REASON: "),
            Prompt::Comment(id) => format!("comment on {id}: "),
            Prompt::SetParam(asset, param) => {
                let ty = app
                    .params
                    .entries
                    .iter()
                    .find(|e| e.asset == *asset && e.param == *param)
                    .map_or(String::new(), |e| {
                        if e.unit.is_empty() || e.ty == ctower_model::ParamType::Bool {
                            format!(" ({})", e.ty.as_str())
                        } else {
                            format!(" ({}, {})", e.ty.as_str(), e.unit)
                        }
                    });
                format!("set {asset} {param}{ty} — VALUE REASON: ")
            }
            Prompt::Reject(id) => format!("reject {id} — REASON: "),
            Prompt::Signature => format!("signature for {}: ", app.user),
        };
        // The signature is never drawn: a star per character.
        let typed = if *p == Prompt::Signature {
            "*".repeat(app.signature_typed.0.chars().count())
        } else {
            text.clone()
        };
        Line::from(vec![
            Span::styled(label, t.title()),
            Span::raw(typed),
            Span::styled("█", t.selected()),
            Span::raw("  (Enter: send · Esc: cancel)"),
        ])
    } else if let Some((n, err)) = app.notice() {
        let style = if err { t.bad() } else { t.good() };
        Line::from(Span::styled(n.to_string(), style))
    } else {
        let keys = match app.view {
            View::Fleet => {
                "↑↓←→ move · Enter site · / filter · o order · Tab views · ? help · q quit"
            }
            View::Site => "↑↓ line · Enter line · o sort · ←→ site · Esc fleet · ? help · q quit",
            View::Alarms => {
                "↑↓ alarm · a ack · s shelve · c comment · p priority · f state · / filter · ? help"
            }
            View::Params => {
                "↑↓ row · ←→ params/requests · s set · y approve · x reject · / filter · ? help"
            }
            _ => "←→ site · Tab views · Esc back · ? help · q quit",
        };
        Line::from(Span::styled(keys, t.stale()))
    };
    frame.render_widget(Paragraph::new(line), area);
}
