//! Certificate authentication between two engines (RFC 7296 §2.15 with
//! RFC 7427 signatures, CERT and CERTREQ), against rcgen-made PKIs: every
//! key type, chains through an intermediate, identities checked against the
//! certificate, and each way validation fails, named.
mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use oxisec_ike::*;
use oxisec_pki::{
    Certificate, EkuPolicy, PrivateKey, RevocationPolicy, TrustStore, ValidationPolicy,
};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, date_time_ymd,
};

/// 2025-06-01, inside every certificate's validity below.
fn today() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_748_736_000)
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    P256,
    P384,
    Rsa2048,
    Ed25519,
}

fn keypair(kind: Kind) -> KeyPair {
    match kind {
        Kind::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        Kind::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        Kind::Rsa2048 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap()
        }
        Kind::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "CH");
    dn.push(DnType::OrganizationName, "oxisec test");
    dn.push(DnType::CommonName, cn);
    dn
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    cert: Certificate,
}

impl Ca {
    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = date_time_ymd(2035, 1, 1);
    p
}

fn root(cn: &str) -> Ca {
    let key = keypair(Kind::P256);
    let params = ca_params(cn);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        cert: Certificate::from_der(cert.der()).unwrap(),
        params,
        key,
    }
}

fn intermediate(parent: &Ca, cn: &str) -> Ca {
    let key = keypair(Kind::P256);
    let params = ca_params(cn);
    let cert = params.signed_by(&key, &parent.issuer()).unwrap();
    Ca {
        cert: Certificate::from_der(cert.der()).unwrap(),
        params,
        key,
    }
}

/// A gateway certificate for `fqdn` (SAN dNSName) valid 2024–2027 (or
/// until `not_after`), with the IKE EKUs.
fn gateway_cert(
    issuer: &Ca,
    kind: Kind,
    fqdn: &str,
    not_after: (i32, u8, u8),
) -> (Certificate, PrivateKey) {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(fqdn);
    p.subject_alt_names = vec![SanType::DnsName(fqdn.try_into().unwrap())];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 17]),
    ];
    p.not_before = date_time_ymd(2024, 1, 1);
    p.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
    let key = keypair(kind);
    let cert = p.signed_by(&key, &issuer.issuer()).unwrap();
    (
        Certificate::from_der(cert.der()).unwrap(),
        PrivateKey::from_bytes(&key.serialize_der(), None).unwrap(),
    )
}

fn trust(anchor: &Certificate) -> Arc<TrustStore> {
    Arc::new(TrustStore::new(
        vec![anchor.clone()],
        ValidationPolicy {
            eku: EkuPolicy::Gateway,
            revocation: RevocationPolicy::Relaxed,
            max_depth: 4,
        },
    ))
}

fn local(chain: Vec<Certificate>, key: PrivateKey, send: SendCert) -> Auth {
    Auth::Cert(LocalCert {
        key: Arc::new(key),
        chain,
        send,
    })
}

/// A and B with certificates for gw-a/gw-b.example.com under `ca`.
fn sides(ca: &Ca, kind_a: Kind, kind_b: Kind) -> (Side, Side) {
    let (cert_a, key_a) = gateway_cert(ca, kind_a, "gw-a.example.com", (2027, 1, 1));
    let (cert_b, key_b) = gateway_cert(ca, kind_b, "gw-b.example.com", (2027, 1, 1));
    (
        Side {
            auth: Some((
                local(vec![cert_a], key_a, SendCert::IfAsked),
                Auth::PeerCert(trust(&ca.cert)),
            )),
            ..Side::a()
        },
        Side {
            auth: Some((
                local(vec![cert_b], key_b, SendCert::IfAsked),
                Auth::PeerCert(trust(&ca.cert)),
            )),
            ..Side::b()
        },
    )
}

fn run(a: Side, b: Side, wall: SystemTime) -> World {
    let mut w = World::new(a, b);
    w.set_wall_clock(wall);
    w.connect();
    w
}

fn assert_up(w: &World) {
    assert_eq!(w.a.established(), 1, "A: {:?}", w.a.events);
    assert_eq!(w.b.established(), 1, "B: {:?}", w.b.events);
    assert_eq!(w.a.children() + w.b.children(), 2);
    assert_consistent(&w.a.dp, &w.b.dp);
}

