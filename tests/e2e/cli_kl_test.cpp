// `retnet perplexity --kl-save / --kl-base` on the bundled model: the statistics equal a double-precision
// computation from the logits the library gives for the same text, a model against its own file gives
// exactly 0 and 100% agreement, a perturbed copy of the model gives a positive KL, and every bad base file
// is refused with one error line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "kl_divergence.hpp"
#include "retnet/tokenizer.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

// The first `chars` characters of the bundled model's validation text, cut at a line end: about 500
// tokens, enough positions for stable statistics and fast (each CLI run loads and scores in well under
// a second).
std::string sample_text(size_t chars) {
  const std::string all = slurp(bundled_dir() + "/validation.txt");
  const size_t end = all.find('\n', chars);
  return all.substr(0, end == std::string::npos ? all.size() : end + 1);
}

// A copy of the bundled model whose FFN fc1 matrices have their 3 lowest bf16 mantissa bits cleared (a
// relative change of up to 2^-5 per weight, like a coarse quantizer): same vocabulary and tokenizer,
// different predictions.
void write_perturbed_model(const fs::path& dir) {
  fs::create_directories(dir);
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    fs::copy_file(bundled_dir() + "/" + f, dir / f);
  std::string st = slurp(bundled_dir() + "/model.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, st.data(), 8);
  const nlohmann::json h = nlohmann::json::parse(st.substr(8, n));
  int changed = 0;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& t = it.value();
    if (name.find("ffn.fc1.weight") == std::string::npos) continue;
    ASSERT_EQ(t["dtype"].get<std::string>(), "BF16");
    const size_t b = 8 + n + t["data_offsets"][0].get<size_t>(), e = 8 + n + t["data_offsets"][1].get<size_t>();
    for (size_t i = b; i < e; i += 2) st[i] = char(uint8_t(st[i]) & 0xF8);  // low byte of the little-endian bf16
    ++changed;
  }
  ASSERT_EQ(changed, 4);
  spit(dir / "model.safetensors", st);
}

