//! The daemon driver: all I/O around the sans-IO IKE engine.
//!
//! One tokio task owns the [`Engine`] and feeds it from UDP 500 (IPv4 and
//! IPv6), from a channel carrying IKE messages that the UDP 4500 threads
//! found behind the non-ESP marker, from a channel of [`DataplaneEvent`]s
//! (volume limits crossed, inbound activity, ESP for unknown SPIs), from the
//! control socket and from a timer set to [`Engine::poll_timeout`]. After every input it drains the
//! engine: SA commands to the data plane (and routes), datagrams to the
//! sockets, events to the log and to waiting control clients.
pub mod dataplane;
pub mod dns;
mod esp;
pub mod inbound;
pub mod leases;
pub mod radius;
pub mod rawesp;
pub mod routes;
pub mod shunts;
pub mod transport;
pub mod udp;
pub mod waiters;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxisec_crypto::SystemRng;
use oxisec_ike::{
    ChildMode, Command, Config, Datagram, DataplaneEvent, Engine, Event, IkeId, SaCommand,
    StartAction, Transmit,
};
use oxisec_wire::esp::NON_ESP_MARKER;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::config::Loaded;
use crate::control::{self, Request, Response};
use crate::status::{self, StatusReport};
use dataplane::DataPlane;
use routes::RouteOp;
use udp::{AsyncUdp, PortSockets, UdpSock};
use waiters::{Goal, Waiters};

/// How long shutdown waits for the peers to confirm our deletes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Upper bound for a control client's wait.
const MAX_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Io(String),
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> DaemonError + '_ {
    move |e| DaemonError::Io(format!("{what}: {e}"))
}

/// Runs the daemon until SIGINT/SIGTERM. `socket` overrides the configured
/// control socket path.
pub fn run(loaded: Loaded, socket: Option<PathBuf>) -> Result<(), DaemonError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("tokio runtime"))?;
    rt.block_on(run_async(loaded, socket))
}

/// The UDP 500 sockets, driven by tokio.
struct Ike500 {
    v4: AsyncUdp,
    v6: Option<AsyncUdp>,
}

impl Ike500 {
    fn bind() -> io::Result<Ike500> {
        let s = PortSockets::bind(500, true)?;
        Ok(Ike500 {
            v4: s.v4.into_tokio()?,
            v6: s.v6.map(UdpSock::into_tokio).transpose()?,
        })
    }

    fn send(&self, t: &Transmit) -> io::Result<usize> {
        let s = if t.remote.is_ipv4() {
            &self.v4
        } else {
            self.v6
                .as_ref()
                .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no IPv6 socket"))?
        };
        s.send(&t.data, t.local.ip(), t.remote)
    }
}

async fn recv_on(sock: Option<&AsyncUdp>, buf: &mut [u8]) -> io::Result<Datagram> {
    let Some(sock) = sock else {
        return std::future::pending().await;
    };
    let r = sock.recv(buf).await?;
    Ok(Datagram {
        local: r.local,
        remote: r.remote,
        data: buf[..r.len.min(buf.len())].to_vec(),
    })
}

/// A control request with the channel its answers go to.
type CtlMsg = (Request, mpsc::UnboundedSender<Response>);

/// Everything the engine task owns.
struct Daemon {
    engine: Engine,
    config: Config,
    dp: DataPlane,
    ike500: Ike500,
    routes: mpsc::UnboundedSender<RouteOp>,
    /// Routes and rules of transport-mode peers (see [`transport`]).
    transport: mpsc::UnboundedSender<transport::TransportOp>,
    waiters: Waiters<mpsc::UnboundedSender<Response>>,
    /// Connection of each IKE SA we heard of (from IkeUp), for events that
    /// only carry the IKE id.
    ike_conn: HashMap<IkeId, String>,
    started: Instant,
    /// Road warrior: DNS servers received with a virtual IP.
    dns: dns::Dns,
    /// Gateway with pools: where leases are kept, and whether they changed
    /// since they were last written.
    leases_path: Option<PathBuf>,
    leases_dirty: bool,
    /// Gateway: EAP relayed to the RADIUS servers.
    radius: radius::Relay,
    /// Children started by traffic; the data plane reports by index.
    traps: Vec<crate::config::Trap>,
    /// The inbound cleartext filter (see [`inbound`]).
    inbound: inbound::Inbound,
}

