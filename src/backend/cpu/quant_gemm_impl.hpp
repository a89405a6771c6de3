// Internals of the quantized prefill GEMM (quant_gemm.hpp): the packed panel layout and each path's
// group kernel.
#pragma once
#include <cstddef>
#include <cstdint>

#include "backend/cpu/quant_gemm.hpp"

namespace retnet::cpu::qgemm {

// Weight rows per packed group (the lanes of a zmm register of int32).
inline constexpr int kLanes = 16;
// One packed block of a group: codes [8 quads][16 rows][4 bytes] (512 bytes, quad k = the block's
// values 4k..4k+3), then the 16 rows' fp32 scales, then their fp32 mins (q4_k; zero otherwise).
inline constexpr size_t kPackCodes = 512, kPackScale = 512, kPackMin = 576, kPackBlock = 640;

enum Type : int { kQ8_0 = 0, kQ4_0 = 1, kQ4K = 2 };
// What the int32 block sum starts at, in units of the activation block's o = −8·Σq: −bias·Σq.
constexpr int32_t init_mul(int type) { return type == kQ8_0 ? 16 : type == kQ4_0 ? 1 : 0; }

// Packs weight rows [r0, r1) (nb blocks of 32 per row) into groups of kLanes rows at out; the rows
// past r1 of the last group get zero codes, scales and mins.
void pack_panel(int type, const uint8_t* w, int64_t r0, int64_t r1, int64_t nb, uint8_t* out);

// One group (nb packed blocks at g) against activation rows [0, a.T): y[t·ldy + lane] for the
// group's first `lanes` rows.
using GroupFn = void (*)(int type, const uint8_t* g, const QuantActs& a, float* y, int64_t ldy, int lanes);

void group_scalar(int type, const uint8_t* g, const QuantActs& a, float* y, int64_t ldy, int lanes);
// AVX2 (quant_gemm_avx2.cpp) when the build has RETNET_AVX2, else null.
extern const GroupFn kGroupAvx2;
// AVX-512 VNNI (quant_gemm_avx512.cpp) where the compiler can target it, else null.
extern const GroupFn kGroupAvx512;

}  // namespace retnet::cpu::qgemm
