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

# A real standalone Heat for the worker tests (installed from PyPI on first use). The tests start
# it themselves if needed; starting it here keeps the install out of any test's time.
heat_port=18004
bash heat/start-heat.sh --port "$heat_port" >/dev/null
cleanup() {
  # The tests' Heat and the one the demo test starts.
  bash heat/stop-heat.sh --port "$heat_port" >/dev/null 2>&1 || true
  bash heat/stop-heat.sh --port 18104 >/dev/null 2>&1 || true
}
trap cleanup EXIT

cargo test --locked --all-targets
