// retnet serve: an OpenAI-compatible HTTP server with continuous batching and a prefix-state cache
// (the server itself: tools/serve/). This file only turns the command line into ServeOptions.
#include "cli_util.hpp"
#include "commands.hpp"
#include "serve/serve.hpp"

namespace retnet::cli {

namespace {
struct ServeArgs {
  serve::ServeOptions opt;
  std::string model, device = "auto", angles = "reference", state_type;
  int threads = 0;
  bool check_weights = false, bf16_activations = false;
};

void at_least(const char* flag, int64_t v, int64_t lo) {
  if (v < lo) throw Error(std::string(flag) + ": must be >= " + std::to_string(lo) + ", got " + std::to_string(v));
}
}  // namespace

Runner add_serve_command(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  serve::ServeOptions& o = a->opt;
  CLI::App* c = app.add_subcommand("serve", "OpenAI-compatible HTTP server (completions, chat, streaming)");
  c->add_option("-m,--model", a->model, "Model directory (default: the bundled model)");
  c->add_option("--alias", o.model_name, "Model id clients name (default: the directory's name)");
  c->add_option("--host", o.host, "Address to listen on")->capture_default_str();
  c->add_option("--port", o.port, "Port (0: an ephemeral port, printed on stderr)")->capture_default_str();
  c->add_option("--parallel", o.parallel, "Slots: streams decoded together")->capture_default_str();
  c->add_option("--queue", o.queue_limit, "Requests waiting for a slot before 503")->capture_default_str();
  c->add_option("--api-key", o.api_key, "Require Authorization: Bearer KEY (all but /health)");
  c->add_option("--chat-template", o.chat_template,
                "Jinja chat template file, or 'plain' (default: the model's tokenizer_config.json chat_template)");
  c->add_option("--cache-ram", o.cache_ram_mib, "Prefix-state cache budget in MiB (0: off)")->capture_default_str();
  c->add_option("--cache-dir", o.cache_dir,
                "Also keep prompt and reply states in this directory (survives restarts; may be shared)");
  c->add_option("--cache-disk", o.cache_disk_mib, "Budget of --cache-dir in MiB")->capture_default_str();
  c->add_option("--max-body", o.max_body_bytes, "Largest request body in bytes (413 beyond)")->capture_default_str();
  c->add_option("--max-prompt-tokens", o.max_prompt_tokens, "Longest prompt in tokens")->capture_default_str();
  c->add_option("--max-tokens", o.max_tokens, "Largest max_tokens a request may ask (and chat's default)")
      ->capture_default_str();
  c->add_option("--max-n", o.max_n, "Most choices per request (n, times the prompts of a batch)")
      ->capture_default_str();
  c->add_option("--max-connections", o.max_connections, "HTTP worker threads (concurrent connections)")
      ->capture_default_str();
  c->add_option("--timeout", o.timeout_s, "Read and write timeout in seconds")->capture_default_str();
  c->add_flag("--no-webui{false}", o.web_ui, "No chat page at / (404 there)");
  c->add_option("-t,--threads", a->threads, "CPU threads (0 = all)");
  c->add_option("--device", a->device, "auto, cpu or cuda")->capture_default_str();
  add_angles_option(c, a->angles);
  add_check_weights_flag(c, a->check_weights);
  add_bf16_activations_flag(c, a->bf16_activations);
  add_state_type_option(c, a->state_type);
  return [a, c]() -> int {
    if (!c->parsed()) return -1;
    serve::ServeOptions& o = a->opt;
    if (o.port < 0 || o.port > 65535) throw Error("--port: must be in [0, 65535], got " + std::to_string(o.port));
    at_least("--parallel", o.parallel, 1);
    if (o.parallel > 256) throw Error("--parallel: at most 256, got " + std::to_string(o.parallel));
    at_least("--queue", o.queue_limit, 0);
    at_least("--cache-ram", o.cache_ram_mib, 0);
    at_least("--cache-disk", o.cache_disk_mib, 1);
    if (c->count("--cache-dir") && o.cache_dir.empty()) throw Error("--cache-dir: the path is empty");
    at_least("--max-body", o.max_body_bytes, 1024);
    at_least("--max-prompt-tokens", o.max_prompt_tokens, 1);
    at_least("--max-tokens", o.max_tokens, 1);
    at_least("--max-n", o.max_n, 1);
    at_least("--max-connections", o.max_connections, 1);
    at_least("--timeout", o.timeout_s, 1);
    at_least("--threads", a->threads, 0);
    if (c->count("--api-key") && o.api_key.empty()) throw Error("--api-key: the key is empty");
    if (o.host.empty()) throw Error("--host: empty");
    if (c->count("--chat-template") && o.chat_template.empty())
      throw Error("--chat-template: empty (a file, or 'plain')");
    o.load.device = parse_device(a->device);
    o.load.angles = parse_angles(a->angles);
    o.load.threads = a->threads;
    o.load.check_weights = a->check_weights;
    o.load.bf16_activations = a->bf16_activations;
    check_state_type(a->state_type);
    o.load.state_dtype = a->state_type;
    if (global_flags().dry_run) return 0;
    if (!serve::serve_available()) return serve::run_serve(o);  // throws, saying what is missing
    o.model_dir = resolve_model_dir(a->model);
    o.quiet = global_flags().quiet;
    o.verbose = global_flags().verbose;
    return serve::run_serve(o);
  };
}

}  // namespace retnet::cli
