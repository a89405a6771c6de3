#include "model/config.hpp"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/json_file.hpp"
#include "model/config_keys.hpp"
#include "model/family.hpp"
#include "retnet/error.hpp"

namespace retnet {

using json = nlohmann::json;

std::vector<int64_t> ConfigKeys::int_list(const char* k) const {
  std::vector<int64_t> v;
  if (!has(k)) return v;
  const json& x = j_[k];
  if (x.is_number_integer()) {
    v.push_back(x.get<int64_t>());
  } else if (x.is_array()) {
    for (const json& e : x) {
      if (!e.is_number_integer()) throw Error(path_ + ": key '" + std::string(k) + "' must hold integers");
      v.push_back(e.get<int64_t>());
    }
  } else {
    throw Error(path_ + ": key '" + std::string(k) + "' must be an integer or a list of integers");
  }
  return v;
}

int64_t ConfigKeys::get_int(const char* k, int64_t min_value, int64_t max_value) const {
  const json& v = j_[k];
  if (!v.is_number_integer()) throw Error(path_ + ": key '" + std::string(k) + "' must be an integer");
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(max_value))  // beyond int64: no wrap-around
    throw Error(path_ + ": key '" + std::string(k) + "' = " + v.dump() + " is out of range [" +
                std::to_string(min_value) + ", " + std::to_string(max_value) + "]");
  int64_t x = v.get<int64_t>();
  if (x < min_value || x > max_value)
    throw Error(path_ + ": key '" + std::string(k) + "' = " + std::to_string(x) + " is out of range [" +
                std::to_string(min_value) + ", " + std::to_string(max_value) + "]");
  return x;
}

Activation parse_activation(const ConfigKeys& c, const char* key, const std::string& v) {
  if (v == "swish" || v == "silu") return Activation::Silu;
  if (v == "gelu") return Activation::Gelu;
  c.unsupported(key, "activation '" + v + "' (swish/silu and gelu are)");
}

void check_eps(const ConfigKeys& c, const char* key, double eps) {
  if (!(eps >= 0.0) || eps > 1.0) throw Error(c.path() + ": key '" + std::string(key) + "' must be in [0, 1]");
}

std::vector<float> theta_linspace(int64_t dk) {
  // torch.linspace(0, 1, n) in fp32 fills the first half from the start and the second half from
  // the end point; then 1 / 10000 ** x, all in fp32 (docs/reference.md §2.2).
  const int64_t n = dk / 2;
  std::vector<float> t(size_t(n), 1.0f);
  if (n == 1) return t;  // linspace(0, 1, 1) = [0]
  const float step = (1.0f - 0.0f) / float(n - 1);
  const int64_t halfway = n / 2;
  for (int64_t i = 0; i < n; ++i) {
    float x = i < halfway ? 0.0f + step * float(i) : 1.0f - step * float(n - i - 1);
    t[size_t(i)] = 1.0f / float(std::pow(10000.0, double(x)));  // pow as torch's (correctly rounded), then fp32 1/x
  }
  return t;
}

std::vector<float> theta_fla(int64_t dk) {
  std::vector<float> t(static_cast<size_t>(dk / 2));
  for (int64_t i = 0; i < dk / 2; ++i) t[size_t(i)] = 1.0f / float(std::pow(10000.0, double(float(2 * i) / float(dk))));
  return t;
}

std::vector<double> theta64_linspace(int64_t dk) {
  const int64_t n = dk / 2;
  std::vector<double> t(size_t(n), 1.0);
  for (int64_t i = 0; n > 1 && i < n; ++i) t[size_t(i)] = std::pow(10000.0, -double(i) / double(n - 1));
  return t;
}

std::vector<double> theta64_fla(int64_t dk) {
  std::vector<double> t(static_cast<size_t>(dk / 2));
  for (int64_t i = 0; i < dk / 2; ++i) t[size_t(i)] = std::pow(10000.0, -double(2 * i) / double(dk));
  return t;
}

std::vector<float> log_decay_default(int64_t H) {
  std::vector<float> d(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) d[size_t(h)] = std::log(1.0f - std::exp2(-5.0f - float(h)));
  return d;
}

std::vector<float> log_decay_lm(int64_t H) {
  // syncdoth use_lm_decay: ln(1 - exp(linspace(ln 1/32, ln 1/512, H))) in fp32.
  const float s = std::log(1.0f / 32.0f), e = std::log(1.0f / 512.0f);
  std::vector<float> d(static_cast<size_t>(H));
  const float step = H > 1 ? (e - s) / float(H - 1) : 0.0f;
  const int64_t halfway = H / 2;
  for (int64_t i = 0; i < H; ++i) {
    float x = (H == 1) ? s : (i < halfway ? s + step * float(i) : e - step * float(H - i - 1));
    d[size_t(i)] = std::log(1.0f - std::exp(x));
  }
  return d;
}

ModelConfig parse_config_text(const std::string& text, const std::string& path) {
  const json j = parse_json_text(text, path);  // nesting bounded before parsing
  if (!j.is_object()) throw Error(path + ": config is not a JSON object");
  ConfigKeys c(j, path);
  const std::string mt = c.opt_str("model_type", "retnet");
  if (mt != "retnet") throw Error(path + ": unknown model_type '" + mt + "' (expected 'retnet')");
  const ModelFamily* family = nullptr;
  std::string hints;
  for (const ModelFamily* f : model_families()) {
    if (!family && f->detect(c)) family = f;
    hints += (hints.empty() ? "" : " or ") + std::string(f->detect_hint);
  }
  if (!family) throw Error(path + ": cannot tell the RetNet family: expected " + hints);
  ModelConfig m = family->parse(c);
  apply_conventions(*family, m);
  m.bos_token_id = c.opt_int("bos_token_id", -1, -1);
  m.eos_token_ids = c.int_list("eos_token_id");
  return m;
}

ModelConfig load_config(const std::string& model_dir) {
  namespace fs = std::filesystem;
  fs::path p = fs::path(model_dir) / "config.json";
  std::error_code ec;
  if (!fs::exists(model_dir, ec)) throw Error(model_dir + ": model directory does not exist");
  if (!fs::is_directory(model_dir, ec)) throw Error(model_dir + ": is not a directory (expected a model directory)");
  // status() rather than exists(): a directory without search permission must be reported as such,
  // not as a missing config.json.
  const fs::file_status st = fs::status(p, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) throw Error(p.string() + ": cannot access: " + ec.message());
  if (!fs::exists(st)) throw Error(p.string() + ": config.json is missing from the model directory");
  return parse_config_text(read_text_file(p.string()), p.string());
}

}  // namespace retnet
