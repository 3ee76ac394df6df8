//! Shunt policies in the configuration file: traffic that must bypass the
//! tunnels (`pass`) or must never leave at all (`drop`), whatever the
//! CHILD_SAs' selectors say (RFC 4301 BYPASS and DISCARD entries).
//!
//! ```toml
//! [shunts.mgmt]                      # ssh to the peer site stays in clear
//! action = "pass"
//! remote_ts = ["203.0.113.0/24[tcp/22]"]
//!
//! [shunts.no-telnet]                 # never, not even through the tunnel
//! action = "drop"
//! local_ts = ["198.51.100.0/24"]     # default: any address of either family
//! remote_ts = ["0.0.0.0/0[tcp/23]", "::/0[tcp/23]"]
//! ```
//!
//! Selectors use the `local_ts`/`remote_ts` syntax of the children
//! (strongSwan's, with `[proto/port]`). Shunts are evaluated in the order
//! they appear in the file, before every child's PROTECT policy. The names
//! and semantics follow swanctl.conf's `shunts` section (there as a child
//! with `mode = pass|drop`) so that admins can carry their policies over.
//! How the daemon enforces them is described in `daemon/shunts.rs`.

use std::collections::BTreeMap;

use oxisec_ike::ts::TsRange;
use serde::Deserialize;
use toml::Spanned;

use oxisec_ike::{Connection, DpdAction};

use super::{ConfigError, Cx, DaemonConfig, RawConnection, RawDaemon};

/// A child whose traffic starts it (RFC 4301 acquire): its remote selectors
/// are routed into the TUN device from the start, and the first packet
/// there without an SA makes the daemon initiate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trap {
    pub connection: String,
    pub child: String,
    pub local_ts: Vec<TsRange>,
    pub remote_ts: Vec<TsRange>,
    /// Where the IKE SA goes (the connection's first remote address).
    pub peer: std::net::IpAddr,
}

/// The traps of one checked connection: children with `start_action =
/// "trap"`, or all of them under `dpd_action = "trap"` (a dead peer's
/// children go back to waiting for traffic). Needs a peer address to
/// initiate to; children with `dynamic` selectors (filled in by the
/// IKE exchange) cannot be trapped and are left out.
pub(super) fn traps(raw: &RawConnection, conn: &Connection) -> Vec<Trap> {
    let Some(&peer) = conn.remote_addrs.first() else {
        return Vec::new();
    };
    let all = conn.dpd_action == DpdAction::Trap;
    conn.children
        .iter()
        .filter(|c| {
            all || raw
                .children
                .get(&c.name)
                .and_then(|rc| rc.get_ref().start_action.as_ref())
                .is_some_and(|s| s.get_ref().trim() == "trap")
        })
        .filter(|c| !c.remote_ts.is_empty())
        .map(|c| Trap {
            connection: conn.name.clone(),
            child: c.name.clone(),
            local_ts: c.local_ts.clone(),
            remote_ts: c.remote_ts.clone(),
            peer,
        })
        .collect()
}

/// Packets held per trap unless configured.
pub const DEFAULT_TRAP_QUEUE: usize = 32;
/// Most packets held per trap: the queue holds copies of whole packets.
const MAX_TRAP_QUEUE: u16 = 256;

/// Path MTU unless configured: Ethernet.
pub const DEFAULT_PATH_MTU: u16 = 1500;

/// `mss_clamp = true | false | NUMBER` under `[daemon]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawMssClamp {
    On(bool),
    Mss(i64),
}

/// How TCP MSS clamping is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MssClamp {
    #[default]
    Off,
    /// To what fits the SA on the path.
    Auto,
    /// To this IPv4 MSS (IPv6: 20 less).
    Fixed(u16),
}

/// Most selectors per side of one shunt: each local × remote pair becomes
/// one routing rule, so this bounds the rules one shunt costs (256).
const MAX_TS: usize = 16;

