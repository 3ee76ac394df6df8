//! IKEv2 lifecycle scenarios against strongSwan (issue "IKEv2 lifecycle",
//! item 9): a peer that dies without a word, NAT traversal through a real
//! NAT (with keepalives and a rebinding), and a COOKIE challenge under a
//! flood of spoofed IKE_SA_INIT requests.
//!
//! Every scenario shortens the daemons' timers (see [`FAST`]) so that it
//! runs in well under half a minute; every wait is bounded; on failure the
//! error carries the peers' log tails and the test directory is kept.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::flood::{FloodReport, ike_sa_init_flood};
use super::nat::{self, NatTopology};
use super::oxisec_peer::OxisecPeer;
use super::peer::{
    DosLimits, Dpd, DpdAction, IkeSa, Peer, PeerKind, Retransmit, Tuning, tunnel_up,
};
use super::scenario::single_pair;
use super::strongswan::StrongSwan;
use super::traffic::{self, IperfResult};
use super::{
    CONN, Error, LEFT_HOST, Netns, RIGHT_HOST, RIGHT_OUTER, Result, TestDir, Topology, wait_until,
};

/// IKE AES-GCM-128 / X25519, ESP AES-GCM-128.
pub const GCM: (&str, &str) = ("aes128gcm16-prfsha256-x25519", "aes128gcm16");

/// Retransmission schedule of these tests: 1 s, then ×1.8, three
/// retransmissions, so a request nobody answers is given up after
/// 1 + 1.8 + 3.24 + 5.83 ≈ 11.9 s (the default 4 s × 1.8, 5 tries takes 165 s).
pub const FAST_RETRANSMIT: Retransmit = Retransmit {
    timeout_secs: 1.0,
    base: 1.8,
    tries: 3,
};

/// Daemon settings of these tests: the fast retransmissions, and NAT
/// keepalives every second instead of every 20. (strongSwan sends one only
/// after that long without any outbound packet, so the interval must be
/// shorter than the liveness checks' period or it never gets a turn.)
pub const FAST: Tuning = Tuning {
    retransmit: Some(FAST_RETRANSMIT),
    keepalive_secs: Some(1),
    dos: None,
};

/// Quiet time before a liveness check.
pub const DPD_DELAY_SECS: u32 = 2;

/// The liveness check of the NAT tests' inside peer: longer than the NAT
/// keepalive interval (see [`FAST`]).
pub const NAT_DPD_DELAY_SECS: u32 = 3;

const UP_TIMEOUT: Duration = Duration::from_secs(20);
const DOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The name of oxisec's TUN device (the daemon's default).
const OXISEC_TUN: &str = "oxisec0";

/// On failure appends the peers' log tails to the error and keeps `dir`.
fn reported<T>(test: &str, dir: &TestDir, peers: &[&dyn Peer], result: Result<T>) -> Result<T> {
    result.map_err(|e| -> Error {
        dir.keep();
        let mut msg = format!("{test}: {e}");
        for p in peers {
            msg.push_str(&format!(
                "\n=== {} log (tail) ===\n{}",
                p.label(),
                p.log_tail(60)
            ));
        }
        msg.push_str(&format!("\n(files kept in {})", dir.path().display()));
        msg.into()
    })
}

/// Waits until both peers list the same single IKE SA and CHILD_SA
/// ([`single_pair`]) and returns both listings.
fn wait_pair(a: &dyn Peer, b: &dyn Peer, timeout: Duration) -> Result<(Vec<IkeSa>, Vec<IkeSa>)> {
    wait_until(
        &format!(
            "{} and {} to list one matching SA pair",
            a.label(),
            b.label()
        ),
        timeout,
        || {
            let (x, y) = (a.list_sas()?, b.list_sas()?);
            Ok(single_pair(&x, &y).ok().map(|()| (x, y)))
        },
    )
    .map_err(|e| {
        format!(
            "{e}\n{}: {:?}\n{}: {:?}",
            a.label(),
            a.list_sas(),
            b.label(),
            b.list_sas()
        )
        .into()
    })
}

/// Whether traffic from `ns` to `addr` would enter `dev`.
fn routed_via(ns: &Netns, addr: IpAddr, dev: &str) -> Result<bool> {
    let out = super::netns::run_output(
        std::process::Command::new("ip").args(["-n", ns.name(), "route", "get", &addr.to_string()]),
        super::netns::COMMAND_TIMEOUT,
    )?;
    Ok(out.status.success()
        && String::from_utf8_lossy(&out.stdout).contains(&format!("dev {dev} ")))
}

