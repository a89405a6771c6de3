// retnet bench: prefill (pp), decode (tg) and prompt+generate (pg) throughput in llama-bench's
// conventions, with the roofline measured on this machine in the same run.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <random>
#include <sstream>

#include "cli_util.hpp"
#include "commands.hpp"
#include "retnet/system.hpp"
#include "std_streams.hpp"

#include "retnet_build_commit.hpp"  // RETNET_BUILD_COMMIT (generated at build time)

namespace retnet::cli {

namespace {

bool is_quant_type(const std::string& d) { return d == "q8_0" || d == "q4_0" || d == "q4_k"; }

using clk = std::chrono::steady_clock;

struct Shape {
  std::string name;
  int64_t d, l, h;
};

// Every shape the command line can name, as Model::random accepts it; anything else gets the one
// message below, whatever is wrong with it.
Shape parse_shape(const std::string& s) {
  // The RetNet paper's shapes: dk = 256 per head, value dim and FFN 2·D, vocabulary 32000.
  static const std::map<std::string, Shape> named = {{"125m", {"125m", 768, 12, 3}},   {"350m", {"350m", 1024, 24, 4}},
                                                     {"1.3b", {"1.3b", 2048, 24, 8}},  {"2.7b", {"2.7b", 2560, 32, 10}},
                                                     {"6.7b", {"6.7b", 4096, 32, 16}}, {"tiny", {"tiny", 64, 2, 2}}};
  if (auto it = named.find(s); it != named.end()) return it->second;
  const auto bad = [&s](const std::string& why) {
    return Error("--shape: '" + s + "' is not a model shape (" + why +
                 "); expected 125m, 350m, 1.3b, 2.7b, 6.7b, tiny or WIDTHxLAYERSxHEADS, e.g. 512x6x2");
  };
  Shape r{s, 0, 0, 0};
  char x1 = 0, x2 = 0;
  std::istringstream in(s);
  if (!(in >> r.d >> x1 >> r.l >> x2 >> r.h) || x1 != 'x' || x2 != 'x' || !in.eof()) throw bad("does not parse");
  constexpr int64_t kMaxDim = int64_t(1) << 20;  // Model::random's bound on each size
  for (int64_t v : {r.d, r.l, r.h})
    if (v < 1 || v > kMaxDim) throw bad("each of WIDTH, LAYERS and HEADS must be in [1, 1048576]");
  if (r.d % r.h != 0 || (r.d / r.h) % 2 != 0) throw bad("WIDTH must be HEADS times an even head dimension");
  return r;
}

std::vector<int64_t> parse_int_list(const std::string& flag, const std::string& s, int64_t min_value,
                                    int64_t max_value = INT64_MAX) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(tok.c_str(), &end, 10);
    if (tok.empty() || *end || errno) throw Error(flag + ": '" + s + "' is not a comma-separated list of integers");
    if (v < min_value) throw Error(flag + ": " + tok + " is below " + std::to_string(min_value));
    if (v > max_value) throw Error(flag + ": " + tok + " is more than " + std::to_string(max_value));
    out.push_back(v);
  }
  if (out.empty()) throw Error(flag + ": empty list");
  return out;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) out.push_back(tok);
  return out;
}

struct Row {
  std::string model, model_type, dtype, test;
  std::string device;  // ModelInfo::device: "cpu" or "cuda (<name>)"
  uint64_t model_size = 0, model_n_params = 0, state_bytes = 0;
  int64_t n_prompt = 0, n_gen = 0, n_depth = 0, n_batch = 1, chunk = 0;
  int threads = 1;
  std::vector<double> samples_ns, samples_ts;
  double avg_ns = 0, stddev_ns = 0, avg_ts = 0, stddev_ts = 0;
  double gbs = 0, roofline_pct = 0, gflops = 0, peak_pct = 0, bw_gbs = 0, peak_gflops = 0, sgemm_gflops = 0;
  std::string time;
  bool bf16_act = false;  // ModelInfo::bf16_activations
  std::string state_dtype = "f32";  // ModelInfo::state_dtype
  // What % peak divides by: the measured sgemm rate, or for bf16act rows the measured rate of the
  // bf16 GEMM those prefills run (dividing those by the fp32 sgemm rate would pass 100%).
  std::string peak_kind = "sgemm";
  std::string type() const {
    return dtype + (bf16_act ? "+bf16act" : "") + (state_dtype != "f32" ? "+" + state_dtype + "state" : "");
  }
};

