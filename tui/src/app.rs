//! The dashboard's state: pure, no I/O, no clock of its own (the wall
//! time is passed in). Everything on screen is drawn from it by
//! [`crate::render`]; the terminal loop feeds it the feed's messages,
//! keys, mouse clicks and replies ([`crate::AppEvent`]).

use ctower_model::board::{
    BoardHealth, BoardMessage, BoardTopic, EngineStatus, LineBoard, SiteBoard, SiteTrend,
    TrendPoint, BOARD_VERSION,
};
use ctower_model::{
    AlarmEvent, AlarmId, AlarmState, CommandReply, CommandRequest, ParamEntryView,
    ParamRequestView, Priority, Signature,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Data coverage below which a figure is marked partial.
pub const PARTIAL_COVERAGE: f64 = 0.9;

/// The views, in Tab order; their digit is their position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum View {
    /// A tile per site.
    Fleet,
    /// The lines of a site.
    Site,
    /// One line: timeline and counters.
    Line,
    /// A site's energy.
    Energy,
    /// A site's water.
    Water,
    /// The alarm console.
    Alarms,
    /// The pipeline's health.
    Health,
    /// The writable parameters and the write requests.
    Params,
}

impl View {
    /// Every view, in Tab order.
    pub const ALL: [View; 8] = [
        View::Fleet,
        View::Site,
        View::Line,
        View::Energy,
        View::Water,
        View::Alarms,
        View::Health,
        View::Params,
    ];

    /// Its tab label.
    pub fn label(self) -> &'static str {
        match self {
            View::Fleet => "Fleet",
            View::Site => "Site",
            View::Line => "Line",
            View::Energy => "Energy",
            View::Water => "Water",
            View::Alarms => "Alarms",
            View::Health => "Health",
            View::Params => "Params",
        }
    }
}

/// The link to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Not yet connected.
    Connecting,
    /// Connected to the broker (or in-process).
    Up,
    /// The broker connection is lost: why.
    Lost(String),
}

/// How the fleet's tiles are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetOrder {
    /// Sites in trouble first: unacknowledged urgent/high alarms, stale,
    /// lowest OEE.
    Trouble,
    /// By name.
    Name,
    /// By shift OEE, lowest first.
    Oee,
}

/// The alarm console's state filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    /// Every listed alarm.
    All,
    /// Waiting for an acknowledgement.
    Unacked,
    /// Active (acknowledged or not).
    Active,
    /// Shelved, suppressed or out of service.
    Masked,
}

impl StateFilter {
    /// Its label.
    pub fn label(self) -> &'static str {
        match self {
            StateFilter::All => "all",
            StateFilter::Unacked => "unacked",
            StateFilter::Active => "active",
            StateFilter::Masked => "shelved/oos",
        }
    }

    /// Whether `s` passes.
    pub fn admits(self, s: AlarmState) -> bool {
        match self {
            StateFilter::All => true,
            StateFilter::Unacked => matches!(s, AlarmState::UnackActive | AlarmState::UnackRtn),
            StateFilter::Active => s.is_active(),
            StateFilter::Masked => !matches!(
                s,
                AlarmState::UnackActive
                    | AlarmState::UnackRtn
                    | AlarmState::AckActive
                    | AlarmState::Normal
            ),
        }
    }
}

/// What the operator is typing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// The `/` filter of the current view.
    Filter,
    /// Shelve the alarm: "MINUTES REASON".
    Shelve(AlarmId),
    /// A comment on the alarm.
    Comment(AlarmId),
    /// Request a write of the parameter (asset, param): "VALUE REASON".
    SetParam(String, String),
    /// Reject the write request: "REASON".
    Reject(String),
    /// The user's signature secret, before the first signed request of
    /// the session. What is typed is kept masked in the [`App`], never in
    /// the prompt's text.
    Signature,
}

/// Which table of the parameter view the cursor is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamFocus {
    /// The writable parameters.
    Params,
    /// The write requests.
    Requests,
}

