#!/usr/bin/env python3
"""Writes the seed corpora of the esp_decap and ike_responder fuzz targets.

    python3 fuzz/make_seeds.py        # rewrites fuzz/corpus/{esp_decap,ike_responder}/seed-*

The input formats are documented at the top of each target; both are a
sequence of records `op(1) | length(2, big endian) | data`, and
ike_responder's starts with a mode byte. The fuzz targets do the
cryptography themselves (they seal what the seeds give in plaintext), so
the seeds are plain structures and this script needs nothing but Python.
Addresses are from the documentation ranges, as in the targets.
"""
import ipaddress
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def rec(op, data=b""):
    return bytes([op]) + struct.pack(">H", len(data)) + data


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- esp_decap

def ipv4(src, dst, proto, l4):
    total = 20 + len(l4)
    return (bytes([0x45, 0]) + struct.pack(">H", total) + bytes([0, 1, 0, 0, 64, proto, 0, 0])
            + ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed + l4)


def ipv6(src, dst, proto, l4):
    return (bytes([0x60, 0, 0, 0]) + struct.pack(">H", len(l4)) + bytes([proto, 64])
            + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + l4)


def udp(sport, dport, payload):
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def trailer(inner, align, next_header):
    pad = (align - (len(inner) + 2) % align) % align
    return inner + bytes(range(1, pad + 1)) + bytes([pad, next_header])


# SA index n = 2 * suite + esn; suites: 0 ChaCha20-Poly1305, then for 128,
# 192, 256 bits: GCM, CBC+SHA-256, CBC+SHA-384, CBC+SHA-512. n % 3 == 2 has
# narrow selectors (A = 192.0.2.0/24, 2001:db8:a::/48 -> B = 198.51.100.0/24
# UDP 53, 2001:db8:b::/48).
ENCAP, SEAL, RAW, SPI = 1, 2, 0, 3
V4 = ipv4("192.0.2.10", "198.51.100.20", 17, udp(12345, 53, b"seed"))
V6 = ipv6("2001:db8:a::10", "2001:db8:b::20", 17, udp(12345, 53, b"seed six"))
ICMP = ipv4("192.0.2.10", "198.51.100.20", 1, bytes([8, 0, 0, 0, 0, 1, 0, 1]))


def op(sa, kind):
    return (sa << 2) | kind


write("esp_decap", "encap-every-kind",
      rec(op(0, ENCAP), V4) + rec(op(2, ENCAP), V6) + rec(op(4, ENCAP), ICMP)
      + rec(op(5, ENCAP), V4) + rec(op(9, ENCAP), V6))
write("esp_decap", "seal-gcm-esn",
      rec(op(3, SEAL), struct.pack(">Q", 1) + trailer(V4, 4, 4))
      + rec(op(3, SEAL), struct.pack(">Q", 0x1_0000_0002) + trailer(V6, 4, 41))
      + rec(op(3, SEAL), struct.pack(">Q", 3) + trailer(V4, 4, 59)))
write("esp_decap", "seal-cbc-replay",
      rec(op(4, SEAL), struct.pack(">Q", 100) + trailer(V4, 16, 4))
      + rec(op(4, SEAL), struct.pack(">Q", 100) + trailer(V4, 16, 4))
      + rec(op(4, SEAL), struct.pack(">Q", 2) + trailer(V4, 16, 4))
      + rec(op(4, SEAL), struct.pack(">Q", 99) + trailer(V4, 16, 6)))
write("esp_decap", "raw-and-spi",
      rec(op(0, RAW), struct.pack(">II", 0x1000, 1) + bytes(40))
      + rec(op(7, SPI), struct.pack(">II", 0, 7) + bytes(range(48)))
      + rec(op(1, RAW), b"\x00\x00\x10\x01"))
