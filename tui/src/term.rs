//! The thin terminal loop: terminal set-up and restore, input, redraws.

use crate::app::{Action, App};
use crate::ui::render;
use ctower_model::{wall_ms, OperatorCommand, Update};
use ratatui::crossterm::event::{self, Event};
use ratatui::crossterm::{cursor, execute};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Longest wait for a key before looking at the updates again.
const POLL: Duration = Duration::from_millis(200);
/// Shortest time between two frames (at most 10 frames per second).
const FRAME: Duration = Duration::from_millis(100);
/// Redraw at least this often, so the freshness of each site ticks on.
const IDLE_REDRAW: Duration = Duration::from_secs(1);
/// Most updates applied between two looks at the keyboard, so a flood of
/// updates cannot starve input handling.
const MAX_UPDATES_PER_TURN: usize = 10_000;

/// Options of [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuiOptions {
    /// Shown at the top left of the dashboard.
    pub title: String,
    /// Return when the updates channel disconnects. When `false` the
    /// dashboard stays up (showing FEED LOST) until the user quits.
    pub exit_on_disconnect: bool,
}

impl Default for TuiOptions {
    fn default() -> Self {
        TuiOptions {
            title: "ctower".to_string(),
            exit_on_disconnect: false,
        }
    }
}

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

/// What draining the updates channel did.
#[derive(Debug, Default)]
struct Drained {
    /// Some update changed the state.
    changed: bool,
    /// The turn's share was used up: more updates are probably waiting.
    backlog: bool,
    /// The channel's sender hung up.
    disconnected: bool,
}

/// Applies pending updates, at most [`MAX_UPDATES_PER_TURN`]; marks the
/// feed lost when the channel has disconnected.
fn drain(updates: &Receiver<Update>, app: &mut App) -> Drained {
    let mut d = Drained::default();
    let mut applied = 0;
    while applied < MAX_UPDATES_PER_TURN {
        match updates.try_recv() {
            Ok(u) => {
                app.apply(&u, wall_ms());
                applied += 1;
                d.changed = true;
            }
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Disconnected) => {
                if !app.feed_lost() {
                    tracing::info!("tui: update feed disconnected");
                    app.set_feed_lost(true);
                    d.changed = true;
                }
                d.disconnected = true;
                break;
            }
        }
    }
    d.backlog = applied == MAX_UPDATES_PER_TURN;
    d
}

/// How long to wait for input: not at all while updates are piling up,
/// nor past the moment a pending redraw is due.
fn input_timeout(backlog: bool, dirty: bool, last_draw: Option<Instant>) -> Duration {
    if backlog {
        Duration::ZERO
    } else if dirty {
        let e = last_draw.map_or(FRAME, |t| t.elapsed());
        FRAME.saturating_sub(e).min(POLL)
    } else {
        POLL
    }
}

/// What the terminal said while we waited.
enum Input {
    /// Nothing that needs an answer.
    Nothing,
    /// Redraw at once (a key was handled, the terminal was resized).
    Redraw,
    /// The user quits.
    Quit,
}

/// Waits up to `timeout` for a terminal event and handles it.
fn wait_input(
    app: &mut App,
    timeout: Duration,
    commands: Option<&SyncSender<OperatorCommand>>,
) -> Result<Input, TuiError> {
    if !event::poll(timeout).map_err(TuiError::Input)? {
        return Ok(Input::Nothing);
    }
    Ok(match event::read().map_err(TuiError::Input)? {
        Event::Key(key) => match app.on_key(key) {
            Action::Quit => Input::Quit,
            Action::Command(c) => {
                send_command(app, commands, c);
                Input::Redraw
            }
            // Keys are answered at once, not at the next frame slot.
            Action::None => Input::Redraw,
        },
        Event::Resize(..) => Input::Redraw,
        _ => Input::Nothing,
    })
}

/// Runs the dashboard titled `opts.title` until the user quits, or until
/// `updates` disconnects when `opts.exit_on_disconnect` is set: see
/// [`run_app`], which it calls with a new [`App`].
pub fn run(updates: Receiver<Update>, opts: TuiOptions) -> Result<(), TuiError> {
    run_app(updates, App::new(opts.title), opts.exit_on_disconnect, None)
}

/// Runs the dashboard on `app` (for instance one made
/// [`App::with_timing`]) until the user quits, or until `updates`
/// disconnects when `exit_on_disconnect` is set. Blocking: run it on its
/// own thread.
///
/// Fails at once ([`TuiError::NotATerminal`]) unless standard input and
/// output are terminals ([`ensure_terminal`]). The terminal is switched to
/// raw mode and the alternate screen; a panic hook (ratatui's) restores it
/// before the panic message is printed, and a guard restores it on every
/// return.
///
/// Operators' commands (an acknowledgement) go to `commands`; without it
/// (a viewer that cannot act) the dashboard says so.
pub fn run_app(
    updates: Receiver<Update>,
    mut app: App,
    exit_on_disconnect: bool,
    commands: Option<SyncSender<OperatorCommand>>,
) -> Result<(), TuiError> {
    ensure_terminal()?;
    // The guard comes first so that a half-done set-up is undone too.
    let _guard = RestoreGuard;
    ACTIVE.store(true, Ordering::SeqCst);
    // Installs ratatui's panic hook, then raw mode and the alternate screen.
    let mut terminal = ratatui::try_init().map_err(TuiError::Init)?;
    install_panic_hook();
    tracing::debug!("tui started");

    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    loop {
        let drained = drain(&updates, &mut app);
        dirty |= drained.changed;
        if drained.disconnected && exit_on_disconnect {
            return Ok(());
        }

        // Redraw: at most every FRAME, at least every IDLE_REDRAW.
        let due = last_draw.is_none_or(|t| {
            let e = t.elapsed();
            (dirty && e >= FRAME) || e >= IDLE_REDRAW
        });
        if due {
            let now = wall_ms();
            terminal
                .draw(|f| render(f, &app, now))
                .map_err(TuiError::Draw)?;
            last_draw = Some(Instant::now());
            dirty = false;
        }

        let timeout = input_timeout(drained.backlog, dirty, last_draw);
        match wait_input(&mut app, timeout, commands.as_ref())? {
            Input::Nothing => {}
            Input::Redraw => last_draw = None,
            Input::Quit => {
                tracing::debug!("tui: quit by user");
                return Ok(());
            }
        }
    }
}

/// Sends an operator's command without waiting: the queue full or gone,
/// the dashboard says it was not sent rather than freezing.
fn send_command(app: &mut App, commands: Option<&SyncSender<OperatorCommand>>, c: OperatorCommand) {
    let Some(tx) = commands else {
        app.set_notice("this dashboard cannot send commands");
        return;
    };
    match tx.try_send(c) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => app.set_notice("not sent: the tower is busy, try again"),
        Err(TrySendError::Disconnected(_)) => {
            app.set_notice("not sent: the tower's output stage has stopped")
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