void finish_stats(Row& r) {
  auto mean_sd = [](const std::vector<double>& v, double& m, double& sd) {
    m = 0;
    for (double x : v) m += x;
    m /= double(v.size());
    sd = 0;
    for (double x : v) sd += (x - m) * (x - m);
    sd = v.size() > 1 ? std::sqrt(sd / double(v.size() - 1)) : 0.0;  // sample stddev
  };
  mean_sd(r.samples_ns, r.avg_ns, r.stddev_ns);
  mean_sd(r.samples_ts, r.avg_ts, r.stddev_ts);
}

// The device name inside ModelInfo::device "cuda (<name>)"; "" for the CPU.
std::string gpu_of(const std::string& device) {
  const std::string pre = "cuda (";
  if (device.rfind(pre, 0) != 0 || device.size() < pre.size() + 1 || device.back() != ')') return "";
  return device.substr(pre.size(), device.size() - pre.size() - 1);
}

nlohmann::json to_json(const Row& r, const MachineInfo& mi) {
  return {{"build_commit", RETNET_BUILD_COMMIT},
          {"cpu_info", mi.cpu_name},
          {"gpu_info", gpu_of(r.device)},
          {"backends", r.device.rfind("cuda", 0) == 0 ? "CUDA" : "CPU"},
          {"model_filename", r.model},
          {"model_type", r.model_type},
          {"model_size", r.model_size},
          {"model_n_params", r.model_n_params},
          {"state_bytes", r.state_bytes},
          {"type", r.dtype},
          {"bf16_activations", r.bf16_act},
          {"state_dtype", r.state_dtype},
          {"n_batch", r.n_batch},
          {"n_threads", r.threads},
          {"chunk_size", r.chunk},
          {"n_prompt", r.n_prompt},
          {"n_gen", r.n_gen},
          {"n_depth", r.n_depth},
          {"test", r.test},
          {"test_time", r.time},
          {"avg_ns", uint64_t(r.avg_ns)},
          {"stddev_ns", uint64_t(r.stddev_ns)},
          {"avg_ts", r.avg_ts},
          {"stddev_ts", r.stddev_ts},
          {"samples_ns", r.samples_ns},
          {"samples_ts", r.samples_ts},
          {"bandwidth_gbs", r.gbs},
          {"roofline_pct", r.roofline_pct},
          {"measured_bandwidth_gbs", r.bw_gbs},
          {"gflops", r.gflops},
          {"peak_pct", r.peak_pct},
          {"peak_kind", r.peak_kind},
          {"measured_peak_gflops", r.peak_gflops},
          {"measured_sgemm_gflops", r.sgemm_gflops}};
}

std::string fixed(double v, int prec) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

std::string now_iso() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

struct BenchArgs {
  std::string models, shapes, prompts = "512", gens = "128", pgs, depths = "0", batches = "1", threads, dtypes = "bf16",
                              chunks = "0", output = "md", device = "auto", angles = "reference", quantize, state_type;
  int reps = 5;
  bool no_warmup = false, check_weights = false, bf16_activations = false;
  double bw_mib = 1024;
};

// The command line parsed and validated: nothing is measured or allocated before all of it is.
struct BenchPlan {
  std::vector<int64_t> prompts, gens, depths, batches, threads, chunks;
  std::vector<std::pair<int64_t, int64_t>> pgs;  // --pg N,M
  std::vector<std::string> dtypes, dirs;
  std::vector<Shape> shapes;
  Device device = Device::Auto;
  Angles angles = Angles::Reference;
  std::string output;
  int reps = 5;
  bool warmup = true, check_weights = false, bf16_activations = false;
  std::string state_dtype;  // --state-type
  size_t bw_bytes = 0;      // buffer of the CPU bandwidth measurement
};

