//! The dashboard's state: pure, no I/O, no clock of its own.
//!
//! Everything the screen shows is derived from this state by
//! [`crate::render`]; the terminal loop ([`crate::run`]) only feeds it
//! updates, keys and the wall time.

use crate::timing::WindowTiming;
use ctower_model::{
    AlarmEvent, AlarmEventKind, AlarmId, AlarmState, KpiRecord, Level, OperatorCommand, Period,
    PipelineMetrics, ScopeKey, Update,
};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the terminal loop should do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond redrawing.
    None,
    /// Leave the dashboard.
    Quit,
    /// Send an operator's command to the tower (the alarm engine answers
    /// with an alarm event, which comes back as an update).
    Command(OperatorCommand),
}

/// What the dashboard knows about one site.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteState {
    /// Newest window of the site-level KPI (latest revision of it).
    pub kpi: Option<KpiRecord>,
    /// Wall time (ms since the epoch) of the last KPI of this site, any level.
    pub last_update_ms: Option<i64>,
    /// The site's latest finished (or corrected) shift record.
    pub last_shift: Option<KpiRecord>,
}

/// The dashboard state.
#[derive(Debug, Clone)]
pub struct App {
    title: String,
    sites: BTreeMap<Arc<str>, SiteState>,
    /// Newest line-level KPI per line scope.
    lines: BTreeMap<ScopeKey, KpiRecord>,
    /// Newest group-level KPI.
    group: Option<KpiRecord>,
    alarms: BTreeMap<AlarmId, AlarmEvent>,
    metrics: Option<PipelineMetrics>,
    /// Event time (window end) of the newest window seen, ms since the epoch.
    newest_window_end_ms: Option<i64>,
    selected: usize,
    /// The alarm the cursor is on (↑/↓), by identity: it stays on the same
    /// alarm while the list reorders.
    alarm_selected: Option<AlarmId>,
    /// What became of the operator's last command, for the footer.
    notice: Option<String>,
    show_help: bool,
    feed_lost: bool,
    /// KPI records received as corrections (revision above 0).
    corrections: u64,
    /// The pipeline's window timing, when the binary gave it.
    timing: Option<WindowTiming>,
}

/// The dashboard's rule for which KPI records it shows: the windows of the
/// group, the sites and the lines, and the sites' shift records. Asset
/// windows, line and group shifts and every production day are for the
/// files, the journal and the reports, not for this screen.
///
/// The one place of this rule: [`App::apply`] ignores any other record, and
/// the output stage calls it to send the dashboard only these, so the
/// dashboard's channel carries no record it would drop.
pub fn wants(k: &KpiRecord) -> bool {
    match k.period {
        Period::Window => matches!(k.scope.level, Level::Group | Level::Site | Level::Line),
        Period::Shift => k.scope.level == Level::Site,
        Period::Day => false,
    }
}

/// Whether `new` should replace `old` as the shown window of one scope:
/// a newer window does, and so does a correction (same window, revision
/// not lower). An older window arriving late is not shown.
fn supersedes(new: &KpiRecord, old: &KpiRecord) -> bool {
    (new.window_end_ms, new.window_start_ms, new.revision)
        >= (old.window_end_ms, old.window_start_ms, old.revision)
}

fn upsert(slot: &mut Option<KpiRecord>, k: &KpiRecord) {
    match slot {
        Some(old) if !supersedes(k, old) => {}
        _ => *slot = Some(k.clone()),
    }
}

impl App {
    /// An empty dashboard titled `title`.
    pub fn new(title: impl Into<String>) -> Self {
        App {
            title: title.into(),
            sites: BTreeMap::new(),
            lines: BTreeMap::new(),
            group: None,
            alarms: BTreeMap::new(),
            metrics: None,
            newest_window_end_ms: None,
            selected: 0,
            alarm_selected: None,
            notice: None,
            show_help: false,
            feed_lost: false,
            corrections: 0,
            timing: None,
        }
    }

    /// The same dashboard, knowing how the pipeline times its windows: it
    /// then says, while no KPI has come, how long the first ones take.
    pub fn with_timing(mut self, timing: WindowTiming) -> Self {
        self.timing = Some(timing);
        self
    }

    /// The pipeline's window timing, if known.
    pub fn timing(&self) -> Option<&WindowTiming> {
        self.timing.as_ref()
    }

    /// KPI records received as corrections of earlier results (late data).
    pub fn corrections(&self) -> u64 {
        self.corrections
    }

