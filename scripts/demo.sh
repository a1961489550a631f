#!/usr/bin/env bash
# The flagship flow on this machine: installs what is missing (protoc, etcd, snmpd; Heat from PyPI
# on first use), then runs `heat-reconciler demo` (local etcd, local standalone Heat and a local
# snmpd; planner, worker and monitor in-process). Extra arguments go to the demo, e.g. --json, or
# --kubernetes (a local kube-apiserver and the mirror too; its binaries are built on first use by
# scripts/prepare-kube.sh, which takes a while once).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
for arg in "$@"; do
  if [ "$arg" = --kubernetes ]; then
    bash scripts/prepare-kube.sh >/dev/null
  fi
done
exec cargo run --quiet -- demo "$@"
