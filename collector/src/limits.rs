//! Bounds on what the outside world can make the tower remember, and on
//! what a counter may claim. Pure: decisions depend only on the admitted
//! messages and the watermark, so live and batch agree.
//!
//! - **Assets per source** (`sources[].max_assets`): a source that names
//!   more assets than that (a flood of new topic names, a misconfigured
//!   gateway) gets the excess refused as `too_many_assets` dead letters;
//!   every asset it already has goes on. An asset silent for
//!   `pipeline.asset_retire_after_secs` of event time (behind the watermark)
//!   is forgotten here and frees its place — the stream retires it at the
//!   same silence.
//! - **Signals per asset** (`sources[].max_signals_per_asset`): the same for
//!   the signals of one asset (`too_many_signals`).
//! - **Rate of counters and meters** (`[signals.NAME] max_rate_per_s`): an
//!   increase faster than that since the signal's previous admitted reading
//!   is implausible (a corrupted or hostile value that would inflate every
//!   total): refused as `implausible_value`. The first reading, and a
//!   reading not after the previous one, are not checked (nothing to compare).
//!
//! Memory: one entry per remembered asset and signal, bounded by the caps.

use crate::decode::{Reason, Rejection};
use ctower_model::{AssetKey, AssetMap, NameMap, Observation, Value};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Caps of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLimits {
    /// Assets it may name at once (`sources[].max_assets`).
    pub max_assets: usize,
    /// Signals per asset (`sources[].max_signals_per_asset`).
    pub max_signals_per_asset: usize,
}

impl Default for SourceLimits {
    fn default() -> Self {
        SourceLimits {
            max_assets: 10_000,
            max_signals_per_asset: 256,
        }
    }
}

/// Settings of the limits, checked at load.
#[derive(Debug, Clone, Default)]
pub struct LimitRules {
    /// By source index (`RawMessage::source`); a source without an entry
    /// gets the defaults.
    pub sources: Vec<SourceLimits>,
    /// Largest increase per second of a counter or meter, by signal name.
    pub max_rate_per_s: NameMap<f64>,
    /// An asset silent this long behind the watermark is forgotten (0:
    /// never).
    pub retire_after_ms: i64,
}

#[derive(Debug)]
struct AssetState {
    /// Newest event time admitted for the asset.
    newest: i64,
    /// Signals seen, with the latest (event time, value) of rate-checked
    /// counters and meters.
    signals: NameMap<Option<(i64, f64)>>,
}

#[derive(Debug, Default)]
struct SourceState {
    assets: AssetMap<AssetState>,
    /// (newest event time when pushed, asset), oldest first. An entry is
    /// stale when the asset has spoken since: it is pushed again then.
    by_age: BinaryHeap<Reverse<(i64, AssetKey)>>,
}

/// What one message would change, decided by [`Limits::check`] and applied
/// by [`Limits::commit`] once the message is admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admit {
    new_asset: bool,
    new_signal: bool,
}

/// The limits' state: the assets and signals each source has named, and
/// each counter's last reading for the rate check. Pure, order-only.
#[derive(Debug)]
pub struct Limits {
    rules: LimitRules,
    sources: Vec<SourceState>,
}

impl Limits {
    /// Nothing seen yet.
    pub fn new(rules: LimitRules) -> Self {
        Limits {
            rules,
            sources: Vec::new(),
        }
    }

    fn limits_of(&self, source: usize) -> SourceLimits {
        self.rules.sources.get(source).copied().unwrap_or_default()
    }

    fn state(&mut self, source: usize) -> &mut SourceState {
        if self.sources.len() <= source {
            self.sources.resize_with(source + 1, SourceState::default);
        }
        &mut self.sources[source]
    }

    /// Assets remembered for `source`.
    pub fn assets(&self, source: usize) -> usize {
        self.sources.get(source).map_or(0, |s| s.assets.len())
    }