class CliKl : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("retnet_cli_kl_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    text_ = (dir_ / "text.txt").string();
    spit(text_, sample_text(2000));
    other_text_ = (dir_ / "other.txt").string();
    spit(other_text_, "In the beginning God created the heaven and the earth. And the earth was without form.\n");
    perturbed_ = (dir_ / "perturbed").string();
    write_perturbed_model(perturbed_);
    base_ = (dir_ / "base.kl").string();
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static CliRun run(const std::vector<std::string>& args) { return run_cli(args, dir_); }
  static std::vector<std::string> ppl(const std::string& model, std::vector<std::string> more) {
    std::vector<std::string> a = {"perplexity", "-m", model, "-f", text_, "-t", "2", "-q"};
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
  // The base file of the bundled model on text_ (made once).
  static const std::string& base() {
    if (!fs::exists(base_)) {
      const CliRun r = run(ppl(bundled_dir(), {"--kl-save", base_}));
      EXPECT_EQ(r.code, 0) << r.err;
    }
    return base_;
  }
  static double field(const std::string& out, const std::string& re) {
    std::smatch m;
    if (!std::regex_search(out, m, std::regex(re))) {
      ADD_FAILURE() << "no /" << re << "/ in:\n" << out;
      return NAN;
    }
    return std::stod(m[1]);
  }

  static inline fs::path dir_;
  static inline std::string text_, other_text_, perturbed_, base_;
};

// The statistics from first principles, in double: the library's logits of both models on the same ids.
struct Reference {
  double ppl_base = 0, ppl_model = 0, kl_mean = 0, kl_median = 0, kl_max = 0;
  int64_t top1 = 0, n = 0;
  std::vector<double> logp_base;  // [n, V]
};

Reference reference(const std::string& base_dir, const std::string& model_dir, const std::string& text) {
  LoadOptions lo;
  lo.device = Device::Cpu;
  lo.threads = 2;
  const auto mb = Model::load(base_dir, lo), mm = Model::load(model_dir, lo);
  const std::vector<int32_t> ids = Tokenizer::load(base_dir).encode(text, true);
  const int64_t chunk = mb->info().default_chunk_size;
  const std::vector<float> lb = run_logits(mb, ids, Mode::Chunkwise, chunk),
                           lm = run_logits(mm, ids, Mode::Chunkwise, chunk);
  const size_t V = size_t(mb->info().vocab_size), T = ids.size();
  Reference r;
  double nll_b = 0, nll_m = 0;
  std::vector<double> kls;
  for (size_t t = 0; t + 1 < T; ++t) {
    const float* b = lb.data() + t * V;
    const float* m = lm.data() + t * V;
    auto lse = [&](const float* x) {
      double mx = -INFINITY, s = 0;
      for (size_t i = 0; i < V; ++i) mx = std::max(mx, double(x[i]));
      for (size_t i = 0; i < V; ++i) s += std::exp(double(x[i]) - mx);
      return mx + std::log(s);
    };
    const double zb = lse(b), zm = lse(m);
    double kl = 0;
    for (size_t i = 0; i < V; ++i) {
      const double pb = double(b[i]) - zb;
      r.logp_base.push_back(pb);
      kl += std::exp(pb) * (pb - (double(m[i]) - zm));
    }
    kls.push_back(kl);
    r.top1 += std::max_element(b, b + V) - b == std::max_element(m, m + V) - m;
    nll_b += zb - b[ids[t + 1]];
    nll_m += zm - m[ids[t + 1]];
  }
  r.n = int64_t(kls.size());
  r.ppl_base = std::exp(nll_b / double(r.n));
  r.ppl_model = std::exp(nll_m / double(r.n));
  for (double k : kls) r.kl_mean += k / double(r.n);
  std::sort(kls.begin(), kls.end());
  r.kl_median = kls[size_t(std::ceil(0.5 * double(r.n))) - 1];
  r.kl_max = kls.back();
  return r;
}

TEST_F(CliKl, AModelAgainstItsOwnFileGivesExactlyZero) {
  const CliRun plain = run(ppl(bundled_dir(), {}));
  ASSERT_EQ(plain.code, 0) << plain.err;
  const CliRun r = run(ppl(bundled_dir(), {"--kl-base", base()}));
  ASSERT_EQ(r.code, 0) << r.err;
  // Saving and comparing leave the perplexity line as a plain run prints it.
  EXPECT_EQ(r.out.substr(0, plain.out.size()), plain.out);
  EXPECT_TRUE(Contains(r.out, "KL divergence mean: 0.000000e+00 ± 0.00e+00 (standard error)\n"));
  EXPECT_TRUE(
      Contains(r.out, "KL divergence median: 0.000000e+00, p90: 0.000000e+00, p99: 0.000000e+00, max: 0.000000e+00\n"));
  EXPECT_TRUE(Contains(r.out, "delta perplexity: +0.000000 (+0.0000%)\n"));
  EXPECT_TRUE(Contains(r.out, "top-1 agreement: 100.0000% ("));
  EXPECT_EQ(field(r.out, R"(perplexity: ([0-9.]+))"), field(r.out, R"(base perplexity: ([0-9.]+))"));

  // The same with independent windows (--ctx), saved and compared with the same setting.
  const std::string w = (dir_ / "ctx.kl").string();
  const CliRun s = run(ppl(bundled_dir(), {"--ctx", "100", "--kl-save", w}));
  ASSERT_EQ(s.code, 0) << s.err;
  const CliRun c = run(ppl(bundled_dir(), {"--ctx", "100", "--kl-base", w}));
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_TRUE(Contains(c.out, "KL divergence mean: 0.000000e+00"));
  EXPECT_TRUE(Contains(c.out, "top-1 agreement: 100.0000% ("));
}

TEST_F(CliKl, PerturbedModelMatchesADoublePrecisionReference) {
  const CliRun r = run(ppl(perturbed_, {"--kl-base", base()}));
  ASSERT_EQ(r.code, 0) << r.err;
  const Reference ref = reference(bundled_dir(), perturbed_, slurp(text_));
  const double kl = field(r.out, R"(KL divergence mean: ([0-9.e+-]+))");
  const double med = field(r.out, R"(KL divergence median: ([0-9.e+-]+))");
  const double mx = field(r.out, R"(max: ([0-9.e+-]+))");
  const double ppl_m = field(r.out, R"(^perplexity: ([0-9.]+))"), ppl_b = field(r.out, R"(base perplexity: ([0-9.]+))");
  const double dppl = field(r.out, R"(delta perplexity: ([-+0-9.]+))");
  const double agree = field(r.out, R"(top-1 agreement: [0-9.]+% \(([0-9]+) of)");
  std::printf("[ measured ] KL %.6e (reference %.6e), top-1 %.0f of %lld (reference %lld), ppl %.6f vs base %.6f\n", kl,
              ref.kl_mean, agree, (long long)ref.n, (long long)ref.top1, ppl_m, ppl_b);
  // A coarser fc1 changes the predictions measurably but not wholesale.
  EXPECT_GT(ref.kl_mean, 1e-4);
  EXPECT_LT(double(ref.top1), double(ref.n));
  // Tolerances: both sides use the same engine logits (the CLI scores blocks of 1024 tokens, the
  // reference one chunkwise prefill: the same chunks, so equal up to summation order, ~1e-6 relative);
  // the CLI's log-probabilities are rounded to fp32 (~6e-8 relative, a few 1e-7 absolute), which moves
  // each position's KL by at most a few 1e-7 absolute whatever its size (Σ p·|δ log p|): 1e-3 of a KL
  // of >= 1e-4, but more than that of a smaller one such as the median (7e-5: an optimisation level
  // that rounds the logits otherwise moved it by 1.1e-3 of itself), hence + 3e-7; it prints 7
  // significant digits.
  EXPECT_NEAR(kl, ref.kl_mean, 1e-3 * ref.kl_mean + 3e-7);
  EXPECT_NEAR(med, ref.kl_median, 1e-3 * ref.kl_median + 3e-7);
  EXPECT_NEAR(mx, ref.kl_max, 1e-3 * ref.kl_max + 3e-7);
  EXPECT_NEAR(agree, double(ref.top1), 1.0);  // one near-tie may resolve either way
  EXPECT_NEAR(ppl_m / ref.ppl_model, 1.0, 1e-5);
  EXPECT_NEAR(ppl_b / ref.ppl_base, 1.0, 1e-5);
  EXPECT_NEAR(dppl, ref.ppl_model - ref.ppl_base, 1e-5 * ref.ppl_base);
  EXPECT_TRUE(Contains(r.out, "positions)\n"));

  // The saved file: header as documented in kl_divergence.hpp, payload = log softmax of the base logits.
  const std::string f = slurp(base());
  ASSERT_GE(f.size(), cli::kKlHeaderBytes);
  auto i64 = [&](size_t off) {
    int64_t v;
    std::memcpy(&v, f.data() + off, 8);
    return v;
  };
  EXPECT_EQ(f.substr(0, 8), "RNKLBASE");
  const int64_t V = i64(16), n = i64(56);
  EXPECT_EQ(V, 4096);
  EXPECT_EQ(i64(24), 0);      // no --ctx
  EXPECT_EQ(i64(32), 64);     // the model's chunk size
  EXPECT_EQ(i64(40), n + 1);  // tokens
  EXPECT_EQ(n, ref.n);
  double base_ppl;
  std::memcpy(&base_ppl, f.data() + 72, 8);
  EXPECT_NEAR(base_ppl / ref.ppl_base, 1.0, 1e-6);
  ASSERT_EQ(f.size(), cli::kKlHeaderBytes + size_t(n * V) * 4);
  double worst = 0;
  for (size_t i = 0; i < size_t(n * V); ++i) {
    float v;
    std::memcpy(&v, f.data() + cli::kKlHeaderBytes + 4 * i, 4);
    worst = std::max(worst, std::fabs(double(v) - ref.logp_base[i]));
  }
  // fp32 rounding of values down to about -30 (6e-8 relative) plus summation order of the logits.
  EXPECT_LT(worst, 1e-4);
}

// A base file with its header changed and its checksum recomputed, so that only the change is wrong.
std::string with_header(std::string f, size_t off, int64_t v, size_t new_size = 0) {
  std::memcpy(f.data() + off, &v, 8);
  if (new_size) f.resize(new_size);
  cli::KlDigest d;
  d.add_bytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(f.data()), 88));
  d.add_bytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(f.data()) + 96, f.size() - 96));
  const uint64_t c = d.value();
  std::memcpy(f.data() + 88, &c, 8);
  return f;
}

