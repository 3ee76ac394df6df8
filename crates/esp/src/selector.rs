//! Traffic selectors as the data plane matches them (RFC 4301 §4.4.1.1,
//! RFC 7296 §3.13.1): an address range of one family, an IP protocol (0 = any)
//! and a port range.
//!
//! Addresses are held as `u128` (IPv4 in the low 32 bits) so that matching is
//! two integer comparisons. The IKE crate's own range type stays there; this
//! one converts from the wire's [`TrafficSelector`].
use core::net::IpAddr;

use oxisec_wire::{TrafficSelector, TsType};

use crate::inner::FlowKey;

/// Address family of a selector or packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub fn of(addr: IpAddr) -> IpFamily {
        match addr {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }
    fn max_addr(self) -> u128 {
        match self {
            IpFamily::V4 => u128::from(u32::MAX),
            IpFamily::V6 => u128::MAX,
        }
    }
}

/// An address as the integer selectors compare.
pub fn addr_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// One traffic selector. Ranges are inclusive.
///
/// Ports: `0..=65535` matches every packet. A narrower range matches packets
/// whose port is in it; for ICMP and ICMPv6 the "port" is `type << 8 | code`
/// (RFC 7296 §3.13.1), applied to both ends. The OPAQUE range (`start_port =
/// 65535`, `end_port = 0`, RFC 4301) matches only packets whose ports are
/// unavailable (non-first fragments, protocols without ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Selector {
    pub family: IpFamily,
    pub start_addr: u128,
    pub end_addr: u128,
    /// 0 = any protocol.
    pub protocol: u8,
    pub start_port: u16,
    pub end_port: u16,
}

/// The selector cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("address families differ")]
    FamilyMismatch,
    #[error("start address above end address")]
    EmptyRange,
    #[error("prefix length too long for the family")]
    BadPrefix,
    #[error("unknown traffic selector type")]
    UnknownType,
}

impl Selector {
    /// Every address of `family`, any protocol and port.
    pub fn any(family: IpFamily) -> Selector {
        Selector {
            family,
            start_addr: 0,
            end_addr: family.max_addr(),
            protocol: 0,
            start_port: 0,
            end_port: u16::MAX,
        }
    }

    /// One address, any protocol and port.
    pub fn host(addr: IpAddr) -> Selector {
        let a = addr_bits(addr);
        Selector {
            start_addr: a,
            end_addr: a,
            ..Selector::any(IpFamily::of(addr))
        }
    }

    /// An inclusive address range, any protocol and port.
    pub fn range(start: IpAddr, end: IpAddr) -> Result<Selector, SelectorError> {
        if IpFamily::of(start) != IpFamily::of(end) {
            return Err(SelectorError::FamilyMismatch);
        }
        let (s, e) = (addr_bits(start), addr_bits(end));
        if s > e {
            return Err(SelectorError::EmptyRange);
        }
        Ok(Selector {
            start_addr: s,
            end_addr: e,
            ..Selector::any(IpFamily::of(start))
        })
    }

    /// A CIDR prefix (`addr`'s host bits are ignored), any protocol and port.
    pub fn prefix(addr: IpAddr, len: u8) -> Result<Selector, SelectorError> {
        let family = IpFamily::of(addr);
        let width: u32 = match family {
            IpFamily::V4 => 32,
            IpFamily::V6 => 128,
        };
        if u32::from(len) > width {
            return Err(SelectorError::BadPrefix);
        }
        let host_bits = width - u32::from(len);
        let host_mask = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let start = addr_bits(addr) & !host_mask & family.max_addr();
        Ok(Selector {
            start_addr: start,
            end_addr: start | host_mask,
            ..Selector::any(family)
        })
    }

    /// The same selector narrowed to one IP protocol.
    pub fn with_protocol(self, protocol: u8) -> Selector {
        Selector { protocol, ..self }
    }

    /// The same selector narrowed to a port range.
    pub fn with_ports(self, start_port: u16, end_port: u16) -> Selector {
        Selector {
            start_port,
            end_port,
            ..self
        }
    }

    fn any_port(&self) -> bool {
        self.start_port == 0 && self.end_port == u16::MAX
    }

    fn opaque_ports(&self) -> bool {
        self.start_port == u16::MAX && self.end_port == 0
    }

    /// Whether `addr` is in the address range.
    pub fn contains_addr(&self, addr: IpAddr) -> bool {
        IpFamily::of(addr) == self.family && {
            let a = addr_bits(addr);
            self.start_addr <= a && a <= self.end_addr
        }
    }

    /// Whether one end of a packet (its address and that end's port) matches.
    pub fn matches(&self, addr: IpAddr, protocol: u8, port: Option<u16>) -> bool {
        if !self.contains_addr(addr) {
            return false;
        }
        if self.protocol != 0 && self.protocol != protocol {
            return false;
        }
        if self.any_port() {
            return true;
        }
        match port {
            Some(p) => self.start_port <= p && p <= self.end_port,
            None => self.opaque_ports(),
        }
    }

    /// Whether the source end of `flow` matches.
    pub fn matches_src(&self, flow: &FlowKey) -> bool {
        self.matches(flow.src, flow.protocol, flow.src_port)
    }