async fn run_async(mut loaded: Loaded, socket: Option<PathBuf>) -> Result<(), DaemonError> {
    let socket_path = socket.unwrap_or_else(|| loaded.daemon.socket.clone());
    let ike500 = Ike500::bind().map_err(io_err("binding the IKE port"))?;
    let sock4500 =
        Arc::new(PortSockets::bind(4500, false).map_err(io_err("binding the NAT-T port"))?);
    info!(
        "listening on UDP 500 and 4500 (IPv4{})",
        if ike500.v6.is_some() {
            " and IPv6"
        } else {
            " only"
        }
    );
    let (ike_tx, mut ike_rx) = mpsc::channel::<Datagram>(1024);
    // Unbounded: its producers are once-per-SA (limits) or rate-limited
    // (activity, unknown SPIs), and a lost expiry would never be repeated.
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<DataplaneEvent>();
    let dp = DataPlane::start(
        &loaded.daemon.tun,
        loaded.daemon.mtu,
        sock4500,
        // Raw ESP sockets only when some connection may go without UDP.
        loaded.ike.connections.iter().any(|c| !c.force_encap),
        ike_tx,
        ev_tx,
    )
    .map_err(|e| DaemonError::Io(e.to_string()))?;
    if !dp.raw_esp() {
        // Without raw sockets an SA without UDP could not be carried: have
        // the engine ask for UDP on every connection (strongSwan's encap).
        for c in &mut loaded.ike.connections {
            if !c.force_encap {
                warn!(connection = %c.name, "no raw ESP socket: ESP in UDP 4500 even without NAT");
                Arc::make_mut(c).force_encap = true;
            }
        }
    }
    let route_tx = match routes::start(dp.tun_name()).await {
        Ok(tx) => tx,
        Err(e) => {
            dp.shutdown();
            return Err(DaemonError::Io(format!("routing netlink: {e}")));
        }
    };
    let transport_tx = match transport::start(dp.tun_index()).await {
        Ok(tx) => tx,
        Err(e) => {
            dp.shutdown();
            return Err(DaemonError::Io(format!("routing netlink: {e}")));
        }
    };
    dp.set_mtu_policy(loaded.daemon.path_mtu, loaded.daemon.mss_clamp);
    // Shunts before any tunnel route: the pass table copies the routes
    // the host has without the tunnel.
    let shunts = match shunt_policies(&dp, &loaded.daemon.shunts).await {
        Ok(s) => s,
        Err(e) => {
            dp.shutdown();
            return Err(DaemonError::Io(format!("shunts: {e}")));
        }
    };
    // Before any SA: with inbound_policy = "drop" no child may run without
    // the filter, so a filter that cannot be set up stops the start.
    let inbound = match inbound::Inbound::start(
        loaded.daemon.inbound_policy,
        dp.tun_name(),
        &loaded.daemon.shunts,
    ) {
        Ok(i) => i,
        Err(e) => {
            shunts.remove_all().await;
            dp.shutdown();
            return Err(DaemonError::Io(format!(
                "inbound filter (inbound_policy = \"drop\"): {e}; install nftables, or set [daemon] inbound_policy = \"off\" to run without it"
            )));
        }
    };
    let listener = match control::bind(&socket_path) {
        Ok(l) => l,
        Err(e) => {
            dp.shutdown();
            return Err(DaemonError::Io(format!(
                "control socket {}: {e}",
                socket_path.display()
            )));
        }
    };
    info!("control socket {}", socket_path.display());
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<CtlMsg>(64);
    let accept_task = tokio::spawn(accept_loop(listener, ctl_tx));
    let (radius_relay, mut radius_rx) = radius::Relay::new(loaded.radius.clone());

    let mut d = Daemon {
        engine: Engine::new(loaded.ike.clone(), Box::new(SystemRng)),
        config: loaded.ike,
        dp,
        ike500,
        routes: route_tx,
        transport: transport_tx,
        waiters: Waiters::default(),
        ike_conn: HashMap::new(),
        started: Instant::now(),
        dns: dns::Dns::new(
            loaded.daemon.dns,
            &loaded.daemon.resolv_conf,
            &loaded.daemon.state_dir,
            &loaded.daemon.tun,
        ),
        leases_path: None,
        leases_dirty: false,
        radius: radius_relay,
        traps: loaded.daemon.traps.clone(),
        inbound,
    };
    // Certificates are valid in wall-clock time, which the engine only
    // knows from us; refreshed on every loop turn to follow clock steps.
    d.engine
        .set_wall_clock(Instant::now(), std::time::SystemTime::now());
    loaded.crl_cache.prefetch(&d.config);
    if let Err(e) = loaded.crl_cache.start() {
        warn!("cannot start the CRL fetcher: {e}; only CRL files are used");
    }
    d.restore_leases(&loaded.daemon.state_dir);
    d.pin_kill_switch_routes(&loaded.daemon.kill_switch);
    let (acq_tx, mut acq_rx) = mpsc::unbounded_channel::<usize>();
    d.install_traps(acq_tx, loaded.daemon.trap_queue);

    // start_action = "start": the engine picks the first such child.
    let now = Instant::now();
    for c in d.config.connections.clone() {
        if c.children
            .iter()
            .any(|ch| ch.start_action == StartAction::Start)
        {
            info!("starting connection {}", c.name);
            d.engine.handle_command(
                now,
                Command::Initiate {
                    connection: c.name.clone(),
                    child: None,
                },
            );
        }
    }
    d.drain();

    let mut sigint = signal(SignalKind::interrupt()).map_err(io_err("SIGINT handler"))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(io_err("SIGTERM handler"))?;
    let mut buf4 = vec![0u8; 65536];
    let mut buf6 = vec![0u8; 65536];
    loop {
        d.engine
            .set_wall_clock(Instant::now(), std::time::SystemTime::now());
        let deadline = [d.engine.poll_timeout(), d.waiters.next_deadline()]
            .into_iter()
            .flatten()
            .min();
        let sleep = sleep_until(deadline);
        tokio::select! {
            _ = sigint.recv() => { info!("SIGINT: shutting down"); break; }
            _ = sigterm.recv() => { info!("SIGTERM: shutting down"); break; }
            r = recv_on(Some(&d.ike500.v4), &mut buf4) => d.on_udp500(r),
            r = recv_on(d.ike500.v6.as_ref(), &mut buf6) => d.on_udp500(r),
            Some(dg) = ike_rx.recv() => {
                d.engine.handle_datagram(Instant::now(), dg);
            }
            Some(ev) = ev_rx.recv() => d.on_dataplane(ev),
            Some(i) = acq_rx.recv() => d.on_acquire(i),
            Some((req, reply)) = ctl_rx.recv() => d.on_request(req, reply),
            Some(done) = radius_rx.recv() => {
                let (ike, answer) = d.radius.finished(done);
                if !d.engine.eap_relay_answer(Instant::now(), ike, answer) {
                    debug!(ike = ike.0, "RADIUS answer for an IKE SA that no longer waits for one");
                    d.radius.forget(ike);
                }
            }
            _ = sleep => {
                let now = Instant::now();
                d.engine.handle_timeout(now);
                d.waiters.on_tick(now);
            }
        }
        d.drain();
    }

    // Shutdown: delete every IKE SA, give the peers a moment to confirm.
    accept_task.abort();
    d.waiters.fail_all("the daemon is shutting down");
    let now = Instant::now();
    let conns: HashSet<String> = d
        .engine
        .status()
        .into_iter()
        .map(|s| s.connection)
        .collect();
    if !conns.is_empty() {
        info!("deleting {} IKE SA(s)", d.engine.ike_sa_count());
    }
    for c in conns {
        d.engine
            .handle_command(now, Command::TerminateIke { connection: c });
    }
    d.drain();
    let grace_end = now + SHUTDOWN_GRACE;
    while d.engine.ike_sa_count() > 0 && Instant::now() < grace_end {
        let deadline = d
            .engine
            .poll_timeout()
            .map_or(grace_end, |t| t.min(grace_end));
        tokio::select! {
            r = recv_on(Some(&d.ike500.v4), &mut buf4) => d.on_udp500(r),
            r = recv_on(d.ike500.v6.as_ref(), &mut buf6) => d.on_udp500(r),
            Some(dg) = ike_rx.recv() => d.engine.handle_datagram(Instant::now(), dg),
            Some(ev) = ev_rx.recv() => d.on_dataplane(ev),
            _ = sleep_until(Some(deadline)) => d.engine.handle_timeout(Instant::now()),
            _ = sigint.recv() => break,
        }
        d.drain();
    }
    if d.engine.ike_sa_count() > 0 {
        warn!(
            "{} IKE SA(s) not confirmed deleted within {:?}; leaving anyway",
            d.engine.ike_sa_count(),
            SHUTDOWN_GRACE
        );
    }
    d.dns.restore();
    d.save_leases();
    let (ack_tx, ack_rx) = oneshot::channel();
    if d.routes.send(RouteOp::RemoveAll(ack_tx)).is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(2), ack_rx).await;
    }
    let (ack_tx, ack_rx) = oneshot::channel();
    if d.transport
        .send(transport::TransportOp::RemoveAll(ack_tx))
        .is_ok()
    {
        let _ = tokio::time::timeout(Duration::from_secs(2), ack_rx).await;
    }
    shunts.remove_all().await;
    d.inbound.stop();
    let Daemon { dp, .. } = d;
    let _ = tokio::task::spawn_blocking(move || dp.shutdown()).await;
    remove_socket(&socket_path);
    info!("stopped");
    Ok(())
}

