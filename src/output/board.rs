//! The dashboard feed as a sink ([`ctower_model::board`]): the closed
//! windows of sites and lines folded into what a viewer shows — the shift
//! and the production day so far, trends, a line's state timeline — and
//! every alarm's newest state, each put into the feed's inboxes (the MQTT
//! publisher, the in-process dashboard) as the newest payload of its topic.
//!
//! [`BoardBuilder`] is pure (no I/O, no clock: the wall time is passed in);
//! [`BoardSink`] drives it from the output stage, for live, batch and
//! cluster modes alike.

use super::{Sink, WindowOutput};
use ctower_model::board::{
    alarm_key, round, BoardHealth, BoardInbox, BoardMessage, BoardTopic, DayEnergy, EngineStatus,
    LineBoard, Now, SiteBoard, SiteTrend, SoFar, TimelineMark, TrendPoint, DAYS_KEPT,
    RECENT_POINTS, TREND_EVERY,
};
use ctower_model::kpi::{KpiRatios, KpiSums};
use ctower_model::{
    AlarmEvent, AlarmState, KpiRecord, Level, Period, PipelineMetrics, Role, ScopeKey, StreamOutput,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Windows of a scope kept to apply a late correction to the sums so far;
/// an older window's correction is counted, not applied (the journal and
/// the reports have it).
const CORRECTABLE_WINDOWS: usize = 120;

/// Longest shift trend and timeline kept (a day of one-minute windows).
const MAX_SHIFT_WINDOWS: usize = 1_440;

/// A sum of windows of one period of one scope.
#[derive(Debug, Clone)]
struct Span {
    day: Option<Arc<str>>,
    shift: Option<Arc<str>>,
    start_ms: i64,
    end_ms: i64,
    windows: u32,
    corrected: u32,
    from_start: bool,
    sums: KpiSums,
}

impl Span {
    fn new(k: &KpiRecord, day: Option<Arc<str>>, from_start: bool) -> Span {
        Span {
            from_start,
            day,
            shift: k.shift.clone(),
            start_ms: k.window_start_ms,
            end_ms: k.window_end_ms,
            windows: 0,
            corrected: 0,
            sums: KpiSums::default(),
        }
    }

    fn so_far(&self, expected_kwh: Option<f64>) -> SoFar {
        SoFar {
            production_day: self.day.clone(),
            shift: self.shift.clone(),
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            windows: self.windows,
            corrected: self.corrected,
            from_start: self.from_start,
            ratios: KpiRatios::from_sums(&self.sums, self.end_ms - self.start_ms),
            sums: self.sums.clone(),
            expected_kwh,
        }
    }
}

/// What the board folds per scope (a site or a line).
#[derive(Debug, Default)]
struct ScopeAcc {
    now: Now,
    shift: Option<Span>,
    day: Option<Span>,
    /// The newest windows' sums, by start, for corrections.
    recent: VecDeque<(i64, KpiSums)>,
    /// The shift's windows (sites: the trend; lines: the timeline).
    points: Vec<TrendPoint>,
    marks: String,
    /// Hour start → sums, over the production day (sites).
    hours: BTreeMap<i64, KpiSums>,
    since_trend: u32,
    days: VecDeque<DayEnergy>,
    /// The fitted baseline: (fixed kWh per day, kWh per unit), when it
    /// needs no degree-days.
    baseline: Option<(f64, f64)>,
    lines: BTreeSet<String>,
    ideal_rate_per_h: Option<f64>,
    assets: u64,
    step_ms: i64,
}

/// Folds closed windows into the feed's payloads. Pure.
#[derive(Debug, Default)]
pub struct BoardBuilder {
    sites: BTreeMap<Arc<str>, ScopeAcc>,
    lines: BTreeMap<ScopeKey, ScopeAcc>,
    /// Corrections seen (late data).
    corrections: u64,
    dirty_sites: BTreeSet<Arc<str>>,
    dirty_trends: BTreeSet<Arc<str>>,
    dirty_lines: BTreeSet<ScopeKey>,
}

fn point(k: &KpiRecord) -> TrendPoint {
    TrendPoint {
        end_ms: k.window_end_ms,
        oee: round(k.ratios.oee, 4),
        kw: round(k.peak_demand_kw, 2),
        kwh: round(k.sums.energy_kwh, 3),
        recovery: round(k.ratios.water_recovery, 4),
        conductivity_max: None,
        toc_max: None,
        coverage: round(k.ratios.data_coverage, 3),
    }
}

impl BoardBuilder {
    /// A builder with nothing seen.
    pub fn new() -> BoardBuilder {
        BoardBuilder::default()
    }

    /// Corrections (late data) seen so far.
    pub fn corrections(&self) -> u64 {
        self.corrections
    }

    /// One record of a closed window.
    pub fn record(&mut self, out: &StreamOutput) {
        match out {
            StreamOutput::Kpi(k) => self.kpi(k),
            StreamOutput::Signal(s) => {
                let site = &s.asset.site;
                let is_cond = s.role == Role::ConductivityUsCm;
                if !(is_cond || s.role == Role::TocPpb) {
                    return;
                }
                let Some(acc) = self.sites.get_mut(&**site) else {
                    return;
                };
                let Some(p) = acc
                    .points
                    .iter_mut()
                    .rev()
                    .find(|p| p.end_ms == s.window_end_ms)
                else {
                    return;
                };
                let slot = if is_cond {
                    &mut p.conductivity_max
                } else {
                    &mut p.toc_max
                };
                *slot = Some(slot.map_or(s.max, |m: f64| m.max(s.max)));
                *slot = round(*slot, 3);
                self.dirty_sites.insert(site.clone());
            }
        }
    }

    fn kpi(&mut self, k: &KpiRecord) {
        let Some(site) = k.scope.site.clone() else {
            return;
        };
        match (k.period, k.scope.level) {
            (Period::Window, Level::Site) => {
                let acc = self.sites.entry(site.clone()).or_default();
                if fold(acc, k, true) {
                    self.corrections += 1;
                }
                acc.since_trend += 1;
                if acc.since_trend >= TREND_EVERY || acc.points.len() == 1 {
                    self.dirty_trends.insert(site.clone());
                }
                self.dirty_sites.insert(site);
            }
            (Period::Window, Level::Line) => {
                let acc = self.lines.entry(k.scope.clone()).or_default();
                if fold(acc, k, false) {
                    self.corrections += 1;
                }
                // The newest window's, not a correction's of an older one.
                if k.revision == 0 && k.window_end_ms == acc.now.end_ms {
                    acc.ideal_rate_per_h = (k.sums.ideal_time_ms > 0.0)
                        .then(|| {
                            k.sums
                                .produced
                                .map(|p| p as f64 * 3_600_000.0 / k.sums.ideal_time_ms)
                        })
                        .flatten()
                        .or(acc.ideal_rate_per_h);
                    acc.assets = k.sums.assets;
                }
                if let (Some(a), Some(l)) = (&k.scope.area, &k.scope.line) {
                    self.sites
                        .entry(site.clone())
                        .or_default()
                        .lines
                        .insert(format!("{a}/{l}"));
                }
                self.dirty_lines.insert(k.scope.clone());
            }
            (Period::Day, Level::Site) if k.complete => {
                let acc = self.sites.entry(site.clone()).or_default();
                let b = &k.baseline;
                let day = DayEnergy {
                    day: k.production_day.clone().unwrap_or_else(|| "?".into()),
                    kwh: round(k.sums.energy_kwh, 3),
                    expected_kwh: round(b.baseline_expected_kwh, 3),
                    cusum_kwh: round(b.baseline_cusum_kwh, 3),
                    cost: round(k.sums.energy_cost, 2),
                    co2e_kg: round(k.sums.co2e_kg, 3),
                };
                // A correction of a day replaces it.
                acc.days.retain(|d| d.day != day.day);
                acc.days.push_back(day);
                while acc.days.len() > DAYS_KEPT {
                    acc.days.pop_front();
                }
                if let (Some(i), Some(u)) = (b.baseline_intercept_kwh, b.baseline_kwh_per_unit) {
                    acc.baseline = b.baseline_kwh_per_degree_day.is_none().then_some((i, u));
                }
                self.dirty_trends.insert(site);
            }
            _ => {}
        }
    }

    /// One alarm's newest state: its topic, deleted at normal.
    pub fn alarm(ev: &AlarmEvent) -> BoardMessage {
        let topic = BoardTopic::Alarm(alarm_key(&ev.id()));
        let payload = if ev.state == AlarmState::Normal {
            None
        } else {
            serde_json::to_vec(ev).ok()
        };
        BoardMessage { topic, payload }
    }

    /// The payloads of everything that changed since the last call,
    /// stamped with the wall time `now_ms`.
    pub fn flush(&mut self, now_ms: i64) -> Vec<BoardMessage> {
        let mut out = Vec::new();
        for site in std::mem::take(&mut self.dirty_sites) {
            let Some(acc) = self.sites.get(&site) else {
                continue;
            };
            let expected = acc.day.as_ref().and_then(|d| {
                let (fixed, per_unit) = acc.baseline?;
                let days = (d.end_ms - d.start_ms) as f64 / 86_400_000.0;
                Some(fixed * days + per_unit * d.sums.produced? as f64)
            });
            let board = SiteBoard {
                published_ms: now_ms,
                site: site.clone(),
                now: acc.now.clone(),
                shift: acc.shift.as_ref().map(|s| s.so_far(None)),
                day: acc.day.as_ref().map(|s| s.so_far(round(expected, 3))),
                recent: acc
                    .points
                    .iter()
                    .rev()
                    .take(RECENT_POINTS)
                    .rev()
                    .cloned()
                    .collect(),
                lines: acc.lines.iter().cloned().collect(),
                baseline_kwh_per_unit: acc.baseline.map(|b| b.1),
            };
            push(&mut out, BoardTopic::Site(site.clone()), &board);
        }
        for site in std::mem::take(&mut self.dirty_trends) {
            let Some(acc) = self.sites.get_mut(&site) else {
                continue;
            };
            acc.since_trend = 0;
            let trend = SiteTrend {
                published_ms: now_ms,
                site: site.clone(),
                shift: acc.points.clone(),
                day_oee: acc
                    .hours
                    .iter()
                    .map(|(h, s)| (*h, round(KpiRatios::from_sums(s, 3_600_000).oee, 4)))
                    .collect(),
                days: acc.days.iter().cloned().collect(),
            };
            push(&mut out, BoardTopic::Trend(site), &trend);
        }
        for scope in std::mem::take(&mut self.dirty_lines) {
            let Some(acc) = self.lines.get(&scope) else {
                continue;
            };
            let (Some(s), Some(a), Some(l)) = (&scope.site, &scope.area, &scope.line) else {
                continue;
            };
            let board = LineBoard {
                published_ms: now_ms,
                scope: scope.clone(),
                now: acc.now.clone(),
                shift: acc.shift.as_ref().map(|s| s.so_far(None)),
                // The first window kept (a long shift's oldest are cut).
                timeline_start_ms: acc.points.first().map_or(0, |p| p.end_ms - acc.step_ms),
                step_ms: acc.step_ms,
                timeline: acc.marks.clone(),
                ideal_rate_per_h: round(acc.ideal_rate_per_h, 1),
                assets: acc.assets,
            };
            push(
                &mut out,
                BoardTopic::Line(s.clone(), a.clone(), l.clone()),
                &board,
            );
        }
        out
    }
}

/// Encodes a payload without its `null` fields: an absent field is as
/// unknown as a null one to the viewer (every such field is an `Option`),
/// and a line's or a site's board carries dozens of them (water and
/// energy ratios of a packaging line …): the feed goes over thin links.
fn encode<T: serde::Serialize>(v: &T) -> serde_json::Result<Vec<u8>> {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|_, x| !x.is_null());
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(v)?;
    strip(&mut value);
    serde_json::to_vec(&value)
}

