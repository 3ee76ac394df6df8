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
# shellcheck source=scripts/setup.sh
. scripts/setup.sh

# libstrongswan-standard-plugins (openssl: X25519, ChaCha20-Poly1305, AES-GCM)
# is only a Recommends of libstrongswan, so it is named explicitly;
# libstrongswan-extra-plugins has `cmac` (AES-CMAC integrity and PRF) for the
# algorithm matrix in crates/oxisec/tests/algs.rs. freeradius is the RADIUS
# server of crates/oxisec/tests/radius.rs (EAP pass-through).
PACKAGES=(strongswan-charon strongswan-swanctl libcharon-extra-plugins strongswan-pki
          libstrongswan-standard-plugins libstrongswan-extra-plugins
          iperf3 nftables iproute2 iputils-ping procps tcpdump
          freeradius)

step() { printf '\n==> %s\n' "$*"; }

as_root=0
is_root && as_root=1

step "checking packages and toolchain"
ensure_packages "${PACKAGES[@]}" || echo "the interop tests will skip" >&2
ensure_rust || { echo "no Rust toolchain and it cannot be installed" >&2; exit 1; }

if [ "$as_root" -eq 1 ]; then
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
# Every fuzz target for a short, bounded time (OXISEC_FUZZ_SECONDS, default
# 30 s each); OXISEC_SKIP_FUZZ=1 skips it (e.g. offline, without cargo-fuzz).
if [ "${OXISEC_SKIP_FUZZ:-0}" != 1 ]; then
    run_step scripts/fuzz.sh "${OXISEC_FUZZ_SECONDS:-30}"
fi

if [ "${#failed[@]}" -gt 0 ]; then
    step "FAILED after ${SECONDS}s:"
    printf '    %s\n' "${failed[@]}"
    exit 1
fi
step "all checks passed (${SECONDS}s)"
