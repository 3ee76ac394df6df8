//! Non-AEAD encryption transforms, used together with an integrity transform
//! (encrypt-then-MAC) by both IKE and ESP.
//!
//! | transform | mode | key (KEYMAT) | IV | block | provider |
//! |---|---|---|---|---|---|
//! | ENCR_AES_CBC | CBC | 16/24/32 | 16 | 16 | aws-lc-rs `cipher` |
//! | ENCR_AES_CTR | CTR, counter block nonce ‖ IV ‖ ctr from 1 | 16/24/32 + 4-byte nonce | 8 | 1 | aws-lc-rs `cipher` |
//! | ENCR_3DES | CBC | 24 | 8 | 8 | aws-lc-rs `cipher` (`legacy-des`) |
//! | ENCR_NULL | none | 0 | 0 | 1 | – (ESP only, RFC 2410) |
//!
//! AES-CTR follows RFC 3686 §4 / §5.1 (ESP) and RFC 5930 §2 (IKE): the last
//! four bytes of the key material are a nonce, and block `i` (from 1) of a
//! message is encrypted with `E_K(nonce ‖ IV ‖ i)`. aws-lc-rs increments the
//! whole 128-bit block, which equals the 32-bit counter of RFC 3686 as long as
//! it does not wrap; RFC 3686 caps a message at 2^32 − 1 blocks and so do we.
use aws_lc_rs::cipher::{
    self, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use zeroize::Zeroizing;

use crate::CryptoError;

/// The nonce at the end of AES-CTR key material (RFC 3686 §5.1).
pub(crate) const CTR_NONCE_LEN: usize = 4;
const AES_BLOCK: usize = 16;
const DES_BLOCK: usize = 8;
/// RFC 3686 §2.1: at most 2^32 − 1 blocks per message, so the 32-bit block
/// counter (starting at 1) never wraps.
const CTR_MAX_LEN: u64 = (u32::MAX as u64) * AES_BLOCK as u64;

/// A supported non-AEAD encryption transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encr {
    /// AES-CBC with a 16-, 24- or 32-byte key.
    AesCbc(usize),
    /// AES-CTR with a 16-, 24- or 32-byte key (plus the nonce).
    AesCtr(usize),
    TripleDes,
    Null,
}

impl Encr {
    /// Bytes of key material: the cipher key, plus the nonce for AES-CTR.
    pub(crate) fn key_len(self) -> usize {
        match self {
            Encr::AesCbc(k) => k,
            Encr::AesCtr(k) => k + CTR_NONCE_LEN,
            Encr::TripleDes => 24,
            Encr::Null => 0,
        }
    }

    /// Explicit IV carried in each message.
    pub(crate) fn iv_len(self) -> usize {
        match self {
            Encr::AesCbc(_) => AES_BLOCK,
            Encr::AesCtr(_) | Encr::TripleDes => 8,
            Encr::Null => 0,
        }
    }

    /// The ciphertext must be a multiple of this (1: any length).
    pub(crate) fn block_len(self) -> usize {
        match self {
            Encr::AesCbc(_) => AES_BLOCK,
            Encr::TripleDes => DES_BLOCK,
            Encr::AesCtr(_) | Encr::Null => 1,
        }
    }
}

fn aes_alg(key_len: usize) -> Result<&'static cipher::Algorithm, CryptoError> {
    match key_len {
        16 => Ok(&cipher::AES_128),
        24 => Ok(&cipher::AES_192),
        32 => Ok(&cipher::AES_256),
        _ => Err(CryptoError::InvalidKeyLength),
    }
}

// Lives inside the boxed per-SA key state; boxing the variants again would
// only add an indirection.
#[allow(clippy::large_enum_variant)]
enum Keys {
    Cbc {
        enc: EncryptingKey,
        dec: DecryptingKey,
        /// 16 for AES, 8 for 3DES.
        block: usize,
    },
    Ctr {
        key: EncryptingKey,
        nonce: Zeroizing<[u8; CTR_NONCE_LEN]>,
    },
    Null,
}

/// A keyed encryption transform; aws-lc-rs wipes its keys on drop.
pub(crate) struct EncrKey {
    keys: Keys,
}

