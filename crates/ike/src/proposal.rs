//! Proposals: strongSwan's keyword syntax (`aes128gcm16-prfsha256-x25519`),
//! conversion to SA payload proposals, and selection (RFC 7296 §2.7, §3.3.6).
use std::fmt;

use oxisec_crypto::policy::{self, Usage};
use oxisec_wire::{
    self as wire, ProtocolId, Transform, TransformId, TransformType, encr, esn, integ, ke, prf,
};

/// One algorithm named by a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Algorithm {
    pub ty: TransformType,
    pub id: TransformId,
    pub key_bits: Option<u16>,
}

struct Keyword {
    name: &'static str,
    alg: Algorithm,
    aead: bool,
}

const fn kw(
    name: &'static str,
    ty: TransformType,
    id: TransformId,
    key_bits: Option<u16>,
    aead: bool,
) -> Keyword {
    Keyword {
        name,
        alg: Algorithm { ty, id, key_bits },
        aead,
    }
}

const E: TransformType = TransformType::ENCR;
const I: TransformType = TransformType::INTEG;
const P: TransformType = TransformType::PRF;
const K: TransformType = TransformType::KE;
const N: TransformType = TransformType::ESN;

/// strongSwan's proposal keywords that oxisec knows, with aliases (the
/// names of strongSwan's `proposal_keywords_static.txt`, so that a proposal
/// string pasted from `swanctl.conf` means the same here).
static KEYWORDS: &[Keyword] = &[
    kw("aes128", E, encr::AES_CBC, Some(128), false),
    kw("aes192", E, encr::AES_CBC, Some(192), false),
    kw("aes256", E, encr::AES_CBC, Some(256), false),
    kw("aes", E, encr::AES_CBC, Some(128), false),
    kw("aes128ctr", E, encr::AES_CTR, Some(128), false),
    kw("aes192ctr", E, encr::AES_CTR, Some(192), false),
    kw("aes256ctr", E, encr::AES_CTR, Some(256), false),
    kw("aes128gcm16", E, encr::AES_GCM_16, Some(128), true),
    kw("aes128gcm128", E, encr::AES_GCM_16, Some(128), true),
    kw("aes192gcm16", E, encr::AES_GCM_16, Some(192), true),
    kw("aes192gcm128", E, encr::AES_GCM_16, Some(192), true),
    kw("aes256gcm16", E, encr::AES_GCM_16, Some(256), true),
    kw("aes256gcm128", E, encr::AES_GCM_16, Some(256), true),
    kw("aes128gcm12", E, encr::AES_GCM_12, Some(128), true),
    kw("aes128gcm96", E, encr::AES_GCM_12, Some(128), true),
    kw("aes192gcm12", E, encr::AES_GCM_12, Some(192), true),
    kw("aes192gcm96", E, encr::AES_GCM_12, Some(192), true),
    kw("aes256gcm12", E, encr::AES_GCM_12, Some(256), true),
    kw("aes256gcm96", E, encr::AES_GCM_12, Some(256), true),
    kw("aes128gcm8", E, encr::AES_GCM_8, Some(128), true),
    kw("aes128gcm64", E, encr::AES_GCM_8, Some(128), true),
    kw("aes192gcm8", E, encr::AES_GCM_8, Some(192), true),
    kw("aes192gcm64", E, encr::AES_GCM_8, Some(192), true),
    kw("aes256gcm8", E, encr::AES_GCM_8, Some(256), true),
    kw("aes256gcm64", E, encr::AES_GCM_8, Some(256), true),
    kw("aes128ccm16", E, encr::AES_CCM_16, Some(128), true),
    kw("aes128ccm128", E, encr::AES_CCM_16, Some(128), true),
    kw("aes192ccm16", E, encr::AES_CCM_16, Some(192), true),
    kw("aes192ccm128", E, encr::AES_CCM_16, Some(192), true),
    kw("aes256ccm16", E, encr::AES_CCM_16, Some(256), true),
    kw("aes256ccm128", E, encr::AES_CCM_16, Some(256), true),
    kw("aes128ccm12", E, encr::AES_CCM_12, Some(128), true),
    kw("aes128ccm96", E, encr::AES_CCM_12, Some(128), true),
    kw("aes192ccm12", E, encr::AES_CCM_12, Some(192), true),
    kw("aes192ccm96", E, encr::AES_CCM_12, Some(192), true),
    kw("aes256ccm12", E, encr::AES_CCM_12, Some(256), true),
    kw("aes256ccm96", E, encr::AES_CCM_12, Some(256), true),
    kw("aes128ccm8", E, encr::AES_CCM_8, Some(128), true),
    kw("aes128ccm64", E, encr::AES_CCM_8, Some(128), true),
    kw("aes192ccm8", E, encr::AES_CCM_8, Some(192), true),
    kw("aes192ccm64", E, encr::AES_CCM_8, Some(192), true),
    kw("aes256ccm8", E, encr::AES_CCM_8, Some(256), true),
    kw("aes256ccm64", E, encr::AES_CCM_8, Some(256), true),
    kw("chacha20poly1305", E, encr::CHACHA20_POLY1305, None, true),
    kw("3des", E, encr::TRIPLE_DES, None, false),
    kw("null", E, encr::NULL, None, false),
    kw("sha256", I, integ::HMAC_SHA2_256_128, None, false),
    kw("sha2_256", I, integ::HMAC_SHA2_256_128, None, false),
    kw("sha384", I, integ::HMAC_SHA2_384_192, None, false),
    kw("sha2_384", I, integ::HMAC_SHA2_384_192, None, false),
    kw("sha512", I, integ::HMAC_SHA2_512_256, None, false),
    kw("sha2_512", I, integ::HMAC_SHA2_512_256, None, false),
    kw("sha1", I, integ::HMAC_SHA1_96, None, false),
    kw("sha", I, integ::HMAC_SHA1_96, None, false),
    kw("aesxcbc", I, integ::AES_XCBC_96, None, false),
    kw("aescmac", I, integ::AES_CMAC_96, None, false),
    kw("prfsha256", P, prf::HMAC_SHA2_256, None, false),
    kw("prfsha384", P, prf::HMAC_SHA2_384, None, false),
    kw("prfsha512", P, prf::HMAC_SHA2_512, None, false),
    kw("prfsha1", P, prf::HMAC_SHA1, None, false),
    kw("prfaesxcbc", P, prf::AES128_XCBC, None, false),
    kw("prfaescmac", P, prf::AES128_CMAC, None, false),
    kw("modp2048", K, ke::MODP_2048, None, false),
    kw("modp3072", K, ke::MODP_3072, None, false),
    kw("modp4096", K, ke::MODP_4096, None, false),
    kw("modp6144", K, ke::MODP_6144, None, false),
    kw("modp8192", K, ke::MODP_8192, None, false),
    kw("modp1536", K, ke::MODP_1536, None, false),
    kw("modp1024", K, ke::MODP_1024, None, false),
    kw("ecp256", K, ke::ECP_256, None, false),
    kw("ecp384", K, ke::ECP_384, None, false),
    kw("ecp521", K, ke::ECP_521, None, false),
    kw("ecp256bp", K, ke::ECP_256_BP, None, false),
    kw("ecp384bp", K, ke::ECP_384_BP, None, false),
    kw("ecp512bp", K, ke::ECP_512_BP, None, false),
    kw("curve25519", K, ke::CURVE25519, None, false),
    kw("x25519", K, ke::CURVE25519, None, false),
    kw("curve448", K, ke::CURVE448, None, false),
    kw("x448", K, ke::CURVE448, None, false),
    kw("mlkem512", K, ke::ML_KEM_512, None, false),
    kw("mlkem768", K, ke::ML_KEM_768, None, false),
    kw("mlkem1024", K, ke::ML_KEM_1024, None, false),
    kw("none", K, ke::NONE, None, false),
    kw("esn", N, esn::YES, None, false),
    kw("noesn", N, esn::NO, None, false),
];

