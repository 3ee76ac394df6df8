//! Published ESP vectors run through `EspCipher` (data files in `vectors/esp_*.txt`,
//! each naming its source), plus checks of `seal` against aws-lc-rs used
//! directly, so that the AAD, nonce and ICV layout are verified independently
//! of the code under test.
use std::collections::HashMap;

use aws_lc_rs::{aead, hmac};
use oxisec_crypto::{
    CryptoError, Secret,
    esp_cipher::{EspCipher, EspSuite},
};
use oxisec_wire::{TransformId, encr, integ};

type Vector = HashMap<String, String>;

/// `key = value` blocks separated by blank lines; `#` comments; indented lines
/// continue the previous value.
fn parse(text: &str) -> Vec<Vector> {
    let mut out = vec![];
    let mut cur = Vector::new();
    let mut last = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') {
            continue;
        }
        if t.is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            cur.get_mut(&last).unwrap().push_str(t);
            continue;
        }
        let (k, v) = t.split_once('=').unwrap();
        last = k.trim().to_string();
        cur.insert(last.clone(), v.trim().to_string());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn suite(encr: TransformId, bits: Option<u16>, integ: Option<TransformId>, esn: bool) -> EspSuite {
    EspSuite {
        encr,
        encr_key_bits: bits,
        integ,
        esn,
    }
}

/// Runs AEAD decryption vectors: `open` must accept the packet and yield the
/// plaintext, and must reject it under a neighbouring sequence number.
fn aead_vectors(text: &str, encr: TransformId) -> usize {
    let vectors = parse(text);
    for v in &vectors {
        let name = &v["name"];
        let keymat = unhex(&v["key"]);
        let esn = v["seq"].len() == 16;
        let seq = u64::from_str_radix(&v["seq"], 16).unwrap();
        let bits = if encr == encr::CHACHA20_POLY1305 {
            None
        } else {
            Some(((keymat.len() - 4) * 8) as u16)
        };
        let s = suite(encr, bits, None, esn);
        s.validate().unwrap();
        let c = EspCipher::new(s, &Secret::new(keymat)).unwrap();
        let packet = unhex(&v["packet"]);
        let plaintext = unhex(&v["plaintext"]);

        let mut p = packet.clone();
        c.open(seq, &mut p)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(p[16..p.len() - 16], plaintext[..], "{name}");

        // The sequence number enters the AAD: the header's low half as sent,
        // and with ESN the high half the receiver infers.
        let mut p = packet.clone();
        p[7] ^= 1;
        assert_eq!(
            c.open(seq ^ 1, &mut p),
            Err(CryptoError::IntegrityCheckFailed),
            "{name}"
        );
        if esn {
            let mut p = packet.clone();
            assert_eq!(
                c.open(seq ^ (1 << 32), &mut p),
                Err(CryptoError::IntegrityCheckFailed),
                "{name}"
            );
        }
    }
    vectors.len()
}

#[test]
fn aes_gcm_draft_mcgrew_gcm_test_01() {
    let n = aead_vectors(
        include_str!("vectors/esp_aes_gcm_mcgrew.txt"),
        encr::AES_GCM_16,
    );
    assert_eq!(n, 14);
}

#[test]
fn chacha20_poly1305_rfc7634_appendix_a() {
    let n = aead_vectors(
        include_str!("vectors/esp_chacha20poly1305_rfc7634.txt"),
        encr::CHACHA20_POLY1305,
    );
    assert_eq!(n, 1);
}

/// RFC 3602 cases carry no ICV. Append one computed with aws-lc-rs HMAC
/// directly, then `open` must verify it and decrypt to the RFC's plaintext.
#[test]
fn aes_cbc_rfc3602_cases_5_to_8() {
    let vectors = parse(include_str!("vectors/esp_aes_cbc_rfc3602.txt"));
    assert_eq!(vectors.len(), 4);
    let ikey = [0x5a; 32];
    for v in vectors {
        let name = &v["name"];
        let key = unhex(&v["key"]);
        let s = suite(
            encr::AES_CBC,
            Some((key.len() * 8) as u16),
            Some(integ::HMAC_SHA2_256_128),
            false,
        );
        let mut km = key.clone();
        km.extend_from_slice(&ikey);
        let c = EspCipher::new(s, &Secret::new(km)).unwrap();
        let seq: u64 = v["seq"].parse().unwrap();
        let mut p = unhex(&v["packet"]);
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &ikey), &p);
        p.extend_from_slice(&tag.as_ref()[..16]);
        c.open(seq, &mut p)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(p[24..p.len() - 16], unhex(&v["plaintext"])[..], "{name}");
        assert_eq!(
            *p.get(p.len() - 17).unwrap(),
            v["next_header"].parse::<u8>().unwrap()
        );
    }
}

