#!/usr/bin/env bash
# stop-heat.sh -- stop a Heat started by heat/start-heat.sh (found via its PID file).
# Usage: stop-heat.sh [--port PORT] [--state-dir DIR] [--purge]
#   --port       same as given to start-heat.sh (default $HEAT_PORT or 8004)
#   --state-dir  same as given to start-heat.sh (default $HEAT_HOME/state/<port>)
#   --purge      also delete the state dir (heat.conf + sqlite DB)
# Env: HEAT_HOME, HEAT_RECONCILER_HOME, HEAT_PORT: as for start-heat.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../scripts/lib/local-service.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../scripts/lib/local-service.sh"
LSVC_NAME=stop-heat
HEAT_HOME=${HEAT_HOME:-$(lsvc_default_home heat)}
PORT=${HEAT_PORT:-8004}; STATE_DIR=""; PURGE=0
lsvc_parse_args "--port --state-dir --purge" "$@"
STATE_DIR=${STATE_DIR:-$HEAT_HOME/state/$PORT}
PIDFILE=$STATE_DIR/heat.pid
lsvc_stop heat_local.py heat-all