/// strongSwan keywords oxisec deliberately does not implement, with the
/// reason, so that a pasted legacy proposal fails with an explanation rather
/// than "unknown keyword".
static REFUSED: &[(&str, &str)] = &[
    (
        "des",
        "DES is prohibited (RFC 8221 §5 and RFC 8247 §2.1: MUST NOT)",
    ),
    (
        "md5",
        "HMAC-MD5-96 is prohibited (RFC 8221 §6 and RFC 8247 §2.3: MUST NOT)",
    ),
    ("md5_128", "HMAC-MD5-128 is deprecated (RFC 9395 §5)"),
    (
        "prfmd5",
        "PRF_HMAC_MD5 is prohibited (RFC 8247 §2.2: MUST NOT)",
    ),
    (
        "modp768",
        "MODP-768 is prohibited (RFC 8247 §2.4: MUST NOT)",
    ),
    (
        "modp1024s160",
        "MODP-1024 with a 160-bit subgroup is prohibited (RFC 8247 §2.4: MUST NOT)",
    ),
    (
        "modp2048s224",
        "the MODP groups with prime-order subgroups (23, 24) are legacy (RFC 8247 §2.4: SHOULD NOT) and not implemented; use modp2048",
    ),
    (
        "modp2048s256",
        "the MODP groups with prime-order subgroups (23, 24) are legacy (RFC 8247 §2.4: SHOULD NOT) and not implemented; use modp2048",
    ),
    (
        "ecp224",
        "ECP-224 (group 26) is not implemented; use ecp256",
    ),
    (
        "ecp192",
        "ECP-192 (group 25) is not implemented; use ecp256",
    ),
    (
        "ecp224bp",
        "brainpoolP224r1 (group 27) is not implemented; use ecp256bp",
    ),
    ("blowfish", "Blowfish is deprecated (RFC 9395 §5)"),
    ("cast128", "CAST is deprecated (RFC 9395 §5)"),
    (
        "camellia",
        "Camellia is not implemented; use aes or chacha20poly1305",
    ),
    (
        "aes128gmac",
        "AES-GMAC (ENCR_NULL_AUTH_AES_GMAC) is not implemented yet; use aes128gcm16",
    ),
    (
        "aes256gmac",
        "AES-GMAC (ENCR_NULL_AUTH_AES_GMAC) is not implemented yet; use aes256gcm16",
    ),
];

/// Every keyword oxisec accepts, in table order, for `oxisec proposals`.
pub fn keywords() -> impl Iterator<Item = (&'static str, Algorithm)> {
    KEYWORDS.iter().map(|k| (k.name, k.alg))
}

fn lookup(name: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|k| k.name == name)
}

/// The number of additional key exchanges (ADDKE1..ADDKE7, RFC 9370).
pub const ADDKE_TYPES: usize = 7;

/// `ke1_mlkem768` → (0, ML-KEM-768): strongSwan 6's keywords for the
/// additional key exchanges; `keN_none` makes ADDKE N optional.
fn lookup_addke(word: &str) -> Option<(usize, Algorithm)> {
    let rest = word.strip_prefix("ke")?;
    let (n, name) = rest.split_once('_')?;
    let n: usize = n.parse().ok()?;
    if !(1..=ADDKE_TYPES).contains(&n) {
        return None;
    }
    let k = lookup(name).filter(|k| k.alg.ty == TransformType::KE)?;
    let ty = TransformType(TransformType::ADDKE1.0 + n as u8 - 1);
    Some((
        n - 1,
        Algorithm {
            ty,
            id: k.alg.id,
            key_bits: None,
        },
    ))
}

/// The PRF strongSwan derives from an integrity keyword when an IKE proposal
/// names none.
fn prf_for_integ(id: TransformId) -> Option<TransformId> {
    match id {
        integ::HMAC_SHA2_256_128 => Some(prf::HMAC_SHA2_256),
        integ::HMAC_SHA2_384_192 => Some(prf::HMAC_SHA2_384),
        integ::HMAC_SHA2_512_256 => Some(prf::HMAC_SHA2_512),
        integ::HMAC_SHA1_96 => Some(prf::HMAC_SHA1),
        integ::AES_XCBC_96 => Some(prf::AES128_XCBC),
        integ::AES_CMAC_96 => Some(prf::AES128_CMAC),
        _ => None,
    }
}

