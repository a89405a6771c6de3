// tokenizer.json "decoder": turns token strings back into text.
//
// The Rust decoders work on the whole token list at once; here each one is a streaming stage that
// receives pieces of text and passes pieces on, so that Tokenizer::decode (push everything, finish)
// and Tokenizer::StreamDecoder (push one token at a time) are the same computation and produce the
// same text by construction. A stage sees either whole tokens ("unfused": one piece per token) or,
// after Fuse / ByteLevel, the pieces of a single growing token ("fused"); a stage holds back only what
// later input could still change (a partial UTF-8 sequence, a run of <0xNN> byte tokens, a possible
// start of a Replace pattern, trailing characters Strip may remove).
#pragma once
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace retnet::tok {

class DecoderSpec {
 public:
  // Parses a decoder object; null means no decoder (tokens joined with spaces, as the Rust library
  // does). Supported: Sequence, ByteLevel, Metaspace, Replace (string pattern), ByteFallback, Fuse,
  // Strip. ByteLevel and ByteFallback must come before any Fuse/ByteLevel. Others throw retnet::Error.
  static DecoderSpec parse(const nlohmann::json& j, const std::string& where);

  struct Stage {
    enum Kind : uint8_t { kReplace, kByteFallback, kFuse, kStrip, kMetaspace, kByteLevel, kJoinSpaces } kind;
    bool fused_input = false;  // receives pieces of one fused token instead of whole tokens
    std::string a, b;          // Replace: pattern, content. Strip: content. Metaspace: replacement.
    size_t start = 0, stop = 0;  // Strip
    bool prepend = true;         // Metaspace: prepend_scheme != never
  };
  std::vector<Stage> stages;
};

// The byte a "<0xNN>" token stands for (Rust ByteFallback's reading of it), or -1.
int byte_token(std::string_view token);
// Rust's Strip decoder on one token: up to `start` leading and `stop` trailing `content` characters.
std::string_view strip_token(std::string_view text, std::string_view content, size_t start, size_t stop);

// The raw bytes one token contributes to decode() (Tokenizer::token_bytes; token_bytes.cpp): the
// token string through every stage on its own, without the UTF-8 repair of ByteLevel/ByteFallback.
// `first`: the token opens the decoded sequence (SentencePiece-style stages drop its leading space).
std::string token_bytes(const DecoderSpec& spec, std::string_view token, bool first);

// One decoding pass: push token strings, then finish; take() returns the text produced so far.
class DecodeRun {
 public:
  explicit DecodeRun(const DecoderSpec& spec);
  void push(std::string_view token);
  void finish();
  std::string take();

 private:
  struct State {
    std::string held;          // Replace: possible pattern start. ByteFallback: run bytes. ByteLevel: partial UTF-8
    size_t count = 0;          // tokens seen (Metaspace, JoinSpaces), held content chars (Strip)
    size_t lead_left = 0;      // Strip: leading content chars still to remove
    bool lead_done = false;    // Strip: past the leading run
    bool started = false;      // Fuse / ByteLevel: first piece emitted
  };
  void feed(size_t k, std::string_view text, bool new_token);
  void end(size_t k);
  void flush_bytes(size_t k);

  const DecoderSpec* spec_;
  std::vector<State> st_;
  std::string out_;
};

}  // namespace retnet::tok
