//! Two gateways with a NAT box between them, so that NAT traversal
//! (RFC 7296 §2.23, RFC 3948) is real rather than forced by `encap`.
//!
//! ```text
//!  ns "inside" (behind the NAT)    ns "nat"                        ns "outside" (public)
//!  lo 203.0.113.1/25               ip_forward = 1                  lo 203.0.113.129/25
//!  veth-i 192.0.2.1/24 <------> nat-in 192.0.2.254/24
//!  default via 192.0.2.254         nat-out 198.51.100.254/24 <---> veth-o 198.51.100.2/24
//!                                  nftables: masquerade out of nat-out
//! ```
//!
//! Addressing plan (documentation ranges only): the private side is
//! 192.0.2.0/24, the public side 198.51.100.0/24, and the protected subnets
//! are the two halves of 203.0.113.0/24, so that they differ from both
//! links and from each other. The outside gateway has no route to
//! 192.0.2.0/24: it can only ever see the NAT's public address, and the
//! inside gateway's protected subnet is reachable only through the tunnel
//! (the NAT box has no route to 203.0.113.0/24 either, so nothing leaks
//! around the tunnel).
//!
//! The NAT maps UDP to source ports from a chosen range (not the original
//! 500/4500), so that the port float and the peer's view of the mapping
//! are visible, and [`NatTopology::rebind`] can force a new mapping: a new
//! port range plus a flushed connection tracking table, as when a NAT
//! reboots or drops an idle mapping. Named counters on the NAT box count
//! the NAT keepalives (RFC 3948 §2.3: a one-byte 0xFF UDP payload on port
//! 4500) forwarded in each direction.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::peer::{StartAction, Tuning, TunnelSpec};
use super::{CONN, Netns, Result, TEST_PSK, TestDir, netns, netsys};

pub const INSIDE_OUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
pub const NAT_INSIDE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254));
/// The NAT's public address: what the outside gateway sees as its peer.
pub const NAT_PUBLIC: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 254));
pub const OUTSIDE_OUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));
pub const INSIDE_HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));
pub const OUTSIDE_HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 129));
pub const INSIDE_SUBNET: &str = "203.0.113.0/25";
pub const OUTSIDE_SUBNET: &str = "203.0.113.128/25";

/// UDP source ports the NAT maps to at first, and after [`NatTopology::rebind`].
pub const FIRST_PORTS: (u16, u16) = (40000, 40999);
pub const REBOUND_PORTS: (u16, u16) = (41000, 41999);

const NFT_TABLE: &str = "oxnat";

/// The three namespaces; dropped (with whatever still runs inside) when
/// the test ends.
pub struct NatTopology {
    pub inside: Arc<Netns>,
    pub nat: Arc<Netns>,
    pub outside: Arc<Netns>,
    pub dir: TestDir,
}

impl NatTopology {
    pub fn new(test: &str) -> Result<NatTopology> {
        let dir = TestDir::new(test)?;
        let inside = Arc::new(Netns::create("inside")?);
        let nat = Arc::new(Netns::create("nat")?);
        let outside = Arc::new(Netns::create("outside")?);
        netns::veth_pair(&inside, "veth-i", &nat, "nat-in")?;
        netns::veth_pair(&nat, "nat-out", &outside, "veth-o")?;
        inside.add_address("veth-i", INSIDE_OUTER, 24)?;
        nat.add_address("nat-in", NAT_INSIDE, 24)?;
        nat.add_address("nat-out", NAT_PUBLIC, 24)?;
        outside.add_address("veth-o", OUTSIDE_OUTER, 24)?;
        inside.add_lo_address(INSIDE_HOST, 25)?;
        outside.add_lo_address(OUTSIDE_HOST, 25)?;
        inside.ip(&["route", "add", "default", "via", &NAT_INSIDE.to_string()])?;
        nat.enable_forwarding()?;
        let topo = NatTopology {
            inside,
            nat,
            outside,
            dir,
        };
        topo.nft(&ruleset(FIRST_PORTS, true))?;
        Ok(topo)
    }

