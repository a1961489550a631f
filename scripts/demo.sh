#!/usr/bin/env bash
# The flagship flow on this machine: installs what is missing (protoc, etcd, snmpd; Heat from PyPI
# on first use), then runs `heat-reconciler demo` (local etcd, local standalone Heat and a local
# snmpd; planner, worker and monitor in-process). Extra arguments go to the demo, e.g. --json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
exec cargo run --quiet -- demo "$@"
