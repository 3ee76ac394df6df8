//! ESP header view (RFC 4303 §2) and the UDP port 4500 demultiplexing of RFC 3948.

/// Length of SPI + sequence number.
pub const ESP_HEADER_LEN: usize = 8;

/// A checked view of the start of an ESP packet.
pub struct EspHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EspHeader<T> {
    /// Fails if the buffer is shorter than [`ESP_HEADER_LEN`].
    pub fn new_checked(buffer: T) -> Result<Self, crate::Error> {
        todo!()
    }
    pub fn spi(&self) -> u32 {
        todo!()
    }
    pub fn sequence(&self) -> u32 {
        todo!()
    }
}

/// What a UDP datagram received on port 4500 carries (RFC 3948 §2).
#[derive(Debug, PartialEq, Eq)]
pub enum Udp4500<'a> {
    /// A single 0xFF byte: NAT keepalive, to be dropped.
    Keepalive,
    /// IKE message after the four-zero-byte non-ESP marker (marker removed).
    Ike(&'a [u8]),
    /// An ESP packet (first four bytes are a non-zero SPI).
    Esp(&'a [u8]),
    /// Too short to be anything.
    Invalid,
}

/// Classifies a UDP 4500 payload.
pub fn classify_udp4500(payload: &[u8]) -> Udp4500<'_> {
    todo!()
}

/// The non-ESP marker that precedes IKE messages on port 4500.
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
