// Facts about the machine, measured rather than assumed: what `retnet bench` computes rooflines from.
// Threads: every function here may be called from any thread and returns values the caller owns;
// the measurements load the machine, so measurements running at the same time skew each other.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "retnet/export.h"

namespace retnet {

// The most threads a model runs on (LoadOptions::threads); Model::load refuses more.
inline constexpr int kMaxThreads = 512;

struct MachineInfo {
  std::string cpu_name;  // from /proc/cpuinfo ("unknown" if unreadable)
  int hardware_threads = 1;
  std::string cpu_features;  // e.g. "avx2 fma f16c" as compiled in and supported
};
RETNET_API MachineInfo machine_info();

// For a caller about to allocate memory that grows with its input (e.g. `retnet bench -b`): throws
// Error "<what>: needs 1.50 GiB = 1610612736 bytes of memory, but only 1.00 GiB = 1073741824 bytes is
// available (MemAvailable in /proc/meminfo)" when `bytes` is more than the host memory available to
// this process without swapping: MemAvailable, lowered to the headroom under the cgroup v2
// memory.max when that is lower. The same figure as Model::load's memory check. Does nothing when
// neither can be read (not Linux).
RETNET_API void check_host_memory(uint64_t bytes, const std::string& what);

// Read bandwidth in bytes/s of `threads` threads streaming disjoint parts of a buffer of `bytes`
// with 256-bit loads (the access pattern of decode GEMVs). Best of `reps` passes.
RETNET_API double measure_read_bandwidth(int threads, size_t bytes = size_t(1) << 30, int reps = 5);

// fp32 GEMM rate in FLOP/s with `threads` threads, each running single-threaded sgemm on its
// share of the columns of an n×n×n product (how the CPU backend runs prefill). Best of `reps`.
RETNET_API double measure_sgemm_flops(int threads, int n = 1536, int reps = 3);
// The same for the opt-in bf16-activation GEMM (LoadOptions::bf16_activations: bf16 x bf16 products,
// fp32 sums, AVX512-BF16); 0 when this CPU lacks AVX512-BF16.
RETNET_API double measure_bf16_gemm_flops(int threads, int n = 1536, int reps = 3);

// The CUDA device that Device::Cuda — and Device::Auto, when present — runs on: its name, or ""
// when this build has no CUDA support or no device is present.
RETNET_API std::string cuda_device_name();
// Device-memory bandwidth in bytes/s of the CUDA device: a device-to-device copy of `bytes`, counting
// the bytes read and those written, best of `reps`. 0 without a CUDA device.
RETNET_API double measure_cuda_bandwidth(size_t bytes = size_t(1) << 30, int reps = 5);
// fp32 GEMM rate in FLOP/s of the CUDA device for an n×n×n product (cuBLAS without TF32: what CUDA
// prefill runs), best of `reps`. 0 without a CUDA device.
RETNET_API double measure_cuda_sgemm_flops(int n = 4096, int reps = 3);

}  // namespace retnet
