//! SA payload body: proposals, transforms and transform attributes
//! (RFC 7296 §3.3). Every substructure length and count is checked against the
//! bytes that are actually present before anything is stored.
use alloc::vec::Vec;

use super::{Attribute, AttributeValue, Proposal, SaPayload, Transform};
use crate::codec::{Reader, Writer, count_u8};
use crate::{ATTR_KEY_LENGTH, Error, ProtocolId, TransformId, TransformType};

/// "Last Substruc" value of a proposal that is followed by another one.
const MORE_PROPOSALS: u8 = 2;
/// "Last Substruc" value of a transform that is followed by another one.
const MORE_TRANSFORMS: u8 = 3;
/// "Last Substruc" value of the final substructure of either kind.
const LAST: u8 = 0;
/// Attribute Format bit: set for the two-byte TV format.
const AF_TV: u16 = 0x8000;

/// Fixed part of a proposal or transform substructure, including the
/// last/more, reserved and length fields: a shorter length field is invalid.
const SUBSTRUCTURE_MIN_LEN: usize = 8;

/// Walks a list of substructures that each start with last/more(1),
/// reserved(1), length(2). Calls `f` with each body (after those four bytes)
/// and checks that the last/more markers agree with where the data ends.
fn walk_substructures<'a>(
    bytes: &'a [u8],
    more_marker: u8,
    mut f: impl FnMut(&'a [u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut r = Reader::new(bytes);
    while r.remaining() > 0 {
        let marker = r.u8()?;
        r.skip(1)?;
        let len = usize::from(r.u16()?);
        if len < SUBSTRUCTURE_MIN_LEN {
            return Err(Error::BadLength);
        }
        f(r.take_length_prefixed(len, 4)?)?;
        let last_by_position = r.remaining() == 0;
        match marker {
            LAST if last_by_position => {}
            LAST => return Err(Error::InvalidSyntax("substructure after the last one")),
            m if m == more_marker && !last_by_position => {}
            m if m == more_marker => return Err(Error::InvalidSyntax("missing substructure")),
            _ => return Err(Error::InvalidSyntax("bad last-substructure marker")),
        }
    }
    Ok(())
}

impl Transform {
    /// A transform with the key length attribute (bits).
    pub fn with_key_length(ty: TransformType, id: TransformId, bits: u16) -> Self {
        Transform {
            ty,
            id,
            attributes: alloc::vec![Attribute {
                ty: ATTR_KEY_LENGTH,
                value: AttributeValue::Short(bits),
            }],
        }
    }

    /// The key length attribute in bits, if present (TV format).
    pub fn key_length(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a.value {
            AttributeValue::Short(bits) if a.ty == ATTR_KEY_LENGTH => Some(bits),
            _ => None,
        })
    }

    /// Parses a transform body: type(1) reserved(1) id(2) attributes.
    fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let ty = TransformType(r.u8()?);
        r.skip(1)?;
        let id = TransformId(r.u16()?);
        let mut attributes = Vec::new();
        while r.remaining() > 0 {
            let raw = r.u16()?;
            let value = if raw & AF_TV != 0 {
                AttributeValue::Short(r.u16()?)
            } else {
                let len = usize::from(r.u16()?);
                AttributeValue::Long(r.take(len).map_err(|_| Error::BadLength)?.to_vec())
            };
            attributes.push(Attribute {
                ty: raw & !AF_TV,
                value,
            });
        }
        Ok(Transform { ty, id, attributes })
    }

    /// Writes the whole transform substructure including its header.
    fn emit(&self, last: bool, w: &mut Writer<'_>) {
        let start = w.position();
        w.u8(if last { LAST } else { MORE_TRANSFORMS });
        w.u8(0);
        let slot = w.placeholder_u16();
        w.u8(self.ty.0);
        w.u8(0);
        w.u16(self.id.0);
        for a in &self.attributes {
            match &a.value {
                AttributeValue::Short(v) => {
                    w.u16(a.ty | AF_TV);
                    w.u16(*v);
                }
                AttributeValue::Long(v) => {
                    w.u16(a.ty & !AF_TV);
                    let vs = w.placeholder_u16();
                    let vstart = w.position();
                    w.bytes(v);
                    w.patch_len_u16(vs, vstart);
                }
            }
        }
        w.patch_len_u16(slot, start);
    }
}

