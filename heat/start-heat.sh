#!/usr/bin/env bash
# start-heat.sh -- run a REAL OpenStack Heat (API + engine) locally, standalone,
# with heat-reconciler's resource plugins (heat/plugins) and global environment
# (heat/environment) loaded, so the corpus templates' vendor types
# (OS::Contrail::*, ESI::VNF::*, ESI::Monitoring::MonitoringTarget) can be created.
#
# No Keystone / Nova / RabbitMQ / MySQL: "noauth" API pipeline, fake keystone
# backend, in-memory oslo.messaging (fake://), SQLite.  API and engine run in
# ONE process, bound to 127.0.0.1 only:
#   HEAT_VERSION=27.0.1 (default): heat_local.py (beside this script, copied into
#       the state dir), a ~150-line stand-in for the heat-all command that Heat
#       removed in 25.0.0; it serves Heat's own paste WSGI app and runs Heat's own
#       EngineService.
#   HEAT_VERSION=24.1.2: Heat's stock `heat-all` (eventlet, deprecated).
# Adapted from the reference scripts of ../shared/tools/heat-standalone (see heat/README.md);
# the code it shares with keystone/ is in scripts/lib/local-service.sh.
#
# Usage: start-heat.sh [--port PORT] [--log-dir DIR] [--state-dir DIR]
#                      [--fresh] [--debug]
#   --port       API port (default $HEAT_PORT or 8004)
#   --log-dir    heat.log, console.log, db_sync.log (default $HEAT_HOME/logs/<port>)
#   --state-dir  heat.conf, sqlite DB, pid file (default $HEAT_HOME/state/<port>)
#   --fresh      wipe the database first (no stacks); restarts a running one
#   --debug      debug logging
# Env: HEAT_HOME (default ${HEAT_RECONCILER_HOME:-$HOME/.cache/heat-reconciler}/heat;
#        holds the venv, uv, caches, state and logs -- never this folder),
#      HEAT_VERSION (27.0.1|24.1.2),
#      HEAT_PLUGIN_DIRS (resource plugins, comma-separated; default <this dir>/plugins;
#        set it empty to load none), HEAT_ENVIRONMENT_DIR (global Heat environment
#        files; default <this dir>/environment; empty: none),
#      HEAT_PYTHON (default python3, >= 3.10),
#      HEAT_INSTALLER=auto|uv|pip (auto: uv from PyPI if obtainable, else pip;
#      uv's cache is $HEAT_HOME/.cache/uv unless UV_CACHE_DIR is set).
#      The plugins read ESI_COLLECTOR_URL (see heat/plugins/esi_monitoring.py);
#      it is passed through to the Heat process.
# Idempotent: missing venv -> created; already running on PORT -> no-op.
# The plugins and environment are read when Heat starts: after changing them,
# restart (stop-heat.sh, then start-heat.sh).
# On success prints the orchestration endpoint (".../v1/admin") on stdout.
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../scripts/lib/local-service.sh
. "$SCRIPT_DIR/../scripts/lib/local-service.sh"
LSVC_NAME=start-heat

HEAT_VERSION=${HEAT_VERSION:-27.0.1}
case "$HEAT_VERSION" in
  27.0.1|24.1.2) ;;
  *) lsvc_die 2 "only HEAT_VERSION 27.0.1 or 24.1.2 are pinned/tested";;
esac
HEAT_HOME=${HEAT_HOME:-$(lsvc_default_home heat)}
# unset -> the project's folders; set but empty -> none
HEAT_PLUGIN_DIRS=${HEAT_PLUGIN_DIRS-$SCRIPT_DIR/plugins}
HEAT_ENVIRONMENT_DIR=${HEAT_ENVIRONMENT_DIR-$SCRIPT_DIR/environment}
PORT=${HEAT_PORT:-8004}
LOG_DIR=""; STATE_DIR=""; FRESH=0; DEBUG=false
lsvc_parse_args "--port --log-dir --state-dir --fresh --debug" "$@"
HEAT_HOME=$(lsvc_abs_dir "$HEAT_HOME")
if [ "$HEAT_VERSION" = 27.0.1 ]; then VENV=$HEAT_HOME/venv; else VENV=$HEAT_HOME/venv-$HEAT_VERSION; fi
lsvc_dirs "$HEAT_HOME"
PIDFILE=$STATE_DIR/heat.pid
ENDPOINT="http://127.0.0.1:$PORT/v1/admin"

