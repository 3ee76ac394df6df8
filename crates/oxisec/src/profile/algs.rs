//! Which of the gateway's proposals a native client can be told to send.
//!
//! The IKEv2 clients of Apple and Windows offer exactly one set of
//! algorithms, configured in the profile; if the gateway's proposals do not
//! contain that set, the connection fails with NO_PROPOSAL_CHOSEN and no
//! useful message on the device. So the profile generator picks, in the
//! gateway's order of preference (proposal by proposal, transform by
//! transform), the first combination the platform can express, and refuses
//! to write a profile when there is none.
//!
//! Facts used (from the vendors' documentation):
//! * Apple, `VPN.IKEv2.IKESecurityAssociationParameters` /
//!   `ChildSecurityAssociationParameters` (developer.apple.com, Device
//!   Management, VPN.IKEv2): EncryptionAlgorithm `DES`, `3DES`, `AES-128`,
//!   `AES-256`, `AES-128-GCM`, `AES-256-GCM`, `ChaCha20Poly1305`;
//!   IntegrityAlgorithm `SHA1-96`, `SHA1-160`, `SHA2-256`, `SHA2-384`,
//!   `SHA2-512`; DiffieHellmanGroup as the IANA number (1, 2, 5, 14–21, 31,
//!   32). NetworkExtension's `NEVPNIKEv2SecurityAssociationParameters`
//!   says the IKE PRF "will be inferred based on the integrity algorithm",
//!   so for IKE the integrity name also selects the PRF (and is the PRF
//!   alone with an AEAD cipher).
//! * Windows, `Set-VpnConnectionIPsecConfiguration` (learn.microsoft.com,
//!   VpnClient module): EncryptionMethod (IKE) `DES`, `DES3`, `AES128`,
//!   `AES192`, `AES256`, `GCMAES128`, `GCMAES256`; IntegrityCheckMethod
//!   (IKE, also the PRF) `MD5`, `SHA1`, `SHA256`, `SHA384`; DHGroup `None`,
//!   `Group1`, `Group2`, `Group14`, `ECP256`, `ECP384`, `Group24`;
//!   CipherTransformConstants (ESP) `DES`, `DES3`, `AES128`, `AES192`,
//!   `AES256`, `GCMAES128`, `GCMAES192`, `GCMAES256`, `None`;
//!   AuthenticationTransformConstants (ESP) `MD596`, `SHA196`, `SHA256128`,
//!   `GCMAES128`, `GCMAES192`, `GCMAES256`, `None`; PfsGroup `None`,
//!   `PFS1`, `PFS2`, `PFS2048`, `ECP256`, `ECP384`, `PFSMM`, `PFS24`.
//!   Group1/PFS1 (768-bit MODP) and Group24 (RFC 5114 MODP) are not
//!   implemented by oxisec and never chosen.
//!
//! Both clients send a 16-octet ICV with AES-GCM (`aes*gcm16`) and do not
//! negotiate extended sequence numbers, so ESP proposals that insist on ESN
//! are skipped; proposals that require an additional key exchange (RFC
//! 9370) are skipped too.
use oxisec_ike::proposal::{Algorithm, ProposalSpec};
use oxisec_ike::{EspProposal, IkeProposal};
use oxisec_wire::{TransformId, encr, esn, integ, ke, prf};

/// The IKE SA parameters of an Apple profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppleIke {
    pub encryption: &'static str,
    pub integrity: &'static str,
    pub dh_group: u16,
}

/// The CHILD SA parameters of an Apple profile. `pfs_group` is `None` when
/// the gateway accepts rekeys without a key exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppleChild {
    pub encryption: &'static str,
    pub integrity: &'static str,
    pub pfs_group: Option<u16>,
}

