//! EAP-MSCHAPv2 between engines (RFC 7296 §2.16): a client without an AUTH
//! of its own, a gateway that authenticates with a PSK or a certificate and
//! then checks the user's password, the final AUTH payloads keyed with the
//! MSK, virtual IPs leased per EAP user — and each way it fails.
mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use oxisec_crypto::Secret;
use oxisec_ike::*;

const GW_PSK: &str = "gateway pre-shared key, long enough";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn users() -> Arc<dyn EapUsers> {
    let mut m = HashMap::new();
    m.insert("alice".to_string(), NtHash::from_password("wonderland"));
    m.insert("bob".to_string(), NtHash::from_password("builder"));
    Arc::new(m)
}

/// Users with groups, as a users file gives them.
struct GroupedUsers;

impl EapUsers for GroupedUsers {
    fn nt_hash(&self, name: &str) -> Option<NtHash> {
        match name {
            "alice" => Some(NtHash::from_password("wonderland")),
            "bob" => Some(NtHash::from_password("builder")),
            "carol" => Some(NtHash::from_password("singer")),
            _ => None,
        }
    }

    fn groups(&self, name: &str) -> Vec<String> {
        match name {
            "alice" => vec!["staff".into()],
            "bob" => vec!["contractors".into(), "staff".into()],
            _ => Vec::new(),
        }
    }
}

