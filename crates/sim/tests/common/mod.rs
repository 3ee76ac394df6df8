//! Shared set-ups of the simulation tests.
#![allow(dead_code)]

use std::time::Duration;

use oxisec_ike::{DownReason, Event};
use oxisec_sim::*;
use oxisec_wire::ExchangeType;

/// The flow of the short tests: one packet per host every 50 ms, so that
/// packets are in flight at every moment of an exchange.
pub const FLOW: Duration = Duration::from_millis(50);

/// A realistic path for the lifecycle tests: 25 ± 5 ms one way, 5 % loss,
/// 2 % duplication, 2 % of packets held back up to 60 ms.
pub fn path() -> LinkConfig {
    LinkConfig::lossy(0.05)
}

/// How long the simulated data plane keeps an inbound SA after the engine
/// deleted it: zero, because the engine itself keeps the inbound half of a
/// rekeyed CHILD_SA for packets in flight (engine bug 1 in `engine_bugs.rs`).
pub const INBOUND_GRACE: Duration = Duration::ZERO;

/// A simulation with the data plane grace of [`INBOUND_GRACE`].
pub fn sim_with(seed: u64, a: &Gateway, b: &Gateway, link: LinkConfig) -> Sim {
    let mut sim = Sim::new(seed, a, b, link);
    sim.set_inbound_grace(INBOUND_GRACE);
    sim
}

/// [`path`] without loss: latency, jitter, duplication and reordering.
/// For collisions, so that both requests really cross; the same collisions
/// with a lost request are separate tests.
pub fn crossing_path() -> LinkConfig {
    LinkConfig {
        loss: 0.0,
        ..path()
    }
}

/// A tunnel that is up and carries the flow.
pub fn up_with(seed: u64, a: &Gateway, b: &Gateway, link: LinkConfig) -> Sim {
    let mut sim = sim_with(seed, a, b, link);
    sim.start_flows(FlowConfig::every(FLOW));
    sim.connect();
    sim.settle();
    let c = sim.assert_consistent();
    assert_eq!((c.ike.len(), c.children.len()), (1, 1), "{sim:?}");
    sim
}

pub fn up(seed: u64) -> Sim {
    up_with(seed, &Gateway::a(), &Gateway::b(), path())
}

/// Settles, then checks that both sides agree on exactly `ike` IKE SAs and
/// `children` CHILD_SAs and that no packet was lost to a missing SA.
pub fn settled(sim: &mut Sim, ike: usize, children: usize) -> Consistent {
    sim.settle();
    let c = sim.assert_consistent();
    assert_eq!(c.ike.len(), ike, "IKE SAs: {c:?}\n{sim:?}");
    assert_eq!(c.children.len(), children, "CHILD_SAs: {c:?}\n{sim:?}");
    sim.assert_no_packet_lost_to_missing_sa();
    c
}

/// Whether a packet is an IKE message of `exchange`, a response or not.
pub fn is_ike(p: &PacketInfo, exchange: ExchangeType, response: bool) -> bool {
    p.ike
        .is_some_and(|i| i.exchange == exchange && i.response == response)
}

pub fn rekeyed_children(sim: &Sim, n: NodeId) -> usize {
    sim.node(n).count_events(|e| {
        matches!(
            e,
            Event::ChildDown {
                reason: DownReason::Rekeyed,
                ..
            }
        )
    })
}

pub fn ike_rekeys(sim: &Sim, n: NodeId) -> usize {
    sim.node(n)
        .count_events(|e| matches!(e, Event::IkeRekeyed { .. }))
}

/// Stops the flows and lets the packets in flight land, before a test
/// deletes SAs on purpose (a packet after that has no SA by design).
pub fn quiesce_flows(sim: &mut Sim) {
    sim.stop_flows();
    sim.run_for(Duration::from_secs(1));
}
