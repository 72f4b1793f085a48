//! Keys and mouse clicks: how the operator moves through the views and
//! acts on alarms (k9s / htop / gitui habits). Pure: a key changes the
//! [`App`] and may ask the loop to quit or to send a request.

use crate::app::{App, FleetOrder, Prompt, StateFilter, View};
use crate::ui::layout;
use ctower_model::{AlarmId, AlarmState, CommandAction, CommandRequest, Priority};
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};

/// What the terminal loop should do after an input.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing beyond redrawing.
    None,
    /// Leave the dashboard.
    Quit,
    /// Send this request to the engine (its reply comes back as an event).
    /// Boxed: a request is large beside the other actions.
    Send(Box<CommandRequest>),
}

impl App {
    /// Handles one key press at viewer time `now_ms`.
    pub fn on_key(&mut self, key: KeyEvent, now_ms: i64) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if self.prompt.is_some() {
            return self.on_prompt_key(key);
        }
        if self.show_help {
            // Any key closes the help; q still quits.
            self.show_help = false;
            return if key.code == KeyCode::Char('q') {
                Action::Quit
            } else {
                Action::None
            };
        }
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('?') => self.show_help = true,
            KeyCode::Esc => self.back(),
            KeyCode::Tab => self.cycle_view(1, now_ms),
            KeyCode::BackTab => self.cycle_view(-1, now_ms),
            KeyCode::Char(c @ '1'..='7') => {
                self.go(View::ALL[c as usize - '1' as usize], now_ms);
            }
            KeyCode::Enter => self.drill(now_ms),
            KeyCode::Down | KeyCode::Char('j') => self.move_cursor(0, 1, now_ms),
            KeyCode::Up | KeyCode::Char('k') => self.move_cursor(0, -1, now_ms),
            KeyCode::Right | KeyCode::Char('l') => self.move_cursor(1, 0, now_ms),
            KeyCode::Left | KeyCode::Char('h') => self.move_cursor(-1, 0, now_ms),
            KeyCode::PageDown => self.move_cursor(0, 10, now_ms),
            KeyCode::PageUp => self.move_cursor(0, -10, now_ms),
            KeyCode::Home | KeyCode::Char('g') => self.move_cursor(0, -100_000, now_ms),
            KeyCode::End | KeyCode::Char('G') => self.move_cursor(0, 100_000, now_ms),
            KeyCode::Char('/') => self.prompt = Some((Prompt::Filter, self.filter().to_string())),
            KeyCode::Char('o') => self.cycle_order(),
            KeyCode::Char('a') => return self.act(CommandAction::Acknowledge, None, String::new()),
            KeyCode::Char('s') => self.open_alarm_prompt(true),
            KeyCode::Char('c') => self.open_alarm_prompt(false),
            KeyCode::Char('p') if self.view == View::Alarms => {
                self.min_priority = match self.min_priority {
                    Priority::Low => Priority::Medium,
                    Priority::Medium => Priority::High,
                    Priority::High => Priority::Urgent,
                    Priority::Urgent => Priority::Low,
                };
                self.clamp_alarm_cursor();
            }
            KeyCode::Char('f') if self.view == View::Alarms => {
                self.state_filter = match self.state_filter {
                    StateFilter::All => StateFilter::Unacked,
                    StateFilter::Unacked => StateFilter::Active,
                    StateFilter::Active => StateFilter::Masked,
                    StateFilter::Masked => StateFilter::All,
                };
                self.clamp_alarm_cursor();
            }
            _ => {}
        }
        Action::None
    }

    fn on_prompt_key(&mut self, key: KeyEvent) -> Action {
        let Some((prompt, mut text)) = self.prompt.take() else {
            return Action::None;
        };
        match key.code {
            KeyCode::Esc => {
                if prompt == Prompt::Filter {
                    self.filter_mut().clear();
                    self.clamp_alarm_cursor();
                }
                return Action::None;
            }
            KeyCode::Enter => return self.submit(prompt, text),
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) if !c.is_control() && text.chars().count() < 200 => text.push(c),
            _ => {}
        }
        if prompt == Prompt::Filter {
            // The filter applies while it is typed.
            self.filter_mut().clone_from(&text);
            match self.view {
                View::Site => self.line_sel = 0,
                View::Alarms => self.clamp_alarm_cursor(),
                _ => self.fleet_sel = 0,
            }
        }
        self.prompt = Some((prompt, text));
        Action::None
    }

    fn submit(&mut self, prompt: Prompt, text: String) -> Action {
        match prompt {
            Prompt::Filter => {
                *self.filter_mut() = text;
                self.clamp_alarm_cursor();
                Action::None
            }
            Prompt::Shelve(id) => {
                let text = text.trim();
                let (minutes, reason) = text.split_once(' ').unwrap_or((text, ""));
                match minutes.parse::<u32>() {
                    Ok(m @ 1..=1440) if !reason.trim().is_empty() => {
                        self.alarm_sel = Some(id);
                        self.act(CommandAction::Shelve, Some(m), reason.trim().to_string())
                    }
                    _ => {
                        self.note(
                            "shelve: type MINUTES (1–1440), a space and the reason".into(),
                            true,
                        );
                        Action::None
                    }
                }
            }
            Prompt::Comment(id) => {
                if text.trim().is_empty() {
                    self.note("comment: empty, not sent".into(), true);
                    return Action::None;
                }
                self.alarm_sel = Some(id);
                self.act(CommandAction::Comment, None, text.trim().to_string())
            }
        }
    }

    fn open_alarm_prompt(&mut self, shelve: bool) {
        if self.view != View::Alarms {
            self.note("open the alarm console (6) to act on an alarm".into(), true);
            return;
        }
        match self.alarm_sel.clone() {
            Some(id) => {
                let p = if shelve {
                    Prompt::Shelve(id)
                } else {
                    Prompt::Comment(id)
                };
                self.prompt = Some((p, String::new()));
            }
            None => self.note("select an alarm with ↑/↓ first".into(), true),
        }
    }

    /// A request on the alarm under the cursor.
    fn act(&mut self, action: CommandAction, minutes: Option<u32>, reason: String) -> Action {
        if self.view != View::Alarms {
            self.note("open the alarm console (6) to act on an alarm".into(), true);
            return Action::None;
        }
        let Some(id) = self.alarm_sel.clone() else {
            self.note("select an alarm with ↑/↓ first".into(), true);
            return Action::None;
        };
        let state = self.alarms.values().find(|a| a.id() == id).map(|a| a.state);
        if action == CommandAction::Acknowledge
            && !matches!(state, Some(AlarmState::UnackActive | AlarmState::UnackRtn))
        {
            self.note(format!("{id} does not wait for an acknowledgement"), true);
            return Action::None;
        }
        let req_id = format!("tui-{}", self.next_request);
        self.next_request += 1;
        let what = format!("{} {id}", action.as_str());
        self.note(format!("{what}: sent as {}", self.user), false);
        self.pending.insert(req_id.clone(), what);
        let mut req = CommandRequest::new(req_id, self.user.clone(), action);
        req.minutes = minutes;
        req.alarm = Some(id);
        req.reason = reason;
        Action::Send(Box::new(req))
    }

    fn back(&mut self) {
        if !self.filter().is_empty() {
            self.filter_mut().clear();
            self.clamp_alarm_cursor();
            return;
        }
        self.view = match self.view {
            View::Line => {
                self.line = None;
                View::Site
            }
            View::Site | View::Energy | View::Water => {
                self.site = None;
                self.line = None;
                View::Fleet
            }
            View::Alarms | View::Health | View::Fleet => View::Fleet,
        };
    }

    fn cycle_view(&mut self, step: isize, now_ms: i64) {
        let i = View::ALL.iter().position(|v| *v == self.view).unwrap_or(0);
        let n = View::ALL.len() as isize;
        self.go(
            View::ALL[(i as isize + step).rem_euclid(n) as usize],
            now_ms,
        );
    }

    /// Opens `view`; the site-level views take the site under the
    /// fleet's cursor when none is chosen.
    fn go(&mut self, view: View, now_ms: i64) {
        if matches!(view, View::Site | View::Line | View::Energy | View::Water)
            && self.site.is_none()
        {
            self.site = self.current_site(now_ms);
        }
        self.view = view;
    }

    /// Enter: fleet → site → line; in the console, the alarm's site.
    fn drill(&mut self, now_ms: i64) {
        match self.view {
            View::Fleet => {
                self.site = self.current_site(now_ms);
                self.line = None;
                self.line_sel = 0;
                self.view = View::Site;
            }
            View::Site => {
                if let Some(l) = self.current_line(now_ms) {
                    if let (Some(a), Some(name)) = (l.scope.area.clone(), l.scope.line.clone()) {
                        self.line = Some((a, name));
                        self.view = View::Line;
                    }
                }
            }
            View::Alarms => {
                let site = self.alarm_sel.as_ref().and_then(|id| id.scope.site.clone());
                if let Some(site) = site {
                    self.site = Some(site);
                    self.line = None;
                    self.line_sel = 0;
                    self.view = View::Site;
                }
            }
            _ => {}
        }
    }

    fn cycle_order(&mut self) {
        match self.view {
            View::Fleet => {
                self.fleet_order = match self.fleet_order {
                    FleetOrder::Trouble => FleetOrder::Name,
                    FleetOrder::Name => FleetOrder::Oee,
                    FleetOrder::Oee => FleetOrder::Trouble,
                };
            }
            View::Site => self.line_order = (self.line_order + 1) % 4,
            _ => {}
        }
    }

    fn move_cursor(&mut self, dx: isize, dy: isize, now_ms: i64) {
        match self.view {
            View::Fleet => {
                let n = self.fleet(now_ms).len();
                if n == 0 {
                    return;
                }
                let body = layout::areas(self, self.screen, now_ms).body;
                let cols = layout::grid(self, body, n).cols.max(1) as isize;
                let step = dx + dy * cols;
                let i = self.fleet_sel as isize + step;
                self.fleet_sel = i.clamp(0, n as isize - 1) as usize;
            }
            View::Site if dx != 0 => self.step_site(dx, now_ms),
            View::Site => {
                let n = self
                    .current_site(now_ms)
                    .map_or(0, |s| self.site_lines(&s).len());
                self.line_sel = clamp_add(self.line_sel, dy, n);
            }
            View::Alarms => self.move_alarm_cursor(dy),
            View::Health => self.health_scroll = clamp_add(self.health_scroll, dy, 10_000),
            View::Line | View::Energy | View::Water => {
                if dx != 0 {
                    self.step_site(dx, now_ms);
                }
            }
        }
    }

    /// ←/→ on a site's views: the previous or next site of the fleet.
    fn step_site(&mut self, dx: isize, now_ms: i64) {
        let fleet: Vec<_> = self.fleet(now_ms).into_iter().cloned().collect();
        let Some(cur) = self.current_site(now_ms) else {
            return;
        };
        if fleet.is_empty() {
            return;
        }
        let i = fleet.iter().position(|s| *s == cur).unwrap_or(0);
        let j = clamp_add(i, dx, fleet.len());
        self.site = fleet.get(j).cloned();
        self.fleet_sel = j;
        self.line = None;
        self.line_sel = 0;
        if self.view == View::Line {
            self.view = View::Site;
        }
    }

    fn move_alarm_cursor(&mut self, dy: isize) {
        let ids: Vec<AlarmId> = self.console_alarms().iter().map(|a| a.id()).collect();
        if ids.is_empty() {
            self.alarm_sel = None;
            return;
        }
        let at = self
            .alarm_sel
            .as_ref()
            .and_then(|sel| ids.iter().position(|id| id == sel));
        let next = match at {
            None => 0,
            Some(i) => clamp_add(i, dy, ids.len()),
        };
        self.alarm_sel = ids.into_iter().nth(next);
    }

    fn clamp_alarm_cursor(&mut self) {
        let listed = self
            .alarm_sel
            .as_ref()
            .is_some_and(|sel| self.console_alarms().iter().any(|a| a.id() == *sel));
        if !listed {
            self.alarm_sel = None;
        }
    }

    /// A mouse click on the screen of size `screen`: a tab, a tile, a row.
    pub fn on_mouse(&mut self, ev: MouseEvent, screen: Rect, now_ms: i64) -> Action {
        let pos = Position::new(ev.column, ev.row);
        match ev.kind {
            MouseEventKind::ScrollDown => self.move_cursor(0, 1, now_ms),
            MouseEventKind::ScrollUp => self.move_cursor(0, -1, now_ms),
            MouseEventKind::Down(MouseButton::Left) => {
                if let Some(v) = layout::tab_at(self, screen, pos) {
                    self.go(v, now_ms);
                    return Action::None;
                }
                match self.view {
                    View::Fleet => {
                        if let Some(i) = layout::tile_at(self, screen, pos, now_ms) {
                            if i == self.fleet_sel {
                                self.drill(now_ms);
                            } else {
                                self.fleet_sel = i;
                            }
                        }
                    }
                    View::Site => {
                        let n = self
                            .current_site(now_ms)
                            .map_or(0, |s| self.site_lines(&s).len());
                        let (first, rows) = layout::line_rows(self, screen, now_ms, n);
                        let row =
                            layout::row_at(self, screen, pos, layout::SITE_TABLE_TOP, rows, now_ms)
                                .map(|r| r + first)
                                .filter(|i| *i < n);
                        if let Some(i) = row {
                            if i == self.line_sel {
                                self.drill(now_ms);
                            } else {
                                self.line_sel = i;
                            }
                        }
                    }
                    View::Alarms => {
                        let body = layout::areas(self, screen, now_ms).body;
                        let rows = layout::table_rows(layout::alarm_table(body).height);
                        if let Some(i) =
                            layout::row_at(self, screen, pos, layout::ALARM_TABLE_TOP, rows, now_ms)
                        {
                            let offset = layout::alarm_offset(self, screen, now_ms);
                            let id = self.console_alarms().get(offset + i).map(|a| a.id());
                            if id.is_some() {
                                self.alarm_sel = id;
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Action::None
    }
}

fn clamp_add(i: usize, d: isize, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    (i as isize + d).clamp(0, n as isize - 1) as usize
}

#[cfg(test)]
mod tests;
