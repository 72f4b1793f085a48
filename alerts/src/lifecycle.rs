//! The ANSI/ISA-18.2 alarm state machine of one alarm, pure: no clock
//! (every input carries its time), no I/O, no rule. The engine decides
//! when the condition is present (on-delay, deadband); operators and the
//! design decide the rest; this decides what is annunciated.
//!
//! States ([`AlarmState`], the standard's figure letters):
//!
//! | state | condition | annunciated |
//! |---|---|---|
//! | A `Normal` | absent | no |
//! | B `UnackActive` | present | yes, unacknowledged |
//! | C `AckActive` | present | yes, acknowledged |
//! | D `UnackRtn` | absent | yes, unacknowledged (returned to normal) |
//! | E `Latched` | absent | yes, until an operator resets it (latching alarms) |
//! | F `Shelved` | either | no, until the shelf expires or it is unshelved |
//! | G `Suppressed` | either | no, while its design condition holds |
//! | H `OutOfService` | either | no, until returned to service |
//!
//! The masks rank out of service over shelved over suppressed. The
//! condition is followed under every mask, so when the last mask lifts the
//! alarm is `UnackActive` if its condition is present (an operator must
//! see it again) and `Normal` if not.

use ctower_model::{AlarmEventKind, AlarmState};

/// What an alarm is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The condition, as the rule now evaluates it (after its delays and
    /// deadband).
    Condition(bool),
    /// An operator acknowledges it.
    Acknowledge,
    /// An operator resets a latched alarm.
    Reset,
    /// An operator shelves it until this time (ms).
    Shelve {
        /// When the shelf expires.
        until_ms: i64,
    },
    /// An operator unshelves it.
    Unshelve,
    /// Its design suppression starts (`true`) or ends (`false`).
    Suppress(bool),
    /// An operator removes it from service (`true`) or returns it (`false`).
    OutOfService(bool),
    /// Time passes: an expired shelf ends.
    Tick,
}

/// A change of state, with the event it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Before.
    pub from: AlarmState,
    /// After.
    pub to: AlarmState,
    /// What the event is called.
    pub kind: AlarmEventKind,
}

/// One alarm's ISA-18.2 state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    state: AlarmState,
    /// The process condition, followed under every mask.
    condition: bool,
    latching: bool,
    shelved_until_ms: Option<i64>,
    suppressed: bool,
    out_of_service: bool,
}

impl Lifecycle {
    /// A normal alarm; `latching` ones stay annunciated after their
    /// condition clears until reset.
    pub fn new(latching: bool) -> Self {
        Lifecycle {
            state: AlarmState::Normal,
            condition: false,
            latching,
            shelved_until_ms: None,
            suppressed: false,
            out_of_service: false,
        }
    }

    /// A lifecycle in `state` as a record left it (a restart): the
    /// condition is what the state implies (present for the active and
    /// latched states; unknown under a mask, taken as absent), a shelf
    /// runs until `shelved_until_ms` (a shelf whose end is not known is
    /// not put back: the alarm shows again).
    pub fn restored(state: AlarmState, shelved_until_ms: Option<i64>) -> Self {
        use AlarmState as S;
        let state = match (state, shelved_until_ms) {
            (S::Shelved, None) => S::Normal,
            (s, _) => s,
        };
        Lifecycle {
            state,
            condition: matches!(state, S::UnackActive | S::AckActive),
            latching: state == S::Latched,
            shelved_until_ms: shelved_until_ms.filter(|_| state == S::Shelved),
            suppressed: state == S::Suppressed,
            out_of_service: state == S::OutOfService,
        }
    }

    /// The state now.
    pub fn state(&self) -> AlarmState {
        self.state
    }

    /// Whether the condition is present (whatever the masks).
    pub fn condition(&self) -> bool {
        self.condition
    }

    /// Whether its design suppression is on.
    pub fn suppressed(&self) -> bool {
        self.suppressed
    }

