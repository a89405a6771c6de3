// Minimal .npy (format 1.0) reader/writer for float32 arrays: `retnet logits` output and test goldens.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace retnet {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;  // row-major
};

// Writes a little-endian float32 C-order array. Throws Error naming the path on failure.
void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);
// Reads '<f4' C-order arrays only; anything else is an Error naming the path.
NpyArray read_npy_f32(const std::string& path);

}  // namespace retnet
