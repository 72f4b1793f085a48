//! How the pipeline times its windows, so the dashboard can say why the
//! first KPIs take a while (a new user otherwise stares at an empty screen
//! and wonders whether anything works).

/// What decides when the pipeline's first KPIs appear: KPIs exist per
/// closed window, and a window closes only once the event-time watermark
/// (the newest event time less the allowed lateness) is past its end by the
/// lookahead. From the first message, the first window therefore closes
/// after at most a window, the allowed lateness and the lookahead of event
/// time ([`WindowTiming::first_kpi_within_ms`]).
///
/// Filled by the binary from the configuration and given to the dashboard
/// with [`crate::App::with_timing`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowTiming {
    /// Length of a KPI window, ms (`pipeline.window_secs`).
    pub window_ms: i64,
    /// How far the watermark trails the newest event time, ms: messages
    /// that late still count in their window (`pipeline.allowed_lateness_secs`).
    pub allowed_lateness_ms: i64,
    /// How far past a window's end the pipeline must see before closing
    /// it, ms: how a stop ends and the next counter reading decide the
    /// window's figures (`ctower_stream::AccumConfig::lookahead_ms`).
    pub lookahead_ms: i64,
    /// Event time per wall time when replaying a recording (the demo's
    /// speed factor); `None` live, where event time runs as the wall clock.
    pub replay_speed: Option<f64>,
}

impl WindowTiming {
    /// Event time, ms, from the first message to the first KPI at the latest.
    pub fn first_kpi_within_ms(&self) -> i64 {
        self.window_ms.max(0) + self.allowed_lateness_ms.max(0) + self.lookahead_ms.max(0)
    }

    /// [`Self::first_kpi_within_ms`] in wall time, ms, at the replay
    /// speed; `None` live or without a usable speed.
    pub fn first_kpi_within_wall_ms(&self) -> Option<i64> {
        let speed = self.replay_speed.filter(|s| s.is_finite() && *s > 0.0)?;
        Some((self.first_kpi_within_ms() as f64 / speed).round() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_kpi_after_a_window_the_lateness_and_the_lookahead() {
        let t = WindowTiming {
            window_ms: 60_000,
            allowed_lateness_ms: 30_000,
            lookahead_ms: 60_000,
            replay_speed: Some(10.0),
        };
        assert_eq!(t.first_kpi_within_ms(), 150_000);
        assert_eq!(t.first_kpi_within_wall_ms(), Some(15_000));
        let live = WindowTiming {
            replay_speed: None,
            ..t
        };
        assert_eq!(live.first_kpi_within_wall_ms(), None);
        let bad = WindowTiming {
            replay_speed: Some(0.0),
            ..t
        };
        assert_eq!(bad.first_kpi_within_wall_ms(), None);
    }
}
