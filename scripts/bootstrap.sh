#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine (as root) for loft: the tools the tests and benchmarks call
# (Nix, zstd, xz), then the npm dependencies. Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v nix-store >/dev/null 2>&1 || missing+=(nix-bin)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# better-sqlite3 and zstd-napi build from source here; node-gyp needs Node's headers, which
# Debian's nodejs package ships under /usr.
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_version.h ]; then
  export npm_config_nodedir=/usr
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