fn push<T: serde::Serialize>(out: &mut Vec<BoardMessage>, topic: BoardTopic, v: &T) {
    match encode(v) {
        Ok(p) => out.push(BoardMessage {
            topic,
            payload: Some(p),
        }),
        Err(e) => tracing::error!(error = %e, "cannot encode a dashboard feed payload"),
    }
}

/// Folds one window of a scope; `true` when it was a correction.
fn fold(acc: &mut ScopeAcc, k: &KpiRecord, site: bool) -> bool {
    // A correction of a window still kept replaces its sums; an older one
    // is counted only.
    if k.revision > 0 {
        let Some(i) = acc.recent.iter().position(|r| r.0 == k.window_start_ms) else {
            return true;
        };
        let old = std::mem::replace(&mut acc.recent[i].1, k.sums.clone());
        for span in [&mut acc.shift, &mut acc.day].into_iter().flatten() {
            if span.start_ms <= k.window_start_ms && k.window_end_ms <= span.end_ms {
                span.sums.sub(&old);
                span.sums.add(&k.sums);
                span.corrected += 1;
            }
        }
        if let Some(h) = acc.hours.get_mut(&hour(k.window_start_ms)) {
            h.sub(&old);
            h.add(&k.sums);
        }
        // Points and marks are kept in step: one of each per window.
        if let Some(j) = acc.points.iter().position(|p| p.end_ms == k.window_end_ms) {
            let p = &mut acc.points[j];
            let (c, t) = (p.conductivity_max, p.toc_max);
            *p = point(k);
            (p.conductivity_max, p.toc_max) = (c, t);
            if j < acc.marks.len() {
                let code = TimelineMark::of(&k.sums).code().to_string();
                acc.marks.replace_range(j..j + 1, &code);
            }
        }
        if acc.now.end_ms == k.window_end_ms {
            acc.now = now(k);
        }
        return true;
    }
    let day = day_key(k);
    if k.window_end_ms <= acc.now.end_ms {
        // A window older than the newest (late data backfilling a window
        // that had none): into the periods it falls in, in its place.
        backfill(acc, k, &day, site);
        return false;
    }
    // A shift is its name; a shift crossing the production day's start
    // stays one (the stream names it by the day it began). Without a
    // calendar (no name), the UTC day is the period; a shift longer than a
    // day (a single 24-hour shift) starts over each day.
    let new_shift = acc.shift.as_ref().is_none_or(|s| {
        s.shift != k.shift
            || (k.shift.is_none() && s.day.as_deref() != Some(&*day))
            || k.window_end_ms - s.start_ms > 86_400_000
    });
    if new_shift {
        // A shift that began before this scope's first window here is
        // seen only in part.
        let seen_before = acc.shift.is_some();
        acc.shift = Some(Span::new(k, Some(day.clone()), seen_before));
        acc.points.clear();
        acc.marks.clear();
    }
    if acc
        .day
        .as_ref()
        .is_none_or(|d| d.day.as_deref() != Some(&*day))
    {
        let seen_before = acc.day.is_some();
        acc.day = Some(Span::new(k, Some(day.clone()), seen_before));
        acc.hours.clear();
    }
    for span in [&mut acc.shift, &mut acc.day].into_iter().flatten() {
        span.sums.add(&k.sums);
        span.windows += 1;
        span.end_ms = k.window_end_ms;
    }
    if site {
        acc.hours
            .entry(hour(k.window_start_ms))
            .or_default()
            .add(&k.sums);
    }
    acc.recent.push_back((k.window_start_ms, k.sums.clone()));
    while acc.recent.len() > CORRECTABLE_WINDOWS {
        acc.recent.pop_front();
    }
    acc.points.push(point(k));
    acc.marks.push(TimelineMark::of(&k.sums).code());
    if acc.points.len() > MAX_SHIFT_WINDOWS {
        acc.points.remove(0);
        acc.marks.remove(0);
    }
    acc.now = now(k);
    acc.step_ms = k.window_end_ms - k.window_start_ms;
    false
}

