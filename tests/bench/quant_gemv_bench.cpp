// Decode GEMV throughput of the quantized kernels (quant_gemv.hpp) against bf16 (gemv_rows) and a
// plain read of the same bytes, on the matrices of one decode step of a random-weight shape. Built
// on demand only (cmake --build build --target quant_gemv_bench); not a test.
//
//   quant_gemv_bench [--shape 125m|1.3b] [--threads N] [--T N] [--rounds N] [--layers N] [--wall]
//
// (--layers 1 of 125m keeps the weights in the last-level cache: the kernels' compute speed.)
// The matrices are those of `retnet bench --shape` (torchscale random model: value and FFN widths
// 2·D): per layer q|k|v|g fused [6D, D], FFN gate|up fused [4D, D], out [D, 2D], down [D, 2D]; enough
// layers that the weights are well beyond the last-level cache (125m: all 12; 1.3b: 4 of 24). Work
// is split as CpuBackend::matmul splits it: panels of ~192 KiB of weights handed out from a shared
// counter to the pool's threads; the activations are quantized once per matmul, timed too. Each
// round times one pass over every matrix per kind, kinds interleaved; the best round counts (the VM
// is shared). Output: per kind, GB/s of its weight bytes, that as % of the plain read rate of the
// same bytes, and "tokens/s" of the pass relative to bf16.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <immintrin.h>
#include <random>
#include <string>
#include <ctime>
#include <vector>

#include "backend/cpu/kernels_cpu.hpp"
#include "backend/cpu/quant_gemv.hpp"
#include "backend/cpu/thread_pool.hpp"

using namespace retnet;

