#!/usr/bin/env bash
# A/B: time for BIN to take N messages over SMTP (Postfix smtp-source, 50 clients) and
# deliver them all to Postfix smtp-sink. Run two builds one after the other, alternating:
#   bench/ab_relay.sh OLD/rebound 5000 17525; bench/ab_relay.sh target/release/rebound 5000 18525
set -euo pipefail
BIN=$1; N=${2:-5000}; PORT=${3:-13525}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/r.toml" <<TOML
[server]
hostname = "bench.test"
data_dir = "$work/data"
[smtp]
listen = ["127.0.0.1:$PORT"]
[api]
listen = "127.0.0.1:$((PORT+1))"
token = "t"
[delivery]
tls = "disabled"
per_domain_concurrency = 20
[delivery.routes]
"*" = "127.0.0.1:$((PORT+2))"
TOML
smtp-sink -u nobody -c 127.0.0.1:$((PORT+2)) 1000 > "$work/sink.log" 2>&1 &
REBOUND_RUNTIME_DIR="$work/rt" "$BIN" serve --config "$work/r.toml" 2> "$work/serve.log" &
for _ in $(seq 100); do curl -fs http://127.0.0.1:$((PORT+1))/healthz > /dev/null && break; sleep 0.1; done
t0=$(date +%s.%N)
smtp-source -s 50 -m $N -f a@app.test -t r@sink.test 127.0.0.1:$PORT
until curl -fs -H "Authorization: Bearer t" "http://127.0.0.1:$((PORT+1))/metrics" | grep -q "rebound_recipients_total{status=\"delivered\"} $N\$"; do sleep 0.2; done
t1=$(date +%s.%N)
echo "$BIN: $N messages in and delivered in $(echo "$t1 - $t0" | bc) s"
