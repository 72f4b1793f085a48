//! The thin terminal loop: terminal set-up and restore, input, redraws.

use crate::app::{App, LinkState};
use crate::keys::Action;
use crate::ui::{render, Theme};
use ctower_model::board::BoardInbox;
use ctower_model::{wall_ms, CommandReply, CommandRequest};
use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use ratatui::crossterm::{cursor, execute};
use ratatui::layout::Rect;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

/// Longest wait for a key before looking at the updates again.
const POLL: Duration = Duration::from_millis(250);
/// Shortest time between two frames (at most 10 frames per second).
const FRAME: Duration = Duration::from_millis(100);
/// Redraw at least this often, so the freshness of each site ticks on.
const IDLE_REDRAW: Duration = Duration::from_secs(1);
/// Errors of the terminal dashboard.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    /// The terminal could not be set up (raw mode, alternate screen, size).
    #[error("cannot set up the terminal: {0}")]
    Init(#[source] std::io::Error),
    /// Drawing a frame failed.
    #[error("cannot draw on the terminal: {0}")]
    Draw(#[source] std::io::Error),
    /// Reading terminal events failed.
    #[error("cannot read terminal input: {0}")]
    Input(#[source] std::io::Error),
    /// Standard input or output (named) is not a terminal: piped,
    /// redirected, or run by a service manager.
    #[error("the dashboard needs a terminal, and {0} is not one: use --headless to run without the dashboard")]
    NotATerminal(&'static str),
}

/// Checks that standard input and output are terminals, as the dashboard
/// needs (it reads keys from one and draws on the other).
///
/// [`run_app`] checks it first too, but a command that starts a pipeline for
/// the dashboard should call it before starting anything, so that a piped
/// or scripted `ctower demo` stops at once, saying to use `--headless`.
pub fn ensure_terminal() -> Result<(), TuiError> {
    use std::io::IsTerminal;
    check_terminal(
        std::io::stdin().is_terminal(),
        std::io::stdout().is_terminal(),
    )
}

/// [`ensure_terminal`] on what the standard streams are.
fn check_terminal(stdin_is_tty: bool, stdout_is_tty: bool) -> Result<(), TuiError> {
    if !stdout_is_tty {
        Err(TuiError::NotATerminal("standard output"))
    } else if !stdin_is_tty {
        Err(TuiError::NotATerminal("standard input"))
    } else {
        Ok(())
    }
}

/// Whether [`run_app`] has the terminal in raw mode and the alternate screen.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static PANIC_HOOK: Once = Once::new();

/// Restores the terminal: leaves raw mode and the alternate screen and
/// shows the cursor again.
///
/// Does nothing unless [`run_app`] has set the terminal up, and acts once, so it
/// is safe to call from anywhere and more than once: meant for the binary's
/// signal handler before it exits the process (the dashboard's own exits
/// restore the terminal by themselves).
pub fn restore_terminal() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        // Errors are ignored: there is nothing better to do while leaving.
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
        let _ = ratatui::try_restore();
        let _ = execute!(std::io::stdout(), cursor::Show);
    }
}

/// On top of ratatui's panic hook (which leaves raw mode and the alternate
/// screen), shows the cursor before the panic message is printed.
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
    });
}

/// Restores the terminal when dropped, on every exit path of [`run_app`]
/// (return, error, unwinding panic).
struct RestoreGuard;

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// One thing for the dashboard's loop: every input arrives on one queue.
#[derive(Debug)]
pub enum AppEvent {
    /// A key, a mouse click, a resize.
    Input(Event),
    /// The feed's inbox has something.
    Board,
    /// A reply to one of this viewer's requests.
    Reply(CommandReply),
    /// The link to the engine changed.
    Link(LinkState),
}

/// Events queued for the loop; full, a producer's event waits (input,
/// replies) or is dropped as redundant (an inbox wake-up).
pub const EVENT_QUEUE: usize = 1_024;

/// Sends a request to the engine; `Err` says why it could not.
pub type SendFn = Box<dyn FnMut(CommandRequest) -> Result<(), String> + Send>;

/// Told the site whose lines the views need.
pub type FocusFn = Box<dyn FnMut(Option<&str>) + Send>;

/// What a viewer is connected to.
pub struct Link {
    /// The feed's messages.
    pub inbox: Arc<BoardInbox>,
    /// The loop's queue; its sender is given to the producers.
    pub events: Receiver<AppEvent>,
    /// A sender on the queue, for the inbox's wake-ups and the input thread.
    pub events_tx: SyncSender<AppEvent>,
    /// Sends a request to the engine; `Err` says why it could not.
    pub send: SendFn,
    /// Told the site whose lines the views need (`None`: no site view
    /// open), each time it changes: an attached viewer subscribes to that
    /// site's lines only, so the fleet costs no line traffic.
    pub focus: FocusFn,
}

