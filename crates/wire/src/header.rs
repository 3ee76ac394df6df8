//! The fixed 28-byte IKE header (RFC 7296 §3.1).
use crate::{Error, ExchangeType, PayloadType};

pub const HEADER_LEN: usize = 28;

/// Header flag bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Flags(pub u8);

impl Flags {
    pub const INITIATOR: u8 = 0x08;
    pub const VERSION: u8 = 0x10;
    pub const RESPONSE: u8 = 0x20;
    pub fn initiator(self) -> bool {
        self.0 & Self::INITIATOR != 0
    }
    pub fn response(self) -> bool {
        self.0 & Self::RESPONSE != 0
    }
}

/// A checked, zero-copy view of an IKE header at the start of a buffer.
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Checks that the buffer holds a full header whose length field is at least
    /// [`HEADER_LEN`] and at most the buffer length; the major version is checked
    /// by [`HeaderRepr::parse`], so a version-5 header is still readable (to
    /// answer INVALID_MAJOR_VERSION).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        todo!()
    }
    pub fn spi_i(&self) -> u64 {
        todo!()
    }
    pub fn spi_r(&self) -> u64 {
        todo!()
    }
    pub fn next_payload(&self) -> PayloadType {
        todo!()
    }
    pub fn major_version(&self) -> u8 {
        todo!()
    }
    pub fn minor_version(&self) -> u8 {
        todo!()
    }
    pub fn exchange_type(&self) -> ExchangeType {
        todo!()
    }
    pub fn flags(&self) -> Flags {
        todo!()
    }
    pub fn message_id(&self) -> u32 {
        todo!()
    }
    pub fn length(&self) -> u32 {
        todo!()
    }
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

/// The header as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRepr {
    pub spi_i: u64,
    pub spi_r: u64,
    pub next_payload: PayloadType,
    /// Major version in the high nibble, minor in the low one: 0x20 for IKEv2.
    pub version: u8,
    pub exchange: ExchangeType,
    pub flags: Flags,
    pub message_id: u32,
    /// Total message length. [`crate::Message::emit`] rewrites it.
    pub length: u32,
}

impl HeaderRepr {
    /// Reads the header; fails with [`Error::UnsupportedVersion`] if the major
    /// version is not 2.
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> Result<Self, Error> {
        todo!()
    }
    /// Writes the 28 header bytes to `out` (which must be at least that long).
    pub fn emit(&self, out: &mut [u8]) {
        todo!()
    }
}
