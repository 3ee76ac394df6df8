//! `oxisec pki`: a small certificate authority for one VPN.
//!
//! Everything lives in one directory (default [`DEFAULT_DIR`]):
//!
//! ```text
//! ca.crt              the CA certificate (give it to every peer)
//! ca.key              its private key (0600)
//! certs/NAME.crt      issued certificates
//! private/NAME.key    their private keys (0600)
//! crl.pem             the current CRL
//! exports/NAME.p12    PKCS#12 bundles for clients (0600)
//! index.json          serials, names, validity, revocations, CRL number
//! ```
//!
//! The directories are 0700: the CA key is the VPN. Other tools (client
//! profiles) read `ca.crt` and `exports/NAME.p12` from this layout.
//!
//! The certificates carry what the native IKEv2 clients check:
//! * gateway (`issue --server NAME`): subject CN=NAME, subjectAltNames with
//!   the DNS name and the `--ip` addresses (Windows and macOS/iOS match the
//!   server name they dial against a SAN, never the CN), EKU serverAuth and
//!   "IP security IKE intermediate" (1.3.6.1.5.5.8.2.2, which Windows asks
//!   for), keyUsage digitalSignature (+ keyEncipherment for RSA);
//! * client (`issue --client user@example.com`): CN=NAME, an rfc822Name
//!   (email) SAN for `user@domain` names, or a DNS SAN for host names, EKU
//!   clientAuth; with `--ou GROUP` the subject is `OU=GROUP, CN=NAME`, which
//!   puts the user in that group of a gateway connection
//!   (`[connections.X.groups.GROUP]`: its pool, DNS and subnets).
//!
//! Certificates and CRLs are made with rcgen (aws-lc-rs), PKCS#12 files
//! with p12-keystore.
use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use oxisec_crypto::{Rng, SystemRng};
use rcgen::{
    CertificateParams, CertificateRevocationListParams, CrlDistributionPoint, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::x509util::fmt_date;

/// Where `oxisec pki` keeps its files unless `--dir` says otherwise.
pub const DEFAULT_DIR: &str = "/etc/oxisec/pki";
/// CA validity unless `--days`.
pub const CA_DAYS: u32 = 3650;
/// End-entity validity unless `--days`: Apple's limit for server
/// certificates (825 days) so that macOS/iOS accept them.
pub const CERT_DAYS: u32 = 825;
/// CRL validity (nextUpdate) unless `--days`; run `oxisec pki crl` before it ends.
pub const CRL_DAYS: u32 = 30;
/// "IP security IKE intermediate", which Windows wants on a gateway's certificate.
const OID_IKE_INTERMEDIATE: [u64; 9] = [1, 3, 6, 1, 5, 5, 8, 2, 2];

/// The key algorithm of a new key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// ECDSA on P-256 (fast, small, accepted by every current client).
    #[default]
    #[value(alias = "p256", alias = "ecdsa-p256")]
    Ecdsa,
    /// RSA 3072 bits (for old clients).
    Rsa,
    /// Ed25519 (RFC 8420; not supported by the Windows and Apple clients).
    Ed25519,
}

impl KeyType {
    fn generate(self) -> Result<KeyPair, PkiError> {
        let r = match self {
            KeyType::Ecdsa => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyType::Rsa => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)
            }
            KeyType::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
        };
        r.map_err(|e| PkiError(format!("cannot generate a {self:?} key: {e}")))
    }
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Server,
    Client,
}

/// Why `oxisec pki` could not do something; the text is for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiError(pub String);

impl fmt::Display for PkiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PkiError {}

fn io_err(what: impl fmt::Display) -> impl FnOnce(std::io::Error) -> PkiError {
    move |e| PkiError(format!("{what}: {e}"))
}

fn gen_err(what: &'static str) -> impl FnOnce(rcgen::Error) -> PkiError {
    move |e| PkiError(format!("{what}: {e}"))
}

/// One issued certificate in `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub name: String,
    pub profile: Profile,
    /// Upper-case hex, as `openssl x509 -serial` prints it.
    pub serial: String,
    pub subject: String,
    /// Seconds since the epoch.
    pub not_after: i64,
    /// Seconds since the epoch, once revoked.
    #[serde(default)]
    pub revoked_at: Option<i64>,
}

