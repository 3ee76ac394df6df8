//! IKE_AUTH (RFC 7296 §1.2, §2.15): identities, authentication with a
//! pre-shared key or a certificate (RFC 7427 signatures, CERT/CERTREQ), or
//! of the initiator with EAP over several IKE_AUTH round trips (§2.16; the
//! rounds are in [`eap_rounds`]), virtual IPs through the configuration
//! payload, and the first CHILD_SA with traffic selector narrowing (§2.9).
use std::sync::Arc;

use oxisec_pki::{Certificate, PublicKey};
use oxisec_wire::{
    AuthPayload, CertEncoding, CertPayload, ExchangeType, IdPayload, NotifyPayload, NotifyType,
    Payload, ProtocolId, SaPayload, TsPayload,
};
use tracing::{debug, info, warn};

use super::{Cx, close, send_request, send_response};
use crate::api::{Datagram, DownReason, Event};
use crate::auth;
use crate::child::{self, Negotiated};
use crate::config::{Auth, Connection, SendCert};
use crate::eap::{self, EapHandshake, EapRole};
use crate::identity::Identity;
use crate::proposal::{self, ProposalSpec, Selected};
use crate::sa::{Active, IkeSa, IkeState, PendingChild};
use crate::ts::{self, TsRange};

mod eap_rounds;

