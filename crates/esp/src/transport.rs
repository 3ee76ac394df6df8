//! Transport mode (RFC 4303 §3.1.1): host to host, the IP header stays
//! outside ESP and only its payload (the transport segment) is protected.
//!
//! Outbound, [`strip_header`] removes the IPv4/IPv6 header of a packet the
//! local stack sent; the driver sends the ESP packet to the peer's address
//! (raw ESP or UDP 4500), where the kernel builds the outer header again.
//! Inbound, [`build_header`] puts an IP header with the outer addresses in
//! front of the decrypted segment, and the TCP/UDP/ICMPv6 checksum is
//! recomputed over the new pseudo-header: with a NAT on the path the
//! sender's checksum covered addresses the packet no longer has (RFC 3948
//! §3.1.2 allows recomputing; the ESP ICV already vouched for the bytes).
//!
//! Nothing here allocates or panics; lengths are checked.
use core::net::IpAddr;

use crate::inner::{InnerError, proto};

/// The bytes of the IP header to remove and the protocol it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stripped {
    pub header_len: usize,
    /// The packet's length according to its IP header.
    pub total_len: usize,
    pub protocol: u8,
}

/// Where a packet's transport segment starts, for transport-mode
/// encapsulation. Refused: IPv4 fragments and options-free parsing aside,
/// IPv6 packets with extension headers (hop-by-hop, routing, fragment and
/// destination options would have to stay in front of ESP, RFC 4303
/// §3.1.1; the local stack sends none of them for a host-to-host SA), and
/// fragments (the offset lives in the header ESP does not protect, so the
/// peer could not reassemble).
pub fn strip_header(packet: &[u8]) -> Result<Stripped, InnerError> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            if packet.len() < 20 {
                return Err(InnerError::Truncated);
            }
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            if ihl < 20 || total < ihl {
                return Err(InnerError::BadHeader);
            }
            if total > packet.len() {
                return Err(InnerError::Truncated);
            }
            let frag = u16::from_be_bytes([packet[6], packet[7]]);
            // More fragments, or an offset.
            if frag & 0x3fff != 0 {
                return Err(InnerError::BadHeader);
            }
            Ok(Stripped {
                header_len: ihl,
                total_len: total,
                protocol: packet[9],
            })
        }
        Some(6) => {
            if packet.len() < 40 {
                return Err(InnerError::Truncated);
            }
            let total = 40 + usize::from(u16::from_be_bytes([packet[4], packet[5]]));
            if total > packet.len() {
                return Err(InnerError::Truncated);
            }
            let nh = packet[6];
            if matches!(
                nh,
                proto::IPV6_HOP_BY_HOP
                    | proto::IPV6_ROUTE
                    | proto::IPV6_FRAG
                    | proto::IPV6_OPTS
                    | proto::AH
                    | proto::ESP
            ) {
                return Err(InnerError::BadHeader);
            }
            Ok(Stripped {
                header_len: 40,
                total_len: total,
                protocol: nh,
            })
        }
        Some(_) => Err(InnerError::BadVersion),
        None => Err(InnerError::Truncated),
    }
}

/// Length of the header [`build_header`] writes for `src`'s family.
pub fn header_len(src: IpAddr) -> usize {
    match src {
        IpAddr::V4(_) => 20,
        IpAddr::V6(_) => 40,
    }
}

/// Writes an IP header into `packet[..header_len(src)]` in front of the
/// `packet[header_len..]` segment of protocol `protocol`, then fixes the
/// segment's checksum for the new addresses. `Err` if the families differ,
/// the packet is too long for the header's length field, or a TCP/UDP
/// segment is shorter than its header.
pub fn build_header(
    packet: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
) -> Result<(), InnerError> {
    let hl = header_len(src);
    if packet.len() < hl {
        return Err(InnerError::Truncated);
    }
    let (head, seg) = packet.split_at_mut(hl);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = u16::try_from(hl + seg.len()).map_err(|_| InnerError::BadHeader)?;
            head.copy_from_slice(&[0; 20]);
            head[0] = 0x45;
            head[2..4].copy_from_slice(&total.to_be_bytes());
            head[8] = 64;
            head[9] = protocol;
            head[12..16].copy_from_slice(&s.octets());
            head[16..20].copy_from_slice(&d.octets());
            let sum = fold(sum_bytes(head, 0));
            head[10..12].copy_from_slice(&(!sum).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let plen = u16::try_from(seg.len()).map_err(|_| InnerError::BadHeader)?;
            head.copy_from_slice(&[0; 40]);
            head[0] = 0x60;
            head[4..6].copy_from_slice(&plen.to_be_bytes());
            head[6] = protocol;
            head[7] = 64;
            head[8..24].copy_from_slice(&s.octets());
            head[24..40].copy_from_slice(&d.octets());
        }
        _ => return Err(InnerError::BadHeader),
    }
    fix_checksum(seg, src, dst, protocol)
}

