// generate --prompt-cache (prompt_cache.hpp). The cache is one state snapshot: a constant size however
// long the conversation, with a digest of its token history instead of the tokens.
#include "prompt_cache.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <vector>

#include "cli_util.hpp"

namespace retnet::cli {

namespace {

// Loads the cache into `s` when its history is a proper prefix of `ids` (the RetNet state cannot be
// rewound, and a snapshot holds no logits: at least the prompt's last token must be prefilled to
// sample from). Returns the tokens it covers; 0 leaves `s` at position 0.
int64_t resume(Session& s, const std::string& path, std::span<const int32_t> ids, bool quiet) {
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);  // links followed
  if (st.type() == std::filesystem::file_type::directory)
    throw Error("--prompt-cache: " + path + " is a directory, expected a state snapshot file");
  if (st.type() == std::filesystem::file_type::not_found) {
    if (!quiet)
      std::fprintf(stderr, "prompt cache: %s does not exist yet: prefilling all %zu prompt tokens\n", path.c_str(),
                   ids.size());
    return 0;
  }
  try {
    s.load_state_file(path);
  } catch (const Error& e) {
    std::fprintf(stderr, "warning: prompt cache ignored (it is replaced after generating): %s\n", e.what());
    return 0;
  }
  const int64_t n = s.position();
  const size_t held = size_t(n);
  if (n > 0 && held < ids.size() && s.history_matches(ids.first(held))) {
    if (!quiet)
      std::fprintf(stderr, "prompt cache: resuming %lld of %zu prompt tokens from %s\n", (long long)n, ids.size(),
                   path.c_str());
    return n;
  }
  if (!quiet) {
    if (held == ids.size() && s.history_matches(ids))
      std::fprintf(stderr, "prompt cache: %s holds the whole prompt but no logits: prefilling all %zu tokens again\n",
                   path.c_str(), ids.size());
    else
      std::fprintf(stderr, "prompt cache: the %lld tokens of %s are not a prefix of this prompt: prefilling all %zu\n",
                   (long long)n, path.c_str(), ids.size());
  }
  s.reset();
  return 0;
}

}  // namespace

GenerateResult generate_with_prompt_cache(Session& session, const Tokenizer& tok, std::string_view prompt,
                                          const GenerateOptions& go,
                                          const std::function<bool(const TokenEvent&)>& on_token,
                                          const std::string& path, bool quiet) {
  // The prompt's tokens as Session::generate(text) makes them at position 0.
  std::vector<int32_t> ids = tok.encode(prompt, go.add_special);
  if (ids.empty()) {
    if (tok.bos_id() < 0) throw Error("generate: empty prompt and the tokenizer has no BOS token to start from");
    ids.push_back(tok.bos_id());
  }
  const int64_t absorbed = resume(session, path, ids, quiet);
  // The cache keeps the state one token short of the prompt (llama.cpp's cache keeps the prompt): a
  // rerun with the same prompt, or with one extending it, resumes there, and prefilling at least the
  // last token gives the logits to sample from (a state cannot be rewound, a snapshot has no logits).
  const int64_t keep = int64_t(ids.size()) - 1;
  std::optional<Session> cached;
  double cache_prefill_ms = 0;
  if (keep > absorbed) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::span<const float> r =
        session.prefill(std::span<const int32_t>(ids).subspan(size_t(absorbed), size_t(keep - absorbed)), go.prefill);
    cache_prefill_ms = ms_since(t0);
    if (r.empty()) {  // go.prefill.on_progress cancelled (Ctrl-C): nothing is sampled, nothing is cached
      GenerateResult res;
      res.prompt_tokens = session.position() - absorbed;
      res.prompt_ms = cache_prefill_ms;
      res.stop = GenerateResult::Stop::Callback;
      return res;
    }
    cached.emplace(session.clone());
  }
  GenerateResult res = session.generate(tok, ids, keep, go, on_token);  // absorbed <= keep
  // Reported as part of the prompt's evaluation, which it is.
  res.prompt_tokens += keep - absorbed;
  res.prompt_ms += cache_prefill_ms;
  if (cached) {
    cached->save_state_file(path);
    if (!quiet)
      std::fprintf(stderr, "prompt cache: saved the state after the first %lld prompt tokens to %s\n", (long long)keep,
                   path.c_str());
  }
  return res;
}

}  // namespace retnet::cli
