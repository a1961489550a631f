#!/usr/bin/env bash
# Brings the repository's copies of the shared material up to date: ../shared/conformance →
# tests/conformance/ (a mirror: files gone upstream go here too; tests/conformance/SOURCE.md is
# ours and stays) and ../shared/docs/PROTOCOL.md → docs/PROTOCOL.md. ../shared is where updates
# come from; the build, the demo and the tests read only the copies, so a clone builds and tests
# without ../shared beside it. Prints what changed; commit the result like any other change.
#
#   sync-shared.sh [SHARED_DIR]           copy (SHARED_DIR defaults to ../shared)
#   sync-shared.sh --check [SHARED_DIR]   copy nothing; exit 1 if the copies differ from SHARED_DIR
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
if [ "${1:-}" = --check ]; then
  check=true
  shift
fi
shared=${1:-../shared}

if [ ! -d "$shared/conformance/scenarios" ] || [ ! -f "$shared/docs/PROTOCOL.md" ]; then
  echo "sync-shared: $shared/conformance/scenarios or $shared/docs/PROTOCOL.md is missing; nothing copied" >&2
  exit 1
fi

# The corpus copy without our own note, compared with upstream.
differs() {
  ! diff -rq -x SOURCE.md "$shared/conformance" tests/conformance >/dev/null 2>&1 ||
    ! cmp -s "$shared/docs/PROTOCOL.md" docs/PROTOCOL.md
}

if $check; then
  if differs; then
    diff -rq -x SOURCE.md "$shared/conformance" tests/conformance || true
    cmp "$shared/docs/PROTOCOL.md" docs/PROTOCOL.md || true
    echo "sync-shared: the copies differ from $shared; run scripts/sync-shared.sh" >&2
    exit 1
  fi
  echo "sync-shared: tests/conformance and docs/PROTOCOL.md match $shared"
  exit 0
fi

if ! differs; then
  echo "sync-shared: tests/conformance and docs/PROTOCOL.md already match $shared"
  exit 0
fi

mkdir -p tests/conformance docs
# Mirror: remove everything but SOURCE.md, then copy. ../shared is read-only, and so would the
# copies be: make them writable so that the next sync can replace them.
find tests/conformance -mindepth 1 -maxdepth 1 ! -name SOURCE.md -exec rm -rf {} +
cp -R "$shared/conformance/." tests/conformance/
cp "$shared/docs/PROTOCOL.md" docs/PROTOCOL.md
chmod -R u+w tests/conformance docs/PROTOCOL.md

echo "sync-shared: copied $shared/conformance → tests/conformance and $shared/docs/PROTOCOL.md → docs/PROTOCOL.md"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git --no-pager diff --stat -- tests/conformance docs/PROTOCOL.md
  new=$(git ls-files --others --exclude-standard -- tests/conformance docs/PROTOCOL.md)
  if [ -n "$new" ]; then
    echo "new (untracked) files: $(printf '%s\n' "$new" | wc -l)"
    printf '%s\n' "$new" | sed 's/^/  /' | head -n 20
    [ "$(printf '%s\n' "$new" | wc -l)" -le 20 ] || echo "  ..."
  fi
fi
# A section that the code or the docs cite may have been renumbered: tests/docs.rs checks them.
echo "then run: cargo test --test docs --test conformance"
