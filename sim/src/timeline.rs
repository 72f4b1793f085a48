//! A machine's state over the whole recording: contiguous segments built
//! from the shift plan, then overlaid with scripted and random events.

use crate::calendar::{kind_at, DayKind, DayPlan, Tz, MINUTE};

/// Unplanned stop reasons (the `reason` of a `stopped` state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Jam,
    Breakdown,
    MaterialShortage,
    DoorOpen,
}

/// Machine state codes, exactly as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum St {
    Running,
    Stopped(Reason),
    Break,
    Changeover,
    NoShift,
}

impl St {
    pub(crate) fn code(self) -> &'static str {
        match self {
            St::Running => "running",
            St::Stopped(_) => "stopped",
            St::Break => "break",
            St::Changeover => "changeover",
            St::NoShift => "no_shift",
        }
    }

    pub(crate) fn reason(self) -> Option<&'static str> {
        match self {
            St::Stopped(r) => Some(match r {
                Reason::Jam => "jam",
                Reason::Breakdown => "breakdown",
                Reason::MaterialShortage => "material_shortage",
                Reason::DoorOpen => "door_open",
            }),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seg {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) st: St,
    /// Energy leak: the line draws leak power instead of standby.
    pub(crate) leak: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    pub(crate) segs: Vec<Seg>,
}

impl Timeline {
    /// The shift plan over [t0, end) (`end > t0`). Plan boundaries are whole
    /// local minutes and zone offsets whole hours, so checking every whole
    /// UTC minute finds every boundary.
    pub(crate) fn from_plan(t0: i64, end: i64, tz: Tz, plan: DayPlan) -> Self {
        let st = |k: DayKind| match k {
            DayKind::Run => St::Running,
            DayKind::Break => St::Break,
            DayKind::Off => St::NoShift,
        };
        let mut segs = Vec::new();
        let mut cur = st(kind_at(plan, tz, t0));
        let mut cur_start = t0;
        let mut m = (t0.div_euclid(MINUTE) + 1) * MINUTE;
        while m < end {
            let s = st(kind_at(plan, tz, m));
            if s != cur {
                segs.push(Seg {
                    start: cur_start,
                    end: m,
                    st: cur,
                    leak: false,
                });
                cur = s;
                cur_start = m;
            }
            m += MINUTE;
        }
        segs.push(Seg {
            start: cur_start,
            end,
            st: cur,
            leak: false,
        });
        Timeline { segs }
    }

    pub(crate) fn start(&self) -> i64 {
        self.segs.first().map_or(0, |s| s.start)
    }

    pub(crate) fn end(&self) -> i64 {
        self.segs.last().map_or(0, |s| s.end)
    }

    /// Index of the segment holding `t`.
    fn find(&self, t: i64) -> Option<usize> {
        let i = self.segs.partition_point(|s| s.end <= t);
        (i < self.segs.len() && self.segs[i].start <= t).then_some(i)
    }

    fn split(&mut self, t: i64) {
        if let Some(i) = self.find(t) {
            if self.segs[i].start < t {
                let mut right = self.segs[i].clone();
                right.start = t;
                self.segs[i].end = t;
                self.segs.insert(i + 1, right);
            }
        }
    }

    /// Applies `f` to every moment of [a, b) (clipped to the timeline).
    pub(crate) fn overlay(&mut self, a: i64, b: i64, f: impl Fn(&mut Seg)) {
        let (a, b) = (a.max(self.start()), b.min(self.end()));
        if a >= b {
            return;
        }
        self.split(a);
        self.split(b);
        for s in self.segs.iter_mut().filter(|s| s.start >= a && s.end <= b) {
            f(s);
        }
        // Merge neighbours that became equal.
        self.segs.dedup_by(|next, prev| {
            if prev.st == next.st && prev.leak == next.leak && prev.end == next.start {
                prev.end = next.end;
                true
            } else {
                false
            }
        });
    }

    /// True if [a, b) lies inside the timeline and every segment meeting it
    /// satisfies `pred`.
    pub(crate) fn all(&self, a: i64, b: i64, pred: impl Fn(&Seg) -> bool) -> bool {
        if a < self.start() || b > self.end() || a >= b {
            return false;
        }
        self.segs
            .iter()
            .filter(|s| s.end > a && s.start < b)
            .all(pred)
    }

    /// Times at which the state (code or reason) or the leak changes.
    pub(crate) fn change_times(&self) -> Vec<i64> {
        self.segs.iter().skip(1).map(|s| s.start).collect()
    }

    /// Moves every boundary later by `jitter()` ms (each call a new value,
    /// much shorter than any segment): operators do not stop a line at the
    /// exact second of the plan, and boundaries off the minute keep 60-s
    /// windows from splitting a transition's energy across them.
    pub(crate) fn jitter(&mut self, mut jitter: impl FnMut() -> i64) {
        for i in 1..self.segs.len() {
            let t = (self.segs[i].start + jitter()).min(self.segs[i].end - 1);
            self.segs[i].start = t;
            self.segs[i - 1].end = t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(t0: i64, end: i64) -> Timeline {
        Timeline {
            segs: vec![Seg {
                start: t0,
                end,
                st: St::Running,
                leak: false,
            }],
        }
    }

    #[test]
    fn overlay_splits_and_merges() {
        let mut tl = running(0, 100);
        tl.overlay(10, 20, |s| s.st = St::Stopped(Reason::Jam));
        assert_eq!(tl.segs.len(), 3);
        assert_eq!(tl.change_times(), vec![10, 20]);
        tl.jitter(|| 2);
        assert_eq!(tl.change_times(), vec![12, 22]);
        tl.jitter(|| -2);
        assert!(tl.all(20, 100, |s| s.st == St::Running));
        assert!(!tl.all(15, 100, |s| s.st == St::Running));
        assert!(!tl.all(50, 101, |_| true));
        tl.overlay(10, 20, |s| s.st = St::Running);
        assert_eq!(tl.segs.len(), 1);
        tl.overlay(90, 200, |s| s.leak = true);
        assert_eq!(tl.segs.last().map(|s| (s.start, s.end)), Some((90, 100)));
        assert_eq!(tl.change_times(), vec![90]);
    }
}
