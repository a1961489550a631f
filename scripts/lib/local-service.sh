# shellcheck shell=bash
# local-service.sh -- what heat/start-heat.sh, heat/stop-heat.sh, keystone/start-keystone.sh and
# keystone/stop-keystone.sh have in common: a Python service from PyPI in a private venv, run
# on 127.0.0.1 as a daemon with a pid file, waited for until its HTTP API answers, stopped with
# SIGTERM and then SIGKILL. Sourced, never run; the scripts run under `set -euo pipefail`.
#
# The scripts set these globals, which the functions below read (and some set):
#   LSVC_NAME   prefix of every message (start-heat, stop-keystone, ...)
#   PORT        the service's port on 127.0.0.1
#   VENV        the service's venv (its python runs the probes)
#   PIDFILE     the service's pid file
#   LOG_DIR     console.log goes there (start scripts)
#   STATE_DIR   removed by --purge (stop scripts)
#   FRESH DEBUG PURGE   set by lsvc_parse_args from --fresh (1), --debug (true), --purge (1)
#   PROBE_PY    (environment, optional) the python the probes use instead of $VENV/bin/python

# ---- messages
lsvc_log() {  # MESSAGE...: "<name>: MESSAGE" on stderr
  echo "$LSVC_NAME: $*" >&2
}
lsvc_die() {  # STATUS MESSAGE...: logs MESSAGE, exits with STATUS
  local status=$1; shift
  lsvc_log "$@"
  exit "$status"
}

