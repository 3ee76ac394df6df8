//! Private keys (loading, signing) and public keys (verification).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _, RsaKeyPair,
    UnparsedPublicKey, VerificationAlgorithm,
};
use zeroize::Zeroizing;

use crate::der::{self, Reader};
use crate::scheme::{self, Hash};
use crate::{Certificate, KeyError, PrivateKey, PublicKey, SigScheme};

/// Key files larger than this are refused before parsing.
const MAX_KEY_FILE: usize = 1 << 20;

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];

/// NIST curves for ECDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn from_oid(oid: &[u8]) -> Option<Curve> {
        match oid {
            OID_P256 => Some(Curve::P256),
            OID_P384 => Some(Curve::P384),
            OID_P521 => Some(Curve::P521),
            _ => None,
        }
    }

    /// Bytes of a field element (and of r and s in the fixed form).
    pub(crate) fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// The scheme whose hash matches the curve (and the RFC 4754 method).
    pub(crate) fn scheme(self) -> SigScheme {
        match self {
            Curve::P256 => SigScheme::EcdsaP256Sha256,
            Curve::P384 => SigScheme::EcdsaP384Sha384,
            Curve::P521 => SigScheme::EcdsaP521Sha512,
        }
    }

    fn signing(self) -> &'static EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            Curve::P521 => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }
}

/// The provider key behind a [`PrivateKey`]. aws-lc frees key material
/// with `OPENSSL_cleanse`, so dropping it wipes the secret.
pub(crate) enum KeyInner {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair, Curve),
    Ed25519(Ed25519KeyPair),
}

/// What kind of public key a [`PublicKey`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PubKind {
    Rsa { bits: usize },
    Ec(Curve),
    Ed25519,
}

const RSA_SCHEMES: [SigScheme; 7] = [
    SigScheme::RsaPssSha256,
    SigScheme::RsaPssSha384,
    SigScheme::RsaPssSha512,
    SigScheme::RsaPkcs1Sha256,
    SigScheme::RsaPkcs1Sha384,
    SigScheme::RsaPkcs1Sha512,
    SigScheme::RsaPkcs1Sha1,
];

fn parse_err(msg: impl Into<String>) -> KeyError {
    KeyError::Parse(msg.into())
}

impl PrivateKey {
    /// PEM or DER; PKCS#8 (encrypted if `passphrase` is given), SEC1 EC
    /// keys, PKCS#1 RSA keys — and, as DER, a PKCS#12 file (its key only;
    /// see [`load_pkcs12`] for the certificates).
    ///
    /// Encrypted PKCS#8 uses PBES2 (PBKDF2 with HMAC-SHA-1/SHA-2, or
    /// scrypt; AES-CBC or 3DES), which is what `openssl pkcs8 -topk8 -v2 …`
    /// writes. OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` PEM encryption is
    /// refused with a hint to convert the key.
    pub fn from_bytes(data: &[u8], passphrase: Option<&[u8]>) -> Result<PrivateKey, KeyError> {
        if data.len() > MAX_KEY_FILE {
            return Err(parse_err("key file larger than 1 MiB"));
        }
        if looks_like_pem(data) {
            let blocks = pem::parse_many(data).map_err(|e| parse_err(format!("bad PEM: {e}")))?;
            for block in blocks {
                let tag = block.tag().to_owned();
                let legacy_encrypted = block
                    .headers()
                    .get("Proc-Type")
                    .is_some_and(|v| v.contains("ENCRYPTED"));
                let contents = Zeroizing::new(block.into_contents());
                match tag.as_str() {
                    "PRIVATE KEY" => return from_pkcs8(&contents),
                    "ENCRYPTED PRIVATE KEY" => return from_encrypted_pkcs8(&contents, passphrase),
                    "RSA PRIVATE KEY" | "EC PRIVATE KEY" if legacy_encrypted => {
                        return Err(parse_err(
                            "legacy OpenSSL PEM encryption (Proc-Type: 4,ENCRYPTED) is not supported; \
                             convert the key with `openssl pkcs8 -topk8 -v2 aes-256-cbc`",
                        ));
                    }
                    "RSA PRIVATE KEY" => return from_pkcs1(&contents),
                    "EC PRIVATE KEY" => return from_sec1(&contents),
                    // "EC PARAMETERS" precedes the key in `openssl ecparam -genkey` output.
                    _ => continue,
                }
            }
            return Err(parse_err("no private key block in PEM data"));
        }
        // DER: guess by structure, most specific first.
        if pkcs8_algorithm(data).is_some() {
            return from_pkcs8(data);
        }
        if is_encrypted_pkcs8(data) {
            return from_encrypted_pkcs8(data, passphrase);
        }
        if let Ok(key) = from_pkcs1(data) {
            return Ok(key);
        }
        if let Ok(key) = from_sec1(data) {
            return Ok(key);
        }
        if looks_like_pfx(data) {
            return load_pkcs12(data, passphrase.unwrap_or_default()).map(|(key, _)| key);
        }
        Err(parse_err(
            "unrecognised key format (expected PKCS#8, PKCS#1, SEC1 or PKCS#12, in PEM or DER)",
        ))
    }

