//! CREATE_CHILD_SA (RFC 7296 §1.3): additional CHILD_SAs, CHILD_SA rekeying
//! (with or without PFS) and IKE SA rekeying, with the collision rules of
//! §2.8.1, §2.8.2 and §2.25.
//!
//! Make-before-break for a CHILD_SA rekey:
//! * the responder installs the new inbound SA before it answers, but keeps
//!   sending on the old SA until the initiator deletes it, so it never uses an
//!   SA the initiator has not installed yet;
//! * the initiator installs both halves of the new SA when the answer
//!   arrives, then deletes the old SA (outbound at once, inbound when the
//!   peer confirms).
use std::time::Duration;

use oxisec_crypto::Secret;
use oxisec_crypto::ke::{self, KeyExchange};
use oxisec_wire::{
    ExchangeType, HeaderRepr, KePayload, NotifyPayload, NotifyType, Payload, ProtocolId, SaPayload,
    TransformId, TsPayload,
};
use tracing::{debug, info, warn};

use super::ike_followup_ke::{self as followup, Failure, Followup, Plan, Step};
use super::ike_sa_init::NONCE_LEN;
use super::{Cx, Spawn, send_request, send_response};
use crate::api::{ChildId, Datagram, DownReason, Event, IkeId};
use crate::child::{self, Negotiated};
use crate::config::ChildMode;
use crate::keys::{self, Inputs, Seed};
use crate::proposal::{self, IkeProposal, ProposalSpec, Selected};
use crate::sa::{
    Active, ChildAgreed, ChildExchange, ChildState, Collision, IkeAgreed, IkeRekeyExchange, IkeSa,
    IkeState, PendingChild, Role, SaKeys, Task, loses,
};
use crate::ts::{self, TsRange};

mod ike_rekey;

use ike_rekey::respond_ike_rekey;
pub(crate) use ike_rekey::{IkePlan, finish_ike_responder, ike_rekey_response, start_rekey_ike};

/// How long to wait before retrying after TEMPORARY_FAILURE (§2.25: "MUST
/// wait"); randomised so that two peers do not retry in lock step.
const RETRY_MIN: Duration = Duration::from_secs(5);
const RETRY_SPREAD_MS: u64 = 10_000;

/// How long an IKE rekey waits for the peer's unfinished additional key
/// exchanges (a CHILD_SA they create would otherwise be stranded on the old
/// IKE SA).
const FOLLOWUP_WAIT: Duration = Duration::from_secs(2);

fn notify(ty: NotifyType) -> Payload {
    Payload::Notify(NotifyPayload::new(ty, Vec::new()))
}

fn find_notify(payloads: &[Payload], ty: NotifyType) -> Option<&NotifyPayload> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.ty == ty => Some(n),
        _ => None,
    })
}

struct Parts<'a> {
    sa: Option<&'a SaPayload>,
    nonce: Option<&'a [u8]>,
    ke: Option<&'a KePayload>,
    tsi: Option<&'a TsPayload>,
    tsr: Option<&'a TsPayload>,
}

fn parts(payloads: &[Payload]) -> Parts<'_> {
    let mut p = Parts {
        sa: None,
        nonce: None,
        ke: None,
        tsi: None,
        tsr: None,
    };
    for pl in payloads {
        match pl {
            Payload::Sa(x) => p.sa = Some(x),
            Payload::Nonce(x) => p.nonce = Some(x),
            Payload::Ke(x) => p.ke = Some(x),
            Payload::TsI(x) => p.tsi = Some(x),
            Payload::TsR(x) => p.tsr = Some(x),
            _ => {}
        }
    }
    p
}

fn ranges(p: Option<&TsPayload>) -> Option<Vec<TsRange>> {
    p?.selectors.iter().map(TsRange::from_wire).collect()
}

fn ts_payload(r: &[TsRange]) -> TsPayload {
    TsPayload {
        selectors: r.iter().map(|t| t.to_wire()).collect(),
    }
}

fn valid_nonce(n: &[u8]) -> bool {
    (16..=256).contains(&n.len())
}

fn retry_delay(cx: &mut Cx) -> Duration {
    let mut b = [0u8; 8];
    cx.rng.fill(&mut b);
    RETRY_MIN + Duration::from_millis(u64::from_be_bytes(b) % RETRY_SPREAD_MS)
}

