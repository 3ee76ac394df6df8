//! How current each transform is, for `oxisec proposals` and configuration
//! warnings: the requirement levels of RFC 8247 (IKEv2, its §3) and
//! RFC 8221 (ESP, its §5 and §6), mapped onto four statuses.
//!
//! | status | requirement levels |
//! |---|---|
//! | [`Status::Recommended`] | MUST, SHOULD+, SHOULD (general use) |
//! | [`Status::Allowed`] | MAY; SHOULD only for IoT; sound but not listed |
//! | [`Status::Legacy`] | MUST-, SHOULD NOT, SHOULD NOT+; 3DES (see below) |
//! | [`Status::Prohibited`] | MUST NOT |
//!
//! Departures from the plain mapping, each noted in the classification:
//! * ENCR_3DES is MAY for IKEv2 (RFC 8247 §3.1) but SHOULD NOT for ESP
//!   (RFC 8221 §5); its 64-bit block makes long-lived SAs vulnerable to
//!   birthday attacks (Sweet32), so it is Legacy in both.
//! * ENCR_NULL is MUST-implement for ESP (RFC 8221 §5) yet gives no
//!   confidentiality: Allowed, never Recommended.
//! * Transforms neither RFC lists (AES-GCM with 8- or 12-octet ICV, AES-CCM
//!   with 12 or 16, AES-CTR, AUTH_AES_CMAC_96, PRF_AES128_CMAC,
//!   HMAC-SHA2-384, brainpool, Curve448, ML-KEM) are Allowed: standardized
//!   and sound, but not what a default proposal should lead with.
//!
//! The classification is by transform ID only; key sizes are not judged
//! (both RFCs prefer 256-bit AES keys where they note a size, and accept 128).
use oxisec_wire::{TransformId, TransformType, encr, integ, ke, prf};

use Status::{Allowed, Legacy, Prohibited, Recommended};

/// Which protocol a transform protects: the same ID can rank differently
/// (AES-XCBC is SHOULD for IKEv2, SHOULD NOT+ for ESP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Usage {
    Ike,
    Esp,
}

/// How current a transform is. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// MUST / SHOULD for general use: fine to propose first.
    Recommended,
    /// MAY, IoT-only SHOULD, or standardized but unlisted.
    Allowed,
    /// Being phased out: keep only for old peers, and warn.
    Legacy,
    /// MUST NOT be used.
    Prohibited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Recommended => "recommended",
            Status::Allowed => "allowed",
            Status::Legacy => "legacy",
            Status::Prohibited => "prohibited",
        }
    }
}

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transform's status with the requirement level it comes from and where
/// that is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    pub status: Status,
    /// The RFC's requirement level, e.g. `"MUST-"`, or `"not listed"`.
    pub requirement: &'static str,
    /// The section that states it, e.g. `"RFC 8221 §5"`.
    pub source: &'static str,
    /// Why the status departs from the plain mapping, or an empty string.
    pub note: &'static str,
}

const fn c(
    status: Status,
    requirement: &'static str,
    source: &'static str,
    note: &'static str,
) -> Classification {
    Classification {
        status,
        requirement,
        source,
        note,
    }
}

const IOT: &str = "SHOULD only for IoT interoperability";
const UNLISTED: &str = "standardized but not listed";
const SWEET32: &str = "64-bit block: birthday-bound attacks (Sweet32) on long-lived SAs";

// IANA numbers without a named constant in oxisec-wire.
const ENCR_BLOWFISH: TransformId = TransformId(7);
const ENCR_3IDEA: TransformId = TransformId(8);
const ENCR_DES_IV32: TransformId = TransformId(9);
const AUTH_DES_MAC: TransformId = TransformId(3);
const AUTH_KPDK_MD5: TransformId = TransformId(4);
const AUTH_AES_128_GMAC: TransformId = TransformId(9);
const AUTH_AES_192_GMAC: TransformId = TransformId(10);
const AUTH_AES_256_GMAC: TransformId = TransformId(11);
const KE_MODP_1024_S160: TransformId = TransformId(22);
const KE_MODP_2048_S224: TransformId = TransformId(23);
const KE_MODP_2048_S256: TransformId = TransformId(24);

