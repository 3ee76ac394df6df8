//! Key exchange methods (transform type 4).
//!
//! | IDs | method | public value | shared secret | provider |
//! |---|---|---|---|---|
//! | 2, 5, 14–18 | MODP (RFC 2409, RFC 3526) | g^x, left-padded to the prime length | g^xy, same length | crypto-bigint |
//! | 19–21 | ECP-256/384/521 (RFC 5903) | x ‖ y, no 0x04 octet | x | aws-lc-rs |
//! | 28, 29 | brainpoolP256r1/P384r1 (RFC 6954) | x ‖ y | x | RustCrypto `bp256`/`bp384` |
//! | 30 | brainpoolP512r1 (RFC 6954) | x ‖ y | x | RustCrypto `primefield` + `primeorder` (curve defined in `ke/brainpool512.rs`) |
//! | 31 | Curve25519 (RFC 8031) | 32-byte u | 32-byte u, all-zero rejected | aws-lc-rs |
//! | 32 | Curve448 (RFC 8031) | 56-byte u | 56-byte u, all-zero rejected | RustCrypto `x448` |
//! | 35–37 | ML-KEM-512/768/1024 (FIPS 203, draft-ietf-ipsecme-ikev2-mlkem) | initiator: ek; responder: ciphertext | K (32 bytes) | aws-lc-rs `kem` |
//!
//! Not implemented: the deprecated groups 1, 22–24, 25–27.
//!
//! ## Initiator and responder
//! For a Diffie-Hellman group both sides do the same: [`generate`] a share,
//! send [`KeyExchange::public_key`], and feed the peer's value to
//! [`KeyExchange::shared_secret`]. A KEM ([`is_kem`]) is asymmetric: the
//! initiator calls [`generate`] (its public value is the encapsulation key)
//! and later `shared_secret(ciphertext)`, which decapsulates; the responder
//! must call [`respond`], which encapsulates to the initiator's key.
//! [`respond`] also works for every Diffie-Hellman group, so a responder can
//! use it whatever was negotiated.
//!
//! Private keys are drawn from the injected [`Rng`], so a seeded RNG gives the
//! same key shares every run — except for ML-KEM, whose provider draws its
//! own randomness (see the `mlkem` module notes). Peer values are hostile
//! input: every length and range is checked before any arithmetic.
use aws_lc_rs::agreement;
use oxisec_wire::{TransformId, ke};

use crate::{CryptoError, Rng, Secret};

mod brainpool;
mod brainpool512;
mod curve448;
mod mlkem;
mod modp;

/// One side's ephemeral key share. The private part is zeroized on drop.
pub trait KeyExchange: Send + core::fmt::Debug {
    fn group(&self) -> TransformId;
    /// The public value as carried in the KE payload.
    fn public_key(&self) -> &[u8];
    /// The shared secret g^ir. Rejects malformed or degenerate peer values
    /// (wrong length, point not on curve, 0/1/p-1 for MODP, all-zero
    /// X25519/X448 output) with [`CryptoError::InvalidPublicKey`].
    ///
    /// For ML-KEM this is the initiator's decapsulation of the responder's
    /// ciphertext; a responder must use [`respond`] instead.
    fn shared_secret(&self, peer_public: &[u8]) -> Result<Secret, CryptoError>;
}

/// Whether `group` is implemented.
///
/// MODP-1024 and MODP-1536 are implemented for peers that offer nothing
/// better (the Windows built-in client proposes MODP-1024 by default) but are
/// below today's security floor: see [`is_legacy`].
pub fn is_supported(group: TransformId) -> bool {
    group == ke::CURVE25519
        || group == ke::CURVE448
        || EcCurve::for_group(group).is_some()
        || brainpool::is_supported(group)
        || modp::is_supported(group)
        || is_kem(group)
}

