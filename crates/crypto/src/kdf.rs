//! IKEv2 key derivation (RFC 7296 §2.14, §2.17, §2.18) as pure functions.
use crate::{Secret, prf::Prf};

/// Sizes of the keys to derive for an IKE SA, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeKeySizes {
    /// Encryption key length, including the salt for AEAD ciphers (RFC 5282:
    /// 4 bytes for GCM).
    pub encr: usize,
    /// Integrity key length; 0 for AEAD ciphers.
    pub integ: usize,
}

/// The seven IKE SA keys.
#[derive(Debug, Clone)]
pub struct IkeKeys {
    pub sk_d: Secret,
    pub sk_ai: Secret,
    pub sk_ar: Secret,
    pub sk_ei: Secret,
    pub sk_er: Secret,
    pub sk_pi: Secret,
    pub sk_pr: Secret,
}

/// SKEYSEED = prf(Ni | Nr, g^ir).
pub fn skeyseed(prf: Prf, ni: &[u8], nr: &[u8], g_ir: &[u8]) -> Secret {
    todo!()
}

/// SKEYSEED for a rekeyed IKE SA = prf(SK_d (old), g^ir (new) | Ni | Nr).
pub fn rekey_skeyseed(prf: Prf, old_sk_d: &[u8], g_ir: &[u8], ni: &[u8], nr: &[u8]) -> Secret {
    todo!()
}

/// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
///   = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr).
pub fn ike_keys(
    prf: Prf,
    skeyseed: &[u8],
    ni: &[u8],
    nr: &[u8],
    spi_i: u64,
    spi_r: u64,
    sizes: IkeKeySizes,
) -> IkeKeys {
    todo!()
}

/// KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr), `len` bytes; the caller splits
/// it into initiator→responder then responder→initiator keys (§2.17).
pub fn child_keymat(
    prf: Prf,
    sk_d: &[u8],
    g_ir: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    len: usize,
) -> Secret {
    todo!()
}
