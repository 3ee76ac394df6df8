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
//! * raw ESP (IP protocol 50): oxisec ↔ oxisec with the default `encap =
//!   false` and no NAT, over IPv4 and IPv6 outer addresses, ping and a short
//!   iperf3 with nftables counters proving protocol 50 on the wire and no
//!   ESP in UDP 4500; the same configuration behind a NAT (masquerade in a
//!   middle namespace) falls back to UDP 4500; against strongSwan (whose
//!   kernel-libipsec needs `encap = yes`, which fakes a NAT) UDP 4500 too.
//!
//! Transport mode needs the daemon's data plane first (see CHANGELOG); its
//! cases belong here once it carries them.
//!
//! Root only, like `interop.rs` (skipped with a printed reason otherwise).
//! Run: `cargo test -p oxisec --test modes -- --test-threads=1`.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::espwire;
use common::nat::{self, NatTopology};
use common::oxisec_peer::{OxisecPeer, oxisec_toml};
use common::peer::{Peer, tunnel_up};
use common::strongswan::{StrongSwan, swanctl_conf};
use common::{CONN, LEFT_HOST, RIGHT_HOST, Side, Tool, Topology, traffic, wait_until};

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