/// Lines of an oxisec log (`TIMESTAMP LEVEL target: message fields`) at
/// info level or above whose text contains `needle`.
pub fn info_lines<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|l| matches!(l.split_whitespace().nth(1), Some("INFO" | "WARN" | "ERROR")))
        .filter(|l| l.contains(needle))
        .collect()
}

/// oxisec's one line saying that the peer is dead.
pub const DEAD_PEER_LINE: &str = "peer did not answer: giving up on the IKE SA";
/// oxisec's line saying that `dpd_action = restart` initiates again.
pub const RESTART_LINE: &str = "initiating the connection again (dpd_action = restart)";

/// What the liveness scenario measured.
#[derive(Debug, Clone, Copy)]
pub struct LivenessOutcome {
    /// From the SIGKILL until oxisec logged the peer dead.
    pub detected_after: Duration,
    /// From starting the new charon until the tunnel carried pings again
    /// (`dpd_action = restart` only).
    pub restored_after: Option<Duration>,
}

/// Liveness: oxisec (left) initiates to strongSwan (right), with a
/// liveness check every [`DPD_DELAY_SECS`] of quiet and `action`. charon is
/// then killed with SIGKILL, so no DELETE is sent. oxisec must find the
/// peer dead within the delay plus its retransmission schedule, say so in
/// one log line, and:
///
/// * `Clear`: drop its IKE and CHILD SAs and the route into the tunnel, and
///   not try again;
/// * `Restart`: initiate again at once; a new charon, started after the
///   detection, gets the tunnel back without any command.
pub fn run_liveness(test: &str, action: DpdAction) -> Result<LivenessOutcome> {
    let topo = Topology::new(test)?;
    let (mut lspec, mut rspec) = topo.tunnel_specs(GCM.0, GCM.1);
    lspec.tuning = FAST;
    rspec.tuning = FAST;
    lspec.dpd = Some(Dpd {
        delay_secs: DPD_DELAY_SECS,
        action,
    });
    let ox = OxisecPeer::start(
        topo.left.clone(),
        topo.dir.sub("left")?,
        "oxisec@left".into(),
        &lspec,
    )?;
    let mut swan = StrongSwan::start(
        topo.right.clone(),
        topo.dir.sub("right")?,
        "strongswan@right".into(),
        &rspec,
    )?;
    let mut swan2: Option<StrongSwan> = None;
    let result = (|| {
        ox.initiate(CONN)?;
        let (before, _) = wait_pair(&ox, &swan, UP_TIMEOUT)?;
        traffic::ping_all(&topo.left, LEFT_HOST, RIGHT_HOST, 3)?;
        if !routed_via(&topo.left, RIGHT_HOST, OXISEC_TUN)? {
            return Err("the remote subnet is not routed into oxisec's TUN".into());
        }

        swan.kill_hard()?;
        let killed = Instant::now();
        // A liveness check starts within the delay (plus up to a second for
        // the data plane's activity report), and is given up after the
        // retransmission schedule.
        let limit = Duration::from_secs(u64::from(DPD_DELAY_SECS) + 2)
            + FAST_RETRANSMIT.give_up_after()
            + Duration::from_secs(3);
        wait_until("oxisec to find strongSwan dead", limit, || {
            Ok((!info_lines(&ox.log(), DEAD_PEER_LINE).is_empty()).then_some(()))
        })?;
        let detected_after = killed.elapsed();
        eprintln!(
            "{test}: oxisec found the peer dead {:.1} s after the SIGKILL (dpd_delay {DPD_DELAY_SECS} s, retransmissions given up after {:.1} s)",
            detected_after.as_secs_f64(),
            FAST_RETRANSMIT.give_up_after().as_secs_f64()
        );

        let restored_after = match action {
            DpdAction::Clear | DpdAction::Trap => {
                wait_until("oxisec to list no SA", DOWN_TIMEOUT, || {
                    Ok(ox.list_sas()?.is_empty().then_some(()))
                })?;
                wait_until("the route into the tunnel to go", DOWN_TIMEOUT, || {
                    Ok((!routed_via(&topo.left, RIGHT_HOST, OXISEC_TUN)?).then_some(()))
                })?;
                let p = traffic::ping(&topo.left, LEFT_HOST, RIGHT_HOST, 1)?;
                if p.received != 0 {
                    return Err("ping answered with the peer dead and the SAs cleared".into());
                }
                // `clear` does not come back: no new attempt, no SA.
                std::thread::sleep(Duration::from_secs(2));
                let sas = ox.list_sas()?;
                if !sas.is_empty() {
                    return Err(format!("SAs reappeared after clear: {sas:?}").into());
                }
                if action == DpdAction::Clear && !info_lines(&ox.log(), RESTART_LINE).is_empty() {
                    return Err("dpd_action = clear, but oxisec initiated again".into());
                }
                None
            }
            DpdAction::Restart => {
                let log = ox.log();
                let lines = info_lines(&log, RESTART_LINE);
                if lines.len() != 1 {
                    return Err(format!(
                        "expected one line saying the connection is initiated again, found {}:\n{}",
                        lines.len(),
                        lines.join("\n")
                    )
                    .into());
                }
                // The old SAs are gone at once; the new attempt may show up
                // as a CONNECTING IKE SA.
                if tunnel_up(&ox.list_sas()?, CONN) {
                    return Err("the dead peer's SAs are still listed".into());
                }
                // The peer comes back (a reboot): no command to oxisec.
                let started = Instant::now();
                let fresh = StrongSwan::start(
                    topo.right.clone(),
                    topo.dir.sub("right-restarted")?,
                    "strongswan@right (restarted)".into(),
                    &rspec,
                )?;
                let fresh = swan2.insert(fresh);
                let (after, _) = wait_pair(&ox, fresh, UP_TIMEOUT)?;
                traffic::ping_all(&topo.left, LEFT_HOST, RIGHT_HOST, 3)?;
                traffic::ping_all(&topo.right, RIGHT_HOST, LEFT_HOST, 3)?;
                let restored = started.elapsed();
                if after[0].spi_i == before[0].spi_i {
                    return Err("the tunnel came back with the old IKE SA".into());
                }
                eprintln!(
                    "{test}: tunnel back {:.1} s after the new charon started (IKE SPIs {}/{} -> {}/{})",
                    restored.as_secs_f64(),
                    before[0].spi_i,
                    before[0].spi_r,
                    after[0].spi_i,
                    after[0].spi_r
                );
                Some(restored)
            }
        };

        // Exactly one line about the dead peer, at info level or above.
        let log = ox.log();
        let dead = info_lines(&log, DEAD_PEER_LINE);
        if dead.len() != 1 {
            return Err(format!(
                "expected one log line about the dead peer, found {}:\n{}",
                dead.len(),
                dead.join("\n")
            )
            .into());
        }
        eprintln!("{test}: oxisec: {}", dead[0]);
        Ok(LivenessOutcome {
            detected_after,
            restored_after,
        })
    })();
    match &swan2 {
        Some(fresh) => reported(test, &topo.dir, &[&ox, &swan, fresh], result),
        None => reported(test, &topo.dir, &[&ox, &swan], result),
    }
}