    /// Loads a key file, refusing one that group or others may read
    /// (`mode & 0o077 != 0`): a leaked VPN key is a leaked identity.
    pub fn load(path: &std::path::Path, passphrase: Option<&[u8]>) -> Result<PrivateKey, KeyError> {
        let data = Zeroizing::new(read_private_file(path)?);
        PrivateKey::from_bytes(&data, passphrase)
    }

    /// Schemes this key can sign with, preferred first. RSA offers
    /// RSASSA-PSS before PKCS#1 v1.5 (RFC 8247 ranks PSS higher and
    /// Libreswan refuses v1.5 by default) and SHA-1 last, for AUTH method 1
    /// only.
    pub fn schemes(&self) -> Vec<SigScheme> {
        match &self.inner {
            KeyInner::Rsa(_) => RSA_SCHEMES.to_vec(),
            KeyInner::Ecdsa(_, curve) => vec![curve.scheme()],
            KeyInner::Ed25519(_) => vec![SigScheme::Ed25519],
        }
    }

    /// Signs `data` with `scheme`. ECDSA signatures are DER
    /// `ECDSA-Sig-Value`s, as RFC 7427 (AUTH method 14) wants; use
    /// [`PrivateKey::sign_ecdsa_fixed`] for methods 9–11.
    pub fn sign(&self, scheme: SigScheme, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match (&self.inner, scheme) {
            (KeyInner::Rsa(pair), SigScheme::RsaPkcs1Sha1) => rsa_sha1::sign(pair, data),
            (KeyInner::Rsa(pair), _) if scheme.is_rsa() => {
                let encoding: &'static dyn signature::RsaEncoding = match scheme {
                    SigScheme::RsaPkcs1Sha256 => &signature::RSA_PKCS1_SHA256,
                    SigScheme::RsaPkcs1Sha384 => &signature::RSA_PKCS1_SHA384,
                    SigScheme::RsaPkcs1Sha512 => &signature::RSA_PKCS1_SHA512,
                    SigScheme::RsaPssSha256 => &signature::RSA_PSS_SHA256,
                    SigScheme::RsaPssSha384 => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(encoding, &rng, data, &mut sig)
                    .map_err(|_| KeyError::Scheme(scheme))?;
                Ok(sig)
            }
            (KeyInner::Ecdsa(pair, curve), _) if curve.scheme() == scheme => {
                let sig = pair
                    .sign(&rng, data)
                    .map_err(|_| KeyError::Scheme(scheme))?;
                Ok(sig.as_ref().to_vec())
            }
            (KeyInner::Ed25519(pair), SigScheme::Ed25519) => Ok(pair.sign(data).as_ref().to_vec()),
            _ => Err(KeyError::Scheme(scheme)),
        }
    }

