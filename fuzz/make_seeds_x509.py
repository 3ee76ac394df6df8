#!/usr/bin/env python3
"""Writes the seed corpus of the x509_chain fuzz target from the pki test
fixtures (crates/pki/tests/data, made by make_fixtures.sh there).

    python3 fuzz/make_seeds_x509.py   # rewrites fuzz/corpus/x509_chain/seed-*

The record format and the meaning of each op are documented at the top of
fuzz_targets/x509_chain.rs.
"""
import base64
import os
import re
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "crates", "pki", "tests", "data")
OUT = os.path.join(HERE, "corpus", "x509_chain")
CERT, BUNDLE, CRL_FILE, CRL_CACHE, CLAIM, POLICY, SIG = 0, 1, 2, 3, 4, 5, 6
DN, FQDN, EMAIL, IP = 0, 1, 2, 3


def rec(op, data=b""):
    return bytes([op]) + struct.pack(">H", len(data)) + data


def raw(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def pem_der(name):
    body = re.search(rb"-----BEGIN CERTIFICATE-----(.*?)-----END", raw(name), re.S).group(1)
    return base64.b64decode(b"".join(body.split()))


def write(name, data):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "seed-" + name), "wb") as f:
        f.write(data)


moon, carol, ca, crl = pem_der("sw-moon.pem"), pem_der("sw-carol.pem"), pem_der("sw-ca.pem"), raw("sw-ca.crl")
write("moon-fqdn", rec(CERT, moon) + rec(CLAIM | FQDN << 3, b"moon.strongswan.org"))
write("moon-strict-cached-crl",
      rec(CERT, moon) + rec(POLICY, bytes([0, 0, 4])) + rec(CRL_CACHE, crl) + rec(CLAIM | IP << 3, bytes([192, 0, 2, 10])))
write("carol-revoked-file-crl",
      rec(CERT, carol) + rec(CRL_FILE, crl) + rec(POLICY, bytes([1, 1, 4])) + rec(CLAIM | EMAIL << 3, b"carol@strongswan.org"))
write("moon-empty-dn-with-ca", rec(CERT, moon) + rec(CERT, ca) + rec(CLAIM | DN << 3))
write("pem-bundle", rec(BUNDLE, raw("sw-moon.pem") + raw("sw-ca.pem")) + rec(SIG, bytes(64)))
