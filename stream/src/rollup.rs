//! Roll-ups: asset windows → line, site and group KPIs.
//!
//! Times and quantities are summed first and the ratios derived from the
//! sums (ISO 22400-2); ratios are never averaged.

use crate::accum::AssetWindow;
use ctower_model::kpi::KpiSums;
use ctower_model::{KpiRecord, Level, ScopeKey, StreamOutput};
use std::collections::BTreeMap;

/// Builds every KPI record of one window, in a deterministic order: KPIs by
/// scope (group, sites, lines, assets), then signal statistics by asset and
/// signal. The order of `assets` does not matter: they are sorted first.
pub fn roll_up(
    window_start_ms: i64,
    window_ms: i64,
    mut assets: Vec<AssetWindow>,
) -> Vec<StreamOutput> {
    let end = window_start_ms + window_ms;
    // Floating-point sums depend on the order of the terms: fix it, so the
    // result does not depend on which worker delivered first.
    assets.sort_by(|x, y| x.asset.cmp(&y.asset));
    let mut scopes: BTreeMap<ScopeKey, KpiSums> = BTreeMap::new();
    let mut signals = Vec::new();
    for a in assets {
        for level in Level::ALL {
            scopes.entry(a.asset.scope(level)).or_default().add(&a.sums);
        }
        signals.extend(a.signals);
    }
    signals.sort_by(|x, y| (&x.asset, &x.signal).cmp(&(&y.asset, &y.signal)));
    scopes
        .into_iter()
        .map(|(scope, sums)| {
            StreamOutput::Kpi(Box::new(KpiRecord::new(window_start_ms, end, scope, sums)))
        })
        .chain(signals.into_iter().map(StreamOutput::Signal))
        .collect()
}
