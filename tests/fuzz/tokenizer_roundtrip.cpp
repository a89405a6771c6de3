// Fuzz target: encode arbitrary bytes, or decode arbitrary ids, with fixed tokenizers loaded once
// (the bundled model's byte-level BPE and the tokenizer fixtures of tests/data/tokenizers).
//
// Input: byte 0 picks the tokenizer (low 3 bits) and the mode (bit 7: the rest is a list of ids,
// two bytes each; otherwise the rest is text). Invariants checked:
//  * encode never throws for any bytes; invalid UTF-8 is repaired as documented (each maximal
//    ill-formed subsequence → U+FFFD), so for a lossless (byte-level) tokenizer
//    decode(encode(x)) == x for valid UTF-8 and == sanitize_utf8(x) otherwise;
//  * every encoded id is in the vocabulary;
//  * decode of any ids (unknown ones included) is valid UTF-8, and the StreamDecoder's pushes plus
//    flush concatenate to exactly decode() — with and without skipping special tokens.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "retnet/error.hpp"
#include "retnet/tokenizer.hpp"
#include "tokenizer/unicode.hpp"

#ifndef RETNET_TEST_DATA
#error "RETNET_TEST_DATA must name tests/data"
#endif
#ifndef RETNET_MODEL_DIR
#error "RETNET_MODEL_DIR must name models/kjv-retnet"
#endif

namespace {

struct Fixture {
  const char* path;
  bool lossless;  // decode(encode(x)) == x (byte-level, no normalizer)
};

const Fixture kFixtures[] = {
    {RETNET_MODEL_DIR, true},
    {RETNET_TEST_DATA "/tokenizers/bytelevel", true},
    {RETNET_TEST_DATA "/tokenizers/neox_llama3", false},
    {RETNET_TEST_DATA "/tokenizers/spm_llama", false},
    {RETNET_TEST_DATA "/tokenizers/spm_metaspace", false},
    {RETNET_TEST_DATA "/tokenizers/spm_first", false},
    {RETNET_TEST_DATA "/tokenizers/spm_fused", false},
    {RETNET_TEST_DATA "/tokenizers/misc", false},
};
constexpr size_t kCount = sizeof kFixtures / sizeof kFixtures[0];
static_assert(kCount == 8, "byte 0's low 3 bits pick the fixture");

const std::vector<retnet::Tokenizer>& tokenizers() {
  static const std::vector<retnet::Tokenizer> all = [] {
    std::vector<retnet::Tokenizer> v;
    for (const Fixture& f : kFixtures) v.push_back(retnet::Tokenizer::load(f.path));
    return v;
  }();
  return all;
}

void check_decoders(const retnet::Tokenizer& tok, const std::vector<int32_t>& ids) {
  for (bool skip : {false, true}) {
    const std::string whole = tok.decode(ids, skip);
    FUZZ_CHECK(retnet::unicode::is_valid_utf8(whole), "decode produced invalid UTF-8");
    auto stream = tok.stream_decoder(skip);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    FUZZ_CHECK(streamed == whole, "stream decode (%zu bytes) != decode (%zu bytes), skip_special=%d", streamed.size(),
               whole.size(), int(skip));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t which = data[0] & 7;
  const retnet::Tokenizer& tok = tokenizers()[which];
  const bool ids_mode = data[0] & 0x80;
  data += 1;
  size -= 1;
  if (ids_mode) {
    // Ids spread over the vocabulary plus a margin of unknown ones on both sides.
    std::vector<int32_t> ids;
    const int32_t span = tok.vocab_size() + 16;
    for (size_t i = 0; i + 1 < size; i += 2) ids.push_back(int32_t((data[i] | data[i + 1] << 8) % span) - 8);
    check_decoders(tok, ids);
    return 0;
  }
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<int32_t> ids = tok.encode(text, false);  // documented not to throw for any bytes
  for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < tok.vocab_size(), "encode produced id %d", id);
  const std::vector<int32_t> with_special = tok.encode(text, true);
  FUZZ_CHECK(with_special.size() >= ids.size(), "add_special lost ids");
  check_decoders(tok, ids);
  if (kFixtures[which].lossless && text.find("<mask>") == std::string_view::npos) {  // <mask> lstrips spaces
    const std::string expect =
        retnet::unicode::is_valid_utf8(text) ? std::string(text) : retnet::unicode::sanitize_utf8(text);
    const std::string back = tok.decode(ids, false);
    FUZZ_CHECK(back == expect, "round trip of %zu bytes gave %zu bytes", expect.size(), back.size());
  }
  return 0;
}
