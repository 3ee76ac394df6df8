//! Tunnel-mode ESP (RFC 4303) encapsulation and decapsulation, in place on a
//! [`PacketBuf`].
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
use crate::sa::{InboundSa, OutboundSa};
use crate::sad::Sad;
use crate::selector::any_matches;
use crate::stats::DropReason;

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
    let next_header = match inner::version(buf.as_slice()) {
        Some(4) => proto::IPV4,
        Some(6) => proto::IPV6,
        _ => return Err(EncapError::NotIp),
    };
    let (head, pad, tail) = overhead(sa, inner_len);
    // Check the room first so that a too-small buffer wastes no sequence number.
    if buf.headroom() < head {
        return Err(EncapError::NoRoom(BufError::NoHeadroom {
            needed: head,
            available: buf.headroom(),
        }));
    }
    if buf.tailroom() < tail {
        return Err(EncapError::NoRoom(BufError::NoTailroom {
            needed: tail,
            available: buf.tailroom(),
        }));
    }
    let seq = sa.next_seq().map_err(|_| EncapError::SequenceExhausted)?;

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

/// Decapsulates the ESP packet in `buf` (the UDP 4500 payload, or the IP
/// payload of protocol 50) in place. On success the buffer's window holds the
/// inner IP packet, trimmed to the length its header gives.
pub fn decapsulate<S: BufStorage>(
    sad: &Sad,
    buf: &mut PacketBuf<S>,
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
    match decapsulate_sa(sa, buf, seq_low) {
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
) -> Result<Decapsulated, DropReason> {
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
}
