use super::*;
use ctower_model::board::{alarm_key, BoardMessage, BoardTopic};
use ctower_model::{AlarmEvent, AlarmEventKind, AssetKey, Level};

fn press(app: &mut App, code: KeyCode) -> Action {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE), 0)
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

fn alarm(app: &mut App, rule: &str, state: AlarmState) -> AlarmId {
    let ev = AlarmEvent {
        ts_ms: 1,
        rule: rule.into(),
        scope: AssetKey::new("basel", "a", "l", "x").scope(Level::Line),
        signal: None,
        kind: AlarmEventKind::Raised,
        state,
        priority: Priority::High,
        metric: "oee".into(),
        value: None,
        threshold: 0.5,
        message: "m".into(),
    };
    app.apply(
        &BoardMessage {
            topic: BoardTopic::Alarm(alarm_key(&ev.id())),
            payload: Some(serde_json::to_vec(&ev).unwrap_or_default()),
        },
        0,
    );
    ev.id()
}

#[test]
fn esc_goes_back_a_level_and_q_quits() {
    let mut app = App::new("t", "alice");
    alarm(&mut app, "r", AlarmState::UnackActive);
    assert_eq!(press(&mut app, KeyCode::Enter), Action::None);
    assert_eq!(app.view(), View::Site);
    press(&mut app, KeyCode::Char('7'));
    assert_eq!(app.view(), View::Health);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.view(), View::Fleet);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.view(), View::Site);
    press(&mut app, KeyCode::BackTab);
    press(&mut app, KeyCode::BackTab);
    // Back from the first view wraps round to the last one.
    assert_eq!(app.view(), View::Params);
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.view(), View::Health);
    press(&mut app, KeyCode::Char('8'));
    assert_eq!(app.view(), View::Params);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.view(), View::Fleet);
    // Help: any key closes it, then q quits.
    press(&mut app, KeyCode::Char('?'));
    assert!(app.show_help);
    assert_eq!(press(&mut app, KeyCode::Esc), Action::None);
    assert!(!app.show_help);
    assert_eq!(press(&mut app, KeyCode::Char('q')), Action::Quit);
}

#[test]
fn acknowledge_shelve_and_comment_make_requests_as_the_user() {
    let mut app = App::new("t", "alice");
    let id = alarm(&mut app, "r", AlarmState::UnackActive);
    // Outside the console, `a` says where to go.
    assert_eq!(press(&mut app, KeyCode::Char('a')), Action::None);
    assert!(app
        .notice()
        .is_some_and(|(n, e)| e && n.contains("console")));
    press(&mut app, KeyCode::Char('6'));
    assert_eq!(press(&mut app, KeyCode::Char('a')), Action::None);
    press(&mut app, KeyCode::Down);
    let Action::Send(ack) = press(&mut app, KeyCode::Char('a')) else {
        panic!("an acknowledgement");
    };
    assert_eq!(
        (ack.user.as_str(), ack.action, ack.alarm.as_ref()),
        ("alice", CommandAction::Acknowledge, Some(&id))
    );
    // Shelve: a prompt for minutes and a reason; a bad one is refused here.
    press(&mut app, KeyCode::Char('s'));
    typed(&mut app, "abc");
    assert_eq!(press(&mut app, KeyCode::Enter), Action::None);
    assert!(app
        .notice()
        .is_some_and(|(n, e)| e && n.contains("MINUTES")));
    press(&mut app, KeyCode::Char('s'));
    typed(&mut app, "30 sensor being replaced");
    let Action::Send(shelve) = press(&mut app, KeyCode::Enter) else {
        panic!("a shelve");
    };
    assert_eq!(shelve.minutes, Some(30));
    assert_eq!(shelve.reason, "sensor being replaced");
    press(&mut app, KeyCode::Char('c'));
    typed(&mut app, "called maintenance");
    let Action::Send(c) = press(&mut app, KeyCode::Enter) else {
        panic!("a comment");
    };
    assert_eq!(
        (c.action, c.reason.as_str()),
        (CommandAction::Comment, "called maintenance")
    );
    assert_ne!(c.id, shelve.id);
    // While typing, q is a letter, not quit.
    press(&mut app, KeyCode::Char('c'));
    assert_eq!(press(&mut app, KeyCode::Char('q')), Action::None);
    press(&mut app, KeyCode::Esc);
    assert!(app.prompt.is_none());
}

#[test]
fn an_acknowledged_alarm_is_not_acknowledged_again() {
    let mut app = App::new("t", "alice");
    alarm(&mut app, "r", AlarmState::AckActive);
    press(&mut app, KeyCode::Char('6'));
    press(&mut app, KeyCode::Down);
    assert_eq!(press(&mut app, KeyCode::Char('a')), Action::None);
    assert!(app
        .notice()
        .is_some_and(|(n, _)| n.contains("does not wait")));
}

#[test]
fn the_filter_narrows_the_console_and_esc_clears_it() {
    let mut app = App::new("t", "alice");
    alarm(&mut app, "oee_low", AlarmState::UnackActive);
    alarm(&mut app, "power_high", AlarmState::UnackActive);
    press(&mut app, KeyCode::Char('6'));
    press(&mut app, KeyCode::Char('/'));
    typed(&mut app, "power");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.console_alarms().len(), 1);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.console_alarms().len(), 2);
    // The priority filter cycles; urgent only hides the high alarms.
    for _ in 0..3 {
        press(&mut app, KeyCode::Char('p'));
    }
    assert_eq!(app.console_alarms().len(), 0);
}
