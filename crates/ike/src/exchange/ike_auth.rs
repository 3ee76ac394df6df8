//! IKE_AUTH (RFC 7296 §1.2, §2.15): identities, authentication with a
//! pre-shared key or a certificate (RFC 7427 signatures, CERT/CERTREQ), and
//! the first CHILD_SA with traffic selector narrowing (§2.9).
use std::sync::Arc;

use oxisec_pki::{Certificate, PublicKey};
use oxisec_wire::{
    AuthPayload, CertEncoding, CertPayload, ExchangeType, IdPayload, NotifyPayload, NotifyType,
    Payload, ProtocolId, SaPayload, TsPayload,
};
use tracing::{info, warn};

use super::{Cx, close, send_request, send_response};
use crate::api::{Datagram, DownReason, Event};
use crate::auth;
use crate::child::{self, Negotiated};
use crate::config::{Auth, Connection, SendCert};
use crate::identity::Identity;
use crate::proposal::{self, ProposalSpec, Selected};
use crate::sa::{Active, IkeSa, IkeState, PendingChild};
use crate::ts::{self, TsRange};

fn notify(ty: NotifyType) -> Payload {
    Payload::Notify(NotifyPayload::new(ty, Vec::new()))
}

struct Parts<'a> {
    idi: Option<&'a IdPayload>,
    idr: Option<&'a IdPayload>,
    auth: Option<&'a AuthPayload>,
    sa: Option<&'a SaPayload>,
    tsi: Option<&'a TsPayload>,
    tsr: Option<&'a TsPayload>,
    certs: Vec<&'a CertPayload>,
    certreq: bool,
    cp: Option<&'a oxisec_wire::CpPayload>,
}

fn parts(payloads: &[Payload]) -> Parts<'_> {
    let mut p = Parts {
        idi: None,
        idr: None,
        auth: None,
        sa: None,
        tsi: None,
        tsr: None,
        certs: Vec::new(),
        certreq: false,
        cp: None,
    };
    for pl in payloads {
        match pl {
            Payload::IdI(x) => p.idi = Some(x),
            Payload::IdR(x) => p.idr = Some(x),
            Payload::Auth(x) => p.auth = Some(x),
            Payload::Sa(x) => p.sa = Some(x),
            Payload::TsI(x) => p.tsi = Some(x),
            Payload::TsR(x) => p.tsr = Some(x),
            Payload::Cert(c) => p.certs.push(c),
            Payload::CertReq(_) => p.certreq = true,
            Payload::Cp(c) => p.cp = Some(c),
            _ => {}
        }
    }
    p
}

/// Selectors from a TS payload; `None` if any is of an unsupported type.
fn ranges(p: &TsPayload) -> Option<Vec<TsRange>> {
    p.selectors.iter().map(TsRange::from_wire).collect()
}

fn ts_payload(r: &[TsRange]) -> TsPayload {
    TsPayload {
        selectors: r.iter().map(|t| t.to_wire()).collect(),
    }
}

fn specs(conn: &Connection, child: &str) -> Vec<ProposalSpec> {
    conn.children
        .iter()
        .find(|c| c.name == child)
        .map(|c| c.esp_proposals.iter().map(|p| p.0.clone()).collect())
        .unwrap_or_default()
}

/// The CERT payloads we send with our AUTH: the chain (end entity first)
/// if we authenticate with a certificate and the policy says so.
fn our_certs(auth: &Auth, peer_asked: bool) -> Vec<Payload> {
    let Auth::Cert(c) = auth else {
        return Vec::new();
    };
    let send = match c.send {
        SendCert::Always => true,
        SendCert::IfAsked => peer_asked,
        SendCert::Never => false,
    };
    if !send {
        return Vec::new();
    }
    c.chain
        .iter()
        .map(|cert| {
            Payload::Cert(CertPayload {
                encoding: CertEncoding::X509_SIGNATURE,
                data: cert.der().to_vec(),
            })
        })
        .collect()
}

