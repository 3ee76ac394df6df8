//! The state of one IKE SA and its CHILD_SAs.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use oxisec_crypto::Secret;
use oxisec_crypto::ike_cipher::IkeCipher;
use oxisec_crypto::ke::KeyExchange;
use oxisec_crypto::prf::Prf;
use oxisec_wire::TransformId;

use crate::api::{ChildId, IkeId};
use crate::config::Connection;
use crate::exchange::ike_followup_ke::{Followup, Pending};
use crate::identity::Identity;
use crate::proposal::Selected;
use crate::ts::TsRange;
use crate::window::{RequestWindow, ResponseWindow};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Initiator,
    Responder,
}

/// Life cycle of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IkeState {
    /// IKE_SA_INIT / IKE_AUTH in progress.
    Connecting,
    Established,
    /// Our delete is outstanding.
    Deleting,
    /// Gone: to be removed from the table.
    Closed,
}

impl IkeState {
    pub fn name(self) -> &'static str {
        match self {
            IkeState::Connecting => "CONNECTING",
            IkeState::Established => "ESTABLISHED",
            IkeState::Deleting => "DELETING",
            IkeState::Closed => "CLOSED",
        }
    }
}

/// Keys of an established (or keyed, after IKE_SA_INIT) IKE SA.
#[derive(Debug)]
pub(crate) struct SaKeys {
    pub prf: Prf,
    pub sk_d: Secret,
    /// SK_pi if we are the initiator, else SK_pr.
    pub sk_p_own: Secret,
    pub sk_p_peer: Secret,
    pub outbound: IkeCipher,
    pub inbound: IkeCipher,
}

/// A CHILD_SA the initiator has proposed and waits to hear about.
#[derive(Debug, Clone)]
pub(crate) struct PendingChild {
    pub name: String,
    pub spi_in: u32,
    pub local_ts: Vec<TsRange>,
    pub remote_ts: Vec<TsRange>,
}

/// Data needed only until IKE_AUTH completes.
#[derive(Debug, Default)]
pub(crate) struct Handshake {
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    /// The IKE_SA_INIT request and response as sent ("RealMessage1/2", §2.15).
    pub init_request: Vec<u8>,
    pub init_response: Vec<u8>,
    /// Initiator: our key share until the response arrives.
    pub ke: Option<Box<dyn KeyExchange>>,
    /// Initiator: groups already tried after INVALID_KE_PAYLOAD.
    pub tried_groups: Vec<TransformId>,
    /// Initiator: a cookie to echo (RFC 7296 §2.6).
    pub cookie: Option<Vec<u8>>,
    pub cookie_retries: u32,
    /// Initiator: the child that rides on IKE_AUTH.
    pub child: Option<PendingChild>,
    /// Initiator: tell the peer we hold no other SA with it (INITIAL_CONTACT).
    pub initial_contact: bool,
    /// Additional key exchanges negotiated (RFC 9370), in order, and how
    /// many are done.
    pub addke: Vec<TransformId>,
    pub addke_done: usize,
    /// Initiator: our share for the additional key exchange in progress.
    pub addke_share: Option<Box<dyn KeyExchange>>,
    /// The IntAuth chains over the IKE_INTERMEDIATE requests and responses
    /// (RFC 9242 §3.3.2).
    pub int_auth_i: Option<Secret>,
    pub int_auth_r: Option<Secret>,
    /// Message ID of the first IKE_AUTH request (part of IntAuth).
    pub auth_mid: u32,
    /// Hash algorithms the peer announced (SIGNATURE_HASH_ALGORITHMS).
    pub peer_hashes: Vec<u16>,
    /// The peer asked for our certificate (CERTREQ).
    pub peer_certreq: bool,
    /// EAP in progress (RFC 7296 §2.16), on either side.
    pub eap: Option<Box<crate::eap::EapHandshake>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildState {
    Installed,
    /// Our CREATE_CHILD_SA rekeying this SA is outstanding.
    Rekeying,
    /// A successor is installed; this SA waits for its delete.
    Rekeyed,
    /// Our delete is outstanding; the outbound SA is already gone.
    Deleting,
}

impl ChildState {
    pub fn name(self) -> &'static str {
        match self {
            ChildState::Installed => "INSTALLED",
            ChildState::Rekeying => "REKEYING",
            ChildState::Rekeyed => "REKEYED",
            ChildState::Deleting => "DELETING",
        }
    }
}