    /// Applies one update received at wall time `now_ms` (ms since the
    /// epoch). KPI records the dashboard does not show ([`wants`]) are
    /// ignored, and not counted as corrections either.
    pub fn apply(&mut self, u: &Update, now_ms: i64) {
        match u {
            Update::Kpi(k) => self.apply_kpi(k, now_ms),
            Update::Alarm(a) => self.apply_alarm(a),
            Update::Metrics(m) => {
                for s in &m.stale_sites {
                    self.ensure_site(s);
                }
                self.metrics = Some(m.clone());
            }
        }
    }

    fn apply_kpi(&mut self, k: &KpiRecord, now_ms: i64) {
        if !wants(k) {
            return;
        }
        if k.revision > 0 {
            self.corrections += 1;
        }
        if k.period == Period::Shift {
            // A site's shift record feeds its tile.
            if let Some(site) = &k.scope.site {
                self.ensure_site(site);
                if let Some(state) = self.sites.get_mut(site) {
                    upsert(&mut state.last_shift, k);
                }
            }
            return;
        }
        self.newest_window_end_ms = Some(
            self.newest_window_end_ms
                .map_or(k.window_end_ms, |t| t.max(k.window_end_ms)),
        );
        if k.scope.level == Level::Group {
            upsert(&mut self.group, k);
            return;
        }
        let Some(site) = k.scope.site.clone() else {
            return;
        };
        self.ensure_site(&site);
        let Some(state) = self.sites.get_mut(&site) else {
            return;
        };
        state.last_update_ms = Some(state.last_update_ms.map_or(now_ms, |t| t.max(now_ms)));
        match k.scope.level {
            Level::Site => upsert(&mut state.kpi, k),
            Level::Line => {
                let slot = self
                    .lines
                    .entry(k.scope.clone())
                    .or_insert_with(|| k.clone());
                if supersedes(k, slot) {
                    *slot = k.clone();
                }
            }
            // Not wanted (asset) or handled above (group).
            Level::Group | Level::Asset => {}
        }
    }

    fn apply_alarm(&mut self, a: &AlarmEvent) {
        let key = a.id();
        if a.kind == AlarmEventKind::Acknowledged {
            self.notice = Some(format!("acknowledged {} at {}", a.rule, a.scope));
        }
        if a.state == AlarmState::Normal {
            self.alarms.remove(&key);
            return;
        }
        if let Some(site) = &a.scope.site {
            self.ensure_site(site);
        }
        self.alarms.insert(key, a.clone());
    }

    /// Adds a site to the list, keeping the same site selected.
    fn ensure_site(&mut self, site: &str) {
        if self.sites.contains_key(site) {
            return;
        }
        let had_sites = !self.sites.is_empty();
        let pos = self.sites.keys().filter(|k| &***k < site).count();
        self.sites.insert(site.into(), SiteState::default());
        if had_sites && pos <= self.selected {
            self.selected += 1;
        }
    }

