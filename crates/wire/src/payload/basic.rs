//! The payloads with a short fixed prefix and an opaque tail: KE, ID, CERT,
//! CERTREQ, AUTH, Notify, Delete and the SKF fragment header (RFC 7296 §3.4–
//! §3.11, RFC 7383 §2.5).
use alloc::vec::Vec;

use super::{
    AuthPayload, CertPayload, DeletePayload, IdPayload, KePayload, NotifyPayload, SkfPayload,
};
use crate::codec::{Reader, Writer, count_u8, count_u16};
use crate::{
    AuthMethod, CertEncoding, Error, IdType, NotifyType, PayloadType, ProtocolId, TransformId,
};

impl KePayload {
    /// group(2) reserved(2) key exchange data.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let group = TransformId(r.u16()?);
        r.skip(2)?;
        Ok(KePayload {
            group,
            data: r.rest().to_vec(),
        })
    }
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u16(self.group.0);
        w.zeros(2);
        w.bytes(&self.data);
    }
}

impl IdPayload {
    /// The bytes the PSK and signature AUTH computations MAC: ID type, three
    /// reserved bytes, and the data (RFC 7296 §2.15, "IDi'").
    pub fn body_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.data.len());
        self.emit(&mut out);
        out
    }
    /// type(1) reserved(3) identification data.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let id_type = IdType(r.u8()?);
        r.skip(3)?;
        Ok(IdPayload {
            id_type,
            data: r.rest().to_vec(),
        })
    }
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u8(self.id_type.0);
        w.zeros(3);
        w.bytes(&self.data);
    }
}

impl CertPayload {
    /// encoding(1) data; the same layout serves CERT and CERTREQ.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let encoding = CertEncoding(r.u8()?);
        Ok(CertPayload {
            encoding,
            data: r.rest().to_vec(),
        })
    }
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u8(self.encoding.0);
        w.bytes(&self.data);
    }
}

impl AuthPayload {
    /// method(1) reserved(3) authentication data.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let method = AuthMethod(r.u8()?);
        r.skip(3)?;
        Ok(AuthPayload {
            method,
            data: r.rest().to_vec(),
        })
    }
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u8(self.method.0);
        w.zeros(3);
        w.bytes(&self.data);
    }
}

impl NotifyPayload {
    /// protocol(1) SPI size(1) type(2) SPI data.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let protocol = ProtocolId(r.u8()?);
        let spi_size = usize::from(r.u8()?);
        let ty = NotifyType(r.u16()?);
        let spi = r.take(spi_size).map_err(|_| Error::BadLength)?.to_vec();
        Ok(NotifyPayload {
            protocol,
            spi,
            ty,
            data: r.rest().to_vec(),
        })
    }
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u8(self.protocol.0);
        w.u8(count_u8(self.spi.len()));
        w.u16(self.ty.0);
        w.bytes(&self.spi);
        w.bytes(&self.data);
    }
}

impl DeletePayload {
    /// protocol(1) SPI size(1) #SPIs(2) SPIs. The count times the size must
    /// equal the bytes present; a zero SPI size (IKE) admits no SPIs.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let protocol = ProtocolId(r.u8()?);
        let spi_size = r.u8()?;
        let count = usize::from(r.u16()?);
        let rest = r.rest();
        if spi_size == 0 {
            // Without this a 4-byte body could ask for 65535 empty SPIs.
            if count != 0 || !rest.is_empty() {
                return Err(Error::InvalidSyntax("delete: SPIs of size zero"));
            }
            return Ok(DeletePayload {
                protocol,
                spi_size,
                spis: Vec::new(),
            });
        }
        if count * usize::from(spi_size) != rest.len() {
            return Err(Error::BadLength);
        }
        let spis = rest
            .chunks_exact(usize::from(spi_size))
            .map(<[u8]>::to_vec)
            .collect();
        Ok(DeletePayload {
            protocol,
            spi_size,
            spis,
        })
    }
    /// Writes `spi_size` as given and every SPI as is: the caller keeps each
    /// entry `spi_size` bytes long.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u8(self.protocol.0);
        w.u8(self.spi_size);
        w.u16(count_u16(self.spis.len()));
        for spi in &self.spis {
            debug_assert_eq!(spi.len(), usize::from(self.spi_size));
            w.bytes(spi);
        }
    }
}