fn esp_specs(sa: &IkeSa, name: &str) -> Vec<ProposalSpec> {
    sa.conn
        .children
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.esp_proposals.iter().map(|p| p.0.clone()).collect())
        .unwrap_or_default()
}

/// Whether our request for `pending` carries USE_TRANSPORT_MODE: a rekey
/// keeps the mode of the SA it replaces (RFC 7296 §1.3.3), a new child asks
/// when its configuration says transport and the selectors are host-to-host.
fn requests_transport(sa: &IkeSa, pending: &PendingChild, rekeys: Option<ChildId>) -> bool {
    match rekeys.and_then(|id| sa.children.iter().find(|c| c.id == id)) {
        Some(old) => old.mode == ChildMode::Transport,
        None => child::request_transport(
            child::config(&sa.conn, &pending.name),
            &pending.local_ts,
            &pending.remote_ts,
        ),
    }
}

/// The PFS group to start with: the one the child used before, else the
/// first configured.
fn pfs_group(specs: &[ProposalSpec], previous: Option<TransformId>) -> Option<TransformId> {
    previous.or_else(|| specs.iter().find_map(|s| s.ke.first().map(|a| a.id)))
}

// ----------------------------------------------------------------------------
// Initiator: CHILD_SAs
// ----------------------------------------------------------------------------

/// Creates an additional CHILD_SA from the named child configuration.
pub(crate) fn start_new_child(sa: &mut IkeSa, cx: &mut Cx, name: &str) {
    let Some(cfg) = sa.conn.children.iter().find(|c| c.name == name) else {
        warn!(connection = %sa.conn.name, child = name, "no such child configuration");
        return;
    };
    let exists = sa
        .children
        .iter()
        .any(|c| c.name == name && c.state != ChildState::Deleting);
    if exists {
        debug!(child = name, "CHILD_SA already up; not creating another");
        return;
    }
    let dynamic = child::Dynamic::of(sa);
    let pending = PendingChild {
        name: name.to_string(),
        spi_in: cx.alloc.child_spi(cx.rng),
        local_ts: child::resolve(&cfg.local_ts, &dynamic.local),
        remote_ts: child::resolve(&cfg.remote_ts, &dynamic.remote),
    };
    let group = pfs_group(&esp_specs(sa, name), None);
    send_child_request(sa, cx, pending, None, group, Vec::new());
}

/// Rekeys an installed CHILD_SA (§2.8), with PFS if its configuration asks.
pub(crate) fn start_rekey_child(sa: &mut IkeSa, cx: &mut Cx, id: ChildId) {
    if !sa
        .children
        .iter()
        .any(|c| c.id == id && c.state == ChildState::Installed)
    {
        return;
    }
    // Not while the peer is still rekeying it, and not before the peer
    // confirmed it: an SA we installed as the responder of a rekey stays
    // unconfirmed (its outbound half held back) until the peer deletes the
    // old one; if the peer has not even seen our answer yet, it would not
    // know the SA we rekey.
    let unconfirmed = sa
        .children
        .iter()
        .any(|c| c.id == id && c.deferred_outbound.is_some());
    if unconfirmed || followup::peer_rekeys_child(sa, id) {
        debug!("CHILD_SA rekey waits for the peer's exchange about it to finish");
        sa.delayed
            .push((cx.now + FOLLOWUP_WAIT, Task::RekeyChild(id)));
        return;
    }
    let Some(c) = sa.children.iter_mut().find(|c| c.id == id) else {
        return;
    };
    c.state = ChildState::Rekeying;
    let pending = PendingChild {
        name: c.name.clone(),
        spi_in: 0,
        local_ts: c.local_ts.clone(),
        remote_ts: c.remote_ts.clone(),
    };
    let previous = c.selected.ke.map(|a| a.id);
    let pending = PendingChild {
        spi_in: cx.alloc.child_spi(cx.rng),
        ..pending
    };
    let group = pfs_group(&esp_specs(sa, &pending.name), previous);
    info!(child = %pending.name, "rekeying CHILD_SA");
    send_child_request(sa, cx, pending, Some(id), group, Vec::new());
}

