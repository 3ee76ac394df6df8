//! ESP (RFC 4303) encapsulation and decapsulation in tunnel and transport
//! mode, in place on a [`PacketBuf`].
//!
//! Transport mode (an SA's [`Mode`]) protects only the transport segment:
//! [`encapsulate`] removes the IP header first (the driver sends to the
//! peer's address, which builds the outer header again), and
//! [`decapsulate_from`] puts a header with the packet's outer addresses in
//! front of the decrypted segment, fixing its checksum
//! ([`transport`](crate::transport)).
//!
//! [`encapsulate`] turns the inner IPv4/IPv6 packet in the buffer into
//! `SPI ‖ seq ‖ IV ‖ ciphertext(inner ‖ padding ‖ pad length ‖ next header) ‖ ICV`,
//! the payload of a UDP 4500 datagram (RFC 3948) or of an IP packet with
//! protocol 50; the driver adds those outer headers.
//!
//! [`decapsulate`] reverses it, checking in this order (RFC 4301 §5.2,
//! RFC 4303 §3.4): ESP header present, SPI known, sequence number inside the
//! replay window, ICV (and decryption), replay window commit, padding and next
//! header, inner packet sane, inner addresses/protocol/ports within the SA's
//! selectors. An SA that reached a hard volume limit
//! ([`Limits`](crate::limits::Limits)) drops everything before the replay
//! check (and, outbound, before a sequence number is taken). Every drop is
//! counted by reason on the SA, or in the SAD's global counters before an SA
//! is known.
//!
//! Neither allocates. On error the buffer's content is unspecified (it may be
//! partly decrypted); the caller drops the packet and reuses the buffer.
use oxisec_crypto::CryptoError;
use oxisec_wire::esp::EspHeader;

use crate::buf::{BufError, BufStorage, PacketBuf};
use crate::inner::{self, FlowKey, proto};
use crate::limits::Crossed;
use crate::replay::ReplayError;
use crate::sa::{InboundSa, Mode, OutboundSa};
use crate::sad::Sad;
use crate::selector::{IpFamily, Selector, any_matches};
use crate::stats::DropReason;
use crate::transport;
use core::net::IpAddr;

/// Why a packet could not be encapsulated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncapError {
    /// The buffer does not start with an IPv4 or IPv6 header.
    #[error("not an IP packet")]
    NotIp,
    /// The buffer lacks head- or tailroom for ESP's overhead.
    #[error("buffer too small: {0}")]
    NoRoom(BufError),
    /// The SA has used its last sequence number: rekey it.
    #[error("sequence numbers exhausted")]
    SequenceExhausted,
    #[error("encryption failed: {0}")]
    Crypto(CryptoError),
    /// The SA reached a hard volume limit and sends nothing more.
    #[error("SA expired (hard volume limit reached)")]
    Expired,
}

impl EncapError {
    /// The counter this error is counted under.
    pub fn reason(&self) -> DropReason {
        match self {
            EncapError::NotIp => DropReason::NotIp,
            EncapError::NoRoom(_) => DropReason::NoRoom,
            EncapError::SequenceExhausted => DropReason::SequenceExhausted,
            EncapError::Crypto(_) => DropReason::CryptoFailure,
            EncapError::Expired => DropReason::Expired,
        }
    }
}

/// What [`decapsulate`] found; the buffer's window now holds the inner packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decapsulated {
    /// The inbound SA's SPI.
    pub spi: u32,
    /// The full (ESN-reconstructed) sequence number.
    pub seq: u64,
    /// The inner packet's addresses, protocol and ports.
    pub flow: FlowKey,
    /// The SA's soft or hard limit this packet crossed first (reported
    /// once per SA): tell the control plane.
    pub crossed: Crossed,
}

/// ESP overhead of `sa` around an inner packet of `inner_len` bytes: the
/// bytes [`encapsulate`] puts in front of it (ESP header and IV) and behind it
/// (padding, pad length, next header and ICV). A batching driver uses it to
/// place packets exactly: with `head` bytes of headroom and `tail` of
/// tailroom, the ESP packet fills the storage `0..head + inner_len + tail`.
pub fn encap_overhead(sa: &OutboundSa, inner_len: usize) -> (usize, usize) {
    let (head, _, tail) = overhead(sa, inner_len);
    (head, tail)
}

