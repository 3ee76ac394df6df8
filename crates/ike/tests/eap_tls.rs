//! EAP-TLS between engines (RFC 7296 §2.16 with RFC 5216 / RFC 9190): a
//! road warrior proves itself with its certificate inside EAP, the gateway
//! with its IKE certificate (also its TLS server certificate); the final
//! AUTH payloads are keyed with the TLS-exported MSK, the virtual IP is
//! leased to the EAP identity — and each way it is refused, named.
mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use oxisec_ike::*;
use oxisec_pki::{
    Certificate, EkuPolicy, PrivateKey, RevocationPolicy, TrustStore, ValidationPolicy,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber, date_time_ymd,
};

const USER: &str = "alice@example.org";
const GATEWAY: &str = "gw-b.example.com";

/// 2025-06-01, inside every certificate's validity below.
fn today() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_748_736_000)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    cert: Certificate,
}

impl Ca {
    fn new(cn: &str) -> Ca {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = date_time_ymd(2020, 1, 1);
        p.not_after = date_time_ymd(2035, 1, 1);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = p.self_signed(&key).unwrap();
        Ca {
            cert: Certificate::from_der(cert.der()).unwrap(),
            params: p,
            key,
        }
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// A gateway (dNSName, serverAuth) or user (rfc822Name, clientAuth)
    /// certificate valid from 2024 to `until`.
    fn issue(&self, name: &str, serial: u8, until: i32) -> LocalCert {
        self.issue_in(name, serial, until, None)
    }

    /// [`Ca::issue`] with an OU in the subject (a user group).
    fn issue_in(&self, name: &str, serial: u8, until: i32, ou: Option<&str>) -> LocalCert {
        let user = name.contains('@');
        let mut p = CertificateParams::default();
        if let Some(ou) = ou {
            p.distinguished_name
                .push(DnType::OrganizationalUnitName, ou);
        }
        p.distinguished_name.push(DnType::CommonName, name);
        p.serial_number = Some(SerialNumber::from_slice(&[serial]));
        p.subject_alt_names = vec![if user {
            SanType::Rfc822Name(name.try_into().unwrap())
        } else {
            SanType::DnsName(name.try_into().unwrap())
        }];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![if user {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        p.not_before = date_time_ymd(2024, 1, 1);
        p.not_after = date_time_ymd(until, 1, 1);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = p.signed_by(&key, &self.issuer()).unwrap();
        LocalCert {
            key: Arc::new(PrivateKey::from_bytes(&key.serialize_der(), None).unwrap()),
            chain: vec![Certificate::from_der(cert.der()).unwrap()],
            send: SendCert::IfAsked,
        }
    }

    fn crl(&self, serial: u8) -> Vec<u8> {
        CertificateRevocationListParams {
            this_update: date_time_ymd(2025, 1, 1),
            next_update: date_time_ymd(2026, 1, 1),
            crl_number: SerialNumber::from_slice(&[1]),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from_slice(&[serial]),
                revocation_time: date_time_ymd(2025, 1, 1),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer())
        .unwrap()
        .der()
        .to_vec()
    }

    fn trust(&self, eku: EkuPolicy, crl: Option<Vec<u8>>) -> Arc<TrustStore> {
        let mut t = TrustStore::new(
            vec![self.cert.clone()],
            ValidationPolicy {
                eku,
                revocation: RevocationPolicy::Relaxed,
                max_depth: 4,
            },
        );
        if let Some(crl) = crl {
            t.add_crl(&crl).unwrap();
        }
        Arc::new(t)
    }
}

/// The gateway (192.0.2.2): its certificate for IKE and TLS, EAP-TLS for
/// its users against `ca` (with `crl`); hands out 10.3.0.0/24.
fn gateway(ca: &Ca, crl: Option<Vec<u8>>, tune: impl FnOnce(&mut EapTlsServer)) -> Side {
    let mut server = EapTlsServer::new(ca.trust(EkuPolicy::Client, crl));
    tune(&mut server);
    Side {
        id: GATEWAY,
        peer_id: None,
        local_ts: vec!["0.0.0.0/0"],
        remote_ts: vec![],
        auth: Some((Auth::Cert(ca.issue(GATEWAY, 1, 2030)), Auth::EapTls(server))),
        remote_access: RemoteAccess {
            pools: vec!["v4".into()],
            dns: vec![ip("10.3.0.53")],
            ..RemoteAccess::default()
        },
        pools: vec![PoolConfig {
            name: "v4".into(),
            first: ip("10.3.0.1"),
            last: ip("10.3.0.254"),
        }],
        ..Side::b()
    }
}

/// A road warrior (192.0.2.1) with IKE identity `id` and `cert`; it trusts
/// gateways from `ca`.
fn client(
    id: &'static str,
    cert: LocalCert,
    ca: &Ca,
    tune: impl FnOnce(&mut EapTlsClient),
) -> Side {
    let mut c = EapTlsClient {
        cert,
        identity: None,
        fragment_size: 1024,
        versions: TlsVersions::Tls12And13,
    };
    tune(&mut c);
    Side {
        id,
        peer_id: Some(GATEWAY),
        local_ts: vec![],
        remote_ts: vec!["0.0.0.0/0"],
        auth: Some((
            Auth::EapTlsClient(c),
            Auth::PeerCert(ca.trust(EkuPolicy::Gateway, None)),
        )),
        remote_access: RemoteAccess {
            request_vips: vec![ip("0.0.0.0")],
            ..RemoteAccess::default()
        },
        ..Side::a()
    }
}

fn run(a: Side, b: Side) -> World {
    let mut w = World::new(a, b);
    w.set_wall_clock(today());
    w.connect();
    w
}

fn eap_users(p: &Peer) -> Vec<String> {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::EapAuthenticated { identity, .. } => Some(identity.clone()),
            _ => None,
        })
        .collect()
}

fn vips(p: &Peer) -> Vec<Vec<IpAddr>> {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::VirtualIp { addresses, .. } => Some(addresses.clone()),
            _ => None,
        })
        .collect()
}