fn send_child_request(
    sa: &mut IkeSa,
    cx: &mut Cx,
    pending: PendingChild,
    rekeys: Option<ChildId>,
    group: Option<TransformId>,
    tried_groups: Vec<TransformId>,
) {
    let specs = esp_specs(sa, &pending.name);
    let cfg_proposals: Vec<_> = sa
        .conn
        .children
        .iter()
        .find(|c| c.name == pending.name)
        .map(|c| c.esp_proposals.clone())
        .unwrap_or_default();
    let share = match group.map(|g| ke::generate(g, cx.rng)).transpose() {
        Ok(s) => s,
        Err(e) => {
            warn!(child = %pending.name, error = %e, "cannot create a PFS key share");
            cx.alloc.child_spis.remove(&pending.spi_in);
            revert_rekey(sa, rekeys);
            return;
        }
    };
    let ni = cx.random(NONCE_LEN);
    let mut payloads = Vec::new();
    if let Some(old) = rekeys.and_then(|id| sa.children.iter().find(|c| c.id == id)) {
        payloads.push(Payload::Notify(NotifyPayload {
            protocol: ProtocolId::ESP,
            spi: old.spi_in.to_be_bytes().to_vec(),
            ty: NotifyType::REKEY_SA,
            data: Vec::new(),
        }));
    }
    let proposals = cfg_proposals
        .iter()
        .enumerate()
        .map(|(i, p)| p.to_wire(i as u8 + 1, pending.spi_in, true))
        .collect();
    if requests_transport(sa, &pending, rekeys) {
        payloads.push(notify(NotifyType::USE_TRANSPORT_MODE));
    }
    payloads.push(Payload::Sa(SaPayload { proposals }));
    payloads.push(Payload::Nonce(ni.clone()));
    if let Some(s) = &share {
        payloads.push(Payload::Ke(KePayload {
            group: s.group(),
            data: s.public_key().to_vec(),
        }));
    }
    payloads.push(Payload::TsI(ts_payload(&pending.local_ts)));
    payloads.push(Payload::TsR(ts_payload(&pending.remote_ts)));
    drop(specs);
    let ex = ChildExchange {
        pending,
        ni,
        ke: share,
        rekeys,
        tried_groups,
        superseded: false,
        followup: None,
    };
    send_request(
        sa,
        cx,
        ExchangeType::CREATE_CHILD_SA,
        payloads,
        Active::CreateChild(Box::new(ex)),
    );
}

/// A rekey that failed leaves the old SA as it was.
fn revert_rekey(sa: &mut IkeSa, rekeys: Option<ChildId>) {
    if let Some(c) = rekeys.and_then(|id| sa.child_mut(id))
        && c.state == ChildState::Rekeying
    {
        c.state = ChildState::Installed;
    }
}