/// IANA names of the transforms oxisec implements (the registry's names
/// without the ENCR_/AUTH_ prefixes), for logs, `oxisec status` and
/// `oxisec proposals`.
static NAMES: &[(TransformType, TransformId, &str)] = &[
    (E, encr::AES_CBC, "AES_CBC"),
    (E, encr::AES_CTR, "AES_CTR"),
    (E, encr::AES_GCM_16, "AES_GCM_16"),
    (E, encr::AES_GCM_12, "AES_GCM_12"),
    (E, encr::AES_GCM_8, "AES_GCM_8"),
    (E, encr::AES_CCM_16, "AES_CCM_16"),
    (E, encr::AES_CCM_12, "AES_CCM_12"),
    (E, encr::AES_CCM_8, "AES_CCM_8"),
    (E, encr::CHACHA20_POLY1305, "CHACHA20_POLY1305"),
    (E, encr::TRIPLE_DES, "3DES"),
    (E, encr::NULL, "NULL"),
    (I, integ::HMAC_SHA2_256_128, "HMAC_SHA2_256_128"),
    (I, integ::HMAC_SHA2_384_192, "HMAC_SHA2_384_192"),
    (I, integ::HMAC_SHA2_512_256, "HMAC_SHA2_512_256"),
    (I, integ::HMAC_SHA1_96, "HMAC_SHA1_96"),
    (I, integ::AES_XCBC_96, "AES_XCBC_96"),
    (I, integ::AES_CMAC_96, "AES_CMAC_96"),
    (P, prf::HMAC_SHA2_256, "PRF_HMAC_SHA2_256"),
    (P, prf::HMAC_SHA2_384, "PRF_HMAC_SHA2_384"),
    (P, prf::HMAC_SHA2_512, "PRF_HMAC_SHA2_512"),
    (P, prf::HMAC_SHA1, "PRF_HMAC_SHA1"),
    (P, prf::AES128_XCBC, "PRF_AES128_XCBC"),
    (P, prf::AES128_CMAC, "PRF_AES128_CMAC"),
    (K, ke::CURVE25519, "CURVE_25519"),
    (K, ke::CURVE448, "CURVE_448"),
    (K, ke::ECP_256, "ECP_256"),
    (K, ke::ECP_384, "ECP_384"),
    (K, ke::ECP_521, "ECP_521"),
    (K, ke::ECP_256_BP, "ECP_256_BP"),
    (K, ke::ECP_384_BP, "ECP_384_BP"),
    (K, ke::ECP_512_BP, "ECP_512_BP"),
    (K, ke::MODP_1024, "MODP_1024"),
    (K, ke::MODP_1536, "MODP_1536"),
    (K, ke::MODP_2048, "MODP_2048"),
    (K, ke::MODP_3072, "MODP_3072"),
    (K, ke::MODP_4096, "MODP_4096"),
    (K, ke::MODP_6144, "MODP_6144"),
    (K, ke::MODP_8192, "MODP_8192"),
    (K, ke::ML_KEM_512, "ML_KEM_512"),
    (K, ke::ML_KEM_768, "ML_KEM_768"),
    (K, ke::ML_KEM_1024, "ML_KEM_1024"),
    (K, ke::NONE, "NONE"),
    (N, esn::YES, "ESN"),
    (N, esn::NO, "NO_ESN"),
];

/// Human name of a transform for logs and `oxisec status`.
pub fn transform_name(ty: TransformType, id: TransformId, key_bits: Option<u16>) -> String {
    if is_ke_type(ty) && ty != TransformType::KE {
        let n = ty.0 - TransformType::ADDKE1.0 + 1;
        return format!("KE{n}_{}", transform_name(TransformType::KE, id, None));
    }
    let Some(&(_, _, base)) = NAMES.iter().find(|(t, i, _)| *t == ty && *i == id) else {
        return format!("{:?}:{}", ty, id.0);
    };
    match key_bits {
        Some(b) => format!("{base}_{b}"),
        None => base.to_string(),
    }
}

/// Error for proposal strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    #[error("unknown algorithm keyword {keyword:?}{}", suggest(.suggestions))]
    UnknownKeyword {
        keyword: String,
        suggestions: Vec<&'static str>,
    },
    #[error("algorithm keyword {keyword:?} is not supported: {reason}")]
    Refused {
        keyword: String,
        reason: &'static str,
    },
    #[error("{0}")]
    Incomplete(String),
}

fn suggest(s: &[&'static str]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", s.join(", "))
    }
}

/// Edit distance for "did you mean" suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn closest(word: &str) -> Vec<&'static str> {
    let mut scored: Vec<(usize, &'static str)> = KEYWORDS
        .iter()
        .map(|k| (distance(word, k.name), k.name))
        .collect();
    scored.sort();
    scored
        .into_iter()
        .filter(|(d, _)| *d <= 3)
        .take(3)
        .map(|(_, n)| n)
        .collect()
}

/// A proposal as configured: per transform type, the algorithms in preference order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProposalSpec {
    pub encr: Vec<Algorithm>,
    pub integ: Vec<Algorithm>,
    pub prf: Vec<Algorithm>,
    pub ke: Vec<Algorithm>,
    pub esn: Vec<Algorithm>,
    /// Additional key exchanges ADDKE1..ADDKE7 (RFC 9370); an entry with
    /// ID 0 (NONE) makes that exchange optional.
    pub addke: [Vec<Algorithm>; ADDKE_TYPES],
    /// Whether the encryption algorithms are AEAD (all or none may be).
    pub aead: bool,
}

impl ProposalSpec {
    fn parse(s: &str) -> Result<ProposalSpec, ProposalError> {
        let mut spec = ProposalSpec::default();
        let mut aead_seen = None;
        for word in s.trim().split('-') {
            let word = word.trim().to_ascii_lowercase();
            if let Some((i, alg)) = lookup_addke(&word) {
                if !spec.addke[i].contains(&alg) {
                    spec.addke[i].push(alg);
                }
                continue;
            }
            if let Some((_, why)) = REFUSED.iter().find(|(name, _)| *name == word) {
                return Err(ProposalError::Refused {
                    keyword: word.clone(),
                    reason: why,
                });
            }
            let k = lookup(&word).ok_or_else(|| ProposalError::UnknownKeyword {
                suggestions: closest(&word),
                keyword: word.clone(),
            })?;
            if k.alg.ty == TransformType::KE && k.alg.id == ke::NONE {
                return Err(ProposalError::Incomplete(format!(
                    "proposal {s:?}: `none` is only meaningful as keN_none for an additional key exchange"
                )));
            }
            let list = match k.alg.ty {
                TransformType::ENCR => {
                    if aead_seen.is_some_and(|a| a != k.aead) {
                        return Err(ProposalError::Incomplete(format!(
                            "proposal {s:?} mixes AEAD and non-AEAD ciphers; split it into two proposals"
                        )));
                    }
                    aead_seen = Some(k.aead);
                    &mut spec.encr
                }
                TransformType::INTEG => &mut spec.integ,
                TransformType::PRF => &mut spec.prf,
                TransformType::KE => &mut spec.ke,
                _ => &mut spec.esn,
            };
            if !list.contains(&k.alg) {
                list.push(k.alg);
            }
        }
        spec.aead = aead_seen.unwrap_or(false);
        if spec.encr.is_empty() {
            return Err(ProposalError::Incomplete(format!(
                "proposal {s:?} names no encryption algorithm"
            )));
        }
        if spec.aead && !spec.integ.is_empty() {
            return Err(ProposalError::Incomplete(format!(
                "proposal {s:?} combines an AEAD cipher with an integrity algorithm"
            )));
        }
        if !spec.aead && spec.integ.is_empty() {
            return Err(ProposalError::Incomplete(format!(
                "proposal {s:?} needs an integrity algorithm (e.g. sha256)"
            )));
        }
        Ok(spec)
    }

