#!/usr/bin/env bash
# stop-keystone.sh -- stop a Keystone started by keystone/start-keystone.sh (found via its PID file).
# Usage: stop-keystone.sh [--port PORT] [--state-dir DIR] [--purge]
#   --port       same as given to start-keystone.sh (default $KEYSTONE_PORT or 5000)
#   --state-dir  same as given to start-keystone.sh (default $KEYSTONE_HOME/state/<port>)
#   --purge      also delete the state dir (config, sqlite DB, keys, credentials.json)
# Env: KEYSTONE_HOME, HEAT_RECONCILER_HOME, KEYSTONE_PORT: as for start-keystone.sh.
set -euo pipefail
KEYSTONE_HOME=${KEYSTONE_HOME:-${HEAT_RECONCILER_HOME:-$HOME/.cache/heat-reconciler}/keystone}
PORT=${KEYSTONE_PORT:-5000}; STATE_DIR=""; PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT=$2; shift 2;;
    --state-dir) STATE_DIR=$2; shift 2;;
    --purge) PURGE=1; shift;;
    -h|--help) sed -n '2,7p' "$0"; exit 0;;
    *) echo "stop-keystone: unknown argument: $1" >&2; exit 2;;
  esac
done
STATE_DIR=${STATE_DIR:-$KEYSTONE_HOME/state/$PORT}
PIDFILE=$STATE_DIR/keystone.pid
is_ours() {
  kill -0 "$1" 2>/dev/null && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q keystone_local.py
}
if [ -f "$PIDFILE" ]; then
  PID=$(cat "$PIDFILE")
  if is_ours "$PID"; then
    kill -TERM "$PID"
    for _ in $(seq 1 150); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$PID" 2>/dev/null; then
      echo "stop-keystone: pid $PID still alive after 15 s, sending SIGKILL"; kill -KILL "$PID" || true
    fi
    echo "stop-keystone: stopped pid $PID (port $PORT)"
  else
    echo "stop-keystone: pid $PID is not running (stale pid file)"
  fi
  rm -f "$PIDFILE"
else
  echo "stop-keystone: no pid file $PIDFILE (not running?)"
fi
if [ $PURGE = 1 ]; then rm -rf "$STATE_DIR"; echo "stop-keystone: removed $STATE_DIR"; fi
