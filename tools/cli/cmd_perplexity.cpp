// retnet perplexity: exp(mean negative log-likelihood) of a text under the model.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>

#include "cli_util.hpp"
#include "commands.hpp"
#include "kl_divergence.hpp"
#include "retnet/tokenizer.hpp"
#include "std_streams.hpp"

namespace retnet::cli {

namespace {

struct PplArgs {
  std::string model, file, device = "auto", angles = "reference", quantize, kl_save, kl_base, state_type,
                           mode = "chunkwise";
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

// Called with each scored position's logits [V] (--kl-save, --kl-base), in order.
using RowHook = std::function<void(std::span<const float>)>;

// Scores ids[1..] given their prefixes, feeding the session in blocks (a multiple of the chunk
// size, so the result is identical to one chunkwise pass over the whole sequence). Recurrent mode:
// one decode step per token, as generation runs (what --state-type f16 rounds at every token).
double score(Session& s, const std::vector<int32_t>& ids, size_t begin, size_t end, Mode mode, int64_t chunk,
             int64_t vocab, int64_t& n_scored, const RowHook& on_row) {
  const int64_t block = std::max<int64_t>(1, 1024 / chunk) * chunk;
  double total = 0;
  PrefillOptions po;
  po.mode = mode;
  po.chunk_size = chunk;
  po.all_logits = true;
  for (size_t b = begin; b < end; b += size_t(block)) {
    const size_t e = std::min(end, b + size_t(block));
    auto lg = s.prefill(std::span<const int32_t>(ids.data() + b, e - b), po);
    for (size_t t = b; t < e; ++t) {
      if (t + 1 >= end) break;  // the last token of the range predicts nothing we score
      const auto row = lg.subspan((t - b) * size_t(vocab), size_t(vocab));
      total += nll(row, ids[t + 1]);
      if (on_row) on_row(row);
      ++n_scored;
    }
    if (interrupted()) throw Error("interrupted");
  }
  return total;
}

// The parent directory must exist: found out before the run, not after it.
void check_kl_save_path(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
    throw Error("--kl-save: " + path + ": the directory " + parent.string() + " does not exist");
  if (std::filesystem::is_directory(path, ec)) throw Error("--kl-save: " + path + ": is a directory");
}

void print_kl(const KlHeader& base, double ppl, KlStats& kl) {
  kl.finish();
  const double n = double(kl.kl.size());
  outf("base perplexity: %.6f\n", base.base_ppl);
  outf("delta perplexity: %+.6f (%+.4f%%)\n", ppl - base.base_ppl, (ppl / base.base_ppl - 1) * 100);
  outf("KL divergence mean: %.6e ± %.2e (standard error)\n", kl.mean, kl.stderr_mean);
  outf("KL divergence median: %.6e, p90: %.6e, p99: %.6e, max: %.6e\n", kl.median, kl.p90, kl.p99, kl.max);
  outf("top-1 agreement: %.4f%% (%lld of %lld positions)\n", 100.0 * double(kl.top1_agree) / n,
       (long long)kl.top1_agree, (long long)kl.kl.size());
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
      "independently from a fresh state from its own first token (BOS is not re-inserted).\n"
      "KL-divergence mode: --kl-save FILE stores the log-probabilities of every scored position\n"
      "(4 bytes x vocabulary each); --kl-base FILE runs another model (e.g. a quantized one) on the same\n"
      "text and settings and reports mean KL(base || model), its percentiles, top-1 agreement and the\n"
      "change of perplexity.");
  c->add_option("-m,--model", a->model, "Model directory (default: the bundled model)");
  c->add_option("-f,--file", a->file, "Text file to score")->required();
  c->add_option("--ctx", a->ctx, "Score independent windows of N tokens instead of one pass");
  c->add_option("--chunk-size", a->chunk_size, "Chunk size of the chunkwise pass (default: the model's)");
  c->add_option("--mode", a->mode,
                "chunkwise (one pass in blocks, as a prompt is prefilled) or recurrent (one decode step per token, "
                "as tokens are generated)")
      ->capture_default_str();
  c->add_option("-t,--threads", a->threads, "CPU threads (0 = all)");
  c->add_option("--device", a->device, "auto, cpu or cuda")->capture_default_str();
  add_angles_option(c, a->angles);
  add_check_weights_flag(c, a->check_weights);
  add_bf16_activations_flag(c, a->bf16_activations);
  add_quantize_option(c, a->quantize);
  add_state_type_option(c, a->state_type);
  c->add_option("--kl-save", a->kl_save, "Save this model's log-probabilities as the base of --kl-base")
      ->type_name("FILE");
  c->add_option("--kl-base", a->kl_base, "Compare with a --kl-save file: KL divergence, top-1 agreement, delta ppl")
      ->type_name("FILE");
  return [a, c]() -> int {
    if (!c->parsed()) return -1;
    if (c->count("--ctx") && a->ctx < 2) throw Error("--ctx: must be at least 2 tokens, got " + std::to_string(a->ctx));
    if (c->count("--chunk-size") && a->chunk_size <= 0)
      throw Error("--chunk-size: must be a positive integer, got " + std::to_string(a->chunk_size));
    if (a->threads < 0) throw Error("--threads: must be >= 0, got " + std::to_string(a->threads));
    if (c->count("--kl-save") && c->count("--kl-base"))
      throw Error("--kl-save and --kl-base: give one (save the base with one model, compare another with it)");
    if (c->count("--kl-save") && a->kl_save.empty()) throw Error("--kl-save: empty path");
    if (c->count("--kl-base") && a->kl_base.empty()) throw Error("--kl-base: empty path");
    const Device device = parse_device(a->device);
    const Angles angles = parse_angles(a->angles);
    check_quantize(a->quantize);
    check_state_type(a->state_type);
    if (a->mode != "chunkwise" && a->mode != "recurrent")
      throw Error("--mode: '" + a->mode + "' is not chunkwise or recurrent");
    const Mode mode = a->mode == "recurrent" ? Mode::Recurrent : Mode::Chunkwise;
    if (global_flags().dry_run) return 0;
    if (!a->kl_save.empty()) check_kl_save_path(a->kl_save);
    install_sigint_handler();
    const std::string dir = resolve_model_dir(a->model);
    const std::string text = read_file(a->file);
    // A damaged or foreign base file is refused before the model loads.
    std::optional<KlBaseReader> kl_base;
    if (!a->kl_base.empty()) kl_base.emplace(a->kl_base);
    LoadOptions lo;
    lo.device = device;
    lo.threads = a->threads;
    lo.angles = angles;
    lo.check_weights = a->check_weights;
    lo.bf16_activations = a->bf16_activations;
    lo.quantize = a->quantize;
    lo.state_dtype = a->state_type;
    if (!global_flags().quiet) lo.on_progress = progress_bar("loading");
    auto model = Model::load(dir, lo);
    const Tokenizer tok = Tokenizer::load(dir);
    const std::vector<int32_t> ids = tok.encode(text, true);
    const int64_t V = model->info().vocab_size;
    const int64_t chunk = a->chunk_size > 0 ? a->chunk_size : model->info().default_chunk_size;
    if (ids.size() < 2) throw Error(a->file + ": needs at least 2 tokens to score, has " + std::to_string(ids.size()));
    const int64_t positions = kl_scored_positions(int64_t(ids.size()), a->ctx);
    if (kl_base) kl_base->check_run(V, a->ctx, ids, positions);
    std::optional<KlSaver> kl_save;
    if (!a->kl_save.empty()) kl_save.emplace(a->kl_save, V, positions);
    KlStats kl;
    RowHook on_row;
    if (kl_save) on_row = [&](std::span<const float> row) { kl_save->add(row); };
    if (kl_base) on_row = [&](std::span<const float> row) { kl_base->compare(row, kl); };
    const auto t0 = std::chrono::steady_clock::now();
    Session s(model);
    double total = 0;
    int64_t n = 0;
    if (a->ctx == 0) {
      total = score(s, ids, 0, ids.size(), mode, chunk, V, n, on_row);
    } else {
      for (size_t w = 0; w + 1 < ids.size(); w += size_t(a->ctx)) {
        s.reset();
        total += score(s, ids, w, std::min(ids.size(), w + size_t(a->ctx)), mode, chunk, V, n, on_row);
      }
    }
    const double ms = ms_since(t0);
    const double ppl = std::exp(total / double(n));
    if (kl_save) {
      KlHeader h;
      h.ctx = a->ctx;
      h.chunk = chunk;
      h.n_tokens = int64_t(ids.size());
      h.ids_digest = kl_digest_ids(ids);
      h.base_nll = total;
      h.base_ppl = ppl;
      kl_save->write(h);
      if (!global_flags().quiet)
        std::fprintf(stderr, "saved the log-probabilities of %lld positions (%.1f MiB) to %s\n", (long long)n,
                     double(n) * double(V) * 4.0 / 1048576.0, a->kl_save.c_str());
    }
    outf("perplexity: %.6f\n", ppl);
    outf("tokens: %lld\n", (long long)n);
    if (kl_base) print_kl(kl_base->header(), ppl, kl);
    if (!global_flags().quiet)
      std::fprintf(stderr, "scored %lld tokens of %zu in %.1f ms (%.1f tokens per second)\n", (long long)n, ids.size(),
                   ms, double(ids.size()) * 1000.0 / ms);
    return 0;
  };
}

}  // namespace retnet::cli