write("esp_decap", "seal-bad-padding",
      rec(op(0, SEAL), struct.pack(">Q", 5) + V4 + bytes([9, 9, 2, 4]))
      + rec(op(24, SEAL), struct.pack(">Q", 6) + V4 + bytes([0, 4])))


# ------------------------------------------------------------ ike_responder

# Payload types and numbers from RFC 7296 / IANA.
SA, KE, IDI, IDR, AUTH, NONCE, N, D, TSI, TSR = 33, 34, 35, 36, 39, 40, 41, 42, 44, 45
IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL = 34, 35, 36, 37
INITIATOR, RESPONSE = 0x08, 0x20


def chain(payloads):
    """payloads: [(type, body)] -> (first type, bytes) with generic headers."""
    out = b""
    for i, (ty, body) in enumerate(payloads):
        nxt = payloads[i + 1][0] if i + 1 < len(payloads) else 0
        out += bytes([nxt, 0]) + struct.pack(">H", 4 + len(body)) + body
    return (payloads[0][0] if payloads else 0), out


def transform(ty, tid, key_bits=None, last=False):
    attrs = struct.pack(">HH", 0x800E, key_bits) if key_bits else b""
    return bytes([0 if last else 3, 0]) + struct.pack(">HBBH", 8 + len(attrs), ty, 0, tid) + attrs


def proposal(num, proto, spi, transforms):
    body = b"".join(transform(*t, last=(i == len(transforms) - 1)) for i, t in enumerate(transforms))
    return bytes([0, 0]) + struct.pack(">HBBBB", 8 + len(spi) + len(body), num, proto, len(spi),
                                       len(transforms)) + spi + body


ENCR, PRF, INTEG, DH, ESN = 1, 2, 3, 4, 5
IKE_GCM = proposal(1, 1, b"", [(ENCR, 20, 128), (PRF, 5), (DH, 31)])
ESP_GCM = proposal(1, 3, struct.pack(">I", 0xC0FFEE02), [(ENCR, 20, 128), (ESN, 0)])
ESP_CBC = proposal(1, 3, struct.pack(">I", 0xC0FFEE03), [(ENCR, 12, 256), (INTEG, 12), (ESN, 0)])


def ts(prefix):
    net = ipaddress.IPv4Network(prefix)
    sel = bytes([7, 0]) + struct.pack(">HHH", 16, 0, 65535) + net[0].packed + net[-1].packed
    return bytes([1, 0, 0, 0]) + sel


def ident(name):
    return bytes([2, 0, 0, 0]) + name.encode()


def notify(ty, data=b"", proto=0, spi=b""):
    return bytes([proto, len(spi)]) + struct.pack(">H", ty) + spi + data


def delete(proto, spis):
    size = len(spis[0]) if spis else 0
    return bytes([proto, size]) + struct.pack(">H", len(spis)) + b"".join(spis)


def sealed(kind, exchange, flags, msg_id, payloads):
    first, body = chain(payloads)
    return rec(kind, bytes([exchange, flags]) + struct.pack(">I", msg_id) + bytes([first]) + body)


def header(spi_i, spi_r, first, exchange, flags, msg_id, body):
    return (struct.pack(">QQBBBBII", spi_i, spi_r, first, 0x20, exchange, flags, msg_id,
                        28 + len(body)) + body)


# A fresh IKE_SA_INIT from another SPI (the X25519 base point as key share).
first, body = chain([(SA, IKE_GCM), (KE, struct.pack(">HH", 31, 0) + bytes([9]) + bytes(31)),
                     (NONCE, bytes(range(32))), (N, notify(16388, bytes(20))),
                     (N, notify(16389, bytes(20)))])
INIT = header(0x1122334455667788, 0, first, IKE_SA_INIT, INITIATOR, 0, body)
AUTH_PAYLOADS = [(IDI, ident("gw-a.example.com")), (IDR, ident("gw-b.example.com")),
                 (AUTH, bytes([2, 0, 0, 0]) + bytes(32)), (SA, ESP_GCM),
                 (TSI, ts("198.51.100.0/24")), (TSR, ts("203.0.113.0/24"))]