/// `index.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Put into every issued certificate as its CRL distribution point.
    #[serde(default)]
    pub crl_url: Option<String>,
    /// The number of the last CRL written.
    #[serde(default)]
    pub crl_number: u64,
    #[serde(default)]
    pub certs: Vec<IndexEntry>,
}

/// What `issue` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRequest {
    /// File name and CN: a host name for servers, `user@domain` (or a
    /// host name) for clients.
    pub name: String,
    pub profile: Profile,
    /// Further DNS SANs.
    pub dns: Vec<String>,
    /// IP address SANs (gateways reached by address).
    pub ips: Vec<IpAddr>,
    /// Further email SANs.
    pub emails: Vec<String>,
    /// Clients: an organizationalUnit for the subject, the user's group on
    /// a gateway that takes groups from certificates. One only: rcgen's
    /// distinguished name holds one value per attribute type, and the
    /// gateway uses the first of a client's groups it lists anyway.
    pub ou: Option<String>,
    pub key_type: KeyType,
    pub days: u32,
}

impl IssueRequest {
    pub fn new(name: &str, profile: Profile) -> IssueRequest {
        IssueRequest {
            name: name.to_owned(),
            profile,
            dns: Vec::new(),
            ips: Vec::new(),
            emails: Vec::new(),
            ou: None,
            key_type: KeyType::default(),
            days: CERT_DAYS,
        }
    }
}

/// A CA directory.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
}

/// Names become file names: letters, digits and `.-_@`, not starting with
/// a dot, at most 253 characters.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
}

/// The longest OU the gateway takes as a group (the engine skips longer
/// ones, as it does overlong RADIUS groups).
pub const MAX_OU_LEN: usize = 64;

/// An OU that the gateway will read back as a group: 1 to 64 octets, no
/// control characters, and no spaces at either end (a group name in the
/// configuration cannot have them either, so such an OU would never match).
fn check_ou(ou: &str) -> Result<(), PkiError> {
    if ou.is_empty() || ou.len() > MAX_OU_LEN || ou.chars().any(char::is_control) || ou.trim() != ou
    {
        return Err(PkiError(format!(
            "--ou {ou:?}: a group name of 1 to {MAX_OU_LEN} bytes without control characters or surrounding spaces"
        )));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), PkiError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(PkiError(format!(
            "{name:?} is not a usable name: use a host name (vpn.example.com), an IP address or user@domain"
        )))
    }
}

/// Creates a directory (and its parents) with mode 0700, and makes an
/// existing one 0700 too.
fn private_dir(path: &Path) -> Result<(), PkiError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(path)
        .map_err(io_err(format_args!("cannot create {}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(format_args!("cannot chmod {}", path.display())))?;
    }
    Ok(())
}

/// Writes a file atomically (temporary file, then rename) with `mode`,
/// which is set before any byte is written.
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), PkiError> {
    let tmp = path.with_extension("tmp~");
    let _ = std::fs::remove_file(&tmp);
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = o
        .open(&tmp)
        .map_err(io_err(format_args!("cannot create {}", tmp.display())))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(io_err(format_args!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io_err(format_args!("cannot write {}", path.display())))
}

fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    std::fs::read(path).map_err(io_err(format_args!("cannot read {}", path.display())))
}

/// A random positive 16-byte serial (RFC 5280 §4.1.2.2: at most 20 octets;
/// CA/Browser rules want 64 random bits at least).
fn random_serial() -> SerialNumber {
    let mut s = [0u8; 16];
    SystemRng.fill(&mut s);
    s[0] = (s[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&s)
}

fn days_from_now(days: u32) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    // Backdated a little for peers whose clocks run slow.
    (
        now - time::Duration::minutes(10),
        now + time::Duration::days(i64::from(days)),
    )
}

fn key_usages(key: &KeyPair) -> Vec<KeyUsagePurpose> {
    let mut ku = vec![KeyUsagePurpose::DigitalSignature];
    if key.algorithm() == &rcgen::PKCS_RSA_SHA256 {
        // Older Windows versions insist on it for RSA certificates.
        ku.push(KeyUsagePurpose::KeyEncipherment);
    }
    ku
}

impl Pki {
    /// A CA directory that `init-ca` has set up.
    pub fn open(dir: &Path) -> Result<Pki, PkiError> {
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        if !pki.ca_key_path().exists() || !pki.ca_cert_path().exists() {
            return Err(PkiError(format!(
                "{} holds no CA (ca.crt and ca.key): run `oxisec pki init-ca --cn \"…\"` first{}",
                dir.display(),
                if dir == Path::new(DEFAULT_DIR) {
                    ""
                } else {
                    " with the same --dir"
                }
            )));
        }
        Ok(pki)
    }

