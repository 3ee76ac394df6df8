//! Certificate revocation lists: parsing, signature and scope checks, and
//! the revocation status of one certificate.

use std::collections::HashMap;
use std::sync::Arc;

use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_X509_EXT_DELTA_CRL_INDICATOR, OID_X509_EXT_ISSUER_DISTRIBUTION_POINT,
};
use x509_parser::prelude::{CertificateRevocationList, FromDer};

use crate::cert::{dn_to_string, fmt_time};
use crate::der::{self, Reader};
use crate::{CertError, Certificate, SigScheme};

/// CRLs larger than this are refused: parsing allocates per entry, and a
/// CRL can come from an HTTP server we do not control.
pub const MAX_CRL_SIZE: usize = 4 << 20;

/// reasonCode removeFromCRL: only meaningful in delta CRLs.
const REASON_REMOVE_FROM_CRL: u8 = 8;

/// A parsed CRL, reduced to what revocation checking needs.
pub(crate) struct Crl {
    pub issuer: String,
    pub issuer_der: Vec<u8>,
    pub this_update: i64,
    pub next_update: Option<i64>,
    /// Serial magnitudes (leading zeros removed), sorted.
    revoked: Vec<Vec<u8>>,
    /// The signed part, its algorithm and the signature, for verification
    /// against the issuing CA.
    tbs: Vec<u8>,
    sig_alg: Vec<u8>,
    signature: Vec<u8>,
    /// issuingDistributionPoint scope.
    idp_uris: Vec<String>,
    only_user: bool,
    only_ca: bool,
    /// Why this CRL cannot be used at all (delta, partitioned, indirect,
    /// unknown critical extension).
    unusable: Option<String>,
}

impl core::fmt::Debug for Crl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Crl")
            .field("issuer", &self.issuer)
            .field("this_update", &fmt_time(self.this_update))
            .field("next_update", &self.next_update.map(fmt_time))
            .field("revoked", &self.revoked.len())
            .finish_non_exhaustive()
    }
}

fn malformed(what: impl core::fmt::Display) -> CertError {
    CertError::Malformed(format!("CRL: {what}"))
}

impl Crl {
    pub(crate) fn from_der(der: &[u8]) -> Result<Crl, CertError> {
        if der.len() > MAX_CRL_SIZE {
            return Err(malformed(format!(
                "{} bytes (limit {MAX_CRL_SIZE})",
                der.len()
            )));
        }
        // Split the signed envelope ourselves: the exact bytes that were signed.
        let (tbs, sig_alg, signature) = (|| {
            let mut r = Reader::new(der::single(der, der::SEQUENCE).ok()?);
            let (_, _, tbs) = r.read_any().ok()?;
            let (_, _, sig_alg) = r.read_any().ok()?;
            let bits = r.read(der::BIT_STRING).ok()?;
            r.finish().ok()?;
            let (&unused, sig) = bits.split_first()?;
            (unused == 0).then_some((tbs, sig_alg, sig))
        })()
        .ok_or_else(|| malformed("not a DER CertificateList"))?;

        let (rest, crl) = CertificateRevocationList::from_der(der).map_err(malformed)?;
        if !rest.is_empty() {
            return Err(malformed("trailing data"));
        }
        let list = &crl.tbs_cert_list;
        let mut unusable = None;
        let mut idp_uris = Vec::new();
        let (mut only_user, mut only_ca) = (false, false);
        for ext in list.extensions() {
            if ext.oid == OID_X509_EXT_DELTA_CRL_INDICATOR {
                unusable = Some("delta CRLs are not supported".to_owned());
                continue;
            }
            match ext.parsed_extension() {
                ParsedExtension::IssuingDistributionPoint(idp) => {
                    only_user = idp.only_contains_user_certs;
                    only_ca = idp.only_contains_ca_certs;
                    if idp.indirect_crl {
                        unusable = Some("indirect CRLs are not supported".to_owned());
                    } else if idp.only_some_reasons.is_some() || idp.only_contains_attribute_certs {
                        unusable = Some("CRLs partitioned by reason are not supported".to_owned());
                    }
                    if let Some(DistributionPointName::FullName(names)) = &idp.distribution_point {
                        for name in names {
                            if let GeneralName::URI(uri) = name {
                                idp_uris.push((*uri).to_owned());
                            }
                        }
                    }
                }
                ParsedExtension::ParseError { .. }
                    if ext.oid == OID_X509_EXT_ISSUER_DISTRIBUTION_POINT =>
                {
                    unusable = Some("malformed issuingDistributionPoint".to_owned());
                }
                ParsedExtension::ParseError { .. }
                | ParsedExtension::UnsupportedExtension { .. }
                    if ext.critical =>
                {
                    unusable = Some(format!("unsupported critical extension {}", ext.oid));
                }
                _ => {}
            }
        }
        let mut revoked: Vec<Vec<u8>> = Vec::with_capacity(list.revoked_certificates.len());
        for entry in &list.revoked_certificates {
            if entry
                .reason_code()
                .is_some_and(|(_, r)| r.0 == REASON_REMOVE_FROM_CRL)
            {
                continue;
            }
            let raw = entry.raw_serial();
            let skip = raw.iter().take_while(|&&b| b == 0).count();
            revoked.push(raw[skip..].to_vec());
        }
        revoked.sort_unstable();
        revoked.dedup();
        Ok(Crl {
            issuer: dn_to_string(&list.issuer),
            issuer_der: list.issuer.as_raw().to_vec(),
            this_update: list.this_update.timestamp(),
            next_update: list.next_update.map(|t| t.timestamp()),
            revoked,
            tbs: tbs.to_vec(),
            sig_alg: sig_alg.to_vec(),
            signature: signature.to_vec(),
            idp_uris,
            only_user,
            only_ca,
            unusable,
        })
    }

