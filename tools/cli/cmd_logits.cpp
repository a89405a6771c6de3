// retnet logits: full logits of a token sequence, for parity checks against reference implementations.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>

#include "commands.hpp"
#include "retnet/atomic_write.hpp"
#include "std_streams.hpp"

namespace retnet::cli {

namespace {
// A float32 C-order .npy (format 1.0), written whole through write_file_atomically: a regular file is
// replaced by a synced temporary renamed into place (links followed), a device or /dev/stdout is
// written in place.
void write_npy(const std::string& path, const std::vector<float>& data, int64_t rows, int64_t cols) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                     std::to_string(cols) + "), }";
  dict.append((64 - (10 + dict.size() + 1) % 64) % 64, ' ');
  dict += '\n';
  const uint8_t head[10] = {
      0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, uint8_t(dict.size() & 0xff), uint8_t(dict.size() >> 8)};
  const std::span<const uint8_t> parts[3] = {
      std::span<const uint8_t>(head, 10),
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(dict.data()), dict.size()),
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size() * 4)};
  write_file_atomically(path, parts, "logits");
}

struct LogitsArgs {
  std::string model, ids, mode = "chunkwise", out, device = "auto", angles = "reference", quantize, state_type;
  int64_t chunk_size = 0;
  int64_t prefill = -1;
  int threads = 0;
  bool check_weights = false, bf16_activations = false;
};
}  // namespace

Runner add_logits_command(CLI::App& app) {
  auto a = std::make_shared<LogitsArgs>();
  CLI::App* c = app.add_subcommand("logits", "Write the logits of every position of a token sequence to a .npy file");
  c->add_option("-m,--model", a->model, "Model directory (config.json + safetensors)")->required();
  c->add_option("--ids", a->ids, "Comma-separated token ids, e.g. 5,17,3")->required();
  c->add_option("--mode", a->mode, "Retention form for the prefilled tokens: parallel, recurrent or chunkwise")
      ->capture_default_str();
  c->add_option("--chunk-size", a->chunk_size, "Chunk size of chunkwise mode (default: the model's)");
  c->add_option("--prefill", a->prefill,
                "Prefill the first K tokens in --mode, then decode the rest one by one recurrently (default: all)");
  c->add_option("-o,--output", a->out, "Output .npy file: float32 [T, vocab]")->required();
  c->add_option("-t,--threads", a->threads, "CPU threads (0 = all)");
  c->add_option("--device", a->device, "auto, cpu or cuda")->capture_default_str();
  add_angles_option(c, a->angles);
  add_check_weights_flag(c, a->check_weights);
  add_bf16_activations_flag(c, a->bf16_activations);
  add_quantize_option(c, a->quantize);
  add_state_type_option(c, a->state_type);
  return [a, c]() -> int {
    if (!c->parsed()) return -1;
    const std::vector<int32_t> ids = parse_id_list(a->ids);
    const Mode mode = parse_mode(a->mode);
    if (a->chunk_size < 0 || (c->count("--chunk-size") && a->chunk_size == 0))
      throw Error("--chunk-size: must be a positive integer, got " + std::to_string(a->chunk_size));
    if (a->threads < 0) throw Error("--threads: must be >= 0, got " + std::to_string(a->threads));
    const int64_t T = int64_t(ids.size());
    int64_t K = a->prefill < 0 ? T : a->prefill;
    if (c->count("--prefill") && (a->prefill < 0 || a->prefill > T))
      throw Error("--prefill: " + std::to_string(a->prefill) + " is not in [0, " + std::to_string(T) + "]");
    const Device device = parse_device(a->device);
    const Angles angles = parse_angles(a->angles);
    check_quantize(a->quantize);
    check_state_type(a->state_type);
    if (global_flags().dry_run) return 0;
    LoadOptions lo;
    lo.device = device;
    lo.threads = a->threads;
    lo.angles = angles;
    lo.check_weights = a->check_weights;
    lo.bf16_activations = a->bf16_activations;
    lo.quantize = a->quantize;
    lo.state_dtype = a->state_type;
    auto model = Model::load(a->model, lo);
    const int64_t V = model->info().vocab_size;
    Session s(model);
    std::vector<float> all(size_t(T * V));
    if (K > 0) {
      PrefillOptions po;
      po.mode = mode;
      po.chunk_size = a->chunk_size;
      po.all_logits = true;
      auto lg = s.prefill(std::span<const int32_t>(ids.data(), size_t(K)), po);
      std::copy(lg.begin(), lg.end(), all.begin());
    }
    for (int64_t t = K; t < T; ++t) {
      auto lg = s.decode(ids[size_t(t)]);
      std::copy(lg.begin(), lg.end(), all.begin() + t * V);
    }
    write_npy(a->out, all, T, V);
    return 0;
  };
}

Runner add_info_command(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  auto device = std::make_shared<std::string>("auto");
  auto check_weights = std::make_shared<bool>(false);
  auto quantize = std::make_shared<std::string>();
  CLI::App* c = app.add_subcommand("info", "Print what a model directory holds and the device it runs on");
  c->add_option("-m,--model", *dir, "Model directory")->required();
  c->add_option("--device", *device, "auto, cpu or cuda")->capture_default_str();
  add_check_weights_flag(c, *check_weights);
  add_quantize_option(c, *quantize);
  return [dir, device, check_weights, quantize, c]() -> int {
    if (!c->parsed()) return -1;
    const Device dev = parse_device(*device);
    check_quantize(*quantize);
    if (global_flags().dry_run) return 0;
    LoadOptions lo;
    lo.threads = 1;
    lo.device = dev;
    lo.check_weights = *check_weights;
    lo.quantize = *quantize;
    auto model = Model::load(*dir, lo);
    const ModelInfo& i = model->info();
    outf("family          %s\n", i.family.c_str());
    outf("vocab_size      %lld\n", (long long)i.vocab_size);
    outf("hidden_size     %lld\n", (long long)i.hidden_size);
    outf("layers          %lld\n", (long long)i.layers);
    outf("heads           %lld (dk %lld, dv %lld)\n", (long long)i.heads, (long long)i.key_head_dim,
         (long long)i.value_head_dim);
    outf("ffn_dim         %lld\n", (long long)i.ffn_dim);
    outf("parameters      %llu\n", (unsigned long long)i.n_params);
    outf("weights         %llu bytes (%s)\n", (unsigned long long)i.weight_bytes, i.weight_dtype.c_str());
    outf("weight types    projections %s, embedding %s, head %s\n", i.weight_dtype.c_str(), i.embedding_dtype.c_str(),
         i.head_dtype.c_str());
    outf("bytes per token %llu (weights one decode step reads)\n", (unsigned long long)i.decode_weight_bytes);
    outf("state           %llu bytes per session\n", (unsigned long long)i.state_bytes);
    outf("chunk size      %lld (default)\n", (long long)i.default_chunk_size);
    outf("device          %s\n", i.device.c_str());
    return 0;
  };
}

}  // namespace retnet::cli
