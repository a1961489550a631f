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
cargo test --locked --all-targets
