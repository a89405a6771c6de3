// Opt-in prefill GEMM for BF16 weights with bf16-rounded activations (LoadOptions::bf16_activations),
// on CPUs with AVX512-BF16: vdpbf16ps multiplies 32 bf16 pairs per instruction, twice the fp32 FMA
// rate, which is how PyTorch bf16 (oneDNN) runs prefill. Products and sums stay fp32; only x is
// rounded (once per matmul, round-to-nearest-even like torch's .to(bfloat16)).
//
// The rest of the build targets AVX2; only the functions below carry AVX-512 target attributes, and
// they are called only when bf16_gemm_supported() says the CPU (and OS) has AVX512-BF16.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backend/cpu/kernels_cpu.hpp"
#include "retnet/error.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#define RETNET_BF16_KERNEL 1
#define RETNET_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#endif

namespace retnet::cpu {

bool bf16_gemm_supported() {
#ifdef RETNET_BF16_KERNEL
  // libgcc sets the AVX-512 bits only when XCR0 shows the OS saves the zmm/opmask state.
  // RETNET_NO_AVX512BF16=1 pretends the CPU lacks it, so the fallback (option ignored, exact
  // products) is tested on machines that have it too (ctest bf16_activations_without_avx512bf16).
  static const bool ok = [] {
    const char* off = std::getenv("RETNET_NO_AVX512BF16");
    if (off && *off && std::strcmp(off, "0") != 0) return false;
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
  }();
  return ok;
#else
  return false;
#endif
}

#ifdef RETNET_BF16_KERNEL
namespace {

// Microkernel tile: MR activation rows x 32 weight rows (two zmm of 16 fp32 sums per activation row,
// 16 accumulators at MR = 8, plus 2 weight vectors and a broadcast: 19 of 32 zmm). Each K-pair step
// is 2 weight loads + MR broadcasts for 2·MR vdpbf16ps, so the loads never limit it.
constexpr int kMR = 8;
constexpr int kNR = 32;
// K-block, in pairs: the 32-row weight tile of one block (32 x 128 pairs x 4 B = 16 KiB) and the
// activation tile (8 x 128 x 4 B = 4 KiB) stay in the 32 KiB L1; the block of the whole panel
// (256 rows: 128 KiB) stays in L2 while every activation tile passes over it.
constexpr int64_t kKcPairs = 128;

// c[i] += x pairs of row i (xp + i·ldx, kcp pairs) · packed weights wp [kcp][32]; then y[i, 0..32)
// (masks m0/m1 for the columns of a partial last tile) = c, or += c when acc (a later K-block).
template <int MR>
RETNET_AVX512BF16 void micro(const uint32_t* xp, int64_t ldx, const uint32_t* wp, int64_t kcp, float* y,
                             int64_t ldy, __mmask16 m0, __mmask16 m1, bool acc) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kcp; ++p) {
    const __m512bh w0 = (__m512bh)_mm512_loadu_si512(wp + p * kNR);
    const __m512bh w1 = (__m512bh)_mm512_loadu_si512(wp + p * kNR + 16);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512bh xi = (__m512bh)_mm512_set1_epi32(int(xp[i * ldx + p]));
      c0[i] = _mm512_dpbf16_ps(c0[i], xi, w0);
      c1[i] = _mm512_dpbf16_ps(c1[i], xi, w1);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    float* yi = y + i * ldy;
    if (acc) {
      c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, yi));
      c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, yi + 16));
    }
    _mm512_mask_storeu_ps(yi, m0, c0[i]);
    _mm512_mask_storeu_ps(yi + 16, m1, c1[i]);
  }
}

using MicroFn = void (*)(const uint32_t*, int64_t, const uint32_t*, int64_t, float*, int64_t, __mmask16, __mmask16,
                         bool);
constexpr MicroFn kMicro[kMR + 1] = {nullptr,  micro<1>, micro<2>, micro<3>, micro<4>,
                                     micro<5>, micro<6>, micro<7>, micro<8>};

RETNET_AVX512BF16 void round_rows_avx512(const float* x, int64_t T, int64_t in, uint32_t* xb) {
  const int64_t kp = (in + 1) / 2;
  for (int64_t t = 0; t < T; ++t) {
    const float* xr = x + t * in;
    uint16_t* out = reinterpret_cast<uint16_t*>(xb + t * kp);  // written through vector stores only
    for (int64_t i = 0; i < 2 * kp; i += 32) {
      // Zero-filled past `in`: the odd-K pad element multiplies the zero-padded weight pair.
      const int64_t left = in - i;
      const __mmask16 lo = left >= 16 ? __mmask16(0xFFFF) : left > 0 ? __mmask16((1u << left) - 1) : 0;
      const __mmask16 hi = left >= 32 ? __mmask16(0xFFFF) : left > 16 ? __mmask16((1u << (left - 16)) - 1) : 0;
      const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, xr + i + 16), _mm512_maskz_loadu_ps(lo, xr + i));
      const int64_t n = std::min<int64_t>(32, 2 * kp - i);
      const __mmask32 st = n >= 32 ? __mmask32(0xFFFFFFFFu) : __mmask32((1u << n) - 1);
      _mm512_mask_storeu_epi16(out + i, st, (__m512i)v);
    }
  }
}