/// A site as known: its figures and its trend.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteView {
    /// The newest figures.
    pub board: Option<SiteBoard>,
    /// The newest trend (joined with the figures' recent points).
    pub trend: Option<SiteTrend>,
}

impl SiteView {
    /// The shift's points: the trend's, then the newer recent ones.
    pub fn points(&self) -> Vec<TrendPoint> {
        let mut v: Vec<TrendPoint> = self
            .trend
            .as_ref()
            .map(|t| t.shift.clone())
            .unwrap_or_default();
        if let Some(b) = &self.board {
            let shift_start = b.shift.as_ref().map_or(i64::MIN, |s| s.start_ms);
            v.retain(|p| p.end_ms > shift_start);
            let last = v.last().map_or(i64::MIN, |p| p.end_ms);
            for p in &b.recent {
                if p.end_ms > last && p.end_ms > shift_start {
                    v.push(p.clone());
                } else if let Some(q) = v.iter_mut().find(|q| q.end_ms == p.end_ms) {
                    // A recent point is newer (a correction, the water maxima).
                    *q = p.clone();
                }
            }
        }
        v
    }
}

/// A line: site, area, line.
pub type LineKey = (Arc<str>, Arc<str>, Arc<str>);

/// The dashboard state.
#[derive(Debug, Clone)]
pub struct App {
    pub(crate) title: String,
    pub(crate) user: String,
    pub(crate) prefix_hint: Option<String>,
    pub(crate) link: LinkState,
    /// Whether the engine is watched by its heartbeat (attached over MQTT).
    pub(crate) heartbeat_ms: Option<i64>,
    pub(crate) status: Option<EngineStatus>,
    /// Viewer wall time when the status arrived.
    pub(crate) status_at_ms: Option<i64>,
    pub(crate) health: Option<BoardHealth>,
    pub(crate) sites: BTreeMap<Arc<str>, SiteView>,
    pub(crate) lines: BTreeMap<LineKey, LineBoard>,
    pub(crate) alarms: BTreeMap<String, AlarmEvent>,
    /// The writable parameters (`board/params`).
    pub(crate) params: ctower_model::ParamBoard,
    /// Parameter write requests by id (`board/param/<id>`).
    pub(crate) param_requests: BTreeMap<String, ctower_model::ParamRequestView>,
    pub(crate) bad_messages: u64,
    pub(crate) last_bad: Option<String>,
    pub(crate) view: View,
    pub(crate) site: Option<Arc<str>>,
    pub(crate) line: Option<(Arc<str>, Arc<str>)>,
    pub(crate) fleet_order: FleetOrder,
    pub(crate) fleet_sel: usize,
    pub(crate) line_sel: usize,
    pub(crate) line_order: usize,
    pub(crate) alarm_sel: Option<AlarmId>,
    pub(crate) min_priority: Priority,
    pub(crate) state_filter: StateFilter,
    pub(crate) health_scroll: usize,
    /// The parameter view's table with the cursor.
    pub(crate) param_focus: ParamFocus,
    /// The parameter under the cursor (asset, param).
    pub(crate) param_sel: Option<(String, String)>,
    /// The write request under the cursor.
    pub(crate) request_sel: Option<String>,
    /// The user's signature secret, kept for the session once typed
    /// (never drawn; its `Debug` is redacted).
    pub(crate) signature: Option<Signature>,
    /// The signature being typed at the signature prompt (masked).
    pub(crate) signature_typed: Signature,
    /// When the session's signature was last typed or used (the viewer's
    /// clock, ms): idle longer than [`crate::keys::SIGNATURE_IDLE_MS`], it
    /// is forgotten and asked again (21 CFR 11.200: a signing session ends).
    pub(crate) signature_used_ms: i64,
    /// The time of the key being handled (the viewer's clock, ms).
    pub(crate) key_ms: i64,
    /// The request waiting for the signature prompt, and what it is.
    pub(crate) unsigned: Option<(CommandRequest, String)>,
    /// Requests sent with a signature, waiting for their reply.
    pub(crate) signed: BTreeSet<String>,
    /// The `/` filters: of the fleet (site names), of a site's lines,
    /// of the console (alarm ids), of the parameter view (asset/param,
    /// request ids); each view keeps its own.
    pub(crate) filters: [String; 4],
    pub(crate) prompt: Option<(Prompt, String)>,
    pub(crate) notice: Option<(String, bool)>,
    pub(crate) show_help: bool,
    pub(crate) next_request: u64,
    pub(crate) pending: BTreeMap<String, String>,
    /// The terminal's size at the last frame (for the mouse and the grid).
    pub(crate) screen: ratatui::layout::Rect,
}

