//! Just enough IPv4/IPv6 parsing to match a packet against selectors: the
//! addresses, the upper-layer protocol (after IPv6 extension headers) and the
//! ports, plus the length the IP header claims so that trailing bytes can be
//! trimmed. Used for the SPD lookup of outgoing packets and for the selector
//! check of decapsulated ones (RFC 4301 §5.2, step 4).
//!
//! Every length is checked against the bytes present; nothing here panics or
//! allocates.
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol numbers used here.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const IPV4: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const DCCP: u8 = 33;
    pub const IPV6: u8 = 41;
    pub const IPV6_ROUTE: u8 = 43;
    pub const IPV6_FRAG: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    /// "No next header"; in ESP, a dummy packet (RFC 4303 §2.6).
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const IPV6_OPTS: u8 = 60;
    pub const IPV6_HOP_BY_HOP: u8 = 0;
    pub const SCTP: u8 = 132;
    pub const UDPLITE: u8 = 136;
}

/// The selector-relevant fields of a packet (RFC 4301 §4.4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// Source port; for ICMP/ICMPv6 `type << 8 | code`. `None` when the
    /// protocol has no ports or the packet is a non-first fragment.
    pub src_port: Option<u16>,
    /// Destination port, likewise (ICMP: the same type/code value).
    pub dst_port: Option<u16>,
}

/// A parsed packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpInfo {
    pub flow: FlowKey,
    /// Length of the packet according to its IP header (≤ the bytes given).
    pub total_len: usize,
}

/// Why a packet is not a usable IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InnerError {
    #[error("shorter than its IP header or its length field")]
    Truncated,
    #[error("IP version is neither 4 nor 6")]
    BadVersion,
    #[error("malformed IP header")]
    BadHeader,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Ports (or ICMP type/code) from the start of the upper-layer header.
fn ports(protocol: u8, l4: &[u8], v6: bool) -> (Option<u16>, Option<u16>) {
    match protocol {
        proto::TCP | proto::UDP | proto::SCTP | proto::UDPLITE | proto::DCCP => {
            match (be16(l4, 0), be16(l4, 2)) {
                (Some(s), Some(d)) => (Some(s), Some(d)),
                _ => (None, None),
            }
        }
        proto::ICMP if !v6 => {
            let tc = be16(l4, 0);
            (tc, tc)
        }
        proto::ICMPV6 if v6 => {
            let tc = be16(l4, 0);
            (tc, tc)
        }
        _ => (None, None),
    }
}

/// IP version from the first nibble, without further checks.
pub fn version(packet: &[u8]) -> Option<u8> {
    packet.first().map(|b| b >> 4)
}

/// Parses an IPv4 or IPv6 packet's addresses, protocol, ports and length.
pub fn parse(packet: &[u8]) -> Result<IpInfo, InnerError> {
    match version(packet) {
        Some(4) => parse_v4(packet),
        Some(6) => parse_v6(packet),
        Some(_) => Err(InnerError::BadVersion),
        None => Err(InnerError::Truncated),
    }
}

fn parse_v4(p: &[u8]) -> Result<IpInfo, InnerError> {
    if p.len() < 20 {
        return Err(InnerError::Truncated);
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(InnerError::BadHeader);
    }
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    if total < ihl {
        return Err(InnerError::BadHeader);
    }
    if total > p.len() {
        return Err(InnerError::Truncated);
    }
    let frag_offset = u16::from_be_bytes([p[6], p[7]]) & 0x1fff;
    let protocol = p[9];
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let (src_port, dst_port) = if frag_offset == 0 {
        ports(protocol, &p[ihl..total], false)
    } else {
        (None, None)
    };
    Ok(IpInfo {
        flow: FlowKey {
            src: src.into(),
            dst: dst.into(),
            protocol,
            src_port,
            dst_port,
        },
        total_len: total,
    })
}

/// Extension headers followed before giving up (RFC 8200 recommends an order
/// with each at most once or twice; more is an attack or garbage).
const MAX_EXT_HEADERS: usize = 8;

