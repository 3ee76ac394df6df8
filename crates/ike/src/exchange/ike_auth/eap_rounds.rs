//! The EAP part of IKE_AUTH (RFC 7296 §2.16): the initiator sends no AUTH,
//! the gateway answers with its own AUTH and the first EAP request, EAP
//! rounds follow in further IKE_AUTH exchanges (answered by this engine —
//! EAP-MSCHAPv2, EAP-TLS — or relayed to a RADIUS server through the
//! caller), and both final AUTH payloads are keyed with the MSK. Both roles:
//! the gateway's rounds and the client's answers.
use super::*;

/// The EAP payload of a message, if any.
fn eap_payload(payloads: &[Payload]) -> Option<&[u8]> {
    payloads.iter().find_map(|p| match p {
        Payload::Eap(b) => Some(b.as_slice()),
        _ => None,
    })
}

/// Gateway, first IKE_AUTH request without AUTH (RFC 7296 §2.16): picks a
/// connection that authenticates the peer with EAP, answers with our IDr,
/// [CERT] and AUTH and the first EAP request, and holds the CHILD_SA and
/// configuration requests until the final AUTH.
#[allow(clippy::too_many_arguments)]
pub(super) fn eap_start(
    sa: &mut IkeSa,
    cx: &mut Cx,
    dgram: &Datagram,
    hdr: &oxisec_wire::HeaderRepr,
    payloads: &[Payload],
    idi: Identity,
    idi_p: &IdPayload,
    idr: Option<Option<Identity>>,
) {
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
    let mut reason = format!("{idi} sent no AUTH, and no connection authenticates it with EAP");
    let mut chosen = None;
    for conn in &sa.candidates {
        if !matches!(
            conn.remote_auth,
            Auth::Eap(_) | Auth::EapRelay(_) | Auth::EapTls(_)
        ) {
            continue;
        }
        if let Err(why) = identities_fit(conn, &idi, &idr) {
            if let Some(why) = why {
                reason = why;
            }
            continue;
        }
        chosen = Some(conn.clone());
        break;
    }
    let Some(conn) = chosen else {
        let name = sa.candidates.first().map(|c| c.name.clone());
        reject(sa, cx, name, reason);
        return;
    };
    let ia = crate::exchange::ike_intermediate::int_auth(sa, hdr.message_id);
    let mut out = match our_identity_and_auth(sa, &conn, &ia) {
        Ok(out) => out,
        Err(why) => {
            if let Some(why) = why {
                reject(sa, cx, Some(conn.name.clone()), why);
            }
            return;
        }
    };
    // The first EAP message: ours, or one for the relay to carry out.
    let mut relay_first = None;
    let (role, method) = match &conn.remote_auth {
        Auth::EapRelay(relay) => {
            let (r, first) =
                eap::relay::Relay::start(relay.ask_identity, eap::identity_text(&idi), cx.rng);
            match first {
                eap::relay::First::Request(p) => out.push(Payload::Eap(p)),
                eap::relay::First::Relay(p) => relay_first = Some(p),
            }
            (EapRole::Relay(r), "EAP through the EAP server (relay)")
        }
        Auth::Eap(server) => {
            let (server, first) = eap::server::Server::start(
                server.users.clone(),
                server.ask_identity,
                eap::identity_text(&idi),
                cx.rng,
            );
            out.push(Payload::Eap(first));
            (EapRole::Server(server), "EAP-MSCHAPv2")
        }
        Auth::EapTls(tls) => {
            let Auth::Cert(cert) = &conn.local_auth else {
                let why = "EAP-TLS needs a certificate as our local_auth".to_string();
                reject(sa, cx, Some(conn.name.clone()), why);
                return;
            };
            let settings = eap::tls::Settings {
                trust: tls.trust.clone(),
                key: cert.key.clone(),
                chain: cert.chain.clone(),
                versions: tls.versions,
                fragment_size: tls.fragment_size,
            };
            match eap::tls::Server::start(settings, tls.ask_identity, &idi, cx.rng) {
                Ok((server, first)) => {
                    out.push(Payload::Eap(first));
                    (EapRole::Tls(Box::new(server)), "EAP-TLS")
                }
                Err(why) => {
                    warn!(connection = %conn.name, "cannot start EAP-TLS: {why}");
                    reject(sa, cx, Some(conn.name.clone()), why);
                    return;
                }
            }
        }
        _ => return,
    };
    let mut e = EapHandshake::new(role);
    e.rounds = 1;
    e.peer_idi = Some((idi.clone(), idi_p.body_bytes()));
    e.held = payloads
        .iter()
        .filter(|p| {
            matches!(
                p,
                Payload::Sa(_) | Payload::TsI(_) | Payload::TsR(_) | Payload::Cp(_)
            )
        })
        .cloned()
        .collect();
    e.initial_contact = payloads
        .iter()
        .any(|p| matches!(p, Payload::Notify(n) if n.ty == NotifyType::INITIAL_CONTACT));
    info!(connection = %conn.name, peer = %idi, remote = %sa.remote, "peer authenticates with {method}");
    sa.conn = conn;
    if let Some(hs) = sa.hs.as_mut() {
        hs.auth_mid = hdr.message_id;
    }
    if let Some(first) = relay_first {
        // Our first response waits for the EAP server's first request.
        relay_out(sa, cx, e, dgram, hdr.message_id, out, first);
        return;
    }
    if let Some(hs) = sa.hs.as_mut() {
        hs.eap = Some(Box::new(e));
    }
    send_response(
        sa,
        cx,
        ExchangeType::IKE_AUTH,
        hdr.message_id,
        &dgram.data,
        out,
    );
}

