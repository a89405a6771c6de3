#include "tokenizer/decoder.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "retnet/error.hpp"
#include "tokenizer/json_util.hpp"
#include "tokenizer/normalizer.hpp"
#include "tokenizer/pre_tokenizer.hpp"
#include "tokenizer/unicode.hpp"

namespace retnet::tok {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void parse_into(const nlohmann::json& j, const std::string& where, std::vector<DecoderSpec::Stage>& out) {
  using Stage = DecoderSpec::Stage;
  const std::string type = json_type(j, where, "decoder");
  const std::string ctx = where + ": decoder " + type;
  Stage s{};
  if (type == "Sequence") {
    for (const auto& sub : json_array(j, "decoders", ctx)) parse_into(sub, where, out);
    return;
  } else if (type == "Replace") {
    s.kind = Stage::kReplace;
    s.a = string_pattern(j, ctx);
    s.b = json_string(j, "content", ctx);
  } else if (type == "ByteFallback") {
    s.kind = Stage::kByteFallback;
  } else if (type == "Fuse") {
    s.kind = Stage::kFuse;
  } else if (type == "Strip") {
    s.kind = Stage::kStrip;
    s.a = json_char(j, "content", ctx);
    const int64_t start = json_int(j, "start", 0, ctx), stop = json_int(j, "stop", 0, ctx);
    if (start < 0 || stop < 0) throw Error(ctx + ": negative start/stop");
    s.start = size_t(start);
    s.stop = size_t(stop);
  } else if (type == "Metaspace") {
    s.kind = Stage::kMetaspace;
    s.a = json_char(j, "replacement", ctx);
    const auto scheme = j.find("prepend_scheme");
    if (scheme != j.end() && scheme->is_string()) s.prepend = scheme->get<std::string>() != "never";
    else s.prepend = json_bool(j, "add_prefix_space", true, ctx);
  } else if (type == "ByteLevel") {
    s.kind = Stage::kByteLevel;
  } else {
    throw Error(where + ": unsupported decoder type '" + type +
                "' (supported: Sequence, ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip)");
  }
  out.push_back(std::move(s));
}

}  // namespace