/// The six values of `Set-VpnConnectionIPsecConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsSuite {
    pub encryption_method: &'static str,
    pub integrity_check_method: &'static str,
    pub dh_group: &'static str,
    pub cipher_transform: &'static str,
    pub authentication_transform: &'static str,
    pub pfs_group: &'static str,
}

/// Why no suite could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{platform} cannot be configured for the gateway's {what} proposals ({proposals}): {hint}")]
pub struct NoMatch {
    pub platform: &'static str,
    pub what: &'static str,
    pub proposals: String,
    pub hint: &'static str,
}

fn apple_encr(a: &Algorithm) -> Option<&'static str> {
    match (a.id, a.key_bits) {
        (encr::AES_CBC, Some(128)) => Some("AES-128"),
        (encr::AES_CBC, Some(256)) => Some("AES-256"),
        (encr::AES_GCM_16, Some(128)) => Some("AES-128-GCM"),
        (encr::AES_GCM_16, Some(256)) => Some("AES-256-GCM"),
        (encr::CHACHA20_POLY1305, _) => Some("ChaCha20Poly1305"),
        (encr::TRIPLE_DES, _) => Some("3DES"),
        _ => None,
    }
}

fn apple_integ(id: TransformId) -> Option<&'static str> {
    match id {
        integ::HMAC_SHA1_96 => Some("SHA1-96"),
        integ::HMAC_SHA2_256_128 => Some("SHA2-256"),
        integ::HMAC_SHA2_384_192 => Some("SHA2-384"),
        integ::HMAC_SHA2_512_256 => Some("SHA2-512"),
        _ => None,
    }
}

/// The PRF a client derives from an integrity choice (HMAC with the same hash).
fn prf_of_integ(id: TransformId) -> Option<TransformId> {
    match id {
        integ::HMAC_SHA1_96 => Some(prf::HMAC_SHA1),
        integ::HMAC_SHA2_256_128 => Some(prf::HMAC_SHA2_256),
        integ::HMAC_SHA2_384_192 => Some(prf::HMAC_SHA2_384),
        integ::HMAC_SHA2_512_256 => Some(prf::HMAC_SHA2_512),
        _ => None,
    }
}

/// The integrity algorithm whose hash a PRF uses (for AEAD IKE proposals,
/// where Apple and Windows name the PRF through the integrity setting).
fn integ_of_prf(id: TransformId) -> Option<TransformId> {
    match id {
        prf::HMAC_SHA1 => Some(integ::HMAC_SHA1_96),
        prf::HMAC_SHA2_256 => Some(integ::HMAC_SHA2_256_128),
        prf::HMAC_SHA2_384 => Some(integ::HMAC_SHA2_384_192),
        prf::HMAC_SHA2_512 => Some(integ::HMAC_SHA2_512_256),
        _ => None,
    }
}

fn apple_dh(id: TransformId) -> Option<u16> {
    match id {
        ke::MODP_1024
        | ke::MODP_1536
        | ke::MODP_2048
        | ke::MODP_3072
        | ke::MODP_4096
        | ke::MODP_6144
        | ke::MODP_8192
        | ke::ECP_256
        | ke::ECP_384
        | ke::ECP_521
        | ke::CURVE25519
        | ke::CURVE448 => Some(id.0),
        _ => None,
    }
}

fn win_ike_encr(a: &Algorithm) -> Option<&'static str> {
    match (a.id, a.key_bits) {
        (encr::AES_CBC, Some(128)) => Some("AES128"),
        (encr::AES_CBC, Some(192)) => Some("AES192"),
        (encr::AES_CBC, Some(256)) => Some("AES256"),
        (encr::AES_GCM_16, Some(128)) => Some("GCMAES128"),
        (encr::AES_GCM_16, Some(256)) => Some("GCMAES256"),
        (encr::TRIPLE_DES, _) => Some("DES3"),
        _ => None,
    }
}

