//! The userspace data plane: a TUN device, the UDP 4500 sockets and the
//! threads that move packets between them through the ESP SAs.
//!
//! ```text
//!   lane k (one thread per core):
//!   TUN queue k ─read─▶ split (TSO) ─▶ SPD/SA ─▶ encrypt into arena ─▶ sendmmsg + UDP GSO ─▶ socket k
//!   socket k ─recvmmsg + UDP GRO─▶ classify ─┬─ ESP ─▶ decrypt in place ─▶ merge (GRO) ─▶ writev ─▶ TUN queue k
//!                                            └─ IKE ─▶ engine channel (marker stripped)
//! ```
//!
//! **Lanes.** One lane per core (at most [`MAX_LANES`]), each with its own
//! queue of a multi-queue TUN device, its own UDP 4500 sockets (bound with
//! `SO_REUSEPORT`) and one thread that does both directions (see
//! [`Lane::run`] for why). The kernel spreads inner flows over the TUN
//! queues and peers over the sockets, keeping each flow on one queue and
//! each peer on one socket, so packets stay in order. Lanes share nothing
//! on the packet path but the SAs' atomics: tables are read through
//! lock-free snapshots, buffers are the thread's own, allocated once.
//!
//! **Raw ESP.** When some connection may go without UDP (`encap = false`),
//! each lane also has a raw IP protocol 50 socket per family, filtered to
//! its share of the SPIs ([`super::rawesp`]): SAs the engine installed
//! without UDP encapsulation (no NAT) leave there, one packet per message
//! (no GSO), and what arrives goes through the same decapsulation as ESP
//! from UDP 4500.
//!
//! **Batches.** A TUN read with offloads (`IFF_VNET_HDR`, TSO/USO) brings up
//! to 64 KiB of one TCP or UDP flow; [`offload::Segmenter`] cuts it into
//! wire-sized packets that are encrypted back to back into an arena, and a
//! run of equal-size ESP packets to one peer leaves in one `sendmmsg`
//! message with `UDP_SEGMENT` (GSO): the kernel segments it as late as it
//! can. The other way, `recvmmsg` with `UDP_GRO` brings such runs back as
//! one datagram, decrypted in place, and [`offload::Coalescer`] merges the
//! inner TCP segments again into one TUN write. The TUN reader drains the
//! device before sending, so a lone packet leaves at once and a burst leaves
//! in few system calls.
//!
//! **Blocking.** Threads wait in `poll` with a 250 ms timeout so that they
//! see `stop`; reads and receives themselves never block (sends may, when
//! the socket buffer is full: that is the backpressure).
//!
//! What the engine must hear from the packet path (limits crossed, inbound
//! activity, unknown SPIs) goes to it as [`DataplaneEvent`]s through the
//! channel given to [`DataPlane::start`]. Drops are counted by typed reason
//! (no formatting per packet) and logged at debug level at most once a
//! second per thread.
//!
//! **Tuning.** The environment variable `OXISEC_DATAPLANE` overrides the
//! defaults for benchmarks and for kernels that misbehave, as comma-separated
//! `key=value`: `lanes=N` (1..=16), `offload=on|off` (TUN TSO and the
//! coalescer), `uso=on|off` (the coalescer merges received UDP too, where
//! the TUN device takes UDP segmentation offload), `gso=on|off` (UDP GSO
//! sends), `gro=on|off` (UDP GRO receives), `batch=N` (datagrams per `recvmmsg`, 1..=64), `spin=µs`
//! (polling without sleeping after the last packet, 0..=10000, default 0).
pub mod batch;
pub mod lane;
pub mod mtu;
pub mod offload;

/// The packet workers and the tables they read, for tests and benchmarks
/// that drive a lane's work without I/O.
pub use super::esp::{Decap, Encap, EncapDrop, Outbound, Reporter, Tables, Worker};

use std::collections::BTreeMap;
use std::io::{self, IoSlice};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use oxisec_esp::stats::DropCounters as ReasonCounters;
use oxisec_ike::{Datagram, DataplaneEvent, SaCommand};
use tokio::sync::mpsc;
use tracing::{Level, debug, error, info, warn};

use super::esp::drop_map;
use super::rawesp::{RawEspSock, RawSockets, check_spi, parse_ipv4};
use super::udp::{PortSockets, UdpSock};
use crate::status::Traffic;
use batch::{EPOLL_FDS, Epoll, RecvBatch, SendBatch};
use lane::{RxCounts, RxPath, TxArena, Via, encap_read};
use mtu::{MssClamp, MtuSettings};
use offload::{Segmenter, VNET_HDR_LEN, VnetHdr};

/// TUN transmit queue (packets the kernel hands us) length.
const TX_QUEUE_LEN: u32 = 2000;

/// Most lanes, whatever the core count.
pub const MAX_LANES: usize = 16;

/// Largest TUN read: a 64 KiB super-packet behind its virtio header.
const TUN_READ: usize = VNET_HDR_LEN + 65536;

