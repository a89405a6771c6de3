// Random-weight models of arbitrary shape, built in memory: `retnet bench --shape` and large tests.
#include <cmath>
#include <cstring>

#include "common/quant.hpp"
#include "model/family.hpp"
#include "model/memory_plan.hpp"
#include "model/model_impl.hpp"
#include "retnet/error.hpp"

namespace retnet {

namespace {

// splitmix64: a tiny, fast, portable generator; quality is ample for weight noise.
struct Mix {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [-a, a): variance a²/3.
  float uniform(float a) { return (float(next() >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * a; }
};

DType parse_dtype(const std::string& s) {
  if (s == "f32" || s == "F32" || s == "fp32") return DType::F32;
  if (s == "f16" || s == "F16" || s == "fp16") return DType::F16;
  if (s == "bf16" || s == "BF16") return DType::BF16;
  if (const std::optional<DType> q = quant_type_from_name(s)) return *q;
  throw Error("dtype: '" + s + "' is not one of f32, f16, bf16, " + quant_type_names());
}

}  // namespace

std::unique_ptr<Model::Impl> random_model_impl(const RandomModelSpec& sp, const LoadOptions& options,
                                               const LoadHooks& hooks, SessionHostBytes session_bytes) {
  auto m = std::make_unique<Model::Impl>();
  ModelConfig& c = m->cfg;
  // A block type quantizes the projection matrices; the embedding and the head are then BF16, as
  // `retnet quantize` keeps them by default.
  const DType dt = parse_dtype(sp.dtype);
  const DType dt_vocab = dtype_is_block(dt) ? DType::BF16 : dt;
  const ModelFamily* family = find_family(sp.family);
  if (!family) throw Error("family: '" + sp.family + "' is not " + family_names());
  for (auto [v, name] : {std::pair{sp.vocab_size, "vocab_size"}, {sp.hidden_size, "hidden_size"}, {sp.layers, "layers"},
                         {sp.heads, "heads"}})
    if (v < 1 || v > (int64_t(1) << 20)) throw Error(std::string(name) + ": " + std::to_string(v) + " is out of range");
  // 0 picks the default; the same bound as the other widths, so that no product of sizes overflows.
  for (auto [v, name] : {std::pair{sp.value_dim, "value_dim"}, {sp.ffn_dim, "ffn_dim"}})
    if (v < 0 || v > (int64_t(1) << 20)) throw Error(std::string(name) + ": " + std::to_string(v) + " is out of range");
  c.family = family->id;
  c.source = family->name;
  c.vocab_size = sp.vocab_size;
  c.d_model = sp.hidden_size;
  c.n_layers = sp.layers;
  c.n_heads = sp.heads;
  const int64_t vd = sp.value_dim > 0 ? sp.value_dim : 2 * sp.hidden_size;
  c.ffn_dim = sp.ffn_dim > 0 ? sp.ffn_dim : 2 * sp.hidden_size;
  if (c.d_model % c.n_heads || vd % c.n_heads || (c.d_model / c.n_heads) % 2)
    throw Error("shape: hidden " + std::to_string(c.d_model) + " / value " + std::to_string(vd) +
                " must divide by heads " + std::to_string(c.n_heads) + " into an even key dim");
  c.head_dk = c.d_model / c.n_heads;
  c.head_dv = vd / c.n_heads;
  c.log_decay = log_decay_default(c.n_heads);
  c.default_chunk_size = 64;
  apply_conventions(*family, c);
  family->random_defaults(c);

  // The type of each matrix: a width that is not a multiple of the block stays BF16, as in quantize.
  auto type_of = [&](int64_t cols, bool vocab) {
    if (vocab) return dt_vocab;
    return dtype_is_block(dt) && cols % dtype_traits(dt).block_elems != 0 ? DType::BF16 : dt;
  };
  auto matrix_bytes = [&](int64_t rows, int64_t cols, bool vocab) {
    return sat_mul(uint64_t(rows), dtype_row_bytes(type_of(cols, vocab), cols));
  };
  uint64_t all_matrix_bytes = 0;
  {
    const int64_t D = c.d_model, KD = c.key_dim(), VD = c.value_dim(), F = c.ffn_dim, V = c.vocab_size;
    const uint64_t per_layer = sat_add(
        sat_add(sat_mul(2, matrix_bytes(KD, D, false)), sat_mul(2, matrix_bytes(VD, D, false))),
        sat_add(sat_add(matrix_bytes(D, VD, false), sat_mul(2, matrix_bytes(F, D, false))), matrix_bytes(D, F, false)));
    all_matrix_bytes = sat_add(sat_mul(2, matrix_bytes(V, D, true)), sat_mul(uint64_t(c.n_layers), per_layer));
  }

  m->backend =
      load_backend_for(options, hooks, dtype_is_block(dt) ? std::optional<DType>(dt) : std::nullopt, "random model");
  m->angles = angle_mode(options.angles);

  // Every matrix is generated into host memory before upload, whatever the backend: check that it
  // (and, on a host backend, the norm vectors, one session and the scratch) fits before allocating.
  {
    const uint64_t D = uint64_t(c.d_model), L = uint64_t(c.n_layers);
    MemoryPlan plan;
    plan.owned = all_matrix_bytes;
    const Backend& be = *m->backend;
    const uint64_t vectors_per_layer =
        2 * be.host_alloc_bytes(D) + (c.group_norm_weight ? be.host_alloc_bytes(uint64_t(c.head_dv)) : 0);
    plan.vectors = sat_add(sat_mul(L, vectors_per_layer), 2 * be.host_alloc_bytes(D));  // 0 on a device
    plan_session_and_scratch(plan, c, be, session_bytes);
    m->memory = plan;
    check_memory_plan(plan, "random model " + std::to_string(c.vocab_size) + "x" + std::to_string(c.d_model) + "x" +
                                std::to_string(c.n_layers), hooks.available_memory);
  }

  Mix rng{sp.seed};
  const uint64_t total = all_matrix_bytes;
  uint64_t done = 0;
  std::vector<float> row;
  auto matrix = [&](int64_t rows, int64_t cols, bool vocab = false) {
    const DType mt = type_of(cols, vocab);
    const size_t n = size_t(rows * cols), rb = size_t(dtype_row_bytes(mt, cols)), bytes = size_t(rows) * rb;
    AlignedBytes buf = alloc_aligned_bytes(bytes);
    const float a = std::sqrt(3.0f / float(cols));  // unit-variance outputs for unit-variance inputs
    if (dtype_is_block(mt)) {                       // the same random values, quantized a row at a time
      row.resize(size_t(cols));
      for (int64_t r = 0; r < rows; ++r) {
        for (float& v : row) v = rng.uniform(a);
        quantize_row(mt, row.data(), cols, buf.get() + size_t(r) * rb, "random model");
      }
    } else {
      for (size_t i = 0; i < n; ++i) store_from_f32(buf.get(), mt, i, rng.uniform(a));
    }
    WeightRef w{buf.get(), mt, rows, cols};
    hash_weight_bytes(*m, buf.get(), bytes);
    m->owned_bytes.push_back(std::move(buf));
    m->info.n_params += n;
    m->info.weight_bytes += bytes;
    done += bytes;
    if (options.on_progress && !options.on_progress(done, total)) throw Error("random model: cancelled");
    return w;  // host view; upload_weights() makes it resident
  };
  auto ones = [&](int64_t n) {
    std::vector<float> host(static_cast<size_t>(n), 1.0f);
    float* d = m->backend->alloc(size_t(n));
    m->backend->from_host(d, host.data(), size_t(n));
    m->owned_f32.push_back(d);
    m->info.n_params += uint64_t(n);
    m->info.weight_bytes += uint64_t(n) * 4;
    return d;
  };
  const int64_t D = c.d_model, KD = c.key_dim(), VD = c.value_dim(), F = c.ffn_dim, V = c.vocab_size;
  m->embed = matrix(V, D, true);
  if (c.embed_norm) m->embed_norm = ones(D);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights w;
    w.q = matrix(KD, D);
    w.k = matrix(KD, D);
    w.v = matrix(VD, D);
    w.g = matrix(VD, D);
    w.o = matrix(D, VD);
    w.ffn_act = matrix(F, D);
    w.ffn_lin = matrix(F, D);
    w.ffn_down = matrix(D, F);
    w.attn_norm = ones(D);
    w.ffn_norm = ones(D);
    if (c.group_norm_weight) w.gn_weight = ones(c.head_dv);
    m->layers.push_back(w);
  }
  m->final_norm = ones(D);
  m->lm_head = matrix(V, D, true);
  upload_weights(*m, nullptr, "random model");  // progress was reported while generating
  finalize_model(*m);
  apply_bf16_activations(*m, options.bf16_activations);
  return m;
}

}  // namespace retnet
