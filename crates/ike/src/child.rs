//! Turning a negotiated CHILD_SA into keys and data-plane commands (§2.17).
use oxisec_crypto::Secret;
use oxisec_crypto::esp_cipher::EspSuite;
use oxisec_crypto::kdf;

use crate::api::{ChildId, EspSaParams, SaCommand};
use crate::proposal::Selected;
use crate::sa::{ChildSa, ChildState, IkeSa, SaKeys};
use crate::ts::TsRange;

/// Everything negotiated about one CHILD_SA.
pub(crate) struct Negotiated {
    pub id: ChildId,
    pub name: String,
    pub selected: Selected,
    pub spi_in: u32,
    pub spi_out: u32,
    pub local_ts: Vec<TsRange>,
    pub remote_ts: Vec<TsRange>,
}

pub(crate) fn esp_suite(s: &Selected) -> EspSuite {
    EspSuite {
        encr: s.encr.id,
        encr_key_bits: s.encr.key_bits,
        integ: s.integ.map(|a| a.id),
        esn: s.esn,
    }
}

/// KEYMAT = prf+(SK_d, Ni | Nr): initiator→responder keys first, then
/// responder→initiator. Returns (inbound, outbound) keys for our role.
fn split_keymat(
    keys: &SaKeys,
    suite: &EspSuite,
    ni: &[u8],
    nr: &[u8],
    initiator: bool,
) -> (Secret, Secret) {
    let per_dir = suite.keymat_len();
    let mut keymat = kdf::child_keymat(keys.prf, keys.sk_d.as_bytes(), None, ni, nr, 2 * per_dir);
    let i_to_r = keymat.split_to(per_dir);
    let r_to_i = keymat;
    if initiator {
        (r_to_i, i_to_r)
    } else {
        (i_to_r, r_to_i)
    }
}

/// Installs a CHILD_SA: inbound first, then outbound (the caller sends any
/// response after these commands are queued), and records it on the IKE SA.
pub(crate) fn install(
    sa: &mut IkeSa,
    out: &mut std::collections::VecDeque<SaCommand>,
    now: std::time::Instant,
    n: Negotiated,
    ni: &[u8],
    nr: &[u8],
) -> Result<(), String> {
    let suite = esp_suite(&n.selected);
    suite
        .validate()
        .map_err(|e| format!("ESP suite not supported: {e}"))?;
    let keys = sa.keys.as_ref().ok_or("IKE SA has no keys")?;
    let (k_in, k_out) = split_keymat(keys, &suite, ni, nr, sa.is_initiator());
    let udp_encap = sa.udp_encap();
    out.push_back(SaCommand::InstallInbound {
        child: n.id,
        sa: EspSaParams {
            spi: n.spi_in,
            suite,
            keys: k_in,
        },
        local_ts: n.local_ts.clone(),
        remote_ts: n.remote_ts.clone(),
    });
    out.push_back(SaCommand::InstallOutbound {
        child: n.id,
        sa: EspSaParams {
            spi: n.spi_out,
            suite,
            keys: k_out,
        },
        local_ts: n.local_ts.clone(),
        remote_ts: n.remote_ts.clone(),
        local: sa.local,
        remote: sa.remote,
        udp_encap,
    });
    sa.children.push(ChildSa {
        id: n.id,
        name: n.name,
        spi_in: n.spi_in,
        spi_out: n.spi_out,
        selected: n.selected,
        local_ts: n.local_ts,
        remote_ts: n.remote_ts,
        state: ChildState::Installed,
        installed: now,
    });
    Ok(())
}

/// The peer's 4-byte SPI from a selected proposal.
pub(crate) fn peer_spi(s: &Selected) -> Option<u32> {
    let b: [u8; 4] = s.spi.as_slice().try_into().ok()?;
    let spi = u32::from_be_bytes(b);
    (spi != 0).then_some(spi)
}
