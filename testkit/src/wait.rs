//! Waits with a deadline. Each takes `what` (what is awaited, as a phrase:
//! "the pipeline's outputs to end") and fails with it, so a hang becomes a
//! failure that says where, instead of a CI job stalled until it is killed.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest pause between two polls: short enough for a quick test, long
/// enough not to burn a shared core while waiting.
const MAX_POLL: Duration = Duration::from_millis(100);

/// Calls `probe` until it returns `Some`, and returns that. Polls at once,
/// then at growing intervals (1 ms doubling, at most 100 ms); panics with
/// `what` when `timeout` passes first. For state that offers no
/// notification (an atomic counter, a file, a terminal screen).
#[track_caller]
pub fn poll<T>(what: &str, timeout: Duration, probe: impl FnMut() -> Option<T>) -> T {
    match try_poll(timeout, probe) {
        Some(v) => v,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// [`poll`], but `None` at the deadline: for a caller whose failure message
/// shows more (the last state probed).
pub fn try_poll<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// [`poll`] for a condition.
#[track_caller]
pub fn until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    poll(what, timeout, || cond().then_some(()))
}

/// Receives until every sender is gone, all within `timeout`.
#[track_caller]
pub fn recv_all<T>(rx: &Receiver<T>, what: &str, timeout: Duration) -> Vec<T> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(v) => got.push(v),
            Err(RecvTimeoutError::Disconnected) => return got,
            Err(RecvTimeoutError::Timeout) => panic!(
                "timed out after {timeout:?} waiting for {what} (still open, {} received)",
                got.len()
            ),
        }
    }
}

/// Joins a thread within `timeout`; a panic of the thread is re-raised here.
#[track_caller]
pub fn join<T>(handle: JoinHandle<T>, what: &str, timeout: Duration) -> T {
    until(what, timeout, || handle.is_finished());
    match handle.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs a blocking call (one with no timeout of its own) on a thread of its
/// own and waits for it within `timeout`; a panic of the call is re-raised
/// here. Past the deadline the thread is left behind: the test fails, and
/// the harness ends the process when the other tests are done.
#[track_caller]
pub fn within<T: Send + 'static>(
    what: &str,
    timeout: Duration,
    call: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(call());
    });
    match rx.recv_timeout(timeout) {
        Ok(v) => v,
        // The sender was dropped without a value: the call panicked.
        Err(RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread ends by sending or by panicking"),
        },
        Err(RecvTimeoutError::Timeout) => {
            panic!("timed out after {timeout:?} waiting for {what}")
        }
    }
}
