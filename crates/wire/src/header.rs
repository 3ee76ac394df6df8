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

/// Byte offsets of the header fields.
mod field {
    use core::ops::Range;
    pub const SPI_I: Range<usize> = 0..8;
    pub const SPI_R: Range<usize> = 8..16;
    pub const NEXT_PAYLOAD: usize = 16;
    pub const VERSION: usize = 17;
    pub const EXCHANGE: usize = 18;
    pub const FLAGS: usize = 19;
    pub const MESSAGE_ID: Range<usize> = 20..24;
    pub const LENGTH: Range<usize> = 24..28;
}

/// Copies `range` out of `buf`. `new_checked` guarantees the range exists; the
/// zero fallback only keeps the accessors panic-free even for an `AsRef` impl
/// that returns a different slice on every call.
fn read<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = at.checked_add(N).and_then(|end| buf.get(at..end)) {
        out.copy_from_slice(src);
    }
    out
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Checks that the buffer holds a full header whose length field is at least
    /// [`HEADER_LEN`] and at most the buffer length; the major version is checked
    /// by [`HeaderRepr::parse`], so a version-5 header is still readable (to
    /// answer INVALID_MAJOR_VERSION).
    ///
    /// Fails with [`Error::Truncated`] below 28 bytes and with
    /// [`Error::BadLength`] when the length field is out of range.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let buf = buffer.as_ref();
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = u32::from_be_bytes(read(buf, field::LENGTH.start));
        let len = usize::try_from(len).map_err(|_| Error::BadLength)?;
        if len < HEADER_LEN || len > buf.len() {
            return Err(Error::BadLength);
        }
        Ok(Header { buffer })
    }
    fn byte(&self, at: usize) -> u8 {
        read::<1>(self.buffer.as_ref(), at)[0]
    }
    pub fn spi_i(&self) -> u64 {
        u64::from_be_bytes(read(self.buffer.as_ref(), field::SPI_I.start))
    }
    pub fn spi_r(&self) -> u64 {
        u64::from_be_bytes(read(self.buffer.as_ref(), field::SPI_R.start))
    }
    pub fn next_payload(&self) -> PayloadType {
        PayloadType(self.byte(field::NEXT_PAYLOAD))
    }
    pub fn major_version(&self) -> u8 {
        self.byte(field::VERSION) >> 4
    }
    pub fn minor_version(&self) -> u8 {
        self.byte(field::VERSION) & 0x0f
    }
    pub fn exchange_type(&self) -> ExchangeType {
        ExchangeType(self.byte(field::EXCHANGE))
    }
    pub fn flags(&self) -> Flags {
        Flags(self.byte(field::FLAGS))
    }
    pub fn message_id(&self) -> u32 {
        u32::from_be_bytes(read(self.buffer.as_ref(), field::MESSAGE_ID.start))
    }
    pub fn length(&self) -> u32 {
        u32::from_be_bytes(read(self.buffer.as_ref(), field::LENGTH.start))
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
    /// The minor version is kept as received (RFC 7296 §2.5: ignore it).
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> Result<Self, Error> {
        if h.major_version() != 2 {
            return Err(Error::UnsupportedVersion(h.major_version()));
        }
        Ok(HeaderRepr {
            spi_i: h.spi_i(),
            spi_r: h.spi_r(),
            next_payload: h.next_payload(),
            version: h.byte(field::VERSION),
            exchange: h.exchange_type(),
            flags: h.flags(),
            message_id: h.message_id(),
            length: h.length(),
        })
    }
    /// Writes the 28 header bytes to `out` (which must be at least that long;
    /// a shorter buffer is a caller bug: debug builds assert, release builds
    /// leave it untouched).
    pub fn emit(&self, out: &mut [u8]) {
        debug_assert!(out.len() >= HEADER_LEN, "header buffer too short");
        let Some(out) = out.get_mut(..HEADER_LEN) else {
            return;
        };
        out[field::SPI_I].copy_from_slice(&self.spi_i.to_be_bytes());
        out[field::SPI_R].copy_from_slice(&self.spi_r.to_be_bytes());
        out[field::NEXT_PAYLOAD] = self.next_payload.0;
        out[field::VERSION] = self.version;
        out[field::EXCHANGE] = self.exchange.0;
        out[field::FLAGS] = self.flags.0;
        out[field::MESSAGE_ID].copy_from_slice(&self.message_id.to_be_bytes());
        out[field::LENGTH].copy_from_slice(&self.length.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> HeaderRepr {
        HeaderRepr {
            spi_i: 0x0102_0304_0506_0708,
            spi_r: 0x1112_1314_1516_1718,
            next_payload: PayloadType::SK,
            version: 0x20,
            exchange: ExchangeType::IKE_AUTH,
            flags: Flags(Flags::INITIATOR),
            message_id: 1,
            length: 28,
        }
    }

    #[test]
    fn emit_then_view() {
        let mut buf = [0u8; HEADER_LEN];
        sample().emit(&mut buf);
        assert_eq!(
            buf,
            [
                1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 46, 0x20,
                35, 0x08, 0, 0, 0, 1, 0, 0, 0, 28
            ]
        );
        let h = Header::new_checked(&buf[..]).unwrap();
        assert_eq!(h.spi_i(), 0x0102_0304_0506_0708);
        assert_eq!(h.spi_r(), 0x1112_1314_1516_1718);
        assert_eq!(h.next_payload(), PayloadType::SK);
        assert_eq!(h.major_version(), 2);
        assert_eq!(h.minor_version(), 0);
        assert_eq!(h.exchange_type(), ExchangeType::IKE_AUTH);
        assert!(h.flags().initiator());
        assert!(!h.flags().response());
        assert_eq!(h.message_id(), 1);
        assert_eq!(h.length(), 28);
        assert_eq!(HeaderRepr::parse(&h), Ok(sample()));
    }

    #[test]
    fn rejects_short_buffer() {
        let mut buf = [0u8; HEADER_LEN];
        sample().emit(&mut buf);
        for n in 0..HEADER_LEN {
            assert_eq!(Header::new_checked(&buf[..n]).err(), Some(Error::Truncated));
        }
    }

    #[test]
    fn rejects_length_field_out_of_range() {
        let mut buf = [0u8; 40];
        let mut h = sample();
        for bad in [0, 27, 41, u32::MAX] {
            h.length = bad;
            h.emit(&mut buf);
            assert_eq!(Header::new_checked(&buf[..]).err(), Some(Error::BadLength));
        }
        h.length = 40;
        h.emit(&mut buf);
        assert!(Header::new_checked(&buf[..]).is_ok());
    }

    #[test]
    fn rejects_major_version_but_view_still_readable() {
        let mut buf = [0u8; HEADER_LEN];
        let mut h = sample();
        h.version = 0x51;
        h.emit(&mut buf);
        let v = Header::new_checked(&buf[..]).unwrap();
        assert_eq!(v.major_version(), 5);
        assert_eq!(v.minor_version(), 1);
        assert_eq!(v.spi_i(), h.spi_i);
        assert_eq!(HeaderRepr::parse(&v), Err(Error::UnsupportedVersion(5)));
    }

    #[test]
    fn accepts_minor_version() {
        let mut buf = [0u8; HEADER_LEN];
        let mut h = sample();
        h.version = 0x2f;
        h.emit(&mut buf);
        let v = Header::new_checked(&buf[..]).unwrap();
        assert_eq!(HeaderRepr::parse(&v), Ok(h));
    }

    proptest! {
        #[test]
        fn header_round_trip(spi_i: u64, spi_r: u64, np: u8, minor in 0u8..16, ex: u8, flags: u8,
                             mid: u32, extra in 0usize..8) {
            let h = HeaderRepr {
                spi_i, spi_r, next_payload: PayloadType(np), version: 0x20 | minor,
                exchange: ExchangeType(ex), flags: Flags(flags), message_id: mid,
                length: (HEADER_LEN + extra) as u32,
            };
            let mut buf = std::vec![0u8; HEADER_LEN + extra];
            h.emit(&mut buf);
            let v = Header::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(HeaderRepr::parse(&v), Ok(h));
        }

        #[test]
        fn header_view_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(h) = Header::new_checked(&bytes[..]) {
                let _ = (h.spi_i(), h.spi_r(), h.next_payload(), h.exchange_type(), h.flags());
                let _ = (h.message_id(), h.length(), h.minor_version());
                let _ = HeaderRepr::parse(&h);
            }
        }
    }
}
