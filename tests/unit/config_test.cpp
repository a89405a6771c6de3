// config.json parsing: refusals (each naming the file and the key) and the defaults of each family.
#include <gtest/gtest.h>

#include "test_util.hpp"
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/config.hpp"
#include "retnet/error.hpp"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using retnet::Activation;
using retnet::Error;
using retnet::Family;
using retnet::ModelConfig;
using retnet::Pairing;

const std::string kData = RETNET_TEST_DATA;
const std::string kPath = "/models/some-model/config.json";

using retnet::test::Contains;

// Minimal complete configs of each family.
json torchscale_base() {
  return {{"vocab_size", 97},           {"decoder_embed_dim", 48}, {"decoder_value_embed_dim", 60},
          {"decoder_ffn_embed_dim", 72}, {"decoder_layers", 2},     {"decoder_retention_heads", 3}};
}
json fla_base() {
  return {{"model_type", "retnet"}, {"vocab_size", 200}, {"hidden_size", 64},
          {"num_hidden_layers", 2}, {"num_heads", 4},    {"attn_mode", "chunk"}};
}

ModelConfig parse(const json& j) { return retnet::parse_config_text(j.dump(), kPath); }

// Message of the Error that parsing `text` throws; a test failure when it does not.
std::string error_of_text(const std::string& text) {
  try {
    retnet::parse_config_text(text, kPath);
    ADD_FAILURE() << "no Error for config " << text;
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-retnet exception: " << e.what() << " for config " << text;
  }
  return "";
}
std::string error_of(const json& j) { return error_of_text(j.dump()); }

// The message names the config file and contains `word`.
void expect_refused(const json& j, const std::string& word) {
  SCOPED_TRACE(j.dump());
  const std::string m = error_of(j);
  EXPECT_TRUE(Contains(m, kPath));
  EXPECT_TRUE(Contains(m, word));
}

json with(json j, const std::string& k, const json& v) {
  j[k] = v;
  return j;
}
json without(json j, const std::string& k) {
  j.erase(k);
  return j;
}

class ConfigFileBadInput : public retnet::test::TempDirTest {
 protected:
  std::string load_error(const fs::path& d) {
    try {
      retnet::load_config(d.string());
      ADD_FAILURE() << "no Error for " << d;
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
};

// ---- the file ------------------------------------------------------------------------------

TEST_F(ConfigFileBadInput, MissingConfigJson) {
  std::string m = load_error(dir_);
  EXPECT_TRUE(Contains(m, (dir_ / "config.json").string()));
  EXPECT_TRUE(Contains(m, "config.json is missing"));
}

TEST_F(ConfigFileBadInput, ModelDirDoesNotExist) {
  std::string m = load_error(dir_ / "nowhere");
  EXPECT_TRUE(Contains(m, (dir_ / "nowhere").string()));
  EXPECT_TRUE(Contains(m, "does not exist"));
}

TEST_F(ConfigFileBadInput, ModelDirIsAFile) {
  { std::ofstream(dir_ / "plain") << "x"; }
  std::string m = load_error(dir_ / "plain");
  EXPECT_TRUE(Contains(m, (dir_ / "plain").string()));
  EXPECT_TRUE(Contains(m, "not a directory"));
}

TEST_F(ConfigFileBadInput, ConfigJsonNotJson) {
  { std::ofstream(dir_ / "config.json") << "{\"vocab_size\": 5,"; }
  std::string m = load_error(dir_);
  EXPECT_TRUE(Contains(m, (dir_ / "config.json").string()));
  EXPECT_TRUE(Contains(m, "not valid JSON"));
}

TEST_F(ConfigFileBadInput, ConfigJsonEmpty) {
  { std::ofstream(dir_ / "config.json") << ""; }
  EXPECT_TRUE(Contains(load_error(dir_), "not valid JSON"));
}

TEST_F(ConfigFileBadInput, ConfigJsonIsADirectory) {
  fs::create_directory(dir_ / "config.json");
  std::string m = load_error(dir_);
  EXPECT_TRUE(Contains(m, (dir_ / "config.json").string()));
}

TEST_F(ConfigFileBadInput, FixtureConfigsLoad) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(kData)) {
    if (!fs::exists(e.path() / "config.json")) continue;
    const std::string name = e.path().filename().string();
    SCOPED_TRACE(name);
    ModelConfig c = retnet::load_config(e.path().string());
    EXPECT_EQ(c.family, name.rfind("fla_", 0) == 0 ? Family::Fla : Family::Torchscale);
    EXPECT_GT(c.vocab_size, 0);
    EXPECT_EQ(int64_t(c.theta.size()), c.head_dk / 2);
    EXPECT_EQ(int64_t(c.log_decay.size()), c.n_heads);
    ++n;
  }
  EXPECT_GE(n, 6);
}

