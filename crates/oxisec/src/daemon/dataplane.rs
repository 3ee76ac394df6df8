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
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use oxisec_esp::PacketBuf;
use oxisec_ike::{Datagram, SaCommand};
use oxisec_wire::esp::{Udp4500, classify_udp4500};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::esp::{Decap, Encap, Tables};
use super::udp::{PortSockets, UdpSock};
use crate::status::Traffic;

/// TUN transmit queue (packets the kernel hands us) length.
const TX_QUEUE_LEN: u32 = 2000;

/// Largest datagram we read: a full-size UDP payload.
const RECV_BUF: usize = 65536;

/// Counters of things dropped outside any SA (for logs and debugging).
#[derive(Debug, Default)]
pub struct DropCounters {
    pub invalid_4500: AtomicU64,
    pub ike_queue_full: AtomicU64,
    pub no_policy: AtomicU64,
    pub decap_failed: AtomicU64,
    pub encap_failed: AtomicU64,
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
    /// messages from port 4500 go to `ike_tx`.
    pub fn start(
        tun_name: &str,
        mtu: u16,
        sock4500: Arc<PortSockets>,
        ike_tx: mpsc::Sender<Datagram>,
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
        let mut threads = Vec::new();

        for v6 in [false, true] {
            let s = Arc::clone(&sock4500);
            if v6 && s.v6.is_none() {
                continue;
            }
            let (tun, tables, drops, stop, ike_tx) = (
                Arc::clone(&tun),
                Arc::clone(&tables),
                Arc::clone(&drops),
                Arc::clone(&stop),
                ike_tx.clone(),
            );
            let name = if v6 { "oxisec-udp6" } else { "oxisec-udp4" };
            threads.push(
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || {
                        let sock = if v6 { s.v6.as_ref() } else { Some(&s.v4) };
                        if let Some(sock) = sock {
                            udp_loop(sock, &tun, &tables, &drops, &stop, &ike_tx);
                        }
                    })?,
            );
        }
        {
            let (tun, tables, drops, stop, s) = (
                Arc::clone(&tun),
                Arc::clone(&tables),
                Arc::clone(&drops),
                Arc::clone(&stop),
                Arc::clone(&sock4500),
            );
            threads.push(
                std::thread::Builder::new()
                    .name("oxisec-tun".into())
                    .spawn(move || tun_loop(&tun, &tables, &drops, &stop, &s))?,
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

    /// Non-zero drop counts by reason, for `oxisec status`.
    pub fn drops(&self) -> std::collections::BTreeMap<String, u64> {
        let d = &self.drops;
        [
            ("invalid on UDP 4500", &d.invalid_4500),
            ("IKE queue full", &d.ike_queue_full),
            ("no policy", &d.no_policy),
            ("ESP decapsulation", &d.decap_failed),
            ("ESP encapsulation", &d.encap_failed),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.load(Ordering::Relaxed)))
        .filter(|(_, v)| *v > 0)
        .collect()
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

fn udp_loop(
    sock: &UdpSock,
    tun: &tun_rs::SyncDevice,
    tables: &Tables,
    drops: &DropCounters,
    stop: &AtomicBool,
    ike_tx: &mpsc::Sender<Datagram>,
) {
    let mut worker = tables.worker();
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
        match worker.decapsulate(&mut buf) {
            Decap::Deliver => {
                if let Err(e) = tun.send(buf.as_slice()) {
                    debug!("TUN write failed: {e}");
                }
            }
            Decap::Drop(why) => {
                drops.decap_failed.fetch_add(1, Ordering::Relaxed);
                if !why.is_silent() {
                    debug!(from = %r.remote, "ESP packet dropped: {why}");
                }
            }
        }
    }
}

fn tun_loop(
    tun: &tun_rs::SyncDevice,
    tables: &Tables,
    drops: &DropCounters,
    stop: &AtomicBool,
    socks: &PortSockets,
) {
    let mut worker = tables.worker();
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
                debug!("TUN read failed: {e}");
                continue;
            }
        };
        if buf.commit(n).is_err() {
            continue;
        }
        match worker.encapsulate(&mut buf) {
            Encap::Send { local, remote } => {
                if let Err(e) = socks.send(buf.as_slice(), local.ip(), remote) {
                    debug!(to = %remote, "ESP send failed: {e}");
                }
            }
            Encap::NoPolicy => {
                drops.no_policy.fetch_add(1, Ordering::Relaxed);
            }
            Encap::Drop(why) => {
                drops.encap_failed.fetch_add(1, Ordering::Relaxed);
                debug!("outbound packet dropped: {why}");
            }
        }
    }
}
