//! Exchanges, one per module, and what they share: sending requests and
//! responses through the SA's windows, protection of messages, installing and
//! removing CHILD_SAs, closing an SA.
use std::time::Instant;

use oxisec_crypto::Rng;
use oxisec_wire::{
    ExchangeType, Flags, HeaderRepr, Message, NotifyPayload, NotifyType, Payload, parse_payloads,
    rules,
};
use tracing::{debug, info};

use crate::api::*;
use crate::config::Config;
use crate::engine::{Allocator, Outputs, Stats};
use crate::sa::{Active, ChildSa, IkeSa, IkeState, Role, Task};

pub(crate) mod create_child_sa;
pub(crate) mod ike_auth;
pub(crate) mod ike_followup_ke;
pub(crate) mod ike_intermediate;
pub(crate) mod ike_sa_init;
pub(crate) mod informational;
pub(crate) mod lifecycle;
mod protect;

/// Work for the engine's SA table that a handler cannot do with one SA: a
/// new IKE SA from a rekey, and CHILD_SAs (with queued tasks) moving from
/// one IKE SA to another.
#[derive(Default)]
pub(crate) struct Spawn {
    pub new: Option<IkeSa>,
    pub moves: Vec<(IkeId, IkeId)>,
    /// INITIAL_CONTACT (RFC 7296 §2.4): the peer forgot everything, so every
    /// other IKE SA of this connection with this peer identity goes, without
    /// a delete exchange.
    pub initial_contact: Option<(IkeId, crate::identity::Identity)>,
    /// CHILD_SAs (and their queued work) taken from a closing IKE SA, for
    /// the IKE SA that replaced it.
    pub adopt: Option<(IkeId, crate::sa::Carry)>,
    /// An IKE SA left redundant by crossing rekeys (§2.8.2), replaced by the
    /// second one: it closes without an IkeDown event.
    pub redundant: Option<(IkeId, IkeId)>,
    /// The peer deleted the redundant SA its losing rekey made: (the SA
    /// both rekeys replaced, the deleted SA) — the crossing is over.
    pub crossing_lost: Option<(IkeId, IkeId)>,
}

impl Spawn {
    pub fn ike(new: IkeSa) -> Spawn {
        Spawn {
            new: Some(new),
            ..Spawn::default()
        }
    }

    pub fn moving(from: IkeId, to: IkeId) -> Spawn {
        Spawn {
            moves: vec![(from, to)],
            ..Spawn::default()
        }
    }

    pub fn then_move(mut self, from: IkeId, to: IkeId) -> Spawn {
        self.moves.push((from, to));
        self
    }
}

/// What an exchange handler may use besides its SA.
pub(crate) struct Cx<'a> {
    pub now: Instant,
    pub rng: &'a mut dyn Rng,
    pub out: &'a mut Outputs,
    pub alloc: &'a mut Allocator,
    pub config: &'a Config,
    pub stats: &'a mut Stats,
    pub error_budget: &'a mut crate::ratelimit::RateLimit,
    /// Wall-clock time, if the driver told us (certificate validity).
    pub wall: Option<std::time::SystemTime>,
}

impl Cx<'_> {
    pub fn random(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.rng.fill(&mut v);
        v
    }

    /// A non-zero 64-bit IKE SPI.
    pub fn ike_spi(&mut self) -> u64 {
        loop {
            let mut b = [0u8; 8];
            self.rng.fill(&mut b);
            let spi = u64::from_be_bytes(b);
            if spi != 0 {
                return spi;
            }
        }
    }

    pub fn event(&mut self, e: Event) {
        self.out.events.push_back(e);
    }
}

/// The header of a message of ours on this SA.
pub(crate) fn header(
    sa: &IkeSa,
    exchange: ExchangeType,
    msg_id: u32,
    response: bool,
) -> HeaderRepr {
    let mut flags = 0;
    if sa.is_initiator() {
        flags |= Flags::INITIATOR;
    }
    if response {
        flags |= Flags::RESPONSE;
    }
    HeaderRepr {
        spi_i: sa.spi_i,
        spi_r: sa.spi_r,
        next_payload: oxisec_wire::PayloadType::NONE,
        version: 0x20,
        exchange,
        flags: Flags(flags),
        message_id: msg_id,
        length: 0,
    }
}

