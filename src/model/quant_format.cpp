#include "model/quant_format.hpp"

#include <nlohmann/json.hpp>

#include "common/quant.hpp"
#include "retnet/error.hpp"

namespace retnet {

using json = nlohmann::json;

std::map<std::string, QuantEntry> parse_quant_metadata(const std::string& path, const std::string& text,
                                                       const std::string* version) {
  const std::string where = path + ": __metadata__ '" + kQuantMetaKey + "'";
  if (!version) throw Error(path + ": __metadata__ has '" + kQuantMetaKey + "' but no '" + kQuantVersionKey + "'");
  if (*version != std::to_string(kQuantFormatVersion))
    throw Error(path + ": __metadata__ '" + kQuantVersionKey + "' is '" + *version + "'; this build reads version " +
                std::to_string(kQuantFormatVersion) + " (a newer retnet wrote it?)");
  json j;
  try {
    // The safetensors header around it is already bounded and depth-checked; this is a string within.
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(where + " is not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw Error(where + " is not a JSON object of tensor name -> [type, rows, cols]");
  std::map<std::string, QuantEntry> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string at = where + ": tensor '" + it.key() + "'";
    const json& e = it.value();
    if (!e.is_array() || e.size() != 3 || !e[0].is_string() || !e[1].is_number_unsigned() || !e[2].is_number_unsigned())
      throw Error(at + ": expected [type, rows, cols], got " + e.dump());
    const std::string tn = e[0].get<std::string>();
    const std::optional<DType> t = quant_type_from_name(tn);
    if (!t) throw Error(at + ": unknown quantized type '" + tn + "' (" + quant_type_names() + " are known)");
    QuantEntry q;
    q.type = *t;
    const uint64_t rows = e[1].get<uint64_t>(), cols = e[2].get<uint64_t>();
    if (rows == 0 || cols == 0 || rows > (1ull << 40) || cols > (1ull << 40))
      throw Error(at + ": shape [" + std::to_string(rows) + ", " + std::to_string(cols) + "] is empty or too large");
    q.rows = int64_t(rows), q.cols = int64_t(cols);
    const int64_t be = dtype_traits(q.type).block_elems;
    if (q.cols % be != 0)
      throw Error(at + ": type " + tn + " does not fit shape [" + std::to_string(rows) + ", " + std::to_string(cols) +
                  "]: cols must be a multiple of its block of " + std::to_string(be));
    out.emplace(it.key(), q);
  }
  return out;
}

std::string quant_metadata_text(const std::map<std::string, QuantEntry>& entries) {
  json j = json::object();
  for (const auto& [name, e] : entries) j[name] = json::array({dtype_name(e.type), e.rows, e.cols});
  return j.dump();
}

}  // namespace retnet