/// The gateway (192.0.2.2): authenticates itself with `local`, its clients
/// with EAP-MSCHAPv2; hands out 10.3.0.0/24.
fn gateway(local: Auth, ask_identity: bool) -> Side {
    Side {
        local_ts: vec!["0.0.0.0/0"],
        remote_ts: vec![],
        peer_id: None,
        auth: Some((
            local,
            Auth::Eap(EapServer {
                users: users(),
                ask_identity,
            }),
        )),
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

fn psk() -> Auth {
    Auth::Psk(Secret::from_slice(GW_PSK.as_bytes()))
}

/// A client (192.0.2.1) with EAP credentials; it trusts the gateway by `remote`.
fn client(user: &str, password: &str, remote: Auth) -> Side {
    Side {
        local_ts: vec![],
        remote_ts: vec!["0.0.0.0/0"],
        auth: Some((
            Auth::EapClient {
                identity: user.into(),
                password: Secret::from_slice(password.as_bytes()),
            },
            remote,
        )),
        remote_access: RemoteAccess {
            request_vips: vec![ip("0.0.0.0")],
            ..RemoteAccess::default()
        },
        ..Side::a()
    }
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
        "the lease is keyed by the EAP user"
    );
}

/// Nothing up anywhere; both sides said why (`why` in the refuser's reasons).
fn assert_refused(w: &mut World, refuser_is_gateway: bool, why: &str) {
    // Let the gateway's half-open timer clean up whatever it still holds.
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
    let (refuser, other) = if refuser_is_gateway {
        (&w.b, &w.a)
    } else {
        (&w.a, &w.b)
    };
    let reasons = auth_failures(refuser);
    assert!(
        reasons.iter().any(|r| r.contains(why)),
        "expected {why:?} in {reasons:?} (other side: {:?})",
        auth_failures(other)
    );
}

#[test]
fn eap_mschapv2_with_a_virtual_ip_keyed_by_the_user() {
    let mut w = World::new(client("alice", "wonderland", psk()), gateway(psk(), false));
    w.connect();
    assert_up(&w, "alice");
    // IKE_SA_INIT, IKE_AUTH (IDi, no AUTH), EAP Response, Success
    // acknowledgement, final AUTH: five requests, five responses.
    assert_eq!(w.a.sent.len(), 5);
    assert_eq!(w.b.sent.len(), 5);
    let s = &w.b.engine.status()[0];
    assert_eq!(
        s.remote_id, "gw-a.example.com",
        "the IKE identity stays the IDi"
    );
}

#[test]
fn eap_identity_round_and_a_domain_prefix() {
    let mut w = World::new(client("CORP\\bob", "builder", psk()), gateway(psk(), true));
    w.connect();
    assert_up(&w, "bob");
    // One more round trip for EAP-Identity.
    assert_eq!(w.a.sent.len(), 6);
}

#[test]
fn a_rekey_and_a_reconnect_keep_the_users_address() {
    let mut w = World::new(client("alice", "wonderland", psk()), gateway(psk(), false));
    w.connect();
    assert_up(&w, "alice");
    w.b.engine.handle_command(
        w.now,
        Command::RekeyIke {
            connection: "tunnel".into(),
        },
    );
    w.pump();
    assert_eq!(w.b.engine.leases()[0].identity, "alice");
    assert!(
        w.b.events
            .iter()
            .all(|e| !matches!(e, Event::LeaseChanged { online: false, .. }))
    );
    w.a.engine.handle_command(
        w.now,
        Command::TerminateIke {
            connection: "tunnel".into(),
        },
    );
    w.pump();
    let offline = w.b.events.iter().find_map(|e| match e {
        Event::LeaseChanged {
            identity,
            online: false,
            ..
        } => Some(identity.clone()),
        _ => None,
    });
    assert_eq!(offline.as_deref(), Some("alice"));
    w.initiate();
    w.pump();
    assert_eq!(vips(&w.a).last().unwrap(), &vec![ip("10.3.0.1")]);
}

#[test]
fn wrong_password_ends_in_eap_failure_and_no_sa() {
    let mut w = World::new(client("alice", "rabbit", psk()), gateway(psk(), false));
    w.connect();
    assert_refused(&mut w, true, "unknown user or wrong password");
    let client_side = auth_failures(&w.a);
    assert!(
        client_side.iter().any(|r| r.contains("error 691")),
        "{client_side:?}"
    );
}

#[test]
fn unknown_user_fails_like_a_wrong_password() {
    let mut w = World::new(client("mallory", "x", psk()), gateway(psk(), true));
    w.connect();
    assert_refused(&mut w, true, "unknown user or wrong password");
}

#[test]
fn client_refuses_a_gateway_with_the_wrong_psk_before_eap() {
    let wrong = Auth::Psk(Secret::from_slice(b"not the gateway's key at all, no"));
    let mut w = World::new(client("alice", "wonderland", wrong), gateway(psk(), false));
    w.connect();
    assert_refused(&mut w, false, "pre-shared key does not match");
    // The client never answered the challenge: IKE_SA_INIT and its first
    // IKE_AUTH request only.
    assert_eq!(w.a.sent.len(), 2);
}

#[test]
fn a_client_with_a_psk_is_refused_by_an_eap_only_gateway() {
    let c = Side {
        auth: Some((psk(), psk())),
        ..client("alice", "wonderland", psk())
    };
    let mut w = World::new(c, gateway(psk(), false));
    w.connect();
    assert_refused(&mut w, true, "must authenticate with EAP");
}

#[test]
fn a_password_that_is_not_utf8_is_refused_locally() {
    let mut c = client("alice", "x", psk());
    c.auth = Some((
        Auth::EapClient {
            identity: "alice".into(),
            password: Secret::from_slice(&[0xff, 0xfe]),
        },
        psk(),
    ));
    let mut w = World::new(c, gateway(psk(), false));
    w.connect();
    assert_eq!(w.a.engine.status().len(), 0);
    assert!(w.a.events.iter().any(|e| matches!(
        e,
        Event::IkeDown { reason: DownReason::Failed(r), .. } if r.contains("UTF-8")
    )));
}

#[test]
fn hostile_identity_is_refused() {
    // A control character in the EAP identity the client announces.
    let mut w = World::new(client("eve\u{0}root", "x", psk()), gateway(psk(), true));
    w.connect();
    assert_refused(&mut w, true, "unusable EAP identity");
}

#[test]
fn lost_and_duplicated_eap_rounds_are_retransmitted() {
    // Drop every message the first time it is sent, in both directions:
    // each EAP round is recovered by retransmission (the gateway answers a
    // retransmitted request from its cache, it does not run EAP twice).
    // This takes longer than the 30 s half-open timeout: each completed
    // round restarts it.
    let mut w = World::new(client("alice", "wonderland", psk()), gateway(psk(), false));
    w.initiate();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..40 {
        w.pump_with(|_, t| !seen.insert(t.data.clone()));
        if w.a.established() == 1 && w.b.established() == 1 {
            break;
        }
        w.advance(Duration::from_secs(30));
    }
    assert_up(&w, "alice");
    assert!(w.b.engine.stats().retransmits_answered >= 1);

    // Duplicates: every datagram delivered twice.
    let mut w = World::new(client("bob", "builder", psk()), gateway(psk(), true));
    w.initiate();
    for _ in 0..20 {
        let from_a = w.a.drain();
        let from_b = w.b.drain();
        if from_a.is_empty() && from_b.is_empty() {
            break;
        }
        for t in &from_a {
            deliver(&mut w.b, w.now, t);
            deliver(&mut w.b, w.now, t);
        }
        for t in &from_b {
            deliver(&mut w.a, w.now, t);
            deliver(&mut w.a, w.now, t);
        }
    }
    assert_up(&w, "bob");
}

#[test]
fn altered_datagrams_during_eap_are_dropped_and_recovered() {
    let mut w = World::new(client("alice", "wonderland", psk()), gateway(psk(), false));
    w.initiate();
    let mut n = 0;
    // Flip one octet of the 3rd and 4th client datagrams (EAP rounds):
    // integrity protection drops them, retransmission recovers.
    let mut flip = |from_a: bool, t: &mut Transmit| {
        if from_a {
            n += 1;
            if n == 3 || n == 4 {
                let i = t.data.len() - 20;
                t.data[i] ^= 0x40;
            }
        }
        true
    };
    for _ in 0..10 {
        w.pump_with(&mut flip);
        if w.a.established() == 1 {
            break;
        }
        w.advance(Duration::from_secs(30));
    }
    assert_up(&w, "alice");
    assert!(w.b.engine.stats().integrity_failed >= 1);
}

mod certificates {
    use super::*;
    use oxisec_pki::{
        Certificate, EkuPolicy, PrivateKey, RevocationPolicy, TrustStore, ValidationPolicy,
    };
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, date_time_ymd,
    };

    fn dn(cn: &str) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "oxisec test");
        dn.push(DnType::CommonName, cn);
        dn
    }

    /// A CA and a gateway certificate for gw-b.example.com under it.
    fn pki() -> (Certificate, Certificate, PrivateKey, Certificate) {
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca = CertificateParams::default();
        ca.distinguished_name = dn("oxisec test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = date_time_ymd(2020, 1, 1);
        ca.not_after = date_time_ymd(2035, 1, 1);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::from_params(&ca, &ca_key);
        let mut p = CertificateParams::default();
        p.distinguished_name = dn("gw-b.example.com");
        p.subject_alt_names = vec![SanType::DnsName("gw-b.example.com".try_into().unwrap())];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.not_before = date_time_ymd(2024, 1, 1);
        p.not_after = date_time_ymd(2027, 1, 1);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = p.signed_by(&key, &issuer).unwrap();
        // A second CA the client might wrongly trust.
        let other_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut other = CertificateParams::default();
        other.distinguished_name = dn("some other CA");
        other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        other.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let other_cert = other.self_signed(&other_key).unwrap();
        (
            Certificate::from_der(ca_cert.der()).unwrap(),
            Certificate::from_der(cert.der()).unwrap(),
            PrivateKey::from_bytes(&key.serialize_der(), None).unwrap(),
            Certificate::from_der(other_cert.der()).unwrap(),
        )
    }

    fn trust(anchor: &Certificate) -> Auth {
        Auth::PeerCert(Arc::new(TrustStore::new(
            vec![anchor.clone()],
            ValidationPolicy {
                eku: EkuPolicy::Gateway,
                revocation: RevocationPolicy::Relaxed,
                max_depth: 4,
            },
        )))
    }

    /// 2025-06-01, inside the certificates' validity.
    fn today() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_748_736_000)
    }

    fn gateway_cert(cert: Certificate, key: PrivateKey) -> Auth {
        Auth::Cert(LocalCert {
            key: Arc::new(key),
            chain: vec![cert],
            send: SendCert::IfAsked,
        })
    }

    #[test]
    fn gateway_certificate_and_eap_client() {
        let (ca, cert, key, _) = pki();
        let mut w = World::new(
            client("alice", "wonderland", trust(&ca)),
            gateway(gateway_cert(cert, key), false),
        );
        w.set_wall_clock(today());
        w.connect();
        assert_up(&w, "alice");
    }

    #[test]
    fn a_gateway_certificate_from_an_untrusted_ca_is_refused_before_eap() {
        let (_, cert, key, other) = pki();
        let mut w = World::new(
            client("alice", "wonderland", trust(&other)),
            gateway(gateway_cert(cert, key), false),
        );
        w.set_wall_clock(today());
        w.connect();
        assert_refused(&mut w, false, "certificate");
    }
}

