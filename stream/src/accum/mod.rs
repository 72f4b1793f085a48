//! The per-asset accumulator: a plain struct, no I/O, no clock.
//!
//! It buffers an asset's observations by window until the watermark closes
//! the window, then replays them in event-time order (ties: counter and
//! meter readings first, then by arrival sequence) to integrate the
//! machine-state time model, and spreads what cumulative counters and
//! meters counted over the time they counted it.
//!
//! ## Counters and meters
//!
//! A cumulative reading at `t` reports what was counted up to `t`: the
//! increase since the previous reading (reset- and rollover-safe) belongs to
//! the interval between the two readings, and is spread pro rata over it,
//! across windows (and so shifts and days). A reading at a window, shift or
//! day boundary, or at the same instant as a state change, therefore counts
//! before it. Units are spread as whole units (rounded at each boundary
//! from the start of the interval, so the parts add up to the increase).
//! Two readings further apart than the signal's maximum interval
//! (`stale_after_secs` unless configured) are a gap: what was counted is
//! reported as `unmeasured` in the window of the later reading, in no
//! window's figures.
//!
//! A window takes its part of an interval when it closes if the interval's
//! end reading is already there (the accumulator sees as far ahead as the
//! stream's lookahead); otherwise, when that reading's window closes, the
//! earlier windows are recomputed and returned as corrections
//! ([`AssetAccumulator::take_corrections`]). Every window is computed from
//! what the asset carried into it, its observations and the readings seen
//! ahead, so recomputing it never counts anything twice.
//!
//! Where the code is: [`accumulator`] (the struct: buffering, closing a
//! window, what it keeps), [`window`] (integrating one window: the time
//! model, water quality, calendar, energy cost), [`spread`] (counter and
//! meter intervals spread pro rata), [`ahead`] (what a window sees of the
//! windows after it), [`corrections`] (late data and meter intervals that
//! ended after their windows closed), [`meter`] (the cumulative quantities
//! and their readings).

pub mod accumulator;
pub mod ahead;
pub mod carry;
pub mod corrections;
pub mod meter;
pub mod spread;
pub mod window;

pub use accumulator::AssetAccumulator;
pub use meter::{cumulative_delta, wrapping_delta, LastReadings};
pub use window::UNSPECIFIED;

use crate::calendar::SiteCalendar;
use ctower_model::kpi::KpiSums;
use ctower_model::{AssetKey, SignalWindow};
use std::collections::HashMap;
use std::sync::Arc;

/// Settings the accumulator needs; checked at load by the caller.
#[derive(Debug, Clone)]
pub struct AccumConfig {
    /// Window length, ms.
    pub window_ms: i64,
    /// An asset with no message for longer than this is UNKNOWN (stale);
    /// also the default maximum interval of counters and meters, and the
    /// longest meter interval that counts toward demand.
    pub stale_after_ms: i64,
    /// Maximum interval between two readings of a counter or meter, by
    /// signal name (default `stale_after_ms`): a longer one is a gap.
    pub max_interval_ms: ctower_model::NameMap<i64>,
    /// An asset silent this long (event time) is retired: its state is
    /// dropped and its line reports it as unknown (0: never).
    pub retire_after_ms: i64,
    /// A retired asset is forgotten this long after its last message.
    pub forget_after_ms: i64,
    /// Ideal cycle time per product, milliseconds per unit.
    pub ideal_cycle_ms: HashMap<String, f64>,
    /// USP <645> conductivity limit, µS/cm (1.3).
    pub conductivity_limit_us_cm: f64,
    /// USP <643> TOC limit, ppb (500).
    pub toc_limit_ppb: f64,
    /// An unplanned stop that ends within this time of its start is a
    /// micro-stop (a performance loss, not a breakdown); 0 disables.
    /// Windows close this much later, so that a stop's end is known.
    pub micro_stop_ms: i64,
    /// Rejects in this time after a start-up (running after a changeover,
    /// a planned stop or no shift) are start-up (yield) losses.
    pub startup_ms: i64,
    /// Counters and meters roll over at this value (None: a drop is a reset).
    pub counter_rollover: Option<f64>,
    /// How far back (behind the watermark) late data still corrects closed
    /// windows; 0 keeps no history and makes no corrections.
    pub correction_horizon_ms: i64,
    /// Tariff, emission factor and baseline by site.
    pub energy: Arc<HashMap<Arc<str>, crate::energy::SiteEnergy>>,
    /// Shift calendars by site: outside every shift known time is no-shift,
    /// in breaks and planned maintenance it is planned downtime.
    pub calendars: Arc<HashMap<Arc<str>, SiteCalendar>>,
}

