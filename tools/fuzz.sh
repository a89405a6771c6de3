#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -DRETNET_FUZZ=ON: everything instrumented with coverage,
# ASan and UBSan) into their own build directory and runs each target for SECONDS (default 60) on a
# scratch copy of its seed corpus, as many targets at once as there are cores. Fails if any target
# finds a crash, a sanitizer report, a leak, a timeout (> 10 s on one input) or runs out of memory
# (> 2 GB), and prints the reproducer's path and the command that replays it.
#   bash tools/fuzz.sh [SECONDS] [TARGET...]      (build dir: $RETNET_FUZZ_BUILD_DIR, default build-fuzz)
# New inputs the fuzzer finds stay in the scratch copy (printed at the end) and never touch
# tests/fuzz/corpus: adding a regression input is a deliberate step (see tests/fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(safetensors config tokenizer_load tokenizer_roundtrip state_snapshot cli_args state_blob chat_template)
dir=${RETNET_FUZZ_BUILD_DIR:-build-fuzz}
command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (bash tools/install-deps.sh)" >&2; exit 1; }

# Static libretnet (one instrumented image per target), no CUDA (nvcc would need a clang host
# compiler setup of its own, and device code is not instrumented anyway).
CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRETNET_FUZZ=ON \
  -DRETNET_CUDA=OFF -DRETNET_SHARED=OFF >/dev/null
cmake --build "$dir" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

work=$(mktemp -d "${TMPDIR:-/tmp}/retnet-fuzz.XXXXXX")
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
if command -v llvm-symbolizer >/dev/null; then export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer); fi

run_one() {
  local t=$1
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  cp -r "tests/fuzz/corpus/$t/." "$work/$t/corpus/"
  # -timeout: one input taking > 10 s is a hang; -rss_limit_mb/-malloc_limit_mb: a hostile input must
  # not make the library allocate gigabytes.
  local dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  "$dir/tests/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
    "${dict[@]}" -print_final_stats=1 -artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus" >"$work/$t/log" 2>&1
  echo $? >"$work/$t/rc"
}

status=0
running=0
for t in "${targets[@]}"; do
  if ((running >= $(nproc))); then
    wait -n
    running=$((running - 1))
  fi
  (set +e; run_one "$t") &
  running=$((running + 1))
done
wait
for t in "${targets[@]}"; do
  if [ "$(cat "$work/$t/rc" 2>/dev/null)" = 0 ]; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t/log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$work/$t/log" | tail -1 || true)
    echo "fuzz: $t: ok, $runs executions in ${secs} s ($cov)"
  else
    status=1
    echo "fuzz: $t: FAILED; log: $work/$t/log" >&2
    grep -E 'ERROR|SUMMARY|invariant failed|runtime error|Test unit written' "$work/$t/log" | head -20 >&2 || tail -5 "$work/$t/log" >&2
    for a in "$work/$t/artifacts"/*; do
      [ -e "$a" ] || continue
      echo "fuzz: $t: reproducer $a" >&2
      echo "      replay: $dir/tests/fuzz_$t $a   (or build/tests/fuzz_replay_$t $a)" >&2
    done
  fi
done
echo "fuzz: scratch corpora and logs in $work" >&2
exit $status