/// ESP overhead of a suite: bytes in front of the inner packet, and padding +
/// trailer + ICV behind an inner packet of `inner_len` bytes.
fn overhead(sa: &OutboundSa, inner_len: usize) -> (usize, usize, usize) {
    let sizes = sa.sizes();
    // RFC 4303 §2.4: the ciphertext must fill whole cipher blocks and end on
    // a 4-byte boundary.
    let align = sizes.align;
    let pad = (align - (inner_len + 2) % align) % align;
    (sizes.head, pad, pad + 2 + sizes.icv)
}

/// Encapsulates the inner IP packet in `buf` with `sa`, in place.
///
/// Padding is the RFC 4303 default (1, 2, 3, …), the minimum that aligns the
/// payload; no TFC padding. Next header is 4 or 41 from the IP version. The
/// inner packet is not matched against the SA's selectors here: the SPD
/// lookup that chose the SA did that.
///
/// Returns the SA limits this packet crossed first (usually none); once a
/// hard limit is reached, every later packet fails with
/// [`EncapError::Expired`] without using a sequence number.
pub fn encapsulate<S: BufStorage>(
    sa: &OutboundSa,
    buf: &mut PacketBuf<S>,
) -> Result<Crossed, EncapError> {
    let result = encapsulate_inner(sa, buf);
    if let Err(e) = &result {
        sa.counters().drop(e.reason());
    }
    result
}

fn encapsulate_inner<S: BufStorage>(
    sa: &OutboundSa,
    buf: &mut PacketBuf<S>,
) -> Result<Crossed, EncapError> {
    if sa.counters().hard_reached(sa.limits()) {
        return Err(EncapError::Expired);
    }
    let inner_len = buf.len();
    // Transport mode: the IP header (and any bytes beyond its length) are
    // not part of the protected payload; they give their room back.
    let (next_header, strip, trim) = match sa.mode() {
        Mode::Tunnel => match inner::version(buf.as_slice()) {
            Some(4) => (proto::IPV4, 0, 0),
            Some(6) => (proto::IPV6, 0, 0),
            _ => return Err(EncapError::NotIp),
        },
        Mode::Transport => {
            let s = transport::strip_header(buf.as_slice()).map_err(|_| EncapError::NotIp)?;
            (s.protocol, s.header_len, inner_len - s.total_len)
        }
    };
    let payload_len = inner_len - strip - trim;
    let (head, pad, tail) = overhead(sa, payload_len);
    // Check the room first so that a too-small buffer wastes no sequence
    // number and stays as it was.
    if buf.headroom() + strip < head {
        return Err(EncapError::NoRoom(BufError::NoHeadroom {
            needed: head,
            available: buf.headroom() + strip,
        }));
    }
    if buf.tailroom() + trim < tail {
        return Err(EncapError::NoRoom(BufError::NoTailroom {
            needed: tail,
            available: buf.tailroom() + trim,
        }));
    }
    let seq = sa.next_seq().map_err(|_| EncapError::SequenceExhausted)?;
    if strip > 0 || trim > 0 {
        buf.pull_front(strip).map_err(EncapError::NoRoom)?;
        buf.truncate(payload_len);
    }

    let trailer = buf.push_back(tail).map_err(EncapError::NoRoom)?;
    for (i, b) in trailer[..pad].iter_mut().enumerate() {
        *b = (i + 1) as u8;
    }
    trailer[pad] = pad as u8;
    trailer[pad + 1] = next_header;
    trailer[pad + 2..].fill(0);

    let header = buf.push_front(head).map_err(EncapError::NoRoom)?;
    header[..4].copy_from_slice(&sa.spi().to_be_bytes());
    header[4..8].copy_from_slice(&(seq as u32).to_be_bytes());

    sa.cipher()
        .seal(seq, buf.as_mut_slice())
        .map_err(EncapError::Crypto)?;
    Ok(sa.counters().count_packet(inner_len, sa.limits()))
}

fn replay_reason(e: ReplayError) -> DropReason {
    match e {
        ReplayError::Duplicate => DropReason::ReplayDuplicate,
        ReplayError::TooOld => DropReason::ReplayTooOld,
    }
}

/// The outer addresses of a received ESP packet: its IP source (the peer,
/// as NAT left it) and destination (our address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OuterAddrs {
    pub src: IpAddr,
    pub dst: IpAddr,
}

