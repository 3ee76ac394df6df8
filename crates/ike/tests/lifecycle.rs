//! Time-driven behaviour on a virtual clock: lifetimes, liveness, NAT
//! keepalives and rebinding, INITIAL_CONTACT, data-plane events.
mod common;

use std::time::Duration;

use common::*;
use oxisec_ike::*;

fn up(a: Side, b: Side) -> World {
    let mut w = World::new(a, b);
    w.connect();
    assert_eq!(w.a.established(), 1, "{:?}", w.a.events);
    assert_eq!(w.b.established(), 1, "{:?}", w.b.events);
    w
}

/// Runs the clock to `until`, moving datagrams after every timer.
fn run_until(w: &mut World, until: std::time::Instant) {
    loop {
        w.pump();
        let step = until.saturating_duration_since(w.now);
        if step.is_zero() || !w.advance(step) {
            break;
        }
    }
    w.pump();
}

fn child_spis(p: &Peer) -> Vec<u32> {
    p.engine
        .status()
        .iter()
        .flat_map(|s| s.children.iter().map(|c| c.spi_in))
        .collect()
}

#[test]
fn child_sa_rekeys_itself_within_the_jitter_window_generation_after_generation() {
    let lifetime = ChildLifetime::from_rekey_time(Duration::from_secs(600));
    let mut w = up(
        Side {
            child_lifetime: lifetime,
            ..Side::a()
        },
        Side {
            child_lifetime: lifetime,
            ..Side::b()
        },
    );
    let start = w.now;
    let first = child_spis(&w.a);
    // Nothing before rekey_time − rand_time (600 s − 60 s).
    run_until(&mut w, start + Duration::from_secs(539));
    assert_eq!(child_spis(&w.a), first);
    // Rekeyed by rekey_time.
    run_until(&mut w, start + Duration::from_secs(601));
    let second = child_spis(&w.a);
    assert_ne!(second, first);
    assert_eq!(second.len(), 1);
    // And again, for several generations, always exactly one CHILD_SA with matching SPIs.
    let mut seen = vec![first, second];
    for k in 2..8u64 {
        run_until(&mut w, start + Duration::from_secs(600 * k + 1));
        let now = child_spis(&w.a);
        assert_eq!(now.len(), 1, "generation {k}: {:?}", w.a.engine.status());
        assert!(!seen.contains(&now), "generation {k} rekeyed");
        seen.push(now);
        assert_consistent(&w.a.dp, &w.b.dp);
        assert_eq!(w.a.dp.outbound.len(), 1);
        assert_eq!(w.b.dp.outbound.len(), 1);
    }
}

#[test]
fn ike_sa_rekeys_itself_and_keeps_its_children() {
    let ike = IkeLifetime::from_rekey_time(Duration::from_secs(1800));
    let mut w = up(
        Side {
            ike_lifetime: ike,
            ..Side::a()
        },
        Side {
            ike_lifetime: ike,
            ..Side::b()
        },
    );
    let start = w.now;
    let spis = |p: &Peer| {
        p.engine
            .status()
            .iter()
            .map(|s| (s.spi_i, s.spi_r))
            .collect::<Vec<_>>()
    };
    let first = spis(&w.a);
    let child = child_spis(&w.a);
    run_until(&mut w, start + Duration::from_secs(1801));
    assert_eq!(spis(&w.a).len(), 1);
    assert_ne!(spis(&w.a), first);
    assert_eq!(spis(&w.a), spis(&w.b));
    assert_eq!(child_spis(&w.a), child);
    run_until(&mut w, start + Duration::from_secs(3 * 1800 + 1));
    assert_eq!(spis(&w.a).len(), 1, "rekeyed again, still one SA");
}