/// Gateway, a later IKE_AUTH request of an EAP authentication: the next
/// EAP message, or — after EAP-Success — the client's AUTH keyed with the
/// MSK, answered with ours, the configuration reply and the CHILD_SA.
pub(super) fn eap_round(
    sa: &mut IkeSa,
    cx: &mut Cx,
    dgram: &Datagram,
    hdr: &oxisec_wire::HeaderRepr,
    payloads: Vec<Payload>,
) {
    let Some(mut e) = sa.hs.as_mut().and_then(|h| h.eap.take()) else {
        return;
    };
    if let EapRole::Relay(r) = &e.role
        && r.pending.is_some()
    {
        // The client retransmitted (or sent ahead) while the EAP server
        // thinks: the answer goes out when it comes.
        debug!(peer = %sa.remote, msg_id = hdr.message_id, "IKE_AUTH request while the EAP server has not answered; ignored");
        if let Some(hs) = sa.hs.as_mut() {
            hs.eap = Some(e);
        }
        return;
    }
    let conn = sa.conn.clone();
    let answer = |sa: &mut IkeSa, cx: &mut Cx, out: Vec<Payload>| {
        send_response(
            sa,
            cx,
            ExchangeType::IKE_AUTH,
            hdr.message_id,
            &dgram.data,
            out,
        );
    };
    // EAP-Failure (when there is one to send) with AUTHENTICATION_FAILED:
    // the client learns why, and no SA is left behind.
    let fail = |sa: &mut IkeSa, cx: &mut Cx, reason: String, eap_failure: Option<Vec<u8>>| {
        auth_failed(sa, cx, Some(conn.name.clone()), reason);
        let mut out: Vec<Payload> = eap_failure.map(Payload::Eap).into_iter().collect();
        out.push(notify(NotifyType::AUTHENTICATION_FAILED));
        answer(sa, cx, out);
        close(sa, cx, DownReason::AuthFailed);
    };
    e.rounds += 1;
    let max_rounds = match e.role {
        EapRole::Relay(_) => eap::relay::MAX_RELAY_ROUNDS,
        EapRole::Tls(_) => eap::tls::MAX_ROUNDS,
        _ => eap::MAX_ROUNDS,
    };
    if e.rounds > max_rounds {
        let why = format!("EAP not finished after {max_rounds} rounds");
        fail(sa, cx, why, None);
        return;
    }
    // Each authenticated round shows the client is making progress: it gets
    // the half-open time again (at most MAX_ROUNDS times), so that a lossy
    // link that needs retransmissions in every round still gets through.
    if sa.half_open_deadline.is_some() {
        sa.half_open_deadline = Some(cx.now + crate::exchange::ike_sa_init::HALF_OPEN_TIMEOUT);
    }
    let p = parts(&payloads);
    if let Some(auth_p) = p.auth {
        let (msk, user, groups) = match &e.role {
            EapRole::Server(server) => (
                server.msk().cloned(),
                server.user().map(str::to_string),
                server.groups(),
            ),
            EapRole::Relay(relay) => (
                relay.msk().cloned(),
                Some(relay.identity().to_string()),
                relay.groups().to_vec(),
            ),
            // As for IKE certificates: the OUs of the validated certificate.
            EapRole::Tls(tls) => (
                tls.msk().cloned(),
                tls.user().map(str::to_string),
                tls.groups().to_vec(),
            ),
            EapRole::Client(_) | EapRole::TlsClient(_) => (None, None, Vec::new()),
        };
        let (Some(msk), Some(user)) = (msk, user) else {
            fail(sa, cx, "AUTH before EAP succeeded".into(), None);
            return;
        };
        let Some((idi, idi_body)) = e.peer_idi.take() else {
            return;
        };
        let mid = sa.hs.as_ref().map(|h| h.auth_mid).unwrap_or_default();
        let ia = crate::exchange::ike_intermediate::int_auth(sa, mid);
        let (Some(hs), Some(keys)) = (sa.hs.as_ref(), sa.keys.as_ref()) else {
            return;
        };
        // RFC 7296 §2.16: both final AUTH payloads use the MSK as the
        // shared secret, over the same octets as the first AUTH would.
        let msk_key = Auth::Psk(msk);
        let octets = auth::signed_octets(
            keys.prf,
            &hs.init_request,
            &hs.nr,
            keys.sk_p_peer.as_bytes(),
            &idi_body,
            &ia,
        );
        if let Err(why) = auth::check(&msk_key, keys.prf, &octets, auth_p, None) {
            let why = format!("{user} ({idi}): AUTH with the EAP MSK does not verify: {why}");
            fail(sa, cx, why, None);
            return;
        }
        let idr_own = conn.local_id.to_wire();
        let octets_r = auth::signed_octets(
            keys.prf,
            &hs.init_response,
            &hs.ni,
            keys.sk_p_own.as_bytes(),
            &idr_own.body_bytes(),
            &ia,
        );
        let our = match auth::make(&msk_key, keys.prf, &octets_r, &[]) {
            Ok(a) => a,
            Err(why) => {
                fail(sa, cx, why, None);
                return;
            }
        };
        let (ni, nr) = (hs.ni.clone(), hs.nr.clone());
        let held = std::mem::take(&mut e.held);
        info!(connection = %conn.name, peer = %idi, user = %user, "EAP authentication succeeded");
        sa.eap_identity = Some(user.clone());
        cx.event(Event::EapAuthenticated {
            ike: sa.id,
            connection: conn.name.clone(),
            remote: sa.remote,
            identity: user,
        });
        let hp = parts(&held);
        let out = vec![Payload::Auth(our)];
        establish_responder(
            sa,
            cx,
            dgram,
            hdr,
            conn.clone(),
            idi,
            groups,
            out,
            &hp,
            &ni,
            &nr,
        );
        return;
    }
    let Some(data) = eap_payload(&payloads) else {
        let why = "IKE_AUTH request with neither EAP nor AUTH during EAP".to_string();
        fail(sa, cx, why, None);
        return;
    };
    let server = match &mut e.role {
        EapRole::Server(server) => server,
        EapRole::Relay(relay) => {
            match relay.client_message(data) {
                eap::relay::Out::Relay(m) => {
                    relay_out(sa, cx, *e, dgram, hdr.message_id, Vec::new(), m)
                }
                eap::relay::Out::Fail(why) => fail(sa, cx, why, None),
            }
            return;
        }
        EapRole::Tls(tls) => {
            let step = tls.process(data, cx.wall);
            eap_step(sa, cx, e, step, &conn.name, answer, fail);
            return;
        }
        EapRole::Client(_) | EapRole::TlsClient(_) => return,
    };
    match server.process(data, cx.rng) {
        eap::server::Step::Continue(next) => {
            // The operator learns of a refused password now: strongSwan,
            // for one, does not acknowledge the Failure Request but gives
            // up with an INFORMATIONAL AUTHENTICATION_FAILED.
            if let Some(reason) = server.failure_pending() {
                warn!(connection = %conn.name, peer = %sa.remote, "{reason}");
            }
            if let Some(hs) = sa.hs.as_mut() {
                hs.eap = Some(e);
            }
            answer(sa, cx, vec![Payload::Eap(next)]);
        }
        eap::server::Step::Success { packet, user } => {
            tracing::debug!(connection = %conn.name, user = %user, "EAP-MSCHAPv2 password verified; EAP-Success");
            if let Some(hs) = sa.hs.as_mut() {
                hs.eap = Some(e);
            }
            answer(sa, cx, vec![Payload::Eap(packet)]);
        }
        eap::server::Step::Failure { packet, reason } => fail(sa, cx, reason, Some(packet)),
    }
}

