#!/usr/bin/env bash
# make load-test SCENARIO=steady|mixed|spike|soak|smoke|browser
# k6 from PATH, else built into .tools/bin with `go install go.k6.io/k6@v1.8.1`. Starts
# `deno task serve` when nothing answers on BASE_URL, runs the scenario, then verifies in SQL
# that the events stored for this run equal the events the server acknowledged.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCENARIO="${1:-steady}"
K6_VERSION="v1.8.1"
SCRIPT="$ROOT/load/$SCENARIO.js"
[[ "$SCENARIO" == "http-cpu" ]] && SCRIPT="$ROOT/load/steady.js" # make bench-http
[[ -f "$SCRIPT" ]] || { echo "error: no scenario '$SCENARIO' (load/*.js: steady, mixed, spike, soak, smoke, browser)" >&2; exit 2; }

k6bin="$(command -v k6 || true)"
if [[ -z "$k6bin" ]]; then
  k6bin="$ROOT/.tools/bin/k6"
  # a build is minutes: keep one per machine, shared by every clone
  cached="${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-pipeline/k6-$K6_VERSION"
  if [[ ! -x "$k6bin" && -x "$cached" ]]; then
    mkdir -p "$ROOT/.tools/bin" && cp "$cached" "$k6bin"
  fi
  if [[ ! -x "$k6bin" ]]; then
    command -v go >/dev/null 2>&1 || {
      echo "error: k6 is not installed and Go is missing to build it: install k6, or Go 1.24+, or run the scenario with Docker: docker run --rm -i --network host -e BASE_URL grafana/k6 run - <load/$SCENARIO.js" >&2
      exit 1
    }
    echo "load: building k6 $K6_VERSION into .tools/bin (one time, a few minutes)" >&2
    mkdir -p "$ROOT/.tools/bin"
    GOBIN="$ROOT/.tools/bin" go install "go.k6.io/k6@$K6_VERSION"
    mkdir -p "$(dirname "$cached")" && cp "$k6bin" "$cached" || true
  fi
fi

DENO="$("$ROOT/scripts/stack.sh" deno)"
if [[ "$SCENARIO" == "http-cpu" ]]; then
  # make bench-http: server CPU an event over HTTP next to the file path's a row (bench/http.ts)
  exec "$DENO" run --allow-all "$ROOT/bench/http.ts" --k6 "$k6bin" --port "${SERVE_PORT:-8080}" "${@:2}"
fi
if [[ "$SCENARIO" == "browser" ]]; then
  # the public endpoint (docs/tracking.md#load): its own collector, key, CPU and file-path runs
  exec "$DENO" run --allow-all "$ROOT/load/browser.ts" --k6 "$k6bin" --port "${SERVE_PORT:-8080}"
fi
PORT="${SERVE_PORT:-8080}"
export BASE_URL="${BASE_URL:-http://127.0.0.1:$PORT}"
export API_KEY="${API_KEY:-${API_KEYS:-dev-key}}"
API_KEY="${API_KEY%%,*}"
export RUN_ID="${RUN_ID:-$(date +%s)-$RANDOM}"
server_pid=""
cleanup() { [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT

if ! curl -fsS "$BASE_URL/health" >/dev/null 2>&1; then
  echo "load: starting deno task serve on port $PORT" >&2
  mkdir -p "$ROOT/load/results"
  (cd "$ROOT" && SERVE_PORT="$PORT" API_KEYS="$API_KEY" LOG_LEVEL=warn "$DENO" run --allow-all scripts/serve.ts) \
    >"$ROOT/load/results/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "$BASE_URL/health" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { tail -20 "$ROOT/load/results/serve.log" >&2; echo "error: deno task serve exited" >&2; exit 1; }
    sleep 0.2
  done
fi

mkdir -p "$ROOT/load/results"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
summary="$ROOT/load/results/$SCENARIO-$stamp-k6.json"
k6_exit=0
"$k6bin" run --quiet --summary-export "$summary" "$SCRIPT" || k6_exit=$?
"$DENO" run --allow-all "$ROOT/load/verify.ts" --summary "$summary" --run "$RUN_ID" \
  --scenario "$SCENARIO" --out "$ROOT/load/results/$SCENARIO-$stamp.json" --k6-exit "$k6_exit"
if [[ "$k6_exit" != "0" ]]; then
  echo "load: k6 thresholds failed (exit $k6_exit): see the summary above" >&2
  exit "$k6_exit"
fi