/// Whether `group` is a key encapsulation mechanism (ML-KEM), where the
/// responder must answer with [`respond`] rather than [`generate`] +
/// [`KeyExchange::shared_secret`].
///
/// A KEM responder that used `generate` + `shared_secret` would feed the
/// initiator's encapsulation key to decapsulation: for ML-KEM-512/768 the
/// length check catches that, but for ML-KEM-1024 the key and ciphertext are
/// both 1568 bytes and the result would be a silently wrong secret.
pub fn is_kem(group: TransformId) -> bool {
    mlkem::params(group).is_some()
}

/// Whether `group` is implemented but deprecated for new deployments (RFC 8247
/// §2.4: MODP-1024 and MODP-1536 SHOULD NOT be used). Configuration should
/// only accept these when an operator asks for them explicitly.
pub fn is_legacy(group: TransformId) -> bool {
    group == ke::MODP_1024 || group == ke::MODP_1536
}

/// Creates a key share for `group`, drawing the private key from `rng` (so a
/// seeded RNG gives reproducible shares).
///
/// # Errors
/// `Unsupported` if the group is not implemented, or if `rng` keeps producing
/// bytes that are not a valid private key (only a broken RNG does that: the
/// chance for a working one is below 2^-2000).
pub fn generate(
    group: TransformId,
    rng: &mut dyn Rng,
) -> Result<Box<dyn KeyExchange>, CryptoError> {
    if group == ke::CURVE25519 {
        return Ok(Box::new(X25519Share::generate(rng)?));
    }
    if let Some(curve) = EcCurve::for_group(group) {
        return Ok(Box::new(EcpShare::generate(curve, rng)?));
    }
    if group == ke::CURVE448 {
        return Ok(Box::new(curve448::X448Share::generate(rng)?));
    }
    if let Some(share) = brainpool::generate(group, rng)? {
        return Ok(share);
    }
    if let Some(share) = modp::generate(group, rng)? {
        return Ok(Box::new(share));
    }
    if let Some(params) = mlkem::params(group) {
        return Ok(Box::new(mlkem::MlKemShare::generate(params)?));
    }
    Err(CryptoError::Unsupported("key exchange method"))
}

/// The responder's half of a key exchange: given the initiator's KE payload
/// data, returns the responder's KE payload data and the shared secret.
///
/// For a Diffie-Hellman group this generates a share from `rng` and combines
/// it with the peer's public value (exactly [`generate`] followed by
/// [`KeyExchange::shared_secret`]). For ML-KEM it checks the initiator's
/// encapsulation key (length and the FIPS 203 §7.2 modulus check) and
/// encapsulates to it: the returned data is the ciphertext. `rng` is unused
/// for ML-KEM (the provider draws its own randomness).
///
/// # Errors
/// `Unsupported` if the group is not implemented (or the RNG is broken, as
/// for [`generate`]); `InvalidPublicKey` if the peer's value is malformed or
/// degenerate.
pub fn respond(
    group: TransformId,
    peer_payload: &[u8],
    rng: &mut dyn Rng,
) -> Result<(Vec<u8>, Secret), CryptoError> {
    if let Some(params) = mlkem::params(group) {
        return mlkem::encapsulate(params, peer_payload);
    }
    let share = generate(group, rng)?;
    let shared = share.shared_secret(peer_payload)?;
    Ok((share.public_key().to_vec(), shared))
}

/// Attempts at drawing a private key before giving up on the RNG. Each attempt
/// fails with probability below 2^-32 for a working RNG on the NIST curves and
/// below 0.46 on the Brainpool curves (orders just above 2^(bits-1)), so a
/// working RNG exhausts them with probability below 2^-70.
const KEYGEN_ATTEMPTS: usize = 64;

const BAD_RNG: CryptoError = CryptoError::Unsupported("random source yields no valid private key");

fn x25519_alg() -> &'static agreement::Algorithm {
    &agreement::X25519
}

/// Curve25519 (RFC 7748, RFC 8031): 32-byte public value, 32-byte secret.
struct X25519Share {
    private: agreement::PrivateKey,
    public: [u8; 32],
}