#[test]
fn child_sa_that_cannot_be_rekeyed_is_deleted_at_its_hard_lifetime() {
    let lifetime = ChildLifetime::from_rekey_time(Duration::from_secs(600));
    let mut w = up(
        Side {
            child_lifetime: lifetime,
            ..Side::a()
        },
        Side {
            child_lifetime: lifetime,
            ..Side::b()
        },
    );
    let start = w.now;
    // From now on the peers cannot talk: rekeys fail, the hard lifetime hits.
    let mut cut = true;
    let until = start + Duration::from_secs(661);
    loop {
        w.pump_with(|_, _| !cut);
        let step = until.saturating_duration_since(w.now);
        if step.is_zero() || !w.advance(step) {
            break;
        }
    }
    // At 660 s (life_time) the SA left the data plane, on each side by itself.
    assert!(w.a.dp.outbound.is_empty(), "{:?}", w.a.dp);
    assert!(w.b.dp.outbound.is_empty(), "{:?}", w.b.dp);
    cut = false;
    let _ = cut;
}

#[test]
fn liveness_check_after_a_quiet_period_and_peer_declared_dead() {
    let mut w = up(
        Side {
            dpd_delay: Duration::from_secs(30),
            ..Side::a()
        },
        Side::b(),
    );
    let start = w.now;
    // A quiet period ends with an empty INFORMATIONAL that B answers.
    run_until(&mut w, start + Duration::from_secs(31));
    let infos = w.a.sent.len();
    assert!(infos >= 3, "a liveness request went out");
    assert_eq!(w.a.established(), 1);
    // B disappears: A retransmits along the schedule, then declares it dead.
    let cut_at = w.now;
    let mut dead_at = None;
    while w.advance(Duration::from_secs(600)) {
        w.a.drain();
        w.b.drain();
        if dead_at.is_none() && w.a.engine.ike_sa_count() == 0 {
            dead_at = Some(w.now);
        }
    }
    assert_eq!(w.a.engine.ike_sa_count(), 0);
    assert!(w.a.events.iter().any(|e| matches!(
        e,
        Event::IkeDown {
            reason: DownReason::PeerDead,
            ..
        }
    )));
    assert!(w.a.dp.inbound.is_empty() && w.a.dp.outbound.is_empty());
    // Quiet period (≤ 30 s), then strongSwan's schedule: 4 + 7.2 + 13 + 23.3 + 42 + 75.6 ≈ 165 s.
    let elapsed = dead_at.unwrap() - cut_at;
    assert!(
        elapsed >= Duration::from_secs(165),
        "declared dead after {elapsed:?}"
    );
    assert!(
        elapsed <= Duration::from_secs(30 + 166),
        "declared dead after {elapsed:?}"
    );
}

#[test]
fn inbound_esp_counts_as_a_sign_of_life() {
    let mut w = up(
        Side {
            dpd_delay: Duration::from_secs(30),
            ..Side::a()
        },
        Side::b(),
    );
    let start = w.now;
    let spi = child_spis(&w.a)[0];
    let sent_before = w.a.sent.len();
    for s in (10..=120).step_by(10) {
        run_until(&mut w, start + Duration::from_secs(s));
        w.a.engine
            .handle_dataplane(w.now, DataplaneEvent::InboundActivity { spi });
    }
    w.a.drain();
    assert_eq!(
        w.a.sent.len(),
        sent_before,
        "no liveness check while ESP arrives"
    );
}

#[test]
fn dpd_action_restart_initiates_again() {
    let mut w = up(
        Side {
            dpd_delay: Duration::from_secs(30),
            dpd_action: DpdAction::Restart,
            ..Side::a()
        },
        Side::b(),
    );
    // Cut the link long enough for A to give up, then heal it.
    let mut cut = true;
    let mut guard = 0;
    while w.a.engine.ike_sa_count() > 0
        && w.a
            .events
            .iter()
            .all(|e| !matches!(e, Event::IkeDown { .. }))
    {
        w.pump_with(|_, _| !cut);
        w.advance(Duration::from_secs(600));
        w.a.drain();
        guard += 1;
        assert!(guard < 100);
    }
    cut = false;
    let _ = cut;
    // A restarted the connection: a fresh IKE_SA_INIT is pending (its first
    // copy was lost); with the link back, a retransmission brings it up.
    assert_eq!(w.a.engine.ike_sa_count(), 1);
    w.advance(Duration::from_secs(10));
    w.pump();
    assert_eq!(w.a.established(), 1);
    assert_eq!(w.a.children(), 1);
    // B accepted the new SA and, because A sent INITIAL_CONTACT, dropped the old one.
    assert_eq!(w.b.established(), 1, "{:?}", w.b.engine.status());
    assert_eq!(w.b.children(), 1);
    assert_consistent(&w.a.dp, &w.b.dp);
}

