#!/usr/bin/env bash
# The loft action's main step: mask the secrets, write loft's config from the inputs, and start the
# loft daemon in the background so every store path the job builds is uploaded as it appears.
# Reads the variables a GitHub runner sets: INPUT_* (hyphens turned into underscores by
# run-script.mjs), RUNNER_TEMP, GITHUB_ACTION_PATH, GITHUB_STATE, GITHUB_ENV, GITHUB_OUTPUT.
# Secrets only ever go into files of mode 0600 and into ::add-mask:: commands; never set -x here.
set -euo pipefail
umask 077

fail() {
  echo "::error::loft: $*"
  exit 1
}

# Masked before anything else runs, so no later line can show them. Each line of a multi-line
# value is masked on its own, as the runner matches line by line.
for name in INPUT_ACCESS_KEY_ID INPUT_SECRET_ACCESS_KEY INPUT_SESSION_TOKEN INPUT_SIGNING_KEY; do
  value=${!name:-}
  while IFS= read -r line; do
    [ -n "$line" ] && echo "::add-mask::$line"
  done <<<"$value"
done

# A TOML basic string; a value with a newline or a control character is refused, not mangled.
toml_str() {
  case "$1" in
    *[[:cntrl:]]*) fail "input for $2 contains a control character" ;;
  esac
  local v=${1//\\/\\\\}
  printf '"%s"' "${v//\"/\\\"}"
}

bucket=${INPUT_BUCKET:-}
[ -n "$bucket" ] || fail "the bucket input is required"
compression=${INPUT_COMPRESSION:-zstd}
threads=${INPUT_UPLOAD_THREADS:-8}
case "$threads" in '' | *[!0-9]*) fail "upload-threads must be a whole number, got '$threads'" ;; esac

dir="${RUNNER_TEMP:?RUNNER_TEMP is not set: run this from a GitHub runner or set it}/loft-action"
mkdir -p "$dir"
config="$dir/loft.toml"
{
  echo "[s3]"
  echo "bucket = $(toml_str "$bucket" bucket)"
  echo "region = $(toml_str "${INPUT_REGION:-us-east-1}" region)"
  [ -z "${INPUT_ENDPOINT:-}" ] || echo "endpoint = $(toml_str "$INPUT_ENDPOINT" endpoint)"
  [ -z "${INPUT_PREFIX:-}" ] || echo "prefix = $(toml_str "$INPUT_PREFIX" prefix)"
  for pair in ACCESS_KEY_ID:access_key_file SECRET_ACCESS_KEY:secret_key_file SESSION_TOKEN:session_token_file; do
    input="INPUT_${pair%%:*}"
    if [ -n "${!input:-}" ]; then
      printf '%s' "${!input}" >"$dir/${pair#*:}"
      echo "${pair#*:} = $(toml_str "$dir/${pair#*:}" "${pair%%:*}")"
    fi
  done
  echo "[loft]"
  echo "local_cache_path = $(toml_str "$dir/cache.db" local_cache_path)"
  echo "compression = $(toml_str "$compression" compression)"
  echo "upload_threads = $threads"
  # Only what this job builds: the runner's store is full of paths the cache does not want.
  echo "scan_on_startup = false"
  if [ -n "${INPUT_SIGNING_KEY:-}" ]; then
    printf '%s\n' "$INPUT_SIGNING_KEY" >"$dir/signing-key"
    echo "signing_key_path = $(toml_str "$dir/signing-key" signing_key_path)"
  fi
} >"$config"

# loft itself: the one given, or this action's flake built with the runner's Nix.
loft=${INPUT_LOFT_COMMAND:-}
if [ -z "$loft" ]; then
  action_path=${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set}
  out=$(nix build --no-link --print-out-paths "path:$action_path#loft") || fail "could not build loft from $action_path"
  loft="$out/bin/loft"
fi
command -v "$loft" >/dev/null || fail "loft command '$loft' not found"

log="$dir/daemon.log"
# Its own session: the daemon outlives this step (the runner ends leftover processes when the job
# ends, after the post step), and a signal meant for this script does not reach it.
setsid "$loft" -c "$config" </dev/null >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  grep -q '"daemon started, watching the store"' "$log" && break
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$log"
    fail "the loft daemon did not start (its log is above)"
  fi
  sleep 0.1
done
grep -q '"daemon started, watching the store"' "$log" || fail "the loft daemon did not start within 30 s"

{
  echo "pid=$pid"
  echo "dir=$dir"
  echo "loft=$loft"
} >>"${GITHUB_STATE:?GITHUB_STATE is not set}"
[ -z "${GITHUB_ENV:-}" ] || echo "LOFT_CONFIG=$config" >>"$GITHUB_ENV"
[ -z "${GITHUB_OUTPUT:-}" ] || echo "config=$config" >>"$GITHUB_OUTPUT"
echo "loft: daemon started (pid $pid); every store path this job builds is uploaded to $bucket"
