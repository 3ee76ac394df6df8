//! `oxisec profile USER`: a ready-to-import client profile for one user.
//!
//! The gateway's side (address, identity, the proposals it accepts, the
//! subnets behind it) comes from the daemon's own configuration file, read
//! with the daemon's loader, so a profile never offers what the gateway
//! would refuse. The user's side comes from `oxisec user` (EAP-MSCHAPv2)
//! and `oxisec pki` (the CA certificate and the user's PKCS#12 bundle,
//! under `--pki-dir`: `ca.crt`, `certs/NAME.crt`, `private/NAME.key`,
//! `exports/NAME.p12`), with `--ca`, `--p12` and `--p12-passphrase-file`
//! to point elsewhere.
//!
//! Passwords and PKCS#12 passphrases are never written into a profile:
//! every target asks for them on import (iOS/macOS when installing the
//! profile, the strongSwan app when importing, the PowerShell script with
//! `Read-Host`, NetworkManager through its secret agent). The passphrase
//! file is read to check the bundle and take the user's identity from its
//! certificate; only the oxisec format, for an unattended daemon, copies it
//! into a private file of its own. A profile may still hold the PKCS#12 bundle, so it is
//! written with mode 0600.
//!
//! Formats: [`Format::Mobileconfig`] (Apple), [`Format::Sswan`] (strongSwan
//! for Android), [`Format::Windows`] (PowerShell), [`Format::Networkmanager`]
//! (NetworkManager keyfile for the strongswan plugin), [`Format::Oxisec`]
//! (an oxisec client configuration).
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use oxisec_ike::{
    Access, Auth, Connection, EspProposal, Identity, IkeProposal, PoolConfig, TsRange,
};
use zeroize::Zeroizing;

use crate::users::{DEFAULT_USERS_FILE, UserDb, write_atomic, write_private_atomic};

pub mod algs;
mod apple;
mod client;
mod nm;
pub mod qr;
mod sswan;
mod windows;

/// The daemon configuration read unless `--config` says otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/oxisec/oxisec.toml";
/// Where `oxisec pki` keeps the CA and the users' certificates.
pub const DEFAULT_PKI_DIR: &str = "/etc/oxisec/pki";
/// Largest CA certificate or PKCS#12 file read.
const MAX_INPUT_FILE: u64 = 1 << 20;

/// Target formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Apple configuration profile (.mobileconfig) for macOS and iOS.
    Mobileconfig,
    /// strongSwan VPN client for Android (.sswan).
    Sswan,
    /// PowerShell script for the Windows built-in IKEv2 client (.ps1).
    Windows,
    /// NetworkManager keyfile for the strongswan plugin (.nmconnection).
    Networkmanager,
    /// oxisec client configuration (.toml).
    Oxisec,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Mobileconfig => "mobileconfig",
            Format::Sswan => "sswan",
            Format::Windows => "ps1",
            Format::Networkmanager => "nmconnection",
            Format::Oxisec => "toml",
        }
    }
}

/// How the user authenticates to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientAuth {
    /// EAP-MSCHAPv2 with the user's password (`oxisec user`).
    Eap,
    /// The user's certificate (PKCS#12 from `oxisec pki`).
    Cert,
    /// Certificate, then EAP-MSCHAPv2 (RFC 4739 multiple authentication).
    CertEap,
    /// The user's certificate inside EAP-TLS (gateways with `remote_auth =
    /// "eap-tls"`; the default there when a PKCS#12 bundle exists).
    EapTls,
}

impl ClientAuth {
    /// The user's PKCS#12 bundle goes into the profile.
    fn uses_cert(self) -> bool {
        matches!(
            self,
            ClientAuth::Cert | ClientAuth::CertEap | ClientAuth::EapTls
        )
    }
    /// EAP instead of (or after) an AUTH payload of the client's own.
    fn extended_auth(self) -> bool {
        self.uses_eap() || self == ClientAuth::EapTls
    }
    fn uses_eap(self) -> bool {
        matches!(self, ClientAuth::Eap | ClientAuth::CertEap)
    }
}