    /// Handles one key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => return Action::Quit,
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Esc if self.show_help => self.show_help = false,
            KeyCode::Esc => return Action::Quit,
            KeyCode::Char('?') => self.show_help = !self.show_help,
            KeyCode::Right | KeyCode::Tab => self.select_next(),
            KeyCode::Left | KeyCode::BackTab => self.select_prev(),
            KeyCode::Down | KeyCode::Char('j') => self.move_alarm_cursor(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_alarm_cursor(-1),
            KeyCode::Char('a') => return self.acknowledge_selected(),
            KeyCode::Char(c @ '1'..='9') => {
                let n = c as usize - '1' as usize;
                if n < self.sites.len() {
                    self.selected = n;
                }
            }
            _ => {}
        }
        Action::None
    }

    /// Moves the alarm cursor `step` rows in the list's order (from no
    /// selection, onto the first row), staying within the list.
    fn move_alarm_cursor(&mut self, step: isize) {
        let ids: Vec<AlarmId> = self.alarms().iter().map(|a| a.id()).collect();
        if ids.is_empty() {
            self.alarm_selected = None;
            return;
        }
        let at = self
            .alarm_selected
            .as_ref()
            .and_then(|sel| ids.iter().position(|id| id == sel));
        let next = match at {
            None => 0,
            Some(i) => i.saturating_add_signed(step).min(ids.len() - 1),
        };
        self.alarm_selected = ids.into_iter().nth(next);
    }

    /// `a`: the command acknowledging the alarm under the cursor, if it
    /// waits for an acknowledgement; otherwise a notice says why not.
    fn acknowledge_selected(&mut self) -> Action {
        let Some(id) = self.alarm_selected.clone() else {
            self.notice = Some("select an alarm with ↑/↓ first".into());
            return Action::None;
        };
        match self.alarms.get(&id).map(|a| a.state) {
            Some(AlarmState::UnackActive | AlarmState::UnackRtn) => {
                self.notice = Some(format!("acknowledging {} at {}", id.rule, id.scope));
                Action::Command(OperatorCommand::Acknowledge(id))
            }
            Some(_) => {
                self.notice = Some("already acknowledged".into());
                Action::None
            }
            None => {
                self.notice = Some("that alarm is no longer listed".into());
                Action::None
            }
        }
    }

    /// The alarm under the cursor, if any.
    pub fn selected_alarm(&self) -> Option<&AlarmId> {
        self.alarm_selected.as_ref()
    }

    /// What became of the operator's last command, if anything is to say.
    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    /// Says what became of an operator's command (the terminal loop, when
    /// it could not send one).
    pub fn set_notice(&mut self, notice: impl Into<String>) {
        self.notice = Some(notice.into());
    }

    fn select_next(&mut self) {
        let n = self.sites.len();
        if n > 0 {
            self.selected = (self.selected + 1) % n;
        }
    }

    fn select_prev(&mut self) {
        let n = self.sites.len();
        if n > 0 {
            self.selected = (self.selected + n - 1) % n;
        }
    }

    /// Marks the update feed as lost (its sender hung up); shown in the header.
    pub fn set_feed_lost(&mut self, lost: bool) {
        self.feed_lost = lost;
    }

    /// Whether the update feed is lost (its sender hung up).
    pub fn feed_lost(&self) -> bool {
        self.feed_lost
    }

    /// Shown at the top left.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Sites in display order (by name) with their state.
    pub fn sites(&self) -> impl ExactSizeIterator<Item = (&Arc<str>, &SiteState)> {
        self.sites.iter()
    }

    /// Number of sites known (from KPIs, alarms or stale marks).
    pub fn site_count(&self) -> usize {
        self.sites.len()
    }

    /// Index of the selected site in [`App::sites`] (0 when there is none).
    pub fn selected_index(&self) -> usize {
        self.selected
    }

    /// Name of the selected site (`None` before the first site).
    pub fn selected_site(&self) -> Option<&Arc<str>> {
        self.sites.keys().nth(self.selected)
    }

    /// Newest line-level KPIs of one site, in line order.
    pub fn lines_of<'a>(&'a self, site: &'a str) -> impl Iterator<Item = &'a KpiRecord> + 'a {
        self.lines
            .values()
            .filter(move |k| k.scope.site.as_deref() == Some(site))
    }

    /// Newest group-level window.
    pub fn group_kpi(&self) -> Option<&KpiRecord> {
        self.group.as_ref()
    }

    /// Listed alarms (every state but Normal), highest priority first, then
    /// newest first.
    pub fn alarms(&self) -> Vec<&AlarmEvent> {
        let mut v: Vec<&AlarmEvent> = self.alarms.values().collect();
        v.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(b.ts_ms.cmp(&a.ts_ms))
                .then_with(|| a.scope.cmp(&b.scope))
                .then_with(|| a.rule.cmp(&b.rule))
        });
        v
    }

    /// Listed alarms (every state but Normal).
    pub fn alarm_count(&self) -> usize {
        self.alarms.len()
    }

    /// Listed alarms nobody has acknowledged yet.
    pub fn unacked_count(&self) -> usize {
        self.alarms
            .values()
            .filter(|a| matches!(a.state, AlarmState::UnackActive | AlarmState::UnackRtn))
            .count()
    }

    /// Listed alarms whose scope lies in `site`.
    pub fn site_alarm_count(&self, site: &str) -> usize {
        self.alarms
            .values()
            .filter(|a| a.scope.site.as_deref() == Some(site))
            .count()
    }

    /// The pipeline's latest self-metrics.
    pub fn metrics(&self) -> Option<&PipelineMetrics> {
        self.metrics.as_ref()
    }

    /// Event time (ms since the epoch) of the end of the newest window
    /// shown; `None` before the first KPI.
    pub fn newest_window_end_ms(&self) -> Option<i64> {
        self.newest_window_end_ms
    }

    /// Whether the help overlay is open.
    pub fn show_help(&self) -> bool {
        self.show_help
    }

    /// A site is stale when its newest site KPI covers less than 90 % of
    /// its asset-time with data, or when the pipeline marked it silent.
    pub fn site_is_stale(&self, site: &str) -> bool {
        let low_coverage = self
            .sites
            .get(site)
            .and_then(|s| s.kpi.as_ref())
            .and_then(|k| k.ratios.data_coverage)
            .is_some_and(|c| c < STALE_COVERAGE);
        let marked = self
            .metrics
            .as_ref()
            .is_some_and(|m| m.stale_sites.iter().any(|s| s == site));
        low_coverage || marked
    }
}

