//! The adapter between the engine's [`SaCommand`]s and the ESP crate's SAD
//! and SPD, and the per-thread packet workers that use them.
//!
//! The control plane (the engine task) is the only writer: it publishes new
//! SAD/SPD values through [`Snapshot`]s. Each packet thread holds its own
//! [`Worker`] with [`SnapshotReader`]s, so the per-packet path is one atomic
//! load per table and no lock (the ESP crate's design).
//!
//! The workers also tell the engine what only the data plane sees
//! ([`DataplaneEvent`]): an SA crossed its soft or hard volume limit (once
//! each, as the ESP crate reports them), traffic arrived on an inbound SA
//! (at most once a second per SA: the peer is alive), and ESP arrived for
//! an SPI we do not have (at most [`UNKNOWN_SPI_PER_SEC`] in total, so a
//! flood of bogus ESP costs the engine nothing). The channel is unbounded
//! because every producer is rate-limited or once-only, so its length is
//! bounded by the number of SAs; a bounded one could lose an expiry.
//!
//! Nothing here allocates per packet: drops are typed and counted, and the
//! only per-packet extras are a clock read and relaxed atomic loads.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use oxisec_crypto::esp_cipher::EspCipher;
use oxisec_esp::stats::{DropCounts, SaStats};
use oxisec_esp::{
    BufStorage, Crossed, DropReason, InboundSa, Limits, OutboundSa, PacketBuf, PolicyAction, Sad,
    Selector, Snapshot, SnapshotReader, Spd, SpdEntry, UdpEncap, decapsulate_from, encapsulate,
};
use oxisec_ike::{DataplaneEvent, SaCommand, SaLimits, TsRange};
use tokio::sync::mpsc;

use crate::status::Traffic;

/// How often at most inbound traffic on one SA is reported to the engine
/// (the engine's contract for [`DataplaneEvent::InboundActivity`]).
pub const ACTIVITY_INTERVAL: Duration = Duration::from_secs(1);

/// ESP packets for unknown SPIs reported to the engine per second, over all
/// threads. The engine rate-limits its INVALID_SPI answers on its own; this
/// keeps a flood of bogus ESP from reaching the engine task at all.
pub const UNKNOWN_SPI_PER_SEC: u64 = 10;

/// What the UDP thread does with a received ESP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decap {
    /// The buffer's window holds the inner packet: write it to the TUN device.
    Deliver,
    Drop(DropReason),
}

/// What the TUN thread does with a packet read from the TUN device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encap {
    /// The buffer's window holds the ESP packet: send it as the UDP payload
    /// from `local` to `remote`.
    Send {
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// No policy covers this packet (it was routed into the TUN device by
    /// something other than us, or its SA just went away).
    NoPolicy,
    Drop(EncapDrop),
}

/// Why a packet read from the TUN device was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncapDrop {
    /// The policy names a CHILD_SA whose outbound SA is not installed (yet).
    NoSa,
    /// The SA has no outer endpoints (neither UDP nor raw ESP ones).
    NoUdpEncap,
    /// A drop shunt (RFC 4301 DISCARD) matched.
    PolicyDiscard,
    /// A trap policy matched and its child has no SA yet: the engine was
    /// asked for one (an acquire, rate-limited) and the packet dropped.
    TrapNoSa,
    /// Like [`EncapDrop::TrapNoSa`], but the packet was held to be sent
    /// when the SA is installed: not a drop, not counted.
    TrapHeld,
    /// A pass shunt (RFC 4301 BYPASS) matched a packet that reached the TUN
    /// device anyway (its routing rule was missing or removed by hand): the
    /// packet path cannot send it in clear, and must not protect it.
    PolicyBypass,
    /// The ESP crate refused (not IP, expired, …); counted on the SA where
    /// there is one.
    Esp(DropReason),
}

impl EncapDrop {
    /// A short stable name for counters and logs.
    pub fn name(self) -> &'static str {
        match self {
            EncapDrop::NoSa => "no_sa",
            EncapDrop::NoUdpEncap => "no_udp_encap",
            EncapDrop::PolicyDiscard => "policy_discard",
            EncapDrop::TrapNoSa => "trap_no_sa",
            EncapDrop::TrapHeld => "trap_held",
            EncapDrop::PolicyBypass => "policy_bypass",
            EncapDrop::Esp(r) => r.name(),
        }
    }
}

/// The ESP crate's form of the negotiated mode.
fn esp_mode(m: oxisec_ike::ChildMode) -> oxisec_esp::Mode {
    match m {
        oxisec_ike::ChildMode::Tunnel => oxisec_esp::Mode::Tunnel,
        oxisec_ike::ChildMode::Transport => oxisec_esp::Mode::Transport,
    }
}

/// The ESP crate's form of the engine's limits (the same meaning: 0 = none).
fn limits(l: &SaLimits) -> Limits {
    Limits {
        soft_bytes: l.soft_bytes,
        hard_bytes: l.hard_bytes,
        soft_packets: l.soft_packets,
        hard_packets: l.hard_packets,
    }
}

pub fn selectors(ts: &[TsRange]) -> Result<Vec<Selector>, String> {
    ts.iter()
        .map(|t| {
            Selector::range(t.start, t.end)
                .map(|s| {
                    s.with_protocol(t.protocol)
                        .with_ports(t.start_port, t.end_port)
                })
                .map_err(|e| format!("traffic selector {t}: {e}"))
        })
        .collect()
}

/// At most `per_sec` events per second of the caller's clock, over any
/// number of threads: the second and the count packed in one atomic word.
/// A refused call is one load and a failed comparison, no write.
#[derive(Debug)]
pub struct RateLimit {
    per_sec: u64,
    /// `second << 20 | count`.
    state: AtomicU64,
}

