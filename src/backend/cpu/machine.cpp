#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "backend/cpu/kernels_cpu.hpp"
#include "backend/cpu/thread_pool.hpp"
#include "retnet/error.hpp"
#include "retnet/system.hpp"

extern "C" void openblas_set_num_threads(int);

namespace retnet {

MachineInfo machine_info() {
  MachineInfo mi;
  mi.hardware_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  mi.cpu_name = "unknown";
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) mi.cpu_name = line.substr(p + 2);
      break;
    }
  }
#if defined(__AVX2__)
  mi.cpu_features += "avx2 ";
#endif
#if defined(__FMA__)
  mi.cpu_features += "fma ";
#endif
#if defined(__F16C__)
  mi.cpu_features += "f16c ";
#endif
#if defined(__AVX512F__)
  mi.cpu_features += "avx512f ";
#endif
  // Not compiled in: detected at run time for the opt-in bf16-activation GEMM.
  if (cpu::bf16_gemm_supported()) mi.cpu_features += "avx512_bf16(run-time) ";
  if (!mi.cpu_features.empty()) mi.cpu_features.pop_back();
  return mi;
}

namespace {
using clk = std::chrono::steady_clock;

float sum_block(const float* p, size_t n) {
#if defined(__AVX2__)
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  float out[8];
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float s = 0;
  for (float v : out) s += v;
  for (; i < n; ++i) s += p[i];
  return s;
#else
  float s = 0;
  for (size_t i = 0; i < n; ++i) s += p[i];
  return s;
#endif
}
}  // namespace

double measure_read_bandwidth(int threads, size_t bytes, int reps) {
  if (threads < 1) throw Error("measure_read_bandwidth: threads must be >= 1");
  const size_t n = std::max<size_t>(bytes / 4, 1024) & ~size_t(31);
  float* buf = static_cast<float*>(std::aligned_alloc(64, n * 4));
  if (!buf) throw Error("measure_read_bandwidth: cannot allocate " + std::to_string(n * 4) + " bytes");
  std::unique_ptr<float, decltype(&std::free)> guard(buf, &std::free);
  ThreadPool pool(threads);
  // First touch from the threads that will read (page placement), with non-zero data.
  pool.parallel_for(threads, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      const size_t s = n * size_t(t) / size_t(threads), en = n * size_t(t + 1) / size_t(threads);
      for (size_t i = s; i < en; ++i) buf[i] = 1.0f;
    }
  });
  double best = 0;
  std::vector<float> sink(static_cast<size_t>(threads), 0.0f);
  for (int r = 0; r < std::max(1, reps); ++r) {
    const auto t0 = clk::now();
    pool.parallel_for(threads, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        const size_t s = (n * size_t(t) / size_t(threads)) & ~size_t(31);
        const size_t en = t + 1 == threads ? n : (n * size_t(t + 1) / size_t(threads)) & ~size_t(31);
        sink[size_t(t)] += sum_block(buf + s, en - s);
      }
    });
    const double sec = std::chrono::duration<double>(clk::now() - t0).count();
    best = std::max(best, double(n) * 4.0 / sec);
  }
  volatile float keep = sink[0];
  (void)keep;
  return best;
}

double measure_sgemm_flops(int threads, int n, int reps) {
  if (threads < 1 || n < 16) throw Error("measure_sgemm_flops: bad arguments");
  openblas_set_num_threads(1);
  std::vector<float> a(size_t(n) * size_t(n), 0.5f), b(size_t(n) * size_t(n), 0.25f), c(size_t(n) * size_t(n));
  ThreadPool pool(threads);
  double best = 0;
  for (int r = 0; r < std::max(1, reps) + 1; ++r) {  // +1: the first pass warms up caches and threads
    const auto t0 = clk::now();
    // C[n, cols] = A[n, n] · B[cols, n]ᵀ per thread's column block, as CpuBackend::matmul does.
    pool.parallel_for(threads, [&](int64_t tb, int64_t te, int) {
      for (int64_t t = tb; t < te; ++t) {
        const int c0 = int(int64_t(n) * t / threads), c1 = int(int64_t(n) * (t + 1) / threads);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, c1 - c0, n, 1.0f, a.data(), n,
                    b.data() + size_t(c0) * size_t(n), n, 0.0f, c.data() + c0, n);
      }
    });
    const double sec = std::chrono::duration<double>(clk::now() - t0).count();
    if (r > 0) best = std::max(best, 2.0 * double(n) * double(n) * double(n) / sec);
  }
  return best;
}

double measure_bf16_gemm_flops(int threads, int n, int reps) {
  if (threads < 1 || n < 16) throw Error("measure_bf16_gemm_flops: bad arguments");
  if (!cpu::bf16_gemm_supported()) return 0;
  // The kernel LoadOptions::bf16_activations runs: x [n, n] rounded once, each thread packing and
  // multiplying its block of the n weight rows, as CpuBackend::matmul hands them out.
  std::vector<float> x(size_t(n) * size_t(n), 0.5f), y(size_t(n) * size_t(n));
  std::vector<uint16_t> w(size_t(n) * size_t(n), 0x3E80);  // bf16 0.25
  std::vector<uint32_t> xb(size_t(n) * size_t((n + 1) / 2));
  cpu::round_rows_bf16(x.data(), n, n, xb.data());
  const WeightRef wr{w.data(), DType::BF16, n, n};
  std::vector<std::vector<uint32_t>> pack(static_cast<size_t>(threads));
  ThreadPool pool(threads);
  double best = 0;
  for (int r = 0; r < std::max(1, reps) + 1; ++r) {  // +1: warm-up
    const auto t0 = clk::now();
    pool.parallel_for(threads, [&](int64_t tb, int64_t te, int tid) {
      for (int64_t t = tb; t < te; ++t) {
        const int64_t r0 = int64_t(n) * t / threads, r1 = int64_t(n) * (t + 1) / threads;
        cpu::gemm_bf16_rows(xb.data(), n, n, wr, r0, r1, y.data() + r0, n, pack[size_t(tid)]);
      }
    });
    const double sec = std::chrono::duration<double>(clk::now() - t0).count();
    if (r > 0) best = std::max(best, 2.0 * double(n) * double(n) * double(n) / sec);
  }
  return best;
}

}  // namespace retnet