heat_is_ours() {  # PID: alive and a Heat we started
  lsvc_is_ours "$1" heat_local.py heat-all
}
heat_answers() {  # the Heat API answers GET /v1/admin/stacks with 200
  lsvc_http_ok "$ENDPOINT/stacks"
}

# ---- already running?
if [ -f "$PIDFILE" ] && heat_is_ours "$(cat "$PIDFILE")"; then
  if [ $FRESH = 1 ]; then
    lsvc_log "--fresh: stopping running instance (pid $(cat "$PIDFILE"))"
    lsvc_stop_running
  elif lsvc_wait_up heat_is_ours heat_answers; then
    lsvc_log "already running (pid $(cat "$PIDFILE"))"; echo "$ENDPOINT"; exit 0
  else
    lsvc_die 1 "pid $(cat "$PIDFILE") exists but does not answer; stop it with stop-heat.sh"
  fi
fi

# ---- (a) venv with pinned packages (constraints.txt = the versions tested)
lsvc_ensure_venv "$HEAT_HOME" "$VENV" .heat-installed "$HEAT_VERSION" "${HEAT_PYTHON:-python3}" \
  "${HEAT_INSTALLER:-auto}" "$SCRIPT_DIR/constraints.txt" "openstack-heat==$HEAT_VERSION" " (~1.5 min)"

# ---- (b) config (+ launcher)
PASTE=$VENV/etc/heat/api-paste.ini      # Heat's stock paste file; has a "noauth" flavor
[ -f "$PASTE" ] || lsvc_die 1 "missing $PASTE"
cat > "$STATE_DIR/heat.conf" <<EOF
[DEFAULT]
# in-memory RPC between API and engine (works only inside one process)
transport_url = fake://
# no Keystone: keep the caller's creds instead of Keystone trusts, fake keystone client
deferred_auth_method = password
keystone_backend = heat.engine.clients.os.keystone.fake_keystoneclient.FakeKeystoneClient
# every request runs in project "admin" unless X-Auth-Project says otherwise
max_stacks_per_tenant = 100000
num_engine_workers = 1
# (oslo.service) do not wait long for in-flight work on SIGTERM
graceful_shutdown_timeout = 5
debug = $DEBUG
log_dir = $LOG_DIR
log_file = heat.log
${HEAT_ENVIRONMENT_DIR:+# extra resource_registry mappings (e.g. vendor types -> test resources)
environment_dir = $HEAT_ENVIRONMENT_DIR}
${HEAT_PLUGIN_DIRS:+# extra resource plugins (comma-separated dirs)
plugin_dirs = $HEAT_PLUGIN_DIRS}

[database]
connection = sqlite:///$STATE_DIR/heat.sqlite
sqlite_synchronous = false

[paste_deploy]
flavor = noauth
api_paste_config = $PASTE

[oslo_policy]
# noauth gives each request the single role "admin"; without Keystone's implied
# roles (admin -> member -> reader) the new RBAC defaults would deny everything.
enforce_scope = false
enforce_new_defaults = false

# used by heat-all (HEAT_VERSION 24.x) only
[heat_all]
enabled_services = api,engine

[heat_api]
bind_host = 127.0.0.1
bind_port = $PORT
workers = 1
EOF
cp "$SCRIPT_DIR/heat_local.py" "$STATE_DIR/heat_local.py"

# ---- (c) database
if [ $FRESH = 1 ]; then rm -f "$STATE_DIR"/heat.sqlite*; fi
if [ ! -s "$STATE_DIR/heat.sqlite" ]; then
  # (.pyc files are written into the private venv even if PYTHONDONTWRITEBYTECODE
  #  is set: importing Heat then takes ~1.5 s instead of ~6 s)
  env -u PYTHONDONTWRITEBYTECODE "$VENV/bin/heat-manage" --config-file "$STATE_DIR/heat.conf" \
      db_sync > "$LOG_DIR/db_sync.log" 2>&1 || lsvc_die 1 "db_sync failed, see $LOG_DIR/db_sync.log"
fi

# ---- (d) start in background (own session, so it survives the caller), (e) wait until it answers
if [ "${HEAT_VERSION%%.*}" -ge 25 ]; then
  CMD=("$VENV/bin/python" "$STATE_DIR/heat_local.py" --config-file "$STATE_DIR/heat.conf"
       --host 127.0.0.1 --port "$PORT" --pid-file "$PIDFILE")
else
  CMD=("$VENV/bin/heat-all" --config-file "$STATE_DIR/heat.conf")
fi
lsvc_launch Heat "$HEAT_VERSION" "$LOG_DIR/heat.log" heat_is_ours heat_answers "${CMD[@]}"
echo "$ENDPOINT"
