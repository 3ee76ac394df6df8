//! Which payloads each exchange's request and response must, may and must not
//! carry (RFC 7296 §1.2–§1.5, §2.x). Checked by the engine on the decrypted
//! payload list so that each exchange handler can rely on what is present.
use crate::{ExchangeType, Payload, PayloadType};

/// A violated payload rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleViolation {
    Missing(PayloadType),
    Forbidden(PayloadType),
    TooMany(PayloadType),
}

/// Checks the (decrypted, for protected exchanges) payloads of a message.
/// Notify, Vendor ID and unknown non-critical payloads are allowed everywhere.
/// Error responses (a response carrying an error notify) are exempt from the
/// "must" rules, since a peer that refuses sends only the notify.
pub fn check(
    exchange: ExchangeType,
    is_response: bool,
    payloads: &[Payload],
) -> Result<(), RuleViolation> {
    todo!()
}
