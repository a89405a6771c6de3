// Fuzz target: Session::load_state from arbitrary bytes, against two tiny random-weight models
// (torchscale and fla conventions) built once in memory.
//
// Input: byte 0 holds flags, the rest is the snapshot. Flag bit 0 picks the model, bit 3 its variant
// that keeps f16 states (LoadOptions::state_dtype); bit 1 writes this
// model's fingerprint into the snapshot and bit 2 recomputes its trailing checksum, so that mutated
// snapshots also get past those two gates and exercise what is checked after them (a fuzzer would
// essentially never forge a 64-bit hash). Invariants:
//  * load_state throws retnet::Error and leaves the session unchanged, or
//  * it succeeds, and then the session is usable: save_state() gives back exactly the loaded bytes
//    (a format-2 snapshot comes back as format 3: the same bytes with version 3 and the word-wise
//    checksum; an f16-state session gives back each state value rounded to f16, nearest even),
//    position() is the stored position, and a decode step runs and advances it by one.
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "common/hash_words.hpp"
#include "fuzz_check.hpp"
#include "runtime/model_impl.hpp"
#include "retnet/retnet.hpp"

namespace {

std::shared_ptr<const retnet::Model> make_model(const char* family, bool f16) {
  retnet::RandomModelSpec sp;
  sp.family = family;
  sp.vocab_size = 32;
  sp.hidden_size = 8;
  sp.layers = 2;
  sp.heads = 2;
  sp.value_dim = 8;
  sp.ffn_dim = 16;
  sp.dtype = "f32";
  sp.seed = 7;
  retnet::LoadOptions lo;
  lo.device = retnet::Device::Cpu;
  lo.threads = 1;
  lo.state_dtype = f16 ? "f16" : "f32";
  return retnet::Model::random(sp, lo);
}

// A value as an f16 state holds it (round to nearest even), F16C's conversions, whatever the flags
// this file is compiled with (the library is built with F16C).
__attribute__((target("f16c"))) float f16_round(float v) { return _cvtsh_ss(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT)); }

const std::shared_ptr<const retnet::Model>& model(int which) {
  static const std::shared_ptr<const retnet::Model> models[4] = {
      make_model("torchscale", false), make_model("fla", false), make_model("torchscale", true),
      make_model("fla", true)};
  return models[which];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::vector<uint8_t> snap(data + 1, data + size);
  const auto& m = model((flags & 1) | (flags >> 2 & 2));
  if ((flags & 2) && snap.size() >= 24) {
    const uint64_t fp = m->info().fingerprint;
    std::memcpy(snap.data() + 16, &fp, 8);
  }
  if ((flags & 4) && snap.size() >= 8) {
    const uint64_t sum = snap.size() > 8 && snap[8] == 2 ? retnet::fnv1a(snap.data(), snap.size() - 8)
                                                         : retnet::hash_words(snap.data(), snap.size() - 8, 0);
    std::memcpy(snap.data() + snap.size() - 8, &sum, 8);
  }

  retnet::Session s(m);
  s.decode(3);  // a non-empty state, to see that a refused snapshot leaves it alone
  const std::vector<uint8_t> before = s.save_state();
  try {
    s.load_state(snap);
  } catch (const retnet::Error&) {
    FUZZ_CHECK(s.save_state() == before, "a refused snapshot changed the session");
    FUZZ_CHECK(s.position() == 1, "a refused snapshot changed the position");
    return 0;
  }
  std::vector<uint8_t> expect = snap;
  if (expect[8] == 2 || m->info().state_dtype == "f16") {  // accepted: a header, the values and a checksum
    expect[8] = 3;
    if (m->info().state_dtype == "f16") {
      // The state values (after the 72-byte header and the per-head scales) as f16 holds them.
      const size_t first = 72 + 4 * size_t(m->info().heads);
      for (size_t at = first; at + 8 < expect.size(); at += 4) {
        float v;
        std::memcpy(&v, expect.data() + at, 4);
        v = f16_round(v);
        std::memcpy(expect.data() + at, &v, 4);
      }
    }
    const uint64_t sum = retnet::hash_words(expect.data(), expect.size() - 8, 0);
    std::memcpy(expect.data() + expect.size() - 8, &sum, 8);
  }
  FUZZ_CHECK(s.save_state() == expect, "save_state() after load_state() differs from the loaded bytes");
  int64_t pos = 0;
  std::memcpy(&pos, snap.data() + 24, 8);
  FUZZ_CHECK(s.position() == pos, "position %lld, snapshot says %lld", (long long)s.position(), (long long)pos);
  const std::span<const float> logits = s.decode(5);
  FUZZ_CHECK(int64_t(logits.size()) == m->info().vocab_size, "decode returned %zu logits", logits.size());
  FUZZ_CHECK(uint64_t(s.position()) == uint64_t(pos) + 1, "decode did not advance the position");
  return 0;
}
