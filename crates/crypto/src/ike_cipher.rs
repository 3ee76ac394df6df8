//! Protection of the SK / SKF payload (RFC 7296 §3.14, RFC 5282 for AEAD).
use oxisec_wire::TransformId;

use crate::{CryptoError, Rng, Secret};

/// A negotiated IKE encryption (+ integrity) suite: which transforms and how
/// long their keys are. Built from the selected proposal before keys exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeSuite {
    pub encr: TransformId,
    /// Key length attribute in bits (AES), `None` for fixed-size ciphers.
    pub encr_key_bits: Option<u16>,
    /// `None` for AEAD ciphers.
    pub integ: Option<TransformId>,
}

impl IkeSuite {
    /// `Err(Unsupported)` if the combination is not implemented (or an AEAD is
    /// combined with an integrity transform, or a non-AEAD lacks one).
    pub fn validate(&self) -> Result<(), CryptoError> {
        todo!()
    }
    /// SK_e length in bytes (key + salt for AEAD).
    pub fn encr_key_len(&self) -> usize {
        todo!()
    }
    /// SK_a length in bytes (0 for AEAD).
    pub fn integ_key_len(&self) -> usize {
        todo!()
    }
}

/// Protects one direction of an IKE SA.
pub struct IkeCipher {
    // provider state
}

impl core::fmt::Debug for IkeCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("IkeCipher { .. }")
    }
}

impl IkeCipher {
    /// `encr_key` = SK_e (with salt for AEAD), `integ_key` = SK_a (empty for AEAD).
    pub fn new(
        suite: IkeSuite,
        encr_key: &Secret,
        integ_key: &Secret,
    ) -> Result<IkeCipher, CryptoError> {
        todo!()
    }

    /// Length of the SK body (IV ‖ ciphertext incl. padding and pad-length byte
    /// ‖ ICV) for `plaintext_len` bytes of inner payloads.
    pub fn body_len(&self, plaintext_len: usize) -> usize {
        todo!()
    }

    /// Encrypts `plaintext` into `msg[body_offset..]`, which must be exactly
    /// `body_len(plaintext.len())` long. `msg[..body_offset]` (IKE header and
    /// SK payload header, lengths already final) is the AEAD associated data;
    /// for encrypt-then-MAC suites the ICV covers `msg[..len - icv_len]`.
    pub fn seal(
        &self,
        rng: &mut dyn Rng,
        msg: &mut [u8],
        body_offset: usize,
        plaintext: &[u8],
    ) -> Result<(), CryptoError> {
        todo!()
    }

    /// Verifies and decrypts `msg[body_offset..]`; returns the inner payload
    /// bytes with the padding and pad-length byte removed.
    pub fn open(&self, msg: &[u8], body_offset: usize) -> Result<Secret, CryptoError> {
        todo!()
    }
}
