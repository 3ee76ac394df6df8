//! Engine bugs the simulator found, each as the smallest scenario that
//! shows it. Every test asserts the correct behaviour and failed on the
//! engine before its fix; they stay as regression tests.
mod common;

use std::time::Duration;

use common::*;
use oxisec_ike::{DownReason, Event};
use oxisec_sim::*;
use oxisec_wire::ExchangeType;

/// A lossless path with a fixed 25 ms one way: every message crosses the
/// way the test says.
fn fixed() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(25),
        ..LinkConfig::ideal()
    }
}

fn up_fixed(grace: Duration) -> Sim {
    let mut sim = Sim::new(1, &Gateway::a(), &Gateway::b(), fixed());
    sim.set_inbound_grace(grace);
    sim.start_flows(FlowConfig::every(Duration::from_millis(5)));
    sim.connect();
    sim.settle();
    sim
}

/// Bug 1: the old inbound SA of a rekeyed CHILD_SA leaves the data plane
/// the moment the delete exchange runs (the rekey responder on the Delete
/// request, the initiator on its answer), while ESP packets the peer sent on
/// it a moment earlier can still be on the wire. Here A's ESP takes 10 ms
/// longer than its IKE messages (queueing; any jitter does it), and the
/// packets A sent just before its Delete arrive at B after B removed the SA:
/// unknown SPI. strongSwan keeps the old inbound SA for
/// `charon.delete_rekeyed_delay` (5 s) after a rekey. Fix: have the engine
/// emit `SaCommand::Delete { inbound: true }` of a rekeyed SA after such a
/// delay (it owns the timers and the SPI, which stays reserved meanwhile),
/// or have the daemon's data-plane adapter defer it (then the engine must
/// not reuse the SPI meanwhile).
#[test]
fn rekeyed_child_keeps_its_inbound_sa_for_packets_in_flight() {
    let mut sim = up_fixed(Duration::ZERO);
    sim.link
        .delay_matching(NodeId::A, usize::MAX, Duration::from_millis(35), |p| {
            p.kind == Kind::Esp
        });
    sim.rekey_child(NodeId::A);
    sim.settle();
    sim.assert_consistent();
    sim.assert_no_packet_lost_to_missing_sa();
}

/// Bug 2: A rekeys the CHILD_SA, its request is lost; meanwhile B deletes
/// that CHILD_SA on purpose and A confirms the delete. A's retransmitted
/// rekey request gets CHILD_SA_NOT_FOUND, and A answers that by creating a
/// brand-new CHILD_SA, undoing the delete B's operator asked for.
/// `child_error` pushes `Task::CreateChild` even when the CHILD_SA it
/// rekeyed is no longer there because the peer deleted it; it should only
/// start over when the SA still exists locally (the peer lost it), as
/// `finish_child_rekey` already does for the success path.
#[test]
fn lost_rekey_request_does_not_resurrect_a_child_the_peer_deleted() {
    let mut sim = up_fixed(INBOUND_GRACE);
    sim.stop_flows();
    sim.link.drop_matching(NodeId::A, 1, |p| {
        is_ike(p, ExchangeType::CREATE_CHILD_SA, false)
    });
    sim.rekey_child(NodeId::A);
    sim.terminate_child(NodeId::B);
    sim.settle();
    let c = sim.assert_consistent();
    assert_eq!(c.children.len(), 0, "{sim:?}");
}

/// Bug 3: A and B rekey the CHILD_SA at the same time; A's request is lost.
/// A answers B's request (the SA B creates gets its outbound half deferred,
/// as for any rekey responder, and is recorded as the collision), B
/// completes and deletes the old SA. `delete_child_by_peer` installs the
/// deferred outbound half of `successor` only, which is unset while A's own
/// rekey is outstanding (the peer's SA is in `collision.created`): A's data
/// plane never gets an outbound SA again and every packet A sends is lost.
#[test]
fn crossing_child_rekeys_with_a_lost_request_keep_an_outbound_sa() {
    let mut sim = up_fixed(INBOUND_GRACE);
    sim.link.drop_matching(NodeId::A, 1, |p| {
        is_ike(p, ExchangeType::CREATE_CHILD_SA, false)
    });
    sim.rekey_child(NodeId::A);
    sim.rekey_child(NodeId::B);
    sim.settle();
    sim.run_for(Duration::from_secs(1));
    let c = sim.assert_consistent();
    assert_eq!(c.children.len(), 1);
    sim.assert_no_packet_lost_to_missing_sa();
}

