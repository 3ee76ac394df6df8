//! Chain validation against rcgen-made PKIs: every CertError by name.

mod common;

use std::sync::{Arc, Mutex};

use common::{KINDS, Kind, now, pki};
use oxisec_pki::{
    CertError, Certificate, CrlCache, EkuPolicy, IdClaim, RevocationPolicy, SigScheme, TrustStore,
    ValidationPolicy,
};
use rcgen::{
    CrlDistributionPoint, ExtendedKeyUsagePurpose, KeyUsagePurpose, SanType, date_time_ymd,
};

fn policy(eku: EkuPolicy, revocation: RevocationPolicy) -> ValidationPolicy {
    ValidationPolicy {
        eku,
        revocation,
        max_depth: 8,
    }
}

fn store(root: &Certificate, revocation: RevocationPolicy) -> TrustStore {
    TrustStore::new(vec![root.clone()], policy(EkuPolicy::Gateway, revocation))
}

fn fqdn() -> IdClaim {
    IdClaim::Fqdn("gw.example.com".to_owned())
}

#[test]
fn valid_chain_for_every_key_type() {
    for kind in KINDS {
        let p = pki(kind);
        let store = store(&p.root.cert, RevocationPolicy::Relaxed);
        // Intermediates may come in any order, duplicates and strangers included.
        let stranger = common::root(Kind::P256, "Stranger").cert;
        let chain = vec![
            p.leaf.cert.clone(),
            stranger,
            p.inter.cert.clone(),
            p.inter.cert.clone(),
        ];
        let peer = store
            .validate(&chain, now(), &fqdn())
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(peer.subject, "CN=gw.example.com, O=oxisec test, C=CH");
        assert_eq!(peer.key.spki_der(), p.leaf.cert.spki_der());

        // The validated key verifies what the leaf's private key signs.
        let key = oxisec_pki::PrivateKey::from_bytes(&p.leaf.key.serialize_der(), None).unwrap();
        let scheme = key.schemes()[0];
        let sig = key.sign(scheme, b"AUTH octets").unwrap();
        peer.key.verify(scheme, b"AUTH octets", &sig).unwrap();
    }
}

#[test]
fn leaf_directly_under_root() {
    let root = common::root(Kind::P256, "Root");
    let leaf = common::leaf(&root, Kind::P256);
    store(&root.cert, RevocationPolicy::Relaxed)
        .validate(&[leaf.cert], now(), &fqdn())
        .unwrap();
}

