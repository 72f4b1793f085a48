//! Detectors: a rule's condition over the inputs of one alarm (samples or
//! window values, in event-time order), one kind per [`Kind`]. Pure: event
//! time only, state per alarm; the engine applies on-delay, off-delay and
//! chatter on top of what they say.
//!
//! | kind | condition | `value` in its events |
//! |---|---|---|
//! | threshold | beyond `threshold`, until back past `clear_at` (the deadband) | the input |
//! | rate of change | the slope over the last `rate_window` (per minute) beyond `threshold`, until back past `clear_at` | units per minute |
//! | deadman | no input for `silence` of its site's event time | seconds of silence |
//! | EWMA | the EWMA chart (Roberts 1959; NIST/SEMATECH e-Handbook 6.3.2.4): `z_t = λx_t + (1−λ)z_{t−1}`, `z_0 = μ₀`, out of `μ₀ ± Lσ√(λ/(2−λ)·(1−(1−λ)^{2t}))`, with μ₀ and σ the mean and standard deviation of the first `baseline` inputs and L = `threshold` | `(z_t − μ₀)` in units of its limit's σ |
//! | SPC | the Western Electric run rules against μ₀ ± kσ of the baseline: one point beyond 3σ, 2 of 3 beyond 2σ, 4 of 5 beyond 1σ (same side), 8 in a row on one side | `(x − μ₀)/σ` |
//! | CUSUM | the tabular CUSUM (Page 1954; NIST 6.3.2.3): `S = max(0, S + (x − target) − k)` (above; mirrored for below) beyond the decision interval `h` = `threshold`, until back at `clear_at` (default 0) | S |
//!
//! An EWMA or SPC detector says nothing (no condition, held) until its
//! baseline is complete; a baseline without spread (σ = 0) is widened to a
//! millionth of its mean's size, so a constant signal alarms on any change.

use crate::config::{Condition, Rule};
use statrs::statistics::Statistics;
use std::collections::VecDeque;

/// A rule's kind, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// The input against `threshold` and `clear_at`.
    Threshold,
    /// The slope over `window_ms`, per minute, against `threshold` and `clear_at`.
    RateOfChange {
        /// The span the slope is taken over.
        window_ms: i64,
    },
    /// No input for `silence_ms` of the site's event time.
    Deadman {
        /// How long a silence raises.
        silence_ms: i64,
    },
    /// The EWMA control chart; `threshold` is L (sigmas).
    Ewma {
        /// Weight of the newest input, in (0, 1].
        lambda: f64,
        /// Inputs that make the baseline.
        baseline: usize,
    },
    /// The Western Electric run rules.
    Spc {
        /// Inputs that make the baseline.
        baseline: usize,
    },
    /// The tabular CUSUM; `threshold` is the decision interval h.
    Cusum {
        /// The expected value (target) of the input.
        target: f64,
        /// The allowance k (slack) per input.
        slack: f64,
    },
}

impl Kind {
    /// The configuration name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Threshold => "threshold",
            Kind::RateOfChange { .. } => "rate_of_change",
            Kind::Deadman { .. } => "deadman",
            Kind::Ewma { .. } => "ewma",
            Kind::Spc { .. } => "spc",
            Kind::Cusum { .. } => "cusum",
        }
    }

    /// Whether the detector carries state between inputs (its alarm is
    /// kept even while normal).
    pub fn stateful(&self) -> bool {
        !matches!(self, Kind::Threshold)
    }
}

/// What one input says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The condition: `None` while it cannot be told (held).
    pub condition: Option<bool>,
    /// The value its events carry.
    pub value: f64,
}

/// Mean and spread of a complete baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Base {
    mean: f64,
    sd: f64,
}

/// What a detector says while it cannot tell yet.
const HELD: Reading = Reading {
    condition: None,
    value: 0.0,
};

/// Adds `x` to a baseline being filled; once it holds `n` inputs, its mean
/// and spread (and the buffer is emptied).
fn fill_baseline(filling: &mut Vec<f64>, n: usize, x: f64) -> Option<Base> {
    filling.push(x);
    if filling.len() < n {
        return None;
    }
    let b = base_of(filling);
    filling.clear();
    Some(b)
}

fn base_of(xs: &[f64]) -> Base {
    let mean = xs.mean();
    let sd = xs.std_dev();
    let floor = (mean.abs() * 1e-6).max(f64::MIN_POSITIVE);
    Base {
        mean,
        sd: if sd.is_finite() && sd > floor {
            sd
        } else {
            floor
        },
    }
}

/// A detector's state.
#[derive(Debug, Clone, PartialEq)]
pub enum Detector {
    /// Stateless.
    Threshold,
    /// Recent inputs within the window.
    Rate(VecDeque<(i64, f64)>),
    /// When the last input came.
    Deadman(Option<i64>),
    /// Baseline inputs, then the chart's state.
    Ewma {
        /// The baseline inputs while it fills.
        filling: Vec<f64>,
        /// The baseline once complete.
        base: Option<(f64, f64)>,
        /// The EWMA statistic.
        z: f64,
        /// Inputs since the baseline.
        t: i32,
    },
    /// Baseline inputs, then the last 8 standardised inputs.
    Spc {
        /// The baseline inputs while it fills.
        filling: Vec<f64>,
        /// The baseline once complete.
        base: Option<(f64, f64)>,
        /// The last standardised inputs, newest last.
        recent: VecDeque<f64>,
    },
    /// The cumulative sum.
    Cusum(f64),
}

fn threshold_condition(rule: &Rule, v: f64, active: bool) -> bool {
    if active {
        !rule.clears(v)
    } else {
        rule.trips(v)
    }
}

