// Built by add_subdirectory(retnet): generates a few greedy tokens with the C++ API, checks that
// the raw token bytes add up to the text, and touches the C API so both link. Exit code 0 = pass.
//   app MODEL_DIR
#include <retnet/retnet.h>
#include <retnet/retnet.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
    return 2;
  }
  try {
    retnet::LoadOptions lo;
    lo.threads = 1;
    auto model = retnet::Model::load(argv[1], lo);
    const retnet::Tokenizer tok = retnet::Tokenizer::load(argv[1]);
    retnet::Session session(model);
    retnet::GenerateOptions go;
    go.max_tokens = 8;
    go.ignore_eos = true;
    go.sampler.temperature = 0;
    std::string text, bytes;
    const retnet::GenerateResult r = session.generate(tok, "In the beginning", go, [&](const retnet::TokenEvent& ev) {
      text.append(ev.text);
      bytes.append(ev.bytes);
      return true;
    });
    if (r.generated_tokens != 8 || text.empty() || text != r.text || bytes != text) {
      std::fprintf(stderr, "FAIL: %lld tokens, text '%s', bytes '%s'\n", (long long)r.generated_tokens, text.c_str(),
                   bytes.c_str());
      return 1;
    }
    std::printf("%s\n", text.c_str());
  } catch (const retnet::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  retnet_model* none = nullptr;
  if (retnet_model_load("/nonexistent", nullptr, &none) != RETNET_ERROR || none) {
    std::fprintf(stderr, "FAIL: the C API loaded a missing model\n");
    return 1;
  }
  return 0;
}
