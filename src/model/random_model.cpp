// Random-weight models of arbitrary shape, built in memory: `retnet bench --shape` and large tests.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/quant.hpp"
#include "model/family.hpp"
#include "common/saturating.hpp"
#include "model/model_desc.hpp"
#include "model/quantize_plan.hpp"  // the default head type
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

// The roles of a random model's matrices that the quantization policy tells apart.
enum class RandomRole { Projection, Embed, Head };

// The type of each matrix of a random model of dtype dt: a block type quantizes the projection
// matrices and the head as `retnet quantize` does by default (quantize_plan.hpp: the head q8_0, the
// embedding kept, here BF16), and a matrix whose width is not a multiple of its block stays BF16 (as
// quantize leaves it).
DType random_matrix_type(DType dt, int64_t cols, RandomRole role) {
  if (!dtype_is_block(dt)) return dt;
  if (role == RandomRole::Embed) return DType::BF16;
  DType to = dt;
  if (role == RandomRole::Head) {
    const std::optional<DType> head = parse_head_type(kDefaultHeadType, dt, "head type");
    if (!head) return DType::BF16;
    to = *head;
  }
  return cols % dtype_traits(to).block_elems != 0 ? DType::BF16 : to;
}

uint64_t random_matrix_bytes(DType dt, int64_t rows, int64_t cols, RandomRole role) {
  return sat_mul(uint64_t(rows), dtype_row_bytes(random_matrix_type(dt, cols, role), cols));
}

// Bytes of every matrix of the model, as generate_random_weights makes them.
uint64_t random_all_matrix_bytes(const ModelConfig& c, DType dt) {
  const int64_t D = c.d_model, KD = c.key_dim(), VD = c.value_dim(), F = c.ffn_dim, V = c.vocab_size;
  auto mb = [&](int64_t rows, int64_t cols) { return random_matrix_bytes(dt, rows, cols, RandomRole::Projection); };
  const uint64_t per_layer = sat_add(sat_add(sat_mul(2, mb(KD, D)), sat_mul(2, mb(VD, D))),
                                     sat_add(sat_add(mb(D, VD), sat_mul(2, mb(F, D))), mb(D, F)));
  return sat_add(
      sat_add(random_matrix_bytes(dt, V, D, RandomRole::Embed), random_matrix_bytes(dt, V, D, RandomRole::Head)),
      sat_mul(uint64_t(c.n_layers), per_layer));
}

}  // namespace

ModelDesc random_model_desc(const RandomModelSpec& sp) {
  ModelDesc m;
  ModelConfig& c = m.cfg;
  const DType dt = parse_dtype(sp.dtype);
  if (dtype_is_block(dt)) m.quantize = dt;  // the backend is chosen for it (runtime/model_placement.cpp)
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

  // Every matrix is generated into host memory before upload, whatever the backend: what Model::random
  // checks fits before generating anything (with, on a host backend, the norm vectors, one session and
  // the scratch: runtime/model_placement.cpp).
  {
    const uint64_t D = uint64_t(c.d_model), L = uint64_t(c.n_layers);
    m.needs.owned = random_all_matrix_bytes(c, dt);
    // Per layer its two block norms and the group norm's weight; then the embedding's and the final
    // norm (the embedding's counted even where the family has none: the figure is a bound).
    m.needs.vectors = {{D, 2 * L}, {D, 2}};
    if (c.group_norm_weight) m.needs.vectors.push_back({uint64_t(c.head_dv), L});
  }
  return m;
}

void generate_random_weights(ModelDesc& m, const RandomModelSpec& sp,
                             const std::function<bool(uint64_t, uint64_t)>& on_progress) {
  const ModelConfig& c = m.cfg;
  const DType dt = parse_dtype(sp.dtype);
  Mix rng{sp.seed};
  const uint64_t total = random_all_matrix_bytes(c, dt);
  uint64_t done = 0;
  std::vector<float> row;
  auto matrix = [&](int64_t rows, int64_t cols, RandomRole role = RandomRole::Projection) {
    const DType mt = random_matrix_type(dt, cols, role);
    const size_t n = size_t(rows * cols), rb = size_t(dtype_row_bytes(mt, cols)), bytes = size_t(rows) * rb;
    AlignedBytes buf = alloc_aligned_bytes(bytes);
    const float a = std::sqrt(3.0f / float(cols));  // unit-variance outputs for unit-variance inputs
    if (dtype_is_block(mt)) {  // the same random values, drawn in order a batch of rows at a time, then quantized
      const int64_t batch = std::max<int64_t>(1, (int64_t(1) << 22) / cols);  // 16 MiB of fp32 values
      for (int64_t r0 = 0; r0 < rows; r0 += batch) {
        const int64_t n_rows = std::min(batch, rows - r0);
        row.resize(size_t(n_rows * cols));
        for (float& v : row) v = rng.uniform(a);
        quantize_rows(mt, DType::F32, row.data(), n_rows, cols, buf.get() + size_t(r0) * rb,
                      [](int64_t) { return std::string("random model"); });
      }
    } else {
      for (size_t i = 0; i < n; ++i) store_from_f32(buf.get(), mt, i, rng.uniform(a));
    }
    WeightRef w{buf.get(), mt, rows, cols};
    hash_weight_bytes(m, buf.get(), bytes);
    m.owned_bytes.push_back(std::move(buf));
    m.info.n_params += n;
    m.info.weight_bytes += bytes;
    done += bytes;
    if (on_progress && !on_progress(done, total)) throw Error("random model: cancelled");
    return w;  // host view; placement makes it resident
  };
  auto ones = [&](int64_t n) {
    m.owned_vectors.emplace_back(static_cast<size_t>(n), 1.0f);  // fp32 host; placed as a backend buffer
    m.info.n_params += uint64_t(n);
    m.info.weight_bytes += uint64_t(n) * 4;
    return static_cast<const float*>(m.owned_vectors.back().data());
  };
  const int64_t D = c.d_model, KD = c.key_dim(), VD = c.value_dim(), F = c.ffn_dim, V = c.vocab_size;
  ModelWeights& mw = m.weights;
  mw.embed = matrix(V, D, RandomRole::Embed);
  if (c.embed_norm) mw.embed_norm = ones(D);
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
    mw.layers.push_back(w);
  }
  mw.final_norm = ones(D);
  mw.lm_head = matrix(V, D, RandomRole::Head);
  finalize_model(m);
}

}  // namespace retnet