/// `oxisec profile`.
#[derive(Debug, Args, PartialEq)]
pub struct ProfileArgs {
    /// The user the profile is for.
    pub user: String,
    #[arg(long, value_enum)]
    pub format: Format,
    /// The daemon configuration the gateway runs with.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// The connection clients use (default: the only one, or the only one without remote_addrs).
    #[arg(long, value_name = "NAME")]
    pub connection: Option<String>,
    /// The address or host name clients connect to (default: the connection's first local_addrs).
    #[arg(long, value_name = "HOST")]
    pub address: Option<String>,
    /// How the user authenticates (default: cert when a PKCS#12 bundle exists, else eap).
    #[arg(long, value_enum)]
    pub auth: Option<ClientAuth>,
    #[arg(long, value_name = "DIR", default_value = DEFAULT_PKI_DIR)]
    pub pki_dir: PathBuf,
    /// The CA certificate (default: PKI_DIR/ca.crt).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// The user's PKCS#12 bundle (default: PKI_DIR/exports/USER.p12).
    #[arg(long, value_name = "FILE")]
    pub p12: Option<PathBuf>,
    /// A file whose first line is the bundle's passphrase (checks the bundle
    /// and reads the user's identity from it; never written into the profile).
    #[arg(long, value_name = "FILE")]
    pub p12_passphrase_file: Option<PathBuf>,
    /// The identity the client sends (default: from the certificate, else USER).
    #[arg(long, value_name = "ID")]
    pub local_id: Option<String>,
    #[arg(long, value_name = "FILE", default_value = DEFAULT_USERS_FILE)]
    pub users_file: PathBuf,
    /// The user's group on the gateway (repeatable, first listed wins as on
    /// the gateway); default: from the users file (EAP users) or the OU of
    /// the user's certificate. Needed for RADIUS users, whose groups only
    /// the RADIUS server knows.
    #[arg(long, value_name = "GROUP")]
    pub group: Vec<String>,
    /// The name the connection gets on the device (default: "oxisec GATEWAY").
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Where to write the profile (default: USER-CONNECTION.EXT here; `-` for stdout).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also show the profile as a QR code on the terminal and write it as PNG (sswan, oxisec).
    #[arg(long)]
    pub qr: bool,
}