/// A rekey of the same SA by the peer that crossed ours (§2.8.1): the child
/// it created and the nonces of its exchange, to decide which one survives.
#[derive(Debug, Clone)]
pub(crate) struct Collision<T> {
    pub created: T,
    pub nonces: [Vec<u8>; 2],
}

/// Whether an exchange with nonces `ours` loses against one with `theirs`:
/// the exchange holding the lowest of the four nonces made the redundant SA
/// (RFC 7296 §2.8.1, §2.8.2). Nonces compare as byte strings.
pub(crate) fn loses(ours: &[Vec<u8>; 2], theirs: &[Vec<u8>; 2]) -> bool {
    let min_ours = ours.iter().min();
    let min_theirs = theirs.iter().min();
    min_ours < min_theirs
}

#[derive(Debug)]
pub(crate) struct ChildSa {
    pub id: ChildId,
    pub name: String,
    pub spi_in: u32,
    pub spi_out: u32,
    pub selected: Selected,
    pub local_ts: Vec<TsRange>,
    pub remote_ts: Vec<TsRange>,
    pub state: ChildState,
    pub installed: Instant,
    /// Whether the outbound half is in the data plane. A responder defers it
    /// for a rekeyed SA until the initiator deletes the old one, so that it
    /// never sends on an SA the initiator has not installed yet.
    pub outbound_installed: bool,
    pub inbound_installed: bool,
    pub deferred_outbound: Option<crate::api::SaCommand>,
    /// The child that replaces this one after a rekey.
    pub successor: Option<ChildId>,
    /// A duplicate left over from crossing rekeys (§2.8.1), deleted as such.
    pub redundant: bool,
    /// A crossing rekey by the peer (we answered it while ours was outstanding).
    pub collision: Option<Collision<ChildId>>,
    /// When to rekey (soft lifetime) and when to delete (hard lifetime).
    pub rekey_at: Option<Instant>,
    pub expire_at: Option<Instant>,
    /// Tunnel or transport, as negotiated; a rekey asks for the same.
    pub mode: crate::config::ChildMode,
}

/// Our half of a CREATE_CHILD_SA for a new or rekeyed CHILD_SA.
#[derive(Debug)]
pub(crate) struct ChildExchange {
    pub pending: PendingChild,
    pub ni: Vec<u8>,
    pub ke: Option<Box<dyn KeyExchange>>,
    /// The child this exchange replaces.
    pub rekeys: Option<ChildId>,
    /// Groups already tried after INVALID_KE_PAYLOAD.
    pub tried_groups: Vec<TransformId>,
    /// The peer's crossing rekey of the same SA completed first (it deleted
    /// the old SA): whatever this exchange creates is redundant.
    pub superseded: bool,
    /// Additional key exchanges (IKE_FOLLOWUP_KE) under way after the
    /// CREATE_CHILD_SA was answered.
    pub followup: Option<Box<Followup<ChildAgreed>>>,
}

/// What the answer to our CREATE_CHILD_SA for a CHILD_SA settled.
#[derive(Debug)]
pub(crate) struct ChildAgreed {
    pub selected: Selected,
    pub spi_out: u32,
    pub nr: Vec<u8>,
    pub local_ts: Vec<TsRange>,
    pub remote_ts: Vec<TsRange>,
    /// The mode the answer settled; `Err` when our child requires transport
    /// mode and the peer refused it.
    pub mode: Result<crate::config::ChildMode, String>,
}

/// What the answer to our IKE rekey settled.
#[derive(Debug)]
pub(crate) struct IkeAgreed {
    pub selected: Selected,
    pub nr: Vec<u8>,
    pub peer_spi: u64,
}

/// Our half of a CREATE_CHILD_SA rekeying the IKE SA.
#[derive(Debug)]
pub(crate) struct IkeRekeyExchange {
    /// Our SPI on the new IKE SA (we will be its initiator).
    pub spi: u64,
    pub ni: Vec<u8>,
    pub ke: Box<dyn KeyExchange>,
    pub tried_groups: Vec<TransformId>,
    /// Additional key exchanges (IKE_FOLLOWUP_KE) under way.
    pub followup: Option<Box<Followup<IkeAgreed>>>,
}

