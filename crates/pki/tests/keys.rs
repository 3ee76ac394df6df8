//! Key loading in every container, signing and verification for every scheme.

mod common;

use std::path::PathBuf;

use common::Kind;
use oxisec_pki::{KeyError, PrivateKey, PublicKey, SigScheme, load_pkcs12, load_pkcs12_file};

const PW: &[u8] = b"oxisec test";

fn data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Signs and verifies with every scheme the key offers, and checks that
/// tampering is caught.
fn round_trip(key: &PrivateKey) {
    let public = key.public_key().unwrap();
    assert_eq!(public.spki_der(), key.public_key_der());
    for scheme in key.schemes() {
        let msg = b"IKE_SA_INIT octets | Nr | prf(SK_pi, IDi')";
        let sig = key
            .sign(scheme, msg)
            .unwrap_or_else(|e| panic!("{scheme:?}: {e}"));
        public
            .verify(scheme, msg, &sig)
            .unwrap_or_else(|e| panic!("{scheme:?}: {e}"));
        assert_eq!(
            public.verify(scheme, b"other data", &sig),
            Err(KeyError::BadSignature),
            "{scheme:?}"
        );
        let mut bad = sig.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            public.verify(scheme, msg, &bad),
            Err(KeyError::BadSignature),
            "{scheme:?}"
        );
        assert_eq!(
            public.verify(scheme, msg, &sig[..sig.len() - 1]),
            Err(KeyError::BadSignature),
            "{scheme:?}"
        );
        assert_eq!(
            public.verify(scheme, msg, &[]),
            Err(KeyError::BadSignature),
            "{scheme:?}"
        );
    }
    // A scheme of another key type is refused, not attempted.
    for scheme in SigScheme::ALL {
        if !public.schemes().contains(&scheme) {
            assert_eq!(key.sign(scheme, b"x"), Err(KeyError::Scheme(scheme)));
            assert_eq!(
                public.verify(scheme, b"x", &[0; 64]),
                Err(KeyError::Scheme(scheme))
            );
        }
    }
}

#[test]
fn sign_verify_every_scheme_for_generated_keys() {
    let cases = [
        (Kind::Rsa2048, "RSA-2048"),
        (Kind::Rsa3072, "RSA-3072"),
        (Kind::P256, "ECDSA P-256"),
        (Kind::P384, "ECDSA P-384"),
        (Kind::Ed25519, "Ed25519"),
    ];
    for (kind, name) in cases {
        let pair = common::key(kind);
        let key = PrivateKey::from_bytes(pair.serialize_pem().as_bytes(), None).unwrap();
        assert_eq!(key.algorithm(), name);
        round_trip(&key);
        let der_key = PrivateKey::from_bytes(&pair.serialize_der(), None).unwrap();
        assert_eq!(der_key.public_key_der(), key.public_key_der());
    }
    let p521 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let key = PrivateKey::from_bytes(&p521.serialize_der(), None).unwrap();
    assert_eq!(key.schemes(), [SigScheme::EcdsaP521Sha512]);
    round_trip(&key);
}

#[test]
fn rsa_scheme_order_and_coverage() {
    let key = PrivateKey::from_bytes(&data("rsa2048.pkcs8.pem"), None).unwrap();
    assert_eq!(
        key.schemes(),
        [
            SigScheme::RsaPssSha256,
            SigScheme::RsaPssSha384,
            SigScheme::RsaPssSha512,
            SigScheme::RsaPkcs1Sha256,
            SigScheme::RsaPkcs1Sha384,
            SigScheme::RsaPkcs1Sha512,
            SigScheme::RsaPkcs1Sha1,
        ]
    );
    round_trip(&key);
}

#[test]
fn rsa_sha1_known_answer_from_openssl() {
    // PKCS#1 v1.5 is deterministic: our constant-time SHA-1 signer must
    // produce exactly what `openssl dgst -sha1 -sign` did.
    let key = PrivateKey::from_bytes(&data("rsa2048.pkcs8.pem"), None).unwrap();
    let sig = key.sign(SigScheme::RsaPkcs1Sha1, &data("kat.msg")).unwrap();
    assert_eq!(sig, data("rsa2048.sha1.sig"));
    // And the SHA-2 PKCS#1 signatures agree with aws-lc's deterministic output too.
    let a = key.sign(SigScheme::RsaPkcs1Sha256, b"m").unwrap();
    assert_eq!(a, key.sign(SigScheme::RsaPkcs1Sha256, b"m").unwrap());
}

