//! Curve448 (group 32): X448 of RFC 7748 as IKEv2 uses it (RFC 8031), on
//! RustCrypto's `x448` crate (a constant-time Montgomery ladder from
//! `ed448-goldilocks`). aws-lc-rs does not offer X448.
//!
//! Public values and the shared secret are the 56-byte little-endian
//! u-coordinates of RFC 7748 §5. RFC 8031 §2.3 requires rejecting an all-zero
//! shared secret, which is what low-order peer points (u = 0, 1, p - 1 and
//! their non-canonical encodings) produce.
use oxisec_wire::{TransformId, ke};
use zeroize::Zeroizing;

use super::{KeyExchange, is_all_zero};
use crate::{CryptoError, Rng, Secret};

/// Bytes of a scalar, a public value and a shared secret.
pub(super) const LEN: usize = 56;

/// One side's X448 share; the scalar lives in a zeroizing [`Secret`].
pub(super) struct X448Share {
    scalar: Secret,
    public: [u8; LEN],
}

impl X448Share {
    pub(super) fn generate(rng: &mut dyn Rng) -> Result<Self, CryptoError> {
        // Every 56-byte string is a valid X448 private key: clamping
        // (RFC 7748 §5) happens inside the scalar multiplication.
        let mut scalar = Secret::new(vec![0u8; LEN]);
        rng.fill(scalar.as_mut_bytes());
        let public =
            ladder(&scalar, x448::X448_BASEPOINT_BYTES).ok_or(CryptoError::InvalidKeyLength)?;
        Ok(X448Share {
            scalar,
            public: *public,
        })
    }
}

/// X448(k, u); `None` if the crate refuses `u` as a low-order point.
fn ladder(scalar: &Secret, u: [u8; LEN]) -> Option<Zeroizing<[u8; LEN]>> {
    let mut k = Zeroizing::new([0u8; LEN]);
    k.copy_from_slice(scalar.as_bytes());
    // The crate takes the scalar by value, so one more copy of it lives on
    // the stack for the duration of the call; it is not ours to wipe.
    x448::x448(*k, u).map(Zeroizing::new)
}

impl core::fmt::Debug for X448Share {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("X448Share").finish_non_exhaustive()
    }
}

impl KeyExchange for X448Share {
    fn group(&self) -> TransformId {
        ke::CURVE448
    }
    fn public_key(&self) -> &[u8] {
        &self.public
    }
    fn shared_secret(&self, peer_public: &[u8]) -> Result<Secret, CryptoError> {
        let peer: [u8; LEN] = peer_public
            .try_into()
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let shared = ladder(&self.scalar, peer).ok_or(CryptoError::InvalidPublicKey)?;
        // The crate only recognises the canonical encodings of the low-order
        // points; the non-canonical ones (p, p + 1) end up here as zero.
        if is_all_zero(shared.as_slice()) {
            return Err(CryptoError::InvalidPublicKey);
        }
        Ok(Secret::from_slice(shared.as_slice()))
    }
}
