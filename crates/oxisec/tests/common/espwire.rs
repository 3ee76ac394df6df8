//! What ESP looks like on the wire in a namespace: nftables counters of raw
//! ESP (IP protocol 50) and of ESP in UDP 4500 (a UDP 4500 datagram that is
//! neither IKE behind the non-ESP marker nor a one-byte NAT keepalive),
//! over IPv4 and IPv6, on the input, output and forward hooks, so that one
//! table serves a gateway's namespace and a NAT box alike.

use super::nat::parse_nft_packets;
use super::{Netns, Result, TestDir};

const TABLE: &str = "oxwire";

/// The two counters of one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspWire {
    /// IP protocol 50 packets.
    pub raw: u64,
    /// ESP-in-UDP datagrams on port 4500.
    pub udp: u64,
}

/// Loads the counting table into `ns` (script kept in `dir`).
pub fn install(ns: &Netns, dir: &TestDir) -> Result<()> {
    let mut hooks = String::new();
    for hook in ["input", "output", "forward"] {
        hooks += &format!(
            "    chain {hook} {{\n\
             \x20       type filter hook {hook} priority filter; policy accept;\n\
             \x20       jump count\n\
             \x20   }}\n"
        );
    }
    let script = format!(
        "table inet {TABLE} {{\n\
         \x20   counter raw_esp {{ }}\n\
         \x20   counter udp_esp {{ }}\n\
         \x20   chain count {{\n\
         \x20       meta l4proto esp counter name \"raw_esp\"\n\
         \x20       udp dport 4500 udp length > 9 @th,64,32 != 0 counter name \"udp_esp\"\n\
         \x20       udp sport 4500 udp dport != 4500 udp length > 9 @th,64,32 != 0 counter name \"udp_esp\"\n\
         \x20   }}\n\
         {hooks}}}\n"
    );
    let path = dir.path().join(format!("espwire-{}.nft", ns.name()));
    std::fs::write(&path, &script)?;
    ns.exec("nft", &["-f", &path.to_string_lossy()])
        .map_err(|e| format!("loading {}: {e}\n{script}", path.display()))?;
    Ok(())
}

/// The counters of `ns` (after [`install`]).
pub fn read(ns: &Netns) -> Result<EspWire> {
    let count = |name: &str| -> Result<u64> {
        let out = ns.exec("nft", &["list", "counter", "inet", TABLE, name])?;
        parse_nft_packets(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| {
            format!("no packet count in `nft list counter inet {TABLE} {name}`").into()
        })
    };
    Ok(EspWire {
        raw: count("raw_esp")?,
        udp: count("udp_esp")?,
    })
}
