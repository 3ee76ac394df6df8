//! Post-quantum hybrid key exchange: RFC 9370 additional key exchanges in
//! IKE_INTERMEDIATE (RFC 9242) between two engines.
mod common;

use std::sync::Arc;

use common::*;
use oxisec_ike::*;
use oxisec_wire::{ExchangeType, Header, Message, NotifyType, Payload};

fn up(ike_a: &'static str, ike_b: &'static str) -> World {
    let mut w = World::new(
        Side {
            ike: vec![ike_a],
            ..Side::a()
        },
        Side {
            ike: vec![ike_b],
            ..Side::b()
        },
    );
    w.connect();
    w
}

/// Requests of an exchange type, counted by message ID (fragments and
/// retransmissions count once).
fn exchanges(p: &Peer, ex: ExchangeType) -> usize {
    let mut ids: Vec<u32> = p
        .sent
        .iter()
        .filter_map(|t| Header::new_checked(t.data.as_slice()).ok())
        .filter(|h| h.exchange_type() == ex && !h.flags().response())
        .map(|h| h.message_id())
        .collect();
    ids.sort();
    ids.dedup();
    ids.len()
}

fn assert_up(w: &World) {
    assert_eq!(w.a.established(), 1, "A: {:?}", w.a.events);
    assert_eq!(w.b.established(), 1, "B: {:?}", w.b.events);
    assert_eq!(w.a.children() + w.b.children(), 2);
    assert_consistent(&w.a.dp, &w.b.dp);
}

#[test]
fn x25519_plus_ml_kem_768_in_one_intermediate_exchange() {
    let p = "aes256gcm16-prfsha384-x25519-ke1_mlkem768";
    let w = up(p, p);
    assert_up(&w);
    assert_eq!(exchanges(&w.a, ExchangeType::IKE_INTERMEDIATE), 1);
    let alg = &w.a.engine.status()[0].algorithms;
    assert!(alg.contains("KE1_ML_KEM_768"), "{alg}");
    // IKE_AUTH went with message ID 2 after the IKE_INTERMEDIATE with ID 1.
    let auth =
        w.a.sent
            .iter()
            .find(|t| {
                Header::new_checked(t.data.as_slice())
                    .is_ok_and(|h| h.exchange_type() == ExchangeType::IKE_AUTH)
            })
            .unwrap();
    assert_eq!(
        Header::new_checked(auth.data.as_slice())
            .unwrap()
            .message_id(),
        2
    );
}

#[test]
fn every_ml_kem_size_and_two_additional_exchanges() {
    for p in [
        "aes128gcm16-prfsha256-ecp256-ke1_mlkem512",
        "aes256gcm16-prfsha512-x25519-ke1_mlkem1024",
        "aes256-sha384-ecp384-ke1_mlkem768-ke2_mlkem1024",
        "aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke3_ecp384",
    ] {
        let w = up(p, p);
        assert_up(&w);
        let n = p.matches("-ke").count(); // one IKE_INTERMEDIATE per additional exchange
        assert_eq!(exchanges(&w.a, ExchangeType::IKE_INTERMEDIATE), n, "{p}");
    }
}

#[test]
fn ml_kem_alone_in_ike_sa_init() {
    let p = "aes256gcm16-prfsha384-mlkem768";
    let w = up(p, p);
    assert_up(&w);
    assert_eq!(exchanges(&w.a, ExchangeType::IKE_INTERMEDIATE), 0);
}

#[test]
fn optional_additional_exchange_falls_back_only_when_the_policy_allows_it() {
    // The responder does not do ML-KEM; the initiator allows NONE: plain X25519.
    let w = up(
        "aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none",
        "aes256gcm16-prfsha384-x25519",
    );
    assert_up(&w);
    assert_eq!(exchanges(&w.a, ExchangeType::IKE_INTERMEDIATE), 0);
    // The initiator insists: no SA at all.
    let w = up(
        "aes256gcm16-prfsha384-x25519-ke1_mlkem768",
        "aes256gcm16-prfsha384-x25519",
    );
    assert_eq!(w.a.engine.ike_sa_count() + w.b.engine.ike_sa_count(), 0);
    assert!(w.a.events.iter().any(|e| matches!(e, Event::IkeDown { reason: DownReason::Failed(r), .. } if r.contains("NO_PROPOSAL_CHOSEN"))));
    // A responder that requires it refuses an initiator without it.
    let w = up(
        "aes256gcm16-prfsha384-x25519",
        "aes256gcm16-prfsha384-x25519-ke1_mlkem768",
    );
    assert_eq!(w.a.engine.ike_sa_count() + w.b.engine.ike_sa_count(), 0);
}

