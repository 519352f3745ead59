#!/bin/sh
# Checks systemd/rebound.service: `systemd-analyze verify` must be clean and the
# offline security exposure must be <= 2.0. Usage (from the repo root):
#   sh tests/systemd_unit.sh [path/to/rebound-binary]
# The binary (default target/debug/rebound, built if missing) stands in for
# /usr/local/bin/rebound so verify can check ExecStart.
set -eu
unit=systemd/rebound.service
max=2.0
bin=${1:-target/debug/rebound}
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing: apt-get install -y systemd" >&2; exit 2; }
[ -x "$bin" ] || cargo build --bin rebound
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/local/bin/rebound|$bin|" "$unit" > "$tmp/rebound.service"
if ! out=$(systemd-analyze verify "$tmp/rebound.service" 2>&1) || [ -n "$out" ]; then
    echo "systemd-analyze verify is not clean:" >&2
    echo "$out" >&2
    exit 1
fi
level=$(systemd-analyze security --offline=yes "$unit" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$level" ] || { echo "no exposure level reported" >&2; exit 1; }
if awk -v l="$level" -v m="$max" 'BEGIN { exit !(l > m) }'; then
    echo "exposure $level is above $max" >&2
    exit 1
fi
echo "systemd unit OK: verify clean, exposure $level <= $max"
