//! A minimal, strict DER reader and writer for the few small structures this
//! crate handles itself (AlgorithmIdentifiers, ECDSA-Sig-Value, SPKI,
//! RSAPrivateKey, PrivateKeyInfo headers, the outer CertificateList).
//!
//! Certificates and CRLs as a whole go through x509-parser and webpki; this
//! reader exists so that the hot, security-relevant pieces we interpret
//! (signature algorithm parameters, signature encodings) are parsed by code
//! whose every branch we test. It never allocates from a length field: a
//! length is only ever used to slice the input it was read from.

/// DER tags used here (universal class, low tag numbers only).
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const NULL: u8 = 0x05;
pub(crate) const OID: u8 = 0x06;
pub(crate) const SEQUENCE: u8 = 0x30;

/// Context-specific constructed tag `[n]`.
pub(crate) const fn context(n: u8) -> u8 {
    0xa0 | n
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DerError;

/// Reads consecutive TLVs from a slice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// Reads one TLV: (tag, value, whole encoding).
    pub(crate) fn read_any(&mut self) -> Result<(u8, &'a [u8], &'a [u8]), DerError> {
        let data = self.data;
        let (&tag, rest) = data.split_first().ok_or(DerError)?;
        // High tag numbers (0x1f) never occur in what we parse.
        if tag & 0x1f == 0x1f {
            return Err(DerError);
        }
        let (&first, rest) = rest.split_first().ok_or(DerError)?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            // 0x80 is BER's indefinite form; more than 4 length bytes is absurd here.
            if n == 0 || n > 4 || rest.len() < n {
                return Err(DerError);
            }
            let (len_bytes, rest) = rest.split_at(n);
            if len_bytes[0] == 0 {
                return Err(DerError); // not minimal
            }
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len < 0x80 {
                return Err(DerError); // long form for a short length
            }
            (len, rest)
        };
        if rest.len() < len {
            return Err(DerError);
        }
        let (value, rest) = rest.split_at(len);
        let whole = &data[..data.len() - rest.len()];
        self.data = rest;
        Ok((tag, value, whole))
    }

    /// Reads one TLV that must carry `tag`, returning its value.
    pub(crate) fn read(&mut self, tag: u8) -> Result<&'a [u8], DerError> {
        match self.read_any()? {
            (t, value, _) if t == tag => Ok(value),
            _ => Err(DerError),
        }
    }

    /// Reads an optional TLV with `tag`.
    pub(crate) fn read_optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read(tag).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Reads a non-negative INTEGER and returns its magnitude without the
    /// sign-padding zero byte. Rejects negative and non-minimal encodings.
    pub(crate) fn read_unsigned(&mut self) -> Result<&'a [u8], DerError> {
        unsigned_integer(self.read(INTEGER)?)
    }

    /// Reads a small non-negative INTEGER.
    pub(crate) fn read_small_uint(&mut self) -> Result<u64, DerError> {
        let mag = self.read_unsigned()?;
        if mag.len() > 8 {
            return Err(DerError);
        }
        Ok(mag.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// Requires that nothing follows.
    pub(crate) fn finish(&self) -> Result<(), DerError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(DerError)
        }
    }
}

/// Parses `data` as exactly one TLV with `tag` and returns its value.
pub(crate) fn single(data: &[u8], tag: u8) -> Result<&[u8], DerError> {
    let mut r = Reader::new(data);
    let value = r.read(tag)?;
    r.finish()?;
    Ok(value)
}

/// The magnitude of a DER INTEGER's content (sign byte stripped); rejects
/// empty, negative and non-minimal encodings.
pub(crate) fn unsigned_integer(content: &[u8]) -> Result<&[u8], DerError> {
    match content {
        [] => Err(DerError),
        [b, ..] if b & 0x80 != 0 => Err(DerError),
        [0] => Ok(&content[1..]),
        [0, b, ..] if b & 0x80 == 0 => Err(DerError),
        [0, rest @ ..] => Ok(rest),
        _ => Ok(content),
    }
}

