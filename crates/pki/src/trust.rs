//! Trust anchors and chain validation: webpki builds the path and checks
//! signatures, validity, basicConstraints, name constraints and our EKU
//! policy; we add keyUsage, depth, revocation and the IKE identity, and
//! turn every failure into a precise [`CertError`].

use std::cell::RefCell;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime};

use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter, VerifiedPath};

use crate::cert::{claim_text, eku, fmt_time, unix_secs};
use crate::crl::{self, Crl};
use crate::der::{self, Reader};
use crate::{
    CertError, Certificate, CrlCache, EkuPolicy, IdClaim, RevocationPolicy, SigScheme, TrustStore,
    ValidatedPeer, ValidationPolicy,
};

/// At most this many certificates are considered from one peer (RFC 7296
/// puts each in its own CERT payload; real chains have 1–4).
const MAX_RECEIVED: usize = 16;

impl core::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TrustStore")
            .field(
                "anchors",
                &self
                    .anchors
                    .iter()
                    .map(Certificate::subject)
                    .collect::<Vec<_>>(),
            )
            .field("crls", &self.crls)
            .field("policy", &self.policy)
            .field("cache", &self.cache)
            .finish()
    }
}

impl EkuPolicy {
    fn accepts(self, oids: &[String]) -> bool {
        let wanted = match self {
            EkuPolicy::Any => return true,
            EkuPolicy::Gateway => eku::SERVER_AUTH,
            EkuPolicy::Client => eku::CLIENT_AUTH,
        };
        oids.is_empty()
            || oids.iter().any(|o| {
                o == wanted || o == eku::IPSEC_IKE || o == eku::ANY || o == eku::IKE_INTERMEDIATE
            })
    }

    fn describe(self) -> &'static str {
        match self {
            EkuPolicy::Gateway => {
                "the gateway policy needs serverAuth or ipsecIKE (or no extendedKeyUsage)"
            }
            EkuPolicy::Client => {
                "the client policy needs clientAuth or ipsecIKE (or no extendedKeyUsage)"
            }
            EkuPolicy::Any => "any extendedKeyUsage is accepted",
        }
    }
}

/// Our EKU policy in webpki's terms. webpki applies it to every
/// certificate of the path that carries the extension, which is how
/// Windows and NSS treat EKUs on CAs too.
struct IkeEku(EkuPolicy);

impl ExtendedKeyUsageValidator for IkeEku {
    // The context variant wants a single required OID; ours is a set, and
    // `explain` recomputes the details anyway.
    #[allow(deprecated)]
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut oids = Vec::new();
        for id in iter {
            let dotted = id?
                .to_decoded_oid()
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(".");
            oids.push(dotted);
        }
        if self.0.accepts(&oids) {
            Ok(())
        } else {
            Err(webpki::Error::RequiredEkuNotFound)
        }
    }
}

fn is_http(uri: &str) -> bool {
    uri.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("http://"))
}

/// "end entity CN=…", "intermediate CA CN=…", for messages.
fn describe(cert: &Certificate, index: usize) -> String {
    let role = if index == 0 {
        "end entity"
    } else {
        "intermediate CA"
    };
    format!("{role} {}", cert.info.subject)
}

impl TrustStore {
    /// A store with these anchors (any CA certificate, self-signed or not,
    /// may be an anchor). Certificates webpki cannot use as anchors are
    /// left out; [`TrustStore::add_anchor`] says why, [`TrustStore::anchors`]
    /// lists the ones kept.
    pub fn new(anchors: Vec<Certificate>, policy: ValidationPolicy) -> TrustStore {
        let mut store = TrustStore {
            policy,
            ..TrustStore::default()
        };
        for anchor in anchors {
            let _ = store.add_anchor(anchor);
        }
        store
    }

    /// Adds one trust anchor.
    pub fn add_anchor(&mut self, anchor: Certificate) -> Result<(), CertError> {
        let der = CertificateDer::from(anchor.der());
        let ta = webpki::anchor_from_trusted_cert(&der)
            .map_err(|e| {
                CertError::Malformed(format!("trust anchor {}: {e:?}", anchor.info.subject))
            })?
            .to_owned();
        if self.anchors.contains(&anchor) {
            return Ok(());
        }
        self.webpki_anchors.push(ta);
        self.webpki_anchor_src.push(self.anchors.len());
        self.anchors.push(anchor);
        Ok(())
    }

