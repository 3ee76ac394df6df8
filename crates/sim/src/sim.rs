//! The event loop: two nodes, one link, one virtual clock.
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use oxisec_esp::{DropReason, UdpEncap};
use oxisec_ike::{Command, Config, Datagram, Engine, Event, IkeSaStatus, SaCommand, Transmit};
use oxisec_wire::ExchangeType;

use crate::NodeId;
use crate::dataplane::{DataPlane, TxError, flow_packet};
use crate::link::{
    IP_UDP_OVERHEAD, IkeInfo, Kind, Link, LinkConfig, LinkCounters, NON_ESP_MARKER, PacketInfo,
};
use crate::rng::SimRng;
use crate::setup::{CHILD, CONNECTION, Gateway};

/// More steps than this at one virtual instant means something keeps
/// asking to run at a deadline it does not clear.
const LIVELOCK_STEPS: u64 = 100_000;
/// How many failure descriptions are kept for the report.
const FAILURE_LOG: usize = 64;

/// The test flow of one host: one packet every `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowConfig {
    pub interval: Duration,
    /// UDP payload bytes of each inner packet (at least 13).
    pub payload_len: usize,
}

impl FlowConfig {
    pub fn every(interval: Duration) -> FlowConfig {
        FlowConfig {
            interval,
            payload_len: 64,
        }
    }
}

/// What happened to the packets of one flow (counted for the sender).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlowCounters {
    /// Packets the host wanted to send.
    pub due: u64,
    /// Due before the sender ever had an outbound SA: not a loss.
    pub before_up: u64,
    /// Sent before the tunnel was up on both sides (the IKE_AUTH responder
    /// sends as soon as it answers) and not decapsulated because the
    /// receiver had no SA yet: not a loss to a missing SA either.
    pub early_undecryptable: u64,
    /// Encapsulated and handed to the link.
    pub sent: u64,
    /// Dropped by the link (random loss, MTU, link down, hooks).
    pub lost_on_link: u64,
    /// Decapsulated by the receiver (each packet once).
    pub delivered: u64,
    /// Second copies (link duplicates) the receiver's replay window refused.
    pub duplicates_rejected: u64,
    /// Lost to a missing SA: no policy or outbound SA at the sender after
    /// the tunnel had been up.
    pub no_sa_at_sender: u64,
    /// Lost to a missing SA: the receiver had no inbound SA for the SPI.
    pub unknown_spi: u64,
    /// Lost to a missing SA: any other failure to encapsulate, route or
    /// decapsulate (wrong keys, selectors, replay of a new packet).
    pub failed: u64,
    /// A packet decapsulated twice: the replay window let a copy through.
    pub delivered_twice: u64,
}

impl FlowCounters {
    /// Packets lost because an SA was missing or wrong at either end: the
    /// number every test wants to be zero.
    pub fn lost_to_missing_sa(&self) -> u64 {
        self.no_sa_at_sender + self.unknown_spi + self.failed
    }

    pub fn add(&mut self, o: &FlowCounters) {
        self.due += o.due;
        self.before_up += o.before_up;
        self.early_undecryptable += o.early_undecryptable;
        self.sent += o.sent;
        self.lost_on_link += o.lost_on_link;
        self.delivered += o.delivered;
        self.duplicates_rejected += o.duplicates_rejected;
        self.no_sa_at_sender += o.no_sa_at_sender;
        self.unknown_spi += o.unknown_spi;
        self.failed += o.failed;
        self.delivered_twice += o.delivered_twice;
    }
}

struct FlowState {
    cfg: FlowConfig,
    next_seq: u64,
    /// Bumped on every start/stop so stale ticks are ignored.
    generation: u64,
}

