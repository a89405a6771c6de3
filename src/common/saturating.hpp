// Saturating byte arithmetic for memory estimates: sums and products stop at UINT64_MAX, so absurd
// shapes cannot wrap around to small values.
#pragma once
#include <cstdint>
#include <limits>

namespace retnet {

inline uint64_t sat_add(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max() : a + b;
}
inline uint64_t sat_mul(uint64_t a, uint64_t b) {
  return (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) ? std::numeric_limits<uint64_t>::max() : a * b;
}

}  // namespace retnet
