#include "tokenizer/pre_tokenizer.hpp"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "retnet/error.hpp"
#include "tokenizer/json_util.hpp"
#include "tokenizer/unicode.hpp"

namespace retnet::tok {
namespace {

struct ByteMap {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_utf8;  // to_char as UTF-8, appended once per input byte
  ByteMap() {
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[size_t(b)] = printable ? char32_t(b) : next++;
      unicode::append_utf8(to_utf8[size_t(b)], to_char[size_t(b)]);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

struct Seg {
  uint32_t begin, end;
  bool match;
};

// Cuts `in` along `segs` (which tile it) as the Rust NormalizedString::split does for `behavior`.
void split_by(const Piece& in, const std::vector<Seg>& segs, PreTokenizer::Behavior behavior, std::vector<Piece>& out) {
  using B = PreTokenizer::Behavior;
  std::vector<std::pair<uint32_t, uint32_t>> parts;
  parts.reserve(segs.size());
  bool prev_match = false;
  switch (behavior) {
    case B::kRemoved:
      for (const Seg& s : segs)
        if (!s.match) parts.emplace_back(s.begin, s.end);
      break;
    case B::kIsolated:
      for (const Seg& s : segs) parts.emplace_back(s.begin, s.end);
      break;
    case B::kContiguous:
      for (const Seg& s : segs) {
        if (s.match == prev_match && !parts.empty()) parts.back().second = s.end;
        else parts.emplace_back(s.begin, s.end);
        prev_match = s.match;
      }
      break;
    case B::kMergedWithPrevious:
      for (const Seg& s : segs) {
        if (s.match && !prev_match && !parts.empty()) parts.back().second = s.end;
        else parts.emplace_back(s.begin, s.end);
        prev_match = s.match;
      }
      break;
    case B::kMergedWithNext:
      // A delimiter joins the piece after it unless that piece is a delimiter too (Rust folds from
      // the end); consecutive delimiters therefore stay one per piece.
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->match && !prev_match && !parts.empty()) parts.back().first = it->begin;
        else parts.emplace_back(it->begin, it->end);
        prev_match = it->match;
      }
      std::reverse(parts.begin(), parts.end());
      break;
  }
  for (const auto& [b, e] : parts) {
    if (b == e) continue;
    out.push_back({in.text.substr(b, e - b), in.at_origin && b == 0});
  }
}

// Segments where every character satisfying `pred` is a one-character match.
template <typename Pred>
void char_segments(const std::string& s, Pred pred, std::vector<Seg>& segs) {
  segs.clear();
  uint32_t last = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t b = i;
    if (pred(unicode::next_cp(s, i))) {
      if (last < b) segs.push_back({last, uint32_t(b), false});
      segs.push_back({uint32_t(b), uint32_t(i), true});
      last = uint32_t(i);
    }
  }
  if (last < s.size()) segs.push_back({last, uint32_t(s.size()), false});
}

void string_segments(const std::string& s, const std::string& pat, std::vector<Seg>& segs) {
  segs.clear();
  size_t pos = 0;
  for (;;) {
    const size_t hit = s.find(pat, pos);
    if (hit == std::string::npos) break;
    if (hit > pos) segs.push_back({uint32_t(pos), uint32_t(hit), false});
    segs.push_back({uint32_t(hit), uint32_t(hit + pat.size()), true});
    pos = hit + pat.size();
  }
  if (pos < s.size()) segs.push_back({uint32_t(pos), uint32_t(s.size()), false});
}

void regex_segments(const std::string& s, SplitRegex kind, std::vector<Seg>& segs) {
  static thread_local std::vector<uint32_t> ends;
  find_split_regex_matches(kind, s, ends);
  segs.clear();
  uint32_t b = 0;
  for (const uint32_t e : ends) {
    segs.push_back({b, e, true});
    b = e;
  }
}

PreTokenizer::Behavior parse_behavior(const std::string& s, const std::string& ctx) {
  using B = PreTokenizer::Behavior;
  if (s == "Removed") return B::kRemoved;
  if (s == "Isolated") return B::kIsolated;
  if (s == "MergedWithPrevious") return B::kMergedWithPrevious;
  if (s == "MergedWithNext") return B::kMergedWithNext;
  if (s == "Contiguous") return B::kContiguous;
  throw Error(ctx + ": unknown split behavior '" + s + "'");
}

void parse_into(const nlohmann::json& j, const std::string& where, std::vector<PreTokenizer::Step>& out) {
  using Step = PreTokenizer::Step;
  const std::string type = json_type(j, where, "pre_tokenizer");
  const std::string ctx = where + ": pre_tokenizer " + type;
  Step st{};
  if (type == "Sequence") {
    for (const auto& sub : json_array(j, "pretokenizers", ctx)) parse_into(sub, where, out);
    return;
  } else if (type == "ByteLevel") {
    st.kind = Step::kByteLevel;
    st.flag_a = json_bool(j, "add_prefix_space", true, ctx);
    st.flag_b = json_bool(j, "use_regex", true, ctx);
  } else if (type == "Metaspace") {
    st.kind = Step::kMetaspace;
    st.text = json_char(j, "replacement", ctx);
    st.flag_a = json_bool(j, "split", true, ctx);
    const auto scheme = j.find("prepend_scheme");
    if (scheme != j.end() && !scheme->is_null()) {
      const std::string s = scheme->is_string() ? scheme->get<std::string>() : "";
      if (s == "always") st.prepend = PreTokenizer::Prepend::kAlways;
      else if (s == "first") st.prepend = PreTokenizer::Prepend::kFirst;
      else if (s == "never") st.prepend = PreTokenizer::Prepend::kNever;
      else throw Error(ctx + ": unknown prepend_scheme " + scheme->dump());
    } else if (!json_bool(j, "add_prefix_space", true, ctx)) {
      st.prepend = PreTokenizer::Prepend::kNever;  // the pre-0.19 spelling of prepend_scheme "never"
    }
  } else if (type == "Split") {
    st.behavior = parse_behavior(json_string(j, "behavior", ctx), ctx);
    st.flag_a = json_bool(j, "invert", false, ctx);
    const auto pat = j.find("pattern");
    if (pat != j.end() && pat->is_object() && pat->contains("Regex")) {
      const auto& re = (*pat)["Regex"];
      const auto kind = re.is_string() ? recognize_split_regex(re.get<std::string>()) : std::nullopt;
      if (!kind)
        throw Error(ctx + ": regex " + re.dump() +
                    " is not supported (only the GPT-2, Llama-3 and Qwen2 patterns are built in)");
      st.kind = Step::kSplitRegex;
      st.regex = *kind;
    } else {
      st.kind = Step::kSplitString;
      st.text = string_pattern(j, ctx);
    }
  } else if (type == "Digits") {
    st.kind = Step::kDigits;
    st.flag_a = json_bool(j, "individual_digits", false, ctx);
  } else if (type == "WhitespaceSplit") {
    st.kind = Step::kWhitespaceSplit;
  } else {
    throw Error(where + ": unsupported pre_tokenizer type '" + type +
                "' (supported: Sequence, ByteLevel, Metaspace, Split, Digits, WhitespaceSplit)");
  }
  out.push_back(std::move(st));
}

void byte_level(const PreTokenizer::Step& st, Piece in, std::vector<Piece>& out) {
  if (st.flag_a && (in.text.empty() || in.text[0] != ' ')) in.text.insert(0, 1, ' ');
  const ByteMap& m = byte_map();
  auto emit = [&](std::string_view s, bool origin) {
    Piece p{{}, origin};
    p.text.reserve(s.size() * 2);
    for (const char c : s) p.text += m.to_utf8[static_cast<uint8_t>(c)];
    out.push_back(std::move(p));
  };
  if (!st.flag_b) {
    emit(in.text, in.at_origin);
    return;
  }
  static thread_local std::vector<uint32_t> ends;
  find_split_regex_matches(SplitRegex::kGpt2, in.text, ends);
  uint32_t b = 0;
  for (const uint32_t e : ends) {
    emit(std::string_view(in.text).substr(b, e - b), in.at_origin && b == 0);
    b = e;
  }
}

std::string replace_spaces(const std::string& s, const std::string& with) {
  std::string r;
  r.reserve(s.size() + s.size() / 2);
  for (const char c : s) {
    if (c == ' ') r += with;
    else r += c;
  }
  return r;
}

void metaspace(const PreTokenizer::Step& st, Piece in, std::vector<Piece>& out) {
  if (in.text.find(' ') != std::string::npos) in.text = replace_spaces(in.text, st.text);
  const bool starts = in.text.compare(0, st.text.size(), st.text) == 0;
  if (!starts && (st.prepend == PreTokenizer::Prepend::kAlways ||
                  (st.prepend == PreTokenizer::Prepend::kFirst && in.at_origin)))
    in.text.insert(0, st.text);
  if (!st.flag_a) {
    out.push_back(std::move(in));
    return;
  }
  std::vector<Seg> segs;
  string_segments(in.text, st.text, segs);
  split_by(in, segs, PreTokenizer::Behavior::kMergedWithNext, out);
}

}  // namespace