fn encryption(usage: Usage, id: TransformId) -> Option<Classification> {
    const ESP: &str = "RFC 8221 §5";
    const IKE: &str = "RFC 8247 §3.1";
    Some(match (usage, id) {
        (_, encr::AES_GCM_8 | encr::AES_GCM_12 | encr::AES_CCM_12 | encr::AES_CTR) => c(
            Allowed,
            "not listed",
            if usage == Usage::Esp { ESP } else { IKE },
            UNLISTED,
        ),
        (Usage::Esp, encr::AES_GCM_16 | encr::AES_CBC) => c(Recommended, "MUST", ESP, ""),
        (Usage::Esp, encr::CHACHA20_POLY1305) => c(Recommended, "SHOULD", ESP, ""),
        (Usage::Esp, encr::AES_CCM_8) => c(Allowed, "SHOULD", ESP, IOT),
        (Usage::Esp, encr::AES_CCM_16) => c(Allowed, "not listed", ESP, UNLISTED),
        (Usage::Esp, encr::NULL) => c(
            Allowed,
            "MUST",
            ESP,
            "no confidentiality: integrity only (RFC 2410)",
        ),
        (Usage::Esp, encr::NULL_AUTH_AES_GMAC) => c(Allowed, "MAY", ESP, ""),
        (Usage::Esp, encr::TRIPLE_DES) => c(Legacy, "SHOULD NOT", ESP, SWEET32),
        (Usage::Esp, encr::DES_IV64 | encr::DES | ENCR_BLOWFISH | ENCR_3IDEA | ENCR_DES_IV32) => {
            c(Prohibited, "MUST NOT", ESP, "")
        }
        (Usage::Ike, encr::AES_CBC) => c(Recommended, "MUST", IKE, ""),
        (Usage::Ike, encr::CHACHA20_POLY1305 | encr::AES_GCM_16) => {
            c(Recommended, "SHOULD", IKE, "")
        }
        (Usage::Ike, encr::AES_CCM_8) => c(Allowed, "SHOULD", IKE, IOT),
        (Usage::Ike, encr::AES_CCM_16) => c(Allowed, "not listed", IKE, UNLISTED),
        (Usage::Ike, encr::TRIPLE_DES) => c(Legacy, "MAY", IKE, SWEET32),
        (Usage::Ike, encr::DES) => c(Prohibited, "MUST NOT", IKE, ""),
        (Usage::Ike, encr::NULL) => c(
            Prohibited,
            "not applicable",
            "RFC 7296 §3.14",
            "the SK payload is always encrypted",
        ),
        _ => return None,
    })
}

fn integrity(usage: Usage, id: TransformId) -> Option<Classification> {
    let src = match usage {
        Usage::Esp => "RFC 8221 §6",
        Usage::Ike => "RFC 8247 §3.3",
    };
    Some(match (usage, id) {
        (_, integ::HMAC_SHA2_256_128) => c(Recommended, "MUST", src, ""),
        (_, integ::HMAC_SHA2_512_256) => c(Recommended, "SHOULD", src, ""),
        (_, integ::HMAC_SHA2_384_192 | integ::AES_CMAC_96) => {
            c(Allowed, "not listed", src, UNLISTED)
        }
        (_, integ::HMAC_SHA1_96) => c(Legacy, "MUST-", src, ""),
        (Usage::Esp, integ::AES_XCBC_96) => c(Legacy, "SHOULD NOT+", src, ""),
        (Usage::Ike, integ::AES_XCBC_96) => c(Allowed, "SHOULD", src, IOT),
        (Usage::Esp, AUTH_AES_128_GMAC | AUTH_AES_192_GMAC | AUTH_AES_256_GMAC) => {
            c(Allowed, "MAY", src, "")
        }
        (_, integ::HMAC_MD5_96 | AUTH_DES_MAC | AUTH_KPDK_MD5) => {
            c(Prohibited, "MUST NOT", src, "")
        }
        (_, integ::NONE) => c(
            Allowed,
            "MUST with AEAD, MUST NOT otherwise",
            src,
            "only with an AEAD cipher",
        ),
        _ => return None,
    })
}

