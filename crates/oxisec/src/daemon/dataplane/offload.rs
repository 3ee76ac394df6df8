//! TUN offloads done in userspace: cutting the kernel's TCP/UDP
//! super-packets into wire-sized IP packets before encryption
//! ([`Segmenter`], "GSO"), and merging consecutive TCP segments of one flow
//! after decryption into one super-packet for the TUN device ([`Coalescer`],
//! "GRO"; UDP datagrams too, when the kernel takes UDP segmentation
//! offload on the TUN device).
//!
//! With `IFF_VNET_HDR` and the `TUN_F_TSO*`/`TUN_F_USO*` offloads turned on,
//! every read from and write to the TUN device starts with a 10-byte
//! `virtio_net_hdr` ([`VnetHdr`]). The kernel then hands the data plane one
//! read of up to 64 KiB where it would otherwise hand ~45, and takes one
//! write where it would otherwise take ~45: the per-packet cost of the
//! system calls and of the kernel's stack traversal is paid per 64 KiB.
//!
//! Both directions keep every packet an ordinary, valid IP packet on the
//! wire: the segments get their own IP lengths, IDs, TCP sequence numbers
//! and full checksums, so any IPsec peer can receive them. The coalescer
//! only merges segments whose TCP or UDP checksum verifies (the kernel
//! trusts a merged packet's data, `CHECKSUM_PARTIAL`, and would otherwise
//! forward a segment that a host on the path corrupted with a freshly
//! computed, valid checksum; an IPv4 UDP datagram sent without a checksum
//! had no such protection to lose), that carry nothing but data (ACK, PSH
//! on the last one), and whose headers match byte for byte except for the
//! lengths, IDs, checksums and sequence numbers — the rules of the
//! kernel's own GRO. Merged UDP follows the kernel's UDP GRO: equal-sized
//! datagrams of one flow, the last one maybe shorter.
//!
//! Nothing here allocates or does I/O; every length comes from the packet
//! and is checked before use.
use std::io::IoSlice;
use std::ops::Range;

/// Length of the `virtio_net_hdr` in front of every TUN read and write.
pub const VNET_HDR_LEN: usize = 10;
const _: () = assert!(VNET_HDR_LEN == tun_rs::VIRTIO_NET_HDR_LEN);

/// `virtio_net_hdr.flags`: the checksum from `csum_start` to the end still
/// has to be computed and stored at `csum_start + csum_offset`.
pub const F_NEEDS_CSUM: u8 = 1;
pub const GSO_NONE: u8 = 0;
pub const GSO_TCPV4: u8 = 1;
pub const GSO_TCPV6: u8 = 4;
pub const GSO_UDP_L4: u8 = 5;
/// Modifier bit of `gso_type`: the TCP packet carries ECN's CWR.
pub const GSO_ECN: u8 = 0x80;

/// Most segments merged into one write. The kernel takes more, but 64
/// segments of 1 KiB and more already fill the 64 KiB an IPv4 length can
/// say, and the writev iovec array stays small.
pub const MAX_COALESCE: usize = 64;

/// Largest IP packet the coalescer builds (the IPv4 total length field).
const MAX_MERGED: usize = 65535;

const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;
const TCP_CWR: u8 = 0x80;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// The `virtio_net_hdr` (fields in host byte order, as the TUN device uses
/// them unless told otherwise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let b: &[u8; VNET_HDR_LEN] = b.first_chunk()?;
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    pub fn encode(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }
}

/// The internet checksum (RFC 1071).
pub mod csum {
    /// The ones' complement sum of `data` as 16-bit big-endian words (an odd
    /// last byte is the high half of a word), folded to 16 bits, not
    /// inverted.
    ///
    /// Summed as native-endian 32-bit words into four 64-bit accumulators
    /// (no carry can be lost below 2^32 words) and byte-swapped at the end:
    /// the ones' complement sum commutes with swapping the bytes of every
    /// word (RFC 1071 §2(B)).
    pub fn sum(data: &[u8]) -> u16 {
        let mut acc = [0u64; 4];
        let mut chunks = data.chunks_exact(16);
        for c in &mut chunks {
            for (i, a) in acc.iter_mut().enumerate() {
                let w = [c[4 * i], c[4 * i + 1], c[4 * i + 2], c[4 * i + 3]];
                *a += u64::from(u32::from_ne_bytes(w));
            }
        }
        let rest = chunks.remainder();
        let mut tail = [0u8; 16];
        tail[..rest.len()].copy_from_slice(rest);
        for (i, a) in acc.iter_mut().enumerate() {
            let w = [
                tail[4 * i],
                tail[4 * i + 1],
                tail[4 * i + 2],
                tail[4 * i + 3],
            ];
            *a += u64::from(u32::from_ne_bytes(w));
        }
        let native = fold(acc.iter().fold(0u64, |s, a| add64(s, *a)));
        if cfg!(target_endian = "little") {
            native.swap_bytes()
        } else {
            native
        }
    }

    /// Ones' complement addition of two 64-bit partial sums.
    fn add64(a: u64, b: u64) -> u64 {
        let (s, carry) = a.overflowing_add(b);
        s + u64::from(carry)
    }

    /// Folds a partial sum to 16 bits.
    pub fn fold(mut s: u64) -> u16 {
        while s > 0xffff {
            s = (s >> 16) + (s & 0xffff);
        }
        s as u16
    }

