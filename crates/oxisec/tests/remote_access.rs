//! Remote access against strongSwan, in network namespaces (needs root):
//! a road warrior asks for a virtual IP through the configuration payload
//! and reaches the company network with it.
//!
//! ```text
//!   ns "left": road warrior                      ns "right": gateway
//!   veth-l 192.0.2.1/24 <------ veth ------> veth-r 192.0.2.2/24
//!   virtual IP from 198.51.100.128/25            lo 203.0.113.1/24 (company)
//! ```
//!
//! * strongSwan as the road warrior, oxisec as the gateway: the client gets
//!   an address from oxisec's pool, reaches the company network with it,
//!   and gets the same address back when it reconnects — also after the
//!   gateway daemon restarted (leases on disk).
//! * oxisec as the road warrior, strongSwan as the gateway, full tunnel
//!   (0.0.0.0/0): the address lands on oxisec's TUN device, the DNS server
//!   in its resolv.conf (a file of the test, not the host's), traffic to
//!   the company network flows, IKE to the gateway stays outside the
//!   tunnel, and everything is undone on disconnect — except the kill
//!   switch's routes, which keep the traffic from leaving in clear.
mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::oxisec_peer::OxisecPeer;
use common::peer::Peer;
use common::strongswan::StrongSwan;
use common::{
    LEFT_HOST, LEFT_OUTER, RIGHT_HOST, RIGHT_OUTER, Result, TEST_PSK, Tool, Topology, Tuning,
    wait_until,
};

const POOL: &str = "198.51.100.128/25";
const COMPANY: &str = "203.0.113.0/24";
const DNS: &str = "203.0.113.53";
const CLIENT_ID: &str = "alice@example.org";
const GATEWAY_ID: &str = "vpn.example.org";
const UP: Duration = Duration::from_secs(20);

fn topology(test: &str) -> Result<Topology> {
    let topo = Topology::new(test)?;
    // The road warrior has no protected subnet of its own: only the
    // virtual IP it gets (and the pool lies in that subnet's range).
    topo.left
        .ip(&["addr", "del", &format!("{LEFT_HOST}/24"), "dev", "lo"])?;
    Ok(topo)
}

fn ping(ns: &common::Netns, to: IpAddr) -> Result<()> {
    ns.exec(
        "ping",
        &["-c", "2", "-i", "0.2", "-W", "2", &to.to_string()],
    )
    .map(drop)
    .map_err(|e| format!("ping {to}: {e}").into())
}

fn in_pool(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => {
            let o = v.octets();
            o[..3] == [198, 51, 100] && o[3] >= 128
        }
        IpAddr::V6(_) => false,
    }
}

/// oxisec gateway with a pool, PSK, the company subnet behind it.
fn gateway_toml(dir: &std::path::Path) -> String {
    format!(
        r#"[daemon]
state_dir = "{state}"
[pools.staff]
addrs = "{POOL}"
[connections.rw]
local_addrs = ["{RIGHT_OUTER}"]
local_id = "{GATEWAY_ID}"
psk = "{TEST_PSK}"
ike_proposals = ["aes128gcm16-prfsha256-x25519"]
pools = ["staff"]
dns = ["{DNS}"]
dns_domains = ["corp.example"]
[connections.rw.children.rw]
local_ts = ["{COMPANY}"]
remote_ts = ["dynamic"]
esp_proposals = ["aes128gcm16"]
"#,
        state = dir.join("state").display()
    )
}

/// strongSwan road warrior asking for any IPv4 address.
fn strongswan_client() -> String {
    format!(
        r#"connections {{
    rw {{
        version = 2
        local_addrs = {LEFT_OUTER}
        remote_addrs = {RIGHT_OUTER}
        encap = yes
        proposals = aes128gcm16-prfsha256-x25519
        vips = 0.0.0.0
        local {{
            auth = psk
            id = {CLIENT_ID}
        }}
        remote {{
            auth = psk
            id = {GATEWAY_ID}
        }}
        children {{
            rw {{
                local_ts = dynamic
                remote_ts = {COMPANY}
                esp_proposals = aes128gcm16
                start_action = none
            }}
        }}
    }}
}}
secrets {{
    ike-rw {{
        id-a = {CLIENT_ID}
        id-b = {GATEWAY_ID}
        secret = "{TEST_PSK}"
    }}
}}
"#
    )
}

