//! What the engine is told to do: connections, their children, identities,
//! credentials and proposals. Parsed from TOML by the `oxisec` binary; the
//! engine only sees these checked values.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use oxisec_crypto::Secret;

pub use crate::identity::Identity;
pub use crate::proposal::{EspProposal, IkeProposal};
pub use crate::ts::TsRange;

/// Engine-wide settings.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub connections: Vec<Arc<Connection>>,
    pub retransmit: RetransmitConfig,
    /// How often the side behind a NAT sends a NAT-keepalive (RFC 3948 §2.3).
    pub nat_keepalive: NatKeepalive,
    /// Protection against floods of IKE_SA_INIT requests.
    pub dos: DosConfig,
    /// IKE fragmentation (RFC 7383).
    pub fragmentation: FragmentationConfig,
    /// Address pools for virtual IPs, referred to by name from
    /// [`RemoteAccess::pools`].
    pub pools: Vec<PoolConfig>,
}

/// A range of addresses handed out as virtual IPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    pub name: String,
    /// First and last address, both included, of one family.
    pub first: IpAddr,
    pub last: IpAddr,
}

/// Remote access through the configuration payload (RFC 7296 §2.19, §3.15).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteAccess {
    /// Client: the virtual IPs to ask for in IKE_AUTH — 0.0.0.0 or :: for
    /// any address of that family, a specific address to ask for that one
    /// (strongSwan's `vips`).
    pub request_vips: Vec<IpAddr>,
    /// Gateway: the pools (by name) to assign a client's addresses from,
    /// the first pool of each family that has room.
    pub pools: Vec<String>,
    /// Gateway: DNS servers (INTERNAL_IP4/IP6_DNS) sent with an address.
    pub dns: Vec<IpAddr>,
    /// Gateway: DNS domains to resolve through those servers
    /// (INTERNAL_DNS_DOMAIN, RFC 8598): split DNS.
    pub dns_domains: Vec<String>,
    /// Gateway: the subnets the client should send through the tunnel
    /// (INTERNAL_IP4/IP6_SUBNET): split tunnelling; empty means everything.
    pub subnets: Vec<TsRange>,
    /// Gateway: what members of a user group get instead of the values
    /// above. A client's groups come with its authenticated identity (the
    /// users file, the RADIUS Access-Accept, the certificate's OU); of
    /// several, the first of the client's groups that is listed here
    /// applies, so that the order is the one the user database gives.
    pub groups: Vec<GroupAccess>,
    /// Gateway: a client in none of [`RemoteAccess::groups`] is refused
    /// (AUTHENTICATION_FAILED) instead of getting the connection's values.
    pub require_group: bool,
}

/// Remote-access values for the members of one user group; `None` (or an
/// empty pool list) keeps the connection's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupAccess {
    /// The group's name, compared without regard to ASCII case (RADIUS
    /// servers and directories disagree on case).
    pub group: String,
    pub pools: Vec<String>,
    pub dns: Option<Vec<IpAddr>>,
    pub dns_domains: Option<Vec<String>>,
    pub subnets: Option<Vec<TsRange>>,
}

/// What one client gets from a gateway connection, once its groups are
/// known: see [`RemoteAccess::for_groups`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access<'a> {
    /// The group whose values apply, if any.
    pub group: Option<&'a str>,
    pub pools: &'a [String],
    pub dns: &'a [IpAddr],
    pub dns_domains: &'a [String],
    pub subnets: &'a [TsRange],
}

