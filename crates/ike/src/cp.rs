//! The configuration payload's attributes (RFC 7296 §3.15): what a client
//! asks for in IKE_AUTH and what a gateway answers — virtual addresses, DNS
//! servers, DNS domains (RFC 8598) and split-tunnel subnets.
//!
//! The wire codec keeps attributes as opaque bytes; this module gives them
//! meaning. Every length is checked: an attribute of the wrong size is
//! skipped (and counted by the caller), never trusted.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use oxisec_wire::{CfgAttrType, CfgType, ConfigAttribute, CpPayload};

use crate::ts::TsRange;

/// The longest DNS domain we accept or send (RFC 1035: 255 octets).
const MAX_DOMAIN: usize = 255;
/// At most this many attributes of each kind are taken from a reply: a
/// hostile gateway must not make us configure thousands of DNS servers.
const MAX_EACH: usize = 16;

/// What a client asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// One entry per address wanted: `None` for any address of that family
    /// (an attribute with an empty value), `Some` to ask for that address.
    pub v4: Option<Option<Ipv4Addr>>,
    pub v6: Option<Option<Ipv6Addr>>,
}

/// What a gateway assigns (CFG_REPLY).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub addresses: Vec<IpAddr>,
    pub dns: Vec<IpAddr>,
    pub domains: Vec<String>,
    pub subnets: Vec<TsRange>,
}

fn attr(ty: CfgAttrType, value: Vec<u8>) -> ConfigAttribute {
    ConfigAttribute { ty, value }
}

impl Request {
    /// The request for the configured `vips` (0.0.0.0 / :: for any).
    pub fn for_vips(vips: &[IpAddr]) -> Request {
        let mut r = Request::default();
        for v in vips {
            match v {
                IpAddr::V4(a) => r.v4 = Some((!a.is_unspecified()).then_some(*a)),
                IpAddr::V6(a) => r.v6 = Some((!a.is_unspecified()).then_some(*a)),
            }
        }
        r
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_none() && self.v6.is_none()
    }

    /// CP(CFG_REQUEST): the addresses, and empty DNS and domain attributes
    /// so the gateway knows we take them.
    pub fn to_payload(&self) -> CpPayload {
        let mut attributes = Vec::new();
        if let Some(a) = self.v4 {
            let value = a.map(|a| a.octets().to_vec()).unwrap_or_default();
            attributes.push(attr(CfgAttrType::INTERNAL_IP4_ADDRESS, value));
            attributes.push(attr(CfgAttrType::INTERNAL_IP4_DNS, Vec::new()));
        }
        if let Some(a) = self.v6 {
            // RFC 7296 §3.15.1: 16 octets of address and a prefix length.
            let value = a
                .map(|a| [&a.octets()[..], &[128]].concat())
                .unwrap_or_default();
            attributes.push(attr(CfgAttrType::INTERNAL_IP6_ADDRESS, value));
            attributes.push(attr(CfgAttrType::INTERNAL_IP6_DNS, Vec::new()));
        }
        if !self.is_empty() {
            attributes.push(attr(CfgAttrType::INTERNAL_DNS_DOMAIN, Vec::new()));
        }
        CpPayload {
            cfg_type: CfgType::CFG_REQUEST,
            attributes,
        }
    }

    /// Reads a client's CFG_REQUEST. A malformed address attribute counts
    /// as a request for any address of that family (its value is only a
    /// hint); `None` if the payload is not a request.
    pub fn parse(cp: &CpPayload) -> Option<Request> {
        if cp.cfg_type != CfgType::CFG_REQUEST {
            return None;
        }
        let mut r = Request::default();
        for a in &cp.attributes {
            match a.ty {
                CfgAttrType::INTERNAL_IP4_ADDRESS if r.v4.is_none() => {
                    let want = <[u8; 4]>::try_from(a.value.as_slice())
                        .ok()
                        .map(Ipv4Addr::from)
                        .filter(|a| !a.is_unspecified());
                    r.v4 = Some(want);
                }
                CfgAttrType::INTERNAL_IP6_ADDRESS if r.v6.is_none() => {
                    let want = a
                        .value
                        .get(..16)
                        .filter(|_| a.value.len() == 17)
                        .and_then(|b| <[u8; 16]>::try_from(b).ok())
                        .map(Ipv6Addr::from)
                        .filter(|a| !a.is_unspecified());
                    r.v6 = Some(want);
                }
                _ => {}
            }
        }
        Some(r)
    }
}

