//! proptest strategies that generate arbitrary *valid* payloads and messages:
//! everything they produce must survive emit → parse unchanged.
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::collection::vec as pvec;
use proptest::prelude::*;
use std::vec;

use crate::*;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    pvec(any::<u8>(), 0..=max)
}

pub fn attribute() -> impl Strategy<Value = Attribute> {
    (
        0u16..0x8000,
        prop_oneof![
            any::<u16>().prop_map(AttributeValue::Short),
            bytes(12).prop_map(AttributeValue::Long),
        ],
    )
        .prop_map(|(ty, value)| Attribute { ty, value })
}

pub fn transform() -> impl Strategy<Value = Transform> {
    (any::<u8>(), any::<u16>(), pvec(attribute(), 0..3)).prop_map(|(ty, id, attributes)| {
        Transform {
            ty: TransformType(ty),
            id: TransformId(id),
            attributes,
        }
    })
}

pub fn proposal() -> impl Strategy<Value = Proposal> {
    (any::<u8>(), any::<u8>(), bytes(8), pvec(transform(), 0..6)).prop_map(
        |(number, protocol, spi, transforms)| Proposal {
            number,
            protocol: ProtocolId(protocol),
            spi,
            transforms,
        },
    )
}

pub fn sa_payload() -> impl Strategy<Value = SaPayload> {
    pvec(proposal(), 1..4).prop_map(|proposals| SaPayload { proposals })
}

pub fn ke_payload() -> impl Strategy<Value = KePayload> {
    (any::<u16>(), bytes(64)).prop_map(|(g, data)| KePayload {
        group: TransformId(g),
        data,
    })
}

pub fn id_payload() -> impl Strategy<Value = IdPayload> {
    (any::<u8>(), bytes(32)).prop_map(|(t, data)| IdPayload {
        id_type: IdType(t),
        data,
    })
}

pub fn cert_payload() -> impl Strategy<Value = CertPayload> {
    (any::<u8>(), bytes(48)).prop_map(|(e, data)| CertPayload {
        encoding: CertEncoding(e),
        data,
    })
}

pub fn auth_payload() -> impl Strategy<Value = AuthPayload> {
    (any::<u8>(), bytes(48)).prop_map(|(m, data)| AuthPayload {
        method: AuthMethod(m),
        data,
    })
}

pub fn notify_payload() -> impl Strategy<Value = NotifyPayload> {
    (any::<u8>(), bytes(8), any::<u16>(), bytes(32)).prop_map(|(p, spi, ty, data)| NotifyPayload {
        protocol: ProtocolId(p),
        spi,
        ty: NotifyType(ty),
        data,
    })
}

pub fn delete_payload() -> impl Strategy<Value = DeletePayload> {
    (
        any::<u8>(),
        prop_oneof![Just(0u8), Just(4), Just(8), 1u8..=16],
    )
        .prop_flat_map(|(p, size)| {
            let n = if size == 0 { 0..1 } else { 0..5 };
            (
                Just(p),
                Just(size),
                pvec(pvec(any::<u8>(), usize::from(size)), n),
            )
        })
        .prop_map(|(p, spi_size, spis)| DeletePayload {
            protocol: ProtocolId(p),
            spi_size,
            spis,
        })
}

pub fn traffic_selector() -> impl Strategy<Value = TrafficSelector> {
    let v4 = (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(a, b)| {
        (
            TsType::IPV4_ADDR_RANGE,
            Ipv4Addr::from(a).into(),
            Ipv4Addr::from(b).into(),
        )
    });
    let v6 = (any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(a, b)| {
        (
            TsType::IPV6_ADDR_RANGE,
            Ipv6Addr::from(a).into(),
            Ipv6Addr::from(b).into(),
        )
    });
    (prop_oneof![v4, v6], any::<u8>(), any::<u16>(), any::<u16>()).prop_map(
        |((ts_type, start_addr, end_addr), ip_protocol, start_port, end_port): (
            (TsType, IpAddr, IpAddr),
            u8,
            u16,
            u16,
        )| TrafficSelector {
            ts_type,
            ip_protocol,
            start_port,
            end_port,
            start_addr,
            end_addr,
        },
    )
}

