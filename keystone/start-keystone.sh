#!/usr/bin/env bash
# start-keystone.sh -- run a REAL OpenStack Keystone (identity v3) on 127.0.0.1 for tests:
# Keystone from PyPI in a private venv, sqlite, fernet tokens, served by the standard
# library's wsgiref (keystone_local.py beside this script), then provisioned for
# heat-reconciler (provision.py): an orchestration service whose public endpoint is
# the given Heat, a test project, a user with the member role on it and an
# application credential of that user, all written to <state-dir>/credentials.json.
#
# Usage: start-keystone.sh [--port PORT] [--heat-url URL] [--token-expiration SECS]
#                          [--fresh] [--log-dir DIR] [--state-dir DIR] [--debug]
#   --port              API port (default $KEYSTONE_PORT or 5000)
#   --heat-url          Heat for the catalog: http://127.0.0.1:8004 (then /v1/%(tenant_id)s
#                       is added) or a full .../v1/%(tenant_id)s; default $KEYSTONE_HEAT_URL;
#                       without either the orchestration endpoint is left as it is
#   --token-expiration  Keystone [token] expiration in seconds (default
#                       $KEYSTONE_TOKEN_EXPIRATION or 3600); a running Keystone with another
#                       value is restarted
#   --fresh             wipe database, keys and credentials first; restarts a running one
#   --log-dir           keystone.log, console.log, manage.log (default $KEYSTONE_HOME/logs/<port>)
#   --state-dir         keystone.conf, sqlite DB, keys, pid, credentials.json
#                       (default $KEYSTONE_HOME/state/<port>)
#   --debug             debug logging
# Env: KEYSTONE_HOME (default ${HEAT_RECONCILER_HOME:-$HOME/.cache/heat-reconciler}/keystone;
#        holds the venv, uv and its cache, state and logs -- never this folder),
#      KEYSTONE_VERSION (default and only tested: 30.0.0), KEYSTONE_PYTHON (default python3),
#      KEYSTONE_INSTALLER=auto|uv|pip (auto: uv from PyPI if obtainable, else pip).
# Idempotent: missing venv -> installed; already running with the same config -> only
# the provisioning runs again (it finds what exists, and updates the Heat URL).
# On success prints the auth URL (http://127.0.0.1:PORT/v3) on stdout, nothing else.
set -euo pipefail

KEYSTONE_VERSION=${KEYSTONE_VERSION:-30.0.0}
UV_VERSION=0.13.9
case "$KEYSTONE_VERSION" in
  30.0.0) ;;
  *) echo "start-keystone: only KEYSTONE_VERSION 30.0.0 is pinned/tested" >&2; exit 2;;
esac
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KEYSTONE_HOME=${KEYSTONE_HOME:-${HEAT_RECONCILER_HOME:-$HOME/.cache/heat-reconciler}/keystone}
PORT=${KEYSTONE_PORT:-5000}
HEAT_URL=${KEYSTONE_HEAT_URL:-}
EXPIRATION=${KEYSTONE_TOKEN_EXPIRATION:-3600}
REGION=RegionOne
LOG_DIR=""; STATE_DIR=""; FRESH=0; DEBUG=false
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT=$2; shift 2;;
    --heat-url) HEAT_URL=$2; shift 2;;
    --token-expiration) EXPIRATION=$2; shift 2;;
    --log-dir) LOG_DIR=$2; shift 2;;
    --state-dir) STATE_DIR=$2; shift 2;;
    --fresh) FRESH=1; shift;;
    --debug) DEBUG=true; shift;;
    -h|--help) sed -n '2,/^# On success/p' "$0"; exit 0;;
    *) echo "start-keystone: unknown argument: $1" >&2; exit 2;;
  esac
done
case "$EXPIRATION" in ''|*[!0-9]*) echo "start-keystone: --token-expiration takes seconds" >&2; exit 2;; esac
mkdir -p "$KEYSTONE_HOME"; KEYSTONE_HOME=$(cd "$KEYSTONE_HOME" && pwd)
VENV=$KEYSTONE_HOME/venv
LOG_DIR=${LOG_DIR:-$KEYSTONE_HOME/logs/$PORT}; mkdir -p "$LOG_DIR"; LOG_DIR=$(cd "$LOG_DIR" && pwd)
STATE_DIR=${STATE_DIR:-$KEYSTONE_HOME/state/$PORT}; mkdir -p "$STATE_DIR"; STATE_DIR=$(cd "$STATE_DIR" && pwd)
chmod 700 "$STATE_DIR"
PIDFILE=$STATE_DIR/keystone.pid
AUTH_URL="http://127.0.0.1:$PORT/v3"
log() { echo "start-keystone: $*" >&2; }

