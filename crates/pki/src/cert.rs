//! Certificate parsing (x509-parser), the fields IKE needs, DN text and
//! identity matching.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_CRL_DISTRIBUTION_POINTS,
    OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE, OID_X509_EXT_SUBJECT_ALT_NAME,
};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::der::{self, Reader};
use crate::{CertError, Certificate, IdClaim, KeyError, PublicKey};

/// Certificates larger than this are refused before parsing. Real IKE
/// certificates are 0.5–3 KiB; the limit bounds parser work per CERT payload.
pub const MAX_CERT_SIZE: usize = 64 * 1024;
/// A certificate file (a CA bundle) larger than this is refused.
const MAX_BUNDLE_SIZE: usize = 16 << 20;
/// At most this many certificates per file.
const MAX_BUNDLE_CERTS: usize = 4096;

/// A subjectAltName entry IKE can match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectAltName {
    Dns(String),
    Email(String),
    Ip(IpAddr),
    /// DER of an X.501 Name.
    DirectoryName(Vec<u8>),
    Uri(String),
}

impl core::fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SubjectAltName::Dns(s) => write!(f, "DNS:{}", printable(s)),
            SubjectAltName::Email(s) => write!(f, "email:{}", printable(s)),
            SubjectAltName::Ip(ip) => write!(f, "IP:{ip}"),
            SubjectAltName::DirectoryName(d) => write!(f, "DirName:{}", dn_der_to_string(d)),
            SubjectAltName::Uri(s) => write!(f, "URI:{}", printable(s)),
        }
    }
}

/// keyUsage bits (RFC 5280 §4.2.1.3), bit 0 = digitalSignature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsageFlags(pub u16);

impl KeyUsageFlags {
    pub fn digital_signature(self) -> bool {
        self.0 & 1 != 0
    }
    /// Also called contentCommitment.
    pub fn non_repudiation(self) -> bool {
        self.0 & 2 != 0
    }
    pub fn key_encipherment(self) -> bool {
        self.0 & 4 != 0
    }
    pub fn key_cert_sign(self) -> bool {
        self.0 & 32 != 0
    }
    pub fn crl_sign(self) -> bool {
        self.0 & 64 != 0
    }
}

impl core::fmt::Display for KeyUsageFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [&str; 9] = [
            "digitalSignature",
            "nonRepudiation",
            "keyEncipherment",
            "dataEncipherment",
            "keyAgreement",
            "keyCertSign",
            "cRLSign",
            "encipherOnly",
            "decipherOnly",
        ];
        let set: Vec<&str> = NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect();
        if set.is_empty() {
            f.write_str("(none)")
        } else {
            f.write_str(&set.join(", "))
        }
    }
}

/// basicConstraints (RFC 5280 §4.2.1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasicConstraints {
    pub ca: bool,
    pub path_len: Option<u32>,
}

/// Well-known EKU OIDs, dotted.
pub mod eku {
    pub const SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
    pub const CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
    /// id-kp-ipsecIKE (RFC 4945).
    pub const IPSEC_IKE: &str = "1.3.6.1.5.5.7.3.17";
    /// anyExtendedKeyUsage (RFC 5280).
    pub const ANY: &str = "2.5.29.37.0";
    /// "IP security IKE intermediate", which Windows puts on IKE certificates.
    pub const IKE_INTERMEDIATE: &str = "1.3.6.1.5.5.8.2.2";

    pub(crate) fn name(oid: &str) -> &str {
        match oid {
            SERVER_AUTH => "serverAuth",
            CLIENT_AUTH => "clientAuth",
            IPSEC_IKE => "ipsecIKE",
            ANY => "anyExtendedKeyUsage",
            IKE_INTERMEDIATE => "iKEIntermediate",
            "1.3.6.1.5.5.7.3.3" => "codeSigning",
            "1.3.6.1.5.5.7.3.4" => "emailProtection",
            "1.3.6.1.5.5.7.3.8" => "timeStamping",
            "1.3.6.1.5.5.7.3.9" => "OCSPSigning",
            other => other,
        }
    }
}

/// Everything we read from a certificate, extracted once at parse time.
#[derive(Debug)]
pub(crate) struct CertInfo {
    pub subject: String,
    pub subject_der: Vec<u8>,
    pub issuer: String,
    pub issuer_der: Vec<u8>,
    /// Serial magnitude without leading zero bytes.
    pub serial: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    pub spki: Vec<u8>,
    pub sans: Vec<SubjectAltName>,
    pub key_usage: Option<KeyUsageFlags>,
    /// Dotted OIDs; `None` when the extension is absent.
    pub ekus: Option<Vec<String>>,
    pub basic_constraints: Option<BasicConstraints>,
    /// URIs of the CRL distribution points' full names.
    pub crl_uris: Vec<String>,
}

