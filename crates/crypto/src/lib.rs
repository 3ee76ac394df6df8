//! Cryptography for oxisec behind small, algorithm-agnostic types.
//!
//! One production provider (aws-lc-rs; MODP groups on crypto-bigint) sits
//! behind: [`Rng`] (injected randomness, so the engine stays deterministic in
//! tests), [`prf::Prf`], [`ke::KeyExchange`], [`ike_cipher::IkeCipher`] (SK
//! payload protection), [`esp_cipher::EspCipher`] (per-packet ESP protection)
//! and the pure key derivation functions of [`kdf`]. Algorithms are named by
//! their IKEv2 transform IDs from `oxisec-wire`. Every key lives in a
//! [`Secret`], which is zeroized on drop and never printed.
#![forbid(unsafe_code)]

mod aead_alg;
mod cbcmac;
mod encr;
pub mod esp_cipher;
pub mod hash;
pub mod ike_cipher;
mod integ;
pub mod kdf;
pub mod ke;
pub mod policy;
pub mod prf;
mod rng;
mod secret;
mod suite;

pub use rng::{Rng, SystemRng};
pub use secret::Secret;

/// Cryptographic failures. Deliberately coarse: callers log and drop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("algorithm not supported: {0}")]
    Unsupported(&'static str),
    #[error("invalid key length")]
    InvalidKeyLength,
    #[error("invalid public key from peer")]
    InvalidPublicKey,
    #[error("integrity check failed")]
    IntegrityCheckFailed,
    #[error("malformed ciphertext")]
    Malformed,
}
