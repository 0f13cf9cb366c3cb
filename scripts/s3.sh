#!/usr/bin/env bash
# A local S3-compatible object store for the lake (docs/lake.md): SeaweedFS (Apache-2.0), its
# S3 gateway on 127.0.0.1 only. For the tests and a laptop; production points LAKE_WAREHOUSE
# and LAKE_S3_* at its own store.
#   s3.sh bin    print the weed binary (weed on PATH, else built with Go into .tools/bin from
#                the Go module proxy, once per machine: cached like k6)
#   s3.sh up     start it on S3_PORT (default 8333), data in .data/s3, keys lake/lake-secret
#   s3.sh down   stop it (data kept)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# the module's go.mod has replace directives, so `go install module@version` refuses it: the
# module is downloaded and built in place
WEED_MODULE="github.com/seaweedfs/seaweedfs"
WEED_VERSION="v0.0.0-20261109003541-7506e5f91cd6"
DATA="$ROOT/.data/s3"
PORT="${S3_PORT:-8333}"

die() {
  echo "error: $*" >&2
  exit 1
}
say() { echo "s3: $*" >&2; }

weed_bin() {
  if command -v weed >/dev/null 2>&1; then
    command -v weed
    return
  fi
  local bin="$ROOT/.tools/bin/weed"
  local cached="${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-pipeline/weed-$WEED_VERSION"
  if [[ ! -x "$bin" && -x "$cached" ]]; then
    mkdir -p "$ROOT/.tools/bin" && cp "$cached" "$bin"
  fi
  if [[ ! -x "$bin" ]]; then
    local go
    go="$(command -v go || echo /usr/local/go/bin/go)"
    [[ -x "$go" ]] || die "SeaweedFS (weed) is not installed and Go is missing to build it: install Go 1.24+ or put weed on PATH"
    say "building SeaweedFS $WEED_VERSION into .tools/bin (one time per machine, several minutes)"
    local src tmp
    src="$("$go" mod download -json "$WEED_MODULE@$WEED_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [[ -d "$src" ]] || die "go mod download $WEED_MODULE@$WEED_VERSION failed: check that the Go module proxy is reachable"
    tmp="$(mktemp -d)"
    cp -r "$src" "$tmp/src" && chmod -R u+w "$tmp/src"
    mkdir -p "$ROOT/.tools/bin"
    (cd "$tmp/src" && "$go" build -trimpath -ldflags "-s -w" -o "$bin" ./weed) >&2 ||
      die "building SeaweedFS failed (see above)"
    rm -rf "$tmp"
    mkdir -p "$(dirname "$cached")" && cp "$bin" "$cached" || true
  fi
  echo "$bin"
}

# weed server with the S3 gateway: $1 data dir, $2 S3 port, $3 access key, $4 secret key
run_weed() {
  local dir="$1" port="$2" access="$3" secret="$4" bin
  bin="$(weed_bin)"
  mkdir -p "$dir"
  cat >"$dir/s3.json" <<EOF
{"identities": [{"name": "lake", "credentials": [{"accessKey": "$access", "secretKey": "$secret"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
  exec "$bin" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir" \
    -master.port=$((port + 10)) -volume.port=$((port + 20)) -filer.port=$((port + 30)) \
    -master.port.grpc=$((port + 10010)) -volume.port.grpc=$((port + 10020)) -filer.port.grpc=$((port + 10030)) \
    -s3 -s3.port="$port" -s3.config="$dir/s3.json" -master.volumeSizeLimitMB=64 -volume.max=0
}

case "${1:-}" in
bin) weed_bin ;;
run) run_weed "$2" "$3" "$4" "$5" ;;
up)
  if [[ -f "$DATA/pid" ]] && kill -0 "$(cat "$DATA/pid")" 2>/dev/null; then
    say "already running on 127.0.0.1:$PORT"
    exit 0
  fi
  weed_bin >/dev/null
  mkdir -p "$DATA"
  nohup bash "$0" run "$DATA" "$PORT" lake lake-secret >"$DATA/weed.log" 2>&1 &
  echo $! >"$DATA/pid"
  for _ in $(seq 1 120); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && {
      say "S3 at http://127.0.0.1:$PORT (keys lake / lake-secret), data in .data/s3"
      exit 0
    }
    sleep 0.5
  done
  tail -20 "$DATA/weed.log" >&2
  die "SeaweedFS did not answer on 127.0.0.1:$PORT (log: $DATA/weed.log)"
  ;;
down)
  if [[ -f "$DATA/pid" ]] && kill -0 "$(cat "$DATA/pid")" 2>/dev/null; then
    kill "$(cat "$DATA/pid")" && rm -f "$DATA/pid"
    say "stopped"
  else
    say "not running"
  fi
  ;;
*) die "usage: scripts/s3.sh bin|up|down" ;;
esac
