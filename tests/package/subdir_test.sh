#!/usr/bin/env bash
# Vendored consumption: builds tests/package/subdir_consumer, which does add_subdirectory(retnet) and
# links retnet::retnet, then runs its program. Checks that retnet, not being the top-level project,
# adds neither its tests nor its CLI. Usage: subdir_test.sh CONSUMER_BUILD_DIR SOURCE_DIR
#
# The consumer compiles the library a second time, so: its build directory is kept between runs
# (only the first run pays for the library: 90 s on the project's 2-core machine, 135 s while the
# rest of the suite runs beside it; later runs rebuild what changed, < 1 s when nothing did), and it
# builds without CUDA and at -O0 without debug info, the fastest to compile; the program only
# generates 8 tokens with the small bundled model.
set -euo pipefail
work=$1
src=$2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
if ! { cmake -S "$src/tests/package/subdir_consumer" -B "$work" -G Ninja -DRETNET_SRC="$src" -DRETNET_CUDA=OFF \
         -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DCMAKE_C_FLAGS_DEBUG=-O0 &&
       cmake --build "$work" -j 2; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "FAIL: the add_subdirectory consumer does not configure or build" >&2
  exit 1
fi
echo "subdir_test: consumer configured and built in $(($(date +%s) - start)) s"
for opt in RETNET_BUILD_TESTS RETNET_BUILD_TOOLS; do
  grep -q "^$opt:BOOL=OFF$" "$work/CMakeCache.txt" || { echo "FAIL: $opt is not OFF in a consumer build" >&2; exit 1; }
done
built=$(find "$work" -type f \( -name retnet_tests -o -name retnet_capi_test -o -name retnet \) -print)
[ -z "$built" ] || { echo "FAIL: a consumer build built retnet's tests or CLI: $built" >&2; exit 1; }
ls "$work"/retnet/libretnet.so* >/dev/null  # the library itself, in the binary dir given to add_subdirectory
out=$("$work/app" "$src/models/kjv-retnet")
echo "subdir_test: app generated: $out"
