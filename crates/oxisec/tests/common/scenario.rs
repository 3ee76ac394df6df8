//! The site-to-site scenario every peer pairing runs: tunnel up, ping both
//! ways, iperf3, terminate, no SA left on either side.

use std::time::Duration;

use super::peer::{Peer, PeerKind, tunnel_up};
use super::traffic::{self, IperfResult};
use super::{CONN, Error, LEFT_HOST, RIGHT_HOST, Result, Side, Topology, wait_until};

const UP_TIMEOUT: Duration = Duration::from_secs(20);
const DOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// One run of the scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Names the test directory.
    pub test: &'static str,
    pub left: PeerKind,
    pub right: PeerKind,
    pub ike_proposal: &'static str,
    pub esp_proposal: &'static str,
    /// Which side initiates.
    pub initiator: Side,
    /// Which side terminates.
    pub terminator: Side,
    /// iperf3 duration; 0 skips iperf3.
    pub iperf_seconds: u32,
}

/// What a passing run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub iperf: Option<IperfResult>,
}

/// Runs the scenario. On failure the error carries both peers' log tails
/// and the test directory is kept.
pub fn run(s: &Scenario) -> Result<Outcome> {
    let topo = Topology::new(s.test)?;
    let result = (|| {
        let (lspec, rspec) = topo.tunnel_specs(s.ike_proposal, s.esp_proposal);
        let left = s.left.start(&topo, Side::Left, &lspec)?;
        let right = s.right.start(&topo, Side::Right, &rspec)?;
        steps(s, &topo, left.as_ref(), right.as_ref()).map_err(|e| -> Error {
            format!(
                "{e}\n=== {} log (tail) ===\n{}\n=== {} log (tail) ===\n{}",
                left.label(),
                left.log_tail(60),
                right.label(),
                right.log_tail(60),
            )
            .into()
        })
    })();
    result.map_err(|e| {
        topo.dir.keep();
        format!(
            "{}: {e}\n(files kept in {})",
            s.test,
            topo.dir.path().display()
        )
        .into()
    })
}

fn steps(s: &Scenario, topo: &Topology, left: &dyn Peer, right: &dyn Peer) -> Result<Outcome> {
    let (initiator, terminator) = (
        pick(s.initiator, left, right),
        pick(s.terminator, left, right),
    );

    initiator.initiate(CONN)?;
    for peer in [left, right] {
        wait_until(
            &format!("{} to have the tunnel up", peer.label()),
            UP_TIMEOUT,
            || Ok(tunnel_up(&peer.list_sas()?, CONN).then_some(())),
        )?;
    }

    traffic::ping_all(&topo.left, LEFT_HOST, RIGHT_HOST, 3)?;
    traffic::ping_all(&topo.right, RIGHT_HOST, LEFT_HOST, 3)?;

    let iperf = if s.iperf_seconds > 0 {
        let r = traffic::iperf3_tcp(
            &topo.right,
            RIGHT_HOST,
            &topo.left,
            LEFT_HOST,
            s.iperf_seconds,
            topo.dir.path(),
        )?;
        eprintln!(
            "{}: {} <-> {} IKE {} ESP {}: iperf3 {:.0} Mbit/s received ({} retransmits)",
            s.test,
            s.left.as_str(),
            s.right.as_str(),
            s.ike_proposal,
            s.esp_proposal,
            r.received_bps / 1e6,
            r.retransmits
        );
        if r.received_bps < 1e6 {
            return Err(format!("iperf3 through the tunnel: only {} bit/s", r.received_bps).into());
        }
        Some(r)
    } else {
        None
    };

    terminator.terminate(CONN)?;
    for peer in [left, right] {
        wait_until(
            &format!("{} to have no SA left", peer.label()),
            DOWN_TIMEOUT,
            || {
                let sas = peer.list_sas()?;
                Ok(sas.is_empty().then_some(()))
            },
        )?;
    }
    // With the SAs gone nothing may pass any more (no route, or dropped).
    let after = traffic::ping(&topo.left, LEFT_HOST, RIGHT_HOST, 1)?;
    if after.received != 0 {
        return Err("ping still answered after the tunnel was terminated".into());
    }
    Ok(Outcome { iperf })
}

fn pick<'a>(side: Side, left: &'a dyn Peer, right: &'a dyn Peer) -> &'a dyn Peer {
    match side {
        Side::Left => left,
        Side::Right => right,
    }
}
