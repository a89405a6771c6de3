// Model::load on checkpoints broken in the ways docs/bad-input.md lists that model_errors_test and
// safetensors_test do not already cover: truncation at every section boundary of every file of a
// model directory, duplicate tensors across shards and in an index, misaligned data offsets, NaN/Inf
// in weights (LoadOptions::check_weights). Each must be a retnet::Error naming the file and problem.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/safetensors.hpp"
#include "model/weight_check.hpp"
#include "retnet/retnet.h"
#include "retnet/retnet.hpp"
#include "st_writer.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

LoadOptions cpu1(bool check_weights = false) {
  LoadOptions o;
  o.device = Device::Cpu;
  o.threads = 1;
  o.check_weights = check_weights;
  return o;
}

// The message of the Error Model::load throws ("" and a failure when it does not throw one).
std::string load_error(const fs::path& dir, const LoadOptions& o = cpu1()) {
  try {
    Model::load(dir.string(), o);
    ADD_FAILURE() << "Model::load(" << dir << ") did not throw";
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-retnet exception: " << e.what();
  }
  return "";
}

// File offsets of the section boundaries of a safetensors file: end of the length prefix, end of
// the header, and the start of every tensor after the first (= the end of the one before).
std::vector<size_t> section_boundaries(const std::string& bytes) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(bytes[size_t(i)]);
  const size_t data = size_t(8 + n);
  std::vector<size_t> cuts = {8, data};
  const json header = json::parse(bytes.substr(8, size_t(n)));
  for (const auto& [name, e] : header.items())
    if (name != "__metadata__") {
      const size_t b = e["data_offsets"][0].get<size_t>(), en = e["data_offsets"][1].get<size_t>();
      if (b > 0) cuts.push_back(data + b);
      if (en < bytes.size() - data) cuts.push_back(data + en);
    }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  return cuts;
}

using BadCheckpoint = TempDirTest;

// ---- truncation -------------------------------------------------------------------------------

TEST_F(BadCheckpoint, TruncatedAtEverySectionBoundaryOfTheWeights) {
  for (const std::string& fixture : {std::string("ts_swish_scaled"), std::string("ts_sharded")}) {
    const fs::path d = dir_ / fixture;
    fs::copy(fixture_dir(fixture), d, fs::copy_options::recursive);
    for (const auto& e : fs::directory_iterator(fixture_dir(fixture))) {
      if (e.path().extension() != ".safetensors") continue;
      const fs::path file = d / e.path().filename();
      const std::string full = slurp_file(e.path());
      std::vector<size_t> cuts = section_boundaries(full);
      ASSERT_GT(cuts.size(), 10u) << file;
      for (size_t c : {size_t(0), size_t(4), cuts[0] + 3, cuts[1] - 1, cuts[1] + 2, full.size() - 1}) cuts.push_back(c);
      for (const size_t cut : cuts) {
        SCOPED_TRACE(file.string() + " cut at " + std::to_string(cut) + " of " + std::to_string(full.size()));
        write_file(file, full.substr(0, cut));
        const std::string m = load_error(d);
        EXPECT_TRUE(Contains(m, file.string()));
        const size_t header_end = section_boundaries(full)[1];
        if (cut < 8) EXPECT_TRUE(Contains(m, "too short"));
        else if (cut < header_end) EXPECT_TRUE(Contains(m, "header length"));
        else EXPECT_TRUE(Contains(m, "past the data section"));
      }
      write_file(file, full);
    }
    EXPECT_NO_THROW(Model::load(d.string(), cpu1()));  // restored: the copy itself was fine
  }
}