impl X25519Share {
    fn generate(rng: &mut dyn Rng) -> Result<Self, CryptoError> {
        // Every 32-byte string is a valid X25519 private key: clamping
        // (RFC 7748 §5) happens inside the scalar multiplication.
        let mut scalar = Secret::new(vec![0u8; 32]);
        fill_secret(rng, &mut scalar);
        let private = agreement::PrivateKey::from_private_key(x25519_alg(), scalar.as_bytes())
            .map_err(|_| CryptoError::InvalidKeyLength)?;
        let public = private
            .compute_public_key()
            .map_err(|_| CryptoError::InvalidKeyLength)?;
        let public: [u8; 32] = public
            .as_ref()
            .try_into()
            .map_err(|_| CryptoError::InvalidKeyLength)?;
        Ok(X25519Share { private, public })
    }
}

impl core::fmt::Debug for X25519Share {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("X25519Share").finish_non_exhaustive()
    }
}

impl KeyExchange for X25519Share {
    fn group(&self) -> TransformId {
        ke::CURVE25519
    }
    fn public_key(&self) -> &[u8] {
        &self.public
    }
    fn shared_secret(&self, peer_public: &[u8]) -> Result<Secret, CryptoError> {
        if peer_public.len() != 32 {
            return Err(CryptoError::InvalidPublicKey);
        }
        let peer = agreement::UnparsedPublicKey::new(x25519_alg(), peer_public);
        let shared = agreement::agree(&self.private, peer, CryptoError::InvalidPublicKey, |k| {
            Ok(Secret::from_slice(k))
        })?;
        // A low-order peer point gives the all-zero output, which would make
        // the "shared" secret known to everyone (RFC 7748 §6.1, RFC 8031 §2.3).
        if is_all_zero(shared.as_bytes()) {
            return Err(CryptoError::InvalidPublicKey);
        }
        Ok(shared)
    }
}

/// A NIST prime curve with its group order, for drawing private scalars.
struct EcCurve {
    group: TransformId,
    alg: &'static agreement::Algorithm,
    /// Length of one coordinate (and of a private scalar) in bytes.
    coord_len: usize,
    /// Group order n, big-endian, `coord_len` bytes.
    order: &'static [u8],
    /// Mask for the first byte of a candidate scalar so that it has no more
    /// bits than n (P-521: 521 bits in 66 bytes), which keeps rejection
    /// sampling efficient.
    top_mask: u8,
}

/// Orders from SEC 2 v2 §2.4.2, §2.5.1 and §2.6.1 (also FIPS 186-4 D.1.2).
const P256_ORDER: [u8; 32] =
    hex32("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
const P384_ORDER: [u8; 48] = hex48(
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
);
const P521_ORDER: [u8; 66] = hex66(
    "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
);

static CURVES: [EcCurve; 3] = [
    EcCurve {
        group: ke::ECP_256,
        alg: &agreement::ECDH_P256,
        coord_len: 32,
        order: &P256_ORDER,
        top_mask: 0xff,
    },
    EcCurve {
        group: ke::ECP_384,
        alg: &agreement::ECDH_P384,
        coord_len: 48,
        order: &P384_ORDER,
        top_mask: 0xff,
    },
    EcCurve {
        group: ke::ECP_521,
        alg: &agreement::ECDH_P521,
        coord_len: 66,
        order: &P521_ORDER,
        top_mask: 0x01,
    },
];

impl EcCurve {
    fn for_group(group: TransformId) -> Option<&'static EcCurve> {
        CURVES.iter().find(|c| c.group == group)
    }
}

/// ECP-256/384/521 (RFC 5903).
struct EcpShare {
    curve: &'static EcCurve,
    private: agreement::PrivateKey,
    /// x ‖ y, each `coord_len` bytes (RFC 5903 §7: no point-format octet).
    public: Vec<u8>,
}

