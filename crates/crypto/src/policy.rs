//! How current each transform is, for `oxisec proposals` and configuration
//! warnings: the requirement levels of RFC 8247 (IKEv2: §2.1 encryption,
//! §2.2 PRF, §2.3 integrity, §2.4 Diffie-Hellman) and RFC 8221 (ESP: §5
//! encryption, §6 authentication), as updated by RFC 9395 (§5, §7), mapped
//! onto four statuses.
//!
//! | status | requirement levels |
//! |---|---|
//! | [`Status::Recommended`] | MUST, SHOULD+, SHOULD (general use) |
//! | [`Status::Allowed`] | MAY; SHOULD only for IoT; not listed (so MAY) |
//! | [`Status::Legacy`] | MUST-, SHOULD NOT; 3DES (see below) |
//! | [`Status::Prohibited`] | MUST NOT; DEPRECATED (RFC 9395) |
//!
//! A transform neither table lists is MAY by default (RFC 8247 §1.3,
//! RFC 8221 §1.2). RFC 9395 §5 deprecates transforms the tables left at that
//! default, and §7 marks them DEPRECATED in the IANA registry, the same mark
//! the registry gives every RFC 8247 MUST NOT; so DEPRECATED maps to
//! Prohibited.
//!
//! Departures from the plain mapping, each noted in the classification:
//! * ENCR_3DES is MAY for IKEv2 (RFC 8247 §2.1) but SHOULD NOT for ESP
//!   (RFC 8221 §5); its 64-bit block makes long-lived SAs vulnerable to
//!   birthday attacks (Sweet32), so it is Legacy in both.
//! * ENCR_NULL is MUST-implement for ESP (RFC 8221 §5) yet gives no
//!   confidentiality: Allowed, never Recommended.
//!
//! The classification is by transform ID only; key sizes are not judged.
//! For AES-CBC and AES-GCM the level holds for 128- and 256-bit keys, 192-bit
//! keys stay at MAY (RFC 8247 §2.1, RFC 8221 §5 note [1]); the IoT SHOULD for
//! AES-CCM-8 holds for 128-bit keys only.
use oxisec_wire::{TransformId, TransformType, encr, integ, ke, prf};

use Status::{Allowed, Legacy, Prohibited, Recommended};

/// Which protocol a transform protects: the same ID can rank differently
/// (ENCR_NULL is MUST for ESP, MUST NOT for IKEv2).
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
    /// MAY, IoT-only SHOULD, or not listed (and so MAY).
    Allowed,
    /// Being phased out: keep only for old peers, and warn.
    Legacy,
    /// MUST NOT be used, or deprecated by RFC 9395.
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
    /// The RFC's requirement level as its table writes it, e.g. `"MUST-"`,
    /// `"SHOULD / MAY"`, `"DEPRECATED"`, or `"not listed"`.
    pub requirement: &'static str,
    /// The section that states it, e.g. `"RFC 8221 §5"`.
    pub source: &'static str,
    /// A qualifier the RFC attaches (IoT, AEAD only, what it prefers
    /// instead), or why the status departs from the plain mapping; empty if
    /// there is none.
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

const IOT: &str = "SHOULD only for IoT interoperability, MAY otherwise";
const UNLISTED_IKE: &str = "not listed, so MAY (RFC 8247 §1.3)";
const UNLISTED_ESP: &str = "not listed, so MAY (RFC 8221 §1.2)";
const SWEET32: &str = "64-bit block: birthday-bound attacks (Sweet32) on long-lived SAs";
const UNSPECIFIED: &str = "no IETF specification; also deprecated by RFC 9395 §5";
const IKEV1_ERA: &str = "IKEv1-era transform, unmentioned by RFC 8221/8247";
const SHA1_DOWN: &str = "downgraded from MUST: SHA-1 is being phased out";

const DEPRECATED: &str = "DEPRECATED";
const RFC9395: &str = "RFC 9395 §5";

