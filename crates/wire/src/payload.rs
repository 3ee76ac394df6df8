//! Owned representations of every IKEv2 payload body (RFC 7296 §3.3–§3.16, RFC 7383).
//!
//! Each body type has `parse(body)` / `emit(&self, out)` for the bytes after
//! the 4-byte generic payload header; [`crate::Message`] and
//! [`crate::parse_payloads`] add the generic headers and chain them.
use alloc::vec::Vec;
use core::net::IpAddr;

use crate::Error;
use crate::numbers::*;

mod basic;
mod cp;
mod sa;
mod ts;

/// Length of the generic payload header: next payload(1), critical bit and
/// reserved(1), payload length(2) (RFC 7296 §3.2).
pub const GENERIC_HEADER_LEN: usize = 4;

/// A transform attribute (RFC 7296 §3.3.5): TV (AF bit set) or TLV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    Short(u16),
    Long(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute type without the AF bit.
    pub ty: u16,
    pub value: AttributeValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub ty: TransformType,
    pub id: TransformId,
    pub attributes: Vec<Attribute>,
}

impl Transform {
    /// A transform without attributes.
    pub fn new(ty: TransformType, id: TransformId) -> Self {
        Transform {
            ty,
            id,
            attributes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// 1-based proposal number; the response echoes the accepted one.
    pub number: u8,
    pub protocol: ProtocolId,
    /// Empty in IKE_SA_INIT, 8 bytes for an IKE SA rekey, 4 for ESP/AH.
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaPayload {
    pub proposals: Vec<Proposal>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KePayload {
    pub group: TransformId,
    pub data: Vec<u8>,
}

/// IDi / IDr body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPayload {
    pub id_type: IdType,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPayload {
    pub encoding: CertEncoding,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPayload {
    pub method: AuthMethod,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyPayload {
    pub protocol: ProtocolId,
    /// Empty, or the SPI the notify is about.
    pub spi: Vec<u8>,
    pub ty: NotifyType,
    pub data: Vec<u8>,
}

impl NotifyPayload {
    /// A notify that is not about any SA.
    pub fn new(ty: NotifyType, data: Vec<u8>) -> Self {
        NotifyPayload {
            protocol: ProtocolId::NONE,
            spi: Vec::new(),
            ty,
            data,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletePayload {
    pub protocol: ProtocolId,
    /// 0 for IKE (no SPIs), 4 for ESP/AH. Every entry of `spis` has this length.
    pub spi_size: u8,
    pub spis: Vec<Vec<u8>>,
}

/// One traffic selector (RFC 7296 §3.13.1). Addresses are of the family the
/// type names; the parser rejects a mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    pub ts_type: TsType,
    /// 0 = any protocol.
    pub ip_protocol: u8,
    pub start_port: u16,
    pub end_port: u16,
    pub start_addr: IpAddr,
    pub end_addr: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TsPayload {
    pub selectors: Vec<TrafficSelector>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigAttribute {
    pub ty: CfgAttrType,
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpPayload {
    pub cfg_type: CfgType,
    pub attributes: Vec<ConfigAttribute>,
}

/// The Encrypted and Authenticated payload. `body` is IV ‖ ciphertext ‖ ICV as
/// on the wire; the generic header's next-payload field carries `first_inner`,
/// the type of the first payload inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkPayload {
    pub first_inner: PayloadType,
    pub body: Vec<u8>,
}

/// The Encrypted Fragment payload (RFC 7383 §2.5). `first_inner` is only
/// meaningful in fragment number 1 and is 0 in the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkfPayload {
    pub first_inner: PayloadType,
    pub fragment_number: u16,
    pub total_fragments: u16,
    pub body: Vec<u8>,
}

/// Any IKEv2 payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Sa(SaPayload),
    Ke(KePayload),
    IdI(IdPayload),
    IdR(IdPayload),
    Cert(CertPayload),
    CertReq(CertPayload),
    Auth(AuthPayload),
    Nonce(Vec<u8>),
    Notify(NotifyPayload),
    Delete(DeletePayload),
    VendorId(Vec<u8>),
    TsI(TsPayload),
    TsR(TsPayload),
    Sk(SkPayload),
    Skf(SkfPayload),
    Cp(CpPayload),
    Eap(Vec<u8>),
    /// A payload this codec does not know. Non-critical unknown payloads are kept
    /// so the engine can ignore them; critical ones make the parser fail with
    /// [`crate::Error::UnsupportedCriticalPayload`]. `ty` must not be one of
    /// the known types (such a value would come back parsed as that type).
    Unknown {
        ty: PayloadType,
        critical: bool,
        body: Vec<u8>,
    },
}

impl Payload {
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Payload::Sa(_) => PayloadType::SA,
            Payload::Ke(_) => PayloadType::KE,
            Payload::IdI(_) => PayloadType::IDI,
            Payload::IdR(_) => PayloadType::IDR,
            Payload::Cert(_) => PayloadType::CERT,
            Payload::CertReq(_) => PayloadType::CERTREQ,
            Payload::Auth(_) => PayloadType::AUTH,
            Payload::Nonce(_) => PayloadType::NONCE,
            Payload::Notify(_) => PayloadType::NOTIFY,
            Payload::Delete(_) => PayloadType::DELETE,
            Payload::VendorId(_) => PayloadType::VENDOR_ID,
            Payload::TsI(_) => PayloadType::TSI,
            Payload::TsR(_) => PayloadType::TSR,
            Payload::Sk(_) => PayloadType::SK,
            Payload::Skf(_) => PayloadType::SKF,
            Payload::Cp(_) => PayloadType::CP,
            Payload::Eap(_) => PayloadType::EAP,
            Payload::Unknown { ty, .. } => *ty,
        }
    }

    /// The value of this payload's next-payload field when it is followed by
    /// `following`: SK and SKF carry the type of their first inner payload
    /// there instead (RFC 7296 §3.14).
    pub(crate) fn next_field(&self, following: PayloadType) -> PayloadType {
        match self {
            Payload::Sk(sk) => sk.first_inner,
            Payload::Skf(skf) => skf.first_inner,
            _ => following,
        }
    }

    /// The critical bit to send. Known payloads go out with it clear (every
    /// IKEv2 implementation understands them); unknown ones keep theirs.
    pub(crate) fn critical(&self) -> bool {
        matches!(self, Payload::Unknown { critical: true, .. })
    }

    /// Parses a payload body (after the generic header). `next` is the
    /// generic header's next-payload field, which SK and SKF keep as their
    /// first inner type. Known types are parsed whatever their critical bit
    /// (RFC 7296 §2.5); unknown ones are kept unless critical.
    pub(crate) fn parse_body(
        ty: PayloadType,
        critical: bool,
        next: PayloadType,
        body: &[u8],
    ) -> Result<Payload, Error> {
        Ok(match ty {
            PayloadType::SA => Payload::Sa(SaPayload::parse(body)?),
            PayloadType::KE => Payload::Ke(KePayload::parse(body)?),
            PayloadType::IDI => Payload::IdI(IdPayload::parse(body)?),
            PayloadType::IDR => Payload::IdR(IdPayload::parse(body)?),
            PayloadType::CERT => Payload::Cert(CertPayload::parse(body)?),
            PayloadType::CERTREQ => Payload::CertReq(CertPayload::parse(body)?),
            PayloadType::AUTH => Payload::Auth(AuthPayload::parse(body)?),
            PayloadType::NONCE => Payload::Nonce(body.to_vec()),
            PayloadType::NOTIFY => Payload::Notify(NotifyPayload::parse(body)?),
            PayloadType::DELETE => Payload::Delete(DeletePayload::parse(body)?),
            PayloadType::VENDOR_ID => Payload::VendorId(body.to_vec()),
            PayloadType::TSI => Payload::TsI(TsPayload::parse(body)?),
            PayloadType::TSR => Payload::TsR(TsPayload::parse(body)?),
            PayloadType::SK => Payload::Sk(SkPayload {
                first_inner: next,
                body: body.to_vec(),
            }),
            PayloadType::SKF => Payload::Skf(SkfPayload::parse(next, body)?),
            PayloadType::CP => Payload::Cp(CpPayload::parse(body)?),
            PayloadType::EAP => Payload::Eap(body.to_vec()),
            _ if critical => return Err(Error::UnsupportedCriticalPayload(ty)),
            _ => Payload::Unknown {
                ty,
                critical,
                body: body.to_vec(),
            },
        })
    }

    /// Appends the payload body (without the generic header).
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Sa(p) => p.emit(out),
            Payload::Ke(p) => p.emit(out),
            Payload::IdI(p) | Payload::IdR(p) => p.emit(out),
            Payload::Cert(p) | Payload::CertReq(p) => p.emit(out),
            Payload::Auth(p) => p.emit(out),
            Payload::Notify(p) => p.emit(out),
            Payload::Delete(p) => p.emit(out),
            Payload::TsI(p) | Payload::TsR(p) => p.emit(out),
            Payload::Skf(p) => p.emit(out),
            Payload::Cp(p) => p.emit(out),
            Payload::Sk(SkPayload { body, .. })
            | Payload::Nonce(body)
            | Payload::VendorId(body)
            | Payload::Eap(body)
            | Payload::Unknown { body, .. } => out.extend_from_slice(body),
        }
    }
}
