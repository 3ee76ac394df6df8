#!/usr/bin/env bash
# The main job in one command on a fresh Debian machine, as root:
#
#   sudo scripts/demo.sh
#
# Builds oxisec and runs `oxisec demo`: two network namespaces joined by a
# veth pair, an oxisec gateway in each, an IKEv2/ESP tunnel between their
# subnets, a ping through it, the status of one side, and everything removed
# again (also when interrupted). Extra arguments go to `oxisec demo`
# (`--keep` leaves the namespaces and daemons running for you to explore).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
. scripts/setup.sh

if ! is_root; then
    echo "oxisec demo creates network namespaces and TUN devices: run it as root (sudo $0)" >&2
    exit 1
fi
ensure_packages iproute2 iputils-ping procps nftables   # nftables: the inbound cleartext filter
ensure_rust
echo "==> building oxisec (release)"
cargo build --release --locked --bin oxisec
exec "${CARGO_TARGET_DIR:-target}/release/oxisec" demo "$@"
