//! Test-only: two IKEv2 engines and two ESP data planes on a virtual clock,
//! joined by a seeded link with loss, duplication, reordering, latency and an
//! MTU (testing pyramid item 5 of the design).
//!
//! * [`Sim`] owns two [`Node`]s (A at 192.0.2.1, B at 192.0.2.2), each an
//!   [`oxisec_ike::Engine`] plus a [`DataPlane`] built from the esp crate's
//!   real SAD and SPD, changed only by the engine's SaCommands in order.
//! * The clock jumps from event to event: a datagram or ESP packet arriving,
//!   an engine deadline ([`Engine::poll_timeout`](oxisec_ike::Engine::poll_timeout)),
//!   a tick of the test flow, a scheduled command. One seed fixes everything:
//!   the engines' randomness, the link's fate for every packet, the flow phases.
//! * The flow: each host behind a gateway sends a numbered IPv4/UDP packet
//!   every interval through SPD lookup → ESP encapsulation → link → ESP
//!   decapsulation on the peer. [`FlowCounters`] tell delivered packets
//!   from those the link lost and from those **lost to a missing SA** (no
//!   policy or SA at the sender once the tunnel had been up, unknown SPI or
//!   failed decapsulation at the receiver of a packet the link delivered).
//! * [`Sim::check_consistent`] compares both sides: the same IKE SAs, the
//!   same CHILD_SA SPI pairs, and each data plane's outbound SAs being the
//!   other's inbound SAs with the same keys.
//!
//! Set `OXISEC_SIM_TRACE=1` to print every step to stderr.
#![forbid(unsafe_code)]

pub mod dataplane;
pub mod link;
pub mod rng;
pub mod setup;
mod sim;

pub use dataplane::DataPlane;
pub use link::{IkeInfo, Kind, Link, LinkConfig, LinkCounters, PacketInfo, Verdict};
pub use rng::SimRng;
pub use setup::{CHILD, CONNECTION, Gateway};
pub use sim::{Consistent, FlowConfig, FlowCounters, Node, Sim, Summary};

/// One of the two simulated gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeId {
    /// The gateway that initiates the first IKE SA in the usual set-ups.
    A,
    B,
}

impl NodeId {
    pub fn index(self) -> usize {
        match self {
            NodeId::A => 0,
            NodeId::B => 1,
        }
    }

    pub fn peer(self) -> NodeId {
        match self {
            NodeId::A => NodeId::B,
            NodeId::B => NodeId::A,
        }
    }

    pub const BOTH: [NodeId; 2] = [NodeId::A, NodeId::B];
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeId::A => "A",
            NodeId::B => "B",
        })
    }
}
