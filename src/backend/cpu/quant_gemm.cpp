// Quantized prefill GEMM (quant_gemm.hpp): the cache blocking over activation rows and the run-time
// dispatch; the AVX-512 VNNI tile kernels live in quant_gemm_avx512.cpp, the other paths run the
// GEMV kernels (quant_gemv*.cpp), whose results the tile kernels reproduce bit for bit.
#include "backend/cpu/quant_gemm.hpp"

#include <algorithm>

#include "backend/cpu/quant_gemm_impl.hpp"

namespace retnet::cpu {

namespace {

void run(int type, qgemv::RowsFn scalar, const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y,
         int64_t ldy, QuantPath path) {
  if (r1 <= r0 || a.T <= 0) return;
  // An unsupported path runs the portable code rather than an instruction this CPU lacks.
  qgemv::RowsFn f = scalar;
  if (path == QuantPath::Avx512Vnni && quant_path_supported(path) && qgemm::kAvx512[type]) f = qgemm::kAvx512[type];
  else if (path != QuantPath::Scalar && quant_path_supported(QuantPath::Avx2)) f = qgemv::kAvx2[type];
  // Chunks of whole tiles whose codes fit kGemmChunkBytes: every weight row of [r0, r1) runs
  // against one chunk (from L1) before the next chunk is loaded.
  const int64_t row_bytes = a.nb * kQActBlock;
  const int64_t chunk = std::max<int64_t>(kGemmTileT, kGemmChunkBytes / row_bytes / kGemmTileT * kGemmTileT);
  const auto* wb = static_cast<const uint8_t*>(w);
  for (int64_t t0 = 0; t0 < a.T; t0 += chunk)
    f(quant_acts_rows(a, t0, std::min(chunk, a.T - t0)), wb, r0, r1, y + t0 * ldy, ldy);
}

}  // namespace

void gemm_q8_0(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy, QuantPath path) {
  run(0, qgemv::q8_0_scalar, a, w, r0, r1, y, ldy, path);
}
void gemm_q4_0(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy, QuantPath path) {
  run(1, qgemv::q4_0_scalar, a, w, r0, r1, y, ldy, path);
}
void gemm_q4_k(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy, QuantPath path) {
  run(2, qgemv::q4_k_scalar, a, w, r0, r1, y, ldy, path);
}

}  // namespace retnet::cpu
