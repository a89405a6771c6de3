// Model::load on copies of valid fixtures with one thing broken, and token ids outside the
// vocabulary in Session::prefill / Session::decode. Every case must be a retnet::Error naming the
// tensor, file or id concerned.
#include <gtest/gtest.h>

#include "test_util.hpp"
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/safetensors.hpp"
#include "retnet/retnet.hpp"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using retnet::Error;

const std::string kData = RETNET_TEST_DATA;

using retnet::test::Contains;

struct TData {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};
using TMap = std::map<std::string, TData>;

TMap read_tensors(const fs::path& file) {
  retnet::SafetensorsFile f(file.string());
  TMap m;
  for (const auto& [name, t] : f.tensors())
    m[name] = {retnet::dtype_name(t.dtype), t.shape, std::string(reinterpret_cast<const char*>(t.data), t.nbytes)};
  return m;
}

// Writes a safetensors file: 8-byte length, header padded with spaces to 8 bytes, data back to back.
void write_safetensors(const fs::path& file, const TMap& tensors) {
  json h = json::object();
  h["__metadata__"] = {{"format", "pt"}};
  std::string data;
  for (const auto& [name, t] : tensors) {
    h[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string len(8, '\0');
  for (int i = 0; i < 8; ++i) len[size_t(i)] = char((uint64_t(header.size()) >> (8 * i)) & 0xff);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << len << header << data;
  ASSERT_TRUE(out.good()) << file;
}

std::string f32_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}
std::vector<float> as_f32(const std::string& bytes) {
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

retnet::LoadOptions cpu1() {
  retnet::LoadOptions o;
  o.device = retnet::Device::Cpu;
  o.threads = 1;
  return o;
}

class ModelLoadBadInput : public retnet::test::TempDirTest {
 protected:

  // Starts a broken copy of fixture `name`: its config and tensors, to edit and then write().
  void start(const std::string& name) {
    src_ = fs::path(kData) / name;
    config_ = json::parse(std::ifstream(src_ / "config.json"));
    tensors_ = read_tensors(src_ / "model.safetensors");
  }
  fs::path write() {
    { std::ofstream(dir_ / "config.json") << config_.dump(1); }
    write_safetensors(dir_ / "model.safetensors", tensors_);
    return dir_;
  }
  std::string st_path() const { return (dir_ / "model.safetensors").string(); }

  std::string load_error() {
    const fs::path d = write();
    try {
      retnet::Model::load(d.string(), cpu1());
      ADD_FAILURE() << "Model::load did not throw";
    } catch (const Error& e) {
      return e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw a non-retnet exception: " << e.what();
    }
    return "";
  }

  fs::path src_;
  json config_;
  TMap tensors_;
};

std::vector<float> last_logits(const std::shared_ptr<const retnet::Model>& m, const std::vector<int32_t>& ids) {
  retnet::Session s(m);
  auto lg = s.prefill(ids);
  return std::vector<float>(lg.begin(), lg.end());
}

TEST_F(ModelLoadBadInput, RewrittenFixtureLoadsAndMatchesOriginal) {
  // Guards the helper: an unmodified rewrite must load and compute exactly what the original does.
  start("ts_swish_scaled");
  const fs::path d = write();
  auto a = retnet::Model::load(src_.string(), cpu1());
  auto b = retnet::Model::load(d.string(), cpu1());
  EXPECT_EQ(b->info().vocab_size, 97);
  EXPECT_EQ(b->info().n_params, a->info().n_params);
  const std::vector<int32_t> ids = {5, 17, 3, 96, 0};
  EXPECT_EQ(last_logits(a, ids), last_logits(b, ids));
}

TEST_F(ModelLoadBadInput, MissingLayerTensor) {
  start("ts_swish_scaled");
  ASSERT_EQ(tensors_.erase("layers.1.retention.k_proj.weight"), 1u);
  std::string m = load_error();
  EXPECT_TRUE(Contains(m, dir_.string()));
  EXPECT_TRUE(Contains(m, "missing tensor 'layers.1.retention.k_proj.weight'"));
}

TEST_F(ModelLoadBadInput, MissingNormVector) {
  start("ts_swish_scaled");
  ASSERT_EQ(tensors_.erase("layers.0.final_layer_norm.weight"), 1u);
  EXPECT_TRUE(Contains(load_error(), "missing tensor 'layers.0.final_layer_norm.weight'"));
}

TEST_F(ModelLoadBadInput, MissingEmbedding) {
  start("ts_swish_scaled");
  ASSERT_EQ(tensors_.erase("embed_tokens.weight"), 1u);
  std::string m = load_error();
  EXPECT_TRUE(Contains(m, dir_.string()));
  EXPECT_TRUE(Contains(m, "embed_tokens.weight"));
}

TEST_F(ModelLoadBadInput, MissingEmbeddingNormWhenConfigured) {
  start("ts_swish_scaled");  // layernorm_embedding: true
  ASSERT_EQ(tensors_.erase("layernorm_embedding.weight"), 1u);
  EXPECT_TRUE(Contains(load_error(), "missing tensor 'layernorm_embedding.weight'"));
}

TEST_F(ModelLoadBadInput, WrongShapeNamesTensorAndBothShapes) {
  start("ts_swish_scaled");
  TData& t = tensors_.at("layers.0.retention.k_proj.weight");
  ASSERT_EQ(t.shape, (std::vector<int64_t>{48, 48}));
  t.shape = {48, 40};
  t.bytes.assign(48 * 40 * 4, '\0');
  std::string m = load_error();
  EXPECT_TRUE(Contains(m, st_path()));
  EXPECT_TRUE(Contains(m, "tensor 'layers.0.retention.k_proj.weight'"));
  EXPECT_TRUE(Contains(m, "[48, 40]"));
  EXPECT_TRUE(Contains(m, "expected [48, 48]"));
}

TEST_F(ModelLoadBadInput, TransposedMatrixIsRefused) {
  // Same number of elements, wrong orientation: must not be silently accepted.
  start("ts_swish_scaled");
  TData& t = tensors_.at("layers.1.ffn.fc1.weight");
  ASSERT_EQ(t.shape, (std::vector<int64_t>{72, 48}));
  t.shape = {48, 72};
  std::string m = load_error();
  EXPECT_TRUE(Contains(m, "tensor 'layers.1.ffn.fc1.weight' has shape [48, 72], expected [72, 48]"));
}

TEST_F(ModelLoadBadInput, VectorWithExtraDimension) {
  start("ts_swish_scaled");
  tensors_.at("layer_norm.weight").shape = {1, 48};
  EXPECT_TRUE(Contains(load_error(), "tensor 'layer_norm.weight' has shape [1, 48], expected [48]"));
}

TEST_F(ModelLoadBadInput, ConfigVocabDisagreesWithEmbedding) {
  start("ts_swish_scaled");
  config_["vocab_size"] = 98;
  std::string m = load_error();
  EXPECT_TRUE(Contains(m, "embed_tokens.weight"));
  EXPECT_TRUE(Contains(m, "[97, 48]"));
  EXPECT_TRUE(Contains(m, "[98, 48]"));
}

TEST_F(ModelLoadBadInput, LmHeadMissingWhileUntied) {
  start("ts_swish_scaled");  // untied, head stored as output_projection.weight
  ASSERT_EQ(tensors_.erase("output_projection.weight"), 1u);
  std::string m = load_error();
  EXPECT_TRUE(Contains(m, dir_.string()));
  EXPECT_TRUE(Contains(m, "missing tensor 'lm_head.weight'"));
  EXPECT_TRUE(Contains(m, "output_projection.weight"));
  EXPECT_TRUE(Contains(m, "does not tie"));
}

TEST_F(ModelLoadBadInput, LmHeadMissingButTiedLoads) {
  start("ts_swish_scaled");
  ASSERT_EQ(tensors_.erase("output_projection.weight"), 1u);
  config_["share_decoder_input_output_embed"] = true;
  auto m = retnet::Model::load(write().string(), cpu1());
  EXPECT_EQ(m->info().vocab_size, 97);
  retnet::Session s(m);
  const std::vector<int32_t> ids = {1, 2, 3};
  EXPECT_EQ(s.prefill(ids).size(), 97u);
}

TEST_F(ModelLoadBadInput, FlaLmHeadMissingWhileUntied) {
  start("fla_base");
  ASSERT_EQ(tensors_.erase("lm_head.weight"), 1u);
  std::string m = load_error();
  EXPECT_TRUE(Contains(m, dir_.string()));
  EXPECT_TRUE(Contains(m, "missing tensor 'lm_head.weight'"));
}

TEST_F(ModelLoadBadInput, FlaMissingFinalNorm) {
  start("fla_base");
  ASSERT_EQ(tensors_.erase("model.norm.weight"), 1u);
  EXPECT_TRUE(Contains(load_error(), "missing tensor 'model.norm.weight'"));
}

TEST_F(ModelLoadBadInput, FlaWrongShapeGroupNorm) {
  start("fla_base");
  TData& t = tensors_.at("model.layers.1.attn.g_norm_swish_gate.weight");
  ASSERT_EQ(t.shape, (std::vector<int64_t>{32}));
  t.shape = {16};
  t.bytes.resize(16 * 4);
  std::string m = load_error();
  EXPECT_TRUE(Contains(m, "tensor 'model.layers.1.attn.g_norm_swish_gate.weight' has shape [16], expected [32]"));
}

TEST_F(ModelLoadBadInput, RelPosAngleWrongShape) {
  start("ts_swish_scaled");
  TData& a = tensors_.at("retnet_rel_pos.angle");
  ASSERT_EQ(a.shape, (std::vector<int64_t>{16}));
  a.shape = {8};
  a.bytes.resize(8 * 4);
  std::string m = load_error();
  EXPECT_TRUE(Contains(m, st_path()));
  EXPECT_TRUE(Contains(m, "tensor 'retnet_rel_pos.angle' has shape [8], expected [16]"));
}

TEST_F(ModelLoadBadInput, RelPosAngleTwoDimensional) {
  start("ts_swish_scaled");
  tensors_.at("retnet_rel_pos.angle").shape = {2, 8};
  EXPECT_TRUE(Contains(load_error(), "tensor 'retnet_rel_pos.angle' has shape [2, 8], expected [16]"));
}

TEST_F(ModelLoadBadInput, RelPosAngleNotInterleavedDuplicate) {
  start("ts_swish_scaled");
  TData& a = tensors_.at("retnet_rel_pos.angle");
  std::vector<float> v = as_f32(a.bytes);
  v[3] *= 0.5f;  // pair 1 no longer (θ, θ)
  a.bytes = f32_bytes(v);
  std::string m = load_error();
  EXPECT_TRUE(Contains(m, "retnet_rel_pos.angle"));
  EXPECT_TRUE(Contains(m, "interleaved"));
}

TEST_F(ModelLoadBadInput, RelPosAngleNonFinite) {
  start("ts_swish_scaled");
  TData& a = tensors_.at("retnet_rel_pos.angle");
  std::vector<float> v = as_f32(a.bytes);
  v[0] = v[1] = std::numeric_limits<float>::quiet_NaN();
  a.bytes = f32_bytes(v);
  EXPECT_TRUE(Contains(load_error(), "retnet_rel_pos.angle"));
}

TEST_F(ModelLoadBadInput, RelPosDecayWrongShape) {
  start("ts_swish_scaled");
  TData& d = tensors_.at("retnet_rel_pos.decay");
  ASSERT_EQ(d.shape, (std::vector<int64_t>{3}));
  d.shape = {4};
  d.bytes.append(4, '\0');
  EXPECT_TRUE(Contains(load_error(), "tensor 'retnet_rel_pos.decay' has shape [4], expected [3]"));
}

TEST_F(ModelLoadBadInput, RelPosDecayPositive) {
  start("ts_swish_scaled");
  TData& d = tensors_.at("retnet_rel_pos.decay");
  std::vector<float> v = as_f32(d.bytes);
  v[1] = 0.5f;  // γ > 1 would blow up the recurrent state
  d.bytes = f32_bytes(v);
  std::string m = load_error();
  EXPECT_TRUE(Contains(m, "retnet_rel_pos.decay"));
  EXPECT_TRUE(Contains(m, "decay"));
}

TEST_F(ModelLoadBadInput, OldTorchscaleProjectionBiasRefused) {
  start("ts_swish_scaled");
  tensors_["layers.0.retention.q_proj.bias"] = {"F32", {48}, std::string(48 * 4, '\0')};
  std::string m = load_error();
  EXPECT_TRUE(Contains(m, "layers.0.retention.q_proj.bias"));
  EXPECT_TRUE(Contains(m, "not supported"));
}

TEST_F(ModelLoadBadInput, TruncatedCheckpoint) {
  start("ts_swish_scaled");
  write();
  const auto size = fs::file_size(dir_ / "model.safetensors");
  fs::resize_file(dir_ / "model.safetensors", size - 1000);
  try {
    retnet::Model::load(dir_.string(), cpu1());
    FAIL() << "no Error";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), st_path()));
    EXPECT_TRUE(Contains(e.what(), "past the data section"));
  }
}

