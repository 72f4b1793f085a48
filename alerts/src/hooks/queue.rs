//! A one-way abort flag with an interruptible sleep, shared between the
//! dispatcher and its threads.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A one-way flag with an interruptible sleep.
#[derive(Default)]
pub(crate) struct Abort {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Abort {
    /// Sets the flag and wakes every sleeper.
    pub(crate) fn trigger(&self) {
        *lock(&self.set) = true;
        self.cv.notify_all();
    }

    /// Whether the flag is set.
    pub(crate) fn is_set(&self) -> bool {
        *lock(&self.set)
    }

    /// Sleeps for `d` unless aborted; returns whether it was aborted.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let guard = lock(&self.set);
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, d, |set| !*set)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}
