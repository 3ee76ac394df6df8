//! Raw ESP (IP protocol 50, RFC 4303 without RFC 3948's UDP header) for the
//! userspace data plane: the sockets, and the checks on what they receive.
//!
//! An SA goes out as raw ESP when the engine found no NAT and the connection
//! does not force UDP (`encap = false`, the default); otherwise it goes in
//! UDP 4500 as before. The kernel here has no ESP transform, so oxisec sends
//! and receives protocol 50 itself with `SOCK_RAW` sockets: sending, the
//! kernel builds the IP header (no `IP_HDRINCL`), so routing, the source
//! address (asked for with packet info, as on the UDP socket) and
//! fragmentation work as for any datagram; receiving, an IPv4 raw socket
//! hands over the whole IP packet (header included, reassembled by the
//! kernel first), an IPv6 one only what follows the IPv6 headers.
//!
//! **One raw socket pair per lane, sharded by SPI.** Every raw socket of a
//! protocol receives its own copy of every packet of that protocol, so N
//! lanes with N plain raw sockets would decrypt every packet N times (and
//! all but one copy would be counted as replays). Instead each lane's
//! sockets carry a classic BPF filter that keeps only the SPIs with
//! `spi % lanes == lane`: every packet reaches exactly one lane, the
//! packets of one SA always the same lane (so they stay in order, as a
//! peer's UDP flow stays on one `SO_REUSEPORT` socket), and decryption is
//! spread over the cores as for UDP. A single shared receive socket would
//! have been simpler but puts all inbound raw ESP on one core and needs a
//! hand-off between threads. Packets too short to carry an SPI go to lane 0,
//! which counts them. With one lane there is no filter.
//!
//! Raw ESP SAs keep their outer addresses in the ESP crate's [`UdpEncap`]
//! with both ports 0 ([`raw_endpoints`]): port 0 is never a UDP peer's
//! port, and it is what a raw socket's addresses carry anyway (the kernel
//! ignores or requires 0 there), so the batching code sends both kinds
//! alike and tells them apart with [`is_raw`].
//!
//! The daemon's own ESP must not loop into its TUN device: the tunnel routes
//! are cut around each peer's address (`routes.rs`), which covers raw ESP
//! exactly as it covers UDP 4500 (both go to the peer's address).
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::socket::{setsockopt, sockopt};
use oxisec_esp::UdpEncap;
use socket2::{Domain, Protocol, SockFilter, Socket, Type};

/// IP protocol number of ESP.
pub const IPPROTO_ESP: i32 = 50;

/// The outer addresses of a raw ESP SA, in the form the packet path keeps
/// them (see the module documentation).
pub fn raw_endpoints(local: SocketAddr, remote: SocketAddr) -> UdpEncap {
    UdpEncap {
        local: SocketAddr::new(local.ip(), 0),
        remote: SocketAddr::new(remote.ip(), 0),
    }
}

/// Whether `ep` stands for raw ESP rather than ESP in UDP.
pub fn is_raw(ep: &UdpEncap) -> bool {
    ep.remote.port() == 0
}

/// Why a packet from a raw socket was not handed to decapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RawError {
    #[error("shorter than an IPv4 header")]
    Truncated,
    #[error("not IPv4")]
    NotIpv4,
    #[error("IPv4 header length outside the packet")]
    BadHeaderLength,
    #[error("IPv4 total length does not fit the packet")]
    BadTotalLength,
    /// The kernel reassembles before raw delivery; a fragment here is
    /// not ours to reassemble.
    #[error("IPv4 fragment")]
    Fragment,
    #[error("not ESP (protocol {0})")]
    NotEsp(u8),
    /// SPI 0 is reserved (RFC 4303 §2.1) and never sent by a peer.
    #[error("SPI 0")]
    SpiZero,
}

/// Where the ESP packet is in an IPv4 raw receive, and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawIpv4 {
    pub esp: Range<usize>,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
}