TEST_F(ModelLoadBadInput, ConfigMissing) {
  start("ts_swish_scaled");
  write();
  fs::remove(dir_ / "config.json");
  try {
    retnet::Model::load(dir_.string(), cpu1());
    FAIL() << "no Error";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), (dir_ / "config.json").string()));
    EXPECT_TRUE(Contains(e.what(), "missing"));
  }
}

TEST_F(ModelLoadBadInput, NegativeThreadCount) {
  retnet::LoadOptions o = cpu1();
  o.threads = -2;
  try {
    retnet::Model::load(kData + "/ts_swish_scaled", o);
    FAIL() << "no Error";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "threads"));
    EXPECT_TRUE(Contains(e.what(), "-2"));
  }
}

// ---- token ids outside the vocabulary --------------------------------------------------------

class SessionBadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = retnet::Model::load(kData + "/ts_swish_scaled", cpu1()); }
  static void TearDownTestSuite() { model_.reset(); }

  static std::string prefill_error(retnet::Session& s, const std::vector<int32_t>& ids,
                                   retnet::Mode mode = retnet::Mode::Chunkwise) {
    retnet::PrefillOptions o;
    o.mode = mode;
    try {
      s.prefill(ids, o);
      ADD_FAILURE() << "prefill did not throw";
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  static std::string decode_error(retnet::Session& s, int32_t id) {
    try {
      s.decode(id);
      ADD_FAILURE() << "decode(" << id << ") did not throw";
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  static std::shared_ptr<const retnet::Model> model_;
};
std::shared_ptr<const retnet::Model> SessionBadInput::model_;

TEST_F(SessionBadInput, PrefillIdEqualToVocab) {
  ASSERT_EQ(model_->info().vocab_size, 97);
  retnet::Session s(model_);
  std::string m = prefill_error(s, {1, 2, 97});
  EXPECT_TRUE(Contains(m, "token id 97"));
  EXPECT_TRUE(Contains(m, "index 2"));
  EXPECT_TRUE(Contains(m, "[0, 97)"));
  EXPECT_EQ(s.position(), 0);
}

TEST_F(SessionBadInput, PrefillNegativeAndHugeIds) {
  retnet::Session s(model_);
  EXPECT_TRUE(Contains(prefill_error(s, {-1}), "token id -1"));
  EXPECT_TRUE(Contains(prefill_error(s, {3, INT32_MAX}), "token id 2147483647"));
  EXPECT_TRUE(Contains(prefill_error(s, {INT32_MIN, 3}), "token id -2147483648"));
  EXPECT_EQ(s.position(), 0);
}

TEST_F(SessionBadInput, PrefillBadIdInEveryMode) {
  for (retnet::Mode mode : {retnet::Mode::Parallel, retnet::Mode::Recurrent, retnet::Mode::Chunkwise}) {
    retnet::Session s(model_);
    // the bad id is last: nothing before it may be absorbed either
    EXPECT_TRUE(Contains(prefill_error(s, {4, 5, 6, 1000}, mode), "token id 1000"));
    EXPECT_EQ(s.position(), 0);
  }
}

TEST_F(SessionBadInput, DecodeOutOfVocabulary) {
  retnet::Session s(model_);
  EXPECT_TRUE(Contains(decode_error(s, 97), "token id 97"));
  EXPECT_TRUE(Contains(decode_error(s, -5), "token id -5"));
  EXPECT_TRUE(Contains(decode_error(s, INT32_MIN), "token id -2147483648"));
  EXPECT_TRUE(Contains(decode_error(s, INT32_MAX), "token id 2147483647"));
  EXPECT_EQ(s.position(), 0);
}

TEST_F(SessionBadInput, FailedCallsLeaveStateUntouched) {
  const std::vector<int32_t> ids = {5, 17, 3};
  retnet::Session fresh(model_);
  fresh.prefill(ids);
  const auto want_span = fresh.decode(42);
  const std::vector<float> want(want_span.begin(), want_span.end());

  retnet::Session s(model_);
  prefill_error(s, {5, 17, 3, 97});
  s.prefill(ids);
  EXPECT_EQ(s.position(), 3);
  decode_error(s, 97);
  decode_error(s, -1);
  EXPECT_EQ(s.position(), 3);
  const auto got = s.decode(42);
  EXPECT_EQ(std::vector<float>(got.begin(), got.end()), want);
  EXPECT_EQ(s.position(), 4);
}

TEST_F(SessionBadInput, EmptyPrefillAndNegativeChunk) {
  retnet::Session s(model_);
  EXPECT_TRUE(Contains(prefill_error(s, {}), "no tokens"));
  retnet::PrefillOptions o;
  o.chunk_size = -3;
  const std::vector<int32_t> ids = {1, 2};
  try {
    s.prefill(ids, o);
    FAIL() << "no Error";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "chunk size"));
    EXPECT_TRUE(Contains(e.what(), "-3"));
  }
  EXPECT_EQ(s.position(), 0);
}

}  // namespace
