//! The engine: the IKE SA table, routing of datagrams, timers and commands.
//! Protocol logic lives in the `exchange` modules; this file only decides
//! which SA and which handler a message belongs to.
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use oxisec_crypto::Rng;
use oxisec_wire::{ExchangeType, Header, HeaderRepr, Message, NotifyType, Payload};
use tracing::{debug, info, warn};

use crate::api::*;
use crate::config::{Config, Connection};
use crate::config::{DpdAction, StartAction};
use crate::exchange::{self, Cx};
use crate::sa::{ChildState, IkeSa, IkeState, Task};
use crate::window::{RequestVerdict, TimerAction};

/// Everything the engine has to say after an input.
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    pub transmits: VecDeque<Transmit>,
    pub commands: VecDeque<SaCommand>,
    pub events: VecDeque<Event>,
}

/// Counters of what was dropped and why (logged at debug level one by one).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub malformed: u64,
    pub unknown_spi: u64,
    pub out_of_window: u64,
    pub integrity_failed: u64,
    pub retransmits_answered: u64,
    pub retransmits_sent: u64,
    /// INVALID_SPI notifies not sent because of the rate limit.
    pub invalid_spi_suppressed: u64,
    /// IKE_SA_INIT requests answered with a COOKIE instead of state.
    pub cookies_sent: u64,
    /// IKE_SA_INIT requests dropped by the half-open limits.
    pub half_open_refused: u64,
    /// Unprotected error answers not sent because of the rate limit.
    pub errors_suppressed: u64,
    /// Authenticated fragments kept for reassembly.
    pub fragments_held: u64,
}

/// Allocation of identifiers and SPIs, unique within the engine.
#[derive(Debug, Default)]
pub(crate) struct Allocator {
    next_ike: u64,
    next_child: u64,
    pub child_spis: HashSet<u32>,
    /// Virtual IP pools and their leases.
    pub pools: crate::pool::Pools,
}

impl Allocator {
    pub fn ike_id(&mut self) -> IkeId {
        self.next_ike += 1;
        IkeId(self.next_ike)
    }

    pub fn child_id(&mut self) -> ChildId {
        self.next_child += 1;
        ChildId(self.next_child)
    }

    /// A fresh inbound ESP SPI: random, ≥ 256 (1–255 are reserved by IANA), unused.
    pub fn child_spi(&mut self, rng: &mut dyn Rng) -> u32 {
        loop {
            let mut b = [0u8; 4];
            rng.fill(&mut b);
            let spi = u32::from_be_bytes(b);
            if spi >= 256 && self.child_spis.insert(spi) {
                return spi;
            }
        }
    }
}

/// The IKEv2 protocol engine. See the crate documentation.
/// How long a failed reauthentication waits before the next attempt.
const REAUTH_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

pub struct Engine {
    config: Config,
    rng: Box<dyn Rng>,
    /// Boxed: an IkeSa is about 1 KiB, and a table that grew under a flood
    /// keeps its capacity; boxes keep that to 8 bytes per slot.
    sas: HashMap<IkeId, Box<IkeSa>>,
    /// Our SPI → SA.
    by_spi: HashMap<u64, IkeId>,
    /// (peer, SPIi) of responder SAs whose IKE_SA_INIT we answered, to
    /// recognise a retransmitted IKE_SA_INIT request.
    half_open: HashMap<(SocketAddr, u64), IkeId>,
    /// Half-open SAs per peer address, for `DosConfig::block_threshold`.
    half_open_by_ip: HashMap<IpAddr, usize>,
    cookies: crate::cookie::Cookies,
    timers: crate::timers::Timers,
    /// Wall-clock time at a monotonic instant, for certificate validity.
    wall: Option<(Instant, std::time::SystemTime)>,
    /// Budget for unprotected error answers (they can be spoofed into a
    /// reflection flood).
    error_budget: crate::ratelimit::RateLimit,
    alloc: Allocator,
    out: Outputs,
    stats: Stats,
    /// The time of the input being handled (bookkeeping after it, such as
    /// finishing a reauthentication, acts at this time).
    now: Option<Instant>,
}