/// Why a profile could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{0}")]
    Config(String),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error(transparent)]
    Algorithms(#[from] algs::NoMatch),
    #[error(transparent)]
    Users(#[from] crate::users::UsersError),
    #[error("{0}")]
    Unsupported(String),
}

fn file_err(path: &Path, message: impl std::fmt::Display) -> ProfileError {
    ProfileError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// How the gateway proves itself.
#[derive(Debug, Clone)]
pub enum GatewayAuth {
    /// With a certificate the client checks against the CA.
    Cert,
    /// With the connection's pre-shared key.
    Psk(oxisec_crypto::Secret),
}

/// What a client needs to know about the gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// The connection's name in the daemon configuration.
    pub connection: String,
    /// Address or host name clients dial.
    pub address: String,
    pub port: u16,
    pub id: Identity,
    pub auth: GatewayAuth,
    pub ike_proposals: Vec<IkeProposal>,
    pub esp_proposals: Vec<EspProposal>,
    /// The subnets reachable through the tunnel; empty means all traffic.
    pub subnets: Vec<TsRange>,
    pub dns: Vec<IpAddr>,
    /// The virtual IPs a client asks for (`0.0.0.0` and/or `::`): one per
    /// address family the connection's pools hand out.
    pub virtual_ips: Vec<IpAddr>,
    /// The connection checks users' names and passwords (`remote_auth =
    /// "eap-mschapv2"`): an EAP user's oxisec client uses `local_auth =
    /// "eap"` there rather than the gateway's own PSK.
    pub eap_users: bool,
    /// The connection's users log in with EAP-TLS (`remote_auth = "eap-tls"`).
    pub eap_tls: bool,
    /// The user group whose pools, DNS and subnets these are
    /// (`[connections.X.groups.NAME]`); `None`: the connection's own.
    pub group: Option<String>,
}

fn covers_everything(ts: &TsRange) -> bool {
    *ts == TsRange::any(ts.is_ipv4())
}

impl Gateway {
    /// The client's view of a gateway connection with the connection's own
    /// remote-access values (no user groups); `pools` are the
    /// configuration's address pools, `address` overrides the connection's
    /// first local address.
    pub fn from_connection(
        pools: &[PoolConfig],
        conn: &Connection,
        address: Option<&str>,
    ) -> Result<Gateway, ProfileError> {
        let ra = &conn.remote_access;
        let own = Access {
            group: None,
            pools: &ra.pools,
            dns: &ra.dns,
            dns_domains: &ra.dns_domains,
            subnets: &ra.subnets,
        };
        Gateway::with_access(pools, conn, address, own)
    }

    /// The gateway as a member of `groups` sees it: the pools (so the
    /// address families to ask for), DNS and split subnets of the first of
    /// `groups` the connection lists, else the connection's own, exactly
    /// as the gateway's engine picks them ([`oxisec_ike::RemoteAccess::for_groups`]).
    /// Fails when the connection requires a group and `groups` has none
    /// of its: such a user would be refused at every login.
    pub fn for_groups(
        pools: &[PoolConfig],
        conn: &Connection,
        address: Option<&str>,
        groups: &[String],
    ) -> Result<Gateway, ProfileError> {
        let access = conn.remote_access.for_groups(groups).ok_or_else(|| {
            let listed: Vec<&str> = conn
                .remote_access
                .groups
                .iter()
                .map(|g| g.group.as_str())
                .collect();
            ProfileError::Config(format!(
                "connection {:?} admits only the groups [{}] (require_group) and the user is in [{}]: the gateway would refuse every login (add the user to a group, or give --group)",
                conn.name,
                listed.join(", "),
                groups.join(", ")
            ))
        })?;
        Gateway::with_access(pools, conn, address, access)
    }

    fn with_access(
        pools: &[PoolConfig],
        conn: &Connection,
        address: Option<&str>,
        access: Access<'_>,
    ) -> Result<Gateway, ProfileError> {
        let address = match address {
            Some(a) => a.to_owned(),
            None => conn
                .local_addrs
                .first()
                .map(|a| a.to_string())
                .ok_or_else(|| {
                    ProfileError::Config(format!(
                        "connection {:?} accepts on any local address: give the address or host name clients dial with --address",
                        conn.name
                    ))
                })?,
        };
        let auth = match &conn.local_auth {
            Auth::Psk(s) => GatewayAuth::Psk(s.clone()),
            Auth::Cert(_) | Auth::PeerCert(_) => GatewayAuth::Cert,
            Auth::Eap(_)
            | Auth::EapRelay(_)
            | Auth::EapTls(_)
            | Auth::EapTlsClient(_)
            | Auth::EapClient { .. } => {
                return Err(ProfileError::Config(format!(
                    "connection {:?} authenticates itself with EAP: a gateway proves itself with a certificate (or PSK)",
                    conn.name
                )));
            }
        };
        let mut esp_proposals: Vec<EspProposal> = Vec::new();
        for child in &conn.children {
            for p in &child.esp_proposals {
                if !esp_proposals.contains(p) {
                    esp_proposals.push(p.clone());
                }
            }
        }
        // Split tunnelling: what the gateway pushes (INTERNAL_IP4_SUBNET),
        // else what its children protect on its side.
        let mut subnets: Vec<TsRange> = if access.subnets.is_empty() {
            conn.children
                .iter()
                .flat_map(|c| c.local_ts.iter().cloned())
                .collect()
        } else {
            access.subnets.to_vec()
        };
        if subnets.iter().any(covers_everything) {
            subnets.clear();
        }
        subnets.dedup();
        let mut virtual_ips: Vec<IpAddr> = Vec::new();
        for name in access.pools {
            if let Some(pool) = pools.iter().find(|p| &p.name == name) {
                let any = if pool.first.is_ipv4() {
                    IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
                } else {
                    IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
                };
                if !virtual_ips.contains(&any) {
                    virtual_ips.push(any);
                }
            }
        }
        Ok(Gateway {
            connection: conn.name.clone(),
            address,
            port: conn.remote_port,
            id: conn.local_id.clone(),
            auth,
            ike_proposals: conn.ike_proposals.clone(),
            esp_proposals,
            subnets,
            dns: access.dns.to_vec(),
            virtual_ips,
            eap_users: matches!(conn.remote_auth, Auth::Eap(_)),
            eap_tls: matches!(conn.remote_auth, Auth::EapTls(_)),
            group: access.group.map(str::to_owned),
        })
    }

    /// Subnets as `a.b.c.d/n` strings (ranges as `a-b`), for formats that
    /// take a list of text.
    fn subnet_strings(&self) -> Vec<String> {
        self.subnets
            .iter()
            .map(|t| {
                let mut t = *t;
                // Port and protocol restrictions cannot be expressed by the
                // clients' route lists; the gateway still enforces them.
                t.protocol = 0;
                t.start_port = 0;
                t.end_port = 65535;
                t.to_string().replace("..", "-")
            })
            .collect()
    }
}

/// The user's credentials.
#[derive(Clone)]
pub struct UserCreds {
    pub user: String,
    pub auth: ClientAuth,
    /// The identity the client sends in IKE_AUTH.
    pub local_id: String,
    /// DER of the CA certificate that signed the gateway's certificate.
    pub ca_der: Option<Vec<u8>>,
    /// The PKCS#12 bundle as read (still encrypted with its passphrase).
    pub p12: Option<Zeroizing<Vec<u8>>>,
    /// The bundle's passphrase when `--p12-passphrase-file` was given; only
    /// the oxisec format writes it (to its own private file).
    pub p12_passphrase: Option<Zeroizing<String>>,
    /// The user's key algorithm when the bundle could be opened ("RSA-3072",
    /// "ECDSA P-256", "Ed25519").
    pub key_algorithm: Option<String>,
    /// Certificate and key files for clients that cannot read PKCS#12
    /// (NetworkManager), from PKI_DIR.
    pub cert_pem_path: Option<PathBuf>,
    pub key_path: Option<PathBuf>,
}

impl std::fmt::Debug for UserCreds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCreds")
            .field("user", &self.user)
            .field("auth", &self.auth)
            .field("local_id", &self.local_id)
            .field("ca_der", &self.ca_der.as_ref().map(|d| d.len()))
            .field("p12", &self.p12.as_ref().map(|_| "<redacted>"))
            .field("key_algorithm", &self.key_algorithm)
            .finish()
    }
}

