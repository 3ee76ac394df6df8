//! Test PKIs generated with rcgen (aws-lc-rs backend): root → intermediate
//! → leaf, for each key type, with knobs for dates, EKUs, SANs and CRLs.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oxisec_pki::Certificate;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, RsaKeySize, SanType, SerialNumber, date_time_ymd,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rsa2048,
    Rsa3072,
    P256,
    P384,
    Ed25519,
}

pub const KINDS: [Kind; 5] = [
    Kind::Rsa2048,
    Kind::Rsa3072,
    Kind::P256,
    Kind::P384,
    Kind::Ed25519,
];

pub fn key(kind: Kind) -> KeyPair {
    match kind {
        Kind::Rsa2048 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap()
        }
        Kind::Rsa3072 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA384, RsaKeySize::_3072).unwrap()
        }
        Kind::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        Kind::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        Kind::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
    }
}

/// The validation time of every test: 2025-06-01 00:00:00 UTC.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_748_736_000)
}

pub fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "CH");
    dn.push(DnType::OrganizationName, "oxisec test");
    dn.push(DnType::CommonName, cn);
    dn
}

pub struct Ca {
    pub params: CertificateParams,
    pub key: KeyPair,
    pub cert: Certificate,
    pub crl_uri: Option<String>,
}

impl Ca {
    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// A CRL of this CA revoking `serials`, valid from `this` to `next` (y, m, d).
    pub fn crl(&self, serials: &[&[u8]], this: (i32, u8, u8), next: (i32, u8, u8)) -> Vec<u8> {
        let params = CertificateRevocationListParams {
            this_update: date_time_ymd(this.0, this.1, this.2),
            next_update: date_time_ymd(next.0, next.1, next.2),
            crl_number: SerialNumber::from_slice(&[1]),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(s),
                    revocation_time: date_time_ymd(2025, 1, 1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer()).unwrap().der().to_vec()
    }

    /// A current CRL (2025-01-01 … 2026-01-01).
    pub fn current_crl(&self, serials: &[&[u8]]) -> Vec<u8> {
        self.crl(serials, (2025, 1, 1), (2026, 1, 1))
    }
}

fn ca_params(cn: &str, crl_uri: Option<&str>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = date_time_ymd(2035, 1, 1);
    if let Some(uri) = crl_uri {
        p.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![uri.to_owned()],
        }];
    }
    p
}

pub fn root(kind: Kind, cn: &str) -> Ca {
    let key = key(kind);
    let params = ca_params(cn, None);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        cert: Certificate::from_der(cert.der()).unwrap(),
        params,
        key,
        crl_uri: None,
    }
}

/// An intermediate CA under `parent`; `crl_uri` is the distribution point
/// of the CRLs this intermediate issues (put into the leaves it signs).
pub fn intermediate(parent: &Ca, kind: Kind, cn: &str, crl_uri: Option<&str>) -> Ca {
    let key = key(kind);
    let params = ca_params(cn, parent.crl_uri.as_deref());
    let cert = params.signed_by(&key, &parent.issuer()).unwrap();
    Ca {
        cert: Certificate::from_der(cert.der()).unwrap(),
        params,
        key,
        crl_uri: crl_uri.map(str::to_owned),
    }
}

pub struct Leaf {
    pub cert: Certificate,
    pub key: KeyPair,
    pub serial: Vec<u8>,
}

/// Leaf parameters: gw.example.com, serverAuth + ipsecIKE, SANs for every
/// ID type, valid 2024–2027, serial 0x1001.
pub fn leaf_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.subject_alt_names = vec![
        SanType::DnsName("gw.example.com".try_into().unwrap()),
        SanType::Rfc822Name("admin@example.com".try_into().unwrap()),
        SanType::IpAddress("192.0.2.1".parse().unwrap()),
        SanType::IpAddress("2001:db8::1".parse().unwrap()),
    ];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 17]),
    ];
    p.not_before = date_time_ymd(2024, 1, 1);
    p.not_after = date_time_ymd(2027, 1, 1);
    p.serial_number = Some(SerialNumber::from_slice(&[0x10, 0x01]));
    p
}

pub fn leaf_with(issuer: &Ca, kind: Kind, mut params: CertificateParams) -> Leaf {
    if let Some(uri) = issuer
        .crl_uri
        .as_ref()
        .filter(|_| params.crl_distribution_points.is_empty())
    {
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![uri.clone()],
        }];
    }
    let key = key(kind);
    let cert = params.signed_by(&key, &issuer.issuer()).unwrap();
    let serial = params
        .serial_number
        .as_ref()
        .map(|s| s.to_bytes())
        .unwrap_or_default();
    Leaf {
        cert: Certificate::from_der(cert.der()).unwrap(),
        key,
        serial,
    }
}

pub fn leaf(issuer: &Ca, kind: Kind) -> Leaf {
    leaf_with(issuer, kind, leaf_params("gw.example.com"))
}

/// root → intermediate → leaf, all of one key type.
pub struct Pki {
    pub root: Ca,
    pub inter: Ca,
    pub leaf: Leaf,
}

pub fn pki(kind: Kind) -> Pki {
    let root = root(kind, "Test Root CA");
    let inter = intermediate(&root, kind, "Test Intermediate CA", None);
    let leaf = leaf(&inter, kind);
    Pki { root, inter, leaf }
}