BenchPlan parse_bench_args(const BenchArgs& a) {
  BenchPlan p;
  if (a.reps < 1) throw Error("--repetitions: must be >= 1");
  if (a.output != "md" && a.output != "csv" && a.output != "json" && a.output != "jsonl")
    throw Error("--output: '" + a.output + "' is not md, csv, json or jsonl");
  // 2^40 MiB: far above any machine, low enough that the byte count below is exact.
  if (!(a.bw_mib >= 1) || !(a.bw_mib <= 1099511627776.0)) throw Error("--bandwidth-mib: must be >= 1");
  p.prompts = parse_int_list("--n-prompt", a.prompts, 0);
  p.gens = parse_int_list("--n-gen", a.gens, 0);
  p.depths = parse_int_list("--n-depth", a.depths, 0);
  p.batches = parse_int_list("--batch", a.batches, 1);
  if (!a.threads.empty()) p.threads = parse_int_list("--threads", a.threads, 1, kMaxThreads);
  p.chunks = parse_int_list("--chunk-size", a.chunks, 0);
  if (!a.pgs.empty()) {
    std::stringstream ss(a.pgs);
    std::string item;
    while (std::getline(ss, item, ';')) {
      auto v = parse_int_list("--pg", item, 1);
      if (v.size() != 2) throw Error("--pg: '" + item + "' is not N,M");
      p.pgs.emplace_back(v[0], v[1]);
    }
  }
  p.dtypes = split(a.dtypes);
  for (const auto& d : p.dtypes)
    if (d != "f32" && d != "f16" && d != "bf16" && !is_quant_type(d))
      throw Error("--dtype: '" + d + "' is not f32, f16, bf16, q8_0, q4_0 or q4_k");
  for (const auto& s : split(a.models.empty() && a.shapes.empty() ? std::string("125m") : a.shapes))
    p.shapes.push_back(parse_shape(s));
  p.dirs = split(a.models);
  p.device = parse_device(a.device);
  p.angles = parse_angles(a.angles);
  p.output = a.output;
  p.reps = a.reps;
  p.warmup = !a.no_warmup;
  p.check_weights = a.check_weights;
  p.bf16_activations = a.bf16_activations;
  check_state_type(a.state_type);
  p.state_dtype = a.state_type;
  p.bw_bytes = size_t(a.bw_mib * 1048576.0);
  return p;
}