/// Puts the shunts' BYPASS/DISCARD entries at the head of the SPD, then
/// the routing rules that keep pass traffic out of the TUN device and send
/// drop traffic into it (see [`shunts`]).
async fn shunt_policies(
    dp: &DataPlane,
    shunts: &[crate::config::Shunt],
) -> Result<shunts::Shunts, String> {
    dp.set_shunts(esp::shunt_entries(shunts)?);
    let s = shunts::Shunts::new(dp.tun_index())
        .await
        .map_err(|e| format!("routing netlink: {e}"))?;
    s.install(shunts).await;
    Ok(s)
}

fn sleep_until(deadline: Option<Instant>) -> tokio::time::Sleep {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)),
        None => tokio::time::sleep(Duration::from_secs(3600)),
    }
}

fn remove_socket(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => warn!("cannot remove {}: {e}", path.display()),
    }
}

impl Daemon {
    /// What the packet threads saw; the engine rekeys, expires, notes the
    /// peer alive or answers INVALID_SPI.
    fn on_dataplane(&mut self, ev: DataplaneEvent) {
        match &ev {
            DataplaneEvent::SoftExpired { spi, inbound } => debug!(
                spi = format_args!("{spi:08x}"),
                inbound, "SA reached its soft volume limit"
            ),
            DataplaneEvent::HardExpired { spi, inbound } => debug!(
                spi = format_args!("{spi:08x}"),
                inbound, "SA reached its hard volume limit"
            ),
            DataplaneEvent::UnknownSpi { spi, remote, .. } => debug!(
                spi = format_args!("{spi:08x}"),
                peer = %remote,
                "ESP for an unknown SPI"
            ),
            DataplaneEvent::InboundActivity { .. } => {}
        }
        self.engine.handle_dataplane(Instant::now(), ev);
    }

