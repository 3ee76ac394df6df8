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
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::time::SystemTime;

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
    IdentityMismatch { claimed: String, subject: String, sans: String },
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

impl SigScheme {
    /// The DER AlgorithmIdentifier that RFC 7427 puts in the AUTH data.
    pub fn algorithm_identifier(self) -> Vec<u8> {
        todo!()
    }
    /// The scheme an AlgorithmIdentifier names, if we support it.
    pub fn from_algorithm_identifier(der: &[u8]) -> Option<SigScheme> {
        todo!()
    }
    /// The RFC 7427 hash algorithm number for SIGNATURE_HASH_ALGORITHMS
    /// (1 SHA1, 2 SHA2-256, 3 SHA2-384, 4 SHA2-512, 5 Identity for Ed25519).
    pub fn hash_id(self) -> u16 {
        todo!()
    }
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
    // provider key
}

impl core::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PrivateKey { .. }")
    }
}

impl PrivateKey {
    /// PEM or DER; PKCS#8 (encrypted if `passphrase` is given), SEC1 EC
    /// keys, PKCS#1 RSA keys.
    pub fn from_bytes(data: &[u8], passphrase: Option<&[u8]>) -> Result<PrivateKey, KeyError> {
        todo!()
    }
    /// Loads a key file, refusing one that group or others may read.
    pub fn load(path: &std::path::Path, passphrase: Option<&[u8]>) -> Result<PrivateKey, KeyError> {
        todo!()
    }
    /// Schemes this key can sign with, preferred first.
    pub fn schemes(&self) -> Vec<SigScheme> {
        todo!()
    }
    pub fn sign(&self, scheme: SigScheme, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        todo!()
    }
    /// DER SubjectPublicKeyInfo of the matching public key.
    pub fn public_key_der(&self) -> Vec<u8> {
        todo!()
    }
}

/// A public key from a certificate.
#[derive(Clone)]
pub struct PublicKey {
    // SPKI and algorithm
}

impl core::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PublicKey { .. }")
    }
}

impl PublicKey {
    pub fn from_spki(der: &[u8]) -> Result<PublicKey, KeyError> {
        todo!()
    }
    /// Schemes that can verify with this key.
    pub fn schemes(&self) -> Vec<SigScheme> {
        todo!()
    }
    pub fn verify(&self, scheme: SigScheme, data: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        todo!()
    }
}

/// A parsed X.509 certificate (DER kept as received).
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
}

impl core::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Certificate({})", self.subject())
    }
}

impl Certificate {
    /// Parses one DER certificate; rejects trailing data and absurd sizes.
    pub fn from_der(der: &[u8]) -> Result<Certificate, CertError> {
        todo!()
    }
    /// All certificates in a PEM or DER file's contents.
    pub fn from_pem_or_der(data: &[u8]) -> Result<Vec<Certificate>, CertError> {
        todo!()
    }
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// Subject DN in RFC 4514 text ("CN=gw.example.com, O=Example").
    pub fn subject(&self) -> String {
        todo!()
    }
    /// DER of the subject Name (for ID_DER_ASN1_DN).
    pub fn subject_der(&self) -> Vec<u8> {
        todo!()
    }
    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        todo!()
    }
    /// SHA-1 of the SubjectPublicKeyInfo: how CERTREQ names a CA (RFC 7296 §3.7).
    pub fn spki_sha1(&self) -> [u8; 20] {
        todo!()
    }
    /// Whether the certificate holds this identity (subject DN or a SAN).
    pub fn matches(&self, id: &IdClaim) -> bool {
        todo!()
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
    /// Longest chain accepted, end entity included.
    pub max_depth: usize,
}

impl Default for ValidationPolicy {
    fn default() -> Self {
        ValidationPolicy { eku: EkuPolicy::Gateway, revocation: RevocationPolicy::IfUri, max_depth: 8 }
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
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    // anchors, CRLs, policy, optional cache
}

impl TrustStore {
    pub fn new(anchors: Vec<Certificate>, policy: ValidationPolicy) -> TrustStore {
        todo!()
    }
    /// Adds a CRL (DER or PEM) from a file; it must be signed by an anchor
    /// or by a CA in a validated chain.
    pub fn add_crl(&mut self, crl: &[u8]) -> Result<(), CertError> {
        todo!()
    }
    pub fn set_crl_cache(&mut self, cache: std::sync::Arc<dyn CrlCache>) {
        todo!()
    }
    /// SHA-1 hashes of the anchors' public keys, for CERTREQ.
    pub fn ca_hashes(&self) -> Vec<[u8; 20]> {
        todo!()
    }
    /// Validates `chain` (end entity first, then intermediates in any order,
    /// as received in CERT payloads) at `now` for the claimed identity:
    /// chain to an anchor, validity dates, basicConstraints, keyUsage, the
    /// EKU policy, revocation, and the identity in the end entity.
    pub fn validate(&self, chain: &[Certificate], now: SystemTime, claimed: &IdClaim) -> Result<ValidatedPeer, CertError> {
        todo!()
    }
}