/// The reasons of every AuthFailed event of `p`.
fn auth_failures(p: &Peer) -> Vec<String> {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::AuthFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn assert_refused(w: &World, by_a: bool, why: &str) {
    assert_eq!(w.a.established() + w.b.established(), 0, "nothing is up");
    let (refuser, other) = if by_a { (&w.a, &w.b) } else { (&w.b, &w.a) };
    let reasons = auth_failures(refuser);
    assert!(
        reasons.iter().any(|r| r.contains(why)),
        "expected {why:?} in {reasons:?} (other side: {:?})",
        auth_failures(other)
    );
    assert!(w.a.dp.outbound.is_empty() && w.b.dp.outbound.is_empty());
}

#[test]
fn every_key_type_authenticates_both_ways() {
    let ca = root("oxisec test root");
    for (ka, kb) in [
        (Kind::P256, Kind::P256),
        (Kind::P384, Kind::Rsa2048),
        (Kind::Rsa2048, Kind::Ed25519),
        (Kind::Ed25519, Kind::P384),
    ] {
        let (a, b) = sides(&ca, ka, kb);
        let w = run(a, b, today());
        assert_up(&w);
        let s = &w.a.engine.status()[0];
        assert_eq!(s.remote_id, "gw-b.example.com", "{ka:?}/{kb:?}");
    }
}

#[test]
fn a_chain_through_an_intermediate_is_sent_and_validated() {
    let ca = root("oxisec test root");
    let sub = intermediate(&ca, "oxisec test intermediate");
    let (mut a, b) = sides(&ca, Kind::P256, Kind::P256);
    let (cert_a, key_a) = gateway_cert(&sub, Kind::P384, "gw-a.example.com", (2027, 1, 1));
    a.auth = Some((
        local(
            vec![cert_a.clone(), sub.cert.clone()],
            key_a,
            SendCert::Always,
        ),
        Auth::PeerCert(trust(&ca.cert)),
    ));
    let w = run(a, b, today());
    assert_up(&w);

    // Without the intermediate in the chain, B cannot build a path.
    let (_, b) = sides(&ca, Kind::P256, Kind::P256);
    let (cert_a2, key_a2) = gateway_cert(&sub, Kind::P256, "gw-a.example.com", (2027, 1, 1));
    let a = Side {
        auth: Some((
            local(vec![cert_a2], key_a2, SendCert::Always),
            Auth::PeerCert(trust(&ca.cert)),
        )),
        ..Side::a()
    };
    let w = run(a, b, today());
    assert_refused(&w, false, "certificate");
}

#[test]
fn the_identity_must_be_in_the_certificate() {
    let ca = root("oxisec test root");
    let (a, b) = sides(&ca, Kind::P256, Kind::P256);
    // B expects gw-c, but A's certificate names gw-a.
    let b = Side {
        peer_id: Some("gw-c.example.com"),
        ..b
    };
    let w = run(a, b, today());
    assert_eq!(w.a.established() + w.b.established(), 0);
    assert!(!auth_failures(&w.b).is_empty() || !auth_failures(&w.a).is_empty());

    // A claims gw-c.example.com with a certificate for gw-a: refused.
    let (a, b) = sides(&ca, Kind::P256, Kind::P256);
    let a = Side {
        id: "gw-c.example.com",
        ..a
    };
    let b = Side {
        peer_id: Some("gw-c.example.com"),
        ..b
    };
    let w = run(a, b, today());
    assert_refused(&w, false, "gw-c.example.com");
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let ca = root("oxisec test root");
    let other = root("some other root");
    let (a, b) = sides(&ca, Kind::P256, Kind::P256);
    let (cert_a, key_a) = gateway_cert(&other, Kind::P256, "gw-a.example.com", (2027, 1, 1));
    let a = Side {
        auth: Some((
            local(vec![cert_a], key_a, SendCert::Always),
            Auth::PeerCert(trust(&ca.cert)),
        )),
        ..a
    };
    let w = run(a, b, today());
    assert_refused(&w, false, "certificate");
}

#[test]
fn an_expired_certificate_is_refused_with_the_date() {
    let ca = root("oxisec test root");
    let (a, b) = sides(&ca, Kind::P256, Kind::P256);
    let (cert_a, key_a) = gateway_cert(&ca, Kind::P256, "gw-a.example.com", (2025, 1, 1));
    let a = Side {
        auth: Some((
            local(vec![cert_a], key_a, SendCert::Always),
            Auth::PeerCert(trust(&ca.cert)),
        )),
        ..a
    };
    let w = run(a, b, today());
    assert_refused(&w, false, "2025");
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused() {
    let ca = root("oxisec test root");
    let (a, b) = sides(&ca, Kind::P256, Kind::P256);
    let (cert_a, _) = gateway_cert(&ca, Kind::P256, "gw-a.example.com", (2027, 1, 1));
    let (_, wrong_key) = gateway_cert(&ca, Kind::P256, "gw-a.example.com", (2027, 1, 1));
    let a = Side {
        auth: Some((
            local(vec![cert_a], wrong_key, SendCert::Always),
            Auth::PeerCert(trust(&ca.cert)),
        )),
        ..a
    };
    let w = run(a, b, today());
    assert_refused(&w, false, "signature");
}

#[test]
fn without_a_wall_clock_certificates_cannot_be_checked() {
    let ca = root("oxisec test root");
    let (a, b) = sides(&ca, Kind::P256, Kind::P256);
    let mut w = World::new(a, b);
    w.connect();
    assert_eq!(w.a.established() + w.b.established(), 0);
}

#[test]
fn never_sending_the_certificate_leaves_the_peer_nothing_to_check() {
    let ca = root("oxisec test root");
    let (a, b) = sides(&ca, Kind::P256, Kind::P256);
    let (cert_a, key_a) = gateway_cert(&ca, Kind::P256, "gw-a.example.com", (2027, 1, 1));
    let a = Side {
        auth: Some((
            local(vec![cert_a], key_a, SendCert::Never),
            Auth::PeerCert(trust(&ca.cert)),
        )),
        ..a
    };
    let w = run(a, b, today());
    assert_refused(&w, false, "certificate");
}

#[test]
fn certificate_one_way_and_psk_the_other() {
    // RFC 7296 §2.15: each side picks its own method.
    let ca = root("oxisec test root");
    let (cert_a, key_a) = gateway_cert(&ca, Kind::P256, "gw-a.example.com", (2027, 1, 1));
    let psk = || {
        Auth::Psk(oxisec_crypto::Secret::from_slice(
            b"correct horse battery staple 42",
        ))
    };
    let a = Side {
        auth: Some((local(vec![cert_a], key_a, SendCert::IfAsked), psk())),
        ..Side::a()
    };
    let b = Side {
        auth: Some((psk(), Auth::PeerCert(trust(&ca.cert)))),
        ..Side::b()
    };
    let w = run(a, b, today());
    assert_up(&w);
}

#[test]
fn distinguished_name_identities() {
    let ca = root("oxisec test root");
    let (a, b) = sides(&ca, Kind::P256, Kind::P256);
    // A identifies itself by its certificate's subject DN; B expects it.
    let a = Side {
        id: "C=CH, O=oxisec test, CN=gw-a.example.com",
        ..a
    };
    let b = Side {
        peer_id: Some("C=CH, O=oxisec test, CN=gw-a.example.com"),
        ..b
    };
    let w = run(a, b, today());
    assert_up(&w);
    let s = &w.b.engine.status()[0];
    assert!(s.remote_id.contains("gw-a.example.com"), "{}", s.remote_id);
}

#[test]
fn certificate_auth_survives_rekeys() {
    let ca = root("oxisec test root");
    let (a, b) = sides(&ca, Kind::P256, Kind::Ed25519);
    let mut w = run(a, b, today());
    assert_up(&w);
    w.a.engine.handle_command(
        w.now,
        Command::RekeyIke {
            connection: "tunnel".into(),
        },
    );
    w.pump();
    while w.advance(Duration::from_secs(6)) {
        w.pump();
    }
    assert_up(&w);
}
