//! RFC 9370 additional key exchanges on rekeys and new CHILD_SAs:
//! CREATE_CHILD_SA followed by IKE_FOLLOWUP_KE exchanges, between two engines.
mod common;

use std::time::Duration;

use common::*;
use oxisec_ike::*;
use oxisec_wire::{ExchangeType, Header};

const HYBRID_IKE: &str = "aes256gcm16-prfsha384-x25519-ke1_mlkem768";
const HYBRID_ESP: &str = "aes256gcm16-x25519-ke1_mlkem768";

fn world(a_esp: &'static str, b_esp: &'static str) -> World {
    let mut w = World::new(
        Side {
            ike: vec![HYBRID_IKE],
            esp: vec![a_esp],
            ..Side::a()
        },
        Side {
            ike: vec![HYBRID_IKE],
            esp: vec![b_esp],
            ..Side::b()
        },
    );
    w.connect();
    assert_up(&w);
    w
}

fn assert_up(w: &World) {
    assert_eq!(w.a.established(), 1, "A: {:?}", w.a.events);
    assert_eq!(w.b.established(), 1, "B: {:?}", w.b.events);
    assert_eq!(w.a.children(), 1, "A: {:?}", w.a.engine.status());
    assert_eq!(w.b.children(), 1, "B: {:?}", w.b.engine.status());
    assert_consistent(&w.a.dp, &w.b.dp);
}

/// Requests of an exchange type sent by `p`, by message ID and SPI pair
/// (retransmissions and fragments count once).
fn requests(p: &Peer, ex: ExchangeType) -> usize {
    let mut ids: Vec<(u64, u32)> = p
        .sent
        .iter()
        .filter_map(|t| Header::new_checked(t.data.as_slice()).ok())
        .filter(|h| h.exchange_type() == ex && !h.flags().response())
        .map(|h| (h.spi_i(), h.message_id()))
        .collect();
    ids.sort();
    ids.dedup();
    ids.len()
}

fn command(w: &mut World, on_a: bool, cmd: Command) {
    let now = w.now;
    let p = if on_a { &mut w.a } else { &mut w.b };
    p.engine.handle_command(now, cmd);
}

fn rekey_ike() -> Command {
    Command::RekeyIke {
        connection: "tunnel".into(),
    }
}

fn rekey_child() -> Command {
    Command::RekeyChild {
        child: "net".into(),
    }
}

/// Runs the clock until both engines are quiet (bounded).
fn settle(w: &mut World) {
    w.pump();
    for _ in 0..200 {
        if !w.advance(Duration::from_secs(30)) {
            break;
        }
        w.pump();
    }
}

fn child_algorithms(p: &Peer) -> String {
    p.engine.status()[0].children[0].algorithms.clone()
}

#[test]
fn ike_rekey_runs_its_additional_exchange_in_ike_followup_ke() {
    let mut w = world("aes128gcm16", "aes128gcm16");
    let before = w.a.engine.status()[0].spi_i;
    command(&mut w, true, rekey_ike());
    settle(&mut w);
    assert_up(&w);
    assert_eq!(requests(&w.a, ExchangeType::IKE_FOLLOWUP_KE), 1);
    let s = &w.a.engine.status()[0];
    assert_ne!(s.spi_i, before, "the IKE SA was replaced");
    assert!(s.algorithms.contains("KE1_ML_KEM_768"), "{}", s.algorithms);
    // The new IKE SA's keys agree: a CHILD_SA rekey over it works, from
    // either side.
    command(&mut w, false, rekey_child());
    settle(&mut w);
    assert_up(&w);
    command(&mut w, false, rekey_ike());
    settle(&mut w);
    assert_up(&w);
    assert_eq!(requests(&w.b, ExchangeType::IKE_FOLLOWUP_KE), 1);
}

