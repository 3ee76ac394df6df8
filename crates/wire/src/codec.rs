//! A borrowing reader and an appending writer with typed errors; every
//! multi-byte field is big-endian. Nothing here panics on short input.
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
        self.buf.len() - self.pos
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        todo!()
    }
    pub fn u8(&mut self) -> Result<u8, Error> {
        todo!()
    }
    pub fn u16(&mut self) -> Result<u16, Error> {
        todo!()
    }
    pub fn u32(&mut self) -> Result<u32, Error> {
        todo!()
    }
    pub fn u64(&mut self) -> Result<u64, Error> {
        todo!()
    }
    pub fn rest(&mut self) -> &'a [u8] {
        todo!()
    }
}