/// What the NAT scenario measured.
#[derive(Debug, Clone, Copy)]
pub struct NatOutcome {
    pub iperf: IperfResult,
    /// NAT keepalives the inside gateway sent through the NAT.
    pub keepalives: u64,
    /// From the NAT's rebinding until pings passed again.
    pub rebind_recovery: Duration,
    /// Whether the outside peer rekeyed the CHILD_SA to follow the new
    /// mapping (strongSwan with kernel-libipsec) instead of moving it.
    pub child_rekeyed: bool,
}

/// The peer's public port as `outside` sees it, from its SA listing
/// (oxisec) or `swanctl --list-sas --raw` (strongSwan).
fn seen_peer(outside: &AnyPeer) -> Result<(IpAddr, u16)> {
    match outside {
        AnyPeer::Oxisec(o) => {
            let report = o.status()?;
            let ike = report.ike_sas.first().ok_or("oxisec lists no IKE SA")?;
            Ok((ike.remote.ip(), ike.remote.port()))
        }
        AnyPeer::StrongSwan(s) => {
            let flags = s.nat_flags()?;
            let f = flags.first().ok_or("strongSwan lists no IKE SA")?;
            Ok((f.remote_host.parse()?, f.remote_port.parse()?))
        }
    }
}

/// A peer of either make, kept concrete for what only one make offers
/// (oxisec's JSON status, strongSwan's NAT flags).
enum AnyPeer {
    Oxisec(OxisecPeer),
    StrongSwan(StrongSwan),
}

