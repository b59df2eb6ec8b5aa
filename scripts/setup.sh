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

# Whether node_modules holds what package-lock.json locks, judged by content (npm's record of
# what it installed, node_modules/.package-lock.json), not by file times: a fresh checkout or a
# switch of branches makes the lock file newer without changing a single version.
deps_current() {
  [[ -d node_modules && -f node_modules/.package-lock.json && -e node_modules/zookeeper/build/Release/zookeeper.node ]] || return 1
  node -e '
    const fs = require("node:fs")
    const locked = JSON.parse(fs.readFileSync("package-lock.json", "utf8")).packages ?? {}
    const installed = JSON.parse(fs.readFileSync("node_modules/.package-lock.json", "utf8")).packages ?? {}
    for (const [path, entry] of Object.entries(locked)) {
      if (path === "") continue
      const have = installed[path]
      // Optional packages for other platforms (rollup, esbuild binaries) are never installed.
      if (have === undefined ? entry.optional !== true : have.version !== entry.version) process.exit(1)
    }
  '
}

# npm 11 runs a dependency's install script only when package.json allows it (allowScripts):
# the native `zookeeper` client is listed there, so its C client gets built here.
if ! deps_current; then
  say 'installing npm dependencies (npm ci)'
  # The lock file lists every platform's optional binaries (rollup's), as npm ci requires. One
  # regenerated where a registry serves only this platform's packages would lack them, and
  # npm ci would refuse it (EUSAGE): npm install --no-save then installs the same locked
  # versions and leaves the lock file alone.
  if ! npm ci --no-audit --no-fund >&2 2>/tmp/zkproxy-npm-ci.log; then
    if grep -q 'EUSAGE' /tmp/zkproxy-npm-ci.log; then
      say 'npm ci refused the lock file (optional platform packages unavailable here); using npm install --no-save'
      npm install --no-save --no-audit --no-fund >&2
    else
      cat /tmp/zkproxy-npm-ci.log >&2
      exit 1
    fi
  fi
fi

# One fix of ours to the native ZooKeeper client (patches/zookeeper-stale-poll-handle.patch:
# after an operation timeout it could leave an accepted HTTP connection unread), applied once
# and compiled from source (a few seconds: the C client itself is already built).
if ! grep -q 'zkproxy patch' node_modules/zookeeper/src/node-zk.cpp; then
  say 'patching the native zookeeper client (stale poll handle) and rebuilding it'
  patch -s -p1 -d node_modules/zookeeper < patches/zookeeper-stale-poll-handle.patch || exit 1
  npm rebuild zookeeper --build-from-source >/tmp/zkproxy-zookeeper-rebuild.log 2>&1 || { cat /tmp/zkproxy-zookeeper-rebuild.log >&2; exit 1; }
fi

bash scripts/ensure-zookeeper.sh

say 'building (tsc → dist/)'
npm run --silent build >&2

# chromium for the dashboard browser test
# test/e2e/dashboard.test.ts drives Debian's /usr/bin/chromium through playwright-core (no
# browser download). Installed here when missing and we are root with apt-get; otherwise one
# message, and that test fails naming what is missing (it never skips).
if [[ ! -x /usr/bin/chromium ]]; then
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
    say 'installing chromium (apt-get) for the dashboard browser test'
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium </dev/null >&2 ||
      { DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium </dev/null >&2; } ||
      say 'could not install chromium: the dashboard browser test (test/e2e/dashboard.test.ts) will fail until /usr/bin/chromium exists'
  else
    say '/usr/bin/chromium is missing and cannot be installed here (needs root and apt-get): run `apt-get install -y chromium` as root, or the dashboard browser test (test/e2e/dashboard.test.ts) will fail'
  fi
fi