    /// Creates the CA: key, self-signed certificate, empty CRL, index.
    /// Refuses to replace an existing CA (every certificate depends on it).
    pub fn init_ca(
        dir: &Path,
        cn: &str,
        key_type: KeyType,
        days: u32,
        crl_url: Option<&str>,
    ) -> Result<Pki, PkiError> {
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        if pki.ca_key_path().exists() {
            return Err(PkiError(format!(
                "{} already exists: a CA is set up in {}; remove the directory first to start over (every certificate it issued stops working)",
                pki.ca_key_path().display(),
                dir.display()
            )));
        }
        if cn.trim().is_empty() {
            return Err(PkiError("the CA needs a name (--cn)".into()));
        }
        if let Some(u) = crl_url
            && !u.starts_with("http://")
        {
            return Err(PkiError(format!(
                "--crl-url {u}: use an http:// URL (CRLs are signed; peers fetch them over plain HTTP)"
            )));
        }
        if days == 0 {
            return Err(PkiError("--days must be at least 1".into()));
        }
        private_dir(dir)?;
        let key = key_type.generate()?;
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        (p.not_before, p.not_after) = days_from_now(days);
        p.serial_number = Some(random_serial());
        p.key_identifier_method = KeyIdMethod::Sha256;
        let cert = p.self_signed(&key).map_err(gen_err("cannot sign the CA"))?;
        let key_pem = Zeroizing::new(key.serialize_pem());
        write_file(&pki.ca_key_path(), key_pem.as_bytes(), 0o600)?;
        write_file(&pki.ca_cert_path(), cert.pem().as_bytes(), 0o644)?;
        let index = Index {
            crl_url: crl_url.map(str::to_owned),
            ..Index::default()
        };
        pki.save_index(&index)?;
        pki.write_crl(CRL_DAYS)?;
        Ok(pki)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key_path(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn crl_path(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }
    pub fn cert_path(&self, name: &str) -> PathBuf {
        self.dir.join("certs").join(format!("{name}.crt"))
    }
    pub fn key_path(&self, name: &str) -> PathBuf {
        self.dir.join("private").join(format!("{name}.key"))
    }
    pub fn p12_path(&self, name: &str) -> PathBuf {
        self.dir.join("exports").join(format!("{name}.p12"))
    }
    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    pub fn index(&self) -> Result<Index, PkiError> {
        let path = self.index_path();
        if !path.exists() {
            return Ok(Index::default());
        }
        serde_json::from_slice(&read(&path)?)
            .map_err(|e| PkiError(format!("{}: {e}", path.display())))
    }

    fn save_index(&self, index: &Index) -> Result<(), PkiError> {
        let text =
            serde_json::to_string_pretty(index).map_err(|e| PkiError(format!("index: {e}")))?;
        write_file(&self.index_path(), format!("{text}\n").as_bytes(), 0o600)
    }

    /// The CA's key and the issuer it makes.
    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, PkiError> {
        let key_pem = Zeroizing::new(
            String::from_utf8(read(&self.ca_key_path())?)
                .map_err(|_| PkiError("ca.key is not PEM".into()))?,
        );
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| PkiError(format!("{}: {e}", self.ca_key_path().display())))?;
        let pem = read(&self.ca_cert_path())?;
        let der = pem::parse(&pem)
            .map_err(|e| PkiError(format!("{}: {e}", self.ca_cert_path().display())))?;
        Issuer::from_ca_cert_der(&der.contents().into(), key)
            .map_err(|e| PkiError(format!("{}: {e}", self.ca_cert_path().display())))
    }

    /// Issues a certificate and its key; refuses a name that already has a
    /// valid (unrevoked) certificate.
    pub fn issue(&self, req: &IssueRequest) -> Result<IndexEntry, PkiError> {
        check_name(&req.name)?;
        if req.days == 0 {
            return Err(PkiError("--days must be at least 1".into()));
        }
        let mut index = self.index()?;
        if index
            .certs
            .iter()
            .any(|c| c.name == req.name && c.revoked_at.is_none())
        {
            return Err(PkiError(format!(
                "{} already has a certificate; `oxisec pki revoke {}` first to replace it",
                req.name, req.name
            )));
        }
        let issuer = self.issuer()?;
        let key = req.key_type.generate()?;

        let mut sans = Vec::new();
        let ia5 = |s: &str| {
            rcgen::string::Ia5String::try_from(s)
                .map_err(|e| PkiError(format!("{s:?} cannot be a subjectAltName: {e}")))
        };
        let name_ip = req.name.parse::<IpAddr>().ok();
        match (name_ip, req.name.contains('@')) {
            (Some(ip), _) => sans.push(SanType::IpAddress(ip)),
            (None, true) => sans.push(SanType::Rfc822Name(ia5(&req.name)?)),
            (None, false) => sans.push(SanType::DnsName(ia5(&req.name)?)),
        }
        if let Some(ou) = &req.ou {
            if req.profile == Profile::Server {
                return Err(PkiError(
                    "--ou is for --client: it names the user's group on the gateway".into(),
                ));
            }
            check_ou(ou)?;
        }
        if req.profile == Profile::Server && req.name.contains('@') {
            return Err(PkiError(format!(
                "--server {}: a gateway is named by its host name or address",
                req.name
            )));
        }
        for d in &req.dns {
            check_name(d)?;
            sans.push(SanType::DnsName(ia5(d)?));
        }
        for e in &req.emails {
            if !e.contains('@') {
                return Err(PkiError(format!("--email {e}: not an email address")));
            }
            sans.push(SanType::Rfc822Name(ia5(e)?));
        }
        for ip in &req.ips {
            sans.push(SanType::IpAddress(*ip));
        }
        sans.dedup();

        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        // OU before CN, as CAs usually write it (the gateway reads every OU
        // wherever it stands).
        if let Some(ou) = &req.ou {
            dn.push(DnType::OrganizationalUnitName, ou.as_str());
        }
        dn.push(DnType::CommonName, req.name.as_str());
        p.distinguished_name = dn;
        p.subject_alt_names = sans;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = key_usages(&key);
        p.extended_key_usages = match req.profile {
            Profile::Server => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::Other(OID_IKE_INTERMEDIATE.to_vec()),
            ],
            Profile::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        (p.not_before, p.not_after) = days_from_now(req.days);
        let serial = random_serial();
        p.serial_number = Some(serial.clone());
        p.use_authority_key_identifier_extension = true;
        p.key_identifier_method = KeyIdMethod::Sha256;
        if let Some(url) = &index.crl_url {
            p.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![url.clone()],
            }];
        }
        let cert = p
            .signed_by(&key, &issuer)
            .map_err(gen_err("cannot sign the certificate"))?;

