// Hostile JSON in a model directory: every JSON file the engine reads (config.json,
// generation_config.json, tokenizer.json, tokenizer_config.json, model.safetensors.index.json and
// the safetensors header) is refused when it nests deeper than a fixed limit, before it is parsed —
// nothing downstream may recurse a million levels deep — and oversized files are refused unread.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/json_file.hpp"
#include "model/config.hpp"
#include "model/safetensors.hpp"
#include "retnet/retnet.hpp"
#include "st_writer.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

namespace fs = std::filesystem;

std::string nest(int depth, const std::string& open = "[", const std::string& close = "]") {
  std::string s;
  for (int i = 0; i < depth; ++i) s += open;
  for (int i = 0; i < depth; ++i) s += close;
  return s;
}

LoadOptions cpu1() {
  LoadOptions o;
  o.device = Device::Cpu;
  o.threads = 1;
  return o;
}

// A million levels: a recursive reader would overflow the stack on this.
constexpr int kHostileDepth = 1000000;

TEST(JsonNesting, LimitIsExactAndStringsDoNotCount) {
  EXPECT_NO_THROW(check_json_nesting(nest(kMaxJsonNesting), "f"));
  try {
    check_json_nesting(nest(kMaxJsonNesting + 1), "f.json");
    ADD_FAILURE() << "depth " << kMaxJsonNesting + 1 << " accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "f.json: JSON nests deeper than 64 levels");
  }
  // Brackets inside strings (escaped quotes included) are text, not nesting.
  const std::string in_string = "{\"k\": \"" + nest(500) + "\\\"" + nest(500, "{", "}") + "\"}";
  EXPECT_NO_THROW(check_json_nesting(in_string, "f"));
  // Objects count like arrays, mixed.
  EXPECT_THROW(check_json_nesting(nest(40, "{\"a\":[", "]}"), "f"), Error);
  EXPECT_NO_THROW(check_json_nesting(nest(32, "{\"a\":[", "]}"), "f"));
}

TEST(JsonNesting, ConfigTextIsRefusedBeforeParsing) {
  const std::string deep = "{\"decoder_embed_dim\": 64, \"extra\": " + nest(kHostileDepth) + "}";
  try {
    parse_config_text(deep, "/m/config.json");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "/m/config.json: JSON nests deeper than 64 levels"));
  }
  // Nesting within the limit in a key the engine does not read is fine (real configs have
  // "task_specific_params" and the like).
  nlohmann::json cfg = read_json(fixture_dir("ts_swish_scaled") + "/config.json");
  cfg["task_specific_params"] = nlohmann::json::parse(nest(20));
  EXPECT_NO_THROW(parse_config_text(cfg.dump(), "/m/config.json"));
}

using JsonFiles = TempDirTest;

TEST_F(JsonFiles, EveryJsonFileOfAModelDirectoryIsBounded) {
  const std::string deep_object = "{\"x\": " + nest(kHostileDepth) + "}";
  // Model directories: a copy of the sharded fixture (index) and of the bundled model (tokenizer,
  // generation config), each with one file replaced by deeply nested JSON.
  const fs::path bundled = fs::path(RETNET_TEST_DATA) / "../../models/kjv-retnet";
  struct Case {
    std::string source, file;
    bool tokenizer;  // loaded by Tokenizer::load rather than Model::load
  };
  for (const Case& c : {Case{fixture_dir("ts_sharded"), "config.json", false},
                        Case{fixture_dir("ts_sharded"), "model.safetensors.index.json", false},
                        Case{bundled.string(), "generation_config.json", false},
                        Case{bundled.string(), "tokenizer.json", true},
                        Case{bundled.string(), "tokenizer_config.json", true}}) {
    SCOPED_TRACE(c.file);
    const fs::path d = dir_ / c.file;
    fs::copy(c.source, d, fs::copy_options::recursive);
    write_file(d / c.file, deep_object);
    try {
      if (c.tokenizer) Tokenizer::load(d.string());
      else Model::load(d.string(), cpu1());
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_TRUE(Contains(e.what(), (d / c.file).string()));
      EXPECT_TRUE(Contains(e.what(), "nests deeper than"));
    }
  }
}

TEST_F(JsonFiles, SafetensorsHeaderIsBounded) {
  // The header has its own, lower limit (it only ever holds tensor entries and string metadata).
  const std::string header = "{\"__metadata__\": {\"x\": " + nest(kHostileDepth) + "}}";
  write_file(dir_ / "model.safetensors", st_file_with_header(header, ""));
  try {
    SafetensorsFile f((dir_ / "model.safetensors").string());
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), (dir_ / "model.safetensors").string()));
    EXPECT_TRUE(Contains(e.what(), "nests deeper than 16 levels"));
  }
}

TEST_F(JsonFiles, OversizedAndUnreadableFilesAreNamedWithTheReason) {
  write_file(dir_ / "big.json", "{\"a\": \"" + std::string(5000, 'x') + "\"}");
  try {
    read_text_file((dir_ / "big.json").string(), 4096);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), (dir_ / "big.json").string() + ": is 5009 bytes, over the limit of 4096"));
  }
  EXPECT_EQ(read_text_file((dir_ / "big.json").string(), 5009).size(), 5009u);
  try {
    read_json_file((dir_ / "none.json").string());
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), (dir_ / "none.json").string() + ": cannot open: No such file or directory");
  }
  fs::create_directory(dir_ / "d.json");
  EXPECT_THROW(read_json_file((dir_ / "d.json").string()), Error);
}

}  // namespace
}  // namespace retnet::test
