//! The daemon's TOML configuration, checked into [`oxisec_ike::Config`] plus
//! the daemon's own settings.
//!
//! Every mistake is reported as `FILE:LINE: FIELD: what is wrong`, because an
//! operator fixing a VPN config at 3 a.m. should not have to guess which of
//! five `remote_ts` lines is meant. Syntax and type errors come with the toml
//! parser's span and the serde path; semantic errors (unknown algorithm
//! keyword, bad selector, unreadable key file) carry the span recorded by
//! [`toml::Spanned`] on the offending value.
//!
//! ```toml
//! [daemon]
//! socket = "/run/oxisec/oxisec.sock"
//!
//! [connections.site-b]
//! remote_addrs = ["192.0.2.2"]
//! local_id = "gw-a.example.com"
//! psk_file = "/etc/oxisec/site-b.psk"
//!
//! [connections.site-b.children.lan]
//! local_ts = ["198.51.100.0/24"]
//! remote_ts = ["203.0.113.0/24"]
//! start_action = "start"
//! ```
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, ToSocketAddrs, UdpSocket};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use oxisec_crypto::Secret;
use oxisec_ike::{
    Auth, ChildConfig, ChildLifetime, ChildMode, Config, Connection, DosConfig, DpdAction,
    EspProposal, FragmentationConfig, Identity, IkeLifetime, IkeProposal, LocalCert, NatKeepalive,
    RetransmitConfig, SendCert, StartAction, TsRange,
};
use oxisec_pki::{
    Certificate, EkuPolicy, KeyError, PrivateKey, RevocationPolicy, TrustStore, ValidationPolicy,
};
use serde::Deserialize;
use toml::Spanned;
use zeroize::Zeroizing;

use crate::crlfetch::HttpCrlCache;
use crate::users::{DEFAULT_USERS_FILE, UserDb};
use crate::x509util::{crl_ders, crl_summary, fmt_date, same_public_key};

mod policy;
mod radius;
mod remote;

pub use policy::{MssClamp, Shunt, ShuntAction, Trap};

/// Where the control socket lives unless the config or `--socket` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/oxisec/oxisec.sock";
/// The TUN device name unless configured.
pub const DEFAULT_TUN: &str = "oxisec0";
/// TUN MTU: 1500 minus the worst-case ESP-in-UDP overhead over IPv6 with
/// AES-CBC/HMAC-SHA-512 (40 + 8 + 8 + 16 + 15 + 2 + 32 = 121), rounded down.
pub const DEFAULT_MTU: u16 = 1400;
/// Where the daemon keeps CRLs fetched from http:// distribution points,
/// so that a restart does not have to fetch them again.
pub const DEFAULT_CRL_CACHE_DIR: &str = "/var/lib/oxisec/crls";
/// Largest certificate file (PEM or DER, chain included) read from the config.
pub const MAX_CERT_FILE: u64 = 1 << 20;
/// A local certificate expiring sooner than this draws a warning at load.
pub const CERT_EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86400);
/// PSKs shorter than this are guessable offline from one captured IKE_AUTH
/// exchange (RFC 7296 §2.15 asks for keys with as much entropy as a full key).
pub const PSK_WARN_LEN: usize = 20;
/// Longest NAT keepalive interval accepted; NAT mappings for UDP typically
/// time out after 30 s to a few minutes, so more than this is a typo.
pub const MAX_NAT_KEEPALIVE: Duration = Duration::from_secs(3600);
/// Upper bound of the half-open thresholds: each half-open IKE SA holds a
/// key share and a few kilobytes, so a million is already far beyond any
/// legitimate load.
pub const MAX_HALF_OPEN: u64 = 1_000_000;
/// IKE fragment sizes accepted (IP datagram bytes, headers included): the
/// IPv4 minimum reassembly size up to jumbo frames.
pub const FRAGMENT_SIZES: std::ops::RangeInclusive<u64> = 576..=9000;

/// Settings of the daemon itself (not the IKE engine).
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConfig {
    pub socket: PathBuf,
    pub tun: String,
    pub mtu: u16,
    /// A `tracing_subscriber::EnvFilter` directive, e.g. `info` or `oxisec_ike=debug,info`.
    pub log_level: String,
    /// Disk cache of CRLs fetched over HTTP.
    pub crl_cache_dir: PathBuf,
    /// Where state that must survive a restart lives (the gateway's
    /// virtual IP leases).
    pub state_dir: PathBuf,
    /// How a road warrior applies the DNS servers the gateway sends.
    pub dns: DnsBackend,
    /// The resolv.conf that [`DnsBackend::ResolvConf`] rewrites (and
    /// restores on disconnect).
    pub resolv_conf: PathBuf,
    /// Connections whose traffic must never leave in clear while the
    /// daemon runs: their remote selectors stay routed into the TUN device
    /// (where packets without an SA are dropped) also while the tunnel is
    /// down or being re-established.
    pub kill_switch: Vec<String>,
    /// The EAP user database of a gateway (`oxisec user`). Read once when
    /// the configuration is loaded, and only if a connection has
    /// `remote_auth = "eap-mschapv2"`.
    pub users_file: PathBuf,
    /// Pass and drop policies in file order, before every child's.
    pub shunts: Vec<Shunt>,
    /// Children started by traffic (`start_action = "trap"`, and every
    /// child of a connection with `dpd_action = "trap"`).
    pub traps: Vec<Trap>,
    /// Packets held per trap until its SA is up (0: dropped).
    pub trap_queue: usize,
    /// MTU of the path the ESP packets take; the tunnel routes' `mtu` is
    /// what an SA carries on it.
    pub path_mtu: u16,
    pub mss_clamp: MssClamp,
    /// What happens to cleartext packets that match a CHILD_SA's
    /// selectors but did not come out of the tunnel (RFC 4301 §5.2).
    pub inbound_policy: InboundPolicy,
}

/// `[daemon] inbound_policy`: whether the daemon installs the inbound
/// cleartext filter of `daemon/inbound.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InboundPolicy {
    /// Drop packets in clear whose addresses (and protocol, ports) match an
    /// installed CHILD_SA's remote → local selectors (RFC 4301 DISCARD of
    /// unprotected traffic that policy says must be protected).
    #[default]
    Drop,
    /// No filter: the host's own firewall must do it.
    Off,
}

/// How DNS servers and domains received with a virtual IP are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnsBackend {
    /// systemd-resolved when it runs, else resolv.conf.
    #[default]
    Auto,
    /// Per-link DNS through `resolvectl` (split DNS with routing domains).
    Resolved,
    /// Rewrite resolv.conf, keep the original aside, put it back on disconnect.
    ResolvConf,
    /// Leave DNS alone.
    Off,
}

/// Default for [`DaemonConfig::state_dir`].
pub const DEFAULT_STATE_DIR: &str = "/var/lib/oxisec";

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            socket: PathBuf::from(DEFAULT_SOCKET),
            tun: DEFAULT_TUN.to_string(),
            mtu: DEFAULT_MTU,
            log_level: "info".to_string(),
            crl_cache_dir: PathBuf::from(DEFAULT_CRL_CACHE_DIR),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            dns: DnsBackend::Auto,
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            kill_switch: Vec::new(),
            users_file: PathBuf::from(DEFAULT_USERS_FILE),
            shunts: Vec::new(),
            traps: Vec::new(),
            trap_queue: policy::DEFAULT_TRAP_QUEUE,
            path_mtu: policy::DEFAULT_PATH_MTU,
            mss_clamp: MssClamp::Off,
            inbound_policy: InboundPolicy::Drop,
        }
    }
}

/// A checked configuration file.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub daemon: DaemonConfig,
    pub ike: Config,
    /// Things that work but deserve the operator's attention (weak PSK,
    /// world-readable file with a secret). Already formatted as
    /// `FILE:LINE: FIELD: message`.
    pub warnings: Vec<ConfigError>,
    /// The CRLs of http:// distribution points, shared by every trust
    /// store of this configuration. Nothing is fetched until the daemon
    /// calls [`HttpCrlCache::start`].
    pub crl_cache: Arc<HttpCrlCache>,
    /// The RADIUS servers that `remote_auth = "eap-radius"` relays to.
    pub radius: Option<Arc<crate::radius::ClientConfig>>,
}

/// An authentication method as `local_auth`/`remote_auth` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthKind {
    Psk,
    Cert,
    /// EAP-MSCHAPv2: our user name and password as a client, our users'
    /// as a gateway.
    Eap,
    /// EAP-TLS (gateway only): the users' certificates, checked against
    /// `ca_certs` inside a TLS handshake carried by EAP.
    EapTls,
}

impl AuthKind {
    fn keyword(self) -> &'static str {
        match self {
            AuthKind::Psk => "psk",
            AuthKind::Cert => "cert",
            AuthKind::Eap => "eap",
            AuthKind::EapTls => "eap-tls",
        }
    }

    fn words(self) -> &'static str {
        match self {
            AuthKind::Psk => "the pre-shared key",
            AuthKind::Cert => "a certificate",
            AuthKind::Eap => "EAP-MSCHAPv2",
            AuthKind::EapTls => "EAP-TLS",
        }
    }
}

/// Both sides' credentials of one connection, and our certificate (for the
/// default identity and the local_id check).
struct Creds {
    local: Auth,
    remote: Auth,
    cert: Option<Certificate>,
}

/// One problem in a configuration file, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file as the operator named it.
    pub file: String,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// Dotted path of the field, e.g. `connections.site-b.ike_proposals[0]`.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------
// The raw schema: what serde reads, with spans kept for later checks.
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    daemon: Option<Spanned<RawDaemon>>,
    #[serde(default)]
    connections: BTreeMap<String, Spanned<RawConnection>>,
    /// Virtual IP pools for remote access (`[pools.NAME]`).
    #[serde(default)]
    pools: BTreeMap<String, Spanned<remote::RawPool>>,
    /// Pass and drop policies (`[shunts.NAME]`, see [`policy`]).
    #[serde(default)]
    shunts: BTreeMap<String, Spanned<policy::RawShunt>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    socket: Option<Spanned<PathBuf>>,
    tun: Option<Spanned<String>>,
    mtu: Option<Spanned<u16>>,
    /// Outer path MTU and TCP MSS clamping (see [`policy`]).
    path_mtu: Option<Spanned<u16>>,
    mss_clamp: Option<Spanned<policy::RawMssClamp>>,
    /// "drop" (default) or "off": see [`InboundPolicy`].
    inbound_policy: Option<Spanned<String>>,
    trap_queue: Option<Spanned<u16>>,
    log_level: Option<Spanned<String>>,
    retransmit_timeout: Option<Spanned<f64>>,
    retransmit_base: Option<Spanned<f64>>,
    retransmit_tries: Option<Spanned<u32>>,
    nat_keepalive: Option<Spanned<RawDuration>>,
    cookie_threshold: Option<Spanned<u64>>,
    block_threshold: Option<Spanned<u64>>,
    half_open_limit: Option<Spanned<u64>>,
    fragmentation: Option<Spanned<bool>>,
    fragment_size: Option<Spanned<u64>>,
    crl_cache_dir: Option<Spanned<PathBuf>>,
    state_dir: Option<Spanned<PathBuf>>,
    dns: Option<Spanned<String>>,
    resolv_conf: Option<Spanned<PathBuf>>,
    users_file: Option<Spanned<PathBuf>>,
    /// EAP through RADIUS (config/radius.rs).
    radius_servers: Option<Spanned<Vec<Spanned<String>>>>,
    radius_secret_file: Option<Spanned<PathBuf>>,
    radius_nas_identifier: Option<Spanned<String>>,
    radius_timeout: Option<Spanned<RawDuration>>,
}

/// The engine-wide settings that live under `[daemon]` in the file.
#[derive(Debug, Default)]
struct EngineWide {
    retransmit: RetransmitConfig,
    nat_keepalive: NatKeepalive,
    dos: DosConfig,
    fragmentation: FragmentationConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    #[serde(default)]
    local_addrs: Vec<Spanned<String>>,
    #[serde(default)]
    remote_addrs: Vec<Spanned<String>>,
    remote_port: Option<Spanned<u16>>,
    local_id: Option<Spanned<String>>,
    remote_id: Option<Spanned<String>>,
    psk: Option<Spanned<String>>,
    psk_file: Option<Spanned<PathBuf>>,
    /// "psk", "cert" or "eap": how we authenticate (default: cert when a
    /// local certificate is configured).
    local_auth: Option<Spanned<String>>,
    /// "psk", "cert" or "eap-mschapv2": how the peer must authenticate
    /// (default: cert when ca_certs are configured).
    remote_auth: Option<Spanned<String>>,
    /// Gateway with EAP clients: ask for the EAP identity first.
    eap_ask_identity: Option<Spanned<bool>>,
    /// Gateway with `remote_auth = "eap-tls"`: largest EAP-TLS packet we
    /// send, and the highest TLS version ("1.2" or "1.3").
    eap_tls_fragment_size: Option<Spanned<usize>>,
    eap_tls_max_version: Option<Spanned<String>>,
    /// Client with `local_auth = "eap"`: the EAP user name and the file
    /// whose first line is the password.
    eap_identity: Option<Spanned<String>>,
    eap_password_file: Option<Spanned<PathBuf>>,
    local_cert: Option<Spanned<PathBuf>>,
    local_key: Option<Spanned<PathBuf>>,
    local_key_passphrase_file: Option<Spanned<PathBuf>>,
    local_p12: Option<Spanned<PathBuf>>,
    local_p12_passphrase_file: Option<Spanned<PathBuf>>,
    send_cert: Option<Spanned<String>>,
    ca_certs: Option<Spanned<Vec<Spanned<PathBuf>>>>,
    crls: Option<Spanned<Vec<Spanned<PathBuf>>>>,
    revocation: Option<Spanned<String>>,
    remote_eku: Option<Spanned<String>>,
    /// `proposals` is swanctl's name for the same list.
    #[serde(alias = "proposals")]
    ike_proposals: Option<Spanned<Vec<Spanned<String>>>>,
    encap: Option<Spanned<bool>>,
    /// IKE SA lifetime (strongSwan's `rekey_time`, `over_time`, `rand_time`).
    rekey_time: Option<Spanned<RawDuration>>,
    over_time: Option<Spanned<RawDuration>>,
    rand_time: Option<Spanned<RawDuration>>,
    /// Reauthentication: a new IKE SA with a full IKE_AUTH (strongSwan's name).
    reauth_time: Option<Spanned<RawDuration>>,
    dpd_delay: Option<Spanned<RawDuration>>,
    dpd_action: Option<Spanned<String>>,
    /// Remote access (see [`remote`]): client side.
    vips: Option<Spanned<Vec<Spanned<String>>>>,
    kill_switch: Option<Spanned<bool>>,
    /// Remote access: gateway side.
    pools: Option<Spanned<Vec<Spanned<String>>>>,
    dns: Option<Spanned<Vec<Spanned<String>>>>,
    dns_domains: Option<Spanned<Vec<Spanned<String>>>>,
    subnets: Option<Spanned<Vec<Spanned<String>>>>,
    /// Remote access per user group (`[connections.X.groups.NAME]`).
    #[serde(default)]
    groups: BTreeMap<String, Spanned<remote::RawGroup>>,
    require_group: Option<Spanned<bool>>,
    #[serde(default)]
    children: BTreeMap<String, Spanned<RawChild>>,
}

/// A duration as `"90s"`, `"30m"`, `"4h"`, `"1d"` or a number of seconds.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
enum RawDuration {
    Seconds(u64),
    Text(String),
}

/// Parses `RawDuration`; `None` with the reason on error.
fn parse_duration(d: &RawDuration) -> Result<Duration, String> {
    match d {
        RawDuration::Seconds(s) => Ok(Duration::from_secs(*s)),
        RawDuration::Text(t) => {
            let t = t.trim();
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (num, unit) = t.split_at(split);
            let n: u64 = num.parse().map_err(|_| {
                format!("invalid duration {t:?}: expected e.g. \"90s\", \"30m\", \"4h\", \"1d\"")
            })?;
            let mult = match unit.trim() {
                "" | "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86400,
                u => {
                    return Err(format!(
                        "invalid duration unit {u:?} in {t:?}: use s, m, h or d"
                    ));
                }
            };
            n.checked_mul(mult)
                .map(Duration::from_secs)
                .ok_or_else(|| format!("duration {t:?} is too large"))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChild {
    local_ts: Spanned<Vec<Spanned<String>>>,
    remote_ts: Spanned<Vec<Spanned<String>>>,
    esp_proposals: Option<Spanned<Vec<Spanned<String>>>>,
    start_action: Option<Spanned<String>>,
    /// CHILD_SA lifetime (strongSwan's names).
    rekey_time: Option<Spanned<RawDuration>>,
    life_time: Option<Spanned<RawDuration>>,
    rand_time: Option<Spanned<RawDuration>>,
    rekey_bytes: Option<Spanned<u64>>,
    life_bytes: Option<Spanned<u64>>,
    rekey_packets: Option<Spanned<u64>>,
    life_packets: Option<Spanned<u64>>,
    // [modes] ESP mode and anti-replay window (strongSwan's key names).
    mode: Option<Spanned<String>>,
    replay_window: Option<Spanned<u32>>,
}

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

/// How host names in `remote_addrs` become addresses; a trait so that tests
/// need no DNS.
pub trait Resolver {
    fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, String>;
}

/// The system resolver (getaddrinfo via std).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        let addrs = (host, 0u16)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve host name {host:?}: {e}"))?;
        let mut out: Vec<IpAddr> = Vec::new();
        for a in addrs {
            if !out.contains(&a.ip()) {
                out.push(a.ip());
            }
        }
        if out.is_empty() {
            return Err(format!("host name {host:?} has no addresses"));
        }
        Ok(out)
    }
}

/// Reads and checks a configuration file with the system resolver.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: None,
        field: None,
        message: format!("cannot read: {e}"),
    })?;
    let mut loaded = parse(&text, path, &SystemResolver)?;
    // A file with an inline psk that anyone may read leaks the key.
    if let Some(mode) = group_other_mode(path) {
        let inline = find_inline_psk(&text);
        if let Some(line) = inline {
            loaded.warnings.push(ConfigError {
                file,
                line: Some(line),
                field: None,
                message: format!(
                    "the file holds an inline psk but is readable by group/others (mode {mode:04o}); run `chmod 600 {}` or use psk_file",
                    path.display()
                ),
            });
        }
    }
    Ok(loaded)
}