#[test]
fn initial_contact_replaces_the_peers_stale_sas_after_a_restart() {
    let mut w = up(Side::a(), Side::b());
    // A "restarts": a fresh engine with the same configuration.
    w.a = Side::a().engine(7);
    w.initiate();
    w.pump();
    assert_eq!(w.b.engine.ike_sa_count(), 1, "{:?}", w.b.engine.status());
    assert_eq!(w.b.children(), 1);
    assert_eq!(w.b.dp.inbound.len(), 1);
    assert_eq!(w.b.dp.outbound.len(), 1);
    assert_consistent(&w.a.dp, &w.b.dp);
}

/// A NAT in front of A: 192.0.2.1:500 ↔ 198.51.100.200:39999 and
/// 192.0.2.1:4500 ↔ 198.51.100.200:40000. Moves datagrams until quiet.
fn pump_through_nat(w: &mut World) {
    use std::net::SocketAddr;
    let inside = |port: u16| -> SocketAddr { SocketAddr::new("192.0.2.1".parse().unwrap(), port) };
    let outside =
        |port: u16| -> SocketAddr { SocketAddr::new("198.51.100.200".parse().unwrap(), port) };
    let out_port = |p: u16| if p == 500 { 39999 } else { 40000 };
    let in_port = |p: u16| if p == 39999 { 500 } else { 4500 };
    for _ in 0..100 {
        let from_a = w.a.drain();
        let from_b = w.b.drain();
        if from_a.is_empty() && from_b.is_empty() {
            return;
        }
        for t in from_a {
            let src = outside(out_port(t.local.port()));
            w.b.engine.handle_datagram(
                w.now,
                Datagram {
                    local: t.remote,
                    remote: src,
                    data: t.data.clone(),
                },
            );
        }
        for t in from_b {
            let dst = inside(in_port(t.remote.port()));
            w.a.engine.handle_datagram(
                w.now,
                Datagram {
                    local: dst,
                    remote: t.local,
                    data: t.data.clone(),
                },
            );
        }
    }
}

#[test]
fn nat_keepalives_every_20_seconds_from_the_natted_side_only() {
    // Without forced encapsulation, only real NAT detection decides.
    let mut a = Side::a().connection();
    a.force_encap = false;
    let mut b = Side::b().connection();
    b.force_encap = false;
    // B cannot know the address the NAT gives A.
    b.remote_addrs.clear();
    let cfg = |c: Connection| Config {
        connections: vec![std::sync::Arc::new(c)],
        ..Config::default()
    };
    w_with(cfg(a), cfg(b), |w| {
        w.initiate();
        pump_through_nat(w);
        assert_eq!(w.a.established(), 1, "{:?}", w.a.events);
        assert_eq!(w.b.established(), 1);
        // Both floated to 4500; B sees A at the NAT's address.
        assert_eq!(
            w.b.engine.status()[0].remote,
            "198.51.100.200:40000".parse().unwrap()
        );
        let start = w.now;
        let mut keepalives = 0;
        let mut now = start;
        while now < start + Duration::from_secs(60) {
            now += Duration::from_secs(1);
            w.a.engine.handle_timeout(now);
            w.b.engine.handle_timeout(now);
            let sent = w.a.drain();
            keepalives += sent
                .iter()
                .filter(|t| t.data == [0xff] && !t.non_esp_marker && t.local.port() == 4500)
                .count();
            assert!(
                w.b.drain().iter().all(|t| t.data != [0xff]),
                "B is not behind a NAT"
            );
        }
        assert_eq!(keepalives, 3, "one keepalive every 20 s");
    });
}

