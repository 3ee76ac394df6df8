//! Scripted two-engine tests of IKE_SA_INIT + IKE_AUTH with PSK.
mod common;

use std::time::Duration;

use common::*;
use oxisec_ike::*;
use oxisec_wire::{Message, NotifyType, Payload};

fn assert_tunnel_up(w: &World) {
    assert_eq!(w.a.established(), 1, "A: {:?}", w.a.events);
    assert_eq!(w.b.established(), 1, "B: {:?}", w.b.events);
    assert_eq!(w.a.children(), 1, "A: {:?}", w.a.events);
    assert_eq!(w.b.children(), 1, "B: {:?}", w.b.events);
    let a = installs(&w.a);
    let b = installs(&w.b);
    assert_eq!(a.len(), 2);
    assert_eq!(b.len(), 2);
    // Inbound first on both sides, and each side's outbound SA is the other's inbound one with the same keys.
    assert!(a[0].2 && !a[1].2 && b[0].2 && !b[1].2);
    assert_eq!(a[1].0, b[0].0);
    assert_eq!(a[1].1, b[0].1);
    assert_eq!(b[1].0, a[0].0);
    assert_eq!(b[1].1, a[0].1);
    assert_ne!(a[0].1, a[1].1, "directions use different keys");
}

fn up_with(
    ike_a: &'static str,
    esp_a: &'static str,
    ike_b: Vec<&'static str>,
    esp_b: Vec<&'static str>,
) -> World {
    let mut a = Side::a();
    a.ike = vec![ike_a];
    a.esp = vec![esp_a];
    let mut b = Side::b();
    b.ike = ike_b;
    b.esp = esp_b;
    let mut w = World::new(a, b);
    w.connect();
    w
}

#[test]
fn psk_tunnel_comes_up_with_each_issue_suite() {
    for (ike, esp) in [
        ("aes128gcm16-prfsha256-x25519", "aes128gcm16"),
        ("aes256gcm16-prfsha384-ecp384", "aes256gcm16"),
        ("aes256-sha256-modp2048", "chacha20poly1305"),
        ("aes128-sha384-ecp256", "aes128-sha256"),
        ("aes256-sha512-modp3072", "aes256gcm16"),
    ] {
        let w = up_with(ike, esp, vec![ike], vec![esp]);
        assert_tunnel_up(&w);
        let st = &w.a.engine.status()[0];
        assert_eq!(st.children[0].local_ts, vec![ts("198.51.100.0/24")]);
        assert_eq!(st.children[0].remote_ts, vec![ts("203.0.113.0/24")]);
        assert_eq!(st.remote_id, "gw-b.example.com");
        assert!(
            w.a.events
                .iter()
                .any(|e| matches!(e, Event::ChildUp { .. }))
        );
        assert!(w.b.events.iter().any(|e| matches!(e, Event::IkeUp { .. })));
    }
}

#[test]
fn both_sides_float_to_port_4500_and_install_udp_encapsulation() {
    let w = up_with(
        "aes128gcm16-prfsha256-x25519",
        "aes128gcm16",
        vec!["aes128gcm16-prfsha256-x25519"],
        vec!["aes128gcm16"],
    );
    assert_eq!(w.a.sent[0].remote.port(), 500);
    assert_eq!(w.a.sent[1].remote.port(), 4500, "IKE_AUTH goes to 4500");
    for p in [&w.a, &w.b] {
        let out = p.commands.iter().find_map(|c| match c {
            SaCommand::InstallOutbound {
                local,
                remote,
                udp_encap,
                ..
            } => Some((*local, *remote, *udp_encap)),
            _ => None,
        });
        let (local, remote, encap) = out.unwrap();
        assert!(encap);
        assert_eq!((local.port(), remote.port()), (4500, 4500));
    }
}

#[test]
fn invalid_ke_payload_makes_the_initiator_retry_with_the_named_group() {
    let w = up_with(
        "aes128gcm16-prfsha256-x25519-modp2048",
        "aes128gcm16",
        vec!["aes128gcm16-prfsha256-modp2048"],
        vec!["aes128gcm16"],
    );
    assert_tunnel_up(&w);
    let inits: Vec<_> =
        w.a.sent
            .iter()
            .filter_map(|t| Message::parse(&t.data).ok())
            .filter(|m| m.header.exchange == oxisec_wire::ExchangeType::IKE_SA_INIT)
            .collect();
    assert_eq!(inits.len(), 2);
    let groups: Vec<u16> = inits
        .iter()
        .map(|m| {
            m.payloads
                .iter()
                .find_map(|p| {
                    if let Payload::Ke(k) = p {
                        Some(k.group.0)
                    } else {
                        None
                    }
                })
                .unwrap()
        })
        .collect();
    assert_eq!(groups, vec![31, 14]);
    let resp = Message::parse(&w.b.sent[0].data).unwrap();
    assert!(resp.payloads.iter().any(|p| matches!(p, Payload::Notify(n) if n.ty == NotifyType::INVALID_KE_PAYLOAD && n.data == vec![0, 14])));
    assert!(
        w.b.sent.len() >= 2 && w.b.engine.ike_sa_count() == 1,
        "no state kept for the refused request"
    );
}

