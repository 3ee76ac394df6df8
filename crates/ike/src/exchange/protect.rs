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
pub(super) fn open(keys: &SaKeys, bytes: &[u8], msg: &Message) -> Result<Vec<Payload>, OpenError> {
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
    parse_payloads(sk.first_inner, plain.as_bytes()).map_err(OpenError::Syntax)
}
