//! Traffic selectors as address/port ranges and their narrowing (RFC 7296 §2.9).
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use oxisec_wire::{TrafficSelector, TsType};

/// One traffic selector: an address range of one family, an IP protocol (0 =
/// any) and a port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TsRange {
    pub protocol: u8,
    pub start_port: u16,
    pub end_port: u16,
    pub start: IpAddr,
    pub end: IpAddr,
}

/// Addresses as 128-bit integers so both families share the range logic.
fn addr_key(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn addr_from_key(v4: bool, key: u128) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(key as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(key))
    }
}

impl TsRange {
    /// All addresses, protocols and ports of one family.
    pub fn any(v4: bool) -> TsRange {
        let (start, end) = if v4 {
            (
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V4(Ipv4Addr::BROADCAST),
            )
        } else {
            (
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::from(u128::MAX)),
            )
        };
        TsRange {
            protocol: 0,
            start_port: 0,
            end_port: 65535,
            start,
            end,
        }
    }

    /// A subnet with any protocol and port; the host bits of `addr` are ignored.
    pub fn subnet(addr: IpAddr, prefix: u8) -> Option<TsRange> {
        let bits: u32 = if addr.is_ipv4() { 32 } else { 128 };
        if prefix as u32 > bits {
            return None;
        }
        let host_bits = bits - prefix as u32;
        let host_mask: u128 = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let start = addr_key(addr) & !host_mask;
        let end = start | host_mask;
        let v4 = addr.is_ipv4();
        Some(TsRange {
            protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: addr_from_key(v4, start),
            end: addr_from_key(v4, end & if v4 { u32::MAX as u128 } else { u128::MAX }),
        })
    }

    pub fn is_ipv4(&self) -> bool {
        self.start.is_ipv4()
    }

    /// Whether the selector is well formed: one family, start ≤ end.
    pub fn is_valid(&self) -> bool {
        self.start.is_ipv4() == self.end.is_ipv4()
            && addr_key(self.start) <= addr_key(self.end)
            && self.start_port <= self.end_port
    }

    /// The part of `self` that is also in `other`, if any.
    pub fn intersect(&self, other: &TsRange) -> Option<TsRange> {
        if self.is_ipv4() != other.is_ipv4() || !self.is_valid() || !other.is_valid() {
            return None;
        }
        let protocol = match (self.protocol, other.protocol) {
            (0, p) | (p, 0) => p,
            (a, b) if a == b => a,
            _ => return None,
        };
        let start_port = self.start_port.max(other.start_port);
        let end_port = self.end_port.min(other.end_port);
        let start = addr_key(self.start).max(addr_key(other.start));
        let end = addr_key(self.end).min(addr_key(other.end));
        if start_port > end_port || start > end {
            return None;
        }
        let v4 = self.is_ipv4();
        Some(TsRange {
            protocol,
            start_port,
            end_port,
            start: addr_from_key(v4, start),
            end: addr_from_key(v4, end),
        })
    }

    /// Whether `self` lies entirely within `other`.
    pub fn is_subset_of(&self, other: &TsRange) -> bool {
        self.intersect(other).as_ref() == Some(self)
    }

    /// Whether a packet's address, protocol and port fall in the selector.
    /// `port` is `None` for protocols without ports (then only a full port range matches).
    pub fn contains(&self, addr: IpAddr, protocol: u8, port: Option<u16>) -> bool {
        if addr.is_ipv4() != self.is_ipv4() {
            return false;
        }
        let k = addr_key(addr);
        if k < addr_key(self.start) || k > addr_key(self.end) {
            return false;
        }
        if self.protocol != 0 && self.protocol != protocol {
            return false;
        }
        match port {
            Some(p) => self.start_port <= p && p <= self.end_port,
            None => self.start_port == 0 && self.end_port == 65535,
        }
    }

    /// The prefix length if the address range is exactly one CIDR block.
    pub fn as_prefix(&self) -> Option<(IpAddr, u8)> {
        let (s, e) = (addr_key(self.start), addr_key(self.end));
        let span = e.checked_sub(s)?;
        if span == u128::MAX {
            return Some((self.start, 0));
        }
        let size = span + 1;
        if !size.is_power_of_two() || s & span != 0 {
            return None;
        }
        let bits = if self.is_ipv4() { 32 } else { 128 };
        Some((self.start, (bits - size.trailing_zeros()) as u8))
    }

    pub fn to_wire(&self) -> TrafficSelector {
        TrafficSelector {
            ts_type: if self.is_ipv4() {
                TsType::IPV4_ADDR_RANGE
            } else {
                TsType::IPV6_ADDR_RANGE
            },
            ip_protocol: self.protocol,
            start_port: self.start_port,
            end_port: self.end_port,
            start_addr: self.start,
            end_addr: self.end,
        }
    }

    /// `None` for selector types other than IPv4/IPv6 ranges or inconsistent ones.
    pub fn from_wire(ts: &TrafficSelector) -> Option<TsRange> {
        let r = TsRange {
            protocol: ts.ip_protocol,
            start_port: ts.start_port,
            end_port: ts.end_port,
            start: ts.start_addr,
            end: ts.end_addr,
        };
        let type_ok = match ts.ts_type {
            TsType::IPV4_ADDR_RANGE => r.is_ipv4(),
            TsType::IPV6_ADDR_RANGE => !r.is_ipv4(),
            _ => false,
        };
        (type_ok && r.is_valid()).then_some(r)
    }
}