impl Engine {
    pub fn new(config: Config, rng: Box<dyn Rng>) -> Engine {
        Engine {
            rng,
            sas: HashMap::new(),
            by_spi: HashMap::new(),
            half_open: HashMap::new(),
            half_open_by_ip: HashMap::new(),
            cookies: crate::cookie::Cookies::default(),
            timers: crate::timers::Timers::default(),
            wall: None,
            error_budget: crate::ratelimit::RateLimit::new(
                crate::ratelimit::ERROR_ANSWERS_PER_SECOND,
            ),
            alloc: Allocator {
                pools: crate::pool::Pools::from_config(&config.pools, Default::default()),
                ..Allocator::default()
            },
            config,
            out: Outputs::default(),
            stats: Stats::default(),
            now: None,
        }
    }

    /// Replaces the configuration; existing SAs keep the connection they were made with.
    pub fn reload(&mut self, config: Config) {
        let pools = std::mem::take(&mut self.alloc.pools);
        self.alloc.pools = crate::pool::Pools::from_config(&config.pools, pools);
        self.config = config;
    }

    /// Every virtual IP lease (online or kept for a returning client), for
    /// the driver to save; see [`Engine::restore_leases`].
    pub fn leases(&self) -> Vec<crate::pool::Lease> {
        self.alloc.pools.leases()
    }

    /// Puts back leases saved before a restart, so that clients get their
    /// addresses back; leases that no longer fit a pool are dropped.
    /// Returns how many were restored.
    pub fn restore_leases(&mut self, leases: &[crate::pool::Lease]) -> usize {
        self.alloc.pools.restore(leases)
    }

    /// (pool, leases of connected clients, leases held offline) per pool.
    pub fn pool_usage(&self) -> Vec<(String, usize, usize)> {
        self.alloc.pools.usage()
    }

