//! IKE_FOLLOWUP_KE (RFC 9370 §2.2.4): the additional key exchanges of a
//! CREATE_CHILD_SA that creates or rekeys a CHILD_SA or rekeys the IKE SA —
//! one exchange per negotiated ADDKE transform, in transform type order,
//! each linked to the previous one by the ADDITIONAL_KEY_EXCHANGE notify
//! whose data only the responder interprets.
//!
//! All of them run on the existing IKE SA. The new SA comes into being only
//! after the last one, keyed from SK(0) | Ni | Nr | SK(1) | ... | SK(n)
//! (see `oxisec_crypto::kdf::child_keymat_multi` and
//! `rekey_skeyseed_multi`); until then nothing is installed, so an
//! abandoned chain leaves no half-made SA behind.
//!
//! Collisions. Two crossing rekeys of the same SA are settled by their
//! nonces (RFC 7296 §2.8) when neither carries additional key exchanges.
//! When either does, the responder answers the crossing request with
//! TEMPORARY_FAILURE and its initiator retries after a random delay
//! (§2.25): settling by nonces would need the peer's new SA, which does not
//! exist until its follow-up exchanges are done. Both peers see the same
//! two requests and apply the same rule, so they agree on the outcome.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use oxisec_crypto::Secret;
use oxisec_crypto::ke::{self, KeyExchange};
use oxisec_wire::{
    ExchangeType, HeaderRepr, KePayload, NotifyPayload, NotifyType, Payload, SaPayload,
    TransformId, TransformType,
};
use tracing::{debug, warn};

use super::create_child_sa::{self, ChildPlan, IkePlan};
use super::{Cx, Spawn, send_response};
use crate::api::Datagram;
use crate::sa::IkeSa;

/// The least time a responder keeps the state of an unfinished chain.
/// RFC 9370 suggests 5 to 20 seconds for a peer that lost its state; but a
/// peer whose answer was lost retransmits its request for as long as its
/// retransmission schedule lasts, so the state lives that long (see
/// [`keep_for`]). There is at most one chain per IKE SA.
const RESPONDER_MIN_WAIT: Duration = Duration::from_secs(20);

/// How long to wait for the next request of a chain: the whole
/// retransmission schedule (our own, as the best guess of the peer's).
fn keep_for(cx: &Cx) -> Duration {
    cx.config.retransmit.span().max(RESPONDER_MIN_WAIT)
}

/// A retransmitted request was answered from the cache: if it belongs to
/// a pending chain, the peer is still at it.
pub(crate) fn peer_still_at_it(sa: &mut IkeSa, cx: &Cx) {
    let wait = keep_for(cx);
    if let Some(p) = sa.followup.as_mut() {
        p.deadline = p.deadline.max(cx.now + wait);
    }
}

/// The longest link data we echo; ours are 8 bytes.
const MAX_LINK: usize = 64;

/// Initiator: how far the additional key exchanges have come.
#[derive(Debug)]
pub(crate) struct Progress {
    /// SK(0), the CREATE_CHILD_SA's shared secret; absent without a KE payload.
    pub g_ir: Option<Secret>,
    /// SK(1), SK(2), ...: secrets of the finished follow-up exchanges.
    pub done: Vec<Secret>,
    /// Methods still to run, the first one in flight.
    pub remaining: VecDeque<TransformId>,
    /// Our key share for the exchange in flight.
    pub share: Box<dyn KeyExchange>,
}

/// Initiator: what the CREATE_CHILD_SA agreed (`T`) and the follow-ups so far.
#[derive(Debug)]
pub(crate) struct Followup<T> {
    pub agreed: T,
    pub progress: Progress,
}

/// Responder: an unfinished chain of the peer's.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The link data we sent last; the next request must echo it.
    pub link: Vec<u8>,
    pub deadline: Instant,
    pub g_ir: Option<Secret>,
    pub done: Vec<Secret>,
    pub remaining: VecDeque<TransformId>,
    pub plan: Plan,
}

/// Responder: what the chain creates when it completes.
#[derive(Debug)]
pub(crate) enum Plan {
    Child(ChildPlan),
    Ike(IkePlan),
}

/// Where an initiator's chain stands after a response.
pub(crate) enum Step {
    /// Send this IKE_FOLLOWUP_KE request next.
    Next(Vec<Payload>),
    /// Every additional key exchange is done.
    Done,
}

