// Quantized decode GEMV: the activation quantizer, the run-time dispatch and the portable kernels,
// which define the results the AVX2 and AVX-512 kernels reproduce bit for bit (quant_gemv.hpp).
#include "backend/cpu/quant_gemv.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "backend/cpu/quant_gemv_impl.hpp"
#include "backend/cpu/weights_cpu.hpp"
#include "common/dtype.hpp"

namespace retnet::cpu {

namespace {

// Below this max|x| a block is all zeros (d = 0): 127 / max|x| would overflow, and what it drops is
// under 1e-30 per weight.
constexpr float kTinyBlock = 1e-30f;

struct MutActs {
  int8_t* q;
  float* d;
  float* s;
  int32_t* o;
};

// Buffer layout: q [T, nb, 32] | d [T, nb] | s [T, nb] | o [T, nb]: 44 bytes a block.
constexpr size_t kActBlockBytes = 44;
MutActs layout(int64_t T, int64_t nb, void* buf, QuantActs& a) {
  auto* p = static_cast<uint8_t*>(buf);
  const size_t n = size_t(T * nb);
  MutActs m{reinterpret_cast<int8_t*>(p), reinterpret_cast<float*>(p + n * 32), reinterpret_cast<float*>(p + n * 36),
            reinterpret_cast<int32_t*>(p + n * 40)};
  a.T = T;
  a.nb = nb;
  a.q = m.q;
  a.d = m.d;
  a.s = m.s;
  a.o = m.o;
  return m;
}

// The block's scale d and its code sum Σq: s = d·Σq, o = −8·Σq.
void set_scale(const MutActs& m, int64_t b, float d, int32_t sum) {
  m.d[b] = d;
  m.s[b] = d * float(sum);
  m.o[b] = -8 * sum;
}

// The block's scale and reciprocal from max|x|; false when the block is not finite.
inline bool block_scale(float amax, bool finite, float& d, float& id) {
  if (!finite) {
    d = std::numeric_limits<float>::quiet_NaN();
    id = 0.f;
    return false;
  }
  if (amax < kTinyBlock) {
    d = id = 0.f;
    return true;
  }
  d = amax / 127.f;
  id = 127.f / amax;
  return true;
}

#ifdef RETNET_AVX2
void quantize_acts_avx2(const float* x, int64_t T, int64_t nb, const MutActs& m) {
  const __m256 sign = _mm256_set1_ps(-0.f), big = _mm256_set1_ps(std::numeric_limits<float>::max());
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127);
  for (int64_t b = 0; b < T * nb; ++b) {
    const float* xb = x + b * 32;
    __m256 v[4], amax = _mm256_setzero_ps(), ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(xb + 8 * k);
      const __m256 a = _mm256_andnot_ps(sign, v[k]);
      ok = _mm256_and_ps(ok, _mm256_cmp_ps(a, big, _CMP_LE_OQ));  // false for NaN and ±inf
      amax = _mm256_max_ps(amax, a);
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    float d, id;
    if (!block_scale(_mm_cvtss_f32(h), _mm256_movemask_ps(ok) == 0xFF, d, id)) {
      std::memset(m.q + b * 32, 0, 32);
      set_scale(m, b, d, 0);  // d = s = NaN: the outputs it feeds are NaN
      continue;
    }
    const __m256 idv = _mm256_set1_ps(id);
    __m256i qi[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 r = _mm256_round_ps(_mm256_mul_ps(v[k], idv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      qi[k] = _mm256_max_epi32(nlim, _mm256_min_epi32(lim, _mm256_cvttps_epi32(r)));
    }
    // packs interleave 128-bit lanes; the permutation puts the 32 codes back in order.
    const __m256i q16a = _mm256_packs_epi32(qi[0], qi[1]), q16b = _mm256_packs_epi32(qi[2], qi[3]);
    const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16a, q16b), perm);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(m.q + b * 32), q8);
    const __m256i quads = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q8), _mm256_set1_epi16(1));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(quads), _mm256_extracti128_si256(quads, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    set_scale(m, b, d, _mm_cvtsi128_si32(s4));
  }
}
#endif

