//! Certificates for IKEv2 authentication (RFC 7296 §3.6–§3.8, RFC 7427).
//!
//! * [`PrivateKey`]: our signing key (PEM/DER, PKCS#8 — optionally
//!   encrypted —, PKCS#12), zeroized on drop, never printed.
//! * [`Certificate`]: a parsed X.509 certificate: subject, SANs, issuer,
//!   validity, key usage, EKUs, CRL distribution points, public key.
//! * [`SigScheme`]: the signature schemes of RFC 7427 (RSA-PSS, RSA
//!   PKCS#1 v1.5 with SHA-2, ECDSA P-256/384/521, Ed25519) and the legacy IKEv2
//!   methods (RSA with SHA-1, ECDSA methods 9–11), with their
//!   AlgorithmIdentifier encodings.
//! * [`TrustStore`]: trust anchors, CRLs and a [`ValidationPolicy`]; validates
//!   a peer's chain for a claimed identity and says exactly why not.
//!
//! Nothing here reads the clock or the network by itself: the validation
//! time is passed in, and CRLs come from files or from a [`CrlCache`] that
//! the daemon fills in the background (a strict policy fails while a needed
//! CRL is missing and records the URL to fetch). Certificates and CRLs from
//! the network are hostile: parsing is bounded in time and memory.
//!
//! Building blocks: rustls-webpki builds and checks the path (signatures,
//! validity, basicConstraints, name constraints, our EKU policy);
//! x509-parser reads the fields IKE matches on; aws-lc-rs signs and
//! verifies; CRLs are checked here (issuer, signature, scope, dates).
#![forbid(unsafe_code)]

mod cert;
mod crl;
mod der;
mod dn;
mod key;
mod scheme;
mod trust;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

pub use cert::{BasicConstraints, KeyUsageFlags, MAX_CERT_SIZE, SubjectAltName, eku};
pub use crl::MAX_CRL_SIZE;
pub use dn::{DnError, dn_from_text, dn_to_text};
pub use key::{load_pkcs12, load_pkcs12_file};

/// Why a certificate or key could not be used. The `Display` text is the
/// exact reason that goes into the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("certificate expired on {0}")]
    Expired(String),
    #[error("certificate not valid before {0}")]
    NotYetValid(String),
    #[error("issuer not trusted (unknown CA): {0}")]
    UnknownCa(String),
    #[error("certificate revoked (serial {serial}) by CRL of {issuer}")]
    Revoked { serial: String, issuer: String },
    #[error("identity {claimed} is not in the certificate (subject {subject}, SANs {sans})")]
    IdentityMismatch {
        claimed: String,
        subject: String,
        sans: String,
    },
    #[error("wrong key usage: {0}")]
    WrongKeyUsage(String),
    #[error("signature of the chain does not verify: {0}")]
    BadChainSignature(String),
    #[error("revocation status unknown: {0}")]
    RevocationUnknown(String),
    #[error("chain too long or looping")]
    ChainTooLong,
    #[error("malformed certificate: {0}")]
    Malformed(String),
}

/// Failures of keys and signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key: {0}")]
    Parse(String),
    #[error("wrong passphrase or corrupt encrypted key")]
    Decrypt,
    #[error("key file {0} is readable by other users; refusing it (chmod 600)")]
    Permissions(String),
    #[error("signature scheme {0:?} does not fit this key")]
    Scheme(SigScheme),
    #[error("signature does not verify")]
    BadSignature,
}

/// Signature schemes usable in IKEv2 AUTH payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigScheme {
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPkcs1Sha512,
    RsaPssSha256,
    RsaPssSha384,
    RsaPssSha512,
    EcdsaP256Sha256,
    EcdsaP384Sha384,
    EcdsaP521Sha512,
    Ed25519,
    /// RSA PKCS#1 v1.5 with SHA-1: only for AUTH method 1 (legacy peers).
    RsaPkcs1Sha1,
}

/// An identity a peer claims (from its IDi/IDr payload), to match against a
/// certificate's subject DN or subjectAltName.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdClaim {
    /// DER of an X.501 Name (ID_DER_ASN1_DN).
    Dn(Vec<u8>),
    Fqdn(String),
    Email(String),
    Ip(IpAddr),
    KeyId(Vec<u8>),
}

/// Our private key.
pub struct PrivateKey {
    inner: key::KeyInner,
}

impl core::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PrivateKey { .. }")
    }
}

/// A public key from a certificate.
#[derive(Clone)]
pub struct PublicKey {
    /// The DER SubjectPublicKeyInfo as received.
    spki: Vec<u8>,
    /// The subjectPublicKey bits: RSAPublicKey, EC point or Ed25519 key.
    key: Vec<u8>,
    kind: key::PubKind,
}

impl core::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PublicKey { .. }")
    }
}

/// A parsed X.509 certificate (DER kept as received).
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    /// Fields extracted once at parse time, shared between clones.
    info: Arc<cert::CertInfo>,
}

impl core::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Certificate({})", self.subject())
    }
}

impl Certificate {
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

/// Extended key usage the peer's end-entity certificate must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EkuPolicy {
    /// Gateways: serverAuth or id-kp-ipsecIKE (RFC 4945), or no EKU at all.
    #[default]
    Gateway,
    /// Remote-access users: clientAuth or id-kp-ipsecIKE, or no EKU at all.
    Client,
    /// Anything.
    Any,
}

/// How hard a missing CRL counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RevocationPolicy {
    /// Every certificate must have a known, current CRL.
    Strict,
    /// Certificates with a CRL distribution point must have their CRL.
    #[default]
    IfUri,
    /// Use CRLs when present; never fail for a missing one.
    Relaxed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationPolicy {
    pub eku: EkuPolicy,
    pub revocation: RevocationPolicy,
    /// Longest chain accepted, end entity included — and the trust anchor
    /// too: root → intermediate → leaf is 3.
    pub max_depth: usize,
}

impl Default for ValidationPolicy {
    fn default() -> Self {
        ValidationPolicy {
            eku: EkuPolicy::Gateway,
            revocation: RevocationPolicy::IfUri,
            max_depth: 8,
        }
    }
}

/// CRLs fetched from distribution points, shared with the daemon's
/// background fetcher. Validation never blocks on the network: it reads
/// what is here and asks for URLs it missed.
pub trait CrlCache: Send + Sync + core::fmt::Debug {
    /// The current DER CRL for a distribution point URL, if fetched.
    fn get(&self, url: &str) -> Option<Vec<u8>>;
    /// Asks for a URL to be fetched (again).
    fn want(&self, url: &str);
}

/// A successfully validated peer certificate.
#[derive(Debug, Clone)]
pub struct ValidatedPeer {
    pub key: PublicKey,
    /// Subject DN (RFC 4514 text), for logs and status.
    pub subject: String,
}

/// Trust anchors, CRLs and policy.
#[derive(Clone, Default)]
pub struct TrustStore {
    anchors: Vec<Certificate>,
    /// webpki's view of the anchors it can use, and for each the index
    /// into `anchors` it came from.
    webpki_anchors: Vec<rustls_pki_types::TrustAnchor<'static>>,
    webpki_anchor_src: Vec<usize>,
    /// CRLs from files.
    crls: Vec<Arc<crl::Crl>>,
    policy: ValidationPolicy,
    cache: Option<Arc<dyn CrlCache>>,
    /// Parsed CRLs from the cache, shared between clones.
    crl_memo: Arc<Mutex<crl::CrlMemo>>,
}
