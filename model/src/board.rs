//! The dashboard feed ("board"): what a running engine publishes for its
//! viewers, a public interface like the telemetry contract (README,
//! "Dashboard feed").
//!
//! Every message is the latest state of one topic, published retained, so
//! a viewer that attaches gets the whole current picture at once and then
//! follows it. Under the engine's command prefix `<p>` (`commands.topic_prefix`):
//!
//! | topic                                | payload            | when                              |
//! |--------------------------------------|--------------------|-----------------------------------|
//! | `<p>/board/status`                   | [`EngineStatus`]   | every 500 ms; `online: false` as the MQTT will |
//! | `<p>/board/health`                   | [`BoardHealth`]    | every second                      |
//! | `<p>/board/site/<site>`              | [`SiteBoard`]      | each closed window of the site    |
//! | `<p>/board/trend/<site>`             | [`SiteTrend`]      | every [`TREND_EVERY`] windows and at a shift's change |
//! | `<p>/board/line/<site>/<area>/<line>`| [`LineBoard`]      | each closed window of the line    |
//! | `<p>/board/alarm/<key>`              | [`AlarmEvent`]     | each change; empty (retained deleted) at normal |
//!
//! `<key>` is the alarm's identity hashed ([`alarm_key`]): an alarm id holds
//! `#`, which an MQTT topic may not. Names in topics are the telemetry's own
//! topic levels, so they hold no `/`, `+` or `#`.
//!
//! The in-process dashboard reads the same topics and payloads from a
//! [`BoardInbox`] instead of a broker, so both viewers are one code path.
//!
//! Freshness without trusting two clocks: every payload carries the
//! engine's wall time (`published_ms`), and the status its own; a viewer
//! takes a site's age as `status.ts_ms − published_ms` plus the time since
//! that status arrived, both differences on one clock.

#[cfg(doc)]
use crate::alarm::AlarmEvent;
use crate::alarm::AlarmId;
use crate::asset::ScopeKey;
use crate::hash::Fnv1a;
use crate::kpi::{KpiRatios, KpiSums};
use crate::metrics::PipelineMetrics;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Version of the feed's payloads; a viewer refuses another.
pub const BOARD_VERSION: u32 = 1;

/// A [`SiteTrend`] is published after this many new windows of its site.
pub const TREND_EVERY: u32 = 10;

/// Points of a [`SiteBoard`]'s `recent` (more than [`TREND_EVERY`], so a
/// new viewer joins the last trend and the recent points without a gap).
pub const RECENT_POINTS: usize = 16;

/// Longest payload a viewer takes (a site trend of a 12-hour shift of
/// one-minute windows is about 60 KiB).
pub const MAX_BOARD_PAYLOAD: usize = 1 << 20;

/// One topic of the feed, below `<p>/board/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BoardTopic {
    /// The engine's heartbeat and settings.
    Status,
    /// The pipeline's self-metrics.
    Health,
    /// A site's figures.
    Site(Arc<str>),
    /// A site's shift and day trend.
    Trend(Arc<str>),
    /// A line's figures: site, area, line.
    Line(Arc<str>, Arc<str>, Arc<str>),
    /// One alarm, by [`alarm_key`].
    Alarm(String),
    /// The writable parameters ([`crate::ParamBoard`]).
    Params,
    /// One parameter write request, by its id ([`crate::ParamRequestView`]).
    Param(String),
}

impl BoardTopic {
    /// The full topic under `prefix`.
    pub fn topic(&self, prefix: &str) -> String {
        match self {
            BoardTopic::Status => format!("{prefix}/board/status"),
            BoardTopic::Health => format!("{prefix}/board/health"),
            BoardTopic::Site(s) => format!("{prefix}/board/site/{s}"),
            BoardTopic::Trend(s) => format!("{prefix}/board/trend/{s}"),
            BoardTopic::Line(s, a, l) => format!("{prefix}/board/line/{s}/{a}/{l}"),
            BoardTopic::Alarm(k) => format!("{prefix}/board/alarm/{k}"),
            BoardTopic::Params => format!("{prefix}/board/params"),
            BoardTopic::Param(id) => format!("{prefix}/board/param/{id}"),
        }
    }

