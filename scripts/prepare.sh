#!/usr/bin/env bash
# Installs what building and testing heat-reconciler needs on a Debian machine, if it is missing:
# protoc (etcd-client compiles etcd's protos at build time), a real etcd (tests and the demo
# start their own on free loopback ports) and a real net-snmp agent (the SNMP probe tests, the demo
# and the benchmark start their own snmpd on loopback). Safe to run repeatedly.
set -euo pipefail

need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
# Debian puts snmpd in /usr/sbin, which is not on every PATH.
command -v snmpd >/dev/null 2>&1 || test -x /usr/sbin/snmpd || need+=(snmpd)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