/// Two clients that share an IDi (as Windows clients behind one NAT do,
/// announcing their private address) but log in as different users: the
/// second one's INITIAL_CONTACT must not remove the first one's SA, and
/// each gets its own address.
#[test]
fn clients_sharing_an_idi_are_told_apart_by_their_eap_user() {
    let gw_side = gateway(psk(), false);
    let mut conn = gw_side.connection();
    conn.remote_addrs.clear();
    let config = Config {
        connections: vec![Arc::new(conn)],
        pools: gw_side.pools.clone(),
        ..Config::default()
    };
    let mut gw = Peer {
        engine: Engine::new(config, Box::new(TestRng(2))),
        commands: Vec::new(),
        events: Vec::new(),
        sent: Vec::new(),
        dp: DataPlane::default(),
    };
    let alice = client("alice", "wonderland", psk());
    let bob = Side {
        addr: ip("192.0.2.3"),
        ..client("bob", "builder", psk())
    };
    let mut clients = [alice.engine(1), bob.engine(3)];
    let now = std::time::Instant::now();
    let pump = |clients: &mut [Peer; 2], gw: &mut Peer| {
        for _ in 0..100 {
            let mut moved = false;
            for c in clients.iter_mut() {
                for t in c.drain() {
                    moved = true;
                    deliver(gw, now, &t);
                }
            }
            for t in gw.drain() {
                moved = true;
                let to = clients
                    .iter_mut()
                    .find(|c| {
                        c.engine
                            .status()
                            .iter()
                            .any(|s| s.local.ip() == t.remote.ip())
                    })
                    .expect("a client for the address");
                deliver(to, now, &t);
            }
            if !moved {
                return;
            }
        }
        panic!("never quiet");
    };
    for i in 0..2 {
        clients[i].engine.handle_command(
            now,
            Command::Initiate {
                connection: "tunnel".into(),
                child: None,
            },
        );
        pump(&mut clients, &mut gw);
    }
    assert_eq!(gw.established(), 2, "{:?}", gw.events);
    assert_eq!(clients[0].established(), 1);
    assert_eq!(clients[1].established(), 1);
    assert_eq!(eap_users(&gw), vec!["alice".to_string(), "bob".to_string()]);
    let mut leases: Vec<_> = gw
        .engine
        .leases()
        .into_iter()
        .map(|l| (l.identity, l.address))
        .collect();
    leases.sort();
    assert_eq!(
        leases,
        vec![
            ("alice".to_string(), ip("10.3.0.1")),
            ("bob".to_string(), ip("10.3.0.2"))
        ]
    );
    // Alice again (a restarted client: INITIAL_CONTACT): her old SA goes,
    // Bob's stays.
    let mut alice2 = alice.engine(7);
    alice2.engine.handle_command(
        now,
        Command::Initiate {
            connection: "tunnel".into(),
            child: None,
        },
    );
    std::mem::swap(&mut clients[0], &mut alice2);
    pump(&mut clients, &mut gw);
    assert_eq!(gw.established(), 2, "{:?}", gw.events);
    assert_eq!(eap_users(&gw).len(), 3);
    let remaining: Vec<String> = gw
        .engine
        .status()
        .iter()
        .map(|s| s.remote.to_string())
        .collect();
    assert!(
        remaining.iter().any(|r| r.starts_with("192.0.2.3")),
        "{remaining:?}"
    );
}

