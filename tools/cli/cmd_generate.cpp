// retnet generate: prompt → chunkwise prefill → recurrent decoding with the sampler chain, streamed.
// stdout carries the generated text only; everything else goes to stderr.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>

#include "cli_util.hpp"
#include "commands.hpp"
#include "prompt_cache.hpp"
#include "retnet/sampler.hpp"
#include "retnet/tokenizer.hpp"
#include "std_streams.hpp"

namespace retnet::cli {

namespace {

struct GenerateArgs {
  std::string model, prompt, file, device = "auto", samplers, angles = "reference", prompt_cache, quantize, state_type;
  int64_t n_predict = 128;
  int64_t seed = -1;
  int threads = 0;
  bool ignore_eos = false, echo = false, check_weights = false, bf16_activations = false;
  SamplerParams sp;
};

void print_rate(const char* label, double ms, int64_t n, double bytes_per_token) {
  const double per = n ? ms / double(n) : 0.0;
  const double tps = ms > 0 ? double(n) * 1000.0 / ms : 0.0;
  std::fprintf(stderr, "%-17s= %10.2f ms / %5lld tokens (%8.2f ms per token, %9.2f tokens per second", label, ms,
               (long long)n, per, tps);
  if (bytes_per_token > 0) std::fprintf(stderr, ", %.2f GB/s", tps * bytes_per_token / 1e9);
  std::fprintf(stderr, ")\n");
}

}  // namespace

Runner add_generate_command(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* c = app.add_subcommand("generate", "Generate text from a prompt (streamed to stdout)");
  c->add_option("-m,--model", a->model, "Model directory (default: the bundled model)");
  c->add_option("-p,--prompt", a->prompt, "Prompt text ('-' reads stdin); empty: start from BOS");
  c->add_option("-f,--file", a->file, "Read the prompt from a file");
  c->add_option("-n,--predict", a->n_predict, "Tokens to generate (-1 = until EOS)")->capture_default_str();
  c->add_option("-s,--seed", a->seed, "Random seed (default: random, printed on stderr)");
  c->add_option("-t,--threads", a->threads, "CPU threads (0 = all)");
  c->add_option("--device", a->device, "auto, cpu or cuda")->capture_default_str();
  add_angles_option(c, a->angles);
  c->add_option("--temp", a->sp.temperature, "Temperature (0 = greedy)")->capture_default_str();
  c->add_option("--top-k", a->sp.top_k, "Top-k (0 = off)")->capture_default_str();
  c->add_option("--top-p", a->sp.top_p, "Top-p (1 = off)")->capture_default_str();
  c->add_option("--min-p", a->sp.min_p, "Min-p (0 = off)")->capture_default_str();
  c->add_option("--repeat-penalty", a->sp.repeat_penalty, "Repetition penalty (1 = off)")->capture_default_str();
  c->add_option("--repeat-last-n", a->sp.repeat_last_n, "Penalty window in tokens (0 = off, -1 = all)")
      ->capture_default_str();
  c->add_option("--presence-penalty", a->sp.presence_penalty, "Presence penalty")->capture_default_str();
  c->add_option("--frequency-penalty", a->sp.frequency_penalty, "Frequency penalty")->capture_default_str();
  c->add_option("--samplers", a->samplers, "Sampler order, e.g. penalties;top_k;top_p;min_p;temperature");
  c->add_flag("--ignore-eos", a->ignore_eos, "Do not stop at the end-of-sequence token");
  c->add_flag("-e,--echo", a->echo, "Print the prompt on stdout before the generated text");
  c->add_option("--prompt-cache", a->prompt_cache,
                "State snapshot file: resume from it when it holds a prefix of the prompt's tokens; the state "
                "is saved there after generating");
  add_check_weights_flag(c, a->check_weights);
  add_bf16_activations_flag(c, a->bf16_activations);
  add_quantize_option(c, a->quantize);
  add_state_type_option(c, a->state_type);
  return [a, c]() -> int {
    if (!c->parsed()) return -1;
    const bool quiet = global_flags().quiet;
    const bool verbose = global_flags().verbose;
    if (a->n_predict < -1) throw Error("--predict: " + std::to_string(a->n_predict) + " is not >= -1");
    if (a->threads < 0) throw Error("--threads: must be >= 0, got " + std::to_string(a->threads));
    if (c->count("--seed") && a->seed < 0) throw Error("--seed: must be >= 0");
    if (!a->samplers.empty()) a->sp.order = parse_sampler_order(a->samplers);
    const Device device = parse_device(a->device);
    const Angles angles = parse_angles(a->angles);
    check_quantize(a->quantize);
    check_state_type(a->state_type);
    check_prompt_source(c->count("--prompt") > 0, a->file);
    if (c->count("--prompt-cache") && a->prompt_cache.empty()) throw Error("--prompt-cache: the path is empty");
    if (global_flags().dry_run) {
      a->sp.validate();  // as given on the command line; generation_config.json is read by the load
      return 0;
    }
    const std::string dir = resolve_model_dir(a->model);
    const std::string prompt = read_prompt(a->prompt, c->count("--prompt") > 0, a->file);

    uint64_t seed = a->seed >= 0 ? uint64_t(a->seed) : (uint64_t(std::random_device{}()) << 32 | std::random_device{}());
    a->sp.seed = seed;
    a->sp.validate();  // the command line's values, before the load; again below with the model's defaults

    install_sigint_handler();
    const auto t_load = std::chrono::steady_clock::now();
    LoadOptions lo;
    lo.device = device;
    lo.threads = a->threads;
    lo.angles = angles;
    lo.check_weights = a->check_weights;
    lo.bf16_activations = a->bf16_activations;
    lo.quantize = a->quantize;
    lo.state_dtype = a->state_type;
    if (!quiet) lo.on_progress = progress_bar("loading");
    auto model = Model::load(dir, lo);
    const Tokenizer tok = Tokenizer::load(dir);
    const double load_ms = ms_since(t_load);
    const ModelInfo& info = model->info();
    // Sampling defaults of generation_config.json (ModelInfo::generation), unless given on the command line.
    const SamplerParams file = info.generation.apply_to(a->sp);
    if (!c->count("--temp")) a->sp.temperature = file.temperature;
    if (!c->count("--top-k")) a->sp.top_k = file.top_k;
    if (!c->count("--top-p")) a->sp.top_p = file.top_p;
    a->sp.validate();

    if (!quiet) {
      std::fprintf(stderr, "model: %s (%s, %.2fM params, %s, %.1f MB), %s, %d threads\n", dir.c_str(),
                   info.family.c_str(), double(info.n_params) / 1e6, info.weight_dtype.c_str(),
                   double(info.weight_bytes) / 1e6, info.device.c_str(), info.threads);
      std::fprintf(stderr, "seed: %llu\n", (unsigned long long)seed);
    }
    if (a->echo) {
      out(prompt);
      out_flush();
    }
    GenerateOptions go;
    go.max_tokens = a->n_predict;
    go.sampler = a->sp;
    go.ignore_eos = a->ignore_eos;
    // Ctrl-C during a long prompt stops its prefill at the next block (whole blocks stay absorbed).
    go.prefill.on_progress = [](int64_t, int64_t) { return !interrupted(); };
    Session session(model);
    std::exception_ptr write_error;  // the first failed write stops generation; rethrown once it returns
    const auto on_token = [&write_error](const TokenEvent& ev) {
      if (!ev.text.empty()) {
        try {
          out(ev.text);
          out_flush();
        } catch (const StdoutError&) {
          write_error = std::current_exception();
          return false;
        }
      }
      return !interrupted();
    };
    const GenerateResult res = a->prompt_cache.empty() ? session.generate(tok, prompt, go, on_token)
                                                       : generate_with_prompt_cache(session, tok, prompt, go, on_token,
                                                                                    a->prompt_cache, quiet);
    if (write_error) std::rethrow_exception(write_error);
    if (a->n_predict != 0) {
      out("\n");
      out_flush();
    }
    if (verbose) std::fprintf(stderr, "\nprompt: %lld tokens; stopped by %s\n", (long long)res.prompt_tokens,
                              res.stop == GenerateResult::Stop::EndOfSequence ? "end of sequence"
                              : res.stop == GenerateResult::Stop::Callback   ? "interrupt"
                                                                             : "length");
    const int64_t n_gen = res.generated_tokens;
    const double prompt_ms = res.prompt_ms, eval_ms = res.eval_ms;
    if (!quiet) {
      const double bytes_per_token = double(info.decode_weight_bytes) + 2.0 * double(info.state_bytes);
      std::fprintf(stderr, "\n%-17s= %10.2f ms\n", "load time", load_ms);
      print_rate("prompt eval time", prompt_ms, res.prompt_tokens, 0);
      print_rate("eval time", eval_ms, n_gen, bytes_per_token);
      if (interrupted()) std::fprintf(stderr, "interrupted\n");
    }
    return interrupted() ? 130 : 0;
  };
}

}  // namespace retnet::cli
