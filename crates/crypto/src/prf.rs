//! Pseudorandom functions (transform type 2) and prf+ (RFC 7296 §2.13).
use oxisec_wire::TransformId;

use crate::Secret;

/// A negotiated PRF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prf {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Prf {
    /// The PRF for a transform ID, `None` if not implemented.
    pub fn from_id(id: TransformId) -> Option<Prf> {
        todo!()
    }
    pub fn id(self) -> TransformId {
        todo!()
    }
    /// Output length in bytes; also the preferred key length (RFC 7296 §2.13).
    pub fn output_len(self) -> usize {
        todo!()
    }
    /// prf(key, data) over the concatenation of `data` parts.
    pub fn compute(self, key: &[u8], data: &[&[u8]]) -> Secret {
        todo!()
    }
    /// prf+(key, seed) truncated to `len` bytes.
    pub fn prf_plus(self, key: &[u8], seed: &[&[u8]], len: usize) -> Secret {
        todo!()
    }
}
