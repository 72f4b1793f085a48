//! Who is told what, and when: the pure core behind the hooks. The
//! [`Notifier`] turns alarm events into [`Notification`]s for each hook's
//! [`Route`], collapses a flood into one summary, and, while an alarm stays
//! active and unacknowledged, repeats and escalates it on the clock it is
//! given ([`Notifier::tick`]). No I/O, no wall clock: the dispatcher writes
//! what it returns to each hook's durable outbox.
//!
//! Rules, per alarm (rule, scope, signal):
//! - **Raised**: every hook whose route wants it (priority, site, rule; not
//!   `escalation_only`) gets a `trigger`. Its repeat and escalation timers
//!   start at that moment.
//! - **Repeat** (`repeat_secs`): the hook gets a `repeat` trigger again, as
//!   long as the alarm is active and unacknowledged.
//! - **Escalation** (`escalate_after_secs`, `escalate_to`): the next hook
//!   gets an `escalate` trigger, and its own timers start (a chain).
//! - **Acknowledged**: every hook told of it gets `acknowledge`; the timers stop.
//! - **Cleared**: every hook told of it gets `resolve`; the timers stop
//!   (PagerDuty resolves the incident; the alarm may still wait for its
//!   acknowledgement on the console).
//! - Shelved, suppressed, out of service: an `update`; the timers stop.
//!
//! **Flood** (EEMUA 191 / ISA-18.2: more than `flood_alarms` alarms raised
//! in `flood_window` of event time on one site's console): the raise that
//! starts it sends one `flood` summary to the site's hooks instead of
//! itself; further raises of the site are counted into the flood, not sent
//! (urgent ones still are). The first raise after the rate has fallen back
//! ends the flood with a `flood_ended` summary (how many were held back),
//! then goes out as usual. Event time, so a replay floods the same way.

use crate::config::Route;
use ctower_model::{AlarmEvent, AlarmEventKind, AlarmId, AlarmState, Priority};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

/// What a notification asks of its hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A new alarm.
    Trigger,
    /// The same alarm again: still active and unacknowledged.
    Repeat,
    /// Another hook did not get it acknowledged in time.
    Escalate,
    /// An operator acknowledged it.
    Acknowledge,
    /// It returned to normal.
    Resolve,
    /// Another change (shelved, suppressed, out of service, …).
    Update,
    /// A site's console is flooded: one summary instead of each alarm.
    Flood,
    /// The flood is over.
    FloodEnded,
}

impl Action {
    /// The serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Trigger => "trigger",
            Action::Repeat => "repeat",
            Action::Escalate => "escalate",
            Action::Acknowledge => "acknowledge",
            Action::Resolve => "resolve",
            Action::Update => "update",
            Action::Flood => "flood",
            Action::FloodEnded => "flood_ended",
        }
    }
}

/// A flood's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloodSummary {
    /// The site whose console is flooded.
    pub site: Arc<str>,
    /// Event time the flood started (the raise that made it one).
    pub started_ms: i64,
    /// Alarms raised in the window when it started.
    pub alarms_in_window: usize,
    /// The window, in seconds.
    pub window_secs: i64,
    /// Raises held back since (not sent one by one).
    pub held_back: u64,
    /// Raises in the window and since, by priority.
    pub by_priority: BTreeMap<Priority, u64>,
    /// The rules that raised most, with their counts (at most 10).
    pub top_rules: Vec<(Arc<str>, u64)>,
    /// The highest priority among them.
    pub priority: Priority,
}

/// One message for one hook: written to the hook's outbox as one JSON line
/// and delivered from there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique and deterministic (`msg_` + 32 hex digits): the `webhook-id`,
    /// the same on every retry and after a restart.
    pub id: String,
    /// The hook it is for.
    pub hook: Arc<str>,
    /// What it asks.
    pub action: Action,
    /// The alarm event it is about (none for a flood summary).
    pub event: Option<AlarmEvent>,
    /// PagerDuty's dedup key: one per alarm occurrence (or flood).
    pub dedup_key: String,
    /// The repeat's number (1, 2, …) for [`Action::Repeat`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeat: u32,
    /// For [`Action::Escalate`]: the hook that did not get an acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_from: Option<Arc<str>>,
    /// For a flood.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flood: Option<FloodSummary>,
    /// When it was made (the notifier's clock).
    pub created_ms: i64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `prefix` + 32 hex digits of SHA-256 over `parts`.
