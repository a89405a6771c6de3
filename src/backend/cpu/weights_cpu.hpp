// Reading weights on the CPU: eight elements widened to fp32 at once (AVX2/F16C), beside the scalar
// load_elem of common/dtype.hpp. The twin of kernels/weights.cuh.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "common/dtype.hpp"

namespace retnet::cpu {

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define RETNET_AVX2 1
// Elements [i, i + 8) of a weight row of type D (element types only: a block type reads whole blocks).
template <DType D>
inline __m256 load8(const void* base, int64_t i) {
  if constexpr (D == DType::F32) {
    return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  } else if constexpr (D == DType::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i)));
  } else if constexpr (D == DType::BF16) {
    __m256i w = _mm256_cvtepu16_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  } else if constexpr (DTypeConst<D>::block_elems > 1) {
    static_assert(kNoKernelFor<D>, "cpu::load8: block types are read by whole blocks (dequantize_row)");
  } else {
    static_assert(kNoKernelFor<D>, "cpu::load8: no 8-element reader for this weight type");
  }
}
#endif

}  // namespace retnet::cpu