/// A gateway whose users' groups pick their pool, DNS and split subnets:
/// staff from 10.4/24, contractors from 10.5/24 with their own subnets,
/// everybody else from the connection's 10.3/24 (or refused).
fn grouped_gateway(require_group: bool) -> Side {
    let mut gw = gateway(psk(), false);
    gw.auth = Some((
        psk(),
        Auth::Eap(EapServer {
            users: Arc::new(GroupedUsers),
            ask_identity: false,
        }),
    ));
    gw.pools.extend([
        PoolConfig {
            name: "staff".into(),
            first: ip("10.4.0.1"),
            last: ip("10.4.0.254"),
        },
        PoolConfig {
            name: "guests".into(),
            first: ip("10.5.0.1"),
            last: ip("10.5.0.254"),
        },
    ]);
    gw.remote_access.groups = vec![
        GroupAccess {
            group: "staff".into(),
            pools: vec!["staff".into()],
            ..GroupAccess::default()
        },
        GroupAccess {
            group: "contractors".into(),
            pools: vec!["guests".into()],
            dns: Some(vec![]),
            subnets: Some(vec!["10.1.5.0/24".parse().unwrap()]),
            ..GroupAccess::default()
        },
    ];
    gw.remote_access.require_group = require_group;
    gw
}

fn cp_reply(p: &Peer) -> Option<(Vec<IpAddr>, Vec<IpAddr>, Vec<TsRange>)> {
    p.events.iter().find_map(|e| match e {
        Event::VirtualIp {
            addresses,
            dns,
            subnets,
            ..
        } => Some((addresses.clone(), dns.clone(), subnets.clone())),
        _ => None,
    })
}

