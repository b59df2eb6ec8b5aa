#!/usr/bin/env bash
# The demo: installs what is missing, then `zkproxy dev` starts a local ZooKeeper, a proxy on
# 127.0.0.1:9000 (dashboard on 127.0.0.1:9901) and three replicas; Ctrl-C stops all of it.
# `exec`, here and in package.json ("exec bash scripts/demo.sh"): no shell stays between npm
# and zkproxy dev, so the SIGINT and SIGTERM npm forwards to its child reach dev itself.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/src/cli/main.js dev "$@"
