//! ML-KEM-512/768/1024 (FIPS 203) as IKEv2 key exchange methods 35/36/37
//! (draft-ietf-ipsecme-ikev2-mlkem, used alone or as an additional key
//! exchange of RFC 9370), on aws-lc-rs's stable `kem` module.
//!
//! A KEM is not symmetric like Diffie-Hellman: the initiator sends an
//! encapsulation key `ek` in its KE payload ([`generate`](super::generate),
//! [`KeyExchange::public_key`]), the responder encapsulates to it and answers
//! with the ciphertext ([`respond`](super::respond)), and the initiator
//! decapsulates that ciphertext ([`KeyExchange::shared_secret`]). The shared
//! secret is ML-KEM's 32-byte K.
//!
//! Peer input checks (the draft makes both mandatory):
//! * responder: the encapsulation key check of FIPS 203 §7.2 — exact length
//!   and the modulus check (every 12-bit coefficient of t̂ below q = 3329);
//! * initiator: the ciphertext type check of FIPS 203 §7.3 — exact length.
//!   A well-sized but forged ciphertext is not an error: decapsulation then
//!   returns the implicit-rejection key, and the handshake fails at AUTH.
//!
//! Randomness: aws-lc-rs generates the decapsulation key and the
//! encapsulation randomness from its own DRBG and offers no way to pass
//! seeds, so ML-KEM shares do **not** come from the injected [`Rng`] and are
//! not reproducible from a seeded one (unlike every other group here).
use aws_lc_rs::kem::{self, Ciphertext, DecapsulationKey, EncapsulationKey};
use oxisec_wire::{TransformId, ke};

use super::KeyExchange;
use crate::{CryptoError, Secret};

/// One ML-KEM parameter set with its IKEv2 transform ID and sizes.
pub(super) struct MlKem {
    group: TransformId,
    alg: &'static kem::Algorithm,
    /// Module rank k: t̂ is the first 384·k bytes of the encapsulation key.
    k: usize,
    /// Encapsulation key (initiator's KE data) length: 384·k + 32.
    pub(super) ek_len: usize,
    /// Ciphertext (responder's KE data) length.
    pub(super) ct_len: usize,
}

static PARAMS: [MlKem; 3] = [
    MlKem {
        group: ke::ML_KEM_512,
        alg: &kem::ML_KEM_512,
        k: 2,
        ek_len: 800,
        ct_len: 768,
    },
    MlKem {
        group: ke::ML_KEM_768,
        alg: &kem::ML_KEM_768,
        k: 3,
        ek_len: 1184,
        ct_len: 1088,
    },
    MlKem {
        group: ke::ML_KEM_1024,
        alg: &kem::ML_KEM_1024,
        k: 4,
        ek_len: 1568,
        ct_len: 1568,
    },
];

/// The shared secret K is 32 bytes for every parameter set.
const SS_LEN: usize = 32;

/// FIPS 203's modulus q.
const Q: u16 = 3329;

pub(super) fn params(group: TransformId) -> Option<&'static MlKem> {
    PARAMS.iter().find(|p| p.group == group)
}

const PROVIDER_FAILED: CryptoError = CryptoError::Unsupported("ML-KEM provider operation failed");

/// The initiator's share: the decapsulation key (held by aws-lc, freed and
/// wiped there on drop) and the encapsulation key sent to the peer.
pub(super) struct MlKemShare {
    params: &'static MlKem,
    dk: DecapsulationKey,
    ek: Vec<u8>,
}

impl MlKemShare {
    pub(super) fn generate(params: &'static MlKem) -> Result<Self, CryptoError> {
        let dk = DecapsulationKey::generate(params.alg).map_err(|_| PROVIDER_FAILED)?;
        let ek = dk
            .encapsulation_key()
            .and_then(|ek| ek.key_bytes())
            .map_err(|_| PROVIDER_FAILED)?
            .as_ref()
            .to_vec();
        if ek.len() != params.ek_len {
            return Err(PROVIDER_FAILED);
        }
        Ok(MlKemShare { params, dk, ek })
    }

