//! The one clock of ctower: wall-clock milliseconds since the Unix epoch,
//! injected where the I/O shell needs the time (receive timestamps, replay
//! pacing, hook signatures, the dashboard's "updated N s ago"), so that
//! tests control it. KPIs and alarms never read it: they run on event time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A source of the current time, ms since the Unix epoch (UTC).
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({} ms)", self.now_ms())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock(Arc::new(wall_ms))
    }

    /// A clock that reads `f`.
    pub fn from_fn(f: impl Fn() -> i64 + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(f))
    }

    /// A clock a test sets by hand ([`ManualClock::set`], [`ManualClock::advance`]).
    pub fn manual(start_ms: i64) -> (Clock, ManualClock) {
        let now = Arc::new(AtomicI64::new(start_ms));
        let read = now.clone();
        (
            Clock(Arc::new(move || read.load(Ordering::SeqCst))),
            ManualClock(now),
        )
    }

    /// Now, ms since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        (self.0)()
    }
}

/// The hand of a [`Clock::manual`].
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// Sets the time, ms since the epoch.
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    /// Moves the time on by `ms` milliseconds.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

/// The system's wall clock, ms since the Unix epoch (0 if the system clock
/// is before 1970, which no plant server is).
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let (clock, hand) = Clock::manual(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        hand.advance(500);
        assert_eq!(clock.clone().now_ms(), 1_500);
        hand.set(7);
        assert_eq!(clock.now_ms(), 7);
        assert!(Clock::system().now_ms() > 1_700_000_000_000);
    }
}
