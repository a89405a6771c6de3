// The state container (state_blob.hpp).
#include "state_blob.hpp"

#include <cmath>
#include <cstring>

#include "retnet/error.hpp"

namespace retnet::serve {

namespace {
constexpr char kMagic[8] = {'R', 'E', 'T', 'N', 'E', 'T', 'S', 'V'};
constexpr uint32_t kVersion = 2;
constexpr uint32_t kVersionWhole = 1;  // read, not written: its checksum ran over the snapshot's every byte
// The library snapshot's own header (src/runtime/state_io.cpp documents it): magic, then the
// fingerprint at 16 and the position at 24. Read here only to tie the two headers together.
constexpr char kSnapshotMagic[8] = {'R', 'E', 'T', 'N', 'E', 'T', 'S', 'T'};
constexpr size_t kSnapshotMinBytes = 72 + 8;

template <class T>
void put(std::vector<uint8_t>& out, const T& v) {
  const size_t o = out.size();
  out.resize(o + sizeof(T));
  std::memcpy(out.data() + o, &v, sizeof(T));
}
template <class T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
// FNV-1a 64 of n bytes, continuing from h (the offset basis starts it).
uint64_t fnv1a64(const uint8_t* p, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}
// The container's checksum (state_blob.hpp): FNV-1a 64 over the bytes before the snapshot and over
// the snapshot's own trailing checksum, which covers the rest of it (version 1: over every byte).
uint64_t container_sum(const uint8_t* b, size_t head, size_t state_bytes, uint32_t version) {
  if (version == kVersionWhole) return fnv1a64(b, head + state_bytes);
  return fnv1a64(b + head + state_bytes - 8, 8, fnv1a64(b, head));
}
[[noreturn]] void bad(const std::string& what) { throw Error("state blob: " + what); }
}  // namespace

uint64_t state_blob_bytes(int64_t n_tokens, int64_t n_logits, uint64_t state_bytes) {
  return kStateBlobHeader + 4 * uint64_t(n_tokens) + 4 * uint64_t(n_logits) + state_bytes + 8;
}

std::vector<uint8_t> encode_state_blob(uint64_t fingerprint, std::span<const int32_t> tokens,
                                       std::span<const float> logits, std::span<const uint8_t> state) {
  std::vector<uint8_t> out;
  out.reserve(state_blob_bytes(int64_t(tokens.size()), int64_t(logits.size()), state.size()));
  out.insert(out.end(), kMagic, kMagic + 8);
  put(out, kVersion);
  put(out, uint32_t(0));
  put(out, fingerprint);
  put(out, uint64_t(tokens.size()));
  put(out, uint64_t(logits.size()));
  put(out, uint64_t(state.size()));
  const auto append = [&](const void* p, size_t n) {
    const size_t o = out.size();
    out.resize(o + n);
    if (n) std::memcpy(out.data() + o, p, n);
  };
  append(tokens.data(), tokens.size_bytes());
  append(logits.data(), logits.size_bytes());
  append(state.data(), state.size());
  put(out, container_sum(out.data(), out.size() - state.size(), state.size(), kVersion));
  return out;
}

StateBlob decode_state_blob(std::span<const uint8_t> b, const StateBlobLimits& lim) {
  if (b.size() < 8 || std::memcmp(b.data(), kMagic, 8) != 0) bad("not a retnet state (bad magic)");
  if (b.size() < kStateBlobHeader + 8)
    bad(std::to_string(b.size()) + " bytes, truncated inside the " + std::to_string(kStateBlobHeader) + "-byte header");
  const uint32_t version = get<uint32_t>(b.data() + 8);
  if (version != kVersion && version != kVersionWhole)
    bad("container version " + std::to_string(version) + " is not supported (this build reads " +
        std::to_string(kVersionWhole) + " and " + std::to_string(kVersion) + ")");
  if (get<uint32_t>(b.data() + 12) != 0) bad("reserved header field is not 0");
  const uint64_t n_tokens = get<uint64_t>(b.data() + 24), n_logits = get<uint64_t>(b.data() + 32),
                 state_bytes = get<uint64_t>(b.data() + 40);
  // Each bounded before they are summed, so that the sum cannot wrap.
  if (n_tokens < 1) bad("no tokens (a state covers at least one)");
  if (n_tokens > uint64_t(lim.max_tokens))
    bad(std::to_string(n_tokens) + " tokens, more than the " + std::to_string(lim.max_tokens) + " allowed");
  if (n_logits > uint64_t(1) << 32) bad("logits count " + std::to_string(n_logits) + " is not plausible");
  if (lim.vocab_size > 0 && n_logits != 0 && n_logits != uint64_t(lim.vocab_size))
    bad(std::to_string(n_logits) + " logits, expected 0 or the vocabulary size " + std::to_string(lim.vocab_size));
  if (state_bytes > b.size()) bad("state snapshot of " + std::to_string(state_bytes) + " bytes, truncated");
  const uint64_t expect = state_blob_bytes(int64_t(n_tokens), int64_t(n_logits), state_bytes);
  if (b.size() < expect) bad(std::to_string(b.size()) + " bytes, expected " + std::to_string(expect) + " (truncated)");
  if (b.size() > expect)
    bad(std::to_string(b.size()) + " bytes, expected " + std::to_string(expect) + " (trailing bytes)");
  if (state_bytes < 8) bad("state snapshot of " + std::to_string(state_bytes) + " bytes, truncated");
  if (get<uint64_t>(b.data() + b.size() - 8) !=
      container_sum(b.data(), size_t(expect - 8 - state_bytes), size_t(state_bytes), version))
    bad("checksum mismatch (corrupted)");

  StateBlob s;
  s.fingerprint = get<uint64_t>(b.data() + 16);
  const uint8_t* p = b.data() + kStateBlobHeader;
  s.tokens.resize(n_tokens);
  std::memcpy(s.tokens.data(), p, 4 * n_tokens);
  p += 4 * n_tokens;
  for (size_t i = 0; i < s.tokens.size(); ++i)
    if (s.tokens[i] < 0 || (lim.vocab_size > 0 && s.tokens[i] >= lim.vocab_size))
      bad("token " + std::to_string(i) + " is " + std::to_string(s.tokens[i]) + ", outside the vocabulary");
  s.logits.resize(n_logits);
  if (n_logits) std::memcpy(s.logits.data(), p, 4 * n_logits);
  p += 4 * n_logits;
  for (float v : s.logits)
    if (!std::isfinite(v)) bad("the logits hold NaN or Inf");
  s.state.assign(p, p + state_bytes);
  if (state_bytes < kSnapshotMinBytes || std::memcmp(s.state.data(), kSnapshotMagic, 8) != 0)
    bad("the state snapshot inside is not a retnet snapshot");
  if (get<uint64_t>(s.state.data() + 16) != s.fingerprint)
    bad("the state snapshot inside is of another model than the container names");
  if (get<int64_t>(s.state.data() + 24) != int64_t(n_tokens))
    bad("the state snapshot inside holds " + std::to_string(get<int64_t>(s.state.data() + 24)) + " tokens, not " +
        std::to_string(n_tokens));
  return s;
}

// FNV-1a 128: offset basis and prime from the FNV specification.
StateHasher::StateHasher(uint64_t fingerprint) : hi_(0x6c62272e07bb0142ull), lo_(0x62b821756295c58dull) {
  bytes(&fingerprint, 8);
}

void StateHasher::bytes(const void* p, size_t n) {
  __extension__ typedef unsigned __int128 u128;
  u128 h = (u128(hi_) << 64) | lo_;
  const u128 prime = (u128(1) << 88) | 0x13b;
  const auto* c = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ c[i]) * prime;
  hi_ = uint64_t(h >> 64);
  lo_ = uint64_t(h);
}

void StateHasher::add(int32_t token) { bytes(&token, 4); }

std::string StateHasher::id() const {
  static const char* const hex = "0123456789abcdef";
  std::string s(32, '0');
  for (int i = 0; i < 16; ++i) {
    s[size_t(15 - i)] = hex[(hi_ >> (4 * i)) & 15];
    s[size_t(31 - i)] = hex[(lo_ >> (4 * i)) & 15];
  }
  return s;
}

std::string state_id(uint64_t fingerprint, std::span<const int32_t> tokens) {
  StateHasher h(fingerprint);
  for (int32_t t : tokens) h.add(t);
  return h.id();
}

bool is_state_id(std::string_view s) {
  if (s.size() != 32) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace retnet::serve