/// The virtual IP oxisec (the gateway) assigned: its child's remote selector.
fn assigned_vip(gw: &OxisecPeer) -> Result<Option<IpAddr>> {
    let r = gw.status()?;
    let ts = r
        .ike_sas
        .iter()
        .flat_map(|s| &s.children)
        .filter(|c| c.state == "INSTALLED")
        .flat_map(|c| &c.remote_ts)
        .next()
        .cloned();
    Ok(ts.and_then(|t| t.split('/').next().and_then(|a| a.parse().ok())))
}

fn connect_strongswan(client: &StrongSwan, gw: &OxisecPeer) -> Result<IpAddr> {
    client.initiate("rw")?;
    let vip = wait_until("the virtual IP on the gateway", UP, || assigned_vip(gw))?;
    if !in_pool(vip) {
        return Err(format!("{vip} is not from the pool {POOL}").into());
    }
    Ok(vip)
}

#[test]
fn strongswan_road_warrior_gets_a_virtual_ip_from_oxisec() {
    let _serial = common::serial();
    let test = "strongswan_road_warrior_gets_a_virtual_ip_from_oxisec";
    if common::skip(test, &[Tool::Charon, Tool::Swanctl, Tool::Ping]) {
        return;
    }
    let topo = topology(test).unwrap();
    let run = || -> Result<()> {
        let gw_dir = topo.dir.sub("right")?;
        let toml = gateway_toml(&gw_dir);
        let mut gw = OxisecPeer::start_with_config(
            topo.right.clone(),
            gw_dir.clone(),
            "oxisec@right".into(),
            &toml,
        )?;
        let client = StrongSwan::start_with_swanctl(
            topo.left.clone(),
            topo.dir.sub("left")?,
            "strongswan@left".into(),
            &Tuning::default(),
            &strongswan_client(),
        )?;
        let vip = connect_strongswan(&client, &gw)?;
        // The company network answers the virtual IP, through the tunnel.
        ping(&topo.left, RIGHT_HOST)?;
        // strongSwan lists the address it got.
        let raw = client.swanctl(&["--list-sas", "--raw"])?;
        if !raw.contains(&vip.to_string()) {
            return Err(format!("strongSwan does not list {vip}: {raw}").into());
        }
        // (strongSwan logs the attribute, not its value; without its
        // resolve plugin it does not apply it.)
        let log = client.log();
        if !log.contains("processing INTERNAL_IP4_DNS attribute") {
            return Err("strongSwan did not receive a DNS server".into());
        }
        let status = gw.status()?;
        let pool = status.pools.first().ok_or("no pool in oxisec status")?;
        if (pool.name.as_str(), pool.online) != ("staff", 1) {
            return Err(format!("pool usage: {pool:?}").into());
        }

        // Reconnect: the same address.
        client.terminate("rw")?;
        wait_until("the gateway to drop the client", UP, || {
            Ok(gw.list_sas()?.is_empty().then_some(()))
        })?;
        let again = connect_strongswan(&client, &gw)?;
        if again != vip {
            return Err(format!("reconnect got {again}, before {vip}").into());
        }
        client.terminate("rw")?;
        wait_until("the gateway to drop the client", UP, || {
            Ok(gw.list_sas()?.is_empty().then_some(()))
        })?;

        // Restart the gateway: the lease comes back from disk.
        drop(gw);
        let leases = std::fs::read_to_string(gw_dir.join("state/leases.json"))?;
        if !leases.contains(CLIENT_ID) || !leases.contains(&vip.to_string()) {
            return Err(format!("leases.json lacks the client: {leases}").into());
        }
        gw = OxisecPeer::start_with_config(
            topo.right.clone(),
            gw_dir.clone(),
            "oxisec@right".into(),
            &toml,
        )?;
        if !gw.log().contains("1 of 1 virtual IP lease(s) restored") {
            return Err("the restarted gateway did not restore the lease".into());
        }
        let after = connect_strongswan(&client, &gw)?;
        if after != vip {
            return Err(format!("after a gateway restart got {after}, before {vip}").into());
        }
        ping(&topo.left, RIGHT_HOST)?;
        client.terminate("rw")?;
        Ok(())
    };
    if let Err(e) = run() {
        topo.dir.keep();
        panic!("{e}");
    }
}