    fn all(&self) -> impl Iterator<Item = &Algorithm> {
        self.encr
            .iter()
            .chain(&self.integ)
            .chain(&self.prf)
            .chain(&self.ke)
            .chain(&self.esn)
            .chain(self.addke.iter().flatten())
    }

    /// Each transform that RFC 8221/8247 rank as legacy or worse, described
    /// for the warning at configuration load ("3DES: legacy, SHOULD NOT
    /// (RFC 8221 §5): 64-bit block ...").
    fn legacy(&self, usage: Usage) -> Vec<String> {
        let mut out = Vec::new();
        for a in self.all() {
            let Some(c) = policy::classify(usage, a.ty, a.id) else {
                continue;
            };
            if c.status < policy::Status::Legacy {
                continue;
            }
            let mut line = format!(
                "{}: {}, {} ({})",
                transform_name(a.ty, a.id, a.key_bits),
                c.status,
                c.requirement,
                c.source
            );
            if !c.note.is_empty() {
                line.push_str(": ");
                line.push_str(c.note);
            }
            if !out.contains(&line) {
                out.push(line);
            }
        }
        out
    }

    /// Whether this proposal asks for any additional key exchange.
    pub fn has_addke(&self) -> bool {
        self.addke.iter().any(|a| !a.is_empty())
    }

    fn fmt_keywords(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .all()
            .map(|a| transform_name(a.ty, a.id, a.key_bits))
            .collect();
        f.write_str(&names.join("/"))
    }

    fn to_wire(
        &self,
        number: u8,
        protocol: ProtocolId,
        spi: Vec<u8>,
        with_ke: bool,
    ) -> wire::Proposal {
        let transforms = self
            .all()
            .filter(|a| with_ke || !is_ke_type(a.ty))
            .map(|a| match a.key_bits {
                Some(b) => Transform::with_key_length(a.ty, a.id, b),
                None => Transform::new(a.ty, a.id),
            })
            .collect();
        wire::Proposal {
            number,
            protocol,
            spi,
            transforms,
        }
    }
}

/// An IKE SA proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeProposal(pub ProposalSpec);

/// An ESP proposal; `ke` holds the PFS groups for CREATE_CHILD_SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspProposal(pub ProposalSpec);

impl IkeProposal {
    /// Parses a strongSwan IKE proposal string; without a `prf*` keyword the
    /// PRFs follow the integrity algorithms, as in strongSwan.
    pub fn parse(s: &str) -> Result<IkeProposal, ProposalError> {
        let mut spec = ProposalSpec::parse(s)?;
        if spec.prf.is_empty() {
            if spec.aead {
                return Err(ProposalError::Incomplete(format!(
                    "IKE proposal {s:?} with an AEAD cipher needs a PRF (e.g. prfsha256)"
                )));
            }
            spec.prf = spec
                .integ
                .iter()
                .filter_map(|a| prf_for_integ(a.id))
                .map(|id| Algorithm {
                    ty: TransformType::PRF,
                    id,
                    key_bits: None,
                })
                .collect();
        }
        if spec.ke.is_empty() {
            return Err(ProposalError::Incomplete(format!(
                "IKE proposal {s:?} names no key exchange (e.g. x25519)"
            )));
        }
        if !spec.esn.is_empty() {
            return Err(ProposalError::Incomplete(format!(
                "IKE proposal {s:?} cannot contain esn/noesn"
            )));
        }
        if spec.encr.iter().any(|a| a.id == encr::NULL) {
            return Err(ProposalError::Incomplete(format!(
                "IKE proposal {s:?}: null encryption is for ESP only; IKE messages are always encrypted (RFC 7296 §3.14)"
            )));
        }
        Ok(IkeProposal(spec))
    }

    /// oxisec's default IKE proposals: AEAD first, then CBC+HMAC for peers
    /// such as Windows; ECDH before MODP (MODP costs ≈ 10 ms CPU here).
    pub fn defaults() -> Vec<IkeProposal> {
        [
            "aes128gcm16-aes256gcm16-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-modp3072-modp2048",
            "aes128-aes256-sha256-sha384-sha512-x25519-ecp256-ecp384-modp3072-modp2048",
        ]
        .iter()
        .map(|s| IkeProposal::parse(s).expect("default IKE proposals parse"))
        .collect()
    }

    /// The SA payload proposal with the given number.
    pub fn to_wire(&self, number: u8, spi: Vec<u8>) -> wire::Proposal {
        self.0.to_wire(number, ProtocolId::IKE, spi, true)
    }

    /// The same proposal without additional key exchanges.
    pub fn without_addke(&self) -> IkeProposal {
        let mut p = self.clone();
        p.0.addke = Default::default();
        p
    }

    /// Legacy transforms in this proposal, one description each: the
    /// configuration loader turns them into warnings.
    pub fn legacy(&self) -> Vec<String> {
        self.0.legacy(Usage::Ike)
    }

    /// The preferred key exchange method: the first one configured.
    pub fn first_ke(&self) -> TransformId {
        self.0.ke[0].id
    }
}

impl EspProposal {
    pub fn parse(s: &str) -> Result<EspProposal, ProposalError> {
        let spec = ProposalSpec::parse(s)?;
        if !spec.prf.is_empty() {
            return Err(ProposalError::Incomplete(format!(
                "ESP proposal {s:?} cannot contain a PRF"
            )));
        }
        Ok(EspProposal(spec))
    }

