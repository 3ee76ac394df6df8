//! From negotiated transform IDs to the algorithms that implement them: one
//! set of rules for [`crate::ike_cipher::IkeSuite`] and
//! [`crate::esp_cipher::EspSuite`], with the differences between the two
//! protocols spelled out here.
use oxisec_wire::{TransformId, encr, integ};

use crate::CryptoError;
use crate::aead_alg::AeadAlg;
use crate::encr::Encr;
use crate::integ::Integ;

/// Which protocol the transforms protect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Ike,
    Esp,
}

/// What a valid suite resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    Aead(AeadAlg),
    /// Encryption (possibly ENCR_NULL) then a separate integrity transform.
    Split {
        encr: Encr,
        integ: Integ,
    },
}

/// AES key length in bytes from the Key Length attribute, which is
/// mandatory for AES (RFC 7296 §3.3.5).
fn aes_key_len(bits: Option<u16>) -> Result<usize, CryptoError> {
    match bits {
        Some(128) => Ok(16),
        Some(192) => Ok(24),
        Some(256) => Ok(32),
        Some(_) => Err(CryptoError::Unsupported("AES key length")),
        None => Err(CryptoError::Unsupported("AES without a key length")),
    }
}

/// Fixed-key ciphers (RFC 7296 §3.3.5: the attribute "MUST NOT be used" with
/// them). IKE holds peers to that; ESP also accepts an attribute that states
/// the fixed size, as some implementations send one.
fn fixed_key(
    proto: Proto,
    bits: Option<u16>,
    size: u16,
    what: &'static str,
) -> Result<(), CryptoError> {
    match (proto, bits) {
        (_, None) => Ok(()),
        (Proto::Esp, Some(b)) if b == size => Ok(()),
        _ => Err(CryptoError::Unsupported(what)),
    }
}

/// RFC 7296 §3.3.3: an AEAD proposal carries no integrity transform, or
/// INTEG NONE.
fn no_integ(integ: Option<TransformId>) -> Result<(), CryptoError> {
    match integ {
        None | Some(integ::NONE) => Ok(()),
        Some(_) => Err(CryptoError::Unsupported(
            "integrity transform with an AEAD cipher",
        )),
    }
}

/// A non-AEAD cipher needs a real integrity transform: RFC 8221 §5 forbids
/// ESP encryption without integrity, RFC 2410 §2 requires one with
/// ENCR_NULL, and RFC 7296 §3.14 requires one for the SK payload.
fn required_integ(integ: Option<TransformId>) -> Result<Integ, CryptoError> {
    match integ {
        None | Some(integ::NONE) => Err(CryptoError::Unsupported(
            "encryption without an integrity transform",
        )),
        Some(id) => Integ::from_id(id).ok_or(CryptoError::Unsupported("integrity algorithm")),
    }
}

