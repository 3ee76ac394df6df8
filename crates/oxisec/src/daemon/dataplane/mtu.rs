//! What keeps tunnelled traffic from black-holing on size: the largest inner
//! packet an SA can carry on a path, the ICMP error that tells a sender its
//! packet was too big, and TCP MSS clamping.
//!
//! * [`inner_mtu`]: path MTU minus the outer IP and UDP headers and the SA's
//!   ESP overhead (header, IV, worst padding for that length, trailer, ICV).
//!   The tunnel routes carry it as their `mtu` (so the kernel's own PMTU
//!   logic answers local senders and forwarded DF packets), and the packet
//!   path checks it too.
//! * [`too_big_reply`]: an inner packet larger than that, with DF set
//!   (IPv4) or any IPv6 packet, is answered with ICMP "fragmentation
//!   needed" (RFC 792/1191) or ICMPv6 "packet too big" (RFC 4443 §3.2,
//!   RFC 8201), written back into the TUN device as if the tunnel's
//!   far end had sent it. Its source is the packet's destination (a
//!   address routed into the tunnel, so reverse-path filters accept it).
//!   Never in answer to an ICMP error (RFC 1122 §3.2.2, RFC 4443 §2.4).
//! * [`clamp_mss`]: a TCP SYN's MSS option lowered to what fits, with the
//!   checksum updated incrementally (RFC 1624), for peers whose PMTU
//!   discovery is broken by filtered ICMP.
//!
//! Everything works on the packet bytes alone, never panics, and writes
//! into buffers the caller owns (no allocation per packet).
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use oxisec_esp::{OutboundSa, encap_overhead};

use crate::daemon::esp::RateLimit;

use super::offload::csum;

/// UDP header in front of ESP (RFC 3948).
const UDP_HEADER: usize = 8;
/// Smallest MTU of IPv6 (RFC 8200 §5): an ICMPv6 error fits in it.
pub const IPV6_MIN_MTU: usize = 1280;
/// IPv4: RFC 1812 §4.3.2.3 suggests at most 576 bytes for an ICMP error.
const ICMPV4_MAX: usize = 576;
/// Smallest inner MTU we ever announce: IPv4's minimum (RFC 791).
const MIN_INNER_MTU: usize = 576;

/// The largest inner packet `sa` can carry when the outer path takes
/// `path_mtu` bytes, over IPv4 (`outer_v4`) or IPv6.
///
/// Transport mode carries the packet without its IP header, which the
/// outer one replaces (same family: both are the hosts' own addresses), so
/// the inner packet may be that much larger.
pub fn inner_mtu(sa: &OutboundSa, path_mtu: usize, outer_v4: bool) -> usize {
    let outer_ip = if outer_v4 { 20 } else { 40 };
    let budget = path_mtu.saturating_sub(outer_ip + UDP_HEADER);
    let strip = if sa.mode() == oxisec_esp::Mode::Transport {
        outer_ip
    } else {
        0
    };
    let fits = |l: usize| {
        let p = l.saturating_sub(strip);
        let (h, t) = encap_overhead(sa, p);
        p + h + t <= budget
    };
    let (h, t) = encap_overhead(sa, 0);
    // Padding is at most one block (≤ 16 bytes): a few steps down at most.
    let mut l = (budget + strip).saturating_sub(h + t.saturating_sub(16));
    while l > 0 && !fits(l) {
        l -= 1;
    }
    l
}

/// IPv4 or IPv6, with the header fields [`too_big_reply`] and
/// [`clamp_mss`] need, checked once.
struct Ip<'a> {
    pkt: &'a [u8],
    v4: bool,
    /// Header length (IPv4 IHL; 40 for IPv6, extension headers not walked).
    hlen: usize,
    /// Next protocol (IPv6: the first next header).
    proto: u8,
}

