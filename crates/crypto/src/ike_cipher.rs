//! Protection of the SK / SKF payload (RFC 7296 §3.14; RFC 5282 for AEAD).
//!
//! Layout of the protected body (everything after the SK/SKF payload header):
//!
//! ```text
//! AEAD (RFC 5282, RFC 7634):      IV(8)  ‖ E(inner ‖ pad length 0)         ‖ ICV(8/12/16)
//! cipher + integrity (RFC 7296):  IV     ‖ E(inner ‖ padding ‖ pad length) ‖ ICV(truncated MAC)
//! ```
//!
//! For AEAD the associated data is the message up to the body (IKE header and
//! the SK/SKF payload header) and the nonce is salt ‖ IV (salt: the last 4
//! bytes of SK_e, 3 for CCM). Otherwise the ICV is the truncated MAC over the
//! whole message except the ICV itself (encrypt-then-MAC); it is checked
//! before anything is decrypted. The IV is 16 bytes for AES-CBC and 8 for
//! 3DES and AES-CTR (RFC 5930: counter block = nonce from SK_e ‖ IV ‖ 1); the
//! ciphertext is padded to the cipher block (none for AEAD and CTR, whose
//! block is one byte).
//!
//! The algorithms themselves live in private modules shared with ESP; see
//! [`IkeSuite`] for the transforms accepted.
use oxisec_wire::TransformId;

use crate::aead_alg::{self, AeadKey};
use crate::encr::{Encr, EncrKey};
use crate::integ::IntegKey;
use crate::suite::{self, Proto, Transform};
use crate::{CryptoError, Rng, Secret};

/// A negotiated IKE encryption (+ integrity) suite: which transforms and how
/// long their keys are. Built from the selected proposal before keys exist.
///
/// Implemented: ENCR_AES_GCM_8/12/16, ENCR_AES_CCM_8/12/16 (RFC 5282) and
/// ENCR_CHACHA20_POLY1305 (RFC 7634) without integrity; ENCR_AES_CBC,
/// ENCR_AES_CTR (RFC 5930) and ENCR_3DES with AUTH_HMAC_SHA2_256_128 /
/// 384_192 / 512_256, AUTH_AES_XCBC_96, AUTH_AES_CMAC_96 or
/// AUTH_HMAC_SHA1_96. AES needs the Key Length attribute (128/192/256);
/// ChaCha20-Poly1305 and 3DES must not carry one. ENCR_NULL is refused: the
/// SK payload is always encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeSuite {
    pub encr: TransformId,
    /// Key length attribute in bits (AES), `None` for fixed-size ciphers.
    pub encr_key_bits: Option<u16>,
    /// `None` for AEAD ciphers.
    pub integ: Option<TransformId>,
}

impl IkeSuite {
    fn resolve(&self) -> Result<Transform, CryptoError> {
        suite::resolve(Proto::Ike, self.encr, self.encr_key_bits, self.integ)
    }

    /// `Err(Unsupported)` if the combination is not implemented (or an AEAD is
    /// combined with an integrity transform, or a non-AEAD lacks one).
    pub fn validate(&self) -> Result<(), CryptoError> {
        self.resolve().map(|_| ())
    }
    /// SK_e length in bytes (key + salt for AEAD, key + nonce for AES-CTR);
    /// 0 for an invalid suite.
    pub fn encr_key_len(&self) -> usize {
        match self.resolve() {
            Ok(Transform::Aead(a)) => a.keymat_len(),
            Ok(Transform::Split { encr, .. }) => encr.key_len(),
            Err(_) => 0,
        }
    }
    /// SK_a length in bytes (0 for AEAD and for an invalid suite).
    pub fn integ_key_len(&self) -> usize {
        match self.resolve() {
            Ok(Transform::Split { integ, .. }) => integ.key_len(),
            _ => 0,
        }
    }
}

enum Inner {
    Aead(AeadKey),
    /// Boxed: AES key schedules plus MAC state make this variant several
    /// times larger than the AEAD one.
    Split(Box<SplitKeys>),
}

struct SplitKeys {
    alg: Encr,
    encr: EncrKey,
    integ: IntegKey,
}

/// Protects one direction of an IKE SA. Holds no mutable state, so it is
/// `Send + Sync`; its keys are wiped when it is dropped.
pub struct IkeCipher {
    inner: Inner,
}

impl core::fmt::Debug for IkeCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("IkeCipher { .. }")
    }
}