    /// Ones' complement addition of two folded sums.
    pub fn add(a: u16, b: u16) -> u16 {
        fold(u64::from(a) + u64::from(b))
    }

    /// The sum of the TCP/UDP pseudo-header (RFC 793, RFC 8200 §8.1) for
    /// addresses `src` and `dst` (4 or 16 bytes each).
    pub fn pseudo(src: &[u8], dst: &[u8], proto: u8, l4_len: usize) -> u16 {
        let mut s = u64::from(proto) + (l4_len as u64 & 0xffff) + ((l4_len as u64) >> 16);
        for pair in src.chunks_exact(2).chain(dst.chunks_exact(2)) {
            s += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
        }
        fold(s)
    }
}

/// Why a TUN read could not be segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    #[error("shorter than its headers")]
    Truncated,
    #[error("unsupported GSO type {0}")]
    GsoType(u8),
    #[error("GSO type does not match the IP version or protocol")]
    Mismatch,
    #[error("inconsistent checksum offsets")]
    BadCsumOffsets,
    #[error("GSO segment size 0")]
    ZeroSegment,
}

/// What [`Segmenter`] does with the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One packet; maybe a checksum to finish at `csum_start + csum_offset`.
    Single {
        csum: Option<(usize, usize)>,
    },
    Tcp,
    Udp,
}

/// One TUN read cut into the IP packets it stands for, written out one at
/// a time where the caller wants them ([`Segmenter::write`]).
#[derive(Debug)]
pub struct Segmenter<'p> {
    pkt: &'p [u8],
    kind: Kind,
    v6: bool,
    /// Start of the transport header.
    l4: usize,
    /// IP + transport header length: what every segment repeats.
    hdr_len: usize,
    /// Payload bytes per segment (the last may be shorter).
    mss: usize,
    payload_len: usize,
    count: usize,
}

