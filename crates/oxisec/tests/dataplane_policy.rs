//! The data plane's policy decisions in network namespaces (needs root):
//! oxisec ↔ oxisec with a tunnel between the two sites, shunts that take
//! precedence over it, and packets too big for the SA.
//!
//! ```text
//!   ns "left"                                    ns "right"
//!   lo 198.51.100.1/24                           lo 203.0.113.1/24 (all of it local)
//!   veth-l 192.0.2.1/24 <------ veth ------> veth-r 192.0.2.2/24
//!   normal path: 203.0.113.0/24 via 192.0.2.2    198.51.100.0/24 via 192.0.2.1
//! ```
//!
//! * tunnel 198.51.100.0/24 ↔ 203.0.113.0/24: a ping to 203.0.113.7 is
//!   encrypted (the outbound SA counts it);
//! * pass shunt for 203.0.113.1 (and its mirror on the right): the ping
//!   goes in clear over the normal path, although the tunnel route covers
//!   the address (the SA counts nothing);
//! * drop shunt for 203.0.113.9: no reply, the SA counts nothing, and
//!   `oxisec status` shows the drops as `out: policy_discard`;
//! * after the daemon stops, no rule of ours is left.
//! * trap: a ping brings the child up (oxisec and strongSwan as responder);
//!   held packets are sent once the SA is up, or dropped and counted.
//! * MTU: the tunnel route carries the SA's MTU (1438 for AES-GCM over
//!   IPv4 on a 1500-byte path), a DF ping that fits passes and a bigger one
//!   is refused locally; with that route MTU removed by hand, the data
//!   plane itself answers with ICMP "fragmentation needed" (counted as
//!   `out: too_big`) and ping learns the path MTU from it.
mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::oxisec_peer::{OxisecPeer, oxisec_toml};
use common::peer::Peer;
use common::traffic::ping;
use common::{
    CONN, LEFT_HOST, LEFT_OUTER, PeerKind, RIGHT_OUTER, Result, StartAction, Tool, Topology,
    wait_until,
};

const GCM: (&str, &str) = ("aes128gcm16-prfsha256-x25519", "aes128gcm16");

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Packets sent through the left gateway's outbound SA so far.
fn sent_through_tunnel(p: &OxisecPeer) -> Result<u64> {
    let r = p.status()?;
    let child = r
        .ike_sas
        .iter()
        .flat_map(|s| &s.children)
        .next()
        .ok_or("no CHILD_SA")?;
    Ok(child.traffic_out.as_ref().map_or(0, |t| t.packets))
}

#[test]
fn pass_and_drop_shunts_take_precedence_over_the_tunnel() {
    let _serial = common::serial();
    if common::skip("shunts", &[Tool::Ping]) {
        return;
    }
    if let Err(e) = run() {
        panic!("{e}");
    }
}

