//! Protection of the SK / SKF payload (RFC 7296 §3.14, RFC 5282 for AEAD).
//!
//! Layout of the protected body (everything after the SK/SKF payload header):
//!
//! ```text
//! AEAD (RFC 5282, RFC 7634):  IV(8)  ‖ E(inner ‖ pad length 0)           ‖ ICV(16)
//! AES-CBC + HMAC (RFC 4868):  IV(16) ‖ E(inner ‖ padding ‖ pad length)   ‖ ICV(truncated HMAC)
//! ```
//!
//! For AEAD the associated data is the message up to the body (IKE header and
//! the SK/SKF payload header) and the nonce is salt(4) ‖ IV(8). For CBC the
//! ICV is the truncated HMAC over the whole message except the ICV itself
//! (encrypt-then-MAC); it is checked before anything is decrypted.
use aws_lc_rs::cipher::{
    self, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use aws_lc_rs::{aead, hmac, iv::FixedLength};
use oxisec_wire::{TransformId, encr, integ};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

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

/// RFC 5282 §4 / RFC 7634 §2: the last 4 bytes of SK_e are a salt.
const AEAD_SALT_LEN: usize = 4;
/// Explicit IV carried in each AEAD-protected message.
const AEAD_IV_LEN: usize = 8;
const AEAD_ICV_LEN: usize = 16;
const AES_BLOCK: usize = 16;

/// What a valid suite resolves to.
#[derive(Clone, Copy)]
enum Kind {
    Aead {
        alg: &'static aead::Algorithm,
        key_len: usize,
    },
    Cbc {
        alg: &'static cipher::Algorithm,
        key_len: usize,
        mac: hmac::Algorithm,
        /// RFC 4868 §2.1.1: the key is as long as the hash output.
        mac_key_len: usize,
        icv_len: usize,
    },
}

impl IkeSuite {
    fn kind(&self) -> Result<Kind, CryptoError> {
        // RFC 7296 §3.3.2: an AEAD proposal carries no integrity transform,
        // or INTEG NONE.
        let no_integ = matches!(self.integ, None | Some(integ::NONE));
        match self.encr {
            encr::AES_GCM_16 => {
                if !no_integ {
                    return Err(CryptoError::Unsupported("integrity transform with AEAD"));
                }
                let (alg, key_len) = match self.encr_key_bits {
                    Some(128) => (&aead::AES_128_GCM, 16),
                    Some(192) => (&aead::AES_192_GCM, 24),
                    Some(256) => (&aead::AES_256_GCM, 32),
                    _ => return Err(CryptoError::Unsupported("AES-GCM key length")),
                };
                Ok(Kind::Aead { alg, key_len })
            }
            encr::CHACHA20_POLY1305 => {
                if !no_integ {
                    return Err(CryptoError::Unsupported("integrity transform with AEAD"));
                }
                // RFC 7634 §2: the Key Length attribute must not be sent.
                if self.encr_key_bits.is_some() {
                    return Err(CryptoError::Unsupported("ChaCha20-Poly1305 key length"));
                }
                Ok(Kind::Aead {
                    alg: &aead::CHACHA20_POLY1305,
                    key_len: 32,
                })
            }
            encr::AES_CBC => {
                let (alg, key_len) = match self.encr_key_bits {
                    Some(128) => (&cipher::AES_128, 16),
                    Some(192) => (&cipher::AES_192, 24),
                    Some(256) => (&cipher::AES_256, 32),
                    _ => return Err(CryptoError::Unsupported("AES-CBC key length")),
                };
                let (mac, mac_key_len, icv_len) = match self.integ {
                    Some(integ::HMAC_SHA2_256_128) => (hmac::HMAC_SHA256, 32, 16),
                    Some(integ::HMAC_SHA2_384_192) => (hmac::HMAC_SHA384, 48, 24),
                    Some(integ::HMAC_SHA2_512_256) => (hmac::HMAC_SHA512, 64, 32),
                    None | Some(integ::NONE) => {
                        return Err(CryptoError::Unsupported("AES-CBC without integrity"));
                    }
                    Some(_) => return Err(CryptoError::Unsupported("integrity transform")),
                };
                Ok(Kind::Cbc {
                    alg,
                    key_len,
                    mac,
                    mac_key_len,
                    icv_len,
                })
            }
            _ => Err(CryptoError::Unsupported("encryption transform")),
        }
    }

    /// `Err(Unsupported)` if the combination is not implemented (or an AEAD is
    /// combined with an integrity transform, or a non-AEAD lacks one).
    pub fn validate(&self) -> Result<(), CryptoError> {
        self.kind().map(|_| ())
    }
    /// SK_e length in bytes (key + salt for AEAD); 0 for an invalid suite.
    pub fn encr_key_len(&self) -> usize {
        match self.kind() {
            Ok(Kind::Aead { key_len, .. }) => key_len + AEAD_SALT_LEN,
            Ok(Kind::Cbc { key_len, .. }) => key_len,
            Err(_) => 0,
        }
    }
    /// SK_a length in bytes (0 for AEAD and for an invalid suite).
    pub fn integ_key_len(&self) -> usize {
        match self.kind() {
            Ok(Kind::Cbc { mac_key_len, .. }) => mac_key_len,
            _ => 0,
        }
    }
}

enum Inner {
    Aead {
        key: aead::LessSafeKey,
        salt: Zeroizing<[u8; AEAD_SALT_LEN]>,
    },
    /// Boxed: the two AES key schedules make this variant several times
    /// larger than the AEAD one.
    Cbc(Box<CbcKeys>),
}

struct CbcKeys {
    enc: EncryptingKey,
    dec: DecryptingKey,
    mac: hmac::Key,
    icv_len: usize,
}

/// Protects one direction of an IKE SA. Holds no mutable state, so it is
/// `Send + Sync`; its keys are wiped by the provider when it is dropped.
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
    pub fn new(
        suite: IkeSuite,
        encr_key: &Secret,
        integ_key: &Secret,
    ) -> Result<IkeCipher, CryptoError> {
        let kind = suite.kind()?;
        if encr_key.len() != suite.encr_key_len() || integ_key.len() != suite.integ_key_len() {
            return Err(CryptoError::InvalidKeyLength);
        }
        let inner = match kind {
            Kind::Aead { alg, key_len } => {
                let (key, salt) = encr_key.as_bytes().split_at(key_len);
                let key =
                    aead::UnboundKey::new(alg, key).map_err(|_| CryptoError::InvalidKeyLength)?;
                let mut salt_arr = Zeroizing::new([0u8; AEAD_SALT_LEN]);
                salt_arr.copy_from_slice(salt);
                Inner::Aead {
                    key: aead::LessSafeKey::new(key),
                    salt: salt_arr,
                }
            }
            Kind::Cbc {
                alg, mac, icv_len, ..
            } => {
                let unbound = || {
                    UnboundCipherKey::new(alg, encr_key.as_bytes())
                        .map_err(|_| CryptoError::InvalidKeyLength)
                };
                Inner::Cbc(Box::new(CbcKeys {
                    enc: EncryptingKey::cbc(unbound()?)
                        .map_err(|_| CryptoError::InvalidKeyLength)?,
                    dec: DecryptingKey::cbc(unbound()?)
                        .map_err(|_| CryptoError::InvalidKeyLength)?,
                    mac: hmac::Key::new(mac, integ_key.as_bytes()),
                    icv_len,
                }))
            }
        };
        Ok(IkeCipher { inner })
    }

    /// Length of the SK body (IV ‖ ciphertext incl. padding and pad-length byte
    /// ‖ ICV) for `plaintext_len` bytes of inner payloads.
    pub fn body_len(&self, plaintext_len: usize) -> usize {
        match &self.inner {
            // No alignment needed for AEAD (RFC 5282 §3, RFC 7634 §3): no
            // padding, just the pad-length byte.
            Inner::Aead { .. } => AEAD_IV_LEN + plaintext_len + 1 + AEAD_ICV_LEN,
            Inner::Cbc(keys) => {
                let icv_len = keys.icv_len;
                AES_BLOCK + (plaintext_len + 1).next_multiple_of(AES_BLOCK) + icv_len
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
    /// not (64-bit AEAD IVs collide with probability below 2^-30 after 2^16
    /// messages, far more than an IKE SA carries).
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
            Inner::Aead { key, salt } => {
                let (aad, body) = msg.split_at_mut(body_offset);
                let (iv, rest) = body.split_at_mut(AEAD_IV_LEN);
                let (ct, icv) = rest.split_at_mut(plaintext.len() + 1);
                rng.fill(iv);
                ct[..plaintext.len()].copy_from_slice(plaintext);
                ct[plaintext.len()] = 0; // pad length
                let nonce = aead_nonce(salt, iv);
                let tag = key
                    .seal_in_place_separate_tag(nonce, aead::Aad::from(&*aad), ct)
                    .map_err(|_| CryptoError::Malformed)?;
                icv.copy_from_slice(tag.as_ref());
            }
            Inner::Cbc(keys) => {
                let CbcKeys {
                    enc, mac, icv_len, ..
                } = &**keys;
                let mac_end = msg.len() - icv_len;
                let (iv, ct) = msg[body_offset..mac_end].split_at_mut(AES_BLOCK);
                let mut iv_arr = [0u8; AES_BLOCK];
                rng.fill(&mut iv_arr);
                iv.copy_from_slice(&iv_arr);
                let pad_len = ct.len() - plaintext.len() - 1;
                ct[..plaintext.len()].copy_from_slice(plaintext);
                ct[plaintext.len()..plaintext.len() + pad_len].fill(0);
                // pad_len < 16 by construction of body_len.
                ct[ct.len() - 1] = pad_len as u8;
                enc.less_safe_encrypt(ct, EncryptionContext::Iv128(FixedLength::from(iv_arr)))
                    .map_err(|_| CryptoError::Malformed)?;
                let tag = hmac::sign(mac, &msg[..mac_end]);
                msg[mac_end..].copy_from_slice(&tag.as_ref()[..*icv_len]);
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
            Inner::Aead { key, salt } => {
                // At least the pad-length byte must be there.
                if body.len() < AEAD_IV_LEN + 1 + AEAD_ICV_LEN {
                    return Err(CryptoError::Malformed);
                }
                let (iv, rest) = body.split_at(AEAD_IV_LEN);
                let (ct, icv) = rest.split_at(rest.len() - AEAD_ICV_LEN);
                let mut out = Secret::new(vec![0u8; ct.len()]);
                key.open_separate_gather(
                    aead_nonce(salt, iv),
                    aead::Aad::from(&msg[..body_offset]),
                    ct,
                    icv,
                    out.as_mut_bytes(),
                )
                .map_err(|_| CryptoError::IntegrityCheckFailed)?;
                out
            }
            Inner::Cbc(keys) => {
                let CbcKeys {
                    dec, mac, icv_len, ..
                } = &**keys;
                let icv_len = *icv_len;
                if body.len() < AES_BLOCK + AES_BLOCK + icv_len
                    || !(body.len() - AES_BLOCK - icv_len).is_multiple_of(AES_BLOCK)
                {
                    return Err(CryptoError::Malformed);
                }
                let mac_end = msg.len() - icv_len;
                let tag = hmac::sign(mac, &msg[..mac_end]);
                if !bool::from(tag.as_ref()[..icv_len].ct_eq(&msg[mac_end..])) {
                    return Err(CryptoError::IntegrityCheckFailed);
                }
                let (iv, ct) = msg[body_offset..mac_end].split_at(AES_BLOCK);
                let iv: [u8; AES_BLOCK] = iv.try_into().map_err(|_| CryptoError::Malformed)?;
                let mut out = Secret::from_slice(ct);
                dec.decrypt(
                    out.as_mut_bytes(),
                    DecryptionContext::Iv128(FixedLength::from(iv)),
                )
                .map_err(|_| CryptoError::Malformed)?;
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

fn aead_nonce(salt: &[u8; AEAD_SALT_LEN], iv: &[u8]) -> aead::Nonce {
    let mut nonce = [0u8; AEAD_SALT_LEN + AEAD_IV_LEN];
    nonce[..AEAD_SALT_LEN].copy_from_slice(salt);
    nonce[AEAD_SALT_LEN..].copy_from_slice(iv);
    aead::Nonce::assume_unique_for_key(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u8);
    impl Rng for Counter {
        fn fill(&mut self, dest: &mut [u8]) {
            for b in dest {
                self.0 = self.0.wrapping_add(37);
                *b = self.0;
            }
        }
    }

    fn suites() -> Vec<IkeSuite> {
        let mut v = Vec::new();
        for bits in [128, 192, 256] {
            v.push(IkeSuite {
                encr: encr::AES_GCM_16,
                encr_key_bits: Some(bits),
                integ: None,
            });
            for i in [
                integ::HMAC_SHA2_256_128,
                integ::HMAC_SHA2_384_192,
                integ::HMAC_SHA2_512_256,
            ] {
                v.push(IkeSuite {
                    encr: encr::AES_CBC,
                    encr_key_bits: Some(bits),
                    integ: Some(i),
                });
            }
        }
        v.push(IkeSuite {
            encr: encr::CHACHA20_POLY1305,
            encr_key_bits: None,
            integ: None,
        });
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
        let gcm = |bits| IkeSuite {
            encr: encr::AES_GCM_16,
            encr_key_bits: Some(bits),
            integ: None,
        };
        assert_eq!(gcm(128).encr_key_len(), 20);
        assert_eq!(gcm(256).encr_key_len(), 36);
        assert_eq!(gcm(256).integ_key_len(), 0);
        let cbc = IkeSuite {
            encr: encr::AES_CBC,
            encr_key_bits: Some(192),
            integ: Some(integ::HMAC_SHA2_384_192),
        };
        assert_eq!((cbc.encr_key_len(), cbc.integ_key_len()), (24, 48));
        let chacha = IkeSuite {
            encr: encr::CHACHA20_POLY1305,
            encr_key_bits: None,
            integ: Some(integ::NONE),
        };
        assert_eq!((chacha.encr_key_len(), chacha.integ_key_len()), (36, 0));
    }

    #[test]
    fn rejects_invalid_suites() {
        let bad = [
            (encr::AES_GCM_16, Some(256), Some(integ::HMAC_SHA2_256_128)),
            (encr::AES_GCM_16, None, None),
            (encr::AES_GCM_16, Some(512), None),
            (encr::AES_GCM_8, Some(128), None),
            (encr::CHACHA20_POLY1305, Some(256), None),
            (
                encr::CHACHA20_POLY1305,
                None,
                Some(integ::HMAC_SHA2_256_128),
            ),
            (encr::AES_CBC, Some(128), None),
            (encr::AES_CBC, Some(128), Some(integ::NONE)),
            (encr::AES_CBC, Some(128), Some(integ::HMAC_SHA1_96)),
            (encr::AES_CBC, None, Some(integ::HMAC_SHA2_256_128)),
            (encr::TRIPLE_DES, None, Some(integ::HMAC_SHA2_256_128)),
            (encr::NULL, None, Some(integ::HMAC_SHA2_256_128)),
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
            let ek = Secret::new(vec![1; suite.encr_key_len()]);
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
            for n in 0..70 {
                let len = c.body_len(n);
                match suite.integ {
                    None => assert_eq!(len, 8 + n + 1 + 16),
                    Some(_) => {
                        let icv = suite.integ_key_len() / 2;
                        assert_eq!((len - 16 - icv) % 16, 0);
                        assert!(len - 16 - icv > n);
                        assert!(len - 16 - icv <= n + 16);
                    }
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
        let suite = suites()[0];
        let a = cipher(suite);
        let b = IkeCipher::new(
            suite,
            &Secret::new(vec![9; suite.encr_key_len()]),
            &Secret::default(),
        )
        .unwrap();
        let msg = sealed(&a, &mut Counter(3), &[1; 28], b"x");
        assert_eq!(
            b.open(&msg, 28).err(),
            Some(CryptoError::IntegrityCheckFailed)
        );
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
        let suite = IkeSuite {
            encr: encr::AES_CBC,
            encr_key_bits: Some(128),
            integ: Some(integ::HMAC_SHA2_256_128),
        };
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
        let suite = IkeSuite {
            encr: encr::CHACHA20_POLY1305,
            encr_key_bits: None,
            integ: None,
        };
        let c = cipher(suite);
        // Seal "\x05" as the whole plaintext: the AEAD adds pad length 0, so
        // seal a plaintext whose last byte (our fake pad length) is too big,
        // by sealing with pad length applied manually.
        let mut msg = vec![0u8; 4];
        msg.resize(4 + c.body_len(0), 0);
        c.seal(&mut Counter(5), &mut msg, 4, &[]).unwrap();
        assert!(c.open(&msg, 4).unwrap().is_empty());
        // Re-seal with a key we control to set the pad length byte to 1
        // while only one byte of plaintext exists.
        let key = aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &(0..32).collect::<Vec<u8>>()).unwrap(),
        );
        let salt = [32u8, 33, 34, 35];
        let iv = [0u8; 8];
        let mut ct = [1u8];
        let tag = key
            .seal_in_place_separate_tag(aead_nonce(&salt, &iv), aead::Aad::from(&[0u8; 4]), &mut ct)
            .unwrap();
        let mut msg = vec![0u8; 4];
        msg.extend_from_slice(&iv);
        msg.extend_from_slice(&ct);
        msg.extend_from_slice(tag.as_ref());
        assert_eq!(c.open(&msg, 4).err(), Some(CryptoError::Malformed));
    }
}