TEST_F(CliKl, EveryBadBaseFileIsRefusedWithOneLine) {
  const std::string good = slurp(base());
  int64_t n = 0;
  std::memcpy(&n, good.data() + 56, 8);
  auto file = [&](const std::string& name, const std::string& bytes) {
    const std::string p = (dir_ / name).string();
    spit(p, bytes);
    return p;
  };
  std::string flipped = good;
  flipped[cli::kKlHeaderBytes + 4 * 1000 + 2] ^= 0x10;
  std::string version = good;
  version[8] = 2;
  const fs::path sub = dir_ / "a_directory";
  fs::create_directories(sub);
  const struct {
    std::vector<std::string> args;
    std::string want;
  } cases[] = {
      {ppl(bundled_dir(), {"--kl-base", (dir_ / "missing.kl").string()}), "cannot open the KL-divergence base file"},
      {ppl(bundled_dir(), {"--kl-base", sub.string()}), "is a directory"},
      {ppl(bundled_dir(), {"--kl-base", file("empty.kl", "")}), "not a KL-divergence base file"},
      {ppl(bundled_dir(), {"--kl-base", text_}), "not a KL-divergence base file"},
      {ppl(bundled_dir(), {"--kl-base", file("v2.kl", version)}), "format version 2 is not supported"},
      {ppl(bundled_dir(), {"--kl-base", file("head.kl", good.substr(0, 50))}), "the header alone is 96"},
      {ppl(bundled_dir(), {"--kl-base", file("trunc.kl", good.substr(0, good.size() - 4))}),
       "truncated KL-divergence base file"},
      {ppl(bundled_dir(), {"--kl-base", file("long.kl", good + "abcd")}), "over-long KL-divergence base file"},
      {ppl(bundled_dir(), {"--kl-base", file("flip.kl", flipped)}), "checksum mismatch"},
      // internally consistent files from another run
      {ppl(bundled_dir(), {"--kl-base", file("vocab.kl", with_header(good, 16, 4095, 96 + size_t(n) * 4095 * 4))}),
       "vocabulary size 4095, this model has 4096"},
      {ppl(bundled_dir(), {"--kl-base", file("pos.kl", with_header(good, 56, n - 1, 96 + size_t(n - 1) * 4096 * 4))}),
       "corrupt KL-divergence base file header"},
      {ppl(bundled_dir(), {"--kl-base", base(), "--ctx", "64"}),
       "saved with one pass (no --ctx), this run uses --ctx 64"},
      {{"perplexity", "-m", bundled_dir(), "-f", other_text_, "-q", "--kl-base", base()}, "saved from other tokens"},
      // the flags themselves
      {ppl(bundled_dir(), {"--kl-base", base(), "--kl-save", (dir_ / "x.kl").string()}), "--kl-save and --kl-base"},
      {ppl(bundled_dir(), {"--kl-save", (dir_ / "no" / "such" / "x.kl").string()}), "does not exist"},
      {ppl(bundled_dir(), {"--kl-save", sub.string()}), "is a directory"},
      {ppl(bundled_dir(), {"--kl-save", ""}), "--kl-save: empty path"},
      {ppl(bundled_dir(), {"--kl-base", ""}), "--kl-base: empty path"},
  };
  for (const auto& c : cases) {
    const CliRun r = run(c.args);
    SCOPED_TRACE(c.want);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_TRUE(Contains(r.err, c.want));
  }
  EXPECT_FALSE(fs::exists(dir_ / "x.kl"));
}

}  // namespace
}  // namespace retnet::test
