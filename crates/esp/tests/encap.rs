//! Tunnel-mode encapsulation and decapsulation through the public API: round
//! trips for every suite, and every drop reason of the inbound path.
use std::net::IpAddr;
use std::sync::Arc;

use oxisec_crypto::{
    Secret,
    esp_cipher::{EspCipher, EspSuite},
};
use oxisec_esp::{
    DropReason, EncapError, InboundSa, IpFamily, OutboundSa, PacketBuf, Sad, Selector, decapsulate,
    encapsulate,
};
use oxisec_wire::{TransformId, encr, integ};
use proptest::prelude::*;

const SPI: u32 = 0xc001_d00d;

fn suites() -> Vec<EspSuite> {
    let mut v = vec![];
    let s = |encr: TransformId, bits: Option<u16>, integ: Option<TransformId>| EspSuite {
        encr,
        encr_key_bits: bits,
        integ,
        esn: false,
    };
    for bits in [128, 192, 256] {
        v.push(s(encr::AES_GCM_16, Some(bits), None));
        for i in [
            integ::HMAC_SHA2_256_128,
            integ::HMAC_SHA2_384_192,
            integ::HMAC_SHA2_512_256,
        ] {
            v.push(s(encr::AES_CBC, Some(bits), Some(i)));
        }
    }
    v.push(s(encr::CHACHA20_POLY1305, None, None));
    v
}

fn keymat(suite: EspSuite) -> Secret {
    Secret::new((0..suite.keymat_len()).map(|i| i as u8 ^ 0x5c).collect())
}

fn cipher(suite: EspSuite) -> EspCipher {
    EspCipher::new(suite, &keymat(suite)).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str, len: u8) -> Selector {
    Selector::prefix(ip(s), len).unwrap()
}

/// Site A (192.0.2.0/24, 2001:db8:a::/48) talks to site B (198.51.100.0/24,
/// 2001:db8:b::/48). Returns A's outbound SA and B's SAD with the matching
/// inbound SA.
fn pair(suite: EspSuite) -> (OutboundSa, Sad) {
    let a = vec![net("192.0.2.0", 24), net("2001:db8:a::", 48)];
    let b = vec![net("198.51.100.0", 24), net("2001:db8:b::", 48)];
    pair_with(suite, a, b)
}

fn pair_with(suite: EspSuite, a: Vec<Selector>, b: Vec<Selector>) -> (OutboundSa, Sad) {
    let out = OutboundSa::new(SPI, cipher(suite), a.clone(), b.clone(), None);
    let inb = InboundSa::new(SPI, cipher(suite), 128, b, a).unwrap();
    let mut sad = Sad::new();
    sad.insert_inbound(Arc::new(inb));
    (out, sad)
}