fn parse(pkt: &[u8]) -> Option<Ip<'_>> {
    match pkt.first()? >> 4 {
        4 => {
            let hlen = usize::from(pkt[0] & 0x0f) * 4;
            if hlen < 20 || pkt.len() < hlen {
                return None;
            }
            Some(Ip {
                pkt,
                v4: true,
                hlen,
                proto: pkt[9],
            })
        }
        6 if pkt.len() >= 40 => Some(Ip {
            pkt,
            v4: false,
            hlen: 40,
            proto: pkt[6],
        }),
        _ => None,
    }
}

impl Ip<'_> {
    /// Whether this is an ICMP error message (never answered with one).
    fn is_icmp_error(&self) -> bool {
        let t = self.pkt.get(self.hlen).copied();
        match (self.v4, self.proto, t) {
            (true, 1, Some(t)) => matches!(t, 3 | 4 | 5 | 11 | 12),
            (false, 58, Some(t)) => t < 128,
            // A truncated ICMP header: do not risk answering an error.
            (true, 1, None) | (false, 58, None) => true,
            _ => false,
        }
    }

    /// IPv4 with DF set, or IPv6 (which routers never fragment).
    fn no_fragmenting(&self) -> bool {
        !self.v4 || self.pkt[6] & 0x40 != 0
    }

    /// A non-first IPv4 fragment (its TCP header is elsewhere).
    fn later_fragment(&self) -> bool {
        self.v4 && (u16::from_be_bytes([self.pkt[6], self.pkt[7]]) & 0x1fff) != 0
    }
}

