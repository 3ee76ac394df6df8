//! RFC 7427 signature schemes and their AlgorithmIdentifier encodings.

use crate::SigScheme;
use crate::der::{self, Reader};

// OID content octets.
pub(crate) const OID_RSA_ENCRYPTION: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_SHA1_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
const OID_MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
const OID_RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const OID_SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_SHA384_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const OID_SHA512_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
pub(crate) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

/// The hash a scheme uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    /// Ed25519 hashes internally (RFC 8420's "Identity").
    None,
}

impl Hash {
    fn oid(self) -> Option<&'static [u8]> {
        match self {
            Hash::Sha256 => Some(OID_SHA256),
            Hash::Sha384 => Some(OID_SHA384),
            Hash::Sha512 => Some(OID_SHA512),
            Hash::Sha1 | Hash::None => None,
        }
    }

    fn len(self) -> u64 {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
            Hash::None => 0,
        }
    }

    fn from_oid(oid: &[u8]) -> Option<Hash> {
        match oid {
            OID_SHA256 => Some(Hash::Sha256),
            OID_SHA384 => Some(Hash::Sha384),
            OID_SHA512 => Some(Hash::Sha512),
            _ => None,
        }
    }
}

impl SigScheme {
    /// Every scheme, in our order of preference within each key type.
    pub const ALL: [SigScheme; 11] = [
        SigScheme::RsaPssSha256,
        SigScheme::RsaPssSha384,
        SigScheme::RsaPssSha512,
        SigScheme::RsaPkcs1Sha256,
        SigScheme::RsaPkcs1Sha384,
        SigScheme::RsaPkcs1Sha512,
        SigScheme::EcdsaP256Sha256,
        SigScheme::EcdsaP384Sha384,
        SigScheme::EcdsaP521Sha512,
        SigScheme::Ed25519,
        SigScheme::RsaPkcs1Sha1,
    ];

    pub(crate) fn hash(self) -> Hash {
        match self {
            SigScheme::RsaPkcs1Sha1 => Hash::Sha1,
            SigScheme::RsaPkcs1Sha256 | SigScheme::RsaPssSha256 | SigScheme::EcdsaP256Sha256 => {
                Hash::Sha256
            }
            SigScheme::RsaPkcs1Sha384 | SigScheme::RsaPssSha384 | SigScheme::EcdsaP384Sha384 => {
                Hash::Sha384
            }
            SigScheme::RsaPkcs1Sha512 | SigScheme::RsaPssSha512 | SigScheme::EcdsaP521Sha512 => {
                Hash::Sha512
            }
            SigScheme::Ed25519 => Hash::None,
        }
    }

    pub(crate) fn is_rsa(self) -> bool {
        matches!(
            self,
            SigScheme::RsaPkcs1Sha1
                | SigScheme::RsaPkcs1Sha256
                | SigScheme::RsaPkcs1Sha384
                | SigScheme::RsaPkcs1Sha512
                | SigScheme::RsaPssSha256
                | SigScheme::RsaPssSha384
                | SigScheme::RsaPssSha512
        )
    }

    pub(crate) fn is_ecdsa(self) -> bool {
        matches!(
            self,
            SigScheme::EcdsaP256Sha256 | SigScheme::EcdsaP384Sha384 | SigScheme::EcdsaP521Sha512
        )
    }

