//! A simulated week over a path with 10 % loss each way, duplication and
//! reordering, with a packet flow both ways all week, and rekeys of both SA
//! kinds every few minutes. At the end the tunnel (a successor of the first
//! IKE SA, after hundreds of rekeys) is still up, both sides agree on it, no
//! SA ever went down for another reason than a rekey, and not one packet was
//! lost to a missing SA. Each variant prints a summary line (run with
//! `--nocapture`).
//!
//! Three variants of who starts the rekeys:
//! * both engines by their own lifetimes (CHILD_SA every 3–6 min, IKE SA
//!   every 10–20 min, with jitter, so either side may start and now and
//!   then both at once or while the other's exchange is still under way):
//!   the real thing;
//! * A's engine by its lifetimes, B never starts one;
//! * the test's schedule from random sides (RekeyChild every 3–7 min,
//!   RekeyIke every 10–20 min), each command given when no exchange is
//!   under way.
mod common;

use std::time::{Duration, Instant};

use common::*;
use oxisec_ike::{ChildLifetime, DownReason, Event, IkeLifetime, RetransmitConfig};
use oxisec_sim::*;

const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
const SEED: u64 = 0x5eed_0001;

fn gateway(g: Gateway, lifetimes: bool) -> Gateway {
    let g = Gateway {
        dpd_delay: Duration::from_secs(30),
        // With 10 % loss each way a request and its answer both get through
        // with p = 0.81, so an exchange fails all 6 transmissions of the
        // default schedule with p ≈ 0.19^6 ≈ 5e-5. A week holds thousands
        // of exchanges (rekeys, deletes, liveness checks): with the default
        // the peer would be declared dead now and then, which is correct
        // behaviour but not what this test is about. With 8 retransmissions
        // (9 sends over ≈ 17 min) p ≈ 3e-7.
        retransmit: RetransmitConfig {
            tries: 8,
            ..RetransmitConfig::default()
        },
        ..g
    };
    if !lifetimes {
        return g;
    }
    Gateway {
        child_lifetime: ChildLifetime {
            rekey_time: Duration::from_secs(6 * 60),
            life_time: Duration::from_secs(9 * 60),
            rand_time: Duration::from_secs(3 * 60),
            ..ChildLifetime::from_rekey_time(Duration::from_secs(6 * 60))
        },
        ike_lifetime: IkeLifetime {
            rekey_time: Duration::from_secs(20 * 60),
            over_time: Duration::from_secs(5 * 60),
            rand_time: Duration::from_secs(10 * 60),
            reauth_time: Duration::ZERO,
        },
        ..g
    }
}

fn week_sim(a_timers: bool, b_timers: bool) -> Sim {
    week_sim_seeded(SEED, a_timers, b_timers)
}

fn week_sim_seeded(seed: u64, a_timers: bool, b_timers: bool) -> Sim {
    let link = LinkConfig {
        duplicate: 0.01,
        ..LinkConfig::lossy(0.10)
    };
    let (a, b) = (
        gateway(Gateway::a(), a_timers),
        gateway(Gateway::b(), b_timers),
    );
    let mut sim = sim_with(seed, &a, &b, link);
    sim.start_flows(FlowConfig::every(Duration::from_millis(7_500)));
    sim.connect();
    sim
}

/// Checks the end of the week and prints the summary.
fn finish(mut sim: Sim, first: Consistent, wall: Instant, what: &str) {
    // Stop at a moment when no exchange is under way.
    let quiet = sim.run_until_cond(Duration::from_secs(3600), |s| {
        s.control_quiet() && s.check_consistent().is_ok()
    });
    assert!(quiet, "{sim:?}");
    let end = sim.assert_consistent();
    assert_eq!((end.ike.len(), end.children.len()), (1, 1), "{sim:?}");
    assert_ne!(end.ike, first.ike);
    assert_ne!(end.children, first.children);
    sim.assert_no_packet_lost_to_missing_sa();
    let s = sim.summary();
    println!(
        "{what}: {s}; wall time {:.1} s",
        wall.elapsed().as_secs_f64()
    );
    assert!(s.child_rekeys > 1_200, "{s}");
    assert!(s.ike_rekeys > 400, "{s}");
    for n in NodeId::BOTH {
        let down = sim.node(n).events_where(|e| match e {
            Event::IkeDown { reason, .. } | Event::ChildDown { reason, .. } => {
                *reason != DownReason::Rekeyed
            }
            _ => false,
        });
        assert!(down.is_empty(), "{n}: {down:?}");
    }
    let f = s.flow;
    assert!(
        f.delivered as f64 > 0.85 * (f.due - f.before_up) as f64,
        "{s}"
    );
}

/// Runs a day at a time, so that a failure says roughly when.
fn run_week(sim: &mut Sim, mut each_day: impl FnMut(&mut Sim, Instant)) {
    for day in 1..=7 {
        let end = sim.at(WEEK * day / 7);
        each_day(sim, end);
        sim.run_until(end);
        let f = sim.flows();
        assert!(
            f.lost_to_missing_sa() == 0,
            "day {day}: {f:?}\n{:?}",
            sim.failures
        );
    }
}

#[test]
fn a_week_of_engine_rekeys_from_both_sides_under_loss() {
    // Several seeds: crossings of every kind happen a few times a week, and
    // each seed lays them out differently (12 seeds were run while fixing
    // the engine; four keep the suite quick).
    for seed in [SEED, 0x5eed_1001, 0x5eed_1002, 0x5eed_1008] {
        let wall = Instant::now();
        let mut sim = week_sim_seeded(seed, true, true);
        let first = sim.assert_consistent();
        run_week(&mut sim, |_, _| {});
        finish(
            sim,
            first,
            wall,
            &format!("week (seed {seed:#x}), engine rekeys from both sides"),
        );
    }
}

