//! The engine's inputs and outputs.
use std::net::SocketAddr;
use std::time::Instant;

use oxisec_crypto::Secret;
use oxisec_crypto::esp_cipher::EspSuite;

use crate::ts::TsRange;

/// A UDP datagram received on port 500 or 4500. For port 4500 the driver has
/// already removed the non-ESP marker.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// Our address and port the datagram was received on.
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub data: Vec<u8>,
}

/// A datagram to send.
#[derive(Debug, Clone)]
pub struct Transmit {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub data: Vec<u8>,
    /// Whether the driver must prepend the four-zero-byte non-ESP marker
    /// (IKE on a port other than 500, RFC 3948 §2.2). False for NAT
    /// keepalives, which are the single byte 0xFF.
    pub non_esp_marker: bool,
}

impl Transmit {
    /// An IKE message; the marker follows from the local port.
    pub fn ike(local: SocketAddr, remote: SocketAddr, data: Vec<u8>) -> Transmit {
        Transmit {
            local,
            remote,
            data,
            non_esp_marker: local.port() != 500,
        }
    }

    /// A NAT-keepalive packet (RFC 3948 §2.3).
    pub fn nat_keepalive(local: SocketAddr, remote: SocketAddr) -> Transmit {
        Transmit {
            local,
            remote,
            data: vec![0xff],
            non_esp_marker: false,
        }
    }
}

/// Commands from the administrator (CLI) or the daemon.
#[derive(Debug, Clone)]
pub enum Command {
    /// Bring up a connection's IKE SA and the named child (or all children with
    /// a configured start action when `child` is `None`... or every child when
    /// the connection has none started yet).
    Initiate {
        connection: String,
        child: Option<String>,
    },
    /// Delete every IKE SA of the connection (with all children).
    TerminateIke { connection: String },
    /// Delete the CHILD_SAs made from the named child config.
    TerminateChild { child: String },
    /// Rekey every IKE SA of the connection now.
    RekeyIke { connection: String },
    /// Rekey the CHILD_SAs made from the named child config now.
    RekeyChild { child: String },
}

/// A unique, never reused number for a CHILD_SA within one engine; stable
/// across the inbound and outbound halves, used by the data plane to pair them
/// with a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildId(pub u64);

/// An IKE SA handle, unique within one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IkeId(pub u64);

/// One direction of an ESP SA, complete with keys.
#[derive(Debug, Clone)]
pub struct EspSaParams {
    pub spi: u32,
    pub suite: EspSuite,
    /// This direction's KEYMAT slice.
    pub keys: Secret,
    /// Volume limits the data plane watches, reporting crossings with
    /// [`DataplaneEvent::SoftExpired`] / [`DataplaneEvent::HardExpired`].
    pub limits: SaLimits,
    /// The negotiated mode (the same for both directions).
    pub mode: crate::config::ChildMode,
    /// Anti-replay window in packets; the data plane uses it for inbound SAs.
    pub replay_window: u32,
}

/// Byte and packet limits of one ESP SA; 0 = none. The packet limits also
/// keep the sequence number from wrapping (RFC 4303 §3.3.3): without ESN the
/// engine sets them below 2^32 so that the SA is rekeyed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SaLimits {
    pub soft_bytes: u64,
    pub hard_bytes: u64,
    pub soft_packets: u64,
    pub hard_packets: u64,
}

/// What the data plane tells the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataplaneEvent {
    /// A soft byte/packet limit was crossed: time to rekey.
    SoftExpired { spi: u32, inbound: bool },
    /// A hard limit was crossed: the SA must not be used any more.
    HardExpired { spi: u32, inbound: bool },
    /// Inbound traffic arrived on this SA since the last report (for the
    /// liveness check: a peer that sends ESP is alive). Report at most about
    /// once a second per SA.
    InboundActivity { spi: u32 },
    /// ESP arrived for an SPI we do not have (answered with INVALID_SPI).
    UnknownSpi {
        spi: u32,
        local: SocketAddr,
        remote: SocketAddr,
    },
}

