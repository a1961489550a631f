#!/usr/bin/env bash
# start-heat.sh -- run a REAL OpenStack Heat (API + engine) locally, standalone,
# with heat-reconciler's resource plugins (heat/plugins) and global environment
# (heat/environment) loaded, so the corpus templates' vendor types
# (OS::Contrail::*, ESI::VNF::*, ESI::Monitoring::MonitoringTarget) can be created.
#
# No Keystone / Nova / RabbitMQ / MySQL: "noauth" API pipeline, fake keystone
# backend, in-memory oslo.messaging (fake://), SQLite.  API and engine run in
# ONE process, bound to 127.0.0.1 only:
#   HEAT_VERSION=27.0.1 (default): heat_local.py (embedded below), a ~150-line
#       stand-in for the heat-all command that Heat removed in 25.0.0; it
#       serves Heat's own paste WSGI app and runs Heat's own EngineService.
#   HEAT_VERSION=24.1.2: Heat's stock `heat-all` (eventlet, deprecated).
# Adapted from the reference scripts of ../shared/tools/heat-standalone (see heat/README.md).
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

HEAT_VERSION=${HEAT_VERSION:-27.0.1}
UV_VERSION=0.13.9
case "$HEAT_VERSION" in
  27.0.1|24.1.2) ;;
  *) echo "start-heat: only HEAT_VERSION 27.0.1 or 24.1.2 are pinned/tested" >&2; exit 2;;
esac
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HEAT_HOME=${HEAT_HOME:-${HEAT_RECONCILER_HOME:-$HOME/.cache/heat-reconciler}/heat}
# unset -> the project's folders; set but empty -> none
HEAT_PLUGIN_DIRS=${HEAT_PLUGIN_DIRS-$SCRIPT_DIR/plugins}
HEAT_ENVIRONMENT_DIR=${HEAT_ENVIRONMENT_DIR-$SCRIPT_DIR/environment}
PORT=${HEAT_PORT:-8004}
LOG_DIR=""; STATE_DIR=""; FRESH=0; DEBUG=false
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT=$2; shift 2;;
    --log-dir) LOG_DIR=$2; shift 2;;
    --state-dir) STATE_DIR=$2; shift 2;;
    --fresh) FRESH=1; shift;;
    --debug) DEBUG=true; shift;;
    -h|--help) sed -n '2,/^# On success/p' "$0"; exit 0;;
    *) echo "start-heat: unknown argument: $1" >&2; exit 2;;
  esac
done
mkdir -p "$HEAT_HOME"; HEAT_HOME=$(cd "$HEAT_HOME" && pwd)
if [ "$HEAT_VERSION" = 27.0.1 ]; then VENV=$HEAT_HOME/venv; else VENV=$HEAT_HOME/venv-$HEAT_VERSION; fi
LOG_DIR=${LOG_DIR:-$HEAT_HOME/logs/$PORT}; mkdir -p "$LOG_DIR"; LOG_DIR=$(cd "$LOG_DIR" && pwd)
STATE_DIR=${STATE_DIR:-$HEAT_HOME/state/$PORT}; mkdir -p "$STATE_DIR"; STATE_DIR=$(cd "$STATE_DIR" && pwd)
PIDFILE=$STATE_DIR/heat.pid
ENDPOINT="http://127.0.0.1:$PORT/v1/admin"
log() { echo "start-heat: $*" >&2; }

probe() {  # 0 when the Heat API answers GET /v1/admin/stacks with 200
  "${PROBE_PY:-$VENV/bin/python}" - "$PORT" <<'EOF' 2>/dev/null
import sys, urllib.request
try:
    r = urllib.request.urlopen("http://127.0.0.1:%s/v1/admin/stacks" % sys.argv[1], timeout=5)
    sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}
is_ours() {  # pid alive and is a Heat we started
  kill -0 "$1" 2>/dev/null && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q -e heat_local.py -e heat-all
}
wait_up() {  # wait until the API answers; fail if the process dies
  for _ in $(seq 1 600); do
    is_ours "$(cat "$PIDFILE" 2>/dev/null || echo 0)" || return 1
    if probe; then return 0; fi
    sleep 0.1
  done
  return 1
}