/// One `[shunts.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawShunt {
    action: Spanned<String>,
    local_ts: Option<Spanned<Vec<Spanned<String>>>>,
    remote_ts: Spanned<Vec<Spanned<String>>>,
}

/// What a shunt does with matching traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShuntAction {
    /// Send in clear, outside every tunnel (RFC 4301 BYPASS).
    Pass,
    /// Drop, counted by the data plane (RFC 4301 DISCARD).
    Drop,
}

/// A checked shunt policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shunt {
    pub name: String,
    pub action: ShuntAction,
    /// Matched against the packet's source.
    pub local_ts: Vec<TsRange>,
    /// Matched against the packet's destination.
    pub remote_ts: Vec<TsRange>,
}

impl Cx<'_> {
    /// `[daemon] path_mtu` and `mss_clamp`.
    pub(super) fn mtu_policy(
        &self,
        raw: &RawDaemon,
        d: &mut DaemonConfig,
    ) -> Result<(), ConfigError> {
        if let Some(m) = &raw.path_mtu {
            let v = *m.get_ref();
            if !(576..=9000).contains(&v) {
                return Err(self.err(
                    Some(m.span()),
                    "daemon.path_mtu",
                    format!("MTU {v} is out of range (576 to 9000)"),
                ));
            }
            d.path_mtu = v;
        }
        if let Some(q) = &raw.trap_queue {
            let n = *q.get_ref();
            if n > MAX_TRAP_QUEUE {
                return Err(self.err(
                    Some(q.span()),
                    "daemon.trap_queue",
                    format!("{n} is more than {MAX_TRAP_QUEUE} packets"),
                ));
            }
            d.trap_queue = usize::from(n);
        }
        if let Some(c) = &raw.mss_clamp {
            d.mss_clamp = match c.get_ref() {
                RawMssClamp::On(true) => MssClamp::Auto,
                RawMssClamp::On(false) => MssClamp::Off,
                RawMssClamp::Mss(n) => match u16::try_from(*n) {
                    Ok(n) if (536..=8960).contains(&n) => MssClamp::Fixed(n),
                    _ => {
                        return Err(self.err(
                            Some(c.span()),
                            "daemon.mss_clamp",
                            format!("MSS {n} is out of range (536 to 8960), or use true"),
                        ));
                    }
                },
            };
        }
        Ok(())
    }

    /// The `[shunts.*]` tables in file order.
    pub(super) fn shunts(
        &self,
        raw: &BTreeMap<String, Spanned<RawShunt>>,
    ) -> Result<Vec<Shunt>, ConfigError> {
        let mut list: Vec<(&String, &Spanned<RawShunt>)> = raw.iter().collect();
        list.sort_by_key(|(_, s)| s.span().start);
        list.into_iter()
            .map(|(name, s)| self.shunt(name, s.get_ref()))
            .collect()
    }

    fn shunt(&self, name: &str, raw: &RawShunt) -> Result<Shunt, ConfigError> {
        let field = |k: &str| format!("shunts.{name}.{k}");
        let action = match raw.action.get_ref().trim() {
            "pass" => ShuntAction::Pass,
            "drop" => ShuntAction::Drop,
            other => {
                return Err(self.err(
                    Some(raw.action.span()),
                    field("action"),
                    format!("{other:?}: expected \"pass\" or \"drop\""),
                ));
            }
        };
        let list = |key: &str, v: &Spanned<Vec<Spanned<String>>>| {
            if v.get_ref().is_empty() {
                return Err(self.err(Some(v.span()), field(key), "must not be empty"));
            }
            if v.get_ref().len() > MAX_TS {
                return Err(self.err(
                    Some(v.span()),
                    field(key),
                    format!("at most {MAX_TS} selectors per shunt"),
                ));
            }
            v.get_ref()
                .iter()
                .map(|s| {
                    let ts: TsRange = s
                        .get_ref()
                        .parse()
                        .map_err(|e| self.err(Some(s.span()), field(key), format!("{e}")))?;
                    check_ports(&ts).map_err(|m| self.err(Some(s.span()), field(key), m))?;
                    Ok(ts)
                })
                .collect::<Result<Vec<TsRange>, ConfigError>>()
        };
        let remote_ts = list("remote_ts", &raw.remote_ts)?;
        let local_ts = match &raw.local_ts {
            Some(v) => list("local_ts", v)?,
            None => vec![any(true), any(false)],
        };
        let families = |l: &[TsRange]| {
            (
                l.iter().any(|t| t.is_ipv4()),
                l.iter().any(|t| !t.is_ipv4()),
            )
        };
        let (l4, l6) = families(&local_ts);
        let (r4, r6) = families(&remote_ts);
        if !(l4 && r4 || l6 && r6) {
            return Err(self.err(
                Some(raw.remote_ts.span()),
                field("remote_ts"),
                "no remote selector has the family of a local selector: the shunt would match nothing",
            ));
        }
        Ok(Shunt {
            name: name.to_string(),
            action,
            local_ts,
            remote_ts,
        })
    }
}

