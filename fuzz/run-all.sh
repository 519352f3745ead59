#!/bin/sh
# Runs every fuzz target for SECONDS each (default 60) with optimisations
# (`-O`: mail-parser panics in debug-assertion builds on some malformed
# multiparts), starting from fuzz/seeds/<target>/ (bounce targets also from
# ../tests/fixtures/bounce/). Crashes land in
# fuzz/artifacts/<target>/; turn each into a regression test in ../tests/.
# Needs: rustup nightly, `cargo install cargo-fuzz --locked`.
set -eu
cd "$(dirname "$0")"
secs=${1:-60}
failed=""
for t in $(cargo +nightly fuzz list); do
    mkdir -p "corpus/$t"
    echo "== $t ($secs s)"
    extra=""
    case "$t" in bounce_classify|arf) extra="../tests/fixtures/bounce" ;; esac
    # shellcheck disable=SC2086
    if ! cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" $extra -- -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048; then
        failed="$failed $t"
    fi
done
if [ -n "$failed" ]; then
    echo "crashes in:$failed" >&2
    exit 1
fi
echo "all targets ran $secs s without a crash"
