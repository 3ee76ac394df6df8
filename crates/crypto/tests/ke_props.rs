//! Property tests: a peer's KE payload data is hostile, so
//! `KeyExchange::shared_secret` (initiator) and `ke::respond` (responder)
//! must answer every input with a value or a typed error, never a panic —
//! arbitrary lengths, exact lengths with arbitrary contents, and valid values
//! with bytes flipped. The large MODP groups are left out for test time
//! (debug builds); they share MODP-2048's code path.

use oxisec_crypto::CryptoError;
use oxisec_crypto::ke::{self, KeyExchange};
use oxisec_crypto::{Rng, SystemRng};
use oxisec_wire::{TransformId, ke as group};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Deterministic bytes for the responder's own shares (cheap, reproducible).
struct Counter(u64);

impl Rng for Counter {
    fn fill(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            *b = (self.0 >> 56) as u8;
        }
    }
}

const GROUPS: [TransformId; 14] = [
    group::MODP_1024,
    group::MODP_2048,
    group::ECP_256,
    group::ECP_384,
    group::ECP_521,
    group::ECP_256_BP,
    group::ECP_384_BP,
    group::ECP_512_BP,
    group::CURVE25519,
    group::CURVE448,
    group::ML_KEM_512,
    group::ML_KEM_768,
    group::ML_KEM_1024,
    group::MODP_1536,
];

/// One initiator share per group, plus a valid responder answer to it and
/// the lengths a peer is expected to send in each role.
struct Fixture {
    group: TransformId,
    share: Box<dyn KeyExchange>,
    /// A valid answer to `share` (what the responder sends).
    answer: Vec<u8>,
}

fn fixtures() -> Vec<Fixture> {
    GROUPS
        .iter()
        .map(|&g| {
            let share = ke::generate(g, &mut SystemRng).unwrap();
            let (answer, _) = ke::respond(g, share.public_key(), &mut SystemRng).unwrap();
            Fixture {
                group: g,
                share,
                answer,
            }
        })
        .collect()
}

