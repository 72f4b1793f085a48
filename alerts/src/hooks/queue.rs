//! The two thread primitives between the dispatcher and its webhook
//! workers: a bounded queue with a timed push and a close, and a one-way
//! abort flag with an interruptible sleep (for the shutdown deadline).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Locks `m`, carrying on past a poisoned lock: the guarded data (a queue,
/// a flag) stays consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A bounded multi-producer queue with a timed push and a close.
pub(super) struct Queue<T> {
    state: Mutex<QueueState<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
}

struct QueueState<T> {
    items: VecDeque<T>,
    closed: bool,
}

/// Why [`Queue::push`] gave the item back.
pub(super) enum PushError {
    /// Still full when the wait ran out.
    Full,
    /// The queue was closed.
    Closed,
}

impl<T> Queue<T> {
    /// An empty queue of `capacity` items (at least 1).
    pub(super) fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                closed: false,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    /// Appends `item`, waiting at most `wait` for room.
    pub(super) fn push(&self, item: T, wait: Duration) -> Result<(), (PushError, T)> {
        let deadline = Instant::now() + wait;
        let mut st = lock(&self.state);
        loop {
            if st.closed {
                return Err((PushError::Closed, item));
            }
            if st.items.len() < self.capacity {
                st.items.push_back(item);
                self.not_empty.notify_one();
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err((PushError::Full, item));
            }
            st = self
                .not_full
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The next item; `None` once the queue is closed and empty.
    pub(super) fn pop(&self) -> Option<T> {
        let mut st = lock(&self.state);
        loop {
            if let Some(item) = st.items.pop_front() {
                self.not_full.notify_one();
                return Some(item);
            }
            if st.closed {
                return None;
            }
            st = self
                .not_empty
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Refuses further pushes; [`pop`](Self::pop) still drains what is queued.
    pub(super) fn close(&self) {
        lock(&self.state).closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Removes and returns every queued item.
    pub(super) fn take_all(&self) -> Vec<T> {
        lock(&self.state).items.drain(..).collect()
    }
}

/// A one-way flag with an interruptible sleep.
#[derive(Default)]
pub(super) struct Abort {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Abort {
    /// Sets the flag and wakes every sleeper.
    pub(super) fn trigger(&self) {
        *lock(&self.set) = true;
        self.cv.notify_all();
    }

    /// Whether the flag is set.
    pub(super) fn is_set(&self) -> bool {
        *lock(&self.set)
    }

    /// Sleeps for `d` unless aborted; returns whether it was aborted.
    pub(super) fn sleep(&self, d: Duration) -> bool {
        let guard = lock(&self.set);
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, d, |set| !*set)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_times_out_when_full_and_drains_after_close() {
        let q = Queue::new(1);
        assert!(q.push(1, Duration::ZERO).is_ok());
        assert!(matches!(
            q.push(2, Duration::from_millis(1)),
            Err((PushError::Full, 2))
        ));
        q.close();
        assert!(matches!(
            q.push(3, Duration::ZERO),
            Err((PushError::Closed, 3))
        ));
        assert_eq!(q.pop(), Some(1));
        assert_eq!(q.pop(), None);
    }
}