#[test]
fn no_common_proposal_is_refused_without_state() {
    let mut w = World::new(
        Side {
            ike: vec!["aes256-sha512-ecp384"],
            ..Side::a()
        },
        Side {
            ike: vec!["aes128gcm16-prfsha256-x25519"],
            ..Side::b()
        },
    );
    w.connect();
    assert_eq!(w.a.engine.ike_sa_count(), 0);
    assert_eq!(w.b.engine.ike_sa_count(), 0);
    assert!(w.a.events.iter().any(|e| matches!(e, Event::IkeDown { reason: DownReason::Failed(r), .. } if r.contains("NO_PROPOSAL_CHOSEN"))));
}

#[test]
fn wrong_psk_ends_with_no_sa_on_either_side_and_authentication_failed() {
    let mut w = World::new(
        Side {
            psk: "wrong key wrong key wrong key",
            ..Side::a()
        },
        Side::b(),
    );
    w.connect();
    assert_eq!(w.a.engine.ike_sa_count(), 0);
    assert_eq!(w.b.engine.ike_sa_count(), 0);
    assert!(
        w.a.commands.is_empty() && w.b.commands.is_empty(),
        "nothing installed"
    );
    assert_eq!(w.b.auth_failures(), 1);
    assert_eq!(w.a.auth_failures(), 1);
    let reason =
        w.b.events
            .iter()
            .find_map(|e| {
                if let Event::AuthFailed { reason, .. } = e {
                    Some(reason.clone())
                } else {
                    None
                }
            })
            .unwrap();
    assert!(reason.contains("gw-a.example.com"), "{reason}");
}

#[test]
fn responder_with_wrong_psk_is_rejected_by_the_initiator() {
    let mut w = World::new(
        Side::a(),
        Side {
            psk: "responder uses another key!!",
            ..Side::b()
        },
    );
    w.connect();
    assert_eq!(w.a.engine.ike_sa_count(), 0);
    assert_eq!(w.a.auth_failures(), 1);
    // B established and then heard AUTHENTICATION_FAILED from A, or will time out; its SA must not carry traffic for long.
    assert_eq!(
        w.b.engine.ike_sa_count(),
        0,
        "B is told by A's AUTHENTICATION_FAILED notify"
    );
}

#[test]
fn every_identity_type_authenticates() {
    for (ida, idb) in [
        ("192.0.2.1", "192.0.2.2"),
        ("2001:db8::1", "2001:db8::2"),
        ("gw-a.example.com", "@gw-b"),
        ("alice@example.com", "bob@example.com"),
        ("@#0102030405", "@#a0b0c0"),
    ] {
        let mut w = World::new(
            Side {
                id: ida,
                peer_id: Some(idb),
                ..Side::a()
            },
            Side {
                id: idb,
                peer_id: Some(ida),
                ..Side::b()
            },
        );
        w.connect();
        assert_tunnel_up(&w);
        assert_eq!(
            w.b.engine.status()[0].remote_id,
            ida.parse::<Identity>().unwrap().to_string()
        );
    }
}

#[test]
fn identity_mismatch_is_an_authentication_failure() {
    let mut w = World::new(
        Side {
            id: "mallory.example.com",
            ..Side::a()
        },
        Side::b(),
    );
    w.connect();
    assert_eq!(w.b.engine.ike_sa_count(), 0);
    assert_eq!(w.b.auth_failures(), 1);
}

#[test]
fn responder_accepts_any_identity_when_none_is_configured() {
    let mut w = World::new(
        Side {
            id: "whoever@example.com",
            ..Side::a()
        },
        Side {
            peer_id: None,
            ..Side::b()
        },
    );
    w.connect();
    assert_tunnel_up(&w);
}

#[test]
fn traffic_selectors_are_narrowed_to_the_responders_configuration() {
    let mut w = World::new(
        Side {
            local_ts: vec!["198.51.100.0/24"],
            remote_ts: vec!["203.0.0.0/8"],
            ..Side::a()
        },
        Side::b(),
    );
    w.connect();
    assert_tunnel_up(&w);
    assert_eq!(
        w.a.engine.status()[0].children[0].remote_ts,
        vec![ts("203.0.113.0/24")]
    );
}

#[test]
fn disjoint_traffic_selectors_give_ts_unacceptable_and_keep_the_ike_sa() {
    let mut w = World::new(
        Side {
            remote_ts: vec!["10.9.0.0/16"],
            ..Side::a()
        },
        Side::b(),
    );
    w.connect();
    assert_eq!(w.a.established(), 1);
    assert_eq!(w.b.established(), 1);
    assert_eq!(w.a.children() + w.b.children(), 0);
    assert!(w.a.commands.is_empty() && w.b.commands.is_empty());
    assert!(w.a.events.iter().any(|e| matches!(e, Event::ChildDown { reason: DownReason::Failed(r), .. } if r.contains("TS_UNACCEPTABLE"))));
}