/// Serialises (and, past IKE_SA_INIT, protects) a message of ours.
/// Serialises (and, past IKE_SA_INIT, protects) a message of ours: one
/// datagram, or several SKF fragments when fragmentation was negotiated and
/// the message would not fit (RFC 7383).
fn build(sa: &IkeSa, cx: &mut Cx, hdr: HeaderRepr, payloads: Vec<Payload>) -> Option<Vec<Vec<u8>>> {
    if hdr.exchange == ExchangeType::IKE_SA_INIT {
        return Some(vec![
            Message {
                header: hdr,
                payloads,
            }
            .emit(),
        ]);
    }
    let keys = sa.keys.as_ref()?;
    let sealed = if sa.fragmentation {
        let max = max_fragment(sa, cx);
        protect::seal_fragmented(keys, cx.rng, hdr, &payloads, max)
    } else {
        protect::seal(keys, cx.rng, hdr, &payloads).map(|b| vec![b])
    };
    match sealed {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::error!(error = %e, "cannot protect an outgoing IKE message");
            None
        }
    }
}

/// The largest IKE message one fragment may be: the configured IP datagram
/// size minus IP and UDP headers and the non-ESP marker.
fn max_fragment(sa: &IkeSa, cx: &Cx) -> usize {
    let ip = if sa.remote.is_ipv4() { 20 } else { 40 };
    let marker = if sa.local.port() == 500 { 0 } else { 4 };
    cx.config
        .fragmentation
        .size
        .saturating_sub(ip + 8 + marker)
        .max(128)
}

fn transmit_all(sa: &IkeSa, cx: &mut Cx, packets: &[Vec<u8>]) {
    for p in packets {
        cx.out
            .transmits
            .push_back(Transmit::ike(sa.local, sa.remote, p.clone()));
    }
}

/// Sends a request and remembers it for retransmission. The caller has
/// checked that the request window is free.
pub(crate) fn send_request(
    sa: &mut IkeSa,
    cx: &mut Cx,
    exchange: ExchangeType,
    payloads: Vec<Payload>,
    active: Active,
) {
    debug_assert!(sa.requests.is_free());
    let msg_id = sa.requests.allocate();
    let hdr = header(sa, exchange, msg_id, false);
    let Some(packets) = build(sa, cx, hdr, payloads) else {
        close(sa, cx, DownReason::Failed("could not build request".into()));
        return;
    };
    transmit_all(sa, cx, &packets);
    let cfg = cx.config.retransmit;
    let (local, remote) = (sa.local, sa.remote);
    sa.requests
        .sent(cx.now, &cfg, msg_id, exchange, packets, local, remote);
    sa.active = Some(active);
}

/// Sends a response and caches it for retransmitted requests.
pub(crate) fn send_response(
    sa: &mut IkeSa,
    cx: &mut Cx,
    exchange: ExchangeType,
    msg_id: u32,
    request: &[u8],
    payloads: Vec<Payload>,
) {
    let hdr = header(sa, exchange, msg_id, true);
    let Some(packets) = build(sa, cx, hdr, payloads) else {
        return;
    };
    transmit_all(sa, cx, &packets);
    sa.responses.answered(msg_id, request, packets);
}

/// Answers a retransmitted request from the cache.
pub(crate) fn resend_cached_response(sa: &mut IkeSa, cx: &mut Cx, dgram: &Datagram) {
    ike_followup_ke::peer_still_at_it(sa, cx);
    let Some(cached) = &sa.responses.last else {
        return;
    };
    cx.stats.retransmits_answered += 1;
    debug!(peer = %dgram.remote, msg_id = cached.msg_id, "answering a retransmitted request from the cache");
    for p in &cached.packets {
        cx.out
            .transmits
            .push_back(Transmit::ike(dgram.local, dgram.remote, p.clone()));
    }
}

/// Resends our outstanding request.
pub(crate) fn retransmit(sa: &mut IkeSa, cx: &mut Cx) {
    let Some(o) = &sa.requests.outstanding else {
        return;
    };
    cx.stats.retransmits_sent += 1;
    debug!(peer = %o.sent_to, msg_id = o.msg_id, exchange = %o.exchange, retry = o.retries, "retransmitting request");
    for p in &o.packets {
        cx.out
            .transmits
            .push_back(Transmit::ike(o.sent_from, o.sent_to, p.clone()));
    }
}

