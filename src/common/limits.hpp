// Sizes of the forward pass that the model layer also plans memory for (memory_plan.cpp) and the
// runtime enforces (runtime/forward.cpp). Dependency-free, so both layers may include it.
#pragma once
#include <cstdint>

namespace retnet {

// Parallel retention materialises a [T, T] matrix per head; beyond this it is the wrong tool.
inline constexpr int64_t kMaxParallelTokens = 8192;
// Prefill runs in blocks of about this many tokens (a multiple of the chunk size) to bound memory.
inline constexpr int64_t kPrefillBlockTokens = 512;

}  // namespace retnet