impl App {
    /// An empty dashboard titled `title`, acting as `user`.
    pub fn new(title: impl Into<String>, user: impl Into<String>) -> App {
        App {
            title: title.into(),
            user: user.into(),
            prefix_hint: None,
            link: LinkState::Connecting,
            heartbeat_ms: None,
            status: None,
            status_at_ms: None,
            health: None,
            sites: BTreeMap::new(),
            lines: BTreeMap::new(),
            alarms: BTreeMap::new(),
            params: ctower_model::ParamBoard::default(),
            param_requests: BTreeMap::new(),
            bad_messages: 0,
            last_bad: None,
            view: View::Fleet,
            site: None,
            line: None,
            fleet_order: FleetOrder::Trouble,
            fleet_sel: 0,
            line_sel: 0,
            line_order: 0,
            alarm_sel: None,
            min_priority: Priority::Low,
            state_filter: StateFilter::All,
            health_scroll: 0,
            param_focus: ParamFocus::Params,
            param_sel: None,
            request_sel: None,
            signature: None,
            signature_typed: Signature(String::new()),
            signature_used_ms: 0,
            key_ms: 0,
            unsigned: None,
            signed: BTreeSet::new(),
            filters: Default::default(),
            prompt: None,
            notice: None,
            show_help: false,
            next_request: 1,
            pending: BTreeMap::new(),
            screen: ratatui::layout::Rect::new(0, 0, 80, 24),
        }
    }

    /// Attached over MQTT to `broker`: the engine is taken for gone when
    /// its heartbeat is older than `heartbeat_timeout_ms`.
    pub fn attached(mut self, broker: impl Into<String>, heartbeat_timeout_ms: i64) -> App {
        self.prefix_hint = Some(broker.into());
        self.heartbeat_ms = Some(heartbeat_timeout_ms);
        self
    }

    /// The terminal's size (each frame, and on a resize).
    pub fn set_screen(&mut self, screen: ratatui::layout::Rect) {
        self.screen = screen;
    }

    /// The link's state changed. Back up after a loss, the alarms are
    /// forgotten: the broker sends every current one again (retained), and
    /// one that returned to normal meanwhile would otherwise stay listed.
    pub fn set_link(&mut self, link: LinkState) {
        if link == LinkState::Up && matches!(self.link, LinkState::Lost(_)) {
            self.alarms.clear();
            self.param_requests.clear();
        }
        self.link = link;
    }

