//! The userspace data plane: a TUN device, the UDP 4500 sockets and the
//! threads that move packets between them through the ESP SAs.
//!
//! ```text
//!   TUN ──read──▶ SPD lookup ─▶ encapsulate ─▶ UDP 4500 send (to the SA's peer)
//!   UDP 4500 ─▶ classify ─┬─ ESP ─▶ decapsulate ─▶ TUN write
//!                         └─ IKE ─▶ engine channel (marker stripped)
//! ```
//!
//! Dedicated threads, not tokio tasks: the per-packet work is CPU-bound
//! crypto, and a blocking read per socket is the cheapest loop there is.
//! Blocking reads time out every 250 ms so that the threads see `stop`.
//!
//! What the engine must hear from the packet path (limits crossed, inbound
//! activity, unknown SPIs) goes to it as [`DataplaneEvent`]s through the
//! channel given to [`DataPlane::start`]. Drops are counted by typed reason
//! (no formatting per packet) and logged at debug level at most once a
//! second per thread.
use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use oxisec_esp::PacketBuf;
use oxisec_esp::stats::DropCounters as ReasonCounters;
use oxisec_ike::{Datagram, DataplaneEvent, SaCommand};
use oxisec_wire::esp::{Udp4500, classify_udp4500};
use tokio::sync::mpsc;
use tracing::{Level, debug, info, warn};

use super::esp::{Decap, Encap, EncapDrop, Reporter, Tables, drop_map};
use super::udp::{PortSockets, UdpSock};
use crate::status::Traffic;

/// TUN transmit queue (packets the kernel hands us) length.
const TX_QUEUE_LEN: u32 = 2000;

/// Largest datagram we read: a full-size UDP payload.
const RECV_BUF: usize = 65536;

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
    tables: Arc<Tables>,
    sock4500: Arc<PortSockets>,
    drops: Arc<DropCounters>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    tun: Option<Arc<tun_rs::SyncDevice>>,
}