impl RemoteAccess {
    /// The values for a client in `groups`: those of the first of its
    /// groups that the connection lists, else the connection's own; `None`
    /// when [`RemoteAccess::require_group`] refuses it.
    pub fn for_groups(&self, groups: &[String]) -> Option<Access<'_>> {
        let found = groups
            .iter()
            .find_map(|g| self.groups.iter().find(|a| a.group.eq_ignore_ascii_case(g)));
        let base = Access {
            group: None,
            pools: &self.pools,
            dns: &self.dns,
            dns_domains: &self.dns_domains,
            subnets: &self.subnets,
        };
        match found {
            None if self.require_group => None,
            None => Some(base),
            Some(a) => Some(Access {
                group: Some(&a.group),
                pools: if a.pools.is_empty() {
                    base.pools
                } else {
                    &a.pools
                },
                dns: a.dns.as_deref().unwrap_or(base.dns),
                dns_domains: a.dns_domains.as_deref().unwrap_or(base.dns_domains),
                subnets: a.subnets.as_deref().unwrap_or(base.subnets),
            }),
        }
    }

    /// Whether this connection hands out addresses (to anyone or to some
    /// group): a gateway's configuration requests are answered then.
    pub fn hands_out_addresses(&self) -> bool {
        !self.pools.is_empty() || self.groups.iter().any(|g| !g.pools.is_empty())
    }
}

/// IKE fragmentation: offered in IKE_SA_INIT when enabled, used when both
/// sides offer it and a message would not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentationConfig {
    pub enabled: bool,
    /// Largest IP datagram a fragment may make, headers included
    /// (strongSwan's `fragment_size`; 1280 is the IPv6 minimum MTU).
    pub size: usize,
}

impl Default for FragmentationConfig {
    fn default() -> Self {
        FragmentationConfig {
            enabled: true,
            size: 1280,
        }
    }
}

/// Limits on half-open IKE SAs (RFC 7296 §2.6); strongSwan's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DosConfig {
    /// From this many half-open SAs on, new requests must return a COOKIE
    /// first; no state is kept for a request without a valid one.
    pub cookie_threshold: usize,
    /// Requests from an address that already has this many half-open SAs
    /// are dropped (0 = no limit).
    pub block_threshold: usize,
    /// No more half-open SAs than this in total (0 = no limit).
    pub half_open_limit: usize,
}

impl Default for DosConfig {
    fn default() -> Self {
        DosConfig {
            cookie_threshold: 30,
            block_threshold: 5,
            half_open_limit: 10_000,
        }
    }
}

/// NAT keepalive interval; strongSwan's default is 20 s. `Duration::ZERO` disables them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatKeepalive(pub Duration);

impl Default for NatKeepalive {
    fn default() -> Self {
        NatKeepalive(Duration::from_secs(20))
    }
}

/// CHILD_SA lifetimes with strongSwan's (swanctl) meaning. A zero value
/// disables that limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildLifetime {
    /// Rekey this long after installation, minus a random part of `rand_time`.
    pub rekey_time: Duration,
    /// Hard expiry: delete the SA this long after installation if still there.
    pub life_time: Duration,
    /// Upper bound of the random jitter subtracted from `rekey_time`, so
    /// that the two peers do not rekey at the same moment.
    pub rand_time: Duration,
    pub rekey_bytes: u64,
    pub life_bytes: u64,
    pub rekey_packets: u64,
    pub life_packets: u64,
}

impl ChildLifetime {
    /// strongSwan's derived defaults for a given rekey time: life_time =
    /// rekey_time + 10 %, rand_time = life_time − rekey_time.
    pub fn from_rekey_time(rekey_time: Duration) -> ChildLifetime {
        let life_time = rekey_time.mul_f64(1.1);
        ChildLifetime {
            rekey_time,
            life_time,
            rand_time: life_time - rekey_time,
            rekey_bytes: 0,
            life_bytes: 0,
            rekey_packets: 0,
            life_packets: 0,
        }
    }
}

impl Default for ChildLifetime {
    /// 1 h rekey, 66 min life, 6 min jitter (strongSwan's defaults).
    fn default() -> Self {
        ChildLifetime::from_rekey_time(Duration::from_secs(3600))
    }
}

