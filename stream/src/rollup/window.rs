//! One window's roll-up: asset windows → line, site and group records.

use crate::accum::AssetWindow;
use ctower_model::kpi::KpiSums;
use ctower_model::{AssetKey, KpiRecord, Level, ScopeKey, SignalWindow, StreamOutput};
use std::sync::Arc;

/// Builds every KPI record of one window, in a deterministic order: KPIs by
/// scope (group, sites, lines, assets), then signal statistics by asset and
/// signal. The order of `assets` does not matter: they are sorted first.
///
/// Each site record counts as one site (`sites`), reporting when one of its
/// assets reported; the group sums them. `expected_sites` (the configured
/// ones) that sent nothing get a site record too, with no data, so the
/// group says how many of its sites the figures cover.
pub fn roll_up(
    window_start_ms: i64,
    window_ms: i64,
    mut assets: Vec<AssetWindow>,
    expected_sites: &[Arc<str>],
) -> Vec<StreamOutput> {
    let end = window_start_ms + window_ms;
    // Floating-point sums depend on the order of the terms: fix it, so the
    // result does not depend on which worker delivered first.
    assets.sort_by(|x, y| x.asset.cmp(&y.asset));
    let mut scopes = Scopes::sum(assets);
    scopes
        .signals
        .sort_by(|x, y| (&x.asset, &x.signal).cmp(&(&y.asset, &y.signal)));
    scopes.add_missing_sites(expected_sites);
    scopes.count_sites();
    scopes.records(window_start_ms, end)
}

/// The sums of every scope of one window, in record order.
#[derive(Default)]
struct Scopes {
    group: KpiSums,
    sites: Vec<(ScopeKey, KpiSums)>,
    lines: Vec<(ScopeKey, KpiSums)>,
    leaves: Vec<(ScopeKey, KpiSums)>,
    signals: Vec<SignalWindow>,
}

impl Scopes {
    /// Sums assets sorted by asset. The assets of a site, and of a line, are
    /// then adjacent and come in the order of their scope keys: each scope
    /// is summed in one pass, in the same order a map of scopes would give.
    fn sum(assets: Vec<AssetWindow>) -> Scopes {
        let mut s = Scopes {
            leaves: Vec::with_capacity(assets.len()),
            ..Scopes::default()
        };
        let mut prev: Option<AssetKey> = None;
        for a in assets {
            let k = &a.asset;
            let same_site = prev.as_ref().is_some_and(|p| p.site == k.site);
            let same_line = same_site
                && prev
                    .as_ref()
                    .is_some_and(|p| p.area == k.area && p.line == k.line);
            let same_asset = same_line && prev.as_ref().is_some_and(|p| p.asset == k.asset);
            s.group.add(&a.sums);
            // A line's retired assets count in the line, site and group, but
            // have no record of their own (one per asset per window forever
            // is what retiring them avoids).
            let levels = if k.is_retired_group() { 2 } else { 3 };
            for (same, level, scopes) in [
                (same_site, Level::Site, &mut s.sites),
                (same_line, Level::Line, &mut s.lines),
                (same_asset, Level::Asset, &mut s.leaves),
            ]
            .into_iter()
            .take(levels)
            {
                match scopes.last_mut() {
                    Some((_, sums)) if same => sums.add(&a.sums),
                    _ => {
                        let mut sums = KpiSums::default();
                        sums.add(&a.sums);
                        scopes.push((k.scope(level), sums));
                    }
                }
            }
            s.signals.extend(a.signals);
            prev = Some(a.asset);
        }
        s
    }

    /// A configured site that sent nothing is a site without data, not no
    /// site at all.
    fn add_missing_sites(&mut self, expected_sites: &[Arc<str>]) {
        let missing: Vec<&Arc<str>> = expected_sites
            .iter()
            .filter(|e| !self.sites.iter().any(|(k, _)| k.site.as_ref() == Some(*e)))
            .collect();
        if missing.is_empty() {
            return;
        }
        for site in missing {
            let scope = ScopeKey {
                level: Level::Site,
                site: Some(site.clone()),
                area: None,
                line: None,
                asset: None,
            };
            self.sites.push((scope, KpiSums::default()));
        }
        self.sites.sort_by(|x, y| x.0.cmp(&y.0));
    }

    /// Each site counts as one, reporting when one of its assets did.
    fn count_sites(&mut self) {
        for (_, sums) in &mut self.sites {
            sums.sites = 1;
            sums.sites_reporting = u64::from(sums.assets_reporting > 0);
            self.group.sites += 1;
            self.group.sites_reporting += sums.sites_reporting;
        }
    }

    fn records(self, window_start_ms: i64, end: i64) -> Vec<StreamOutput> {
        let record = |(scope, sums): (ScopeKey, KpiSums)| {
            StreamOutput::Kpi(Box::new(KpiRecord::new(window_start_ms, end, scope, sums)))
        };
        let group = (!self.sites.is_empty()).then(|| (ScopeKey::group(), self.group));
        group
            .into_iter()
            .chain(self.sites)
            .chain(self.lines)
            .chain(self.leaves)
            .map(record)
            .chain(self.signals.into_iter().map(StreamOutput::Signal))
            .collect()
    }
}