// ---- top level -----------------------------------------------------------------------------

TEST(ConfigBadInput, NotJson) {
  for (const std::string t : {"", "{", "{\"vocab_size\": 97,}", "vocab_size = 97", "{'a': 1}"}) {
    std::string m = error_of_text(t);
    EXPECT_TRUE(Contains(m, kPath));
    EXPECT_TRUE(Contains(m, "not valid JSON")) << t;
  }
}

TEST(ConfigBadInput, NotAnObject) {
  for (const std::string t : {"[]", "[{\"vocab_size\": 97}]", "\"retnet\"", "42", "null", "true"}) {
    std::string m = error_of_text(t);
    EXPECT_TRUE(Contains(m, kPath));
    EXPECT_TRUE(Contains(m, "not a JSON object")) << t;
  }
}

TEST(ConfigBadInput, UnknownModelType) {
  expect_refused(with(torchscale_base(), "model_type", "llama"), "unknown model_type 'llama'");
  expect_refused(with(fla_base(), "model_type", "RetNet"), "unknown model_type 'RetNet'");
  expect_refused(with(fla_base(), "model_type", 1), "model_type");
}

TEST(ConfigBadInput, MatchesNoFamily) {
  expect_refused(json{{"model_type", "retnet"}, {"vocab_size", 10}}, "cannot tell the RetNet family");
  expect_refused(json::object(), "cannot tell the RetNet family");
  // hidden_size alone is not enough to call it fla.
  expect_refused(json{{"hidden_size", 64}, {"vocab_size", 10}}, "cannot tell the RetNet family");
}

// ---- required keys -------------------------------------------------------------------------

TEST(ConfigBadInput, TorchscaleRequiredKeysMissing) {
  for (const char* k : {"vocab_size", "decoder_embed_dim", "decoder_value_embed_dim", "decoder_ffn_embed_dim",
                        "decoder_layers", "decoder_retention_heads"}) {
    expect_refused(without(torchscale_base(), k), std::string("'") + k + "'");
    // null counts as missing
    expect_refused(with(torchscale_base(), k, nullptr), std::string("'") + k + "'");
  }
  expect_refused(without(torchscale_base(), "decoder_layers"), "required key 'decoder_layers' is missing");
}

TEST(ConfigBadInput, FlaRequiredKeysMissing) {
  for (const char* k : {"vocab_size", "hidden_size", "num_hidden_layers", "num_heads"}) {
    expect_refused(without(fla_base(), k), std::string("'") + k + "'");
  }
  expect_refused(without(fla_base(), "num_heads"), "required key 'num_heads' is missing");
  expect_refused(without(fla_base(), "vocab_size"), "required key 'vocab_size' is missing");
}

// ---- types and ranges ----------------------------------------------------------------------

