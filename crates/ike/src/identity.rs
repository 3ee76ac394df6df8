//! IKE identities (RFC 7296 §3.5) and their strongSwan-style text form.
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use oxisec_wire::{IdPayload, IdType};

/// An identity this engine can send and match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// A fully qualified domain name, without a trailing dot.
    Fqdn(String),
    /// An RFC 822 email address.
    Email(String),
    /// An opaque key identifier.
    KeyId(Vec<u8>),
    /// The DER of an X.501 distinguished name (ID_DER_ASN1_DN), matched
    /// against a certificate's subject.
    Dn(Vec<u8>),
}

impl Identity {
    pub fn to_wire(&self) -> IdPayload {
        let (id_type, data) = match self {
            Identity::Ipv4(a) => (IdType::IPV4_ADDR, a.octets().to_vec()),
            Identity::Ipv6(a) => (IdType::IPV6_ADDR, a.octets().to_vec()),
            Identity::Fqdn(s) => (IdType::FQDN, s.as_bytes().to_vec()),
            Identity::Email(s) => (IdType::RFC822_ADDR, s.as_bytes().to_vec()),
            Identity::KeyId(k) => (IdType::KEY_ID, k.clone()),
            Identity::Dn(d) => (IdType::DER_ASN1_DN, d.clone()),
        };
        IdPayload { id_type, data }
    }

    /// `None` for unsupported types and malformed values (wrong address
    /// length, non-UTF-8 names).
    pub fn from_wire(id: &IdPayload) -> Option<Identity> {
        match id.id_type {
            IdType::IPV4_ADDR => {
                let b: [u8; 4] = id.data.as_slice().try_into().ok()?;
                Some(Identity::Ipv4(Ipv4Addr::from(b)))
            }
            IdType::IPV6_ADDR => {
                let b: [u8; 16] = id.data.as_slice().try_into().ok()?;
                Some(Identity::Ipv6(Ipv6Addr::from(b)))
            }
            IdType::FQDN => Some(Identity::Fqdn(String::from_utf8(id.data.clone()).ok()?)),
            IdType::RFC822_ADDR => Some(Identity::Email(String::from_utf8(id.data.clone()).ok()?)),
            IdType::KEY_ID => Some(Identity::KeyId(id.data.clone())),
            IdType::DER_ASN1_DN if !id.data.is_empty() => Some(Identity::Dn(id.data.clone())),
            _ => None,
        }
    }

    /// Whether a received identity is the configured one. Names compare
    /// case-insensitively (DNS and the domain part of mail addresses are).
    pub fn matches(&self, other: &Identity) -> bool {
        match (self, other) {
            (Identity::Fqdn(a), Identity::Fqdn(b)) | (Identity::Email(a), Identity::Email(b)) => {
                a.eq_ignore_ascii_case(b)
            }
            (a, b) => a == b,
        }
    }

    /// The form the certificate layer matches against subjects and SANs.
    pub fn claim(&self) -> oxisec_pki::IdClaim {
        use oxisec_pki::IdClaim;
        match self {
            Identity::Ipv4(a) => IdClaim::Ip(IpAddr::V4(*a)),
            Identity::Ipv6(a) => IdClaim::Ip(IpAddr::V6(*a)),
            Identity::Fqdn(s) => IdClaim::Fqdn(s.clone()),
            Identity::Email(s) => IdClaim::Email(s.clone()),
            Identity::KeyId(k) => IdClaim::KeyId(k.clone()),
            Identity::Dn(d) => IdClaim::Dn(d.clone()),
        }
    }

    /// The identity an address stands for, used when none is configured.
    pub fn from_addr(addr: IpAddr) -> Identity {
        match addr {
            IpAddr::V4(a) => Identity::Ipv4(a),
            IpAddr::V6(a) => Identity::Ipv6(a),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Ipv4(a) => write!(f, "{a}"),
            Identity::Ipv6(a) => write!(f, "{a}"),
            Identity::Fqdn(s) => write!(f, "{}", s.escape_debug()),
            Identity::Email(s) => write!(f, "{}", s.escape_debug()),
            Identity::KeyId(k) => {
                write!(f, "@#")?;
                k.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            Identity::Dn(d) => match oxisec_pki::dn_to_text(d) {
                Some(text) => write!(f, "{}", text.escape_debug()),
                None => {
                    write!(f, "asn1dn:#")?;
                    d.iter().try_for_each(|b| write!(f, "{b:02x}"))
                }
            },
        }
    }
}

/// Error for [`Identity::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid identity {0:?}: expected an IP address, a host name (gw.example.com or @gw), an email (user@example.com), a key id (@#0a1b2c) or a distinguished name (C=CH, O=Example, CN=gw.example.com)"
)]
pub struct IdentityParseError(pub String);

