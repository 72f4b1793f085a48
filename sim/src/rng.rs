//! A small deterministic random number generator (SplitMix64).
//!
//! Every random stream of the simulator is derived from the seed and a fixed
//! path of numeric tags (plant, line, purpose), so adding or removing one
//! stream (e.g. the malformed messages under `clean`) never shifts another.

/// The SplitMix64 finaliser: a good 64-bit mixing function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A stream derived from `seed` and a path of tags.
    pub(crate) fn derive(seed: u64, path: &[u64]) -> Self {
        let mut h = mix(seed ^ 0x6374_6f77_6572_5f73); // "ctower_s"
        for p in path {
            h = mix(h ^ mix(p.wrapping_add(GOLDEN)));
        }
        Rng(h)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    pub(crate) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform integer in [lo, hi); `lo` when the range is empty.
    pub(crate) fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo) as u64;
        lo + (self.next_u64() % span) as i64
    }

    /// Uniform index in [0, n); 0 when `n` is 0.
    pub(crate) fn index(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Exponentially distributed with the given mean.
    pub(crate) fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// One step of a random walk kept inside [lo, hi] by reflection.
    pub(crate) fn walk(&mut self, x: f64, step: f64, lo: f64, hi: f64) -> f64 {
        let mut y = x + self.range(-step, step);
        if y < lo {
            y = 2.0 * lo - y;
        }
        if y > hi {
            y = 2.0 * hi - y;
        }
        y.clamp(lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::derive(42, &[1, 2]);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::derive(42, &[1, 2]);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::derive(42, &[1, 3]);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn ranges_hold() {
        let mut r = Rng::derive(7, &[]);
        let mut x = 0.5;
        for _ in 0..10_000 {
            let u = r.f64();
            assert!((0.0..1.0).contains(&u));
            let i = r.range_i64(5, 80);
            assert!((5..80).contains(&i));
            x = r.walk(x, 0.3, 0.2, 0.8);
            assert!((0.2..=0.8).contains(&x));
        }
        let mean = (0..20_000).map(|_| r.exp(3.0)).sum::<f64>() / 20_000.0;
        assert!((mean - 3.0).abs() < 0.15, "{mean}");
    }
}