fn digest_id(prefix: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    let mut id = String::with_capacity(prefix.len() + 32);
    id.push_str(prefix);
    for b in &d[..16] {
        let _ = write!(id, "{b:02x}");
    }
    id
}

/// The dedup key of one occurrence of an alarm (raised at `raised_ms`).
pub fn dedup_key(id: &AlarmId, raised_ms: i64) -> String {
    digest_id(
        "ctower-",
        &[
            &id.rule,
            &id.scope.to_string(),
            id.scope.level.as_str(),
            id.signal.as_deref().unwrap_or(""),
            &raised_ms.to_string(),
        ],
    )
}

/// Timers of one hook for one alarm.
#[derive(Debug, Clone)]
struct Timers {
    hook: usize,
    next_repeat_ms: Option<i64>,
    repeats: u32,
    escalate_at_ms: Option<i64>,
}

/// What the notifier keeps of one alarm it told hooks about.
#[derive(Debug, Clone)]
struct Tracked {
    /// The raising event (repeats and escalations carry it).
    raised: AlarmEvent,
    dedup_key: String,
    /// Hooks told of it (for acknowledge/resolve), in order.
    told: Vec<usize>,
    /// Running timers (empty once acknowledged, cleared or shelved).
    timers: Vec<Timers>,
}

#[derive(Debug, Clone, Default)]
struct Console {
    /// Event times and priorities of raises in the window, oldest first.
    raises: VecDeque<(i64, Priority, Arc<str>)>,
    flood: Option<FloodSummary>,
}

/// Flood limits (EEMUA 191: 10 alarms in 10 minutes per console).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodLimits {
    /// More than this many raises in the window is a flood.
    pub alarms: usize,
    /// The window.
    pub window_ms: i64,
}

impl Default for FloodLimits {
    fn default() -> Self {
        FloodLimits {
            alarms: 10,
            window_ms: 600_000,
        }
    }
}

/// The notifier. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Notifier {
    routes: Vec<Route>,
    by_name: BTreeMap<Arc<str>, usize>,
    flood: FloodLimits,
    tracked: BTreeMap<AlarmId, Tracked>,
    consoles: BTreeMap<Arc<str>, Console>,
}

fn site_of(ev: &AlarmEvent) -> Option<&Arc<str>> {
    ev.scope.site.as_ref()
}

impl Notifier {
    /// A notifier for these routes (one per hook, in order).
    pub fn new(routes: Vec<Route>, flood: FloodLimits) -> Self {
        let by_name = routes
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        Notifier {
            routes,
            by_name,
            flood,
            tracked: BTreeMap::new(),
            consoles: BTreeMap::new(),
        }
    }

    /// Alarms with running repeat or escalation timers.
    pub fn escalating(&self) -> usize {
        self.tracked
            .values()
            .filter(|t| !t.timers.is_empty())
            .count()
    }

    fn notification(&self, hook: usize, action: Action, t: &Tracked, now_ms: i64) -> Notification {
        let ev = &t.raised;
        Notification {
            id: String::new(),
            hook: self.routes[hook].name.clone(),
            action,
            event: Some(ev.clone()),
            dedup_key: t.dedup_key.clone(),
            repeat: 0,
            escalated_from: None,
            flood: None,
            created_ms: now_ms,
        }
    }

    fn timers(&self, hook: usize, now_ms: i64) -> Option<Timers> {
        let r = &self.routes[hook];
        let ms = |d: std::time::Duration| now_ms.saturating_add(d.as_millis() as i64);
        let t = Timers {
            hook,
            next_repeat_ms: r.repeat.map(ms),
            repeats: 0,
            escalate_at_ms: r.escalate.as_ref().map(|(d, _)| ms(*d)),
        };
        (t.next_repeat_ms.is_some() || t.escalate_at_ms.is_some()).then_some(t)
    }

    /// Rebuilds what an event means for the notifier without telling anyone
    /// (events from before a restart, which were sent then).
    pub fn rebuild(&mut self, ev: &AlarmEvent, now_ms: i64) {
        let _ = self.on_event(ev, now_ms);
    }

