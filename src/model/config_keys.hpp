// Typed, bounded reads of config.json keys, each failure an Error naming the file and the key; shared
// by the family files (family_*.cpp), which read their own keys with it.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/config.hpp"
#include "retnet/error.hpp"

namespace retnet {

// Bounds on sizes, far above any released RetNet (widths are ≤ 16K, heads ≤ 64, layers ≤ 128), that
// keep hostile configs from doing harm before a weight is read: the rotation tables are built from
// the config alone (a decoder_embed_dim of 2^31 made parsing allocate 12 GB), and the loader and
// sessions multiply these sizes (L·H·dk·dv, T·vocab) in int64, which stays far from overflow with them.
inline constexpr int64_t kMaxWidth = int64_t(1) << 20;   // hidden, key/value dim, FFN dim
inline constexpr int64_t kMaxLayers = int64_t(1) << 16;  // layers, heads

class ConfigKeys {
 public:
  ConfigKeys(const nlohmann::json& j, std::string path) : j_(j), path_(std::move(path)) {}

  bool has(const char* k) const { return j_.contains(k) && !j_[k].is_null(); }

  int64_t req_int(const char* k, int64_t min_value = 1, int64_t max_value = int64_t(1) << 31) const {
    if (!has(k)) throw Error(path_ + ": required key '" + k + "' is missing");
    return get_int(k, min_value, max_value);
  }
  int64_t opt_int(const char* k, int64_t def, int64_t min_value = 0) const {
    return has(k) ? get_int(k, min_value, int64_t(1) << 31) : def;
  }
  double opt_num(const char* k, double def) const {
    if (!has(k)) return def;
    if (!j_[k].is_number()) throw Error(path_ + ": key '" + std::string(k) + "' must be a number");
    return j_[k].get<double>();
  }
  bool opt_bool(const char* k, bool def) const {
    if (!has(k)) return def;
    if (!j_[k].is_boolean()) throw Error(path_ + ": key '" + std::string(k) + "' must be true or false");
    return j_[k].get<bool>();
  }
  std::string opt_str(const char* k, const std::string& def) const {
    if (!has(k)) return def;
    if (!j_[k].is_string()) throw Error(path_ + ": key '" + std::string(k) + "' must be a string");
    return j_[k].get<std::string>();
  }
  [[noreturn]] void unsupported(const std::string& k, const std::string& why) const {
    throw Error(path_ + ": unsupported option '" + k + "': " + why);
  }
  std::vector<int64_t> int_list(const char* k) const;
  const std::string& path() const { return path_; }

 private:
  int64_t get_int(const char* k, int64_t min_value, int64_t max_value) const;
  const nlohmann::json& j_;
  std::string path_;
};

// "swish"/"silu" or "gelu"; anything else is refused as an unsupported value of `key`.
Activation parse_activation(const ConfigKeys& c, const char* key, const std::string& v);
// Error "<path>: key '<key>' must be in [0, 1]" unless 0 <= eps <= 1.
void check_eps(const ConfigKeys& c, const char* key, double eps);

}  // namespace retnet
