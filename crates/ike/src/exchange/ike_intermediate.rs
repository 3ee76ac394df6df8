//! IKE_INTERMEDIATE (RFC 9242) carrying the additional key exchanges of
//! RFC 9370 (e.g. ML-KEM next to X25519) between IKE_SA_INIT and IKE_AUTH.
//!
//! One exchange per negotiated ADDKE type, in type order: the initiator
//! sends SK{KEi(n)}, the responder answers SK{KEr(n)}, and both then replace
//! the IKE SA keys:
//!
//! ```text
//! SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
//! {SK_d(n) | SK_ai(n) | … | SK_pr(n)} = prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)
//! ```
//!
//! Every IKE_INTERMEDIATE message is also folded into the IntAuth chains
//! that IKE_AUTH signs (RFC 9242 §3.3.2), so that an attacker cannot strip
//! or alter them: `IntAuth_ik = prf(SK_pi(k-1), IntAuth_i(k-1) | A | P)`,
//! where A is the IKE header and SK payload header with lengths adjusted to
//! exclude IV, padding and ICV, and P the inner payloads in clear; the same
//! with SK_pr for the responses.
use oxisec_crypto::Secret;
use oxisec_crypto::ke;
use oxisec_crypto::prf::Prf;
use oxisec_wire::{
    ExchangeType, HEADER_LEN, HeaderRepr, KePayload, NotifyPayload, NotifyType, Payload,
    PayloadType, emit_payloads,
};
use tracing::{debug, warn};

use super::{Cx, close, send_request, send_response};
use crate::api::{Datagram, DownReason};
use crate::keys::{self, Inputs, Seed};
use crate::sa::{Active, IkeSa, IkeState, Role};

/// The octets "A | P" of one IKE_INTERMEDIATE message for IntAuth: the
/// header as if the message were one unfragmented SK message whose length
/// fields counted only header, SK header and inner payloads.
fn adjusted(hdr: &HeaderRepr, first_inner: PayloadType, inner: &[u8]) -> Vec<u8> {
    let mut h = *hdr;
    h.next_payload = PayloadType::SK;
    h.length = (HEADER_LEN + 4 + inner.len()) as u32;
    let mut out = vec![0u8; HEADER_LEN];
    h.emit(&mut out);
    out.push(first_inner.0);
    out.push(0);
    out.extend_from_slice(&((4 + inner.len()) as u16).to_be_bytes());
    out.extend_from_slice(inner);
    out
}

/// One step of an IntAuth chain.
fn fold(prf: Prf, sk_p: &Secret, prev: &Option<Secret>, ap: &[u8]) -> Secret {
    let prev = prev.as_ref().map(|s| s.as_bytes()).unwrap_or_default();
    prf.compute(sk_p.as_bytes(), &[prev, ap])
}

/// IntAuth for IKE_AUTH's signed octets, empty when no IKE_INTERMEDIATE
/// exchange took place (then AUTH is plain RFC 7296).
pub(crate) fn int_auth(sa: &IkeSa, auth_msg_id: u32) -> Vec<u8> {
    let Some(hs) = sa.hs.as_ref() else {
        return Vec::new();
    };
    let (Some(i), Some(r)) = (&hs.int_auth_i, &hs.int_auth_r) else {
        return Vec::new();
    };
    let mut out = i.as_bytes().to_vec();
    out.extend_from_slice(r.as_bytes());
    out.extend_from_slice(&auth_msg_id.to_be_bytes());
    out
}

/// Whether every negotiated additional key exchange is done.
pub(crate) fn complete(sa: &IkeSa) -> bool {
    sa.hs
        .as_ref()
        .is_none_or(|hs| hs.addke_done >= hs.addke.len())
}

/// Replaces the IKE SA keys after additional key exchange n.
fn update_keys(sa: &mut IkeSa, shared: &Secret) -> Result<(), String> {
    let (Some(hs), Some(old), Some(selected)) =
        (sa.hs.as_ref(), sa.keys.as_ref(), sa.selected.as_ref())
    else {
        return Err("no handshake state".into());
    };
    let inputs = Inputs {
        ni: &hs.ni,
        nr: &hs.nr,
        spi_i: sa.spi_i,
        spi_r: sa.spi_r,
    };
    let seed = Seed::Rekey {
        additional: &[],
        old,
        g_ir: shared.as_bytes(),
    };
    let new = keys::derive(selected, sa.role, seed, inputs)?;
    sa.keys = Some(new);
    Ok(())
}

/// Initiator: sends the next additional key exchange; `false` when none is
/// left (the caller goes on with IKE_AUTH).
pub(crate) fn start_next(sa: &mut IkeSa, cx: &mut Cx) -> bool {
    let Some(hs) = sa.hs.as_ref() else {
        return false;
    };
    let Some(&method) = hs.addke.get(hs.addke_done) else {
        return false;
    };
    let share = match ke::generate(method, cx.rng) {
        Ok(s) => s,
        Err(e) => {
            close(
                sa,
                cx,
                DownReason::Failed(format!(
                    "cannot create a share for key exchange {}: {e}",
                    method.0
                )),
            );
            return true;
        }
    };
    let payloads = vec![Payload::Ke(KePayload {
        group: method,
        data: share.public_key().to_vec(),
    })];
    let hdr = super::header(
        sa,
        ExchangeType::IKE_INTERMEDIATE,
        sa.requests.next_id,
        false,
    );
    let mut inner = Vec::new();
    let first = emit_payloads(&payloads, &mut inner);
    let (Some(keys), Some(hs)) = (sa.keys.as_ref(), sa.hs.as_mut()) else {
        return false;
    };
    hs.int_auth_i = Some(fold(
        keys.prf,
        &keys.sk_p_own,
        &hs.int_auth_i,
        &adjusted(&hdr, first, &inner),
    ));
    hs.addke_share = Some(share);
    debug!(connection = %sa.conn.name, method = method.0, n = hs.addke_done + 1, "additional key exchange (IKE_INTERMEDIATE)");
    send_request(
        sa,
        cx,
        ExchangeType::IKE_INTERMEDIATE,
        payloads,
        Active::Intermediate,
    );
    true
}