/// A late first result of a window older than the newest: its sums join
/// the periods that hold it, and its point and mark go in their place.
fn backfill(acc: &mut ScopeAcc, k: &KpiRecord, day: &str, site: bool) {
    if acc.recent.iter().any(|r| r.0 == k.window_start_ms) {
        return; // Already folded (a repeat).
    }
    let mut in_shift = false;
    for (span, is_shift) in [(&mut acc.shift, true), (&mut acc.day, false)] {
        if let Some(span) = span {
            let same = if is_shift {
                span.shift == k.shift
            } else {
                span.day.as_deref() == Some(day)
            };
            if same && k.window_start_ms >= span.start_ms {
                span.sums.add(&k.sums);
                span.windows += 1;
                in_shift |= is_shift;
            }
        }
    }
    if site
        && acc
            .day
            .as_ref()
            .is_some_and(|d| d.day.as_deref() == Some(day))
    {
        acc.hours
            .entry(hour(k.window_start_ms))
            .or_default()
            .add(&k.sums);
    }
    let at = acc.recent.partition_point(|r| r.0 < k.window_start_ms);
    acc.recent.insert(at, (k.window_start_ms, k.sums.clone()));
    while acc.recent.len() > CORRECTABLE_WINDOWS {
        acc.recent.pop_front();
    }
    if in_shift {
        let j = acc.points.partition_point(|p| p.end_ms < k.window_end_ms);
        acc.points.insert(j, point(k));
        if j <= acc.marks.len() {
            acc.marks.insert(j, TimelineMark::of(&k.sums).code());
        }
    }
}

