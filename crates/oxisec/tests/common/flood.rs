//! A bounded flood of IKE_SA_INIT requests from spoofed source addresses,
//! the attack that COOKIE challenges (RFC 7296 §2.6) exist for: each
//! request would make a responder without cookies compute a key exchange
//! and keep a half-open IKE SA for an initiator that never comes back.
//!
//! The requests are built with oxisec's own wire types (a valid message a
//! real initiator could send: one IKE proposal AES-GCM-128 / PRF-SHA-256 /
//! X25519, a key share and a nonce) and sent through a raw IPv4 socket with
//! IP_HDRINCL from inside a test namespace, so that the source address can
//! be anything the test routed there.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use oxisec_wire::{
    Attribute, AttributeValue, ExchangeType, Flags, HeaderRepr, KePayload, Message, Payload,
    PayloadType, Proposal, ProtocolId, SaPayload, Transform, TransformType,
};

use super::netsys::{raw_ipv4_socket, udp_packet};
use super::{Netns, Result};

/// splitmix64: distinct, well-spread values from a counter. The flood needs
/// different SPIs and key shares, not unpredictable ones.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn bytes(seed: u64, n: usize) -> Vec<u8> {
    (0..n as u64)
        .step_by(8)
        .flat_map(|i| mix(seed ^ (i << 32)).to_le_bytes())
        .take(n)
        .collect()
}

/// An IKE_SA_INIT request (message ID 0, Initiator flag, SPIr zero) for
/// `aes128gcm16-prfsha256-x25519`, with SPIi `spi_i` and a key share and
/// nonce derived from `seed`. No NAT detection payloads: they are optional.
pub fn ike_sa_init_request(spi_i: u64, seed: u64) -> Vec<u8> {
    let key_length = Attribute {
        ty: oxisec_wire::ATTR_KEY_LENGTH,
        value: AttributeValue::Short(128),
    };
    let msg = Message {
        header: HeaderRepr {
            spi_i,
            spi_r: 0,
            next_payload: PayloadType::NONE,
            version: 0x20,
            exchange: ExchangeType::IKE_SA_INIT,
            flags: Flags(Flags::INITIATOR),
            message_id: 0,
            length: 0,
        },
        payloads: vec![
            Payload::Sa(SaPayload {
                proposals: vec![Proposal {
                    number: 1,
                    protocol: ProtocolId::IKE,
                    spi: Vec::new(),
                    transforms: vec![
                        Transform {
                            attributes: vec![key_length],
                            ..Transform::new(TransformType::ENCR, oxisec_wire::encr::AES_GCM_16)
                        },
                        Transform::new(TransformType::PRF, oxisec_wire::prf::HMAC_SHA2_256),
                        Transform::new(TransformType::KE, oxisec_wire::ke::CURVE25519),
                    ],
                }],
            }),
            Payload::Ke(KePayload {
                group: oxisec_wire::ke::CURVE25519,
                data: bytes(seed, 32),
            }),
            Payload::Nonce(bytes(!seed, 32)),
        ],
    };
    msg.emit()
}

/// What a flood did.
#[derive(Debug, Clone, Copy)]
pub struct FloodReport {
    pub sent: u64,
    /// Packets the socket refused (e.g. a full queue); not retried.
    pub send_errors: u64,
    pub elapsed: Duration,
}

/// Sends `count` IKE_SA_INIT requests to `dst` (UDP 500) from inside `ns`,
/// evenly spread over `duration` (in 10 ms batches), the source address
/// going round `sources` and every request with its own SPIi and key share.
/// Source port 500, like a real initiator's.
pub fn ike_sa_init_flood(
    ns: &Netns,
    sources: &[Ipv4Addr],
    dst: Ipv4Addr,
    count: u64,
    duration: Duration,
) -> Result<FloodReport> {
    if sources.is_empty() {
        return Err("no source addresses for the flood".into());
    }
    let socket = raw_ipv4_socket(ns)?;
    let target = socket2::SockAddr::from(SocketAddrV4::new(dst, 0));
    let tick = Duration::from_millis(10);
    let ticks = (duration.as_millis() / tick.as_millis()).max(1) as u64;
    let seed = mix(u64::from(std::process::id()) ^ 0x0c00_c1e5);
    let started = Instant::now();
    let (mut sent, mut send_errors) = (0u64, 0u64);
    for t in 0..ticks {
        // Packets due by the end of this tick, so the total is exactly `count`.
        let due = count * (t + 1) / ticks;
        while sent + send_errors < due {
            let i = sent + send_errors;
            let src = sources[(i % sources.len() as u64) as usize];
            let ike = ike_sa_init_request(mix(seed ^ i), seed.wrapping_add(i));
            let pkt = udp_packet(
                SocketAddrV4::new(src, 500),
                SocketAddrV4::new(dst, 500),
                &ike,
            );
            match socket.send_to(&pkt, &target) {
                Ok(_) => sent += 1,
                Err(_) => send_errors += 1,
            }
        }
        let next = started + tick * (t as u32 + 1);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    Ok(FloodReport {
        sent,
        send_errors,
        elapsed: started.elapsed(),
    })
}
