//! Which payloads each exchange's request and response must, may and must not
//! carry (RFC 7296 §1.2–§1.5, §2.x). Checked by the engine on the decrypted
//! payload list so that each exchange handler can rely on what is present.
use crate::{ExchangeType, NotifyType, Payload, PayloadType};

/// A violated payload rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleViolation {
    Missing(PayloadType),
    Forbidden(PayloadType),
    TooMany(PayloadType),
}

/// How many of a payload type a message may carry when the table allows it.
#[derive(Debug, Clone, Copy)]
enum Count {
    /// At most one.
    One,
    /// Any number (CERT, CERTREQ, Delete).
    Many,
}

/// One row of a message's table: a payload type that is allowed, whether it is
/// required, and how often it may occur. Types without a row are forbidden,
/// except Notify, Vendor ID and non-critical unknown payloads.
#[derive(Debug, Clone, Copy)]
struct Allowed {
    ty: PayloadType,
    must: bool,
    count: Count,
}

const fn must(ty: PayloadType) -> Allowed {
    Allowed {
        ty,
        must: true,
        count: Count::One,
    }
}
const fn may(ty: PayloadType) -> Allowed {
    Allowed {
        ty,
        must: false,
        count: Count::One,
    }
}
const fn many(ty: PayloadType) -> Allowed {
    Allowed {
        ty,
        must: false,
        count: Count::Many,
    }
}

/// The rules for one exchange in one direction.
struct MessageRules {
    exchange: ExchangeType,
    response: bool,
    payloads: &'static [Allowed],
    /// Payloads that come together or not at all (the Child SA of IKE_AUTH).
    all_or_none: &'static [PayloadType],
    /// At least one of these must be present (an IKE_AUTH round carries an
    /// identity, an AUTH or an EAP message). Waived like the "must" rules.
    at_least_one: &'static [PayloadType],
    /// Status notifies that, like any error notify in a response, replace
    /// the required payloads (COOKIE and REDIRECT answers in IKE_SA_INIT).
    waived_by: &'static [NotifyType],
}

use PayloadType as P;

/// RFC 7296 §1.2 (IKE_SA_INIT, IKE_AUTH, with §2.16 EAP and RFC 4739 multiple
/// authentication rounds, where later rounds carry only IDi, AUTH or EAP),
/// §1.3 (CREATE_CHILD_SA: new Child SA, Child rekey, IKE rekey without TS),
/// §1.4 (INFORMATIONAL), RFC 9242 (IKE_INTERMEDIATE, as used by RFC 9370),
/// RFC 9370 §2.2.4 (IKE_FOLLOWUP_KE: one KE each way, with the
/// ADDITIONAL_KEY_EXCHANGE notify), RFC 5685 (REDIRECT in IKE_SA_INIT).
static RULES: &[MessageRules] = &[
    MessageRules {
        exchange: ExchangeType::IKE_SA_INIT,
        response: false,
        payloads: &[must(P::SA), must(P::KE), must(P::NONCE)],
        all_or_none: &[],
        at_least_one: &[],
        waived_by: &[],
    },
    MessageRules {
        exchange: ExchangeType::IKE_SA_INIT,
        response: true,
        payloads: &[must(P::SA), must(P::KE), must(P::NONCE), many(P::CERTREQ)],
        all_or_none: &[],
        at_least_one: &[],
        waived_by: &[NotifyType::COOKIE, NotifyType::REDIRECT],
    },
    MessageRules {
        exchange: ExchangeType::IKE_AUTH,
        response: false,
        payloads: &[
            may(P::IDI),
            many(P::CERT),
            many(P::CERTREQ),
            may(P::IDR),
            may(P::AUTH),
            may(P::EAP),
            may(P::CP),
            may(P::SA),
            may(P::TSI),
            may(P::TSR),
        ],
        all_or_none: &[P::SA, P::TSI, P::TSR],
        at_least_one: &[P::IDI, P::AUTH, P::EAP],
        waived_by: &[],
    },
    MessageRules {
        exchange: ExchangeType::IKE_AUTH,
        response: true,
        payloads: &[
            may(P::IDR),
            many(P::CERT),
            may(P::AUTH),
            may(P::EAP),
            may(P::CP),
            may(P::SA),
            may(P::TSI),
            may(P::TSR),
        ],
        all_or_none: &[P::SA, P::TSI, P::TSR],
        at_least_one: &[P::IDR, P::AUTH, P::EAP],
        waived_by: &[],
    },
    MessageRules {
        exchange: ExchangeType::CREATE_CHILD_SA,
        response: false,
        payloads: &[
            must(P::SA),
            must(P::NONCE),
            may(P::KE),
            may(P::TSI),
            may(P::TSR),
        ],
        all_or_none: &[P::TSI, P::TSR],
        at_least_one: &[],
        waived_by: &[],
    },
    MessageRules {
        exchange: ExchangeType::CREATE_CHILD_SA,
        response: true,
        payloads: &[
            must(P::SA),
            must(P::NONCE),
            may(P::KE),
            may(P::TSI),
            may(P::TSR),
        ],
        all_or_none: &[P::TSI, P::TSR],
        at_least_one: &[],
        waived_by: &[],
    },
    MessageRules {
        exchange: ExchangeType::INFORMATIONAL,
        response: false,
        payloads: &[many(P::DELETE), may(P::CP)],
        all_or_none: &[],
        at_least_one: &[],
        waived_by: &[],
    },
    MessageRules {
        exchange: ExchangeType::INFORMATIONAL,
        response: true,
        payloads: &[many(P::DELETE), may(P::CP)],
        all_or_none: &[],
        at_least_one: &[],
        waived_by: &[],
    },
    MessageRules {
        exchange: ExchangeType::IKE_INTERMEDIATE,
        response: false,
        payloads: &[may(P::KE)],
        all_or_none: &[],
        at_least_one: &[],
        waived_by: &[],
    },
    MessageRules {
        exchange: ExchangeType::IKE_INTERMEDIATE,
        response: true,
        payloads: &[may(P::KE)],
        all_or_none: &[],
        at_least_one: &[],
        waived_by: &[],
    },
    MessageRules {
        exchange: ExchangeType::IKE_FOLLOWUP_KE,
        response: false,
        payloads: &[must(P::KE)],
        all_or_none: &[],
        at_least_one: &[],
        waived_by: &[],
    },
    MessageRules {
        exchange: ExchangeType::IKE_FOLLOWUP_KE,
        response: true,
        payloads: &[must(P::KE)],
        all_or_none: &[],
        at_least_one: &[],
        waived_by: &[],
    },
];

