# shellcheck shell=bash
# Sourced by scripts/stack.sh, kafka.sh and citus.sh: reads .env as config.ts does
# (parseDotenv: KEY=value lines, `#` comments, blank lines skipped, surrounding quotes stripped,
# nothing expanded) and exports each variable the environment does not already set. The
# environment wins, as in config.ts, dotenv and every twelve-factor tool: a variable set to ""
# counts as set (and then means "the default", as in config.ts).

# load_dotenv [FILE]   (default: $ROOT/.env)
load_dotenv() {
  local file="${1:-$ROOT/.env}" line key value ours=" "
  [[ -f "$file" ]] || return 0
  while IFS= read -r line || [[ -n "$line" ]]; do
    line="${line%$'\r'}"
    line="$(dotenv_trim "$line")"
    [[ -z "$line" || "$line" == \#* || "$line" != *=* ]] && continue
    key="$(dotenv_trim "${line%%=*}")"
    value="$(dotenv_trim "${line#*=}")"
    [[ -n "$key" ]] || continue
    # `KEY=5 # note`: the comment goes, unless the value is quoted
    if [[ ! "$value" =~ ^[\"\'] ]]; then value="$(dotenv_trim "${value%%[[:space:]]#*}")"; fi
    if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then value="${BASH_REMATCH[1]}"; fi
    # only names the shell can hold; never one the environment sets; a name given twice in
    # .env takes its last value (as parseDotenv does)
    [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    if [[ "$ours" != *" $key "* ]]; then
      [[ -v "$key" ]] && continue
      ours+="$key "
    fi
    export "$key=$value"
  done <"$file"
}

dotenv_trim() {
  local s="$1"
  s="${s#"${s%%[![:space:]]*}"}"
  s="${s%"${s##*[![:space:]]}"}"
  printf '%s' "$s"
}