/// What the data plane must do. Emitted in the order they must be applied:
/// inbound before outbound on creation (so the peer's first packet finds its
/// SA), outbound removed before inbound on deletion.
#[derive(Debug, Clone)]
pub enum SaCommand {
    InstallInbound {
        child: ChildId,
        sa: EspSaParams,
        /// Selectors that decapsulated packets must match: source in
        /// `remote_ts`, destination in `local_ts`.
        local_ts: Vec<TsRange>,
        remote_ts: Vec<TsRange>,
    },
    InstallOutbound {
        child: ChildId,
        sa: EspSaParams,
        /// Packets from `local_ts` to `remote_ts` go through this SA.
        local_ts: Vec<TsRange>,
        remote_ts: Vec<TsRange>,
        /// Outer addresses: our IKE endpoint's address and the peer's, with
        /// the UDP 4500 ports when `udp_encap` (always true for now).
        local: SocketAddr,
        remote: SocketAddr,
        udp_encap: bool,
    },
    /// Remove one SA by SPI and direction.
    Delete {
        child: ChildId,
        spi: u32,
        inbound: bool,
    },
    /// The peer moved (NAT rebinding): send this outbound SA's packets
    /// between these UDP endpoints from now on.
    UpdateEndpoints {
        child: ChildId,
        spi: u32,
        local: SocketAddr,
        remote: SocketAddr,
    },
}

/// Why an SA went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// We or the peer deleted it on purpose.
    Deleted,
    /// A rekey replaced it.
    Rekeyed,
    /// The peer did not answer through the retransmission schedule.
    PeerDead,
    /// Authentication failed (either direction).
    AuthFailed,
    /// The exchange failed with the given notify or local error.
    Failed(String),
}

/// Things worth telling the operator; the daemon logs them and the CLI shows them.
#[derive(Debug, Clone)]
pub enum Event {
    IkeUp {
        ike: IkeId,
        connection: String,
        remote: SocketAddr,
    },
    IkeDown {
        ike: IkeId,
        connection: String,
        reason: DownReason,
    },
    /// A rekey replaced IKE SA `old` by `new`; its CHILD_SAs moved along.
    IkeRekeyed {
        old: IkeId,
        new: IkeId,
        connection: String,
    },
    ChildUp {
        ike: IkeId,
        child: ChildId,
        name: String,
        spi_in: u32,
        spi_out: u32,
    },
    ChildDown {
        ike: IkeId,
        child: ChildId,
        name: String,
        reason: DownReason,
    },
    /// Gateway: a client proved with EAP to be `identity` (the user name
    /// whose password it knew). Its virtual IP lease is keyed by this
    /// identity, not by its IKE identity (IDi).
    EapAuthenticated {
        ike: IkeId,
        connection: String,
        remote: SocketAddr,
        identity: String,
    },
    /// Gateway with [`crate::Auth::EapRelay`]: the client's EAP message
    /// `packet` (a checked EAP Response) for the EAP server, e.g. in a
    /// RADIUS Access-Request (RFC 3579). Answer it with
    /// [`crate::Engine::eap_relay_answer`] for the same `ike`; until then
    /// the client's retransmissions are ignored, and without an answer
    /// the half-open timer ends the SA.
    EapRelay {
        ike: IkeId,
        connection: String,
        /// Our IKE endpoint (RADIUS NAS address, Called-Station-Id).
        local: SocketAddr,
        /// The client's (Calling-Station-Id).
        remote: SocketAddr,
        /// The EAP identity: what the client answered to EAP-Identity, or
        /// its IDi (RADIUS User-Name).
        identity: String,
        packet: Vec<u8>,
    },
    /// A peer failed to authenticate, or rejected us.
    AuthFailed {
        connection: Option<String>,
        remote: SocketAddr,
        reason: String,
    },
    /// Client: the gateway assigned these virtual IPs and attributes; the
    /// driver puts the addresses on its tunnel interface, routes `subnets`
    /// (everything if empty) into the tunnel and applies the DNS servers
    /// (for `domains` only, if any).
    VirtualIp {
        ike: IkeId,
        connection: String,
        addresses: Vec<std::net::IpAddr>,
        dns: Vec<std::net::IpAddr>,
        domains: Vec<String>,
        subnets: Vec<TsRange>,
    },
    /// Client: the IKE SA that held these virtual IPs is gone (not
    /// replaced by a rekey): undo what [`Event::VirtualIp`] set up.
    VirtualIpReleased {
        ike: IkeId,
        connection: String,
        addresses: Vec<std::net::IpAddr>,
    },
    /// Gateway: a client took a lease or its lease went offline; the driver
    /// saves [`crate::Engine::leases`] so that they survive a restart.
    LeaseChanged {
        pool: String,
        identity: String,
        address: std::net::IpAddr,
        online: bool,
    },
}

