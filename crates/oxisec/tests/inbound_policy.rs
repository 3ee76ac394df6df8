//! RFC 4301 §5.2: a packet that arrives in clear but matches a CHILD_SA's
//! selectors is dropped (`[daemon] inbound_policy = "drop"`, the default),
//! in network namespaces (needs root):
//!
//! ```text
//!   ns "left"                                    ns "right" (the peer, on the outer link)
//!   lo 198.51.100.1/24, 2001:db8:1::1/64         lo 203.0.113.1/24, 2001:db8:2::1/64
//!   veth-l 192.0.2.1/24, 2001:db8::1/64 <--> veth-r 192.0.2.2/24, 2001:db8::2/64
//! ```
//!
//! The right namespace sends UDP to port [`CLEAR_PORT`] from an address of
//! its protected subnet around its tunnel: a policy rule there routes that
//! port over the veth in clear. On the left, a listener must not see it while
//! the SA is up (counted as `in: clear_protected`), while the same datagram
//! through the tunnel (port [`TUNNEL_PORT`]) arrives, also after a CHILD_SA
//! and an IKE rekey; with `inbound_policy = "off"` the clear one arrives,
//! which shows that the test can fail. Transport mode: the peer's own address
//! sends in clear to ours.
mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::netsys::in_netns;
use common::oxisec_peer::{OxisecPeer, oxisec_toml};
use common::peer::{Peer, RekeyKind, tunnel_up};
use common::{CONN, LEFT_OUTER, Netns, RIGHT_OUTER, Result, Tool, Topology, wait_until};

const LEFT_OUTER6: &str = "2001:db8::1";
const RIGHT_OUTER6: &str = "2001:db8::2";
const LEFT_HOST6: &str = "2001:db8:1::1";
const RIGHT_HOST6: &str = "2001:db8:2::1";
/// Sent around the tunnel, in clear.
const CLEAR_PORT: u16 = 7777;
/// Sent through the tunnel.
const TUNNEL_PORT: u16 = 7778;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A UDP socket in `ns` bound to `addr`.
fn udp(ns: &Netns, addr: SocketAddr) -> Result<UdpSocket> {
    in_netns(ns, || {
        let s = UdpSocket::bind(addr)?;
        s.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(s)
    })
}