probe() {  # 0 when GET /v3 answers 200
  "${PROBE_PY:-$VENV/bin/python}" - "$PORT" <<'EOF' 2>/dev/null
import sys, urllib.request
try:
    r = urllib.request.urlopen("http://127.0.0.1:%s/v3" % sys.argv[1], timeout=5)
    sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}
is_ours() {  # pid alive and is a Keystone we started
  kill -0 "$1" 2>/dev/null && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q keystone_local.py
}
wait_up() {  # wait until the API answers; fail if the process dies
  # (alive, not is_ours: a process just started may not have exec'd keystone_local.py yet)
  for _ in $(seq 1 600); do
    kill -0 "$(cat "$PIDFILE" 2>/dev/null || echo 0)" 2>/dev/null || return 1
    if probe; then return 0; fi
    sleep 0.1
  done
  return 1
}
stop_running() {
  local old; old=$(cat "$PIDFILE")
  kill -TERM "$old" || true
  for _ in $(seq 1 150); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$old" 2>/dev/null; then kill -KILL "$old" || true; fi
  rm -f "$PIDFILE"
}

# ---- (a) venv with pinned packages (constraints.txt = the versions tested)
if ! { [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.keystone-installed" 2>/dev/null)" = "$KEYSTONE_VERSION" ]; }; then
  PY=${KEYSTONE_PYTHON:-python3}
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { log "$PY is older than 3.10"; exit 1; }
  PY=$("$PY" -c 'import sys; print(sys.executable)')
  INSTALLER=${KEYSTONE_INSTALLER:-auto}        # auto | uv | pip
  t0=$(date +%s)
  rm -rf "$VENV"
  UVBIN=""
  if [ "$INSTALLER" != pip ]; then
    UVBIN=$(command -v uv || true)
    if [ -z "$UVBIN" ]; then
      # `pip install --target` needs neither python3-venv nor a PEP 668 exemption; a venv is
      # the fallback for a pip that cannot do it (as in heat/start-heat.sh).
      if [ -x "$KEYSTONE_HOME/.uv-tool/bin/uv" ] || \
         { rm -rf "$KEYSTONE_HOME/.uv-tool" && "$PY" -m pip install -q --disable-pip-version-check \
             --root-user-action=ignore --target "$KEYSTONE_HOME/.uv-tool" "uv==$UV_VERSION" >&2 && \
           [ -x "$KEYSTONE_HOME/.uv-tool/bin/uv" ]; } || \
         { rm -rf "$KEYSTONE_HOME/.uv-tool" && "$PY" -m venv "$KEYSTONE_HOME/.uv-tool" && \
           "$KEYSTONE_HOME/.uv-tool/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION" >&2; }; then
        UVBIN=$KEYSTONE_HOME/.uv-tool/bin/uv
      fi
    fi
    if [ -z "$UVBIN" ]; then
      [ "$INSTALLER" = uv ] && { log "could not get uv"; exit 1; }
      log "uv unavailable, falling back to pip"
    fi
  fi
  if [ -n "$UVBIN" ]; then
    log "creating $VENV, installing keystone==$KEYSTONE_VERSION with uv"
    export UV_CACHE_DIR=${UV_CACHE_DIR:-$KEYSTONE_HOME/.cache/uv}
    "$UVBIN" venv -q --python "$PY" "$VENV" >&2
    VIRTUAL_ENV=$VENV "$UVBIN" pip install -q -c "$SCRIPT_DIR/constraints.txt" "keystone==$KEYSTONE_VERSION" >&2
  else
    log "creating $VENV, installing keystone==$KEYSTONE_VERSION with pip"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
        -c "$SCRIPT_DIR/constraints.txt" "keystone==$KEYSTONE_VERSION" >&2
  fi
  echo "$KEYSTONE_VERSION" > "$VENV/.keystone-installed"
  log "venv ready in $(( $(date +%s) - t0 ))s ($(du -sh "$VENV" | cut -f1))"
fi

# ---- (b) config
CONF=$STATE_DIR/keystone.conf
cat > "$CONF.new" <<EOF
[DEFAULT]
debug = $DEBUG
log_dir = $LOG_DIR
log_file = keystone.log

[database]
connection = sqlite:///$STATE_DIR/keystone.sqlite

[token]
provider = fernet
# seconds; tests shorten it to see tokens renewed
expiration = $EXPIRATION

[fernet_tokens]
key_repository = $STATE_DIR/fernet-keys