/// strongSwan gateway handing out addresses and a DNS server, full tunnel.
fn strongswan_gateway() -> String {
    format!(
        r#"connections {{
    rw {{
        version = 2
        local_addrs = {RIGHT_OUTER}
        remote_addrs = %any
        encap = yes
        proposals = aes128gcm16-prfsha256-x25519
        pools = staff
        local {{
            auth = psk
            id = {GATEWAY_ID}
        }}
        remote {{
            auth = psk
            id = {CLIENT_ID}
        }}
        children {{
            rw {{
                local_ts = 0.0.0.0/0
                esp_proposals = aes128gcm16
            }}
        }}
    }}
}}
pools {{
    staff {{
        addrs = {POOL}
        dns = {DNS}
    }}
}}
secrets {{
    ike-rw {{
        id-a = {CLIENT_ID}
        id-b = {GATEWAY_ID}
        secret = "{TEST_PSK}"
    }}
}}
"#
    )
}

fn oxisec_client(dir: &std::path::Path) -> String {
    format!(
        r#"[daemon]
state_dir = "{state}"
dns = "resolv.conf"
resolv_conf = "{resolv}"
[connections.rw]
local_addrs = ["{LEFT_OUTER}"]
remote_addrs = ["{RIGHT_OUTER}"]
local_id = "{CLIENT_ID}"
remote_id = "{GATEWAY_ID}"
psk = "{TEST_PSK}"
ike_proposals = ["aes128gcm16-prfsha256-x25519"]
vips = ["0.0.0.0"]
kill_switch = true
[connections.rw.children.rw]
local_ts = ["dynamic"]
remote_ts = ["0.0.0.0/0"]
esp_proposals = ["aes128gcm16"]
"#,
        state = dir.join("state").display(),
        resolv = dir.join("resolv.conf").display()
    )
}

fn tun_addrs(ns: &common::Netns) -> Result<String> {
    Ok(ns.ip(&["-4", "addr", "show", "dev", "oxisec0"])?)
}

#[test]
fn oxisec_road_warrior_gets_a_virtual_ip_and_dns_from_strongswan() {
    let _serial = common::serial();
    let test = "oxisec_road_warrior_gets_a_virtual_ip_and_dns_from_strongswan";
    if common::skip(test, &[Tool::Charon, Tool::Swanctl, Tool::Ping]) {
        return;
    }
    let topo = topology(test).unwrap();
    let run = || -> Result<()> {
        let _gw = StrongSwan::start_with_swanctl(
            topo.right.clone(),
            topo.dir.sub("right")?,
            "strongswan@right".into(),
            &Tuning::default(),
            &strongswan_gateway(),
        )?;
        let dir = topo.dir.sub("left")?;
        let resolv = dir.join("resolv.conf");
        let original = "nameserver 192.0.2.53\nsearch home.example\n";
        std::fs::write(&resolv, original)?;
        let client = OxisecPeer::start_with_config(
            topo.left.clone(),
            dir.clone(),
            "oxisec@left".into(),
            &oxisec_client(&dir),
        )?;
        client.initiate("rw")?;
        let vip = wait_until("the virtual IP on oxisec0", UP, || {
            let text = tun_addrs(&topo.left)?;
            Ok(text
                .split_whitespace()
                .skip_while(|w| *w != "inet")
                .nth(1)
                .and_then(|a| a.split('/').next())
                .and_then(|a| a.parse::<IpAddr>().ok()))
        })?;
        if !in_pool(vip) {
            return Err(format!("{vip} is not from strongSwan's pool {POOL}").into());
        }
        let status = client.status()?;
        let child = status
            .ike_sas
            .iter()
            .flat_map(|s| &s.children)
            .next()
            .ok_or("no CHILD_SA")?;
        if child.local_ts != [format!("{vip}/32")] {
            return Err(format!("local selector {:?}, expected {vip}/32", child.local_ts).into());
        }
        let dns = std::fs::read_to_string(&resolv)?;
        if !dns.contains(&format!("nameserver {DNS}\nnameserver 192.0.2.53")) {
            return Err(format!("resolv.conf not applied: {dns}").into());
        }
        // Full tunnel: the company network (and everything else) goes
        // through the tunnel, the gateway itself is still reached directly
        // (the IKE SA stays up while we ping).
        ping(&topo.left, RIGHT_HOST)?;
        let route = topo.left.ip(&["route", "get", &RIGHT_HOST.to_string()])?;
        if !route.contains("oxisec0") {
            return Err(format!("{RIGHT_HOST} not routed into the tunnel: {route}").into());
        }
        let route = topo.left.ip(&["route", "get", &RIGHT_OUTER.to_string()])?;
        if route.contains("oxisec0") {
            return Err(format!("the gateway itself is routed into the tunnel: {route}").into());
        }

        client.terminate("rw")?;
        wait_until("the virtual IP to go", UP, || {
            Ok((!tun_addrs(&topo.left)?.contains(&vip.to_string())).then_some(()))
        })?;
        let back = std::fs::read_to_string(&resolv)?;
        if back != original {
            return Err(format!("resolv.conf not restored: {back}").into());
        }
        // Kill switch: with the tunnel down, the company network is still
        // routed into oxisec0, where the packets are dropped, not sent in
        // clear; the gateway itself stays reachable for the next attempt.
        let route = topo.left.ip(&["route", "get", &RIGHT_HOST.to_string()])?;
        if !route.contains("oxisec0") {
            return Err(format!("kill switch: {RIGHT_HOST} leaves in clear: {route}").into());
        }
        if ping(&topo.left, RIGHT_HOST).is_ok() {
            return Err(format!("kill switch: {RIGHT_HOST} answered without a tunnel").into());
        }
        ping(&topo.left, RIGHT_OUTER)?;
        let drops = client.status()?.drops;
        if drops.values().sum::<u64>() == 0 {
            return Err("kill switch: the data plane counted no drop".into());
        }
        Ok(())
    };
    if let Err(e) = run() {
        topo.dir.keep();
        panic!("{e}");
    }
}