/// Sends `tag` from `from` (in the right namespace) to `to` and reports
/// whether the listener `rx` saw it within a second (older datagrams are
/// skipped by their tag).
fn arrives(tx: &UdpSocket, rx: &UdpSocket, to: SocketAddr, tag: &str) -> Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 256];
    let mut next_send = Instant::now();
    while Instant::now() < deadline {
        if Instant::now() >= next_send {
            tx.send_to(tag.as_bytes(), to)?;
            next_send = Instant::now() + Duration::from_millis(300);
        }
        match rx.recv_from(&mut buf) {
            Ok((n, _)) if &buf[..n] == tag.as_bytes() => return Ok(true),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

fn clear_drops(p: &OxisecPeer) -> Result<u64> {
    Ok(p.status()?
        .drops
        .get("in: clear_protected")
        .copied()
        .unwrap_or(0))
}

fn oxisec_table(ns: &Netns) -> Result<bool> {
    let out = ns.exec("nft", &["list", "tables"])?;
    Ok(String::from_utf8_lossy(&out.stdout).contains("inet oxisec"))
}

/// Each side's subnets of both families in the child's selectors.
fn dual(toml: String) -> String {
    toml.replace(
        "\"198.51.100.0/24\"]",
        "\"198.51.100.0/24\", \"2001:db8:1::/64\"]",
    )
    .replace(
        "\"203.0.113.0/24\"]",
        "\"203.0.113.0/24\", \"2001:db8:2::/64\"]",
    )
}

/// `toml` with `line` in its `[daemon]` table (added when there is none).
fn with_daemon_key(toml: &str, line: &str) -> String {
    if toml.contains("[daemon]\n") {
        toml.replacen("[daemon]\n", &format!("[daemon]\n{line}\n"), 1)
    } else {
        format!("[daemon]\n{line}\n\n{toml}")
    }
}

fn up(p: &dyn Peer) -> Result<()> {
    wait_until(
        &format!("{} to have the tunnel up", p.label()),
        Duration::from_secs(10),
        || Ok(tunnel_up(&p.list_sas()?, CONN).then_some(())),
    )
}

fn skip_visibly(test: &str) -> bool {
    if common::skip(test, &[Tool::Ping]) {
        return true;
    }
    if std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED {test}: no nft program (package nftables)");
        return true;
    }
    false
}

#[test]
fn cleartext_from_the_protected_subnet_is_dropped_in_tunnel_mode() {
    let test = "cleartext_from_the_protected_subnet_is_dropped_in_tunnel_mode";
    let _serial = common::serial();
    if skip_visibly(test) {
        return;
    }
    if let Err(e) = tunnel(test) {
        panic!("{test}: {e}");
    }
}

fn tunnel(test: &str) -> Result<()> {
    let topo = Topology::new("inpolicy")?;
    topo.left.add_address("veth-l", ip(LEFT_OUTER6), 64)?;
    topo.right.add_address("veth-r", ip(RIGHT_OUTER6), 64)?;
    topo.left.add_lo_address(ip(LEFT_HOST6), 64)?;
    topo.right.add_lo_address(ip(RIGHT_HOST6), 64)?;
    // Right: UDP to CLEAR_PORT goes over the veth in clear, before the
    // tunnel routes of the main table are consulted.
    for (fam, net, via) in [
        ("-4", "198.51.100.0/24", LEFT_OUTER.to_string()),
        ("-6", "2001:db8:1::/64", LEFT_OUTER6.to_string()),
    ] {
        topo.right
            .ip(&[fam, "route", "add", net, "via", &via, "table", "100"])?;
        topo.right.ip(&[
            fam,
            "rule",
            "add",
            "prio",
            "100",
            "ipproto",
            "udp",
            "dport",
            &CLEAR_PORT.to_string(),
            "lookup",
            "100",
        ])?;
    }
    let (l, r) = topo.tunnel_specs("aes128gcm16-prfsha256-x25519", "aes128gcm16");
    let start = |ns: &std::sync::Arc<Netns>, sub: &str, toml: &str| {
        OxisecPeer::start_with_config(
            ns.clone(),
            topo.dir.sub(sub)?,
            format!("oxisec@{sub}"),
            toml,
        )
    };
    let right = start(&topo.right, "right", &dual(oxisec_toml(&r)))?;

    // The listeners on the left, the senders on the right (inside the
    // right's protected subnets).
    let pairs = [
        (
            SocketAddr::new(ip("198.51.100.1"), CLEAR_PORT),
            SocketAddr::new(ip("198.51.100.1"), TUNNEL_PORT),
            SocketAddr::new(ip("203.0.113.5"), 0),
        ),
        (
            SocketAddr::new(ip(LEFT_HOST6), CLEAR_PORT),
            SocketAddr::new(ip(LEFT_HOST6), TUNNEL_PORT),
            SocketAddr::new(ip(RIGHT_HOST6), 0),
        ),
    ];
    let mut socks = Vec::new();
    for (clear, tunneled, from) in pairs {
        socks.push((
            clear,
            tunneled,
            udp(&topo.left, clear)?,
            udp(&topo.left, tunneled)?,
            udp(&topo.right, from)?,
        ));
    }

    let check = |left: &OxisecPeer, when: &str, want_clear: bool| -> Result<()> {
        for (clear, tunneled, rx_clear, rx_tun, tx) in &socks {
            let before = clear_drops(left)?;
            let got = arrives(tx, rx_clear, *clear, &format!("clear {when} {clear}"))?;
            if got != want_clear {
                return Err(format!(
                    "{when}: the cleartext datagram to {clear} {} (want {})",
                    if got { "arrived" } else { "did not arrive" },
                    if want_clear { "arrive" } else { "dropped" }
                )
                .into());
            }
            let after = clear_drops(left)?;
            if !want_clear && after <= before {
                return Err(format!("{when}: in: clear_protected {before} -> {after}").into());
            }
            if !arrives(tx, rx_tun, *tunneled, &format!("tunnel {when} {tunneled}"))? {
                return Err(format!(
                    "{when}: the datagram through the tunnel to {tunneled} did not arrive"
                )
                .into());
            }
        }
        Ok(())
    };

    // inbound_policy = "drop" (the default).
    let left = start(&topo.left, "left", &dual(oxisec_toml(&l)))?;
    let run = |left: &OxisecPeer, want_clear: bool| -> Result<()> {
        left.initiate(CONN)?;
        up(left)?;
        up(&right)?;
        check(left, "with the SA up", want_clear)?;
        if !want_clear {
            for kind in [RekeyKind::Child, RekeyKind::Ike] {
                left.rekey(CONN, kind)?;
                std::thread::sleep(Duration::from_secs(1));
                up(left)?;
                check(left, &format!("after the {} rekey", kind.as_str()), false)?;
            }
            let text = left.cli(&["status"])?;
            if !text.contains("in: clear_protected") {
                return Err(format!("`oxisec status` does not show the drops:\n{text}").into());
            }
        }
        Ok(())
    };
    run(&left, false).map_err(|e| {
        topo.dir.keep();
        format!(
            "{e}\n--- left log ---\n{}\n--- right log ---\n{}",
            left.log_tail(40),
            right.log_tail(20)
        )
    })?;
    left.terminate(CONN)?;
    drop(left);
    if oxisec_table(&topo.left)? {
        return Err("the table inet oxisec is left behind after the daemon stopped".into());
    }

    // inbound_policy = "off": the same datagram arrives.
    let off = with_daemon_key(&dual(oxisec_toml(&l)), "inbound_policy = \"off\"");
    let left = start(&topo.left, "left-off", &off)?;
    if oxisec_table(&topo.left)? {
        return Err("inbound_policy = \"off\" installed the table".into());
    }
    run(&left, true).map_err(|e| {
        topo.dir.keep();
        format!("{e}\n--- left log ---\n{}", left.log_tail(40))
    })?;
    eprintln!("{test}: passed");
    Ok(())
}

#[test]
fn cleartext_from_the_transport_mode_peer_is_dropped() {
    let test = "cleartext_from_the_transport_mode_peer_is_dropped";
    let _serial = common::serial();
    if skip_visibly(test) {
        return;
    }
    if let Err(e) = transport(test) {
        panic!("{test}: {e}");
    }
}

fn transport(test: &str) -> Result<()> {
    let topo = Topology::new("inpolicy-tr")?;
    let (mut l, mut r) = topo.tunnel_specs("aes128gcm16-prfsha256-x25519", "aes128gcm16");
    (l.local_ts, l.remote_ts) = ("dynamic".into(), "dynamic".into());
    (r.local_ts, r.remote_ts) = ("dynamic".into(), "dynamic".into());
    let keys = |toml: String| {
        let header = toml
            .lines()
            .find(|x| x.starts_with("[connections.") && x.contains(".children."))
            .expect("a child table")
            .to_string();
        toml.replace(&header, &format!("{header}\nmode = \"transport_only\""))
    };
    // Right: UDP to CLEAR_PORT to the left host's address leaves in clear
    // (the transport rules of the daemon come later, at 5400/5401).
    topo.right.ip(&[
        "-4",
        "rule",
        "add",
        "prio",
        "100",
        "ipproto",
        "udp",
        "dport",
        &CLEAR_PORT.to_string(),
        "lookup",
        "main",
    ])?;
    let start = |ns: &std::sync::Arc<Netns>, sub: &str, toml: &str| {
        OxisecPeer::start_with_config(
            ns.clone(),
            topo.dir.sub(sub)?,
            format!("oxisec@{sub}"),
            toml,
        )
    };
    let right = start(&topo.right, "right", &keys(oxisec_toml(&r)))?;
    let left = start(&topo.left, "left", &keys(oxisec_toml(&l)))?;
    let clear = SocketAddr::new(LEFT_OUTER, CLEAR_PORT);
    let tunneled = SocketAddr::new(LEFT_OUTER, TUNNEL_PORT);
    let rx_clear = udp(&topo.left, clear)?;
    let rx_tun = udp(&topo.left, tunneled)?;
    let tx = udp(&topo.right, SocketAddr::new(RIGHT_OUTER, 0))?;
    let run = || -> Result<()> {
        left.initiate(CONN)?;
        up(&left)?;
        up(&right)?;
        let modes: Vec<String> = left
            .status()?
            .ike_sas
            .iter()
            .flat_map(|s| s.children.iter())
            .map(|c| c.mode.clone())
            .collect();
        if modes != ["transport"] {
            return Err(format!("child modes {modes:?}").into());
        }
        let before = clear_drops(&left)?;
        if arrives(&tx, &rx_clear, clear, "clear from the peer")? {
            return Err("the peer's cleartext datagram arrived in transport mode".into());
        }
        if clear_drops(&left)? <= before {
            return Err("in: clear_protected did not count the drop".into());
        }
        if !arrives(&tx, &rx_tun, tunneled, "protected from the peer")? {
            return Err("the peer's datagram through transport-mode ESP did not arrive".into());
        }
        // IKE from the peer still passes: a rekey completes.
        let before = left.status()?;
        left.rekey(CONN, RekeyKind::Child)?;
        std::thread::sleep(Duration::from_secs(1));
        up(&left)?;
        let after = left.status()?;
        let spis = |s: &oxisec::status::StatusReport| -> Vec<String> {
            s.ike_sas
                .iter()
                .flat_map(|x| x.children.iter())
                .map(|c| c.spi_in.clone())
                .collect()
        };
        if spis(&before) == spis(&after) {
            return Err("the CHILD_SA was not rekeyed".into());
        }
        if !arrives(&tx, &rx_tun, tunneled, "protected after the rekey")? {
            return Err("no traffic through the rekeyed transport-mode SA".into());
        }
        Ok(())
    };
    run().map_err(|e| {
        topo.dir.keep();
        format!(
            "{e}\n--- left log ---\n{}\n--- right log ---\n{}",
            left.log_tail(40),
            right.log_tail(20)
        )
    })?;
    eprintln!("{test}: passed");
    Ok(())
}
