// The raw bytes of one token: the decoder stages applied to that token alone.
//
// decode() runs the stages over the whole id list and repairs the bytes into valid UTF-8 (ByteLevel
// and ByteFallback output U+FFFD for ill-formed or cut-off sequences). A streaming caller that wants
// the bytes themselves (to buffer them its own way, or to hash them) needs what each token adds before
// that repair; this is it. Stages that depend on neighbouring tokens are applied as for a token in
// the middle of a sequence, except the start-of-sequence rules, which `first` selects.
#include "tokenizer/decoder.hpp"
#include "tokenizer/normalizer.hpp"
#include "tokenizer/pre_tokenizer.hpp"
#include "tokenizer/unicode.hpp"

namespace retnet::tok {

std::string token_bytes(const DecoderSpec& spec, std::string_view token, bool first) {
  using Stage = DecoderSpec::Stage;
  std::string s(token);
  for (const Stage& sp : spec.stages) {
    switch (sp.kind) {
      case Stage::kJoinSpaces:  // no decoder: tokens are joined with one space
        if (!first) s.insert(0, 1, ' ');
        break;
      case Stage::kFuse:
        break;
      case Stage::kByteFallback:
        // The byte itself, even when it is only part of a character.
        if (const int b = byte_token(s); b >= 0) s.assign(1, char(b));
        break;
      case Stage::kReplace:
        s = replace_all(s, sp.a, sp.b);
        break;
      case Stage::kStrip:
        // Before Fuse Strip acts on every token; after it, on the fused text, whose start only the
        // first token can hold (its end is the end of the sequence, which no single token knows).
        if (!sp.fused_input) s = std::string(strip_token(s, sp.a, sp.start, sp.stop));
        else if (first) s = std::string(strip_token(s, sp.a, sp.start, 0));
        break;
      case Stage::kMetaspace: {
        // After Fuse the whole text is "the first token" to Rust's Metaspace.
        const bool drop = sp.prepend && (first || sp.fused_input);
        s = replace_all(s, sp.a, drop ? "" : " ");
        break;
      }
      case Stage::kByteLevel: {
        // Back through the byte-level alphabet; a token with a character outside it (an added token
        // holding a plain space) stands for its own UTF-8 bytes, as in DecodeRun.
        std::string bytes;
        bytes.reserve(s.size());
        const auto* p = reinterpret_cast<const uint8_t*>(s.data());
        bool mapped = true;
        for (size_t i = 0; i < s.size() && mapped;) {
          const unicode::Utf8Step st = unicode::decode_utf8(p + i, s.size() - i);
          const int b = st.status == unicode::Utf8Step::kOk ? char_to_byte(st.cp) : -1;
          if (b < 0) mapped = false;
          else bytes.push_back(char(b));
          i += st.len;
        }
        if (mapped) s = std::move(bytes);
        break;
      }
    }
  }
  return s;
}

}  // namespace retnet::tok