/// The notify (type and data) to answer an authenticated but invalid request with.
type ErrorAnswer = (NotifyType, Vec<u8>);

/// Decrypts a protected message and checks its payload rules. `None` when
/// the message must be dropped silently (RFC 7296 §2.21: messages that fail
/// integrity protection are discarded).
/// What opening a protected message gave.
enum Opened {
    /// The message's payloads, the datagram that identifies the request for
    /// retransmission detection (fragment 1 of a fragmented one), and the
    /// decrypted inner payloads as bytes.
    Message(Vec<Payload>, Vec<u8>, protect::Inner),
    /// A fragment was kept; the message is not complete yet.
    Partial,
    /// Authentic but invalid: answer a request with this notify.
    Invalid(ErrorAnswer),
}

/// Decrypts a protected message (reassembling fragments, RFC 7383) and
/// checks its payload rules. `None` when the message must be dropped
/// silently (RFC 7296 §2.21: messages that fail integrity protection are
/// discarded; so are fragments that do not add up).
fn open(sa: &mut IkeSa, cx: &mut Cx, dgram: &Datagram, hdr: &HeaderRepr) -> Option<Opened> {
    let keys = sa.keys.as_ref()?;
    let msg = match Message::parse(&dgram.data) {
        Ok(m) => m,
        Err(e) => {
            cx.stats.malformed += 1;
            debug!(peer = %dgram.remote, error = %e, "dropping malformed protected message");
            return None;
        }
    };
    let (payloads, first, inner) = match protect::open_fragment(keys, &dgram.data, &msg) {
        Some(fragment) => {
            let Ok(f) = fragment else {
                cx.stats.integrity_failed += 1;
                debug!(peer = %dgram.remote, "dropping fragment that fails integrity protection");
                return None;
            };
            // Authentic either way; until the message is complete there is
            // nothing to act on.
            let Some((first_inner, plaintext, first)) = reassemble(sa, cx, dgram, hdr, f) else {
                return Some(Opened::Partial);
            };
            match parse_payloads(first_inner, &plaintext) {
                Ok(p) => (p, first, (first_inner, plaintext)),
                Err(e) => return Some(invalid_syntax(cx, dgram, e)),
            }
        }
        None => match protect::open(keys, &dgram.data, &msg) {
            Ok((payloads, inner)) => (payloads, dgram.data.clone(), inner),
            Err(protect::OpenError::Integrity) => {
                cx.stats.integrity_failed += 1;
                debug!(peer = %dgram.remote, "dropping message that fails integrity protection");
                return None;
            }
            Err(protect::OpenError::NotProtected) => {
                cx.stats.malformed += 1;
                debug!(peer = %dgram.remote, "dropping unprotected message on an SA with keys");
                return None;
            }
            Err(protect::OpenError::Syntax(e)) => return Some(invalid_syntax(cx, dgram, e)),
        },
    };
    if let Err(v) = rules::check(hdr.exchange, hdr.flags.response(), &payloads) {
        cx.stats.malformed += 1;
        debug!(peer = %dgram.remote, violation = ?v, "authenticated message breaks the payload rules");
        return Some(Opened::Invalid((NotifyType::INVALID_SYNTAX, Vec::new())));
    }
    Some(Opened::Message(payloads, first, inner))
}

fn invalid_syntax(cx: &mut Cx, dgram: &Datagram, e: oxisec_wire::Error) -> Opened {
    cx.stats.malformed += 1;
    debug!(peer = %dgram.remote, error = %e, "authenticated message with invalid inner syntax");
    let data = match e {
        oxisec_wire::Error::UnsupportedCriticalPayload(t) => vec![t.0],
        _ => Vec::new(),
    };
    Opened::Invalid((e.notify().unwrap_or(NotifyType::INVALID_SYNTAX), data))
}

