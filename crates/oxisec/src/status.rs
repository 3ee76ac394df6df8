//! What `oxisec status` shows: a serializable snapshot built from the
//! engine's [`IkeSaStatus`] joined with the data plane's per-SPI counters,
//! and its rendering as a table.
//!
//! The same [`StatusReport`] travels over the control socket as JSON and is
//! what `oxisec status --json` prints, so scripts and the table never disagree.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use oxisec_ike::{Config, IkeSaStatus, StartAction};
use serde::{Deserialize, Serialize};

/// Bytes and packets through one direction of an ESP SA, and the packets
/// it dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    pub bytes: u64,
    pub packets: u64,
    /// Non-zero drop counts by reason (the ESP crate's stable names, e.g.
    /// `replay_duplicate`, `integrity_failed`, `expired`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub drops: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub pid: u32,
    pub uptime_secs: u64,
    /// One line on the data plane, e.g. "userspace ESP-in-UDP on oxisec0".
    pub dataplane: String,
    /// Packets the data plane dropped since it started, by reason (ESP
    /// drops as `in: REASON` / `out: REASON`, summed over all SAs, past ones
    /// included); only non-zero counts. Each SA's own are in its [`Traffic`].
    #[serde(default)]
    pub drops: BTreeMap<String, u64>,
    pub connections: Vec<ConnectionInfo>,
    pub ike_sas: Vec<IkeSaInfo>,
    /// Virtual IP pools of a remote-access gateway.
    #[serde(default)]
    pub pools: Vec<PoolInfo>,
    /// What the IKE engine dropped, refused or answered from its caches
    /// since start (malformed messages, unknown SPIs, COOKIEs sent, half-open
    /// SAs refused, ...); only non-zero counts.
    #[serde(default)]
    pub ike_counters: BTreeMap<String, u64>,
}

/// The non-zero counters of the engine's [`oxisec_ike::Stats`].
pub fn ike_counters(s: &oxisec_ike::Stats) -> BTreeMap<String, u64> {
    [
        ("malformed", s.malformed),
        ("unknown_spi", s.unknown_spi),
        ("out_of_window", s.out_of_window),
        ("integrity_failed", s.integrity_failed),
        ("retransmits_answered", s.retransmits_answered),
        ("retransmits_sent", s.retransmits_sent),
        ("invalid_spi_suppressed", s.invalid_spi_suppressed),
        ("cookies_sent", s.cookies_sent),
        ("half_open_refused", s.half_open_refused),
        ("errors_suppressed", s.errors_suppressed),
        ("fragments_held", s.fragments_held),
    ]
    .into_iter()
    .filter(|(_, v)| *v > 0)
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// One virtual IP pool: its range and how much of it is taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolInfo {
    pub name: String,
    pub first: IpAddr,
    pub last: IpAddr,
    /// Addresses held by connected clients.
    pub online: usize,
    /// Addresses kept for clients that are away (given back when they
    /// return, reclaimed oldest first when the pool runs out).
    pub offline: usize,
}

