//! Per-packet ESP protection (RFC 4303) for every transform a gateway is
//! expected to offer (RFC 8221): AES-GCM (RFC 4106), AES-CCM (RFC 4309) and
//! ChaCha20-Poly1305 (RFC 7634); AES-CBC (RFC 3602), AES-CTR (RFC 3686),
//! 3DES-CBC (RFC 2451) and ENCR_NULL (RFC 2410), each with HMAC-SHA2
//! (RFC 4868), AES-XCBC-96 (RFC 3566), AES-CMAC-96 (RFC 4494) or
//! HMAC-SHA1-96 (RFC 2404).
//!
//! Works on a whole ESP packet in place:
//! `SPI(4) ‖ Seq(4) ‖ IV(iv_len) ‖ payload (already padded, with pad length and
//! next header) ‖ ICV(icv_len)`.
//!
//! * **AEAD**: KEYMAT is `key ‖ salt` (4 bytes; 3 for CCM, RFC 4309 §7.1).
//!   The 8-byte IV is the 64-bit sequence number (RFC 4106 §3.1 and RFC 4309
//!   §3.1 allow any IV that never repeats under a key; the sequence number is
//!   exactly that, and an outbound SA refuses to wrap it). Nonce = `salt ‖
//!   IV`. AAD = `SPI ‖ seq` (8 bytes) or, with ESN, `SPI ‖ seq-high ‖ seq-low`
//!   (12 bytes, RFC 4106 §5, RFC 4309 §5).
//! * **Cipher + integrity**: KEYMAT is `encryption key ‖ integrity key`
//!   (RFC 7296 §2.17 order); for AES-CTR the encryption key ends in the
//!   4-byte nonce (RFC 3686 §5.1). CBC IVs (16 bytes AES, 8 bytes 3DES) are
//!   random (RFC 3602 §2.3, RFC 2451 §3: they must be unpredictable); the
//!   AES-CTR IV is the sequence number (RFC 3686 §3.1: unique per key is all it
//!   needs); ENCR_NULL has none. The ICV is the truncated MAC over `SPI ‖ seq
//!   ‖ IV ‖ ciphertext`, with the implicit high 32 bits of an extended
//!   sequence number appended to the MAC input but not to the packet
//!   (RFC 4303 §2.2.1, §3.3.2.1). `open` verifies the ICV before decrypting
//!   anything (encrypt-then-MAC).
//!
//! Everything per key is computed once in [`EspCipher::new`] (AES and DES key
//! schedules, AEAD contexts, MAC subkeys); `seal` and `open` allocate nothing
//! and never panic, whatever the length of the input.
use oxisec_wire::TransformId;

use crate::aead_alg::{self, AeadKey};
use crate::encr::{Encr, EncrKey};
use crate::integ::IntegKey;
use crate::suite::{self, Proto, Transform};
use crate::{CryptoError, Secret};

/// Length of the SPI + sequence number header in front of the IV.
const ESP_HEADER_LEN: usize = 8;
/// RFC 4303 §2.4: the payload always ends on a 4-byte boundary.
const ESP_ALIGN: usize = 4;
/// The largest IV of any transform (AES-CBC).
const MAX_IV_LEN: usize = 16;