/// Adds an authenticated fragment to the SA's reassembly; the whole
/// message's first inner type, plaintext and fragment-1 datagram once
/// complete. A fragment of another message replaces an unfinished one;
/// fragments that do not add up drop the reassembly and its memory.
fn reassemble(
    sa: &mut IkeSa,
    cx: &mut Cx,
    dgram: &Datagram,
    hdr: &HeaderRepr,
    f: protect::Fragment,
) -> Option<(oxisec_wire::PayloadType, Vec<u8>, Vec<u8>)> {
    use crate::fragment::Reassembly;
    let response = hdr.flags.response();
    let stale = sa
        .reassembly
        .as_ref()
        .is_some_and(|r| !r.matches(hdr.message_id, response) || r.expired(cx.now));
    if stale {
        debug!(peer = %dgram.remote, "dropping an unfinished fragmented message");
        sa.reassembly = None;
    }
    if sa.reassembly.is_none() {
        match Reassembly::new(hdr.message_id, response, f.total, cx.now) {
            Ok(r) => sa.reassembly = Some(r),
            Err(why) => {
                cx.stats.malformed += 1;
                debug!(peer = %dgram.remote, ?why, total = f.total, "refusing a fragmented message");
                return None;
            }
        }
    }
    let r = sa.reassembly.as_mut()?;
    match r.add(f.number, f.total, f.first_inner, f.plaintext, &dgram.data) {
        Ok(Some(done)) => {
            sa.reassembly = None;
            Some((done.first_inner, done.plaintext, done.first_datagram))
        }
        Ok(None) => {
            cx.stats.fragments_held += 1;
            None
        }
        Err(why) => {
            cx.stats.malformed += 1;
            debug!(peer = %dgram.remote, ?why, "fragments do not add up: dropping the message");
            sa.reassembly = None;
            None
        }
    }
}

/// An authenticated message arrived: the peer is alive, and if it now
/// comes from another address or port (the float to 4500 during setup, or a
/// NAT that rebound its mapping) we follow it, and so do the CHILD_SAs'
/// outbound halves in the data plane, without a new handshake (RFC 7296
/// §2.23). Only with UDP encapsulation: without a NAT, address changes
/// need MOBIKE.
fn heard_from(sa: &mut IkeSa, cx: &mut Cx, dgram: &Datagram) {
    sa.last_heard = cx.now;
    if sa.remote == dgram.remote && sa.local == dgram.local {
        return;
    }
    if sa.state == IkeState::Established && !sa.udp_encap() {
        debug!(from = %sa.remote, to = %dgram.remote, "ignoring an address change without NAT");
        return;
    }
    info!(connection = %sa.conn.name, from = %sa.remote, to = %dgram.remote, "peer endpoint changed");
    sa.remote = dgram.remote;
    sa.local = dgram.local;
    for c in sa.children.iter().filter(|c| c.outbound_installed) {
        cx.out.commands.push_back(SaCommand::UpdateEndpoints {
            child: c.id,
            spi: c.spi_out,
            local: sa.local,
            remote: sa.remote,
        });
    }
    // Deferred outbound halves go out with the new endpoints too.
    for c in sa.children.iter_mut() {
        if let Some(SaCommand::InstallOutbound { local, remote, .. }) = &mut c.deferred_outbound {
            *local = dgram.local;
            *remote = dgram.remote;
        }
    }
    lifecycle::arm_keepalive(sa, cx);
}