    /// The topic of a full topic name under `prefix`; `None` for anything
    /// else (another prefix, an unknown kind, an empty level).
    pub fn parse(prefix: &str, topic: &str) -> Option<BoardTopic> {
        let rest = topic.strip_prefix(prefix)?.strip_prefix("/board/")?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        Some(match parts.as_slice() {
            ["status"] => BoardTopic::Status,
            ["health"] => BoardTopic::Health,
            ["site", s] => BoardTopic::Site((*s).into()),
            ["trend", s] => BoardTopic::Trend((*s).into()),
            ["line", s, a, l] => BoardTopic::Line((*s).into(), (*a).into(), (*l).into()),
            ["alarm", k] => BoardTopic::Alarm((*k).to_string()),
            ["params"] => BoardTopic::Params,
            ["param", id] => BoardTopic::Param((*id).to_string()),
            _ => return None,
        })
    }
}

/// The topic key of an alarm: its text id hashed (FNV-1a, 16 hex digits).
pub fn alarm_key(id: &AlarmId) -> String {
    let mut h = Fnv1a::default();
    h.write(id.to_string().as_bytes());
    format!("{:016x}", h.finish())
}

/// The engine's heartbeat (`<p>/board/status`), with what a viewer needs
/// to judge what it shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineStatus {
    /// [`BOARD_VERSION`].
    pub version: u32,
    /// `false` in the MQTT will (the engine's connection died) and at a
    /// clean stop.
    pub online: bool,
    /// The engine's wall time at publishing (ms since the epoch).
    pub ts_ms: i64,
    /// The engine's name (its configuration's title).
    pub engine: String,
    /// Length of a KPI window.
    pub window_ms: i64,
    /// A site or line whose newest figures are older than this (engine
    /// wall time) is stale.
    pub freshness_ms: i64,
    /// USP <645> conductivity limit, µS/cm.
    pub conductivity_limit_us_cm: f64,
    /// USP <643> TOC limit, ppb.
    pub toc_limit_ppb: f64,
    /// Whether operator actions are taken (a `[commands]` section).
    pub commands: bool,
}

/// The pipeline's health (`<p>/board/health`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BoardHealth {
    /// The engine's wall time at publishing.
    pub published_ms: i64,
    /// Ingest, lag, dead letters, outboxes, faults.
    pub metrics: PipelineMetrics,
    /// Late corrections seen so far, one per scope corrected (applied to
    /// the sums when their window is among the newest 120).
    pub corrections: u64,
    /// Feed messages the engine could not publish (viewer links too slow).
    pub board_dropped: u64,
}

/// Time, counts, energy and water of one scope summed over the windows of
/// a period seen so far (a shift, a production day), with ratios computed
/// from the sums by the stream's own formulas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoFar {
    /// The production day (local date).
    pub production_day: Option<Arc<str>>,
    /// The shift (for a shift's span).
    pub shift: Option<Arc<str>>,
    /// Start of the first window in it (UTC ms).
    pub start_ms: i64,
    /// End of the newest window in it.
    pub end_ms: i64,
    /// Windows summed.
    pub windows: u32,
    /// Of them, corrected by late data after they were first summed.
    pub corrected: u32,
    /// The engine saw the period from its start: `false` when its first
    /// window here was the first the engine saw of this scope (it started,
    /// or the scope appeared, during the period), so the sums cover only
    /// part of it.
    #[serde(default)]
    pub from_start: bool,
    /// The sums.
    pub sums: KpiSums,
    /// Ratios of the sums (over `end_ms − start_ms`).
    pub ratios: KpiRatios,
    /// Energy the site's ISO 50006 baseline expects for the period so far,
    /// kWh: its fixed part for the time elapsed plus its part per unit
    /// for the units made (`None`: no baseline fitted yet, or one that
    /// needs degree-days, which are known only at the day's end).
    pub expected_kwh: Option<f64>,
}

/// One finished production day of a site against its energy baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayEnergy {
    /// The production day.
    pub day: Arc<str>,
    /// Energy, kWh.
    pub kwh: Option<f64>,
    /// What the baseline expected, kWh.
    pub expected_kwh: Option<f64>,
    /// Cumulative sum of the deviations (actual − expected) so far, kWh.
    pub cusum_kwh: Option<f64>,
    /// Cost of the day.
    pub cost: Option<f64>,
    /// CO2e of the day, kg.
    pub co2e_kg: Option<f64>,
}

/// The newest window of a scope, in brief.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Now {
    /// Its end (event time, UTC ms).
    pub end_ms: i64,
    /// Mean demand over it, kW (`None`: no meter measured it).
    pub kw: Option<f64>,
    /// OEE of that window alone.
    pub oee: Option<f64>,
    /// Share of asset-time with data.
    pub coverage: Option<f64>,
    /// Revision (above 0: corrected by late data).
    pub revision: u32,
}

