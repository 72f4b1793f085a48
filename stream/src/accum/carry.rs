//! What one asset carries from window to window ([`Carry`]), and how a
//! window is being computed ([`Pass`], [`ReachBack`]): the vocabulary the
//! accumulator, the window computation and the corrections share, kept
//! apart so that each of them depends on it and none on the others'
//! insides.

use super::meter::Reading;
use ctower_model::{Bucket, Observation, Role};
use std::sync::Arc;

/// Sets what the window's own observations decide before it is
/// integrated: an asset has a time model from the window of its first
/// state message on (before that message its time is UNKNOWN, so the
/// buckets of every modelled window add up to the window length), and the
/// first state signal seen owns it.
pub(super) fn prepare(c: &mut Carry, events: &[Observation]) {
    if !c.modelled && events.iter().any(|o| o.role == Role::State) {
        c.modelled = true;
    }
    if c.state_signal.is_none() {
        c.state_signal = events
            .iter()
            .find(|o| o.role == Role::State)
            .map(|o| o.signal.clone());
    }
}

/// What an asset carries from one window to the next: state, the last
/// readings of its counters and meters. Cloned at every window start so a
/// window can be computed again.
#[derive(Debug, Clone, Default)]
pub(super) struct Carry {
    pub(super) first_window_ms: i64,
    /// Set at the window of the first `state` observation: only such assets
    /// have a time model.
    pub(super) modelled: bool,
    /// The state signal that owns the time model: the first one seen. State
    /// messages of any other signal of the asset would overlap it and are
    /// rejected (counted), never double-counted.
    pub(super) state_signal: Option<Arc<str>>,
    pub(super) state: Option<Bucket>,
    /// Reason code of the latest state message.
    pub(super) reason: Option<Arc<str>>,
    /// The current unplanned stop is a micro-stop.
    pub(super) stop_micro: bool,
    /// The current unplanned stop began in a window the calendar made
    /// planned or no-shift, so no failure was counted for it yet.
    pub(super) stop_uncounted: bool,
    /// End of the current start-up period (running after a changeover,
    /// planned stop or no shift).
    pub(super) startup_until: Option<i64>,
    pub(super) last_msg_ms: Option<i64>,
    pub(super) product: Option<Arc<str>>,
    /// The latest reading of each counter and meter (by `Meter::index`).
    pub(super) meters: [Option<Reading>; 7],
    /// Latest conductivity and TOC readings: (event time, within the limit).
    pub(super) conductivity: Option<(i64, bool)>,
    pub(super) toc: Option<(i64, bool)>,
}

/// How a window is being computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pass {
    /// Closing on time: later windows up to `w + lookahead` are complete.
    Regular,
    /// Replaying for late data or for a meter interval that ended later:
    /// the windows it reads ahead in are complete up to the bound given.
    Again,
}

/// A meter interval that ended in a window closed on time, whose earlier
/// windows closed without seeing its end: they are computed again.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReachBack {
    pub(super) from: i64,
}