/// CERTREQ naming the CAs we trust (SHA-1 of their keys), when we expect
/// the peer to authenticate with a certificate.
pub(crate) fn certreq(auth: &Auth) -> Option<Payload> {
    let Auth::PeerCert(trust) = auth else {
        return None;
    };
    let data: Vec<u8> = trust.ca_hashes().concat();
    Some(Payload::CertReq(CertPayload {
        encoding: CertEncoding::X509_SIGNATURE,
        data,
    }))
}

/// The peer's validated public key when `expected` asks for a certificate:
/// the CERT payloads must form a chain to our trust anchors that holds the
/// claimed identity. `Ok(None)` for pre-shared keys.
fn peer_key(
    expected: &Auth,
    certs: &[&CertPayload],
    claimed: &Identity,
    cx: &Cx,
) -> Result<Option<PublicKey>, String> {
    let Auth::PeerCert(trust) = expected else {
        return Ok(None);
    };
    let chain: Vec<Certificate> = certs
        .iter()
        .filter(|c| c.encoding == CertEncoding::X509_SIGNATURE)
        .take(8)
        .map(|c| Certificate::from_der(&c.data))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate of {claimed}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("{claimed} sent no certificate"));
    }
    let now = cx
        .wall
        .ok_or("no wall-clock time to check certificates against")?;
    let peer = trust
        .validate(&chain, now, &claimed.claim())
        .map_err(|e| format!("certificate of {claimed}: {e}"))?;
    info!(peer = %claimed, subject = %peer.subject, "peer certificate valid");
    Ok(Some(peer.key))
}

/// Initiator: sends IDi, [CERT], [CERTREQ], [IDr], AUTH and the first
/// child's SA and selectors.
pub(crate) fn start(sa: &mut IkeSa, cx: &mut Cx) {
    let mid = sa.requests.next_id;
    let vips = sa.conn.remote_access.request_vips.clone();
    let dynamic = child::Dynamic::requesting(sa, &vips);
    if let Some(hs) = sa.hs.as_mut() {
        hs.auth_mid = mid;
        if let Some(pending) = hs.child.as_mut() {
            pending.local_ts = child::resolve(&pending.local_ts, &dynamic.local);
            pending.remote_ts = child::resolve(&pending.remote_ts, &dynamic.remote);
        }
    }
    let ia = super::ike_intermediate::int_auth(sa, mid);
    let (Some(hs), Some(keys)) = (sa.hs.as_ref(), sa.keys.as_ref()) else {
        return;
    };
    let conn = sa.conn.clone();
    let idi = conn.local_id.to_wire();
    let octets = auth::signed_octets(
        keys.prf,
        &hs.init_request,
        &hs.nr,
        keys.sk_p_own.as_bytes(),
        &idi.body_bytes(),
        &ia,
    );
    let auth_p = match auth::make(&conn.local_auth, keys.prf, &octets, &hs.peer_hashes) {
        Ok(a) => a,
        Err(e) => {
            warn!(connection = %conn.name, "cannot authenticate: {e}");
            close(sa, cx, DownReason::Failed(e));
            return;
        }
    };
    let mut payloads = vec![Payload::IdI(idi)];
    payloads.extend(our_certs(&conn.local_auth, hs.peer_certreq));
    payloads.extend(certreq(&conn.remote_auth));
    if let Some(rid) = &conn.remote_id {
        payloads.push(Payload::IdR(rid.to_wire()));
    }
    payloads.push(Payload::Auth(auth_p));
    if !vips.is_empty() {
        payloads.push(Payload::Cp(
            crate::cp::Request::for_vips(&vips).to_payload(),
        ));
    }
    if hs.initial_contact {
        payloads.push(notify(NotifyType::INITIAL_CONTACT));
    }
    if let Some(pending) = &hs.child
        && let Some(cfg) = conn.children.iter().find(|c| c.name == pending.name)
    {
        let proposals = cfg
            .esp_proposals
            .iter()
            .enumerate()
            .map(|(i, p)| p.to_wire(i as u8 + 1, pending.spi_in, false))
            .collect();
        payloads.push(Payload::Sa(SaPayload { proposals }));
        payloads.push(Payload::TsI(ts_payload(&pending.local_ts)));
        payloads.push(Payload::TsR(ts_payload(&pending.remote_ts)));
    }
    send_request(sa, cx, ExchangeType::IKE_AUTH, payloads, Active::IkeAuth);
}