impl FromStr for Identity {
    type Err = IdentityParseError;

    /// strongSwan's conventions: an IP address is IPV4_ADDR/IPV6_ADDR;
    /// `@#hex` is KEY_ID; `@name` is FQDN (the `@` only forces the type);
    /// `user@host` is RFC822_ADDR; any other name is FQDN.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || IdentityParseError(s.to_string());
        // strongSwan: an identity with `=` is a distinguished name,
        // `C=CH, O=Example, CN=gw.example.com`.
        if s.contains('=') && !s.starts_with('@') && !s.starts_with("asn1dn:") {
            return oxisec_pki::dn_from_text(s)
                .map(Identity::Dn)
                .map_err(|e| IdentityParseError(format!("{s} ({e})")));
        }
        if s.is_empty() || s.len() > 255 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(err());
        }
        if let Some(hex) = s.strip_prefix("asn1dn:#") {
            return match Identity::from_str(&format!("@#{hex}")) {
                Ok(Identity::KeyId(der)) => Ok(Identity::Dn(der)),
                _ => Err(err()),
            };
        }
        if let Some(hex) = s.strip_prefix("@#") {
            if hex.is_empty() || hex.len() % 2 != 0 {
                return Err(err());
            }
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| err())?;
            return Ok(Identity::KeyId(bytes));
        }
        if let Some(name) = s.strip_prefix('@') {
            if name.is_empty() || name.contains('@') {
                return Err(err());
            }
            return Ok(Identity::Fqdn(name.to_string()));
        }
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Identity::from_addr(addr));
        }
        if let Some((user, host)) = s.split_once('@') {
            if user.is_empty() || host.is_empty() || host.contains('@') {
                return Err(err());
            }
            return Ok(Identity::Email(s.to_string()));
        }
        Ok(Identity::Fqdn(s.trim_end_matches('.').to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_supported_type() {
        assert_eq!(
            "192.0.2.1".parse::<Identity>().unwrap(),
            Identity::Ipv4("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            "2001:db8::1".parse::<Identity>().unwrap(),
            Identity::Ipv6("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            "gw.example.com".parse::<Identity>().unwrap(),
            Identity::Fqdn("gw.example.com".into())
        );
        assert_eq!(
            "@gw".parse::<Identity>().unwrap(),
            Identity::Fqdn("gw".into())
        );
        assert_eq!(
            "alice@example.com".parse::<Identity>().unwrap(),
            Identity::Email("alice@example.com".into())
        );
        assert_eq!(
            "@#0aff".parse::<Identity>().unwrap(),
            Identity::KeyId(vec![0x0a, 0xff])
        );
        for bad in ["", "@", "@#", "@#abc", "@#zz", "a b", "@x.com@", "user@"] {
            assert!(
                bad.parse::<Identity>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn wire_round_trip() {
        for s in [
            "192.0.2.1",
            "2001:db8::1",
            "gw.example.com",
            "alice@example.com",
            "@#0102",
        ] {
            let id: Identity = s.parse().unwrap();
            assert_eq!(Identity::from_wire(&id.to_wire()), Some(id.clone()));
            assert_eq!(id.to_string().parse::<Identity>().unwrap(), id);
        }
    }

    #[test]
    fn rejects_malformed_wire_ids() {
        let bad_v4 = IdPayload {
            id_type: IdType::IPV4_ADDR,
            data: vec![1, 2, 3],
        };
        assert_eq!(Identity::from_wire(&bad_v4), None);
        let bad_utf8 = IdPayload {
            id_type: IdType::FQDN,
            data: vec![0xff, 0xfe],
        };
        assert_eq!(Identity::from_wire(&bad_utf8), None);
        let dn = IdPayload {
            id_type: IdType::DER_ASN1_GN,
            data: vec![0x30, 0],
        };
        assert_eq!(Identity::from_wire(&dn), None);
    }

    #[test]
    fn names_match_case_insensitively() {
        let a: Identity = "GW.example.com".parse().unwrap();
        let b: Identity = "gw.EXAMPLE.com".parse().unwrap();
        assert!(a.matches(&b));
        assert!(!a.matches(&"other.example.com".parse().unwrap()));
    }
}