TEST_F(BadCheckpoint, TruncatedJsonFilesOfTheModelDirectory) {
  // config.json and model.safetensors.index.json cut at every structural character, tokenizer.json
  // at every top-level key: each is "not valid JSON", named with its path.
  const fs::path d = dir_ / "m";
  fs::copy(fixture_dir("ts_sharded"), d, fs::copy_options::recursive);
  for (const std::string name : {"config.json", "model.safetensors.index.json"}) {
    const std::string full = slurp_file(d / name);
    int cuts = 0;
    for (size_t i = 0; i < full.size(); ++i) {
      if (std::string("{}[]:,\"").find(full[i]) == std::string::npos) continue;
      write_file(d / name, full.substr(0, i));
      const std::string m = load_error(d);
      EXPECT_TRUE(Contains(m, (d / name).string())) << "cut at " << i;
      EXPECT_TRUE(Contains(m, "not valid JSON")) << "cut at " << i;
      ++cuts;
    }
    EXPECT_GT(cuts, 20) << name;
    write_file(d / name, full);
  }
  const fs::path tok_dir = dir_ / "tok";
  fs::create_directories(tok_dir);
  const std::string tok = slurp_file(fs::path(RETNET_TEST_DATA) / "../../models/kjv-retnet/tokenizer.json");
  int cuts = 0;
  for (size_t i = tok.find("\n  \""); i != std::string::npos; i = tok.find("\n  \"", i + 1), ++cuts) {
    write_file(tok_dir / "tokenizer.json", tok.substr(0, i));
    try {
      Tokenizer::load(tok_dir.string());
      ADD_FAILURE() << "tokenizer.json cut at " << i << " loaded";
    } catch (const Error& e) {
      EXPECT_TRUE(Contains(e.what(), (tok_dir / "tokenizer.json").string()));
      EXPECT_TRUE(Contains(e.what(), "not valid JSON"));
    }
  }
  EXPECT_GE(cuts, 6);
}

// ---- duplicates -------------------------------------------------------------------------------

TEST_F(BadCheckpoint, TensorStoredInTwoShards) {
  const fs::path d = dir_ / "m";
  fs::copy(fixture_dir("ts_sharded"), d, fs::copy_options::recursive);
  const json idx = json::parse(slurp_file(d / "model.safetensors.index.json"));
  const std::string shard1 = "model-00001-of-00002.safetensors", shard2 = "model-00002-of-00002.safetensors";
  ASSERT_EQ(idx["weight_map"]["model.layer_norm.weight"], shard2);
  // A copy of the tensor (same bytes even) also in shard 1: which one is meant is ambiguous.
  StMap s1 = read_st(d / shard1);
  s1["model.layer_norm.weight"] = read_st(d / shard2).at("model.layer_norm.weight");
  write_file(d / shard1, st_file(s1));
  const std::string m = load_error(d);
  EXPECT_TRUE(Contains(m, (d / "model.safetensors.index.json").string()));
  EXPECT_TRUE(Contains(m, "tensor 'model.layer_norm.weight' is stored in both"));
  EXPECT_TRUE(Contains(m, shard1));
  EXPECT_TRUE(Contains(m, shard2));
}

TEST_F(BadCheckpoint, DuplicateKeyInWeightMap) {
  const fs::path d = dir_ / "m";
  fs::copy(fixture_dir("ts_sharded"), d, fs::copy_options::recursive);
  std::string text = slurp_file(d / "model.safetensors.index.json");
  const size_t wm = text.find("\"weight_map\"");
  const size_t brace = text.find('{', wm);
  ASSERT_NE(brace, std::string::npos);
  // The same tensor mapped to both shards; a JSON reader keeping the last key would hide the first.
  text.insert(brace + 1, "\"lm_head.weight\": \"model-00001-of-00002.safetensors\", ");
  write_file(d / "model.safetensors.index.json", text);
  const std::string m = load_error(d);
  EXPECT_TRUE(Contains(m, (d / "model.safetensors.index.json").string()));
  EXPECT_TRUE(Contains(m, "defines 'lm_head.weight' twice"));
}

TEST_F(BadCheckpoint, DuplicateTensorNameInOneFileEvenWithIdenticalEntries) {
  const fs::path d = dir_ / "m";
  fs::copy(fixture_dir("ts_swish_scaled"), d, fs::copy_options::recursive);
  const StMap t = read_st(d / "model.safetensors");
  std::string header = st_header(t);
  const std::string entry = "\"layer_norm.weight\":" + json(json::parse(header)["layer_norm.weight"]).dump();
  header.insert(1, entry + ",");  // the same name, same dtype, shape and offsets, twice
  write_file(d / "model.safetensors", st_file_with_header(header, st_data(t)));
  const std::string m = load_error(d);
  EXPECT_TRUE(Contains(m, (d / "model.safetensors").string()));
  EXPECT_TRUE(Contains(m, "defines 'layer_norm.weight' twice"));
}

