// Quantized prefill GEMM (quant_gemm.hpp): the panel packing, the portable kernel (the definition of
// the results, which the AVX2 and AVX-512 kernels reproduce bit for bit), the cache blocking and the
// run-time dispatch.
#include "backend/cpu/quant_gemm.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/quant_gemm_impl.hpp"
#include "backend/cpu/quant_gemv_impl.hpp"
#include "backend/cpu/weights_cpu.hpp"  // RETNET_AVX2
#include "common/dtype.hpp"

namespace retnet::cpu {

namespace qgemm {

void pack_panel(int type, const uint8_t* w, int64_t r0, int64_t r1, int64_t nb, uint8_t* out) {
  const size_t rb = type == kQ8_0   ? q8_0_row_bytes(nb * 32)
                    : type == kQ4_0 ? q4_0_row_bytes(nb * 32)
                                    : q4_k_row_bytes(nb * 32);
  const int64_t groups = (r1 - r0 + kLanes - 1) / kLanes;
  for (int64_t g = 0; g < groups; ++g)
    for (int lane = 0; lane < kLanes; ++lane) {
      const int64_t r = r0 + g * kLanes + lane;
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* pb = out + size_t(g * nb + b) * kPackBlock;
        uint8_t u[32] = {};
        float scale = 0.f, mn = 0.f;
        if (r < r1) {
          const uint8_t* row = w + size_t(r) * rb;
          if (type == kQ8_0) {
            const uint8_t* blk = row + size_t(b) * sizeof(BlockQ8_0);
            scale = f16_to_f32(qgemv::load_u16(blk));
            for (int i = 0; i < 32; ++i) u[i] = uint8_t(blk[2 + i] ^ 0x80);  // w + 128
          } else if (type == kQ4_0) {
            const uint8_t* blk = row + size_t(b) * sizeof(BlockQ4_0);
            scale = f16_to_f32(qgemv::load_u16(blk));
            for (int i = 0; i < 32; ++i) u[i] = uint8_t(i < 16 ? blk[2 + i] & 15 : blk[2 + i - 16] >> 4);
          } else {
            const uint8_t* blk = row + size_t(b / 8) * sizeof(BlockQ4K);
            const int s = int(b % 8);
            uint64_t sc8, m8;
            qgemv::q4k_scales_mins(blk + 4, sc8, m8);
            // Both products are exact in fp32 (11-bit significands times 6-bit integers).
            scale = f16_to_f32(qgemv::load_u16(blk)) * float((sc8 >> (8 * s)) & 0xFF);
            mn = f16_to_f32(qgemv::load_u16(blk + 2)) * float((m8 >> (8 * s)) & 0xFF);
            const uint8_t* q = blk + 16 + 32 * (s / 2);
            for (int i = 0; i < 32; ++i) u[i] = uint8_t((q[i] >> (4 * (s & 1))) & 15);
          }
        }
        for (int k = 0; k < 8; ++k) std::memcpy(pb + (k * kLanes + lane) * 4, u + 4 * k, 4);
        std::memcpy(pb + kPackScale + lane * 4, &scale, 4);
        std::memcpy(pb + kPackMin + lane * 4, &mn, 4);
      }
    }
}

void group_scalar(int type, const uint8_t* g, const QuantActs& a, float* y, int64_t ldy, int lanes) {
  const int64_t nb = a.nb;
  const int32_t im = init_mul(type);
  for (int64_t t = 0; t < a.T; ++t)
    for (int lane = 0; lane < lanes; ++lane) {
      float acc = 0.f, accm = 0.f;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* pb = g + size_t(b) * kPackBlock;
        const int64_t x = t * nb + b;
        const int8_t* q = a.q + x * 32;
        int32_t L = im * a.o[x];
        for (int k = 0; k < 8; ++k)
          for (int j = 0; j < 4; ++j) L += int32_t(pb[(k * kLanes + lane) * 4 + j]) * q[4 * k + j];
        float sw, mn;
        std::memcpy(&sw, pb + kPackScale + lane * 4, 4);
        std::memcpy(&mn, pb + kPackMin + lane * 4, 4);
        acc = std::fma(float(L), sw * a.d[x], acc);
        if (type == kQ4K) accm = std::fma(mn, a.s[x], accm);
      }
      y[t * ldy + lane] = type == kQ4K ? acc - accm : acc;
    }
}

#ifndef RETNET_AVX2
const GroupFn kGroupAvx2 = nullptr;
#endif

}  // namespace qgemm

size_t quant_pack_bytes(int64_t rows, int64_t in) {
  return size_t((rows + qgemm::kLanes - 1) / qgemm::kLanes) * size_t(in / kQActBlock) * qgemm::kPackBlock;
}

namespace {

void run(int type, const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy, void* pack,
         QuantPath path) {
  if (r1 <= r0 || a.T <= 0) return;
  // An unsupported path runs the portable code rather than an instruction this CPU lacks.
  qgemm::GroupFn f = qgemm::group_scalar;
  if (path == QuantPath::Avx512Vnni && quant_path_supported(path) && qgemm::kGroupAvx512) f = qgemm::kGroupAvx512;
  else if (path != QuantPath::Scalar && quant_path_supported(QuantPath::Avx2) && qgemm::kGroupAvx2)
    f = qgemm::kGroupAvx2;
  const int64_t nb = a.nb;
  auto* pk = static_cast<uint8_t*>(pack);
  qgemm::pack_panel(type, static_cast<const uint8_t*>(w), r0, r1, nb, pk);
  // Chunks of activation rows whose codes fit kGemmChunkBytes, each against every group.
  const int64_t chunk = std::max<int64_t>(8, kGemmChunkBytes / (nb * kQActBlock) / 8 * 8);
  const int64_t rows = r1 - r0, groups = (rows + qgemm::kLanes - 1) / qgemm::kLanes;
  for (int64_t t0 = 0; t0 < a.T; t0 += chunk) {
    // The chunk as a view of the same buffer: rows [t0, t0 + n).
    QuantActs c = a;
    c.T = std::min(chunk, a.T - t0);
    c.q = a.q + t0 * nb * kQActBlock, c.d = a.d + t0 * nb, c.s = a.s + t0 * nb, c.o = a.o + t0 * nb;
    for (int64_t g = 0; g < groups; ++g)
      f(type, pk + size_t(g * nb) * qgemm::kPackBlock, c, y + t0 * ldy + g * qgemm::kLanes, ldy,
        int(std::min<int64_t>(qgemm::kLanes, rows - g * qgemm::kLanes)));
  }
}

}  // namespace

void gemm_q8_0(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy, void* pack,
               QuantPath path) {
  run(qgemm::kQ8_0, a, w, r0, r1, y, ldy, pack, path);
}
void gemm_q4_0(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy, void* pack,
               QuantPath path) {
  run(qgemm::kQ4_0, a, w, r0, r1, y, ldy, pack, path);
}
void gemm_q4_k(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy, void* pack,
               QuantPath path) {
  run(qgemm::kQ4K, a, w, r0, r1, y, ldy, pack, path);
}

}  // namespace retnet::cpu
