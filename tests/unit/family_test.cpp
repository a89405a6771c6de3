// The family table (model/family.hpp): every family is found by id and by name, configs and random
// models take the family's conventions from it, and messages list every family.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "model/config.hpp"
#include "model/family.hpp"
#include "runtime/model_impl.hpp"
#include "retnet/retnet.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

using json = nlohmann::json;

RandomModelSpec small_spec(const std::string& family) {
  RandomModelSpec sp;
  sp.family = family;
  sp.vocab_size = 64;
  sp.hidden_size = 32;
  sp.layers = 1;
  sp.heads = 2;
  sp.dtype = "f32";
  return sp;
}

LoadOptions cpu1() {
  LoadOptions o;
  o.device = Device::Cpu;
  o.threads = 1;
  return o;
}

void expect_conventions(const ModelFamily& f, const ModelConfig& c) {
  EXPECT_EQ(c.family, f.id);
  EXPECT_EQ(c.pairing, f.pairing);
  EXPECT_EQ(c.torchscale_norm, f.torchscale_norm);
  EXPECT_EQ(c.scale_on_q, f.scale_on_q);
  EXPECT_EQ(c.theta, f.theta(c.head_dk));
  EXPECT_EQ(c.theta64, f.theta64(c.head_dk));
}

TEST(ModelFamilies, TableFindsEachFamilyByIdAndByName) {
  std::set<std::string> names;
  std::set<int> ids;
  for (const ModelFamily* f : model_families()) {
    EXPECT_EQ(&family_of(f->id), f);
    EXPECT_EQ(find_family(f->name), f);
    EXPECT_TRUE(names.insert(f->name).second) << f->name;
    EXPECT_TRUE(ids.insert(int(f->id)).second) << f->name;
    EXPECT_TRUE(f->detect && f->parse && f->bind && f->random_defaults && f->theta && f->theta64) << f->name;
  }
  EXPECT_EQ(names, (std::set<std::string>{"torchscale", "fla"}));
  EXPECT_EQ(find_family("mamba"), nullptr);
  EXPECT_EQ(family_names(), "torchscale or fla");
  // The ids are hashed into model fingerprints (state snapshots): they must keep their values.
  EXPECT_EQ(int(kTorchscaleFamily.id), 0);
  EXPECT_EQ(int(kFlaFamily.id), 1);
}

TEST(ModelFamilies, ParsedAndRandomModelsTakeTheFamilysConventions) {
  const json torchscale = {{"vocab_size", 64},
                           {"decoder_embed_dim", 32},
                           {"decoder_value_embed_dim", 64},
                           {"decoder_ffn_embed_dim", 64},
                           {"decoder_layers", 1},
                           {"decoder_retention_heads", 2}};
  const json fla = {
      {"vocab_size", 64}, {"hidden_size", 32}, {"num_hidden_layers", 1}, {"num_heads", 2}, {"attn_mode", "chunk"}};
  for (const auto& [f, config] : {std::pair{&kTorchscaleFamily, torchscale}, {&kFlaFamily, fla}}) {
    SCOPED_TRACE(f->name);
    const ModelConfig parsed = parse_config_text(config.dump(), "/m/config.json");
    expect_conventions(*f, parsed);
    const auto model = Model::random(small_spec(f->name), cpu1());
    const ModelConfig& c = model->impl().desc.cfg;
    expect_conventions(*f, c);
    EXPECT_EQ(c.theta, parsed.theta);  // same dk, same frequencies
    EXPECT_EQ(model->info().family, f->name);
    // Family-independent random defaults.
    EXPECT_EQ(c.default_chunk_size, 64);
    EXPECT_EQ(c.log_decay, log_decay_default(2));
  }
  // Each family's own random defaults.
  const auto ts = Model::random(small_spec("torchscale"), cpu1());
  EXPECT_TRUE(ts->impl().desc.cfg.embed_norm);
  EXPECT_EQ(ts->impl().desc.cfg.embed_scale, std::sqrt(32.0f));
  EXPECT_FALSE(ts->impl().desc.cfg.group_norm_weight);
  const auto fl = Model::random(small_spec("fla"), cpu1());
  EXPECT_FALSE(fl->impl().desc.cfg.embed_norm);
  EXPECT_EQ(fl->impl().desc.cfg.embed_scale, 1.0f);
  EXPECT_TRUE(fl->impl().desc.cfg.group_norm_weight);
  EXPECT_NE(fl->impl().weights.layers[0].gn_weight, nullptr);
}

TEST(ModelFamilies, MessagesListEveryFamily) {
  try {
    Model::random(small_spec("mamba"), cpu1());
    ADD_FAILURE() << "built";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "family: 'mamba' is not torchscale or fla");
  }
  try {
    parse_config_text(R"({"vocab_size": 10})", "/m/config.json");
    ADD_FAILURE() << "parsed";
  } catch (const Error& e) {
    std::string hints;
    for (const ModelFamily* f : model_families()) hints += (hints.empty() ? "" : " or ") + std::string(f->detect_hint);
    EXPECT_EQ(std::string(e.what()), "/m/config.json: cannot tell the RetNet family: expected " + hints);
    EXPECT_TRUE(Contains(e.what(),
                         "expected 'decoder_embed_dim' (torchscale/syncdoth) or 'hidden_size' with "
                         "'attn_mode' (flash-linear-attention)"));
  }
}

}  // namespace
}  // namespace retnet::test
