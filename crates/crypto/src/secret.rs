use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Key material: zeroized on drop, redacted in `Debug`, compared in constant time.
///
/// The bytes live in one heap allocation that is never grown after
/// construction (no method pushes or extends), so no stale copies are left
/// behind by a reallocation; on drop the whole allocation, spare capacity
/// included, is overwritten.
#[derive(Clone, Default)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }
    pub fn from_slice(bytes: &[u8]) -> Self {
        Secret(bytes.to_vec())
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// In-place access for filling a freshly allocated secret (so key bytes
    /// never exist outside the zeroizing wrapper). Cannot change the length.
    pub(crate) fn as_mut_bytes(&mut self) -> &mut [u8] {
        &mut self.0
    }
    /// Splits off the first `n` bytes (for carving SK_* out of prf+ output).
    /// Panics if `n > len`; callers size the prf+ output from the same numbers.
    pub fn split_to(&mut self, n: usize) -> Secret {
        assert!(
            n <= self.0.len(),
            "Secret::split_to({n}) on a secret of {} bytes",
            self.0.len()
        );
        let head = Secret(self.0[..n].to_vec());
        let rest = self.0.len() - n;
        self.0.copy_within(n.., 0);
        // The tail that `truncate` gives up would otherwise keep a copy of the
        // last `n` key bytes in spare capacity until drop.
        self.0[rest..].zeroize();
        self.0.truncate(rest);
        head
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // `Vec<u8>::zeroize` also wipes the spare capacity beyond `len`.
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for Secret {}

/// Constant time in the contents; the lengths are not secret (they follow
/// from the negotiated algorithms) and a length mismatch returns early.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Secret {}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Secret([REDACTED; {}])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_to_carves_prefix_and_keeps_rest() {
        let mut s = Secret::from_slice(&[1, 2, 3, 4, 5]);
        let head = s.split_to(2);
        assert_eq!(head.as_bytes(), &[1, 2]);
        assert_eq!(s.as_bytes(), &[3, 4, 5]);
        let all = s.split_to(3);
        assert_eq!(all.as_bytes(), &[3, 4, 5]);
        assert!(s.is_empty());
        assert!(s.split_to(0).is_empty());
    }

    #[test]
    #[should_panic(expected = "split_to(3)")]
    fn split_to_past_end_panics() {
        Secret::from_slice(&[1, 2]).split_to(3);
    }

    #[test]
    fn equality_is_by_content_and_length() {
        assert_eq!(Secret::from_slice(b"abc"), Secret::new(b"abc".to_vec()));
        assert_ne!(Secret::from_slice(b"abc"), Secret::from_slice(b"abd"));
        assert_ne!(Secret::from_slice(b"abc"), Secret::from_slice(b"ab"));
        assert_eq!(Secret::default(), Secret::from_slice(&[]));
    }

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let shown = format!("{s:?} {s:#?}").to_lowercase();
        for leak in ["dead", "beef", "222", "173", "190", "239"] {
            assert!(!shown.contains(leak), "{shown}");
        }
        assert_eq!(format!("{s:?}"), "Secret([REDACTED; 4])");
    }
}
