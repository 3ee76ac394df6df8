//! AUTH payloads (RFC 7296 §2.15): pre-shared keys, RFC 7427 digital
//! signatures, and the legacy signature methods (RSA with SHA-1, RFC 4754
//! ECDSA) that older native clients still use.
//!
//! Every method covers the same octets:
//! `RealMessage | Nonce of the other side | prf(SK_p, ID') [| IntAuth]`.
use oxisec_crypto::Secret;
use oxisec_crypto::prf::Prf;
use oxisec_pki::{PrivateKey, PublicKey, SigScheme};
use oxisec_wire::{AuthMethod, AuthPayload};

use crate::config::Auth;

/// The padding string of §2.15.
const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// RFC 7427 hash algorithm numbers we announce in SIGNATURE_HASH_ALGORITHMS:
/// SHA2-256, SHA2-384, SHA2-512 and Identity (Ed25519).
pub(crate) const OUR_HASHES: [u16; 4] = [2, 3, 4, 5];

/// The octets an AUTH payload covers.
pub(crate) fn signed_octets(
    prf: Prf,
    real_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
    int_auth: &[u8],
) -> Vec<u8> {
    let maced_id = prf.compute(sk_p, &[id_body]);
    // With IKE_INTERMEDIATE exchanges, IntAuth follows MACedID (RFC 9242 §3.3.2).
    [real_message, peer_nonce, maced_id.as_bytes(), int_auth].concat()
}

/// AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets> ).
fn psk_mac(prf: Prf, psk: &[u8], octets: &[u8]) -> Secret {
    let key = prf.compute(psk, &[KEY_PAD]);
    prf.compute(key.as_bytes(), &[octets])
}

/// Constant-time comparison of a received AUTH value with the expected one.
pub(crate) fn same(expected: &Secret, received: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    expected.len() == received.len() && bool::from(expected.as_bytes().ct_eq(received))
}

/// Our AUTH payload for `octets`. `peer_hashes` are the hash algorithms the
/// peer announced (SIGNATURE_HASH_ALGORITHMS): with them we use RFC 7427
/// digital signatures, without them a legacy method.
pub(crate) fn make(
    auth: &Auth,
    prf: Prf,
    octets: &[u8],
    peer_hashes: &[u16],
) -> Result<AuthPayload, String> {
    match auth {
        Auth::Psk(psk) => Ok(AuthPayload {
            method: AuthMethod::SHARED_KEY_MIC,
            data: psk_mac(prf, psk.as_bytes(), octets).as_bytes().to_vec(),
        }),
        Auth::Cert(cert) => sign(&cert.key, octets, peer_hashes),
        Auth::PeerCert(_) => Err("a trust store cannot authenticate us".into()),
        Auth::Eap(_) => Err("an EAP user database cannot authenticate us".into()),
        Auth::EapRelay(_) => Err("an EAP relay cannot authenticate us".into()),
        Auth::EapTls(_) => Err("an EAP-TLS trust store cannot authenticate us".into()),
        // The EAP client's AUTH is keyed with the MSK (ike_auth does that).
        Auth::EapClient { .. } | Auth::EapTlsClient(_) => {
            Err("an EAP client sends no AUTH before EAP".into())
        }
    }
}

fn sign(key: &PrivateKey, octets: &[u8], peer_hashes: &[u16]) -> Result<AuthPayload, String> {
    let schemes = key.schemes();
    if !peer_hashes.is_empty() {
        let scheme = schemes
            .iter()
            .copied()
            .find(|s| *s != SigScheme::RsaPkcs1Sha1 && peer_hashes.contains(&s.hash_id()))
            .ok_or("no signature scheme of our key uses a hash the peer supports")?;
        let sig = key.sign(scheme, octets).map_err(|e| e.to_string())?;
        let ai = scheme.algorithm_identifier();
        let mut data = vec![u8::try_from(ai.len()).map_err(|_| "algorithm identifier too long")?];
        data.extend_from_slice(&ai);
        data.extend_from_slice(&sig);
        return Ok(AuthPayload {
            method: AuthMethod::DIGITAL_SIGNATURE,
            data,
        });
    }
    // A peer without RFC 7427: RSA with SHA-1 (method 1, what Windows'
    // native client sends and expects) or RFC 4754 ECDSA.
    let legacy = [
        (SigScheme::EcdsaP256Sha256, AuthMethod::ECDSA_SHA256_P256),
        (SigScheme::EcdsaP384Sha384, AuthMethod::ECDSA_SHA384_P384),
        (SigScheme::EcdsaP521Sha512, AuthMethod::ECDSA_SHA512_P521),
    ];
    if let Some((scheme, method)) = legacy.into_iter().find(|(s, _)| schemes.contains(s)) {
        let data = key
            .sign_ecdsa_fixed(scheme, octets)
            .map_err(|e| e.to_string())?;
        return Ok(AuthPayload { method, data });
    }
    if schemes.contains(&SigScheme::RsaPkcs1Sha1) {
        let data = key
            .sign(SigScheme::RsaPkcs1Sha1, octets)
            .map_err(|e| e.to_string())?;
        return Ok(AuthPayload {
            method: AuthMethod::RSA_SIG,
            data,
        });
    }
    Err("the peer supports no signature method our key can make (it sent no SIGNATURE_HASH_ALGORITHMS)".into())
}

