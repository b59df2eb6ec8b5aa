#!/usr/bin/env bash
# Installs what the demo and the tests need and is not there yet: npm dependencies (npm ci,
# when node_modules is missing or older than package-lock.json), ZooKeeper from the OS
# packages (scripts/ensure-zookeeper.sh), and the compiled CLI in dist/. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if (( node_major < 20 )); then
  say "Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))."
  exit 1
fi

# npm 11 runs a dependency's install script only when package.json allows it (allowScripts):
# the native `zookeeper` client is listed there, so its C client gets built here.
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json || ! -e node_modules/zookeeper/build/Release/zookeeper.node ]]; then
  say 'installing npm dependencies (npm ci)'
  npm ci --no-audit --no-fund >&2
fi

bash scripts/ensure-zookeeper.sh

say 'building (tsc → dist/)'
npm run --silent build >&2