/// One gateway: an engine, its data plane and what they did.
pub struct Node {
    pub id: NodeId,
    pub addr: IpAddr,
    /// The host behind the gateway that sends the flow.
    pub host: Ipv4Addr,
    pub engine: Engine,
    pub dp: DataPlane,
    /// Every engine event with the virtual time it came out.
    pub events: Vec<(Duration, Event)>,
    /// SaCommands applied, as (time, "in+/out+/in-/out-", SPI).
    pub sa_log: Vec<(Duration, &'static str, u32)>,
    /// IKE datagrams sent, and how many of them were requests (first sends
    /// and retransmissions).
    pub ike_sent: u64,
    pub ike_requests_sent: u64,
    /// NAT keepalives sent.
    pub keepalives_sent: u64,
    /// Requests sent (first sends and retransmissions) per exchange type.
    requests: BTreeMap<ExchangeType, u64>,
    flow: Option<FlowState>,
    flow_generation: u64,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("status", &self.engine.status())
            .field("dp", &self.dp)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// IKE SAs in state ESTABLISHED.
    pub fn established(&self) -> usize {
        self.engine
            .status()
            .iter()
            .filter(|s| s.state == "ESTABLISHED")
            .count()
    }

    /// Events with their times that `f` selects.
    pub fn events_where(&self, f: impl Fn(&Event) -> bool) -> Vec<(Duration, Event)> {
        self.events.iter().filter(|(_, e)| f(e)).cloned().collect()
    }

    pub fn count_events(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }

    /// Requests of one exchange type this node sent, retransmissions included.
    pub fn requests_sent(&self, exchange: ExchangeType) -> u64 {
        self.requests.get(&exchange).copied().unwrap_or(0)
    }
}

/// What the event queue holds.
enum Ev {
    Ike {
        to: NodeId,
        dgram: Datagram,
    },
    Esp {
        to: NodeId,
        from: NodeId,
        seq: u64,
        /// Sent before both sides ever had an outbound SA.
        early: bool,
        /// The sender's UDP endpoints.
        udp: UdpEncap,
        data: Vec<u8>,
    },
    /// An inbound SA removal held back by the driver grace.
    DeferredSa {
        node: NodeId,
        cmd: SaCommand,
    },
    FlowTick {
        node: NodeId,
        generation: u64,
    },
    Command {
        node: NodeId,
        cmd: Command,
    },
}

struct Scheduled {
    at: Instant,
    /// Insertion order: ties at one instant are processed first in, first out.
    order: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.order) == (o.at, o.order)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.order).cmp(&(self.at, self.order))
    }
}

/// The agreed state of both nodes after [`Sim::check_consistent`], from A's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consistent {
    /// (SPIi, SPIr) of each IKE SA.
    pub ike: Vec<(u64, u64)>,
    /// (A's inbound SPI, A's outbound SPI) of each CHILD_SA.
    pub children: Vec<(u32, u32)>,
}

/// Totals for a run, printable as one line.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub virtual_time: Duration,
    /// Request/response exchanges started by either side (first sends of requests).
    pub exchanges: u64,
    pub retransmits: u64,
    /// Retransmitted (or duplicated) requests answered from the response cache.
    pub cache_answers: u64,
    /// IKE SA rekeys and CHILD_SA rekeys completed, as A saw them.
    pub ike_rekeys: u64,
    pub child_rekeys: u64,
    pub flow: FlowCounters,
    pub ike_link: LinkCounters,
    pub esp_link: LinkCounters,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.virtual_time.as_secs();
        write!(
            f,
            "virtual {}d{:02}h{:02}m: {} exchanges ({} retransmits, {} answered from cache), \
             {} IKE rekeys, {} CHILD rekeys; IKE datagrams {} sent / {} lost on link; \
             packets {} due, {} delivered, {} lost on link, {} lost to missing SA \
             ({} no SA at sender, {} unknown SPI, {} other), {} duplicates rejected, \
             {} undecryptable before the tunnel was up",
            secs / 86_400,
            secs % 86_400 / 3600,
            secs % 3600 / 60,
            self.exchanges,
            self.retransmits,
            self.cache_answers,
            self.ike_rekeys,
            self.child_rekeys,
            self.ike_link.offered,
            self.ike_link.dropped(),
            self.flow.due - self.flow.before_up,
            self.flow.delivered,
            self.flow.lost_on_link,
            self.flow.lost_to_missing_sa(),
            self.flow.no_sa_at_sender,
            self.flow.unknown_spi,
            self.flow.failed,
            self.flow.duplicates_rejected,
            self.flow.early_undecryptable,
        )
    }
}

