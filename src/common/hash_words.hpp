// A fast non-cryptographic 64-bit hash over 8-byte words: the model fingerprint runs it over every
// weight byte at load, so it must keep up with memory bandwidth (byte-wise FNV-1a does not: about
// 1 byte per cycle against about 6 here).
#pragma once
#include <cstddef>
#include <cstdint>

namespace retnet {

// Hash of n bytes at data (any alignment), continuing from `seed`; depends on n and on every byte.
uint64_t hash_words(const void* data, size_t n, uint64_t seed);

}  // namespace retnet
