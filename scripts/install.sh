#!/usr/bin/env bash
# Installs oxisec from this checkout on a Debian machine, as root:
#
#   sudo scripts/install.sh
#
# Builds the release binary (installing a Rust toolchain and build tools when
# they are missing), copies it to $PREFIX/sbin/oxisec (PREFIX defaults to
# /usr/local), creates /etc/oxisec and /var/lib/oxisec (0700: keys, the users
# file and leases live there) and installs the systemd unit
# packaging/oxisec.service without starting it: the configuration comes
# first (README, "From an empty machine to a phone"). Running it again
# upgrades the binary and the unit; configuration, keys, users and leases are
# never touched. DESTDIR stages everything under another root (packaging;
# root is then not needed).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
. scripts/setup.sh

prefix=${PREFIX:-/usr/local}
dest=${DESTDIR:-}
if [ -z "$dest" ] && ! is_root; then
    echo "installing into $prefix and /etc needs root: sudo $0 (or set DESTDIR to stage the files)" >&2
    exit 1
fi
if [ -z "$dest" ]; then
    # The daemon needs `nft` for its inbound cleartext filter
    # ([daemon] inbound_policy); `ip` is there for you.
    ensure_packages iproute2 nftables ca-certificates
fi
ensure_rust
echo "==> building oxisec (release)"
cargo build --release --locked --bin oxisec
bin="${CARGO_TARGET_DIR:-target}/release/oxisec"

install -D -m 0755 "$bin" "$dest$prefix/sbin/oxisec"
install -d -m 0700 "$dest/etc/oxisec" "$dest/var/lib/oxisec"
unit=$(mktemp)
trap 'rm -f "$unit"' EXIT
sed "s|/usr/local/sbin/oxisec|$prefix/sbin/oxisec|g" packaging/oxisec.service >"$unit"
install -D -m 0644 "$unit" "$dest/etc/systemd/system/oxisec.service"
if [ -z "$dest" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
echo "installed: $dest$prefix/sbin/oxisec, $dest/etc/systemd/system/oxisec.service"
echo "next: write /etc/oxisec/oxisec.toml (README), then: systemctl enable --now oxisec"
