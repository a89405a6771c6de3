// Fuzz target: decode_state_blob (tools/serve/state_blob.hpp), the parser of `retnet serve`'s state
// imports (PUT /v1/states/{id}) and --cache-dir files, on arbitrary bytes.
//
// Input: byte 0 holds flags, the rest is the blob. Flag bit 0 recomputes the trailing checksum, so
// that mutated blobs also get past it and exercise the checks after it (a fuzzer would essentially
// never forge a 64-bit hash); bit 1 decodes with a vocabulary bound of 64 (else none). Invariants:
//  * decode throws retnet::Error, or
//  * it succeeds, and then the parts obey the limits (at least one token, at most max_tokens, ids
//    in range, logits finite and of the vocabulary's size) and encoding them gives back exactly the
//    input bytes (the format has one encoding for each content; a version 1 input comes back as
//    version 2).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_check.hpp"
#include "retnet/error.hpp"
#include "serve/state_blob.hpp"

namespace {
// The trailing checksum of the blob's version (state_blob.hpp): version 1, FNV-1a 64 of every byte
// before it; version 2, of the bytes before the snapshot and then of the snapshot's last 8 bytes
// (when the header's state size leaves room for them; otherwise as version 1: such a blob is refused
// before its checksum is looked at).
void seal(std::vector<uint8_t>& b) {
  uint64_t sb = 0;
  if (b.size() >= 48) std::memcpy(&sb, b.data() + 40, 8);
  const bool split =
      b.size() >= 56 && b[8] == 2 && b[9] == 0 && b[10] == 0 && b[11] == 0 && sb >= 8 && sb <= b.size() - 56;
  const size_t head = split ? b.size() - 8 - size_t(sb) : b.size() - 8;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < head; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  if (split)
    for (size_t i = b.size() - 16; i < b.size() - 8; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  std::memcpy(b.data() + b.size() - 8, &h, 8);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::vector<uint8_t> b(data + 1, data + size);
  if ((flags & 1) && b.size() >= 8) seal(b);
  retnet::serve::StateBlobLimits lim;
  lim.max_tokens = 4096;
  lim.vocab_size = (flags & 2) ? 64 : 0;
  retnet::serve::StateBlob s;
  try {
    s = retnet::serve::decode_state_blob(b, lim);
  } catch (const retnet::Error&) {
    return 0;
  }
  FUZZ_CHECK(!s.tokens.empty() && int64_t(s.tokens.size()) <= lim.max_tokens, "%zu tokens", s.tokens.size());
  for (int32_t t : s.tokens) FUZZ_CHECK(t >= 0 && (lim.vocab_size == 0 || t < lim.vocab_size), "token %d", t);
  FUZZ_CHECK(lim.vocab_size == 0 || s.logits.empty() || int64_t(s.logits.size()) == lim.vocab_size, "%zu logits",
             s.logits.size());
  for (float v : s.logits) FUZZ_CHECK(std::isfinite(v), "a logit is not finite");
  // Version 1 blobs are read, and written again as version 2: the same bytes but for the version and
  // the checksum.
  std::vector<uint8_t> current = b;
  if (current[8] == 1) {
    current[8] = 2;
    seal(current);
  }
  FUZZ_CHECK(retnet::serve::encode_state_blob(s.fingerprint, s.tokens, s.logits, s.state) == current,
             "encoding the decoded parts does not give the input back");
  return 0;
}
