//! Is there a moment during a CHILD_SA rekey (tunnel mode) when no route
//! sends the child's remote selectors into the TUN device? Then packets for
//! the remote subnet would leave in clear by the default route.
//!
//! The daemon (`daemon/mod.rs`, `Daemon::apply`) turns each tunnel-mode
//! `InstallOutbound` into `RouteOp::Add` for that child and each
//! `Delete { inbound: false }` into `RouteOp::Remove`; the route task
//! (`daemon/routes.rs`) works through them in order and keeps a prefix while
//! any child uses it. A rekeyed child has the same selectors as the old one,
//! so the prefix stays exactly while *some* outbound SA is installed. This
//! test replays the commands the real engines emit (two of them in the
//! simulator, rekey initiator and responder, crossing rekeys, lost
//! messages) and checks that, once the first outbound SA is in, the set of
//! installed outbound SAs never becomes empty while the CHILD_SA lives on.
use std::collections::BTreeSet;
use std::time::Duration;

use oxisec_sim::{Gateway, Kind, LinkConfig, NodeId, PacketInfo, Sim};
use oxisec_wire::ExchangeType;

fn fixed() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(25),
        ..LinkConfig::ideal()
    }
}

fn up(link: LinkConfig, seed: u64) -> Sim {
    let mut sim = Sim::new(seed, &Gateway::a(), &Gateway::b(), link);
    sim.connect();
    sim.settle();
    sim
}

/// The route bookkeeping fed `node`'s command log: the moments (index into
/// the log) where the last route user went away.
fn route_gaps(sim: &Sim, node: NodeId) -> Vec<String> {
    gaps_in(&sim.node(node).sa_log)
        .into_iter()
        .map(|g| format!("{node:?} {g}"))
        .collect()
}