# ---- already running?
if [ -f "$PIDFILE" ] && is_ours "$(cat "$PIDFILE")"; then
  if [ $FRESH = 1 ]; then
    OLD=$(cat "$PIDFILE")
    log "--fresh: stopping running instance (pid $OLD)"
    kill -TERM "$OLD" || true
    for _ in $(seq 1 150); do kill -0 "$OLD" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$OLD" 2>/dev/null; then kill -KILL "$OLD" || true; fi
    rm -f "$PIDFILE"
  elif wait_up; then
    log "already running (pid $(cat "$PIDFILE"))"; echo "$ENDPOINT"; exit 0
  else
    log "pid $(cat "$PIDFILE") exists but does not answer; stop it with stop-heat.sh"; exit 1
  fi
fi

# ---- (a) venv with pinned packages (constraints = the versions tested)
write_constraints() {
cat > "$HEAT_HOME/heat-constraints.txt" <<'CONSTRAINTS_EOF'
alembic==1.20.1
amqp==5.4.2
aodhclient==3.12.0
attrs==26.1.0
autopage==0.6.0
babel==2.19.0
bcrypt==5.0.0
cachetools==8.0.2
certifi==2026.10.19.post1
cffi==2.1.1
charset-normalizer==3.5.3
cliff==4.17.0
cmd2==4.3.1
cotyledon==2.2.0
croniter==7.0.0
cryptography==50.0.2
debtcollector==3.1.0
decorator==5.3.1
dnspython==2.9.2
docker==7.2.0
dogpile.cache==1.5.0
eventlet==0.41.3
fasteners==0.20
futurist==3.5.0
greenlet==3.5.6
idna==3.20
invoke==3.0.3
iso8601==2.1.0
Jinja2==3.1.6
jmespath==1.1.0
jsonpatch==1.48
jsonpointer==3.12
jsonschema-specifications==2025.9.1
jsonschema==4.26.0
keystoneauth1==5.18.1
keystonemiddleware==13.0.1
kombu==5.7.0
lxml==6.1.3
Mako==1.4.3
markdown-it-py==4.3.0
MarkupSafe==3.0.4
mdurl==0.1.2
msgpack==1.2.4
ncclient==0.7.1
netaddr==1.3.0
networkx==3.6.1
neutron-lib==5.0.1
openstacksdk==4.22.0
os-ken==4.2.2
os-service-types==1.9.0
os-traits==3.9.0
osc-lib==4.7.0
oslo.cache==4.3.0
oslo.concurrency==7.6.1
oslo.config==10.7.0
oslo.context==6.5.0
oslo.db==18.1.1
oslo.i18n==6.9.0
oslo.log==8.3.2
oslo.messaging==18.3.1
oslo.metrics==0.17.0
oslo.middleware==8.2.0
oslo.policy==6.0.1
oslo.reports==3.9.0
oslo.serialization==5.11.0
oslo.service==4.8.0
oslo.upgradecheck==2.8.0
oslo.utils==10.2.0
oslo.versionedobjects==3.12.0
osprofiler==4.4.0
ovs==4.0.0
packaging==26.4
paramiko==5.1.0
Paste==3.10.1
PasteDeploy==3.1.0
pbr==7.1.3
pecan==1.8.0
platformdirs==4.14.8
prettytable==3.18.0
prometheus_client==0.26.0
prompt_toolkit==3.0.53
psutil==7.2.2
pycadf==4.1.0
pycparser==3.12
pydot==4.0.1
Pygments==2.21.0
PyJWT==2.15.1
PyNaCl==1.6.2
pyOpenSSL==26.4.0
pyparsing==3.3.3
pyperclip==1.11.0
python-barbicanclient==7.6.0
python-blazarclient==4.6.0
python-cinderclient==9.10.0
python-dateutil==4.0.0
python-designateclient==7.0.0
python-glanceclient==4.13.0
python-heatclient==5.3.0
python-ironicclient==6.3.0
python-keystoneclient==6.0.0
python-magnumclient==5.0.0
python-manilaclient==6.3.0
python-mistralclient==6.3.0
python-monascaclient==2.8.0
python-neutronclient==14.0.0
python-novaclient==18.13.1
python-octaviaclient==3.15.0
python-openstackclient==10.5.0
python-swiftclient==4.11.0
python-troveclient==8.11.0
python-vitrageclient==5.4.0
python-zaqarclient==4.7.0
python-zunclient==5.5.0
PyYAML==6.0.4
referencing==0.37.0
repoze-lru==0.8
requests==2.34.2
rfc3986==2.0.0
rich-argparse==1.8.0
rich==15.0.0
Routes==2.5.1
rpds-py==2026.9.1
setproctitle==1.3.8
setuptools==84.2.1
six==1.17.0
sortedcontainers==2.4.0
SQLAlchemy==2.1.9
statsd==4.0.1
stevedore==5.10.0
tenacity==9.2.1
testresources==2.1.2
testscenarios==0.7.0
typing_extensions==4.16.0
tzdata==2026.6
urllib3==2.8.0
vine==5.1.0
warlock==2.1.0
wcwidth==0.9.4
WebOb==1.8.11
websocket-client==1.9.2
wrapt==2.5.2
yappi==1.7.6
yaql==3.2.0
CONSTRAINTS_EOF
}
if ! { [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.heat-installed" 2>/dev/null)" = "$HEAT_VERSION" ]; }; then
  PY=${HEAT_PYTHON:-python3}
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { log "$PY is older than 3.10"; exit 1; }
  PY=$("$PY" -c 'import sys; print(sys.executable)')
  INSTALLER=${HEAT_INSTALLER:-auto}        # auto | uv | pip
  t0=$(date +%s)
  rm -rf "$VENV"
  write_constraints
  UVBIN=""
  if [ "$INSTALLER" != pip ]; then
    # uv (a PyPI package) installs the ~140 packages in seconds; pip needs ~80 s
    UVBIN=$(command -v uv || true)
    if [ -z "$UVBIN" ]; then
      # `pip install --target` needs neither the venv module (Debian: python3-venv) nor an
      # exemption from PEP 668 (Debian's "externally-managed-environment"); a venv is the
      # fallback for a pip that cannot do it.
      if [ -x "$HEAT_HOME/.uv-tool/bin/uv" ] || \
         { rm -rf "$HEAT_HOME/.uv-tool" && "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore \
             --target "$HEAT_HOME/.uv-tool" "uv==$UV_VERSION" >&2 && \
           [ -x "$HEAT_HOME/.uv-tool/bin/uv" ]; } || \
         { rm -rf "$HEAT_HOME/.uv-tool" && "$PY" -m venv "$HEAT_HOME/.uv-tool" && \
           "$HEAT_HOME/.uv-tool/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION" >&2; }; then
        UVBIN=$HEAT_HOME/.uv-tool/bin/uv
      fi
    fi
    if [ -z "$UVBIN" ]; then
      [ "$INSTALLER" = uv ] && { log "could not get uv"; exit 1; }
      log "uv unavailable, falling back to pip"
    fi
  fi
  if [ -n "$UVBIN" ]; then
    log "creating $VENV, installing openstack-heat==$HEAT_VERSION with uv"
    export UV_CACHE_DIR=${UV_CACHE_DIR:-$HEAT_HOME/.cache/uv}
    "$UVBIN" venv -q --python "$PY" "$VENV" >&2
    VIRTUAL_ENV=$VENV "$UVBIN" pip install -q \
        -c "$HEAT_HOME/heat-constraints.txt" "openstack-heat==$HEAT_VERSION" >&2
  else
    log "creating $VENV, installing openstack-heat==$HEAT_VERSION with pip (~1.5 min)"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
        -c "$HEAT_HOME/heat-constraints.txt" "openstack-heat==$HEAT_VERSION" >&2
  fi
  echo "$HEAT_VERSION" > "$VENV/.heat-installed"
  log "venv ready in $(( $(date +%s) - t0 ))s ($(du -sh "$VENV" | cut -f1))"
fi

# ---- (b) config (+ launcher)
PASTE=$VENV/etc/heat/api-paste.ini      # Heat's stock paste file; has a "noauth" flavor
[ -f "$PASTE" ] || { log "missing $PASTE"; exit 1; }
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
cat > "$STATE_DIR/heat_local.py" <<'HEATLOCAL_EOF'
#!/usr/bin/env python3
"""Run the real Heat REST API and the real Heat engine in ONE process.

This is a small replacement for the `heat-all` console script, which Heat
removed in 25.0.0 (2025.2).  The API WSGI application (built from Heat's own
api-paste.ini, "noauth" flavor) and heat.engine.service.EngineService talk to
each other over oslo.messaging's in-memory ``fake://`` transport, which only
works inside a single process -- hence this launcher.

Usage: heat_local.py --config-file heat.conf [--host 127.0.0.1] [--port 8004]
                     [--pid-file FILE]
"""
# flake8: noqa: E402
import argparse
import signal
import socketserver
import sys
import threading
from wsgiref import simple_server

# Same backend the stock heat-engine command selects (no eventlet).
from oslo_service import backend
backend.init_backend(backend.BackendType.THREADING)

from oslo_config import cfg
import oslo_i18n as i18n
from oslo_log import log as logging

from heat.common import config
from heat.common import messaging
from heat.engine import template
from heat.rpc import api as rpc_api
from heat import version

LOG = logging.getLogger('heat-local')


class _ThreadingWSGIServer(socketserver.ThreadingMixIn,
                           simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _Handler(simple_server.WSGIRequestHandler):
    def log_message(self, fmt, *args):  # access log -> heat log file
        LOG.info('%s %s', self.address_string(), fmt % args)


def _tune_sqlite(busy_timeout_ms=60000):
    """Make SQLite usable by a multi-threaded api+engine process.

    oslo.db opens a new sqlite connection per transaction (NullPool) and
    emits a plain (deferred) BEGIN.  Under concurrent stack operations two
    threads then both read, and the one that later tries to write fails
    *immediately* with "database is locked" (SQLite's deadlock avoidance
    does not wait on the busy handler).  We therefore:
      * switch the DB file to WAL (readers never block the writer),
      * set a generous busy timeout,
      * start every transaction with BEGIN IMMEDIATE, i.e. serialise
        transactions on the write lock instead of failing.
    """
    import sqlalchemy
    from heat.db import api as db_api

    eng = db_api.get_engine()
    if eng.dialect.name != 'sqlite':
        return

    @sqlalchemy.event.listens_for(eng, 'connect')
    def _on_connect(dbapi_con, rec):
        dbapi_con.execute('PRAGMA busy_timeout = %d' % busy_timeout_ms)
        dbapi_con.execute('PRAGMA journal_mode = WAL')

    # replace oslo.db's "begin" listener (emits a plain BEGIN) by ours;
    # oslo.db's commit/rollback listeners still clear the marker.
    for fn in list(eng.dispatch.begin):
        if getattr(fn, '__name__', '') == '_sqlite_emit_begin':
            sqlalchemy.event.remove(eng, 'begin', fn)

    @sqlalchemy.event.listens_for(eng, 'begin')
    def _begin_immediate(conn):
        if 'in_transaction' not in conn.info:
            conn.exec_driver_sql('BEGIN IMMEDIATE')
            conn.info['in_transaction'] = True

    LOG.info('sqlite tuning enabled (WAL, busy_timeout=%dms, '
             'BEGIN IMMEDIATE)', busy_timeout_ms)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--config-file', required=True)
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, default=8004)
    ap.add_argument('--pid-file', help='write our PID here')
    ap.add_argument('--stop-timeout', type=float, default=5.0,
                    help='seconds to wait for the engine on SIGTERM')
    ap.add_argument('--no-sqlite-tuning', action='store_true',
                    help='use oslo.db defaults for sqlite (fails under '
                         'concurrent stack operations)')
    a = ap.parse_args()
    if a.pid_file:
        import os
        with open(a.pid_file, 'w') as f:
            f.write('%d\n' % os.getpid())

    i18n.enable_lazy()
    conf = cfg.CONF
    logging.register_options(conf)
    conf(args=['--config-file', a.config_file], project='heat',
         prog='heat-all', version=version.version_info.version_string())
    logging.setup(conf, 'heat-all')
    config.set_config_defaults()
    messaging.setup()          # one global fake:// transport for api+engine
    config.startup_sanity_check()
    if not a.no_sqlite_tuning:
        _tune_sqlite()

    mgr = template._get_template_extension_manager()
    if not mgr or not mgr.names():
        sys.exit('ERROR: No template format plugins registered')

    from heat.engine import service as engine_service
    engine = engine_service.EngineService(conf.host, rpc_api.ENGINE_TOPIC)
    engine.start()             # in-process; no oslo.service launcher/fork
    LOG.info('Heat engine %s started', engine.engine_id)

    app = config.load_paste_app('heat-api')
    server = _ThreadingWSGIServer((a.host, a.port), _Handler)
    server.set_app(app)

    def _shutdown(signum, frame):
        LOG.info('Signal %s received, shutting down', signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)

    LOG.info('Heat API listening on http://%s:%d/', a.host, a.port)
    print('heat-local: listening on http://%s:%d/' % (a.host, a.port),
          flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()

        def _stop_engine():
            try:
                engine.stop()
            except Exception:  # best effort
                LOG.exception('engine stop failed')

        # EngineService.stop() waits for running stack operations; do not
        # let e.g. a TestResource sleeping 30 s block the shutdown.
        t = threading.Thread(target=_stop_engine, daemon=True)
        t.start()
        t.join(a.stop_timeout)
        if t.is_alive():
            LOG.warning('engine did not stop within %ss, exiting anyway '
                        '(stacks still in progress stay *_IN_PROGRESS)',
                        a.stop_timeout)
        LOG.info('stopped')
        # Do not wait for lingering non-daemon library threads (executors,
        # timers): flush logs and exit right away.
        import logging as _pylogging
        import os
        _pylogging.shutdown()
        os._exit(0)


if __name__ == '__main__':
    main()
HEATLOCAL_EOF

# ---- (c) database
if [ $FRESH = 1 ]; then rm -f "$STATE_DIR"/heat.sqlite*; fi
if [ ! -s "$STATE_DIR/heat.sqlite" ]; then
  # (.pyc files are written into the private venv even if PYTHONDONTWRITEBYTECODE
  #  is set: importing Heat then takes ~1.5 s instead of ~6 s)
  env -u PYTHONDONTWRITEBYTECODE "$VENV/bin/heat-manage" --config-file "$STATE_DIR/heat.conf" \
      db_sync > "$LOG_DIR/db_sync.log" 2>&1 || { log "db_sync failed, see $LOG_DIR/db_sync.log"; exit 1; }
fi

# ---- (d) start in background (own session, so it survives the caller)
if "$VENV/bin/python" -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('127.0.0.1',$PORT))!=0)"; then
  log "port $PORT is already in use by another process"; exit 1
