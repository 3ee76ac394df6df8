//! Finite-field Diffie-Hellman over the MODP groups of RFC 2409 (group 2) and
//! RFC 3526 (groups 5, 14–18), generator 2, on crypto-bigint's constant-time
//! Montgomery arithmetic.
//!
//! ## Private exponent size
//! The exponent is drawn with a fixed bit length of at least twice the
//! group's security strength (NIST SP 800-56A Rev. 3 §5.6.1.1.4 with the
//! strengths of SP 800-57 Part 1 Table 2 for these "safe-prime" groups:
//! 2048 → 112, 3072 → 128, 4096 → 152, 6144 → 176, 8192 → 200 bits), rounded up
//! to whole 64-bit words; RFC 3526 §8 gives the same order of magnitude. A
//! full-size exponent buys no security (the best attacks on the group are
//! cheaper than on a 2s-bit exponent) and would make each exponentiation 4–18
//! times slower. The exponentiation runs over exactly that many bits whatever
//! the exponent's value, so its timing reveals only the (public) size.
//!
//! ## Peer validation
//! The primes are safe primes (p = 2q + 1), so the only small subgroups are
//! {1} and {1, p-1}; RFC 6989 §2.1 asks for exactly the check 1 < y < p-1,
//! which with the exact length check is what [`ModpShare::shared_secret`]
//! does before any arithmetic.
use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U512, U1024, U1536, U2048, U3072, U4096, U6144, U8192, Uint};
use oxisec_wire::{TransformId, ke};
use zeroize::Zeroize;

use super::{BAD_RNG, KEYGEN_ATTEMPTS, KeyExchange};
use crate::{CryptoError, Rng, Secret};

/// `base^exponent mod p` over `exp_bits` bits of the exponent, `base = None`
/// meaning the generator 2; validates a peer's base first.
type PowFn = fn(&'static str, Option<&[u8]>, &U512, u32) -> Result<Secret, CryptoError>;

pub(super) struct ModpGroup {
    id: TransformId,
    /// Bytes of the prime, of public values and of the shared secret.
    len: usize,
    /// Big-endian hex of the prime, exactly `2 * len` digits.
    prime: &'static str,
    /// Private exponent size in bits (a multiple of 64, at most 512).
    exp_bits: u32,
    pow: PowFn,
}

/// Room for the largest private exponent.
const EXP_BYTES: usize = 64;

static GROUPS: [ModpGroup; 7] = [
    ModpGroup {
        id: ke::MODP_1024,
        len: 128,
        prime: MODP_1024_PRIME,
        exp_bits: 256,
        pow: pow_mod::<{ U1024::LIMBS }>,
    },
    ModpGroup {
        id: ke::MODP_1536,
        len: 192,
        prime: MODP_1536_PRIME,
        exp_bits: 256,
        pow: pow_mod::<{ U1536::LIMBS }>,
    },
    ModpGroup {
        id: ke::MODP_2048,
        len: 256,
        prime: MODP_2048_PRIME,
        exp_bits: 256,
        pow: pow_mod::<{ U2048::LIMBS }>,
    },
    ModpGroup {
        id: ke::MODP_3072,
        len: 384,
        prime: MODP_3072_PRIME,
        exp_bits: 256,
        pow: pow_mod::<{ U3072::LIMBS }>,
    },
    ModpGroup {
        id: ke::MODP_4096,
        len: 512,
        prime: MODP_4096_PRIME,
        exp_bits: 320,
        pow: pow_mod::<{ U4096::LIMBS }>,
    },
    ModpGroup {
        id: ke::MODP_6144,
        len: 768,
        prime: MODP_6144_PRIME,
        exp_bits: 384,
        pow: pow_mod::<{ U6144::LIMBS }>,
    },
    ModpGroup {
        id: ke::MODP_8192,
        len: 1024,
        prime: MODP_8192_PRIME,
        exp_bits: 448,
        pow: pow_mod::<{ U8192::LIMBS }>,
    },
];

fn group_for(id: TransformId) -> Option<&'static ModpGroup> {
    GROUPS.iter().find(|g| g.id == id)
}