/// Handles the answer to our CREATE_CHILD_SA for a CHILD_SA, or to one of
/// the IKE_FOLLOWUP_KE exchanges that follow it.
pub(crate) fn child_response(
    sa: &mut IkeSa,
    cx: &mut Cx,
    mut ex: ChildExchange,
    payloads: &[Payload],
) {
    if let Some(mut f) = ex.followup.take() {
        match followup::step(cx, &mut f.progress, payloads) {
            Ok(Step::Next(out)) => {
                ex.followup = Some(f);
                let active = Active::CreateChild(Box::new(ex));
                send_request(sa, cx, ExchangeType::IKE_FOLLOWUP_KE, out, active);
            }
            Ok(Step::Done) => {
                let Followup { agreed, progress } = *f;
                finish_child_initiator(sa, cx, ex, agreed, progress.g_ir, &progress.done);
            }
            Err(fail) => followup_failed_child(sa, cx, ex, fail),
        }
        return;
    }
    let ChildExchange {
        pending,
        ni,
        ke: share,
        rekeys,
        mut tried_groups,
        superseded,
        followup: _,
    } = ex;
    if let Some(err) = crate::engine::error_notify(payloads) {
        child_error(sa, cx, pending, rekeys, share, tried_groups, err, payloads);
        return;
    }
    let p = parts(payloads);
    let specs = esp_specs(sa, &pending.name);
    let selected =
        p.sa.and_then(|s| proposal::accept_response(&specs, &s.proposals, ProtocolId::ESP, false));
    let spi_out = selected.as_ref().and_then(child::peer_spi);
    let local_ts = ranges(p.tsi).filter(|t| !t.is_empty() && ts::all_within(t, &pending.local_ts));
    let remote_ts =
        ranges(p.tsr).filter(|t| !t.is_empty() && ts::all_within(t, &pending.remote_ts));
    let (Some(selected), Some(spi_out), Some(nr), Some(local_ts), Some(remote_ts)) = (
        selected,
        spi_out,
        p.nonce.filter(|n| valid_nonce(n)),
        local_ts,
        remote_ts,
    ) else {
        warn!(child = %pending.name, "CREATE_CHILD_SA answer does not match what we offered");
        return child_failed(
            sa,
            cx,
            pending,
            rekeys,
            "invalid CREATE_CHILD_SA response".into(),
        );
    };
    // PFS: the answer must use the group we sent, and carry its share.
    let g_ir = match (&share, selected.ke, p.ke) {
        (None, None, _) => None,
        (Some(s), Some(g), Some(k)) if g.id == s.group() && k.group == s.group() => {
            match s.shared_secret(&k.data) {
                Ok(x) => Some(x),
                Err(e) => {
                    return child_failed(
                        sa,
                        cx,
                        pending,
                        rekeys,
                        format!("invalid KE from peer: {e}"),
                    );
                }
            }
        }
        _ => {
            return child_failed(
                sa,
                cx,
                pending,
                rekeys,
                "PFS group mismatch in CREATE_CHILD_SA".into(),
            );
        }
    };
    tried_groups.clear();
    let remaining = selected.pending_addke();
    let mode = child::initiator_mode(
        child::config(&sa.conn, &pending.name),
        requests_transport(sa, &pending, rekeys),
        find_notify(payloads, NotifyType::USE_TRANSPORT_MODE).is_some(),
    );
    let agreed = ChildAgreed {
        selected,
        spi_out,
        nr: nr.to_vec(),
        local_ts,
        remote_ts,
        mode,
    };
    let mut ex = ChildExchange {
        pending,
        ni,
        ke: None,
        rekeys,
        tried_groups,
        superseded,
        followup: None,
    };
    if remaining.is_empty() {
        return finish_child_initiator(sa, cx, ex, agreed, g_ir, &[]);
    }
    let Some(link) = followup::link(payloads) else {
        let why = "CREATE_CHILD_SA answer lacks the ADDITIONAL_KEY_EXCHANGE notify".to_string();
        return child_failed(sa, cx, ex.pending, ex.rekeys, why);
    };
    match followup::start(cx, g_ir, remaining, link) {
        Ok((progress, out)) => {
            debug!(child = %ex.pending.name, "CREATE_CHILD_SA answered; additional key exchanges follow");
            ex.followup = Some(Box::new(Followup { agreed, progress }));
            let active = Active::CreateChild(Box::new(ex));
            send_request(sa, cx, ExchangeType::IKE_FOLLOWUP_KE, out, active);
        }
        Err(fail) => followup_failed_child(sa, cx, ex, fail),
    }
}

/// The additional key exchanges of our CHILD_SA exchange failed: no new
/// SA; after invalid key exchange data the IKE SA goes too (the ML-KEM
/// draft's rule for a ciphertext that fails its checks).
fn followup_failed_child(sa: &mut IkeSa, cx: &mut Cx, ex: ChildExchange, fail: Failure) {
    if matches!(fail, Failure::BadKeyExchange(_)) {
        warn!(connection = %sa.conn.name, "{fail}: deleting the IKE SA");
        sa.tasks.push_front(Task::DeleteIke);
    }
    child_failed(sa, cx, ex.pending, ex.rekeys, fail.to_string());
}

/// Installs the CHILD_SA our exchange negotiated (after the additional key
/// exchanges, if any) and settles a rekey.
fn finish_child_initiator(
    sa: &mut IkeSa,
    cx: &mut Cx,
    ex: ChildExchange,
    a: ChildAgreed,
    g_ir: Option<Secret>,
    additional: &[Secret],
) {
    let ChildExchange {
        pending,
        ni,
        rekeys,
        superseded,
        ..
    } = ex;
    let id = cx.alloc.child_id();
    // A refused, required transport mode: installed as tunnel so that the
    // delete removes the responder's half too, then deleted at once.
    let (mode, refused) = match &a.mode {
        Ok(m) => (*m, None),
        Err(why) => (ChildMode::Tunnel, Some(why.clone())),
    };
    let n = Negotiated {
        mode,
        initiator: true,
        g_ir: g_ir.as_ref().map(Secret::as_bytes),
        additional,
        ni: &ni,
        nr: &a.nr,
        defer_outbound: false,
        id,
        name: pending.name.clone(),
        selected: a.selected.clone(),
        spi_in: pending.spi_in,
        spi_out: a.spi_out,
        local_ts: a.local_ts.clone(),
        remote_ts: a.remote_ts.clone(),
    };
    if let Err(e) = child::install(sa, cx, n) {
        return child_failed(sa, cx, pending, rekeys, e);
    }
    if let Some(why) = refused {
        warn!(child = %pending.name, "CHILD_SA not usable, deleting it: {why}");
        sa.tasks.push_back(Task::DeleteChild(id));
    }
    child::log_up(
        &pending.name,
        pending.spi_in,
        a.spi_out,
        &a.local_ts,
        &a.remote_ts,
        &a.selected,
        rekeys.is_some(),
    );
    cx.event(Event::ChildUp {
        ike: sa.id,
        child: id,
        name: pending.name.clone(),
        spi_in: pending.spi_in,
        spi_out: a.spi_out,
    });
    if let Some(old_id) = rekeys {
        finish_child_rekey(sa, old_id, id, [ni, a.nr], superseded);
    }
}

