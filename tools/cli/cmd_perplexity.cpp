// retnet perplexity: exp(mean negative log-likelihood) of a text under the model.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include "cli_util.hpp"
#include "commands.hpp"
#include "retnet/tokenizer.hpp"
#include "std_streams.hpp"

namespace retnet::cli {

namespace {

struct PplArgs {
  std::string model, file, device = "auto", angles = "reference", quantize;
  int64_t ctx = 0, chunk_size = 0;
  int threads = 0;
  bool check_weights = false, bf16_activations = false;
};

// -log p(target) from one row of logits, in double (log-sum-exp).
double nll(std::span<const float> row, int32_t target) {
  double mx = -INFINITY;
  for (float v : row) mx = std::max(mx, double(v));
  double sum = 0;
  for (float v : row) sum += std::exp(double(v) - mx);
  return -(double(row[size_t(target)]) - mx - std::log(sum));
}

// Scores ids[1..] given their prefixes, feeding the session in blocks (a multiple of the chunk
// size, so the result is identical to one chunkwise pass over the whole sequence).
double score(Session& s, const std::vector<int32_t>& ids, size_t begin, size_t end, int64_t chunk, int64_t vocab,
             int64_t& n_scored) {
  const int64_t block = std::max<int64_t>(1, 1024 / chunk) * chunk;
  double total = 0;
  PrefillOptions po;
  po.mode = Mode::Chunkwise;
  po.chunk_size = chunk;
  po.all_logits = true;
  for (size_t b = begin; b < end; b += size_t(block)) {
    const size_t e = std::min(end, b + size_t(block));
    auto lg = s.prefill(std::span<const int32_t>(ids.data() + b, e - b), po);
    for (size_t t = b; t < e; ++t) {
      if (t + 1 >= end) break;  // the last token of the range predicts nothing we score
      total += nll(lg.subspan((t - b) * size_t(vocab), size_t(vocab)), ids[t + 1]);
      ++n_scored;
    }
    if (interrupted()) throw Error("interrupted");
  }
  return total;
}

}  // namespace

Runner add_perplexity_command(CLI::App& app) {
  auto a = std::make_shared<PplArgs>();
  CLI::App* c = app.add_subcommand(
      "perplexity",
      "Perplexity of a text file. Default protocol: the whole file is tokenized as one sequence (BOS\n"
      "prepended only if tokenizer_config.json asks for it), processed in one chunkwise pass (RetNet has\n"
      "no context limit) and every token after the first is scored: ppl = exp(mean NLL). With --ctx N\n"
      "the token sequence is instead cut into consecutive windows of N tokens, each scored\n"
      "independently from a fresh state from its own first token (BOS is not re-inserted).");
  c->add_option("-m,--model", a->model, "Model directory (default: the bundled model)");
  c->add_option("-f,--file", a->file, "Text file to score")->required();
  c->add_option("--ctx", a->ctx, "Score independent windows of N tokens instead of one pass");
  c->add_option("--chunk-size", a->chunk_size, "Chunk size of the chunkwise pass (default: the model's)");
  c->add_option("-t,--threads", a->threads, "CPU threads (0 = all)");
  c->add_option("--device", a->device, "auto, cpu or cuda")->capture_default_str();
  add_angles_option(c, a->angles);
  add_check_weights_flag(c, a->check_weights);
  add_bf16_activations_flag(c, a->bf16_activations);
  add_quantize_option(c, a->quantize);
  return [a, c]() -> int {
    if (!c->parsed()) return -1;
    if (c->count("--ctx") && a->ctx < 2) throw Error("--ctx: must be at least 2 tokens, got " + std::to_string(a->ctx));
    if (c->count("--chunk-size") && a->chunk_size <= 0)
      throw Error("--chunk-size: must be a positive integer, got " + std::to_string(a->chunk_size));
    if (a->threads < 0) throw Error("--threads: must be >= 0, got " + std::to_string(a->threads));
    const Device device = parse_device(a->device);
    const Angles angles = parse_angles(a->angles);
    check_quantize(a->quantize);
    if (global_flags().dry_run) return 0;
    install_sigint_handler();
    const std::string dir = resolve_model_dir(a->model);
    const std::string text = read_file(a->file);
    LoadOptions lo;
    lo.device = device;
    lo.threads = a->threads;
    lo.angles = angles;
    lo.check_weights = a->check_weights;
    lo.bf16_activations = a->bf16_activations;
    lo.quantize = a->quantize;
    if (!global_flags().quiet) lo.on_progress = progress_bar("loading");
    auto model = Model::load(dir, lo);
    const Tokenizer tok = Tokenizer::load(dir);
    const std::vector<int32_t> ids = tok.encode(text, true);
    const int64_t V = model->info().vocab_size;
    const int64_t chunk = a->chunk_size > 0 ? a->chunk_size : model->info().default_chunk_size;
    if (ids.size() < 2) throw Error(a->file + ": needs at least 2 tokens to score, has " + std::to_string(ids.size()));
    const auto t0 = std::chrono::steady_clock::now();
    Session s(model);
    double total = 0;
    int64_t n = 0;
    if (a->ctx == 0) {
      total = score(s, ids, 0, ids.size(), chunk, V, n);
    } else {
      for (size_t w = 0; w + 1 < ids.size(); w += size_t(a->ctx)) {
        s.reset();
        total += score(s, ids, w, std::min(ids.size(), w + size_t(a->ctx)), chunk, V, n);
      }
    }
    const double ms = ms_since(t0);
    outf("perplexity: %.6f\n", std::exp(total / double(n)));
    outf("tokens: %lld\n", (long long)n);
    if (!global_flags().quiet)
      std::fprintf(stderr, "scored %lld tokens of %zu in %.1f ms (%.1f tokens per second)\n", (long long)n, ids.size(),
                   ms, double(ids.size()) * 1000.0 / ms);
    return 0;
  };
}

}  // namespace retnet::cli