impl AnyPeer {
    fn peer(&self) -> &dyn Peer {
        match self {
            AnyPeer::Oxisec(p) => p,
            AnyPeer::StrongSwan(p) => p,
        }
    }
}

/// Starts a `kind` peer in `ns` with its files in `dir`.
fn start_peer(
    kind: PeerKind,
    ns: &std::sync::Arc<Netns>,
    dir: std::path::PathBuf,
    label: &str,
    spec: &super::TunnelSpec,
) -> Result<AnyPeer> {
    Ok(match kind {
        PeerKind::Oxisec => {
            AnyPeer::Oxisec(OxisecPeer::start(ns.clone(), dir, label.into(), spec)?)
        }
        PeerKind::StrongSwan => {
            AnyPeer::StrongSwan(StrongSwan::start(ns.clone(), dir, label.into(), spec)?)
        }
    })
}

fn in_range(port: u16, (lo, hi): (u16, u16)) -> bool {
    (lo..=hi).contains(&port)
}

/// NAT traversal: the `inside` peer sits behind the NAT of [`NatTopology`]
/// and initiates to the `outside` peer. Checks:
///
/// * both sides detected the NAT: strongSwan's `nat-local` (inside) or
///   `nat-remote` (outside); oxisec's IKE_SA_INIT debug line
///   (`nat_local=true` inside, `nat_remote=true` outside), and the outside
///   side talks to the NAT's public address on a mapped port;
/// * ping both ways and a 5 s iperf3 through the tunnel;
/// * NAT rebinding: the NAT forgets its mappings and maps to other ports;
///   traffic must get through again without a new handshake (same IKE
///   SPIs), with the outside side following the new port (the inside's
///   liveness check carries it there). oxisec outside keeps the CHILD_SA as
///   it is; strongSwan outside rekeys it (libipsec cannot move an SA);
/// * NAT keepalives (every 2 s here) from the inside cross the NAT; oxisec
///   in front of the NAT sends none.
pub fn run_nat(test: &str, inside_kind: PeerKind, outside_kind: PeerKind) -> Result<NatOutcome> {
    let topo = NatTopology::new(test)?;
    let (mut ispec, mut ospec) = topo.tunnel_specs(GCM.0, GCM.1);
    ispec.tuning = FAST;
    ospec.tuning = FAST;
    // The inside's liveness check is what tells the outside about a new
    // mapping when the NAT rebinds (the outside cannot reach the inside
    // until then).
    ispec.dpd = Some(Dpd {
        delay_secs: NAT_DPD_DELAY_SECS,
        action: DpdAction::Clear,
    });
    let inside = start_peer(
        inside_kind,
        &topo.inside,
        topo.dir.sub("inside")?,
        &format!("{}@inside", inside_kind.as_str()),
        &ispec,
    )?;
    let outside = start_peer(
        outside_kind,
        &topo.outside,
        topo.dir.sub("outside")?,
        &format!("{}@outside", outside_kind.as_str()),
        &ospec,
    )?;
    let (i, o) = (inside.peer(), outside.peer());
    let result = (|| {
        i.initiate(CONN)?;
        let established = Instant::now();
        let (before_i, _) = wait_pair(i, o, UP_TIMEOUT)?;

        // NAT detection, as each implementation reports it.
        check_nat_detected(&inside, true)?;
        check_nat_detected(&outside, false)?;
        let (ip, port) = seen_peer(&outside)?;
        if ip != nat::NAT_PUBLIC || !in_range(port, nat::FIRST_PORTS) {
            return Err(format!(
                "{} talks to {ip}:{port}, expected the NAT's {}:{:?}",
                o.label(),
                nat::NAT_PUBLIC,
                nat::FIRST_PORTS
            )
            .into());
        }
        eprintln!("{test}: {} sees its peer at {ip}:{port}", o.label());

        traffic::ping_all(&topo.inside, nat::INSIDE_HOST, nat::OUTSIDE_HOST, 3)?;
        traffic::ping_all(&topo.outside, nat::OUTSIDE_HOST, nat::INSIDE_HOST, 3)?;
        let iperf = traffic::iperf3_tcp(
            &topo.outside,
            nat::OUTSIDE_HOST,
            &topo.inside,
            nat::INSIDE_HOST,
            5,
            topo.dir.path(),
        )?;
        eprintln!(
            "{test}: {} behind the NAT -> {}: iperf3 {:.0} Mbit/s received ({} retransmits)",
            i.label(),
            o.label(),
            iperf.received_bps / 1e6,
            iperf.retransmits
        );
        if iperf.received_bps < 1e6 {
            return Err(
                format!("iperf3 through the NAT: only {} bit/s", iperf.received_bps).into(),
            );
        }

        // Rebinding: new mappings on other ports; the SAs must survive.
        topo.rebind()?;
        let rebound = Instant::now();
        wait_until(
            "pings to pass again after the NAT rebinding",
            Duration::from_secs(20),
            || {
                Ok(
                    (traffic::ping(&topo.inside, nat::INSIDE_HOST, nat::OUTSIDE_HOST, 1)?.received
                        == 1)
                        .then_some(()),
                )
            },
        )
        .map_err(|e| format!("{e}\nNAT conntrack table:\n{}", topo.conntrack_table()))?;
        let rebind_recovery = rebound.elapsed();
        traffic::ping_all(&topo.outside, nat::OUTSIDE_HOST, nat::INSIDE_HOST, 3)?;
        let (after_i, _) = wait_pair(i, o, Duration::from_secs(10))?;
        let (b, a) = (&before_i[0], &after_i[0]);
        if (a.spi_i.as_str(), a.spi_r.as_str()) != (b.spi_i.as_str(), b.spi_r.as_str()) {
            return Err(format!(
                "a new IKE SA after the NAT rebinding: IKE SPIs {}/{} -> {}/{}",
                b.spi_i, b.spi_r, a.spi_i, a.spi_r
            )
            .into());
        }
        // oxisec moves the CHILD_SA to the new port in place. strongSwan
        // with kernel-libipsec cannot update an installed SA's endpoints, so
        // as the outside peer it rekeys the CHILD_SA instead (its log:
        // "remote endpoint changed …", then "queueing CHILD_REKEY task").
        let child_rekeyed = a.children != b.children;
        if child_rekeyed && outside_kind == PeerKind::Oxisec {
            return Err(format!(
                "the CHILD_SA changed across the NAT rebinding:\nbefore {:?}\nafter  {:?}",
                b.children, a.children
            )
            .into());
        }
        let (ip2, port2) = seen_peer(&outside)?;
        if ip2 != nat::NAT_PUBLIC || !in_range(port2, nat::REBOUND_PORTS) {
            return Err(format!(
                "after the rebinding {} still talks to {ip2}:{port2}, expected a port in {:?}",
                o.label(),
                nat::REBOUND_PORTS
            )
            .into());
        }
        eprintln!(
            "{test}: NAT rebinding {ip}:{port} -> {ip2}:{port2}: traffic again after {:.1} s, same IKE SA, {}",
            rebind_recovery.as_secs_f64(),
            if child_rekeyed {
                "CHILD_SA rekeyed by strongSwan"
            } else {
                "same CHILD_SA"
            }
        );

        // Keepalives from the side behind the NAT.
        // oxisec sends them on a fixed period, strongSwan only in a quiet
        // second (the liveness checks every 3 s leave some).
        let keepalives = wait_until(
            "a NAT keepalive from the inside",
            Duration::from_secs(10),
            || {
                let n = topo.keepalives()?;
                Ok((n > 0).then_some(n))
            },
        )?;
        let from_outside = topo.keepalives_from_outside()?;
        eprintln!(
            "{test}: {keepalives} NAT keepalive(s) from {} crossed the NAT within {:.1} s of the IKE SA, {from_outside} from {}",
            i.label(),
            established.elapsed().as_secs_f64(),
            o.label()
        );
        // oxisec in front of the NAT has no mapping to keep alive.
        // (strongSwan's choice is its own; it is only reported.)
        if outside_kind == PeerKind::Oxisec && from_outside != 0 {
            return Err(format!(
                "{} sent {from_outside} NAT keepalives although it is not behind the NAT",
                o.label()
            )
            .into());
        }
        Ok(NatOutcome {
            iperf,
            keepalives,
            rebind_recovery,
            child_rekeyed,
        })
    })();
    reported(test, &topo.dir, &[i, o], result)
}

