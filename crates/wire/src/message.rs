//! Whole IKE messages: header plus a chain of payloads.
use alloc::vec::Vec;

use crate::codec::{Reader, Writer};
use crate::{Error, GENERIC_HEADER_LEN, HEADER_LEN, Header, HeaderRepr, Payload, PayloadType};

/// Critical bit in the second byte of the generic payload header.
const CRITICAL: u8 = 0x80;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: HeaderRepr,
    /// In wire order. An `Sk` or `Skf` payload, if any, is last.
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Parses a datagram (without the non-ESP marker). Bytes after the length
    /// given in the header are an error, as is any payload after SK/SKF.
    ///
    /// The header's length field must equal `bytes.len()` exactly
    /// ([`Error::BadLength`] otherwise), the major version must be 2, and the
    /// payload chain must end exactly at the end of the message.
    pub fn parse(bytes: &[u8]) -> Result<Message, Error> {
        let view = Header::new_checked(bytes)?;
        if usize::try_from(view.length()) != Ok(bytes.len()) {
            return Err(Error::BadLength);
        }
        let header = HeaderRepr::parse(&view)?;
        let body = bytes.get(HEADER_LEN..).ok_or(Error::Truncated)?;
        let payloads = walk(header.next_payload, body, true)?;
        Ok(Message { header, payloads })
    }

    /// Serialises the message, setting the header's next-payload and length
    /// fields and every payload's next-payload and length field.
    ///
    /// An SK or SKF payload must be the last one (its next-payload field holds
    /// the first inner type, so nothing can be chained after it); payloads
    /// placed after it are written but the result does not parse.
    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_hint());
        out.resize(HEADER_LEN, 0);
        let first = emit_payloads(&self.payloads, &mut out);
        let mut header = self.header;
        header.next_payload = first;
        debug_assert!(u32::try_from(out.len()).is_ok(), "message too long");
        header.length = out.len() as u32;
        header.emit(&mut out);
        out
    }

    /// Offset in [`Message::emit`]'s output where the body of the trailing SK or
    /// SKF payload starts (after its generic header, and for SKF after the
    /// fragment number fields): everything before it is the AEAD associated data.
    /// `None` if the message has no SK/SKF payload.
    pub fn encrypted_body_offset(&self) -> Option<usize> {
        let (index, extra) = self
            .payloads
            .iter()
            .enumerate()
            .find_map(|(i, p)| match p {
                Payload::Sk(_) => Some((i, 0)),
                // Fragment number and total number of fragments.
                Payload::Skf(_) => Some((i, 4)),
                _ => None,
            })?;
        // The payloads in front are emitted once more only to learn their
        // length, so that this can never disagree with `emit`. In practice SK
        // is the only payload (SKF too), and this costs nothing.
        let mut before = Vec::new();
        emit_payloads(self.payloads.get(..index).unwrap_or(&[]), &mut before);
        Some(HEADER_LEN + before.len() + GENERIC_HEADER_LEN + extra)
    }

    /// A cheap upper-bound-ish guess of the emitted size for the first allocation.
    fn size_hint(&self) -> usize {
        let raw = |p: &Payload| match p {
            Payload::Sk(sk) => sk.body.len(),
            Payload::Skf(skf) => skf.body.len() + 4,
            _ => 64,
        };
        HEADER_LEN
            + self
                .payloads
                .iter()
                .map(|p| GENERIC_HEADER_LEN + raw(p))
                .sum::<usize>()
    }
}