/// Size of a receive slot: a whole UDP GRO datagram (or any datagram).
const RECV_SLOT: usize = 65536;

/// Bytes a TUN reader encrypts into before it must send: room for eight
/// 64 KiB reads' worth of ESP packets.
const TX_ARENA: usize = 8 * 72 * 1024;

/// Messages per `sendmmsg` (and family) before the TUN reader must send.
const TX_MSGS: usize = 128;

/// TUN reads per round before the lane sends what it has and looks at its
/// sockets: bounds the delay the first packet of a burst sees.
const TX_READS_PER_ROUND: usize = 64;

/// `recvmmsg` rounds per readable socket before the other family's socket
/// gets its turn.
const RX_ROUNDS: usize = 8;

/// How the packet path runs; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    pub lanes: usize,
    pub tun_offload: bool,
    /// The TUN device also takes UDP segmentation offload (Linux 6.2+):
    /// received UDP datagrams of one flow are merged too. Follows
    /// `tun_offload` and what the kernel supports.
    pub tun_uso: bool,
    pub udp_gso: bool,
    pub udp_gro: bool,
    pub batch: usize,
    /// Microseconds a lane keeps polling without sleeping after its last
    /// packet.
    pub spin_us: u64,
}

impl Tuning {
    /// One lane per core, every offload on, 16 datagrams per receive.
    pub fn auto() -> Tuning {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Tuning {
            lanes: cores.clamp(1, MAX_LANES),
            tun_offload: true,
            tun_uso: true,
            udp_gso: true,
            udp_gro: true,
            batch: 16,
            spin_us: 0,
        }
    }

    /// [`auto`](Self::auto) with the overrides in `spec` (`key=value,…`).
    pub fn parse(spec: &str) -> Result<Tuning, String> {
        let mut t = Tuning::auto();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: expected key=value"))?;
            let flag = || match v {
                "on" | "1" | "true" | "yes" => Ok(true),
                "off" | "0" | "false" | "no" => Ok(false),
                _ => Err(format!("{k}: {v:?} is neither on nor off")),
            };
            let num = |max: usize| match v.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(format!("{k}: {v:?} is not a number from 1 to {max}")),
            };
            match k {
                "lanes" => t.lanes = num(MAX_LANES)?,
                "offload" => t.tun_offload = flag()?,
                "uso" => t.tun_uso = flag()?,
                "gso" => t.udp_gso = flag()?,
                "gro" => t.udp_gro = flag()?,
                "batch" => t.batch = num(64)?,
                "spin" => {
                    t.spin_us = v
                        .parse()
                        .ok()
                        .filter(|n| *n <= 10_000)
                        .ok_or_else(|| format!("spin: {v:?} is not 0 to 10000 (µs)"))?
                }
                _ => return Err(format!("unknown key {k:?}")),
            }
        }
        Ok(t)
    }

    fn from_env() -> Tuning {
        match std::env::var("OXISEC_DATAPLANE") {
            Ok(spec) => match Tuning::parse(&spec) {
                Ok(t) => {
                    info!("OXISEC_DATAPLANE={spec}: {t:?}");
                    t
                }
                Err(e) => {
                    warn!("ignoring OXISEC_DATAPLANE={spec:?}: {e}");
                    Tuning::auto()
                }
            },
            Err(_) => Tuning::auto(),
        }
    }
}

/// Data-plane-wide drop counters since start, by reason. The SAs count
/// their own drops too, but those go away with the SA (every rekey).
#[derive(Debug, Default)]
pub struct DropCounters {
    pub invalid_4500: AtomicU64,
    pub ike_queue_full: AtomicU64,
    pub no_policy: AtomicU64,
    /// A policy names a CHILD_SA whose outbound SA is not installed.
    pub no_sa: AtomicU64,
    pub no_udp_encap: AtomicU64,
    /// A drop shunt matched (RFC 4301 DISCARD).
    pub policy_discard: AtomicU64,
    /// A trap matched before its child had an SA (an acquire was sent).
    pub trap_no_sa: AtomicU64,
    /// A pass shunt matched a packet in the TUN device, which cannot send
    /// it in clear: its routing rule is missing.
    pub policy_bypass: AtomicU64,
    /// Larger than the SA carries on the path (answered with ICMP "too
    /// big", rate-limited).
    pub too_big: AtomicU64,
    /// A TUN read whose offload header did not fit its packet.
    pub tun_malformed: AtomicU64,
    /// TUN writes the kernel refused.
    pub tun_write: AtomicU64,
    /// ESP packets the kernel refused to send.
    pub udp_send: AtomicU64,
    /// Raw ESP packets the kernel refused to send, or with no raw socket
    /// to send them on.
    pub raw_send: AtomicU64,
    /// Packets from a raw ESP socket with a broken IPv4 header, or SPI 0.
    pub invalid_raw: AtomicU64,
    /// ESP received and not delivered, by the ESP crate's reason.
    pub decap: ReasonCounters,
    /// Packets from the TUN device the ESP crate refused to protect.
    pub encap: ReasonCounters,
}

