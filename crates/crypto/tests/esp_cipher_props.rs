//! Property tests for `EspCipher`, over every implemented suite with and
//! without ESN: `open` gets hostile bytes from the network and must return
//! an error rather than panic; seal → open round-trips; any damage to a
//! sealed packet, or the wrong sequence number, is refused.
use oxisec_crypto::esp_cipher::{EspCipher, EspSuite};
use oxisec_crypto::{CryptoError, Secret};
use oxisec_wire::{encr, integ};
use proptest::prelude::*;

fn suites() -> Vec<EspSuite> {
    let s = |encr, encr_key_bits, integ, esn| EspSuite {
        encr,
        encr_key_bits,
        integ,
        esn,
    };
    let integs = [
        integ::HMAC_SHA2_256_128,
        integ::HMAC_SHA2_384_192,
        integ::HMAC_SHA2_512_256,
        integ::AES_XCBC_96,
        integ::AES_CMAC_96,
        integ::HMAC_SHA1_96,
    ];
    let mut v = vec![];
    for esn in [false, true] {
        v.push(s(encr::CHACHA20_POLY1305, None, None, esn));
        for bits in [128, 192, 256] {
            for e in [
                encr::AES_GCM_16,
                encr::AES_GCM_12,
                encr::AES_GCM_8,
                encr::AES_CCM_16,
                encr::AES_CCM_12,
                encr::AES_CCM_8,
            ] {
                v.push(s(e, Some(bits), None, esn));
            }
            for i in integs {
                v.push(s(encr::AES_CBC, Some(bits), Some(i), esn));
                v.push(s(encr::AES_CTR, Some(bits), Some(i), esn));
            }
        }
        for i in integs {
            v.push(s(encr::TRIPLE_DES, None, Some(i), esn));
            v.push(s(encr::NULL, None, Some(i), esn));
        }
    }
    v
}

fn pick(i: prop::sample::Index) -> EspSuite {
    let all = suites();
    all[i.index(all.len())]
}

fn cipher(s: EspSuite, seed: u8) -> EspCipher {
    let km = (0..s.keymat_len())
        .map(|i| seed.wrapping_add((i as u8).wrapping_mul(13)))
        .collect();
    EspCipher::new(s, &Secret::new(km)).unwrap()
}

/// A packet for `payload` (padded with zeros to the suite's alignment).
fn packet(s: EspSuite, seq: u64, payload: &[u8]) -> Vec<u8> {
    let len = payload.len().next_multiple_of(s.block_align());
    let mut p = 0xc0de_0001u32.to_be_bytes().to_vec();
    p.extend_from_slice(&(seq as u32).to_be_bytes());
    p.resize(8 + s.iv_len(), 0);
    p.extend_from_slice(payload);
    p.resize(8 + s.iv_len() + len + s.icv_len(), 0);
    p
}

#[test]
fn suite_list_is_complete() {
    for s in suites() {
        s.validate().unwrap();
    }
    assert_eq!(suites().len(), 2 * (1 + 3 * (6 + 12) + 12));
}

proptest! {
    #[test]
    fn open_never_panics_on_arbitrary_bytes(
        suite in any::<prop::sample::Index>(),
        mut bytes in proptest::collection::vec(any::<u8>(), 0..200),
        seq in any::<u64>(),
    ) {
        let c = cipher(pick(suite), 1);
        // Random bytes essentially never carry a valid ICV.
        prop_assert!(c.open(seq, &mut bytes).is_err());
    }

    #[test]
    fn seal_open_round_trip(
        suite in any::<prop::sample::Index>(),
        payload in proptest::collection::vec(any::<u8>(), 0..150),
        seq in 1..u64::MAX,
    ) {
        let s = pick(suite);
        let c = cipher(s, 2);
        let mut p = packet(s, seq, &payload);
        let orig = p.clone();
        c.seal(seq, &mut p).unwrap();
        prop_assert_eq!(&p[..8], &orig[..8]);
        c.open(seq, &mut p).unwrap();
        let head = 8 + s.iv_len();
        prop_assert_eq!(&p[head..head + payload.len()], &payload[..]);
    }

    #[test]
    fn damaged_packets_are_rejected_without_panic(
        suite in any::<prop::sample::Index>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        flip_at in any::<prop::sample::Index>(),
        flip in 1..=255u8,
        cut in any::<prop::sample::Index>(),
        seq in 1..u64::MAX,
        wrong_high in 1..u32::MAX,
    ) {
        let s = pick(suite);
        let c = cipher(s, 3);
        let mut p = packet(s, seq, &payload);
        c.seal(seq, &mut p).unwrap();

        let mut flipped = p.clone();
        flipped[flip_at.index(p.len())] ^= flip;
        prop_assert_eq!(c.open(seq, &mut flipped), Err(CryptoError::IntegrityCheckFailed));

        let mut truncated = p[..cut.index(p.len())].to_vec();
        prop_assert!(c.open(seq, &mut truncated).is_err());

        // A different high half of the sequence number: refused with ESN,
        // and irrelevant without it (it is not sent and not authenticated).
        let other = seq ^ (u64::from(wrong_high) << 32);
        let result = c.open(other, &mut p.clone());
        if s.esn {
            prop_assert_eq!(result, Err(CryptoError::IntegrityCheckFailed));
        } else {
            prop_assert!(result.is_ok());
        }
    }
}