impl IkeCipher {
    /// `encr_key` = SK_e (with salt for AEAD), `integ_key` = SK_a (empty for AEAD).
    ///
    /// # Errors
    /// `Unsupported` for an invalid suite, `InvalidKeyLength` if a key is not
    /// exactly [`IkeSuite::encr_key_len`] / [`IkeSuite::integ_key_len`] long.
    /// A 3DES SK_e made of weak or repeated DES keys (probability about
    /// 2^-50) is refused with `Unsupported`.
    pub fn new(
        suite: IkeSuite,
        encr_key: &Secret,
        integ_key: &Secret,
    ) -> Result<IkeCipher, CryptoError> {
        let transform = suite.resolve()?;
        if encr_key.len() != suite.encr_key_len() || integ_key.len() != suite.integ_key_len() {
            return Err(CryptoError::InvalidKeyLength);
        }
        let inner = match transform {
            Transform::Aead(alg) => Inner::Aead(AeadKey::new(alg, encr_key.as_bytes())?),
            Transform::Split { encr, integ } => Inner::Split(Box::new(SplitKeys {
                alg: encr,
                encr: EncrKey::new(encr, encr_key.as_bytes())?,
                integ: IntegKey::new(integ, integ_key.as_bytes())?,
            })),
        };
        Ok(IkeCipher { inner })
    }

    /// Length of the SK body (IV ‖ ciphertext incl. padding and pad-length byte
    /// ‖ ICV) for `plaintext_len` bytes of inner payloads.
    pub fn body_len(&self, plaintext_len: usize) -> usize {
        match &self.inner {
            // No alignment needed for AEAD (RFC 5282 §3, RFC 7634 §3): no
            // padding, just the pad-length byte.
            Inner::Aead(key) => aead_alg::IV_LEN + plaintext_len + 1 + key.icv_len(),
            Inner::Split(keys) => {
                keys.alg.iv_len()
                    + (plaintext_len + 1).next_multiple_of(keys.alg.block_len())
                    + keys.integ.icv_len()
            }
        }
    }

    /// Encrypts `plaintext` into `msg[body_offset..]`, which must be exactly
    /// `body_len(plaintext.len())` long. `msg[..body_offset]` (IKE header and
    /// SK payload header, lengths already final) is the AEAD associated data;
    /// for encrypt-then-MAC suites the ICV covers `msg[..len - icv_len]`.
    ///
    /// The IV is drawn from `rng`: random IVs stay unique per key even if the
    /// same keys were ever loaded into two `IkeCipher`s, which a counter would
    /// not (64-bit AEAD and CTR IVs collide with probability below 2^-30 after
    /// 2^16 messages, far more than an IKE SA carries).
    ///
    /// # Errors
    /// `Malformed` if `msg` is not laid out as above (a caller bug).
    pub fn seal(
        &self,
        rng: &mut dyn Rng,
        msg: &mut [u8],
        body_offset: usize,
        plaintext: &[u8],
    ) -> Result<(), CryptoError> {
        if body_offset > msg.len() || msg.len() - body_offset != self.body_len(plaintext.len()) {
            return Err(CryptoError::Malformed);
        }
        match &self.inner {
            Inner::Aead(key) => {
                let (aad, body) = msg.split_at_mut(body_offset);
                let (iv, rest) = body.split_at_mut(aead_alg::IV_LEN);
                let (ct, icv) = rest.split_at_mut(plaintext.len() + 1);
                rng.fill(iv);
                ct[..plaintext.len()].copy_from_slice(plaintext);
                ct[plaintext.len()] = 0; // pad length
                key.seal(iv, aad, ct, icv)?;
            }
            Inner::Split(keys) => {
                let icv_len = keys.integ.icv_len();
                let mac_end = msg.len() - icv_len;
                let (iv, ct) = msg[body_offset..mac_end].split_at_mut(keys.alg.iv_len());
                rng.fill(iv);
                let pad_len = ct.len() - plaintext.len() - 1;
                ct[..plaintext.len()].copy_from_slice(plaintext);
                ct[plaintext.len()..plaintext.len() + pad_len].fill(0);
                // pad_len < block (at most 16) by construction of body_len.
                ct[ct.len() - 1] = u8::try_from(pad_len).map_err(|_| CryptoError::Malformed)?;
                keys.encr.encrypt(iv, ct)?;
                let (covered, icv) = msg.split_at_mut(mac_end);
                keys.integ.icv(&[covered], icv)?;
            }
        }
        Ok(())
    }