/// Every address of one family, any protocol and port.
fn any(v4: bool) -> TsRange {
    let s: &str = if v4 { "0.0.0.0/0" } else { "::/0" };
    s.parse().expect("literal selector")
}

/// Port ranges a routing rule can express: real ports of a protocol that
/// has them. ICMP type/code "ports" and OPAQUE have no rule equivalent, and
/// a shunt the kernel applies more broadly than the data plane would
/// silently pass or drop other traffic.
fn check_ports(ts: &TsRange) -> Result<(), String> {
    let any_port = ts.start_port == 0 && ts.end_port == u16::MAX;
    if any_port {
        return Ok(());
    }
    match ts.protocol {
        6 | 17 | 132 | 33 | 136 => Ok(()),
        1 | 58 => Err("ICMP type/code selectors are not supported in shunts; give the protocol alone ([icmp])".into()),
        0 => Err("a port needs a protocol, e.g. [tcp/22]".into()),
        p => Err(format!("protocol {p} has no ports")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{SystemResolver, parse};
    use super::*;
    use std::path::Path;

    fn load(extra: &str) -> Result<Vec<Shunt>, ConfigError> {
        parse(extra, Path::new("/etc/oxisec/oxisec.toml"), &SystemResolver).map(|l| l.daemon.shunts)
    }

    #[test]
    fn accepts_shunts_in_file_order() {
        let s = load(
            r#"
[shunts.zz-first]
action = "pass"
remote_ts = ["203.0.113.0/24[tcp/22]"]

[shunts.aa-second]
action = "drop"
local_ts = ["198.51.100.0/24"]
remote_ts = ["0.0.0.0/0[tcp/23]", "203.0.113.9"]
"#,
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].name.as_str(), s[0].action),
            ("zz-first", ShuntAction::Pass)
        );
        assert_eq!(s[0].local_ts, [any(true), any(false)]);
        assert_eq!(s[0].remote_ts[0].protocol, 6);
        assert_eq!(
            (s[0].remote_ts[0].start_port, s[0].remote_ts[0].end_port),
            (22, 22)
        );
        assert_eq!(
            (s[1].name.as_str(), s[1].action),
            ("aa-second", ShuntAction::Drop)
        );
        assert_eq!(s[1].local_ts.len(), 1);
        assert_eq!(s[1].remote_ts.len(), 2);
        assert!(load("").unwrap().is_empty());
    }

    #[test]
    fn trap_children_and_dpd_trap_connections_are_traps() {
        let conf = |start: &str, dpd: &str| {
            format!(
                "[connections.b]\nremote_addrs = [\"192.0.2.2\"]\npsk = \"0123456789abcdef0123456789abcdef\"\n{dpd}\n\
                 [connections.b.children.one]\nlocal_ts = [\"198.51.100.0/24\"]\nremote_ts = [\"203.0.113.0/24\"]\n{start}\n\
                 [connections.b.children.two]\nlocal_ts = [\"198.51.100.0/24\"]\nremote_ts = [\"203.0.113.128/25\"]\n"
            )
        };
        let traps = |t: String| {
            parse(&t, Path::new("x.toml"), &SystemResolver)
                .unwrap()
                .daemon
                .traps
                .into_iter()
                .map(|t| t.child)
                .collect::<Vec<_>>()
        };
        assert!(traps(conf("", "")).is_empty());
        assert_eq!(traps(conf("start_action = \"trap\"", "")), ["one"]);
        let t = parse(
            &conf("start_action = \"trap\"", ""),
            Path::new("x.toml"),
            &SystemResolver,
        )
        .unwrap()
        .daemon
        .traps;
        assert_eq!(t[0].connection, "b");
        assert_eq!(t[0].peer, "192.0.2.2".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(t[0].remote_ts.len(), 1);
        assert_eq!(
            traps(conf("", "dpd_delay = \"30s\"\ndpd_action = \"trap\"")),
            ["one", "two"]
        );
    }

    #[test]
    fn path_mtu_and_mss_clamp() {
        let d = |t: &str| parse(t, Path::new("x.toml"), &SystemResolver).map(|l| l.daemon);
        let def = d("").unwrap();
        assert_eq!((def.path_mtu, def.mss_clamp), (1500, MssClamp::Off));
        assert_eq!(def.trap_queue, 32);
        assert_eq!(d("[daemon]\ntrap_queue = 0\n").unwrap().trap_queue, 0);
        assert!(d("[daemon]\ntrap_queue = 1000\n").is_err());
        let c = d("[daemon]\npath_mtu = 1400\nmss_clamp = true\n").unwrap();
        assert_eq!((c.path_mtu, c.mss_clamp), (1400, MssClamp::Auto));
        assert_eq!(
            d("[daemon]\nmss_clamp = 1300\n").unwrap().mss_clamp,
            MssClamp::Fixed(1300)
        );
        assert_eq!(
            d("[daemon]\nmss_clamp = false\n").unwrap().mss_clamp,
            MssClamp::Off
        );
        for (bad, needle) in [
            ("path_mtu = 100", "out of range"),
            ("mss_clamp = 70000", "out of range"),
            ("mss_clamp = -1", "out of range"),
            ("mss_clamp = \"yes\"", "mss_clamp"),
        ] {
            let e = d(&format!("[daemon]\n{bad}\n")).unwrap_err();
            assert!(e.to_string().contains(needle), "{bad}: {e}");
            assert_eq!(e.line, Some(2), "{bad}: {e}");
        }
    }

    #[test]
    fn rejects_bad_shunts_with_their_line() {
        let cases = [
            (
                "action = \"allow\"\nremote_ts = [\"10.0.0.0/8\"]",
                "expected \"pass\" or \"drop\"",
                3,
            ),
            ("action = \"pass\"\nremote_ts = []", "must not be empty", 4),
            (
                "action = \"pass\"\nremote_ts = [\"10.0.0.0/33\"]",
                "invalid traffic selector",
                4,
            ),
            (
                "action = \"pass\"\nremote_ts = [\"10.0.0.0/8[icmp/2048]\"]",
                "ICMP type/code",
                4,
            ),
            (
                "action = \"pass\"\nremote_ts = [\"10.0.0.0/8[0/80]\"]",
                "needs a protocol",
                4,
            ),
            (
                "action = \"drop\"\nlocal_ts = [\"::/0\"]\nremote_ts = [\"10.0.0.0/8\"]",
                "family",
                5,
            ),
            ("action = \"drop\"", "remote_ts", 2),
        ];
        for (body, needle, line) in cases {
            let text = format!("\n[shunts.x]\n{body}\n");
            let e = load(&text).unwrap_err();
            assert!(e.to_string().contains(needle), "{body}: {e}");
            assert_eq!(e.line, Some(line), "{body}: {e}");
        }
    }
}
