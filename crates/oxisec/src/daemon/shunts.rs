//! Pass and drop shunts (RFC 4301 BYPASS / DISCARD) enforced where a
//! userspace data plane can enforce them: in the kernel's routing decision,
//! before a packet reaches the TUN device, plus the SPD entries the packet
//! path checks first.
//!
//! A packet read from the TUN device can no longer leave in clear (the
//! packet path has no raw socket to send it with, and must not), so "bypass"
//! means: never route it into the TUN device. The tunnel routes
//! (`routes.rs`) live in the main table, so the shunts are policy-routing
//! rules (`ip rule`), which the kernel consults before the main table and
//! which match on source and destination prefix, IP protocol and ports —
//! everything a shunt's selectors say:
//!
//! ```text
//! prio 4300  ipproto udp sport 500 | 4500  lookup main  (our own IKE/ESP)
//! prio 4301  [from L] [to R] [ipproto P] [sport S] [dport D] lookup 4301   (1st shunt, pass)
//! prio 4302  [from L] [to R] [ipproto P] [sport S] [dport D] lookup 4302   (2nd shunt, drop)
//! ...        (one priority per shunt, in file order: first match wins)
//! table 4301 (pass): a copy of the main table's routes that do not use the
//!            TUN device, taken at start: the normal path
//! table 4302 (drop): default dev oxisec0 — into the TUN device, where the
//!            shunt's SPD DISCARD entry drops the packet and counts it
//!            ("out: policy_discard" in `oxisec status`)
//! ```
//!
//! The first rule keeps a drop shunt that covers a peer (`0.0.0.0/0[udp]`)
//! from swallowing the daemon's own IKE and ESP. A drop shunt sends packets
//! into the TUN device rather than to a `blackhole` route so that every drop
//! is counted by reason in one place; the SPD DISCARD entry also drops what
//! arrives there by any other route (a child's route), before any PROTECT.
//! A pass shunt's packet that reaches the TUN device anyway (its rule was
//! deleted by hand) is dropped and counted as "out: policy_bypass", never
//! protected: that would contradict the policy.
//!
//! Our rules carry routing protocol [`RULE_PROTOCOL`] so that cleanup
//! (on stop, and on start after a crash) removes nothing else.
//!
//! Limits: the pass table is a snapshot of the main table at start (a later
//! change of the default gateway is not followed until a restart); rules
//! match the source address chosen by the socket, so host-originated
//! traffic matches a narrower `local_ts` only when it binds its source
//! (forwarded traffic always has one).
use std::net::{Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use netlink_packet_route::route::{
    RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage, RulePortRange};
use netlink_packet_route::{AddressFamily, IpProtocol};
use rtnetlink::{Handle, IpVersion, RouteMessageBuilder};
use tracing::{debug, info, warn};

use super::routes::{Prefix, range_to_prefixes};
use crate::config::{Shunt, ShuntAction};

/// Routing table of the pass shunts' normal path (RFC 4301's number).
pub const PASS_TABLE: u32 = 4301;
/// Routing table that sends drop shunts into the TUN device.
pub const DROP_TABLE: u32 = 4302;
/// Priority of the rule that exempts our own IKE/ESP; shunt `i` gets
/// `RULE_PRIORITY + 1 + i`.
pub const RULE_PRIORITY: u32 = 4300;
/// Priorities above [`RULE_PRIORITY`] that are ours (cleanup of a crashed
/// run looks at `RULE_PRIORITY..=RULE_PRIORITY + MAX_SHUNTS`).
pub const MAX_SHUNTS: u32 = 1000;
/// The main routing table.
const MAIN_TABLE: u32 = 254;
/// The `protocol` our rules carry (an unassigned routing protocol number):
/// cleanup removes only rules with it, never an administrator's rule that
/// happens to use one of our priorities.
pub const RULE_PROTOCOL: u8 = 243;

/// One routing rule, as [`plan`] computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub v4: bool,
    pub priority: u32,
    pub src: Option<Prefix>,
    pub dst: Option<Prefix>,
    /// 0: any.
    pub protocol: u8,
    pub sport: Option<(u16, u16)>,
    pub dport: Option<(u16, u16)>,
    pub table: u32,
}

/// `None` for a prefix that matches everything (no rule attribute needed).
fn narrow(p: Prefix) -> Option<Prefix> {
    (p.1 != 0).then_some(p)
}

fn ports(start: u16, end: u16) -> Option<(u16, u16)> {
    (start != 0 || end != u16::MAX).then_some((start, end))
}

