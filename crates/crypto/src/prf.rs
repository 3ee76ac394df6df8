//! Pseudorandom functions (transform type 2) and prf+ (RFC 7296 §2.13).
use aws_lc_rs::hmac;
use oxisec_wire::{TransformId, prf};

use crate::Secret;

/// A negotiated PRF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prf {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

/// prf+ counts its blocks in one octet (RFC 7296 §2.13), so it can produce at
/// most 255 blocks.
const MAX_PRF_PLUS_BLOCKS: usize = 255;

impl Prf {
    /// The PRF for a transform ID, `None` if not implemented.
    pub fn from_id(id: TransformId) -> Option<Prf> {
        match id {
            prf::HMAC_SHA2_256 => Some(Prf::HmacSha256),
            prf::HMAC_SHA2_384 => Some(Prf::HmacSha384),
            prf::HMAC_SHA2_512 => Some(Prf::HmacSha512),
            _ => None,
        }
    }
    pub fn id(self) -> TransformId {
        match self {
            Prf::HmacSha256 => prf::HMAC_SHA2_256,
            Prf::HmacSha384 => prf::HMAC_SHA2_384,
            Prf::HmacSha512 => prf::HMAC_SHA2_512,
        }
    }
    /// Output length in bytes; also the preferred key length (RFC 7296 §2.13).
    pub fn output_len(self) -> usize {
        match self {
            Prf::HmacSha256 => 32,
            Prf::HmacSha384 => 48,
            Prf::HmacSha512 => 64,
        }
    }
    /// The most bytes one prf+ invocation can produce (255 blocks).
    pub fn max_prf_plus_len(self) -> usize {
        MAX_PRF_PLUS_BLOCKS * self.output_len()
    }

    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Prf::HmacSha256 => hmac::HMAC_SHA256,
            Prf::HmacSha384 => hmac::HMAC_SHA384,
            Prf::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    /// prf(key, data) over the concatenation of `data` parts.
    ///
    /// HMAC accepts keys of any length (RFC 2104: longer keys are hashed,
    /// shorter ones padded), which is what IKEv2 needs for Ni | Nr as a key.
    pub fn compute(self, key: &[u8], data: &[&[u8]]) -> Secret {
        let key = hmac::Key::new(self.algorithm(), key);
        let mut ctx = hmac::Context::with_key(&key);
        for part in data {
            ctx.update(part);
        }
        Secret::from_slice(ctx.sign().as_ref())
    }

    /// prf+(key, seed) truncated to `len` bytes:
    /// T1 = prf(K, S | 0x01), Tn = prf(K, T(n-1) | S | n), output T1 | T2 | ...
    ///
    /// # Panics
    /// If `len` needs more than 255 blocks ([`Prf::max_prf_plus_len`]). The
    /// lengths come from the negotiated algorithms, never from the peer, and
    /// every IKEv2 use stays far below the limit; exceeding it is a bug in
    /// the caller.
    pub fn prf_plus(self, key: &[u8], seed: &[&[u8]], len: usize) -> Secret {
        let block = self.output_len();
        let blocks = len.div_ceil(block);
        assert!(
            blocks <= MAX_PRF_PLUS_BLOCKS,
            "prf+ asked for {len} bytes: more than 255 blocks of {block} bytes (RFC 7296 §2.13)"
        );
        let key = hmac::Key::new(self.algorithm(), key);
        // Sized once so the buffer never reallocates and leaves key bytes behind.
        let mut out = Vec::with_capacity(blocks * block);
        for n in 1..=blocks {
            let mut ctx = hmac::Context::with_key(&key);
            if n > 1 {
                ctx.update(&out[out.len() - block..]);
            }
            for part in seed {
                ctx.update(part);
            }
            // `n` fits: blocks <= 255 was asserted above.
            ctx.update(&[n as u8]);
            out.extend_from_slice(ctx.sign().as_ref());
        }
        let mut out = Secret::new(out);
        out.split_to(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Prf; 3] = [Prf::HmacSha256, Prf::HmacSha384, Prf::HmacSha512];

    #[test]
    fn ids_round_trip() {
        for p in ALL {
            assert_eq!(Prf::from_id(p.id()), Some(p));
            assert_eq!(p.compute(b"k", &[b"d"]).len(), p.output_len());
        }
        assert_eq!(Prf::from_id(prf::HMAC_SHA1), None);
        assert_eq!(Prf::from_id(prf::AES128_XCBC), None);
        assert_eq!(Prf::from_id(TransformId(9999)), None);
    }

    #[test]
    fn compute_concatenates_parts() {
        for p in ALL {
            assert_eq!(
                p.compute(b"key", &[b"ab", b"", b"cd"]),
                p.compute(b"key", &[b"abcd"])
            );
        }
    }

    /// prf+ written out the long way, block by block, per RFC 7296 §2.13.
    fn naive_prf_plus(p: Prf, key: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut t: Vec<u8> = Vec::new();
        let mut n = 1u8;
        while out.len() < len {
            let mut input = t.clone();
            input.extend_from_slice(seed);
            input.push(n);
            t = p.compute(key, &[&input]).as_bytes().to_vec();
            out.extend_from_slice(&t);
            n = n.wrapping_add(1);
        }
        out.truncate(len);
        out
    }

    #[test]
    fn prf_plus_matches_definition() {
        for p in ALL {
            let first = p.prf_plus(b"K", &[b"S"], p.output_len());
            assert_eq!(first, p.compute(b"K", &[b"S", &[1]]));
            for len in [
                0,
                1,
                p.output_len() - 1,
                p.output_len() + 1,
                3 * p.output_len(),
                200,
            ] {
                assert_eq!(
                    p.prf_plus(b"key", &[b"se", b"ed"], len).as_bytes(),
                    naive_prf_plus(p, b"key", b"seed", len).as_slice(),
                    "{p:?} {len}"
                );
            }
        }
    }

    #[test]
    fn prf_plus_reaches_255_blocks() {
        let p = Prf::HmacSha256;
        let out = p.prf_plus(b"k", &[b"s"], p.max_prf_plus_len());
        assert_eq!(out.len(), 255 * 32);
        assert_eq!(out.as_bytes(), naive_prf_plus(p, b"k", b"s", 255 * 32));
    }

    #[test]
    #[should_panic(expected = "more than 255 blocks")]
    fn prf_plus_rejects_256_blocks() {
        let p = Prf::HmacSha256;
        p.prf_plus(b"k", &[b"s"], p.max_prf_plus_len() + 1);
    }
}