/// Why an initiator's chain failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The peer refused, or its answer breaks the protocol: the new SA is
    /// not created, the IKE SA stays.
    Refused(String),
    /// The peer's key exchange data is invalid (for ML-KEM, a ciphertext of
    /// the wrong size): the ML-KEM draft requires deleting the IKE SA.
    BadKeyExchange(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused(s) | Failure::BadKeyExchange(s) => f.write_str(s),
        }
    }
}

/// Crossing rekeys of the same SA where either carries additional key
/// exchanges: the exchange whose initiator nonce is higher proceeds, the
/// other one is refused with TEMPORARY_FAILURE. Both peers know both
/// initiator nonces (their own request's and the one they received), so
/// they agree without waiting for the answers; nonces compare as byte
/// strings, as in RFC 7296 §2.8.1.
pub(crate) fn we_proceed(our_ni: &[u8], their_ni: &[u8]) -> bool {
    our_ni > their_ni
}

/// Whether the peer's pending chain rekeys CHILD_SA `id`: our own rekey of
/// it waits until that chain is done.
pub(crate) fn peer_rekeys_child(sa: &IkeSa, id: crate::api::ChildId) -> bool {
    sa.followup
        .as_ref()
        .is_some_and(|f| matches!(&f.plan, Plan::Child(c) if c.rekeys() == Some(id)))
}

/// Whether an SA payload offers any additional key exchange other than NONE.
pub(crate) fn offers_addke(sa: &SaPayload) -> bool {
    sa.proposals.iter().any(|p| {
        p.transforms
            .iter()
            .any(|t| is_addke(t.ty) && t.id != oxisec_wire::ke::NONE)
    })
}

fn is_addke(ty: TransformType) -> bool {
    (TransformType::ADDKE1.0..=TransformType::ADDKE7.0).contains(&ty.0)
}

/// The link data of an ADDITIONAL_KEY_EXCHANGE notify, if there is one.
pub(crate) fn link(payloads: &[Payload]) -> Option<Vec<u8>> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.ty == NotifyType::ADDITIONAL_KEY_EXCHANGE => {
            (n.data.len() <= MAX_LINK).then(|| n.data.clone())
        }
        _ => None,
    })
}

fn link_notify(link: Vec<u8>) -> Payload {
    Payload::Notify(NotifyPayload::new(
        NotifyType::ADDITIONAL_KEY_EXCHANGE,
        link,
    ))
}

fn ke_payload(payloads: &[Payload]) -> Option<&KePayload> {
    payloads.iter().find_map(|p| match p {
        Payload::Ke(k) => Some(k),
        _ => None,
    })
}

/// Initiator, after the CREATE_CHILD_SA response: the first follow-up
/// request, for `remaining[0]`.
pub(crate) fn start(
    cx: &mut Cx,
    g_ir: Option<Secret>,
    remaining: Vec<TransformId>,
    link: Vec<u8>,
) -> Result<(Progress, Vec<Payload>), Failure> {
    let remaining: VecDeque<TransformId> = remaining.into();
    let first = *remaining
        .front()
        .ok_or_else(|| Failure::Refused("no additional key exchange to start".into()))?;
    let share = ke::generate(first, cx.rng)
        .map_err(|e| Failure::Refused(format!("cannot create a key share: {e}")))?;
    let out = request(&*share, link);
    Ok((
        Progress {
            g_ir,
            done: Vec::new(),
            remaining,
            share,
        },
        out,
    ))
}

fn request(share: &dyn KeyExchange, link: Vec<u8>) -> Vec<Payload> {
    vec![
        Payload::Ke(KePayload {
            group: share.group(),
            data: share.public_key().to_vec(),
        }),
        link_notify(link),
    ]
}

/// Initiator: handles the answer to a follow-up request.
pub(crate) fn step(cx: &mut Cx, p: &mut Progress, payloads: &[Payload]) -> Result<Step, Failure> {
    if let Some(err) = crate::engine::error_notify(payloads) {
        return Err(Failure::Refused(format!("peer answered {err}")));
    }
    let method = p.share.group();
    let k = ke_payload(payloads)
        .filter(|k| k.group == method)
        .ok_or_else(|| {
            Failure::Refused(format!(
                "IKE_FOLLOWUP_KE answer without a KE payload for method {}",
                method.0
            ))
        })?;
    let secret = p.share.shared_secret(&k.data).map_err(|e| {
        Failure::BadKeyExchange(format!("invalid key exchange data from the peer: {e}"))
    })?;
    p.done.push(secret);
    p.remaining.pop_front();
    let Some(&next) = p.remaining.front() else {
        return Ok(Step::Done);
    };
    let link = link(payloads).ok_or_else(|| {
        Failure::Refused("IKE_FOLLOWUP_KE answer without the link for the next exchange".into())
    })?;
    p.share = ke::generate(next, cx.rng)
        .map_err(|e| Failure::Refused(format!("cannot create a key share: {e}")))?;
    Ok(Step::Next(request(&*p.share, link)))
}

