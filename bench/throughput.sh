#!/usr/bin/env bash
# End-to-end data-plane performance through a tunnel between two network
# namespaces, every row in one run so that the rows compare (absolute numbers
# drift from machine to machine and with load):
#
#   sudo bench/throughput.sh                          # build (release) + measure, ~4 min of measuring
#   sudo OXISEC_BENCH_RUNS=3 OXISEC_BENCH_SECS=10 bench/throughput.sh
#   sudo OXISEC_BENCH_ONLY=veth,ss-gcm,ox-gcm bench/throughput.sh
#   sudo OXISEC_BENCH_ABLATION=1 bench/throughput.sh  # + oxisec rows with optimisations off
#
# Rows: plain veth; strongSwan <-> strongSwan (kernel-libipsec, encap=yes);
# oxisec <-> oxisec; oxisec -> strongSwan; each tunnel with AES-128-GCM and
# ChaCha20-Poly1305. Columns: iperf3 TCP 1 and 4 streams, iperf3 UDP flood
# packets/s at 64 and 1400 bytes, ping RTT p50/p99; then the ratios to
# strongSwan and to veth and the added round trip.
#
# The namespaces, peers and measurement are the interop test harness
# (crates/oxisec/tests/throughput.rs, tests/common/); this script builds it in
# release mode, so the oxisec binary under test is optimised. The machine
# should be otherwise idle: on 2 cores anything else running shows up here.
#
# Criterion micro-benchmarks (encapsulation/decapsulation per suite and size
# next to the raw AEAD): cargo bench -p oxisec-esp --bench encap
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

if [ "$(id -u)" -ne 0 ]; then
    echo "bench/throughput.sh needs root (network namespaces)" >&2
    exit 1
fi
for tool in iperf3 swanctl ip ping; do
    command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/test.sh once to install the tools" >&2; exit 1; }
done

echo "kernel $(uname -r), $(nproc) CPU(s), $(/usr/lib/ipsec/charon --version 2>/dev/null | head -1 || echo 'charon ?'), $(iperf3 --version | head -1)"
export OXISEC_INTEROP_REQUIRED=1
start=$(date +%s)
cargo build --release -p oxisec --bin oxisec --test throughput
echo "build: $(( $(date +%s) - start )) s"
exec cargo test --release -p oxisec --test throughput -- --ignored --nocapture --test-threads=1 throughput_table
