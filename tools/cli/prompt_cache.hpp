// `retnet generate --prompt-cache FILE`: resume from a saved state whose tokens are a prefix of the
// prompt's, and save the state there after generating.
#pragma once
#include <functional>
#include <string>
#include <string_view>

#include "retnet/retnet.hpp"

namespace retnet::cli {

// session.generate(tok, prompt, go, on_token) through the prompt cache at `path`, a state snapshot of
// the prompt's tokens but the last. When the file holds a state of this model whose token history is a
// proper prefix of the prompt's tokens, it is resumed and only the rest is prefilled (a rerun of the
// same prompt prefills one token); otherwise all of it (a note on stderr unless quiet). A missing file
// is created; a damaged one, one of another model or of another format version gives a warning and is
// replaced. The sampler sees the whole prompt either way, so the result equals a run without the
// cache. GenerateResult::prompt_tokens and prompt_ms count what was prefilled in this call. The cache
// is written through write_file_atomically after generating, when it gained tokens. `session` must be
// at position 0.
GenerateResult generate_with_prompt_cache(Session& session, const Tokenizer& tok, std::string_view prompt,
                                          const GenerateOptions& go,
                                          const std::function<bool(const TokenEvent&)>& on_token,
                                          const std::string& path, bool quiet);

}  // namespace retnet::cli
