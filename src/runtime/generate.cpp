// Session::generate: prompt → prefill → sample/decode loop, streaming whole UTF-8 characters and
// each token's raw bytes.
#include <chrono>
#include <set>

#include "runtime/session_impl.hpp"

namespace retnet {

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GenerateResult Session::generate(const Tokenizer& tok, std::string_view prompt, const GenerateOptions& opt,
                                 const std::function<bool(const TokenEvent&)>& on_token) {
  std::vector<int32_t> ids = tok.encode(prompt, opt.add_special);
  if (ids.empty() && position() == 0) {
    // Nothing to condition on: start from BOS.
    if (tok.bos_id() < 0) throw Error("generate: empty prompt and the tokenizer has no BOS token to start from");
    ids.push_back(tok.bos_id());
  }
  return generate(tok, ids, 0, opt, on_token);
}

GenerateResult Session::generate(const Tokenizer& tok, std::span<const int32_t> prompt, int64_t absorbed,
                                 const GenerateOptions& opt, const std::function<bool(const TokenEvent&)>& on_token) {
  const ModelInfo& info = model().info();
  if (tok.vocab_size() > info.vocab_size)
    throw Error("generate: the tokenizer has " + std::to_string(tok.vocab_size()) + " tokens but the model only " +
                std::to_string(info.vocab_size));
  opt.sampler.validate();
  if (absorbed < 0 || absorbed > int64_t(prompt.size()))
    throw Error("generate: absorbed = " + std::to_string(absorbed) + " is not in [0, " + std::to_string(prompt.size()) +
                "] (the prompt's token count)");
  if (absorbed > 0 && !history_matches(prompt.first(size_t(absorbed))))
    throw Error("generate: absorbed = " + std::to_string(absorbed) + ", but the session (at position " +
                std::to_string(position()) + ") does not hold exactly the prompt's first " + std::to_string(absorbed) +
                " tokens");
  std::set<int32_t> stop(opt.stop_tokens.begin(), opt.stop_tokens.end());
  if (stop.empty()) {
    for (int64_t e : info.eos_token_ids) stop.insert(int32_t(e));
    if (stop.empty() && tok.eos_id() >= 0) stop.insert(tok.eos_id());
  }
  const std::span<const int32_t> ids = prompt.subspan(size_t(absorbed));  // what is prefilled here
  GenerateResult res;
  res.prompt_tokens = int64_t(ids.size());
  if (ids.empty()) {
    // Mid-stream with no new text: nothing to absorb, and nothing to continue from for sampling.
    if (opt.max_tokens == 0) return res;
    if (absorbed > 0)
      throw Error(
          "generate: the session already holds the whole prompt, and a state has no logits to sample from "
          "(at least its last token must be prefilled here)");
    throw Error("generate: empty prompt: nothing to continue from");
  }

  Sampler sampler(opt.sampler, int32_t(info.vocab_size));
  for (int32_t id : prompt) sampler.accept(id);  // the penalties see what was absorbed before, too
  auto t0 = std::chrono::steady_clock::now();
  // The prompt always enters the state, also with max_tokens = 0 (which only skips sampling): a
  // caller feeding context this way continues from it.
  const int64_t pos0 = position();
  std::span<const float> logits = prefill(ids, opt.prefill);
  res.prompt_ms = ms_since(t0);
  if (logits.empty()) {
    // prefill.on_progress cancelled: whole blocks of the prompt are in the state, nothing is sampled.
    res.prompt_tokens = position() - pos0;
    res.stop = GenerateResult::Stop::Callback;
    return res;
  }
  if (opt.max_tokens == 0) return res;
  auto stream = tok.stream_decoder();
  t0 = std::chrono::steady_clock::now();
  bool stopped = false;
  bool first_text = true;  // the stream decoder treats the first non-special token as the text start
  std::string bytes;
  while (opt.max_tokens < 0 || res.generated_tokens < opt.max_tokens) {
    const int32_t next = sampler.sample(logits);
    sampler.accept(next);
    if (!opt.ignore_eos && stop.count(next)) {
      res.stop = GenerateResult::Stop::EndOfSequence;
      decode(next);  // the state ends with the end-of-sequence token, as the model would see it
      break;
    }
    ++res.generated_tokens;
    const std::string piece = stream.push(next);
    res.text += piece;
    bytes.clear();
    if (on_token && !tok.is_special(next)) {
      // Specials are skipped by the stream (skip_special), and so are ids the tokenizer does not
      // know (a model vocabulary padded beyond it): they contribute no bytes either.
      try {
        bytes = tok.token_bytes(next, first_text);
        first_text = false;
      } catch (const Error&) {
      }
    }
    if (on_token && !on_token(TokenEvent{next, piece, bytes})) {
      res.stop = GenerateResult::Stop::Callback;
      stopped = true;
      decode(next);
      break;
    }
    // Every emitted token enters the state, so a later generate() or prefill() on this session
    // continues right after the text returned (one decode beyond what sampling needs).
    logits = decode(next);
    if (opt.max_tokens >= 0 && res.generated_tokens >= opt.max_tokens) break;
  }
  const std::string rest = stream.flush();
  if (!rest.empty()) {
    res.text += rest;
    if (on_token && !stopped) on_token(TokenEvent{-1, rest, {}});
  }
  res.eval_ms = ms_since(t0);
  return res;
}

}  // namespace retnet