    /// One message of the feed received at viewer wall time `now_ms`.
    /// A payload that does not parse is counted and shown on the health
    /// view, never applied.
    pub fn apply(&mut self, m: &BoardMessage, now_ms: i64) {
        let bad = |app: &mut App, what: String| {
            app.bad_messages += 1;
            app.last_bad = Some(what);
        };
        let payload = m.payload.as_deref();
        macro_rules! parse {
            ($t:ty) => {
                match payload.map(serde_json::from_slice::<$t>) {
                    Some(Ok(v)) => Some(v),
                    Some(Err(e)) => {
                        bad(self, format!("{:?}: {e}", m.topic));
                        return;
                    }
                    None => None,
                }
            };
        }
        match &m.topic {
            BoardTopic::Status => {
                if let Some(s) = parse!(EngineStatus) {
                    if s.version != BOARD_VERSION {
                        bad(
                            self,
                            format!(
                                "the engine's feed is version {}, this viewer reads {BOARD_VERSION}",
                                s.version
                            ),
                        );
                        return;
                    }
                    if s.online {
                        self.status = Some(s);
                        self.status_at_ms = Some(now_ms);
                    } else {
                        // The will carries no time of its own: the ages
                        // go on from the last online status; without one
                        // they are unknown.
                        match &mut self.status {
                            Some(last) if last.online => last.online = false,
                            _ => {
                                self.status = Some(s);
                                self.status_at_ms = None;
                            }
                        }
                    }
                }
            }
            BoardTopic::Health => {
                if let Some(h) = parse!(BoardHealth) {
                    self.health = Some(h);
                }
            }
            BoardTopic::Site(name) => {
                if let Some(b) = parse!(SiteBoard) {
                    self.sites.entry(name.clone()).or_default().board = Some(b);
                }
            }
            BoardTopic::Trend(name) => {
                if let Some(t) = parse!(SiteTrend) {
                    self.sites.entry(name.clone()).or_default().trend = Some(t);
                }
            }
            BoardTopic::Line(s, a, l) => {
                if let Some(b) = parse!(LineBoard) {
                    self.sites.entry(s.clone()).or_default();
                    self.lines.insert((s.clone(), a.clone(), l.clone()), b);
                }
            }
            BoardTopic::Alarm(key) => match parse!(AlarmEvent) {
                Some(ev) => {
                    if let Some(site) = &ev.scope.site {
                        self.sites.entry(site.clone()).or_default();
                    }
                    if ev.kind == ctower_model::AlarmEventKind::Acknowledged {
                        self.note(format!("acknowledged {}", ev.id()), false);
                    }
                    self.alarms.insert(key.clone(), ev);
                }
                None => {
                    self.alarms.remove(key);
                }
            },
            BoardTopic::Params => {
                if let Some(p) = parse!(ctower_model::ParamBoard) {
                    self.params = p;
                }
            }
            BoardTopic::Param(id) => match parse!(ctower_model::ParamRequestView) {
                Some(r) => {
                    self.param_requests.insert(id.clone(), r);
                }
                None => {
                    self.param_requests.remove(id);
                }
            },
        }
    }

    /// A reply to one of this viewer's requests. A signed request's reply
    /// carries the write request after it (shown at once, unless the feed
    /// already brought a newer state); a signed request refused for its
    /// signature forgets the session's signature, so the next one asks
    /// for it again.
    pub fn on_reply(&mut self, r: &CommandReply) {
        let what = self
            .pending
            .remove(&r.id)
            .unwrap_or_else(|| "request".into());
        let signed = self.signed.remove(&r.id);
        if signed {
            for req in &r.requests {
                let newer = self
                    .param_requests
                    .get(&req.id)
                    .is_none_or(|known| known.updated_ms <= req.updated_ms);
                if newer {
                    self.param_requests.insert(req.id.clone(), req.clone());
                }
            }
        }
        if r.ok {
            let after = match (signed, r.requests.first()) {
                (true, Some(req)) => format!(" ({} {})", req.id, req.state.as_str()),
                _ => String::new(),
            };
            self.note(format!("{what}: done{after}"), false);
        } else if signed && r.message.to_lowercase().contains("signature") {
            self.signature = None;
            self.note(
                format!(
                    "{what}: REFUSED: {}; the signature will be asked again",
                    r.message
                ),
                true,
            );
        } else {
            self.note(format!("{what}: REFUSED: {}", r.message), true);
        }
    }

    /// A request could not be sent.
    pub fn send_failed(&mut self, req: &CommandRequest, why: &str) {
        self.pending.remove(&req.id);
        self.signed.remove(&req.id);
        self.note(format!("not sent: {why}"), true);
    }

    pub(crate) fn note(&mut self, text: String, error: bool) {
        self.notice = Some((text, error));
    }

    /// The notice of the footer, and whether it is an error.
    pub fn notice(&self) -> Option<(&str, bool)> {
        self.notice.as_ref().map(|(t, e)| (t.as_str(), *e))
    }

    /// Which filter the view uses: the fleet's for the fleet and every
    /// view of a site chosen from it, the lines' for the site view, the
    /// console's.
    pub(crate) fn filter_index(&self) -> usize {
        match self.view {
            View::Site => 1,
            View::Alarms => 2,
            View::Params => 3,
            _ => 0,
        }
    }