/// Walks a payload chain starting with type `first` over `bytes`, which must
/// be consumed exactly. With `outer` set (the plaintext part of a message), an
/// SK or SKF payload ends the chain and must reach the end of `bytes`; inside
/// a decrypted SK payload they are not allowed at all.
fn walk(first: PayloadType, bytes: &[u8], outer: bool) -> Result<Vec<Payload>, Error> {
    let mut r = Reader::new(bytes);
    let mut payloads = Vec::new();
    let mut ty = first;
    while ty != PayloadType::NONE {
        let next = PayloadType(r.u8()?);
        let critical = r.u8()? & CRITICAL != 0;
        let len = usize::from(r.u16()?);
        let body = r.take_length_prefixed(len, GENERIC_HEADER_LEN)?;
        let encrypted = matches!(ty, PayloadType::SK | PayloadType::SKF);
        if encrypted && !outer {
            return Err(Error::InvalidSyntax("encrypted payload inside SK"));
        }
        payloads.push(Payload::parse_body(ty, critical, next, body)?);
        if encrypted {
            if r.remaining() != 0 {
                return Err(Error::InvalidSyntax("payload after SK"));
            }
            return Ok(payloads);
        }
        ty = next;
    }
    if r.remaining() != 0 {
        // The chain ended (next payload NONE) before the length did.
        return Err(Error::BadLength);
    }
    Ok(payloads)
}

/// Parses a chain of payloads that starts with a payload of type `first`, as
/// found inside a decrypted SK payload (padding already removed). SK and SKF
/// payloads inside are [`Error::InvalidSyntax`].
pub fn parse_payloads(first: PayloadType, bytes: &[u8]) -> Result<Vec<Payload>, Error> {
    walk(first, bytes, false)
}