    /// What an alarm event means for the hooks, at `now_ms` (the clock the
    /// repeat and escalation timers run on).
    pub fn on_event(&mut self, ev: &AlarmEvent, now_ms: i64) -> Vec<Notification> {
        let mut out = Vec::new();
        let id = AlarmId {
            rule: ev.rule.clone(),
            scope: ev.scope.clone(),
            signal: ev.signal.clone(),
        };
        match ev.kind {
            AlarmEventKind::Raised => {
                let held = self.count_raise(ev, now_ms, &mut out);
                let mut t = Tracked {
                    raised: ev.clone(),
                    dedup_key: dedup_key(&id, ev.ts_ms),
                    told: Vec::new(),
                    timers: Vec::new(),
                };
                if !held {
                    for (i, r) in self.routes.iter().enumerate() {
                        if !r.escalation_only
                            && r.wants(site_of(ev).map(|s| &**s), &ev.rule, ev.priority)
                        {
                            t.told.push(i);
                        }
                    }
                    for &i in &t.told {
                        out.push(self.notification(i, Action::Trigger, &t, now_ms));
                    }
                    t.timers = t
                        .told
                        .iter()
                        .filter_map(|&i| self.timers(i, now_ms))
                        .collect();
                }
                if t.told.is_empty() {
                    self.tracked.remove(&id);
                } else {
                    self.tracked.insert(id, t);
                }
            }
            kind if !self.tracked.contains_key(&id)
                && ev.state == AlarmState::UnackActive
                && matches!(
                    kind,
                    AlarmEventKind::Unshelved
                        | AlarmEventKind::Unsuppressed
                        | AlarmEventKind::ReturnedToService
                ) =>
            {
                // Raised while masked (no hook was told): now it is seen,
                // so it is a new alarm for the hooks.
                let mut raised = ev.clone();
                raised.kind = AlarmEventKind::Raised;
                return self.on_event(&raised, now_ms);
            }
            kind => {
                let Some(t) = self.tracked.get_mut(&id) else {
                    return out;
                };
                let action = match kind {
                    AlarmEventKind::Acknowledged => Action::Acknowledge,
                    AlarmEventKind::Cleared => Action::Resolve,
                    _ => Action::Update,
                };
                // Back from a mask into an active, unacknowledged alarm:
                // its repeats and escalation start again.
                let unmasked = matches!(
                    kind,
                    AlarmEventKind::Unshelved
                        | AlarmEventKind::Unsuppressed
                        | AlarmEventKind::ReturnedToService
                ) && ev.state == AlarmState::UnackActive;
                t.timers.clear();
                let told = t.told.clone();
                if unmasked {
                    let timers: Vec<Timers> = told
                        .iter()
                        .filter_map(|&i| self.timers(i, now_ms))
                        .collect();
                    if let Some(t) = self.tracked.get_mut(&id) {
                        t.timers = timers;
                    }
                }
                let Some(t) = self.tracked.get(&id).cloned() else {
                    return out;
                };
                for &i in &t.told {
                    let mut n = self.notification(i, action, &t, now_ms);
                    n.event = Some(ev.clone());
                    out.push(n);
                }
                if ev.state == AlarmState::Normal {
                    self.tracked.remove(&id);
                }
            }
        }
        for n in &mut out {
            n.id = self.id_of(n);
        }
        out
    }

    /// Counts a raise on its site's console; `true` when the flood holds it
    /// back (it may have pushed the flood's start or end notifications).
    fn count_raise(&mut self, ev: &AlarmEvent, now_ms: i64, out: &mut Vec<Notification>) -> bool {
        let Some(site) = site_of(ev).cloned() else {
            return false;
        };
        let limits = self.flood;
        let console = self.consoles.entry(site.clone()).or_default();
        console
            .raises
            .push_back((ev.ts_ms, ev.priority, ev.rule.clone()));
        while console
            .raises
            .front()
            .is_some_and(|(t, _, _)| *t <= ev.ts_ms - limits.window_ms)
        {
            console.raises.pop_front();
        }
        let n = console.raises.len();
        let mut summary = match console.flood.take() {
            Some(mut f) if n > limits.alarms => {
                // Still flooded: counted, held back (urgent ones still go).
                *f.by_priority.entry(ev.priority).or_default() += 1;
                bump(&mut f.top_rules, &ev.rule);
                f.priority = f.priority.max(ev.priority);
                let urgent = ev.priority == Priority::Urgent;
                if !urgent {
                    f.held_back += 1;
                }
                console.flood = Some(f);
                return !urgent;
            }
            Some(f) => {
                // The rate fell back: the flood ends, this raise goes out.
                self.tell_sites(&site, Action::FloodEnded, f, now_ms, out);
                return false;
            }
            None if n > limits.alarms => FloodSummary {
                site: site.clone(),
                started_ms: ev.ts_ms,
                alarms_in_window: n,
                window_secs: limits.window_ms / 1000,
                held_back: 0,
                by_priority: BTreeMap::new(),
                top_rules: Vec::new(),
                priority: Priority::Low,
            },
            None => return false,
        };
        for (_, p, rule) in &console.raises {
            *summary.by_priority.entry(*p).or_default() += 1;
            bump(&mut summary.top_rules, rule);
            summary.priority = summary.priority.max(*p);
        }
        console.flood = Some(summary.clone());
        self.tell_sites(&site, Action::Flood, summary, now_ms, out);
        ev.priority != Priority::Urgent
    }