/// Decapsulates the ESP packet in `buf` (the UDP 4500 payload, or the IP
/// payload of protocol 50) in place. On success the buffer's window holds the
/// inner IP packet, trimmed to the length its header gives.
///
/// Tunnel mode only: a packet for a transport-mode SA is dropped
/// ([`DropReason::BadNextHeader`]); use [`decapsulate_from`] for those.
pub fn decapsulate<S: BufStorage>(
    sad: &Sad,
    buf: &mut PacketBuf<S>,
) -> Result<Decapsulated, DropReason> {
    decapsulate_from(sad, buf, None)
}

/// [`decapsulate`] with the packet's outer addresses, which transport mode
/// needs to rebuild the IP header: it is written in front of the segment
/// (up to 40 − 8 − IV bytes of headroom are taken when the ESP header and
/// IV are shorter than the IP header), and the TCP/UDP/ICMPv6 checksum is
/// recomputed for those addresses (RFC 3948 §3.1.2; the ICV already
/// authenticated the segment). The selector check then covers protocol and
/// ports; the addresses are those of the SA's peer by construction.
pub fn decapsulate_from<S: BufStorage>(
    sad: &Sad,
    buf: &mut PacketBuf<S>,
    outer: Option<OuterAddrs>,
) -> Result<Decapsulated, DropReason> {
    let Ok(header) = EspHeader::new_checked(buf.as_slice()) else {
        sad.drop_global(DropReason::Truncated);
        return Err(DropReason::Truncated);
    };
    let (spi, seq_low) = (header.spi(), header.sequence());
    let Some(sa) = sad.inbound(spi) else {
        sad.drop_global(DropReason::UnknownSpi);
        return Err(DropReason::UnknownSpi);
    };
    match decapsulate_sa(sa, buf, seq_low, outer) {
        Ok(mut d) => {
            d.crossed = sa.counters().count_packet(buf.len(), sa.limits());
            Ok(d)
        }
        Err(reason) => {
            sa.counters().drop(reason);
            Err(reason)
        }
    }
}

fn decapsulate_sa<S: BufStorage>(
    sa: &InboundSa,
    buf: &mut PacketBuf<S>,
    seq_low: u32,
    outer: Option<OuterAddrs>,
) -> Result<Decapsulated, DropReason> {
    // A transport-mode SA cannot be served without outer addresses: refuse
    // before spending a decryption.
    if sa.mode() == Mode::Transport && outer.is_none() {
        return Err(DropReason::BadNextHeader);
    }
    // An expired SA costs no decryption.
    if sa.counters().hard_reached(sa.limits()) {
        return Err(DropReason::Expired);
    }
    let sizes = sa.sizes();
    let (head, icv_len) = (sizes.head, sizes.icv);
    // At least pad length and next header between IV and ICV.
    if buf.len() < head + 2 + icv_len {
        return Err(DropReason::Truncated);
    }

    let seq = sa.replay_check(seq_low).map_err(replay_reason)?;
    sa.cipher()
        .open(seq, buf.as_mut_slice())
        .map_err(|e| match e {
            CryptoError::IntegrityCheckFailed => DropReason::IntegrityFailed,
            _ => DropReason::Malformed,
        })?;
    // Authentic: now it may move the window (or lose a race to a copy).
    sa.replay_commit(seq).map_err(replay_reason)?;

    let packet = buf.as_slice();
    let payload = &packet[head..packet.len() - icv_len];
    let next_header = payload[payload.len() - 1];
    let pad_len = usize::from(payload[payload.len() - 2]);
    if next_header == proto::NO_NEXT_HEADER {
        return Err(DropReason::DummyPacket);
    }
    let Some(inner_len) = payload.len().checked_sub(pad_len + 2) else {
        return Err(DropReason::BadPadding);
    };
    // RFC 4303 §2.4: with the default padding scheme the receiver checks the
    // padding bytes are 1, 2, 3, …
    let padding = &payload[inner_len..inner_len + pad_len];
    if padding
        .iter()
        .enumerate()
        .any(|(i, b)| usize::from(*b) != i + 1)
    {
        return Err(DropReason::BadPadding);
    }
    if sa.mode() == Mode::Transport {
        let Some(o) = outer else {
            return Err(DropReason::BadNextHeader);
        };
        return transport_inner(sa, buf, o, head, inner_len, next_header, seq);
    }
    let want_version = match next_header {
        proto::IPV4 => 4,
        proto::IPV6 => 6,
        _ => return Err(DropReason::BadNextHeader),
    };

    buf.pull_front(head).map_err(|_| DropReason::Truncated)?;
    buf.truncate(inner_len);
    if inner::version(buf.as_slice()) != Some(want_version) {
        return Err(DropReason::MalformedInner);
    }
    let info = inner::parse(buf.as_slice()).map_err(|_| DropReason::MalformedInner)?;
    // Trailing bytes inside the payload beyond the IP length (e.g. TFC
    // padding, RFC 4303 §2.7) are not part of the packet.
    buf.truncate(info.total_len);

    let flow = info.flow;
    if !any_matches(sa.remote_ts(), flow.src, flow.protocol, flow.src_port)
        || !any_matches(sa.local_ts(), flow.dst, flow.protocol, flow.dst_port)
    {
        return Err(DropReason::SelectorMismatch);
    }
    Ok(Decapsulated {
        spi: sa.spi(),
        seq,
        flow,
        crossed: Crossed::NONE,
    })
}

