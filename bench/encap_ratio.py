#!/usr/bin/env python3
"""Summarise `cargo bench -p oxisec-esp --bench encap`: per suite and size,
encapsulation and decapsulation next to the bare AEAD seal and open, and
their ratio (the issue's target: encapsulation at 1400 bytes >= 80 % of the
raw AEAD's throughput).

    cargo bench -p oxisec-esp --bench encap
    bench/encap_ratio.py            # reads $CARGO_TARGET_DIR or target/

Reads criterion's estimates (median) from <target>/criterion/esp/.
"""
import json
import os
import sys

target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "target")
root = os.path.join(target, "criterion", "esp")
if not os.path.isdir(root):
    sys.exit(f"no criterion results in {root}: run cargo bench -p oxisec-esp --bench encap")


def median_ns(bench_id):
    path = os.path.join(root, bench_id.replace("/", "_"), "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def gibs(size, ns):
    return size / ns * 1e9 / 2**30


print(f"{'suite':<18} {'bytes':>5} {'raw seal':>10} {'encap':>10} {'encap/raw':>9}"
      f" {'raw open':>10} {'decap':>10} {'decap/raw':>9}   (GiB/s, median)")
for suite in ["aes128gcm", "aes256gcm", "chacha20poly1305", "aes128cbc-sha256"]:
    for size in [64, 512, 1400]:
        vals = {k: median_ns(f"{k}/{suite}/{size}")
                for k in ["raw-seal", "encap", "raw-open", "decap"]}
        if vals["encap"] is None:
            continue
        cell = lambda k: f"{gibs(size, vals[k]):10.2f}" if vals[k] else f"{'-':>10}"
        ratio = lambda a, b: (f"{vals[b] / vals[a] * 100:8.0f}%"
                              if vals[a] and vals[b] else f"{'-':>9}")
        print(f"{suite:<18} {size:>5} {cell('raw-seal')} {cell('encap')} {ratio('encap', 'raw-seal')}"
              f" {cell('raw-open')} {cell('decap')} {ratio('decap', 'raw-open')}")
