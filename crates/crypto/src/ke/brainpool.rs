//! Brainpool ECP groups 28, 29 and 30 (RFC 6954): brainpoolP256r1,
//! brainpoolP384r1 and brainpoolP512r1 of RFC 5639. The first two run on
//! RustCrypto's `bp256`/`bp384`; brainpoolP512r1 has no crate, so the
//! `brainpool512` module defines it from the same generic pieces those crates
//! are built from. All three have constant-time field and scalar arithmetic
//! and the complete addition formulas of `primeorder`.
//!
//! The IKEv2 encoding is the one RFC 5903 uses for the NIST curves (RFC 6954
//! §2 refers to it): the KE payload carries x ‖ y, each coordinate left-padded
//! to the field length, without a point-format octet, and the shared secret
//! g^ir is the x-coordinate of the product.
use bp256::elliptic_curve::{
    self as ec, AffinePoint, CurveArithmetic, FieldBytes, FieldBytesSize, PublicKey, SecretKey,
    group::Curve as _,
    sec1::{FromSec1Point, ModulusSize, ToSec1Point},
};
use oxisec_wire::{TransformId, ke};
use zeroize::Zeroizing;

use super::{BAD_RNG, KEYGEN_ATTEMPTS, KeyExchange, brainpool512::BrainpoolP512r1};
use crate::{CryptoError, Rng, Secret};

/// The bounds `elliptic-curve` needs for SEC1 point decoding and encoding;
/// all three Brainpool curves satisfy them.
pub(super) trait BrainpoolCurve: CurveArithmetic + Send + Sync + 'static
where
    FieldBytesSize<Self>: ModulusSize,
    AffinePoint<Self>: FromSec1Point<Self> + ToSec1Point<Self>,
{
    const GROUP: TransformId;
}

impl BrainpoolCurve for bp256::BrainpoolP256r1 {
    const GROUP: TransformId = ke::ECP_256_BP;
}

impl BrainpoolCurve for bp384::BrainpoolP384r1 {
    const GROUP: TransformId = ke::ECP_384_BP;
}

impl BrainpoolCurve for BrainpoolP512r1 {
    const GROUP: TransformId = ke::ECP_512_BP;
}

pub(super) fn is_supported(group: TransformId) -> bool {
    group == ke::ECP_256_BP || group == ke::ECP_384_BP || group == ke::ECP_512_BP
}

/// `Ok(None)` if `group` is not a supported Brainpool group.
pub(super) fn generate(
    group: TransformId,
    rng: &mut dyn Rng,
) -> Result<Option<Box<dyn KeyExchange>>, CryptoError> {
    Ok(match group {
        ke::ECP_256_BP => Some(Box::new(
            BrainpoolShare::<bp256::BrainpoolP256r1>::generate(rng)?,
        )),
        ke::ECP_384_BP => Some(Box::new(
            BrainpoolShare::<bp384::BrainpoolP384r1>::generate(rng)?,
        )),
        ke::ECP_512_BP => Some(Box::new(BrainpoolShare::<BrainpoolP512r1>::generate(rng)?)),
        _ => None,
    })
}

/// One side's Brainpool key share. `SecretKey` zeroizes its scalar on drop.
struct BrainpoolShare<C>
where
    C: BrainpoolCurve,
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    secret: SecretKey<C>,
    /// x ‖ y, each `coord_len()` bytes.
    public: Vec<u8>,
}

fn coord_len<C: ec::Curve>() -> usize {
    <FieldBytesSize<C> as ec::array::typenum::Unsigned>::USIZE
}

impl<C> BrainpoolShare<C>
where
    C: BrainpoolCurve,
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    fn generate(rng: &mut dyn Rng) -> Result<Self, CryptoError> {
        // Rejection sampling for 1 <= d < n, the scalar used exactly as drawn
        // (so published vectors can be replayed through a fixed RNG). The
        // Brainpool orders are just above 2^(bits-1), so about half of the
        // draws are accepted: 64 attempts all fail with probability below 2^-70.
        let mut bytes = Zeroizing::new(FieldBytes::<C>::default());
        for _ in 0..KEYGEN_ATTEMPTS {
            rng.fill(bytes.as_mut_slice());
            if let Ok(secret) = SecretKey::<C>::from_bytes(&bytes) {
                let point = secret.public_key().as_affine().to_sec1_point(false);
                let encoded = point.as_bytes();
                if encoded.len() != 1 + 2 * coord_len::<C>() || encoded[0] != 0x04 {
                    return Err(CryptoError::InvalidKeyLength);
                }
                return Ok(BrainpoolShare {
                    secret,
                    public: encoded[1..].to_vec(),
                });
            }
        }
        Err(BAD_RNG)
    }
}

impl<C> core::fmt::Debug for BrainpoolShare<C>
where
    C: BrainpoolCurve,
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BrainpoolShare")
            .field("group", &C::GROUP)
            .finish_non_exhaustive()
    }
}

impl<C> KeyExchange for BrainpoolShare<C>
where
    C: BrainpoolCurve,
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromSec1Point<C> + ToSec1Point<C>,
{
    fn group(&self) -> TransformId {
        C::GROUP
    }
    fn public_key(&self) -> &[u8] {
        &self.public
    }
    fn shared_secret(&self, peer_public: &[u8]) -> Result<Secret, CryptoError> {
        let len = coord_len::<C>();
        if peer_public.len() != 2 * len {
            return Err(CryptoError::InvalidPublicKey);
        }
        // SEC1 uncompressed form. Decoding rejects coordinates >= p and
        // points off the curve; the identity has no x ‖ y encoding. The
        // curves have cofactor 1, so every point on them is in the group.
        let mut sec1 = Vec::with_capacity(1 + peer_public.len());
        sec1.push(0x04);
        sec1.extend_from_slice(peer_public);
        let peer =
            PublicKey::<C>::from_sec1_bytes(&sec1).map_err(|_| CryptoError::InvalidPublicKey)?;
        let scalar = Zeroizing::new(self.secret.to_nonzero_scalar());
        let product = (peer.to_projective() * **scalar).to_affine();
        let encoded = Zeroizing::new(product.to_sec1_point(false));
        // A valid point times a scalar in [1, n) is never the identity on a
        // prime-order curve; checking keeps that an error, not a panic.
        let x = encoded.x().ok_or(CryptoError::InvalidPublicKey)?;
        let x = x.as_slice();
        if x.len() != len {
            return Err(CryptoError::InvalidPublicKey);
        }
        Ok(Secret::from_slice(x))
    }
}