#[test]
fn ecdsa_fixed_form_for_rfc4754() {
    for (kind, scheme, half) in [
        (Kind::P256, SigScheme::EcdsaP256Sha256, 32),
        (Kind::P384, SigScheme::EcdsaP384Sha384, 48),
    ] {
        let key = PrivateKey::from_bytes(&common::key(kind).serialize_der(), None).unwrap();
        let public = key.public_key().unwrap();
        let fixed = key.sign_ecdsa_fixed(scheme, b"msg").unwrap();
        assert_eq!(fixed.len(), 2 * half);
        public.verify_ecdsa_fixed(scheme, b"msg", &fixed).unwrap();
        assert_eq!(
            public.verify_ecdsa_fixed(scheme, b"msh", &fixed),
            Err(KeyError::BadSignature)
        );
        // The two forms are not interchangeable.
        assert!(public.verify(scheme, b"msg", &fixed).is_err());
        let der = key.sign(scheme, b"msg").unwrap();
        assert!(public.verify_ecdsa_fixed(scheme, b"msg", &der).is_err());
    }
    let p521 = PrivateKey::from_bytes(&data("p521.pkcs8.pem"), None).unwrap();
    let fixed = p521
        .sign_ecdsa_fixed(SigScheme::EcdsaP521Sha512, b"m")
        .unwrap();
    assert_eq!(fixed.len(), 132);
    p521.public_key()
        .unwrap()
        .verify_ecdsa_fixed(SigScheme::EcdsaP521Sha512, b"m", &fixed)
        .unwrap();
    // Not for other key types, nor with another curve's method.
    let rsa = PrivateKey::from_bytes(&data("rsa2048.pkcs8.pem"), None).unwrap();
    assert!(matches!(
        rsa.sign_ecdsa_fixed(SigScheme::RsaPkcs1Sha256, b"m"),
        Err(KeyError::Scheme(_))
    ));
    assert!(matches!(
        p521.sign_ecdsa_fixed(SigScheme::EcdsaP256Sha256, b"m"),
        Err(KeyError::Scheme(_))
    ));
}

#[test]
fn ecdsa_verify_accepts_any_sha2_hash_with_the_keys_curve() {
    // RFC 7427 lets the signer choose the hash: OpenSSL signed with a P-384
    // key and SHA-256; the AUTH payload would name ecdsa-with-SHA256.
    let public = PrivateKey::from_bytes(&data("p384.pkcs8.pem"), None)
        .unwrap()
        .public_key()
        .unwrap();
    let sig = data("p384.sha256.sig");
    public
        .verify(SigScheme::EcdsaP256Sha256, &data("kat.msg"), &sig)
        .unwrap();
    assert_eq!(
        public.verify(SigScheme::EcdsaP384Sha384, &data("kat.msg"), &sig),
        Err(KeyError::BadSignature)
    );
    // The fixed form stays tied to its curve (RFC 4754 methods).
    assert!(matches!(
        public.verify_ecdsa_fixed(SigScheme::EcdsaP256Sha256, b"m", &[0; 64]),
        Err(KeyError::Scheme(_))
    ));
}

#[test]
fn every_container_format() {
    let cases: [(&str, Option<&[u8]>, &str); 14] = [
        ("rsa2048.pkcs8.pem", None, "RSA-2048"),
        ("rsa2048.pkcs1.pem", None, "RSA-2048"),
        ("rsa2048.pkcs1.der", None, "RSA-2048"),
        ("rsa2048.pkcs8.aes128-sha1.der", Some(PW), "RSA-2048"),
        ("p256.sec1-params.pem", None, "ECDSA P-256"),
        ("p256.sec1.der", None, "ECDSA P-256"),
        ("p384.pkcs8.pem", None, "ECDSA P-384"),
        ("p384.pkcs8.aes256.pem", Some(PW), "ECDSA P-384"),
        ("p521.pkcs8.der", None, "ECDSA P-521"),
        ("p521.pkcs8.scrypt.pem", Some(PW), "ECDSA P-521"),
        ("ed25519.pkcs8.des3.pem", Some(PW), "Ed25519"),
        ("sw-rsa3072.pem", None, "RSA-3072"),
        ("sw-p384.pem", None, "ECDSA P-384"),
        ("sw-ed25519.pem", None, "Ed25519"),
    ];
    for (file, pw, alg) in cases {
        let key = PrivateKey::from_bytes(&data(file), pw).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(key.algorithm(), alg, "{file}");
        let sig = key.sign(key.schemes()[0], b"x").unwrap();
        key.public_key()
            .unwrap()
            .verify(key.schemes()[0], b"x", &sig)
            .unwrap();
    }
    // The same key in different containers is the same key.
    let a = PrivateKey::from_bytes(&data("rsa2048.pkcs8.pem"), None).unwrap();
    let b = PrivateKey::from_bytes(&data("rsa2048.pkcs1.der"), None).unwrap();
    let c = PrivateKey::from_bytes(&data("rsa2048.pkcs8.aes128-sha1.der"), Some(PW)).unwrap();
    assert_eq!(a.public_key_der(), b.public_key_der());
    assert_eq!(a.public_key_der(), c.public_key_der());
    let d = PrivateKey::from_bytes(&data("p384.pkcs8.aes256.pem"), Some(PW)).unwrap();
    let e = PrivateKey::from_bytes(&data("p384.pkcs8.pem"), None).unwrap();
    assert_eq!(d.public_key_der(), e.public_key_der());
}