/// The rules that enforce `shunts` (none when there are none): the
/// exemption of our own IKE/ESP, then per shunt one rule per local × remote
/// prefix pair of one family and compatible protocol.
pub fn plan(shunts: &[Shunt]) -> Vec<RuleSpec> {
    let mut out = Vec::new();
    if shunts.is_empty() {
        return out;
    }
    for v4 in [true, false] {
        for port in [500, 4500] {
            out.push(RuleSpec {
                v4,
                priority: RULE_PRIORITY,
                src: None,
                dst: None,
                protocol: 17,
                sport: Some((port, port)),
                dport: None,
                table: MAIN_TABLE,
            });
        }
    }
    for (i, s) in shunts.iter().enumerate().take(MAX_SHUNTS as usize) {
        let table = match s.action {
            ShuntAction::Pass => PASS_TABLE,
            ShuntAction::Drop => DROP_TABLE,
        };
        let priority = RULE_PRIORITY + 1 + i as u32;
        for l in &s.local_ts {
            for r in &s.remote_ts {
                if l.is_ipv4() != r.is_ipv4() {
                    continue;
                }
                let protocol = match (l.protocol, r.protocol) {
                    (0, p) | (p, 0) => p,
                    (a, b) if a == b => a,
                    // Different protocols on each end: matches no packet.
                    _ => continue,
                };
                for src in range_to_prefixes(l.start, l.end) {
                    for dst in range_to_prefixes(r.start, r.end) {
                        out.push(RuleSpec {
                            v4: l.is_ipv4(),
                            priority,
                            src: narrow(src),
                            dst: narrow(dst),
                            protocol,
                            sport: ports(l.start_port, l.end_port),
                            dport: ports(r.start_port, r.end_port),
                            table,
                        });
                    }
                }
            }
        }
    }
    out
}

/// The netlink form of a rule.
pub(super) fn rule_message(r: &RuleSpec) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = if r.v4 {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.action = RuleAction::ToTable;
    if r.table > 255 {
        m.header.table = RouteHeader::RT_TABLE_UNSPEC;
    } else {
        m.header.table = r.table as u8;
    }
    m.attributes.push(RuleAttribute::Table(r.table));
    m.attributes.push(RuleAttribute::Priority(r.priority));
    m.attributes
        .push(RuleAttribute::Protocol(RouteProtocol::from(RULE_PROTOCOL)));
    if let Some((a, len)) = r.src {
        m.header.src_len = len;
        m.attributes.push(RuleAttribute::Source(a));
    }
    if let Some((a, len)) = r.dst {
        m.header.dst_len = len;
        m.attributes.push(RuleAttribute::Destination(a));
    }
    if r.protocol != 0 {
        m.attributes
            .push(RuleAttribute::IpProtocol(IpProtocol::from(r.protocol)));
    }
    if let Some((start, end)) = r.sport {
        m.attributes
            .push(RuleAttribute::SourcePortRange(RulePortRange { start, end }));
    }
    if let Some((start, end)) = r.dport {
        m.attributes
            .push(RuleAttribute::DestinationPortRange(RulePortRange {
                start,
                end,
            }));
    }
    m
}

/// `ip rule` syntax, for the log.
pub(super) fn describe(r: &RuleSpec) -> String {
    let mut s = format!("prio {}", r.priority);
    if let Some((a, l)) = r.src {
        s += &format!(" from {a}/{l}");
    }
    if let Some((a, l)) = r.dst {
        s += &format!(" to {a}/{l}");
    }
    if r.protocol != 0 {
        s += &format!(" ipproto {}", r.protocol);
    }
    if let Some((a, b)) = r.sport {
        s += &format!(" sport {a}-{b}");
    }
    if let Some((a, b)) = r.dport {
        s += &format!(" dport {a}-{b}");
    }
    s + &format!(" lookup {}", r.table)
}

pub(super) fn route_table(m: &RouteMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table))
}

pub(super) fn rule_priority(m: &RuleMessage) -> Option<u32> {
    m.attributes.iter().find_map(|a| match a {
        RuleAttribute::Priority(p) => Some(*p),
        _ => None,
    })
}

/// Whether a rule is one of ours: our protocol and one of our priorities.
fn is_ours(m: &RuleMessage) -> bool {
    m.attributes
        .contains(&RuleAttribute::Protocol(RouteProtocol::from(RULE_PROTOCOL)))
        && rule_priority(m)
            .is_some_and(|p| (RULE_PRIORITY..=RULE_PRIORITY + MAX_SHUNTS).contains(&p))
}

