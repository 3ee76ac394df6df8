#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a fixed time and reports how many
# inputs each one executed.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 60); TARGETs default to all of `cargo fuzz list`.
# Exits non-zero if any target crashed (panic, failed assertion, sanitizer
# report, timeout, out of memory) or did not build; the crashing input is in
# fuzz/artifacts/<target>/ and its hex is printed.
#
# Only the stable toolchain exists here: cargo-fuzz needs nightly flags
# (-Zsanitizer), which RUSTC_BOOTSTRAP=1 unlocks on stable. cargo-fuzz itself
# is installed from crates.io if missing.
#
# The committed seed corpora (fuzz/corpus/<target>) are only read: what the
# fuzzer discovers goes to a scratch directory, removed afterwards unless
# FUZZ_WORKDIR names one to keep (e.g. a CI cache to grow the corpus across
# runs). CARGO_TARGET_DIR is honoured.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

seconds=${1:-60}
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: $0 [SECONDS] [TARGET...]" >&2
    exit 2
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

cd "$root/fuzz"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
if [ "${#targets[@]}" -eq 0 ]; then
    echo "no fuzz targets found" >&2
    exit 1
fi

if [ -n "${FUZZ_WORKDIR:-}" ]; then
    work=$FUZZ_WORKDIR
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/oxisec-fuzz.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi

echo "==> building ${targets[*]}"
for t in "${targets[@]}"; do
    if ! cargo fuzz build "$t"; then
        echo "FAILED to build fuzz target $t" >&2
        exit 1
    fi
done

declare -A result execs
failed=0
for t in "${targets[@]}"; do
    echo "==> fuzzing $t for ${seconds}s"
    mkdir -p "$work/corpus/$t" "$root/fuzz/artifacts/$t"
    seeds=()
    [ -d "$root/fuzz/corpus/$t" ] && seeds=("$root/fuzz/corpus/$t")
    log="$work/$t.log"
    # The first corpus directory receives new inputs; the seeds are read only.
    # -timeout: an input taking this long counts as a hang (a crash).
    set +e
    cargo fuzz run "$t" "$work/corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=30 -print_final_stats=1 \
        -artifact_prefix="$root/fuzz/artifacts/$t/" >"$log" 2>&1 </dev/null
    rc=$?
    set -e
    n=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    [ -n "$n" ] || n=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -n 1)
    execs[$t]=${n:-?}
    if [ "$rc" -eq 0 ]; then
        result[$t]=ok
        echo "    $t: ${execs[$t]} executions"
    else
        result[$t]="FAILED (exit $rc)"
        failed=1
        echo "    $t: FAILED after ${execs[$t]} executions; end of its log:"
        tail -n 60 "$log" | sed 's/^/    | /'
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        if [ -n "$artifact" ] && [ -f "$artifact" ]; then
            echo "    input ($(wc -c <"$artifact") bytes) as hex:"
            od -An -v -tx1 "$artifact" | tr -d ' \n' | fold -w 64 | sed 's/^/    /'
            echo
            echo "    reproduce: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $t $artifact"
        fi
    fi
done

echo
echo "==> summary (${seconds}s per target)"
for t in "${targets[@]}"; do
    printf '    %-20s %12s executions  %s\n' "$t" "${execs[$t]}" "${result[$t]}"
done
exit "$failed"
