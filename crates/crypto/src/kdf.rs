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

/// The seven IKE SA keys. `Debug` shows only their lengths ([`Secret`]).
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
///
/// For a PRF with a fixed key length (PRF_AES128_XCBC, PRF_AES128_CMAC),
/// RFC 7296 §2.14 takes "half the bits from Ni and half from Nr, taking the
/// first bits of each": the key is the first 8 bytes of Ni then the first 8
/// of Nr. Nonces are at least 16 bytes (RFC 7296 §2.10); should one be
/// shorter, all of it is used and the PRF's own key rule fills the rest.
/// HMAC PRFs take the whole of Ni | Nr.
pub fn skeyseed(prf: Prf, ni: &[u8], nr: &[u8], g_ir: &[u8]) -> Secret {
    let (ni, nr) = match prf.fixed_key_len() {
        Some(len) => (&ni[..ni.len().min(len / 2)], &nr[..nr.len().min(len / 2)]),
        None => (ni, nr),
    };
    let key = Secret::new([ni, nr].concat());
    prf.compute(key.as_bytes(), &[g_ir])
}

/// SKEYSEED for a rekeyed IKE SA = prf(SK_d (old), g^ir (new) | Ni | Nr).
pub fn rekey_skeyseed(prf: Prf, old_sk_d: &[u8], g_ir: &[u8], ni: &[u8], nr: &[u8]) -> Secret {
    rekey_skeyseed_multi(prf, old_sk_d, g_ir, ni, nr, &[])
}

/// SKEYSEED for an IKE SA rekeyed with additional key exchanges (RFC 9370
/// §2.2.4): prf(SK_d (old), SK(0) | Ni | Nr | SK(1) | ... | SK(n)), where
/// SK(0) is the CREATE_CHILD_SA's shared secret and `additional` the ones
/// from the IKE_FOLLOWUP_KE exchanges, in order. Unlike IKE_INTERMEDIATE,
/// nothing is chained per exchange.
pub fn rekey_skeyseed_multi(
    prf: Prf,
    old_sk_d: &[u8],
    g_ir: &[u8],
    ni: &[u8],
    nr: &[u8],
    additional: &[&[u8]],
) -> Secret {
    let mut parts: Vec<&[u8]> = vec![g_ir, ni, nr];
    parts.extend_from_slice(additional);
    prf.compute(old_sk_d, &parts)
}

/// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
///   = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr).
///
/// SK_d, SK_pi and SK_pr have the PRF's output length (§2.14: the PRF's
/// preferred key size); the others come from `sizes`.
///
/// # Panics
/// If the seven keys together need more than 255 prf+ blocks, which no
/// combination of implemented algorithms comes near (the largest is 484
/// bytes of 8160 for SHA-256).
pub fn ike_keys(
    prf: Prf,
    skeyseed: &[u8],
    ni: &[u8],
    nr: &[u8],
    spi_i: u64,
    spi_r: u64,
    sizes: IkeKeySizes,
) -> IkeKeys {
    let d = prf.output_len();
    let total = 3 * d + 2 * sizes.integ + 2 * sizes.encr;
    let mut keymat = prf.prf_plus(
        skeyseed,
        &[ni, nr, &spi_i.to_be_bytes(), &spi_r.to_be_bytes()],
        total,
    );
    IkeKeys {
        sk_d: keymat.split_to(d),
        sk_ai: keymat.split_to(sizes.integ),
        sk_ar: keymat.split_to(sizes.integ),
        sk_ei: keymat.split_to(sizes.encr),
        sk_er: keymat.split_to(sizes.encr),
        sk_pi: keymat.split_to(d),
        sk_pr: keymat.split_to(d),
    }
}

/// KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr), `len` bytes; the caller splits
/// it into initiator→responder then responder→initiator keys (§2.17).
///
/// # Panics
/// If `len` exceeds [`Prf::max_prf_plus_len`].
pub fn child_keymat(
    prf: Prf,
    sk_d: &[u8],
    g_ir: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    len: usize,
) -> Secret {
    child_keymat_multi(prf, sk_d, g_ir, ni, nr, &[], len)
}