    /// ECDSA in the fixed-length `r ‖ s` form of RFC 4754, for the legacy
    /// AUTH methods 9 (P-256/SHA-256), 10 (P-384/SHA-384) and 11
    /// (P-521/SHA-512). Other schemes are refused.
    pub fn sign_ecdsa_fixed(&self, scheme: SigScheme, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.inner {
            KeyInner::Ecdsa(_, curve) if curve.scheme() == scheme => {
                let der_sig = self.sign(scheme, data)?;
                ecdsa_der_to_fixed(&der_sig, curve.field_len()).ok_or(KeyError::Scheme(scheme))
            }
            _ => Err(KeyError::Scheme(scheme)),
        }
    }

    /// DER SubjectPublicKeyInfo of the matching public key.
    pub fn public_key_der(&self) -> Vec<u8> {
        let der = match &self.inner {
            KeyInner::Rsa(pair) => pair.public_key().as_der().map(|d| d.as_ref().to_vec()),
            KeyInner::Ecdsa(pair, _) => pair.public_key().as_der().map(|d| d.as_ref().to_vec()),
            KeyInner::Ed25519(pair) => pair.public_key().as_der().map(|d| d.as_ref().to_vec()),
        };
        // Encoding a key aws-lc already holds cannot fail short of memory exhaustion.
        der.unwrap_or_default()
    }

    /// The public half, for checking that a certificate belongs to this key.
    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        PublicKey::from_spki(&self.public_key_der())
    }

    /// "RSA-3072", "ECDSA P-256" or "Ed25519", for logs and status.
    pub fn algorithm(&self) -> String {
        match &self.inner {
            KeyInner::Rsa(pair) => format!("RSA-{}", pair.public_modulus_len() * 8),
            KeyInner::Ecdsa(_, curve) => format!("ECDSA {}", curve.name()),
            KeyInner::Ed25519(_) => "Ed25519".to_owned(),
        }
    }
}

