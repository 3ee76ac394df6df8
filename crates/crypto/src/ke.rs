//! Key exchange methods (transform type 4): Curve25519, ECP-256/384 (RFC 5903
//! encoding: x ‖ y without the 0x04 prefix, shared secret = x), MODP 2048/3072
//! (RFC 3526, public values and secret left-padded to the prime length).
use oxisec_wire::TransformId;

use crate::{CryptoError, Rng, Secret};

/// One side's ephemeral key share. The private part is zeroized on drop.
pub trait KeyExchange: Send + core::fmt::Debug {
    fn group(&self) -> TransformId;
    /// The public value as carried in the KE payload.
    fn public_key(&self) -> &[u8];
    /// The shared secret g^ir. Rejects malformed or degenerate peer values
    /// (wrong length, point not on curve, 0/1/p-1 for MODP, all-zero X25519 output).
    fn shared_secret(&self, peer_public: &[u8]) -> Result<Secret, CryptoError>;
}

/// Whether `group` is implemented.
pub fn is_supported(group: TransformId) -> bool {
    todo!()
}

/// Creates a key share for `group`, drawing the private key from `rng` (so a
/// seeded RNG gives reproducible shares).
pub fn generate(
    group: TransformId,
    rng: &mut dyn Rng,
) -> Result<Box<dyn KeyExchange>, CryptoError> {
    todo!()
}