/// Sends a one-shot protected INFORMATIONAL carrying a notify (e.g.
/// AUTHENTICATION_FAILED after we rejected the responder) without waiting for
/// its answer: the SA is being closed anyway.
fn send_notify_and_forget(sa: &mut IkeSa, cx: &mut Cx, ty: NotifyType) {
    send_request(
        sa,
        cx,
        ExchangeType::INFORMATIONAL,
        vec![notify(ty)],
        Active::Inform,
    );
}

fn auth_failed(sa: &mut IkeSa, cx: &mut Cx, connection: Option<String>, reason: String) {
    warn!(peer = %sa.remote, connection = connection.as_deref().unwrap_or("-"), "authentication failed: {reason}");
    cx.event(Event::AuthFailed {
        connection,
        remote: sa.remote,
        reason,
    });
}

/// Responder: authenticates the initiator, picks the connection and child,
/// installs the CHILD_SA and answers.
pub(crate) fn respond(
    sa: &mut IkeSa,
    cx: &mut Cx,
    dgram: &Datagram,
    hdr: &oxisec_wire::HeaderRepr,
    payloads: Vec<Payload>,
) -> Option<super::Spawn> {
    let initial_contact = payloads
        .iter()
        .any(|p| matches!(p, Payload::Notify(n) if n.ty == NotifyType::INITIAL_CONTACT));
    authenticate_and_answer(sa, cx, dgram, hdr, payloads);
    let peer = sa
        .peer_id
        .clone()
        .filter(|_| initial_contact && sa.state == IkeState::Established)?;
    Some(super::Spawn {
        initial_contact: Some((sa.id, peer)),
        ..super::Spawn::default()
    })
}