/// The shunts' rules and tables on one rtnetlink connection.
pub struct Shunts {
    handle: Handle,
    tun_index: u32,
}

impl Shunts {
    /// Connects to rtnetlink and removes what a previous run may have
    /// left behind (a crash leaves rules that would misroute traffic).
    pub async fn new(tun_index: u32) -> std::io::Result<Shunts> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        let s = Shunts { handle, tun_index };
        s.remove_all().await;
        Ok(s)
    }

    /// Installs the tables and rules for `shunts` (nothing when empty).
    pub async fn install(&self, shunts: &[Shunt]) {
        let rules = plan(shunts);
        if rules.is_empty() {
            return;
        }
        let (pass, drop) = (
            shunts.iter().any(|s| s.action == ShuntAction::Pass),
            shunts.iter().any(|s| s.action == ShuntAction::Drop),
        );
        if pass {
            self.copy_main_to_pass().await;
        }
        if drop {
            for msg in [
                RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(Ipv4Addr::UNSPECIFIED, 0)
                    .output_interface(self.tun_index)
                    .table_id(DROP_TABLE)
                    .build(),
                RouteMessageBuilder::<Ipv6Addr>::new()
                    .destination_prefix(Ipv6Addr::UNSPECIFIED, 0)
                    .output_interface(self.tun_index)
                    .table_id(DROP_TABLE)
                    .build(),
            ] {
                if let Err(e) = self.handle.route().add(msg).replace().execute().await {
                    warn!("drop shunts: cannot route table {DROP_TABLE} into the TUN device: {e}");
                }
            }
        }
        for r in &rules {
            let mut req = self.handle.rule().add();
            *req.message_mut() = rule_message(r);
            match req.execute().await {
                Ok(()) => debug!("shunt rule added: {}", describe(r)),
                Err(e) => warn!("cannot add shunt rule {}: {e}", describe(r)),
            }
        }
        info!(
            "{} shunt(s) enforced by {} routing rule(s) (tables {PASS_TABLE}/{DROP_TABLE})",
            shunts.len(),
            rules.len()
        );
    }

    /// Copies the main table's unicast routes that do not use the TUN
    /// device into [`PASS_TABLE`]: there, the longest-prefix match gives
    /// the path a packet would take without the tunnel.
    async fn copy_main_to_pass(&self) {
        let mut copied = 0;
        for dump in [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ] {
            let mut stream = self.handle.route().get(dump).execute();
            let mut found = Vec::new();
            loop {
                match stream.try_next().await {
                    Ok(Some(m)) => found.push(m),
                    Ok(None) => break,
                    Err(e) => {
                        warn!("pass shunts: cannot list routes: {e}");
                        break;
                    }
                }
            }
            for m in found {
                if route_table(&m) != MAIN_TABLE
                    || m.header.kind != RouteType::Unicast
                    || m.attributes.contains(&RouteAttribute::Oif(self.tun_index))
                {
                    continue;
                }
                let mut c = RouteMessage::default();
                c.header = m.header.clone();
                c.header.table = RouteHeader::RT_TABLE_UNSPEC;
                c.header.flags = Default::default();
                c.attributes = m
                    .attributes
                    .into_iter()
                    .filter(|a| {
                        matches!(
                            a,
                            RouteAttribute::Destination(_)
                                | RouteAttribute::Gateway(_)
                                | RouteAttribute::PrefSource(_)
                                | RouteAttribute::Oif(_)
                                | RouteAttribute::Priority(_)
                                | RouteAttribute::MultiPath(_)
                                | RouteAttribute::Via(_)
                        )
                    })
                    .collect();
                c.attributes.push(RouteAttribute::Table(PASS_TABLE));
                match self.handle.route().add(c).replace().execute().await {
                    Ok(()) => copied += 1,
                    Err(e) => debug!("pass shunts: cannot copy a route: {e}"),
                }
            }
        }
        if copied == 0 {
            warn!(
                "pass shunts: the main table has no route outside the TUN device to copy; pass traffic is dropped"
            );
        }
        debug!("pass shunts: {copied} route(s) copied into table {PASS_TABLE}");
    }

    /// Removes every rule with one of our priorities and empties both
    /// tables (shutdown, and start after a crash).
    pub async fn remove_all(&self) {
        for v in [IpVersion::V4, IpVersion::V6] {
            let rules: Vec<RuleMessage> = self
                .handle
                .rule()
                .get(v)
                .execute()
                .try_collect()
                .await
                .unwrap_or_default();
            for r in rules {
                if is_ours(&r)
                    && let Err(e) = self.handle.rule().del(r).execute().await
                {
                    debug!("cannot remove a shunt rule: {e}");
                }
            }
        }
        for dump in [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ] {
            let routes: Vec<RouteMessage> = self
                .handle
                .route()
                .get(dump)
                .execute()
                .try_collect()
                .await
                .unwrap_or_default();
            for m in routes {
                let t = route_table(&m);
                if (t == PASS_TABLE || t == DROP_TABLE)
                    && let Err(e) = self.handle.route().del(m).execute().await
                {
                    debug!("cannot remove a shunt route: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shunt(action: ShuntAction, local: &[&str], remote: &[&str]) -> Shunt {
        Shunt {
            name: "t".into(),
            action,
            local_ts: local.iter().map(|s| s.parse().unwrap()).collect(),
            remote_ts: remote.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    fn pfx(s: &str) -> Option<Prefix> {
        let (a, l) = s.split_once('/').unwrap();
        Some((a.parse().unwrap(), l.parse().unwrap()))
    }

    #[test]
    fn no_shunts_no_rules() {
        assert!(plan(&[]).is_empty());
    }

    #[test]
    fn shunts_become_ordered_rules_after_our_own_exemption() {
        let rules = plan(&[
            shunt(
                ShuntAction::Pass,
                &["0.0.0.0/0", "::/0"],
                &["203.0.113.0/24[tcp/22]"],
            ),
            shunt(
                ShuntAction::Drop,
                &["198.51.100.0/24[tcp]", "::/0"],
                &["203.0.113.9", "203.0.113.10[udp/53]", "2001:db8::/32"],
            ),
        ]);
        // 4 exemptions (v4/v6 × 500/4500), 1 pass rule (the v6 local has
        // no v4 partner), drop: v4 local × 2 v4 remotes (udp ≠ tcp: none),
        // v6 × v6: 1.
        assert_eq!(rules.len(), 4 + 1 + 1 + 1, "{rules:#?}");
        assert!(
            rules[..4]
                .iter()
                .all(|r| r.priority == RULE_PRIORITY && r.table == MAIN_TABLE && r.protocol == 17)
        );
        assert_eq!(
            rules[4],
            RuleSpec {
                v4: true,
                priority: RULE_PRIORITY + 1,
                src: None,
                dst: pfx("203.0.113.0/24"),
                protocol: 6,
                sport: None,
                dport: Some((22, 22)),
                table: PASS_TABLE,
            }
        );
        assert_eq!(
            describe(&rules[4]),
            "prio 4301 to 203.0.113.0/24 ipproto 6 dport 22-22 lookup 4301"
        );
        assert_eq!(
            rules[5],
            RuleSpec {
                v4: true,
                priority: RULE_PRIORITY + 2,
                src: pfx("198.51.100.0/24"),
                dst: pfx("203.0.113.9/32"),
                protocol: 6,
                sport: None,
                dport: None,
                table: DROP_TABLE,
            }
        );
        assert!(!rules[6].v4 && rules[6].src.is_none() && rules[6].table == DROP_TABLE);
    }

    #[test]
    fn rule_messages_carry_every_selector() {
        let r = RuleSpec {
            v4: false,
            priority: 4305,
            src: pfx("2001:db8:1::/48"),
            dst: pfx("2001:db8:2::/48"),
            protocol: 17,
            sport: Some((1000, 2000)),
            dport: Some((53, 53)),
            table: PASS_TABLE,
        };
        let m = rule_message(&r);
        assert_eq!(m.header.family, AddressFamily::Inet6);
        assert_eq!((m.header.src_len, m.header.dst_len), (48, 48));
        assert_eq!(m.header.action, RuleAction::ToTable);
        for a in [
            RuleAttribute::Table(PASS_TABLE),
            RuleAttribute::Priority(4305),
            RuleAttribute::IpProtocol(IpProtocol::Udp),
            RuleAttribute::SourcePortRange(RulePortRange {
                start: 1000,
                end: 2000,
            }),
            RuleAttribute::DestinationPortRange(RulePortRange { start: 53, end: 53 }),
        ] {
            assert!(m.attributes.contains(&a), "{a:?} missing in {m:?}");
        }
        assert_eq!(rule_priority(&m), Some(4305));
        assert!(is_ours(&m));
        let mut admin = m.clone();
        admin
            .attributes
            .retain(|a| !matches!(a, RuleAttribute::Protocol(_)));
        assert!(!is_ours(&admin), "an administrator's rule at our priority");
    }
}
