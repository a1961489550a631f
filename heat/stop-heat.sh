#!/usr/bin/env bash
# stop-heat.sh -- stop a Heat started by heat/start-heat.sh (found via its PID file).
# Usage: stop-heat.sh [--port PORT] [--state-dir DIR] [--purge]
#   --port       same as given to start-heat.sh (default $HEAT_PORT or 8004)
#   --state-dir  same as given to start-heat.sh (default $HEAT_HOME/state/<port>)
#   --purge      also delete the state dir (heat.conf + sqlite DB)
# Env: HEAT_HOME, HEAT_RECONCILER_HOME, HEAT_PORT: as for start-heat.sh.
set -euo pipefail
HEAT_HOME=${HEAT_HOME:-${HEAT_RECONCILER_HOME:-$HOME/.cache/heat-reconciler}/heat}
PORT=${HEAT_PORT:-8004}; STATE_DIR=""; PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT=$2; shift 2;;
    --state-dir) STATE_DIR=$2; shift 2;;
    --purge) PURGE=1; shift;;
    -h|--help) sed -n '2,7p' "$0"; exit 0;;
    *) echo "stop-heat: unknown argument: $1" >&2; exit 2;;
  esac
done
STATE_DIR=${STATE_DIR:-$HEAT_HOME/state/$PORT}
PIDFILE=$STATE_DIR/heat.pid
is_ours() {
  kill -0 "$1" 2>/dev/null && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q -e heat_local.py -e heat-all
}
if [ -f "$PIDFILE" ]; then
  PID=$(cat "$PIDFILE")
  if is_ours "$PID"; then
    kill -TERM "$PID"
    for _ in $(seq 1 150); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$PID" 2>/dev/null; then
      echo "stop-heat: pid $PID still alive after 15 s, sending SIGKILL"; kill -KILL "$PID" || true
    fi
    echo "stop-heat: stopped pid $PID (port $PORT)"
  else
    echo "stop-heat: pid $PID is not running (stale pid file)"
  fi
  rm -f "$PIDFILE"
else
  echo "stop-heat: no pid file $PIDFILE (not running?)"
fi
if [ $PURGE = 1 ]; then rm -rf "$STATE_DIR"; echo "stop-heat: removed $STATE_DIR"; fi