pub(crate) fn dispatch_request(
    sa: &mut IkeSa,
    cx: &mut Cx,
    dgram: &Datagram,
    hdr: &HeaderRepr,
) -> Option<Spawn> {
    match sa.responses.classify(hdr.message_id, &dgram.data) {
        crate::window::RequestVerdict::New => {}
        crate::window::RequestVerdict::Retransmitted => {
            resend_cached_response(sa, cx, dgram);
            return None;
        }
        crate::window::RequestVerdict::Drop => {
            cx.stats.out_of_window += 1;
            debug!(peer = %dgram.remote, msg_id = hdr.message_id, expected = sa.responses.expected,
                "dropping request outside the window");
            return None;
        }
    }
    let opened = open(sa, cx, dgram, hdr)?;
    heard_from(sa, cx, dgram);
    let (payloads, first, inner) = match opened {
        Opened::Message(p, first, inner) => (p, first, inner),
        Opened::Partial => return None,
        Opened::Invalid((notify, data)) => {
            let n = Payload::Notify(NotifyPayload::new(notify, data));
            send_response(sa, cx, hdr.exchange, hdr.message_id, &dgram.data, vec![n]);
            if hdr.exchange == ExchangeType::IKE_AUTH {
                let why = format!("peer sent an invalid IKE_AUTH request ({notify})");
                close(sa, cx, DownReason::Failed(why));
            }
            return None;
        }
    };
    // Handlers see the datagram that identifies the request: for a
    // fragmented one, fragment 1 (a retransmission is recognised by it).
    let whole = Datagram {
        local: dgram.local,
        remote: dgram.remote,
        data: first,
    };
    let dgram = &whole;
    let connecting = sa.state == IkeState::Connecting;
    match hdr.exchange {
        ExchangeType::IKE_INTERMEDIATE if connecting => {
            ike_intermediate::respond(sa, cx, dgram, hdr, &payloads, &inner);
            None
        }
        ExchangeType::IKE_AUTH if sa.role == Role::Responder && connecting => {
            if !ike_intermediate::complete(sa) {
                let why = "IKE_AUTH before the additional key exchanges".to_string();
                let n = Payload::Notify(NotifyPayload::new(NotifyType::INVALID_SYNTAX, Vec::new()));
                send_response(sa, cx, hdr.exchange, hdr.message_id, &dgram.data, vec![n]);
                close(sa, cx, DownReason::Failed(why));
                return None;
            }
            ike_auth::respond(sa, cx, dgram, hdr, payloads)
        }
        ExchangeType::INFORMATIONAL if !connecting => {
            informational::respond(sa, cx, dgram, hdr, payloads)
        }
        ExchangeType::INFORMATIONAL
            if sa.role == Role::Responder && ike_auth::eap_in_progress(sa) =>
        {
            ike_auth::eap_informational(sa, cx, dgram, hdr, &payloads);
            None
        }
        ExchangeType::CREATE_CHILD_SA if !connecting => {
            create_child_sa::respond(sa, cx, dgram, hdr, payloads)
        }
        ExchangeType::IKE_FOLLOWUP_KE if !connecting => {
            ike_followup_ke::respond(sa, cx, dgram, hdr, &payloads)
        }
        other => {
            cx.stats.malformed += 1;
            debug!(peer = %dgram.remote, exchange = %other, state = sa.state.name(),
                "dropping request not valid in this state");
            None
        }
    }
}

pub(crate) fn dispatch_response(
    sa: &mut IkeSa,
    cx: &mut Cx,
    dgram: &Datagram,
    hdr: &HeaderRepr,
) -> Option<Spawn> {
    let outstanding_exchange = sa.requests.outstanding.as_ref().map(|o| o.exchange);
    if !sa.requests.matches_response(hdr.message_id) || outstanding_exchange != Some(hdr.exchange) {
        cx.stats.out_of_window += 1;
        debug!(peer = %dgram.remote, msg_id = hdr.message_id,
            "dropping response that answers no outstanding request");
        return None;
    }
    if hdr.exchange == ExchangeType::IKE_SA_INIT {
        let msg = match Message::parse(&dgram.data) {
            Ok(m) => m,
            Err(e) => {
                cx.stats.malformed += 1;
                debug!(peer = %dgram.remote, error = %e, "dropping malformed IKE_SA_INIT response");
                return None;
            }
        };
        if let Err(v) = rules::check(hdr.exchange, true, &msg.payloads) {
            cx.stats.malformed += 1;
            debug!(peer = %dgram.remote, violation = ?v,
                "dropping IKE_SA_INIT response that breaks the payload rules");
            return None;
        }
        sa.requests.complete();
        sa.active = None;
        ike_sa_init::handle_response(sa, cx, dgram, hdr, &msg);
        return None;
    }
    let opened = open(sa, cx, dgram, hdr)?;
    heard_from(sa, cx, dgram);
    if matches!(opened, Opened::Partial) {
        return None;
    }
    sa.requests.complete();
    let active = sa.active.take();
    let (payloads, inner) = match opened {
        Opened::Message(p, _, inner) => (p, inner),
        Opened::Partial => return None,
        Opened::Invalid((notify, _)) => {
            let why = format!("peer sent an invalid {} response ({notify})", hdr.exchange);
            close(sa, cx, DownReason::Failed(why));
            return None;
        }
    };
    match active {
        Some(Active::Intermediate) => {
            ike_intermediate::handle_response(sa, cx, hdr, &payloads, &inner)
        }
        Some(Active::IkeAuth) => ike_auth::handle_response(sa, cx, payloads),
        Some(Active::DeleteIke) => close(sa, cx, DownReason::Deleted),
        Some(Active::DeleteChild(id)) => informational::child_deleted(sa, cx, id, &payloads),
        Some(Active::CreateChild(ex)) => create_child_sa::child_response(sa, cx, *ex, &payloads),
        Some(Active::RekeyIke(ex)) => {
            return create_child_sa::ike_rekey_response(sa, cx, *ex, &payloads);
        }
        Some(Active::Inform) | Some(Active::IkeSaInit) | None => {}
    }
    None
}

