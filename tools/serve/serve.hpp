// `retnet serve`: an OpenAI-compatible HTTP server over the public library API (README: "retnet
// serve"). tools/cli/cmd_serve.cpp parses the command line into ServeOptions; run_serve does the rest.
#pragma once
#include <cstdint>
#include <string>

#include "retnet/retnet.hpp"

namespace retnet::serve {

struct ServeOptions {
  std::string model_dir;
  std::string model_name;  // the id clients name; default: the directory's name
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: an ephemeral port (printed on stderr)
  std::string api_key;
  // "" : the model's chat template (tokenizer_config.json), else the plain one; "plain"; or a Jinja file.
  std::string chat_template;
  int parallel = 4;
  int64_t queue_limit = 64;
  int64_t cache_ram_mib = 256;
  std::string cache_dir;          // --cache-dir: the on-disk tier of the prefix cache (empty: none)
  int64_t cache_disk_mib = 4096;  // its budget
  int64_t max_body_bytes = 1 << 20;
  int64_t max_prompt_tokens = 8192;
  int64_t max_tokens = 4096;
  int64_t max_n = 8;
  int max_connections = 64;
  int timeout_s = 30;  // read and write timeouts
  LoadOptions load;
  bool web_ui = true;  // the chat page at GET / (--no-webui: 404)
  bool quiet = false, verbose = false;
};

// Whether this build has the server (libcpp-httplib was found at configure time).
bool serve_available();
// Loads the model, serves until SIGINT or SIGTERM, returns the exit status. Throws Error for a
// model that does not load or an address that cannot be bound.
int run_serve(const ServeOptions& opt);

}  // namespace retnet::serve