/// Data coverage below which a site is shown STALE.
pub const STALE_COVERAGE: f64 = 0.9;

#[cfg(test)]
mod tests {
    use super::*;
    use ctower_model::kpi::KpiSums;
    use ctower_model::{AlarmEventKind, AssetKey, Priority};

    fn line(site: &str, line: &str) -> ScopeKey {
        AssetKey::new(site, "packaging", line, "x").scope(Level::Line)
    }

    fn site(site: &str) -> ScopeKey {
        AssetKey::new(site, "a", "l", "x").scope(Level::Site)
    }

    fn kpi(scope: ScopeKey, end_ms: i64, good: u64) -> Update {
        let sums = KpiSums {
            running_ms: 50_000,
            unplanned_stop_ms: 10_000,
            produced: Some(100),
            good: Some(good),
            ideal_time_ms: 40_000.0,
            ..Default::default()
        };
        Update::Kpi(Box::new(KpiRecord::new(
            end_ms - 60_000,
            end_ms,
            scope,
            sums,
        )))
    }

    fn alarm(scope: ScopeKey, state: AlarmState) -> Update {
        Update::Alarm(AlarmEvent {
            ts_ms: 1_000,
            rule: "oee_low".into(),
            scope,
            signal: None,
            kind: AlarmEventKind::Raised,
            state,
            priority: Priority::High,
            metric: "oee".into(),
            value: Some(0.4),
            threshold: 0.6,
            message: "OEE below 60 %".into(),
        })
    }

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn app_with_sites(names: &[&str]) -> App {
        let mut app = App::new("t");
        for n in names {
            app.apply(&kpi(site(n), 60_000, 99), 0);
        }
        app
    }

    #[test]
    fn the_alarm_under_the_cursor_is_acknowledged_once() {
        let mut app = App::new("t");
        assert_eq!(app.on_key(press(KeyCode::Char('a'))), Action::None);
        assert_eq!(app.notice(), Some("select an alarm with ↑/↓ first"));
        app.apply(&alarm(site("a"), AlarmState::UnackActive), 0);
        app.apply(&alarm(site("b"), AlarmState::UnackActive), 0);
        // ↓ from nothing: the first row; ↓↓ stops at the last; ↑ back.
        app.on_key(press(KeyCode::Down));
        let first = app.alarms()[0].id();
        assert_eq!(app.selected_alarm(), Some(&first));
        app.on_key(press(KeyCode::Char('j')));
        app.on_key(press(KeyCode::Down));
        let second = app.alarms()[1].id();
        assert_eq!(app.selected_alarm(), Some(&second));
        app.on_key(press(KeyCode::Up));
        assert_eq!(app.selected_alarm(), Some(&first));

        let action = app.on_key(press(KeyCode::Char('a')));
        assert_eq!(
            action,
            Action::Command(OperatorCommand::Acknowledge(first.clone()))
        );
        // The tower answers with the acknowledgement event.
        let Update::Alarm(mut ack) = alarm(first.scope.clone(), AlarmState::AckActive) else {
            unreachable!("alarm() gives an alarm")
        };
        ack.kind = AlarmEventKind::Acknowledged;
        app.apply(&Update::Alarm(ack), 0);
        assert!(app
            .notice()
            .is_some_and(|n| n.starts_with("acknowledged oee_low")));
        assert_eq!(app.unacked_count(), 1);
        assert_eq!(app.on_key(press(KeyCode::Char('a'))), Action::None);
        assert_eq!(app.notice(), Some("already acknowledged"));
    }