    /// Whether the destination end of `flow` matches.
    pub fn matches_dst(&self, flow: &FlowKey) -> bool {
        self.matches(flow.dst, flow.protocol, flow.dst_port)
    }
}

impl TryFrom<&TrafficSelector> for Selector {
    type Error = SelectorError;

    fn try_from(ts: &TrafficSelector) -> Result<Selector, SelectorError> {
        let expected = if ts.ts_type == TsType::IPV4_ADDR_RANGE {
            IpFamily::V4
        } else if ts.ts_type == TsType::IPV6_ADDR_RANGE {
            IpFamily::V6
        } else {
            return Err(SelectorError::UnknownType);
        };
        let r = Selector::range(ts.start_addr, ts.end_addr)?;
        if r.family != expected {
            return Err(SelectorError::FamilyMismatch);
        }
        Ok(r.with_protocol(ts.ip_protocol)
            .with_ports(ts.start_port, ts.end_port))
    }
}

/// Whether any selector of `set` matches the given end of a packet. An empty
/// set matches nothing.
pub fn any_matches(set: &[Selector], addr: IpAddr, protocol: u8, port: Option<u16>) -> bool {
    set.iter().any(|s| s.matches(addr, protocol, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes() {
        let s = Selector::prefix(ip("192.0.2.77"), 24).unwrap();
        assert!(s.contains_addr(ip("192.0.2.0")));
        assert!(s.contains_addr(ip("192.0.2.255")));
        assert!(!s.contains_addr(ip("192.0.3.0")));
        assert!(!s.contains_addr(ip("::ffff:192.0.2.1")));
        let all4 = Selector::prefix(ip("10.0.0.1"), 0).unwrap();
        assert_eq!(all4, Selector::any(IpFamily::V4));
        let all6 = Selector::prefix(ip("2001:db8::1"), 0).unwrap();
        assert_eq!(all6, Selector::any(IpFamily::V6));
        let h = Selector::prefix(ip("2001:db8::1"), 128).unwrap();
        assert_eq!(h, Selector::host(ip("2001:db8::1")));
        let s6 = Selector::prefix(ip("2001:db8:1::"), 48).unwrap();
        assert!(s6.contains_addr(ip("2001:db8:1:ffff::1")));
        assert!(!s6.contains_addr(ip("2001:db8:2::1")));
        assert_eq!(
            Selector::prefix(ip("10.0.0.0"), 33),
            Err(SelectorError::BadPrefix)
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(
            Selector::range(ip("10.0.0.2"), ip("10.0.0.1")),
            Err(SelectorError::EmptyRange)
        );
        assert_eq!(
            Selector::range(ip("10.0.0.2"), ip("::1")),
            Err(SelectorError::FamilyMismatch)
        );
        let r = Selector::range(ip("10.0.0.2"), ip("10.0.0.4")).unwrap();
        assert!(r.contains_addr(ip("10.0.0.2")) && r.contains_addr(ip("10.0.0.4")));
        assert!(!r.contains_addr(ip("10.0.0.5")) && !r.contains_addr(ip("10.0.0.1")));
    }

    #[test]
    fn protocol_and_ports() {
        let web = Selector::any(IpFamily::V4)
            .with_protocol(6)
            .with_ports(443, 443);
        let a = ip("198.51.100.1");
        assert!(web.matches(a, 6, Some(443)));
        assert!(!web.matches(a, 6, Some(80)));
        assert!(!web.matches(a, 17, Some(443)));
        assert!(!web.matches(a, 6, None), "fragment without ports");
        let udp = Selector::any(IpFamily::V4).with_protocol(17);
        assert!(udp.matches(a, 17, None));
        let opaque = Selector::any(IpFamily::V4).with_ports(u16::MAX, 0);
        assert!(opaque.matches(a, 6, None));
        assert!(!opaque.matches(a, 6, Some(1)));
        // ICMP echo request: type 8, code 0.
        let echo = Selector::any(IpFamily::V4)
            .with_protocol(1)
            .with_ports(8 << 8, 8 << 8);
        assert!(echo.matches(a, 1, Some(8 << 8)));
        assert!(!echo.matches(a, 1, Some(0)));
    }

    #[test]
    fn from_wire_selector() {
        let ts = TrafficSelector {
            ts_type: TsType::IPV4_ADDR_RANGE,
            ip_protocol: 17,
            start_port: 53,
            end_port: 53,
            start_addr: ip("192.0.2.0"),
            end_addr: ip("192.0.2.255"),
        };
        let s = Selector::try_from(&ts).unwrap();
        assert!(s.matches(ip("192.0.2.9"), 17, Some(53)));
        let bad = TrafficSelector {
            ts_type: TsType::IPV6_ADDR_RANGE,
            ..ts
        };
        assert_eq!(Selector::try_from(&bad), Err(SelectorError::FamilyMismatch));
        let unknown = TrafficSelector {
            ts_type: TsType(9),
            ..ts
        };
        assert_eq!(
            Selector::try_from(&unknown),
            Err(SelectorError::UnknownType)
        );
    }
}
