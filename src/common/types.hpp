// The one set of enums that the model, the backends and the kernels share, and the weight-type traits
// table. Dependency-free (standard headers only) and C++17, so that nvcc compiles it into kernels/*.cu
// and the SIMT emulator into host C++: the kernels take these types directly, with no mirror enum and
// no cast between two definitions of one thing.
//
// Adding a weight type: its DType enumerator, its row in kDTypeTraits, its case in visit_dtype. Every
// dispatch over weight types goes through visit_dtype or an `if constexpr` chain ending in
// static_assert(kNoKernelFor<D>), so each kernel that lacks the new type then fails to compile, by name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace retnet {

// ---- weights ------------------------------------------------------------------------------------

// Storage type of a weight array (the values are an index into kDTypeTraits).
// F32..BF16 are element types; Q8_0, Q4_0, Q4_K are block-quantized (layouts in quant_blocks.hpp).
enum class DType : uint8_t { F32, F16, BF16, Q8_0, Q4_0, Q4_K };
inline constexpr int kDTypeCount = 6;

// How a weight type lays out a row: whole blocks of block_elems elements, block_bytes bytes each (a
// plain element type is a block of 1). Rows hold whole blocks, so a [rows, cols] matrix is rows ·
// row_bytes(cols) bytes with row r at r · row_bytes(cols).
struct DTypeTraits {
  DType type;
  // safetensors' dtype string for element types; for block types the name in the quantization
  // metadata (model/quant_format.hpp: stored as U8 bytes); also what info strings and messages print
  const char* name;
  int64_t block_elems;  // elements per block
  int64_t block_bytes;  // bytes per block
  int64_t align;        // byte alignment the kernels assume for a row's start

  // Bytes of n elements as whole blocks. n % block_elems == 0 wherever the weight is read by
  // kernels (a partial block still takes a whole one).
  constexpr uint64_t bytes(uint64_t n) const {
    const uint64_t be = uint64_t(block_elems);
    return (n / be + (n % be != 0 ? 1 : 0)) * uint64_t(block_bytes);
  }
  constexpr uint64_t row_bytes(int64_t cols) const { return bytes(uint64_t(cols)); }
};

// The table: one row per DType, in enumerator order.
inline constexpr DTypeTraits kDTypeTraits[kDTypeCount] = {
    {DType::F32, "F32", 1, 4, 4},     {DType::F16, "F16", 1, 2, 2},     {DType::BF16, "BF16", 1, 2, 2},
    {DType::Q8_0, "q8_0", 32, 34, 2}, {DType::Q4_0, "q4_0", 32, 18, 2}, {DType::Q4_K, "q4_k", 256, 144, 2},
};

constexpr bool dtype_table_in_order() {
  for (int i = 0; i < kDTypeCount; ++i)
    if (int(kDTypeTraits[i].type) != i || kDTypeTraits[i].block_elems <= 0 || kDTypeTraits[i].block_bytes <= 0)
      return false;
  return true;
}
static_assert(dtype_table_in_order(), "kDTypeTraits: one row per DType, in enumerator order, positive sizes");

// t must be an enumerator (every DType is made by a parser over the table, or is a constant).
constexpr const DTypeTraits& dtype_traits(DType t) { return kDTypeTraits[static_cast<size_t>(t)]; }
constexpr const char* dtype_name(DType t) { return dtype_traits(t).name; }
constexpr uint64_t dtype_row_bytes(DType t, int64_t cols) { return dtype_traits(t).row_bytes(cols); }
// A block-quantized type (more than one element per block): read and written by whole blocks.
constexpr bool dtype_is_block(DType t) { return dtype_traits(t).block_elems > 1; }

// A weight type as a compile-time value, with its traits as scalar constants (usable in device code,
// which cannot read the table itself).
template <DType T>
struct DTypeConst : std::integral_constant<DType, T> {
  static constexpr int64_t block_elems = kDTypeTraits[static_cast<size_t>(T)].block_elems;
  static constexpr int64_t block_bytes = kDTypeTraits[static_cast<size_t>(T)].block_bytes;
};

// The last `else` of an `if constexpr` chain over the values of an enum (weight types above all):
// static_assert(kNoKernelFor<D>, "...") fails to compile for exactly the values that reach it.
template <auto>
inline constexpr bool kNoKernelFor = false;

// Calls f(DTypeConst<t>{}) and returns what it returns: the one switch from a run-time weight type to
// compile-time code. bad() (same return type) is for a value outside the enumerators, which only a
// cast can make.
template <class F, class Bad>
decltype(auto) visit_dtype(DType t, F&& f, Bad&& bad) {
  static_assert(kDTypeCount == 6, "visit_dtype: a new DType needs its case here");
  switch (t) {
    case DType::F32:
      return f(DTypeConst<DType::F32>{});
    case DType::F16:
      return f(DTypeConst<DType::F16>{});
    case DType::BF16:
      return f(DTypeConst<DType::BF16>{});
    case DType::Q8_0:
      return f(DTypeConst<DType::Q8_0>{});
    case DType::Q4_0:
      return f(DTypeConst<DType::Q4_0>{});
    case DType::Q4_K:
      return f(DTypeConst<DType::Q4_K>{});
  }
  return bad();
}

// ---- model and kernel options ---------------------------------------------------------------------

enum class Activation : uint8_t { Silu, Gelu };
enum class Pairing : uint8_t { Interleaved, Half };  // rotation pairs (2p, 2p+1) vs (p, p + dk/2)

// How the torchscale family normalises retention rows (docs/reference.md §4); None for fla.
enum class RetentionNorm : uint8_t { None, TorchscaleChunk, TorchscaleParallel };

enum class AngleMode : uint8_t {
  Reference,  // fp32 product float(n)·θ, then accurate sinf/cosf: what every reference computes (P3)
  Exact,      // n·θ and sin/cos in double, rounded once: closer to the float64 truth at long positions
};

// Which backend make_backend() builds (src/common/public_types.hpp maps retnet::Device onto it).
enum class DeviceKind : uint8_t { Auto, Cpu, Cuda };

}  // namespace retnet
