#include <cerrno>
#include <cstdlib>

#include "commands.hpp"

namespace retnet::cli {

GlobalFlags& global_flags() {
  static GlobalFlags g;
  return g;
}

std::vector<int32_t> parse_id_list(const std::string& text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  const size_t n = text.size();
  auto skip_ws = [&] {
    while (i < n && (text[i] == ' ' || text[i] == '\t')) ++i;
  };
  skip_ws();
  if (i == n) throw Error("--ids: empty list (expected comma-separated token ids, e.g. 5,17,3)");
  while (true) {
    skip_ws();
    size_t start = i;
    if (i < n && (text[i] == '-' || text[i] == '+')) ++i;
    while (i < n && text[i] >= '0' && text[i] <= '9') ++i;
    std::string tok = text.substr(start, i - start);
    if (tok.empty() || tok == "-" || tok == "+")
      throw Error("--ids: '" + text + "' does not parse: expected an integer at character " + std::to_string(start + 1));
    errno = 0;
    long long v = std::strtoll(tok.c_str(), nullptr, 10);
    if (errno == ERANGE || v < INT32_MIN || v > INT32_MAX) throw Error("--ids: '" + tok + "' is out of range");
    if (v < 0) throw Error("--ids: token id " + tok + " is negative");
    ids.push_back(int32_t(v));
    skip_ws();
    if (i == n) break;
    if (text[i] != ',')
      throw Error("--ids: '" + text + "' does not parse: unexpected '" + std::string(1, text[i]) + "' at character " +
                  std::to_string(i + 1));
    ++i;
  }
  return ids;
}

void add_check_weights_flag(CLI::App* c, bool& flag) {
  c->add_flag("--check-weights", flag,
              "Scan every weight for NaN/Inf while loading (the error names the tensor and element)");
}

void add_bf16_activations_flag(CLI::App* c, bool& flag) {
  c->add_flag("--bf16-activations", flag,
              "Prefill with activations rounded to bf16 against BF16 weights (AVX512-BF16 CPUs: ~2x faster "
              "prefill, logits no longer exact; like PyTorch bf16). Ignored, with an info log, where it does not apply");
}

void add_quantize_option(CLI::App* c, std::string& value) {
  c->add_option("--quantize", value,
                "Quantize the projection matrices at load for this run: q8_0, q4_0 or q4_k (as `retnet quantize` "
                "would)");
}

void check_quantize(const std::string& value) {
  if (!value.empty() && value != "q8_0" && value != "q4_0" && value != "q4_k")
    throw Error("--quantize: '" + value + "' is not one of q8_0, q4_0, q4_k");
}

void add_state_type_option(CLI::App* c, std::string& value) {
  c->add_option("--state-type", value,
                "Recurrent state storage: f32 (default, exact) or f16 (half the state bytes a decode step reads and "
                "writes; CPU only; accuracy in docs/library.md)");
}

void check_state_type(const std::string& value) {
  if (!value.empty() && value != "f32" && value != "f16")
    throw Error("--state-type: '" + value + "' is not one of f32, f16");
}

void add_angles_option(CLI::App* c, std::string& value) {
  c->add_option("--angles", value,
                "Rotation angles: reference (fp32, as the reference implementations; logits drift at positions past "
                "~2^20) or exact (float64)")
      ->capture_default_str();
}

Angles parse_angles(const std::string& s) {
  if (s == "reference") return Angles::Reference;
  if (s == "exact") return Angles::Exact;
  throw Error("--angles: '" + s + "' is not one of reference, exact");
}

Device parse_device(const std::string& s) {
  if (s == "auto") return Device::Auto;
  if (s == "cpu") return Device::Cpu;
  if (s == "cuda") return Device::Cuda;
  throw Error("--device: '" + s + "' is not one of auto, cpu, cuda");
}

Mode parse_mode(const std::string& s) {
  if (s == "parallel") return Mode::Parallel;
  if (s == "recurrent") return Mode::Recurrent;
  if (s == "chunkwise") return Mode::Chunkwise;
  throw Error("--mode: '" + s + "' is not one of parallel, recurrent, chunkwise");
}

}  // namespace retnet::cli