    /// When the shelf expires, while shelved.
    pub fn shelved_until_ms(&self) -> Option<i64> {
        self.shelved_until_ms
    }

    /// Whether it carries nothing worth keeping (normal, no mask, no condition).
    pub fn is_idle(&self) -> bool {
        self.state == AlarmState::Normal
            && !self.condition
            && !self.suppressed
            && !self.out_of_service
            && self.shelved_until_ms.is_none()
    }

    /// The state the masks leave, or `None` when none applies.
    fn masked(&self) -> Option<AlarmState> {
        if self.out_of_service {
            Some(AlarmState::OutOfService)
        } else if self.shelved_until_ms.is_some() {
            Some(AlarmState::Shelved)
        } else if self.suppressed {
            Some(AlarmState::Suppressed)
        } else {
            None
        }
    }

    /// After the last mask lifts: seen again if the condition holds.
    fn unmasked(&self) -> AlarmState {
        self.masked().unwrap_or(if self.condition {
            AlarmState::UnackActive
        } else {
            AlarmState::Normal
        })
    }

    fn go(&mut self, to: AlarmState, kind: AlarmEventKind) -> Option<Transition> {
        let from = self.state;
        self.state = to;
        // Shelving again (a new time) is a change worth recording.
        (from != to || matches!(kind, AlarmEventKind::Shelved)).then_some(Transition {
            from,
            to,
            kind,
        })
    }

    /// Applies `input` at `now_ms`; the changes it makes, in order: an
    /// expired shelf ends first (whatever the input), then the input's own.
    pub fn apply(&mut self, input: Input, now_ms: i64) -> Vec<Transition> {
        let mut out = Vec::new();
        if let Some(until) = self.shelved_until_ms {
            if now_ms >= until {
                self.shelved_until_ms = None;
                if self.state == AlarmState::Shelved {
                    out.extend(self.go(self.unmasked(), AlarmEventKind::Unshelved));
                }
            }
        }
        out.extend(self.apply_one(input, now_ms));
        out
    }

    fn apply_one(&mut self, input: Input, now_ms: i64) -> Option<Transition> {
        use AlarmEventKind as K;
        use AlarmState as S;
        match input {
            Input::Tick => None,
            Input::Condition(c) => {
                if c == self.condition {
                    return None;
                }
                self.condition = c;
                if self.masked().is_some() {
                    return None; // followed, not annunciated
                }
                match (self.state, c) {
                    (S::Normal | S::UnackRtn | S::Latched, true) => {
                        self.go(S::UnackActive, K::Raised)
                    }
                    (S::UnackActive, false) if self.latching => self.go(S::Latched, K::Cleared),
                    (S::AckActive, false) if self.latching => self.go(S::Latched, K::Cleared),
                    (S::UnackActive, false) => self.go(S::UnackRtn, K::Cleared),
                    (S::AckActive, false) => self.go(S::Normal, K::Cleared),
                    _ => None,
                }
            }
            Input::Acknowledge => match self.state {
                S::UnackActive => self.go(S::AckActive, K::Acknowledged),
                S::UnackRtn => self.go(S::Normal, K::Acknowledged),
                _ => None,
            },
            Input::Reset => match self.state {
                S::Latched => self.go(S::Normal, K::Reset),
                _ => None,
            },
            Input::Shelve { until_ms } => {
                if self.out_of_service || until_ms <= now_ms {
                    return None;
                }
                self.shelved_until_ms = Some(until_ms);
                self.go(S::Shelved, K::Shelved)
            }
            Input::Unshelve => {
                self.shelved_until_ms.take()?;
                if self.state != S::Shelved {
                    return None;
                }
                self.go(self.unmasked(), K::Unshelved)
            }
            Input::Suppress(on) => {
                if on == self.suppressed {
                    return None;
                }
                self.suppressed = on;
                match (on, self.state) {
                    (true, S::OutOfService | S::Shelved) => None,
                    (true, _) => self.go(S::Suppressed, K::Suppressed),
                    (false, S::Suppressed) => self.go(self.unmasked(), K::Unsuppressed),
                    (false, _) => None,
                }
            }
            Input::OutOfService(on) => {
                if on == self.out_of_service {
                    return None;
                }
                self.out_of_service = on;
                if on {
                    // Out of service ends a shelf.
                    self.shelved_until_ms = None;
                    self.go(S::OutOfService, K::RemovedFromService)
                } else {
                    self.go(self.unmasked(), K::ReturnedToService)
                }
            }
        }
    }
}