/// Transport mode: puts the IP header in front of the decrypted segment
/// at `head..head + seg_len` and checks protocol and ports.
fn transport_inner<S: BufStorage>(
    sa: &InboundSa,
    buf: &mut PacketBuf<S>,
    outer: OuterAddrs,
    head: usize,
    seg_len: usize,
    protocol: u8,
    seq: u64,
) -> Result<Decapsulated, DropReason> {
    let hl = transport::header_len(outer.src);
    if head >= hl {
        buf.pull_front(head - hl)
            .map_err(|_| DropReason::Truncated)?;
    } else {
        buf.push_front(hl - head).map_err(|_| DropReason::NoRoom)?;
    }
    buf.truncate(hl + seg_len);
    transport::build_header(buf.as_mut_slice(), outer.src, outer.dst, protocol)
        .map_err(|_| DropReason::MalformedInner)?;
    let info = inner::parse(buf.as_slice()).map_err(|_| DropReason::MalformedInner)?;
    let flow = info.flow;
    // Host-to-host: each selector names one address, the peer's (or ours)
    // as negotiated, which a NAT may have rewritten on the way. Only the
    // protocol and ports are left to check.
    let fits = |set: &[Selector], port: Option<u16>| {
        set.iter()
            .any(|s| s.matches(selector_start(s), flow.protocol, port))
    };
    if !fits(sa.remote_ts(), flow.src_port) || !fits(sa.local_ts(), flow.dst_port) {
        return Err(DropReason::SelectorMismatch);
    }
    Ok(Decapsulated {
        spi: sa.spi(),
        seq,
        flow,
        crossed: Crossed::NONE,
    })
}