/// What our outstanding request is about, so the response goes to the right handler.
#[derive(Debug)]
pub(crate) enum Active {
    IkeSaInit,
    Intermediate,
    IkeAuth,
    DeleteIke,
    DeleteChild(ChildId),
    CreateChild(Box<ChildExchange>),
    RekeyIke(Box<IkeRekeyExchange>),
    /// An INFORMATIONAL whose answer needs no handling (notify to the peer).
    Inform,
}

/// Something queued on an IKE SA until its request window is free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Task {
    CreateChild(String),
    RekeyChild(ChildId),
    RekeyIke,
    DeleteChild(ChildId),
    DeleteIke,
}

#[derive(Debug)]
pub(crate) struct IkeSa {
    pub id: IkeId,
    pub role: Role,
    /// The connection in use; for a responder before IKE_AUTH the first candidate.
    pub conn: Arc<Connection>,
    /// Responder: connections that match the addresses, narrowed by IDi in IKE_AUTH.
    pub candidates: Vec<Arc<Connection>>,
    pub spi_i: u64,
    pub spi_r: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: IkeState,
    pub hs: Option<Handshake>,
    pub keys: Option<SaKeys>,
    pub selected: Option<Selected>,
    pub requests: RequestWindow,
    pub responses: ResponseWindow,
    pub active: Option<Active>,
    pub tasks: std::collections::VecDeque<Task>,
    pub children: Vec<ChildSa>,
    /// NAT detected in front of the peer / in front of us (§2.23).
    pub nat_remote: bool,
    pub nat_local: bool,
    pub peer_id: Option<Identity>,
    /// The user the peer proved to be with EAP (gateway side): its virtual
    /// IP lease is keyed by this rather than by the IDi.
    pub eap_identity: Option<String>,
    /// The groups the peer's authentication named (gateway side): users
    /// file, RADIUS Accept or certificate OU; they select its pool.
    pub peer_groups: Vec<String>,
    pub established: Option<Instant>,
    /// Responder: a half-open SA that does not complete by then is dropped.
    pub half_open_deadline: Option<Instant>,
    /// Set once a rekey replaced this SA: it only waits to be deleted.
    pub rekeyed_to: Option<IkeId>,
    /// A crossing IKE rekey by the peer that we answered (§2.8.2).
    pub ike_collision: Option<Collision<IkeId>>,
    /// This SA was made by the peer's rekey of that IKE SA, which crossed
    /// our own rekey of it; until ours completes, it is unknown which of the
    /// two new SAs survives. If the peer deletes this one meanwhile, its
    /// exchange lost and this SA was redundant.
    pub crossing_of: Option<IkeId>,
    /// A redundant SA of crossing rekeys waits this long for the peer to
    /// delete it; a peer whose losing exchange never completed (its answer
    /// came after the old SA was gone) never will, and we remove it.
    pub redundant_until: Option<Instant>,
    /// Client: the virtual IPs the gateway assigned us.
    pub own_vips: Vec<std::net::IpAddr>,
    /// Gateway: the virtual IPs we assigned the peer, with their pools.
    pub peer_vips: Vec<(String, std::net::IpAddr)>,
    /// Tasks to retry later (after TEMPORARY_FAILURE, §2.25).
    pub delayed: Vec<(Instant, Task)>,
    /// When to reauthenticate (a new IKE SA with a full IKE_AUTH).
    pub reauth_at: Option<Instant>,
    /// Set by the timer: the engine starts the new IKE SA (it needs the
    /// engine, not this SA alone).
    pub reauth_due: bool,
    /// The new IKE SA of our reauthentication of this one, while it runs.
    pub reauth_by: Option<IkeId>,
    /// This SA reauthenticates that one; once it is up with its CHILD_SAs
    /// the old one is deleted.
    pub reauth_of: Option<IkeId>,
    /// Virtual IPs the reauthenticated successor holds too: not released
    /// when this SA closes.
    pub vips_kept: Vec<std::net::IpAddr>,
    /// IKE SA lifetime: when to rekey and when to give up on it.
    pub rekey_at: Option<Instant>,
    pub expire_at: Option<Instant>,
    /// Last time the peer proved to be alive (an authenticated message or
    /// inbound ESP); the liveness check counts from here.
    pub last_heard: Instant,
    /// Next NAT keepalive, while we are behind a NAT.
    pub keepalive_at: Option<Instant>,
    /// Rate limit for INVALID_SPI notifies to this peer.
    pub last_invalid_spi: Option<Instant>,
    /// Responder: the engine's key for recognising a retransmitted
    /// IKE_SA_INIT while the SA is half-open.
    pub half_open_key: Option<(SocketAddr, u64)>,
    /// Inbound halves of rekeyed CHILD_SAs kept a little longer for ESP still
    /// in flight: (when to remove, child, SPI). The SPI stays reserved.
    pub lingering: Vec<(Instant, ChildId, u32)>,
    /// Both sides announced IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383).
    pub fragmentation: bool,
    /// A fragmented message being reassembled.
    pub reassembly: Option<crate::fragment::Reassembly>,
    /// Responder: the peer's additional key exchanges (IKE_FOLLOWUP_KE)
    /// still to come for a CREATE_CHILD_SA we answered.
    pub followup: Option<Box<Pending>>,
}