/// Narrowing (RFC 7296 §2.9): every non-empty intersection of a proposed
/// selector with a configured one, without duplicates.
pub fn narrow(proposed: &[TsRange], configured: &[TsRange]) -> Vec<TsRange> {
    let mut out: Vec<TsRange> = Vec::new();
    for c in configured {
        for p in proposed {
            if let Some(i) = p.intersect(c)
                && !out.contains(&i)
            {
                out.push(i);
            }
        }
    }
    out
}

/// Whether every selector of `got` lies inside some selector of `offered`.
pub fn all_within(got: &[TsRange], offered: &[TsRange]) -> bool {
    got.iter()
        .all(|g| offered.iter().any(|o| g.is_subset_of(o)))
}

impl fmt::Display for TsRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_prefix() {
            Some((a, p)) => write!(f, "{a}/{p}")?,
            None => write!(f, "{}..{}", self.start, self.end)?,
        }
        if self.protocol != 0 || self.start_port != 0 || self.end_port != 65535 {
            write!(f, "[{}", self.protocol)?;
            if self.start_port == self.end_port {
                write!(f, "/{}", self.start_port)?;
            } else if self.start_port != 0 || self.end_port != 65535 {
                write!(f, "/{}-{}", self.start_port, self.end_port)?;
            }
            write!(f, "]")?;
        }
        Ok(())
    }
}

/// Error for [`TsRange::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid traffic selector {0:?}: expected a subnet like 10.1.0.0/24, an address, or `dynamic`-free CIDR, optionally followed by [proto/port]"
)]
pub struct TsParseError(pub String);

impl FromStr for TsRange {
    type Err = TsParseError;

