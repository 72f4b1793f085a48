//! Admission: the event-time watermark, lateness and timestamp sanity.
//! Pure: decisions depend only on the order of messages and on each
//! message's own receive time, never on the wall clock, so a live run and
//! a batch replay of the same traffic agree, at any replay speed.
//!
//! ## Clocks
//!
//! - A message whose event time is more than `max_future_ms` ahead of its
//!   own receive time is a wrong clock: refused, whatever else is going on.
//!   Nothing else is compared with "the newest event time": a plant-wide
//!   silence, a weekend shutdown or a source reporting once an hour can
//!   never latch the tower (every later message used to be refused).
//! - The group's event time `R` is the newest event time admitted. The
//!   group's *progress* `P` follows `R`, but one message moves it by at
//!   most a quarter of `idle_timeout_ms`: one site whose clock is far ahead
//!   (or one site resuming first after a plant-wide silence) cannot, in one
//!   step, make every other site look silent.
//!
//! ## Which sites hold the watermark back
//!
//! A site holds the watermark back while it is *talking* and *in step*:
//! - talking: the group's progress since the site's last message is below
//!   `idle_timeout_ms` (a silent site stops stalling the others' windows);
//! - in step: its newest event time is at most `max_future_ms +
//!   idle_timeout_ms` behind `R` (a site whose clock lags, or which sends a
//!   backlog, delays only itself: its data comes late and corrects its own
//!   windows, or is refused as too late).
//!
//! Watermark = min over those sites of their newest event time, less the
//! allowed lateness; it never goes back. So a site whose clock runs up to
//! `max_future_ms` ahead can never close the windows of a site that keeps
//! talking: lateness and staleness are decided by each site's own traffic,
//! not by the newest event of any one site.

use crate::decode::{Reason, Rejection};
use ctower_model::time::window_start;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The admission's settings, checked (`pipeline.*`).
#[derive(Debug, Clone, Copy)]
pub struct AdmissionRules {
    /// The KPI window, ms.
    pub window_ms: i64,
    /// How late (event time) a message may come and still count in its
    /// window, ms.
    pub allowed_lateness_ms: i64,
    /// A site silent for this much of the group's event-time progress no
    /// longer holds the watermark back.
    pub idle_timeout_ms: i64,
    /// Refuse timestamps this far ahead of their own receive time.
    pub max_future_ms: i64,
    /// Data older than the watermark's window by at most this much is
    /// admitted and corrects closed windows; older data is `too_late`.
    pub correction_horizon_ms: i64,
}

impl AdmissionRules {
    /// How far a talking site may lag the group's newest event time and
    /// still hold the watermark back: a site whose clock is ahead by up to
    /// `max_future_ms` must not push one that is on time out of step.
    pub fn max_lag_ms(&self) -> i64 {
        self.max_future_ms.saturating_add(self.idle_timeout_ms)
    }

    /// The most one message may move the group's progress.
    fn progress_step_ms(&self) -> i64 {
        (self.idle_timeout_ms / 4).max(1)
    }
}

#[derive(Debug, Clone, Copy)]
struct SiteClock {
    /// Newest event time admitted from the site.
    newest: i64,
    /// The group's progress when the site last sent a message.
    heard_at: i64,
    /// Whether the site is in `talking`: it spoke in step with the group.
    /// (Whether it has been silent since is checked when it is the least
    /// there: only the least matters for the watermark.)
    talking: bool,
}

/// Site names → their index (FNV: one lookup per message).
type SiteIndex = ctower_model::NameMap<u32>;

/// The event-time watermark and the lateness decisions (module docs):
/// pure, decided by message order only.
#[derive(Debug)]
pub struct Admission {
    rules: AdmissionRules,
    index: SiteIndex,
    names: Vec<Arc<str>>,
    sites: Vec<SiteClock>,
    /// (newest event time, site index) of the sites that spoke in step:
    /// the least that has not gone silent holds the watermark.
    talking: BTreeSet<(i64, u32)>,
    /// `R`: the newest event time admitted.
    newest: Option<i64>,
    /// `P`: the group's progress (see the module docs).
    progress: i64,
    watermark: Option<i64>,
    /// Start of the watermark's window: windows before it are closed.
    closed_before: Option<i64>,
}

impl Admission {
    /// No site seen yet, no watermark.
    pub fn new(rules: AdmissionRules) -> Self {
        Admission {
            rules,
            index: SiteIndex::default(),
            names: Vec::new(),
            sites: Vec::new(),
            talking: BTreeSet::new(),
            newest: None,
            progress: 0,
            watermark: None,
            closed_before: None,
        }
    }

    /// Decides on one message's event time and, if admitted, advances the
    /// watermark. `recv_ms` is when the message was received: an event time
    /// too far ahead of it is a wrong clock, refused even as the very first
    /// message, so one bad timestamp can never push the watermark ahead.
    pub fn admit(&mut self, site: &Arc<str>, ts_ms: i64, recv_ms: i64) -> Result<(), Rejection> {
        self.check_time(ts_ms, recv_ms)?;
        // The group's newest event time and progress.
        let before = self.newest.unwrap_or(ts_ms);
        let newest = before.max(ts_ms);
        self.newest = Some(newest);
        self.progress += (newest - before).min(self.rules.progress_step_ms());
        let idx = self.site_index(site, ts_ms);
        self.hear(idx, ts_ms, newest);
        self.advance_watermark();
        Ok(())
    }