/// Responder: remembers a chain whose CREATE_CHILD_SA we are answering and
/// returns the notify that links our answer to the first follow-up.
pub(crate) fn expect(
    sa: &mut IkeSa,
    cx: &mut Cx,
    g_ir: Option<Secret>,
    remaining: Vec<TransformId>,
    plan: Plan,
) -> Payload {
    if let Some(old) = sa.followup.take() {
        debug!(peer = %sa.remote, "peer abandoned its previous additional key exchanges");
        old.abort(cx);
    }
    let link = cx.random(8);
    sa.followup = Some(Box::new(Pending {
        link: link.clone(),
        deadline: cx.now + keep_for(cx),
        g_ir,
        done: Vec::new(),
        remaining: remaining.into(),
        plan,
    }));
    link_notify(link)
}

impl Pending {
    /// Gives back what the unfinished chain holds (a reserved CHILD_SA SPI).
    pub(crate) fn abort(self, cx: &mut Cx) {
        if let Plan::Child(c) = &self.plan {
            cx.alloc.child_spis.remove(&c.spi_in);
        }
    }
}

/// Responder: drops a chain the peer stopped continuing.
pub(crate) fn expire(sa: &mut IkeSa, cx: &mut Cx) {
    if sa.followup.as_ref().is_some_and(|p| p.deadline <= cx.now) {
        debug!(peer = %sa.remote, "additional key exchanges not continued in time; dropping their state");
        if let Some(p) = sa.followup.take() {
            p.abort(cx);
        }
    }
}

/// Responder: answers an IKE_FOLLOWUP_KE request.
pub(crate) fn respond(
    sa: &mut IkeSa,
    cx: &mut Cx,
    dgram: &Datagram,
    hdr: &HeaderRepr,
    payloads: &[Payload],
) -> Option<Spawn> {
    let reply = |sa: &mut IkeSa, cx: &mut Cx, out: Vec<Payload>| {
        send_response(
            sa,
            cx,
            ExchangeType::IKE_FOLLOWUP_KE,
            hdr.message_id,
            &dgram.data,
            out,
        );
    };
    let notify = |ty| vec![Payload::Notify(NotifyPayload::new(ty, Vec::new()))];
    expire(sa, cx);
    let theirs = link(payloads);
    let known = sa
        .followup
        .as_ref()
        .is_some_and(|p| theirs.as_ref() == Some(&p.link));
    if !known {
        debug!(peer = %dgram.remote, "IKE_FOLLOWUP_KE for a chain we do not know");
        reply(sa, cx, notify(NotifyType::STATE_NOT_FOUND));
        return None;
    }
    let mut p = sa.followup.take()?;
    let method = *p.remaining.front()?;
    let answer = ke_payload(payloads)
        .filter(|k| k.group == method)
        .ok_or(NotifyType::INVALID_SYNTAX)
        .and_then(|k| ke::respond(method, &k.data, cx.rng).map_err(|_| NotifyType::INVALID_SYNTAX));
    let (ours, secret) = match answer {
        Ok(x) => x,
        Err(n) => {
            warn!(peer = %dgram.remote, method = method.0, "invalid additional key exchange; the new SA is not created");
            p.abort(cx);
            reply(sa, cx, notify(n));
            return None;
        }
    };
    p.done.push(secret);
    p.remaining.pop_front();
    let ke_out = Payload::Ke(KePayload {
        group: method,
        data: ours,
    });
    if !p.remaining.is_empty() {
        p.link = cx.random(8);
        p.deadline = cx.now + keep_for(cx);
        let out = vec![ke_out, link_notify(p.link.clone())];
        sa.followup = Some(p);
        reply(sa, cx, out);
        return None;
    }
    let Pending {
        g_ir, done, plan, ..
    } = *p;
    match plan {
        Plan::Child(plan) => {
            let out = match create_child_sa::finish_child_responder(sa, cx, plan, g_ir, &done) {
                Ok(()) => vec![ke_out],
                Err(n) => notify(n),
            };
            reply(sa, cx, out);
            None
        }
        Plan::Ike(plan) => match create_child_sa::finish_ike_responder(sa, cx, plan, g_ir, &done) {
            Ok(spawn) => {
                reply(sa, cx, vec![ke_out]);
                Some(spawn)
            }
            Err(n) => {
                reply(sa, cx, notify(n));
                None
            }
        },
    }
}