/// Writes into `out` the ICMP "fragmentation needed" / ICMPv6 "packet too
/// big" answer to the inner packet `pkt`, announcing `mtu`; returns its
/// length. `None` when no answer is due: not IP, IPv4 without DF (the
/// caller may drop or fragment), an ICMP error, or `out` too small
/// (`out` of [`IPV6_MIN_MTU`] bytes always suffices).
pub fn too_big_reply(pkt: &[u8], mtu: usize, out: &mut [u8]) -> Option<usize> {
    let ip = parse(pkt)?;
    if !ip.no_fragmenting() || ip.is_icmp_error() {
        return None;
    }
    if ip.v4 {
        // Original header plus as much of its payload as fits in 576.
        let quoted = pkt.len().min(ICMPV4_MAX - 28);
        let total = 28 + quoted;
        let out = out.get_mut(..total)?;
        out[..20].copy_from_slice(&[
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        out[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        out[12..16].copy_from_slice(&pkt[16..20]);
        out[16..20].copy_from_slice(&pkt[12..16]);
        let c = !csum::sum(&out[..20]);
        out[10..12].copy_from_slice(&c.to_be_bytes());
        let mtu = mtu.min(usize::from(u16::MAX)) as u16;
        out[20..28].copy_from_slice(&[3, 4, 0, 0, 0, 0, 0, 0]);
        out[26..28].copy_from_slice(&mtu.to_be_bytes());
        out[28..].copy_from_slice(&pkt[..quoted]);
        let c = !csum::sum(&out[20..]);
        out[22..24].copy_from_slice(&c.to_be_bytes());
        Some(total)
    } else {
        let quoted = pkt.len().min(IPV6_MIN_MTU - 48);
        let total = 48 + quoted;
        let out = out.get_mut(..total)?;
        let plen = (total - 40) as u16;
        out[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 0, 58, 64]);
        out[4..6].copy_from_slice(&plen.to_be_bytes());
        out[8..24].copy_from_slice(&pkt[24..40]);
        out[24..40].copy_from_slice(&pkt[8..24]);
        out[40..48].copy_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
        out[44..48].copy_from_slice(&(mtu.max(IPV6_MIN_MTU) as u32).to_be_bytes());
        out[48..].copy_from_slice(&pkt[..quoted]);
        let (src, dst) = out[..40].split_at(24);
        let pseudo = csum::pseudo(&src[8..24], &dst[..16], 58, total - 40);
        let c = !csum::add(pseudo, csum::sum(&out[40..]));
        out[42..44].copy_from_slice(&c.to_be_bytes());
        Some(total)
    }
}

/// The TCP MSS that fits an inner MTU (IPv4: 20 + 20 bytes of headers,
/// IPv6: 40 + 20).
pub fn mss_for(inner_mtu: usize, v4: bool) -> u16 {
    let hdrs = if v4 { 40 } else { 60 };
    inner_mtu
        .max(MIN_INNER_MTU)
        .saturating_sub(hdrs)
        .min(usize::from(u16::MAX)) as u16
}

/// Lowers the MSS option of a TCP SYN (or SYN-ACK) in `pkt` to at most
/// `mss` for IPv4, or `mss - 20` for IPv6 (`mss` being the IPv4 figure of
/// one inner MTU), fixing the TCP checksum; whether it changed anything.
/// Other packets, IPv6 with extension headers and fragments are left alone.
pub fn clamp_mss(pkt: &mut [u8], mss_v4: u16) -> bool {
    let Some(ip) = parse(pkt) else {
        return false;
    };
    if ip.proto != 6 || ip.later_fragment() {
        return false;
    }
    let (hlen, v4) = (ip.hlen, ip.v4);
    let limit = if v4 {
        mss_v4
    } else {
        mss_v4.saturating_sub(20)
    };
    let Some(tcp) = pkt.get_mut(hlen..) else {
        return false;
    };
    if tcp.len() < 20 || tcp[13] & 0x02 == 0 {
        return false;
    }
    let doff = usize::from(tcp[12] >> 4) * 4;
    if doff < 20 || tcp.len() < doff {
        return false;
    }
    let mut i = 20;
    while i < doff {
        match tcp[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let Some(&len) = tcp.get(i + 1) else { break };
                let len = usize::from(len);
                if len < 2 || i + len > doff {
                    break;
                }
                if kind == 2 && len == 4 {
                    let old = u16::from_be_bytes([tcp[i + 2], tcp[i + 3]]);
                    if old <= limit {
                        return false;
                    }
                    tcp[i + 2..i + 4].copy_from_slice(&limit.to_be_bytes());
                    // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
                    let hc = u16::from_be_bytes([tcp[16], tcp[17]]);
                    let c = !csum::add(csum::add(!hc, !old), limit);
                    tcp[16..18].copy_from_slice(&c.to_be_bytes());
                    return true;
                }
                i += len;
            }
        }
    }
    false
}

/// Worst ESP overhead of any suite we negotiate (header 8, IV 16, padding
/// 15, trailer 2, ICV 32): what inbound clamping assumes, since the SA the
/// answer will take is not known there.
const WORST_ESP: usize = 73;

/// ICMP "too big" answers per second over all lanes: each costs a TUN
/// write, and a flood of oversized packets must not become a flood back.
pub const TOO_BIG_PER_SEC: u64 = 100;

/// The data plane's size settings, shared by the lanes and changed at run
/// time by the daemon ([`MtuSettings::set`]); read with relaxed loads.
#[derive(Debug)]
pub struct MtuSettings {
    path_mtu: AtomicUsize,
    tun_mtu: AtomicUsize,
    /// 0: no clamping; [`AUTO`]: from the SA and path; else the IPv4 MSS.
    mss: AtomicUsize,
    icmp: RateLimit,
    epoch: Instant,
}

/// `mss` value: clamp to what the SA and path allow.
const AUTO: usize = usize::MAX;

pub use crate::config::MssClamp;

impl Default for MtuSettings {
    fn default() -> Self {
        MtuSettings {
            path_mtu: AtomicUsize::new(1500),
            tun_mtu: AtomicUsize::new(usize::from(u16::MAX)),
            mss: AtomicUsize::new(0),
            icmp: RateLimit::new(TOO_BIG_PER_SEC),
            epoch: Instant::now(),
        }
    }
}

impl MtuSettings {
    /// Sets the outer path MTU, the TUN device's MTU and MSS clamping.
    pub fn set(&self, path_mtu: u16, tun_mtu: u16, clamp: MssClamp) {
        self.path_mtu
            .store(usize::from(path_mtu), Ordering::Relaxed);
        self.tun_mtu.store(usize::from(tun_mtu), Ordering::Relaxed);
        let m = match clamp {
            MssClamp::Off => 0,
            MssClamp::Auto => AUTO,
            MssClamp::Fixed(n) => usize::from(n),
        };
        self.mss.store(m, Ordering::Relaxed);
    }

    /// The largest inner packet `sa` carries from here (never above the
    /// TUN MTU: nothing larger is read from it anyway).
    pub fn limit(&self, sa: &OutboundSa, outer_v4: bool) -> usize {
        let path = self.path_mtu.load(Ordering::Relaxed);
        inner_mtu(sa, path, outer_v4).min(self.tun_mtu.load(Ordering::Relaxed))
    }

    /// The IPv4 MSS to clamp outgoing SYNs to, for an SA whose limit is
    /// `limit`; `None`: no clamping.
    pub fn tx_mss(&self, limit: usize) -> Option<u16> {
        match self.mss.load(Ordering::Relaxed) {
            0 => None,
            AUTO => Some(mss_for(limit, true)),
            n => Some(n.min(usize::from(u16::MAX)) as u16),
        }
    }

    /// The IPv4 MSS to clamp SYNs arriving through the tunnel to: what the
    /// answers fit into with the worst ESP overhead.
    pub fn rx_mss(&self) -> Option<u16> {
        let path = self.path_mtu.load(Ordering::Relaxed);
        let tun = self.tun_mtu.load(Ordering::Relaxed);
        self.tx_mss(path.saturating_sub(40 + UDP_HEADER + WORST_ESP).min(tun))
    }

    /// Whether one more ICMP "too big" answer may go out now.
    pub fn icmp_allowed(&self) -> bool {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.icmp.allow(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxisec_crypto::Secret;
    use oxisec_crypto::esp_cipher::{EspCipher, EspSuite};
    use oxisec_wire::{TransformId, encr, integ};

    fn sa(
        encr: TransformId,
        bits: Option<u16>,
        integ: Option<TransformId>,
        key: usize,
    ) -> OutboundSa {
        let s = EspSuite {
            encr,
            encr_key_bits: bits,
            integ,
            esn: false,
        };
        OutboundSa::new(
            1,
            EspCipher::new(s, &Secret::new(vec![7; key])).unwrap(),
            vec![],
            vec![],
            None,
        )
    }

    /// A full checksum over an IPv4 TCP packet must verify as 0.
    fn tcp4_ok(p: &[u8]) -> bool {
        let hl = usize::from(p[0] & 15) * 4;
        let ps = csum::pseudo(&p[12..16], &p[16..20], 6, p.len() - hl);
        csum::add(ps, csum::sum(&p[hl..])) == 0xffff
    }

    fn syn4(mss: u16) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 48, 0, 1, 0x40, 0, 64, 6, 0, 0, 198, 51, 100, 1, 203, 0, 113, 1,
        ];
        // TCP: ports, seq, ack, doff 7 (28 bytes), SYN, window, csum, urg.
        p.extend_from_slice(&[
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x70, 0x02, 0xff, 0xff, 0, 0, 0, 0,
        ]);
        // NOP, NOP, SACK permitted, MSS.
        p.extend_from_slice(&[1, 1, 4, 2, 2, 4]);
        p.extend_from_slice(&mss.to_be_bytes());
        let ps = csum::pseudo(&p[12..16], &p[16..20], 6, p.len() - 20);
        let c = !csum::add(ps, csum::sum(&p[20..]));
        p[36..38].copy_from_slice(&c.to_be_bytes());
        let c = !csum::sum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(tcp4_ok(&p));
        p
    }

    #[test]
    fn inner_mtu_fits_the_suite_and_path() {
        let gcm = sa(encr::AES_GCM_16, Some(128), None, 20);
        // 1500 - 20 - 8 - 8 (ESP) - 8 (IV) - 16 (ICV) - 2 = 1438, aligned
        // to 4 with the trailer: 1438.
        let m = inner_mtu(&gcm, 1500, true);
        assert_eq!(m, 1438);
        let (h, t) = encap_overhead(&gcm, m);
        assert!(m + h + t + 28 <= 1500);
        let (h, t) = encap_overhead(&gcm, m + 1);
        assert!(m + 1 + h + t + 28 > 1500);
        assert_eq!(inner_mtu(&gcm, 1500, false), 1418);
        let cbc = sa(encr::AES_CBC, Some(256), Some(integ::HMAC_SHA2_256_128), 64);
        let m = inner_mtu(&cbc, 1500, true);
        let (h, t) = encap_overhead(&cbc, m);
        assert!(m + h + t + 28 <= 1500 && m + h + t + 28 > 1500 - 16, "{m}");
        assert_eq!(inner_mtu(&gcm, 10, true), 0);
    }

    #[test]
    fn transport_mode_carries_the_inner_header_for_free() {
        let gcm = sa(encr::AES_GCM_16, Some(128), None, 20).with_mode(oxisec_esp::Mode::Transport);
        // The segment of a 1458-byte packet (1438) fills 1500 as the
        // whole 1438-byte packet does in tunnel mode; likewise over IPv6.
        assert_eq!(inner_mtu(&gcm, 1500, true), 1458);
        assert_eq!(inner_mtu(&gcm, 1500, false), 1458);
        let cbc = sa(encr::AES_CBC, Some(256), Some(integ::HMAC_SHA2_256_128), 64)
            .with_mode(oxisec_esp::Mode::Transport);
        let m = inner_mtu(&cbc, 1500, true);
        let (h, t) = encap_overhead(&cbc, m - 20);
        assert!(m - 20 + h + t + 28 <= 1500, "{m}");
        let (h, t) = encap_overhead(&cbc, m - 19);
        assert!(m - 19 + h + t + 28 > 1500, "{m}");
    }

    #[test]
    fn frag_needed_for_df_ipv4() {
        let big = {
            let mut p = syn4(1460);
            p.resize(1450, 0xab);
            p[2..4].copy_from_slice(&1450u16.to_be_bytes());
            p
        };
        let mut out = [0u8; IPV6_MIN_MTU];
        let n = too_big_reply(&big, 1438, &mut out).unwrap();
        let r = &out[..n];
        assert_eq!(n, 576);
        assert_eq!(u16::from_be_bytes([r[2], r[3]]) as usize, n);
        assert_eq!(csum::sum(&r[..20]), 0xffff, "IP header checksum");
        assert_eq!(csum::sum(&r[20..]), 0xffff, "ICMP checksum");
        assert_eq!(&r[12..16], &big[16..20]);
        assert_eq!(&r[16..20], &big[12..16]);
        assert_eq!((r[9], r[20], r[21]), (1, 3, 4));
        assert_eq!(u16::from_be_bytes([r[26], r[27]]), 1438);
        assert_eq!(&r[28..48], &big[..20]);
        // Without DF: no answer (the sender allowed fragmentation).
        let mut nodf = big.clone();
        nodf[6] = 0;
        assert_eq!(too_big_reply(&nodf, 1438, &mut out), None);
        // Never in answer to an ICMP error, nor to garbage.
        let mut err = big.clone();
        err[9] = 1;
        err[20] = 3;
        assert_eq!(too_big_reply(&err, 1438, &mut out), None);
        err[20] = 8; // an echo request is answered
        assert!(too_big_reply(&err, 1438, &mut out).is_some());
        assert_eq!(too_big_reply(&[0x45, 0], 1438, &mut out), None);
        assert_eq!(too_big_reply(&big, 1438, &mut [0u8; 100]), None);
    }

    #[test]
    fn packet_too_big_for_ipv6() {
        let mut p = vec![0u8; 1500];
        p[..8].copy_from_slice(&[0x60, 0, 0, 0, 0x05, 0xb4, 17, 64]);
        p[8..24].copy_from_slice(
            &"2001:db8:1::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        p[24..40].copy_from_slice(
            &"2001:db8:2::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        let mut out = [0u8; IPV6_MIN_MTU];
        let n = too_big_reply(&p, 1418, &mut out).unwrap();
        let r = &out[..n];
        assert_eq!(n, IPV6_MIN_MTU);
        assert_eq!(usize::from(u16::from_be_bytes([r[4], r[5]])), n - 40);
        assert_eq!((r[6], r[40], r[41]), (58, 2, 0));
        assert_eq!(u32::from_be_bytes([r[44], r[45], r[46], r[47]]), 1418);
        assert_eq!(&r[8..24], &p[24..40]);
        let ps = csum::pseudo(&r[8..24], &r[24..40], 58, n - 40);
        assert_eq!(
            csum::add(ps, csum::sum(&r[40..])),
            0xffff,
            "ICMPv6 checksum"
        );
        // An announced MTU below 1280 is raised to it (RFC 8201 §4).
        too_big_reply(&p, 1000, &mut out).unwrap();
        assert_eq!(
            u32::from_be_bytes([out[44], out[45], out[46], out[47]]),
            1280
        );
        p[6] = 58;
        p[40] = 1; // destination unreachable: an error
        assert_eq!(too_big_reply(&p, 1418, &mut out), None);
    }

    #[test]
    fn settings_bound_the_limit_and_pick_the_mss() {
        let gcm = sa(encr::AES_GCM_16, Some(128), None, 20);
        let m = MtuSettings::default();
        assert_eq!(m.limit(&gcm, true), 1438);
        assert_eq!(m.tx_mss(1438), None);
        m.set(1500, 1400, MssClamp::Auto);
        assert_eq!(m.limit(&gcm, true), 1400);
        assert_eq!(m.tx_mss(1400), Some(1360));
        assert_eq!(m.rx_mss(), Some(mss_for(1500 - 48 - 73, true)));
        m.set(9000, 9000, MssClamp::Fixed(1200));
        assert_eq!(m.limit(&gcm, false), 8918);
        assert_eq!((m.tx_mss(8918), m.rx_mss()), (Some(1200), Some(1200)));
        let allowed = (0..1000).filter(|_| m.icmp_allowed()).count() as u64;
        assert!((1..=2 * TOO_BIG_PER_SEC).contains(&allowed), "{allowed}");
    }

    #[test]
    fn mss_is_clamped_with_a_valid_checksum() {
        let mut p = syn4(1460);
        assert!(clamp_mss(&mut p, 1398));
        assert_eq!(u16::from_be_bytes([p[46], p[47]]), 1398);
        assert!(tcp4_ok(&p));
        // Already small enough, or not a SYN: untouched.
        let before = p.clone();
        assert!(!clamp_mss(&mut p, 1400));
        assert_eq!(p, before);
        let mut ack = syn4(1460);
        ack[33] = 0x10;
        assert!(!clamp_mss(&mut ack, 1000));
        // Truncated or odd options never panic.
        for n in 0..p.len() {
            let mut t = syn4(1460)[..n].to_vec();
            let _ = clamp_mss(&mut t, 536);
        }
        let mut bad = syn4(1460);
        bad[45] = 0; // MSS option length 0
        assert!(!clamp_mss(&mut bad, 536));
        assert_eq!(mss_for(1438, true), 1398);
        assert_eq!(mss_for(1438, false), 1378);
        assert_eq!(mss_for(100, true), 536);
    }
}