    /// Refuses an event time too far ahead of its receive time, or older
    /// than the correction horizon allows.
    fn check_time(&self, ts_ms: i64, recv_ms: i64) -> Result<(), Rejection> {
        if ts_ms > recv_ms.saturating_add(self.rules.max_future_ms) {
            return Err(Rejection {
                reason: Reason::TimestampOutOfRange,
                detail: format!(
                    "`ts` {ts_ms} is {} s ahead of its receive time {recv_ms} (max_future_secs {})",
                    (ts_ms - recv_ms) / 1000,
                    self.rules.max_future_ms / 1000
                ),
            });
        }
        if let (Some(wm), Some(closed)) = (self.watermark, self.closed_before) {
            // `oldest` is a window start, so the window of `ts_ms` starts
            // before it exactly when `ts_ms` is before it.
            let oldest = closed - self.rules.correction_horizon_ms;
            if ts_ms < oldest {
                return Err(Rejection {
                    reason: Reason::TooLate,
                    detail: format!(
                        "`ts` {ts_ms} is beyond the correction horizon (watermark {wm}, windows before {oldest} can no longer be corrected)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The index of `site`, registered (heard now, not yet talking) on its
    /// first message.
    fn site_index(&mut self, site: &Arc<str>, ts_ms: i64) -> u32 {
        if let Some(i) = self.index.get(site) {
            return *i;
        }
        let i = self.sites.len() as u32;
        self.index.insert(site.clone(), i);
        self.names.push(site.clone());
        self.sites.push(SiteClock {
            newest: ts_ms,
            heard_at: self.progress,
            talking: false,
        });
        i
    }

    /// Site `idx` spoke with event time `ts_ms`, the group's newest being
    /// `newest`: it holds the watermark back from now on if it is in step
    /// with the group, measured as it speaks (a site that merely has not
    /// spoken since another one resumed first is not lagging, only quiet:
    /// the talking rule of [`Self::advance_watermark`] decides about it).
    fn hear(&mut self, idx: u32, ts_ms: i64, newest: i64) {
        let in_step_from = newest.saturating_sub(self.rules.max_lag_ms());
        let clock = &mut self.sites[idx as usize];
        let was = (clock.talking, clock.newest);
        clock.newest = clock.newest.max(ts_ms);
        clock.heard_at = self.progress;
        clock.talking = clock.newest >= in_step_from;
        if was != (clock.talking, clock.newest) {
            if was.0 {
                self.talking.remove(&(was.1, idx));
            }
            if clock.talking {
                self.talking.insert((clock.newest, idx));
            }
        }
    }

    /// The least site holding the watermark back sets it: sites silent for
    /// the idle timeout of progress stop talking as they come to the front.
    fn advance_watermark(&mut self) {
        let silent_before = self.progress - self.rules.idle_timeout_ms;
        while let Some(&(least, i)) = self.talking.first() {
            let clock = &mut self.sites[i as usize];
            if clock.heard_at <= silent_before {
                clock.talking = false;
                self.talking.pop_first();
                continue;
            }
            let wm = least - self.rules.allowed_lateness_ms;
            if self.watermark.is_none_or(|w| wm > w) {
                self.watermark = Some(wm);
                self.closed_before = Some(window_start(wm, self.rules.window_ms));
            }
            break;
        }
    }

    /// The event-time watermark, ms (`None` until the first message).
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// The newest event time admitted, ms.
    pub fn newest(&self) -> Option<i64> {
        self.newest
    }

    /// Sites that do not hold the watermark back (silent, or out of step
    /// with the group's event time when they last spoke), by name.
    pub fn stale_sites(&self) -> Vec<String> {
        let silent_before = self.progress - self.rules.idle_timeout_ms;
        let mut out: Vec<String> = self
            .sites
            .iter()
            .zip(&self.names)
            .filter(|(c, _)| !c.talking || c.heard_at <= silent_before)
            .map(|(_, s)| s.to_string())
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;
    const MIN: i64 = 60 * S;

    fn adm() -> Admission {
        adm_with_horizon(0)
    }

    fn adm_with_horizon(correction_horizon_ms: i64) -> Admission {
        Admission::new(AdmissionRules {
            window_ms: MIN,
            allowed_lateness_ms: 30 * S,
            idle_timeout_ms: MIN,
            max_future_ms: 5 * MIN,
            correction_horizon_ms,
        })
    }

    fn site(s: &str) -> Arc<str> {
        s.into()
    }

    #[test]
    fn watermark_follows_the_slowest_talking_site_and_skips_silent_ones() {
        let (a, b) = (site("a"), site("b"));
        let mut m = adm();
        m.admit(&a, 100 * S, 100 * S).unwrap();
        m.admit(&b, 150 * S, 150 * S).unwrap();
        assert_eq!(m.watermark(), Some(70 * S));
        m.admit(&b, 140 * S, 140 * S).unwrap(); // out of order, within lateness
        assert_eq!(m.watermark(), Some(70 * S));
        // a falls silent: once the group has moved on by the idle timeout
        // since a's last message, a no longer holds the watermark back.
        for t in (160..=220).step_by(10) {
            m.admit(&b, t * S, t * S).unwrap();
        }
        assert_eq!(m.watermark(), Some(190 * S));
        m.admit(&b, 400 * S, 400 * S).unwrap();
        assert_eq!(m.watermark(), Some(370 * S));
        assert_eq!(m.stale_sites(), vec!["a".to_string()]);
        // a comes back with data in a closed window: too late.
        assert_eq!(
            m.admit(&a, 250 * S, 250 * S).unwrap_err().reason,
            Reason::TooLate
        );
        // Same window as the watermark: still open.
        m.admit(&a, 361 * S, 361 * S).unwrap();
        // Far ahead of its receive time: refused even as the first
        // message, and nothing moves.
        let mut fresh = adm();
        assert_eq!(
            fresh.admit(&a, 10_000 * S, 400 * S).unwrap_err().reason,
            Reason::TimestampOutOfRange
        );
        assert_eq!(fresh.watermark(), None);
        // The watermark never goes back.
        assert_eq!(m.watermark(), Some(370 * S));
    }

    /// Issue #8 item 1: a plant-wide silence longer than `max_future_secs`
    /// used to refuse every later message ("ahead of the newest event
    /// time"), so no window closed again. Found by an independent check.
    #[test]
    fn a_silence_longer_than_max_future_never_latches() {
        let a = site("a");
        let mut m = adm();
        for t in (0..=600).step_by(10) {
            m.admit(&a, t * S, t * S).unwrap();
        }
        // Six minutes without a message, then every 10 s again.
        for t in (960..=1500).step_by(10) {
            m.admit(&a, t * S, t * S)
                .unwrap_or_else(|e| panic!("refused after the silence at {t} s: {e:?}"));
        }
        assert_eq!(m.watermark(), Some(1470 * S));
        // Two hours.
        m.admit(&a, 8700 * S, 8700 * S).unwrap();
        assert_eq!(m.watermark(), Some(8670 * S));
    }

    /// Issue #8 item 1: a source reporting once an hour (a water meter)
    /// used to be refused entirely with the default configuration.
    #[test]
    fn an_hourly_source_is_admitted() {
        let (meter, line) = (site("utilities"), site("fill"));
        let mut m = adm();
        for t in (0..4 * 3600).step_by(10) {
            if t % 3600 == 0 {
                m.admit(&meter, t * S, t * S)
                    .unwrap_or_else(|e| panic!("hourly reading at {t} s refused: {e:?}"));
            }
            m.admit(&line, t * S, t * S).unwrap();
        }
        assert_eq!(m.watermark(), Some((4 * 3600 - 10 - 30) * S));
    }

    /// Issue #8 item 2: a publisher sending a foreign site with timestamps
    /// 295 s ahead (allowed by `max_future_secs`) made a healthy site
    /// stale and closed its windows before its data came.
    #[test]
    fn a_site_with_a_clock_ahead_cannot_close_another_sites_windows() {
        let (healthy, foreign) = (site("lyon"), site("evil"));
        let mut m = adm();
        for t in (0..1800).step_by(10) {
            m.admit(&healthy, t * S, t * S).unwrap();
            m.admit(&foreign, (t + 295) * S, t * S).unwrap();
            // The watermark never passes the healthy site's own clock.
            assert!(
                m.watermark().is_some_and(|w| w <= (t - 30) * S),
                "at {t} s the watermark is {:?}",
                m.watermark()
            );
        }
        assert_eq!(m.watermark(), Some((1790 - 30) * S));
        assert!(m.stale_sites().is_empty(), "{:?}", m.stale_sites());
        // Also when the foreign site resumes first after a silence of both.
        m.admit(&foreign, (7200 + 295) * S, 7200 * S).unwrap();
        m.admit(&foreign, (7205 + 295) * S, 7205 * S).unwrap();
        assert_eq!(m.watermark(), Some((1790 - 30) * S));
        m.admit(&healthy, 7200 * S, 7200 * S).unwrap();
        assert_eq!(m.watermark(), Some((7200 - 30) * S));
    }

    /// A site that lags far behind (a slow clock, a backlog) delays only
    /// itself: the others' windows go on.
    #[test]
    fn a_lagging_site_does_not_hold_the_others_back() {
        let (on_time, slow) = (site("a"), site("b"));
        let mut m = adm_with_horizon(30 * MIN);
        for t in (1000..2000).step_by(10) {
            m.admit(&on_time, t * S, t * S).unwrap();
            // 20 minutes behind, talking all the time: admitted, late.
            m.admit(&slow, (t - 1200) * S, t * S).unwrap();
        }
        assert_eq!(m.watermark(), Some((1990 - 30) * S));
        assert_eq!(m.stale_sites(), vec!["b".to_string()]);
    }
}
