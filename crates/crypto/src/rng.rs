/// A source of randomness, injected into the IKE engine so that tests and the
/// simulator run deterministically. Production uses [`SystemRng`].
pub trait Rng: Send {
    fn fill(&mut self, dest: &mut [u8]);
}

/// The operating system's CSPRNG via aws-lc-rs.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRng;

impl Rng for SystemRng {
    fn fill(&mut self, dest: &mut [u8]) {
        todo!()
    }
}