pub(super) fn is_supported(id: TransformId) -> bool {
    group_for(id).is_some()
}

/// `Ok(None)` if `id` is not a MODP group.
pub(super) fn generate(
    id: TransformId,
    rng: &mut dyn Rng,
) -> Result<Option<ModpShare>, CryptoError> {
    let Some(group) = group_for(id) else {
        return Ok(None);
    };
    let exp_len = group.exp_bits as usize / 8;
    let mut exponent = Secret::new(vec![0u8; EXP_BYTES]);
    let mut found = false;
    for _ in 0..KEYGEN_ATTEMPTS {
        let bytes = exponent.as_mut_bytes();
        rng.fill(&mut bytes[EXP_BYTES - exp_len..]);
        // x >= 2: x = 0 and x = 1 give the public values 1 and 2.
        let high = bytes[..EXP_BYTES - 1].iter().fold(0u8, |acc, b| acc | b);
        if high != 0 || bytes[EXP_BYTES - 1] > 1 {
            found = true;
            break;
        }
    }
    if !found {
        return Err(BAD_RNG);
    }
    let share = ModpShare {
        group,
        public: Vec::new(),
        exponent,
    };
    let public = share.pow(None)?;
    Ok(Some(ModpShare {
        public: public.as_bytes().to_vec(),
        ..share
    }))
}

pub(super) struct ModpShare {
    group: &'static ModpGroup,
    /// Big-endian, left-padded to `EXP_BYTES`; zeroized on drop.
    exponent: Secret,
    public: Vec<u8>,
}

impl ModpShare {
    fn pow(&self, base: Option<&[u8]>) -> Result<Secret, CryptoError> {
        let mut x = U512::from_be_slice(self.exponent.as_bytes());
        let result = (self.group.pow)(self.group.prime, base, &x, self.group.exp_bits);
        x.zeroize();
        result
    }
}

impl core::fmt::Debug for ModpShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ModpShare")
            .field("group", &self.group.id)
            .finish_non_exhaustive()
    }
}

impl KeyExchange for ModpShare {
    fn group(&self) -> TransformId {
        self.group.id
    }
    fn public_key(&self) -> &[u8] {
        &self.public
    }
    fn shared_secret(&self, peer_public: &[u8]) -> Result<Secret, CryptoError> {
        // Checked here as well as in `pow_mod` so that the length rule does
        // not depend on the limb arithmetic.
        if peer_public.len() != self.group.len {
            return Err(CryptoError::InvalidPublicKey);
        }
        self.pow(Some(peer_public))
    }
}

fn pow_mod<const LIMBS: usize>(
    prime: &'static str,
    base: Option<&[u8]>,
    exponent: &U512,
    exp_bits: u32,
) -> Result<Secret, CryptoError> {
    let p = Odd::<Uint<LIMBS>>::from_be_hex(prime);
    let base = match base {
        None => Uint::<LIMBS>::from_u8(2),
        Some(bytes) => {
            if bytes.len() != Uint::<LIMBS>::BYTES {
                return Err(CryptoError::InvalidPublicKey);
            }
            let y = Uint::<LIMBS>::from_be_slice(bytes);
            let p_minus_1 = p.as_ref().wrapping_sub(&Uint::ONE);
            // Public values: comparing in variable time leaks nothing.
            if y <= Uint::ONE || y >= p_minus_1 {
                return Err(CryptoError::InvalidPublicKey);
            }
            y
        }
    };
    // The modulus is public, so the parameters may be computed in variable time.
    let params = FixedMontyParams::new_vartime(p);
    let base = FixedMontyForm::new(&base, &params);
    let mut power = base.pow_bounded_exp(exponent, exp_bits);
    let mut value = power.retrieve();
    let mut encoded = value.to_be_bytes();
    // Uint::BYTES is the prime's length for every group here, so this is
    // already left-padded with zeros to the prime length (RFC 7296 §3.4).
    let out = Secret::from_slice(encoded.as_ref());
    encoded.zeroize();
    value.zeroize();
    power.zeroize();
    Ok(out)
}