/// Checks that `peer` detected the NAT: behind it (`inside`) or in front
/// of it.
fn check_nat_detected(peer: &AnyPeer, inside: bool) -> Result<()> {
    match peer {
        AnyPeer::StrongSwan(s) => {
            let flags = s.nat_flags()?;
            let f = flags.first().ok_or("strongSwan lists no IKE SA")?;
            let ok = if inside { f.local } else { f.remote };
            if !ok {
                return Err(format!(
                    "{}: NAT not detected (want nat-{}): {f:?}",
                    s.label(),
                    if inside { "local" } else { "remote" }
                )
                .into());
            }
            eprintln!("{}: {f:?}", s.label());
        }
        AnyPeer::Oxisec(o) => {
            // The engine logs its NAT detection result at debug level:
            // "IKE_SA_INIT done … nat_remote=… nat_local=…" as initiator,
            // "answered IKE_SA_INIT … nat_remote=… nat_local=…" as responder.
            let (line, want) = if inside {
                ("IKE_SA_INIT done", "nat_local=true")
            } else {
                ("answered IKE_SA_INIT", "nat_remote=true")
            };
            let log = o.log();
            let found = log.lines().find(|l| l.contains(line));
            match found {
                Some(l) if l.contains(want) => eprintln!("{}: {l}", o.label()),
                other => {
                    return Err(format!(
                        "{}: NAT not detected (want {want}); line: {other:?}",
                        o.label()
                    )
                    .into());
                }
            }
        }
    }
    Ok(())
}

