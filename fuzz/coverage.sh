#!/usr/bin/env bash
# Which of the project's src/ files one fuzz target's corpus reaches, with their line and region
# coverage (FUZZING.md): `cargo fuzz coverage` replays fuzz/corpus/<target> through a
# coverage-instrumented build, then llvm-cov reports on src/ only, as a Markdown table of the
# files reached (any line covered) and llvm-cov's total over every src/ file linked in.
#
#   fuzz/coverage.sh <target>
#
# FUZZ_TOOLCHAIN as for scripts/fuzz-smoke.sh; FUZZ_COVERAGE_DIR, the coverage build's target
# directory. The first run builds everything again with coverage instrumentation (as long as
# the first fuzz build); later ones build the target and replay.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: fuzz/coverage.sh TARGET}
toolchain=${FUZZ_TOOLCHAIN:-nightly-2026-05-20}
triple=$(rustc "+$toolchain" -vV | sed -n 's/^host: //p')
sysroot=$(rustc "+$toolchain" --print sysroot)
llvm_cov="$sysroot/lib/rustlib/$triple/bin/llvm-cov"
if [ ! -x "$llvm_cov" ]; then
  rustup component add llvm-tools-preview --toolchain "$toolchain"
fi

# Under fuzz/target (cargo-fuzz's default is target/ of the current directory, a tree of its own).
target_dir=${FUZZ_COVERAGE_DIR:-fuzz/target/$triple/coverage}
cargo "+$toolchain" fuzz coverage --target-dir "$target_dir" "$target" >&2
binary="$target_dir/$triple/release/$target"
report=$("$llvm_cov" report "$binary" -instr-profile="fuzz/coverage/$target/coverage.profdata" "$PWD/src")

# llvm-cov's columns: file, regions, missed, cover, functions, missed, executed, lines, missed,
# cover (then branches, when measured). Paths come relative to src/ or absolute.
echo "| file | lines | line cover | regions | region cover |"
echo "|---|---:|---:|---:|---:|"
echo "$report" | awk -v root="$PWD/" '
  $1 ~ /\.rs$/ && $9 < $8 { sub(root, "", $1); if ($1 !~ /^src\//) $1 = "src/" $1; printf "| `%s` | %d | %s | %d | %s |\n", $1, $8, $10, $2, $4 }
  $1 == "TOTAL" { printf "| total, every src/ file linked in | %d | %s | %d | %s |\n", $8, $10, $2, $4 }'
