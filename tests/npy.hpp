// Minimal .npy reader for float32 arrays: the golden logits written by tools/make_fixtures.py.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace retnet {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;  // row-major
};

// Reads '<f4' C-order arrays only; anything else is an Error naming the path.
NpyArray read_npy_f32(const std::string& path);

}  // namespace retnet