impl Proposal {
    /// Parses a proposal body: number(1) protocol(1) SPI size(1)
    /// #transforms(1) SPI transforms.
    fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let number = r.u8()?;
        let protocol = ProtocolId(r.u8()?);
        let spi_size = usize::from(r.u8()?);
        let declared = usize::from(r.u8()?);
        let spi = r.take(spi_size).map_err(|_| Error::BadLength)?.to_vec();
        let mut transforms = Vec::new();
        walk_substructures(r.rest(), MORE_TRANSFORMS, |t| {
            transforms.push(Transform::parse(t)?);
            Ok(())
        })?;
        if transforms.len() != declared {
            return Err(Error::InvalidSyntax("transform count mismatch"));
        }
        Ok(Proposal {
            number,
            protocol,
            spi,
            transforms,
        })
    }

    fn emit(&self, last: bool, w: &mut Writer<'_>) {
        let start = w.position();
        w.u8(if last { LAST } else { MORE_PROPOSALS });
        w.u8(0);
        let slot = w.placeholder_u16();
        w.u8(self.number);
        w.u8(self.protocol.0);
        w.u8(count_u8(self.spi.len()));
        w.u8(count_u8(self.transforms.len()));
        w.bytes(&self.spi);
        let n = self.transforms.len();
        for (i, t) in self.transforms.iter().enumerate() {
            t.emit(i + 1 == n, w);
        }
        w.patch_len_u16(slot, start);
    }
}

