//! Certificates, CRLs and PKCS#12 files made by strongSwan's `pki` and
//! OpenSSL (see tests/data/README.md), validated as a peer would send them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oxisec_pki::{
    CertError, Certificate, CrlCache, EkuPolicy, IdClaim, RevocationPolicy, TrustStore,
    ValidationPolicy, load_pkcs12,
};

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

fn cert(name: &str) -> Certificate {
    Certificate::from_pem_or_der(&data(name)).unwrap().remove(0)
}

/// 2027-06-01, inside the fixtures' validity.
fn at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_811_808_000)
}

const CDP: &str = "http://crl.strongswan.org/ca.crl";

#[derive(Debug, Default)]
struct OneCrl(Mutex<Option<Vec<u8>>>, Mutex<Vec<String>>);

impl CrlCache for OneCrl {
    fn get(&self, url: &str) -> Option<Vec<u8>> {
        if url == CDP {
            self.0.lock().unwrap().clone()
        } else {
            None
        }
    }
    fn want(&self, url: &str) {
        self.1.lock().unwrap().push(url.to_owned());
    }
}

fn store(eku: EkuPolicy) -> (TrustStore, Arc<OneCrl>) {
    let cache = Arc::new(OneCrl::default());
    let mut s = TrustStore::new(
        vec![cert("sw-ca.pem")],
        ValidationPolicy {
            eku,
            revocation: RevocationPolicy::IfUri,
            max_depth: 4,
        },
    );
    s.set_crl_cache(cache.clone());
    (s, cache)
}

#[test]
fn strongswan_gateway_certificate() {
    let moon = cert("sw-moon.pem");
    assert_eq!(
        moon.subject(),
        "CN=moon.strongswan.org, O=strongSwan test, C=CH"
    );
    assert_eq!(moon.serial_hex(), "0A");
    assert_eq!(moon.crl_distribution_points(), [CDP.to_owned()]);
    let (s, cache) = store(EkuPolicy::Gateway);

    // The CRL is not there yet: IfUri fails and asks for it.
    let err = s
        .validate(
            std::slice::from_ref(&moon),
            at(),
            &IdClaim::Fqdn("moon.strongswan.org".into()),
        )
        .unwrap_err();
    assert!(matches!(err, CertError::RevocationUnknown(_)), "{err}");
    assert_eq!(*cache.1.lock().unwrap(), [CDP.to_owned()]);

    *cache.0.lock().unwrap() = Some(data("sw-ca.crl"));
    for id in [
        IdClaim::Fqdn("moon.strongswan.org".into()),
        IdClaim::Ip("192.0.2.10".parse().unwrap()),
        IdClaim::Dn(moon.subject_der()),
    ] {
        let peer = s
            .validate(std::slice::from_ref(&moon), at(), &id)
            .unwrap_or_else(|e| panic!("{id:?}: {e}"));
        assert_eq!(peer.key.algorithm(), "RSA-3072");
    }
    // Its key (from the PKCS#12 export) signs what the validated key verifies.
    let (key, _) = load_pkcs12(&data("sw-moon.aes.p12"), b"oxisec test").unwrap();
    let peer = s
        .validate(&[moon], at(), &IdClaim::Fqdn("moon.strongswan.org".into()))
        .unwrap();
    for scheme in key.schemes() {
        peer.key
            .verify(scheme, b"AUTH", &key.sign(scheme, b"AUTH").unwrap())
            .unwrap();
    }
}

#[test]
fn strongswan_revoked_client_certificate() {
    let carol = cert("sw-carol.pem");
    let email = IdClaim::Email("carol@strongswan.org".into());
    // clientAuth only: not a gateway.
    let (s, _) = store(EkuPolicy::Gateway);
    assert!(matches!(
        s.validate(std::slice::from_ref(&carol), at(), &email),
        Err(CertError::WrongKeyUsage(_))
    ));
    // As a client it is revoked by the strongSwan CRL, from the cache …
    let (s, cache) = store(EkuPolicy::Client);
    *cache.0.lock().unwrap() = Some(data("sw-ca.crl"));
    let err = s
        .validate(std::slice::from_ref(&carol), at(), &email)
        .unwrap_err();
    assert_eq!(
        err,
        CertError::Revoked {
            serial: "0B".into(),
            issuer: "CN=strongSwan Root CA, O=strongSwan test, C=CH".into()
        }
    );
    // … and from a CRL file (verified against the anchor when added).
    let mut s = TrustStore::new(
        vec![cert("sw-ca.pem")],
        ValidationPolicy {
            eku: EkuPolicy::Client,
            revocation: RevocationPolicy::Strict,
            max_depth: 4,
        },
    );
    s.add_crl(&data("sw-ca.crl")).unwrap();
    assert!(matches!(
        s.validate(&[carol], at(), &email),
        Err(CertError::Revoked { .. })
    ));
    // Before the certificates' time.
    let early = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert!(matches!(
        s.validate(&[cert("sw-moon.pem")], early, &email),
        Err(CertError::NotYetValid(_))
    ));
}
