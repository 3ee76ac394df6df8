//! Real IKEv2 messages from strongSwan, parsed and re-emitted.
//!
//! `tests/fixtures/strongswan/<IKE proposal>/` holds one PSK tunnel's life
//! between two strongSwan 5.9.8 charons (Debian's packages) in network
//! namespaces, captured with tcpdump on the initiator's veth: IKE_SA_INIT,
//! IKE_AUTH (after the float to UDP 4500 that `encap = yes` forces; the
//! non-ESP marker is removed), an INFORMATIONAL with NO_ADDITIONAL_ADDRESSES
//! (MOBIKE) and the INFORMATIONAL that deletes the IKE SA. Initiator
//! 192.0.2.1, responder 192.0.2.2. Files are hex, `#` lines are comments
//! saying where each message came from.
//!
//! What is checked: every message parses, emits back to exactly the
//! captured bytes, and carries what strongSwan logged it sent (exchange,
//! flags, SPIs, message IDs, payload order, the negotiated transforms, KE
//! group, nonce and NAT detection lengths; for protected messages the SK
//! payload, its first inner payload type and an IV / ICV / block layout that
//! fits the suite). The encrypted contents cannot be checked: the key shares'
//! private halves died with the charons.
use std::path::PathBuf;

use oxisec_wire::*;

/// The message files of every capture, in order.
const FILES: [&str; 8] = [
    "01-ike_sa_init-request.hex",
    "02-ike_sa_init-response.hex",
    "03-ike_auth-request.hex",
    "04-ike_auth-response.hex",
    "05-informational-request.hex",
    "06-informational-response.hex",
    "07-informational-request.hex",
    "08-informational-response.hex",
];

/// CHILDLESS_IKEV2_SUPPORTED (RFC 6023), sent by strongSwan's responder;
/// no constant in [`NotifyType`] yet.
const CHILDLESS_IKEV2_SUPPORTED: NotifyType = NotifyType(16418);

/// One captured tunnel and what its IKE SA negotiated.
struct Capture {
    dir: &'static str,
    /// The single proposal's transforms, in wire order: (type, ID, key bits).
    transforms: &'static [(TransformType, TransformId, Option<u16>)],
    group: TransformId,
    ke_len: usize,
    /// SK body layout: explicit IV, ICV, and the alignment of the ciphertext
    /// (1 for AEAD: RFC 5282 needs no padding).
    iv_len: usize,
    icv_len: usize,
    block: usize,
}

const CAPTURES: [Capture; 2] = [
    Capture {
        dir: "aes128gcm16-prfsha256-x25519",
        transforms: &[
            (TransformType::ENCR, encr::AES_GCM_16, Some(128)),
            (TransformType::PRF, prf::HMAC_SHA2_256, None),
            (TransformType::KE, ke::CURVE25519, None),
        ],
        group: ke::CURVE25519,
        ke_len: 32,
        iv_len: 8,
        icv_len: 16,
        block: 1,
    },
    Capture {
        dir: "aes256-sha256-modp2048",
        transforms: &[
            (TransformType::ENCR, encr::AES_CBC, Some(256)),
            (TransformType::INTEG, integ::HMAC_SHA2_256_128, None),
            (TransformType::PRF, prf::HMAC_SHA2_256, None),
            (TransformType::KE, ke::MODP_2048, None),
        ],
        group: ke::MODP_2048,
        ke_len: 256,
        iv_len: 16,
        icv_len: 16,
        block: 16,
    },
];

fn fixture_dir(capture: &Capture) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/strongswan")
        .join(capture.dir)
}

/// Reads a hex fixture: `#` lines are comments, whitespace is ignored.
fn load(capture: &Capture, file: &str) -> Vec<u8> {
    let path = fixture_dir(capture).join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let hex: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    hex::decode(&hex).unwrap_or_else(|e| panic!("{}: bad hex: {e}", path.display()))
}

fn parse(capture: &Capture, file: &str) -> (Vec<u8>, Message) {
    let bytes = load(capture, file);
    let msg = Message::parse(&bytes)
        .unwrap_or_else(|e| panic!("{}/{file} does not parse: {e}", capture.dir));
    (bytes, msg)
}

fn types(payloads: &[Payload]) -> Vec<PayloadType> {
    payloads.iter().map(Payload::payload_type).collect()
}