TEST(ConfigBadInput, WrongTypes) {
  expect_refused(with(torchscale_base(), "vocab_size", "97"), "key 'vocab_size' must be an integer");
  expect_refused(with(torchscale_base(), "decoder_layers", 2.5), "key 'decoder_layers' must be an integer");
  expect_refused(with(torchscale_base(), "decoder_embed_dim", 48.0), "key 'decoder_embed_dim' must be an integer");
  expect_refused(with(torchscale_base(), "decoder_retention_heads", json::array({3})), "'decoder_retention_heads'");
  expect_refused(with(torchscale_base(), "deepnorm", "false"), "key 'deepnorm' must be true or false");
  expect_refused(with(torchscale_base(), "deepnorm", 0), "key 'deepnorm' must be true or false");
  expect_refused(with(torchscale_base(), "layernorm_eps", "1e-5"), "key 'layernorm_eps' must be a number");
  expect_refused(with(torchscale_base(), "activation_fn", 3), "key 'activation_fn' must be a string");
  expect_refused(with(torchscale_base(), "recurrent_chunk_size", "64"), "key 'recurrent_chunk_size' must be an integer");
  expect_refused(with(fla_base(), "num_heads", "4"), "key 'num_heads' must be an integer");
  expect_refused(with(fla_base(), "expand_v", "2"), "key 'expand_v' must be a number");
  expect_refused(with(fla_base(), "tie_word_embeddings", "yes"), "key 'tie_word_embeddings' must be true or false");
  expect_refused(with(fla_base(), "eos_token_id", "2"), "eos_token_id");
  expect_refused(with(fla_base(), "eos_token_id", json::array({2, "3"})), "eos_token_id");
  expect_refused(with(fla_base(), "bos_token_id", "1"), "bos_token_id");
}

TEST(ConfigBadInput, ZeroOrNegativeDims) {
  for (const char* k : {"vocab_size", "decoder_embed_dim", "decoder_value_embed_dim", "decoder_ffn_embed_dim",
                        "decoder_layers", "decoder_retention_heads"}) {
    expect_refused(with(torchscale_base(), k, 0), std::string("key '") + k + "' = 0 is out of range");
    expect_refused(with(torchscale_base(), k, -8), std::string("key '") + k + "' = -8 is out of range");
  }
  for (const char* k : {"vocab_size", "hidden_size", "num_hidden_layers", "num_heads"}) {
    expect_refused(with(fla_base(), k, 0), std::string("key '") + k + "' = 0 is out of range");
    expect_refused(with(fla_base(), k, -1), std::string("key '") + k + "' = -1 is out of range");
  }
  expect_refused(with(fla_base(), "intermediate_size", 0), "key 'intermediate_size' = 0 is out of range");
  expect_refused(with(torchscale_base(), "recurrent_chunk_size", 0), "'recurrent_chunk_size' = 0 is out of range");
}

TEST(ConfigBadInput, HugeDims) {
  expect_refused(with(torchscale_base(), "vocab_size", int64_t(1) << 40), "'vocab_size'");
  expect_refused(with(torchscale_base(), "decoder_layers", 1e300), "'decoder_layers'");
  expect_refused(with(fla_base(), "hidden_size", uint64_t(1) << 63), "'hidden_size'");
}

TEST(ConfigBadInput, FlaDerivedDimsMustBePositive) {
  // expand_k/expand_v so small that a head gets no key or value channels.
  expect_refused(with(fla_base(), "expand_k", 0.001), "key dim per head");
  expect_refused(with(fla_base(), "expand_v", 0.001), "value dim per head");
  expect_refused(with(fla_base(), "expand_k", 0), "expand_k");
  expect_refused(with(fla_base(), "expand_v", -2), "expand_v");
  // hidden_ratio that rounds the derived FFN width to nothing.
  expect_refused(with(fla_base(), "hidden_ratio", -1), "hidden_ratio");
  expect_refused(with(fla_base(), "hidden_ratio", 0), "hidden_ratio");
}

TEST(ConfigBadInput, EpsOutOfRange) {
  expect_refused(with(torchscale_base(), "layernorm_eps", -1e-6), "'layernorm_eps' must be in [0, 1]");
  expect_refused(with(torchscale_base(), "layernorm_eps", 2.0), "'layernorm_eps' must be in [0, 1]");
  expect_refused(with(fla_base(), "norm_eps", -1.0), "'norm_eps' must be in [0, 1]");
}

