//! Configuration payload (RFC 7296 §3.15): what remote-access clients use to
//! ask for a virtual IP, DNS servers and subnets.
use alloc::vec::Vec;

use super::{ConfigAttribute, CpPayload};
use crate::codec::{Reader, Writer};
use crate::{CfgAttrType, CfgType, Error};

/// The reserved top bit of a configuration attribute type.
const R_BIT: u16 = 0x8000;

impl CpPayload {
    /// type(1) reserved(3) then attributes: R bit + type(15), length(2),
    /// value. The R bit is ignored; each value must fit in the payload.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let cfg_type = CfgType(r.u8()?);
        r.skip(3)?;
        let mut attributes = Vec::new();
        while r.remaining() > 0 {
            let ty = CfgAttrType(r.u16()? & !R_BIT);
            let len = usize::from(r.u16()?);
            let value = r.take(len).map_err(|_| Error::BadLength)?.to_vec();
            attributes.push(ConfigAttribute { ty, value });
        }
        Ok(CpPayload {
            cfg_type,
            attributes,
        })
    }
    /// Attribute types are 15 bits; the top bit of `ty` is not written.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u8(self.cfg_type.0);
        w.zeros(3);
        for a in &self.attributes {
            w.u16(a.ty.0 & !R_BIT);
            let slot = w.placeholder_u16();
            let start = w.position();
            w.bytes(&a.value);
            w.patch_len_u16(slot, start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::cp_payload;
    use proptest::prelude::*;
    use std::vec;

    #[test]
    fn request_for_address_and_dns() {
        let cp = CpPayload {
            cfg_type: CfgType::CFG_REQUEST,
            attributes: vec![
                ConfigAttribute {
                    ty: CfgAttrType::INTERNAL_IP4_ADDRESS,
                    value: vec![],
                },
                ConfigAttribute {
                    ty: CfgAttrType::INTERNAL_IP4_DNS,
                    value: vec![],
                },
            ],
        };
        let mut out = Vec::new();
        cp.emit(&mut out);
        assert_eq!(out, [1, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0]);
        assert_eq!(CpPayload::parse(&out), Ok(cp));
    }

    #[test]
    fn accepts_reserved_bit_and_unknown_attribute() {
        let cp = CpPayload::parse(&[2, 0, 0, 0, 0x80, 0x01, 0, 4, 192, 0, 2, 1, 0x40, 0, 0, 1, 7])
            .unwrap();
        assert_eq!(cp.cfg_type, CfgType::CFG_REPLY);
        assert_eq!(cp.attributes[0].ty, CfgAttrType::INTERNAL_IP4_ADDRESS);
        assert_eq!(cp.attributes[0].value, [192, 0, 2, 1]);
        assert_eq!(cp.attributes[1].ty, CfgAttrType(0x4000));
        assert_eq!(cp.attributes[1].value, [7]);
    }

    #[test]
    fn rejects_attribute_overrun() {
        assert_eq!(
            CpPayload::parse(&[2, 0, 0, 0, 0, 1, 0, 5, 192, 0, 2, 1]),
            Err(Error::BadLength)
        );
        assert_eq!(
            CpPayload::parse(&[2, 0, 0, 0, 0, 1, 0]),
            Err(Error::Truncated)
        );
        assert_eq!(CpPayload::parse(&[2, 0, 0]), Err(Error::Truncated));
    }

    proptest! {
        #[test]
        fn cp_round_trip(p in cp_payload()) {
            let mut out = Vec::new();
            p.emit(&mut out);
            prop_assert_eq!(CpPayload::parse(&out), Ok(p));
        }

        #[test]
        fn cp_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = CpPayload::parse(&bytes);
        }
    }
}