impl RateLimit {
    const COUNT_BITS: u32 = 20;

    pub fn new(per_sec: u64) -> RateLimit {
        RateLimit {
            per_sec: per_sec.min((1 << Self::COUNT_BITS) - 1),
            state: AtomicU64::new(u64::MAX),
        }
    }

    /// Whether one more event may pass at `now_ms` (milliseconds on any
    /// monotonic clock).
    pub fn allow(&self, now_ms: u64) -> bool {
        let sec = now_ms / 1000;
        let mask = (1u64 << Self::COUNT_BITS) - 1;
        self.state
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                if s == u64::MAX || s >> Self::COUNT_BITS != sec {
                    Some((sec << Self::COUNT_BITS) | 1)
                } else if s & mask < self.per_sec {
                    Some(s + 1)
                } else {
                    None
                }
            })
            .is_ok()
    }
}

/// Where the packet threads' reports go, and their shared rate limits.
#[derive(Debug, Clone)]
pub struct Reporter {
    tx: mpsc::UnboundedSender<DataplaneEvent>,
    epoch: Instant,
    unknown_spi: Arc<RateLimit>,
}

impl Reporter {
    pub fn new(tx: mpsc::UnboundedSender<DataplaneEvent>) -> Reporter {
        Reporter {
            tx,
            epoch: Instant::now(),
            unknown_spi: Arc::new(RateLimit::new(UNKNOWN_SPI_PER_SEC)),
        }
    }

    /// Milliseconds since the reporter was made: the unit of the per-SA
    /// activity stamps and of the rate limit.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn send(&self, ev: DataplaneEvent) {
        // Fails only when the engine task is gone (shutdown).
        let _ = self.tx.send(ev);
    }

    fn crossed(&self, spi: u32, inbound: bool, c: Crossed) {
        if c.soft {
            self.send(DataplaneEvent::SoftExpired { spi, inbound });
        }
        if c.hard {
            self.send(DataplaneEvent::HardExpired { spi, inbound });
        }
    }
}

/// Policy ids of trap entries: `TRAP_BASE + i` for the daemon's trap `i`,
/// far above any CHILD_SA id the engine hands out (it counts from 1).
pub const TRAP_BASE: u64 = 1 << 62;
/// Most traps (the acquire rate limits are a fixed array).
pub const MAX_TRAPS: usize = 256;
/// One acquire per trap at most this often: the engine needs a round trip
/// or two to install the SA, and every packet until then hits the trap.
pub const ACQUIRE_INTERVAL: Duration = Duration::from_secs(2);

/// Packets held per trap unless configured (`[daemon] trap_queue`).
pub const DEFAULT_TRAP_QUEUE: usize = 32;

/// Where the packet threads' acquires go: trap indexes, each at most once
/// per [`ACQUIRE_INTERVAL`]; and the packets held until an SA is installed.
#[derive(Debug)]
pub struct Acquires {
    tx: std::sync::OnceLock<mpsc::UnboundedSender<usize>>,
    /// Milliseconds (since `epoch`) of each trap's last acquire, + 1 (0: never).
    last: Vec<AtomicU64>,
    epoch: Instant,
    /// Packets held per trap (0: drop them).
    queue_len: std::sync::atomic::AtomicUsize,
    /// Held packets per trap. A lock on the slow path only: a packet gets
    /// here when its child has no SA, which costs an IKE exchange anyway.
    held: Vec<std::sync::Mutex<std::collections::VecDeque<Box<[u8]>>>>,
    /// Some packet is held and an SA was installed since: the lanes try
    /// them again.
    release: std::sync::atomic::AtomicBool,
}

impl Default for Acquires {
    fn default() -> Self {
        Acquires {
            tx: std::sync::OnceLock::new(),
            last: (0..MAX_TRAPS).map(|_| AtomicU64::new(0)).collect(),
            epoch: Instant::now(),
            queue_len: std::sync::atomic::AtomicUsize::new(DEFAULT_TRAP_QUEUE),
            held: (0..MAX_TRAPS).map(|_| Default::default()).collect(),
            release: Default::default(),
        }
    }
}

impl Acquires {
    /// Holds a copy of `pkt` for trap `i`; `false` when the queue is full
    /// or off (the caller drops and counts the packet).
    fn hold(&self, i: usize, pkt: &[u8]) -> bool {
        let max = self.queue_len.load(Ordering::Relaxed);
        let Some(q) = self.held.get(i) else {
            return false;
        };
        let mut q = q.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= max {
            return false;
        }
        q.push_back(pkt.into());
        true
    }

    /// After an SA install: whether any packet is held (then the lanes
    /// are told to try them again).
    fn on_install(&self) {
        let any = self
            .held
            .iter()
            .any(|q| !q.lock().unwrap_or_else(|e| e.into_inner()).is_empty());
        if any {
            self.release.store(true, Ordering::Release);
        }
    }

    /// Reports a packet for trap `i` unless one was reported recently.
    fn hit(&self, i: usize) {
        let (Some(tx), Some(last)) = (self.tx.get(), self.last.get(i)) else {
            return;
        };
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
        let prev = last.load(Ordering::Relaxed);
        let due = prev == 0 || now.saturating_sub(prev) >= ACQUIRE_INTERVAL.as_millis() as u64;
        if due
            && last
                .compare_exchange(prev, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let _ = tx.send(i);
        }
    }
}

