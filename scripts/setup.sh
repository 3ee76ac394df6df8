#!/usr/bin/env bash
# Shared set-up for scripts/demo.sh and scripts/test.sh on a fresh Debian
# machine: installs the Debian packages a script needs (only the missing ones,
# only as root) and a Rust toolchain when there is no cargo.
#
#   source scripts/setup.sh; ensure_packages iproute2 iputils-ping; ensure_rust
#
# Rust: Debian's own cargo is too old for this workspace (edition 2024), so a
# missing toolchain comes from rustup (https://rustup.rs), installed for the
# current user with the default profile.

# Root's PATH from some runners lacks the sbin directories (ip, swanctl, nft).
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin:$HOME/.cargo/bin"

is_root() { [ "$(id -u)" -eq 0 ]; }

# Installs the given packages if any is missing. Without root it only warns.
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if is_root; then
        echo "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y "$@"
    else
        echo "missing packages (need root to install): ${missing[*]}" >&2
        return 1
    fi
}

# Makes sure cargo (and a C compiler for aws-lc-sys) is there.
ensure_rust() {
    if command -v cargo >/dev/null; then
        return 0
    fi
    ensure_packages curl ca-certificates build-essential || return 1
    echo "no cargo: installing the stable Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
}