/// Gateway: sends the answer of a local EAP method's step (EAP-TLS), or
/// fails the authentication with its EAP-Failure.
fn eap_step(
    sa: &mut IkeSa,
    cx: &mut Cx,
    e: Box<EapHandshake>,
    step: eap::server::Step,
    conn: &str,
    answer: impl FnOnce(&mut IkeSa, &mut Cx, Vec<Payload>),
    fail: impl FnOnce(&mut IkeSa, &mut Cx, String, Option<Vec<u8>>),
) {
    match step {
        eap::server::Step::Continue(next) => {
            if let Some(hs) = sa.hs.as_mut() {
                hs.eap = Some(e);
            }
            answer(sa, cx, vec![Payload::Eap(next)]);
        }
        eap::server::Step::Success { packet, user } => {
            debug!(connection = %conn, user = %user, "EAP method succeeded; EAP-Success");
            if let Some(hs) = sa.hs.as_mut() {
                hs.eap = Some(e);
            }
            answer(sa, cx, vec![Payload::Eap(packet)]);
        }
        eap::server::Step::Failure { packet, reason } => fail(sa, cx, reason, Some(packet)),
    }
}

/// Whether this responder SA is in the middle of EAP with its client.
pub(crate) fn eap_in_progress(sa: &IkeSa) -> bool {
    sa.hs
        .as_ref()
        .and_then(|h| h.eap.as_ref())
        .is_some_and(|e| {
            matches!(
                e.role,
                EapRole::Server(_) | EapRole::Relay(_) | EapRole::Tls(_)
            )
        })
}