impl SkfPayload {
    /// fragment number(2) total fragments(2) IV ‖ ciphertext ‖ ICV. The number
    /// must lie in `1..=total`. `first_inner` comes from the generic header.
    pub fn parse(first_inner: PayloadType, body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let fragment_number = r.u16()?;
        let total_fragments = r.u16()?;
        if fragment_number == 0 || fragment_number > total_fragments {
            return Err(Error::InvalidSyntax("fragment number out of range"));
        }
        Ok(SkfPayload {
            first_inner,
            fragment_number,
            total_fragments,
            body: r.rest().to_vec(),
        })
    }
    /// Writes the body after the generic header (which carries `first_inner`).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u16(self.fragment_number);
        w.u16(self.total_fragments);
        w.bytes(&self.body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies;
    use proptest::prelude::*;
    use std::vec;

    #[test]
    fn known_layouts() {
        let mut out = Vec::new();
        KePayload {
            group: TransformId(31),
            data: vec![9; 3],
        }
        .emit(&mut out);
        assert_eq!(out, [0, 31, 0, 0, 9, 9, 9]);

        let id = IdPayload {
            id_type: IdType::FQDN,
            data: b"a.b".to_vec(),
        };
        assert_eq!(id.body_bytes(), [2, 0, 0, 0, b'a', b'.', b'b']);

        out.clear();
        AuthPayload {
            method: AuthMethod::SHARED_KEY_MIC,
            data: vec![7],
        }
        .emit(&mut out);
        assert_eq!(out, [2, 0, 0, 0, 7]);

        out.clear();
        CertPayload {
            encoding: CertEncoding::PKCS7_X509,
            data: vec![1, 2],
        }
        .emit(&mut out);
        assert_eq!(out, [1, 1, 2]);

        out.clear();
        let n = NotifyPayload {
            protocol: ProtocolId::ESP,
            spi: vec![0xde, 0xad, 0xbe, 0xef],
            ty: NotifyType::REKEY_SA,
            data: vec![],
        };
        n.emit(&mut out);
        assert_eq!(out, [3, 4, 0x40, 0x09, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(NotifyPayload::parse(&out), Ok(n));

        out.clear();
        let d = DeletePayload {
            protocol: ProtocolId::ESP,
            spi_size: 4,
            spis: vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]],
        };
        d.emit(&mut out);
        assert_eq!(out, [3, 4, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(DeletePayload::parse(&out), Ok(d));
    }

    #[test]
    fn accepts_unknown_notify_type() {
        let body = [0, 0, 0xbe, 0xef, 1, 2, 3];
        let n = NotifyPayload::parse(&body).unwrap();
        assert_eq!(n.ty, NotifyType(0xbeef));
        assert_eq!(n.ty.name(), None);
        assert_eq!(n.data, [1, 2, 3]);
        let mut out = Vec::new();
        n.emit(&mut out);
        assert_eq!(out, body);
    }

    #[test]
    fn accepts_ike_delete() {
        let d = DeletePayload::parse(&[1, 0, 0, 0]).unwrap();
        assert_eq!(d.protocol, ProtocolId::IKE);
        assert!(d.spis.is_empty());
    }

    #[test]
    fn rejects_delete_spi_count_mismatch() {
        // Two SPIs announced, one present; one announced, two present.
        assert_eq!(
            DeletePayload::parse(&[3, 4, 0, 2, 1, 2, 3, 4]),
            Err(Error::BadLength)
        );
        assert_eq!(
            DeletePayload::parse(&[3, 4, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]),
            Err(Error::BadLength)
        );
        // Partial SPI.
        assert_eq!(
            DeletePayload::parse(&[3, 4, 0, 1, 1, 2, 3]),
            Err(Error::BadLength)
        );
        // Size-zero SPIs cannot be counted.
        assert!(matches!(
            DeletePayload::parse(&[1, 0, 0xff, 0xff]),
            Err(Error::InvalidSyntax(_))
        ));
        assert!(matches!(
            DeletePayload::parse(&[1, 0, 0, 0, 1]),
            Err(Error::InvalidSyntax(_))
        ));
    }

    #[test]
    fn rejects_notify_spi_overrun() {
        assert_eq!(
            NotifyPayload::parse(&[3, 4, 0x40, 0x09, 1, 2, 3]),
            Err(Error::BadLength)
        );
    }

    #[test]
    fn rejects_bad_fragment_numbers() {
        for (num, total) in [(0u16, 1u16), (0, 0), (3, 2), (1, 0)] {
            let mut body = Vec::new();
            body.extend_from_slice(&num.to_be_bytes());
            body.extend_from_slice(&total.to_be_bytes());
            assert!(matches!(
                SkfPayload::parse(PayloadType::NONE, &body),
                Err(Error::InvalidSyntax(_))
            ));
        }
        let ok = SkfPayload::parse(PayloadType::IDI, &[0, 2, 0, 2, 0xaa]).unwrap();
        assert_eq!(ok.fragment_number, 2);
        assert_eq!(ok.body, [0xaa]);
    }

    #[test]
    fn truncated_fixed_prefixes_fail() {
        let full = [1u8, 2, 3, 4];
        for n in 0..4 {
            assert_eq!(KePayload::parse(&full[..n]), Err(Error::Truncated));
            assert_eq!(IdPayload::parse(&full[..n]), Err(Error::Truncated));
            assert_eq!(AuthPayload::parse(&full[..n]), Err(Error::Truncated));
            assert_eq!(NotifyPayload::parse(&full[..n]), Err(Error::Truncated));
            assert_eq!(DeletePayload::parse(&full[..n]), Err(Error::Truncated));
            assert_eq!(
                SkfPayload::parse(PayloadType::NONE, &full[..n]),
                Err(Error::Truncated)
            );
        }
        assert_eq!(CertPayload::parse(&[]), Err(Error::Truncated));
    }

    macro_rules! round_trip {
        ($name:ident, $strategy:expr, $ty:ty) => {
            proptest! {
                #[test]
                fn $name(p in $strategy) {
                    let mut out = Vec::new();
                    p.emit(&mut out);
                    prop_assert_eq!(<$ty>::parse(&out), Ok(p));
                    for n in 0..out.len() {
                        let _ = <$ty>::parse(&out[..n]);
                    }
                }
            }
        };
    }
    round_trip!(ke_round_trip, strategies::ke_payload(), KePayload);
    round_trip!(id_round_trip, strategies::id_payload(), IdPayload);
    round_trip!(cert_round_trip, strategies::cert_payload(), CertPayload);
    round_trip!(auth_round_trip, strategies::auth_payload(), AuthPayload);
    round_trip!(
        notify_round_trip,
        strategies::notify_payload(),
        NotifyPayload
    );
    round_trip!(
        delete_round_trip,
        strategies::delete_payload(),
        DeletePayload
    );

    proptest! {
        #[test]
        fn skf_round_trip(p in strategies::skf_payload()) {
            let mut out = Vec::new();
            p.emit(&mut out);
            prop_assert_eq!(SkfPayload::parse(p.first_inner, &out), Ok(p));
        }

        #[test]
        fn fixed_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            let _ = KePayload::parse(&bytes);
            let _ = IdPayload::parse(&bytes);
            let _ = CertPayload::parse(&bytes);
            let _ = AuthPayload::parse(&bytes);
            let _ = NotifyPayload::parse(&bytes);
            let _ = DeletePayload::parse(&bytes);
            let _ = SkfPayload::parse(PayloadType::NONE, &bytes);
        }
    }
}
