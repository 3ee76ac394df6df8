//! Per-packet ESP protection (RFC 4303, RFC 4106 GCM, RFC 7634 ChaCha20-Poly1305,
//! RFC 3602 AES-CBC with RFC 4868 HMAC-SHA-256-128).
//!
//! Works on a whole ESP packet in place:
//! `SPI(4) ‖ Seq(4) ‖ IV(iv_len) ‖ payload (already padded, with pad length and
//! next header) ‖ ICV(icv_len)`.
use oxisec_wire::TransformId;

use crate::{CryptoError, Secret};

/// A negotiated ESP suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspSuite {
    pub encr: TransformId,
    pub encr_key_bits: Option<u16>,
    /// `None` for AEAD ciphers.
    pub integ: Option<TransformId>,
    /// Extended sequence numbers negotiated.
    pub esn: bool,
}

impl EspSuite {
    pub fn validate(&self) -> Result<(), CryptoError> {
        todo!()
    }
    /// Bytes of KEYMAT per direction: encryption key (+ salt for AEAD) then
    /// integrity key (RFC 7296 §2.17 order).
    pub fn keymat_len(&self) -> usize {
        todo!()
    }
    pub fn iv_len(&self) -> usize {
        todo!()
    }
    pub fn icv_len(&self) -> usize {
        todo!()
    }
    /// The payload (plaintext incl. trailer) must be a multiple of this (4 for
    /// AEAD ciphers, 16 for AES-CBC).
    pub fn block_align(&self) -> usize {
        todo!()
    }
}

/// One direction of an ESP SA's keys, ready to use. `Send + Sync`: the data
/// plane shares it between threads; it holds no mutable state.
pub struct EspCipher {
    // provider state
}

impl core::fmt::Debug for EspCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("EspCipher { .. }")
    }
}

impl EspCipher {
    /// `keymat` is this direction's slice of KEYMAT (`suite.keymat_len()` bytes).
    pub fn new(suite: EspSuite, keymat: &Secret) -> Result<EspCipher, CryptoError> {
        todo!()
    }
    pub fn suite(&self) -> EspSuite {
        todo!()
    }
    /// Fills the IV, encrypts the payload and writes the ICV, in place.
    /// `seq` is the full 64-bit sequence number (the low 32 bits are already in
    /// the header; the high 32 enter the ICV/AAD when ESN is on). AEAD IVs are
    /// derived from `seq` (unique per key); CBC IVs are random.
    pub fn seal(&self, seq: u64, packet: &mut [u8]) -> Result<(), CryptoError> {
        todo!()
    }
    /// Verifies the ICV and decrypts the payload in place. `seq` is the full
    /// sequence number as reconstructed by the replay window.
    pub fn open(&self, seq: u64, packet: &mut [u8]) -> Result<(), CryptoError> {
        todo!()
    }
}