/// Responder during EAP, an INFORMATIONAL request: a client that gives up
/// (strongSwan after a refused password: AUTHENTICATION_FAILED instead of
/// acknowledging the MSCHAPv2 Failure Request) is answered with an empty
/// response and its half-open SA is deleted now rather than at the
/// half-open timeout. Anything else is answered and otherwise ignored, as
/// nothing else is meaningful before the IKE SA is up.
pub(crate) fn eap_informational(
    sa: &mut IkeSa,
    cx: &mut Cx,
    dgram: &Datagram,
    hdr: &oxisec_wire::HeaderRepr,
    payloads: &[Payload],
) {
    let error = payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.ty.0 < 16384 => Some(n.ty),
        _ => None,
    });
    send_response(
        sa,
        cx,
        ExchangeType::INFORMATIONAL,
        hdr.message_id,
        &dgram.data,
        Vec::new(),
    );
    let Some(error) = error else { return };
    let pending = sa
        .hs
        .as_ref()
        .and_then(|h| h.eap.as_ref())
        .and_then(|e| match &e.role {
            EapRole::Server(s) => s.failure_pending().map(str::to_owned),
            _ => None,
        });
    let reason = match pending {
        Some(r) => format!("{r} (the client gave up with {error})"),
        None => format!("the client gave up during EAP with {error}"),
    };
    let name = sa.conn.name.clone();
    auth_failed(sa, cx, Some(name), reason);
    close(sa, cx, DownReason::AuthFailed);
}

/// Gateway with [`Auth::EapRelay`]: hands the client's EAP message `m`
/// out for the EAP server and parks the IKE_AUTH request `msg_id`; its
/// response (after `prefix`) goes out in [`relay_answer`].
fn relay_out(
    sa: &mut IkeSa,
    cx: &mut Cx,
    mut e: EapHandshake,
    dgram: &Datagram,
    msg_id: u32,
    prefix: Vec<Payload>,
    m: Vec<u8>,
) {
    let EapRole::Relay(relay) = &mut e.role else {
        return;
    };
    // The EAP server may take its time (push MFA): the SA waits for it,
    // not for the half-open timer.
    if sa.half_open_deadline.is_some() {
        sa.half_open_deadline = Some(cx.now + eap::relay::RELAY_TIMEOUT);
    }
    relay.pending = Some(eap::relay::Pending {
        msg_id,
        request: dgram.data.clone(),
        prefix,
        eap_id: m.get(1).copied().unwrap_or_default(),
    });
    cx.event(Event::EapRelay {
        ike: sa.id,
        connection: sa.conn.name.clone(),
        local: sa.local,
        remote: sa.remote,
        identity: relay.identity().to_string(),
        packet: m,
    });
    if let Some(hs) = sa.hs.as_mut() {
        hs.eap = Some(Box::new(e));
    }
}