fn ke_payload(payloads: &[Payload]) -> Option<&KePayload> {
    payloads.iter().find_map(|p| {
        if let Payload::Ke(k) = p {
            Some(k)
        } else {
            None
        }
    })
}

/// Initiator: the answer to an additional key exchange.
pub(crate) fn handle_response(
    sa: &mut IkeSa,
    cx: &mut Cx,
    hdr: &HeaderRepr,
    payloads: &[Payload],
    inner: &(PayloadType, Vec<u8>),
) {
    if let Some(err) = crate::engine::error_notify(payloads) {
        warn!(connection = %sa.conn.name, notify = %err, "additional key exchange refused by the peer");
        close(
            sa,
            cx,
            DownReason::Failed(format!("peer answered {err} in IKE_INTERMEDIATE")),
        );
        return;
    }
    let (Some(keys), Some(hs)) = (sa.keys.as_ref(), sa.hs.as_mut()) else {
        return;
    };
    hs.int_auth_r = Some(fold(
        keys.prf,
        &keys.sk_p_peer,
        &hs.int_auth_r,
        &adjusted(hdr, inner.0, &inner.1),
    ));
    let method = hs.addke.get(hs.addke_done).copied();
    let share = hs.addke_share.take();
    let shared = match (ke_payload(payloads), method, share) {
        (Some(k), Some(m), Some(share)) if k.group == m => share.shared_secret(&k.data),
        _ => {
            close(
                sa,
                cx,
                DownReason::Failed(
                    "IKE_INTERMEDIATE answer without the expected KE payload".into(),
                ),
            );
            return;
        }
    };
    let shared = match shared {
        Ok(s) => s,
        Err(e) => {
            close(
                sa,
                cx,
                DownReason::Failed(format!(
                    "invalid key exchange data in IKE_INTERMEDIATE: {e}"
                )),
            );
            return;
        }
    };
    if let Err(e) = update_keys(sa, &shared) {
        close(sa, cx, DownReason::Failed(e));
        return;
    }
    if let Some(hs) = sa.hs.as_mut() {
        hs.addke_done += 1;
    }
    if !start_next(sa, cx) {
        super::ike_auth::start(sa, cx);
    }
}

/// Responder: one additional key exchange.
pub(crate) fn respond(
    sa: &mut IkeSa,
    cx: &mut Cx,
    dgram: &Datagram,
    hdr: &HeaderRepr,
    payloads: &[Payload],
    inner: &(PayloadType, Vec<u8>),
) {
    let refuse = |sa: &mut IkeSa, cx: &mut Cx, why: &str| {
        debug!(peer = %dgram.remote, "{why}: answering INVALID_SYNTAX");
        let n = Payload::Notify(NotifyPayload::new(NotifyType::INVALID_SYNTAX, Vec::new()));
        send_response(
            sa,
            cx,
            ExchangeType::IKE_INTERMEDIATE,
            hdr.message_id,
            &dgram.data,
            vec![n],
        );
        close(
            sa,
            cx,
            DownReason::Failed(format!("invalid IKE_INTERMEDIATE request: {why}")),
        );
    };
    if sa.role != Role::Responder || sa.state != IkeState::Connecting || complete(sa) {
        return refuse(sa, cx, "no additional key exchange is expected");
    }
    let (Some(keys), Some(hs)) = (sa.keys.as_ref(), sa.hs.as_mut()) else {
        return;
    };
    hs.int_auth_i = Some(fold(
        keys.prf,
        &keys.sk_p_peer,
        &hs.int_auth_i,
        &adjusted(hdr, inner.0, &inner.1),
    ));
    let method = hs.addke[hs.addke_done];
    let Some(k) = ke_payload(payloads).filter(|k| k.group == method) else {
        return refuse(sa, cx, "KE payload missing or for another method");
    };
    let (data, shared) = match ke::respond(method, &k.data, cx.rng) {
        Ok(x) => x,
        Err(_) => return refuse(sa, cx, "key exchange data cannot be used"),
    };
    let out = vec![Payload::Ke(KePayload {
        group: method,
        data,
    })];
    let resp_hdr = super::header(sa, ExchangeType::IKE_INTERMEDIATE, hdr.message_id, true);
    let mut plain = Vec::new();
    let first = emit_payloads(&out, &mut plain);
    let (Some(keys), Some(hs)) = (sa.keys.as_ref(), sa.hs.as_mut()) else {
        return;
    };
    hs.int_auth_r = Some(fold(
        keys.prf,
        &keys.sk_p_own,
        &hs.int_auth_r,
        &adjusted(&resp_hdr, first, &plain),
    ));
    hs.addke_done += 1;
    // The answer is protected with the keys it was asked under; the new
    // keys apply from the next message on.
    send_response(
        sa,
        cx,
        ExchangeType::IKE_INTERMEDIATE,
        hdr.message_id,
        &dgram.data,
        out,
    );
    if let Err(e) = update_keys(sa, &shared) {
        close(sa, cx, DownReason::Failed(e));
    }
}