#[test]
fn child_rekey_with_pfs_and_two_additional_exchanges() {
    let esp = "aes256gcm16-x25519-ke1_mlkem768-ke2_mlkem512";
    let mut w = world(esp, esp);
    // The CHILD_SA of IKE_AUTH carries no key exchange at all.
    assert!(!child_algorithms(&w.a).contains("ML_KEM"));
    let old = w.a.engine.status()[0].children[0].spi_in;
    command(&mut w, true, rekey_child());
    settle(&mut w);
    assert_up(&w);
    assert_eq!(requests(&w.a, ExchangeType::IKE_FOLLOWUP_KE), 2);
    assert_ne!(w.a.engine.status()[0].children[0].spi_in, old);
    let alg = child_algorithms(&w.a);
    assert!(
        alg.contains("CURVE_25519")
            && alg.contains("KE1_ML_KEM_768")
            && alg.contains("KE2_ML_KEM_512"),
        "{alg}"
    );
    assert_eq!(child_algorithms(&w.b), alg);
}

#[test]
fn additional_exchange_without_pfs_group() {
    let esp = "aes128gcm16-ke1_mlkem1024";
    let mut w = world(esp, esp);
    command(&mut w, false, rekey_child());
    settle(&mut w);
    assert_up(&w);
    assert_eq!(requests(&w.b, ExchangeType::IKE_FOLLOWUP_KE), 1);
    let alg = child_algorithms(&w.a);
    assert!(
        alg.contains("KE1_ML_KEM_1024") && !alg.contains("CURVE"),
        "{alg}"
    );
}

#[test]
fn a_new_child_sa_is_installed_only_after_its_follow_ups() {
    let mut w = World::new(
        Side {
            ike: vec![HYBRID_IKE],
            esp: vec![HYBRID_ESP],
            extra_children: vec![("dmz", "198.51.100.128/25", "203.0.113.128/25")],
            ..Side::a()
        },
        Side {
            ike: vec![HYBRID_IKE],
            esp: vec![HYBRID_ESP],
            extra_children: vec![("dmz", "203.0.113.128/25", "198.51.100.128/25")],
            ..Side::b()
        },
    );
    w.initiate();
    // Hold back B's answers to IKE_FOLLOWUP_KE: until one arrives, A must
    // not install the second CHILD_SA, and B must not either.
    let mut held = Vec::new();
    w.pump_with(|from_a, t| {
        let fx = !from_a
            && Header::new_checked(t.data.as_slice())
                .is_ok_and(|h| h.exchange_type() == ExchangeType::IKE_FOLLOWUP_KE);
        if fx {
            held.push(t.clone());
        }
        !fx
    });
    assert_eq!(held.len(), 1, "one follow-up answer held");
    assert_eq!(w.a.children(), 1, "A installed nothing yet");
    assert_eq!(
        w.b.children(),
        2,
        "B installs before it answers the last follow-up"
    );
    deliver(&mut w.a, w.now, &held[0]);
    settle(&mut w);
    assert_eq!(w.a.children(), 2);
    assert_eq!(w.b.children(), 2);
    assert_consistent(&w.a.dp, &w.b.dp);
}

#[test]
fn optional_additional_exchange_against_a_classic_peer() {
    let mut w = world(
        "aes128gcm16-x25519-ke1_mlkem768-ke1_none",
        "aes128gcm16-x25519",
    );
    command(&mut w, true, rekey_child());
    settle(&mut w);
    assert_up(&w);
    assert_eq!(requests(&w.a, ExchangeType::IKE_FOLLOWUP_KE), 0);
    let alg = child_algorithms(&w.a);
    assert!(
        alg.contains("CURVE_25519") && !alg.contains("ML_KEM"),
        "{alg}"
    );
}

