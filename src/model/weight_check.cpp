#include "model/weight_check.hpp"

#include <cstring>
#include <string>

#include "common/quant_blocks.hpp"
#include "retnet/error.hpp"

namespace retnet {

namespace {

// An element is NaN or ±Inf when its exponent bits are all set.
template <class Bits, Bits kExp>
int64_t first_all_ones_exponent(const uint8_t* p, size_t n) {
  // Blocks: a branch-free OR over a block (vectorised by the compiler; memcpy keeps unaligned
  // checkpoint data legal), then the exact element only in the block that has one.
  constexpr size_t kBlock = 4096;
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t e = b + kBlock < n ? b + kBlock : n;
    bool any = false;
    for (size_t i = b; i < e; ++i) {
      Bits v;
      std::memcpy(&v, p + i * sizeof(Bits), sizeof(Bits));
      any |= (v & kExp) == kExp;
    }
    if (!any) continue;
    for (size_t i = b; i < e; ++i) {
      Bits v;
      std::memcpy(&v, p + i * sizeof(Bits), sizeof(Bits));
      if ((v & kExp) == kExp) return int64_t(i);
    }
  }
  return -1;
}

// Block types: a value is non-finite exactly when its block's fp16 scale (d; q4_k also dmin) is, as
// the codes are small integers. Returns the first element of the first such block.
template <class Block>
int64_t first_bad_scale(const uint8_t* p, size_t n) {
  constexpr size_t kElems = sizeof(Block) == sizeof(BlockQ4K) ? kQ4KBlock : kQ8_0Block;
  constexpr size_t kScales = sizeof(Block) == sizeof(BlockQ4K) ? 2 : 1;  // d, then dmin
  for (size_t b = 0; b < n / kElems; ++b)
    for (size_t s = 0; s < kScales; ++s) {
      uint16_t h;
      std::memcpy(&h, p + b * sizeof(Block) + 2 * s, 2);
      if ((h & 0x7c00u) == 0x7c00u) return int64_t(b * kElems);
    }
  return -1;
}

}  // namespace

int64_t first_non_finite(const void* p, DType t, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  switch (t) {
    case DType::F32: return first_all_ones_exponent<uint32_t, 0x7f800000u>(b, n);
    case DType::F16: return first_all_ones_exponent<uint16_t, 0x7c00u>(b, n);
    case DType::BF16: return first_all_ones_exponent<uint16_t, 0x7f80u>(b, n);
    case DType::Q8_0:
      return first_bad_scale<BlockQ8_0>(b, n);
    case DType::Q4_0:
      return first_bad_scale<BlockQ4_0>(b, n);
    case DType::Q4_K:
      return first_bad_scale<BlockQ4K>(b, n);
  }
  throw_bad_dtype(t, "first_non_finite");
}

void check_tensor_finite(const TensorInfo& t) {
  const int64_t i = first_non_finite(t.data, t.dtype, size_t(t.numel()));
  if (i < 0) return;
  const float v = load_as_f32(t.data, t.dtype, size_t(i));
  const char* what = v != v ? "NaN" : v > 0 ? "+Inf" : "-Inf";
  throw Error(t.file + ": tensor '" + t.name + "' holds " + what + " at element " + std::to_string(i) + " of shape " +
              t.shape_str() + " (" + dtype_name(t.dtype) + "; found by LoadOptions::check_weights / --check-weights)");
}

}  // namespace retnet