/// Starts the next queued task if the request window is free.
pub(crate) fn run_tasks(sa: &mut IkeSa, cx: &mut Cx) {
    let due: Vec<Task> = {
        let now = cx.now;
        let (ready, later): (Vec<_>, Vec<_>) = sa.delayed.drain(..).partition(|(t, _)| *t <= now);
        sa.delayed = later;
        ready.into_iter().map(|(_, t)| t).collect()
    };
    sa.tasks.extend(due);
    // The peer is rekeying this IKE SA with additional key exchanges still
    // to come: new work waits and moves to the new IKE SA with the children
    // (a CHILD_SA exchange started now would be stranded on the old one).
    if sa
        .followup
        .as_ref()
        .is_some_and(|f| matches!(f.plan, ike_followup_ke::Plan::Ike(_)))
    {
        return;
    }
    while sa.requests.is_free() && sa.state == IkeState::Established {
        let Some(task) = sa.tasks.pop_front() else {
            return;
        };
        // An SA that was rekeyed only deletes itself; the rest moved on.
        if sa.rekeyed_to.is_some() && task != Task::DeleteIke {
            continue;
        }
        match task {
            Task::CreateChild(name) => create_child_sa::start_new_child(sa, cx, &name),
            Task::RekeyChild(id) => create_child_sa::start_rekey_child(sa, cx, id),
            Task::RekeyIke => create_child_sa::start_rekey_ike(sa, cx),
            Task::DeleteIke => informational::start_delete_ike(sa, cx),
            Task::DeleteChild(id) => informational::start_delete_child(sa, cx, id),
        }
    }
}

/// Tears down an SA locally: every CHILD_SA leaves the data plane, and the
/// operator hears why. The engine removes the SA from its tables afterwards.
/// An SA replaced by a rekey goes quietly: its children live on elsewhere.
pub(crate) fn close(sa: &mut IkeSa, cx: &mut Cx, reason: DownReason) {
    if sa.state == IkeState::Closed {
        return;
    }
    for mut c in std::mem::take(&mut sa.children) {
        remove_child_from_dataplane(cx, &mut c);
        cx.alloc.child_spis.remove(&c.spi_in);
        let (ike, child, name) = (sa.id, c.id, c.name.clone());
        cx.event(Event::ChildDown {
            ike,
            child,
            name,
            reason: reason.clone(),
        });
    }
    expire_lingering(sa, cx, true);
    release_vips(sa, cx);
    if let Some(pending) = sa.hs.as_ref().and_then(|h| h.child.as_ref()) {
        cx.alloc.child_spis.remove(&pending.spi_in);
    }
    if let Some(Active::CreateChild(ex)) = &sa.active {
        cx.alloc.child_spis.remove(&ex.pending.spi_in);
    }
    if let Some(pending) = sa.followup.take() {
        pending.abort(cx);
    }
    let was_known = (sa.established.is_some() || sa.is_initiator()) && sa.rekeyed_to.is_none();
    sa.state = IkeState::Closed;
    sa.requests.outstanding = None;
    sa.active = None;
    sa.half_open_deadline = None;
    sa.delayed.clear();
    if sa.rekeyed_to.is_some() {
        debug!(connection = %sa.conn.name, "old IKE SA removed after rekey");
    }
    if was_known {
        match &reason {
            DownReason::Deleted => {
                tracing::info!(connection = %sa.conn.name, peer = %sa.describe_peer(), "IKE SA deleted")
            }
            r => {
                tracing::warn!(connection = %sa.conn.name, peer = %sa.describe_peer(), reason = ?r,
                    "IKE SA down")
            }
        }
        let (ike, connection) = (sa.id, sa.conn.name.clone());
        cx.event(Event::IkeDown {
            ike,
            connection,
            reason,
        });
    }
}