/// Appends the chain of payloads to `out` and returns the type of the first one
/// ([`PayloadType::NONE`] when empty), for the enclosing SK payload's header.
pub fn emit_payloads(payloads: &[Payload], out: &mut Vec<u8>) -> PayloadType {
    let mut w = Writer::new(out);
    for (i, p) in payloads.iter().enumerate() {
        let following = payloads
            .get(i + 1)
            .map_or(PayloadType::NONE, Payload::payload_type);
        let start = w.position();
        w.u8(p.next_field(following).0);
        w.u8(if p.critical() { CRITICAL } else { 0 });
        let slot = w.placeholder_u16();
        p.emit_body(w.vec());
        w.patch_len_u16(slot, start);
    }
    payloads
        .first()
        .map_or(PayloadType::NONE, Payload::payload_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies;
    use crate::*;
    use proptest::prelude::*;
    use std::vec;

    /// A hand-assembled IKE_SA_INIT request as an initiator behind no NAT
    /// would send it: one IKE proposal (AES-GCM-16/256, HMAC-SHA2-256 PRF,
    /// Curve25519), a Curve25519 key share, a 32-byte nonce and the two NAT
    /// detection notifies (SHA-1 hashes).
    const IKE_SA_INIT_HEX: &str = concat!(
        // IKE header: SPIi, SPIr = 0, next SA(33), v2.0, IKE_SA_INIT(34),
        // flags Initiator, message ID 0, length 200.
        "a1b2c3d4e5f60718",
        "0000000000000000",
        "21",
        "20",
        "22",
        "08",
        "00000000",
        "000000c8",
        // SA: next KE(34), length 40; proposal #1 IKE, 3 transforms.
        "22000028",
        "00000024",
        "01010003",
        "0300000c",
        "01000014",
        "800e0100",
        "03000008",
        "02000005",
        "00000008",
        "0400001f",
        // KE: next Nonce(40), length 40, group 31, 32 bytes of key share.
        "28000028",
        "001f0000",
        "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
        // Nonce: next Notify(41), length 36.
        "29000024",
        "f0e0d0c0b0a090807060504030201000ffeeddccbbaa99887766554433221100",
        // N(NAT_DETECTION_SOURCE_IP): next Notify, length 28.
        "2900001c",
        "00004004",
        "1111111111111111111111111111111111111111",
        // N(NAT_DETECTION_DESTINATION_IP): last, length 28.
        "0000001c",
        "00004005",
        "2222222222222222222222222222222222222222",
    );

    fn fixture() -> Vec<u8> {
        hex::decode(IKE_SA_INIT_HEX).unwrap()
    }

    #[test]
    fn parses_ike_sa_init_fixture() {
        let bytes = fixture();
        assert_eq!(bytes.len(), 200);
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.header.spi_i, 0xa1b2_c3d4_e5f6_0718);
        assert_eq!(m.header.spi_r, 0);
        assert_eq!(m.header.exchange, ExchangeType::IKE_SA_INIT);
        assert!(m.header.flags.initiator() && !m.header.flags.response());
        assert_eq!(m.header.message_id, 0);
        assert_eq!(m.header.length, 200);
        assert_eq!(m.payloads.len(), 5);

        let Payload::Sa(sa) = &m.payloads[0] else {
            panic!("no SA")
        };
        let p = &sa.proposals[0];
        assert_eq!((p.number, p.protocol, p.spi.len()), (1, ProtocolId::IKE, 0));
        assert_eq!(p.transforms[0].ty, TransformType::ENCR);
        assert_eq!(p.transforms[0].id, encr::AES_GCM_16);
        assert_eq!(p.transforms[0].key_length(), Some(256));
        assert_eq!(p.transforms[1].id, prf::HMAC_SHA2_256);
        assert_eq!(p.transforms[2].ty, TransformType::KE);
        assert_eq!(p.transforms[2].id, ke::CURVE25519);

        let Payload::Ke(kp) = &m.payloads[1] else {
            panic!("no KE")
        };
        assert_eq!(kp.group, ke::CURVE25519);
        assert_eq!(kp.data, (1..=32).collect::<Vec<u8>>());

        let Payload::Nonce(n) = &m.payloads[2] else {
            panic!("no Nonce")
        };
        assert_eq!(n.len(), 32);
        assert_eq!(n[0], 0xf0);

        let Payload::Notify(src) = &m.payloads[3] else {
            panic!("no notify")
        };
        assert_eq!(src.ty, NotifyType::NAT_DETECTION_SOURCE_IP);
        assert_eq!((src.protocol, src.spi.len()), (ProtocolId::NONE, 0));
        assert_eq!(src.data, [0x11; 20]);
        let Payload::Notify(dst) = &m.payloads[4] else {
            panic!("no notify")
        };
        assert_eq!(dst.ty, NotifyType::NAT_DETECTION_DESTINATION_IP);
        assert_eq!(dst.data, [0x22; 20]);

        assert_eq!(m.emit(), bytes);
        assert_eq!(m.encrypted_body_offset(), None);
        assert_eq!(rules::check(m.header.exchange, false, &m.payloads), Ok(()));
    }

    /// Sets the header length field to `len` (the last four header bytes).
    fn set_len(bytes: &mut [u8], len: usize) {
        bytes[24..28].copy_from_slice(&(len as u32).to_be_bytes());
    }

    #[test]
    fn truncated_fixture_fails_at_every_length() {
        let bytes = fixture();
        for n in 0..bytes.len() {
            assert!(Message::parse(&bytes[..n]).is_err(), "raw prefix {n}");
            if n >= HEADER_LEN {
                // With a matching length field the payload walker sees the cut.
                let mut cut = bytes[..n].to_vec();
                set_len(&mut cut, n);
                assert!(
                    Message::parse(&cut).is_err(),
                    "prefix {n} with fixed length"
                );
            }
        }
    }

    #[test]
    fn rejects_header_length_not_datagram_length() {
        let mut longer = fixture();
        longer.push(0);
        assert_eq!(Message::parse(&longer), Err(Error::BadLength));
        let mut shorter = fixture();
        set_len(&mut shorter, 199);
        assert_eq!(Message::parse(&shorter), Err(Error::BadLength));
        let mut tiny = fixture();
        set_len(&mut tiny, 20);
        assert_eq!(Message::parse(&tiny), Err(Error::BadLength));
    }

    #[test]
    fn rejects_version_not_2() {
        for v in [0x10, 0x30, 0x5f, 0x00] {
            let mut b = fixture();
            b[17] = v;
            assert_eq!(Message::parse(&b), Err(Error::UnsupportedVersion(v >> 4)));
        }
    }

    #[test]
    fn accepts_minor_version() {
        let mut b = fixture();
        b[17] = 0x21;
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.header.version, 0x21);
        assert_eq!(m.emit(), b);
    }

    /// Header + the given payload chain (no SK), with the length fixed up.
    fn message_with(first: u8, chain: &str) -> Vec<u8> {
        let mut b = fixture()[..HEADER_LEN].to_vec();
        b[16] = first;
        b.extend(hex::decode(chain).unwrap());
        let n = b.len();
        set_len(&mut b, n);
        b
    }

    #[test]
    fn rejects_payload_length_below_4() {
        for len in ["0000", "0001", "0003"] {
            let b = message_with(40, &std::format!("0000{len}aabbccdd"));
            assert_eq!(Message::parse(&b), Err(Error::BadLength));
        }
    }

    #[test]
    fn rejects_payload_beyond_end() {
        let b = message_with(40, "00000009aabbccdd");
        assert_eq!(Message::parse(&b), Err(Error::BadLength));
        // A chain that promises one more payload than there is.
        let b = message_with(40, "29000008aabbccdd");
        assert_eq!(Message::parse(&b), Err(Error::Truncated));
        // Generic header cut short.
        let b = message_with(40, "290000");
        assert_eq!(Message::parse(&b), Err(Error::Truncated));
    }

    #[test]
    fn rejects_bytes_after_last_payload() {
        let b = message_with(40, "00000008aabbccdd00");
        assert_eq!(Message::parse(&b), Err(Error::BadLength));
    }

    #[test]
    fn rejects_payload_after_sk() {
        // SK (first inner IDi) of 8 bytes followed by a nonce it does not chain to.
        let b = message_with(46, "2300000801020304" /* then */);
        assert!(Message::parse(&b).is_ok());
        let b = message_with(46, "230000080102030400000008aabbccdd");
        assert_eq!(
            Message::parse(&b),
            Err(Error::InvalidSyntax("payload after SK"))
        );
        let b = message_with(53, "2300000c000100010102030400000004");
        assert_eq!(
            Message::parse(&b),
            Err(Error::InvalidSyntax("payload after SK"))
        );
        // A payload in front of SK is fine.
        let b = message_with(43, "2e000005ee2300000801020304");
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.payloads.len(), 2);
        assert_eq!(m.emit(), b);
    }

    #[test]
    fn rejects_critical_unknown_payload() {
        let b = message_with(40, "fd000008aabbccdd00800005ee");
        assert_eq!(
            Message::parse(&b),
            Err(Error::UnsupportedCriticalPayload(PayloadType(0xfd)))
        );
        // Payload types 1..=32 belong to IKEv1 and are unknown here too.
        let b = message_with(1, "00800005ee");
        assert_eq!(
            Message::parse(&b),
            Err(Error::UnsupportedCriticalPayload(PayloadType(1)))
        );
    }

    #[test]
    fn accepts_noncritical_unknown_payload() {
        let b = message_with(40, "fd000008aabbccdd00000005ee");
        let m = Message::parse(&b).unwrap();
        assert_eq!(
            m.payloads[1],
            Payload::Unknown {
                ty: PayloadType(0xfd),
                critical: false,
                body: vec![0xee]
            }
        );
        assert_eq!(m.emit(), b);
    }

    #[test]
    fn accepts_known_payload_with_critical_bit_and_reserved_bits() {
        let b = message_with(40, "00ff0008aabbccdd");
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.payloads, [Payload::Nonce(vec![0xaa, 0xbb, 0xcc, 0xdd])]);
        // Emitted with the bits clear.
        assert_eq!(m.emit(), message_with(40, "00000008aabbccdd"));
    }

    #[test]
    fn accepts_empty_message() {
        let b = message_with(0, "");
        let m = Message::parse(&b).unwrap();
        assert!(m.payloads.is_empty());
        assert_eq!(m.emit(), b);
    }

    #[test]
    fn emit_recomputes_header_fields() {
        let mut m = Message::parse(&fixture()).unwrap();
        m.header.next_payload = PayloadType::EAP;
        m.header.length = 3;
        assert_eq!(m.emit(), fixture());
    }

    #[test]
    fn encrypted_body_offsets() {
        let header = Message::parse(&fixture()).unwrap().header;
        let sk = Payload::Sk(SkPayload {
            first_inner: PayloadType::IDI,
            body: vec![7; 40],
        });
        let m = Message {
            header,
            payloads: vec![sk.clone()],
        };
        let bytes = m.emit();
        assert_eq!(m.encrypted_body_offset(), Some(32));
        assert_eq!(&bytes[28..32], &[35, 0, 0, 44]);
        assert_eq!(&bytes[32..], &[7; 40]);

        let skf = Payload::Skf(SkfPayload {
            first_inner: PayloadType::NONE,
            fragment_number: 2,
            total_fragments: 3,
            body: vec![9; 10],
        });
        let vid = Payload::VendorId(vec![1, 2, 3]);
        let m = Message {
            header,
            payloads: vec![vid, skf],
        };
        let bytes = m.emit();
        assert_eq!(m.encrypted_body_offset(), Some(28 + 7 + 4 + 4));
        assert_eq!(&bytes[35..43], &[0, 0, 0, 18, 0, 2, 0, 3]);
        assert_eq!(&bytes[43..], &[9; 10]);
        assert_eq!(
            Message::parse(&bytes),
            Ok(Message {
                header: m.header_for(&bytes),
                ..m
            })
        );
    }

    impl Message {
        /// The header as `parse` reports it for `bytes` emitted from `self`.
        fn header_for(&self, bytes: &[u8]) -> HeaderRepr {
            let mut h = self.header;
            h.next_payload = self
                .payloads
                .first()
                .map_or(PayloadType::NONE, Payload::payload_type);
            h.length = bytes.len() as u32;
            h
        }
    }

    #[test]
    fn inner_chain_round_trip_and_nesting() {
        let payloads = vec![
            Payload::IdI(IdPayload {
                id_type: IdType::FQDN,
                data: b"gw".to_vec(),
            }),
            Payload::Auth(AuthPayload {
                method: AuthMethod::SHARED_KEY_MIC,
                data: vec![1; 32],
            }),
        ];
        let mut out = Vec::new();
        assert_eq!(emit_payloads(&payloads, &mut out), PayloadType::IDI);
        assert_eq!(parse_payloads(PayloadType::IDI, &out), Ok(payloads));
        assert_eq!(emit_payloads(&[], &mut out), PayloadType::NONE);
        assert_eq!(parse_payloads(PayloadType::NONE, &[]), Ok(vec![]));

        let sk = [Payload::Sk(SkPayload {
            first_inner: PayloadType::NONE,
            body: vec![1],
        })];
        out.clear();
        emit_payloads(&sk, &mut out);
        assert!(matches!(
            parse_payloads(PayloadType::SK, &out),
            Err(Error::InvalidSyntax(_))
        ));
    }

    proptest! {
        #[test]
        fn message_round_trip(m in strategies::message()) {
            let bytes = m.emit();
            let expected = Message { header: m.header_for(&bytes), ..m.clone() };
            prop_assert_eq!(Message::parse(&bytes), Ok(expected.clone()));
            if let Some(off) = m.encrypted_body_offset() {
                let body = match m.payloads.last() {
                    Some(Payload::Sk(sk)) => &sk.body,
                    Some(Payload::Skf(skf)) => &skf.body,
                    _ => unreachable!(),
                };
                prop_assert_eq!(&bytes[off..], &body[..]);
            }
            // Every cut with a consistent header length is still an error.
            for n in HEADER_LEN..bytes.len() {
                let mut cut = bytes[..n].to_vec();
                set_len(&mut cut, n);
                prop_assert!(Message::parse(&cut).is_err());
            }
        }

        #[test]
        fn payload_chain_round_trip(ps in proptest::collection::vec(strategies::inner_payload(), 0..8)) {
            let mut out = Vec::new();
            let first = emit_payloads(&ps, &mut out);
            prop_assert_eq!(parse_payloads(first, &out), Ok(ps));
        }

        #[test]
        fn parse_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(m) = Message::parse(&bytes) {
                prop_assert_eq!(m.emit().len(), bytes.len());
            }
        }

        #[test]
        fn parse_mutated_messages_never_panics(
            m in strategies::message(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = m.emit();
            for (at, v) in edits {
                let i = at.index(bytes.len());
                bytes[i] = v;
            }
            if let Ok(m) = Message::parse(&bytes) {
                prop_assert_eq!(Message::parse(&m.emit()), Ok(m));
            }
        }

        #[test]
        fn parse_payloads_never_panics(first: u8, bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = parse_payloads(PayloadType(first), &bytes);
        }
    }
}