/// At most one debug line a second per thread for per-packet trouble, with
/// the number of lines it stood for; nothing at all when debug is off.
struct LogLimit {
    next: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    const INTERVAL: Duration = Duration::from_secs(1);

    fn new() -> LogLimit {
        LogLimit {
            next: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when a line may be logged now, `n` being how many were
    /// suppressed since the last one.
    fn allow(&mut self) -> Option<u64> {
        if !tracing::enabled!(Level::DEBUG) {
            return None;
        }
        let now = Instant::now();
        if self.next.is_some_and(|t| now < t) {
            self.suppressed += 1;
            return None;
        }
        self.next = Some(now + Self::INTERVAL);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// A running data plane.
pub struct DataPlane {
    tun_name: String,
    tun_index: u32,
    mtu: u16,
    tuning: Tuning,
    tables: Arc<Tables>,
    sock4500: Arc<PortSockets>,
    /// Raw ESP sockets are open (one pair per lane).
    raw_esp: bool,
    drops: Arc<DropCounters>,
    mtu_settings: Arc<MtuSettings>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    tun: Vec<Arc<tun_rs::SyncDevice>>,
}

/// Creates the TUN device, with offloads if asked and possible.
fn create_tun(name: &str, mtu: u16, t: &mut Tuning) -> io::Result<tun_rs::SyncDevice> {
    let build = |offload: bool, multi_queue: bool| {
        tun_rs::DeviceBuilder::new()
            .name(name)
            .mtu(mtu)
            // The kernel drops what the queue cannot hold while our reader
            // thread is busy encrypting; a deeper queue absorbs bursts (the
            // default 500 lost ~0.6% of a TCP stream here, 2000 far less).
            .tx_queue_len(TX_QUEUE_LEN)
            .offload(offload)
            .multi_queue(multi_queue)
            .enable(true)
            .build_sync()
    };
    let first = build(t.tun_offload, t.lanes > 1);
    let dev = match first {
        Ok(d) => d,
        Err(e) if t.tun_offload || t.lanes > 1 => {
            warn!(
                "TUN device {name} with offloads and {} queues: {e}; trying a plain one",
                t.lanes
            );
            t.tun_offload = false;
            t.lanes = 1;
            build(false, false)?
        }
        Err(e) => return Err(e),
    };
    if t.tun_offload && !dev.tcp_gso() {
        t.tun_offload = false;
    }
    t.tun_uso &= t.tun_offload && dev.udp_gso();
    Ok(dev)
}

impl DataPlane {
    /// Creates the TUN device (up, no address, `mtu`), and starts the
    /// lanes that read the TUN device and the UDP 4500 sockets. IKE
    /// messages from port 4500 go to `ike_tx`, what the engine must learn
    /// from the packets (limits, activity, unknown SPIs) to `events`.
    /// `sock4500` is lane 0's pair of sockets; the other lanes bind their
    /// own to the same port. `raw_esp`: also open raw ESP (protocol 50)
    /// sockets, one pair per lane (see [`super::rawesp`]); if the kernel
    /// refuses them the data plane runs without ([`raw_esp`](Self::raw_esp)
    /// says), with a warning.
    pub fn start(
        tun_name: &str,
        mtu: u16,
        sock4500: Arc<PortSockets>,
        raw_esp: bool,
        ike_tx: mpsc::Sender<Datagram>,
        events: mpsc::UnboundedSender<DataplaneEvent>,
    ) -> io::Result<DataPlane> {
        let mut tuning = Tuning::from_env();
        let tun = create_tun(tun_name, mtu, &mut tuning).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot create TUN device {tun_name}: {e} (needs CAP_NET_ADMIN and /dev/net/tun)"
                ),
            )
        })?;
        let tun_index = tun.if_index().unwrap_or(0);
        let mut queues = vec![tun];
        while queues.len() < tuning.lanes {
            match queues[0].try_clone() {
                Ok(q) => queues.push(q),
                Err(e) => {
                    warn!(
                        "TUN queue {}: {e}; using {} lane(s)",
                        queues.len(),
                        queues.len()
                    );
                    break;
                }
            }
        }
        let port = sock4500.v4.port();
        let mut socks = vec![Arc::clone(&sock4500)];
        while socks.len() < queues.len() {
            let lane = UdpSock::bind_lane(false, port).map(|v4| PortSockets {
                v4,
                v6: sock4500
                    .v6
                    .as_ref()
                    .and_then(|_| UdpSock::bind_lane(true, port).ok()),
            });
            match lane {
                Ok(s) => socks.push(Arc::new(s)),
                Err(e) => {
                    warn!(
                        "UDP {port} for lane {}: {e}; using {} lane(s)",
                        socks.len(),
                        socks.len()
                    );
                    break;
                }
            }
        }
        queues.truncate(socks.len());
        tuning.lanes = queues.len();
        if tuning.udp_gro {
            for s in &socks {
                let v6_ok = s.v6.as_ref().is_none_or(UdpSock::enable_gro);
                if !s.v4.enable_gro() || !v6_ok {
                    tuning.udp_gro = false;
                }
            }
        }
        for q in &queues {
            q.set_nonblocking(true)?;
        }
        let mut raws: Vec<Arc<RawSockets>> = Vec::new();
        if raw_esp {
            let lanes = queues.len() as u32;
            let v6 = sock4500.v6.is_some();
            match (0..lanes)
                .map(|k| RawSockets::open(k, lanes, v6).map(Arc::new))
                .collect::<io::Result<Vec<_>>>()
            {
                Ok(r) => raws = r,
                Err(e) => warn!(
                    "raw ESP (IP protocol 50) sockets: {e} (needs CAP_NET_RAW); ESP goes in UDP 4500 only"
                ),
            }
        }
        let raw_esp = !raws.is_empty();

        let tun: Vec<Arc<tun_rs::SyncDevice>> = queues.into_iter().map(Arc::new).collect();
        let tables = Arc::new(Tables::default());
        let drops = Arc::new(DropCounters::default());
        let mtu_settings = Arc::new(MtuSettings::default());
        mtu_settings.set(1500, mtu, MssClamp::Off);
        let stop = Arc::new(AtomicBool::new(false));
        let reporter = Reporter::new(events);
        let mut threads = Vec::new();
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name).spawn(f)
        };
        for (k, (q, s)) in tun.iter().zip(&socks).enumerate() {
            let ctx = Lane {
                tun: Arc::clone(q),
                socks: Arc::clone(s),
                raw: raws.get(k).cloned(),
                drops: Arc::clone(&drops),
                mtu: Arc::clone(&mtu_settings),
                stop: Arc::clone(&stop),
                tuning,
            };
            let worker = tables.worker(reporter.clone());
            let ike_tx = ike_tx.clone();
            threads.push(spawn(
                format!("oxisec-lane{k}"),
                Box::new(move || ctx.run(worker, &ike_tx)),
            )?);
        }
        info!(
            "TUN device {tun_name} up (mtu {mtu}, {} lane(s), TUN offload {} (UDP {}), UDP GSO {}, UDP GRO {}, raw ESP {})",
            tuning.lanes,
            on_off(tuning.tun_offload),
            on_off(tuning.tun_uso),
            on_off(tuning.udp_gso),
            on_off(tuning.udp_gro),
            on_off(raw_esp)
        );
        Ok(DataPlane {
            tun_name: tun_name.to_string(),
            tun_index,
            mtu,
            tuning,
            tables,
            sock4500,
            raw_esp,
            drops,
            mtu_settings,
            stop,
            threads,
            tun,
        })
    }

    pub fn tun_name(&self) -> &str {
        &self.tun_name
    }

    pub fn tun_index(&self) -> u32 {
        self.tun_index
    }

    pub fn sock4500(&self) -> &Arc<PortSockets> {
        &self.sock4500
    }

    /// Whether raw ESP sockets are open: SAs without UDP encapsulation can
    /// be carried.
    pub fn raw_esp(&self) -> bool {
        self.raw_esp
    }

    /// How the packet path runs (after what the kernel allowed).
    pub fn tuning(&self) -> Tuning {
        self.tuning
    }

    /// One line for `oxisec status`.
    pub fn describe(&self) -> String {
        let t = &self.tuning;
        let mut offloads = Vec::new();
        if t.tun_offload {
            offloads.push("TUN TSO/GRO");
        }
        if t.tun_uso {
            offloads.push("TUN USO");
        }
        if t.udp_gso {
            offloads.push("UDP GSO");
        }
        if t.udp_gro {
            offloads.push("UDP GRO");
        }
        format!(
            "userspace ESP-in-UDP{} on {} (mtu {}, {} lane(s), offloads: {}, {})",
            if self.raw_esp { " and raw ESP" } else { "" },
            self.tun_name,
            self.mtu,
            t.lanes,
            if offloads.is_empty() {
                "none".to_string()
            } else {
                offloads.join(", ")
            },
            Tables::engine_name()
        )
    }

    /// Applies one engine command to the SAD/SPD. Commands must be applied
    /// in the order the engine emitted them.
    pub fn apply(&self, cmd: &SaCommand) -> Result<(), String> {
        self.tables.apply(cmd)
    }

    /// The outer path MTU the SAs' inner limits are computed from, and TCP
    /// MSS clamping (see [`mtu`]).
    pub fn set_mtu_policy(&self, path_mtu: u16, clamp: MssClamp) {
        self.mtu_settings.set(path_mtu, self.mtu, clamp);
    }

    /// The largest inner packet the outbound SA of `child` carries (the
    /// `mtu` of its routes); `None` when it is not installed.
    pub fn child_mtu(&self, child: u64) -> Option<u32> {
        self.tables.child_mtu(child, &self.mtu_settings)
    }

    /// Puts trap entries (remote/local selectors of trap `i`) at the tail
    /// of the SPD; packets hitting one without an SA send `i` to `acquire`.
    pub fn set_traps(
        &self,
        traps: Vec<(Vec<oxisec_esp::Selector>, Vec<oxisec_esp::Selector>)>,
        queue_len: usize,
        acquire: mpsc::UnboundedSender<usize>,
    ) {
        self.tables.set_traps(traps, queue_len, acquire);
    }

    /// Puts the shunts' BYPASS/DISCARD entries at the head of the SPD.
    pub fn set_shunts(&self, entries: Vec<oxisec_esp::SpdEntry>) {
        self.tables.set_shunts(entries);
    }

    pub fn counters(&self, spi: u32, inbound: bool) -> Option<Traffic> {
        self.tables.counters(spi, inbound)
    }

    /// Non-zero drop counts since start by reason, for `oxisec status`:
    /// inbound ESP as `in: REASON`, outbound packets as `out: REASON`.
    pub fn drops(&self) -> BTreeMap<String, u64> {
        drops_map(&self.drops)
    }

    /// Stops the threads and closes the TUN device (which removes it).
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.tables.clear();
        self.tun.clear();
        info!("TUN device {} removed", self.tun_name);
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn drops_map(d: &DropCounters) -> BTreeMap<String, u64> {
    let named = [
        ("invalid on UDP 4500", &d.invalid_4500),
        ("IKE queue full", &d.ike_queue_full),
        ("no policy", &d.no_policy),
        ("out: no_sa", &d.no_sa),
        ("out: no_udp_encap", &d.no_udp_encap),
        ("out: policy_discard", &d.policy_discard),
        ("out: policy_bypass", &d.policy_bypass),
        ("out: trap_no_sa", &d.trap_no_sa),
        ("out: too_big", &d.too_big),
        ("out: malformed TUN read", &d.tun_malformed),
        ("out: UDP send failed", &d.udp_send),
        ("out: raw ESP send failed", &d.raw_send),
        ("in: invalid raw ESP", &d.invalid_raw),
        ("in: TUN write failed", &d.tun_write),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.load(Ordering::Relaxed)));
    let by_reason = |prefix: &'static str, c: &ReasonCounters| {
        drop_map(&c.snapshot())
            .into_iter()
            .map(move |(k, v)| (format!("{prefix}: {k}"), v))
    };
    named
        .chain(by_reason("in", &d.decap))
        .chain(by_reason("out", &d.encap))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// Waits up to `timeout_ms` for the lane's descriptors; `false` when
