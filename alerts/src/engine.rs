//! The alarm engine: threshold rules with on-delay and hysteresis, and the
//! ISA-18.2 alarm lifecycle. Pure: no I/O and no wall clock; time is the
//! event time of the inputs (window ends) and of acknowledgements.
//!
//! ```text
//!            raise                 ack
//!  Normal ───────────> UnackActive ─────> AckActive
//!    ^                   │    ^               │
//!    │ ack         clear │    │ raise         │ clear
//!    │                   v    │               │
//!    └──────────────── UnackRtn               │
//!    ^                                        │
//!    └────────────────────────────────────────┘
//! ```
//!
//! Semantics, per alarm (one per rule, scope and signal):
//! - The condition must hold continuously: the alarm raises at the first
//!   window end `e` with `e − s ≥ on_delay`, where `s` is the start of the
//!   first window of the current run of true windows. With no on-delay it
//!   raises on the first true window.
//! - While not active, a value that is not beyond the threshold ends the
//!   run (even inside the hysteresis band). An undefined value (`None`,
//!   non-finite) or a window that never arrives changes nothing: the run is
//!   held, not broken.
//! - Once active, the alarm clears only past `clear_at`.
//! - Inputs must come in event-time order (by window end). Alarms decide on
//!   the first result of a window and are never retracted: a KPI correction
//!   (`revision > 0`), an input whose window end is earlier than the latest
//!   one seen, and a second input for a window an alarm already evaluated
//!   are not evaluated, only counted in [`AlarmEngine::late_ignored`].

use crate::config::{Rule, RuleSource, ScopeFilter, Stat};
use crate::detect::{Detector, Kind, Reading};
use crate::lifecycle::{Input as LifeInput, Lifecycle, Transition};
use ctower_model::{
    AlarmEvent, AlarmEventKind, AlarmId, AlarmState, AssetKey, Bucket, Level, Observation,
    Priority, ScopeKey, StreamOutput, Value,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Machine states by line (site, area, line), then by asset.
type LineModes = BTreeMap<(Arc<str>, Arc<str>, Arc<str>), BTreeMap<Arc<str>, Bucket>>;

/// Identity of one alarm: rule (by index), scope, signal.
type AlarmKey = (usize, ScopeKey, Option<Arc<str>>);

/// A chattering alarm: this many raises within [`CHATTER_WINDOW_MS`].
pub const CHATTER_RAISES: usize = 3;
/// The chatter window (EEMUA 191 / ISA-18.2: 3 active/clear cycles in a minute).
pub const CHATTER_WINDOW_MS: i64 = 60_000;

#[derive(Debug, Clone)]
struct Slot {
    /// The ISA-18.2 state machine ([`crate::lifecycle`]).
    life: Lifecycle,
    /// The rule's detector state ([`crate::detect`]).
    detector: Detector,
    /// Start of the first true input of the current run, while not active.
    run_start_ms: Option<i64>,
    /// Start of the first false input of the current run, while active.
    clear_start_ms: Option<i64>,
    /// Latest input time evaluated for this alarm.
    last_end_ms: i64,
    last_value: Option<f64>,
    /// When the alarm last raised.
    raised_ms: Option<i64>,
    /// When the state last changed.
    changed_ms: i64,
    /// Raises within the chatter window, oldest first.
    raises: VecDeque<i64>,
    /// Chattering: held active until the condition has been gone for the
    /// chatter window.
    chattering: bool,
}

impl Slot {
    fn new(rule: &Rule, now_ms: i64) -> Self {
        Slot {
            life: Lifecycle::new(false),
            detector: Detector::new(&rule.kind),
            run_start_ms: None,
            clear_start_ms: None,
            last_end_ms: i64::MIN,
            last_value: None,
            raised_ms: None,
            changed_ms: now_ms,
            raises: VecDeque::new(),
            chattering: false,
        }
    }

    /// A slot that carries no information and can be forgotten.
    fn is_idle(&self, rule: &Rule) -> bool {
        self.life.is_idle() && self.run_start_ms.is_none() && !rule.kind.stateful()
    }
}

/// A current alarm (any state but Normal), as shown in an alarm list.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmStatus {
    /// The rule's name.
    pub rule: Arc<str>,
    /// Where it applies.
    pub scope: ScopeKey,
    /// The signal, for a telemetry rule; `None` for a KPI rule.
    pub signal: Option<Arc<str>>,
    /// Its ISA-18.2 state (never `Normal` here).
    pub state: AlarmState,
    /// The rule's priority.
    pub priority: Priority,
    /// The KPI field or signal statistic the rule watches.
    pub metric: Arc<str>,
    /// The rule's message for the operator.
    pub message: Arc<str>,
    /// Latest defined value seen for this alarm.
    pub value: Option<f64>,
    /// The value past which the alarm is raised.
    pub threshold: f64,
    /// The value past which it clears (the hysteresis band's other side).
    pub clear_at: f64,
    /// Event time of the latest raise.
    pub raised_ms: Option<i64>,
    /// Event time of the latest state change.
    pub changed_ms: i64,
    /// Chattering (3 raises within a minute): held until the condition has
    /// been gone for a minute.
    pub chattering: bool,
}

impl AlarmStatus {
    /// The alarm this status describes.
    pub fn id(&self) -> AlarmId {
        AlarmId {
            rule: self.rule.clone(),
            scope: self.scope.clone(),
            signal: self.signal.clone(),
        }
    }
}