/// The SAD and SPD as published to the packet threads.
pub struct Tables {
    sad: Arc<Snapshot<Sad>>,
    spd: Arc<Snapshot<Spd>>,
    /// How many entries at the tail of the SPD are traps (after every
    /// child's, so an installed SA's own entry wins).
    traps: std::sync::atomic::AtomicUsize,
    acquires: Arc<Acquires>,
    /// How many entries at the head of the SPD are shunts (BYPASS and
    /// DISCARD from the configuration), which precede every PROTECT entry.
    shunts: std::sync::atomic::AtomicUsize,
}

impl Default for Tables {
    fn default() -> Self {
        Tables {
            sad: Arc::new(Snapshot::new(Sad::new())),
            spd: Arc::new(Snapshot::new(Spd::new())),
            shunts: Default::default(),
            traps: Default::default(),
            acquires: Default::default(),
        }
    }
}

/// The SPD entries of configured shunts, in order: one entry per shunt
/// (its local × remote selectors, RFC 7296 §2.9 reading).
pub fn shunt_entries(shunts: &[crate::config::Shunt]) -> Result<Vec<SpdEntry>, String> {
    use crate::config::ShuntAction;
    shunts
        .iter()
        .map(|s| {
            let action = match s.action {
                ShuntAction::Pass => PolicyAction::Bypass,
                ShuntAction::Drop => PolicyAction::Discard,
            };
            Ok(SpdEntry::new(
                selectors(&s.local_ts).map_err(|e| format!("shunt {}: {e}", s.name))?,
                selectors(&s.remote_ts).map_err(|e| format!("shunt {}: {e}", s.name))?,
                action,
            ))
        })
        .collect()
}

impl Tables {
    pub fn engine_name() -> &'static str {
        "oxisec-esp"
    }

    /// Replaces the shunt entries at the head of the SPD (RFC 4301 §4.4.1:
    /// BYPASS and DISCARD entries ordered before the PROTECT ones, so a
    /// shunt wins over every child whatever the children's selectors say).
    pub fn set_shunts(&self, entries: Vec<SpdEntry>) {
        let n = entries.len();
        self.spd.update(|p| {
            let old = self.shunts.load(Ordering::Relaxed);
            let mut all = entries;
            all.extend(p.entries().iter().skip(old).cloned());
            *p = Spd::from_entries(all);
        });
        self.shunts.store(n, Ordering::Relaxed);
    }

    /// Replaces the trap entries at the tail of the SPD: `remote`/`local`
    /// selector sets of trap `i` become `Protect(TRAP_BASE + i)`, and
    /// packets hitting one without an SA send `i` to `acquire`.
    pub fn set_traps(
        &self,
        traps: Vec<(Vec<Selector>, Vec<Selector>)>,
        queue_len: usize,
        acquire: mpsc::UnboundedSender<usize>,
    ) {
        let _ = self.acquires.tx.set(acquire);
        self.acquires.queue_len.store(queue_len, Ordering::Relaxed);
        let entries: Vec<SpdEntry> = traps
            .into_iter()
            .take(MAX_TRAPS)
            .enumerate()
            .map(|(i, (l, r))| SpdEntry::new(l, r, PolicyAction::Protect(TRAP_BASE + i as u64)))
            .collect();
        let n = entries.len();
        self.spd.update(|p| {
            let old = self.traps.load(Ordering::Relaxed);
            let keep = p.entries().len().saturating_sub(old);
            let mut all: Vec<SpdEntry> = p.entries()[..keep].to_vec();
            all.extend(entries);
            *p = Spd::from_entries(all);
        });
        self.traps.store(n, Ordering::Relaxed);
    }

    /// A packet thread's view; its reports go to `reporter`.
    pub fn worker(&self, reporter: Reporter) -> Worker {
        Worker {
            sad: SnapshotReader::new(Arc::clone(&self.sad)),
            spd: SnapshotReader::new(Arc::clone(&self.spd)),
            acquires: Arc::clone(&self.acquires),
            now_ms: reporter.now_ms(),
            reporter,
        }
    }

    /// Applies one engine command. Inbound SAs go in before the outbound
    /// half and the policy (the engine emits them in that order); on delete,
    /// the policy goes first so that no packet is steered to a missing SA.
    pub fn apply(&self, cmd: &SaCommand) -> Result<(), String> {
        match cmd {
            SaCommand::InstallInbound {
                sa,
                local_ts,
                remote_ts,
                ..
            } => {
                let cipher = EspCipher::new(sa.suite, &sa.keys)
                    .map_err(|e| format!("inbound SA {:08x}: {e}", sa.spi))?;
                let inbound = InboundSa::new(
                    sa.spi,
                    cipher,
                    // Per child (`replay_window`), default
                    // oxisec_ike::config::DEFAULT_REPLAY_WINDOW.
                    sa.replay_window,
                    selectors(local_ts)?,
                    selectors(remote_ts)?,
                )
                .map_err(|e| format!("inbound SA {:08x}: {e}", sa.spi))?
                .with_limits(limits(&sa.limits))
                .with_mode(esp_mode(sa.mode));
                self.sad.update(|s| {
                    s.insert_inbound(Arc::new(inbound));
                });
            }
            SaCommand::InstallOutbound {
                child,
                sa,
                local_ts,
                remote_ts,
                local,
                remote,
                udp_encap,
            } => {
                let cipher = EspCipher::new(sa.suite, &sa.keys)
                    .map_err(|e| format!("outbound SA {:08x}: {e}", sa.spi))?;
                let (l, r) = (selectors(local_ts)?, selectors(remote_ts)?);
                let outbound = OutboundSa::new(
                    sa.spi,
                    cipher,
                    l.clone(),
                    r.clone(),
                    // Raw ESP keeps its addresses with ports 0 (see rawesp).
                    Some(if *udp_encap {
                        UdpEncap {
                            local: *local,
                            remote: *remote,
                        }
                    } else {
                        super::rawesp::raw_endpoints(*local, *remote)
                    }),
                )
                .with_limits(limits(&sa.limits))
                .with_mode(esp_mode(sa.mode));
                self.sad.update(|s| {
                    s.insert_outbound(child.0, Arc::new(outbound));
                });
                self.spd.update(|p| {
                    p.remove_child(child.0);
                    // Before the traps, which only catch what no SA takes.
                    let traps = self.traps.load(Ordering::Relaxed);
                    let at = p.entries().len().saturating_sub(traps);
                    p.insert(at, SpdEntry::new(l, r, PolicyAction::Protect(child.0)));
                });
                self.acquires.on_install();
            }
            SaCommand::Delete {
                spi, inbound: true, ..
            } => {
                self.sad.update(|s| {
                    s.remove_inbound(*spi);
                });
            }
            SaCommand::Delete {
                child,
                spi,
                inbound: false,
            } => {
                self.spd.update(|p| {
                    p.remove_child(child.0);
                });
                self.sad.update(|s| {
                    if s.outbound(child.0).is_some_and(|o| o.spi() == *spi) {
                        s.remove_outbound(child.0);
                    }
                });
            }
            SaCommand::UpdateEndpoints {
                child,
                spi,
                local,
                remote,
            } => {
                // Same keys, sequence counter, limits and statistics; new
                // UDP endpoints.
                let udp = UdpEncap {
                    local: *local,
                    remote: *remote,
                };
                self.sad.update(|s| {
                    let moved = s.outbound(child.0).filter(|o| o.spi() == *spi).map(|o| {
                        // The engine moves only UDP SAs; a raw one stays raw.
                        let raw = o.udp_encap().is_some_and(|u| super::rawesp::is_raw(&u));
                        let encap = if raw {
                            super::rawesp::raw_endpoints(*local, *remote)
                        } else {
                            udp
                        };
                        Arc::new(o.with_udp_encap(Some(encap)))
                    });
                    if let Some(o) = moved {
                        s.insert_outbound(child.0, o);
                    }
                });
            }
        }
        Ok(())
    }

    /// The largest inner packet the outbound SA of `child` carries with
    /// the data plane's size settings.
    pub fn child_mtu(&self, child: u64, mtu: &super::dataplane::mtu::MtuSettings) -> Option<u32> {
        let sad = self.sad.load();
        let sa = sad.outbound(child)?;
        let v4 = sa.udp_encap().is_none_or(|u| u.remote.is_ipv4());
        u32::try_from(mtu.limit(sa, v4)).ok()
    }

    /// Bytes, packets and drops by reason of one SA.
    pub fn counters(&self, spi: u32, inbound: bool) -> Option<Traffic> {
        let sad = self.sad.load();
        let stats = if inbound {
            sad.inbound(spi)?.stats()
        } else {
            sad.outbound_sas().find(|(_, o)| o.spi() == spi)?.1.stats()
        };
        Some(traffic(&stats))
    }

    /// Drops before an SA was known (truncated ESP, unknown SPI). The
    /// packet threads count every drop themselves as well.
    #[cfg(test)]
    pub fn global_drops(&self) -> DropCounts {
        self.sad.load().global_drops()
    }

    /// Drops everything (shutdown).
    pub fn clear(&self) {
        self.shunts.store(0, Ordering::Relaxed);
        self.traps.store(0, Ordering::Relaxed);
        self.spd.store(Spd::new());
        self.sad.store(Sad::new());
    }
}

