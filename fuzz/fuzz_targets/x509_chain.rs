//! X.509 on hostile input: certificate and CRL parsing, chain validation,
//! revocation and identity matching (oxisec-pki).
//!
//! The trust store holds the strongSwan-made test CA of
//! `crates/pki/tests/data` (sw-ca.pem); validation runs at 2027-06-01,
//! inside the fixtures' validity, so a mutated copy of `sw-moon.pem` or
//! `sw-carol.pem` goes all the way through webpki, the CRL checks and the
//! identity match. The input is a sequence of records (see
//! `oxisec_fuzz::Records`); `op & 7` says what a record's data is:
//!
//! * 0: a DER certificate, appended to the received chain (the first one
//!   is the end entity).
//! * 1: a PEM or DER file of certificates (`from_pem_or_der`), all appended.
//! * 2: a CRL file (PEM or DER) for `TrustStore::add_crl`.
//! * 3: a CRL the fetcher returns for any distribution point URL.
//! * 4: the claimed identity; `op >> 3` picks its kind (DN, FQDN, e-mail,
//!   IP, KEY_ID) and the data is its value.
//! * 5: the policy: byte 0 EKU (Gateway/Client/Any), byte 1 revocation
//!   (Strict/IfUri/Relaxed), byte 2 max depth.
//! * 6, 7: a signature to verify with the end entity's key (`op >> 3`
//!   picks the scheme; the message is fixed), DER and fixed ECDSA forms.
//!
//! Oracles: nothing panics; a validated peer's key is the end entity's
//! key, and the end entity holds the claimed identity.
#![no_main]

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use oxisec_fuzz::Records;
use oxisec_pki::{
    Certificate, CrlCache, EkuPolicy, IdClaim, RevocationPolicy, SigScheme, TrustStore,
    ValidationPolicy,
};

const CA_PEM: &[u8] = include_bytes!("../../crates/pki/tests/data/sw-ca.pem");

/// At most this many certificates in the chain, as the engine would cap CERT payloads.
const MAX_CHAIN: usize = 16;

#[derive(Debug, Default)]
struct FuzzCache(Mutex<Option<Vec<u8>>>);

impl CrlCache for FuzzCache {
    fn get(&self, _url: &str) -> Option<Vec<u8>> {
        self.0.lock().unwrap().clone()
    }
    fn want(&self, _url: &str) {}
}

fn claim(kind: u8, data: &[u8]) -> IdClaim {
    let text = || String::from_utf8_lossy(data).into_owned();
    match kind % 5 {
        0 => IdClaim::Dn(data.to_vec()),
        1 => IdClaim::Fqdn(text()),
        2 => IdClaim::Email(text()),
        3 => match data.len() {
            4 => IdClaim::Ip(IpAddr::from(<[u8; 4]>::try_from(data).unwrap())),
            16 => IdClaim::Ip(IpAddr::from(<[u8; 16]>::try_from(data).unwrap())),
            _ => IdClaim::Ip(IpAddr::from([192, 0, 2, 10])),
        },
        _ => IdClaim::KeyId(data.to_vec()),
    }
}

fuzz_target!(|input: &[u8]| {
    let anchors = Certificate::from_pem_or_der(CA_PEM).expect("fixture");
    let mut policy = ValidationPolicy {
        eku: EkuPolicy::Any,
        revocation: RevocationPolicy::Relaxed,
        max_depth: 8,
    };
    let mut store = TrustStore::new(anchors, policy);
    let cache = Arc::new(FuzzCache::default());
    store.set_crl_cache(cache.clone());
    let mut chain: Vec<Certificate> = Vec::new();
    let mut id = IdClaim::Fqdn("moon.strongswan.org".to_owned());
    let mut signatures: Vec<(u8, bool, &[u8])> = Vec::new();

    for rec in Records::new(input) {
        match rec.op & 7 {
            0 => {
                if let Ok(cert) = Certificate::from_der(rec.data) {
                    chain.push(cert);
                }
            }
            1 => {
                if let Ok(certs) = Certificate::from_pem_or_der(rec.data) {
                    chain.extend(certs);
                }
            }
            2 => {
                let _ = store.add_crl(rec.data);
            }
            3 => *cache.0.lock().unwrap() = Some(rec.data.to_vec()),
            4 => id = claim(rec.op >> 3, rec.data),
            5 => {
                let b = |i: usize| rec.data.get(i).copied().unwrap_or(0);
                policy.eku =
                    [EkuPolicy::Gateway, EkuPolicy::Client, EkuPolicy::Any][usize::from(b(0) % 3)];
                policy.revocation = [
                    RevocationPolicy::Strict,
                    RevocationPolicy::IfUri,
                    RevocationPolicy::Relaxed,
                ][usize::from(b(1) % 3)];
                policy.max_depth = usize::from(b(2) % 10);
                store.set_policy(policy);
            }
            op => signatures.push((rec.op >> 3, op == 7, rec.data)),
        }
    }
    chain.truncate(MAX_CHAIN);

    for cert in &chain {
        let _ = cert.subject();
        let _ = cert.issuer();
        let _ = cert.spki_sha1();
        let _ = cert.matches(&id);
    }
    let Some(ee) = chain.first() else { return };
    let at = UNIX_EPOCH + Duration::from_secs(1_811_808_000);
    if let Ok(peer) = store.validate(&chain, at, &id) {
        assert_eq!(
            peer.key.spki_der(),
            ee.spki_der(),
            "validated key is not the end entity's"
        );
        assert!(
            ee.matches(&id),
            "validated an identity the certificate does not hold"
        );
    }
    if let Ok(key) = ee.public_key() {
        for (which, fixed, sig) in signatures {
            let scheme = SigScheme::ALL[usize::from(which) % SigScheme::ALL.len()];
            let _ = if fixed {
                key.verify_ecdsa_fixed(scheme, b"fuzz", sig)
            } else {
                key.verify(scheme, b"fuzz", sig)
            };
        }
    }
});