    /// A flood notification to every hook routing `site` (any priority the
    /// flood reaches).
    fn tell_sites(
        &self,
        site: &Arc<str>,
        action: Action,
        f: FloodSummary,
        now_ms: i64,
        out: &mut Vec<Notification>,
    ) {
        let key = digest_id("ctower-flood-", &[site, &f.started_ms.to_string()]);
        for r in &self.routes {
            let wants = !r.escalation_only
                && (r.sites.is_empty() || r.sites.iter().any(|s| s == site))
                && f.priority >= r.min_priority;
            if wants {
                let mut f = f.clone();
                f.top_rules.truncate(10);
                out.push(Notification {
                    id: String::new(),
                    hook: r.name.clone(),
                    action,
                    event: None,
                    dedup_key: key.clone(),
                    repeat: 0,
                    escalated_from: None,
                    flood: Some(f),
                    created_ms: now_ms,
                });
            }
        }
    }

    /// Repeats and escalations due at `now_ms`.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Notification> {
        let mut out = Vec::new();
        let keys: Vec<AlarmId> = self
            .tracked
            .iter()
            .filter(|(_, t)| !t.timers.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let Some(mut t) = self.tracked.remove(&key) else {
                continue;
            };
            let mut new_timers = Vec::new();
            let mut timers = std::mem::take(&mut t.timers);
            for timer in &mut timers {
                let r = &self.routes[timer.hook];
                if let (Some(at), Some(every)) = (timer.next_repeat_ms, r.repeat) {
                    if at <= now_ms {
                        // One repeat, however many periods passed (a
                        // clock jump, a pause): no burst.
                        timer.repeats += 1;
                        let mut n = self.notification(timer.hook, Action::Repeat, &t, now_ms);
                        n.repeat = timer.repeats;
                        out.push(n);
                        timer.next_repeat_ms =
                            Some(now_ms.saturating_add((every.as_millis() as i64).max(1)));
                    }
                }
                if timer.escalate_at_ms.is_some_and(|at| at <= now_ms) {
                    timer.escalate_at_ms = None;
                    let next = r
                        .escalate
                        .as_ref()
                        .and_then(|(_, to)| self.by_name.get(to))
                        .copied();
                    if let Some(next) = next.filter(|n| !t.told.contains(n)) {
                        let mut n = self.notification(next, Action::Escalate, &t, now_ms);
                        n.escalated_from = Some(r.name.clone());
                        out.push(n);
                        new_timers.push(next);
                    }
                }
            }
            t.timers = timers;
            for next in new_timers {
                t.told.push(next);
                if let Some(timer) = self.timers(next, now_ms) {
                    t.timers.push(timer);
                }
            }
            t.timers
                .retain(|x| x.next_repeat_ms.is_some() || x.escalate_at_ms.is_some());
            self.tracked.insert(key, t);
        }
        for n in &mut out {
            n.id = self.id_of(n);
        }
        out
    }

    /// The notification's id: over the hook, the action, the alarm
    /// occurrence, the event and the repeat or escalation step.
    fn id_of(&self, n: &Notification) -> String {
        let (kind, ts) = n
            .event
            .as_ref()
            .map_or(("", 0), |e| (crate::hooks::event_type(e.kind), e.ts_ms));
        digest_id(
            "msg_",
            &[
                &n.hook,
                n.action.as_str(),
                &n.dedup_key,
                kind,
                &ts.to_string(),
                &n.repeat.to_string(),
                n.escalated_from.as_deref().unwrap_or(""),
                // Repeats and escalations happen on the wall clock: after
                // a restart their numbers start again, their ids must not.
                &match n.action {
                    Action::Repeat | Action::Escalate => n.created_ms.to_string(),
                    _ => String::new(),
                },
            ],
        )
    }
}

fn bump(top: &mut Vec<(Arc<str>, u64)>, rule: &Arc<str>) {
    match top.iter_mut().find(|(r, _)| r == rule) {
        Some((_, n)) => *n += 1,
        None => top.push((rule.clone(), 1)),
    }
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
}

#[cfg(test)]
mod tests;
