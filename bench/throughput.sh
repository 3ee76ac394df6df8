#!/usr/bin/env bash
# End-to-end throughput: iperf3, one TCP stream, through a tunnel between two
# network namespaces, in one run so that the rows compare (absolute numbers
# drift from machine to machine and with load).
#
#   sudo bench/throughput.sh            # 5 s per row, 1 run
#   sudo OXISEC_BENCH_RUNS=3 OXISEC_BENCH_SECS=10 bench/throughput.sh
#   sudo OXISEC_BENCH_OXISEC=1 bench/throughput.sh   # once the daemon works
#
# Rows: plain veth; strongSwan <-> strongSwan (kernel-libipsec, encap=yes)
# with AES-128-GCM and ChaCha20-Poly1305; oxisec <-> oxisec and oxisec <->
# strongSwan in both roles (printed as "pending" until OXISEC_BENCH_OXISEC=1).
#
# The namespaces, peers and measurement are the interop test harness
# (crates/oxisec/tests/throughput.rs, tests/common/); this script builds it in
# release mode, so the oxisec binary under test is optimised. The machine
# should be otherwise idle: on 2 cores anything else running shows up here.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

if [ "$(id -u)" -ne 0 ]; then
    echo "bench/throughput.sh needs root (network namespaces)" >&2
    exit 1
fi
for tool in iperf3 swanctl ip; do
    command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/test.sh once to install the tools" >&2; exit 1; }
done

echo "kernel $(uname -r), $(nproc) CPU(s), $(/usr/lib/ipsec/charon --version 2>/dev/null | head -1 || echo 'charon ?'), $(iperf3 --version | head -1)"
export OXISEC_INTEROP_REQUIRED=1
exec cargo test --release -p oxisec --test throughput -- --ignored --nocapture --test-threads=1 throughput_table
