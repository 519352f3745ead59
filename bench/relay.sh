#!/usr/bin/env bash
# End-to-end relay benchmark: smtp-source -> rebound -> smtp-sink (and optionally
# the same load through a throw-away Postfix instance for a side-by-side ratio).
#
# Needs Postfix's test tools (the script installs nothing):
#   echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
#   DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
# and a release build: cargo build --release --bin rebound
#
# Usage: bench/relay.sh [-n MESSAGES] [-c CLIENTS] [-s SIZE] [-d] [-p] [-P] [-k]
#   -n  messages (20000)          -c  concurrent client sessions (50)
#   -s  message size in bytes (4096)
#   -d  smtp-source -d: keep each session open for several messages (default: one per session)
#   -p  also run Postfix with the same load     -P  run only Postfix
#   -k  keep the work directory
# Environment: PERF_OUT=FILE profiles rebound with `perf record -g` during the run;
#   PREFILL=N starts rebound on a queue of N deferred messages (needs
#     cargo build --release --example queue_scale);
#   LATENCY=1 then measures per-message intake latency with bench/smtp_latency.rs
#     (cargo build --release --example smtp_latency);
#   RB_CONCURRENCY / RB_PER_DOMAIN set delivery.concurrency / per_domain_concurrency (100 / 20);
#   RB_DKIM=rsa|ed25519|both DKIM-signs every message (dkim.domains = ["app.test"], smtp-source's
#     From domain; keys made in the work directory) and prints the signed/unsigned counters.
# Output: one line per system with acceptance and end-to-end messages/s, plus peak RSS.
set -euo pipefail

N=20000 C=50 SIZE=4096 REUSE="" POSTFIX=0 REBOUND=1 KEEP=0
while getopts "n:c:s:dpPk" o; do
  case $o in
    n) N=$OPTARG ;; c) C=$OPTARG ;; s) SIZE=$OPTARG ;; d) REUSE=-d ;;
    p) POSTFIX=1 ;; P) POSTFIX=1 REBOUND=0 ;; k) KEEP=1 ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${REBOUND_BIN:-$ROOT/target/release/rebound}
WORK=$(mktemp -d /tmp/rebound-bench.XXXXXX)
chmod 755 "$WORK" # the Postfix daemons run as user postfix
SINK_PORT=${SINK_PORT:-24125} RB_PORT=${RB_PORT:-24126} API_PORT=${API_PORT:-24127} PF_PORT=${PF_PORT:-24128}
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -f "$WORK/postfix/main.cf" ]; then postfix -c "$WORK/postfix" stop >/dev/null 2>&1 || true; fi
  wait 2>/dev/null || true
  if [ "$KEEP" = 0 ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

for t in smtp-source smtp-sink; do
  command -v $t >/dev/null || { echo "$t missing: apt-get install postfix (see the header)"; exit 1; }
done

now() { date +%s.%N; }

# smtp-sink -c prints "sess=.. quit=.. mesg=N" after every message; the last N counts.
sink_count() { tr '\r' '\n' < "$1" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 || true; }

start_sink() {
  : > "$WORK/sink.out"
  smtp-sink -c -u postfix "127.0.0.1:$SINK_PORT" 1000 > "$WORK/sink.out" 2>&1 &
  SINK_PID=$!; PIDS+=("$SINK_PID")
  sleep 0.3
}

stop_sink() { kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; }

# Drives $1:$2 and waits until the sink has counted N messages; prints the figures.
drive() {
  local name=$1 port=$2 pid=${3:-}
  local t0 t1 t2 n
  t0=$(now)
  smtp-source $REUSE -s "$C" -m "$N" -l "$SIZE" -f bench@app.test -t rcpt@sink.test "127.0.0.1:$port" > "$WORK/source.out" 2>&1 \
    || { echo "$name: smtp-source failed:"; cat "$WORK/source.out"; return 1; }
  t1=$(now)
  local deadline=$(( $(date +%s) + 600 ))
  while :; do
    n=$(sink_count "$WORK/sink.out"); n=${n:-0}
    [ "$n" -ge "$N" ] && break
    [ "$(date +%s)" -gt "$deadline" ] && { echo "timeout: sink has $n of $N"; break; }
    sleep 0.05
  done
  t2=$(now)
  local rss="n/a" cpu="n/a"
  if [ -n "$pid" ]; then
    rss=$(awk '/VmHWM/ {print $2" "$3}' "/proc/$pid/status")
    # utime+stime of the whole process (fields 14, 15; the name has no spaces), per message
    cpu=$(awk -v n="$N" -v hz="$(getconf CLK_TCK)" '{printf "%.3f ms", ($14+$15)*1000/hz/n}' "/proc/$pid/stat")
  fi
  awk -v name="$name" -v n="$N" -v got="$n" -v c="$C" -v s="$SIZE" -v a="$t0" -v b="$t1" -v e="$t2" -v rss="$rss" -v cpu="$cpu" 'BEGIN {
    printf "%-8s N=%d C=%d size=%d  accept: %.2fs %.0f msg/s  end-to-end: %.2fs %.0f msg/s (sink got %d)  peak RSS: %s  CPU/msg: %s\n",
      name, n, c, s, b-a, n/(b-a), e-a, got/(e-a), got, rss, cpu }'
}

