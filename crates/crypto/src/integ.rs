//! Integrity transforms (type 3) shared by IKE (SK payload) and ESP: a MAC
//! over the protected bytes, truncated to the ICV length.
//!
//! | transform | MAC | key | ICV | spec |
//! |---|---|---|---|---|
//! | AUTH_HMAC_SHA1_96 | HMAC-SHA-1 (aws-lc-rs) | 20 | 12 | RFC 2404 |
//! | AUTH_AES_XCBC_96 | AES-XCBC-MAC ([`crate::cbcmac`]) | 16 | 12 | RFC 3566 |
//! | AUTH_AES_CMAC_96 | AES-CMAC ([`crate::cbcmac`]) | 16 | 12 | RFC 4494 |
//! | AUTH_HMAC_SHA2_256_128 | HMAC-SHA-256 (aws-lc-rs) | 32 | 16 | RFC 4868 |
//! | AUTH_HMAC_SHA2_384_192 | HMAC-SHA-384 (aws-lc-rs) | 48 | 24 | RFC 4868 |
//! | AUTH_HMAC_SHA2_512_256 | HMAC-SHA-512 (aws-lc-rs) | 64 | 32 | RFC 4868 |
//!
//! Keying and MAC computation allocate nothing on the Rust heap, so the ESP
//! data path can use them per packet.
use aws_lc_rs::hmac;
use oxisec_wire::{TransformId, integ};
use subtle::ConstantTimeEq;

use crate::CryptoError;
use crate::cbcmac::{self, CbcMacCtx, CbcMacKey};

/// The largest ICV of any integrity transform (HMAC-SHA2-512-256).
pub(crate) const MAX_ICV_LEN: usize = 32;

/// A supported integrity algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Integ {
    HmacSha1_96,
    AesXcbc96,
    AesCmac96,
    HmacSha256_128,
    HmacSha384_192,
    HmacSha512_256,
}

impl Integ {
    /// `None` for transforms that are not implemented (and for INTEG NONE).
    pub(crate) fn from_id(id: TransformId) -> Option<Integ> {
        Some(match id {
            integ::HMAC_SHA1_96 => Integ::HmacSha1_96,
            integ::AES_XCBC_96 => Integ::AesXcbc96,
            integ::AES_CMAC_96 => Integ::AesCmac96,
            integ::HMAC_SHA2_256_128 => Integ::HmacSha256_128,
            integ::HMAC_SHA2_384_192 => Integ::HmacSha384_192,
            integ::HMAC_SHA2_512_256 => Integ::HmacSha512_256,
            _ => return None,
        })
    }

    /// Key length in bytes: the hash output for HMAC (RFC 2404 §3,
    /// RFC 4868 §2.1.1), 128 bits for the AES MACs (RFC 3566 §4, RFC 4494 §2).
    pub(crate) fn key_len(self) -> usize {
        match self {
            Integ::HmacSha1_96 => 20,
            Integ::AesXcbc96 | Integ::AesCmac96 => cbcmac::BLOCK,
            Integ::HmacSha256_128 => 32,
            Integ::HmacSha384_192 => 48,
            Integ::HmacSha512_256 => 64,
        }
    }

    /// ICV length in bytes: the MAC truncated to its leftmost bits.
    pub(crate) fn icv_len(self) -> usize {
        match self {
            Integ::HmacSha1_96 | Integ::AesXcbc96 | Integ::AesCmac96 => 12,
            Integ::HmacSha256_128 => 16,
            Integ::HmacSha384_192 => 24,
            Integ::HmacSha512_256 => 32,
        }
    }

    fn hmac_algorithm(self) -> Option<hmac::Algorithm> {
        match self {
            Integ::HmacSha1_96 => Some(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
            Integ::HmacSha256_128 => Some(hmac::HMAC_SHA256),
            Integ::HmacSha384_192 => Some(hmac::HMAC_SHA384),
            Integ::HmacSha512_256 => Some(hmac::HMAC_SHA512),
            Integ::AesXcbc96 | Integ::AesCmac96 => None,
        }
    }
}

// Held in the boxed per-SA key state, so the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Mac {
    Hmac(hmac::Key),
    CbcMac(CbcMacKey),
}

/// A keyed integrity transform. No mutable state: `Send + Sync`.
pub(crate) struct IntegKey {
    mac: Mac,
    icv_len: usize,
}

impl IntegKey {
    /// # Errors
    /// `InvalidKeyLength` unless `key` is exactly [`Integ::key_len`] long.
    pub(crate) fn new(alg: Integ, key: &[u8]) -> Result<IntegKey, CryptoError> {
        if key.len() != alg.key_len() {
            return Err(CryptoError::InvalidKeyLength);
        }
        let mac = match alg.hmac_algorithm() {
            Some(h) => Mac::Hmac(hmac::Key::new(h, key)),
            None => {
                let key: &[u8; cbcmac::BLOCK] =
                    key.try_into().map_err(|_| CryptoError::InvalidKeyLength)?;
                Mac::CbcMac(match alg {
                    Integ::AesXcbc96 => CbcMacKey::xcbc(key),
                    _ => CbcMacKey::cmac(key),
                })
            }
        };
        Ok(IntegKey {
            mac,
            icv_len: alg.icv_len(),
        })
    }

