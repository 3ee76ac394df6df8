//! Property tests: `IkeCipher::open` is fed hostile bytes straight from the
//! network, so it must return an error rather than panic on any input, and
//! seal → open must round-trip.

use oxisec_crypto::ike_cipher::{IkeCipher, IkeSuite};
use oxisec_crypto::{CryptoError, Rng, Secret};
use oxisec_wire::{TransformId, encr, integ};
use proptest::prelude::*;

struct SeqRng(u8);
impl Rng for SeqRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 = self.0.wrapping_mul(5).wrapping_add(3);
            *b = self.0;
        }
    }
}

/// Every suite `IkeCipher` implements.
fn suites() -> Vec<IkeSuite> {
    let aead = |e: TransformId, bits| IkeSuite {
        encr: e,
        encr_key_bits: bits,
        integ: None,
    };
    let split = |e: TransformId, bits, i| IkeSuite {
        encr: e,
        encr_key_bits: bits,
        integ: Some(i),
    };
    let integs = [
        integ::HMAC_SHA2_256_128,
        integ::HMAC_SHA2_384_192,
        integ::HMAC_SHA2_512_256,
        integ::AES_XCBC_96,
        integ::AES_CMAC_96,
        integ::HMAC_SHA1_96,
    ];
    let mut v = vec![aead(encr::CHACHA20_POLY1305, None)];
    for bits in [128, 192, 256] {
        for e in [
            encr::AES_GCM_16,
            encr::AES_GCM_12,
            encr::AES_GCM_8,
            encr::AES_CCM_16,
            encr::AES_CCM_12,
            encr::AES_CCM_8,
        ] {
            v.push(aead(e, Some(bits)));
        }
        for i in integs {
            v.push(split(encr::AES_CBC, Some(bits), i));
            v.push(split(encr::AES_CTR, Some(bits), i));
        }
    }
    for i in integs {
        v.push(split(encr::TRIPLE_DES, None, i));
    }
    v
}

fn pick(i: prop::sample::Index) -> IkeSuite {
    let all = suites();
    all[i.index(all.len())]
}

fn cipher(suite: IkeSuite, seed: u8) -> IkeCipher {
    // Distinct bytes: a 3DES key of three equal DES keys is refused.
    let ek = Secret::new(
        (0..suite.encr_key_len())
            .map(|i| seed.wrapping_add(i as u8))
            .collect(),
    );
    let ik = Secret::new(vec![seed ^ 0x5a; suite.integ_key_len()]);
    IkeCipher::new(suite, &ek, &ik).unwrap()
}

proptest! {
    #[test]
    fn open_never_panics_on_arbitrary_bytes(
        suite in any::<prop::sample::Index>(),
        msg in proptest::collection::vec(any::<u8>(), 0..300),
        offset in 0..320usize,
    ) {
        let c = cipher(pick(suite), 1);
        // Random bytes essentially never carry a valid ICV.
        prop_assert!(c.open(&msg, offset).is_err());
    }

    #[test]
    fn seal_open_round_trip(
        suite in any::<prop::sample::Index>(),
        header in proptest::collection::vec(any::<u8>(), 0..40),
        plaintext in proptest::collection::vec(any::<u8>(), 0..200),
        rng_seed in any::<u8>(),
    ) {
        let c = cipher(pick(suite), 2);
        let mut msg = header.clone();
        msg.resize(header.len() + c.body_len(plaintext.len()), 0);
        c.seal(&mut SeqRng(rng_seed), &mut msg, header.len(), &plaintext).unwrap();
        prop_assert_eq!(&msg[..header.len()], &header[..]);
        let opened = c.open(&msg, header.len()).unwrap();
        prop_assert_eq!(opened.as_bytes(), &plaintext[..]);
    }

    #[test]
    fn damaged_messages_are_rejected_without_panic(
        suite in any::<prop::sample::Index>(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..100),
        flip_at in any::<prop::sample::Index>(),
        flip in 1..=255u8,
        cut in any::<prop::sample::Index>(),
    ) {
        let c = cipher(pick(suite), 3);
        let header = [0x21u8; 32];
        let mut msg = header.to_vec();
        msg.resize(header.len() + c.body_len(plaintext.len()), 0);
        c.seal(&mut SeqRng(9), &mut msg, header.len(), &plaintext).unwrap();

        let mut flipped = msg.clone();
        flipped[flip_at.index(msg.len())] ^= flip;
        prop_assert_eq!(c.open(&flipped, 32).err(), Some(CryptoError::IntegrityCheckFailed));

        let truncated = &msg[..cut.index(msg.len())];
        prop_assert!(c.open(truncated, 32).is_err());
    }
}