fn v4(src: [u8; 4], dst: [u8; 4], protocol: u8, l4: &[u8]) -> Vec<u8> {
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

fn v6(src: &str, dst: &str, protocol: u8, l4: &[u8]) -> Vec<u8> {
    let plen = l4.len();
    let mut p = vec![0x60, 0, 0, 0, (plen >> 8) as u8, plen as u8, protocol, 64];
    let (IpAddr::V6(s), IpAddr::V6(d)) = (ip(src), ip(dst)) else {
        unreachable!()
    };
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    p.extend_from_slice(l4);
    p
}

/// UDP from A to B with `n` payload bytes.
fn udp4(n: usize) -> Vec<u8> {
    let mut l4 = vec![0x30, 0x39, 0x00, 0x35, 0, 0, 0, 0];
    l4.extend((0..n).map(|i| i as u8));
    v4([192, 0, 2, 10], [198, 51, 100, 20], 17, &l4)
}

fn udp6(n: usize) -> Vec<u8> {
    let mut l4 = vec![0x30, 0x39, 0x00, 0x35, 0, 0, 0, 0];
    l4.extend((0..n).map(|i| i as u8));
    v6("2001:db8:a::10", "2001:db8:b::20", 17, &l4)
}

fn encap(sa: &OutboundSa, inner: &[u8]) -> Vec<u8> {
    let mut buf = PacketBuf::with_default_room();
    buf.set_data(inner).unwrap();
    encapsulate(sa, &mut buf).unwrap();
    buf.as_slice().to_vec()
}

fn decap(sad: &Sad, esp: &[u8]) -> Result<(oxisec_esp::Decapsulated, Vec<u8>), DropReason> {
    let mut buf = PacketBuf::from_slice(esp);
    let d = decapsulate(sad, &mut buf)?;
    Ok((d, buf.as_slice().to_vec()))
}

fn inbound(sad: &Sad) -> &Arc<InboundSa> {
    sad.inbound(SPI).unwrap()
}

/// A packet sealed by hand: `payload` is the whole plaintext between IV and
/// ICV (inner packet, padding, pad length, next header), so tests can put
/// anything there and still carry a valid ICV.
fn raw_esp(suite: EspSuite, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut p = SPI.to_be_bytes().to_vec();
    p.extend_from_slice(&(seq as u32).to_be_bytes());
    p.extend(std::iter::repeat_n(0, suite.iv_len()));
    p.extend_from_slice(payload);
    p.extend(std::iter::repeat_n(0, suite.icv_len()));
    cipher(suite).seal(seq, &mut p).unwrap();
    p
}

/// Inner packet + default padding + trailer, aligned for `suite`.
fn trailer(suite: EspSuite, inner: &[u8], next_header: u8) -> Vec<u8> {
    let align = suite.block_align().max(4);
    let pad = (align - (inner.len() + 2) % align) % align;
    let mut p = inner.to_vec();
    p.extend((1..=pad).map(|i| i as u8));
    p.push(pad as u8);
    p.push(next_header);
    p
}

#[test]
fn round_trip_every_suite_ipv4_and_ipv6() {
    for mut suite in suites() {
        for esn in [false, true] {
            suite.esn = esn;
            let (out, sad) = pair(suite);
            let mut seq = 0;
            for inner in [
                udp4(0),
                udp4(1),
                udp4(13),
                udp4(1372),
                udp6(0),
                udp6(7),
                udp6(1352),
            ] {
                seq += 1;
                let esp = encap(&out, &inner);
                // Layout: SPI, seq, IV, aligned ciphertext, ICV.
                assert_eq!(esp[..4], SPI.to_be_bytes());
                assert_eq!(esp[4..8], (seq as u32).to_be_bytes());
                let ct = esp.len() - 8 - suite.iv_len() - suite.icv_len();
                assert_eq!(ct % suite.block_align().max(4), 0, "{suite:?}");
                assert!(ct >= inner.len() + 2 && ct < inner.len() + 2 + suite.block_align().max(4));

                let (d, got) = decap(&sad, &esp).unwrap_or_else(|r| panic!("{suite:?}: {r}"));
                assert_eq!(got, inner, "{suite:?}");
                assert_eq!((d.spi, d.seq), (SPI, seq));
                assert_eq!(d.flow.protocol, 17);
                assert_eq!(d.flow.dst_port, Some(53));
            }
            let sent = out.stats();
            let recv = inbound(&sad).stats();
            assert_eq!((sent.packets, recv.packets), (7, 7));
            assert_eq!(sent.bytes, recv.bytes);
            assert_eq!(recv.drops.total(), 0);
            assert_eq!(out.seq_used(), 7);
            assert_eq!(inbound(&sad).highest_seq(), 7);
        }
    }
}

#[test]
fn tampering_fails_the_icv() {
    for suite in suites() {
        let (out, sad) = pair(suite);
        let esp = encap(&out, &udp4(40));
        for i in 0..esp.len() {
            let mut t = esp.clone();
            t[i] ^= 0x10;
            let want = if i < 4 {
                DropReason::UnknownSpi
            } else {
                DropReason::IntegrityFailed
            };
            assert_eq!(decap(&sad, &t).unwrap_err(), want, "{suite:?} byte {i}");
        }
        // Forgeries did not move the window: the genuine packet still passes.
        decap(&sad, &esp).unwrap();
        let drops = inbound(&sad).stats().drops;
        assert_eq!(drops.get(DropReason::IntegrityFailed), esp.len() as u64 - 4);
        assert_eq!(sad.global_drops().get(DropReason::UnknownSpi), 4);
    }
}

#[test]
fn replays_are_dropped() {
    let suite = suites()[0];
    let (out, sad) = pair(suite);
    let first = encap(&out, &udp4(10));
    let second = encap(&out, &udp4(10));
    decap(&sad, &second).unwrap();
    decap(&sad, &first).unwrap();
    assert_eq!(
        decap(&sad, &first).unwrap_err(),
        DropReason::ReplayDuplicate
    );
    assert_eq!(
        decap(&sad, &second).unwrap_err(),
        DropReason::ReplayDuplicate
    );
    // Push the window (128) past the first packets.
    let mut last = vec![];
    for _ in 0..200 {
        last = encap(&out, &udp4(1));
    }
    decap(&sad, &last).unwrap();
    let old = encap(&out, &udp4(1));
    decap(&sad, &old).unwrap();
    assert_eq!(decap(&sad, &first).unwrap_err(), DropReason::ReplayTooOld);
    let drops = inbound(&sad).stats().drops;
    assert_eq!(drops.get(DropReason::ReplayDuplicate), 2);
    assert_eq!(drops.get(DropReason::ReplayTooOld), 1);
}

#[test]
fn unknown_spi_is_counted_globally() {
    let suite = suites()[0];
    let (out, sad) = pair(suite);
    let mut esp = encap(&out, &udp4(10));
    esp[..4].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    assert_eq!(decap(&sad, &esp).unwrap_err(), DropReason::UnknownSpi);
    assert_eq!(sad.global_drops().get(DropReason::UnknownSpi), 1);
    assert_eq!(inbound(&sad).stats().drops.total(), 0);
}

#[test]
fn inner_packet_outside_the_selectors_is_dropped() {
    for suite in [suites()[0], suites()[1]] {
        // The SA only covers UDP port 53 between two hosts.
        let a = vec![Selector::host(ip("192.0.2.10")).with_protocol(17)];
        let b = vec![
            Selector::host(ip("198.51.100.20"))
                .with_protocol(17)
                .with_ports(53, 53),
        ];
        let (out, sad) = pair_with(suite, a, b);
        decap(&sad, &encap(&out, &udp4(5))).unwrap();
        let cases = [
            // Wrong source.
            v4(
                [192, 0, 2, 11],
                [198, 51, 100, 20],
                17,
                &[0, 1, 0, 53, 0, 8, 0, 0],
            ),
            // Wrong destination.
            v4(
                [192, 0, 2, 10],
                [198, 51, 100, 21],
                17,
                &[0, 1, 0, 53, 0, 8, 0, 0],
            ),
            // Wrong port.
            v4(
                [192, 0, 2, 10],
                [198, 51, 100, 20],
                17,
                &[0, 1, 0, 54, 0, 8, 0, 0],
            ),
            // Wrong protocol.
            v4(
                [192, 0, 2, 10],
                [198, 51, 100, 20],
                6,
                &[0, 1, 0, 53, 0, 0, 0, 0],
            ),
            // Other family.
            udp6(3),
        ];
        for inner in cases {
            // The sender's selectors are not checked on the way out (the
            // SPD does that), so this is what a misbehaving peer could send.
            assert_eq!(
                decap(&sad, &encap(&out, &inner)).unwrap_err(),
                DropReason::SelectorMismatch
            );
        }
        assert_eq!(
            inbound(&sad)
                .stats()
                .drops
                .get(DropReason::SelectorMismatch),
            5
        );
    }
}

#[test]
fn bad_padding_and_next_header_are_dropped() {
    for suite in [suites()[0], suites()[1], *suites().last().unwrap()] {
        let (_, sad) = pair(suite);
        let inner = udp4(9);
        let mut seq = 0;
        let mut check = |payload: Vec<u8>, want: Option<DropReason>| {
            seq += 1;
            let r = decap(&sad, &raw_esp(suite, seq, &payload));
            match want {
                None => assert_eq!(r.unwrap().1, inner),
                Some(w) => assert_eq!(r.unwrap_err(), w, "{suite:?} seq {seq}"),
            }
        };
        let good = trailer(suite, &inner, 4);
        check(good.clone(), None);
        // A wrong padding byte.
        let mut p = good.clone();
        let pad_len = p[p.len() - 2] as usize;
        if pad_len > 0 {
            let n = p.len();
            p[n - 3] ^= 0xff;
            check(p, Some(DropReason::BadPadding));
        }
        // Pad length longer than the payload.
        let mut p = good.clone();
        let n = p.len();
        p[n - 2] = 255;
        check(p, Some(DropReason::BadPadding));
        // Next header 59: a dummy packet, dropped silently.
        check(trailer(suite, &inner, 59), Some(DropReason::DummyPacket));
        // Next header UDP: transport mode is not offered.
        check(trailer(suite, &inner, 17), Some(DropReason::BadNextHeader));
        // Next header IPv6 around an IPv4 packet.
        check(trailer(suite, &inner, 41), Some(DropReason::MalformedInner));
        // Garbage inner packet.
        check(
            trailer(suite, &[0x45, 0, 0], 4),
            Some(DropReason::MalformedInner),
        );
        // IPv4 header claiming more than is there.
        let mut long = inner.clone();
        long[3] += 4;
        check(trailer(suite, &long, 4), Some(DropReason::MalformedInner));
        // Extra bytes after the IP packet (inside the padding area) are cut.
        let mut extra = inner.clone();
        extra.extend_from_slice(&[0xaa; 6]);
        check(trailer(suite, &extra, 4), None);

        let drops = inbound(&sad).stats().drops;
        assert!(DropReason::DummyPacket.is_silent());
        assert_eq!(drops.get(DropReason::DummyPacket), 1);
        assert_eq!(drops.get(DropReason::BadNextHeader), 1);
        assert_eq!(drops.get(DropReason::MalformedInner), 3);
        assert_eq!(inbound(&sad).stats().packets, 2);
    }
}

#[test]
fn truncated_packets_at_every_length() {
    for suite in suites() {
        let (out, sad) = pair(suite);
        let esp = encap(&out, &udp4(30));
        for len in 0..esp.len() {
            let r = decap(&sad, &esp[..len]);
            let want_any = [
                DropReason::Truncated,
                DropReason::IntegrityFailed,
                DropReason::Malformed,
            ];
            assert!(want_any.contains(&r.unwrap_err()), "{suite:?} len {len}");
        }
        // None of that disturbed the window.
        decap(&sad, &esp).unwrap();
        assert_eq!(sad.global_drops().get(DropReason::Truncated), 8);
    }
}

#[test]
fn encapsulate_refuses_non_ip_and_small_buffers() {
    let suite = suites()[1]; // AES-CBC: 24 bytes in front
    let (out, _) = pair(suite);
    let mut buf = PacketBuf::from_slice(&[0x12, 0x34]);
    assert_eq!(encapsulate(&out, &mut buf), Err(EncapError::NotIp));
    let mut buf = PacketBuf::from_slice(&[]);
    assert_eq!(encapsulate(&out, &mut buf), Err(EncapError::NotIp));
    let inner = udp4(4);
    let mut buf = PacketBuf::new(8, inner.len(), 64);
    buf.set_data(&inner).unwrap();
    assert!(matches!(
        encapsulate(&out, &mut buf),
        Err(EncapError::NoRoom(_))
    ));
    let mut buf = PacketBuf::new(64, inner.len(), 8);
    buf.set_data(&inner).unwrap();
    assert!(matches!(
        encapsulate(&out, &mut buf),
        Err(EncapError::NoRoom(_))
    ));
    assert_eq!(buf.as_slice(), &inner[..], "left untouched");
    // No sequence number was spent on the failures.
    assert_eq!(out.seq_used(), 0);
    let drops = out.stats().drops;
    assert_eq!(drops.get(DropReason::NotIp), 2);
    assert_eq!(drops.get(DropReason::NoRoom), 2);
}

#[test]
fn any_family_selector_accepts_everything_of_that_family() {
    let suite = suites()[0];
    let any = vec![Selector::any(IpFamily::V4), Selector::any(IpFamily::V6)];
    let (out, sad) = pair_with(suite, any.clone(), any);
    decap(&sad, &encap(&out, &udp4(1))).unwrap();
    decap(&sad, &encap(&out, &udp6(1))).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes, with or without a known SPI in front, never panic.
    #[test]
    fn decapsulate_never_panics(
        suite_idx in 0usize..10,
        known_spi in any::<bool>(),
        bytes in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let suite = suites()[suite_idx];
        let (_, sad) = pair(suite);
        let mut p = bytes;
        if known_spi && p.len() >= 4 {
            p[..4].copy_from_slice(&SPI.to_be_bytes());
        }
        let mut buf = PacketBuf::from_slice(&p);
        prop_assert!(decapsulate(&sad, &mut buf).is_err());
    }

    /// Whatever plaintext a peer holding the keys seals, decapsulation
    /// returns a verdict without panicking.
    #[test]
    fn decapsulate_never_panics_on_authentic_garbage(
        suite_idx in 0usize..10,
        payload in prop::collection::vec(any::<u8>(), 0..100),
    ) {
        let suite = suites()[suite_idx];
        let (_, sad) = pair(suite);
        let align = suite.block_align();
        let mut payload = payload;
        payload.truncate(payload.len() / align * align);
        let esp = raw_esp(suite, 1, &payload);
        let _ = decap(&sad, &esp);
    }
}
