#!/usr/bin/env bash
# Property-based test of the admin API against its OpenAPI document
# (src/api/openapi.json) with schemathesis from PyPI: no 5xx, every response
# matches the schema (status codes, content types, bodies), stateful links included.
# Usage: tests/schemathesis.sh [MAX_EXAMPLES]   (needs `schemathesis` on PATH and a built target/debug/rebound)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/debug/rebound
[ -x "$BIN" ] || cargo build --locked
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
smtp=$(port); api=$(port); dead=$(port)
cat > "$work/rebound.toml" <<TOML
[server]
hostname = "relay.test"
data_dir = "$work/data"
[smtp]
listen = ["127.0.0.1:$smtp"]
[api]
listen = "127.0.0.1:$api"
token = "schemathesis-token"
[delivery.routes]
"*" = "127.0.0.1:$dead"
[bounces]
domain = "bounces.relay.test"
TOML
"$BIN" serve --config "$work/rebound.toml" 2> "$work/log" &
pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$api/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
# Some data for the stateful phase: a queued message.
python3 - "$smtp" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.sendmail("app@school.test", ["someone@example.net"], "Subject: t\r\n\r\nx\r\n")
s.quit()
PY
schemathesis run "http://127.0.0.1:$api/v1/openapi.json" \
    -H "Authorization: Bearer schemathesis-token" \
    --max-examples "${1:-50}" --seed 1 \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance
if grep -q panicked "$work/log"; then
    echo "the daemon panicked during the run:" >&2
    grep -A5 panicked "$work/log" >&2
    exit 1
fi