/// Two nodes on a virtual clock. See the crate documentation.
pub struct Sim {
    start: Instant,
    now: Instant,
    order: u64,
    queue: BinaryHeap<Scheduled>,
    /// IKE datagrams and commands in the queue (ESP and ticks do not keep
    /// the simulation busy).
    pending_control: usize,
    nodes: [Node; 2],
    pub link: Link,
    /// Per sender.
    flows: [FlowCounters; 2],
    /// Per sender: which sequence numbers were delivered.
    delivered: [Vec<bool>; 2],
    /// The first failures of the flow, for the report.
    pub failures: Vec<String>,
    /// IKE datagrams addressed to nobody.
    pub unroutable: u64,
    sched_rng: SimRng,
    /// How long the data plane keeps an inbound SA after the engine said
    /// to delete it (zero: at once, as the daemon's adapter does).
    inbound_grace: Duration,
    trace: bool,
    digest: u64,
    steps_here: u64,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("elapsed", &self.elapsed())
            .field("a", &self.nodes[0])
            .field("b", &self.nodes[1])
            .field("flows", &self.flows)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Sim {
    /// Gateways `a` and `b` joined by `link` (the same both ways).
    pub fn new(seed: u64, a: &Gateway, b: &Gateway, link: LinkConfig) -> Sim {
        Sim::with_link(seed, a, b, Link::new(seed, link))
    }

    pub fn with_link(seed: u64, a: &Gateway, b: &Gateway, link: Link) -> Sim {
        Sim::from_configs(
            seed,
            [(a.ip(), a.host, a.config()), (b.ip(), b.host, b.config())],
            link,
        )
    }

    /// Nodes from raw engine configurations: (gateway address, flow host, config).
    pub fn from_configs(seed: u64, nodes: [(IpAddr, Ipv4Addr, Config); 2], link: Link) -> Sim {
        let start = Instant::now();
        let [a, b] = nodes;
        let node = |id: NodeId, (addr, host, config): (IpAddr, Ipv4Addr, Config)| Node {
            id,
            addr,
            host,
            engine: Engine::new(
                config,
                Box::new(SimRng::fork(seed, &format!("engine {id}"))),
            ),
            dp: DataPlane::new(),
            events: Vec::new(),
            sa_log: Vec::new(),
            ike_sent: 0,
            ike_requests_sent: 0,
            keepalives_sent: 0,
            requests: BTreeMap::new(),
            flow: None,
            flow_generation: 0,
        };
        Sim {
            start,
            now: start,
            order: 0,
            queue: BinaryHeap::new(),
            pending_control: 0,
            nodes: [node(NodeId::A, a), node(NodeId::B, b)],
            link,
            flows: [FlowCounters::default(); 2],
            delivered: [Vec::new(), Vec::new()],
            failures: Vec::new(),
            unroutable: 0,
            sched_rng: SimRng::fork(seed, "schedule"),
            inbound_grace: Duration::ZERO,
            trace: std::env::var_os("OXISEC_SIM_TRACE").is_some_and(|v| v != "0"),
            digest: 0xcbf2_9ce4_8422_2325,
            steps_here: 0,
        }
    }

    // ------------------------------------------------------------------
    // Clock and access
    // ------------------------------------------------------------------

    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The instant `d` after the start.
    pub fn at(&self, d: Duration) -> Instant {
        self.start + d
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id.index()]
    }

    /// Makes the data plane keep inbound SAs for `grace` after the engine
    /// deletes them, so that ESP packets still in flight on a rekeyed SA
    /// decrypt. This models a driver-side grace period, the esp crate's
    /// advice for rekeys; zero (the default) applies deletes at once.
    pub fn set_inbound_grace(&mut self, grace: Duration) {
        self.inbound_grace = grace;
    }

    /// Prints every step to stderr from now on (or stops); the
    /// `OXISEC_SIM_TRACE` environment variable turns it on from the start.
    pub fn set_trace(&mut self, on: bool) {
        self.trace = on;
    }

    /// A random stream for the test's own schedule, derived from the seed.
    pub fn schedule_rng(&mut self) -> &mut SimRng {
        &mut self.sched_rng
    }

