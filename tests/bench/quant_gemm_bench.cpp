// Prefill matmul throughput on block-quantized weights, one thread: the integer GEMM (quant_gemm.hpp)
// against dequantizing panels for sgemm (gemm_rows) and against the decode GEMV run on all rows.
// Built on demand only (cmake --build build --target quant_gemm_bench); not a test.
//
//   quant_gemm_bench [--T 512] [--rows 3072] [--in 768] [--rounds 5] [--panel 64]
//
// Times one product [T, in] × [rows, in]ᵀ per method per round, methods interleaved (the VM is
// shared), best round counts, CPU time of the thread; prints GFLOP/s (2·T·rows·in per product) and each method's ratio
// to dequant+sgemm. Also checks that the GEMM's output is bit-identical to the GEMV's.
#include <algorithm>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/kernels_cpu.hpp"
#include "backend/cpu/quant_gemm.hpp"

using namespace retnet;

namespace {

// This thread's CPU time: on a loaded VM that leaves out the time the thread waited for a core.
double now() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Random codes with fp16 scale 2^-7 (q4_k: d and dmin), as quant_gemv_bench makes them.
std::vector<uint8_t> random_weights(DType t, int64_t rows, int64_t in, std::mt19937& rng) {
  std::vector<uint8_t> b(size_t(dtype_row_bytes(t, in)) * size_t(rows));
  for (size_t i = 0; i + 4 <= b.size(); i += 4) {
    const uint32_t v = uint32_t(rng());
    std::memcpy(&b[i], &v, 4);
  }
  const uint16_t h = 0x2000;
  const size_t bs = t == DType::Q8_0 ? 34 : t == DType::Q4_0 ? 18 : 144;
  for (size_t i = 0; i + bs <= b.size(); i += bs) {
    std::memcpy(&b[i], &h, 2);
    if (t == DType::Q4_K) std::memcpy(&b[i + 2], &h, 2);
  }
  return b;
}

}  // namespace

extern "C" void openblas_set_num_threads(int);

int main(int argc, char** argv) {
  openblas_set_num_threads(1);  // one thread, as CpuBackend runs sgemm per panel
  int64_t T = 512, rows = 3072, in = 768, rounds = 5, panel = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const int64_t v = std::atoll(argv[i + 1]);
    if (k == "--T") T = v;
    else if (k == "--rows") rows = v;
    else if (k == "--in") in = v;
    else if (k == "--rounds") rounds = v;
    else if (k == "--panel") panel = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (in % 256 != 0 || T < 1 || rows < 1 || panel < 1) {
    std::fprintf(stderr, "--in must be a multiple of 256; T, rows, panel positive\n");
    return 2;
  }
  std::printf("T %lld, rows %lld, in %lld, 1 thread, path %s, best of %lld rounds\n", (long long)T, (long long)rows,
              (long long)in, cpu::quant_path_name(cpu::quant_path_default()), (long long)rounds);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  std::vector<float> x(size_t(T * in));
  for (float& v : x) v = nd(rng);
  std::vector<uint8_t> qbuf(cpu::quant_acts_bytes(T, in) + 64);
  uint8_t* qa_at = qbuf.data() + (64 - reinterpret_cast<uintptr_t>(qbuf.data()) % 64) % 64;
  std::vector<uint8_t> pbuf(cpu::quant_pack_bytes(panel, in) + 64);
  uint8_t* pk = pbuf.data() + (64 - reinterpret_cast<uintptr_t>(pbuf.data()) % 64) % 64;
  std::vector<float> y0(size_t(T * rows)), y1(y0.size()), y2(y0.size()), scratch;
  const double flop = 2.0 * double(T) * double(rows) * double(in);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K}) {
    const std::vector<uint8_t> wb = random_weights(t, rows, in, rng);
    const WeightRef w{wb.data(), t, rows, in};
    double best[3] = {1e30, 1e30, 1e30};
    for (int64_t round = 0; round < rounds; ++round) {
      double t0 = now();
      for (int64_t r = 0; r < rows; r += 256)
        cpu::gemm_rows(x.data(), T, in, w, r, std::min(rows, r + 256), y0.data() + r, rows, scratch);
      best[0] = std::min(best[0], now() - t0);
      t0 = now();
      cpu::QuantActs qa = cpu::quantize_acts(x.data(), T, in, qa_at);
      cpu::gemv_rows_quant(qa, w, 0, rows, y1.data(), rows);
      best[1] = std::min(best[1], now() - t0);
      t0 = now();
      qa = cpu::quantize_acts(x.data(), T, in, qa_at);
      for (int64_t r = 0; r < rows; r += panel) {
        const int64_t r1 = std::min(rows, r + panel);
        if (t == DType::Q8_0) cpu::gemm_q8_0(qa, wb.data(), r, r1, y2.data() + r, rows, pk);
        else if (t == DType::Q4_0) cpu::gemm_q4_0(qa, wb.data(), r, r1, y2.data() + r, rows, pk);
        else cpu::gemm_q4_k(qa, wb.data(), r, r1, y2.data() + r, rows, pk);
      }
      best[2] = std::min(best[2], now() - t0);
    }
    const bool same = std::memcmp(y1.data(), y2.data(), y1.size() * 4) == 0;
    double maxrel = 0, scale = 0;
    for (size_t i = 0; i < y0.size(); ++i) scale = std::max(scale, double(std::fabs(y0[i])));
    for (size_t i = 0; i < y0.size(); ++i) maxrel = std::max(maxrel, std::fabs(double(y2[i]) - y0[i]) / scale);
    std::printf(
        "%-5s dequant+sgemm %6.1f GFLOP/s | gemv %6.1f (%.2fx) | gemm %6.1f (%.2fx) | gemm==gemv bits %s, "
        "max |gemm - sgemm| / max|y| %.2g\n",
        dtype_name(t), flop / best[0] * 1e-9, flop / best[1] * 1e-9, best[0] / best[1], flop / best[2] * 1e-9,
        best[0] / best[2], same ? "yes" : "NO", maxrel);
  }
  return 0;
}
