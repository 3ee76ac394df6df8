//! EAP pass-through on the gateway (`Auth::EapRelay`): the engine hands
//! each EAP message of the client out as `Event::EapRelay` and sends the
//! answer of an outside EAP server (here a fake one driven by the test,
//! playing the RADIUS server) back in IKE_AUTH. The MSK of the accept
//! keys the final AUTH payloads; the pool lease is keyed by the EAP
//! identity. Also: reject, a server that never answers, hostile EAP from
//! either side, and client retransmissions while the server thinks.
mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use oxisec_crypto::Secret;
use oxisec_ike::eap::mschapv2::{self, Message};
use oxisec_ike::eap::{Code, EapPacket, EapType};
use oxisec_ike::*;

const GW_PSK: &str = "gateway pre-shared key, long enough";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn psk() -> Auth {
    Auth::Psk(Secret::from_slice(GW_PSK.as_bytes()))
}

fn gateway(ask_identity: bool) -> Side {
    Side {
        local_ts: vec!["0.0.0.0/0"],
        remote_ts: vec![],
        peer_id: None,
        auth: Some((psk(), Auth::EapRelay(EapRelay { ask_identity }))),
        remote_access: RemoteAccess {
            pools: vec!["v4".into()],
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

fn client(user: &str, password: &str) -> Side {
    Side {
        local_ts: vec![],
        remote_ts: vec!["0.0.0.0/0"],
        auth: Some((
            Auth::EapClient {
                identity: user.into(),
                password: Secret::from_slice(password.as_bytes()),
            },
            psk(),
        )),
        remote_access: RemoteAccess {
            request_vips: vec![ip("0.0.0.0")],
            ..RemoteAccess::default()
        },
        ..Side::a()
    }
}

/// A fake EAP server: EAP-MSCHAPv2 for the one user "alice"/"wonderland",
/// answering as a RADIUS server would (Challenge, Accept with the MSK,
/// Reject with EAP-Failure).
#[derive(Default)]
struct FakeServer {
    challenge: [u8; 16],
    msk: Option<Secret>,
    /// Every message relayed to us, in order.
    seen: Vec<(String, Vec<u8>)>,
    /// Sent with the Accept (RADIUS Class / Filter-Id).
    groups: Vec<String>,
}

impl FakeServer {
    fn answer(&mut self, identity: &str, packet: &[u8]) -> EapRelayAnswer {
        self.seen.push((identity.to_string(), packet.to_vec()));
        let p = EapPacket::parse(packet).expect("the engine relays only valid EAP");
        assert_eq!(p.code, Code::RESPONSE, "the engine relays only Responses");
        let next = p.identifier.wrapping_add(1);
        let req = |data: &[u8]| {
            EapPacket::new(Code::REQUEST, next, EapType::MSCHAPV2, data)
                .emit()
                .unwrap()
        };
        match p.ty {
            Some(EapType::IDENTITY) => {
                self.challenge = [0x5a; 16];
                let m = Message::Challenge {
                    ms_id: next,
                    challenge: self.challenge,
                    name: b"radius",
                };
                EapRelayAnswer::Continue(req(&m.emit()))
            }
            Some(EapType::MSCHAPV2) => match Message::parse(false, p.type_data).unwrap() {
                Message::Response {
                    peer_challenge,
                    nt_response,
                    name,
                    ..
                } => {
                    let hash = NtHash::from_password("wonderland");
                    let expected = mschapv2::generate_nt_response(
                        &self.challenge,
                        &peer_challenge,
                        name,
                        &hash,
                    );
                    if name != b"alice" || expected != nt_response {
                        return EapRelayAnswer::Reject {
                            packet: Some(EapPacket::result(false, next)),
                            reason: "Access-Reject".into(),
                        };
                    }
                    let auth = mschapv2::authenticator_response(
                        &hash,
                        &nt_response,
                        &peer_challenge,
                        &self.challenge,
                        name,
                    );
                    self.msk = Some(mschapv2::msk(&hash, &nt_response));
                    let text = format!("{} M=ok", mschapv2::authenticator_string(&auth));
                    let m = Message::SuccessRequest {
                        ms_id: p.identifier,
                        message: text.as_bytes(),
                    };
                    EapRelayAnswer::Continue(req(&m.emit()))
                }
                Message::SuccessResponse => EapRelayAnswer::Accept {
                    packet: Some(EapPacket::result(true, p.identifier)),
                    msk: self.msk.clone().expect("success after a response"),
                    groups: self.groups.clone(),
                },
                other => panic!("unexpected {other:?}"),
            },
            other => panic!("unexpected type {other:?}"),
        }
    }
}

fn relays(p: &Peer) -> Vec<(IkeId, String, Vec<u8>)> {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::EapRelay {
                ike,
                identity,
                packet,
                ..
            } => Some((*ike, identity.clone(), packet.clone())),
            _ => None,
        })
        .collect()
}

/// Pumps datagrams and answers every relayed message with `server`
/// (through `answer`, which may alter or withhold the answer).
fn run(
    w: &mut World,
    server: &mut FakeServer,
    mut answer: impl FnMut(&mut FakeServer, &str, &[u8]) -> Option<EapRelayAnswer>,
) {
    // Relayed messages from before this call were dealt with already.
    let mut done = relays(&w.b).len();
    for _ in 0..50 {
        w.pump();
        let all = relays(&w.b);
        if all.len() == done {
            return;
        }
        for (ike, identity, packet) in &all[done..] {
            if let Some(a) = answer(server, identity, packet) {
                assert!(w.b.engine.eap_relay_answer(w.now, *ike, a));
            }
        }
        done = all.len();
    }
    panic!("no end");
}

fn answered(s: &mut FakeServer, id: &str, p: &[u8]) -> Option<EapRelayAnswer> {
    Some(s.answer(id, p))
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

fn assert_nothing_left(w: &mut World) {
    while w.advance(Duration::from_secs(60)) {
        w.pump();
    }
    assert_eq!(w.a.engine.status().len(), 0, "client: {:?}", w.a.events);
    assert_eq!(w.b.engine.status().len(), 0, "gateway: {:?}", w.b.events);
    assert!(w.a.dp.outbound.is_empty() && w.b.dp.outbound.is_empty());
    assert!(w.b.engine.leases().is_empty());
}

#[test]
fn relayed_mschapv2_with_identity_from_the_idi() {
    let mut w = World::new(client("alice", "wonderland"), gateway(false));
    let mut s = FakeServer::default();
    w.initiate();
    run(&mut w, &mut s, answered);
    assert_eq!(w.a.established(), 1, "client: {:?}", w.a.events);
    assert_eq!(w.b.established(), 1, "gateway: {:?}", w.b.events);
    assert_consistent(&w.a.dp, &w.b.dp);
    // The IDi (gw-a.example.com) became a made-up EAP-Identity response.
    let idi = "gw-a.example.com";
    assert_eq!(s.seen[0].0, idi);
    assert_eq!(s.seen[0].1[4], 1, "EAP-Identity first");
    assert_eq!(&s.seen[0].1[5..], idi.as_bytes());
    // Identity, MSCHAPv2 Response, Success acknowledgement.
    assert_eq!(s.seen.len(), 3);
    let leases = w.b.engine.leases();
    assert_eq!(leases.len(), 1);
    assert_eq!(
        leases[0].identity, idi,
        "the lease is keyed by the EAP identity"
    );
    assert!(
        w.b.events
            .iter()
            .any(|e| matches!(e, Event::EapAuthenticated { identity, .. } if identity == idi))
    );
}

#[test]
fn relayed_mschapv2_with_an_identity_round() {
    let mut w = World::new(client("alice", "wonderland"), gateway(true));
    let mut s = FakeServer::default();
    w.initiate();
    run(&mut w, &mut s, answered);
    assert_eq!(w.a.established(), 1, "client: {:?}", w.a.events);
    assert_eq!(w.b.established(), 1, "gateway: {:?}", w.b.events);
    assert!(s.seen.iter().all(|(id, _)| id == "alice"));
    assert_eq!(w.b.engine.leases()[0].identity, "alice");
    // IKE_SA_INIT, IKE_AUTH, Identity, Response, acknowledgement, AUTH.
    assert_eq!(w.a.sent.len(), 6);
}

#[test]
fn a_reject_ends_in_eap_failure_and_no_sa() {
    let mut w = World::new(client("alice", "rabbit"), gateway(true));
    let mut s = FakeServer::default();
    w.initiate();
    run(&mut w, &mut s, answered);
    assert!(
        auth_failures(&w.b)
            .iter()
            .any(|r| r.contains("alice: Access-Reject")),
        "{:?}",
        w.b.events
    );
    assert!(!auth_failures(&w.a).is_empty(), "{:?}", w.a.events);
    assert_nothing_left(&mut w);
}

#[test]
fn a_server_that_never_answers_times_out() {
    let mut w = World::new(client("alice", "wonderland"), gateway(true));
    let mut s = FakeServer::default();
    w.initiate();
    // Identity answered by the client, then silence from the server.
    run(&mut w, &mut s, |_, _, _| None);
    assert_eq!(relays(&w.b).len(), 1);
    // The client retransmits meanwhile: the gateway ignores the copies
    // and relays nothing twice.
    for _ in 0..3 {
        w.advance(Duration::from_secs(10));
        w.pump();
    }
    assert_eq!(relays(&w.b).len(), 1);
    assert_nothing_left(&mut w);
    assert!(
        auth_failures(&w.b)
            .iter()
            .any(|r| r.contains("did not answer in time")),
        "{:?}",
        w.b.events
    );
    // A late answer finds nothing.
    let ike = relays(&w.b)[0].0;
    let late = EapRelayAnswer::Continue(vec![1, 1, 0, 5, 1]);
    assert!(!w.b.engine.eap_relay_answer(w.now, ike, late));
}

#[test]
fn a_slow_server_still_gets_through_client_retransmissions() {
    let mut w = World::new(client("alice", "wonderland"), gateway(false));
    let mut s = FakeServer::default();
    w.initiate();
    let mut held = Vec::new();
    // Withhold the answers; deliver each after the client retransmitted.
    run(&mut w, &mut s, |s, id, p| {
        held.push(s.answer(id, p));
        None
    });
    for _ in 0..10 {
        w.advance(Duration::from_secs(5));
        w.pump();
        let Some(a) = held.pop() else { break };
        let ike = relays(&w.b).last().unwrap().0;
        let before = relays(&w.b).len();
        assert!(w.b.engine.eap_relay_answer(w.now, ike, a));
        w.pump();
        for (_, id, p) in relays(&w.b)[before..].to_vec() {
            held.push(s.answer(&id, &p));
        }
    }
    assert_eq!(w.a.established(), 1, "client: {:?}", w.a.events);
    assert_eq!(w.b.established(), 1, "gateway: {:?}", w.b.events);
    assert_eq!(s.seen.len(), 3, "each message relayed once");
}

#[test]
fn hostile_server_answers_fail_the_authentication() {
    let bad: [fn() -> EapRelayAnswer; 4] = [
        || EapRelayAnswer::Continue(vec![]),
        || EapRelayAnswer::Continue(vec![3, 1, 0, 4]),
        || EapRelayAnswer::Continue(vec![1, 1, 0xff, 0xff, 26]),
        || EapRelayAnswer::Accept {
            packet: None,
            msk: Secret::from_slice(&[]),
            groups: Vec::new(),
        },
    ];
    for make in bad {
        let mut w = World::new(client("alice", "wonderland"), gateway(true));
        let mut s = FakeServer::default();
        w.initiate();
        run(&mut w, &mut s, |_, _, _| Some(make()));
        assert_eq!(auth_failures(&w.b).len(), 1, "{:?}", w.b.events);
        assert_nothing_left(&mut w);
    }
}

#[test]
fn an_accept_before_the_method_finished_is_not_trusted_by_the_client() {
    // A server (or a forged answer) that accepts at once: the gateway sends
    // EAP-Success, but the MSCHAPv2 client never saw the authenticator
    // response and refuses; nothing comes up.
    let mut w = World::new(client("alice", "wonderland"), gateway(true));
    let mut s = FakeServer::default();
    w.initiate();
    run(&mut w, &mut s, |_, _, _| {
        Some(EapRelayAnswer::Accept {
            packet: None,
            msk: Secret::from_slice(&[7; 64]),
            groups: Vec::new(),
        })
    });
    assert!(!auth_failures(&w.a).is_empty(), "{:?}", w.a.events);
    assert_nothing_left(&mut w);
}

#[test]
fn a_wrong_msk_fails_the_final_auth() {
    let mut w = World::new(client("alice", "wonderland"), gateway(false));
    let mut s = FakeServer::default();
    w.initiate();
    run(&mut w, &mut s, |s, id, p| {
        Some(match s.answer(id, p) {
            EapRelayAnswer::Accept { packet, groups, .. } => EapRelayAnswer::Accept {
                packet,
                msk: Secret::from_slice(&[1; 64]),
                groups,
            },
            other => other,
        })
    });
    assert!(
        auth_failures(&w.b)
            .iter()
            .any(|r| r.contains("MSK does not verify")),
        "{:?}",
        w.b.events
    );
    assert_nothing_left(&mut w);
}

#[test]
fn hostile_client_eap_is_not_relayed() {
    // A control character in the EAP identity: refused by the gateway
    // itself, nothing reaches the server.
    let mut w = World::new(client("eve\u{0}root", "x"), gateway(true));
    let mut s = FakeServer::default();
    w.initiate();
    run(&mut w, &mut s, answered);
    assert!(s.seen.is_empty());
    assert!(
        auth_failures(&w.b)
            .iter()
            .any(|r| r.contains("unusable EAP identity")),
        "{:?}",
        w.b.events
    );
    assert_nothing_left(&mut w);
}

#[test]
fn a_push_mfa_answer_after_45_seconds_still_counts() {
    // The server answers the MSCHAPv2 response only after the user
    // approved on the phone: beyond the 30 s half-open time, within
    // RELAY_TIMEOUT.
    let mut w = World::new(client("alice", "wonderland"), gateway(true));
    let mut s = FakeServer::default();
    w.initiate();
    let mut held = None;
    run(&mut w, &mut s, |s, id, p| {
        let a = s.answer(id, p);
        if matches!(&a, EapRelayAnswer::Continue(m) if m.get(4) == Some(&26) && s.msk.is_some()) {
            held = Some(a);
            return None;
        }
        Some(a)
    });
    let a = held.expect("the success request was withheld");
    assert!(oxisec_ike::eap::RELAY_TIMEOUT > Duration::from_secs(45));
    for _ in 0..9 {
        w.advance(Duration::from_secs(5));
        w.pump();
    }
    let ike = relays(&w.b).last().unwrap().0;
    assert!(w.b.engine.eap_relay_answer(w.now, ike, a));
    run(&mut w, &mut s, answered);
    assert_eq!(w.a.established(), 1, "client: {:?}", w.a.events);
    assert_eq!(w.b.established(), 1, "gateway: {:?}", w.b.events);
}

/// The groups of the server's Accept choose the user's pool and DNS; a
/// connection that requires a group refuses a user the server put in none.
#[test]
fn the_servers_groups_choose_the_pool_or_refuse() {
    let grouped = || {
        let mut gw = gateway(false);
        gw.pools.push(PoolConfig {
            name: "staff".into(),
            first: ip("10.4.0.1"),
            last: ip("10.4.0.254"),
        });
        gw.remote_access.groups = vec![GroupAccess {
            group: "Staff".into(),
            pools: vec!["staff".into()],
            dns: Some(vec![ip("10.4.0.53")]),
            ..GroupAccess::default()
        }];
        gw
    };
    let mut w = World::new(client("alice", "wonderland"), grouped());
    let mut s = FakeServer {
        groups: vec!["other".into(), "staff".into()],
        ..FakeServer::default()
    };
    w.initiate();
    run(&mut w, &mut s, answered);
    assert_eq!(w.b.established(), 1, "gateway: {:?}", w.b.events);
    let got = w.a.events.iter().find_map(|e| match e {
        Event::VirtualIp { addresses, dns, .. } => Some((addresses.clone(), dns.clone())),
        _ => None,
    });
    assert_eq!(got, Some((vec![ip("10.4.0.1")], vec![ip("10.4.0.53")])));
    assert_eq!(w.b.engine.leases()[0].pool, "staff");

    // Required, and the server named no configured group: refused after
    // the final AUTH, nothing left, and the log says which groups.
    let mut gw = grouped();
    gw.remote_access.require_group = true;
    let mut w = World::new(client("alice", "wonderland"), gw);
    let mut s = FakeServer {
        groups: vec!["guests".into()],
        ..FakeServer::default()
    };
    w.initiate();
    run(&mut w, &mut s, answered);
    let reasons = auth_failures(&w.b);
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("none of the groups") && r.contains("[guests]")),
        "{reasons:?}"
    );
    assert_nothing_left(&mut w);
}
