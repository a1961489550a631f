#!/usr/bin/env bash
# The project's test command: make sure what the tests need is on this machine, then run them all.
# Safe to run repeatedly; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests read the shared conformance corpus beside the project.
if [ ! -d ../shared/conformance/scenarios ] && [ -z "${HEAT_RECONCILER_CONFORMANCE:-}" ]; then
  echo "the conformance corpus is missing: expected ../shared/conformance or HEAT_RECONCILER_CONFORMANCE" >&2
  exit 1
fi

bash scripts/prepare.sh
# A real kube-apiserver (and etcd 3.6, kubectl, helm) for the mirror's tests: built from the Go
# module proxy on first use (about 15 minutes on 2 cores, once), cached under
# ~/.cache/heat-reconciler. The tests fail, never skip, without them.
bash scripts/prepare-kube.sh >/dev/null

# A real standalone Heat for the worker tests (installed from PyPI on first use). The tests start
# it themselves if needed; starting it here keeps the install out of any test's time.
heat_port=18004
bash heat/start-heat.sh --port "$heat_port" >/dev/null
# A real Keystone for tests/keystone.rs (installed from PyPI on first use), with the arguments that
# test gives it, so the test finds it running: its catalog points at the tests' Heat, and tokens
# live 320 s so that the test sees one renewed (the client renews five minutes before expiry).
keystone_port=18005
cleanup() {
  # The tests' Heat, the one the demo test starts, the one tests/monitor.rs starts with a
  # collector configured, the Keystone, and the Heat whose database tests/heat_failure.rs breaks
  # (the tests stop theirs themselves unless they were killed).
  bash heat/stop-heat.sh --port "$heat_port" >/dev/null 2>&1 || true
  bash heat/stop-heat.sh --port 18104 >/dev/null 2>&1 || true
  bash heat/stop-heat.sh --port 18404 >/dev/null 2>&1 || true
  bash keystone/stop-keystone.sh --port "$keystone_port" >/dev/null 2>&1 || true
  failing_state=${TMPDIR:-/tmp}/heat-reconciler-heat-failure-18204
  chattr -i "$failing_state/heat.sqlite" >/dev/null 2>&1 || true
  bash heat/stop-heat.sh --port 18204 --state-dir "$failing_state" --purge >/dev/null 2>&1 || true
  # The Heat that tests/heat_restart.rs kills and restarts (it stops that one itself too).
  bash heat/stop-heat.sh --port 18304 --state-dir "${TMPDIR:-/tmp}/heat-reconciler-heat-restart-18304" --purge \
    >/dev/null 2>&1 || true
}
trap cleanup EXIT
bash keystone/start-keystone.sh --port "$keystone_port" --heat-url "http://127.0.0.1:$heat_port" \
  --token-expiration 320 >/dev/null

cargo test --locked --all-targets
