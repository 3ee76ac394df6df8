//! Owned representations of every IKEv2 payload body (RFC 7296 §3.3–§3.16, RFC 7383).
use alloc::vec::Vec;
use core::net::IpAddr;

use crate::numbers::*;

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
    /// A transform with the key length attribute (bits).
    pub fn with_key_length(ty: TransformType, id: TransformId, bits: u16) -> Self {
        todo!()
    }
    /// The key length attribute in bits, if present (TV format).
    pub fn key_length(&self) -> Option<u16> {
        todo!()
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

impl IdPayload {
    /// The bytes the PSK and signature AUTH computations MAC: ID type, three
    /// reserved bytes, and the data (RFC 7296 §2.15, "IDi'").
    pub fn body_bytes(&self) -> Vec<u8> {
        todo!()
    }
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
    /// [`crate::Error::UnsupportedCriticalPayload`].
    Unknown {
        ty: PayloadType,
        critical: bool,
        body: Vec<u8>,
    },
}

impl Payload {
    pub fn payload_type(&self) -> PayloadType {
        todo!()
    }
}