/// A negotiated ESP suite.
///
/// Implemented: ENCR_AES_GCM_8/12/16, ENCR_AES_CCM_8/12/16 and
/// ENCR_CHACHA20_POLY1305 without integrity; ENCR_AES_CBC, ENCR_AES_CTR,
/// ENCR_3DES and ENCR_NULL with AUTH_HMAC_SHA2_256_128 / 384_192 / 512_256,
/// AUTH_AES_XCBC_96, AUTH_AES_CMAC_96 or AUTH_HMAC_SHA1_96. AES needs the Key
/// Length attribute; a fixed-size cipher accepts none or its own size.
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
    fn resolve(&self) -> Result<Transform, CryptoError> {
        suite::resolve(Proto::Esp, self.encr, self.encr_key_bits, self.integ)
    }

    /// Checks that this suite is one the data plane implements.
    pub fn validate(&self) -> Result<(), CryptoError> {
        self.resolve().map(|_| ())
    }
    /// Bytes of KEYMAT per direction: encryption key (+ salt for AEAD, +
    /// nonce for AES-CTR) then integrity key (RFC 7296 §2.17 order). 0 for a
    /// suite that fails [`validate`](Self::validate), as are the other sizes
    /// below.
    pub fn keymat_len(&self) -> usize {
        match self.resolve() {
            Ok(Transform::Aead(a)) => a.keymat_len(),
            Ok(Transform::Split { encr, integ }) => encr.key_len() + integ.key_len(),
            Err(_) => 0,
        }
    }
    pub fn iv_len(&self) -> usize {
        match self.resolve() {
            Ok(Transform::Aead(_)) => aead_alg::IV_LEN,
            Ok(Transform::Split { encr, .. }) => encr.iv_len(),
            Err(_) => 0,
        }
    }
    pub fn icv_len(&self) -> usize {
        match self.resolve() {
            Ok(Transform::Aead(a)) => a.icv_len(),
            Ok(Transform::Split { integ, .. }) => integ.icv_len(),
            Err(_) => 0,
        }
    }
    /// The payload (plaintext incl. trailer) must be a multiple of this: the
    /// cipher block (16 for AES-CBC, 8 for 3DES), and at least 4 (RFC 4303
    /// §2.4) for AEAD, AES-CTR and ENCR_NULL.
    pub fn block_align(&self) -> usize {
        match self.resolve() {
            Ok(Transform::Aead(_)) => ESP_ALIGN,
            Ok(Transform::Split { encr, .. }) => encr.block_len().max(ESP_ALIGN),
            Err(_) => 0,
        }
    }
}

/// The keyed state of one suite.
enum Keys {
    Aead(AeadKey),
    /// Boxed: key schedules and MAC state are several hundred bytes.
    Split(Box<SplitKeys>),
}

struct SplitKeys {
    alg: Encr,
    encr: EncrKey,
    integ: IntegKey,
}

/// An ESP packet cut at its field boundaries.
struct Parts<'p> {
    header: &'p mut [u8],
    iv: &'p mut [u8],
    payload: &'p mut [u8],
    icv: &'p mut [u8],
}

/// One direction of an ESP SA's keys, ready to use. `Send + Sync`: the data
/// plane shares it between threads; it holds no mutable state.
pub struct EspCipher {
    suite: EspSuite,
    keys: Keys,
}

impl core::fmt::Debug for EspCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("EspCipher { .. }")
    }
}

/// The sequence number's high and low halves as they enter AAD / ICV.
fn seq_halves(seq: u64) -> ([u8; 4], [u8; 4]) {
    (
        ((seq >> 32) as u32).to_be_bytes(),
        (seq as u32).to_be_bytes(),
    )
}

impl EspCipher {
    /// `keymat` is this direction's slice of KEYMAT (`suite.keymat_len()` bytes).
    ///
    /// # Errors
    /// `Unsupported` for a suite that fails [`EspSuite::validate`] (and for a
    /// 3DES key made of weak or repeated DES keys, probability about 2^-50);
    /// `InvalidKeyLength` for KEYMAT of the wrong length.
    pub fn new(suite: EspSuite, keymat: &Secret) -> Result<EspCipher, CryptoError> {
        let transform = suite.resolve()?;
        let km = keymat.as_bytes();
        if km.len() != suite.keymat_len() {
            return Err(CryptoError::InvalidKeyLength);
        }
        let keys = match transform {
            Transform::Aead(alg) => Keys::Aead(AeadKey::new(alg, km)?),
            Transform::Split { encr, integ } => {
                let (ek, ik) = km.split_at(encr.key_len());
                Keys::Split(Box::new(SplitKeys {
                    alg: encr,
                    encr: EncrKey::new(encr, ek)?,
                    integ: IntegKey::new(integ, ik)?,
                }))
            }
        };
        Ok(EspCipher { suite, keys })
    }

    pub fn suite(&self) -> EspSuite {
        self.suite
    }

    fn iv_len(&self) -> usize {
        match &self.keys {
            Keys::Aead(_) => aead_alg::IV_LEN,
            Keys::Split(k) => k.alg.iv_len(),
        }
    }

