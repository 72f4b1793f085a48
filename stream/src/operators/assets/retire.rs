//! Retired assets: an asset silent for `AccumConfig::retire_after_ms` (event
//! time) loses its accumulator and is reported at its line until forgotten.

use crate::accum::{AccumConfig, AssetAccumulator, AssetWindow};
use ctower_model::time::window_start;
use std::collections::BTreeMap;

/// An asset retired after a silence of `AccumConfig::retire_after_ms`.
#[derive(Debug, Clone)]
pub(crate) struct Retired {
    /// It had a machine-state time model: its time is unknown now.
    pub(crate) modelled: bool,
    /// Its last event time.
    pub(crate) last_ms: i64,
    /// Its counters' and meters' last readings: when it speaks again, what
    /// they counted meanwhile is reported (unmeasured), not lost.
    pub(crate) readings: crate::accum::LastReadings,
}

/// Retires the assets whose closed windows show a silence of the retire
/// time by `end` (their state is dropped: memory no longer grows with every
/// asset ever seen). Decided on the closed windows only, so that it does
/// not depend on what has happened to arrive for later ones: observations
/// already pending start a fresh accumulator, exactly as they would if they
/// came after the retirement.
pub(crate) fn retire(
    accs: &mut ctower_model::AssetMap<AssetAccumulator>,
    retired: &mut ctower_model::AssetMap<Retired>,
    end: i64,
    cfg: &AccumConfig,
) {
    if cfg.retire_after_ms <= 0 {
        return;
    }
    let silent: Vec<ctower_model::AssetKey> = accs
        .iter()
        .filter(|(_, acc)| {
            acc.newest_closed_ms()
                .is_some_and(|n| n + cfg.retire_after_ms <= end)
        })
        .map(|(k, _)| k.clone())
        .collect();
    for key in silent {
        let Some(mut acc) = accs.remove(&key) else {
            continue;
        };
        let readings = acc.last_readings();
        retired.insert(
            key.clone(),
            Retired {
                modelled: acc.is_modelled(),
                last_ms: acc.newest_closed_ms().unwrap_or(end),
                readings,
            },
        );
        let pending = acc.take_pending();
        if let Some(first) = pending.iter().map(|o| o.ts_ms).min() {
            // Seeded from the stub when its first window closes.
            let mut fresh = AssetAccumulator::new(key.clone(), window_start(first, cfg.window_ms));
            for o in pending {
                fresh.push(o, cfg.window_ms);
            }
            accs.insert(key, fresh);
        }
    }
}

/// Window `w`'s part of the retired assets: one window per line, counted
/// in the line's assets and, for assets with a time model, its unknown
/// time. A retired asset that spoke again stops being one at its new first
/// window; one silent for the forget time is forgotten.
pub(crate) fn retired_windows(
    retired: &mut ctower_model::AssetMap<Retired>,
    accs: &ctower_model::AssetMap<AssetAccumulator>,
    w: i64,
    cfg: &AccumConfig,
) -> Vec<AssetWindow> {
    retired.retain(|key, r| {
        r.last_ms + cfg.forget_after_ms > w
            && accs.get(key).is_none_or(|acc| acc.first_window_ms() > w)
    });
    let mut lines: BTreeMap<ctower_model::AssetKey, ctower_model::kpi::KpiSums> = BTreeMap::new();
    for (key, r) in retired.iter() {
        let sums = lines
            .entry(ctower_model::AssetKey::retired_of(key))
            .or_default();
        sums.assets += 1;
        if r.modelled {
            sums.unknown_ms += cfg.window_ms;
        }
    }
    lines
        .into_iter()
        .map(|(asset, sums)| AssetWindow {
            window_start_ms: w,
            asset,
            sums,
            signals: Vec::new(),
        })
        .collect()
}