TEST(ConfigBadInput, EmbedDimNotDivisibleByHeads) {
  expect_refused(with(torchscale_base(), "decoder_retention_heads", 5),
                 "decoder_embed_dim 48 is not divisible by decoder_retention_heads 5");
  expect_refused(with(torchscale_base(), "decoder_value_embed_dim", 61),
                 "decoder_value_embed_dim 61 is not divisible by decoder_retention_heads 3");
  expect_refused(with(fla_base(), "num_heads", 3), "not divisible by num_heads 3");
  expect_refused(with(fla_base(), "expand_v", 1.03), "value_dim 65 not divisible by num_heads 4");  // int(64 * 1.03)
}

TEST(ConfigBadInput, OddHeadDim) {
  json t = torchscale_base();
  t["decoder_embed_dim"] = 54;  // 54 / 6 = 9
  t["decoder_retention_heads"] = 6;
  t["decoder_value_embed_dim"] = 60;
  expect_refused(t, "key dim per head 9 must be even");
  json f = fla_base();
  f["hidden_size"] = 60;  // key dim 60 / 4 = 15
  expect_refused(f, "key dim per head 15 must be even");
}

// ---- unsupported options -------------------------------------------------------------------

TEST(ConfigBadInput, UnsupportedTorchscaleOptions) {
  expect_refused(with(torchscale_base(), "use_glu", false), "unsupported option 'use_glu'");
  expect_refused(with(torchscale_base(), "multiway", true), "unsupported option 'multiway'");
  expect_refused(with(torchscale_base(), "moe_freq", 2), "unsupported option 'moe_freq'");
  expect_refused(with(torchscale_base(), "no_output_layer", true), "unsupported option 'no_output_layer'");
  expect_refused(with(torchscale_base(), "activation_fn", "relu"), "unsupported option 'activation_fn'");
  expect_refused(with(torchscale_base(), "activation_fn", "relu"), "'relu'");
  expect_refused(with(torchscale_base(), "retnet_stability_update", true), "unsupported option 'retnet_stability_update'");
  // syncdoth v1 (qk_dim/v_dim): refused even when decoder_embed_dim is absent.
  expect_refused(with(torchscale_base(), "qk_dim", 48), "unsupported option 'qk_dim'");
  expect_refused(json{{"model_type", "retnet"}, {"qk_dim", 48}, {"v_dim", 96}, {"vocab_size", 97}}, "unsupported option 'qk_dim'");
  expect_refused(with(torchscale_base(), "v_dim", 96), "syncdoth v1");
}

TEST(ConfigBadInput, UnsupportedFlaOptions) {
  expect_refused(with(fla_base(), "use_short_conv", true), "unsupported option 'use_short_conv'");
  expect_refused(with(fla_base(), "num_kv_heads", 2), "unsupported option 'num_kv_heads'");
  expect_refused(with(fla_base(), "feature_map", "elu"), "unsupported option 'feature_map'");
  expect_refused(with(fla_base(), "attn", json{{"layers", {1}}}), "unsupported option 'attn'");
  expect_refused(with(fla_base(), "attn_mode", "linear"), "unsupported option 'attn_mode'");
  expect_refused(with(fla_base(), "hidden_act", "gelu"), "unsupported option 'hidden_act'");
  expect_refused(with(fla_base(), "num_kv_heads", 0), "'num_kv_heads'");
}

TEST(ConfigGoodInput, SupportedSpellingsOfOptionalFlags) {
  EXPECT_NO_THROW(parse(with(fla_base(), "num_kv_heads", 4)));  // equal to num_heads: plain MHA
  EXPECT_NO_THROW(parse(with(fla_base(), "num_kv_heads", nullptr)));
  EXPECT_NO_THROW(parse(with(fla_base(), "use_short_conv", false)));
  EXPECT_NO_THROW(parse(with(torchscale_base(), "use_glu", true)));
  EXPECT_NO_THROW(parse(with(torchscale_base(), "multiway", false)));
  EXPECT_NO_THROW(parse(with(torchscale_base(), "moe_freq", 0)));
  for (const char* mode : {"chunk", "fused_chunk", "parallel", "fused_recurrent"})
    EXPECT_NO_THROW(parse(with(fla_base(), "attn_mode", mode))) << mode;
  EXPECT_EQ(parse(with(torchscale_base(), "activation_fn", "silu")).ffn_activation, Activation::Silu);
  EXPECT_EQ(parse(with(torchscale_base(), "activation_fn", "swish")).ffn_activation, Activation::Silu);
  EXPECT_EQ(parse(with(fla_base(), "hidden_act", "silu")).ffn_activation, Activation::Silu);
}