impl EcpShare {
    fn generate(curve: &'static EcCurve, rng: &mut dyn Rng) -> Result<Self, CryptoError> {
        let mut scalar = Secret::new(vec![0u8; curve.coord_len]);
        let mut found = false;
        for _ in 0..KEYGEN_ATTEMPTS {
            fill_secret(rng, &mut scalar);
            let bytes = secret_bytes_mut(&mut scalar);
            bytes[0] &= curve.top_mask;
            // 1 <= d < n: a uniform scalar, the same for the same RNG output.
            if !is_all_zero(bytes) && ct_less_than(bytes, curve.order) {
                found = true;
                break;
            }
        }
        if !found {
            return Err(BAD_RNG);
        }
        let private = agreement::PrivateKey::from_private_key(curve.alg, scalar.as_bytes())
            .map_err(|_| CryptoError::InvalidKeyLength)?;
        let public = private
            .compute_public_key()
            .map_err(|_| CryptoError::InvalidKeyLength)?;
        let encoded = public.as_ref();
        if encoded.len() != 1 + 2 * curve.coord_len || encoded[0] != 0x04 {
            return Err(CryptoError::InvalidKeyLength);
        }
        Ok(EcpShare {
            curve,
            private,
            public: encoded[1..].to_vec(),
        })
    }
}

impl core::fmt::Debug for EcpShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EcpShare")
            .field("group", &self.curve.group)
            .finish_non_exhaustive()
    }
}

impl KeyExchange for EcpShare {
    fn group(&self) -> TransformId {
        self.curve.group
    }
    fn public_key(&self) -> &[u8] {
        &self.public
    }
    fn shared_secret(&self, peer_public: &[u8]) -> Result<Secret, CryptoError> {
        if peer_public.len() != 2 * self.curve.coord_len {
            return Err(CryptoError::InvalidPublicKey);
        }
        // Back to SEC1 uncompressed form; the provider checks the point is on
        // the curve (which also excludes the point at infinity).
        let mut sec1 = Vec::with_capacity(1 + peer_public.len());
        sec1.push(0x04);
        sec1.extend_from_slice(peer_public);
        let peer = agreement::UnparsedPublicKey::new(self.curve.alg, sec1);
        let shared = agreement::agree(&self.private, peer, CryptoError::InvalidPublicKey, |x| {
            Ok(Secret::from_slice(x))
        })?;
        // RFC 5903 §7: g^ir is the x-coordinate, `coord_len` bytes.
        if shared.len() != self.curve.coord_len {
            return Err(CryptoError::InvalidPublicKey);
        }
        Ok(shared)
    }
}

fn fill_secret(rng: &mut dyn Rng, secret: &mut Secret) {
    rng.fill(secret_bytes_mut(secret));
}

/// Mutable access for filling a freshly allocated secret in place (keeps the
/// bytes inside the zeroizing wrapper from the start).
fn secret_bytes_mut(secret: &mut Secret) -> &mut [u8] {
    secret.as_mut_bytes()
}

fn is_all_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |acc, b| acc | b) == 0
}

/// `a < b` for equal-length big-endian numbers, without branching on the
/// bytes: the borrow out of the subtraction a - b.
fn ct_less_than(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let mut borrow = 0u16;
    for (x, y) in a.iter().zip(b).rev() {
        let diff = u16::from(*x)
            .wrapping_sub(u16::from(*y))
            .wrapping_sub(borrow);
        borrow = (diff >> 8) & 1;
    }
    borrow == 1
}

const fn hex_nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("bad hex digit"),
    }
}

const fn hex_array<const N: usize>(s: &str) -> [u8; N] {
    let s = s.as_bytes();
    assert!(s.len() == 2 * N, "hex constant has the wrong length");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = (hex_nibble(s[2 * i]) << 4) | hex_nibble(s[2 * i + 1]);
        i += 1;
    }
    out
}