    /// The current view's `/` filter.
    pub fn filter(&self) -> &str {
        &self.filters[self.filter_index()]
    }

    pub(crate) fn filter_mut(&mut self) -> &mut String {
        let i = self.filter_index();
        &mut self.filters[i]
    }

    /// The view shown.
    pub fn view(&self) -> View {
        self.view
    }

    /// The engine's newest status.
    pub fn status(&self) -> Option<&EngineStatus> {
        self.status.as_ref()
    }

    /// Why the engine is taken for gone at viewer time `now_ms`, if it is:
    /// the broker connection lost, the engine's will (offline), or no
    /// heartbeat for longer than the timeout.
    pub fn disconnected(&self, now_ms: i64) -> Option<String> {
        if let LinkState::Lost(why) = &self.link {
            return Some(format!("broker connection lost: {why}"));
        }
        if let Some(s) = &self.status {
            if !s.online {
                return Some("the engine is offline".into());
            }
        }
        let timeout = self.heartbeat_ms?;
        match self.status_at_ms {
            Some(at) if now_ms.saturating_sub(at) > timeout => Some(format!(
                "no heartbeat from the engine for {}",
                crate::ui::fmt_age(now_ms.saturating_sub(at))
            )),
            None if self.link == LinkState::Up => Some("no engine on this prefix yet".into()),
            _ => None,
        }
    }

    /// Age of data published at engine time `published_ms`, on the
    /// engine's clock: (status time − published) + time since the status
    /// arrived. `None` before any status.
    pub fn age_ms(&self, published_ms: i64, now_ms: i64) -> Option<i64> {
        let (s, at) = (self.status.as_ref()?, self.status_at_ms?);
        Some(
            s.ts_ms
                .saturating_sub(published_ms)
                .max(0)
                .saturating_add(now_ms.saturating_sub(at).max(0)),
        )
    }

    /// The engine's clock at viewer time `now_ms`: its last status's time
    /// plus the time since it arrived. `None` before any status.
    pub fn engine_now_ms(&self, now_ms: i64) -> Option<i64> {
        let (s, at) = (self.status.as_ref()?, self.status_at_ms?);
        Some(s.ts_ms.saturating_add(now_ms.saturating_sub(at).max(0)))
    }

    /// Whether data published at `published_ms` is older than the
    /// engine's freshness limit (or the engine is gone).
    pub fn is_stale(&self, published_ms: i64, now_ms: i64) -> bool {
        let limit = self.status.as_ref().map_or(i64::MAX, |s| s.freshness_ms);
        self.disconnected(now_ms).is_some()
            || self.age_ms(published_ms, now_ms).is_some_and(|a| a > limit)
    }

    /// Whether a site's figures are stale: none yet, older than the
    /// freshness limit (or the engine gone), or the pipeline marked the
    /// site silent. The one rule of the fleet, site, energy and water views.
    pub fn site_is_stale(&self, site: &str, now_ms: i64) -> bool {
        self.sites
            .get(site)
            .and_then(|v| v.board.as_ref())
            .is_none_or(|b| self.is_stale(b.published_ms, now_ms))
            || self.marked_stale(site)
    }

    /// Whether the pipeline itself marked a site silent.
    pub fn marked_stale(&self, site: &str) -> bool {
        self.health
            .as_ref()
            .is_some_and(|h| h.metrics.stale_sites.iter().any(|s| s == site))
    }

    /// Alarms listed for `site` (every state but normal) by priority.
    pub fn alarm_counts(&self, site: &str) -> [usize; 4] {
        let mut c = [0; 4];
        for a in self.alarms.values() {
            if a.scope.site.as_deref() == Some(site) {
                c[priority_index(a.priority)] += 1;
            }
        }
        c
    }

    /// Whether `site` has an unacknowledged alarm of priority high or above.
    pub fn site_unacked_high(&self, site: &str) -> bool {
        self.alarms.values().any(|a| {
            a.scope.site.as_deref() == Some(site)
                && a.priority >= Priority::High
                && matches!(a.state, AlarmState::UnackActive | AlarmState::UnackRtn)
        })
    }