fi
if [ "${HEAT_VERSION%%.*}" -ge 25 ]; then
  CMD=("$VENV/bin/python" "$STATE_DIR/heat_local.py" --config-file "$STATE_DIR/heat.conf"
       --host 127.0.0.1 --port "$PORT" --pid-file "$PIDFILE")
else
  CMD=("$VENV/bin/heat-all" --config-file "$STATE_DIR/heat.conf")
fi
# The daemon must not keep file descriptors it inherits from our caller (e.g. the lock of
# `flock LOCKFILE start-heat.sh`, which Heat would otherwise hold until it stops): close
# everything but stdin/stdout/stderr in the subshell that execs it.
(
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-"; fi
  done
  exec nohup setsid env -u PYTHONDONTWRITEBYTECODE "${CMD[@]}"
) > "$LOG_DIR/console.log" 2>&1 < /dev/null &
echo $! > "$PIDFILE"

# ---- (e) wait until it answers
if wait_up; then
  log "Heat $HEAT_VERSION up (pid $(cat "$PIDFILE")), logs in $LOG_DIR"
  echo "$ENDPOINT"; exit 0
fi
log "Heat did not come up on port $PORT; last log lines:"
tail -n 30 "$LOG_DIR/console.log" "$LOG_DIR/heat.log" >&2 2>/dev/null || true
if is_ours "$(cat "$PIDFILE")"; then kill -TERM "$(cat "$PIDFILE")" || true; fi
rm -f "$PIDFILE"; exit 1