uint64_t mul_sat(uint64_t a, uint64_t b) { return a != 0 && b > UINT64_MAX / a ? UINT64_MAX : a * b; }
uint64_t add_sat(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

// Host memory of one more sequence in a tg row: its session (state, a one-row workspace, one row of
// logits on the backend and on the host) and its row of the lead session's batch workspace and logits.
// Widths: D hidden, KD = H·dk, VD = H·dv, F FFN, V vocabulary.
uint64_t sequence_bytes(uint64_t state, uint64_t D, uint64_t KD, uint64_t VD, uint64_t F, uint64_t V) {
  const uint64_t row = add_sat(add_sat(mul_sat(3, D), mul_sat(2, KD)), add_sat(mul_sat(3, VD), mul_sat(2, F)));
  const uint64_t floats = add_sat(mul_sat(2, add_sat(row, V)), V);
  return add_sat(add_sat(state, mul_sat(floats, 4)), 2048);  // + the backend's per-buffer padding
}

// The memory that scales with the arguments, checked before anything is measured or allocated: the
// token ids of the longest test and, for the random shapes, the sequences of the
// largest batch (checkpoints: check_batch_memory once each is loaded).
void check_plan_memory(const BenchPlan& p) {
  const auto ids = [](int64_t n) { return mul_sat(uint64_t(n), sizeof(int32_t)); };
  for (int64_t v : p.prompts) check_host_memory(ids(v), "--n-prompt " + std::to_string(v) + " (its token ids)");
  for (int64_t v : p.depths) check_host_memory(ids(v), "--n-depth " + std::to_string(v) + " (its token ids)");
  for (int64_t b : p.batches)
    for (int64_t n : p.gens)
      check_host_memory(mul_sat(uint64_t(b), ids(n)),
                        "--n-gen " + std::to_string(n) + " x --batch " + std::to_string(b) + " (their token ids)");
  for (const auto& [pn, gn] : p.pgs)
    check_host_memory(ids(pn + gn), "--pg " + std::to_string(pn) + "," + std::to_string(gn) + " (its token ids)");
  if (p.gens == std::vector<int64_t>{0}) return;  // no tg rows: no batches
  const int64_t b = *std::max_element(p.batches.begin(), p.batches.end());
  for (const Shape& s : p.shapes) {
    // As RandomModelSpec builds it: dk = D/H, dv = 2D/H, FFN 2D.
    const uint64_t D = uint64_t(s.d), V = s.name == "tiny" ? 512 : 32000;
    const uint64_t state = mul_sat(mul_sat(uint64_t(s.l), mul_sat(D, 2 * D) / uint64_t(s.h)), 4);
    check_host_memory(
        mul_sat(uint64_t(b), sequence_bytes(state, D, D, 2 * D, 2 * D, V)),
        "--batch " + std::to_string(b) + " (" + std::to_string(b) + " sequences of random:" + s.name + ")");
  }
}

void check_batch_memory(const BenchPlan& p, const ModelInfo& i, const std::string& label) {
  if (p.gens == std::vector<int64_t>{0}) return;
  const int64_t b = *std::max_element(p.batches.begin(), p.batches.end());
  const uint64_t one =
      sequence_bytes(i.state_bytes, uint64_t(i.hidden_size), uint64_t(i.heads * i.key_head_dim),
                     uint64_t(i.heads * i.value_head_dim), uint64_t(i.ffn_dim), uint64_t(i.vocab_size));
  check_host_memory(mul_sat(uint64_t(b), one),
                    "--batch " + std::to_string(b) + " (" + std::to_string(b) + " sequences of " + label + ")");
}

// Where the models run and the rooflines measured there, per thread count.
struct Machine {
  MachineInfo info;
  bool on_gpu = false;  // --device cuda, or auto with a CUDA device present (as Model::load decides)
  std::map<int64_t, std::pair<double, double>> roof;  // threads -> (bandwidth B/s, sgemm FLOP/s)
  std::map<int64_t, double> bf16_peak;                // measured when a model runs with bf16 activations
};

Machine measure_machine(BenchPlan& p, bool quiet) {
  Machine m;
  m.info = machine_info();
  if (p.threads.empty()) p.threads.push_back(m.info.hardware_threads);
  const std::string gpu_name = p.device == Device::Cpu ? std::string() : cuda_device_name();
  m.on_gpu = !gpu_name.empty();
  for (int64_t t : p.threads) {
    if (m.on_gpu) {
      const double bw = measure_cuda_bandwidth(size_t(1) << 30, 5), fl = measure_cuda_sgemm_flops(4096, 3);
      m.roof[t] = {bw, fl};
      if (!quiet)
        std::fprintf(
            stderr,
            "device: cuda (%s); host: %s; device-to-device copy bandwidth %.1f GB/s (bytes read + written), sgemm (fp32, no TF32) %.1f GFLOP/s (measured)\n",
            gpu_name.c_str(), m.info.cpu_name.c_str(), bw / 1e9, fl / 1e9);
      continue;
    }
    check_host_memory(p.bw_bytes, "--bandwidth-mib " + std::to_string(p.bw_bytes / 1048576) + " (the buffer it reads)");
    const double bw = measure_read_bandwidth(int(t), p.bw_bytes, 5);
    const double fl = measure_sgemm_flops(int(t), 1024, 3);
    m.roof[t] = {bw, fl};
    if (!quiet)
      std::fprintf(
          stderr,
          "device: cpu; machine: %s, %d hw threads (%s); with %lld threads: read bandwidth %.1f GB/s, sgemm %.1f GFLOP/s (measured; each decode row's roofline uses the highest of this and two more bandwidth measurements taken around it, each prefill row's peak likewise)\n",
          m.info.cpu_name.c_str(), m.info.hardware_threads, m.info.cpu_features.c_str(), (long long)t, bw / 1e9,
          fl / 1e9);
  }
  return m;
}

// One model at one thread count: what all its rows share.
struct ModelRun {
  const BenchPlan& plan;
  Machine& machine;
  std::string label, type, dtype;
  int64_t t = 1;
  std::shared_ptr<const Model> model;
  double bw = 0, sgemm = 0, peak = 0;
  const char* peak_kind = "sgemm";
  std::mt19937 rng{1234};

  const ModelInfo& info() const { return model->info(); }
  std::vector<int32_t> random_ids(int64_t n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& x : ids) x = int32_t(rng() % uint32_t(info().vocab_size));
    return ids;
  }
};

