//! Admission: the event-time watermark, lateness and timestamp sanity.
//! Pure: decisions depend only on the order of messages, never on the wall
//! clock, so a live run and a batch replay of the same traffic agree.
//!
//! Watermark = min over *active* sites of the newest event time seen from
//! the site, less the allowed lateness (monotone). A site whose newest event
//! is older than the newest event of all sites by more than the idle timeout
//! is stale: it no longer holds the watermark back, so one silent factory
//! never stalls the others' windows.

use crate::decode::{Reason, Rejection};
use ctower_model::time::window_start;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

#[derive(Debug, Clone, Copy)]
pub struct AdmissionConfig {
    pub window_ms: i64,
    pub allowed_lateness_ms: i64,
    pub idle_timeout_ms: i64,
    /// Refuse timestamps this far ahead of the newest event time seen.
    pub max_future_ms: i64,
    /// Data older than the watermark's window by at most this much is
    /// admitted and corrects closed windows; older data is `too_late`.
    pub correction_horizon_ms: i64,
}

#[derive(Debug)]
pub struct Admission {
    cfg: AdmissionConfig,
    newest_by_site: HashMap<Arc<str>, i64>,
    /// (newest event time, site), for the least active site in O(log n).
    order: BTreeSet<(i64, Arc<str>)>,
    newest: Option<i64>,
    watermark: Option<i64>,
    /// Start of the watermark's window: windows before it are closed.
    closed_before: Option<i64>,
    /// The least site name, to seek `order` by time without allocating.
    no_site: Arc<str>,
}

impl Admission {
    pub fn new(cfg: AdmissionConfig) -> Self {
        Admission {
            cfg,
            newest_by_site: HashMap::new(),
            order: BTreeSet::new(),
            newest: None,
            watermark: None,
            closed_before: None,
            no_site: Arc::from(""),
        }
    }

    /// Decides on one message's event time and, if admitted, advances the
    /// watermark. `recv_ms` is when the message was received: an event time
    /// too far ahead of it is a wrong clock, refused even as the very first
    /// message, so one bad timestamp can never push the watermark ahead.
    pub fn admit(&mut self, site: &Arc<str>, ts_ms: i64, recv_ms: i64) -> Result<(), Rejection> {
        if ts_ms > recv_ms.saturating_add(self.cfg.max_future_ms) {
            return Err(Rejection {
                reason: Reason::TimestampOutOfRange,
                detail: format!(
                    "`ts` {ts_ms} is {} s ahead of its receive time {recv_ms}",
                    (ts_ms - recv_ms) / 1000
                ),
            });
        }
        if let Some(n) = self.newest {
            if ts_ms > n.saturating_add(self.cfg.max_future_ms) {
                return Err(Rejection {
                    reason: Reason::TimestampOutOfRange,
                    detail: format!(
                        "`ts` {ts_ms} is {} s ahead of the newest event time",
                        (ts_ms - n) / 1000
                    ),
                });
            }
        }
        if let (Some(wm), Some(closed)) = (self.watermark, self.closed_before) {
            // `oldest` is a window start, so the window of `ts_ms` starts
            // before it exactly when `ts_ms` is before it.
            let oldest = closed - self.cfg.correction_horizon_ms;
            if ts_ms < oldest {
                return Err(Rejection {
                    reason: Reason::TooLate,
                    detail: format!(
                        "`ts` {ts_ms} is beyond the correction horizon (watermark {wm}, windows before {oldest} can no longer be corrected)"
                    ),
                });
            }
        }
        match self.newest_by_site.get_mut(site) {
            Some(prev) if *prev >= ts_ms => {}
            Some(prev) => {
                self.order.remove(&(*prev, site.clone()));
                *prev = ts_ms;
                self.order.insert((ts_ms, site.clone()));
            }
            None => {
                self.newest_by_site.insert(site.clone(), ts_ms);
                self.order.insert((ts_ms, site.clone()));
            }
        }
        let newest = self.newest.map_or(ts_ms, |n| n.max(ts_ms));
        self.newest = Some(newest);
        let active_from = newest - self.cfg.idle_timeout_ms;
        if let Some((least, _)) = self
            .order
            .range((active_from, self.no_site.clone())..)
            .next()
        {
            let wm = least - self.cfg.allowed_lateness_ms;
            if self.watermark.is_none_or(|w| wm > w) {
                self.watermark = Some(wm);
                self.closed_before = Some(window_start(wm, self.cfg.window_ms));
            }
        }
        Ok(())
    }

    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    pub fn newest(&self) -> Option<i64> {
        self.newest
    }

    /// Sites silent for longer than the idle timeout, by name.
    pub fn stale_sites(&self) -> Vec<String> {
        let Some(newest) = self.newest else {
            return vec![];
        };
        let active_from = newest - self.cfg.idle_timeout_ms;
        self.order
            .range(..(active_from, self.no_site.clone()))
            .map(|(_, s)| s.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adm() -> Admission {
        Admission::new(AdmissionConfig {
            window_ms: 60_000,
            allowed_lateness_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_future_ms: 300_000,
            correction_horizon_ms: 0,
        })
    }

    #[test]
    fn watermark_follows_the_slowest_active_site_and_skips_silent_ones() {
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let mut m = adm();
        m.admit(&a, 100_000, 100_000).unwrap();
        m.admit(&b, 150_000, 150_000).unwrap();
        assert_eq!(m.watermark(), Some(70_000));
        m.admit(&b, 140_000, 140_000).unwrap(); // out of order, within lateness
        assert_eq!(m.watermark(), Some(70_000));
        // a falls silent: once b is more than 60 s ahead, a no longer holds it back.
        m.admit(&b, 161_000, 161_000).unwrap();
        assert_eq!(m.watermark(), Some(131_000));
        m.admit(&b, 400_000, 400_000).unwrap();
        assert_eq!(m.watermark(), Some(370_000));
        assert_eq!(m.stale_sites(), vec!["a".to_string()]);
        // a comes back with data in a closed window: too late.
        assert_eq!(
            m.admit(&a, 250_000, 250_000).unwrap_err().reason,
            Reason::TooLate
        );
        // Same window as the watermark: still open.
        m.admit(&a, 361_000, 361_000).unwrap();
        // Far future of the newest event time, and of the receive time
        // (refused even as the first message: nothing moves).
        assert_eq!(
            m.admit(&a, 10_000_000, 10_000_000).unwrap_err().reason,
            Reason::TimestampOutOfRange
        );
        let mut fresh = adm();
        assert_eq!(
            fresh.admit(&a, 10_000_000, 400_000).unwrap_err().reason,
            Reason::TimestampOutOfRange
        );
        assert_eq!(fresh.watermark(), None);
        // The watermark never goes back.
        assert_eq!(m.watermark(), Some(370_000));
    }
}