/// Everything a format writer needs.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Display name on the device.
    pub name: String,
    /// Stable per gateway, connection and user, so that importing a newer
    /// profile replaces the old one (the strongSwan app and Apple's profile
    /// manager both match by UUID/identifier).
    pub uuid: String,
    pub gateway: Gateway,
    pub creds: UserCreds,
}

/// A UUID derived from `parts` (RFC 9562 version 8, "custom": SHA-256 of
/// the parts, version and variant bits set).
pub fn stable_uuid(parts: &[&str]) -> String {
    let mut input: Vec<&[u8]> = vec![b"oxisec profile"];
    for p in parts {
        input.push(b"\0");
        input.push(p.as_bytes());
    }
    let h = oxisec_crypto::hash::sha256(&input);
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Profile {
    pub fn new(name: Option<&str>, gateway: Gateway, creds: UserCreds) -> Profile {
        let uuid = stable_uuid(&[&gateway.address, &gateway.connection, &creds.user]);
        let name = name
            .map(str::to_owned)
            .unwrap_or_else(|| format!("oxisec {}", gateway.address));
        Profile {
            name,
            uuid,
            gateway,
            creds,
        }
    }

    /// A UUID for a sub-part of the profile (Apple payloads).
    fn sub_uuid(&self, part: &str) -> String {
        stable_uuid(&[&self.uuid, part])
    }

    /// The gateway's identity as the clients write it.
    fn gateway_id(&self) -> String {
        self.gateway.id.to_string()
    }
}

/// One generated file: the profile, or a file that goes with it.
#[derive(Debug)]
pub struct Output {
    /// The profile text (or bytes).
    pub main: Zeroizing<Vec<u8>>,
    /// Files to write next to the profile: (suffix after the profile's stem, bytes, private?).
    pub companions: Vec<(String, Zeroizing<Vec<u8>>, bool)>,
    /// What the operator should do with it.
    pub instructions: String,
}

/// Renders `profile` in `format`. Pure: file names of companions are given
/// relative to the profile's own stem `stem`, and `dir` is where the
/// client will keep them (NetworkManager and oxisec refer to files by
/// path).
pub fn render(
    profile: &Profile,
    format: Format,
    stem: &str,
    dir: &Path,
) -> Result<Output, ProfileError> {
    if !matches!(format, Format::Oxisec) && matches!(profile.gateway.auth, GatewayAuth::Psk(_)) {
        return Err(ProfileError::Unsupported(format!(
            "connection {:?} authenticates the gateway with a pre-shared key; the native IKEv2 clients expect a gateway certificate (configure a local certificate for the connection)",
            profile.gateway.connection
        )));
    }
    match format {
        Format::Mobileconfig => apple::render(profile),
        Format::Sswan => sswan::render(profile, true),
        Format::Windows => windows::render(profile),
        Format::Networkmanager => nm::render(profile, stem, dir),
        Format::Oxisec => client::render(profile, stem, dir),
    }
}

/// Reads a small file, refusing anything larger than 1 MiB.
fn read_small(path: &Path) -> Result<Zeroizing<Vec<u8>>, ProfileError> {
    use std::io::Read as _;
    let f = std::fs::File::open(path).map_err(|e| file_err(path, e))?;
    let mut data = Zeroizing::new(Vec::new());
    f.take(MAX_INPUT_FILE + 1)
        .read_to_end(&mut data)
        .map_err(|e| file_err(path, e))?;
    if data.len() as u64 > MAX_INPUT_FILE {
        return Err(file_err(path, "larger than 1 MiB"));
    }
    Ok(data)
}

/// The first line of a passphrase file.
fn read_passphrase(path: &Path) -> Result<Zeroizing<String>, ProfileError> {
    let data = read_small(path)?;
    let text = std::str::from_utf8(&data).map_err(|_| file_err(path, "not UTF-8"))?;
    let line = text.lines().next().unwrap_or("");
    Ok(Zeroizing::new(line.to_owned()))
}

/// The connection clients use: the named one, or the only one, or the only
/// one without remote_addrs (a responder-only connection).
pub fn pick_connection<'a>(
    conns: &'a [std::sync::Arc<Connection>],
    name: Option<&str>,
) -> Result<&'a Connection, ProfileError> {
    let names = || {
        conns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(n) = name {
        return conns
            .iter()
            .find(|c| c.name == n)
            .map(|c| c.as_ref())
            .ok_or_else(|| {
                ProfileError::Config(format!("no connection {n:?} (have: {})", names()))
            });
    }
    if conns.len() == 1 {
        return Ok(&conns[0]);
    }
    let rw: Vec<_> = conns.iter().filter(|c| c.remote_addrs.is_empty()).collect();
    if rw.len() == 1 {
        return Ok(rw[0]);
    }
    Err(ProfileError::Config(format!(
        "choose the connection with --connection (have: {})",
        if conns.is_empty() {
            "none".to_owned()
        } else {
            names()
        }
    )))
}