# ---- arguments
lsvc_usage() {  # prints the calling script's header: its comment lines from line 2 on
  sed -n '2,${/^#/!q;p}' "$0"
}
# shellcheck disable=SC2034 # FRESH, DEBUG: read by the scripts
lsvc_arg() {  # ACCEPTED ARGS...: takes the option at the head of ARGS and sets LSVC_SHIFT to
  # the number of words it used. ACCEPTED lists the options this script has among --port,
  # --log-dir, --state-dir (into PORT, LOG_DIR, STATE_DIR), --fresh (FRESH=1), --debug
  # (DEBUG=true) and --purge (PURGE=1); -h/--help prints the usage and exits 0, anything else
  # exits 2.
  local words word; read -ra words <<< "$1"; shift
  case "$1" in
    -h|--help) lsvc_usage; exit 0;;
  esac
  for word in "${words[@]}"; do
    [ "$word" = "$1" ] || continue
    case "$1" in
      --port) PORT=$2; LSVC_SHIFT=2; return;;
      --log-dir) LOG_DIR=$2; LSVC_SHIFT=2; return;;
      --state-dir) STATE_DIR=$2; LSVC_SHIFT=2; return;;
      --fresh) FRESH=1; LSVC_SHIFT=1; return;;
      --debug) DEBUG=true; LSVC_SHIFT=1; return;;
      --purge) PURGE=1; LSVC_SHIFT=1; return;;
    esac
  done
  lsvc_die 2 "unknown argument: $1"
}
lsvc_parse_args() {  # ACCEPTED ARGS...: lsvc_arg on every argument
  local accepted=$1; shift
  while [ $# -gt 0 ]; do
    lsvc_arg "$accepted" "$@"; shift "$LSVC_SHIFT"
  done
}

# ---- folders
lsvc_default_home() {  # NAME: the default home of service NAME
  echo "${HEAT_RECONCILER_HOME:-$HOME/.cache/heat-reconciler}/$1"
}
lsvc_abs_dir() {  # DIR: creates DIR, prints its absolute path
  mkdir -p "$1" && (cd "$1" && pwd)
}
lsvc_dirs() {  # HOME: LOG_DIR and STATE_DIR, created and absolute; by default HOME/logs/PORT
  # and HOME/state/PORT
  LOG_DIR=$(lsvc_abs_dir "${LOG_DIR:-$1/logs/$PORT}")
  STATE_DIR=$(lsvc_abs_dir "${STATE_DIR:-$1/state/$PORT}")
}

# ---- the venv
# lsvc_ensure_venv HOME VENV MARKER VERSION PYTHON INSTALLER CONSTRAINTS SPEC [PIP_NOTE]
# Unless VENV/MARKER already holds VERSION: (re)creates VENV with PYTHON (3.10 or newer) and
# installs SPEC with the pinned versions of CONSTRAINTS, then writes VERSION into VENV/MARKER.
# INSTALLER is auto, uv or pip. uv installs in seconds: the uv on PATH, else one fetched from
# PyPI into HOME/.uv-tool (its cache in HOME/.cache/uv unless UV_CACHE_DIR is set); auto falls
# back to pip when no uv can be had. PIP_NOTE ends pip's message (e.g. " (~1.5 min)").
LSVC_UV_VERSION=0.13.9
lsvc_ensure_venv() {
  local home=$1 venv=$2 marker=$3 version=$4 py=$5 installer=$6 constraints=$7 spec=$8 pip_note=${9:-}
  local t0 uvbin=""
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/$marker" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || lsvc_die 1 "$py is older than 3.10"
  py=$("$py" -c 'import sys; print(sys.executable)')
  t0=$(date +%s)
  rm -rf "$venv"
  if [ "$installer" != pip ]; then
    uvbin=$(command -v uv || true)
    if [ -z "$uvbin" ]; then
      # `pip install --target` needs neither the venv module (Debian: python3-venv) nor an
      # exemption from PEP 668 (Debian's "externally-managed-environment"); a venv is the
      # fallback for a pip that cannot do it.
      if [ -x "$home/.uv-tool/bin/uv" ] || \
         { rm -rf "$home/.uv-tool" && "$py" -m pip install -q --disable-pip-version-check --root-user-action=ignore \
             --target "$home/.uv-tool" "uv==$LSVC_UV_VERSION" >&2 && \
           [ -x "$home/.uv-tool/bin/uv" ]; } || \
         { rm -rf "$home/.uv-tool" && "$py" -m venv "$home/.uv-tool" && \
           "$home/.uv-tool/bin/pip" install -q --disable-pip-version-check "uv==$LSVC_UV_VERSION" >&2; }; then
        uvbin=$home/.uv-tool/bin/uv
      fi
    fi
    if [ -z "$uvbin" ]; then
      [ "$installer" = uv ] && lsvc_die 1 "could not get uv"
      lsvc_log "uv unavailable, falling back to pip"
    fi
  fi
  if [ -n "$uvbin" ]; then
    lsvc_log "creating $venv, installing $spec with uv"
    export UV_CACHE_DIR=${UV_CACHE_DIR:-$home/.cache/uv}
    "$uvbin" venv -q --python "$py" "$venv" >&2
    VIRTUAL_ENV=$venv "$uvbin" pip install -q -c "$constraints" "$spec" >&2
  else
    lsvc_log "creating $venv, installing $spec with pip$pip_note"
    "$py" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -c "$constraints" "$spec" >&2
  fi
  echo "$version" > "$venv/$marker"
  lsvc_log "venv ready in $(( $(date +%s) - t0 ))s ($(du -sh "$venv" | cut -f1))"
}

# ---- processes
lsvc_alive() {  # PID: 0 when PID runs
  kill -0 "$1" 2>/dev/null
}
lsvc_is_ours() {  # PID PATTERN...: 0 when PID runs and its command line contains a PATTERN
  local pid=$1 pattern args=(); shift
  for pattern in "$@"; do args+=(-e "$pattern"); done
  lsvc_alive "$pid" && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "${args[@]}"
}
lsvc_pid() {  # the pid in PIDFILE, or 0
  cat "$PIDFILE" 2>/dev/null || echo 0
}
lsvc_wait_exit() {  # PID: waits up to 15 s for PID to end; 1 if it still runs
  for _ in $(seq 1 150); do lsvc_alive "$1" || return 0; sleep 0.1; done
  ! lsvc_alive "$1"
}
lsvc_stop_running() {  # stops the pid of PIDFILE (SIGTERM, SIGKILL after 15 s), removes PIDFILE
  local old; old=$(cat "$PIDFILE")
  kill -TERM "$old" || true
  lsvc_wait_exit "$old" || kill -KILL "$old" || true
  rm -f "$PIDFILE"
}

# ---- probes
lsvc_http_ok() {  # URL: 0 when GET URL answers 200 within 5 s
  "${PROBE_PY:-$VENV/bin/python}" - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=5)
    sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}
