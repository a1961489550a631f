#!/usr/bin/env bash
# The project's test command: make sure what the tests need is on this machine, then run them all.
# Safe to run repeatedly; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/prepare.sh
# A real kube-apiserver (and etcd 3.6, kubectl, helm) for the mirror's tests: built from the Go
# module proxy on first use (about 15 minutes on 2 cores, once), cached under
# ~/.cache/heat-reconciler. The tests fail, never skip, without them.
bash scripts/prepare-kube.sh >/dev/null

# The tests start what else they need (etcd, snmpd, kube-apiserver on free ports; the shared
# standalone Heat and Keystone, installed from PyPI on first use, on the ports of
# src/local/ports.rs) and stop what they own. What stays running for the next test binary, and
# whatever a killed test left behind, is stopped here.
port_of() { sed -n "s/^pub const $1: u16 = \([0-9]*\);/\1/p" src/local/ports.rs; }
cleanup() {
  for port in "$(port_of TEST_HEAT)" "$(port_of DEMO_HEAT)"; do
    bash heat/stop-heat.sh --port "$port" >/dev/null 2>&1 || true
  done
  bash keystone/stop-keystone.sh --port "$(port_of TEST_KEYSTONE)" >/dev/null 2>&1 || true
  # A test's own Heat: <name>-<port> under the temp dir (src/local/heat.rs, own_heats_root).
  for dir in "${TMPDIR:-/tmp}"/heat-reconciler-heats/*-*/; do
    [ -d "$dir" ] || continue
    dir=${dir%/}
    # tests/heat_failure.rs makes its database immutable; a killed run leaves it so.
    chattr -i "$dir/state/heat.sqlite" >/dev/null 2>&1 || true
    bash heat/stop-heat.sh --port "${dir##*-}" --state-dir "$dir/state" --purge >/dev/null 2>&1 || true
    rm -rf "$dir"
  done
}
trap cleanup EXIT

cargo test --locked --all-targets