// IANA numbers without a named constant in oxisec-wire.
const ENCR_RC5: TransformId = TransformId(4);
const ENCR_IDEA: TransformId = TransformId(5);
const ENCR_CAST: TransformId = TransformId(6);
const ENCR_BLOWFISH: TransformId = TransformId(7);
const ENCR_3IDEA: TransformId = TransformId(8);
const ENCR_DES_IV32: TransformId = TransformId(9);
const PRF_HMAC_TIGER: TransformId = TransformId(3);
const AUTH_DES_MAC: TransformId = TransformId(3);
const AUTH_KPDK_MD5: TransformId = TransformId(4);
const AUTH_HMAC_MD5_128: TransformId = TransformId(6);
const AUTH_HMAC_SHA1_160: TransformId = TransformId(7);
const AUTH_AES_128_GMAC: TransformId = TransformId(9);
const AUTH_AES_192_GMAC: TransformId = TransformId(10);
const AUTH_AES_256_GMAC: TransformId = TransformId(11);
const KE_MODP_1024_S160: TransformId = TransformId(22);
const KE_MODP_2048_S224: TransformId = TransformId(23);
const KE_MODP_2048_S256: TransformId = TransformId(24);

fn encryption(usage: Usage, id: TransformId) -> Option<Classification> {
    const ESP: &str = "RFC 8221 §5";
    const IKE: &str = "RFC 8247 §2.1";
    Some(match (usage, id) {
        // RFC 8221 §5 table.
        (Usage::Esp, encr::AES_GCM_16 | encr::AES_CBC) => c(Recommended, "MUST", ESP, ""),
        (Usage::Esp, encr::CHACHA20_POLY1305) => c(Recommended, "SHOULD", ESP, ""),
        (Usage::Esp, encr::AES_CCM_8) => c(Allowed, "SHOULD", ESP, IOT),
        (Usage::Esp, encr::NULL) => c(
            Allowed,
            "MUST",
            ESP,
            "no confidentiality: for integrity-only ESP in place of AH",
        ),
        (Usage::Esp, encr::TRIPLE_DES) => c(Legacy, "SHOULD NOT", ESP, SWEET32),
        (Usage::Esp, encr::DES) => c(Prohibited, "MUST NOT", ESP, ""),
        (Usage::Esp, ENCR_BLOWFISH) => c(
            Prohibited,
            "MUST NOT",
            ESP,
            "superseded by Twofish; also deprecated by RFC 9395 §5",
        ),
        (Usage::Esp, encr::DES_IV64 | ENCR_3IDEA | ENCR_DES_IV32) => {
            c(Prohibited, "MUST NOT", ESP, UNSPECIFIED)
        }
        (Usage::Esp, encr::NULL_AUTH_AES_GMAC) => c(
            Allowed,
            "not listed",
            "RFC 8221 §6",
            "the form of AES-GMAC §6 recommends for ESP; not in the §5 table, so MAY",
        ),
        (
            Usage::Esp,
            encr::AES_GCM_8
            | encr::AES_GCM_12
            | encr::AES_CCM_12
            | encr::AES_CCM_16
            | encr::AES_CTR,
        ) => c(Allowed, "not listed", ESP, UNLISTED_ESP),

        // RFC 8247 §2.1 table and the text below it.
        (Usage::Ike, encr::AES_CBC) => c(Recommended, "MUST", IKE, ""),
        (Usage::Ike, encr::CHACHA20_POLY1305 | encr::AES_GCM_16) => {
            c(Recommended, "SHOULD", IKE, "")
        }
        (Usage::Ike, encr::AES_CCM_8) => c(Allowed, "SHOULD", IKE, IOT),
        (Usage::Ike, encr::AES_GCM_8 | encr::AES_GCM_12) => c(
            Allowed,
            "MAY",
            IKE,
            "the 8- and 12-octet ICVs stay at MAY (text under the table)",
        ),
        (Usage::Ike, encr::AES_CCM_12 | encr::AES_CCM_16 | encr::AES_CTR) => {
            c(Allowed, "not listed", IKE, UNLISTED_IKE)
        }
        (Usage::Ike, encr::TRIPLE_DES) => c(Legacy, "MAY", IKE, SWEET32),
        (Usage::Ike, encr::DES) => c(Prohibited, "MUST NOT", IKE, ""),
        (Usage::Ike, encr::NULL) => c(
            Prohibited,
            "MUST NOT",
            IKE,
            "RFC 7296 §5 forbids it: the SK payload is always encrypted",
        ),
        (Usage::Ike, encr::DES_IV64 | ENCR_BLOWFISH | ENCR_3IDEA | ENCR_DES_IV32) => {
            c(Prohibited, DEPRECATED, RFC9395, IKEV1_ERA)
        }

        // Deprecated for both by RFC 9395 §5; neither table lists them.
        (_, ENCR_RC5 | ENCR_IDEA | ENCR_CAST) => c(Prohibited, DEPRECATED, RFC9395, IKEV1_ERA),
        _ => return None,
    })
}

