//! brainpoolP512r1 (RFC 5639 §3.7) for IKEv2 group 30 (RFC 6954).
//!
//! No published crate has this curve's arithmetic, but RustCrypto builds its
//! `bp256`/`bp384` curves from two generic crates that do all the work, and
//! this module assembles the same pieces for the 512-bit parameters:
//!
//! * `primefield`'s `monty_*` macros give the base field (mod p) and the
//!   scalar field (mod n) as Montgomery-form elements on `crypto-bigint`'s
//!   `U512`. The arithmetic is constant time (no secret-dependent branches or
//!   table indices); inversion is a constant-time Bernstein–Yang safegcd.
//!   This is the `bigint` backend that `bp384` offers as an alternative to
//!   its fiat-crypto one; there is no formally verified code for this prime.
//! * `primeorder` gives points: the complete projective addition formulas of
//!   Renes–Costello–Batina 2015 for a general `a` (no exceptional cases, so no
//!   branch on the identity or on doubling), and a fixed-window scalar
//!   multiplication with a constant-time table lookup, both for the generator
//!   (key generation) and for the peer's point (the shared secret).
//!
//! Only the constants below are ours; they are RFC 5639 §3.7's `p`, `A`, `B`,
//! `x`, `y` and `q` (here `n`), and the tests check that the generator is on
//! the curve, that `n·G` is the identity and the RFC 7027 §A.3 vector.
//!
//! The curve has cofactor 1, so every point that decodes (on the curve, not
//! the identity) is in the prime-order group: the shared-secret path needs
//! no subgroup check.
use elliptic_curve::{
    Curve, CurveArithmetic, PrimeCurve, PrimeCurveArithmetic,
    array::typenum::U64,
    bigint::{Odd, U512},
    hazmat::FieldArithmetic,
};
use primeorder::{PrimeCurveParams, mul_backend, point_arithmetic};

use self::{field::FieldElement, scalar::Scalar};

/// n, the order of the generator (RFC 5639 §3.7 `q`).
const ORDER_HEX: &str = concat!(
    "aadd9db8dbe9c48b3fd4e6ae33c9fc07cb308db3b3c9d20ed6639cca70330870",
    "553e5c414ca92619418661197fac10471db1d381085ddaddb58796829ca90069",
);

/// p, the field prime (RFC 5639 §3.7 `p`).
const MODULUS_HEX: &str = concat!(
    "aadd9db8dbe9c48b3fd4e6ae33c9fc07cb308db3b3c9d20ed6639cca70330871",
    "7d4d9b009bc66842aecda12ae6a380e62881ff2f2d82c68528aa6056583a48f3",
);

/// The curve y² = x³ + Ax + B over GF(p) with the RFC 5639 §3.7 parameters.
///
/// `pub` only because the trait impls the `elliptic-curve` macros emit must
/// not name a restricted type; the module itself is private to `ke`.
#[derive(Copy, Clone, Debug, Default, Eq, PartialEq, PartialOrd, Ord)]
pub struct BrainpoolP512r1;

impl Curve for BrainpoolP512r1 {
    /// Field elements and scalars both take 64 bytes (p and n are 512-bit).
    type FieldBytesSize = U64;
    type Uint = U512;
    const ORDER: Odd<U512> = Odd::<U512>::from_be_hex(ORDER_HEX);
}

impl PrimeCurve for BrainpoolP512r1 {}

impl CurveArithmetic for BrainpoolP512r1 {
    type AffinePoint = primeorder::AffinePoint<Self>;
    type ProjectivePoint = primeorder::ProjectivePoint<Self>;
    type Scalar = Scalar;
}

impl FieldArithmetic for BrainpoolP512r1 {
    type FieldElement = FieldElement;
}

impl PrimeCurveArithmetic for BrainpoolP512r1 {
    type CurveGroup = primeorder::ProjectivePoint<Self>;
}

impl PrimeCurveParams for BrainpoolP512r1 {
    /// `A` is neither 0 nor -3, so the formulas for a general `a`.
    type PointArithmetic = point_arithmetic::EquationAIsGeneric;
    /// "Variable" as in variable base: no precomputed generator table. Both
    /// multiplications used here are still constant time.
    type Backend = mul_backend::VariableOnly;

