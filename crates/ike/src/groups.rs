//! User groups of a certificate client: the organizationalUnit (OU,
//! 2.5.4.11) attributes of its subject DN, in DN order. A CA that issues
//! `OU=staff` to employees and `OU=contractors` to others thereby puts them
//! in the gateway's groups (see [`crate::RemoteAccess::groups`]) without a
//! user database.
//!
//! A small DER walk over the Name rather than its text form: a text form
//! such as `O=x\, OU=admins` could be read as an OU that is not one. Every
//! length is checked against the buffer; anything malformed yields no
//! groups rather than an error (the certificate itself was validated
//! already; its groups only choose among configured values).

/// OID 2.5.4.11, id-at-organizationalUnitName, DER-encoded.
const OU_OID: [u8; 3] = [0x55, 0x04, 0x0b];
/// The most OUs taken from one certificate and the longest one: the same
/// bounds as groups from a RADIUS server.
const MAX_GROUPS: usize = 16;
const MAX_LEN: usize = 64;

/// The user groups a gateway reads from a certificate client's
/// certificate: the OUs of its subject DN, in DN order, with the engine's
/// bounds (at most 16, each 1 to 64 octets, no control characters). Tools
/// that must predict what the gateway will give a certificate user (client
/// profiles) call this so that they and the engine never disagree.
pub fn certificate_groups(cert: &oxisec_pki::Certificate) -> Vec<String> {
    organizational_units(&cert.subject_der())
}

/// One tag-length-value: (tag, value, rest). Definite lengths up to
/// 0xffff only (a certificate is far smaller).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&l0, b) = b.split_first()?;
    let (len, b) = match l0 {
        0..=0x7f => (usize::from(l0), b),
        0x81 => {
            let (&l, b) = b.split_first()?;
            (usize::from(l), b)
        }
        0x82 => {
            let [h, l, ..] = *b else { return None };
            (usize::from(u16::from_be_bytes([h, l])), &b[2..])
        }
        _ => return None,
    };
    let value = b.get(..len)?;
    Some((tag, value, &b[len..]))
}

/// The OU values of a DER Name (`SEQUENCE OF SET OF SEQUENCE { OID, value }`)
/// that are UTF8String, PrintableString or IA5String, non-empty and at most
/// 64 octets; at most 16.
pub(crate) fn organizational_units(name_der: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let Some((0x30, mut rdns, _)) = tlv(name_der) else {
        return out;
    };
    while let Some((tag, mut set, rest)) = tlv(rdns) {
        rdns = rest;
        if tag != 0x31 {
            return out;
        }
        while let Some((tag, atv, rest)) = tlv(set) {
            set = rest;
            if tag != 0x30 {
                return out;
            }
            let Some((0x06, oid, value)) = tlv(atv) else {
                continue;
            };
            if oid != OU_OID {
                continue;
            }
            let Some((0x0c | 0x13 | 0x16, v, _)) = tlv(value) else {
                continue;
            };
            if let Ok(s) = std::str::from_utf8(v)
                && !s.is_empty()
                && s.len() <= MAX_LEN
                && !s.chars().any(char::is_control)
                && out.len() < MAX_GROUPS
            {
                out.push(s.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ous_in_dn_order() {
        let dn =
            oxisec_pki::dn_from_text("C=CH, O=Example, OU=staff, OU=vpn-admins, CN=alice").unwrap();
        assert_eq!(organizational_units(&dn), ["staff", "vpn-admins"]);
        let none = oxisec_pki::dn_from_text("C=CH, O=Example, CN=bob").unwrap();
        assert!(organizational_units(&none).is_empty());
    }

    #[test]
    fn an_escaped_comma_is_no_ou() {
        let dn = oxisec_pki::dn_from_text(r"O=x\, OU=admins, CN=mallory").unwrap();
        assert!(organizational_units(&dn).is_empty());
    }

    #[test]
    fn rejects_malformed_names_without_panicking() {
        let dn = oxisec_pki::dn_from_text("OU=staff, CN=alice").unwrap();
        for cut in 0..dn.len() {
            // Truncated: whatever comes out is a prefix of the real answer.
            let got = organizational_units(&dn[..cut]);
            assert!(got.is_empty() || got == ["staff"], "{cut}: {got:?}");
        }
        for junk in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0, 0, 0, 1],
            &[0x31, 0],
            &[0x30, 2, 0x30, 0],
        ] {
            assert!(organizational_units(junk).is_empty());
        }
        // A long OU is skipped, not truncated.
        let long = format!("OU={}, OU=ok", "a".repeat(65));
        let dn = oxisec_pki::dn_from_text(&long).unwrap();
        assert_eq!(organizational_units(&dn), ["ok"]);
    }
}