fn integrity(usage: Usage, id: TransformId) -> Option<Classification> {
    let src = match usage {
        Usage::Esp => "RFC 8221 §6",
        Usage::Ike => "RFC 8247 §2.3",
    };
    let unlisted = match usage {
        Usage::Esp => UNLISTED_ESP,
        Usage::Ike => UNLISTED_IKE,
    };
    Some(match (usage, id) {
        (Usage::Esp, integ::HMAC_SHA2_256_128) => c(
            Recommended,
            "MUST",
            src,
            "§6 prefers HMAC-SHA2-512-256: some peers wrongly truncate this one to 96 bits",
        ),
        (Usage::Ike, integ::HMAC_SHA2_256_128) => c(Recommended, "MUST", src, ""),
        (_, integ::HMAC_SHA2_512_256) => c(Recommended, "SHOULD", src, ""),
        (_, integ::HMAC_SHA2_384_192 | integ::AES_CMAC_96) => {
            c(Allowed, "not listed", src, unlisted)
        }
        (_, integ::HMAC_SHA1_96) => c(Legacy, "MUST-", src, SHA1_DOWN),
        (Usage::Esp, integ::AES_XCBC_96) => c(Allowed, "SHOULD / MAY", src, IOT),
        (Usage::Ike, integ::AES_XCBC_96) => c(Allowed, "SHOULD", src, IOT),
        (Usage::Esp, AUTH_AES_128_GMAC | AUTH_AES_256_GMAC) => c(
            Allowed,
            "MAY",
            src,
            "meant for AH; ESP should use ENCR_NULL_AUTH_AES_GMAC",
        ),
        (Usage::Esp, AUTH_AES_192_GMAC) => c(
            Allowed,
            "MAY",
            src,
            "kept at MAY with the 128/256 variants (text under the table); meant for AH",
        ),
        (_, integ::HMAC_MD5_96 | AUTH_DES_MAC | AUTH_KPDK_MD5) => {
            c(Prohibited, "MUST NOT", src, "")
        }
        (_, AUTH_HMAC_MD5_128) => c(Prohibited, DEPRECATED, RFC9395, IKEV1_ERA),
        (_, AUTH_HMAC_SHA1_160) => c(
            Prohibited,
            DEPRECATED,
            "RFC 9395 §7",
            "marked DEPRECATED in the IANA registry (Table 3)",
        ),
        (Usage::Esp, integ::NONE) => c(
            Allowed,
            "MUST / MUST NOT",
            src,
            "only with an AEAD cipher, MUST NOT otherwise",
        ),
        (Usage::Ike, integ::NONE) => c(
            Allowed,
            "not listed",
            src,
            "only with an AEAD cipher, which leaves the integrity transform unused",
        ),
        _ => return None,
    })
}

fn pseudorandom(id: TransformId) -> Option<Classification> {
    const SRC: &str = "RFC 8247 §2.2";
    Some(match id {
        prf::HMAC_SHA2_256 => c(Recommended, "MUST", SRC, ""),
        prf::HMAC_SHA2_512 => c(Recommended, "SHOULD+", SRC, ""),
        prf::HMAC_SHA2_384 | prf::AES128_CMAC => c(Allowed, "not listed", SRC, UNLISTED_IKE),
        prf::AES128_XCBC => c(Allowed, "SHOULD", SRC, IOT),
        prf::HMAC_SHA1 => c(Legacy, "MUST-", SRC, SHA1_DOWN),
        prf::HMAC_MD5 => c(Prohibited, "MUST NOT", SRC, ""),
        PRF_HMAC_TIGER => c(Prohibited, DEPRECATED, RFC9395, "no IETF specification"),
        _ => return None,
    })
}