    /// Tells the engine the wall-clock time that corresponds to `now`
    /// (certificate validity is in wall-clock time; the engine keeps only
    /// monotonic time otherwise). The driver calls this at start and after
    /// the system clock was set.
    pub fn set_wall_clock(&mut self, now: Instant, wall: std::time::SystemTime) {
        self.wall = Some((now, wall));
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn cx(&mut self, now: Instant) -> (Cx<'_>, &mut HashMap<IkeId, Box<IkeSa>>) {
        self.now = Some(now);
        (
            Cx {
                now,
                rng: &mut *self.rng,
                out: &mut self.out,
                alloc: &mut self.alloc,
                config: &self.config,
                stats: &mut self.stats,
                error_budget: &mut self.error_budget,
                wall: self
                    .wall
                    .map(|(at, wall)| wall + now.saturating_duration_since(at)),
            },
            &mut self.sas,
        )
    }

    /// Processes one received datagram. Nothing a datagram contains can make
    /// this panic; invalid input is dropped (and counted) or answered with
    /// the notify RFC 7296 prescribes.
    pub fn handle_datagram(&mut self, now: Instant, dgram: Datagram) {
        let hdr = match Header::new_checked(dgram.data.as_slice())
            .and_then(|h| HeaderRepr::parse(&h))
        {
            Ok(h) => h,
            Err(e) => {
                self.stats.malformed += 1;
                debug!(from = %dgram.remote, error = %e, "dropping datagram with an invalid IKE header");
                return;
            }
        };
        if hdr.exchange == ExchangeType::IKE_SA_INIT && !hdr.flags.response() {
            self.handle_init_request(now, dgram, hdr);
            return;
        }
        // The sender's Initiator flag tells which SPI is ours.
        let own_spi = if hdr.flags.initiator() {
            hdr.spi_r
        } else {
            hdr.spi_i
        };
        let Some(&id) = self.by_spi.get(&own_spi) else {
            self.stats.unknown_spi += 1;
            // A request for an SA we do not have: tell the sender (§2.21.4),
            // within the budget for unprotected answers. Never answer a
            // response.
            if !hdr.flags.response() {
                let (mut cx, _) = self.cx(now);
                let ty = NotifyType::INVALID_IKE_SPI;
                exchange::ike_sa_init::send_error(&mut cx, &dgram, &hdr, ty, Vec::new());
            }
            debug!(from = %dgram.remote, spi_i = format_args!("{:016x}", hdr.spi_i), spi_r = format_args!("{:016x}", hdr.spi_r),
                exchange = %hdr.exchange, "dropping IKE message for an unknown SA");
            return;
        };
        let (mut cx, sas) = self.cx(now);
        let Some(sa) = sas.get_mut(&id) else { return };
        if !header_fits_sa(sa, &hdr) {
            cx.stats.unknown_spi += 1;
            debug!(from = %dgram.remote, "dropping IKE message whose SPIs or role flags do not fit the SA");
            return;
        }
        let spawn = if hdr.flags.response() {
            exchange::dispatch_response(sa, &mut cx, &dgram, &hdr)
        } else {
            exchange::dispatch_request(sa, &mut cx, &dgram, &hdr)
        };
        exchange::run_tasks(sa, &mut cx);
        match spawn {
            Some(spawn) => {
                self.apply(now, spawn);
                self.settle_all();
            }
            None => self.settle([id]),
        }
    }

    /// An IKE_SA_INIT request: a retransmission of one we answered, or a new SA.
    fn handle_init_request(&mut self, now: Instant, dgram: Datagram, hdr: HeaderRepr) {
        if hdr.spi_r != 0 || !hdr.flags.initiator() || hdr.message_id != 0 {
            self.stats.malformed += 1;
            debug!(from = %dgram.remote, "dropping IKE_SA_INIT request with non-zero SPIr/message ID or no Initiator flag");
            return;
        }
        if let Some(&id) = self.half_open.get(&(dgram.remote, hdr.spi_i)) {
            let (mut cx, sas) = self.cx(now);
            if let Some(sa) = sas.get_mut(&id) {
                if sa.responses.classify(0, &dgram.data) == RequestVerdict::Retransmitted {
                    exchange::resend_cached_response(sa, &mut cx, &dgram);
                    // The initiator is still trying (our answer got lost):
                    // give it the full time again to reach IKE_AUTH.
                    sa.half_open_deadline = Some(now + exchange::ike_sa_init::HALF_OPEN_TIMEOUT);
                } else {
                    cx.stats.out_of_window += 1;
                    debug!(from = %dgram.remote, "dropping a different IKE_SA_INIT for an SA in progress");
                }
            }
            self.settle([id]);
            return;
        }
        let msg = match Message::parse(&dgram.data) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                debug!(from = %dgram.remote, error = %e, "malformed IKE_SA_INIT request");
                if let Some(n) = e.notify() {
                    let data = match e {
                        oxisec_wire::Error::UnsupportedCriticalPayload(t) => vec![t.0],
                        _ => Vec::new(),
                    };
                    let (mut cx, _) = self.cx(now);
                    exchange::ike_sa_init::send_error(&mut cx, &dgram, &hdr, n, data);
                }
                return;
            }
        };
        if !self.admit_half_open(now, &dgram, &hdr, &msg) {
            return;
        }
        let candidates = self.candidates(&dgram);
        let (mut cx, sas) = self.cx(now);
        let Some(sa) = exchange::ike_sa_init::respond(&mut cx, &dgram, &msg, candidates) else {
            return;
        };
        let (id, spi_r, key) = (sa.id, sa.spi_r, (dgram.remote, hdr.spi_i));
        let mut sa = Box::new(sa);
        sa.half_open_key = Some(key);
        sas.insert(id, sa);
        self.by_spi.insert(spi_r, id);
        self.half_open.insert(key, id);
        *self.half_open_by_ip.entry(key.0.ip()).or_default() += 1;
        self.settle([id]);
    }

    /// RFC 7296 §2.6: decides whether a new IKE_SA_INIT request may create
    /// state. Above the cookie threshold, a request must return a valid
    /// COOKIE (as its first payload); otherwise it gets one back and we keep
    /// nothing. Per-address and total limits drop requests silently.
    fn admit_half_open(
        &mut self,
        now: Instant,
        dgram: &Datagram,
        hdr: &HeaderRepr,
        msg: &Message,
    ) -> bool {
        let dos = self.config.dos;
        let ip = dgram.remote.ip();
        let total = self.half_open.len();
        if dos.half_open_limit > 0 && total >= dos.half_open_limit {
            self.stats.half_open_refused += 1;
            debug!(from = %dgram.remote, total, "half-open IKE SA limit reached: dropping IKE_SA_INIT");
            return false;
        }
        let from_ip = self.half_open_by_ip.get(&ip).copied().unwrap_or(0);
        if dos.block_threshold > 0 && from_ip >= dos.block_threshold {
            self.stats.half_open_refused += 1;
            debug!(from = %dgram.remote, from_ip, "too many half-open IKE SAs from this address: dropping IKE_SA_INIT");
            return false;
        }
        if total < dos.cookie_threshold {
            return true;
        }
        let Some(ni) = msg.payloads.iter().find_map(|p| {
            if let Payload::Nonce(n) = p {
                Some(n)
            } else {
                None
            }
        }) else {
            // No nonce: the exchange code answers INVALID_SYNTAX (rate-limited there).
            return true;
        };
        let returned = match msg.payloads.first() {
            Some(Payload::Notify(n)) if n.ty == NotifyType::COOKIE => Some(n.data.as_slice()),
            _ => None,
        };
        if returned.is_some_and(|c| self.cookies.verify(c, ni, ip, hdr.spi_i)) {
            return true;
        }
        self.stats.cookies_sent += 1;
        let cookie = self.cookies.make(now, &mut *self.rng, ni, ip, hdr.spi_i);
        let (mut cx, _) = self.cx(now);
        exchange::ike_sa_init::send_error(&mut cx, dgram, hdr, NotifyType::COOKIE, cookie);
        false
    }

    /// Connections whose addresses admit this datagram, in configuration order.
    fn candidates(&self, dgram: &Datagram) -> Vec<Arc<Connection>> {
        self.config
            .connections
            .iter()
            .filter(|c| c.local_addrs.is_empty() || c.local_addrs.contains(&dgram.local.ip()))
            .filter(|c| c.remote_addrs.is_empty() || c.remote_addrs.contains(&dgram.remote.ip()))
            .cloned()
            .collect()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let due = self.timers.due(now);
        let mut restart = Vec::new();
        let (mut cx, sas) = self.cx(now);
        for &id in &due {
            let Some(sa) = sas.get_mut(&id) else { continue };
            if sa.half_open_deadline.is_some_and(|d| d <= now) {
                debug!(ike = id.0, peer = %sa.remote, "half-open IKE SA timed out");
                let why = DownReason::Failed("half-open SA timed out".into());
                exchange::close(sa, &mut cx, why);
                continue;
            }
            if sa.redundant_until.is_some_and(|d| d <= now) {
                debug!(ike = id.0, peer = %sa.remote, "the peer never deleted the redundant IKE SA of crossing rekeys; removing it");
                exchange::close(sa, &mut cx, DownReason::Rekeyed);
                continue;
            }
            let retransmit = cx.config.retransmit;
            match sa.requests.on_timer(now, &retransmit) {
                TimerAction::Idle => {}
                TimerAction::Retransmit => exchange::retransmit(sa, &mut cx),
                TimerAction::GiveUp => {
                    if let Some(r) = peer_dead(sa, &mut cx) {
                        restart.push(r);
                    }
                    continue;
                }
            }
            exchange::lifecycle::on_timeout(sa, &mut cx);
            // Tasks queued by the timers, and delayed retries that are due.
            exchange::run_tasks(sa, &mut cx);
        }
        let reauth: Vec<IkeId> = due
            .iter()
            .copied()
            .filter(|id| self.sas.get(id).is_some_and(|sa| sa.reauth_due))
            .collect();
        self.settle(due);
        for id in reauth {
            self.start_reauth(now, id);
        }
        for (conn, children) in restart {
            info!(connection = %conn, "peer was dead: initiating the connection again (dpd_action = restart)");
            for child in children {
                self.initiate(now, &conn, Some(&child));
            }
        }
    }

    /// Feeds an event from the data plane: volume limits, inbound activity
    /// (the peer is alive) and ESP for unknown SPIs.
    pub fn handle_dataplane(&mut self, now: Instant, ev: DataplaneEvent) {
        let (mut cx, sas) = self.cx(now);
        let touched = match ev {
            DataplaneEvent::SoftExpired { spi, inbound }
            | DataplaneEvent::HardExpired { spi, inbound } => {
                let hard = matches!(ev, DataplaneEvent::HardExpired { .. });
                sas.values_mut()
                    .filter(|sa| sa.state == IkeState::Established)
                    .find_map(|sa| {
                        let hit =
                            exchange::lifecycle::child_expired(sa, &mut cx, spi, inbound, hard);
                        hit.then(|| {
                            exchange::run_tasks(sa, &mut cx);
                            sa.id
                        })
                    })
            }
            DataplaneEvent::InboundActivity { spi } => {
                let sa = sas
                    .values_mut()
                    .find(|sa| sa.children.iter().any(|c| c.spi_in == spi));
                sa.map(|sa| {
                    sa.last_heard = sa.last_heard.max(now);
                    sa.id
                })
            }
            DataplaneEvent::UnknownSpi { spi, remote, .. } => {
                let sa = sas.values_mut().find(|sa| {
                    sa.state == IkeState::Established
                        && sa.rekeyed_to.is_none()
                        && sa.remote.ip() == remote.ip()
                });
                match sa {
                    Some(sa) => {
                        exchange::informational::send_invalid_spi(sa, &mut cx, spi);
                        Some(sa.id)
                    }
                    None => {
                        debug!(spi = format_args!("{spi:08x}"), peer = %remote, "ESP for an unknown SPI from a peer without IKE SA");
                        None
                    }
                }
            }
        };
        self.settle(touched);
    }

    pub fn handle_command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Initiate { connection, child } => {
                self.initiate(now, &connection, child.as_deref())
            }
            Command::TerminateIke { connection } => {
                let (mut cx, sas) = self.cx(now);
                for sa in sas.values_mut().filter(|sa| sa.conn.name == connection) {
                    match sa.state {
                        IkeState::Established => queue(sa, &mut cx, Task::DeleteIke),
                        IkeState::Connecting => exchange::close(sa, &mut cx, DownReason::Deleted),
                        IkeState::Deleting | IkeState::Closed => {}
                    }
                }
            }
            Command::TerminateChild { child } => {
                self.for_children(now, &child, Task::DeleteChild);
            }
            Command::RekeyChild { child } => {
                self.for_children(now, &child, Task::RekeyChild);
            }
            Command::RekeyIke { connection } => {
                let (mut cx, sas) = self.cx(now);
                let live = |sa: &&mut Box<IkeSa>| {
                    sa.conn.name == connection
                        && sa.state == IkeState::Established
                        && sa.rekeyed_to.is_none()
                };
                for sa in sas.values_mut().filter(live) {
                    queue(sa, &mut cx, Task::RekeyIke);
                }
            }
        }
        self.settle_all();
    }

    /// Queues `task` for every installed CHILD_SA made from child config `name`.
    fn for_children(&mut self, now: Instant, name: &str, task: fn(ChildId) -> Task) {
        let (mut cx, sas) = self.cx(now);
        for sa in sas
            .values_mut()
            .filter(|sa| sa.state == IkeState::Established)
        {
            let ids: Vec<ChildId> = sa
                .children
                .iter()
                .filter(|c| c.name == name)
                .map(|c| c.id)
                .collect();
            for id in ids {
                queue(sa, &mut cx, task(id));
            }
        }
    }

    /// The peer with this identity sent INITIAL_CONTACT on IKE SA `keep`:
    /// it has no other SAs with us any more, so ours go without a word.
    fn initial_contact(&mut self, now: Instant, keep: IkeId, peer: &crate::identity::Identity) {
        let Some((conn, eap_user)) = self
            .sas
            .get(&keep)
            .map(|sa| (sa.conn.name.clone(), sa.eap_identity.clone()))
        else {
            return;
        };
        let (mut cx, sas) = self.cx(now);
        // Clients that authenticated with EAP may share an IDi (Windows
        // sends its address, often a private one behind the same NAT): the
        // EAP user tells them apart.
        let stale = |sa: &&mut Box<IkeSa>| {
            sa.id != keep
                && sa.conn.name == conn
                && sa.state != IkeState::Closed
                && sa.eap_identity == eap_user
                && sa.peer_id.as_ref().is_some_and(|p| p.matches(peer))
        };
        for sa in sas.values_mut().filter(stale) {
            info!(connection = %conn, peer = %peer, "peer sent INITIAL_CONTACT: removing its old IKE SA");
            let why = DownReason::Failed("replaced: the peer sent INITIAL_CONTACT".into());
            exchange::close(sa, &mut cx, why);
        }
    }

    /// Applies what a handler could not do with its own SA: inserting a
    /// rekeyed IKE SA and moving CHILD_SAs (with their queued tasks).
    fn apply(&mut self, now: Instant, spawn: exchange::Spawn) {
        if let Some(new) = spawn.new {
            let (id, spi) = (new.id, new.own_spi());
            self.sas.insert(id, Box::new(new));
            self.by_spi.insert(spi, id);
        }
        if let Some((keep, peer)) = spawn.initial_contact {
            self.initial_contact(now, keep, &peer);
        }
        for (from, to) in spawn.moves {
            let Some(src) = self.sas.get_mut(&from) else {
                continue;
            };
            let carry = crate::sa::Carry::take_from(src);
            if let Some(dst) = self.sas.get_mut(&to) {
                dst.crossing_of = None;
                carry.put_into(dst);
            }
        }
        if let Some((origin, deleted)) = spawn.crossing_lost
            && let Some(sa) = self.sas.get_mut(&origin)
            && sa
                .ike_collision
                .as_ref()
                .is_some_and(|c| c.created == deleted)
        {
            sa.ike_collision = None;
        }
        if let Some((dup, winner)) = spawn.redundant
            && let Some(sa) = self.sas.get_mut(&dup)
        {
            sa.rekeyed_to = Some(winner);
            sa.redundant_until = Some(now + self.config.retransmit.span());
        }
        if let Some((to, carry)) = spawn.adopt {
            match self.sas.get_mut(&to) {
                Some(dst) => {
                    dst.crossing_of = None;
                    carry.put_into(dst);
                }
                None => {
                    warn!("the IKE SA that should take over the CHILD_SAs is gone; removing them");
                    for mut c in carry.children {
                        c.drop_outbound(&mut self.out.commands);
                        c.drop_inbound(&mut self.out.commands);
                        self.alloc.child_spis.remove(&c.spi_in);
                    }
                    for (_, child, spi) in carry.lingering {
                        self.out.commands.push_back(SaCommand::Delete {
                            child,
                            spi,
                            inbound: true,
                        });
                        self.alloc.child_spis.remove(&spi);
                    }
                }
            }
        }
        let (mut cx, sas) = self.cx(now);
        for sa in sas.values_mut() {
            exchange::run_tasks(sa, &mut cx);
        }
    }

    fn initiate(&mut self, now: Instant, name: &str, child: Option<&str>) {
        let Some(conn) = self
            .config
            .connections
            .iter()
            .find(|c| c.name == name)
            .cloned()
        else {
            warn!(connection = name, "initiate: no such connection");
            return;
        };
        let wanted: Vec<String> = match child {
            Some(c) => vec![c.to_string()],
            None => {
                let start: Vec<String> = conn
                    .children
                    .iter()
                    .filter(|c| c.start_action == StartAction::Start)
                    .map(|c| c.name.clone())
                    .collect();
                if start.is_empty() {
                    conn.children
                        .iter()
                        .take(1)
                        .map(|c| c.name.clone())
                        .collect()
                } else {
                    start
                }
            }
        };
        let (mut cx, sas) = self.cx(now);
        let existing = sas.values_mut().find(|sa| {
            sa.conn.name == name
                && matches!(sa.state, IkeState::Connecting | IkeState::Established)
                && sa.rekeyed_to.is_none()
        });
        if let Some(sa) = existing {
            // Further children ride on the IKE SA we have (CREATE_CHILD_SA).
            for w in wanted {
                let up = sa
                    .children
                    .iter()
                    .any(|c| c.name == w && c.state != ChildState::Deleting);
                let riding = sa
                    .hs
                    .as_ref()
                    .and_then(|h| h.child.as_ref())
                    .is_some_and(|p| p.name == w);
                if up || riding {
                    info!(connection = name, child = %w, "initiate: CHILD_SA is already up or on its way");
                    continue;
                }
                queue(sa, &mut cx, Task::CreateChild(w));
            }
            return;
        }
        let first = wanted.first().cloned();
        let Some(mut sa) = exchange::ike_sa_init::initiate(&mut cx, conn, first.as_deref()) else {
            return;
        };
        // No IKE SA of this connection exists here (we checked above): the
        // peer may hold stale ones from before a restart of ours.
        if let Some(hs) = sa.hs.as_mut() {
            hs.initial_contact = true;
        }
        for w in wanted.into_iter().skip(1) {
            sa.tasks.push_back(Task::CreateChild(w));
        }
        let (id, spi) = (sa.id, sa.spi_i);
        sas.insert(id, Box::new(sa));
        self.by_spi.insert(spi, id);
        self.settle([id]);
    }

    /// Reauthentication (RFC 7296 §2.8.3), make-before-break as strongSwan
    /// does it: a new IKE SA with a full IKE_SA_INIT/IKE_AUTH (without
    /// INITIAL_CONTACT, which would make the peer drop the old SA first)
    /// carrying the CHILD_SAs the old one has; the old one is deleted only
    /// when they are all up ([`Engine::finish_reauths`]). Until then traffic
    /// keeps flowing over the old SAs.
    fn start_reauth(&mut self, now: Instant, old_id: IkeId) {
        let Some(old) = self.sas.get_mut(&old_id) else {
            return;
        };
        old.reauth_due = false;
        if old.state != IkeState::Established || old.rekeyed_to.is_some() || old.reauth_by.is_some()
        {
            return;
        }
        let conn = old.conn.clone();
        let mut names: Vec<String> = Vec::new();
        for c in old
            .children
            .iter()
            .filter(|c| c.state == ChildState::Installed)
        {
            if !names.contains(&c.name) {
                names.push(c.name.clone());
            }
        }
        let (mut cx, sas) = self.cx(now);
        let Some(mut new) = exchange::ike_sa_init::initiate(
            &mut cx,
            conn.clone(),
            names.first().map(String::as_str),
        ) else {
            return;
        };
        for n in names.iter().skip(1) {
            new.tasks.push_back(Task::CreateChild(n.clone()));
        }
        new.reauth_of = Some(old_id);
        let (id, spi) = (new.id, new.spi_i);
        info!(connection = %conn.name, old = old_id.0, new = id.0, children = names.len(), "reauthenticating: new IKE SA");
        if let Some(old) = sas.get_mut(&old_id) {
            old.reauth_by = Some(id);
        }
        sas.insert(id, Box::new(new));
        self.by_spi.insert(spi, id);
        self.settle([id, old_id]);
    }

    /// Completes or abandons reauthentications whose new IKE SA is among
    /// `ids`: up with every CHILD_SA and nothing left to do → the old SA is
    /// deleted; gone → the old SA stays and tries again in a minute (its
    /// hard lifetime still ends it if that never works).
    fn finish_reauths(&mut self, done: Vec<(IkeId, IkeId, bool)>) {
        let Some(now) = self.now else { return };
        for (new_id, old_id, ok) in done {
            let kept = self
                .sas
                .get(&new_id)
                .map(|n| n.own_vips.clone())
                .unwrap_or_default();
            // The old SA may have been rekeyed meanwhile: its successor is
            // the one to delete.
            let mut target = old_id;
            for _ in 0..8 {
                match self.sas.get(&target).and_then(|s| s.rekeyed_to) {
                    Some(next) => target = next,
                    None => break,
                }
            }
            let (mut cx, sas) = self.cx(now);
            let Some(old) = sas.get_mut(&target) else {
                continue;
            };
            old.reauth_by = None;
            if old.state != IkeState::Established {
                continue;
            }
            if ok {
                info!(connection = %old.conn.name, old = target.0, new = new_id.0, "reauthenticated; deleting the old IKE SA");
                old.vips_kept = kept;
                old.reauth_at = None;
                queue(old, &mut cx, Task::DeleteIke);
            } else {
                warn!(connection = %old.conn.name, old = target.0, "reauthentication failed; the old IKE SA stays and tries again in a minute");
                old.reauth_at = Some(now + REAUTH_RETRY);
            }
            let id = old.id;
            self.settle([id]);
        }
    }

    /// Bookkeeping after SAs were worked on: closed ones leave every table,
    /// SAs past IKE_SA_INIT leave the half-open index, and the deadline
    /// index learns each SA's next deadline. Only the given SAs are looked
    /// at, so one datagram costs O(log n), not O(n).
    fn settle(&mut self, ids: impl IntoIterator<Item = IkeId>) {
        let mut reauths = Vec::new();
        for id in ids {
            let Some(sa) = self.sas.get_mut(&id) else {
                self.timers.set(id, None);
                continue;
            };
            if let Some(old) = sa.reauth_of {
                if sa.state == IkeState::Closed {
                    reauths.push((id, old, false));
                } else if sa.state == IkeState::Established
                    && sa.tasks.is_empty()
                    && sa.requests.is_free()
                    && sa.hs.is_none()
                {
                    sa.reauth_of = None;
                    reauths.push((id, old, true));
                }
            }
            if sa.state != IkeState::Connecting
                && let Some(key) = sa.half_open_key.take()
            {
                self.half_open.remove(&key);
                if let Some(n) = self.half_open_by_ip.get_mut(&key.0.ip()) {
                    *n -= 1;
                    if *n == 0 {
                        self.half_open_by_ip.remove(&key.0.ip());
                    }
                }
            }
            if sa.state == IkeState::Closed {
                let sa = self.sas.remove(&id).expect("present");
                self.by_spi.remove(&sa.own_spi());
                for c in &sa.children {
                    self.alloc.child_spis.remove(&c.spi_in);
                }
                self.timers.set(id, None);
            } else {
                self.timers.set(id, sa.next_deadline());
            }
        }
        if !reauths.is_empty() {
            self.finish_reauths(reauths);
        }
        // A table that grew under a flood gives its memory back.
        if self.sas.capacity() > 4096 && self.sas.len() * 4 < self.sas.capacity() {
            self.sas.shrink_to_fit();
            self.by_spi.shrink_to_fit();
            self.half_open.shrink_to_fit();
            self.half_open_by_ip.shrink_to_fit();
            self.timers.shrink();
        }
    }

    /// [`Engine::settle`] for every SA: after commands and rare events that
    /// may touch many SAs.
    fn settle_all(&mut self) {
        let ids: Vec<IkeId> = self.sas.keys().copied().collect();
        self.settle(ids);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// Data-plane commands. Drain these before [`Engine::poll_transmit`]: an
    /// inbound SA must be installed before the response that lets the peer use it.
    pub fn poll_sa_command(&mut self) -> Option<SaCommand> {
        self.out.commands.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// The earliest instant at which [`Engine::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first()
    }

    /// Snapshot of every IKE SA and its children.
    pub fn status(&self) -> Vec<IkeSaStatus> {
        let mut v: Vec<IkeSaStatus> = self
            .sas
            .values()
            .map(|sa| exchange::status_of(sa))
            .collect();
        v.sort_by_key(|s| s.ike);
        v
    }

    /// Number of IKE SAs (any state).
    pub fn ike_sa_count(&self) -> usize {
        self.sas.len()
    }
}