pub(crate) use eap_rounds::{eap_in_progress, eap_informational, relay_answer, relay_timed_out};
use eap_rounds::{eap_response, eap_round, eap_start};

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
    /// USE_TRANSPORT_MODE (RFC 7296 §1.3.1).
    transport: bool,
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
        transport: false,
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
            Payload::Notify(n) if n.ty == NotifyType::USE_TRANSPORT_MODE => p.transport = true,
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
    // An EAP client sends no AUTH in its first IKE_AUTH request (RFC 7296
    // §2.16): the gateway answers with its own AUTH and an EAP request.
    let (auth_p, eap) = match &conn.local_auth {
        Auth::EapTlsClient(tls) => {
            let started = match &conn.remote_auth {
                Auth::PeerCert(trust) => eap::tls::Client::new(eap::tls::ClientSettings {
                    identity: tls
                        .identity
                        .clone()
                        .unwrap_or_else(|| eap::identity_text(&conn.local_id)),
                    key: tls.cert.key.clone(),
                    chain: tls.cert.chain.clone(),
                    trust: trust.clone(),
                    versions: tls.versions,
                    fragment_size: tls.fragment_size,
                }),
                _ => Err("EAP-TLS needs the gateway's CA (remote_auth = cert) to check its TLS certificate".into()),
            };
            match started {
                Ok(c) => (None, Some(EapRole::TlsClient(Box::new(c)))),
                Err(e) => {
                    warn!(connection = %conn.name, "cannot authenticate: {e}");
                    close(sa, cx, DownReason::Failed(e));
                    return;
                }
            }
        }
        Auth::EapClient { identity, password } => {
            match eap::client::Client::new(identity, password.as_bytes()) {
                Ok(c) => (None, Some(EapRole::Client(c))),
                Err(e) => {
                    warn!(connection = %conn.name, "cannot authenticate: {e}");
                    close(sa, cx, DownReason::Failed(e));
                    return;
                }
            }
        }
        local => match auth::make(local, keys.prf, &octets, &hs.peer_hashes) {
            Ok(a) => (Some(a), None),
            Err(e) => {
                warn!(connection = %conn.name, "cannot authenticate: {e}");
                close(sa, cx, DownReason::Failed(e));
                return;
            }
        },
    };
    let mut payloads = vec![Payload::IdI(idi)];
    payloads.extend(our_certs(&conn.local_auth, hs.peer_certreq));
    payloads.extend(certreq(&conn.remote_auth));
    if let Some(rid) = &conn.remote_id {
        payloads.push(Payload::IdR(rid.to_wire()));
    }
    payloads.extend(auth_p.map(Payload::Auth));
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
        // §1.3.1: the notify goes with the child's SA payload.
        if child::request_transport(Some(cfg), &pending.local_ts, &pending.remote_ts) {
            payloads.push(notify(NotifyType::USE_TRANSPORT_MODE));
        }
        payloads.push(Payload::Sa(SaPayload { proposals }));
        payloads.push(Payload::TsI(ts_payload(&pending.local_ts)));
        payloads.push(Payload::TsR(ts_payload(&pending.remote_ts)));
    }
    if let (Some(role), Some(hs)) = (eap, sa.hs.as_mut()) {
        hs.eap = Some(Box::new(EapHandshake::new(role)));
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
    // With EAP, INITIAL_CONTACT came in the first of several requests.
    let held = sa
        .hs
        .as_ref()
        .and_then(|h| h.eap.as_ref())
        .is_some_and(|e| e.initial_contact);
    let initial_contact = held
        || payloads
            .iter()
            .any(|p| matches!(p, Payload::Notify(n) if n.ty == NotifyType::INITIAL_CONTACT));
    if sa.hs.as_ref().is_some_and(|h| h.eap.is_some()) {
        eap_round(sa, cx, dgram, hdr, payloads);
    } else {
        authenticate_and_answer(sa, cx, dgram, hdr, payloads);
    }
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
    let Some(idi_p) = p.idi else {
        reject(sa, cx, None, "IKE_AUTH without IDi".into());
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
    let Some(auth_p) = p.auth else {
        // No AUTH: the initiator wants to authenticate with EAP (§2.16).
        eap_start(sa, cx, dgram, hdr, &payloads, idi, idi_p, idr);
        return;
    };
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
        if let Err(why) = identities_fit(conn, &idi, &idr) {
            if let Some(why) = why {
                reason = why;
            }
            continue;
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
    let out = match our_identity_and_auth(sa, &conn, &ia) {
        Ok(out) => out,
        Err(why) => {
            if let Some(why) = why {
                reject(sa, cx, Some(conn.name.clone()), why);
            }
            return;
        }
    };
    // A certificate client's groups: the OUs of its (validated) certificate.
    let groups = match &conn.remote_auth {
        Auth::PeerCert(_) => p
            .certs
            .iter()
            .find(|c| c.encoding == CertEncoding::X509_SIGNATURE)
            .and_then(|c| Certificate::from_der(&c.data).ok())
            .map(|c| crate::groups::organizational_units(&c.subject_der()))
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    establish_responder(sa, cx, dgram, hdr, conn, idi, groups, out, &p, &ni, &nr);
}

/// Responder: our IDr, CERT (as the connection sends them) and AUTH over
/// the IKE_SA_INIT response for `conn` — the start of the answer to an
/// authenticated or EAP-starting IKE_AUTH. `Err(Some(reason))` when we
/// cannot compute our AUTH (the caller rejects the request), `Err(None)`
/// when the SA has no keys (nothing to answer with).
fn our_identity_and_auth(
    sa: &IkeSa,
    conn: &Connection,
    ia: &[u8],
) -> Result<Vec<Payload>, Option<String>> {
    let (Some(hs), Some(keys)) = (sa.hs.as_ref(), sa.keys.as_ref()) else {
        return Err(None);
    };
    let idr_own = conn.local_id.to_wire();
    let octets_r = auth::signed_octets(
        keys.prf,
        &hs.init_response,
        &hs.ni,
        keys.sk_p_own.as_bytes(),
        &idr_own.body_bytes(),
        ia,
    );
    let our_auth =
        auth::make(&conn.local_auth, keys.prf, &octets_r, &hs.peer_hashes).map_err(|e| {
            warn!(connection = %conn.name, "cannot authenticate ourselves: {e}");
            Some(format!("we cannot authenticate: {e}"))
        })?;
    let mut out = vec![Payload::IdR(idr_own)];
    out.extend(our_certs(&conn.local_auth, hs.peer_certreq));
    out.push(Payload::Auth(our_auth));
    Ok(out)
}

/// Responder: the initiator is authenticated — the SA is up; assign
/// virtual IPs, set up the CHILD_SA from the request's `p` and send `out`
/// (IDr, CERT, AUTH so far) with them. `groups` (the client's user groups)
/// select its remote-access values; a connection that requires a group
/// refuses a client in none of its groups here.
#[allow(clippy::too_many_arguments)]
fn establish_responder(
    sa: &mut IkeSa,
    cx: &mut Cx,
    dgram: &Datagram,
    hdr: &oxisec_wire::HeaderRepr,
    conn: Arc<Connection>,
    idi: Identity,
    groups: Vec<String>,
    mut out: Vec<Payload>,
    p: &Parts,
    ni: &[u8],
    nr: &[u8],
) {
    if conn.remote_access.for_groups(&groups).is_none() {
        let who = sa.eap_identity.clone().unwrap_or_else(|| idi.to_string());
        let listed: Vec<&str> = conn
            .remote_access
            .groups
            .iter()
            .map(|g| g.group.as_str())
            .collect();
        let reason = format!(
            "{who} is in none of the groups connection {} admits ({}); their groups: [{}]",
            conn.name,
            listed.join(", "),
            groups.join(", ")
        );
        auth_failed(sa, cx, Some(conn.name.clone()), reason);
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
        return;
    }
    sa.peer_groups = groups;
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
        && conn.remote_access.hands_out_addresses()
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
        out.extend(respond_child(
            sa,
            cx,
            &conn,
            sa_p,
            (tsi_p, tsr_p),
            p.transport,
            ni,
            nr,
        ));
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
    let identity = sa.lease_identity();
    // Checked by the caller: a client it refuses does not get here.
    let ra = conn.remote_access.for_groups(&sa.peer_groups)?;
    let group = ra.group.unwrap_or("-");
    let wanted = [
        req.v4.map(|a| (true, a.map(std::net::IpAddr::V4))),
        req.v6.map(|a| (false, a.map(std::net::IpAddr::V6))),
    ];
    for (v4, hint) in wanted.into_iter().flatten() {
        match cx.alloc.pools.acquire(ra.pools, v4, &identity, sa.id, hint) {
            Ok((pool, address)) => {
                info!(connection = %conn.name, peer = %identity, %address, pool = %pool, %group, "assigned virtual IP");
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
                warn!(connection = %conn.name, peer = %identity, %group, "no {family} virtual IP for the client: pools {:?} are full or have none of that family", ra.pools);
            }
        }
    }
    if sa.peer_vips.is_empty() {
        return None;
    }
    Some(crate::cp::Reply {
        addresses: sa.peer_vips.iter().map(|(_, a)| *a).collect(),
        dns: ra.dns.to_vec(),
        domains: ra.dns_domains.to_vec(),
        subnets: ra.subnets.to_vec(),
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
    (tsi_p, tsr_p): (&TsPayload, &TsPayload),
    transport_requested: bool,
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
    let mode = match child::responder_mode(
        child::config(conn, &c.name),
        transport_requested,
        &c.local_ts,
        &c.remote_ts,
    ) {
        Ok(m) => m,
        Err(why) => {
            info!(connection = %conn.name, child = %c.name, "no CHILD_SA for the peer's request: {why}");
            return vec![notify(NotifyType::NO_PROPOSAL_CHOSEN)];
        }
    };
    let spi_in = cx.alloc.child_spi(cx.rng);
    let id = cx.alloc.child_id();
    let n = Negotiated {
        mode,
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
    let mut out = Vec::new();
    if mode == crate::config::ChildMode::Transport {
        out.push(notify(NotifyType::USE_TRANSPORT_MODE));
    }
    out.extend([
        Payload::Sa(SaPayload {
            proposals: vec![
                c.selected
                    .to_wire(ProtocolId::ESP, spi_in.to_be_bytes().to_vec()),
            ],
        }),
        Payload::TsI(ts_payload(&c.remote_ts)),
        Payload::TsR(ts_payload(&c.local_ts)),
    ]);
    out
}

/// Initiator: verifies the responder and installs the first CHILD_SA.
pub(crate) fn handle_response(sa: &mut IkeSa, cx: &mut Cx, payloads: Vec<Payload>) {
    let mid = sa.hs.as_ref().map(|h| h.auth_mid).unwrap_or_default();
    let ia = super::ike_intermediate::int_auth(sa, mid);
    let p = parts(&payloads);
    let conn = sa.conn.clone();
    let err = crate::engine::error_notify(&payloads);
    if let Some(e) = sa.hs.as_mut().and_then(|h| h.eap.take()) {
        eap_response(sa, cx, *e, &payloads, err);
        return;
    }
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
    match check_responder(sa, cx, idr_p, auth_p, &p.certs, &ia, "responder") {
        Ok(Some(idr)) => complete_initiator(sa, cx, idr, &p, err),
        Ok(None) => {}
        Err(why) => reject(sa, cx, why),
    }
}

/// Responder: whether connection `conn` fits the peer's IDi and the IDr
/// it asked for (`None` when it named none, `Some(None)` when of a type we
/// do not know). `Err(Some(reason))`: refused for a reason worth reporting
/// if no connection fits; `Err(None)`: simply not this peer's connection.
fn identities_fit(
    conn: &Connection,
    idi: &Identity,
    idr: &Option<Option<Identity>>,
) -> Result<(), Option<String>> {
    if conn.remote_id.as_ref().is_some_and(|r| !r.matches(idi)) {
        return Err(None);
    }
    match idr {
        Some(Some(want)) if !conn.local_id.matches(want) => Err(Some(format!(
            "peer {idi} asked for identity {want}, we are {}",
            conn.local_id
        ))),
        Some(None) => Err(Some(format!(
            "peer {idi} asked for an identity of an unsupported type"
        ))),
        _ => Ok(()),
    }
}

/// Initiator: the responder's identity must be the configured one and its
/// AUTH (signature or PSK MAC over our signed octets, RFC 7296 §2.15) must
/// check out — for the plain IKE_AUTH response and for an EAP gateway's
/// first one alike. `who` names the peer in the reason. `Ok(None)`: the SA
/// has no handshake state left (nothing to do).
fn check_responder(
    sa: &IkeSa,
    cx: &Cx,
    idr_p: &IdPayload,
    auth_p: &AuthPayload,
    certs: &[&CertPayload],
    ia: &[u8],
    who: &str,
) -> Result<Option<Identity>, String> {
    let conn = &sa.conn;
    let Some(idr) = Identity::from_wire(idr_p) else {
        return Err(format!(
            "{who} sent an identity of unsupported type {}",
            idr_p.id_type
        ));
    };
    if let Some(want) = &conn.remote_id
        && !want.matches(&idr)
    {
        return Err(format!("{who} identified as {idr}, expected {want}"));
    }
    let (Some(hs), Some(keys)) = (sa.hs.as_ref(), sa.keys.as_ref()) else {
        return Ok(None);
    };
    let octets = auth::signed_octets(
        keys.prf,
        &hs.init_response,
        &hs.ni,
        keys.sk_p_peer.as_bytes(),
        &idr_p.body_bytes(),
        ia,
    );
    peer_key(&conn.remote_auth, certs, &idr, cx)
        .and_then(|key| auth::check(&conn.remote_auth, keys.prf, &octets, auth_p, key.as_ref()))
        .map_err(|e| format!("{who} {idr}: {e}"))?;
    Ok(Some(idr))
}

/// Initiator: the responder is authenticated — take the virtual IPs, bring
/// the SA up and install the first CHILD_SA from the response's `p`.
fn complete_initiator(
    sa: &mut IkeSa,
    cx: &mut Cx,
    idr: Identity,
    p: &Parts,
    err: Option<NotifyType>,
) {
    let conn = sa.conn.clone();
    let Some(hs) = sa.hs.as_ref() else {
        return;
    };
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
        finish_child(sa, cx, &conn, p, pending, err, &ni, &nr);
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
    let cfg = child::config(conn, &pending.name);
    let requested = child::request_transport(cfg, &pending.local_ts, &pending.remote_ts);
    let (mode, refused) = match child::initiator_mode(cfg, requested, p.transport) {
        Ok(m) => (m, None),
        // Installed as tunnel so that the delete removes the responder's
        // half too; the child is then deleted at once.
        Err(why) => (crate::config::ChildMode::Tunnel, Some(why)),
    };
    let n = Negotiated {
        mode,
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
    if let Some(why) = refused {
        warn!(connection = %conn.name, child = %pending.name, "CHILD_SA not usable, deleting it: {why}");
        sa.tasks.push_back(crate::sa::Task::DeleteChild(id));
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