/// Spoofed sources of the cookie flood: 192.0.2.129–254, the upper half of
/// the gateways' link prefix. The responder routes that half back to the
/// left namespace, which blackholes it: the flood's answers go nowhere.
pub fn flood_sources() -> Vec<Ipv4Addr> {
    (129..=254).map(|n| Ipv4Addr::new(192, 0, 2, n)).collect()
}

/// The one spoofed source of the per-address phase (in the same routed
/// half, but not among [`flood_sources`]).
pub const SINGLE_SOURCE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 128);

const FLOOD_PREFIX: &str = "192.0.2.128/25";

/// The responder's half-open limits in the cookie test, written into its
/// configuration so that the expected counts below do not hang on
/// defaults: strongSwan's per-address limit, a cookie threshold below the
/// default 30 (fewer key exchanges for the flood), a total limit far above.
pub const COOKIE_TEST_LIMITS: DosLimits = DosLimits {
    cookie_threshold: 20,
    block_threshold: 5,
    half_open_limit: 1000,
};

/// What the cookie scenario measured.
#[derive(Debug, Clone, Copy)]
pub struct CookieOutcome {
    pub flood: FloodReport,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// COOKIE notifies oxisec sent (counted by nftables on its way out).
    pub cookies_sent: u64,
    /// IKE_SA_INIT requests that reached oxisec.
    pub requests_received: u64,
    /// IKE_SA_INIT answers with an SA payload, i.e. half-open SAs created
    /// (plus the real initiator's).
    pub sa_answers: u64,
    /// From `swanctl --initiate` until it returned with the tunnel up.
    pub legit_setup: Duration,
    /// IKE SAs oxisec listed right after the flood.
    pub ike_sas_after: usize,
}

/// nftables counters on the responder: IKE_SA_INIT requests in, answers out
/// that accept (first payload SA) and that challenge (first payload Notify,
/// type COOKIE = 16390), and requests from the real initiator that return a
/// cookie. Offsets are in bits from the UDP header: the IKE header starts
/// at 64, its next-payload byte at 64 + 16·8 = 192, its exchange type at
/// 208; a first Notify payload's type sits at 64 + (28 + 6)·8 = 336.
fn cookie_counters_script(initiator: IpAddr) -> String {
    format!(
        "table ip oxcookie {{\n\
         \x20   counter init_requests {{ }}\n\
         \x20   counter sa_answers {{ }}\n\
         \x20   counter cookies_sent {{ }}\n\
         \x20   counter cookies_returned {{ }}\n\
         \x20   chain input {{\n\
         \x20       type filter hook input priority filter; policy accept;\n\
         \x20       udp dport 500 @th,208,8 34 counter name \"init_requests\"\n\
         \x20       ip saddr {initiator} udp dport 500 @th,208,8 34 @th,192,8 41 @th,336,16 16390 counter name \"cookies_returned\"\n\
         \x20   }}\n\
         \x20   chain output {{\n\
         \x20       type filter hook output priority filter; policy accept;\n\
         \x20       udp sport 500 @th,208,8 34 @th,192,8 33 counter name \"sa_answers\"\n\
         \x20       udp sport 500 @th,208,8 34 @th,192,8 41 @th,336,16 16390 counter name \"cookies_sent\"\n\
         \x20   }}\n\
         }}\n"
    )
}