/// Checks the IPv4 header an IPv4 raw socket delivers in front of the ESP
/// packet and says where the ESP packet is: behind the header and its
/// options (IHL), up to the total length. Never panics; any byte string
/// is either accepted with an in-bounds range or refused.
pub fn parse_ipv4(pkt: &[u8]) -> Result<RawIpv4, RawError> {
    let h: &[u8; 20] = pkt.first_chunk().ok_or(RawError::Truncated)?;
    if h[0] >> 4 != 4 {
        return Err(RawError::NotIpv4);
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < 20 || ihl > pkt.len() {
        return Err(RawError::BadHeaderLength);
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if total < ihl || total > pkt.len() {
        return Err(RawError::BadTotalLength);
    }
    // More fragments, or a fragment offset.
    if u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
        return Err(RawError::Fragment);
    }
    if h[9] != IPPROTO_ESP as u8 {
        return Err(RawError::NotEsp(h[9]));
    }
    let esp = ihl..total;
    check_spi(&pkt[esp.clone()])?;
    Ok(RawIpv4 {
        esp,
        src: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
        dst: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
    })
}

/// Refuses SPI 0 (reserved). Shorter packets pass: decapsulation counts
/// them as truncated, like short ESP in UDP.
pub fn check_spi(esp: &[u8]) -> Result<(), RawError> {
    match esp.first_chunk::<4>() {
        Some(&[0, 0, 0, 0]) => Err(RawError::SpiZero),
        _ => Ok(()),
    }
}

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_B: u16 = 0x10;
const BPF_ABS: u16 = 0x20;
const BPF_IND: u16 = 0x40;
const BPF_LEN: u16 = 0x80;
const BPF_MSH: u16 = 0xa0;
const BPF_JEQ: u16 = 0x10;
const BPF_JGE: u16 = 0x30;
const BPF_MOD: u16 = 0x90;
const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_MISC: u16 = 0x07;
const BPF_TAX: u16 = 0x00;
const BPF_TXA: u16 = 0x80;
const BPF_ADD: u16 = 0x00;

/// Return value that keeps the whole packet.
const ACCEPT: u32 = u32::MAX;

/// The classic BPF program that keeps, on lane `lane` of `lanes`, the ESP
/// packets whose SPI is `lane` modulo `lanes`, and on lane 0 those too
/// short to have an SPI. `v4`: the packet starts with the IPv4 header
/// (its length from IHL), otherwise with the ESP header.
pub fn shard_filter(v4: bool, lane: u32, lanes: u32) -> Vec<SockFilter> {
    let short = if lane == 0 { ACCEPT } else { 0 };
    let f = SockFilter::new;
    let tail = [
        f(BPF_ALU | BPF_MOD | BPF_K, 0, 0, lanes.max(1)),
        f(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, lane),
        f(BPF_RET | BPF_K, 0, 0, ACCEPT),
        f(BPF_RET | BPF_K, 0, 0, 0),
    ];
    let mut p = if v4 {
        vec![
            // X = IHL * 4; X += 4; A = len; if A >= X the SPI is there.
            f(BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0),
            f(BPF_MISC | BPF_TXA, 0, 0, 0),
            f(BPF_ALU | BPF_ADD | BPF_K, 0, 0, 4),
            f(BPF_MISC | BPF_TAX, 0, 0, 0),
            f(BPF_LD | BPF_W | BPF_LEN, 0, 0, 0),
            f(BPF_JMP | BPF_JGE | BPF_X, 1, 0, 0),
            f(BPF_RET | BPF_K, 0, 0, short),
            // A = the SPI at IHL * 4.
            f(BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0),
            f(BPF_LD | BPF_W | BPF_IND, 0, 0, 0),
        ]
    } else {
        vec![
            f(BPF_LD | BPF_W | BPF_LEN, 0, 0, 0),
            f(BPF_JMP | BPF_JGE | BPF_K, 1, 0, 4),
            f(BPF_RET | BPF_K, 0, 0, short),
            f(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0),
        ]
    };
    p.extend(tail);
    p
}

/// One raw ESP socket of one family.
#[derive(Debug)]
pub struct RawEspSock {
    sock: Socket,
    v6: bool,
}

impl RawEspSock {
    /// Opens a nonblocking raw ESP socket with packet info, for lane
    /// `lane` of `lanes` (the SPI filter, see the module documentation).
    /// Needs `CAP_NET_RAW`.
    pub fn open(v6: bool, lane: u32, lanes: u32) -> io::Result<RawEspSock> {
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let sock = Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_ESP)))?;
        if v6 {
            setsockopt(&sock, sockopt::Ipv6RecvPacketInfo, &true).map_err(io::Error::from)?;
        } else {
            setsockopt(&sock, sockopt::Ipv4PacketInfo, &true).map_err(io::Error::from)?;
        }
        if lanes > 1 {
            sock.attach_filter(&shard_filter(!v6, lane, lanes))?;
        }
        sock.set_nonblocking(true)?;
        // As for the UDP sockets: bursts, and failure only costs speed.
        let _ = sock.set_recv_buffer_size(4 << 20);
        let _ = sock.set_send_buffer_size(4 << 20);
        let s = RawEspSock { sock, v6 };
        // What arrived before the filter was attached went to every lane;
        // no SA exists yet at start, so it is nobody's loss.
        if lanes > 1 {
            s.discard_pending();
        }
        Ok(s)
    }

    fn discard_pending(&self) {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 64];
        while self.sock.recv(&mut buf).is_ok() {}
    }

    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// Sends one ESP packet to `remote` (port ignored) from `local`
    /// (unspecified: routing chooses); for tests and single packets, the
    /// lanes send in batches on [`fd`](Self::fd).
    pub fn send(&self, esp: &[u8], local: IpAddr, remote: IpAddr) -> io::Result<usize> {
        super::udp::send_pktinfo(
            self.sock.as_fd(),
            self.v6,
            esp,
            local,
            SocketAddr::new(remote, 0),
        )
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// A lane's raw ESP sockets: IPv4, and IPv6 where the host has it.
#[derive(Debug)]
pub struct RawSockets {
    pub v4: RawEspSock,
    pub v6: Option<RawEspSock>,
}

impl RawSockets {
    /// The sockets of lane `lane` of `lanes`; IPv6 only when `v6` (the
    /// daemon has IPv6 UDP sockets too) and the host allows it.
    pub fn open(lane: u32, lanes: u32, v6: bool) -> io::Result<RawSockets> {
        Ok(RawSockets {
            v4: RawEspSock::open(false, lane, lanes)?,
            v6: if v6 {
                RawEspSock::open(true, lane, lanes).ok()
            } else {
                None
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(ihl: u8, total: u16, frag: u16, proto: u8, payload: &[u8]) -> Vec<u8> {
        let hlen = usize::from(ihl) * 4;
        let mut p = vec![0u8; hlen.max(20)];
        p[0] = 0x40 | ihl;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[8] = 64;
        p[9] = proto;
        p[12..16].copy_from_slice(&[192, 0, 2, 1]);
        p[16..20].copy_from_slice(&[192, 0, 2, 2]);
        p.extend_from_slice(payload);
        p
    }

    const ESP: [u8; 12] = [0xc0, 0xff, 0xee, 0x01, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd];

    #[test]
    fn accepts_ipv4_and_strips_header_and_options() {
        let p = ipv4(5, 32, 0, 50, &ESP);
        let r = parse_ipv4(&p).unwrap();
        assert_eq!(&p[r.esp.clone()], &ESP);
        assert_eq!(r.src, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(r.dst, Ipv4Addr::new(192, 0, 2, 2));
        // Eight bytes of options (IHL 7); DF set is fine.
        let p = ipv4(7, 40, 0x4000, 50, &ESP);
        let r = parse_ipv4(&p).unwrap();
        assert_eq!(r.esp, 28..40);
        assert_eq!(&p[r.esp], &ESP);
        // Bytes beyond the total length are not ESP.
        let mut p = ipv4(5, 32, 0, 50, &ESP);
        p.extend_from_slice(&[9, 9]);
        assert_eq!(parse_ipv4(&p).unwrap().esp, 20..32);
        // A short ESP packet is passed on, for decapsulation to count.
        let p = ipv4(5, 22, 0, 50, &[1, 2]);
        assert_eq!(parse_ipv4(&p).unwrap().esp, 20..22);
    }

    #[test]
    fn rejects_bad_ipv4_headers() {
        assert_eq!(parse_ipv4(&[]), Err(RawError::Truncated));
        assert_eq!(
            parse_ipv4(&ipv4(5, 32, 0, 50, &ESP)[..19]),
            Err(RawError::Truncated)
        );
        let mut v6 = ipv4(5, 32, 0, 50, &ESP);
        v6[0] = 0x65;
        assert_eq!(parse_ipv4(&v6), Err(RawError::NotIpv4));
        for ihl in [0, 4] {
            assert_eq!(
                parse_ipv4(&ipv4(ihl, 32, 0, 50, &ESP)),
                Err(RawError::BadHeaderLength),
                "ihl {ihl}"
            );
        }
        // IHL 15 (60 bytes) in a 32-byte packet.
        let mut p = ipv4(5, 32, 0, 50, &ESP);
        p[0] = 0x4f;
        assert_eq!(parse_ipv4(&p), Err(RawError::BadHeaderLength));
        for total in [0, 19, 33, u16::MAX] {
            assert_eq!(
                parse_ipv4(&ipv4(5, total, 0, 50, &ESP)),
                Err(RawError::BadTotalLength),
                "total {total}"
            );
        }
        for frag in [0x2000, 0x0001, 0x1fff] {
            assert_eq!(
                parse_ipv4(&ipv4(5, 32, frag, 50, &ESP)),
                Err(RawError::Fragment)
            );
        }
        assert_eq!(
            parse_ipv4(&ipv4(5, 32, 0, 17, &ESP)),
            Err(RawError::NotEsp(17))
        );
        let mut zero = ESP;
        zero[..4].fill(0);
        assert_eq!(
            parse_ipv4(&ipv4(5, 32, 0, 50, &zero)),
            Err(RawError::SpiZero)
        );
    }

    #[test]
    fn parse_ipv4_never_panics_on_arbitrary_bytes() {
        // Every length up to 64 with a few header patterns.
        for len in 0..64usize {
            for first in [0x45u8, 0x4f, 0x40, 0x46, 0x00, 0xff] {
                let mut p: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
                if let Some(b) = p.first_mut() {
                    *b = first;
                }
                if let Ok(r) = parse_ipv4(&p) {
                    assert!(r.esp.start >= 20 && r.esp.end <= p.len());
                }
            }
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever a raw socket delivers, parsing answers with an
            /// in-bounds ESP range or an error; an accepted header is one
            /// the ESP range follows exactly.
            #[test]
            fn parse_ipv4_accepts_only_consistent_headers(
                mut b in proptest::collection::vec(any::<u8>(), 0..120),
                fix in any::<bool>(),
            ) {
                if fix && b.len() >= 20 {
                    // Often a plausible header, so the later checks run.
                    b[0] = 0x40 | (b[0] & 0x0f).max(5);
                    b[9] = 50;
                    let total = b.len() as u16;
                    b[2..4].copy_from_slice(&total.to_be_bytes());
                    b[6] &= 0x40;
                    b[7] = 0;
                }
                if let Ok(r) = parse_ipv4(&b) {
                    let ihl = usize::from(b[0] & 0x0f) * 4;
                    prop_assert_eq!(r.esp.start, ihl);
                    prop_assert!(r.esp.end <= b.len());
                    prop_assert_eq!(b[9], 50);
                }
            }
        }
    }

    #[test]
    fn raw_endpoints_are_told_apart_from_udp_ones() {
        let l: SocketAddr = "192.0.2.1:500".parse().unwrap();
        let r: SocketAddr = "192.0.2.2:500".parse().unwrap();
        let raw = raw_endpoints(l, r);
        assert!(is_raw(&raw));
        assert_eq!(raw.remote.ip(), r.ip());
        assert_eq!(raw.local.ip(), l.ip());
        assert!(!is_raw(&UdpEncap {
            local: "192.0.2.1:4500".parse().unwrap(),
            remote: "192.0.2.2:4500".parse().unwrap(),
        }));
    }

    /// Whether this process may open raw sockets (root in the test
    /// environment; skipped visibly otherwise).
    fn raw_allowed(test: &str) -> bool {
        match RawEspSock::open(false, 0, 1) {
            Ok(_) => true,
            Err(e) => {
                eprintln!("SKIP {test}: cannot open a raw ESP socket: {e}");
                false
            }
        }
    }

    /// Each SPI reaches exactly one of the sharded sockets, the one its
    /// value modulo the lane count says, for both families; a packet too
    /// short for an SPI reaches lane 0 only. Over loopback, so every
    /// raw ESP socket of this host (other tests running now) may see these
    /// packets: the SPIs are ones no test uses, and other packets are
    /// ignored.
    #[test]
    fn shard_filters_split_spis_over_lanes() {
        let test = "shard_filters_split_spis_over_lanes";
        if !raw_allowed(test) {
            return;
        }
        for v6 in [false, true] {
            let lanes = 3u32;
            let socks: Vec<RawEspSock> = match (0..lanes)
                .map(|k| RawEspSock::open(v6, k, lanes))
                .collect::<io::Result<_>>()
            {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("SKIP {test} (v6 {v6}): {e}");
                    continue;
                }
            };
            let lo: IpAddr = if v6 {
                "::1".parse().unwrap()
            } else {
                "127.0.0.1".parse().unwrap()
            };
            let base = 0x7a5e_0000u32;
            for i in 0..6u32 {
                let mut p = ESP;
                p[..4].copy_from_slice(&(base + i).to_be_bytes());
                socks[0].send(&p, lo, lo).unwrap();
            }
            socks[0].send(&[0x7a], lo, lo).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
            let mut got: Vec<Vec<u32>> = vec![Vec::new(); lanes as usize];
            let mut short = vec![0; lanes as usize];
            for (k, s) in socks.iter().enumerate() {
                let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 256];
                while let Ok(n) = s.sock.recv(&mut buf) {
                    // SAFETY: recv initialised the first n bytes.
                    let b: Vec<u8> = buf[..n]
                        .iter()
                        .map(|x| unsafe { x.assume_init() })
                        .collect();
                    let esp = if v6 {
                        &b[..]
                    } else {
                        match parse_ipv4(&b) {
                            Ok(r) => &b[r.esp],
                            Err(_) => continue,
                        }
                    };
                    if esp == [0x7a] {
                        short[k] += 1;
                    } else if let Some(spi) = esp.first_chunk::<4>() {
                        let spi = u32::from_be_bytes(*spi);
                        if spi & 0xffff_0000 == base {
                            got[k].push(spi - base);
                        }
                    }
                }
            }
            let want: Vec<Vec<u32>> = (0..lanes)
                .map(|k| (0..6).filter(|i| (base + i) % lanes == k).collect())
                .collect();
            assert_eq!(got, want, "v6 {v6}");
            assert_eq!(short, [1, 0, 0], "v6 {v6}");
        }
    }
}