/// nothing is readable.
fn wait_readable(ep: &Epoll, ready: &mut [bool; EPOLL_FDS], timeout_ms: i32) -> bool {
    match ep.wait(ready, timeout_ms) {
        Ok(any) => any,
        Err(e) => {
            warn!("epoll_wait failed: {e}");
            std::thread::sleep(Duration::from_millis(50));
            false
        }
    }
}

/// What a lane's thread works with.
#[derive(Clone)]
struct Lane {
    tun: Arc<tun_rs::SyncDevice>,
    socks: Arc<PortSockets>,
    /// This lane's share of raw ESP (by SPI), when raw ESP is on.
    raw: Option<Arc<RawSockets>>,
    drops: Arc<DropCounters>,
    mtu: Arc<MtuSettings>,
    stop: Arc<AtomicBool>,
    tuning: Tuning,
}

impl Lane {
    /// The lane's thread: ESP from the sockets decrypted into the TUN
    /// queue, inner packets from the TUN queue encrypted to the peers, until
    /// `stop`.
    ///
    /// One thread does both directions so that a request and its answer
    /// cost one wake-up, not two: a TUN write delivers the packet to the
    /// local stack synchronously, so the answer (an ICMP echo reply, a TCP
    /// ACK) is usually in the TUN queue when the write returns, and the
    /// loop reads it right away. After the last packet it keeps polling
    /// without sleeping for `spin` (the next packet of a conversation tends
    /// to come within microseconds, and waking a sleeping thread costs tens
    /// of them on a virtual machine).
    fn run(&self, mut worker: Worker, ike_tx: &mpsc::Sender<Datagram>) {
        let mut rx = RxState::new(self, ike_tx);
        let mut tx = TxState::new(self);
        let tun = &*self.tun;
        let mut socks: Vec<&UdpSock> = vec![&self.socks.v4];
        socks.extend(self.socks.v6.as_ref());
        let mut fds: Vec<BorrowedFd<'_>> = vec![tun.as_fd()];
        fds.extend(socks.iter().map(|s| s.std().as_fd()));
        let mut raws: Vec<&RawEspSock> = Vec::new();
        if let Some(r) = &self.raw {
            raws.push(&r.v4);
            raws.extend(r.v6.as_ref());
        }
        let raw_at = fds.len();
        fds.extend(raws.iter().map(|s| s.fd()));
        let ep = match Epoll::new(&fds) {
            Ok(ep) => ep,
            Err(e) => {
                error!("data-plane lane cannot wait for packets: epoll: {e}");
                return;
            }
        };
        let mut ready = [false; EPOLL_FDS];
        let spin = Duration::from_micros(self.tuning.spin_us);
        while !self.stop.load(Ordering::Relaxed) {
            if worker.release_due() {
                // An SA came for packets a trap held: send them now.
                tx.drain(&mut worker);
            }
            if !wait_readable(&ep, &mut ready, 250) {
                continue;
            }
            let mut idle_since: Option<Instant> = None;
            loop {
                let mut busy = false;
                for (i, sock) in socks.iter().enumerate() {
                    if ready[i + 1] {
                        busy |= rx.drain(&mut worker, sock, fds[i + 1]);
                    }
                }
                for (i, sock) in raws.iter().enumerate() {
                    if ready[raw_at + i] {
                        busy |= rx.drain_raw(&mut worker, sock);
                    }
                }
                if ready[0] {
                    busy |= tx.drain(&mut worker);
                }
                if busy {
                    // Look everywhere once more: a TUN write just now has
                    // probably queued an answer, and more may have come.
                    idle_since = None;
                    ready.fill(true);
                    continue;
                }
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= spin || self.stop.load(Ordering::Relaxed) {
                    break;
                }
                if !wait_readable(&ep, &mut ready, 0) {
                    ready.fill(false);
                    std::hint::spin_loop();
                }
            }
        }
    }
}