/// The line of the first inline `psk =` key, cheap textual scan used only
/// for the permission warning.
fn find_inline_psk(text: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix("psk")
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// The permission bits of `path` when group or others have any access.
#[cfg(unix)]
fn group_other_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn group_other_mode(_path: &Path) -> Option<u32> {
    None
}

/// Checks a configuration given as text. `origin` names the file in error
/// messages and anchors relative `psk_file` paths.
pub fn parse(text: &str, origin: &Path, resolver: &dyn Resolver) -> Result<Loaded, ConfigError> {
    let mut cx = Cx {
        file: origin.display().to_string(),
        text,
        dir: origin.parent().map(Path::to_path_buf).unwrap_or_default(),
        crl_cache: Arc::new(HttpCrlCache::new(PathBuf::from(DEFAULT_CRL_CACHE_DIR))),
        users: std::cell::OnceCell::new(),
        users_file: (PathBuf::from(DEFAULT_USERS_FILE), None),
    };
    let raw: RawFile = match toml::de::Deserializer::parse(text) {
        Ok(de) => serde_path_to_error::deserialize(de).map_err(|e| {
            let path = clean_path(&e.path().to_string());
            cx.serde_error(e.into_inner(), path)
        })?,
        Err(e) => return Err(cx.serde_error(e, String::new())),
    };
    let mut warnings = Vec::new();
    let (mut daemon, wide) = cx.daemon(raw.daemon.as_ref(), &mut warnings)?;
    cx.crl_cache = Arc::new(HttpCrlCache::new(daemon.crl_cache_dir.clone()));
    cx.users_file = (
        daemon.users_file.clone(),
        raw.daemon
            .as_ref()
            .and_then(|d| d.get_ref().users_file.as_ref())
            .map(Spanned::span),
    );
    let pools = cx.pools(&raw.pools)?;
    let rd = raw.daemon.as_ref().map(|d| d.get_ref());
    let raw_radius = radius::RawRadius {
        servers: rd.and_then(|d| d.radius_servers.as_ref()),
        secret_file: rd.and_then(|d| d.radius_secret_file.as_ref()),
        nas_identifier: rd.and_then(|d| d.radius_nas_identifier.as_ref()),
        timeout: rd.and_then(|d| d.radius_timeout.as_ref()),
    };
    let radius_client = radius::client(&cx, raw_radius, &mut warnings)?;
    daemon.shunts = cx.shunts(&raw.shunts)?;

    let mut conns: Vec<(&String, &Spanned<RawConnection>)> = raw.connections.iter().collect();
    conns.sort_by_key(|(_, c)| c.span().start);
    let mut connections = Vec::new();
    let mut child_owner: HashMap<String, String> = HashMap::new();
    for (name, rc) in conns {
        let conn = cx.connection(name, rc, resolver, &pools, &mut warnings)?;
        radius::check_servers(&cx, name, rc, radius_client.as_ref())?;
        if let Some(k) = &rc.get_ref().kill_switch
            && *k.get_ref()
        {
            if conn.remote_addrs.is_empty() {
                return Err(cx.err(
                    Some(k.span()),
                    format!("connections.{name}.kill_switch"),
                    "needs remote_addrs: the gateway's address is kept outside the tunnel",
                ));
            }
            daemon.kill_switch.push(conn.name.clone());
        }
        daemon.traps.extend(policy::traps(rc.get_ref(), &conn));
        for child in &conn.children {
            if let Some(other) = child_owner.insert(child.name.clone(), conn.name.clone()) {
                let span = rc.get_ref().children.get(&child.name).map(|c| c.span());
                return Err(cx.err(
                    span,
                    format!("connections.{}.children.{}", conn.name, child.name),
                    format!(
                        "child name {:?} is already used by connection {other:?}; child names must be unique because `oxisec terminate --child` names a child alone",
                        child.name
                    ),
                ));
            }
        }
        connections.push(Arc::new(conn));
    }
    Ok(Loaded {
        daemon,
        ike: Config {
            connections,
            retransmit: wide.retransmit,
            nat_keepalive: wide.nat_keepalive,
            dos: wide.dos,
            fragmentation: wide.fragmentation,
            pools,
        },
        warnings,
        crl_cache: cx.crl_cache.clone(),
        radius: radius_client,
    })
}

/// serde_path_to_error renders the private field names of `Spanned`; the
/// operator wants the TOML key path only.
fn clean_path(p: &str) -> String {
    const PRIVATE: &str = "$__serde_spanned";
    let mut out = String::new();
    for seg in p.split('.') {
        if let Some(rest) = seg.strip_prefix(PRIVATE) {
            // Keep a sequence index glued to the private name: `…value[0]`.
            if let Some(i) = rest.find('[') {
                out.push_str(&rest[i..]);
            }
        } else if !seg.is_empty() && seg != "?" {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// What every check needs: the file name, its text (for line numbers) and
/// its directory.
struct Cx<'a> {
    file: String,
    text: &'a str,
    dir: PathBuf,
    /// Given to every trust store (set once the `[daemon]` table is read).
    crl_cache: Arc<HttpCrlCache>,
    /// The EAP user database, read on first use (a configuration without
    /// EAP gateways does not need the file to exist) and then shared by
    /// every EAP connection.
    users: std::cell::OnceCell<Arc<UserDb>>,
    /// `[daemon] users_file` and where it was written.
    users_file: (PathBuf, Option<Range<usize>>),
}

impl Cx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err(
        &self,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let field = field.into();
        ConfigError {
            file: self.file.clone(),
            line: span.map(|s| self.line_of(s.start)),
            field: (!field.is_empty()).then_some(field),
            message: message.into(),
        }
    }

    fn serde_error(&self, e: toml::de::Error, path: String) -> ConfigError {
        let mut message = e.message().trim().to_string();
        if let Some(hint) = unknown_field_hint(&message) {
            message.push_str(&hint);
        }
        self.err(e.span(), path, message)
    }

    fn daemon(
        &self,
        raw: Option<&Spanned<RawDaemon>>,
        warnings: &mut Vec<ConfigError>,
    ) -> Result<(DaemonConfig, EngineWide), ConfigError> {
        let mut d = DaemonConfig::default();
        let mut w = EngineWide::default();
        let Some(raw) = raw else {
            return Ok((d, w));
        };
        let raw = raw.get_ref();
        if let Some(s) = &raw.socket {
            if !s.get_ref().is_absolute() {
                return Err(self.err(
                    Some(s.span()),
                    "daemon.socket",
                    "the control socket path must be absolute",
                ));
            }
            d.socket = s.get_ref().clone();
        }
        if let Some(c) = &raw.crl_cache_dir {
            if !c.get_ref().is_absolute() {
                return Err(self.err(
                    Some(c.span()),
                    "daemon.crl_cache_dir",
                    "the CRL cache directory must be an absolute path",
                ));
            }
            d.crl_cache_dir = c.get_ref().clone();
        }
        for (key, val, slot) in [
            ("daemon.state_dir", &raw.state_dir, &mut d.state_dir),
            ("daemon.resolv_conf", &raw.resolv_conf, &mut d.resolv_conf),
            ("daemon.users_file", &raw.users_file, &mut d.users_file),
        ] {
            if let Some(v) = val {
                if !v.get_ref().is_absolute() {
                    return Err(self.err(Some(v.span()), key, "must be an absolute path"));
                }
                *slot = v.get_ref().clone();
            }
        }
        if let Some(v) = &raw.dns {
            d.dns = match v.get_ref().as_str() {
                "auto" => DnsBackend::Auto,
                "resolved" => DnsBackend::Resolved,
                "resolv.conf" => DnsBackend::ResolvConf,
                "off" => DnsBackend::Off,
                other => {
                    return Err(self.err(
                        Some(v.span()),
                        "daemon.dns",
                        format!(
                            "unknown DNS backend {other:?}: use auto, resolved, resolv.conf or off"
                        ),
                    ));
                }
            };
        }
        if let Some(v) = &raw.inbound_policy {
            d.inbound_policy = match v.get_ref().as_str() {
                "drop" => InboundPolicy::Drop,
                "off" => InboundPolicy::Off,
                other => {
                    return Err(self.err(
                        Some(v.span()),
                        "daemon.inbound_policy",
                        format!("unknown inbound policy {other:?}: use drop or off"),
                    ));
                }
            };
        }
        if let Some(t) = &raw.tun {
            let name = t.get_ref();
            let ok = !name.is_empty()
                && name.len() < 16
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(self.err(
                    Some(t.span()),
                    "daemon.tun",
                    format!("invalid interface name {name:?}: 1 to 15 characters of a-z, 0-9, -, _ and ."),
                ));
            }
            d.tun = name.clone();
        }
        if let Some(m) = &raw.mtu {
            let mtu = *m.get_ref();
            if !(576..=9000).contains(&mtu) {
                return Err(self.err(
                    Some(m.span()),
                    "daemon.mtu",
                    format!("MTU {mtu} is out of range (576 to 9000)"),
                ));
            }
            d.mtu = mtu;
        }
        self.mtu_policy(raw, &mut d)?;
        if let Some(l) = &raw.log_level {
            if let Err(e) = tracing_subscriber::EnvFilter::try_new(l.get_ref()) {
                return Err(self.err(
                    Some(l.span()),
                    "daemon.log_level",
                    format!(
                        "invalid log level {:?} ({e}); use error, warn, info, debug or trace",
                        l.get_ref()
                    ),
                ));
            }
            d.log_level = l.get_ref().clone();
        }
        if let Some(t) = &raw.retransmit_timeout {
            let v = *t.get_ref();
            if !(v.is_finite() && v > 0.0 && v <= 600.0) {
                return Err(self.err(
                    Some(t.span()),
                    "daemon.retransmit_timeout",
                    format!("{v} is not a timeout in seconds between 0 and 600"),
                ));
            }
            w.retransmit.timeout = Duration::from_secs_f64(v);
        }
        if let Some(b) = &raw.retransmit_base {
            let v = *b.get_ref();
            if !(v.is_finite() && (1.0..=10.0).contains(&v)) {
                return Err(self.err(
                    Some(b.span()),
                    "daemon.retransmit_base",
                    format!("{v} is not a backoff base between 1.0 and 10.0"),
                ));
            }
            w.retransmit.base = v;
        }
        if let Some(t) = &raw.retransmit_tries {
            let v = *t.get_ref();
            if v > 30 {
                return Err(self.err(
                    Some(t.span()),
                    "daemon.retransmit_tries",
                    format!("{v} retransmissions is too many (at most 30)"),
                ));
            }
            w.retransmit.tries = v;
        }
        w.nat_keepalive = self.nat_keepalive(raw)?;
        w.dos = self.dos(raw)?;
        w.fragmentation = self.fragmentation(raw, warnings)?;
        Ok((d, w))
    }

    /// `nat_keepalive`: 0 turns keepalives off, otherwise 1 s to 1 h.
    fn nat_keepalive(&self, raw: &RawDaemon) -> Result<NatKeepalive, ConfigError> {
        let Some(v) = self.duration("daemon", "nat_keepalive", raw.nat_keepalive.as_ref())? else {
            return Ok(NatKeepalive::default());
        };
        if v > MAX_NAT_KEEPALIVE {
            let span = raw.nat_keepalive.as_ref().map(|s| s.span());
            return Err(self.err(
                span,
                "daemon.nat_keepalive",
                format!(
                    "{}s is too long for a NAT keepalive interval (0 turns them off, at most {}s; NATs forget UDP mappings after 30 s to a few minutes)",
                    v.as_secs(),
                    MAX_NAT_KEEPALIVE.as_secs()
                ),
            ));
        }
        Ok(NatKeepalive(v))
    }

    /// The half-open limits of RFC 7296 §2.6; the cookie threshold must be
    /// below the total limit, or requests are dropped before any cookie
    /// is asked for.
    fn dos(&self, raw: &RawDaemon) -> Result<DosConfig, ConfigError> {
        let mut dos = DosConfig::default();
        let get = |v: &Option<Spanned<u64>>,
                   key: &str,
                   what: &str|
         -> Result<Option<usize>, ConfigError> {
            let Some(v) = v else { return Ok(None) };
            let n = *v.get_ref();
            match usize::try_from(n) {
                Ok(u) if n <= MAX_HALF_OPEN => Ok(Some(u)),
                _ => Err(self.err(
                    Some(v.span()),
                    format!("daemon.{key}"),
                    format!("{n} is out of range: {what}, at most {MAX_HALF_OPEN}"),
                )),
            }
        };
        if let Some(n) = get(
            &raw.cookie_threshold,
            "cookie_threshold",
            "half-open IKE SAs from which a COOKIE is required (0 = always)",
        )? {
            dos.cookie_threshold = n;
        }
        if let Some(n) = get(
            &raw.block_threshold,
            "block_threshold",
            "half-open IKE SAs per peer address (0 = no limit)",
        )? {
            dos.block_threshold = n;
        }
        if let Some(n) = get(
            &raw.half_open_limit,
            "half_open_limit",
            "half-open IKE SAs in total (0 = no limit)",
        )? {
            dos.half_open_limit = n;
        }
        if dos.half_open_limit != 0 && dos.cookie_threshold >= dos.half_open_limit {
            let (span, key) = match (&raw.cookie_threshold, &raw.half_open_limit) {
                (Some(c), _) => (Some(c.span()), "cookie_threshold"),
                (None, h) => (h.as_ref().map(|h| h.span()), "half_open_limit"),
            };
            return Err(self.err(
                span,
                format!("daemon.{key}"),
                format!(
                    "cookie_threshold ({}) must be below half_open_limit ({}): otherwise new IKE SAs are refused before cookies are asked for",
                    dos.cookie_threshold, dos.half_open_limit
                ),
            ));
        }
        Ok(dos)
    }

    /// IKE fragmentation (RFC 7383) and the size of the fragments.
    fn fragmentation(
        &self,
        raw: &RawDaemon,
        warnings: &mut Vec<ConfigError>,
    ) -> Result<FragmentationConfig, ConfigError> {
        let mut f = FragmentationConfig::default();
        if let Some(e) = &raw.fragmentation {
            f.enabled = *e.get_ref();
        }
        if let Some(s) = &raw.fragment_size {
            let n = *s.get_ref();
            if !FRAGMENT_SIZES.contains(&n) {
                return Err(self.err(
                    Some(s.span()),
                    "daemon.fragment_size",
                    format!(
                        "{n} bytes is out of range ({} to {}: the largest IP datagram an IKE fragment may make, headers included)",
                        FRAGMENT_SIZES.start(),
                        FRAGMENT_SIZES.end()
                    ),
                ));
            }
            f.size = n as usize;
            if !f.enabled {
                warnings.push(self.err(
                    Some(s.span()),
                    "daemon.fragment_size",
                    "has no effect with fragmentation = false",
                ));
            }
        }
        Ok(f)
    }

    fn connection(
        &self,
        n: &String,
        rc: &Spanned<RawConnection>,
        resolver: &dyn Resolver,
        pools: &[oxisec_ike::PoolConfig],
        warnings: &mut Vec<ConfigError>,
    ) -> Result<Connection, ConfigError> {
        let base = format!("connections.{n}");
        if !valid_name(n) {
            return Err(self.err(
                Some(rc.span()),
                &base,
                format!(
                    "invalid connection name {n:?}: use letters, digits, -, _ and . (at most 64)"
                ),
            ));
        }
        let raw = rc.get_ref();

        let mut local_addrs = Vec::new();
        for (i, a) in raw.local_addrs.iter().enumerate() {
            let ip: IpAddr = a.get_ref().trim().parse().map_err(|_| {
                self.err(
                    Some(a.span()),
                    format!("{base}.local_addrs[{i}]"),
                    format!(
                        "{:?} is not an IP address (local addresses must be literal)",
                        a.get_ref()
                    ),
                )
            })?;
            if !local_addrs.contains(&ip) {
                local_addrs.push(ip);
            }
        }

        let mut remote_addrs = Vec::new();
        for (i, a) in raw.remote_addrs.iter().enumerate() {
            let host = a.get_ref().trim();
            let ips = match host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => resolver.resolve(host).map_err(|e| {
                    self.err(Some(a.span()), format!("{base}.remote_addrs[{i}]"), e)
                })?,
            };
            for ip in ips {
                if !remote_addrs.contains(&ip) {
                    remote_addrs.push(ip);
                }
            }
        }

        let remote_port = match &raw.remote_port {
            Some(p) if *p.get_ref() == 0 => {
                return Err(self.err(
                    Some(p.span()),
                    format!("{base}.remote_port"),
                    "port 0 is not a port",
                ));
            }
            Some(p) => *p.get_ref(),
            None => 500,
        };

        let creds = self.credentials(&base, rc, warnings)?;

        // strongSwan's default too: with a certificate, our identity is its
        // subject DN (which the peer then matches against the certificate).
        let local_id = match &raw.local_id {
            Some(id) => id.get_ref().parse::<Identity>().map_err(|e| {
                self.err(Some(id.span()), format!("{base}.local_id"), e.to_string())
            })?,
            None => match (&creds.cert, local_addrs.first()) {
                (Some(cert), _) => Identity::Dn(cert.subject_der()),
                (None, Some(a)) => Identity::from_addr(*a),
                (None, None) => match remote_addrs.first().and_then(|r| route_source(*r)) {
                    Some(a) => Identity::from_addr(a),
                    None => {
                        return Err(self.err(
                            Some(rc.span()),
                            &base,
                            "set local_id (or local_addrs): there is no local address to use as the identity",
                        ));
                    }
                },
            },
        };
        if let (Some(cert), Some(id)) = (&creds.cert, &raw.local_id)
            && !cert.matches(&local_id.claim())
        {
            let sans: Vec<String> = cert
                .subject_alt_names()
                .iter()
                .map(ToString::to_string)
                .collect();
            return Err(self.err(
                Some(id.span()),
                format!("{base}.local_id"),
                format!(
                    "{local_id} is not in our certificate (subject {}, SANs [{}]): peers would reject us; use one of those or leave local_id out for the subject",
                    cert.subject(),
                    sans.join(", ")
                ),
            ));
        }
        let remote_id = match &raw.remote_id {
            Some(id) => Some(id.get_ref().parse::<Identity>().map_err(|e| {
                self.err(Some(id.span()), format!("{base}.remote_id"), e.to_string())
            })?),
            None => None,
        };

        let ike_proposals = match &raw.ike_proposals {
            None => IkeProposal::defaults(),
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(self.err(
                        Some(list.span()),
                        format!("{base}.ike_proposals"),
                        "empty list; remove the key for the defaults",
                    ));
                }
                let mut out = Vec::new();
                for (i, p) in list.get_ref().iter().enumerate() {
                    let field = format!("{base}.ike_proposals[{i}]");
                    let proposal = IkeProposal::parse(p.get_ref())
                        .map_err(|e| self.err(Some(p.span()), &field, e.to_string()))?;
                    self.warn_legacy(proposal.legacy(), p.span(), &field, warnings);
                    out.push(proposal);
                }
                out
            }
        };

        let mut kids: Vec<(&String, &Spanned<RawChild>)> = raw.children.iter().collect();
        kids.sort_by_key(|(_, c)| c.span().start);
        let mut children = Vec::new();
        for (cname, rchild) in kids {
            let child = self.child(&base, cname, rchild, warnings)?;
            if child.start_action == StartAction::Start && remote_addrs.is_empty() {
                let span = rchild.get_ref().start_action.as_ref().map(|s| s.span());
                return Err(self.err(
                    span,
                    format!("{base}.children.{}.start_action", child.name),
                    "start_action = \"start\" needs remote_addrs on the connection (whom to initiate to?)",
                ));
            }
            children.push(child);
        }
        if children.is_empty() {
            warnings.push(self.err(
                Some(rc.span()),
                &base,
                "no children: the IKE SA will carry no traffic",
            ));
        }

        Ok(Connection {
            name: n.clone(),
            local_addrs,
            remote_addrs,
            remote_port,
            local_id,
            remote_id,
            local_auth: creds.local,
            remote_auth: creds.remote,
            ike_proposals,
            children,
            // strongSwan's `encap`: false (default) = ESP in UDP only when
            // a NAT is detected, raw ESP otherwise (RFC 7296 §2.23).
            force_encap: raw.encap.as_ref().is_some_and(|e| *e.get_ref()),
            ike_lifetime: self.ike_lifetime(&base, raw)?,
            dpd_delay: self
                .duration(&base, "dpd_delay", raw.dpd_delay.as_ref())?
                .unwrap_or_default(),
            dpd_action: self.dpd_action(&base, raw.dpd_action.as_ref())?,
            remote_access: self.remote_access(&base, raw, pools)?,
        })
    }

    fn duration(
        &self,
        base: &str,
        key: &str,
        v: Option<&Spanned<RawDuration>>,
    ) -> Result<Option<Duration>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        parse_duration(v.get_ref())
            .map(Some)
            .map_err(|m| self.err(Some(v.span()), format!("{base}.{key}"), m))
    }

    /// IKE SA lifetime: strongSwan's defaults derive over_time and rand_time
    /// from rekey_time (10 %); `rekey_time = 0` disables rekeying.
    fn ike_lifetime(&self, base: &str, raw: &RawConnection) -> Result<IkeLifetime, ConfigError> {
        let mut l = match self.duration(base, "rekey_time", raw.rekey_time.as_ref())? {
            Some(t) => IkeLifetime::from_rekey_time(t),
            None => IkeLifetime::default(),
        };
        if let Some(t) = self.duration(base, "reauth_time", raw.reauth_time.as_ref())? {
            l.reauth_time = t;
            // strongSwan's defaults: 10 % of the earlier of both times.
            let over = l.replace_time().unwrap_or_default() / 10;
            l.over_time = over;
            l.rand_time = over;
        }
        if let Some(t) = self.duration(base, "over_time", raw.over_time.as_ref())? {
            l.over_time = t;
            if raw.rand_time.is_none() {
                l.rand_time = t;
            }
        }
        if let Some(t) = self.duration(base, "rand_time", raw.rand_time.as_ref())? {
            l.rand_time = t;
        }
        if l.replace_time().is_some_and(|t| l.rand_time > t) {
            let span = raw.rand_time.as_ref().map(|s| s.span());
            return Err(self.err(
                span,
                format!("{base}.rand_time"),
                "rand_time must not exceed rekey_time or reauth_time",
            ));
        }
        Ok(l)
    }

    fn dpd_action(
        &self,
        base: &str,
        v: Option<&Spanned<String>>,
    ) -> Result<DpdAction, ConfigError> {
        let Some(v) = v else {
            return Ok(DpdAction::Clear);
        };
        match v.get_ref().as_str() {
            "clear" => Ok(DpdAction::Clear),
            "trap" => Ok(DpdAction::Trap),
            "restart" => Ok(DpdAction::Restart),
            other => Err(self.err(
                Some(v.span()),
                format!("{base}.dpd_action"),
                format!(
                    "unknown dpd_action {other:?}: expected \"clear\", \"trap\" or \"restart\""
                ),
            )),
        }
    }

    /// CHILD_SA lifetime with strongSwan's derivations: life_time defaults to
    /// rekey_time + 10 %, rand_time to life_time − rekey_time.
    fn child_lifetime(&self, base: &str, raw: &RawChild) -> Result<ChildLifetime, ConfigError> {
        let rekey = self.duration(base, "rekey_time", raw.rekey_time.as_ref())?;
        let mut l = rekey
            .map(ChildLifetime::from_rekey_time)
            .unwrap_or_default();
        if let Some(t) = self.duration(base, "life_time", raw.life_time.as_ref())? {
            l.life_time = t;
            l.rand_time = t.saturating_sub(l.rekey_time);
        }
        if let Some(t) = self.duration(base, "rand_time", raw.rand_time.as_ref())? {
            l.rand_time = t;
        }
        if !l.life_time.is_zero() && !l.rekey_time.is_zero() && l.life_time <= l.rekey_time {
            let span = raw.life_time.as_ref().map(|s| s.span());
            return Err(self.err(
                span,
                format!("{base}.life_time"),
                "life_time must be longer than rekey_time",
            ));
        }
        let get = |v: &Option<Spanned<u64>>| v.as_ref().map(|s| *s.get_ref()).unwrap_or(0);
        l.rekey_bytes = get(&raw.rekey_bytes);
        l.life_bytes = get(&raw.life_bytes);
        l.rekey_packets = get(&raw.rekey_packets);
        l.life_packets = get(&raw.life_packets);
        if l.life_bytes != 0 && l.rekey_bytes >= l.life_bytes {
            let span = raw.rekey_bytes.as_ref().map(|s| s.span());
            return Err(self.err(
                span,
                format!("{base}.rekey_bytes"),
                "rekey_bytes must be below life_bytes",
            ));
        }
        if l.life_packets != 0 && l.rekey_packets >= l.life_packets {
            let span = raw.rekey_packets.as_ref().map(|s| s.span());
            return Err(self.err(
                span,
                format!("{base}.rekey_packets"),
                "rekey_packets must be below life_packets",
            ));
        }
        Ok(l)
    }

    fn psk(
        &self,
        base: &str,
        rc: &Spanned<RawConnection>,
        warnings: &mut Vec<ConfigError>,
    ) -> Result<Secret, ConfigError> {
        let raw = rc.get_ref();
        let (bytes, span, field) = match (&raw.psk, &raw.psk_file) {
            (Some(_), Some(f)) => {
                return Err(self.err(
                    Some(f.span()),
                    format!("{base}.psk_file"),
                    "set either psk or psk_file, not both",
                ));
            }
            (None, None) => {
                return Err(self.err(Some(rc.span()), base, "no credential: set psk or psk_file (or certificates: local_cert + local_key or local_p12, and ca_certs)"));
            }
            (Some(p), None) => (
                p.get_ref().as_bytes().to_vec(),
                p.span(),
                format!("{base}.psk"),
            ),
            (None, Some(f)) => {
                let field = format!("{base}.psk_file");
                let bytes = self.secret_file(f, &field)?;
                (bytes.to_vec(), f.span(), field)
            }
        };
        if bytes.is_empty() {
            return Err(self.err(Some(span), field, "the pre-shared key is empty"));
        }
        if bytes.len() < PSK_WARN_LEN {
            warnings.push(self.err(
                Some(span),
                field,
                format!(
                    "the pre-shared key is only {} characters long; use at least {PSK_WARN_LEN} random characters (it can be guessed offline from one captured handshake)",
                    bytes.len()
                ),
            ));
        }
        Ok(Secret::new(bytes))
    }

    /// A path from the file, relative ones taken from the config's directory.
    fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    /// Reads a file that holds a secret (key, PKCS#12, passphrase, psk):
    /// refused when group or others may read it, bounded in size, wiped
    /// from memory when dropped.
    fn private_file(
        &self,
        f: &Spanned<PathBuf>,
        field: &str,
    ) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
        let path = self.path(f.get_ref());
        if let Some(mode) = group_other_mode(&path) {
            return Err(self.err(
                Some(f.span()),
                field,
                format!(
                    "{} is accessible by group/others (mode {mode:04o}); a key file must be private: run `chmod 600 {}`",
                    path.display(),
                    path.display()
                ),
            ));
        }
        self.read_bounded(f, field, MAX_CERT_FILE)
    }

    /// [`Cx::private_file`] without the final newline editors add, which is
    /// never part of a psk or a passphrase.
    fn secret_file(
        &self,
        f: &Spanned<PathBuf>,
        field: &str,
    ) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
        let mut bytes = self.private_file(f, field)?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        Ok(bytes)
    }

    /// Reads at most `max` bytes; a larger file is an error, not a truncation.
    fn read_bounded(
        &self,
        f: &Spanned<PathBuf>,
        field: &str,
        max: u64,
    ) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
        use std::io::Read;
        let path = self.path(f.get_ref());
        let cannot = |e: std::io::Error| {
            self.err(
                Some(f.span()),
                field,
                format!("cannot read {}: {e}", path.display()),
            )
        };
        let file = std::fs::File::open(&path).map_err(cannot)?;
        let mut out = Zeroizing::new(Vec::new());
        file.take(max + 1).read_to_end(&mut out).map_err(cannot)?;
        if out.len() as u64 > max {
            return Err(self.err(
                Some(f.span()),
                field,
                format!("{} is larger than {max} bytes", path.display()),
            ));
        }
        Ok(out)
    }

    /// How both sides authenticate: `local_auth`/`remote_auth` with the
    /// pre-shared key, our certificate and key, and the trust store the
    /// peer's certificate is checked against.
    fn credentials(
        &self,
        base: &str,
        rc: &Spanned<RawConnection>,
        warnings: &mut Vec<ConfigError>,
    ) -> Result<Creds, ConfigError> {
        let raw = rc.get_ref();
        let has_local_cert = raw.local_cert.is_some() || raw.local_p12.is_some();
        let local = match self.auth_kind(base, "local_auth", raw.local_auth.as_ref())? {
            Some(k) => k,
            None if has_local_cert => AuthKind::Cert,
            None => AuthKind::Psk,
        };
        // remote_auth = "eap-radius" (config/radius.rs): EAP relayed to a
        // RADIUS server; for the checks below it is an EAP gateway.
        let relay = radius::remote_auth(self, base, raw)?;
        let remote = if relay.is_some() {
            AuthKind::Eap
        } else {
            match self.auth_kind(base, "remote_auth", raw.remote_auth.as_ref())? {
                Some(k) => k,
                None if raw.ca_certs.is_some() => AuthKind::Cert,
                None => AuthKind::Psk,
            }
        };
        self.check_eap_roles(base, raw, local, remote)?;
        // Keys of a method that is not used are mistakes; say so first.
        if local != AuthKind::Cert && local != AuthKind::EapTls {
            for (key, span) in [
                ("local_cert", raw.local_cert.as_ref().map(Spanned::span)),
                ("local_key", raw.local_key.as_ref().map(Spanned::span)),
                (
                    "local_key_passphrase_file",
                    raw.local_key_passphrase_file.as_ref().map(Spanned::span),
                ),
                ("local_p12", raw.local_p12.as_ref().map(Spanned::span)),
                (
                    "local_p12_passphrase_file",
                    raw.local_p12_passphrase_file.as_ref().map(Spanned::span),
                ),
                ("send_cert", raw.send_cert.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    return Err(self.err(
                        Some(span),
                        format!("{base}.{key}"),
                        format!(
                            "needs a local certificate, but we authenticate with {} (local_auth = \"{}\"); remove this key or set local_auth = \"cert\"",
                            local.words(),
                            local.keyword()
                        ),
                    ));
                }
            }
        }
        if remote != AuthKind::Cert && remote != AuthKind::EapTls {
            for (key, span) in [
                ("ca_certs", raw.ca_certs.as_ref().map(Spanned::span)),
                ("crls", raw.crls.as_ref().map(Spanned::span)),
                ("revocation", raw.revocation.as_ref().map(Spanned::span)),
                ("remote_eku", raw.remote_eku.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    return Err(self.err(
                        Some(span),
                        format!("{base}.{key}"),
                        format!(
                            "the peer authenticates with {} (remote_auth = \"{}\"); remove this key or set remote_auth = \"cert\"",
                            remote.words(),
                            match remote {
                                AuthKind::Eap => "eap-mschapv2",
                                k => k.keyword(),
                            }
                        ),
                    ));
                }
            }
        }
        let psk_given = raw
            .psk
            .as_ref()
            .map(Spanned::span)
            .or(raw.psk_file.as_ref().map(Spanned::span));
        let needs_psk = local == AuthKind::Psk || remote == AuthKind::Psk;
        if !needs_psk && let Some(span) = psk_given {
            let message = if local == AuthKind::Cert && remote == AuthKind::Cert {
                "a pre-shared key is set but both sides authenticate with certificates (local_auth and remote_auth = \"cert\"); remove it".to_owned()
            } else {
                format!(
                    "a pre-shared key is set but neither side uses it (local_auth = \"{}\", remote_auth = \"{}\"); remove it",
                    local.keyword(),
                    remote.keyword()
                )
            };
            return Err(self.err(Some(span), base, message));
        }
        let psk = if needs_psk {
            Some(self.psk(base, rc, warnings)?)
        } else {
            None
        };
        if local == AuthKind::Psk && remote == AuthKind::Eap {
            warnings.push(self.err(
                raw.remote_auth.as_ref().map(Spanned::span),
                format!("{base}.local_auth"),
                "the gateway proves itself with a pre-shared key every EAP user must know: any of them can impersonate it to the others and collect their MSCHAPv2 responses; authenticate the gateway with a certificate",
            ));
        }

        let mut cert = None;
        let local_auth = match (local, &psk) {
            (AuthKind::Psk, Some(k)) => Auth::Psk(k.clone()),
            (AuthKind::Eap, _) => self.eap_client(base, rc)?,
            (AuthKind::EapTls, _) => {
                let lc = self.local_cert(base, rc, warnings)?;
                cert = lc.chain.first().cloned();
                let mut c = oxisec_ike::EapTlsClient {
                    cert: lc,
                    identity: raw.eap_identity.as_ref().map(|i| i.get_ref().clone()),
                    fragment_size: oxisec_ike::eap::tls::DEFAULT_FRAGMENT_SIZE,
                    versions: oxisec_ike::TlsVersions::default(),
                };
                (c.fragment_size, c.versions) = self.eap_tls_tuning(base, raw)?;
                Auth::EapTlsClient(c)
            }
            _ => {
                let lc = self.local_cert(base, rc, warnings)?;
                cert = lc.chain.first().cloned();
                Auth::Cert(lc)
            }
        };
        let remote_auth = match (relay, remote, psk) {
            (Some(Auth::EapRelay(mut r)), _, _) => {
                // Asked by default (Windows' IDi is an address), unless
                // the operator says otherwise.
                if let Some(v) = &raw.eap_ask_identity {
                    r.ask_identity = *v.get_ref();
                }
                Auth::EapRelay(r)
            }
            (Some(other), _, _) => other,
            (None, AuthKind::Psk, Some(k)) => Auth::Psk(k),
            (None, AuthKind::Eap, _) => Auth::Eap(oxisec_ike::EapServer {
                users: self.eap_users(base, raw)?,
                ask_identity: raw.eap_ask_identity.as_ref().is_some_and(|v| *v.get_ref()),
            }),
            (None, AuthKind::EapTls, _) => self.eap_tls_server(base, rc, local, warnings)?,
            _ => Auth::PeerCert(Arc::new(self.trust_store(base, rc, warnings)?)),
        };
        Ok(Creds {
            local: local_auth,
            remote: remote_auth,
            cert,
        })
    }

    /// `remote_auth = "eap-tls"`: the users' certificates must chain to
    /// `ca_certs` (clientAuth EKU unless `remote_eku` says otherwise); our
    /// IKE certificate is the TLS server certificate, so we must
    /// authenticate with one.
    fn eap_tls_server(
        &self,
        base: &str,
        rc: &Spanned<RawConnection>,
        local: AuthKind,
        warnings: &mut Vec<ConfigError>,
    ) -> Result<Auth, ConfigError> {
        let raw = rc.get_ref();
        if local != AuthKind::Cert {
            return Err(self.err(
                raw.remote_auth.as_ref().map(Spanned::span),
                format!("{base}.local_auth"),
                format!(
                    "remote_auth = \"eap-tls\" needs our certificate (local_cert + local_key or local_p12): it is the TLS server certificate; we authenticate with {} here",
                    local.words()
                ),
            ));
        }
        if raw.ca_certs.is_none() {
            return Err(self.err(
                raw.remote_auth.as_ref().map(Spanned::span),
                format!("{base}.ca_certs"),
                "remote_auth = \"eap-tls\" needs ca_certs (the CA certificates the users' certificates must chain to)",
            ));
        }
        let mut store = self.trust_store(base, rc, warnings)?;
        if raw.remote_eku.is_none() {
            let mut policy = store.policy();
            policy.eku = EkuPolicy::Client;
            store.set_policy(policy);
        }
        let mut server = oxisec_ike::EapTlsServer::new(Arc::new(store));
        server.ask_identity = raw.eap_ask_identity.as_ref().is_some_and(|v| *v.get_ref());
        (server.fragment_size, server.versions) = self.eap_tls_tuning(base, raw)?;
        Ok(Auth::EapTls(server))
    }

    /// `eap_tls_fragment_size` and `eap_tls_max_version`, either role.
    fn eap_tls_tuning(
        &self,
        base: &str,
        raw: &RawConnection,
    ) -> Result<(usize, oxisec_ike::TlsVersions), ConfigError> {
        let mut out = (
            oxisec_ike::eap::tls::DEFAULT_FRAGMENT_SIZE,
            oxisec_ike::TlsVersions::default(),
        );
        if let Some(size) = &raw.eap_tls_fragment_size {
            let range = oxisec_ike::eap::tls::FRAGMENT_SIZE_RANGE;
            if !range.contains(size.get_ref()) {
                return Err(self.err(
                    Some(size.span()),
                    format!("{base}.eap_tls_fragment_size"),
                    format!(
                        "{} is out of range: {}..={} octets (default {})",
                        size.get_ref(),
                        range.start(),
                        range.end(),
                        oxisec_ike::eap::tls::DEFAULT_FRAGMENT_SIZE
                    ),
                ));
            }
            out.0 = *size.get_ref();
        }
        if let Some(v) = &raw.eap_tls_max_version {
            out.1 = match v.get_ref().as_str() {
                "1.2" => oxisec_ike::TlsVersions::Tls12,
                "1.3" => oxisec_ike::TlsVersions::Tls12And13,
                other => {
                    return Err(self.err(
                        Some(v.span()),
                        format!("{base}.eap_tls_max_version"),
                        format!("{other:?}: use \"1.2\" or \"1.3\""),
                    ));
                }
            };
        }
        Ok(out)
    }

    /// EAP works one way round: a gateway (responder, `remote_auth =
    /// "eap-mschapv2"`) proves itself with a certificate or PSK and checks
    /// the client's user name and password; a client (`local_auth =
    /// "eap"`, initiating to `remote_addrs`) checks the gateway the same
    /// way and answers with its user name and password. Keys of the other
    /// role, or of no EAP role at all, are mistakes.
    fn check_eap_roles(
        &self,
        base: &str,
        raw: &RawConnection,
        local: AuthKind,
        remote: AuthKind,
    ) -> Result<(), ConfigError> {
        let at = |v: &Option<Spanned<String>>| v.as_ref().map(Spanned::span);
        if local == AuthKind::EapTls
            && (remote != AuthKind::Cert || raw.remote_addrs.is_empty() || raw.pools.is_some())
        {
            return Err(self.err(
                at(&raw.local_auth),
                format!("{base}.local_auth"),
                "local_auth = \"eap-tls\" is for a client that initiates to its gateway (remote_addrs, no pools) and checks the gateway's certificate (remote_auth = \"cert\", ca_certs); a gateway sets remote_auth = \"eap-tls\" for its users",
            ));
        }
        if local == AuthKind::Eap {
            if remote == AuthKind::Eap {
                return Err(self.err(
                    at(&raw.remote_auth),
                    format!("{base}.remote_auth"),
                    "both sides cannot authenticate with EAP: the gateway proves itself with a certificate (remote_auth = \"cert\") or a pre-shared key",
                ));
            }
            if raw.remote_addrs.is_empty() || raw.pools.is_some() {
                return Err(self.err(
                    at(&raw.local_auth),
                    format!("{base}.local_auth"),
                    "local_auth = \"eap\" is for a client that initiates to its gateway (remote_addrs, no pools); a gateway authenticates with \"cert\" or \"psk\" and sets remote_auth = \"eap-mschapv2\" for its users",
                ));
            }
        } else {
            let eap_identity = at(&raw.eap_identity).filter(|_| local != AuthKind::EapTls);
            for (key, span) in [
                ("eap_identity", eap_identity),
                (
                    "eap_password_file",
                    raw.eap_password_file.as_ref().map(Spanned::span),
                ),
            ] {
                if let Some(span) = span {
                    return Err(self.err(
                        Some(span),
                        format!("{base}.{key}"),
                        format!(
                            "only used by an EAP client (local_auth = \"eap\"); we authenticate with {} here: remove this key or set local_auth = \"eap\"",
                            local.words()
                        ),
                    ));
                }
            }
        }
        if remote != AuthKind::EapTls && local != AuthKind::EapTls {
            for (key, span) in [
                (
                    "eap_tls_fragment_size",
                    raw.eap_tls_fragment_size.as_ref().map(Spanned::span),
                ),
                ("eap_tls_max_version", at(&raw.eap_tls_max_version)),
            ] {
                if let Some(span) = span {
                    return Err(self.err(
                        Some(span),
                        format!("{base}.{key}"),
                        format!(
                            "only used with EAP-TLS (remote_auth = \"eap-tls\" on a gateway, local_auth = \"eap-tls\" on a client); the peer authenticates with {} here",
                            remote.words()
                        ),
                    ));
                }
            }
        }
        if remote != AuthKind::Eap
            && remote != AuthKind::EapTls
            && let Some(v) = &raw.eap_ask_identity
        {
            return Err(self.err(
                Some(v.span()),
                format!("{base}.eap_ask_identity"),
                format!(
                    "only used by a gateway whose clients authenticate with EAP (remote_auth = \"eap-mschapv2\" or \"eap-tls\"); the peer authenticates with {} here",
                    remote.words()
                ),
            ));
        }
        Ok(())
    }

    /// `local_auth = "eap"`: the user name and the password from the first
    /// line of `eap_password_file` (private, like every secret file).
    fn eap_client(&self, base: &str, rc: &Spanned<RawConnection>) -> Result<Auth, ConfigError> {
        let raw = rc.get_ref();
        let Some(id) = &raw.eap_identity else {
            return Err(self.err(
                raw.local_auth.as_ref().map(Spanned::span),
                format!("{base}.eap_identity"),
                "local_auth = \"eap\" needs eap_identity (the user name, as in `oxisec user add NAME` on the gateway)",
            ));
        };
        let identity = id.get_ref().trim().to_owned();
        crate::users::check_name(&identity).map_err(|e| {
            self.err(
                Some(id.span()),
                format!("{base}.eap_identity"),
                e.to_string(),
            )
        })?;
        let Some(f) = &raw.eap_password_file else {
            return Err(self.err(
                raw.local_auth.as_ref().map(Spanned::span),
                format!("{base}.eap_password_file"),
                "local_auth = \"eap\" needs eap_password_file (a file with mode 0600 whose first line is the password)",
            ));
        };
        let field = format!("{base}.eap_password_file");
        let data = self.private_file(f, &field)?;
        let first = data.split(|b| *b == b'\n').next().unwrap_or_default();
        let first = first.strip_suffix(b"\r").unwrap_or(first);
        let password = std::str::from_utf8(first)
            .map_err(|_| self.err(Some(f.span()), &field, "the password is not UTF-8"))?;
        crate::users::check_password(password).map_err(|e| {
            self.err(
                Some(f.span()),
                &field,
                format!("{e} (the first line of the file is the password)"),
            )
        })?;
        Ok(Auth::EapClient {
            identity,
            password: Secret::from_slice(password.as_bytes()),
        })
    }

    /// The user database of `[daemon] users_file`, read the first time an
    /// EAP gateway connection needs it.
    fn eap_users(
        &self,
        base: &str,
        raw: &RawConnection,
    ) -> Result<Arc<dyn oxisec_ike::eap::EapUsers>, ConfigError> {
        if let Some(db) = self.users.get() {
            return Ok(db.clone());
        }
        let (path, span) = &self.users_file;
        let (span, field) = match span {
            Some(s) => (Some(s.clone()), "daemon.users_file".to_owned()),
            None => (
                raw.remote_auth.as_ref().map(Spanned::span),
                format!("{base}.remote_auth"),
            ),
        };
        let db = UserDb::load(path).map_err(|e| {
            let hint = match &e {
                crate::users::UsersError::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    " (create it with `oxisec user add NAME`, or set [daemon] users_file)"
                }
                _ => "",
            };
            self.err(
                span.clone(),
                &field,
                format!("EAP user database: {e}{hint}"),
            )
        })?;
        let db = Arc::new(db);
        let _ = self.users.set(db.clone());
        Ok(db)
    }

    /// The method named by `local_auth` or `remote_auth`.
    fn auth_kind(
        &self,
        base: &str,
        key: &str,
        v: Option<&Spanned<String>>,
    ) -> Result<Option<AuthKind>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        match v.get_ref().as_str() {
            "psk" => Ok(Some(AuthKind::Psk)),
            "cert" | "pubkey" => Ok(Some(AuthKind::Cert)),
            "eap" | "eap-mschapv2" => Ok(Some(AuthKind::Eap)),
            "eap-tls" => Ok(Some(AuthKind::EapTls)),
            other => Err(self.err(
                Some(v.span()),
                format!("{base}.{key}"),
                format!(
                    "{other:?} is not an authentication method: use \"psk\", \"cert\", \"eap-mschapv2\" (alias \"eap\") or \"eap-tls\""
                ),
            )),
        }
    }

    /// Our certificate chain and key, from `local_cert` + `local_key` or
    /// from `local_p12`.
    fn local_cert(
        &self,
        base: &str,
        rc: &Spanned<RawConnection>,
        warnings: &mut Vec<ConfigError>,
    ) -> Result<LocalCert, ConfigError> {
        let raw = rc.get_ref();
        let send = match &raw.send_cert {
            None => SendCert::default(),
            Some(s) => match s.get_ref().as_str() {
                "always" => SendCert::Always,
                "ifasked" => SendCert::IfAsked,
                "never" => SendCert::Never,
                other => {
                    return Err(self.err(
                        Some(s.span()),
                        format!("{base}.send_cert"),
                        format!("{other:?}: use \"always\", \"ifasked\" or \"never\""),
                    ));
                }
            },
        };
        let (key, chain, span, field) = match (&raw.local_cert, &raw.local_p12) {
            (Some(_), Some(p)) => {
                return Err(self.err(
                    Some(p.span()),
                    format!("{base}.local_p12"),
                    "set either local_cert (with local_key) or local_p12, not both",
                ));
            }
            (None, None) => {
                return Err(self.err(
                    Some(rc.span()),
                    base,
                    "local_auth = \"cert\" needs local_cert and local_key, or local_p12",
                ));
            }
            (Some(c), None) => {
                if let Some(p) = &raw.local_p12_passphrase_file {
                    return Err(self.err(
                        Some(p.span()),
                        format!("{base}.local_p12_passphrase_file"),
                        "only used with local_p12",
                    ));
                }
                let field = format!("{base}.local_cert");
                let data = self.read_bounded(c, &field, MAX_CERT_FILE)?;
                let chain = Certificate::from_pem_or_der(&data)
                    .map_err(|e| self.err(Some(c.span()), &field, e.to_string()))?;
                let Some(k) = &raw.local_key else {
                    return Err(self.err(
                        Some(c.span()),
                        format!("{base}.local_key"),
                        "local_cert needs local_key (the private key, mode 0600)",
                    ));
                };
                let kfield = format!("{base}.local_key");
                let pass = match &raw.local_key_passphrase_file {
                    Some(p) => {
                        Some(self.secret_file(p, &format!("{base}.local_key_passphrase_file"))?)
                    }
                    None => None,
                };
                let kdata = self.private_file(k, &kfield)?;
                let key = PrivateKey::from_bytes(&kdata, pass.as_ref().map(|p| p.as_slice()))
                    .map_err(|e| {
                        let hint = match (&e, &pass) {
                            (KeyError::Decrypt, None) => {
                                " (the key is encrypted: set local_key_passphrase_file)"
                            }
                            _ => "",
                        };
                        self.err(Some(k.span()), &kfield, format!("{e}{hint}"))
                    })?;
                (key, chain, c.span(), field)
            }
            (None, Some(p)) => {
                for (key, v) in [
                    ("local_key", raw.local_key.as_ref()),
                    (
                        "local_key_passphrase_file",
                        raw.local_key_passphrase_file.as_ref(),
                    ),
                ] {
                    if let Some(v) = v {
                        return Err(self.err(
                            Some(v.span()),
                            format!("{base}.{key}"),
                            "the key comes from local_p12; remove this key",
                        ));
                    }
                }
                let field = format!("{base}.local_p12");
                let pass = match &raw.local_p12_passphrase_file {
                    Some(f) => self.secret_file(f, &format!("{base}.local_p12_passphrase_file"))?,
                    None => Zeroizing::new(Vec::new()),
                };
                let data = self.private_file(p, &field)?;
                let (key, mut chain) = oxisec_pki::load_pkcs12(&data, &pass).map_err(|e| {
                    let hint = match (&e, &raw.local_p12_passphrase_file) {
                        (KeyError::Decrypt, None) => " (set local_p12_passphrase_file)",
                        _ => "",
                    };
                    self.err(Some(p.span()), &field, format!("{e}{hint}"))
                })?;
                // The CA certificate a bundle carries is not sent: the peer
                // has it as its trust anchor.
                let own = chain.remove(0);
                chain.retain(|c| !(c.is_ca() && c.subject_der() == c.issuer_der()));
                chain.insert(0, own);
                (key, chain, p.span(), field)
            }
        };
        let Some(ee) = chain.first() else {
            return Err(self.err(Some(span), field, "no certificate in the file"));
        };
        if !same_public_key(&key.public_key_der(), ee.spki_der()) {
            return Err(self.err(
                Some(span),
                field,
                format!(
                    "the private key does not belong to the certificate {} (its public key differs)",
                    ee.subject()
                ),
            ));
        }
        let now = SystemTime::now();
        if ee.not_after() < now {
            warnings.push(self.err(
                Some(span.clone()),
                &field,
                format!(
                    "certificate {} expired on {}: peers will reject it",
                    ee.subject(),
                    fmt_date(ee.not_after())
                ),
            ));
        } else if ee.not_after() < now + CERT_EXPIRY_WARNING {
            warnings.push(self.err(
                Some(span.clone()),
                &field,
                format!(
                    "certificate {} expires on {}: renew it",
                    ee.subject(),
                    fmt_date(ee.not_after())
                ),
            ));
        } else if ee.not_before() > now {
            warnings.push(self.err(
                Some(span.clone()),
                &field,
                format!(
                    "certificate {} is not valid before {}",
                    ee.subject(),
                    fmt_date(ee.not_before())
                ),
            ));
        }
        Ok(LocalCert {
            key: Arc::new(key),
            chain,
            send,
        })
    }

    /// The trust anchors, CRL files and validation policy for the peer.
    fn trust_store(
        &self,
        base: &str,
        rc: &Spanned<RawConnection>,
        warnings: &mut Vec<ConfigError>,
    ) -> Result<TrustStore, ConfigError> {
        let raw = rc.get_ref();
        let Some(cas) = &raw.ca_certs else {
            return Err(self.err(
                Some(rc.span()),
                base,
                "remote_auth = \"cert\" needs ca_certs (the CA certificates peers' certificates must chain to)",
            ));
        };
        if cas.get_ref().is_empty() {
            return Err(self.err(
                Some(cas.span()),
                format!("{base}.ca_certs"),
                "empty list: name at least one CA certificate file",
            ));
        }
        let revocation = match &raw.revocation {
            None => RevocationPolicy::default(),
            Some(r) => match r.get_ref().as_str() {
                "strict" => RevocationPolicy::Strict,
                "ifuri" => RevocationPolicy::IfUri,
                "relaxed" => RevocationPolicy::Relaxed,
                other => {
                    return Err(self.err(
                        Some(r.span()),
                        format!("{base}.revocation"),
                        format!("{other:?}: use \"strict\", \"ifuri\" or \"relaxed\""),
                    ));
                }
            },
        };
        let eku = match &raw.remote_eku {
            // We initiate to a gateway; a responder may hear from gateways
            // (serverAuth) and from remote-access clients (clientAuth).
            None if raw.remote_addrs.is_empty() => EkuPolicy::Any,
            None => EkuPolicy::Gateway,
            Some(e) => match e.get_ref().as_str() {
                "gateway" | "server" => EkuPolicy::Gateway,
                "client" => EkuPolicy::Client,
                "any" => EkuPolicy::Any,
                other => {
                    return Err(self.err(
                        Some(e.span()),
                        format!("{base}.remote_eku"),
                        format!("{other:?}: use \"gateway\", \"client\" or \"any\""),
                    ));
                }
            },
        };
        let policy = ValidationPolicy {
            eku,
            revocation,
            ..ValidationPolicy::default()
        };
        let mut store = TrustStore::new(Vec::new(), policy);
        for (i, f) in cas.get_ref().iter().enumerate() {
            let field = format!("{base}.ca_certs[{i}]");
            let data = self.read_bounded(f, &field, MAX_CERT_FILE)?;
            let certs = Certificate::from_pem_or_der(&data)
                .map_err(|e| self.err(Some(f.span()), &field, e.to_string()))?;
            for c in certs {
                if !c.is_ca() {
                    warnings.push(self.err(
                        Some(f.span()),
                        &field,
                        format!(
                            "{} is not a CA certificate; it is trusted as given (pinned), but usually this names the CA",
                            c.subject()
                        ),
                    ));
                }
                store
                    .add_anchor(c)
                    .map_err(|e| self.err(Some(f.span()), &field, e.to_string()))?;
            }
        }
        if let Some(crls) = &raw.crls {
            for (i, f) in crls.get_ref().iter().enumerate() {
                let field = format!("{base}.crls[{i}]");
                let data = self.read_bounded(f, &field, oxisec_pki::MAX_CRL_SIZE as u64)?;
                store
                    .add_crl(&data)
                    .map_err(|e| self.err(Some(f.span()), &field, e.to_string()))?;
                if let Ok(ders) = crl_ders(&data) {
                    for s in ders.iter().filter_map(|d| crl_summary(d).ok()) {
                        if s.next_update.is_some_and(|t| t < SystemTime::now()) {
                            warnings.push(self.err(
                                Some(f.span()),
                                &field,
                                format!(
                                    "the CRL of {} is out of date (next update was due {}); certificates it covers will fail unless revocation = \"relaxed\" or a newer CRL is fetched",
                                    s.issuer,
                                    s.next_update.map(fmt_date).unwrap_or_default()
                                ),
                            ));
                        }
                    }
                }
            }
        }
        store.set_crl_cache(self.crl_cache.clone());
        Ok(store)
    }

    /// One warning per legacy transform a proposal names: the admin asked
    /// for it explicitly, so it is honoured, but never silently.
    fn warn_legacy(
        &self,
        legacy: Vec<String>,
        span: Range<usize>,
        field: &str,
        warnings: &mut Vec<ConfigError>,
    ) {
        for what in legacy {
            warnings.push(self.err(
                Some(span.clone()),
                field,
                format!("{what}; keep it only for peers that offer nothing better"),
            ));
        }
    }

    fn child(
        &self,
        base: &str,
        n: &String,
        rc: &Spanned<RawChild>,
        warnings: &mut Vec<ConfigError>,
    ) -> Result<ChildConfig, ConfigError> {
        let base = format!("{base}.children.{n}");
        if !valid_name(n) {
            return Err(self.err(
                Some(rc.span()),
                &base,
                format!("invalid child name {n:?}: use letters, digits, -, _ and . (at most 64)"),
            ));
        }
        let raw = rc.get_ref();
        let local_ts = self.selectors(&base, "local_ts", &raw.local_ts)?;
        let remote_ts = self.selectors(&base, "remote_ts", &raw.remote_ts)?;
        // "dynamic" (an empty list) takes the family of the address it
        // stands for, which is not known here.
        let common_family = local_ts.is_empty()
            || remote_ts.is_empty()
            || local_ts.iter().any(|l| {
                remote_ts
                    .iter()
                    .any(|r| l.start.is_ipv4() == r.start.is_ipv4())
            });
        if !common_family {
            return Err(self.err(
                Some(raw.remote_ts.span()),
                format!("{base}.remote_ts"),
                "local_ts and remote_ts share no address family (IPv4 vs IPv6): no packet could match",
            ));
        }
        let esp_proposals = match &raw.esp_proposals {
            None => EspProposal::defaults(),
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(self.err(
                        Some(list.span()),
                        format!("{base}.esp_proposals"),
                        "empty list; remove the key for the defaults",
                    ));
                }
                let mut out = Vec::new();
                for (i, p) in list.get_ref().iter().enumerate() {
                    let field = format!("{base}.esp_proposals[{i}]");
                    let proposal = EspProposal::parse(p.get_ref())
                        .map_err(|e| self.err(Some(p.span()), &field, e.to_string()))?;
                    self.warn_legacy(proposal.legacy(), p.span(), &field, warnings);
                    out.push(proposal);
                }
                out
            }
        };
        let start_action = match &raw.start_action {
            None => StartAction::None,
            Some(s) => {
                match s.get_ref().as_str() {
                    "start" => StartAction::Start,
                    // The daemon keeps the trap (see `policy`); the engine
                    // initiates when told to.
                    "none" | "trap" => StartAction::None,
                    other => {
                        let hint = if other == "route" {
                            " (\"trap\" is the name of traffic-triggered start)"
                        } else {
                            ""
                        };
                        return Err(self.err(
                        Some(s.span()),
                        format!("{base}.start_action"),
                        format!("unknown start action {other:?}: expected \"start\", \"trap\" or \"none\"{hint}"),
                    ));
                    }
                }
            }
        };
        let (mode, mode_required) = self.child_mode(&base, raw.mode.as_ref())?;
        // Transport mode is host to host (RFC 4303 §3.1.1). Like strongSwan,
        // "transport" with subnets falls back to tunnel mode when
        // negotiated (the engine logs it); "transport_only" could never
        // come up with them, so that is a mistake in the file.
        if mode_required
            && let Some(ts) = local_ts
                .iter()
                .chain(remote_ts.iter())
                .find(|t| t.start != t.end)
        {
            return Err(self.err(
                raw.mode.as_ref().map(|m| m.span()),
                format!("{base}.mode"),
                format!(
                    "mode = \"transport_only\" needs host-to-host selectors (\"dynamic\" or single addresses), not {ts}: transport mode protects the traffic between the two hosts themselves"
                ),
            ));
        }
        let replay_window = self.replay_window(&base, raw.replay_window.as_ref())?;
        Ok(ChildConfig {
            name: n.clone(),
            local_ts,
            remote_ts,
            esp_proposals,
            start_action,
            lifetime: self.child_lifetime(&base, raw)?,
            mode,
            mode_required,
            replay_window,
        })
    }

    /// [modes] `mode`: "tunnel" (default), "transport" (host to host; falls
    /// back to tunnel when the peer or the selectors do not allow it, as
    /// strongSwan does) or "transport_only" (the child fails instead).
    fn child_mode(
        &self,
        base: &str,
        v: Option<&Spanned<String>>,
    ) -> Result<(ChildMode, bool), ConfigError> {
        let Some(v) = v else {
            return Ok((ChildMode::Tunnel, false));
        };
        match v.get_ref().as_str() {
            "tunnel" => Ok((ChildMode::Tunnel, false)),
            // The daemon routes the peer's own address into the TUN device
            // with an exemption for its IKE/ESP (daemon/transport.rs).
            "transport" => Ok((ChildMode::Transport, false)),
            "transport_only" => Ok((ChildMode::Transport, true)),
            other => Err(self.err(
                Some(v.span()),
                format!("{base}.mode"),
                format!(
                    "unknown mode {other:?}: expected \"tunnel\", \"transport\" or \"transport_only\""
                ),
            )),
        }
    }

    /// [modes] `replay_window` in packets. Unlike strongSwan, 0 (no replay
    /// protection) is refused: RFC 4303 §3.4.3 lets a receiver turn the
    /// check off, but nothing here needs that and it hides attacks.
    fn replay_window(&self, base: &str, v: Option<&Spanned<u32>>) -> Result<u32, ConfigError> {
        let Some(v) = v else {
            return Ok(oxisec_ike::config::DEFAULT_REPLAY_WINDOW);
        };
        let n = *v.get_ref();
        let max = oxisec_esp::replay::MAX_WINDOW;
        if n == 0 || n > max {
            return Err(self.err(
                Some(v.span()),
                format!("{base}.replay_window"),
                format!("replay_window must be 1..={max} packets, not {n}"),
            ));
        }
        Ok(n)
    }

    fn selectors(
        &self,
        base: &str,
        key: &str,
        list: &Spanned<Vec<Spanned<String>>>,
    ) -> Result<Vec<TsRange>, ConfigError> {
        if list.get_ref().is_empty() {
            return Err(self.err(
                Some(list.span()),
                format!("{base}.{key}"),
                "at least one traffic selector (subnet) is required",
            ));
        }
        if list
            .get_ref()
            .iter()
            .any(|s| s.get_ref().trim() == remote::DYNAMIC)
        {
            if list.get_ref().len() > 1 {
                return Err(self.err(
                    Some(list.span()),
                    format!("{base}.{key}"),
                    "\"dynamic\" (the own address or virtual IP) stands alone in the list",
                ));
            }
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (i, s) in list.get_ref().iter().enumerate() {
            let ts: TsRange = s
                .get_ref()
                .parse()
                .map_err(|e: oxisec_ike::ts::TsParseError| {
                    self.err(Some(s.span()), format!("{base}.{key}[{i}]"), e.to_string())
                })?;
            if !out.contains(&ts) {
                out.push(ts);
            }
        }
        Ok(out)
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The source address the kernel would pick towards `remote`: a connected
/// UDP socket sends nothing but has its local address chosen by routing.
fn route_source(remote: IpAddr) -> Option<IpAddr> {
    let bind: std::net::SocketAddr = if remote.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let s = UdpSocket::bind(bind).ok()?;
    s.connect((remote, 500)).ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// For serde's `unknown field `x`, expected one of `a`, `b`` messages: the
/// closest expected names.
fn unknown_field_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let best = expected
        .iter()
        .map(|e| (edit_distance(field, e), *e))
        .filter(|(d, e)| *d <= 2.max(e.len() / 3))
        .min()?;
    Some(format!(" (did you mean {}?)", best.1))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A human summary for `oxisec check-config`.
pub fn summary(loaded: &Loaded) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let d = &loaded.daemon;
    let r = &loaded.ike.retransmit;
    let _ = writeln!(
        s,
        "daemon: socket {}, tun {} (mtu {}), log level {}, retransmit {:.1}s x{} (base {})",
        d.socket.display(),
        d.tun,
        d.mtu,
        d.log_level,
        r.timeout.as_secs_f64(),
        r.tries,
        r.base
    );
    let ike = &loaded.ike;
    let nat = if ike.nat_keepalive.0.is_zero() {
        "off".to_string()
    } else {
        format!("{}s", ike.nat_keepalive.0.as_secs())
    };
    let frag = if ike.fragmentation.enabled {
        format!("on ({} bytes)", ike.fragmentation.size)
    } else {
        "off".to_string()
    };
    let limit = |n: usize| {
        if n == 0 {
            "no limit".to_string()
        } else {
            n.to_string()
        }
    };
    let _ = writeln!(
        s,
        "ike: nat keepalive {nat}, fragmentation {frag}, cookies from {} half-open SAs, per address {}, in total {}",
        ike.dos.cookie_threshold,
        limit(ike.dos.block_threshold),
        limit(ike.dos.half_open_limit)
    );
    if loaded
        .ike
        .connections
        .iter()
        .any(|c| matches!(c.remote_auth, Auth::Eap(_)))
    {
        let _ = writeln!(s, "eap users: {}", d.users_file.display());
    }
    for c in &loaded.ike.connections {
        let addrs = |v: &[IpAddr]| {
            if v.is_empty() {
                "%any".to_string()
            } else {
                v.iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        let _ = writeln!(s, "connection {}:", c.name);
        let _ = writeln!(
            s,
            "  {} ({}) <-> {} ({}), port {}",
            addrs(&c.local_addrs),
            c.local_id,
            addrs(&c.remote_addrs),
            c.remote_id
                .as_ref()
                .map_or("any identity".to_string(), |i| i.to_string()),
            c.remote_port
        );
        let _ = writeln!(
            s,
            "  auth: local {}, remote {}, {}",
            auth_text(&c.local_auth),
            auth_text(&c.remote_auth),
            if c.force_encap {
                "ESP in UDP always (encap)"
            } else {
                "raw ESP, in UDP behind a NAT"
            }
        );
        for p in &c.ike_proposals {
            let _ = writeln!(s, "  ike: {p}");
        }
        for ch in &c.children {
            let ts = |v: &[TsRange]| {
                v.iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                s,
                "  child {}: {} === {} (start: {})",
                ch.name,
                ts(&ch.local_ts),
                ts(&ch.remote_ts),
                match ch.start_action {
                    StartAction::Start => "start",
                    StartAction::None => "none",
                }
            );
            for p in &ch.esp_proposals {
                let _ = writeln!(s, "    esp: {p}");
            }
        }
    }
    s
}

/// One connection side's credential in words, for `check-config`.
fn auth_text(a: &Auth) -> String {
    match a {
        Auth::Psk(_) => "pre-shared key".to_owned(),
        Auth::Cert(c) => match c.chain.first() {
            Some(ee) => format!(
                "certificate {} ({}, until {})",
                ee.subject(),
                c.key.algorithm(),
                fmt_date(ee.not_after())
            ),
            None => "certificate".to_owned(),
        },
        Auth::PeerCert(t) => {
            let cas: Vec<String> = t.anchors().iter().map(|c| c.subject()).collect();
            let p = t.policy();
            format!(
                "certificate from CA {} (EKU {:?}, revocation {:?})",
                cas.join(" or "),
                p.eku,
                p.revocation
            )
        }
        Auth::EapTls(e) => {
            let cas: Vec<String> = e.trust.anchors().iter().map(|c| c.subject()).collect();
            let p = e.trust.policy();
            format!(
                "EAP-TLS: client certificate from CA {} (EKU {:?}, revocation {:?}; TLS {:?}, fragments of {} octets){}",
                cas.join(" or "),
                p.eku,
                p.revocation,
                e.versions,
                e.fragment_size,
                if e.ask_identity {
                    ", identity asked for with EAP-Identity"
                } else {
                    ", the IKE identity must be in the certificate"
                }
            )
        }
        Auth::Eap(e) => format!(
            "EAP-MSCHAPv2 user name and password from the users file{}",
            if e.ask_identity {
                ", asked for with EAP-Identity"
            } else {
                " (the IKE identity is the user name)"
            }
        ),
        Auth::EapRelay(_) => "EAP through the RADIUS server".to_owned(),
        Auth::EapClient { identity, .. } => {
            format!("EAP-MSCHAPv2 as {identity}")
        }
        Auth::EapTlsClient(c) => match c.cert.chain.first() {
            Some(ee) => format!("EAP-TLS with certificate {}", ee.subject()),
            None => "EAP-TLS".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeResolver;
    impl Resolver for FakeResolver {
        fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, String> {
            match host {
                "gw-b.example.com" => Ok(vec![
                    "192.0.2.2".parse().unwrap(),
                    "2001:db8::2".parse().unwrap(),
                ]),
                _ => Err(format!("cannot resolve host name {host:?}: not found")),
            }
        }
    }

    fn parse_str(text: &str) -> Result<Loaded, ConfigError> {
        parse(text, Path::new("site-a.toml"), &FakeResolver)
    }

    fn err(text: &str) -> String {
        parse_str(text).unwrap_err().to_string()
    }

    const VALID: &str = r#"
[daemon]
socket = "/run/test/oxisec.sock"
tun = "ox1"
log_level = "debug"
retransmit_timeout = 2
retransmit_base = 1.5
retransmit_tries = 3

[connections.site-b]
local_addrs = ["192.0.2.1"]
remote_addrs = ["gw-b.example.com"]
local_id = "gw-a.example.com"
remote_id = "gw-b.example.com"
psk = "a long random secret, really long"
ike_proposals = ["aes128gcm16-prfsha256-x25519", "aes256-sha384-ecp384"]
encap = true

[connections.site-b.children.lan]
local_ts = ["198.51.100.0/24"]
remote_ts = ["203.0.113.0/24", "2001:db8:1::/48"]
esp_proposals = ["aes128gcm16"]
start_action = "start"

[connections.site-b.children.dmz]
local_ts = ["198.51.100.128/25[tcp/443]"]
remote_ts = ["203.0.113.7"]
mode = "tunnel"
replay_window = 65536

[connections.roadside]
psk = "another long random secret!"
local_id = "@gw-a"

[connections.roadside.children.any]
local_ts = ["0.0.0.0/0"]
remote_ts = ["0.0.0.0/0"]
"#;

    #[test]
    fn accepts_a_full_valid_config() {
        let l = parse_str(VALID).unwrap();
        assert_eq!(l.daemon.socket, PathBuf::from("/run/test/oxisec.sock"));
        assert_eq!(l.daemon.tun, "ox1");
        assert_eq!(l.daemon.log_level, "debug");
        assert_eq!(l.ike.retransmit.timeout, Duration::from_secs(2));
        assert_eq!(l.ike.retransmit.base, 1.5);
        assert_eq!(l.ike.retransmit.tries, 3);
        assert_eq!(l.ike.connections.len(), 2);
        let c = &l.ike.connections[0];
        assert_eq!(c.name, "site-b");
        assert_eq!(c.local_addrs, vec!["192.0.2.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            c.remote_addrs,
            vec![
                "192.0.2.2".parse::<IpAddr>().unwrap(),
                "2001:db8::2".parse::<IpAddr>().unwrap()
            ]
        );
        assert_eq!(c.remote_port, 500);
        assert_eq!(c.local_id, Identity::Fqdn("gw-a.example.com".into()));
        assert_eq!(c.remote_id, Some(Identity::Fqdn("gw-b.example.com".into())));
        match &c.local_auth {
            Auth::Psk(s) => assert_eq!(s.as_bytes(), b"a long random secret, really long"),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.ike_proposals.len(), 2);
        assert_eq!(
            c.ike_proposals[0],
            IkeProposal::parse("aes128gcm16-prfsha256-x25519").unwrap()
        );
        assert!(c.force_encap);
        // The second connection says nothing: raw ESP unless a NAT is seen.
        assert!(!l.ike.connections[1].force_encap);
        for (text, force) in [("encap = false", false), ("encap = true", true)] {
            let l = parse_str(&VALID.replace("encap = true", text)).unwrap();
            assert_eq!(l.ike.connections[0].force_encap, force, "{text}");
        }
        let lan = &c.children[0];
        assert_eq!(lan.name, "lan");
        assert_eq!(lan.start_action, StartAction::Start);
        assert_eq!(lan.remote_ts.len(), 2);
        // [modes] defaults.
        assert_eq!((lan.mode, lan.mode_required), (ChildMode::Tunnel, false));
        assert_eq!(lan.replay_window, 4096);
        assert_eq!(
            lan.esp_proposals,
            vec![EspProposal::parse("aes128gcm16").unwrap()]
        );
        let dmz = &c.children[1];
        assert_eq!(dmz.start_action, StartAction::None);
        assert_eq!((dmz.mode, dmz.replay_window), (ChildMode::Tunnel, 65536));
        assert_eq!(dmz.esp_proposals, EspProposal::defaults());
        assert_eq!(dmz.local_ts[0].to_string(), "198.51.100.128/25[6/443]");
        let r = &l.ike.connections[1];
        assert_eq!(r.name, "roadside");
        assert!(r.remote_addrs.is_empty());
        assert_eq!(r.remote_id, None);
        assert_eq!(r.ike_proposals, IkeProposal::defaults());
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let s = summary(&l);
        assert!(
            s.contains(
                "child lan: 198.51.100.0/24 === 203.0.113.0/24, 2001:db8:1::/48 (start: start)"
            ),
            "{s}"
        );
    }

    #[test]
    fn accepts_swanctl_name_for_ike_proposals() {
        let l = parse_str("[connections.b]\nlocal_id = \"@a\"\npsk = \"0123456789abcdefghijkl\"\nproposals = [\"aes256gcm16-prfsha384-ecp384\"]\n").unwrap();
        assert_eq!(
            l.ike.connections[0].ike_proposals,
            vec![IkeProposal::parse("aes256gcm16-prfsha384-ecp384").unwrap()]
        );
    }

    #[test]
    fn defaults_apply_to_a_minimal_config() {
        let l = parse_str(
            "[connections.b]\nlocal_addrs = [\"192.0.2.1\"]\nremote_addrs = [\"192.0.2.2\"]\npsk = \"0123456789abcdefghijkl\"\n[connections.b.children.c]\nlocal_ts = [\"10.1.0.0/16\"]\nremote_ts = [\"10.2.0.0/16\"]\n",
        )
        .unwrap();
        assert_eq!(l.daemon, DaemonConfig::default());
        assert_eq!(l.ike.retransmit, RetransmitConfig::default());
        let c = &l.ike.connections[0];
        assert_eq!(c.local_id, Identity::Ipv4("192.0.2.1".parse().unwrap()));
        assert_eq!(c.children[0].start_action, StartAction::None);
    }

    #[test]
    fn keeps_connections_in_file_order() {
        let text = "[connections.zz]\npsk = \"0123456789abcdefghijkl\"\nlocal_id = \"@a\"\n[connections.aa]\npsk = \"0123456789abcdefghijkl\"\nlocal_id = \"@a\"\n";
        let l = parse_str(text).unwrap();
        let names: Vec<_> = l.ike.connections.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["zz", "aa"]);
    }

    #[test]
    fn rejects_misspelled_algorithm_with_file_line_field() {
        let text = VALID.replace("aes256-sha384-ecp384", "aes256-sha384-prfsha265-ecp384");
        let line = text.lines().position(|l| l.contains("prfsha265")).unwrap() + 1;
        let e = err(&text);
        assert!(
            e.starts_with(&format!(
                "site-a.toml:{line}: connections.site-b.ike_proposals[1]: unknown algorithm keyword \"prfsha265\" (did you mean prfsha256"
            )),
            "{e}"
        );
    }

    #[test]
    fn rejects_bad_traffic_selector() {
        let text = VALID.replace("\"203.0.113.7\"", "\"203.0.113.0/33\"");
        let line = text.lines().position(|l| l.contains("/33")).unwrap() + 1;
        let e = err(&text);
        assert!(
            e.starts_with(&format!("site-a.toml:{line}: connections.site-b.children.dmz.remote_ts[0]: invalid traffic selector \"203.0.113.0/33\"")),
            "{e}"
        );
    }

    #[test]
    fn rejects_bad_esp_proposal_and_identity() {
        let text = VALID.replace(
            "esp_proposals = [\"aes128gcm16\"]",
            "esp_proposals = [\"aes128gcm16-prfsha256\"]",
        );
        assert!(
            err(&text).contains("connections.site-b.children.lan.esp_proposals[0]: ESP proposal")
        );
        let text = VALID.replace("remote_id = \"gw-b.example.com\"", "remote_id = \"a b\"");
        let line = text.lines().position(|l| l.contains("\"a b\"")).unwrap() + 1;
        assert!(err(&text).starts_with(&format!(
            "site-a.toml:{line}: connections.site-b.remote_id: invalid identity"
        )));
    }

    #[test]
    fn rejects_unknown_field_with_suggestion() {
        let text = VALID.replace(
            "remote_ts = [\"203.0.113.7\"]",
            "remote_tss = [\"203.0.113.7\"]",
        );
        let line = text.lines().position(|l| l.contains("remote_tss")).unwrap() + 1;
        let e = err(&text);
        assert!(
            e.starts_with(&format!(
                "site-a.toml:{line}: connections.site-b.children.dmz"
            )),
            "{e}"
        );
        assert!(e.contains("unknown field `remote_tss`"), "{e}");
        assert!(e.ends_with("(did you mean remote_ts?)"), "{e}");
        let e = err("[deamon]\n");
        assert!(e.starts_with("site-a.toml:1: "), "{e}");
        assert!(e.contains("(did you mean daemon?)"), "{e}");
    }

    #[test]
    fn rejects_wrong_types_with_the_path() {
        let e = err("[daemon]\nretransmit_tries = \"five\"\n");
        assert!(
            e.starts_with("site-a.toml:2: daemon.retransmit_tries: "),
            "{e}"
        );
        let text = VALID.replace(
            "remote_addrs = [\"gw-b.example.com\"]",
            "remote_addrs = \"gw-b.example.com\"",
        );
        let line = text
            .lines()
            .position(|l| l.contains("remote_addrs"))
            .unwrap()
            + 1;
        let e = err(&text);
        assert!(
            e.starts_with(&format!(
                "site-a.toml:{line}: connections.site-b.remote_addrs: "
            )),
            "{e}"
        );
    }

    #[test]
    fn rejects_syntax_errors_with_the_line() {
        let e = err("[daemon]\nsocket = \"/x\"\ntun = oxisec0\n");
        assert!(e.starts_with("site-a.toml:3: "), "{e}");
    }

    #[test]
    fn rejects_missing_and_double_credentials() {
        let text = VALID.replace("psk = \"another long random secret!\"\n", "");
        let e = err(&text);
        assert!(
            e.contains("connections.roadside: no credential: set psk or psk_file"),
            "{e}"
        );
        let text = VALID.replace(
            "psk = \"another long random secret!\"",
            "psk = \"another long random secret!\"\npsk_file = \"x.psk\"",
        );
        let line = text.lines().position(|l| l.contains("psk_file")).unwrap() + 1;
        assert_eq!(
            err(&text),
            format!(
                "site-a.toml:{line}: connections.roadside.psk_file: set either psk or psk_file, not both"
            )
        );
    }

    #[test]
    fn warns_about_short_psk() {
        let text = VALID.replace("another long random secret!", "short");
        let line = text.lines().position(|l| l.contains("\"short\"")).unwrap() + 1;
        let l = parse_str(&text).unwrap();
        assert_eq!(l.warnings.len(), 1);
        let w = l.warnings[0].to_string();
        assert!(w.starts_with(&format!("site-a.toml:{line}: connections.roadside.psk: the pre-shared key is only 5 characters")), "{w}");
    }

    #[test]
    fn warns_about_each_legacy_transform_and_refuses_prohibited_ones() {
        let text = VALID
            .replace(
                "\"aes256-sha384-ecp384\"",
                "\"aes256-sha384-ecp384\", \"3des-sha256-modp1024\"",
            )
            .replace(
                "esp_proposals = [\"aes128gcm16\"]",
                "esp_proposals = [\"aes128-sha1\"]",
            );
        let l = parse_str(&text).unwrap();
        let w: Vec<String> = l.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(w.len(), 3, "{w:?}");
        let ike_line = text.lines().position(|l| l.contains("3des")).unwrap() + 1;
        assert!(
            w[0].starts_with(&format!(
                "site-a.toml:{ike_line}: connections.site-b.ike_proposals[2]: 3DES: legacy"
            )),
            "{}",
            w[0]
        );
        assert!(
            w[1].contains("ike_proposals[2]: MODP_1024: legacy"),
            "{}",
            w[1]
        );
        assert!(
            w[2].contains("children.lan.esp_proposals[0]: HMAC_SHA1_96: legacy"),
            "{}",
            w[2]
        );

        let text = VALID.replace(
            "esp_proposals = [\"aes128gcm16\"]",
            "esp_proposals = [\"des-md5\"]",
        );
        let e = err(&text);
        assert!(
            e.contains(
                "esp_proposals[0]: algorithm keyword \"des\" is not supported: DES is prohibited"
            ),
            "{e}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn psk_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("oxisec-cfg-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("b.psk");
        std::fs::write(&key, "a secret from a file, long enough\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = "[connections.b]\nlocal_id = \"@a\"\npsk_file = \"b.psk\"\n";
        let origin = dir.join("site-a.toml");
        let e = parse(text, &origin, &FakeResolver).unwrap_err().to_string();
        assert!(e.contains(":3: connections.b.psk_file: "), "{e}");
        assert!(e.contains("mode 0644"), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let l = parse(text, &origin, &FakeResolver).unwrap();
        match &l.ike.connections[0].local_auth {
            Auth::Psk(s) => assert_eq!(s.as_bytes(), b"a secret from a file, long enough"),
            other => panic!("{other:?}"),
        }
        // And the inline-psk permission warning of `load`.
        let cfg = dir.join("inline.toml");
        std::fs::write(&cfg, VALID.replace("gw-b.example.com\"]", "192.0.2.2\"]")).unwrap();
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
        let l = load(&cfg).unwrap();
        assert!(
            l.warnings
                .iter()
                .any(|w| w.message.contains("readable by group/others"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A directory with a users file (alice, and the disabled bob) and a
    /// client password file, both 0600.
    #[cfg(unix)]
    fn eap_fixture(tag: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("oxisec-cfg-eap-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut db = UserDb::new();
        db.add("alice", "correct horse", &[]).unwrap();
        db.add("bob", "battery staple", &[]).unwrap();
        db.set_disabled("bob", true).unwrap();
        db.save(&dir.join("users.toml")).unwrap();
        let pw = dir.join("alice.password");
        std::fs::write(&pw, "correct horse\nnot the password\n").unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        dir
    }

    #[cfg(unix)]
    fn eap_gateway(dir: &Path, extra: &str) -> String {
        format!(
            "[daemon]\nusers_file = \"{}\"\n\n[connections.rw]\nlocal_id = \"vpn.example.com\"\npsk = \"0123456789abcdefghijkl\"\nremote_auth = \"eap-mschapv2\"\n{extra}\n[connections.rw.children.net]\nlocal_ts = [\"10.1.0.0/16\"]\nremote_ts = [\"dynamic\"]\n",
            dir.join("users.toml").display()
        )
    }

    #[cfg(unix)]
    #[test]
    fn accepts_an_eap_gateway_with_its_users_file() {
        let dir = eap_fixture("gw");
        let text = eap_gateway(&dir, "eap_ask_identity = true\n")
            + "[connections.rw2]\nlocal_id = \"vpn2.example.com\"\npsk = \"0123456789abcdefghijkl\"\nremote_auth = \"eap\"\n";
        let l = parse(&text, &dir.join("gw.toml"), &FakeResolver).unwrap();
        assert_eq!(l.daemon.users_file, dir.join("users.toml"));
        assert_eq!(l.warnings.len(), 3, "{:?}", l.warnings);
        assert!(
            l.warnings[0]
                .to_string()
                .contains("gw.toml:7: connections.rw.local_auth: the gateway proves itself with a pre-shared key every EAP user must know"),
            "{:?}",
            l.warnings
        );
        let Auth::Eap(rw) = &l.ike.connections[0].remote_auth else {
            panic!("{:?}", l.ike.connections[0].remote_auth)
        };
        assert!(rw.ask_identity);
        let Auth::Eap(rw2) = &l.ike.connections[1].remote_auth else {
            panic!("{:?}", l.ike.connections[1].remote_auth)
        };
        assert!(!rw2.ask_identity, "the default is the IKE identity");
        for eap in [rw, rw2] {
            let h = eap.users.nt_hash("alice").expect("alice");
            assert_eq!(format!("{h:?}"), "NtHash([REDACTED])", "never printed");
            assert!(eap.users.nt_hash("ALICE").is_some(), "names ignore case");
            assert!(eap.users.nt_hash("bob").is_none(), "disabled");
            assert!(eap.users.nt_hash("carol").is_none());
        }
        let sum = summary(&l);
        assert!(
            sum.contains(&format!("eap users: {}", dir.join("users.toml").display())),
            "{sum}"
        );
        assert!(sum.contains("remote EAP-MSCHAPv2 user name and password from the users file, asked for with EAP-Identity"), "{sum}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn rejects_a_missing_or_readable_users_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = eap_fixture("gwerr");
        let users = dir.join("users.toml");
        std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o640)).unwrap();
        let text = eap_gateway(&dir, "");
        let e = parse(&text, &dir.join("gw.toml"), &FakeResolver)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("gw.toml:2: daemon.users_file: EAP user database: "),
            "{e}"
        );
        assert!(
            e.contains(&users.display().to_string()) && e.contains("mode 0640"),
            "{e}"
        );
        assert!(!e.contains("oxisec user add"), "{e}");
        std::fs::remove_file(&users).unwrap();
        let e = parse(&text, &dir.join("gw.toml"), &FakeResolver)
            .unwrap_err()
            .to_string();
        assert!(e.contains("gw.toml:2: daemon.users_file: "), "{e}");
        assert!(e.contains(&users.display().to_string()), "{e}");
        assert!(e.contains("oxisec user add"), "{e}");
        // A configuration without EAP never reads it.
        let text = text.replace("remote_auth = \"eap-mschapv2\"\n", "");
        parse(&text, &dir.join("gw.toml"), &FakeResolver).unwrap();
        let e = err("[daemon]\nusers_file = \"users.toml\"\n");
        assert!(
            e.contains("site-a.toml:2: daemon.users_file: must be an absolute path"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    fn eap_client(dir: &Path, extra: &str) -> String {
        format!(
            "[connections.home]\nremote_addrs = [\"192.0.2.1\"]\nlocal_id = \"alice\"\nremote_id = \"vpn.example.com\"\npsk = \"0123456789abcdefghijkl\"\nlocal_auth = \"eap\"\n{extra}\n[connections.home.children.net]\nlocal_ts = [\"dynamic\"]\nremote_ts = [\"10.1.0.0/16\"]\n",
        )
        .replace("DIR", &dir.display().to_string())
    }

    #[cfg(unix)]
    #[test]
    fn accepts_an_eap_client() {
        use std::os::unix::fs::PermissionsExt;
        let dir = eap_fixture("client");
        let origin = dir.join("client.toml");
        let text = eap_client(
            &dir,
            "eap_identity = \"alice\"\neap_password_file = \"alice.password\"\n",
        );
        let l = parse(&text, &origin, &FakeResolver).unwrap();
        let c = &l.ike.connections[0];
        match &c.local_auth {
            Auth::EapClient { identity, password } => {
                assert_eq!(identity, "alice");
                assert_eq!(password.as_bytes(), b"correct horse", "first line only");
                assert!(!format!("{:?}", c.local_auth).contains("horse"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.remote_auth, Auth::Psk(_)));
        assert!(summary(&l).contains("auth: local EAP-MSCHAPv2 as alice, remote pre-shared key"));
        // The password file is private.
        let pw = dir.join("alice.password");
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = parse(&text, &origin, &FakeResolver)
            .unwrap_err()
            .to_string();
        let line = line_of_key(&text, "eap_password_file");
        assert!(
            e.contains(&format!(
                "client.toml:{line}: connections.home.eap_password_file: "
            )),
            "{e}"
        );
        assert!(e.contains("mode 0644"), "{e}");
        // An empty first line is no password.
        std::fs::write(&pw, "\nsecond\n").unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = parse(&text, &origin, &FakeResolver)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid password: empty (the first line"), "{e}");
        // Both keys are needed.
        let line = line_of_key(&text, "local_auth");
        let e = parse(
            &eap_client(&dir, "eap_password_file = \"alice.password\"\n"),
            &origin,
            &FakeResolver,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(&format!(
                ":{line}: connections.home.eap_identity: local_auth = \"eap\" needs eap_identity"
            )),
            "{e}"
        );
        let e = parse(
            &eap_client(&dir, "eap_identity = \"alice\"\n"),
            &origin,
            &FakeResolver,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(&format!(":{line}: connections.home.eap_password_file: local_auth = \"eap\" needs eap_password_file")), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_eap_misuse() {
        let psk = "psk = \"0123456789abcdefghijkl\"\n";
        let client =
            format!("[connections.c]\nremote_addrs = [\"192.0.2.1\"]\nlocal_id = \"alice\"\n{psk}");
        let gw = format!("[connections.g]\nlocal_id = \"gw\"\n{psk}");
        for (text, key, needle) in [
            (
                format!("{client}eap_identity = \"alice\"\n"),
                "eap_identity",
                "connections.c.eap_identity: only used by an EAP client (local_auth = \"eap\"); we authenticate with the pre-shared key here",
            ),
            (
                format!("{client}eap_password_file = \"p\"\n"),
                "eap_password_file",
                "connections.c.eap_password_file: only used by an EAP client",
            ),
            (
                format!("{gw}eap_ask_identity = true\n"),
                "eap_ask_identity",
                "connections.g.eap_ask_identity: only used by a gateway whose clients authenticate with EAP (remote_auth = \"eap-mschapv2\" or \"eap-tls\"); the peer authenticates with the pre-shared key here",
            ),
            (
                format!("{gw}local_auth = \"eap\"\n"),
                "local_auth",
                "connections.g.local_auth: local_auth = \"eap\" is for a client that initiates to its gateway",
            ),
            (
                format!("{client}pools = [\"p\"]\nlocal_auth = \"eap\"\n"),
                "local_auth",
                "connections.c.local_auth: local_auth = \"eap\" is for a client",
            ),
            (
                format!("{client}local_auth = \"eap\"\nremote_auth = \"eap\"\n"),
                "remote_auth",
                "connections.c.remote_auth: both sides cannot authenticate with EAP",
            ),
            (
                format!("{gw}remote_auth = \"eap\"\nca_certs = [\"ca.crt\"]\n"),
                "ca_certs",
                "connections.g.ca_certs: the peer authenticates with EAP-MSCHAPv2 (remote_auth = \"eap-mschapv2\"); remove this key",
            ),
            (
                format!("{client}local_auth = \"eap\"\nlocal_cert = \"c.crt\"\n"),
                "local_cert",
                "connections.c.local_cert: needs a local certificate, but we authenticate with EAP-MSCHAPv2 (local_auth = \"eap\")",
            ),
            (
                format!("{client}local_auth = \"eap\"\nremote_auth = \"cert\"\n"),
                "psk",
                "connections.c: a pre-shared key is set but neither side uses it (local_auth = \"eap\", remote_auth = \"cert\")",
            ),
            (
                format!("{gw}remote_auth = \"eap-tls\"\n"),
                "remote_auth",
                "connections.g.local_auth: remote_auth = \"eap-tls\" needs our certificate (local_cert + local_key or local_p12): it is the TLS server certificate; we authenticate with the pre-shared key here",
            ),
            (
                format!("{client}local_auth = \"eap-tls\"\n"),
                "local_auth",
                "connections.c.local_auth: local_auth = \"eap-tls\" is for a client that initiates to its gateway (remote_addrs, no pools) and checks the gateway's certificate",
            ),
            (
                format!("{gw}eap_tls_max_version = \"1.3\"\n"),
                "eap_tls_max_version",
                "connections.g.eap_tls_max_version: only used with EAP-TLS (remote_auth = \"eap-tls\" on a gateway, local_auth = \"eap-tls\" on a client); the peer authenticates with the pre-shared key here",
            ),
            (
                format!("{gw}remote_auth = \"eap-sim\"\n"),
                "remote_auth",
                "connections.g.remote_auth: \"eap-sim\" is not an authentication method: use \"psk\", \"cert\", \"eap-mschapv2\" (alias \"eap\") or \"eap-tls\"",
            ),
        ] {
            let e = err(&text);
            let line = line_of_key(&text, key);
            assert!(
                e.starts_with(&format!("site-a.toml:{line}: {needle}")),
                "{e}\n{text}"
            );
        }
    }

    /// A CA directory from `oxisec pki` beside the config file: gateway
    /// gw-a.example.com (192.0.2.1), client alice@example.com exported
    /// with passphrase "pw" (in p12.pass), and a second CA.
    #[cfg(unix)]
    fn cert_fixture(tag: &str) -> PathBuf {
        use crate::pki::{IssueRequest, KeyType, Pki, Profile};
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("oxisec-cfg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pki = Pki::init_ca(&dir.join("pki"), "Example CA", KeyType::Ecdsa, 30, None).unwrap();
        let mut gw = IssueRequest::new("gw-a.example.com", Profile::Server);
        gw.ips = vec!["192.0.2.1".parse().unwrap()];
        pki.issue(&gw).unwrap();
        pki.issue(&IssueRequest::new("alice@example.com", Profile::Client))
            .unwrap();
        pki.export("alice@example.com", "pw", false).unwrap();
        let other = Pki::init_ca(&dir.join("other"), "Other CA", KeyType::Ecdsa, 30, None).unwrap();
        other
            .issue(&IssueRequest::new("gw-a.example.com", Profile::Server))
            .unwrap();
        for (f, content) in [("p12.pass", "pw\n"), ("wrong.pass", "nope\n")] {
            std::fs::write(dir.join(f), content).unwrap();
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        dir
    }

    const GW_CERT: &str = "[connections.gw]
local_addrs = [\"192.0.2.1\"]
remote_addrs = [\"192.0.2.2\"]
local_cert = \"pki/certs/gw-a.example.com.crt\"
local_key = \"pki/private/gw-a.example.com.key\"
ca_certs = [\"pki/ca.crt\"]
";

    /// The 1-based line of the first line starting with `key`.
    fn line_of_key(text: &str, key: &str) -> usize {
        text.lines().position(|l| l.starts_with(key)).unwrap() + 1
    }

    #[cfg(unix)]
    #[test]
    fn accepts_eap_tls_gateway() {
        let dir = cert_fixture("eap-tls");
        let origin = dir.join("site.toml");
        let gw = "[connections.rw]\nlocal_cert = \"pki/certs/gw-a.example.com.crt\"\nlocal_key = \"pki/private/gw-a.example.com.key\"\nca_certs = [\"pki/ca.crt\"]\nremote_auth = \"eap-tls\"\n";
        let l = parse(gw, &origin, &FakeResolver).unwrap();
        let c = &l.ike.connections[0];
        assert!(matches!(c.local_auth, Auth::Cert(_)));
        let Auth::EapTls(e) = &c.remote_auth else {
            panic!("{:?}", c.remote_auth)
        };
        assert_eq!(e.trust.anchors().len(), 1);
        assert_eq!(
            e.trust.policy().eku,
            EkuPolicy::Client,
            "users' certificates"
        );
        assert!(!e.ask_identity);
        assert_eq!(e.fragment_size, 1024);
        assert_eq!(e.versions, oxisec_ike::TlsVersions::Tls12And13);
        let text = format!(
            "{gw}eap_ask_identity = true\neap_tls_fragment_size = 1400\neap_tls_max_version = \"1.2\"\nremote_eku = \"any\"\n"
        );
        let l = parse(&text, &origin, &FakeResolver).unwrap();
        let Auth::EapTls(e) = &l.ike.connections[0].remote_auth else {
            panic!()
        };
        assert!(e.ask_identity);
        assert_eq!(e.fragment_size, 1400);
        assert_eq!(e.versions, oxisec_ike::TlsVersions::Tls12);
        assert_eq!(e.trust.policy().eku, EkuPolicy::Any);
        for (extra, key, needle) in [
            (
                "eap_tls_fragment_size = 50\n",
                "eap_tls_fragment_size",
                "50 is out of range: 128..=16384",
            ),
            (
                "eap_tls_max_version = \"1.1\"\n",
                "eap_tls_max_version",
                "\"1.1\": use \"1.2\" or \"1.3\"",
            ),
        ] {
            let text = format!("{gw}{extra}");
            let e = parse(&text, &origin, &FakeResolver)
                .unwrap_err()
                .to_string();
            let line = line_of_key(&text, key);
            assert!(
                e.contains(&format!(":{line}: connections.rw.{key}: {needle}")),
                "{e}"
            );
        }
        // The road warrior's side: its certificate inside EAP-TLS.
        let client = "[connections.home]\nremote_addrs = [\"192.0.2.2\"]\nlocal_p12 = \"pki/exports/alice@example.com.p12\"\nlocal_p12_passphrase_file = \"p12.pass\"\nca_certs = [\"pki/ca.crt\"]\nlocal_auth = \"eap-tls\"\neap_tls_fragment_size = 1200\n";
        let l = parse(client, &origin, &FakeResolver).unwrap();
        let c = &l.ike.connections[0];
        let Auth::EapTlsClient(t) = &c.local_auth else {
            panic!("{:?}", c.local_auth)
        };
        assert_eq!(t.cert.chain[0].subject(), "CN=alice@example.com");
        assert_eq!((t.identity.as_deref(), t.fragment_size), (None, 1200));
        assert!(matches!(c.remote_auth, Auth::PeerCert(_)));
        let named = format!("{client}eap_identity = \"alice@example.com\"\n");
        let l = parse(&named, &origin, &FakeResolver).unwrap();
        let Auth::EapTlsClient(t) = &l.ike.connections[0].local_auth else {
            panic!()
        };
        assert_eq!(t.identity.as_deref(), Some("alice@example.com"));
        let no_ca = gw.replace("ca_certs = [\"pki/ca.crt\"]\n", "");
        let e = parse(&no_ca, &origin, &FakeResolver)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("connections.rw.ca_certs: remote_auth = \"eap-tls\" needs ca_certs"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn accepts_certificate_authentication() {
        let dir = cert_fixture("cert-ok");
        let origin = dir.join("site.toml");
        let text = format!(
            "{GW_CERT}crls = [\"pki/crl.pem\"]\nrevocation = \"strict\"\nremote_eku = \"client\"\nsend_cert = \"always\"\n[daemon]\ncrl_cache_dir = \"/var/cache/oxisec-crls\"\n"
        );
        let l = parse(&text, &origin, &FakeResolver).unwrap();
        let c = &l.ike.connections[0];
        match &c.local_auth {
            Auth::Cert(lc) => {
                assert_eq!(lc.chain.len(), 1);
                assert_eq!(lc.chain[0].subject(), "CN=gw-a.example.com");
                assert_eq!(lc.send, SendCert::Always);
            }
            other => panic!("{other:?}"),
        }
        // Our identity defaults to the certificate's subject.
        assert_eq!(
            c.local_id,
            Identity::Dn(oxisec_pki::dn_from_text("CN=gw-a.example.com").unwrap())
        );
        match &c.remote_auth {
            Auth::PeerCert(t) => {
                assert_eq!(t.anchors().len(), 1);
                assert_eq!(t.policy().eku, EkuPolicy::Client);
                assert_eq!(t.policy().revocation, RevocationPolicy::Strict);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            l.warnings
                .iter()
                .all(|w| w.message.starts_with("no children")),
            "{:?}",
            l.warnings
        );
        assert_eq!(l.crl_cache.dir(), Path::new("/var/cache/oxisec-crls"));
        let sum = summary(&l);
        assert!(
            sum.contains("local certificate CN=gw-a.example.com"),
            "{sum}"
        );
        assert!(
            sum.contains("remote certificate from CA CN=Example CA"),
            "{sum}"
        );

        // An explicit local_id must be in the certificate: its DNS and IP SANs are.
        for id in ["gw-a.example.com", "192.0.2.1", "CN=gw-a.example.com"] {
            let t = format!("{GW_CERT}local_id = \"{id}\"\n");
            parse(&t, &origin, &FakeResolver).unwrap();
        }

        // A client with a PKCS#12 bundle; the CA inside is not sent. Towards
        // a gateway (remote_addrs) the peer needs a gateway EKU by default.
        let text = "[connections.home]\nremote_addrs = [\"192.0.2.2\"]\nlocal_id = \"alice@example.com\"\nlocal_p12 = \"pki/exports/alice@example.com.p12\"\nlocal_p12_passphrase_file = \"p12.pass\"\nca_certs = [\"pki/ca.crt\"]\n";
        let l = parse(text, &origin, &FakeResolver).unwrap();
        let c = &l.ike.connections[0];
        match (&c.local_auth, &c.remote_auth) {
            (Auth::Cert(lc), Auth::PeerCert(t)) => {
                assert_eq!(lc.chain.len(), 1);
                assert_eq!(lc.send, SendCert::IfAsked);
                assert_eq!(t.policy().eku, EkuPolicy::Gateway);
                assert_eq!(t.policy().revocation, RevocationPolicy::IfUri);
            }
            other => panic!("{other:?}"),
        }
        // A responder without remote_addrs takes any EKU by default; and
        // PSK one way, certificate the other is allowed.
        let text = "[connections.mixed]\nlocal_id = \"@gw\"\nlocal_auth = \"psk\"\npsk = \"0123456789abcdefghijkl\"\nca_certs = [\"pki/ca.crt\"]\n";
        let l = parse(text, &origin, &FakeResolver).unwrap();
        match (
            &l.ike.connections[0].local_auth,
            &l.ike.connections[0].remote_auth,
        ) {
            (Auth::Psk(_), Auth::PeerCert(t)) => assert_eq!(t.policy().eku, EkuPolicy::Any),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An encrypted PKCS#8 key (OpenSSL, AES-256, passphrase "oxisec
    /// test", from the pki crate's fixtures) with local_key_passphrase_file.
    #[cfg(unix)]
    #[test]
    fn reads_an_encrypted_key_with_its_passphrase_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("oxisec-cfg-enc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let plain = include_str!("../../pki/tests/data/p384.pkcs8.pem");
        let enc = include_bytes!("../../pki/tests/data/p384.pkcs8.aes256.pem");
        let key = rcgen::KeyPair::from_pem(plain).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["enc.example.com".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let private = |name: &str, data: &[u8]| {
            std::fs::write(dir.join(name), data).unwrap();
            std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o600))
                .unwrap();
        };
        std::fs::write(dir.join("enc.crt"), cert.pem()).unwrap();
        private("enc.key", enc);
        private("enc.pass", b"oxisec test\n");
        private("bad.pass", b"not it\n");
        let origin = dir.join("site.toml");
        let base = "[connections.e]\nlocal_id = \"enc.example.com\"\npsk = \"0123456789abcdefghijkl\"\nlocal_cert = \"enc.crt\"\nlocal_key = \"enc.key\"\n";
        let l = parse(
            &format!("{base}local_key_passphrase_file = \"enc.pass\"\n"),
            &origin,
            &FakeResolver,
        )
        .unwrap();
        match &l.ike.connections[0].local_auth {
            Auth::Cert(lc) => assert_eq!(lc.key.algorithm(), "ECDSA P-384"),
            other => panic!("{other:?}"),
        }
        let e = parse(base, &origin, &FakeResolver).unwrap_err().to_string();
        assert!(e.contains(":5: connections.e.local_key: "), "{e}");
        assert!(e.contains("passphrase"), "{e}");
        let e = parse(
            &format!("{base}local_key_passphrase_file = \"bad.pass\"\n"),
            &origin,
            &FakeResolver,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(":5: connections.e.local_key: wrong passphrase"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn rejects_certificate_mistakes_with_file_line_field() {
        use std::os::unix::fs::PermissionsExt;
        let dir = cert_fixture("cert-bad");
        let origin = dir.join("site.toml");
        let check = |text: &str, key: &str, field: &str, what: &str| {
            let e = parse(text, &origin, &FakeResolver).unwrap_err().to_string();
            let line = line_of_key(text, key);
            assert!(
                e.contains(&format!("site.toml:{line}: connections.{field}: ")),
                "{field}: {e}"
            );
            assert!(e.contains(what), "{field}: {e}");
        };
        let with = |extra: &str| format!("{GW_CERT}{extra}");
        let p12 = "[connections.home]\nremote_addrs = [\"192.0.2.2\"]\nlocal_p12 = \"pki/exports/alice@example.com.p12\"\nca_certs = [\"pki/ca.crt\"]\n";

        check(
            &with("revocation = \"sometimes\"\n"),
            "revocation",
            "gw.revocation",
            "\"strict\"",
        );
        check(
            &with("remote_eku = \"server-ish\"\n"),
            "remote_eku",
            "gw.remote_eku",
            "\"gateway\"",
        );
        check(
            &with("send_cert = \"maybe\"\n"),
            "send_cert",
            "gw.send_cert",
            "\"ifasked\"",
        );
        check(
            &with("local_auth = \"rsa\"\n"),
            "local_auth",
            "gw.local_auth",
            "\"psk\", \"cert\", \"eap-mschapv2\"",
        );
        check(
            &with("local_id = \"gw-b.example.com\"\n"),
            "local_id",
            "gw.local_id",
            "is not in our certificate",
        );
        check(
            &with("ca_certs = []\n").replace("ca_certs = [\"pki/ca.crt\"]\n", ""),
            "ca_certs",
            "gw.ca_certs",
            "empty list",
        );
        check(
            &with("crls = [\"pki/ca.crt\"]\n"),
            "crls",
            "gw.crls[0]",
            "CRL",
        );
        check(
            &with("crls = [\"pki/missing.pem\"]\n"),
            "crls",
            "gw.crls[0]",
            "cannot read",
        );
        check(
            &with("psk = \"0123456789abcdefghijkl\"\n"),
            "psk",
            "gw",
            "both sides authenticate with certificates",
        );
        check(
            &with("local_p12 = \"x.p12\"\n"),
            "local_p12",
            "gw.local_p12",
            "not both",
        );
        check(
            &with("").replace(
                "local_key = \"pki/private/gw-a.example.com.key\"",
                "local_key = \"other/private/gw-a.example.com.key\"",
            ),
            "local_cert",
            "gw.local_cert",
            "does not belong to the certificate",
        );
        check(
            &with("").replace("local_key = \"pki/private/gw-a.example.com.key\"\n", ""),
            "local_cert",
            "gw.local_key",
            "needs local_key",
        );
        check(
            &with("").replace("pki/ca.crt", "pki/nope.crt"),
            "ca_certs",
            "gw.ca_certs[0]",
            "cannot read",
        );
        check(
            &with("remote_auth = \"psk\"\n"),
            "ca_certs",
            "gw.ca_certs",
            "remote_auth = \"psk\"",
        );
        check(
            "[connections.gw]\nlocal_id = \"@a\"\nlocal_auth = \"cert\"\nremote_auth = \"cert\"\nca_certs = [\"pki/ca.crt\"]\n",
            "[connections.gw]",
            "gw",
            "needs local_cert and local_key, or local_p12",
        );
        check(
            "[connections.gw]\nlocal_id = \"@a\"\nremote_auth = \"cert\"\npsk = \"0123456789abcdefghijkl\"\n",
            "[connections.gw]",
            "gw",
            "needs ca_certs",
        );
        check(
            "[connections.gw]\nlocal_id = \"@a\"\npsk = \"0123456789abcdefghijkl\"\nsend_cert = \"always\"\n",
            "send_cert",
            "gw.send_cert",
            "needs a local certificate, but",
        );
        check(
            "[connections.gw]\nlocal_id = \"@a\"\npsk = \"0123456789abcdefghijkl\"\nlocal_auth = \"psk\"\nlocal_key = \"k.pem\"\n",
            "local_key",
            "gw.local_key",
            "local_auth = \"psk\"",
        );
        // PKCS#12: passphrase missing, wrong, or in a readable file.
        check(
            p12,
            "local_p12",
            "home.local_p12",
            "set local_p12_passphrase_file",
        );
        let wrong = format!("{p12}local_p12_passphrase_file = \"wrong.pass\"\n");
        check(&wrong, "local_p12 ", "home.local_p12", "wrong passphrase");
        let pass = format!("{p12}local_p12_passphrase_file = \"p12.pass\"\n");
        std::fs::set_permissions(dir.join("p12.pass"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        check(
            &pass,
            "local_p12_passphrase_file",
            "home.local_p12_passphrase_file",
            "mode 0640",
        );
        std::fs::set_permissions(dir.join("p12.pass"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        parse(&pass, &origin, &FakeResolver).unwrap();
        // Key and bundle files must be private too.
        let p12_file = dir.join("pki/exports/alice@example.com.p12");
        std::fs::set_permissions(&p12_file, std::fs::Permissions::from_mode(0o604)).unwrap();
        check(&pass, "local_p12 ", "home.local_p12", "mode 0604");
        let key = dir.join("pki/private/gw-a.example.com.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        check(GW_CERT, "local_key", "gw.local_key", "chmod 600");
        // The CRL cache directory must be absolute.
        let e = parse_str("[daemon]\ncrl_cache_dir = \"crls\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("site-a.toml:2: daemon.crl_cache_dir: "),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_unresolvable_host_and_bad_local_addr() {
        let text = VALID.replace("gw-b.example.com\"]", "nowhere.invalid\"]");
        let line = text.lines().position(|l| l.contains("nowhere")).unwrap() + 1;
        assert!(err(&text).starts_with(&format!(
            "site-a.toml:{line}: connections.site-b.remote_addrs[0]: cannot resolve"
        )));
        let text = VALID.replace(
            "local_addrs = [\"192.0.2.1\"]",
            "local_addrs = [\"192.0.2.300\"]",
        );
        assert!(
            err(&text).contains(
                "connections.site-b.local_addrs[0]: \"192.0.2.300\" is not an IP address"
            )
        );
    }

    #[test]
    fn rejects_semantic_mistakes() {
        let e = err(&VALID.replace("start_action = \"start\"", "start_action = \"route\""));
        assert!(
            e.contains(
                "connections.site-b.children.lan.start_action: unknown start action \"route\""
            ) && e.contains("traffic-triggered"),
            "{e}"
        );
        // [modes]
        let lan = "[connections.site-b.children.lan]";
        let with = |line: &str| VALID.replace(lan, &format!("{lan}\n{line}"));
        let e = err(&with("mode = \"beet\""));
        assert!(
            e.contains("connections.site-b.children.lan.mode: unknown mode \"beet\""),
            "{e}"
        );
        // VALID's child has subnets: transport falls back to tunnel when
        // negotiated (like strongSwan), transport_only never could.
        assert_eq!(
            parse_str(&with("mode = \"transport\""))
                .unwrap()
                .ike
                .connections[0]
                .children[0]
                .mode,
            ChildMode::Transport
        );
        let e = err(&with("mode = \"transport_only\""));
        assert!(
            e.contains("children.lan.mode: mode = \"transport_only\" needs host-to-host selectors")
                && e.contains("198.51.100.0/24"),
            "{e}"
        );
        let hosts = VALID
            .replace(
                "local_ts = [\"198.51.100.0/24\"]",
                "local_ts = [\"dynamic\"]",
            )
            .replace(
                "remote_ts = [\"203.0.113.0/24\", \"2001:db8:1::/48\"]",
                "remote_ts = [\"192.0.2.2/32[tcp]\"]",
            );
        let c = &parse_str(&hosts.replace(lan, &format!("{lan}\nmode = \"transport_only\"")))
            .unwrap()
            .ike
            .connections[0]
            .children[0];
        assert_eq!((c.mode, c.mode_required), (ChildMode::Transport, true));
        for bad in [0, 65537] {
            let e = err(&with(&format!("replay_window = {bad}")));
            assert!(
                e.contains(&format!(
                    "children.lan.replay_window: replay_window must be 1..=65536 packets, not {bad}"
                )),
                "{e}"
            );
        }
        let e = err(&VALID.replace(
            "[connections.roadside.children.any]",
            "[connections.roadside.children.lan]",
        ));
        assert!(e.contains("connections.roadside.children.lan: child name \"lan\" is already used by connection \"site-b\""), "{e}");
        let e = err(&VALID.replace("remote_ts = [\"0.0.0.0/0\"]", "remote_ts = [\"::/0\"]"));
        assert!(e.contains("share no address family"), "{e}");
        let e = err(&VALID.replace("local_id = \"@gw-a\"", "local_id = \"@gw-a\"\n[connections.roadside.children.s]\nlocal_ts=[\"10.0.0.0/8\"]\nremote_ts=[\"10.0.0.0/8\"]\nstart_action=\"start\""));
        assert!(e.contains("needs remote_addrs"), "{e}");
        let e = err("[daemon]\ntun = \"much-too-long-name0\"\n");
        assert_eq!(
            e,
            "site-a.toml:2: daemon.tun: invalid interface name \"much-too-long-name0\": 1 to 15 characters of a-z, 0-9, -, _ and ."
        );
        let e = err("[daemon]\nretransmit_timeout = -1.0\n");
        assert!(
            e.starts_with("site-a.toml:2: daemon.retransmit_timeout: "),
            "{e}"
        );
        let e = err("[connections.\"a b\"]\npsk = \"0123456789abcdefghijkl\"\n");
        assert!(
            e.starts_with("site-a.toml:1: connections.a b: invalid connection name"),
            "{e}"
        );
    }

    #[test]
    fn rejects_wrong_type_inside_a_list_with_its_index() {
        let e = err(
            "[connections.b]\nlocal_id = \"@a\"\npsk = \"0123456789abcdefghijkl\"\nike_proposals = [\"aes128gcm16-prfsha256-x25519\", 7]\n",
        );
        assert!(
            e.starts_with("site-a.toml:4: connections.b.ike_proposals[1]: invalid type: integer"),
            "{e}"
        );
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let text = include_str!("../oxisec.example.toml").replace(
            "psk_file = \"/etc/oxisec/site-b.psk\"",
            "psk = \"0123456789abcdefghijkl\"",
        );
        let l = parse_str(&text).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(
            l.ike.connections[0].children[0].start_action,
            StartAction::Start
        );
        // The values shown are the defaults (except where they say otherwise).
        assert_eq!(l.daemon, DaemonConfig::default());
        assert_eq!(l.ike.retransmit, RetransmitConfig::default());
        assert_eq!(l.ike.nat_keepalive, NatKeepalive::default());
        assert_eq!(l.ike.dos, DosConfig::default());
        assert_eq!(l.ike.fragmentation, FragmentationConfig::default());
        let c = &l.ike.connections[0];
        assert_eq!(c.ike_lifetime, IkeLifetime::default());
        assert_eq!(c.children[0].lifetime, ChildLifetime::default());
        assert_eq!(c.dpd_delay, Duration::from_secs(30));
        assert_eq!(c.dpd_action, DpdAction::Restart);
    }

    #[test]
    fn accepts_engine_wide_daemon_settings() {
        let l = parse_str(
            "[daemon]\nnat_keepalive = \"45s\"\ncookie_threshold = 0\nblock_threshold = 0\nhalf_open_limit = 0\nfragmentation = false\n",
        )
        .unwrap();
        assert_eq!(l.ike.nat_keepalive, NatKeepalive(Duration::from_secs(45)));
        assert_eq!(
            l.ike.dos,
            DosConfig {
                cookie_threshold: 0,
                block_threshold: 0,
                half_open_limit: 0
            }
        );
        assert!(!l.ike.fragmentation.enabled);
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert!(
            summary(&l).contains(
                "ike: nat keepalive 45s, fragmentation off, cookies from 0 half-open SAs, per address no limit, in total no limit"
            ),
            "{}",
            summary(&l)
        );
        let l = parse_str(
            "[daemon]\nnat_keepalive = 0\ncookie_threshold = 100\nhalf_open_limit = 5000\nfragment_size = 1400\n",
        )
        .unwrap();
        assert!(l.ike.nat_keepalive.0.is_zero());
        assert_eq!(l.ike.dos.cookie_threshold, 100);
        assert_eq!(
            l.ike.dos.block_threshold,
            DosConfig::default().block_threshold
        );
        assert_eq!(l.ike.dos.half_open_limit, 5000);
        assert_eq!(
            l.ike.fragmentation,
            FragmentationConfig {
                enabled: true,
                size: 1400
            }
        );
        let l = parse_str("[daemon]\nnat_keepalive = \"1h\"\nfragment_size = 576\n").unwrap();
        assert_eq!(l.ike.nat_keepalive.0, MAX_NAT_KEEPALIVE);
        assert_eq!(l.ike.fragmentation.size, 576);
    }

    #[test]
    fn engine_wide_settings_default_to_the_engines() {
        let l = parse_str("[daemon]\nmtu = 1400\n").unwrap();
        assert_eq!(l.ike.nat_keepalive, NatKeepalive::default());
        assert_eq!(l.ike.dos, DosConfig::default());
        assert_eq!(l.ike.fragmentation, FragmentationConfig::default());
        let l = parse_str("").unwrap();
        assert_eq!(l.ike.nat_keepalive.0, Duration::from_secs(20));
    }

    #[test]
    fn rejects_bad_engine_wide_settings_with_file_line_field() {
        let e = err("[daemon]\ntun = \"ox\"\nnat_keepalive = \"2h\"\n");
        assert!(
            e.starts_with("site-a.toml:3: daemon.nat_keepalive: 7200s is too long"),
            "{e}"
        );
        let e = err("[daemon]\nnat_keepalive = \"20 parsecs\"\n");
        assert!(
            e.starts_with("site-a.toml:2: daemon.nat_keepalive: invalid duration unit"),
            "{e}"
        );
        let e = err("[daemon]\ncookie_threshold = 2000000\n");
        assert!(
            e.starts_with("site-a.toml:2: daemon.cookie_threshold: 2000000 is out of range: "),
            "{e}"
        );
        let e = err("[daemon]\n\nblock_threshold = -1\n");
        assert!(
            e.starts_with("site-a.toml:3: daemon.block_threshold: "),
            "{e}"
        );
        let e = err("[daemon]\nhalf_open_limit = 1000001\n");
        assert!(
            e.starts_with("site-a.toml:2: daemon.half_open_limit: 1000001 is out of range"),
            "{e}"
        );
        // Cookies must start before the total limit refuses everything.
        let e = err("[daemon]\ncookie_threshold = 50\nhalf_open_limit = 50\n");
        assert_eq!(
            e,
            "site-a.toml:2: daemon.cookie_threshold: cookie_threshold (50) must be below half_open_limit (50): otherwise new IKE SAs are refused before cookies are asked for"
        );
        let e = err("[daemon]\nhalf_open_limit = 20\n");
        assert!(
            e.starts_with("site-a.toml:2: daemon.half_open_limit: cookie_threshold (30) must be below half_open_limit (20)"),
            "{e}"
        );
        for bad in ["575", "9001", "0"] {
            let e = err(&format!("[daemon]\nfragment_size = {bad}\n"));
            assert!(
                e.starts_with(&format!(
                    "site-a.toml:2: daemon.fragment_size: {bad} bytes is out of range (576 to 9000"
                )),
                "{e}"
            );
        }
        let e = err("[daemon]\nfragmentation = \"yes\"\n");
        assert!(
            e.starts_with("site-a.toml:2: daemon.fragmentation: "),
            "{e}"
        );
    }

    #[test]
    fn warns_about_a_fragment_size_without_fragmentation() {
        let l = parse_str("[daemon]\nfragmentation = false\nfragment_size = 1400\n").unwrap();
        assert_eq!(l.warnings.len(), 1);
        assert_eq!(
            l.warnings[0].to_string(),
            "site-a.toml:3: daemon.fragment_size: has no effect with fragmentation = false"
        );
    }

    /// The keys a table accepts, from serde's unknown-field message, so the
    /// list cannot drift from the schema.
    fn schema_keys(table: &str) -> Vec<String> {
        let e = parse_str(&format!("[{table}]\nzz_not_a_key = 1\n")).unwrap_err();
        let (_, expected) = e
            .message
            .split_once("expected")
            .unwrap_or_else(|| panic!("{e}"));
        let keys: Vec<String> = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        assert!(keys.len() >= 3, "{e}");
        keys
    }

    #[test]
    fn the_shipped_example_documents_every_key() {
        let text = include_str!("../oxisec.example.toml");
        // Each table's lines, commented-out examples included.
        let mut sections: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut current = "";
        for line in text.lines() {
            let t = line.trim_start();
            // Sections shown commented out (`# [shunts.mgmt]`) count too.
            let head = t.strip_prefix("# ").unwrap_or(t);
            if let Some(h) = head.strip_prefix('[') {
                current = h.split(']').next().unwrap_or("");
                continue;
            }
            sections.entry(current).or_default().push(t);
        }
        let documents = |section: &str, key: &str| {
            sections.get(section).is_some_and(|lines| {
                lines.iter().any(|l| {
                    let l = l.strip_prefix('#').unwrap_or(l).trim_start();
                    l.strip_prefix(key)
                        .is_some_and(|r| r.trim_start().starts_with('='))
                })
            })
        };
        for (table, section) in [
            ("daemon", "daemon"),
            ("connections.x", "connections.site-b"),
            (
                "connections.x.children.y",
                "connections.site-b.children.lan",
            ),
            ("shunts.x", "shunts.mgmt"),
            (
                "connections.x.groups.y",
                "connections.rw-eap.groups.contractors",
            ),
        ] {
            for key in schema_keys(table) {
                let ok = match key.as_str() {
                    "children" => sections.contains_key("connections.site-b.children.lan"),
                    "groups" => sections.contains_key("connections.rw-eap.groups.contractors"),
                    // An alias, named in the ike_proposals comment.
                    "proposals" => text.contains("`proposals` works too"),
                    k => documents(section, k),
                };
                assert!(ok, "oxisec.example.toml does not show [{section}] {key}");
            }
        }
    }

    #[test]
    fn clean_path_drops_spanned_internals() {
        assert_eq!(
            clean_path(
                "connections.site-b.$__serde_spanned_private_value.ike_proposals.$__serde_spanned_private_value[0]"
            ),
            "connections.site-b.ike_proposals[0]"
        );
    }

    const GATEWAY: &str = r#"
[pools.staff]
addrs = "10.3.0.0/24"
[pools.staff6]
addrs = "2001:db8:3::/64"
[connections.rw]
local_addrs = ["192.0.2.1"]
psk = "a remote-access key that is long enough"
pools = ["staff", "staff6"]
dns = ["10.1.0.53", "2001:db8:1::53"]
dns_domains = ["Corp.Example."]
subnets = ["10.1.0.0/16"]
[connections.rw.children.net]
local_ts = ["10.1.0.0/16"]
remote_ts = ["dynamic"]
"#;

    #[test]
    fn remote_access_gateway() {
        let l = parse_str(GATEWAY).unwrap();
        let p: Vec<String> = l
            .ike
            .pools
            .iter()
            .map(|p| format!("{} {}-{}", p.name, p.first, p.last))
            .collect();
        assert_eq!(
            p,
            [
                "staff 10.3.0.1-10.3.0.254",
                "staff6 2001:db8:3::1-2001:db8:3:0:ffff:ffff:ffff:ffff"
            ]
        );
        let c = &l.ike.connections[0];
        assert_eq!(c.remote_access.pools, ["staff", "staff6"]);
        assert_eq!(c.remote_access.dns.len(), 2);
        assert_eq!(c.remote_access.dns_domains, ["corp.example"]);
        assert_eq!(c.remote_access.subnets.len(), 1);
        assert!(c.remote_access.request_vips.is_empty());
        assert!(c.children[0].remote_ts.is_empty(), "dynamic");
    }

    #[test]
    fn remote_access_groups() {
        let text = GATEWAY.replace(
            "[connections.rw.children.net]",
            r#"require_group = true
[connections.rw.groups.staff]
[connections.rw.groups."Contractors"]
pools = ["guests"]
dns = []
subnets = ["10.1.5.0/24"]
[connections.rw.children.net]"#,
        ) + "[pools.guests]\naddrs = \"10.3.1.0/24\"\n";
        let l = parse_str(&text).unwrap();
        let ra = &l.ike.connections[0].remote_access;
        assert!(ra.require_group);
        assert_eq!(ra.groups.len(), 2);
        // BTreeMap order; the engine picks by the user's group order.
        assert_eq!(ra.groups[0].group, "Contractors");
        assert_eq!(ra.groups[0].pools, ["guests"]);
        assert_eq!(ra.groups[0].dns, Some(vec![]));
        assert_eq!(ra.groups[0].dns_domains, None);
        assert_eq!(ra.groups[0].subnets.as_ref().map(Vec::len), Some(1));
        assert_eq!(ra.groups[1].group, "staff");
        assert!(ra.groups[1].pools.is_empty(), "the connection's pools");
        let staff = ra.for_groups(&["STAFF".into()]).unwrap();
        assert_eq!(staff.pools, ["staff", "staff6"]);
        assert!(ra.for_groups(&["guests".into()]).is_none(), "required");

        let e = err(&text.replace("pools = [\"guests\"]", "pools = [\"nope\"]"));
        assert!(
            e.contains("connections.rw.groups.Contractors.pools[0]") && e.contains("no pool"),
            "{e}"
        );
        let e = err(&text.replace("dns = []", "dns = [\"x\"]"));
        assert!(e.contains("groups.Contractors.dns[0]"), "{e}");
        let e = err(&text.replace("dns = []", "nameservers = []"));
        assert!(e.contains("nameservers"), "{e}");
        let e = err(&text.replace(
            "groups.staff]",
            "groups.STAFF]\n[connections.rw.groups.staff]",
        ));
        assert!(e.contains("ignore ASCII case"), "{e}");
        // require_group without groups, groups on a client.
        let e = err(&GATEWAY.replace(
            "[connections.rw.children.net]",
            "require_group = true\n[connections.rw.children.net]",
        ));
        assert!(
            e.contains("require_group") && e.contains("define at least one group"),
            "{e}"
        );
        let client = r#"
[connections.home]
remote_addrs = ["192.0.2.1"]
psk = "a remote-access key that is long enough"
vips = ["0.0.0.0"]
[connections.home.groups.staff]
[connections.home.children.all]
local_ts = ["dynamic"]
remote_ts = ["0.0.0.0/0"]
"#;
        let e = err(client);
        assert!(
            e.contains("connections.home.groups.staff") && e.contains("vips"),
            "{e}"
        );
        // Pools only in a group still make a gateway: dns is allowed.
        let only_group = GATEWAY
            .replace("pools = [\"staff\", \"staff6\"]\n", "")
            .replace(
                "[connections.rw.children.net]",
                "[connections.rw.groups.staff]\npools = [\"staff\"]\n[connections.rw.children.net]",
            );
        let l = parse_str(&only_group).unwrap();
        assert!(l.ike.connections[0].remote_access.hands_out_addresses());
    }

    #[test]
    fn remote_access_client() {
        let l = parse_str(
            r#"
[connections.home]
remote_addrs = ["192.0.2.1"]
local_addrs = ["192.0.2.9"]
psk = "a remote-access key that is long enough"
vips = ["0.0.0.0", "::"]
kill_switch = true
[connections.home.children.all]
local_ts = ["dynamic"]
remote_ts = ["0.0.0.0/0", "::/0"]
"#,
        )
        .unwrap();
        let c = &l.ike.connections[0];
        assert_eq!(c.remote_access.request_vips.len(), 2);
        assert_eq!(l.daemon.kill_switch, ["home"]);
        assert!(c.children[0].local_ts.is_empty());
    }

    #[test]
    fn remote_access_errors_name_the_field() {
        let with = |extra: &str| GATEWAY.replace("subnets = [\"10.1.0.0/16\"]", extra);
        let e = err(&with("vips = [\"0.0.0.0\"]"));
        assert!(
            e.contains("connections.rw.pools") && e.contains("not both"),
            "{e}"
        );
        let e = err(&GATEWAY.replace("pools = [\"staff\", \"staff6\"]", "pools = [\"nope\"]"));
        assert!(
            e.contains("connections.rw.pools[0]") && e.contains("defined: staff, staff6"),
            "{e}"
        );
        let e = err(&GATEWAY.replace("2001:db8:3::/64", "10.3.0.128/25"));
        assert!(
            e.contains("pools.staff6.addrs") && e.contains("overlaps"),
            "{e}"
        );
        let e = err(&GATEWAY.replace("10.3.0.0/24", "10.3.0.1/24"));
        assert!(
            e.contains("pools.staff.addrs") && e.contains("host bits"),
            "{e}"
        );
        let e = err(&GATEWAY.replace(
            "remote_ts = [\"dynamic\"]",
            "remote_ts = [\"dynamic\", \"10.9.0.0/16\"]",
        ));
        assert!(e.contains("remote_ts") && e.contains("stands alone"), "{e}");
        let e =
            err(&with("vips = [\"10.3.0.300\"]").replace("pools = [\"staff\", \"staff6\"]\n", ""));
        assert!(e.contains("connections.rw.vips[0]"), "{e}");
        let e = err(&GATEWAY.replace("pools = [\"staff\", \"staff6\"]\n", ""));
        assert!(
            e.contains("connections.rw.dns") && e.contains("set pools"),
            "{e}"
        );
        let e = err(&GATEWAY.replace("Corp.Example.", "corp example"));
        assert!(e.contains("dns_domains[0]"), "{e}");
        let e = err("[daemon]\ndns = \"dnsmasq\"\n");
        assert!(e.contains("daemon.dns") && e.contains("resolv.conf"), "{e}");
    }

    #[test]
    fn inbound_policy_defaults_to_drop() {
        assert_eq!(
            parse_str(VALID).unwrap().daemon.inbound_policy,
            InboundPolicy::Drop
        );
        let off = parse_str(&VALID.replace("[daemon]\n", "[daemon]\ninbound_policy = \"off\"\n"));
        assert_eq!(off.unwrap().daemon.inbound_policy, InboundPolicy::Off);
        let e = err("[daemon]\ninbound_policy = \"accept\"\n");
        assert!(
            e.contains("daemon.inbound_policy") && e.contains("drop or off"),
            "{e}"
        );
    }

    #[test]
    fn reauth_time_as_strongswan_reads_it() {
        let conf = |extra: &str| {
            format!(
                "[connections.x]\nremote_addrs = [\"192.0.2.2\"]\nlocal_addrs = [\"192.0.2.1\"]\npsk = \"a key that is long enough for the test\"\n{extra}[connections.x.children.y]\nlocal_ts = [\"198.51.100.0/24\"]\nremote_ts = [\"203.0.113.0/24\"]\n"
            )
        };
        let l = parse_str(&conf("reauth_time = \"1h\"\n")).unwrap();
        let lt = l.ike.connections[0].ike_lifetime;
        assert_eq!(lt.reauth_time, Duration::from_secs(3600));
        assert_eq!(lt.rekey_time, Duration::from_secs(4 * 3600));
        assert_eq!(lt.over_time, Duration::from_secs(360));
        assert_eq!(lt.rand_time, Duration::from_secs(360));
        let l = parse_str(&conf(
            "rekey_time = 0\nreauth_time = \"2h\"\nover_time = \"5m\"\n",
        ))
        .unwrap();
        let lt = l.ike.connections[0].ike_lifetime;
        assert_eq!(
            (lt.rekey_time, lt.reauth_time),
            (Duration::ZERO, Duration::from_secs(7200))
        );
        assert_eq!(
            (lt.over_time, lt.rand_time),
            (Duration::from_secs(300), Duration::from_secs(300))
        );
        let e = err(&conf("reauth_time = \"10m\"\nrand_time = \"20m\"\n"));
        assert!(e.contains("rand_time") && e.contains("reauth_time"), "{e}");
    }
}
