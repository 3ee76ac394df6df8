//! Pseudorandom functions (transform type 2) and prf+ (RFC 7296 §2.13).
//!
//! | transform | function | output | preferred key | spec |
//! |---|---|---|---|---|
//! | PRF_HMAC_SHA1 | HMAC-SHA-1 (aws-lc-rs) | 20 | 20 | RFC 2104, RFC 7296 |
//! | PRF_HMAC_SHA2_256 / 384 / 512 | HMAC-SHA-2 (aws-lc-rs) | 32 / 48 / 64 | same | RFC 4868 |
//! | PRF_AES128_XCBC | AES-XCBC-PRF-128 | 16 | 16 | RFC 4434 |
//! | PRF_AES128_CMAC | AES-CMAC-PRF-128 | 16 | 16 | RFC 4615 |
//!
//! Every PRF here accepts keys of any length: HMAC by RFC 2104, the AES PRFs
//! by the key rules of RFC 4434 §2 and RFC 4615 §3. The AES PRFs still have
//! a fixed preferred key size, which matters for SKEYSEED (see
//! [`Prf::fixed_key_len`] and [`crate::kdf::skeyseed`]).
use aws_lc_rs::hmac;
use oxisec_wire::{TransformId, prf};
use zeroize::Zeroize;

use crate::Secret;
use crate::cbcmac::{self, CbcMacCtx, CbcMacKey};

/// A negotiated PRF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prf {
    /// Legacy (RFC 8247 §2.2: MUST-), for old peers only.
    HmacSha1,
    HmacSha256,
    HmacSha384,
    HmacSha512,
    /// AES-XCBC-PRF-128 (RFC 4434).
    Aes128Xcbc,
    /// AES-CMAC-PRF-128 (RFC 4615).
    Aes128Cmac,
}

/// prf+ counts its blocks in one octet (RFC 7296 §2.13), so it can produce at
/// most 255 blocks.
const MAX_PRF_PLUS_BLOCKS: usize = 255;
/// The longest PRF output (HMAC-SHA-512).
const MAX_OUTPUT: usize = 64;

/// A PRF with its key processed once, for the many blocks of prf+. Short-lived
/// and on the stack, like the context below.
#[allow(clippy::large_enum_variant)]
enum Keyed {
    Hmac(hmac::Key),
    CbcMac(CbcMacKey),
}

#[allow(clippy::large_enum_variant)]
enum Ctx<'k> {
    Hmac(hmac::Context),
    CbcMac(CbcMacCtx<'k>),
}

impl Keyed {
    fn start(&self) -> Ctx<'_> {
        match self {
            Keyed::Hmac(k) => Ctx::Hmac(hmac::Context::with_key(k)),
            Keyed::CbcMac(k) => Ctx::CbcMac(k.start()),
        }
    }
}

impl Ctx<'_> {
    fn update(&mut self, data: &[u8]) {
        match self {
            Ctx::Hmac(c) => c.update(data),
            Ctx::CbcMac(c) => c.update(data),
        }
    }
    /// Appends the output to `out`, which has room for it (never reallocates).
    fn finish_into(self, out: &mut Vec<u8>) {
        match self {
            Ctx::Hmac(c) => out.extend_from_slice(c.sign().as_ref()),
            Ctx::CbcMac(c) => {
                let mut tag = c.finish();
                out.extend_from_slice(&tag);
                tag.zeroize();
            }
        }
    }
}

/// The 128-bit key that RFC 4434 §2 (XCBC) or RFC 4615 §3 (CMAC) derives from
/// a key of any length.
fn aes_prf_key(prf: Prf, key: &[u8]) -> [u8; cbcmac::BLOCK] {
    if let Ok(k) = <[u8; cbcmac::BLOCK]>::try_from(key) {
        return k;
    }
    match prf {
        // RFC 4434 §2: a shorter key is padded with zeros on the right; a
        // longer one becomes AES-XCBC-PRF-128(0^128, key).
        Prf::Aes128Xcbc if key.len() < cbcmac::BLOCK => {
            let mut k = [0u8; cbcmac::BLOCK];
            k[..key.len()].copy_from_slice(key);
            k
        }
        Prf::Aes128Xcbc => CbcMacKey::xcbc(&[0; cbcmac::BLOCK]).mac(&[key]),
        // RFC 4615 §3: any key that is not 128 bits long, shorter or longer,
        // becomes AES-CMAC(0^128, key).
        _ => CbcMacKey::cmac(&[0; cbcmac::BLOCK]).mac(&[key]),
    }
}

