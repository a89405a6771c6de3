// Prefill a long document once, save the state, and resume in another process: the state has a
// constant size whatever the document's length.
//   snapshot_resume save   MODEL_DIR DOCUMENT.txt STATE.bin
//   snapshot_resume resume MODEL_DIR STATE.bin "continuation text"
//   snapshot_resume direct MODEL_DIR DOCUMENT.txt "continuation text"   (no snapshot, for comparison)
// resume and direct print the same checksum of the logits after the continuation.
#include <retnet/retnet.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace {
std::string read(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw retnet::Error(std::string(path) + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Feeds the continuation token by token and prints a checksum of the final logits.
int continue_and_print(retnet::Session& s, const retnet::Tokenizer& tok, const std::string& text) {
  std::span<const float> logits = s.logits();
  for (int32_t id : tok.encode(text, false)) logits = s.decode(id);
  uint64_t h = 1469598103934665603ull;
  for (float f : logits) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    h = (h ^ u) * 1099511628211ull;
  }
  std::printf("position %lld logits-fnv %016llx\n", (long long)s.position(), (unsigned long long)h);
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s save|resume|direct MODEL_DIR ARG ARG\n", argv[0]);
    return 2;
  }
  try {
    const std::string mode = argv[1];
    auto model = retnet::Model::load(argv[2]);
    const retnet::Tokenizer tok = retnet::Tokenizer::load(argv[2]);
    retnet::Session s(model);
    if (mode == "save") {
      s.prefill(tok.encode(read(argv[3])));
      s.save_state_file(argv[4]);
      std::printf("saved %lld tokens of state (%zu bytes) to %s\n", (long long)s.position(), s.save_state().size(), argv[4]);
      return 0;
    }
    if (mode == "resume") {
      s.load_state_file(argv[3]);
      s.decode(tok.eos_id() >= 0 ? tok.eos_id() : 0);  // any token: both paths feed the same one
      return continue_and_print(s, tok, argv[4]);
    }
    if (mode == "direct") {
      s.prefill(tok.encode(read(argv[3])));
      s.decode(tok.eos_id() >= 0 ? tok.eos_id() : 0);
      return continue_and_print(s, tok, argv[4]);
    }
    std::fprintf(stderr, "unknown mode '%s'\n", mode.c_str());
    return 2;
  } catch (const retnet::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