pub(crate) fn resolve(
    proto: Proto,
    encr_id: TransformId,
    key_bits: Option<u16>,
    integ_id: Option<TransformId>,
) -> Result<Transform, CryptoError> {
    let gcm = |icv_len| -> Result<Transform, CryptoError> {
        no_integ(integ_id)?;
        Ok(Transform::Aead(AeadAlg::AesGcm {
            key_len: aes_key_len(key_bits)?,
            icv_len,
        }))
    };
    let ccm = |icv_len| -> Result<Transform, CryptoError> {
        no_integ(integ_id)?;
        Ok(Transform::Aead(AeadAlg::AesCcm {
            key_len: aes_key_len(key_bits)?,
            icv_len,
        }))
    };
    let split = |encr| -> Result<Transform, CryptoError> {
        Ok(Transform::Split {
            encr,
            integ: required_integ(integ_id)?,
        })
    };
    match encr_id {
        encr::AES_GCM_16 => gcm(16),
        encr::AES_GCM_12 => gcm(12),
        encr::AES_GCM_8 => gcm(8),
        encr::AES_CCM_16 => ccm(16),
        encr::AES_CCM_12 => ccm(12),
        encr::AES_CCM_8 => ccm(8),
        encr::CHACHA20_POLY1305 => {
            no_integ(integ_id)?;
            // RFC 7634 §2: a fixed 256-bit key.
            fixed_key(proto, key_bits, 256, "ChaCha20-Poly1305 key length")?;
            Ok(Transform::Aead(AeadAlg::ChaCha20Poly1305))
        }
        encr::AES_CBC => split(Encr::AesCbc(aes_key_len(key_bits)?)),
        encr::AES_CTR => split(Encr::AesCtr(aes_key_len(key_bits)?)),
        encr::TRIPLE_DES => {
            fixed_key(proto, key_bits, 192, "3DES key length")?;
            split(Encr::TripleDes)
        }
        encr::NULL => match proto {
            // RFC 7296 §3.14: the SK payload is always encrypted.
            Proto::Ike => Err(CryptoError::Unsupported("ENCR_NULL in IKE")),
            Proto::Esp => {
                if key_bits.is_some() {
                    return Err(CryptoError::Unsupported("ENCR_NULL key length"));
                }
                split(Encr::Null)
            }
        },
        _ => Err(CryptoError::Unsupported("encryption algorithm")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_is_esp_only_and_needs_integrity() {
        let null = |proto, integ| resolve(proto, encr::NULL, None, integ);
        assert!(null(Proto::Ike, Some(integ::HMAC_SHA2_256_128)).is_err());
        assert_eq!(
            null(Proto::Esp, Some(integ::HMAC_SHA2_256_128)),
            Ok(Transform::Split {
                encr: Encr::Null,
                integ: Integ::HmacSha256_128
            })
        );
        assert!(null(Proto::Esp, None).is_err());
        assert!(null(Proto::Esp, Some(integ::NONE)).is_err());
        assert!(resolve(Proto::Esp, encr::NULL, Some(128), Some(integ::AES_XCBC_96)).is_err());
    }

    #[test]
    fn fixed_key_attribute_rules() {
        let i = Some(integ::HMAC_SHA1_96);
        assert!(resolve(Proto::Ike, encr::TRIPLE_DES, None, i).is_ok());
        assert!(resolve(Proto::Ike, encr::TRIPLE_DES, Some(192), i).is_err());
        assert!(resolve(Proto::Esp, encr::TRIPLE_DES, Some(192), i).is_ok());
        assert!(resolve(Proto::Esp, encr::TRIPLE_DES, Some(168), i).is_err());
        assert!(resolve(Proto::Ike, encr::CHACHA20_POLY1305, Some(256), None).is_err());
        assert!(resolve(Proto::Esp, encr::CHACHA20_POLY1305, Some(256), None).is_ok());
    }

    #[test]
    fn aead_and_integrity_rules() {
        for proto in [Proto::Ike, Proto::Esp] {
            for e in [encr::AES_GCM_8, encr::AES_CCM_12, encr::AES_GCM_16] {
                assert!(resolve(proto, e, Some(128), Some(integ::NONE)).is_ok());
                assert!(resolve(proto, e, Some(128), Some(integ::AES_CMAC_96)).is_err());
                assert!(resolve(proto, e, None, None).is_err());
            }
            for e in [encr::AES_CBC, encr::AES_CTR] {
                assert!(resolve(proto, e, Some(256), Some(integ::AES_XCBC_96)).is_ok());
                assert!(resolve(proto, e, Some(256), None).is_err());
                assert!(resolve(proto, e, Some(256), Some(integ::HMAC_MD5_96)).is_err());
                assert!(resolve(proto, e, Some(64), Some(integ::AES_XCBC_96)).is_err());
            }
            assert!(resolve(proto, encr::DES, None, Some(integ::HMAC_SHA1_96)).is_err());
        }
    }
}
