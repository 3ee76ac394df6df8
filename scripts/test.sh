#!/usr/bin/env bash
# Runs the whole oxisec test suite: formatting, lints, unit and integration
# tests including the interop tests against strongSwan in network namespaces.
#
#   sudo scripts/test.sh
#
# Meant for a fresh Debian machine (and CI: .ci/run calls this). As root it
# installs whatever test tool is missing (apt), and it makes a missing
# prerequisite of the interop tests a failure rather than a skip
# (OXISEC_INTEROP_REQUIRED=1), so that a green run means they really ran.
# Without root the interop tests skip with a printed reason.
#
# Serial interop tests: every interop test takes a process-wide lock
# (tests/common/mod.rs, `serial()`), and cargo runs test binaries one after
# the other, so no two namespace topologies run at once — even with a plain
# `cargo test` and its default parallel threads. On 2 cores two userspace
# data planes plus iperf3 in parallel would starve each other (handshake
# timeouts, meaningless throughput, interleaved logs). Other tests still run
# in parallel. `--no-fail-fast` so that a failing crate does not hide the
# results of the others.
#
# Environment: CARGO_TARGET_DIR is honoured; OXISEC_KEEP_LOGS=1 keeps every
# interop test's files under $TMPDIR/oxisec-interop (failing tests always
# keep theirs).
set -euo pipefail

cd "$(dirname "$0")/.."
# Root's PATH from some runners lacks the sbin directories (ip, swanctl, nft).
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# libstrongswan-standard-plugins (openssl: X25519, ChaCha20-Poly1305, AES-GCM)
# is only a Recommends of libstrongswan, so it is named explicitly.
PACKAGES=(strongswan-charon strongswan-swanctl libcharon-extra-plugins strongswan-pki
          libstrongswan-standard-plugins
          iperf3 nftables iproute2 iputils-ping procps)

step() { printf '\n==> %s\n' "$*"; }

is_root=0
[ "$(id -u)" -eq 0 ] && is_root=1

step "checking packages"
missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$is_root" -eq 1 ]; then
        echo "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y "${PACKAGES[@]}"
    else
        echo "missing packages (need root to install): ${missing[*]}" >&2
        echo "the interop tests will skip" >&2
    fi
else
    echo "all present"
fi

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install the stable Rust toolchain (rustup, or Debian's cargo >= 1.85)" >&2
    exit 1
fi

if [ "$is_root" -eq 1 ]; then
    export OXISEC_INTEROP_REQUIRED=1
else
    echo "WARNING: not root: the network-namespace tests will be skipped" >&2
fi

# Every step runs even if an earlier one failed, so that one CI run reports
# all problems (a formatting slip should not hide a failing test).
failed=()
run_step() {
    local t=$SECONDS
    step "$*"
    if "$@"; then
        printf '    ok (%ss)\n' "$((SECONDS - t))"
    else
        printf '    FAILED (%ss)\n' "$((SECONDS - t))"
        failed+=("$*")
    fi
}

run_step cargo fmt --all -- --check
run_step cargo clippy --workspace --all-targets -- -D warnings
run_step cargo test --workspace --no-fail-fast

if [ "${#failed[@]}" -gt 0 ]; then
    step "FAILED after ${SECONDS}s:"
    printf '    %s\n' "${failed[@]}"
    exit 1
fi
step "all checks passed (${SECONDS}s)"