/// Decides what happens to the old and the new SA after our rekey completed.
fn finish_child_rekey(
    sa: &mut IkeSa,
    old_id: ChildId,
    new_id: ChildId,
    ours: [Vec<u8>; 2],
    superseded: bool,
) {
    let Some(old) = sa.child_mut(old_id) else {
        // The peer deleted the old SA while we were rekeying it (§2.25.1),
        // on purpose or because its crossing rekey won: the new one has no
        // reason to exist.
        debug!("rekeyed CHILD_SA was deleted meanwhile; deleting its successor");
        if let Some(dup) = sa.child_mut(new_id) {
            dup.redundant = superseded;
        }
        sa.tasks.push_front(Task::DeleteChild(new_id));
        return;
    };
    match old.collision.take() {
        Some(col) if loses(&ours, &col.nonces) => {
            // Our new SA holds the lowest nonce: it is redundant and we
            // delete it; the peer's successor stays and the peer, whose
            // exchange won, deletes the old SA.
            info!(child = %old.name, "simultaneous rekey lost: deleting our redundant CHILD_SA");
            old.state = ChildState::Rekeyed;
            old.successor = Some(col.created);
            if let Some(dup) = sa.child_mut(new_id) {
                dup.redundant = true;
            }
            sa.tasks.push_front(Task::DeleteChild(new_id));
        }
        Some(col) => {
            info!(child = %old.name, "simultaneous rekey won: the peer deletes its redundant CHILD_SA");
            old.state = ChildState::Rekeyed;
            old.successor = Some(new_id);
            sa.tasks.push_front(Task::DeleteChild(old_id));
            if let Some(dup) = sa.child_mut(col.created) {
                dup.redundant = true;
            }
        }
        None => {
            old.state = ChildState::Rekeyed;
            old.successor = Some(new_id);
            sa.tasks.push_front(Task::DeleteChild(old_id));
        }
    }
}

