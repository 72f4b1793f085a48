//! Keys and mouse clicks: how the operator moves through the views and
//! acts on alarms (k9s / htop / gitui habits). Pure: a key changes the
//! [`App`] and may ask the loop to quit or to send a request.

use crate::app::{App, FleetOrder, ParamFocus, Prompt, StateFilter, View};
use crate::ui::layout;
use ctower_model::{
    AlarmId, AlarmState, CommandAction, CommandRequest, ParamState, ParamType, ParamValue,
    Priority, Signature,
};
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};

/// A session's signature is forgotten after this long without a signed
/// action (it is asked again), ms.
pub const SIGNATURE_IDLE_MS: i64 = 15 * 60_000;

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
        self.key_ms = now_ms;
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
            KeyCode::Char(c @ '1'..='8') => {
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
            KeyCode::Char('s') if self.view == View::Params => self.open_set_prompt(),
            KeyCode::Char('y') if self.view == View::Params => return self.approve(),
            KeyCode::Char('x') if self.view == View::Params => self.open_reject_prompt(),
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
        if prompt == Prompt::Signature {
            return self.on_signature_key(key);
        }
        match key.code {
            KeyCode::Esc => {
                if prompt == Prompt::Filter {
                    self.filter_mut().clear();
                    self.clamp_cursors();
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
                View::Alarms | View::Params => self.clamp_cursors(),
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
                self.clamp_cursors();
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
            Prompt::SetParam(asset, param) => self.submit_set(asset, param, &text),
            Prompt::Reject(id) => {
                let reason = text.trim();
                if reason.is_empty() {
                    self.note(
                        format!("reject {id}: a reason is required, nothing sent"),
                        true,
                    );
                    return Action::None;
                }
                let mut req =
                    CommandRequest::new(self.next_id(), self.user.clone(), CommandAction::Reject);
                req.request = Some(id.clone());
                req.reason = reason.to_string();
                self.signed_send(req, format!("reject {id}"))
            }
            // Typed through `on_signature_key`, never here.
            Prompt::Signature => Action::None,
        }
    }

    /// A key at the signature prompt: what is typed goes to the masked
    /// secret, never to the prompt's text.
    fn on_signature_key(&mut self, key: KeyEvent) -> Action {
        let typed = &mut self.signature_typed.0;
        match key.code {
            KeyCode::Esc => {
                typed.clear();
                if let Some((_, what)) = self.unsigned.take() {
                    self.note(format!("{what}: cancelled, nothing sent"), true);
                }
                return Action::None;
            }
            KeyCode::Enter => {
                let secret = std::mem::take(typed);
                let Some((mut req, what)) = self.unsigned.take() else {
                    return Action::None;
                };
                if secret.is_empty() {
                    self.note(format!("{what}: no signature typed, nothing sent"), true);
                    return Action::None;
                }
                let sig = Signature(secret);
                req.signature = Some(sig.clone());
                self.signature = Some(sig);
                self.signature_used_ms = self.key_ms;
                return self.send_signed(req, what);
            }
            KeyCode::Backspace => {
                typed.pop();
            }
            KeyCode::Char(c) if !c.is_control() && typed.chars().count() < 200 => typed.push(c),
            _ => {}
        }
        self.prompt = Some((Prompt::Signature, String::new()));
        Action::None
    }

    fn next_id(&mut self) -> String {
        let id = format!("tui-{}", self.next_request);
        self.next_request += 1;
        id
    }

    /// Sends `req` signed with the session's signature; without one yet,
    /// asks for it first (the request waits).
    fn signed_send(&mut self, mut req: CommandRequest, what: String) -> Action {
        if self.key_ms.saturating_sub(self.signature_used_ms) > SIGNATURE_IDLE_MS {
            // A signing session idle this long has ended: sign again.
            self.signature = None;
        }
        match self.signature.clone() {
            Some(sig) => {
                self.signature_used_ms = self.key_ms;
                req.signature = Some(sig);
                self.send_signed(req, what)
            }
            None => {
                self.unsigned = Some((req, what));
                self.signature_typed.0.clear();
                self.prompt = Some((Prompt::Signature, String::new()));
                Action::None
            }
        }
    }

    fn send_signed(&mut self, req: CommandRequest, what: String) -> Action {
        self.note(format!("{what}: sent as {}", self.user), false);
        self.pending.insert(req.id.clone(), what);
        self.signed.insert(req.id.clone());
        Action::Send(Box::new(req))
    }

    /// `s` in the parameter view: the prompt for a value and a reason.
    fn open_set_prompt(&mut self) {
        if self.params.read_only {
            self.note("READ-ONLY: the engine refuses every write".into(), true);
            return;
        }
        if self.param_focus != ParamFocus::Params {
            self.note("← to the parameters, ↑/↓ to one, then s".into(), true);
            return;
        }
        match self.selected_entry() {
            Some((asset, param)) => {
                self.prompt = Some((Prompt::SetParam(asset, param), String::new()))
            }
            None => self.note("select a parameter with ↑/↓ first".into(), true),
        }
    }

    /// The parameter under the cursor, when it is listed.
    fn selected_entry(&self) -> Option<(String, String)> {
        let sel = self.param_sel.as_ref()?;
        self.param_entries()
            .iter()
            .any(|e| e.asset == sel.0 && e.param == sel.1)
            .then(|| sel.clone())
    }

    fn submit_set(&mut self, asset: String, param: String, text: &str) -> Action {
        let Some(entry) = self
            .params
            .entries
            .iter()
            .find(|e| e.asset == asset && e.param == param)
            .cloned()
        else {
            self.note(
                format!("set: {asset} {param} is no longer listed, nothing sent"),
                true,
            );
            return Action::None;
        };
        let text = text.trim();
        let (value_text, reason) = text.split_once(' ').unwrap_or((text, ""));
        let reason = reason.trim();
        let Some(value) = ParamValue::parse(value_text, entry.ty) else {
            let want = match entry.ty {
                ParamType::Bool => "on/off, true/false or 1/0",
                ParamType::Int => "an integer",
                ParamType::Float => "a number",
            };
            let shown = if value_text.is_empty() {
                "nothing"
            } else {
                value_text
            };
            self.note(
                format!("set {param}: `{shown}` is not {want}; type VALUE REASON, nothing sent"),
                true,
            );
            return Action::None;
        };
        if reason.is_empty() {
            self.note(
                format!("set {param}: a reason is required (VALUE REASON), nothing sent"),
                true,
            );
            return Action::None;
        }
        if entry.ty != ParamType::Bool {
            let v = value.as_f64();
            let below = entry.min.is_some_and(|m| v < m);
            let above = entry.max.is_some_and(|m| v > m);
            if below || above {
                let range = crate::ui::range_label(&entry);
                self.note(
                    format!("set {param}: {value} is outside {range}, nothing sent"),
                    true,
                );
                return Action::None;
            }
        }
        let mut req = CommandRequest::new(self.next_id(), self.user.clone(), CommandAction::Set);
        req.asset = Some(asset.clone());
        req.param = Some(param.clone());
        req.value = Some(value);
        req.reason = reason.to_string();
        let unit = if entry.unit.is_empty() || entry.ty == ParamType::Bool {
            String::new()
        } else {
            format!(" {}", entry.unit)
        };
        self.signed_send(req, format!("set {asset} {param} = {value}{unit}"))
    }

    /// The write request under the cursor, when the requests have the
    /// focus and it is listed; else says what to do.
    fn selected_request(&mut self, key: char) -> Option<(String, ParamState, String)> {
        if self.param_focus != ParamFocus::Requests {
            self.note(format!("→ to the requests, ↑/↓ to one, then {key}"), true);
            return None;
        }
        let found = self.request_sel.as_ref().and_then(|sel| {
            self.param_request_list()
                .into_iter()
                .find(|r| r.id == *sel)
                .map(|r| (r.id.clone(), r.state, r.requested_by.clone()))
        });
        if found.is_none() {
            self.note("select a request with ↑/↓ first".into(), true);
        }
        found
    }

    /// `y`: approve the request under the cursor.
    fn approve(&mut self) -> Action {
        let Some((id, state, by)) = self.selected_request('y') else {
            return Action::None;
        };
        if state != ParamState::Requested {
            self.note(
                format!(
                    "{id} is {}: only a requested change waits for approval",
                    state.as_str()
                ),
                true,
            );
            return Action::None;
        }
        if by == self.user {
            self.note("you cannot approve your own request".into(), true);
            return Action::None;
        }
        if self.params.read_only {
            self.note("READ-ONLY: the engine refuses every write".into(), true);
            return Action::None;
        }
        let mut req =
            CommandRequest::new(self.next_id(), self.user.clone(), CommandAction::Approve);
        req.request = Some(id.clone());
        self.signed_send(req, format!("approve {id}"))
    }

    /// `x`: the prompt for the reason to reject the request under the cursor.
    fn open_reject_prompt(&mut self) {
        let Some((id, state, _)) = self.selected_request('x') else {
            return;
        };
        if state != ParamState::Requested {
            self.note(
                format!(
                    "{id} is {}: only a requested change can be rejected",
                    state.as_str()
                ),
                true,
            );
            return;
        }
        self.prompt = Some((Prompt::Reject(id), String::new()));
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
        let req_id = self.next_id();
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
            self.clamp_cursors();
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
            View::Alarms | View::Health | View::Params | View::Fleet => View::Fleet,
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
            View::Params if dx < 0 => self.param_focus = ParamFocus::Params,
            View::Params if dx > 0 => self.param_focus = ParamFocus::Requests,
            View::Params => self.move_param_cursor(dy),
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

    /// ↑/↓ in the parameter view's focused table.
    fn move_param_cursor(&mut self, dy: isize) {
        match self.param_focus {
            ParamFocus::Params => {
                let keys: Vec<(String, String)> = self
                    .param_entries()
                    .iter()
                    .map(|e| (e.asset.clone(), e.param.clone()))
                    .collect();
                let at = self
                    .param_sel
                    .as_ref()
                    .and_then(|sel| keys.iter().position(|k| k == sel));
                self.param_sel = step_in(keys, at, dy);
            }
            ParamFocus::Requests => {
                let ids: Vec<String> = self
                    .param_request_list()
                    .iter()
                    .map(|r| r.id.clone())
                    .collect();
                let at = self
                    .request_sel
                    .as_ref()
                    .and_then(|sel| ids.iter().position(|id| id == sel));
                self.request_sel = step_in(ids, at, dy);
            }
        }
    }

    /// Drops selections the filters no longer list.
    fn clamp_cursors(&mut self) {
        self.clamp_alarm_cursor();
        if self.selected_entry().is_none() {
            self.param_sel = None;
        }
        let listed = self
            .request_sel
            .as_ref()
            .is_some_and(|sel| self.param_request_list().iter().any(|r| r.id == *sel));
        if !listed {
            self.request_sel = None;
        }
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
                    View::Params => {
                        let body = layout::areas(self, screen, now_ms).body;
                        let a = layout::param_areas(self, body);
                        if let Some(i) = layout::table_row_at(a.params, pos) {
                            let first = layout::param_offset(self, a.params);
                            let key = self
                                .param_entries()
                                .get(first + i)
                                .map(|e| (e.asset.clone(), e.param.clone()));
                            if key.is_some() {
                                self.param_focus = ParamFocus::Params;
                                self.param_sel = key;
                            }
                        } else if let Some(i) = layout::table_row_at(a.requests, pos) {
                            let first = layout::request_offset(self, a.requests);
                            let id = self
                                .param_request_list()
                                .get(first + i)
                                .map(|r| r.id.clone());
                            if id.is_some() {
                                self.param_focus = ParamFocus::Requests;
                                self.request_sel = id;
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

/// The item `dy` rows from `at` (the first one when none is selected).
fn step_in<T>(items: Vec<T>, at: Option<usize>, dy: isize) -> Option<T> {
    if items.is_empty() {
        return None;
    }
    let next = match at {
        None => 0,
        Some(i) => clamp_add(i, dy, items.len()),
    };
    items.into_iter().nth(next)
}

fn clamp_add(i: usize, d: isize, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    (i as isize + d).clamp(0, n as isize - 1) as usize
}

#[cfg(test)]
mod tests;
