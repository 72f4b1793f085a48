//! The cumulative quantities (counters and meters), their readings, and
//! reset- and rollover-safe deltas.

use ctower_model::{Observation, Role};
use std::sync::Arc;

/// Reset-safe delta of a cumulative counter or meter: a value lower than the
/// previous one is a reset, and the increase since the reset is the value.
#[inline]
pub fn cumulative_delta(prev: Option<f64>, now: f64) -> f64 {
    wrapping_delta(prev, now, None)
}

/// [`cumulative_delta`] for a counter that rolls over at `rollover` (e.g.
/// 65536 for a 16-bit PLC counter): a drop from the upper half of the range
/// to the lower half is a rollover, Δ = rollover − previous + new; any other
/// drop is a reset.
#[inline]
pub fn wrapping_delta(prev: Option<f64>, now: f64, rollover: Option<f64>) -> f64 {
    match (prev, rollover) {
        (None, _) => 0.0,
        (Some(p), _) if now >= p => now - p,
        (Some(p), Some(m)) if p >= m / 2.0 && p < m && now < m / 2.0 => m - p + now,
        (Some(_), _) => now,
    }
}

/// The cumulative quantities: counters and meters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Meter {
    Total,
    Good,
    Reject,
    Energy,
    Feed,
    Permeate,
    Concentrate,
}

impl Meter {
    pub(super) const ALL: [Meter; 7] = [
        Meter::Total,
        Meter::Good,
        Meter::Reject,
        Meter::Energy,
        Meter::Feed,
        Meter::Permeate,
        Meter::Concentrate,
    ];

    #[inline]
    pub(super) fn of(role: Role) -> Option<Meter> {
        Some(match role {
            Role::CounterTotal => Meter::Total,
            Role::CounterGood => Meter::Good,
            Role::CounterReject => Meter::Reject,
            Role::EnergyKwh => Meter::Energy,
            Role::WaterFeedM3 => Meter::Feed,
            Role::WaterPermeateM3 => Meter::Permeate,
            Role::WaterConcentrateM3 => Meter::Concentrate,
            _ => return None,
        })
    }

    #[inline]
    pub(super) fn index(self) -> usize {
        self as usize
    }

    /// The KPI field it feeds (the key of `KpiSums::unmeasured`).
    #[inline]
    pub(super) fn field(self) -> &'static str {
        match self {
            Meter::Total => "produced",
            Meter::Good => "good",
            Meter::Reject => "reject",
            Meter::Energy => "energy_kwh",
            Meter::Feed => "water_feed_m3",
            Meter::Permeate => "water_permeate_m3",
            Meter::Concentrate => "water_concentrate_m3",
        }
    }

    #[inline]
    pub(super) fn counts_units(self) -> bool {
        matches!(self, Meter::Total | Meter::Good | Meter::Reject)
    }
}

/// The latest readings of an asset's counters and meters, and its product
/// (opaque): what a retired asset resumes from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LastReadings {
    pub(super) meters: [Option<Reading>; 7],
    pub(super) product: Option<Arc<str>>,
}

/// One reading of a counter or meter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Reading {
    pub(super) ts: i64,
    pub(super) value: f64,
}

/// The order in which a window's observations are applied: event time;
/// at the same instant, counter and meter readings before anything else
/// (a reading at `t` reports up to `t`, so it belongs before a state or
/// product change at `t`); then arrival.
#[inline]
pub(super) fn event_order(o: &Observation) -> (i64, bool, u64) {
    (o.ts_ms, Meter::of(o.role).is_none(), o.seq)
}