/// Checks the (decrypted, for protected exchanges) payloads of a message.
/// Notify, Vendor ID and unknown non-critical payloads are allowed everywhere.
/// Error responses (a response carrying an error notify) are exempt from the
/// "must" rules, since a peer that refuses sends only the notify.
///
/// The first offending payload in wire order is reported; then a missing
/// required payload; then an incomplete all-or-none group. Exchange types
/// without a table (unknown ones) pass: the engine rejects those itself.
pub fn check(
    exchange: ExchangeType,
    is_response: bool,
    payloads: &[Payload],
) -> Result<(), RuleViolation> {
    let Some(rules) = RULES
        .iter()
        .find(|r| r.exchange == exchange && r.response == is_response)
    else {
        return Ok(());
    };
    let mut counts = [0u16; 256];
    let count = |counts: &[u16; 256], ty: PayloadType| counts[usize::from(ty.0)];
    for p in payloads {
        let ty = p.payload_type();
        let seen = &mut counts[usize::from(ty.0)];
        *seen = seen.saturating_add(1);
        match p {
            Payload::Notify(_) | Payload::VendorId(_) => continue,
            Payload::Unknown {
                critical: false, ..
            } => continue,
            _ => {}
        }
        match rules.payloads.iter().find(|a| a.ty == ty) {
            None => return Err(RuleViolation::Forbidden(ty)),
            Some(Allowed {
                count: Count::One, ..
            }) if *seen > 1 => {
                return Err(RuleViolation::TooMany(ty));
            }
            Some(_) => {}
        }
    }

    let waived = is_response
        && payloads.iter().any(|p| match p {
            Payload::Notify(n) => n.ty.is_error() || rules.waived_by.contains(&n.ty),
            _ => false,
        });
    if !waived {
        if let Some(a) = rules
            .payloads
            .iter()
            .find(|a| a.must && count(&counts, a.ty) == 0)
        {
            return Err(RuleViolation::Missing(a.ty));
        }
        let none_present = rules.at_least_one.iter().all(|&ty| count(&counts, ty) == 0);
        match rules.at_least_one.first() {
            Some(&first) if none_present => return Err(RuleViolation::Missing(first)),
            _ => {}
        }
    }
    let any_present = rules.all_or_none.iter().any(|&ty| count(&counts, ty) > 0);
    let absent = rules
        .all_or_none
        .iter()
        .find(|&&ty| count(&counts, ty) == 0);
    match absent {
        Some(&ty) if any_present => return Err(RuleViolation::Missing(ty)),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;
    use std::vec;
    use std::vec::Vec;

    const INIT: ExchangeType = ExchangeType::IKE_SA_INIT;
    const AUTH: ExchangeType = ExchangeType::IKE_AUTH;
    const CHILD: ExchangeType = ExchangeType::CREATE_CHILD_SA;
    const INFO: ExchangeType = ExchangeType::INFORMATIONAL;
    const INTER: ExchangeType = ExchangeType::IKE_INTERMEDIATE;

    fn sa() -> Payload {
        Payload::Sa(SaPayload::default())
    }
    fn ke() -> Payload {
        Payload::Ke(KePayload {
            group: ke::CURVE25519,
            data: vec![0; 32],
        })
    }
    fn nonce() -> Payload {
        Payload::Nonce(vec![0; 32])
    }
    fn id_i() -> Payload {
        Payload::IdI(IdPayload {
            id_type: IdType::FQDN,
            data: b"client".to_vec(),
        })
    }
    fn id_r() -> Payload {
        Payload::IdR(IdPayload {
            id_type: IdType::FQDN,
            data: b"gw".to_vec(),
        })
    }
    fn auth() -> Payload {
        Payload::Auth(AuthPayload {
            method: AuthMethod::SHARED_KEY_MIC,
            data: vec![0; 32],
        })
    }
    fn cert() -> Payload {
        Payload::Cert(CertPayload {
            encoding: CertEncoding::PKCS7_X509,
            data: vec![],
        })
    }
    fn certreq() -> Payload {
        Payload::CertReq(CertPayload {
            encoding: CertEncoding::PKCS7_X509,
            data: vec![],
        })
    }
    fn tsi() -> Payload {
        Payload::TsI(TsPayload::default())
    }
    fn tsr() -> Payload {
        Payload::TsR(TsPayload::default())
    }
    fn cp() -> Payload {
        Payload::Cp(CpPayload {
            cfg_type: CfgType::CFG_REQUEST,
            attributes: vec![],
        })
    }
    fn eap() -> Payload {
        Payload::Eap(vec![1, 1, 0, 4])
    }
    fn n(ty: NotifyType) -> Payload {
        Payload::Notify(NotifyPayload::new(ty, vec![]))
    }
    fn del() -> Payload {
        Payload::Delete(DeletePayload {
            protocol: ProtocolId::IKE,
            spi_size: 0,
            spis: vec![],
        })
    }
    fn vid() -> Payload {
        Payload::VendorId(vec![1])
    }
    fn unknown(critical: bool) -> Payload {
        Payload::Unknown {
            ty: PayloadType(200),
            critical,
            body: vec![],
        }
    }
    fn sk() -> Payload {
        Payload::Sk(SkPayload {
            first_inner: PayloadType::NONE,
            body: vec![],
        })
    }

    fn ok(ex: ExchangeType, resp: bool, p: Vec<Payload>) {
        assert_eq!(check(ex, resp, &p), Ok(()), "{ex} response={resp} {p:?}");
    }
    fn bad(ex: ExchangeType, resp: bool, p: Vec<Payload>, v: RuleViolation) {
        assert_eq!(check(ex, resp, &p), Err(v), "{ex} response={resp} {p:?}");
    }
    use RuleViolation::*;

    #[test]
    fn ike_sa_init() {
        let nat = NotifyType::NAT_DETECTION_SOURCE_IP;
        ok(
            INIT,
            false,
            vec![sa(), ke(), nonce(), n(nat), vid(), unknown(false)],
        );
        ok(
            INIT,
            false,
            vec![n(NotifyType::COOKIE), sa(), ke(), nonce()],
        );
        bad(INIT, false, vec![sa(), nonce()], Missing(PayloadType::KE));
        bad(
            INIT,
            false,
            vec![n(NotifyType::COOKIE)],
            Missing(PayloadType::SA),
        );
        bad(
            INIT,
            false,
            vec![sa(), ke(), nonce(), certreq()],
            Forbidden(PayloadType::CERTREQ),
        );
        bad(
            INIT,
            false,
            vec![sa(), ke(), ke(), nonce()],
            TooMany(PayloadType::KE),
        );
        bad(
            INIT,
            false,
            vec![sa(), ke(), nonce(), sk()],
            Forbidden(PayloadType::SK),
        );
        bad(
            INIT,
            false,
            vec![sa(), ke(), nonce(), unknown(true)],
            Forbidden(PayloadType(200)),
        );

        ok(
            INIT,
            true,
            vec![sa(), ke(), nonce(), certreq(), certreq(), n(nat)],
        );
        bad(INIT, true, vec![sa(), ke()], Missing(PayloadType::NONCE));
        ok(INIT, true, vec![n(NotifyType::COOKIE)]);
        ok(INIT, true, vec![n(NotifyType::INVALID_KE_PAYLOAD)]);
        ok(INIT, true, vec![n(NotifyType::NO_PROPOSAL_CHOSEN)]);
        ok(INIT, true, vec![n(NotifyType::REDIRECT)]);
        bad(INIT, true, vec![n(nat)], Missing(PayloadType::SA));
        bad(
            INIT,
            true,
            vec![n(NotifyType::COOKIE), id_r()],
            Forbidden(PayloadType::IDR),
        );
    }

    #[test]
    fn ike_auth_request() {
        ok(
            AUTH,
            false,
            vec![
                id_i(),
                cert(),
                certreq(),
                id_r(),
                auth(),
                sa(),
                tsi(),
                tsr(),
            ],
        );
        ok(AUTH, false, vec![id_i(), auth(), cp(), sa(), tsi(), tsr()]);
        // EAP: the first request has no AUTH; later rounds carry EAP, then AUTH.
        ok(AUTH, false, vec![id_i(), certreq(), sa(), tsi(), tsr()]);
        ok(AUTH, false, vec![eap()]);
        ok(AUTH, false, vec![auth()]);
        // RFC 4739: a second authentication round.
        ok(
            AUTH,
            false,
            vec![id_i(), auth(), n(NotifyType::ANOTHER_AUTH_FOLLOWS)],
        );
        bad(AUTH, false, vec![], Missing(PayloadType::IDI));
        bad(
            AUTH,
            false,
            vec![sa(), tsi(), tsr()],
            Missing(PayloadType::IDI),
        );
        bad(
            AUTH,
            false,
            vec![id_i(), auth(), sa(), tsi()],
            Missing(PayloadType::TSR),
        );
        bad(
            AUTH,
            false,
            vec![id_i(), auth(), tsi(), tsr()],
            Missing(PayloadType::SA),
        );
        bad(
            AUTH,
            false,
            vec![id_i(), id_i(), auth()],
            TooMany(PayloadType::IDI),
        );
        bad(
            AUTH,
            false,
            vec![id_i(), auth(), cp(), cp()],
            TooMany(PayloadType::CP),
        );
        bad(
            AUTH,
            false,
            vec![id_i(), auth(), ke()],
            Forbidden(PayloadType::KE),
        );
        bad(
            AUTH,
            false,
            vec![id_i(), auth(), del()],
            Forbidden(PayloadType::DELETE),
        );
        bad(
            AUTH,
            false,
            vec![id_i(), auth(), nonce()],
            Forbidden(PayloadType::NONCE),
        );
    }

    #[test]
    fn ike_auth_response() {
        ok(
            AUTH,
            true,
            vec![id_r(), cert(), cert(), auth(), cp(), sa(), tsi(), tsr()],
        );
        // Child SA refused: the IKE SA still comes up.
        ok(
            AUTH,
            true,
            vec![id_r(), auth(), n(NotifyType::TS_UNACCEPTABLE)],
        );
        ok(AUTH, true, vec![id_r(), auth()]);
        ok(AUTH, true, vec![id_r(), auth(), eap()]);
        ok(AUTH, true, vec![eap()]);
        ok(AUTH, true, vec![auth(), sa(), tsi(), tsr()]);
        ok(AUTH, true, vec![n(NotifyType::AUTHENTICATION_FAILED)]);
        bad(AUTH, true, vec![], Missing(PayloadType::IDR));
        bad(
            AUTH,
            true,
            vec![n(NotifyType::INITIAL_CONTACT)],
            Missing(PayloadType::IDR),
        );
        bad(
            AUTH,
            true,
            vec![id_r(), auth(), sa()],
            Missing(PayloadType::TSI),
        );
        bad(
            AUTH,
            true,
            vec![n(NotifyType::NO_PROPOSAL_CHOSEN), tsi(), tsr()],
            Missing(PayloadType::SA),
        );
        bad(
            AUTH,
            true,
            vec![id_r(), auth(), auth()],
            TooMany(PayloadType::AUTH),
        );
        bad(
            AUTH,
            true,
            vec![id_r(), auth(), id_i()],
            Forbidden(PayloadType::IDI),
        );
    }

    #[test]
    fn create_child_sa() {
        let rekey = NotifyType::REKEY_SA;
        ok(CHILD, false, vec![sa(), nonce(), tsi(), tsr()]);
        ok(
            CHILD,
            false,
            vec![n(rekey), sa(), nonce(), ke(), tsi(), tsr()],
        );
        ok(CHILD, false, vec![sa(), nonce(), ke()]);
        bad(
            CHILD,
            false,
            vec![sa(), ke(), tsi(), tsr()],
            Missing(PayloadType::NONCE),
        );
        bad(
            CHILD,
            false,
            vec![sa(), nonce(), tsi()],
            Missing(PayloadType::TSR),
        );
        bad(
            CHILD,
            false,
            vec![sa(), nonce(), ke(), del()],
            Forbidden(PayloadType::DELETE),
        );
        bad(
            CHILD,
            false,
            vec![sa(), nonce(), id_i()],
            Forbidden(PayloadType::IDI),
        );
        bad(
            CHILD,
            false,
            vec![sa(), sa(), nonce()],
            TooMany(PayloadType::SA),
        );

        ok(CHILD, true, vec![sa(), nonce(), ke(), tsi(), tsr()]);
        ok(CHILD, true, vec![n(NotifyType::TEMPORARY_FAILURE)]);
        ok(CHILD, true, vec![n(NotifyType::INVALID_KE_PAYLOAD)]);
        bad(CHILD, true, vec![nonce()], Missing(PayloadType::SA));
        bad(
            CHILD,
            true,
            vec![n(NotifyType::COOKIE)],
            Missing(PayloadType::SA),
        );
    }

    #[test]
    fn informational() {
        for resp in [false, true] {
            ok(INFO, resp, vec![]);
            ok(
                INFO,
                resp,
                vec![del(), del(), n(NotifyType::INITIAL_CONTACT), vid()],
            );
            ok(INFO, resp, vec![cp()]);
            ok(
                INFO,
                resp,
                vec![n(NotifyType::UPDATE_SA_ADDRESSES), unknown(false)],
            );
            bad(INFO, resp, vec![sa()], Forbidden(PayloadType::SA));
            bad(INFO, resp, vec![cp(), cp()], TooMany(PayloadType::CP));
        }
    }

    #[test]
    fn intermediate() {
        for resp in [false, true] {
            ok(INTER, resp, vec![ke()]);
            ok(INTER, resp, vec![]);
            bad(INTER, resp, vec![ke(), ke()], TooMany(PayloadType::KE));
            bad(INTER, resp, vec![nonce()], Forbidden(PayloadType::NONCE));
        }
    }

    #[test]
    fn delete_only_in_informational() {
        for ex in [INIT, AUTH, CHILD, INTER] {
            for resp in [false, true] {
                let r = check(ex, resp, &[del()]);
                assert_eq!(r, Err(Forbidden(PayloadType::DELETE)), "{ex}");
            }
        }
    }

    #[test]
    fn unknown_exchange_passes() {
        ok(ExchangeType(45), false, vec![sa(), sa(), del()]);
    }

    #[test]
    fn ike_followup_ke_carries_one_ke_each_way() {
        let fx = ExchangeType::IKE_FOLLOWUP_KE;
        for resp in [false, true] {
            ok(fx, resp, vec![ke(), n(NotifyType::ADDITIONAL_KEY_EXCHANGE)]);
            ok(fx, resp, vec![ke()]);
            bad(
                fx,
                resp,
                vec![n(NotifyType::ADDITIONAL_KEY_EXCHANGE)],
                Missing(P::KE),
            );
            bad(fx, resp, vec![ke(), ke()], TooMany(P::KE));
            bad(fx, resp, vec![ke(), sa()], Forbidden(P::SA));
        }
        ok(fx, true, vec![n(NotifyType::STATE_NOT_FOUND)]);
    }
}