/// The day a window counts in: its site's production day, or without a
/// calendar its UTC date.
fn day_key(k: &KpiRecord) -> Arc<str> {
    k.production_day.clone().unwrap_or_else(|| {
        let t = ctower_model::time::rfc3339_ms(k.window_start_ms);
        format!("{} UTC", t.get(..10).unwrap_or("?")).into()
    })
}

fn now(k: &KpiRecord) -> Now {
    Now {
        end_ms: k.window_end_ms,
        kw: round(k.peak_demand_kw, 2),
        oee: round(k.ratios.oee, 4),
        coverage: round(k.ratios.data_coverage, 3),
        revision: k.revision,
    }
}

fn hour(ms: i64) -> i64 {
    ms - ms.rem_euclid(3_600_000)
}

/// Where the feed goes: one inbox per consumer (the MQTT publisher, the
/// in-process dashboard), and what the engine says of itself.
#[derive(Debug, Clone)]
pub struct BoardFeed {
    inboxes: Vec<Arc<BoardInbox>>,
    status: EngineStatus,
    corrections: Arc<AtomicU64>,
}

impl BoardFeed {
    /// A feed into `inboxes`, the engine described by `status` (its time
    /// and `online` set at each heartbeat).
    pub fn new(inboxes: Vec<Arc<BoardInbox>>, status: EngineStatus) -> BoardFeed {
        BoardFeed {
            inboxes,
            status,
            corrections: Arc::default(),
        }
    }

