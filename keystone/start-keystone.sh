#!/usr/bin/env bash
# start-keystone.sh -- run a REAL OpenStack Keystone (identity v3) on 127.0.0.1 for tests:
# Keystone from PyPI in a private venv, sqlite, fernet tokens, served by the standard
# library's wsgiref (keystone_local.py beside this script), then provisioned for
# heat-reconciler (provision.py): an orchestration service whose public endpoint is
# the given Heat, a test project, a user with the member role on it and an
# application credential of that user, all written to <state-dir>/credentials.json.
# The code it shares with heat/ is in scripts/lib/local-service.sh.
#
# Usage: start-keystone.sh [--port PORT] [--heat-url URL] [--heat-admin-url URL]
#                          [--token-expiration SECS] [--fresh] [--log-dir DIR] [--state-dir DIR] [--debug]
#   --port              API port (default $KEYSTONE_PORT or 5000)
#   --heat-url          Heat for the catalog: http://127.0.0.1:8004 (then /v1/%(tenant_id)s
#                       is added) or a full .../v1/%(tenant_id)s; default $KEYSTONE_HEAT_URL;
#                       without either the orchestration endpoint is left as it is
#   --heat-admin-url    the same for the admin orchestration endpoint (the TLS tests: a TLS
#                       proxy in front of the same Heat); without it that one is left as it is
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
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../scripts/lib/local-service.sh
. "$SCRIPT_DIR/../scripts/lib/local-service.sh"
LSVC_NAME=start-keystone

KEYSTONE_VERSION=${KEYSTONE_VERSION:-30.0.0}
case "$KEYSTONE_VERSION" in
  30.0.0) ;;
  *) lsvc_die 2 "only KEYSTONE_VERSION 30.0.0 is pinned/tested";;
esac
KEYSTONE_HOME=${KEYSTONE_HOME:-$(lsvc_default_home keystone)}
PORT=${KEYSTONE_PORT:-5000}
HEAT_URL=${KEYSTONE_HEAT_URL:-}
HEAT_ADMIN_URL=""
EXPIRATION=${KEYSTONE_TOKEN_EXPIRATION:-3600}
REGION=RegionOne
LOG_DIR=""; STATE_DIR=""; FRESH=0; DEBUG=false
while [ $# -gt 0 ]; do
  case "$1" in
    --heat-url) HEAT_URL=$2; shift 2;;
    --heat-admin-url) HEAT_ADMIN_URL=$2; shift 2;;
    --token-expiration) EXPIRATION=$2; shift 2;;
    *) lsvc_arg "--port --log-dir --state-dir --fresh --debug" "$@"; shift "$LSVC_SHIFT";;
  esac
done
case "$EXPIRATION" in ''|*[!0-9]*) lsvc_die 2 "--token-expiration takes seconds";; esac
KEYSTONE_HOME=$(lsvc_abs_dir "$KEYSTONE_HOME")
VENV=$KEYSTONE_HOME/venv
lsvc_dirs "$KEYSTONE_HOME"
chmod 700 "$STATE_DIR"
PIDFILE=$STATE_DIR/keystone.pid
AUTH_URL="http://127.0.0.1:$PORT/v3"

keystone_is_ours() {  # PID: alive and a Keystone we started
  lsvc_is_ours "$1" keystone_local.py
}
keystone_answers() {  # GET /v3 answers 200
  lsvc_http_ok "$AUTH_URL"
}

# ---- (a) venv with pinned packages (constraints.txt = the versions tested)
lsvc_ensure_venv "$KEYSTONE_HOME" "$VENV" .keystone-installed "$KEYSTONE_VERSION" "${KEYSTONE_PYTHON:-python3}" \
  "${KEYSTONE_INSTALLER:-auto}" "$SCRIPT_DIR/constraints.txt" "keystone==$KEYSTONE_VERSION"

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
if [ -f "$PIDFILE" ] && keystone_is_ours "$(cat "$PIDFILE")"; then
  if [ $FRESH = 1 ]; then
    lsvc_log "--fresh: stopping the running instance (pid $(cat "$PIDFILE"))"; lsvc_stop_running
  elif ! cmp -s "$CONF.new" "$CONF"; then
    lsvc_log "configuration changed: restarting (pid $(cat "$PIDFILE"))"; lsvc_stop_running
  elif ! lsvc_wait_up lsvc_alive keystone_answers; then
    lsvc_die 1 "pid $(cat "$PIDFILE") exists but does not answer; stop it with stop-keystone.sh"
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
    || lsvc_die 1 "keystone-manage $1 failed, see $LOG_DIR/manage.log"
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
  lsvc_log "database bootstrapped in $(( $(date +%s) - t0 ))s"
fi

# ---- (e) start in the background (own session, so it survives the caller)
if [ ! -f "$PIDFILE" ] || ! keystone_is_ours "$(cat "$PIDFILE")"; then
  lsvc_launch Keystone "$KEYSTONE_VERSION" "$LOG_DIR/keystone.log" lsvc_alive keystone_answers \
    "$VENV/bin/python" "$SCRIPT_DIR/keystone_local.py" --config-file "$CONF" --host 127.0.0.1 --port "$PORT" \
    --pid-file "$PIDFILE"
fi

# ---- (f) the orchestration endpoint, test project, user and application credential
"$VENV/bin/python" "$SCRIPT_DIR/provision.py" --auth-url "$AUTH_URL" --state-dir "$STATE_DIR" \
  --admin-password-file "$STATE_DIR/admin-password" --region "$REGION" --heat-url "$HEAT_URL" \
  --heat-admin-url "$HEAT_ADMIN_URL" \
  --token-expiration "$EXPIRATION" >&2 || lsvc_die 1 "provisioning failed"
lsvc_log "credentials in $STATE_DIR/credentials.json"
echo "$AUTH_URL"