#[test]
fn encrypted_key_errors() {
    for file in [
        "p384.pkcs8.aes256.pem",
        "rsa2048.pkcs8.aes128-sha1.der",
        "ed25519.pkcs8.des3.pem",
    ] {
        let raw = data(file);
        assert_eq!(
            PrivateKey::from_bytes(&raw, Some(b"wrong")).unwrap_err(),
            KeyError::Decrypt,
            "{file}"
        );
        match PrivateKey::from_bytes(&raw, None) {
            Err(KeyError::Parse(why)) => assert!(why.contains("passphrase"), "{why}"),
            other => panic!("{file}: {other:?}"),
        }
    }
    match PrivateKey::from_bytes(&data("p256.sec1.legacy-enc.pem"), Some(PW)) {
        Err(KeyError::Parse(why)) => assert!(why.contains("openssl pkcs8 -topk8"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pkcs12_with_passphrase() {
    let moon = oxisec_pki::Certificate::from_pem_or_der(&data("sw-moon.pem"))
        .unwrap()
        .remove(0);
    let ca = oxisec_pki::Certificate::from_pem_or_der(&data("sw-ca.pem"))
        .unwrap()
        .remove(0);
    for file in ["sw-moon.aes.p12", "sw-moon.3des.p12"] {
        let raw = data(file);
        let (key, certs) = load_pkcs12(&raw, PW).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(key.algorithm(), "RSA-3072");
        assert_eq!(
            certs,
            [moon.clone(), ca.clone()],
            "{file}: own certificate first"
        );
        assert_eq!(key.public_key_der(), moon.spki_der());
        assert_eq!(
            load_pkcs12(&raw, b"wrong").unwrap_err(),
            KeyError::Decrypt,
            "{file}"
        );
        // PrivateKey::from_bytes recognises PKCS#12 too.
        let k2 = PrivateKey::from_bytes(&raw, Some(PW)).unwrap();
        assert_eq!(k2.public_key_der(), moon.spki_der());
    }
    assert!(load_pkcs12(b"\x30\x03\x02\x01\x03", PW).is_err());
    assert!(load_pkcs12(&data("sw-moon.aes.p12"), &[0xff]).is_err());
}

fn temp_file(name: &str, contents: &[u8], mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("oxisec-pki-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn load_refuses_group_or_world_readable_files() {
    let pem = data("p384.pkcs8.pem");
    for (mode, ok) in [
        (0o600, true),
        (0o400, true),
        (0o640, false),
        (0o604, false),
        (0o660, false),
    ] {
        let path = temp_file(&format!("key-{mode:o}.pem"), &pem, mode);
        match PrivateKey::load(&path, None) {
            Ok(_) => assert!(ok, "{mode:o}"),
            Err(KeyError::Permissions(p)) => {
                assert!(!ok, "{mode:o}");
                assert!(p.contains("key-"), "{p}");
            }
            Err(e) => panic!("{mode:o}: {e}"),
        }
        std::fs::remove_file(&path).unwrap();
    }
    let p12 = temp_file("moon.p12", &data("sw-moon.aes.p12"), 0o644);
    assert!(matches!(
        load_pkcs12_file(&p12, PW),
        Err(KeyError::Permissions(_))
    ));
    std::fs::set_permissions(&p12, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    load_pkcs12_file(&p12, PW).unwrap();
    std::fs::remove_file(&p12).unwrap();
    assert!(matches!(
        PrivateKey::load(std::path::Path::new("/nonexistent/key.pem"), None),
        Err(KeyError::Parse(_))
    ));
}

#[test]
fn public_key_from_certificate_spki() {
    let moon = oxisec_pki::Certificate::from_pem_or_der(&data("sw-moon.pem"))
        .unwrap()
        .remove(0);
    let public = moon.public_key().unwrap();
    assert_eq!(public.algorithm(), "RSA-3072");
    assert_eq!(PublicKey::from_spki(moon.spki_der()).unwrap(), public);
    let (key, _) = load_pkcs12(&data("sw-moon.aes.p12"), PW).unwrap();
    for scheme in key.schemes() {
        public
            .verify(scheme, b"m", &key.sign(scheme, b"m").unwrap())
            .unwrap();
    }
}

#[test]
fn debug_output_hides_the_key() {
    let key = PrivateKey::from_bytes(&data("p384.pkcs8.pem"), None).unwrap();
    assert_eq!(format!("{key:?}"), "PrivateKey { .. }");
}
