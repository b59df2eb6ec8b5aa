#!/usr/bin/env bash
# The demo: installs what is missing, then `zkproxy dev` starts a local ZooKeeper, a proxy on
# :9000 (dashboard on 127.0.0.1:9901) and three replicas; Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/src/cli/main.js dev "$@"
