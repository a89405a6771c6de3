// Resource bounds: a model that needs more memory than the machine has fails before anything large
// is allocated, with a message saying how much it needs and how much is available; and the estimate
// behind that check is honest (the heap a load and one session really take, and an exact threshold).
#include <gtest/gtest.h>
#include <malloc.h>

#if defined(__SANITIZE_ADDRESS__)
#define RETNET_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RETNET_TEST_ASAN 1
#endif
#endif
#if RETNET_TEST_ASAN
// From <sanitizer/allocator_interface.h>, which gcc does not install: the sanitizer runtime's count
// of bytes currently allocated through it.
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/memory_plan.hpp"
#include "runtime/model_impl.hpp"
#include "retnet/retnet.hpp"
#include "st_writer.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kBundled = std::string(RETNET_TEST_DATA) + "/../../models/kjv-retnet";

LoadOptions cpu1() {
  LoadOptions o;
  o.device = Device::Cpu;
  o.threads = 1;
  return o;
}

uint64_t rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      uint64_t kb = 0;
      in >> kb;
      return kb * 1024;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

// Bytes the allocator has handed out and not taken back: unlike RSS, it does not depend on what
// earlier tests in this process freed. glibc: arena + mmapped chunks; under AddressSanitizer, whose
// allocator replaces glibc's (mallinfo2 then reports nothing), its own count.
uint64_t heap_in_use() {
#if RETNET_TEST_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  const struct mallinfo2 mi = mallinfo2();
  return uint64_t(mi.uordblks) + uint64_t(mi.hblkhd);
#endif
}

// A model directory whose config declares 32 layers of width 65536 over a 2^20-token vocabulary
// (BF16: 2.1 TiB of weights), with a checkpoint whose header declares exactly those tensors over a
// sparse file of that size: consistent and valid, only far too big. Nothing of it is read.
fs::path write_huge_model(const fs::path& d) {
  constexpr int64_t V = int64_t(1) << 20, D = 65536, L = 32;
  fs::create_directories(d);
  const json cfg = {{"model_type", "retnet"},      {"vocab_size", V},
                    {"decoder_embed_dim", D},      {"decoder_value_embed_dim", D},
                    {"decoder_ffn_embed_dim", D},  {"decoder_layers", L},
                    {"decoder_retention_heads", 1}, {"share_decoder_input_output_embed", true},
                    {"layernorm_embedding", false}};
  std::ofstream(d / "config.json") << cfg.dump();
  json h = json::object();
  uint64_t off = 0;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    uint64_t n = 2;
    for (int64_t x : shape) n *= uint64_t(x);
    h[name] = {{"dtype", "BF16"}, {"shape", shape}, {"data_offsets", {off, off + n}}};
    off += n;
  };
  add("embed_tokens.weight", {V, D});
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    for (const char* m : {"q_proj", "k_proj", "v_proj", "g_proj", "out_proj"}) add(p + "retention." + m + ".weight", {D, D});
    for (const char* m : {"fc1", "gate", "fc2"}) add(p + "ffn." + m + ".weight", {D, D});
    add(p + "retention_layer_norm.weight", {D});
    add(p + "final_layer_norm.weight", {D});
  }
  add("layer_norm.weight", {D});
  const std::string head = st_file_with_header(h.dump(), "");
  write_file(d / "model.safetensors", head);
  fs::resize_file(d / "model.safetensors", head.size() + off);  // sparse: no blocks allocated
  return d;
}

using MemoryBounds = TempDirTest;

TEST_F(MemoryBounds, HugeConsistentCheckpointFailsBeforeReadingOrAllocating) {
  const fs::path d = write_huge_model(dir_ / "huge");
  ASSERT_GT(fs::file_size(d / "model.safetensors"), uint64_t(2) << 40);
  const uint64_t rss0 = rss_bytes();
  try {
    Model::load(d.string(), cpu1());
    FAIL() << "a 2 TiB model loaded";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_TRUE(Contains(m, d.string() + ": needs 2."));
    EXPECT_TRUE(Contains(m, " TiB = "));
    EXPECT_TRUE(Contains(m, "checkpoint used in place 2."));
    EXPECT_TRUE(Contains(m, "one session "));
    EXPECT_TRUE(Contains(m, " is available ("));
  }
  // Neither paged in nor allocated: RSS grew by far less than one of its 8 GiB matrices.
  EXPECT_LT(rss_bytes(), rss0 + (uint64_t(256) << 20));
}

TEST_F(MemoryBounds, CommandLineReportsWhatAModelNeedsInOneLine) {
  const fs::path d = write_huge_model(dir_ / "huge");
  const fs::path out = dir_ / "out.txt", err = dir_ / "err.txt";
  const std::string cmd = std::string(RETNET_CLI_PATH) + " info -m '" + d.string() + "' >'" + out.string() + "' 2>'" +
                          err.string() + "'";
  const int st = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 1);
  EXPECT_EQ(slurp_file(out), "");
  const std::string e = slurp_file(err);
  EXPECT_EQ(e.rfind("error: " + d.string() + ": needs 2.", 0), 0u) << e;
  EXPECT_TRUE(Contains(e, " is available (")) << e;
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
}

