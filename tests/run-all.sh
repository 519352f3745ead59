#!/usr/bin/env bash
# The whole test suite: unit, integration and whole-daemon tests, then the
# systemd unit check and a short fuzz smoke run of every target (skipped, loudly,
# when systemd-analyze or cargo-fuzz/nightly are missing).
# FUZZ_SECONDS (default 30) sets the time per fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked --all-targets

if command -v systemd-analyze >/dev/null 2>&1; then
    sh tests/systemd_unit.sh
else
    echo "SKIPPED: systemd unit check (apt-get install systemd; see .ci/run)" >&2
fi

if command -v schemathesis >/dev/null 2>&1; then
    tests/schemathesis.sh 50
else
    echo "SKIPPED: schemathesis API test (pip install schemathesis; see .ci/run)" >&2
fi

if [ -f fuzz/run-all.sh ]; then
    if command -v cargo-fuzz >/dev/null 2>&1 && rustup toolchain list | grep -q nightly; then
        sh fuzz/run-all.sh "${FUZZ_SECONDS:-30}"
    else
        echo "SKIPPED: fuzz smoke run (needs cargo-fuzz and the nightly toolchain; see .ci/run)" >&2
    fi
fi
echo "all tests passed"