/// Bug 4: A and B rekey the IKE SA at the same time; A's request is lost.
/// A answers B's request (collision recorded, CHILD_SAs stay on the old SA
/// until A's own rekey completes), B completes and deletes the old IKE SA.
/// A closes the old SA with every CHILD_SA on it (ChildDown, SAs removed)
/// instead of moving them to B's new IKE SA (`ike_collision.created`),
/// which B keeps using: the tunnel is half gone.
#[test]
fn crossing_ike_rekeys_with_a_lost_request_keep_the_children() {
    let mut sim = up_fixed(INBOUND_GRACE);
    sim.link.drop_matching(NodeId::A, 1, |p| {
        is_ike(p, ExchangeType::CREATE_CHILD_SA, false)
    });
    sim.rekey_ike(NodeId::A);
    sim.rekey_ike(NodeId::B);
    sim.settle();
    let c = sim.assert_consistent();
    assert_eq!((c.ike.len(), c.children.len()), (1, 1));
    assert_eq!(
        sim.node(NodeId::A)
            .count_events(|e| matches!(e, Event::ChildDown { .. } | Event::IkeDown { .. })),
        0
    );
    sim.assert_no_packet_lost_to_missing_sa();
}

/// Bug 5: a task put off after TEMPORARY_FAILURE (§2.25) is lost when the
/// IKE SA is rekeyed before it is due. B rekeys the CHILD_SA while A rekeys
/// the IKE SA; each answers the other TEMPORARY_FAILURE and puts its own
/// rekey off by 5–15 s. A's IKE rekey comes first, and B moves `children`
/// and `tasks` to the new IKE SA but not `delayed` (neither does
/// `Engine::apply` for the initiator's side): B's CHILD_SA rekey dies with
/// the old IKE SA and never happens.
#[test]
fn rekeys_put_off_by_temporary_failure_are_retried() {
    let mut sim = up_fixed(INBOUND_GRACE);
    let before = sim.assert_consistent();
    sim.rekey_child(NodeId::B);
    sim.rekey_ike(NodeId::A);
    sim.run_for(Duration::from_secs(60));
    sim.settle();
    let after = sim.assert_consistent();
    assert_ne!(before.ike, after.ike, "the IKE rekey was retried");
    assert_ne!(
        before.children, after.children,
        "the CHILD_SA rekey was retried"
    );
    assert!(
        sim.node(NodeId::A)
            .events_where(|e| matches!(
                e,
                Event::ChildDown {
                    reason: DownReason::Rekeyed,
                    ..
                }
            ))
            .len()
            == 1
    );
}

/// Bug 6: the peer rekeys the IKE SA while our Delete of a CHILD_SA is
/// still outstanding on it (the peer processed it, its answer was lost).
/// `respond_ike_rekey` answers (it only defers for CHILD_SAs being created
/// or rekeyed, not for a delete in progress), the child in state DELETING
/// moves to the new IKE SA, the peer deletes the old IKE SA, and with it
/// goes our outstanding request: the child stays DELETING on A forever and
/// its inbound SA stays in A's data plane; B has no such child. strongSwan
/// answers TEMPORARY_FAILURE while any CHILD_SA is half created, rekeyed or
/// deleted. (Found by the week-long run, where it led to bug 7.)
#[test]
fn ike_rekey_during_a_child_delete_leaves_no_half_deleted_child() {
    let mut sim = up_fixed(INBOUND_GRACE);
    sim.stop_flows();
    sim.link.drop_matching(NodeId::B, 1, |p| {
        is_ike(p, ExchangeType::INFORMATIONAL, true)
    });
    sim.terminate_child(NodeId::A);
    // B answered A's Delete at 25 ms (lost); B's IKE rekey request reaches A
    // at 55 ms, long before A retransmits.
    sim.run_for(Duration::from_millis(30));
    sim.rekey_ike(NodeId::B);
    sim.settle();
    let c = sim.assert_consistent();
    assert_eq!((c.ike.len(), c.children.len()), (1, 0));
}

/// Bug 7: `IkeSa::next_deadline` counts `rekey_at` and `expire_at` of
/// CHILD_SAs in state DELETING, but `lifecycle::on_timeout` skips those
/// children and never clears them: once such a child's rekey time passes,
/// `poll_timeout` returns an instant in the past after every
/// `handle_timeout`, and a driver that follows it spins. Here A deletes the
/// CHILD_SA while the link is down; its Delete is still being retransmitted
/// when the child's rekey time (45–50 s) comes. The simulator stops at
/// 100 000 steps at one instant with "livelock".
#[test]
fn expired_child_with_an_outstanding_delete_does_not_spin_the_timer() {
    let g = |g: Gateway| Gateway {
        child_lifetime: oxisec_ike::ChildLifetime::from_rekey_time(Duration::from_secs(50)),
        ..g
    };
    let mut sim = Sim::new(1, &g(Gateway::a()), &g(Gateway::b()), fixed());
    sim.connect();
    sim.link.set_up(false);
    sim.terminate_child(NodeId::A);
    // A gives up after ≈ 165 s and closes the IKE SA.
    sim.run_for(Duration::from_secs(200));
    assert_eq!(sim.node(NodeId::A).engine.ike_sa_count(), 0);
}