/// Threshold rules → ISA-18.2 alarm events. See the module docs for the
/// exact semantics.
#[derive(Debug, Clone)]
pub struct AlarmEngine {
    rules: Vec<Rule>,
    by_name: BTreeMap<Arc<str>, usize>,
    alarms: BTreeMap<AlarmKey, Slot>,
    watermark_ms: Option<i64>,
    late_ignored: u64,
    /// Deadman alarms by site, and each site's newest sample time.
    deadmen: BTreeMap<Arc<str>, BTreeSet<AlarmKey>>,
    site_clock: BTreeMap<Arc<str>, i64>,
    chatter_detected: u64,
    /// The machine state of each asset, by line (for design suppression).
    modes: LineModes,
}

fn filter_matches(
    f: &ScopeFilter,
    site: Option<&str>,
    area: Option<&str>,
    line: Option<&str>,
    asset: Option<&str>,
) -> bool {
    let ok = |want: &Option<Arc<str>>, have: Option<&str>| match want {
        None => true,
        Some(w) => have == Some(&**w),
    };
    ok(&f.site, site) && ok(&f.area, area) && ok(&f.line, line) && ok(&f.asset, asset)
}

fn defined(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// What one stream output means for one rule: the alarm's scope and signal,
/// the value, and the window.
struct Input {
    scope: ScopeKey,
    signal: Option<Arc<str>>,
    value: Option<f64>,
    window_start_ms: i64,
    window_end_ms: i64,
}

fn select(rule: &Rule, out: &StreamOutput) -> Option<Input> {
    match (&rule.source, out) {
        (RuleSource::Kpi { level, metric }, StreamOutput::Kpi(rec)) => {
            let s = &rec.scope;
            if s.level != *level
                || !filter_matches(
                    &rule.filter,
                    s.site.as_deref(),
                    s.area.as_deref(),
                    s.line.as_deref(),
                    s.asset.as_deref(),
                )
            {
                return None;
            }
            Some(Input {
                scope: s.clone(),
                signal: None,
                value: defined(rec.metric(metric)),
                window_start_ms: rec.window_start_ms,
                window_end_ms: rec.window_end_ms,
            })
        }
        (RuleSource::Signal { signal, stat }, StreamOutput::Signal(w)) => {
            let a: &AssetKey = &w.asset;
            if w.signal != *signal
                || !filter_matches(
                    &rule.filter,
                    Some(&a.site),
                    Some(&a.area),
                    Some(&a.line),
                    Some(&a.asset),
                )
            {
                return None;
            }
            let value = match stat {
                Stat::Min => w.min,
                Stat::Max => w.max,
                Stat::Mean => w.mean,
                Stat::Last => w.last,
            };
            Some(Input {
                scope: a.scope(Level::Asset),
                signal: Some(w.signal.clone()),
                // A window without samples has no statistic.
                value: defined((w.count > 0).then_some(value)),
                window_start_ms: w.window_start_ms,
                window_end_ms: w.window_end_ms,
            })
        }
        _ => None,
    }
}

/// One change of one alarm, before it becomes an [`AlarmEvent`].
struct Change {
    kind: AlarmEventKind,
    state: AlarmState,
    value: Option<f64>,
    threshold: f64,
    ts_ms: i64,
}

fn event(rule: &Rule, scope: &ScopeKey, signal: &Option<Arc<str>>, c: Change) -> AlarmEvent {
    AlarmEvent {
        ts_ms: c.ts_ms,
        rule: rule.name.clone(),
        scope: scope.clone(),
        signal: signal.clone(),
        kind: c.kind,
        state: c.state,
        priority: rule.priority,
        metric: rule.metric_label(),
        value: c.value,
        threshold: c.threshold,
        message: rule.message.clone(),
    }
}

/// The event of a transition an operator or a mask made (shelf,
/// suppression, service): the rule's threshold, `value` if known.
fn mask_event(
    rule: &Rule,
    scope: &ScopeKey,
    signal: &Option<Arc<str>>,
    t: Transition,
    value: Option<f64>,
    ts_ms: i64,
) -> AlarmEvent {
    event(
        rule,
        scope,
        signal,
        Change {
            kind: t.kind,
            state: t.to,
            value,
            threshold: rule.threshold,
            ts_ms,
        },
    )
}

/// Whether any machine of `a`'s line is in one of `states`.
fn line_in(modes: &LineModes, a: &AssetKey, states: &[Bucket]) -> bool {
    !states.is_empty()
        && modes
            .get(&(a.site.clone(), a.area.clone(), a.line.clone()))
            .is_some_and(|m| m.values().any(|b| states.contains(b)))
}

/// One reading of a rule's detector for the alarm in `slot`: on-delay
/// before raising, off-delay (and the chatter hold) before clearing, and
/// the change it makes, if any. `start_ms`..`end_ms` bound the input (a
/// window; a sample has both at its time).
fn step(rule: &Rule, slot: &mut Slot, r: Reading, start_ms: i64, end_ms: i64) -> Vec<Change> {
    let to_changes = |ts: Vec<Transition>| -> Vec<Change> {
        ts.into_iter()
            .map(|t| Change {
                kind: t.kind,
                state: t.to,
                value: Some(r.value),
                threshold: match t.kind {
                    AlarmEventKind::Cleared => rule.clear_at,
                    _ => rule.threshold,
                },
                ts_ms: end_ms,
            })
            .collect()
    };
    let Some(cond) = r.condition else {
        return Vec::new(); // unknown: hold
    };
    if slot.life.condition() {
        if cond {
            slot.clear_start_ms = None;
            return Vec::new();
        }
        let since = *slot.clear_start_ms.get_or_insert(start_ms);
        let hold = match slot.chattering {
            true => rule.off_delay_ms.max(CHATTER_WINDOW_MS),
            false => rule.off_delay_ms,
        };
        if end_ms - since < hold {
            return Vec::new();
        }
        slot.clear_start_ms = None;
        slot.chattering = false;
        // An expired shelf ends first: every change is told.
        let ts = slot.life.apply(LifeInput::Condition(false), end_ms);
        if !ts.is_empty() {
            slot.changed_ms = end_ms;
        }
        return to_changes(ts);
    }
    if !cond {
        slot.run_start_ms = None;
        return Vec::new();
    }
    let start = *slot.run_start_ms.get_or_insert(start_ms);
    if end_ms - start < rule.on_delay_ms {
        return Vec::new();
    }
    slot.run_start_ms = None;
    let ts = slot.life.apply(LifeInput::Condition(true), end_ms);
    if !ts.is_empty() {
        slot.changed_ms = end_ms;
    }
    if ts.iter().any(|t| t.kind == AlarmEventKind::Raised) {
        slot.raised_ms = Some(end_ms);
        slot.raises.push_back(end_ms);
        while slot
            .raises
            .front()
            .is_some_and(|t| *t <= end_ms - CHATTER_WINDOW_MS)
        {
            slot.raises.pop_front();
        }
        if slot.raises.len() >= CHATTER_RAISES && !slot.chattering {
            slot.chattering = true;
            tracing::warn!(rule = %rule.name, raises = slot.raises.len(), "alarm chattering: held active until its condition has been gone for a minute");
        }
    }
    to_changes(ts)
}

impl AlarmEngine {
    /// An engine over `rules` (names are expected unique, as
    /// [`AlertsConfig::check`](crate::AlertsConfig::check) ensures;
    /// with duplicates, acknowledgement by name reaches the first).
    pub fn new(rules: Vec<Rule>) -> Self {
        let mut by_name = BTreeMap::new();
        for (i, r) in rules.iter().enumerate() {
            by_name.entry(r.name.clone()).or_insert(i);
        }
        AlarmEngine {
            rules,
            by_name,
            alarms: BTreeMap::new(),
            watermark_ms: None,
            late_ignored: 0,
            deadmen: BTreeMap::new(),
            site_clock: BTreeMap::new(),
            chatter_detected: 0,
            modes: BTreeMap::new(),
        }
    }

    /// The rules it evaluates, in configuration order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Inputs not evaluated because they were out of event-time order or a
    /// second result for an already evaluated window.
    pub fn late_ignored(&self) -> u64 {
        self.late_ignored
    }

    /// Evaluates one stream output against every rule. Events come in rule
    /// order; there is at most one per rule.
    pub fn process(&mut self, out: &StreamOutput) -> Vec<AlarmEvent> {
        // Rules evaluate windows; shift and day records are reports.
        if matches!(out, StreamOutput::Kpi(k) if k.period != ctower_model::Period::Window) {
            return Vec::new();
        }
        let end = out.window_end_ms();
        let correction = matches!(out, StreamOutput::Kpi(k) if k.revision > 0);
        if correction || self.watermark_ms.is_some_and(|w| end < w) {
            self.late_ignored += 1;
            return Vec::new();
        }
        self.watermark_ms = Some(end);
        let mut events = Vec::new();
        let mut ignored = false;
        for (idx, rule) in self.rules.iter().enumerate() {
            let Some(input) = select(rule, out) else {
                continue;
            };
            let Input {
                scope,
                signal,
                value,
                window_start_ms,
                window_end_ms,
            } = input;
            let key: AlarmKey = (idx, scope, signal);
            let slot = match self.alarms.get_mut(&key) {
                Some(slot) => slot,
                None => {
                    // Nothing to remember unless the value starts a run
                    // (or the detector keeps state).
                    let starts = value.is_some_and(|v| rule.trips(v));
                    if !starts && !rule.kind.stateful() {
                        continue;
                    }
                    self.alarms
                        .entry(key.clone())
                        .or_insert_with(|| Slot::new(rule, window_end_ms))
                }
            };
            if window_end_ms <= slot.last_end_ms {
                ignored = true;
                continue;
            }
            slot.last_end_ms = window_end_ms;
            let Some(v) = value else {
                continue; // undefined: hold
            };
            slot.last_value = Some(v);
            let active = slot.life.condition();
            let reading = slot.detector.observe(rule, window_end_ms, v, active);
            let raised_before = slot.chattering;
            for change in step(rule, slot, reading, window_start_ms, window_end_ms) {
                let (_, scope, signal) = &key;
                events.push(event(rule, scope, signal, change));
            }
            if slot.chattering && !raised_before {
                self.chatter_detected += 1;
            }
            if slot.is_idle(rule) {
                self.alarms.remove(&key);
            }
        }
        if ignored {
            self.late_ignored += 1;
        }
        events
    }

    /// Alarms found chattering so far.
    pub fn chatter_detected(&self) -> u64 {
        self.chatter_detected
    }

    /// Whether any rule watches samples (the stream then sends them).
    pub fn watches_samples(&self) -> bool {
        self.rules.iter().any(|r| r.sample_signal().is_some())
    }

    /// Whether a rule is suppressed by machine states (the stream then
    /// sends every state sample too).
    pub fn watches_states(&self) -> bool {
        self.rules.iter().any(|r| !r.suppress_when.is_empty())
    }

    /// Evaluates one sample against every `sample` rule, at the sample's
    /// event time: process alarms, milliseconds after the sample arrives.
    /// Then the deadman rules of its site see the site's event time move.
    /// A sample not newer than the last one of its alarm is not evaluated
    /// (counted in [`Self::late_ignored`]).
    pub fn sample(&mut self, obs: &Observation) -> Vec<AlarmEvent> {
        let mut events = Vec::new();
        let a = &obs.asset;
        if let Value::State { bucket, .. } = &obs.value {
            self.set_mode(obs, *bucket, &mut events);
        }
        let x = obs.value.as_f64().filter(|v| v.is_finite());
        for (idx, rule) in self.rules.iter().enumerate() {
            if rule.sample_signal() != Some(&obs.signal)
                || !filter_matches(
                    &rule.filter,
                    Some(&a.site),
                    Some(&a.area),
                    Some(&a.line),
                    Some(&a.asset),
                )
            {
                continue;
            }
            let Some(x) = x else {
                continue; // not a number: nothing to judge
            };
            let key: AlarmKey = (idx, a.scope(Level::Asset), Some(obs.signal.clone()));
            let slot = match self.alarms.get_mut(&key) {
                Some(slot) => slot,
                None => {
                    if !rule.trips(x) && !rule.kind.stateful() {
                        continue;
                    }
                    if matches!(rule.kind, Kind::Deadman { .. }) {
                        self.deadmen
                            .entry(a.site.clone())
                            .or_default()
                            .insert(key.clone());
                    }
                    self.alarms
                        .entry(key.clone())
                        .or_insert_with(|| Slot::new(rule, obs.ts_ms))
                }
            };
            if obs.ts_ms <= slot.last_end_ms {
                self.late_ignored += 1;
                continue;
            }
            slot.last_end_ms = obs.ts_ms;
            slot.last_value = Some(x);
            let active = slot.life.condition();
            let reading = slot.detector.observe(rule, obs.ts_ms, x, active);
            // An alarm that would raise while its line is in a state that
            // suppresses it by design is shown suppressed instead.
            if reading.condition == Some(true)
                && !active
                && !slot.life.suppressed()
                && line_in(&self.modes, a, &rule.suppress_when)
            {
                for t in slot.life.apply(LifeInput::Suppress(true), obs.ts_ms) {
                    slot.changed_ms = obs.ts_ms;
                    events.push(mask_event(rule, &key.1, &key.2, t, Some(x), obs.ts_ms));
                }
            }
            let chattering = slot.chattering;
            for change in step(rule, slot, reading, obs.ts_ms, obs.ts_ms) {
                events.push(event(rule, &key.1, &key.2, change));
            }
            if slot.chattering && !chattering {
                self.chatter_detected += 1;
            }
            if slot.is_idle(rule) {
                self.alarms.remove(&key);
            }
        }
        let clock = self.site_clock.entry(a.site.clone()).or_insert(obs.ts_ms);
        *clock = (*clock).max(obs.ts_ms);
        let clock = *clock;
        events.extend(self.deadman_check(&a.site, clock));
        events
    }

    /// An asset's machine state changed: the design suppression of the
    /// sample alarms of its line follows (in input order, so a replay
    /// suppresses the same way).
    fn set_mode(&mut self, obs: &Observation, bucket: Bucket, events: &mut Vec<AlarmEvent>) {
        let a = &obs.asset;
        let line = (a.site.clone(), a.area.clone(), a.line.clone());
        let was = self.modes.get(&line).and_then(|m| m.get(&a.asset)).copied();
        if was == Some(bucket) {
            return;
        }
        self.modes
            .entry(line)
            .or_default()
            .insert(a.asset.clone(), bucket);
        for ((idx, scope, signal), slot) in self.alarms.iter_mut() {
            let rule = &self.rules[*idx];
            if rule.suppress_when.is_empty()
                || scope.site.as_ref() != Some(&a.site)
                || scope.area.as_ref() != Some(&a.area)
                || scope.line.as_ref() != Some(&a.line)
            {
                continue;
            }
            let want = line_in(&self.modes, a, &rule.suppress_when);
            // A normal alarm is not told it is suppressed: it is when it
            // would raise (`sample`).
            if want == slot.life.suppressed() || (want && slot.life.state() == AlarmState::Normal) {
                continue;
            }
            for t in slot.life.apply(LifeInput::Suppress(want), obs.ts_ms) {
                slot.changed_ms = obs.ts_ms;
                events.push(mask_event(
                    rule,
                    scope,
                    signal,
                    t,
                    slot.last_value,
                    obs.ts_ms,
                ));
            }
        }
    }

    /// Deadman alarms of `site` at its event time `clock_ms` (the newest
    /// sample of a watched signal of the site: so a replay, whatever its
    /// timing, sees the same silences).
    fn deadman_check(&mut self, site: &Arc<str>, clock_ms: i64) -> Vec<AlarmEvent> {
        let keys: Vec<AlarmKey> = self
            .deadmen
            .get(site)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let mut events = Vec::new();
        for key in keys {
            let rule = &self.rules[key.0];
            let Some(slot) = self.alarms.get_mut(&key) else {
                continue;
            };
            if clock_ms <= slot.last_end_ms {
                continue;
            }
            let Some(reading) = slot.detector.silence(rule, clock_ms) else {
                continue;
            };
            let start = match reading.condition {
                // The silence began when the last sample came.
                Some(true) => slot.last_end_ms,
                _ => clock_ms,
            };
            for change in step(rule, slot, reading, start, clock_ms) {
                events.push(event(rule, &key.1, &key.2, change));
            }
        }
        events
    }

    /// An operator acknowledges an alarm at `ts_ms`. UnackActive →
    /// AckActive, UnackRtn → Normal; `None` when there is nothing to
    /// acknowledge (unknown alarm, Normal or already acknowledged). The
    /// event carries no value and the rule's threshold.
    pub fn acknowledge(
        &mut self,
        rule: &str,
        scope: &ScopeKey,
        signal: Option<&str>,
        ts_ms: i64,
    ) -> Option<AlarmEvent> {
        let idx = *self.by_name.get(rule)?;
        let key: AlarmKey = (idx, scope.clone(), signal.map(Arc::from));
        let slot = self.alarms.get_mut(&key)?;
        let next = slot.life.apply(LifeInput::Acknowledge, ts_ms).pop()?.to;
        slot.changed_ms = ts_ms;
        let r = &self.rules[idx];
        let ev = event(
            r,
            &key.1,
            &key.2,
            Change {
                kind: AlarmEventKind::Acknowledged,
                state: next,
                value: None,
                threshold: r.threshold,
                ts_ms,
            },
        );
        if slot.is_idle(r) {
            self.alarms.remove(&key);
        }
        Some(ev)
    }

    /// An operator's input on an alarm of a known rule at `now_ms` (wall
    /// clock): shelve, unshelve, out of service, back in service,
    /// acknowledge. The events it makes (none: nothing to do). An alarm
    /// not known yet (normal) is made, so that a normal alarm can be
    /// shelved or taken out of service. `Err` for an unknown rule.
    pub fn operate(
        &mut self,
        id: &AlarmId,
        input: LifeInput,
        now_ms: i64,
    ) -> Result<Vec<AlarmEvent>, String> {
        let idx = *self
            .by_name
            .get(&id.rule)
            .ok_or_else(|| format!("no rule is named `{}`", id.rule))?;
        let key: AlarmKey = (idx, id.scope.clone(), id.signal.clone());
        let rule = &self.rules[idx];
        if matches!(rule.kind, Kind::Deadman { .. }) {
            if let Some(site) = &id.scope.site {
                self.deadmen
                    .entry(site.clone())
                    .or_default()
                    .insert(key.clone());
            }
        }
        let slot = self
            .alarms
            .entry(key.clone())
            .or_insert_with(|| Slot::new(rule, now_ms));
        let mut events = Vec::new();
        for t in slot.life.apply(input, now_ms) {
            slot.changed_ms = now_ms;
            events.push(mask_event(rule, &key.1, &key.2, t, None, now_ms));
        }
        if slot.is_idle(rule) {
            self.alarms.remove(&key);
        }
        Ok(events)
    }

    /// What [`Self::operate`] would do: (state before, state after), or
    /// `None` when it would change nothing. Nothing changes here.
    pub fn preview(
        &self,
        id: &AlarmId,
        input: LifeInput,
        now_ms: i64,
    ) -> Option<(AlarmState, AlarmState)> {
        let idx = *self.by_name.get(&id.rule)?;
        let key: AlarmKey = (idx, id.scope.clone(), id.signal.clone());
        let mut life = match self.alarms.get(&key) {
            Some(s) => s.life.clone(),
            None => Lifecycle::new(false),
        };
        let before = life.state();
        let last = life.apply(input, now_ms).pop()?;
        Some((before, last.to))
    }

    /// The state of an alarm (normal when not known).
    pub fn state_of(&self, id: &AlarmId) -> AlarmState {
        let Some(&idx) = self.by_name.get(&id.rule) else {
            return AlarmState::Normal;
        };
        let key: AlarmKey = (idx, id.scope.clone(), id.signal.clone());
        self.alarms
            .get(&key)
            .map_or(AlarmState::Normal, |s| s.life.state())
    }

    /// Whether a rule of this name exists.
    pub fn has_rule(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Shelves that expired by `now_ms` (wall clock) end: the alarms come
    /// back (unacknowledged if their condition holds).
    pub fn expire_shelves(&mut self, now_ms: i64) -> Vec<AlarmEvent> {
        let due: Vec<AlarmKey> = self
            .alarms
            .iter()
            .filter(|(_, s)| s.life.shelved_until_ms().is_some_and(|t| t <= now_ms))
            .map(|(k, _)| k.clone())
            .collect();
        let mut events = Vec::new();
        for (idx, scope, signal) in due {
            let id = AlarmId {
                rule: self.rules[idx].name.clone(),
                scope,
                signal,
            };
            events.extend(
                self.operate(&id, LifeInput::Tick, now_ms)
                    .unwrap_or_default(),
            );
        }
        events
    }

    /// Until when an alarm is shelved.
    pub fn shelved_until(&self, id: &AlarmId) -> Option<i64> {
        let idx = *self.by_name.get(&id.rule)?;
        let key: AlarmKey = (idx, id.scope.clone(), id.signal.clone());
        self.alarms.get(&key)?.life.shelved_until_ms()
    }

    /// An alarm's state as a restart finds it in the audit trail: its
    /// lifecycle is put back (the condition as that state implies), so an
    /// active alarm is not raised again and an acknowledgement, shelf or
    /// out-of-service survives. `false` for an unknown rule.
    pub fn restore(
        &mut self,
        id: &AlarmId,
        state: AlarmState,
        shelved_until_ms: Option<i64>,
        at_ms: i64,
    ) -> bool {
        let Some(&idx) = self.by_name.get(&id.rule) else {
            return false;
        };
        let rule = &self.rules[idx];
        let key: AlarmKey = (idx, id.scope.clone(), id.signal.clone());
        let mut slot = Slot::new(rule, at_ms);
        slot.life = Lifecycle::restored(state, shelved_until_ms);
        if slot.life.condition() {
            slot.raised_ms = Some(at_ms);
        }
        if matches!(rule.kind, Kind::Deadman { .. }) {
            if let Some(site) = &id.scope.site {
                self.deadmen
                    .entry(site.clone())
                    .or_default()
                    .insert(key.clone());
            }
        }
        if slot.is_idle(rule) {
            self.alarms.remove(&key);
        } else {
            self.alarms.insert(key, slot);
        }
        true
    }

    /// An event of `kind` into `state` for an alarm of a known rule at
    /// `ts_ms`, as the engine would have made it (to tell the hooks, after
    /// a restart, what they were told before it).
    pub fn event_for(
        &self,
        id: &AlarmId,
        kind: AlarmEventKind,
        state: AlarmState,
        ts_ms: i64,
    ) -> Option<AlarmEvent> {
        let rule = &self.rules[*self.by_name.get(&id.rule)?];
        Some(event(
            rule,
            &id.scope,
            &id.signal,
            Change {
                kind,
                state,
                value: None,
                threshold: rule.threshold,
                ts_ms,
            },
        ))
    }

    /// Current alarms: every alarm not Normal (active, or returned to
    /// normal and still unacknowledged), in rule order, then scope, then
    /// signal.
    pub fn active(&self) -> impl Iterator<Item = AlarmStatus> + '_ {
        self.alarms
            .iter()
            .filter(|(_, s)| s.life.state() != AlarmState::Normal)
            .map(|((idx, scope, signal), s)| {
                let r = &self.rules[*idx];
                AlarmStatus {
                    rule: r.name.clone(),
                    scope: scope.clone(),
                    signal: signal.clone(),
                    state: s.life.state(),
                    priority: r.priority,
                    metric: r.metric_label(),
                    message: r.message.clone(),
                    value: s.last_value,
                    threshold: r.threshold,
                    clear_at: r.clear_at,
                    raised_ms: s.raised_ms,
                    changed_ms: s.changed_ms,
                    chattering: s.chattering,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Condition;
    use ctower_model::kpi::{KpiSums, SignalWindow};
    use ctower_model::{KpiRecord, Role};
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    fn rule(cond: Condition, threshold: f64, clear_at: f64, on_delay_ms: i64) -> Rule {
        Rule {
            name: "r".into(),
            source: RuleSource::Signal {
                signal: "x".into(),
                stat: Stat::Last,
            },
            condition: cond,
            threshold,
            clear_at,
            on_delay_ms,
            off_delay_ms: 0,
            kind: Kind::Threshold,
            suppress_when: Vec::new(),
            priority: Priority::High,
            message: "m".into(),
            filter: ScopeFilter::default(),
        }
    }

    fn asset() -> AssetKey {
        AssetKey::new("s", "a", "l", "m1")
    }

    /// Signal window `i` (one minute long) with `value` (None: no samples).
    fn win(i: i64, value: Option<f64>) -> StreamOutput {
        let v = value.unwrap_or(f64::NAN);
        StreamOutput::Signal(SignalWindow {
            window_start_ms: i * MIN,
            window_end_ms: (i + 1) * MIN,
            asset: asset(),
            signal: "x".into(),
            role: Role::Process,
            count: u64::from(value.is_some()),
            min: v,
            max: v,
            mean: v,
            last: v,
        })
    }

    fn kinds(evs: &[AlarmEvent]) -> Vec<(AlarmEventKind, AlarmState)> {
        evs.iter().map(|e| (e.kind, e.state)).collect()
    }

    fn scope() -> ScopeKey {
        asset().scope(Level::Asset)
    }

    fn run(engine: &mut AlarmEngine, values: &[Option<f64>]) -> Vec<AlarmEvent> {
        values
            .iter()
            .enumerate()
            .flat_map(|(i, v)| engine.process(&win(i as i64, *v)))
            .collect()
    }

    #[test]
    fn isa_18_2_transitions() {
        use AlarmEventKind::*;
        use AlarmState::*;
        let mut e = AlarmEngine::new(vec![rule(Condition::Above, 10.0, 8.0, 0)]);
        // Normal → UnackActive.
        let ev = e.process(&win(0, Some(11.0)));
        assert_eq!(kinds(&ev), vec![(Raised, UnackActive)]);
        assert_eq!(ev[0].ts_ms, MIN);
        assert_eq!(ev[0].value, Some(11.0));
        assert_eq!(ev[0].threshold, 10.0);
        assert_eq!(&*ev[0].metric, "x.last");
        assert_eq!(ev[0].signal.as_deref(), Some("x"));
        assert_eq!(ev[0].scope, scope());
        // Still true: no event, no duplicate.
        assert!(e.process(&win(1, Some(12.0))).is_empty());
        // UnackActive → AckActive.
        let ack = e.acknowledge("r", &scope(), Some("x"), 150_000);
        assert_eq!(
            ack.as_ref().map(|a| (a.kind, a.state)),
            Some((Acknowledged, AckActive))
        );
        assert_eq!(ack.as_ref().map(|a| a.ts_ms), Some(150_000));
        // Acknowledging again does nothing.
        assert!(e.acknowledge("r", &scope(), Some("x"), 160_000).is_none());
        // AckActive → Normal.
        let ev = e.process(&win(2, Some(7.0)));
        assert_eq!(kinds(&ev), vec![(Cleared, Normal)]);
        assert_eq!(ev[0].threshold, 8.0);
        assert_eq!(ev[0].value, Some(7.0));
        assert_eq!(e.active().count(), 0);
        // Normal → UnackActive → UnackRtn.
        assert_eq!(
            kinds(&e.process(&win(3, Some(11.0)))),
            vec![(Raised, UnackActive)]
        );
        assert_eq!(
            kinds(&e.process(&win(4, Some(1.0)))),
            vec![(Cleared, UnackRtn)]
        );
        let list: Vec<_> = e.active().collect();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].state, UnackRtn);
        assert_eq!(list[0].raised_ms, Some(4 * MIN));
        // UnackRtn → UnackActive on a new raise.
        assert_eq!(
            kinds(&e.process(&win(5, Some(11.0)))),
            vec![(Raised, UnackActive)]
        );
        assert_eq!(
            kinds(&e.process(&win(6, Some(1.0)))),
            vec![(Cleared, UnackRtn)]
        );
        // UnackRtn → Normal on acknowledgement.
        let ack = e.acknowledge("r", &scope(), Some("x"), 7 * MIN + 1);
        assert_eq!(
            ack.map(|a| (a.kind, a.state, a.value)),
            Some((Acknowledged, Normal, None))
        );
        assert_eq!(e.active().count(), 0);
        assert!(e
            .acknowledge("r", &scope(), Some("x"), 7 * MIN + 2)
            .is_none());
        assert!(e.acknowledge("nope", &scope(), Some("x"), 0).is_none());
        assert!(e.acknowledge("r", &scope(), None, 0).is_none());
    }

    #[test]
    fn on_delay_needs_continuous_windows() {
        // 3-minute on-delay on one-minute windows: raises at the end of the
        // third consecutive true window.
        let mut e = AlarmEngine::new(vec![rule(Condition::Below, 0.5, 0.7, 3 * MIN)]);
        let ev = run(
            &mut e,
            &[
                Some(0.4),
                Some(0.4),
                Some(0.6),
                Some(0.4),
                Some(0.4),
                Some(0.4),
            ],
        );
        // The 0.6 (inside the band, not active) reset the timer: raise at window 5.
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].ts_ms, 6 * MIN);
        assert_eq!(ev[0].kind, AlarmEventKind::Raised);
    }

    #[test]
    fn on_delay_is_held_across_undefined_values() {
        let mut e = AlarmEngine::new(vec![rule(Condition::Below, 0.5, 0.7, 3 * MIN)]);
        let ev = run(&mut e, &[Some(0.4), None, Some(0.3)]);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].ts_ms, 3 * MIN);
        assert_eq!(ev[0].value, Some(0.3));
    }

    #[test]
    fn zero_on_delay_raises_on_first_true_window() {
        let mut e = AlarmEngine::new(vec![rule(Condition::Below, 0.5, 0.7, 0)]);
        let ev = run(&mut e, &[Some(0.9), Some(0.49)]);
        assert_eq!(
            kinds(&ev),
            vec![(AlarmEventKind::Raised, AlarmState::UnackActive)]
        );
        assert_eq!(ev[0].ts_ms, 2 * MIN);
    }

    #[test]
    fn hysteresis_band_keeps_the_alarm_active() {
        let mut e = AlarmEngine::new(vec![rule(Condition::Below, 0.5, 0.7, 0)]);
        let ev = run(
            &mut e,
            &[Some(0.4), Some(0.5), Some(0.69), Some(0.6), None, Some(0.7)],
        );
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1].kind, AlarmEventKind::Cleared);
        assert_eq!(ev[1].ts_ms, 6 * MIN);
        assert_eq!(ev[1].value, Some(0.7));
    }

    #[test]
    fn late_and_duplicate_windows_are_not_reevaluated() {
        let mut e = AlarmEngine::new(vec![rule(Condition::Above, 10.0, 10.0, 0)]);
        assert_eq!(e.process(&win(5, Some(11.0))).len(), 1);
        // Same window again (a correction) and an older window: ignored.
        assert!(e.process(&win(5, Some(1.0))).is_empty());
        assert!(e.process(&win(3, Some(1.0))).is_empty());
        assert_eq!(e.late_ignored(), 2);
        assert_eq!(e.active().count(), 1);
    }

    #[test]
    fn kpi_corrections_are_not_evaluated() {
        let r = Rule {
            source: RuleSource::Kpi {
                level: Level::Line,
                metric: "availability".into(),
            },
            ..rule(Condition::Below, 0.5, 0.7, 0)
        };
        let mut e = AlarmEngine::new(vec![r]);
        let mut rec = kpi(asset().scope(Level::Line), 0, 0, MIN);
        if let StreamOutput::Kpi(k) = &mut rec {
            k.revision = 1;
        }
        assert!(e.process(&rec).is_empty());
        assert_eq!(e.late_ignored(), 1);
        assert_eq!(e.active().count(), 0);
    }

    fn kpi(level_scope: ScopeKey, start: i64, running_ms: i64, unplanned_ms: i64) -> StreamOutput {
        let sums = KpiSums {
            running_ms,
            unplanned_stop_ms: unplanned_ms,
            ..Default::default()
        };
        StreamOutput::Kpi(Box::new(KpiRecord::new(
            start,
            start + MIN,
            level_scope,
            sums,
        )))
    }

    #[test]
    fn kpi_rules_match_level_and_filters() {
        let r = Rule {
            name: "avail".into(),
            source: RuleSource::Kpi {
                level: Level::Line,
                metric: "availability".into(),
            },
            filter: ScopeFilter {
                site: Some("s".into()),
                ..Default::default()
            },
            ..rule(Condition::Below, 0.5, 0.7, 0)
        };
        let mut e = AlarmEngine::new(vec![r]);
        let line = asset().scope(Level::Line);
        let other_site = AssetKey::new("t", "a", "l", "m1").scope(Level::Line);
        let site = asset().scope(Level::Site);
        // Wrong level, wrong site: nothing.
        assert!(e.process(&kpi(site, 0, 0, MIN)).is_empty());
        assert!(e.process(&kpi(other_site, 0, 0, MIN)).is_empty());
        // Undefined availability (no planned busy time): nothing.
        assert!(e.process(&kpi(line.clone(), 0, 0, 0)).is_empty());
        let ev = e.process(&kpi(line.clone(), MIN, 10_000, 50_000));
        assert_eq!(ev.len(), 1);
        assert_eq!(&*ev[0].metric, "availability");
        assert_eq!(ev[0].signal, None);
        assert_eq!(ev[0].scope, line);
        assert!(e.acknowledge("avail", &line, None, 0).is_some());
    }

    #[test]
    fn active_is_ordered_deterministically() {
        let mut e = AlarmEngine::new(vec![rule(Condition::Above, 0.0, 0.0, 0)]);
        for name in ["m3", "m1", "m2"] {
            let w = StreamOutput::Signal(SignalWindow {
                window_start_ms: 0,
                window_end_ms: MIN,
                asset: AssetKey::new("s", "a", "l", name),
                signal: "x".into(),
                role: Role::Process,
                count: 1,
                min: 1.0,
                max: 1.0,
                mean: 1.0,
                last: 1.0,
            });
            assert_eq!(e.process(&w).len(), 1);
        }
        let order: Vec<String> = e
            .active()
            .filter_map(|a| a.scope.asset.map(|s| s.to_string()))
            .collect();
        assert_eq!(order, vec!["m1", "m2", "m3"]);
    }

    /// A step of a random scenario: a window value or an acknowledgement.
    #[derive(Debug, Clone)]
    enum Step {
        Value(Option<f64>),
        Ack,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            8 => proptest::option::weighted(0.85, 0.0f64..1.0).prop_map(Step::Value),
            1 => Just(Step::Ack),
        ]
    }

    fn play(e: &mut AlarmEngine, steps: &[Step]) -> Vec<(usize, AlarmEvent)> {
        let mut out = Vec::new();
        let mut i = 0i64;
        for (n, s) in steps.iter().enumerate() {
            match s {
                Step::Value(v) => {
                    for ev in e.process(&win(i, *v)) {
                        out.push((n, ev));
                    }
                    i += 1;
                }
                Step::Ack => {
                    if let Some(ev) = e.acknowledge("r", &scope(), Some("x"), i * MIN) {
                        out.push((n, ev));
                    }
                }
            }
        }
        out
    }

    proptest! {
        #[test]
        fn raise_and_clear_alternate(
            steps in proptest::collection::vec(step(), 0..80),
            below in any::<bool>(),
            delay_windows in 0i64..5,
        ) {
            let r = if below {
                rule(Condition::Below, 0.4, 0.6, delay_windows * MIN)
            } else {
                rule(Condition::Above, 0.6, 0.4, delay_windows * MIN)
            };
            let mut e = AlarmEngine::new(vec![r]);
            let evs = play(&mut e, &steps);
            let mut active = false;
            let mut unacked = false;
            for (_, ev) in &evs {
                match ev.kind {
                    AlarmEventKind::Raised => {
                        prop_assert!(!active, "raise while active");
                        active = true;
                        unacked = true;
                    }
                    AlarmEventKind::Cleared => {
                        prop_assert!(active, "clear while not active");
                        active = false;
                    }
                    AlarmEventKind::Acknowledged => {
                        prop_assert!(unacked, "ack of an acknowledged alarm");
                        unacked = false;
                    }
                    other => prop_assert!(false, "no operator or design input here: {:?}", other),
                }
                let expected = match (active, unacked) {
                    (true, true) => AlarmState::UnackActive,
                    (true, false) => AlarmState::AckActive,
                    (false, true) => AlarmState::UnackRtn,
                    (false, false) => AlarmState::Normal,
                };
                prop_assert_eq!(ev.state, expected);
            }
        }

        #[test]
        fn never_raises_before_the_on_delay(
            values in proptest::collection::vec(proptest::option::weighted(0.85, 0.0f64..1.0), 0..80),
            delay_windows in 0i64..6,
        ) {
            let r = rule(Condition::Below, 0.4, 0.6, delay_windows * MIN);
            let mut e = AlarmEngine::new(vec![r.clone()]);
            let evs = run(&mut e, &values);
            for ev in evs.iter().filter(|e| e.kind == AlarmEventKind::Raised) {
                let k = (ev.ts_ms / MIN - 1) as usize; // index of the raising window
                prop_assert!(values[k].is_some_and(|v| r.trips(v)));
                // Every window of the last `delay` (at least the raising one)
                // was true or undefined.
                let first = (k + 1).saturating_sub(delay_windows.max(1) as usize);
                for v in values[first..=k].iter().flatten() {
                    prop_assert!(r.trips(*v), "window in the on-delay was not true");
                }
                prop_assert!(k + 1 >= delay_windows as usize);
            }
        }

        #[test]
        fn band_never_clears_an_active_alarm(
            band in proptest::collection::vec(proptest::option::of(0.0f64..0.6), 1..60),
            below in any::<bool>(),
        ) {
            // Raise first, then stay strictly on the alarm side of clear_at.
            let (r, trip, band): (Rule, f64, Vec<Option<f64>>) = if below {
                (rule(Condition::Below, 0.4, 0.6, 0), 0.1, band)
            } else {
                (rule(Condition::Above, 0.6, 0.4, 0), 0.9, band.iter().map(|v| v.map(|x| 1.0 - x)).collect())
            };
            let mut e = AlarmEngine::new(vec![r]);
            let mut values = vec![Some(trip)];
            values.extend(band);
            let evs = run(&mut e, &values);
            prop_assert_eq!(evs.len(), 1);
            prop_assert_eq!(evs[0].kind, AlarmEventKind::Raised);
            prop_assert_eq!(e.active().count(), 1);
        }
    }
}