/// The first address a selector covers.
fn selector_start(s: &Selector) -> IpAddr {
    match s.family {
        IpFamily::V4 => IpAddr::from(core::net::Ipv4Addr::from(s.start_addr as u32)),
        IpFamily::V6 => IpAddr::from(core::net::Ipv6Addr::from(s.start_addr)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inner::tests::v4;
    use crate::limits::Limits;
    use oxisec_crypto::{
        Secret,
        esp_cipher::{EspCipher, EspSuite},
    };
    use oxisec_wire::encr;

    fn sa(esn: bool) -> OutboundSa {
        let suite = EspSuite {
            encr: encr::AES_GCM_16,
            encr_key_bits: Some(256),
            integ: None,
            esn,
        };
        let c = EspCipher::new(suite, &Secret::new(vec![9; 36])).unwrap();
        OutboundSa::new(1, c, vec![], vec![], None)
    }

    #[test]
    fn refuses_to_wrap_the_sequence_number() {
        let out = sa(false);
        out.set_next_seq(u64::from(u32::MAX));
        let inner = v4([192, 0, 2, 1], [192, 0, 2, 2], 17, &[0; 8]);
        let mut buf = PacketBuf::from_slice(&inner);
        encapsulate(&out, &mut buf).unwrap();
        assert_eq!(buf.as_slice()[4..8], [0xff; 4]);
        let mut buf = PacketBuf::from_slice(&inner);
        assert_eq!(
            encapsulate(&out, &mut buf),
            Err(EncapError::SequenceExhausted)
        );
        assert_eq!(buf.as_slice(), &inner[..]);
        assert_eq!(out.stats().drops.get(DropReason::SequenceExhausted), 1);
    }

    #[test]
    fn esn_sends_only_the_low_half() {
        let out = sa(true);
        out.set_next_seq(0x0000_0005_0000_0002);
        let inner = v4([192, 0, 2, 1], [192, 0, 2, 2], 17, &[0; 8]);
        let mut buf = PacketBuf::from_slice(&inner);
        encapsulate(&out, &mut buf).unwrap();
        assert_eq!(buf.as_slice()[4..8], [0, 0, 0, 2]);
        // The AEAD IV carries all 64 bits.
        assert_eq!(
            buf.as_slice()[8..16],
            0x0000_0005_0000_0002u64.to_be_bytes()
        );
    }

    fn inbound(limits: Limits) -> Sad {
        use crate::selector::{IpFamily, Selector};
        let suite = sa(false).suite();
        let c = EspCipher::new(suite, &Secret::new(vec![9; 36])).unwrap();
        let any = vec![Selector::any(IpFamily::V4)];
        let sa = InboundSa::new(1, c, 64, any.clone(), any)
            .unwrap()
            .with_limits(limits);
        let mut sad = Sad::new();
        sad.insert_inbound(std::sync::Arc::new(sa));
        sad
    }

    const SOFT: Crossed = Crossed {
        soft: true,
        hard: false,
    };
    const HARD: Crossed = Crossed {
        soft: false,
        hard: true,
    };

    #[test]
    fn outbound_limits_are_reported_once_and_hard_stops_sending() {
        let inner = v4([192, 0, 2, 1], [192, 0, 2, 2], 17, &[0; 80]);
        assert_eq!(inner.len(), 100);
        let out = sa(false).with_limits(Limits {
            soft_packets: 2,
            soft_bytes: 250,
            hard_packets: 0,
            hard_bytes: 400,
        });
        let mut got = Vec::new();
        for _ in 0..6 {
            let mut buf = PacketBuf::from_slice(&inner);
            got.push(encapsulate(&out, &mut buf));
        }
        use EncapError::Expired;
        assert_eq!(
            got,
            [
                Ok(Crossed::NONE),
                Ok(SOFT),
                Ok(Crossed::NONE),
                // The fourth packet reaches 400 bytes: it still goes out.
                Ok(HARD),
                Err(Expired),
                Err(Expired),
            ]
        );
        let st = out.stats();
        assert_eq!((st.packets, st.bytes), (4, 400));
        assert_eq!(st.drops.get(DropReason::Expired), 2);
        // No sequence number was spent on the refused packets.
        assert_eq!(out.seq_used(), 4);
    }

    #[test]
    fn inbound_limits_are_reported_once_and_hard_stops_accepting() {
        let out = sa(false);
        let sad = inbound(Limits {
            soft_packets: 3,
            hard_packets: 4,
            ..Limits::NONE
        });
        let inner = v4([192, 0, 2, 1], [192, 0, 2, 2], 17, &[0; 8]);
        let mut got = Vec::new();
        for _ in 0..6 {
            let mut buf = PacketBuf::from_slice(&inner);
            encapsulate(&out, &mut buf).unwrap();
            got.push(decapsulate(&sad, &mut buf).map(|d| d.crossed));
        }
        assert_eq!(
            got,
            [
                Ok(Crossed::NONE),
                Ok(Crossed::NONE),
                Ok(SOFT),
                Ok(HARD),
                Err(DropReason::Expired),
                Err(DropReason::Expired),
            ]
        );
        let st = sad.inbound(1).unwrap().stats();
        assert_eq!(st.packets, 4);
        assert_eq!(st.drops.get(DropReason::Expired), 2);
        // Refused before the replay window: it never saw packets 5 and 6.
        assert_eq!(sad.inbound(1).unwrap().highest_seq(), 4);
    }

    #[test]
    fn soft_and_hard_together_on_one_packet() {
        let out = sa(false).with_limits(Limits {
            soft_packets: 1,
            hard_packets: 1,
            ..Limits::NONE
        });
        let inner = v4([192, 0, 2, 1], [192, 0, 2, 2], 17, &[0; 8]);
        let mut buf = PacketBuf::from_slice(&inner);
        assert_eq!(
            encapsulate(&out, &mut buf),
            Ok(Crossed {
                soft: true,
                hard: true
            })
        );
        let mut buf = PacketBuf::from_slice(&inner);
        assert_eq!(encapsulate(&out, &mut buf), Err(EncapError::Expired));
    }

    #[test]
    fn packets_placed_side_by_side_in_an_arena_round_trip() {
        // What a batching driver does: ESP packets back to back in one
        // arena (for a segmented UDP send), each exactly where
        // `encap_overhead` says, then decapsulated where they lie.
        let out = sa(false);
        let sad = inbound(Limits::NONE);
        let mut arena = [0u8; 1024];
        let mut frames = Vec::new();
        let mut at = 0;
        for n in [8usize, 9, 10, 8] {
            let inner = v4([192, 0, 2, 1], [192, 0, 2, 2], 17, &vec![n as u8; n]);
            let (head, tail) = encap_overhead(&out, inner.len());
            let end = at + head + inner.len() + tail;
            arena[at + head..at + head + inner.len()].copy_from_slice(&inner);
            let mut pb = PacketBuf::over(&mut arena[at..end], head, head + inner.len()).unwrap();
            encapsulate(&out, &mut pb).unwrap();
            assert_eq!(pb.range(), 0..end - at, "the frame is filled exactly");
            frames.push((at..end, inner));
            at = end;
        }
        for (r, inner) in frames {
            let len = r.len();
            let mut pb = PacketBuf::over(&mut arena[r], 0, len).unwrap();
            decapsulate(&sad, &mut pb).unwrap();
            assert_eq!(pb.as_slice(), &inner[..]);
        }
    }

    #[test]
    fn padding_is_minimal_and_aligned() {
        let out = sa(false);
        for n in 0..20 {
            let inner = v4([192, 0, 2, 1], [192, 0, 2, 2], 17, &vec![0; 8 + n]);
            let (_, pad, tail) = overhead(&out, inner.len());
            assert_eq!((inner.len() + 2 + pad) % 4, 0);
            assert!(pad < 4);
            assert_eq!(tail, pad + 2 + 16);
        }
    }

    fn transport_pair(family: crate::selector::IpFamily) -> (OutboundSa, Sad) {
        use crate::selector::Selector;
        let out = sa(false).with_mode(Mode::Transport);
        let c = EspCipher::new(out.suite(), &Secret::new(vec![9; 36])).unwrap();
        let any = vec![Selector::any(family)];
        let inb = InboundSa::new(1, c, 64, any.clone(), any)
            .unwrap()
            .with_mode(Mode::Transport);
        let mut sad = Sad::new();
        sad.insert_inbound(std::sync::Arc::new(inb));
        (out, sad)
    }

    fn udp_segment(src: IpAddr, dst: IpAddr) -> Vec<u8> {
        // A non-zero placeholder: an IPv4 UDP checksum of 0 means "none".
        let mut u = vec![0x30, 0x39, 0, 53, 0, 13, 1, 1, b'h', b'e', b'l', b'l', b'o'];
        transport::fix_checksum(&mut u, src, dst, proto::UDP).unwrap();
        u
    }

    #[test]
    fn transport_mode_protects_only_the_segment_and_rebuilds_the_header() {
        use crate::inner::tests::v6;
        use crate::selector::IpFamily;
        for family in [IpFamily::V4, IpFamily::V6] {
            let (a, b): (IpAddr, IpAddr) = match family {
                IpFamily::V4 => ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()),
                IpFamily::V6 => (
                    "2001:db8::1".parse().unwrap(),
                    "2001:db8::2".parse().unwrap(),
                ),
            };
            let seg = udp_segment(a, b);
            let packet = match (a, b) {
                (IpAddr::V4(x), IpAddr::V4(y)) => v4(x.octets(), y.octets(), proto::UDP, &seg),
                (IpAddr::V6(x), IpAddr::V6(y)) => v6(x.octets(), y.octets(), proto::UDP, &[], &seg),
                _ => unreachable!(),
            };
            let (out, sad) = transport_pair(family);
            let mut buf = PacketBuf::from_slice(&packet);
            encapsulate(&out, &mut buf).unwrap();
            // ESP header, IV, 13 bytes of segment, 1 pad, 2 trailer, ICV.
            assert_eq!(buf.len(), 8 + 8 + 13 + 1 + 2 + 16);
            // Without outer addresses a transport SA cannot deliver.
            let esp = buf.as_slice().to_vec();
            assert_eq!(decapsulate(&sad, &mut buf), Err(DropReason::BadNextHeader));
            let mut buf = PacketBuf::from_slice(&esp);
            let d = decapsulate_from(&sad, &mut buf, Some(OuterAddrs { src: a, dst: b })).unwrap();
            // The segment as sent; the header rebuilt (our own identification,
            // TTL and header checksum) with the same addresses and protocol.
            let hl = packet.len() - seg.len();
            assert_eq!(buf.as_slice()[hl..], packet[hl..], "{family:?}");
            assert_eq!(buf.len(), packet.len());
            assert!(transport::tests::checksum_ok(buf.as_slice()));
            assert_eq!(
                (d.flow.src, d.flow.protocol, d.flow.dst_port),
                (a, proto::UDP, Some(53))
            );
            // The replay window saw it once.
            let mut buf = PacketBuf::from_slice(&esp);
            assert_eq!(
                decapsulate_from(&sad, &mut buf, Some(OuterAddrs { src: a, dst: b })),
                Err(DropReason::ReplayDuplicate)
            );
        }
    }

    #[test]
    fn transport_mode_through_a_nat_gets_a_valid_checksum() {
        // Sent by 10.0.0.1 behind a NAT, received from 203.0.113.7.
        let (private, public): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "203.0.113.7".parse().unwrap());
        let dst: IpAddr = "192.0.2.2".parse().unwrap();
        let seg = udp_segment(private, dst);
        let packet = v4([10, 0, 0, 1], [192, 0, 2, 2], proto::UDP, &seg);
        let (out, sad) = transport_pair(crate::selector::IpFamily::V4);
        let mut buf = PacketBuf::from_slice(&packet);
        encapsulate(&out, &mut buf).unwrap();
        decapsulate_from(&sad, &mut buf, Some(OuterAddrs { src: public, dst })).unwrap();
        let got = buf.as_slice();
        assert_eq!(got[12..16], [203, 0, 113, 7]);
        // Ports, length and data unchanged; only the checksum differs.
        assert_eq!(got[20..26], packet[20..26]);
        assert_eq!(got[28..], packet[28..]);
        assert_ne!(
            got[26..28],
            packet[26..28],
            "checksum follows the new source"
        );
        assert!(transport::tests::checksum_ok(got));
    }

    #[test]
    fn transport_mode_refuses_fragments_and_keeps_the_buffer() {
        let (out, _) = transport_pair(crate::selector::IpFamily::V4);
        let mut packet = v4([192, 0, 2, 1], [192, 0, 2, 2], proto::UDP, &[0; 16]);
        packet[6] = 0x20;
        let mut buf = PacketBuf::from_slice(&packet);
        assert_eq!(encapsulate(&out, &mut buf), Err(EncapError::NotIp));
        assert_eq!(buf.as_slice(), &packet[..]);
        assert_eq!(out.seq_used(), 0);
    }

    #[test]
    fn transport_selectors_check_protocol_and_ports() {
        use crate::selector::{IpFamily, Selector};
        let out = sa(false).with_mode(Mode::Transport);
        let c = EspCipher::new(out.suite(), &Secret::new(vec![9; 36])).unwrap();
        let tcp_only = vec![Selector::host("192.0.2.1".parse().unwrap()).with_protocol(proto::TCP)];
        let inb = InboundSa::new(1, c, 64, vec![Selector::any(IpFamily::V4)], tcp_only)
            .unwrap()
            .with_mode(Mode::Transport);
        let mut sad = Sad::new();
        sad.insert_inbound(std::sync::Arc::new(inb));
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let packet = v4(
            [192, 0, 2, 1],
            [192, 0, 2, 2],
            proto::UDP,
            &udp_segment(a, b),
        );
        let mut buf = PacketBuf::from_slice(&packet);
        encapsulate(&out, &mut buf).unwrap();
        assert_eq!(
            decapsulate_from(&sad, &mut buf, Some(OuterAddrs { src: a, dst: b })),
            Err(DropReason::SelectorMismatch)
        );
    }
}
