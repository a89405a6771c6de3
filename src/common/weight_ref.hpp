// WeightRef: a weight matrix or vector in some memory — a host view of the checkpoint (the model layer's
// description) or the backend's copy of it (a placed model, the ops). Shared by the model layer, the
// backends and the runtime, so it lives below all three. Dependency-free and C++17 (common/types.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/types.hpp"

namespace retnet {

// A weight matrix [rows, cols] row-major (PyTorch [out, in]) or vector (rows = 1).
// Each row is whole blocks of its type (common/types.hpp): row r starts at data + r · row_bytes().
struct WeightRef {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes() const { return size_t(dtype_row_bytes(dtype, cols)); }
  size_t bytes() const { return size_t(rows) * row_bytes(); }
  const uint8_t* row(int64_t r) const { return static_cast<const uint8_t*>(data) + size_t(r) * row_bytes(); }
};

}  // namespace retnet