// The state rows start from: after `depth` tokens, built once by a real chunkwise prefill; every
// repetition starts from a copy (a RetNet state has constant size whatever the depth).
struct Start {
  int64_t depth = 0, chunk = 0;
  Session base;
  std::vector<uint8_t> snapshot;
};

// Times body over the repetitions, on n_seq sessions, and fills in the row's common fields.
Row time_row(ModelRun& m, Start& st, Row r, const std::function<void(std::vector<Session>&)>& body, int64_t tokens,
             int64_t n_seq) {
  const ModelInfo& info = m.info();
  r.model = m.label;
  r.model_type = m.type;
  r.dtype = m.dtype;
  r.threads = int(m.t);
  r.n_depth = st.depth;
  r.device = info.device;
  r.bf16_act = info.bf16_activations;
  r.state_dtype = info.state_dtype;
  r.chunk = st.chunk;
  r.model_size = info.weight_bytes;
  r.model_n_params = info.n_params;
  r.state_bytes = info.state_bytes;
  r.bw_gbs = m.bw / 1e9;
  r.peak_gflops = m.peak / 1e9;
  r.time = now_iso();
  r.sgemm_gflops = m.sgemm / 1e9;
  r.peak_kind = m.peak_kind;
  // The sessions live across repetitions, each starting from the state at `depth` restored
  // from a snapshot (untimed): what a session sets up on its first steps — a GPU session
  // captures its decode step into a CUDA graph — is done in the warm-up, as in a server.
  std::vector<Session> seqs;
  for (int64_t i = 0; i < n_seq; ++i) seqs.push_back(st.base.clone());
  for (int rep = m.plan.warmup ? -1 : 0; rep < m.plan.reps; ++rep) {
    for (Session& s : seqs) s.load_state(st.snapshot);
    const auto t0 = clk::now();
    body(seqs);
    const double ns = double(std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now() - t0).count());
    if (rep < 0) continue;
    r.samples_ns.push_back(ns);
    r.samples_ts.push_back(double(tokens) * 1e9 / ns);
    if (interrupted()) throw Error("interrupted");
  }
  finish_stats(r);
  return r;
}

void prefill_rows(ModelRun& m, Start& st, std::vector<Row>& rows) {
  const ModelInfo& info = m.info();
  // Prefill FLOPs per token: every prompt token multiplies the layers' matrices; a prefill runs the head only for its
  // last token (n_params also counts the embedding table, which is gathered, and an untied head).
  const double layer_params = double(info.layer_matrix_params);
  const double head_params = double(info.vocab_size * info.hidden_size);
  for (int64_t p : m.plan.prompts) {
    if (p == 0) continue;
    const auto ids = m.random_ids(p);
    Row r;
    r.test = "pp" + std::to_string(p);
    r.n_prompt = p;
    PrefillOptions po;
    po.chunk_size = st.chunk;
    // As the decode rows' bandwidth: the GEMM rate drifts on a shared machine, so a prefill
    // row's peak is the highest of the run's measurement and two taken right around it (a
    // single low sample gave rows above 100% of peak).
    auto gemm_rate = [&] {
      if (m.machine.on_gpu) return m.peak;
      return info.bf16_activations ? measure_bf16_gemm_flops(int(m.t), 1024, 2)
                                   : measure_sgemm_flops(int(m.t), 1024, 2);
    };
    const double peak_before = gemm_rate();
    r = time_row(
        m, st, r, [&](std::vector<Session>& s) { s[0].prefill(ids, po); }, p, 1);
    const double peak_row = std::max({m.peak, peak_before, gemm_rate()});
    r.peak_gflops = peak_row / 1e9;
    if (!info.bf16_activations || m.machine.on_gpu) r.sgemm_gflops = std::max(r.sgemm_gflops, peak_row / 1e9);
    const int64_t chunk = st.chunk;
    const double retention = double(info.layers * info.heads) *
                             (2.0 * double(std::min(chunk, p)) * double(info.key_head_dim + info.value_head_dim) +
                              4.0 * double(info.key_head_dim * info.value_head_dim));
    r.gflops = r.avg_ts * (2.0 * layer_params + retention + 2.0 * head_params / double(p)) / 1e9;
    r.peak_pct = 100.0 * r.gflops * 1e9 / peak_row;
    rows.push_back(r);
  }
}