fn header(spi: u32, seq: u64, iv_len: usize, payload: &[u8], icv_len: usize) -> Vec<u8> {
    let mut p = spi.to_be_bytes().to_vec();
    p.extend_from_slice(&(seq as u32).to_be_bytes());
    p.extend(std::iter::repeat_n(0, iv_len));
    p.extend_from_slice(payload);
    p.extend(std::iter::repeat_n(0, icv_len));
    p
}

/// `seal` output opened by aws-lc-rs with the RFC 4106 / RFC 7634 nonce and
/// AAD built here by hand.
#[test]
fn aead_seal_matches_rfc4106_layout() {
    let cases: [(TransformId, Option<u16>, &aead::Algorithm, usize); 4] = [
        (encr::AES_GCM_16, Some(128), &aead::AES_128_GCM, 16),
        (encr::AES_GCM_16, Some(192), &aead::AES_192_GCM, 24),
        (encr::AES_GCM_16, Some(256), &aead::AES_256_GCM, 32),
        (encr::CHACHA20_POLY1305, None, &aead::CHACHA20_POLY1305, 32),
    ];
    for (e, bits, alg, key_len) in cases {
        for esn in [false, true] {
            let s = suite(e, bits, None, esn);
            let keymat: Vec<u8> = (0..key_len as u8 + 4).collect();
            let c = EspCipher::new(s, &Secret::new(keymat.clone())).unwrap();
            let seq = 0x0000_0009_8000_0001u64;
            let payload: Vec<u8> = (0..40u8).collect();
            let mut p = header(0xc0ffee01, seq, 8, &payload, 16);
            c.seal(seq, &mut p).unwrap();
            assert_eq!(p[8..16], seq.to_be_bytes(), "IV = sequence number");

            let mut nonce = [0u8; 12];
            nonce[..4].copy_from_slice(&keymat[key_len..]);
            nonce[4..].copy_from_slice(&p[8..16]);
            let mut aad = 0xc0ffee01u32.to_be_bytes().to_vec();
            if esn {
                aad.extend_from_slice(&((seq >> 32) as u32).to_be_bytes());
            }
            aad.extend_from_slice(&(seq as u32).to_be_bytes());
            let key =
                aead::LessSafeKey::new(aead::UnboundKey::new(alg, &keymat[..key_len]).unwrap());
            let mut ct = p[16..].to_vec();
            let pt = key
                .open_in_place(
                    aead::Nonce::assume_unique_for_key(nonce),
                    aead::Aad::from(&aad),
                    &mut ct,
                )
                .unwrap();
            assert_eq!(pt, &payload[..]);
        }
    }
}

/// `seal` output checked by hand: HMAC over SPI ‖ seq ‖ IV ‖ ciphertext, with
/// the ESN high half appended to the MAC input only, truncated per RFC 4868.
#[test]
fn cbc_seal_matches_rfc4303_icv_layout() {
    let macs = [
        (integ::HMAC_SHA2_256_128, hmac::HMAC_SHA256, 32, 16),
        (integ::HMAC_SHA2_384_192, hmac::HMAC_SHA384, 48, 24),
        (integ::HMAC_SHA2_512_256, hmac::HMAC_SHA512, 64, 32),
    ];
    for bits in [128u16, 192, 256] {
        for (i, alg, ik_len, icv_len) in macs {
            for esn in [false, true] {
                let s = suite(encr::AES_CBC, Some(bits), Some(i), esn);
                let ek_len = bits as usize / 8;
                let keymat: Vec<u8> = (0..(ek_len + ik_len) as u8).collect();
                let c = EspCipher::new(s, &Secret::new(keymat.clone())).unwrap();
                let seq = 0x0000_0002_0000_0003u64;
                let mut p = header(7, seq, 16, &[0xab; 32], icv_len);
                c.seal(seq, &mut p).unwrap();
                let body = p.len() - icv_len;
                let mut ctx = hmac::Context::with_key(&hmac::Key::new(alg, &keymat[ek_len..]));
                ctx.update(&p[..body]);
                if esn {
                    ctx.update(&2u32.to_be_bytes());
                }
                assert_eq!(&ctx.sign().as_ref()[..icv_len], &p[body..], "{s:?}");
                c.open(seq, &mut p).unwrap();
                assert_eq!(p[24..body], [0xab; 32]);
            }
        }
    }
}