    /// A digest of everything that crossed the link and every engine event,
    /// with times: equal for two runs exactly when they went the same way.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    fn log(&self, what: impl FnOnce() -> String) {
        if self.trace {
            let t = self.elapsed();
            eprintln!("[{:>10.3}s] {}", t.as_secs_f64(), what());
        }
    }

    fn schedule(&mut self, at: Instant, ev: Ev) {
        if matches!(
            ev,
            Ev::Ike { .. } | Ev::Command { .. } | Ev::DeferredSa { .. }
        ) {
            self.pending_control += 1;
        }
        self.order += 1;
        self.queue.push(Scheduled {
            at,
            order: self.order,
            ev,
        });
    }

    // ------------------------------------------------------------------
    // Inputs
    // ------------------------------------------------------------------

    /// Gives a node's engine a command now.
    pub fn command(&mut self, node: NodeId, cmd: Command) {
        self.log(|| format!("{node}: command {cmd:?}"));
        let now = self.now;
        self.nodes[node.index()].engine.handle_command(now, cmd);
        self.drain(node);
    }

    /// Gives a node's engine a command at virtual instant `at` (≥ now).
    pub fn schedule_command(&mut self, at: Instant, node: NodeId, cmd: Command) {
        self.schedule(at.max(self.now), Ev::Command { node, cmd });
    }

    pub fn initiate(&mut self, node: NodeId) {
        self.command(
            node,
            Command::Initiate {
                connection: CONNECTION.into(),
                child: None,
            },
        );
    }

    pub fn rekey_child(&mut self, node: NodeId) {
        self.command(
            node,
            Command::RekeyChild {
                child: CHILD.into(),
            },
        );
    }

    pub fn rekey_ike(&mut self, node: NodeId) {
        self.command(
            node,
            Command::RekeyIke {
                connection: CONNECTION.into(),
            },
        );
    }

    pub fn terminate_child(&mut self, node: NodeId) {
        self.command(
            node,
            Command::TerminateChild {
                child: CHILD.into(),
            },
        );
    }

    pub fn terminate_ike(&mut self, node: NodeId) {
        self.command(
            node,
            Command::TerminateIke {
                connection: CONNECTION.into(),
            },
        );
    }

    /// Starts the flow of both hosts; B's first packet comes half an
    /// interval after A's so the two never tick at the same instant.
    pub fn start_flows(&mut self, cfg: FlowConfig) {
        self.start_flow(NodeId::A, cfg, Duration::ZERO);
        self.start_flow(NodeId::B, cfg, cfg.interval / 2);
    }

    /// Starts (or restarts) one host's flow; its first packet is due after `phase`.
    pub fn start_flow(&mut self, node: NodeId, cfg: FlowConfig, phase: Duration) {
        let n = &mut self.nodes[node.index()];
        n.flow_generation += 1;
        let generation = n.flow_generation;
        let next_seq = n.flow.as_ref().map_or(0, |f| f.next_seq);
        n.flow = Some(FlowState {
            cfg,
            next_seq,
            generation,
        });
        let at = self.now + phase;
        self.schedule(at, Ev::FlowTick { node, generation });
    }

    pub fn stop_flows(&mut self) {
        for n in &mut self.nodes {
            n.flow_generation += 1;
            if let Some(f) = &mut n.flow {
                f.generation = n.flow_generation;
            }
        }
    }

    // ------------------------------------------------------------------
    // Running
    // ------------------------------------------------------------------

    fn next_timer(&self) -> Option<Instant> {
        self.nodes
            .iter()
            .filter_map(|n| n.engine.poll_timeout())
            .min()
    }

    /// Processes the next event or engine deadline if it is due by `end`;
    /// returns false when there is none.
    fn step(&mut self, end: Instant) -> bool {
        let queued = self.queue.peek().map(|s| s.at);
        let timer = self.next_timer();
        let next = match (queued, timer) {
            (Some(q), Some(t)) => q.min(t),
            (Some(q), None) => q,
            (None, Some(t)) => t,
            (None, None) => return false,
        };
        if next > end {
            return false;
        }
        if next > self.now {
            self.now = next;
            self.steps_here = 0;
        }
        self.steps_here += 1;
        if self.steps_here > LIVELOCK_STEPS {
            panic!(
                "livelock: more than {LIVELOCK_STEPS} steps at {:?}; {self:?}",
                self.elapsed()
            );
        }
        // At a tie, arrivals and ticks go before deadlines.
        if queued.is_some_and(|q| q <= next) {
            if let Some(s) = self.queue.pop() {
                self.process(s.ev);
            }
        } else {
            for id in NodeId::BOTH {
                let due = self.nodes[id.index()]
                    .engine
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now);
                if due {
                    self.log(|| format!("{id}: timeout"));
                    let now = self.now;
                    self.nodes[id.index()].engine.handle_timeout(now);
                    self.drain(id);
                }
            }
        }
        true
    }

    /// Runs everything due up to `end`; the clock stands at `end` afterwards.
    pub fn run_until(&mut self, end: Instant) {
        while self.step(end) {}
        if end > self.now {
            self.now = end;
            self.steps_here = 0;
        }
    }

    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Whether no IKE datagram, command or held-back SA removal is in
    /// flight. Engines with timers (lifetimes, liveness) are never idle;
    /// combined with a successful [`check_consistent`](Self::check_consistent)
    /// this marks a moment between exchanges.
    pub fn control_quiet(&self) -> bool {
        self.pending_control == 0
    }

    /// [`control_quiet`](Self::control_quiet), and no engine waits for a deadline.
    pub fn control_idle(&self) -> bool {
        self.pending_control == 0 && self.next_timer().is_none()
    }

    /// Runs until the control plane is idle (then lets ESP packets in
    /// flight land), at most for `max`. Returns whether it became idle.
    pub fn run_until_idle(&mut self, max: Duration) -> bool {
        let end = self.now + max;
        while !self.control_idle() {
            if !self.step(end) {
                return false;
            }
        }
        let flush = self
            .link
            .config(NodeId::A)
            .max_delay()
            .max(self.link.config(NodeId::B).max_delay());
        self.run_for(flush + Duration::from_millis(1));
        true
    }

    /// [`run_until_idle`](Self::run_until_idle) with a 15-minute limit;
    /// panics if not reached. Engines with timers (lifetimes, liveness
    /// checks, NAT keepalives) are never idle: use
    /// [`run_until_cond`](Self::run_until_cond) with
    /// [`control_quiet`](Self::control_quiet) for them.
    pub fn settle(&mut self) {
        assert!(
            self.run_until_idle(Duration::from_secs(900)),
            "simulation did not settle: {self:?}"
        );
    }

    /// Runs until `cond` holds (checked after every step) or `max` passes.
    pub fn run_until_cond(&mut self, max: Duration, mut cond: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now + max;
        loop {
            if cond(self) {
                return true;
            }
            if !self.step(end) {
                self.now = self.now.max(end);
                return cond(self);
            }
        }
    }

    /// A starts the IKE SA with its child; runs until both sides have one
    /// ESTABLISHED IKE SA with one CHILD_SA (at most 10 virtual minutes).
    pub fn connect(&mut self) {
        self.initiate(NodeId::A);
        let up = self.run_until_cond(Duration::from_secs(600), |s| {
            NodeId::BOTH.iter().all(|&n| {
                let st = s.node(n).engine.status();
                st.len() == 1 && st[0].state == "ESTABLISHED" && st[0].children.len() == 1
            })
        });
        assert!(up, "tunnel did not come up: {self:?}");
    }

    // ------------------------------------------------------------------
    // Processing
    // ------------------------------------------------------------------

    fn process(&mut self, ev: Ev) {
        match ev {
            Ev::Ike { to, dgram } => {
                self.pending_control -= 1;
                self.log(|| {
                    format!(
                        "{to}: receives {:?} ({} bytes)",
                        IkeInfo::parse(&dgram.data),
                        dgram.data.len()
                    )
                });
                let now = self.now;
                self.nodes[to.index()].engine.handle_datagram(now, dgram);
                self.drain(to);
            }
            Ev::Command { node, cmd } => {
                self.pending_control -= 1;
                self.command(node, cmd);
            }
            Ev::FlowTick { node, generation } => self.flow_tick(node, generation),
            Ev::Esp {
                to,
                from,
                seq,
                early,
                udp,
                data,
            } => {
                self.esp_arrives(to, from, seq, early, udp, &data);
                self.feed_dataplane_events(to);
            }
            Ev::DeferredSa { node, cmd } => {
                self.pending_control -= 1;
                self.apply_sa(node, &cmd);
            }
        }
    }

    /// Drains a node's engine: SaCommands into its data plane first (an
    /// inbound SA must be in place before the message that lets the peer
    /// use it leaves), then events, then datagrams onto the link.
    fn drain(&mut self, id: NodeId) {
        let at = self.elapsed();
        while let Some(cmd) = self.nodes[id.index()].engine.poll_sa_command() {
            let deferred = matches!(cmd, SaCommand::Delete { inbound: true, .. })
                && !self.inbound_grace.is_zero();
            if deferred {
                self.log(|| format!("{id}: data plane holds back {cmd:?}"));
                self.schedule(
                    self.now + self.inbound_grace,
                    Ev::DeferredSa { node: id, cmd },
                );
            } else {
                self.apply_sa(id, &cmd);
            }
        }
        loop {
            let n = &mut self.nodes[id.index()];
            let Some(e) = n.engine.poll_event() else {
                break;
            };
            self.digest = fnv(self.digest, format!("{id}{e:?}").as_bytes());
            self.log(|| format!("{id}: event {e:?}"));
            self.nodes[id.index()].events.push((at, e));
        }
        while let Some(t) = self.nodes[id.index()].engine.poll_transmit() {
            self.send_ike(id, t);
        }
    }

    fn apply_sa(&mut self, id: NodeId, cmd: &SaCommand) {
        let at = self.elapsed();
        let n = &mut self.nodes[id.index()];
        {
            let (what, spi) = match cmd {
                SaCommand::InstallInbound { sa, .. } => ("in+", sa.spi),
                SaCommand::InstallOutbound { sa, .. } => ("out+", sa.spi),
                SaCommand::Delete {
                    spi, inbound: true, ..
                } => ("in-", *spi),
                SaCommand::Delete {
                    spi,
                    inbound: false,
                    ..
                } => ("out-", *spi),
                SaCommand::UpdateEndpoints { spi, .. } => ("out~", *spi),
            };
            n.sa_log.push((at, what, spi));
            let r = n.dp.apply(cmd);
            self.digest = fnv(fnv(self.digest, what.as_bytes()), &spi.to_be_bytes());
            self.log(|| format!("{id}: data plane {what} {spi:08x} {r:?}"));
        }
    }

    /// Hands what the data plane noticed (inbound activity, volume limits,
    /// ESP on unknown SPIs) to the engine, as a driver does.
    fn feed_dataplane_events(&mut self, id: NodeId) {
        let events = std::mem::take(&mut self.nodes[id.index()].dp.events);
        if events.is_empty() {
            return;
        }
        let now = self.now;
        for ev in events {
            self.log(|| format!("{id}: data plane reports {ev:?}"));
            self.nodes[id.index()].engine.handle_dataplane(now, ev);
            self.drain(id);
        }
    }

    fn node_at(&self, addr: IpAddr) -> Option<NodeId> {
        NodeId::BOTH
            .into_iter()
            .find(|n| self.nodes[n.index()].addr == addr)
    }

    fn send_ike(&mut self, from: NodeId, t: Transmit) {
        // A NAT keepalive (RFC 3948 §2.3) crosses the link but no driver
        // hands it to its engine.
        let keepalive = !t.non_esp_marker && t.data == [0xff];
        let info = IkeInfo::parse(&t.data).filter(|_| !keepalive);
        let n = &mut self.nodes[from.index()];
        if keepalive {
            n.keepalives_sent += 1;
        } else {
            n.ike_sent += 1;
        }
        if let Some(i) = info.filter(|i| !i.response) {
            n.ike_requests_sent += 1;
            *n.requests.entry(i.exchange).or_default() += 1;
        }
        let Some(to) = self.node_at(t.remote.ip()) else {
            self.unroutable += 1;
            return;
        };
        let marker = if t.non_esp_marker { NON_ESP_MARKER } else { 0 };
        let p = PacketInfo {
            from,
            kind: Kind::Ike,
            data: &t.data,
            wire_len: IP_UDP_OVERHEAD + marker + t.data.len(),
            at: self.elapsed(),
            ike: info,
        };
        let fate = self.link.send(&p);
        self.digest = fnv(
            fnv(self.digest, &self.elapsed().as_nanos().to_be_bytes()),
            &t.data,
        );
        self.log(|| format!("{from}: sends {info:?} ({} bytes): {fate:?}", t.data.len()));
        if keepalive {
            return;
        }
        for d in fate.unwrap_or_default() {
            let dgram = Datagram {
                local: t.remote,
                remote: t.local,
                data: t.data.clone(),
            };
            self.schedule(self.now + d, Ev::Ike { to, dgram });
        }
    }

    fn fail(&mut self, what: String) {
        self.log(|| format!("FLOW FAILURE: {what}"));
        if self.failures.len() < FAILURE_LOG {
            let at = self.elapsed();
            self.failures
                .push(format!("[{:.3}s] {what}", at.as_secs_f64()));
        }
    }

    fn flow_tick(&mut self, id: NodeId, generation: u64) {
        let peer_host = self.nodes[id.peer().index()].host;
        let n = &mut self.nodes[id.index()];
        let Some(f) = n.flow.as_mut().filter(|f| f.generation == generation) else {
            return;
        };
        let (seq, cfg, host) = (f.next_seq, f.cfg, n.host);
        f.next_seq += 1;
        self.schedule(
            self.now + cfg.interval,
            Ev::FlowTick {
                node: id,
                generation,
            },
        );
        let c = &mut self.flows[id.index()];
        c.due += 1;
        let inner = flow_packet::build(host, peer_host, id.index() as u8, seq, cfg.payload_len);
        let n = &mut self.nodes[id.index()];
        let encapsulated = n.dp.encapsulate(&inner);
        let ever_up = n.dp.ever_up;
        self.feed_dataplane_events(id);
        let (esp, udp) = match encapsulated {
            Ok(x) => x,
            Err(TxError::NoPolicy | TxError::NoSa(_)) if !ever_up => {
                self.flows[id.index()].before_up += 1;
                return;
            }
            Err(e @ (TxError::NoPolicy | TxError::NoSa(_))) => {
                self.flows[id.index()].no_sa_at_sender += 1;
                self.fail(format!("{id}: packet {seq} not sent: {e:?}"));
                return;
            }
            Err(e) => {
                self.flows[id.index()].failed += 1;
                self.fail(format!("{id}: packet {seq} not sent: {e:?}"));
                return;
            }
        };
        let Some(to) = self.node_at(udp.remote.ip()).filter(|to| *to != id) else {
            self.flows[id.index()].failed += 1;
            self.fail(format!(
                "{id}: packet {seq} sent to nobody at {}",
                udp.remote
            ));
            return;
        };
        self.flows[id.index()].sent += 1;
        let early = !self.nodes.iter().all(|n| n.dp.ever_up);
        let p = PacketInfo {
            from: id,
            kind: Kind::Esp,
            data: &esp,
            wire_len: IP_UDP_OVERHEAD + esp.len(),
            at: self.elapsed(),
            ike: None,
        };
        let fate = self.link.send(&p);
        self.digest = fnv(
            fnv(self.digest, &self.elapsed().as_nanos().to_be_bytes()),
            &esp,
        );
        match fate {
            Ok(delays) => {
                for d in delays {
                    let ev = Ev::Esp {
                        to,
                        from: id,
                        seq,
                        early,
                        udp,
                        data: esp.clone(),
                    };
                    self.schedule(self.now + d, ev);
                }
            }
            Err(_) => self.flows[id.index()].lost_on_link += 1,
        }
    }

    fn esp_arrives(
        &mut self,
        to: NodeId,
        from: NodeId,
        seq: u64,
        early: bool,
        udp: UdpEncap,
        data: &[u8],
    ) {
        let spi = data
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_be_bytes);
        let idx = usize::try_from(seq).unwrap_or(usize::MAX);
        let seen = self.delivered[from.index()]
            .get(idx)
            .copied()
            .unwrap_or(false);
        let (src, dst) = (
            IpAddr::V4(self.nodes[from.index()].host),
            IpAddr::V4(self.nodes[to.index()].host),
        );
        let now = self.now;
        let r = self.nodes[to.index()]
            .dp
            .decapsulate(now, data, udp.remote, udp.local);
        let c = &mut self.flows[from.index()];
        match r {
            Ok(inner) => {
                if flow_packet::parse(&inner, src, dst) != Some((from.index() as u8, seq)) {
                    c.failed += 1;
                    self.fail(format!(
                        "{to}: packet {seq} from {from} decapsulated into something else"
                    ));
                } else if seen {
                    c.delivered_twice += 1;
                    self.fail(format!("{to}: packet {seq} from {from} delivered twice"));
                } else {
                    c.delivered += 1;
                    let v = &mut self.delivered[from.index()];
                    if v.len() <= idx {
                        v.resize(idx + 1, false);
                    }
                    v[idx] = true;
                }
            }
            Err(DropReason::ReplayDuplicate) if seen => c.duplicates_rejected += 1,
            Err(DropReason::UnknownSpi) if early => c.early_undecryptable += 1,
            Err(DropReason::UnknownSpi) => {
                c.unknown_spi += 1;
                self.fail(format!(
                    "{to}: packet {seq} from {from}: unknown SPI {spi:08x}"
                ));
            }
            Err(r) => {
                c.failed += 1;
                self.fail(format!(
                    "{to}: packet {seq} from {from} on SPI {spi:08x}: {}",
                    r.name()
                ));
            }
        }
    }

    // ------------------------------------------------------------------
    // Results
    // ------------------------------------------------------------------

    /// The flow counters of packets sent by `from`.
    pub fn flow(&self, from: NodeId) -> FlowCounters {
        self.flows[from.index()]
    }

    /// Both flows added up.
    pub fn flows(&self) -> FlowCounters {
        let mut t = self.flows[0];
        t.add(&self.flows[1]);
        t
    }

    /// Panics with the failures when any packet was lost to a missing SA.
    pub fn assert_no_packet_lost_to_missing_sa(&self) {
        let f = self.flows();
        assert!(
            f.lost_to_missing_sa() == 0 && f.delivered_twice == 0,
            "packets lost to a missing SA: {f:?}\nfirst failures:\n  {}\nA: {:?}\nB: {:?}",
            self.failures.join("\n  "),
            self.node(NodeId::A).sa_log,
            self.node(NodeId::B).sa_log,
        );
    }

    pub fn summary(&self) -> Summary {
        let mut ike_link = self.link.counters(NodeId::A, Kind::Ike);
        ike_link.add(&self.link.counters(NodeId::B, Kind::Ike));
        let mut esp_link = self.link.counters(NodeId::A, Kind::Esp);
        esp_link.add(&self.link.counters(NodeId::B, Kind::Esp));
        let (mut requests, mut retransmits, mut cache) = (0, 0, 0);
        for n in &self.nodes {
            let st = n.engine.stats();
            requests += n.ike_requests_sent;
            retransmits += st.retransmits_sent;
            cache += st.retransmits_answered;
        }
        let a = self.node(NodeId::A);
        Summary {
            virtual_time: self.elapsed(),
            exchanges: requests.saturating_sub(retransmits),
            retransmits,
            cache_answers: cache,
            ike_rekeys: a.count_events(|e| matches!(e, Event::IkeRekeyed { .. })) as u64,
            child_rekeys: a.count_events(|e| {
                matches!(
                    e,
                    Event::ChildDown {
                        reason: oxisec_ike::DownReason::Rekeyed,
                        ..
                    }
                )
            }) as u64,
            flow: self.flows(),
            ike_link,
            esp_link,
        }
    }

    /// Checks that both nodes agree: the same IKE SAs (all ESTABLISHED, one
    /// the initiator, the other the responder), per IKE SA the same CHILD_SAs
    /// (all INSTALLED, SPIs swapped), each data plane holding exactly the
    /// engine's CHILD_SAs, each outbound SA being the other node's inbound SA
    /// with the same keys, and no data-plane command that did not fit.
    pub fn check_consistent(&self) -> Result<Consistent, String> {
        let (a, b) = (self.node(NodeId::A), self.node(NodeId::B));
        let (sa, sb) = (a.engine.status(), b.engine.status());
        let ctx = || format!("\nA: {a:?}\nB: {b:?}");
        for n in [a, b] {
            if !n.dp.errors.is_empty() {
                return Err(format!(
                    "{}: data-plane errors {:?}{}",
                    n.id,
                    n.dp.errors,
                    ctx()
                ));
            }
        }
        let key = |s: &IkeSaStatus| (s.spi_i, s.spi_r);
        let ma: BTreeMap<_, _> = sa.iter().map(|s| (key(s), s)).collect();
        let mb: BTreeMap<_, _> = sb.iter().map(|s| (key(s), s)).collect();
        if ma.len() != sa.len() || mb.len() != sb.len() {
            return Err(format!("an IKE SA appears twice{}", ctx()));
        }
        if ma.keys().ne(mb.keys()) {
            return Err(format!("IKE SAs differ{}", ctx()));
        }
        let mut children = Vec::new();
        for (k, x) in &ma {
            let y = mb[k];
            if x.state != "ESTABLISHED" || y.state != "ESTABLISHED" {
                return Err(format!(
                    "IKE SA {k:x?} is {} / {}{}",
                    x.state,
                    y.state,
                    ctx()
                ));
            }
            if x.initiator == y.initiator {
                return Err(format!(
                    "IKE SA {k:x?}: both sides have the same role{}",
                    ctx()
                ));
            }
            let cx: BTreeMap<_, _> = x
                .children
                .iter()
                .map(|c| ((c.spi_in, c.spi_out), c))
                .collect();
            let cy: BTreeMap<_, _> = y
                .children
                .iter()
                .map(|c| ((c.spi_out, c.spi_in), c))
                .collect();
            if cx.keys().ne(cy.keys())
                || cx.len() != x.children.len()
                || cy.len() != y.children.len()
            {
                return Err(format!("CHILD_SAs of IKE SA {k:x?} differ{}", ctx()));
            }
            for (pair, c) in &cx {
                let d = cy[pair];
                if c.state != "INSTALLED" || d.state != "INSTALLED" || c.name != d.name {
                    return Err(format!(
                        "CHILD_SA {pair:08x?} is {} / {}{}",
                        c.state,
                        d.state,
                        ctx()
                    ));
                }
                children.push(*pair);
            }
        }
        for (n, st) in [(a, &sa), (b, &sb)] {
            let ins: Vec<u32> = st
                .iter()
                .flat_map(|s| s.children.iter().map(|c| c.spi_in))
                .collect();
            let outs: Vec<u32> = st
                .iter()
                .flat_map(|s| s.children.iter().map(|c| c.spi_out))
                .collect();
            let dp_in: Vec<u32> = n.dp.inbound().into_keys().collect();
            let dp_out: Vec<u32> = n.dp.outbound().into_keys().collect();
            let (mut ins, mut outs) = (ins, outs);
            ins.sort_unstable();
            outs.sort_unstable();
            if ins != dp_in || outs != dp_out {
                return Err(format!(
                    "{}: data plane does not hold the engine's CHILD_SAs{}",
                    n.id,
                    ctx()
                ));
            }
        }
        if a.dp.outbound() != b.dp.inbound() || b.dp.outbound() != a.dp.inbound() {
            return Err(format!(
                "outbound SAs are not the peer's inbound SAs with the same keys{}",
                ctx()
            ));
        }
        children.sort_unstable();
        Ok(Consistent {
            ike: ma.keys().copied().collect(),
            children,
        })
    }

    /// [`check_consistent`](Self::check_consistent), panicking with the details.
    pub fn assert_consistent(&self) -> Consistent {
        self.check_consistent()
            .unwrap_or_else(|e| panic!("inconsistent at {:?}: {e}", self.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_at_one_instant_run_in_insertion_order() {
        let t = Instant::now();
        let mut h = BinaryHeap::new();
        for (i, at) in [(1, 5), (2, 3), (3, 5), (4, 3)] {
            h.push(Scheduled {
                at: t + Duration::from_secs(at),
                order: i,
                ev: Ev::FlowTick {
                    node: NodeId::A,
                    generation: 0,
                },
            });
        }
        let order: Vec<u64> = std::iter::from_fn(|| h.pop().map(|s| s.order)).collect();
        assert_eq!(order, [2, 4, 1, 3]);
    }

    #[test]
    fn ideal_link_brings_the_tunnel_up_and_carries_the_flow() {
        let mut sim = Sim::new(1, &Gateway::a(), &Gateway::b(), LinkConfig::ideal());
        sim.start_flows(FlowConfig::every(Duration::from_millis(500)));
        sim.connect();
        sim.run_for(Duration::from_secs(10));
        let c = sim.assert_consistent();
        assert_eq!((c.ike.len(), c.children.len()), (1, 1));
        let f = sim.flows();
        assert!(f.delivered >= 38, "{f:?}");
        assert_eq!(f.sent, f.delivered);
        sim.assert_no_packet_lost_to_missing_sa();
    }

    #[test]
    fn clock_jumps_to_the_next_event_and_stops_at_the_end() {
        let mut sim = Sim::new(1, &Gateway::a(), &Gateway::b(), LinkConfig::wan());
        sim.run_for(Duration::from_secs(3600));
        assert_eq!(sim.elapsed(), Duration::from_secs(3600));
        assert!(sim.control_idle());
        sim.connect();
        // Two round trips of 25–30 ms one way.
        assert!(sim.elapsed() - Duration::from_secs(3600) < Duration::from_millis(130));
    }
}