    /// Decides whether `obs` (of source `source`) may be admitted as far
    /// as the limits go; changes nothing.
    pub fn check(&self, source: usize, obs: &Observation) -> Result<Admit, Rejection> {
        let limits = self.limits_of(source);
        let state = self.sources.get(source);
        let asset = state.and_then(|s| s.assets.get(&obs.asset));
        let Some(asset) = asset else {
            let known = state.map_or(0, |s| s.assets.len());
            if known >= limits.max_assets {
                return Err(Rejection {
                    reason: Reason::TooManyAssets,
                    detail: format!(
                        "the source already has {known} assets (max_assets {}): `{}` is refused",
                        limits.max_assets, obs.asset
                    ),
                });
            }
            return Ok(Admit {
                new_asset: true,
                new_signal: true,
            });
        };
        let Some(last) = asset.signals.get(&obs.signal) else {
            if asset.signals.len() >= limits.max_signals_per_asset {
                return Err(Rejection {
                    reason: Reason::TooManySignals,
                    detail: format!(
                        "`{}` already has {} signals (max_signals_per_asset {}): `{}` is refused",
                        obs.asset,
                        asset.signals.len(),
                        limits.max_signals_per_asset,
                        obs.signal
                    ),
                });
            }
            return Ok(Admit {
                new_asset: false,
                new_signal: true,
            });
        };
        if let (Some((t0, v0)), Some(max_rate), Value::Number(v)) =
            (last, self.rules.max_rate_per_s.get(&obs.signal), &obs.value)
        {
            let dt_ms = obs.ts_ms - t0;
            if dt_ms > 0 {
                // Reset-safe: a drop is a reset, the new value the increase.
                let increase = if v >= v0 { v - v0 } else { *v };
                let allowed = max_rate * dt_ms as f64 / 1000.0;
                if increase > allowed {
                    return Err(Rejection {
                        reason: Reason::ImplausibleValue,
                        detail: format!(
                            "`{}` rose by {increase} in {} s since its previous reading {v0} ({:.3}/s > signals.{}.max_rate_per_s {max_rate})",
                            obs.signal,
                            dt_ms as f64 / 1000.0,
                            increase * 1000.0 / dt_ms as f64,
                            obs.signal
                        ),
                    });
                }
            }
        }
        Ok(Admit {
            new_asset: false,
            new_signal: false,
        })
    }

