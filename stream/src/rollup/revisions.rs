//! Corrections of closed windows: each window's asset sums and emitted
//! records are kept for the correction horizon, and a corrected asset window
//! re-emits the scopes that changed with the next revision.

use super::roll_up;
use crate::accum::AssetWindow;
use ctower_model::kpi::KpiSums;
use ctower_model::{AssetKey, KpiRecord, Period, ScopeKey, StreamOutput};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The window results kept for corrections: per window, each asset's sums
/// and each scope's emitted record. A corrected asset window replaces its
/// asset's sums; the window's scopes are summed again in the same order as
/// the first time, and every scope whose sums changed is re-emitted with the
/// next revision.
#[derive(Debug, Default)]
pub struct Revisions {
    keep_ms: i64,
    windows: BTreeMap<i64, Kept>,
    /// Corrections for windows no longer kept (older than the horizon).
    pub dropped: u64,
    /// Start of the first window ever kept.
    first_kept: Option<i64>,
}

/// Sorted vectors rather than maps: a window is kept once and looked up
/// only for its (rare) corrections.
#[derive(Debug, Default)]
struct Kept {
    /// Each asset's sums, by asset.
    assets: Vec<(AssetKey, KpiSums)>,
    /// Latest revision and sums of each scope's record, by scope.
    emitted: Vec<(ScopeKey, (u32, KpiSums))>,
}

impl Kept {
    fn emitted(&self, scope: &ScopeKey) -> Option<&(u32, KpiSums)> {
        self.emitted
            .binary_search_by(|(s, _)| s.cmp(scope))
            .ok()
            .map(|i| &self.emitted[i].1)
    }

    fn set_emitted(&mut self, scope: &ScopeKey, revision: u32, sums: &KpiSums) {
        match self.emitted.binary_search_by(|(s, _)| s.cmp(scope)) {
            Ok(i) => self.emitted[i].1 = (revision, sums.clone()),
            Err(i) => self
                .emitted
                .insert(i, (scope.clone(), (revision, sums.clone()))),
        }
    }

    fn set_asset(&mut self, asset: AssetKey, sums: KpiSums) {
        match self.assets.binary_search_by(|(a, _)| a.cmp(&asset)) {
            Ok(i) => self.assets[i].1 = sums,
            Err(i) => self.assets.insert(i, (asset, sums)),
        }
    }
}

/// A re-emitted window record and the one it replaces (none: a new scope).
#[derive(Debug, Clone)]
pub struct Revised {
    /// The record to emit.
    pub new: KpiRecord,
    /// The replaced record's revision and sums.
    pub old: Option<(u32, KpiSums)>,
}

impl Revisions {
    /// Keeps windows for `keep_ms` (0: keeps nothing, corrects nothing).
    pub fn new(keep_ms: i64) -> Self {
        Revisions {
            keep_ms,
            ..Revisions::default()
        }
    }

    /// Remembers a closed window: its assets' sums and its records (after
    /// labelling). Forgets windows older than the horizon.
    pub fn keep(
        &mut self,
        window_start_ms: i64,
        assets: Vec<(AssetKey, KpiSums)>,
        outputs: &[StreamOutput],
    ) {
        if self.keep_ms <= 0 {
            return;
        }
        let mut kept = Kept {
            assets,
            // The window's own records: `outputs` also holds the shifts and
            // days that ended with it, under the same scopes (kept by
            // `Periods`); taking them here would make a correction of this
            // window subtract a whole period instead of the window.
            emitted: outputs
                .iter()
                .filter_map(|o| match o {
                    StreamOutput::Kpi(k) if k.period == Period::Window => {
                        Some((k.scope.clone(), (k.revision, k.sums.clone())))
                    }
                    _ => None,
                })
                .collect(),
        };
        // Already in order, as roll_up emits them; sorting checks that
        // cheaply and keeps the lookups right whatever the caller passed.
        kept.assets.sort_by(|x, y| x.0.cmp(&y.0));
        kept.emitted.sort_by(|x, y| x.0.cmp(&y.0));
        self.windows.insert(window_start_ms, kept);
        self.first_kept = Some(
            self.first_kept
                .map_or(window_start_ms, |f| f.min(window_start_ms)),
        );
        let from = window_start_ms - self.keep_ms;
        while self
            .windows
            .first_key_value()
            .is_some_and(|(k, _)| *k < from)
        {
            self.windows.pop_first();
        }
    }

    /// Applies corrected asset windows of window `w`; returns the scope
    /// records that changed, with their next revision (not yet labelled).
    ///
    /// A window before the first one ever rolled up was never emitted: all
    /// its data came late (e.g. a site whose backlog arrives after another
    /// site set the watermark). Within the horizon it is rolled up now, its
    /// records at revision 0, and kept for later corrections.
    pub fn correct(
        &mut self,
        w: i64,
        window_ms: i64,
        changed: Vec<AssetWindow>,
        expected_sites: &[Arc<str>],
    ) -> Vec<Revised> {
        let never_emitted = self.keep_ms > 0
            && !self.windows.contains_key(&w)
            && self.first_kept.is_none_or(|f| w < f)
            && self
                .windows
                .last_key_value()
                .is_none_or(|(last, _)| w >= last - self.keep_ms);
        if never_emitted {
            self.windows.insert(w, Kept::default());
        }
        let Some(kept) = self.windows.get_mut(&w) else {
            self.dropped += changed.len() as u64;
            return Vec::new();
        };
        for aw in changed {
            kept.set_asset(aw.asset, aw.sums);
        }
        let assets: Vec<AssetWindow> = kept
            .assets
            .iter()
            .map(|(k, s)| AssetWindow {
                window_start_ms: w,
                asset: k.clone(),
                sums: s.clone(),
                signals: Vec::new(),
            })
            .collect();
        let mut out = Vec::new();
        for o in roll_up(w, window_ms, assets, expected_sites) {
            let StreamOutput::Kpi(mut new) = o else {
                continue;
            };
            let old = kept.emitted(&new.scope).cloned();
            if old.as_ref().is_some_and(|o| o.1 == new.sums) {
                continue;
            }
            new.revision = old.as_ref().map_or(0, |o| o.0 + 1);
            out.push(Revised { new: *new, old });
        }
        out
    }

    /// Stores the labelled re-emitted records as the latest of their window.
    pub fn emitted(&mut self, records: &[KpiRecord]) {
        for r in records {
            if let Some(kept) = self.windows.get_mut(&r.window_start_ms) {
                kept.set_emitted(&r.scope, r.revision, &r.sums);
            }
        }
    }
}