fn malformed(what: impl core::fmt::Display) -> CertError {
    CertError::Malformed(what.to_string())
}

impl Certificate {
    /// Parses one DER certificate; rejects trailing data and absurd sizes
    /// (over [`MAX_CERT_SIZE`]), duplicate extensions and malformed SAN,
    /// keyUsage, EKU, basicConstraints or CRL distribution point extensions.
    pub fn from_der(der: &[u8]) -> Result<Certificate, CertError> {
        if der.len() > MAX_CERT_SIZE {
            return Err(malformed(format!(
                "certificate of {} bytes (limit {MAX_CERT_SIZE})",
                der.len()
            )));
        }
        let (rest, x509) = X509Certificate::from_der(der)
            .map_err(|e| malformed(format!("not an X.509 certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(malformed(format!(
                "{} bytes after the certificate",
                rest.len()
            )));
        }
        let info = extract(&x509)?;
        Ok(Certificate {
            der: der.to_vec(),
            info: Arc::new(info),
        })
    }

    /// All certificates in a PEM or DER file's contents: every
    /// `CERTIFICATE` block of a PEM file (other blocks are skipped), or one
    /// or more concatenated DER certificates.
    pub fn from_pem_or_der(data: &[u8]) -> Result<Vec<Certificate>, CertError> {
        if data.len() > MAX_BUNDLE_SIZE {
            return Err(malformed("certificate file larger than 16 MiB"));
        }
        let mut certs = Vec::new();
        if data.windows(11).any(|w| w == b"-----BEGIN ") {
            let blocks = pem::parse_many(data).map_err(|e| malformed(format!("bad PEM: {e}")))?;
            for block in blocks {
                match block.tag() {
                    "CERTIFICATE" | "X509 CERTIFICATE" => {}
                    _ => continue,
                }
                if certs.len() == MAX_BUNDLE_CERTS {
                    return Err(malformed(format!(
                        "more than {MAX_BUNDLE_CERTS} certificates in one file"
                    )));
                }
                certs.push(Certificate::from_der(block.contents())?);
            }
            if certs.is_empty() {
                return Err(malformed("no CERTIFICATE block in PEM data"));
            }
        } else {
            let mut r = Reader::new(data);
            while !r.is_empty() {
                let (_, _, whole) = r
                    .read_any()
                    .map_err(|_| malformed("not a DER certificate"))?;
                if certs.len() == MAX_BUNDLE_CERTS {
                    return Err(malformed(format!(
                        "more than {MAX_BUNDLE_CERTS} certificates in one file"
                    )));
                }
                certs.push(Certificate::from_der(whole)?);
            }
            if certs.is_empty() {
                return Err(malformed("empty certificate file"));
            }
        }
        Ok(certs)
    }

    /// Subject DN in RFC 4514 text ("CN=gw.example.com, O=Example"): the
    /// last RDN first, special characters and control characters escaped.
    pub fn subject(&self) -> String {
        self.info.subject.clone()
    }

    /// DER of the subject Name (for ID_DER_ASN1_DN).
    pub fn subject_der(&self) -> Vec<u8> {
        self.info.subject_der.clone()
    }

    /// Issuer DN in RFC 4514 text.
    pub fn issuer(&self) -> String {
        self.info.issuer.clone()
    }

    /// DER of the issuer Name.
    pub fn issuer_der(&self) -> &[u8] {
        &self.info.issuer_der
    }

    /// Serial number (big-endian magnitude, leading zeros removed).
    pub fn serial(&self) -> &[u8] {
        &self.info.serial
    }

    /// Serial number as upper-case hex ("0A1B…"), as logs show it.
    pub fn serial_hex(&self) -> String {
        serial_hex(&self.info.serial)
    }

    pub fn not_before(&self) -> SystemTime {
        to_system_time(self.info.not_before)
    }

    pub fn not_after(&self) -> SystemTime {
        to_system_time(self.info.not_after)
    }

    pub fn subject_alt_names(&self) -> &[SubjectAltName] {
        &self.info.sans
    }

    /// keyUsage, if the extension is present.
    pub fn key_usage(&self) -> Option<KeyUsageFlags> {
        self.info.key_usage
    }

    /// extendedKeyUsage OIDs in dotted form, if the extension is present
    /// (see [`eku`] for the ones IKE cares about).
    pub fn extended_key_usage(&self) -> Option<&[String]> {
        self.info.ekus.as_deref()
    }

    pub fn basic_constraints(&self) -> Option<BasicConstraints> {
        self.info.basic_constraints
    }

    /// Whether basicConstraints says cA=TRUE.
    pub fn is_ca(&self) -> bool {
        self.info.basic_constraints.is_some_and(|b| b.ca)
    }

    /// URIs of the CRL distribution points (all schemes; revocation
    /// checking fetches only `http://` ones).
    pub fn crl_distribution_points(&self) -> &[String] {
        &self.info.crl_uris
    }

    /// DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.info.spki
    }

    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        PublicKey::from_spki(&self.info.spki)
    }

    /// SHA-1 of the SubjectPublicKeyInfo: how CERTREQ names a CA (RFC 7296 §3.7).
    pub fn spki_sha1(&self) -> [u8; 20] {
        let d = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &self.info.spki,
        );
        let mut out = [0u8; 20];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// Whether the certificate holds this identity (subject DN or a SAN):
    /// an FQDN against dNSName SANs (case-insensitive, trailing dot
    /// ignored), an e-mail address against rfc822Name SANs (domain
    /// case-insensitive), an IP address against iPAddress SANs, a DN
    /// against the subject (or a directoryName SAN) — the DER, or failing
    /// that the RDNs compared after RFC 5280 §7.1-style normalisation
    /// (case, surrounding and repeated spaces, string type). A KEY_ID never
    /// matches a certificate. The subject CN is never used for FQDNs
    /// (RFC 4945 §3.1.2).
    pub fn matches(&self, id: &IdClaim) -> bool {
        let sans = &self.info.sans;
        match id {
            IdClaim::Fqdn(name) => {
                let want = normalise_fqdn(name);
                !want.is_empty()
                    && sans
                        .iter()
                        .any(|s| matches!(s, SubjectAltName::Dns(d) if normalise_fqdn(d) == want))
            }
            IdClaim::Email(addr) => sans
                .iter()
                .any(|s| matches!(s, SubjectAltName::Email(e) if email_eq(e, addr))),
            IdClaim::Ip(ip) => {
                let want = ip.to_canonical();
                sans.iter()
                    .any(|s| matches!(s, SubjectAltName::Ip(a) if a.to_canonical() == want))
            }
            IdClaim::Dn(dn) => {
                dn_eq(dn, &self.info.subject_der)
                    || sans
                        .iter()
                        .any(|s| matches!(s, SubjectAltName::DirectoryName(d) if dn_eq(dn, d)))
            }
            IdClaim::KeyId(_) => false,
        }
    }

    /// SANs as one line for messages.
    pub(crate) fn sans_text(&self) -> String {
        if self.info.sans.is_empty() {
            return "(none)".to_owned();
        }
        self.info
            .sans
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

fn extract(x509: &X509Certificate<'_>) -> Result<CertInfo, CertError> {
    let tbs = &x509.tbs_certificate;
    tbs.extensions_map()
        .map_err(|_| malformed("duplicate extension"))?;
    for ext in tbs.extensions() {
        let known = [
            &OID_X509_EXT_SUBJECT_ALT_NAME,
            &OID_X509_EXT_KEY_USAGE,
            &OID_X509_EXT_EXTENDED_KEY_USAGE,
            &OID_X509_EXT_BASIC_CONSTRAINTS,
            &OID_X509_EXT_CRL_DISTRIBUTION_POINTS,
        ];
        if known.contains(&&ext.oid)
            && matches!(ext.parsed_extension(), ParsedExtension::ParseError { .. })
        {
            return Err(malformed(format!("malformed extension {}", ext.oid)));
        }
    }

    let mut sans = Vec::new();
    let mut crl_uris = Vec::new();
    let mut key_usage = None;
    let mut basic_constraints = None;
    for ext in tbs.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(s) => sans.push(SubjectAltName::Dns((*s).to_owned())),
                        GeneralName::RFC822Name(s) => {
                            sans.push(SubjectAltName::Email((*s).to_owned()))
                        }
                        GeneralName::URI(s) => sans.push(SubjectAltName::Uri((*s).to_owned())),
                        GeneralName::IPAddress(bytes) => match bytes.len() {
                            4 => sans.push(SubjectAltName::Ip(IpAddr::from(
                                <[u8; 4]>::try_from(*bytes).unwrap_or_default(),
                            ))),
                            16 => sans.push(SubjectAltName::Ip(IpAddr::from(
                                <[u8; 16]>::try_from(*bytes).unwrap_or_default(),
                            ))),
                            _ => {
                                return Err(malformed(
                                    "iPAddress SAN of a length other than 4 or 16",
                                ));
                            }
                        },
                        GeneralName::DirectoryName(name) => {
                            sans.push(SubjectAltName::DirectoryName(name.as_raw().to_vec()))
                        }
                        _ => {}
                    }
                }
            }
            ParsedExtension::KeyUsage(ku) => key_usage = Some(KeyUsageFlags(ku.flags)),
            ParsedExtension::BasicConstraints(bc) => {
                basic_constraints = Some(BasicConstraints {
                    ca: bc.ca,
                    path_len: bc.path_len_constraint,
                })
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in &points.points {
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
                        for name in names {
                            if let GeneralName::URI(uri) = name {
                                crl_uris.push((*uri).to_owned());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    // EKU: read the OIDs ourselves so unknown purposes keep their number.
    let ekus = match tbs
        .get_extension_unique(&OID_X509_EXT_EXTENDED_KEY_USAGE)
        .ok()
        .flatten()
    {
        None => None,
        Some(ext) => {
            let seq = der::single(ext.value, der::SEQUENCE)
                .map_err(|_| malformed("malformed extendedKeyUsage"))?;
            let mut r = Reader::new(seq);
            let mut oids = Vec::new();
            while !r.is_empty() {
                let oid = r
                    .read(der::OID)
                    .map_err(|_| malformed("malformed extendedKeyUsage"))?;
                oids.push(der::oid_to_string(oid));
            }
            Some(oids)
        }
    };
    let serial = {
        let raw = tbs.raw_serial();
        let skip = raw.iter().take_while(|&&b| b == 0).count();
        raw[skip..].to_vec()
    };
    Ok(CertInfo {
        subject: dn_to_string(tbs.subject()),
        subject_der: tbs.subject().as_raw().to_vec(),
        issuer: dn_to_string(tbs.issuer()),
        issuer_der: tbs.issuer().as_raw().to_vec(),
        serial,
        not_before: tbs.validity().not_before.timestamp(),
        not_after: tbs.validity().not_after.timestamp(),
        spki: tbs.public_key().raw.to_vec(),
        sans,
        key_usage,
        ekus,
        basic_constraints,
        crl_uris,
    })
}

pub(crate) fn serial_hex(serial: &[u8]) -> String {
    if serial.is_empty() {
        "00".to_owned()
    } else {
        der::hex_upper(serial)
    }
}

pub(crate) fn to_system_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// Seconds since the epoch, negative before it.
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs())
            .map(|s| -s)
            .unwrap_or(i64::MIN),
    }
}

