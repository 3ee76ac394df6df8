//! Hostile input: arbitrary and mutated bytes into every parser and into
//! validation never panic and finish quickly.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Kind, now};
use oxisec_pki::{
    Certificate, EkuPolicy, IdClaim, PrivateKey, PublicKey, RevocationPolicy, SigScheme,
    TrustStore, ValidationPolicy, load_pkcs12,
};
use proptest::prelude::*;

/// A small PKI to mutate: root, intermediate, leaf, a CRL, keys.
struct Seeds {
    store: TrustStore,
    inter: Certificate,
    leaf: Certificate,
    crl: Vec<u8>,
    key_der: Vec<u8>,
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let p = common::pki(Kind::P256);
        let crl = p.inter.current_crl(&[&p.leaf.serial]);
        Seeds {
            store: TrustStore::new(
                vec![p.root.cert.clone()],
                ValidationPolicy {
                    eku: EkuPolicy::Gateway,
                    revocation: RevocationPolicy::Strict,
                    max_depth: 8,
                },
            ),
            inter: p.inter.cert.clone(),
            leaf: p.leaf.cert.clone(),
            crl,
            key_der: p.leaf.key.serialize_der(),
        }
    })
}

/// Generous: a debug build on a loaded 2-core machine. The point is
/// "no blow-up", which shows as seconds or minutes, not milliseconds.
const BUDGET: Duration = Duration::from_secs(2);

fn mutate(seed: &[u8], edits: &[(usize, u8)], truncate: Option<usize>) -> Vec<u8> {
    let mut v = seed.to_vec();
    for &(i, b) in edits {
        if !v.is_empty() {
            let i = i % v.len();
            v[i] = b;
        }
    }
    if let Some(t) = truncate {
        v.truncate(t % (v.len() + 1));
    }
    v
}

fn everything(bytes: &[u8]) {
    let s = seeds();
    let start = Instant::now();
    let _ = Certificate::from_der(bytes);
    let _ = Certificate::from_pem_or_der(bytes);
    let _ = SigScheme::from_algorithm_identifier(bytes);
    let _ = PublicKey::from_spki(bytes);
    let _ = PrivateKey::from_bytes(bytes, None);
    let _ = PrivateKey::from_bytes(bytes, Some(b"pw"));
    let _ = load_pkcs12(bytes, b"pw");
    let mut store = s.store.clone();
    let _ = store.add_crl(bytes);
    if let Ok(cert) = Certificate::from_der(bytes) {
        let _ = cert.subject();
        let _ = cert.spki_sha1();
        let _ = cert.public_key();
        for id in [
            IdClaim::Fqdn("gw.example.com".into()),
            IdClaim::Dn(bytes.to_vec()),
        ] {
            let _ = store.validate(&[cert.clone(), s.inter.clone()], now(), &id);
            let _ = store.validate(&[s.leaf.clone(), cert.clone()], now(), &id);
        }
    }
    let _ = store.validate(
        &[s.leaf.clone(), s.inter.clone()],
        now(),
        &IdClaim::Dn(bytes.to_vec()),
    );
    if let Ok(key) = s.leaf.public_key() {
        for scheme in SigScheme::ALL {
            let _ = key.verify(scheme, b"m", bytes);
            let _ = key.verify_ecdsa_fixed(scheme, b"m", bytes);
        }
    }
    assert!(start.elapsed() < BUDGET, "took {:?}", start.elapsed());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        everything(&bytes);
    }

    #[test]
    fn mutated_certificates(
        which in 0usize..2,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        truncate in proptest::option::of(any::<usize>()),
    ) {
        let s = seeds();
        let seed = if which == 0 { s.leaf.der() } else { s.inter.der() };
        everything(&mutate(seed, &edits, truncate));
    }

    #[test]
    fn mutated_crls(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        truncate in proptest::option::of(any::<usize>()),
    ) {
        everything(&mutate(&seeds().crl, &edits, truncate));
    }

    #[test]
    fn mutated_keys(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        truncate in proptest::option::of(any::<usize>()),
    ) {
        everything(&mutate(&seeds().key_der, &edits, truncate));
    }

    #[test]
    fn pem_wrapped_garbage(body in "[A-Za-z0-9+/=\n]{0,400}", label in "(CERTIFICATE|X509 CRL|PRIVATE KEY|ENCRYPTED PRIVATE KEY|EC PRIVATE KEY)") {
        let pem = format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n");
        everything(pem.as_bytes());
    }
}

#[test]
fn deeply_nested_der_is_bounded() {
    // 30 80 … indefinite/deep nesting and absurd lengths.
    let mut deep = Vec::new();
    for _ in 0..5000 {
        deep.extend_from_slice(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]);
    }
    everything(&deep);
    let nested: Vec<u8> = std::iter::repeat_n([0x30u8, 0x80], 20_000)
        .flatten()
        .collect();
    everything(&nested);
    // A "certificate" at the size limit.
    let mut big = vec![0x30, 0x83, 0x01, 0x00, 0x00];
    big.resize(0x10000 + 5, 0x05);
    everything(&big);
}
