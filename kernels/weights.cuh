// Reading weights on the device: one element, or one 128-bit chunk. Each reader is an `if constexpr`
// chain over the weight types (common/types.hpp) that fails to compile for a type it lacks. The CPU
// twin is src/backend/cpu/weights_cpu.hpp.
#pragma once

#include "launchers.cuh"
#include "quant.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {
namespace dev {

// Element i of a weight array of type W, widened to fp32 (exact for the element types; a block type's
// value is its dequantized one, as the CPU's dequantize_row computes it).
template <DType W>
__device__ __forceinline__ float load_weight(const void* base, size_t i) {
  if constexpr (W == DType::F32) {
    return static_cast<const float*>(base)[i];
  } else if constexpr (W == DType::F16) {
    return f16_bits_to_float(static_cast<const unsigned short*>(base)[i]);
  } else if constexpr (W == DType::BF16) {
    return bf16_bits_to_float(static_cast<const unsigned short*>(base)[i]);
  } else if constexpr (W == DType::Q8_0 || W == DType::Q4_0 || W == DType::Q4_K) {
    return load_block_elem<W>(base, i);
  } else {
    static_assert(kNoKernelFor<W>, "load_weight: no element reader for this weight type");
  }
}

// The elements of one 32-bit word / one 128-bit chunk, widened (element 0 in the low bits: little
// endian, as the weights lie in memory).
template <DType W>
__device__ __forceinline__ void unpack_word(unsigned word, float* f) {
  if constexpr (W == DType::F32) {
    f[0] = __uint_as_float(word);
  } else if constexpr (W == DType::F16) {
    f[0] = f16_bits_to_float((unsigned short)(word & 0xffffu));
    f[1] = f16_bits_to_float((unsigned short)(word >> 16));
  } else if constexpr (W == DType::BF16) {
    f[0] = __uint_as_float(word << 16);
    f[1] = __uint_as_float(word & 0xffff0000u);
  } else {
    static_assert(kNoKernelFor<W>, "unpack_word: no 32-bit unpacker for this weight type");
  }
}
template <DType W>
__device__ __forceinline__ void unpack16(const uint4& u, float* f) {
  static_assert(DTypeConst<W>::block_elems == 1, "unpack16: element types only");
  constexpr int per_word = int(4 / DTypeConst<W>::block_bytes);
  unpack_word<W>(u.x, f);
  unpack_word<W>(u.y, f + per_word);
  unpack_word<W>(u.z, f + 2 * per_word);
  unpack_word<W>(u.w, f + 3 * per_word);
}

}  // namespace dev
}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
