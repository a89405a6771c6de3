#include "model/generation_config.hpp"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/json_file.hpp"
#include "retnet/error.hpp"

namespace retnet {

namespace {
// An integer top_k beyond int32 means the same as the nearest int32 (keep all, or off).
int32_t clamp_to_int32(const nlohmann::json& v) {
  constexpr int64_t lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max();
  if (v.is_number_unsigned()) return int32_t(std::min<uint64_t>(v.get<uint64_t>(), uint64_t(hi)));
  return int32_t(std::clamp<int64_t>(v.get<int64_t>(), lo, hi));
}
}  // namespace

void read_generation_config(const std::string& dir, int64_t vocab_size, ModelInfo& info) {
  const std::filesystem::path p = std::filesystem::path(dir) / "generation_config.json";
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(p, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) throw Error(p.string() + ": cannot access: " + ec.message());
  if (!std::filesystem::exists(st)) return;  // optional file
  // Bounded read and nesting; an unreadable file is reported with its reason, not as invalid JSON.
  const nlohmann::json j = read_json_file(p.string());
  if (!j.is_object()) throw Error(p.string() + ": not a valid JSON object");

  // Sampling defaults: what the file gives with the expected type (HF writes null for unset keys).
  GenerationDefaults& g = info.generation;
  if (j.contains("do_sample") && j["do_sample"].is_boolean()) g.do_sample = j["do_sample"].get<bool>();
  if (j.contains("temperature") && j["temperature"].is_number()) g.temperature = j["temperature"].get<float>();
  if (j.contains("top_k") && j["top_k"].is_number_integer()) g.top_k = clamp_to_int32(j["top_k"]);
  if (j.contains("top_p") && j["top_p"].is_number()) g.top_p = j["top_p"].get<float>();

  // eos_token_id (int or list) joins config.json's: generation stops at any.
  if (!j.contains("eos_token_id") || j["eos_token_id"].is_null()) return;
  const auto& e = j["eos_token_id"];
  std::vector<int64_t> ids;
  if (e.is_number_integer()) ids.push_back(e.get<int64_t>());
  else if (e.is_array())
    for (const auto& x : e) {
      if (!x.is_number_integer()) throw Error(p.string() + ": eos_token_id must hold integers");
      ids.push_back(x.get<int64_t>());
    }
  else throw Error(p.string() + ": eos_token_id must be an integer or a list of integers");
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size)
      throw Error(p.string() + ": eos_token_id " + std::to_string(id) + " is outside the vocabulary");
    if (std::find(info.eos_token_ids.begin(), info.eos_token_ids.end(), id) == info.eos_token_ids.end())
      info.eos_token_ids.push_back(id);
  }
}

}  // namespace retnet