    const EQUATION_A: FieldElement = FieldElement::from_hex_vartime(concat!(
        "7830a3318b603b89e2327145ac234cc594cbdd8d3df91610a83441caea9863bc",
        "2ded5d5aa8253aa10a2ef1c98b9ac8b57f1117a72bf2c7b9e7c1ac4d77fc94ca",
    ));
    const EQUATION_B: FieldElement = FieldElement::from_hex_vartime(concat!(
        "3df91610a83441caea9863bc2ded5d5aa8253aa10a2ef1c98b9ac8b57f1117a7",
        "2bf2c7b9e7c1ac4d77fc94cadc083e67984050b75ebae5dd2809bd638016f723",
    ));
    const GENERATOR: (FieldElement, FieldElement) = (
        FieldElement::from_hex_vartime(concat!(
            "81aee4bdd82ed9645a21322e9c4c6a9385ed9f70b5d916c1b43b62eef4d0098e",
            "ff3b1f78e2d0d48d50d1687b93b97d5f7c6d5047406a5e688b352209bcb9f822",
        )),
        FieldElement::from_hex_vartime(concat!(
            "7dde385d566332ecc0eabfa9cf7822fdf209f70024a57b1aa000c55b881f8111",
            "b2dcde494a5f485e5bca4bd88a2763aed1ca2b2fa8f0540678cd1e0f3ad80892",
        )),
    );
}

/// GF(p). The macros define `FieldParams` and `FieldElement` with their
/// inherent methods and the `ff`/`subtle` trait impls; the imports are the
/// names their expansions use unqualified.
#[allow(
    deprecated,
    reason = "primefield 0.14.0's monty_field_params! calls Uint::bits, deprecated in crypto-bigint 0.7.11"
)]
mod field {
    use elliptic_curve::{
        bigint::U512,
        ff::PrimeField,
        ops::BatchInvert,
        subtle::{Choice, ConstantTimeEq, CtOption},
    };

    // `multiplicative_generator` only feeds `ff::PrimeField`'s root-of-unity
    // constants, which ECDH never uses (and for p ≡ 3 (mod 4) crypto-bigint's
    // square root ignores it). 2 is a quadratic non-residue (p ≡ 3 (mod 8))
    // and, checked in the tests, no 7th or 61st power; p − 1 = 2·7·61·c with
    // c a composite ~500-bit cofactor not factored here, so 2 is not proved
    // to be a primitive root.
    primefield::monty_field_params! {
        name: FieldParams,
        modulus: super::MODULUS_HEX,
        uint: U512,
        byte_order: primefield::ByteOrder::BigEndian,
        multiplicative_generator: 2,
        doc: "Montgomery parameters for the brainpoolP512r1 field prime p"
    }

    primefield::monty_field_element! {
        name: FieldElement,
        params: FieldParams,
        uint: U512,
        doc: "An element of GF(p), p the brainpoolP512r1 prime, in Montgomery form"
    }

    primefield::monty_field_arithmetic! {
        name: FieldElement,
        params: FieldParams,
        uint: U512
    }

    impl BatchInvert for FieldElement {}

    #[cfg(test)]
    mod tests {
        use super::{FieldElement, U512};
        // primefield's own battery: constants, identities, inversion, sqrt.
        primefield::test_primefield!(FieldElement, U512);
    }
}

/// GF(n), the scalars. Same macros as the base field, plus the reductions,
/// conversions and `IsHigh` that `elliptic-curve` asks of a scalar type.
#[allow(
    deprecated,
    reason = "primefield 0.14.0's monty_field_params! calls Uint::bits, deprecated in crypto-bigint 0.7.11"
)]
mod scalar {
    use elliptic_curve::{
        bigint::U512,
        ff::PrimeField,
        scalar::{FromUintUnchecked, IsHigh},
        subtle::{Choice, ConstantTimeEq, ConstantTimeGreater, CtOption},
    };

    use super::BrainpoolP512r1;

    // n − 1 factors completely (2³·3·41·1559·4391·14557·33278821·56951731·
    // 82441673·447825179·55886090402833·a 95-digit prime), so the tests prove 7 a
    // primitive root (the smallest). crypto-bigint also asserts at compile
    // time that it is a non-residue, as its square root needs (n ≡ 9 mod 16).
    primefield::monty_field_params! {
        name: ScalarParams,
        modulus: super::ORDER_HEX,
        uint: U512,
        byte_order: primefield::ByteOrder::BigEndian,
        multiplicative_generator: 7,
        doc: "Montgomery parameters for the brainpoolP512r1 group order n"
    }

    primefield::monty_field_element! {
        name: Scalar,
        params: ScalarParams,
        uint: U512,
        doc: "An element of GF(n), n the brainpoolP512r1 group order, in Montgomery form"
    }

    primefield::monty_field_arithmetic! {
        name: Scalar,
        params: ScalarParams,
        uint: U512
    }

    primefield::monty_field_reduce! {
        name: Scalar,
        params: ScalarParams,
        uint: U512,
    }

    elliptic_curve::scalar_impls!(BrainpoolP512r1, Scalar);
    primeorder::wnaf::impl_wnaf_size_for_scalar!(Scalar);

    impl AsRef<Scalar> for Scalar {
        fn as_ref(&self) -> &Scalar {
            self
        }
    }

    impl FromUintUnchecked for Scalar {
        type Uint = U512;

        fn from_uint_unchecked(uint: U512) -> Self {
            Self::from_uint_unchecked(uint)
        }
    }

