#!/usr/bin/env bash
# stop-keystone.sh -- stop a Keystone started by keystone/start-keystone.sh (found via its PID file).
# Usage: stop-keystone.sh [--port PORT] [--state-dir DIR] [--purge]
#   --port       same as given to start-keystone.sh (default $KEYSTONE_PORT or 5000)
#   --state-dir  same as given to start-keystone.sh (default $KEYSTONE_HOME/state/<port>)
#   --purge      also delete the state dir (config, sqlite DB, keys, credentials.json)
# Env: KEYSTONE_HOME, HEAT_RECONCILER_HOME, KEYSTONE_PORT: as for start-keystone.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../scripts/lib/local-service.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../scripts/lib/local-service.sh"
LSVC_NAME=stop-keystone
KEYSTONE_HOME=${KEYSTONE_HOME:-$(lsvc_default_home keystone)}
PORT=${KEYSTONE_PORT:-5000}; STATE_DIR=""; PURGE=0
lsvc_parse_args "--port --state-dir --purge" "$@"
STATE_DIR=${STATE_DIR:-$KEYSTONE_HOME/state/$PORT}
PIDFILE=$STATE_DIR/keystone.pid
lsvc_stop keystone_local.py