SEAL, AUTHFIX, TIME, CMD, RESEND, REFLECT, RAW, SPIFIX = 2, 3, 4, 5, 6, 7, 0, 1
PORT4500 = 0x08

write("ike_responder", "raw-init", bytes([0x00]) + rec(RAW, INIT) + rec(RESEND) + rec(TIME, b"\x00\x1f"))
write("ike_responder", "auth-fixed-up",
      bytes([0x01]) + sealed(AUTHFIX | PORT4500, IKE_AUTH, INITIATOR, 1, AUTH_PAYLOADS)
      + sealed(SEAL | PORT4500, INFORMATIONAL, INITIATOR, 2, []))
write("ike_responder", "established-deletes",
      bytes([0x03]) + sealed(SEAL | PORT4500, INFORMATIONAL, INITIATOR, 2, [])
      + sealed(SEAL | PORT4500, INFORMATIONAL, INITIATOR, 3,
               [(D, delete(3, [struct.pack(">I", 0xC0FFEE01)]))])
      + sealed(SEAL | PORT4500, INFORMATIONAL, INITIATOR, 4, [(D, delete(1, []))]))
write("ike_responder", "cbc-create-child",
      bytes([0x07]) + sealed(SEAL | PORT4500, CREATE_CHILD_SA, INITIATOR, 2,
                             [(SA, ESP_CBC), (NONCE, bytes(32)), (TSI, ts("198.51.100.0/24")),
                              (TSR, ts("203.0.113.0/24"))])
      + rec(TIME, b"\x00\x00") + rec(CMD, b"\x03"))
write("ike_responder", "responder-deletes",
      bytes([0x0B]) + rec(CMD, b"\x02")
      + sealed(SEAL | PORT4500, INFORMATIONAL, INITIATOR | RESPONSE, 0, [])
      + rec(REFLECT, b"\x01") + rec(TIME, b"\x00\x00"))
write("ike_responder", "half-open-garbage",
      bytes([0x31]) + rec(SPIFIX, bytes(16) + bytes([0x2e, 0x20, 35, 0x08, 0, 0, 0, 1, 0, 0, 0, 28]))
      + rec(REFLECT) + rec(TIME, b"\x00\x1e") + rec(CMD, b"\x00"))

# EAP-TLS (mode 0x41): the user's IKE_AUTH without AUTH starts EAP; then an
# EAP-TLS response in two fragments (L and M flags, the start of a TLS
# ClientHello record), an acknowledgement and one with a bad length; the
# harness gives them the identifier of the gateway's last request.
EAP = 48


def eap_tls(ident, flags, data, total=None):
    body = bytes([flags]) + (struct.pack(">I", total) if total is not None else b"") + data
    return bytes([2, ident]) + struct.pack(">H", 5 + len(body)) + bytes([13]) + body


HELLO = bytes([0x16, 3, 1, 0, 0x40, 1, 0, 0, 0x3c, 3, 3]) + bytes(range(32)) + bytes(30)
write("ike_responder", "eap-tls-fragments",
      bytes([0x41])
      + sealed(AUTHFIX | PORT4500, IKE_AUTH, INITIATOR, 2,
               [(EAP, eap_tls(1, 0xC0, HELLO[:40], len(HELLO)))])
      + sealed(AUTHFIX | PORT4500, IKE_AUTH, INITIATOR, 3, [(EAP, eap_tls(2, 0x00, HELLO[40:]))])
      + sealed(AUTHFIX | PORT4500, IKE_AUTH, INITIATOR, 4, [(EAP, eap_tls(3, 0x00, b""))])
      + sealed(AUTHFIX | PORT4500, IKE_AUTH, INITIATOR, 5, [(EAP, eap_tls(4, 0x80, b"\x16", 0xFFFFFF))]))