/// How long the inbound half of a rekeyed CHILD_SA outlives its delete
/// exchange, for packets the peer sent just before switching (strongSwan's
/// `delete_rekeyed_delay` is the same 5 s).
pub(crate) const INBOUND_LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// What moves from an IKE SA to its successor after a rekey: the CHILD_SAs
/// and the work queued for them.
#[derive(Debug, Default)]
pub(crate) struct Carry {
    pub children: Vec<ChildSa>,
    pub tasks: std::collections::VecDeque<Task>,
    pub delayed: Vec<(Instant, Task)>,
    pub lingering: Vec<(Instant, ChildId, u32)>,
}

impl Carry {
    /// Takes everything that belongs to the CHILD_SAs; tasks about the IKE
    /// SA itself (its rekey, its delete) stay behind.
    pub fn take_from(sa: &mut IkeSa) -> Carry {
        let about_children = |t: &Task| !matches!(t, Task::RekeyIke | Task::DeleteIke);
        let (tasks, keep): (Vec<Task>, Vec<Task>) = sa.tasks.drain(..).partition(about_children);
        sa.tasks = keep.into();
        let (delayed, keep): (Vec<_>, Vec<_>) =
            sa.delayed.drain(..).partition(|(_, t)| about_children(t));
        sa.delayed = keep;
        Carry {
            children: std::mem::take(&mut sa.children),
            tasks: tasks.into(),
            delayed,
            lingering: std::mem::take(&mut sa.lingering),
        }
    }

    pub fn put_into(self, sa: &mut IkeSa) {
        sa.children.extend(self.children);
        sa.tasks.extend(self.tasks);
        sa.delayed.extend(self.delayed);
        sa.lingering.extend(self.lingering);
    }
}

impl ChildSa {
    /// Why this SA goes when its delete completes.
    pub fn down_reason(&self) -> crate::api::DownReason {
        if self.successor.is_some() || self.redundant || self.collision.is_some() {
            crate::api::DownReason::Rekeyed
        } else {
            crate::api::DownReason::Deleted
        }
    }

    /// Takes the outbound half out of the data plane (once).
    pub fn drop_outbound(&mut self, out: &mut std::collections::VecDeque<crate::api::SaCommand>) {
        if std::mem::take(&mut self.outbound_installed) {
            out.push_back(crate::api::SaCommand::Delete {
                child: self.id,
                spi: self.spi_out,
                inbound: false,
            });
        }
    }

    /// Takes the inbound half out of the data plane after [`INBOUND_LINGER`]
    /// when the SA was replaced by a rekey — its own, or the peer's that
    /// crossed ours (`collision`) — since packets sent on it may still be on
    /// the way; at once otherwise.
    pub fn retire_inbound(
        &mut self,
        now: Instant,
        lingering: &mut Vec<(Instant, ChildId, u32)>,
        out: &mut std::collections::VecDeque<crate::api::SaCommand>,
    ) {
        let replaced = self.successor.is_some() || self.collision.is_some();
        if replaced && self.inbound_installed {
            self.inbound_installed = false;
            lingering.push((now + INBOUND_LINGER, self.id, self.spi_in));
        } else {
            self.drop_inbound(out);
        }
    }

    /// Takes the inbound half out of the data plane (once).
    pub fn drop_inbound(&mut self, out: &mut std::collections::VecDeque<crate::api::SaCommand>) {
        if std::mem::take(&mut self.inbound_installed) {
            out.push_back(crate::api::SaCommand::Delete {
                child: self.id,
                spi: self.spi_in,
                inbound: true,
            });
        }
    }
}