fn parse_v6(p: &[u8]) -> Result<IpInfo, InnerError> {
    if p.len() < 40 {
        return Err(InnerError::Truncated);
    }
    // A payload length of 0 would announce a jumbogram (RFC 2675); those do
    // not fit a tunnel MTU, so it is read as an empty payload.
    let total = 40 + usize::from(u16::from_be_bytes([p[4], p[5]]));
    if total > p.len() {
        return Err(InnerError::Truncated);
    }
    let mut src = [0u8; 16];
    src.copy_from_slice(&p[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&p[24..40]);
    let body = &p[..total];
    let mut nh = p[6];
    let mut off = 40;
    let mut fragment = false;
    for _ in 0..=MAX_EXT_HEADERS {
        let len = match nh {
            proto::IPV6_HOP_BY_HOP | proto::IPV6_ROUTE | proto::IPV6_OPTS => {
                let l = *body.get(off + 1).ok_or(InnerError::BadHeader)?;
                (usize::from(l) + 1) * 8
            }
            proto::AH => {
                let l = *body.get(off + 1).ok_or(InnerError::BadHeader)?;
                (usize::from(l) + 2) * 4
            }
            proto::IPV6_FRAG => {
                let fo = be16(body, off + 2).ok_or(InnerError::BadHeader)? >> 3;
                fragment = fo != 0;
                8
            }
            _ => break,
        };
        if off + len > total {
            return Err(InnerError::BadHeader);
        }
        nh = body[off];
        off += len;
        if fragment {
            break;
        }
    }
    if matches!(
        nh,
        proto::IPV6_HOP_BY_HOP | proto::IPV6_ROUTE | proto::IPV6_OPTS | proto::AH
    ) && !fragment
    {
        return Err(InnerError::BadHeader);
    }
    let (src_port, dst_port) = if fragment {
        (None, None)
    } else {
        ports(nh, &body[off..], true)
    };
    Ok(IpInfo {
        flow: FlowKey {
            src: Ipv6Addr::from(src).into(),
            dst: Ipv6Addr::from(dst).into(),
            protocol: nh,
            src_port,
            dst_port,
        },
        total_len: total,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal IPv4 packet with an upper-layer header of `l4`.
    pub(crate) fn v4(src: [u8; 4], dst: [u8; 4], protocol: u8, l4: &[u8]) -> Vec<u8> {
        let total = 20 + l4.len();
        let mut p = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0,
            0,
            64,
            protocol,
            0,
            0,
        ];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(l4);
        p
    }

    /// A minimal IPv6 packet; `ext` are extension headers already encoded
    /// (the first one's type is `first`), `protocol` the upper layer.
    pub(crate) fn v6(src: [u8; 16], dst: [u8; 16], first: u8, ext: &[u8], l4: &[u8]) -> Vec<u8> {
        let plen = ext.len() + l4.len();
        let mut p = vec![0x60, 0, 0, 0, (plen >> 8) as u8, plen as u8, first, 64];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(ext);
        p.extend_from_slice(l4);
        p
    }

    const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const B6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    #[test]
    fn accepts_ipv4_udp() {
        let p = v4(
            [192, 0, 2, 1],
            [198, 51, 100, 2],
            proto::UDP,
            &[0x12, 0x34, 0, 53, 0, 8, 0, 0],
        );
        let i = parse(&p).unwrap();
        assert_eq!(i.total_len, 28);
        assert_eq!(i.flow.src, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(i.flow.dst, "198.51.100.2".parse::<IpAddr>().unwrap());
        assert_eq!(
            (i.flow.protocol, i.flow.src_port, i.flow.dst_port),
            (17, Some(0x1234), Some(53))
        );
    }

    #[test]
    fn accepts_ipv4_with_trailing_bytes_and_icmp() {
        let mut p = v4([192, 0, 2, 1], [192, 0, 2, 2], proto::ICMP, &[8, 0, 0, 0]);
        p.extend_from_slice(&[0xee; 5]);
        let i = parse(&p).unwrap();
        assert_eq!(i.total_len, 24);
        assert_eq!(i.flow.src_port, Some(8 << 8));
    }

    #[test]
    fn ipv4_fragment_has_no_ports() {
        let mut p = v4([192, 0, 2, 1], [192, 0, 2, 2], proto::TCP, &[0, 80, 0, 81]);
        p[7] = 1; // fragment offset 8 bytes
        assert_eq!(parse(&p).unwrap().flow.src_port, None);
    }

    #[test]
    fn rejects_bad_ipv4() {
        let good = v4([192, 0, 2, 1], [192, 0, 2, 2], proto::UDP, &[0; 8]);
        for len in 0..good.len() {
            assert!(parse(&good[..len]).is_err(), "len {len}");
        }
        let mut p = good.clone();
        p[0] = 0x44; // IHL 16
        assert_eq!(parse(&p), Err(InnerError::BadHeader));
        let mut p = good.clone();
        p[3] = 19; // total length below the header
        assert_eq!(parse(&p), Err(InnerError::BadHeader));
        let mut p = good.clone();
        p[0] = 0x4f; // IHL 60 > total length
        assert_eq!(parse(&p), Err(InnerError::BadHeader));
        let mut p = good;
        p[0] = 0x55;
        assert_eq!(parse(&p), Err(InnerError::BadVersion));
    }

    #[test]
    fn accepts_ipv6_tcp_after_extension_headers() {
        // Hop-by-hop (8 bytes) then destination options (8 bytes) then TCP.
        let ext = [
            proto::IPV6_OPTS,
            0,
            1,
            4,
            0,
            0,
            0,
            0, //
            proto::TCP,
            0,
            1,
            4,
            0,
            0,
            0,
            0,
        ];
        let p = v6(
            A6,
            B6,
            proto::IPV6_HOP_BY_HOP,
            &ext,
            &[0x01, 0xbb, 0xc0, 0x00],
        );
        let i = parse(&p).unwrap();
        assert_eq!(
            (i.flow.protocol, i.flow.src_port, i.flow.dst_port),
            (6, Some(443), Some(0xc000))
        );
        assert_eq!(i.total_len, p.len());
    }

    #[test]
    fn ipv6_fragments() {
        // First fragment: offset 0, ports visible.
        let first = [proto::UDP, 0, 0, 1, 0, 0, 0, 9];
        let p = v6(A6, B6, proto::IPV6_FRAG, &first, &[0, 7, 0, 9]);
        let i = parse(&p).unwrap();
        assert_eq!((i.flow.protocol, i.flow.dst_port), (17, Some(9)));
        // Later fragment: no ports.
        let later = [proto::UDP, 0, 0, 0x10, 0, 0, 0, 9];
        let p = v6(A6, B6, proto::IPV6_FRAG, &later, &[0, 7, 0, 9]);
        let i = parse(&p).unwrap();
        assert_eq!((i.flow.protocol, i.flow.dst_port), (17, None));
    }

    #[test]
    fn rejects_bad_ipv6() {
        let good = v6(A6, B6, proto::ICMPV6, &[], &[128, 0, 0, 0]);
        assert_eq!(parse(&good).unwrap().flow.src_port, Some(128 << 8));
        for len in 0..good.len() {
            assert!(parse(&good[..len]).is_err(), "len {len}");
        }
        // Extension header running past the payload.
        let p = v6(
            A6,
            B6,
            proto::IPV6_OPTS,
            &[proto::TCP, 4, 0, 0, 0, 0, 0, 0],
            &[],
        );
        assert_eq!(parse(&p), Err(InnerError::BadHeader));
        // An endless chain of options headers.
        let chain: Vec<u8> = (0..20)
            .flat_map(|_| [proto::IPV6_OPTS, 0, 1, 4, 0, 0, 0, 0])
            .collect();
        let p = v6(A6, B6, proto::IPV6_OPTS, &chain, &[]);
        assert_eq!(parse(&p), Err(InnerError::BadHeader));
    }
}