    fn icv_len(&self) -> usize {
        match &self.keys {
            Keys::Aead(k) => k.icv_len(),
            Keys::Split(k) => k.integ.icv_len(),
        }
    }

    /// Splits a packet into header, IV, payload and ICV, checking every length.
    fn split<'p>(&self, packet: &'p mut [u8]) -> Result<Parts<'p>, CryptoError> {
        let iv_len = self.iv_len();
        let icv_len = self.icv_len();
        let min = ESP_HEADER_LEN + iv_len + icv_len;
        if packet.len() < min {
            return Err(CryptoError::Malformed);
        }
        let (header, rest) = packet.split_at_mut(ESP_HEADER_LEN);
        let (iv, rest) = rest.split_at_mut(iv_len);
        let payload_len = rest.len() - icv_len;
        let (payload, icv) = rest.split_at_mut(payload_len);
        Ok(Parts {
            header,
            iv,
            payload,
            icv,
        })
    }

    /// AAD of RFC 4106 §5 / RFC 4309 §5 / RFC 7634 §3: `SPI ‖ [seq-high ‖]
    /// seq-low`. SPI and seq-low come from the header as it is on the wire, so
    /// a header altered in transit fails the ICV whatever `seq` the caller
    /// passes.
    fn aad(&self, header: &[u8], seq: u64) -> ([u8; 12], usize) {
        let mut aad = [0u8; 12];
        aad[..4].copy_from_slice(&header[..4]);
        if self.suite.esn {
            aad[4..8].copy_from_slice(&seq_halves(seq).0);
            aad[8..12].copy_from_slice(&header[4..8]);
            (aad, 12)
        } else {
            aad[4..8].copy_from_slice(&header[4..8]);
            (aad, 8)
        }
    }

    /// The MAC input of RFC 4303 §3.3.2.1: `header ‖ iv ‖ ciphertext`, then
    /// the implicit `seq-high` with ESN.
    fn icv_parts<'a>(
        &self,
        seq_high: &'a [u8; 4],
        header: &'a [u8],
        iv: &'a [u8],
        ct: &'a [u8],
    ) -> [&'a [u8]; 4] {
        let esn: &[u8] = if self.suite.esn { seq_high } else { &[] };
        [header, iv, ct, esn]
    }

    /// Fills the IV, encrypts the payload and writes the ICV, in place.
    /// `seq` is the full 64-bit sequence number (the low 32 bits are already in
    /// the header; the high 32 enter the ICV/AAD when ESN is on). AEAD and
    /// AES-CTR IVs are the sequence number (unique per key); CBC IVs are
    /// random.
    ///
    /// # Errors
    /// `Malformed` if the packet is too short, the header does not carry
    /// `seq`, or the payload is not a multiple of [`EspSuite::block_align`].
    pub fn seal(&self, seq: u64, packet: &mut [u8]) -> Result<(), CryptoError> {
        let iv_len = self.iv_len();
        let random = matches!(&self.keys, Keys::Split(k) if matches!(k.alg, Encr::AesCbc(_) | Encr::TripleDes));
        if random {
            let mut iv = [0u8; MAX_IV_LEN];
            aws_lc_rs::rand::fill(&mut iv[..iv_len])
                .map_err(|_| CryptoError::Unsupported("system randomness unavailable"))?;
            return self.seal_with_iv(seq, &iv[..iv_len], packet);
        }
        let iv = seq.to_be_bytes();
        self.seal_with_iv(seq, &iv[..iv_len], packet)
    }

    /// `seal` with the IV chosen by the caller. Private: only known-answer tests
    /// need a fixed IV, and a caller-chosen AEAD or CTR IV could repeat.
    fn seal_with_iv(&self, seq: u64, iv_in: &[u8], packet: &mut [u8]) -> Result<(), CryptoError> {
        let block_align = self.suite.block_align();
        let Parts {
            header,
            iv,
            payload,
            icv,
        } = self.split(packet)?;
        if header[4..8] != seq_halves(seq).1
            || iv_in.len() != iv.len()
            || block_align == 0
            || !payload.len().is_multiple_of(block_align)
        {
            return Err(CryptoError::Malformed);
        }
        iv.copy_from_slice(iv_in);
        match &self.keys {
            Keys::Aead(key) => {
                let (aad, aad_len) = self.aad(header, seq);
                key.seal(iv, &aad[..aad_len], payload, icv)?;
            }
            Keys::Split(k) => {
                k.encr.encrypt(iv, payload)?;
                let seq_high = seq_halves(seq).0;
                let mut ctx = k.integ.start();
                for part in self.icv_parts(&seq_high, header, iv, payload) {
                    ctx.update(part);
                }
                ctx.finish(icv)?;
            }
        }
        Ok(())
    }

    /// Verifies the ICV and decrypts the payload in place. `seq` is the full
    /// sequence number as reconstructed by the replay window.
    ///
    /// # Errors
    /// `Malformed` for a packet too short for IV and ICV or a payload that is
    /// not whole cipher blocks; `IntegrityCheckFailed` if the ICV does not
    /// verify (a failed cipher+integrity packet is left untouched).
    pub fn open(&self, seq: u64, packet: &mut [u8]) -> Result<(), CryptoError> {
        let Parts {
            header,
            iv,
            payload,
            icv,
        } = self.split(packet)?;
        match &self.keys {
            Keys::Aead(key) => {
                let (aad, aad_len) = self.aad(header, seq);
                key.open(iv, &aad[..aad_len], payload, icv)?;
            }
            Keys::Split(k) => {
                if !payload.len().is_multiple_of(k.alg.block_len()) {
                    return Err(CryptoError::Malformed);
                }
                // Encrypt-then-MAC: authenticate before touching the ciphertext.
                let seq_high = seq_halves(seq).0;
                k.integ
                    .verify(&self.icv_parts(&seq_high, header, iv, payload), icv)?;
                k.encr.decrypt(iv, payload)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use oxisec_wire::{encr, integ};

    fn suite(encr: TransformId, bits: Option<u16>, integ: Option<TransformId>) -> EspSuite {
        EspSuite {
            encr,
            encr_key_bits: bits,
            integ,
            esn: false,
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

    /// Every implemented suite (without ESN).
    fn all_suites() -> Vec<EspSuite> {
        let mut v = vec![];
        for bits in [128, 192, 256] {
            for e in [
                encr::AES_GCM_16,
                encr::AES_GCM_12,
                encr::AES_GCM_8,
                encr::AES_CCM_16,
                encr::AES_CCM_12,
                encr::AES_CCM_8,
            ] {
                v.push(suite(e, Some(bits), None));
            }
            for i in INTEGS {
                v.push(suite(encr::AES_CBC, Some(bits), Some(i)));
                v.push(suite(encr::AES_CTR, Some(bits), Some(i)));
            }
        }
        for i in INTEGS {
            v.push(suite(encr::TRIPLE_DES, None, Some(i)));
            v.push(suite(encr::NULL, None, Some(i)));
        }
        v.push(suite(encr::CHACHA20_POLY1305, None, None));
        v
    }

    /// KEYMAT derived from `seed`, distinct bytes so 3DES keys are valid.
    fn keymat(s: EspSuite, seed: u8) -> Secret {
        Secret::new(
            (0..s.keymat_len())
                .map(|i| seed.wrapping_add((i as u8).wrapping_mul(7)))
                .collect(),
        )
    }

    fn cipher_for(s: EspSuite, seed: u8) -> EspCipher {
        EspCipher::new(s, &keymat(s, seed)).unwrap()
    }

    /// A packet with `payload_len` payload bytes for `s`, header set for `seq`.
    fn packet(s: EspSuite, seq: u64, payload_len: usize) -> Vec<u8> {
        let mut p = vec![0u8; 8 + s.iv_len() + payload_len + s.icv_len()];
        p[..4].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        p[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
        for (i, b) in p[8 + s.iv_len()..8 + s.iv_len() + payload_len]
            .iter_mut()
            .enumerate()
        {
            *b = i as u8;
        }
        p
    }

    #[test]
    fn sizes() {
        let sizes = |s: EspSuite| (s.keymat_len(), s.iv_len(), s.icv_len(), s.block_align());
        assert_eq!(
            sizes(suite(encr::AES_GCM_16, Some(256), None)),
            (36, 8, 16, 4)
        );
        assert_eq!(
            sizes(suite(encr::AES_GCM_16, Some(128), Some(integ::NONE))).0,
            20
        );
        assert_eq!(
            sizes(suite(encr::AES_GCM_8, Some(192), None)),
            (28, 8, 8, 4)
        );
        assert_eq!(
            sizes(suite(encr::AES_GCM_12, Some(128), None)),
            (20, 8, 12, 4)
        );
        // RFC 4309 §7.1: a 3-byte salt.
        assert_eq!(
            sizes(suite(encr::AES_CCM_8, Some(128), None)),
            (19, 8, 8, 4)
        );
        assert_eq!(
            sizes(suite(encr::AES_CCM_16, Some(256), None)),
            (35, 8, 16, 4)
        );
        assert_eq!(
            sizes(suite(encr::CHACHA20_POLY1305, Some(256), None)),
            (36, 8, 16, 4)
        );
        assert_eq!(
            sizes(suite(
                encr::AES_CBC,
                Some(192),
                Some(integ::HMAC_SHA2_384_192)
            )),
            (24 + 48, 16, 24, 16)
        );
        assert_eq!(
            sizes(suite(
                encr::AES_CBC,
                Some(256),
                Some(integ::HMAC_SHA2_512_256)
            )),
            (32 + 64, 16, 32, 16)
        );
        // RFC 3686 §5.1: key ‖ 4-byte nonce, then the integrity key.
        assert_eq!(
            sizes(suite(encr::AES_CTR, Some(128), Some(integ::AES_XCBC_96))),
            (16 + 4 + 16, 8, 12, 4)
        );
        assert_eq!(
            sizes(suite(encr::TRIPLE_DES, None, Some(integ::HMAC_SHA1_96))),
            (24 + 20, 8, 12, 8)
        );
        assert_eq!(
            sizes(suite(encr::TRIPLE_DES, Some(192), Some(integ::AES_CMAC_96))),
            (24 + 16, 8, 12, 8)
        );
        assert_eq!(
            sizes(suite(encr::NULL, None, Some(integ::HMAC_SHA2_256_128))),
            (32, 0, 16, 4)
        );
    }

    #[test]
    fn rejects_unsupported_suites() {
        for s in [
            suite(encr::AES_GCM_16, None, None),
            suite(encr::AES_GCM_16, Some(64), None),
            suite(encr::AES_GCM_16, Some(128), Some(integ::HMAC_SHA2_256_128)),
            suite(encr::AES_GCM_8, Some(128), Some(integ::AES_XCBC_96)),
            suite(encr::AES_CCM_12, None, None),
            suite(encr::CHACHA20_POLY1305, Some(128), None),
            suite(encr::AES_CBC, Some(128), None),
            suite(encr::AES_CBC, Some(128), Some(integ::NONE)),
            suite(encr::AES_CBC, Some(128), Some(integ::HMAC_MD5_96)),
            suite(encr::AES_CTR, None, Some(integ::HMAC_SHA2_256_128)),
            suite(encr::AES_CTR, Some(128), Some(integ::NONE)),
            suite(encr::TRIPLE_DES, Some(128), Some(integ::HMAC_SHA2_256_128)),
            suite(encr::TRIPLE_DES, None, None),
            // RFC 2410 §2 / RFC 4303 §3.2: NULL needs integrity.
            suite(encr::NULL, None, None),
            suite(encr::NULL, None, Some(integ::NONE)),
            suite(encr::NULL, Some(128), Some(integ::HMAC_SHA2_256_128)),
            suite(encr::DES, None, Some(integ::HMAC_SHA2_256_128)),
            suite(encr::NULL_AUTH_AES_GMAC, Some(128), None),
        ] {
            assert!(s.validate().is_err(), "{s:?}");
            assert_eq!(s.keymat_len(), 0);
            assert_eq!((s.iv_len(), s.icv_len(), s.block_align()), (0, 0, 0));
            assert!(EspCipher::new(s, &Secret::new(vec![0; 64])).is_err());
        }
        for s in all_suites() {
            s.validate().unwrap();
        }
    }

    #[test]
    fn rejects_wrong_keymat_length() {
        for s in all_suites() {
            let short = Secret::new(vec![0; s.keymat_len() - 1]);
            assert_eq!(
                EspCipher::new(s, &short).unwrap_err(),
                CryptoError::InvalidKeyLength
            );
        }
    }

    #[test]
    fn round_trip_every_suite_with_and_without_esn() {
        for mut s in all_suites() {
            for esn in [false, true] {
                s.esn = esn;
                let c = cipher_for(s, 7);
                let seq = 0x0000_0003_0000_0010u64;
                for len in [0, 16, 48] {
                    let mut p = packet(s, seq, len);
                    let orig = p.clone();
                    c.seal(seq, &mut p).unwrap();
                    assert_ne!(p, orig, "{s:?}");
                    if s.encr == encr::NULL {
                        assert_eq!(p[8..8 + len], orig[8..8 + len], "NULL leaves the payload");
                    }
                    c.open(seq, &mut p).unwrap();
                    let body = 8 + s.iv_len()..p.len() - s.icv_len();
                    assert_eq!(p[body.clone()], orig[body], "{s:?}");
                }
            }
        }
    }

    #[test]
    fn aead_and_ctr_ivs_are_the_sequence_number() {
        for s in all_suites() {
            if s.iv_len() != 8 || s.encr == encr::TRIPLE_DES {
                continue;
            }
            let c = cipher_for(s, 1);
            let mut p = packet(s, 0x0102_0304_0506_0708, 4);
            c.seal(0x0102_0304_0506_0708, &mut p).unwrap();
            assert_eq!(p[8..16], 0x0102_0304_0506_0708u64.to_be_bytes(), "{s:?}");
        }
    }

    #[test]
    fn cbc_ivs_are_random() {
        for s in [
            suite(encr::AES_CBC, Some(128), Some(integ::HMAC_SHA2_256_128)),
            suite(encr::TRIPLE_DES, None, Some(integ::HMAC_SHA1_96)),
        ] {
            let c = cipher_for(s, 1);
            let mut a = packet(s, 1, 16);
            let mut b = a.clone();
            c.seal(1, &mut a).unwrap();
            c.seal(1, &mut b).unwrap();
            let iv = 8..8 + s.iv_len();
            assert_ne!(a[iv.clone()], b[iv], "{s:?}");
        }
    }

    #[test]
    fn esn_high_bits_are_authenticated() {
        for mut s in all_suites() {
            s.esn = true;
            let c = cipher_for(s, 3);
            let mut p = packet(s, 0x1_0000_0005, 32);
            c.seal(0x1_0000_0005, &mut p).unwrap();
            let mut wrong = p.clone();
            assert_eq!(
                c.open(0x2_0000_0005, &mut wrong),
                Err(CryptoError::IntegrityCheckFailed),
                "{s:?}"
            );
            c.open(0x1_0000_0005, &mut p).unwrap();
        }
    }

    #[test]
    fn esn_high_bits_stay_off_the_wire() {
        // With ESN the packet is exactly as long as without it.
        for mut s in all_suites() {
            s.esn = true;
            let c = cipher_for(s, 3);
            let mut p = packet(s, 0x7_0000_0001, 16);
            let len = p.len();
            c.seal(0x7_0000_0001, &mut p).unwrap();
            assert_eq!(p.len(), len);
        }
    }

    #[test]
    fn any_flipped_bit_fails_the_icv() {
        for s in all_suites() {
            let c = cipher_for(s, 9);
            let mut p = packet(s, 77, 32);
            c.seal(77, &mut p).unwrap();
            for i in 0..p.len() {
                let mut t = p.clone();
                t[i] ^= 0x01;
                assert_eq!(
                    c.open(77, &mut t),
                    Err(CryptoError::IntegrityCheckFailed),
                    "{s:?} byte {i}"
                );
            }
        }
    }

    #[test]
    fn failed_icv_leaves_packet_untouched_for_cipher_plus_integrity() {
        for s in all_suites() {
            if s.integ.is_none() {
                continue;
            }
            let c = cipher_for(s, 4);
            let mut p = packet(s, 5, 32);
            c.seal(5, &mut p).unwrap();
            let last = p.len() - 1;
            p[last] ^= 0x80;
            let before = p.clone();
            assert!(c.open(5, &mut p).is_err());
            assert_eq!(p, before, "{s:?}");
        }
    }

    #[test]
    fn every_length_is_an_error_not_a_panic() {
        for s in all_suites() {
            let c = cipher_for(s, 2);
            for len in 0..128 {
                let mut p = vec![0u8; len];
                let _ = c.open(1, &mut p);
                let mut p = vec![0u8; len];
                let _ = c.seal(0, &mut p);
                let mut p = vec![0u8; len];
                let _ = c.seal(1 << 40, &mut p);
            }
        }
    }

    #[test]
    fn seal_rejects_misaligned_payload_and_wrong_header() {
        for s in all_suites() {
            let c = cipher_for(s, 2);
            let align = s.block_align();
            let mut p = packet(s, 1, 2 * align - 1);
            assert_eq!(c.seal(1, &mut p), Err(CryptoError::Malformed), "{s:?}");
            let mut p = packet(s, 1, 2 * align);
            assert_eq!(c.seal(2, &mut p), Err(CryptoError::Malformed), "{s:?}");
        }
    }

    #[test]
    fn open_rejects_partial_cipher_blocks() {
        for s in [
            suite(encr::AES_CBC, Some(128), Some(integ::AES_XCBC_96)),
            suite(encr::TRIPLE_DES, None, Some(integ::AES_CMAC_96)),
        ] {
            let c = cipher_for(s, 2);
            let mut p = packet(s, 1, 12);
            assert_eq!(c.open(1, &mut p), Err(CryptoError::Malformed), "{s:?}");
        }
    }

    #[test]
    fn cipher_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<EspCipher>();
    }

    #[test]
    fn debug_does_not_show_keys() {
        for s in all_suites() {
            let c = cipher_for(s, 0xab);
            assert_eq!(format!("{c:?}"), "EspCipher { .. }");
        }
    }

    /// Parses the `key = value` blocks of a vector file (blank-line separated,
    /// `#` comments, values may continue on indented lines). A `[section]`
    /// line applies to the blocks after it, as the field `section`.
    pub(crate) fn parse_vectors(text: &str) -> Vec<std::collections::HashMap<String, String>> {
        let mut out = vec![];
        let mut cur: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        let mut last_key = String::new();
        let mut section = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('#') {
                continue;
            }
            if trimmed.is_empty() {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                continue;
            }
            if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                section = name.to_string();
                continue;
            }
            if line.starts_with(char::is_whitespace) {
                if let Some(v) = cur.get_mut(&last_key) {
                    v.push_str(trimmed);
                }
                continue;
            }
            let (k, v) = trimmed.split_once('=').expect("key = value");
            last_key = k.trim().to_string();
            cur.insert(last_key.clone(), v.trim().to_string());
            cur.insert("section".into(), section.clone());
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    /// RFC 3602 §4 cases 5–8 with their fixed IVs: exact ciphertext. RFC 3602
    /// has no integrity, so only the ciphertext part of the packet is compared.
    #[test]
    fn rfc3602_cbc_ciphertext_with_fixed_iv() {
        let vectors = parse_vectors(include_str!("../tests/vectors/esp_aes_cbc_rfc3602.txt"));
        assert_eq!(vectors.len(), 4);
        for v in vectors {
            let key = unhex(&v["key"]);
            let s = suite(
                encr::AES_CBC,
                Some(key.len() as u16 * 8),
                Some(integ::HMAC_SHA2_256_128),
            );
            let mut km = key.clone();
            km.extend_from_slice(&[0x55; 32]);
            let c = EspCipher::new(s, &Secret::new(km)).unwrap();
            let seq: u64 = v["seq"].parse().unwrap();
            let expected = unhex(&v["packet"]);
            let plaintext = unhex(&v["plaintext"]);
            let mut p = expected[..24].to_vec();
            p.extend_from_slice(&plaintext);
            p.extend_from_slice(&[0; 16]);
            c.seal_with_iv(seq, &unhex(&v["iv"]), &mut p).unwrap();
            assert_eq!(p[..expected.len()], expected[..], "{}", v["name"]);
        }
    }

    /// RFC 3686 §6 vectors #1–#9 sealed with their IVs: the ciphertext after
    /// the ESP header and IV is exactly the RFC's (the vectors' lengths, 16,
    /// 32 and 36 octets, are all valid ESP payload lengths).
    #[test]
    fn rfc3686_ctr_ciphertext_with_fixed_iv() {
        let vectors = parse_vectors(include_str!("../tests/vectors/aes_ctr_rfc3686.txt"));
        assert_eq!(vectors.len(), 9);
        for v in vectors {
            let key = unhex(&v["key"]);
            let s = suite(
                encr::AES_CTR,
                Some(key.len() as u16 * 8),
                Some(integ::AES_XCBC_96),
            );
            let mut km = key.clone();
            km.extend_from_slice(&unhex(&v["nonce"]));
            km.extend_from_slice(&[0x66; 16]);
            let c = EspCipher::new(s, &Secret::new(km)).unwrap();
            let pt = unhex(&v["plaintext"]);
            let mut p = packet(s, 9, pt.len());
            p[16..16 + pt.len()].copy_from_slice(&pt);
            c.seal_with_iv(9, &unhex(&v["iv"]), &mut p).unwrap();
            assert_eq!(p[8..16], unhex(&v["iv"])[..], "{}", v["name"]);
            assert_eq!(
                p[16..16 + pt.len()],
                unhex(&v["ciphertext"])[..],
                "{}",
                v["name"]
            );
            c.open(9, &mut p).unwrap();
            assert_eq!(p[16..16 + pt.len()], pt[..]);
        }
    }

    /// 3DES-CBC known answers (tdes_cbc.txt) sealed with their IVs.
    #[test]
    fn tdes_cbc_ciphertext_with_fixed_iv() {
        let vectors = parse_vectors(include_str!("../tests/vectors/tdes_cbc.txt"));
        assert_eq!(vectors.len(), 4);
        for v in vectors {
            let s = suite(encr::TRIPLE_DES, None, Some(integ::HMAC_SHA1_96));
            let mut km = unhex(&v["key"]);
            km.extend_from_slice(&[0x77; 20]);
            let c = EspCipher::new(s, &Secret::new(km)).unwrap();
            let pt = unhex(&v["plaintext"]);
            let mut p = packet(s, 3, pt.len());
            p[16..16 + pt.len()].copy_from_slice(&pt);
            c.seal_with_iv(3, &unhex(&v["iv"]), &mut p).unwrap();
            assert_eq!(p[16..16 + pt.len()], unhex(&v["ciphertext"])[..], "{v:?}");
            c.open(3, &mut p).unwrap();
            assert_eq!(p[16..16 + pt.len()], pt[..]);
        }
    }

    /// RFC 4868 §2.7.2 authenticator vectors: the truncation is the left half.
    /// With ENCR_NULL the ESP ICV covers exactly `SPI ‖ seq ‖ payload`, so a
    /// vector's data, cut as an ESP packet, must get the published ICV.
    #[test]
    fn rfc4868_truncated_hmac() {
        let vectors = parse_vectors(include_str!("../tests/vectors/esp_hmac_rfc4868.txt"));
        assert!(vectors.len() >= 6);
        let mut checked = 0;
        for v in vectors {
            let i = match v["alg"].as_str() {
                "HMAC-SHA-256-128" => integ::HMAC_SHA2_256_128,
                "HMAC-SHA-384-192" => integ::HMAC_SHA2_384_192,
                "HMAC-SHA-512-256" => integ::HMAC_SHA2_512_256,
                other => panic!("unknown {other}"),
            };
            let s = suite(encr::NULL, None, Some(i));
            let data = unhex(&v["data"]);
            let expected = unhex(&v["icv"]);
            assert_eq!(expected.len(), s.icv_len());
            if data.len() < 8 || !(data.len() - 8).is_multiple_of(4) {
                continue;
            }
            let c = EspCipher::new(s, &Secret::new(unhex(&v["key"]))).unwrap();
            let seq = u64::from(u32::from_be_bytes(data[4..8].try_into().unwrap()));
            let mut p = data.clone();
            p.extend_from_slice(&vec![0; s.icv_len()]);
            c.seal(seq, &mut p).unwrap();
            assert_eq!(p[data.len()..], expected[..], "{}", v["name"]);
            checked += 1;
        }
        assert!(checked >= 3);
    }
}