/// The user's identity from a certificate: the first e-mail or DNS
/// subjectAltName (what strongSwan matches for `user@example.com` and
/// `host.example.com` identities), else the subject DN.
fn cert_identity(cert: &oxisec_pki::Certificate) -> String {
    use oxisec_pki::SubjectAltName;
    cert.subject_alt_names()
        .iter()
        .find_map(|s| match s {
            SubjectAltName::Email(e) => Some(e.clone()),
            SubjectAltName::Dns(d) => Some(d.clone()),
            _ => None,
        })
        .unwrap_or_else(|| cert.subject())
}

/// Gathers the user's credentials from the files named by `args`.
fn gather_creds(args: &ProfileArgs) -> Result<UserCreds, ProfileError> {
    crate::users::check_name(&args.user)?;
    let p12_path = args.p12.clone().unwrap_or_else(|| {
        args.pki_dir
            .join("exports")
            .join(format!("{}.p12", args.user))
    });
    let p12_exists = p12_path.exists();
    let auth = args.auth.unwrap_or(if p12_exists {
        ClientAuth::Cert
    } else {
        ClientAuth::Eap
    });

    if auth.uses_eap() {
        let db = UserDb::load(&args.users_file)?;
        let user = db.find(&args.user).ok_or_else(|| {
            ProfileError::Config(format!(
                "no user {:?} in {}: add it with `oxisec user add {}`",
                args.user,
                args.users_file.display(),
                args.user
            ))
        })?;
        if user.disabled() {
            return Err(ProfileError::Config(format!(
                "user {:?} is disabled (`oxisec user enable {}`)",
                args.user,
                user.name()
            )));
        }
    }

    let ca_path = args
        .ca
        .clone()
        .unwrap_or_else(|| args.pki_dir.join("ca.crt"));
    let ca_der = if ca_path.exists() || args.ca.is_some() {
        let data = read_small(&ca_path)?;
        let certs =
            oxisec_pki::Certificate::from_pem_or_der(&data).map_err(|e| file_err(&ca_path, e))?;
        let ca = certs
            .into_iter()
            .next()
            .ok_or_else(|| file_err(&ca_path, "no certificate"))?;
        if !ca.is_ca() {
            return Err(file_err(
                &ca_path,
                "not a CA certificate (basicConstraints cA is not set)",
            ));
        }
        Some(ca.der().to_vec())
    } else {
        None
    };

    let mut local_id = args.local_id.clone();
    let (mut p12, mut key_algorithm, mut p12_passphrase) = (None, None, None);
    if auth.uses_cert() {
        if !p12_exists {
            return Err(file_err(
                &p12_path,
                "no PKCS#12 bundle for certificate authentication (create one with `oxisec pki`, or give --p12)",
            ));
        }
        let data = read_small(&p12_path)?;
        if let Some(pf) = &args.p12_passphrase_file {
            let pass = read_passphrase(pf)?;
            let (key, certs) = oxisec_pki::load_pkcs12(&data, pass.as_bytes())
                .map_err(|e| file_err(&p12_path, e))?;
            let own = certs
                .first()
                .ok_or_else(|| file_err(&p12_path, "holds no certificate"))?;
            key_algorithm = Some(key.algorithm());
            if local_id.is_none() {
                local_id = Some(cert_identity(own));
            }
            p12_passphrase = Some(pass);
        }
        p12 = Some(data);
    }
    let (cert_pem_path, key_path) = if auth.uses_cert() {
        (
            Some(
                args.pki_dir
                    .join("certs")
                    .join(format!("{}.crt", args.user)),
            ),
            Some(
                args.pki_dir
                    .join("private")
                    .join(format!("{}.key", args.user)),
            ),
        )
    } else {
        (None, None)
    };
    Ok(UserCreds {
        user: args.user.clone(),
        auth,
        local_id: local_id.unwrap_or_else(|| args.user.clone()),
        ca_der,
        p12,
        p12_passphrase,
        key_algorithm,
        cert_pem_path,
        key_path,
    })
}

