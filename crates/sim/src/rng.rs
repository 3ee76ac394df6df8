//! The simulation's only source of randomness: SplitMix64, seeded.
//!
//! Statistical quality is ample for drawing losses, delays, keys and nonces
//! in tests, and the generator is a handful of lines with no dependency, so
//! a seed means the same run on every machine and every toolchain. Each
//! consumer (each engine, each link direction, a test's schedule) gets its
//! own stream from [`SimRng::fork`], so that adding a draw in one place does
//! not shift the numbers every other place sees.
use std::time::Duration;

/// A seeded SplitMix64 generator. Not for production keys: it is predictable
/// by design.
#[derive(Debug, Clone)]
pub struct SimRng {
    state: u64,
}

/// SplitMix64's output function, also used to derive stream seeds.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng { state: seed }
    }

    /// An independent stream for consumer `tag` (e.g. "link a->b").
    pub fn fork(seed: u64, tag: &str) -> SimRng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in tag.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        SimRng::new(mix(seed ^ mix(h)))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// A uniform float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (clamped to [0, 1]); draws nothing when `p`
    /// is 0, so a lossless link consumes no randomness.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// A uniform integer in [0, n); 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // The modulo bias is below 2^-40 for the ranges used here.
        self.next_u64() % n
    }

    /// A uniform duration in [lo, hi] at nanosecond resolution.
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo).as_nanos().min(u128::from(u64::MAX)) as u64;
        lo + Duration::from_nanos(self.below(span.saturating_add(1)))
    }
}

impl oxisec_crypto::Rng for SimRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_forks_differ() {
        let mut a = SimRng::fork(7, "x");
        let mut b = SimRng::fork(7, "x");
        let mut c = SimRng::fork(7, "y");
        let va: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let vb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let vc: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
    }

    #[test]
    fn chance_matches_its_probability() {
        let mut r = SimRng::new(1);
        let n = 100_000;
        let hits = (0..n).filter(|_| r.chance(0.1)).count();
        assert!((9_500..10_500).contains(&hits), "{hits}");
        assert!(!(0..1000).any(|_| r.chance(0.0)));
        assert!((0..1000).all(|_| r.chance(1.0)));
    }

    #[test]
    fn between_stays_in_bounds() {
        let mut r = SimRng::new(3);
        let (lo, hi) = (Duration::from_millis(10), Duration::from_millis(12));
        for _ in 0..1000 {
            let d = r.between(lo, hi);
            assert!(d >= lo && d <= hi);
        }
        assert_eq!(r.between(hi, lo), hi);
    }
}
