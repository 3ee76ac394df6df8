#!/bin/bash
# Regenerates the key, certificate, CRL and PKCS#12 fixtures of the pki
# tests with the OpenSSL 3 and strongSwan 5.9 `pki` command-line tools.
# Passphrase of every encrypted file: "oxisec test".
set -euo pipefail
cd "$(dirname "$0")"
PW='oxisec test'
rm -f ./*.pem ./*.der ./*.p12 ./*.crl ./*.sig ./*.msg

# --- OpenSSL keys in every container ----------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa2048.pkcs8.pem 2>/dev/null
openssl pkey -in rsa2048.pkcs8.pem -traditional -out rsa2048.pkcs1.pem           # RSA PRIVATE KEY
openssl rsa -in rsa2048.pkcs1.pem -outform DER -out rsa2048.pkcs1.der 2>/dev/null
openssl ecparam -name prime256v1 -genkey -out p256.sec1-params.pem              # EC PARAMETERS + EC PRIVATE KEY
openssl ec -in p256.sec1-params.pem -outform DER -out p256.sec1.der 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pkcs8.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out p521.pkcs8.pem
openssl pkey -in p521.pkcs8.pem -outform DER -out p521.pkcs8.der
openssl genpkey -algorithm ED25519 -out ed25519.pkcs8.pem

# Encrypted PKCS#8 (PBES2): what `openssl pkcs8 -topk8 -v2 …` writes.
openssl pkcs8 -topk8 -v2 aes-256-cbc -in p384.pkcs8.pem -passout pass:"$PW" -out p384.pkcs8.aes256.pem
openssl pkcs8 -topk8 -v2 aes-128-cbc -v2prf hmacWithSHA1 -in rsa2048.pkcs8.pem -outform DER \
    -passout pass:"$PW" -out rsa2048.pkcs8.aes128-sha1.der
openssl pkcs8 -topk8 -v2 des3 -in ed25519.pkcs8.pem -passout pass:"$PW" -out ed25519.pkcs8.des3.pem
openssl pkcs8 -topk8 -scrypt -in p521.pkcs8.pem -passout pass:"$PW" -out p521.pkcs8.scrypt.pem
# Legacy OpenSSL PEM encryption (Proc-Type): must be refused with a hint.
openssl ec -in p256.sec1-params.pem -aes256 -passout pass:"$PW" -out p256.sec1.legacy-enc.pem 2>/dev/null

# Known answer for RSASSA-PKCS1-v1_5 with SHA-1 (deterministic).
printf 'oxisec rsa-sha1 known answer' > kat.msg
openssl dgst -sha1 -sign rsa2048.pkcs8.pem -out rsa2048.sha1.sig kat.msg
# ECDSA with a hash that does not match the curve (RFC 7427 allows it): P-384 with SHA-256.
openssl dgst -sha256 -sign p384.pkcs8.pem -out p384.sha256.sig kat.msg

# --- strongSwan pki: keys, CA, gateway certificate, CRL ---------------------
pki --gen --type rsa --size 3072 --outform pem > sw-rsa3072.pem 2>/dev/null   # RSA PRIVATE KEY
pki --gen --type ecdsa --size 384 --outform pem > sw-p384.pem 2>/dev/null     # EC PRIVATE KEY
pki --gen --type ed25519 --outform pem > sw-ed25519.pem 2>/dev/null           # PRIVATE KEY
pki --self --ca --lifetime 3650 --in sw-p384.pem --type ecdsa \
    --dn "C=CH, O=strongSwan test, CN=strongSwan Root CA" --outform pem > sw-ca.pem 2>/dev/null
pki --pub --in sw-rsa3072.pem --type rsa 2>/dev/null > sw-moon.pub
pki --issue --cacert sw-ca.pem --cakey sw-p384.pem --type pub --in sw-moon.pub \
    --dn "C=CH, O=strongSwan test, CN=moon.strongswan.org" --san moon.strongswan.org --san 192.0.2.10 \
    --flag serverAuth --flag ikeIntermediate --crl http://crl.strongswan.org/ca.crl \
    --serial 0a --lifetime 1825 --outform pem > sw-moon.pem 2>/dev/null
pki --pub --in sw-ed25519.pem --type priv 2>/dev/null > sw-carol.pub
pki --issue --cacert sw-ca.pem --cakey sw-p384.pem --type pub --in sw-carol.pub \
    --dn "C=CH, O=strongSwan test, CN=carol@strongswan.org" --san carol@strongswan.org \
    --flag clientAuth --crl http://crl.strongswan.org/ca.crl \
    --serial 0b --lifetime 1825 --outform pem > sw-carol.pem 2>/dev/null
# The CRL revokes carol (0b), not moon.
pki --signcrl --cacert sw-ca.pem --cakey sw-p384.pem --reason key-compromise --cert sw-carol.pem \
    --lifetime 3650 --outform der > sw-ca.crl 2>/dev/null
rm -f sw-moon.pub sw-carol.pub

# --- PKCS#12 ------------------------------------------------------------------
# OpenSSL 3 default: PBES2 (AES-256-CBC, PBKDF2-HMAC-SHA-256), MAC SHA-256.
openssl pkcs12 -export -inkey sw-rsa3072.pem -in sw-moon.pem -certfile sw-ca.pem \
    -passout pass:"$PW" -out sw-moon.aes.p12
# The legacy PKCS#12 PBE (pbeWithSHAAnd3-KeyTripleDES-CBC), MAC SHA-1.
openssl pkcs12 -export -inkey sw-rsa3072.pem -in sw-moon.pem -certfile sw-ca.pem \
    -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES -macalg sha1 -passout pass:"$PW" -out sw-moon.3des.p12
# strongSwan reads what OpenSSL wrote (sanity check of the fixture).
pki --pkcs12 --list --in sw-moon.aes.p12 >/dev/null 2>&1 <<<"$PW" || true