/// IKE SA lifetimes with strongSwan's meaning. A zero value disables it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeLifetime {
    /// Rekey the IKE SA (CREATE_CHILD_SA) after this, minus jitter.
    pub rekey_time: Duration,
    /// Hard limit beyond the rekey (or reauth) time: the SA is deleted if it
    /// could not be replaced by then.
    pub over_time: Duration,
    /// Upper bound of the jitter subtracted from `rekey_time`.
    pub rand_time: Duration,
    /// Reauthenticate after this (minus jitter): a new IKE SA with a full
    /// IKE_AUTH, the CHILD_SAs recreated on it, the old IKE SA deleted last
    /// (make-before-break). Zero: never. Only a side that can initiate
    /// (it knows the peer's address) reauthenticates.
    pub reauth_time: Duration,
}

impl IkeLifetime {
    pub fn from_rekey_time(rekey_time: Duration) -> IkeLifetime {
        let over_time = rekey_time / 10;
        IkeLifetime {
            rekey_time,
            over_time,
            rand_time: over_time,
            reauth_time: Duration::ZERO,
        }
    }

    /// The earlier of rekey and reauthentication time, whichever are on:
    /// the SA's hard lifetime runs `over_time` beyond it.
    pub fn replace_time(&self) -> Option<Duration> {
        [self.rekey_time, self.reauth_time]
            .into_iter()
            .filter(|t| !t.is_zero())
            .min()
    }
}

impl Default for IkeLifetime {
    /// 4 h rekey, 10 % over time and jitter (strongSwan's defaults).
    fn default() -> Self {
        IkeLifetime::from_rekey_time(Duration::from_secs(4 * 3600))
    }
}

/// What happens when the peer is found dead (or, for a CHILD_SA, when the
/// peer closes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DpdAction {
    /// Remove the SAs; traffic for the tunnel falls back to the policies.
    #[default]
    Clear,
    /// Remove the SAs and let the next packet for the tunnel start it again.
    Trap,
    /// Remove the SAs and initiate the connection again at once.
    Restart,
}

/// RFC 7296 §2.1 retransmission; defaults are strongSwan's (4 s, base 1.8, 5 tries).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetransmitConfig {
    pub timeout: Duration,
    pub base: f64,
    /// Retransmissions after the first send; the SA is declared dead when the
    /// last one times out.
    pub tries: u32,
}

impl RetransmitConfig {
    /// How long a request is retransmitted before its SA is given up: the
    /// sum of every wait of the schedule.
    pub fn span(&self) -> Duration {
        (0..=self.tries)
            .map(|n| crate::window::retransmit_delay(self, n))
            .sum()
    }
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        RetransmitConfig {
            timeout: Duration::from_secs(4),
            base: 1.8,
            tries: 5,
        }
    }
}

/// Authentication credential of one side.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Pre-shared key (RFC 7296 §2.15).
    Psk(Secret),
    /// Our side: sign with this key and send these certificates.
    Cert(LocalCert),
    /// The peer's side: a certificate that validates against this trust
    /// store for the peer's identity, and a signature with its key.
    PeerCert(Arc<oxisec_pki::TrustStore>),
    /// The peer's side, on a gateway: the client authenticates with
    /// EAP-MSCHAPv2 against this user database (RFC 7296 §2.16), after the
    /// gateway authenticated itself with its `local_auth`.
    Eap(EapServer),
    /// The peer's side, on a gateway: the client authenticates with EAP,
    /// but the engine does not run the method. It relays each EAP message
    /// of the client out as [`crate::Event::EapRelay`] and takes the
    /// answer of the real EAP server (a RADIUS server, RFC 3579) back
    /// through [`crate::Engine::eap_relay_answer`]; the MSK of an accept
    /// keys the final AUTH payloads. The method is whatever the server and
    /// the client agree on (MSCHAPv2 with a company's MFA, TLS, ...).
    EapRelay(EapRelay),
    /// The peer's side, on a gateway: the client authenticates with
    /// EAP-TLS (RFC 5216, RFC 9190): a client certificate inside a TLS
    /// handshake, checked as an IKE certificate would be. The gateway's
    /// TLS server certificate is its `local_auth` certificate.
    EapTls(EapTlsServer),
    /// Our side, on a client: EAP-TLS with our certificate instead of an
    /// AUTH payload of our own (RFC 5216, RFC 9190); the gateway must prove
    /// itself with its `remote_auth` certificate in IKE, and the same
    /// certificate checks (trust store, its IKE identity) apply to its TLS
    /// server certificate.
    EapTlsClient(EapTlsClient),
    /// Our side, on a client: EAP-MSCHAPv2 with this identity and password
    /// instead of an AUTH payload of our own; the gateway must prove itself
    /// with its `remote_auth` credential and the MSCHAPv2 authenticator
    /// response.
    EapClient {
        /// The EAP identity and MSCHAPv2 user name (the IKE IDi stays
        /// `local_id`).
        identity: String,
        /// UTF-8 password; zeroized on drop, redacted in Debug.
        password: Secret,
    },
}

