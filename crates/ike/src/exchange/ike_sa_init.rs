//! IKE_SA_INIT (RFC 7296 §1.2): proposals, key exchange, nonces, NAT
//! detection; INVALID_KE_PAYLOAD and COOKIE retries on the initiator side.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use oxisec_crypto::ke;
use oxisec_wire::{
    ExchangeType, Flags, HeaderRepr, KePayload, Message, NotifyPayload, NotifyType, Payload,
    PayloadType, ProtocolId, SaPayload, TransformId,
};
use tracing::{debug, info, warn};

use super::{Cx, close, send_request};
use crate::api::{Datagram, DownReason, Transmit};
use crate::config::Connection;
use crate::keys::{self, Inputs, Seed};
use crate::nat;
use crate::proposal;
use crate::sa::{Active, Handshake, IkeSa, IkeState, PendingChild, Role};
use crate::window::RequestWindow;

/// Our nonce length: 32 bytes, at least half the key size of every PRF we
/// support (§2.10).
pub(crate) const NONCE_LEN: usize = 32;
/// Nonces from the peer must be 16..=256 bytes (§3.9).
const NONCE_MIN: usize = 16;
const NONCE_MAX: usize = 256;
/// How long a responder keeps a half-open SA waiting for IKE_AUTH.
pub(crate) const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the initiator follows a COOKIE request before giving up.
const MAX_COOKIE_RETRIES: u32 = 3;

fn ike_proposals_wire(conn: &Connection) -> Vec<oxisec_wire::Proposal> {
    conn.ike_proposals
        .iter()
        .enumerate()
        .map(|(i, p)| p.to_wire(i as u8 + 1, Vec::new()))
        .collect()
}

fn notify(ty: NotifyType, data: Vec<u8>) -> Payload {
    Payload::Notify(NotifyPayload::new(ty, data))
}

fn find_notify(payloads: &[Payload], ty: NotifyType) -> Option<&NotifyPayload> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.ty == ty => Some(n),
        _ => None,
    })
}

/// Picks the child that rides on IKE_AUTH: the named one, else the first with
/// `start_action = start`, else the first.
fn pending_child(cx: &mut Cx, conn: &Connection, child: Option<&str>) -> Option<PendingChild> {
    let cfg = match child {
        Some(name) => conn.children.iter().find(|c| c.name == name)?,
        None => conn
            .children
            .iter()
            .find(|c| c.start_action == crate::config::StartAction::Start)
            .or_else(|| conn.children.first())?,
    };
    Some(PendingChild {
        name: cfg.name.clone(),
        spi_in: cx.alloc.child_spi(cx.rng),
        local_ts: cfg.local_ts.clone(),
        remote_ts: cfg.remote_ts.clone(),
    })
}

/// Creates an initiator SA and sends the first IKE_SA_INIT request.
pub(crate) fn initiate(cx: &mut Cx, conn: Arc<Connection>, child: Option<&str>) -> Option<IkeSa> {
    let Some(&remote_ip) = conn.remote_addrs.first() else {
        warn!(connection = %conn.name, "cannot initiate: the connection has no remote address");
        return None;
    };
    if let Some(name) = child
        && !conn.children.iter().any(|c| c.name == name)
    {
        warn!(connection = %conn.name, child = name, "cannot initiate: no such child");
        return None;
    }
    let remote = SocketAddr::new(remote_ip, conn.remote_port);
    let local_ip = conn
        .local_addrs
        .iter()
        .copied()
        .find(|a| a.is_ipv4() == remote_ip.is_ipv4())
        .unwrap_or(if remote_ip.is_ipv4() {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        });
    let pending = pending_child(cx, &conn, child);
    let mut sa = IkeSa::new(
        cx.alloc.ike_id(),
        Role::Initiator,
        conn.clone(),
        cx.ike_spi(),
        0,
        SocketAddr::new(local_ip, 500),
        remote,
        cx.now,
    );
    sa.hs = Some(Handshake {
        ni: cx.random(NONCE_LEN),
        child: pending,
        ..Handshake::default()
    });

    info!(connection = %conn.name, peer = %remote, "initiating IKE SA");
    let group = conn.ike_proposals[0].first_ke();
    send_init_request(&mut sa, cx, group);
    (sa.state != IkeState::Closed).then_some(sa)
}

