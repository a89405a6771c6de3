#!/usr/bin/env bash
# The README's test command: installs dependencies, checks the formatting of the lines changed since
# .ci/format-base (tools/check-format.sh), builds everything, runs the whole test suite,
# then runs it again under AddressSanitizer + UndefinedBehaviorSanitizer (tools/sanitize.sh, its own
# build-asan directory) and fuzzes every fuzz target for 60 s (tools/fuzz.sh, build-fuzz).
# RETNET_TESTS_QUICK=1 stops after the normal suite (a quick local check; CI runs everything).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/check-format.sh
bash tools/build.sh "$@"
ctest --test-dir build --output-on-failure -j "$(nproc)"
if [ "${RETNET_TESTS_QUICK:-0}" = 1 ]; then
  echo "run-tests: RETNET_TESTS_QUICK=1: sanitizer run and fuzzing skipped" >&2
  exit 0
fi
bash tools/sanitize.sh
bash tools/fuzz.sh 60