/// Where the gateway takes a user's groups from, for `conn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupSource {
    /// The users file (`remote_auth = "eap-mschapv2"`).
    UsersFile,
    /// The OUs of the client's certificate (`remote_auth = "cert"` or
    /// `"eap-tls"`).
    Certificate,
    /// The RADIUS server's Access-Accept (`remote_auth = "eap-radius"`).
    Radius,
    /// None: the connection's own values for everyone.
    Nowhere,
}

fn group_source(conn: &Connection) -> GroupSource {
    match conn.remote_auth {
        Auth::Eap(_) => GroupSource::UsersFile,
        Auth::PeerCert(_) | Auth::EapTls(_) => GroupSource::Certificate,
        Auth::EapRelay(_) => GroupSource::Radius,
        _ => GroupSource::Nowhere,
    }
}

/// The user's groups as the gateway will see them, or `None` when this
/// tool cannot know them (a RADIUS server's answer; a certificate it
/// cannot read). Certificate: the bundle's own certificate when its
/// passphrase was given (what the device will present), else
/// PKI_DIR/certs/USER.crt.
fn user_groups(
    args: &ProfileArgs,
    conn: &Connection,
    creds: &UserCreds,
) -> Result<Option<Vec<String>>, ProfileError> {
    if !args.group.is_empty() {
        return Ok(Some(args.group.clone()));
    }
    match group_source(conn) {
        GroupSource::Nowhere => Ok(Some(Vec::new())),
        GroupSource::Radius => Ok(None),
        GroupSource::UsersFile => {
            let db = UserDb::load(&args.users_file)?;
            Ok(Some(db.groups(&args.user).to_vec()))
        }
        GroupSource::Certificate => {
            if let (Some(p12), Some(pass)) = (&creds.p12, &creds.p12_passphrase) {
                let (_, certs) = oxisec_pki::load_pkcs12(p12, pass.as_bytes())
                    .map_err(|e| ProfileError::Config(format!("PKCS#12 bundle: {e}")))?;
                return Ok(certs.first().map(oxisec_ike::certificate_groups));
            }
            let Some(path) = creds.cert_pem_path.as_deref().filter(|p| p.exists()) else {
                return Ok(None);
            };
            let data = read_small(path)?;
            let certs =
                oxisec_pki::Certificate::from_pem_or_der(&data).map_err(|e| file_err(path, e))?;
            Ok(certs.first().map(oxisec_ike::certificate_groups))
        }
    }
}