impl Detector {
    /// A fresh detector for `kind`.
    pub fn new(kind: &Kind) -> Self {
        match kind {
            Kind::Threshold => Detector::Threshold,
            Kind::RateOfChange { .. } => Detector::Rate(VecDeque::new()),
            Kind::Deadman { .. } => Detector::Deadman(None),
            Kind::Ewma { .. } => Detector::Ewma {
                filling: Vec::new(),
                base: None,
                z: 0.0,
                t: 0,
            },
            Kind::Spc { .. } => Detector::Spc {
                filling: Vec::new(),
                base: None,
                recent: VecDeque::new(),
            },
            Kind::Cusum { .. } => Detector::Cusum(0.0),
        }
    }

    /// One input `x` at event time `ts_ms`; `active` says whether the
    /// alarm is active (for the deadband side).
    pub fn observe(&mut self, rule: &Rule, ts_ms: i64, x: f64, active: bool) -> Reading {
        match (self, &rule.kind) {
            (Detector::Threshold, _) => Reading {
                condition: Some(threshold_condition(rule, x, active)),
                value: x,
            },
            (Detector::Rate(points), Kind::RateOfChange { window_ms }) => {
                points.push_back((ts_ms, x));
                while points.front().is_some_and(|(t, _)| *t < ts_ms - window_ms) {
                    points.pop_front();
                }
                let (t0, x0) = points.front().copied().unwrap_or((ts_ms, x));
                // Half the window at least, so two close samples do not
                // make a slope of noise.
                if ts_ms - t0 < (window_ms / 2).max(1) {
                    return Reading {
                        condition: None,
                        value: 0.0,
                    };
                }
                let rate = (x - x0) / (ts_ms - t0) as f64 * 60_000.0;
                Reading {
                    condition: Some(threshold_condition(rule, rate, active)),
                    value: rate,
                }
            }
            (Detector::Deadman(last), _) => {
                *last = Some(ts_ms);
                Reading {
                    condition: Some(false),
                    value: 0.0,
                }
            }
            (
                Detector::Ewma {
                    filling,
                    base,
                    z,
                    t,
                },
                Kind::Ewma { lambda, baseline },
            ) => {
                let Some((mean, sd)) = *base else {
                    if let Some(b) = fill_baseline(filling, *baseline, x) {
                        *base = Some((b.mean, b.sd));
                        *z = b.mean;
                    }
                    return HELD;
                };
                // (1 − λ)^2t is 0 long before this: no overflow, ever.
                *t = (*t + 1).min(100_000);
                *z = lambda * x + (1.0 - lambda) * *z;
                let var = lambda / (2.0 - lambda) * (1.0 - (1.0 - lambda).powi(2 * *t));
                let score = (*z - mean) / (sd * var.sqrt());
                Reading {
                    condition: Some(score.abs() > rule.threshold),
                    value: score,
                }
            }
            (
                Detector::Spc {
                    filling,
                    base,
                    recent,
                },
                Kind::Spc { baseline },
            ) => {
                let Some((mean, sd)) = *base else {
                    if let Some(b) = fill_baseline(filling, *baseline, x) {
                        *base = Some((b.mean, b.sd));
                    }
                    return HELD;
                };
                let u = (x - mean) / sd;
                recent.push_back(u);
                if recent.len() > 8 {
                    recent.pop_front();
                }
                Reading {
                    condition: Some(western_electric(recent)),
                    value: u,
                }
            }
            (Detector::Cusum(s), Kind::Cusum { target, slack }) => {
                let d = match rule.condition {
                    Condition::Above => x - target,
                    Condition::Below => target - x,
                };
                *s = (*s + d - slack).max(0.0);
                let condition = if active {
                    *s > rule.clear_at
                } else {
                    *s > rule.threshold
                };
                Reading {
                    condition: Some(condition),
                    value: *s,
                }
            }
            // A detector made for another kind (cannot happen: the engine
            // makes each from its rule).
            _ => Reading {
                condition: None,
                value: x,
            },
        }
    }

    /// A deadman's reading when its site's event time is `clock_ms`;
    /// `None` for other kinds, or before the first input.
    pub fn silence(&self, rule: &Rule, clock_ms: i64) -> Option<Reading> {
        let (Detector::Deadman(Some(last)), Kind::Deadman { silence_ms }) = (self, &rule.kind)
        else {
            return None;
        };
        let quiet = clock_ms - last;
        Some(Reading {
            condition: Some(quiet > *silence_ms),
            value: quiet as f64 / 1000.0,
        })
    }
}

/// Whether the newest standardised point breaks a Western Electric rule.
fn western_electric(recent: &VecDeque<f64>) -> bool {
    let last = |n: usize| recent.iter().rev().take(n).copied().collect::<Vec<f64>>();
    let beyond = |xs: &[f64], k: f64, need: usize| {
        xs.iter().filter(|u| **u > k).count() >= need
            || xs.iter().filter(|u| **u < -k).count() >= need
    };
    let l3 = last(3);
    let l5 = last(5);
    let l8 = last(8);
    let newest = l3.first().copied().unwrap_or(0.0);
    newest.abs() > 3.0
        || (l3.len() == 3 && beyond(&l3, 2.0, 2))
        || (l5.len() == 5 && beyond(&l5, 1.0, 4))
        || (l8.len() == 8 && (l8.iter().all(|u| *u > 0.0) || l8.iter().all(|u| *u < 0.0)))
}

/// The two-sided probability that one in-control point falls beyond L
/// sigmas (the EWMA's false-alarm rate per input once it has settled),
/// from the standard normal distribution.
pub fn false_alarm_probability(sigmas: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    match Normal::new(0.0, 1.0) {
        Ok(n) => 2.0 * (1.0 - n.cdf(sigmas.abs())),
        Err(_) => f64::NAN,
    }
}

#[cfg(test)]
mod tests;