    /// The DER AlgorithmIdentifier that RFC 7427 puts in the AUTH data.
    ///
    /// * RSA PKCS#1 v1.5: `sha*WithRSAEncryption` with NULL parameters (A.1).
    /// * RSASSA-PSS: `id-RSASSA-PSS` with explicit parameters — the hash,
    ///   MGF1 with the same hash, salt length = hash length; trailerField 1
    ///   is the DEFAULT and therefore omitted, as DER demands (strongSwan and
    ///   Libreswan send this form; RFC 7427 A.4.3 prints it with the
    ///   explicit trailer, which we accept when parsing).
    /// * ECDSA: `ecdsa-with-SHA*` without parameters (A.3).
    /// * Ed25519: `id-Ed25519` without parameters (RFC 8420).
    pub fn algorithm_identifier(self) -> Vec<u8> {
        let mut content = Vec::with_capacity(64);
        match self {
            SigScheme::RsaPkcs1Sha1
            | SigScheme::RsaPkcs1Sha256
            | SigScheme::RsaPkcs1Sha384
            | SigScheme::RsaPkcs1Sha512 => {
                let oid = match self {
                    SigScheme::RsaPkcs1Sha1 => OID_SHA1_WITH_RSA,
                    SigScheme::RsaPkcs1Sha256 => OID_SHA256_WITH_RSA,
                    SigScheme::RsaPkcs1Sha384 => OID_SHA384_WITH_RSA,
                    _ => OID_SHA512_WITH_RSA,
                };
                der::write_tlv(&mut content, der::OID, oid);
                der::write_tlv(&mut content, der::NULL, &[]);
            }
            SigScheme::RsaPssSha256 | SigScheme::RsaPssSha384 | SigScheme::RsaPssSha512 => {
                let hash = self.hash();
                let hash_oid = hash.oid().unwrap_or(OID_SHA256);
                let mut hash_alg = Vec::new();
                der::write_tlv(&mut hash_alg, der::OID, hash_oid);
                der::write_tlv(&mut hash_alg, der::NULL, &[]);
                let hash_alg = der::tlv(der::SEQUENCE, &hash_alg);

                let mut mgf = Vec::new();
                der::write_tlv(&mut mgf, der::OID, OID_MGF1);
                mgf.extend_from_slice(&hash_alg);
                let mgf = der::tlv(der::SEQUENCE, &mgf);

                let mut salt = Vec::new();
                der::write_unsigned(&mut salt, &[hash.len() as u8]);

                let mut params = Vec::new();
                der::write_tlv(&mut params, der::context(0), &hash_alg);
                der::write_tlv(&mut params, der::context(1), &mgf);
                der::write_tlv(&mut params, der::context(2), &salt);

                der::write_tlv(&mut content, der::OID, OID_RSASSA_PSS);
                der::write_tlv(&mut content, der::SEQUENCE, &params);
            }
            SigScheme::EcdsaP256Sha256 => der::write_tlv(&mut content, der::OID, OID_ECDSA_SHA256),
            SigScheme::EcdsaP384Sha384 => der::write_tlv(&mut content, der::OID, OID_ECDSA_SHA384),
            SigScheme::EcdsaP521Sha512 => der::write_tlv(&mut content, der::OID, OID_ECDSA_SHA512),
            SigScheme::Ed25519 => der::write_tlv(&mut content, der::OID, OID_ED25519),
        }
        der::tlv(der::SEQUENCE, &content)
    }

    /// The scheme an AlgorithmIdentifier names, if we support it.
    ///
    /// Accepts the encodings found in the field: NULL or absent parameters
    /// for RSA PKCS#1 v1.5 and for the hashes inside RSASSA-PSS parameters,
    /// an explicit or omitted trailerField of 1, and (leniently) NULL
    /// parameters for ECDSA and Ed25519. RSASSA-PSS must use MGF1 with the
    /// same hash and a salt as long as the hash (what aws-lc-rs verifies);
    /// PSS with SHA-1 (the defaults) is not supported. ECDSA names only the
    /// hash: `ecdsa-with-SHA256` maps to [`SigScheme::EcdsaP256Sha256`] and
    /// so on; [`crate::PublicKey::verify`] accepts it with any curve.
    pub fn from_algorithm_identifier(der: &[u8]) -> Option<SigScheme> {
        let content = der::single(der, der::SEQUENCE).ok()?;
        let mut r = Reader::new(content);
        let oid = r.read(der::OID).ok()?;
        let params = if r.is_empty() {
            None
        } else {
            Some(r.read_any().ok()?)
        };
        r.finish().ok()?;
        let params_null_or_absent = match params {
            None => true,
            Some((der::NULL, value, _)) => value.is_empty(),
            Some(_) => false,
        };
        let simple = |scheme| params_null_or_absent.then_some(scheme);
        match oid {
            OID_SHA1_WITH_RSA => simple(SigScheme::RsaPkcs1Sha1),
            OID_SHA256_WITH_RSA => simple(SigScheme::RsaPkcs1Sha256),
            OID_SHA384_WITH_RSA => simple(SigScheme::RsaPkcs1Sha384),
            OID_SHA512_WITH_RSA => simple(SigScheme::RsaPkcs1Sha512),
            OID_ECDSA_SHA256 => simple(SigScheme::EcdsaP256Sha256),
            OID_ECDSA_SHA384 => simple(SigScheme::EcdsaP384Sha384),
            OID_ECDSA_SHA512 => simple(SigScheme::EcdsaP521Sha512),
            OID_ED25519 => simple(SigScheme::Ed25519),
            OID_RSASSA_PSS => match params {
                Some((der::SEQUENCE, value, _)) => parse_pss_params(value),
                _ => None,
            },
            _ => None,
        }
    }

    /// The RFC 7427 hash algorithm number for SIGNATURE_HASH_ALGORITHMS
    /// (1 SHA1, 2 SHA2-256, 3 SHA2-384, 4 SHA2-512, 5 Identity for Ed25519).
    pub fn hash_id(self) -> u16 {
        match self.hash() {
            Hash::Sha1 => 1,
            Hash::Sha256 => 2,
            Hash::Sha384 => 3,
            Hash::Sha512 => 4,
            Hash::None => 5,
        }
    }
}

