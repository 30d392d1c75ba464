#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine (as root) for loft: the tools the tests and benchmarks call
# (Nix, zstd, xz), the Node.js loft runs on, then the npm dependencies. Idempotent: installs only
# what is missing.
#
# Which Node: loft supports Node >= 22 and is tested on 24 LTS. Debian 12 offers Node 18 and many
# machines still carry 20 (end of life), so by default this installs the Node pinned in
# tools/node/package-lock.json (an npm package holding a whole Node distribution, headers included,
# checked against the lockfile's integrity) and links it as node_modules/.bin/node. npm puts that
# folder first on PATH for `npm test`, `npm run ...` and `npx loft`, and bin/loft prefers it, so
# everything started from the checkout runs on it. LOFT_NODE=system keeps the Node on PATH instead
# (it must be >= 22) and downloads nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v nix-store >/dev/null 2>&1 || missing+=(nix-bin)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
# macOS: no apt-get, and tools/node pins Linux builds of Node only (npm's node-linux-* packages).
# Say how to get there instead of failing half-way.
if [ "$(uname -s)" = Darwin ]; then
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "bootstrap: macOS: missing ${missing[*]}; install Nix (multi-user), then either enter the flake's dev shell (nix develop: Node 24, zstd, xz) or add them to a profile (nix profile install nixpkgs#zstd nixpkgs#xz), and rerun" >&2
    exit 1
  fi
  if [ "${LOFT_NODE:-pinned}" != system ]; then
    echo "bootstrap: macOS: tools/node pins a Node.js for Linux only; run inside the flake's dev shell (nix develop) or with any Node.js >= 22 on PATH, as: LOFT_NODE=system bash scripts/bootstrap.sh" >&2
    exit 1
  fi
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ "${LOFT_NODE:-pinned}" = system ]; then
  node_bin=$(command -v node || true)
  if [ -z "$node_bin" ] || [ "$(node_major "$node_bin")" -lt 22 ]; then
    echo "bootstrap: LOFT_NODE=system needs Node.js >= 22 on PATH (found: ${node_bin:-none} $("${node_bin:-false}" --version 2>/dev/null || true))" >&2
    exit 1
  fi
  node_home=$(dirname "$(dirname "$(readlink -f "$node_bin")")")
else
  if [ ! -d tools/node/node_modules ] || [ tools/node/package-lock.json -nt tools/node/node_modules/.package-lock.json ]; then
    (cd tools/node && npm ci --no-audit --no-fund --loglevel=error)
  fi
  node_bin=$(readlink -f tools/node/node_modules/.bin/node 2>/dev/null || true)
  if [ -z "$node_bin" ] || [ ! -x "$node_bin" ]; then
    echo "bootstrap: no pinned Node.js for $(uname -s)/$(uname -m) in tools/node; install Node.js >= 22 and rerun with LOFT_NODE=system" >&2
    exit 1
  fi
  node_home=$(dirname "$(dirname "$node_bin")")
fi

# npm and any install script run on that Node too. The native addons ship their binaries today
# (better-sqlite3 13 and lzma-native, both Node-API); should one build from source, node-gyp finds
# the headers of the Node that will load it here.
export PATH="$(dirname "$node_bin"):$PATH"
if [ -f "$node_home/include/node/node_version.h" ]; then
  export npm_config_nodedir="$node_home"
fi

built_for=node_modules/.loft-node
want="$("$node_bin" --version) $node_bin"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] ||
  [ "$(cat "$built_for" 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund
  echo "$want" >"$built_for"
fi
# npm ci empties node_modules, so the link is made after it, every time.
ln -sfn "$node_bin" node_modules/.bin/node
# npm trusts its record of node_modules (.package-lock.json) only while it is newer than the
# folder; the marker above changed the folder, and a stale record makes `npx loft` reinstall loft
# from the checkout (running its build) and warn about engines.
touch node_modules/.package-lock.json
echo "bootstrap: loft runs on Node $("$node_bin" --version) ($node_bin)" >&2