impl Reply {
    /// CP(CFG_REPLY) with the assigned addresses and the gateway's
    /// attributes for the families it assigned.
    pub fn to_payload(&self) -> CpPayload {
        let mut attributes = Vec::new();
        for a in &self.addresses {
            attributes.push(match a {
                IpAddr::V4(a) => attr(CfgAttrType::INTERNAL_IP4_ADDRESS, a.octets().to_vec()),
                IpAddr::V6(a) => attr(
                    CfgAttrType::INTERNAL_IP6_ADDRESS,
                    [&a.octets()[..], &[128]].concat(),
                ),
            });
        }
        let has_v4 = self.addresses.iter().any(IpAddr::is_ipv4);
        let has_v6 = self.addresses.iter().any(IpAddr::is_ipv6);
        for d in &self.dns {
            match d {
                IpAddr::V4(a) if has_v4 => {
                    attributes.push(attr(CfgAttrType::INTERNAL_IP4_DNS, a.octets().to_vec()))
                }
                IpAddr::V6(a) if has_v6 => {
                    attributes.push(attr(CfgAttrType::INTERNAL_IP6_DNS, a.octets().to_vec()))
                }
                _ => {}
            }
        }
        for d in self.domains.iter().filter(|d| d.len() <= MAX_DOMAIN) {
            attributes.push(attr(
                CfgAttrType::INTERNAL_DNS_DOMAIN,
                d.as_bytes().to_vec(),
            ));
        }
        for s in &self.subnets {
            let Some((net, prefix)) = s.as_prefix() else {
                continue;
            };
            match net {
                IpAddr::V4(n) if has_v4 => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                    let value = [n.octets(), mask.to_be_bytes()].concat();
                    attributes.push(attr(CfgAttrType::INTERNAL_IP4_SUBNET, value));
                }
                IpAddr::V6(n) if has_v6 => {
                    let value = [&n.octets()[..], &[prefix]].concat();
                    attributes.push(attr(CfgAttrType::INTERNAL_IP6_SUBNET, value));
                }
                _ => {}
            }
        }
        CpPayload {
            cfg_type: CfgType::CFG_REPLY,
            attributes,
        }
    }

    /// Reads a gateway's CFG_REPLY; attributes of the wrong size, unknown
    /// types, unusable addresses (unspecified, multicast) and domains that
    /// are not plain host names are skipped. `None` if it is not a reply.
    pub fn parse(cp: &CpPayload) -> Option<Reply> {
        if cp.cfg_type != CfgType::CFG_REPLY {
            return None;
        }
        let mut r = Reply::default();
        let usable = |a: &IpAddr| !a.is_unspecified() && !a.is_multicast() && !a.is_loopback();
        for a in &cp.attributes {
            let v = a.value.as_slice();
            match a.ty {
                CfgAttrType::INTERNAL_IP4_ADDRESS => {
                    if let Ok(b) = <[u8; 4]>::try_from(v) {
                        r.addresses.push(IpAddr::V4(b.into()));
                    }
                }
                CfgAttrType::INTERNAL_IP6_ADDRESS => {
                    if v.len() == 17
                        && let Ok(b) = <[u8; 16]>::try_from(&v[..16])
                    {
                        r.addresses.push(IpAddr::V6(b.into()));
                    }
                }
                CfgAttrType::INTERNAL_IP4_DNS => {
                    if let Ok(b) = <[u8; 4]>::try_from(v) {
                        r.dns.push(IpAddr::V4(b.into()));
                    }
                }
                CfgAttrType::INTERNAL_IP6_DNS => {
                    if let Ok(b) = <[u8; 16]>::try_from(v) {
                        r.dns.push(IpAddr::V6(b.into()));
                    }
                }
                CfgAttrType::INTERNAL_DNS_DOMAIN => {
                    if let Some(d) = domain(v) {
                        r.domains.push(d);
                    }
                }
                CfgAttrType::INTERNAL_IP4_SUBNET if v.len() == 8 => {
                    let net = Ipv4Addr::new(v[0], v[1], v[2], v[3]);
                    let mask = u32::from_be_bytes([v[4], v[5], v[6], v[7]]);
                    // Only contiguous masks describe a subnet.
                    if mask.leading_ones() + mask.trailing_zeros() == 32
                        && let Some(t) = TsRange::subnet(IpAddr::V4(net), mask.leading_ones() as u8)
                    {
                        r.subnets.push(t);
                    }
                }
                CfgAttrType::INTERNAL_IP6_SUBNET => {
                    if v.len() == 17
                        && let Ok(b) = <[u8; 16]>::try_from(&v[..16])
                        && let Some(t) = TsRange::subnet(IpAddr::V6(b.into()), v[16])
                    {
                        r.subnets.push(t);
                    }
                }
                _ => {}
            }
        }
        r.addresses.retain(usable);
        r.dns.retain(usable);
        for list in [&mut r.addresses, &mut r.dns] {
            list.dedup();
            list.truncate(MAX_EACH);
        }
        r.domains.dedup();
        r.domains.truncate(MAX_EACH);
        r.subnets.dedup();
        r.subnets.truncate(MAX_EACH);
        Some(r)
    }
}