    pub fn anchors(&self) -> &[Certificate] {
        &self.anchors
    }

    pub fn policy(&self) -> ValidationPolicy {
        self.policy
    }

    pub fn set_policy(&mut self, policy: ValidationPolicy) {
        self.policy = policy;
    }

    /// Adds a CRL (DER or PEM) from a file; it must be signed by an anchor
    /// or by a CA in a validated chain. A CRL issued by an anchor is
    /// verified now (and refused if its signature fails); one issued by an
    /// intermediate CA is kept and verified against that CA whenever a chain
    /// through it is validated. A newer CRL replaces an older one of the
    /// same issuer and scope. Delta, indirect and reason-partitioned CRLs
    /// are refused.
    pub fn add_crl(&mut self, crl: &[u8]) -> Result<(), CertError> {
        for crl in Crl::parse_file(crl)? {
            if let Some(why) = crl.unusable_reason() {
                return Err(CertError::Malformed(format!(
                    "CRL of {}: {why}",
                    crl.issuer
                )));
            }
            let named: Vec<&Certificate> = self
                .anchors
                .iter()
                .filter(|a| a.info.subject_der == crl.issuer_der)
                .collect();
            if !named.is_empty() {
                let mut why = Vec::new();
                let ok = named
                    .iter()
                    .any(|a| crl.verify_signature(a).map_err(|e| why.push(e)).is_ok());
                if !ok {
                    return Err(CertError::BadChainSignature(why.join("; ")));
                }
            }
            let crl = Arc::new(crl);
            match self
                .crls
                .iter()
                .position(|c| c.issuer_der == crl.issuer_der && c.idp_uris() == crl.idp_uris())
            {
                Some(pos) if self.crls[pos].this_update <= crl.this_update => self.crls[pos] = crl,
                Some(_) => {}
                None => self.crls.push(crl),
            }
        }
        Ok(())
    }

    pub fn set_crl_cache(&mut self, cache: Arc<dyn CrlCache>) {
        self.cache = Some(cache);
    }

    /// SHA-1 hashes of the anchors' public keys, for CERTREQ.
    pub fn ca_hashes(&self) -> Vec<[u8; 20]> {
        self.anchors.iter().map(Certificate::spki_sha1).collect()
    }