/// Reads a private file (key or PKCS#12), refusing group/other access.
fn read_private_file(path: &std::path::Path) -> Result<Vec<u8>, KeyError> {
    use std::io::Read as _;
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| parse_err(format!("{shown}: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| parse_err(format!("{shown}: {e}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if meta.mode() & 0o077 != 0 {
            return Err(KeyError::Permissions(shown));
        }
    }
    if meta.len() > MAX_KEY_FILE as u64 {
        return Err(parse_err(format!("{shown}: larger than 1 MiB")));
    }
    let mut data = Vec::new();
    file.take(MAX_KEY_FILE as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| parse_err(format!("{shown}: {e}")))?;
    Ok(data)
}

/// Loads a PKCS#12 (PFX) file's key and certificates. The certificate
/// that belongs to the key comes first, the others (CA certificates) follow
/// in file order. An empty passphrase is the empty password.
///
/// PBES2 (AES, PBKDF2 with SHA-2, what OpenSSL 3 and strongSwan's `pki`
/// write) and the legacy PKCS#12 PBE schemes (3DES, RC2) are read, via the
/// `p12-keystore` crate.
pub fn load_pkcs12(
    data: &[u8],
    passphrase: &[u8],
) -> Result<(PrivateKey, Vec<Certificate>), KeyError> {
    if data.len() > MAX_KEY_FILE {
        return Err(parse_err("PKCS#12 file larger than 1 MiB"));
    }
    let password = core::str::from_utf8(passphrase).map_err(|_| {
        parse_err("PKCS#12 passphrases must be UTF-8 (they are encoded as BMPString)")
    })?;
    let archive =
        p12_keystore::Pkcs12Archive::from_pkcs12(data, password).map_err(|e| match e {
            // A wrong password fails the MAC, or (without a MAC) the padding.
            p12_keystore::error::Error::MacError(_)
            | p12_keystore::error::Error::UnpadError
            | p12_keystore::error::Error::Pkcs5Error(_) => KeyError::Decrypt,
            other => parse_err(format!("PKCS#12: {other}")),
        })?;
    let mut keys = archive.keys.into_iter();
    let bag = keys
        .next()
        .ok_or_else(|| parse_err("PKCS#12 file holds no private key"))?;
    if keys.next().is_some() {
        return Err(parse_err("PKCS#12 file holds more than one private key"));
    }
    let key_der = Zeroizing::new(bag.key.as_der().to_vec());
    drop(bag);
    let key = from_pkcs8(&key_der)?;
    let spki = key.public_key_der();
    let mut certs = Vec::new();
    for cbag in archive.certs {
        let cert = Certificate::from_der(cbag.cert.as_der())
            .map_err(|e| parse_err(format!("PKCS#12 certificate: {e}")))?;
        certs.push(cert);
    }
    if let Some(pos) = certs.iter().position(|c| c.spki_der() == spki.as_slice()) {
        let own = certs.remove(pos);
        certs.insert(0, own);
    }
    Ok((key, certs))
}

/// [`load_pkcs12`] from a file, with the same permission check as
/// [`PrivateKey::load`].
pub fn load_pkcs12_file(
    path: &std::path::Path,
    passphrase: &[u8],
) -> Result<(PrivateKey, Vec<Certificate>), KeyError> {
    let data = Zeroizing::new(read_private_file(path)?);
    load_pkcs12(&data, passphrase)
}

fn looks_like_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

/// The algorithm OID and parameters of an unencrypted PrivateKeyInfo.
fn pkcs8_algorithm(der: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let content = der::single(der, der::SEQUENCE).ok()?;
    let mut r = Reader::new(content);
    let version = r.read_small_uint().ok()?;
    if version > 1 {
        return None;
    }
    let alg = r.read(der::SEQUENCE).ok()?;
    r.read(der::OCTET_STRING).ok()?;
    let mut a = Reader::new(alg);
    let oid = a.read(der::OID).ok()?;
    let params = if a.is_empty() {
        None
    } else {
        Some(a.read_any().ok()?.2)
    };
    Some((oid, params))
}

fn is_encrypted_pkcs8(der: &[u8]) -> bool {
    pkcs8::EncryptedPrivateKeyInfoRef::try_from(der).is_ok()
}

fn looks_like_pfx(der: &[u8]) -> bool {
    // PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData OPTIONAL }
    let Ok(content) = der::single(der, der::SEQUENCE) else {
        return false;
    };
    Reader::new(content).read_small_uint() == Ok(3)
}

fn from_pkcs8(der: &[u8]) -> Result<PrivateKey, KeyError> {
    let (oid, params) =
        pkcs8_algorithm(der).ok_or_else(|| parse_err("malformed PKCS#8 PrivateKeyInfo"))?;
    let rejected = |what: &str, e: aws_lc_rs::error::KeyRejected| {
        parse_err(format!("{what} key rejected: {e}"))
    };
    let inner = match oid {
        scheme::OID_RSA_ENCRYPTION => {
            KeyInner::Rsa(RsaKeyPair::from_pkcs8(der).map_err(|e| rejected("RSA", e))?)
        }
        OID_EC_PUBLIC_KEY => {
            let curve = params
                .and_then(|p| der::single(p, der::OID).ok())
                .and_then(Curve::from_oid)
                .ok_or_else(|| parse_err("unsupported EC curve (P-256, P-384 and P-521 are)"))?;
            KeyInner::Ecdsa(
                EcdsaKeyPair::from_pkcs8(curve.signing(), der).map_err(|e| rejected("EC", e))?,
                curve,
            )
        }
        scheme::OID_ED25519 => {
            KeyInner::Ed25519(Ed25519KeyPair::from_pkcs8(der).map_err(|e| rejected("Ed25519", e))?)
        }
        other => {
            return Err(parse_err(format!(
                "unsupported key algorithm {}",
                der::oid_to_string(other)
            )));
        }
    };
    Ok(PrivateKey { inner })
}

fn from_encrypted_pkcs8(der: &[u8], passphrase: Option<&[u8]>) -> Result<PrivateKey, KeyError> {
    let passphrase =
        passphrase.ok_or_else(|| parse_err("the key is encrypted: a passphrase is needed"))?;
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der)
        .map_err(|e| parse_err(format!("malformed EncryptedPrivateKeyInfo: {e}")))?;
    // The plaintext lives in a SecretDocument, which zeroizes on drop. A
    // wrong passphrase shows up as bad padding or as a non-DER plaintext.
    let plain = info.decrypt(passphrase).map_err(|e| match e {
        pkcs8::Error::EncryptedPrivateKey(
            pkcs8::pkcs5::Error::AlgorithmParametersInvalid { .. }
            | pkcs8::pkcs5::Error::UnsupportedAlgorithm { .. }
            | pkcs8::pkcs5::Error::NoPbes1CryptSupport,
        ) => parse_err(format!("unsupported key encryption: {e}")),
        _ => KeyError::Decrypt,
    })?;
    from_pkcs8(plain.as_bytes()).map_err(|_| KeyError::Decrypt)
}