lsvc_port_in_use() {  # 0 when something accepts connections on 127.0.0.1:PORT
  "$VENV/bin/python" -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('127.0.0.1',$PORT))!=0)"
}
lsvc_wait_up() {  # CHECK PROBE: waits up to 60 s until PROBE succeeds; 1 as soon as CHECK (a
  # function of a pid) fails for the pid of PIDFILE
  local check=$1 probe=$2
  for _ in $(seq 1 600); do
    "$check" "$(lsvc_pid)" || return 1
    if "$probe"; then return 0; fi
    sleep 0.1
  done
  return 1
}

# ---- start
# lsvc_launch WHAT VERSION SERVICE_LOG CHECK PROBE COMMAND...
# Starts COMMAND in the background in its own session (it survives its caller), with
# LOG_DIR/console.log as stdout and stderr, its pid in PIDFILE, then waits until PROBE succeeds
# while the process lives (alive, not CHECK: the child may not have exec'd COMMAND yet). Exits 1
# when the port is already taken, or when the service does not come up: then it shows the last
# lines of console.log and SERVICE_LOG and stops the process if CHECK holds for it.
lsvc_launch() {
  local what=$1 version=$2 service_log=$3 check=$4 probe=$5; shift 5
  if lsvc_port_in_use; then
    lsvc_die 1 "port $PORT is already in use by another process"
  fi
  # The daemon must not keep file descriptors it inherits from our caller (e.g. the lock of
  # `flock LOCKFILE start-heat.sh`, which the service would otherwise hold until it stops):
  # close everything but stdin/stdout/stderr in the subshell that execs it.
  (
    for fd in "/proc/$BASHPID/fd/"*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-"; fi
    done
    exec nohup setsid env -u PYTHONDONTWRITEBYTECODE "$@"
  ) > "$LOG_DIR/console.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  if lsvc_wait_up lsvc_alive "$probe"; then
    lsvc_log "$what $version up (pid $(cat "$PIDFILE")), logs in $LOG_DIR"
    return 0
  fi
  lsvc_log "$what did not come up on port $PORT; last log lines:"
  tail -n 30 "$LOG_DIR/console.log" "$service_log" >&2 2>/dev/null || true
  if "$check" "$(cat "$PIDFILE")"; then kill -TERM "$(cat "$PIDFILE")" 2>/dev/null || true; fi
  rm -f "$PIDFILE"; exit 1
}

# ---- stop
lsvc_stop() {  # PATTERN...: stops the pid of PIDFILE if its command line contains a PATTERN
  # (SIGTERM, SIGKILL after 15 s) and removes PIDFILE; with PURGE=1 removes STATE_DIR too.
  # Reports on stdout.
  local pid
  if [ -f "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    if lsvc_is_ours "$pid" "$@"; then
      kill -TERM "$pid"
      if ! lsvc_wait_exit "$pid"; then
        echo "$LSVC_NAME: pid $pid still alive after 15 s, sending SIGKILL"; kill -KILL "$pid" || true
      fi
      echo "$LSVC_NAME: stopped pid $pid (port $PORT)"
    else
      echo "$LSVC_NAME: pid $pid is not running (stale pid file)"
    fi
    rm -f "$PIDFILE"
  else
    echo "$LSVC_NAME: no pid file $PIDFILE (not running?)"
  fi
  if [ "$PURGE" = 1 ]; then rm -rf "$STATE_DIR"; echo "$LSVC_NAME: removed $STATE_DIR"; fi
}
