//! ESP modes, address families and replay windows (issue 5, parts 2 and
//! 3) in network namespaces.
//!
//! * a per-child `replay_window` of 4096 on both daemons, tunnel up and a
//!   ping through it;
//! * IPv6 outer addresses (UDP 4500 over IPv6 on a veth with 2001:db8::/64)
//!   carrying IPv4 and IPv6 inner traffic, and IPv6 inner over IPv4 outer:
//!   every family combination, oxisec ↔ oxisec and oxisec ↔ strongSwan 5.9.8
//!   (its kernel-libipsec carries ESP in UDP over IPv6 too).
//!
//! * transport mode (RFC 4303 §3.1.1) host to host, oxisec ↔ oxisec, over
//!   IPv4 and IPv6: ping and TCP between the two hosts' own addresses, the
//!   ESP packets on the wire of transport size (no inner IP header), a
//!   child and an IKE rekey (IKE keeps its path while the peer's address
//!   is routed into the TUN device), delete, and the routing rules gone
//!   after exit and after a crash and restart; through a real NAT it is
//!   refused with a log line (no NAT-OA).
//!
//! strongSwan 5.9.8 cannot be the other side of a transport-mode case
//! here: its userspace data plane, kernel-libipsec (the only one on a
//! kernel without ESP), creates tunnel-mode SAs only (`ipsec_sa_create` in
//! `src/libipsec/ipsec_sa.c` refuses any other mode: "IPsec SA: unsupported
//! mode"), so the interop cases stay in tunnel mode.
//!
//! * raw ESP (IP protocol 50): oxisec ↔ oxisec with the default `encap =
//!   false` and no NAT, over IPv4 and IPv6 outer addresses, ping and a short
//!   iperf3 with nftables counters proving protocol 50 on the wire and no
//!   ESP in UDP 4500; the same configuration behind a NAT (masquerade in a
//!   middle namespace) falls back to UDP 4500; against strongSwan (whose
//!   kernel-libipsec needs `encap = yes`, which fakes a NAT) UDP 4500 too;
//!   transport mode over raw ESP, IPv4 and IPv6.
//!
//! Root only, like `interop.rs` (skipped with a printed reason otherwise).
//! Run: `cargo test -p oxisec --test modes -- --test-threads=1`.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::espwire;
use common::nat::{self, NatTopology};
use common::oxisec_peer::{OxisecPeer, oxisec_toml};
use common::peer::{Peer, RekeyKind, tunnel_up};
use common::strongswan::{StrongSwan, swanctl_conf};
use common::{
    CONN, LEFT_HOST, LEFT_OUTER, RIGHT_HOST, RIGHT_OUTER, Side, Tool, Topology, traffic, wait_until,
};

/// `keys` added to the (single) child table of a generated configuration.
fn with_child_keys(toml: &str, keys: &str) -> String {
    let header = toml
        .lines()
        .find(|l| l.starts_with("[connections.") && l.contains(".children."))
        .unwrap_or_else(|| panic!("no child table in:\n{toml}"));
    toml.replace(header, &format!("{header}\n{keys}"))
}

#[test]
fn replay_window_4096_configured_on_both_sides_carries_traffic() {
    let test = "replay_window_4096_configured_on_both_sides_carries_traffic";
    let _serial = common::serial();
    if common::skip(test, &[Tool::Ping]) {
        return;
    }
    let started = Instant::now();
    let result = (|| -> common::Result<()> {
        let topo = Topology::new(test)?;
        let (l, r) = topo.tunnel_specs("aes128gcm16-prfsha256-x25519", "aes128gcm16");
        let keys = "mode = \"tunnel\"\nreplay_window = 4096";
        let start = |side: Side, toml: String| {
            OxisecPeer::start_with_config(
                topo.ns(side).clone(),
                topo.dir.sub(side.as_str())?,
                format!("oxisec@{}", side.as_str()),
                &toml,
            )
        };
        let lp = start(Side::Left, with_child_keys(&oxisec_toml(&l), keys))?;
        let rp = start(Side::Right, with_child_keys(&oxisec_toml(&r), keys))?;
        let run = || -> common::Result<()> {
            lp.initiate(CONN)?;
            for p in [&lp, &rp] {
                wait_until(
                    &format!("{} to have the tunnel up", Peer::label(p)),
                    Duration::from_secs(10),
                    || Ok(tunnel_up(&p.list_sas()?, CONN).then_some(())),
                )?;
            }
            traffic::ping_all(&topo.left, LEFT_HOST, RIGHT_HOST, 3)
        };
        run().map_err(|e| {
            topo.dir.keep();
            format!(
                "{e}\n--- oxisec@left log (tail) ---\n{}\n--- oxisec@right log (tail) ---\n{}",
                lp.log_tail(40),
                rp.log_tail(40)
            )
            .into()
        })
    })();
    if let Err(e) = result {
        panic!("{test}: {e}");
    }
    eprintln!("{test}: passed in {:.1} s", started.elapsed().as_secs_f64());
}