/// Gateway: the EAP server's answer to the relayed message; sends the
/// parked IKE_AUTH response. False when no relayed message of this SA is
/// waiting (the SA is gone, or the answer came twice).
pub(crate) fn relay_answer(sa: &mut IkeSa, cx: &mut Cx, answer: crate::EapRelayAnswer) -> bool {
    if sa.state != IkeState::Connecting {
        return false;
    }
    let Some(mut e) = sa.hs.as_mut().and_then(|h| h.eap.take()) else {
        return false;
    };
    let EapRole::Relay(relay) = &mut e.role else {
        if let Some(hs) = sa.hs.as_mut() {
            hs.eap = Some(e);
        }
        return false;
    };
    let Some(pending) = relay.pending.take() else {
        if let Some(hs) = sa.hs.as_mut() {
            hs.eap = Some(e);
        }
        return false;
    };
    if sa.half_open_deadline.is_some() {
        sa.half_open_deadline = Some(cx.now + crate::exchange::ike_sa_init::HALF_OPEN_TIMEOUT);
    }
    let mut out = pending.prefix;
    let (msg_id, request) = (pending.msg_id, pending.request);
    match relay.server_answer(answer, pending.eap_id) {
        eap::relay::In::Continue(p) => out.push(Payload::Eap(p)),
        eap::relay::In::Success(p) => {
            tracing::debug!(connection = %sa.conn.name, user = %relay.identity(), "the EAP server accepted; EAP-Success");
            out.push(Payload::Eap(p));
        }
        eap::relay::In::Failure { packet, reason } => {
            auth_failed(sa, cx, Some(sa.conn.name.clone()), reason);
            let out = vec![
                Payload::Eap(packet),
                notify(NotifyType::AUTHENTICATION_FAILED),
            ];
            send_response(sa, cx, ExchangeType::IKE_AUTH, msg_id, &request, out);
            close(sa, cx, DownReason::AuthFailed);
            return true;
        }
    }
    if let Some(hs) = sa.hs.as_mut() {
        hs.eap = Some(e);
    }
    send_response(sa, cx, ExchangeType::IKE_AUTH, msg_id, &request, out);
    true
}

/// Gateway: the half-open timer fired. If the EAP server never answered
/// the relayed message, that is an authentication failure worth naming,
/// and the client waiting for the parked response learns it at once
/// (EAP-Failure, AUTHENTICATION_FAILED) instead of after its whole
/// retransmission schedule.
pub(crate) fn relay_timed_out(sa: &mut IkeSa, cx: &mut Cx) {
    let Some(e) = sa.hs.as_mut().and_then(|h| h.eap.as_mut()) else {
        return;
    };
    let EapRole::Relay(relay) = &mut e.role else {
        return;
    };
    let Some(pending) = relay.pending.take() else {
        return;
    };
    let why = format!(
        "{}: the EAP server did not answer in time",
        relay.identity()
    );
    auth_failed(sa, cx, Some(sa.conn.name.clone()), why);
    let out = vec![
        Payload::Eap(eap::EapPacket::result(false, pending.eap_id)),
        notify(NotifyType::AUTHENTICATION_FAILED),
    ];
    send_response(
        sa,
        cx,
        ExchangeType::IKE_AUTH,
        pending.msg_id,
        &pending.request,
        out,
    );
}