impl<'p> Segmenter<'p> {
    /// `pkt` is what followed `hdr` in one TUN read.
    pub fn new(hdr: &VnetHdr, pkt: &'p [u8]) -> Result<Segmenter<'p>, OffloadError> {
        let single = |csum| Segmenter {
            pkt,
            kind: Kind::Single { csum },
            v6: false,
            l4: 0,
            hdr_len: 0,
            mss: 0,
            payload_len: 0,
            count: 1,
        };
        let base = hdr.gso_type & !GSO_ECN;
        if base == GSO_NONE {
            if hdr.flags & F_NEEDS_CSUM == 0 {
                return Ok(single(None));
            }
            let (start, off) = (usize::from(hdr.csum_start), usize::from(hdr.csum_offset));
            if start + off + 2 > pkt.len() {
                return Err(OffloadError::BadCsumOffsets);
            }
            return Ok(single(Some((start, off))));
        }
        let (proto, kind) = match base {
            GSO_TCPV4 | GSO_TCPV6 => (PROTO_TCP, Kind::Tcp),
            GSO_UDP_L4 => (PROTO_UDP, Kind::Udp),
            other => return Err(OffloadError::GsoType(other)),
        };
        if hdr.gso_size == 0 {
            return Err(OffloadError::ZeroSegment);
        }
        let v6 = match pkt.first().map(|b| b >> 4) {
            Some(4) => false,
            Some(6) => true,
            _ => return Err(OffloadError::Mismatch),
        };
        if (base == GSO_TCPV4 && v6) || (base == GSO_TCPV6 && !v6) {
            return Err(OffloadError::Mismatch);
        }
        // The transport header starts at csum_start; check it against the
        // IP header rather than trusting it.
        let l4 = usize::from(hdr.csum_start);
        if v6 {
            if pkt.len() < 40 || l4 < 40 || (l4 == 40 && pkt[6] != proto) {
                return Err(OffloadError::Mismatch);
            }
        } else {
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            if pkt.len() < 20 || ihl < 20 || l4 != ihl || pkt[9] != proto {
                return Err(OffloadError::Mismatch);
            }
        }
        let expect_off = if kind == Kind::Tcp { 16 } else { 6 };
        if usize::from(hdr.csum_offset) != expect_off {
            return Err(OffloadError::BadCsumOffsets);
        }
        let l4_hdr = match kind {
            Kind::Tcp => {
                let doff = pkt.get(l4 + 12).ok_or(OffloadError::Truncated)? >> 4;
                let len = usize::from(doff) * 4;
                if len < 20 {
                    return Err(OffloadError::Truncated);
                }
                len
            }
            _ => 8,
        };
        let hdr_len = l4 + l4_hdr;
        if hdr_len > pkt.len() {
            return Err(OffloadError::Truncated);
        }
        let mss = usize::from(hdr.gso_size);
        let payload_len = pkt.len() - hdr_len;
        Ok(Segmenter {
            pkt,
            kind,
            v6,
            l4,
            hdr_len,
            mss,
            payload_len,
            count: payload_len.div_ceil(mss).max(1),
        })
    }

    /// How many IP packets the read stands for.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The read as the kernel gave it: its IP header and the first
    /// transport header are those of every segment (for the policy lookup).
    pub fn packet(&self) -> &[u8] {
        self.pkt
    }

    /// Length of segment `i`.
    pub fn len(&self, i: usize) -> usize {
        match self.kind {
            Kind::Single { .. } => self.pkt.len(),
            _ => self.hdr_len + self.seg_payload(i).len(),
        }
    }

    fn seg_payload(&self, i: usize) -> Range<usize> {
        let start = (i * self.mss).min(self.payload_len);
        let end = (start + self.mss).min(self.payload_len);
        self.hdr_len + start..self.hdr_len + end
    }

    /// Writes segment `i` (< [`count`](Self::count)) into the front of
    /// `out`, with its own lengths, IDs, sequence number and a complete
    /// checksum; returns its length. `None` if `out` is too small.
    pub fn write(&self, i: usize, out: &mut [u8]) -> Option<usize> {
        let len = self.len(i);
        let out = out.get_mut(..len)?;
        if let Kind::Single { csum } = self.kind {
            out.copy_from_slice(self.pkt);
            if let Some((start, off)) = csum {
                // The field holds the pseudo-header sum already.
                let c = !csum::sum(&out[start..]);
                out[start + off..start + off + 2].copy_from_slice(&c.to_be_bytes());
            }
            return Some(len);
        }
        let payload = self.seg_payload(i);
        let (hdr_len, l4) = (self.hdr_len, self.l4);
        out[..hdr_len].copy_from_slice(&self.pkt[..hdr_len]);
        out[hdr_len..].copy_from_slice(&self.pkt[payload.clone()]);
        let l4_len = len - l4;
        let (src, dst) = if self.v6 {
            out[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
            (8..24, 24..40)
        } else {
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            let id = u16::from_be_bytes([out[4], out[5]]).wrapping_add(i as u16);
            out[4..6].copy_from_slice(&id.to_be_bytes());
            out[10..12].fill(0);
            let c = !csum::sum(&out[..l4]);
            out[10..12].copy_from_slice(&c.to_be_bytes());
            (12..16, 16..20)
        };
        let csum_at = match self.kind {
            Kind::Tcp => {
                let seq = u32::from_be_bytes([out[l4 + 4], out[l4 + 5], out[l4 + 6], out[l4 + 7]])
                    .wrapping_add((payload.start - hdr_len) as u32);
                out[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
                // Like the kernel's TSO: FIN and PSH only on the last
                // segment, CWR only on the first.
                if i + 1 < self.count {
                    out[l4 + 13] &= !(TCP_FIN | TCP_PSH);
                }
                if i > 0 {
                    out[l4 + 13] &= !TCP_CWR;
                }
                l4 + 16
            }
            _ => {
                out[l4 + 4..l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
                l4 + 6
            }
        };
        let proto = if self.kind == Kind::Tcp {
            PROTO_TCP
        } else {
            PROTO_UDP
        };
        out[csum_at..csum_at + 2].fill(0);
        let pseudo = csum::pseudo(&out[src], &out[dst], proto, l4_len);
        let mut c = !csum::add(pseudo, csum::sum(&out[l4..]));
        if proto == PROTO_UDP && c == 0 {
            c = 0xffff;
        }
        out[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
        Some(len)
    }
}

/// The coalescing-relevant facts of a TCP or UDP packet.
#[derive(Debug, Clone, Copy)]
struct Seg {
    udp: bool,
    v6: bool,
    /// IP header length = start of the transport header.
    l4: usize,
    /// IP + transport header length.
    hdr_len: usize,
    /// TCP only.
    seq: u32,
    flags: u8,
}

impl Seg {
    /// `Some` for an IPv4 (no options, not a fragment) or IPv6 (no
    /// extension headers) packet the coalescer may merge: TCP that carries
    /// data, only the ACK and maybe the PSH flag, and a correct checksum;
    /// with `udp`, also UDP that carries data and a correct (or, over IPv4,
    /// no) checksum. Anything else is written as it is.
    fn parse(p: &[u8], udp: bool) -> Option<Seg> {
        let (v6, l4, proto) = match p.first()? >> 4 {
            4 => {
                if p.len() < 28
                    || p[0] & 0x0f != 5
                    || usize::from(u16::from_be_bytes([p[2], p[3]])) != p.len()
                    || u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0
                {
                    return None;
                }
                (false, 20, p[9])
            }
            6 => {
                if p.len() < 48 || usize::from(u16::from_be_bytes([p[4], p[5]])) + 40 != p.len() {
                    return None;
                }
                (true, 40, p[6])
            }
            _ => return None,
        };
        let (src, dst) = if v6 {
            (8..24, 24..40)
        } else {
            (12..16, 16..20)
        };
        let verified = |p: &[u8], proto| {
            let pseudo = csum::pseudo(&p[src.clone()], &p[dst.clone()], proto, p.len() - l4);
            csum::add(pseudo, csum::sum(&p[l4..])) == 0xffff
        };
        match proto {
            PROTO_TCP => {
                let doff = usize::from(*p.get(l4 + 12)? >> 4) * 4;
                let hdr_len = l4 + doff;
                let flags = *p.get(l4 + 13)?;
                if doff < 20
                    || hdr_len >= p.len()
                    || flags & !(TCP_ACK | TCP_PSH) != 0
                    || flags & TCP_ACK == 0
                    || !verified(p, PROTO_TCP)
                {
                    return None;
                }
                let seq = u32::from_be_bytes([p[l4 + 4], p[l4 + 5], p[l4 + 6], p[l4 + 7]]);
                Some(Seg {
                    udp: false,
                    v6,
                    l4,
                    hdr_len,
                    seq,
                    flags,
                })
            }
            PROTO_UDP if udp => {
                let hdr_len = l4 + 8;
                let len_field = usize::from(u16::from_be_bytes([p[l4 + 4], p[l4 + 5]]));
                let no_csum = !v6 && p[l4 + 6..l4 + 8] == [0, 0];
                if hdr_len >= p.len()
                    || len_field != p.len() - l4
                    || !(no_csum || verified(p, PROTO_UDP))
                {
                    return None;
                }
                Some(Seg {
                    udp: true,
                    v6,
                    l4,
                    hdr_len,
                    seq: 0,
                    flags: 0,
                })
            }
            _ => None,
        }
    }

    /// Whether `q` (a packet of this shape) belongs to the same flow and
    /// burst as `p`: every header byte equal except lengths, IDs,
    /// checksums, the TCP sequence number and PSH.
    fn same_flow(&self, p: &[u8], q: &[u8]) -> bool {
        let l4 = self.l4;
        let ip_same = if self.v6 {
            // Version, traffic class, flow label; next header, hop limit;
            // addresses.
            p[..4] == q[..4] && p[6..40] == q[6..40]
        } else {
            // TOS; DF; TTL and protocol; addresses.
            p[1] == q[1]
                && (p[6] & 0x40) == (q[6] & 0x40)
                && p[8..10] == q[8..10]
                && p[12..20] == q[12..20]
        };
        // Ports; for TCP also ack; data offset; window; options.
        ip_same
            && p[l4..l4 + 4] == q[l4..l4 + 4]
            && (self.udp
                || (p[l4 + 8..l4 + 13] == q[l4 + 8..l4 + 13]
                    && p[l4 + 14..l4 + 16] == q[l4 + 14..l4 + 16]
                    && p[l4 + 20..self.hdr_len] == q[l4 + 20..self.hdr_len]))
    }
}

/// The burst being merged.
#[derive(Debug)]
struct Group {
    /// The first packet, whole; its headers become the merged packet's.
    first: Range<usize>,
    seg: Seg,
    /// Payload bytes per segment: the first packet's.
    gso_size: usize,
    /// Length of the merged IP packet so far.
    total: usize,
    next_seq: u32,
    psh: bool,
    /// A short segment or PSH ended the burst.
    closed: bool,
    /// Payloads of the second and later packets.
    more: [Range<usize>; MAX_COALESCE - 1],
    count: usize,
}

/// Merges runs of consecutive TCP segments (and, when the TUN device takes
/// UDP segmentation offload, UDP datagrams) of one flow into super-packets
/// for the TUN device, in order; everything else passes through unchanged.
///
/// Packets are given as ranges of one buffer (the receive area they were
/// decrypted in); merging patches the first packet's headers in place and
/// gathers the payloads with one vectored write, so no payload is copied.
/// A merged UDP packet is cut back into the original datagrams by the
/// kernel before any socket that did not ask for UDP GRO sees it.
#[derive(Debug)]
pub struct Coalescer {
    group: Option<Group>,
    udp: bool,
    /// Writes handed out, and packets they carried (statistics, tests).
    pub writes: u64,
    pub packets: u64,
}

impl Default for Coalescer {
    fn default() -> Self {
        Coalescer::new(false)
    }
}

impl Coalescer {
    /// `udp`: also merge UDP (the TUN device accepts `GSO_UDP_L4`).
    pub fn new(udp: bool) -> Coalescer {
        Coalescer {
            group: None,
            udp,
            writes: 0,
            packets: 0,
        }
    }

    /// Adds the IP packet `area[pkt]`. Writes (through `write`, one call
    /// per TUN write, the iovecs starting with the virtio header) whatever
    /// can no longer grow. Call [`flush`](Self::flush) at the end of a batch.
    pub fn push<W>(&mut self, area: &mut [u8], pkt: Range<usize>, write: &mut W)
    where
        W: FnMut(&[IoSlice<'_>]),
    {
        self.packets += 1;
        let Some(seg) = area.get(pkt.clone()).and_then(|p| Seg::parse(p, self.udp)) else {
            self.flush(area, write);
            self.write_single(area, pkt, write);
            return;
        };
        let payload_len = pkt.len() - seg.hdr_len;
        if let Some(g) = &mut self.group
            && !g.closed
            && g.count < MAX_COALESCE
            && g.seg.udp == seg.udp
            && g.seg.v6 == seg.v6
            && g.seg.hdr_len == seg.hdr_len
            && (seg.udp || g.next_seq == seg.seq)
            && payload_len <= g.gso_size
            && g.total + payload_len <= MAX_MERGED
            && g.seg.same_flow(&area[g.first.clone()], &area[pkt.clone()])
        {
            g.more[g.count - 1] = pkt.start + seg.hdr_len..pkt.end;
            g.count += 1;
            g.total += payload_len;
            g.next_seq = g.next_seq.wrapping_add(payload_len as u32);
            g.psh |= seg.flags & TCP_PSH != 0;
            g.closed = payload_len < g.gso_size || seg.flags & TCP_PSH != 0;
            return;
        }
        self.flush(area, write);
        self.group = Some(Group {
            first: pkt.clone(),
            seg,
            gso_size: payload_len,
            total: pkt.len(),
            next_seq: seg.seq.wrapping_add(payload_len as u32),
            psh: seg.flags & TCP_PSH != 0,
            closed: seg.flags & TCP_PSH != 0,
            more: std::array::from_fn(|_| 0..0),
            count: 1,
        });
    }

    fn write_single<W>(&mut self, area: &[u8], pkt: Range<usize>, write: &mut W)
    where
        W: FnMut(&[IoSlice<'_>]),
    {
        let hdr = VnetHdr::default().encode();
        self.writes += 1;
        write(&[IoSlice::new(&hdr), IoSlice::new(&area[pkt])]);
    }

    /// Writes the burst being merged, if any.
    pub fn flush<W>(&mut self, area: &mut [u8], write: &mut W)
    where
        W: FnMut(&[IoSlice<'_>]),
    {
        let Some(g) = self.group.take() else {
            return;
        };
        if g.count == 1 {
            self.write_single(area, g.first, write);
            return;
        }
        let s = g.seg;
        let p = &mut area[g.first.clone()];
        let l4 = s.l4;
        let (src, dst) = if s.v6 {
            p[4..6].copy_from_slice(&((g.total - 40) as u16).to_be_bytes());
            (8..24, 24..40)
        } else {
            p[2..4].copy_from_slice(&(g.total as u16).to_be_bytes());
            p[10..12].fill(0);
            let c = !csum::sum(&p[..20]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            (12..16, 16..20)
        };
        let (proto, csum_offset, gso_type) = if s.udp {
            // The length of the merged datagram; the kernel writes each
            // segment's own when it cuts them apart.
            p[l4 + 4..l4 + 6].copy_from_slice(&((g.total - l4) as u16).to_be_bytes());
            (PROTO_UDP, 6, GSO_UDP_L4)
        } else {
            if g.psh {
                p[l4 + 13] |= TCP_PSH;
            }
            let t = if s.v6 { GSO_TCPV6 } else { GSO_TCPV4 };
            (PROTO_TCP, 16, t)
        };
        // CHECKSUM_PARTIAL: the field holds the pseudo-header sum and the
        // kernel (or the NIC) completes it over the merged payload.
        let pseudo = csum::pseudo(&p[src], &p[dst], proto, g.total - l4);
        p[l4 + csum_offset..l4 + csum_offset + 2].copy_from_slice(&pseudo.to_be_bytes());
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type,
            hdr_len: s.hdr_len as u16,
            gso_size: g.gso_size as u16,
            csum_start: l4 as u16,
            csum_offset: csum_offset as u16,
        }
        .encode();
        let area: &[u8] = area;
        let mut iov = [IoSlice::new(&[]); MAX_COALESCE + 1];
        iov[0] = IoSlice::new(&hdr);
        iov[1] = IoSlice::new(&area[g.first.clone()]);
        for (slot, r) in iov[2..].iter_mut().zip(&g.more[..g.count - 1]) {
            *slot = IoSlice::new(&area[r.clone()]);
        }
        self.writes += 1;
        write(&iov[..g.count + 1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP_SYN: u8 = 0x02;
    const TCP_RST: u8 = 0x04;

    /// The textbook checksum: 16-bit big-endian words summed with carries.
    fn naive_sum(data: &[u8]) -> u16 {
        let mut s: u64 = 0;
        for c in data.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            s += u64::from(w);
        }
        csum::fold(s)
    }

    #[test]
    fn checksum_matches_the_textbook_at_every_length() {
        let mut x = 0x1234_5678u32;
        let data: Vec<u8> = (0..3000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for len in (0..80).chain([1399, 1400, 1401, 2999]) {
            assert_eq!(csum::sum(&data[..len]), naive_sum(&data[..len]), "{len}");
        }
        // All ones: many carries.
        let ff = vec![0xffu8; 4096];
        assert_eq!(csum::sum(&ff), naive_sum(&ff));
        // RFC 1071 §3's example.
        assert_eq!(
            csum::sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    /// An IPv4 (or IPv6) TCP packet with a valid checksum.
    pub(crate) fn tcp(v6: bool, seq: u32, flags: u8, payload: &[u8], opts: &[u8]) -> Vec<u8> {
        let l4 = if v6 { 40 } else { 20 };
        let doff = 20 + opts.len();
        let len = l4 + doff + payload.len();
        let mut p = vec![0u8; len];
        if v6 {
            p[0] = 0x60;
            p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
            p[6] = PROTO_TCP;
            p[7] = 64;
            p[8..24].copy_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            p[24..40].copy_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        } else {
            p[0] = 0x45;
            p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            p[4..6].copy_from_slice(&0x1000u16.to_be_bytes());
            p[6] = 0x40;
            p[8] = 64;
            p[9] = PROTO_TCP;
            p[12..16].copy_from_slice(&[198, 51, 100, 1]);
            p[16..20].copy_from_slice(&[203, 0, 113, 1]);
            let c = !csum::sum(&p[..20]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        p[l4..l4 + 2].copy_from_slice(&40000u16.to_be_bytes());
        p[l4 + 2..l4 + 4].copy_from_slice(&5201u16.to_be_bytes());
        p[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        p[l4 + 8..l4 + 12].copy_from_slice(&77u32.to_be_bytes());
        p[l4 + 12] = ((doff / 4) as u8) << 4;
        p[l4 + 13] = flags;
        p[l4 + 14..l4 + 16].copy_from_slice(&512u16.to_be_bytes());
        p[l4 + 20..l4 + doff].copy_from_slice(opts);
        p[l4 + doff..].copy_from_slice(payload);
        let (src, dst) = if v6 {
            (8..24, 24..40)
        } else {
            (12..16, 16..20)
        };
        let pseudo = csum::pseudo(&p[src], &p[dst], PROTO_TCP, len - l4);
        let c = !csum::add(pseudo, csum::sum(&p[l4..]));
        p[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn valid_l4_checksum(p: &[u8]) -> bool {
        let v6 = p[0] >> 4 == 6;
        let l4 = if v6 { 40 } else { usize::from(p[0] & 15) * 4 };
        let proto = if v6 { p[6] } else { p[9] };
        let (src, dst) = if v6 {
            (8..24, 24..40)
        } else {
            (12..16, 16..20)
        };
        let pseudo = csum::pseudo(&p[src], &p[dst], proto, p.len() - l4);
        csum::add(pseudo, csum::sum(&p[l4..])) == 0xffff && (v6 || csum::sum(&p[..20]) == 0xffff)
    }

    /// A TSO super-packet as the kernel hands it over: one header, all the
    /// payload, the checksum field holding only the pseudo-header sum.
    fn super_packet(v6: bool, payload: &[u8], flags: u8, mss: u16) -> (VnetHdr, Vec<u8>) {
        let mut p = tcp(
            v6,
            1000,
            flags,
            payload,
            &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
        );
        let l4 = if v6 { 40 } else { 20 };
        let (src, dst) = if v6 {
            (8..24, 24..40)
        } else {
            (12..16, 16..20)
        };
        let pseudo = csum::pseudo(&p[src.clone()], &p[dst.clone()], PROTO_TCP, p.len() - l4);
        p[l4 + 16..l4 + 18].copy_from_slice(&pseudo.to_be_bytes());
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 },
            hdr_len: (l4 + 32) as u16,
            gso_size: mss,
            csum_start: l4 as u16,
            csum_offset: 16,
        };
        (h, p)
    }

    #[test]
    fn vnet_header_round_trips() {
        let h = VnetHdr {
            flags: 1,
            gso_type: GSO_TCPV6,
            hdr_len: 72,
            gso_size: 1348,
            csum_start: 40,
            csum_offset: 16,
        };
        assert_eq!(VnetHdr::parse(&h.encode()), Some(h));
        assert_eq!(VnetHdr::parse(&[0; 9]), None);
    }

    #[test]
    fn tso_packets_split_into_valid_segments_that_merge_back() {
        for v6 in [false, true] {
            let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
            let (h, sp) = super_packet(v6, &payload, TCP_ACK | TCP_PSH, 1348);
            let s = Segmenter::new(&h, &sp).unwrap();
            assert_eq!(s.count(), 8);
            let mut out = vec![0u8; 65536 + 2048];
            let mut ranges = Vec::new();
            let mut at = 0;
            for i in 0..s.count() {
                let n = s.write(i, &mut out[at..]).unwrap();
                let seg = &out[at..at + n];
                assert!(valid_l4_checksum(seg), "segment {i} (v6 {v6})");
                let l4 = if v6 { 40 } else { 20 };
                let seq = u32::from_be_bytes(seg[l4 + 4..l4 + 8].try_into().unwrap());
                assert_eq!(seq, 1000 + 1348 * i as u32);
                let psh = seg[l4 + 13] & TCP_PSH != 0;
                assert_eq!(psh, i == 7, "PSH only on the last");
                if !v6 {
                    assert_eq!(u16::from_be_bytes([seg[4], seg[5]]), 0x1000 + i as u16);
                }
                ranges.push(at..at + n);
                at += n + 37; // gaps, as between ESP packets
            }
            assert_eq!(s.write(0, &mut out[..100]), None);
            // Merge them back: one write, a GSO packet equal to the original.
            let mut c = Coalescer::new(true);
            let mut writes: Vec<Vec<u8>> = Vec::new();
            let mut w =
                |iov: &[IoSlice<'_>]| writes.push(iov.iter().flat_map(|s| s.to_vec()).collect());
            for r in ranges {
                c.push(&mut out, r, &mut w);
            }
            c.flush(&mut out, &mut w);
            assert_eq!(writes.len(), 1);
            let hdr = VnetHdr::parse(&writes[0]).unwrap();
            let merged = &writes[0][VNET_HDR_LEN..];
            assert_eq!(hdr.gso_type, if v6 { GSO_TCPV6 } else { GSO_TCPV4 });
            assert_eq!(
                (hdr.gso_size, hdr.flags, hdr.csum_offset),
                (1348, F_NEEDS_CSUM, 16)
            );
            assert_eq!(merged.len(), sp.len());
            // Same as what the kernel gave us, but for the IPv4 ID of the
            // first segment (equal) and the checksum fields.
            let l4 = usize::from(hdr.csum_start);
            assert_eq!(merged[l4 + 16..l4 + 18], sp[l4 + 16..l4 + 18], "pseudo sum");
            assert_eq!(merged, &sp[..]);
            assert_eq!(hdr.hdr_len as usize, l4 + 32);
        }
    }

    #[test]
    fn segmenter_rejects_inconsistent_headers() {
        let (h, sp) = super_packet(false, &[0; 3000], TCP_ACK, 1000);
        let bad = |f: &dyn Fn(&mut VnetHdr, &mut Vec<u8>)| {
            let (mut h, mut p) = (h, sp.clone());
            f(&mut h, &mut p);
            Segmenter::new(&h, &p).err()
        };
        assert_eq!(bad(&|h, _| h.gso_size = 0), Some(OffloadError::ZeroSegment));
        assert_eq!(
            bad(&|h, _| h.gso_type = GSO_TCPV6),
            Some(OffloadError::Mismatch)
        );
        assert_eq!(bad(&|h, _| h.gso_type = 3), Some(OffloadError::GsoType(3)));
        assert_eq!(bad(&|h, _| h.csum_start = 24), Some(OffloadError::Mismatch));
        assert_eq!(
            bad(&|h, _| h.csum_offset = 6),
            Some(OffloadError::BadCsumOffsets)
        );
        assert_eq!(bad(&|_, p| p.truncate(30)), Some(OffloadError::Truncated));
        assert_eq!(bad(&|_, p| p.truncate(10)), Some(OffloadError::Mismatch));
        assert_eq!(
            bad(&|_, p| p[20 + 12] = 0x10),
            Some(OffloadError::Truncated)
        );
        assert_eq!(
            bad(&|h, _| {
                h.gso_type = GSO_NONE;
                h.csum_start = 4000;
            }),
            Some(OffloadError::BadCsumOffsets)
        );
        // ECN on top of TCP is fine.
        assert!(bad(&|h, _| h.gso_type |= GSO_ECN).is_none());
    }

    #[test]
    fn a_single_packet_gets_its_checksum_completed() {
        let mut p = tcp(false, 1, TCP_ACK, b"hello", &[]);
        let good = p.clone();
        let pseudo = csum::pseudo(&p[12..16], &p[16..20], PROTO_TCP, p.len() - 20);
        p[36..38].copy_from_slice(&pseudo.to_be_bytes());
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 20,
            csum_offset: 16,
            ..Default::default()
        };
        let s = Segmenter::new(&h, &p).unwrap();
        assert_eq!(s.count(), 1);
        let mut out = [0u8; 100];
        let n = s.write(0, &mut out).unwrap();
        assert_eq!(&out[..n], &good[..]);
        // Without NEEDS_CSUM it is copied as it is.
        let s = Segmenter::new(&VnetHdr::default(), &p).unwrap();
        s.write(0, &mut out).unwrap();
        assert_eq!(&out[..n], &p[..]);
    }

    #[test]
    fn udp_gso_splits_into_datagrams() {
        let mut p = vec![0u8; 20 + 8 + 2500];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(2528u16).to_be_bytes());
        p[8] = 64;
        p[9] = PROTO_UDP;
        p[12..20].copy_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
        for (i, b) in p[28..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_UDP_L4,
            hdr_len: 28,
            gso_size: 1000,
            csum_start: 20,
            csum_offset: 6,
        };
        let s = Segmenter::new(&h, &p).unwrap();
        assert_eq!(s.count(), 3);
        let mut out = [0u8; 2000];
        for i in 0..3 {
            let n = s.write(i, &mut out).unwrap();
            assert_eq!(n, 28 + if i == 2 { 500 } else { 1000 });
            assert_eq!(usize::from(u16::from_be_bytes([out[24], out[25]])), n - 20);
            assert!(valid_l4_checksum(&out[..n]));
            assert_eq!(out[28], (i * 1000) as u8);
        }
    }

    /// Feeds `pkts` through a coalescer; returns the writes (header +
    /// packet bytes) it made.
    fn coalesce(pkts: &[Vec<u8>]) -> Vec<(VnetHdr, Vec<u8>)> {
        let mut area = Vec::new();
        let mut ranges = Vec::new();
        for p in pkts {
            ranges.push(area.len()..area.len() + p.len());
            area.extend_from_slice(p);
            area.extend_from_slice(&[0xee; 5]);
        }
        let mut c = Coalescer::new(true);
        let mut writes = Vec::new();
        let mut w = |iov: &[IoSlice<'_>]| {
            let all: Vec<u8> = iov.iter().flat_map(|s| s.to_vec()).collect();
            writes.push((VnetHdr::parse(&all).unwrap(), all[VNET_HDR_LEN..].to_vec()));
        };
        for r in ranges {
            c.push(&mut area, r, &mut w);
        }
        c.flush(&mut area, &mut w);
        assert_eq!(c.packets as usize, pkts.len());
        writes
    }

    #[test]
    fn only_what_the_kernel_would_merge_is_merged() {
        let opts = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
        let d = |seq, flags| tcp(false, seq, flags, &[7; 100], &opts);
        let ack = TCP_ACK;
        // A run, then a gap in the sequence, then a run.
        let w = coalesce(&[
            d(0, ack),
            d(100, ack),
            d(200, ack),
            d(400, ack),
            d(500, ack),
        ]);
        let shapes: Vec<(u8, usize)> = w.iter().map(|(h, p)| (h.gso_type, p.len())).collect();
        assert_eq!(
            shapes,
            [(GSO_TCPV4, 40 + 12 + 300), (GSO_TCPV4, 40 + 12 + 200)]
        );
        // PSH ends a burst (and is kept); a SYN, a FIN, a pure ACK or a
        // packet with a bad checksum is never merged.
        let mut bad = d(300, ack);
        bad[60] ^= 1;
        let fin = d(300, ack | TCP_FIN);
        let w = coalesce(&[
            d(0, ack),
            d(100, ack | TCP_PSH),
            d(200, ack),
            bad,
            fin,
            tcp(false, 400, ack, &[], &opts),
            d(400, TCP_SYN | ack),
            d(400, TCP_RST | ack),
        ]);
        let kinds: Vec<(u8, usize)> = w.iter().map(|(h, p)| (h.gso_type, p.len())).collect();
        assert_eq!(
            kinds,
            [
                (GSO_TCPV4, 252),
                (GSO_NONE, 152),
                (GSO_NONE, 152),
                (GSO_NONE, 152),
                (GSO_NONE, 52),
                (GSO_NONE, 152),
                (GSO_NONE, 152),
            ]
        );
        assert_ne!(w[0].1[33] & TCP_PSH, 0, "PSH kept on the merged packet");
        // A shorter segment ends the burst but joins it; a longer one does not.
        let short = tcp(false, 200, ack, &[7; 50], &opts);
        let long = tcp(false, 250, ack, &[7; 150], &opts);
        let w = coalesce(&[d(0, ack), d(100, ack), short, long]);
        let lens: Vec<usize> = w.iter().map(|(_, p)| p.len()).collect();
        assert_eq!(lens, [52 + 250, 52 + 150]);
        // Different options (a newer timestamp) or ack: not merged.
        let other_ts = tcp(
            false,
            100,
            ack,
            &[7; 100],
            &[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 2],
        );
        assert_eq!(coalesce(&[d(0, ack), other_ts]).len(), 2);
        // Fragments and non-TCP pass through.
        let mut frag = d(100, ack);
        frag[6] |= 0x20;
        assert_eq!(coalesce(&[d(0, ack), frag]).len(), 2);
        assert_eq!(coalesce(&[vec![0x45; 3], vec![]]).len(), 2);
    }

    /// An IPv4 UDP datagram with a valid checksum (or none).
    fn udp(payload: &[u8], port: u16, with_csum: bool) -> Vec<u8> {
        let len = 28 + payload.len();
        let mut p = vec![0u8; len];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[8] = 64;
        p[9] = PROTO_UDP;
        p[12..20].copy_from_slice(&[198, 51, 100, 1, 203, 0, 113, 1]);
        let c = !csum::sum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p[20..22].copy_from_slice(&port.to_be_bytes());
        p[22..24].copy_from_slice(&5201u16.to_be_bytes());
        p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
        p[28..].copy_from_slice(payload);
        if with_csum {
            let pseudo = csum::pseudo(&p[12..16], &p[16..20], PROTO_UDP, len - 20);
            let c = !csum::add(pseudo, csum::sum(&p[20..]));
            p[26..28].copy_from_slice(&c.to_be_bytes());
        }
        p
    }

    #[test]
    fn udp_datagrams_merge_and_split_back_exactly() {
        let d: Vec<Vec<u8>> = (0..5u8)
            .map(|i| udp(&vec![i; if i == 4 { 20 } else { 36 }], 4000, i != 2))
            .collect();
        let w = coalesce(&d);
        assert_eq!(w.len(), 1);
        let (h, merged) = &w[0];
        assert_eq!((h.gso_type, h.gso_size, h.hdr_len), (GSO_UDP_L4, 36, 28));
        assert_eq!(
            (h.csum_start, h.csum_offset, h.flags),
            (20, 6, F_NEEDS_CSUM)
        );
        assert_eq!(merged.len(), 28 + 4 * 36 + 20);
        // What the kernel does with it: cut it back into the datagrams.
        let s = Segmenter::new(h, merged).unwrap();
        assert_eq!(s.count(), 5);
        let mut out = [0u8; 100];
        for (i, orig) in d.iter().enumerate() {
            let n = s.write(i, &mut out).unwrap();
            assert_eq!(&out[28..n], &orig[28..], "payload {i}");
            assert_eq!(out[20..26], orig[20..26], "ports and length {i}");
            assert!(valid_l4_checksum(&out[..n]));
        }
        // Another flow, a bad checksum, or a coalescer without UDP: apart.
        let mut bad = udp(&[1; 36], 4000, true);
        bad[40] ^= 1;
        let other = udp(&[1; 36], 4001, true);
        assert_eq!(coalesce(&[d[0].clone(), other, bad]).len(), 3);
        let mut c = Coalescer::new(false);
        let mut area: Vec<u8> = d[..2].concat();
        let mut n = 0;
        c.push(&mut area, 0..64, &mut |_: &[IoSlice<'_>]| n += 1);
        c.push(&mut area, 64..128, &mut |_: &[IoSlice<'_>]| n += 1);
        c.flush(&mut area, &mut |_: &[IoSlice<'_>]| n += 1);
        assert_eq!(n, 2);
    }

    #[test]
    fn merged_packets_never_exceed_the_limits() {
        let d = |i: u32| tcp(true, i * 1400, TCP_ACK, &[1; 1400], &[]);
        let pkts: Vec<Vec<u8>> = (0..100).map(d).collect();
        let w = coalesce(&pkts);
        let mut total_payload = 0;
        for (h, p) in &w {
            assert!(p.len() <= MAX_MERGED);
            if h.gso_type == GSO_TCPV6 {
                assert_eq!(h.gso_size, 1400);
                assert_eq!(usize::from(u16::from_be_bytes([p[4], p[5]])) + 40, p.len());
            }
            total_payload += p.len() - 60;
        }
        assert_eq!(total_payload, 140_000);
        assert!(w.len() <= 4, "{} writes", w.len());
    }
}