impl Prf {
    /// The PRF for a transform ID, `None` if not implemented.
    pub fn from_id(id: TransformId) -> Option<Prf> {
        match id {
            prf::HMAC_SHA1 => Some(Prf::HmacSha1),
            prf::HMAC_SHA2_256 => Some(Prf::HmacSha256),
            prf::HMAC_SHA2_384 => Some(Prf::HmacSha384),
            prf::HMAC_SHA2_512 => Some(Prf::HmacSha512),
            prf::AES128_XCBC => Some(Prf::Aes128Xcbc),
            prf::AES128_CMAC => Some(Prf::Aes128Cmac),
            _ => None,
        }
    }
    pub fn id(self) -> TransformId {
        match self {
            Prf::HmacSha1 => prf::HMAC_SHA1,
            Prf::HmacSha256 => prf::HMAC_SHA2_256,
            Prf::HmacSha384 => prf::HMAC_SHA2_384,
            Prf::HmacSha512 => prf::HMAC_SHA2_512,
            Prf::Aes128Xcbc => prf::AES128_XCBC,
            Prf::Aes128Cmac => prf::AES128_CMAC,
        }
    }
    /// Output length in bytes; also the preferred key length (RFC 7296 §2.13:
    /// the hash output for HMAC; 128 bits for the AES PRFs, RFC 4434 §2 and
    /// RFC 4615 §3), hence the length of SK_d, SK_pi and SK_pr.
    pub fn output_len(self) -> usize {
        match self {
            Prf::HmacSha1 => 20,
            Prf::HmacSha256 => 32,
            Prf::HmacSha384 => 48,
            Prf::HmacSha512 => 64,
            Prf::Aes128Xcbc | Prf::Aes128Cmac => cbcmac::BLOCK,
        }
    }
    /// `Some(len)` for PRFs that take a fixed-length key, for which RFC 7296
    /// §2.14 builds the SKEYSEED key from half of each nonce. HMAC takes any
    /// length and gets `None`. RFC 4434 and RFC 4615 extend the AES PRFs to
    /// keys of any length, but the original AES-XCBC-PRF (RFC 3664) took a
    /// fixed 128-bit key and IKEv2 implementations keep that semantics for
    /// SKEYSEED: strongSwan (`keymat_v2.c`) keys both AES PRFs with the first
    /// 64 bits of each nonce. Doing the same is what interoperates.
    pub fn fixed_key_len(self) -> Option<usize> {
        match self {
            Prf::Aes128Xcbc | Prf::Aes128Cmac => Some(cbcmac::BLOCK),
            _ => None,
        }
    }
    /// The most bytes one prf+ invocation can produce (255 blocks).
    pub fn max_prf_plus_len(self) -> usize {
        MAX_PRF_PLUS_BLOCKS * self.output_len()
    }