fn authenticate_and_answer(
    sa: &mut IkeSa,
    cx: &mut Cx,
    dgram: &Datagram,
    hdr: &oxisec_wire::HeaderRepr,
    payloads: Vec<Payload>,
) {
    let ia = super::ike_intermediate::int_auth(sa, hdr.message_id);
    let p = parts(&payloads);
    let reject = |sa: &mut IkeSa, cx: &mut Cx, conn: Option<String>, reason: String| {
        auth_failed(sa, cx, conn, reason);
        let n = vec![notify(NotifyType::AUTHENTICATION_FAILED)];
        send_response(
            sa,
            cx,
            ExchangeType::IKE_AUTH,
            hdr.message_id,
            &dgram.data,
            n,
        );
        close(sa, cx, DownReason::AuthFailed);
    };
    let (Some(idi_p), Some(auth_p)) = (p.idi, p.auth) else {
        reject(
            sa,
            cx,
            None,
            "IKE_AUTH without IDi and AUTH (EAP is not supported yet)".into(),
        );
        return;
    };
    let Some(idi) = Identity::from_wire(idi_p) else {
        reject(
            sa,
            cx,
            None,
            format!("unsupported identity type {} from peer", idi_p.id_type),
        );
        return;
    };
    if let Some(hs) = sa.hs.as_mut() {
        hs.peer_certreq = p.certreq;
    }
    let idr = p.idr.map(Identity::from_wire);
    let (Some(hs), Some(keys)) = (sa.hs.as_ref(), sa.keys.as_ref()) else {
        return;
    };
    let octets = auth::signed_octets(
        keys.prf,
        &hs.init_request,
        &hs.nr,
        keys.sk_p_peer.as_bytes(),
        &idi_p.body_bytes(),
        &ia,
    );
    let mut reason = format!("no connection accepts identity {idi}");
    let mut chosen: Option<Arc<Connection>> = None;
    for conn in &sa.candidates {
        if conn.remote_id.as_ref().is_some_and(|r| !r.matches(&idi)) {
            continue;
        }
        match &idr {
            Some(Some(want)) if !conn.local_id.matches(want) => {
                reason = format!(
                    "peer {idi} asked for identity {want}, we are {}",
                    conn.local_id
                );
                continue;
            }
            Some(None) => {
                reason = format!("peer {idi} asked for an identity of an unsupported type");
                continue;
            }
            _ => {}
        }
        let checked = peer_key(&conn.remote_auth, &p.certs, &idi, cx).and_then(|key| {
            auth::check(&conn.remote_auth, keys.prf, &octets, auth_p, key.as_ref())
        });
        match checked {
            Ok(()) => {
                chosen = Some(conn.clone());
                break;
            }
            Err(e) => reason = format!("{idi} on connection {}: {e}", conn.name),
        }
    }
    let Some(conn) = chosen else {
        let name = sa.candidates.first().map(|c| c.name.clone());
        reject(sa, cx, name, reason);
        return;
    };
    let (ni, nr) = (hs.ni.clone(), hs.nr.clone());
    let idr_own = conn.local_id.to_wire();
    let octets_r = auth::signed_octets(
        keys.prf,
        &hs.init_response,
        &hs.ni,
        keys.sk_p_own.as_bytes(),
        &idr_own.body_bytes(),
        &ia,
    );
    let our_auth = match auth::make(&conn.local_auth, keys.prf, &octets_r, &hs.peer_hashes) {
        Ok(a) => a,
        Err(e) => {
            warn!(connection = %conn.name, "cannot authenticate ourselves: {e}");
            reject(
                sa,
                cx,
                Some(conn.name.clone()),
                format!("we cannot authenticate: {e}"),
            );
            return;
        }
    };
    let mut out = vec![Payload::IdR(idr_own)];
    out.extend(our_certs(&conn.local_auth, hs.peer_certreq));
    out.push(Payload::Auth(our_auth));
    sa.conn = conn.clone();
    sa.peer_id = Some(idi.clone());
    sa.state = IkeState::Established;
    sa.established = Some(cx.now);
    sa.half_open_deadline = None;
    super::lifecycle::on_established(sa, cx);
    info!(connection = %conn.name, peer = %sa.describe_peer(), algorithms = %sa.selected.as_ref().map(|s| s.describe()).unwrap_or_default(), "IKE SA established");
    cx.event(Event::IkeUp {
        ike: sa.id,
        connection: conn.name.clone(),
        remote: sa.remote,
    });
    let mut no_address = false;
    let request = p.cp.and_then(crate::cp::Request::parse);
    if let Some(req) = request.filter(|r| !r.is_empty())
        && !conn.remote_access.pools.is_empty()
    {
        match assign_vips(sa, cx, &conn, &req) {
            Some(reply) => out.push(Payload::Cp(reply.to_payload())),
            None => {
                // RFC 7296 §3.15.4: the IKE SA stands, without a CHILD_SA.
                out.push(notify(NotifyType::INTERNAL_ADDRESS_FAILURE));
                no_address = true;
            }
        }
    }
    if let (Some(sa_p), Some(tsi_p), Some(tsr_p), false) = (p.sa, p.tsi, p.tsr, no_address) {
        out.extend(respond_child(sa, cx, &conn, sa_p, tsi_p, tsr_p, &ni, &nr));
    }
    send_response(
        sa,
        cx,
        ExchangeType::IKE_AUTH,
        hdr.message_id,
        &dgram.data,
        out,
    );
    sa.hs = None;
}

