// Session state snapshots: a small versioned binary format.
//
//   offset  size  field
//   0       8     magic "RETNETST"
//   8       4     format version (3; version 2 ended in FNV-1a 64 and is still read; version 1 had no
//                 token digest)
//   12      4     state dtype (0 = f32)
//   16      8     model fingerprint (ModelInfo::fingerprint)
//   24      8     position (tokens absorbed)
//   32      16    L, H, dk, dv (u32 each)
//   48      8     token digest: count of the tokens it covers (== position when the history is known)
//   56      16    token digest: 128-bit hash of those token ids (token_digest.hpp)
//   72      4·H   torchscale recursion scalars s_n (f32)
//   ...     4·L·H·dk·dv   states, layer-major [L][H][dk][dv] f32 (also for f16 states: widened
//                 exactly on save, rounded to nearest on load)
//   end-8   8     hash_words(every byte before it, seed 0) (common/hash_words.hpp): a checksum that
//                 keeps up with memory (byte-wise FNV-1a, version 2's, ran at ~1 byte per cycle: 25 ms
//                 for each save and load of a 125m state, paid by `retnet serve` at every cache hit
//                 and every reply's snapshot, on the thread that drives the decode steps)
// All little-endian (the only byte order this engine builds for).
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/hash_words.hpp"
#include "retnet/atomic_write.hpp"
#include "runtime/session_impl.hpp"

