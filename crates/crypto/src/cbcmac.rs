//! The AES CBC-MAC family of IPsec: AES-XCBC-MAC (RFC 3566) and AES-CMAC
//! (RFC 4493, NIST SP 800-38B), for AUTH_AES_XCBC_96, AUTH_AES_CMAC_96,
//! PRF_AES128_XCBC (RFC 4434) and PRF_AES128_CMAC (RFC 4615).
//!
//! Both are a CBC-MAC over AES-128 whose last block is masked with one of two
//! subkeys, chosen by whether the last block is complete (XOR `complete`) or
//! was padded with `10*` (XOR `partial`):
//!
//! | | block cipher key | `complete` | `partial` |
//! |---|---|---|---|
//! | XCBC | K1 = E_K(0x01¹⁶) | K2 = E_K(0x02¹⁶) | K3 = E_K(0x03¹⁶) |
//! | CMAC | K | dbl(E_K(0¹²⁸)) | dbl(dbl(E_K(0¹²⁸))) |
//!
//! Neither aws-lc-rs nor RustCrypto offers XCBC. aws-lc-rs has CMAC, but its
//! context clones a C `CMAC_CTX` (a heap allocation) for every message, which
//! the allocation-free ESP path cannot take; so both are written here over
//! RustCrypto's `aes` block cipher (constant time, AES-NI when the CPU has
//! it, key schedule zeroized on drop). Only the mode is ours; the tests check
//! it against RFC 3566, RFC 4434, RFC 4493 and RFC 4615 and against
//! aws-lc-rs's CMAC.
use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// AES block size; also the key size and output size of both MACs.
pub(crate) const BLOCK: usize = 16;

type Block = aes::Block;

/// A keyed XCBC or CMAC instance: the expanded block cipher key and the two
/// last-block masks. Wiped on drop (`aes` zeroizes its key schedule itself).
pub(crate) struct CbcMacKey {
    cipher: Aes128,
    complete: [u8; BLOCK],
    partial: [u8; BLOCK],
}

impl Drop for CbcMacKey {
    fn drop(&mut self) {
        self.complete.zeroize();
        self.partial.zeroize();
    }
}

impl ZeroizeOnDrop for CbcMacKey {}

impl core::fmt::Debug for CbcMacKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CbcMacKey { .. }")
    }
}

fn encrypt(cipher: &Aes128, block: [u8; BLOCK]) -> [u8; BLOCK] {
    let mut b = Block::from(block);
    cipher.encrypt_block(&mut b);
    let out: [u8; BLOCK] = b.into();
    b.zeroize();
    out
}

/// Doubling in GF(2^128) as RFC 4493 §2.3 defines it: shift left by one bit,
/// and if a bit fell off, XOR the constant 0x87 into the last byte. Written
/// without a branch on the (secret) top bit.
fn dbl(x: &[u8; BLOCK]) -> [u8; BLOCK] {
    let mut out = [0u8; BLOCK];
    for i in 0..BLOCK {
        let next = if i + 1 < BLOCK { x[i + 1] >> 7 } else { 0 };
        out[i] = (x[i] << 1) | next;
    }
    let carry = x[0] >> 7;
    out[BLOCK - 1] ^= 0u8.wrapping_sub(carry) & 0x87;
    out
}

impl CbcMacKey {
    /// AES-XCBC-MAC with a 128-bit key (RFC 3566 §4).
    pub(crate) fn xcbc(key: &[u8; BLOCK]) -> CbcMacKey {
        let k = Aes128::new(&(*key).into());
        let k1 = encrypt(&k, [0x01; BLOCK]);
        let complete = encrypt(&k, [0x02; BLOCK]);
        let partial = encrypt(&k, [0x03; BLOCK]);
        let cipher = Aes128::new(&k1.into());
        let mut k1 = k1;
        k1.zeroize();
        CbcMacKey {
            cipher,
            complete,
            partial,
        }
    }

    /// AES-CMAC with a 128-bit key (RFC 4493 §2.3).
    pub(crate) fn cmac(key: &[u8; BLOCK]) -> CbcMacKey {
        let cipher = Aes128::new(&(*key).into());
        let mut l = encrypt(&cipher, [0; BLOCK]);
        let complete = dbl(&l);
        let partial = dbl(&complete);
        l.zeroize();
        CbcMacKey {
            cipher,
            complete,
            partial,
        }
    }