/// The gateway as `creds`' user gets it: with the values of the user's
/// group. When the groups cannot be known here, the connection's own
/// values (with a warning if it has groups), or an error if it requires one.
fn gateway_for_user(
    args: &ProfileArgs,
    pools: &[PoolConfig],
    conn: &Connection,
    creds: &UserCreds,
) -> Result<Gateway, ProfileError> {
    let address = args.address.as_deref();
    if let Some(groups) = user_groups(args, conn, creds)? {
        return Gateway::for_groups(pools, conn, address, &groups);
    }
    let ra = &conn.remote_access;
    if !ra.groups.is_empty() {
        let whose = match group_source(conn) {
            GroupSource::Radius => "the RADIUS server names the user's groups",
            _ => "the user's certificate could not be read",
        };
        let hint = format!(
            "connection {:?} gives groups their own pools, DNS and subnets, but {whose}: give the user's group with --group",
            conn.name
        );
        if ra.require_group {
            return Err(ProfileError::Config(hint));
        }
        eprintln!("oxisec: warning: {hint} (using the connection's own values)");
    }
    Gateway::from_connection(pools, conn, address)
}

/// Builds the profile from the files `args` names.
pub fn build(args: &ProfileArgs) -> Result<Profile, ProfileError> {
    let loaded =
        crate::config::load(&args.config).map_err(|e| ProfileError::Config(e.to_string()))?;
    let conn = pick_connection(&loaded.ike.connections, args.connection.as_deref())?;
    let mut creds = gather_creds(args)?;
    let gateway = gateway_for_user(args, &loaded.ike.pools, conn, &creds)?;
    // A certificate user of an EAP-TLS gateway logs in with EAP-TLS.
    if args.auth.is_none() && gateway.eap_tls && creds.auth == ClientAuth::Cert {
        creds.auth = ClientAuth::EapTls;
    }
    if gateway.eap_tls != (creds.auth == ClientAuth::EapTls) {
        eprintln!(
            "oxisec: warning: connection {:?} {} EAP-TLS, but the profile is for --auth {:?}; it will not log in",
            gateway.connection,
            if gateway.eap_tls {
                "wants"
            } else {
                "does not do"
            },
            creds.auth
        );
    }
    if matches!(gateway.auth, GatewayAuth::Cert) && creds.ca_der.is_none() {
        return Err(ProfileError::Config(format!(
            "the clients need the CA certificate that signed the gateway's: none at {} (give --ca)",
            args.pki_dir.join("ca.crt").display()
        )));
    }
    // (An oxisec client of a PSK-only gateway just uses the PSK.)
    let psk_only =
        matches!(args.format, Format::Oxisec) && matches!(gateway.auth, GatewayAuth::Psk(_));
    if creds.auth.uses_eap() && !gateway.eap_users && !psk_only {
        // The profile would be refused at the first login.
        eprintln!(
            "oxisec: warning: connection {:?} does not check user names and passwords (set remote_auth = \"eap-mschapv2\" there); this EAP profile will not log in",
            gateway.connection
        );
    }
    if matches!(gateway.id, Identity::Dn(_)) && !matches!(args.format, Format::Oxisec) {
        // Apple and Windows check the name they are given against the
        // certificate's subjectAltNames, never against the subject DN.
        eprintln!(
            "oxisec: warning: connection {:?} identifies the gateway by a distinguished name ({}); native clients match DNS/IP subjectAltNames, so set local_id to the name in the certificate's SAN",
            gateway.connection, gateway.id
        );
    }
    Ok(Profile::new(args.name.as_deref(), gateway, creds))
}