fn traffic(s: &SaStats) -> Traffic {
    Traffic {
        bytes: s.bytes,
        packets: s.packets,
        drops: drop_map(&s.drops),
    }
}

/// Non-zero counts by the reasons' stable names.
pub fn drop_map(d: &DropCounts) -> BTreeMap<String, u64> {
    d.iter().map(|(r, n)| (r.name().to_string(), n)).collect()
}

/// One packet thread's lock-free view of the tables.
pub struct Worker {
    sad: SnapshotReader<Sad>,
    spd: SnapshotReader<Spd>,
    acquires: Arc<Acquires>,
    reporter: Reporter,
    /// The reporter's clock, read once per batch ([`Worker::start_batch`]).
    now_ms: u64,
}

/// The outbound SA one packet (or one TUN read's worth of segments) goes
/// through, as found by [`Worker::outbound_for`].
pub struct Outbound<'w> {
    pub sa: &'w OutboundSa,
    pub udp: UdpEncap,
    reporter: &'w Reporter,
}

impl Outbound<'_> {
    /// Encapsulates the IP packet in `buf` in place with this SA; reports
    /// crossed limits to the engine.
    pub fn encapsulate<S: BufStorage>(&self, buf: &mut PacketBuf<S>) -> Result<(), EncapDrop> {
        match encapsulate(self.sa, buf) {
            Ok(crossed) => {
                if crossed.any() {
                    self.reporter.crossed(self.sa.spi(), false, crossed);
                }
                Ok(())
            }
            Err(e) => Err(EncapDrop::Esp(e.reason())),
        }
    }
}

impl Worker {
    /// Reads the clock for the packets that follow (per batch, not per
    /// packet: it only rate-limits activity reports).
    pub fn start_batch(&mut self) {
        self.now_ms = self.reporter.now_ms();
    }