// ---- defaults ------------------------------------------------------------------------------

TEST(ConfigGoodInput, TorchscaleDefaults) {
  ModelConfig c = parse(torchscale_base());
  EXPECT_EQ(c.family, Family::Torchscale);
  EXPECT_EQ(c.source, "torchscale");
  EXPECT_EQ(c.vocab_size, 97);
  EXPECT_EQ(c.d_model, 48);
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.n_heads, 3);
  EXPECT_EQ(c.head_dk, 16);
  EXPECT_EQ(c.head_dv, 20);
  EXPECT_EQ(c.ffn_dim, 72);
  EXPECT_EQ(c.ffn_activation, Activation::Gelu);
  EXPECT_EQ(c.embed_scale, 1.0f);  // no_scale_embedding defaults to true
  EXPECT_FALSE(c.embed_norm);
  EXPECT_TRUE(c.normalize_before);
  EXPECT_TRUE(c.final_norm);
  EXPECT_EQ(c.residual_alpha, 1.0f);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_EQ(c.pairing, Pairing::Interleaved);
  EXPECT_TRUE(c.torchscale_norm);
  EXPECT_FALSE(c.scale_on_q);
  EXPECT_FALSE(c.group_norm_weight);
  EXPECT_EQ(c.norm_eps, 1e-6f);
  EXPECT_EQ(c.default_chunk_size, 512);
  EXPECT_EQ(c.theta, retnet::theta_linspace(16));
  EXPECT_EQ(c.log_decay, retnet::log_decay_default(3));
  EXPECT_EQ(c.bos_token_id, -1);
  EXPECT_TRUE(c.eos_token_ids.empty());
  // With model_type it is a syncdoth (HF) config.
  EXPECT_EQ(parse(with(torchscale_base(), "model_type", "retnet")).source, "syncdoth");
}

TEST(ConfigGoodInput, TorchscaleScaledEmbedding) {
  ModelConfig c = parse(with(torchscale_base(), "no_scale_embedding", false));
  EXPECT_FLOAT_EQ(c.embed_scale, std::sqrt(48.0f));
}

TEST(ConfigGoodInput, TorchscaleDeepnormIsPostNormWithAlpha) {
  json j = with(torchscale_base(), "deepnorm", true);
  j["decoder_layers"] = 6;
  ModelConfig c = parse(j);
  EXPECT_FALSE(c.normalize_before);
  EXPECT_FALSE(c.final_norm);
  EXPECT_FLOAT_EQ(c.residual_alpha, float(std::pow(12.0, 0.25)));
  // deepnorm wins over an explicit decoder_normalize_before / subln.
  j["decoder_normalize_before"] = true;
  j["subln"] = true;
  c = parse(j);
  EXPECT_FALSE(c.normalize_before);
  EXPECT_FLOAT_EQ(c.residual_alpha, float(std::pow(12.0, 0.25)));
}

TEST(ConfigGoodInput, TorchscaleSublnDefaultForcesPreNorm) {
  ModelConfig c = parse(with(torchscale_base(), "decoder_normalize_before", false));
  EXPECT_TRUE(c.normalize_before);
  EXPECT_TRUE(c.final_norm);
  EXPECT_EQ(c.residual_alpha, 1.0f);
  json j = with(torchscale_base(), "decoder_normalize_before", false);
  j["subln"] = false;
  c = parse(j);
  EXPECT_FALSE(c.normalize_before);
  EXPECT_FALSE(c.final_norm);
  EXPECT_EQ(c.residual_alpha, 1.0f);
  j["decoder_normalize_before"] = true;
  EXPECT_TRUE(parse(j).normalize_before);
}

