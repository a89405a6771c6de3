// hash_words (hash_words.hpp): four independent lanes over 32-byte blocks, so that the multiplies of
// one word do not wait for the previous word's; the lanes and the length are mixed together at the end.
#include "common/hash_words.hpp"

#include <cstring>

namespace retnet {

namespace {

constexpr uint64_t kMul = 0x9fb21c651e98df25ull;  // odd: multiplying by it is a bijection

inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);  // an unaligned load (safetensors data need not be aligned)
  return v;
}
// One word into a lane: the multiply spreads low bits upwards, the rotation brings the well-mixed high
// bits down for the next multiply.
inline uint64_t step(uint64_t lane, uint64_t word) { return rotl((lane ^ word) * kMul, 29); }
// Full avalanche of a 64-bit value (SplitMix64's finaliser).
inline uint64_t finish(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t hash_words(const void* data, size_t n, uint64_t seed) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t a = seed ^ 0x243f6a8885a308d3ull, b = seed ^ 0x13198a2e03707344ull, c = seed ^ 0xa4093822299f31d0ull,
           d = seed ^ 0x082efa98ec4e6c89ull;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a = step(a, load64(p + i));
    b = step(b, load64(p + i + 8));
    c = step(c, load64(p + i + 16));
    d = step(d, load64(p + i + 24));
  }
  for (; i + 8 <= n; i += 8) a = step(a, load64(p + i));
  if (i < n) {
    uint64_t tail = 0;
    std::memcpy(&tail, p + i, n - i);
    b = step(b, tail);
  }
  uint64_t h = finish(a) ^ rotl(finish(b), 16) ^ rotl(finish(c), 32) ^ rotl(finish(d), 48);
  return finish(h ^ uint64_t(n) * kMul);
}

}  // namespace retnet