    /// Decapsulates the ESP packet in `buf` (received on `local` from
    /// `remote`) in place, and reports to the engine what it tells:
    /// crossed limits, inbound activity, an unknown SPI.
    pub fn decapsulate<S: BufStorage>(
        &mut self,
        buf: &mut PacketBuf<S>,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Decap {
        // Read before decapsulation rewrites the buffer; it is only used for
        // an unknown SPI, when the buffer is still as received.
        let spi = buf
            .as_slice()
            .first_chunk::<4>()
            .map_or(0, |b| u32::from_be_bytes(*b));
        let sad = self.sad.get();
        // Transport-mode SAs rebuild the IP header from these (the peer as
        // the packet came, our address it came to); tunnel mode ignores them.
        let outer = super::transport::outer_addrs(local, remote);
        match decapsulate_from(sad, buf, outer) {
            Ok(d) => {
                let r = &self.reporter;
                if d.crossed.any() {
                    r.crossed(d.spi, true, d.crossed);
                }
                let due = sad.inbound(d.spi).is_some_and(|sa| {
                    sa.claim_report(self.now_ms, ACTIVITY_INTERVAL.as_millis() as u64)
                });
                if due {
                    r.send(DataplaneEvent::InboundActivity { spi: d.spi });
                }
                Decap::Deliver
            }
            Err(DropReason::UnknownSpi) => {
                let r = &self.reporter;
                if r.unknown_spi.allow(r.now_ms()) {
                    r.send(DataplaneEvent::UnknownSpi { spi, local, remote });
                }
                Decap::Drop(DropReason::UnknownSpi)
            }
            Err(why) => Decap::Drop(why),
        }
    }

    /// Bytes needed in front of the ESP packet `esp` from `remote` to
    /// decapsulate it in place: 0 for tunnel mode (and unknown SPIs);
    /// for transport mode what the rebuilt IP header needs beyond the ESP
    /// header and IV it replaces.
    pub fn transport_headroom(&mut self, esp: &[u8], remote: SocketAddr) -> usize {
        let sad = self.sad.get();
        if !sad.has_transport_inbound() {
            return 0;
        }
        let Some(spi) = esp.first_chunk::<4>().map(|b| u32::from_be_bytes(*b)) else {
            return 0;
        };
        match sad.inbound(spi) {
            Some(sa) if sa.mode() == oxisec_esp::Mode::Transport => {
                let head = oxisec_wire::esp::ESP_HEADER_LEN + sa.suite().iv_len();
                oxisec_esp::transport::header_len(remote.ip()).saturating_sub(head)
            }
            _ => 0,
        }
    }

    /// The policy and outbound SA for the IP packet `pkt` (whose headers
    /// are those of every segment of a TUN read). `Err` is the outcome for
    /// the packet: no policy, or a drop.
    pub fn outbound_for(&mut self, pkt: &[u8]) -> Result<Outbound<'_>, Encap> {
        self.outbound_or_hold(pkt, false)
    }

