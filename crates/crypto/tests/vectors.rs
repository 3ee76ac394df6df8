//! Published test vectors (and the MODP known answers), read from the data
//! files in `tests/vectors/`; each file names its source in its header.
//!
//! File format: `#` comments, optional `[section]` lines, and records of
//! `name = hex` lines separated by blank lines.

use oxisec_crypto::ike_cipher::{IkeCipher, IkeSuite};
use oxisec_crypto::kdf::{self, IkeKeySizes};
use oxisec_crypto::ke::{self, KeyExchange};
use oxisec_crypto::prf::Prf;
use oxisec_crypto::{CryptoError, Rng, Secret};
use oxisec_wire::{TransformId, encr, integ, ke as group};

struct Record {
    section: String,
    fields: Vec<(String, String)>,
}

impl Record {
    fn str(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("field {name} missing in [{}]", self.section))
    }
    fn hex(&self, name: &str) -> Vec<u8> {
        hex::decode(self.str(name)).unwrap_or_else(|e| panic!("field {name}: {e}"))
    }
    fn num(&self, name: &str) -> usize {
        self.str(name).parse().expect("decimal field")
    }
}

fn load(file: &str) -> Vec<Record> {
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut records = Vec::new();
    let mut section = String::new();
    let mut fields = Vec::new();
    for line in text.lines().chain([""]) {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            if !fields.is_empty() {
                records.push(Record {
                    section: section.clone(),
                    fields: std::mem::take(&mut fields),
                });
            }
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
        } else {
            let (k, v) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("bad line {line}"));
            fields.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    assert!(!records.is_empty(), "{file} has no records");
    records
}

/// Hands out exactly the bytes it was given, in order; asking for more is a
/// test bug.
struct FixedRng(Vec<u8>);