#[test]
fn users_groups_choose_their_pool_dns_and_subnets() {
    // alice (staff): the staff pool, the connection's DNS and no split.
    let mut w = World::new(client("alice", "wonderland", psk()), grouped_gateway(false));
    w.connect();
    assert_eq!(
        cp_reply(&w.a),
        Some((vec![ip("10.4.0.1")], vec![ip("10.3.0.53")], vec![]))
    );
    // bob: contractors comes first among his groups; no DNS, one subnet.
    let mut w = World::new(client("bob", "builder", psk()), grouped_gateway(false));
    w.connect();
    assert_eq!(
        cp_reply(&w.a),
        Some((
            vec![ip("10.5.0.1")],
            vec![],
            vec!["10.1.5.0/24".parse().unwrap()]
        ))
    );
    assert_eq!(w.b.engine.leases()[0].pool, "guests");
    // carol (no group): the connection's pool.
    let mut w = World::new(client("carol", "singer", psk()), grouped_gateway(false));
    w.connect();
    assert_eq!(cp_reply(&w.a).map(|r| r.0), Some(vec![ip("10.3.0.1")]));
    // An IKE rekey keeps the groups with the SA: the lease stays where it is.
    w.b.engine.handle_command(
        w.now,
        Command::RekeyIke {
            connection: "tunnel".into(),
        },
    );
    w.pump();
    assert_eq!(w.b.engine.leases().len(), 1);
}

/// `oxisec status` reads these: who the client proved to be with EAP, its
/// groups, and the one that chose its values, on the gateway's SA and
/// still after an IKE rekey.
#[test]
fn status_names_the_eap_user_and_groups() {
    let mut w = World::new(client("bob", "builder", psk()), grouped_gateway(false));
    w.connect();
    let shown = |p: &Peer| {
        p.engine
            .status()
            .iter()
            .map(|s| {
                (
                    s.eap_identity.clone(),
                    s.peer_groups.clone(),
                    s.access_group.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let bob = (
        Some("bob".to_string()),
        vec!["contractors".to_string(), "staff".to_string()],
        Some("contractors".to_string()),
    );
    assert_eq!(shown(&w.b), std::slice::from_ref(&bob));
    // The client knows no groups of its own.
    assert_eq!(shown(&w.a), [(None, vec![], None)]);
    w.b.engine.handle_command(
        w.now,
        Command::RekeyIke {
            connection: "tunnel".into(),
        },
    );
    w.pump();
    assert_eq!(shown(&w.b), [bob]);
    // carol, in no listed group: her groups (none), the connection's values.
    let mut w = World::new(client("carol", "singer", psk()), grouped_gateway(false));
    w.connect();
    assert_eq!(shown(&w.b), [(Some("carol".to_string()), vec![], None)]);
}

#[test]
fn a_user_in_no_required_group_is_refused_after_eap() {
    let mut w = World::new(client("carol", "singer", psk()), grouped_gateway(true));
    w.connect();
    while w.advance(Duration::from_secs(60)) {
        w.pump();
    }
    assert_eq!(w.a.engine.status().len(), 0, "client: {:?}", w.a.events);
    assert_eq!(w.b.engine.status().len(), 0, "gateway: {:?}", w.b.events);
    assert!(w.a.dp.outbound.is_empty() && w.b.dp.outbound.is_empty());
    assert!(vips(&w.a).is_empty() && w.b.engine.leases().is_empty());
    let reasons = auth_failures(&w.b);
    assert!(
        reasons.iter().any(|r| r.contains(
            "carol is in none of the groups connection tunnel admits (staff, contractors)"
        )),
        "{reasons:?}"
    );
    assert!(!auth_failures(&w.a).is_empty(), "the client learns it too");
    // A member still gets in.
    let mut w = World::new(client("alice", "wonderland", psk()), grouped_gateway(true));
    w.connect();
    assert_eq!(w.b.established(), 1, "{:?}", w.b.events);
}