/// A gateway's EAP server settings.
#[derive(Clone)]
pub struct EapServer {
    /// Looks up users' NT hashes (the caller's users file or directory).
    pub users: Arc<dyn crate::eap::EapUsers>,
    /// Ask for the EAP identity with EAP-Identity first; otherwise the IDi
    /// is the EAP identity (strongSwan's `eap_id = %any` vs. its default).
    pub ask_identity: bool,
}

impl std::fmt::Debug for EapServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EapServer")
            .field("users", &"<user database>")
            .field("ask_identity", &self.ask_identity)
            .finish()
    }
}

/// A gateway's EAP pass-through settings ([`Auth::EapRelay`]).
#[derive(Debug, Clone, Default)]
pub struct EapRelay {
    /// Ask for the EAP identity with EAP-Identity first (the gateway does
    /// that itself); otherwise an EAP-Identity response carrying the IDi
    /// is made up and relayed as the client's first message, which is
    /// what RADIUS servers expect to open a conversation with.
    pub ask_identity: bool,
}

/// A gateway's EAP-TLS settings ([`Auth::EapTls`]).
#[derive(Debug, Clone)]
pub struct EapTlsServer {
    /// Anchors, CRLs and policy the client certificates must validate
    /// against (the connection's `ca_certs`; EKU policy for clients).
    pub trust: Arc<oxisec_pki::TrustStore>,
    /// Ask for the EAP identity with EAP-Identity first; otherwise the IDi
    /// is the EAP identity. Either way the certificate must hold it.
    pub ask_identity: bool,
    /// Largest EAP-TLS packet we send, EAP header included (clamped to
    /// [`crate::eap::tls::FRAGMENT_SIZE_RANGE`]).
    pub fragment_size: usize,
    /// TLS versions accepted.
    pub versions: crate::eap::tls::TlsVersions,
}

impl EapTlsServer {
    /// Defaults: no EAP-Identity round, 1024-octet fragments, TLS 1.2 and 1.3.
    pub fn new(trust: Arc<oxisec_pki::TrustStore>) -> EapTlsServer {
        EapTlsServer {
            trust,
            ask_identity: false,
            fragment_size: crate::eap::tls::DEFAULT_FRAGMENT_SIZE,
            versions: crate::eap::tls::TlsVersions::default(),
        }
    }
}

/// A road warrior's EAP-TLS credential ([`Auth::EapTlsClient`]).
#[derive(Debug, Clone)]
pub struct EapTlsClient {
    /// Our certificate and key (`send` is not used: TLS always sends it).
    pub cert: LocalCert,
    /// The EAP identity; `None` answers EAP-Identity with our IKE identity.
    pub identity: Option<String>,
    pub fragment_size: usize,
    pub versions: crate::eap::tls::TlsVersions,
}

/// When we send our certificate chain in IKE_AUTH (strongSwan's `send_cert`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SendCert {
    Always,
    /// Only if the peer sent a CERTREQ.
    #[default]
    IfAsked,
    Never,
}

/// Our certificate credential.
#[derive(Debug, Clone)]
pub struct LocalCert {
    pub key: Arc<oxisec_pki::PrivateKey>,
    /// End entity first, then intermediates (not the root).
    pub chain: Vec<oxisec_pki::Certificate>,
    pub send: SendCert,
}

