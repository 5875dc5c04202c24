#!/usr/bin/env bash
# Startup benchmark: time from launching the release binary to the first 200 from
# /readyz, on an already initialised data directory. The baseline, measured in the
# same run on the same data directory, is the embedded PostgreSQL alone: launch to
# "ready" in its postmaster.pid (what pg_ctl -w waits for). Prints medians and ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-7}"
PG_DIR="${AGENTHOST_PG_DIR:-$PWD/.agenthost/postgres}"
cargo build --release --quiet --bin agenthost
BIN="${CARGO_TARGET_DIR:-target}/release/agenthost"
DATA="$(mktemp -d /tmp/agenthost-bench-XXXXXX)"
chmod 755 "$DATA"
PORT=18787
export AGENTHOST_DATA_DIR="$DATA" AGENTHOST_PG_DIR="$PG_DIR" AGENTHOST_LISTEN="127.0.0.1:$PORT" AGENTHOST_LOG=warn
unset DATABASE_URL
now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Sets HOST_PID and ELAPSED (not run in a subshell: the pid must survive).
start_host() {
  local t0; t0=$(now_ms)
  "$BIN" >/dev/null 2>&1 &
  HOST_PID=$!
  until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do sleep 0.005; done
  ELAPSED=$(( $(now_ms) - t0 ))
}
stop_host() { kill -TERM "$HOST_PID"; wait "$HOST_PID" || true; }

start_host; echo "first start (initdb + migrations): $ELAPSED ms"; stop_host

host_runs=()
for _ in $(seq "$RUNS"); do start_host; host_runs+=("$ELAPSED"); stop_host; done

# Baseline: PostgreSQL alone, with the same user and flags the host uses.
RUN_AS=()
if [ "$(id -u)" = 0 ]; then RUN_AS=(setpriv --reuid agenthost-pg --regid agenthost-pg --clear-groups); fi
pg_runs=()
for _ in $(seq "$RUNS"); do
  t0=$(now_ms)
  "${RUN_AS[@]}" "$PG_DIR/bin/postgres" -D "$DATA/pgdata" -k "$DATA/run" -c listen_addresses= >/dev/null 2>&1 &
  PG_PID=$!
  until [ "$(sed -n 8p "$DATA/pgdata/postmaster.pid" 2>/dev/null | tr -d ' ')" = ready ]; do sleep 0.005; done
  pg_runs+=("$(( $(now_ms) - t0 ))")
  kill -INT "$PG_PID"; wait "$PG_PID" || true
done

host_median=$(printf '%s\n' "${host_runs[@]}" | median)
pg_median=$(printf '%s\n' "${pg_runs[@]}" | median)
echo "host start -> /readyz 200: median ${host_median} ms over $RUNS runs (${host_runs[*]})"
echo "baseline postgres alone -> ready: median ${pg_median} ms (${pg_runs[*]})"
awk -v h="$host_median" -v p="$pg_median" 'BEGIN { if (p > 0) printf "ratio host/baseline: %.2f\n", h / p }'
rm -rf "$DATA"