    /// Legacy transforms in this proposal (PFS groups included), one
    /// description each, for configuration warnings.
    pub fn legacy(&self) -> Vec<String> {
        self.0.legacy(Usage::Esp)
    }

    pub fn defaults() -> Vec<EspProposal> {
        [
            "aes128gcm16-aes256gcm16-chacha20poly1305",
            "aes128-aes256-sha256-sha384-sha512",
        ]
        .iter()
        .map(|s| EspProposal::parse(s).expect("default ESP proposals parse"))
        .collect()
    }

    /// The SA payload proposal; `with_ke` is false in IKE_AUTH, where no KE
    /// payload can accompany it (RFC 7296 §1.2).
    /// The ESN transform type is mandatory in ESP proposals (RFC 7296
    /// §3.3.3): without an explicit `esn`/`noesn` keyword we offer "no ESN".
    pub fn to_wire(&self, number: u8, spi: u32, with_ke: bool) -> wire::Proposal {
        let mut p = self
            .0
            .to_wire(number, ProtocolId::ESP, spi.to_be_bytes().to_vec(), with_ke);
        if self.0.esn.is_empty() {
            p.transforms
                .push(Transform::new(TransformType::ESN, esn::NO));
        }
        p
    }
}

impl fmt::Display for IkeProposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_keywords(f)
    }
}

impl fmt::Display for EspProposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_keywords(f)
    }
}

/// The outcome of selecting from a peer's SA payload: one algorithm per type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The peer's proposal number, echoed in the response.
    pub number: u8,
    /// The peer's SPI from that proposal.
    pub spi: Vec<u8>,
    pub encr: Algorithm,
    pub integ: Option<Algorithm>,
    pub prf: Option<Algorithm>,
    pub ke: Option<Algorithm>,
    pub esn: bool,
    /// One choice per ADDKE type the peer offered, NONE included, in type order.
    pub addke: Vec<Algorithm>,
}

impl Selected {
    /// The single-transform proposal that goes back in the response.
    pub fn to_wire(&self, protocol: ProtocolId, spi: Vec<u8>) -> wire::Proposal {
        let mut transforms = vec![match self.encr.key_bits {
            Some(b) => Transform::with_key_length(TransformType::ENCR, self.encr.id, b),
            None => Transform::new(TransformType::ENCR, self.encr.id),
        }];
        for a in [self.prf, self.integ, self.ke].into_iter().flatten() {
            transforms.push(Transform::new(a.ty, a.id));
        }
        for a in &self.addke {
            transforms.push(Transform::new(a.ty, a.id));
        }
        if protocol != ProtocolId::IKE {
            let id = if self.esn { esn::YES } else { esn::NO };
            transforms.push(Transform::new(TransformType::ESN, id));
        }
        wire::Proposal {
            number: self.number,
            protocol,
            spi,
            transforms,
        }
    }

    /// The additional key exchanges to perform, in type order (NONE skipped).
    pub fn pending_addke(&self) -> Vec<TransformId> {
        self.addke
            .iter()
            .filter(|a| a.id != ke::NONE)
            .map(|a| a.id)
            .collect()
    }

    /// A "/"-joined description for logs and status.
    pub fn describe(&self) -> String {
        let mut parts = vec![transform_name(
            self.encr.ty,
            self.encr.id,
            self.encr.key_bits,
        )];
        for a in [self.integ, self.prf, self.ke].into_iter().flatten() {
            parts.push(transform_name(a.ty, a.id, a.key_bits));
        }
        for a in self.addke.iter().filter(|a| a.id != ke::NONE) {
            parts.push(transform_name(a.ty, a.id, None));
        }
        if self.esn {
            parts.push("ESN".into());
        }
        parts.join("/")
    }
}

/// KE and the additional key exchange types.
fn is_ke_type(ty: TransformType) -> bool {
    ty == TransformType::KE || (TransformType::ADDKE1.0..=TransformType::ADDKE7.0).contains(&ty.0)
}

/// Transform types a proposal of `protocol` may contain that we understand.
fn known_type(protocol: ProtocolId, ty: TransformType) -> bool {
    match protocol {
        ProtocolId::IKE => {
            matches!(
                ty,
                TransformType::ENCR | TransformType::PRF | TransformType::INTEG
            ) || is_ke_type(ty)
        }
        _ => {
            matches!(
                ty,
                TransformType::ENCR | TransformType::INTEG | TransformType::ESN
            ) || is_ke_type(ty)
        }
    }
}

/// RFC 9370 §2.2.2: one method per ADDKE type the peer offers, in our
/// order of preference, never the same method twice (NONE excepted). A
/// type the peer omits counts as NONE, acceptable only if we allow NONE;
/// a type the peer offers that we do not want is acceptable only with NONE.
fn select_addke(
    ours: &ProposalSpec,
    theirs: &wire::Proposal,
    ke: Option<Algorithm>,
) -> Option<Vec<Algorithm>> {
    let mut chosen = Vec::new();
    let mut used: Vec<TransformId> = ke.iter().map(|a| a.id).collect();
    for (i, wanted) in ours.addke.iter().enumerate() {
        let ty = TransformType(TransformType::ADDKE1.0 + i as u8);
        let allows_none = wanted.is_empty() || wanted.iter().any(|a| a.id == ke::NONE);
        if !offers_type(theirs, ty) {
            if allows_none {
                continue;
            }
            return None;
        }
        let none = Algorithm {
            ty,
            id: ke::NONE,
            key_bits: None,
        };
        if wanted.is_empty() {
            offers(theirs, ty, ke::NONE).then_some(())?;
            chosen.push(none);
            continue;
        }
        let pick = wanted
            .iter()
            .copied()
            .find(|a| (a.id == ke::NONE || !used.contains(&a.id)) && offers(theirs, ty, a.id))?;
        if pick.id != ke::NONE {
            used.push(pick.id);
        }
        chosen.push(pick);
    }
    Some(chosen)
}

/// Our first algorithm of `ours` that the peer's proposal also offers.
fn pick(ours: &[Algorithm], theirs: &wire::Proposal) -> Option<Algorithm> {
    ours.iter().copied().find(|a| {
        theirs
            .transforms
            .iter()
            .any(|t| t.ty == a.ty && t.id == a.id && t.key_length() == a.key_bits)
    })
}

fn offers_type(p: &wire::Proposal, ty: TransformType) -> bool {
    p.transforms.iter().any(|t| t.ty == ty)
}