const fn hex32(s: &str) -> [u8; 32] {
    hex_array(s)
}
const fn hex48(s: &str) -> [u8; 48] {
    hex_array(s)
}
const fn hex66(s: &str) -> [u8; 66] {
    hex_array(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out a fixed byte string, repeated.
    struct Fixed(Vec<u8>);
    impl Rng for Fixed {
        fn fill(&mut self, dest: &mut [u8]) {
            for (i, b) in dest.iter_mut().enumerate() {
                *b = self.0[i % self.0.len()];
            }
        }
    }

    /// Deterministic, varied bytes (SplitMix64).
    struct Counter(u64);
    impl Rng for Counter {
        fn fill(&mut self, dest: &mut [u8]) {
            for chunk in dest.chunks_mut(8) {
                self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = self.0;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                chunk.copy_from_slice(&z.to_be_bytes()[..chunk.len()]);
            }
        }
    }

    const EC_GROUPS: [TransformId; 8] = [
        ke::CURVE25519,
        ke::CURVE448,
        ke::ECP_256,
        ke::ECP_384,
        ke::ECP_521,
        ke::ECP_256_BP,
        ke::ECP_384_BP,
        ke::ECP_512_BP,
    ];

    #[test]
    fn supported_groups() {
        for g in EC_GROUPS {
            assert!(is_supported(g), "{g:?}");
            assert!(!is_legacy(g));
        }
        // 26, 27: ECP-224 and brainpoolP224r1, deprecated and not offered.
        for g in [ke::MODP_768, TransformId(26), TransformId(27), ke::NONE] {
            assert!(!is_supported(g), "{g:?}");
            assert!(matches!(
                generate(g, &mut Counter(1)),
                Err(CryptoError::Unsupported(_))
            ));
        }
    }

    #[test]
    fn both_sides_agree_and_lengths_match() {
        let mut rng = Counter(7);
        for (g, pub_len, ss_len) in [
            (ke::CURVE25519, 32, 32),
            (ke::ECP_256, 64, 32),
            (ke::ECP_384, 96, 48),
            (ke::ECP_521, 132, 66),
            (ke::ECP_256_BP, 64, 32),
            (ke::ECP_384_BP, 96, 48),
            (ke::ECP_512_BP, 128, 64),
            (ke::CURVE448, 56, 56),
        ] {
            let a = generate(g, &mut rng).unwrap();
            let b = generate(g, &mut rng).unwrap();
            assert_eq!(a.group(), g);
            assert_eq!(a.public_key().len(), pub_len, "{g:?}");
            assert_ne!(a.public_key(), b.public_key());
            let ab = a.shared_secret(b.public_key()).unwrap();
            let ba = b.shared_secret(a.public_key()).unwrap();
            assert_eq!(ab.len(), ss_len, "{g:?}");
            assert_eq!(ab, ba, "{g:?}");
        }
    }

    #[test]
    fn seeded_rng_reproduces_shares() {
        for g in EC_GROUPS {
            let a = generate(g, &mut Counter(42)).unwrap();
            let b = generate(g, &mut Counter(42)).unwrap();
            assert_eq!(a.public_key(), b.public_key(), "{g:?}");
        }
    }

    #[test]
    fn rejects_wrong_lengths() {
        let mut rng = Counter(3);
        for g in EC_GROUPS {
            let a = generate(g, &mut rng).unwrap();
            let good = generate(g, &mut rng).unwrap().public_key().to_vec();
            for bad in [&[][..], &good[1..], &[good.as_slice(), &[0]].concat()] {
                assert_eq!(
                    a.shared_secret(bad),
                    Err(CryptoError::InvalidPublicKey),
                    "{g:?} len {}",
                    bad.len()
                );
            }
        }
    }

    #[test]
    fn rejects_points_off_the_curve() {
        let mut rng = Counter(4);
        for g in [
            ke::ECP_256,
            ke::ECP_384,
            ke::ECP_521,
            ke::ECP_256_BP,
            ke::ECP_384_BP,
            ke::ECP_512_BP,
        ] {
            let a = generate(g, &mut rng).unwrap();
            let mut bad = generate(g, &mut rng).unwrap().public_key().to_vec();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert_eq!(a.shared_secret(&bad), Err(CryptoError::InvalidPublicKey));
            let zeros = vec![0u8; bad.len()];
            assert_eq!(a.shared_secret(&zeros), Err(CryptoError::InvalidPublicKey));
        }
    }

    #[test]
    fn x25519_rejects_low_order_points() {
        let a = generate(ke::CURVE25519, &mut Counter(5)).unwrap();
        // u = 0 and u = 1 are of small order: the output would be all zero.
        let mut one = [0u8; 32];
        one[0] = 1;
        for bad in [[0u8; 32], one] {
            assert_eq!(a.shared_secret(&bad), Err(CryptoError::InvalidPublicKey));
        }
    }

    #[test]
    fn ec_scalars_are_rejection_sampled() {
        // An RNG stuck at 0xff never gives a P-256/P-384 scalar below n.
        for g in [ke::ECP_256, ke::ECP_384] {
            assert_eq!(
                generate(g, &mut Fixed(vec![0xff])).err(),
                Some(BAD_RNG),
                "{g:?}"
            );
        }
        // Stuck at zero: never a valid scalar, on any curve.
        for g in [ke::ECP_256, ke::ECP_384, ke::ECP_521] {
            assert_eq!(generate(g, &mut Fixed(vec![0])).err(), Some(BAD_RNG));
        }
        // For P-521 the top byte is masked to one bit, so 0xff.. becomes
        // 0x01ff..ff, which is still above n.
        assert_eq!(
            generate(ke::ECP_521, &mut Fixed(vec![0xff])).err(),
            Some(BAD_RNG)
        );
    }

    #[test]
    fn brainpool_scalars_are_rejection_sampled() {
        // 0xff.. and 0 are never in [1, n); an RNG stuck there is reported.
        for g in [ke::ECP_256_BP, ke::ECP_384_BP, ke::ECP_512_BP] {
            for stuck in [0xff, 0] {
                assert_eq!(
                    generate(g, &mut Fixed(vec![stuck])).err(),
                    Some(BAD_RNG),
                    "{g:?}"
                );
            }
        }
    }

    #[test]
    fn kem_and_dh_roles() {
        for g in [ke::ML_KEM_512, ke::ML_KEM_768, ke::ML_KEM_1024] {
            assert!(is_supported(g) && is_kem(g) && !is_legacy(g));
        }
        for g in EC_GROUPS.into_iter().chain([ke::MODP_2048]) {
            assert!(!is_kem(g), "{g:?}");
        }
        for g in [ke::MODP_768, TransformId(27), ke::NONE] {
            assert!(!is_kem(g));
            assert!(matches!(
                respond(g, &[0; 64], &mut Counter(1)),
                Err(CryptoError::Unsupported(_))
            ));
        }
    }

    #[test]
    fn group_orders_match_the_provider() {
        // The provider refuses d >= n and accepts n - 1: this pins the order
        // constants to the curves aws-lc-rs implements.
        for curve in &CURVES {
            let n = curve.order.to_vec();
            assert!(agreement::PrivateKey::from_private_key(curve.alg, &n).is_err());
            let mut n_minus_1 = n.clone();
            let last = n_minus_1.len() - 1;
            n_minus_1[last] -= 1; // all orders are odd
            assert!(agreement::PrivateKey::from_private_key(curve.alg, &n_minus_1).is_ok());
            assert!(ct_less_than(&n_minus_1, &n));
            assert!(!ct_less_than(&n, &n));
            assert!(!ct_less_than(&n, &n_minus_1));
        }
    }

    #[test]
    fn ct_less_than_matches_ordering() {
        let cases: [(&[u8], &[u8]); 6] = [
            (&[0, 0], &[0, 1]),
            (&[0, 1], &[0, 0]),
            (&[1, 0], &[0, 0xff]),
            (&[0, 0xff], &[1, 0]),
            (&[0xff, 0xff], &[0xff, 0xff]),
            (&[0x12, 0x34], &[0x12, 0x35]),
        ];
        for (a, b) in cases {
            assert_eq!(ct_less_than(a, b), a < b, "{a:?} {b:?}");
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        for g in EC_GROUPS {
            let a = generate(g, &mut Counter(9)).unwrap();
            let shown = format!("{a:?}");
            let public_hex: String = a.public_key()[..4]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert!(!shown.contains(&public_hex), "{shown}");
            assert!(shown.len() < 64, "{shown}");
        }
    }
}
