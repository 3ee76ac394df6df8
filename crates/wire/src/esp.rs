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
        if buffer.as_ref().len() < ESP_HEADER_LEN {
            return Err(crate::Error::Truncated);
        }
        Ok(EspHeader { buffer })
    }
    /// Reads a big-endian u32 at `at`; the zero fallback only guards against
    /// an `AsRef` impl that shrinks after `new_checked`.
    fn be32(&self, at: usize) -> u32 {
        let mut b = [0u8; 4];
        if let Some(src) = self.buffer.as_ref().get(at..at + 4) {
            b.copy_from_slice(src);
        }
        u32::from_be_bytes(b)
    }
    pub fn spi(&self) -> u32 {
        self.be32(0)
    }
    /// The low 32 bits of the sequence number (the high half of an ESN is
    /// never sent).
    pub fn sequence(&self) -> u32 {
        self.be32(4)
    }
    /// Everything after SPI and sequence number: IV, ciphertext, ICV.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(ESP_HEADER_LEN..).unwrap_or(&[])
    }
    pub fn into_inner(self) -> T {
        self.buffer
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
///
/// A single 0xFF byte is a NAT keepalive; four zero bytes (the non-ESP marker)
/// introduce an IKE message; otherwise the first four bytes are an ESP SPI,
/// which is never zero, and an ESP packet has at least SPI and sequence number.
pub fn classify_udp4500(payload: &[u8]) -> Udp4500<'_> {
    match payload {
        [0xff] => Udp4500::Keepalive,
        [0, 0, 0, 0, rest @ ..] => Udp4500::Ike(rest),
        _ if payload.len() >= ESP_HEADER_LEN => Udp4500::Esp(payload),
        _ => Udp4500::Invalid,
    }
}

/// The non-ESP marker that precedes IKE messages on port 4500.
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn esp_header_fields() {
        let pkt = [0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 7, 0xaa];
        let h = EspHeader::new_checked(&pkt[..]).unwrap();
        assert_eq!(h.spi(), 0xdead_beef);
        assert_eq!(h.sequence(), 7);
        assert_eq!(h.payload(), &[0xaa]);
        for n in 0..ESP_HEADER_LEN {
            assert_eq!(
                EspHeader::new_checked(&pkt[..n]).err(),
                Some(crate::Error::Truncated)
            );
        }
    }

    #[test]
    fn classifies_udp4500() {
        assert_eq!(classify_udp4500(&[0xff]), Udp4500::Keepalive);
        assert_eq!(classify_udp4500(&[0, 0, 0, 0]), Udp4500::Ike(&[]));
        assert_eq!(classify_udp4500(&[0, 0, 0, 0, 1, 2]), Udp4500::Ike(&[1, 2]));
        let esp = [0, 0, 1, 0, 0, 0, 0, 1];
        assert_eq!(classify_udp4500(&esp), Udp4500::Esp(&esp));
        assert_eq!(classify_udp4500(&esp[..7]), Udp4500::Invalid);
        assert_eq!(classify_udp4500(&[]), Udp4500::Invalid);
        assert_eq!(classify_udp4500(&[0xff, 0xff]), Udp4500::Invalid);
        assert_eq!(classify_udp4500(&[0, 0, 0]), Udp4500::Invalid);
        assert_eq!(classify_udp4500(&[0]), Udp4500::Invalid);
    }

    proptest! {
        #[test]
        fn classify_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            match classify_udp4500(&bytes) {
                Udp4500::Esp(p) => {
                    let h = EspHeader::new_checked(p).unwrap();
                    prop_assert_ne!(h.spi(), 0);
                }
                Udp4500::Ike(rest) => prop_assert_eq!(rest.len() + 4, bytes.len()),
                Udp4500::Keepalive => prop_assert_eq!(&bytes[..], &[0xff][..]),
                Udp4500::Invalid => prop_assert!(bytes.len() < 8),
            }
        }
    }
}