/// A new event queue.
pub fn event_queue() -> (SyncSender<AppEvent>, Receiver<AppEvent>) {
    std::sync::mpsc::sync_channel(EVENT_QUEUE)
}

/// Runs the dashboard on `app` until the user quits. Blocking.
///
/// Fails at once ([`TuiError::NotATerminal`]) unless standard input and
/// output are terminals. The terminal is switched to raw mode, the
/// alternate screen and mouse capture; a panic hook restores it before
/// the panic message is printed, and a guard on every return.
pub fn run_viewer(mut app: App, link: Link) -> Result<(), TuiError> {
    ensure_terminal()?;
    let _guard = RestoreGuard;
    ACTIVE.store(true, Ordering::SeqCst);
    let mut terminal = ratatui::try_init().map_err(TuiError::Init)?;
    install_panic_hook();
    let _ = execute!(std::io::stdout(), EnableMouseCapture);
    let theme = Theme::from_env();
    let Link {
        inbox,
        events,
        events_tx,
        mut send,
        mut focus,
    } = link;
    let mut focused: Option<Option<Arc<str>>> = None;
    let wake = events_tx.clone();
    inbox.set_waker(Box::new(move || {
        let _ = wake.try_send(AppEvent::Board);
    }));
    let input_tx = events_tx;
    std::thread::Builder::new()
        .name("tui-input".into())
        .spawn(move || loop {
            match event::read() {
                Ok(ev) => {
                    if input_tx.send(AppEvent::Input(ev)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "tui: cannot read the terminal");
                    break;
                }
            }
        })
        .map_err(TuiError::Input)?;
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    loop {
        // Pending feed messages first (also those put before the waker).
        let (msgs, _) = inbox.take();
        let now = wall_ms();
        let want = app.line_focus(now);
        if focused.as_ref() != Some(&want) {
            focus(want.as_deref());
            focused = Some(want);
        }
        for m in &msgs {
            app.apply(m, now);
        }
        dirty |= !msgs.is_empty();
        let due = last_draw.is_none_or(|t| {
            let e = t.elapsed();
            (dirty && e >= FRAME) || e >= IDLE_REDRAW
        });
        if due {
            let now = wall_ms();
            let size = terminal.size().map_err(TuiError::Draw)?;
            app.set_screen(Rect::new(0, 0, size.width, size.height));
            terminal
                .draw(|f| render(f, &app, now, theme))
                .map_err(TuiError::Draw)?;
            last_draw = Some(Instant::now());
            dirty = false;
        }
        let wait = if dirty {
            FRAME.saturating_sub(last_draw.map_or(FRAME, |t| t.elapsed()))
        } else {
            POLL
        };
        let ev = match events.recv_timeout(wait) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let now = wall_ms();
        let action = match ev {
            AppEvent::Input(Event::Key(k)) => {
                // Keys are answered at once, not at the next frame slot.
                last_draw = None;
                app.on_key(k, now)
            }
            AppEvent::Input(Event::Mouse(m)) => {
                last_draw = None;
                app.on_mouse(m, app.screen, now)
            }
            AppEvent::Input(Event::Resize(..)) => {
                last_draw = None;
                Action::None
            }
            AppEvent::Input(_) | AppEvent::Board => Action::None,
            AppEvent::Reply(r) => {
                dirty = true;
                app.on_reply(&r);
                Action::None
            }
            AppEvent::Link(l) => {
                dirty = true;
                app.set_link(l);
                Action::None
            }
        };
        match action {
            Action::None => {}
            Action::Quit => {
                tracing::debug!("tui: quit by user");
                return Ok(());
            }
            Action::Send(req) => {
                if let Err(why) = send((*req).clone()) {
                    app.send_failed(&req, &why);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_needs_both_standard_streams_on_a_terminal() {
        assert!(check_terminal(true, true).is_ok());
        for (stdin, stdout, named) in [
            (true, false, "standard output"),
            (false, true, "standard input"),
            (false, false, "standard output"),
        ] {
            let e = check_terminal(stdin, stdout).expect_err("not a terminal");
            let msg = e.to_string();
            assert!(msg.contains(named), "{msg}");
            assert!(msg.contains("use --headless"), "{msg}");
        }
    }
}
