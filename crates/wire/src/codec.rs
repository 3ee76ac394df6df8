//! A borrowing reader and an appending writer with typed errors; every
//! multi-byte field is big-endian. Nothing here panics on short input.
use alloc::vec::Vec;

use crate::Error;

/// Reads fields from a byte slice, failing with [`Error::Truncated`] instead of
/// panicking when the slice is too short.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    /// Borrows the next `n` bytes. On failure nothing is consumed.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated)?;
        let out = self.buf.get(self.pos..end).ok_or(Error::Truncated)?;
        self.pos = end;
        Ok(out)
    }
    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(u8::from_be_bytes(self.array()?))
    }
    pub fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    /// Skips `n` reserved bytes (whose value RFC 7296 says to ignore).
    pub fn skip(&mut self, n: usize) -> Result<(), Error> {
        self.take(n).map(|_| ())
    }
    /// Everything not yet read; the reader is empty afterwards.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        out
    }
    /// Reads a sub-structure whose total length (`len`, including the `header`
    /// bytes already consumed by the caller) comes from a length field: the
    /// body must lie within the data still present, otherwise the length field
    /// is inconsistent ([`Error::BadLength`]).
    pub fn take_length_prefixed(&mut self, len: usize, header: usize) -> Result<&'a [u8], Error> {
        let body = len.checked_sub(header).ok_or(Error::BadLength)?;
        self.take(body).map_err(|_| Error::BadLength)
    }
}

/// Appends big-endian fields to a `Vec<u8>` and back-patches length fields.
///
/// Length fields are written as placeholders with [`Writer::placeholder_u16`]
/// and filled in by [`Writer::patch_len_u16`] once the structure is complete,
/// so no caller has to compute a length up front.
pub struct Writer<'a> {
    buf: &'a mut Vec<u8>,
}

/// Position of a length placeholder written by [`Writer::placeholder_u16`].
#[derive(Debug, Clone, Copy)]
pub struct LenSlot(usize);

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        Writer { buf }
    }
    /// Bytes written to the underlying vector so far (including what was there
    /// before this writer was created).
    pub fn position(&self) -> usize {
        self.buf.len()
    }
    /// The underlying vector, for body emitters that append to a `Vec<u8>`.
    pub fn vec(&mut self) -> &mut Vec<u8> {
        self.buf
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    /// Writes `n` zero bytes (RESERVED fields).
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }
    /// Writes a zero u16 to be patched later.
    pub fn placeholder_u16(&mut self) -> LenSlot {
        let slot = LenSlot(self.buf.len());
        self.u16(0);
        slot
    }
    /// Sets the u16 at `slot` to the number of bytes written since `start`.
    ///
    /// A structure longer than 65535 bytes cannot be encoded: that is a bug in
    /// the caller (no IKE payload can be that long in a UDP datagram), caught by
    /// a debug assertion; release builds write the length modulo 2^16.
    pub fn patch_len_u16(&mut self, slot: LenSlot, start: usize) {
        let len = self.buf.len().saturating_sub(start);
        debug_assert!(len <= usize::from(u16::MAX), "structure too long: {len}");
        if let Some(dst) = self.buf.get_mut(slot.0..slot.0 + 2) {
            dst.copy_from_slice(&(len as u16).to_be_bytes());
        }
    }
}

/// Converts a length to the u8 count field of a structure (number of
/// transforms, of traffic selectors, SPI size). Exceeding 255 is a caller bug,
/// caught in debug builds like [`Writer::patch_len_u16`].
pub(crate) fn count_u8(n: usize) -> u8 {
    debug_assert!(n <= usize::from(u8::MAX), "count too large: {n}");
    n as u8
}

/// As [`count_u8`] for u16 fields.
pub(crate) fn count_u16(n: usize) -> u16 {
    debug_assert!(n <= usize::from(u16::MAX), "count too large: {n}");
    n as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_fields() {
        let data = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
        let mut r = Reader::new(&data);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u32(), Ok(0x0405_0607));
        assert_eq!(r.u64(), Ok(0x0809_0a0b_0c0d_0e0f));
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.u8(), Err(Error::Truncated));
        assert_eq!(r.rest(), &[] as &[u8]);
    }

    #[test]
    fn short_reads_fail_without_consuming() {
        let data = [1, 2, 3];
        let mut r = Reader::new(&data);
        assert_eq!(r.u32(), Err(Error::Truncated));
        assert_eq!(r.take(usize::MAX), Err(Error::Truncated));
        assert_eq!(r.remaining(), 3);
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(r.rest(), &[3]);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn length_prefixed_checks_both_ends() {
        let data = [0u8; 6];
        let mut r = Reader::new(&data);
        assert_eq!(r.take_length_prefixed(3, 4), Err(Error::BadLength));
        assert_eq!(r.take_length_prefixed(11, 4), Err(Error::BadLength));
        assert_eq!(r.take_length_prefixed(10, 4).map(<[u8]>::len), Ok(6));
    }

    #[test]
    fn writer_patches_lengths() {
        let mut v = alloc::vec![0xAA];
        let mut w = Writer::new(&mut v);
        let start = w.position();
        let slot = w.placeholder_u16();
        w.u8(1);
        w.u16(0x0203);
        w.u32(0x0405_0607);
        w.u64(1);
        w.zeros(2);
        w.bytes(&[9]);
        w.patch_len_u16(slot, start);
        assert_eq!(
            v,
            [
                0xAA, 0, 20, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 9
            ]
        );
    }
}