    #[test]
    fn wants_windows_of_group_sites_lines_and_site_shifts_only() {
        let scopes = [
            ScopeKey::group(),
            site("s"),
            line("s", "l"),
            AssetKey::new("s", "a", "l", "x").scope(Level::Asset),
        ];
        let wanted = |period: Period| -> Vec<bool> {
            scopes
                .iter()
                .map(|scope| {
                    let mut k = KpiRecord::new(0, 60_000, scope.clone(), KpiSums::default());
                    k.period = period;
                    wants(&k)
                })
                .collect()
        };
        //                                group  site   line   asset
        assert_eq!(wanted(Period::Window), [true, true, true, false]);
        assert_eq!(wanted(Period::Shift), [false, true, false, false]);
        assert_eq!(wanted(Period::Day), [false, false, false, false]);
    }

    #[test]
    fn records_not_wanted_leave_the_state_alone() {
        let mut app = App::new("t");
        let mut asset = KpiRecord::new(
            0,
            60_000,
            AssetKey::new("s", "a", "l", "x").scope(Level::Asset),
            KpiSums::default(),
        );
        asset.revision = 1;
        let mut day = KpiRecord::new(0, 86_400_000, site("s"), KpiSums::default());
        day.period = Period::Day;
        day.revision = 1;
        for k in [asset, day] {
            app.apply(&Update::Kpi(Box::new(k)), 0);
        }
        assert_eq!(app.site_count(), 0);
        assert_eq!(app.corrections(), 0);
        assert_eq!(app.newest_window_end_ms(), None);
    }

    #[test]
    fn selection_wraps_both_ways() {
        let mut app = app_with_sites(&["a", "b", "c"]);
        assert_eq!(app.selected_index(), 0);
        app.on_key(press(KeyCode::Left));
        assert_eq!(app.selected_index(), 2);
        app.on_key(press(KeyCode::Right));
        assert_eq!(app.selected_index(), 0);
        app.on_key(press(KeyCode::Tab));
        app.on_key(press(KeyCode::Tab));
        app.on_key(press(KeyCode::Tab));
        assert_eq!(app.selected_index(), 0);
        app.on_key(press(KeyCode::BackTab));
        assert_eq!(app.selected_site().map(|s| &**s), Some("c"));
    }

    #[test]
    fn selection_on_empty_dashboard_is_harmless() {
        let mut app = App::new("t");
        app.on_key(press(KeyCode::Right));
        app.on_key(press(KeyCode::Left));
        app.on_key(press(KeyCode::Char('3')));
        assert_eq!(app.selected_index(), 0);
        assert!(app.selected_site().is_none());
    }

    #[test]
    fn digits_jump_to_existing_sites_only() {
        let mut app = app_with_sites(&["a", "b", "c"]);
        app.on_key(press(KeyCode::Char('3')));
        assert_eq!(app.selected_site().map(|s| &**s), Some("c"));
        app.on_key(press(KeyCode::Char('9')));
        assert_eq!(app.selected_site().map(|s| &**s), Some("c"));
        app.on_key(press(KeyCode::Char('1')));
        assert_eq!(app.selected_site().map(|s| &**s), Some("a"));
    }

    #[test]
    fn a_new_site_does_not_move_the_selection() {
        let mut app = app_with_sites(&["b", "c"]);
        app.on_key(press(KeyCode::Right));
        assert_eq!(app.selected_site().map(|s| &**s), Some("c"));
        app.apply(&kpi(site("a"), 60_000, 99), 0);
        assert_eq!(app.selected_site().map(|s| &**s), Some("c"));
        app.apply(&kpi(site("d"), 60_000, 99), 0);
        assert_eq!(app.selected_site().map(|s| &**s), Some("c"));
    }

    #[test]
    fn correction_replaces_and_older_window_does_not() {
        let mut app = App::new("t");
        let scope = line("s", "l1");
        app.apply(&kpi(scope.clone(), 120_000, 90), 0);
        let mut corr = kpi(scope.clone(), 120_000, 95);
        if let Update::Kpi(k) = &mut corr {
            k.revision = 1;
        }
        app.apply(&corr, 1);
        let shown: Vec<_> = app.lines_of("s").collect();
        assert_eq!(shown.len(), 1);
        assert_eq!((shown[0].sums.good, shown[0].revision), (Some(95), 1));

        // A late first revision of the same window does not undo the correction.
        app.apply(&kpi(scope.clone(), 120_000, 90), 2);
        assert_eq!(app.lines_of("s").next().and_then(|k| k.sums.good), Some(95));
        // An older window does not replace a newer one.
        app.apply(&kpi(scope.clone(), 60_000, 10), 3);
        assert_eq!(app.lines_of("s").next().and_then(|k| k.sums.good), Some(95));
        // A newer window does.
        app.apply(&kpi(scope, 180_000, 80), 4);
        let k = app.lines_of("s").next().cloned();
        assert_eq!(
            k.map(|k| (k.window_end_ms, k.sums.good)),
            Some((180_000, Some(80)))
        );
        assert_eq!(
            app.sites().next().and_then(|(_, s)| s.last_update_ms),
            Some(4)
        );
    }