TEST_F(BadCheckpoint, IndexNamesAMissingShard) {
  const fs::path d = dir_ / "m";
  fs::copy(fixture_dir("ts_sharded"), d, fs::copy_options::recursive);
  fs::remove(d / "model-00001-of-00002.safetensors");
  const std::string m = load_error(d);
  EXPECT_TRUE(Contains(m, (d / "model.safetensors.index.json").string()));
  EXPECT_TRUE(Contains(m, "shard 'model-00001-of-00002.safetensors' named in weight_map is missing"));
}

// ---- alignment --------------------------------------------------------------------------------

// safetensors does not require aligned data offsets. The engine copies a misaligned tensor into an
// aligned buffer at load (its kernels read weights through typed pointers and SIMD loads), so a
// misaligned checkpoint must load and compute exactly what the aligned one does. Under the
// sanitizer build (tools/sanitize.sh, -fsanitize=alignment) any misaligned typed access would fail.
TEST_F(BadCheckpoint, MisalignedF32AndBf16TensorsLoadAndGiveIdenticalLogits) {
  struct Case {
    std::string fixture;
    size_t data_mod;  // file offset of the data section mod 8
    size_t elem;      // the element size of the fixture's matrices
  };
  for (const Case& c : {Case{"ts_swish_scaled", 2, 4}, Case{"ts_gelu_tied_bf16", 1, 2}, Case{"ts_deepnorm_fairseq_f16", 3, 2}}) {
    SCOPED_TRACE(c.fixture);
    const fs::path d = dir_ / c.fixture;
    fs::copy(fixture_dir(c.fixture), d, fs::copy_options::recursive);
    const StMap t = read_st(d / "model.safetensors");
    write_file(d / "model.safetensors", st_file(t, c.data_mod));
    // The rewrite really is misaligned: every matrix starts off its element alignment.
    SafetensorsFile f((d / "model.safetensors").string());
    int misaligned = 0;
    for (const auto& [name, info] : f.tensors()) misaligned += reinterpret_cast<uintptr_t>(info.data) % c.elem != 0;
    EXPECT_GT(misaligned, int(f.tensors().size()) / 2);
    const auto original = load_fixture(c.fixture, 1);
    const auto shifted = Model::load(d.string(), cpu1(/*check_weights=*/true));
    const auto ids = golden_ids(c.fixture);
    EXPECT_EQ(run_logits(shifted, ids, Mode::Chunkwise), run_logits(original, ids, Mode::Chunkwise));
    EXPECT_EQ(run_logits(shifted, ids, Mode::Recurrent), run_logits(original, ids, Mode::Recurrent));
  }
}

// ---- NaN / Inf --------------------------------------------------------------------------------

struct Poison {
  std::string fixture, tensor;
  size_t element;
  float value;
  std::string word;  // "NaN", "+Inf", "-Inf"
};

void poison(StTensor& t, size_t i, float v) {
  if (t.dtype == "F32") {
    std::memcpy(t.bytes.data() + 4 * i, &v, 4);
  } else {
    const uint16_t h = t.dtype == "F16" ? f32_to_f16(v) : f32_to_bf16(v);
    std::memcpy(t.bytes.data() + 2 * i, &h, 2);
  }
}

TEST_F(BadCheckpoint, CheckWeightsNamesTheTensorFileAndElement) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::vector<Poison> cases = {
      {"ts_swish_scaled", "layers.1.retention.k_proj.weight", 123, nan, "NaN"},               // F32 matrix
      {"ts_swish_scaled", "layers.0.final_layer_norm.weight", 47, -inf, "-Inf"},              // F32 norm vector
      {"ts_gelu_tied_bf16", "model.embed_tokens.weight", 5000, inf, "+Inf"},                  // BF16, tied head
      {"ts_deepnorm_fairseq_f16", "decoder.layers.1.ffn.fc2.weight", 0, -inf, "-Inf"},        // F16, first element
      {"fla_base", "model.layers.0.attn.g_norm_swish_gate.weight", 31, nan, "NaN"},           // last element
  };
  for (const Poison& p : cases) {
    SCOPED_TRACE(p.fixture + " " + p.tensor);
    const fs::path d = dir_ / (p.fixture + "_" + std::to_string(p.element));
    fs::copy(fixture_dir(p.fixture), d, fs::copy_options::recursive);
    StMap t = read_st(d / "model.safetensors");
    ASSERT_TRUE(t.count(p.tensor));
    poison(t.at(p.tensor), p.element, p.value);
    write_file(d / "model.safetensors", st_file(t));
    const std::string m = load_error(d, cpu1(/*check_weights=*/true));
    EXPECT_TRUE(Contains(m, (d / "model.safetensors").string()));
    EXPECT_TRUE(Contains(m, "tensor '" + p.tensor + "' holds " + p.word + " at element " + std::to_string(p.element)));
    EXPECT_TRUE(Contains(m, "check_weights"));
    // Off by default: the load succeeds, and the bad weight then poisons the logits — what the
    // option exists to catch early.
    const auto model = Model::load(d.string(), cpu1());
    Session s(model);
    const auto ids = golden_ids(p.fixture);
    const auto lg = s.prefill(std::span<const int32_t>(ids.data(), ids.size()));
    bool all_finite = true;
    for (const float v : lg) all_finite &= std::isfinite(v);
    EXPECT_FALSE(all_finite);
  }
}