/// A gateway that adds ML-KEM-768 to every key exchange. Its messages with
/// an ML-KEM share exceed 1280 bytes and go in two IKE fragments, so an
/// exchange fails on this path more often (p ≈ 0.27 rather than 0.19); the
/// hard lifetime leaves 6–9 minutes rather than 3–6 for a rekey to get
/// through, so that only an engine fault, not a run of losses long enough
/// to declare the peer dead, could let a CHILD_SA expire.
fn hybrid_gateway(g: Gateway) -> Gateway {
    let g = gateway(g, true);
    Gateway {
        ike: vec!["aes256gcm16-prfsha384-x25519-ke1_mlkem768".into()],
        esp: vec!["aes256gcm16-x25519-ke1_mlkem768".into()],
        child_lifetime: ChildLifetime {
            life_time: Duration::from_secs(12 * 60),
            ..g.child_lifetime
        },
        ..g
    }
}

#[test]
fn a_week_of_hybrid_post_quantum_rekeys_from_both_sides_under_loss() {
    // Every rekey of either kind runs an ML-KEM-768 exchange in
    // IKE_FOLLOWUP_KE (RFC 9370) after the CREATE_CHILD_SA; crossing
    // rekeys are refused with TEMPORARY_FAILURE and retried.
    let wall = Instant::now();
    let hybrid = hybrid_gateway;
    let link = LinkConfig {
        duplicate: 0.01,
        ..LinkConfig::lossy(0.10)
    };
    let mut sim = sim_with(
        0x5eed_2001,
        &hybrid(Gateway::a()),
        &hybrid(Gateway::b()),
        link,
    );
    sim.start_flows(FlowConfig::every(Duration::from_millis(7_500)));
    sim.connect();
    let first = sim.assert_consistent();
    run_week(&mut sim, |_, _| {});
    for n in NodeId::BOTH {
        let status = sim.node(n).engine.status();
        assert!(
            status[0].algorithms.contains("KE1_ML_KEM_768"),
            "{status:?}"
        );
        assert!(
            status[0].children[0].algorithms.contains("KE1_ML_KEM_768"),
            "{status:?}"
        );
    }
    finish(
        sim,
        first,
        wall,
        "week, hybrid ML-KEM rekeys from both sides",
    );
}

#[test]
fn a_week_of_engine_rekeys_from_one_side_under_loss() {
    let wall = Instant::now();
    let mut sim = week_sim(true, false);
    let first = sim.assert_consistent();
    run_week(&mut sim, |_, _| {});
    finish(sim, first, wall, "week, engine rekeys from A");
}

#[test]
fn a_week_of_scheduled_rekeys_from_random_sides_under_loss() {
    let wall = Instant::now();
    let mut sim = week_sim(false, false);
    let first = sim.assert_consistent();
    let min = |m: u64| Duration::from_secs(60 * m);
    let mut next_child = sim.now() + min(5);
    let mut next_ike = sim.now() + min(15);
    run_week(&mut sim, |sim, end| {
        loop {
            let next = next_child.min(next_ike);
            if next > end {
                return;
            }
            sim.run_until(next);
            // An operator (or a timer) that waits for the exchange under
            // way, so that the rekeys never cross.
            let ok = sim.run_until_cond(min(30), |s| {
                s.control_quiet() && s.check_consistent().is_ok()
            });
            assert!(ok, "no quiet moment: {sim:?}");
            let side = if sim.schedule_rng().chance(0.5) {
                NodeId::A
            } else {
                NodeId::B
            };
            if next == next_child {
                sim.rekey_child(side);
                next_child = sim.now() + sim.schedule_rng().between(min(3), min(7));
            } else {
                sim.rekey_ike(side);
                next_ike = sim.now() + sim.schedule_rng().between(min(10), min(20));
            }
        }
    });
    finish(sim, first, wall, "week, scheduled rekeys from random sides");
}

/// Not part of the suite: more seeds for either variant, for hunting rare
/// interleavings (`OXISEC_SIM_SEEDS=5eed2001,5eed2002`, `CLASSIC=1` for the
/// classic proposals). 24 hybrid seeds passed when IKE_FOLLOWUP_KE landed;
/// classic seed 5eed200b loses its CHILD_SA to seven lost transmissions in
/// a row (the answer to a rekey, for 5 minutes), which no retransmission
/// schedule within the 9-minute hard lifetime rides out.
#[test]
#[ignore]
fn many_seeds() {
    let seeds: Vec<u64> = match std::env::var("OXISEC_SIM_SEEDS") {
        Ok(s) => s
            .split(',')
            .map(|x| u64::from_str_radix(x.trim(), 16).expect("hex seed"))
            .collect(),
        Err(_) => (0x5eed_2001u64..0x5eed_2019).collect(),
    };
    let classic = std::env::var_os("CLASSIC").is_some();
    for seed in seeds {
        let wall = Instant::now();
        let g = |g| {
            if classic {
                gateway(g, true)
            } else {
                hybrid_gateway(g)
            }
        };
        let link = LinkConfig {
            duplicate: 0.01,
            ..LinkConfig::lossy(0.10)
        };
        let mut sim = sim_with(seed, &g(Gateway::a()), &g(Gateway::b()), link);
        sim.start_flows(FlowConfig::every(Duration::from_millis(7_500)));
        sim.connect();
        let first = sim.assert_consistent();
        run_week(&mut sim, |_, _| {});
        finish(sim, first, wall, &format!("seed {seed:#x}"));
    }
}