fn key_exchange(id: TransformId) -> Option<Classification> {
    const SRC: &str = "RFC 8247 §2.4";
    Some(match id {
        ke::MODP_2048 => c(Recommended, "MUST", SRC, ""),
        ke::ECP_256 => c(Recommended, "SHOULD", SRC, ""),
        ke::MODP_3072
        | ke::MODP_4096
        | ke::MODP_6144
        | ke::MODP_8192
        | ke::ECP_384
        | ke::ECP_521
        | ke::ECP_256_BP
        | ke::ECP_384_BP
        | ke::ECP_512_BP
        | ke::CURVE25519
        | ke::CURVE448 => c(Allowed, "not listed", SRC, UNLISTED_IKE),
        ke::ML_KEM_512 | ke::ML_KEM_768 | ke::ML_KEM_1024 => c(
            Allowed,
            "not listed",
            SRC,
            "post-quantum; used as an additional key exchange (RFC 9370)",
        ),
        ke::MODP_1024 | ke::MODP_1536 => c(
            Legacy,
            "SHOULD NOT",
            SRC,
            "security margin too narrow against well-funded attackers",
        ),
        KE_MODP_2048_S224 | KE_MODP_2048_S256 => c(
            Legacy,
            "SHOULD NOT",
            SRC,
            "unpublished seeds, small subgroups: the RFC 6989 §2.2 checks are a MUST",
        ),
        ke::MODP_768 => c(Prohibited, "MUST NOT", SRC, ""),
        KE_MODP_1024_S160 => c(
            Prohibited,
            "MUST NOT",
            SRC,
            "1024-bit with unpublished seeds: too weak",
        ),
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
    use TransformType as T;

    fn st(usage: Usage, ty: TransformType, id: TransformId) -> Status {
        status(usage, ty, id).unwrap_or_else(|| panic!("{usage:?} {ty:?} {id:?}"))
    }

    fn cl(usage: Usage, ty: TransformType, id: u16) -> Classification {
        classify(usage, ty, TransformId(id)).unwrap_or_else(|| panic!("{usage:?} {ty:?} {id}"))
    }

    /// Checks each row of an RFC table: (IANA number, Status column).
    fn table(usage: Usage, ty: TransformType, source: &str, rows: &[(u16, &str)]) {
        for &(id, level) in rows {
            let got = cl(usage, ty, id);
            assert_eq!(
                (got.requirement, got.source),
                (level, source),
                "{ty:?} {id}"
            );
        }
    }

    /// RFC 8247 §2.1-§2.4, the tables row by row.
    #[test]
    fn rfc8247_tables() {
        let ike = Usage::Ike;
        table(
            ike,
            T::ENCR,
            "RFC 8247 §2.1",
            &[
                (12, "MUST"),     // ENCR_AES_CBC
                (28, "SHOULD"),   // ENCR_CHACHA20_POLY1305
                (20, "SHOULD"),   // ENCR_AES_GCM_16
                (14, "SHOULD"),   // ENCR_AES_CCM_8 (IoT)
                (3, "MAY"),       // ENCR_3DES
                (2, "MUST NOT"),  // ENCR_DES
                (11, "MUST NOT"), // ENCR_NULL
            ],
        );
        table(
            ike,
            T::PRF,
            "RFC 8247 §2.2",
            &[
                (5, "MUST"),     // PRF_HMAC_SHA2_256
                (7, "SHOULD+"),  // PRF_HMAC_SHA2_512
                (2, "MUST-"),    // PRF_HMAC_SHA1
                (4, "SHOULD"),   // PRF_AES128_XCBC (IoT)
                (1, "MUST NOT"), // PRF_HMAC_MD5
            ],
        );
        table(
            ike,
            T::INTEG,
            "RFC 8247 §2.3",
            &[
                (12, "MUST"),    // AUTH_HMAC_SHA2_256_128
                (14, "SHOULD"),  // AUTH_HMAC_SHA2_512_256
                (2, "MUST-"),    // AUTH_HMAC_SHA1_96
                (5, "SHOULD"),   // AUTH_AES_XCBC_96 (IoT)
                (1, "MUST NOT"), // AUTH_HMAC_MD5_96
                (3, "MUST NOT"), // AUTH_DES_MAC
                (4, "MUST NOT"), // AUTH_KPDK_MD5
            ],
        );
        table(
            ike,
            T::KE,
            "RFC 8247 §2.4",
            &[
                (14, "MUST"),
                (19, "SHOULD"),
                (5, "SHOULD NOT"),
                (2, "SHOULD NOT"),
                (1, "MUST NOT"),
                (22, "MUST NOT"),
                (23, "SHOULD NOT"),
                (24, "SHOULD NOT"),
            ],
        );
        // Named in the text, not the table: the short GCM ICVs stay at MAY.
        assert_eq!(cl(ike, T::ENCR, 18).requirement, "MAY");
        assert_eq!(cl(ike, T::ENCR, 19).requirement, "MAY");
    }

    /// RFC 8221 §5 and §6, the tables row by row.
    #[test]
    fn rfc8221_tables() {
        let esp = Usage::Esp;
        table(
            esp,
            T::ENCR,
            "RFC 8221 §5",
            &[
                (1, "MUST NOT"),   // ENCR_DES_IV64
                (2, "MUST NOT"),   // ENCR_DES
                (3, "SHOULD NOT"), // ENCR_3DES
                (7, "MUST NOT"),   // ENCR_BLOWFISH
                (8, "MUST NOT"),   // ENCR_3IDEA
                (9, "MUST NOT"),   // ENCR_DES_IV32
                (11, "MUST"),      // ENCR_NULL
                (12, "MUST"),      // ENCR_AES_CBC
                (14, "SHOULD"),    // ENCR_AES_CCM_8 (IoT)
                (20, "MUST"),      // ENCR_AES_GCM_16
                (28, "SHOULD"),    // ENCR_CHACHA20_POLY1305
            ],
        );
        table(
            esp,
            T::INTEG,
            "RFC 8221 §6",
            &[
                (0, "MUST / MUST NOT"), // AUTH_NONE, AEAD-only
                (1, "MUST NOT"),        // AUTH_HMAC_MD5_96
                (2, "MUST-"),           // AUTH_HMAC_SHA1_96
                (3, "MUST NOT"),        // AUTH_DES_MAC
                (4, "MUST NOT"),        // AUTH_KPDK_MD5
                (5, "SHOULD / MAY"),    // AUTH_AES_XCBC_96 (IoT)
                (9, "MAY"),             // AUTH_AES_128_GMAC
                (11, "MAY"),            // AUTH_AES_256_GMAC
                (12, "MUST"),           // AUTH_HMAC_SHA2_256_128
                (14, "SHOULD"),         // AUTH_HMAC_SHA2_512_256
            ],
        );
    }

    /// RFC 9395 §5 and §7: transforms the tables left at MAY by silence are
    /// deprecated for both protocols.
    #[test]
    fn rfc9395_deprecations_are_prohibited() {
        for usage in [Usage::Ike, Usage::Esp] {
            for id in [4, 5, 6] {
                let c = cl(usage, T::ENCR, id);
                assert_eq!(
                    (c.status, c.requirement, c.source),
                    (Prohibited, "DEPRECATED", "RFC 9395 §5")
                );
            }
            for id in [1, 7, 8, 9] {
                assert_eq!(cl(usage, T::ENCR, id).status, Prohibited, "{usage:?} {id}");
            }
            let c = cl(usage, T::INTEG, 6);
            assert_eq!((c.status, c.source), (Prohibited, "RFC 9395 §5"));
            let c = cl(usage, T::INTEG, 7);
            assert_eq!((c.status, c.source), (Prohibited, "RFC 9395 §7"));
        }
        // For IKEv2 only RFC 9395 speaks of the old ciphers; RFC 8221 had
        // already forbidden them for ESP.
        assert_eq!(cl(Usage::Ike, T::ENCR, 7).source, "RFC 9395 §5");
        assert_eq!(cl(Usage::Esp, T::ENCR, 7).source, "RFC 8221 §5");
        let c = cl(Usage::Ike, T::PRF, 3);
        assert_eq!((c.status, c.requirement), (Prohibited, "DEPRECATED"));
    }

    #[test]
    fn mandatory_algorithms_are_recommended() {
        for usage in [Usage::Ike, Usage::Esp] {
            assert_eq!(st(usage, T::ENCR, encr::AES_GCM_16), Recommended);
            assert_eq!(st(usage, T::ENCR, encr::AES_CBC), Recommended);
            assert_eq!(st(usage, T::ENCR, encr::CHACHA20_POLY1305), Recommended);
            assert_eq!(st(usage, T::INTEG, integ::HMAC_SHA2_256_128), Recommended);
            assert_eq!(st(usage, T::INTEG, integ::HMAC_SHA2_512_256), Recommended);
        }
        assert_eq!(st(Usage::Ike, T::PRF, prf::HMAC_SHA2_256), Recommended);
        assert_eq!(st(Usage::Ike, T::PRF, prf::HMAC_SHA2_512), Recommended);
        assert_eq!(st(Usage::Ike, T::KE, ke::MODP_2048), Recommended);
        assert_eq!(st(Usage::Ike, T::KE, ke::ECP_256), Recommended);
    }

    #[test]
    fn unlisted_and_iot_transforms_are_allowed() {
        for usage in [Usage::Ike, Usage::Esp] {
            assert_eq!(st(usage, T::ENCR, encr::AES_CCM_8), Allowed);
            assert_eq!(st(usage, T::ENCR, encr::AES_CTR), Allowed);
            assert_eq!(st(usage, T::INTEG, integ::AES_XCBC_96), Allowed);
            assert_eq!(st(usage, T::INTEG, integ::HMAC_SHA2_384_192), Allowed);
        }
        // RFC 8247 §2.4 lists only groups 14 and 19 as MUST/SHOULD.
        for g in [ke::CURVE25519, ke::CURVE448, ke::ECP_384, ke::MODP_3072] {
            let c = classify(Usage::Ike, T::KE, g).unwrap();
            assert_eq!((c.status, c.requirement), (Allowed, "not listed"), "{g:?}");
        }
        assert_eq!(st(Usage::Ike, T::PRF, prf::AES128_XCBC), Allowed);
        assert_eq!(st(Usage::Esp, T::ENCR, encr::NULL), Allowed);
        assert_eq!(st(Usage::Esp, T::ENCR, encr::NULL_AUTH_AES_GMAC), Allowed);
    }

    #[test]
    fn legacy_algorithms_are_flagged() {
        for usage in [Usage::Ike, Usage::Esp] {
            assert_eq!(st(usage, T::ENCR, encr::TRIPLE_DES), Legacy);
            assert_eq!(st(usage, T::INTEG, integ::HMAC_SHA1_96), Legacy);
            assert_eq!(st(usage, T::INTEG, integ::HMAC_MD5_96), Prohibited);
            assert_eq!(st(usage, T::ENCR, encr::DES), Prohibited);
        }
        assert_eq!(st(Usage::Ike, T::PRF, prf::HMAC_SHA1), Legacy);
        assert_eq!(st(Usage::Ike, T::ENCR, encr::NULL), Prohibited);
        assert_eq!(st(Usage::Ike, T::KE, ke::MODP_1024), Legacy);
        assert_eq!(st(Usage::Ike, T::KE, ke::MODP_1536), Legacy);
        assert_eq!(st(Usage::Ike, T::KE, KE_MODP_2048_S256), Legacy);
        assert_eq!(st(Usage::Ike, T::KE, KE_MODP_1024_S160), Prohibited);
        assert_eq!(st(Usage::Ike, T::ADDKE1, ke::MODP_768), Prohibited);
        assert_eq!(st(Usage::Ike, T::ADDKE1, ke::ML_KEM_768), Allowed);
    }

    /// The plain mapping holds everywhere except the two documented
    /// departures (3DES for IKEv2, NULL for ESP).
    #[test]
    fn status_follows_the_mapping() {
        for usage in [Usage::Ike, Usage::Esp] {
            for ty in [T::ENCR, T::PRF, T::INTEG, T::KE] {
                for id in 0..=64 {
                    let Some(c) = classify(usage, ty, TransformId(id)) else {
                        continue;
                    };
                    assert!(c.source.starts_with("RFC "), "{c:?}");
                    let departure = (usage, ty, TransformId(id))
                        == (Usage::Ike, T::ENCR, encr::TRIPLE_DES)
                        || (usage, ty, TransformId(id)) == (Usage::Esp, T::ENCR, encr::NULL);
                    if departure {
                        assert!(!c.note.is_empty());
                        continue;
                    }
                    let iot = c.note == IOT;
                    let expected = match c.requirement {
                        "MUST" | "SHOULD+" if !iot => Recommended,
                        "SHOULD" if !iot => Recommended,
                        "SHOULD" | "SHOULD / MAY" | "MAY" | "not listed" | "MUST / MUST NOT" => {
                            Allowed
                        }
                        "MUST-" | "SHOULD NOT" => Legacy,
                        "MUST NOT" | "DEPRECATED" => Prohibited,
                        other => panic!("unexpected level {other:?}"),
                    };
                    assert_eq!(c.status, expected, "{usage:?} {ty:?} {id}: {c:?}");
                }
            }
        }
    }

    /// Every transform the crypto crate implements has a classification, and
    /// none of them is prohibited.
    #[test]
    fn every_implemented_transform_is_classified() {
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