        private_dir(&self.dir.join("certs"))?;
        private_dir(&self.dir.join("private"))?;
        let key_pem = Zeroizing::new(key.serialize_pem());
        write_file(&self.key_path(&req.name), key_pem.as_bytes(), 0o600)?;
        write_file(&self.cert_path(&req.name), cert.pem().as_bytes(), 0o644)?;
        let entry = IndexEntry {
            name: req.name.clone(),
            profile: req.profile,
            serial: hex_upper(serial.as_ref()),
            subject: match &req.ou {
                Some(ou) => format!("OU={ou}, CN={}", req.name),
                None => format!("CN={}", req.name),
            },
            not_after: p.not_after.unix_timestamp(),
            revoked_at: None,
        };
        index.certs.push(entry.clone());
        self.save_index(&index)?;
        Ok(entry)
    }

    /// Revokes every valid certificate of `name` and writes a new CRL.
    pub fn revoke(&self, name: &str) -> Result<Vec<IndexEntry>, PkiError> {
        let mut index = self.index()?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut done = Vec::new();
        for c in index
            .certs
            .iter_mut()
            .filter(|c| c.name == name && c.revoked_at.is_none())
        {
            c.revoked_at = Some(now);
            done.push(c.clone());
        }
        if done.is_empty() {
            return Err(PkiError(format!(
                "no valid certificate named {name:?} (see `oxisec pki list`)"
            )));
        }
        self.save_index(&index)?;
        self.write_crl(CRL_DAYS)?;
        // Its PKCS#12 bundle must not be handed out any more.
        let _ = std::fs::remove_file(self.p12_path(name));
        Ok(done)
    }

    /// Writes `crl.pem`: every revoked certificate that has not expired,
    /// valid for `days`.
    pub fn write_crl(&self, days: u32) -> Result<PathBuf, PkiError> {
        if days == 0 {
            return Err(PkiError("--days must be at least 1".into()));
        }
        let mut index = self.index()?;
        let issuer = self.issuer()?;
        let now = time::OffsetDateTime::now_utc();
        let mut revoked = Vec::new();
        for c in &index.certs {
            let Some(at) = c.revoked_at else { continue };
            if c.not_after < now.unix_timestamp() {
                continue; // RFC 5280 §3.3: expired entries may be dropped.
            }
            let serial = hex_decode(&c.serial)
                .ok_or_else(|| PkiError(format!("index: bad serial {:?}", c.serial)))?;
            revoked.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&serial),
                revocation_time: time::OffsetDateTime::from_unix_timestamp(at).unwrap_or(now),
                reason_code: Some(RevocationReason::Unspecified),
                invalidity_date: None,
            });
        }
        index.crl_number += 1;
        let crl = CertificateRevocationListParams {
            this_update: now - time::Duration::minutes(10),
            next_update: now + time::Duration::days(i64::from(days)),
            crl_number: SerialNumber::from(index.crl_number),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .map_err(gen_err("cannot sign the CRL"))?;
        let pem = crl.pem().map_err(gen_err("cannot encode the CRL"))?;
        write_file(&self.crl_path(), pem.as_bytes(), 0o644)?;
        self.save_index(&index)?;
        Ok(self.crl_path())
    }

    /// Writes `exports/NAME.p12`: key, certificate and CA certificate,
    /// encrypted with `passphrase`. `legacy` uses 3DES and an SHA-1 MAC,
    /// for clients that cannot read AES-encrypted bundles (macOS/iOS
    /// before 2023, Windows before 10 1709).
    pub fn export(&self, name: &str, passphrase: &str, legacy: bool) -> Result<PathBuf, PkiError> {
        check_name(name)?;
        let index = self.index()?;
        if !index
            .certs
            .iter()
            .any(|c| c.name == name && c.revoked_at.is_none())
        {
            return Err(PkiError(format!(
                "no valid certificate named {name:?} (see `oxisec pki list`)"
            )));
        }
        let cert = pem::parse(read(&self.cert_path(name))?)
            .map_err(|e| PkiError(format!("{}: {e}", self.cert_path(name).display())))?;
        let ca = pem::parse(read(&self.ca_cert_path())?)
            .map_err(|e| PkiError(format!("{}: {e}", self.ca_cert_path().display())))?;
        let key_pem = Zeroizing::new(read(&self.key_path(name))?);
        let key = pem::parse(&*key_pem)
            .map_err(|e| PkiError(format!("{}: {e}", self.key_path(name).display())))?;
        let p12err = |e: p12_keystore::error::Error| PkiError(format!("PKCS#12: {e}"));
        let chain = vec![
            p12_keystore::Certificate::from_der(cert.contents()).map_err(p12err)?,
            p12_keystore::Certificate::from_der(ca.contents()).map_err(p12err)?,
        ];
        let key_id = {
            let mut id = vec![0u8; 20];
            SystemRng.fill(&mut id);
            id
        };
        let pk = p12_keystore::PrivateKey::from_der(key.contents()).map_err(p12err)?;
        let mut ks = p12_keystore::KeyStore::new();
        ks.add_entry(
            name,
            p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
                key_id, pk, chain,
            )),
        );
        let mut w = ks.writer(passphrase);
        if legacy {
            w = w
                .encryption_algorithm(
                    p12_keystore::EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
                )
                .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha1)
                .encryption_iterations(2048)
                .mac_iterations(2048);
        }
        let data = Zeroizing::new(w.write().map_err(p12err)?);
        private_dir(&self.dir.join("exports"))?;
        let path = self.p12_path(name);
        write_file(&path, &data, 0o600)?;
        Ok(path)
    }

    /// `list`: one line per certificate.
    pub fn list_text(&self) -> Result<String, PkiError> {
        use std::fmt::Write as _;
        let index = self.index()?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<32} {:<7} {:<33} {:<21} STATUS",
            "NAME", "TYPE", "SERIAL", "NOT AFTER"
        );
        for c in &index.certs {
            let status = match c.revoked_at {
                Some(at) => format!("revoked {}", fmt_date(crate::x509util::from_unix(at))),
                None if c.not_after < now => "expired".to_owned(),
                None => "valid".to_owned(),
            };
            let _ = writeln!(
                s,
                "{:<32} {:<7} {:<33} {:<21} {status}",
                c.name,
                match c.profile {
                    Profile::Server => "server",
                    Profile::Client => "client",
                },
                c.serial,
                fmt_date(crate::x509util::from_unix(c.not_after))
            );
        }
        Ok(s)
    }
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.is_empty() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A passphrase for `export` when none is given: 20 characters from an
/// alphabet without look-alikes (about 100 bits).
pub fn random_passphrase() -> Zeroizing<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut out = Zeroizing::new(String::with_capacity(20));
    let mut b = [0u8; 1];
    while out.len() < 20 {
        SystemRng.fill(&mut b);
        // Rejection sampling keeps the choice uniform.
        let v = usize::from(b[0]);
        if v < 256 - 256 % ALPHABET.len() {
            out.push(char::from(ALPHABET[v % ALPHABET.len()]));
        }
    }
    out
}