/// One window of a trend. Numbers are rounded for the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// End of the window (UTC ms).
    pub end_ms: i64,
    /// OEE of the window.
    pub oee: Option<f64>,
    /// Mean demand, kW.
    pub kw: Option<f64>,
    /// Energy, kWh.
    pub kwh: Option<f64>,
    /// Water recovery.
    pub recovery: Option<f64>,
    /// Highest conductivity of the site's water in the window, µS/cm.
    pub conductivity_max: Option<f64>,
    /// Highest TOC of the site's water in the window, ppb.
    pub toc_max: Option<f64>,
    /// Data coverage.
    pub coverage: Option<f64>,
}

/// A site's figures (`<p>/board/site/<site>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteBoard {
    /// The engine's wall time at publishing.
    pub published_ms: i64,
    /// The site.
    pub site: Arc<str>,
    /// The newest window.
    pub now: Now,
    /// The current shift so far.
    pub shift: Option<SoFar>,
    /// The current production day so far (cost and CO2e of the day).
    pub day: Option<SoFar>,
    /// The newest windows (more than a trend's cadence, so a new viewer
    /// joins them to the last [`SiteTrend`] without a gap).
    pub recent: Vec<TrendPoint>,
    /// Lines of the site (`area/line`).
    pub lines: Vec<String>,
    /// The fitted baseline's slope: kWh per unit produced, on top of its
    /// fixed part per day (not comparable with the actual kWh per good
    /// unit by itself: the day's `expected_kwh` over its good units is).
    pub baseline_kwh_per_unit: Option<f64>,
}

/// A site's trend (`<p>/board/trend/<site>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteTrend {
    /// The engine's wall time at publishing.
    pub published_ms: i64,
    /// The site.
    pub site: Arc<str>,
    /// The current shift's windows, oldest first.
    pub shift: Vec<TrendPoint>,
    /// OEE of each hour of the production day so far: (hour start, OEE).
    pub day_oee: Vec<(i64, Option<f64>)>,
    /// The last finished production days (up to [`DAYS_KEPT`]), oldest first.
    pub days: Vec<DayEnergy>,
}

/// Finished production days a [`SiteTrend`] keeps.
pub const DAYS_KEPT: usize = 14;

/// A line's figures (`<p>/board/line/<site>/<area>/<line>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineBoard {
    /// The engine's wall time at publishing.
    pub published_ms: i64,
    /// The line.
    pub scope: ScopeKey,
    /// The newest window.
    pub now: Now,
    /// The current shift so far.
    pub shift: Option<SoFar>,
    /// Start of the timeline (UTC ms) and the length of each of its steps.
    pub timeline_start_ms: i64,
    /// Length of one timeline step (a window), ms.
    pub step_ms: i64,
    /// The shift's windows, one character each, by what took most of it:
    /// see [`TimelineMark`].
    pub timeline: String,
    /// Ideal rate of what the newest windows made, units per hour (from
    /// the ideal time of the units counted).
    pub ideal_rate_per_h: Option<f64>,
    /// The assets of the line.
    pub assets: u64,
}

/// What one window of a line's timeline was mostly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineMark {
    /// Running.
    Running,
    /// An unplanned stop.
    Stop,
    /// Micro-stops.
    MicroStop,
    /// A changeover.
    Changeover,
    /// A planned stop (break, cleaning).
    Planned,
    /// Outside the shift calendar.
    NoShift,
    /// No data (unknown state).
    Unknown,
}

impl TimelineMark {
    /// All marks, in legend order.
    pub const ALL: [TimelineMark; 7] = [
        TimelineMark::Running,
        TimelineMark::Stop,
        TimelineMark::MicroStop,
        TimelineMark::Changeover,
        TimelineMark::Planned,
        TimelineMark::NoShift,
        TimelineMark::Unknown,
    ];

    /// Its character in [`LineBoard::timeline`].
    pub fn code(self) -> char {
        match self {
            TimelineMark::Running => 'R',
            TimelineMark::Stop => 'S',
            TimelineMark::MicroStop => 'm',
            TimelineMark::Changeover => 'C',
            TimelineMark::Planned => 'P',
            TimelineMark::NoShift => '-',
            TimelineMark::Unknown => '?',
        }
    }

    /// The mark of a character (anything else: unknown).
    pub fn from_code(c: char) -> TimelineMark {
        TimelineMark::ALL
            .into_iter()
            .find(|m| m.code() == c)
            .unwrap_or(TimelineMark::Unknown)
    }