fn from_pkcs1(der: &[u8]) -> Result<PrivateKey, KeyError> {
    let pair =
        RsaKeyPair::from_der(der).map_err(|e| parse_err(format!("RSA key rejected: {e}")))?;
    Ok(PrivateKey {
        inner: KeyInner::Rsa(pair),
    })
}

fn from_sec1(der: &[u8]) -> Result<PrivateKey, KeyError> {
    // ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING,
    //   parameters [0] ECParameters OPTIONAL, publicKey [1] BIT STRING OPTIONAL }
    let content =
        der::single(der, der::SEQUENCE).map_err(|_| parse_err("malformed EC private key"))?;
    let mut r = Reader::new(content);
    let sec1 = (|| {
        if r.read_small_uint().ok()? != 1 {
            return None;
        }
        let private = r.read(der::OCTET_STRING).ok()?;
        let named = r
            .read_optional(der::context(0))
            .ok()?
            .and_then(|p| der::single(p, der::OID).ok());
        Some((private.len(), named))
    })();
    let (private_len, named) = sec1.ok_or_else(|| parse_err("malformed EC private key"))?;
    let curve = match named {
        Some(oid) => Curve::from_oid(oid),
        None => [Curve::P256, Curve::P384, Curve::P521]
            .into_iter()
            .find(|c| c.field_len() == private_len),
    }
    .ok_or_else(|| parse_err("unsupported EC curve (P-256, P-384 and P-521 are)"))?;
    let pair = EcdsaKeyPair::from_private_key_der(curve.signing(), der)
        .map_err(|e| parse_err(format!("EC key rejected: {e}")))?;
    Ok(PrivateKey {
        inner: KeyInner::Ecdsa(pair, curve),
    })
}