    /// [`Worker::outbound_for`]; when `hold` and the packet hits a trap
    /// without an SA, a copy of `pkt` (one whole packet) is held for the
    /// SA if the trap's queue has room
    /// ([`EncapDrop::TrapHeld`]).
    pub fn outbound_or_hold(&mut self, pkt: &[u8], hold: bool) -> Result<Outbound<'_>, Encap> {
        let Worker {
            sad,
            spd,
            reporter,
            acquires,
            ..
        } = self;
        let child = match spd.get().lookup_packet(pkt) {
            Ok(Some(e)) => match e.action {
                PolicyAction::Protect(c) => c,
                PolicyAction::Discard => return Err(Encap::Drop(EncapDrop::PolicyDiscard)),
                PolicyAction::Bypass => return Err(Encap::Drop(EncapDrop::PolicyBypass)),
            },
            Ok(None) => return Err(Encap::NoPolicy),
            Err(_) => return Err(Encap::Drop(EncapDrop::Esp(DropReason::NotIp))),
        };
        let Some(sa) = sad.get().outbound(child) else {
            if child >= TRAP_BASE {
                let i = (child - TRAP_BASE) as usize;
                acquires.hit(i);
                if hold && acquires.hold(i, pkt) {
                    return Err(Encap::Drop(EncapDrop::TrapHeld));
                }
                return Err(Encap::Drop(EncapDrop::TrapNoSa));
            }
            return Err(Encap::Drop(EncapDrop::NoSa));
        };
        let Some(udp) = sa.udp_encap() else {
            return Err(Encap::Drop(EncapDrop::NoUdpEncap));
        };
        Ok(Outbound { sa, udp, reporter })
    }

    /// Whether held packets wait for another try (an SA was installed).
    pub fn release_due(&self) -> bool {
        self.acquires.release.load(Ordering::Acquire)
    }

    /// Takes every held packet for another try (they are held again if
    /// their trap still has no SA).
    pub fn take_held(&mut self) -> Vec<Box<[u8]>> {
        // A load first: this runs on every TUN drain, and a swap would
        // write the shared line every time.
        if !self.release_due() || !self.acquires.release.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for q in &self.acquires.held {
            out.extend(q.lock().unwrap_or_else(|e| e.into_inner()).drain(..));
        }
        out
    }

    /// Finds the policy for the IP packet in `buf` and encapsulates it in
    /// place; reports crossed limits to the engine.
    pub fn encapsulate<S: BufStorage>(&mut self, buf: &mut PacketBuf<S>) -> Encap {
        let out = match self.outbound_for(buf.as_slice()) {
            Ok(o) => o,
            Err(e) => return e,
        };
        match out.encapsulate(buf) {
            Ok(()) => Encap::Send {
                local: out.udp.local,
                remote: out.udp.remote,
            },
            Err(d) => Encap::Drop(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxisec_crypto::Secret;
    use oxisec_crypto::esp_cipher::EspSuite;
    use oxisec_ike::{ChildId, EspSaParams};
    use oxisec_wire::encr;

    const LOCAL: &str = "192.0.2.2:4500";
    const REMOTE: &str = "192.0.2.1:4500";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn reporter() -> (Reporter, mpsc::UnboundedReceiver<DataplaneEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Reporter::new(tx), rx)
    }

    fn events(rx: &mut mpsc::UnboundedReceiver<DataplaneEvent>) -> Vec<DataplaneEvent> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    fn decap(w: &mut Worker, buf: &mut PacketBuf) -> Decap {
        w.decapsulate(buf, addr(LOCAL), addr(REMOTE))
    }

    fn ts(s: &str) -> TsRange {
        s.parse().unwrap()
    }

    fn params(spi: u32) -> EspSaParams {
        EspSaParams {
            spi,
            suite: EspSuite {
                encr: encr::AES_GCM_16,
                encr_key_bits: Some(128),
                integ: None,
                esn: false,
            },
            keys: Secret::new((0u8..20).collect()),
            limits: Default::default(),
            mode: Default::default(),
            replay_window: 64,
        }
    }

    /// An ICMP echo from `src` to `dst`.
    fn ipv4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, 1]);
        p
    }

    fn outbound(child: u64, spi: u32) -> SaCommand {
        SaCommand::InstallOutbound {
            child: ChildId(child),
            sa: params(spi),
            local_ts: vec![ts("198.51.100.0/24")],
            remote_ts: vec![ts("203.0.113.0/24")],
            local: "192.0.2.1:4500".parse().unwrap(),
            remote: "192.0.2.2:4500".parse().unwrap(),
            udp_encap: true,
        }
    }

    fn inbound(child: u64, spi: u32) -> SaCommand {
        // The peer's view: packets come from 198.51.100.0/24 to 203.0.113.0/24.
        SaCommand::InstallInbound {
            child: ChildId(child),
            sa: params(spi),
            local_ts: vec![ts("203.0.113.0/24")],
            remote_ts: vec![ts("198.51.100.0/24")],
        }
    }

    #[test]
    fn encapsulated_packet_decapsulates_on_the_peer() {
        let (a, b) = (Tables::default(), Tables::default());
        a.apply(&outbound(1, 0xc0ffee01)).unwrap();
        b.apply(&inbound(7, 0xc0ffee01)).unwrap();
        let ((ra, mut rxa), (rb, mut rxb)) = (reporter(), reporter());
        let (mut wa, mut wb) = (a.worker(ra), b.worker(rb));

        let inner = ipv4([198, 51, 100, 1], [203, 0, 113, 1]);
        let mut buf = PacketBuf::with_default_room();
        buf.set_data(&inner).unwrap();
        match wa.encapsulate(&mut buf) {
            Encap::Send { local, remote } => {
                assert_eq!(local, "192.0.2.1:4500".parse().unwrap());
                assert_eq!(remote, "192.0.2.2:4500".parse().unwrap());
            }
            _ => panic!("not encapsulated"),
        }
        assert_eq!(&buf.as_slice()[..4], &0xc0ffee01u32.to_be_bytes());
        let mut rx = PacketBuf::new(0, 4096, 0);
        rx.set_data(buf.as_slice()).unwrap();
        assert_eq!(decap(&mut wb, &mut rx), Decap::Deliver);
        assert_eq!(rx.as_slice(), &inner[..]);
        let one = Traffic {
            bytes: 28,
            packets: 1,
            drops: BTreeMap::new(),
        };
        assert_eq!(a.counters(0xc0ffee01, false), Some(one.clone()));
        assert_eq!(b.counters(0xc0ffee01, true), Some(one));
        // The same packet again is a replay, counted on the SA by reason.
        rx.set_data(buf.as_slice()).unwrap();
        assert_eq!(
            decap(&mut wb, &mut rx),
            Decap::Drop(DropReason::ReplayDuplicate)
        );
        let t = b.counters(0xc0ffee01, true).unwrap();
        assert_eq!(t.drops.get("replay_duplicate"), Some(&1));
        // The peer is alive: reported once (the replay is no sign of life).
        assert_eq!(
            events(&mut rxb),
            [DataplaneEvent::InboundActivity { spi: 0xc0ffee01 }]
        );
        assert_eq!(events(&mut rxa), []);
    }

    fn with_limits(mut cmd: SaCommand, l: SaLimits) -> SaCommand {
        match &mut cmd {
            SaCommand::InstallInbound { sa, .. } | SaCommand::InstallOutbound { sa, .. } => {
                sa.limits = l
            }
            _ => unreachable!(),
        }
        cmd
    }

    #[test]
    fn limits_are_applied_and_each_crossing_reported_once() {
        let l = SaLimits {
            soft_packets: 2,
            hard_packets: 3,
            ..Default::default()
        };
        let (a, b) = (Tables::default(), Tables::default());
        a.apply(&with_limits(outbound(1, 0x400), l)).unwrap();
        // The receiver's hard limit is lower, so that it drops the third.
        let lb = SaLimits {
            hard_packets: 2,
            ..l
        };
        b.apply(&with_limits(inbound(1, 0x400), lb)).unwrap();
        let ((ra, mut rxa), (rb, mut rxb)) = (reporter(), reporter());
        let (mut wa, mut wb) = (a.worker(ra), b.worker(rb));
        let inner = ipv4([198, 51, 100, 1], [203, 0, 113, 1]);
        let mut sent = Vec::new();
        let mut got = Vec::new();
        for _ in 0..5 {
            let mut buf = PacketBuf::with_default_room();
            buf.set_data(&inner).unwrap();
            let e = wa.encapsulate(&mut buf);
            sent.push(e);
            if matches!(e, Encap::Send { .. }) {
                got.push(decap(&mut wb, &mut buf));
            }
        }
        let expired = Encap::Drop(EncapDrop::Esp(DropReason::Expired));
        assert!(matches!(
            sent[..3],
            [Encap::Send { .. }, Encap::Send { .. }, Encap::Send { .. }]
        ));
        assert_eq!(sent[3..], [expired, expired]);
        assert_eq!(
            got,
            [
                Decap::Deliver,
                Decap::Deliver,
                Decap::Drop(DropReason::Expired)
            ]
        );
        let (spi, out, inb) = (0x400, false, true);
        assert_eq!(
            events(&mut rxa),
            [
                DataplaneEvent::SoftExpired { spi, inbound: out },
                DataplaneEvent::HardExpired { spi, inbound: out },
            ]
        );
        assert_eq!(
            events(&mut rxb),
            [
                DataplaneEvent::InboundActivity { spi },
                DataplaneEvent::SoftExpired { spi, inbound: inb },
                DataplaneEvent::HardExpired { spi, inbound: inb },
            ]
        );
        let t = a.counters(spi, false).unwrap();
        assert_eq!((t.packets, t.drops.get("expired")), (3, Some(&2)));
        let t = b.counters(spi, true).unwrap();
        assert_eq!((t.packets, t.drops.get("expired")), (2, Some(&1)));
    }

    #[test]
    fn unknown_spis_are_reported_at_a_bounded_rate() {
        let a = Tables::default();
        let (r, mut rx) = reporter();
        let mut w = a.worker(r);
        let mut buf = PacketBuf::new(0, 2048, 0);
        for _ in 0..1000 {
            buf.set_data(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1, 0, 0, 0, 0])
                .unwrap();
            assert_eq!(decap(&mut w, &mut buf), Decap::Drop(DropReason::UnknownSpi));
        }
        let ev = events(&mut rx);
        // Within a second (or two, if the test straddles a boundary).
        assert!(
            (1..=2 * UNKNOWN_SPI_PER_SEC as usize).contains(&ev.len()),
            "{ev:?}"
        );
        assert_eq!(
            ev[0],
            DataplaneEvent::UnknownSpi {
                spi: 0xdeadbeef,
                local: addr(LOCAL),
                remote: addr(REMOTE)
            }
        );
        assert_eq!(a.global_drops().get(DropReason::UnknownSpi), 1000);
        // Too short for an ESP header: not an unknown SPI, not reported.
        buf.set_data(&[1, 2, 3]).unwrap();
        assert_eq!(decap(&mut w, &mut buf), Decap::Drop(DropReason::Truncated));
    }

    #[test]
    fn rate_limit_counts_per_second() {
        let r = RateLimit::new(3);
        let at = |ms| (0..10).filter(|_| r.allow(ms)).count();
        assert_eq!(at(0), 3);
        assert_eq!(at(999), 0);
        assert_eq!(at(1000), 3);
        assert_eq!(at(1500), 0);
        assert_eq!(at(7200), 3);
    }

    #[test]
    fn packets_outside_the_policy_are_not_protected() {
        let a = Tables::default();
        a.apply(&outbound(1, 0x100)).unwrap();
        let mut w = a.worker(reporter().0);
        let mut buf = PacketBuf::with_default_room();
        buf.set_data(&ipv4([10, 0, 0, 1], [203, 0, 113, 1]))
            .unwrap();
        assert_eq!(w.encapsulate(&mut buf), Encap::NoPolicy);
        buf.set_data(&[0x00, 1, 2]).unwrap();
        assert_eq!(
            w.encapsulate(&mut buf),
            Encap::Drop(EncapDrop::Esp(DropReason::NotIp))
        );
    }

    #[test]
    fn delete_removes_policy_then_sa() {
        let a = Tables::default();
        a.apply(&inbound(1, 0x200)).unwrap();
        a.apply(&outbound(1, 0x201)).unwrap();
        assert!(a.counters(0x200, true).is_some());
        a.apply(&SaCommand::Delete {
            child: ChildId(1),
            spi: 0x201,
            inbound: false,
        })
        .unwrap();
        assert!(a.counters(0x201, false).is_none());
        let mut w = a.worker(reporter().0);
        let mut buf = PacketBuf::with_default_room();
        buf.set_data(&ipv4([198, 51, 100, 1], [203, 0, 113, 1]))
            .unwrap();
        assert!(matches!(w.encapsulate(&mut buf), Encap::NoPolicy));
        a.apply(&SaCommand::Delete {
            child: ChildId(1),
            spi: 0x200,
            inbound: true,
        })
        .unwrap();
        assert!(a.counters(0x200, true).is_none());
    }

    fn shunt(action: crate::config::ShuntAction, remote: &str) -> crate::config::Shunt {
        crate::config::Shunt {
            name: "s".into(),
            action,
            local_ts: vec![ts("0.0.0.0/0")],
            remote_ts: vec![ts(remote)],
        }
    }

    #[test]
    fn shunts_precede_every_child_and_are_counted_by_reason() {
        use crate::config::ShuntAction::{Drop, Pass};
        let a = Tables::default();
        a.apply(&outbound(1, 0x500)).unwrap();
        let entries = shunt_entries(&[
            shunt(Pass, "203.0.113.1[icmp]"),
            shunt(Drop, "203.0.113.0/25"),
        ])
        .unwrap();
        a.set_shunts(entries.clone());
        // A child installed after the shunts still comes after them.
        a.apply(&outbound(2, 0x501)).unwrap();
        let mut w = a.worker(reporter().0);
        let mut send = |dst: [u8; 4]| {
            let mut buf = PacketBuf::with_default_room();
            buf.set_data(&ipv4([198, 51, 100, 1], dst)).unwrap();
            w.encapsulate(&mut buf)
        };
        assert_eq!(send([203, 0, 113, 1]), Encap::Drop(EncapDrop::PolicyBypass));
        assert_eq!(
            send([203, 0, 113, 2]),
            Encap::Drop(EncapDrop::PolicyDiscard)
        );
        assert!(matches!(send([203, 0, 113, 200]), Encap::Send { .. }));
        assert_eq!(EncapDrop::PolicyDiscard.name(), "policy_discard");
        // Replacing the shunts keeps the children, once each.
        a.set_shunts(entries[1..].to_vec());
        let spd = a.spd.load();
        let actions: Vec<PolicyAction> = spd.entries().iter().map(|e| e.action).collect();
        assert_eq!(
            actions,
            [
                PolicyAction::Discard,
                PolicyAction::Protect(1),
                PolicyAction::Protect(2)
            ]
        );
        drop(spd);
        assert_eq!(
            send([203, 0, 113, 1]),
            Encap::Drop(EncapDrop::PolicyDiscard)
        );
        a.set_shunts(Vec::new());
        assert_eq!(a.spd.load().entries().len(), 2);
    }

    #[test]
    fn traps_acquire_at_a_bounded_rate_until_the_sa_is_installed() {
        let a = Tables::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        a.set_traps(
            vec![(
                selectors(&[ts("198.51.100.0/24")]).unwrap(),
                selectors(&[ts("203.0.113.0/24")]).unwrap(),
            )],
            2,
            tx,
        );
        let mut w = a.worker(reporter().0);
        let send = |w: &mut Worker| {
            let mut buf = PacketBuf::with_default_room();
            buf.set_data(&ipv4([198, 51, 100, 1], [203, 0, 113, 1]))
                .unwrap();
            w.encapsulate(&mut buf)
        };
        for _ in 0..50 {
            assert_eq!(send(&mut w), Encap::Drop(EncapDrop::TrapNoSa));
        }
        // Two are held (the queue's length), the rest dropped.
        let pkt = ipv4([198, 51, 100, 1], [203, 0, 113, 1]);
        let hold = |w: &mut Worker| match w.outbound_or_hold(&pkt, true) {
            Err(Encap::Drop(d)) => d,
            _ => panic!("not trapped"),
        };
        assert_eq!(hold(&mut w), EncapDrop::TrapHeld);
        assert_eq!(hold(&mut w), EncapDrop::TrapHeld);
        assert_eq!(hold(&mut w), EncapDrop::TrapNoSa, "queue full");
        assert!(!w.release_due() && w.take_held().is_empty());
        // One acquire for fifty packets within the interval.
        assert_eq!(
            std::iter::from_fn(|| rx.try_recv().ok()).collect::<Vec<_>>(),
            [0]
        );
        // The child's SA arrives: its entry goes before the trap.
        a.apply(&outbound(5, 0x600)).unwrap();
        assert!(w.release_due());
        assert_eq!(w.take_held().len(), 2);
        assert!(!w.release_due() && w.take_held().is_empty());
        assert!(matches!(send(&mut w), Encap::Send { .. }));
        let spd = a.spd.load();
        assert_eq!(spd.entries()[0].action, PolicyAction::Protect(5));
        assert_eq!(spd.entries()[1].action, PolicyAction::Protect(TRAP_BASE));
        drop(spd);
        // It goes away (dpd_action = trap): the trap catches packets again.
        a.apply(&SaCommand::Delete {
            child: ChildId(5),
            spi: 0x600,
            inbound: false,
        })
        .unwrap();
        assert_eq!(send(&mut w), Encap::Drop(EncapDrop::TrapNoSa));
    }

    #[test]
    fn raw_esp_sas_keep_their_addresses_without_ports() {
        let a = Tables::default();
        let mut cmd = outbound(1, 0x300);
        if let SaCommand::InstallOutbound { udp_encap, .. } = &mut cmd {
            *udp_encap = false;
        }
        a.apply(&cmd).unwrap();
        let mut w = a.worker(reporter().0);
        let mut buf = PacketBuf::with_default_room();
        buf.set_data(&ipv4([198, 51, 100, 1], [203, 0, 113, 1]))
            .unwrap();
        assert_eq!(
            w.encapsulate(&mut buf),
            Encap::Send {
                local: "192.0.2.1:0".parse().unwrap(),
                remote: "192.0.2.2:0".parse().unwrap(),
            }
        );
        // Moved (never by the engine without NAT, but if so): still raw.
        a.apply(&SaCommand::UpdateEndpoints {
            child: ChildId(1),
            spi: 0x300,
            local: "192.0.2.1:500".parse().unwrap(),
            remote: "192.0.2.9:500".parse().unwrap(),
        })
        .unwrap();
        buf.set_data(&ipv4([198, 51, 100, 1], [203, 0, 113, 1]))
            .unwrap();
        assert!(matches!(
            w.encapsulate(&mut buf),
            Encap::Send { remote, .. } if remote == "192.0.2.9:0".parse().unwrap()
        ));
    }

    #[test]
    fn rejects_bad_keys() {
        let a = Tables::default();
        let mut cmd = inbound(1, 0x301);
        if let SaCommand::InstallInbound { sa, .. } = &mut cmd {
            sa.keys = Secret::new(vec![0; 3]);
        }
        assert!(a.apply(&cmd).is_err());
    }
}