fn child_failed(
    sa: &mut IkeSa,
    cx: &mut Cx,
    pending: PendingChild,
    rekeys: Option<ChildId>,
    why: String,
) {
    cx.alloc.child_spis.remove(&pending.spi_in);
    match rekeys {
        Some(old_id) => {
            warn!(child = %pending.name, "CHILD_SA rekey failed: {why}");
            // If the peer's crossing rekey succeeded, its SA takes over.
            if let Some(old) = sa.child_mut(old_id) {
                match old.collision.take() {
                    Some(col) => {
                        old.state = ChildState::Rekeyed;
                        old.successor = Some(col.created);
                    }
                    None => old.state = ChildState::Installed,
                }
            }
        }
        None => {
            warn!(connection = %sa.conn.name, child = %pending.name, "CHILD_SA not created: {why}");
            let id = cx.alloc.child_id();
            cx.event(Event::ChildDown {
                ike: sa.id,
                child: id,
                name: pending.name,
                reason: DownReason::Failed(why),
            });
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn child_error(
    sa: &mut IkeSa,
    cx: &mut Cx,
    pending: PendingChild,
    rekeys: Option<ChildId>,
    share: Option<Box<dyn KeyExchange>>,
    mut tried: Vec<TransformId>,
    err: NotifyType,
    payloads: &[Payload],
) {
    match err {
        NotifyType::INVALID_KE_PAYLOAD => {
            let wanted = find_notify(payloads, err)
                .and_then(|n| n.data.get(..2))
                .map(|b| TransformId(u16::from_be_bytes([b[0], b[1]])));
            let specs = esp_specs(sa, &pending.name);
            let ok = wanted.filter(|g| {
                !tried.contains(g) && specs.iter().any(|s| s.ke.iter().any(|a| a.id == *g))
            });
            if let Some(g) = ok {
                if let Some(s) = share {
                    tried.push(s.group());
                }
                tried.push(g);
                debug!(child = %pending.name, group = g.0, "peer wants another PFS group; retrying");
                send_child_request(sa, cx, pending, rekeys, Some(g), tried);
                return;
            }
            child_failed(
                sa,
                cx,
                pending,
                rekeys,
                "peer asked for a PFS group we do not offer".into(),
            );
        }
        NotifyType::TEMPORARY_FAILURE => {
            let delay = retry_delay(cx);
            debug!(child = %pending.name, ?delay, "peer answered TEMPORARY_FAILURE; retrying later");
            let task = match rekeys {
                Some(id) => Task::RekeyChild(id),
                None => Task::CreateChild(pending.name.clone()),
            };
            cx.alloc.child_spis.remove(&pending.spi_in);
            let collided = rekeys
                .and_then(|id| sa.child_mut(id))
                .is_some_and(|c| c.collision.is_some());
            if collided {
                // The peer's crossing rekey stands; ours is not retried.
                return child_failed(
                    sa,
                    cx,
                    pending,
                    rekeys,
                    "superseded by the peer's rekey".into(),
                );
            }
            revert_rekey(sa, rekeys);
            sa.delayed.push((cx.now + delay, task));
        }
        NotifyType::CHILD_SA_NOT_FOUND if rekeys.is_some() => {
            // §2.25: the peer lost the SA; drop ours silently and start over.
            cx.alloc.child_spis.remove(&pending.spi_in);
            if let Some(pos) = rekeys.and_then(|id| sa.children.iter().position(|c| c.id == id)) {
                let mut c = sa.children.remove(pos);
                warn!(child = %c.name, "peer does not know the CHILD_SA we rekey; creating it anew");
                super::remove_child_from_dataplane(cx, &mut c);
                cx.alloc.child_spis.remove(&c.spi_in);
                cx.event(Event::ChildDown {
                    ike: sa.id,
                    child: c.id,
                    name: c.name.clone(),
                    reason: DownReason::Failed("peer lost the SA".into()),
                });
                sa.tasks.push_back(Task::CreateChild(pending.name));
            }
            // Otherwise the peer deleted it on purpose meanwhile: it stays gone.
        }
        other => child_failed(sa, cx, pending, rekeys, format!("peer answered {other}")),
    }
}

// ----------------------------------------------------------------------------
// Responder
// ----------------------------------------------------------------------------

/// Answers a CREATE_CHILD_SA request.
pub(crate) fn respond(
    sa: &mut IkeSa,
    cx: &mut Cx,
    dgram: &Datagram,
    hdr: &HeaderRepr,
    payloads: Vec<Payload>,
) -> Option<Spawn> {
    let reply = |sa: &mut IkeSa, cx: &mut Cx, out: Vec<Payload>| {
        send_response(
            sa,
            cx,
            ExchangeType::CREATE_CHILD_SA,
            hdr.message_id,
            &dgram.data,
            out,
        );
    };
    // §2.25.2: nothing new on an SA that is going away.
    if sa.state != IkeState::Established || sa.rekeyed_to.is_some() {
        reply(sa, cx, vec![notify(NotifyType::TEMPORARY_FAILURE)]);
        return None;
    }
    let p = parts(&payloads);
    let (Some(sa_p), Some(ni)) = (p.sa, p.nonce) else {
        reply(sa, cx, vec![notify(NotifyType::INVALID_SYNTAX)]);
        return None;
    };
    if !valid_nonce(ni) {
        reply(sa, cx, vec![notify(NotifyType::INVALID_SYNTAX)]);
        return None;
    }
    if sa_p
        .proposals
        .first()
        .is_some_and(|p| p.protocol == ProtocolId::IKE)
    {
        return respond_ike_rekey(sa, cx, hdr, dgram, sa_p, ni, p.ke);
    }
    match respond_child(sa, cx, &payloads, sa_p, ni, p.ke, p.tsi, p.tsr) {
        Ok(out) | Err(out) => reply(sa, cx, out),
    }
    None
}

/// Responder: a CHILD_SA the peer's CREATE_CHILD_SA negotiated, to install
/// at once or after the additional key exchanges.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    choice: child::Choice,
    ni: Vec<u8>,
    nr: Vec<u8>,
    pub(crate) spi_in: u32,
    /// The CHILD_SA it rekeys.
    old: Option<(ChildId, String)>,
    mode: ChildMode,
}

impl ChildPlan {
    /// The CHILD_SA this plan replaces.
    pub(crate) fn rekeys(&self) -> Option<ChildId> {
        self.old.as_ref().map(|(id, _)| *id)
    }
}

/// Whether our own proposals for child `name` ask for additional key exchanges.
fn we_want_addke(sa: &IkeSa, name: &str) -> bool {
    esp_specs(sa, name).iter().any(ProposalSpec::has_addke)
}

/// A new or rekeyed CHILD_SA for the peer. `Err` carries an error answer.
#[allow(clippy::too_many_arguments)]
fn respond_child(
    sa: &mut IkeSa,
    cx: &mut Cx,
    payloads: &[Payload],
    sa_p: &SaPayload,
    ni: &[u8],
    ke_p: Option<&KePayload>,
    tsi_p: Option<&TsPayload>,
    tsr_p: Option<&TsPayload>,
) -> Result<Vec<Payload>, Vec<Payload>> {
    if matches!(sa.active, Some(Active::RekeyIke(_))) {
        return Err(vec![notify(NotifyType::TEMPORARY_FAILURE)]);
    }
    let rekey = find_notify(payloads, NotifyType::REKEY_SA);
    let old = match rekey {
        None => None,
        Some(n) => {
            let spi = <[u8; 4]>::try_from(n.spi.as_slice())
                .map(u32::from_be_bytes)
                .ok();
            let found = spi.and_then(|s| sa.children.iter().find(|c| c.spi_out == s));
            let Some(old) = found else {
                debug!("peer rekeys a CHILD_SA we do not have");
                return Err(vec![Payload::Notify(NotifyPayload {
                    protocol: n.protocol,
                    spi: n.spi.clone(),
                    ty: NotifyType::CHILD_SA_NOT_FOUND,
                    data: Vec::new(),
                })]);
            };
            if matches!(old.state, ChildState::Deleting | ChildState::Rekeyed) {
                return Err(vec![notify(NotifyType::TEMPORARY_FAILURE)]);
            }
            if old.state == ChildState::Rekeying
                && (followup::offers_addke(sa_p) || we_want_addke(sa, &old.name))
            {
                let ours = match &sa.active {
                    Some(Active::CreateChild(ex)) if ex.rekeys == Some(old.id) => Some(&ex.ni),
                    _ => None,
                };
                if ours.is_none_or(|n| followup::we_proceed(n, ni)) {
                    debug!(child = %old.name, "crossing rekeys with additional key exchanges: ours proceeds, the peer's is refused");
                    return Err(vec![notify(NotifyType::TEMPORARY_FAILURE)]);
                }
                debug!(child = %old.name, "crossing rekeys with additional key exchanges: the peer's proceeds");
            }
            Some((old.id, old.name.clone()))
        }
    };
    let (Some(tsi), Some(tsr)) = (ranges(tsi_p), ranges(tsr_p)) else {
        return Err(vec![notify(NotifyType::TS_UNACCEPTABLE)]);
    };
    let only = old.as_ref().map(|(_, n)| n.as_str());
    let conn = sa.conn.clone();
    let dynamic = child::Dynamic::of(sa);
    let choice = child::choose(&conn, only, &sa_p.proposals, &tsi, &tsr, false, &dynamic)
        .map_err(|n| vec![notify(n)])?;
    let requested = find_notify(payloads, NotifyType::USE_TRANSPORT_MODE).is_some();
    let mode = child::responder_mode(
        child::config(&conn, &choice.name),
        requested,
        &choice.local_ts,
        &choice.remote_ts,
    )
    .map_err(|why| {
        info!(child = %choice.name, "no CHILD_SA for the peer's request: {why}");
        vec![notify(NotifyType::NO_PROPOSAL_CHOSEN)]
    })?;
    // PFS: the KE payload must be for the selected group (§1.3.1).
    let pfs = match (choice.selected.ke, ke_p) {
        (None, _) => None,
        (Some(g), Some(k)) if k.group == g.id => {
            let (ours, g_ir) = ke::respond(g.id, &k.data, cx.rng).map_err(|e| match e {
                oxisec_crypto::CryptoError::Unsupported(_) => {
                    vec![notify(NotifyType::NO_PROPOSAL_CHOSEN)]
                }
                _ => vec![notify(NotifyType::INVALID_SYNTAX)],
            })?;
            Some((g.id, ours, g_ir))
        }
        (Some(g), _) => {
            return Err(vec![Payload::Notify(NotifyPayload::new(
                NotifyType::INVALID_KE_PAYLOAD,
                g.id.0.to_be_bytes().to_vec(),
            ))]);
        }
    };
    let nr = cx.random(NONCE_LEN);
    let spi_in = cx.alloc.child_spi(cx.rng);
    let mut out = Vec::new();
    if mode == ChildMode::Transport {
        out.push(notify(NotifyType::USE_TRANSPORT_MODE));
    }
    out.extend([
        Payload::Sa(SaPayload {
            proposals: vec![
                choice
                    .selected
                    .to_wire(ProtocolId::ESP, spi_in.to_be_bytes().to_vec()),
            ],
        }),
        Payload::Nonce(nr.clone()),
    ]);
    let g_ir = pfs.map(|(group, data, g_ir)| {
        out.push(Payload::Ke(KePayload { group, data }));
        g_ir
    });
    out.push(Payload::TsI(ts_payload(&choice.remote_ts)));
    out.push(Payload::TsR(ts_payload(&choice.local_ts)));
    let remaining = choice.selected.pending_addke();
    let plan = ChildPlan {
        choice,
        ni: ni.to_vec(),
        nr,
        spi_in,
        old,
        mode,
    };
    if remaining.is_empty() {
        finish_child_responder(sa, cx, plan, g_ir, &[]).map_err(|n| vec![notify(n)])?;
    } else {
        out.push(followup::expect(sa, cx, g_ir, remaining, Plan::Child(plan)));
    }
    Ok(out)
}

/// Responder: installs the peer's new CHILD_SA (before the answer goes out:
/// make-before-break) and records what it replaces.
pub(crate) fn finish_child_responder(
    sa: &mut IkeSa,
    cx: &mut Cx,
    plan: ChildPlan,
    g_ir: Option<Secret>,
    additional: &[Secret],
) -> Result<(), NotifyType> {
    let ChildPlan {
        choice,
        ni,
        nr,
        spi_in,
        old,
        mode,
    } = plan;
    // The SA being rekeyed may have gone during the additional exchanges.
    let old = old.filter(|(id, _)| {
        sa.children
            .iter()
            .any(|c| c.id == *id && c.state != ChildState::Deleting)
    });
    let id = cx.alloc.child_id();
    let n = Negotiated {
        mode,
        initiator: false,
        g_ir: g_ir.as_ref().map(Secret::as_bytes),
        additional,
        ni: &ni,
        nr: &nr,
        defer_outbound: old.is_some(),
        id,
        name: choice.name.clone(),
        selected: choice.selected.clone(),
        spi_in,
        spi_out: choice.spi_out,
        local_ts: choice.local_ts.clone(),
        remote_ts: choice.remote_ts.clone(),
    };
    if let Err(e) = child::install(sa, cx, n) {
        warn!(child = %choice.name, error = %e, "cannot install CHILD_SA");
        cx.alloc.child_spis.remove(&spi_in);
        return Err(NotifyType::NO_PROPOSAL_CHOSEN);
    }
    child::log_up(
        &choice.name,
        spi_in,
        choice.spi_out,
        &choice.local_ts,
        &choice.remote_ts,
        &choice.selected,
        old.is_some(),
    );
    cx.event(Event::ChildUp {
        ike: sa.id,
        child: id,
        name: choice.name.clone(),
        spi_in,
        spi_out: choice.spi_out,
    });
    if let Some(o) = old.and_then(|(old_id, _)| sa.child_mut(old_id)) {
        if o.state == ChildState::Rekeying {
            // Our own rekey of this SA crosses the peer's (§2.8.1).
            o.collision = Some(Collision {
                created: id,
                nonces: [ni, nr],
            });
        } else {
            o.state = ChildState::Rekeyed;
            o.successor = Some(id);
        }
    }
    Ok(())
}
