#!/usr/bin/env bash
# SMTP intake latency with and without admin queries running beside it (issue: "admin
# queries never block SMTP"). Starts `rebound sink` and `rebound serve` (release build),
# fills the store with PREFILL delivered messages, then measures intake latency with
# bench/smtp_latency twice: alone, and while two loops keep asking for the undelivered
# report and a 1,000-event page of the log. Figures go in bench/BENCHMARKS.md.
#
#   cargo build --release --bin rebound --example smtp_latency
#   PREFILL=100000 bench/report_load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PREFILL=${PREFILL:-100000}
N=${N:-3000}
C=${C:-10}
BIN=target/release/rebound
LAT=target/release/examples/smtp_latency
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/rebound.toml" <<TOML
[server]
hostname = "bench.test"
data_dir = "$work/data"
[smtp]
listen = ["127.0.0.1:12525"]
[api]
listen = "127.0.0.1:18025"
token = "bench-token"
[delivery]
tls = "disabled"
[delivery.routes]
"*" = "127.0.0.1:12526"
TOML
"$BIN" sink --listen 127.0.0.1:12526 > /dev/null &
REBOUND_RUNTIME_DIR="$work/rt" "$BIN" serve --config "$work/rebound.toml" 2> "$work/serve.log" &
for _ in $(seq 100); do curl -fs http://127.0.0.1:18025/healthz > /dev/null && break; sleep 0.1; done
echo "prefill: $PREFILL messages"
"$LAT" 127.0.0.1:12525 "$PREFILL" 50 > /dev/null
echo "waiting until every prefilled message is delivered"
until curl -fs -H "Authorization: Bearer bench-token" "http://127.0.0.1:18025/v1/queue?limit=1" | grep -q '"items":\[\]'; do sleep 1; done
echo "== intake latency alone ($N messages, $C clients)"
"$LAT" 127.0.0.1:12525 "$N" "$C"
query() {
    while true; do
        curl -fs -H "Authorization: Bearer bench-token" "http://127.0.0.1:18025$1" > /dev/null || true
    done
}
query "/v1/reports/undelivered?days=30" & q1=$!
query "/v1/events?limit=1000" & q2=$!
sleep 1
echo "== intake latency while two query loops run"
"$LAT" 127.0.0.1:12525 "$N" "$C"
kill $q1 $q2
t0=$(date +%s.%N)
curl -fs -H "Authorization: Bearer bench-token" "http://127.0.0.1:18025/v1/reports/undelivered?days=30" > /dev/null
t1=$(date +%s.%N)
echo "one undelivered report over $PREFILL+ messages: $(echo "($t1 - $t0) * 1000" | bc) ms"