/// (Re)sends IKE_SA_INIT with a key share for `group`, echoing a cookie if we have one.
fn send_init_request(sa: &mut IkeSa, cx: &mut Cx, group: TransformId) {
    let share = match ke::generate(group, cx.rng) {
        Ok(s) => s,
        Err(e) => {
            close(
                sa,
                cx,
                DownReason::Failed(format!(
                    "cannot create a key share for group {}: {e}",
                    group.0
                )),
            );
            return;
        }
    };
    let Some(hs) = sa.hs.as_mut() else { return };
    let mut payloads = Vec::new();
    if let Some(cookie) = &hs.cookie {
        payloads.push(notify(NotifyType::COOKIE, cookie.clone()));
    }
    payloads.push(Payload::Sa(SaPayload {
        proposals: ike_proposals_wire(&sa.conn),
    }));
    payloads.push(Payload::Ke(KePayload {
        group,
        data: share.public_key().to_vec(),
    }));
    payloads.push(Payload::Nonce(hs.ni.clone()));
    payloads.extend(nat::notifies(
        sa.spi_i,
        0,
        sa.local,
        sa.remote,
        sa.conn.force_encap,
    ));
    if cx.config.fragmentation.enabled {
        payloads.push(notify(
            NotifyType::IKEV2_FRAGMENTATION_SUPPORTED,
            Vec::new(),
        ));
    }
    // RFC 7427: we verify and make digital signatures with these hashes.
    payloads.push(notify(NotifyType::SIGNATURE_HASH_ALGORITHMS, hash_list()));
    // RFC 9242: announced when we propose additional key exchanges.
    if sa.conn.ike_proposals.iter().any(|p| p.0.has_addke()) {
        payloads.push(notify(
            NotifyType::INTERMEDIATE_EXCHANGE_SUPPORTED,
            Vec::new(),
        ));
    }
    hs.ke = Some(share);
    // A new IKE_SA_INIT starts over at message ID 0 (§2.6, §1.2).
    sa.requests = RequestWindow::default();
    let bytes = Message {
        header: HeaderRepr {
            spi_i: sa.spi_i,
            spi_r: 0,
            next_payload: PayloadType::NONE,
            version: 0x20,
            exchange: ExchangeType::IKE_SA_INIT,
            flags: Flags(Flags::INITIATOR),
            message_id: 0,
            length: 0,
        },
        payloads: payloads.clone(),
    }
    .emit();
    hs.init_request = bytes;
    send_request(
        sa,
        cx,
        ExchangeType::IKE_SA_INIT,
        payloads,
        Active::IkeSaInit,
    );
}