    fn on_udp500(&mut self, r: io::Result<Datagram>) {
        match r {
            Ok(dg) => self.engine.handle_datagram(Instant::now(), dg),
            Err(e) => {
                warn!("UDP 500: receive failed: {e}");
            }
        }
    }

    /// Empties every engine output queue. SA commands first: an inbound SA
    /// must be in place before the message that lets the peer use it leaves.
    fn drain(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(cmd) = self.engine.poll_sa_command() {
                self.apply(cmd);
                progressed = true;
            }
            while let Some(t) = self.engine.poll_transmit() {
                self.transmit(&t);
                progressed = true;
            }
            while let Some(ev) = self.engine.poll_event() {
                self.on_event(ev);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        if self.leases_dirty {
            self.save_leases();
        }
    }

    /// Kill switch: the remote selectors of these connections are routed
    /// into the TUN device for as long as the daemon runs, under a route
    /// owner of their own (ids from the top of the range, never an engine
    /// CHILD_SA), so they stay when the tunnel goes down; without an SA the
    /// data plane drops what arrives there (counted as "no policy").
    fn pin_kill_switch_routes(&mut self, names: &[String]) {
        for (i, name) in names.iter().enumerate() {
            let Some(c) = self.config.connections.iter().find(|c| &c.name == name) else {
                continue;
            };
            let Some(&peer) = c.remote_addrs.first() else {
                continue;
            };
            let remote_ts: Vec<_> = c
                .children
                .iter()
                .flat_map(|ch| ch.remote_ts.iter().copied())
                .collect();
            info!("kill switch for {name}: its traffic is dropped while the tunnel is down");
            let _ = self.routes.send(RouteOp::Add {
                child: oxisec_ike::ChildId(u64::MAX - i as u64),
                local_ts: Vec::new(),
                remote_ts,
                peer,
                mtu: None,
            });
        }
    }

    /// Traps: each trap child's remote selectors are routed into the TUN
    /// device from the start (route owner `TRAP_BASE + i`, never an engine
    /// CHILD_SA, so the routes outlive every SA of the child), and a trap
    /// entry at the tail of the SPD catches what no SA takes.
    fn install_traps(&mut self, acquire: mpsc::UnboundedSender<usize>, queue_len: usize) {
        let mut sets = Vec::new();
        for (i, t) in self.traps.iter().enumerate().take(esp::MAX_TRAPS) {
            match (esp::selectors(&t.local_ts), esp::selectors(&t.remote_ts)) {
                (Ok(l), Ok(r)) => sets.push((l, r)),
                (Err(e), _) | (_, Err(e)) => {
                    warn!("trap {}: {e}", t.child);
                    sets.push((Vec::new(), Vec::new()));
                    continue;
                }
            }
            info!(
                "trap for {}/{}: the first packet to {} starts it",
                t.connection,
                t.child,
                t.remote_ts
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let _ = self.routes.send(RouteOp::Add {
                child: oxisec_ike::ChildId(esp::TRAP_BASE + i as u64),
                local_ts: t.local_ts.clone(),
                remote_ts: t.remote_ts.clone(),
                peer: t.peer,
                mtu: None,
            });
        }
        if !sets.is_empty() {
            self.dp.set_traps(sets, queue_len, acquire);
        }
    }

    /// A packet hit trap `i` without an SA (the data plane sends one report
    /// per trap every few seconds at most): initiate its child, unless an
    /// SA of it exists or its connection's IKE SA is still being set up.
    /// Meanwhile packets are held (up to `[daemon] trap_queue` per trap,
    /// sent when the SA is installed) or dropped and counted
    /// (`out: trap_no_sa`).
    fn on_acquire(&mut self, i: usize) {
        let Some(t) = self.traps.get(i) else {
            return;
        };
        let busy = self.engine.status().iter().any(|sa| {
            sa.children.iter().any(|c| c.name == t.child)
                || (sa.connection == t.connection && sa.established.is_none())
        });
        if busy {
            debug!("acquire for {}: already being set up", t.child);
            return;
        }
        info!(
            "acquire: traffic for {}/{}, initiating",
            t.connection, t.child
        );
        self.engine.handle_command(
            Instant::now(),
            Command::Initiate {
                connection: t.connection.clone(),
                child: Some(t.child.clone()),
            },
        );
    }

    /// Gateway: puts back the leases saved by the last run, so that clients
    /// get their addresses back.
    fn restore_leases(&mut self, state_dir: &Path) {
        if self.config.pools.is_empty() {
            return;
        }
        let path = leases::path(state_dir);
        match leases::load(&path) {
            Ok(l) if l.is_empty() => {}
            Ok(l) => {
                let n = self.engine.restore_leases(&l);
                info!(
                    "{n} of {} virtual IP lease(s) restored from {}",
                    l.len(),
                    path.display()
                );
            }
            Err(e) => warn!("virtual IP leases not restored: {e}; clients may get new addresses"),
        }
        self.leases_path = Some(path);
    }

    fn pool_info(&self) -> Vec<status::PoolInfo> {
        let usage = self.engine.pool_usage();
        self.config
            .pools
            .iter()
            .map(|p| {
                let (online, offline) = usage
                    .iter()
                    .find(|(n, _, _)| *n == p.name)
                    .map_or((0, 0), |(_, on, off)| (*on, *off));
                status::PoolInfo {
                    name: p.name.clone(),
                    first: p.first,
                    last: p.last,
                    online,
                    offline,
                }
            })
            .collect()
    }

    fn save_leases(&mut self) {
        self.leases_dirty = false;
        if let Some(p) = &self.leases_path
            && let Err(e) = leases::save(p, &self.engine.leases())
        {
            warn!("cannot save the virtual IP leases to {}: {e}", p.display());
        }
    }

    /// Road warrior: the virtual IP goes on the TUN device and the DNS
    /// servers are applied; undone when the IKE SA goes.
    fn on_virtual_ip(&mut self, ev: &Event) {
        match ev {
            Event::VirtualIp {
                connection,
                addresses,
                dns,
                domains,
                ..
            } => {
                for a in addresses {
                    let _ = self.routes.send(RouteOp::AddAddress(*a));
                }
                self.dns.apply(connection, dns, domains);
            }
            Event::VirtualIpReleased {
                connection,
                addresses,
                ..
            } => {
                for a in addresses {
                    let _ = self.routes.send(RouteOp::RemoveAddress(*a));
                }
                self.dns.release(connection);
            }
            Event::LeaseChanged { .. } => self.leases_dirty = true,
            _ => {}
        }
    }

    fn apply(&mut self, cmd: SaCommand) {
        match &cmd {
            SaCommand::InstallInbound { child, sa, .. } => {
                debug!(
                    child = child.0,
                    spi = format_args!("{:08x}", sa.spi),
                    "install inbound SA"
                )
            }
            SaCommand::InstallOutbound {
                child, sa, remote, ..
            } => {
                debug!(child = child.0, spi = format_args!("{:08x}", sa.spi), peer = %remote, "install outbound SA")
            }
            SaCommand::Delete {
                child,
                spi,
                inbound,
            } => {
                debug!(
                    child = child.0,
                    spi = format_args!("{spi:08x}"),
                    inbound,
                    "delete SA"
                )
            }
            SaCommand::UpdateEndpoints {
                child, spi, remote, ..
            } => {
                debug!(child = child.0, spi = format_args!("{spi:08x}"), peer = %remote, "outbound SA follows the peer")
            }
        }
        if self.refuse_transport_through_nat(&cmd) {
            return;
        }
        if let Err(e) = self.dp.apply(&cmd) {
            // The SA stays up on the IKE side; without it in the data plane
            // a route would only black-hole traffic.
            error!("data plane rejected an SA command: {e}");
            if matches!(cmd, SaCommand::InstallOutbound { .. }) {
                return;
            }
        }
        self.transport_route(&cmd);
        self.inbound_filter(&cmd);
        let op = match cmd {
            // Transport mode: the peer's own address, routed by
            // `transport_route` (the tunnel routes always leave it out).
            SaCommand::InstallOutbound { sa, .. } if sa.mode == ChildMode::Transport => None,
            SaCommand::InstallOutbound {
                child,
                local_ts,
                remote_ts,
                remote,
                ..
            } => Some(RouteOp::Add {
                mtu: self.dp.child_mtu(child.0),
                child,
                local_ts,
                remote_ts,
                peer: remote.ip(),
            }),
            SaCommand::Delete {
                child,
                inbound: false,
                ..
            } => Some(RouteOp::Remove { child }),
            _ => None,
        };
        if let Some(op) = op {
            let _ = self.routes.send(op);
        }
    }

    /// Transport mode through a NAT is refused: the engine does not carry
    /// the original addresses (NAT-OA, RFC 3948 §5.2), and the selectors of
    /// the host behind the NAT name an address the other side never sees,
    /// so no policy could match what the hosts send. Told apart by the
    /// addresses themselves, not by the engine's NAT flags: with forced UDP
    /// encapsulation (`encap = true`) those report a NAT that is not there.
    /// The outbound SA is not installed and the child is deleted, with a
    /// line that says why.
    fn refuse_transport_through_nat(&mut self, cmd: &SaCommand) -> bool {
        let SaCommand::InstallOutbound {
            child,
            sa,
            local_ts,
            remote_ts,
            local,
            remote,
            ..
        } = cmd
        else {
            return false;
        };
        if sa.mode != ChildMode::Transport {
            return false;
        }
        let covers = |ts: &[oxisec_ike::TsRange], a: std::net::IpAddr| {
            ts.iter()
                .any(|t| t.start.is_ipv4() == a.is_ipv4() && t.start <= a && a <= t.end)
        };
        if covers(local_ts, local.ip()) && covers(remote_ts, remote.ip()) {
            return false;
        }
        let name = self
            .engine
            .status()
            .into_iter()
            .flat_map(|ike| ike.children)
            .find(|c| c.child == *child)
            .map(|c| c.name);
        let Some(name) = name else {
            return false;
        };
        error!(
            child = %name,
            local = %local.ip(),
            remote = %remote.ip(),
            "transport mode through a NAT is not supported by the daemon (no NAT-OA handling): the selectors do not name the addresses the packets carry; deleting the child, use mode = \"tunnel\""
        );
        self.engine
            .handle_command(Instant::now(), Command::TerminateChild { child: name });
        true
    }

    /// The inbound cleartext filter follows the child's outbound SA, like
    /// its routes. A child whose filter entry cannot be installed is
    /// deleted: it must not run while packets in clear could pass for its
    /// traffic (the error line says why).
    fn inbound_filter(&mut self, cmd: &SaCommand) {
        let Err(child) = self.inbound.apply(cmd) else {
            return;
        };
        let name = self
            .engine
            .status()
            .into_iter()
            .flat_map(|ike| ike.children)
            .find(|c| c.child == child)
            .map(|c| c.name);
        if let Some(name) = name {
            error!(child = %name, "deleting the CHILD_SA: its inbound cleartext filter could not be installed");
            self.engine
                .handle_command(Instant::now(), Command::TerminateChild { child: name });
        }
    }

    /// Transport mode: the peer's own address goes into the TUN device
    /// through the transport table, with our IKE address as the source.
    fn transport_route(&self, cmd: &SaCommand) {
        let op = match cmd {
            SaCommand::InstallOutbound {
                child,
                sa,
                local,
                remote,
                ..
            } if sa.mode == ChildMode::Transport => transport::TransportOp::Add {
                child: *child,
                peer: remote.ip(),
                local: local.ip(),
                mtu: self.dp.child_mtu(child.0),
            },
            SaCommand::Delete {
                child,
                inbound: false,
                ..
            } => transport::TransportOp::Remove { child: *child },
            _ => return,
        };
        let _ = self.transport.send(op);
    }

    fn transmit(&self, t: &Transmit) {
        let res = if t.local.port() == 500 {
            self.ike500.send(t)
        } else if t.non_esp_marker {
            // RFC 3948 §2.2: IKE on the NAT-T port carries the non-ESP marker.
            let mut data = Vec::with_capacity(NON_ESP_MARKER.len() + t.data.len());
            data.extend_from_slice(&NON_ESP_MARKER);
            data.extend_from_slice(&t.data);
            self.dp.sock4500().send(&data, t.local.ip(), t.remote)
        } else {
            // A NAT keepalive (RFC 3948 §2.3) goes out as it is.
            self.dp.sock4500().send(&t.data, t.local.ip(), t.remote)
        };
        if let Err(e) = res {
            warn!(
                "cannot send IKE message from {} to {}: {e}",
                t.local, t.remote
            );
        }
    }

    fn on_event(&mut self, ev: Event) {
        if let Event::IkeUp {
            ike, connection, ..
        } = &ev
        {
            self.ike_conn.insert(*ike, connection.clone());
        }
        let engine = &self.engine;
        let ike_conn = &self.ike_conn;
        let conn_of = |ike: IkeId| -> Option<String> {
            ike_conn.get(&ike).cloned().or_else(|| {
                engine
                    .status()
                    .into_iter()
                    .find(|s| s.ike == ike)
                    .map(|s| s.connection)
            })
        };
        // The engine has already logged this at info/warn with more detail
        // (identities, algorithms, selectors) when it emitted the event;
        // repeating it at info gave the operator every outcome twice (an
        // authentication failure four times). The daemon's line stays for
        // debugging the event flow to control clients.
        debug!("event: {}", waiters::describe(&ev, &conn_of));
        self.waiters.on_event(&ev, &conn_of);
        self.on_virtual_ip(&ev);
        self.radius.on_event(&ev);
        if let Event::IkeDown { ike, .. } = &ev {
            self.ike_conn.remove(ike);
        }
    }

    fn status_report(&self) -> StatusReport {
        let now = Instant::now();
        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            uptime_secs: now.saturating_duration_since(self.started).as_secs(),
            dataplane: self.dp.describe(),
            drops: {
                let mut d = self.dp.drops();
                if let Some(n) = self.inbound.drops().filter(|n| *n > 0) {
                    d.insert(inbound::DROP_REASON.to_string(), n);
                }
                d
            },
            connections: status::connections(&self.config),
            ike_sas: status::ike_sas(&self.engine.status(), now, &|spi, inbound| {
                self.dp.counters(spi, inbound)
            }),
            pools: self.pool_info(),
            ike_counters: status::ike_counters(&self.engine.stats()),
        }
    }

    fn on_request(&mut self, req: Request, reply: mpsc::UnboundedSender<Response>) {
        let now = Instant::now();
        debug!(?req, "control request");
        match req {
            Request::Status => {
                let _ = reply.send(Response::Status(self.status_report()));
            }
            Request::Initiate {
                connection,
                child,
                timeout_ms,
            } => self.initiate(now, connection, child, timeout_ms, reply),
            Request::Terminate {
                connection,
                child,
                timeout_ms,
            } => self.terminate(now, connection, child, timeout_ms, reply),
            Request::Rekey {
                connection,
                child,
                timeout_ms,
            } => self.rekey(now, connection, child, timeout_ms, reply),
        }
    }

    fn known_connections(&self) -> String {
        let names: Vec<&str> = self
            .config
            .connections
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        if names.is_empty() {
            "none configured".to_string()
        } else {
            format!("configured: {}", names.join(", "))
        }
    }

    fn initiate(
        &mut self,
        now: Instant,
        connection: String,
        child: Option<String>,
        timeout_ms: u64,
        reply: mpsc::UnboundedSender<Response>,
    ) {
        let Some(conn) = self
            .config
            .connections
            .iter()
            .find(|c| c.name == connection)
            .cloned()
        else {
            let _ = reply.send(Response::error(format!(
                "no connection named {connection:?} ({})",
                self.known_connections()
            )));
            return;
        };
        if let Some(c) = &child
            && !conn.children.iter().any(|ch| &ch.name == c)
        {
            let names: Vec<&str> = conn.children.iter().map(|c| c.name.as_str()).collect();
            let _ = reply.send(Response::error(format!(
                "connection {connection} has no child {c:?} (children: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )));
            return;
        }
        if conn.remote_addrs.is_empty() {
            let _ = reply.send(Response::error(format!(
                "connection {connection} has no remote_addrs: it only responds"
            )));
            return;
        }
        let existing: Vec<_> = self
            .engine
            .status()
            .into_iter()
            .filter(|s| s.connection == connection)
            .collect();
        let timeout = Duration::from_millis(timeout_ms).min(MAX_WAIT);
        let ike_only = conn.children.is_empty();
        if let Some(up) = existing.iter().find(|s| s.state == "ESTABLISHED") {
            let installed = up
                .children
                .iter()
                .find(|c| c.state == "INSTALLED" && child.as_ref().is_none_or(|n| &c.name == n));
            let _ = match (installed, ike_only) {
                (Some(c), _) => reply.send(Response::ok(format!(
                    "CHILD_SA {connection}/{} is already established (SPIs {:08x} in, {:08x} out)",
                    c.name, c.spi_in, c.spi_out
                ))),
                (None, true) => reply.send(Response::ok(format!(
                    "IKE SA {connection} is already established"
                ))),
                (None, false) => reply.send(Response::error(format!(
                    "IKE SA {connection} is up but without CHILD_SA {}; adding a CHILD_SA to an existing IKE SA (CREATE_CHILD_SA) is not supported yet: `oxisec terminate {connection}` first",
                    child.as_deref().unwrap_or("(any)")
                ))),
            };
            return;
        }
        if let Some(busy) = existing.iter().find(|s| s.state != "CONNECTING") {
            let _ = reply.send(Response::error(format!(
                "IKE SA {connection} is {}; try again when it is gone",
                busy.state
            )));
            return;
        }
        // None exists, or one is connecting (then we wait for it).
        let connecting = !existing.is_empty();
        self.waiters.add(
            Goal::Initiate {
                connection: connection.clone(),
                child: child.clone(),
                old_ikes: HashSet::new(),
                ike_only,
            },
            reply.clone(),
            now,
            timeout,
        );
        if connecting {
            let _ = reply.send(Response::progress(format!(
                "IKE SA {connection} is already being negotiated; waiting for it"
            )));
        } else {
            let _ = reply.send(Response::progress(format!(
                "initiating {connection} to {}",
                conn.remote_addrs[0]
            )));
            self.engine
                .handle_command(now, Command::Initiate { connection, child });
        }
    }

    fn terminate(
        &mut self,
        now: Instant,
        connection: Option<String>,
        child: Option<String>,
        timeout_ms: u64,
        reply: mpsc::UnboundedSender<Response>,
    ) {
        let timeout = Duration::from_millis(timeout_ms).min(MAX_WAIT);
        if let Some(c) = &connection
            && !self.config.connections.iter().any(|x| &x.name == c)
        {
            let _ = reply.send(Response::error(format!(
                "no connection named {c:?} ({})",
                self.known_connections()
            )));
            return;
        }
        let sas = self.engine.status();
        match (connection, child) {
            (None, None) => {
                let _ = reply.send(Response::error("name a connection or a child"));
            }
            (Some(connection), None) => {
                let ids: HashSet<IkeId> = sas
                    .iter()
                    .filter(|s| s.connection == connection)
                    .map(|s| s.ike)
                    .collect();
                if ids.is_empty() {
                    let _ = reply.send(Response::error(format!("no IKE SA for {connection}")));
                    return;
                }
                let _ = reply.send(Response::progress(format!(
                    "deleting {} IKE SA(s) of {connection}",
                    ids.len()
                )));
                self.waiters.add(
                    Goal::TerminateIke {
                        connection: connection.clone(),
                        remaining: ids,
                    },
                    reply,
                    now,
                    timeout,
                );
                self.engine
                    .handle_command(now, Command::TerminateIke { connection });
            }
            (connection, Some(child)) => {
                let ids: HashSet<_> = sas
                    .iter()
                    .filter(|s| connection.as_ref().is_none_or(|c| &s.connection == c))
                    .flat_map(|s| s.children.iter())
                    .filter(|c| c.name == child)
                    .map(|c| c.child)
                    .collect();
                if ids.is_empty() {
                    let _ = reply.send(Response::error(format!("no CHILD_SA named {child}")));
                    return;
                }
                self.waiters.add(
                    Goal::TerminateChild {
                        child: child.clone(),
                        remaining: ids,
                    },
                    reply,
                    now,
                    timeout,
                );
                self.engine
                    .handle_command(now, Command::TerminateChild { child });
            }
        }
    }
}

impl Daemon {
    /// `oxisec rekey`: queues the rekey in the engine and answers once the
    /// new SAs have taken over (see [`Goal::RekeyIke`], [`Goal::RekeyChild`]).
    /// Only established IKE SAs and installed CHILD_SAs are rekeyed; one that
    /// is being rekeyed or deleted already is left alone.
    fn rekey(
        &mut self,
        now: Instant,
        connection: Option<String>,
        child: Option<String>,
        timeout_ms: u64,
        reply: mpsc::UnboundedSender<Response>,
    ) {
        let timeout = Duration::from_millis(timeout_ms).min(MAX_WAIT);
        if let Some(c) = &connection
            && !self.config.connections.iter().any(|x| &x.name == c)
        {
            let _ = reply.send(Response::error(format!(
                "no connection named {c:?} ({})",
                self.known_connections()
            )));
            return;
        }
        let sas: Vec<_> = self
            .engine
            .status()
            .into_iter()
            .filter(|s| s.state == "ESTABLISHED")
            .collect();
        match (connection, child) {
            (None, None) => {
                let _ = reply.send(Response::error("name a connection or a child"));
            }
            (Some(connection), None) => {
                let ids: HashSet<IkeId> = sas
                    .iter()
                    .filter(|s| s.connection == connection)
                    .map(|s| s.ike)
                    .collect();
                if ids.is_empty() {
                    let _ = reply.send(Response::error(format!(
                        "no established IKE SA for {connection}"
                    )));
                    return;
                }
                let _ = reply.send(Response::progress(format!(
                    "rekeying {} IKE SA(s) of {connection}",
                    ids.len()
                )));
                self.waiters.add(
                    Goal::RekeyIke {
                        connection: connection.clone(),
                        remaining: ids,
                    },
                    reply,
                    now,
                    timeout,
                );
                self.engine
                    .handle_command(now, Command::RekeyIke { connection });
            }
            (connection, Some(child)) => {
                let old: HashMap<_, _> = sas
                    .iter()
                    .filter(|s| connection.as_ref().is_none_or(|c| &s.connection == c))
                    .flat_map(|s| s.children.iter().map(move |c| (s.ike, c)))
                    .filter(|(_, c)| c.name == child && c.state == "INSTALLED")
                    .map(|(ike, c)| (c.child, ike))
                    .collect();
                if old.is_empty() {
                    let _ = reply.send(Response::error(format!(
                        "no installed CHILD_SA named {child}"
                    )));
                    return;
                }
                let _ = reply.send(Response::progress(format!(
                    "rekeying {} CHILD_SA(s) named {child}",
                    old.len()
                )));
                self.waiters.add(
                    Goal::RekeyChild {
                        child: child.clone(),
                        remaining: old,
                        new_spis: None,
                    },
                    reply,
                    now,
                    timeout,
                );
                self.engine
                    .handle_command(now, Command::RekeyChild { child });
            }
        }
    }
}

/// Accepts control connections; each one is served by its own task.
async fn accept_loop(listener: tokio::net::UnixListener, ctl_tx: mpsc::Sender<CtlMsg>) {
    let own_uid = nix::unistd::geteuid().as_raw();
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                warn!("control socket: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let uid = match stream.peer_cred() {
            Ok(c) => c.uid(),
            Err(e) => {
                warn!("control socket: no peer credentials: {e}");
                continue;
            }
        };
        if !control::authorized(uid, own_uid) {
            warn!(
                uid,
                "control socket: refused a client that is neither root nor the daemon's user"
            );
            let mut s = stream;
            let _ = s
                .write_all(control::encode(&Response::error("permission denied")).as_bytes())
                .await;
            continue;
        }
        tokio::spawn(serve_client(stream, ctl_tx.clone()));
    }
}

async fn serve_client(stream: UnixStream, ctl_tx: mpsc::Sender<CtlMsg>) {
    let (r, mut w) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(r).take(control::MAX_REQUEST as u64);
    let mut line = String::new();
    let read = tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line)).await;
    let resp_line = |r: &Response| control::encode(r);
    let req = match read {
        Ok(Ok(n)) if n > 0 => match control::decode_request(&line) {
            Ok(req) => req,
            Err(e) => {
                let _ = w.write_all(resp_line(&Response::error(e)).as_bytes()).await;
                return;
            }
        },
        _ => return,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    if ctl_tx.send((req, tx)).await.is_err() {
        let _ = w
            .write_all(resp_line(&Response::error("the daemon is shutting down")).as_bytes())
            .await;
        return;
    }
    while let Some(resp) = rx.recv().await {
        let last = resp.is_final();
        if w.write_all(resp_line(&resp).as_bytes()).await.is_err() || last {
            break;
        }
    }
    let _ = w.shutdown().await;
}