// Rust's ByteFallback: u8::from_str_radix(NN, 16), which also takes lowercase digits and a leading '+'.
int byte_token(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  if (t[3] == '+') return hex_digit(t[4]);
  const int hi = hex_digit(t[3]), lo = hex_digit(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string_view strip_token(std::string_view text, std::string_view content, size_t start, size_t stop) {
  // Character boundaries; an ill-formed subpart (raw bytes from <0xNN> tokens) counts as one
  // character, which is never the content.
  std::vector<std::pair<size_t, size_t>> chars;
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  for (size_t i = 0; i < text.size();) {
    const unicode::Utf8Step st = unicode::decode_utf8(p + i, text.size() - i);
    const size_t len = std::max<size_t>(st.len, 1);
    chars.emplace_back(i, i + len);
    i += len;
  }
  auto is_content = [&](size_t c) { return text.substr(chars[c].first, chars[c].second - chars[c].first) == content; };
  size_t lo = 0, hi = chars.size();
  while (lo < start && lo < chars.size() && is_content(lo)) ++lo;
  for (size_t i = 0; i < stop && hi > 0 && is_content(hi - 1); ++i) --hi;
  if (hi < lo) hi = lo;
  const size_t b = lo < chars.size() ? chars[lo].first : text.size();
  const size_t e = hi > 0 && hi > lo ? chars[hi - 1].second : b;
  return text.substr(b, e - b);
}

DecoderSpec DecoderSpec::parse(const nlohmann::json& j, const std::string& where) {
  DecoderSpec d;
  if (j.is_null()) {
    Stage join{};
    join.kind = Stage::kJoinSpaces;
    d.stages.push_back(join);
    return d;
  }
  parse_into(j, where, d.stages);
  bool fused = false;
  for (Stage& s : d.stages) {
    s.fused_input = fused;
    if (fused && (s.kind == Stage::kByteFallback || s.kind == Stage::kByteLevel))
      throw Error(where + ": decoder " + (s.kind == Stage::kByteLevel ? "ByteLevel" : "ByteFallback") +
                  " after Fuse/ByteLevel is not supported");
    if (s.kind == Stage::kFuse || s.kind == Stage::kByteLevel) fused = true;
  }
  return d;
}

DecodeRun::DecodeRun(const DecoderSpec& spec) : spec_(&spec), st_(spec.stages.size()) {
  for (size_t k = 0; k < st_.size(); ++k) st_[k].lead_left = spec.stages[k].start;
}

void DecodeRun::push(std::string_view token) { feed(0, token, true); }

void DecodeRun::finish() { end(0); }

std::string DecodeRun::take() { return std::exchange(out_, std::string()); }

void DecodeRun::flush_bytes(size_t k) {
  std::string& run = st_[k].held;
  if (run.empty()) return;
  // A run of byte tokens that is not valid UTF-8 as a whole becomes one U+FFFD per byte.
  if (unicode::is_valid_utf8(run)) {
    feed(k + 1, run, true);
  } else {
    for (size_t i = 0; i < run.size(); ++i) feed(k + 1, unicode::kReplacementUtf8, true);
  }
  run.clear();
}

void DecodeRun::feed(size_t k, std::string_view text, bool new_token) {
  if (k == st_.size()) {
    out_.append(text);
    return;
  }
  const DecoderSpec::Stage& sp = spec_->stages[k];
  State& st = st_[k];
  using Stage = DecoderSpec::Stage;
  switch (sp.kind) {
    case Stage::kJoinSpaces: {
      if (st.count++ > 0) out_.push_back(' ');
      feed(k + 1, text, true);
      return;
    }
    case Stage::kFuse:
      feed(k + 1, text, !st.started);
      st.started = true;
      return;
    case Stage::kByteFallback: {
      if (const int b = byte_token(text); b >= 0) {
        st.held.push_back(char(b));
        return;
      }
      flush_bytes(k);
      feed(k + 1, text, true);
      return;
    }
    case Stage::kReplace: {
      if (!sp.fused_input) {
        feed(k + 1, replace_all(text, sp.a, sp.b), true);
        return;
      }
      // Within a fused token, a pattern may straddle pieces: keep back the longest tail that could
      // still grow into a match.
      std::string s = std::exchange(st.held, std::string());
      s.append(text);
      std::string outp;
      size_t pos = 0;
      for (size_t hit; (hit = s.find(sp.a, pos)) != std::string::npos; pos = hit + sp.a.size()) {
        outp.append(s, pos, hit - pos);
        outp.append(sp.b);
      }
      size_t keep = std::min(sp.a.size() - 1, s.size() - pos);
      while (keep > 0 && s.compare(s.size() - keep, keep, sp.a, 0, keep) != 0) --keep;
      outp.append(s, pos, s.size() - pos - keep);
      st.held = s.substr(s.size() - keep);
      feed(k + 1, outp, new_token);
      return;
    }
    case Stage::kMetaspace: {
      const bool first = sp.fused_input || st.count == 0;
      if (!sp.fused_input) ++st.count;
      // Every replacement character of the first token disappears, the others become spaces.
      std::string r;
      r.reserve(text.size());
      for (size_t pos = 0;;) {
        const size_t hit = text.find(sp.a, pos);
        r.append(text.substr(pos, hit == std::string_view::npos ? std::string_view::npos : hit - pos));
        if (hit == std::string_view::npos) break;
        if (!(first && sp.prepend)) r.push_back(' ');
        pos = hit + sp.a.size();
      }
      feed(k + 1, r, new_token);
      return;
    }
    case Stage::kStrip: {
      if (!sp.fused_input) {
        feed(k + 1, strip_token(text, sp.a, sp.start, sp.stop), true);
        return;
      }
      std::string r;
      for (size_t i = 0; i < text.size();) {
        const size_t b = i;
        unicode::next_cp(text, i);
        const std::string_view ch = text.substr(b, i - b);
        const bool content = ch == sp.a;
        if (!st.lead_done) {
          if (content && st.lead_left > 0) {
            --st.lead_left;
            continue;
          }
          st.lead_done = true;
        }
        if (sp.stop == 0) {
          r.append(ch);
        } else if (content) {
          if (++st.count > sp.stop) {  // more trailing candidates than can be cut: release one
            r.append(sp.a);
            --st.count;
          }
        } else {
          for (; st.count > 0; --st.count) r.append(sp.a);
          r.append(ch);
        }
      }
      feed(k + 1, r, new_token);
      return;
    }
    case Stage::kByteLevel: {
      // Each token maps back to bytes through the byte-level alphabet, or is taken as its own UTF-8
      // bytes if any of its characters is outside that alphabet (an added token like "<|im_start|>"
      // is in it; one with a plain space is not).
      std::string bytes = std::exchange(st.held, std::string());
      const size_t mark = bytes.size();
      bool mapped = true;
      for (size_t i = 0; i < text.size() && mapped;) {
        const int b = char_to_byte(unicode::next_cp(text, i));
        if (b < 0) mapped = false;
        else bytes.push_back(char(b));
      }
      if (!mapped) {
        bytes.resize(mark);
        bytes.append(text);
      }
      // Lossy UTF-8 decoding; a sequence the end of the bytes cuts short waits for the next token.
      std::string r;
      const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
      size_t i = 0;
      while (i < bytes.size()) {
        if (p[i] < 0x80) {
          r.push_back(char(p[i++]));
          continue;
        }
        const unicode::Utf8Step s = unicode::decode_utf8(p + i, bytes.size() - i);
        if (s.status == unicode::Utf8Step::kIncomplete) break;
        if (s.status == unicode::Utf8Step::kOk) r.append(bytes, i, s.len);
        else r.append(unicode::kReplacementUtf8);
        i += s.len;
      }
      st.held = bytes.substr(i);
      feed(k + 1, r, !st.started);
      st.started = true;
      return;
    }
  }
}

void DecodeRun::end(size_t k) {
  if (k == st_.size()) return;
  const DecoderSpec::Stage& sp = spec_->stages[k];
  State& st = st_[k];
  using Stage = DecoderSpec::Stage;
  switch (sp.kind) {
    case Stage::kByteFallback:
      flush_bytes(k);
      break;
    case Stage::kReplace:
      if (!st.held.empty()) feed(k + 1, std::exchange(st.held, std::string()), false);
      break;
    case Stage::kStrip:
      st.count = 0;  // the held trailing content characters are the ones Strip removes
      break;
    case Stage::kByteLevel:
      if (!st.held.empty()) {
        st.held.clear();
        feed(k + 1, unicode::kReplacementUtf8, !st.started);
      }
      break;
    default:
      break;
  }
  end(k + 1);
}

}  // namespace retnet::tok