/// Peer bytes: arbitrary length, the exact expected length, or a valid
/// value with one byte xor-ed.
fn payload(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let n = valid.len();
    prop_oneof![
        vec(any::<u8>(), 0..=2 * n + 1),
        vec(any::<u8>(), n),
        (0..n, 1..=255u8).prop_map(move |(i, x)| {
            let mut v = valid.clone();
            v[i] ^= x;
            v
        }),
    ]
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn shared_secret_never_panics() {
    for f in fixtures() {
        runner(64)
            .run(&payload(f.answer.clone()), |peer| {
                match f.share.shared_secret(&peer) {
                    Ok(secret) => prop_assert!(!secret.is_empty()),
                    Err(e) => prop_assert_eq!(e, CryptoError::InvalidPublicKey),
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{:?}: {e}", f.group));
    }
}

#[test]
fn respond_never_panics() {
    for f in fixtures() {
        let valid = f.share.public_key().to_vec();
        let seed = u64::from(f.group.0);
        runner(64)
            .run(&payload(valid), |peer| {
                match ke::respond(f.group, &peer, &mut Counter(seed)) {
                    Ok((answer, secret)) => {
                        prop_assert_eq!(answer.len(), f.answer.len());
                        prop_assert!(!secret.is_empty());
                    }
                    Err(e) => prop_assert_eq!(e, CryptoError::InvalidPublicKey),
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{:?}: {e}", f.group));
    }
}

/// The Brainpool groups with their field primes p (RFC 5639 §3.4, §3.5,
/// §3.7), big-endian: the public value is x ‖ y, each `p.len()` bytes.
const BRAINPOOL: [(TransformId, &str); 3] = [
    (
        group::ECP_256_BP,
        "a9fb57dba1eea9bc3e660a909d838d726e3bf623d52620282013481d1f6e5377",
    ),
    (
        group::ECP_384_BP,
        concat!(
            "8cb91e82a3386d280f5d6f7e50e641df152f7109ed5456b4",
            "12b1da197fb71123acd3a729901d1a71874700133107ec53",
        ),
    ),
    (
        group::ECP_512_BP,
        concat!(
            "aadd9db8dbe9c48b3fd4e6ae33c9fc07cb308db3b3c9d20ed6639cca70330871",
            "7d4d9b009bc66842aecda12ae6a380e62881ff2f2d82c68528aa6056583a48f3",
        ),
    ),
];

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// a + b for equal-length big-endian numbers; `None` on overflow.
fn add_be(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0; a.len()];
    let mut carry = 0u16;
    for i in (0..a.len()).rev() {
        let sum = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    (carry == 0).then_some(out)
}

/// Both roles of a Brainpool exchange compute the same secret, the
/// x-coordinate of a point, for any pair of seeds.
#[test]
fn brainpool_both_roles_agree() {
    for (g, p) in BRAINPOOL {
        let len = p.len() / 2;
        runner(8)
            .run(&(any::<u64>(), any::<u64>()), |(i_seed, r_seed)| {
                let initiator = ke::generate(g, &mut Counter(i_seed)).unwrap();
                prop_assert_eq!(initiator.public_key().len(), 2 * len);
                let (answer, r_secret) =
                    ke::respond(g, initiator.public_key(), &mut Counter(r_seed)).unwrap();
                prop_assert_eq!(answer.len(), 2 * len);
                prop_assert_eq!(r_secret.len(), len);
                prop_assert_eq!(initiator.shared_secret(&answer).unwrap(), r_secret);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{g:?}: {e}"));
    }
}

/// What a hostile peer can put in a Brainpool KE payload, given a valid
/// x ‖ y and the prime p (both big-endian, coordinates `p.len()` bytes).
#[derive(Debug, Clone)]
enum Hostile {
    /// Any length but the right one.
    Length(Vec<u8>),
    /// A valid point with one coordinate byte changed: off the curve (the
    /// only other point with the same x is (x, p − y), out of reach of a
    /// single-byte change but for a negligible fraction of cases).
    OffCurve(usize, u8),
    /// x = 0, y = 0 or both, the rest random: (0, 0) is what the identity
    /// would look like; no point of these odd-order curves has y = 0 (no
    /// 2-torsion), and x = 0 is on the curve only for y = ±√B, which random
    /// bytes do not hit.
    Zero { x: bool, y: bool, rest: Vec<u8> },
    /// One coordinate replaced by p + k (k < p/4, so it stays in range of
    /// the field width) or by the valid coordinate plus p (a non-canonical
    /// encoding of a point on the curve, which must not be reduced).
    Unreduced {
        y: bool,
        k: Vec<u8>,
        plus_valid: bool,
    },
}

fn hostile(len: usize) -> impl Strategy<Value = Hostile> {
    prop_oneof![
        vec(any::<u8>(), 0..=4 * len + 1)
            .prop_filter("wrong length", move |v| v.len() != 2 * len)
            .prop_map(Hostile::Length),
        (0..2 * len, 1..=255u8).prop_map(|(i, x)| Hostile::OffCurve(i, x)),
        (any::<bool>(), any::<bool>(), vec(any::<u8>(), 2 * len)).prop_map(|(x, y, rest)| {
            // At least one zero coordinate.
            Hostile::Zero {
                x: x || !y,
                y,
                rest,
            }
        }),
        (any::<bool>(), vec(any::<u8>(), len), any::<bool>())
            .prop_map(|(y, k, plus_valid)| Hostile::Unreduced { y, k, plus_valid }),
    ]
}

fn apply(h: &Hostile, valid: &[u8], p: &[u8]) -> Vec<u8> {
    let len = p.len();
    match h {
        Hostile::Length(v) => v.clone(),
        Hostile::OffCurve(i, x) => {
            let mut v = valid.to_vec();
            v[*i] ^= x;
            v
        }
        Hostile::Zero { x, y, rest } => {
            let mut v = rest.clone();
            if *x {
                v[..len].fill(0);
            }
            if *y {
                v[len..].fill(0);
            }
            v
        }
        Hostile::Unreduced { y, k, plus_valid } => {
            let range = if *y { len..2 * len } else { 0..len };
            let mut v = valid.to_vec();
            let replaced = if *plus_valid {
                add_be(&valid[range.clone()], p)
            } else {
                None
            };
            let replaced = replaced.unwrap_or_else(|| {
                // k / 4 < 2^(8·len − 2) <= 2^(8·len) − p for all three primes.
                let mut quarter = k.clone();
                let mut carry = 0u8;
                for b in &mut quarter {
                    let next = *b & 3;
                    *b = (*b >> 2) | (carry << 6);
                    carry = next;
                }
                add_be(&quarter, p).expect("p + k/4 fits")
            });
            v[range].copy_from_slice(&replaced);
            v
        }
    }
}

/// Every hostile Brainpool payload is refused with `InvalidPublicKey` in
/// both roles — never a panic, never a secret.
#[test]
fn brainpool_refuses_hostile_points_in_both_roles() {
    for (g, p) in BRAINPOOL {
        let p = hex_bytes(p);
        let len = p.len();
        let initiator = ke::generate(g, &mut SystemRng).unwrap();
        let (valid, _) = ke::respond(g, initiator.public_key(), &mut SystemRng).unwrap();
        runner(48)
            .run(&hostile(len), |h| {
                let peer = apply(&h, &valid, &p);
                prop_assert_eq!(
                    initiator.shared_secret(&peer),
                    Err(CryptoError::InvalidPublicKey)
                );
                prop_assert_eq!(
                    ke::respond(g, &peer, &mut Counter(1)).map(|_| ()),
                    Err(CryptoError::InvalidPublicKey)
                );
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{g:?}: {e}"));
    }
}

/// Every encapsulation key whose coefficients are all below q is accepted
/// (FIPS 203 §7.2 asks for no more), whatever its rho.
#[test]
fn mlkem_accepts_every_reduced_encapsulation_key() {
    for (g, k) in [
        (group::ML_KEM_512, 2usize),
        (group::ML_KEM_768, 3),
        (group::ML_KEM_1024, 4),
    ] {
        let strategy = (vec(0..3329u16, 256 * k), vec(any::<u8>(), 32));
        runner(16)
            .run(&strategy, |(coeffs, rho)| {
                let mut ek = Vec::with_capacity(384 * k + 32);
                for pair in coeffs.chunks_exact(2) {
                    let (a, b) = (pair[0], pair[1]);
                    ek.push(a as u8);
                    ek.push(((a >> 8) as u8) | (((b & 0x0f) as u8) << 4));
                    ek.push((b >> 4) as u8);
                }
                ek.extend_from_slice(&rho);
                let (ct, secret) = ke::respond(g, &ek, &mut SystemRng).unwrap();
                prop_assert_eq!(secret.len(), 32);
                prop_assert!(!ct.is_empty());
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{g:?}: {e}"));
    }
}