fn nft_counter(ns: &Netns, table: &str, name: &str) -> Result<u64> {
    let out = ns.exec("nft", &["list", "counter", "ip", table, name])?;
    nat::parse_nft_packets(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| format!("no packet count for counter {name}").into())
}

/// Cookie flood against oxisec (right), which responds to anyone, with the
/// half-open limits of [`COOKIE_TEST_LIMITS`]. From the left namespace:
///
/// 1. per-address limit: 20 requests from one spoofed address
///    ([`SINGLE_SOURCE`]); exactly `block_threshold` of them may create a
///    half-open SA, the rest are dropped, none is challenged yet;
/// 2. the flood: `count` requests over `duration` from 126 spoofed
///    addresses ([`flood_sources`]). Half-open SAs grow to
///    `cookie_threshold`, everything after that gets a COOKIE and leaves no
///    state. Half a second in, strongSwan (left) initiates: it gets a
///    COOKIE, returns it and must get its tunnel up while the flood runs.
///
/// Afterwards the tunnel carries pings, oxisec lists exactly the half-open
/// SAs the threshold allows plus the real one, and its memory (VmRSS) grew
/// by less than [`RSS_GROWTH_LIMIT_KIB`].
pub fn run_cookie_flood(test: &str, count: u64, duration: Duration) -> Result<CookieOutcome> {
    let limits = COOKIE_TEST_LIMITS;
    let topo = Topology::new(test)?;
    let (mut lspec, mut rspec) = topo.tunnel_specs(GCM.0, GCM.1);
    lspec.tuning = FAST;
    rspec.tuning = Tuning {
        dos: Some(limits),
        ..FAST
    };
    // Half-open SAs only come from requests some connection accepts.
    rspec.remote_any = true;
    // The flood's answers: routed back to the left namespace, dropped there.
    let via = super::LEFT_OUTER.to_string();
    topo.right
        .ip(&["route", "add", FLOOD_PREFIX, "via", &via])?;
    topo.left.ip(&["route", "add", "blackhole", FLOOD_PREFIX])?;
    let script = topo.dir.path().join("cookie.nft");
    std::fs::write(&script, cookie_counters_script(super::LEFT_OUTER))?;
    topo.right.exec("nft", &["-f", &script.to_string_lossy()])?;
    let counter = |name: &str| nft_counter(&topo.right, "oxcookie", name);

    let swan = StrongSwan::start(
        topo.left.clone(),
        topo.dir.sub("left")?,
        "strongswan@left".into(),
        &lspec,
    )?;
    let ox = OxisecPeer::start(
        topo.right.clone(),
        topo.dir.sub("right")?,
        "oxisec@right".into(),
        &rspec,
    )?;
    let result = (|| {
        let rss_before_kib = ox.vm_rss_kib()?;
        let right_v4 = match RIGHT_OUTER {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => return Err("IPv4 topology expected".into()),
        };

        // 1. One address, many requests: the per-address limit.
        let single = ike_sa_init_flood(
            &topo.left,
            &[SINGLE_SOURCE],
            right_v4,
            20,
            Duration::from_millis(200),
        )?;
        let want = u64::from(limits.block_threshold);
        wait_until(
            "the single address's requests to reach oxisec",
            Duration::from_secs(5),
            || Ok((counter("init_requests")? >= single.sent).then_some(())),
        )?;
        // Time to answer what arrived (the engine answers at once).
        std::thread::sleep(Duration::from_millis(300));
        let (answers, cookies) = (counter("sa_answers")?, counter("cookies_sent")?);
        if answers != want || cookies != 0 {
            return Err(format!(
                "{} requests from {SINGLE_SOURCE}: {answers} half-open SAs and {cookies} COOKIEs, expected {want} and 0 (block_threshold)",
                single.sent
            )
            .into());
        }
        eprintln!(
            "{test}: {} requests from one spoofed address: {answers} half-open SAs, the rest dropped (block_threshold {want})",
            single.sent
        );

        // 2. Many addresses while the real initiator connects.
        let sources = flood_sources();
        let (flood, legit_setup, flood_left) = std::thread::scope(|scope| -> Result<_> {
            let flooder = scope.spawn(|| {
                ike_sa_init_flood(&topo.left, &sources, right_v4, count, duration)
                    .map_err(|e| e.to_string())
            });
            let flood_started = Instant::now();
            std::thread::sleep(Duration::from_millis(500));
            let t = Instant::now();
            let up = swan.initiate(CONN);
            let legit_setup = t.elapsed();
            let flood_left = duration.saturating_sub(flood_started.elapsed());
            let flood = flooder
                .join()
                .map_err(|_| -> Error { "the flood thread panicked".into() })??;
            up?;
            Ok((flood, legit_setup, flood_left))
        })?;
        let rss_after_kib = ox.vm_rss_kib()?;
        let ike_sas_after = ox.status()?.ike_sas.len();
        eprintln!(
            "{test}: flood of {} IKE_SA_INIT requests ({} send errors) from {} spoofed addresses in {:.1} s; strongSwan's tunnel up {:.2} s after --initiate, {:.1} s of flood still to go",
            flood.sent,
            flood.send_errors,
            sources.len(),
            flood.elapsed.as_secs_f64(),
            legit_setup.as_secs_f64(),
            flood_left.as_secs_f64()
        );
        if flood_left.is_zero() {
            return Err(format!(
                "strongSwan's tunnel came up only after the flood ended ({:.1} s)",
                legit_setup.as_secs_f64()
            )
            .into());
        }
        if !tunnel_up(&swan.list_sas()?, CONN) || !tunnel_up(&ox.list_sas()?, CONN) {
            return Err("the tunnel is not up on both sides after the flood".into());
        }
        traffic::ping_all(&topo.left, LEFT_HOST, RIGHT_HOST, 3)?;
        traffic::ping_all(&topo.right, RIGHT_HOST, LEFT_HOST, 3)?;

        let requests_received = counter("init_requests")?;
        let sa_answers = counter("sa_answers")?;
        let cookies_sent = counter("cookies_sent")?;
        let cookies_returned = counter("cookies_returned")?;
        eprintln!(
            "{test}: oxisec received {requests_received} IKE_SA_INIT requests, accepted {sa_answers} (half-open SAs + strongSwan's), sent {cookies_sent} COOKIEs; strongSwan returned a cookie {cookies_returned} time(s); {ike_sas_after} IKE SAs listed after the flood"
        );
        eprintln!(
            "{test}: oxisec VmRSS {rss_before_kib} KiB before the flood, {rss_after_kib} KiB after ({:+} KiB)",
            rss_after_kib as i64 - rss_before_kib as i64
        );
        let threshold = u64::from(limits.cookie_threshold);
        // Both phases and strongSwan's two requests (without, with cookie).
        if requests_received < single.sent + flood.sent + 2 {
            return Err(format!(
                "only {requests_received} of {} requests reached oxisec",
                single.sent + flood.sent + 2
            )
            .into());
        }
        // Half-open SAs up to the threshold, then strongSwan's, then none.
        if sa_answers != threshold + 1 || ike_sas_after as u64 != threshold + 1 {
            return Err(format!(
                "{sa_answers} IKE_SA_INIT requests accepted and {ike_sas_after} IKE SAs listed, expected {} of each (cookie_threshold {threshold} + strongSwan)",
                threshold + 1
            )
            .into());
        }
        // Every flood request past the threshold, and strongSwan's first.
        let challenged = flood.sent - (threshold - want) + 1;
        if cookies_sent != challenged {
            return Err(
                format!("oxisec sent {cookies_sent} COOKIEs, expected {challenged}").into(),
            );
        }
        if cookies_returned != 1 {
            return Err(format!(
                "strongSwan returned a cookie {cookies_returned} times, expected once"
            )
            .into());
        }
        let swan_log = swan.log();
        if !swan_log
            .lines()
            .any(|l| l.contains("parsed IKE_SA_INIT response 0 [ N(COOKIE) ]"))
        {
            return Err("strongSwan's log shows no IKE_SA_INIT response with a COOKIE".into());
        }
        if rss_after_kib > rss_before_kib + RSS_GROWTH_LIMIT_KIB {
            return Err(format!(
                "oxisec's memory grew by {} KiB during the flood (limit {RSS_GROWTH_LIMIT_KIB})",
                rss_after_kib - rss_before_kib
            )
            .into());
        }
        Ok(CookieOutcome {
            flood,
            rss_before_kib,
            rss_after_kib,
            cookies_sent,
            requests_received,
            sa_answers,
            legit_setup,
            ike_sas_after,
        })
    })();
    reported(test, &topo.dir, &[&swan, &ox], result)
}

/// How much oxisec's resident memory may grow during the flood: state for
/// the (at most `cookie_threshold`) half-open SAs and allocator slack, not
/// per request.
const RSS_GROWTH_LIMIT_KIB: u64 = 16 * 1024;