/// A DNS domain from the wire: printable ASCII host-name characters only,
/// so that it can go into resolver configuration without escaping; a
/// trailing dot is dropped.
fn domain(v: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(v).ok()?.trim_end_matches('.');
    let ok = !s.is_empty()
        && s.len() <= MAX_DOMAIN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        && !s.starts_with('.')
        && !s.contains("..");
    ok.then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> Reply {
        Reply {
            addresses: vec![
                "10.3.0.7".parse().unwrap(),
                "2001:db8:3::7".parse().unwrap(),
            ],
            dns: vec![
                "10.3.0.1".parse().unwrap(),
                "2001:db8:3::1".parse().unwrap(),
            ],
            domains: vec!["corp.example".into()],
            subnets: vec![
                TsRange::subnet("10.3.0.0".parse().unwrap(), 16).unwrap(),
                TsRange::subnet("2001:db8:3::".parse().unwrap(), 48).unwrap(),
            ],
        }
    }

    #[test]
    fn reply_round_trips() {
        let r = reply();
        assert_eq!(Reply::parse(&r.to_payload()), Some(r));
    }

    #[test]
    fn request_round_trips_and_reads_hints() {
        for vips in [
            vec!["0.0.0.0".parse().unwrap()],
            vec!["0.0.0.0".parse().unwrap(), "::".parse().unwrap()],
            vec!["10.3.0.9".parse().unwrap(), "2001:db8::9".parse().unwrap()],
        ] {
            let r = Request::for_vips(&vips);
            assert_eq!(Request::parse(&r.to_payload()), Some(r));
        }
        assert_eq!(Request::parse(&reply().to_payload()), None);
    }

    #[test]
    fn attributes_of_the_wrong_size_are_skipped() {
        let cp = CpPayload {
            cfg_type: CfgType::CFG_REPLY,
            attributes: vec![
                attr(CfgAttrType::INTERNAL_IP4_ADDRESS, vec![10, 0, 0]),
                attr(CfgAttrType::INTERNAL_IP4_ADDRESS, vec![0, 0, 0, 0]),
                attr(CfgAttrType::INTERNAL_IP4_ADDRESS, vec![224, 0, 0, 1]),
                attr(CfgAttrType::INTERNAL_IP6_ADDRESS, vec![0; 16]),
                attr(CfgAttrType::INTERNAL_IP4_DNS, vec![1; 5]),
                attr(CfgAttrType::INTERNAL_DNS_DOMAIN, b"evil\ndomain".to_vec()),
                attr(CfgAttrType::INTERNAL_DNS_DOMAIN, b"../etc".to_vec()),
                attr(
                    CfgAttrType::INTERNAL_IP4_SUBNET,
                    vec![10, 0, 0, 0, 255, 0, 255, 0],
                ),
                attr(CfgAttrType::INTERNAL_IP4_ADDRESS, vec![10, 9, 9, 9]),
                attr(CfgAttrType::INTERNAL_DNS_DOMAIN, b"Corp.Example.".to_vec()),
            ],
        };
        let r = Reply::parse(&cp).unwrap();
        assert_eq!(r.addresses, vec!["10.9.9.9".parse::<IpAddr>().unwrap()]);
        assert!(r.dns.is_empty() && r.subnets.is_empty());
        assert_eq!(r.domains, vec!["corp.example".to_string()]);
    }

    #[test]
    fn a_flood_of_attributes_is_capped() {
        let cp = CpPayload {
            cfg_type: CfgType::CFG_REPLY,
            attributes: (0..1000u32)
                .map(|i| {
                    attr(
                        CfgAttrType::INTERNAL_IP4_DNS,
                        (0x0a00_0000 + i).to_be_bytes().to_vec(),
                    )
                })
                .collect(),
        };
        assert_eq!(Reply::parse(&cp).unwrap().dns.len(), MAX_EACH);
    }
}