void decode_rows(ModelRun& m, Start& st, std::vector<Row>& rows) {
  const ModelInfo& info = m.info();
  for (int64_t b : m.plan.batches) {
    for (int64_t n : m.plan.gens) {
      if (n == 0) continue;
      const auto ids = m.random_ids(n * b);
      // This machine is shared and its bandwidth drifts between seconds: the roofline of a
      // decode row is the higher of two measurements taken right before and right after it
      // (the conservative choice: a higher bandwidth gives a lower % of roofline).
      auto bw_rate = [&] { return m.machine.on_gpu ? m.bw : measure_read_bandwidth(int(m.t), m.plan.bw_bytes, 3); };
      const double bw_before = bw_rate();
      Row r;
      r.test = "tg" + std::to_string(n);
      r.n_gen = n;
      r.n_batch = b;
      r = time_row(
          m, st, r,
          [&](std::vector<Session>& s) {
            if (b == 1) {
              for (int64_t i = 0; i < n; ++i) s[0].decode(ids[size_t(i)]);
              return;
            }
            std::vector<Session*> ptrs;
            for (auto& x : s) ptrs.push_back(&x);
            for (int64_t i = 0; i < n; ++i)
              Session::decode_batch(ptrs, std::span<const int32_t>(ids.data() + i * b, size_t(b)));
          },
          n * b, b);
      // One step reads every weight once and each sequence's state twice (read + write).
      const double step_bytes = double(info.decode_weight_bytes) + 2.0 * double(b) * double(info.state_bytes);
      const double bw_row = std::max({m.bw, bw_before, bw_rate()});
      r.bw_gbs = bw_row / 1e9;
      r.gbs = r.avg_ts / double(b) * step_bytes / 1e9;
      r.roofline_pct = 100.0 * r.gbs * 1e9 / bw_row;
      rows.push_back(r);
    }
  }
}

void prompt_generate_rows(ModelRun& m, Start& st, std::vector<Row>& rows) {
  for (const auto& pg : m.plan.pgs) {
    const int64_t pn = pg.first, gn = pg.second;
    const auto ids = m.random_ids(pn + gn);
    Row r;
    r.test = "pp" + std::to_string(pn) + "+tg" + std::to_string(gn);
    r.n_prompt = pn;
    r.n_gen = gn;
    PrefillOptions po;
    po.chunk_size = st.chunk;
    r = time_row(
        m, st, r,
        [&](std::vector<Session>& s) {
          s[0].prefill(std::span<const int32_t>(ids.data(), size_t(pn)), po);
          for (int64_t i = 0; i < gn; ++i) s[0].decode(ids[size_t(pn + i)]);
        },
        pn + gn, 1);
    rows.push_back(r);
  }
}