fn offers(p: &wire::Proposal, ty: TransformType, id: TransformId) -> bool {
    p.transforms.iter().any(|t| t.ty == ty && t.id == id)
}

/// Whether the peer's proposal is one we could ever accept structurally: a
/// proposal containing a transform type we do not understand must be rejected
/// unless that type offers NONE (RFC 7296 §3.3.6, RFC 9370 §2.2.1).
fn structurally_acceptable(protocol: ProtocolId, p: &wire::Proposal) -> bool {
    p.transforms
        .iter()
        .filter(|t| !known_type(protocol, t.ty))
        .all(|t| offers(p, t.ty, TransformId(0)))
}

fn select_one(
    ours: &ProposalSpec,
    theirs: &wire::Proposal,
    protocol: ProtocolId,
    skip_ke: bool,
) -> Option<Selected> {
    if theirs.protocol != protocol || !structurally_acceptable(protocol, theirs) {
        return None;
    }
    let encr = pick(&ours.encr, theirs)?;
    let integ = if ours.aead {
        // An AEAD proposal may carry INTEG NONE and nothing else.
        let only_none = theirs
            .transforms
            .iter()
            .filter(|t| t.ty == TransformType::INTEG)
            .all(|t| t.id == integ::NONE);
        if !only_none {
            return None;
        }
        None
    } else {
        Some(pick(&ours.integ, theirs)?)
    };
    let prf = if protocol == ProtocolId::IKE {
        Some(pick(&ours.prf, theirs)?)
    } else {
        None
    };
    let ke = if skip_ke {
        None
    } else if protocol == ProtocolId::IKE || !ours.ke.is_empty() {
        Some(pick(&ours.ke, theirs)?)
    } else if offers_type(theirs, TransformType::KE) && !offers(theirs, TransformType::KE, ke::NONE)
    {
        // The peer insists on PFS and we have none configured.
        return None;
    } else {
        None
    };
    let esn = if protocol == ProtocolId::IKE || !offers_type(theirs, TransformType::ESN) {
        false
    } else {
        let want: Vec<TransformId> = if ours.esn.is_empty() {
            vec![esn::NO]
        } else {
            ours.esn.iter().map(|a| a.id).collect()
        };
        let got = want
            .into_iter()
            .find(|id| offers(theirs, TransformType::ESN, *id))?;
        got == esn::YES
    };
    let addke = if skip_ke {
        Vec::new()
    } else {
        select_addke(ours, theirs, ke)?
    };
    Some(Selected {
        number: theirs.number,
        spi: theirs.spi.clone(),
        encr,
        integ,
        prf,
        ke,
        esn,
        addke,
    })
}

/// Selects our most preferred proposal that the peer offers (our order
/// first, as strongSwan's default `prefer_configured_proposals`).
/// `skip_ke` ignores KE transforms (for the CHILD_SA of IKE_AUTH).
pub fn select(
    ours: &[ProposalSpec],
    theirs: &[wire::Proposal],
    protocol: ProtocolId,
    skip_ke: bool,
) -> Option<Selected> {
    ours.iter().find_map(|o| {
        theirs
            .iter()
            .find_map(|t| select_one(o, t, protocol, skip_ke))
    })
}

/// Selection for an IKE SA where the initiator already sent a KE payload for
/// `offered_group`: prefer a selection using that group to avoid an
/// INVALID_KE_PAYLOAD round trip, else the first acceptable selection.
pub fn select_ike(
    ours: &[IkeProposal],
    theirs: &[wire::Proposal],
    offered_group: TransformId,
) -> Option<Selected> {
    let specs: Vec<ProposalSpec> = ours.iter().map(|p| p.0.clone()).collect();
    let with_group: Vec<ProposalSpec> = specs
        .iter()
        .filter(|s| s.ke.iter().any(|a| a.id == offered_group))
        .map(|s| {
            let mut s = s.clone();
            s.ke.retain(|a| a.id == offered_group);
            s
        })
        .collect();
    select(&with_group, theirs, ProtocolId::IKE, false)
        .or_else(|| select(&specs, theirs, ProtocolId::IKE, false))
}