    /// Verifies and decrypts `msg[body_offset..]`; returns the inner payload
    /// bytes with the padding and pad-length byte removed.
    ///
    /// # Errors
    /// `Malformed` for a body too short or not block-aligned, or a pad length
    /// longer than the plaintext; `IntegrityCheckFailed` if the ICV does not
    /// verify. Any input is handled without panicking.
    pub fn open(&self, msg: &[u8], body_offset: usize) -> Result<Secret, CryptoError> {
        let body = msg.get(body_offset..).ok_or(CryptoError::Malformed)?;
        let mut plain = match &self.inner {
            Inner::Aead(key) => {
                let icv_len = key.icv_len();
                // At least the pad-length byte must be there.
                if body.len() < aead_alg::IV_LEN + 1 + icv_len {
                    return Err(CryptoError::Malformed);
                }
                let (iv, rest) = body.split_at(aead_alg::IV_LEN);
                let (ct, icv) = rest.split_at(rest.len() - icv_len);
                let mut out = Secret::from_slice(ct);
                key.open(iv, &msg[..body_offset], out.as_mut_bytes(), icv)?;
                out
            }
            Inner::Split(keys) => {
                let (iv_len, block) = (keys.alg.iv_len(), keys.alg.block_len());
                let icv_len = keys.integ.icv_len();
                // At least one block, which ends in the pad-length byte.
                if body.len() < iv_len + block + icv_len
                    || !(body.len() - iv_len - icv_len).is_multiple_of(block)
                {
                    return Err(CryptoError::Malformed);
                }
                let (covered, icv) = msg.split_at(msg.len() - icv_len);
                keys.integ.verify(&[covered], icv)?;
                let (iv, ct) = covered[body_offset..].split_at(iv_len);
                let mut out = Secret::from_slice(ct);
                keys.encr.decrypt(iv, out.as_mut_bytes())?;
                out
            }
        };
        // RFC 7296 §3.14: the last byte counts the padding before it.
        let Some(&pad_len) = plain.as_bytes().last() else {
            return Err(CryptoError::Malformed);
        };
        let pad_len = usize::from(pad_len);
        if pad_len + 1 > plain.len() {
            return Err(CryptoError::Malformed);
        }
        let inner_len = plain.len() - pad_len - 1;
        Ok(plain.split_to(inner_len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::cipher::{self, EncryptingKey, EncryptionContext, UnboundCipherKey};
    use aws_lc_rs::{aead, hmac, iv::FixedLength};
    use oxisec_wire::{encr, integ};

    struct Counter(u8);
    impl Rng for Counter {
        fn fill(&mut self, dest: &mut [u8]) {
            for b in dest {
                self.0 = self.0.wrapping_add(37);
                *b = self.0;
            }
        }
    }

    const INTEGS: [TransformId; 6] = [
        integ::HMAC_SHA2_256_128,
        integ::HMAC_SHA2_384_192,
        integ::HMAC_SHA2_512_256,
        integ::AES_XCBC_96,
        integ::AES_CMAC_96,
        integ::HMAC_SHA1_96,
    ];

    fn aead(e: TransformId, bits: Option<u16>) -> IkeSuite {
        IkeSuite {
            encr: e,
            encr_key_bits: bits,
            integ: None,
        }
    }

    fn split(e: TransformId, bits: Option<u16>, i: TransformId) -> IkeSuite {
        IkeSuite {
            encr: e,
            encr_key_bits: bits,
            integ: Some(i),
        }
    }

    /// Every implemented suite.
    fn suites() -> Vec<IkeSuite> {
        let mut v = Vec::new();
        for bits in [128, 192, 256] {
            for e in [
                encr::AES_GCM_16,
                encr::AES_GCM_12,
                encr::AES_GCM_8,
                encr::AES_CCM_16,
                encr::AES_CCM_12,
                encr::AES_CCM_8,
            ] {
                v.push(aead(e, Some(bits)));
            }
            for i in INTEGS {
                v.push(split(encr::AES_CBC, Some(bits), i));
                v.push(split(encr::AES_CTR, Some(bits), i));
            }
        }
        for i in INTEGS {
            v.push(split(encr::TRIPLE_DES, None, i));
        }
        v.push(aead(encr::CHACHA20_POLY1305, None));
        v
    }

    fn cipher(suite: IkeSuite) -> IkeCipher {
        let ek = Secret::new((0..suite.encr_key_len() as u8).collect());
        let ik = Secret::new((100..100 + suite.integ_key_len() as u8).collect());
        IkeCipher::new(suite, &ek, &ik).unwrap()
    }

    #[test]
    fn cipher_and_keys_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<IkeCipher>();
        assert_send_sync::<Secret>();
    }

    #[test]
    fn key_lengths() {
        let lens = |s: IkeSuite| (s.encr_key_len(), s.integ_key_len());
        assert_eq!(lens(aead(encr::AES_GCM_16, Some(128))), (20, 0));
        assert_eq!(lens(aead(encr::AES_GCM_16, Some(256))), (36, 0));
        assert_eq!(lens(aead(encr::AES_GCM_8, Some(192))), (28, 0));
        // RFC 5282 §4: a 3-byte salt for CCM.
        assert_eq!(lens(aead(encr::AES_CCM_8, Some(128))), (19, 0));
        assert_eq!(lens(aead(encr::AES_CCM_16, Some(256))), (35, 0));
        let cbc = split(encr::AES_CBC, Some(192), integ::HMAC_SHA2_384_192);
        assert_eq!(lens(cbc), (24, 48));
        // RFC 5930 / RFC 3686 §5.1: key ‖ 4-byte nonce.
        assert_eq!(
            lens(split(encr::AES_CTR, Some(128), integ::AES_XCBC_96)),
            (20, 16)
        );
        assert_eq!(
            lens(split(encr::AES_CTR, Some(256), integ::AES_CMAC_96)),
            (36, 16)
        );
        assert_eq!(
            lens(split(encr::TRIPLE_DES, None, integ::HMAC_SHA1_96)),
            (24, 20)
        );
        let chacha = IkeSuite {
            encr: encr::CHACHA20_POLY1305,
            encr_key_bits: None,
            integ: Some(integ::NONE),
        };
        assert_eq!(lens(chacha), (36, 0));
    }

    #[test]
    fn rejects_invalid_suites() {
        let bad = [
            (encr::AES_GCM_16, Some(256), Some(integ::HMAC_SHA2_256_128)),
            (encr::AES_GCM_16, None, None),
            (encr::AES_GCM_16, Some(512), None),
            (encr::AES_GCM_8, Some(64), None),
            (encr::AES_CCM_12, Some(128), Some(integ::AES_XCBC_96)),
            (encr::AES_CCM_8, None, None),
            (encr::CHACHA20_POLY1305, Some(256), None),
            (
                encr::CHACHA20_POLY1305,
                None,
                Some(integ::HMAC_SHA2_256_128),
            ),
            (encr::AES_CBC, Some(128), None),
            (encr::AES_CBC, Some(128), Some(integ::NONE)),
            (encr::AES_CBC, Some(128), Some(integ::HMAC_MD5_96)),
            (encr::AES_CBC, None, Some(integ::HMAC_SHA2_256_128)),
            (encr::AES_CTR, None, Some(integ::HMAC_SHA2_256_128)),
            (encr::AES_CTR, Some(128), None),
            (encr::TRIPLE_DES, Some(192), Some(integ::HMAC_SHA2_256_128)),
            (encr::TRIPLE_DES, None, None),
            (encr::DES, None, Some(integ::HMAC_SHA2_256_128)),
            // RFC 7296 §3.14: IKE always encrypts.
            (encr::NULL, None, Some(integ::HMAC_SHA2_256_128)),
            (encr::NULL_AUTH_AES_GMAC, Some(128), None),
        ];
        for (e, bits, i) in bad {
            let suite = IkeSuite {
                encr: e,
                encr_key_bits: bits,
                integ: i,
            };
            assert!(
                matches!(suite.validate(), Err(CryptoError::Unsupported(_))),
                "{suite:?}"
            );
            assert_eq!(suite.encr_key_len(), 0);
            assert_eq!(suite.integ_key_len(), 0);
            assert!(IkeCipher::new(suite, &Secret::default(), &Secret::default()).is_err());
        }
        for suite in suites() {
            suite.validate().unwrap();
        }
    }

    #[test]
    fn rejects_wrong_key_lengths() {
        for suite in suites() {
            let ek = Secret::new((0..suite.encr_key_len() as u8).collect());
            let ik = Secret::new(vec![2; suite.integ_key_len()]);
            let short = Secret::new(vec![1; suite.encr_key_len() - 1]);
            let long_i = Secret::new(vec![2; suite.integ_key_len() + 1]);
            assert_eq!(
                IkeCipher::new(suite, &short, &ik).err(),
                Some(CryptoError::InvalidKeyLength)
            );
            assert_eq!(
                IkeCipher::new(suite, &ek, &long_i).err(),
                Some(CryptoError::InvalidKeyLength)
            );
        }
    }

    #[test]
    fn body_len_is_aligned() {
        for suite in suites() {
            let c = cipher(suite);
            let (iv, block, icv) = match suite.resolve().unwrap() {
                Transform::Aead(a) => (8, 1, a.icv_len()),
                Transform::Split { encr, integ } => {
                    (encr.iv_len(), encr.block_len(), integ.icv_len())
                }
            };
            for n in 0..70 {
                let len = c.body_len(n);
                let ct = len - iv - icv;
                assert_eq!(ct % block, 0, "{suite:?}");
                assert!(ct > n);
                assert!(ct <= n + block.max(1));
                if block == 1 {
                    assert_eq!(ct, n + 1, "no padding for AEAD and CTR");
                }
            }
        }
    }

    fn sealed(c: &IkeCipher, rng: &mut dyn Rng, header: &[u8], pt: &[u8]) -> Vec<u8> {
        let mut msg = header.to_vec();
        msg.resize(header.len() + c.body_len(pt.len()), 0);
        c.seal(rng, &mut msg, header.len(), pt).unwrap();
        msg
    }

    #[test]
    fn round_trip_every_suite_and_length() {
        let mut rng = Counter(0);
        let header: Vec<u8> = (0..32).collect();
        for suite in suites() {
            let c = cipher(suite);
            for n in [0, 1, 15, 16, 17, 31, 32, 100, 1000] {
                let pt: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
                let msg = sealed(&c, &mut rng, &header, &pt);
                assert_eq!(&msg[..32], &header[..], "AAD left alone");
                assert_ne!(&msg[32..], &pt[..]);
                let opened = c.open(&msg, 32).unwrap();
                assert_eq!(opened.as_bytes(), &pt[..], "{suite:?} {n}");
            }
        }
    }

    #[test]
    fn every_tampered_byte_fails_the_integrity_check() {
        let mut rng = Counter(1);
        let header = [0x55u8; 32];
        for suite in suites() {
            let c = cipher(suite);
            let msg = sealed(&c, &mut rng, &header, b"inner payloads, 29 bytes long");
            for i in 0..msg.len() {
                let mut bad = msg.clone();
                bad[i] ^= 0x01;
                assert_eq!(
                    c.open(&bad, 32).err(),
                    Some(CryptoError::IntegrityCheckFailed),
                    "{suite:?} byte {i}"
                );
            }
        }
    }

    #[test]
    fn truncated_or_misplaced_input_is_an_error() {
        let mut rng = Counter(2);
        let header = [0u8; 32];
        for suite in suites() {
            let c = cipher(suite);
            let msg = sealed(&c, &mut rng, &header, b"hello");
            for len in 0..msg.len() {
                assert!(c.open(&msg[..len], 32).is_err(), "{suite:?} {len}");
            }
            assert!(c.open(&msg, msg.len() + 1).is_err());
            assert!(c.open(&msg, msg.len()).is_err());
            assert!(c.open(&msg, 31).is_err());
            assert!(c.open(&msg, 33).is_err());
        }
    }

    #[test]
    fn directions_do_not_open_each_other() {
        for suite in suites() {
            let a = cipher(suite);
            let b = IkeCipher::new(
                suite,
                &Secret::new((0..suite.encr_key_len() as u8).map(|b| b ^ 0x99).collect()),
                &Secret::new(vec![8; suite.integ_key_len()]),
            )
            .unwrap();
            let msg = sealed(&a, &mut Counter(3), &[1; 28], b"x");
            assert_eq!(
                b.open(&msg, 28).err(),
                Some(CryptoError::IntegrityCheckFailed),
                "{suite:?}"
            );
        }
    }

    #[test]
    fn seal_checks_the_layout() {
        let mut rng = Counter(4);
        for suite in suites() {
            let c = cipher(suite);
            let need = c.body_len(10);
            for len in [need - 1, need + 1] {
                let mut msg = vec![0u8; 8 + len];
                assert_eq!(
                    c.seal(&mut rng, &mut msg, 8, &[0; 10]),
                    Err(CryptoError::Malformed)
                );
            }
            let mut msg = vec![0u8; 4];
            assert_eq!(
                c.seal(&mut rng, &mut msg, 8, &[]),
                Err(CryptoError::Malformed)
            );
        }
    }

    /// Builds a CBC message whose MAC is valid but whose decrypted pad length
    /// is impossible, to reach the padding check.
    #[test]
    fn cbc_bad_pad_length_is_malformed() {
        let suite = split(encr::AES_CBC, Some(128), integ::HMAC_SHA2_256_128);
        let ek = Secret::new(vec![3; 16]);
        let ik = Secret::new(vec![4; 32]);
        let c = IkeCipher::new(suite, &ek, &ik).unwrap();
        let mut block = [0u8; 16];
        block[15] = 16; // claims 16 bytes of padding in a 16-byte plaintext
        let enc =
            EncryptingKey::cbc(UnboundCipherKey::new(&cipher::AES_128, &[3; 16]).unwrap()).unwrap();
        let iv = [7u8; 16];
        enc.less_safe_encrypt(&mut block, EncryptionContext::Iv128(FixedLength::from(iv)))
            .unwrap();
        let mut msg = vec![0u8; 4];
        msg.extend_from_slice(&iv);
        msg.extend_from_slice(&block);
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[4; 32]), &msg);
        msg.extend_from_slice(&tag.as_ref()[..16]);
        assert_eq!(c.open(&msg, 4).err(), Some(CryptoError::Malformed));
        // With pad length 15 the same message is fine and empty.
        let mut block = [0u8; 16];
        block[15] = 15;
        enc.less_safe_encrypt(&mut block, EncryptionContext::Iv128(FixedLength::from(iv)))
            .unwrap();
        let mut msg = vec![0u8; 4];
        msg.extend_from_slice(&iv);
        msg.extend_from_slice(&block);
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[4; 32]), &msg);
        msg.extend_from_slice(&tag.as_ref()[..16]);
        assert!(c.open(&msg, 4).unwrap().is_empty());
    }

    #[test]
    fn aead_bad_pad_length_is_malformed() {
        let suite = aead(encr::CHACHA20_POLY1305, None);
        let c = cipher(suite);
        let mut msg = vec![0u8; 4];
        msg.resize(4 + c.body_len(0), 0);
        c.seal(&mut Counter(5), &mut msg, 4, &[]).unwrap();
        assert!(c.open(&msg, 4).unwrap().is_empty());
        // Seal, with the same key, a one-byte plaintext whose last byte (the
        // pad length) claims one byte of padding before it.
        let key = aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &(0..32).collect::<Vec<u8>>()).unwrap(),
        );
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&[32, 33, 34, 35]);
        let mut ct = [1u8];
        let tag = key
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(&[0u8; 4]),
                &mut ct,
            )
            .unwrap();
        let mut msg = vec![0u8; 4];
        msg.extend_from_slice(&[0u8; 8]);
        msg.extend_from_slice(&ct);
        msg.extend_from_slice(tag.as_ref());
        assert_eq!(c.open(&msg, 4).err(), Some(CryptoError::Malformed));
    }

    /// The AES-CTR SK payload is IV ‖ E(inner ‖ pad length 0) ‖ ICV with the
    /// RFC 5930 counter block: checked by decrypting with aws-lc-rs directly.
    #[test]
    fn ctr_layout_matches_rfc5930() {
        let suite = split(encr::AES_CTR, Some(128), integ::HMAC_SHA2_256_128);
        let c = cipher(suite);
        let msg = sealed(&c, &mut Counter(6), &[0xee; 28], b"inner");
        let body = &msg[28..];
        assert_eq!(body.len(), 8 + 5 + 1 + 16);
        let mut block = [0u8; 16];
        block[..4].copy_from_slice(&[16, 17, 18, 19]); // SK_e = 0..16 ‖ nonce 16..20
        block[4..12].copy_from_slice(&body[..8]);
        block[15] = 1;
        let ctr = EncryptingKey::ctr(
            UnboundCipherKey::new(&cipher::AES_128, &(0..16).collect::<Vec<u8>>()).unwrap(),
        )
        .unwrap();
        let mut pt = body[8..14].to_vec();
        ctr.less_safe_encrypt(&mut pt, EncryptionContext::Iv128(FixedLength::from(block)))
            .unwrap();
        assert_eq!(pt, b"inner\0");
    }
}