/// When `cert` (PEM) expires, for messages.
pub fn not_after_text(entry: &IndexEntry) -> String {
    fmt_date(crate::x509util::from_unix(entry.not_after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxisec_pki::{
        CertError, Certificate, EkuPolicy, IdClaim, RevocationPolicy, TrustStore, ValidationPolicy,
        eku,
    };
    use std::time::SystemTime;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("oxisec-pki-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn cert(pki: &Pki, name: &str) -> Certificate {
        Certificate::from_pem_or_der(&std::fs::read(pki.cert_path(name)).unwrap())
            .unwrap()
            .remove(0)
    }

    fn store(pki: &Pki, eku: EkuPolicy, crl: bool) -> TrustStore {
        let ca = Certificate::from_pem_or_der(&std::fs::read(pki.ca_cert_path()).unwrap())
            .unwrap()
            .remove(0);
        let mut t = TrustStore::new(
            vec![ca],
            ValidationPolicy {
                eku,
                revocation: RevocationPolicy::Relaxed,
                ..ValidationPolicy::default()
            },
        );
        if crl {
            t.add_crl(&std::fs::read(pki.crl_path()).unwrap()).unwrap();
        }
        t
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn issued_certificates_validate_for_their_purpose() {
        let dir = tmpdir("issue");
        let pki = Pki::init_ca(&dir, "Example CA", KeyType::Ecdsa, 30, None).unwrap();
        let mut gw = IssueRequest::new("vpn.example.com", Profile::Server);
        gw.ips = vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        pki.issue(&gw).unwrap();
        pki.issue(&IssueRequest::new("alice@example.com", Profile::Client))
            .unwrap();
        let now = SystemTime::now();

        let s = cert(&pki, "vpn.example.com");
        let ekus = s.extended_key_usage().unwrap();
        assert!(ekus.contains(&eku::SERVER_AUTH.to_owned()), "{ekus:?}");
        assert!(ekus.contains(&eku::IKE_INTERMEDIATE.to_owned()), "{ekus:?}");
        assert!(s.key_usage().unwrap().digital_signature());
        let gw_store = store(&pki, EkuPolicy::Gateway, true);
        for claim in [
            IdClaim::Fqdn("vpn.example.com".into()),
            IdClaim::Ip("192.0.2.1".parse().unwrap()),
            IdClaim::Ip("2001:db8::1".parse().unwrap()),
            IdClaim::Dn(oxisec_pki::dn_from_text("CN=vpn.example.com").unwrap()),
        ] {
            gw_store
                .validate(std::slice::from_ref(&s), now, &claim)
                .unwrap();
        }
        assert!(matches!(
            gw_store.validate(
                std::slice::from_ref(&s),
                now,
                &IdClaim::Fqdn("other.example.com".into())
            ),
            Err(CertError::IdentityMismatch { .. })
        ));

        let c = cert(&pki, "alice@example.com");
        let client_store = store(&pki, EkuPolicy::Client, true);
        client_store
            .validate(
                std::slice::from_ref(&c),
                now,
                &IdClaim::Email("alice@example.com".into()),
            )
            .unwrap();
        // A client certificate is no gateway's. (The other way round the
        // pki crate accepts iKEIntermediate under either policy, as Windows
        // certificates may carry only that.)
        assert!(matches!(
            gw_store.validate(&[c], now, &IdClaim::Email("alice@example.com".into())),
            Err(CertError::WrongKeyUsage(_))
        ));
        // A second certificate for the same name needs a revoke first.
        assert!(
            pki.issue(&IssueRequest::new("vpn.example.com", Profile::Server))
                .unwrap_err()
                .0
                .contains("revoke")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_revoked_certificate_fails_through_the_crl() {
        let dir = tmpdir("revoke");
        let pki = Pki::init_ca(
            &dir,
            "Example CA",
            KeyType::Ecdsa,
            30,
            Some("http://192.0.2.1/crl.pem"),
        )
        .unwrap();
        pki.issue(&IssueRequest::new("bob@example.com", Profile::Client))
            .unwrap();
        pki.issue(&IssueRequest::new("carol@example.com", Profile::Client))
            .unwrap();
        pki.export("bob@example.com", "pw", false).unwrap();
        let bob = cert(&pki, "bob@example.com");
        assert_eq!(bob.crl_distribution_points(), ["http://192.0.2.1/crl.pem"]);
        let now = SystemTime::now();
        let claim = IdClaim::Email("bob@example.com".into());
        store(&pki, EkuPolicy::Client, true)
            .validate(std::slice::from_ref(&bob), now, &claim)
            .unwrap();

        let revoked = pki.revoke("bob@example.com").unwrap();
        assert_eq!(revoked.len(), 1);
        assert!(!pki.p12_path("bob@example.com").exists());
        let t = store(&pki, EkuPolicy::Client, true);
        match t.validate(&[bob], now, &claim) {
            Err(CertError::Revoked { serial, .. }) => {
                assert_eq!(serial.replace(':', "").to_uppercase(), revoked[0].serial)
            }
            other => panic!("{other:?}"),
        }
        // The others stay valid; a name can be issued again once revoked.
        t.validate(
            &[cert(&pki, "carol@example.com")],
            now,
            &IdClaim::Email("carol@example.com".into()),
        )
        .unwrap();
        assert!(pki.revoke("bob@example.com").is_err());
        pki.issue(&IssueRequest::new("bob@example.com", Profile::Client))
            .unwrap();
        assert_eq!(pki.index().unwrap().certs.len(), 3);
        assert!(pki.index().unwrap().crl_number >= 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn secrets_are_private() {
        let dir = tmpdir("modes");
        let pki = Pki::init_ca(&dir, "Example CA", KeyType::Ecdsa, 30, None).unwrap();
        pki.issue(&IssueRequest::new("gw.example.com", Profile::Server))
            .unwrap();
        let p12 = pki.export("gw.example.com", "secret", false).unwrap();
        assert_eq!(mode(&pki.ca_key_path()), 0o600);
        assert_eq!(mode(&pki.key_path("gw.example.com")), 0o600);
        assert_eq!(mode(&p12), 0o600);
        assert_eq!(mode(&dir.join("index.json")), 0o600);
        for d in ["", "certs", "private", "exports"] {
            assert_eq!(mode(&dir.join(d)), 0o700, "{d}");
        }
        assert_eq!(mode(&pki.ca_cert_path()), 0o644);
        // A second init-ca never replaces the CA.
        assert!(
            Pki::init_ca(&dir, "Other CA", KeyType::Ecdsa, 30, None)
                .unwrap_err()
                .0
                .contains("already exists")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pkcs12_round_trips_for_every_key_type() {
        let dir = tmpdir("p12");
        let pki = Pki::init_ca(&dir, "Example CA", KeyType::Rsa, 30, None).unwrap();
        for (i, kt) in [KeyType::Ecdsa, KeyType::Rsa, KeyType::Ed25519]
            .into_iter()
            .enumerate()
        {
            let name = format!("user{i}@example.com");
            let mut r = IssueRequest::new(&name, Profile::Client);
            r.key_type = kt;
            pki.issue(&r).unwrap();
            for legacy in [false, true] {
                let path = pki.export(&name, "pässword", legacy).unwrap();
                let data = std::fs::read(&path).unwrap();
                let (key, certs) = oxisec_pki::load_pkcs12(&data, "pässword".as_bytes()).unwrap();
                assert_eq!(certs.len(), 2, "{kt:?}");
                assert_eq!(key.public_key_der(), certs[0].spki_der(), "{kt:?}");
                assert_eq!(certs[0].subject(), format!("CN={name}"));
                assert!(certs[1].is_ca());
                assert!(oxisec_pki::load_pkcs12(&data, b"wrong").is_err());
                // And it signs what the certificate's key verifies.
                let scheme = key.schemes()[0];
                let sig = key.sign(scheme, b"data").unwrap();
                certs[0]
                    .public_key()
                    .unwrap()
                    .verify(scheme, b"data", &sig)
                    .unwrap();
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_ou_puts_a_client_in_a_gateway_group() {
        let dir = tmpdir("ou");
        let pki = Pki::init_ca(&dir, "Example CA", KeyType::Ecdsa, 30, None).unwrap();
        let mut req = IssueRequest::new("frank@example.org", Profile::Client);
        req.ou = Some("staff".into());
        let e = pki.issue(&req).unwrap();
        assert_eq!(e.subject, "OU=staff, CN=frank@example.org");
        let c = cert(&pki, "frank@example.org");
        // (RFC 4514 text: last RDN first.)
        assert_eq!(c.subject(), "CN=frank@example.org, OU=staff");
        // What the gateway's engine reads from it.
        assert_eq!(oxisec_ike::certificate_groups(&c), ["staff"]);
        // It is still an ordinary client certificate of this CA, and its
        // DN with the OU is an identity it can be matched by.
        let client_store = store(&pki, EkuPolicy::Client, false);
        for claim in [
            IdClaim::Email("frank@example.org".into()),
            IdClaim::Dn(oxisec_pki::dn_from_text("OU=staff, CN=frank@example.org").unwrap()),
        ] {
            client_store
                .validate(std::slice::from_ref(&c), SystemTime::now(), &claim)
                .unwrap();
        }
        // Without --ou: no groups.
        pki.issue(&IssueRequest::new("gina@example.org", Profile::Client))
            .unwrap();
        assert!(oxisec_ike::certificate_groups(&cert(&pki, "gina@example.org")).is_empty());

        // OUs the gateway would never match, and gateways, are refused
        // before anything is written.
        for bad in ["", " staff", "a\nb", &"x".repeat(MAX_OU_LEN + 1)] {
            let mut r = IssueRequest::new("h@example.org", Profile::Client);
            r.ou = Some(bad.to_string());
            assert!(pki.issue(&r).unwrap_err().0.contains("--ou"), "{bad:?}");
        }
        let mut gw = IssueRequest::new("vpn.example.org", Profile::Server);
        gw.ou = Some("staff".into());
        assert!(pki.issue(&gw).unwrap_err().0.contains("--client"));
        assert!(!pki.cert_path("h@example.org").exists());
        assert!(!pki.cert_path("vpn.example.org").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_bad_names_and_a_missing_ca() {
        let dir = tmpdir("names");
        assert!(Pki::open(&dir).unwrap_err().0.contains("init-ca"));
        let pki = Pki::init_ca(&dir, "Example CA", KeyType::Ecdsa, 30, None).unwrap();
        for bad in ["", "../etc/passwd", "a/b", ".hidden", "a b"] {
            assert!(
                pki.issue(&IssueRequest::new(bad, Profile::Client)).is_err(),
                "{bad:?}"
            );
        }
        assert!(
            pki.issue(&IssueRequest::new("a@b.example", Profile::Server))
                .is_err()
        );
        assert!(pki.export("nobody", "x", false).is_err());
        assert!(Pki::init_ca(&tmpdir("url"), "CA", KeyType::Ecdsa, 30, Some("ldap://x")).is_err());
        // An IP address as a gateway's name becomes an IP SAN.
        pki.issue(&IssueRequest::new("192.0.2.7", Profile::Server))
            .unwrap();
        store(&pki, EkuPolicy::Gateway, false)
            .validate(
                &[cert(&pki, "192.0.2.7")],
                SystemTime::now(),
                &IdClaim::Ip("192.0.2.7".parse().unwrap()),
            )
            .unwrap();
        assert!(pki.list_text().unwrap().contains("192.0.2.7"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn random_passphrases_look_right() {
        let a = random_passphrase();
        assert_eq!(a.len(), 20);
        assert_ne!(*a, *random_passphrase());
        assert_eq!(hex_decode("0A1b"), Some(vec![0x0a, 0x1b]));
        assert_eq!(hex_decode("0"), None);
    }
}