/// DER ECDSA-Sig-Value → fixed `r ‖ s` with `n`-byte halves.
pub(crate) fn ecdsa_der_to_fixed(sig: &[u8], n: usize) -> Option<Vec<u8>> {
    let content = der::single(sig, der::SEQUENCE).ok()?;
    let mut r = Reader::new(content);
    let rr = r.read_unsigned().ok()?;
    let ss = r.read_unsigned().ok()?;
    r.finish().ok()?;
    if rr.len() > n || ss.len() > n {
        return None;
    }
    let mut out = vec![0u8; 2 * n];
    out[n - rr.len()..n].copy_from_slice(rr);
    out[2 * n - ss.len()..].copy_from_slice(ss);
    Some(out)
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo: rsaEncryption, id-ecPublicKey on
    /// P-256/P-384/P-521, or id-Ed25519.
    pub fn from_spki(der: &[u8]) -> Result<PublicKey, KeyError> {
        let bad = |m: &str| parse_err(format!("SubjectPublicKeyInfo: {m}"));
        let content = der::single(der, der::SEQUENCE).map_err(|_| bad("malformed"))?;
        let mut r = Reader::new(content);
        let alg = r
            .read(der::SEQUENCE)
            .map_err(|_| bad("malformed algorithm"))?;
        let bits = r.read(der::BIT_STRING).map_err(|_| bad("malformed key"))?;
        r.finish().map_err(|_| bad("trailing data"))?;
        let (&unused, key) = bits.split_first().ok_or_else(|| bad("empty key"))?;
        if unused != 0 {
            return Err(bad("key is not a whole number of bytes"));
        }
        let mut a = Reader::new(alg);
        let oid = a.read(der::OID).map_err(|_| bad("malformed algorithm"))?;
        let params = if a.is_empty() {
            None
        } else {
            Some(a.read_any().map_err(|_| bad("malformed parameters"))?)
        };
        a.finish().map_err(|_| bad("malformed algorithm"))?;
        let kind = match oid {
            scheme::OID_RSA_ENCRYPTION => {
                if !matches!(params, None | Some((der::NULL, [], _))) {
                    return Err(bad("RSA parameters must be NULL"));
                }
                // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
                let rsa = der::single(key, der::SEQUENCE).map_err(|_| bad("malformed RSA key"))?;
                let mut k = Reader::new(rsa);
                let n = k
                    .read_unsigned()
                    .map_err(|_| bad("malformed RSA modulus"))?;
                let e = k
                    .read_unsigned()
                    .map_err(|_| bad("malformed RSA exponent"))?;
                k.finish().map_err(|_| bad("malformed RSA key"))?;
                if n.is_empty() || e.is_empty() {
                    return Err(bad("zero RSA modulus or exponent"));
                }
                let bits = n.len() * 8 - n[0].leading_zeros() as usize;
                PubKind::Rsa { bits }
            }
            OID_EC_PUBLIC_KEY => {
                let curve = match params {
                    Some((der::OID, curve_oid, _)) => Curve::from_oid(curve_oid),
                    _ => None,
                }
                .ok_or_else(|| bad("unsupported EC curve (P-256, P-384 and P-521 are)"))?;
                let n = curve.field_len();
                let ok = match key.first() {
                    Some(4) => key.len() == 1 + 2 * n,
                    Some(2 | 3) => key.len() == 1 + n,
                    _ => false,
                };
                if !ok {
                    return Err(bad("malformed EC point"));
                }
                PubKind::Ec(curve)
            }
            scheme::OID_ED25519 => {
                if params.is_some() || key.len() != 32 {
                    return Err(bad("malformed Ed25519 key"));
                }
                PubKind::Ed25519
            }
            other => {
                return Err(bad(&format!(
                    "unsupported key algorithm {}",
                    der::oid_to_string(other)
                )));
            }
        };
        Ok(PublicKey {
            spki: der.to_vec(),
            key: key.to_vec(),
            kind,
        })
    }

    /// Schemes that can verify with this key. For ECDSA the scheme whose
    /// hash matches the curve comes first; the others verify too (RFC 7427
    /// lets the signer pick the hash).
    pub fn schemes(&self) -> Vec<SigScheme> {
        match self.kind {
            PubKind::Rsa { .. } => RSA_SCHEMES.to_vec(),
            PubKind::Ec(curve) => {
                let mut v = vec![curve.scheme()];
                for s in [
                    SigScheme::EcdsaP256Sha256,
                    SigScheme::EcdsaP384Sha384,
                    SigScheme::EcdsaP521Sha512,
                ] {
                    if s != curve.scheme() {
                        v.push(s);
                    }
                }
                v
            }
            PubKind::Ed25519 => vec![SigScheme::Ed25519],
        }
    }

    /// Verifies a signature. ECDSA signatures are DER `ECDSA-Sig-Value`s
    /// (RFC 7427); the scheme's hash is used with the key's own curve. RSA
    /// keys must have 2048 to 8192 bits.
    pub fn verify(&self, scheme: SigScheme, data: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        let alg: &'static dyn VerificationAlgorithm = match (self.kind, scheme) {
            (PubKind::Rsa { .. }, _) => match scheme {
                SigScheme::RsaPkcs1Sha1 => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                SigScheme::RsaPkcs1Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                SigScheme::RsaPkcs1Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                SigScheme::RsaPkcs1Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                SigScheme::RsaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
                SigScheme::RsaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
                SigScheme::RsaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
                _ => return Err(KeyError::Scheme(scheme)),
            },
            (PubKind::Ec(curve), _) if scheme.is_ecdsa() => match (curve, scheme.hash()) {
                (Curve::P256, Hash::Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
                (Curve::P256, Hash::Sha384) => &signature::ECDSA_P256_SHA384_ASN1,
                (Curve::P256, _) => &signature::ECDSA_P256_SHA512_ASN1,
                (Curve::P384, Hash::Sha256) => &signature::ECDSA_P384_SHA256_ASN1,
                (Curve::P384, Hash::Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
                (Curve::P384, _) => &signature::ECDSA_P384_SHA512_ASN1,
                (Curve::P521, Hash::Sha256) => &signature::ECDSA_P521_SHA256_ASN1,
                (Curve::P521, Hash::Sha384) => &signature::ECDSA_P521_SHA384_ASN1,
                (Curve::P521, _) => &signature::ECDSA_P521_SHA512_ASN1,
            },
            (PubKind::Ed25519, SigScheme::Ed25519) => &signature::ED25519,
            _ => return Err(KeyError::Scheme(scheme)),
        };
        UnparsedPublicKey::new(alg, &self.key)
            .verify(data, signature)
            .map_err(|_| KeyError::BadSignature)
    }

    /// Verifies an RFC 4754 fixed-length `r ‖ s` ECDSA signature (AUTH
    /// methods 9–11, where curve and hash are fixed by the method).
    pub fn verify_ecdsa_fixed(
        &self,
        scheme: SigScheme,
        data: &[u8],
        signature: &[u8],
    ) -> Result<(), KeyError> {
        let alg: &'static dyn VerificationAlgorithm = match (self.kind, scheme) {
            (PubKind::Ec(Curve::P256), SigScheme::EcdsaP256Sha256) => {
                &signature::ECDSA_P256_SHA256_FIXED
            }
            (PubKind::Ec(Curve::P384), SigScheme::EcdsaP384Sha384) => {
                &signature::ECDSA_P384_SHA384_FIXED
            }
            (PubKind::Ec(Curve::P521), SigScheme::EcdsaP521Sha512) => {
                &signature::ECDSA_P521_SHA512_FIXED
            }
            _ => return Err(KeyError::Scheme(scheme)),
        };
        if matches!(self.kind, PubKind::Ec(curve) if signature.len() != 2 * curve.field_len()) {
            return Err(KeyError::BadSignature);
        }
        UnparsedPublicKey::new(alg, &self.key)
            .verify(data, signature)
            .map_err(|_| KeyError::BadSignature)
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// "RSA-2048", "ECDSA P-384" or "Ed25519", for logs.
    pub fn algorithm(&self) -> String {
        match self.kind {
            PubKind::Rsa { bits } => format!("RSA-{bits}"),
            PubKind::Ec(curve) => format!("ECDSA {}", curve.name()),
            PubKind::Ed25519 => "Ed25519".to_owned(),
        }
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}

impl Eq for PublicKey {}

/// RSASSA-PKCS1-v1_5 with SHA-1, which aws-lc-rs does not offer for
/// signing (only for verification). Needed for IKEv2 AUTH method 1, where
/// peers (and RFC 7296) expect SHA-1. The private exponentiation runs in
/// constant time with crypto-bigint; the result is verified with the public
/// key before it leaves, so a fault cannot leak the key.
mod rsa_sha1 {
    use aws_lc_rs::digest;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{self, KeyPair as _, RsaKeyPair, UnparsedPublicKey};
    use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
    use crypto_bigint::{BoxedUint, Odd};
    use zeroize::Zeroizing;

    use crate::der::{self, Reader};
    use crate::{KeyError, SigScheme};

    /// DigestInfo prefix for SHA-1 (RFC 8017 §9.2 note 1).
    const SHA1_DIGEST_INFO: &[u8] = &[
        0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
    ];

    pub(super) fn sign(pair: &RsaKeyPair, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let fail = || KeyError::Scheme(SigScheme::RsaPkcs1Sha1);
        let pkcs8 = pair.as_der().map_err(|_| fail())?;
        // PrivateKeyInfo → privateKey OCTET STRING → RSAPrivateKey.
        let rsa_der = (|| {
            let content = der::single(pkcs8.as_ref(), der::SEQUENCE).ok()?;
            let mut r = Reader::new(content);
            r.read_small_uint().ok()?;
            r.read(der::SEQUENCE).ok()?;
            r.read(der::OCTET_STRING).ok()
        })()
        .ok_or_else(fail)?;
        let (n, d) = (|| {
            let mut r = Reader::new(der::single(rsa_der, der::SEQUENCE).ok()?);
            r.read_small_uint().ok()?; // version
            let n = r.read_unsigned().ok()?;
            r.read_unsigned().ok()?; // e
            let d = r.read_unsigned().ok()?;
            Some((n, d))
        })()
        .ok_or_else(fail)?;

        let k = pair.public_modulus_len();
        if n.len() != k || k < SHA1_DIGEST_INFO.len() + 20 + 11 {
            return Err(fail());
        }
        // EM = 0x00 ‖ 0x01 ‖ PS (0xff…) ‖ 0x00 ‖ DigestInfo ‖ SHA-1(data)
        let hash = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data);
        let t_len = SHA1_DIGEST_INFO.len() + hash.as_ref().len();
        let mut em = vec![0xffu8; k];
        em[0] = 0;
        em[1] = 1;
        em[k - t_len - 1] = 0;
        em[k - t_len..k - hash.as_ref().len()].copy_from_slice(SHA1_DIGEST_INFO);
        em[k - hash.as_ref().len()..].copy_from_slice(hash.as_ref());

        let bits = (k * 8) as u32;
        let modulus = BoxedUint::from_be_slice(n, bits).map_err(|_| fail())?;
        let modulus = Option::<Odd<BoxedUint>>::from(Odd::new(modulus)).ok_or_else(fail)?;
        let params = BoxedMontyParams::new(modulus);
        let d = Zeroizing::new(BoxedUint::from_be_slice(d, bits).map_err(|_| fail())?);
        let m = BoxedUint::from_be_slice(&em, bits).map_err(|_| fail())?;
        let s = BoxedMontyForm::new(m, &params).pow(&d).retrieve();
        let s_bytes = s.to_be_bytes();
        // to_be_bytes is limb-sized; the value is < n, so the extra high bytes are zero.
        let sig = s_bytes[s_bytes.len().saturating_sub(k)..].to_vec();
        if sig.len() != k {
            return Err(fail());
        }
        UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            pair.public_key().as_ref(),
        )
        .verify(data, &sig)
        .map_err(|_| fail())?;
        Ok(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixed `r ‖ s` → DER ECDSA-Sig-Value.
    fn ecdsa_fixed_to_der(sig: &[u8]) -> Vec<u8> {
        let (r, s) = sig.split_at(sig.len() / 2);
        let mut content = Vec::with_capacity(sig.len() + 8);
        der::write_unsigned(&mut content, r);
        der::write_unsigned(&mut content, s);
        der::tlv(der::SEQUENCE, &content)
    }

    #[test]
    fn ecdsa_signature_forms_convert() {
        let der_sig = [0x30, 0x08, 0x02, 0x02, 0x00, 0x80, 0x02, 0x02, 0x01, 0x02];
        let fixed = ecdsa_der_to_fixed(&der_sig, 4).unwrap();
        assert_eq!(fixed, [0, 0, 0, 0x80, 0, 0, 1, 2]);
        assert_eq!(ecdsa_fixed_to_der(&fixed), der_sig);
        // r too long for the field.
        assert_eq!(ecdsa_der_to_fixed(&der_sig, 1), None);
        assert_eq!(ecdsa_der_to_fixed(&[0x30, 0x00], 4), None);
    }

    #[test]
    fn rejects_garbage_keys() {
        for bad in [
            &b""[..],
            b"\x30\x00",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            b"hello",
        ] {
            assert!(PrivateKey::from_bytes(bad, None).is_err());
            assert!(PrivateKey::from_bytes(bad, Some(b"pw")).is_err());
        }
    }

    #[test]
    fn rejects_garbage_spki() {
        assert!(PublicKey::from_spki(&[]).is_err());
        assert!(PublicKey::from_spki(&[0x30, 0x00]).is_err());
        // Ed25519 SPKI with a 31-byte key.
        let mut spki = vec![
            0x30, 0x29, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x20, 0x00,
        ];
        spki.extend([7u8; 31]);
        assert!(PublicKey::from_spki(&spki).is_err());
    }
}