    #[test]
    fn site_kpi_correction_replaces() {
        let mut app = App::new("t");
        app.apply(&kpi(site("s"), 60_000, 90), 0);
        let mut corr = kpi(site("s"), 60_000, 97);
        if let Update::Kpi(k) = &mut corr {
            k.revision = 2;
        }
        app.apply(&corr, 0);
        let good = app
            .sites()
            .next()
            .and_then(|(_, s)| s.kpi.as_ref())
            .map(|k| k.sums.good);
        assert_eq!(good, Some(Some(97)));
    }

    #[test]
    fn alarm_leaves_on_normal_and_rtn_stays() {
        let mut app = App::new("t");
        let scope = line("s", "l1");
        app.apply(&alarm(scope.clone(), AlarmState::UnackActive), 0);
        assert_eq!((app.alarm_count(), app.unacked_count()), (1, 1));
        assert_eq!(app.site_alarm_count("s"), 1);
        app.apply(&alarm(scope.clone(), AlarmState::AckActive), 0);
        assert_eq!((app.alarm_count(), app.unacked_count()), (1, 0));
        app.apply(&alarm(scope.clone(), AlarmState::UnackRtn), 0);
        assert_eq!(app.alarm_count(), 1);
        assert_eq!(app.alarms()[0].state, AlarmState::UnackRtn);
        app.apply(&alarm(scope, AlarmState::Normal), 0);
        assert_eq!(app.alarm_count(), 0);
        // The alarm's site stays on the dashboard.
        assert_eq!(app.site_count(), 1);
    }

    #[test]
    fn alarms_sort_by_priority_then_newest() {
        let mut app = App::new("t");
        let mk = |rule: &str, p: Priority, ts: i64| {
            let Update::Alarm(mut a) = alarm(site("s"), AlarmState::UnackActive) else {
                unreachable!()
            };
            a.rule = rule.into();
            a.priority = p;
            a.ts_ms = ts;
            Update::Alarm(a)
        };
        app.apply(&mk("low_new", Priority::Low, 9), 0);
        app.apply(&mk("urgent_old", Priority::Urgent, 1), 0);
        app.apply(&mk("high_old", Priority::High, 2), 0);
        app.apply(&mk("high_new", Priority::High, 5), 0);
        let order: Vec<&str> = app.alarms().iter().map(|a| &*a.rule).collect();
        assert_eq!(order, ["urgent_old", "high_new", "high_old", "low_new"]);
    }

    #[test]
    fn keys_quit_and_help() {
        let mut app = App::new("t");
        assert_eq!(app.on_key(press(KeyCode::Char('?'))), Action::None);
        assert!(app.show_help());
        // Esc closes the overlay first, then quits.
        assert_eq!(app.on_key(press(KeyCode::Esc)), Action::None);
        assert!(!app.show_help());
        assert_eq!(app.on_key(press(KeyCode::Esc)), Action::Quit);
        app.on_key(press(KeyCode::Char('?')));
        assert_eq!(app.on_key(press(KeyCode::Char('q'))), Action::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(app.on_key(ctrl_c), Action::Quit);
        assert_eq!(app.on_key(press(KeyCode::Char('c'))), Action::None);
        // Key releases (sent on some platforms) are ignored.
        let mut release = press(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(app.on_key(release), Action::None);
    }

    #[test]
    fn stale_by_coverage_or_by_metrics() {
        let mut app = App::new("t");
        let sums = KpiSums {
            running_ms: 50_000,
            unknown_ms: 10_000,
            ..Default::default()
        };
        app.apply(
            &Update::Kpi(Box::new(KpiRecord::new(0, 60_000, site("s"), sums))),
            0,
        );
        assert!(app.site_is_stale("s"));
        app.apply(&kpi(site("t"), 60_000, 99), 0);
        assert!(!app.site_is_stale("t"));
        let m = PipelineMetrics {
            stale_sites: vec!["t".into(), "u".into()],
            ..Default::default()
        };
        app.apply(&Update::Metrics(m), 0);
        assert!(app.site_is_stale("t"));
        assert!(app.site_is_stale("u"));
        assert_eq!(app.site_count(), 3);
    }
}