/// A configured connection (whether or not an SA exists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    pub name: String,
    pub local_addrs: Vec<IpAddr>,
    pub remote_addrs: Vec<IpAddr>,
    pub local_id: String,
    /// `None`: any identity that authenticates.
    pub remote_id: Option<String>,
    pub children: Vec<ChildConfigInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildConfigInfo {
    pub name: String,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
    pub start_action: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IkeSaInfo {
    pub id: u64,
    pub connection: String,
    pub state: String,
    pub initiator: bool,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub local_id: String,
    pub remote_id: String,
    /// 16 hex digits, as on the wire.
    pub spi_i: String,
    pub spi_r: String,
    pub algorithms: String,
    /// Seconds since the SA was established; `None` while negotiating.
    pub established_secs: Option<u64>,
    pub children: Vec<ChildSaInfo>,
    /// NAT detected in front of us / in front of the peer (RFC 7296
    /// §2.23). A side that forces UDP encapsulation fakes its detection
    /// data, so the other side sees a NAT there too (as with strongSwan's
    /// `encap = yes`); oxisec's userspace data plane always does.
    #[serde(default)]
    pub nat_local: bool,
    #[serde(default)]
    pub nat_remote: bool,
    /// Virtual IPs the gateway gave us (road warrior) / we gave the peer.
    #[serde(default)]
    pub virtual_ips: Vec<IpAddr>,
    #[serde(default)]
    pub peer_virtual_ips: Vec<IpAddr>,
    /// Gateway side: the user a remote-access peer proved to be with EAP
    /// (left out of the JSON without EAP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eap_identity: Option<String>,
    /// Gateway side: a remote-access peer's user groups (users file,
    /// RADIUS Class/Filter-Id, certificate OUs), so that an operator sees
    /// why it got its pool; left out of the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_groups: Vec<String>,
    /// The one of `peer_groups` whose pool, DNS and subnets apply; `None`:
    /// the connection's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildSaInfo {
    pub id: u64,
    pub name: String,
    pub state: String,
    /// 8 hex digits.
    pub spi_in: String,
    pub spi_out: String,
    pub algorithms: String,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
    pub installed_secs: u64,
    /// "tunnel" or "transport" (empty from a daemon that predates modes).
    #[serde(default)]
    pub mode: String,
    /// `None` when the data plane does not know the SPI (not installed there).
    pub traffic_in: Option<Traffic>,
    pub traffic_out: Option<Traffic>,
}

/// The configured connections, for the part of `status` that exists without SAs.
pub fn connections(config: &Config) -> Vec<ConnectionInfo> {
    config
        .connections
        .iter()
        .map(|c| ConnectionInfo {
            name: c.name.clone(),
            local_addrs: c.local_addrs.clone(),
            remote_addrs: c.remote_addrs.clone(),
            local_id: c.local_id.to_string(),
            remote_id: c.remote_id.as_ref().map(|i| i.to_string()),
            children: c
                .children
                .iter()
                .map(|ch| ChildConfigInfo {
                    name: ch.name.clone(),
                    local_ts: ch.local_ts.iter().map(|t| t.to_string()).collect(),
                    remote_ts: ch.remote_ts.iter().map(|t| t.to_string()).collect(),
                    start_action: match ch.start_action {
                        StartAction::Start => "start",
                        StartAction::None => "none",
                    }
                    .to_string(),
                })
                .collect(),
        })
        .collect()
}

/// Joins the engine's view with the data plane's counters.
/// `counters(spi, inbound)` returns what the data plane counted for that SA.
pub fn ike_sas(
    sas: &[IkeSaStatus],
    now: Instant,
    counters: &dyn Fn(u32, bool) -> Option<Traffic>,
) -> Vec<IkeSaInfo> {
    let age = |t: Instant| now.saturating_duration_since(t).as_secs();
    sas.iter()
        .map(|s| IkeSaInfo {
            id: s.ike.0,
            connection: s.connection.clone(),
            state: s.state.to_string(),
            initiator: s.initiator,
            local: s.local,
            remote: s.remote,
            local_id: s.local_id.clone(),
            remote_id: s.remote_id.clone(),
            spi_i: format!("{:016x}", s.spi_i),
            spi_r: format!("{:016x}", s.spi_r),
            algorithms: s.algorithms.clone(),
            established_secs: s.established.map(age),
            nat_local: s.nat_local,
            nat_remote: s.nat_remote,
            virtual_ips: s.own_vips.clone(),
            peer_virtual_ips: s.peer_vips.clone(),
            eap_identity: s.eap_identity.clone(),
            peer_groups: s.peer_groups.clone(),
            access_group: s.access_group.clone(),
            children: s
                .children
                .iter()
                .map(|c| ChildSaInfo {
                    id: c.child.0,
                    name: c.name.clone(),
                    state: c.state.to_string(),
                    spi_in: format!("{:08x}", c.spi_in),
                    spi_out: format!("{:08x}", c.spi_out),
                    algorithms: c.algorithms.clone(),
                    local_ts: c.local_ts.iter().map(|t| t.to_string()).collect(),
                    remote_ts: c.remote_ts.iter().map(|t| t.to_string()).collect(),
                    installed_secs: age(c.installed),
                    mode: c.mode.to_string(),
                    traffic_in: counters(c.spi_in, true),
                    traffic_out: counters(c.spi_out, false),
                })
                .collect(),
        })
        .collect()
}

/// ` virtual IP 10.3.0.1, 2001:db8::1` or nothing.
fn vips(a: &[IpAddr]) -> String {
    if a.is_empty() {
        return String::new();
    }
    let list: Vec<String> = a.iter().map(IpAddr::to_string).collect();
    format!(" virtual IP {}", list.join(", "))
}

/// `user alice, groups staff, vpn (access: staff)`: a remote-access
/// peer's EAP identity and groups, and which group's pool, DNS and subnets
/// it got (`connection default` when none of its groups is configured);
/// `None` when the peer has neither an EAP identity nor groups.
fn peer_user(ike: &IkeSaInfo) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(u) = &ike.eap_identity {
        parts.push(format!("user {}", printable(u)));
    }
    if !ike.peer_groups.is_empty() {
        let word = if ike.peer_groups.len() == 1 {
            "group"
        } else {
            "groups"
        };
        parts.push(format!(
            "{word} {} (access: {})",
            ike.peer_groups
                .iter()
                .map(|g| printable(g))
                .collect::<Vec<_>>()
                .join(", "),
            printable(ike.access_group.as_deref().unwrap_or("connection default"))
        ));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// `s` with control characters escaped: EAP identities come from the
/// client and groups from a RADIUS server, and neither may move the
/// operator's cursor or fake a line of the table.
fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let e: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            e
        })
        .collect()
}