    /// Validates `chain` (end entity first, then intermediates in any order,
    /// as received in CERT payloads) at `now` for the claimed identity:
    /// chain to an anchor, validity dates (anchors included), basicConstraints,
    /// name constraints, keyUsage (the end entity needs digitalSignature or
    /// nonRepudiation if it has the extension — RFC 4945 §5.1.3.2), the EKU
    /// policy, the depth limit (`max_depth` counts the whole path, end entity
    /// to anchor), revocation, and the identity in the end entity.
    pub fn validate(
        &self,
        chain: &[Certificate],
        now: SystemTime,
        claimed: &IdClaim,
    ) -> Result<ValidatedPeer, CertError> {
        let ee = chain
            .first()
            .ok_or_else(|| CertError::Malformed("no certificate received".to_owned()))?;
        if chain.len() > MAX_RECEIVED {
            return Err(CertError::ChainTooLong);
        }
        if self.webpki_anchors.is_empty() {
            return Err(CertError::UnknownCa(
                "no trust anchors are configured".to_owned(),
            ));
        }
        let now_secs = unix_secs(now);
        let time =
            UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now_secs).unwrap_or(0)));

        let ee_der = CertificateDer::from(ee.der());
        let ee_cert = EndEntityCert::try_from(&ee_der).map_err(|e| {
            CertError::Malformed(format!(
                "end entity {}: {}",
                ee.info.subject,
                webpki_text(&e)
            ))
        })?;
        let intermediates: Vec<CertificateDer<'_>> = chain[1..]
            .iter()
            .map(|c| CertificateDer::from(c.der()))
            .collect();

        let max_depth = self.policy.max_depth;
        let too_long = RefCell::new(false);
        let check_depth = |path: &VerifiedPath<'_>| {
            // end entity + intermediates + anchor
            if path.intermediate_certificates().count() + 2 > max_depth {
                *too_long.borrow_mut() = true;
                return Err(webpki::Error::MaximumPathDepthExceeded);
            }
            Ok(())
        };
        let path = ee_cert
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.webpki_anchors,
                &intermediates,
                time,
                IkeEku(self.policy.eku),
                None,
                Some(&check_depth),
            )
            .map_err(|e| self.explain(&e, chain, now_secs, *too_long.borrow()))?;

        // Our certificates along the path: end entity, intermediates upwards, anchor.
        let mut path_certs: Vec<&Certificate> = vec![ee];
        for inter in path.intermediate_certificates() {
            let der = inter.der();
            let cert = chain[1..]
                .iter()
                .find(|c| c.der() == der.as_ref())
                .ok_or_else(|| {
                    CertError::Malformed(
                        "internal: path certificate not among the received ones".to_owned(),
                    )
                })?;
            path_certs.push(cert);
        }
        let anchor_pos = self
            .webpki_anchors
            .iter()
            .position(|a| core::ptr::eq(a, path.anchor()))
            .ok_or_else(|| CertError::Malformed("internal: path anchor not found".to_owned()))?;
        let anchor = &self.anchors[self.webpki_anchor_src[anchor_pos]];
        path_certs.push(anchor);

        if anchor.info.not_after < now_secs {
            return Err(CertError::Expired(format!(
                "{} (trust anchor {})",
                fmt_time(anchor.info.not_after),
                anchor.info.subject
            )));
        }
        if anchor.info.not_before > now_secs {
            return Err(CertError::NotYetValid(format!(
                "{} (trust anchor {})",
                fmt_time(anchor.info.not_before),
                anchor.info.subject
            )));
        }
        if let Some(ku) = ee
            .key_usage()
            .filter(|ku| !ku.digital_signature() && !ku.non_repudiation())
        {
            return Err(CertError::WrongKeyUsage(format!(
                "end entity {} has keyUsage {ku}, without digitalSignature",
                ee.info.subject
            )));
        }
        let key = ee
            .public_key()
            .map_err(|e| CertError::Malformed(format!("end entity {}: {e}", ee.info.subject)))?;

        self.check_revocation(&path_certs, now_secs)?;

        if !ee.matches(claimed) {
            return Err(CertError::IdentityMismatch {
                claimed: claim_text(claimed),
                subject: ee.info.subject.clone(),
                sans: ee.sans_text(),
            });
        }
        Ok(ValidatedPeer {
            key,
            subject: ee.info.subject.clone(),
        })
    }

    /// Revocation of every certificate of the path but the anchor.
    fn check_revocation(&self, path: &[&Certificate], now: i64) -> Result<(), CertError> {
        for pair in path.windows(2) {
            let (cert, ca) = (pair[0], pair[1]);
            let mut candidates: Vec<Arc<Crl>> = self
                .crls
                .iter()
                .filter(|c| c.issuer_der == cert.info.issuer_der)
                .cloned()
                .collect();
            let http: Vec<&String> = cert.info.crl_uris.iter().filter(|u| is_http(u)).collect();
            let mut missing = Vec::new();
            match &self.cache {
                Some(cache) => {
                    for uri in &http {
                        match cache.get(uri) {
                            Some(der) => {
                                let parsed = self
                                    .crl_memo
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .get_or_parse(&der);
                                match parsed {
                                    Ok(crl) => candidates.push(crl),
                                    Err(e) => {
                                        missing.push(format!("CRL from {uri} unusable: {e}"));
                                        cache.want(uri);
                                    }
                                }
                            }
                            None => {
                                missing.push(format!("CRL from {uri} not fetched yet"));
                                cache.want(uri);
                            }
                        }
                    }
                }
                None if !http.is_empty() => missing.push("no CRL fetcher is configured".to_owned()),
                None => {}
            }
            match crl::status(cert, ca, now, &candidates) {
                crl::Status::Revoked { issuer } => {
                    return Err(CertError::Revoked {
                        serial: cert.serial_hex(),
                        issuer,
                    });
                }
                crl::Status::Good => {}
                crl::Status::Unknown(mut reasons) => {
                    // A cached CRL that did not help (stale, bad signature): fetch again.
                    if let Some(cache) = &self.cache {
                        for uri in &http {
                            if !missing.iter().any(|m| m.contains(uri.as_str())) {
                                cache.want(uri);
                            }
                        }
                    }
                    let required = match self.policy.revocation {
                        RevocationPolicy::Strict => true,
                        RevocationPolicy::IfUri => !http.is_empty(),
                        RevocationPolicy::Relaxed => false,
                    };
                    if required {
                        reasons.extend(missing);
                        if reasons.is_empty() {
                            reasons.push("no CRL of its issuer is loaded".to_owned());
                        }
                        return Err(CertError::RevocationUnknown(format!(
                            "no current CRL for {} (serial {}, issuer {}): {}",
                            cert.info.subject,
                            cert.serial_hex(),
                            cert.info.issuer,
                            reasons.join("; ")
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// The chain as the names say it goes: the end entity, then received
    /// certificates by issuer name, until one is issued by an anchor.
    fn naive_chain<'a>(
        &'a self,
        chain: &'a [Certificate],
    ) -> (Vec<&'a Certificate>, Option<&'a Certificate>) {
        let mut out: Vec<&Certificate> = vec![&chain[0]];
        for _ in 0..chain.len() {
            let Some(cur) = out.last().copied() else {
                break;
            };
            if let Some(anchor) = self
                .anchors
                .iter()
                .find(|a| a.info.subject_der == cur.info.issuer_der)
            {
                return (out, Some(anchor));
            }
            match chain[1..]
                .iter()
                .find(|c| c.info.subject_der == cur.info.issuer_der && !out.contains(c))
            {
                Some(next) => out.push(next),
                None => break,
            }
        }
        (out, None)
    }

    /// Turns a webpki error into the precise reason, naming the certificate.
    #[allow(deprecated)] // webpki's context-free error variants still occur
    fn explain(
        &self,
        e: &webpki::Error,
        chain: &[Certificate],
        now: i64,
        too_long: bool,
    ) -> CertError {
        use webpki::Error as W;
        if too_long {
            // Our depth check refused a path that webpki had verified.
            return CertError::ChainTooLong;
        }
        let (naive, anchor) = self.naive_chain(chain);
        match e {
            W::CertExpired { not_after, .. } => {
                let which = naive
                    .iter()
                    .enumerate()
                    .find(|(_, c)| c.info.not_after < now);
                let at = which.map_or(not_after.as_secs() as i64, |(_, c)| c.info.not_after);
                let who = which.map_or_else(
                    || "a certificate of the chain".to_owned(),
                    |(i, c)| describe(c, i),
                );
                CertError::Expired(format!("{} ({who})", fmt_time(at)))
            }
            W::CertNotValidYet { not_before, .. } => {
                let which = naive
                    .iter()
                    .enumerate()
                    .find(|(_, c)| c.info.not_before > now);
                let at = which.map_or(not_before.as_secs() as i64, |(_, c)| c.info.not_before);
                let who = which.map_or_else(
                    || "a certificate of the chain".to_owned(),
                    |(i, c)| describe(c, i),
                );
                CertError::NotYetValid(format!("{} ({who})", fmt_time(at)))
            }
            W::UnknownIssuer => {
                let last = naive.last().copied().unwrap_or(&chain[0]);
                CertError::UnknownCa(format!(
                    "{} was issued by {}, which is neither a trust anchor nor among the received certificates",
                    last.info.subject, last.info.issuer
                ))
            }
            W::InvalidSignatureForPublicKey
            | W::UnsupportedSignatureAlgorithm
            | W::UnsupportedSignatureAlgorithmContext(_)
            | W::UnsupportedSignatureAlgorithmForPublicKey
            | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
            | W::SignatureAlgorithmMismatch => CertError::BadChainSignature(
                diagnose_signatures(&naive, anchor).unwrap_or_else(|| webpki_text(e)),
            ),
            W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) => {
                let policy = self.policy.eku;
                let offender = naive
                    .iter()
                    .enumerate()
                    .find(|(_, c)| c.extended_key_usage().is_some_and(|o| !policy.accepts(o)));
                match offender {
                    Some((i, c)) => {
                        let names: Vec<&str> = c
                            .extended_key_usage()
                            .unwrap_or_default()
                            .iter()
                            .map(|o| eku::name(o))
                            .collect();
                        CertError::WrongKeyUsage(format!(
                            "{} has extendedKeyUsage {}; {}",
                            describe(c, i),
                            names.join(", "),
                            policy.describe()
                        ))
                    }
                    None => CertError::WrongKeyUsage(format!(
                        "extendedKeyUsage in the chain: {}",
                        policy.describe()
                    )),
                }
            }
            W::CaUsedAsEndEntity => CertError::WrongKeyUsage(format!(
                "end entity {} is a CA certificate (basicConstraints cA=TRUE)",
                chain[0].info.subject
            )),
            W::EndEntityUsedAsCa => {
                let issuer = naive.iter().skip(1).find(|c| !c.is_ca());
                CertError::WrongKeyUsage(match issuer {
                    Some(c) => format!(
                        "{} issues certificates but is not a CA (basicConstraints)",
                        c.info.subject
                    ),
                    None => "a certificate that is not a CA (basicConstraints) issues another"
                        .to_owned(),
                })
            }
            W::PathLenConstraintViolated => CertError::WrongKeyUsage(
                "the chain is longer than a CA's basicConstraints pathLenConstraint allows"
                    .to_owned(),
            ),
            W::NameConstraintViolation => CertError::UnknownCa(format!(
                "the name constraints of a CA above {} exclude its names",
                chain[0].info.subject
            )),
            W::CertDistrusted => {
                CertError::UnknownCa("a key in the chain is distrusted".to_owned())
            }
            W::MaximumPathDepthExceeded
            | W::MaximumSignatureChecksExceeded
            | W::MaximumPathBuildCallsExceeded => CertError::ChainTooLong,
            W::UnsupportedCertVersion => {
                CertError::Malformed("a certificate of the chain is not X.509 v3".to_owned())
            }
            W::UnsupportedCriticalExtension => CertError::Malformed(
                "a certificate of the chain has an unsupported critical extension".to_owned(),
            ),
            other => CertError::Malformed(webpki_text(other)),
        }
    }
}

fn webpki_text(e: &webpki::Error) -> String {
    format!("{e:?}")
}

/// Finds the link whose signature fails, verifying each certificate of
/// the naive chain with its issuer's key.
fn diagnose_signatures(naive: &[&Certificate], anchor: Option<&Certificate>) -> Option<String> {
    let issuers = naive.iter().skip(1).copied().chain(anchor);
    for (cert, issuer) in naive.iter().copied().zip(issuers) {
        let parts = (|| {
            let mut r = Reader::new(der::single(cert.der(), der::SEQUENCE).ok()?);
            let (_, _, tbs) = r.read_any().ok()?;
            let (_, _, alg) = r.read_any().ok()?;
            let bits = r.read(der::BIT_STRING).ok()?;
            Some((tbs, alg, bits.get(1..)?))
        })();
        let Some((tbs, alg, sig)) = parts else {
            continue;
        };
        let subject = &cert.info.subject;
        let Some(scheme) = SigScheme::from_algorithm_identifier(alg) else {
            return Some(format!("{subject} is signed with an unsupported algorithm"));
        };
        if scheme == SigScheme::RsaPkcs1Sha1 {
            return Some(format!(
                "{subject} is signed with SHA-1, which is refused in certificates"
            ));
        }
        let key = match issuer.public_key() {
            Ok(k) => k,
            Err(e) => return Some(format!("key of {}: {e}", issuer.info.subject)),
        };
        if key.verify(scheme, tbs, sig).is_err() {
            return Some(format!(
                "signature of {subject} does not verify with the key of {} ({})",
                issuer.info.subject,
                key.algorithm()
            ));
        }
    }
    None
}
