// retnet::Rng — xoshiro256** 1.0 seeded through SplitMix64, written from the published
// algorithm descriptions (Blackman & Vigna, "Scrambled linear pseudorandom number generators").
#include "retnet/error.hpp"
#include "retnet/sampler.hpp"

namespace retnet {

namespace {
inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

uint64_t Rng::splitmix64(uint64_t& state) {
  state += 0x9e3779b97f4a7c15ULL;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void Rng::reseed(uint64_t seed) {
  // SplitMix64 is a bijection of its counter, so four consecutive outputs are never all
  // zero and the xoshiro state is always valid.
  uint64_t sm = seed;
  for (auto& w : s_) w = splitmix64(sm);
}

void Rng::set_state(const std::array<uint64_t, 4>& s) {
  if (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0)
    throw Error("Rng state: all-zero state is invalid for xoshiro256**");
  s_ = s;
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

float Rng::next_float() {
  // 24 bits fill a float's significand exactly: the conversion and the scaling by a power
  // of two are both exact, so the value is the same on every IEEE-754 platform.
  return float(next_u64() >> 40) * 0x1.0p-24f;
}

}  // namespace retnet
