//! What the scenarios need from an IKE peer, independent of its make.
//!
//! A peer is started inside one namespace with one tunnel configured
//! ([`PeerKind::start`]); the scenario then asks it to initiate, terminate
//! and list its SAs. strongSwan implements this through `swanctl`, oxisec
//! through its own CLI. Adding a peer (Libreswan, say) means one more
//! `PeerKind` variant and one more `impl Peer`.

use std::net::IpAddr;
use std::path::Path;

use super::{Result, Side, Topology, oxisec_peer::OxisecPeer, strongswan::StrongSwan};

/// Whether a child is brought up when the daemon loads its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAction {
    /// Wait for an explicit `initiate` (or for the peer to initiate).
    None,
    /// Initiate as soon as the configuration is loaded.
    Start,
}

/// One side's view of a site-to-site tunnel. Proposals use strongSwan's
/// keyword syntax, which oxisec's configuration parser accepts as well.
#[derive(Debug, Clone)]
pub struct TunnelSpec {
    /// Name of the connection and of its single child.
    pub name: String,
    pub local_addr: IpAddr,
    pub remote_addr: IpAddr,
    /// FQDN identities.
    pub local_id: String,
    pub remote_id: String,
    /// Protected subnets in CIDR notation.
    pub local_ts: String,
    pub remote_ts: String,
    pub psk: String,
    /// e.g. `aes128gcm16-prfsha256-x25519`; several proposals are
    /// comma-separated, as in swanctl.conf.
    pub ike_proposal: String,
    /// e.g. `aes128gcm16`.
    pub esp_proposal: String,
    pub start_action: StartAction,
    /// Accept the peer from any address: the configuration names no remote
    /// address (oxisec `remote_addrs = []`, strongSwan `%any`), so this
    /// side can only respond. `remote_addr` is then not written.
    pub remote_any: bool,
    /// Liveness check of the connection; `None` leaves it off (both
    /// implementations' default).
    pub dpd: Option<Dpd>,
    /// Daemon-wide settings of the peer that runs this tunnel.
    pub tuning: Tuning,
}

/// What a peer does when its liveness check finds the other side dead
/// (the same three words in swanctl.conf and oxisec's TOML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpdAction {
    /// Remove the SAs (and the routes into the tunnel).
    Clear,
    /// Remove the SAs; the next packet for the tunnel brings it up again.
    Trap,
    /// Remove the SAs and initiate the connection again at once.
    Restart,
}

impl DpdAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DpdAction::Clear => "clear",
            DpdAction::Trap => "trap",
            DpdAction::Restart => "restart",
        }
    }
}

/// Liveness check (RFC 7296 §2.4) of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dpd {
    /// Quiet time after which an empty INFORMATIONAL checks the peer.
    pub delay_secs: u32,
    pub action: DpdAction,
}

/// IKE request retransmission: `timeout × base^n` seconds before the n-th
/// retransmission, `tries` of them, then the peer counts as dead.
/// Both implementations use strongSwan's names and defaults (4 s, 1.8, 5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retransmit {
    pub timeout_secs: f64,
    pub base: f64,
    pub tries: u32,
}

impl Retransmit {
    /// How long after the first send of a request the peer is declared
    /// dead when nothing comes back: the first timeout plus every
    /// retransmission's wait.
    pub fn give_up_after(&self) -> std::time::Duration {
        let total: f64 = (0..=self.tries)
            .map(|n| self.timeout_secs * self.base.powi(n as i32))
            .sum();
        std::time::Duration::from_secs_f64(total)
    }
}

/// Limits on half-open IKE SAs (RFC 7296 §2.6), with strongSwan's meaning
/// in both implementations (strongSwan: `cookie_threshold`,
/// `block_threshold`, `init_limit_half_open`; oxisec: `[daemon]`
/// `cookie_threshold`, `block_threshold`, `half_open_limit`). Both default
/// to 30, 5 and no limit (oxisec: 10000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DosLimits {
    /// From this many half-open IKE SAs on, a new initiator must return a
    /// COOKIE first.
    pub cookie_threshold: u32,
    /// Requests from an address with this many half-open SAs are dropped.
    pub block_threshold: u32,
    /// Half-open SAs in total (0 = no limit).
    pub half_open_limit: u32,
}

/// Daemon-wide settings of the peer that runs a tunnel; `None` keeps the
/// implementation's default. The lifecycle tests shorten the timers so that
/// a dead peer is found in seconds, not minutes, and a keepalive comes in
/// seconds, not 20.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tuning {
    pub retransmit: Option<Retransmit>,
    /// NAT keepalive interval (strongSwan `charon.keep_alive`, oxisec
    /// `[daemon] nat_keepalive`).
    pub keepalive_secs: Option<u32>,
    pub dos: Option<DosLimits>,
}