fn w_with(a: Config, b: Config, f: impl FnOnce(&mut World)) {
    let mut w = World::new(Side::a(), Side::b());
    w.a.engine = Engine::new(a, Box::new(TestRng(11)));
    w.b.engine = Engine::new(b, Box::new(TestRng(12)));
    f(&mut w);
}

#[test]
fn nat_rebinding_moves_the_outbound_sas_without_a_handshake() {
    let mut w = up(Side::a(), Side::b());
    // A's NAT mapping changes: its next authenticated message arrives from elsewhere.
    w.a.engine.handle_command(
        w.now,
        Command::RekeyChild {
            child: "net".into(),
        },
    );
    let reqs = w.a.drain();
    let new_src: std::net::SocketAddr = "192.0.2.1:31337".parse().unwrap();
    for t in &reqs {
        w.b.engine.handle_datagram(
            w.now,
            Datagram {
                local: t.remote,
                remote: new_src,
                data: t.data.clone(),
            },
        );
    }
    w.b.drain();
    let moves: Vec<_> =
        w.b.commands
            .iter()
            .filter_map(|c| {
                if let SaCommand::UpdateEndpoints { remote, .. } = c {
                    Some(*remote)
                } else {
                    None
                }
            })
            .collect();
    assert_eq!(moves, vec![new_src]);
    assert_eq!(w.b.engine.status()[0].remote, new_src);
    // A forged (unauthenticated) datagram from yet another address moves nothing.
    let mut bogus = reqs[0].data.clone();
    let last = bogus.len() - 1;
    bogus[last] ^= 1;
    w.b.engine.handle_datagram(
        w.now,
        Datagram {
            local: reqs[0].remote,
            remote: "203.0.113.66:4500".parse().unwrap(),
            data: bogus,
        },
    );
    assert_eq!(w.b.engine.status()[0].remote, new_src);
}

#[test]
fn volume_limits_from_the_data_plane_rekey_and_delete() {
    let mut w = up(Side::a(), Side::b());
    let spi = child_spis(&w.a)[0];
    w.a.engine
        .handle_dataplane(w.now, DataplaneEvent::SoftExpired { spi, inbound: true });
    w.pump();
    let after = child_spis(&w.a);
    assert_eq!(after.len(), 1);
    assert_ne!(after[0], spi, "soft expiry rekeyed the SA");
    w.b.engine.handle_dataplane(
        w.now,
        DataplaneEvent::HardExpired {
            spi: child_spis(&w.b)[0],
            inbound: true,
        },
    );
    w.pump();
    assert_eq!(w.a.children() + w.b.children(), 0, "hard expiry deleted it");
    assert_consistent(&w.a.dp, &w.b.dp);
}

#[test]
fn child_limits_cap_packets_below_the_sequence_number_wrap() {
    let w = up(Side::a(), Side::b());
    for c in &w.a.commands {
        if let SaCommand::InstallOutbound { sa, .. } = c {
            assert!(sa.limits.soft_packets > 0 && sa.limits.soft_packets < (1u64 << 32));
            assert!(sa.limits.hard_packets < (1u64 << 32));
        }
    }
}

#[test]
fn esp_on_unknown_spis_is_answered_with_invalid_spi_at_most_once_a_second() {
    let mut w = up(Side::a(), Side::b());
    let peer = w.a.engine.status()[0].remote;
    let local = w.a.engine.status()[0].local;
    let before = w.a.sent.len();
    for i in 0..100 {
        w.a.engine.handle_dataplane(
            w.now,
            DataplaneEvent::UnknownSpi {
                spi: 0xdead0000 + i,
                local,
                remote: peer,
            },
        );
    }
    w.pump();
    assert_eq!(w.a.sent.len() - before, 1, "one INVALID_SPI for a burst");
    assert!(w.a.engine.stats().invalid_spi_suppressed >= 99);
    assert_eq!(w.a.established() + w.b.established(), 2);
}