// The primes of RFC 2409 §6.2 (group 2) and RFC 3526 §2–§7 (groups 5, 14–18),
// p = 2^N - 2^(N-64) - 1 + 2^64 * (floor(2^(N-130) pi) + k).

const MODP_1024_PRIME: &str = "\
    FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
    020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437\
    4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED\
    EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF";

const MODP_1536_PRIME: &str = "\
    FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
    020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437\
    4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED\
    EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05\
    98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB\
    9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF";

const MODP_2048_PRIME: &str = "\
    FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
    020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437\
    4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED\
    EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05\
    98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB\
    9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B\
    E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718\
    3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF";

const MODP_3072_PRIME: &str = "\
    FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
    020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437\
    4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED\
    EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05\
    98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB\
    9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B\
    E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718\
    3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33\
    A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7\
    ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864\
    D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2\
    08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF";

const MODP_4096_PRIME: &str = "\
    FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
    020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437\
    4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED\
    EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05\
    98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB\
    9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B\
    E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718\
    3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33\
    A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7\
    ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864\
    D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2\
    08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7\
    88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8\
    DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2\
    233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9\
    93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF";

const MODP_6144_PRIME: &str = "\
    FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
    020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437\
    4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED\
    EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05\
    98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB\
    9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B\
    E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718\
    3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33\
    A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7\
    ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864\
    D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2\
    08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7\
    88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8\
    DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2\
    233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9\
    93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C93402849236C3FAB4D27C7026\
    C1D4DCB2602646DEC9751E763DBA37BDF8FF9406AD9E530EE5DB382F413001AE\
    B06A53ED9027D831179727B0865A8918DA3EDBEBCF9B14ED44CE6CBACED4BB1B\
    DB7F1447E6CC254B332051512BD7AF426FB8F401378CD2BF5983CA01C64B92EC\
    F032EA15D1721D03F482D7CE6E74FEF6D55E702F46980C82B5A84031900B1C9E\
    59E7C97FBEC7E8F323A97A7E36CC88BE0F1D45B7FF585AC54BD407B22B4154AA\
    CC8F6D7EBF48E1D814CC5ED20F8037E0A79715EEF29BE32806A1D58BB7C5DA76\
    F550AA3D8A1FBFF0EB19CCB1A313D55CDA56C9EC2EF29632387FE8D76E3C0468\
    043E8F663F4860EE12BF2D5B0B7474D6E694F91E6DCC4024FFFFFFFFFFFFFFFF";