const LEFT_OUTER6: &str = "2001:db8::1";
const RIGHT_OUTER6: &str = "2001:db8::2";
const LEFT_HOST6: &str = "2001:db8:1::1";
const RIGHT_HOST6: &str = "2001:db8:2::1";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// oxisec on the left, oxisec or (`swan`) strongSwan on the right, with
/// outer addresses of `outer_v6`'s family, each child joining the IPv4 and
/// the IPv6 host subnets; pings of both families.
fn families(test: &str, outer_v6: bool, swan: bool) {
    let _serial = common::serial();
    let tools: &[Tool] = if swan {
        &[Tool::Charon, Tool::Swanctl, Tool::Ping]
    } else {
        &[Tool::Ping]
    };
    if common::skip(test, tools) {
        return;
    }
    let started = Instant::now();
    let result = (|| -> common::Result<()> {
        let topo = Topology::new(test)?;
        topo.left.add_address("veth-l", ip(LEFT_OUTER6), 64)?;
        topo.right.add_address("veth-r", ip(RIGHT_OUTER6), 64)?;
        topo.left.add_lo_address(ip(LEFT_HOST6), 64)?;
        topo.right.add_lo_address(ip(RIGHT_HOST6), 64)?;
        let (mut l, mut r) = topo.tunnel_specs("aes128gcm16-prfsha256-x25519", "aes128gcm16");
        if outer_v6 {
            (l.local_addr, l.remote_addr) = (ip(LEFT_OUTER6), ip(RIGHT_OUTER6));
            (r.local_addr, r.remote_addr) = (ip(RIGHT_OUTER6), ip(LEFT_OUTER6));
        }
        // Each side's subnets of both families.
        let dual = |toml: String| {
            toml.replace(
                "\"198.51.100.0/24\"]",
                "\"198.51.100.0/24\", \"2001:db8:1::/64\"]",
            )
            .replace(
                "\"203.0.113.0/24\"]",
                "\"203.0.113.0/24\", \"2001:db8:2::/64\"]",
            )
        };
        let start = |side: Side, toml: String| {
            OxisecPeer::start_with_config(
                topo.ns(side).clone(),
                topo.dir.sub(side.as_str())?,
                format!("oxisec@{}", side.as_str()),
                &toml,
            )
        };
        let lp = start(Side::Left, dual(oxisec_toml(&l)))?;
        let rp: Box<dyn Peer> = if swan {
            // swanctl lists selectors comma-separated.
            let conf = swanctl_conf(&r)
                .replace("= 198.51.100.0/24\n", "= 198.51.100.0/24,2001:db8:1::/64\n")
                .replace("= 203.0.113.0/24\n", "= 203.0.113.0/24,2001:db8:2::/64\n");
            Box::new(StrongSwan::start_with_swanctl(
                topo.right.clone(),
                topo.dir.sub("right-strongswan")?,
                "strongswan@right".into(),
                &r.tuning,
                &conf,
            )?)
        } else {
            Box::new(start(Side::Right, dual(oxisec_toml(&r)))?)
        };
        let run = || -> common::Result<()> {
            lp.initiate(CONN)?;
            for p in [&lp as &dyn Peer, &*rp] {
                wait_until(
                    &format!("{} to have the tunnel up", p.label()),
                    Duration::from_secs(10),
                    || Ok(tunnel_up(&p.list_sas()?, CONN).then_some(())),
                )?;
            }
            traffic::ping_all(&topo.left, LEFT_HOST, RIGHT_HOST, 3)?;
            traffic::ping_all(&topo.left, ip(LEFT_HOST6), ip(RIGHT_HOST6), 3)
        };
        run().map_err(|e| {
            topo.dir.keep();
            format!(
                "{e}\n--- oxisec@left log (tail) ---\n{}\n--- {} log (tail) ---\n{}",
                lp.log_tail(40),
                rp.label(),
                rp.log_tail(40)
            )
            .into()
        })
    })();
    if let Err(e) = result {
        panic!("{test}: {e}");
    }
    eprintln!("{test}: passed in {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn ipv6_outer_carries_ipv4_and_ipv6_inner() {
    families("ipv6_outer_carries_ipv4_and_ipv6_inner", true, false);
}

#[test]
fn ipv4_outer_carries_ipv4_and_ipv6_inner() {
    families("ipv4_outer_carries_ipv4_and_ipv6_inner", false, false);
}

/// strongSwan 5.9.8 with kernel-libipsec: ESP in UDP over IPv6, IPv4 and
/// IPv6 inner.
#[test]
fn strongswan_ipv6_outer_carries_ipv4_and_ipv6_inner() {
    families(
        "strongswan_ipv6_outer_carries_ipv4_and_ipv6_inner",
        true,
        true,
    );
}

#[test]
fn strongswan_ipv4_outer_carries_ipv4_and_ipv6_inner() {
    families(
        "strongswan_ipv4_outer_carries_ipv4_and_ipv6_inner",
        false,
        true,
    );
}

/// Bytes of ICMP echo data the wire check pings with.
const PING_DATA: usize = 100;

/// UDP length of an ESP-in-UDP packet with AES-GCM-16 (8-byte IV, 16-byte
/// ICV) around `payload` bytes: UDP and ESP headers, IV, payload padded
/// with pad length and next header to 4 bytes, ICV.
fn gcm_udp_len(payload: usize) -> usize {
    8 + 8 + 8 + (payload + 2).div_ceil(4) * 4 + 16
}

/// nftables counters on `ns`'s input of ESP in UDP of the transport-mode
/// and the tunnel-mode size of a `PING_DATA` ping of family `v6`.
fn wire_counters(ns: &common::Netns, dir: &std::path::Path, v6: bool) -> common::Result<()> {
    let icmp = 8 + PING_DATA;
    let ip_hdr = if v6 { 40 } else { 20 };
    let conf = format!(
        "table inet oxt {{\n\
         counter transport {{}}\n\
         counter tunnel {{}}\n\
         chain input {{\n\
         type filter hook input priority 0; policy accept;\n\
         udp dport 4500 udp length {} counter name \"transport\"\n\
         udp dport 4500 udp length {} counter name \"tunnel\"\n\
         }}\n}}\n",
        gcm_udp_len(icmp),
        gcm_udp_len(ip_hdr + icmp)
    );
    let path = dir.join("oxt.nft");
    std::fs::write(&path, conf)?;
    let out = ns.exec("nft", &["-f", &path.to_string_lossy()])?;
    if !out.status.success() {
        return Err(format!("nft -f: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

fn counter(ns: &common::Netns, name: &str) -> common::Result<u64> {
    let out = ns.exec("nft", &["list", "counter", "inet", "oxt", name])?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no packet count in: {text}").into())
}

/// `count` pings of `PING_DATA` bytes from `src` to `dst`, all answered.
fn ping_sized(ns: &common::Netns, src: IpAddr, dst: IpAddr, count: u32) -> common::Result<()> {
    let (c, s, src_s, dst_s) = (
        count.to_string(),
        PING_DATA.to_string(),
        src.to_string(),
        dst.to_string(),
    );
    let out = ns.exec(
        "ping",
        &[
            "-c", &c, "-s", &s, "-i", "0.2", "-W", "2", "-I", &src_s, &dst_s,
        ],
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    let stats = traffic::parse_ping(&text).ok_or_else(|| format!("ping output: {text}"))?;
    if stats.received != count {
        return Err(format!("ping {src} -> {dst}: {}/{count} answered", stats.received).into());
    }
    Ok(())
}

/// The child SPIs (in, out) of `p`'s SA named [`CONN`].
fn child_spis(p: &dyn Peer) -> common::Result<Vec<(String, String)>> {
    Ok(p.list_sas()?
        .iter()
        .flat_map(|sa| sa.children.iter())
        .filter(|c| c.name == CONN)
        .map(|c| (c.spi_in.clone(), c.spi_out.clone()))
        .collect())
}

/// Whether `ns` has any of the daemon's transport-mode rules (priorities
/// 5400/5401) of either family.
fn transport_rules(ns: &common::Netns) -> common::Result<Vec<String>> {
    let mut out = Vec::new();
    for fam in ["-4", "-6"] {
        let text = ns.ip(&[fam, "rule", "show"])?;
        out.extend(
            text.lines()
                .filter(|l| l.starts_with("5400:") || l.starts_with("5401:"))
                .map(str::to_owned),
        );
    }
    Ok(out)
}

/// oxisec ↔ oxisec host to host in transport mode (`transport_only`, so a
/// fallback to tunnel mode fails the test), outer addresses of `v6`'s
/// family, strict reverse-path filtering on both hosts.
fn transport_host_to_host(test: &str, v6: bool) {
    let _serial = common::serial();
    if common::skip(test, &[Tool::Ping, Tool::Iperf3]) {
        return;
    }
    let started = Instant::now();
    let result = (|| -> common::Result<()> {
        let topo = Topology::new(test)?;
        let fam = if v6 { "-6" } else { "-4" };
        let (la, ra) = if v6 {
            topo.left.add_address("veth-l", ip(LEFT_OUTER6), 64)?;
            topo.right.add_address("veth-r", ip(RIGHT_OUTER6), 64)?;
            (ip(LEFT_OUTER6), ip(RIGHT_OUTER6))
        } else {
            (LEFT_OUTER, RIGHT_OUTER)
        };
        for ns in [&topo.left, &topo.right] {
            for k in ["all", "default"] {
                ns.exec(
                    "sysctl",
                    &["-qw", &format!("net.ipv4.conf.{k}.rp_filter=1")],
                )?;
            }
        }
        let (mut l, mut r) = topo.tunnel_specs("aes128gcm16-prfsha256-x25519", "aes128gcm16");
        // Left names the hosts as "dynamic" (its IKE addresses), right
        // spells them out: both forms make a host-to-host child.
        (l.local_addr, l.remote_addr, l.local_ts, l.remote_ts) =
            (la, ra, "dynamic".into(), "dynamic".into());
        (r.local_addr, r.remote_addr, r.local_ts, r.remote_ts) =
            (ra, la, ra.to_string(), la.to_string());
        let keys = "mode = \"transport_only\"";
        let start = |side: Side, sub: &str, toml: &str| {
            OxisecPeer::start_with_config(
                topo.ns(side).clone(),
                topo.dir.sub(sub)?,
                format!("oxisec@{sub}"),
                toml,
            )
        };
        let left_toml = with_child_keys(&oxisec_toml(&l), keys);
        let mut lp = start(Side::Left, "left", &left_toml)?;
        let rp = start(
            Side::Right,
            "right",
            &with_child_keys(&oxisec_toml(&r), keys),
        )?;
        wire_counters(&topo.right, topo.dir.path(), v6)?;
        let up = |p: &dyn Peer| {
            wait_until(
                &format!("{} to have the tunnel up", p.label()),
                Duration::from_secs(10),
                || Ok(tunnel_up(&p.list_sas()?, CONN).then_some(())),
            )
        };
        let run = |lp: &OxisecPeer| -> common::Result<()> {
            lp.initiate(CONN)?;
            for p in [lp as &dyn Peer, &rp] {
                up(p)?;
            }
            for p in [lp, &rp] {
                let st = p.status()?;
                let modes: Vec<&str> = st
                    .ike_sas
                    .iter()
                    .flat_map(|s| s.children.iter())
                    .map(|c| c.mode.as_str())
                    .collect();
                if modes != ["transport"] {
                    return Err(format!("{}: child modes {modes:?}", p.label()).into());
                }
            }
            let route = topo.left.ip(&[fam, "route", "show", "table", "5401"])?;
            if !route.contains(&ra.to_string()) {
                return Err(format!("no transport route to {ra} in table 5401: {route}").into());
            }
            // The wire: ESP of a transport-mode ping, none of tunnel size.
            ping_sized(&topo.left, la, ra, 5)?;
            let (t, n) = (
                counter(&topo.right, "transport")?,
                counter(&topo.right, "tunnel")?,
            );
            if t < 5 || n != 0 {
                return Err(format!(
                    "ESP on the wire: {t} packet(s) of transport size, {n} of tunnel size (want >= 5 and 0)"
                )
                .into());
            }
            let iperf = traffic::iperf3_tcp(&topo.right, ra, &topo.left, la, 2, topo.dir.path())?;
            if iperf.received_bps <= 0.0 {
                return Err(format!("iperf3 over transport mode: {iperf:?}").into());
            }
            eprintln!(
                "{test}: TCP {:.0} Mbit/s in transport mode",
                iperf.received_bps / 1e6
            );
            // Rekeys: IKE messages still reach the peer with its address
            // routed into the TUN device, and traffic keeps flowing.
            for kind in [RekeyKind::Child, RekeyKind::Ike] {
                let before = child_spis(lp)?;
                lp.rekey(CONN, kind)?;
                if kind == RekeyKind::Child {
                    wait_until("the child rekey", Duration::from_secs(10), || {
                        let now = child_spis(lp)?;
                        Ok((now.len() == 1 && now != before).then_some(()))
                    })?;
                } else {
                    std::thread::sleep(Duration::from_secs(1));
                    up(lp)?;
                }
                ping_sized(&topo.left, la, ra, 3)?;
            }
            // Delete: reaches the peer, the route goes.
            lp.terminate(CONN)?;
            wait_until(
                "the peer to see the delete",
                Duration::from_secs(10),
                || Ok(rp.list_sas()?.is_empty().then_some(())),
            )?;
            wait_until("the transport route to go", Duration::from_secs(5), || {
                let r = topo.left.ip(&[fam, "route", "show", "table", "5401"])?;
                Ok(r.trim().is_empty().then_some(()))
            })?;
            Ok(())
        };
        run(&lp).map_err(|e| -> common::Error {
            topo.dir.keep();
            format!(
                "{e}\n--- oxisec@left log (tail) ---\n{}\n--- oxisec@right log (tail) ---\n{}",
                lp.log_tail(40),
                rp.log_tail(40)
            )
            .into()
        })?;
        // Rules stay while the daemon runs; a crash leaves them, the next
        // start removes them, a clean stop too.
        if transport_rules(&topo.left)?.is_empty() {
            return Err("no transport rules while the daemon runs".into());
        }
        let pid = lp.pid().ok_or("oxisec@left not running")?;
        topo.left.exec("kill", &["-KILL", &pid.to_string()])?;
        wait_until("oxisec@left to die", Duration::from_secs(5), || {
            Ok(
                (!std::path::Path::new(&format!("/proc/{pid}/stat")).exists()
                    || std::fs::read_to_string(format!("/proc/{pid}/stat"))?.contains(") Z"))
                .then_some(()),
            )
        })?;
        if transport_rules(&topo.left)?.is_empty() {
            return Err("the crash should have left the rules behind".into());
        }
        drop(lp);
        lp = start(Side::Left, "left-restarted", &left_toml)?;
        let left = transport_rules(&topo.left)?;
        if !left.is_empty() {
            return Err(format!("rules of the crashed run survived a restart: {left:?}").into());
        }
        lp.initiate(CONN)?;
        up(&lp)?;
        ping_sized(&topo.left, la, ra, 3)?;
        drop(lp);
        drop(rp);
        for ns in [&topo.left, &topo.right] {
            let left = transport_rules(ns)?;
            if !left.is_empty() {
                return Err(format!("rules left after a clean stop: {left:?}").into());
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        panic!("{test}: {e}");
    }
    eprintln!("{test}: passed in {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn transport_mode_host_to_host_ipv4() {
    transport_host_to_host("transport_mode_host_to_host_ipv4", false);
}

#[test]
fn transport_mode_host_to_host_ipv6() {
    transport_host_to_host("transport_mode_host_to_host_ipv6", true);
}

/// Transport mode through a real NAT is refused with a reason: the engine
/// gives the daemon no NAT-OA, and the selectors name the private address
/// the outside host never sees on the packets. The outside gateway
/// (configured with the inside host's private address, so the selectors
/// agree) deletes the child and says why; neither side keeps it.
#[test]
fn transport_mode_through_a_nat_is_refused_with_a_reason() {
    use common::nat::{INSIDE_OUTER, NatTopology, OUTSIDE_OUTER};
    let test = "transport_mode_through_a_nat_is_refused_with_a_reason";
    let _serial = common::serial();
    if common::skip(test, &[]) {
        return;
    }
    let result = (|| -> common::Result<()> {
        let topo = NatTopology::new(test)?;
        let (mut i, mut o) = topo.tunnel_specs("aes128gcm16-prfsha256-x25519", "aes128gcm16");
        (i.local_ts, i.remote_ts) = (INSIDE_OUTER.to_string(), OUTSIDE_OUTER.to_string());
        (o.local_ts, o.remote_ts) = (OUTSIDE_OUTER.to_string(), INSIDE_OUTER.to_string());
        let keys = "mode = \"transport\"";
        let start = |ns: &std::sync::Arc<common::Netns>, sub: &str, toml: String| {
            OxisecPeer::start_with_config(
                ns.clone(),
                topo.dir.sub(sub)?,
                format!("oxisec@{sub}"),
                &toml,
            )
        };
        let ip = start(
            &topo.inside,
            "inside",
            with_child_keys(&oxisec_toml(&i), keys),
        )?;
        let op = start(
            &topo.outside,
            "outside",
            with_child_keys(&oxisec_toml(&o), keys),
        )?;
        let run = || -> common::Result<()> {
            ip.initiate(CONN).ok();
            wait_until("the outside's refusal", Duration::from_secs(10), || {
                Ok(op
                    .log()
                    .contains("transport mode through a NAT is not supported")
                    .then_some(()))
            })?;
            wait_until("no child on either side", Duration::from_secs(10), || {
                let none = |p: &OxisecPeer| -> common::Result<bool> {
                    Ok(p.list_sas()?.iter().all(|s| s.children.is_empty()))
                };
                Ok((none(&ip)? && none(&op)?).then_some(()))
            })?;
            // (No table at all is fine: `ip` fails on a table never made.)
            let route = topo
                .outside
                .ip(&["-4", "route", "show", "table", "5401"])
                .unwrap_or_default();
            if !route.trim().is_empty() {
                return Err(format!("a refused child left a route: {route}").into());
            }
            Ok(())
        };
        run().map_err(|e| {
            topo.dir.keep();
            format!(
                "{e}\n--- inside log (tail) ---\n{}\n--- outside log (tail) ---\n{}",
                ip.log_tail(30),
                op.log_tail(30)
            )
            .into()
        })
    })();
    if let Err(e) = result {
        panic!("{test}: {e}");
    }
}

/// A generated oxisec configuration with strongSwan's default `encap =
/// false` (the harness forces UDP for the other tests).
fn raw_esp_toml(toml: String) -> String {
    assert!(toml.contains("encap = true\n"), "{toml}");
    toml.replace("encap = true\n", "encap = false\n")
}

/// Waits for both peers' tunnels.
fn both_up(peers: &[&dyn Peer]) -> common::Result<()> {
    for p in peers {
        wait_until(
            &format!("{} to have the tunnel up", p.label()),
            Duration::from_secs(10),
            || Ok(tunnel_up(&p.list_sas()?, CONN).then_some(())),
        )?;
    }
    Ok(())
}

/// oxisec ↔ oxisec without NAT and without `encap`: ESP goes as IP
/// protocol 50 (counted in the left namespace), never in UDP 4500; ping and
/// a 2 s iperf3 TCP run through it.
fn raw_esp_without_nat(test: &str, outer_v6: bool) {
    let _serial = common::serial();
    if common::skip(test, &[Tool::Ping, Tool::Iperf3]) {
        return;
    }
    let started = Instant::now();
    let result = (|| -> common::Result<()> {
        let topo = Topology::new(test)?;
        let (mut l, mut r) = topo.tunnel_specs("aes128gcm16-prfsha256-x25519", "aes128gcm16");
        if outer_v6 {
            topo.left.add_address("veth-l", ip(LEFT_OUTER6), 64)?;
            topo.right.add_address("veth-r", ip(RIGHT_OUTER6), 64)?;
            (l.local_addr, l.remote_addr) = (ip(LEFT_OUTER6), ip(RIGHT_OUTER6));
            (r.local_addr, r.remote_addr) = (ip(RIGHT_OUTER6), ip(LEFT_OUTER6));
        }
        espwire::install(&topo.left, &topo.dir)?;
        let start = |side: Side, toml: String| {
            OxisecPeer::start_with_config(
                topo.ns(side).clone(),
                topo.dir.sub(side.as_str())?,
                format!("oxisec@{}", side.as_str()),
                &toml,
            )
        };
        let lp = start(Side::Left, raw_esp_toml(oxisec_toml(&l)))?;
        let rp = start(Side::Right, raw_esp_toml(oxisec_toml(&r)))?;
        let run = || -> common::Result<()> {
            lp.initiate(CONN)?;
            both_up(&[&lp, &rp])?;
            traffic::ping_all(&topo.left, LEFT_HOST, RIGHT_HOST, 3)?;
            let iperf = traffic::iperf3_tcp(
                &topo.right,
                RIGHT_HOST,
                &topo.left,
                LEFT_HOST,
                2,
                topo.dir.path(),
            )?;
            let wire = espwire::read(&topo.left)?;
            eprintln!(
                "{test}: iperf3 {:.0} Mbit/s over raw ESP; on the wire {wire:?}",
                iperf.received_bps / 1e6
            );
            // Six pings' packets at least, plus the TCP stream.
            if wire.raw < 100 || wire.udp != 0 {
                return Err(format!("expected raw ESP only, counted {wire:?}").into());
            }
            Ok(())
        };
        run().map_err(|e| {
            topo.dir.keep();
            format!(
                "{e}\n--- oxisec@left log (tail) ---\n{}\n--- oxisec@right log (tail) ---\n{}",
                lp.log_tail(40),
                rp.log_tail(40)
            )
            .into()
        })
    })();
    if let Err(e) = result {
        panic!("{test}: {e}");
    }
    eprintln!("{test}: passed in {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn raw_esp_without_nat_ipv4_outer() {
    raw_esp_without_nat("raw_esp_without_nat_ipv4_outer", false);
}

#[test]
fn raw_esp_without_nat_ipv6_outer() {
    raw_esp_without_nat("raw_esp_without_nat_ipv6_outer", true);
}

/// The same `encap = false` configuration with a NAT between the
/// gateways: NAT detection moves ESP into UDP 4500 (counted on the NAT
/// box), no protocol 50 crosses it, and traffic flows both ways.
#[test]
fn raw_esp_config_behind_nat_falls_back_to_udp_4500() {
    let test = "raw_esp_config_behind_nat_falls_back_to_udp_4500";
    let _serial = common::serial();
    if common::skip(test, &[Tool::Ping]) {
        return;
    }
    let started = Instant::now();
    let result = (|| -> common::Result<()> {
        let topo = NatTopology::new(test)?;
        let (i, o) = topo.tunnel_specs("aes128gcm16-prfsha256-x25519", "aes128gcm16");
        espwire::install(&topo.nat, &topo.dir)?;
        let ip = OxisecPeer::start_with_config(
            topo.inside.clone(),
            topo.dir.sub("inside")?,
            "oxisec@inside".into(),
            &raw_esp_toml(oxisec_toml(&i)),
        )?;
        let op = OxisecPeer::start_with_config(
            topo.outside.clone(),
            topo.dir.sub("outside")?,
            "oxisec@outside".into(),
            &raw_esp_toml(oxisec_toml(&o)),
        )?;
        let run = || -> common::Result<()> {
            ip.initiate(CONN)?;
            both_up(&[&ip, &op])?;
            traffic::ping_all(&topo.inside, nat::INSIDE_HOST, nat::OUTSIDE_HOST, 3)?;
            traffic::ping_all(&topo.outside, nat::OUTSIDE_HOST, nat::INSIDE_HOST, 3)?;
            let wire = espwire::read(&topo.nat)?;
            eprintln!("{test}: through the NAT {wire:?}");
            if wire.udp < 12 || wire.raw != 0 {
                return Err(format!("expected ESP in UDP 4500 only, counted {wire:?}").into());
            }
            Ok(())
        };
        run().map_err(|e| {
            topo.dir.keep();
            format!(
                "{e}\n--- oxisec@inside log (tail) ---\n{}\n--- oxisec@outside log (tail) ---\n{}",
                ip.log_tail(40),
                op.log_tail(40)
            )
            .into()
        })
    })();
    if let Err(e) = result {
        panic!("{test}: {e}");
    }
    eprintln!("{test}: passed in {:.1} s", started.elapsed().as_secs_f64());
}

/// oxisec with `encap = false` against strongSwan with `encap = yes` (its
/// kernel-libipsec carries only ESP in UDP): strongSwan's faked NAT
/// detection makes oxisec use UDP 4500 as well.
#[test]
fn raw_esp_config_against_strongswan_encap_yes_uses_udp() {
    let test = "raw_esp_config_against_strongswan_encap_yes_uses_udp";
    let _serial = common::serial();
    if common::skip(test, &[Tool::Charon, Tool::Swanctl, Tool::Ping]) {
        return;
    }
    let started = Instant::now();
    let result = (|| -> common::Result<()> {
        let topo = Topology::new(test)?;
        let (l, r) = topo.tunnel_specs("aes128gcm16-prfsha256-x25519", "aes128gcm16");
        espwire::install(&topo.left, &topo.dir)?;
        let lp = OxisecPeer::start_with_config(
            topo.left.clone(),
            topo.dir.sub("left")?,
            "oxisec@left".into(),
            &raw_esp_toml(oxisec_toml(&l)),
        )?;
        let rp = StrongSwan::start_with_swanctl(
            topo.right.clone(),
            topo.dir.sub("right-strongswan")?,
            "strongswan@right".into(),
            &r.tuning,
            &swanctl_conf(&r),
        )?;
        let run = || -> common::Result<()> {
            lp.initiate(CONN)?;
            both_up(&[&lp, &rp])?;
            traffic::ping_all(&topo.left, LEFT_HOST, RIGHT_HOST, 3)?;
            let wire = espwire::read(&topo.left)?;
            eprintln!("{test}: on the wire {wire:?}");
            if wire.udp < 6 || wire.raw != 0 {
                return Err(format!("expected ESP in UDP 4500 only, counted {wire:?}").into());
            }
            Ok(())
        };
        run().map_err(|e| {
            topo.dir.keep();
            format!(
                "{e}\n--- oxisec@left log (tail) ---\n{}\n--- strongswan@right log (tail) ---\n{}",
                lp.log_tail(40),
                rp.log_tail(40)
            )
            .into()
        })
    })();
    if let Err(e) = result {
        panic!("{test}: {e}");
    }
    eprintln!("{test}: passed in {:.1} s", started.elapsed().as_secs_f64());
}

/// Transport mode host to host over raw ESP (no NAT, `encap = false`), the
/// combination RFC 4303 hosts use most: ping and a short iperf3 between
/// the two hosts' own addresses, only protocol 50 on the wire. Over IPv4
/// the received packet's own IP header makes room for the rebuilt one;
/// over IPv6 the receive batch's headroom does.
fn transport_over_raw_esp(test: &str, v6: bool) {
    let _serial = common::serial();
    if common::skip(test, &[Tool::Ping, Tool::Iperf3]) {
        return;
    }
    let started = Instant::now();
    let result = (|| -> common::Result<()> {
        let topo = Topology::new(test)?;
        let (la, ra) = if v6 {
            topo.left.add_address("veth-l", ip(LEFT_OUTER6), 64)?;
            topo.right.add_address("veth-r", ip(RIGHT_OUTER6), 64)?;
            (ip(LEFT_OUTER6), ip(RIGHT_OUTER6))
        } else {
            (LEFT_OUTER, RIGHT_OUTER)
        };
        let (mut l, mut r) = topo.tunnel_specs("aes128gcm16-prfsha256-x25519", "aes128gcm16");
        (l.local_addr, l.remote_addr, l.local_ts, l.remote_ts) =
            (la, ra, "dynamic".into(), "dynamic".into());
        (r.local_addr, r.remote_addr, r.local_ts, r.remote_ts) =
            (ra, la, "dynamic".into(), "dynamic".into());
        let keys = "mode = \"transport_only\"";
        espwire::install(&topo.left, &topo.dir)?;
        let start = |side: Side, toml: String| {
            OxisecPeer::start_with_config(
                topo.ns(side).clone(),
                topo.dir.sub(side.as_str())?,
                format!("oxisec@{}", side.as_str()),
                &with_child_keys(&raw_esp_toml(toml), keys),
            )
        };
        let lp = start(Side::Left, oxisec_toml(&l))?;
        let rp = start(Side::Right, oxisec_toml(&r))?;
        let run = || -> common::Result<()> {
            lp.initiate(CONN)?;
            both_up(&[&lp, &rp])?;
            traffic::ping_all(&topo.left, la, ra, 3)?;
            let iperf = traffic::iperf3_tcp(&topo.right, ra, &topo.left, la, 2, topo.dir.path())?;
            let wire = espwire::read(&topo.left)?;
            eprintln!(
                "{test}: iperf3 {:.0} Mbit/s in transport mode over raw ESP; on the wire {wire:?}",
                iperf.received_bps / 1e6
            );
            if wire.raw < 100 || wire.udp != 0 {
                return Err(format!("expected raw ESP only, counted {wire:?}").into());
            }
            Ok(())
        };
        run().map_err(|e| {
            topo.dir.keep();
            format!(
                "{e}\n--- oxisec@left log (tail) ---\n{}\n--- oxisec@right log (tail) ---\n{}",
                lp.log_tail(40),
                rp.log_tail(40)
            )
            .into()
        })
    })();
    if let Err(e) = result {
        panic!("{test}: {e}");
    }
    eprintln!("{test}: passed in {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn transport_mode_over_raw_esp_ipv4() {
    transport_over_raw_esp("transport_mode_over_raw_esp_ipv4", false);
}

#[test]
fn transport_mode_over_raw_esp_ipv6() {
    transport_over_raw_esp("transport_mode_over_raw_esp_ipv6", true);
}
