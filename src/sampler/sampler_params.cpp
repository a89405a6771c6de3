// SamplerParams::validate and the stage-order parser.
#include <cctype>
#include <cmath>
#include <sstream>
#include <string>

#include "retnet/error.hpp"
#include "retnet/sampler.hpp"

namespace retnet {

namespace {

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

[[noreturn]] void bad(const char* field, const std::string& rule, double got) {
  throw Error(std::string("sampler parameter ") + field + ": must be " + rule + ", got " + fmt(got));
}

constexpr SamplerStage kAllStages[] = {SamplerStage::Penalties, SamplerStage::TopK, SamplerStage::TopP,
                                       SamplerStage::MinP, SamplerStage::Temperature};

constexpr const char* kOrderHelp =
    "(names: penalties, top_k, top_p, min_p, temperature separated by ';' or ','; "
    "or letters e, k, p, m, t)";

bool name_to_stage(std::string_view name, SamplerStage& out) {
  for (SamplerStage s : kAllStages) {
    if (sampler_stage_name(s) == name) {
      out = s;
      return true;
    }
  }
  return false;
}

bool letter_to_stage(char c, SamplerStage& out) {
  switch (c) {
    case 'e': out = SamplerStage::Penalties; return true;
    case 'k': out = SamplerStage::TopK; return true;
    case 'p': out = SamplerStage::TopP; return true;
    case 'm': out = SamplerStage::MinP; return true;
    case 't': out = SamplerStage::Temperature; return true;
    default: return false;
  }
}

// Throws when a stage appears twice: running a stage twice (e.g. temperature squared, or
// penalties applied twice) is almost surely a slip in a hand-written order.
void check_unique(const std::vector<SamplerStage>& order, const std::string& where) {
  for (size_t i = 0; i < order.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (order[i] == order[j])
        throw Error(where + ": stage '" + std::string(sampler_stage_name(order[i])) + "' appears twice");
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view sampler_stage_name(SamplerStage s) {
  switch (s) {
    case SamplerStage::Penalties: return "penalties";
    case SamplerStage::TopK: return "top_k";
    case SamplerStage::TopP: return "top_p";
    case SamplerStage::MinP: return "min_p";
    case SamplerStage::Temperature: return "temperature";
  }
  return "?";
}

void SamplerParams::validate() const {
  // Each check is written so that NaN fails it (comparisons with NaN are false).
  if (!(std::isfinite(temperature) && temperature <= 100.0f))
    bad("temperature", "finite and <= 100 (<= 0 means greedy)", temperature);
  if (!(top_p > 0.0f && top_p <= 1.0f)) bad("top_p", "in (0, 1]", top_p);
  if (!(min_p >= 0.0f && min_p <= 1.0f)) bad("min_p", "in [0, 1]", min_p);
  if (!(repeat_penalty > 0.0f && repeat_penalty <= 100.0f)) bad("repeat_penalty", "in (0, 100]", repeat_penalty);
  if (!(frequency_penalty >= -100.0f && frequency_penalty <= 100.0f))
    bad("frequency_penalty", "in [-100, 100]", frequency_penalty);
  if (!(presence_penalty >= -100.0f && presence_penalty <= 100.0f))
    bad("presence_penalty", "in [-100, 100]", presence_penalty);
  if (repeat_last_n < -1) bad("repeat_last_n", ">= -1 (-1 = whole history, 0 = off)", repeat_last_n);
  for (SamplerStage s : order) {
    if (static_cast<unsigned>(s) > static_cast<unsigned>(SamplerStage::Temperature))
      throw Error("sampler parameter order: unknown stage value " + std::to_string(static_cast<int>(s)));
  }
  check_unique(order, "sampler parameter order");
  // top_k needs no check: every int32 has a meaning (<= 0 disables it).
}

std::vector<SamplerStage> parse_sampler_order(std::string_view text) {
  // Built by appending: GCC 12 warns falsely (-Wrestrict) on "'" + std::string(...).
  std::string quoted(1, '\'');
  quoted.append(text).push_back('\'');
  std::string_view body = trim(text);
  if (body.empty()) throw Error("sampler order: empty " + std::string(kOrderHelp));

  std::vector<SamplerStage> order;
  const bool has_sep = body.find_first_of(";,") != std::string_view::npos;
  std::string word;
  SamplerStage s{};
  if (!has_sep) {
    word.assign(body);
    for (char& c : word) c = (c == '-') ? '_' : char(std::tolower(static_cast<unsigned char>(c)));
    if (name_to_stage(word, s)) return {s};
    // Not a name: llama.cpp's one-letter form ("kpmt").
    for (char c : body) {
      if (!letter_to_stage(c, s))
        throw Error("sampler order " + quoted + ": unknown stage '" + std::string(body) + "' " + kOrderHelp);
      order.push_back(s);
    }
  } else {
    size_t pos = 0;
    while (pos <= body.size()) {
      size_t end = body.find_first_of(";,", pos);
      if (end == std::string_view::npos) end = body.size();
      std::string_view item = trim(body.substr(pos, end - pos));
      if (item.empty()) throw Error("sampler order " + quoted + ": empty stage name " + kOrderHelp);
      word.assign(item);
      for (char& c : word) c = (c == '-') ? '_' : char(std::tolower(static_cast<unsigned char>(c)));
      if (!name_to_stage(word, s))
        throw Error("sampler order " + quoted + ": unknown stage '" + std::string(item) + "' " + kOrderHelp);
      order.push_back(s);
      pos = end + 1;
    }
  }
  check_unique(order, "sampler order " + quoted);
  return order;
}

}  // namespace retnet