impl TunnelSpec {
    /// The same tunnel seen from the other end. The daemon settings are
    /// copied (a test wants both daemons equally fast); the liveness check
    /// and `remote_any` are one side's choice and are not.
    pub fn mirrored(&self) -> TunnelSpec {
        TunnelSpec {
            name: self.name.clone(),
            local_addr: self.remote_addr,
            remote_addr: self.local_addr,
            local_id: self.remote_id.clone(),
            remote_id: self.local_id.clone(),
            local_ts: self.remote_ts.clone(),
            remote_ts: self.local_ts.clone(),
            psk: self.psk.clone(),
            ike_proposal: self.ike_proposal.clone(),
            esp_proposal: self.esp_proposal.clone(),
            start_action: StartAction::None,
            remote_any: false,
            dpd: None,
            tuning: self.tuning,
        }
    }
}

/// An IKE SA as a peer reports it, reduced to what the tests check.
/// States are upper-case strongSwan words: `ESTABLISHED`, `CONNECTING`,
/// `DELETING`, …; child states `INSTALLED`, `REKEYING`, ….
/// SPIs are lower-case hex as both implementations print them (16 digits
/// for IKE, 8 for ESP), so that the two sides' listings can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSa {
    pub name: String,
    pub state: String,
    /// The IKE SA initiator's SPI (whichever side that is).
    pub spi_i: String,
    pub spi_r: String,
    pub children: Vec<ChildSa>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSa {
    pub name: String,
    pub state: String,
    /// The SPI this side receives on (the peer's outbound SPI).
    pub spi_in: String,
    pub spi_out: String,
}

/// Which kind of SA a rekey replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RekeyKind {
    /// The CHILD_SA (CREATE_CHILD_SA with a REKEY_SA notify).
    Child,
    /// The IKE SA itself; its CHILD_SAs move to the new one unchanged.
    Ike,
}

impl RekeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RekeyKind::Child => "CHILD_SA",
            RekeyKind::Ike => "IKE_SA",
        }
    }
}

/// Whether `sas` hold an ESTABLISHED IKE SA `name` with an INSTALLED child
/// of the same name.
pub fn tunnel_up(sas: &[IkeSa], name: &str) -> bool {
    sas.iter().any(|ike| {
        ike.name == name
            && ike.state == "ESTABLISHED"
            && ike
                .children
                .iter()
                .any(|c| c.name == name && c.state == "INSTALLED")
    })
}

/// A running IKE daemon with one configured tunnel. Dropping it stops the
/// daemon (and, when the thread is panicking, prints the tail of its log).
pub trait Peer {
    /// "strongswan@left", for messages.
    fn label(&self) -> String;
    /// Starts the connection `name` and returns once the peer says it is up
    /// (or failed).
    fn initiate(&self, name: &str) -> Result<()>;
    /// Deletes every IKE SA of connection `name` (with its children),
    /// sending the DELETE to the other side.
    fn terminate(&self, name: &str) -> Result<()>;
    /// Starts a rekey of the IKE SA of connection `name`, or of the CHILD_SA
    /// `name`, and returns once the peer's tool returns (strongSwan's
    /// `swanctl --rekey` returns when the request is queued, `oxisec rekey`
    /// when the rekey is done).
    fn rekey(&self, name: &str, kind: RekeyKind) -> Result<()>;
    /// The SAs the peer currently has.
    fn list_sas(&self) -> Result<Vec<IkeSa>>;
    /// The last `lines` lines of the daemon's log, for failure reports.
    fn log_tail(&self, lines: usize) -> String;
    /// The daemon's whole log so far.
    fn log(&self) -> String;
    /// Which implementation this is.
    fn kind(&self) -> PeerKind;
    /// Where the daemon's files live.
    fn dir(&self) -> &Path;
}

/// Which implementation runs on a side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    /// strongSwan's charon with the kernel-libipsec userspace data plane.
    StrongSwan,
    /// oxisec's daemon (`oxisec run`) with its userspace data plane on TUN.
    Oxisec,
}

impl PeerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerKind::StrongSwan => "strongswan",
            PeerKind::Oxisec => "oxisec",
        }
    }

    /// Starts this kind of peer on `side` of `topo` with `spec` loaded.
    /// Its files go to `<test dir>/<side>/`.
    pub fn start(self, topo: &Topology, side: Side, spec: &TunnelSpec) -> Result<Box<dyn Peer>> {
        let ns = topo.ns(side).clone();
        let dir = topo.dir.sub(side.as_str())?;
        let label = format!("{}@{}", self.as_str(), side.as_str());
        Ok(match self {
            PeerKind::StrongSwan => Box::new(StrongSwan::start(ns, dir, label, spec)?),
            PeerKind::Oxisec => Box::new(OxisecPeer::start(ns, dir, label, spec)?),
        })
    }
}