    /// Its name in the legend.
    pub fn label(self) -> &'static str {
        match self {
            TimelineMark::Running => "running",
            TimelineMark::Stop => "stop",
            TimelineMark::MicroStop => "micro-stops",
            TimelineMark::Changeover => "changeover",
            TimelineMark::Planned => "planned stop",
            TimelineMark::NoShift => "no shift",
            TimelineMark::Unknown => "unknown",
        }
    }

    /// The mark of a window's sums: the state that took most of its time.
    pub fn of(s: &KpiSums) -> TimelineMark {
        let candidates = [
            (s.running_ms, TimelineMark::Running),
            (s.unplanned_stop_ms, TimelineMark::Stop),
            (s.micro_stop_ms, TimelineMark::MicroStop),
            (s.changeover_ms, TimelineMark::Changeover),
            (s.planned_stop_ms, TimelineMark::Planned),
            (s.no_shift_ms, TimelineMark::NoShift),
            (s.unknown_ms, TimelineMark::Unknown),
        ];
        let mut best = (0, TimelineMark::Unknown);
        for c in candidates {
            if c.0 > best.0 {
                best = c;
            }
        }
        best.1
    }
}

/// A number rounded to `digits` decimals, for the wire.
pub fn round(x: Option<f64>, digits: i32) -> Option<f64> {
    let f = 10f64.powi(digits);
    x.filter(|v| v.is_finite()).map(|v| (v * f).round() / f)
}

/// One message of the feed: a topic below `<p>/board/` and its payload
/// (`None`: delete the retained message).
#[derive(Debug, Clone, PartialEq)]
pub struct BoardMessage {
    /// Where.
    pub topic: BoardTopic,
    /// What (JSON), or `None` to delete.
    pub payload: Option<Vec<u8>>,
}

/// A feed's messages between the engine and one consumer (the MQTT
/// publisher, the in-process dashboard): the latest payload per topic,
/// so it is bounded by the number of topics (sites, lines, open alarms),
/// and a slow consumer skips the intermediate states of a topic, never
/// its newest. Beyond [`BoardInbox::MAX_TOPICS`] pending topics a new one
/// is dropped and counted.
pub struct BoardInbox {
    inner: Mutex<Inbox>,
    ready: Condvar,
    waker: Mutex<Option<Box<dyn Fn() + Send>>>,
}

#[derive(Default)]
struct Inbox {
    pending: BTreeMap<BoardTopic, Option<Vec<u8>>>,
    dropped: u64,
    closed: bool,
}

impl std::fmt::Debug for BoardInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoardInbox").finish_non_exhaustive()
    }
}

impl Default for BoardInbox {
    fn default() -> Self {
        BoardInbox {
            inner: Mutex::new(Inbox::default()),
            ready: Condvar::new(),
            waker: Mutex::new(None),
        }
    }
}

impl BoardInbox {
    /// Most topics waiting at once.
    pub const MAX_TOPICS: usize = 100_000;

    /// A new, empty inbox.
    pub fn new() -> Arc<BoardInbox> {
        Arc::new(BoardInbox::default())
    }

    /// Calls `waker` (without the inbox's lock) after each put, e.g. to
    /// wake an event loop.
    pub fn set_waker(&self, waker: Box<dyn Fn() + Send>) {
        if let Ok(mut w) = self.waker.lock() {
            *w = Some(waker);
        }
    }

    /// Puts the newest payload of a topic.
    pub fn put(&self, m: BoardMessage) {
        {
            let Ok(mut i) = self.inner.lock() else { return };
            if i.pending.len() >= Self::MAX_TOPICS && !i.pending.contains_key(&m.topic) {
                i.dropped += 1;
                return;
            }
            i.pending.insert(m.topic, m.payload);
        }
        self.ready.notify_all();
        if let Ok(w) = self.waker.lock() {
            if let Some(w) = w.as_ref() {
                w();
            }
        }
    }

    /// Everything waiting, in topic order, and the count dropped so far.
    pub fn take(&self) -> (Vec<BoardMessage>, u64) {
        let Ok(mut i) = self.inner.lock() else {
            return (Vec::new(), 0);
        };
        let pending = std::mem::take(&mut i.pending);
        let v = pending
            .into_iter()
            .map(|(topic, payload)| BoardMessage { topic, payload })
            .collect();
        (v, i.dropped)
    }