fn pseudorandom(id: TransformId) -> Option<Classification> {
    const SRC: &str = "RFC 8247 §3.2";
    Some(match id {
        prf::HMAC_SHA2_256 => c(Recommended, "MUST", SRC, ""),
        prf::HMAC_SHA2_512 => c(Recommended, "SHOULD+", SRC, ""),
        prf::HMAC_SHA2_384 | prf::AES128_CMAC => c(Allowed, "not listed", SRC, UNLISTED),
        prf::AES128_XCBC => c(Allowed, "SHOULD", SRC, IOT),
        prf::HMAC_SHA1 => c(Legacy, "MUST-", SRC, ""),
        prf::HMAC_MD5 => c(Prohibited, "MUST NOT", SRC, ""),
        _ => return None,
    })
}

fn key_exchange(id: TransformId) -> Option<Classification> {
    const SRC: &str = "RFC 8247 §2.4";
    Some(match id {
        ke::MODP_2048 => c(Recommended, "MUST", SRC, ""),
        ke::ECP_256 | ke::CURVE25519 => c(Recommended, "SHOULD", SRC, ""),
        ke::MODP_3072
        | ke::MODP_4096
        | ke::MODP_6144
        | ke::MODP_8192
        | ke::ECP_384
        | ke::ECP_521 => c(Allowed, "MAY", SRC, ""),
        ke::ECP_256_BP | ke::ECP_384_BP | ke::ECP_512_BP | ke::CURVE448 => {
            c(Allowed, "not listed", SRC, UNLISTED)
        }
        ke::ML_KEM_512 | ke::ML_KEM_768 | ke::ML_KEM_1024 => c(
            Allowed,
            "not listed",
            SRC,
            "post-quantum; used as an additional key exchange (RFC 9370)",
        ),
        ke::MODP_1024
        | ke::MODP_1536
        | KE_MODP_1024_S160
        | KE_MODP_2048_S224
        | KE_MODP_2048_S256 => c(Legacy, "SHOULD NOT", SRC, ""),
        ke::MODP_768 => c(Prohibited, "MUST NOT", SRC, ""),
        _ => return None,
    })
}

/// The classification of transform `id` of type `ty` used for `usage`;
/// `None` for a transform the RFCs do not classify (unknown IDs, ESN, and
/// PRFs outside IKE).
pub fn classify(usage: Usage, ty: TransformType, id: TransformId) -> Option<Classification> {
    match ty {
        TransformType::ENCR => encryption(usage, id),
        TransformType::INTEG => integrity(usage, id),
        TransformType::PRF if usage == Usage::Ike => pseudorandom(id),
        TransformType::KE
        | TransformType::ADDKE1
        | TransformType::ADDKE2
        | TransformType::ADDKE3
        | TransformType::ADDKE4
        | TransformType::ADDKE5
        | TransformType::ADDKE6
        | TransformType::ADDKE7 => key_exchange(id),
        _ => None,
    }
}

