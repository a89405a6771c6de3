// The smallest useful program: load a model, generate from a prompt, stream the text; it also counts
// the tokens' raw bytes (TokenEvent::bytes: each token's own, before its character is complete).
//   simple_generate MODEL_DIR "In the beginning" [max_tokens] [seed]
#include <retnet/retnet.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR PROMPT [MAX_TOKENS] [SEED]\n", argv[0]);
    return 2;
  }
  try {
    auto model = retnet::Model::load(argv[1]);          // shared, immutable
    const retnet::Tokenizer tokenizer = retnet::Tokenizer::load(argv[1]);
    retnet::Session session(model);                      // one sequence's state
    retnet::GenerateOptions options;
    // The model's sampling defaults (generation_config.json; the library's own where it has none).
    options.sampler = model->info().generation.apply_to(options.sampler);
    options.max_tokens = argc > 3 ? std::stoll(argv[3]) : 64;
    options.sampler.seed = argc > 4 ? std::stoull(argv[4]) : 42;
    size_t raw_bytes = 0;
    const retnet::GenerateResult r = session.generate(tokenizer, argv[2], options, [&](const retnet::TokenEvent& ev) {
      std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);  // whole UTF-8 characters, maybe none
      std::fflush(stdout);
      raw_bytes += ev.bytes.size();  // this token's own bytes, at once (maybe part of a character)
      return true;                   // false would stop generation
    });
    std::printf("\n");
    std::fprintf(stderr, "%lld prompt tokens in %.1f ms, %lld generated (%zu bytes) in %.1f ms\n",
                 (long long)r.prompt_tokens, r.prompt_ms, (long long)r.generated_tokens, raw_bytes, r.eval_ms);
  } catch (const retnet::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