TEST_F(MemoryBounds, HugeConfigWithASmallCheckpointNamesTheMismatchFirst) {
  // Shapes are checked before memory: a config that disagrees with its checkpoint is reported as
  // such, whatever size it declares.
  const fs::path d = dir_ / "m";
  fs::copy(fixture_dir("ts_swish_scaled"), d, fs::copy_options::recursive);
  json cfg = read_json((d / "config.json").string());
  cfg["decoder_embed_dim"] = 3 << 18;  // divisible by its 3 heads
  cfg["decoder_value_embed_dim"] = 3 << 18;
  std::ofstream(d / "config.json") << cfg.dump();
  try {
    Model::load(d.string(), cpu1());
    FAIL() << "loaded";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "tensor 'embed_tokens.weight' has shape [97, 48], expected [97, 786432]"));
  }
}

TEST(MemoryBoundsRandom, AbsurdSpecFailsBeforeAllocating) {
  RandomModelSpec sp;
  sp.vocab_size = sp.hidden_size = sp.layers = int64_t(1) << 20;
  sp.heads = 2;
  const uint64_t rss0 = rss_bytes();
  try {
    Model::random(sp, cpu1());
    FAIL() << "built";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "random model 1048576x1048576x1048576: needs more than 16 EiB of memory"));
    EXPECT_TRUE(Contains(e.what(), " is available ("));
  }
  // 67.5 GiB of f32 weights against a given limit of 32 GiB: refused up front, with both figures.
  sp = RandomModelSpec{};
  sp.vocab_size = 1 << 20;
  sp.hidden_size = 8192;
  sp.layers = 1;
  sp.heads = 4;
  sp.dtype = "f32";
  LoadHooks hooks;
  hooks.available_memory = uint64_t(32) << 30;
  try {
    Model::Impl::random(sp, cpu1(), hooks);
    FAIL() << "built";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "random model 1048576x8192x1: needs "));
    EXPECT_TRUE(Contains(e.what(), "converted or generated copies 67.50 GiB"));  // 64 GiB embedding + head
    EXPECT_TRUE(Contains(e.what(), "but only 32.00 GiB = 34359738368 bytes is available (the limit given to the loader)"));
  }
  EXPECT_LT(rss_bytes(), rss0 + (uint64_t(256) << 20));
}

TEST(MemoryBoundsRandom, WidthsOutOfRangeAreRefused) {
  for (const char* field : {"value_dim", "ffn_dim"}) {
    RandomModelSpec sp;
    sp.vocab_size = 64;
    sp.hidden_size = 64;
    sp.layers = 1;
    sp.heads = 2;
    (std::string(field) == "value_dim" ? sp.value_dim : sp.ffn_dim) = int64_t(1) << 40;
    try {
      Model::random(sp, cpu1());
      ADD_FAILURE() << field << " accepted";
    } catch (const Error& e) {
      EXPECT_TRUE(Contains(e.what(), std::string(field) + ": 1099511627776 is out of range"));
    }
  }
}

TEST(MemoryBoundsEstimate, ThresholdIsExact) {
  // The bundled model converted to f32: mapped checkpoint, converted copies, vectors, session.
  LoadOptions o = cpu1();
  o.dtype = "f32";
  const auto model = Model::load(kBundled, o);
  const MemoryPlan& plan = model->impl().memory;
  EXPECT_GT(plan.owned, model->info().n_params * 4 - 64 * 1024);  // every matrix converted to f32
  EXPECT_EQ(plan.mapped, 0u);                                      // none used in place
  LoadHooks hooks;
  hooks.available_memory = plan.total();
  EXPECT_NO_THROW(Model::Impl::load(kBundled, o, hooks));
  hooks.available_memory = plan.total() - 1;
  try {
    Model::Impl::load(kBundled, o, hooks);
    FAIL() << "loaded with one byte too few";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "= " + std::to_string(plan.total()) + " bytes of memory ("));
    EXPECT_TRUE(Contains(e.what(), "= " + std::to_string(plan.total() - 1) + " bytes is available"));
  }
  // In place (bf16 as stored): the matrices are the mapped checkpoint, nothing is copied.
  const auto in_place = Model::load(kBundled, cpu1());
  const MemoryPlan& p2 = in_place->impl().memory;
  EXPECT_EQ(p2.owned, 0u);
  EXPECT_LE(p2.mapped, in_place->info().weight_bytes);
  EXPECT_GT(p2.mapped, in_place->info().weight_bytes - 64 * 1024);  // all but the norm vectors
}

TEST(MemoryBoundsEstimate, PlannedHeapMatchesWhatALoadAndASessionAllocate) {
  // What the plan says goes on the heap (everything but the mapped checkpoint) against what the
  // allocator really handed out for a load (with f32 conversion) plus one session that prefilled a
  // whole 512-token block with all logits. It must not underestimate (beyond 1 MiB of bookkeeping:
  // maps of tensor names, strings, the thread pool) and not overestimate by more than the scratch it
  // reserves for bf16 weight panels (unused here: the weights are f32 after conversion) plus 10%.
  LoadOptions o = cpu1();
  o.dtype = "f32";
  const uint64_t h0 = heap_in_use();
  const auto model = Model::load(kBundled, o);
  Session s(model);
  std::vector<int32_t> ids(512);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 37) % 4096);
  PrefillOptions po;
  po.all_logits = true;
  s.prefill(ids, po);
  const uint64_t used = heap_in_use() - h0;
  const MemoryPlan& p = model->impl().memory;
  const uint64_t planned = p.owned + p.vectors + p.session + p.scratch;
  std::printf("planned heap %llu bytes (scratch %llu), allocated %llu\n", (unsigned long long)planned,
              (unsigned long long)p.scratch, (unsigned long long)used);
  EXPECT_LE(used, planned + (uint64_t(1) << 20));
  EXPECT_GE(double(used), 0.9 * double(planned - p.scratch));
}

}  // namespace
}  // namespace retnet::test