/// Checks the peer's AUTH payload against what `expected` says the peer
/// must prove; `peer_key` is the validated certificate's key for signature
/// methods. The error says why, for the log.
pub(crate) fn check(
    expected: &Auth,
    prf: Prf,
    octets: &[u8],
    received: &AuthPayload,
    peer_key: Option<&PublicKey>,
) -> Result<(), String> {
    match (expected, received.method) {
        (Auth::Psk(psk), AuthMethod::SHARED_KEY_MIC) => {
            let mac = psk_mac(prf, psk.as_bytes(), octets);
            same(&mac, &received.data)
                .then_some(())
                .ok_or_else(|| "pre-shared key does not match".into())
        }
        (Auth::Psk(_), m) => Err(format!(
            "peer authenticates with method {m}, we expect a pre-shared key"
        )),
        (Auth::PeerCert(_), AuthMethod::SHARED_KEY_MIC) => {
            Err("peer authenticates with a pre-shared key, we expect a certificate".into())
        }
        (Auth::PeerCert(_), method) => {
            let key = peer_key.ok_or("peer sent no usable certificate")?;
            verify_signature(key, method, &received.data, octets)
        }
        (Auth::Cert(_), _) => {
            Err("configuration error: remote_auth holds our own certificate".into())
        }
        (Auth::Eap(_) | Auth::EapRelay(_) | Auth::EapTls(_), _) => {
            Err("peer sent AUTH, but must authenticate with EAP first".into())
        }
        (Auth::EapClient { .. } | Auth::EapTlsClient(_), _) => {
            Err("configuration error: remote_auth holds our own EAP credential".into())
        }
    }
}

fn verify_signature(
    key: &PublicKey,
    method: AuthMethod,
    data: &[u8],
    octets: &[u8],
) -> Result<(), String> {
    let fixed = |scheme| {
        key.verify_ecdsa_fixed(scheme, octets, data)
            .map_err(|e| format!("signature does not verify with the peer's certificate: {e}"))
    };
    let (scheme, sig) = match method {
        AuthMethod::DIGITAL_SIGNATURE => {
            let (&len, rest) = data.split_first().ok_or("empty AUTH data")?;
            let ai = rest
                .get(..usize::from(len))
                .ok_or("truncated AlgorithmIdentifier")?;
            let scheme = SigScheme::from_algorithm_identifier(ai)
                .ok_or("unsupported signature algorithm")?;
            // A peer that speaks RFC 7427 can sign with SHA-2 (RFC 8247
            // §3.2 ranks SHA-1 signatures MUST NOT for method 14).
            if scheme == SigScheme::RsaPkcs1Sha1 {
                return Err("peer signs with SHA-1 in an RFC 7427 signature; refused".into());
            }
            (scheme, &rest[usize::from(len)..])
        }
        AuthMethod::RSA_SIG => (SigScheme::RsaPkcs1Sha1, data),
        AuthMethod::ECDSA_SHA256_P256 => return fixed(SigScheme::EcdsaP256Sha256),
        AuthMethod::ECDSA_SHA384_P384 => return fixed(SigScheme::EcdsaP384Sha384),
        AuthMethod::ECDSA_SHA512_P521 => return fixed(SigScheme::EcdsaP521Sha512),
        m => return Err(format!("unsupported authentication method {m}")),
    };
    if !key.schemes().contains(&scheme) {
        return Err(format!(
            "signature scheme {scheme:?} does not fit the certificate's key"
        ));
    }
    key.verify(scheme, octets, sig)
        .map_err(|_| "signature does not verify with the peer's certificate".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psk_auth_depends_on_every_octet() {
        let prf = Prf::HmacSha256;
        let a = signed_octets(prf, b"msg", b"nonce", b"skp", b"id", b"");
        let b = signed_octets(prf, b"msg", b"nonce", b"skp", b"id", b"intauth");
        assert_ne!(a, b);
        let auth = Auth::Psk(Secret::from_slice(b"secret"));
        let p = make(&auth, prf, &a, &[]).unwrap();
        assert!(check(&auth, prf, &a, &p, None).is_ok());
        assert!(check(&auth, prf, &b, &p, None).is_err());
        assert!(check(&Auth::Psk(Secret::from_slice(b"other")), prf, &a, &p, None).is_err());
    }
}