    /// Records an admitted message; then forgets the assets of its source
    /// silent for the retire time behind `watermark`.
    pub fn commit(
        &mut self,
        source: usize,
        obs: &Observation,
        admit: Admit,
        watermark: Option<i64>,
    ) {
        let rate_checked =
            obs.role.is_cumulative() && self.rules.max_rate_per_s.contains_key(&obs.signal);
        let retire_after = self.rules.retire_after_ms;
        let state = self.state(source);
        let asset = if admit.new_asset {
            state.by_age.push(Reverse((obs.ts_ms, obs.asset.clone())));
            state
                .assets
                .entry(obs.asset.clone())
                .or_insert_with(|| AssetState {
                    newest: obs.ts_ms,
                    signals: NameMap::default(),
                })
        } else {
            match state.assets.get_mut(&obs.asset) {
                Some(a) => a,
                None => return,
            }
        };
        asset.newest = asset.newest.max(obs.ts_ms);
        let reading = match (&obs.value, rate_checked) {
            (Value::Number(v), true) => Some((obs.ts_ms, *v)),
            _ => None,
        };
        if admit.new_signal {
            asset.signals.insert(obs.signal.clone(), reading);
        } else if let (Some(slot), Some((t, v))) = (asset.signals.get_mut(&obs.signal), reading) {
            // The latest in event time is what the next reading follows.
            if slot.is_none_or(|(t0, _)| t >= t0) {
                *slot = Some((t, v));
            }
        }
        let (Some(wm), true) = (watermark, retire_after > 0) else {
            return;
        };
        let before = wm - retire_after;
        while let Some(Reverse((t, key))) = state.by_age.peek().cloned() {
            if t >= before {
                break;
            }
            state.by_age.pop();
            match state.assets.get(&key).map(|a| a.newest) {
                Some(newest) if newest >= before => {
                    // Spoke since it was pushed: look at it again later.
                    state.by_age.push(Reverse((newest, key)));
                }
                Some(_) => {
                    state.assets.remove(&key);
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctower_model::Role;
    use std::sync::Arc;

    fn obs(asset: &str, signal: &str, role: Role, ts: i64, v: f64) -> Observation {
        Observation {
            asset: AssetKey::new("s", "a", "l", asset),
            signal: signal.into(),
            role,
            ts_ms: ts,
            value: Value::Number(v),
            seq: 0,
            watermark_ms: None,
        }
    }

    fn admit(l: &mut Limits, o: &Observation, wm: Option<i64>) -> Result<(), Reason> {
        let a = l.check(0, o).map_err(|r| r.reason)?;
        l.commit(0, o, a, wm);
        Ok(())
    }

    #[test]
    fn caps_assets_and_signals_and_frees_the_silent_ones() {
        let mut l = Limits::new(LimitRules {
            sources: vec![SourceLimits {
                max_assets: 2,
                max_signals_per_asset: 2,
            }],
            max_rate_per_s: NameMap::default(),
            retire_after_ms: 3_600_000,
        });
        let p = |a: &str, s: &str, t: i64| obs(a, s, Role::Process, t, 1.0);
        admit(&mut l, &p("m1", "x", 0), None).unwrap();
        admit(&mut l, &p("m2", "x", 0), None).unwrap();
        assert_eq!(
            admit(&mut l, &p("m3", "x", 0), None),
            Err(Reason::TooManyAssets)
        );
        admit(&mut l, &p("m1", "y", 0), None).unwrap();
        assert_eq!(
            admit(&mut l, &p("m1", "z", 0), None),
            Err(Reason::TooManySignals)
        );
        // Known assets and signals go on.
        admit(&mut l, &p("m1", "y", 10), None).unwrap();
        // m2 falls silent; m1 keeps talking for over an hour: m2 is
        // forgotten and m3 gets its place.
        for t in (0..=3_700_000).step_by(60_000) {
            admit(&mut l, &p("m1", "x", t), Some(t - 30_000)).unwrap();
        }
        assert_eq!(l.assets(0), 1);
        admit(&mut l, &p("m3", "x", 3_700_000), Some(3_670_000)).unwrap();
    }

    #[test]
    fn an_implausible_increase_is_refused_and_changes_nothing() {
        let mut l = Limits::new(LimitRules {
            sources: vec![],
            max_rate_per_s: [(Arc::from("count_total"), 100.0)].into_iter().collect(),
            retire_after_ms: 0,
        });
        let c = |t: i64, v: f64| obs("m", "count_total", Role::CounterTotal, t, v);
        admit(&mut l, &c(0, 1e6), None).unwrap();
        admit(&mut l, &c(10_000, 1e6 + 900.0), None).unwrap();
        // 1e308 after 10 s (a corrupted register): refused.
        assert_eq!(
            admit(&mut l, &c(20_000, 1e308), None),
            Err(Reason::ImplausibleValue)
        );
        // A reset, then counting on: plausible.
        admit(&mut l, &c(30_000, 50.0), None).unwrap();
        admit(&mut l, &c(40_000, 1_000.0), None).unwrap();
        // A reset to a huge value: the increase is the value.
        assert_eq!(
            admit(&mut l, &c(50_000, 5e8), None),
            Err(Reason::ImplausibleValue)
        );
        // Compared with the last admitted reading, not the refused one.
        admit(&mut l, &c(60_000, 2_000.0), None).unwrap();
    }
}