/// Just the [`Status`] of [`classify`].
pub fn status(usage: Usage, ty: TransformType, id: TransformId) -> Option<Status> {
    classify(usage, ty, id).map(|c| c.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(usage: Usage, ty: TransformType, id: TransformId) -> Status {
        status(usage, ty, id).unwrap_or_else(|| panic!("{usage:?} {ty:?} {id:?}"))
    }

    #[test]
    fn mandatory_algorithms_are_recommended() {
        use TransformType as T;
        for usage in [Usage::Ike, Usage::Esp] {
            assert_eq!(st(usage, T::ENCR, encr::AES_GCM_16), Recommended);
            assert_eq!(st(usage, T::ENCR, encr::AES_CBC), Recommended);
            assert_eq!(st(usage, T::ENCR, encr::CHACHA20_POLY1305), Recommended);
            assert_eq!(st(usage, T::INTEG, integ::HMAC_SHA2_256_128), Recommended);
            assert_eq!(st(usage, T::INTEG, integ::HMAC_SHA2_512_256), Recommended);
        }
        assert_eq!(st(Usage::Ike, T::PRF, prf::HMAC_SHA2_256), Recommended);
        assert_eq!(st(Usage::Ike, T::KE, ke::MODP_2048), Recommended);
        assert_eq!(st(Usage::Ike, T::KE, ke::CURVE25519), Recommended);
    }

    #[test]
    fn legacy_algorithms_are_flagged() {
        use TransformType as T;
        for usage in [Usage::Ike, Usage::Esp] {
            assert_eq!(st(usage, T::ENCR, encr::TRIPLE_DES), Legacy);
            assert_eq!(st(usage, T::INTEG, integ::HMAC_SHA1_96), Legacy);
            assert_eq!(st(usage, T::INTEG, integ::HMAC_MD5_96), Prohibited);
        }
        assert_eq!(st(Usage::Ike, T::PRF, prf::HMAC_SHA1), Legacy);
        assert_eq!(st(Usage::Esp, T::INTEG, integ::AES_XCBC_96), Legacy);
        assert_eq!(st(Usage::Ike, T::INTEG, integ::AES_XCBC_96), Allowed);
        assert_eq!(st(Usage::Ike, T::ENCR, encr::NULL), Prohibited);
        assert_eq!(st(Usage::Esp, T::ENCR, encr::NULL), Allowed);
        assert_eq!(st(Usage::Esp, T::ENCR, encr::DES), Prohibited);
        assert_eq!(st(Usage::Ike, T::KE, ke::MODP_1024), Legacy);
        assert_eq!(st(Usage::Ike, T::ADDKE1, ke::MODP_768), Prohibited);
        assert_eq!(st(Usage::Ike, T::ADDKE1, ke::ML_KEM_768), Allowed);
    }

    /// Every transform the crypto crate implements has a classification, and
    /// none of them is prohibited.
    #[test]
    fn every_implemented_transform_is_classified() {
        use TransformType as T;
        let encrs = [
            encr::AES_GCM_8,
            encr::AES_GCM_12,
            encr::AES_GCM_16,
            encr::AES_CCM_8,
            encr::AES_CCM_12,
            encr::AES_CCM_16,
            encr::CHACHA20_POLY1305,
            encr::AES_CBC,
            encr::AES_CTR,
            encr::TRIPLE_DES,
        ];
        let integs = [
            integ::HMAC_SHA1_96,
            integ::AES_XCBC_96,
            integ::AES_CMAC_96,
            integ::HMAC_SHA2_256_128,
            integ::HMAC_SHA2_384_192,
            integ::HMAC_SHA2_512_256,
        ];
        for usage in [Usage::Ike, Usage::Esp] {
            for e in encrs {
                assert_ne!(st(usage, T::ENCR, e), Prohibited, "{e:?}");
            }
            for i in integs {
                assert_ne!(st(usage, T::INTEG, i), Prohibited, "{i:?}");
            }
        }
        for p in [
            prf::HMAC_SHA1,
            prf::HMAC_SHA2_256,
            prf::HMAC_SHA2_384,
            prf::HMAC_SHA2_512,
            prf::AES128_XCBC,
            prf::AES128_CMAC,
        ] {
            assert!(crate::prf::Prf::from_id(p).is_some());
            assert_ne!(st(Usage::Ike, T::PRF, p), Prohibited);
        }
    }

    /// Agrees with `ke::is_legacy` on every group the crate implements.
    #[test]
    fn key_exchange_matches_ke_module() {
        for id in 0..=64u16 {
            let g = TransformId(id);
            if !crate::ke::is_supported(g) {
                continue;
            }
            let s = st(Usage::Ike, TransformType::KE, g);
            assert_eq!(s == Legacy, crate::ke::is_legacy(g), "{g:?}");
            assert_ne!(s, Prohibited, "{g:?}");
        }
    }

    #[test]
    fn unclassified_is_none() {
        assert_eq!(
            status(Usage::Esp, TransformType::ENCR, TransformId(9999)),
            None
        );
        assert_eq!(status(Usage::Esp, TransformType::ESN, TransformId(1)), None);
        assert_eq!(
            status(Usage::Esp, TransformType::PRF, prf::HMAC_SHA2_256),
            None
        );
    }

    #[test]
    fn classifications_name_their_source() {
        let c = classify(Usage::Esp, TransformType::ENCR, encr::TRIPLE_DES).unwrap();
        assert_eq!((c.requirement, c.source), ("SHOULD NOT", "RFC 8221 §5"));
        assert!(!c.note.is_empty());
        assert_eq!(Status::Legacy.to_string(), "legacy");
        assert!(Status::Recommended < Status::Prohibited);
    }
}
