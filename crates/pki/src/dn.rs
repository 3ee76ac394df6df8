//! Distinguished names as administrators write them in configuration files
//! and as strongSwan prints them: `C=CH, O=Example, CN=gw.example.com`,
//! relative distinguished names in encoding order (the first one written is
//! the first in the DER), separated by `,` or `/`.
//!
//! [`dn_from_text`] builds the DER of such a name for an ID_DER_ASN1_DN
//! identity; [`dn_to_text`] prints one. Matching never compares these bytes
//! directly: [`crate::Certificate::matches`] normalises both names (string
//! types, case, spaces), so `CN` written here as UTF8String matches a
//! certificate that encodes it as PrintableString.

/// Why a DN string is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    #[error("empty distinguished name")]
    Empty,
    #[error("{0:?} is not TYPE=value (e.g. CN=gw.example.com)")]
    NotAnAttribute(String),
    #[error(
        "unknown attribute type {0:?} (known: C, ST, L, O, OU, CN, E, DC, SN, GN, UID, serialNumber, title, street, postalCode, dnQualifier, pseudonym, or a dotted OID)"
    )]
    UnknownType(String),
    #[error("attribute {0} has an empty value")]
    EmptyValue(String),
    #[error("C (country) must be two letters, not {0:?}")]
    BadCountry(String),
    #[error("distinguished name too long")]
    TooLong,
}

/// How a value is encoded: the ASN.1 string type.
#[derive(Clone, Copy)]
enum Str {
    Printable,
    Utf8,
    Ia5,
}

/// Attribute types by the names OpenSSL and strongSwan accept, with their
/// OIDs (X.520 2.5.4.x, PKCS #9 emailAddress, RFC 4519 DC and UID).
const TYPES: &[(&[&str], &[u64], Str)] = &[
    (&["C", "countryName"], &[2, 5, 4, 6], Str::Printable),
    (
        &["ST", "S", "stateOrProvinceName"],
        &[2, 5, 4, 8],
        Str::Utf8,
    ),
    (&["L", "localityName"], &[2, 5, 4, 7], Str::Utf8),
    (&["O", "organizationName"], &[2, 5, 4, 10], Str::Utf8),
    (&["OU", "organizationalUnitName"], &[2, 5, 4, 11], Str::Utf8),
    (&["CN", "commonName"], &[2, 5, 4, 3], Str::Utf8),
    (&["SN", "surname"], &[2, 5, 4, 4], Str::Utf8),
    (&["GN", "G", "givenName"], &[2, 5, 4, 42], Str::Utf8),
    (&["T", "title"], &[2, 5, 4, 12], Str::Utf8),
    (&["serialNumber"], &[2, 5, 4, 5], Str::Printable),
    (&["street", "streetAddress"], &[2, 5, 4, 9], Str::Utf8),
    (&["postalCode"], &[2, 5, 4, 17], Str::Utf8),
    (&["dnQualifier"], &[2, 5, 4, 46], Str::Printable),
    (&["pseudonym"], &[2, 5, 4, 65], Str::Utf8),
    (&["N", "name"], &[2, 5, 4, 41], Str::Utf8),
    (
        &["E", "Email", "emailAddress"],
        &[1, 2, 840, 113549, 1, 9, 1],
        Str::Ia5,
    ),
    (
        &["DC", "domainComponent"],
        &[0, 9, 2342, 19200300, 100, 1, 25],
        Str::Ia5,
    ),
    (
        &["UID", "userId"],
        &[0, 9, 2342, 19200300, 100, 1, 1],
        Str::Utf8,
    ),
];

/// The longest DN we build; IKE identities are far shorter.
const MAX_DN: usize = 4096;

fn tlv(tag: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(body);
}

fn oid_body(arcs: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    let first = arcs[0] * 40 + arcs[1];
    for &arc in std::iter::once(&first).chain(&arcs[2..]) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut v = arc >> 7;
        while v > 0 {
            groups.push((v & 0x7f) as u8 | 0x80);
            v >>= 7;
        }
        out.extend(groups.iter().rev());
    }
    out
}

/// A dotted OID such as `2.5.4.3`; at least two arcs, first 0–2.
fn parse_oid(s: &str) -> Option<Vec<u64>> {
    let arcs: Vec<u64> = s
        .split('.')
        .map(|a| a.parse().ok())
        .collect::<Option<_>>()?;
    (arcs.len() >= 2 && arcs[0] <= 2 && (arcs[0] == 2 || arcs[1] < 40)).then_some(arcs)
}

fn is_printable(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c))
}