    pub(crate) fn start(&self) -> CbcMacCtx<'_> {
        CbcMacCtx {
            key: self,
            state: [0; BLOCK],
            pending: [0; BLOCK],
            pending_len: 0,
        }
    }

    /// The full 128-bit MAC of the concatenation of `parts`.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; BLOCK] {
        let mut ctx = self.start();
        for p in parts {
            ctx.update(p);
        }
        ctx.finish()
    }
}

/// One MAC computation in progress. The last block of input is held back in
/// `pending` until `finish`, because it is processed differently.
pub(crate) struct CbcMacCtx<'k> {
    key: &'k CbcMacKey,
    state: [u8; BLOCK],
    pending: [u8; BLOCK],
    pending_len: usize,
}

impl Drop for CbcMacCtx<'_> {
    fn drop(&mut self) {
        self.state.zeroize();
        self.pending.zeroize();
    }
}

impl CbcMacCtx<'_> {
    fn absorb_pending(&mut self) {
        for (s, p) in self.state.iter_mut().zip(self.pending) {
            *s ^= p;
        }
        self.state = encrypt(&self.key.cipher, self.state);
        self.pending_len = 0;
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            // A full pending block is only processed once more data shows it
            // is not the last one.
            if self.pending_len == BLOCK {
                self.absorb_pending();
            }
            let take = (BLOCK - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
        }
    }

    pub(crate) fn finish(mut self) -> [u8; BLOCK] {
        let mask = if self.pending_len == BLOCK {
            self.key.complete
        } else {
            // 10* padding (RFC 3566 §4 step 3, RFC 4493 §2.4 step 4).
            self.pending[self.pending_len] = 0x80;
            self.pending[self.pending_len + 1..].fill(0);
            self.key.partial
        };
        for (p, m) in self.pending.iter_mut().zip(mask) {
            *p ^= m;
        }
        self.absorb_pending();
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: [u8; 16] = [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
        0x0f,
    ];

    #[test]
    fn xcbc_rfc3566_case_4() {
        let msg: Vec<u8> = (0..20).collect();
        let mac = CbcMacKey::xcbc(&K).mac(&[&msg]);
        assert_eq!(hex::encode(mac), "47f51b4564966215b8985c63055ed308");
    }

    #[test]
    fn cmac_subkeys_rfc4493() {
        // RFC 4493 §4 "Subkey Generation".
        let key: [u8; 16] = hex::decode("2b7e151628aed2a6abf7158809cf4f3c")
            .unwrap()
            .try_into()
            .unwrap();
        let k = CbcMacKey::cmac(&key);
        assert_eq!(hex::encode(k.complete), "fbeed618357133667c85e08f7236a8de");
        assert_eq!(hex::encode(k.partial), "f7ddac306ae266ccf90bc11ee46d513b");
    }

    #[test]
    fn dbl_carries_the_reduction_constant() {
        let mut x = [0u8; 16];
        x[0] = 0x80;
        let mut want = [0u8; 16];
        want[15] = 0x87;
        assert_eq!(dbl(&x), want);
        x[0] = 0x40;
        want = [0u8; 16];
        want[0] = 0x80;
        assert_eq!(dbl(&x), want);
    }

    /// Splitting the input anywhere gives the same MAC (the held-back last
    /// block is what makes this subtle: exact multiples of 16 bytes).
    #[test]
    fn streaming_matches_one_shot_at_every_split() {
        for key in [CbcMacKey::xcbc(&K), CbcMacKey::cmac(&K)] {
            for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 48, 64] {
                let msg: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(29)).collect();
                let whole = key.mac(&[&msg]);
                for cut in 0..=len {
                    let (a, b) = msg.split_at(cut);
                    assert_eq!(key.mac(&[a, b]), whole, "len {len} cut {cut}");
                    assert_eq!(key.mac(&[a, &[], b, &[]]), whole);
                }
            }
        }
    }

    #[test]
    fn cmac_matches_aws_lc_rs() {
        use aws_lc_rs::cmac;
        for len in [0usize, 1, 16, 17, 40, 64, 100] {
            let msg: Vec<u8> = (0..len as u8).collect();
            let ours = CbcMacKey::cmac(&K).mac(&[&msg]);
            let theirs = cmac::sign(&cmac::Key::new(cmac::AES_128, &K).unwrap(), &msg).unwrap();
            assert_eq!(&ours[..], theirs.as_ref(), "len {len}");
        }
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", CbcMacKey::xcbc(&K)), "CbcMacKey { .. }");
    }
}