/// KEYMAT with additional key exchanges (RFC 9370 §2.2.4):
/// prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n)); SK(0) is absent when
/// the CREATE_CHILD_SA carried no KE payload.
///
/// # Panics
/// If `len` exceeds [`Prf::max_prf_plus_len`].
pub fn child_keymat_multi(
    prf: Prf,
    sk_d: &[u8],
    g_ir: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    additional: &[&[u8]],
    len: usize,
) -> Secret {
    let mut seed: Vec<&[u8]> = g_ir.into_iter().collect();
    seed.extend_from_slice(&[ni, nr]);
    seed.extend_from_slice(additional);
    prf.prf_plus(sk_d, &seed, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ike_keys_are_consecutive_slices_of_prf_plus() {
        let prf = Prf::HmacSha384;
        let sizes = IkeKeySizes { encr: 36, integ: 0 };
        let keys = ike_keys(prf, b"seed", b"ni", b"nr", 1, 0x0203, sizes);
        let stream = prf.prf_plus(
            b"seed",
            &[b"ni", b"nr", &1u64.to_be_bytes(), &0x0203u64.to_be_bytes()],
            3 * 48 + 2 * 36,
        );
        let parts = [
            &keys.sk_d,
            &keys.sk_ai,
            &keys.sk_ar,
            &keys.sk_ei,
            &keys.sk_er,
            &keys.sk_pi,
            &keys.sk_pr,
        ];
        let lens: Vec<usize> = parts.iter().map(|s| s.len()).collect();
        assert_eq!(lens, [48, 0, 0, 36, 36, 48, 48]);
        let joined: Vec<u8> = parts.iter().flat_map(|s| s.as_bytes().to_vec()).collect();
        assert_eq!(joined, stream.as_bytes());
    }

    #[test]
    fn ike_keys_with_integrity() {
        let keys = ike_keys(
            Prf::HmacSha256,
            b"seed",
            b"ni",
            b"nr",
            7,
            8,
            IkeKeySizes {
                encr: 16,
                integ: 32,
            },
        );
        assert_eq!(keys.sk_ai.len(), 32);
        assert_eq!(keys.sk_ar.len(), 32);
        assert_ne!(keys.sk_ai, keys.sk_ar);
        assert_eq!(keys.sk_ei.len(), 16);
        let shown = format!("{keys:?}");
        assert!(shown.contains("REDACTED"));
    }

    #[test]
    fn skeyseed_keys_prf_with_both_nonces() {
        let prf = Prf::HmacSha256;
        assert_eq!(
            skeyseed(prf, b"ab", b"cd", b"gir"),
            prf.compute(b"abcd", &[b"gir"])
        );
        assert_eq!(
            rekey_skeyseed(prf, b"skd", b"gir", b"ni", b"nr"),
            prf.compute(b"skd", &[b"girninr"])
        );
    }

    /// RFC 7296 §2.14: a fixed-key PRF is keyed with the first half-key of
    /// each nonce; HMAC with all of both.
    #[test]
    fn skeyseed_fixed_key_prfs_take_half_of_each_nonce() {
        let ni: Vec<u8> = (0..32).collect();
        let nr: Vec<u8> = (100..132).collect();
        for prf in [Prf::Aes128Xcbc, Prf::Aes128Cmac] {
            let key = [&ni[..8], &nr[..8]].concat();
            assert_eq!(
                skeyseed(prf, &ni, &nr, b"gir"),
                prf.compute(&key, &[b"gir"]),
                "{prf:?}"
            );
            // Short nonces are used whole.
            assert_eq!(
                skeyseed(prf, &ni[..3], &nr[..5], b"gir"),
                prf.compute(&[&ni[..3], &nr[..5]].concat(), &[b"gir"])
            );
            // Only the first 8 bytes of each nonce matter for SKEYSEED ...
            let mut ni2 = ni.clone();
            ni2[20] ^= 1;
            assert_eq!(
                skeyseed(prf, &ni, &nr, b"g"),
                skeyseed(prf, &ni2, &nr, b"g")
            );
            // ... while prf+ still takes the full nonces as its seed.
            let sizes = IkeKeySizes {
                encr: 16,
                integ: 16,
            };
            let a = ike_keys(prf, b"seed", &ni, &nr, 1, 2, sizes);
            let b = ike_keys(prf, b"seed", &ni2, &nr, 1, 2, sizes);
            assert_ne!(a.sk_d, b.sk_d);
            assert_eq!(a.sk_d.len(), 16);
        }
        assert_eq!(
            skeyseed(Prf::HmacSha1, &ni, &nr, b"gir"),
            Prf::HmacSha1.compute(&[&ni[..], &nr[..]].concat(), &[b"gir"])
        );
    }

    #[test]
    fn child_keymat_pfs_prepends_shared_secret() {
        let prf = Prf::HmacSha512;
        assert_eq!(
            child_keymat(prf, b"skd", Some(b"g"), b"ni", b"nr", 100),
            prf.prf_plus(b"skd", &[b"gninr"], 100)
        );
        assert_eq!(
            child_keymat(prf, b"skd", None, b"ni", b"nr", 100),
            prf.prf_plus(b"skd", &[b"ninr"], 100)
        );
    }

    #[test]
    fn additional_secrets_follow_the_nonces() {
        let prf = Prf::HmacSha256;
        assert_eq!(
            rekey_skeyseed_multi(prf, b"skd", b"g0", b"ni", b"nr", &[b"s1", b"s2"]).as_bytes(),
            prf.compute(b"skd", &[b"g0ninrs1s2" as &[u8]]).as_bytes()
        );
        assert_eq!(
            child_keymat_multi(prf, b"skd", Some(b"g0"), b"ni", b"nr", &[b"s1"], 80).as_bytes(),
            prf.prf_plus(b"skd", &[b"g0ninrs1" as &[u8]], 80).as_bytes()
        );
        assert_eq!(
            child_keymat_multi(prf, b"skd", None, b"ni", b"nr", &[b"s1"], 80).as_bytes(),
            prf.prf_plus(b"skd", &[b"ninrs1" as &[u8]], 80).as_bytes()
        );
    }
}