#[test]
fn mandatory_additional_exchange_against_a_classic_peer_keeps_the_old_sa() {
    let mut w = world("aes128gcm16-x25519-ke1_mlkem768", "aes128gcm16-x25519");
    let old = w.a.engine.status()[0].children[0].spi_in;
    command(&mut w, true, rekey_child());
    settle(&mut w);
    assert_up(&w);
    assert_eq!(
        w.a.engine.status()[0].children[0].spi_in,
        old,
        "old SA kept"
    );
    assert_eq!(
        requests(&w.a, ExchangeType::CREATE_CHILD_SA),
        1,
        "tried once"
    );
    assert_eq!(requests(&w.a, ExchangeType::IKE_FOLLOWUP_KE), 0);
}

#[test]
fn a_lost_follow_up_answer_is_retransmitted_from_the_cache() {
    let mut w = world(HYBRID_ESP, HYBRID_ESP);
    command(&mut w, true, rekey_child());
    let mut dropped = false;
    w.pump_with(|from_a, t| {
        let fx = !from_a
            && Header::new_checked(t.data.as_slice())
                .is_ok_and(|h| h.exchange_type() == ExchangeType::IKE_FOLLOWUP_KE);
        if fx && !dropped {
            dropped = true;
            return false;
        }
        true
    });
    assert!(dropped);
    settle(&mut w);
    assert_up(&w);
    assert_eq!(w.b.engine.stats().retransmits_answered, 1);
    assert!(child_algorithms(&w.a).contains("KE1_ML_KEM_768"));
}

#[test]
fn crossing_child_rekeys_with_additional_exchanges_one_proceeds() {
    let mut w = world(HYBRID_ESP, HYBRID_ESP);
    let old = w.a.engine.status()[0].children[0].spi_in;
    command(&mut w, true, rekey_child());
    command(&mut w, false, rekey_child());
    settle(&mut w);
    assert_up(&w);
    assert_ne!(w.a.engine.status()[0].children[0].spi_in, old);
    assert!(child_algorithms(&w.a).contains("KE1_ML_KEM_768"));
    // The exchange with the higher initiator nonce went ahead; the other
    // was refused with TEMPORARY_FAILURE and its retry found the SA
    // already replaced.
    let ccs = requests(&w.a, ExchangeType::CREATE_CHILD_SA)
        + requests(&w.b, ExchangeType::CREATE_CHILD_SA);
    assert_eq!(ccs, 2, "one went ahead, one was refused");
    let fx = requests(&w.a, ExchangeType::IKE_FOLLOWUP_KE)
        + requests(&w.b, ExchangeType::IKE_FOLLOWUP_KE);
    assert_eq!(fx, 1, "only the winner ran its follow-up");
}

#[test]
fn crossing_ike_rekeys_with_additional_exchanges_one_proceeds() {
    let mut w = world("aes128gcm16", "aes128gcm16");
    let before = w.a.engine.status()[0].spi_i;
    command(&mut w, true, rekey_ike());
    command(&mut w, false, rekey_ike());
    settle(&mut w);
    assert_up(&w);
    let s = &w.a.engine.status()[0];
    assert_ne!(s.spi_i, before);
    assert!(s.algorithms.contains("KE1_ML_KEM_768"), "{}", s.algorithms);
    let ccs = requests(&w.a, ExchangeType::CREATE_CHILD_SA)
        + requests(&w.b, ExchangeType::CREATE_CHILD_SA);
    assert_eq!(
        ccs, 2,
        "one went ahead, one was refused and not retried on the old SA"
    );
    // The surviving IKE SA works.
    command(&mut w, true, rekey_child());
    settle(&mut w);
    assert_up(&w);
}

#[test]
fn ike_and_child_rekeys_crossing_each_other() {
    let mut w = world(HYBRID_ESP, HYBRID_ESP);
    command(&mut w, true, rekey_ike());
    command(&mut w, false, rekey_child());
    settle(&mut w);
    assert_up(&w);
    command(&mut w, true, rekey_child());
    command(&mut w, false, rekey_ike());
    settle(&mut w);
    assert_up(&w);
}