/// Gateway: addresses for the client from the connection's pools (one per
/// family it asks for and we have a pool of) and the reply that carries
/// them with DNS, domains and split-tunnel subnets. `None` if no address
/// could be assigned.
fn assign_vips(
    sa: &mut IkeSa,
    cx: &mut Cx,
    conn: &Connection,
    req: &crate::cp::Request,
) -> Option<crate::cp::Reply> {
    let identity = sa
        .peer_id
        .as_ref()
        .map(|i| i.to_string())
        .unwrap_or_default();
    let ra = &conn.remote_access;
    let wanted = [
        req.v4.map(|a| (true, a.map(std::net::IpAddr::V4))),
        req.v6.map(|a| (false, a.map(std::net::IpAddr::V6))),
    ];
    for (v4, hint) in wanted.into_iter().flatten() {
        match cx
            .alloc
            .pools
            .acquire(&ra.pools, v4, &identity, sa.id, hint)
        {
            Ok((pool, address)) => {
                info!(connection = %conn.name, peer = %identity, %address, pool = %pool, "assigned virtual IP");
                cx.event(Event::LeaseChanged {
                    pool: pool.clone(),
                    identity: identity.clone(),
                    address,
                    online: true,
                });
                sa.peer_vips.push((pool, address));
            }
            Err(_) => {
                let family = if v4 { "IPv4" } else { "IPv6" };
                warn!(connection = %conn.name, peer = %identity, "no {family} virtual IP for the client: pools {:?} are full or have none of that family", ra.pools);
            }
        }
    }
    if sa.peer_vips.is_empty() {
        return None;
    }
    Some(crate::cp::Reply {
        addresses: sa.peer_vips.iter().map(|(_, a)| *a).collect(),
        dns: ra.dns.clone(),
        domains: ra.dns_domains.clone(),
        subnets: ra.subnets.clone(),
    })
}

/// Picks a child config whose selectors and proposals fit the request,
/// installs the CHILD_SA and returns the payloads for the response (or the
/// error notify; the IKE SA stays up either way, §2.21.3).
#[allow(clippy::too_many_arguments)]
fn respond_child(
    sa: &mut IkeSa,
    cx: &mut Cx,
    conn: &Connection,
    sa_p: &SaPayload,
    tsi_p: &TsPayload,
    tsr_p: &TsPayload,
    ni: &[u8],
    nr: &[u8],
) -> Vec<Payload> {
    let (Some(tsi), Some(tsr)) = (ranges(tsi_p), ranges(tsr_p)) else {
        return vec![notify(NotifyType::TS_UNACCEPTABLE)];
    };
    let dynamic = child::Dynamic::of(sa);
    let c = match child::choose(conn, None, &sa_p.proposals, &tsi, &tsr, true, &dynamic) {
        Ok(c) => c,
        Err(n) => {
            info!(connection = %conn.name, notify = %n, "no CHILD_SA for the peer's request");
            return vec![notify(n)];
        }
    };
    let spi_in = cx.alloc.child_spi(cx.rng);
    let id = cx.alloc.child_id();
    let n = Negotiated {
        additional: &[],
        initiator: false,
        g_ir: None,
        ni,
        nr,
        defer_outbound: false,
        id,
        name: c.name.clone(),
        selected: c.selected.clone(),
        spi_in,
        spi_out: c.spi_out,
        local_ts: c.local_ts.clone(),
        remote_ts: c.remote_ts.clone(),
    };
    if let Err(e) = child::install(sa, cx, n) {
        warn!(child = %c.name, error = %e, "cannot install CHILD_SA");
        cx.alloc.child_spis.remove(&spi_in);
        return vec![notify(NotifyType::NO_PROPOSAL_CHOSEN)];
    }
    child::log_up(
        &c.name,
        spi_in,
        c.spi_out,
        &c.local_ts,
        &c.remote_ts,
        &c.selected,
        false,
    );
    cx.event(Event::ChildUp {
        ike: sa.id,
        child: id,
        name: c.name.clone(),
        spi_in,
        spi_out: c.spi_out,
    });
    vec![
        Payload::Sa(SaPayload {
            proposals: vec![
                c.selected
                    .to_wire(ProtocolId::ESP, spi_in.to_be_bytes().to_vec()),
            ],
        }),
        Payload::TsI(ts_payload(&c.remote_ts)),
        Payload::TsR(ts_payload(&c.local_ts)),
    ]
}