[fernet_receipts]
key_repository = $STATE_DIR/fernet-keys

[credential]
key_repository = $STATE_DIR/credential-keys

[identity]
# bcrypt's minimum: a password check costs ~1 ms instead of ~250 ms (a test Keystone)
password_hash_rounds = 4
EOF

# ---- (c) a running one: keep it if nothing changed
if [ -f "$PIDFILE" ] && is_ours "$(cat "$PIDFILE")"; then
  if [ $FRESH = 1 ]; then
    log "--fresh: stopping the running instance (pid $(cat "$PIDFILE"))"; stop_running
  elif ! cmp -s "$CONF.new" "$CONF"; then
    log "configuration changed: restarting (pid $(cat "$PIDFILE"))"; stop_running
  elif ! wait_up; then
    log "pid $(cat "$PIDFILE") exists but does not answer; stop it with stop-keystone.sh"; exit 1
  fi
fi
mv "$CONF.new" "$CONF"

# ---- (d) database, keys, bootstrap (first start, or --fresh)
if [ $FRESH = 1 ]; then
  rm -rf "$STATE_DIR"/keystone.sqlite* "$STATE_DIR/fernet-keys" "$STATE_DIR/credential-keys" \
         "$STATE_DIR/admin-password" "$STATE_DIR/credentials.json" "$STATE_DIR"/openrc-*
fi
manage() {  # (.pyc files are written into the private venv even under PYTHONDONTWRITEBYTECODE)
  env -u PYTHONDONTWRITEBYTECODE "$VENV/bin/keystone-manage" --config-file "$CONF" "$@" >> "$LOG_DIR/manage.log" 2>&1 \
    || { log "keystone-manage $1 failed, see $LOG_DIR/manage.log"; exit 1; }
}
if [ ! -s "$STATE_DIR/keystone.sqlite" ] || [ ! -s "$STATE_DIR/admin-password" ]; then
  rm -rf "$STATE_DIR"/keystone.sqlite* "$STATE_DIR/fernet-keys" "$STATE_DIR/credential-keys" \
         "$STATE_DIR/credentials.json" "$STATE_DIR"/openrc-*
  : > "$LOG_DIR/manage.log"
  t0=$(date +%s)
  manage db_sync
  manage fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
  manage credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
  (umask 077; "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(18))' > "$STATE_DIR/admin-password")
  OS_BOOTSTRAP_PASSWORD=$(cat "$STATE_DIR/admin-password") manage bootstrap \
    --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin \
    --bootstrap-service-name keystone --bootstrap-region-id "$REGION" \
    --bootstrap-admin-url "$AUTH_URL" --bootstrap-internal-url "$AUTH_URL" --bootstrap-public-url "$AUTH_URL"
  log "database bootstrapped in $(( $(date +%s) - t0 ))s"
fi

# ---- (e) start in the background (own session, so it survives the caller)
if [ ! -f "$PIDFILE" ] || ! is_ours "$(cat "$PIDFILE")"; then
  if "$VENV/bin/python" -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('127.0.0.1',$PORT))!=0)"; then
    log "port $PORT is already in use by another process"; exit 1
  fi
  # The daemon keeps no file descriptor of its caller's (e.g. the lock of `flock LOCK start-keystone.sh`).
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-"; fi
    done
    exec nohup setsid env -u PYTHONDONTWRITEBYTECODE "$VENV/bin/python" "$SCRIPT_DIR/keystone_local.py" \
      --config-file "$CONF" --host 127.0.0.1 --port "$PORT" --pid-file "$PIDFILE"
  ) > "$LOG_DIR/console.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  if ! wait_up; then
    log "Keystone did not come up on port $PORT; last log lines:"
    tail -n 30 "$LOG_DIR/console.log" "$LOG_DIR/keystone.log" >&2 2>/dev/null || true
    kill -TERM "$(cat "$PIDFILE")" 2>/dev/null || true
    rm -f "$PIDFILE"; exit 1
  fi
  log "Keystone $KEYSTONE_VERSION up (pid $(cat "$PIDFILE")), logs in $LOG_DIR"
fi

# ---- (f) the orchestration endpoint, test project, user and application credential
"$VENV/bin/python" "$SCRIPT_DIR/provision.py" --auth-url "$AUTH_URL" --state-dir "$STATE_DIR" \
  --admin-password-file "$STATE_DIR/admin-password" --region "$REGION" --heat-url "$HEAT_URL" \
  --token-expiration "$EXPIRATION" >&2 || { log "provisioning failed"; exit 1; }
log "credentials in $STATE_DIR/credentials.json"
echo "$AUTH_URL"