TEST(ConfigGoodInput, TorchscaleTyingAndDecayOptions) {
  EXPECT_TRUE(parse(with(torchscale_base(), "share_decoder_input_output_embed", true)).tied_embeddings);
  EXPECT_TRUE(parse(with(torchscale_base(), "tie_word_embeddings", true)).tied_embeddings);
  ModelConfig c = parse(with(torchscale_base(), "use_lm_decay", true));
  EXPECT_EQ(c.log_decay, retnet::log_decay_lm(3));
  EXPECT_NEAR(c.log_decay[0], std::log(1.0 - 1.0 / 32.0), 1e-6);
  EXPECT_NEAR(c.log_decay[2], std::log(1.0 - 1.0 / 512.0), 1e-6);
  EXPECT_EQ(parse(with(torchscale_base(), "recurrent_chunk_size", 7)).default_chunk_size, 7);
  EXPECT_FLOAT_EQ(parse(with(torchscale_base(), "layernorm_eps", 1e-5)).norm_eps, 1e-5f);
}

TEST(ConfigGoodInput, FlaDefaults) {
  ModelConfig c = parse(fla_base());
  EXPECT_EQ(c.family, Family::Fla);
  EXPECT_EQ(c.source, "fla");
  EXPECT_EQ(c.d_model, 64);
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.head_dk, 16);  // expand_k 1
  EXPECT_EQ(c.head_dv, 32);  // expand_v 2
  EXPECT_EQ(c.ffn_dim, 256);  // int(64 * 2 * 2/3) = 85 -> rounded up to 256
  EXPECT_EQ(c.ffn_activation, Activation::Silu);
  EXPECT_EQ(c.pairing, Pairing::Half);
  EXPECT_TRUE(c.scale_on_q);
  EXPECT_FALSE(c.torchscale_norm);
  EXPECT_TRUE(c.group_norm_weight);
  EXPECT_TRUE(c.output_gate);
  EXPECT_TRUE(c.normalize_before);
  EXPECT_TRUE(c.final_norm);
  EXPECT_EQ(c.embed_scale, 1.0f);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_EQ(c.default_chunk_size, 64);
  EXPECT_EQ(c.theta, retnet::theta_fla(16));
  EXPECT_EQ(c.log_decay, retnet::log_decay_default(4));
}

TEST(ConfigGoodInput, FlaFfnDimFromHiddenRatio) {
  auto ffn = [](int64_t hidden, const json& ratio) {
    json j = fla_base();
    j["hidden_size"] = hidden;
    if (!ratio.is_null()) j["hidden_ratio"] = ratio;
    return parse(j).ffn_dim;
  };
  EXPECT_EQ(ffn(64, nullptr), 256);
  EXPECT_EQ(ffn(512, nullptr), 768);    // int(682.67) = 682 -> 768
  EXPECT_EQ(ffn(1024, 4), 2816);        // int(2730.67) = 2730 -> 2816
  EXPECT_EQ(ffn(768, 4), 2048);         // exactly 2048: no rounding
  EXPECT_EQ(ffn(384, 1.5), 512);        // 384 -> 512
  // intermediate_size wins over hidden_ratio.
  EXPECT_EQ(parse(with(with(fla_base(), "hidden_ratio", 4), "intermediate_size", 96)).ffn_dim, 96);
}

