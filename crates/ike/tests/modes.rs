//! Tunnel and transport mode (RFC 7296 §1.3.1, §1.3.3, §2.23; RFC 4303
//! §3.1) and the per-child anti-replay window, negotiated by two engines.
mod common;

use common::*;
use oxisec_ike::*;

/// Host-to-host selectors: each side's own address.
fn host(side: Side, mode: ChildMode, required: bool) -> Side {
    let (l, r) = if side.addr.to_string().ends_with(".1") {
        ("192.0.2.1/32", "192.0.2.2/32")
    } else {
        ("192.0.2.2/32", "192.0.2.1/32")
    };
    Side {
        local_ts: vec![l],
        remote_ts: vec![r],
        mode: (mode, required),
        ..side
    }
}

/// (mode, replay window) of every SA the peer installed, in order.
fn installed(p: &Peer) -> Vec<(ChildMode, u32)> {
    p.commands
        .iter()
        .filter_map(|c| match c {
            SaCommand::InstallInbound { sa, .. } | SaCommand::InstallOutbound { sa, .. } => {
                Some((sa.mode, sa.replay_window))
            }
            _ => None,
        })
        .collect()
}

fn status_modes(p: &Peer) -> Vec<ChildMode> {
    p.engine
        .status()
        .iter()
        .flat_map(|s| s.children.iter().map(|c| c.mode))
        .collect()
}

fn settle(w: &mut World) {
    w.pump();
    while w.advance(std::time::Duration::from_secs(6)) {
        w.pump();
    }
}

fn connect(a: Side, b: Side) -> World {
    let mut w = World::new(a, b);
    w.connect();
    assert_eq!(w.a.established(), 1, "{:?}", w.a.events);
    assert_eq!(w.b.established(), 1, "{:?}", w.b.events);
    w
}

#[test]
fn transport_mode_host_to_host_is_negotiated_in_ike_auth() {
    let w = connect(
        host(Side::a(), ChildMode::Transport, false),
        host(Side::b(), ChildMode::Transport, false),
    );
    for p in [&w.a, &w.b] {
        let got = installed(p);
        assert_eq!(got.len(), 2);
        assert!(
            got.iter().all(|(m, _)| *m == ChildMode::Transport),
            "{got:?}"
        );
        assert_eq!(status_modes(p), [ChildMode::Transport]);
    }
}

#[test]
fn tunnel_is_the_default() {
    let w = connect(Side::a(), Side::b());
    for p in [&w.a, &w.b] {
        assert!(installed(p).iter().all(|(m, _)| *m == ChildMode::Tunnel));
        assert_eq!(status_modes(p), [ChildMode::Tunnel]);
    }
}

#[test]
fn responder_configured_for_tunnel_makes_the_initiator_fall_back() {
    let w = connect(
        host(Side::a(), ChildMode::Transport, false),
        host(Side::b(), ChildMode::Tunnel, false),
    );
    assert_eq!(status_modes(&w.a), [ChildMode::Tunnel]);
    assert_eq!(status_modes(&w.b), [ChildMode::Tunnel]);
}

#[test]
fn initiator_asking_for_tunnel_gets_tunnel_from_a_transport_responder() {
    let w = connect(
        host(Side::a(), ChildMode::Tunnel, false),
        host(Side::b(), ChildMode::Transport, false),
    );
    assert_eq!(status_modes(&w.a), [ChildMode::Tunnel]);
    assert_eq!(status_modes(&w.b), [ChildMode::Tunnel]);
}

#[test]
fn subnets_cannot_use_transport_mode_and_fall_back_to_tunnel() {
    let w = connect(
        Side {
            mode: (ChildMode::Transport, false),
            ..Side::a()
        },
        Side {
            mode: (ChildMode::Transport, false),
            ..Side::b()
        },
    );
    assert_eq!(status_modes(&w.a), [ChildMode::Tunnel]);
    assert_eq!(status_modes(&w.b), [ChildMode::Tunnel]);
}

#[test]
fn required_transport_refused_by_the_responder_deletes_the_child_on_both_sides() {
    let mut w = connect(
        host(Side::a(), ChildMode::Transport, true),
        host(Side::b(), ChildMode::Tunnel, false),
    );
    settle(&mut w);
    assert_eq!(w.a.children(), 0, "{:?}", w.a.events);
    assert_eq!(w.b.children(), 0, "{:?}", w.b.events);
    // The IKE SA stays.
    assert_eq!(w.a.established(), 1);
    assert_eq!(w.b.established(), 1);
}

#[test]
fn responder_requiring_transport_refuses_a_tunnel_request() {
    let mut w = connect(
        host(Side::a(), ChildMode::Tunnel, false),
        host(Side::b(), ChildMode::Transport, true),
    );
    settle(&mut w);
    assert_eq!(w.a.children(), 0);
    assert_eq!(w.b.children(), 0);
    assert!(w.a.events.iter().any(|e| matches!(
        e,
        Event::ChildDown { reason: DownReason::Failed(r), .. } if r.contains("NO_PROPOSAL_CHOSEN")
    )), "{:?}", w.a.events);
}

#[test]
fn transport_mode_survives_child_rekeys_from_either_side() {
    for a_rekeys in [true, false] {
        let mut w = connect(
            host(Side::a(), ChildMode::Transport, false),
            host(Side::b(), ChildMode::Transport, false),
        );
        let p = if a_rekeys { &mut w.a } else { &mut w.b };
        p.engine.handle_command(
            w.now,
            Command::RekeyChild {
                child: "net".into(),
            },
        );
        settle(&mut w);
        for p in [&w.a, &w.b] {
            let got = installed(p);
            assert_eq!(got.len(), 4, "{got:?}");
            assert!(
                got.iter().all(|(m, _)| *m == ChildMode::Transport),
                "{got:?}"
            );
            assert_eq!(status_modes(p), [ChildMode::Transport]);
        }
    }
}

#[test]
fn additional_transport_child_via_create_child_sa() {
    let a = Side {
        extra_children: vec![("host", "192.0.2.1/32", "192.0.2.2/32")],
        mode: (ChildMode::Transport, false),
        ..Side::a()
    };
    let b = Side {
        extra_children: vec![("host", "192.0.2.2/32", "192.0.2.1/32")],
        mode: (ChildMode::Transport, false),
        ..Side::b()
    };
    let mut w = connect(a, b);
    settle(&mut w);
    for p in [&w.a, &w.b] {
        let st = &p.engine.status()[0];
        let mode = |n: &str| st.children.iter().find(|c| c.name == n).map(|c| c.mode);
        // "net" joins subnets: tunnel despite the configured transport.
        assert_eq!(mode("net"), Some(ChildMode::Tunnel));
        assert_eq!(mode("host"), Some(ChildMode::Transport));
    }
}

#[test]
fn replay_window_is_the_configured_one_or_4096() {
    let w = connect(
        Side {
            replay_window: 64,
            ..Side::a()
        },
        Side::b(),
    );
    assert!(installed(&w.a).iter().all(|(_, r)| *r == 64));
    assert!(installed(&w.b).iter().all(|(_, r)| *r == 4096));
    assert_eq!(config::DEFAULT_REPLAY_WINDOW, 4096);
}