/// Where the checksum field sits in a segment of `protocol`, if it covers
/// a pseudo-header with the IP addresses.
fn checksum_offset(protocol: u8, v6: bool) -> Option<usize> {
    match protocol {
        proto::TCP => Some(16),
        proto::UDP => Some(6),
        proto::ICMPV6 if v6 => Some(2),
        _ => None,
    }
}

/// Recomputes the checksum of `seg` over the pseudo-header of `src`/`dst`.
/// An IPv4 UDP checksum of 0 ("none", RFC 768) stays 0.
pub fn fix_checksum(
    seg: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
) -> Result<(), InnerError> {
    let v6 = src.is_ipv6();
    let Some(at) = checksum_offset(protocol, v6) else {
        return Ok(());
    };
    if seg.len() < at + 2 {
        return Err(InnerError::Truncated);
    }
    if protocol == proto::UDP && !v6 && seg[at..at + 2] == [0, 0] {
        return Ok(());
    }
    seg[at..at + 2].fill(0);
    let mut sum = 0u64;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            sum = sum_bytes(&s.octets(), sum);
            sum = sum_bytes(&d.octets(), sum);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            sum = sum_bytes(&s.octets(), sum);
            sum = sum_bytes(&d.octets(), sum);
        }
        _ => return Err(InnerError::BadHeader),
    }
    // Protocol and upper-layer length (32 bits for IPv6, 16 for IPv4: the
    // same sum either way).
    sum += u64::from(protocol) + seg.len() as u64;
    sum = sum_bytes(seg, sum);
    let mut c = !fold(sum);
    // UDP sends a computed 0 as all ones (RFC 768, RFC 8200 §8.1).
    if c == 0 && protocol == proto::UDP {
        c = 0xffff;
    }
    seg[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Adds `b` as big-endian 16-bit words (odd tail padded with 0) to `acc`.
fn sum_bytes(b: &[u8], mut acc: u64) -> u64 {
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

fn fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::inner::tests::{v4, v6};

    /// Whether the TCP/UDP/ICMPv6 checksum of a complete packet verifies:
    /// the ones' complement sum over pseudo-header and segment is 0xffff.
    pub(crate) fn checksum_ok(packet: &[u8]) -> bool {
        let s = strip_header(packet).unwrap();
        let (src, dst): (IpAddr, IpAddr) = if packet[0] >> 4 == 4 {
            (
                <[u8; 4]>::try_from(&packet[12..16]).unwrap().into(),
                <[u8; 4]>::try_from(&packet[16..20]).unwrap().into(),
            )
        } else {
            (
                <[u8; 16]>::try_from(&packet[8..24]).unwrap().into(),
                <[u8; 16]>::try_from(&packet[24..40]).unwrap().into(),
            )
        };
        let seg = &packet[s.header_len..s.total_len];
        let mut sum = 0;
        match (src, dst) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                sum = sum_bytes(&a.octets(), sum);
                sum = sum_bytes(&b.octets(), sum);
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                sum = sum_bytes(&a.octets(), sum);
                sum = sum_bytes(&b.octets(), sum);
            }
            _ => return false,
        }
        sum += u64::from(s.protocol) + seg.len() as u64;
        fold(sum_bytes(seg, sum)) == 0xffff
    }

    fn udp(payload: &[u8]) -> Vec<u8> {
        let len = 8 + payload.len();
        let mut u = vec![
            0x30,
            0x39,
            0x00,
            0x35,
            (len >> 8) as u8,
            len as u8,
            0x12,
            0x34,
        ];
        u.extend_from_slice(payload);
        u
    }

    fn tcp() -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&443u16.to_be_bytes());
        t[2..4].copy_from_slice(&50000u16.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = 0x02; // SYN
        t.extend_from_slice(b"odd");
        t
    }

    #[test]
    fn strips_ipv4_and_ipv6_headers() {
        let p = v4([192, 0, 2, 1], [192, 0, 2, 2], proto::UDP, &udp(b"hi"));
        assert_eq!(
            strip_header(&p),
            Ok(Stripped {
                header_len: 20,
                total_len: 30,
                protocol: proto::UDP
            })
        );
        let p = v6([0x20; 16], [0x21; 16], proto::TCP, &[], &tcp());
        assert_eq!(
            strip_header(&p).map(|s| (s.header_len, s.protocol)),
            Ok((40, proto::TCP))
        );
    }

    #[test]
    fn rejects_fragments_extension_headers_and_garbage() {
        let mut p = v4([192, 0, 2, 1], [192, 0, 2, 2], proto::UDP, &udp(b"hi"));
        p[6] = 0x20; // more fragments
        assert_eq!(strip_header(&p), Err(InnerError::BadHeader));
        p[6] = 0;
        p[7] = 1; // offset
        assert_eq!(strip_header(&p), Err(InnerError::BadHeader));
        let opts = [proto::UDP, 0, 1, 4, 0, 0, 0, 0];
        let p = v6([0x20; 16], [0x21; 16], proto::IPV6_OPTS, &opts, &udp(b""));
        assert_eq!(strip_header(&p), Err(InnerError::BadHeader));
        assert_eq!(strip_header(&[]), Err(InnerError::Truncated));
        assert_eq!(strip_header(&[0x45; 19]), Err(InnerError::Truncated));
        assert_eq!(strip_header(&[0x75; 40]), Err(InnerError::BadVersion));
        let mut p = v4([192, 0, 2, 1], [192, 0, 2, 2], proto::UDP, &udp(b"hi"));
        p[3] = 200; // longer than the bytes
        assert_eq!(strip_header(&p), Err(InnerError::Truncated));
    }

    #[test]
    fn rebuilt_headers_carry_valid_checksums_for_new_addresses() {
        // What a NAT does to transport mode: the sender's checksum covered
        // 10.0.0.1, the packet arrives from 203.0.113.7.
        let sent = v4([10, 0, 0, 1], [192, 0, 2, 2], proto::TCP, &tcp());
        let mut seg = sent[20..].to_vec();
        fix_checksum(
            &mut seg,
            "10.0.0.1".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
            proto::TCP,
        )
        .unwrap();
        let mut got = vec![0u8; 20];
        got.extend_from_slice(&seg);
        let (src, dst) = ("203.0.113.7".parse().unwrap(), "192.0.2.2".parse().unwrap());
        build_header(&mut got, src, dst, proto::TCP).unwrap();
        assert!(checksum_ok(&got));
        let info = crate::inner::parse(&got).unwrap();
        assert_eq!((info.flow.src, info.flow.dst), (src, dst));
        assert_eq!(info.total_len, got.len());
        // The IPv4 header checksum verifies too.
        assert_eq!(fold(sum_bytes(&got[..20], 0)), 0xffff);

        for (proto_, seg) in [
            (proto::UDP, udp(b"hello")),
            (proto::ICMPV6, vec![128, 0, 0, 0, 0, 1, 0, 1]),
        ] {
            let mut got = vec![0u8; 40];
            got.extend_from_slice(&seg);
            let src = "2001:db8::7".parse().unwrap();
            let dst = "2001:db8::2".parse().unwrap();
            build_header(&mut got, src, dst, proto_).unwrap();
            assert!(checksum_ok(&got), "{proto_}");
            assert_eq!(crate::inner::parse(&got).unwrap().flow.protocol, proto_);
        }
    }

    #[test]
    fn ipv4_udp_without_checksum_stays_without() {
        let mut got = vec![0u8; 20];
        let mut u = udp(b"x");
        u[6..8].fill(0);
        got.extend_from_slice(&u);
        build_header(
            &mut got,
            "192.0.2.9".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
            proto::UDP,
        )
        .unwrap();
        assert_eq!(got[26..28], [0, 0]);
    }

    #[test]
    fn build_header_refuses_mixed_families_and_short_segments() {
        let mut b = [0u8; 30];
        let v4a: IpAddr = "192.0.2.1".parse().unwrap();
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            build_header(&mut b, v4a, v6a, proto::UDP),
            Err(InnerError::BadHeader)
        );
        // 10 bytes of TCP: no room for its checksum field.
        assert_eq!(
            build_header(&mut b, v4a, v4a, proto::TCP),
            Err(InnerError::Truncated)
        );
        assert_eq!(
            build_header(&mut b[..10], v4a, v4a, proto::UDP),
            Err(InnerError::Truncated)
        );
    }
}