char32_t byte_to_char(uint8_t b) { return byte_map().to_char[b]; }

int char_to_byte(char32_t c) {
  static const auto inverse = [] {
    std::array<int16_t, 512> t{};
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[byte_map().to_char[size_t(b)]] = int16_t(b);
    return t;
  }();
  return c < inverse.size() ? inverse[c] : -1;
}

PreTokenizer PreTokenizer::parse(const nlohmann::json& j, const std::string& where) {
  PreTokenizer p;
  if (!j.is_null()) parse_into(j, where, p.steps_);
  return p;
}

void PreTokenizer::apply(Piece in, std::vector<Piece>& out) const {
  if (in.text.empty()) return;
  if (steps_.empty()) {
    out.push_back(std::move(in));
    return;
  }
  std::vector<Piece> cur, next;
  cur.push_back(std::move(in));
  std::vector<Seg> segs;
  for (size_t k = 0; k < steps_.size(); ++k) {
    const Step& st = steps_[k];
    std::vector<Piece>& dst = k + 1 == steps_.size() ? out : next;
    for (Piece& p : cur) {
      switch (st.kind) {
        case Step::kByteLevel: byte_level(st, std::move(p), dst); break;
        case Step::kMetaspace: metaspace(st, std::move(p), dst); break;
        case Step::kSplitString:
        case Step::kSplitRegex:
          if (st.kind == Step::kSplitString) string_segments(p.text, st.text, segs);
          else regex_segments(p.text, st.regex, segs);
          if (st.flag_a)
            for (Seg& s : segs) s.match = !s.match;
          split_by(p, segs, st.behavior, dst);
          break;
        case Step::kDigits:
          char_segments(p.text, unicode::is_numeric_std, segs);
          split_by(p, segs, st.flag_a ? Behavior::kIsolated : Behavior::kContiguous, dst);
          break;
        case Step::kWhitespaceSplit:
          char_segments(p.text, unicode::is_space, segs);
          split_by(p, segs, Behavior::kRemoved, dst);
          break;
      }
    }
    if (&dst == &next) {
      cur.swap(next);
      next.clear();
    }
  }
}

}  // namespace retnet::tok