run_rebound() {
  [ -x "$BIN" ] || { echo "$BIN missing: cargo build --release --bin rebound"; exit 1; }
  mkdir -p "$WORK/rebound"
  cat > "$WORK/rebound.toml" <<TOML
[server]
hostname = "relay.bench.test"
data_dir = "$WORK/rebound/data"
[smtp]
listen = ["127.0.0.1:$RB_PORT"]
max_connections = 2000
min_free_space = 0
[delivery]
tls = "disabled"
concurrency = ${RB_CONCURRENCY:-100}
per_domain_concurrency = ${RB_PER_DOMAIN:-20}
[delivery.routes]
"*" = "127.0.0.1:$SINK_PORT"
[bounces]
domain = "bounces.bench.test"
[api]
listen = "127.0.0.1:$API_PORT"
TOML
  if [ -n "${RB_DKIM:-}" ]; then
    case $RB_DKIM in
      rsa) algs='"rsa-sha256"' ;; ed25519) algs='"ed25519-sha256"' ;; both) algs='"rsa-sha256", "ed25519-sha256"' ;;
      *) echo "RB_DKIM: rsa, ed25519 or both"; exit 2 ;;
    esac
    sed -i 's/^\[api\]$/[api]\ntoken = "bench"/' "$WORK/rebound.toml"
    printf '[dkim]\ndomains = ["app.test"]\nalgorithms = [%s]\n' "$algs" >> "$WORK/rebound.toml"
  fi
  if [ -n "${PREFILL:-}" ]; then
    # a queue of PREFILL deferred messages, all due in 10-70 minutes (bench/queue_scale.rs)
    "$ROOT/target/release/examples/queue_scale" "$WORK/rebound/data" "$PREFILL" "${PREFILL_BODY:-$SIZE}" | sed 's/^/prefill: /'
  fi
  start_sink
  RUST_LOG=${RUST_LOG:-warn} ${RB_ENV:-} "$BIN" serve --config "$WORK/rebound.toml" > "$WORK/rebound.log" 2>&1 &
  local pid=$!; PIDS+=("$pid")
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$RB_PORT) 2>/dev/null && break; sleep 0.1; done
  echo "$pid" > "$WORK/rebound.pid"
  local perf_pid=""
  if [ -n "${PERF_OUT:-}" ]; then
    perf record -F ${PERF_FREQ:-999} --call-graph ${PERF_CG:-fp} -p "$pid" -o "$PERF_OUT" >/dev/null 2>&1 & perf_pid=$!
    sleep 0.5
  fi
  drive rebound "$RB_PORT" "$pid"
  if [ -n "${RB_DKIM:-}" ]; then
    curl -s -H "Authorization: Bearer bench" "http://127.0.0.1:$API_PORT/metrics" | grep -E '^rebound_dkim_(un)?signed_total' | tr '\n' ' ' | sed "s/^/dkim ($RB_DKIM): /"; echo
  fi
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; fi
  if [ -n "${LATENCY:-}" ]; then
    # per-message intake latency (bench/smtp_latency.rs), same N, C and size, sink still running
    "$ROOT/target/release/examples/smtp_latency" "127.0.0.1:$RB_PORT" "$N" "$C" "$SIZE" | sed 's/^/latency: /'
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  stop_sink
}

run_postfix() {
  local d=$WORK/postfix
  mkdir -p "$d" "$WORK/pfqueue" "$WORK/pfdata"
  cat > "$d/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $WORK/pfqueue
data_directory = $WORK/pfdata
myhostname = postfix.bench.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINK_PORT
default_process_limit = 500
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file_prefixes = $WORK
maillog_file = $WORK/pfdata/maillog
CF
  cat > "$d/master.cf" <<CF
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CF
  chown postfix "$WORK/pfdata"
  script -qc "postfix -c $d start" "$WORK/postfix-start.log" >/dev/null 2>&1 || { echo "postfix did not start"; cat "$WORK/postfix-start.log"; exit 1; }
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PF_PORT) 2>/dev/null && break; sleep 0.1; done
  start_sink
  drive postfix "$PF_PORT"
  postfix -c "$d" stop >/dev/null 2>&1 || true
  stop_sink
}

echo "# $(date -u +%FT%TZ) $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$REBOUND" = 1 ] && run_rebound
[ "$POSTFIX" = 1 ] && run_postfix
exit 0
