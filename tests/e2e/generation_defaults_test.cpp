// ModelInfo::generation: generation_config.json's sampling defaults, read once by Model::load and
// handed to every user (C++ API, C API, the CLI's generate); its EOS ids join ModelInfo's.
#include <gtest/gtest.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <string>

#include "retnet/retnet.h"
#include "retnet/retnet.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

namespace fs = std::filesystem;

class GenerationDefaultsTest : public TempDirTest {
 protected:
  // A copy of a small fixture with generation_config.json holding `text` (none when empty).
  std::shared_ptr<const Model> load_with(const std::string& text) {
    const fs::path d = dir_ / ("m" + std::to_string(n_++));
    fs::copy(fixture_dir("ts_swish_scaled"), d);
    if (!text.empty()) std::ofstream(d / "generation_config.json") << text;
    LoadOptions o;
    o.device = Device::Cpu;
    o.threads = 1;
    return Model::load(d.string(), o);
  }
  std::string error_of(const std::string& text) {
    try {
      load_with(text);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "loaded with " << text;
    return "";
  }
  int n_ = 0;
};

TEST_F(GenerationDefaultsTest, SamplingValuesAndEosIdsOfTheFile) {
  const auto none = load_with("");
  const GenerationDefaults& g0 = none->info().generation;
  EXPECT_FALSE(g0.do_sample || g0.temperature || g0.top_k || g0.top_p);
  const SamplerParams lib;
  EXPECT_EQ(g0.apply_to(lib).temperature, lib.temperature);  // nothing given: the library's defaults

  const auto m =
      load_with(R"({"do_sample": true, "temperature": 0.5, "top_k": 7, "top_p": 0.9, "eos_token_id": [3, 5]})");
  const ModelInfo& info = m->info();
  ASSERT_TRUE(info.generation.do_sample && info.generation.temperature && info.generation.top_k &&
              info.generation.top_p);
  EXPECT_TRUE(*info.generation.do_sample);
  EXPECT_EQ(*info.generation.temperature, 0.5f);
  EXPECT_EQ(*info.generation.top_k, 7);
  EXPECT_EQ(*info.generation.top_p, 0.9f);
  EXPECT_NE(std::find(info.eos_token_ids.begin(), info.eos_token_ids.end(), 3), info.eos_token_ids.end());
  EXPECT_NE(std::find(info.eos_token_ids.begin(), info.eos_token_ids.end(), 5), info.eos_token_ids.end());
  SamplerParams p = info.generation.apply_to(lib);
  EXPECT_EQ(p.temperature, 0.5f);
  EXPECT_EQ(p.top_k, 7);
  EXPECT_EQ(p.top_p, 0.9f);
  EXPECT_EQ(p.min_p, lib.min_p);  // not in generation_config.json: untouched

  // The C API hands out the same values.
  retnet_generate_options o{};
  const retnet_model* cm = nullptr;
  retnet_load_options lo{};
  lo.device = 1;
  lo.threads = 1;
  ASSERT_EQ(retnet_model_load((dir_ / "m1").c_str(), &lo, const_cast<retnet_model**>(&cm)), RETNET_OK);
  ASSERT_EQ(retnet_generate_options_from_model(cm, &o), RETNET_OK);
  EXPECT_EQ(o.temperature, 0.5f);
  EXPECT_EQ(o.top_k, 7);
  EXPECT_EQ(o.top_p, 0.9f);
  EXPECT_EQ(o.max_tokens, 128);  // the library default, as retnet_generate_options_default gives it
  retnet_model_free(const_cast<retnet_model*>(cm));
}

TEST_F(GenerationDefaultsTest, DoSampleFalseIsGreedyAndOtherTypesCountAsAbsent) {
  const GenerationDefaults g = load_with(R"({"do_sample": false, "temperature": 0.7, "top_k": 3})")->info().generation;
  EXPECT_EQ(g.apply_to(SamplerParams{}).temperature, 0.0f);
  EXPECT_EQ(g.apply_to(SamplerParams{}).top_k, 3);
  const GenerationDefaults odd =
      load_with(R"({"do_sample": "yes", "temperature": "hot", "top_k": 1.5, "top_p": null})")->info().generation;
  EXPECT_FALSE(odd.do_sample || odd.temperature || odd.top_k || odd.top_p);
  // An integer top_k beyond int32 means the same as int32's end, not a wrapped-around value.
  EXPECT_EQ(*load_with(R"({"top_k": 1000000000000})")->info().generation.top_k, INT32_MAX);
  EXPECT_EQ(*load_with(R"({"top_k": -1000000000000})")->info().generation.top_k, INT32_MIN);
  RandomModelSpec sp;
  sp.vocab_size = 32;
  sp.hidden_size = 16;
  sp.layers = 1;
  sp.heads = 2;
  LoadOptions o;
  o.device = Device::Cpu;
  o.threads = 1;
  EXPECT_FALSE(Model::random(sp, o)->info().generation.temperature);  // no directory, no defaults
}

TEST_F(GenerationDefaultsTest, BadFilesAreRefusedNamingTheFile) {
  EXPECT_TRUE(Contains(error_of("{\"temperature\": "), "generation_config.json: not valid JSON"));
  EXPECT_TRUE(Contains(error_of("[1, 2]"), "generation_config.json: not a valid JSON object"));
  EXPECT_TRUE(Contains(error_of(R"({"eos_token_id": 100000})"),
                       "generation_config.json: eos_token_id 100000 is outside the vocabulary"));
  EXPECT_TRUE(Contains(error_of(R"({"eos_token_id": "x"})"),
                       "generation_config.json: eos_token_id must be an integer or a list of integers"));
}

}  // namespace
}  // namespace retnet::test
