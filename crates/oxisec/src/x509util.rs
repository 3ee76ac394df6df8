//! Small X.509 helpers shared by the configuration, the CRL fetcher and
//! `oxisec pki`: dates for humans, CRL fields the validator does not
//! expose, and key comparison.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::prelude::{CertificateRevocationList, FromDer};
use x509_parser::x509::SubjectPublicKeyInfo;

/// `2026-11-26 07:00 UTC`: the form every message of ours uses for a date.
pub fn fmt_date(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute()
    )
}

/// Seconds since the epoch as a `SystemTime` (negative values clamp to the epoch).
pub fn from_unix(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// The DER CRLs in a file's contents: PEM `X509 CRL` blocks, or the data
/// itself when it is not PEM.
pub fn crl_ders(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if !data.windows(11).any(|w| w == b"-----BEGIN ") {
        return Ok(vec![data.to_vec()]);
    }
    let blocks = pem::parse_many(data).map_err(|e| format!("bad PEM: {e}"))?;
    let ders: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "X509 CRL")
        .map(pem::Pem::into_contents)
        .collect();
    if ders.is_empty() {
        return Err("no X509 CRL block in the PEM data".to_owned());
    }
    Ok(ders)
}

/// What the CRL fetcher and the config checks need from a DER CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlSummary {
    pub this_update: SystemTime,
    /// `None` when the CRL has no nextUpdate (RFC 5280 §5.1.2.5 requires one).
    pub next_update: Option<SystemTime>,
    pub revoked: usize,
    pub issuer: String,
}

/// Parses a DER CRL far enough to know its dates (signature and scope are
/// checked by the trust store when it is used).
pub fn crl_summary(der: &[u8]) -> Result<CrlSummary, String> {
    let (rest, crl) =
        CertificateRevocationList::from_der(der).map_err(|e| format!("not a DER CRL: {e}"))?;
    if !rest.is_empty() {
        return Err("not a DER CRL: trailing data".to_owned());
    }
    Ok(CrlSummary {
        this_update: from_unix(crl.last_update().timestamp()),
        next_update: crl.next_update().map(|t| from_unix(t.timestamp())),
        revoked: crl.iter_revoked_certificates().count(),
        issuer: crl.issuer().to_string(),
    })
}

/// Whether two DER SubjectPublicKeyInfos hold the same key: the same
/// algorithm and the same key bits (the encodings of the algorithm
/// parameters may differ between tools).
pub fn same_public_key(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (
        SubjectPublicKeyInfo::from_der(a),
        SubjectPublicKeyInfo::from_der(b),
    ) {
        (Ok((_, a)), Ok((_, b))) => {
            a.algorithm.algorithm == b.algorithm.algorithm
                && a.subject_public_key.data == b.subject_public_key.data
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates_in_utc() {
        assert_eq!(fmt_date(from_unix(0)), "1970-01-01 00:00 UTC");
        assert_eq!(fmt_date(from_unix(1_748_736_000)), "2025-06-01 00:00 UTC");
        assert_eq!(fmt_date(from_unix(-5)), "1970-01-01 00:00 UTC");
    }

    #[test]
    fn rejects_what_is_not_a_crl() {
        assert!(crl_summary(b"\x30\x03\x02\x01\x01").is_err());
        assert!(crl_summary(b"").is_err());
        assert!(
            crl_ders(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err()
        );
        assert_eq!(crl_ders(b"\x30\x00").unwrap(), vec![b"\x30\x00".to_vec()]);
    }
}