fn run() -> Result<()> {
    let topo = Topology::new("shunts")?;
    // The path each site takes without a tunnel.
    topo.left
        .add_route_via(ip("203.0.113.0"), 24, RIGHT_OUTER)?;
    topo.right
        .add_route_via(ip("198.51.100.0"), 24, LEFT_OUTER)?;
    let (mut l, r) = topo.tunnel_specs(GCM.0, GCM.1);
    l.start_action = StartAction::None;
    let left_toml = oxisec_toml(&l)
        + r#"
[shunts.clear-host]
action = "pass"
remote_ts = ["203.0.113.1"]

[shunts.forbidden]
action = "drop"
remote_ts = ["203.0.113.9"]
"#;
    let right_toml = oxisec_toml(&r)
        + r#"
[shunts.clear-host]
action = "pass"
local_ts = ["203.0.113.1"]
remote_ts = ["198.51.100.0/24"]
"#;
    let left = OxisecPeer::start_with_config(
        topo.left.clone(),
        topo.dir.sub("left")?,
        "oxisec left".into(),
        &left_toml,
    )?;
    let right = OxisecPeer::start_with_config(
        topo.right.clone(),
        topo.dir.sub("right")?,
        "oxisec right".into(),
        &right_toml,
    )?;
    let rules = topo.left.ip(&["rule", "show"])?;
    for needle in [
        "from all ipproto udp sport 4500 lookup main",
        "from all to 203.0.113.1 lookup 4301",
        "from all to 203.0.113.9 lookup 4302",
    ] {
        if !rules.contains(needle) {
            return Err(format!("left: no rule {needle:?} in:\n{rules}").into());
        }
    }
    left.initiate(CONN)?;
    wait_until("the tunnel route", Duration::from_secs(10), || {
        let routes = topo.left.ip(&["route", "show", "203.0.113.0/24"])?;
        Ok(routes.contains("oxisec0").then_some(()))
    })?;

    // Through the tunnel.
    let before = sent_through_tunnel(&left)?;
    let s = ping(&topo.left, LEFT_HOST, ip("203.0.113.7"), 3)?;
    let after = sent_through_tunnel(&left)?;
    if s.received != 3 || after < before + 3 {
        return Err(format!(
            "tunnel ping: {}/3 replies, {} packets through the SA",
            s.received,
            after - before
        )
        .into());
    }

    // Pass: in clear, the SA sees none of it.
    let s = ping(&topo.left, LEFT_HOST, ip("203.0.113.1"), 3)?;
    let pass = sent_through_tunnel(&left)?;
    if s.received != 3 || pass != after {
        return Err(format!(
            "pass shunt: {}/3 replies, {} packets through the SA",
            s.received,
            pass - after
        )
        .into());
    }

    // Drop: nothing comes back, nothing goes through the SA, counted.
    let s = ping(&topo.left, LEFT_HOST, ip("203.0.113.9"), 3)?;
    let dropped = sent_through_tunnel(&left)?;
    let report = left.status()?;
    let discards = report
        .drops
        .get("out: policy_discard")
        .copied()
        .unwrap_or(0);
    if s.received != 0 || dropped != pass || discards < 3 {
        return Err(format!(
            "drop shunt: {}/3 replies, {} packets through the SA, {discards} counted; drops {:?}",
            s.received,
            dropped - pass,
            report.drops
        )
        .into());
    }
    let text = left.cli(&["status"])?;
    if !text.contains("out: policy_discard") {
        return Err(format!("`oxisec status` does not show the discards:\n{text}").into());
    }

    drop(left);
    drop(right);
    let rules = topo.left.ip(&["rule", "show"])?;
    if rules.contains("430") {
        return Err(format!("rules left behind:\n{rules}").into());
    }
    Ok(())
}

