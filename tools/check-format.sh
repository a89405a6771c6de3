#!/usr/bin/env bash
# Checks that the C, C++ and CUDA lines changed since BASE are formatted as .clang-format says
# (clang-format 14, via git clang-format): prints the changes it would make and exits 1 if there are
# any. Only changed lines are checked, so older code keeps its layout until it is next edited.
#
#   tools/check-format.sh [--fix] [BASE]
#
# BASE defaults to the commit recorded in .ci/format-base: formatting is enforced on everything
# changed after it (working tree included). It is a full hash, so that it means the same on every
# clone; the clone needs history back to it (CI: fetch-depth 0, or git fetch --unshallow).
# --fix formats those lines in place instead. A branch begun before .ci/format-base, once merged,
# shows its own changes as changed since the base: format them with --fix, or move the base to the
# merge commit (README.md, "Tests and their tolerances").
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
if [ "${1:-}" = --fix ]; then
  fix=1
  shift
fi
base=${1:-$(tr -d '[:space:]' < .ci/format-base)}
if ! command -v git-clang-format >/dev/null || ! command -v clang-format >/dev/null; then
  echo "check-format: clang-format and git-clang-format are needed (apt-get install clang-format; tools/install-deps.sh)" >&2
  exit 2
fi
ver=$(clang-format --version | sed -nE 's/.*version ([0-9]+).*/\1/p')
[ "$ver" = 14 ] || echo "check-format: clang-format $ver here; .clang-format is checked with version 14 (others may differ)" >&2
if ! git rev-parse -q --verify "$base^{commit}" >/dev/null; then
  echo "check-format: base commit $base is not in this clone (shallow? git fetch --unshallow)" >&2
  exit 2
fi
# Generated files are not formatted (tools/gen_unicode_tables.py writes the tables).
mapfile -t files < <(git diff --name-only --diff-filter=ACMR "$base" -- '*.c' '*.h' '*.cpp' '*.hpp' '*.cu' '*.cuh' \
  ':!src/tokenizer/unicode_tables.cpp')
mapfile -t -O "${#files[@]}" files < <(git ls-files --others --exclude-standard -- '*.c' '*.h' '*.cpp' '*.hpp' '*.cu' '*.cuh')
if [ "${#files[@]}" -eq 0 ]; then
  echo "check-format: no C/C++/CUDA file changed since ${base:0:12}"
  exit 0
fi
exts=c,h,cpp,hpp,cu,cuh
if [ "$fix" = 1 ]; then
  git add -N -- "${files[@]}"  # untracked files: git clang-format only sees files git knows
  git clang-format --quiet --extensions "$exts" "$base" -- "${files[@]}" || true
  exit 0
fi
out=$(git clang-format --diff --extensions "$exts" "$base" -- "${files[@]}" 2>&1 || true)
case "$out" in
  "" | *"no modified files to format"* | *"did not modify any files"*)
    echo "check-format: the lines changed since ${base:0:12} are formatted (${#files[@]} files)"
    exit 0 ;;
esac
echo "$out"
echo "check-format: the lines above are not formatted as .clang-format says; fix with: tools/check-format.sh --fix ${1:-}" >&2
exit 1
