// A streaming chat-style loop: every line read from stdin is appended to one session's state and
// answered; the conversation so far is never re-processed (a RetNet state carries it all).
//   chat MODEL_DIR [max_tokens_per_turn]
#include <retnet/retnet.hpp>

#include <cstdio>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [MAX_TOKENS_PER_TURN]\n", argv[0]);
    return 2;
  }
  try {
    auto model = retnet::Model::load(argv[1]);
    const retnet::Tokenizer tokenizer = retnet::Tokenizer::load(argv[1]);
    retnet::Session session(model);
    retnet::GenerateOptions options;
    options.sampler = model->info().generation.apply_to(options.sampler);  // generation_config.json's defaults
    options.max_tokens = argc > 2 ? std::stoll(argv[2]) : 48;
    options.sampler.seed = 1;
    std::string line;
    bool first = true;
    std::fprintf(stderr, "> ");
    while (std::getline(std::cin, line)) {
      options.add_special = first;  // BOS only at the start of the conversation
      first = false;
      session.generate(tokenizer, line + "\n", options, [](const retnet::TokenEvent& ev) {
        std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
        std::fflush(stdout);
        return true;
      });
      std::printf("\n");
      std::fflush(stdout);
      std::fprintf(stderr, "[position %lld] > ", (long long)session.position());
    }
    std::fprintf(stderr, "\n");
  } catch (const retnet::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