/// Initiator: verifies the responder and installs the first CHILD_SA.
pub(crate) fn handle_response(sa: &mut IkeSa, cx: &mut Cx, payloads: Vec<Payload>) {
    let mid = sa.hs.as_ref().map(|h| h.auth_mid).unwrap_or_default();
    let ia = super::ike_intermediate::int_auth(sa, mid);
    let p = parts(&payloads);
    let conn = sa.conn.clone();
    let err = crate::engine::error_notify(&payloads);
    if err == Some(NotifyType::AUTHENTICATION_FAILED) {
        let why = format!(
            "peer {} rejected our authentication (AUTHENTICATION_FAILED)",
            sa.remote
        );
        auth_failed(sa, cx, Some(conn.name.clone()), why);
        close(sa, cx, DownReason::AuthFailed);
        return;
    }
    let (Some(idr_p), Some(auth_p)) = (p.idr, p.auth) else {
        let why = err
            .map(|e| format!("peer answered {e}"))
            .unwrap_or_else(|| "IKE_AUTH response without IDr and AUTH".into());
        warn!(connection = %conn.name, peer = %sa.remote, "IKE_AUTH failed: {why}");
        close(sa, cx, DownReason::Failed(why));
        return;
    };
    let reject = |sa: &mut IkeSa, cx: &mut Cx, reason: String| {
        auth_failed(sa, cx, Some(conn.name.clone()), reason);
        send_notify_and_forget(sa, cx, NotifyType::AUTHENTICATION_FAILED);
        close(sa, cx, DownReason::AuthFailed);
    };
    let Some(idr) = Identity::from_wire(idr_p) else {
        reject(
            sa,
            cx,
            format!(
                "responder sent an identity of unsupported type {}",
                idr_p.id_type
            ),
        );
        return;
    };
    if let Some(want) = &conn.remote_id
        && !want.matches(&idr)
    {
        reject(
            sa,
            cx,
            format!("responder identified as {idr}, expected {want}"),
        );
        return;
    }
    let (Some(hs), Some(keys)) = (sa.hs.as_ref(), sa.keys.as_ref()) else {
        return;
    };
    let octets = auth::signed_octets(
        keys.prf,
        &hs.init_response,
        &hs.ni,
        keys.sk_p_peer.as_bytes(),
        &idr_p.body_bytes(),
        &ia,
    );
    let checked = peer_key(&conn.remote_auth, &p.certs, &idr, cx)
        .and_then(|key| auth::check(&conn.remote_auth, keys.prf, &octets, auth_p, key.as_ref()));
    if let Err(e) = checked {
        reject(sa, cx, format!("responder {idr}: {e}"));
        return;
    }
    let (ni, nr, pending) = (hs.ni.clone(), hs.nr.clone(), hs.child.clone());
    if !conn.remote_access.request_vips.is_empty() {
        let reply =
            p.cp.and_then(crate::cp::Reply::parse)
                .filter(|r| !r.addresses.is_empty());
        let Some(reply) = reply else {
            let why = match err {
                Some(e) => format!("the gateway assigned no virtual IP ({e})"),
                None => "the gateway assigned no virtual IP".to_string(),
            };
            warn!(connection = %conn.name, peer = %sa.remote, "{why}");
            if let Some(pending) = &pending {
                cx.alloc.child_spis.remove(&pending.spi_in);
            }
            // The IKE SA is authenticated: tell the peer it goes (best
            // effort), and give up on it.
            sa.peer_id = Some(idr);
            let d = oxisec_wire::DeletePayload {
                protocol: ProtocolId::IKE,
                spi_size: 0,
                spis: Vec::new(),
            };
            send_request(
                sa,
                cx,
                ExchangeType::INFORMATIONAL,
                vec![Payload::Delete(d)],
                Active::Inform,
            );
            close(sa, cx, DownReason::Failed(why));
            return;
        };
        info!(connection = %conn.name, addresses = ?reply.addresses, dns = ?reply.dns, domains = ?reply.domains, "virtual IP assigned by the gateway");
        sa.own_vips = reply.addresses.clone();
        cx.event(Event::VirtualIp {
            ike: sa.id,
            connection: conn.name.clone(),
            addresses: reply.addresses,
            dns: reply.dns,
            domains: reply.domains,
            subnets: reply.subnets,
        });
    }
    sa.peer_id = Some(idr);
    sa.state = IkeState::Established;
    sa.established = Some(cx.now);
    super::lifecycle::on_established(sa, cx);
    info!(connection = %conn.name, peer = %sa.describe_peer(), algorithms = %sa.selected.as_ref().map(|s| s.describe()).unwrap_or_default(), "IKE SA established");
    cx.event(Event::IkeUp {
        ike: sa.id,
        connection: conn.name.clone(),
        remote: sa.remote,
    });
    if let Some(pending) = pending {
        finish_child(sa, cx, &conn, &p, pending, err, &ni, &nr);
    }
    sa.hs = None;
}