impl EncrKey {
    /// # Errors
    /// `InvalidKeyLength` unless `key` is [`Encr::key_len`] long;
    /// `Unsupported` for a 3DES key whose three DES keys are weak or not
    /// pairwise distinct (aws-lc-rs refuses those; random keys hit this with
    /// probability around 2^-50).
    pub(crate) fn new(alg: Encr, key: &[u8]) -> Result<EncrKey, CryptoError> {
        if key.len() != alg.key_len() {
            return Err(CryptoError::InvalidKeyLength);
        }
        let unbound = |alg: &'static cipher::Algorithm, k: &[u8]| {
            UnboundCipherKey::new(alg, k).map_err(|_| CryptoError::InvalidKeyLength)
        };
        let keys = match alg {
            Encr::AesCbc(k) => {
                let a = aes_alg(k)?;
                Keys::Cbc {
                    enc: EncryptingKey::cbc(unbound(a, key)?)
                        .map_err(|_| CryptoError::InvalidKeyLength)?,
                    dec: DecryptingKey::cbc(unbound(a, key)?)
                        .map_err(|_| CryptoError::InvalidKeyLength)?,
                    block: AES_BLOCK,
                }
            }
            Encr::AesCtr(k) => {
                let (cipher_key, nonce_bytes) = key.split_at(k);
                let mut nonce = Zeroizing::new([0u8; CTR_NONCE_LEN]);
                nonce.copy_from_slice(nonce_bytes);
                Keys::Ctr {
                    key: EncryptingKey::ctr(unbound(aes_alg(k)?, cipher_key)?)
                        .map_err(|_| CryptoError::InvalidKeyLength)?,
                    nonce,
                }
            }
            Encr::TripleDes => {
                #[allow(deprecated)] // legacy on purpose: RFC 8247 §2.1, RFC 8221 §5
                let a = &cipher::DES_EDE3_FOR_LEGACY_USE_ONLY;
                let weak = |_| CryptoError::Unsupported("3DES key with weak or repeated DES keys");
                Keys::Cbc {
                    enc: EncryptingKey::cbc(unbound(a, key)?).map_err(weak)?,
                    dec: DecryptingKey::cbc(unbound(a, key)?).map_err(weak)?,
                    block: DES_BLOCK,
                }
            }
            Encr::Null => Keys::Null,
        };
        Ok(EncrKey { keys })
    }

    fn ctr_block(nonce: &[u8; CTR_NONCE_LEN], iv: &[u8]) -> Result<[u8; AES_BLOCK], CryptoError> {
        if iv.len() != 8 {
            return Err(CryptoError::Malformed);
        }
        let mut block = [0u8; AES_BLOCK];
        block[..CTR_NONCE_LEN].copy_from_slice(nonce);
        block[CTR_NONCE_LEN..12].copy_from_slice(iv);
        block[12..].copy_from_slice(&1u32.to_be_bytes());
        Ok(block)
    }

    /// Encrypts `data` in place with `iv` ([`Encr::iv_len`] bytes).
    ///
    /// # Errors
    /// `Malformed` for a wrong IV length, data that is not a whole number of
    /// blocks (CBC), or data too long for the CTR counter.
    pub(crate) fn encrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
        match &self.keys {
            Keys::Cbc { enc, block, .. } => {
                if !data.len().is_multiple_of(*block) {
                    return Err(CryptoError::Malformed);
                }
                enc.less_safe_encrypt(data, enc_context(iv, *block)?)
                    .map_err(|_| CryptoError::Malformed)?;
            }
            Keys::Ctr { key, nonce } => Self::ctr(key, nonce, iv, data)?,
            Keys::Null => {
                if !iv.is_empty() {
                    return Err(CryptoError::Malformed);
                }
            }
        }
        Ok(())
    }

    /// Decrypts `data` in place; same errors as [`EncrKey::encrypt`].
    pub(crate) fn decrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), CryptoError> {
        match &self.keys {
            Keys::Cbc { dec, block, .. } => {
                if !data.len().is_multiple_of(*block) {
                    return Err(CryptoError::Malformed);
                }
                dec.decrypt(data, dec_context(iv, *block)?)
                    .map_err(|_| CryptoError::Malformed)?;
            }
            // CTR decryption is encryption with the same counter blocks.
            Keys::Ctr { key, nonce } => Self::ctr(key, nonce, iv, data)?,
            Keys::Null => {
                if !iv.is_empty() {
                    return Err(CryptoError::Malformed);
                }
            }
        }
        Ok(())
    }

    fn ctr(
        key: &EncryptingKey,
        nonce: &[u8; CTR_NONCE_LEN],
        iv: &[u8],
        data: &mut [u8],
    ) -> Result<(), CryptoError> {
        if data.len() as u64 > CTR_MAX_LEN {
            return Err(CryptoError::Malformed);
        }
        let mut block = Self::ctr_block(nonce, iv)?;
        let result =
            key.less_safe_encrypt(data, EncryptionContext::Iv128(FixedLength::from(&block)));
        block.fill(0);
        result.map(|_| ()).map_err(|_| CryptoError::Malformed)
    }
}

