//! Plain hash functions the protocol needs outside of keyed constructions.
use aws_lc_rs::digest;

/// SHA-1, used only where RFC 7296 fixes it: the NAT_DETECTION_*_IP hashes
/// (§2.23), which are not a security function.
pub fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 20];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// SHA-256, for fingerprints of messages (no key involved).
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha1_known_answer() {
        // FIPS 180-2 Appendix A.1: SHA-1("abc").
        assert_eq!(
            hex::encode(super::sha1(&[b"a", b"bc"])),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