namespace retnet {

namespace {
constexpr char kMagic[8] = {'R', 'E', 'T', 'N', 'E', 'T', 'S', 'T'};
constexpr uint32_t kVersion = 3;
constexpr uint32_t kVersionFnv = 2;  // read, not written: the same layout with an FNV-1a 64 checksum
constexpr size_t kHeader = 72;
// Positions only grow by the tokens absorbed, so no real snapshot comes near this; a larger stored
// position (from a forged snapshot with a valid checksum) would make the next step's pos + T
// overflow int64 (undefined behaviour, found by tests/fuzz/state_snapshot).
constexpr int64_t kMaxPosition = int64_t(1) << 62;
// The smallest magnitude that rounds to an infinite f16 (nearest even): 65504 + half an ulp (16).
constexpr float kF16Overflow = 65520.0f;

// Size of a snapshot of a model of this shape.
size_t snapshot_bytes(const ModelConfig& c) {
  const size_t per_layer = size_t(c.n_heads * c.head_dk * c.head_dv);
  return kHeader + 4 * size_t(c.n_heads) + 4 * per_layer * size_t(c.n_layers) + 8;
}

void put_bytes(std::vector<uint8_t>& out, const void* p, size_t n) {
  const size_t o = out.size();
  out.resize(o + n);
  std::memcpy(out.data() + o, p, n);
}
template <class T>
void put(std::vector<uint8_t>& out, const T& v) {
  put_bytes(out, &v, sizeof(T));
}
template <class T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
}  // namespace

std::vector<uint8_t> Session::save_state() const {
  const Impl& s = live();
  const std::lock_guard<std::mutex> lk(s.be.exclusive());  // to_host may use the backend's stream
  const ModelConfig& c = s.c;
  const size_t per_layer = size_t(c.n_heads * c.head_dk * c.head_dv);
  std::vector<uint8_t> out;
  out.reserve(kHeader + 4 * size_t(c.n_heads) + 4 * per_layer * size_t(c.n_layers) + 8);
  put_bytes(out, kMagic, 8);
  put(out, kVersion);
  put(out, uint32_t(0));
  put(out, s.m.desc.fingerprint);
  put(out, s.pos);
  for (int64_t d : {c.n_layers, c.n_heads, c.head_dk, c.head_dv}) put(out, uint32_t(d));
  put(out, s.history.count);
  put(out, s.history.h[0]);
  put(out, s.history.h[1]);
  for (float v : s.ts_scale) put(out, v);
  std::vector<float> host(per_layer);
  for (float* st : s.states) {
    // f16 states (host backends only) are widened exactly: the snapshot format stays fp32.
    if (s.m.state_f16) s.be.widen_f16(host.data(), st, per_layer);
    else s.be.to_host(host.data(), st, per_layer);
    put_bytes(out, host.data(), per_layer * 4);
  }
  put(out, hash_words(out.data(), out.size(), 0));
  return out;
}

void Session::load_state(std::span<const uint8_t> b) {
  Impl& s = live();
  const ModelConfig& c = s.c;
  const size_t per_layer = size_t(c.n_heads * c.head_dk * c.head_dv);
  const size_t expect = snapshot_bytes(c);
  if (b.size() < 8 || std::memcmp(b.data(), kMagic, 8) != 0) throw Error("state snapshot: not a retnet state (bad magic)");
  if (b.size() < kHeader)
    throw Error("state snapshot: " + std::to_string(b.size()) + " bytes, truncated inside the " +
                std::to_string(kHeader) + "-byte header");
  const uint32_t version = get<uint32_t>(b.data() + 8);
  if (version != kVersion && version != kVersionFnv)
    throw Error("state snapshot: format version " + std::to_string(version) + " is not supported (this build reads " +
                std::to_string(kVersionFnv) + " and " + std::to_string(kVersion) + ")");
  if (get<uint32_t>(b.data() + 12) != 0) throw Error("state snapshot: unsupported state dtype");
  if (get<uint64_t>(b.data() + 16) != s.m.desc.fingerprint)
    throw Error("state snapshot: saved from a different model (fingerprint mismatch)");
  const uint32_t dims[4] = {get<uint32_t>(b.data() + 32), get<uint32_t>(b.data() + 36), get<uint32_t>(b.data() + 40),
                            get<uint32_t>(b.data() + 44)};
  if (dims[0] != c.n_layers || dims[1] != c.n_heads || dims[2] != c.head_dk || dims[3] != c.head_dv)
    throw Error("state snapshot: shape does not match this model");
  if (b.size() != expect)
    throw Error("state snapshot: " + std::to_string(b.size()) + " bytes, expected " + std::to_string(expect) +
                " (truncated or padded)");
  const uint64_t sum = version == kVersionFnv ? fnv1a(b.data(), expect - 8) : hash_words(b.data(), expect - 8, 0);
  if (get<uint64_t>(b.data() + expect - 8) != sum) throw Error("state snapshot: checksum mismatch (corrupted)");
  const int64_t pos = get<int64_t>(b.data() + 24);
  if (pos < 0) throw Error("state snapshot: negative position");
  if (pos > kMaxPosition)
    throw Error("state snapshot: position " + std::to_string(pos) + " is beyond 2^62 tokens (forged or corrupted)");
  // A NaN or Inf would poison every later token (a checksum recomputed over a forged or damaged state
  // passes): refused before anything is committed.
  const uint8_t* const values = b.data() + kHeader;
  for (size_t h = 0; h < size_t(c.n_heads); ++h)
    if (const float v = get<float>(values + 4 * h); !std::isfinite(v))
      throw Error("state snapshot: the scale of head " + std::to_string(h) + " is " + (std::isnan(v) ? "NaN" : "Inf") +
                  " (damaged or forged)");
  for (size_t l = 0; l < size_t(c.n_layers); ++l) {
    const uint8_t* layer = values + 4 * size_t(c.n_heads) + 4 * per_layer * l;
    for (size_t i = 0; i < per_layer; ++i)
      if (const float v = get<float>(layer + 4 * i); !std::isfinite(v))
        throw Error("state snapshot: the state of layer " + std::to_string(l) + " holds " +
                    (std::isnan(v) ? "NaN" : "Inf") + " at element " + std::to_string(i) + " (damaged or forged)");
      else if (s.m.state_f16 && std::fabs(v) >= kF16Overflow)
        throw Error("state snapshot: the state of layer " + std::to_string(l) + " holds " + std::to_string(v) +
                    " at element " + std::to_string(i) +
                    ", beyond the range of this model's f16 states (load the model with state dtype f32)");
  }
  // Validated: now commit (no partial update on error above).
  const std::lock_guard<std::mutex> lk(s.be.exclusive());
  const uint8_t* p = values;
  for (auto& v : s.ts_scale) {
    v = get<float>(p);
    p += 4;
  }
  std::vector<float> host(per_layer);
  for (float* st : s.states) {
    std::memcpy(host.data(), p, per_layer * 4);
    if (s.m.state_f16) s.be.narrow_f16(st, host.data(), per_layer);  // rounded to nearest, in range (checked)
    else s.be.from_host(st, host.data(), per_layer);
    p += per_layer * 4;
  }
  s.be.synchronize();  // every call leaves the state complete (batches of other sessions read it)
  s.pos = pos;
  s.history.count = get<uint64_t>(b.data() + 48);
  s.history.h[0] = get<uint64_t>(b.data() + 56);
  s.history.h[1] = get<uint64_t>(b.data() + 64);
  s.logits_host.clear();  // a snapshot holds no logits; leave none from before it visible
}

void Session::save_state_file(const std::string& path) const {
  const std::vector<uint8_t> bytes = save_state();
  // Through a synced temporary renamed into place (or in place for a device or FIFO): a reader sees
  // the old snapshot or the new one, never part of one; links are followed (atomic_write.hpp).
  write_file_atomically(path, bytes, "state snapshot");
}

void Session::load_state_file(const std::string& path) {
  const Impl& s = live();
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, expected a state snapshot");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open state snapshot: " + std::strerror(errno));
  // Never more than one byte past what a snapshot of this model holds: a huge file is refused by
  // load_state as padded without being read into memory whole.
  const size_t limit = snapshot_bytes(s.c) + 1;
  std::vector<uint8_t> bytes(limit);
  in.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(limit));
  if (in.bad()) throw Error(path + ": reading the state snapshot failed");
  bytes.resize(size_t(in.gcount()));
  try {
    load_state(bytes);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

}  // namespace retnet