    /// A share from a serialized FIPS 203 decapsulation key
    /// (dk_PKE ‖ ek ‖ H(ek) ‖ z), for known-answer tests: the encapsulation
    /// key is the copy embedded in `dk`.
    #[cfg(test)]
    pub(super) fn from_decapsulation_key(
        params: &'static MlKem,
        dk: &[u8],
    ) -> Result<Self, CryptoError> {
        let ek = dk
            .get(384 * params.k..384 * params.k + params.ek_len)
            .ok_or(CryptoError::InvalidKeyLength)?
            .to_vec();
        let dk =
            DecapsulationKey::new(params.alg, dk).map_err(|_| CryptoError::InvalidKeyLength)?;
        Ok(MlKemShare { params, dk, ek })
    }
}

impl core::fmt::Debug for MlKemShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MlKemShare")
            .field("group", &self.params.group)
            .finish_non_exhaustive()
    }
}

impl KeyExchange for MlKemShare {
    fn group(&self) -> TransformId {
        self.params.group
    }
    /// The encapsulation key ek.
    fn public_key(&self) -> &[u8] {
        &self.ek
    }
    /// Decapsulates the responder's ciphertext.
    fn shared_secret(&self, ciphertext: &[u8]) -> Result<Secret, CryptoError> {
        if ciphertext.len() != self.params.ct_len {
            return Err(CryptoError::InvalidPublicKey);
        }
        let ss = self
            .dk
            .decapsulate(Ciphertext::from(ciphertext))
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        if ss.as_ref().len() != SS_LEN {
            return Err(PROVIDER_FAILED);
        }
        Ok(Secret::from_slice(ss.as_ref()))
    }
}

/// The responder's side: checks the initiator's encapsulation key and
/// encapsulates to it. Returns (ciphertext, shared secret).
pub(super) fn encapsulate(
    params: &'static MlKem,
    ek: &[u8],
) -> Result<(Vec<u8>, Secret), CryptoError> {
    // aws-lc-rs accepts an unreduced key in `EncapsulationKey::new` and only
    // refuses it inside `encapsulate`, with an unspecified error; checking
    // first makes a hostile key a typed peer error.
    if ek.len() != params.ek_len || !modulus_check(&ek[..384 * params.k]) {
        return Err(CryptoError::InvalidPublicKey);
    }
    let ek = EncapsulationKey::new(params.alg, ek).map_err(|_| CryptoError::InvalidPublicKey)?;
    let (ct, ss) = ek.encapsulate().map_err(|_| PROVIDER_FAILED)?;
    if ct.as_ref().len() != params.ct_len || ss.as_ref().len() != SS_LEN {
        return Err(PROVIDER_FAILED);
    }
    Ok((ct.as_ref().to_vec(), Secret::from_slice(ss.as_ref())))
}

