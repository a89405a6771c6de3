// The memory-bound elementwise ops on the CPU: embed (gather), widen (weight → fp32), glu, residual.
// The twin of kernels/elementwise.cu.
#include <cstring>

#include "backend/cpu/kernels_cpu.hpp"
#include "backend/cpu/weights_cpu.hpp"
#include "common/quant.hpp"

namespace retnet::cpu {

void widen_row(const void* src, DType t, int64_t n, float* dst) {
  visit_dtype(
      t,
      [&](auto d) {
        constexpr DType D = decltype(d)::value;
        if constexpr (D == DType::F32) {
          std::memcpy(dst, src, size_t(n) * 4);
        } else if constexpr (DTypeConst<D>::block_elems > 1) {
          dequantize_row(D, src, n, dst);  // n: whole blocks (a row of a block-typed matrix)
        } else {
          int64_t i = 0;
#ifdef RETNET_AVX2
          for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8<D>(src, i));
#endif
          for (; i < n; ++i) dst[i] = load_elem<D>(src, size_t(i));
        }
      },
      [&] { throw_bad_dtype(t, "widen_row"); });
}

void embed_row(const WeightRef& table, int32_t id, float scale, float* out) {
  const int64_t D = table.cols;
  widen_row(table.row(id), table.dtype, D, out);
  if (scale != 1.0f)
    for (int64_t i = 0; i < D; ++i) out[i] *= scale;
}

void glu_range(const float* a, const float* b, float* out, int64_t begin, int64_t end, Activation act) {
  switch (act) {
    case Activation::Silu:
      for (int64_t i = begin; i < end; ++i) out[i] = silu(a[i]) * b[i];
      return;
    case Activation::Gelu:
      for (int64_t i = begin; i < end; ++i) out[i] = gelu(a[i]) * b[i];
      return;
  }
}

void residual(float* x, const float* y, float alpha, size_t n) {
  if (alpha == 1.0f) {
    for (size_t i = 0; i < n; ++i) x[i] += y[i];
  } else {
    for (size_t i = 0; i < n; ++i) x[i] = x[i] * alpha + y[i];
  }
}

}  // namespace retnet::cpu
