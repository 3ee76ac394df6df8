//! IKE SA key derivation (RFC 7296 §2.14, §2.18) from a negotiated proposal.
use oxisec_crypto::Secret;
use oxisec_crypto::ike_cipher::{IkeCipher, IkeSuite};
use oxisec_crypto::kdf::{self, IkeKeySizes};
use oxisec_crypto::prf::Prf;

use crate::proposal::Selected;
use crate::sa::{Role, SaKeys};

/// Where SKEYSEED comes from.
pub(crate) enum Seed<'a> {
    /// IKE_SA_INIT: SKEYSEED = prf(Ni | Nr, g^ir).
    Initial { g_ir: &'a [u8] },
    /// IKE SA rekey: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr
    /// [| SK(1) | ... | SK(n)]), with the old SA's PRF (the new PRF then
    /// drives prf+), as strongSwan does; `additional` are the secrets of the
    /// IKE_FOLLOWUP_KE exchanges (RFC 9370 §2.2.4).
    Rekey {
        old: &'a SaKeys,
        g_ir: &'a [u8],
        additional: &'a [Secret],
    },
}

/// Nonces and SPIs of the exchange that creates the SA.
pub(crate) struct Inputs<'a> {
    pub ni: &'a [u8],
    pub nr: &'a [u8],
    pub spi_i: u64,
    pub spi_r: u64,
}

/// Derives SKEYSEED and the SK_* keys and builds both directions' ciphers.
pub(crate) fn derive(
    selected: &Selected,
    role: Role,
    seed: Seed,
    x: Inputs,
) -> Result<SaKeys, String> {
    let prf_id = selected.prf.ok_or("no PRF selected")?.id;
    let prf = Prf::from_id(prf_id).ok_or_else(|| format!("PRF {} not implemented", prf_id.0))?;
    let suite = IkeSuite {
        encr: selected.encr.id,
        encr_key_bits: selected.encr.key_bits,
        integ: selected.integ.map(|a| a.id),
    };
    suite.validate().map_err(|e| e.to_string())?;
    let sizes = IkeKeySizes {
        encr: suite.encr_key_len(),
        integ: suite.integ_key_len(),
    };
    let skeyseed = match seed {
        Seed::Initial { g_ir } => kdf::skeyseed(prf, x.ni, x.nr, g_ir),
        Seed::Rekey {
            old,
            g_ir,
            additional,
        } => {
            let additional: Vec<&[u8]> = additional.iter().map(Secret::as_bytes).collect();
            kdf::rekey_skeyseed_multi(old.prf, old.sk_d.as_bytes(), g_ir, x.ni, x.nr, &additional)
        }
    };
    let k = kdf::ike_keys(
        prf,
        skeyseed.as_bytes(),
        x.ni,
        x.nr,
        x.spi_i,
        x.spi_r,
        sizes,
    );
    let ci = IkeCipher::new(suite, &k.sk_ei, &k.sk_ai).map_err(|e| e.to_string())?;
    let cr = IkeCipher::new(suite, &k.sk_er, &k.sk_ar).map_err(|e| e.to_string())?;
    Ok(match role {
        Role::Initiator => SaKeys {
            prf,
            sk_d: k.sk_d,
            sk_p_own: k.sk_pi,
            sk_p_peer: k.sk_pr,
            outbound: ci,
            inbound: cr,
        },
        Role::Responder => SaKeys {
            prf,
            sk_d: k.sk_d,
            sk_p_own: k.sk_pr,
            sk_p_peer: k.sk_pi,
            outbound: cr,
            inbound: ci,
        },
    })
}