// The C API's retnet_load_options::check_weights reaches the same scan: the status is an error and
// retnet_last_error() names the tensor; zero (the default of a zero-initialised struct) loads it.
TEST_F(BadCheckpoint, CheckWeightsThroughTheCApi) {
  const fs::path d = dir_ / "capi_nan";
  fs::copy(fixture_dir("ts_swish_scaled"), d, fs::copy_options::recursive);
  StMap t = read_st(d / "model.safetensors");
  poison(t.at("layers.0.retention.v_proj.weight"), 7, std::numeric_limits<float>::quiet_NaN());
  write_file(d / "model.safetensors", st_file(t));
  retnet_load_options o = {};
  o.device = 1;
  o.threads = 1;
  o.check_weights = 1;
  retnet_model* m = nullptr;
  EXPECT_EQ(retnet_model_load(d.string().c_str(), &o, &m), RETNET_ERROR);
  EXPECT_EQ(m, nullptr);
  EXPECT_TRUE(Contains(retnet_last_error(), "tensor 'layers.0.retention.v_proj.weight' holds NaN at element 7"));
  o.check_weights = 0;
  ASSERT_EQ(retnet_model_load(d.string().c_str(), &o, &m), RETNET_OK) << retnet_last_error();
  retnet_model_free(m);
}

TEST_F(BadCheckpoint, CheckWeightsAcceptsEveryValidCheckpoint) {
  std::vector<std::string> dirs;
  for (const std::string& f : model_fixtures()) dirs.push_back(fixture_dir(f));
  dirs.push_back(std::string(RETNET_TEST_DATA) + "/../../models/kjv-retnet");
  for (const std::string& d : dirs) {
    SCOPED_TRACE(d);
    const auto checked = Model::load(d, cpu1(/*check_weights=*/true));
    EXPECT_EQ(checked->info().n_params, Model::load(d, cpu1())->info().n_params);
  }
}

TEST(WeightScan, FirstNonFiniteFindsTheFirstOfSeveralAtAnyAlignment) {
  // Over a block boundary of the scan (4096 elements) and at odd byte offsets.
  std::vector<uint8_t> buf(4 * 10000 + 8);
  for (const DType t : {DType::F32, DType::F16, DType::BF16}) {
    const int64_t es = dtype_traits(t).block_bytes;
    for (size_t shift : {size_t(0), size_t(1), size_t(3)}) {
      uint8_t* p = buf.data() + shift;
      const size_t n = 10000;
      auto put = [&](size_t i, float v) { store_from_f32(p, t, i, v); };
      for (size_t i = 0; i < n; ++i) put(i, float(i % 7) - 3.0f);
      EXPECT_EQ(first_non_finite(p, t, n), -1);
      put(n - 1, std::numeric_limits<float>::infinity());
      EXPECT_EQ(first_non_finite(p, t, n), int64_t(n - 1));
      put(4097, std::numeric_limits<float>::quiet_NaN());
      EXPECT_EQ(first_non_finite(p, t, n), 4097);
      // Large finite values are not flagged (f16's largest is 65504).
      put(4097, t == DType::F16 ? 65504.0f : 3.0e38f);
      EXPECT_EQ(first_non_finite(p, t, n), int64_t(n - 1)) << dtype_name(t) << " shift " << shift << " es " << es;
    }
  }
}

}  // namespace
}  // namespace retnet::test