/// A snapshot of one IKE SA for `oxisec status`.
#[derive(Debug, Clone)]
pub struct IkeSaStatus {
    pub ike: IkeId,
    pub connection: String,
    pub state: &'static str,
    pub initiator: bool,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub local_id: String,
    pub remote_id: String,
    pub spi_i: u64,
    pub spi_r: u64,
    /// e.g. "AES_GCM_16_128/PRF_HMAC_SHA2_256/CURVE_25519".
    pub algorithms: String,
    pub established: Option<Instant>,
    pub children: Vec<ChildSaStatus>,
    /// NAT detected in front of us / in front of the peer (RFC 7296 §2.23).
    pub nat_local: bool,
    pub nat_remote: bool,
    /// Virtual IPs the gateway assigned us / we assigned the peer.
    pub own_vips: Vec<std::net::IpAddr>,
    pub peer_vips: Vec<std::net::IpAddr>,
    /// Gateway side: the user the peer proved to be with EAP (the
    /// MSCHAPv2 user name, or the identity a RADIUS server accepted), which
    /// need not match its IKE identity; `None` without EAP.
    pub eap_identity: Option<String>,
    /// A remote-access peer's user groups as its authentication gave them
    /// (users file, RADIUS Class/Filter-Id, certificate OUs), in that
    /// source's order; empty for others.
    pub peer_groups: Vec<String>,
    /// Which of [`IkeSaStatus::peer_groups`] chose the peer's pool, DNS
    /// and subnets (the first one the connection lists); `None` when the
    /// connection's own values apply.
    pub access_group: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ChildSaStatus {
    pub child: ChildId,
    pub name: String,
    pub state: &'static str,
    pub spi_in: u32,
    pub spi_out: u32,
    pub algorithms: String,
    pub local_ts: Vec<TsRange>,
    pub remote_ts: Vec<TsRange>,
    pub installed: Instant,
    /// Tunnel or transport, as negotiated.
    pub mode: crate::config::ChildMode,
}

/// The EAP server's answer to an [`Event::EapRelay`], e.g. from a RADIUS
/// Access-Challenge, Access-Accept or Access-Reject.
pub enum EapRelayAnswer {
    /// The next EAP Request for the client.
    Continue(Vec<u8>),
    /// The client authenticated. `packet` is the server's EAP-Success
    /// (one is made up when `None`); `msk` the Master Session Key
    /// (RADIUS: MS-MPPE-Recv-Key || MS-MPPE-Send-Key) that keys both
    /// final AUTH payloads. `groups` are the user's groups as the server
    /// names them (RADIUS Class / Filter-Id): they select the user's pool,
    /// DNS and subnets ([`crate::RemoteAccess::groups`]).
    Accept {
        packet: Option<Vec<u8>>,
        msk: Secret,
        groups: Vec<String>,
    },
    /// The client did not authenticate (or the server could not be
    /// reached). `packet` is the server's EAP-Failure, if it sent one;
    /// `reason` is logged and reported in [`Event::AuthFailed`].
    Reject {
        packet: Option<Vec<u8>>,
        reason: String,
    },
}

/// The MSK stays out of logs.
impl std::fmt::Debug for EapRelayAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EapRelayAnswer::Continue(p) => f.debug_tuple("Continue").field(&p.len()).finish(),
            EapRelayAnswer::Accept { packet, groups, .. } => f
                .debug_struct("Accept")
                .field("packet", packet)
                .field("groups", groups)
                .field("msk", &"[REDACTED]")
                .finish(),
            EapRelayAnswer::Reject { packet, reason } => f
                .debug_struct("Reject")
                .field("packet", packet)
                .field("reason", reason)
                .finish(),
        }
    }
}