impl SaPayload {
    /// Parses an SA payload body (after the generic payload header). An SA
    /// payload without any proposal is [`Error::InvalidSyntax`].
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        if body.is_empty() {
            return Err(Error::InvalidSyntax("SA payload without proposals"));
        }
        let mut proposals = Vec::new();
        walk_substructures(body, MORE_PROPOSALS, |p| {
            proposals.push(Proposal::parse(p)?);
            Ok(())
        })?;
        Ok(SaPayload { proposals })
    }

    /// Appends the body; the last/more markers, lengths and counts are derived
    /// from the vectors.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        let n = self.proposals.len();
        for (i, p) in self.proposals.iter().enumerate() {
            p.emit(i + 1 == n, &mut w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::sa_payload;
    use crate::{encr, ke, prf};
    use proptest::prelude::*;
    use std::vec;

    fn ike_proposal() -> SaPayload {
        SaPayload {
            proposals: vec![Proposal {
                number: 1,
                protocol: ProtocolId::IKE,
                spi: vec![],
                transforms: vec![
                    Transform::with_key_length(TransformType::ENCR, encr::AES_GCM_16, 256),
                    Transform::new(TransformType::PRF, prf::HMAC_SHA2_256),
                    Transform::new(TransformType::KE, ke::CURVE25519),
                ],
            }],
        }
    }

    const IKE_PROPOSAL_HEX: &str = concat!(
        "00000024", "01010003", // last, length 36, #1 IKE, no SPI, 3 transforms
        "0300000c", "01000014", "800e0100", // ENCR AES-GCM-16, key length 256
        "03000008", "02000005", // PRF HMAC-SHA2-256
        "00000008", "0400001f", // KE Curve25519
    );

    #[test]
    fn emits_known_bytes() {
        let mut out = Vec::new();
        ike_proposal().emit(&mut out);
        assert_eq!(hex::encode(&out), IKE_PROPOSAL_HEX);
        assert_eq!(SaPayload::parse(&out), Ok(ike_proposal()));
    }

    #[test]
    fn key_length_helpers() {
        let t = Transform::with_key_length(TransformType::ENCR, encr::AES_CBC, 128);
        assert_eq!(t.key_length(), Some(128));
        assert_eq!(
            Transform::new(TransformType::ENCR, encr::AES_CBC).key_length(),
            None
        );
        let tlv = Transform {
            attributes: vec![Attribute {
                ty: ATTR_KEY_LENGTH,
                value: AttributeValue::Long(vec![0, 128]),
            }],
            ..t
        };
        assert_eq!(tlv.key_length(), None);
    }

    #[test]
    fn accepts_unknown_transform_ids_and_attributes() {
        let sa = SaPayload {
            proposals: vec![Proposal {
                number: 7,
                protocol: ProtocolId(200),
                spi: vec![1, 2, 3, 4],
                transforms: vec![Transform {
                    ty: TransformType(250),
                    id: TransformId(0xfff0),
                    attributes: vec![
                        Attribute {
                            ty: 0x1234,
                            value: AttributeValue::Long(vec![1, 2, 3]),
                        },
                        Attribute {
                            ty: 0x7fff,
                            value: AttributeValue::Short(9),
                        },
                        Attribute {
                            ty: 3,
                            value: AttributeValue::Long(vec![]),
                        },
                    ],
                }],
            }],
        };
        let mut out = Vec::new();
        sa.emit(&mut out);
        assert_eq!(SaPayload::parse(&out), Ok(sa));
    }

    fn parse_hex(h: &str) -> Result<SaPayload, Error> {
        SaPayload::parse(&hex::decode(h).unwrap())
    }

    #[test]
    fn rejects_empty_sa() {
        assert!(matches!(
            SaPayload::parse(&[]),
            Err(Error::InvalidSyntax(_))
        ));
    }

    #[test]
    fn rejects_proposal_length_mismatch() {
        // Proposal length 37 with 36 bytes present, and 7 (< header).
        let long = IKE_PROPOSAL_HEX.replacen("00000024", "00000025", 1);
        assert_eq!(parse_hex(&long), Err(Error::BadLength));
        let short = IKE_PROPOSAL_HEX.replacen("00000024", "00000007", 1);
        assert_eq!(parse_hex(&short), Err(Error::BadLength));
        // Length 32 leaves four bytes behind the "last" proposal.
        let shorter = IKE_PROPOSAL_HEX.replacen("00000024", "00000020", 1);
        assert!(parse_hex(&shorter).is_err());
    }

    #[test]
    fn rejects_transform_length_mismatch() {
        // First transform claims 16 bytes: it swallows part of the next one.
        let h = IKE_PROPOSAL_HEX.replacen("0300000c", "03000010", 1);
        assert!(parse_hex(&h).is_err());
        // Last transform claims 12 bytes where 8 remain.
        let h = IKE_PROPOSAL_HEX.replacen("00000008", "0000000c", 1);
        assert_eq!(parse_hex(&h), Err(Error::BadLength));
        // Transform length below its own header.
        for bad in ["03000003", "03000007"] {
            let h = IKE_PROPOSAL_HEX.replacen("03000008", bad, 1);
            assert_eq!(parse_hex(&h), Err(Error::BadLength));
        }
    }

    #[test]
    fn rejects_transform_count_mismatch() {
        for count in ["01010002", "01010004", "01010000"] {
            let h = IKE_PROPOSAL_HEX.replacen("01010003", count, 1);
            assert_eq!(
                parse_hex(&h),
                Err(Error::InvalidSyntax("transform count mismatch"))
            );
        }
    }

    #[test]
    fn rejects_bad_last_markers() {
        // Middle transform marked last.
        let h = IKE_PROPOSAL_HEX.replacen("03000008", "00000008", 1);
        assert!(matches!(parse_hex(&h), Err(Error::InvalidSyntax(_))));
        // Final transform marked "more".
        let h = IKE_PROPOSAL_HEX.replacen("00000008", "03000008", 1);
        assert!(matches!(parse_hex(&h), Err(Error::InvalidSyntax(_))));
        // Proposal marked "more" without a successor, or with a bogus value.
        let h = IKE_PROPOSAL_HEX.replacen("00000024", "02000024", 1);
        assert!(matches!(parse_hex(&h), Err(Error::InvalidSyntax(_))));
        let h = IKE_PROPOSAL_HEX.replacen("00000024", "05000024", 1);
        assert!(matches!(parse_hex(&h), Err(Error::InvalidSyntax(_))));
    }

    #[test]
    fn rejects_attribute_tlv_overrun() {
        // ENCR transform with a TLV attribute (type 1) claiming 5 value bytes, 4 present.
        let h = concat!(
            "00000014", "01010001", //
            "0000000c", "01000014", "00010005", "aabbccdd",
        );
        assert_eq!(parse_hex(h), Err(Error::BadLength));
        // Attribute header cut in half.
        let h = concat!("00000012", "01010001", "0000000a", "01000014", "8001");
        assert_eq!(parse_hex(h), Err(Error::Truncated));
    }

    #[test]
    fn rejects_spi_longer_than_proposal() {
        let h = concat!("0000000a", "03030400", "aabb");
        assert_eq!(parse_hex(h), Err(Error::BadLength));
    }

    #[test]
    fn truncated_sa_fails_at_every_length() {
        let mut out = Vec::new();
        ike_proposal().emit(&mut out);
        for n in 0..out.len() {
            assert!(SaPayload::parse(&out[..n]).is_err(), "prefix {n} parsed");
        }
    }

    proptest! {
        #[test]
        fn sa_round_trip(sa in sa_payload()) {
            let mut out = Vec::new();
            sa.emit(&mut out);
            prop_assert_eq!(SaPayload::parse(&out), Ok(sa));
            for n in 0..out.len() {
                prop_assert!(SaPayload::parse(&out[..n]).is_err());
            }
        }

        #[test]
        fn sa_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = SaPayload::parse(&bytes);
        }
    }
}