    /// Whether anything consumes the feed.
    pub fn is_empty(&self) -> bool {
        self.inboxes.is_empty()
    }

    fn put(&self, m: BoardMessage) {
        if let Some((last, rest)) = self.inboxes.split_last() {
            for i in rest {
                i.put(m.clone());
            }
            last.put(m);
        }
    }

    /// The heartbeat, at wall time `now_ms`.
    pub fn status_message(&self, online: bool, now_ms: i64) -> BoardMessage {
        let mut s = self.status.clone();
        s.online = online;
        s.ts_ms = now_ms;
        BoardMessage {
            topic: BoardTopic::Status,
            payload: serde_json::to_vec(&s).ok(),
        }
    }

    /// Publishes the heartbeat and the pipeline's health (the ticker,
    /// once a second, and at the stop with `online: false`).
    pub fn beat(&self, metrics: Option<&PipelineMetrics>, online: bool, now_ms: i64) {
        if let Some(m) = metrics {
            let dropped = self.inboxes.iter().map(|i| i.dropped()).sum::<u64>();
            let h = BoardHealth {
                published_ms: now_ms,
                metrics: m.clone(),
                corrections: self.corrections.load(Ordering::Relaxed),
                board_dropped: dropped,
            };
            if let Ok(p) = serde_json::to_vec(&h) {
                self.put(BoardMessage {
                    topic: BoardTopic::Health,
                    payload: Some(p),
                });
            }
        }
        self.put(self.status_message(online, now_ms));
    }

    /// The engine has stopped: the viewers are told, the consumers end
    /// once they have taken the rest.
    pub fn close(&self, now_ms: i64) {
        self.put(self.status_message(false, now_ms));
        for i in &self.inboxes {
            i.close();
        }
    }
}

/// The feed as a sink of the output stage.
pub struct BoardSink {
    builder: BoardBuilder,
    feed: BoardFeed,
}

impl BoardSink {
    /// A sink folding into `feed`.
    pub fn new(feed: BoardFeed) -> BoardSink {
        BoardSink {
            builder: BoardBuilder::new(),
            feed,
        }
    }
}

impl Sink for BoardSink {
    fn record(&mut self, out: &StreamOutput) {
        self.builder.record(out);
    }

    fn alarm(&mut self, ev: &AlarmEvent) {
        self.feed.put(BoardBuilder::alarm(ev));
    }

    fn immediate(&self) -> bool {
        true
    }

    fn params(&mut self, board: &ctower_model::ParamBoard) {
        self.feed.put(BoardMessage {
            topic: BoardTopic::Params,
            payload: encode(board).ok(),
        });
    }

    fn param_request(&mut self, id: &str, view: Option<&ctower_model::ParamRequestView>) {
        self.feed.put(BoardMessage {
            topic: BoardTopic::Param(id.to_string()),
            payload: view.and_then(|v| encode(v).ok()),
        });
    }

    /// Alarms from before a restart: shown as they stand.
    fn held_alarm(&mut self, ev: &AlarmEvent) {
        self.feed.put(BoardBuilder::alarm(ev));
    }

    fn end_window(&mut self, _window: &WindowOutput, now_ms: i64) {
        for m in self.builder.flush(now_ms) {
            self.feed.put(m);
        }
        self.feed
            .corrections
            .store(self.builder.corrections(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