fn win_ike_integ(id: TransformId) -> Option<&'static str> {
    match id {
        integ::HMAC_SHA1_96 => Some("SHA1"),
        integ::HMAC_SHA2_256_128 => Some("SHA256"),
        integ::HMAC_SHA2_384_192 => Some("SHA384"),
        _ => None,
    }
}

fn win_dh(id: TransformId) -> Option<&'static str> {
    match id {
        ke::MODP_1024 => Some("Group2"),
        ke::MODP_2048 => Some("Group14"),
        ke::ECP_256 => Some("ECP256"),
        ke::ECP_384 => Some("ECP384"),
        _ => None,
    }
}

fn win_pfs(id: TransformId) -> Option<&'static str> {
    match id {
        ke::MODP_1024 => Some("PFS2"),
        ke::MODP_2048 => Some("PFS2048"),
        ke::ECP_256 => Some("ECP256"),
        ke::ECP_384 => Some("ECP384"),
        _ => None,
    }
}

/// ESP cipher and the matching authentication transform (the same GCM
/// constant for AEAD).
fn win_esp_encr(a: &Algorithm) -> Option<&'static str> {
    match (a.id, a.key_bits) {
        (encr::AES_CBC, Some(128)) => Some("AES128"),
        (encr::AES_CBC, Some(192)) => Some("AES192"),
        (encr::AES_CBC, Some(256)) => Some("AES256"),
        (encr::AES_GCM_16, Some(128)) => Some("GCMAES128"),
        (encr::AES_GCM_16, Some(192)) => Some("GCMAES192"),
        (encr::AES_GCM_16, Some(256)) => Some("GCMAES256"),
        (encr::TRIPLE_DES, _) => Some("DES3"),
        _ => None,
    }
}

fn win_esp_integ(id: TransformId) -> Option<&'static str> {
    match id {
        integ::HMAC_SHA1_96 => Some("SHA196"),
        integ::HMAC_SHA2_256_128 => Some("SHA256128"),
        _ => None,
    }
}

/// Proposals that need an additional key exchange cannot be met by a client
/// that sends none.
fn needs_addke(p: &ProposalSpec) -> bool {
    p.addke
        .iter()
        .any(|list| !list.is_empty() && !list.iter().any(|a| a.id == ke::NONE))
}

/// Proposals that accept "no ESN" (an absent ESN list means no ESN here).
fn accepts_no_esn(p: &ProposalSpec) -> bool {
    p.esn.is_empty() || p.esn.iter().any(|a| a.id == esn::NO)
}

/// A rekey without a key exchange is accepted when the proposal lists no
/// group or lists `none`.
fn pfs_optional(p: &ProposalSpec) -> bool {
    p.ke.is_empty() || p.ke.iter().any(|a| a.id == ke::NONE)
}

/// For one IKE proposal: the first (encryption, integrity-or-PRF, DH) the
/// mapping functions accept, where integrity implies its HMAC PRF.
fn pick_ike<E: Copy, I: Copy, D: Copy>(
    p: &ProposalSpec,
    map_encr: impl Fn(&Algorithm) -> Option<E>,
    map_integ: impl Fn(TransformId) -> Option<I>,
    map_dh: impl Fn(TransformId) -> Option<D>,
) -> Option<(E, I, D)> {
    if needs_addke(p) {
        return None;
    }
    let dh = p.ke.iter().find_map(|a| map_dh(a.id))?;
    for e in &p.encr {
        let Some(enc) = map_encr(e) else { continue };
        let integ = if p.aead {
            p.prf
                .iter()
                .find_map(|f| integ_of_prf(f.id).and_then(&map_integ))
        } else {
            p.integ.iter().find_map(|i| {
                let has_prf = prf_of_integ(i.id).is_some_and(|f| p.prf.iter().any(|x| x.id == f));
                if has_prf { map_integ(i.id) } else { None }
            })
        };
        if let Some(integ) = integ {
            return Some((enc, integ, dh));
        }
    }
    None
}