    pub(crate) fn icv_len(&self) -> usize {
        self.icv_len
    }

    pub(crate) fn start(&self) -> IntegCtx<'_> {
        IntegCtx {
            inner: match &self.mac {
                Mac::Hmac(k) => Ctx::Hmac(hmac::Context::with_key(k)),
                Mac::CbcMac(k) => Ctx::CbcMac(k.start()),
            },
            icv_len: self.icv_len,
        }
    }

    /// The ICV of the concatenation of `parts`, written to `out` (which must
    /// be [`IntegKey::icv_len`] long).
    pub(crate) fn icv(&self, parts: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        let mut ctx = self.start();
        for p in parts {
            ctx.update(p);
        }
        ctx.finish(out)
    }

    /// Recomputes the ICV of `parts` and compares it with `icv` in constant
    /// time.
    ///
    /// # Errors
    /// `IntegrityCheckFailed` on any mismatch, including a wrong length.
    pub(crate) fn verify(&self, parts: &[&[u8]], icv: &[u8]) -> Result<(), CryptoError> {
        if icv.len() != self.icv_len {
            return Err(CryptoError::IntegrityCheckFailed);
        }
        let mut expected = [0u8; MAX_ICV_LEN];
        let expected = &mut expected[..self.icv_len];
        self.icv(parts, expected)?;
        if bool::from(expected.ct_eq(icv)) {
            Ok(())
        } else {
            Err(CryptoError::IntegrityCheckFailed)
        }
    }
}

// On the stack for one ICV computation: boxing would allocate per packet.
#[allow(clippy::large_enum_variant)]
enum Ctx<'k> {
    Hmac(hmac::Context),
    CbcMac(CbcMacCtx<'k>),
}

/// One ICV computation in progress.
pub(crate) struct IntegCtx<'k> {
    inner: Ctx<'k>,
    icv_len: usize,
}

impl IntegCtx<'_> {
    pub(crate) fn update(&mut self, data: &[u8]) {
        match &mut self.inner {
            Ctx::Hmac(c) => c.update(data),
            Ctx::CbcMac(c) => c.update(data),
        }
    }

    /// Writes the truncated MAC into `out`.
    ///
    /// # Errors
    /// `Malformed` if `out` is not exactly the ICV length (a caller bug).
    pub(crate) fn finish(self, out: &mut [u8]) -> Result<(), CryptoError> {
        if out.len() != self.icv_len {
            return Err(CryptoError::Malformed);
        }
        match self.inner {
            Ctx::Hmac(c) => out.copy_from_slice(&c.sign().as_ref()[..self.icv_len]),
            Ctx::CbcMac(c) => out.copy_from_slice(&c.finish()[..self.icv_len]),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Integ; 6] = [
        Integ::HmacSha1_96,
        Integ::AesXcbc96,
        Integ::AesCmac96,
        Integ::HmacSha256_128,
        Integ::HmacSha384_192,
        Integ::HmacSha512_256,
    ];

    #[test]
    fn ids_and_sizes() {
        for (id, alg, key, icv) in [
            (integ::HMAC_SHA1_96, Integ::HmacSha1_96, 20, 12),
            (integ::AES_XCBC_96, Integ::AesXcbc96, 16, 12),
            (integ::AES_CMAC_96, Integ::AesCmac96, 16, 12),
            (integ::HMAC_SHA2_256_128, Integ::HmacSha256_128, 32, 16),
            (integ::HMAC_SHA2_384_192, Integ::HmacSha384_192, 48, 24),
            (integ::HMAC_SHA2_512_256, Integ::HmacSha512_256, 64, 32),
        ] {
            assert_eq!(Integ::from_id(id), Some(alg));
            assert_eq!((alg.key_len(), alg.icv_len()), (key, icv));
            assert!(icv <= MAX_ICV_LEN);
        }
        for id in [integ::NONE, integ::HMAC_MD5_96, TransformId(9999)] {
            assert_eq!(Integ::from_id(id), None);
        }
    }

    #[test]
    fn wrong_key_length_is_rejected() {
        for alg in ALL {
            assert_eq!(
                IntegKey::new(alg, &vec![1; alg.key_len() + 1]).err(),
                Some(CryptoError::InvalidKeyLength)
            );
            assert!(IntegKey::new(alg, &vec![1; alg.key_len()]).is_ok());
        }
    }

    #[test]
    fn verify_accepts_own_icv_and_rejects_changes() {
        for alg in ALL {
            let k = IntegKey::new(alg, &vec![7; alg.key_len()]).unwrap();
            let mut icv = vec![0; alg.icv_len()];
            k.icv(&[b"abc", b"def"], &mut icv).unwrap();
            k.verify(&[b"abcdef"], &icv).unwrap();
            assert!(k.verify(&[b"abcdeg"], &icv).is_err());
            let mut bad = icv.clone();
            bad[0] ^= 1;
            assert!(k.verify(&[b"abcdef"], &bad).is_err());
            assert!(k.verify(&[b"abcdef"], &icv[1..]).is_err());
            assert_eq!(
                k.icv(&[b"x"], &mut vec![0; alg.icv_len() + 1]),
                Err(CryptoError::Malformed)
            );
        }
    }
}