// GCC 12's unmasked AVX-512 shuffle intrinsics pass _mm512_undefined_epi32() (a self-initialised
// variable) as the unused merge source, which -Wmaybe-uninitialized reports once inlined: a false
// positive, silenced for the packing code only.
#pragma GCC diagnostic push
#ifndef __clang__  // clang has no such warning group and would warn about the pragma
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// out[j] = (r[0][j], .., r[15][j]): a 16x16 transpose of 32-bit elements (pairs) in three stages
// (32-bit, 64-bit interleaves within 128-bit lanes, then two rounds of 128-bit lane shuffles).
RETNET_AVX512BF16 inline void transpose16(const __m512i r[16], __m512i out[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // u[4i + c], 128-bit lane L: element 4L + c of rows 4i .. 4i+3.
  for (int i = 0; i < 4; ++i) {
    u[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xDD);
    const __m512i v2 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88),
                  v3 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xDD);
    out[c] = _mm512_shuffle_i32x4(v0, v2, 0x88);
    out[8 + c] = _mm512_shuffle_i32x4(v0, v2, 0xDD);
    out[4 + c] = _mm512_shuffle_i32x4(v1, v3, 0x88);
    out[12 + c] = _mm512_shuffle_i32x4(v1, v3, 0xDD);
  }
}

// Packs weight rows [r0, r1) of W [rows, in] (bf16, K contiguous) into tiles of 32 rows:
// pack[tile][p][j] = (W[r0 + 32·tile + j, 2p], W[.., 2p + 1]) as one uint32 (low half = even k),
// the operand layout of vdpbf16ps. Rows past r1 and the odd-K pad are zero. Blocks of 16 rows x 16
// pairs are transposed in registers (scalar stores 128 B apart cost ~10% of the products); the
// last < 16 pairs of each row go one by one.
RETNET_AVX512BF16 void pack_panel(const uint16_t* w, int64_t in, int64_t r0, int64_t r1, uint32_t* pack) {
  const int64_t kp = (in + 1) / 2, n = r1 - r0, tiles = (n + kNR - 1) / kNR, full = in / 2;
  const int64_t vec_pairs = full / 16 * 16;
  for (int64_t tile = 0; tile < tiles; ++tile) {
    uint32_t* dst = pack + tile * kp * kNR;
    for (int half = 0; half < 2; ++half) {
      for (int64_t p0 = 0; p0 < vec_pairs; p0 += 16) {
        __m512i rows[16], cols[16];
        for (int j = 0; j < 16; ++j) {
          const int64_t r = tile * kNR + half * 16 + j;
          rows[j] = r < n ? _mm512_loadu_si512(w + (r0 + r) * in + 2 * p0) : _mm512_setzero_si512();
        }
        transpose16(rows, cols);
        for (int j = 0; j < 16; ++j) _mm512_storeu_si512(dst + (p0 + j) * kNR + half * 16, cols[j]);
      }
    }
    for (int j = 0; j < kNR; ++j) {
      const int64_t r = tile * kNR + j;
      if (r >= n) {
        for (int64_t p = vec_pairs; p < kp; ++p) dst[p * kNR + j] = 0;
        continue;
      }
      const uint16_t* row = w + (r0 + r) * in;
      for (int64_t p = vec_pairs; p < full; ++p) {
        uint32_t v;
        std::memcpy(&v, row + 2 * p, 4);
        dst[p * kNR + j] = v;
      }
      if (in & 1) dst[full * kNR + j] = row[in - 1];
    }
  }
}

#pragma GCC diagnostic pop

RETNET_AVX512BF16 void gemm_bf16_avx512(const uint32_t* xb, int64_t T, int64_t in, const uint16_t* w, int64_t r0,
                                        int64_t r1, float* y, int64_t ldy, std::vector<uint32_t>& pack) {
  const int64_t kp = (in + 1) / 2, n = r1 - r0, tiles = (n + kNR - 1) / kNR;
  if (pack.size() < size_t(tiles * kp * kNR)) pack.resize(size_t(tiles * kp * kNR));
  pack_panel(w, in, r0, r1, pack.data());
  for (int64_t pc = 0; pc < kp; pc += kKcPairs) {
    const int64_t kcp = std::min(kKcPairs, kp - pc);
    for (int64_t t = 0; t < T; t += kMR) {
      const int mr = int(std::min<int64_t>(kMR, T - t));
      for (int64_t tile = 0; tile < tiles; ++tile) {
        const int64_t cols = std::min<int64_t>(kNR, n - tile * kNR);
        const __mmask16 m0 = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
        const __mmask16 m1 = cols >= 32 ? __mmask16(0xFFFF) : cols > 16 ? __mmask16((1u << (cols - 16)) - 1) : 0;
        kMicro[mr](xb + t * kp + pc, kp, pack.data() + (tile * kp + pc) * kNR, kcp, y + t * ldy + tile * kNR, ldy, m0,
                   m1, pc > 0);
      }
    }
  }
}

}  // namespace
#endif

void round_rows_bf16(const float* x, int64_t T, int64_t in, uint32_t* xb) {
#ifdef RETNET_BF16_KERNEL
  if (bf16_gemm_supported()) return round_rows_avx512(x, T, in, xb);
#endif
  throw Error("round_rows_bf16: this CPU has no AVX512-BF16");
}

void gemm_bf16_rows(const uint32_t* xb, int64_t T, int64_t in, const WeightRef& w, int64_t r0, int64_t r1, float* y,
                    int64_t ldy, std::vector<uint32_t>& pack) {
  if (r1 <= r0 || T <= 0) return;
#ifdef RETNET_BF16_KERNEL
  if (bf16_gemm_supported() && w.dtype == DType::BF16)
    return gemm_bf16_avx512(xb, T, in, static_cast<const uint16_t*>(w.data), r0, r1, y, ldy, pack);
#endif
  throw Error("gemm_bf16_rows: needs BF16 weights and a CPU with AVX512-BF16");
}

}  // namespace retnet::cpu