namespace {

struct Mat {
  int64_t rows, in;
};

enum Kind { kBf16, kQ8_0, kQ4_0, kQ4K, kKinds };
const char* kKindName[kKinds] = {"bf16", "q8_0", "q4_0", "q4_k"};

size_t row_bytes(Kind k, int64_t in) {
  switch (k) {
    case kBf16:
      return size_t(in) * 2;
    case kQ8_0:
      return cpu::q8_0_row_bytes(in);
    case kQ4_0:
      return cpu::q4_0_row_bytes(in);
    case kQ4K:
      return cpu::q4_k_row_bytes(in);
    default:
      return 0;
  }
}

// Random bytes with sane fp16 scales where the blocks keep them (a NaN scale would not be slower,
// but keeps the figures honest).
std::vector<uint8_t> random_weights(Kind k, const Mat& m, std::mt19937& rng) {
  std::vector<uint8_t> b(row_bytes(k, m.in) * size_t(m.rows));
  for (size_t i = 0; i + 4 <= b.size(); i += 4) {
    const uint32_t v = uint32_t(rng());
    std::memcpy(&b[i], &v, 4);
  }
  const uint16_t h = 0x2000;  // fp16 2^-7
  const size_t bs = k == kQ8_0 ? 34 : k == kQ4_0 ? 18 : k == kQ4K ? 144 : 0;
  if (k == kBf16)
    for (size_t i = 0; i + 2 <= b.size(); i += 2) b[i + 1] = uint8_t(0x3c | (b[i + 1] & 0x80));  // |w| ~ 2^-7
  if (bs)
    for (size_t i = 0; i + bs <= b.size(); i += bs) {
      std::memcpy(&b[i], &h, 2);
      if (k == kQ4K) std::memcpy(&b[i + 2], &h, 2);
    }
  return b;
}

// Wall time, or with one thread (which the pool runs inline) this thread's CPU time: on a loaded VM
// that leaves out the time the thread waited for a core (--wall times the wall clock anyway).
bool g_cpu_clock = false;
double now() {
  if (g_cpu_clock) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Sums the bytes of rows [r0, r1) with 256-bit loads: the rate at which one thread streams them.
__attribute__((target("avx2"))) uint64_t read_rows(const uint8_t* w, size_t rb, int64_t r0, int64_t r1) {
  __m256i acc = _mm256_setzero_si256();
  const uint8_t* p = w + size_t(r0) * rb;
  const size_t n = size_t(r1 - r0) * rb;
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32));
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64));
    const __m256i d = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96));
    acc = _mm256_add_epi64(acc, _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d)));
  }
  uint64_t s[4];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(s), acc);
  for (; i < n; ++i) s[0] += p[i];
  return s[0] + s[1] + s[2] + s[3];
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape = "125m";
  int threads = 1, rounds = 7;
  bool wall = false;
  int64_t T = 1, layers = 0;
  for (int i = 1; i < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--wall") {
      wall = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) a.clear();
    if (a == "--shape") shape = argv[i + 1];
    else if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--T") T = std::atoll(argv[i + 1]);
    else if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    else if (a == "--layers") layers = std::atoll(argv[i + 1]);
    else {
      std::fprintf(
          stderr,
          "usage: quant_gemv_bench [--shape 125m|1.3b] [--threads N] [--T N] [--rounds N] [--layers N] [--wall]\n");
      return 2;
    }
  }
  if (shape != "125m" && shape != "1.3b") {
    std::fprintf(stderr, "error: --shape: 125m or 1.3b\n");
    return 2;
  }
  const int64_t D = shape == "125m" ? 768 : 2048;
  if (layers <= 0) layers = shape == "125m" ? 12 : 4;
  std::vector<Mat> mats;
  for (int64_t l = 0; l < layers; ++l) {
    mats.push_back({6 * D, D});  // q|k|v|g
    mats.push_back({D, 2 * D});  // out
    mats.push_back({4 * D, D});  // FFN gate|up
    mats.push_back({D, 2 * D});  // down
  }
  std::mt19937 rng(1);
  std::vector<std::vector<uint8_t>> w[kKinds];
  size_t bytes[kKinds] = {};
  for (int k = 0; k < kKinds; ++k)
    for (const Mat& m : mats) {
      w[k].push_back(random_weights(Kind(k), m, rng));
      bytes[k] += w[k].back().size();
    }
  std::vector<float> x(size_t(T * 2 * D)), y(size_t(T * 6 * D));
  std::normal_distribution<float> nd(0.f, 1.f);
  for (float& v : x) v = nd(rng);
  // On a cache line, as the header advises (a 16-byte-aligned buffer costs ~5–10% in split loads).
  std::vector<uint8_t> qbuf_store(cpu::quant_acts_bytes(T, 2 * D) + 64);
  uint8_t* const qbuf = qbuf_store.data() + (64 - reinterpret_cast<uintptr_t>(qbuf_store.data()) % 64) % 64;

  g_cpu_clock = threads == 1 && !wall;
  ThreadPool pool(threads);
  std::vector<std::vector<float>> scratch(static_cast<size_t>(threads));
  std::atomic<uint64_t> sink{0};
  constexpr int64_t kPanelBytes = 192 << 10;  // CpuBackend::matmul's kGemvPanelBytes

  // One pass over every matrix: kind k, or a plain read of kind k's bytes when read is set.
  auto pass = [&](int k, bool read) {
    for (size_t j = 0; j < mats.size(); ++j) {
      const Mat& m = mats[j];
      const uint8_t* wb = w[k][j].data();
      const size_t rb = row_bytes(Kind(k), m.in);
      cpu::QuantActs qa;
      if (k != kBf16 && !read) qa = cpu::quantize_acts(x.data(), T, m.in, qbuf);
      const int64_t panel = std::max<int64_t>(16, int64_t(kPanelBytes / int64_t(rb)) / 16 * 16);
      const int64_t n_panels = (m.rows + panel - 1) / panel;
      std::atomic<int64_t> next{0};
      pool.parallel_for(std::min<int64_t>(n_panels, threads), [&](int64_t, int64_t, int tid) {
        for (int64_t p = next.fetch_add(1); p < n_panels; p = next.fetch_add(1)) {
          const int64_t r0 = p * panel, r1 = std::min(m.rows, r0 + panel);
          float* yp = y.data() + r0;
          if (read) {
            sink += read_rows(wb, rb, r0, r1);
          } else if (k == kBf16) {
            const WeightRef wr{wb, DType::BF16, m.rows, m.in};
            cpu::gemv_rows(x.data(), T, m.in, wr, r0, r1, yp, m.rows, scratch[size_t(tid)]);
          } else if (k == kQ8_0) {
            cpu::gemv_q8_0(qa, wb, r0, r1, yp, m.rows);
          } else if (k == kQ4_0) {
            cpu::gemv_q4_0(qa, wb, r0, r1, yp, m.rows);
          } else {
            cpu::gemv_q4_k(qa, wb, r0, r1, yp, m.rows);
          }
        }
      });
    }
  };
  double best[kKinds][2];
  for (auto& b : best) b[0] = b[1] = 1e30;
  for (int r = 0; r < rounds + 1; ++r)  // round 0 warms up
    for (int k = 0; k < kKinds; ++k)
      for (int read = 0; read < 2; ++read) {
        const double t0 = now();
        pass(k, read != 0);
        const double dt = now() - t0;
        if (r > 0) best[k][read] = std::min(best[k][read], dt);
      }
  std::printf("shape %s (%lld layers' matrices), %d thread(s), T = %lld, path %s, best of %d rounds, %s\n",
              shape.c_str(), (long long)layers, threads, (long long)T, cpu::quant_path_name(cpu::quant_path_default()),
              rounds, g_cpu_clock ? "thread CPU time" : "wall time");
  std::printf("%-5s %9s %10s %10s %8s %12s %10s\n", "type", "MB", "GEMV GB/s", "read GB/s", "of read", "passes/s",
              "vs bf16");
  for (int k = 0; k < kKinds; ++k) {
    const double gb = double(bytes[k]) / 1e9;
    std::printf("%-5s %9.1f %10.1f %10.1f %7.0f%% %12.1f %9.2fx\n", kKindName[k], double(bytes[k]) / 1e6,
                gb / best[k][0], gb / best[k][1], 100 * best[k][1] / best[k][0], 1 / best[k][0],
                best[kBf16][0] / best[k][0]);
  }
  return sink.load() == 42 ? 1 : 0;
}
