//! [`AssetAccumulator`]: one asset's observations by window, what it
//! carries from one window to the next, and the closed windows it keeps for
//! corrections.

use super::carry::{prepare, Carry, Pass};
use super::meter::{event_order, LastReadings};
use super::window::Run;
use super::{AccumConfig, AssetWindow};
use ctower_model::kpi::KpiSums;
use ctower_model::time::window_start;
use ctower_model::{AssetKey, Observation};
use std::collections::BTreeMap;

/// A closed window kept for corrections: what the asset carried into it,
/// its observations (in event order), and the sums it emitted.
#[derive(Debug)]
pub(super) struct Closed {
    pub(super) carry: Carry,
    pub(super) events: Vec<Observation>,
    pub(super) out: KpiSums,
}

/// One asset's state: its observations by window until each closes, what
/// it carries from window to window, and its closed windows within the
/// correction horizon.
#[derive(Debug)]
pub struct AssetAccumulator {
    pub(super) key: AssetKey,
    pub(super) c: Carry,
    pub(super) pending: BTreeMap<i64, Vec<Observation>>,
    /// Closed windows within the correction horizon, by start. Boxed: a
    /// window is large, and the map's nodes shift entries on every insert.
    pub(super) closed: BTreeMap<i64, Box<Closed>>,
    /// Corrections of earlier windows found while closing (a meter interval
    /// that ended after they closed), for [`AssetAccumulator::take_corrections`].
    pub(super) corrections: Vec<AssetWindow>,
    /// Late observations too old to replay (before the kept windows).
    pub(super) late_dropped: u64,
    /// Observations of the last window closed.
    pub(super) last_len: usize,
    /// Newest event time among the observations of the windows closed so
    /// far: what a retirement decides on (the pending windows beyond the
    /// closing point hold whatever has happened to arrive, which depends on
    /// timing).
    pub(super) newest_closed_ms: i64,
}

impl AssetAccumulator {
    /// A fresh accumulator whose first window starts at `first_window_ms`.
    pub fn new(key: AssetKey, first_window_ms: i64) -> Self {
        AssetAccumulator {
            key,
            c: Carry {
                first_window_ms,
                ..Carry::default()
            },
            pending: BTreeMap::new(),
            closed: BTreeMap::new(),
            corrections: Vec::new(),
            late_dropped: 0,
            last_len: 0,
            newest_closed_ms: i64::MIN,
        }
    }

    /// The asset.
    pub fn key(&self) -> &AssetKey {
        &self.key
    }

    /// Newest event time among the observations of the closed windows
    /// (`None` before any).
    pub fn newest_closed_ms(&self) -> Option<i64> {
        (self.newest_closed_ms > i64::MIN).then_some(self.newest_closed_ms)
    }

    /// The first window the asset has (it emits nothing before it).
    pub fn first_window_ms(&self) -> i64 {
        self.c.first_window_ms
    }

    /// The latest reading of each counter and meter, and the product: what
    /// a retired asset keeps, so that when it speaks again what its
    /// counters counted meanwhile is reported (as unmeasured), not lost,
    /// and its units keep their ideal cycle time (a product is often sent
    /// only when it changes).
    pub fn last_readings(&self) -> LastReadings {
        LastReadings {
            meters: self.c.meters,
            product: self.c.product.clone(),
        }
    }

    /// Starts a fresh accumulator from what the asset had before it was
    /// retired.
    pub fn seed_readings(&mut self, readings: &LastReadings) {
        self.c.meters = readings.meters;
        self.c.product.clone_from(&readings.product);
    }

    /// Takes the observations of the windows not yet closed, in window
    /// order (for a retired asset that speaks again: they start afresh).
    pub fn take_pending(&mut self) -> Vec<Observation> {
        std::mem::take(&mut self.pending)
            .into_values()
            .flatten()
            .collect()
    }

    /// Whether the asset has a machine-state time model.
    pub fn is_modelled(&self) -> bool {
        self.c.modelled
    }

    /// Observations waiting in windows not yet closed.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Buffers an observation in its window (any order: a window is
    /// sorted when it closes).
    pub fn push(&mut self, obs: Observation, window_ms: i64) {
        let w = window_start(obs.ts_ms, window_ms);
        self.c.first_window_ms = self.c.first_window_ms.min(w);
        // Sized like the last window: no doubling and copying as it fills.
        let hint = self.last_len;
        self.pending
            .entry(w)
            .or_insert_with(|| Vec::with_capacity(hint))
            .push(obs);
    }

    /// Closes the window starting at `w`; `None` before the asset's first
    /// window. Corrections of earlier windows that closing it produced are
    /// collected for [`AssetAccumulator::take_corrections`].
    pub fn close(&mut self, w: i64, cfg: &AccumConfig) -> Option<AssetWindow> {
        self.close_with(w, cfg, Pass::Regular, w + cfg.lookahead_ms())
    }

    /// Earlier windows recomputed while closing (a meter interval whose end
    /// reading came after they closed), oldest first.
    pub fn take_corrections(&mut self) -> Vec<AssetWindow> {
        std::mem::take(&mut self.corrections)
    }

    pub(super) fn close_with(
        &mut self,
        w: i64,
        cfg: &AccumConfig,
        pass: Pass,
        visible_to: i64,
    ) -> Option<AssetWindow> {
        if w < self.c.first_window_ms {
            return None;
        }
        let carry_in = (cfg.correction_horizon_ms > 0).then(|| self.c.clone());
        let mut events = self.pending.remove(&w).unwrap_or_default();
        self.last_len = events.len();
        events.sort_by_key(event_order);
        if let Some(last) = events.last() {
            self.newest_closed_ms = self.newest_closed_ms.max(last.ts_ms);
        }
        prepare(&mut self.c, &events);
        let ahead = self.ahead(w, &events, self.c.state_signal.clone(), visible_to, cfg);
        let kept = |x: i64| self.closed.contains_key(&x);
        let mut run = Run {
            key: &self.key,
            cfg,
            w,
            c: std::mem::take(&mut self.c),
            sums: KpiSums::default(),
            stats: BTreeMap::new(),
            measured: false,
            reach: None,
            pass,
        };
        let mut signals = run.window(&events, &ahead, &kept);
        let reach = run.reach;
        let sums = std::mem::take(&mut run.sums);
        self.c = run.c;
        let out = AssetWindow {
            window_start_ms: w,
            asset: self.key.clone(),
            sums,
            signals: std::mem::take(&mut signals),
        };
        if let Some(carry) = carry_in {
            self.closed.insert(
                w,
                Box::new(Closed {
                    carry,
                    events,
                    out: out.sums.clone(),
                }),
            );
            // Keep the windows a late observation may still reach.
            let keep_from = w - cfg.correction_horizon_ms - cfg.lookahead_ms();
            while self
                .closed
                .first_key_value()
                .is_some_and(|(k, _)| *k < keep_from)
            {
                self.closed.pop_first();
            }
        }
        if let Some(r) = reach {
            self.reach_back(r.from, w, visible_to, cfg);
        }
        Some(out)
    }
}
