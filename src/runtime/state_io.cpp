// Session state snapshots: a small versioned binary format.
//
//   offset  size  field
//   0       8     magic "RETNETST"
//   8       4     format version (1)
//   12      4     state dtype (0 = f32)
//   16      8     model fingerprint
//   24      8     position (tokens absorbed)
//   32      16    L, H, dk, dv (u32 each)
//   48      4·H   torchscale recursion scalars s_n (f32)
//   ...     4·L·H·dk·dv   states, layer-major [L][H][dk][dv] f32
//   end-8   8     FNV-1a 64 of every byte before it
// All little-endian (the only byte order this engine builds for).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "runtime/session_impl.hpp"

namespace retnet {

namespace {
constexpr char kMagic[8] = {'R', 'E', 'T', 'N', 'E', 'T', 'S', 'T'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeader = 48;

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
  const Impl& s = *impl_;
  const ModelConfig& c = s.c;
  const size_t per_layer = size_t(c.n_heads * c.head_dk * c.head_dv);
  std::vector<uint8_t> out;
  out.reserve(kHeader + 4 * size_t(c.n_heads) + 4 * per_layer * size_t(c.n_layers) + 8);
  put_bytes(out, kMagic, 8);
  put(out, kVersion);
  put(out, uint32_t(0));
  put(out, s.m.fingerprint);
  put(out, s.pos);
  for (int64_t d : {c.n_layers, c.n_heads, c.head_dk, c.head_dv}) put(out, uint32_t(d));
  for (float v : s.ts_scale) put(out, v);
  std::vector<float> host(per_layer);
  for (float* st : s.states) {
    s.be.to_host(host.data(), st, per_layer);
    put_bytes(out, host.data(), per_layer * 4);
  }
  put(out, fnv1a(out.data(), out.size()));
  return out;
}

void Session::load_state(std::span<const uint8_t> b) {
  Impl& s = *impl_;
  const ModelConfig& c = s.c;
  const size_t per_layer = size_t(c.n_heads * c.head_dk * c.head_dv);
  const size_t expect = kHeader + 4 * size_t(c.n_heads) + 4 * per_layer * size_t(c.n_layers) + 8;
  if (b.size() < kHeader || std::memcmp(b.data(), kMagic, 8) != 0) throw Error("state snapshot: not a retnet state (bad magic)");
  const uint32_t version = get<uint32_t>(b.data() + 8);
  if (version != kVersion)
    throw Error("state snapshot: format version " + std::to_string(version) + " is not supported (this build reads " +
                std::to_string(kVersion) + ")");
  if (get<uint32_t>(b.data() + 12) != 0) throw Error("state snapshot: unsupported state dtype");
  if (get<uint64_t>(b.data() + 16) != s.m.fingerprint)
    throw Error("state snapshot: saved from a different model (fingerprint mismatch)");
  const uint32_t dims[4] = {get<uint32_t>(b.data() + 32), get<uint32_t>(b.data() + 36), get<uint32_t>(b.data() + 40),
                            get<uint32_t>(b.data() + 44)};
  if (dims[0] != c.n_layers || dims[1] != c.n_heads || dims[2] != c.head_dk || dims[3] != c.head_dv)
    throw Error("state snapshot: shape does not match this model");
  if (b.size() != expect)
    throw Error("state snapshot: " + std::to_string(b.size()) + " bytes, expected " + std::to_string(expect) +
                " (truncated or padded)");
  if (get<uint64_t>(b.data() + expect - 8) != fnv1a(b.data(), expect - 8))
    throw Error("state snapshot: checksum mismatch (corrupted)");
  const int64_t pos = get<int64_t>(b.data() + 24);
  if (pos < 0) throw Error("state snapshot: negative position");
  // Validated: now commit (no partial update on error above).
  const uint8_t* p = b.data() + kHeader;
  for (auto& v : s.ts_scale) {
    v = get<float>(p);
    p += 4;
  }
  std::vector<float> host(per_layer);
  for (float* st : s.states) {
    std::memcpy(host.data(), p, per_layer * 4);
    s.be.from_host(st, host.data(), per_layer);
    p += per_layer * 4;
  }
  s.pos = pos;
}

void Session::save_state_file(const std::string& path) const {
  const std::vector<uint8_t> bytes = save_state();
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot write state snapshot");
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    out.flush();
    if (!out) {
      out.close();
      std::remove(tmp.c_str());
      throw Error(path + ": write failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot move the snapshot into place");
  }
}

void Session::load_state_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, expected a state snapshot");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open state snapshot");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    load_state(bytes);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

}  // namespace retnet