    impl IsHigh for Scalar {
        /// Constant time: one comparison of the canonical value with (n−1)/2.
        fn is_high(&self) -> Choice {
            const HALF_N: U512 = U512::from_be_hex(super::ORDER_HEX).shr_vartime(1);
            self.to_canonical().ct_gt(&HALF_N)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::{Scalar, U512};
        primefield::test_primefield!(Scalar, U512);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use elliptic_curve::{
        Field, Group, PrimeField,
        bigint::{NonZero, modular::Retrieve},
        point::AffineCoordinates,
    };
    use primeorder::ProjectivePoint;

    type Point = ProjectivePoint<BrainpoolP512r1>;

    #[test]
    fn generator_is_on_the_curve() {
        let (x, y) = BrainpoolP512r1::GENERATOR;
        let a = BrainpoolP512r1::EQUATION_A;
        let b = BrainpoolP512r1::EQUATION_B;
        assert_eq!(y.square(), x.square() * x + a * x + b);
        // The point type agrees, and encodes back to the RFC's coordinates.
        let g = Point::GENERATOR.to_affine();
        assert_eq!(g.x(), x.to_repr());
        assert_eq!(g.y(), y.to_repr());
    }

    #[test]
    fn order_times_generator_is_the_identity() {
        // n itself is 0 as a scalar, so compute (n − 1)·G + G.
        let n_minus_1 = -Scalar::ONE;
        let almost = Point::GENERATOR * n_minus_1;
        assert_eq!(almost, -Point::GENERATOR);
        assert!(bool::from((almost + Point::GENERATOR).is_identity()));
        assert!(!bool::from(almost.is_identity()));
        // The same through the variable-time path (an independent algorithm).
        assert_eq!(Point::GENERATOR.mul_vartime(&n_minus_1), almost);
        // Curve::ORDER, the scalar field's modulus and the constant agree.
        assert_eq!(
            BrainpoolP512r1::ORDER.as_ref(),
            &(-Scalar::ONE).retrieve().wrapping_add(&U512::ONE)
        );
        assert_eq!(Scalar::NUM_BITS, 512);
        assert_eq!(FieldElement::NUM_BITS, 512);
    }

    /// The constant-time fixed-window multiplication (used for ECDH) and the
    /// variable-time wNAF one are independent algorithms: they must agree.
    #[test]
    fn constant_time_and_wnaf_multiplication_agree() {
        let mut k = Scalar::from(0x0123_4567_89ab_cdefu64);
        let mut p = Point::GENERATOR;
        for _ in 0..8 {
            k = k.square() + Scalar::from(3u64);
            let ct = p * k;
            assert_eq!(ct, p.mul_vartime(&k));
            p = ct;
        }
    }

    /// Whether g^((m − 1)/q) = 1 for each q: a non-residue of every order q
    /// (for all prime q | m − 1, that makes g a primitive root).
    fn no_qth_power<F: Field + Retrieve<Output = U512>>(g: F, minus_1: F, qs: &[U512]) -> bool {
        let m_minus_1 = minus_1.retrieve();
        qs.iter().all(|q| {
            let e = m_minus_1.wrapping_div(&NonZero::new(*q).unwrap());
            g.pow_vartime(e.as_words()) != F::ONE
        })
    }

    #[test]
    fn multiplicative_generators() {
        // GF(p): p − 1 = 2·7·61·c with c composite and unfactored, so only
        // these orders can be checked (2 is what crypto-bigint relies on).
        let qs = [2u64, 7, 61].map(U512::from_u64);
        assert_eq!(
            FieldElement::MULTIPLICATIVE_GENERATOR,
            FieldElement::from(2u64)
        );
        assert!(no_qth_power(
            FieldElement::from(2u64),
            -FieldElement::ONE,
            &qs
        ));
        // GF(n): n − 1 factors completely, so 7 is proved a primitive root.
        let mut qs = [
            2u64,
            3,
            41,
            1559,
            4391,
            14557,
            33_278_821,
            56_951_731,
            82_441_673,
            447_825_179,
            55_886_090_402_833,
        ]
        .map(U512::from_u64)
        .to_vec();
        let big = U512::from_be_hex(&format!(
            "{:0>128}",
            "2cc0ce4317d34382ceb69ac9a59da805ebfee7cd3b7a4b7ec695df3e047532eda96bb1c592a6a7f"
        ));
        qs.push(big);
        // The list is the whole factorisation: 2³ · Π q = n − 1.
        let product = qs[1..]
            .iter()
            .fold(U512::from_u64(8), |acc, q| acc.wrapping_mul(q));
        assert_eq!(product, (-Scalar::ONE).retrieve());
        assert_eq!(Scalar::MULTIPLICATIVE_GENERATOR, Scalar::from(7u64));
        assert!(no_qth_power(Scalar::from(7u64), -Scalar::ONE, &qs));
    }
}