const MODP_8192_PRIME: &str = "\
    FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
    020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437\
    4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED\
    EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05\
    98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB\
    9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B\
    E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718\
    3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33\
    A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7\
    ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864\
    D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2\
    08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7\
    88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8\
    DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2\
    233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9\
    93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C93402849236C3FAB4D27C7026\
    C1D4DCB2602646DEC9751E763DBA37BDF8FF9406AD9E530EE5DB382F413001AE\
    B06A53ED9027D831179727B0865A8918DA3EDBEBCF9B14ED44CE6CBACED4BB1B\
    DB7F1447E6CC254B332051512BD7AF426FB8F401378CD2BF5983CA01C64B92EC\
    F032EA15D1721D03F482D7CE6E74FEF6D55E702F46980C82B5A84031900B1C9E\
    59E7C97FBEC7E8F323A97A7E36CC88BE0F1D45B7FF585AC54BD407B22B4154AA\
    CC8F6D7EBF48E1D814CC5ED20F8037E0A79715EEF29BE32806A1D58BB7C5DA76\
    F550AA3D8A1FBFF0EB19CCB1A313D55CDA56C9EC2EF29632387FE8D76E3C0468\
    043E8F663F4860EE12BF2D5B0B7474D6E694F91E6DBE115974A3926F12FEE5E4\
    38777CB6A932DF8CD8BEC4D073B931BA3BC832B68D9DD300741FA7BF8AFC47ED\
    2576F6936BA424663AAB639C5AE4F5683423B4742BF1C978238F16CBE39D652D\
    E3FDB8BEFC848AD922222E04A4037C0713EB57A81A23F0C73473FC646CEA306B\
    4BCBC8862F8385DDFA9D4B7FA2C087E879683303ED5BDD3A062B3CF5B3A278A6\
    6D2A13F83F44F82DDF310EE074AB6A364597E899A0255DC164F31CC50846851D\
    F9AB48195DED7EA1B1D510BD7EE74D73FAF36BC31ECFA268359046F4EB879F92\
    4009438B481C6CD7889A002ED5EE382BC9190DA6FC026E479558E4475677E9AA\
    9E3050E2765694DFC81F56E880B96E7160C980DD98EDD3DFFFFFFFFFFFFFFFFF";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for g in &GROUPS {
            assert_eq!(g.prime.len(), 2 * g.len, "{:?}", g.id);
            assert_eq!(g.exp_bits % 64, 0);
            assert!(g.exp_bits as usize <= 8 * EXP_BYTES);
            // At least twice the security strength (SP 800-57 Part 1).
            let strength = match g.len * 8 {
                1024 => 80,
                1536 => 96,
                2048 => 112,
                3072 => 128,
                4096 => 152,
                6144 => 176,
                8192 => 200,
                other => panic!("unexpected prime size {other}"),
            };
            assert!(g.exp_bits >= 2 * strength, "{:?}", g.id);
            // Parses as an odd number of exactly that size, top bit set.
            assert!(g.prime.starts_with("FFFFFFFFFFFFFFFF"));
            assert!(g.prime.ends_with("FFFFFFFFFFFFFFFF"));
        }
    }

    struct Counter(u64);
    impl Rng for Counter {
        fn fill(&mut self, dest: &mut [u8]) {
            for b in dest {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *b = (self.0 >> 56) as u8;
            }
        }
    }

    struct Zeros;
    impl Rng for Zeros {
        fn fill(&mut self, dest: &mut [u8]) {
            dest.fill(0);
        }
    }

    #[test]
    fn both_sides_agree_in_every_group() {
        let mut rng = Counter(1);
        for g in &GROUPS {
            let a = generate(g.id, &mut rng).unwrap().unwrap();
            let b = generate(g.id, &mut rng).unwrap().unwrap();
            assert_eq!(a.public_key().len(), g.len);
            let ab = a.shared_secret(b.public_key()).unwrap();
            assert_eq!(ab.len(), g.len);
            assert_eq!(ab, b.shared_secret(a.public_key()).unwrap(), "{:?}", g.id);
        }
    }

    #[test]
    fn rejects_degenerate_and_out_of_range_values() {
        let g = group_for(ke::MODP_2048).unwrap();
        let a = generate(g.id, &mut Counter(2)).unwrap().unwrap();
        let p = hex_bytes(g.prime);
        let small = |v: u8| {
            let mut x = vec![0u8; g.len];
            x[g.len - 1] = v;
            x
        };
        let mut p_minus_1 = p.clone();
        p_minus_1[g.len - 1] -= 1;
        let mut p_minus_2 = p.clone();
        p_minus_2[g.len - 1] -= 2;
        let ones = vec![0xff; g.len];
        for bad in [small(0), small(1), p_minus_1, p.clone(), ones] {
            assert_eq!(a.shared_secret(&bad), Err(CryptoError::InvalidPublicKey));
        }
        // The extremes of the valid range are accepted.
        assert!(a.shared_secret(&small(2)).is_ok());
        assert!(a.shared_secret(&p_minus_2).is_ok());
        // Lengths: short (even if the value is fine), long, empty.
        let good = generate(g.id, &mut Counter(3)).unwrap().unwrap();
        let good = good.public_key();
        assert!(a.shared_secret(good).is_ok());
        for bad in [
            &good[1..],
            &[good, &[0][..]].concat()[..],
            &[0u8, 2][..],
            &[][..],
        ] {
            assert_eq!(a.shared_secret(bad), Err(CryptoError::InvalidPublicKey));
        }
    }

    #[test]
    fn exponent_never_zero_or_one() {
        assert_eq!(generate(ke::MODP_2048, &mut Zeros).err(), Some(BAD_RNG));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let a = generate(ke::MODP_2048, &mut Counter(4)).unwrap().unwrap();
        assert_eq!(format!("{a:?}"), "ModpShare { group: TransformId(14), .. }");
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