/// Appends a TLV to `out`.
pub(crate) fn write_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
}

/// One TLV as a fresh vector.
pub(crate) fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    write_tlv(&mut out, tag, value);
    out
}

/// A non-negative INTEGER from a big-endian magnitude (leading zeros
/// trimmed, sign byte added where needed).
pub(crate) fn write_unsigned(out: &mut Vec<u8>, magnitude: &[u8]) {
    let trimmed = {
        let skip = magnitude.iter().take_while(|&&b| b == 0).count();
        &magnitude[skip..]
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    write_tlv(out, INTEGER, &content);
}

/// Decodes OID content octets into arcs, for messages ("1.3.6.1.5.5.7.3.17").
pub(crate) fn oid_to_string(content: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in content {
        if acc > (u64::MAX >> 7) {
            return format!("<bad OID {}>", hex_upper(content));
        }
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let (first, second) = match acc {
                    0..=39 => (0, acc),
                    40..=79 => (1, acc - 40),
                    _ => (2, acc - 80),
                };
                arcs.push(first);
                arcs.push(second);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    if content.is_empty() || content.last().is_some_and(|b| b & 0x80 != 0) {
        return format!("<bad OID {}>", hex_upper(content));
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    use core::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut r = Reader::new(&[0x04, 0x02, 0xaa, 0xbb, 0x05, 0x00]);
        assert_eq!(r.read(OCTET_STRING).unwrap(), &[0xaa, 0xbb]);
        assert_eq!(r.read(NULL).unwrap(), &[] as &[u8]);
        r.finish().unwrap();

        let mut long = vec![0x04, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7u8, 0x80));
        let (tag, value, whole) = Reader::new(&long).read_any().unwrap();
        assert_eq!((tag, value.len(), whole.len()), (0x04, 0x80, 0x83));
    }

    #[test]
    fn rejects_bad_lengths() {
        for bad in [
            &[0x04u8, 0x80][..],                // indefinite
            &[0x04, 0x81, 0x05, 1, 2, 3, 4, 5], // long form for short length
            &[0x04, 0x82, 0x00, 0x80],          // leading zero
            &[0x04, 0x85, 1, 1, 1, 1, 1],       // too many length bytes
            &[0x04, 0x03, 1, 2],                // truncated
            &[0x1f, 0x01, 0x00],                // high tag number
            &[0x04],                            // no length
        ] {
            assert!(Reader::new(bad).read_any().is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn integers() {
        assert_eq!(unsigned_integer(&[0x00, 0x80]).unwrap(), &[0x80]);
        assert_eq!(unsigned_integer(&[0x7f]).unwrap(), &[0x7f]);
        assert_eq!(unsigned_integer(&[0x00]).unwrap(), &[] as &[u8]);
        assert!(unsigned_integer(&[0x80]).is_err());
        assert!(unsigned_integer(&[0x00, 0x01]).is_err());
        assert!(unsigned_integer(&[]).is_err());
        let mut out = Vec::new();
        write_unsigned(&mut out, &[0x00, 0x00, 0x80, 0x01]);
        assert_eq!(out, [0x02, 0x03, 0x00, 0x80, 0x01]);
        out.clear();
        write_unsigned(&mut out, &[]);
        assert_eq!(out, [0x02, 0x01, 0x00]);
    }

    #[test]
    fn writes_long_lengths() {
        let v = vec![0u8; 300];
        let enc = tlv(OCTET_STRING, &v);
        assert_eq!(&enc[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(single(&enc, OCTET_STRING).unwrap().len(), 300);
    }

    #[test]
    fn oid_text() {
        assert_eq!(
            oid_to_string(&[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x11]),
            "1.3.6.1.5.5.7.3.17"
        );
        assert_eq!(
            oid_to_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]),
            "1.2.840.113549.1.1.11"
        );
        assert!(oid_to_string(&[0x2a, 0x86]).starts_with("<bad"));
    }
}