/// Whether ISA-18.2 allows `from` → `to` (for checks and tests).
pub fn legal(from: AlarmState, to: AlarmState) -> bool {
    use AlarmState as S;
    match (from, to) {
        (a, b) if a == b => true,
        // Any state may be masked; a mask may lift to any unmasked state
        // the condition allows, or to a lower mask.
        (_, S::OutOfService | S::Shelved | S::Suppressed) => true,
        (S::OutOfService | S::Shelved | S::Suppressed, S::Normal | S::UnackActive) => true,
        (S::Normal, S::UnackActive) => true,
        (S::UnackActive, S::AckActive | S::UnackRtn | S::Latched) => true,
        (S::AckActive, S::Normal | S::Latched) => true,
        (S::UnackRtn, S::Normal | S::UnackActive) => true,
        (S::Latched, S::Normal | S::UnackActive) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use AlarmState as S;

    #[test]
    fn the_standard_cycle_and_its_latching_variant() {
        let to = |a: &mut Lifecycle, i, t| a.apply(i, t).last().map(|x| x.to);
        let mut a = Lifecycle::new(false);
        assert_eq!(to(&mut a, Input::Condition(true), 1), Some(S::UnackActive));
        assert_eq!(to(&mut a, Input::Condition(false), 2), Some(S::UnackRtn));
        assert_eq!(to(&mut a, Input::Condition(true), 3), Some(S::UnackActive));
        assert_eq!(to(&mut a, Input::Acknowledge, 4), Some(S::AckActive));
        assert_eq!(to(&mut a, Input::Condition(false), 5), Some(S::Normal));
        let mut l = Lifecycle::new(true);
        l.apply(Input::Condition(true), 1);
        l.apply(Input::Acknowledge, 2);
        assert_eq!(to(&mut l, Input::Condition(false), 3), Some(S::Latched));
        assert_eq!(
            to(&mut l, Input::Acknowledge, 4),
            None,
            "a latch needs a reset"
        );
        let t = l.apply(Input::Reset, 5)[0];
        assert_eq!((t.to, t.kind), (S::Normal, AlarmEventKind::Reset));
    }

    #[test]
    fn a_shelf_expires_into_unacknowledged_if_the_condition_holds() {
        let mut a = Lifecycle::new(false);
        a.apply(Input::Condition(true), 0);
        a.apply(Input::Acknowledge, 1);
        assert_eq!(
            a.apply(Input::Shelve { until_ms: 100 }, 2)[0].to,
            S::Shelved
        );
        assert!(
            a.apply(Input::Condition(false), 10).is_empty(),
            "followed, not shown"
        );
        assert!(a.apply(Input::Condition(true), 20).is_empty());
        assert!(a.apply(Input::Tick, 99).is_empty());
        let t = a.apply(Input::Tick, 100)[0];
        assert_eq!((t.to, t.kind), (S::UnackActive, AlarmEventKind::Unshelved));
        // Expired while clear: back to normal.
        let mut b = Lifecycle::new(false);
        b.apply(Input::Condition(true), 0);
        b.apply(Input::Shelve { until_ms: 50 }, 1);
        b.apply(Input::Condition(false), 2);
        assert_eq!(b.apply(Input::Tick, 60)[0].to, S::Normal);
        // An input after the expiry: the unshelving first, then the input.
        let mut c = Lifecycle::new(false);
        c.apply(Input::Condition(true), 0);
        c.apply(Input::Shelve { until_ms: 50 }, 1);
        let ts: Vec<_> = c
            .apply(Input::Acknowledge, 70)
            .iter()
            .map(|t| (t.kind, t.to))
            .collect();
        assert_eq!(
            ts,
            [
                (AlarmEventKind::Unshelved, S::UnackActive),
                (AlarmEventKind::Acknowledged, S::AckActive)
            ]
        );
    }

    #[derive(Debug, Clone)]
    enum Step {
        Input(Input),
        Clock(i64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => any::<bool>().prop_map(|c| Step::Input(Input::Condition(c))),
            2 => Just(Step::Input(Input::Acknowledge)),
            1 => Just(Step::Input(Input::Reset)),
            1 => (1i64..500).prop_map(|d| Step::Input(Input::Shelve { until_ms: d })),
            1 => Just(Step::Input(Input::Unshelve)),
            1 => any::<bool>().prop_map(|s| Step::Input(Input::Suppress(s))),
            1 => any::<bool>().prop_map(|s| Step::Input(Input::OutOfService(s))),
            2 => Just(Step::Input(Input::Tick)),
            2 => (0i64..300).prop_map(Step::Clock),
        ]
    }

    proptest! {
        /// Random values, acknowledgements, resets, shelves, suppressions,
        /// services and clock steps: every change is a legal ISA-18.2
        /// transition; unmasked, the state agrees with the condition; a
        /// shelf lasts exactly until it expires; a lifted mask leaves
        /// `UnackActive` if the condition holds, else `Normal`.
        #[test]
        fn every_transition_is_legal(latching in any::<bool>(), steps in proptest::collection::vec(step(), 1..200)) {
            let mut a = Lifecycle::new(latching);
            let mut now = 0i64;
            for s in steps {
                let input = match s {
                    Step::Clock(d) => { now += d; Input::Tick }
                    Step::Input(Input::Shelve { until_ms }) => Input::Shelve { until_ms: now + until_ms },
                    Step::Input(i) => i,
                };
                let before = a.state();
                let ts = a.apply(input, now);
                let after = a.state();
                // The changes chain from the state before to the state
                // after, each legal: nothing moves silently.
                let mut at = before;
                for t in &ts {
                    prop_assert_eq!(t.from, at);
                    prop_assert!(legal(t.from, t.to), "{:?} -> {:?} on {:?}", t.from, t.to, input);
                    at = t.to;
                }
                prop_assert_eq!(at, after, "silent change on {:?}", input);
                // Masks rank out of service > shelved > suppressed.
                if a.out_of_service {
                    prop_assert_eq!(after, S::OutOfService);
                } else if let Some(until) = a.shelved_until_ms {
                    prop_assert!(now < until, "a shelf past its time");
                    prop_assert_eq!(after, S::Shelved);
                } else if a.suppressed {
                    prop_assert_eq!(after, S::Suppressed);
                } else if a.condition {
                    prop_assert!(matches!(after, S::UnackActive | S::AckActive), "{:?} with the condition present", after);
                } else {
                    prop_assert!(matches!(after, S::Normal | S::UnackRtn | S::Latched), "{:?} with the condition absent", after);
                    prop_assert!(latching || after != S::Latched);
                }
                // A mask lifting shows the condition again, unacknowledged.
                if let Some(t) = ts.last() {
                    if matches!(t.kind, AlarmEventKind::Unshelved | AlarmEventKind::Unsuppressed | AlarmEventKind::ReturnedToService) && !matches!(t.to, S::Shelved | S::Suppressed | S::OutOfService) {
                        prop_assert_eq!(t.to, if a.condition { S::UnackActive } else { S::Normal });
                    }
                }
            }
        }
    }
}