TEST(ConfigGoodInput, FlaTokenIdsAndOptions) {
  ModelConfig c = parse(with(with(fla_base(), "eos_token_id", 2), "bos_token_id", 1));
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2}));
  EXPECT_EQ(c.bos_token_id, 1);
  c = parse(with(fla_base(), "eos_token_id", json::array({2, 7, 9})));
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 7, 9}));
  c = parse(with(fla_base(), "eos_token_id", nullptr));
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_FALSE(parse(with(fla_base(), "use_output_gate", false)).output_gate);
  EXPECT_FALSE(parse(with(fla_base(), "elementwise_affine", false)).group_norm_weight);
  EXPECT_TRUE(parse(with(fla_base(), "tie_word_embeddings", true)).tied_embeddings);
  ModelConfig e = parse(with(with(fla_base(), "expand_k", 0.5), "expand_v", 1));
  EXPECT_EQ(e.head_dk, 8);
  EXPECT_EQ(e.head_dv, 16);
  EXPECT_FLOAT_EQ(parse(with(fla_base(), "norm_eps", 1e-5)).norm_eps, 1e-5f);
  // Detected as fla from expand_v / num_hidden_layers even without attn_mode.
  EXPECT_EQ(parse(without(fla_base(), "attn_mode")).family, Family::Fla);
}

// ---- frequencies and decays ----------------------------------------------------------------

TEST(ConfigDefaults, ThetaLinspace16) {
  const std::vector<float> t = retnet::theta_linspace(16);
  ASSERT_EQ(t.size(), 8u);
  EXPECT_EQ(t[0], 1.0f);
  EXPECT_EQ(t[7], 1e-4f);  // 1 / 10000^1 in fp32
  // PyTorch 1.13 fp32 values (tests/data/angles.json, dk 16 linspace).
  const double torch_vals[8] = {1.0, 0.2682695686817169, 0.07196855545043945, 0.0193069726228714,
                                0.0051794759929180145, 0.0013894952135160565, 0.00037275932845659554,
                                9.999999747378752e-05};
  for (int i = 0; i < 8; ++i) {
    EXPECT_FLOAT_EQ(t[size_t(i)], float(torch_vals[i])) << i;
    // and independently: 10000^(-i/7) in double
    EXPECT_NEAR(double(t[size_t(i)]), std::pow(10000.0, -double(i) / 7.0), 2e-6 * std::pow(10000.0, -double(i) / 7.0))
        << i;
  }
  // strictly decreasing
  for (int i = 1; i < 8; ++i) EXPECT_LT(t[size_t(i)], t[size_t(i - 1)]);
  EXPECT_EQ(retnet::theta_linspace(2), std::vector<float>{1.0f});
}

TEST(ConfigDefaults, ThetaFla16) {
  const std::vector<float> t = retnet::theta_fla(16);
  ASSERT_EQ(t.size(), 8u);
  EXPECT_EQ(t[0], 1.0f);
  for (int i = 0; i < 8; ++i) {
    const double want = std::pow(10000.0, -2.0 * i / 16.0);
    EXPECT_NEAR(double(t[size_t(i)]), want, 1e-6 * want) << i;
  }
  const std::vector<double> t64 = retnet::theta64_fla(16);
  for (int i = 0; i < 8; ++i) EXPECT_DOUBLE_EQ(t64[size_t(i)], std::pow(10000.0, -2.0 * i / 16.0));
}

TEST(ConfigDefaults, LogDecayDefaultValues) {
  const std::vector<float> d = retnet::log_decay_default(24);
  ASSERT_EQ(d.size(), 24u);
  EXPECT_NEAR(d[0], -0.0317487, 1e-6);
  EXPECT_NEAR(d[1], -0.0157484, 1e-6);
  EXPECT_NEAR(d[2], -0.0078432, 1e-6);
  EXPECT_NEAR(d[3], -0.0039139, 1e-6);
  for (int h = 0; h < 8; ++h) EXPECT_NEAR(d[size_t(h)], std::log1p(-std::exp2(-5.0 - h)), 1e-6) << h;
  // 1 - 2^-24 is representable in fp32, so head 19 still decays...
  EXPECT_LT(d[19], 0.0f);
  // ...but fp32 1 - 2^-25 rounds (to even) to exactly 1: ln γ = 0 from head 20 on.
  EXPECT_EQ(d[20], 0.0f);
  EXPECT_EQ(d[23], 0.0f);
  EXPECT_EQ(1.0f - std::exp2(-25.0f), 1.0f);
  for (int h = 1; h < 24; ++h) EXPECT_GE(d[size_t(h)], d[size_t(h - 1)]);
}

}  // namespace
