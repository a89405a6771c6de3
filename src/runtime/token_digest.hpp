// A running digest of the token ids a session has absorbed: how many, and a 128-bit hash of them in
// order. State snapshots carry it, so that a prompt cache can tell whether a snapshot's history is a
// prefix of a prompt without storing the tokens (a snapshot keeps a constant size).
#pragma once
#include <cstdint>
#include <span>

namespace retnet {

struct TokenDigest {
  uint64_t count = 0;
  // Two lanes, each a chain of a different bijective 64-bit mix over (lane ^ token): an id changed,
  // inserted, dropped or moved anywhere changes both lanes (unlike a sum or XOR of per-token hashes).
  uint64_t h[2] = {0x243f6a8885a308d3ull, 0x13198a2e03707344ull};

  void add(std::span<const int32_t> ids) {
    for (const int32_t id : ids) {
      const uint64_t x = uint64_t(uint32_t(id)) + 0x9e3779b97f4a7c15ull * ++count;
      h[0] = mix_a(h[0] ^ x);
      h[1] = mix_b(h[1] ^ (x * 0xd6e8feb86659fd93ull));
    }
  }
  bool operator==(const TokenDigest&) const = default;

 private:
  static uint64_t mix_a(uint64_t z) {  // the finaliser of MurmurHash3
    z = (z ^ (z >> 33)) * 0xff51afd7ed558ccdull;
    z = (z ^ (z >> 33)) * 0xc4ceb9fe1a85ec53ull;
    return z ^ (z >> 33);
  }
  static uint64_t mix_b(uint64_t z) {  // the finaliser of SplitMix64
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

}  // namespace retnet