/// A closing IKE SA lets go of its virtual IPs: a gateway's lease goes
/// offline (kept for the client's return) unless a successor holds it; a
/// client removes its addresses unless a rekey carried them over.
fn release_vips(sa: &mut IkeSa, cx: &mut Cx) {
    let replaced = sa.rekeyed_to.is_some();
    let identity = sa.lease_identity();
    for (pool, address) in std::mem::take(&mut sa.peer_vips) {
        cx.alloc.pools.release(&pool, address, sa.id);
        if !replaced {
            info!(connection = %sa.conn.name, peer = %identity, %address, "virtual IP released");
            cx.event(Event::LeaseChanged {
                pool,
                identity: identity.clone(),
                address,
                online: false,
            });
        }
    }
    let mut own = std::mem::take(&mut sa.own_vips);
    // Reauthenticated: the new IKE SA got the same address and keeps it.
    own.retain(|a| !sa.vips_kept.contains(a));
    if !own.is_empty() && !replaced {
        cx.event(Event::VirtualIpReleased {
            ike: sa.id,
            connection: sa.conn.name.clone(),
            addresses: own,
        });
    }
}

/// Outbound first, so no packet is sent on an SA whose inbound half is gone.
pub(crate) fn remove_child_from_dataplane(cx: &mut Cx, c: &mut ChildSa) {
    c.drop_outbound(&mut cx.out.commands);
    c.drop_inbound(&mut cx.out.commands);
}

/// A CHILD_SA removed from `sa` after its delete exchange: the outbound half
/// goes now, the inbound half now or — if a rekey replaced it — after a
/// grace period for ESP still in flight; its SPI stays reserved until then.
pub(crate) fn retire_child(sa: &mut IkeSa, cx: &mut Cx, c: &mut ChildSa) {
    c.drop_outbound(&mut cx.out.commands);
    c.retire_inbound(cx.now, &mut sa.lingering, &mut cx.out.commands);
    if !sa.lingering.iter().any(|(_, id, _)| *id == c.id) {
        cx.alloc.child_spis.remove(&c.spi_in);
    }
}

/// Removes the lingering inbound SAs that are due (all of them with `all`).
pub(crate) fn expire_lingering(sa: &mut IkeSa, cx: &mut Cx, all: bool) {
    let now = cx.now;
    sa.lingering.retain(|&(t, child, spi)| {
        let due = all || t <= now;
        if due {
            cx.out.commands.push_back(SaCommand::Delete {
                child,
                spi,
                inbound: true,
            });
            cx.alloc.child_spis.remove(&spi);
        }
        !due
    });
}

pub(crate) fn status_of(sa: &IkeSa) -> IkeSaStatus {
    IkeSaStatus {
        ike: sa.id,
        connection: sa.conn.name.clone(),
        state: sa.state.name(),
        initiator: sa.is_initiator(),
        local: sa.local,
        remote: sa.remote,
        local_id: sa.conn.local_id.to_string(),
        remote_id: sa
            .peer_id
            .as_ref()
            .map(|i| i.to_string())
            .unwrap_or_default(),
        spi_i: sa.spi_i,
        spi_r: sa.spi_r,
        algorithms: sa
            .selected
            .as_ref()
            .map(|s| s.describe())
            .unwrap_or_default(),
        established: sa.established,
        nat_local: sa.nat_local,
        nat_remote: sa.nat_remote,
        own_vips: sa.own_vips.clone(),
        peer_vips: sa.peer_vips.iter().map(|(_, a)| *a).collect(),
        eap_identity: sa.eap_identity.clone(),
        peer_groups: sa.peer_groups.clone(),
        access_group: sa
            .conn
            .remote_access
            .for_groups(&sa.peer_groups)
            .and_then(|a| a.group)
            .map(str::to_owned),
        children: sa
            .children
            .iter()
            .map(|c| ChildSaStatus {
                child: c.id,
                name: c.name.clone(),
                state: c.state.name(),
                spi_in: c.spi_in,
                spi_out: c.spi_out,
                algorithms: c.selected.describe(),
                local_ts: c.local_ts.clone(),
                remote_ts: c.remote_ts.clone(),
                installed: c.installed,
                mode: c.mode,
            })
            .collect(),
    }
}