/// Runs `oxisec profile`.
pub fn run(args: ProfileArgs) -> ExitCode {
    match run_inner(&args) {
        Ok(msg) => {
            eprint!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("oxisec: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(args: &ProfileArgs) -> Result<String, ProfileError> {
    if args.qr && !matches!(args.format, Format::Sswan | Format::Oxisec) {
        return Err(ProfileError::Unsupported(format!(
            "--qr is for --format sswan or oxisec (the others are too large or not meant to be scanned), not {:?}",
            args.format
        )));
    }
    let profile = build(args)?;
    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    let out_path = match &args.output {
        Some(p) if !to_stdout => p.clone(),
        _ => PathBuf::from(format!(
            "{}-{}.{}",
            args.user,
            profile.gateway.connection,
            args.format.extension()
        )),
    };
    let stem = out_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| args.user.clone());
    let dir = match out_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let abs_dir = std::fs::canonicalize(&dir).unwrap_or(dir.clone());
    let out = render(&profile, args.format, &stem, &abs_dir)?;
    let mut msg = String::new();
    if to_stdout {
        use std::io::Write as _;
        let mut o = std::io::stdout().lock();
        o.write_all(&out.main)
            .and_then(|()| o.flush())
            .map_err(|e| file_err(Path::new("stdout"), e))?;
    } else {
        write_private_atomic(&out_path, &out.main)?;
        msg.push_str(&format!("wrote {}\n", out_path.display()));
    }
    for (suffix, data, private) in &out.companions {
        let p = dir.join(format!("{stem}{suffix}"));
        if *private {
            write_private_atomic(&p, data)?;
        } else {
            write_atomic(&p, data, 0o644)?;
        }
        msg.push_str(&format!("wrote {}\n", p.display()));
    }
    if args.qr {
        let payload: Zeroizing<Vec<u8>> = match args.format {
            Format::Sswan => qr::fit_sswan(&profile)?,
            _ => out.main.clone(),
        };
        let code = qr::encode(&payload)?;
        print!("{}", qr::render_terminal(&code));
        let png_path = dir.join(format!("{stem}.png"));
        write_private_atomic(&png_path, &qr::render_png(&code, 8)?)?;
        msg.push_str(&format!("wrote {}\n", png_path.display()));
    }
    if let Some(g) = &profile.gateway.group {
        msg.push_str(&format!(
            "{} is in group {g}: the profile has that group's address family, DNS and subnets\n",
            args.user
        ));
    }
    msg.push_str(&out.instructions);
    Ok(msg)
}

#[cfg(test)]
mod tests;
