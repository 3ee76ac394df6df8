//! Wire formats of IKEv2 (RFC 7296) and ESP (RFC 4303, RFC 3948).
//!
//! This crate holds no state and does no cryptography. Fixed headers are
//! zero-copy views validated once by `new_checked`, so their accessors cannot
//! panic afterwards; payload bodies go through a borrowing [`codec::Reader`] and
//! an appending writer and come out as owned `*Payload` structs. Every parse
//! error is a typed [`Error`] that tells the IKE engine which notify (if any) to
//! answer with. Lengths read from the network are checked against the bytes
//! actually present before anything is allocated.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod codec;
pub mod esp;
pub mod header;
pub mod message;
pub mod numbers;
pub mod payload;
pub mod rules;
#[cfg(test)]
mod strategies;

pub use header::{Flags, HEADER_LEN, Header, HeaderRepr};
pub use message::{Message, emit_payloads, parse_payloads};
pub use numbers::*;
pub use payload::*;

/// Why a message could not be parsed. Each variant maps to the notify that
/// RFC 7296 asks a responder to send (see [`Error::notify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than a header or a length field requires.
    Truncated,
    /// A length field disagrees with the data around it.
    BadLength,
    /// The major version is not 2 (answer INVALID_MAJOR_VERSION).
    UnsupportedVersion(u8),
    /// A payload the parser does not know has its critical bit set.
    UnsupportedCriticalPayload(PayloadType),
    /// Structurally invalid content, with a short static reason for debug logs.
    InvalidSyntax(&'static str),
}

impl Error {
    /// The notify type a responder answers with for this error, if any.
    pub fn notify(&self) -> Option<NotifyType> {
        match self {
            Error::UnsupportedVersion(_) => Some(NotifyType::INVALID_MAJOR_VERSION),
            Error::UnsupportedCriticalPayload(_) => Some(NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD),
            Error::Truncated | Error::BadLength | Error::InvalidSyntax(_) => {
                Some(NotifyType::INVALID_SYNTAX)
            }
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Truncated => f.write_str("truncated"),
            Error::BadLength => f.write_str("length field inconsistent"),
            Error::UnsupportedVersion(v) => write!(f, "unsupported major version {v}"),
            Error::UnsupportedCriticalPayload(t) => write!(f, "unsupported critical payload {t}"),
            Error::InvalidSyntax(why) => write!(f, "invalid syntax: {why}"),
        }
    }
}

impl core::error::Error for Error {}