/// Sends an unprotected error notify in response to an IKE_SA_INIT request
/// without creating any state.
/// Answers an unauthenticated request with an unprotected error notify
/// (IKE_SA_INIT refusals, INVALID_IKE_SPI for unknown SAs), keeping no state.
pub(crate) fn send_error(
    cx: &mut Cx,
    dgram: &Datagram,
    req: &HeaderRepr,
    ty: NotifyType,
    data: Vec<u8>,
) {
    // Answers to unauthenticated requests can be aimed at a third party by
    // spoofing: bounded, except the COOKIE answer that §2.6 relies on.
    if ty != NotifyType::COOKIE && !cx.error_budget.take(cx.now) {
        cx.stats.errors_suppressed += 1;
        return;
    }
    // The answer mirrors the request: same SPIs (SPIr is 0 in IKE_SA_INIT),
    // exchange and message ID, Response flag set, Initiator flag cleared
    // because the request came from the original initiator (§2.21.1, §2.21.4).
    let initiator = if req.flags.initiator() {
        0
    } else {
        Flags::INITIATOR
    };
    let msg = Message {
        header: HeaderRepr {
            spi_i: req.spi_i,
            spi_r: req.spi_r,
            next_payload: PayloadType::NONE,
            version: 0x20,
            exchange: req.exchange,
            flags: Flags(Flags::RESPONSE | initiator),
            message_id: req.message_id,
            length: 0,
        },
        payloads: vec![notify(ty, data)],
    };
    cx.out
        .transmits
        .push_back(Transmit::ike(dgram.local, dgram.remote, msg.emit()));
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

fn nonce(payloads: &[Payload]) -> Option<&[u8]> {
    payloads.iter().find_map(|p| {
        if let Payload::Nonce(n) = p {
            Some(n.as_slice())
        } else {
            None
        }
    })
}

fn sa_payload(payloads: &[Payload]) -> Option<&SaPayload> {
    payloads.iter().find_map(|p| {
        if let Payload::Sa(s) = p {
            Some(s)
        } else {
            None
        }
    })
}

/// Responder: answers an IKE_SA_INIT request, creating a half-open SA, or
/// answers with an error notify and keeps no state.
pub(crate) fn respond(
    cx: &mut Cx,
    dgram: &Datagram,
    msg: &Message,
    candidates: Vec<Arc<Connection>>,
) -> Option<IkeSa> {
    let req = &msg.header;
    let payloads = &msg.payloads;
    if let Err(v) = oxisec_wire::rules::check(ExchangeType::IKE_SA_INIT, false, payloads) {
        cx.stats.malformed += 1;
        debug!(peer = %dgram.remote, violation = ?v, "IKE_SA_INIT request breaks the payload rules");
        send_error(cx, dgram, req, NotifyType::INVALID_SYNTAX, Vec::new());
        return None;
    }
    let (Some(sa_p), Some(ke_p), Some(ni)) =
        (sa_payload(payloads), ke_payload(payloads), nonce(payloads))
    else {
        send_error(cx, dgram, req, NotifyType::INVALID_SYNTAX, Vec::new());
        return None;
    };
    if !(NONCE_MIN..=NONCE_MAX).contains(&ni.len()) {
        debug!(peer = %dgram.remote, len = ni.len(), "nonce length out of range");
        send_error(cx, dgram, req, NotifyType::INVALID_SYNTAX, Vec::new());
        return None;
    }
    if candidates.is_empty() {
        info!(peer = %dgram.remote, local = %dgram.local, "no connection configured for this peer: NO_PROPOSAL_CHOSEN");
        send_error(cx, dgram, req, NotifyType::NO_PROPOSAL_CHOSEN, Vec::new());
        return None;
    }
    let ours: Vec<_> = candidates
        .iter()
        .flat_map(|c| c.ike_proposals.iter().cloned())
        .collect();
    let Some(selected) = proposal::select_ike(&ours, &sa_p.proposals, ke_p.group) else {
        info!(peer = %dgram.remote, "no acceptable IKE proposal: NO_PROPOSAL_CHOSEN");
        send_error(cx, dgram, req, NotifyType::NO_PROPOSAL_CHOSEN, Vec::new());
        return None;
    };
    let group = selected.ke.map(|a| a.id)?;
    let intermediate = find_notify(payloads, NotifyType::INTERMEDIATE_EXCHANGE_SUPPORTED).is_some();
    if !selected.pending_addke().is_empty() && !intermediate {
        // RFC 9370 §2.2.1: additional key exchanges need IKE_INTERMEDIATE.
        info!(peer = %dgram.remote, "additional key exchange proposed without INTERMEDIATE_EXCHANGE_SUPPORTED: NO_PROPOSAL_CHOSEN");
        send_error(cx, dgram, req, NotifyType::NO_PROPOSAL_CHOSEN, Vec::new());
        return None;
    }
    if group != ke_p.group {
        debug!(peer = %dgram.remote, offered = ke_p.group.0, wanted = group.0, "asking for another key exchange method");
        send_error(
            cx,
            dgram,
            req,
            NotifyType::INVALID_KE_PAYLOAD,
            group.0.to_be_bytes().to_vec(),
        );
        return None;
    }
    // Our share and g^ir at once: a Diffie-Hellman share, or for a KEM the
    // ciphertext of an encapsulation to the initiator's key.
    let (our_ke, g_ir) = match ke::respond(group, &ke_p.data, cx.rng) {
        Ok(x) => x,
        Err(oxisec_crypto::CryptoError::Unsupported(e)) => {
            warn!(error = %e, "cannot create a key share");
            send_error(cx, dgram, req, NotifyType::NO_PROPOSAL_CHOSEN, Vec::new());
            return None;
        }
        Err(e) => {
            debug!(peer = %dgram.remote, error = %e, "invalid key exchange value");
            send_error(cx, dgram, req, NotifyType::INVALID_SYNTAX, Vec::new());
            return None;
        }
    };
    let spi_r = cx.ike_spi();
    let nr = cx.random(NONCE_LEN);
    let keys = match keys::derive(
        &selected,
        Role::Responder,
        Seed::Initial {
            g_ir: g_ir.as_bytes(),
        },
        Inputs {
            ni,
            nr: &nr,
            spi_i: req.spi_i,
            spi_r,
        },
    ) {
        Ok(k) => k,
        Err(e) => {
            warn!(error = %e, "cannot derive IKE SA keys");
            send_error(cx, dgram, req, NotifyType::NO_PROPOSAL_CHOSEN, Vec::new());
            return None;
        }
    };
    let nat_result = nat::evaluate(payloads, req.spi_i, 0, dgram.local, dgram.remote);
    let conn = candidates[0].clone();
    let mut sa = IkeSa::new(
        cx.alloc.ike_id(),
        Role::Responder,
        conn,
        req.spi_i,
        spi_r,
        dgram.local,
        dgram.remote,
        cx.now,
    );
    sa.candidates = candidates;
    sa.keys = Some(keys);
    sa.selected = Some(selected.clone());
    sa.nat_remote = nat_result.remote_behind;
    sa.nat_local = nat_result.local_behind;
    sa.half_open_deadline = Some(cx.now + HALF_OPEN_TIMEOUT);

    let mut out = vec![
        Payload::Sa(SaPayload {
            proposals: vec![selected.to_wire(ProtocolId::IKE, Vec::new())],
        }),
        Payload::Ke(KePayload {
            group,
            data: our_ke,
        }),
        Payload::Nonce(nr.clone()),
    ];
    if nat_result.supported {
        // Any candidate forcing encapsulation makes us announce a fake source.
        let fake = sa.candidates.iter().any(|c| c.force_encap);
        out.extend(nat::notifies(
            sa.spi_i,
            spi_r,
            dgram.local,
            dgram.remote,
            fake,
        ));
    }
    if intermediate {
        out.push(notify(
            NotifyType::INTERMEDIATE_EXCHANGE_SUPPORTED,
            Vec::new(),
        ));
    }
    let peer_hashes = hashes_of(payloads);
    if !peer_hashes.is_empty() {
        out.push(notify(NotifyType::SIGNATURE_HASH_ALGORITHMS, hash_list()));
    }
    // Ask for the initiator's certificate when a connection it may use
    // authenticates peers by certificate (RFC 7296 §3.7).
    out.extend(
        sa.candidates
            .iter()
            .find_map(|c| super::ike_auth::certreq(&c.remote_auth)),
    );
    // RFC 7383 §2.3: offered by the initiator, confirmed in the response.
    if cx.config.fragmentation.enabled
        && find_notify(payloads, NotifyType::IKEV2_FRAGMENTATION_SUPPORTED).is_some()
    {
        out.push(notify(
            NotifyType::IKEV2_FRAGMENTATION_SUPPORTED,
            Vec::new(),
        ));
        sa.fragmentation = true;
    }
    let header = HeaderRepr {
        spi_i: sa.spi_i,
        spi_r,
        next_payload: PayloadType::NONE,
        version: 0x20,
        exchange: ExchangeType::IKE_SA_INIT,
        flags: Flags(Flags::RESPONSE),
        message_id: 0,
        length: 0,
    };
    let response = Message {
        header,
        payloads: out,
    }
    .emit();
    cx.out
        .transmits
        .push_back(Transmit::ike(dgram.local, dgram.remote, response.clone()));
    sa.responses
        .answered(0, &dgram.data, vec![response.clone()]);
    sa.hs = Some(Handshake {
        ni: ni.to_vec(),
        nr,
        init_request: dgram.data.clone(),
        init_response: response,
        addke: selected.pending_addke(),
        peer_hashes,
        ..Handshake::default()
    });
    debug!(peer = %dgram.remote, algorithms = %selected.describe(), nat_remote = sa.nat_remote, nat_local = sa.nat_local, "answered IKE_SA_INIT");
    Some(sa)
}

/// Initiator: handles the IKE_SA_INIT response, then starts IKE_AUTH.
pub(crate) fn handle_response(
    sa: &mut IkeSa,
    cx: &mut Cx,
    dgram: &Datagram,
    hdr: &HeaderRepr,
    msg: &Message,
) {
    let payloads = &msg.payloads;
    if let Some(c) = find_notify(payloads, NotifyType::COOKIE) {
        let Some(hs) = sa.hs.as_mut() else { return };
        if hs.cookie_retries >= MAX_COOKIE_RETRIES || c.data.is_empty() || c.data.len() > 64 {
            close(
                sa,
                cx,
                DownReason::Failed("peer keeps asking for cookies".into()),
            );
            return;
        }
        hs.cookie_retries += 1;
        hs.cookie = Some(c.data.clone());
        let group = hs
            .ke
            .as_ref()
            .map(|k| k.group())
            .unwrap_or_else(|| sa.conn.ike_proposals[0].first_ke());
        debug!(peer = %dgram.remote, "responder asked for a cookie; retrying");
        send_init_request(sa, cx, group);
        return;
    }
    if let Some(n) = find_notify(payloads, NotifyType::INVALID_KE_PAYLOAD) {
        let wanted = n
            .data
            .get(..2)
            .map(|b| TransformId(u16::from_be_bytes([b[0], b[1]])));
        let Some(hs) = sa.hs.as_mut() else { return };
        let acceptable = wanted.filter(|g| {
            sa.conn
                .ike_proposals
                .iter()
                .any(|p| p.0.ke.iter().any(|a| a.id == *g))
                && !hs.tried_groups.contains(g)
        });
        let Some(group) = acceptable else {
            close(
                sa,
                cx,
                DownReason::Failed("peer asked for a key exchange method we do not offer".into()),
            );
            return;
        };
        if let Some(k) = hs.ke.as_ref() {
            hs.tried_groups.push(k.group());
        }
        hs.tried_groups.push(group);
        info!(connection = %sa.conn.name, group = group.0, "peer asked for another key exchange method; retrying");
        send_init_request(sa, cx, group);
        return;
    }
    if let Some(err) = crate::engine::error_notify(payloads) {
        warn!(connection = %sa.conn.name, peer = %dgram.remote, notify = %err, "IKE_SA_INIT refused by peer");
        close(sa, cx, DownReason::Failed(format!("peer answered {err}")));
        return;
    }
    if hdr.spi_r == 0 {
        debug!(peer = %dgram.remote, "IKE_SA_INIT response without responder SPI");
        close(
            sa,
            cx,
            DownReason::Failed("invalid IKE_SA_INIT response".into()),
        );
        return;
    }
    let ours: Vec<_> = sa.conn.ike_proposals.iter().map(|p| p.0.clone()).collect();
    let selected = sa_payload(payloads)
        .and_then(|s| proposal::accept_response(&ours, &s.proposals, ProtocolId::IKE, false));
    let (Some(selected), Some(ke_p), Some(nr)) = (selected, ke_payload(payloads), nonce(payloads))
    else {
        close(
            sa,
            cx,
            DownReason::Failed("IKE_SA_INIT response with an unacceptable proposal".into()),
        );
        return;
    };
    let Some(hs) = sa.hs.as_mut() else { return };
    let Some(share) = hs.ke.take() else { return };
    if selected.ke.map(|a| a.id) != Some(share.group()) || ke_p.group != share.group() {
        close(
            sa,
            cx,
            DownReason::Failed("IKE_SA_INIT response with a different key exchange method".into()),
        );
        return;
    }
    if !(NONCE_MIN..=NONCE_MAX).contains(&nr.len()) {
        close(
            sa,
            cx,
            DownReason::Failed("IKE_SA_INIT response with an invalid nonce".into()),
        );
        return;
    }
    let g_ir = match share.shared_secret(&ke_p.data) {
        Ok(s) => s,
        Err(e) => {
            close(
                sa,
                cx,
                DownReason::Failed(format!("invalid key exchange value from peer: {e}")),
            );
            return;
        }
    };
    sa.spi_r = hdr.spi_r;
    hs.nr = nr.to_vec();
    hs.init_response = dgram.data.clone();
    let keys = match keys::derive(
        &selected,
        Role::Initiator,
        Seed::Initial {
            g_ir: g_ir.as_bytes(),
        },
        Inputs {
            ni: &hs.ni,
            nr: &hs.nr,
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
        },
    ) {
        Ok(k) => k,
        Err(e) => {
            close(
                sa,
                cx,
                DownReason::Failed(format!("cannot derive keys: {e}")),
            );
            return;
        }
    };
    sa.keys = Some(keys);
    // Our own address as the kernel chose it, for the NAT detection below.
    sa.local = dgram.local;
    let nat_result = nat::evaluate(payloads, sa.spi_i, sa.spi_r, dgram.local, dgram.remote);
    sa.nat_remote = nat_result.remote_behind;
    sa.fragmentation = cx.config.fragmentation.enabled
        && find_notify(payloads, NotifyType::IKEV2_FRAGMENTATION_SUPPORTED).is_some();
    sa.nat_local = nat_result.local_behind;
    debug!(connection = %sa.conn.name, algorithms = %selected.describe(), nat_remote = sa.nat_remote, nat_local = sa.nat_local, "IKE_SA_INIT done");
    let addke = selected.pending_addke();
    if !addke.is_empty()
        && find_notify(payloads, NotifyType::INTERMEDIATE_EXCHANGE_SUPPORTED).is_none()
    {
        let why = "peer chose additional key exchanges without IKE_INTERMEDIATE";
        close(sa, cx, DownReason::Failed(why.into()));
        return;
    }
    if let Some(hs) = sa.hs.as_mut() {
        hs.addke = addke;
        hs.peer_hashes = hashes_of(payloads);
        hs.peer_certreq = payloads.iter().any(|p| matches!(p, Payload::CertReq(_)));
    }
    sa.selected = Some(selected);
    // Float to port 4500 when a NAT is in the path or encapsulation is forced (§2.23).
    if nat_result.supported
        && (sa.nat_local || sa.nat_remote || sa.conn.force_encap)
        && sa.remote.port() == 500
    {
        sa.local.set_port(4500);
        sa.remote.set_port(4500);
    }
    if !super::ike_intermediate::start_next(sa, cx) {
        super::ike_auth::start(sa, cx);
    }
}

/// Our SIGNATURE_HASH_ALGORITHMS notify data.
fn hash_list() -> Vec<u8> {
    crate::auth::OUR_HASHES
        .iter()
        .flat_map(|h| h.to_be_bytes())
        .collect()
}

/// The hash algorithms a peer announced (RFC 7427 §4).
fn hashes_of(payloads: &[Payload]) -> Vec<u16> {
    find_notify(payloads, NotifyType::SIGNATURE_HASH_ALGORITHMS)
        .map(|n| {
            n.data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .take(16)
                .collect()
        })
        .unwrap_or_default()
}