/// The peer did not answer through the whole retransmission schedule: the
/// SA goes, and with `dpd_action = restart` the caller initiates the
/// connection again (returned: connection and the children that were up).
fn peer_dead(sa: &mut IkeSa, cx: &mut Cx) -> Option<(String, Vec<String>)> {
    let deleting = sa.state == IkeState::Deleting;
    if sa.rekeyed_to.is_none() {
        warn!(connection = %sa.conn.name, peer = %sa.remote, "peer did not answer: giving up on the IKE SA");
    }
    let established = sa.state == IkeState::Established;
    let children: Vec<String> = sa.children.iter().map(|c| c.name.clone()).collect();
    let reason = if deleting {
        DownReason::Deleted
    } else {
        DownReason::PeerDead
    };
    exchange::close(sa, cx, reason);
    let restart =
        established && sa.rekeyed_to.is_none() && sa.conn.dpd_action == DpdAction::Restart;
    restart.then(|| (sa.conn.name.clone(), children))
}

/// Queues a task once and starts it if the SA is free.
fn queue(sa: &mut IkeSa, cx: &mut Cx, task: Task) {
    if !sa.tasks.contains(&task) {
        sa.tasks.push_back(task);
    }
    exchange::run_tasks(sa, cx);
}

/// Whether the header's SPIs and Initiator flag are consistent with the SA.
fn header_fits_sa(sa: &IkeSa, hdr: &HeaderRepr) -> bool {
    // The peer is the original initiator exactly when we are the responder.
    let sender_is_initiator = hdr.flags.initiator();
    if sender_is_initiator == sa.is_initiator() {
        return false;
    }
    if hdr.spi_i != sa.spi_i {
        return false;
    }
    // The IKE_SA_INIT response tells the initiator SPIr for the first time.
    let learning_spi_r =
        sa.is_initiator() && sa.spi_r == 0 && hdr.exchange == ExchangeType::IKE_SA_INIT;
    learning_spi_r || hdr.spi_r == sa.spi_r
}

/// Notify types that end an exchange with an error when found in a response.
pub(crate) fn error_notify(payloads: &[oxisec_wire::Payload]) -> Option<NotifyType> {
    payloads.iter().find_map(|p| match p {
        oxisec_wire::Payload::Notify(n) if n.ty.is_error() => Some(n.ty),
        _ => None,
    })
}
