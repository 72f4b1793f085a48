//! What a window sees beyond its own observations.

use super::meter::{event_order, Meter, Reading};
use super::{AccumConfig, AssetAccumulator};
use ctower_model::{Bucket, Observation, Value};
use std::sync::Arc;

/// What a window sees beyond its own observations: the owner's state
/// changes (micro-stops) and the next reading of each counter and meter,
/// from the windows after it up to a visibility bound. The bound is where
/// every window is complete when the window is computed, so what it sees
/// does not depend on timing.
#[derive(Debug, Default)]
pub(super) struct Ahead {
    /// (time, seq, is an unplanned stop) of the owner's state messages.
    pub(super) changes: Vec<(i64, u64, bool)>,
    /// The first later reading of each counter and meter, with its signal.
    pub(super) next: [Option<(Reading, Arc<str>)>; 7],
}

impl AssetAccumulator {
    /// What window `w` sees ahead: later windows up to `visible_to`, kept
    /// (closed) or pending.
    pub(super) fn ahead(
        &self,
        w: i64,
        events: &[Observation],
        owner: Option<Arc<str>>,
        visible_to: i64,
        cfg: &AccumConfig,
    ) -> Ahead {
        let mut later: Vec<(i64, &[Observation])> = self
            .closed
            .range(w + 1..=visible_to)
            .map(|(k, c)| (*k, c.events.as_slice()))
            .chain(
                self.pending
                    .range(w + 1..=visible_to)
                    .map(|(k, v)| (*k, v.as_slice())),
            )
            .collect();
        later.sort_by_key(|(k, _)| *k);
        let mut ahead = Ahead::default();
        // The owner's state changes, for micro-stops: up to the threshold
        // after the window's end.
        if let Some(owner) = owner.as_ref() {
            let until = w + cfg.window_ms + cfg.micro_stop_ms;
            ahead.changes = events
                .iter()
                .chain(later.iter().flat_map(|(_, v)| v.iter()))
                .filter(|o| o.signal == *owner && o.ts_ms <= until)
                .filter_map(|o| match &o.value {
                    Value::State { bucket, .. } => {
                        Some((o.ts_ms, o.seq, *bucket == Bucket::UnplannedStop))
                    }
                    _ => None,
                })
                .collect();
            ahead.changes.sort_unstable();
        }
        // The next reading of each counter and meter: the first, in event
        // order, of the first later window that has one (one pass over each
        // window, stopping once every meter is found).
        let mut found = [false; 7];
        for (_, obs) in &later {
            let mut first: [Option<&Observation>; 7] = [None; 7];
            for o in obs.iter() {
                let Some(m) = Meter::of(o.role) else { continue };
                let i = m.index();
                if found[i] || o.value.as_f64().is_none() {
                    continue;
                }
                if first[i].is_none_or(|f| event_order(o) < event_order(f)) {
                    first[i] = Some(o);
                }
            }
            for (i, o) in first.iter().enumerate() {
                let Some((o, value)) = o.and_then(|o| o.value.as_f64().map(|v| (o, v))) else {
                    continue;
                };
                found[i] = true;
                ahead.next[i] = Some((Reading { ts: o.ts_ms, value }, o.signal.clone()));
            }
            if found.iter().all(|f| *f) {
                break;
            }
        }
        ahead
    }
}