    /// Sites passing the fleet's filter, in the fleet's order.
    pub fn fleet(&self, now_ms: i64) -> Vec<&Arc<str>> {
        let f = self.filters[0].to_lowercase();
        let mut v: Vec<&Arc<str>> = self
            .sites
            .keys()
            .filter(|s| f.is_empty() || s.to_lowercase().contains(&f))
            .collect();
        let oee = |s: &str| {
            self.sites
                .get(s)
                .and_then(|v| v.board.as_ref())
                .and_then(|b| b.shift.as_ref())
                .and_then(|x| x.ratios.oee)
        };
        match self.fleet_order {
            FleetOrder::Name => {}
            FleetOrder::Oee => v.sort_by(|a, b| {
                let (x, y) = (oee(a).unwrap_or(f64::MAX), oee(b).unwrap_or(f64::MAX));
                x.total_cmp(&y).then(a.cmp(b))
            }),
            FleetOrder::Trouble => {
                // One pass over the alarms, then one key per site: the
                // order that matters most during a flood stays cheap.
                let mut unacked_high: BTreeMap<&str, usize> = BTreeMap::new();
                for a in self.alarms.values() {
                    if a.priority >= Priority::High && unacked(a) {
                        if let Some(site) = a.scope.site.as_deref() {
                            *unacked_high.entry(site).or_default() += 1;
                        }
                    }
                }
                v.sort_by_cached_key(|s| {
                    let stale = self.site_is_stale(s, now_ms);
                    // Lowest OEE first; unknown last. Ordered as integers
                    // (per mille) so the key is `Ord`.
                    let oee_key = oee(s).map_or(i64::MAX, |o| (o * 1000.0).round() as i64);
                    (
                        std::cmp::Reverse(unacked_high.get(&***s).copied().unwrap_or(0)),
                        std::cmp::Reverse(stale),
                        oee_key,
                        (*s).clone(),
                    )
                });
            }
        }
        v
    }

    /// The site the site-level views show: the chosen one, else the one
    /// under the fleet's cursor.
    pub fn current_site(&self, now_ms: i64) -> Option<Arc<str>> {
        self.site.clone().or_else(|| {
            let f = self.fleet(now_ms);
            f.get(self.fleet_sel.min(f.len().saturating_sub(1)))
                .map(|s| (*s).clone())
        })
    }

    /// The site whose lines the current view shows (site and line views).
    pub fn line_focus(&self, now_ms: i64) -> Option<Arc<str>> {
        matches!(self.view, View::Site | View::Line)
            .then(|| self.current_site(now_ms))
            .flatten()
    }

    /// Lines of `site` passing the filter, in the site view's order.
    pub fn site_lines(&self, site: &str) -> Vec<&LineBoard> {
        let f = self.filters[1].to_lowercase();
        let mut v: Vec<&LineBoard> = self
            .lines
            .iter()
            .filter(|((s, _, _), _)| &**s == site)
            .map(|(_, b)| b)
            .filter(|b| {
                f.is_empty()
                    || b.scope
                        .line
                        .as_deref()
                        .is_some_and(|l| l.to_lowercase().contains(&f))
            })
            .collect();
        let key = |b: &LineBoard| -> f64 {
            let r = b.shift.as_ref().map(|s| &s.ratios);
            let v = match self.line_order {
                1 => r.and_then(|r| r.oee),
                2 => r.and_then(|r| r.availability),
                3 => b.shift.as_ref().map(|s| -(s.sums.unplanned_stop_ms as f64)),
                _ => None,
            };
            v.unwrap_or(f64::MAX)
        };
        if self.line_order > 0 {
            v.sort_by(|a, b| key(a).total_cmp(&key(b)));
        }
        v
    }

    /// The line the line view shows.
    pub fn current_line(&self, now_ms: i64) -> Option<&LineBoard> {
        let site = self.current_site(now_ms)?;
        match &self.line {
            Some((a, l)) => self.lines.get(&(site, a.clone(), l.clone())),
            None => {
                let v = self.site_lines(&site);
                v.get(self.line_sel.min(v.len().saturating_sub(1))).copied()
            }
        }
    }

