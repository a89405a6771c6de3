#include "model/weight_binder.hpp"

#include <cstring>

#include "common/logger.hpp"
#include "common/quant.hpp"
#include "retnet/error.hpp"

namespace retnet {

namespace {
std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}
}  // namespace

const TensorInfo& WeightBinder::need(const std::string& name, const std::vector<int64_t>& shape) {
  const TensorInfo* t = find(name);
  if (!t) throw Error(dir_ + ": missing tensor '" + name + "'");
  if (t->shape != shape)
    throw Error(t->file + ": tensor '" + name + "' has shape " + t->shape_str() + ", expected " + shape_str(shape));
  if (used_.insert(name).second) {
    m_.info.n_params += uint64_t(t->numel());
    m_.info.weight_bytes += t->nbytes;
    used_tensors_.push_back(t);
  }
  return *t;
}

WeightRef WeightBinder::matrix_rows(const std::string& name, int64_t total_rows, int64_t cols, int64_t r0,
                                    int64_t rows) {
  const TensorInfo& t = need(name, {total_rows, cols});
  WeightRef w = view(t, total_rows, cols);
  WeightRef part = w;
  part.data = w.row(r0);
  part.rows = rows;
  return part;
}

const float* WeightBinder::vector(const std::string& name, int64_t n) {
  const TensorInfo& t = need(name, {n});
  if (dry_) {
    vectors_.push_back({uint64_t(n), 1});
    return nullptr;
  }
  hash_weight_bytes(m_, t.data, t.nbytes);
  std::vector<float> host(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) host[size_t(i)] = load_as_f32(t.data, t.dtype, size_t(i));
  m_.owned_vectors.push_back(std::move(host));  // the buffer moves with the vector: the view stays valid
  return m_.owned_vectors.back().data();
}

void WeightBinder::warn_unused() const {
  std::vector<std::string> unused;
  for (const auto& [name, t] : m_.store.all())
    if (!used_.count(name) && !ignored_.count(name)) unused.push_back(name);
  if (!unused.empty())
    lib_log().warn("{}: {} tensor(s) in the checkpoint are not used, e.g. '{}'", dir_, unused.size(), unused.front());
}

WeightRef WeightBinder::view(const TensorInfo& t, int64_t rows, int64_t cols) {
  WeightRef w{t.data, t.dtype, rows, cols};
  const bool convert = convert_to_ && *convert_to_ != t.dtype && !dtype_is_block(t.dtype);
  if (dry_) {  // count what the real binding below will copy, or use in place
    if (convert) plan_.owned = sat_add(plan_.owned, sat_mul(uint64_t(rows), dtype_row_bytes(*convert_to_, cols)));
    else if (reinterpret_cast<uintptr_t>(t.data) % dtype_traits(t.dtype).align != 0)
      plan_.owned = sat_add(plan_.owned, t.nbytes);
    else if (mapped_seen_.insert(&t).second) plan_.mapped = sat_add(plan_.mapped, t.nbytes);
    return w;
  }
  if (const auto q = quantize_.find(&t); q != quantize_.end()) {
    if (const auto c = quantized_.find(&t); c != quantized_.end()) return c->second;
    // Quantized from the stored values (not from a LoadOptions::dtype conversion of them): the same
    // bytes `retnet quantize` writes. The quantized bytes join the identity: other values, another model.
    hash_weight_bytes(m_, t.data, t.nbytes);
    const size_t rb = size_t(dtype_row_bytes(q->second, cols));
    AlignedBytes buf = alloc_aligned_bytes(size_t(rows) * rb);
    // On every hardware thread: a one-off step of the load (q4_k: ~0.4 µs per value and core).
    quantize_rows(q->second, t.dtype, t.data, rows, cols, buf.get(),
                  [&](int64_t r) { return t.file + ": tensor '" + t.name + "' row " + std::to_string(r); });
    hash_weight_bytes(m_, buf.get(), size_t(rows) * rb);
    w.data = buf.get();
    w.dtype = q->second;
    m_.owned_bytes.push_back(std::move(buf));
    quantized_[&t] = w;
    return w;
  }
  hash_weight_bytes(m_, t.data, t.nbytes);  // as stored: a conversion below does not change the identity
  if (convert) {
    // Requested storage dtype differs: convert once at load into an owned buffer.
    const size_t n = size_t(rows * cols), bytes = size_t(rows) * dtype_row_bytes(*convert_to_, cols);
    AlignedBytes buf = alloc_aligned_bytes(bytes);
    for (size_t i = 0; i < n; ++i) store_from_f32(buf.get(), *convert_to_, i, load_as_f32(t.data, t.dtype, i));
    w.data = buf.get();
    w.dtype = *convert_to_;
    m_.owned_bytes.push_back(std::move(buf));
    return w;
  }
  // safetensors does not promise alignment; kernels may assume element alignment, so realign.
  if (reinterpret_cast<uintptr_t>(t.data) % dtype_traits(t.dtype).align != 0) {
    AlignedBytes buf = alloc_aligned_bytes(t.nbytes);
    std::memcpy(buf.get(), t.data, t.nbytes);
    w.data = buf.get();
    m_.owned_bytes.push_back(std::move(buf));
  }
  return w;
}

}  // namespace retnet