/// Client, a response during EAP: first the gateway's IDr and AUTH (its
/// certificate or PSK, checked before anything else is believed), then
/// EAP requests until EAP-Success — accepted only after the gateway's
/// MSCHAPv2 authenticator response verified — then our MSK-keyed AUTH, and
/// finally the gateway's MSK-keyed AUTH with the configuration reply and
/// the CHILD_SA.
pub(super) fn eap_response(
    sa: &mut IkeSa,
    cx: &mut Cx,
    mut e: EapHandshake,
    payloads: &[Payload],
    err: Option<NotifyType>,
) {
    let conn = sa.conn.clone();
    let p = parts(payloads);
    let reject = |sa: &mut IkeSa, cx: &mut Cx, reason: String| {
        auth_failed(sa, cx, Some(conn.name.clone()), reason);
        close(sa, cx, DownReason::AuthFailed);
    };
    let refused = || {
        err.map(|n| format!("the gateway answered {n}"))
            .unwrap_or_default()
    };
    e.rounds += 1;
    let max_rounds = match e.role {
        EapRole::TlsClient(_) => eap::tls::MAX_ROUNDS,
        _ => eap::MAX_ROUNDS,
    };
    if e.rounds > max_rounds {
        let why = format!("the gateway did not finish EAP in {max_rounds} rounds");
        reject(sa, cx, why);
        return;
    }
    let mid = sa.hs.as_ref().map(|h| h.auth_mid).unwrap_or_default();
    let ia = crate::exchange::ike_intermediate::int_auth(sa, mid);
    if e.peer_idr.is_none() {
        let (Some(idr_p), Some(auth_p)) = (p.idr, p.auth) else {
            let why = match refused() {
                r if r.is_empty() => {
                    "the gateway's first IKE_AUTH response lacks IDr and AUTH".into()
                }
                r => r,
            };
            reject(sa, cx, why);
            return;
        };
        let idr = match check_responder(sa, cx, idr_p, auth_p, &p.certs, &ia, "gateway") {
            Ok(Some(idr)) => idr,
            Ok(None) => return,
            Err(why) => {
                reject(sa, cx, why);
                return;
            }
        };
        info!(connection = %conn.name, peer = %idr, "gateway authenticated; EAP follows");
        e.peer_idr = Some((idr, idr_p.body_bytes()));
    } else if e.auth_sent {
        let msk = match &e.role {
            EapRole::Client(c) => c.msk().cloned(),
            EapRole::TlsClient(c) => c.msk().cloned(),
            _ => None,
        };
        let Some(auth_p) = p.auth.filter(|_| msk.is_some()) else {
            let why = match refused() {
                r if r.is_empty() => "the gateway's last IKE_AUTH response has no AUTH".into(),
                r => r,
            };
            reject(sa, cx, why);
            return;
        };
        let (Some(msk), Some((idr, idr_body))) = (msk, e.peer_idr.take()) else {
            return;
        };
        let (Some(hs), Some(keys)) = (sa.hs.as_ref(), sa.keys.as_ref()) else {
            return;
        };
        let octets = auth::signed_octets(
            keys.prf,
            &hs.init_response,
            &hs.ni,
            keys.sk_p_peer.as_bytes(),
            &idr_body,
            &ia,
        );
        if let Err(why) = auth::check(&Auth::Psk(msk), keys.prf, &octets, auth_p, None) {
            let why = format!("gateway {idr}: AUTH with the EAP MSK does not verify: {why}");
            reject(sa, cx, why);
            return;
        }
        complete_initiator(sa, cx, idr, &p, err);
        return;
    }
    let Some(data) = eap_payload(payloads) else {
        let why = match refused() {
            r if r.is_empty() => "the gateway sent no EAP request".into(),
            r => r,
        };
        reject(sa, cx, why);
        return;
    };
    let gateway = e.peer_idr.as_ref().map(|(id, _)| id.clone());
    let (step, method) = match &mut e.role {
        EapRole::Client(client) => (client.process(data, cx.rng), "EAP-MSCHAPv2"),
        EapRole::TlsClient(client) => (client.process(data, cx.wall, gateway.as_ref()), "EAP-TLS"),
        _ => return,
    };
    let (msk, user) = match &e.role {
        EapRole::Client(c) => (c.msk().cloned(), c.identity().to_string()),
        EapRole::TlsClient(c) => (c.msk().cloned(), c.identity().to_string()),
        _ => return,
    };
    match step {
        eap::client::Step::Reply(r) => {
            if let Some(hs) = sa.hs.as_mut() {
                hs.eap = Some(Box::new(e));
            }
            send_request(
                sa,
                cx,
                ExchangeType::IKE_AUTH,
                vec![Payload::Eap(r)],
                Active::IkeAuth,
            );
        }
        eap::client::Step::Success => {
            let Some(msk) = msk else {
                return;
            };
            let (Some(hs), Some(keys)) = (sa.hs.as_ref(), sa.keys.as_ref()) else {
                return;
            };
            let octets = auth::signed_octets(
                keys.prf,
                &hs.init_request,
                &hs.nr,
                keys.sk_p_own.as_bytes(),
                &conn.local_id.to_wire().body_bytes(),
                &ia,
            );
            let our = match auth::make(&Auth::Psk(msk), keys.prf, &octets, &[]) {
                Ok(a) => a,
                Err(why) => {
                    reject(sa, cx, why);
                    return;
                }
            };
            info!(connection = %conn.name, user = %user, "{method} succeeded; the gateway proved itself inside EAP too");
            e.auth_sent = true;
            if let Some(hs) = sa.hs.as_mut() {
                hs.eap = Some(Box::new(e));
            }
            send_request(
                sa,
                cx,
                ExchangeType::IKE_AUTH,
                vec![Payload::Auth(our)],
                Active::IkeAuth,
            );
        }
        eap::client::Step::Failure(why) => reject(sa, cx, why),
    }
}