/// Whether a child is brought up when the daemon starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAction {
    #[default]
    None,
    Start,
}

/// ESP mode of a CHILD_SA (RFC 4303 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChildMode {
    /// The whole inner IP packet is protected and a new outer header added
    /// (site-to-site, remote access).
    #[default]
    Tunnel,
    /// Host to host: the IP header is kept and only its payload protected
    /// (RFC 4303 §3.1.1); negotiated with USE_TRANSPORT_MODE (RFC 7296 §1.3.1).
    Transport,
}

impl ChildMode {
    pub fn name(self) -> &'static str {
        match self {
            ChildMode::Tunnel => "tunnel",
            ChildMode::Transport => "transport",
        }
    }
}

impl core::fmt::Display for ChildMode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Packets tracked by an inbound SA's anti-replay window unless a child
/// configures `replay_window` (strongSwan's default is 32). Generous: the
/// sender's data-plane lanes take sequence numbers for whole batches of up
/// to a few hundred packets and may send them in any order (a lane
/// preempted between encrypting and sending lets the others overtake it),
/// and the peer may batch the same way. 4096 bits are 512 bytes per SA.
pub const DEFAULT_REPLAY_WINDOW: u32 = 4096;

/// One CHILD_SA template.
#[derive(Debug, Clone)]
pub struct ChildConfig {
    pub name: String,
    /// Our side's selectors (TSi when we initiate, TSr when we respond).
    /// Empty means "dynamic" (strongSwan's term): our address, or our
    /// virtual IP once the gateway assigned one.
    pub local_ts: Vec<TsRange>,
    /// The peer's selectors; empty means "dynamic": the peer's address, or
    /// the virtual IP we assigned it.
    pub remote_ts: Vec<TsRange>,
    pub esp_proposals: Vec<EspProposal>,
    pub start_action: StartAction,
    pub lifetime: ChildLifetime,
    /// The mode we ask for (initiator) or accept (responder). Transport
    /// needs host-to-host selectors and the peer's consent; without them
    /// the child falls back to tunnel mode (as strongSwan does), unless
    /// `mode_required`.
    pub mode: ChildMode,
    /// Refuse the child rather than fall back to tunnel mode.
    pub mode_required: bool,
    /// Anti-replay window of the inbound SAs, in packets (1..=65536).
    pub replay_window: u32,
}

/// One IKE connection: a peer, identities, credentials, proposals, children.
#[derive(Debug, Clone)]
pub struct Connection {
    pub name: String,
    /// Addresses we accept as our own for this connection; empty = any.
    pub local_addrs: Vec<IpAddr>,
    /// Peer addresses: the first is initiated to, all are accepted as
    /// responder; empty = any (responder only).
    pub remote_addrs: Vec<IpAddr>,
    /// The peer's IKE port when we initiate (500).
    pub remote_port: u16,
    pub local_id: Identity,
    /// `None` accepts any identity that authenticates with our credentials.
    pub remote_id: Option<Identity>,
    pub local_auth: Auth,
    /// The credential the peer must prove; for PSK the same key.
    pub remote_auth: Auth,
    pub ike_proposals: Vec<IkeProposal>,
    pub children: Vec<ChildConfig>,
    /// Always use ESP in UDP (RFC 3948), also without a NAT, by announcing a
    /// NAT_DETECTION_SOURCE_IP that cannot match (as strongSwan's `encap=yes`).
    pub force_encap: bool,
    pub ike_lifetime: IkeLifetime,
    /// Send an empty INFORMATIONAL after this long without hearing from the
    /// peer (liveness check, RFC 7296 §2.4); zero disables it.
    pub dpd_delay: Duration,
    /// What to do when the peer does not answer through the retransmission schedule.
    pub dpd_action: DpdAction,
    /// Virtual IPs, DNS and split tunnelling (client or gateway side).
    pub remote_access: RemoteAccess,
}

/// Where datagrams come from and go to.
pub type Endpoint = SocketAddr;