/// A hash AlgorithmIdentifier with NULL or absent parameters.
fn parse_hash_alg(der: &[u8]) -> Option<Hash> {
    let content = der::single(der, der::SEQUENCE).ok()?;
    let mut r = Reader::new(content);
    let hash = Hash::from_oid(r.read(der::OID).ok()?)?;
    if r.read_optional(der::NULL)
        .ok()?
        .is_some_and(|null| !null.is_empty())
    {
        return None;
    }
    r.finish().ok()?;
    Some(hash)
}

/// RSASSA-PSS-params (RFC 4055) restricted to what IKEv2 peers use:
/// SHA-2 hash, MGF1 with the same hash, salt length = hash length, trailer 1.
fn parse_pss_params(content: &[u8]) -> Option<SigScheme> {
    let mut r = Reader::new(content);
    // [0] hashAlgorithm: absent means SHA-1, which we do not support.
    let hash = parse_hash_alg(r.read_optional(der::context(0)).ok()??)?;
    // [1] maskGenAlgorithm: MGF1 with the same hash.
    let mgf = der::single(r.read_optional(der::context(1)).ok()??, der::SEQUENCE).ok()?;
    let mut m = Reader::new(mgf);
    if m.read(der::OID).ok()? != OID_MGF1 {
        return None;
    }
    let (_, _, mgf_hash) = m.read_any().ok()?;
    m.finish().ok()?;
    if parse_hash_alg(mgf_hash)? != hash {
        return None;
    }
    // [2] saltLength: absent means 20.
    let salt = Reader::new(r.read_optional(der::context(2)).ok()??)
        .read_small_uint()
        .ok()?;
    if salt != hash.len() {
        return None;
    }
    // [3] trailerField: DEFAULT 1; RFC 7427's own examples encode it.
    if let Some(trailer) = r.read_optional(der::context(3)).ok()? {
        let mut t = Reader::new(trailer);
        if t.read_small_uint().ok()? != 1 {
            return None;
        }
        t.finish().ok()?;
    }
    r.finish().ok()?;
    Some(match hash {
        Hash::Sha256 => SigScheme::RsaPssSha256,
        Hash::Sha384 => SigScheme::RsaPssSha384,
        Hash::Sha512 => SigScheme::RsaPssSha512,
        Hash::Sha1 | Hash::None => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '\n'], "")).unwrap()
    }

    /// RFC 7427 Appendix A.1 (PKCS#1 v1.5).
    #[test]
    fn rfc7427_a1_rsa_pkcs1() {
        let cases = [
            ("300d06092a864886f70d0101050500", SigScheme::RsaPkcs1Sha1),
            ("300d06092a864886f70d01010b0500", SigScheme::RsaPkcs1Sha256),
            ("300d06092a864886f70d01010c0500", SigScheme::RsaPkcs1Sha384),
            ("300d06092a864886f70d01010d0500", SigScheme::RsaPkcs1Sha512),
        ];
        for (hex, scheme) in cases {
            assert_eq!(scheme.algorithm_identifier(), h(hex), "{scheme:?}");
            assert_eq!(SigScheme::from_algorithm_identifier(&h(hex)), Some(scheme));
        }
        // Absent parameters are a common variant of the same identifier.
        assert_eq!(
            SigScheme::from_algorithm_identifier(&h("300b06092a864886f70d01010b")),
            Some(SigScheme::RsaPkcs1Sha256)
        );
    }

    /// RFC 7427 Appendix A.3 (ECDSA) and RFC 8420 (Ed25519).
    #[test]
    fn rfc7427_a3_ecdsa_and_ed25519() {
        let cases = [
            ("300a06082a8648ce3d040302", SigScheme::EcdsaP256Sha256),
            ("300a06082a8648ce3d040303", SigScheme::EcdsaP384Sha384),
            ("300a06082a8648ce3d040304", SigScheme::EcdsaP521Sha512),
            ("300506032b6570", SigScheme::Ed25519),
        ];
        for (hex, scheme) in cases {
            assert_eq!(scheme.algorithm_identifier(), h(hex), "{scheme:?}");
            assert_eq!(SigScheme::from_algorithm_identifier(&h(hex)), Some(scheme));
        }
    }

    /// RFC 7427 Appendix A.4.3: RSASSA-PSS with SHA-256, printed with the
    /// explicit trailerField; we emit the DER form without it.
    #[test]
    fn rfc7427_a43_rsa_pss_sha256() {
        let rfc = h(
            "3046 06092a864886f70d01010a 3039 a00f 300d 0609608648016503040201 0500
             a11c 301a 06092a864886f70d010108 300d 0609608648016503040201 0500
             a203 020120 a303 020101",
        );
        assert_eq!(
            SigScheme::from_algorithm_identifier(&rfc),
            Some(SigScheme::RsaPssSha256)
        );
        let ours = h(
            "3041 06092a864886f70d01010a 3034 a00f 300d 0609608648016503040201 0500
             a11c 301a 06092a864886f70d010108 300d 0609608648016503040201 0500
             a203 020120",
        );
        assert_eq!(SigScheme::RsaPssSha256.algorithm_identifier(), ours);
        assert_eq!(
            SigScheme::from_algorithm_identifier(&ours),
            Some(SigScheme::RsaPssSha256)
        );
        // Hash identifiers without the NULL parameters.
        let absent = h(
            "303d 06092a864886f70d01010a 3030 a00d 300b 0609608648016503040201
             a11a 3018 06092a864886f70d010108 300b 0609608648016503040201
             a203 020120",
        );
        assert_eq!(
            SigScheme::from_algorithm_identifier(&absent),
            Some(SigScheme::RsaPssSha256)
        );
    }

    #[test]
    fn rsa_pss_384_512_round_trip() {
        for scheme in [SigScheme::RsaPssSha384, SigScheme::RsaPssSha512] {
            let der = scheme.algorithm_identifier();
            assert_eq!(SigScheme::from_algorithm_identifier(&der), Some(scheme));
        }
    }

    #[test]
    fn all_schemes_round_trip() {
        for scheme in SigScheme::ALL {
            assert_eq!(
                SigScheme::from_algorithm_identifier(&scheme.algorithm_identifier()),
                Some(scheme)
            );
        }
    }

    #[test]
    fn rejects_unsupported_pss() {
        // RFC 7427 A.4.1: empty parameters = SHA-1 defaults.
        assert_eq!(
            SigScheme::from_algorithm_identifier(&h("300d06092a864886f70d01010a3000")),
            None
        );
        // No parameters at all.
        assert_eq!(
            SigScheme::from_algorithm_identifier(&h("300b06092a864886f70d01010a")),
            None
        );
        // MGF1 with another hash than the message hash (SHA-384 inside MGF1).
        let mixed = h(
            "3041 06092a864886f70d01010a 3034 a00f 300d 0609608648016503040201 0500
             a11c 301a 06092a864886f70d010108 300d 0609608648016503040202 0500
             a203 020120",
        );
        assert_eq!(SigScheme::from_algorithm_identifier(&mixed), None);
        // Salt 20 with SHA-256.
        let salt = h(
            "3041 06092a864886f70d01010a 3034 a00f 300d 0609608648016503040201 0500
             a11c 301a 06092a864886f70d010108 300d 0609608648016503040201 0500
             a203 020114",
        );
        assert_eq!(SigScheme::from_algorithm_identifier(&salt), None);
        // Trailer 2.
        let trailer = h(
            "3046 06092a864886f70d01010a 3039 a00f 300d 0609608648016503040201 0500
             a11c 301a 06092a864886f70d010108 300d 0609608648016503040201 0500
             a203 020120 a303 020102",
        );
        assert_eq!(SigScheme::from_algorithm_identifier(&trailer), None);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "30",
            "300e06092a864886f70d01010b050000", // trailing byte inside
            "300d06092a864886f70d01010b0500ff", // trailing byte outside
            "300e06092a864886f70d01010b0401ff", // OCTET STRING parameters
            "300c06082a8648ce3d04030202",       // length beyond the input
            "300a06082a8648ce3d040305",         // unknown ECDSA hash
            "310506032b6570",                   // SET instead of SEQUENCE
            "300806032b65700401ff",             // Ed25519 with parameters
        ] {
            assert_eq!(SigScheme::from_algorithm_identifier(&h(bad)), None, "{bad}");
        }
    }

    #[test]
    fn accepts_null_parameters_for_ecdsa_and_ed25519() {
        assert_eq!(
            SigScheme::from_algorithm_identifier(&h("300706032b65700500")),
            Some(SigScheme::Ed25519)
        );
        assert_eq!(
            SigScheme::from_algorithm_identifier(&h("300c06082a8648ce3d0403020500")),
            Some(SigScheme::EcdsaP256Sha256)
        );
    }

    #[test]
    fn hash_ids() {
        assert_eq!(SigScheme::RsaPkcs1Sha1.hash_id(), 1);
        assert_eq!(SigScheme::RsaPssSha256.hash_id(), 2);
        assert_eq!(SigScheme::EcdsaP256Sha256.hash_id(), 2);
        assert_eq!(SigScheme::RsaPkcs1Sha384.hash_id(), 3);
        assert_eq!(SigScheme::EcdsaP521Sha512.hash_id(), 4);
        assert_eq!(SigScheme::Ed25519.hash_id(), 5);
    }
}