/// The bookkeeping itself, on a command log of (time, "out+"/"out-"/..., SPI).
fn gaps_in(log: &[(Duration, &'static str, u32)]) -> Vec<String> {
    let mut users: BTreeSet<u32> = BTreeSet::new();
    let mut gaps = Vec::new();
    let mut ever = false;
    for (i, (at, what, spi)) in log.iter().enumerate() {
        match *what {
            "out+" => {
                users.insert(*spi);
                ever = true;
            }
            "out-" => {
                users.remove(spi);
                if ever && users.is_empty() {
                    gaps.push(format!("at {at:?} (command {i}): out- {spi:08x}"));
                }
            }
            _ => {}
        }
    }
    gaps
}

/// Asserts that neither side ever had no route while the child survived.
fn assert_no_gap(sim: &Sim, what: &str) {
    let c = sim.assert_consistent();
    assert_eq!(c.children.len(), 1, "{what}: the child did not survive");
    for n in NodeId::BOTH {
        let gaps = route_gaps(sim, n);
        assert!(
            gaps.is_empty(),
            "{what}: the tunnel route went away for a moment: {gaps:?}\nlog: {:?}",
            sim.node(n).sa_log
        );
    }
}

fn is_ike(p: &PacketInfo, exchange: ExchangeType, response: bool) -> bool {
    p.ike
        .is_some_and(|i| i.exchange == exchange && i.response == response)
}

/// The check sees a break-before-make order, and accepts make-before-break.
#[test]
fn the_bookkeeping_finds_a_gap() {
    let t = Duration::ZERO;
    let broken = [
        (t, "out+", 1),
        (t, "in+", 2),
        (t, "out-", 1),
        (t, "out+", 2),
    ];
    assert_eq!(gaps_in(&broken).len(), 1);
    let fine = [
        (t, "out+", 1),
        (t, "out+", 2),
        (t, "out-", 1),
        (t, "in-", 1),
    ];
    assert!(gaps_in(&fine).is_empty());
}

#[test]
fn rekey_initiator_and_responder_keep_the_route() {
    for (who, name) in [(NodeId::A, "A rekeys"), (NodeId::B, "B rekeys")] {
        let mut sim = up(fixed(), 1);
        for _ in 0..3 {
            sim.rekey_child(who);
            sim.settle();
        }
        assert_no_gap(&sim, name);
        let rekeys = sim
            .node(NodeId::A)
            .sa_log
            .iter()
            .filter(|e| e.1 == "out-")
            .count();
        assert_eq!(rekeys, 3, "{name}: {:?}", sim.node(NodeId::A).sa_log);
    }
}

#[test]
fn crossing_rekeys_keep_the_route() {
    let mut sim = up(fixed(), 1);
    sim.rekey_child(NodeId::A);
    sim.rekey_child(NodeId::B);
    sim.settle();
    assert_no_gap(&sim, "crossing rekeys");
    // Crossing, and A's request lost (the responder side takes over).
    let mut sim = up(fixed(), 1);
    sim.link.drop_matching(NodeId::A, 1, |p| {
        is_ike(p, ExchangeType::CREATE_CHILD_SA, false)
    });
    sim.rekey_child(NodeId::A);
    sim.rekey_child(NodeId::B);
    sim.settle();
    sim.run_for(Duration::from_secs(1));
    sim.settle();
    assert_no_gap(&sim, "crossing rekeys, A's request lost");
}

#[test]
fn lost_rekey_messages_keep_the_route() {
    // The rekey request, its answer, the Delete of the old SA, its answer:
    // each lost once (retransmitted), from either side.
    let cases: [(NodeId, ExchangeType, bool); 4] = [
        (NodeId::A, ExchangeType::CREATE_CHILD_SA, false),
        (NodeId::B, ExchangeType::CREATE_CHILD_SA, true),
        (NodeId::A, ExchangeType::INFORMATIONAL, false),
        (NodeId::B, ExchangeType::INFORMATIONAL, true),
    ];
    for (from, ex, response) in cases {
        let mut sim = up(fixed(), 1);
        sim.link.drop_matching(from, 1, move |p| {
            p.kind == Kind::Ike && is_ike(p, ex, response)
        });
        sim.rekey_child(NodeId::A);
        sim.settle();
        sim.run_for(Duration::from_secs(30));
        sim.settle();
        assert_no_gap(
            &sim,
            &format!("{ex:?} response={response} from {from:?} lost"),
        );
    }
}

#[test]
fn rekeys_on_a_lossy_link_keep_the_route() {
    let mut checked = 0;
    for seed in 1..=8 {
        let mut sim = up(LinkConfig::lossy(0.1), seed);
        sim.rekey_child(NodeId::A);
        sim.run_for(Duration::from_secs(2));
        sim.rekey_child(NodeId::B);
        sim.run_for(Duration::from_secs(60));
        sim.settle();
        if sim.check_consistent().map(|c| c.children.len()) != Ok(1) {
            // The IKE SA died of the losses: a teardown, not a rekey.
            continue;
        }
        assert_no_gap(&sim, &format!("lossy link, seed {seed}"));
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} of 8 runs kept their IKE SA");
}

/// The rekey responder keeps the new SA's outbound half back until the
/// initiator deletes the old SA. If the old SA dies another way first —
/// here its hard volume limit, while the initiator's Delete is lost — the
/// route must still not go away with it.
#[test]
fn old_sa_expiring_on_the_rekey_responder_keeps_the_route() {
    let mut sim = up(fixed(), 1);
    sim.link.drop_matching(NodeId::A, 1, |p| {
        is_ike(p, ExchangeType::INFORMATIONAL, false)
    });
    let old_out = sim
        .node(NodeId::B)
        .sa_log
        .iter()
        .find(|e| e.1 == "out+")
        .map(|e| e.2)
        .expect("B's outbound SA");
    sim.rekey_child(NodeId::A);
    let ins = |s: &Sim| {
        s.node(NodeId::B)
            .sa_log
            .iter()
            .filter(|e| e.1 == "in+")
            .count()
    };
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| ins(s) >= 2));
    let now = sim.now();
    sim.node_mut(NodeId::B).engine.handle_dataplane(
        now,
        oxisec_ike::DataplaneEvent::HardExpired {
            spi: old_out,
            inbound: false,
        },
    );
    sim.run_for(Duration::from_secs(30));
    sim.settle();
    for n in NodeId::BOTH {
        let gaps = route_gaps(&sim, n);
        assert!(
            gaps.is_empty(),
            "the tunnel route went away: {gaps:?}\nA: {:?}\nB: {:?}",
            sim.node(NodeId::A).sa_log,
            sim.node(NodeId::B).sa_log
        );
    }
}