#[allow(clippy::too_many_arguments)]
fn finish_child(
    sa: &mut IkeSa,
    cx: &mut Cx,
    conn: &Connection,
    p: &Parts,
    pending: PendingChild,
    err: Option<NotifyType>,
    ni: &[u8],
    nr: &[u8],
) {
    let fail = |sa: &mut IkeSa, cx: &mut Cx, why: String| {
        warn!(connection = %conn.name, child = %pending.name, "CHILD_SA not established: {why}");
        cx.alloc.child_spis.remove(&pending.spi_in);
        let id = cx.alloc.child_id();
        cx.event(Event::ChildDown {
            ike: sa.id,
            child: id,
            name: pending.name.clone(),
            reason: DownReason::Failed(why),
        });
    };
    let (Some(sa_p), Some(tsi_p), Some(tsr_p)) = (p.sa, p.tsi, p.tsr) else {
        fail(
            sa,
            cx,
            err.map(|e| format!("peer answered {e}"))
                .unwrap_or_else(|| "no CHILD_SA in the response".into()),
        );
        return;
    };
    let ours = specs(conn, &pending.name);
    let selected: Option<Selected> =
        proposal::accept_response(&ours, &sa_p.proposals, ProtocolId::ESP, true);
    let spi_out = selected.as_ref().and_then(child::peer_spi);
    let tsi = ranges(tsi_p).filter(|t| !t.is_empty() && ts::all_within(t, &pending.local_ts));
    let tsr = ranges(tsr_p).filter(|t| !t.is_empty() && ts::all_within(t, &pending.remote_ts));
    let (Some(selected), Some(spi_out), Some(local_ts), Some(remote_ts)) =
        (selected, spi_out, tsi, tsr)
    else {
        fail(
            sa,
            cx,
            "the responder's proposal or traffic selectors are not what we offered".into(),
        );
        // The responder installed something we cannot use: remove the IKE SA.
        sa.tasks.push_back(crate::sa::Task::DeleteIke);
        return;
    };
    let n = Negotiated {
        additional: &[],
        initiator: true,
        g_ir: None,
        ni,
        nr,
        defer_outbound: false,
        id: cx.alloc.child_id(),
        name: pending.name.clone(),
        selected: selected.clone(),
        spi_in: pending.spi_in,
        spi_out,
        local_ts: local_ts.clone(),
        remote_ts: remote_ts.clone(),
    };
    let id = n.id;
    if let Err(e) = child::install(sa, cx, n) {
        fail(sa, cx, e);
        sa.tasks.push_back(crate::sa::Task::DeleteIke);
        return;
    }
    child::log_up(
        &pending.name,
        pending.spi_in,
        spi_out,
        &local_ts,
        &remote_ts,
        &selected,
        false,
    );
    cx.event(Event::ChildUp {
        ike: sa.id,
        child: id,
        name: pending.name,
        spi_in: pending.spi_in,
        spi_out,
    });
}