// Every row of one model at one thread count: per chunk size and depth, the pp, tg and pg tests.
void run_model(ModelRun& m, std::vector<Row>& rows, bool quiet) {
  const ModelInfo& info = m.info();
  check_batch_memory(m.plan, info, m.label);
  m.bw = m.machine.roof[m.t].first;
  m.sgemm = m.peak = m.machine.roof[m.t].second;
  if (info.bf16_activations && !m.machine.on_gpu) {
    auto& bf16_peak = m.machine.bf16_peak;
    if (!bf16_peak.count(m.t)) {
      bf16_peak[m.t] = measure_bf16_gemm_flops(int(m.t), 1024, 3);
      if (!quiet)
        std::fprintf(stderr,
                     "with %lld threads: bf16 GEMM (--bf16-activations: bf16 x bf16, fp32 sums) %.1f GFLOP/s "
                     "(measured; the %% peak of bf16act rows)\n",
                     (long long)m.t, bf16_peak[m.t] / 1e9);
    }
    m.peak = bf16_peak[m.t];
    m.peak_kind = "bf16 gemm";
  }
  for (int64_t chunk_opt : m.plan.chunks) {
    const int64_t chunk = chunk_opt > 0 ? chunk_opt : info.default_chunk_size;
    for (int64_t depth : m.plan.depths) {
      Start st{depth, chunk, Session(m.model), {}};
      if (depth > 0) {
        PrefillOptions po;
        po.chunk_size = chunk;
        const auto ids = m.random_ids(depth);
        st.base.prefill(ids, po);
      }
      st.snapshot = st.base.save_state();
      prefill_rows(m, st, rows);
      decode_rows(m, st, rows);
      prompt_generate_rows(m, st, rows);
    }
  }
}

std::vector<Row> run_all(const BenchPlan& p, Machine& machine, bool quiet) {
  std::vector<Row> rows;
  auto run = [&](const std::string& label, const std::string& type, const std::string& dtype, int64_t t,
                 std::shared_ptr<const Model> model) {
    ModelRun m{p, machine, label, type, dtype, t, std::move(model)};
    run_model(m, rows, quiet);
  };
  for (const auto& dtype : p.dtypes)
    for (int64_t t : p.threads) {
      LoadOptions lo;
      lo.threads = int(t);
      lo.device = p.device;
      lo.angles = p.angles;
      lo.bf16_activations = p.bf16_activations;
      lo.state_dtype = p.state_dtype;
      for (const Shape& s : p.shapes) {
        RandomModelSpec sp;
        sp.hidden_size = s.d;
        sp.layers = s.l;
        sp.heads = s.h;
        sp.dtype = dtype;
        if (s.name == "tiny") sp.vocab_size = 512;
        run("random:" + s.name, s.name, dtype, t, Model::random(sp, lo));
      }
      for (const auto& d : p.dirs) {
        LoadOptions dlo = lo;
        // Block types quantize the projections at load (embedding and head as stored).
        (is_quant_type(dtype) ? dlo.quantize : dlo.dtype) = dtype;
        dlo.check_weights = p.check_weights;
        run(d, "checkpoint", dtype, t, Model::load(d, dlo));
      }
    }
  return rows;
}

void print_rows(const std::vector<Row>& rows, const std::string& format, const MachineInfo& mi) {
  if (format == "json" || format == "jsonl") {
    nlohmann::json arr = nlohmann::json::array();
    for (const Row& r : rows) {
      if (format == "jsonl") outf("%s\n", to_json(r, mi).dump().c_str());
      else arr.push_back(to_json(r, mi));
    }
    if (format == "json") outf("%s\n", arr.dump(2).c_str());
  } else if (format == "csv") {
    out("model_filename,model_type,type,model_size,model_n_params,n_threads,n_batch,chunk_size,n_depth,n_prompt,n_gen,test,avg_ns,stddev_ns,avg_ts,stddev_ts,bandwidth_gbs,roofline_pct,gflops,peak_pct\n");
    for (const Row& r : rows)
      outf("%s,%s,%s,%llu,%llu,%d,%lld,%lld,%lld,%lld,%lld,%s,%.0f,%.0f,%.3f,%.3f,%.3f,%.2f,%.3f,%.2f\n",
           r.model.c_str(), r.model_type.c_str(), r.type().c_str(), (unsigned long long)r.model_size,
           (unsigned long long)r.model_n_params, r.threads, (long long)r.n_batch, (long long)r.chunk,
           (long long)r.n_depth, (long long)r.n_prompt, (long long)r.n_gen, r.test.c_str(), r.avg_ns, r.stddev_ns,
           r.avg_ts, r.stddev_ts, r.gbs, r.roofline_pct, r.gflops, r.peak_pct);
  } else {
    out("| model | size | params | type | threads | batch | depth | test | t/s | GB/s | % roofline | GFLOP/s | % peak |\n");
    out("| --- | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n");
    for (const Row& r : rows) {
      const bool tg = r.gbs > 0, pp = r.gflops > 0;
      outf("| %s | %.2f MiB | %.2f M | %s | %d | %lld | %lld | %s | %.2f ± %.2f | %s | %s | %s | %s |\n",
           r.model_type.c_str(), double(r.model_size) / 1048576.0, double(r.model_n_params) / 1e6, r.type().c_str(),
           r.threads, (long long)r.n_batch, (long long)r.n_depth, r.test.c_str(), r.avg_ts, r.stddev_ts,
           tg ? fixed(r.gbs, 2).c_str() : "", tg ? (fixed(r.roofline_pct, 1) + "%").c_str() : "",
           pp ? fixed(r.gflops, 1).c_str() : "", pp ? (fixed(r.peak_pct, 1) + "%").c_str() : "");
    }
  }
}

}  // namespace

