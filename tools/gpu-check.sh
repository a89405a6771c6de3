#!/usr/bin/env bash
# For whoever has a GPU: builds retnet with CUDA, runs the kernel and backend tests on the device (the
# Gpu* suites — kernels (GpuGemvQuant: q8_0/q4_0/q4_k GEMV, embed, widen), end-to-end fixtures,
# quantized models against the CPU (GpuCudaLoad), CUDA-graph decode against plain launches and the CPU,
# pinned weight upload; the Emu* suites run the same cases in the SIMT emulator), checks them with
# compute-sanitizer (memcheck, racecheck, synccheck), checks that --device auto picks the GPU, then
# benchmarks `retnet bench --device cuda` in fp16 on the 125m and 1.3b shapes, with CUDA graphs and
# without, and the quantized types (q8_0, q4_0, q4_k) on 125m. Prints the device first. Exit status: non-zero on the first failure.
#
#   tools/gpu-check.sh [build-dir]        (default build-gpu; RETNET_CUDA_ARCHITECTURES may be set,
#                                          e.g. RETNET_CUDA_ARCHITECTURES=90 for H100 only;
#                                          GPU_CHECK_QUICK=1 skips the 1.3b benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-gpu}
ARCHS=${RETNET_CUDA_ARCHITECTURES:-80;90}
JOBS=${JOBS:-$(nproc)}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export PATH="$CUDA_HOME/bin:$PATH"

say() { printf '\n== %s\n' "$*" >&2; }

say "device"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L; then
  echo "gpu-check: no NVIDIA GPU visible (nvidia-smi failed); nothing to check here" >&2
  exit 1
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader

say "build ($BUILD, archs $ARCHS)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRETNET_CUDA=ON \
  "-DRETNET_CUDA_ARCHITECTURES=$ARCHS" >/dev/null
ninja -C "$BUILD" -j "$JOBS"

TESTS="$BUILD/tests/retnet_kernel_tests"
CLI="$BUILD/retnet"

say "kernel resource limits (ptxas)"
ctest --test-dir "$BUILD" -R '^kernel_resources$' --output-on-failure

say "kernel and backend tests on the device (Gpu*) and in the emulator (Emu*, Simt*)"
# Nothing may be skipped here: a skipped Gpu* test means the device was not used.
out=$("$TESTS" --gtest_brief=1 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -E '^\[ measured \]|^\[==========\]|^\[  (PASSED|SKIPPED|FAILED)' || true
if echo "$out" | grep -q '^\[  SKIPPED \]'; then
  echo "gpu-check: tests were skipped although a GPU is present" >&2
  exit 1
fi
for t in GraphDecodeEqualsPlainDecodeBitForBit NewBatchSizeOrMovedBuffersAreRecapturedNotReplayedStale \
         BatchBeyondTheGemvIsCapturedWithCublas FailedCaptureFallsBackWithoutRunningTwice \
         DecodeAllocatesNothingOnTheDevice; do
  "$TESTS" --gtest_filter="GpuCudaGraph.$t" --gtest_brief=1 >/dev/null || { echo "gpu-check: GpuCudaGraph.$t failed" >&2; exit 1; }
done

say "library tests (device selection: auto must pick the GPU here)"
"$BUILD/tests/retnet_tests" --gtest_brief=1 --gtest_filter='DeviceSelection.*:BenchSmoke.*:CliBadInput.InfoPrintsModelSummary'
dev_line=$("$CLI" info -m tests/data/ts_swish_scaled | grep '^device')
echo "$dev_line" >&2
case "$dev_line" in
  *"cuda ("*) ;;
  *) echo "gpu-check: 'retnet info' (--device auto) did not pick the GPU" >&2; exit 1 ;;
esac

SANITIZER=$(command -v compute-sanitizer || echo "$CUDA_HOME/compute-sanitizer/compute-sanitizer")
if [ -x "$SANITIZER" ]; then
  # Kernel tests; the end-to-end backend tests are slow under the sanitizer and add no kernels, but
  # one graph test and one upload test run under each tool (graph launches, pinned copies, events).
  FILTER='Gpu*:-GpuCudaBackend*:GpuCudaGraph*:GpuCudaLoad*'
  E2E='GpuCudaGraph.NewBatchSizeOrMovedBuffersAreRecapturedNotReplayedStale:GpuCudaLoad.*'
  for tool in memcheck racecheck synccheck; do
    say "compute-sanitizer --tool $tool"
    "$SANITIZER" --tool "$tool" --error-exitcode 1 --print-limit 20 "$TESTS" --gtest_filter="$FILTER" --gtest_brief=1
    "$SANITIZER" --tool "$tool" --error-exitcode 1 --print-limit 20 "$TESTS" --gtest_filter="$E2E" --gtest_brief=1
  done
  say "compute-sanitizer --tool memcheck (backend end to end, leak check)"
  "$SANITIZER" --tool memcheck --leak-check full --error-exitcode 1 --print-limit 20 "$TESTS" \
    --gtest_filter='GpuCudaBackend.BatchedDecodeMatchesCpu:GpuCudaGraph.GraphDecodeEqualsPlainDecodeBitForBit' \
    --gtest_brief=1
else
  echo "gpu-check: compute-sanitizer not found; sanitizer runs skipped" >&2
fi

say "retnet bench --device cuda (fp16; CUDA graphs on, then RETNET_CUDA_GRAPH=0)"
"$CLI" bench --device cuda --shape 125m --dtype f16 -p 512 -n 128 -d 0,4096 -b 1,8 -r 5
RETNET_CUDA_GRAPH=0 "$CLI" bench --device cuda --shape 125m --dtype f16 -p 0 -n 128 -b 1 -r 5
say "retnet bench --device cuda, quantized weights (decode GEMV on blocks, prefill dequantized panels)"
for q in q8_0 q4_0 q4_k; do
  "$CLI" bench --device cuda --shape 125m --dtype "$q" -p 512 -n 128 -b 1,8 -r 5
done
if [ "${GPU_CHECK_QUICK:-0}" != 1 ]; then
  "$CLI" bench --device cuda --shape 1.3b --dtype f16 -p 512 -n 128 -d 0,4096 -b 1,8 -r 5
  RETNET_CUDA_GRAPH=0 "$CLI" bench --device cuda --shape 1.3b --dtype f16 -p 0 -n 128 -b 1 -r 5
fi
say "gpu-check: all checks passed"