    /// Accepts `10.1.0.0/24`, `10.1.0.1`, `2001:db8::/64`, `0.0.0.0/0`,
    /// `10.1.0.0/24[tcp/443]`, `10.1.0.0/24[17]`, `10.1.0.0/24[udp/1000-2000]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || TsParseError(s.to_string());
        let s = s.trim();
        let (net, proto_part) = match s.find('[') {
            Some(i) => {
                let rest = s[i + 1..].strip_suffix(']').ok_or_else(err)?;
                (&s[..i], Some(rest))
            }
            None => (s, None),
        };
        let mut r = match net.split_once('/') {
            Some((a, p)) => {
                let addr: IpAddr = a.parse().map_err(|_| err())?;
                let prefix: u8 = p.parse().map_err(|_| err())?;
                TsRange::subnet(addr, prefix).ok_or_else(err)?
            }
            None => {
                let addr: IpAddr = net.parse().map_err(|_| err())?;
                let bits = if addr.is_ipv4() { 32 } else { 128 };
                TsRange::subnet(addr, bits).ok_or_else(err)?
            }
        };
        if let Some(pp) = proto_part {
            let (proto, ports) = match pp.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (pp, None),
            };
            r.protocol = match proto {
                "" | "any" => 0,
                "icmp" => 1,
                "tcp" => 6,
                "udp" => 17,
                "icmp6" | "ipv6-icmp" => 58,
                "sctp" => 132,
                n => n.parse().map_err(|_| err())?,
            };
            if let Some(ports) = ports {
                let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
                r.start_port = a.parse().map_err(|_| err())?;
                r.end_port = b.parse().map_err(|_| err())?;
                if r.start_port > r.end_port {
                    return Err(err());
                }
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> TsRange {
        s.parse().unwrap()
    }

    #[test]
    fn parses_subnets_hosts_and_ports() {
        assert_eq!(ts("10.1.0.0/24").to_string(), "10.1.0.0/24");
        assert_eq!(
            ts("10.1.0.9/24").start,
            "10.1.0.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(ts("10.1.0.1").to_string(), "10.1.0.1/32");
        assert_eq!(ts("2001:db8::/64").to_string(), "2001:db8::/64");
        assert_eq!(ts("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(ts("::/0").to_string(), "::/0");
        let t = ts("10.1.0.0/24[tcp/443]");
        assert_eq!((t.protocol, t.start_port, t.end_port), (6, 443, 443));
        assert_eq!(t.to_string(), "10.1.0.0/24[6/443]");
        assert!("10.1.0.0/33".parse::<TsRange>().is_err());
        assert!("10.1.0.0/24[tcp/9-1]".parse::<TsRange>().is_err());
        assert!("banana".parse::<TsRange>().is_err());
    }

    #[test]
    fn narrowing_intersects_and_rejects_disjoint() {
        let got = narrow(&[ts("10.0.0.0/8")], &[ts("10.1.0.0/24")]);
        assert_eq!(got, vec![ts("10.1.0.0/24")]);
        assert!(narrow(&[ts("192.0.2.0/24")], &[ts("10.1.0.0/24")]).is_empty());
        assert!(narrow(&[ts("2001:db8::/32")], &[ts("10.1.0.0/24")]).is_empty());
        let got = narrow(&[ts("10.1.0.0/24[tcp/80]")], &[ts("10.1.0.0/16")]);
        assert_eq!(got, vec![ts("10.1.0.0/24[tcp/80]")]);
    }

    #[test]
    fn subset_and_contains() {
        assert!(ts("10.1.0.0/25").is_subset_of(&ts("10.1.0.0/24")));
        assert!(!ts("10.1.0.0/23").is_subset_of(&ts("10.1.0.0/24")));
        let t = ts("10.1.0.0/24");
        assert!(t.contains("10.1.0.7".parse().unwrap(), 1, None));
        assert!(!t.contains("10.1.1.7".parse().unwrap(), 1, None));
        let p = ts("10.1.0.0/24[tcp/22]");
        assert!(p.contains("10.1.0.7".parse().unwrap(), 6, Some(22)));
        assert!(!p.contains("10.1.0.7".parse().unwrap(), 6, Some(23)));
        assert!(!p.contains("10.1.0.7".parse().unwrap(), 17, Some(22)));
    }

    #[test]
    fn wire_round_trip_and_rejects_mixed_family() {
        let t = ts("2001:db8:1::/48[udp/500-4500]");
        assert_eq!(TsRange::from_wire(&t.to_wire()), Some(t));
        let mut w = ts("10.1.0.0/24").to_wire();
        w.ts_type = TsType::IPV6_ADDR_RANGE;
        assert_eq!(TsRange::from_wire(&w), None);
        let mut w = ts("10.1.0.0/24").to_wire();
        std::mem::swap(&mut w.start_addr, &mut w.end_addr);
        assert_eq!(TsRange::from_wire(&w), None);
    }
}
