#!/usr/bin/env bash
# CI's fuzzing step (FUZZING.md): builds every `cargo fuzz` target of fuzz/ and runs each for a
# short while from the seeds, so a target that no longer builds, or an input the seeds or a few
# seconds of mutation reach that crashes, hangs or blows memory, fails CI. Installs what it needs
# when missing: the pinned nightly toolchain and cargo-fuzz. The long runs are FUZZING.md's.
#
#   fuzz-smoke.sh            every target, FUZZ_SECONDS (20) each
#
# FUZZ_TOOLCHAIN overrides the toolchain (a dated nightly by default: a new nightly can break the
# sanitizer build or cargo-fuzz on any day, and CI should fail for our changes, not for those).
set -euo pipefail
cd "$(dirname "$0")/.."

pinned=nightly-2026-05-20
# The build that channel date names (rustc's own date is the day before).
pinned_rustc="rustc 1.97.0-nightly (e50aa6fba 2026-05-19)"
seconds=${FUZZ_SECONDS:-20}
cargo_fuzz_version=0.13.2

if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
  toolchain=$FUZZ_TOOLCHAIN
elif rustup toolchain list | grep -q "^$pinned"; then
  toolchain=$pinned
elif [ "$(rustup run nightly rustc --version 2>/dev/null)" = "$pinned_rustc" ]; then
  # The machine's own `nightly` is that very build: use it rather than download it again.
  toolchain=nightly
else
  rustup toolchain install "$pinned" --profile minimal
  toolchain=$pinned
fi
echo "fuzz-smoke: toolchain $toolchain ($(rustup run "$toolchain" rustc --version))"
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $cargo_fuzz_version" ]]; then
  cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi
# libfuzzer-sys compiles libFuzzer itself, which is C++ (scripts/prepare.sh installs g++).
if ! command -v c++ >/dev/null; then
  echo "fuzz-smoke: no C++ compiler (c++); run scripts/prepare.sh" >&2
  exit 1
fi

python3 fuzz/seed.py
# `cargo fuzz` passes no `--locked` to cargo; fetching with it first fails when fuzz/Cargo.lock
# is out of date (refresh it with `cargo +nightly fetch --manifest-path fuzz/Cargo.toml`), and the
# build then resolves exactly what the lock file says.
cargo "+$toolchain" fetch --locked --quiet --manifest-path fuzz/Cargo.toml
cargo "+$toolchain" fuzz build

logs=fuzz/target/smoke
mkdir -p "$logs"
failed=()
for target in $(cargo "+$toolchain" fuzz list); do
  log="$logs/$target.log"
  if cargo "+$toolchain" fuzz run "$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    # libFuzzer's last status line (`#N DONE cov: … exec/s: … rss: …`) and its final counts.
    echo "fuzz-smoke: $target: $(grep -E "^#[0-9]+[[:space:]]+DONE" "$log" | tail -1)"
  else
    echo "fuzz-smoke: $target FAILED; the end of its log ($log):" >&2
    tail -n 60 "$log" >&2
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-smoke: failed: ${failed[*]} (inputs under fuzz/artifacts/<target>/)" >&2
  exit 1
fi
