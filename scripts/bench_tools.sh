#!/usr/bin/env bash
# REST load benchmark against the real release server on loopback (needs `wrk`:
# `apt-get install wrk`). Measures, in the same run:
#   - POST /api/tools/hello/greet (auth, JSON Schema check, fresh wasm instance, call)
#   - GET /healthz, a bare axum JSON route behind the same middleware (the baseline)
#   - activating a precompiled version over REST (median of alternating activations)
# and prints requests/s and the ratio tools/baseline. Bounded: 2 x DURATION of load.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
make --no-print-directory plugins >/dev/null
cargo build --release --quiet --bin agenthost
BIN="${CARGO_TARGET_DIR:-target}/release/agenthost"
DATA="$(mktemp -d /tmp/agenthost-bench-XXXXXX)"; chmod 755 "$DATA"
PORT=18788; BASE="http://127.0.0.1:$PORT"; ADMIN=aha_bench_admin_token
AGENTHOST_DATA_DIR="$DATA" AGENTHOST_LISTEN="127.0.0.1:$PORT" AGENTHOST_ADMIN_TOKEN=$ADMIN \
  AGENTHOST_RATE_LIMIT_PER_MINUTE=0 AGENTHOST_LOG=warn AGENTHOST_BUNDLED_PLUGINS_DIR="$DATA/none" \
  AGENTHOST_PG_DIR="${AGENTHOST_PG_DIR:-$PWD/.agenthost/postgres}" "$BIN" >/dev/null 2>&1 &
HOST_PID=$!
trap 'kill -TERM $HOST_PID 2>/dev/null; wait $HOST_PID 2>/dev/null; rm -rf "$DATA" /tmp/agenthost-greet.lua' EXIT
until curl -sf "$BASE/readyz" >/dev/null; do sleep 0.05; done

KEY=$(curl -sf -X POST "$BASE/api/admin/workspaces" -H "Authorization: Bearer $ADMIN" \
  -H 'content-type: application/json' -d '{"slug":"bench","name":"Bench"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["owner_key"]["secret"])')
GUEST="${CARGO_TARGET_DIR:-plugins/target}/wasm32-wasip2/wasm-release/hello.wasm"
for v in 1.0.0 1.0.1; do
  curl -sf -o /dev/null -X POST "$BASE/api/admin/plugins?activate=true" -H "Authorization: Bearer $ADMIN" \
    -F "manifest={\"name\":\"hello\",\"version\":\"$v\",\"kind\":\"tool\"}" -F "component=@$GUEST"
done

cat > /tmp/agenthost-greet.lua <<LUA
wrk.method = "POST"
wrk.body = '{"name":"Ada"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
LUA
rps() { awk '/Requests\/sec/ {print $2}'; }
tools=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s /tmp/agenthost-greet.lua "$BASE/api/tools/hello/greet" | tee /dev/stderr | rps)
base=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" "$BASE/healthz" | tee /dev/stderr | rps)

times=()
for i in $(seq 20); do
  v=$([ $((i % 2)) = 0 ] && echo 1.0.0 || echo 1.0.1)
  t=$(curl -sf -o /dev/null -w '%{time_total}' -X POST "$BASE/api/admin/plugins/hello/versions/$v/activate" \
    -H "Authorization: Bearer $ADMIN")
  times+=("$t")
done
activate_ms=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]*1000}')

echo "tool invocations: $tools req/s; bare JSON route (/healthz): $base req/s"
awk -v t="$tools" -v b="$base" 'BEGIN { printf "ratio tools/baseline: %.2f\n", t / b }'
echo "activate a precompiled version over REST: median ${activate_ms} ms (20 runs, includes HTTP + DB + load)"