#[test]
fn forged_intermediate_message_is_dropped_and_the_genuine_one_completes() {
    let p = "aes256gcm16-prfsha384-x25519-ke1_mlkem768";
    let mut w = World::new(
        Side {
            ike: vec![p],
            ..Side::a()
        },
        Side {
            ike: vec![p],
            ..Side::b()
        },
    );
    w.initiate();
    for t in &w.a.drain() {
        deliver(&mut w.b, w.now, t);
    }
    for t in &w.b.drain() {
        deliver(&mut w.a, w.now, t);
    }
    let req = w.a.drain();
    assert!(!req.is_empty());
    let mut forged = req[0].clone();
    let n = forged.data.len();
    forged.data[n - 40] ^= 0x40;
    deliver(&mut w.b, w.now, &forged);
    assert!(
        w.b.drain().is_empty(),
        "a forged IKE_INTERMEDIATE is not answered"
    );
    assert!(w.b.engine.stats().integrity_failed >= 1);
    for t in &req {
        deliver(&mut w.b, w.now, t);
    }
    w.pump();
    assert_up(&w);
}

#[test]
fn ike_auth_without_the_intermediate_exchange_is_refused() {
    let p = "aes256gcm16-prfsha384-x25519-ke1_mlkem768";
    let mut w = World::new(
        Side {
            ike: vec![p],
            ..Side::a()
        },
        Side {
            ike: vec![p],
            ..Side::b()
        },
    );
    w.initiate();
    for t in &w.a.drain() {
        deliver(&mut w.b, w.now, t);
    }
    let resp = w.b.drain();
    let m = Message::parse(&resp[0].data).unwrap();
    assert!(m.payloads.iter().any(
        |p| matches!(p, Payload::Notify(n) if n.ty == NotifyType::INTERMEDIATE_EXCHANGE_SUPPORTED)
    ));
    assert_eq!(w.b.engine.ike_sa_count(), 1);
}

#[test]
fn large_ml_kem_keys_travel_in_fragments() {
    let p = "aes256gcm16-prfsha384-x25519-ke1_mlkem1024";
    let cfg = |side: Side| Config {
        connections: vec![Arc::new(
            Side {
                ike: vec![p],
                ..side
            }
            .connection(),
        )],
        fragmentation: FragmentationConfig {
            enabled: true,
            size: 1280,
        },
        ..Config::default()
    };
    let mut w = World::new(Side::a(), Side::b());
    w.a.engine = Engine::new(cfg(Side::a()), Box::new(TestRng(31)));
    w.b.engine = Engine::new(cfg(Side::b()), Box::new(TestRng(32)));
    w.connect();
    assert_up(&w);
    // The 1568-byte encapsulation key does not fit in one 1280-byte datagram.
    let frags =
        w.a.sent
            .iter()
            .filter(|t| {
                Header::new_checked(t.data.as_slice())
                    .is_ok_and(|h| h.exchange_type() == ExchangeType::IKE_INTERMEDIATE)
            })
            .count();
    assert!(frags >= 2, "{frags}");
    assert!(
        w.a.sent
            .iter()
            .chain(&w.b.sent)
            .all(|t| t.data.len() <= 1280 - 32)
    );
}

#[test]
fn lost_intermediate_answer_is_retransmitted_from_the_cache() {
    let p = "aes256gcm16-prfsha384-x25519-ke1_mlkem768";
    let mut w = World::new(
        Side {
            ike: vec![p],
            ..Side::a()
        },
        Side {
            ike: vec![p],
            ..Side::b()
        },
    );
    w.initiate();
    let mut dropped = false;
    w.pump_with(|from_a, t| {
        let inter = Header::new_checked(t.data.as_slice())
            .is_ok_and(|h| h.exchange_type() == ExchangeType::IKE_INTERMEDIATE);
        if !from_a && inter && !dropped {
            dropped = true;
            return false;
        }
        true
    });
    assert!(dropped);
    assert!(w.advance(std::time::Duration::from_secs(5)));
    w.pump();
    assert_up(&w);
    assert_eq!(w.b.engine.stats().retransmits_answered, 1);
}