impl IkeSa {
    /// A fresh SA with empty windows and no keys.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: IkeId,
        role: Role,
        conn: Arc<Connection>,
        spi_i: u64,
        spi_r: u64,
        local: SocketAddr,
        remote: SocketAddr,
        now: Instant,
    ) -> IkeSa {
        IkeSa {
            id,
            role,
            conn,
            candidates: Vec::new(),
            spi_i,
            spi_r,
            local,
            remote,
            state: IkeState::Connecting,
            hs: None,
            keys: None,
            selected: None,
            requests: RequestWindow::default(),
            responses: ResponseWindow::default(),
            active: None,
            tasks: std::collections::VecDeque::new(),
            children: Vec::new(),
            nat_remote: false,
            nat_local: false,
            peer_id: None,
            eap_identity: None,
            peer_groups: Vec::new(),
            established: None,
            half_open_deadline: None,
            rekeyed_to: None,
            ike_collision: None,
            crossing_of: None,
            redundant_until: None,
            own_vips: Vec::new(),
            peer_vips: Vec::new(),
            delayed: Vec::new(),
            reauth_at: None,
            reauth_due: false,
            reauth_by: None,
            reauth_of: None,
            vips_kept: Vec::new(),
            rekey_at: None,
            expire_at: None,
            last_heard: now,
            keepalive_at: None,
            last_invalid_spi: None,
            half_open_key: None,
            lingering: Vec::new(),
            fragmentation: false,
            reassembly: None,
            followup: None,
        }
    }

    /// Our SPI: the one the peer addresses us by.
    pub fn own_spi(&self) -> u64 {
        match self.role {
            Role::Initiator => self.spi_i,
            Role::Responder => self.spi_r,
        }
    }

    pub fn is_initiator(&self) -> bool {
        self.role == Role::Initiator
    }

    /// Whether ESP must go in UDP (a NAT on either side, or forced).
    pub fn udp_encap(&self) -> bool {
        self.nat_local || self.nat_remote || self.conn.force_encap
    }

    pub fn child_mut(&mut self, id: ChildId) -> Option<&mut ChildSa> {
        self.children.iter_mut().find(|c| c.id == id)
    }

    /// The earliest instant this SA needs `handle_timeout`. Only deadlines
    /// that `handle_timeout` acts on (and clears or moves) are returned, so a
    /// driver never spins on a past deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        let delayed = self.delayed.iter().map(|(t, _)| *t).min();
        let lingering = self.lingering.iter().map(|(t, _, _)| *t).min();
        let mut d = [
            self.requests.deadline(),
            self.half_open_deadline,
            delayed,
            lingering,
            self.keepalive_at,
            self.followup.as_ref().map(|f| f.deadline),
            self.redundant_until,
        ]
        .into_iter()
        .flatten()
        .min();
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                d = Some(d.map_or(t, |x| x.min(t)));
            }
        };
        if self.state == IkeState::Established && self.rekeyed_to.is_none() {
            consider(self.rekey_at);
            consider(self.expire_at);
            if self.reauth_by.is_none() {
                consider(self.reauth_at);
            }
            // A child being deleted has no lifetime left to act on.
            for c in self
                .children
                .iter()
                .filter(|c| c.state != ChildState::Deleting)
            {
                consider(c.rekey_at);
                consider(c.expire_at);
            }
            if self.requests.is_free() && self.tasks.is_empty() {
                consider(self.dpd_due());
            }
        }
        d
    }

    /// When the liveness check is due, if enabled.
    pub fn dpd_due(&self) -> Option<Instant> {
        let delay = self.conn.dpd_delay;
        (!delay.is_zero()).then(|| self.last_heard + delay)
    }

    /// What the peer's virtual IP leases are keyed by: the EAP identity if
    /// it authenticated with EAP, else its IKE identity.
    pub fn lease_identity(&self) -> String {
        match (&self.eap_identity, &self.peer_id) {
            (Some(user), _) => user.clone(),
            (None, Some(id)) => id.to_string(),
            (None, None) => String::new(),
        }
    }

    pub fn describe_peer(&self) -> String {
        match &self.peer_id {
            Some(id) => format!("{id} ({})", self.remote),
            None => self.remote.to_string(),
        }
    }
}
