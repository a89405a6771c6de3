// Facts about the machine, measured rather than assumed: what `retnet bench` computes rooflines from.
#pragma once
#include <cstddef>
#include <string>

namespace retnet {

struct MachineInfo {
  std::string cpu_name;  // from /proc/cpuinfo ("unknown" if unreadable)
  int hardware_threads = 1;
  std::string cpu_features;  // e.g. "avx2 fma f16c" as compiled in and supported
};
MachineInfo machine_info();

// Read bandwidth in bytes/s of `threads` threads streaming disjoint parts of a buffer of `bytes`
// with 256-bit loads (the access pattern of decode GEMVs). Best of `reps` passes.
double measure_read_bandwidth(int threads, size_t bytes = size_t(1) << 30, int reps = 5);

// fp32 GEMM rate in FLOP/s with `threads` threads, each running single-threaded sgemm on its
// share of the columns of an n×n×n product (how the CPU backend runs prefill). Best of `reps`.
double measure_sgemm_flops(int threads, int n = 1536, int reps = 3);

}  // namespace retnet
