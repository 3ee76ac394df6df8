//! Whole IKE messages: header plus a chain of payloads.
use alloc::vec::Vec;

use crate::{Error, HeaderRepr, Payload, PayloadType};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: HeaderRepr,
    /// In wire order. An `Sk` or `Skf` payload, if any, is last.
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Parses a datagram (without the non-ESP marker). Bytes after the length
    /// given in the header are an error, as is any payload after SK/SKF.
    pub fn parse(bytes: &[u8]) -> Result<Message, Error> {
        todo!()
    }

    /// Serialises the message, setting the header's next-payload and length
    /// fields and every payload's next-payload and length field.
    pub fn emit(&self) -> Vec<u8> {
        todo!()
    }

    /// Offset in [`Message::emit`]'s output where the body of the trailing SK or
    /// SKF payload starts (after its generic header, and for SKF after the
    /// fragment number fields): everything before it is the AEAD associated data.
    /// `None` if the message has no SK/SKF payload.
    pub fn encrypted_body_offset(&self) -> Option<usize> {
        todo!()
    }
}

/// Parses a chain of payloads that starts with a payload of type `first`, as
/// found inside a decrypted SK payload.
pub fn parse_payloads(first: PayloadType, bytes: &[u8]) -> Result<Vec<Payload>, Error> {
    todo!()
}

/// Appends the chain of payloads to `out` and returns the type of the first one
/// ([`PayloadType::NONE`] when empty), for the enclosing SK payload's header.
pub fn emit_payloads(payloads: &[Payload], out: &mut Vec<u8>) -> PayloadType {
    todo!()
}