fn enc_context(iv: &[u8], block: usize) -> Result<EncryptionContext, CryptoError> {
    match block {
        AES_BLOCK => {
            let iv: [u8; AES_BLOCK] = iv.try_into().map_err(|_| CryptoError::Malformed)?;
            Ok(EncryptionContext::Iv128(FixedLength::from(iv)))
        }
        _ => {
            let iv: [u8; DES_BLOCK] = iv.try_into().map_err(|_| CryptoError::Malformed)?;
            Ok(EncryptionContext::Iv64(FixedLength::from(iv)))
        }
    }
}

fn dec_context(iv: &[u8], block: usize) -> Result<DecryptionContext, CryptoError> {
    match block {
        AES_BLOCK => {
            let iv: [u8; AES_BLOCK] = iv.try_into().map_err(|_| CryptoError::Malformed)?;
            Ok(DecryptionContext::Iv128(FixedLength::from(iv)))
        }
        _ => {
            let iv: [u8; DES_BLOCK] = iv.try_into().map_err(|_| CryptoError::Malformed)?;
            Ok(DecryptionContext::Iv64(FixedLength::from(iv)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Encr> {
        let mut v = vec![Encr::TripleDes, Encr::Null];
        for k in [16, 24, 32] {
            v.push(Encr::AesCbc(k));
            v.push(Encr::AesCtr(k));
        }
        v
    }

    fn key_for(alg: Encr) -> EncrKey {
        let key: Vec<u8> = (0..alg.key_len() as u8)
            .map(|b| b.wrapping_mul(37) ^ 0x5c)
            .collect();
        EncrKey::new(alg, &key).unwrap()
    }

    #[test]
    fn round_trips_and_changes_the_data() {
        for alg in all() {
            let k = key_for(alg);
            let iv = vec![9u8; alg.iv_len()];
            for len in [0usize, 8, 16, 24, 32, 48, 5] {
                if len % alg.block_len() != 0 {
                    let mut d = vec![0u8; len];
                    assert_eq!(k.encrypt(&iv, &mut d), Err(CryptoError::Malformed));
                    assert_eq!(k.decrypt(&iv, &mut d), Err(CryptoError::Malformed));
                    continue;
                }
                let pt: Vec<u8> = (0..len as u8).collect();
                let mut d = pt.clone();
                k.encrypt(&iv, &mut d).unwrap();
                if alg != Encr::Null && len > 0 {
                    assert_ne!(d, pt, "{alg:?}");
                }
                k.decrypt(&iv, &mut d).unwrap();
                assert_eq!(d, pt, "{alg:?} {len}");
            }
        }
    }

    #[test]
    fn wrong_iv_length_is_malformed() {
        for alg in all() {
            let k = key_for(alg);
            let iv = vec![0u8; alg.iv_len() + 1];
            let mut d = vec![0u8; 16];
            assert_eq!(k.encrypt(&iv, &mut d), Err(CryptoError::Malformed));
            assert_eq!(k.decrypt(&iv, &mut d), Err(CryptoError::Malformed));
        }
    }

    #[test]
    fn wrong_key_length_is_rejected() {
        for alg in all() {
            assert_eq!(
                EncrKey::new(alg, &vec![1; alg.key_len() + 1]).err(),
                Some(CryptoError::InvalidKeyLength)
            );
        }
    }

    #[test]
    fn degenerate_3des_key_is_refused() {
        // K1 = K2 = K3 would be single DES.
        let key = [0x13u8, 0x34, 0x57, 0x79, 0x9b, 0xbc, 0xdf, 0xf1].repeat(3);
        assert!(matches!(
            EncrKey::new(Encr::TripleDes, &key),
            Err(CryptoError::Unsupported(_))
        ));
    }

    /// The CTR counter block is nonce ‖ IV ‖ 1, checked against AES-ECB.
    #[test]
    fn ctr_keystream_starts_at_counter_one() {
        let key = [0x42u8; 16];
        let mut keymat = key.to_vec();
        keymat.extend_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        let k = EncrKey::new(Encr::AesCtr(16), &keymat).unwrap();
        let iv = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let mut ks = [0u8; 32];
        k.encrypt(&iv, &mut ks).unwrap();
        let ecb =
            EncryptingKey::ecb(UnboundCipherKey::new(&cipher::AES_128, &key).unwrap()).unwrap();
        let mut blocks = [0u8; 32];
        for (i, b) in blocks.chunks_mut(16).enumerate() {
            b[..4].copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
            b[4..12].copy_from_slice(&iv);
            b[12..].copy_from_slice(&(i as u32 + 1).to_be_bytes());
        }
        ecb.less_safe_encrypt(&mut blocks, EncryptionContext::None)
            .unwrap();
        assert_eq!(ks, blocks);
    }
}