    /// Alarms passing the console's filters, highest priority first, then
    /// unacknowledged first, then newest.
    pub fn console_alarms(&self) -> Vec<&AlarmEvent> {
        let f = self.filters[2].to_lowercase();
        let mut v: Vec<&AlarmEvent> = self
            .alarms
            .values()
            .filter(|a| a.priority >= self.min_priority && self.state_filter.admits(a.state))
            .filter(|a| f.is_empty() || a.id().to_string().to_lowercase().contains(&f))
            .collect();
        v.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| unacked(b).cmp(&unacked(a)))
                .then(b.ts_ms.cmp(&a.ts_ms))
                .then_with(|| a.id().cmp(&b.id()))
        });
        v
    }

    /// A flood: more than 10 alarms raised in the last 10 minutes of event
    /// time (EEMUA 191), as the viewer sees them.
    /// Counted on event time up to the engine's watermark (the newest
    /// alarm's time before any health report), from alarms whose last
    /// change was their raise: an acknowledgement of old alarms is no
    /// flood.
    pub fn flood(&self) -> Option<usize> {
        let now = self
            .health
            .as_ref()
            .and_then(|h| h.metrics.watermark_ms)
            .or_else(|| self.alarms.values().map(|a| a.ts_ms).max())?;
        let n = self
            .alarms
            .values()
            .filter(|a| {
                a.kind == ctower_model::AlarmEventKind::Raised
                    && a.state.is_active()
                    && a.ts_ms > now.saturating_sub(600_000)
            })
            .count();
        (n > 10).then_some(n)
    }

    /// The writable parameters passing the parameter view's filter, in
    /// the engine's order (by asset, then name).
    pub fn param_entries(&self) -> Vec<&ParamEntryView> {
        let f = self.filters[3].to_lowercase();
        self.params
            .entries
            .iter()
            .filter(|e| {
                f.is_empty()
                    || format!("{}/{}", e.asset, e.param)
                        .to_lowercase()
                        .contains(&f)
            })
            .collect()
    }

    /// The write requests passing the parameter view's filter (on the id,
    /// the asset/param and the requester), newest first.
    pub fn param_request_list(&self) -> Vec<&ParamRequestView> {
        let f = self.filters[3].to_lowercase();
        let mut v: Vec<&ParamRequestView> = self
            .param_requests
            .values()
            .filter(|r| {
                f.is_empty()
                    || r.id.to_lowercase().contains(&f)
                    || format!("{}/{}", r.asset, r.param)
                        .to_lowercase()
                        .contains(&f)
                    || r.requested_by.to_lowercase().contains(&f)
            })
            .collect();
        // Newest first: by request time, then by the id's number (`P10`
        // after `P9`), then by the id.
        let num = |id: &str| {
            id.trim_start_matches(|c: char| !c.is_ascii_digit())
                .parse::<u64>()
                .unwrap_or(0)
        };
        v.sort_by(|a, b| {
            b.requested_ms
                .cmp(&a.requested_ms)
                .then_with(|| num(&b.id).cmp(&num(&a.id)))
                .then_with(|| b.id.cmp(&a.id))
        });
        v
    }

    /// Whether the session's signature is kept (typed once, not refused
    /// since).
    pub fn has_signature(&self) -> bool {
        self.signature.is_some()
    }

    /// Listed alarms waiting for an acknowledgement.
    pub fn unacked(&self) -> usize {
        self.alarms.values().filter(|a| unacked(a)).count()
    }
}

fn unacked(a: &AlarmEvent) -> bool {
    matches!(a.state, AlarmState::UnackActive | AlarmState::UnackRtn)
}

/// 0 urgent … 3 low.
pub fn priority_index(p: Priority) -> usize {
    match p {
        Priority::Urgent => 0,
        Priority::High => 1,
        Priority::Medium => 2,
        Priority::Low => 3,
    }
}