impl AccumConfig {
    /// How far past a window's end the accumulator must see before it can
    /// close the window, in whole windows: the micro-stop threshold (a
    /// stop's end decides whether it was one), and the default maximum
    /// interval of counters and meters (the reading that ends the interval
    /// open at the window's end decides the window's part of it).
    pub fn lookahead_ms(&self) -> i64 {
        let reach = self.micro_stop_ms.max(self.stale_after_ms);
        if reach <= 0 || self.window_ms <= 0 {
            return 0;
        }
        (reach + self.window_ms - 1) / self.window_ms * self.window_ms
    }

    /// The longest interval between two readings of `signal` that is
    /// spread rather than reported as a gap.
    pub fn max_interval(&self, signal: &str) -> i64 {
        self.max_interval_ms
            .get(signal)
            .copied()
            .unwrap_or(self.stale_after_ms)
    }
}

/// One asset's contribution to one closed window.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AssetWindow {
    /// Start of the window, ms.
    pub window_start_ms: i64,
    /// The asset (or a line's retired assets).
    pub asset: AssetKey,
    /// Its sums in the window.
    pub sums: KpiSums,
    /// Statistics of its free numeric signals in the window.
    pub signals: Vec<SignalWindow>,
}

/// What the tests of the accumulator share.
#[cfg(test)]
mod test_support {
    use super::AccumConfig;
    use ctower_model::{AssetKey, Bucket, Observation, Role, Value};
    use std::collections::HashMap;
    use std::sync::Arc;

    pub const W: i64 = 60_000;

    pub fn cfg() -> AccumConfig {
        AccumConfig {
            window_ms: W,
            stale_after_ms: 30_000,
            ideal_cycle_ms: HashMap::from([("p".to_string(), 100.0)]),
            conductivity_limit_us_cm: 1.3,
            toc_limit_ppb: 500.0,
            micro_stop_ms: 0,
            startup_ms: 0,
            counter_rollover: None,
            calendars: Default::default(),
            energy: Default::default(),
            correction_horizon_ms: 0,
            max_interval_ms: Default::default(),
            retire_after_ms: 0,
            forget_after_ms: 0,
        }
    }

    pub fn obs(ts: i64, role: Role, value: Value) -> Observation {
        Observation {
            asset: AssetKey::new("s", "a", "l", "m"),
            signal: format!("{role:?}").into(),
            role,
            ts_ms: ts,
            value,
            seq: ts as u64,
            watermark_ms: None,
        }
    }

    pub fn state(ts: i64, b: Bucket) -> Observation {
        obs(
            ts,
            Role::State,
            Value::State {
                bucket: b,
                code: "x".into(),
                reason: None,
            },
        )
    }

    pub fn named_state(ts: i64, signal: &str, b: Bucket) -> Observation {
        Observation {
            signal: signal.into(),
            ..state(ts, b)
        }
    }

    /// Site `s` in UTC: one shift from 00:00 to `shift_end`, a break
    /// 00:01–00:02.
    pub fn with_calendar(shift_end: &str) -> AccumConfig {
        use crate::calendar::{BreakConfig, ShiftConfig, SiteCalendarConfig};
        let cal = SiteCalendarConfig {
            time_zone: "UTC".into(),
            production_day_start: "00:00".into(),
            shifts: vec![ShiftConfig {
                name: "day".into(),
                start: "00:00".into(),
                end: shift_end.into(),
            }],
            breaks: vec![BreakConfig {
                start: "00:01".into(),
                end: "00:02".into(),
            }],
            maintenance: vec![],
        };
        let cal = cal.check("sites.s", 60, &mut vec![]).expect("calendar");
        AccumConfig {
            calendars: Arc::new(HashMap::from([(Arc::from("s"), cal)])),
            ..cfg()
        }
    }
}
