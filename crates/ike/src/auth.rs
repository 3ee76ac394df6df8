//! Pre-shared key authentication (RFC 7296 §2.15).
use oxisec_crypto::Secret;
use oxisec_crypto::prf::Prf;

/// The padding string of §2.15.
const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets> ), where
/// SignedOctets = RealMessage | Nonce of the other side | prf(SK_p, ID').
pub(crate) fn psk_auth(
    prf: Prf,
    psk: &[u8],
    real_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
    int_auth: &[u8],
) -> Secret {
    let maced_id = prf.compute(sk_p, &[id_body]);
    let key = prf.compute(psk, &[KEY_PAD]);
    // With IKE_INTERMEDIATE exchanges, IntAuth follows MACedID (RFC 9242 §3.3.2).
    prf.compute(
        key.as_bytes(),
        &[real_message, peer_nonce, maced_id.as_bytes(), int_auth],
    )
}

/// Constant-time comparison of a received AUTH value with the expected one.
pub(crate) fn verify(expected: &Secret, received: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    expected.len() == received.len() && bool::from(expected.as_bytes().ct_eq(received))
}