/// Splits at unescaped, unquoted separators (`,`, `/`, `;`); removes the
/// escapes and quotes from values.
fn split_rdns(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => quoted = !quoted,
            ',' | '/' | ';' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

/// The DER of the X.501 Name written as `TYPE=value, TYPE=value, ...`.
pub fn dn_from_text(s: &str) -> Result<Vec<u8>, DnError> {
    let rdns: Vec<String> = split_rdns(s.trim().trim_start_matches('/'))
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .collect();
    if rdns.is_empty() {
        return Err(DnError::Empty);
    }
    let mut seq = Vec::new();
    for rdn in rdns {
        let (ty, value) = rdn
            .split_once('=')
            .ok_or_else(|| DnError::NotAnAttribute(rdn.trim().to_owned()))?;
        let (ty, value) = (ty.trim(), value.trim());
        let (arcs, str_type) = match TYPES
            .iter()
            .find(|(names, _, _)| names.iter().any(|n| n.eq_ignore_ascii_case(ty)))
        {
            Some((_, arcs, st)) => (arcs.to_vec(), *st),
            None => {
                let arcs = parse_oid(ty).ok_or_else(|| DnError::UnknownType(ty.to_owned()))?;
                // A known attribute written as its OID keeps its string type.
                let st = TYPES
                    .iter()
                    .find(|(_, a, _)| *a == arcs.as_slice())
                    .map_or(Str::Utf8, |(_, _, st)| *st);
                (arcs, st)
            }
        };
        if value.is_empty() {
            return Err(DnError::EmptyValue(ty.to_owned()));
        }
        if value.len() > MAX_DN {
            return Err(DnError::TooLong);
        }
        let tag = match str_type {
            Str::Printable if arcs == [2, 5, 4, 6] => {
                if value.len() != 2 || !value.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(DnError::BadCountry(value.to_owned()));
                }
                0x13
            }
            Str::Printable if is_printable(value) => 0x13,
            Str::Ia5 if value.is_ascii() => 0x16,
            _ => 0x0c,
        };
        let mut atv = Vec::new();
        tlv(0x06, &oid_body(&arcs), &mut atv);
        tlv(tag, value.as_bytes(), &mut atv);
        let mut seq_atv = Vec::new();
        tlv(0x30, &atv, &mut seq_atv);
        tlv(0x31, &seq_atv, &mut seq);
        if seq.len() > MAX_DN {
            return Err(DnError::TooLong);
        }
    }
    let mut out = Vec::new();
    tlv(0x30, &seq, &mut out);
    Ok(out)
}

/// The DN in the same `C=CH, O=Example, CN=name` form, in encoding order;
/// `None` if the bytes are not a Name.
pub fn dn_to_text(der: &[u8]) -> Option<String> {
    use x509_parser::prelude::FromDer;
    let (rest, name) = x509_parser::x509::X509Name::from_der(der).ok()?;
    rest.is_empty().then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strongswan_style_names_round_trip() {
        for s in [
            "C=CH, O=oxisec test, CN=gw-a.example.com",
            "C=CH, O=strongSwan Project, OU=Research, CN=carol@strongswan.org",
        ] {
            let der = dn_from_text(s).unwrap();
            assert_eq!(dn_to_text(&der).unwrap(), s);
        }
        // Slashes, extra spaces, quoting and escapes.
        let a = dn_from_text("/C=CH/O=oxisec test/CN=gw").unwrap();
        let b = dn_from_text("C = CH ,  O=\"oxisec test\", CN=gw").unwrap();
        assert_eq!(a, b);
        let c = dn_from_text(r"O=Smith\, Jones, CN=x").unwrap();
        assert!(dn_to_text(&c).unwrap().contains("Smith"));
    }

    #[test]
    fn known_encoding() {
        // SEQUENCE { SET { SEQUENCE { 2.5.4.6, PrintableString "CH" } } }
        assert_eq!(
            dn_from_text("C=CH").unwrap(),
            [
                0x30, 0x0d, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'C',
                b'H'
            ]
        );
        let oid = dn_from_text("1.2.840.113549.1.9.1=a@b").unwrap();
        assert_eq!(oid, dn_from_text("E=a@b").unwrap());
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(dn_from_text(" "), Err(DnError::Empty));
        assert!(matches!(
            dn_from_text("CN"),
            Err(DnError::NotAnAttribute(_))
        ));
        assert!(matches!(dn_from_text("XX=1"), Err(DnError::UnknownType(_))));
        assert!(matches!(dn_from_text("CN="), Err(DnError::EmptyValue(_))));
        assert!(matches!(
            dn_from_text("C=Swiss"),
            Err(DnError::BadCountry(_))
        ));
        assert!(matches!(
            dn_from_text("3.1=x"),
            Err(DnError::UnknownType(_))
        ));
        let long = format!("CN={}", "x".repeat(5000));
        assert_eq!(dn_from_text(&long), Err(DnError::TooLong));
    }
}
