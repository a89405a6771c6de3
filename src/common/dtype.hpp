// Scalar conversions between the weight types (common/types.hpp) and fp32, on the host.
#pragma once
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "common/quant_blocks.hpp"
#include "common/types.hpp"

namespace retnet {

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round-to-nearest-even, NaN kept quiet (same as PyTorch's conversion).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

// IEEE half <-> float without relying on F16C so it also works in constexpr-free host code paths.
inline float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        man <<= 1;
      } while ((man & 0x400u) == 0);
      u = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | man << 13;
  } else {
    u = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f);  // round-to-nearest-even (dtype.cpp)

// Throws Error naming `where` and the value: t is not a DType enumerator (a bad cast).
[[noreturn]] void throw_bad_dtype(DType t, const char* where);
// Throws Error: block type t has no element writer (rows are quantized whole, by quantize_row).
[[noreturn]] void throw_block_store(DType t);

// Element i of a weight array of type D, widened to fp32 (exact for every type but q4_k, whose
// (d·sc)·c − dmin·m rounds once; the same value as dequantize_row, common/quant.hpp). A block type's
// array is whole blocks (rows of a multiple of the block), so element i is in block i / block_elems.
template <DType D>
inline float load_elem(const void* p, size_t i) {
  if constexpr (D == DType::F32) {
    float f;
    std::memcpy(&f, static_cast<const char*>(p) + 4 * i, 4);
    return f;
  } else if constexpr (D == DType::F16 || D == DType::BF16) {
    uint16_t h;
    std::memcpy(&h, static_cast<const char*>(p) + 2 * i, 2);
    return D == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
  } else if constexpr (D == DType::Q8_0) {
    BlockQ8_0 b;  // copied: checkpoint data need not be aligned
    std::memcpy(&b, static_cast<const char*>(p) + sizeof b * (i / kQ8_0Block), sizeof b);
    return f16_to_f32(b.d) * float(b.q[i % kQ8_0Block]);
  } else if constexpr (D == DType::Q4_0) {
    BlockQ4_0 b;
    std::memcpy(&b, static_cast<const char*>(p) + sizeof b * (i / kQ4_0Block), sizeof b);
    const size_t j = i % kQ4_0Block;
    const int c = j < kQ4_0Block / 2 ? b.qs[j] & 0x0F : b.qs[j - kQ4_0Block / 2] >> 4;
    return f16_to_f32(b.d) * float(c - 8);
  } else if constexpr (D == DType::Q4_K) {
    BlockQ4K b;
    std::memcpy(&b, static_cast<const char*>(p) + sizeof b * (i / kQ4KBlock), sizeof b);
    const int k = int(i % kQ4KBlock), s = k / kQ4KSub, j = k % kQ4KSub;
    const Q4KScaleMin sm = kq4k_scale_min(b.scales, s);
    const uint8_t q = b.qs[kQ4KSub * (s / 2) + j];
    const float ds = f16_to_f32(b.d) * float(sm.scale), ms = f16_to_f32(b.dmin) * float(sm.min);
    return ds * float(s % 2 ? q >> 4 : q & 0x0F) - ms;
  } else {
    static_assert(kNoKernelFor<D>, "load_elem: no element reader for this weight type");
  }
}

// Element i of a weight array of type D = v rounded to nearest even. A block type is written by
// whole rows (quantize_row, common/quant.hpp): here it throws Error (throw_block_store).
template <DType D>
inline void store_elem(void* p, size_t i, float v) {
  if constexpr (D == DType::F32) {
    std::memcpy(static_cast<char*>(p) + 4 * i, &v, 4);
  } else if constexpr (D == DType::F16 || D == DType::BF16) {
    const uint16_t h = D == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
    std::memcpy(static_cast<char*>(p) + 2 * i, &h, 2);
  } else if constexpr (DTypeConst<D>::block_elems > 1) {
    throw_block_store(D);
  } else {
    static_assert(kNoKernelFor<D>, "store_elem: no element writer for this weight type");
  }
}

// load_elem / store_elem for a weight type known at run time.
inline float load_as_f32(const void* p, DType t, size_t i) {
  return visit_dtype(
      t, [&](auto d) { return load_elem<decltype(d)::value>(p, i); },
      [&]() -> float { throw_bad_dtype(t, "load_as_f32"); });
}
inline void store_from_f32(void* p, DType t, size_t i, float v) {
  visit_dtype(
      t, [&](auto d) { store_elem<decltype(d)::value>(p, i, v); }, [&] { throw_bad_dtype(t, "store_from_f32"); });
}

// The element type named `name` in kDTypeTraits (safetensors' spelling, e.g. "BF16"), or nullopt.
// Block types are not safetensors dtypes (they are stored as U8: model/quant_format.hpp):
// quant_type_from_name (common/quant.hpp) names them.
std::optional<DType> dtype_from_name(std::string_view name);
// Every element type's name in kDTypeTraits, in table order: "F32, F16, BF16".
std::string dtype_name_list();

}  // namespace retnet