const POOL6: &str = "2001:db8:3::/64";
const COMPANY6: &str = "2001:db8:1::/64";
const COMPANY6_HOST: &str = "2001:db8:1::1";

/// oxisec on both ends, dual stack: one address of each family from the
/// gateway's two pools, IPv4 and IPv6 traffic through one CHILD_SA.
#[test]
fn oxisec_road_warrior_dual_stack_against_oxisec() {
    let _serial = common::serial();
    let test = "oxisec_road_warrior_dual_stack_against_oxisec";
    if common::skip(test, &[Tool::Ping]) {
        return;
    }
    let topo = topology(test).unwrap();
    let run = || -> Result<()> {
        topo.right
            .add_lo_address(COMPANY6_HOST.parse().unwrap(), 64)?;
        let gw_dir = topo.dir.sub("right")?;
        let gw_toml = gateway_toml(&gw_dir)
            .replace(
                "[connections.rw]",
                &format!("[pools.staff6]\naddrs = \"{POOL6}\"\n[connections.rw]"),
            )
            .replace("pools = [\"staff\"]", "pools = [\"staff\", \"staff6\"]")
            .replace(
                &format!("local_ts = [\"{COMPANY}\"]"),
                &format!("local_ts = [\"{COMPANY}\", \"{COMPANY6}\"]"),
            );
        let gw = OxisecPeer::start_with_config(
            topo.right.clone(),
            gw_dir,
            "oxisec@right".into(),
            &gw_toml,
        )?;
        let dir = topo.dir.sub("left")?;
        let client_toml = oxisec_client(&dir)
            .replace("vips = [\"0.0.0.0\"]", "vips = [\"0.0.0.0\", \"::\"]")
            .replace("kill_switch = true\n", "")
            .replace("dns = \"resolv.conf\"", "dns = \"off\"")
            .replace(
                "remote_ts = [\"0.0.0.0/0\"]",
                &format!("remote_ts = [\"{COMPANY}\", \"{COMPANY6}\"]"),
            );
        let client = OxisecPeer::start_with_config(
            topo.left.clone(),
            dir,
            "oxisec@left".into(),
            &client_toml,
        )?;
        client.initiate("rw")?;
        let status = client.status()?;
        let child = status
            .ike_sas
            .iter()
            .flat_map(|s| &s.children)
            .next()
            .ok_or("no CHILD_SA")?;
        if child.local_ts.len() != 2
            || !child.local_ts.iter().any(|t| t.starts_with("2001:db8:3::"))
        {
            return Err(format!(
                "local selectors {:?}: expected one address per family",
                child.local_ts
            )
            .into());
        }
        ping(&topo.left, RIGHT_HOST)?;
        ping(&topo.left, COMPANY6_HOST.parse().unwrap())?;
        let pools = gw.status()?.pools;
        if pools.iter().map(|p| p.online).sum::<usize>() != 2 {
            return Err(format!("pool usage: {pools:?}").into());
        }
        client.terminate("rw")?;
        Ok(())
    };
    if let Err(e) = run() {
        topo.dir.keep();
        panic!("{e}");
    }
}