fn notifies(payloads: &[Payload]) -> Vec<&NotifyPayload> {
    payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Notify(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn sa(payloads: &[Payload]) -> &SaPayload {
    payloads
        .iter()
        .find_map(|p| match p {
            Payload::Sa(s) => Some(s),
            _ => None,
        })
        .expect("SA payload")
}

#[test]
fn every_capture_is_complete_and_emits_its_exact_bytes() {
    for capture in &CAPTURES {
        let mut present: Vec<String> = std::fs::read_dir(fixture_dir(capture))
            .expect("fixture directory")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        present.sort();
        assert_eq!(present, FILES, "{}", capture.dir);
        for file in FILES {
            let (bytes, msg) = parse(capture, file);
            assert_eq!(msg.header.length as usize, bytes.len(), "{file}");
            assert_eq!(msg.header.version, 0x20, "{file}");
            assert_eq!(msg.emit(), bytes, "{}/{file}: emit differs", capture.dir);
        }
    }
}

#[test]
fn ike_sa_init_request() {
    for capture in &CAPTURES {
        let (_, msg) = parse(capture, FILES[0]);
        let h = msg.header;
        assert_eq!(h.exchange, ExchangeType::IKE_SA_INIT);
        assert_eq!(h.flags, Flags(Flags::INITIATOR));
        assert_eq!((h.message_id, h.spi_r), (0, 0));
        assert_ne!(h.spi_i, 0);
        assert_eq!(h.next_payload, PayloadType::SA);
        let mut want = vec![PayloadType::SA, PayloadType::KE, PayloadType::NONCE];
        want.extend([PayloadType::NOTIFY; 5]);
        assert_eq!(types(&msg.payloads), want, "{}", capture.dir);
        check_init_common(capture, &msg.payloads);
        let n = notifies(&msg.payloads);
        let got: Vec<NotifyType> = n.iter().map(|n| n.ty).collect();
        assert_eq!(
            got,
            [
                NotifyType::NAT_DETECTION_SOURCE_IP,
                NotifyType::NAT_DETECTION_DESTINATION_IP,
                NotifyType::IKEV2_FRAGMENTATION_SUPPORTED,
                NotifyType::SIGNATURE_HASH_ALGORITHMS,
                NotifyType::REDIRECT_SUPPORTED,
            ]
        );
        // RFC 7427: SHA2-256, SHA2-384, SHA2-512, Identity (2 bytes each).
        assert_eq!(n[3].data, [0, 2, 0, 3, 0, 4, 0, 5]);
        assert!(n[2].data.is_empty() && n[4].data.is_empty());
        rules::check(h.exchange, false, &msg.payloads)
            .unwrap_or_else(|v| panic!("{}: rules: {v:?}", capture.dir));
    }
}

#[test]
fn ike_sa_init_response() {
    for capture in &CAPTURES {
        let (_, req) = parse(capture, FILES[0]);
        let (_, msg) = parse(capture, FILES[1]);
        let h = msg.header;
        assert_eq!(h.exchange, ExchangeType::IKE_SA_INIT);
        assert_eq!(h.flags, Flags(Flags::RESPONSE));
        assert_eq!(h.message_id, 0);
        assert_eq!(h.spi_i, req.header.spi_i);
        assert_ne!(h.spi_r, 0);
        let mut want = vec![PayloadType::SA, PayloadType::KE, PayloadType::NONCE];
        want.extend([PayloadType::NOTIFY; 6]);
        assert_eq!(types(&msg.payloads), want, "{}", capture.dir);
        check_init_common(capture, &msg.payloads);
        let got: Vec<NotifyType> = notifies(&msg.payloads).iter().map(|n| n.ty).collect();
        assert_eq!(
            got,
            [
                NotifyType::NAT_DETECTION_SOURCE_IP,
                NotifyType::NAT_DETECTION_DESTINATION_IP,
                NotifyType::IKEV2_FRAGMENTATION_SUPPORTED,
                NotifyType::SIGNATURE_HASH_ALGORITHMS,
                CHILDLESS_IKEV2_SUPPORTED,
                NotifyType::MULTIPLE_AUTH_SUPPORTED,
            ]
        );
        rules::check(h.exchange, true, &msg.payloads)
            .unwrap_or_else(|v| panic!("{}: rules: {v:?}", capture.dir));
    }
}

/// SA with the one proposal, KE, a 32-byte nonce and 20-byte NAT-D hashes:
/// the same in request and response, since each side proposed exactly one
/// combination.
fn check_init_common(capture: &Capture, payloads: &[Payload]) {
    let sa = sa(payloads);
    assert_eq!(sa.proposals.len(), 1);
    let p = &sa.proposals[0];
    assert_eq!((p.number, p.protocol), (1, ProtocolId::IKE));
    assert!(p.spi.is_empty(), "no SPI in IKE_SA_INIT proposals");
    let got: Vec<_> = p
        .transforms
        .iter()
        .map(|t| (t.ty, t.id, t.key_length()))
        .collect();
    assert_eq!(got, capture.transforms, "{}", capture.dir);

    let Some(Payload::Ke(ke)) = payloads.get(1) else {
        panic!("KE second")
    };
    assert_eq!((ke.group, ke.data.len()), (capture.group, capture.ke_len));
    let Some(Payload::Nonce(nonce)) = payloads.get(2) else {
        panic!("nonce third")
    };
    assert_eq!(nonce.len(), 32);
    for n in &notifies(payloads)[..2] {
        assert_eq!(n.protocol, ProtocolId::NONE);
        assert!(n.spi.is_empty());
        assert_eq!(n.data.len(), 20, "SHA-1 NAT detection hash");
    }
}

#[test]
fn protected_exchanges() {
    const AUTH: ExchangeType = ExchangeType::IKE_AUTH;
    const INFO: ExchangeType = ExchangeType::INFORMATIONAL;
    // (file, exchange, response, message ID, first payload inside SK)
    let expected = [
        (2, AUTH, false, 1, PayloadType::IDI),
        (3, AUTH, true, 1, PayloadType::IDR),
        (4, INFO, false, 2, PayloadType::NOTIFY),
        (5, INFO, true, 2, PayloadType::NONE),
        (6, INFO, false, 3, PayloadType::DELETE),
        (7, INFO, true, 3, PayloadType::NONE),
    ];
    for capture in &CAPTURES {
        let (_, init) = parse(capture, FILES[1]);
        for (i, exchange, response, message_id, first_inner) in expected {
            let file = FILES[i];
            let (bytes, msg) = parse(capture, file);
            let h = msg.header;
            assert_eq!(h.exchange, exchange, "{file}");
            // The initiator of the IKE SA sends every request here.
            let flags = if response {
                Flags::RESPONSE
            } else {
                Flags::INITIATOR
            };
            assert_eq!(h.flags, Flags(flags), "{file}");
            assert_eq!(h.message_id, message_id, "{file}");
            assert_eq!(
                (h.spi_i, h.spi_r),
                (init.header.spi_i, init.header.spi_r),
                "{file}"
            );
            assert_eq!(h.next_payload, PayloadType::SK, "{file}");
            let [Payload::Sk(sk)] = msg.payloads.as_slice() else {
                panic!("{file}: only an SK payload expected: {:?}", msg.payloads)
            };
            assert_eq!(sk.first_inner, first_inner, "{}/{file}", capture.dir);
            // The body runs to the end of the datagram, right after the SK header.
            let offset = msg.encrypted_body_offset().expect("has SK");
            assert_eq!(offset, HEADER_LEN + GENERIC_HEADER_LEN);
            assert_eq!(&bytes[offset..], &sk.body[..], "{file}");
            // IV ‖ ciphertext (≥ the pad-length byte, block aligned) ‖ ICV.
            let ct = sk.body.len() - capture.iv_len - capture.icv_len;
            assert!(ct >= 1, "{file}");
            assert_eq!(ct % capture.block, 0, "{}/{file}", capture.dir);
        }
        // An empty INFORMATIONAL response is just IV, the pad length byte and
        // (for CBC) the rest of its block, and the ICV.
        let (_, empty) = parse(capture, FILES[5]);
        let [Payload::Sk(sk)] = empty.payloads.as_slice() else {
            unreachable!()
        };
        assert_eq!(
            sk.body.len(),
            capture.iv_len + capture.block + capture.icv_len
        );
    }
}

/// The captures cut anywhere inside their payloads, with the header's
/// length field patched to match, must not parse: no payload may run past
/// the end of the message, and nothing may be silently dropped.
#[test]
fn truncated_captures_are_rejected() {
    for capture in &CAPTURES {
        for file in FILES {
            let bytes = load(capture, file);
            for n in HEADER_LEN..bytes.len() {
                let mut cut = bytes[..n].to_vec();
                cut[24..28].copy_from_slice(&(n as u32).to_be_bytes());
                assert!(
                    Message::parse(&cut).is_err(),
                    "{}/{file} cut to {n} bytes parsed",
                    capture.dir
                );
            }
        }
    }
}