/// `1h02m`, `5m07s`, `42s`.
pub fn human_duration(secs: u64) -> String {
    let d = Duration::from_secs(secs).as_secs();
    let (h, m, s) = (d / 3600, (d / 60) % 60, d % 60);
    if d >= 86400 {
        format!("{}d{:02}h", d / 86400, h % 24)
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `812 B`, `1.5 KiB`, `3.2 MiB`, `1.0 GiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
fn table(out: &mut String, indent: &str, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::from(indent);
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn traffic(t: Option<&Traffic>) -> String {
    match t {
        Some(t) => format!("{} / {} pkts", human_bytes(t.bytes), t.packets),
        None => "-".to_string(),
    }
}

/// The human form of `oxisec status`.
pub fn render(r: &StatusReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "oxisec {} (pid {}), up {}, data plane: {}",
        r.version,
        r.pid,
        human_duration(r.uptime_secs),
        r.dataplane
    );
    if !r.drops.is_empty() {
        let list: Vec<String> = r.drops.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "data plane drops: {}", list.join(", "));
    }
    if !r.ike_counters.is_empty() {
        let list: Vec<String> = r
            .ike_counters
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(s, "IKE counters: {}", list.join(", "));
    }
    for p in &r.pools {
        let _ = writeln!(
            s,
            "pool {} {}-{}: {} online, {} offline",
            p.name, p.first, p.last, p.online, p.offline
        );
    }
    s.push('\n');
    let _ = writeln!(s, "Connections ({}):", r.connections.len());
    let mut rows = Vec::new();
    for c in &r.connections {
        let addrs = |v: &[IpAddr]| {
            if v.is_empty() {
                "%any".to_string()
            } else {
                v.iter()
                    .map(IpAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        rows.push(vec![
            c.name.clone(),
            format!("{} [{}]", addrs(&c.local_addrs), c.local_id),
            "<->".to_string(),
            format!(
                "{} [{}]",
                addrs(&c.remote_addrs),
                c.remote_id.as_deref().unwrap_or("%any")
            ),
        ]);
        for ch in &c.children {
            rows.push(vec![
                format!("  {}", ch.name),
                ch.local_ts.join(","),
                "===".to_string(),
                format!("{} (start: {})", ch.remote_ts.join(","), ch.start_action),
            ]);
        }
    }
    table(&mut s, "  ", &rows);
    s.push('\n');
    if r.ike_sas.is_empty() {
        s.push_str("IKE SAs: none\n");
        return s;
    }
    let _ = writeln!(s, "IKE SAs ({}):", r.ike_sas.len());
    for ike in &r.ike_sas {
        let since = match ike.established_secs {
            Some(a) => format!("{} ago", human_duration(a)),
            None => "negotiating".to_string(),
        };
        let _ = writeln!(
            s,
            "  {} #{}: {}, {}, {}",
            ike.connection,
            ike.id,
            ike.state,
            since,
            if ike.initiator {
                "initiator"
            } else {
                "responder"
            }
        );
        let _ = writeln!(
            s,
            "    local  {} [{}]{}{}\n    remote {} [{}]{}{}",
            ike.local,
            ike.local_id,
            vips(&ike.virtual_ips),
            // A NAT in front of this side, or NAT detection faked to force
            // UDP encapsulation (RFC 7296 §2.23): either way ESP goes in UDP.
            if ike.nat_local { " (NAT-T)" } else { "" },
            ike.remote,
            ike.remote_id,
            vips(&ike.peer_virtual_ips),
            if ike.nat_remote { " (NAT-T)" } else { "" },
        );
        if let Some(line) = peer_user(ike) {
            let _ = writeln!(s, "    {line}");
        }
        let _ = writeln!(
            s,
            "    SPIs {}_i {}_r  {}",
            ike.spi_i, ike.spi_r, ike.algorithms
        );
        if ike.children.is_empty() {
            s.push_str("    no CHILD SAs\n");
            continue;
        }
        let mut rows = vec![
            [
                "CHILD",
                "STATE",
                "SPI IN",
                "SPI OUT",
                "ALGORITHMS",
                "IN",
                "OUT",
                "AGE",
            ]
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>(),
        ];
        for c in &ike.children {
            rows.push(vec![
                format!("{} #{}", c.name, c.id),
                c.state.clone(),
                c.spi_in.clone(),
                c.spi_out.clone(),
                c.algorithms.clone(),
                traffic(c.traffic_in.as_ref()),
                traffic(c.traffic_out.as_ref()),
                human_duration(c.installed_secs),
            ]);
        }
        table(&mut s, "    ", &rows);
        for c in &ike.children {
            let _ = writeln!(
                s,
                "      {}: {} === {}{}",
                c.name,
                c.local_ts.join(","),
                c.remote_ts.join(","),
                // Tunnel is the usual case; only transport is called out.
                if c.mode == "transport" {
                    " (transport mode)"
                } else {
                    ""
                }
            );
            let drops = |t: Option<&Traffic>| -> Option<String> {
                let d = &t?.drops;
                (!d.is_empty()).then(|| {
                    d.iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
            };
            let parts: Vec<String> = [
                ("in", drops(c.traffic_in.as_ref())),
                ("out", drops(c.traffic_out.as_ref())),
            ]
            .into_iter()
            .filter_map(|(dir, d)| Some(format!("{dir}: {}", d?)))
            .collect();
            if !parts.is_empty() {
                let _ = writeln!(s, "      {} drops {}", c.name, parts.join("; "));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxisec_ike::{ChildId, ChildSaStatus, IkeId, TsRange};

    fn sample_engine_status(now: Instant) -> Vec<IkeSaStatus> {
        vec![IkeSaStatus {
            ike: IkeId(1),
            connection: "site-b".into(),
            state: "ESTABLISHED",
            initiator: true,
            local: "192.0.2.1:4500".parse().unwrap(),
            remote: "192.0.2.2:4500".parse().unwrap(),
            local_id: "gw-a.example.com".into(),
            remote_id: "gw-b.example.com".into(),
            spi_i: 0x0123_4567_89ab_cdef,
            spi_r: 0xfedc_ba98_7654_3210,
            algorithms: "AES_GCM_16_128/PRF_HMAC_SHA2_256/CURVE_25519".into(),
            established: now.checked_sub(Duration::from_secs(312)),
            nat_local: false,
            nat_remote: true,
            own_vips: vec![],
            peer_vips: vec!["10.3.0.1".parse().unwrap()],
            eap_identity: None,
            peer_groups: vec![],
            access_group: None,
            children: vec![ChildSaStatus {
                child: ChildId(7),
                name: "lan".into(),
                state: "INSTALLED",
                spi_in: 0xc1a2_b3c4,
                spi_out: 0x0000_00ff,
                algorithms: "AES_GCM_16_128".into(),
                local_ts: vec!["198.51.100.0/24".parse::<TsRange>().unwrap()],
                remote_ts: vec!["203.0.113.0/24".parse::<TsRange>().unwrap()],
                installed: now.checked_sub(Duration::from_secs(310)).unwrap(),
                mode: Default::default(),
            }],
        }]
    }

    fn sample(now: Instant) -> StatusReport {
        let counters = |spi: u32, inbound: bool| match (spi, inbound) {
            (0xc1a2_b3c4, true) => Some(Traffic {
                bytes: 1_572_864,
                packets: 1034,
                drops: BTreeMap::new(),
            }),
            (0xff, false) => Some(Traffic {
                bytes: 840,
                packets: 10,
                drops: BTreeMap::new(),
            }),
            _ => None,
        };
        StatusReport {
            version: "0.1.0".into(),
            pid: 42,
            uptime_secs: 400,
            dataplane: "userspace ESP-in-UDP on oxisec0".into(),
            drops: BTreeMap::new(),
            connections: vec![ConnectionInfo {
                name: "site-b".into(),
                local_addrs: vec!["192.0.2.1".parse().unwrap()],
                remote_addrs: vec!["192.0.2.2".parse().unwrap()],
                local_id: "gw-a.example.com".into(),
                remote_id: None,
                children: vec![ChildConfigInfo {
                    name: "lan".into(),
                    local_ts: vec!["198.51.100.0/24".into()],
                    remote_ts: vec!["203.0.113.0/24".into()],
                    start_action: "start".into(),
                }],
            }],
            pools: vec![PoolInfo {
                name: "staff".into(),
                first: "10.3.0.1".parse().unwrap(),
                last: "10.3.0.254".parse().unwrap(),
                online: 2,
                offline: 1,
            }],
            ike_sas: ike_sas(&sample_engine_status(now), now, &counters),
            ike_counters: ike_counters(&oxisec_ike::Stats {
                cookies_sent: 12,
                malformed: 3,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn joins_engine_status_with_counters() {
        let now = Instant::now() + Duration::from_secs(1000);
        let r = sample(now);
        let ike = &r.ike_sas[0];
        assert_eq!(ike.spi_i, "0123456789abcdef");
        assert_eq!(ike.established_secs, Some(312));
        let c = &ike.children[0];
        assert_eq!(
            (c.spi_in.as_str(), c.spi_out.as_str()),
            ("c1a2b3c4", "000000ff")
        );
        assert_eq!(c.traffic_in.as_ref().unwrap().packets, 1034);
        assert_eq!(c.traffic_out.as_ref().unwrap().bytes, 840);
        assert_eq!(c.installed_secs, 310);
        assert_eq!(c.local_ts, vec!["198.51.100.0/24"]);
    }

    #[test]
    fn json_round_trip() {
        let now = Instant::now() + Duration::from_secs(1000);
        let r = sample(now);
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"spi_in\":\"c1a2b3c4\""), "{j}");
        assert!(j.contains("\"remote\":\"192.0.2.2:4500\""), "{j}");
        let back: StatusReport = serde_json::from_str(&j).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn renders_a_readable_table() {
        let now = Instant::now() + Duration::from_secs(1000);
        let text = render(&sample(now));
        let expected = "\
oxisec 0.1.0 (pid 42), up 6m40s, data plane: userspace ESP-in-UDP on oxisec0
IKE counters: cookies_sent 12, malformed 3
pool staff 10.3.0.1-10.3.0.254: 2 online, 1 offline

Connections (1):
  site-b  192.0.2.1 [gw-a.example.com]  <->  192.0.2.2 [%any]
    lan   198.51.100.0/24               ===  203.0.113.0/24 (start: start)

IKE SAs (1):
  site-b #1: ESTABLISHED, 5m12s ago, initiator
    local  192.0.2.1:4500 [gw-a.example.com]
    remote 192.0.2.2:4500 [gw-b.example.com] virtual IP 10.3.0.1 (NAT-T)
    SPIs 0123456789abcdef_i fedcba9876543210_r  AES_GCM_16_128/PRF_HMAC_SHA2_256/CURVE_25519
    CHILD   STATE      SPI IN    SPI OUT   ALGORITHMS      IN                   OUT              AGE
    lan #7  INSTALLED  c1a2b3c4  000000ff  AES_GCM_16_128  1.5 MiB / 1034 pkts  840 B / 10 pkts  5m10s
      lan: 198.51.100.0/24 === 203.0.113.0/24
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn shows_a_remote_access_peers_user_and_groups() {
        let now = Instant::now() + Duration::from_secs(1000);
        let mut engine = sample_engine_status(now);
        engine[0].initiator = false;
        engine[0].eap_identity = Some("alice".into());
        engine[0].peer_groups = vec!["vpn".into(), "Staff".into()];
        engine[0].access_group = Some("staff".into());
        let mut r = sample(now);
        r.ike_sas = ike_sas(&engine, now, &|_, _| None);
        let text = render(&r);
        assert!(
            text.contains(
                "[gw-b.example.com] virtual IP 10.3.0.1 (NAT-T)\n    user alice, groups vpn, Staff (access: staff)\n    SPIs "
            ),
            "{text}"
        );
        let j = serde_json::to_string(&r).unwrap();
        assert!(
            j.contains(
                r#""eap_identity":"alice","peer_groups":["vpn","Staff"],"access_group":"staff""#
            ),
            "{j}"
        );
        assert_eq!(serde_json::from_str::<StatusReport>(&j).unwrap(), r);

        // A certificate client in a group no connection lists: the
        // connection's values; no EAP identity.
        engine[0].eap_identity = None;
        engine[0].peer_groups = vec!["lab".into()];
        engine[0].access_group = None;
        r.ike_sas = ike_sas(&engine, now, &|_, _| None);
        assert!(
            render(&r).contains("\n    group lab (access: connection default)\n"),
            "{}",
            render(&r)
        );
        // Hostile names cannot break the table.
        engine[0].eap_identity = Some("eve\n    SPIs forged\x1b[2J".into());
        r.ike_sas = ike_sas(&engine, now, &|_, _| None);
        let text = render(&r);
        assert!(
            text.contains("user eve\\n    SPIs forged\\u{1b}[2J, group lab"),
            "{text}"
        );
        // Without either, no line and no JSON keys (older clients parse it).
        let plain = sample(now);
        assert!(!render(&plain).contains("    user "));
        let j = serde_json::to_string(&plain).unwrap();
        assert!(
            !j.contains("eap_identity") && !j.contains("peer_groups"),
            "{j}"
        );
    }

    #[test]
    fn renders_no_sas_and_drops() {
        let now = Instant::now();
        let mut r = sample(now);
        r.ike_sas.clear();
        r.drops.insert("no policy".into(), 3);
        let text = render(&r);
        assert!(text.ends_with("IKE SAs: none\n"), "{text}");
        assert!(text.contains("\ndata plane drops: no policy 3\n"), "{text}");
    }

    #[test]
    fn renders_per_sa_drops_by_reason() {
        let now = Instant::now() + Duration::from_secs(1000);
        let mut r = sample(now);
        let c = &mut r.ike_sas[0].children[0];
        let t = c.traffic_in.as_mut().unwrap();
        t.drops.insert("replay_duplicate".into(), 3);
        t.drops.insert("integrity_failed".into(), 1);
        c.traffic_out
            .as_mut()
            .unwrap()
            .drops
            .insert("expired".into(), 2);
        let text = render(&r);
        assert!(
            text.ends_with(
                "      lan drops in: integrity_failed 1, replay_duplicate 3; out: expired 2\n"
            ),
            "{text}"
        );
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"drops\":{\"integrity_failed\":1,"), "{j}");
        assert_eq!(serde_json::from_str::<StatusReport>(&j).unwrap(), r);
        // Without drops the key is left out, and older reports still parse.
        let j = serde_json::to_string(&sample(now)).unwrap();
        assert!(
            !j.contains("\"traffic_in\":{\"bytes\":1572864,\"packets\":1034,\"drops\""),
            "{j}"
        );
    }

    #[test]
    fn human_units() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(61), "1m01s");
        assert_eq!(human_duration(3725), "1h02m");
        assert_eq!(human_duration(90000), "1d01h");
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