/// Validates that a response's single proposal is one of ours (initiator side).
pub fn accept_response(
    ours: &[ProposalSpec],
    response: &[wire::Proposal],
    protocol: ProtocolId,
    skip_ke: bool,
) -> Option<Selected> {
    if response.len() != 1 {
        return None;
    }
    let r = &response[0];
    // Every transform type may occur at most once in a response.
    let mut seen: Vec<TransformType> = Vec::new();
    for t in &r.transforms {
        if seen.contains(&t.ty) {
            return None;
        }
        seen.push(t.ty);
    }
    select(ours, response, protocol, skip_ke)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ike(s: &str) -> IkeProposal {
        IkeProposal::parse(s).unwrap()
    }

    #[test]
    fn parses_strongswan_keywords() {
        let p = ike("aes128gcm16-prfsha256-x25519");
        assert_eq!(p.0.encr[0].id, encr::AES_GCM_16);
        assert_eq!(p.0.encr[0].key_bits, Some(128));
        assert_eq!(p.0.prf[0].id, prf::HMAC_SHA2_256);
        assert_eq!(p.0.ke[0].id, ke::CURVE25519);
        assert!(p.0.aead);
        let p = ike("aes256-sha256-modp2048");
        assert_eq!(p.0.encr[0].key_bits, Some(256));
        assert_eq!(p.0.integ[0].id, integ::HMAC_SHA2_256_128);
        assert_eq!(
            p.0.prf[0].id,
            prf::HMAC_SHA2_256,
            "PRF derived from integrity"
        );
        let e = EspProposal::parse("chacha20poly1305").unwrap();
        assert_eq!(e.0.encr[0].id, encr::CHACHA20_POLY1305);
        // Group 30 is accepted (it used to be refused), with no warning.
        let p = ike("aes256gcm16-prfsha512-ecp512bp");
        assert_eq!(p.0.ke[0].id, ke::ECP_512_BP);
        assert!(p.legacy().is_empty());
    }

    #[test]
    fn rejects_incomplete_and_unknown() {
        assert!(matches!(
            IkeProposal::parse("aes128gcm16-x25519"),
            Err(ProposalError::Incomplete(_))
        ));
        assert!(matches!(
            IkeProposal::parse("aes128-prfsha256-x25519"),
            Err(ProposalError::Incomplete(_))
        ));
        assert!(matches!(
            IkeProposal::parse("aes128gcm16-prfsha256"),
            Err(ProposalError::Incomplete(_))
        ));
        assert!(matches!(
            IkeProposal::parse("aes128gcm16-sha256-prfsha256-x25519"),
            Err(ProposalError::Incomplete(_))
        ));
        match IkeProposal::parse("aes128gcm16-prfsha265-x25519") {
            Err(ProposalError::UnknownKeyword {
                keyword,
                suggestions,
            }) => {
                assert_eq!(keyword, "prfsha265");
                assert!(suggestions.contains(&"prfsha256"), "{suggestions:?}");
            }
            other => panic!("{other:?}"),
        }
        assert!(EspProposal::parse("aes128gcm16-prfsha256").is_err());
    }

    #[test]
    fn selects_in_our_order_and_echoes_number() {
        let ours = vec![
            ike("aes256gcm16-prfsha384-ecp384").0,
            ike("aes128gcm16-prfsha256-x25519").0,
        ];
        let theirs = vec![
            ike("aes128gcm16-prfsha256-x25519").to_wire(1, vec![]),
            ike("aes256gcm16-prfsha384-ecp384").to_wire(2, vec![]),
        ];
        let s = select(&ours, &theirs, ProtocolId::IKE, false).unwrap();
        assert_eq!(s.number, 2);
        assert_eq!(s.encr.key_bits, Some(256));
    }

    #[test]
    fn key_length_must_match() {
        let ours = vec![ike("aes256-sha256-modp2048").0];
        let theirs = vec![ike("aes128-sha256-modp2048").to_wire(1, vec![])];
        assert_eq!(select(&ours, &theirs, ProtocolId::IKE, false), None);
    }

    #[test]
    fn prefers_the_group_already_sent() {
        let ours = vec![ike("aes128gcm16-prfsha256-x25519-modp2048")];
        let theirs = vec![ike("aes128gcm16-prfsha256-modp2048-x25519").to_wire(1, vec![])];
        let s = select_ike(&ours, &theirs, ke::MODP_2048).unwrap();
        assert_eq!(s.ke.unwrap().id, ke::MODP_2048);
        let s = select_ike(&ours, &theirs, ke::ECP_384).unwrap();
        assert_eq!(s.ke.unwrap().id, ke::CURVE25519);
    }

    #[test]
    fn esp_pfs_and_esn_rules() {
        let no_pfs = vec![EspProposal::parse("aes128gcm16").unwrap().0];
        let pfs = EspProposal::parse("aes128gcm16-modp2048").unwrap();
        // Peer insists on PFS, we have none: no match unless skipping KE (IKE_AUTH).
        let theirs = vec![pfs.to_wire(1, 0x1234_5678, true)];
        assert_eq!(select(&no_pfs, &theirs, ProtocolId::ESP, false), None);
        let s = select(&no_pfs, &theirs, ProtocolId::ESP, true).unwrap();
        assert_eq!(s.spi, vec![0x12, 0x34, 0x56, 0x78]);
        assert!(!s.esn);
        // ESN: peer offers only ESN, we only no-ESN by default.
        let esn_only = vec![
            EspProposal::parse("aes128gcm16-esn")
                .unwrap()
                .to_wire(1, 1, false),
        ];
        assert_eq!(select(&no_pfs, &esn_only, ProtocolId::ESP, true), None);
        let both = vec![
            EspProposal::parse("aes128gcm16-esn-noesn")
                .unwrap()
                .to_wire(1, 1, false),
        ];
        assert!(!select(&no_pfs, &both, ProtocolId::ESP, true).unwrap().esn);
    }

    #[test]
    fn rejects_unknown_transform_types_without_none() {
        let ours = vec![ike("aes128gcm16-prfsha256-x25519").0];
        let mut p = ike("aes128gcm16-prfsha256-x25519").to_wire(1, vec![]);
        p.transforms
            .push(Transform::new(TransformType::ADDKE1, ke::ML_KEM_768));
        assert_eq!(
            select(&ours, std::slice::from_ref(&p), ProtocolId::IKE, false),
            None
        );
        p.transforms
            .push(Transform::new(TransformType::ADDKE1, TransformId(0)));
        assert!(select(&ours, &[p], ProtocolId::IKE, false).is_some());
    }

    #[test]
    fn response_must_be_single_and_ours() {
        let ours = vec![ike("aes128gcm16-prfsha256-x25519").0];
        let good = ike("aes128gcm16-prfsha256-x25519").to_wire(1, vec![]);
        assert!(
            accept_response(&ours, std::slice::from_ref(&good), ProtocolId::IKE, false).is_some()
        );
        let multi = ike("aes128gcm16-prfsha256-x25519-ecp256").to_wire(1, vec![]);
        assert!(accept_response(&ours, &[multi], ProtocolId::IKE, false).is_none());
        assert!(accept_response(&ours, &[good.clone(), good], ProtocolId::IKE, false).is_none());
    }

    #[test]
    fn esp_proposals_always_carry_an_esn_transform() {
        let p = EspProposal::parse("aes128gcm16")
            .unwrap()
            .to_wire(1, 0x1000, false);
        assert!(
            p.transforms
                .iter()
                .any(|t| t.ty == TransformType::ESN && t.id == esn::NO)
        );
        let p = EspProposal::parse("aes128gcm16-esn")
            .unwrap()
            .to_wire(1, 0x1000, false);
        let esns: Vec<_> = p
            .transforms
            .iter()
            .filter(|t| t.ty == TransformType::ESN)
            .collect();
        assert_eq!(esns.len(), 1);
        assert_eq!(esns[0].id, esn::YES);
    }

    #[test]
    fn additional_key_exchanges_parse_and_negotiate() {
        let p = ike("aes256gcm16-prfsha384-x25519-ke1_mlkem768");
        assert_eq!(
            p.0.addke[0],
            vec![Algorithm {
                ty: TransformType::ADDKE1,
                id: ke::ML_KEM_768,
                key_bits: None
            }]
        );
        assert!(p.0.has_addke());
        let w = p.to_wire(1, vec![]);
        assert!(
            w.transforms
                .iter()
                .any(|t| t.ty == TransformType::ADDKE1 && t.id == ke::ML_KEM_768)
        );
        // Same on both sides: ADDKE1 selected.
        let s = select(
            std::slice::from_ref(&p.0),
            std::slice::from_ref(&w),
            ProtocolId::IKE,
            false,
        )
        .unwrap();
        assert_eq!(s.pending_addke(), vec![ke::ML_KEM_768]);
        assert!(
            s.to_wire(ProtocolId::IKE, vec![])
                .transforms
                .iter()
                .any(|t| t.ty == TransformType::ADDKE1)
        );
        // A responder without ADDKE rejects a proposal that requires it…
        let plain = ike("aes256gcm16-prfsha384-x25519");
        assert_eq!(
            select(
                std::slice::from_ref(&plain.0),
                std::slice::from_ref(&w),
                ProtocolId::IKE,
                false
            ),
            None
        );
        // …but accepts it when the initiator allows NONE, and does no extra exchange.
        let optional = ike("aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none").to_wire(1, vec![]);
        let s = select(
            std::slice::from_ref(&plain.0),
            &[optional],
            ProtocolId::IKE,
            false,
        )
        .unwrap();
        assert!(s.pending_addke().is_empty());
        // An initiator that requires ADDKE1 refuses a response without it; one that allows NONE takes it.
        let answer = plain.to_wire(1, vec![]);
        assert_eq!(
            accept_response(
                std::slice::from_ref(&p.0),
                std::slice::from_ref(&answer),
                ProtocolId::IKE,
                false
            ),
            None
        );
        let lenient = ike("aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none");
        assert!(accept_response(&[lenient.0], &[answer], ProtocolId::IKE, false).is_some());
        // Never the same method twice.
        let twice =
            ike("aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_mlkem768").to_wire(1, vec![]);
        let ours = ike("aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke2_mlkem768");
        assert_eq!(select(&[ours.0], &[twice], ProtocolId::IKE, false), None);
        assert!(IkeProposal::parse("aes256gcm16-prfsha384-x25519-ke8_mlkem768").is_err());
        assert!(IkeProposal::parse("aes256gcm16-prfsha384-none").is_err());
    }

    #[test]
    fn defaults_parse_and_exclude_legacy() {
        for p in IkeProposal::defaults() {
            assert!(!p.0.ke.iter().any(|a| a.id == ke::MODP_1024));
        }
        assert_eq!(EspProposal::defaults().len(), 2);
    }

    /// Every keyword names something the crypto crate implements, so a
    /// proposal that parses can also be negotiated; and every transform has
    /// a name for status output.
    #[test]
    fn every_keyword_is_implemented_and_named() {
        use oxisec_crypto::esp_cipher::EspSuite;
        use oxisec_crypto::ike_cipher::IkeSuite;
        use oxisec_crypto::prf::Prf;
        let integs: Vec<_> = keywords()
            .filter(|(_, a)| a.ty == TransformType::INTEG)
            .map(|(_, a)| a.id)
            .collect();
        for (name, a) in keywords() {
            assert!(
                !transform_name(a.ty, a.id, a.key_bits).contains(':'),
                "{name} has no name"
            );
            match a.ty {
                TransformType::ENCR => {
                    let aead = lookup(name).unwrap().aead;
                    let partners: Vec<Option<TransformId>> = if aead {
                        vec![None]
                    } else {
                        integs.iter().map(|&i| Some(i)).collect()
                    };
                    for integ in partners {
                        let esp = EspSuite {
                            encr: a.id,
                            encr_key_bits: a.key_bits,
                            integ,
                            esn: false,
                        };
                        assert!(esp.validate().is_ok(), "ESP {name} {integ:?}");
                        let ike = IkeSuite {
                            encr: a.id,
                            encr_key_bits: a.key_bits,
                            integ,
                        };
                        assert_eq!(ike.validate().is_ok(), a.id != encr::NULL, "IKE {name}");
                    }
                }
                TransformType::PRF => assert!(Prf::from_id(a.id).is_some(), "{name}"),
                TransformType::INTEG => {
                    assert!(
                        prf_for_integ(a.id).is_some(),
                        "{name} has no PRF to follow it"
                    )
                }
                TransformType::KE if a.id != ke::NONE => {
                    assert!(oxisec_crypto::ke::is_supported(a.id), "{name}")
                }
                _ => {}
            }
        }
        for (word, _) in REFUSED {
            assert!(
                lookup(word).is_none(),
                "{word} is both accepted and refused"
            );
        }
    }

    #[test]
    fn strongswan_legacy_keywords_parse_with_warnings() {
        let p = ike("3des-sha1-modp1024");
        assert_eq!(p.0.prf[0].id, prf::HMAC_SHA1);
        let warnings = p.legacy();
        assert_eq!(
            warnings.len(),
            4,
            "3DES, SHA-1 twice, MODP-1024: {warnings:?}"
        );
        assert!(warnings.iter().any(|w| w.starts_with("3DES: legacy")));
        assert!(warnings.iter().any(|w| w.starts_with("MODP_1024: legacy")));
        assert!(ike("aes256-sha256-modp2048").legacy().is_empty());
        assert!(
            ike("aes128gcm16-prfsha256-x25519-ke1_mlkem768")
                .legacy()
                .is_empty()
        );

        let esp = EspProposal::parse("null-sha256").unwrap();
        assert!(esp.legacy().is_empty(), "NULL is allowed for ESP");
        assert!(IkeProposal::parse("null-sha256-x25519").is_err());
        let esp = EspProposal::parse("aes128-aesxcbc").unwrap();
        assert!(
            esp.legacy().is_empty(),
            "AES-XCBC is MAY for ESP (RFC 8221 §6)"
        );
        assert!(ike("aes128-aesxcbc-x25519").legacy().is_empty());
        assert_eq!(ike("aes128-aescmac-curve448").0.prf[0].id, prf::AES128_CMAC);
        assert_eq!(
            ike("aes128ccm12-prfaesxcbc-ecp256bp").0.encr[0].id,
            encr::AES_CCM_12
        );
    }

    #[test]
    fn prohibited_keywords_explain_themselves() {
        for (word, what) in [
            ("des", "prohibited"),
            ("md5", "MD5"),
            ("modp768", "MUST NOT"),
        ] {
            let err = IkeProposal::parse(&format!("aes128-sha256-x25519-{word}")).unwrap_err();
            assert!(matches!(err, ProposalError::Refused { .. }), "{err:?}");
            assert!(err.to_string().contains(what), "{err}");
        }
    }
}