/// The strongSwan keyword of one algorithm (the first alias in oxisec's
/// keyword table, which uses strongSwan's names).
fn keyword(a: &Algorithm) -> Option<&'static str> {
    oxisec_ike::proposal::keywords()
        .find(|(_, k)| k.ty == a.ty && k.id == a.id && k.key_bits == a.key_bits)
        .map(|(name, _)| name)
}

/// A proposal in strongSwan's syntax (`aes256gcm16-prfsha384-ecp384`), the
/// form the strongSwan app, NetworkManager-strongswan and oxisec's own
/// configuration read: encryption, integrity, PRF, key exchange, ESN, then
/// additional key exchanges as `keN_name` (RFC 9370).
pub fn strongswan(p: &ProposalSpec) -> String {
    let mut words: Vec<String> = p
        .encr
        .iter()
        .chain(&p.integ)
        .chain(&p.prf)
        .chain(&p.ke)
        .chain(&p.esn)
        .filter_map(|a| keyword(a).map(str::to_owned))
        .collect();
    for (i, list) in p.addke.iter().enumerate() {
        for a in list {
            // Additional key exchanges carry their own transform types
            // (ADDKE1..7) but use the KE keywords.
            let as_ke = Algorithm {
                ty: oxisec_wire::TransformType::KE,
                ..*a
            };
            let name = if a.id == ke::NONE {
                Some("none")
            } else {
                keyword(&as_ke)
            };
            if let Some(name) = name {
                words.push(format!("ke{}_{name}", i + 1));
            }
        }
    }
    words.join("-")
}

/// strongSwan syntax of an IKE proposal.
pub fn ike_keywords(p: &IkeProposal) -> String {
    strongswan(&p.0)
}

/// strongSwan syntax of an ESP proposal.
pub fn esp_keywords(p: &EspProposal) -> String {
    strongswan(&p.0)
}

/// Access to the spec of either kind of proposal, for messages.
trait Spec {
    fn spec(&self) -> &ProposalSpec;
}
impl Spec for IkeProposal {
    fn spec(&self) -> &ProposalSpec {
        &self.0
    }
}
impl Spec for EspProposal {
    fn spec(&self) -> &ProposalSpec {
        &self.0
    }
}

