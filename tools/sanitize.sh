#!/usr/bin/env bash
# Builds retnet with AddressSanitizer + UndefinedBehaviorSanitizer into its own directory and runs the
# whole ctest suite under it (all but the entries listed below); any report fails the run
# (-fno-sanitize-recover=all, exitcode 1).
#   bash tools/sanitize.sh [BUILD_DIR]        (default: build-asan; extra cmake args via RETNET_SANITIZE_CMAKE_ARGS)
#
# Choices, and why:
#  * gcc 12 (Debian's default c++), the compiler CI builds with anyway; clang works too (CXX=clang++).
#  * -O1 -g: readable stacks at a speed that keeps the suite well under 15 min on 2 cores; assertions on.
#  * RETNET_CUDA=OFF: the CUDA runtime does not run under ASan (libcudart maps memory inside ASan's
#    shadow gap: it needs protect_shadow_gap=0 and is not instrumented anyway), device code compiled by
#    nvcc is not instrumented, and CI has no GPU, so the real-runtime tests would only skip. The kernels
#    and the CUDA backend's host code still run here: tests/kernels builds them as host C++ against the
#    SIMT emulator (retnet_kernel_tests), which is instrumented like the rest. The emulator's fibers tell
#    ASan about every stack switch (tests/simt/simt.cpp, __sanitizer_start/finish_switch_fiber).
#  * The flags are also exported as CFLAGS/CXXFLAGS while ctest runs, so the installed-package test
#    (tests/package/consumer_test.sh) builds examples/ against the sanitized libretnet with the same
#    runtime (an uninstrumented executable cannot load an ASan-linked library first).
#  * Left out, because they would only repeat under ASan what the normal run already does, at a cost
#    that breaks the CI budget (the rest of the suite takes a few minutes):
#      kernel_resources            runs nvcc/ptxas on kernels/; no code of ours executes.
#      add_subdirectory_consumer   compiles a second, separate copy of the library (5 min at -O0 with
#                                  these flags on 2 cores) to check CMake packaging; the installed-
#                                  package test below still runs the examples on the sanitized build.
#      label python                the Python package (tests/python/run.sh): pip would build an ASan-
#                                  instrumented extension, which an uninstrumented python cannot load;
#                                  the library code it calls is what the rest of this run covers.
#      label serve                 the openai-client test of `retnet serve` (tests/serve/run.sh): a pip
#                                  venv and timing-bound cases (read timeouts, a slow-loris client); the
#                                  server's scheduler, cache and parsing run here in the serve_* gtests.
#  The long-run test (label `long`) runs, over 10,000 instead of 100,000 tokens when built with ASan
#  (tests/long/long_run_test.cpp): the full length took 878 s here under ASan (vs ~1 min normally).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-asan}
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
export CFLAGS="$san -g"
export CXXFLAGS="$san -g"
export LDFLAGS="-fsanitize=address,undefined"
# detect_leaks: LeakSanitizer is part of the run. check_initialization_order / strict_init_order: static
# initialisers must not read other translation units' globals.
export ASAN_OPTIONS="detect_leaks=1:check_initialization_order=1:strict_init_order=1:abort_on_error=0:halt_on_error=1:exitcode=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=1"
jobs=$(nproc)
start=$(date +%s)
# shellcheck disable=SC2086
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DRETNET_CUDA=OFF ${RETNET_SANITIZE_CMAKE_ARGS:-} >/dev/null
cmake --build "$dir" -j "$jobs"
built=$(date +%s)
echo "sanitize: built in $((built - start)) s" >&2
# Sanitized code runs several times slower: the per-test timeout is raised accordingly.
ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 900 -E '^(kernel_resources|add_subdirectory_consumer)$' -LE 'python|serve'
echo "sanitize: whole suite passed under ASan+UBSan in $(($(date +%s) - built)) s (build $((built - start)) s)" >&2