pub fn ts_payload() -> impl Strategy<Value = TsPayload> {
    pvec(traffic_selector(), 0..4).prop_map(|selectors| TsPayload { selectors })
}

pub fn cp_payload() -> impl Strategy<Value = CpPayload> {
    let attr = (0u16..0x8000, bytes(20)).prop_map(|(t, value)| ConfigAttribute {
        ty: CfgAttrType(t),
        value,
    });
    (any::<u8>(), pvec(attr, 0..5)).prop_map(|(t, attributes)| CpPayload {
        cfg_type: CfgType(t),
        attributes,
    })
}

pub fn skf_payload() -> impl Strategy<Value = SkfPayload> {
    (1u16..=u16::MAX)
        .prop_flat_map(|total| (1..=total, Just(total), any::<u8>(), bytes(48)))
        .prop_map(
            |(fragment_number, total_fragments, first, body)| SkfPayload {
                first_inner: PayloadType(first),
                fragment_number,
                total_fragments,
                body,
            },
        )
}

pub fn sk_payload() -> impl Strategy<Value = SkPayload> {
    (any::<u8>(), bytes(64)).prop_map(|(first, body)| SkPayload {
        first_inner: PayloadType(first),
        body,
    })
}

/// A payload type number this codec does not know.
fn unknown_type() -> impl Strategy<Value = PayloadType> {
    any::<u8>()
        .prop_filter("known payload type", |t| {
            *t != 0 && PayloadType(*t).name().is_none()
        })
        .prop_map(PayloadType)
}

/// Any payload that may appear in a chain other than SK/SKF.
pub fn inner_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        sa_payload().prop_map(Payload::Sa),
        ke_payload().prop_map(Payload::Ke),
        id_payload().prop_map(Payload::IdI),
        id_payload().prop_map(Payload::IdR),
        cert_payload().prop_map(Payload::Cert),
        cert_payload().prop_map(Payload::CertReq),
        auth_payload().prop_map(Payload::Auth),
        bytes(64).prop_map(Payload::Nonce),
        notify_payload().prop_map(Payload::Notify),
        delete_payload().prop_map(Payload::Delete),
        bytes(32).prop_map(Payload::VendorId),
        ts_payload().prop_map(Payload::TsI),
        ts_payload().prop_map(Payload::TsR),
        cp_payload().prop_map(Payload::Cp),
        bytes(32).prop_map(Payload::Eap),
        (unknown_type(), bytes(32)).prop_map(|(ty, body)| Payload::Unknown {
            ty,
            critical: false,
            body
        }),
    ]
}

pub fn header() -> impl Strategy<Value = HeaderRepr> {
    (
        any::<u64>(),
        any::<u64>(),
        0u8..16,
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
    )
        .prop_map(|(spi_i, spi_r, minor, ex, flags, message_id)| HeaderRepr {
            spi_i,
            spi_r,
            next_payload: PayloadType::NONE,
            version: 0x20 | minor,
            exchange: ExchangeType(ex),
            flags: Flags(flags),
            message_id,
            length: 0,
        })
}

/// A message: plaintext payloads, optionally followed by SK or SKF.
pub fn message() -> impl Strategy<Value = Message> {
    let tail = prop_oneof![
        Just(None),
        sk_payload().prop_map(|p| Some(Payload::Sk(p))),
        skf_payload().prop_map(|p| Some(Payload::Skf(p))),
    ];
    (header(), pvec(inner_payload(), 0..6), tail).prop_map(|(header, mut payloads, tail)| {
        payloads.extend(tail);
        Message { header, payloads }
    })
}