    /// All CRLs in a PEM (`X509 CRL` blocks) or DER input.
    pub(crate) fn parse_file(data: &[u8]) -> Result<Vec<Crl>, CertError> {
        if data.windows(11).any(|w| w == b"-----BEGIN ") {
            let blocks = pem::parse_many(data).map_err(|e| malformed(format!("bad PEM: {e}")))?;
            let crls = blocks
                .iter()
                .filter(|b| b.tag() == "X509 CRL")
                .map(|b| Crl::from_der(b.contents()))
                .collect::<Result<Vec<_>, _>>()?;
            if crls.is_empty() {
                return Err(malformed("no X509 CRL block in PEM data"));
            }
            Ok(crls)
        } else {
            Ok(vec![Crl::from_der(data)?])
        }
    }

    /// Whether `ca`'s key signed this CRL (and `ca` may sign CRLs).
    pub(crate) fn verify_signature(&self, ca: &Certificate) -> Result<(), String> {
        if self.issuer_der != ca.info.subject_der {
            return Err(format!(
                "CRL issuer {} is not {}",
                self.issuer, ca.info.subject
            ));
        }
        if let Some(ku) = ca.key_usage().filter(|ku| !ku.crl_sign()) {
            return Err(format!(
                "{} may not sign CRLs (keyUsage {ku})",
                ca.info.subject
            ));
        }
        let scheme = SigScheme::from_algorithm_identifier(&self.sig_alg).ok_or_else(|| {
            format!(
                "CRL of {} uses an unsupported signature algorithm",
                self.issuer
            )
        })?;
        let key = ca
            .public_key()
            .map_err(|e| format!("key of {}: {e}", ca.info.subject))?;
        key.verify(scheme, &self.tbs, &self.signature).map_err(|_| {
            format!(
                "signature of the CRL of {} does not verify with its key",
                self.issuer
            )
        })
    }

    /// Whether this CRL speaks about `cert` at all (issuer and scope).
    pub(crate) fn covers(&self, cert: &Certificate) -> bool {
        if self.unusable.is_some() || self.issuer_der != cert.info.issuer_der {
            return false;
        }
        if (self.only_user && cert.is_ca()) || (self.only_ca && !cert.is_ca()) {
            return false;
        }
        self.idp_uris.is_empty() || self.idp_uris.iter().any(|u| cert.info.crl_uris.contains(u))
    }

    pub(crate) fn lists(&self, serial: &[u8]) -> bool {
        self.revoked
            .binary_search_by(|s| s.as_slice().cmp(serial))
            .is_ok()
    }

    pub(crate) fn unusable_reason(&self) -> Option<&str> {
        self.unusable.as_deref()
    }

    pub(crate) fn idp_uris(&self) -> &[String] {
        &self.idp_uris
    }
}

/// Parsed CRLs from the cache, keyed by the SHA-256 of their DER, so a
/// large CRL is parsed once and not on every IKE_AUTH.
#[derive(Debug, Default)]
pub(crate) struct CrlMemo {
    map: HashMap<[u8; 32], Arc<Crl>>,
}

impl CrlMemo {
    const MAX: usize = 64;

    pub(crate) fn get_or_parse(&mut self, der: &[u8]) -> Result<Arc<Crl>, CertError> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        if let Some(crl) = self.map.get(&key) {
            return Ok(crl.clone());
        }
        let crl = Arc::new(Crl::from_der(der)?);
        if self.map.len() >= Self::MAX {
            self.map.clear();
        }
        self.map.insert(key, crl.clone());
        Ok(crl)
    }
}

/// What the CRLs say about one certificate.
#[derive(Debug)]
pub(crate) enum Status {
    Good,
    Revoked {
        issuer: String,
    },
    /// No usable current CRL; the reasons say why, for the log.
    Unknown(Vec<String>),
}

/// The revocation status of `cert`, issued by `ca`, at `now`, from the
/// candidate CRLs. A CRL counts only if it covers the certificate and its
/// signature verifies with the CA's key. A listed serial counts even in a
/// stale CRL (revocation is permanent); "good" needs a current CRL.
pub(crate) fn status(
    cert: &Certificate,
    ca: &Certificate,
    now: i64,
    candidates: &[Arc<Crl>],
) -> Status {
    let mut reasons = Vec::new();
    let mut good = false;
    for crl in candidates {
        if crl.issuer_der != cert.info.issuer_der {
            continue;
        }
        if let Some(why) = crl.unusable_reason() {
            reasons.push(format!("CRL of {}: {why}", crl.issuer));
            continue;
        }
        if !crl.covers(cert) {
            continue;
        }
        if let Err(why) = crl.verify_signature(ca) {
            reasons.push(why);
            continue;
        }
        if crl.lists(cert.serial()) {
            return Status::Revoked {
                issuer: crl.issuer.clone(),
            };
        }
        if crl.this_update > now {
            reasons.push(format!(
                "CRL of {} is not valid before {}",
                crl.issuer,
                fmt_time(crl.this_update)
            ));
        } else if crl.next_update.is_some_and(|n| n < now) {
            reasons.push(format!(
                "CRL of {} expired on {}",
                crl.issuer,
                fmt_time(crl.next_update.unwrap_or_default())
            ));
        } else {
            good = true;
        }
    }
    if good {
        Status::Good
    } else {
        Status::Unknown(reasons)
    }
}
