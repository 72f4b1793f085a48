//! Capped exponential back-off with jitter, shared by everything that
//! retries a remote party (MQTT sources, the InfluxDB writer): pure, no
//! clock, so tests see exact delays.

use std::time::Duration;

/// A delay starting at `first`, doubling to `max`; with jitter, each delay
/// is drawn uniformly between half and all of that (so clients cut off
/// together do not come back in step).
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    /// SplitMix64 state, when jittered.
    jitter: Option<u64>,
}

impl Backoff {
    /// Without jitter: exact delays.
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            next: first,
            jitter: None,
        }
    }

    /// With jitter drawn from `seed`: the same seed gives the same delays.
    pub fn jittered(first: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            jitter: Some(seed),
            ..Backoff::new(first, max)
        }
    }

    /// The next delay starts from `first` again (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        match self.jitter.as_mut() {
            None => d,
            Some(state) => {
                let half = d / 2;
                let spread = half.as_micros() as u64 + 1;
                half + Duration::from_micros(splitmix64(state) % spread)
            }
        }
    }
}

/// SplitMix64: a tiny, well-mixed generator, plenty for jitter.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A jitter seed that differs between clients (`index`) and runs.
pub fn jitter_seed(index: usize) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    now ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}