/// The receiving half of a lane.
struct RxState<'l> {
    lane: &'l Lane,
    rb: RecvBatch,
    path: RxPath,
    log: LogLimit,
    tun_log: LogLimit,
    ike_tx: &'l mpsc::Sender<Datagram>,
}

impl<'l> RxState<'l> {
    fn new(lane: &'l Lane, ike_tx: &'l mpsc::Sender<Datagram>) -> RxState<'l> {
        RxState {
            lane,
            rb: RecvBatch::new(lane.tuning.batch, RECV_SLOT),
            path: RxPath::new(lane.tuning.tun_offload, lane.tuning.tun_uso)
                .with_headroom(batch::RX_HEADROOM),
            log: LogLimit::new(),
            tun_log: LogLimit::new(),
            ike_tx,
        }
    }

    /// Receives and processes what waits on `sock` (a few batches at
    /// most); whether there was anything.
    fn drain(&mut self, worker: &mut Worker, sock: &UdpSock, fd: BorrowedFd<'_>) -> bool {
        let lane = self.lane;
        self.path.mss = lane.mtu.rx_mss();
        let drops = &*lane.drops;
        let tun = &*lane.tun;
        let offload = lane.tuning.tun_offload;
        let ike_tx = self.ike_tx;
        let tun_log = &mut self.tun_log;
        let mut ike = |d: Datagram| {
            if ike_tx.try_send(d).is_err() {
                drops.ike_queue_full.fetch_add(1, Ordering::Relaxed);
            }
        };
        let mut write = |iov: &[IoSlice<'_>]| {
            // Without offloads the TUN device takes the bare packet.
            let r = if offload {
                tun.send_vectored(iov)
            } else {
                tun.send(&iov[0])
            };
            if let Err(e) = r {
                drops.tun_write.fetch_add(1, Ordering::Relaxed);
                if let Some(n) = tun_log.allow() {
                    debug!(suppressed = n, "TUN write failed: {e}");
                }
            }
        };
        let mut any = false;
        for _ in 0..RX_ROUNDS {
            let n = match self.rb.recv(fd, sock.port(), sock.is_v6()) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("UDP {}: receive failed: {e}", sock.port());
                    std::thread::sleep(Duration::from_millis(50));
                    break;
                }
            };
            any = true;
            worker.start_batch();
            for j in 0..n {
                let m = *self.rb.meta(j);
                let range = self.rb.range(j);
                let c = self.path.datagram(
                    worker,
                    self.rb.area_mut(),
                    range,
                    m.seg,
                    m.local,
                    m.remote,
                    drops,
                    &mut ike,
                    &mut write,
                );
                if let Some(why) = c.dropped
                    && !why.is_silent()
                    && let Some(s) = self.log.allow()
                {
                    debug!(from = %m.remote, suppressed = s, "ESP packet dropped: {why}");
                }
            }
            self.path.end_batch(self.rb.area_mut(), &mut write);
            if n < lane.tuning.batch {
                break;
            }
        }
        any
    }

    /// [`drain`](Self::drain) for a raw ESP socket: the IPv4 header (which
    /// an IPv4 raw socket delivers) checked and stripped, then the same
    /// decapsulation, checks and counters as ESP from UDP 4500. Outer
    /// addresses carry port 0, as raw ESP SAs do.
    fn drain_raw(&mut self, worker: &mut Worker, sock: &RawEspSock) -> bool {
        let lane = self.lane;
        self.path.mss = lane.mtu.rx_mss();
        let drops = &*lane.drops;
        let tun = &*lane.tun;
        let offload = lane.tuning.tun_offload;
        let tun_log = &mut self.tun_log;
        let mut write = |iov: &[IoSlice<'_>]| {
            let r = if offload {
                tun.send_vectored(iov)
            } else {
                tun.send(&iov[0])
            };
            if let Err(e) = r {
                drops.tun_write.fetch_add(1, Ordering::Relaxed);
                if let Some(n) = tun_log.allow() {
                    debug!(suppressed = n, "TUN write failed: {e}");
                }
            }
        };
        let v6 = sock.is_v6();
        let mut any = false;
        for _ in 0..RX_ROUNDS {
            let n = match self.rb.recv(sock.fd(), 0, v6) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("raw ESP: receive failed: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                    break;
                }
            };
            any = true;
            worker.start_batch();
            for j in 0..n {
                let m = *self.rb.meta(j);
                let range = self.rb.range(j);
                let pkt = &self.rb.area_mut()[range.clone()];
                let (esp, local, remote) = if v6 {
                    let ok = check_spi(pkt);
                    (ok.map(|()| range.clone()), m.local, m.remote)
                } else {
                    match parse_ipv4(pkt) {
                        Ok(h) => (
                            Ok(range.start + h.esp.start..range.start + h.esp.end),
                            SocketAddr::new(IpAddr::V4(h.dst), 0),
                            SocketAddr::new(IpAddr::V4(h.src), 0),
                        ),
                        Err(e) => (Err(e), m.local, m.remote),
                    }
                };
                let esp = match esp {
                    Ok(r) => r,
                    Err(e) => {
                        drops.invalid_raw.fetch_add(1, Ordering::Relaxed);
                        if let Some(s) = self.log.allow() {
                            debug!(from = %m.remote, suppressed = s, "raw ESP packet dropped: {e}");
                        }
                        continue;
                    }
                };
                let remote = SocketAddr::new(remote.ip(), 0);
                let mut c = RxCounts::default();
                // Free in front: the batch's headroom and, over IPv4, the
                // IP header just checked (room for transport mode's).
                let mut free_from = range.start.saturating_sub(self.path.headroom());
                self.path.esp(
                    worker,
                    self.rb.area_mut(),
                    esp,
                    &mut free_from,
                    (local, remote),
                    drops,
                    &mut write,
                    &mut c,
                );
                if let Some(why) = c.dropped
                    && !why.is_silent()
                    && let Some(s) = self.log.allow()
                {
                    debug!(from = %remote, suppressed = s, "raw ESP packet dropped: {why}");
                }
            }
            self.path.end_batch(self.rb.area_mut(), &mut write);
            if n < lane.tuning.batch {
                break;
            }
        }
        any
    }
}