    /// [`BoardInbox::take`], waiting up to `timeout` for something;
    /// `None` once closed and empty.
    pub fn wait_take(&self, timeout: Duration) -> Option<(Vec<BoardMessage>, u64)> {
        let Ok(mut i) = self.inner.lock() else {
            return None;
        };
        if i.pending.is_empty() && !i.closed {
            i = match self.ready.wait_timeout(i, timeout) {
                Ok((g, _)) => g,
                Err(_) => return None,
            };
        }
        if i.pending.is_empty() && i.closed {
            return None;
        }
        let pending = std::mem::take(&mut i.pending);
        let v = pending
            .into_iter()
            .map(|(topic, payload)| BoardMessage { topic, payload })
            .collect();
        Some((v, i.dropped))
    }

    /// Topics dropped so far (the inbox was full of others).
    pub fn dropped(&self) -> u64 {
        self.inner.lock().map_or(0, |i| i.dropped)
    }

    /// Counts a payload its consumer could not pass on.
    pub fn count_dropped(&self) {
        if let Ok(mut i) = self.inner.lock() {
            i.dropped += 1;
        }
    }

    /// Whether [`BoardInbox::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.lock().map_or(true, |i| i.closed)
    }

    /// No more puts: a waiting consumer ends once it has taken the rest.
    pub fn close(&self) {
        if let Ok(mut i) = self.inner.lock() {
            i.closed = true;
        }
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asset::{AssetKey, Level};

    #[test]
    fn topics_round_trip_and_strangers_are_refused() {
        let line = BoardTopic::Line("basel".into(), "packaging".into(), "line-1".into());
        for t in [
            BoardTopic::Status,
            BoardTopic::Health,
            BoardTopic::Site("basel".into()),
            BoardTopic::Trend("basel".into()),
            line,
            BoardTopic::Alarm("00ff".into()),
            BoardTopic::Params,
            BoardTopic::Param("P000012".into()),
        ] {
            assert_eq!(BoardTopic::parse("ct", &t.topic("ct")), Some(t));
        }
        for bad in [
            "ct/board/site",
            "ct/board/site/",
            "ct/board/site/a/b",
            "ct/board/what",
            "other/board/status",
            "ct/boardx/status",
            "ct/board/line/a//b",
        ] {
            assert_eq!(BoardTopic::parse("ct", bad), None, "{bad}");
        }
    }

    #[test]
    fn alarm_keys_are_stable_and_topic_safe() {
        let id = AlarmId {
            rule: "r".into(),
            scope: AssetKey::new("s", "a", "l", "x").scope(Level::Asset),
            signal: Some("cond".into()),
        };
        let k = alarm_key(&id);
        assert_eq!(k.len(), 16);
        assert!(k.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(k, alarm_key(&id.clone()));
        let other = AlarmId { signal: None, ..id };
        assert_ne!(k, alarm_key(&other));
    }

    #[test]
    fn the_inbox_keeps_the_newest_payload_per_topic() {
        let inbox = BoardInbox::new();
        let woken = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let w = woken.clone();
        inbox.set_waker(Box::new(move || {
            w.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }));
        let site = BoardTopic::Site("a".into());
        inbox.put(BoardMessage {
            topic: site.clone(),
            payload: Some(b"1".to_vec()),
        });
        inbox.put(BoardMessage {
            topic: site.clone(),
            payload: Some(b"2".to_vec()),
        });
        inbox.put(BoardMessage {
            topic: BoardTopic::Alarm("k".into()),
            payload: None,
        });
        let (msgs, dropped) = inbox.take();
        assert_eq!(dropped, 0);
        assert_eq!(woken.load(std::sync::atomic::Ordering::Relaxed), 3);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].topic, site);
        assert_eq!(msgs[0].payload.as_deref(), Some(&b"2"[..]));
        assert_eq!(msgs[1].payload, None);
        inbox.close();
        assert!(inbox.wait_take(Duration::from_millis(1)).is_none());
    }

    #[test]
    fn the_timeline_mark_is_the_longest_state() {
        let s = KpiSums {
            running_ms: 10,
            changeover_ms: 40,
            unknown_ms: 5,
            ..Default::default()
        };
        assert_eq!(TimelineMark::of(&s), TimelineMark::Changeover);
        assert_eq!(TimelineMark::of(&KpiSums::default()), TimelineMark::Unknown);
        for m in TimelineMark::ALL {
            assert_eq!(TimelineMark::from_code(m.code()), m);
        }
    }
}