fn list<T: Spec>(ps: &[T]) -> String {
    ps.iter()
        .map(|p| strongswan(p.spec()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Apple's IKE SA parameters for the gateway's IKE proposals.
pub fn apple_ike(proposals: &[IkeProposal]) -> Result<AppleIke, NoMatch> {
    proposals
        .iter()
        .find_map(|p| pick_ike(&p.0, apple_encr, apple_integ, apple_dh))
        .map(|(encryption, integrity, dh_group)| AppleIke {
            encryption,
            integrity,
            dh_group,
        })
        .ok_or_else(|| NoMatch {
            platform: "Apple (macOS/iOS)",
            what: "IKE",
            proposals: list(proposals),
            hint: "accept e.g. aes256gcm16-prfsha256-ecp256 or aes256-sha256-modp2048 as well",
        })
}

/// Apple's CHILD SA parameters; `ike` supplies the integrity name Apple
/// wants even with an AEAD cipher (where it is not sent).
pub fn apple_child(proposals: &[EspProposal], ike: &AppleIke) -> Result<AppleChild, NoMatch> {
    for p in proposals {
        let p = &p.0;
        if needs_addke(p) || !accepts_no_esn(p) {
            continue;
        }
        let pfs_group = if pfs_optional(p) {
            None
        } else {
            match p.ke.iter().find_map(|a| apple_dh(a.id)) {
                Some(g) => Some(g),
                None => continue,
            }
        };
        for e in &p.encr {
            let Some(encryption) = apple_encr(e) else {
                continue;
            };
            let integrity = if p.aead {
                Some(ike.integrity)
            } else {
                p.integ.iter().find_map(|i| apple_integ(i.id))
            };
            if let Some(integrity) = integrity {
                return Ok(AppleChild {
                    encryption,
                    integrity,
                    pfs_group,
                });
            }
        }
    }
    Err(NoMatch {
        platform: "Apple (macOS/iOS)",
        what: "ESP",
        proposals: list(proposals),
        hint: "accept e.g. aes256gcm16 or aes256-sha256 without ESN",
    })
}

/// The Windows `Set-VpnConnectionIPsecConfiguration` values.
pub fn windows(ike: &[IkeProposal], esp: &[EspProposal]) -> Result<WindowsSuite, NoMatch> {
    let (encryption_method, integrity_check_method, dh_group) = ike
        .iter()
        .find_map(|p| pick_ike(&p.0, win_ike_encr, win_ike_integ, win_dh))
        .ok_or_else(|| NoMatch {
            platform: "Windows",
            what: "IKE",
            proposals: list(ike),
            hint: "Windows offers only AES-CBC/AES-GCM with SHA-1/SHA-256/SHA-384 and MODP-1024/2048 or ECP-256/384; accept e.g. aes256gcm16-prfsha384-ecp384",
        })?;
    for p in esp {
        let p = &p.0;
        if needs_addke(p) || !accepts_no_esn(p) {
            continue;
        }
        let pfs_group = if pfs_optional(p) {
            "None"
        } else {
            match p.ke.iter().find_map(|a| win_pfs(a.id)) {
                Some(g) => g,
                None => continue,
            }
        };
        for e in &p.encr {
            let Some(cipher) = win_esp_encr(e) else {
                continue;
            };
            let auth = if p.aead {
                Some(cipher)
            } else {
                p.integ.iter().find_map(|i| win_esp_integ(i.id))
            };
            if let Some(auth) = auth {
                return Ok(WindowsSuite {
                    encryption_method,
                    integrity_check_method,
                    dh_group,
                    cipher_transform: cipher,
                    authentication_transform: auth,
                    pfs_group,
                });
            }
        }
    }
    Err(NoMatch {
        platform: "Windows",
        what: "ESP",
        proposals: list(esp),
        hint: "Windows offers only AES-CBC with SHA-1/SHA-256 or AES-GCM-16, without ESN; accept e.g. aes256gcm16",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ike(s: &[&str]) -> Vec<IkeProposal> {
        s.iter().map(|p| IkeProposal::parse(p).unwrap()).collect()
    }
    fn esp(s: &[&str]) -> Vec<EspProposal> {
        s.iter().map(|p| EspProposal::parse(p).unwrap()).collect()
    }

    #[test]
    fn apple_defaults() {
        let i = apple_ike(&IkeProposal::defaults()).unwrap();
        assert_eq!(
            i,
            AppleIke {
                encryption: "AES-128-GCM",
                integrity: "SHA2-256",
                dh_group: 31
            }
        );
        let c = apple_child(&EspProposal::defaults(), &i).unwrap();
        assert_eq!(c.encryption, "AES-128-GCM");
        assert_eq!(c.pfs_group, None);
    }

    #[test]
    fn apple_cbc_needs_matching_prf() {
        // sha256 integrity but only a SHA-384 PRF: Apple would use
        // PRF-HMAC-SHA-256, which the gateway does not accept.
        assert!(apple_ike(&ike(&["aes256-sha256-prfsha384-ecp384"])).is_err());
        let i = apple_ike(&ike(&["aes256-sha384-ecp384"])).unwrap();
        assert_eq!(
            (i.encryption, i.integrity, i.dh_group),
            ("AES-256", "SHA2-384", 20)
        );
        // AES-192 is not offered by Apple: the next cipher is taken.
        let i = apple_ike(&ike(&["aes192-aes256-sha256-modp2048"])).unwrap();
        assert_eq!(i.encryption, "AES-256");
        // Brainpool only: refused with the proposals in the message.
        let e = apple_ike(&ike(&["aes256-sha256-ecp256bp"])).unwrap_err();
        assert!(e.to_string().contains("ecp256bp"), "{e}");
    }

    #[test]
    fn apple_child_pfs_and_esn() {
        let i = apple_ike(&ike(&["aes256gcm16-prfsha384-ecp384"])).unwrap();
        assert_eq!(i.integrity, "SHA2-384");
        let c = apple_child(&esp(&["aes256gcm16-ecp384"]), &i).unwrap();
        assert_eq!(c.pfs_group, Some(20));
        assert_eq!(c.integrity, "SHA2-384");
        let c = apple_child(&esp(&["aes256-sha256"]), &i).unwrap();
        assert_eq!(
            (c.encryption, c.integrity, c.pfs_group),
            ("AES-256", "SHA2-256", None)
        );
        assert!(apple_child(&esp(&["aes256gcm16-esn"]), &i).is_err());
        let c = apple_child(&esp(&["aes256gcm16-esn", "aes128gcm16-noesn"]), &i).unwrap();
        assert_eq!(c.encryption, "AES-128-GCM");
    }

    #[test]
    fn strongswan_syntax_round_trips() {
        for s in [
            "aes256gcm16-prfsha384-ecp384",
            "aes128-aes256-sha256-sha384-prfsha256-prfsha384-curve25519-modp2048",
            "aes256gcm16-ecp384-esn",
            "chacha20poly1305-noesn",
            "aes256gcm16-prfsha256-ecp256-ke1_mlkem768-ke1_none",
        ] {
            let text = match IkeProposal::parse(s) {
                Ok(p) => ike_keywords(&p),
                Err(_) => esp_keywords(&EspProposal::parse(s).unwrap()),
            };
            assert_eq!(text, s);
        }
        for p in IkeProposal::defaults() {
            assert_eq!(IkeProposal::parse(&ike_keywords(&p)).unwrap(), p);
        }
        for p in EspProposal::defaults() {
            assert_eq!(EspProposal::parse(&esp_keywords(&p)).unwrap(), p);
        }
    }

    #[test]
    fn windows_defaults_and_choices() {
        let w = windows(&IkeProposal::defaults(), &EspProposal::defaults()).unwrap();
        assert_eq!(
            w,
            WindowsSuite {
                encryption_method: "GCMAES128",
                integrity_check_method: "SHA256",
                dh_group: "ECP256",
                cipher_transform: "GCMAES128",
                authentication_transform: "GCMAES128",
                pfs_group: "None",
            }
        );
        let w = windows(
            &ike(&["aes256-sha384-modp2048"]),
            &esp(&["aes256-sha256-modp2048"]),
        )
        .unwrap();
        assert_eq!(w.encryption_method, "AES256");
        assert_eq!(w.integrity_check_method, "SHA384");
        assert_eq!(w.dh_group, "Group14");
        assert_eq!(w.cipher_transform, "AES256");
        assert_eq!(w.authentication_transform, "SHA256128");
        assert_eq!(w.pfs_group, "PFS2048");
    }

    #[test]
    fn windows_refuses_what_it_cannot_send() {
        // x25519 and ChaCha20 are not in Windows' lists.
        let e = windows(
            &ike(&["aes256gcm16-prfsha256-x25519"]),
            &EspProposal::defaults(),
        )
        .unwrap_err();
        assert_eq!(e.what, "IKE");
        let e = windows(&IkeProposal::defaults(), &esp(&["chacha20poly1305"])).unwrap_err();
        assert_eq!(e.what, "ESP");
        // SHA-512 integrity cannot be expressed for ESP.
        assert!(windows(&IkeProposal::defaults(), &esp(&["aes256-sha512"])).is_err());
        // PFS with a group Windows lacks.
        assert!(windows(&IkeProposal::defaults(), &esp(&["aes256gcm16-x25519"])).is_err());
    }
}