/// "2025-03-01 12:00:00 UTC".
pub(crate) fn fmt_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn normalise_fqdn(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn email_eq(a: &str, b: &str) -> bool {
    match (a.rsplit_once('@'), b.rsplit_once('@')) {
        (Some((la, da)), Some((lb, db))) => {
            !la.is_empty() && la == lb && da.eq_ignore_ascii_case(db)
        }
        _ => false,
    }
}

/// Short names of RFC 4514 §3 plus the common extras.
fn attr_name(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x04] => "SN",
        [0x55, 0x04, 0x05] => "serialNumber",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "STREET",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x55, 0x04, 0x0c] => "title",
        [0x55, 0x04, 0x2a] => "GN",
        [0x55, 0x04, 0x2b] => "initials",
        [0x55, 0x04, 0x2e] => "dnQualifier",
        [0x55, 0x04, 0x41] => "pseudonym",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "E",
        _ => return None,
    })
}

/// Decodes the directory string types; `None` for anything else.
fn decode_string(tag: u8, data: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, NumericString, PrintableString, IA5String, VisibleString
        0x0c | 0x12 | 0x13 | 0x16 | 0x1a => core::str::from_utf8(data).ok().map(str::to_owned),
        // TeletexString: treated as Latin-1, as everyone does.
        0x14 => Some(data.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE.
        0x1e => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        // UniversalString: UTF-32BE.
        0x1c => {
            if !data.len().is_multiple_of(4) {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        _ => None,
    }
}

/// RFC 4514 §2.4 escaping, plus hex escapes for control characters so a
/// hostile DN cannot forge log lines.
fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let count = s.chars().count();
    for (i, c) in s.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i + 1 == count => out.push_str("\\ "),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes control characters of free text (SAN values) for messages.
pub(crate) fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\x{:02X}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

pub(crate) fn dn_to_string(name: &X509Name<'_>) -> String {
    let mut rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().as_bytes();
                    let key = attr_name(oid)
                        .map(str::to_owned)
                        .unwrap_or_else(|| der::oid_to_string(oid));
                    let value = atv.attr_value();
                    let text = match decode_string(value.tag().0 as u8, value.data) {
                        Some(s)
                            if value.class()
                                == x509_parser::der_parser::asn1_rs::Class::Universal =>
                        {
                            escape_value(&s)
                        }
                        _ => format!(
                            "#{}",
                            der::hex_upper(&der::tlv(value.tag().0 as u8, value.data))
                        ),
                    };
                    format!("{key}={text}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.reverse();
    rdns.join(", ")
}

/// RFC 4514 text of a DER Name; the hex of the bytes if it does not parse.
pub(crate) fn dn_der_to_string(der_name: &[u8]) -> String {
    match X509Name::from_der(der_name) {
        Ok(([], name)) => dn_to_string(&name),
        _ => format!("#{}", der::hex_upper(der_name)),
    }
}

/// One attribute value reduced for comparison: strings trimmed, inner
/// whitespace runs collapsed, case folded; other types compared as bytes.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum NormValue {
    Text(String),
    Raw(u32, Vec<u8>),
}

fn normalise_value(tag: u32, data: &[u8], universal: bool) -> NormValue {
    match decode_string(tag as u8, data) {
        Some(s) if universal => NormValue::Text(
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase(),
        ),
        _ => NormValue::Raw(tag, data.to_vec()),
    }
}

type NormRdn = Vec<(Vec<u8>, NormValue)>;

fn normalise_name(name: &X509Name<'_>) -> Vec<NormRdn> {
    name.iter_rdn()
        .map(|rdn| {
            let mut atvs: NormRdn = rdn
                .iter()
                .map(|atv| {
                    let v = atv.attr_value();
                    let universal = v.class() == x509_parser::der_parser::asn1_rs::Class::Universal;
                    (
                        atv.attr_type().as_bytes().to_vec(),
                        normalise_value(v.tag().0, v.data, universal),
                    )
                })
                .collect();
            atvs.sort();
            atvs
        })
        .collect()
}

/// Compares two DER Names: byte-equal, or equal after normalisation. An
/// empty Name matches nothing, not even another empty Name.
pub(crate) fn dn_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() > 2 && a == b {
        return true;
    }
    match (X509Name::from_der(a), X509Name::from_der(b)) {
        (Ok(([], na)), Ok(([], nb))) => {
            let (ra, rb) = (normalise_name(&na), normalise_name(&nb));
            !ra.is_empty() && ra == rb
        }
        _ => false,
    }
}

/// Describes a claim for messages.
pub(crate) fn claim_text(id: &IdClaim) -> String {
    match id {
        IdClaim::Dn(d) => format!("DN \"{}\"", dn_der_to_string(d)),
        IdClaim::Fqdn(s) => format!("FQDN {}", printable(s)),
        IdClaim::Email(s) => format!("e-mail {}", printable(s)),
        IdClaim::Ip(ip) => format!("IP {ip}"),
        IdClaim::KeyId(k) => format!("KEY_ID {} (never in a certificate)", der::hex_upper(k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formatting() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(fmt_time(1_735_689_599), "2024-12-31 23:59:59 UTC");
        assert_eq!(fmt_time(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(fmt_time(253_402_300_799), "9999-12-31 23:59:59 UTC");
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_value(" #x "), "\\ #x\\ ");
        assert_eq!(escape_value("#x"), "\\#x");
        assert_eq!(escape_value("evil\nline"), "evil\\0Aline");
    }

    #[test]
    fn string_types() {
        assert_eq!(
            decode_string(0x1e, &[0, b'h', 0, b'i']).as_deref(),
            Some("hi")
        );
        assert_eq!(decode_string(0x1c, &[0, 0, 0, b'x']).as_deref(), Some("x"));
        assert_eq!(decode_string(0x14, &[0xe9]).as_deref(), Some("é"));
        assert_eq!(decode_string(0x04, b"x"), None);
    }

    #[test]
    fn emails() {
        assert!(email_eq("Alice@Example.COM", "Alice@example.com"));
        assert!(!email_eq("alice@example.com", "Alice@example.com"));
        assert!(!email_eq("example.com", "example.com"));
        assert!(!email_eq("@example.com", "@example.com"));
    }

    #[test]
    fn rejects_oversized_and_trailing() {
        assert!(matches!(
            Certificate::from_der(&vec![0x30; MAX_CERT_SIZE + 1]),
            Err(CertError::Malformed(_))
        ));
        assert!(Certificate::from_der(&[]).is_err());
        assert!(Certificate::from_pem_or_der(b"").is_err());
        assert!(
            Certificate::from_pem_or_der(b"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n")
                .is_err()
        );
    }
}