#[test]
fn expired_leaf() {
    let p = pki(Kind::P256);
    let mut params = common::leaf_params("gw.example.com");
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2024, 3, 1);
    let leaf = common::leaf_with(&p.inter, Kind::P256, params);
    let err = store(&p.root.cert, RevocationPolicy::Relaxed)
        .validate(&[leaf.cert, p.inter.cert.clone()], now(), &fqdn())
        .unwrap_err();
    match &err {
        CertError::Expired(why) => {
            assert!(why.contains("2024-03-01 00:00:00 UTC"), "{why}");
            assert!(why.contains("end entity CN=gw.example.com"), "{why}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn not_yet_valid_leaf() {
    let p = pki(Kind::P256);
    let mut params = common::leaf_params("gw.example.com");
    params.not_before = date_time_ymd(2026, 2, 1);
    params.not_after = date_time_ymd(2030, 1, 1);
    let leaf = common::leaf_with(&p.inter, Kind::P256, params);
    let err = store(&p.root.cert, RevocationPolicy::Relaxed)
        .validate(&[leaf.cert, p.inter.cert.clone()], now(), &fqdn())
        .unwrap_err();
    assert!(
        matches!(&err, CertError::NotYetValid(w) if w.contains("2026-02-01")),
        "{err}"
    );
}

#[test]
fn expired_intermediate_is_named() {
    let root = common::root(Kind::P256, "Root");
    let mut inter = common::intermediate(&root, Kind::P256, "Old Intermediate", None);
    inter.params.not_after = date_time_ymd(2025, 1, 1);
    let der = inter.params.signed_by(&inter.key, &root.issuer()).unwrap();
    inter.cert = Certificate::from_der(der.der()).unwrap();
    let leaf = common::leaf(&inter, Kind::P256);
    let err = store(&root.cert, RevocationPolicy::Relaxed)
        .validate(&[leaf.cert, inter.cert.clone()], now(), &fqdn())
        .unwrap_err();
    assert!(
        matches!(&err, CertError::Expired(w) if w.contains("intermediate CA CN=Old Intermediate")),
        "{err}"
    );
}

#[test]
fn unknown_ca() {
    let p = pki(Kind::P256);
    let other = common::root(Kind::P256, "Other Root");
    let err = store(&other.cert, RevocationPolicy::Relaxed)
        .validate(&[p.leaf.cert.clone(), p.inter.cert.clone()], now(), &fqdn())
        .unwrap_err();
    assert!(
        matches!(&err, CertError::UnknownCa(w) if w.contains("CN=Test Root CA")),
        "{err}"
    );
    // Missing intermediate.
    let err = store(&p.root.cert, RevocationPolicy::Relaxed)
        .validate(std::slice::from_ref(&p.leaf.cert), now(), &fqdn())
        .unwrap_err();
    assert!(
        matches!(&err, CertError::UnknownCa(w) if w.contains("CN=Test Intermediate CA")),
        "{err}"
    );
    // No anchors at all.
    let empty = TrustStore::new(vec![], ValidationPolicy::default());
    assert!(matches!(
        empty.validate(std::slice::from_ref(&p.leaf.cert), now(), &fqdn()),
        Err(CertError::UnknownCa(_))
    ));
}

#[test]
fn forged_chain_signature() {
    // An impostor CA with the same name as the real root, but another key.
    let real = common::root(Kind::P256, "Test Root CA");
    let p = pki(Kind::P256);
    let err = store(&real.cert, RevocationPolicy::Relaxed)
        .validate(&[p.leaf.cert.clone(), p.inter.cert.clone()], now(), &fqdn())
        .unwrap_err();
    match &err {
        CertError::BadChainSignature(why) => {
            assert!(
                why.contains("signature of CN=Test Intermediate CA"),
                "{why}"
            );
        }
        other => panic!("{other}"),
    }
}

#[test]
fn wrong_eku_client_cert_under_gateway_policy() {
    let p = pki(Kind::P256);
    let mut params = common::leaf_params("alice");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let leaf = common::leaf_with(&p.inter, Kind::P256, params);
    let chain = [leaf.cert, p.inter.cert.clone()];
    let err = store(&p.root.cert, RevocationPolicy::Relaxed)
        .validate(&chain, now(), &fqdn())
        .unwrap_err();
    match &err {
        CertError::WrongKeyUsage(why) => {
            assert!(why.contains("clientAuth"), "{why}");
            assert!(why.contains("gateway"), "{why}");
        }
        other => panic!("{other}"),
    }
    // The same certificate passes the client policy.
    let client = TrustStore::new(
        vec![p.root.cert.clone()],
        policy(EkuPolicy::Client, RevocationPolicy::Relaxed),
    );
    client.validate(&chain, now(), &fqdn()).unwrap();
}

#[test]
fn eku_variants() {
    let p = pki(Kind::P256);
    let cases: [(Vec<ExtendedKeyUsagePurpose>, bool, bool); 5] = [
        (vec![], true, true),
        (
            vec![ExtendedKeyUsagePurpose::Other(vec![
                1, 3, 6, 1, 5, 5, 7, 3, 17,
            ])],
            true,
            true,
        ),
        (vec![ExtendedKeyUsagePurpose::ServerAuth], true, false),
        (vec![ExtendedKeyUsagePurpose::CodeSigning], false, false),
        (vec![ExtendedKeyUsagePurpose::Any], true, true),
    ];
    for (ekus, gateway_ok, client_ok) in cases {
        let mut params = common::leaf_params("gw.example.com");
        params.extended_key_usages = ekus.clone();
        let leaf = common::leaf_with(&p.inter, Kind::P256, params);
        let chain = [leaf.cert, p.inter.cert.clone()];
        for (eku, ok) in [
            (EkuPolicy::Gateway, gateway_ok),
            (EkuPolicy::Client, client_ok),
            (EkuPolicy::Any, true),
        ] {
            let s = TrustStore::new(
                vec![p.root.cert.clone()],
                policy(eku, RevocationPolicy::Relaxed),
            );
            let r = s.validate(&chain, now(), &fqdn());
            assert_eq!(r.is_ok(), ok, "{ekus:?} under {eku:?}: {r:?}");
            if !ok {
                assert!(matches!(r, Err(CertError::WrongKeyUsage(_))));
            }
        }
    }
}

#[test]
fn key_usage_without_digital_signature() {
    let p = pki(Kind::P256);
    let mut params = common::leaf_params("gw.example.com");
    params.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    let leaf = common::leaf_with(&p.inter, Kind::P256, params);
    let err = store(&p.root.cert, RevocationPolicy::Relaxed)
        .validate(&[leaf.cert, p.inter.cert.clone()], now(), &fqdn())
        .unwrap_err();
    assert!(
        matches!(&err, CertError::WrongKeyUsage(w) if w.contains("keyEncipherment")),
        "{err}"
    );
}

#[test]
fn leaf_used_as_ca() {
    let root = common::root(Kind::P256, "Root");
    // A non-CA certificate that issues another.
    let fake = common::leaf_with(&root, Kind::P256, common::leaf_params("not a ca"));
    let fake_ca = common::Ca {
        params: common::leaf_params("not a ca"),
        key: fake.key,
        cert: fake.cert,
        crl_uri: None,
    };
    let leaf = common::leaf(&fake_ca, Kind::P256);
    let err = store(&root.cert, RevocationPolicy::Relaxed)
        .validate(&[leaf.cert, fake_ca.cert.clone()], now(), &fqdn())
        .unwrap_err();
    assert!(
        matches!(&err, CertError::WrongKeyUsage(w) if w.contains("not a CA")),
        "{err}"
    );
}

#[test]
fn depth_limit() {
    let root = common::root(Kind::P256, "Root");
    let i1 = common::intermediate(&root, Kind::P256, "I1", None);
    let i2 = common::intermediate(&i1, Kind::P256, "I2", None);
    let leaf = common::leaf(&i2, Kind::P256);
    let chain = [leaf.cert, i2.cert.clone(), i1.cert.clone()];
    let mut pol = policy(EkuPolicy::Gateway, RevocationPolicy::Relaxed);
    pol.max_depth = 4;
    TrustStore::new(vec![root.cert.clone()], pol)
        .validate(&chain, now(), &fqdn())
        .unwrap();
    pol.max_depth = 3;
    let err = TrustStore::new(vec![root.cert.clone()], pol)
        .validate(&chain, now(), &fqdn())
        .unwrap_err();
    assert_eq!(err, CertError::ChainTooLong);
    // Too many received certificates.
    let many: Vec<Certificate> = std::iter::repeat_n(i1.cert.clone(), 20).collect();
    let err = TrustStore::new(vec![root.cert.clone()], pol)
        .validate(&many, now(), &fqdn())
        .unwrap_err();
    assert_eq!(err, CertError::ChainTooLong);
}

#[test]
fn cross_signed_loop_terminates() {
    // Two CAs that each certify the other: a loop the path builder must not follow forever.
    let root = common::root(Kind::P256, "Root");
    let a = common::root(Kind::P256, "Loop A");
    let b = common::root(Kind::P256, "Loop B");
    let a_by_b = a.params.signed_by(&a.key, &b.issuer()).unwrap();
    let b_by_a = b.params.signed_by(&b.key, &a.issuer()).unwrap();
    let leaf = common::leaf(&a, Kind::P256);
    let chain = [
        leaf.cert,
        Certificate::from_der(a_by_b.der()).unwrap(),
        Certificate::from_der(b_by_a.der()).unwrap(),
    ];
    let err = store(&root.cert, RevocationPolicy::Relaxed)
        .validate(&chain, now(), &fqdn())
        .unwrap_err();
    assert!(matches!(err, CertError::UnknownCa(_)), "{err}");
}

#[test]
fn identity_mismatch_for_every_claim_kind() {
    let p = pki(Kind::P256);
    let s = store(&p.root.cert, RevocationPolicy::Relaxed);
    let chain = [p.leaf.cert.clone(), p.inter.cert.clone()];
    let good = [
        IdClaim::Fqdn("gw.example.com".into()),
        IdClaim::Fqdn("GW.Example.COM.".into()),
        IdClaim::Email("admin@EXAMPLE.com".into()),
        IdClaim::Ip("192.0.2.1".parse().unwrap()),
        IdClaim::Ip("2001:db8::1".parse().unwrap()),
        IdClaim::Dn(p.leaf.cert.subject_der()),
    ];
    for id in &good {
        s.validate(&chain, now(), id)
            .unwrap_or_else(|e| panic!("{id:?}: {e}"));
    }
    let bad = [
        IdClaim::Fqdn("other.example.com".into()),
        // The CN is not a dNSName: no CN fallback.
        IdClaim::Fqdn("gw".into()),
        IdClaim::Email("Admin@example.com".into()),
        IdClaim::Ip("192.0.2.2".parse().unwrap()),
        IdClaim::Dn(p.inter.cert.subject_der()),
        IdClaim::KeyId(b"gw.example.com".to_vec()),
    ];
    for id in &bad {
        match s.validate(&chain, now(), id) {
            Err(CertError::IdentityMismatch {
                claimed,
                subject,
                sans,
            }) => {
                assert_eq!(subject, "CN=gw.example.com, O=oxisec test, C=CH");
                assert!(
                    sans.contains("DNS:gw.example.com") && sans.contains("IP:192.0.2.1"),
                    "{sans}"
                );
                assert!(!claimed.is_empty());
            }
            other => panic!("{id:?}: {other:?}"),
        }
    }
}

#[test]
fn dn_matching_is_normalised() {
    let p = pki(Kind::P256);
    // The same DN with other string types, case and spacing:
    // SEQUENCE { SET { C=PrintableString "ch" } SET { O=UTF8 "OXISEC  test" } SET { CN=UTF8 " gw.EXAMPLE.com" } }
    fn atv(oid_last: u8, tag: u8, value: &str) -> Vec<u8> {
        let mut atv = vec![0x06, 0x03, 0x55, 0x04, oid_last, tag, value.len() as u8];
        atv.extend_from_slice(value.as_bytes());
        let mut seq = vec![0x30, atv.len() as u8];
        seq.extend(atv);
        let mut set = vec![0x31, seq.len() as u8];
        set.extend(seq);
        set
    }
    let mut body = atv(6, 0x13, "ch");
    body.extend(atv(10, 0x0c, "OXISEC  test"));
    body.extend(atv(3, 0x0c, " gw.EXAMPLE.com"));
    let mut name = vec![0x30, body.len() as u8];
    name.extend(body);
    assert!(p.leaf.cert.matches(&IdClaim::Dn(name.clone())));
    // Order of RDNs matters.
    let mut body = atv(10, 0x0c, "oxisec test");
    body.extend(atv(6, 0x13, "CH"));
    body.extend(atv(3, 0x0c, "gw.example.com"));
    let mut reordered = vec![0x30, body.len() as u8];
    reordered.extend(body);
    assert!(!p.leaf.cert.matches(&IdClaim::Dn(reordered)));
    // Garbage never matches.
    assert!(!p.leaf.cert.matches(&IdClaim::Dn(vec![0x30, 0x00])));
    assert!(!p.leaf.cert.matches(&IdClaim::Dn(vec![])));
}

#[test]
fn revoked_leaf_via_crl_file() {
    let p = pki(Kind::P256);
    let mut s = store(&p.root.cert, RevocationPolicy::Relaxed);
    // The intermediate's CRL cannot be checked against an anchor: kept for later.
    s.add_crl(&p.inter.current_crl(&[&p.leaf.serial])).unwrap();
    let err = s
        .validate(&[p.leaf.cert.clone(), p.inter.cert.clone()], now(), &fqdn())
        .unwrap_err();
    assert_eq!(
        err,
        CertError::Revoked {
            serial: "1001".to_owned(),
            issuer: "CN=Test Intermediate CA, O=oxisec test, C=CH".to_owned()
        }
    );
    // A CRL revoking another serial leaves the leaf good; a newer CRL replaces the older one.
    let mut s = store(&p.root.cert, RevocationPolicy::Strict);
    s.add_crl(&p.inter.crl(&[&[0x77]], (2025, 2, 1), (2026, 1, 1)))
        .unwrap();
    s.add_crl(&p.root.current_crl(&[])).unwrap();
    s.validate(&[p.leaf.cert.clone(), p.inter.cert.clone()], now(), &fqdn())
        .unwrap();
}

#[test]
fn revoked_intermediate_via_root_crl() {
    let p = pki(Kind::P384);
    let serial = p.inter.cert.serial().to_vec();
    let mut s = store(&p.root.cert, RevocationPolicy::Relaxed);
    s.add_crl(&p.root.current_crl(&[&serial])).unwrap();
    let err = s
        .validate(&[p.leaf.cert.clone(), p.inter.cert.clone()], now(), &fqdn())
        .unwrap_err();
    assert!(
        matches!(&err, CertError::Revoked { issuer, .. } if issuer.contains("Test Root CA")),
        "{err}"
    );
}

#[test]
fn crl_with_bad_signature_is_refused() {
    let p = pki(Kind::P256);
    let impostor = common::root(Kind::P256, "Test Root CA");
    let mut s = store(&p.root.cert, RevocationPolicy::Relaxed);
    // Signed by a CA of the same name but another key: refused at once.
    let err = s.add_crl(&impostor.current_crl(&[])).unwrap_err();
    assert!(matches!(err, CertError::BadChainSignature(_)), "{err}");
    // Garbage.
    assert!(matches!(
        s.add_crl(b"not a crl"),
        Err(CertError::Malformed(_))
    ));
    // A forged intermediate CRL (same name, other key) is ignored at validation: the leaf
    // is listed, yet not revoked; under Strict the status is unknown.
    let fake_inter = common::intermediate(&impostor, Kind::P256, "Test Intermediate CA", None);
    s.add_crl(&fake_inter.current_crl(&[&p.leaf.serial]))
        .unwrap();
    let chain = [p.leaf.cert.clone(), p.inter.cert.clone()];
    s.validate(&chain, now(), &fqdn()).unwrap();
    s.set_policy(policy(EkuPolicy::Gateway, RevocationPolicy::Strict));
    s.add_crl(&p.root.current_crl(&[])).unwrap();
    let err = s.validate(&chain, now(), &fqdn()).unwrap_err();
    assert!(
        matches!(&err, CertError::RevocationUnknown(w) if w.contains("does not verify")),
        "{err}"
    );
}

#[test]
fn pem_crl_files() {
    let p = pki(Kind::P256);
    let der = p.inter.current_crl(&[&p.leaf.serial]);
    let pem = pem::encode(&pem::Pem::new("X509 CRL", der));
    let mut s = store(&p.root.cert, RevocationPolicy::Relaxed);
    s.add_crl(pem.as_bytes()).unwrap();
    let err = s
        .validate(&[p.leaf.cert.clone(), p.inter.cert.clone()], now(), &fqdn())
        .unwrap_err();
    assert!(matches!(err, CertError::Revoked { .. }));
}

/// A CrlCache backed by a map, recording wanted URLs.
#[derive(Debug, Default)]
struct MapCache {
    crls: Mutex<std::collections::HashMap<String, Vec<u8>>>,
    wanted: Mutex<Vec<String>>,
}

impl CrlCache for MapCache {
    fn get(&self, url: &str) -> Option<Vec<u8>> {
        self.crls.lock().unwrap().get(url).cloned()
    }
    fn want(&self, url: &str) {
        self.wanted.lock().unwrap().push(url.to_owned());
    }
}

const CRL_URL: &str = "http://crl.example.com/inter.crl";

fn pki_with_cdp() -> common::Pki {
    let root = common::root(Kind::P256, "Test Root CA");
    let inter = common::intermediate(&root, Kind::P256, "Test Intermediate CA", Some(CRL_URL));
    let leaf = common::leaf(&inter, Kind::P256);
    assert_eq!(leaf.cert.crl_distribution_points(), [CRL_URL.to_owned()]);
    common::Pki { root, inter, leaf }
}

#[test]
fn missing_crl_strict_vs_ifuri_vs_relaxed() {
    let p = pki_with_cdp();
    let chain = [p.leaf.cert.clone(), p.inter.cert.clone()];
    for (revocation, ok) in [
        (RevocationPolicy::Strict, false),
        (RevocationPolicy::IfUri, false),
        (RevocationPolicy::Relaxed, true),
    ] {
        let cache = Arc::new(MapCache::default());
        let mut s = store(&p.root.cert, revocation);
        s.set_crl_cache(cache.clone());
        let r = s.validate(&chain, now(), &fqdn());
        assert_eq!(r.is_ok(), ok, "{revocation:?}: {r:?}");
        if let Err(e) = r {
            assert!(
                matches!(&e, CertError::RevocationUnknown(w) if w.contains(CRL_URL) && w.contains("not fetched")),
                "{e}"
            );
        }
        // Whatever the policy, the fetcher is asked for the URL.
        assert!(
            cache.wanted.lock().unwrap().contains(&CRL_URL.to_owned()),
            "{revocation:?}"
        );
    }

    // The intermediate has no distribution point: IfUri does not need its CRL, Strict does.
    let cache = Arc::new(MapCache::default());
    cache
        .crls
        .lock()
        .unwrap()
        .insert(CRL_URL.to_owned(), p.inter.current_crl(&[]));
    let mut s = store(&p.root.cert, RevocationPolicy::IfUri);
    s.set_crl_cache(cache.clone());
    s.validate(&chain, now(), &fqdn()).unwrap();
    s.set_policy(policy(EkuPolicy::Gateway, RevocationPolicy::Strict));
    let err = s.validate(&chain, now(), &fqdn()).unwrap_err();
    assert!(
        matches!(&err, CertError::RevocationUnknown(w) if w.contains("Test Intermediate CA")),
        "{err}"
    );
    s.add_crl(&p.root.current_crl(&[])).unwrap();
    s.validate(&chain, now(), &fqdn()).unwrap();
}

#[test]
fn crl_from_cache_revokes_and_expires() {
    let p = pki_with_cdp();
    let chain = [p.leaf.cert.clone(), p.inter.cert.clone()];
    let cache = Arc::new(MapCache::default());
    let mut s = store(&p.root.cert, RevocationPolicy::IfUri);
    s.set_crl_cache(cache.clone());

    cache
        .crls
        .lock()
        .unwrap()
        .insert(CRL_URL.to_owned(), p.inter.current_crl(&[&p.leaf.serial]));
    assert!(matches!(
        s.validate(&chain, now(), &fqdn()),
        Err(CertError::Revoked { .. })
    ));

    // A stale CRL (nextUpdate passed) that does not list the leaf: unknown, and fetched again.
    cache.crls.lock().unwrap().insert(
        CRL_URL.to_owned(),
        p.inter.crl(&[], (2024, 1, 1), (2024, 6, 1)),
    );
    cache.wanted.lock().unwrap().clear();
    let err = s.validate(&chain, now(), &fqdn()).unwrap_err();
    assert!(
        matches!(&err, CertError::RevocationUnknown(w) if w.contains("expired on 2024-06-01")),
        "{err}"
    );
    assert_eq!(*cache.wanted.lock().unwrap(), [CRL_URL.to_owned()]);

    // Garbage in the cache.
    cache
        .crls
        .lock()
        .unwrap()
        .insert(CRL_URL.to_owned(), vec![0x30, 0x03, 0x02, 0x01, 0x00]);
    assert!(matches!(
        s.validate(&chain, now(), &fqdn()),
        Err(CertError::RevocationUnknown(_))
    ));
}

#[test]
fn non_http_distribution_points_are_not_required() {
    let p = pki(Kind::P256);
    let mut params = common::leaf_params("gw.example.com");
    params.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec!["ldap://ldap.example.com/cn=CA?certificateRevocationList".into()],
    }];
    let leaf = common::leaf_with(&p.inter, Kind::P256, params);
    store(&p.root.cert, RevocationPolicy::IfUri)
        .validate(&[leaf.cert, p.inter.cert.clone()], now(), &fqdn())
        .unwrap();
}

