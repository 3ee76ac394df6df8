//! Traffic selector payloads TSi / TSr (RFC 7296 §3.13).
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{TrafficSelector, TsPayload};
use crate::codec::{Reader, Writer, count_u8};
use crate::{Error, TsType};

/// Selector length (header, ports, two addresses) for each address family.
const TS_V4_LEN: usize = 4 + 4 + 2 * 4;
const TS_V6_LEN: usize = 4 + 4 + 2 * 16;

fn addr(r: &mut Reader<'_>, v6: bool) -> Result<IpAddr, Error> {
    Ok(if v6 {
        let mut a = [0u8; 16];
        a.copy_from_slice(r.take(16)?);
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        let mut a = [0u8; 4];
        a.copy_from_slice(r.take(4)?);
        IpAddr::V4(Ipv4Addr::from(a))
    })
}

fn put_addr(w: &mut Writer<'_>, a: &IpAddr) {
    match a {
        IpAddr::V4(a) => w.bytes(&a.octets()),
        IpAddr::V6(a) => w.bytes(&a.octets()),
    }
}

impl TrafficSelector {
    /// Parses one selector from `r`. Only the two address-range types exist in
    /// the struct; any other type (FC, security label) is rejected as
    /// [`Error::InvalidSyntax`], and a length that does not fit the type is
    /// [`Error::BadLength`].
    fn parse(r: &mut Reader<'_>) -> Result<Self, Error> {
        let ts_type = TsType(r.u8()?);
        let ip_protocol = r.u8()?;
        let len = usize::from(r.u16()?);
        let body = r.take_length_prefixed(len, 4)?;
        let (v6, expected) = match ts_type {
            TsType::IPV4_ADDR_RANGE => (false, TS_V4_LEN),
            TsType::IPV6_ADDR_RANGE => (true, TS_V6_LEN),
            _ => return Err(Error::InvalidSyntax("unsupported traffic selector type")),
        };
        if len != expected {
            return Err(Error::BadLength);
        }
        let mut b = Reader::new(body);
        Ok(TrafficSelector {
            ts_type,
            ip_protocol,
            start_port: b.u16()?,
            end_port: b.u16()?,
            start_addr: addr(&mut b, v6)?,
            end_addr: addr(&mut b, v6)?,
        })
    }

    /// Writes the addresses in their own family; a selector whose addresses do
    /// not match `ts_type` comes out as the parser would reject it.
    fn emit(&self, w: &mut Writer<'_>) {
        let start = w.position();
        w.u8(self.ts_type.0);
        w.u8(self.ip_protocol);
        let slot = w.placeholder_u16();
        w.u16(self.start_port);
        w.u16(self.end_port);
        put_addr(w, &self.start_addr);
        put_addr(w, &self.end_addr);
        w.patch_len_u16(slot, start);
    }
}

impl TsPayload {
    /// count(1) reserved(3) selectors; the count must match the selectors present.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let declared = usize::from(r.u8()?);
        r.skip(3)?;
        let mut selectors = Vec::new();
        while r.remaining() > 0 {
            selectors.push(TrafficSelector::parse(&mut r)?);
        }
        if selectors.len() != declared {
            return Err(Error::InvalidSyntax("traffic selector count mismatch"));
        }
        Ok(TsPayload { selectors })
    }
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u8(count_u8(self.selectors.len()));
        w.zeros(3);
        for ts in &self.selectors {
            ts.emit(&mut w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::ts_payload;
    use proptest::prelude::*;
    use std::vec;

    fn sample() -> TsPayload {
        TsPayload {
            selectors: vec![
                TrafficSelector {
                    ts_type: TsType::IPV4_ADDR_RANGE,
                    ip_protocol: 0,
                    start_port: 0,
                    end_port: 65535,
                    start_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 0)),
                    end_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 255)),
                },
                TrafficSelector {
                    ts_type: TsType::IPV6_ADDR_RANGE,
                    ip_protocol: 6,
                    start_port: 443,
                    end_port: 443,
                    start_addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                    end_addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                },
            ],
        }
    }

    const SAMPLE_HEX: &str = concat!(
        "02000000",
        "07000010",
        "0000ffff",
        "c0000200",
        "c00002ff",
        "08060028",
        "01bb01bb",
        "20010db8000000000000000000000001",
        "20010db8000000000000000000000001",
    );

    #[test]
    fn emits_known_bytes() {
        let mut out = Vec::new();
        sample().emit(&mut out);
        assert_eq!(hex::encode(&out), SAMPLE_HEX);
        assert_eq!(TsPayload::parse(&out), Ok(sample()));
    }

    fn parse_hex(h: &str) -> Result<TsPayload, Error> {
        TsPayload::parse(&hex::decode(h).unwrap())
    }

    #[test]
    fn rejects_ts_length_mismatch() {
        // IPv4 selector claiming 40 bytes (swallows the IPv6 one partly).
        assert!(parse_hex(&SAMPLE_HEX.replacen("07000010", "07000028", 1)).is_err());
        // IPv6 selector claiming 16 bytes: right for IPv4, wrong for its type.
        assert_eq!(
            parse_hex(&SAMPLE_HEX.replacen("08060028", "08060010", 1)),
            Err(Error::BadLength)
        );
        // Length beyond the payload.
        assert_eq!(
            parse_hex(&SAMPLE_HEX.replacen("08060028", "08060029", 1)),
            Err(Error::BadLength)
        );
        // Length below the selector header.
        assert_eq!(
            parse_hex(&SAMPLE_HEX.replacen("07000010", "07000003", 1)),
            Err(Error::BadLength)
        );
    }

    #[test]
    fn rejects_address_family_mismatch() {
        // An IPv4-range selector carrying IPv6-sized addresses.
        let h = concat!(
            "01000000",
            "07000028",
            "0000ffff",
            "20010db8000000000000000000000001",
            "20010db8000000000000000000000001",
        );
        assert_eq!(parse_hex(h), Err(Error::BadLength));
    }

    #[test]
    fn rejects_unknown_ts_type() {
        let h = SAMPLE_HEX.replacen("07000010", "0a000010", 1);
        assert!(matches!(parse_hex(&h), Err(Error::InvalidSyntax(_))));
    }

    #[test]
    fn rejects_ts_count_mismatch() {
        for c in ["01000000", "03000000"] {
            let h = SAMPLE_HEX.replacen("02000000", c, 1);
            assert!(matches!(parse_hex(&h), Err(Error::InvalidSyntax(_))));
        }
    }

    #[test]
    fn truncated_ts_fails_at_every_length() {
        let mut out = Vec::new();
        sample().emit(&mut out);
        for n in 0..out.len() {
            assert!(TsPayload::parse(&out[..n]).is_err(), "prefix {n}");
        }
    }

    proptest! {
        #[test]
        fn ts_round_trip(p in ts_payload()) {
            let mut out = Vec::new();
            p.emit(&mut out);
            prop_assert_eq!(TsPayload::parse(&out), Ok(p.clone()));
            for n in 0..out.len() {
                prop_assert!(TsPayload::parse(&out[..n]).is_err());
            }
        }

        #[test]
        fn ts_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = TsPayload::parse(&bytes);
        }
    }
}