impl DataPlane {
    /// Creates the TUN device (up, no address, `mtu`), and starts the
    /// threads that read the TUN device and the UDP 4500 sockets. IKE
    /// messages from port 4500 go to `ike_tx`, what the engine must learn
    /// from the packets (limits, activity, unknown SPIs) to `events`.
    pub fn start(
        tun_name: &str,
        mtu: u16,
        sock4500: Arc<PortSockets>,
        ike_tx: mpsc::Sender<Datagram>,
        events: mpsc::UnboundedSender<DataplaneEvent>,
    ) -> io::Result<DataPlane> {
        let tun = tun_rs::DeviceBuilder::new()
            .name(tun_name)
            .mtu(mtu)
            // The kernel drops what the queue cannot hold while our reader
            // thread is busy encrypting; a deeper queue absorbs bursts (the
            // default 500 lost ~0.6% of a TCP stream here, 2000 far less).
            .tx_queue_len(TX_QUEUE_LEN)
            .enable(true)
            .build_sync()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot create TUN device {tun_name}: {e} (needs CAP_NET_ADMIN and /dev/net/tun)"
                    ),
                )
            })?;
        let tun_index = tun.if_index().unwrap_or(0);
        let tun = Arc::new(tun);
        let tables = Arc::new(Tables::default());
        let drops = Arc::new(DropCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let reporter = Reporter::new(events);
        let mut threads = Vec::new();

        for v6 in [false, true] {
            let s = Arc::clone(&sock4500);
            if v6 && s.v6.is_none() {
                continue;
            }
            let (tun, drops, stop, ike_tx) = (
                Arc::clone(&tun),
                Arc::clone(&drops),
                Arc::clone(&stop),
                ike_tx.clone(),
            );
            let worker = tables.worker(reporter.clone());
            let name = if v6 { "oxisec-udp6" } else { "oxisec-udp4" };
            threads.push(
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || {
                        let sock = if v6 { s.v6.as_ref() } else { Some(&s.v4) };
                        if let Some(sock) = sock {
                            udp_loop(sock, &tun, worker, &drops, &stop, &ike_tx);
                        }
                    })?,
            );
        }
        {
            let (tun, drops, stop, s) = (
                Arc::clone(&tun),
                Arc::clone(&drops),
                Arc::clone(&stop),
                Arc::clone(&sock4500),
            );
            let worker = tables.worker(reporter.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("oxisec-tun".into())
                    .spawn(move || tun_loop(&tun, worker, &drops, &stop, &s))?,
            );
        }
        info!("TUN device {tun_name} up (mtu {mtu})");
        Ok(DataPlane {
            tun_name: tun_name.to_string(),
            tun_index,
            mtu,
            tables,
            sock4500,
            drops,
            stop,
            threads,
            tun: Some(tun),
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

    /// One line for `oxisec status`.
    pub fn describe(&self) -> String {
        format!(
            "userspace ESP-in-UDP on {} (mtu {}, {})",
            self.tun_name,
            self.mtu,
            Tables::engine_name()
        )
    }

    /// Applies one engine command to the SAD/SPD. Commands must be applied
    /// in the order the engine emitted them.
    pub fn apply(&self, cmd: &SaCommand) -> Result<(), String> {
        self.tables.apply(cmd)
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
        drop(self.tun.take());
        info!("TUN device {} removed", self.tun_name);
    }
}

fn drops_map(d: &DropCounters) -> BTreeMap<String, u64> {
    let named = [
        ("invalid on UDP 4500", &d.invalid_4500),
        ("IKE queue full", &d.ike_queue_full),
        ("no policy", &d.no_policy),
        ("out: no_sa", &d.no_sa),
        ("out: no_udp_encap", &d.no_udp_encap),
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

fn udp_loop(
    sock: &UdpSock,
    tun: &tun_rs::SyncDevice,
    mut worker: super::esp::Worker,
    drops: &DropCounters,
    stop: &AtomicBool,
    ike_tx: &mpsc::Sender<Datagram>,
) {
    let mut log = LogLimit::new();
    // Decapsulation only shrinks the window: no head- or tailroom needed.
    let mut buf = PacketBuf::new(0, RECV_BUF, 0);
    while !stop.load(Ordering::Relaxed) {
        buf.clear();
        let r = match sock.recv(buf.spare_mut()) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                warn!("UDP {}: receive failed: {e}", sock.port());
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
        };
        if buf.commit(r.len).is_err() {
            continue;
        }
        match classify_udp4500(buf.as_slice()) {
            Udp4500::Keepalive => continue,
            Udp4500::Invalid => {
                drops.invalid_4500.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Udp4500::Ike(msg) => {
                let d = Datagram {
                    local: r.local,
                    remote: r.remote,
                    data: msg.to_vec(),
                };
                if ike_tx.try_send(d).is_err() {
                    drops.ike_queue_full.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            Udp4500::Esp(_) => {}
        }
        match worker.decapsulate(&mut buf, r.local, r.remote) {
            Decap::Deliver => {
                if let Err(e) = tun.send(buf.as_slice())
                    && let Some(n) = log.allow()
                {
                    debug!(suppressed = n, "TUN write failed: {e}");
                }
            }
            Decap::Drop(why) => {
                drops.decap.bump(why);
                if !why.is_silent()
                    && let Some(n) = log.allow()
                {
                    debug!(from = %r.remote, suppressed = n, "ESP packet dropped: {why}");
                }
            }
        }
    }
}

fn tun_loop(
    tun: &tun_rs::SyncDevice,
    mut worker: super::esp::Worker,
    drops: &DropCounters,
    stop: &AtomicBool,
    socks: &PortSockets,
) {
    let mut log = LogLimit::new();
    let mut buf = PacketBuf::new(
        PacketBuf::DEFAULT_HEADROOM,
        RECV_BUF,
        PacketBuf::DEFAULT_TAILROOM,
    );
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(tun.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(250u16)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                warn!("poll on the TUN device failed: {e}");
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
        }
        buf.clear();
        // Read at the reserved headroom and leave the tailroom free for the
        // ESP trailer and ICV.
        let room = buf
            .spare_mut()
            .len()
            .saturating_sub(PacketBuf::DEFAULT_TAILROOM);
        let n = match tun.recv(&mut buf.spare_mut()[..room]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                if let Some(n) = log.allow() {
                    debug!(suppressed = n, "TUN read failed: {e}");
                }
                continue;
            }
        };
        if buf.commit(n).is_err() {
            continue;
        }
        match worker.encapsulate(&mut buf) {
            Encap::Send { local, remote } => {
                if let Err(e) = socks.send(buf.as_slice(), local.ip(), remote)
                    && let Some(n) = log.allow()
                {
                    debug!(to = %remote, suppressed = n, "ESP send failed: {e}");
                }
            }
            Encap::NoPolicy => {
                drops.no_policy.fetch_add(1, Ordering::Relaxed);
            }
            Encap::Drop(why) => {
                match why {
                    EncapDrop::NoSa => {
                        drops.no_sa.fetch_add(1, Ordering::Relaxed);
                    }
                    EncapDrop::NoUdpEncap => {
                        drops.no_udp_encap.fetch_add(1, Ordering::Relaxed);
                    }
                    EncapDrop::Esp(r) => drops.encap.bump(r),
                }
                if let Some(n) = log.allow() {
                    debug!(suppressed = n, "outbound packet dropped: {}", why.name());
                }
            }
        }
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
}