#[test]
fn certificate_fields() {
    let p = pki(Kind::P256);
    let c = &p.leaf.cert;
    assert_eq!(c.issuer(), "CN=Test Intermediate CA, O=oxisec test, C=CH");
    assert_eq!(c.serial_hex(), "1001");
    assert!(c.key_usage().unwrap().digital_signature());
    assert_eq!(
        c.extended_key_usage().unwrap(),
        [
            oxisec_pki::eku::SERVER_AUTH.to_owned(),
            oxisec_pki::eku::IPSEC_IKE.to_owned()
        ]
    );
    assert!(!c.is_ca());
    assert!(p.inter.cert.is_ca());
    assert_eq!(
        c.subject_alt_names(),
        [
            oxisec_pki::SubjectAltName::Dns("gw.example.com".into()),
            oxisec_pki::SubjectAltName::Email("admin@example.com".into()),
            oxisec_pki::SubjectAltName::Ip("192.0.2.1".parse().unwrap()),
            oxisec_pki::SubjectAltName::Ip("2001:db8::1".parse().unwrap()),
        ]
    );
    // CERTREQ hash = SHA-1 over the whole SubjectPublicKeyInfo.
    let expect = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        p.root.cert.spki_der(),
    );
    assert_eq!(p.root.cert.spki_sha1().as_slice(), expect.as_ref());
    let s = store(&p.root.cert, RevocationPolicy::Relaxed);
    assert_eq!(s.ca_hashes(), vec![p.root.cert.spki_sha1()]);
    // DER in, same DER out; PEM bundles.
    let pem = format!("{}{}", p.leaf.cert_pem(), p.inter.cert_pem());
    let certs = Certificate::from_pem_or_der(pem.as_bytes()).unwrap();
    assert_eq!(certs, [p.leaf.cert.clone(), p.inter.cert.clone()]);
    let mut ders = p.leaf.cert.der().to_vec();
    ders.extend_from_slice(p.inter.cert.der());
    assert_eq!(Certificate::from_pem_or_der(&ders).unwrap().len(), 2);
    let _ = SigScheme::ALL;
}

#[test]
fn subject_escaping_and_ordering() {
    let root = common::root(Kind::P256, "Root");
    let mut params = common::leaf_params("x");
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::OrganizationName, "Example, Inc.");
    dn.push(rcgen::DnType::CommonName, "#evil\nline ");
    params.distinguished_name = dn;
    params.subject_alt_names = vec![SanType::DnsName("a.example".try_into().unwrap())];
    let leaf = common::leaf_with(&root, Kind::P256, params);
    assert_eq!(
        leaf.cert.subject(),
        "CN=\\#evil\\0Aline\\ , O=Example\\, Inc."
    );
}

trait CertPem {
    fn cert_pem(&self) -> String;
}

impl CertPem for common::Leaf {
    fn cert_pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", self.cert.der().to_vec()))
    }
}

impl CertPem for common::Ca {
    fn cert_pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", self.cert.der().to_vec()))
    }
}