QuantPath detect_default() {
  const char* off = std::getenv("RETNET_NO_AVX512");
  const bool no512 = off && *off && std::strcmp(off, "0") != 0;
  if (!no512 && quant_path_supported(QuantPath::Avx512Vnni)) return QuantPath::Avx512Vnni;
  if (quant_path_supported(QuantPath::Avx2)) return QuantPath::Avx2;
  return QuantPath::Scalar;
}

}  // namespace

size_t quant_acts_bytes(int64_t T, int64_t in) { return size_t(T) * size_t(in / kQActBlock) * kActBlockBytes; }

namespace qgemv {

QuantActs quantize_acts_scalar(const float* x, int64_t T, int64_t in, void* buf) {
  QuantActs a;
  const int64_t nb = in / kQActBlock;
  const MutActs m = layout(T, nb, buf, a);
  for (int64_t b = 0; b < T * nb; ++b) {
    const float* xb = x + b * 32;
    float amax = 0.f;
    bool finite = true;
    for (int i = 0; i < 32; ++i) {
      const float v = std::fabs(xb[i]);
      finite = finite && v <= std::numeric_limits<float>::max();
      amax = std::max(amax, v);
    }
    float d, id;
    if (!block_scale(amax, finite, d, id)) {
      std::memset(m.q + b * 32, 0, 32);
      set_scale(m, b, d, 0);  // d = s = NaN: the outputs it feeds are NaN
      continue;
    }
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      const int32_t qi = std::clamp(int32_t(std::nearbyint(xb[i] * id)), -127, 127);
      m.q[b * 32 + i] = int8_t(qi);
      sum += qi;
    }
    set_scale(m, b, d, sum);
  }
  return a;
}

// ---- Portable kernels. Each spells out the order of quant_gemv.hpp: lanes L_j of four products,
// acc[b mod 4][j] = fma(L_j, s_w · d, acc), y = R((acc[0] + acc[2]) + (acc[1] + acc[3])) (q4_k:
// − R(acc_min)).

namespace {
inline float finish(const float (&acc)[4][8]) {
  float v[8];
  for (int j = 0; j < 8; ++j) v[j] = (acc[0][j] + acc[2][j]) + (acc[1][j] + acc[3][j]);
  return reduce8(v);
}
}  // namespace

void q8_0_scalar(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  const int64_t nb = a.nb;
  const size_t rb = q8_0_row_bytes(nb * 32);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + size_t(r) * rb;
    for (int64_t t = 0; t < a.T; ++t) {
      float acc[4][8] = {};
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = row + size_t(b) * sizeof(BlockQ8_0);
        const auto* wq = reinterpret_cast<const int8_t*>(blk + 2);
        const int8_t* aq = a.q + (t * nb + b) * 32;
        const float sc = f16_to_f32(load_u16(blk)) * a.d[t * nb + b];
        for (int j = 0; j < 8; ++j) {
          int32_t L = 0;
          for (int k = 4 * j; k < 4 * j + 4; ++k) L += int32_t(wq[k]) * aq[k];
          acc[b & 3][j] = std::fma(float(L), sc, acc[b & 3][j]);
        }
      }
      y[t * ldy + (r - r0)] = finish(acc);
    }
  }
}

void q4_0_scalar(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  const int64_t nb = a.nb;
  const size_t rb = q4_0_row_bytes(nb * 32);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + size_t(r) * rb;
    for (int64_t t = 0; t < a.T; ++t) {
      float acc[4][8] = {}, acco[8] = {};
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = row + size_t(b) * sizeof(BlockQ4_0);
        const uint8_t* qs = blk + 2;
        const int8_t* aq = a.q + (t * nb + b) * 32;
        const float sc = f16_to_f32(load_u16(blk)) * a.d[t * nb + b];
        for (int j = 0; j < 8; ++j) {
          int32_t L = 0;
          for (int k = 4 * j; k < 4 * j + 4; ++k) L += int32_t(k < 16 ? qs[k] & 15 : qs[k - 16] >> 4) * aq[k];
          acc[b & 3][j] = std::fma(float(L), sc, acc[b & 3][j]);
        }
        acco[b & 7] = std::fma(float(a.o[t * nb + b]), sc, acco[b & 7]);  // −8·Σq: the codes' offset
      }
      y[t * ldy + (r - r0)] = finish(acc) + reduce8(acco);
    }
  }
}

