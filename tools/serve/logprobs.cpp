// Log-probabilities and their JSON (logprobs.hpp).
#include "logprobs.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace retnet::serve {

using json = nlohmann::ordered_json;

namespace {

// Whether a ranks before b: the larger logit first, NaN last, ties by the lower id (deterministic).
bool ranks_before(float a, int32_t ia, float b, int32_t ib) {
  const bool na = std::isnan(a), nb = std::isnan(b);
  if (na != nb) return nb;
  if (!na && a != b) return a > b;
  return ia < ib;
}

float finite_or_impossible(double lp) { return std::isfinite(lp) ? float(lp) : kImpossibleLogprob; }

// The length of the well-formed UTF-8 sequence at s[i], or 0 when it is ill-formed or cut short.
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte (RFC 3629's table)
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else return 0;
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  return n;
}

json bytes_json(std::string_view s) {
  json a = json::array();
  for (char c : s) a.push_back(int(static_cast<unsigned char>(c)));
  return a;
}

}  // namespace

LogSoftmaxTop log_softmax_top(std::span<const float> logits, int32_t chosen, int k) {
  LogSoftmaxTop r;
  const size_t V = logits.size();
  k = std::clamp(k, 0, int(std::min<size_t>(V, size_t(kMaxTopLogprobs))));
  // The log-sum-exp, max subtracted so that no exp overflows; NaN logits take no part.
  float mx = -std::numeric_limits<float>::infinity();
  for (float x : logits)
    if (x > mx) mx = x;
  double sum = 0;
  if (std::isfinite(mx))
    for (float x : logits)
      if (!std::isnan(x)) sum += std::exp(double(x) - double(mx));
  // mx = -inf (every token impossible) or +inf: no finite distribution; everything is "impossible".
  const double lse = std::isfinite(mx) ? double(mx) + std::log(sum) : std::numeric_limits<double>::infinity();
  const auto logprob = [&](int32_t id) { return finite_or_impossible(double(logits[size_t(id)]) - lse); };

  // The top k by insertion into a sorted run of at most k ids: O(V) for k <= 20 in practice, since
  // most logits fall below the run's last and are rejected by one comparison.
  std::vector<int32_t> best;
  best.reserve(size_t(k) + 1);
  for (size_t i = 0; i < V && k > 0; ++i) {
    const int32_t id = int32_t(i);
    if (best.size() == size_t(k) && !ranks_before(logits[i], id, logits[size_t(best.back())], best.back())) continue;
    auto pos = std::upper_bound(best.begin(), best.end(), id, [&](int32_t a, int32_t b) {
      return ranks_before(logits[size_t(a)], a, logits[size_t(b)], b);
    });
    best.insert(pos, id);
    if (best.size() > size_t(k)) best.pop_back();
  }
  for (int32_t id : best) r.top.push_back(TokenLogprob{id, logprob(id), {}});
  r.chosen = chosen >= 0 && size_t(chosen) < V ? logprob(chosen) : kImpossibleLogprob;
  return r;
}

std::string token_display(std::string_view bytes) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes.size();) {
    const size_t n = utf8_sequence(bytes, i);
    if (n > 0) {
      out.append(bytes.substr(i, n));
      i += n;
      continue;
    }
    const unsigned char c = static_cast<unsigned char>(bytes[i++]);
    out += "\\x";
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

size_t utf8_char_index(std::string_view text, size_t byte_offset) {
  const size_t end = std::min(byte_offset, text.size());
  size_t chars = 0;
  for (size_t i = 0; i < end; ++i)
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++chars;
  // Inside a character: the index of that character, which began before the offset.
  if (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80 && chars > 0) --chars;
  return chars;
}

json chat_logprobs_json(const std::vector<LogprobEntry>& entries) {
  json content = json::array();
  for (const LogprobEntry& e : entries) {
    json top = json::array();
    for (const TokenLogprob& t : e.top)
      top.push_back(json{{"token", token_display(t.bytes)}, {"logprob", t.logprob}, {"bytes", bytes_json(t.bytes)}});
    content.push_back(json{{"token", token_display(e.chosen.bytes)},
                           {"logprob", e.chosen.logprob},
                           {"bytes", bytes_json(e.chosen.bytes)},
                           {"top_logprobs", std::move(top)}});
  }
  return json{{"content", std::move(content)}, {"refusal", nullptr}};
}

json completion_logprobs_json(const std::vector<LogprobEntry>& entries, std::string_view text, size_t byte_base,
                              size_t char_base) {
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(),
       text_offset = json::array();
  for (const LogprobEntry& e : entries) {
    tokens.push_back(token_display(e.chosen.bytes));
    const size_t rel = e.offset >= byte_base ? e.offset - byte_base : 0;
    text_offset.push_back(char_base + utf8_char_index(text, rel));
    if (e.unconditioned) {  // echo's first prompt token: null and null, as OpenAI's
      token_logprobs.push_back(nullptr);
      top_logprobs.push_back(nullptr);
      continue;
    }
    token_logprobs.push_back(e.chosen.logprob);
    // An object keyed by token string: two ids with the same string keep the more likely one.
    json top = json::object();
    for (const TokenLogprob& t : e.top) {
      const std::string s = token_display(t.bytes);
      if (!top.contains(s)) top[s] = t.logprob;
    }
    const std::string chosen = token_display(e.chosen.bytes);
    if (!top.contains(chosen)) top[chosen] = e.chosen.logprob;
    top_logprobs.push_back(std::move(top));
  }
  return json{{"tokens", std::move(tokens)},
              {"token_logprobs", std::move(token_logprobs)},
              {"top_logprobs", std::move(top_logprobs)},
              {"text_offset", std::move(text_offset)}};
}

}  // namespace retnet::serve