Runner add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* c = app.add_subcommand("bench", "Measure prefill and decode throughput (llama-bench conventions)");
  c->add_option("-m,--model", a->models, "Model directories, comma-separated");
  c->add_option("--shape", a->shapes, "Random-weight models: 125m,350m,1.3b,2.7b,6.7b,tiny or WxLxH (comma list)");
  c->add_option("-p,--n-prompt", a->prompts, "Prompt lengths of pp tests (0 skips)")->capture_default_str();
  c->add_option("-n,--n-gen", a->gens, "Generated tokens of tg tests (0 skips)")->capture_default_str();
  c->add_option("--pg", a->pgs, "Prompt+generate tests 'N,M' (several: separate with ';')");
  c->add_option("-d,--n-depth", a->depths, "Tokens already in the state before each test")->capture_default_str();
  c->add_option("-b,--batch", a->batches, "Sequences decoded together in tg tests")->capture_default_str();
  c->add_option("-t,--threads", a->threads, "Thread counts (default: all)");
  c->add_option("--dtype", a->dtypes,
                "Weight dtypes f32,f16,bf16,q8_0,q4_0,q4_k (random models; checkpoints are converted, or quantized "
                "as by --quantize)")
      ->capture_default_str();
  c->add_option("--chunk-size", a->chunks, "Chunk sizes for prefill (0 = the model's)")->capture_default_str();
  c->add_option("-r,--repetitions", a->reps, "Timed repetitions per test")->capture_default_str();
  c->add_flag("--no-warmup", a->no_warmup, "Skip the untimed warm-up run");
  add_check_weights_flag(c, a->check_weights);
  add_bf16_activations_flag(c, a->bf16_activations);
  c->add_option("-o,--output", a->output, "md, csv, json or jsonl")->capture_default_str();
  c->add_option("--device", a->device, "auto, cpu or cuda")->capture_default_str();
  add_angles_option(c, a->angles);
  add_quantize_option(c, a->quantize);
  add_state_type_option(c, a->state_type);
  c->add_option("--bandwidth-mib", a->bw_mib, "Buffer size for the bandwidth measurement")->capture_default_str();
  return [a, c]() -> int {
    if (!c->parsed()) return -1;
    // --quantize TYPE, as on the other commands, is --dtype TYPE here (which also takes a list).
    check_quantize(a->quantize);
    if (!a->quantize.empty()) {
      if (c->count("--dtype"))
        throw Error("--quantize: give it or --dtype, not both (--dtype also takes q8_0, q4_0, q4_k)");
      a->dtypes = a->quantize;
    }
    BenchPlan plan = parse_bench_args(*a);
    if (global_flags().dry_run) return 0;
    check_plan_memory(plan);
    const bool quiet = global_flags().quiet;
    Machine machine = measure_machine(plan, quiet);
    install_sigint_handler();
    const std::vector<Row> rows = run_all(plan, machine, quiet);
    print_rows(rows, plan.output, machine.info);
    return 0;
  };
}

}  // namespace retnet::cli
