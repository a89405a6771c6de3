// retnet quantize: a model directory in, the same model with block-quantized matrices out
// (retnet/quantize.hpp does the work; README.md shows the quality of each type).
#include <cstdio>
#include <memory>

#include "cli_util.hpp"
#include "commands.hpp"
#include "retnet/quantize.hpp"
#include "retnet/system.hpp"  // kMaxThreads

namespace retnet::cli {

namespace {
struct QuantArgs {
  std::string model, out, type, keep = "embed", head_type = "q8_0";
  bool force = false;
  int threads = 0;
};
}  // namespace

Runner add_quantize_command(CLI::App& app) {
  auto a = std::make_shared<QuantArgs>();
  CLI::App* c = app.add_subcommand(
      "quantize",
      "Write a copy of a model directory with its projection matrices (q, k, v, g, o, FFN) quantized to q8_0, q4_0 "
      "or q4_k; config and tokenizer files are copied, norms and kept matrices stay as they are");
  c->add_option("-m,--model", a->model, "Input model directory")->required();
  c->add_option("-o,--output", a->out, "Output model directory (written whole, then renamed into place)")->required();
  c->add_option("--type", a->type, "q8_0, q4_0 or q4_k")->required();
  c->add_option("--keep", a->keep,
                "Matrices that keep their precision: embed, head, attn (q,k,v,g,o), q, k, v, g, o, ffn, or none")
      ->capture_default_str();
  c->add_option("--head-type", a->head_type,
                "The LM head's type: q8_0, q4_0, q4_k, same (as --type) or keep (as stored); a tied head is the "
                "embedding too")
      ->capture_default_str();
  c->add_flag("--force", a->force, "Replace the output directory if it exists");
  c->add_option("-t,--threads", a->threads, "Threads quantizing (0 = all); the output does not depend on it");
  return [a, c]() -> int {
    if (!c->parsed()) return -1;
    if (a->type != "q8_0" && a->type != "q4_0" && a->type != "q4_k")
      throw Error("--type: '" + a->type + "' is not one of q8_0, q4_0, q4_k");
    if (a->out.empty()) throw Error("--output: the path is empty");
    if (a->threads < 0 || a->threads > kMaxThreads)
      throw Error("--threads: must be in [0, " + std::to_string(kMaxThreads) + "], got " + std::to_string(a->threads));
    if (global_flags().dry_run) return 0;
    install_sigint_handler();
    const bool quiet = global_flags().quiet;
    QuantizeOptions o;
    o.type = a->type;
    o.keep = a->keep;
    o.head_type = a->head_type;
    o.force = a->force;
    o.threads = a->threads;
    // The bar where stderr is a terminal and -q is not given; Ctrl-C cancels either way.
    auto bar = quiet ? std::function<bool(uint64_t, uint64_t)>() : progress_bar("quantizing");
    o.on_progress = [bar](uint64_t done, uint64_t total) { return bar ? bar(done, total) : !interrupted(); };
    const auto t0 = std::chrono::steady_clock::now();
    const QuantizeResult r = quantize_model(a->model, a->out, o);
    if (!quiet) {
      for (const std::string& n : r.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
      std::fprintf(stderr, "%s: %d matrices quantized to %s, %d tensors copied; weights %.1f MB -> %.1f MB (%.1f s)\n",
                   a->out.c_str(), r.quantized, a->type.c_str(), r.copied, double(r.bytes_in) / 1e6,
                   double(r.bytes_out) / 1e6, ms_since(t0) / 1e3);
    }
    return 0;
  };
}

}  // namespace retnet::cli