/// The sending half of a lane.
struct TxState<'l> {
    lane: &'l Lane,
    rd: Box<[u8]>,
    arena: TxArena,
    log: LogLimit,
    send_log: LogLimit,
    gso_warned: bool,
}

impl<'l> TxState<'l> {
    fn new(lane: &'l Lane) -> TxState<'l> {
        TxState {
            lane,
            rd: vec![0u8; TUN_READ].into_boxed_slice(),
            arena: TxArena::new(TX_ARENA, TX_MSGS, lane.tuning.udp_gso),
            log: LogLimit::new(),
            send_log: LogLimit::new(),
            gso_warned: false,
        }
    }

    /// Reads the TUN queue until it is empty or a round's worth
    /// ([`TX_READS_PER_ROUND`]) is done, encrypts and sends; whether there
    /// was anything. One round at a time, so that a busy TUN queue cannot
    /// starve the sockets (and the other way round: [`RX_ROUNDS`]).
    fn drain(&mut self, worker: &mut Worker) -> bool {
        let lane = self.lane;
        let drops = &*lane.drops;
        let tun = &*lane.tun;
        let socks = &*lane.socks;
        let raw = lane.raw.as_deref();
        let offload = lane.tuning.tun_offload;
        let (send_log, gso_warned) = (&mut self.send_log, &mut self.gso_warned);
        let mut flush = |tx: &mut TxArena| {
            tx.flush_with(|via: Via, batch: &mut SendBatch, arena| {
                let fd = match (via.raw, via.v4) {
                    (false, true) => Some(socks.v4.std().as_fd()),
                    (false, false) => socks.v6.as_ref().map(|s| s.std().as_fd()),
                    (true, true) => raw.map(|r| r.v4.fd()),
                    (true, false) => raw.and_then(|r| r.v6.as_ref()).map(|s| s.fd()),
                };
                let counter = if via.raw {
                    &drops.raw_send
                } else {
                    &drops.udp_send
                };
                let Some(fd) = fd else {
                    // No socket of this kind: nothing to send it with.
                    let out = batch.flush_none();
                    counter.fetch_add(out as u64, Ordering::Relaxed);
                    return;
                };
                let out = batch.flush(fd, arena);
                if out.failed > 0 {
                    counter.fetch_add(out.failed as u64, Ordering::Relaxed);
                    if let Some(n) = send_log.allow() {
                        let e = out.error.map(io::Error::from_raw_os_error);
                        debug!(suppressed = n, "ESP send failed: {e:?}");
                    }
                }
                if out.gso_disabled && !*gso_warned {
                    *gso_warned = true;
                    warn!("UDP GSO refused by the kernel; sending one datagram per packet");
                }
            });
        };
        let mut reads = 0;
        for pkt in worker.take_held() {
            let hdr = VnetHdr::default();
            if let Ok(seg) = Segmenter::new(&hdr, &pkt) {
                let mut reply = |_: &[u8]| {};
                encap_read(
                    worker,
                    &seg,
                    &mut self.arena,
                    drops,
                    &lane.mtu,
                    &mut reply,
                    &mut flush,
                );
            }
        }
        while reads < TX_READS_PER_ROUND {
            let n = match tun.recv(&mut self.rd) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if let Some(s) = self.log.allow() {
                        debug!(suppressed = s, "TUN read failed: {e}");
                    }
                    break;
                }
            };
            reads += 1;
            let rd = &self.rd[..n];
            let (hdr, pkt) = if offload {
                match (VnetHdr::parse(rd), rd.get(VNET_HDR_LEN..)) {
                    (Some(h), Some(p)) => (h, p),
                    _ => {
                        drops.tun_malformed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            } else {
                (VnetHdr::default(), rd)
            };
            let seg = match Segmenter::new(&hdr, pkt) {
                Ok(s) => s,
                Err(e) => {
                    drops.tun_malformed.fetch_add(1, Ordering::Relaxed);
                    if let Some(s) = self.log.allow() {
                        debug!(suppressed = s, "TUN read dropped: {e}");
                    }
                    continue;
                }
            };
            let mut reply = |icmp: &[u8]| {
                // Without offloads the TUN device takes the bare packet;
                // with them, behind a virtio header that asks for nothing.
                let r = if offload {
                    let hdr = [0u8; VNET_HDR_LEN];
                    tun.send_vectored(&[IoSlice::new(&hdr), IoSlice::new(icmp)])
                } else {
                    tun.send(icmp)
                };
                if r.is_err() {
                    drops.tun_write.fetch_add(1, Ordering::Relaxed);
                }
            };
            encap_read(
                worker,
                &seg,
                &mut self.arena,
                drops,
                &lane.mtu,
                &mut reply,
                &mut flush,
            );
        }
        if !self.arena.is_empty() {
            flush(&mut self.arena);
        }
        reads > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxisec_esp::DropReason;

    #[test]
    fn drops_are_listed_by_direction_and_reason() {
        let d = DropCounters::default();
        assert!(drops_map(&d).is_empty());
        d.no_policy.fetch_add(3, Ordering::Relaxed);
        d.no_sa.fetch_add(1, Ordering::Relaxed);
        d.policy_discard.fetch_add(2, Ordering::Relaxed);
        d.decap.bump(DropReason::ReplayDuplicate);
        d.decap.bump(DropReason::ReplayDuplicate);
        d.encap.bump(DropReason::Expired);
        let m = drops_map(&d);
        let got: Vec<(&str, u64)> = m.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            got,
            [
                ("in: replay_duplicate", 2),
                ("no policy", 3),
                ("out: expired", 1),
                ("out: no_sa", 1),
                ("out: policy_discard", 2),
            ]
        );
    }

    #[test]
    fn log_limit_is_quiet_without_a_debug_subscriber() {
        // No subscriber is installed in unit tests: nothing is ever due,
        // so the drop path does not even read the clock.
        let mut l = LogLimit::new();
        assert_eq!(l.allow(), None);
        assert_eq!(l.suppressed, 0);
    }

    #[test]
    fn tuning_parses_overrides_and_refuses_nonsense() {
        let auto = Tuning::auto();
        assert!(auto.lanes >= 1 && auto.tun_offload && auto.udp_gso && auto.udp_gro);
        assert_eq!(Tuning::parse("").unwrap(), auto);
        let t = Tuning::parse("lanes=1, offload=off,uso=off,gso=0,gro=no,batch=1,spin=0").unwrap();
        assert_eq!(
            t,
            Tuning {
                lanes: 1,
                tun_offload: false,
                tun_uso: false,
                udp_gso: false,
                udp_gro: false,
                batch: 1,
                spin_us: 0,
            }
        );
        for bad in [
            "lanes=0",
            "lanes=99",
            "offload=maybe",
            "speed=11",
            "gso",
            "spin=-1",
        ] {
            assert!(Tuning::parse(bad).is_err(), "{bad}");
        }
    }
}