fn deletes(p: &Peer) -> Vec<(u32, bool)> {
    p.commands
        .iter()
        .filter_map(|c| {
            if let SaCommand::Delete { spi, inbound, .. } = c {
                Some((*spi, *inbound))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn child_delete_from_either_side_removes_both_halves() {
    for initiator_deletes in [true, false] {
        let mut w = World::new(Side::a(), Side::b());
        w.connect();
        let deleter = if initiator_deletes {
            &mut w.a
        } else {
            &mut w.b
        };
        deleter.engine.handle_command(
            w.now,
            Command::TerminateChild {
                child: "net".into(),
            },
        );
        w.pump();
        assert_eq!(w.a.children() + w.b.children(), 0);
        assert_eq!(w.a.established() + w.b.established(), 2, "IKE SA stays");
        for p in [&w.a, &w.b] {
            let d = deletes(p);
            assert_eq!(d.len(), 2, "{d:?}");
            assert!(!d[0].1 && d[1].1, "outbound removed before inbound");
        }
    }
}

#[test]
fn ike_delete_from_either_side_leaves_nothing() {
    for initiator_deletes in [true, false] {
        let mut w = World::new(Side::a(), Side::b());
        w.connect();
        let deleter = if initiator_deletes {
            &mut w.a
        } else {
            &mut w.b
        };
        deleter.engine.handle_command(
            w.now,
            Command::TerminateIke {
                connection: "tunnel".into(),
            },
        );
        w.pump();
        assert_eq!(w.a.engine.ike_sa_count() + w.b.engine.ike_sa_count(), 0);
        for p in [&w.a, &w.b] {
            assert_eq!(deletes(p).len(), 2);
            assert!(p.events.iter().any(|e| matches!(
                e,
                Event::IkeDown {
                    reason: DownReason::Deleted,
                    ..
                }
            )));
        }
        assert_eq!(w.a.engine.poll_timeout(), None);
    }
}

#[test]
fn lost_response_is_retransmitted_and_answered_from_the_cache() {
    let mut w = World::new(Side::a(), Side::b());
    w.initiate();
    // Drop B's first IKE_AUTH response.
    let mut dropped = false;
    w.pump_with(|from_a, t| {
        if !from_a && t.remote.port() == 4500 && !dropped {
            dropped = true;
            return false;
        }
        true
    });
    assert!(dropped);
    assert_eq!(w.a.established(), 0);
    assert_eq!(w.b.established(), 1);
    assert!(w.advance(Duration::from_secs(5)), "retransmission timer");
    w.pump();
    assert_tunnel_up(&w);
    assert_eq!(w.b.engine.stats().retransmits_answered, 1);
    assert_eq!(
        installs(&w.b).len(),
        2,
        "the responder did not process the request twice"
    );
}

#[test]
fn silent_peer_is_declared_dead_after_the_retransmission_schedule() {
    let mut w = World::new(Side::a(), Side::b());
    w.initiate();
    w.pump_with(|_, _| false);
    let start = w.now;
    let mut sends = 1;
    while w.advance(Duration::from_secs(600)) {
        sends += w.a.drain().len();
    }
    w.a.drain();
    assert_eq!(sends, 6, "first send and 5 retransmissions");
    assert_eq!(w.a.engine.ike_sa_count(), 0);
    assert!(w.a.events.iter().any(|e| matches!(
        e,
        Event::IkeDown {
            reason: DownReason::PeerDead,
            ..
        }
    )));
    let _ = start;
}

#[test]
fn half_open_responder_sa_expires() {
    let mut w = World::new(Side::a(), Side::b());
    w.initiate();
    // Deliver only the IKE_SA_INIT request.
    let mut n = 0;
    w.pump_with(|from_a, _| {
        n += 1;
        from_a && n == 1
    });
    assert_eq!(w.b.engine.ike_sa_count(), 1);
    w.now += Duration::from_secs(31);
    w.b.engine.handle_timeout(w.now);
    assert_eq!(w.b.engine.ike_sa_count(), 0);
}

#[test]
fn retransmitted_ike_sa_init_request_gets_the_same_answer() {
    let mut w = World::new(Side::a(), Side::b());
    w.initiate();
    let req = w.a.drain().remove(0);
    deliver(&mut w.b, w.now, &req);
    let r1 = w.b.drain();
    deliver(&mut w.b, w.now, &req);
    let r2 = w.b.drain();
    assert_eq!(r1.len(), 1);
    assert_eq!(r1[0].data, r2[0].data);
    assert_eq!(w.b.engine.ike_sa_count(), 1);
}
