//! Protection of IKE messages with the SK payload (RFC 7296 §3.14).
use oxisec_crypto::{CryptoError, Rng};
use oxisec_wire::{HeaderRepr, Message, Payload, SkPayload, emit_payloads, parse_payloads};

use crate::sa::SaKeys;

/// Builds `hdr` + SK{payloads}, encrypted and integrity protected.
pub(super) fn seal(
    keys: &SaKeys,
    rng: &mut dyn Rng,
    hdr: HeaderRepr,
    payloads: &[Payload],
) -> Result<Vec<u8>, CryptoError> {
    let mut inner = Vec::new();
    let first_inner = emit_payloads(payloads, &mut inner);
    let body_len = keys.outbound.body_len(inner.len());
    let msg = Message {
        header: hdr,
        payloads: vec![Payload::Sk(SkPayload {
            first_inner,
            body: vec![0; body_len],
        })],
    };
    let mut bytes = msg.emit();
    let offset = msg.encrypted_body_offset().ok_or(CryptoError::Malformed)?;
    keys.outbound.seal(rng, &mut bytes, offset, &inner)?;
    zeroize::Zeroize::zeroize(&mut inner);
    Ok(bytes)
}

pub(super) enum OpenError {
    /// The message has no SK payload where one is required.
    NotProtected,
    /// Integrity check failed or the ciphertext is malformed: drop silently.
    Integrity,
    /// Authentic, but the decrypted payloads do not parse.
    Syntax(oxisec_wire::Error),
}

/// Verifies and decrypts the SK payload of a received message. Payloads
/// outside SK are ignored (they are not confidential, and nothing we accept
/// may travel that way).
/// The decrypted inner payloads: their first type and bytes (kept for the
/// IntAuth of IKE_INTERMEDIATE messages, RFC 9242) and the parsed payloads.
pub(super) type Inner = (oxisec_wire::PayloadType, Vec<u8>);

pub(super) fn open(
    keys: &SaKeys,
    bytes: &[u8],
    msg: &Message,
) -> Result<(Vec<Payload>, Inner), OpenError> {
    let Some(Payload::Sk(sk)) = msg.payloads.last() else {
        return Err(OpenError::NotProtected);
    };
    // SK is the last payload and its body runs to the end of the datagram.
    let offset = bytes
        .len()
        .checked_sub(sk.body.len())
        .ok_or(OpenError::Integrity)?;
    let plain = keys
        .inbound
        .open(bytes, offset)
        .map_err(|_| OpenError::Integrity)?;
    let payloads = parse_payloads(sk.first_inner, plain.as_bytes()).map_err(OpenError::Syntax)?;
    Ok((payloads, (sk.first_inner, plain.as_bytes().to_vec())))
}

/// Builds `hdr` + SKF{…} fragments (RFC 7383 §2.5) no larger than `max_len`
/// bytes each (the UDP payload, without the non-ESP marker): the inner
/// payloads are split into chunks and every fragment is encrypted and
/// authenticated on its own. Falls back to one SK message when that fits.
pub(super) fn seal_fragmented(
    keys: &SaKeys,
    rng: &mut dyn Rng,
    hdr: HeaderRepr,
    payloads: &[Payload],
    max_len: usize,
) -> Result<Vec<Vec<u8>>, CryptoError> {
    let whole = seal(keys, rng, hdr, payloads)?;
    if whole.len() <= max_len {
        return Ok(vec![whole]);
    }
    let mut inner = Vec::new();
    let first_inner = emit_payloads(payloads, &mut inner);
    // IKE header and SKF header (generic header + fragment number + total).
    let fixed = oxisec_wire::HEADER_LEN + 8;
    let room = max_len.checked_sub(fixed).ok_or(CryptoError::Malformed)?;
    let chunk = (1..=room)
        .rev()
        .find(|n| keys.outbound.body_len(*n) <= room)
        .ok_or(CryptoError::Malformed)?;
    let total = inner.len().div_ceil(chunk);
    let total = u16::try_from(total).map_err(|_| CryptoError::Malformed)?;
    let mut out = Vec::with_capacity(usize::from(total));
    for (i, part) in inner.chunks(chunk).enumerate() {
        let number = i as u16 + 1;
        let skf = oxisec_wire::SkfPayload {
            first_inner: if number == 1 {
                first_inner
            } else {
                oxisec_wire::PayloadType::NONE
            },
            fragment_number: number,
            total_fragments: total,
            body: vec![0; keys.outbound.body_len(part.len())],
        };
        let msg = Message {
            header: hdr,
            payloads: vec![Payload::Skf(skf)],
        };
        let mut bytes = msg.emit();
        let offset = msg.encrypted_body_offset().ok_or(CryptoError::Malformed)?;
        keys.outbound.seal(rng, &mut bytes, offset, part)?;
        out.push(bytes);
    }
    zeroize::Zeroize::zeroize(&mut inner);
    Ok(out)
}

/// One received, authenticated fragment.
pub(super) struct Fragment {
    pub number: u16,
    pub total: u16,
    pub first_inner: oxisec_wire::PayloadType,
    pub plaintext: Vec<u8>,
}

/// Verifies and decrypts an SKF payload; `None` if the message has none.
pub(super) fn open_fragment(
    keys: &SaKeys,
    bytes: &[u8],
    msg: &Message,
) -> Option<Result<Fragment, OpenError>> {
    let Some(Payload::Skf(skf)) = msg.payloads.last() else {
        return None;
    };
    let opened = (|| {
        let offset = bytes
            .len()
            .checked_sub(skf.body.len())
            .ok_or(OpenError::Integrity)?;
        let plain = keys
            .inbound
            .open(bytes, offset)
            .map_err(|_| OpenError::Integrity)?;
        Ok(Fragment {
            number: skf.fragment_number,
            total: skf.total_fragments,
            first_inner: skf.first_inner,
            plaintext: plain.as_bytes().to_vec(),
        })
    })();
    Some(opened)
}