void q4_k_scalar(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  const int64_t nb = a.nb, nsb = nb / 8;
  const size_t rb = q4_k_row_bytes(nb * 32);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + size_t(r) * rb;
    for (int64_t t = 0; t < a.T; ++t) {
      float acc[4][8] = {}, accm[8] = {};
      for (int64_t k = 0; k < nsb; ++k) {
        const uint8_t* blk = row + size_t(k) * sizeof(BlockQ4K);
        const float d = f16_to_f32(load_u16(blk)), dmin = f16_to_f32(load_u16(blk + 2));
        uint64_t sc8, m8;
        q4k_scales_mins(blk + 4, sc8, m8);
        const uint8_t* qs = blk + 16;
        for (int s = 0; s < 8; ++s) {
          const int64_t b = k * 8 + s;
          const int8_t* aq = a.q + (t * nb + b) * 32;
          const float sc = d * float((sc8 >> (8 * s)) & 0xFF) * a.d[t * nb + b];  // d · sc_s is exact
          const uint8_t* q = qs + 32 * (s / 2);
          const int shift = 4 * (s & 1);
          for (int j = 0; j < 8; ++j) {
            int32_t L = 0;
            for (int i = 4 * j; i < 4 * j + 4; ++i) L += int32_t((q[i] >> shift) & 15) * aq[i];
            acc[s & 3][j] = std::fma(float(L), sc, acc[s & 3][j]);
          }
          accm[s] = std::fma(dmin * float((m8 >> (8 * s)) & 0xFF), a.s[t * nb + b], accm[s]);
        }
      }
      y[t * ldy + (r - r0)] = finish(acc) - reduce8(accm);
    }
  }
}

#ifndef RETNET_AVX2
const RowsFn kAvx2[3] = {nullptr, nullptr, nullptr};
#endif

}  // namespace qgemv

QuantActs quantize_acts(const float* x, int64_t T, int64_t in, void* buf) {
#ifdef RETNET_AVX2
  QuantActs a;
  quantize_acts_avx2(x, T, in / kQActBlock, layout(T, in / kQActBlock, buf, a));
  return a;
#else
  return qgemv::quantize_acts_scalar(x, T, in, buf);
#endif
}

const char* quant_path_name(QuantPath p) {
  switch (p) {
    case QuantPath::Scalar:
      return "scalar";
    case QuantPath::Avx2:
      return "avx2";
    case QuantPath::Avx512Vnni:
      return "avx512-vnni";
  }
  return "?";
}

bool quant_path_supported(QuantPath p) {
  switch (p) {
    case QuantPath::Scalar:
      return true;
    case QuantPath::Avx2:
      return qgemv::kAvx2[0] != nullptr;
    case QuantPath::Avx512Vnni:
      return qgemv::kAvx512[0] != nullptr && qgemv::cpu_has_avx512_vnni();
  }
  return false;
}

QuantPath quant_path_default() {
  static const QuantPath p = detect_default();
  return p;
}

namespace {
void run(int type, qgemv::RowsFn scalar, const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y,
         int64_t ldy, QuantPath path) {
  if (r1 <= r0 || a.T <= 0) return;
  // An unsupported path runs the portable code rather than an instruction this CPU lacks.
  qgemv::RowsFn f = scalar;
  if (path != QuantPath::Scalar && quant_path_supported(path))
    f = path == QuantPath::Avx512Vnni ? qgemv::kAvx512[type] : qgemv::kAvx2[type];
  f(a, static_cast<const uint8_t*>(w), r0, r1, y, ldy);
}
}  // namespace

void gemv_q8_0(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy, QuantPath path) {
  run(0, qgemv::q8_0_scalar, a, w, r0, r1, y, ldy, path);
}
void gemv_q4_0(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy, QuantPath path) {
  run(1, qgemv::q4_0_scalar, a, w, r0, r1, y, ldy, path);
}
void gemv_q4_k(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy, QuantPath path) {
  run(2, qgemv::q4_k_scalar, a, w, r0, r1, y, ldy, path);
}

}  // namespace retnet::cpu
