//! Helpers shared by the fuzz targets.
//!
//! Targets that feed a sequence of packets to stateful code (the ESP replay
//! window, the IKE engine) read their input as *records*:
//!
//! ```text
//! op (1 byte) ‖ length (2 bytes, big endian) ‖ data (length bytes)
//! ```
//!
//! A length running past the end of the input takes what is left, so every
//! byte string is a valid input and a mutation of one record's data does not
//! shift the records after it as long as the length field stays put. The
//! seed generator (`make_seeds.py`) writes the same framing.

/// One record: what to do (`op`) and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub op: u8,
    pub data: &'a [u8],
}

/// Splits fuzz input into [`Record`]s; see the crate documentation.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Records<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Records { rest: input }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        let (&op, rest) = self.rest.split_first()?;
        let (len, rest) = match rest {
            [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            _ => (rest.len(), &rest[rest.len()..]),
        };
        let (data, rest) = rest.split_at(len.min(rest.len()));
        self.rest = rest;
        Some(Record { op, data })
    }
}

/// Reads fixed-size fields from the front of a record's data, yielding zeros
/// once the data runs out (so short inputs still mean something).
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Fields { rest: data }
    }

    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.rest.len());
        out[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        out
    }

    pub fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.bytes())
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.bytes())
    }

    /// Whatever is left.
    pub fn rest(self) -> &'a [u8] {
        self.rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_and_tolerate_truncation() {
        let input = [1, 0, 2, 0xaa, 0xbb, 2, 0, 9, 0xcc, 3];
        let got: Vec<_> = Records::new(&input).collect();
        assert_eq!(
            got,
            [
                Record {
                    op: 1,
                    data: &[0xaa, 0xbb]
                },
                // The length runs past the end: what is left.
                Record {
                    op: 2,
                    data: &[0xcc, 3]
                },
            ]
        );
        // An op without a whole length field has no data.
        let got: Vec<_> = Records::new(&[7, 0]).collect();
        assert_eq!(got, [Record { op: 7, data: &[] }]);
    }

    #[test]
    fn fields_pad_with_zeros() {
        let mut f = Fields::new(&[1, 2, 3]);
        assert_eq!(f.u8(), 1);
        assert_eq!(f.u32(), 0x0203_0000);
        assert_eq!(f.u64(), 0);
        assert!(f.rest().is_empty());
    }
}
