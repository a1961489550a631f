#!/usr/bin/env bash
# The flagship flow on this machine: installs what is missing (protoc, etcd; Heat from PyPI on
# first use), then runs `heat-reconciler demo` (local etcd + local standalone Heat, planner and
# worker in-process). Extra arguments go to the demo, e.g. --json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
exec cargo run --quiet -- demo "$@"