/// `ping -M do` (DF set) of `size` payload bytes, once; its output.
fn df_ping(ns: &common::Netns, size: u32, count: u32) -> Result<String> {
    let mut cmd = ns.command("ping");
    cmd.args([
        "-n",
        "-M",
        "do",
        "-c",
        &count.to_string(),
        "-i",
        "0.3",
        "-W",
        "2",
        "-s",
        &size.to_string(),
        "-I",
        &LEFT_HOST.to_string(),
        "203.0.113.1",
    ]);
    let out = common::netns::run_output(&mut cmd, Duration::from_secs(20))?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

#[test]
fn tunnel_routes_carry_the_sa_mtu_and_too_big_packets_are_answered() {
    let _serial = common::serial();
    if common::skip("dataplane_mtu", &[Tool::Ping]) {
        return;
    }
    if let Err(e) = run_mtu() {
        panic!("{e}");
    }
}

fn run_mtu() -> Result<()> {
    let topo = Topology::new("dataplane_mtu")?;
    let (l, r) = topo.tunnel_specs(GCM.0, GCM.1);
    // A TUN MTU above what the SA carries: the route MTU is the limit.
    let daemon = "[daemon]\nmtu = 1500\nmss_clamp = true\n";
    let left = OxisecPeer::start_with_config(
        topo.left.clone(),
        topo.dir.sub("left")?,
        "oxisec left".into(),
        &format!("{daemon}{}", oxisec_toml(&l)),
    )?;
    let _right = OxisecPeer::start_with_config(
        topo.right.clone(),
        topo.dir.sub("right")?,
        "oxisec right".into(),
        &format!("{daemon}{}", oxisec_toml(&r)),
    )?;
    left.initiate(CONN)?;
    let route = wait_until("the tunnel route", Duration::from_secs(10), || {
        let routes = topo.left.ip(&["route", "show", "203.0.113.0/24"])?;
        Ok(routes.contains("oxisec0").then_some(routes))
    })?;
    if !route.contains("mtu 1438") {
        return Err(format!("tunnel route without the SA's MTU: {route}").into());
    }
    // 1410 + 8 + 20 = 1438: fits.
    let out = df_ping(&topo.left, 1410, 2)?;
    if !out.contains(" 0% packet loss") {
        return Err(format!("DF ping of 1438 bytes failed:\n{out}").into());
    }
    // 1478 bytes: refused by the route.
    let out = df_ping(&topo.left, 1450, 1)?;
    if !out.contains("mtu=1438") && !out.contains("mtu = 1438") {
        return Err(format!("DF ping of 1478 bytes not refused with mtu 1438:\n{out}").into());
    }
    // Without the route's MTU the packet reaches the data plane, which
    // answers with "fragmentation needed" itself.
    topo.left
        .ip(&["route", "replace", "203.0.113.0/24", "dev", "oxisec0"])?;
    topo.left.ip(&["route", "flush", "cache"])?;
    let out = df_ping(&topo.left, 1450, 3)?;
    let too_big = left
        .status()?
        .drops
        .get("out: too_big")
        .copied()
        .unwrap_or(0);
    if too_big == 0 || !(out.contains("mtu=1438") || out.contains("mtu = 1438")) {
        return Err(
            format!("no ICMP from the data plane ({too_big} counted as too big):\n{out}").into(),
        );
    }
    let out = df_ping(&topo.left, 1410, 2)?;
    if !out.contains(" 0% packet loss") {
        return Err(format!("DF ping of 1438 bytes failed after PMTU discovery:\n{out}").into());
    }
    Ok(())
}

#[test]
fn trap_policy_brings_the_tunnel_up_on_the_first_packet() {
    let _serial = common::serial();
    if common::skip("dataplane_trap", &[Tool::Ping]) {
        return;
    }
    if let Err(e) = run_trap("dataplane_trap", PeerKind::Oxisec, true) {
        panic!("{e}");
    }
}

#[test]
fn trap_policy_brings_up_a_tunnel_to_strongswan() {
    let _serial = common::serial();
    if common::skip(
        "dataplane_trap_strongswan",
        &[Tool::Charon, Tool::Swanctl, Tool::Ping],
    ) {
        return;
    }
    if let Err(e) = run_trap("dataplane_trap_strongswan", PeerKind::StrongSwan, false) {
        panic!("{e}");
    }
}

/// `hold`: packets wait for the SA (the default) and every ping is
/// answered; else they are dropped and counted until it is up.
fn run_trap(test: &str, responder: PeerKind, hold: bool) -> Result<()> {
    let topo = Topology::new(test)?;
    let (l, r) = topo.tunnel_specs(GCM.0, GCM.1);
    let daemon = if hold {
        ""
    } else {
        "[daemon]\ntrap_queue = 0\n"
    };
    let left_toml = daemon.to_string()
        + &oxisec_toml(&l).replace("start_action = \"none\"", "start_action = \"trap\"");
    if !left_toml.contains("\"trap\"") {
        return Err("the harness's config has no start_action to replace".into());
    }
    let left = OxisecPeer::start_with_config(
        topo.left.clone(),
        topo.dir.sub("left")?,
        "oxisec left".into(),
        &left_toml,
    )?;
    let _right = responder.start(&topo, common::Side::Right, &r)?;
    // Routed into the TUN device before any SA exists.
    let routes = topo.left.ip(&["route", "show", "203.0.113.0/24"])?;
    if !routes.contains("oxisec0") {
        return Err(format!("no trap route: {routes}").into());
    }
    if !left.status()?.ike_sas.is_empty() {
        return Err("the trap child came up without traffic".into());
    }
    // The first packets start the child; the later ones go through it.
    let s = ping(&topo.left, LEFT_HOST, ip("203.0.113.1"), 15)?;
    let report = left.status()?;
    let up = report
        .ike_sas
        .iter()
        .flat_map(|s| &s.children)
        .any(|c| c.name == CONN);
    let trapped = report.drops.get("out: trap_no_sa").copied().unwrap_or(0);
    let ok = if hold {
        s.received == s.transmitted && trapped == 0
    } else {
        s.received > 0 && trapped > 0
    };
    if !up || !ok {
        return Err(format!(
            "trap: child up {up}, {}/{} replies, {trapped} packets trapped; drops {:?}",
            s.received, s.transmitted, report.drops
        )
        .into());
    }
    Ok(())
}