/// FIPS 203 §7.2 modulus check on the encoded vector t̂: ByteDecode₁₂ then
/// ByteEncode₁₂ must give the input back, i.e. every little-endian 12-bit
/// coefficient (two per three bytes) is below q. The key is public, so this
/// need not be constant time.
fn modulus_check(t_hat: &[u8]) -> bool {
    let mut triples = t_hat.chunks_exact(3);
    triples.remainder().is_empty()
        && triples.all(|c| {
            let lo = u16::from(c[0]) | (u16::from(c[1] & 0x0f) << 8);
            let hi = u16::from(c[1] >> 4) | (u16::from(c[2]) << 4);
            lo < Q && hi < Q
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Record {
        fields: Vec<(String, String)>,
    }

    impl Record {
        fn hex(&self, name: &str) -> Vec<u8> {
            let v = self
                .fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("field {name} missing"));
            hex::decode(v).unwrap_or_else(|e| panic!("field {name}: {e}"))
        }
        fn str(&self, name: &str) -> &str {
            self.fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("field {name} missing"))
        }
    }

    /// Records of `name = value` lines separated by blank lines; `#` starts
    /// a comment line.
    fn load(file: &str) -> Vec<Record> {
        let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut records = Vec::new();
        let mut fields = Vec::new();
        for line in text.lines().chain([""]) {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            if line.is_empty() {
                if !fields.is_empty() {
                    records.push(Record {
                        fields: std::mem::take(&mut fields),
                    });
                }
            } else {
                let (k, v) = line.split_once('=').expect("name = value");
                fields.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        records
    }

    fn sha3_256(data: &[u8]) -> Vec<u8> {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA3_256, data)
            .as_ref()
            .to_vec()
    }

    /// Decapsulation known answers from NIST's ACVP ML-KEM test vectors
    /// (FIPS 203), valid and implicitly rejected ciphertexts, through the
    /// same `shared_secret` path the engine uses.
    #[test]
    fn acvp_decapsulation_known_answers() {
        let records = load("mlkem_acvp_decap.txt");
        assert_eq!(records.len(), 6);
        let mut rejected = 0;
        for r in &records {
            let group = TransformId(r.str("group").parse().expect("group id"));
            let p = params(group).expect("ML-KEM group");
            let dk = r.hex("dk");
            let share = MlKemShare::from_decapsulation_key(p, &dk).unwrap();
            // The dk carries H(ek) right after ek: a check that the
            // embedded ek (and this file) is intact.
            let h_at = 384 * p.k + p.ek_len;
            assert_eq!(sha3_256(share.public_key()), &dk[h_at..h_at + 32]);
            // The embedded ek passes the responder's checks.
            assert!(encapsulate(p, share.public_key()).is_ok());
            let ss = share.shared_secret(&r.hex("c")).unwrap();
            assert_eq!(ss.as_bytes(), r.hex("k"), "tcId {}", r.str("tcId"));
            if r.str("reason") == "modify ciphertext" {
                rejected += 1;
            }
        }
        assert_eq!(rejected, 3);
    }

    #[test]
    fn sizes_match_the_provider() {
        for p in &PARAMS {
            assert_eq!(p.ek_len, 384 * p.k + 32);
            let share = MlKemShare::generate(p).unwrap();
            assert_eq!(share.public_key().len(), p.ek_len);
            let (ct, ss) = encapsulate(p, share.public_key()).unwrap();
            assert_eq!(ct.len(), p.ct_len);
            assert_eq!(ss.len(), SS_LEN);
            assert_eq!(share.shared_secret(&ct).unwrap(), ss);
        }
    }

    #[test]
    fn modulus_check_bounds() {
        // Coefficients (lo, hi) packed into three bytes, little-endian.
        let pack = |lo: u16, hi: u16| {
            [
                (lo & 0xff) as u8,
                ((lo >> 8) as u8) | (((hi & 0x0f) as u8) << 4),
                (hi >> 4) as u8,
            ]
        };
        assert!(modulus_check(&pack(0, 0)));
        assert!(modulus_check(&pack(Q - 1, Q - 1)));
        assert!(!modulus_check(&pack(Q, 0)));
        assert!(!modulus_check(&pack(0, Q)));
        assert!(!modulus_check(&pack(0xfff, 0)));
        assert!(!modulus_check(&[0, 0]));
    }

    #[test]
    fn encapsulation_rejects_unreduced_coefficients() {
        for p in &PARAMS {
            let mut ek = MlKemShare::generate(p).unwrap().public_key().to_vec();
            // Coefficient 0 := q (the smallest out-of-range value).
            ek[0] = (Q & 0xff) as u8;
            ek[1] = (ek[1] & 0xf0) | (Q >> 8) as u8;
            assert_eq!(
                encapsulate(p, &ek).err(),
                Some(CryptoError::InvalidPublicKey)
            );
            // The last coefficient of t̂, high nibble position.
            let mut ek = MlKemShare::generate(p).unwrap().public_key().to_vec();
            let end = 384 * p.k;
            ek[end - 1] = 0xff;
            assert_eq!(
                encapsulate(p, &ek).err(),
                Some(CryptoError::InvalidPublicKey)
            );
            // rho (the last 32 bytes) is free-form.
            let mut ek = MlKemShare::generate(p).unwrap().public_key().to_vec();
            ek[end..].fill(0xff);
            assert!(encapsulate(p, &ek).is_ok());
        }
    }
}