    /// The tunnel as each side configures it: `(inside, outside)`. The
    /// inside gateway initiates to the outside one's real address; the
    /// outside one knows its peer by the NAT's public address.
    pub fn tunnel_specs(&self, ike_proposal: &str, esp_proposal: &str) -> (TunnelSpec, TunnelSpec) {
        let inside = TunnelSpec {
            name: CONN.to_owned(),
            local_addr: INSIDE_OUTER,
            remote_addr: OUTSIDE_OUTER,
            local_id: "inside.example.org".to_owned(),
            remote_id: "outside.example.org".to_owned(),
            local_ts: INSIDE_SUBNET.to_owned(),
            remote_ts: OUTSIDE_SUBNET.to_owned(),
            psk: TEST_PSK.to_owned(),
            ike_proposal: ike_proposal.to_owned(),
            esp_proposal: esp_proposal.to_owned(),
            start_action: StartAction::None,
            remote_any: false,
            dpd: None,
            tuning: Tuning::default(),
        };
        let mut outside = inside.mirrored();
        outside.remote_addr = NAT_PUBLIC;
        (inside, outside)
    }

    /// Loads an nftables script into the NAT box (atomically).
    fn nft(&self, script: &str) -> Result<()> {
        let path = self.dir.path().join("nat.nft");
        std::fs::write(&path, script)?;
        self.nat
            .exec("nft", &["-f", &path.to_string_lossy()])
            .map_err(|e| format!("loading {}: {e}\n{script}", path.display()))?;
        Ok(())
    }

    /// NAT keepalives forwarded from the inside gateway so far.
    pub fn keepalives(&self) -> Result<u64> {
        self.counter("keepalives")
    }

    /// NAT keepalives forwarded from the outside gateway to the inside one
    /// (the side that is not behind a NAT has no reason to send any).
    pub fn keepalives_from_outside(&self) -> Result<u64> {
        self.counter("keepalives_in")
    }

    fn counter(&self, name: &str) -> Result<u64> {
        let out = self
            .nat
            .exec("nft", &["list", "counter", "ip", NFT_TABLE, name])?;
        parse_nft_packets(&String::from_utf8_lossy(&out.stdout))
            .ok_or_else(|| format!("no packet count in `nft list counter ... {name}`").into())
    }

    /// The NAT's connection tracking table (`/proc/net/nf_conntrack` of its
    /// namespace), for failure reports.
    pub fn conntrack_table(&self) -> String {
        match self.nat.exec("cat", &["/proc/net/nf_conntrack"]) {
            Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
            Err(e) => format!("<{e}>"),
        }
    }

    /// Forces new NAT mappings: masquerade to [`REBOUND_PORTS`] from now on
    /// and forget every existing mapping. The next packet of each flow from
    /// the inside leaves with a new public port, as after a NAT reboot.
    pub fn rebind(&self) -> Result<()> {
        self.nft(&ruleset(REBOUND_PORTS, false))?;
        netsys::flush_conntrack(&self.nat)
    }
}

/// The NAT box's nftables script: `fresh` creates the table (with the
/// keepalive counter and its rule), otherwise only the masquerade chain is
/// replaced, leaving the counter as it was.
fn ruleset((lo, hi): (u16, u16), fresh: bool) -> String {
    let nat_chain = format!(
        "    chain postrouting {{\n\
         \x20       type nat hook postrouting priority srcnat; policy accept;\n\
         \x20       oifname \"nat-out\" meta l4proto udp masquerade to :{lo}-{hi}\n\
         \x20       oifname \"nat-out\" masquerade\n\
         \x20   }}\n"
    );
    if fresh {
        format!(
            "table ip {NFT_TABLE} {{\n\
             \x20   counter keepalives {{ }}\n\
             \x20   counter keepalives_in {{ }}\n\
             {nat_chain}\
             \x20   chain forward {{\n\
             \x20       type filter hook forward priority filter; policy accept;\n\
             \x20       iifname \"nat-in\" udp dport 4500 udp length 9 @th,64,8 0xff counter name \"keepalives\"\n\
             \x20       iifname \"nat-out\" udp sport 4500 udp length 9 @th,64,8 0xff counter name \"keepalives_in\"\n\
             \x20   }}\n\
             }}\n"
        )
    } else {
        format!(
            "flush chain ip {NFT_TABLE} postrouting\n\
             table ip {NFT_TABLE} {{\n{nat_chain}}}\n"
        )
    }
}

/// The `packets N` value of `nft list counter` output.
pub fn parse_nft_packets(text: &str) -> Option<u64> {
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "packets" {
            return words.next()?.parse().ok();
        }
    }
    None
}