fn auth_failures(p: &Peer) -> Vec<String> {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::AuthFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn assert_up(w: &World, user: &str) {
    assert_eq!(w.a.established(), 1, "client: {:?}", w.a.events);
    assert_eq!(w.b.established(), 1, "gateway: {:?}", w.b.events);
    assert_eq!(w.a.children() + w.b.children(), 2);
    assert_consistent(&w.a.dp, &w.b.dp);
    assert_eq!(eap_users(&w.b), vec![user.to_string()]);
    assert_eq!(vips(&w.a), vec![vec![ip("10.3.0.1")]]);
    let leases = w.b.engine.leases();
    assert_eq!(leases.len(), 1);
    assert_eq!(
        leases[0].identity, user,
        "the lease is keyed by the EAP identity"
    );
}

/// Nothing up anywhere; the gateway said why.
fn assert_refused(w: &mut World, why: &str) {
    while w.advance(Duration::from_secs(60)) {
        w.pump();
    }
    assert_eq!(w.a.engine.status().len(), 0, "client: {:?}", w.a.events);
    assert_eq!(w.b.engine.status().len(), 0, "gateway: {:?}", w.b.events);
    assert!(w.a.dp.outbound.is_empty() && w.b.dp.outbound.is_empty());
    assert!(w.a.dp.inbound.is_empty() && w.b.dp.inbound.is_empty());
    assert!(eap_users(&w.b).is_empty());
    assert!(vips(&w.a).is_empty());
    assert!(w.b.engine.leases().is_empty());
    let reasons = auth_failures(&w.b);
    assert!(
        reasons.iter().any(|r| r.contains(why)),
        "expected {why:?} in {reasons:?} (client: {:?})",
        auth_failures(&w.a)
    );
    assert!(
        !auth_failures(&w.a).is_empty(),
        "the client learns it failed"
    );
}

#[test]
fn eap_tls13_with_a_virtual_ip_keyed_by_the_user() {
    let ca = Ca::new("EAP-TLS CA");
    let w = run(
        client(USER, ca.issue(USER, 2, 2030), &ca, |_| {}),
        gateway(&ca, None, |_| {}),
    );
    assert_up(&w, USER);
    // IKE_SA_INIT; IKE_AUTH: IDi → EAP Start; ClientHello → server
    // flight; client flight → success indication; ack → EAP-Success;
    // final AUTH.
    assert_eq!(w.a.sent.len(), 6, "{} requests", w.a.sent.len());
}

#[test]
fn eap_tls12_when_one_side_stops_there() {
    let ca = Ca::new("EAP-TLS CA");
    for client_12 in [true, false] {
        let w = run(
            client(USER, ca.issue(USER, 2, 2030), &ca, |c| {
                if client_12 {
                    c.versions = TlsVersions::Tls12;
                }
            }),
            gateway(&ca, None, |s| {
                if !client_12 {
                    s.versions = TlsVersions::Tls12;
                }
            }),
        );
        assert_up(&w, USER);
        // TLS 1.2 takes one more flight: the server's Finished after the
        // client's.
        assert_eq!(w.a.sent.len(), 6);
    }
}

#[test]
fn small_fragments_both_ways() {
    let ca = Ca::new("EAP-TLS CA");
    let w = run(
        client(USER, ca.issue(USER, 2, 2030), &ca, |c| {
            c.fragment_size = 150
        }),
        gateway(&ca, None, |s| s.fragment_size = 150),
    );
    assert_up(&w, USER);
    assert!(w.a.sent.len() > 12, "only {} requests", w.a.sent.len());
}

#[test]
fn eap_identity_round_with_a_name_from_the_certificate() {
    let ca = Ca::new("EAP-TLS CA");
    // The IKE identity is an address (as Windows sends); the EAP identity
    // is the one the certificate holds.
    let mut c = client("192.0.2.1", ca.issue(USER, 2, 2030), &ca, |c| {
        c.identity = Some(USER.into())
    });
    c.id = "192.0.2.1";
    let w = run(c, gateway(&ca, None, |s| s.ask_identity = true));
    assert_up(&w, USER);
}

#[test]
fn the_identity_must_be_in_the_certificate() {
    let ca = Ca::new("EAP-TLS CA");
    let mut w = run(
        client("bob@example.org", ca.issue(USER, 2, 2030), &ca, |_| {}),
        gateway(&ca, None, |_| {}),
    );
    assert_refused(&mut w, "bob@example.org: client certificate refused");
}

#[test]
fn refused_certificates_leave_nothing_up() {
    let ca = Ca::new("EAP-TLS CA");
    let foreign = Ca::new("Someone else's CA");
    let cases = [
        (foreign.issue(USER, 2, 2030), None, "unknown CA"),
        (ca.issue(USER, 3, 2025), None, "expired"),
        (ca.issue(USER, 4, 2030), Some(ca.crl(4)), "revoked"),
    ];
    for (cert, crl, why) in cases {
        let mut w = run(client(USER, cert, &ca, |_| {}), gateway(&ca, crl, |_| {}));
        assert_refused(&mut w, why);
    }
}

#[test]
fn a_gateway_without_a_certificate_cannot_run_eap_tls() {
    let ca = Ca::new("EAP-TLS CA");
    let mut gw = gateway(&ca, None, |_| {});
    let remote = gw.auth.take().unwrap().1;
    gw.auth = Some((
        Auth::Psk(oxisec_crypto::Secret::from_slice(b"some psk")),
        remote,
    ));
    let mut w = run(client(USER, ca.issue(USER, 2, 2030), &ca, |_| {}), gw);
    assert_refused(&mut w, "EAP-TLS needs a certificate as our local_auth");
}

#[test]
fn the_certificates_ou_is_the_users_group() {
    let ca = Ca::new("EAP-TLS CA");
    let mut gw = gateway(&ca, None, |_| {});
    gw.pools.push(PoolConfig {
        name: "staff".into(),
        first: ip("10.4.0.1"),
        last: ip("10.4.0.254"),
    });
    gw.remote_access.groups = vec![GroupAccess {
        group: "Staff".into(),
        pools: vec!["staff".into()],
        ..GroupAccess::default()
    }];
    let cert = ca.issue_in(USER, 2, 2030, Some("staff"));
    let w = run(client(USER, cert, &ca, |_| {}), gw);
    assert_eq!(w.a.established(), 1, "client: {:?}", w.a.events);
    assert_eq!(vips(&w.a), vec![vec![ip("10.4.0.1")]], "the staff pool");
}
