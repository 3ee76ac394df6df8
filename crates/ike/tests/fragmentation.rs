//! IKE fragmentation (RFC 7383) between two engines.
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use oxisec_ike::*;
use oxisec_wire::{ExchangeType, Header, Message, NotifyType, Payload, PayloadType};

/// A world whose engines fragment above `size` bytes (IP datagram), or do
/// not support fragmentation (`None`).
fn world(a: Option<usize>, b: Option<usize>) -> World {
    let cfg = |side: Side, size: Option<usize>| Config {
        connections: vec![Arc::new(side.connection())],
        fragmentation: FragmentationConfig {
            enabled: size.is_some(),
            size: size.unwrap_or(1280),
        },
        ..Config::default()
    };
    let mut w = World::new(Side::a(), Side::b());
    w.a.engine = Engine::new(cfg(Side::a(), a), Box::new(TestRng(21)));
    w.b.engine = Engine::new(cfg(Side::b(), b), Box::new(TestRng(22)));
    w
}

fn is_fragment(t: &Transmit) -> bool {
    Header::new_checked(t.data.as_slice()).is_ok_and(|h| h.next_payload() == PayloadType::SKF)
}

fn offers_fragmentation(t: &Transmit) -> bool {
    Message::parse(&t.data).is_ok_and(|m| {
        m.payloads.iter().any(|p| matches!(p, Payload::Notify(n) if n.ty == NotifyType::IKEV2_FRAGMENTATION_SUPPORTED))
    })
}

#[test]
fn negotiated_in_ike_sa_init_only_when_both_sides_support_it() {
    let mut w = world(Some(200), Some(200));
    w.connect();
    assert!(offers_fragmentation(&w.a.sent[0]) && offers_fragmentation(&w.b.sent[0]));
    assert!(
        w.a.sent.iter().any(is_fragment),
        "small fragment size: IKE_AUTH is fragmented"
    );

    let mut w = world(Some(200), None);
    w.connect();
    assert!(offers_fragmentation(&w.a.sent[0]));
    assert!(!offers_fragmentation(&w.b.sent[0]));
    assert!(
        !w.a.sent.iter().chain(&w.b.sent).any(is_fragment),
        "not negotiated: never fragmented"
    );
    assert_eq!(w.a.established() + w.b.established(), 2);
}

#[test]
fn fragmented_ike_auth_establishes_and_every_fragment_fits() {
    let mut w = world(Some(200), Some(200));
    w.connect();
    assert_eq!(w.a.established(), 1, "{:?}", w.a.events);
    assert_eq!(w.b.established(), 1);
    assert_eq!(w.a.children() + w.b.children(), 2);
    assert_consistent(&w.a.dp, &w.b.dp);
    let frags: Vec<&Transmit> =
        w.a.sent
            .iter()
            .chain(&w.b.sent)
            .filter(|t| is_fragment(t))
            .collect();
    assert!(
        frags.len() >= 4,
        "IKE_AUTH request and response in pieces: {}",
        frags.len()
    );
    for f in frags {
        // 200-byte IP datagrams: 20 IP + 8 UDP + 4 marker + the IKE message.
        assert!(f.data.len() <= 200 - 32, "{} bytes", f.data.len());
        let m = Message::parse(&f.data).unwrap();
        assert_eq!(m.header.exchange, ExchangeType::IKE_AUTH);
        assert!(matches!(m.payloads.as_slice(), [Payload::Skf(_)]));
    }
    // Later exchanges work through fragments too.
    w.a.engine.handle_command(
        w.now,
        Command::RekeyChild {
            child: "net".into(),
        },
    );
    w.pump();
    assert_consistent(&w.a.dp, &w.b.dp);
}

#[test]
fn fragments_reassemble_out_of_order_and_duplicated() {
    let mut w = world(Some(200), Some(200));
    w.initiate();
    // IKE_SA_INIT both ways.
    let init = w.a.drain();
    for t in &init {
        deliver(&mut w.b, w.now, t);
    }
    for t in &w.b.drain() {
        deliver(&mut w.a, w.now, t);
    }
    let mut auth = w.a.drain();
    assert!(auth.len() >= 2 && auth.iter().all(is_fragment));
    auth.reverse();
    let dup = auth[0].clone();
    auth.insert(1, dup);
    for t in &auth {
        deliver(&mut w.b, w.now, t);
    }
    w.pump();
    assert_eq!(w.a.established() + w.b.established(), 2);
    assert!(w.b.engine.stats().fragments_held >= 1);
}

#[test]
fn a_lost_fragment_is_recovered_by_retransmission_and_answered_from_the_cache() {
    let mut w = world(Some(200), Some(200));
    w.initiate();
    let mut dropped_request = false;
    let mut dropped_response = false;
    w.pump_with(|from_a, t| {
        if !is_fragment(t) {
            return true;
        }
        let m = Message::parse(&t.data).unwrap();
        let Payload::Skf(f) = &m.payloads[0] else {
            return true;
        };
        if from_a && f.fragment_number == 2 && !dropped_request {
            dropped_request = true;
            return false;
        }
        if !from_a && f.fragment_number == 1 && !dropped_response {
            dropped_response = true;
            return false;
        }
        true
    });
    assert!(dropped_request);
    while w.a.established() == 0 && w.advance(Duration::from_secs(30)) {
        w.pump_with(|from_a, t| {
            if !from_a && is_fragment(t) && !dropped_response {
                dropped_response = true;
                return false;
            }
            true
        });
    }
    assert!(dropped_response);
    assert_eq!(w.a.established() + w.b.established(), 2, "{:?}", w.a.events);
    assert_eq!(
        w.b.engine.stats().retransmits_answered,
        1,
        "the responder did not process IKE_AUTH twice"
    );
    assert_consistent(&w.a.dp, &w.b.dp);
}

#[test]
fn forged_and_inconsistent_fragments_are_dropped() {
    let mut w = world(Some(200), Some(200));
    w.initiate();
    for t in &w.a.drain() {
        deliver(&mut w.b, w.now, t);
    }
    for t in &w.b.drain() {
        deliver(&mut w.a, w.now, t);
    }
    let auth = w.a.drain();
    // A forged copy of fragment 1 (one bit flipped) is dropped before it is kept.
    let mut forged = auth[0].clone();
    let last = forged.data.len() - 1;
    forged.data[last] ^= 1;
    deliver(&mut w.b, w.now, &forged);
    assert_eq!(w.b.engine.stats().fragments_held, 0);
    assert!(w.b.engine.stats().integrity_failed >= 1);
    // The genuine fragments complete the message.
    for t in &auth {
        deliver(&mut w.b, w.now, t);
    }
    w.pump();
    assert_eq!(w.a.established() + w.b.established(), 2);
}
