/// Key material: zeroized on drop, redacted in `Debug`, compared in constant time.
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
    /// Splits off the first `n` bytes (for carving SK_* out of prf+ output).
    /// Panics if `n > len`; callers size the prf+ output from the same numbers.
    pub fn split_to(&mut self, n: usize) -> Secret {
        todo!()
    }
}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Secret([REDACTED; {}])", self.0.len())
    }
}