    fn keyed(self, key: &[u8]) -> Keyed {
        let hmac = |alg| Keyed::Hmac(hmac::Key::new(alg, key));
        match self {
            Prf::HmacSha1 => hmac(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
            Prf::HmacSha256 => hmac(hmac::HMAC_SHA256),
            Prf::HmacSha384 => hmac(hmac::HMAC_SHA384),
            Prf::HmacSha512 => hmac(hmac::HMAC_SHA512),
            Prf::Aes128Xcbc | Prf::Aes128Cmac => {
                let mut k = aes_prf_key(self, key);
                let keyed = if self == Prf::Aes128Xcbc {
                    CbcMacKey::xcbc(&k)
                } else {
                    CbcMacKey::cmac(&k)
                };
                k.zeroize();
                Keyed::CbcMac(keyed)
            }
        }
    }

    /// prf(key, data) over the concatenation of `data` parts.
    ///
    /// Keys of any length are accepted (RFC 2104 for HMAC; RFC 4434 §2 and
    /// RFC 4615 §3 for the AES PRFs), which IKEv2 needs for the shared secret
    /// of PSK authentication and, with HMAC, for Ni | Nr.
    pub fn compute(self, key: &[u8], data: &[&[u8]]) -> Secret {
        let keyed = self.keyed(key);
        let mut ctx = keyed.start();
        for part in data {
            ctx.update(part);
        }
        let mut out = Vec::with_capacity(MAX_OUTPUT);
        ctx.finish_into(&mut out);
        Secret::new(out)
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
        let keyed = self.keyed(key);
        // Sized once so the buffer never reallocates and leaves key bytes behind.
        let mut out = Vec::with_capacity(blocks * block);
        for n in 1..=blocks {
            let mut ctx = keyed.start();
            if n > 1 {
                ctx.update(&out[out.len() - block..]);
            }
            for part in seed {
                ctx.update(part);
            }
            // `n` fits: blocks <= 255 was asserted above.
            ctx.update(&[n as u8]);
            ctx.finish_into(&mut out);
        }
        let mut out = Secret::new(out);
        out.split_to(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Prf; 6] = [
        Prf::HmacSha1,
        Prf::HmacSha256,
        Prf::HmacSha384,
        Prf::HmacSha512,
        Prf::Aes128Xcbc,
        Prf::Aes128Cmac,
    ];

    #[test]
    fn ids_round_trip() {
        for p in ALL {
            assert_eq!(Prf::from_id(p.id()), Some(p));
            assert_eq!(p.compute(b"k", &[b"d"]).len(), p.output_len());
        }
        assert_eq!(Prf::from_id(prf::HMAC_MD5), None);
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
    fn prf_plus_reaches_255_blocks_for_every_prf() {
        for p in ALL {
            let out = p.prf_plus(b"k", &[b"s"], p.max_prf_plus_len());
            assert_eq!(
                out.as_bytes(),
                naive_prf_plus(p, b"k", b"s", 255 * p.output_len())
            );
        }
    }

    #[test]
    fn aes_prfs_take_keys_of_any_length() {
        for p in [Prf::Aes128Xcbc, Prf::Aes128Cmac] {
            assert_eq!(p.fixed_key_len(), Some(16));
            let outs: Vec<Secret> = [0usize, 1, 15, 16, 17, 64]
                .iter()
                .map(|&n| p.compute(&vec![0x42; n], &[b"data"]))
                .collect();
            for (i, a) in outs.iter().enumerate() {
                assert_eq!(a.len(), 16);
                for b in &outs[i + 1..] {
                    assert_ne!(a, b, "{p:?}");
                }
            }
        }
        // RFC 4434 §2: a short XCBC key is zero-padded, so padding it by hand
        // changes nothing; RFC 4615 §3 hashes every non-16-byte CMAC key.
        let mut padded = vec![7u8; 10];
        padded.resize(16, 0);
        assert_eq!(
            Prf::Aes128Xcbc.compute(&[7; 10], &[b"x"]),
            Prf::Aes128Xcbc.compute(&padded, &[b"x"])
        );
        assert_ne!(
            Prf::Aes128Cmac.compute(&[7; 10], &[b"x"]),
            Prf::Aes128Cmac.compute(&padded, &[b"x"])
        );
        for p in [
            Prf::HmacSha1,
            Prf::HmacSha256,
            Prf::HmacSha384,
            Prf::HmacSha512,
        ] {
            assert_eq!(p.fixed_key_len(), None);
        }
    }

    #[test]
    #[should_panic(expected = "more than 255 blocks")]
    fn prf_plus_rejects_256_blocks() {
        let p = Prf::HmacSha256;
        p.prf_plus(b"k", &[b"s"], p.max_prf_plus_len() + 1);
    }
}
