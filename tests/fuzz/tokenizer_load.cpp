// Fuzz target: tokenizer.json (+ tokenizer_config.json) text → Tokenizer::load, the public entry
// point, then a few encodes and decodes with whatever loaded.
//
// Input: the bytes before the first NUL are tokenizer.json; if there is a NUL, the bytes after it
// are tokenizer_config.json (JSON text cannot hold a raw NUL, so the split loses nothing). Both are
// written into a private temporary directory (in /dev/shm when there is one), because load() reads
// a directory as users give it.
// Invariants: load either throws retnet::Error or gives a tokenizer whose encode results are in the
// vocabulary, whose decode is valid UTF-8, and whose StreamDecoder concatenates to decode().
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "retnet/error.hpp"
#include "retnet/tokenizer.hpp"
#include "tokenizer/unicode.hpp"

namespace {

namespace fs = std::filesystem;

// Removed at exit, so that neither libFuzzer runs nor the replay runner leave files behind.
struct TempDir {
  fs::path path;
  TempDir() {
    std::error_code ec;
    const fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    std::string tmpl = (base / "retnet-fuzz-tok-XXXXXX").string();
    FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr, "cannot create a temporary directory under %s", base.c_str());
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void write_file(const fs::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  FUZZ_CHECK(out.good(), "cannot write %s", p.c_str());
}

// Texts that reach every stage: added tokens, spaces and newlines, digits, non-ASCII letters, an
// emoji (byte fallback / byte-level), invalid UTF-8, NUL.
const std::string_view kProbes[] = {
    "Hello world", "  In the beginning\n\tGod created 12345 things.", "<s> </s> <unk> <|endoftext|> <mask>",
    "\xC3\xBC\x62\x65\x72 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80", std::string_view("a\0b\xff\xfe\xc3", 6), ""};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static TempDir dir;
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const size_t nul = all.find('\0');
  write_file(dir.path / "tokenizer.json", all.substr(0, nul));
  std::error_code ec;
  fs::remove(dir.path / "tokenizer_config.json", ec);
  if (nul != std::string_view::npos) write_file(dir.path / "tokenizer_config.json", all.substr(nul + 1));

  try {
    const retnet::Tokenizer tok = retnet::Tokenizer::load(dir.path.string());
    const int32_t vocab = tok.vocab_size();
    FUZZ_CHECK(vocab >= 0, "vocab size %d", vocab);
    FUZZ_CHECK(tok.bos_id() < vocab && tok.eos_id() < vocab, "bos %d / eos %d outside vocab %d", tok.bos_id(),
               tok.eos_id(), vocab);
    for (std::string_view text : kProbes) {
      std::vector<int32_t> ids;
      try {
        ids = tok.encode(text, true);
      } catch (const retnet::Error&) {
        continue;  // e.g. an unk_token that is not in the vocab: refused at encode, as the Rust library does
      }
      for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < vocab, "encode produced id %d of %d", id, vocab);
      ids.push_back(-1);     // unknown ids are skipped by decode
      ids.push_back(vocab);
      for (bool skip : {false, true}) {
        const std::string whole = tok.decode(ids, skip);
        FUZZ_CHECK(retnet::unicode::is_valid_utf8(whole), "decode produced invalid UTF-8");
        auto stream = tok.stream_decoder(skip);
        std::string streamed;
        for (int32_t id : ids) streamed += stream.push(id);
        streamed += stream.flush();
        FUZZ_CHECK(streamed == whole, "stream decode != decode (skip_special=%d)", int(skip));
      }
    }
  } catch (const retnet::Error&) {
  }
  return 0;
}
