/// A source of randomness, injected into the IKE engine so that tests and the
/// simulator run deterministically. Production uses [`SystemRng`].
pub trait Rng: Send {
    fn fill(&mut self, dest: &mut [u8]);
}

/// The operating system's CSPRNG via aws-lc-rs.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRng;

impl Rng for SystemRng {
    /// # Panics
    /// If the operating system's random source fails. There is no safe way to
    /// continue: every nonce, SPI and key share would be predictable, so the
    /// process stops rather than returning bytes that are not random.
    fn fill(&mut self, dest: &mut [u8]) {
        aws_lc_rs::rand::fill(dest).expect("operating system random number generator failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_rng_fills() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        SystemRng.fill(&mut a);
        SystemRng.fill(&mut b);
        assert_ne!(a, [0u8; 32]);
        assert_ne!(a, b);
        SystemRng.fill(&mut []);
    }
}