impl Rng for FixedRng {
    fn fill(&mut self, dest: &mut [u8]) {
        assert!(dest.len() <= self.0.len(), "FixedRng exhausted");
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
}

fn prf_named(name: &str) -> Prf {
    match name {
        "sha256" => Prf::HmacSha256,
        "sha384" => Prf::HmacSha384,
        "sha512" => Prf::HmacSha512,
        other => panic!("unknown hash {other}"),
    }
}

fn integ_for(prf: Prf) -> TransformId {
    match prf {
        Prf::HmacSha256 => integ::HMAC_SHA2_256_128,
        Prf::HmacSha384 => integ::HMAC_SHA2_384_192,
        Prf::HmacSha512 => integ::HMAC_SHA2_512_256,
        other => panic!("no RFC 4868 integrity transform for {other:?}"),
    }
}

#[test]
fn hmac_rfc4231() {
    let records = load("hmac_rfc4231.txt");
    assert_eq!(records.len(), 7);
    for r in &records {
        for (prf, field) in [
            (Prf::HmacSha256, "hmac_sha256"),
            (Prf::HmacSha384, "hmac_sha384"),
            (Prf::HmacSha512, "hmac_sha512"),
        ] {
            let want = r.hex(field);
            let got = prf.compute(&r.hex("key"), &[&r.hex("data")]);
            // Test case 5 is published truncated to 128 bits.
            assert_eq!(
                &got.as_bytes()[..want.len()],
                &want[..],
                "case {}",
                r.str("case")
            );
        }
    }
}

#[test]
fn hmac_rfc4868_prf_and_truncated_icv() {
    let records = load("hmac_rfc4868.txt");
    assert_eq!(records.len(), 12);
    for r in &records {
        let prf = prf_named(r.str("hash"));
        let key = r.hex("key");
        let data = r.hex("data");
        assert_eq!(
            prf.compute(&key, &[&data]).as_bytes(),
            r.hex("prf"),
            "{}",
            r.str("case")
        );
        let icv = r.hex("icv");

        // The same key drives IkeCipher's integrity check: RFC 4868 keys are
        // as long as SK_a for the suite, and the ICV is the truncated HMAC
        // over everything before it.
        let suite = IkeSuite {
            encr: encr::AES_CBC,
            encr_key_bits: Some(128),
            integ: Some(integ_for(prf)),
        };
        assert_eq!(suite.integ_key_len(), key.len());
        let cipher = IkeCipher::new(suite, &Secret::new(vec![0; 16]), &Secret::new(key)).unwrap();
        // Only the 50-byte messages are long enough to be an SK body: with 2
        // bytes of "header" the body is IV(16) + 2 blocks + ICV.
        if data.len() == 50 {
            let mut msg = data.clone();
            msg.extend_from_slice(&icv);
            assert_ne!(
                cipher.open(&msg, 2).err(),
                Some(CryptoError::IntegrityCheckFailed),
                "{}",
                r.str("case")
            );
            let last = msg.len() - 1;
            msg[last] ^= 0x80;
            assert_eq!(
                cipher.open(&msg, 2).err(),
                Some(CryptoError::IntegrityCheckFailed)
            );
        }
    }
}

/// NIST CAVP SP 800-135 "IKE v2" known answers (see the data file's header):
/// every value of each case is derived through our own KDF functions, SK_d
/// taken from `ike_keys` as the engine does, so an error in SKEYSEED or prf+
/// shows up in every later field too.
#[test]
fn ikev2_kdf_nist_cavp() {
    let records = load("ikev2_kdf_cavs.txt");
    assert_eq!(records.len(), 12);
    let mut per_hash = [0usize; 3];
    let mut long_nonces = 0;
    for r in &records {
        let (prf, slot) = match r.section.as_str() {
            "SHA-256" => (Prf::HmacSha256, 0),
            "SHA-384" => (Prf::HmacSha384, 1),
            "SHA-512" => (Prf::HmacSha512, 2),
            other => panic!("unknown section {other}"),
        };
        per_hash[slot] += 1;
        let case = format!("{} COUNT {}", r.section, r.str("COUNT"));
        let (ni, nr) = (r.hex("Ni"), r.hex("Nr"));
        let (g_ir, g_ir_new) = (r.hex("g^ir"), r.hex("g^ir (new)"));
        let spi = |name| u64::from_be_bytes(r.hex(name).try_into().expect("8-byte SPI"));
        let (spi_i, spi_r) = (spi("SPIi"), spi("SPIr"));
        let dkm = r.hex("DKM");
        let d = prf.output_len();
        if ni.len() > 128 {
            // Ni | Nr longer than the hash block: HMAC must hash the key first.
            long_nonces += 1;
        }

        let skeyseed = kdf::skeyseed(prf, &ni, &nr, &g_ir);
        assert_eq!(skeyseed.as_bytes(), r.hex("SKEYSEED"), "SKEYSEED {case}");

        // DKM is prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) at the vector's length.
        let seed = [
            ni.as_slice(),
            &nr,
            &spi_i.to_be_bytes(),
            &spi_r.to_be_bytes(),
        ];
        let stream = prf.prf_plus(skeyseed.as_bytes(), &seed, dkm.len());
        assert_eq!(stream.as_bytes(), dkm, "DKM {case}");

        // The seven SK_* are consecutive slices of that same stream; compare
        // them with DKM as far as both go (an AES-256-CBC + HMAC suite).
        let sizes = IkeKeySizes { encr: 32, integ: d };
        let keys = kdf::ike_keys(prf, skeyseed.as_bytes(), &ni, &nr, spi_i, spi_r, sizes);
        let joined: Vec<u8> = [
            &keys.sk_d,
            &keys.sk_ai,
            &keys.sk_ar,
            &keys.sk_ei,
            &keys.sk_er,
            &keys.sk_pi,
            &keys.sk_pr,
        ]
        .iter()
        .flat_map(|k| k.as_bytes().iter().copied())
        .collect();
        let n = joined.len().min(dkm.len());
        assert_eq!(&joined[..n], &dkm[..n], "SK_* {case}");
        assert_eq!(keys.sk_d.as_bytes(), &dkm[..d], "SK_d {case}");

        let child_len = r.hex("DKM(Child SA)").len();
        let child = kdf::child_keymat(prf, keys.sk_d.as_bytes(), None, &ni, &nr, child_len);
        assert_eq!(child.as_bytes(), r.hex("DKM(Child SA)"), "child {case}");
        let child_dh = kdf::child_keymat(
            prf,
            keys.sk_d.as_bytes(),
            Some(&g_ir_new),
            &ni,
            &nr,
            r.hex("DKM(Child SA D-H)").len(),
        );
        assert_eq!(
            child_dh.as_bytes(),
            r.hex("DKM(Child SA D-H)"),
            "child D-H {case}"
        );

        let rekey = kdf::rekey_skeyseed(prf, keys.sk_d.as_bytes(), &g_ir_new, &ni, &nr);
        assert_eq!(rekey.as_bytes(), r.hex("SKEYSEED(Rekey)"), "rekey {case}");
    }
    assert_eq!(per_hash, [4, 4, 4]);
    assert_eq!(long_nonces, 3);
}

#[test]
fn aes_cbc_rfc3602_through_ike_cipher() {
    let records = load("aes_cbc_rfc3602.txt");
    assert_eq!(records.len(), 4);
    let header = [0x42u8; 32];
    for r in &records {
        let suite = IkeSuite {
            encr: encr::AES_CBC,
            encr_key_bits: Some(128),
            integ: Some(integ::HMAC_SHA2_256_128),
        };
        let cipher =
            IkeCipher::new(suite, &Secret::new(r.hex("key")), &Secret::new(vec![7; 32])).unwrap();
        let pt = r.hex("plaintext");
        let ct = r.hex("ciphertext");
        let iv = r.hex("iv");
        let mut msg = header.to_vec();
        msg.resize(header.len() + cipher.body_len(pt.len()), 0);
        cipher
            .seal(&mut FixedRng(iv.clone()), &mut msg, header.len(), &pt)
            .unwrap();
        // The vector plaintexts are whole blocks, so the IKE padding block
        // comes after them and the first blocks are exactly the vector's.
        assert_eq!(&msg[32..48], &iv[..]);
        assert_eq!(&msg[48..48 + ct.len()], &ct[..], "case {}", r.str("case"));
        assert_eq!(cipher.open(&msg, 32).unwrap().as_bytes(), &pt[..]);
    }
}

#[test]
fn chacha20poly1305_rfc7634_ikev2_example() {
    let records = load("chacha20poly1305_rfc7634.txt");
    let r = &records[0];
    let suite = IkeSuite {
        encr: encr::CHACHA20_POLY1305,
        encr_key_bits: None,
        integ: None,
    };
    let cipher = IkeCipher::new(suite, &Secret::new(r.hex("sk_e")), &Secret::default()).unwrap();
    let message = r.hex("message");
    let offset = r.num("body_offset");
    let inner = r.hex("inner");
    assert_eq!(cipher.body_len(inner.len()) + offset, message.len());

    let mut msg = message[..offset].to_vec();
    msg.resize(message.len(), 0);
    cipher
        .seal(&mut FixedRng(r.hex("iv")), &mut msg, offset, &inner)
        .unwrap();
    assert_eq!(msg, message);
    assert_eq!(
        cipher.open(&message, offset).unwrap().as_bytes(),
        &inner[..]
    );
}

#[test]
fn x25519_rfc7748() {
    let records = load("x25519_rfc7748.txt");
    let mut checked = 0;
    for r in &records {
        match r.section.as_str() {
            "5.2" => {
                let share =
                    ke::generate(group::CURVE25519, &mut FixedRng(r.hex("scalar"))).unwrap();
                let out = share.shared_secret(&r.hex("u")).unwrap();
                assert_eq!(out.as_bytes(), r.hex("output"));
            }
            "5.2 iterated" => {
                let mut k = r.hex("start");
                let mut u = k.clone();
                for i in 1..=1000 {
                    let share = ke::generate(group::CURVE25519, &mut FixedRng(k.clone())).unwrap();
                    let next = share.shared_secret(&u).unwrap().as_bytes().to_vec();
                    u = std::mem::replace(&mut k, next);
                    if i == 1 {
                        assert_eq!(k, r.hex("after_1"));
                    }
                }
                assert_eq!(k, r.hex("after_1000"));
            }
            "6.1" => {
                let alice =
                    ke::generate(group::CURVE25519, &mut FixedRng(r.hex("alice_private"))).unwrap();
                let bob =
                    ke::generate(group::CURVE25519, &mut FixedRng(r.hex("bob_private"))).unwrap();
                assert_eq!(alice.public_key(), r.hex("alice_public"));
                assert_eq!(bob.public_key(), r.hex("bob_public"));
                let shared = r.hex("shared");
                assert_eq!(
                    alice.shared_secret(bob.public_key()).unwrap().as_bytes(),
                    shared
                );
                assert_eq!(
                    bob.shared_secret(alice.public_key()).unwrap().as_bytes(),
                    shared
                );
            }
            other => panic!("unknown section {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn ecp_rfc5903() {
    let records = load("ecp_rfc5903.txt");
    assert_eq!(records.len(), 3);
    for r in &records {
        let g = TransformId(r.num("group") as u16);
        let i = ke::generate(g, &mut FixedRng(r.hex("i"))).unwrap();
        let rr = ke::generate(g, &mut FixedRng(r.hex("r"))).unwrap();
        assert_eq!(i.public_key(), r.hex("gi"), "{g:?}");
        assert_eq!(rr.public_key(), r.hex("gr"), "{g:?}");
        let gir = r.hex("gir_x");
        assert_eq!(i.shared_secret(&r.hex("gr")).unwrap().as_bytes(), gir);
        assert_eq!(rr.shared_secret(&r.hex("gi")).unwrap().as_bytes(), gir);
    }
}

#[test]
fn modp_known_answers() {
    let records = load("modp_kat.txt");
    assert_eq!(records.len(), 8);
    for r in &records {
        let g = TransformId(r.num("group") as u16);
        assert!(ke::is_supported(g));
        let x = ke::generate(g, &mut FixedRng(r.hex("x"))).unwrap();
        let y = ke::generate(g, &mut FixedRng(r.hex("y"))).unwrap();
        assert_eq!(x.public_key(), r.hex("gx"), "{}", r.section);
        assert_eq!(y.public_key(), r.hex("gy"), "{}", r.section);
        let gxy = r.hex("gxy");
        assert_eq!(x.shared_secret(&r.hex("gy")).unwrap().as_bytes(), gxy);
        assert_eq!(y.shared_secret(&r.hex("gx")).unwrap().as_bytes(), gxy);
    }
    // The leading-zero case really has one in both values.
    let short = records.last().unwrap();
    assert_eq!(short.hex("gx")[0], 0);
    assert_eq!(short.hex("gxy")[0], 0);
}

#[test]
fn legacy_groups_are_flagged() {
    for g in [group::MODP_1024, group::MODP_1536] {
        assert!(ke::is_supported(g) && ke::is_legacy(g));
    }
    for g in [
        group::MODP_2048,
        group::MODP_8192,
        group::ECP_256,
        group::CURVE25519,
    ] {
        assert!(ke::is_supported(g) && !ke::is_legacy(g));
    }
}

/// Keeps the `KeyExchange` trait object usable from outside the crate.
#[test]
fn key_exchange_is_object_safe_and_send() {
    fn assert_send<T: Send>(_: &T) {}
    let share: Box<dyn KeyExchange> =
        ke::generate(group::MODP_2048, &mut oxisec_crypto::SystemRng).unwrap();
    assert_send(&share);
    assert_eq!(share.group(), group::MODP_2048);
}
